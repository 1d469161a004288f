"""RSS, Atom and RDF feeds, including YouTube channel, Flickr and Mastodon account feeds.

We fetch; feedparser only parses bytes (it is never handed a URL, so it never fetches). Content is
stored unsanitised (`sanitize_html=False`) and sanitised where it is rendered.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from collectors.http import FetchError, HttpClient, parse_freshness, parse_retry_after
from collectors.text import html_to_text
from monitor.types import (
    ApiUsage,
    CollectResult,
    CollectStatus,
    Media,
    PostData,
    SourceRef,
    SourceState,
)
from monitor.values import to_int

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from collectors.base import CollectorSettings
    from monitor.rows import PreparedPost
    from monitor.types import UnchangedPost

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
YOUTUBE_NAMESPACE = "http://www.youtube.com/xml/schemas/2015"
# Ids longer than this are replaced by their hash: they index poorly and some feeds put whole
# URLs with tracking parameters there.
MAX_ID_LENGTH = 512
# Where a feed source's memory of its posts is kept in `SourceState.cursor` (`sort_posts`).
SEEN_KEY = "seen"


class FeedError(Exception):
    """The body is not a feed at all; the message is one line for admins."""


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    flavour: str  # youtube | flickr | mastodon | generic
    posts: tuple[PostData, ...]
    problem: str | None = None  # set when the feed was only partly readable
    prepared: tuple[PreparedPost, ...] = ()  # the posts' row values (`parse_and_prepare`)
    # Left out of `posts`, as the source's memory has them (`parse_and_prepare`).
    unchanged: tuple[UnchangedPost, ...] = ()
    seen: str | None = None  # the memory of this read, when it was sorted by one


class FeedCollector:
    platform: ClassVar[str] = "feed"

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        self.settings = settings
        self.parsing = parsing

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        if not source.url:
            return CollectResult(CollectStatus.FAILED, state=state, error="source has no url")
        return await fetch_feed(
            http, source.url, state, self.parsing, self.settings, now, prepare=True
        )


async def fetch_feed(
    http: HttpClient,
    url: str,
    state: SourceState,
    parsing: Executor,
    settings: CollectorSettings,
    now: datetime,
    *,
    accept: str = ACCEPT,
    movable: bool = True,
    fast: bool = True,
    prepare: bool = False,
) -> CollectResult:
    """One conditional GET of a feed, parsed off the event loop: the one way every collector
    reads a feed (feed sources, and the feed fallbacks of YouTube, Flickr and Mastodon).

    The result always carries what the response said: `http_status` (None when no response
    came), `bytes_received`, `fresh_until` (Cache-Control, Expires), `moved_to` (permanent
    redirects) and, on 429 and 503, `retry_after` (capped at `[collect] max_interval`, the longest
    the schedule waits). Its status is NOT_MODIFIED (304); OK or PARTIAL with the posts and the new
    validators (`error` then says what was only partly readable, or that `[collect] max_entries`
    cut the feed short); RETIRED (410); or FAILED with `error` one line for admins. Failures keep
    `state`.

    Args:
        parsing: where `parse_feed` runs (feedparser is CPU-bound and synchronous).
        now: the attempt's start, from which freshness and `Retry-After` are counted.
        movable: whether a permanent redirect moves the source (`moved_to`): not for an address
            built from an account id or handle, which the next run builds again.
        fast: as for `parse_feed`; False for collectors whose adapters read feedparser's entry
            from the raw payload (the feeds of YouTube and Flickr accounts).
        prepare: compute the posts' row values beside the parsing (`monitor.rows`), off the
            database thread: for a collector that stores the posts as parsed. Posts the
            source's memory (in `state.cursor`) has unchanged are then left out of `posts`
            (`CollectResult.unchanged`), and the new state remembers this read.
    """
    headers = {"Accept": accept}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        response = await http.get(url, headers)
    except FetchError as error:
        return CollectResult(CollectStatus.FAILED, state=state, error=str(error))

    # Every outcome below starts from what the response says; failures keep the old state.
    not_modified = response.status == 304
    base = CollectResult(
        CollectStatus.NOT_MODIFIED if not_modified else CollectStatus.FAILED,
        state=state,
        http_status=response.status,
        moved_to=response.moved_to if movable else None,
        bytes_received=len(response.body),
        fresh_until=parse_freshness(
            response.header("cache-control"), response.header("expires"), now
        ),
    )
    if not_modified:  # most answers: built as it is returned
        return base
    if response.status == 410:
        return replace(
            base,
            status=CollectStatus.RETIRED,
            error="gone (HTTP 410): the publisher has removed this feed",
        )
    if response.status in (429, 503):
        retry_after = parse_retry_after(response.header("retry-after"), now)
        if retry_after is not None:
            # The schedule waits no longer than this; the message must not promise more.
            retry_after = min(retry_after, now + timedelta(seconds=settings.max_interval))
        when = f"; retry after {retry_after:%Y-%m-%d %H:%M} UTC" if retry_after else ""
        reason = "rate limited" if response.status == 429 else "service unavailable"
        return replace(
            base, error=f"{reason} (HTTP {response.status}){when}", retry_after=retry_after
        )
    if response.status >= 400:
        host = urlsplit(response.url).hostname
        return replace(base, error=f"HTTP {response.status} from {host}")
    if not response.body.strip():
        return replace(base, error="empty response body")

    options: dict[str, Any] = {"seen": state.cursor.get(SEEN_KEY)} if prepare else {}
    parse = functools.partial(
        parse_and_prepare if prepare else parse_feed,
        response.body,
        url=response.url,
        content_type=response.header("content-type"),
        max_entries=settings.max_entries,
        fast=fast,
        **options,
    )
    try:
        # feedparser is CPU-bound and synchronous: keep it off the event loop.
        parsed = await asyncio.get_running_loop().run_in_executor(parsing, parse)
    except FeedError as error:
        return replace(base, error=str(error))
    cursor = state.cursor if parsed.seen is None else state.cursor | {SEEN_KEY: parsed.seen}
    new_state = SourceState(
        etag=response.header("etag"),
        last_modified=response.header("last-modified"),
        cursor=cursor,
    )
    return replace(
        base,
        status=CollectStatus.PARTIAL if parsed.problem else CollectStatus.OK,
        posts=parsed.posts,
        state=new_state,
        error=parsed.problem,
        prepared=parsed.prepared,
        unchanged=parsed.unchanged,
    )


def parse_feed(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    max_entries: int | None = None,
    fast: bool = True,
) -> ParsedFeed:
    """Posts from the bytes of a feed. Pure: no network, no database.

    Well-formed RSS 2.0 and Atom 1.0 are read with lxml by feedparser's rules
    (collectors/feedxml.py); everything else, and anything that reading does not know, by
    feedparser itself. Both give the same posts; the raw payload differs: the entry's XML as the
    publisher sent it, or feedparser's entry where feedparser read the feed.

    Args:
        max_entries: take at most this many entries, the newest (by date; undated ones last,
            in the feed's order); `problem` then says how many the feed listed.
        fast: False reads with feedparser only (the tests compare the two readings).

    Raises:
        FeedError: the body is not a feed (an HTML page, an empty or unparseable document).
    """
    # Imported here: in a pool worker. A collection whose feeds all answer 304 parses nothing,
    # and importing feedparser and lxml was 5 % of such a pass.
    from collectors.feedxml import read_feed

    document = (read_feed(body, content_type) if fast else None) or _read_with_feedparser(
        body, content_type
    )
    problem = None
    if document["bozo"] and not _is_benign(document["bozo_exception"]):
        problem = _describe_bozo(document["bozo_exception"])
    entries = document["entries"]
    if not document["version"] and not entries:
        if _looks_like_html(body, content_type):
            raise FeedError(
                f"not a feed: the server returned an HTML page ({content_type or 'no type'})"
            )
        raise FeedError(f"not a feed: {problem or 'no RSS, Atom or RDF content found'}")

    flavour = _detect_flavour(document)
    feed_language = document["feed"].get("language")
    raws = document["xml"] or [None] * len(entries)
    pairs = list(zip(entries, raws, strict=True))
    problems = []
    if max_entries is not None and len(pairs) > max_entries:
        problems.append(
            f"{len(pairs):,} entries in the feed; the newest {max_entries:,} taken "
            "([collect] max_entries)"
        )
        # sorted() is stable: undated entries keep the feed's own order, after the dated ones.
        pairs = sorted(pairs, key=lambda pair: _entry_sort_key(pair[0]), reverse=True)
        pairs = pairs[:max_entries]
    posts = tuple(_make_post(entry, xml, flavour, url, feed_language) for entry, xml in pairs)
    if problem:
        problems.insert(0, f"feed is not well-formed ({problem}); {len(posts)} entries recovered")
    return ParsedFeed(
        title=document["feed"].get("title"),
        flavour=flavour,
        posts=posts,
        problem="; ".join(problems) or None,
    )


def parse_and_prepare(body: bytes, *, seen: str | None = None, **options: Any) -> ParsedFeed:
    """`parse_feed`, with each post's row values computed too (in the parse worker, so that
    the database thread only writes them), but for the posts `seen`, the memory of the
    source's last read, has unchanged (`monitor.rows.sort_posts`)."""
    # Imported here, in the parse worker: trend terms load word lists the fetching never needs.
    from monitor.rows import sort_posts

    parsed = parse_feed(body, **options)
    found = sort_posts(parsed.posts, seen)
    return replace(
        parsed,
        posts=found.posts,
        prepared=found.prepared,
        unchanged=found.unchanged,
        seen=found.seen,
    )


def _is_benign(error: BaseException | None) -> bool:
    """Whether feedparser flagged a feed whose entries are intact: a charset declared one way
    and served another, or an XML feed served as text/plain."""
    import feedparser  # only feedparser's own reading flags anything

    return isinstance(error, feedparser.CharacterEncodingOverride | feedparser.NonXMLContentType)


def _read_with_feedparser(body: bytes, content_type: str | None) -> dict[str, Any]:
    """feedparser's reading, with the keys `read_feed` gives (no entry XML)."""
    import feedparser

    # No content-location: feedparser would resolve every link against it (a fifth of its
    # time); we resolve the few links we keep ourselves.
    headers = {"content-type": content_type} if content_type else {}
    document = feedparser.parse(
        body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    return {
        "version": document.get("version"),
        "namespaces": document.get("namespaces", {}),
        "feed": document.feed,
        "entries": document.entries,
        "xml": None,
        "bozo": document.bozo,
        "bozo_exception": document.get("bozo_exception"),
    }


def _detect_flavour(document: Any) -> str:
    # YouTube is recognised by its namespace, whatever the URL (proxies, mirrors, tests).
    if YOUTUBE_NAMESPACE in document["namespaces"].values():
        return "youtube"
    generator = document["feed"].get("generator_detail") or {}
    name = f"{generator.get('name', '')} {generator.get('href', '')}".lower()
    if "flickr" in name:
        return "flickr"
    if "mastodon" in name:
        return "mastodon"
    return "generic"


def _entry_time(entry: Any) -> datetime | None:
    return _to_datetime(
        entry.get("published_parsed") or entry.get("updated_parsed") or entry.get("created_parsed")
    )


def _entry_sort_key(entry: Any) -> tuple[bool, datetime]:
    # Reverse-sorted: dated entries newest first, then the undated ones.
    published = _entry_time(entry)
    return (published is not None, published or datetime.min.replace(tzinfo=UTC))


def _make_post(
    entry: Any, xml: str | None, flavour: str, feed_url: str, feed_language: str | None
) -> PostData:
    link = entry.get("link")
    link = urljoin(feed_url, link) if link else None
    published = _entry_time(entry)
    markup, is_plain = _choose_body(entry)
    title = entry.get("title") or None
    if title and entry.get("title_detail", {}).get("type") == "text/html":
        title = html_to_text(title)
    media = _collect_media(entry, flavour)
    metrics = _youtube_metrics(entry) if flavour == "youtube" else None
    return PostData(
        platform_post_id=_entry_id(entry, link),
        kind=_kind_of(flavour, media),
        url=link,
        author=entry.get("author") or None,
        published_at=published,
        title=title,
        text=(markup.strip() or None) if (is_plain and markup) else html_to_text(markup),
        html=None if is_plain else (markup or None),
        language=(entry.get("title_detail", {}).get("language") or feed_language or None),
        tags=tuple(t.get("term") for t in entry.get("tags", []) if t.get("term")),
        media=media,
        raw={"xml": xml} if xml is not None else _compact(_jsonable(dict(entry))),
        metrics=metrics,
    )


def _choose_body(entry: Any) -> tuple[str | None, bool]:
    """The entry's main markup and whether it is plain text.

    Full HTML content wins over the summary. A plain-text `content` loses to the summary: in
    Mastodon's feeds it is an image's media:description (alt text), not the post.
    """
    content = entry.get("content") or []
    for item in content:
        if item.get("type") in ("text/html", "application/xhtml+xml") and item.get("value"):
            return item["value"], False
    summary = entry.get("summary")
    if summary:
        return summary, entry.get("summary_detail", {}).get("type") == "text/plain"
    if content and content[0].get("value"):
        return content[0]["value"], content[0].get("type") == "text/plain"
    return None, False


def _entry_id(entry: Any, link: str | None) -> str:
    """The guid, else the link, else a hash of the entry: one odd entry never drops a feed."""
    candidate = (entry.get("id") or "").strip() or link
    if not candidate:
        fingerprint = json.dumps(
            [
                entry.get("title"),
                entry.get("published") or entry.get("updated"),
                entry.get("summary"),
            ],
            ensure_ascii=False,
        )
        return "sha256:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    if len(candidate) > MAX_ID_LENGTH:
        return "sha256:" + hashlib.sha256(candidate.encode()).hexdigest()
    return candidate


def _kind_of(flavour: str, media: tuple[Media, ...]) -> str:
    if flavour == "youtube":
        return "video"
    if flavour == "flickr":
        return "video" if any(m.type == "video" for m in media) else "photo"
    if flavour == "mastodon":
        return "post"
    return "article"


def _collect_media(entry: Any, flavour: str) -> tuple[Media, ...]:
    thumbnails = [t.get("url") for t in entry.get("media_thumbnail", []) if t.get("url")]
    items: list[Media] = []
    seen: set[str] = set()
    for content in entry.get("media_content", []):
        url = content.get("url")
        if not url or url in seen:
            continue
        seen.add(url)
        kind = _media_type(content.get("medium"), content.get("type"))
        if flavour == "youtube":
            kind = "video"
        items.append(
            Media(
                type=kind,
                url=url,
                thumbnail_url=thumbnails[0] if thumbnails else None,
                duration_s=to_int(content.get("duration")),
                width=to_int(content.get("width")),
                height=to_int(content.get("height")),
                alt_text=_media_description(entry) if flavour == "mastodon" else None,
            )
        )
    for enclosure in entry.get("enclosures", []):
        url = enclosure.get("href")
        if not url or url in seen:
            continue
        seen.add(url)
        items.append(Media(type=_media_type(None, enclosure.get("type")), url=url))
    if not items and thumbnails:
        items.append(Media(type="image", thumbnail_url=thumbnails[0]))
    return tuple(items)


def _media_type(medium: str | None, mime: str | None) -> str:
    if medium in ("image", "video", "audio"):
        return medium
    major = (mime or "").split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "other"


def _media_description(entry: Any) -> str | None:
    # feedparser files an item's media:description under `content` as text/plain.
    for item in entry.get("content") or []:
        if item.get("type") == "text/plain" and (item.get("value") or "").strip():
            return str(item["value"]).strip()
    return None


def _youtube_metrics(entry: Any) -> dict[str, int] | None:
    metrics = {}
    views = to_int((entry.get("media_statistics") or {}).get("views"))
    if views is not None:
        metrics["views"] = views
    likes = to_int((entry.get("media_starrating") or {}).get("count"))
    if likes is not None:
        metrics["likes"] = likes
    return metrics or None


def _to_datetime(parsed: time.struct_time | None) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _describe_bozo(error: BaseException | None) -> str:
    if error is None:
        return "unknown parse error"
    message = str(getattr(error, "getMessage", lambda: error)()).strip()
    line = getattr(error, "getLineNumber", lambda: None)()
    where = f" at line {line}" if line else ""
    return f"{message or type(error).__name__}{where}"


def _looks_like_html(body: bytes, content_type: str | None) -> bool:
    if content_type and content_type.split(";")[0].strip().lower() == "text/html":
        return True
    head = body[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head


def _compact(raw: dict[str, Any]) -> dict[str, Any]:
    """The entry without what feedparser derived from it twice: the parsed forms of its dates
    (the text is kept) and `*_detail` values equal to the plain key. Nothing is lost; stored
    payloads shrink by about a third."""
    compact = {k: v for k, v in raw.items() if not k.endswith("_parsed")}
    for key, value in raw.items():
        plain = raw.get(key.removesuffix("_detail"))
        if key.endswith("_detail") and isinstance(value, dict) and value.get("value") == plain:
            compact[key] = {k: v for k, v in value.items() if k != "value"}
    return compact


def _jsonable(value: Any) -> Any:
    """feedparser's entry as JSON-ready data (struct_time becomes ISO text)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not isinstance(value, time.struct_time):
        return [_jsonable(v) for v in value]
    if isinstance(value, time.struct_time):
        moment = _to_datetime(value)
        return moment.isoformat() if moment else None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
