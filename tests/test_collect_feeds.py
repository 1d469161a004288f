"""Feed collection end to end: a real loopback server, the real aiohttp client, both databases."""

from __future__ import annotations

import asyncio
import gzip
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from collectors.feeds import FeedCollector
from collectors.http import HttpClient
from monitor.cli import app
from monitor.collect import make_collector_settings
from monitor.config import load_config
from monitor.models import collection_runs, post_metrics, post_revisions, posts
from monitor.sources import select_sources
from monitor.types import ApiUsage, CollectResult, CollectStatus, SourceRef, SourceState
from tests.conftest import (
    collect_all,
    configure,
    count,
    feed_source,
    only,
    source_row,
    stored_posts,
    write_config,
)
from tests.feedserver import FIXTURES, FeedServer, Route


def test_second_pass_sends_conditional_requests_and_writes_nothing(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    urls = [
        feed_server.add_fixture("/rss.xml", "rss20.xml"),
        feed_server.add_fixture("/atom.xml", "atom.xml"),
        feed_server.add_fixture("/yt.xml", "youtube.xml", content_type="text/xml"),
    ]
    config = configure(tmp_path, engine, "".join(feed_source(u) for u in urls))

    first = collect_all(config, engine)
    assert {o.status for o in first.values()} == {CollectStatus.OK}
    assert sum(o.counts.new for o in first.values()) == 4 + 3 + 3
    posts_before, metrics_before = count(engine, posts), count(engine, post_metrics)
    assert (posts_before, metrics_before) == (10, 3)

    second = collect_all(config, engine)
    assert {o.status for o in second.values()} == {CollectStatus.NOT_MODIFIED}
    assert all(o.counts.new == o.counts.updated == 0 for o in second.values())
    for path in ("/rss.xml", "/atom.xml", "/yt.xml"):
        request = feed_server.requests_to(path)[-1]
        assert request.headers["if-none-match"].startswith('"')
        assert request.headers["if-modified-since"] == "Mon, 23 Nov 2026 08:00:00 GMT"
        assert request.status == 304
    assert (count(engine, posts), count(engine, post_metrics)) == (posts_before, metrics_before)
    assert count(engine, post_revisions) == 0


def test_unchanged_feed_served_without_validators_writes_no_post_rows(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/plain.xml", "rss20.xml", validators=False)
    config = configure(tmp_path, engine, feed_source(url))
    collect_all(config, engine)
    with engine.connect() as connection:
        fetched = connection.execute(sa.select(posts.c.id, posts.c.fetched_at)).all()

    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK
    assert (outcome.counts.new, outcome.counts.updated, outcome.counts.unchanged) == (0, 0, 4)
    with engine.connect() as connection:
        assert connection.execute(sa.select(posts.c.id, posts.c.fetched_at)).all() == fetched


def test_edited_entry_keeps_its_previous_version_as_a_revision(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    config = configure(tmp_path, engine, feed_source(url))
    collect_all(config, engine)
    with engine.connect() as connection:
        original = connection.execute(
            sa.select(posts).order_by(posts.c.published_at.desc())
        ).first()
    assert original is not None

    feed_server.add_fixture("/news.xml", "rss20_edited.xml")
    outcome = only(collect_all(config, engine))
    assert (outcome.counts.new, outcome.counts.updated, outcome.counts.unchanged) == (0, 1, 3)
    with engine.connect() as connection:
        edited = connection.execute(sa.select(posts).where(posts.c.id == original.id)).one()
        revision = connection.execute(sa.select(post_revisions)).one()
    assert edited.title.startswith("Uppdaterad:")
    assert edited.first_seen_at == original.first_seen_at
    assert revision.post_id == original.id
    assert revision.title == original.title
    assert revision.content_hash == original.content_hash != edited.content_hash
    assert revision.fetched_at == original.fetched_at


def test_a_post_deleted_by_hand_is_stored_again_once_the_feed_changes(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    """A feed source remembers the posts it read, so that a changed feed sends the store only
    what changed. When the database no longer holds what it remembers, the source forgets its
    memory and validators, and the read after next stores the whole feed again."""
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    config = configure(tmp_path, engine, feed_source(url))
    collect_all(config, engine)
    with engine.begin() as connection:
        oldest = connection.execute(sa.select(posts).order_by(posts.c.published_at)).first()
        assert oldest is not None
        connection.execute(posts.delete().where(posts.c.id == oldest.id))

    feed_server.add_fixture("/news.xml", "rss20_edited.xml")  # the newest entry edited
    outcome = only(collect_all(config, engine))
    assert (outcome.counts.new, outcome.counts.updated, outcome.counts.unchanged) == (0, 1, 3)
    assert count(engine, posts) == 3
    assert source_row(engine, outcome.key).etag is None

    outcome = only(collect_all(config, engine))
    assert "if-none-match" not in feed_server.requests_to("/news.xml")[-1].headers
    assert (outcome.counts.new, outcome.counts.updated, outcome.counts.unchanged) == (1, 0, 3)
    with engine.connect() as connection:
        back = connection.execute(
            sa.select(posts).where(posts.c.platform_post_id == oldest.platform_post_id)
        ).one()
    assert (back.title, back.content_hash) == (oldest.title, oldest.content_hash)
    assert source_row(engine, outcome.key).etag is not None


def test_changed_view_counts_append_metrics_without_touching_the_posts(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/yt.xml", "youtube.xml")
    config = configure(tmp_path, engine, feed_source(url, "Skatteverket"))
    collect_all(config, engine)
    feed_server.add_fixture("/yt.xml", "youtube_updated_counts.xml")

    outcome = only(collect_all(config, engine))
    assert (outcome.counts.updated, outcome.counts.metrics) == (0, 2)
    assert count(engine, post_revisions) == 0
    with engine.connect() as connection:
        history = connection.execute(
            sa.select(post_metrics.c.views, post_metrics.c.likes)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .where(posts.c.platform_post_id == "yt:video:dK3v9Qm2TfA")
            .order_by(post_metrics.c.id)
        ).all()
    assert [tuple(r) for r in history] == [(1234, 42), (2051, 57)]


def test_a_count_too_large_to_store_is_left_out_and_the_feed_is_stored(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    body = (FIXTURES / "youtube.xml").read_text(encoding="utf-8")
    huge = body.replace('views="1234"', 'views="99999999999999999999"')
    url = feed_server.add("/yt.xml", body=huge.encode(), content_type="text/xml")
    config = configure(tmp_path, engine, feed_source(url, "Skatteverket"))

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.OK and outcome.counts.new == 3, outcome.error
    with engine.connect() as connection:
        counts = connection.execute(
            sa.select(post_metrics.c.views, post_metrics.c.likes)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .where(posts.c.platform_post_id == "yt:video:dK3v9Qm2TfA")
        ).all()
    assert [tuple(r) for r in counts] == [(None, 42)]


def test_permanent_redirect_updates_the_stored_url_and_temporary_does_not(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    new_home = feed_server.add_fixture("/new/rss.xml", "rss20.xml")
    moved = feed_server.add("/old/rss.xml", status=301, location=new_home, validators=False)
    feed_server.add_fixture("/other.xml", "atom.xml")
    temporary = feed_server.add(
        "/tmp.xml", status=302, location=feed_server.url("/other.xml"), validators=False
    )
    config = configure(tmp_path, engine, feed_source(moved) + feed_source(temporary))

    outcomes = collect_all(config, engine)
    moved_outcome = next(o for o in outcomes.values() if "old" in o.key)
    assert moved_outcome.moved_to == new_home
    assert source_row(engine, moved_outcome.key).fetch_url == new_home
    temporary_key = next(k for k in outcomes if "tmp" in k)
    assert source_row(engine, temporary_key).fetch_url is None

    collect_all(config, engine)
    assert len(feed_server.requests_to("/old/rss.xml")) == 1  # the next pass went straight there


def test_redirect_to_another_loopback_server_is_followed_because_the_source_is_internal(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    # The configured URL is itself on loopback, so `may_follow` lets it go to other internal
    # addresses; the refusal for public sources is tested on `may_follow` in test_http.py.
    with FeedServer() as internal:
        target = internal.add_fixture("/rss.xml", "rss20.xml")
        url = feed_server.add("/feed.xml", status=302, location=target, validators=False)
        config = configure(tmp_path, engine, feed_source(url))
        outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK and outcome.counts.new == 4
    assert len(internal.requests_to("/rss.xml")) == 1


def test_redirect_to_a_non_http_url_is_refused_in_one_line(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add("/feed.xml", status=301, location="file:///etc/passwd", validators=False)
    config = configure(tmp_path, engine, feed_source(url))
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == "127.0.0.1 redirected to a URL that is not http(s)"
    assert source_row(engine, outcome.key).fetch_url is None


def test_redirect_loop_ends_after_ten_hops_in_one_line(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.url("/loop.xml")
    feed_server.add("/loop.xml", status=302, location=url, validators=False)
    config = configure(tmp_path, engine, feed_source(url))
    outcome = only(collect_all(config, engine))
    assert outcome.error == "too many redirects from 127.0.0.1"
    assert len(feed_server.requests_to("/loop.xml")) == 11


def test_gone_feed_is_retired_with_the_reason_and_no_longer_collected(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add("/gone.xml", status=410, body=b"Gone", content_type="text/plain")
    config = configure(tmp_path, engine, feed_source(url))
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.RETIRED
    row = source_row(engine, outcome.key)
    assert row.status == "retired" and "410" in row.last_error
    assert row.next_check_at is None
    assert select_sources(engine, now=datetime.now(UTC), everything=True) == []


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_for_rate_limits_and_unavailability(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, status: int
) -> None:
    url = feed_server.add(
        "/busy.xml", status=status, body=b"slow down", headers={"Retry-After": "7200"},
        validators=False,
    )  # fmt: skip
    config = configure(tmp_path, engine, feed_source(url))
    before = datetime.now(UTC)
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and f"HTTP {status}" in outcome.error and "retry after" in outcome.error
    row = source_row(engine, outcome.key)
    assert row.next_check_at >= before + timedelta(seconds=7200)
    assert row.consecutive_failures == 1


@pytest.mark.parametrize("retry_after", ["Fri, 31 Dec 2100 23:59:59 GMT", "99999999999999"])
def test_retry_after_far_away_waits_no_longer_than_the_longest_interval(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, retry_after: str
) -> None:
    url = feed_server.add(
        "/away.xml", status=503, body=b"later", headers={"Retry-After": retry_after},
        validators=False,
    )  # fmt: skip
    config = configure(tmp_path, engine, feed_source(url))
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    row = source_row(engine, outcome.key)
    longest = timedelta(seconds=config.collect.max_interval)
    assert row.next_check_at <= datetime.now(UTC) + longest
    # The line promises what the schedule does: tomorrow, not 2100.
    assert outcome.error == (
        f"service unavailable (HTTP 503); retry after {row.next_check_at:%Y-%m-%d %H:%M} UTC"
    )


def test_stalled_response_times_out_without_holding_up_other_sources(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    stalled = feed_server.add_fixture("/stall.xml", "rss20.xml", stall_seconds=3)
    healthy = feed_server.add_fixture("/ok.xml", "atom.xml")
    collect = "[collect]\nread_timeout = 0.5\n\n"
    config = configure(tmp_path, engine, feed_source(stalled) + feed_source(healthy), collect)

    outcomes = collect_all(config, engine)
    by_path = {("stall" if "stall" in k else "ok"): o for k, o in outcomes.items()}
    assert by_path["stall"].status is CollectStatus.FAILED
    assert by_path["stall"].error and "timed out" in by_path["stall"].error
    assert by_path["ok"].status is CollectStatus.OK and by_path["ok"].counts.new == 3


def test_trickling_response_says_it_was_slow_not_silent(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    # One byte a second never trips the 1.5 s read timeout; the whole-response deadline
    # (connect timeout + 4 read timeouts = 6.5 s) ends it, and the message says so.
    url = feed_server.add_fixture("/trickle.xml", "rss20.xml", trickle_seconds=1.0)
    collect = "[collect]\nconnect_timeout = 0.5\nread_timeout = 1.5\n\n"
    config = configure(tmp_path, engine, feed_source(url), collect)
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        "timed out: 127.0.0.1 did not finish sending the response within 6.5 s "
        "(it kept sending slowly; read timeout 1.5 s between bytes)"
    )
    assert 6.5 <= outcome.seconds < 9


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            Route(body=(FIXTURES / "html_page.html").read_bytes(), content_type="text/html"),
            "HTML page",
        ),
        (Route(body=b""), "empty response body"),
        (Route(status=500, body=b"oops", content_type="text/plain"), "HTTP 500"),
        (Route(status=404, body=b"missing", content_type="text/plain"), "HTTP 404"),
    ],
    ids=["html", "empty", "500", "404"],
)
def test_broken_source_fails_with_one_line_and_others_are_collected(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, route: Route, message: str
) -> None:
    broken = feed_server.add("/broken", route)
    healthy = feed_server.add_fixture("/ok.xml", "rss20.xml")
    config = configure(tmp_path, engine, feed_source(broken) + feed_source(healthy))

    outcomes = collect_all(config, engine)
    bad = next(o for k, o in outcomes.items() if "broken" in k)
    good = next(o for k, o in outcomes.items() if "ok.xml" in k)
    assert bad.status is CollectStatus.FAILED
    assert bad.error and message in bad.error and "\n" not in bad.error
    assert good.status is CollectStatus.OK and good.counts.new == 4
    row = source_row(engine, bad.key)
    assert (row.status, row.consecutive_failures, row.last_error) == ("failing", 1, bad.error)
    with engine.connect() as connection:
        run = connection.execute(
            sa.select(collection_runs).where(collection_runs.c.source_id == row.id)
        ).one()
    assert (run.status, run.error, run.posts_new) == ("failed", bad.error, 0)


@pytest.mark.parametrize(
    ("fixture", "recovered", "reason"),
    [("malformed.xml", 2, "invalid token"), ("entity_bomb.xml", 1, "undefined entity")],
)
def test_malformed_feed_is_partially_parsed_and_the_problem_is_recorded(
    tmp_path: Path,
    engine: Engine,
    feed_server: FeedServer,
    fixture: str,
    recovered: int,
    reason: str,
) -> None:
    url = feed_server.add_fixture("/bad.xml", fixture)
    config = configure(tmp_path, engine, feed_source(url))
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.PARTIAL and outcome.counts.new == recovered
    row = source_row(engine, outcome.key)
    assert row.status == "ok" and "not well-formed" in row.last_error and reason in row.last_error


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compressed_feeds_are_decoded(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, encoding: str
) -> None:
    url = feed_server.add_fixture("/z.xml", "rss20.xml", encoding=encoding)
    config = configure(tmp_path, engine, feed_source(url))
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK and outcome.counts.new == 4
    assert encoding in feed_server.requests_to("/z.xml")[0].headers["accept-encoding"]


def big_feed(
    entries: int, description: str = "Kommunen informerar om vinterväghållning. " * 40
) -> bytes:
    """A feed of `entries` items, oldest first (as some CMS exports are), a minute apart."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    items = "".join(
        f"<item><guid>post-{i}</guid><title>Nyhet {i} från kommunen</title>"
        f"<pubDate>{format_datetime(start + timedelta(minutes=i))}</pubDate>"
        f"<description>{description}</description></item>"
        for i in range(entries)
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Stor</title>'
    return f"{head}{items}</channel></rss>".encode()


def test_five_megabyte_feed_is_stored_in_full(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    body = big_feed(2700)
    assert len(body) > 5_000_000
    url = feed_server.add("/big.xml", body=body)
    config = configure(tmp_path, engine, feed_source(url), "[collect]\nmax_entries = 3000\n\n")
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK and outcome.counts.new == 2700
    assert count(engine, posts) == 2700


def test_a_feed_of_thousands_of_entries_stores_the_newest_max_entries_and_says_so(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add("/long.xml", body=big_feed(5000, description="Kort."))
    configure(tmp_path, engine, feed_source(url, key="lang"))  # [collect] max_entries: 500

    result = CliRunner().invoke(
        app, ["--config", str(tmp_path / "config.toml"), "collect", "--all"], env={"COLUMNS": "200"}
    )

    note = "5,000 entries in the feed; the newest 500 taken ([collect] max_entries)"
    assert result.exit_code == 0, result.output
    assert f"lang: partial: {note}" in result.stdout.splitlines()
    assert set(stored_posts(engine)) == {f"post-{i}" for i in range(4500, 5000)}
    with engine.connect() as connection:
        run = connection.execute(sa.select(collection_runs)).one()
    assert (run.status, run.posts_new, run.error) == ("partial", 500, note)


def test_body_over_the_limit_is_refused_even_when_compressed(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    body = big_feed(600)  # about 1.2 MB, compresses to a few KB
    assert len(gzip.compress(body)) < 100_000
    url = feed_server.add("/bomb.xml", body=body, encoding="gzip")
    config = configure(
        tmp_path, engine, feed_source(url), "[collect]\nmax_body_bytes = 1000000\n\n"
    )
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and "too large" in outcome.error
    assert count(engine, posts) == 0


def test_requests_name_the_project_and_ask_for_feeds(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/rss.xml", "rss20.xml")
    collect_all(configure(tmp_path, engine, feed_source(url)), engine)
    headers = feed_server.requests_to("/rss.xml")[0].headers
    assert headers["user-agent"].startswith("Omvarld/") and "+https://" in headers["user-agent"]
    assert "application/rss+xml" in headers["accept"]


def test_unreachable_host_fails_with_a_clear_reason(tmp_path: Path, engine: Engine) -> None:
    config = configure(tmp_path, engine, feed_source("http://127.0.0.1:9/feed.xml"))
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == "connection refused by 127.0.0.1"


def test_source_needing_credentials_is_skipped_naming_the_variable(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    body = '[[sources]]\nplatform = "x"\nhandle = "@polisen"\norganisation = "Polisen"\n'
    config = configure(tmp_path, engine, body)
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.SKIPPED
    assert outcome.error == "credentials missing: set the environment variable X_BEARER_TOKEN"
    assert count(engine, collection_runs) == 0


def test_freshness_and_retry_after_are_counted_from_the_attempt_start_the_engine_hands_over(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    fresh = feed_server.add_fixture(
        "/fresh.xml", "rss20.xml", headers={"Cache-Control": "max-age=600"}
    )
    busy = feed_server.add("/busy.xml", status=503, headers={"Retry-After": "120"})
    config = load_config(
        write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", feed_source(fresh))
    )
    start = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a fixed clock: the engine's is the run's

    async def attempt(url: str) -> CollectResult:
        with ThreadPoolExecutor(max_workers=1) as parsing:
            collector = FeedCollector(make_collector_settings(config, "feed"), parsing, ApiUsage())
            source = SourceRef(1, "feed:test", "feed", "Katrineholms kommun", url=url)
            async with HttpClient(user_agent="Omvarld/test") as http:
                return await collector.collect(source, SourceState(), http, start)

    ok, unavailable = asyncio.run(attempt(fresh)), asyncio.run(attempt(busy))

    assert ok.status is CollectStatus.OK and ok.fresh_until == start + timedelta(seconds=600)
    assert unavailable.retry_after == start + timedelta(seconds=120)
    assert unavailable.error == "service unavailable (HTTP 503); retry after 2026-03-02 09:32 UTC"


def test_the_summary_prints_an_organisation_as_written_emoji_codes_and_all(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/rss.xml", "rss20.xml")
    configure(tmp_path, engine, feed_source(url, organisation="Kommunen :thumbs_up: [bold]"))

    result = CliRunner().invoke(
        app, ["--config", str(tmp_path / "config.toml"), "collect", "--all"], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    assert "Kommunen :thumbs_up: [bold]" in result.stdout, result.stdout
