"""Bluesky collection end to end: a loopback AppView, the real aiohttp client, both databases.

The fixtures are AppView answers (`app.bsky.actor.getProfile`, `app.bsky.feed.getAuthorFeed`,
`app.bsky.feed.getPosts`) dated around FIXTURE_NOW; every timestamp in them is moved by the
same amount so that they sit at the same distance from the real now the collector sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from collectors.api import find_rate_limit_reset
from collectors.bluesky import (
    FeedEntry,
    ReadWindow,
    describe_error,
    find_actor,
    parse_feed_item,
    select_entries,
)
from collectors.http import Response
from monitor.cli import app
from monitor.config import Config
from monitor.models import post_metrics, post_revisions, posts
from monitor.types import CollectStatus, Media
from tests.conftest import collect_one, source_row, stored_posts, write_config
from tests.conftest import configure as configure_sources
from tests.feedserver import FeedServer, Request, Route
from tests.platforms import (
    account_counts,
    json_route,
    pass_a_day,
    requests_to_endpoint,
    source_table,
)

FIXTURES = Path(__file__).parent / "fixtures" / "bluesky"
FIXTURE_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")

PROFILE = "/xrpc/app.bsky.actor.getProfile"
FEED = "/xrpc/app.bsky.feed.getAuthorFeed"
GET_POSTS = "/xrpc/app.bsky.feed.getPosts"

DID = "did:plc:3vdrgzr2zybocs45yfhcr6ur"
CITIZEN_DID = "did:plc:w2bqcbzvtqejl7mqyyo2n6ti"
FLOOD = f"at://{DID}/app.bsky.feed.post/3lbr6yq7ttc2k"  # images, mentions, edited later
THREAD_START = f"at://{DID}/app.bsky.feed.post/3lbotv2dkzk2p"
THREAD_REPLY = f"at://{DID}/app.bsky.feed.post/3lbpwbcq2s22b"
QUOTE = f"at://{DID}/app.bsky.feed.post/3lbkx3u2tgs2m"
VIDEO = f"at://{DID}/app.bsky.feed.post/3lb5q7v4tjc2c"
BIKE_CARD = f"at://{DID}/app.bsky.feed.post/3lavzjlq2dc2x"  # deleted before the second run
WITNESSES = f"at://{DID}/app.bsky.feed.post/3lal5w6rr4s2y"  # older than refresh_days
RECRUITS = f"at://{DID}/app.bsky.feed.post/3l7xk2dpfmk2a"  # the oldest within backfill_days
KIRUNA = f"at://{DID}/app.bsky.feed.post/3l6sq2bwxy22d"  # beyond backfill_days
PINNED = f"at://{DID}/app.bsky.feed.post/3kl2mfxz7gh2e"
ARREST = f"at://{DID}/app.bsky.feed.post/3lbrm5ymc2k2n"  # new in the second run
REPOST = f"repost:at://{DID}/app.bsky.feed.repost/3lbqzqaa6w72c"
FIRST_RUN = [
    FLOOD,
    REPOST,
    THREAD_REPLY,
    THREAD_START,
    QUOTE,
    VIDEO,
    BIKE_CARD,
    WITNESSES,
    RECRUITS,
]

FIRST_PAGES = ("author_feed_page1.json", "author_feed_page2.json", "author_feed_page3.json")
NEXT_PAGES = ("author_feed_next_page1.json", "author_feed_next_page2.json")


def load(name: str, shift: timedelta = timedelta(0), rename: str | None = None) -> Any:
    """A fixture with its timestamps moved by `shift` (and the account renamed, if asked)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    if rename:
        text = text.replace('"polisen.bsky.social"', json.dumps(rename))

    def moved(match: re.Match[str]) -> str:
        when = datetime.fromisoformat(match.group(0)) + shift
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return json.loads(TIMESTAMP.sub(moved, text))


# AppView announces its rate limit on every answer.
RATE_LIMIT = {"ratelimit-limit": "3000", "ratelimit-policy": "3000;w=300"}


def xrpc_route(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    return json_route(document, status, RATE_LIMIT | (headers or {}))


class AppView:
    """The three XRPC methods on the loopback server, answering from fixtures."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        # Whole seconds, so that shifted millisecond timestamps stay exact.
        self.shift = timedelta(seconds=int((datetime.now(UTC) - FIXTURE_NOW).total_seconds()))
        self.rename: str | None = None
        self.pages: list[Any] = []
        self.failures: dict[str, Route] = {}
        self.profile = load("get_profile.json", self.shift)
        self.existing: list[str] = []  # uris getPosts still finds
        server.add_handler(PROFILE, self._profile)
        server.add_handler(FEED, self._feed)
        server.add_handler(GET_POSTS, self._get_posts)
        self.serve(*FIRST_PAGES)

    @property
    def url(self) -> str:
        return self.server.url("")

    def serve(self, *names: str) -> None:
        self.pages = [load(name, self.shift, self.rename) for name in names]

    def fail(
        self, path: str, status: int, fixture: str, headers: dict[str, str] | None = None
    ) -> None:
        self.failures[path] = xrpc_route(load(fixture), status, headers)

    def requests(self, path: str) -> list[Request]:
        return requests_to_endpoint(self.server, path)

    def _answer(self, path: str, make: Callable[[], Route]) -> Route:
        return self.failures.get(path) or make()

    def _profile(self, request: Request) -> Route:
        return self._answer(PROFILE, lambda: xrpc_route(self.profile))

    def _feed(self, request: Request) -> Route:
        def page() -> Route:
            cursor = request.query.get("cursor")
            if cursor is None:
                return xrpc_route(self.pages[0])
            for before, after in zip(self.pages, self.pages[1:], strict=False):
                if before.get("cursor") == cursor:
                    return xrpc_route(after)
            return xrpc_route({"feed": []})

        return self._answer(FEED, page)

    def _get_posts(self, request: Request) -> Route:
        asked = parse_qs(urlsplit(request.path).query).get("uris", [])
        found = [{"uri": uri} for uri in asked if uri in self.existing]
        return self._answer(GET_POSTS, lambda: xrpc_route({"posts": found}))


@pytest.fixture
def appview(feed_server: FeedServer) -> Iterator[AppView]:
    yield AppView(feed_server)


def bluesky_sources(api_url: str, handle: str = "@polisen.bsky.social") -> str:
    polisen = source_table(
        "bluesky", handle=handle, organisation="Polismyndigheten", key="polisen", api_url=api_url
    )
    return polisen + source_table(
        "bluesky",
        handle="@krisinformation.se",
        organisation="Myndigheten för samhällsskydd och beredskap",
        enabled=False,
    )


def configure(
    tmp_path: Path, engine: Engine, api_url: str, *, backfill_posts: int = 200, **source: str
) -> Config:
    collect = f"[collect]\nbackfill_days = 30\nbackfill_posts = {backfill_posts}\n"
    collect += "refresh_days = 14\n"
    return configure_sources(tmp_path, engine, bluesky_sources(api_url, **source), collect)


def metric_rows(engine: Engine, platform_post_id: str) -> list[sa.Row[Any]]:
    query = (
        sa.select(post_metrics)
        .join(posts, posts.c.id == post_metrics.c.post_id)
        .where(posts.c.platform_post_id == platform_post_id)
        .order_by(post_metrics.c.id)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


# End to end, on both databases.


def test_first_run_resolves_the_did_and_backfills_pages_until_backfill_days(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK, outcome.error
    assert outcome.counts.new == len(FIRST_RUN)
    rows = stored_posts(engine)
    assert sorted(rows) == sorted(FIRST_RUN)
    assert KIRUNA not in rows  # the first item older than backfill_days ends paging
    # The pinned post heads page one but is older than the window: neither stored nor a stop.
    assert PINNED not in rows
    assert [r.query["actor"] for r in appview.requests(PROFILE)] == ["polisen.bsky.social"]
    feed = [r.query for r in appview.requests(FEED)]
    assert len(feed) == 3
    assert feed[0] == {
        "actor": DID,
        "limit": "50",
        "filter": "posts_and_author_threads",
        "includePins": "true",
    }
    assert [q.get("cursor") for q in feed] == [
        None,
        appview.pages[0]["cursor"],
        appview.pages[1]["cursor"],
    ]
    row = source_row(engine, "polisen")
    assert row.platform_id == DID
    assert row.cursor["newest_id"] == FLOOD
    assert {rows[key].kind for key in FIRST_RUN} == {"post", "repost", "reply", "quote"}
    assert (rows[REPOST].kind, rows[REPOST].author) == ("repost", "polisen.bsky.social")
    assert rows[THREAD_REPLY].kind == "reply" and rows[QUOTE].kind == "quote"

    flood = rows[FLOOD]
    assert flood.url == "https://bsky.app/profile/polisen.bsky.social/post/3lbr6yq7ttc2k"
    assert flood.published_at == datetime(2026, 11, 23, 9, 12, 4, 511000, UTC) + appview.shift
    assert (flood.language, flood.tags) == ("sv", ["gävle", "översvämning"])
    assert flood.mentions == ["krisinformation.se"] and flood.other_mentions == 1
    assert CITIZEN_DID not in json.dumps(flood.raw)
    assert flood.media[0]["alt_text"].startswith("Översvämmad gata i centrala Gävle")
    assert metric_rows(engine, FLOOD)[0].likes == 41
    assert metric_rows(engine, REPOST) == []  # a repost's counts belong to the original


def test_backfill_posts_limit_ends_the_first_run_on_the_first_page(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url, backfill_posts=4)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK
    assert sorted(stored_posts(engine)) == sorted([FLOOD, REPOST, THREAD_REPLY, THREAD_START])
    assert len(appview.requests(FEED)) == 1


def test_second_run_asks_for_the_did_and_reads_only_past_the_refresh_window(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    appview.serve(*NEXT_PAGES)
    appview.server.requests.clear()

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK, outcome.error
    assert outcome.counts.new == 1 and ARREST in stored_posts(engine)
    assert appview.requests(PROFILE) == []  # the DID is stored; no second resolution
    feed = [r.query for r in appview.requests(FEED)]
    assert [(q["actor"], q.get("cursor")) for q in feed] == [
        (DID, None),
        (DID, appview.pages[0]["cursor"]),
    ]  # page two reaches a post older than refresh_days: no third page
    assert (
        source_row(engine, "polisen").cursor["newest_id"] == ARREST
    )  # the old pinned post is no stop


def test_profile_counts_land_once_and_again_only_when_they_change(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    assert account_counts(engine, "polisen") == [(48211, None, 1204)]  # from resolving the DID

    pass_a_day(engine, "polisen")
    collect_one(config, engine)  # asked by DID; unchanged, so no row
    assert [r.query["actor"] for r in appview.requests(PROFILE)] == ["polisen.bsky.social", DID]
    assert account_counts(engine, "polisen") == [(48211, None, 1204)]

    appview.profile |= {"followersCount": 48390, "postsCount": 1206}
    pass_a_day(engine, "polisen")
    collect_one(config, engine)
    assert account_counts(engine, "polisen") == [(48211, None, 1204), (48390, None, 1206)]


def test_a_failed_profile_read_keeps_the_posts_and_names_the_problem(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    appview.serve(*NEXT_PAGES)
    appview.fail(PROFILE, 502, "error_upstream.json")
    pass_a_day(engine, "polisen")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.PARTIAL and outcome.counts.new == 1
    assert ARREST in stored_posts(engine)
    assert outcome.error is not None and "\n" not in outcome.error
    assert outcome.error.endswith("; the account's follower counts were not read")
    assert account_counts(engine, "polisen") == [(48211, None, 1204)]


def test_edited_post_keeps_its_previous_text_and_changed_counts_add_a_metrics_row(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    before = stored_posts(engine)[FLOOD]
    appview.serve(*NEXT_PAGES)

    outcome = collect_one(config, engine)

    assert outcome.counts.updated == 1
    after = stored_posts(engine)[FLOOD]
    assert "för aktuellt läge" in after.text and after.id == before.id
    with engine.connect() as connection:
        revision = connection.execute(sa.select(post_revisions)).one()
    assert revision.post_id == before.id and revision.text == before.text
    assert [(m.likes, m.reposts) for m in metric_rows(engine, FLOOD)] == [(41, 12), (57, 19)]
    assert len(metric_rows(engine, THREAD_START)) == 1  # unchanged counts add nothing


def test_post_missing_from_a_full_refresh_window_and_from_getposts_is_marked_deleted(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    appview.serve(*NEXT_PAGES)
    appview.existing = [QUOTE]

    collect_one(config, engine)

    (lookup,) = appview.requests(GET_POSTS)
    assert parse_qs(urlsplit(lookup.path).query)["uris"] == [BIKE_CARD]
    rows = stored_posts(engine)
    assert rows[BIKE_CARD].deleted_at is not None
    assert all(rows[key].deleted_at is None for key in rows if key != BIKE_CARD)
    assert BIKE_CARD not in source_row(engine, "polisen").cursor["recent"]


def test_renamed_account_keeps_its_source_row_did_and_posts(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    before = source_row(engine, "polisen")
    appview.rename = "polisen.se"
    appview.serve(*FIRST_PAGES)
    config = configure(tmp_path, engine, appview.url, handle="@polisen.se")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK
    after = source_row(engine, "polisen")
    assert (after.id, after.platform_id, after.handle) == (before.id, DID, "@polisen.se")
    # The changed handle is resolved again, to the same DID: history continues.
    assert [r.query["actor"] for r in appview.requests(PROFILE)] == [
        "polisen.bsky.social",
        "polisen.se",
    ]
    assert {r.query["actor"] for r in appview.requests(FEED)} == {DID}
    rows = stored_posts(engine)
    assert sorted(rows) == sorted(FIRST_RUN)
    assert rows[FLOOD].author == "polisen.se"
    assert rows[FLOOD].url == "https://bsky.app/profile/polisen.se/post/3lbr6yq7ttc2k"


def test_rate_limit_reschedules_at_the_reset_time_and_stores_nothing(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    reset = int((datetime.now(UTC) + timedelta(minutes=10)).timestamp())
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
    appview.fail(FEED, 429, "error_rate_limited.json", headers)
    config = configure(tmp_path, engine, appview.url)

    outcome = collect_one(config, engine)

    until = datetime.fromtimestamp(reset, UTC)
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == f"Bluesky: rate limited until {until:%Y-%m-%d %H:%M} UTC"
    row = source_row(engine, "polisen")
    assert row.next_check_at >= until and row.consecutive_failures == 1
    assert row.platform_id == DID  # the resolution before the limit is kept
    assert stored_posts(engine) == {} and row.cursor == {}


def test_refused_credentials_name_the_environment_variable(
    tmp_path: Path, engine: Engine, appview: AppView, monkeypatch: pytest.MonkeyPatch
) -> None:
    appview.fail(PROFILE, 401, "error_auth_required.json")
    config = configure(tmp_path, engine, appview.url)

    anonymous = collect_one(config, engine)
    monkeypatch.setenv("BLUESKY_ACCESS_TOKEN", "eyJ0eXAiOiJhdCtqd3QifQ.test.token")
    with_token = collect_one(config, engine)

    assert anonymous.error == (
        "Bluesky: the API asks for credentials (HTTP 401): set BLUESKY_ACCESS_TOKEN, "
        "or use the public AppView https://public.api.bsky.app"
    )
    assert with_token.error == (
        "Bluesky: credentials invalid or expired (check BLUESKY_ACCESS_TOKEN): HTTP 401"
    )
    first, second = appview.requests(PROFILE)
    assert "authorization" not in first.headers
    assert second.headers["authorization"] == "Bearer eyJ0eXAiOiJhdCtqd3QifQ.test.token"
    assert "test.token" not in (source_row(engine, "polisen").last_error or "")


def test_vanished_account_is_a_failure_saying_account_not_found_never_a_deletion(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    appview.fail(FEED, 400, "error_account_takedown.json")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        f"Bluesky: account not found: polisen.bsky.social ({DID}) "
        "(AccountTakedown: Account has been suspended)"
    )
    assert all(row.deleted_at is None for row in stored_posts(engine).values())
    assert source_row(engine, "polisen").status == "failing"


def test_unknown_handle_is_account_not_found(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    appview.fail(PROFILE, 400, "error_profile_not_found.json")
    config = configure(tmp_path, engine, appview.url)

    outcome = collect_one(config, engine)

    assert outcome.error == (
        "Bluesky: account not found: polisen.bsky.social (InvalidRequest: Profile not found)"
    )
    assert source_row(engine, "polisen").platform_id is None and appview.requests(FEED) == []


def test_server_error_is_transient_and_keeps_the_cursor(
    tmp_path: Path, engine: Engine, appview: AppView
) -> None:
    config = configure(tmp_path, engine, appview.url)
    collect_one(config, engine)
    cursor = source_row(engine, "polisen").cursor
    appview.fail(FEED, 502, "error_upstream.json")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == "Bluesky: temporary server error (HTTP 502); retried later"
    assert source_row(engine, "polisen").cursor == cursor


def test_cli_collect_all_prints_the_summary_and_exits_zero(
    tmp_path: Path, database_url: str, appview: AppView
) -> None:
    runner = CliRunner()
    body = "[collect]\nbackfill_days = 30\nrefresh_days = 14\n" + bluesky_sources(appview.url)
    config = str(write_config(tmp_path, database_url, body))
    env = {"COLUMNS": "200"}
    assert runner.invoke(app, ["--config", config, "db", "upgrade"], env=env).exit_code == 0

    result = runner.invoke(app, ["--config", config, "collect", "--all"], env=env)

    assert result.exit_code == 0, result.output
    summary = f"1 source: {len(FIRST_RUN)} new, 0 updated, 0 unchanged posts; 0 not modified, "
    assert summary + "0 failed" in result.stdout.splitlines()
    assert "Traceback" not in result.output


# Pure parsing and decisions: no server, no database.

WATCHED = frozenset({"polisen.bsky.social", "krisinformation.se"})


def parsed_items(*names: str) -> dict[str, FeedEntry]:
    entries: dict[str, FeedEntry] = {}
    for name in names:
        for item in load(name)["feed"]:
            entry = parse_feed_item(item, WATCHED)
            assert entry is not None
            entries.setdefault(entry.post.platform_post_id, entry)
    return entries


def test_feed_items_become_posts_with_kinds_media_links_and_counts() -> None:
    entries = parsed_items(*FIRST_PAGES)
    flood = entries[FLOOD].post
    assert flood.kind == "post" and flood.title is None and flood.html is None
    assert flood.text and flood.text.startswith("Översvämning i Gävle: följ @krisinformation.se")
    assert flood.links == (
        "https://polisen.se/aktuellt/handelser/2026/november/23/gavle-oversvamning/",
    )
    assert flood.metrics == {"likes": 41, "reposts": 12, "replies": 3, "quotes": 1, "bookmarks": 0}
    image = flood.media[0]
    assert (image.type, image.width, image.height) == ("image", 1440, 1080)
    assert image.url and image.url.startswith("https://cdn.bsky.app/img/feed_fullsize/")

    repost = entries[REPOST]
    assert repost.post.kind == "repost" and repost.post.metrics is None
    assert repost.post.url == "https://bsky.app/profile/trafikverket.se/post/3lbqz4khs3s2f"
    assert repost.sort_at == datetime(2026, 11, 22, 15, 40, 12, 102000, UTC)  # when reposted

    video = entries[VIDEO].post.media[0]
    assert (video.type, video.width, video.height) == ("video", 1080, 1920)
    assert video.url and video.url.endswith("/playlist.m3u8")
    assert entries[VIDEO].post.tags == ("bedrägeri",)

    card = entries[BIKE_CARD].post
    assert card.links == ("https://polisen.se/utsatt-for-brott/anmal-brott/cykelstold/",)
    assert card.media == (
        Media(
            "other",
            url="https://polisen.se/utsatt-for-brott/anmal-brott/cykelstold/",
            thumbnail_url=card.media[0].thumbnail_url,
            alt_text="Anmäl cykelstöld | Polismyndigheten",
        ),
    )
    assert entries[PINNED].pinned


def test_mentions_keep_watched_accounts_and_only_count_others_even_in_quoted_raw() -> None:
    entries = parsed_items(*FIRST_PAGES)
    flood, quote = entries[FLOOD].post, entries[QUOTE].post
    assert (flood.mentions, flood.other_mentions) == (("krisinformation.se",), 1)
    facets = flood.raw["post"]["record"]["facets"]
    assert [f["features"][0]["$type"].rsplit("#")[-1] for f in facets] == [
        "mention",
        "tag",
        "tag",
        "link",
    ]
    assert CITIZEN_DID not in json.dumps(flood.raw)
    assert CITIZEN_DID not in json.dumps(quote.raw)  # the quoted post mentions her too
    reply = entries[THREAD_REPLY].post.raw["reply"]
    assert {part: ref["uri"] for part, ref in reply.items()} == {
        "root": THREAD_START,
        "parent": THREAD_START,
    }  # the thread context keeps references, not whole posts


def test_a_pinned_post_never_stops_paging_and_is_kept_once_when_wanted() -> None:
    entries = list(parsed_items(*FIRST_PAGES).values())
    pinned = next(e for e in entries if e.pinned)
    newest = next(e for e in entries if not e.pinned)
    old_window = ReadWindow(since=FIXTURE_NOW - timedelta(days=30))
    decision = select_entries([pinned, newest], old_window, {})
    assert decision.kept == (newest,) and not decision.stop

    wide = ReadWindow(since=pinned.sort_at - timedelta(days=1), max_posts=2)
    decision = select_entries([pinned, newest, newest], wide, {})
    assert decision.kept[:2] == (pinned, newest) and decision.stop

    incremental = ReadWindow(since=FIXTURE_NOW - timedelta(days=14), after=newest.sort_at)
    decision = select_entries([pinned, newest], incremental, {})
    assert decision.kept == (newest,) and not decision.stop


def response(status: int, body: Any, **headers: str) -> Response:
    return Response(
        status, "https://public.api.bsky.app/xrpc/x", headers, json.dumps(body).encode()
    )


def test_xrpc_errors_map_to_the_lines_admins_see() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def line(status: int, body: Any, **headers: str) -> str:
        error = describe_error(
            response(status, body, **headers),
            actor="polisen.bsky.social",
            token_env="BLUESKY_ACCESS_TOKEN",
            token_set=False,
            now=now,
        )
        return error.message

    gone = {"error": "AccountDeactivated", "message": "Account is deactivated"}
    assert line(400, gone) == (
        "Bluesky: account not found: polisen.bsky.social (AccountDeactivated: "
        "Account is deactivated)"
    )
    assert line(404, None) == "Bluesky: account not found: polisen.bsky.social (HTTP 404)"
    assert line(400, {"error": "BadCursor", "message": "Malformed cursor"}) == (
        "Bluesky: request refused (HTTP 400 BadCursor: Malformed cursor)"
    )
    assert line(503, {}) == "Bluesky: temporary server error (HTTP 503); retried later"
    assert line(429, {}, **{"ratelimit-reset": "1795435500"}) == (
        "Bluesky: rate limited until 2026-11-23 12:05 UTC"
    )


def test_ratelimit_reset_is_read_as_epoch_seconds_and_small_values_as_delays() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    epoch = int((now + timedelta(minutes=5)).timestamp())
    assert find_rate_limit_reset(response(429, {}, **{"ratelimit-reset": str(epoch)}), now) == (
        now + timedelta(minutes=5)
    )
    assert find_rate_limit_reset(response(429, {}, **{"ratelimit-reset": "90"}), now) == (
        now + timedelta(seconds=90)
    )


def test_the_actor_comes_from_the_handle_or_a_bsky_app_profile_url() -> None:
    assert find_actor("@Polisen.bsky.social ", None) == "polisen.bsky.social"
    assert find_actor(None, "https://bsky.app/profile/krisinformation.se") == "krisinformation.se"
    assert find_actor("did:plc:3vdrgzr2zybocs45yfhcr6ur", None) == DID
    assert find_actor(None, "https://bsky.app/") is None
