"""Bluesky accounts, read through the public AppView's XRPC API without logging in.

Endpoints (Bluesky HTTP API reference, https://docs.bsky.app/docs/category/http-reference):

- `app.bsky.actor.getProfile?actor=HANDLE` (docs.bsky.app/docs/api/app-bsky-actor-get-profile)
  turns the configured handle into the account's DID, once. The DID is the stable id: a renamed
  account keeps it, so later runs ask for the DID and the history stays with the source. Its
  `followersCount` and `postsCount` are the account's counts; once resolved, the profile is
  asked for them again at most once a UTC day.
- `app.bsky.feed.getAuthorFeed?actor=DID&filter=posts_and_author_threads&includePins=true`
  (docs.bsky.app/docs/api/app-bsky-feed-get-author-feed), newest first, paged with `cursor`:
  the account's posts, its reposts and its own threads.
- `app.bsky.feed.getPosts?uris=...` (docs.bsky.app/docs/api/app-bsky-feed-get-posts, at most
  25 a call): which remembered recent posts still exist, when a full re-read of the refresh
  window no longer lists them.

Why no `atproto` SDK: these are three unauthenticated GETs returning JSON. The SDK is large,
synchronous by default and brings its own HTTP client, while the shared aiohttp `HttpClient`
already gives us one session, per-host limits, bounded bodies and one-line errors.

The state in `SourceState.cursor` is `newest_at` and `newest_id` (the newest item already read)
and `recent` (id -> time of every item younger than `refresh_days`). A run reads pages until it
passes both the newest item already read and the refresh window, so new posts arrive and recent
posts get fresh counts in the same few calls. A pinned post comes first whatever its age and
is never taken as the place to stop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlsplit

from collectors.api import (
    ApiClient,
    ApiError,
    Backfill,
    add_account_counts,
    error_for_status,
    failed,
    find_rate_limit_reset,
)
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
from monitor.values import is_http_url, parse_time, to_int

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from collectors.base import CollectorSettings, ConfiguredSource

PLATFORM = SPECS["bluesky"].name
PUBLIC_APPVIEW = SPECS["bluesky"].default_api_url
# The public AppView answers anonymous reads; a token is only for a self-hosted or proxied
# AppView that demands one.
DEFAULT_TOKEN_ENV = default_secret_env("bluesky")
PAGE_SIZE = 50
# A bound on one run (2,000 items), so a feed that never ends cannot hold a worker. An account
# posting more than this between two runs loses the oldest of those posts.
MAX_PAGES = 40
GET_POSTS_LIMIT = 25  # app.bsky.feed.getPosts refuses more uris than this

REASON_REPOST = "app.bsky.feed.defs#reasonRepost"
REASON_PIN = "app.bsky.feed.defs#reasonPin"
EMBED_IMAGES = "app.bsky.embed.images#view"
EMBED_VIDEO = "app.bsky.embed.video#view"
EMBED_EXTERNAL = "app.bsky.embed.external#view"
EMBED_RECORD = "app.bsky.embed.record#view"
EMBED_RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia#view"
FACET_MENTION = "app.bsky.richtext.facet#mention"
FACET_LINK = "app.bsky.richtext.facet#link"
FACET_TAG = "app.bsky.richtext.facet#tag"
POST_COLLECTION = "app.bsky.feed.post"

# XRPC error names that mean the account itself is gone or unreadable. InvalidRequest is what
# getProfile and getAuthorFeed answer for an unknown actor ("Profile not found").
ACCOUNT_GONE_ERRORS = frozenset(
    {"InvalidRequest", "ActorNotFound", "AccountTakedown", "AccountDeactivated", "NotFound"}
)
METRIC_FIELDS = {
    "likeCount": "likes",
    "repostCount": "reposts",
    "replyCount": "replies",
    "quoteCount": "quotes",
    "bookmarkCount": "bookmarks",
}


@dataclass(frozen=True)
class FeedEntry:
    """One author-feed item, parsed: the post, where the feed sorts it, and whether it is the
    pinned copy at the top."""

    post: PostData
    sort_at: datetime
    pinned: bool = False


@dataclass(frozen=True)
class ReadWindow:
    """Which items a run wants: those at or after `since` (the backfill start on a first run,
    the refresh window later), those after `after` (the newest item already read), and at most
    `max_posts` of them (the first run's backfill_posts)."""

    since: datetime
    after: datetime | None = None
    max_posts: int | None = None

    def wants(self, sort_at: datetime) -> bool:
        return sort_at >= self.since or (self.after is not None and sort_at > self.after)


@dataclass(frozen=True)
class PageDecision:
    """What to keep from one page, and whether paging ends with it."""

    kept: tuple[FeedEntry, ...]
    stop: bool
    window_read: bool  # everything the window wants has now been listed


@dataclass
class FeedRead:
    """What paging an author feed gave."""

    entries: dict[str, FeedEntry] = field(default_factory=dict)
    window_read: bool = False


class BlueskyCollector:
    platform: ClassVar[str] = "bluesky"

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        # Parsing a 50-item JSON page takes well under a millisecond: it stays on the loop.
        self.settings = settings
        self.watched = find_watched_accounts(settings.sources)
        self.token_env = settings.secret_env or DEFAULT_TOKEN_ENV

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        handle = find_actor(source.handle, source.url)
        actor = source.platform_id or handle
        if not actor:
            return CollectResult(
                CollectStatus.FAILED, state=state, error="Bluesky: source has no handle"
            )
        api = _Api(
            http,
            (source.api_url or self.settings.api_url or "").rstrip("/"),
            token=self.settings.secret,
            token_env=self.token_env,
            actor=f"{handle} ({actor})" if handle and handle != actor else actor,
            now=now,
        )
        refresh_since = now - timedelta(days=self.settings.refresh_days)
        did = actor if actor.startswith("did:") else None
        looked_up = None
        try:
            if did is None:
                did, looked_up = await api.resolve_did(actor)
            backfill = Backfill.from_settings(self.settings, now)
            window = plan_window(state.cursor, backfill, refresh_since)
            read = await api.read_feed(did, window, self.watched)
        except ApiError as error:
            return failed(state, error, bytes_received=api.bytes_received, resolved_id=did)

        remembered = read_recent(state.cursor)
        deleted: tuple[str, ...] = ()
        problem = None
        missing = find_missing(remembered, read.entries, refresh_since) if read.window_read else []
        if missing:
            try:
                deleted = await api.find_deleted(missing)
            except ApiError as error:
                problem = f"deletion check skipped: {error.message}"
        cursor = advance_cursor(state.cursor, read.entries.values(), deleted, refresh_since)
        result = CollectResult(
            CollectStatus.PARTIAL if problem else CollectStatus.OK,
            posts=tuple(entry.post for entry in read.entries.values()),
            state=SourceState(cursor=cursor),
            http_status=api.last_status,
            error=problem,
            bytes_received=api.bytes_received,
            resolved_id=did,
            deleted=deleted,
        )
        return await add_account_counts(
            result, state, now, lambda: api.read_counts(did), answers=api, known=looked_up
        )


class _Api(ApiClient):
    """The XRPC calls of one collection, with Bluesky's error conventions."""

    def __init__(
        self,
        http: HttpClient,
        base: str,
        *,
        token: str | None,
        token_env: str,
        actor: str,
        now: datetime,
    ) -> None:
        super().__init__(
            http, base, platform=PLATFORM, now=now, token=token, credential_env=token_env
        )
        self.actor = actor

    async def get(self, method: str, params: Mapping[str, str | int] | str) -> Any:
        """GET one XRPC method; `params` is a mapping, or a ready query string for repeated
        names. Raises ApiError with the line admins see."""
        path = f"/xrpc/{method}"
        if isinstance(params, str):
            path, params = f"{path}?{params}", {}
        document, _ = await self.fetch(path, params, what=method)
        return document

    def describe_error(self, response: Response, lookup: str | None) -> ApiError:
        return describe_error(
            response,
            actor=self.actor,
            token_env=self.credential_env or DEFAULT_TOKEN_ENV,
            token_set=bool(self.token),
            now=self.now,
        )

    async def resolve_did(self, handle: str) -> tuple[str, AccountCounts | None]:
        """The handle's DID, and the account's counts as the profile gives them."""
        profile = await self.get("app.bsky.actor.getProfile", {"actor": handle})
        did = profile.get("did") if isinstance(profile, dict) else None
        if not isinstance(did, str) or not did.startswith("did:"):
            raise ApiError(f"{PLATFORM}: getProfile for {handle} gave no DID")
        return did, parse_profile_counts(profile)

    async def read_counts(self, did: str) -> AccountCounts | None:
        return parse_profile_counts(await self.get("app.bsky.actor.getProfile", {"actor": did}))

    async def read_feed(self, did: str, window: ReadWindow, watched: frozenset[str]) -> FeedRead:
        """Page the author feed until the window is covered."""
        read = FeedRead()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, str | int] = {
                "actor": did,
                "limit": PAGE_SIZE,
                "filter": "posts_and_author_threads",
                "includePins": "true",
            }
            if cursor:
                params["cursor"] = cursor
            page = await self.get("app.bsky.feed.getAuthorFeed", params)
            items = page.get("feed") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise ApiError(f"{PLATFORM}: getAuthorFeed answered without a feed")
            entries = [e for e in (parse_feed_item(i, watched) for i in items) if e is not None]
            decision = select_entries(entries, window, read.entries)
            for entry in decision.kept:
                if not entry.pinned or entry.post.platform_post_id not in read.entries:
                    read.entries[entry.post.platform_post_id] = entry
            cursor = page.get("cursor") if isinstance(page.get("cursor"), str) else None
            if decision.stop or not cursor or not items:
                read.window_read = decision.window_read or not cursor or not items
                break
        return read

    async def find_deleted(self, uris: list[str]) -> tuple[str, ...]:
        """The uris among these that getPosts no longer returns: deleted posts."""
        found: set[str] = set()
        for start in range(0, len(uris), GET_POSTS_LIMIT):
            batch = uris[start : start + GET_POSTS_LIMIT]
            answer = await self.get(
                "app.bsky.feed.getPosts", urlencode([("uris", u) for u in batch])
            )
            views = answer.get("posts") if isinstance(answer, dict) else None
            if not isinstance(views, list):
                raise ApiError(f"{PLATFORM}: getPosts answered without posts")
            found |= {v["uri"] for v in views if isinstance(v, dict) and "uri" in v}
        return tuple(uri for uri in uris if uri not in found)


def parse_profile_counts(profile: Any) -> AccountCounts | None:
    """A profile's `followersCount` and `postsCount` (app.bsky.actor.defs#profileViewDetailed);
    None when it has neither."""
    if not isinstance(profile, dict):
        return None
    counts = AccountCounts(
        followers=to_int(profile.get("followersCount")), posts=to_int(profile.get("postsCount"))
    )
    return None if counts.is_empty() else counts


def describe_error(
    response: Response, *, actor: str, token_env: str, token_set: bool, now: datetime
) -> ApiError:
    """The ApiError an XRPC error response means, in Bluesky's terms."""
    status = response.status
    try:
        body = json.loads(response.body)
    except ValueError:
        body = None
    name = str(body.get("error") or "") if isinstance(body, dict) else ""
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    said = f"{name}: {message}" if name and message else name or message
    if (status == 400 and name in ACCOUNT_GONE_ERRORS) or status == 404:
        detail = f" ({said})" if said else f" (HTTP {status})"
        return ApiError(
            f"{PLATFORM}: account not found: {actor}{detail}", http_status=status, gone=True
        )
    if status == 429:
        # ratelimit-reset is an epoch time on Bluesky; the shared reader knows (atproto#3436).
        until = find_rate_limit_reset(response, now)
        when = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
        return ApiError(f"{PLATFORM}: rate limited{when}", http_status=status, retry_after=until)
    if status in (401, 403) and not token_set:
        return ApiError(
            f"{PLATFORM}: the API asks for credentials (HTTP {status}): set {token_env}, "
            f"or use the public AppView {PUBLIC_APPVIEW}",
            http_status=status,
        )
    if status == 400:
        return ApiError(f"{PLATFORM}: request refused (HTTP 400 {said})".strip(), http_status=400)
    return error_for_status(response, platform=PLATFORM, now=now, credential_env=token_env)


# Pure parsing and planning: JSON in, plain data out.


def normalize_handle(value: str) -> str:
    """`@Polisen.bsky.social ` -> `polisen.bsky.social`; a DID is kept as it is."""
    value = value.strip().lstrip("@")
    return value if value.startswith("did:") else value.lower()


def find_actor(handle: str | None, url: str | None) -> str | None:
    """The handle or DID a source names, from its handle or a bsky.app profile URL."""
    if handle and handle.strip().lstrip("@"):
        return normalize_handle(handle)
    if url:
        parts = [p for p in urlsplit(url).path.split("/") if p]
        if len(parts) >= 2 and parts[0] == "profile":
            return normalize_handle(parts[1])
    return None


def find_watched_accounts(sources: Iterable[ConfiguredSource]) -> frozenset[str]:
    """Handles and DIDs of every configured Bluesky source: mentions of these are kept."""
    found = (find_actor(s.handle, s.url) for s in sources)
    return frozenset(actor for actor in found if actor)


def parse_feed_item(item: Any, watched: frozenset[str]) -> FeedEntry | None:
    """A feed item (`app.bsky.feed.defs#feedViewPost`) as a FeedEntry; None if unusable."""
    if not isinstance(item, dict) or not isinstance(item.get("post"), dict):
        return None
    view: dict[str, Any] = item["post"]
    uri = view.get("uri")
    record = _dict(view.get("record"))
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    reason = _dict(item.get("reason"))
    reason_type = reason.get("$type")
    # The AppView sorts a post by the earlier of its claimed and its indexed time, so a client
    # clock running ahead cannot put a post in the future.
    times = [
        t for t in (parse_time(record.get("createdAt")), parse_time(view.get("indexedAt"))) if t
    ]
    posted = min(times) if times else None
    author = _dict(view.get("author"))
    embed = _dict(view.get("embed"))
    media, card_links, quoted = read_embed(embed)
    tags, links, mentions, other_mentions = read_facets(record, watched)

    if reason_type == REASON_REPOST:
        reposted = parse_time(reason.get("indexedAt")) or posted
        repost_uri = reason.get("uri")
        post_id = (
            f"repost:{repost_uri}" if repost_uri else f"repost:{uri}@{reason.get('indexedAt')}"
        )
        by = _dict(reason.get("by"))
        kind, published, who = "repost", reposted, by.get("handle") or by.get("did")
        # Counts on a repost are the original author's, not the watched account's.
        metrics = None
    else:
        post_id, published, who = uri, posted, author.get("handle") or author.get("did")
        kind = "reply" if record.get("reply") else "quote" if quoted else "post"
        metrics = read_metrics(view)
    if published is None:
        return None
    langs = [lang for lang in _list(record.get("langs")) if isinstance(lang, str)]
    post = PostData(
        platform_post_id=post_id,
        kind=kind,
        url=make_web_url(uri, author),
        author=who if isinstance(who, str) else None,
        published_at=published,
        text=_str(record.get("text")) or None,
        language=langs[0] if langs else None,
        tags=tags,
        links=_unique([*links, *card_links]),
        mentions=mentions,
        other_mentions=other_mentions,
        media=media,
        raw=make_raw(item, watched),
        metrics=metrics,
    )
    return FeedEntry(post, published, pinned=reason_type == REASON_PIN)


def make_web_url(uri: str, author: Mapping[str, Any]) -> str:
    """`https://bsky.app/profile/{handle}/post/{rkey}` for a post's at:// uri."""
    handle = author.get("handle")
    if not isinstance(handle, str) or handle == "handle.invalid":
        handle = uri.removeprefix("at://").split("/", 1)[0]
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


def read_metrics(view: Mapping[str, Any]) -> dict[str, int] | None:
    counts = {
        name: value
        for key, name in METRIC_FIELDS.items()
        if isinstance(value := view.get(key), int) and not isinstance(value, bool)
    }
    return counts or None


def read_facets(
    record: Mapping[str, Any], watched: frozenset[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int]:
    """Hashtags, http(s) links, watched mentions and the count of other mentions of a post
    record, from its rich-text facets (and its `tags`, hashtags not shown in the text)."""
    tags: list[str] = []
    links: list[str] = []
    mentions: list[str] = []
    others: set[str] = set()
    text = _str(record.get("text"))
    for facet in _facets(record):
        for feature in _features(facet):
            kind = feature.get("$type")
            if kind == FACET_TAG and isinstance(feature.get("tag"), str):
                tags.append(feature["tag"].lstrip("#"))
            elif kind == FACET_LINK and isinstance(feature.get("uri"), str):
                links.append(feature["uri"])
            elif kind == FACET_MENTION:
                account = find_watched_mention(feature, facet, text, watched)
                if account:
                    mentions.append(account)
                else:
                    others.add(str(feature.get("did")))
    extra = record.get("tags")
    if isinstance(extra, list):
        tags += [t.lstrip("#") for t in extra if isinstance(t, str)]
    unique_tags: dict[str, str] = {}
    for tag in tags:
        if tag:
            unique_tags.setdefault(tag.casefold(), tag)
    return tuple(unique_tags.values()), _unique(links), _unique(mentions), len(others)


def find_watched_mention(
    feature: Mapping[str, Any], facet: Mapping[str, Any], text: str, watched: frozenset[str]
) -> str | None:
    """The watched account a mention names, by its DID or by the handle written in the text
    (facets index UTF-8 bytes, not characters), or None for anyone else."""
    did = feature.get("did")
    if isinstance(did, str) and did in watched:
        return did
    index = _dict(facet.get("index"))
    start, end = index.get("byteStart"), index.get("byteEnd")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end:
        written = text.encode()[start:end].decode(errors="ignore")
        handle = normalize_handle(written)
        if handle in watched:
            return handle
    return None


def read_embed(embed: Mapping[str, Any]) -> tuple[tuple[Media, ...], tuple[str, ...], bool]:
    """Media, link-card links, and whether the embed quotes another post."""
    kind = embed.get("$type")
    if kind == EMBED_RECORD_WITH_MEDIA:
        media_view = _dict(embed.get("media"))
        media, links, _ = read_embed(media_view)
        return media, links, True
    if kind == EMBED_RECORD:
        quoted = _dict(embed.get("record"))
        uri = quoted.get("uri")
        return (), (), isinstance(uri, str) and f"/{POST_COLLECTION}/" in uri
    if kind == EMBED_IMAGES:
        images = _list(embed.get("images"))
        return tuple(_image(i) for i in images if isinstance(i, dict)), (), False
    if kind == EMBED_VIDEO:
        width, height = _aspect(embed)
        video = Media(
            "video",
            url=_str(embed.get("playlist")) or None,
            thumbnail_url=_str(embed.get("thumbnail")) or None,
            alt_text=_str(embed.get("alt")) or None,
            width=width,
            height=height,
        )
        return (video,), (), False
    if kind == EMBED_EXTERNAL:
        card = _dict(embed.get("external"))
        uri = _str(card.get("uri"))
        # A card linking nowhere on the web is no link and no preview.
        if not is_http_url(uri):
            return (), (), False
        preview = Media(
            "other",
            url=uri,
            thumbnail_url=_str(card.get("thumb")) or None,
            alt_text=_str(card.get("title")) or None,
        )
        return (preview,), (uri,), False
    return (), (), False


def make_raw(item: Mapping[str, Any], watched: frozenset[str]) -> dict[str, Any]:
    """The feed item as returned, minus mentions of accounts we do not watch (in the post and
    in a quoted post) and minus the thread context, which holds whole other posts."""
    raw = json.loads(json.dumps(item))  # a deep copy that is JSON-ready by construction
    post = raw.get("post", {})
    if isinstance(post.get("record"), dict):
        _strip_mentions(post["record"], watched)
    embed = _dict(post.get("embed"))
    quoted = _dict(embed.get("record"))
    if isinstance(quoted.get("record"), dict):  # recordWithMedia nests the record view once more
        quoted = quoted["record"]
    if isinstance(quoted.get("value"), dict):
        _strip_mentions(quoted["value"], watched)
    context = raw.get("reply")
    if isinstance(context, dict):
        raw["reply"] = {
            part: {"uri": view.get("uri"), "cid": view.get("cid")}
            for part, view in context.items()
            if part in ("root", "parent") and isinstance(view, dict)
        }
    return dict(raw)


def _strip_mentions(record: dict[str, Any], watched: frozenset[str]) -> None:
    text = _str(record.get("text"))
    kept = []
    for facet in _facets(record):
        features = [
            f
            for f in _features(facet)
            if f.get("$type") != FACET_MENTION or find_watched_mention(f, facet, text, watched)
        ]
        if features:
            kept.append({**facet, "features": features})
    if "facets" in record:
        record["facets"] = kept


def plan_window(
    cursor: Mapping[str, Any], backfill: Backfill, refresh_since: datetime
) -> ReadWindow:
    """The first run backfills; later runs read past the newest item seen and the refresh
    window."""
    newest = parse_time(cursor.get("newest_at"))
    if newest is None:
        return ReadWindow(since=backfill.since, max_posts=backfill.max_posts)
    return ReadWindow(since=refresh_since, after=newest)


def select_entries(
    entries: Iterable[FeedEntry], window: ReadWindow, already: Mapping[str, FeedEntry]
) -> PageDecision:
    """Which of a page's entries the window wants, and whether paging stops here.

    The pinned post heads the first page whatever its age: it is kept if the window wants it,
    and never ends paging.
    """
    kept: list[FeedEntry] = []
    ids = set(already)
    for entry in entries:
        wanted = window.wants(entry.sort_at)
        if entry.pinned:
            if wanted:
                kept.append(entry)
                ids.add(entry.post.platform_post_id)
            continue
        if not wanted:
            return PageDecision(tuple(kept), stop=True, window_read=True)
        kept.append(entry)
        ids.add(entry.post.platform_post_id)
        if window.max_posts is not None and len(ids) >= window.max_posts:
            return PageDecision(tuple(kept), stop=True, window_read=False)
    return PageDecision(tuple(kept), stop=False, window_read=False)


def read_recent(cursor: Mapping[str, Any]) -> dict[str, datetime]:
    """The remembered recent items: id -> when the feed sorted them."""
    recent = cursor.get("recent")
    if not isinstance(recent, dict):
        return {}
    parsed = {key: parse_time(value) for key, value in recent.items()}
    return {key: when for key, when in parsed.items() if when is not None}


def find_missing(
    remembered: Mapping[str, datetime], read: Mapping[str, FeedEntry], refresh_since: datetime
) -> list[str]:
    """Recent posts (not reposts: an undone repost cannot be asked about) that the feed no
    longer lists although the whole refresh window was read."""
    return [
        key
        for key, when in remembered.items()
        if when >= refresh_since and key not in read and key.startswith("at://")
    ]


def advance_cursor(
    cursor: Mapping[str, Any],
    entries: Iterable[FeedEntry],
    deleted: Iterable[str],
    refresh_since: datetime,
) -> dict[str, Any]:
    """The state after a run: the newest item read so far, and the recent items by id."""
    gone = set(deleted)
    recent = {k: v for k, v in read_recent(cursor).items() if v >= refresh_since and k not in gone}
    newest_at = parse_time(cursor.get("newest_at"))
    newest_id = cursor.get("newest_id")
    for entry in entries:
        key = entry.post.platform_post_id
        if entry.sort_at >= refresh_since:
            recent[key] = entry.sort_at
        if not entry.pinned and (newest_at is None or entry.sort_at > newest_at):
            newest_at, newest_id = entry.sort_at, key
    state: dict[str, Any] = {"recent": {k: v.isoformat() for k, v in sorted(recent.items())}}
    if newest_at is not None:
        state |= {"newest_at": newest_at.isoformat(), "newest_id": newest_id}
    return state


def _facets(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    facets = record.get("facets")
    return [f for f in facets if isinstance(f, dict)] if isinstance(facets, list) else []


def _features(facet: Mapping[str, Any]) -> list[dict[str, Any]]:
    features = facet.get("features")
    return [f for f in features if isinstance(f, dict)] if isinstance(features, list) else []


def _image(image: Mapping[str, Any]) -> Media:
    width, height = _aspect(image)
    return Media(
        "image",
        url=_str(image.get("fullsize")) or None,
        thumbnail_url=_str(image.get("thumb")) or None,
        alt_text=_str(image.get("alt")) or None,
        width=width,
        height=height,
    )


def _aspect(view: Mapping[str, Any]) -> tuple[int | None, int | None]:
    ratio = _dict(view.get("aspectRatio"))
    width, height = ratio.get("width"), ratio.get("height")
    return (
        width if isinstance(width, int) else None,
        height if isinstance(height, int) else None,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
