"""Mastodon collection end to end: a fake instance on the loopback server, the real aiohttp
client, both databases. The fake pages like Mastodon (max_id, min_id, `Link` headers), three
statuses a page so that a dozen fixtures span several pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from collectors.mastodon import collect_watched_accounts, parse_status
from monitor.cli import app
from monitor.config import Config
from monitor.models import post_metrics, post_revisions, posts, sources
from monitor.types import CollectStatus
from tests.conftest import (
    collect_all,
    configure,
    count,
    only,
    source_row,
    stored_posts,
    write_config,
)
from tests.feedserver import FeedServer, Request, Route
from tests.platforms import (
    account_counts,
    json_route,
    pass_a_day,
    requests_to_endpoint,
    source_table,
)

FIXTURES = Path(__file__).parent / "fixtures" / "mastodon"
ANCHOR = datetime(2026, 11, 26, 6, 45, 10, tzinfo=UTC)  # created_at of the newest fixture status
KRIS_ID = "109347712345678901"
SMHI = "@smhi@mastodon.nu"
TOKEN_ENV = "OMVARLD_TEST_MASTODON_TOKEN"


def load(name: str, now: datetime | None = None) -> Any:
    """A fixture, its times moved so the newest status is an hour old (None: as written)."""
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if now is None:
        return data
    return _shift(data, now - timedelta(hours=1) - ANCHOR)


def _shift(value: Any, delta: timedelta) -> Any:
    if isinstance(value, list):
        return [_shift(v, delta) for v in value]
    if not isinstance(value, dict):
        return value
    shifted = {}
    for key, item in value.items():
        if key in ("created_at", "edited_at") and isinstance(item, str):
            moment = datetime.fromisoformat(item.replace("Z", "+00:00")) + delta
            shifted[key] = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        else:
            shifted[key] = _shift(item, delta)
    return shifted


def ids(statuses: list[dict[str, Any]]) -> list[str]:
    return [s["id"] for s in statuses]


class FakeMastodon:
    """The account endpoints of one instance, with Mastodon's paging semantics."""

    page_size = 3

    def __init__(self, server: FeedServer, now: datetime, *, pinned: bool = False) -> None:
        self.server = server
        self.statuses: list[dict[str, Any]] = load("statuses.json", now)
        self.pinned = load("status_pinned.json", now) if pinned else None
        self.accounts = {"krisinformation@mastodon.nu": load("account_lookup.json")}
        self.failure: Route | None = None  # served instead of the statuses list
        self.headers: dict[str, str] = {}
        reset = (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        self.rate_headers = {
            "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299", "X-RateLimit-Reset": reset,
        }  # fmt: skip
        server.add_handler("/api/v1/accounts/lookup", self.lookup)
        server.add_handler(self.list_path, self.list_statuses)
        known = [*self.statuses, load("status_new.json")]
        for status in known:
            server.add_handler(f"/api/v1/statuses/{status['id']}", self.show_status)

    list_path = f"/api/v1/accounts/{KRIS_ID}/statuses"

    def lookup(self, request: Request) -> Route:
        account = self.accounts.get(request.query.get("acct", "").lower())
        if account is None:
            return json_route({"error": "Record not found"}, status=404)
        return json_route(account)

    def list_statuses(self, request: Request) -> Route:
        if self.failure is not None:
            return self.failure
        query = request.query
        limit = min(int(query.get("limit", 20)), self.page_size)
        newest_first = sorted(self.statuses, key=lambda s: int(s["id"]), reverse=True)
        if "max_id" in query:
            newest_first = [s for s in newest_first if int(s["id"]) < int(query["max_id"])]
        if "min_id" in query:
            above = [s for s in reversed(newest_first) if int(s["id"]) > int(query["min_id"])]
            page = list(reversed(above[:limit]))
        else:
            page = newest_first[:limit]
        first = "max_id" not in query and "min_id" not in query
        body = ([self.pinned] if self.pinned and first else []) + page
        base = self.server.url(self.list_path)
        links = []
        if len(page) == limit:
            links.append(f'<{base}?limit={limit}&max_id={page[-1]["id"]}>; rel="next"')
        if page:
            links.append(f'<{base}?limit={limit}&min_id={page[0]["id"]}>; rel="prev"')
        headers = self.rate_headers | self.headers
        if links:
            headers["Link"] = ", ".join(links)
        return json_route(body, headers=headers)

    def show_status(self, request: Request) -> Route:
        status_id = request.path.rsplit("/", 1)[1]
        for status in self.statuses:
            if status["id"] == status_id:
                return json_route(status)
        return json_route({"error": "Record not found"}, status=404)

    def replace_status(
        self, status_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        self.statuses = [change(s) if s["id"] == status_id else s for s in self.statuses]


def mastodon_source(server: FeedServer, handle: str = "@krisinformation@mastodon.nu") -> str:
    collected = source_table(
        "mastodon",
        handle=handle,
        organisation="Myndigheten för civilt försvar",
        key="krisinformation",
        api_url=server.url(""),
    )
    # SMHI is watched (mentions of it are kept) but not collected in these tests.
    return collected + source_table("mastodon", handle=SMHI, organisation="SMHI", enabled=False)


def setup(
    tmp_path: Path, engine: Engine, server: FeedServer, collect: str = "", **options: Any
) -> tuple[Config, FakeMastodon]:
    fake = FakeMastodon(server, datetime.now(UTC), **options)
    return configure(tmp_path, engine, mastodon_source(server), collect), fake


def list_requests(server: FeedServer) -> list[dict[str, str]]:
    return [r.query for r in requests_to_endpoint(server, FakeMastodon.list_path)]


# ------------------------------------------------------------------------------ parsing


def test_statuses_become_posts_of_their_kind_with_media_tags_links_and_counts() -> None:
    statuses = load("statuses.json")
    watched = collect_watched_accounts([("@krisinformation@mastodon.nu", None), (SMHI, None)])
    parsed = [parse_status(s, watched=watched, local_domain="mastodon.nu") for s in statuses]

    assert [p.kind for p in parsed] == ["post", "reply", "repost", "quote", *["post"] * 7]
    storm, reply, boost, quoted, film, _, podcast, *_ = parsed
    assert storm.platform_post_id == "117681390223403504"
    assert storm.url == "https://mastodon.nu/@krisinformation/117681390223403504"
    assert storm.author == "@krisinformation@mastodon.nu"
    assert storm.published_at == ANCHOR and storm.title is None and storm.language == "sv"
    assert storm.text and storm.text.startswith("Orange varning för storm längs Norrlandskusten")
    assert storm.html and storm.html.startswith("<p>Orange varning")
    assert storm.tags == ("stormvarning", "krisinformation")
    assert storm.links == (
        "https://www.krisinformation.se/nyheter/2026/november/storm-norrlandskusten",
    )
    assert storm.metrics == {"replies": 3, "reposts": 41, "likes": 57, "quotes": 2}
    (image,) = storm.media
    assert (image.type, image.width, image.height) == ("image", 1600, 1200)
    assert image.url and image.url.endswith("/original/71204352.jpg")
    assert image.thumbnail_url and "/small/" in image.thumbnail_url
    assert image.alt_text and image.alt_text.startswith("Karta över Norrlandskusten")

    assert boost.platform_post_id == statuses[2]["id"] != statuses[2]["reblog"]["id"]
    assert boost.url == statuses[2]["reblog"]["url"]
    assert boost.text and boost.text.startswith("Orange varning för storm utfärdas")
    assert boost.author == "@krisinformation@mastodon.nu" and boost.metrics is None
    assert boost.links == ("https://www.smhi.se/vader/varningar-och-brandrisk",)

    assert quoted.links[-1] == statuses[3]["quote"]["quoted_status"]["url"]
    assert reply.metrics == {"replies": 1, "reposts": 0, "likes": 4, "quotes": 0}
    (video,) = film.media
    assert (video.type, video.duration_s, video.width, video.height) == ("video", 48, 1280, 720)
    (audio,) = podcast.media
    assert (audio.type, audio.duration_s, audio.width) == ("audio", 1834, None)


def test_only_watched_accounts_are_kept_as_mentions_and_others_are_counted() -> None:
    statuses = load("statuses.json")
    watched = collect_watched_accounts([(SMHI, None)])
    storm, reply, _, _, film, *_ = (
        parse_status(s, watched=watched, local_domain="mastodon.nu") for s in statuses
    )
    assert (storm.mentions, storm.other_mentions) == ((SMHI,), 0)
    assert storm.raw["mentions"] == statuses[0]["mentions"]
    assert (reply.mentions, reply.other_mentions) == ((), 1)
    assert reply.raw["mentions"] == [] and "erik_s" not in json.dumps(reply.raw["mentions"])
    assert (film.mentions, film.other_mentions) == ((), 2)  # @msb is not configured


# ---------------------------------------------------------------------- collection runs


def test_first_collection_resolves_the_handle_and_backfills_pages_until_the_window_ends(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.OK and outcome.counts.new == 9  # 30 days of 11
    assert set(stored_posts(engine)) == set(ids(fake.statuses[:9]))
    assert [r.query for r in requests_to_endpoint(feed_server, "/api/v1/accounts/lookup")] == [
        {"acct": "krisinformation@mastodon.nu"}
    ]
    pages = list_requests(feed_server)
    assert [p.get("max_id") for p in pages] == [None, *ids(fake.statuses)[2:9:3]]
    assert all(p["limit"] == "40" and p["exclude_replies"] == "false" for p in pages)
    row = source_row(engine, "krisinformation")
    assert row.platform_id == KRIS_ID
    assert row.cursor["newest_id"] == fake.statuses[0]["id"]
    assert row.cursor["refresh_from"] == fake.statuses[8]["id"]  # the newest older than 14 days
    by_id = stored_posts(engine)
    assert by_id[fake.statuses[0]["id"]].mentions == [SMHI]
    assert by_id[fake.statuses[1]["id"]].other_mentions == 1
    assert by_id[fake.statuses[1]["id"]].raw["mentions"] == []
    assert count(engine, post_metrics) == 8  # every post but the boost


def test_backfill_stops_at_backfill_posts(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server, "[collect]\nbackfill_posts = 4\n\n")
    outcome = only(collect_all(config, engine))
    assert outcome.counts.new == 4
    assert set(stored_posts(engine)) == set(ids(fake.statuses[:4]))
    assert [p["limit"] for p in list_requests(feed_server)] == ["4", "4"]


def test_a_pinned_old_post_listed_first_neither_stops_paging_nor_moves_the_cursor(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server, pinned=True)
    outcome = only(collect_all(config, engine))
    assert outcome.counts.new == 9
    assert fake.pinned is not None and fake.pinned["id"] not in stored_posts(engine)
    assert len(list_requests(feed_server)) == 4
    assert source_row(engine, "krisinformation").cursor["newest_id"] == fake.statuses[0]["id"]


def test_second_run_reads_forward_from_the_refresh_window_without_a_lookup(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    collect_all(config, engine)
    fresh = load("status_new.json", datetime.now(UTC))
    fake.statuses.insert(0, fresh)
    before = len(feed_server.requests)

    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK
    assert (outcome.counts.new, outcome.counts.updated, outcome.counts.metrics) == (1, 0, 1)
    second = feed_server.requests[before:]
    assert all(r.path.startswith(FakeMastodon.list_path) for r in second)  # no lookup
    refresh_from = fake.statuses[9]["id"]  # S9: fake.statuses now starts with the new status
    oldest_first = list(reversed(ids(fake.statuses[:9])))
    assert [r.query["min_id"] for r in second] == [refresh_from, *oldest_first[2::3]]
    assert stored_posts(engine)[fresh["id"]].kind == "post"
    cursor = source_row(engine, "krisinformation").cursor
    assert (cursor["newest_id"], cursor["refresh_from"]) == (fresh["id"], refresh_from)


def test_changed_counts_append_a_metrics_row_and_unchanged_ones_do_not(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    collect_all(config, engine)
    storm = fake.statuses[0]["id"]
    fake.replace_status(storm, lambda s: s | {"favourites_count": 112, "reblogs_count": 77})

    outcome = only(collect_all(config, engine))
    assert (outcome.counts.updated, outcome.counts.metrics) == (0, 1)
    with engine.connect() as connection:
        history = connection.execute(
            sa.select(post_metrics.c.likes, post_metrics.c.reposts, post_metrics.c.replies)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .where(posts.c.platform_post_id == storm)
            .order_by(post_metrics.c.id)
        ).all()
    assert [tuple(r) for r in history] == [(57, 41, 3), (112, 77, 3)]
    assert count(engine, post_revisions) == 0


def test_account_counts_come_from_the_lookup_then_from_the_listed_statuses(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    collect_all(config, engine)
    assert account_counts(engine, "krisinformation") == [(24813, None, 1187)]

    collect_all(config, engine)  # the same counts in every status's account: no row
    assert account_counts(engine, "krisinformation") == [(24813, None, 1187)]

    grown = fake.statuses[0]["account"] | {"followers_count": 24901, "statuses_count": 1188}
    fake.statuses = [s | {"account": grown} for s in fake.statuses]
    before = len(feed_server.requests)
    collect_all(config, engine)
    assert all(r.path.startswith(FakeMastodon.list_path) for r in feed_server.requests[before:])
    assert account_counts(engine, "krisinformation") == [
        (24813, None, 1187),
        (24901, None, 1188),
    ]


def test_without_listed_statuses_the_account_is_asked_once_a_day(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    collect_all(config, engine)
    fake.statuses = []
    account = load("account_lookup.json") | {"followers_count": 24850}
    feed_server.add_handler(f"/api/v1/accounts/{KRIS_ID}", lambda _: json_route(account))
    pass_a_day(engine, "krisinformation")

    collect_all(config, engine)
    collect_all(config, engine)

    assert len(requests_to_endpoint(feed_server, f"/api/v1/accounts/{KRIS_ID}")) == 1
    assert account_counts(engine, "krisinformation") == [
        (24813, None, 1187),
        (24850, None, 1187),
    ]


def test_an_edited_post_keeps_its_previous_text_as_a_revision(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    collect_all(config, engine)
    edited = load("status_edited.json", datetime.now(UTC))
    fake.replace_status(edited["id"], lambda _: edited)

    outcome = only(collect_all(config, engine))
    assert outcome.counts.updated == 1
    with engine.connect() as connection:
        revision = connection.execute(sa.select(post_revisions)).one()
        post = connection.execute(sa.select(posts).where(posts.c.id == revision.post_id)).one()
    assert post.platform_post_id == edited["id"]
    assert "Länsstyrelserna i Gävleborg och Dalarna" in post.text
    assert "Länsstyrelsen i Gävleborg uppmanar" in revision.text


def test_a_recent_post_gone_from_the_list_and_404_on_refresh_is_marked_deleted(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    collect_all(config, engine)
    podcast = fake.statuses.pop(6)

    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK
    checks = requests_to_endpoint(feed_server, f"/api/v1/statuses/{podcast['id']}")
    assert [r.status for r in checks] == [404]
    deleted = {k for k, r in stored_posts(engine).items() if r.deleted_at is not None}
    assert deleted == {podcast["id"]}
    assert podcast["id"] not in source_row(engine, "krisinformation").cursor["recent"]


def test_a_renamed_account_keeps_its_source_row_id_and_posts(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    collect_all(config, engine)
    first = source_row(engine, "krisinformation")

    # The account is renamed on the instance: the stored id still reaches it, no lookup needed.
    renamed = {"username": "krisinfo", "acct": "krisinfo", "url": "https://mastodon.nu/@krisinfo"}
    fake.statuses = [s | {"account": s["account"] | renamed} for s in fake.statuses]
    fake.accounts = {"krisinfo@mastodon.nu": load("account_lookup.json") | renamed}
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK and outcome.counts.new == 0
    assert len(requests_to_endpoint(feed_server, "/api/v1/accounts/lookup")) == 1
    assert stored_posts(engine)[fake.statuses[0]["id"]].author == "@krisinfo@mastodon.nu"

    # The admin then writes the new handle: it resolves to the same id and the history goes on.
    config = configure(
        tmp_path, engine, mastodon_source(feed_server, handle="@krisinfo@mastodon.nu")
    )
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK and outcome.counts.new == 0
    lookups = requests_to_endpoint(feed_server, "/api/v1/accounts/lookup")
    assert [r.query["acct"] for r in lookups] == [
        "krisinformation@mastodon.nu",
        "krisinfo@mastodon.nu",
    ]
    after = source_row(engine, "krisinformation")
    assert (after.id, after.platform_id) == (first.id, KRIS_ID)
    assert len(stored_posts(engine)) == 9


def test_rate_limit_429_reschedules_after_the_reset_and_stores_nothing(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    reset = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    fake.failure = json_route(
        {"error": "Too many requests"},
        status=429,
        headers={  # Mastodon's own format: ISO 8601 with milliseconds and Z
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        },
    )
    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == f"Mastodon: rate limited until {reset:%Y-%m-%d %H:%M} UTC"
    row = source_row(engine, "krisinformation")
    assert row.next_check_at >= reset and row.last_error == outcome.error
    assert row.platform_id == KRIS_ID  # the lookup before the limit is kept
    assert count(engine, posts) == 0


def test_an_exhausted_rate_limit_stops_paging_keeps_the_first_page_and_waits(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    reset = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    fake.headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset.isoformat()}
    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.PARTIAL and outcome.counts.new == 3
    assert outcome.error == (
        "Mastodon: rate limit reached after 2 requests; the rest is collected after"
        f" {reset:%Y-%m-%d %H:%M} UTC"
    )
    assert len(list_requests(feed_server)) == 1
    row = source_row(engine, "krisinformation")
    assert row.next_check_at >= reset
    # The interrupted backfill is done again, not left with a hole (the lookup's counts are in).
    assert "refresh_from" not in row.cursor and "newest_id" not in row.cursor


def test_a_refused_token_names_its_environment_variable(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "hemlig-token-123")
    fake = FakeMastodon(feed_server, datetime.now(UTC))
    fake.failure = json_route({"error": "The access token is invalid"}, status=401)
    platform = (
        f'[platforms.mastodon]\napi_url = "{feed_server.url("")}"\n'
        f'access_token_env = "{TOKEN_ENV}"\n\n'
    )
    config = configure(tmp_path, engine, mastodon_source(feed_server), platform)
    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        f"Mastodon: credentials invalid or expired (check {TOKEN_ENV}): HTTP 401"
    )
    sent = requests_to_endpoint(feed_server, FakeMastodon.list_path)[0].headers
    assert sent["authorization"] == "Bearer hemlig-token-123"
    assert "hemlig" not in json.dumps(source_row(engine, "krisinformation")._asdict(), default=str)


def test_an_instance_refusing_anonymous_reads_is_collected_from_its_rss_feed(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    fake.failure = json_route({"error": "This method requires an authenticated user"}, status=403)
    feed_server.add_fixture("/@krisinformation.rss", "mastodon.xml")
    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.OK and outcome.error is None
    by_id = stored_posts(engine)
    assert "117681390223402445" in by_id and len(by_id) == 3
    storm = by_id["117681390223402445"]
    assert (storm.kind, storm.author) == ("post", "@krisinformation@mastodon.nu")
    assert storm.tags == ["Stormvarning", "krisinformation"]
    assert source_row(engine, "krisinformation").platform_id == KRIS_ID


def test_the_rss_fallback_says_what_max_entries_left_out(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server, "[collect]\nmax_entries = 2\n\n")
    fake.failure = json_route({"error": "This method requires an authenticated user"}, status=401)
    feed_server.add_fixture("/@krisinformation.rss", "mastodon.xml")

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.PARTIAL
    assert outcome.error == "3 entries in the feed; the newest 2 taken ([collect] max_entries)"
    assert len(stored_posts(engine)) == 2


def test_the_rss_fallback_honours_retry_after(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server, "[collect]\ninterval = 900\n\n")
    fake.failure = json_route({"error": "This method requires an authenticated user"}, status=401)
    feed_server.add("/@krisinformation.rss", status=429, headers={"Retry-After": "7200"})
    before = datetime.now(UTC)

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        "Mastodon: mastodon.nu refuses API reads without a token (HTTP 401), and its RSS feed"
        " answered HTTP 429; set MASTODON_ACCESS_TOKEN to an access token from mastodon.nu"
    )
    assert source_row(engine, "krisinformation").next_check_at >= before + timedelta(hours=2)


def test_refused_reads_without_a_feed_fail_naming_the_token_variable(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    fake.failure = json_route({"error": "This method requires an authenticated user"}, status=401)
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        "Mastodon: mastodon.nu refuses API reads without a token (HTTP 401), and its RSS feed"
        " answered HTTP 404; set MASTODON_ACCESS_TOKEN to an access token from mastodon.nu"
    )


def test_an_unknown_account_is_a_failure_saying_account_not_found(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    fake.accounts = {}
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        "Mastodon: account not found: krisinformation@mastodon.nu (HTTP 404); check the handle"
    )
    row = source_row(engine, "krisinformation")
    assert (row.status, row.platform_id, row.retired_at) == ("failing", None, None)


def test_a_server_error_is_transient(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    config, fake = setup(tmp_path, engine, feed_server)
    fake.failure = json_route({"error": "Service Unavailable"}, status=503)
    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == "Mastodon: temporary server error (HTTP 503); retried later"
    assert source_row(engine, "krisinformation").consecutive_failures == 1


def test_cli_collect_all_prints_the_summary_and_exits_zero(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    FakeMastodon(feed_server, datetime.now(UTC))
    config = str(write_config(tmp_path, database_url, mastodon_source(feed_server)))
    runner = CliRunner()
    env = {"COLUMNS": "200"}
    assert runner.invoke(app, ["--config", config, "db", "upgrade"], env=env).exit_code == 0

    result = runner.invoke(app, ["--config", config, "collect", "--all"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "1 source: 9 new, 0 updated, 0 unchanged posts; 0 not modified, 0 failed" in lines
    assert "Traceback" not in result.output
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        query = sa.select(sources.c.key, sources.c.platform_id).order_by(sources.c.key)
        assert [tuple(r) for r in connection.execute(query)] == [
            ("krisinformation", KRIS_ID),
            ("mastodon:smhi@mastodon.nu", None),
        ]
    engine.dispose()
