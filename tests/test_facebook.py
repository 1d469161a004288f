"""Facebook Pages end to end: Graph API answers from a loopback server, the real aiohttp client,
the real store, both databases.

The fixtures under tests/fixtures/facebook/ are Graph API responses for Katrineholms kommun's
page, dated around ANCHOR; they are served shifted so that ANCHOR is now, which keeps the
backfill and refresh windows meaningful whenever the tests run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from monitor.cli import app
from monitor.collect import SourceOutcome
from monitor.config import Config
from monitor.models import collection_runs, post_metrics, post_revisions, posts, sources
from monitor.types import CollectStatus
from tests.conftest import collect_one, count, source_row, stored_posts, write_config
from tests.conftest import configure as configure_sources
from tests.feedserver import FeedServer, Request, Route
from tests.platforms import account_counts, json_route, pass_a_day

FIXTURES = Path(__file__).parent / "fixtures" / "facebook"
ANCHOR = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TOKEN = "test-facebook-page-token-katrineholm"  # fake; shaped unlike real tokens
PAGE_ID = "104815296219316"
API = "/v21.0"
POSTS_PATH = f"{API}/{PAGE_ID}/posts"
P1 = f"{PAGE_ID}_987654321098765"  # photo, tags two watched pages, a person and a bank
P2 = f"{PAGE_ID}_987654321012345"  # shared link; deleted before the second run
P3 = f"{PAGE_ID}_987654320987654"  # video
P4 = f"{PAGE_ID}_987654320876543"  # album of two photos
PINNED = f"{PAGE_ID}_412345678901234"  # pinned, half a year old
LISTING = {
    None: "posts_1.json",
    "QVFIUlNub3JvanRuaW5n": "posts_2.json",
    "QVFIUkZ1bGxtYWt0aWdl": "posts_3.json",
}
LATER_LISTING = LISTING | {None: "posts_1_later.json"}
WATCHED = """
[[sources]]
platform = "facebook"
handle = "flenskommun"
organisation = "Flens kommun"
enabled = false

[[sources]]
platform = "facebook"
handle = "108295522551234"
organisation = "Region Sörmland"
enabled = false
"""


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEBOOK_ACCESS_TOKEN", TOKEN)


# One shift for the whole run: computed per serve, a second ticking over between two serves
# would move every date and make unchanged posts look edited.
SHIFT = datetime.now(UTC).replace(microsecond=0) - ANCHOR


def load_fixture(name: str) -> Any:
    """A fixture with every Graph timestamp moved so that ANCHOR is (about) now."""
    shift = SHIFT

    def move(match: re.Match[str]) -> str:
        moment = datetime.strptime(match.group(0), "%Y-%m-%dT%H:%M:%S%z") + shift
        return moment.strftime("%Y-%m-%dT%H:%M:%S%z")

    text = (FIXTURES / name).read_text(encoding="utf-8")
    return json.loads(re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", move, text))


def serve_page(server: FeedServer, path: str, fixture: str, status: int = 200) -> None:
    server.add_handler(f"{API}/{path}", lambda _: json_route(load_fixture(fixture), status))


def serve_listing(server: FeedServer, pages: dict[str | None, str]) -> None:
    """The posts edge, paged by `after` like Graph; `paging.next` carries the token the client
    sent, as Graph writes it when the token came as a parameter."""

    def answer(request: Request) -> Route:
        name = pages.get(request.query.get("after"))
        if name is None:
            return json_route({"error": {"message": "unexpected page", "code": 1}}, 500)
        sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        text = json.dumps(load_fixture(name), ensure_ascii=False)
        text = text.replace("{access_token}", sent).replace("{since}", request.query["since"])
        return Route(body=text.encode(), content_type="application/json", validators=False)

    server.add_handler(POSTS_PATH, answer)


def serve_katrineholm(server: FeedServer, pages: dict[str | None, str] = LISTING) -> None:
    serve_page(server, "katrineholmskommun", "page.json")
    server.add_handler(f"{API}/{PAGE_ID}", answer_page_node)
    serve_listing(server, pages)


# The page node's counts, as tests change them between runs; None answers a permission error.
PAGE_COUNTS: dict[str, Any] = {}


def answer_page_node(request: Request) -> Route:
    """The page node by id: its counts when those fields are asked for, as Graph answers only
    the fields asked for (and the id)."""
    if "followers_count" in request.query.get("fields", ""):
        if PAGE_COUNTS.get("refused"):
            return json_route(load_fixture("error_permission.json"), 403)
        return json_route(load_fixture("page_counts.json") | PAGE_COUNTS.get("change", {}))
    return json_route(load_fixture("page.json"))


def configure(
    tmp_path: Path,
    engine: Engine,
    server: FeedServer,
    *,
    collect: str = "",
    handle: str = "katrineholmskommun",
    extra: str = "",
) -> Config:
    body = (
        (f"[collect]\n{collect}\n\n" if collect else "")
        + f'[platforms.facebook]\napi_url = "{server.url(API)}"\n{extra}\n'
        + f'[[sources]]\nplatform = "facebook"\nhandle = "{handle}"\n'
        + 'organisation = "Katrineholms kommun"\nkey = "katrineholm"\n'
        + WATCHED
    )
    return configure_sources(tmp_path, engine, body)


def test_first_run_backfills_every_page_in_the_window_past_an_old_pinned_post(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK, outcome.error
    assert outcome.counts.new == 6  # 30 days: the pinned post and the October posts are older
    rows = stored_posts(engine)
    assert PINNED not in rows
    requested = [r for r in feed_server.requests if r.path.startswith(POSTS_PATH)]
    assert [r.query.get("after") for r in requested] == [
        None,
        "QVFIUlNub3JvanRuaW5n",
        "QVFIUkZ1bGxtYWt0aWdl",
    ]  # the third page reaches past 30 days, so no fourth is asked for
    first = requested[0].query
    assert first["limit"] == "25" and "reactions.summary(total_count)" in first["fields"]
    assert abs(int(first["since"]) - (datetime.now(UTC) - timedelta(days=30)).timestamp()) < 60
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in feed_server.requests)
    by_id = [r for r in feed_server.requests if r.path.startswith(f"{API}/{PAGE_ID}?")]
    assert [r.query["fields"] for r in by_id] == ["followers_count,fan_count"]  # counts only
    assert source_row(engine, "katrineholm").platform_id == PAGE_ID

    photo, link, video, album = rows[P1], rows[P2], rows[P3], rows[P4]
    assert (photo.kind, link.kind, video.kind, album.kind) == ("photo", "post", "video", "photo")
    assert photo.author == "Katrineholms kommun"
    assert (
        photo.url
        == "https://www.facebook.com/katrineholmskommun/posts/pfbid0LekplatsStadsparken3Kd"
    )
    assert photo.text.startswith("Nu öppnar vi den nya lekplatsen")
    assert photo.title is None and photo.html is None
    assert photo.tags == ["katrineholm", "stadsparken"]
    assert photo.media == [
        {
            "type": "image",
            "url": "https://scontent.xx.fbcdn.net/v/t39.30808-6/lekplats_n.jpg?stp=dst-jpg_s720x720&_nc_cat=1",
            "width": 960,
            "height": 720,
        }
    ]
    # Against the fixtures' "now" (fixed when the run started), not the clock: a long suite run
    # reaches this test minutes later.
    fixture_now = ANCHOR + SHIFT
    assert abs(photo.published_at - (fixture_now - timedelta(hours=1))) < timedelta(minutes=1)
    assert link.links == ["https://www.katrineholm.se/nyheter/budget-2027"]
    assert video.media[0]["type"] == "video"
    assert video.media[0]["url"].startswith("https://video.xx.fbcdn.net/")
    assert video.media[0]["thumbnail_url"].endswith("snorojning.jpg")
    assert [m["url"].rsplit("/", 1)[1] for m in album.media] == ["lucia1.jpg", "lucia2.jpg"]
    assert rows[f"{PAGE_ID}_987654320765432"].links == ["https://www.katrineholm.se/avfall"]


def test_no_token_in_requests_cursor_raw_or_errors(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server)
    collect_one(config, engine)

    second_page = next(r for r in feed_server.requests if "after=" in r.path)
    assert "access_token" not in second_page.query
    first_page = next(r for r in feed_server.requests if r.path.startswith(f"{POSTS_PATH}?"))
    assert second_page.query["since"] == first_page.query["since"]
    assert second_page.path.startswith(f"{POSTS_PATH}?")  # our base URL, not graph.facebook.com
    assert all(TOKEN not in r.path for r in feed_server.requests)
    with engine.connect() as connection:
        dumped = json.dumps(
            [list(map(str, row)) for row in connection.execute(sa.select(posts))]
            + [list(map(str, row)) for row in connection.execute(sa.select(sources))]
            + [list(map(str, row)) for row in connection.execute(sa.select(collection_runs))],
            ensure_ascii=False,
        )
    assert TOKEN not in dumped


def test_backfill_stops_at_backfill_posts_without_reading_further_pages(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server, collect="backfill_posts = 4")

    outcome = collect_one(config, engine)

    assert outcome.counts.new == 4
    assert set(stored_posts(engine)) == {P1, P2, P3, P4}
    assert [r.query.get("after") for r in feed_server.requests if POSTS_PATH in r.path] == [
        None,
        "QVFIUlNub3JvanRuaW5n",
    ]


def test_second_run_asks_only_for_posts_since_the_newest_and_uses_the_stored_page_id(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server, collect="refresh_days = 0")
    collect_one(config, engine)
    newest = stored_posts(engine)[P1].published_at
    serve_listing(feed_server, LATER_LISTING)
    feed_server.requests.clear()

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK
    assert outcome.counts.new == 1  # the water shut-off notice
    listing = [r.query for r in feed_server.requests if POSTS_PATH in r.path]
    assert listing[0]["since"] == str(int(newest.timestamp()))
    assert "after" not in listing[0]
    assert len(listing) == 1  # the first page already reaches back past the newest post
    assert [r.path.split("?")[0] for r in feed_server.requests[:1]] == [f"{API}/{PAGE_ID}"]


def test_second_run_rereads_recent_posts_and_appends_changed_counts(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server, collect="refresh_days = 14")
    collect_one(config, engine)
    photo_id, video_id = stored_posts(engine)[P1].id, stored_posts(engine)[P3].id
    serve_listing(feed_server, LATER_LISTING)
    feed_server.requests.clear()

    assert collect_one(config, engine).status is CollectStatus.OK

    listing = [r.query for r in feed_server.requests if POSTS_PATH in r.path]
    since = int(listing[0]["since"])
    assert abs(since - (datetime.now(UTC) - timedelta(days=14)).timestamp()) < 60
    with engine.connect() as connection:
        series = connection.execute(
            sa.select(post_metrics)
            .where(post_metrics.c.post_id == photo_id)
            .order_by(post_metrics.c.id)
        ).all()
    assert [(m.reactions, m.replies, m.reposts) for m in series] == [(128, 14, 9), (161, 19, 12)]
    assert count(engine, post_metrics, post_metrics.c.post_id == video_id) == 1


def test_page_followers_land_in_source_metrics_and_a_change_adds_one_row(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PAGE_COUNTS, "change", {})
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server)
    collect_one(config, engine)
    assert account_counts(engine, "katrineholm") == [(18422, None, None)]  # followers_count

    pass_a_day(engine, "katrineholm")
    collect_one(config, engine)
    assert account_counts(engine, "katrineholm") == [(18422, None, None)]

    # A page that gives only its likes is measured by them.
    PAGE_COUNTS["change"] = {"followers_count": None, "fan_count": 17002}
    pass_a_day(engine, "katrineholm")
    collect_one(config, engine)
    assert account_counts(engine, "katrineholm") == [(18422, None, None), (17002, None, None)]


def test_a_token_refused_the_page_counts_still_collects_the_posts(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PAGE_COUNTS, "refused", True)
    serve_katrineholm(feed_server)

    outcome = collect_one(configure(tmp_path, engine, feed_server), engine)

    assert outcome.status is CollectStatus.PARTIAL and outcome.counts.new == 6
    assert outcome.error is not None and outcome.error.startswith("Facebook: access refused")
    assert outcome.error.endswith("; the account's follower counts were not read")
    assert account_counts(engine, "katrineholm") == []


def test_edited_post_keeps_its_previous_text_as_a_revision(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server)
    collect_one(config, engine)
    serve_listing(feed_server, LATER_LISTING)

    outcome = collect_one(config, engine)

    assert outcome.counts.updated == 1
    edited = stored_posts(engine)[P1]
    assert edited.text.startswith("Nu har vi öppnat")
    with engine.connect() as connection:
        revision = connection.execute(sa.select(post_revisions)).one()
    assert revision.post_id == edited.id
    assert revision.text.startswith("Nu öppnar vi")


def test_recent_post_missing_from_the_listing_is_marked_deleted_when_graph_says_so(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server)
    collect_one(config, engine)
    serve_listing(feed_server, LATER_LISTING)
    serve_page(feed_server, P2, "error_deleted_post.json", status=400)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK
    rows = stored_posts(engine)
    assert rows[P2].deleted_at is not None
    assert rows[P2].text == "Läs mer om budgeten för 2027 på vår webbplats."  # content kept
    assert all(row.deleted_at is None for key, row in rows.items() if key != P2)
    checks = [r for r in feed_server.requests if r.path.startswith(f"{API}/{P2}?")]
    assert len(checks) == 1 and "fields" in checks[0].query
    assert P2 not in source_row(engine, "katrineholm").cursor["recent"]


def test_mentions_keep_watched_pages_and_only_count_the_rest(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server)
    collect_one(config, engine)

    photo = stored_posts(engine)[P1]
    assert photo.mentions == ["flenskommun", "108295522551234"]
    assert photo.other_mentions == 2  # a resident and a bank
    kept = [tag["name"] for tag in photo.raw["message_tags"]]
    assert kept == ["Flens kommun", "Region Sörmland"]
    assert "Anna Lindqvist" not in json.dumps(photo.raw["message_tags"], ensure_ascii=False)


def test_renamed_page_keeps_its_source_row_id_and_posts(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    config = configure(tmp_path, engine, feed_server)
    collect_one(config, engine)
    before = source_row(engine, "katrineholm")
    # The page takes a new username: the old one no longer resolves, the id still does.
    serve_page(feed_server, "katrineholmskommun", "error_page_not_found.json", status=404)
    serve_page(feed_server, PAGE_ID, "page_renamed.json")
    serve_page(feed_server, "katrineholm.kommun", "page_renamed.json")

    assert collect_one(config, engine).status is CollectStatus.OK
    config = configure(tmp_path, engine, feed_server, handle="katrineholm.kommun")
    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK, outcome.error
    after = source_row(engine, "katrineholm")
    assert (after.id, after.platform_id) == (before.id, PAGE_ID)
    assert after.handle == "katrineholm.kommun"
    assert count(engine, posts) == 6
    # The new handle was resolved again, and answered with the same id.
    assert [r for r in feed_server.requests if r.path.startswith(f"{API}/katrineholm.kommun?")]


def error_source(
    tmp_path: Path, engine: Engine, server: FeedServer, extra: str = ""
) -> tuple[SourceOutcome, sa.Row[Any]]:
    config = configure(tmp_path, engine, server, extra=extra)
    outcome = collect_one(config, engine)
    assert outcome.status is CollectStatus.FAILED
    assert count(engine, posts) == 0
    return outcome, source_row(engine, "katrineholm")


@pytest.mark.parametrize(
    ("where", "route", "minutes"),
    [
        (
            "posts",
            lambda: json_route(
                load_fixture("error_rate_limited.json"),
                400,
                {
                    "X-Business-Use-Case-Usage": json.dumps(
                        {
                            PAGE_ID: [
                                {
                                    "type": "pages",
                                    "call_count": 100,
                                    "total_cputime": 12,
                                    "total_time": 15,
                                    "estimated_time_to_regain_access": 17,
                                }
                            ]
                        }
                    ),
                    "X-App-Usage": '{"call_count":37,"total_cputime":5,"total_time":6}',
                },
            ),
            17,
        ),
        (
            "page",
            lambda: json_route(
                {"error": {"message": "Too many requests", "type": "OAuthException", "code": 4}},
                429,
                {"Retry-After": "600"},
            ),
            10,
        ),
    ],
)
def test_rate_limit_reschedules_the_source_and_stores_nothing(
    tmp_path: Path,
    engine: Engine,
    feed_server: FeedServer,
    where: str,
    route: Callable[[], Route],
    minutes: int,
) -> None:
    serve_katrineholm(feed_server)
    path = POSTS_PATH if where == "posts" else f"{API}/katrineholmskommun"
    feed_server.add_handler(path, lambda _: route())
    started = datetime.now(UTC)

    outcome, row = error_source(tmp_path, engine, feed_server)

    until = started + timedelta(minutes=minutes)
    assert outcome.error is not None
    assert outcome.error.startswith(f"Facebook: rate limited until {until:%Y-%m-%d} ")
    assert row.next_check_at >= until - timedelta(seconds=5)
    assert row.last_error == outcome.error
    assert row.cursor == {}


def test_expired_token_names_the_configured_environment_variable(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATRINEHOLM_FB_TOKEN", TOKEN)
    serve_page(feed_server, "katrineholmskommun", "error_token_expired.json", status=401)

    outcome, row = error_source(
        tmp_path, engine, feed_server, extra='access_token_env = "KATRINEHOLM_FB_TOKEN"'
    )

    assert row.last_error == (
        "Facebook: credentials expired: renew the page token in KATRINEHOLM_FB_TOKEN "
        "(Graph error 190/463, fbtrace_id AZx9Yw8Vu7Ts6Rq5Po4Nm3L)"
    )
    assert outcome.http_status == 401


def test_missing_permission_explains_page_public_content_access(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    serve_page(feed_server, f"{PAGE_ID}/posts", "error_permission.json", status=403)

    _, row = error_source(tmp_path, engine, feed_server)

    assert row.last_error.startswith(
        "Facebook: access refused: reading pages you don't manage needs Meta's Page Public "
        "Content Access feature; check the token in FACEBOOK_ACCESS_TOKEN (Graph error 10"
    )
    assert row.platform_id == PAGE_ID  # the page resolved before the posts were refused


def test_unknown_page_is_a_failure_saying_account_not_found(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    serve_page(feed_server, "katrineholmskommun", "error_page_not_found.json", status=404)

    _, row = error_source(tmp_path, engine, feed_server)

    assert row.last_error.startswith(
        "Facebook: account not found: no page 'katrineholmskommun' (Graph error 803"
    )
    assert row.status != "retired" and row.platform_id is None


def test_server_error_is_transient(tmp_path: Path, engine: Engine, feed_server: FeedServer) -> None:
    serve_katrineholm(feed_server)
    serve_page(feed_server, f"{PAGE_ID}/posts", "error_transient.json", status=500)

    outcome, row = error_source(tmp_path, engine, feed_server)

    assert row.last_error == (
        "Facebook: temporary server error (Graph error 2, fbtrace_id ATr4nS1eNt0123456789cd); "
        "retried later"
    )
    assert outcome.http_status == 500 and row.consecutive_failures == 1


def test_cli_collect_all_prints_the_summary_and_exits_zero(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    serve_katrineholm(feed_server)
    body = (
        f'[platforms.facebook]\napi_url = "{feed_server.url(API)}"\n\n'
        '[[sources]]\nplatform = "facebook"\nhandle = "katrineholmskommun"\n'
        'organisation = "Katrineholms kommun"\nkey = "katrineholm"\n'
    )
    config = str(write_config(tmp_path, database_url, body))
    runner = CliRunner()
    env = {"COLUMNS": "200", "FACEBOOK_ACCESS_TOKEN": TOKEN}
    assert runner.invoke(app, ["--config", config, "db", "upgrade"], env=env).exit_code == 0

    result = runner.invoke(app, ["--config", config, "collect", "--all"], env=env)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "1 source: 6 new, 0 updated, 0 unchanged posts; 0 not modified, 0 failed" in lines
    assert TOKEN not in result.output
