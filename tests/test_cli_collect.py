"""`collect`, `status` and `posts list` as a user runs them: summaries, exit codes, errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from monitor.cli import app
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer

runner = CliRunner()


def wide(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def prepared(config: Path) -> str:
    """The config path, its database upgraded (PostgreSQL is never upgraded implicitly)."""
    assert wide("--config", str(config), "db", "upgrade").exit_code == 0
    return str(config)


def test_collect_prints_a_row_per_source_a_line_per_problem_and_the_database(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    good = feed_server.add_fixture("/news.xml", "rss20.xml")
    html = feed_server.add_fixture("/page", "html_page.html", content_type="text/html")
    body = feed_source(good, key="katrineholm") + feed_source(html, "Flens kommun", key="flen")
    body += '[[sources]]\nplatform = "x"\nhandle = "@polisen"\norganisation = "Polisen"\n'
    config = prepared(write_config(tmp_path, database_url, body))

    result = wide("--config", config, "collect", "--all")

    assert result.exit_code == 1  # the job ran; a source failed
    lines = result.stdout.splitlines()
    assert any("katrineholm" in line and "ok" in line and " 4 " in line for line in lines)
    assert "flen: failed: not a feed: the server returned an HTML page (text/html)" in lines
    assert (
        "x:polisen: skipped: credentials missing: set the environment variable X_BEARER_TOKEN"
        in lines
    )
    assert "3 sources: 4 new, 0 updated, 0 unchanged posts; 0 not modified, 1 failed" in lines
    assert any(line.startswith("Database: ") for line in lines)
    assert "Traceback" not in result.output


def test_collect_exits_zero_when_nothing_failed_and_then_finds_nothing_due(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    config = prepared(write_config(tmp_path, database_url, feed_source(url, key="katrineholm")))

    assert wide("--config", config, "collect").exit_code == 0  # a new source is due at once
    again = wide("--config", config, "collect")
    assert again.exit_code == 0
    # What is true: when the next source is due, not a hint to use an option.
    assert re.match(
        r"Nothing is due: the next of the 1 source, katrineholm,"
        r" is due at \d{4}-\d\d-\d\d \d\d:\d\d\."
        r" Use --all to collect every source now\.$",
        again.stdout.splitlines()[0],
    ), again.stdout
    forced = wide("--config", config, "collect", "--source", "katrineholm")
    assert (
        "1 source: 0 new, 0 updated, 0 unchanged posts; 1 not modified, 0 failed" in forced.stdout
    )


def test_status_shows_counts_and_the_last_error_of_a_failing_source(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    good = feed_server.add_fixture("/news.xml", "rss20.xml")
    broken = feed_server.add("/gone", status=500, body=b"fel", content_type="text/plain")
    body = feed_source(good, key="katrineholm") + feed_source(broken, "Flens kommun", key="flen")
    config = prepared(write_config(tmp_path, database_url, body))
    wide("--config", config, "collect", "--all")

    result = wide("--config", config, "status")
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "│ ok " in rows["katrineholm"] and "│ 4 " in rows["katrineholm"]
    assert "│ failing " in rows["flen"] and "│ 1 " in rows["flen"]
    assert any(
        line.startswith("flen: failing since ") and line.endswith(": HTTP 500 from 127.0.0.1")
        for line in result.stdout.splitlines()
    )


def test_posts_list_shows_the_newest_posts_first(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    config = prepared(write_config(tmp_path, database_url, feed_source(url, key="katrineholm")))
    wide("--config", config, "collect", "--all")

    result = wide("--config", config, "posts", "list", "--limit", "2")
    assert result.exit_code == 0
    assert "Snöröjningen har startat" in result.stdout
    assert "Biblioteket förlänger" in result.stdout
    assert "budgeten för 2027" not in result.stdout  # third newest: beyond the limit

    since = wide("--config", config, "posts", "list", "--since", "2026-11-21")
    assert "Snöröjningen" in since.stdout and "Biblioteket" not in since.stdout

    bad = wide("--config", config, "posts", "list", "--since", "last tuesday")
    assert bad.exit_code == 2 and "--since: expected a date like 2026-11-23" in bad.output


def test_unreachable_database_is_one_line_and_exit_two(tmp_path: Path) -> None:
    config = write_config(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:9/none")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: cannot open postgresql+psycopg://postgres@127.0.0.1:9/none"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_status_warns_when_x_reads_pass_four_fifths_of_the_monthly_budget() -> None:
    from monitor.config import Config, PlatformConfig
    from monitor.types import ApiUsage
    from monitor.usage import describe_api_usage

    config = Config(
        path=Path("config.toml"), platforms={"x": PlatformConfig(monthly_read_budget=10_000)}
    )
    calm = describe_api_usage(config, ApiUsage(this_month={"x": 7_999}))
    assert calm == ["X reads this month: 7,999 of 10,000 (80%)"]
    warned = describe_api_usage(config, ApiUsage(this_month={"x": 8_000}))
    assert warned == ["WARNING: X reads this month: 8,000 of 10,000 (80%)"]
    spent = describe_api_usage(config, ApiUsage(this_month={"x": 10_000}, today={"youtube": 120}))
    assert spent == [
        "WARNING: X reads this month: 10,000 of 10,000 (100%);"
        " X collection stopped until next month",
        "YouTube API quota today: 120 of 10,000 units",
    ]
