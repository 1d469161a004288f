"""Account-level counts over time (`source_metrics`): what the store keeps of what collectors
report, what `status` shows of it, and its export. The collectors' side (each platform's own
answers on a loopback fake) is in tests/test_<platform>.py. Both databases."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import Config
from monitor.models import source_metrics, sources
from monitor.store import Attempt, record_attempt
from monitor.types import AccountCounts, CollectResult, CollectStatus
from tests.conftest import configure, source_row, write_config
from tests.platforms import account_counts, source_table

SOURCES = source_table(
    "youtube", handle="@skatteverket", organisation="Skatteverket", key="skatteverket"
) + source_table("bluesky", handle="@polisen.bsky.social", organisation="Polisen", key="polisen")


@pytest.fixture
def config(tmp_path: Path, engine: Engine) -> Config:
    return configure(tmp_path, engine, SOURCES)


def store(
    config: Config, engine: Engine, key: str, counts: AccountCounts | None, at: datetime
) -> None:
    """One successful attempt at `key` that read `counts`, finished at `at`."""
    attempt = Attempt(
        source_id=source_row(engine, key).id,
        started_at=at - timedelta(seconds=2),
        finished_at=at,
        policy=config.collect.policy(),
    )
    record_attempt(engine, attempt, CollectResult(CollectStatus.OK, account=counts))


def test_a_row_only_when_a_count_changed_and_none_when_nothing_was_given(
    config: Config, engine: Engine
) -> None:
    now = datetime.now(UTC)
    store(config, engine, "skatteverket", AccountCounts(61200, 48213907, 812), now)
    store(config, engine, "skatteverket", AccountCounts(61200, 48213907, 812), now)
    store(config, engine, "skatteverket", None, now)
    store(config, engine, "skatteverket", AccountCounts(), now)  # the platform gave nothing
    assert account_counts(engine, "skatteverket") == [(61200, 48213907, 812)]

    store(config, engine, "skatteverket", AccountCounts(61200, 48215002, 812), now)
    # The channel hid its subscribers: a change to unknown, never a zero.
    store(config, engine, "skatteverket", AccountCounts(None, 48215002, 812), now)
    assert account_counts(engine, "skatteverket") == [
        (61200, 48213907, 812),
        (61200, 48215002, 812),
        (None, 48215002, 812),
    ]
    assert account_counts(engine, "polisen") == []


def test_a_failed_attempt_writes_no_counts(config: Config, engine: Engine) -> None:
    attempt = Attempt(
        source_id=source_row(engine, "polisen").id,
        started_at=datetime.now(UTC),
        finished_at=datetime.now(UTC),
        policy=config.collect.policy(),
    )
    result = CollectResult(CollectStatus.FAILED, error="Bluesky: HTTP 500")
    record_attempt(engine, attempt, result)
    assert account_counts(engine, "polisen") == []


def add_rows(engine: Engine, key: str, *rows: tuple[datetime, int | None, int | None]) -> None:
    with engine.begin() as connection:
        source_id = connection.execute(
            sa.select(sources.c.id).where(sources.c.key == key)
        ).scalar_one()
        connection.execute(
            source_metrics.insert(),
            [
                {"source_id": source_id, "observed_at": at, "followers": f, "posts": p}
                for at, f, p in rows
            ],
        )


def test_status_shows_followers_and_posts_with_the_change_over_seven_days(
    tmp_path: Path, database_url: str, engine: Engine, config: Config
) -> None:
    now = datetime.now(UTC)
    add_rows(
        engine,
        "polisen",
        (now - timedelta(days=10), 48000, 1190),
        (now - timedelta(days=8), 48211, 1204),  # the count in effect a week ago
        (now - timedelta(days=1), 48390, 1206),
    )
    add_rows(engine, "skatteverket", (now - timedelta(days=2), None, 812))  # counted since
    runner = CliRunner()
    path = str(write_config(tmp_path, database_url, SOURCES))

    shown = runner.invoke(app, ["--config", path, "status", "--json"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    by_key = {record["key"]: record for record in json.loads(shown.stdout)}
    polisen, skatteverket = by_key["polisen"], by_key["skatteverket"]
    assert (polisen["followers"], polisen["followers_change_7d"]) == (48390, 179)
    assert (polisen["account_posts"], polisen["account_posts_change_7d"]) == (1206, 2)
    assert polisen["views"] is None and polisen["views_change_7d"] is None
    assert (skatteverket["followers"], skatteverket["account_posts"]) == (None, 812)
    assert skatteverket["account_posts_change_7d"] is None  # no count a week ago

    table = runner.invoke(app, ["--config", path, "status"], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    polisen_line = next(line for line in table.stdout.splitlines() if "polisen" in line)
    assert "48,390 (+179)" in polisen_line and "1,206 (+2)" in polisen_line
    skatteverket_line = next(line for line in table.stdout.splitlines() if "skatteverket" in line)
    cells = [cell.strip() for cell in skatteverket_line.strip("│ ").split("│")]
    assert cells[-2:] == ["–", "–; 812"]  # no followers and no views: never a 0


def test_export_source_metrics_writes_the_series_with_its_dictionary(
    tmp_path: Path, database_url: str, engine: Engine, config: Config
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    add_rows(
        engine,
        "polisen",
        (now - timedelta(days=40), 47000, 1100),
        (now - timedelta(days=8), 48211, 1204),
    )
    add_rows(engine, "skatteverket", (now - timedelta(days=2), None, 812))
    out = tmp_path / "counts.csv"
    runner = CliRunner()
    path = str(write_config(tmp_path, database_url, SOURCES))

    result = runner.invoke(
        app,
        ["--config", path, "export", "source-metrics", "--out", str(out), "--since", "30d"],
    )

    assert result.exit_code == 0, result.output
    assert "Exported 2 observations" in result.stdout
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["source_key"], r["followers"], r["posts"]) for r in rows] == [
        ("polisen", "48211", "1204"),
        ("skatteverket", "", "812"),  # empty, never 0, where the platform gives none
    ]
    dictionary = json.loads((tmp_path / "counts.csv.dictionary.json").read_text("utf-8"))
    assert dictionary["dataset"] == "source-metrics" and dictionary["rows"] == 2
    assert [c["name"] for c in dictionary["columns"]] == [
        "source_key", "platform", "channel", "organisation", "observed_at", "followers", "views",
        "posts",
    ]  # fmt: skip


def test_export_source_metrics_refuses_post_only_filters_in_one_line(
    tmp_path: Path, database_url: str, config: Config
) -> None:
    path = str(write_config(tmp_path, database_url, SOURCES))
    out = tmp_path / "counts.jsonl"
    result = CliRunner().invoke(
        app, ["--config", path, "export", "source-metrics", "--out", str(out), "--kind", "post"]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --kind: source-metrics are an account's counts, not posts; leave --kind out"
    ]
    assert not out.exists()
