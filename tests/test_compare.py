"""Comparisons (issue 13, item 2): the figures from small rows, the same figures read from the
database on both engines, `omvarld compare` in its three formats, the digest's section with the
own organisation highlighted, and the web's `/compare` page."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from digest.compare import ActivityRow, FollowerRow, compare_organisations, index_activity
from digest.compose import SourceInfo
from digest.load import load_comparisons
from digest.model import Comparison, Recipient
from digest.render import cut_comparisons, render_digest
from monitor.cli import app
from monitor.config import Config
from monitor.models import source_metrics, sources
from tests.digestdata import WEEK, build, fill, local, setup_config
from tests.webserver import WebApp

runner = CliRunner()

X = SourceInfo(1, "k-x", "x", "Katrineholms kommun", ("kommuner",), True)
X2 = SourceInfo(2, "k-x2", "x", "Katrineholms kommun", ("kommuner",), True)
FEED = SourceInfo(3, "k-web", "feed", "Katrineholms kommun", ("kommuner",), True)
PEER = SourceInfo(4, "f-x", "x", "Flens kommun", ("kommuner",), True)
# Katrineholm's own in the tests: a recipient of kommuner and myndigheter.
OWN = Recipient(
    email="anna@katrineholm.se",
    language="en",
    organisation="Katrineholms kommun",
    groups=("kommuner", "myndigheter"),
)


def by_name(rows: list[Comparison]) -> dict[tuple[str, str], Comparison]:
    return {(row.organisation, row.platform): row for row in rows}


def test_growth_counts_only_accounts_counted_at_both_ends() -> None:
    activity = [ActivityRow(1, 0, 2, 2, 30), ActivityRow(2, 0, 1, 1, 10)]
    followers = {
        1: FollowerRow(1, at_end=1200, at_start=1000, four_weeks_before=800),
        # Counted only since this week: it adds followers but no growth it never measured.
        2: FollowerRow(2, at_end=300, at_start=None, four_weeks_before=None),
    }
    [row] = compare_organisations([X, X2], index_activity(activity), followers)

    assert row.posts == 3
    assert row.followers == 1500
    assert row.growth_week == 200
    assert row.growth_four_weeks == 400
    assert row.engagement_per_post == pytest.approx(40 / 3)
    # 40 engagement over 1,500 followers.
    assert row.per_thousand_followers == pytest.approx(1000 * 40 / 1500)


def test_per_thousand_followers_leaves_out_accounts_without_a_follower_count() -> None:
    activity = [ActivityRow(1, 0, 1, 1, 50), ActivityRow(2, 0, 1, 1, 950)]
    followers = {1: FollowerRow(1, 2000, 2000, 2000)}
    [row] = compare_organisations([X, X2], index_activity(activity), followers)

    # Source 2's 950 have no audience to divide by; they count for engagement per post only.
    assert row.per_thousand_followers == pytest.approx(25.0)
    assert row.engagement_per_post == pytest.approx(500.0)
    assert (row.growth_week, row.growth_four_weeks) == (0, 0)


def test_unmeasured_figures_are_none_never_zero() -> None:
    activity = [ActivityRow(3, 0, 4, 0, 0), ActivityRow(4, 0, 0, 0, 0), ActivityRow(3, 1, 9, 0, 0)]
    rows = by_name(
        compare_organisations([FEED, PEER], index_activity(activity), {}, "Katrineholms kommun")
    )

    feed = rows[("Katrineholms kommun", "feed")]
    assert feed.posts == 4  # last week's nine are not this week's
    assert feed.own
    assert (feed.engagement_per_post, feed.per_thousand_followers, feed.followers) == (
        None,
        None,
        None,
    )
    assert (feed.growth_week, feed.growth_four_weeks) == (None, None)
    silent = rows[("Flens kommun", "x")]
    assert silent.posts == 0 and silent.engagement_per_post is None and not silent.own


def test_rows_come_per_platform_with_the_own_organisation_first() -> None:
    activity = [ActivityRow(1, 0, 1, 0, 0), ActivityRow(4, 0, 9, 0, 0), ActivityRow(3, 0, 2, 0, 0)]
    rows = compare_organisations(
        [X, PEER, FEED], index_activity(activity), {}, "Katrineholms kommun"
    )

    assert [(r.platform, r.organisation) for r in rows] == [
        ("feed", "Katrineholms kommun"),
        ("x", "Katrineholms kommun"),
        ("x", "Flens kommun"),
    ]


def test_the_digest_counts_as_more_only_rows_it_cut_on_the_platforms_it_shows() -> None:
    def row(organisation: str, platform: str, own: bool = False) -> Comparison:
        return Comparison(organisation, platform, 1, None, None, None, None, None, own)

    rows = [
        row("Katrineholms kommun", "x", own=True),
        row("Flens kommun", "x"),
        row("Gnesta kommun", "x"),
        row("Vingåkers kommun", "x"),
        # Katrineholm is not on YouTube: those rows are no part of its comparison.
        row("Polisen", "youtube"),
        row("Skatteverket", "youtube"),
    ]

    shown = cut_comparisons(rows, limit=2)

    assert [r.organisation for r in shown.items] == [
        "Katrineholms kommun", "Flens kommun", "Gnesta kommun",
    ]  # fmt: skip
    assert shown.more == 1  # "and 1 more": Vingåker, not the two YouTube rows


# ------------------------------------------------------------------------ from the database


def add_followers(engine: Engine, key: str, *counts: tuple[datetime, int | None]) -> None:
    """Rows into source_metrics as a collector's ingest leaves them (issue 13, item 1)."""
    with engine.begin() as connection:
        source_id = connection.execute(
            sa.select(sources.c.id).where(sources.c.key == key)
        ).scalar_one()
        connection.execute(
            source_metrics.insert(),
            [{"source_id": source_id, "observed_at": at, "followers": n} for at, n in counts],
        )


@pytest.fixture
def week_with_followers(tmp_path: Path, engine: Engine) -> Config:
    config = setup_config(tmp_path, engine)
    fill(engine)
    # Week 48 runs from 23 November to 30 November 00:00; four weeks before its end is 2 November.
    add_followers(
        engine,
        "katrineholm-x",
        (local(10, 20, 12), 4000),
        (local(11, 20, 12), 4100),
        (local(11, 27, 12), 4150),
    )
    # Counted only from this week; a count after the week is not the week's.
    add_followers(engine, "polisen-x", (local(11, 25, 12), 90_000), (local(12, 1, 12), 99_999))
    # A row with views only is no follower count.
    add_followers(engine, "polisen-youtube", (local(11, 24, 12), None))
    return config


def test_the_week_is_compared_from_stored_posts_and_source_metrics(
    engine: Engine, week_with_followers: Config
) -> None:
    rows = by_name(load_comparisons(engine, WEEK, own="Katrineholms kommun", now=local(11, 30, 7)))

    k_x = rows[("Katrineholms kommun", "x")]
    assert (k_x.posts, k_x.followers, k_x.growth_week, k_x.growth_four_weeks) == (1, 4150, 50, 150)
    assert k_x.engagement_per_post == 20  # likes 10 + replies 8 + quotes 2
    assert k_x.per_thousand_followers == pytest.approx(1000 * 20 / 4150)
    assert k_x.own
    polisen = rows[("Polisen", "x")]
    # Counts observed after the digest was made (1 December) and the deleted post are left out.
    assert (polisen.posts, polisen.engagement_per_post) == (2, pytest.approx(97 / 2))
    assert polisen.followers == 90_000
    assert (polisen.growth_week, polisen.growth_four_weeks) == (None, None)
    youtube = rows[("Polisen", "youtube")]
    assert youtube.followers is None and youtube.engagement_per_post == pytest.approx(30 / 2)
    web = rows[("Katrineholms kommun", "feed")]
    assert (web.posts, web.engagement_per_post, web.followers) == (4, None, None)
    only_kommuner = load_comparisons(engine, WEEK, group="kommuner", now=local(11, 30, 7))
    assert {row.organisation for row in only_kommuner} == {"Katrineholms kommun"}


def test_the_digest_compares_the_own_organisation_with_the_others_followed(
    engine: Engine, week_with_followers: Config
) -> None:
    data = build(engine, week_with_followers, OWN)
    rendered = render_digest(data, week_with_followers.digest)

    own_rows = [row for row in data.comparisons if row.own]
    assert {row.platform for row in own_rows} == {"feed", "x", "mastodon"}
    assert any(row.organisation == "Polisen" for row in data.comparisons)
    section = rendered.html.split("Comparison</h2>", 1)[1].split("</td></tr>", 1)[0]
    assert "Katrineholms kommun</strong> (your organisation)" in section
    # The own row is highlighted as in the other tables; unmeasured figures are "—", not 0.
    own_row = next(r for r in section.split("<tr") if "Katrineholms kommun" in r and "4,150" in r)
    assert 'class="own"' in own_row and "+50" in own_row and "+150" in own_row
    feed_row = section.split("Web/news feed</th></tr>", 1)[1].split("</tr>")[0]
    assert "Katrineholms kommun" in feed_row and feed_row.count("—") == 5, feed_row
    assert "Katrineholms kommun (your organisation): 1 post, engagement per post 20" in " ".join(
        rendered.text.split()
    )


# ------------------------------------------------------------------------------------ the CLI


def compare(config: Config, *args: str) -> Result:
    return runner.invoke(
        app, ["--config", str(config.path), "compare", "--week", "2026-W48", *args],
        env={"COLUMNS": "250"},
    )  # fmt: skip


def test_compare_prints_a_table_csv_and_json_lines(
    engine: Engine, week_with_followers: Config
) -> None:
    table = compare(week_with_followers)
    assert table.exit_code == 0, table.output
    assert "Katrineholms kommun" in table.output and "4,150" in table.output
    assert "+50" in table.output and "—" in table.output

    as_csv = compare(week_with_followers, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    read = csv.DictReader(io.StringIO(as_csv.stdout))
    rows = {(r["organisation"], r["platform"]): r for r in read}
    assert rows[("Katrineholms kommun", "x")]["growth_four_weeks"] == "150"
    assert rows[("Katrineholms kommun", "feed")]["engagement_per_post"] == ""  # not 0

    as_jsonl = compare(week_with_followers, "--format", "jsonl", "--group", "myndigheter")
    assert as_jsonl.exit_code == 0, as_jsonl.output
    lines = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert {line["organisation"] for line in lines} == {"Polisen", "Länsstyrelsen"}
    polisen = next(line for line in lines if line["platform"] == "x")
    assert polisen["followers"] == 90_000 and polisen["growth_week"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "xml"), "--format: expected table, csv or jsonl, got 'xml'"),
        (("--group", "landsting"), "--group: no source is in a group 'landsting'; groups: "),
        (("--week", "2026-W60"), "--week: expected an ISO week like 2026-W48, got '2026-W60'"),
    ],
)
def test_compare_refuses_bad_values_in_one_line(
    engine: Engine, week_with_followers: Config, args: tuple[str, ...], message: str
) -> None:
    result = runner.invoke(app, ["--config", str(week_with_followers.path), "compare", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


# ------------------------------------------------------------------------------------ the web


def get(app: WebApp, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(app.url(path), timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_compare_page_shows_the_weeks_table_per_platform(web_app: WebApp) -> None:
    status, page = get(web_app, "/compare?week=2026-W48&lang=en")
    assert status == 200
    table = page.split("<table>", 1)[1].split("</table>", 1)[0]
    assert '<th scope="col" class="num">Engagement per 1,000 followers</th>' in table
    assert '<th scope="row">Katrineholms kommun</th>' in table
    # Feeds measure neither engagement nor followers: dashes, never zeros.
    feed_row = next(r for r in table.split("<tr>") if "Katrineholms kommun" in r)
    assert feed_row.count("—") == 5
    assert 'href="/compare"' in page and 'aria-current="page"' in page

    status, grouped = get(web_app, "/compare?week=2026-W48&group=myndigheter")
    assert status == 200 and "Katrineholms kommun" not in grouped.split("<table>", 1)[1]
    status, refused = get(web_app, "/compare?group=finns-inte&lang=en")
    assert status == 400 and "No source is in that group." in refused
