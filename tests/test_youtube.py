"""YouTube collection end to end: the Data API and the channel feed served on loopback, the real
aiohttp client, both databases; and the pure parsing functions on their own."""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from collectors.youtube import parse_duration, read_description, read_uploads_page
from monitor.cli import app
from monitor.models import api_usage, collection_runs, post_metrics, post_revisions, posts, sources
from monitor.types import CollectStatus
from tests.conftest import collect_one, configure, count, source_row, stored_posts, write_config
from tests.feedserver import FeedServer, Request, Route
from tests.platforms import (
    account_counts,
    json_route,
    pass_a_day,
    requests_to_endpoint,
    source_table,
)

FIXTURES = Path(__file__).parent / "fixtures" / "youtube"
# The fixtures are written as if it were this moment; every timestamp is moved to today's.
ANCHOR = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SHIFT = datetime.now(UTC).replace(microsecond=0) - ANCHOR
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(Z|\+00:00)")
API = "/youtube/v3"
KEY = "test-youtube-api-key-never-stored"  # fake; shaped unlike real keys
CHANNEL = "UCx4Rk9Vb2TqWmHs7LpNzA3g"
UPLOADS = "UUx4Rk9Vb2TqWmHs7LpNzA3g"
FEED_PATH = f"/feeds/videos.xml?channel_id={CHANNEL}"
PAGE_2, PAGE_3, PAGE_4 = "EAAaBlBUOkNBUQ", "EAAaBlBUOkNBYw", "EAAaBlBUOkNBaQ"
# The six videos of the last 30 days, newest first; the first four are younger than 14 days.
RECENT = ["dK3v9Qm2TfA", "Xr7bLpW0sNe", "h_4YcZt8uJk", "Lm8nB2vC4xZ"]
BACKFILLED = [*RECENT, "pO9iU8yT7rE", "aS1dF2gH3jK"]
OUT_OF_ORDER = "Qw3ErT5yU7i"
NEW_VIDEO = "nM3bV5cX7zA"


def shift_times(text: str) -> str:
    def moved(match: re.Match[str]) -> str:
        moment = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC) + SHIFT
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + match.group(2)

    return TIMESTAMP.sub(moved, text)


def load(name: str) -> Any:
    return json.loads(shift_times((FIXTURES / name).read_text(encoding="utf-8")))


class FakeYouTube:
    """channels.list, playlistItems.list and videos.list on the loopback server, answering from
    the fixtures as the Data API does; tests change the data between runs."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.channel = load("channels.json")
        self.handles = {"@skatteverket"}
        self.pages = {
            "": load("playlist_items_page1.json"),
            PAGE_2: load("playlist_items_page2.json"),
            PAGE_3: load("playlist_items_page3.json"),
        }
        self.videos = {v["id"]: v for v in load("videos.json")["items"]}
        self.failures: dict[str, Route] = {}  # endpoint -> the answer replacing the normal one
        for endpoint in ("channels", "playlistItems", "videos"):
            server.add_handler(f"{API}/{endpoint}", functools.partial(self._answer, endpoint))
        self.feed_url = server.add(
            FEED_PATH,
            body=shift_times((FIXTURES / "channel_feed.xml").read_text(encoding="utf-8")).encode(),
            content_type="application/atom+xml; charset=UTF-8",
        )

    @property
    def api_url(self) -> str:
        return self.server.url(API)

    def requests(self, endpoint: str) -> list[Request]:
        return requests_to_endpoint(self.server, f"{API}/{endpoint}")

    def video(self, video_id: str) -> dict[str, Any]:
        return self.videos[video_id]

    def publish_new_video(self) -> None:
        """A video published after the first run, listed right after the out-of-order one."""
        self.pages[""]["items"].insert(1, load("playlist_item_new.json"))

    def _answer(self, endpoint: str, request: Request) -> Route:
        if endpoint in self.failures:
            return self.failures[endpoint]
        query = request.query
        if endpoint == "channels":
            found = query.get("forHandle", "").lower() in self.handles or query.get("id") == CHANNEL
            return json_route(self.channel if found else load("channels_none.json"))
        if endpoint == "playlistItems":
            return json_route(self.pages[query.get("pageToken", "")])
        items = [self.videos[i] for i in query["id"].split(",") if i in self.videos]
        return json_route(
            {
                "kind": "youtube#videoListResponse",
                "etag": "kNbq3lL1dXh0v5Y2mJc8wWb2tQs",
                "items": items,
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
            }
        )


@pytest.fixture
def youtube(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FakeYouTube:
    monkeypatch.setenv("YOUTUBE_API_KEY", KEY)
    return FakeYouTube(feed_server)


def youtube_source(
    handle: str = "@skatteverket", key: str = "skatteverket", **extra: str | bool
) -> str:
    return source_table("youtube", handle=handle, organisation="Skatteverket", key=key, **extra)


def settings(youtube: FakeYouTube, collect: str = "", platform: str = "") -> str:
    """The [collect] and [platforms.youtube] tables, pointing the API at the loopback server."""
    text = f"[collect]\n{collect}\n" if collect else ""
    return text + f'[platforms.youtube]\napi_url = "{youtube.api_url}"\n{platform}\n'


def units_today(engine: Engine) -> int:
    with engine.connect() as connection:
        units = connection.execute(
            sa.select(api_usage.c.units).where(api_usage.c.platform == "youtube")
        ).scalar()
    return units or 0


# ---------------------------------------------------------------------------- the API, end to end


def test_first_run_backfills_thirty_days_over_pages_past_an_out_of_order_video(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK and outcome.error is None
    assert outcome.counts.new == 6
    assert sorted(stored_posts(engine)) == sorted(BACKFILLED)  # not the 2025 video, nor October's
    (channels,) = youtube.requests("channels")
    assert channels.query["forHandle"] == "@skatteverket"
    assert channels.query["part"] == "id,snippet,contentDetails,statistics"  # one unit for both
    pages = youtube.requests("playlistItems")
    assert [r.query.get("pageToken") for r in pages] == [None, PAGE_2, PAGE_3]  # never PAGE_4
    assert {(r.query["playlistId"], r.query["maxResults"]) for r in pages} == {(UPLOADS, "50")}
    (videos,) = youtube.requests("videos")
    assert videos.query["id"].split(",") == BACKFILLED
    assert videos.query["part"] == "snippet,contentDetails,statistics,liveStreamingDetails"
    row = source_row(engine, "skatteverket")
    assert row.platform_id == CHANNEL
    assert row.cursor["uploads"] == UPLOADS and sorted(row.cursor["recent"]) == sorted(RECENT)
    assert units_today(engine) == 1 + 3 + 1


def test_video_fields_counts_and_live_streams_are_stored(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)

    video = stored_posts(engine)["dK3v9Qm2TfA"]
    assert video.kind == "video"
    assert video.url == "https://www.youtube.com/watch?v=dK3v9Qm2TfA"
    assert video.author == "Skatteverket"
    assert video.title == "Så fungerar rot- och rutavdraget 2027"
    assert video.text.startswith("Vilka arbeten ger rätt till rot- och rutavdrag")
    assert video.html is None and video.language == "sv"
    assert video.published_at.replace(tzinfo=UTC) == ANCHOR + SHIFT - timedelta(
        hours=25, minutes=59, seconds=48
    )
    assert video.tags == ["rotavdrag", "rutavdrag", "Skatteverket"]
    assert video.links == ["https://www.skatteverket.se/rotochrut"]
    assert video.media == [
        {
            "type": "video",
            "url": "https://www.youtube.com/watch?v=dK3v9Qm2TfA",
            "thumbnail_url": "https://i.ytimg.com/vi/dK3v9Qm2TfA/hqdefault.jpg",
            "duration_s": 253,
        }
    ]
    assert video.raw["statistics"]["viewCount"] == "1234"
    assert stored_posts(engine)["Lm8nB2vC4xZ"].kind == "live"
    with engine.connect() as connection:
        counts = connection.execute(
            sa.select(post_metrics.c.views, post_metrics.c.likes, post_metrics.c.replies).where(
                post_metrics.c.post_id == video.id
            )
        ).one()
        everything = json.dumps(
            [
                [list(r) for r in connection.execute(sa.select(table))]
                for table in (posts, sources, collection_runs)
            ],
            default=str,
        )
    assert tuple(counts) == (1234, 42, 7)
    assert KEY not in everything


def test_backfill_stops_at_backfill_posts_before_the_window_ends(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    body = settings(youtube, collect="backfill_posts = 4") + youtube_source()
    config = configure(tmp_path, engine, body)

    outcome = collect_one(config, engine)

    assert outcome.counts.new == 4
    assert sorted(stored_posts(engine)) == sorted(RECENT)
    assert [r.query.get("pageToken") for r in youtube.requests("playlistItems")] == [None, PAGE_2]


def test_second_run_reads_only_new_uploads_and_refreshes_recent_videos(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    youtube.server.requests.clear()
    youtube.publish_new_video()

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK
    assert (outcome.counts.new, outcome.counts.updated, outcome.counts.unchanged) == (1, 0, 4)
    assert youtube.requests("channels") == []  # the channel id and playlist are remembered
    (page,) = youtube.requests("playlistItems")  # the first page reaches the last run's newest
    assert "pageToken" not in page.query and page.query["playlistId"] == UPLOADS
    (videos,) = youtube.requests("videos")
    assert videos.query["id"].split(",") == [NEW_VIDEO, *RECENT]
    assert all(r.query["key"] == KEY for r in youtube.server.requests)
    assert NEW_VIDEO in stored_posts(engine)
    assert units_today(engine) == 5 + 2


def test_changed_counts_append_a_metrics_row_only_for_that_video(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    statistics = youtube.video("dK3v9Qm2TfA")["statistics"]
    statistics |= {"viewCount": "2051", "likeCount": "57", "commentCount": "9"}

    outcome = collect_one(config, engine)

    assert (outcome.counts.updated, outcome.counts.metrics) == (0, 1)
    assert count(engine, post_revisions) == 0
    with engine.connect() as connection:
        history = connection.execute(
            sa.select(post_metrics.c.views, post_metrics.c.likes, post_metrics.c.replies)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .where(posts.c.platform_post_id == "dK3v9Qm2TfA")
            .order_by(post_metrics.c.id)
        ).all()
    assert [tuple(r) for r in history] == [(1234, 42, 7), (2051, 57, 9)]
    assert count(engine, post_metrics) == 6 + 1


def test_channel_statistics_come_with_the_resolving_call_and_daily_at_one_unit(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    assert account_counts(engine, "skatteverket") == [(61200, 48213907, 812)]
    assert units_today(engine) == 5  # the statistics came with the resolving call

    youtube.server.requests.clear()
    collect_one(config, engine)  # the same day: the counts are not asked for again
    assert youtube.requests("channels") == []
    pass_a_day(engine, "skatteverket")
    collect_one(config, engine)  # the next day, unchanged: asked, and no row written
    (statistics,) = youtube.requests("channels")
    assert statistics.query["part"] == "statistics" and statistics.query["id"] == CHANNEL
    assert account_counts(engine, "skatteverket") == [(61200, 48213907, 812)]

    youtube.channel["items"][0]["statistics"] |= {"subscriberCount": "61315", "videoCount": "813"}
    pass_a_day(engine, "skatteverket")
    collect_one(config, engine)
    assert account_counts(engine, "skatteverket") == [
        (61200, 48213907, 812),
        (61315, 48213907, 813),
    ]
    assert units_today(engine) == 5 + 2 + 3 + 3  # each daily statistics call is one unit


def test_a_hidden_subscriber_count_stays_null(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    youtube.channel["items"][0]["statistics"] |= {"hiddenSubscriberCount": True}
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    assert account_counts(engine, "skatteverket") == [(None, 48213907, 812)]


def test_a_failed_statistics_call_keeps_the_videos_and_says_so_in_one_line(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    youtube.publish_new_video()
    youtube.failures["channels"] = json_route(load("error_backend.json"), status=503)
    pass_a_day(engine, "skatteverket")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.PARTIAL and outcome.counts.new == 1
    assert NEW_VIDEO in stored_posts(engine)
    assert outcome.error is not None and "\n" not in outcome.error
    assert outcome.error.endswith("the account's follower counts were not read")
    assert account_counts(engine, "skatteverket") == [(61200, 48213907, 812)]


def test_edited_title_keeps_the_previous_version_as_a_revision(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    original = stored_posts(engine)["Xr7bLpW0sNe"]
    youtube.video("Xr7bLpW0sNe")["snippet"]["title"] = "Flytta till Sverige – så folkbokför du dig"

    outcome = collect_one(config, engine)

    assert (outcome.counts.new, outcome.counts.updated) == (0, 1)
    edited = stored_posts(engine)["Xr7bLpW0sNe"]
    assert edited.title == "Flytta till Sverige – så folkbokför du dig"
    with engine.connect() as connection:
        revision = connection.execute(sa.select(post_revisions)).one()
    assert (revision.post_id, revision.title) == (original.id, original.title)


def test_recent_video_missing_from_the_api_is_marked_deleted(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    del youtube.videos["h_4YcZt8uJk"]

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK
    deleted = {key for key, row in stored_posts(engine).items() if row.deleted_at is not None}
    assert deleted == {"h_4YcZt8uJk"}
    assert "h_4YcZt8uJk" not in source_row(engine, "skatteverket").cursor["recent"]


def test_renamed_channel_keeps_its_source_row_id_and_posts(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    before = source_row(engine, "skatteverket")
    youtube.handles = {"@skatteverketsverige"}
    youtube.channel["items"][0]["snippet"]["customUrl"] = "@skatteverketsverige"
    youtube.server.requests.clear()
    config = configure(
        tmp_path, engine, settings(youtube) + youtube_source(handle="@skatteverketsverige")
    )

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK and outcome.counts.new == 0
    after = source_row(engine, "skatteverket")
    assert (after.id, after.platform_id, after.handle) == (
        before.id,
        CHANNEL,
        "@skatteverketsverige",
    )
    # The changed handle is resolved again, to the same channel: history continues.
    (channels,) = youtube.requests("channels")
    assert channels.query["forHandle"] == "@skatteverketsverige"
    assert len(stored_posts(engine)) == 6 and count(engine, sources) == 1


def test_mentions_keep_watched_channels_and_only_count_the_others(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    watched = youtube_source("@Krisinformation", "krisinformation", enabled=False)
    config = configure(tmp_path, engine, settings(youtube) + youtube_source() + watched)
    collect_one(config, engine)

    video = stored_posts(engine)["dK3v9Qm2TfA"]
    assert video.mentions == ["@Krisinformation"]
    assert video.other_mentions == 1  # @kalle.svensson88; not the e-mail address
    assert stored_posts(engine)["Xr7bLpW0sNe"].mentions == []


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("route", "reason", "waits"),
    [
        (
            json_route(load("error_too_many.json"), 429, {"Retry-After": "3600"}),
            "rateLimitExceeded",
            True,
        ),
        (json_route(load("error_rate_limit.json"), 403), "rateLimitExceeded", False),
    ],
    ids=["429-retry-after", "403-rateLimitExceeded"],
)
def test_rate_limit_fails_the_attempt_reschedules_and_stores_nothing(
    tmp_path: Path,
    engine: Engine,
    youtube: FakeYouTube,
    route: Route,
    reason: str,
    waits: bool,
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    youtube.failures["playlistItems"] = route
    before = datetime.now(UTC)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and outcome.error.startswith(f"YouTube: rate limited ({reason})")
    row = source_row(engine, "skatteverket")
    assert row.last_error == outcome.error and row.consecutive_failures == 1
    if waits:
        assert " until " in outcome.error
        assert row.next_check_at.replace(tzinfo=UTC) >= before + timedelta(seconds=3600)
    assert count(engine, posts) == 0
    assert row.platform_id is None and row.cursor == {}


@pytest.mark.parametrize(
    ("fixture", "status", "reason"),
    [
        ("error_key_invalid.json", 400, "API_KEY_INVALID"),
        ("error_forbidden.json", 403, "forbidden"),
    ],
)
def test_refused_key_fails_naming_the_environment_variable(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube, fixture: str, status: int, reason: str
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    youtube.failures["channels"] = json_route(load(fixture), status)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        f"YouTube: credentials invalid ({reason}, HTTP {status}): check the API key in the "
        "environment variable YOUTUBE_API_KEY"
    )
    assert outcome.http_status == status
    assert count(engine, posts) == 0


@pytest.mark.parametrize("answer", ["no-items", "404"])
def test_unknown_handle_is_account_not_found(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube, answer: str
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source("@skatteverket_nu"))
    if answer == "404":
        youtube.failures["channels"] = json_route(load("error_playlist_not_found.json"), 404)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and outcome.error.startswith(
        "YouTube: account not found: no handle @skatteverket_nu"
    )
    assert source_row(engine, "skatteverket").status == "failing"


def test_vanished_channel_is_a_failure_and_never_deletes_its_videos(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    collect_one(config, engine)
    youtube.failures["playlistItems"] = json_route(load("error_playlist_not_found.json"), 404)
    youtube.channel = load("channels_none.json")

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and outcome.error.startswith(
        f"YouTube: account not found: no channel {CHANNEL}"
    )
    assert [r.deleted_at for r in stored_posts(engine).values()] == [None] * 6
    assert source_row(engine, "skatteverket").platform_id == CHANNEL


def test_server_error_is_transient_and_stores_nothing(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source())
    youtube.failures["videos"] = json_route(load("error_backend.json"), 503)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == "YouTube: temporary server error (HTTP 503); retried later"
    assert count(engine, posts) == 0
    assert source_row(engine, "skatteverket").cursor == {}
    assert units_today(engine) == 5  # Google bills failed calls too


# ---------------------------------------------------------------------- quota and the channel feed


def test_spent_budget_falls_back_to_the_channel_feed_then_asks_the_api_nothing(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    body = settings(youtube, platform="daily_quota_units = 2")
    config = configure(tmp_path, engine, body + youtube_source(url=youtube.feed_url))

    first = collect_one(config, engine)

    assert first.status is CollectStatus.PARTIAL
    assert first.error == ("YouTube: quota spent; used the channel feed (2 of 2 units used today)")
    assert sorted(stored_posts(engine)) == sorted(
        [NEW_VIDEO, "dK3v9Qm2TfA", "Xr7bLpW0sNe", "h_4YcZt8uJk"]
    )
    video = stored_posts(engine)["dK3v9Qm2TfA"]
    assert video.url == "https://www.youtube.com/watch?v=dK3v9Qm2TfA" and video.html is None
    assert video.links == ["https://www.skatteverket.se/rotochrut"]
    assert units_today(engine) == 2 and source_row(engine, "skatteverket").platform_id == CHANNEL
    api_calls = len(youtube.server.requests) - 1

    second = collect_one(config, engine)

    assert second.status is CollectStatus.NOT_MODIFIED  # the feed answered 304
    assert second.error and "quota spent; used the channel feed" in second.error
    feed_requests = [r for r in youtube.server.requests if r.path == FEED_PATH]
    assert len(youtube.server.requests) - len(feed_requests) == api_calls  # no API call
    assert feed_requests[-1].status == 304
    assert units_today(engine) == 2


def test_quota_exceeded_answer_takes_only_new_videos_from_the_feed(
    tmp_path: Path, engine: Engine, youtube: FakeYouTube
) -> None:
    config = configure(tmp_path, engine, settings(youtube) + youtube_source(url=youtube.feed_url))
    collect_one(config, engine)
    youtube.failures["playlistItems"] = json_route(load("error_quota.json"), 403)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.PARTIAL
    assert outcome.error == (
        "YouTube: quota spent; used the channel feed (the API answered quotaExceeded)"
    )
    assert (outcome.counts.new, outcome.counts.updated) == (1, 0)  # the known three untouched
    assert NEW_VIDEO in stored_posts(engine) and count(engine, post_revisions) == 0
    assert (
        source_row(engine, "skatteverket").cursor["uploads"] == UPLOADS
    )  # the API resumes where it was


def test_without_a_key_the_channel_feed_is_collected(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    youtube = FakeYouTube(feed_server)
    config = configure(tmp_path, engine, youtube_source(CHANNEL, url=youtube.feed_url))

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK and outcome.error is None
    assert outcome.counts.new == 4
    assert [r.path for r in feed_server.requests] == [FEED_PATH]
    assert source_row(engine, "skatteverket").platform_id == CHANNEL
    with engine.connect() as connection:
        views = connection.execute(
            sa.select(post_metrics.c.views, post_metrics.c.likes)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .where(posts.c.platform_post_id == "Xr7bLpW0sNe")
        ).one()
    assert tuple(views) == (5890, 17)


def test_without_a_key_the_channel_feed_keeps_its_move_and_its_freshness(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    youtube = FakeYouTube(feed_server)
    feed_server.routes[FEED_PATH].headers["Cache-Control"] = "max-age=21600"
    old = feed_server.add("/old/videos.xml", status=301, location=youtube.feed_url)
    config = configure(tmp_path, engine, youtube_source(CHANNEL, url=old, interval=900))
    before = datetime.now(UTC)

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.OK and outcome.counts.new == 4
    assert outcome.moved_to == youtube.feed_url
    row = source_row(engine, "skatteverket")
    assert row.fetch_url == youtube.feed_url
    # The feed stays fresh for six hours: no check before then, whatever the interval says.
    assert row.next_check_at >= before + timedelta(hours=6)


def test_without_a_key_a_handle_cannot_be_resolved_and_says_how_to_fix_it(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    config = configure(tmp_path, engine, youtube_source())

    outcome = collect_one(config, engine)

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        "YouTube: the channel feed needs the channel id, and handle @skatteverket is not "
        "resolved yet: configure the channel id (UC…) as the handle, or let the API resolve it "
        "(set YOUTUBE_API_KEY)"
    )


# --------------------------------------------------------------------------------------- the CLI


def test_cli_collect_prints_the_summary_and_status_shows_the_quota(
    tmp_path: Path, database_url: str, youtube: FakeYouTube
) -> None:
    runner = CliRunner()
    config = str(write_config(tmp_path, database_url, settings(youtube) + youtube_source()))
    env = {"COLUMNS": "200", "YOUTUBE_API_KEY": KEY}
    assert runner.invoke(app, ["--config", config, "db", "upgrade"], env=env).exit_code == 0

    result = runner.invoke(app, ["--config", config, "collect", "--all"], env=env)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "1 source: 6 new, 0 updated, 0 unchanged posts; 0 not modified, 0 failed" in lines
    status = runner.invoke(app, ["--config", config, "status"], env=env)
    assert "YouTube API quota today: 5 of 10,000 units" in status.stdout.splitlines()


def test_cli_status_shows_a_refused_key_as_the_last_error(
    tmp_path: Path, database_url: str, youtube: FakeYouTube
) -> None:
    runner = CliRunner()
    config = str(write_config(tmp_path, database_url, settings(youtube) + youtube_source()))
    env = {"COLUMNS": "200", "YOUTUBE_API_KEY": KEY}
    assert runner.invoke(app, ["--config", config, "db", "upgrade"], env=env).exit_code == 0
    youtube.failures["channels"] = json_route(load("error_key_invalid.json"), 400)

    result = runner.invoke(app, ["--config", config, "collect", "--all"], env=env)

    assert result.exit_code == 1
    message = (
        "YouTube: credentials invalid (API_KEY_INVALID, HTTP 400): check the API key in the "
        "environment variable YOUTUBE_API_KEY"
    )
    assert f"skatteverket: failed: {message}" in result.stdout.splitlines()
    status = runner.invoke(app, ["--config", config, "status"], env=env)
    assert any(
        line.startswith("skatteverket: failing since ") and line.endswith(message)
        for line in status.stdout.splitlines()
    )


# ------------------------------------------------------------------------- pure parsing functions


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT4M13S", 253),
        ("PT1H2M3S", 3723),
        ("P1DT1S", 86401),
        ("PT45S", 45),
        ("P0D", None),
        ("", None),
        ("4:13", None),
    ],
)
def test_iso_durations_become_seconds(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


def test_out_of_order_video_neither_ends_paging_nor_is_taken() -> None:
    page = load("playlist_items_page1.json")
    stop = ANCHOR + SHIFT - timedelta(days=30)

    result = read_uploads_page(page, stop)

    assert [u.video_id for u in result.uploads] == RECENT[:3]
    assert (result.next_page_token, result.reached_stop) == (PAGE_2, False)
    assert read_uploads_page(load("playlist_items_page3.json"), stop).reached_stop


def test_description_yields_links_hashtags_and_only_watched_mentions() -> None:
    text = (
        "Se https://www.skatteverket.se/a#del-2, och @Polisen och @kalle_88!\n"
        "Skriv till info@skatteverket.se #skatt #moms"
    )
    links, mentions, others, hashtags = read_description(text, {"polisen": "@polisen"})
    assert links == ("https://www.skatteverket.se/a#del-2",)
    assert (mentions, others) == (("@polisen",), 1)
    assert hashtags == ("skatt", "moms")
