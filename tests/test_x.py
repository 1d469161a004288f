"""X collection end to end: tweepy against X API v2 answers on the loopback server, both databases.

`FakeX` serves the documented shapes from tests/fixtures/x: user lookup, the user's timeline paged
with `next_token` and filtered by `since_id`/`start_time`, post lookup with `resource-not-found`
errors, and `x-rate-limit-*` headers on every answer.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from collectors.x import find_endpoint, first_of_next_month, plan_refresh_reads
from collectors.x_posts import Account, parse_tweets, snowflake_time
from monitor.cli import app
from monitor.config import Config
from monitor.models import api_usage, collection_runs, post_metrics, post_revisions, posts
from monitor.types import CollectStatus
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

FIXTURES = Path(__file__).parent / "fixtures" / "x"
TOKEN = "test-x-bearer-token-omvarld"  # fake; shaped unlike real tokens
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
POLISEN_ID = "1346478470"
# Post ids in timeline.json and timeline_new.json, newest first.
T0, T1, T2, T3 = (
    "2127296569144246273",
    "2126953064035254273",
    "2126678160962486273",
    "2126398195364790273",
)
T4, T5, T6, T1_EDITED = (
    "2125541252920246273",
    "2124412565713846273",
    "2123023412229046273",
    "2126959347102646273",
)
T7, T8, PINNED = "2121895983313846273", "2120185965573046273", "1921852848337846273"
IN_WINDOW = [T1, T2, T3, T4, T5, T6, T7, T8]  # newer than 2026-11-09, the window most tests use


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


class FakeX:
    """The X API v2 endpoints the collector uses, over posts loaded from fixtures."""

    def __init__(self, server: FeedServer, page_size: int = 3) -> None:
        self.server = server
        self.page_size = page_size
        self.users: dict[str, dict[str, Any]] = {}  # id -> user object
        self.tweets: dict[str, dict[str, Any]] = {}  # id -> post object, every version
        self.timelines: dict[str, list[str]] = {}  # user id -> current versions, newest first
        self.media: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.failures: dict[str, Route] = {}  # path -> an answer given instead
        self.remaining = 1500
        self.reset = int((datetime.now(UTC) + timedelta(minutes=15)).timestamp())
        server.add_handler("/2/tweets", self._lookup)

    def add_account(self, user_fixture: str, timeline_fixture: str) -> None:
        user = load(user_fixture)["data"]
        self.users[user["id"]] = user
        self.timelines[user["id"]] = []
        self.rename(user["id"], user["username"])
        self.server.add_handler(f"/2/users/{user['id']}/tweets", self._timeline)
        self.server.add_handler(f"/2/users/{user['id']}", self._user_by_id)
        self.add_posts(user["id"], timeline_fixture)

    def add_posts(self, user_id: str, fixture: str) -> None:
        """Publish the fixture's posts; a new version of an edited post replaces the old one."""
        document = load(fixture)
        for item in document.get("includes", {}).get("media", []):
            self.media[item["media_key"]] = item
        timeline = self.timelines[user_id]
        for tweet in document["data"]:
            self.tweets[tweet["id"]] = tweet
            history = tweet["edit_history_tweet_ids"]
            for older in history[:-1]:
                self.tweets[older]["edit_history_tweet_ids"] = history
                if older in timeline:
                    timeline.remove(older)
            timeline.append(tweet["id"])
        timeline.sort(key=int, reverse=True)

    def rename(self, user_id: str, username: str) -> None:
        """The account's username becomes `username`; the old one is no longer found."""
        user = self.users[user_id]
        old = user["username"]
        if old != username:
            self.server.add_handler(f"/2/users/by/username/{old}", self._unknown_user)
        user["username"] = username
        self.server.add_handler(f"/2/users/by/username/{username}", self._user)

    def fail(self, path: str, status: int, fixture: str, **headers: str) -> None:
        self.failures[path] = json_route(load(fixture), status, headers)

    def requests(self, path: str) -> list[Request]:
        return requests_to_endpoint(self.server, path)

    def _headers(self) -> dict[str, str]:
        self.remaining -= 1
        return {
            "x-rate-limit-limit": "1500",
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(self.reset),
        }

    def _failure(self, request: Request) -> Route | None:
        return self.failures.get(urlsplit(request.path).path)

    def _user(self, request: Request) -> Route:
        name = urlsplit(request.path).path.rsplit("/", 1)[-1]
        user = next(u for u in self.users.values() if u["username"] == name)
        return self._failure(request) or json_route({"data": user}, headers=self._headers())

    def _user_by_id(self, request: Request) -> Route:
        """User lookup by id, with only the fields asked for (and id, name, username)."""
        user = self.users[urlsplit(request.path).path.rsplit("/", 1)[-1]]
        wanted = set(request.query.get("user.fields", "").split(",")) | {"id", "name", "username"}
        shown = {k: v for k, v in user.items() if k in wanted}
        return self._failure(request) or json_route({"data": shown}, headers=self._headers())

    def _unknown_user(self, request: Request) -> Route:
        name = urlsplit(request.path).path.rsplit("/", 1)[-1]
        document = load("user_not_found.json")
        document["errors"][0] |= {
            "value": name,
            "resource_id": name,
            "detail": f"Could not find user with username: [{name}].",
        }
        return self._failure(request) or json_route(document, headers=self._headers())

    def _timeline(self, request: Request) -> Route:
        failure = self._failure(request)
        if failure:
            return failure
        user_id = urlsplit(request.path).path.split("/")[3]
        query = request.query
        since_id = int(query.get("since_id", "0"))
        start = query.get("start_time")
        matching = [
            i
            for i in self.timelines[user_id]
            if int(i) > since_id and (not start or self.tweets[i]["created_at"] >= start)
        ]
        offset = int(query.get("pagination_token", "7140dibdnow9c7btw000")[-3:])
        size = min(int(query.get("max_results", "10")), self.page_size)
        page = matching[offset : offset + size]
        pinned = self.users[user_id].get("pinned_tweet_id")
        if offset == 0 and pinned and pinned not in page:
            page = [pinned, *page]  # a pinned post heads the first page, whatever its age
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta |= {"newest_id": max(page, key=int), "oldest_id": min(page, key=int)}
        if offset + size < len(matching):
            meta["next_token"] = f"7140dibdnow9c7btw{offset + size:03d}"
        return json_route(self._document(page) | {"meta": meta}, headers=self._headers())

    def _lookup(self, request: Request) -> Route:
        failure = self._failure(request)
        if failure:
            return failure
        ids = request.query["ids"].split(",")
        found = [i for i in ids if i in self.tweets and i not in self.deleted]
        document = self._document(found)
        missing = [i for i in ids if i not in found]
        if missing:
            document["errors"] = [
                {
                    "value": i,
                    "detail": f"Could not find tweet with ids: [{i}].",
                    "title": "Not Found Error",
                    "resource_type": "tweet",
                    "parameter": "ids",
                    "resource_id": i,
                    "type": NOT_FOUND,
                }
                for i in missing
            ]
        return json_route(document, headers=self._headers())

    def _document(self, ids: list[str]) -> dict[str, Any]:
        data = [copy.deepcopy(self.tweets[i]) for i in ids]
        keys = [k for t in data for k in t.get("attachments", {}).get("media_keys", [])]
        document: dict[str, Any] = {"data": data} if data else {}
        if keys:
            document["includes"] = {"media": [self.media[k] for k in keys]}
        return document


@pytest.fixture
def fake_x(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FakeX:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    fake = FakeX(feed_server)
    fake.add_account("user_polisen.json", "timeline.json")
    return fake


def days_since(day: date) -> int:
    return (datetime.now(UTC) - datetime(day.year, day.month, day.day, tzinfo=UTC)).days


def x_sources(handle: str = "@polisen") -> str:
    polisen = source_table("x", handle=handle, organisation="Polisen", key="polisen")
    return polisen + source_table(
        "x",
        handle="@krisinformation",
        organisation="Myndigheten för samhällsskydd och beredskap",
        key="krisinformation",
        enabled=False,
    )


def configure(
    tmp_path: Path,
    engine: Engine,
    server: FeedServer,
    *,
    handle: str = "@polisen",
    backfill_days: int | None = None,
    backfill_posts: int = 200,
    platform: str = "",
) -> Config:
    """A config for @polisen (and a paused @krisinformation, a watched account), X's API on the
    loopback server; by default the backfill reaches back to 2026-11-09."""
    days = days_since(date(2026, 11, 9)) if backfill_days is None else backfill_days
    body = (
        f"[collect]\nbackfill_days = {days}\nbackfill_posts = {backfill_posts}\n"
        "refresh_days = 3650\n\n"
        f'[platforms.x]\napi_url = "{server.url("")}"\n{platform}\n' + x_sources(handle)
    )
    return configure_sources(tmp_path, engine, body)


def reads(engine: Engine) -> int:
    with engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.sum(api_usage.c.units))).scalar()
    return int(total or 0)


# ------------------------------------------------------------------------------------ history


def test_first_run_pages_through_the_backfill_window_past_a_pinned_post(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK, outcome.error
    assert outcome.counts.new == 8
    assert (
        sorted(stored_posts(engine), key=int, reverse=True) == IN_WINDOW
    )  # the old pinned post: no
    pages = fake_x.requests(f"/2/users/{POLISEN_ID}/tweets")
    assert len(pages) == 3  # 1 + 3, 3, 2 posts: the pinned post did not end the paging
    first = pages[0].query
    assert first["max_results"] == "100" and "since_id" not in first
    assert first["start_time"].startswith(
        (datetime.now(UTC) - timedelta(days=days_since(date(2026, 11, 9)))).strftime("%Y-%m-%dT")
    )
    assert "attachments.media_keys" in first["expansions"]
    assert "edit_history_tweet_ids" in first["tweet.fields"]
    assert [p.query.get("pagination_token") for p in pages] == [
        None,
        "7140dibdnow9c7btw003",
        "7140dibdnow9c7btw006",
    ]
    assert pages[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert pages[0].headers["user-agent"].startswith("Omvarld/")
    row = source_row(engine, "polisen")
    assert row.platform_id == POLISEN_ID
    assert row.cursor["newest_id"] == T1 and row.cursor["user_id"] == POLISEN_ID
    assert reads(engine) == 1 + 9  # the user lookup and every post answered, the pinned one too


def test_first_run_stops_at_backfill_posts_and_keeps_the_newest(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server, backfill_days=3650, backfill_posts=5)
    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK and outcome.counts.new == 5
    assert sorted(stored_posts(engine), key=int, reverse=True) == [T1, T2, T3, T4, T5]
    pages = fake_x.requests(f"/2/users/{POLISEN_ID}/tweets")
    assert [p.query["max_results"] for p in pages] == ["5", "5"]  # X's smallest page is 5


def test_stored_fields_kinds_media_and_mentions_policy(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    collect_one(configure(tmp_path, engine, fake_x.server), engine)
    rows = stored_posts(engine)

    photo = rows[T1]
    assert (photo.kind, photo.author, photo.language) == ("post", "polisen", "sv")
    assert photo.url == f"https://x.com/polisen/status/{T1}"
    assert photo.published_at == datetime(2026, 11, 29, 8, 15, 2, tzinfo=UTC)
    assert "köer & förseningar" in photo.text and photo.title is None
    assert photo.tags == ["polisen", "stockholm"]
    assert photo.links == []  # the photo's own x.com link is the attachment
    assert photo.media == [
        {
            "type": "image",
            "url": "https://pbs.twimg.com/media/GdQ3rT5yU1iXkA0.jpg",
            "alt_text": "Polisbil och avspärrning på E4 i gryningsljus.",
            "width": 1200,
            "height": 800,
        }
    ]
    video = rows[T5]
    assert video.kind == "post" and video.text.endswith("#bedrägeri")  # the note's full text
    assert video.links == ["https://polisen.se/utsatt-for-brott/bedrageri/"]
    assert video.tags == ["bedrägeri"]
    assert video.media[0]["type"] == "video" and video.media[0]["duration_s"] == 95
    assert video.media[0]["thumbnail_url"].startswith("https://pbs.twimg.com/amplify_video_thumb/")

    reply, repost, quote = rows[T2], rows[T3], rows[T4]
    assert (reply.kind, repost.kind, quote.kind) == ("reply", "repost", "quote")
    assert reply.links == ["https://polisen.se/anmal-till-polisen/"]
    # Watched accounts are kept by handle; citizens and other accounts only counted.
    assert (repost.mentions, repost.other_mentions) == (["krisinformation"], 0)
    assert (reply.mentions, reply.other_mentions) == ([], 1)
    assert (quote.mentions, quote.other_mentions) == ([], 2)
    assert reply.raw["entities"]["mentions"] == []
    assert "in_reply_to_user_id" not in reply.raw
    assert "anna_svensson_87" not in json.dumps(reply.raw["entities"])
    assert repost.raw["entities"]["mentions"][0]["username"] == "krisinformation"
    assert TOKEN not in json.dumps([dict(r._mapping) for r in rows.values()], default=str)

    with engine.connect() as connection:
        counts = connection.execute(
            sa.select(post_metrics).join(posts).where(posts.c.platform_post_id == T5)
        ).one()
    assert (counts.views, counts.likes, counts.reposts, counts.replies) == (152300, 880, 340, 45)
    assert (counts.quotes, counts.bookmarks, counts.reactions) == (21, 190, None)


# -------------------------------------------------------------------------------- incremental


def test_second_run_reads_only_newer_posts_and_an_edit_becomes_a_revision(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    original = stored_posts(engine)[T1]
    fake_x.add_posts(POLISEN_ID, "timeline_new.json")  # a new post, and T1 edited

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK, outcome.error
    assert (outcome.counts.new, outcome.counts.updated) == (1, 1)
    latest = fake_x.requests(f"/2/users/{POLISEN_ID}/tweets")[-1].query
    assert latest["since_id"] == T1 and "start_time" not in latest
    assert len(fake_x.requests("/2/users/by/username/polisen")) == 1  # the id is remembered
    rows = stored_posts(engine)
    edited = rows[T1]  # keyed by the first version's id
    assert T1_EDITED not in rows and edited.id == original.id
    assert edited.text.startswith("Uppdatering:") and edited.url.endswith(T1_EDITED)
    assert edited.published_at == original.published_at  # not the time of the edit
    with engine.connect() as connection:
        revision = connection.execute(sa.select(post_revisions)).one()
    assert revision.post_id == original.id and revision.text == original.text
    # The other recent posts were re-read for their counts, in one lookup.
    (lookup,) = fake_x.requests("/2/tweets")
    assert sorted(lookup.query["ids"].split(","), key=int, reverse=True) == [
        i for i in IN_WINDOW if i != T1
    ]
    assert source_row(engine, "polisen").cursor["newest_id"] == T0


def test_changed_counts_append_a_metrics_row_and_unchanged_ones_do_not(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    fake_x.tweets[T1]["public_metrics"] |= {"like_count": 530, "impression_count": 61002}

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK and outcome.counts.metrics == 1
    assert outcome.counts.updated == 0
    with engine.connect() as connection:
        series = connection.execute(
            sa.select(post_metrics.c.likes, post_metrics.c.views)
            .join(posts)
            .where(posts.c.platform_post_id == T1)
            .order_by(post_metrics.c.id)
        ).all()
    assert [tuple(r) for r in series] == [(412, 48210), (530, 61002)]
    assert reads(engine) == 10 + 1 + 8  # the pinned post heading the page, the eight re-read


def test_public_metrics_come_with_the_lookup_and_daily_as_one_billed_read(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    (lookup,) = fake_x.requests("/2/users/by/username/polisen")
    assert "public_metrics" in lookup.query["user.fields"].split(",")
    assert account_counts(engine, "polisen") == [(412873, None, 38412)]
    first = reads(engine)

    pass_a_day(engine, "polisen")
    collect_one(config, engine)  # unchanged: read, billed, and no row written
    (by_id,) = fake_x.requests(f"/2/users/{POLISEN_ID}")
    assert by_id.query["user.fields"] == "public_metrics"
    assert account_counts(engine, "polisen") == [(412873, None, 38412)]
    assert reads(engine) == first + 1 + 8 + 1  # the pinned post, the eight re-read, the user

    fake_x.users[POLISEN_ID]["public_metrics"] |= {"followers_count": 413020}
    collect_one(config, engine)  # the same day: not asked again
    assert len(fake_x.requests(f"/2/users/{POLISEN_ID}")) == 1
    pass_a_day(engine, "polisen")
    collect_one(config, engine)
    assert account_counts(engine, "polisen") == [(412873, None, 38412), (413020, None, 38412)]


def test_a_failed_user_lookup_keeps_the_new_posts_and_names_the_problem(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    fake_x.add_posts(POLISEN_ID, "timeline_new.json")
    fake_x.fail(f"/2/users/{POLISEN_ID}", 503, "error_503.json")
    pass_a_day(engine, "polisen")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.PARTIAL and outcome.counts.new == 1
    assert outcome.error == (
        "X: temporary server error (HTTP 503); retried later; the account's follower counts"
        " were not read"
    )
    assert T0 in stored_posts(engine)
    assert account_counts(engine, "polisen") == [(412873, None, 38412)]


def test_post_reported_not_found_on_refresh_is_marked_deleted(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    fake_x.deleted.add(T2)

    assert collect_one(config, engine).status is CollectStatus.OK
    rows = stored_posts(engine)
    assert rows[T2].deleted_at is not None and rows[T2].text  # dated, content kept
    assert all(rows[i].deleted_at is None for i in IN_WINDOW if i != T2)
    assert T2 not in source_row(engine, "polisen").cursor["recent"]


def test_failed_refresh_keeps_the_new_posts_and_advances_the_cursor(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    fake_x.add_posts(POLISEN_ID, "timeline_new.json")
    fake_x.fail("/2/tweets", 503, "error_503.json")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.PARTIAL and outcome.counts.new == 1
    assert outcome.error == (
        "X: temporary server error (HTTP 503); retried later; counts of recent posts not refreshed"
    )
    row = source_row(engine, "polisen")
    assert row.status == "ok" and row.cursor["newest_id"] == T0


def test_renamed_account_keeps_its_source_row_id_and_posts(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    before = source_row(engine, "polisen")
    fake_x.rename(POLISEN_ID, "polisen_sverige")

    # The old handle no longer resolves, but the stored id still reads the account.
    assert collect_one(config, engine).status is CollectStatus.OK
    # The admin updates the handle: the new name resolves to the same id.
    renamed = configure(tmp_path, engine, fake_x.server, handle="@polisen_sverige")
    outcome = collect_one(renamed, engine)

    assert outcome.status is CollectStatus.OK, outcome.error
    assert len(fake_x.requests("/2/users/by/username/polisen_sverige")) == 1
    after = source_row(engine, "polisen")
    assert (after.id, after.platform_id) == (before.id, POLISEN_ID)
    rows = stored_posts(engine)
    assert sorted(rows, key=int, reverse=True) == IN_WINDOW
    assert rows[T1].author == "polisen_sverige"


# ------------------------------------------------------------------------------------- errors


def test_429_reschedules_the_source_until_the_reset_and_stores_nothing(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    reset = int((datetime.now(UTC) + timedelta(minutes=12)).timestamp())
    fake_x.fail(
        f"/2/users/{POLISEN_ID}/tweets", 429, "error_429.json",
        **{"x-rate-limit-limit": "1500", "x-rate-limit-remaining": "0",
           "x-rate-limit-reset": str(reset)},
    )  # fmt: skip
    outcome = collect_one(configure(tmp_path, engine, fake_x.server), engine)

    until = datetime.fromtimestamp(reset, UTC)
    assert outcome.status is CollectStatus.FAILED and outcome.http_status == 429
    assert outcome.error == f"X: rate limited until {until:%Y-%m-%d %H:%M} UTC"
    row = source_row(engine, "polisen")
    assert row.next_check_at >= until and row.last_error == outcome.error
    assert row.cursor == {} and stored_posts(engine) == {}


def test_spent_rate_limit_in_headers_stops_paging_and_keeps_what_was_read(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    fake_x.remaining = 2  # the first timeline page spends the last call
    outcome = collect_one(configure(tmp_path, engine, fake_x.server), engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and outcome.error.startswith("X: rate limited until ")
    assert len(fake_x.requests(f"/2/users/{POLISEN_ID}/tweets")) == 1
    assert sorted(stored_posts(engine), key=int, reverse=True) == [T1, T2, T3]  # billed, so kept
    row = source_row(engine, "polisen")
    assert row.cursor == {}  # the next run reads the whole window again
    assert row.next_check_at >= datetime.fromtimestamp(fake_x.reset, UTC)


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [
        (401, "error_401.json", "X: credentials invalid or expired: check OMVARLD_X (HTTP 401)"),
        (
            403,
            "error_403_client_not_enrolled.json",
            "X: access refused (HTTP 403): When authenticating requests to the Twitter API v2"
            " endpoints, you must use keys and tokens from a Twitter developer App that is"
            " attached to a Project.",
        ),
    ],
    ids=["401", "403"],
)
def test_refused_credentials_name_the_environment_variable(
    tmp_path: Path,
    engine: Engine,
    fake_x: FakeX,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    fixture: str,
    expected: str,
) -> None:
    monkeypatch.setenv("OMVARLD_X", TOKEN)
    fake_x.fail("/2/users/by/username/polisen", status, fixture)
    config = configure(tmp_path, engine, fake_x.server, platform='bearer_token_env = "OMVARLD_X"')
    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED and outcome.http_status == status
    assert outcome.error and outcome.error.startswith(expected)
    assert "OMVARLD_X" in outcome.error and TOKEN not in outcome.error
    assert source_row(engine, "polisen").status == "failing"


def test_usage_cap_is_reported_as_quota_exhausted_until_next_month(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    fake_x.fail(f"/2/users/{POLISEN_ID}/tweets", 429, "error_usage_capped.json")
    outcome = collect_one(configure(tmp_path, engine, fake_x.server), engine)

    assert outcome.error == (
        "X: the app's API usage cap is reached: Usage cap exceeded: Monthly product cap;"
        " collection resumes when X resets the cap"
    )
    assert source_row(engine, "polisen").next_check_at >= first_of_next_month(datetime.now(UTC))


@pytest.mark.parametrize("answered", ["errors", "http-404"])
def test_unknown_account_fails_as_not_found_and_deletes_nothing(
    tmp_path: Path, engine: Engine, fake_x: FakeX, answered: str
) -> None:
    if answered == "http-404":
        fake_x.fail("/2/users/by/username/polisen_sthlm_gammal", 404, "error_401.json")
    else:
        fake_x.server.add_handler(
            "/2/users/by/username/polisen_sthlm_gammal",
            lambda request: json_route(load("user_not_found.json")),
        )
    config = configure(tmp_path, engine, fake_x.server, handle="@polisen_sthlm_gammal")
    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and outcome.error.startswith("X: account @polisen_sthlm_gammal not found")
    assert "\n" not in outcome.error
    assert source_row(engine, "polisen").status == "failing" and stored_posts(engine) == {}


def test_vanished_account_fails_without_marking_its_posts_deleted(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    gone = {
        "errors": [
            {
                "value": POLISEN_ID,
                "detail": f"Could not find user with id: [{POLISEN_ID}].",
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "id",
                "resource_id": POLISEN_ID,
                "type": NOT_FOUND,
            }
        ]
    }
    fake_x.failures[f"/2/users/{POLISEN_ID}/tweets"] = json_route(gone)
    outcome = collect_one(config, engine)

    assert outcome.error == (
        f"X: account @polisen not found (id {POLISEN_ID}): Could not find user with id:"
        f" [{POLISEN_ID}]."
    )
    assert all(r.deleted_at is None for r in stored_posts(engine).values())


def test_server_error_is_transient(tmp_path: Path, engine: Engine, fake_x: FakeX) -> None:
    fake_x.fail(f"/2/users/{POLISEN_ID}/tweets", 503, "error_503.json")
    outcome = collect_one(configure(tmp_path, engine, fake_x.server), engine)

    assert outcome.status is CollectStatus.FAILED and outcome.http_status == 503
    assert outcome.error == "X: temporary server error (HTTP 503); retried later"
    row = source_row(engine, "polisen")
    assert (row.status, row.consecutive_failures) == ("failing", 1)


def test_unreachable_api_is_one_line(tmp_path: Path, engine: Engine, fake_x: FakeX) -> None:
    body = (
        '[platforms.x]\napi_url = "http://127.0.0.1:9"\n\n'
        '[[sources]]\nplatform = "x"\nhandle = "@polisen"\norganisation = "Polisen"\n'
    )
    config = configure_sources(tmp_path, engine, body)
    outcome = collect_one(config, engine)
    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == "X: cannot connect to 127.0.0.1"


def test_runs_record_the_bytes_x_answered_and_its_status(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server)
    collect_one(config, engine)
    first_run = served_bytes(fake_x.server, fake_x.server.requests)
    done = len(fake_x.server.requests)
    fake_x.fail(f"/2/users/{POLISEN_ID}/tweets", 503, "error_503.json")
    collect_one(config, engine)

    ok, failed = runs(engine, "polisen")
    assert (ok.status, ok.http_status, ok.bytes_received) == ("ok", 200, first_run)
    # A failed attempt counts what it received too: the error's body.
    assert (failed.status, failed.http_status) == ("failed", 503)
    assert failed.bytes_received == served_bytes(fake_x.server, fake_x.server.requests[done:])


def served_bytes(server: FeedServer, requests: list[Request]) -> int:
    """The bodies of the answers to these requests, made again by the server's handlers."""
    return sum(len(server.handlers[urlsplit(r.path).path](r).body) for r in requests)


def runs(engine: Engine, key: str) -> list[sa.Row]:
    row = source_row(engine, key)
    query = sa.select(collection_runs).where(collection_runs.c.source_id == row.id)
    with engine.connect() as connection:
        return list(connection.execute(query.order_by(collection_runs.c.id)))


# ------------------------------------------------------------------------------------- budget


def test_spent_monthly_budget_stops_x_collection_until_next_month(
    tmp_path: Path, engine: Engine, fake_x: FakeX
) -> None:
    config = configure(tmp_path, engine, fake_x.server, platform="monthly_read_budget = 7")
    first = collect_one(config, engine)

    # One read for the user, a page of at most six (the pinned post and three), then too
    # little is left for X's smallest page of five.
    assert [p.query["max_results"] for p in fake_x.requests(f"/2/users/{POLISEN_ID}/tweets")] == [
        "6"
    ]
    message = "X monthly read budget of 7 reads spent; X collection resumes next month"
    assert first.status is CollectStatus.FAILED and first.error == message
    assert sorted(stored_posts(engine), key=int, reverse=True) == [T1, T2, T3]
    assert reads(engine) == 5
    next_month = first_of_next_month(datetime.now(UTC))
    assert source_row(engine, "polisen").next_check_at >= next_month

    calls = len(fake_x.server.requests)
    again = collect_one(config, engine)
    assert again.error == message and len(fake_x.server.requests) == calls


def test_first_of_next_month_rolls_over_the_year() -> None:
    assert first_of_next_month(datetime(2026, 11, 30, 23, 59, tzinfo=UTC)) == datetime(
        2026, 12, 1, tzinfo=UTC
    )
    assert first_of_next_month(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("today", "spent_before_today", "spent_today", "refreshed_today", "sources", "expected"),
    [
        # 10,000 reads, 4,000 spent before 21 November: 600 a day for ten days, 200 a source.
        (date(2026, 11, 21), 4_000, 0, 0, 3, 200),
        (date(2026, 11, 21), 4_000, 0, 150, 3, 50),  # this source refreshed 150 today
        (date(2026, 11, 21), 4_000, 580, 0, 3, 20),  # new posts took most of today's 600
        (date(2026, 11, 21), 4_000, 700, 0, 3, 0),  # today's share is spent
        (date(2026, 11, 1), 0, 0, 0, 1, 333),  # 10,000 over 30 days
        (date(2026, 11, 30), 9_000, 0, 0, 1, 1_000),  # the last day may use what is left
        (date(2026, 12, 31), 12_000, 0, 0, 1, 0),  # over budget already
    ],
)
def test_refresh_reads_spread_the_remaining_budget_over_the_month(
    today: date,
    spent_before_today: int,
    spent_today: int,
    refreshed_today: int,
    sources: int,
    expected: int,
) -> None:
    allowance = plan_refresh_reads(
        budget=10_000,
        spent_before_today=spent_before_today,
        spent_today=spent_today,
        refreshed_today=refreshed_today,
        sources=sources,
        today=today,
    )
    assert allowance == expected


def test_no_budget_refreshes_everything() -> None:
    allowance = plan_refresh_reads(
        budget=None,
        spent_before_today=10**9,
        spent_today=0,
        refreshed_today=0,
        sources=5,
        today=date(2026, 11, 21),
    )
    assert allowance is None


# ------------------------------------------------------------------------------ pure helpers


def test_edited_version_is_keyed_by_its_first_id_and_dated_by_it() -> None:
    document = load("timeline_new.json")
    account = Account(POLISEN_ID, "polisen")
    new, edited = parse_tweets(document, account=account, watched=frozenset({"krisinformation"}))
    assert new.platform_post_id == T0 and new.mentions == ("krisinformation",)
    assert edited.platform_post_id == T1 and edited.url.endswith(T1_EDITED)
    assert edited.published_at == snowflake_time(T1) == datetime(2026, 11, 29, 8, 15, 2, tzinfo=UTC)


def test_endpoints_are_named_without_ids() -> None:
    assert find_endpoint(f"/2/users/{POLISEN_ID}/tweets") == "/2/users/:id/tweets"
    assert find_endpoint("/2/users/by/username/polisen") == "/2/users/by/username/:username"
    assert find_endpoint("/2/tweets") == "/2/tweets"


# ---------------------------------------------------------------------------------------- CLI


def test_cli_collect_all_collects_x_and_prints_the_summary(
    tmp_path: Path, database_url: str, fake_x: FakeX
) -> None:
    days = days_since(date(2026, 11, 9))
    body = (
        f"[collect]\nbackfill_days = {days}\nrefresh_days = 3650\n\n"
        f'[platforms.x]\napi_url = "{fake_x.server.url("")}"\n\n' + x_sources()
    )
    config = str(write_config(tmp_path, database_url, body))
    runner = CliRunner()
    env = {"COLUMNS": "200", "X_BEARER_TOKEN": TOKEN}
    assert runner.invoke(app, ["--config", config, "db", "upgrade"], env=env).exit_code == 0

    result = runner.invoke(app, ["--config", config, "collect", "--all"], env=env)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "1 source: 8 new, 0 updated, 0 unchanged posts; 0 not modified, 0 failed" in lines
    assert any("polisen" in line and "ok" in line for line in lines)
    status = runner.invoke(app, ["--config", config, "status"], env=env)
    assert "X reads this month: 10 (no budget set)" in status.stdout
