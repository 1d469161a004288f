"""YouTube channels through the YouTube Data API v3, or through their public channel feed.

With an API key (`[platforms.youtube] api_key_env`, by default YOUTUBE_API_KEY) three endpoints of
the YouTube Data API v3 reference are used, each costing 1 quota unit a call:

- `channels.list` (part=id,snippet,contentDetails,statistics; `forHandle=@handle` or `id=UC…`):
  the handle becomes the stable channel id, and the channel's uploads playlist (`UU…`), kept in
  the cursor. Its `statistics` are the channel's counts (subscriberCount unless
  hiddenSubscriberCount, viewCount, videoCount); once resolved, `channels.list` with
  part=statistics asks for them again at most once a UTC day (1 unit).
- `playlistItems.list` (part=snippet,contentDetails, 50 a page): the uploads, newest first, read
  until the cursor's last `videoPublishedAt` (incremental) or the backfill window and limit.
- `videos.list` (part=snippet,contentDetails,statistics,liveStreamingDetails, 50 ids a call):
  the videos themselves, for new uploads and again for stored videos younger than
  `[collect] refresh_days`, so their views, likes and comment counts form a series. A stored
  recent video that `videos.list` no longer returns was deleted (or made private).

Calls go through the shared aiohttp `HttpClient`, not google-api-python-client: that client is
synchronous (it would block the event loop every other source shares), heavy, and fetches its
discovery document over the network at run time. The key travels as the `key=` parameter and is
never stored: messages and raw payloads are built from response bodies, never from request URLs.

Quota is a daily budget: `[platforms.youtube] daily_quota_units` (10,000 by default) minus what
the `api_usage` table says was spent today (UTC) minus what this run has spent. When it is spent,
or the API answers 403 `quotaExceeded`, the source falls back to the channel feed
(`https://www.youtube.com/feeds/videos.xml?channel_id=UC…`, parsed by `collectors.feeds`). Without
a key the channel feed is all there is. The feed address is the source's `url` when one is
configured (that is also how tests point it at a loopback server), else it is built from the
channel id. The feed has only the 15 newest videos, views and likes, and no comment counts,
durations, tags or languages; so from the feed only videos the API has not delivered are taken,
and when the API later delivers one of them, its fuller record is stored as a new revision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from collectors.api import (
    ApiClient,
    ApiError,
    Backfill,
    add_account_counts,
    error_for_status,
    failed,
    find_rate_limit_reset,
)
from collectors.feeds import fetch_feed
from collectors.http import HttpClient, Response
from monitor.platforms import SPECS, default_secret_env
from monitor.types import (
    AccountCounts,
    ApiUsage,
    CollectResult,
    CollectStatus,
    Media,
    PostData,
    SourceRef,
    SourceState,
)
from monitor.values import parse_time, to_int

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from collectors.base import CollectorSettings, ConfiguredSource

PLATFORM_NAME = SPECS["youtube"].name
DEFAULT_KEY_ENV = default_secret_env("youtube")
DEFAULT_DAILY_QUOTA = 10_000  # what Google grants a project unless it applies for more
UNITS_PER_CALL = 1  # channels.list, playlistItems.list and videos.list each cost 1 unit
PAGE_SIZE = 50  # the most playlistItems.list returns a page, and videos.list accepts ids a call
FEED_URL = "https://www.youtube.com/feeds/videos.xml?channel_id={channel_id}"
WATCH_URL = "https://www.youtube.com/watch?v={video_id}"
FEED_ACCEPT = "application/atom+xml, application/xml;q=0.9, */*;q=0.1"
CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
# Errors the API reports in `error.errors[].reason` or `error.details[].reason`.
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded", "RATE_LIMIT_EXCEEDED_DAILY"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
KEY_REASONS = frozenset({"keyInvalid", "keyExpired", "API_KEY_INVALID", "API_KEY_EXPIRED"})
THUMBNAIL_SIZES = ("high", "medium", "default")
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_LINK = re.compile(r"https?://[^\s<>\"']+")
_LINK_TAIL = ".,;:!?)]}»”’"
# YouTube handles: 3–30 letters, digits, '.', '_' or '-'; not the middle of an e-mail address.
_MENTION = re.compile(r"(?<![\w.@/])@([\w.-]{3,30})")
_HASHTAG = re.compile(r"(?<![\w&#/])#(\w[\w-]*)")


class QuotaSpent(Exception):
    """The day's API quota is used up: collect from the channel feed instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Calls(ApiClient):
    """One attempt's Data API calls: the key goes as the `key` parameter; counts the quota
    units spent as well as the bytes received."""

    def __init__(self, http: HttpClient, base: str, key: str, key_env: str, now: datetime) -> None:
        super().__init__(
            http,
            base,
            platform=PLATFORM_NAME,
            now=now,
            token=key,
            token_param="key",
            credential_env=key_env,
        )
        self.units = 0
        self.channel_id: str | None = None  # once known, for the feed fallback

    def describe_error(self, response: Response, lookup: str | None) -> ApiError | QuotaSpent:
        key_env = self.credential_env or DEFAULT_KEY_ENV
        return describe_api_error(response, key_env=key_env, now=self.now, not_found=lookup)


@dataclass(frozen=True)
class Upload:
    """One entry of a channel's uploads playlist."""

    video_id: str
    published_at: datetime


@dataclass(frozen=True)
class UploadsPage:
    """What one playlistItems.list page adds, and whether paging should go on."""

    uploads: tuple[Upload, ...]
    next_page_token: str | None
    reached_stop: bool


class YouTubeCollector:
    platform: ClassVar[str] = "youtube"

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        self.settings = settings
        self.parsing = parsing
        self.usage = usage
        self.key_env = settings.secret_env or DEFAULT_KEY_ENV
        self.daily_quota = settings.daily_quota_units or DEFAULT_DAILY_QUOTA
        self.spent = 0  # units this collector spent in this run, over all its sources
        self.watched = find_watched_handles(settings.sources)

    def units_left(self) -> int:
        """Quota units left today: the daily budget less what earlier runs and this one spent."""
        return self.daily_quota - self.usage.today.get("youtube", 0) - self.spent

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        key = self.settings.secret
        if key is None:
            return await self._collect_feed(source, state, http, known_channel(source), now)
        url = source.api_url or self.settings.api_url or ""
        calls = _Calls(http, url, key, self.key_env, now)
        try:
            result, known = await self._collect_api(source, state, calls, now)
            return await add_account_counts(
                result,
                state,
                now,
                lambda: self._read_counts(calls),
                answers=calls,
                known=known,
                units=lambda: calls.units,
            )
        except QuotaSpent as spent:
            return await self._fall_back_to_feed(source, state, calls, spent.reason, now)
        except ApiError as error:
            return failed(state, error, api_units=calls.units, bytes_received=calls.bytes_received)

    async def _collect_api(
        self, source: SourceRef, state: SourceState, calls: _Calls, now: datetime
    ) -> tuple[CollectResult, AccountCounts | None]:
        """The videos, and the channel's counts when resolving it read them."""
        cursor = state.cursor
        channel_id, uploads_id, counts = await self._resolve(source, cursor, calls)
        incremental = cursor.get("uploads") == uploads_id and "last_published" in cursor
        if incremental:
            stop, limit = parse_time(cursor["last_published"]) or now, None
        else:
            backfill = Backfill.from_settings(self.settings, now)
            stop, limit = backfill.since, backfill.max_posts
        uploads = await self._list_uploads(calls, channel_id, uploads_id, stop, limit)

        refresh_since = now - timedelta(days=self.settings.refresh_days)
        recent = {
            video_id: when
            for video_id, when in (cursor.get("recent") or {}).items()
            if (parse_time(when) or now) >= refresh_since
        }
        new_ids = list(dict.fromkeys(u.video_id for u in uploads))
        # Newest first: a JSON column need not keep the cursor's key order (PostgreSQL's doesn't).
        stored_ids = sorted(
            (video_id for video_id in recent if video_id not in new_ids),
            key=lambda video_id: recent[video_id],
            reverse=True,
        )
        videos = await self._list_videos(calls, new_ids + stored_ids)
        posts = tuple(make_post(video, self.watched) for video in videos)
        returned = {post.platform_post_id for post in posts}
        deleted = tuple(video_id for video_id in stored_ids if video_id not in returned)

        newest = max((u.published_at for u in uploads), default=stop)
        new_cursor = {
            "uploads": uploads_id,
            # A scheduled premiere or stream is dated in the future: never page past now.
            "last_published": format_time(min(max(newest, stop), now)),
            "recent": {
                post.platform_post_id: format_time(post.published_at)
                for post in posts
                if post.published_at and post.published_at >= refresh_since
            },
        }
        result = CollectResult(
            CollectStatus.OK,
            posts=posts,
            state=SourceState(cursor=new_cursor),
            http_status=calls.last_status,
            resolved_id=channel_id,
            deleted=deleted,
            api_units=calls.units,
            bytes_received=calls.bytes_received,
        )
        return result, counts

    async def _resolve(
        self, source: SourceRef, cursor: dict[str, Any], calls: _Calls
    ) -> tuple[str, str, AccountCounts | None]:
        """The channel id, its uploads playlist id and, when a call was made, its counts: from
        the source and cursor when known (no call), else from channels.list by id (stable, so a
        renamed channel is still found) or by handle."""
        channel_id = known_channel(source)
        calls.channel_id = channel_id
        if channel_id and cursor.get("uploads"):
            return channel_id, str(cursor["uploads"]), None
        # Google bills a call, not its parts: the statistics come at no extra cost.
        params = {"part": "id,snippet,contentDetails,statistics"}
        if channel_id:
            params["id"] = channel_id
            wanted = f"channel {channel_id}"
        elif source.handle:
            params["forHandle"] = "@" + source.handle.strip().lstrip("@")
            wanted = f"handle {params['forHandle']}"
        else:
            raise ApiError(f"{PLATFORM_NAME}: the source needs a handle (@name) or a channel id")
        data = await self._call(calls, "channels", params, not_found=wanted)
        items = data.get("items") or []
        if not items:
            raise account_not_found(wanted, http_status=calls.last_status)
        channel = items[0]
        uploads = (channel.get("contentDetails") or {}).get("relatedPlaylists", {}).get("uploads")
        if not uploads:
            raise ApiError(f"{PLATFORM_NAME}: channel {channel['id']} lists no uploads playlist")
        calls.channel_id = str(channel["id"])
        return calls.channel_id, str(uploads), parse_channel_counts(channel)

    async def _read_counts(self, calls: _Calls) -> AccountCounts | None:
        """The channel's statistics (1 unit); a spent quota is a problem with the counts, not
        a reason to read the videos again from the feed."""
        channel_id = calls.channel_id or ""
        params = {"part": "statistics", "id": channel_id}
        try:
            data = await self._call(calls, "channels", params, not_found=f"channel {channel_id}")
        except QuotaSpent as spent:
            raise ApiError(f"{PLATFORM_NAME}: quota spent ({spent.reason})") from None
        items = [item for item in data.get("items") or [] if isinstance(item, dict)]
        return parse_channel_counts(items[0]) if items else None

    async def _list_uploads(
        self,
        calls: _Calls,
        channel_id: str,
        uploads_id: str,
        stop: datetime,
        limit: int | None,
    ) -> list[Upload]:
        """The uploads published after `stop`, newest first, at most `limit` of them."""
        found: list[Upload] = []
        token: str | None = None
        while True:
            params: dict[str, str | int] = {
                "part": "snippet,contentDetails",
                "playlistId": uploads_id,
                "maxResults": PAGE_SIZE,
            }
            if token:
                params["pageToken"] = token
            try:
                data = await self._call(calls, "playlistItems", params)
            except ApiError as error:
                if error.http_status != 404:
                    raise
                # An empty channel has no uploads playlist; a removed one has no channel.
                await self._check_channel_exists(calls, channel_id)
                return found
            page = read_uploads_page(data, stop)
            found.extend(page.uploads)
            if limit is not None and len(found) >= limit:
                return found[:limit]
            if page.reached_stop or not page.next_page_token:
                return found
            token = page.next_page_token

    async def _check_channel_exists(self, calls: _Calls, channel_id: str) -> None:
        wanted = f"channel {channel_id}"
        data = await self._call(calls, "channels", {"part": "id", "id": channel_id}, wanted)
        if not data.get("items"):
            raise account_not_found(wanted, http_status=404)

    async def _list_videos(self, calls: _Calls, video_ids: list[str]) -> list[dict[str, Any]]:
        videos: list[dict[str, Any]] = []
        for start in range(0, len(video_ids), PAGE_SIZE):
            params: dict[str, str | int] = {
                "part": "snippet,contentDetails,statistics,liveStreamingDetails",
                "id": ",".join(video_ids[start : start + PAGE_SIZE]),
                "maxResults": PAGE_SIZE,
            }
            data = await self._call(calls, "videos", params)
            videos.extend(v for v in data.get("items") or [] if isinstance(v, dict) and v.get("id"))
        return videos

    async def _call(
        self,
        calls: _Calls,
        endpoint: str,
        params: Mapping[str, str | int],
        not_found: str | None = None,
    ) -> dict[str, Any]:
        """One API call, counted against the quota.

        Raises:
            QuotaSpent: no units left, or the API says the quota is exceeded.
            ApiError: any other failure, with its one line for admins.
        """
        if self.units_left() < UNITS_PER_CALL:
            used = self.daily_quota - self.units_left()
            raise QuotaSpent(f"{used:,} of {self.daily_quota:,} units used today")
        # Google bills a call whatever its answer.
        self.spent += UNITS_PER_CALL
        calls.units += UNITS_PER_CALL
        return await calls.get_object(
            f"/{endpoint}", params, what=f"{endpoint}.list", lookup=not_found
        )

    async def _fall_back_to_feed(
        self, source: SourceRef, state: SourceState, calls: _Calls, reason: str, now: datetime
    ) -> CollectResult:
        """Collect the channel feed while the quota is spent."""
        note = f"{PLATFORM_NAME}: quota spent; used the channel feed ({reason})"
        result = await self._collect_feed(source, state, calls.http, calls.channel_id, now)
        if result.status is CollectStatus.FAILED:
            detail = (result.error or "").removeprefix(f"{PLATFORM_NAME}: ")
            error = f"{note}, which failed: {detail}"
        else:
            error = f"{note}; {result.error}" if result.error else note
        if result.status is CollectStatus.OK:
            result = replace(result, status=CollectStatus.PARTIAL)
        return replace(
            result,
            error=error,
            api_units=calls.units,
            bytes_received=result.bytes_received + calls.bytes_received,
        )

    async def _collect_feed(
        self,
        source: SourceRef,
        state: SourceState,
        http: HttpClient,
        channel_id: str | None,
        now: datetime,
    ) -> CollectResult:
        """The channel's public feed: the 15 newest videos with views and likes.

        Only videos the API has not delivered are taken (all of them for a channel never read
        through the API): a stored video rewritten from the feed's thinner record would look like
        an edit, and like another when the API is back. A failure is a FAILED result whose error
        names the channel feed, or says the channel is unknown.
        """
        url = source.url or (FEED_URL.format(channel_id=channel_id) if channel_id else None)
        if url is None:
            return CollectResult(
                CollectStatus.FAILED,
                state=state,
                error=f"{PLATFORM_NAME}: the channel feed needs the channel id, and handle "
                f"{source.handle} is not resolved yet: configure the channel id (UC…) as the "
                f"handle, or let the API resolve it (set {self.key_env})",
            )
        result = await fetch_feed(
            http,
            url,
            state,
            self.parsing,
            self.settings,
            now,
            accept=FEED_ACCEPT,
            movable=url == source.url,  # the address built from the channel id cannot move
            fast=False,  # adapt_feed_post reads the video id and description from feedparser
        )
        if result.http_status in (404, 410):
            wanted = f"channel {channel_id or url} (its feed answered HTTP {result.http_status})"
            gone = account_not_found(wanted, http_status=result.http_status)
            return replace(result, status=CollectStatus.FAILED, error=gone.message)
        if result.status is CollectStatus.FAILED:
            return replace(result, error=f"{PLATFORM_NAME} channel feed: {result.error}")
        return replace(
            result,
            posts=select_unseen(
                [adapt_feed_post(post, self.watched) for post in result.posts], state.cursor
            ),
            resolved_id=channel_id,
        )


def parse_channel_counts(channel: Mapping[str, Any]) -> AccountCounts | None:
    """A channel resource's `statistics`: subscribers (None when the channel hides them:
    `hiddenSubscriberCount`, whatever number is sent), total views and public videos; None
    when it has no statistics."""
    statistics = channel.get("statistics")
    if not isinstance(statistics, dict):
        return None
    hidden = statistics.get("hiddenSubscriberCount") is True
    counts = AccountCounts(
        followers=None if hidden else to_int(statistics.get("subscriberCount")),
        views=to_int(statistics.get("viewCount")),
        posts=to_int(statistics.get("videoCount")),
    )
    return None if counts.is_empty() else counts


def select_unseen(posts: list[PostData], cursor: dict[str, Any]) -> tuple[PostData, ...]:
    """The posts the API has not delivered: newer than the cursor's last upload and not among
    its recent videos. Pure."""
    since = parse_time(cursor.get("last_published"))
    known = set(cursor.get("recent") or {})
    return tuple(
        post
        for post in posts
        if post.platform_post_id not in known
        and (since is None or (post.published_at is not None and post.published_at > since))
    )


def known_channel(source: SourceRef) -> str | None:
    """The channel id without asking the API: resolved before, configured as the handle, or in
    the `channel_id` parameter of a configured feed URL."""
    if source.platform_id:
        return source.platform_id
    handle = (source.handle or "").strip()
    if CHANNEL_ID.match(handle):
        return handle
    if source.url:
        for value in parse_qs(urlsplit(source.url).query).get("channel_id", []):
            if CHANNEL_ID.match(value):
                return value
    return None


def find_watched_handles(sources: Iterable[ConfiguredSource]) -> dict[str, str]:
    """Handles of the configured YouTube sources: lower-cased without '@' -> '@handle'."""
    watched = {}
    for source in sources:
        if source.handle:
            name = source.handle.strip().lstrip("@")
            if not CHANNEL_ID.match(name):
                watched[name.lower()] = "@" + name
    return watched


def describe_api_error(
    response: Response, *, key_env: str, now: datetime, not_found: str | None = None
) -> ApiError | QuotaSpent:
    """What an API error answer means, from its status and the reasons in its body.

    Args:
        not_found: what was looked up, when a 404 means the account does not exist.
    """
    status = response.status
    reasons, message = read_error_body(response.body)
    if reasons & QUOTA_REASONS:
        return QuotaSpent("the API answered " + min(reasons & QUOTA_REASONS))
    rate = reasons & RATE_REASONS
    if status == 429 or rate:
        until = find_rate_limit_reset(response, now)
        when = f" until {until:%Y-%m-%d %H:%M} UTC" if until else "; retried later"
        return ApiError(
            f"{PLATFORM_NAME}: rate limited ({min(rate) if rate else f'HTTP {status}'}){when}",
            http_status=status,
            retry_after=until,
        )
    refused = reasons & KEY_REASONS
    if refused or status in (401, 403) or (status == 400 and "API key" in (message or "")):
        reason = min(refused or reasons or {f"HTTP {status}"})
        return ApiError(
            f"{PLATFORM_NAME}: credentials invalid ({reason}, HTTP {status}): check the API key "
            f"in the environment variable {key_env}",
            http_status=status,
        )
    if status == 404 and not_found:
        return account_not_found(not_found, http_status=status)
    if status >= 500 or status == 404:
        return error_for_status(response, platform=PLATFORM_NAME, now=now)
    because = f" ({', '.join(sorted(reasons))})" if reasons else ""
    detail = f": {message}" if message else ""
    return ApiError(f"{PLATFORM_NAME}: HTTP {status}{because}{detail}", http_status=status)


def read_error_body(body: bytes) -> tuple[set[str], str | None]:
    """The reasons and the first line of the message of a Google API error body."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return set(), None
    if not isinstance(error, dict):
        return set(), None
    reasons = {
        str(item["reason"])
        for key in ("errors", "details")
        for item in error.get(key) or []
        if isinstance(item, dict) and item.get("reason")
    }
    message = str(error.get("message") or "").strip().splitlines()
    return reasons, (message[0][:200] if message else None)


def account_not_found(wanted: str, *, http_status: int | None) -> ApiError:
    return ApiError(
        f"{PLATFORM_NAME}: account not found: no {wanted} (renamed or removed? check the "
        "source's handle)",
        http_status=http_status,
        gone=True,
    )


def read_uploads_page(data: dict[str, Any], stop: datetime) -> UploadsPage:
    """The uploads of one playlistItems.list page published after `stop`. Pure.

    The playlist is newest first, except for videos listed out of order (a premiere, a video made
    public long after upload): those are skipped without ending the paging. Paging ends when the
    page's last dated entry is at or before `stop`, since everything after it is older.
    """
    uploads = []
    last_dated: datetime | None = None
    for item in data.get("items") or []:
        details = item.get("contentDetails") or {}
        video_id = details.get("videoId") or (item.get("snippet") or {}).get("resourceId", {}).get(
            "videoId"
        )
        published = parse_time(details.get("videoPublishedAt"))
        if not video_id or published is None:
            continue  # a private or deleted video has no videoPublishedAt
        last_dated = published
        if published > stop:
            uploads.append(Upload(str(video_id), published))
    return UploadsPage(
        uploads=tuple(uploads),
        next_page_token=data.get("nextPageToken") or None,
        reached_stop=last_dated is not None and last_dated <= stop,
    )


def make_post(video: dict[str, Any], watched: dict[str, str]) -> PostData:
    """A video resource of videos.list as a post. Pure."""
    snippet = video.get("snippet") or {}
    details = video.get("contentDetails") or {}
    statistics = video.get("statistics") or {}
    video_id = str(video["id"])
    watch_url = WATCH_URL.format(video_id=video_id)
    description = str(snippet.get("description") or "")
    live = snippet.get("liveBroadcastContent") in ("live", "upcoming") or bool(
        video.get("liveStreamingDetails")
    )
    links, mentions, other_mentions, hashtags = read_description(description, watched)
    metrics = {
        name: count
        for field, name in (
            ("viewCount", "views"),
            ("likeCount", "likes"),
            ("commentCount", "replies"),
        )
        if (count := to_int(statistics.get(field))) is not None
    }
    return PostData(
        platform_post_id=video_id,
        kind="live" if live else "video",
        url=watch_url,
        author=snippet.get("channelTitle") or None,
        published_at=parse_time(snippet.get("publishedAt")),
        title=snippet.get("title") or None,
        text=description.strip() or None,
        language=snippet.get("defaultAudioLanguage") or snippet.get("defaultLanguage") or None,
        tags=merge_tags(snippet.get("tags") or [], hashtags),
        links=links,
        mentions=mentions,
        other_mentions=other_mentions,
        media=(
            Media(
                type="video",
                url=watch_url,
                thumbnail_url=choose_thumbnail(snippet.get("thumbnails") or {}),
                duration_s=parse_duration(details.get("duration")),
            ),
        ),
        raw=video,
        metrics=metrics or None,
    )


def adapt_feed_post(post: PostData, watched: dict[str, str]) -> PostData:
    """A channel-feed entry shaped like a post from the API: the bare video id, the watch URL,
    the description as plain text (YouTube descriptions are never HTML). Pure."""
    video_id = str(post.raw.get("yt_videoid") or post.platform_post_id.removeprefix("yt:video:"))
    watch_url = WATCH_URL.format(video_id=video_id)
    description = str(post.raw.get("summary") or post.text or "")
    links, mentions, other_mentions, hashtags = read_description(description, watched)
    thumbnail = next((m.thumbnail_url for m in post.media if m.thumbnail_url), None)
    return replace(
        post,
        platform_post_id=video_id,
        kind="video",
        url=watch_url,
        text=description.strip() or None,
        html=None,
        tags=merge_tags(post.tags, hashtags),
        links=links,
        mentions=mentions,
        other_mentions=other_mentions,
        media=(Media(type="video", url=watch_url, thumbnail_url=thumbnail),),
    )


def read_description(
    text: str, watched: dict[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], int, tuple[str, ...]]:
    """Links, watched mentions, the count of other mentions, and hashtags in a description."""
    links = tuple(dict.fromkeys(m.group(0).rstrip(_LINK_TAIL) for m in _LINK.finditer(text)))
    words = _LINK.sub(" ", text)  # '#' and '@' inside links are not hashtags or mentions
    mentions: list[str] = []
    other = 0
    for match in _MENTION.finditer(words):
        name = match.group(1).rstrip(".-")
        if name.lower() in watched:
            mentions.append(watched[name.lower()])
        else:
            other += 1
    hashtags = tuple(m.group(1) for m in _HASHTAG.finditer(words))
    return links, tuple(dict.fromkeys(mentions)), other, hashtags


def merge_tags(*groups: Any) -> tuple[str, ...]:
    """Tags in order, each once (case-insensitively), without '#'."""
    seen: dict[str, str] = {}
    for group in groups:
        for tag in group:
            name = str(tag).strip().lstrip("#")
            if name:
                seen.setdefault(name.lower(), name)
    return tuple(seen.values())


def choose_thumbnail(thumbnails: dict[str, Any]) -> str | None:
    for size in THUMBNAIL_SIZES:
        url = (thumbnails.get(size) or {}).get("url")
        if url:
            return str(url)
    return None


def parse_duration(value: Any) -> int | None:
    """Seconds from an ISO 8601 duration as the API gives it: "PT4M13S" -> 253."""
    match = _DURATION.match(str(value or ""))
    if not match or not value or value in ("P", "PT"):
        return None
    parts = {name: float(number or 0) for name, number in match.groupdict().items()}
    seconds = (
        parts["weeks"] * 604800
        + parts["days"] * 86400
        + parts["hours"] * 3600
        + parts["minutes"] * 60
        + parts["seconds"]
    )
    return int(seconds) or None  # "P0D": a stream not yet broadcast has no length


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
