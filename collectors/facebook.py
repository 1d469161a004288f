"""Facebook Pages through the Graph API: a page's posts with their reactions, comments and shares.

Endpoints (Graph API reference, the version in the configured api_url, v21.0 by default):

- Page node, `GET /{page}?fields=id,name,username,link`: resolves the configured username to the
  page's numeric id, which a renamed page keeps; read on every run so the author stays current.
- Page posts edge, `GET /{page-id}/posts?fields=...&since=<unix>&limit=25` ("Page Posts" in the
  Graph API reference), paged with `paging.next`.
- Page node again, `GET /{page-id}?fields=followers_count,fan_count`, at most once a UTC day:
  the page's followers (`fan_count`, its likes, where followers are not given). A call of its
  own, so that a token allowed to read posts but not these fields still collects the posts.
- Post node, `GET /{post-id}`: asked only for a recent post the listing no longer returns; the
  error code 100 with subcode 33 means the post was deleted.
- Errors and limits as described in "Graph API: Handling Errors" and "Rate Limiting" (the
  `X-App-Usage` and `X-Business-Use-Case-Usage` headers).

We call the Graph API over the shared aiohttp client: the official facebook-sdk for Python is
unmaintained (no release since 2019) and synchronous. The token travels only in the
`Authorization: Bearer` header; the `access_token` that Graph writes into `paging.next` is
stripped, and the HTTP layer redacts the token from every error and answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

from collectors.api import (
    ApiClient,
    ApiError,
    Backfill,
    add_account_counts,
    failed,
    find_rate_limit_reset,
)
from collectors.http import HttpClient, Response, parse_retry_after, wait_seconds
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

PLATFORM = SPECS["facebook"].name
DEFAULT_TOKEN_ENV = default_secret_env("facebook")
PAGE_FIELDS = "id,name,username,link"
COUNT_FIELDS = "followers_count,fan_count"
# `message_tags` is asked for besides the documented post fields: mentions come only from it.
POST_FIELDS = (
    "id,message,message_tags,created_time,updated_time,permalink_url,"
    "attachments{media_type,type,url,title,description,media,subattachments},shares,"
    "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),status_type"
)
PAGE_SIZE = 25
# A guard against a paging loop: 2,500 posts is months of any municipality's page.
MAX_LISTING_PAGES = 100
# Recent post ids remembered in the cursor for deletion checks; a bound on the cursor's size.
MAX_TRACKED_POSTS = 1000
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
# Business Use Case limits for Pages and other objects (80001 is "too many calls to this Page").
BUSINESS_RATE_LIMIT_CODES = range(80000, 80015)
CREDENTIAL_CODES = frozenset({102, 190})
TRANSIENT_CODES = frozenset({1, 2})
NOT_FOUND_CODES = frozenset({100, 803})
DELETED_POST = (100, 33)  # "Object with ID ... does not exist"
USAGE_HEADERS = ("x-business-use-case-usage", "x-app-usage", "x-page-usage")

_HASHTAG = re.compile(r"(?<![\w&#])#(\w+)")
_URL = re.compile(r"https?://[^\s<>\"]+")
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Page:
    """A Facebook Page as the page node describes it."""

    id: str
    name: str | None = None
    username: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class WatchedPages:
    """How a post's tagged pages are recognised as configured sources of this platform: by a
    numeric handle, or by the configured name or organisation (Graph tags carry an id and a
    display name, never a username)."""

    by_id: dict[str, str]  # page id -> configured handle
    by_name: dict[str, str]  # casefolded display name -> configured handle

    def find(self, tag: dict[str, Any], own: Page, own_handle: str) -> str | None:
        tag_id = str(tag.get("id") or "")
        if tag_id and tag_id == own.id:
            return own_handle
        if tag_id in self.by_id:
            return self.by_id[tag_id]
        if tag.get("type") == "page":
            return self.by_name.get(str(tag.get("name") or "").casefold())
        return None


@dataclass(frozen=True)
class Window:
    """Which posts a listing reads: created at or after `since`, at most `max_posts`."""

    since: datetime
    max_posts: int | None


class GraphError(ApiError):
    """An ApiError that also carries Graph's error code and subcode."""

    def __init__(self, message: str, *, code: int | None, subcode: int | None, **rest: Any):
        super().__init__(message, **rest)
        self.code = code
        self.subcode = subcode


class FacebookCollector:
    platform: ClassVar[str] = "facebook"

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        self.settings = settings
        self.token_env = settings.secret_env or DEFAULT_TOKEN_ENV
        self.watched = make_watched_pages(settings.sources)

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        token = self.settings.secret
        if not token:
            return CollectResult(
                CollectStatus.FAILED,
                state=state,
                error=f"{PLATFORM}: credentials missing: set the environment variable "
                f"{self.token_env}",
            )
        handle = find_handle(source)
        if not handle:
            return CollectResult(
                CollectStatus.FAILED, state=state, error=f"{PLATFORM}: source has no page handle"
            )
        api_url = source.api_url or self.settings.api_url or ""
        graph = _Graph(http, api_url, token, self.token_env, now)
        # The stored id is used while the handle is the one it was resolved from: an admin who
        # changes the handle (which empties the cursor) gets it resolved again.
        known_id = source.platform_id if state.cursor.get("handle") == handle.lower() else None
        try:
            page = parse_page(await graph.get(known_id or handle, {"fields": PAGE_FIELDS}, handle))
        except ApiError as error:
            return failed(state, error)
        try:
            result = await self._collect_posts(graph, page, handle, state, now)
        except ApiError as error:
            return failed(state, error, resolved_id=page.id, bytes_received=graph.bytes_received)
        return await add_account_counts(
            result, state, now, lambda: self._read_counts(graph, page), answers=graph
        )

    async def _read_counts(self, graph: _Graph, page: Page) -> AccountCounts | None:
        return parse_page_counts(await graph.get(page.id, {"fields": COUNT_FIELDS}))

    async def _collect_posts(
        self, graph: _Graph, page: Page, handle: str, state: SourceState, now: datetime
    ) -> CollectResult:
        refresh_since = now - timedelta(days=self.settings.refresh_days)
        backfill = Backfill.from_settings(self.settings, now)
        window = plan_window(state.cursor, now, backfill, refresh_since)
        items, covered_since = await self._list_posts(graph, page, window)
        seen = {str(item.get("id")) for item in items}

        tracked = {k: v for k, v in dict(state.cursor.get("recent") or {}).items() if k not in seen}
        deleted: list[str] = []
        for post_id, created in sorted(tracked.items()):
            created_at = parse_time(created)
            if created_at is None or created_at < max(covered_since, refresh_since):
                continue
            try:
                items.append(await graph.get(post_id, {"fields": POST_FIELDS}))
            except GraphError as error:
                if (error.code, error.subcode) == DELETED_POST:
                    deleted.append(post_id)
                # Another "cannot read this post" keeps it tracked; limits and tokens end the run.
                elif error.code != DELETED_POST[0] and error.http_status != 404:
                    raise

        posts = tuple(parse_post(item, page, handle, self.watched) for item in items)
        cursor = make_cursor(state.cursor, page, handle, posts, deleted, refresh_since)
        return CollectResult(
            CollectStatus.OK,
            posts=posts,
            state=SourceState(cursor=cursor),
            http_status=graph.last_status,
            resolved_id=page.id,
            deleted=tuple(deleted),
            bytes_received=graph.bytes_received,
        )

    async def _list_posts(
        self, graph: _Graph, page: Page, window: Window
    ) -> tuple[list[dict[str, Any]], datetime]:
        """The page's posts in the window, newest first, and how far back the listing is
        complete (`window.since` unless a post limit cut it short)."""
        params: dict[str, str | int] = {
            "fields": POST_FIELDS,
            "since": int(window.since.timestamp()),
            "limit": PAGE_SIZE,
        }
        kept: list[dict[str, Any]] = []
        for _ in range(MAX_LISTING_PAGES):
            listing = await graph.get(f"{page.id}/posts", params)
            data = [item for item in listing.get("data") or [] if isinstance(item, dict)]
            for item in data:
                created = parse_time(item.get("created_time"))
                # An old pinned post comes first: it is skipped, and never ends the listing.
                if created is None or created < window.since:
                    continue
                kept.append(item)
                if window.max_posts is not None and len(kept) >= window.max_posts:
                    return kept, parse_time(item.get("created_time")) or window.since
            last = parse_time(data[-1].get("created_time")) if data else None
            following = find_next_params(listing.get("paging"))
            if not data or following is None or (last is not None and last < window.since):
                break
            params = following
        return kept, window.since


class _Graph(ApiClient):
    """The Graph API at one base URL with one page token, with Graph's error codes."""

    def __init__(
        self, http: HttpClient, base_url: str, token: str, token_env: str, now: datetime
    ) -> None:
        super().__init__(
            http, base_url, platform=PLATFORM, now=now, token=token, credential_env=token_env
        )

    async def get(
        self, path: str, params: dict[str, str | int], page_handle: str | None = None
    ) -> dict[str, Any]:
        """A Graph object. `page_handle` is set when the object is the page itself, so that
        "does not exist" reads "account not found"."""
        return await self.get_object(
            f"/{quote(path, safe='/._-')}", params, what="the Graph API", lookup=page_handle
        )

    def describe_error(self, response: Response, lookup: str | None) -> GraphError:
        token_env = self.credential_env or DEFAULT_TOKEN_ENV
        return make_graph_error(response, token_env=token_env, now=self.now, page_handle=lookup)


def make_graph_error(
    response: Response, *, token_env: str, now: datetime, page_handle: str | None = None
) -> GraphError:
    """The one-line error a failed Graph call means, with the time to come back when known.

    Graph answers errors as HTTP 400/401/403 with `{"error": {"message", "type", "code",
    "error_subcode", "fbtrace_id"}}`; the code, not the HTTP status, says what happened.
    """
    status = response.status
    error = _error_object(response.body)
    code, subcode = to_int(error.get("code")), to_int(error.get("error_subcode"))
    detail = f"Graph error {code}" if code is not None else f"HTTP {status}"
    if subcode is not None:
        detail += f"/{subcode}"
    trace = error.get("fbtrace_id")
    if isinstance(trace, str) and trace:
        detail += f", fbtrace_id {trace}"

    def graph_error(message: str, **rest: Any) -> GraphError:
        return GraphError(message, code=code, subcode=subcode, http_status=status, **rest)

    if status == 429 or code in RATE_LIMIT_CODES or code in BUSINESS_RATE_LIMIT_CODES:
        until = find_regain_time(response, now) or find_rate_limit_reset(response, now)
        when = f" until {until:%Y-%m-%d %H:%M} UTC" if until else "; retried later"
        return graph_error(f"{PLATFORM}: rate limited{when} ({detail})", retry_after=until)
    if code in CREDENTIAL_CODES or (status == 401 and code is None):
        return graph_error(
            f"{PLATFORM}: credentials expired: renew the page token in {token_env} ({detail})"
        )
    if code == 10 or (code is not None and 200 <= code < 300) or (status == 403 and code is None):
        return graph_error(
            f"{PLATFORM}: access refused: reading pages you don't manage needs Meta's Page "
            f"Public Content Access feature; check the token in {token_env} ({detail})"
        )
    if page_handle is not None and (code in NOT_FOUND_CODES or status in (404, 410)):
        return graph_error(
            f"{PLATFORM}: account not found: no page {page_handle!r} ({detail}); check the handle",
            gone=True,
        )
    if status >= 500 or code in TRANSIENT_CODES or error.get("is_transient") is True:
        return graph_error(
            f"{PLATFORM}: temporary server error ({detail}); retried later",
            retry_after=parse_retry_after(response.header("retry-after"), now),
        )
    message = " ".join(str(error.get("message") or "").split())[:200]
    return graph_error(f"{PLATFORM}: {message or 'request refused'} ({detail})")


def find_regain_time(response: Response, now: datetime) -> datetime | None:
    """When Meta lets us back in: the largest `estimated_time_to_regain_access` (minutes) in
    the usage headers, which Graph sends as JSON."""
    minutes = [
        value
        for name in USAGE_HEADERS
        for value in _find_values(
            _parse_json(response.header(name)), "estimated_time_to_regain_access"
        )
    ]
    longest = max(minutes, default=0)
    return wait_seconds(now, longest * 60) if longest > 0 else None


def find_handle(source: SourceRef) -> str | None:
    """The page's username or id: the configured handle, else the last part of its URL
    (`facebook.com/katrineholmskommun`, `facebook.com/profile.php?id=1048...`)."""
    if source.handle:
        return source.handle.strip().lstrip("@") or None
    if not source.url:
        return None
    parts = urlsplit(source.url)
    query = dict(parse_qsl(parts.query))
    if query.get("id", "").isdigit():
        return query["id"]
    segments = [s for s in parts.path.split("/") if s and s != "pages"]
    return segments[-1] if segments else None


def make_watched_pages(sources: Iterable[ConfiguredSource]) -> WatchedPages:
    """The configured Facebook pages, by numeric id and by unambiguous display name."""
    by_id: dict[str, str] = {}
    names: dict[str, set[str]] = {}
    for source in sources:
        handle = (source.handle or "").strip().lstrip("@").lower()
        if not handle:
            continue
        if handle.isdigit():
            by_id[handle] = handle
        for name in {source.name, source.organisation}:
            if name:
                names.setdefault(name.casefold(), set()).add(handle)
    # An organisation with two pages cannot tell which one a tag means: neither is assumed.
    by_name = {name: next(iter(h)) for name, h in names.items() if len(h) == 1}
    return WatchedPages(by_id=by_id, by_name=by_name)


def plan_window(
    cursor: dict[str, Any], now: datetime, backfill: Backfill, refresh_since: datetime
) -> Window:
    """The first listing backfills; later ones start at the newest post seen, or earlier to
    re-read the counts of posts younger than `refresh_days`."""
    newest = parse_time(cursor.get("newest"))
    if newest is None:
        return Window(since=backfill.since, max_posts=backfill.max_posts)
    return Window(since=min(newest, refresh_since, now), max_posts=None)


def make_cursor(
    previous: dict[str, Any],
    page: Page,
    handle: str,
    posts: tuple[PostData, ...],
    deleted: list[str],
    refresh_since: datetime,
) -> dict[str, Any]:
    """What the next run needs: the page and handle, the newest post's time (the next
    `since`), and the recent posts to look for when the listing drops one."""
    times = [p.published_at for p in posts if p.published_at]
    newest = parse_time(previous.get("newest"))
    if times:
        newest = max([*times, *([newest] if newest else [])])
    recent = {
        post_id: created
        for post_id, created in dict(previous.get("recent") or {}).items()
        if post_id not in deleted and (parse_time(created) or refresh_since) > refresh_since
    }
    for post in posts:
        if post.published_at and post.published_at >= refresh_since:
            recent[post.platform_post_id] = post.published_at.isoformat()
    newest_first = sorted(recent.items(), key=lambda item: item[1], reverse=True)
    return {
        "page_id": page.id,
        "handle": handle.lower(),
        "newest": newest.isoformat() if newest else None,
        "recent": dict(newest_first[:MAX_TRACKED_POSTS]),
    }


def parse_page(document: dict[str, Any]) -> Page:
    """The page node's answer as a Page."""
    page_id = str(document.get("id") or "")
    if not page_id:
        raise ApiError(f"{PLATFORM}: the page answer has no id")
    return Page(
        id=page_id,
        name=_text(document.get("name")),
        username=_text(document.get("username")),
        link=_text(document.get("link")),
    )


def parse_page_counts(document: dict[str, Any]) -> AccountCounts | None:
    """The page's followers: `followers_count`, else `fan_count` (the page's likes, which
    older pages are measured by); None when the answer has neither."""
    followers = to_int(document.get("followers_count"))
    if followers is None:
        followers = to_int(document.get("fan_count"))
    return None if followers is None else AccountCounts(followers=followers)


def parse_post(item: dict[str, Any], page: Page, handle: str, watched: WatchedPages) -> PostData:
    """One Graph post as PostData. Pure: no network, no database.

    Tagged pages that are configured sources are kept by handle; every other tag (people,
    unwatched pages) is only counted, and dropped from the stored payload.
    """
    message = _text(item.get("message"))
    tags = [t for t in item.get("message_tags") or [] if isinstance(t, dict)]
    mentions: list[str] = []
    kept_tags = []
    for tag in tags:
        watched_handle = watched.find(tag, page, handle.lower())
        if watched_handle:
            kept_tags.append(tag)
            if watched_handle not in mentions:
                mentions.append(watched_handle)
    raw = {k: v for k, v in item.items() if k != "message_tags"}
    if kept_tags:
        raw["message_tags"] = kept_tags
    attachments = _attachments(item)
    permalink = _text(item.get("permalink_url"))
    return PostData(
        platform_post_id=str(item["id"]),
        kind=classify_post(item, attachments),
        url=permalink,
        author=page.name or page.username or handle,
        published_at=parse_time(item.get("created_time")),
        text=message,
        tags=tuple(dict.fromkeys(_HASHTAG.findall(message or ""))),
        links=_find_links(message, attachments),
        mentions=tuple(mentions),
        other_mentions=len(tags) - len(kept_tags),
        media=tuple(m for a in attachments for m in _media_of(a)),
        raw=raw,
        metrics=_metrics(item),
    )


def classify_post(item: dict[str, Any], attachments: list[dict[str, Any]]) -> str:
    """video, photo or post, from the status type and what is attached."""
    status_type = item.get("status_type")
    media_types = {a.get("media_type") for a in attachments}
    for attachment in attachments:
        media_types |= {s.get("media_type") for s in _subattachments(attachment)}
    if status_type == "added_video" or "video" in media_types:
        return "video"
    if status_type == "added_photos":
        return "photo"
    return "post"


def find_next_params(paging: Any) -> dict[str, str | int] | None:
    """The query of `paging.next` without the access_token, to be sent to our own base URL;
    None on the last page."""
    if not isinstance(paging, dict) or not isinstance(paging.get("next"), str):
        return None
    query = [(k, v) for k, v in parse_qsl(urlsplit(paging["next"]).query) if k != "access_token"]
    return dict(query) or None


def _attachments(item: dict[str, Any]) -> list[dict[str, Any]]:
    data = (item.get("attachments") or {}).get("data") or []
    return [a for a in data if isinstance(a, dict)]


def _subattachments(attachment: dict[str, Any]) -> list[dict[str, Any]]:
    data = (attachment.get("subattachments") or {}).get("data") or []
    return [a for a in data if isinstance(a, dict)]


def _media_of(attachment: dict[str, Any]) -> list[Media]:
    """Photos and videos of an attachment; an album's come from its subattachments. Link
    previews are not the post's media and are left out."""
    children = _subattachments(attachment)
    if children:
        return [m for child in children for m in _media_of(child)]
    media_type = attachment.get("media_type")
    media = attachment.get("media") or {}
    image = media.get("image") or {}
    src = _text(image.get("src"))
    if media_type == "photo":
        return [
            Media(
                type="image",
                url=src,
                width=to_int(image.get("width")),
                height=to_int(image.get("height")),
            )
        ]
    if media_type == "video":
        return [
            Media(
                type="video",
                # A video whose own source is not a web address is watched on its page.
                url=next(
                    (u for u in (media.get("source"), attachment.get("url")) if is_http_url(u)),
                    None,
                ),
                thumbnail_url=src,
                width=to_int(image.get("width")),
                height=to_int(image.get("height")),
            )
        ]
    return []


def _find_links(message: str | None, attachments: list[dict[str, Any]]) -> tuple[str, ...]:
    """Links in the text, and the shared link of a link attachment, unwrapped from Facebook's
    `l.facebook.com/l.php?u=` redirect."""
    links = [m.rstrip(_TRAILING_PUNCTUATION) for m in _URL.findall(message or "")]
    for attachment in attachments:
        if attachment.get("media_type") == "link" or attachment.get("type") == "share":
            url = _text(attachment.get("url"))
            if url:
                links.append(url)
    unwrapped = [_unwrap(link) for link in links]
    return tuple(dict.fromkeys(link for link in unwrapped if link))


def _unwrap(url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname in ("l.facebook.com", "lm.facebook.com") and parts.path == "/l.php":
        target = dict(parse_qsl(parts.query)).get("u")
        if target:
            return target
    return url


def _metrics(item: dict[str, Any]) -> dict[str, int]:
    """Reactions, comments and shares. Graph leaves `shares` out of a post nobody shared."""
    reactions = to_int(((item.get("reactions") or {}).get("summary") or {}).get("total_count"))
    comments = to_int(((item.get("comments") or {}).get("summary") or {}).get("total_count"))
    metrics = {"reposts": to_int((item.get("shares") or {}).get("count")) or 0}
    if reactions is not None:
        metrics["reactions"] = reactions
    if comments is not None:
        metrics["replies"] = comments
    return metrics


def _error_object(body: bytes) -> dict[str, Any]:
    document = _parse_json(body)
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


def _parse_json(value: str | bytes | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _find_values(document: Any, key: str) -> list[int]:
    """Every integer value of `key` anywhere in a JSON document."""
    if isinstance(document, dict):
        found = [v for k, v in document.items() if k == key and isinstance(v, int)]
        return found + [x for v in document.values() for x in _find_values(v, key)]
    if isinstance(document, list):
        return [x for v in document for x in _find_values(v, key)]
    return []


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
