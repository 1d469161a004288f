"""Flickr: an account's public photos and videos, with views, faves and comment counts.

With an API key (`[platforms.flickr] api_key_env`, FLICKR_API_KEY by default) the REST API is read
at `source.api_url` (https://api.flickr.com/services/rest) in JSON (`format=json&nojsoncallback=1`).
Methods used, as named in Flickr's API documentation (https://www.flickr.com/services/api/):

- `flickr.urls.lookupUser` (a path alias) or `flickr.people.findByUsername` (a screen name):
  the handle becomes the account's NSID once; the NSID is stable across renames.
- `flickr.people.getPublicPhotos` with `extras` and `min_upload_date`: the photostream, newest
  upload first, 100 a page. The first run backfills; later runs read from the last upload seen
  or the start of the refresh window, whichever is older, so recent counts are re-read.
- `flickr.people.getInfo`: the account's photo count (`photos.count`) and, where Flickr gives
  it, its views (`photos.views`), at most once a UTC day. Followers are not public: NULL.
- `flickr.photos.getInfo`: asked about a few recent photos that vanished from the photostream;
  error 1 ("Photo not found") means the photo was deleted or made private.

We call the API over the shared aiohttp client rather than through the `flickrapi` package: it
is synchronous (requests) and built around OAuth, while we only need key-signed public reads.
Flickr reports failures as HTTP 200 with `{"stat": "fail", "code": N, "message": ...}`: code 100
is a refused key, 1 an unknown user or photo, 105 a temporary outage. The key travels as the
`api_key` query parameter, so it is removed from every error message and stored payload.

Without a key, the account's public Atom feed ("Feeds" in the API documentation,
`/services/feeds/photos_public.gne?id=NSID&format=atom`) is read with `collectors.feeds`. It
needs the NSID: the handle when it is one, or the NSID a keyed run resolved earlier. A source's
`url` is used as the feed address when it is set and is not a flickr.com profile page (that is
also how tests point the feed at a loopback server). The feed has no counts and no deletions;
its ids are reduced to Flickr's photo ids, so posts stay the same posts when a key is added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

from collectors.api import ApiClient, ApiError, Backfill, add_account_counts, failed
from collectors.feeds import fetch_feed
from collectors.http import HttpClient
from collectors.text import html_to_text
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
from monitor.values import to_int

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from collectors.base import CollectorSettings

PLATFORM = SPECS["flickr"].name
DEFAULT_KEY_ENV = default_secret_env("flickr")
FEED_URL = "https://www.flickr.com/services/feeds/photos_public.gne"
EXTRAS = (
    "description,date_upload,date_taken,last_update,views,media,tags,url_l,url_m,url_sq,"
    "o_dims,path_alias,count_faves,count_comments"
)
PER_PAGE = 100
# An incremental run after a long outage reads at most this many pages (5,000 photos); the
# next run continues from the newest photo seen.
MAX_PAGES = 50
# getInfo calls per run for photos missing from the photostream: deletions are rare, and each
# check is one request against the key's 3,600 an hour.
MAX_DELETION_CHECKS = 5

# Flickr's error codes (HTTP 200, stat=fail), from the API documentation of each method.
CODE_NOT_FOUND = 1  # "User not found" / "Photo not found"
CODE_INVALID_KEY = 100  # "Invalid API Key"
CODE_UNAVAILABLE = 105  # "Service currently unavailable"

NSID = re.compile(r"^\d+@N\d{2}$")
PATH_ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")
# A link to an account on flickr.com: /people/NAME or /photos/NAME (a photo page counts too).
ACCOUNT_LINK = re.compile(r"^https?://(?:www\.)?flickr\.com/(?:people|photos)/([^/?#]+)", re.I)
# Flickr pages under /photos/ that are not accounts.
NOT_ACCOUNTS = frozenset({"tags", "search", "upload", "organize", "friends"})
URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+")
FEED_PHOTO_ID = re.compile(r"/photo/(\d+)$")
# The public feed wraps every description in a fixed template: "NAME posted a photo:" and a
# small linked thumbnail. Neither is the publisher's text.
FEED_TEMPLATE = re.compile(
    r"^\s*<p><a [^>]*>[^<]*</a> posted a (?:photo|video):</p>\s*"
    r"(?:<p><a [^>]*>\s*<img [^>]*>\s*</a></p>\s*)?",
    re.I,
)


class FlickrError(ApiError):
    """Flickr answered `stat: fail`; `code` is its error number."""

    def __init__(self, message: str, *, code: int | None, http_status: int | None) -> None:
        super().__init__(message, http_status=http_status)
        self.code = code


@dataclass(frozen=True)
class PhotoPage:
    """What paging through the photostream found."""

    photos: tuple[dict[str, Any], ...]
    complete: bool  # every photo since the lower bound was listed (no limit cut it short)


class FlickrCollector:
    platform: ClassVar[str] = "flickr"

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        self.settings = settings
        self.parsing = parsing
        self.key_env = settings.secret_env or DEFAULT_KEY_ENV
        self.watched = find_watched_accounts((s.handle, s.url) for s in settings.sources)

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        key = self.settings.secret
        if key is None:
            return await self._collect_feed(source, state, http, now)
        url = source.api_url or self.settings.api_url or ""
        api = FlickrApi(http, url, key, self.key_env, now)
        try:
            result = await self._collect_api(source, state, api, now)
        except ApiError as error:
            return failed(state, error, bytes_received=api.bytes_received)
        nsid = result.resolved_id or ""
        return await add_account_counts(
            result, state, now, lambda: read_account_counts(api, nsid), answers=api
        )

    async def _collect_api(
        self, source: SourceRef, state: SourceState, api: FlickrApi, now: datetime
    ) -> CollectResult:
        nsid = source.platform_id or await resolve_account(api, source)
        refresh_since = now - timedelta(days=self.settings.refresh_days)
        last_upload = state.cursor.get("last_upload")
        if isinstance(last_upload, int):
            since = min(datetime.fromtimestamp(last_upload, UTC), refresh_since)
            limit = None
        else:
            backfill = Backfill.from_settings(self.settings, now)
            since, limit = backfill.since, backfill.max_posts
        listed = await list_photos(api, nsid, since, limit)

        recent = find_recent_uploads(state.cursor.get("recent"), listed.photos, refresh_since)
        checked: dict[str, bool] = {}
        if listed.complete:
            checked = await check_missing_photos(api, recent, {str(p["id"]) for p in listed.photos})
            # A checked photo is settled either way: gone now, or alive but out of the stream.
            recent = {k: v for k, v in recent.items() if k not in checked}
        uploads = [t for p in listed.photos if (t := to_int(p.get("dateupload"))) is not None]
        cursor = {
            "last_upload": max(
                [*uploads, last_upload if isinstance(last_upload, int) else int(since.timestamp())]
            ),
            "recent": recent,
        }
        posts = tuple(make_post(p, owner=nsid, watched=self.watched) for p in listed.photos)
        return CollectResult(
            CollectStatus.OK,
            posts=posts,
            state=SourceState(cursor=cursor),
            http_status=api.last_status,
            bytes_received=api.bytes_received,
            resolved_id=nsid,
            deleted=tuple(i for i, gone in checked.items() if gone),
        )

    async def _collect_feed(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        try:
            url, nsid = find_feed_address(source, self.key_env)
        except ApiError as error:
            return failed(state, error)
        # The address built from the NSID cannot move.
        movable = url == source.url
        # adapt_feed_post reads the author's link and NSID from feedparser's entry.
        result = await fetch_feed(
            http, url, state, self.parsing, self.settings, now, movable=movable, fast=False
        )
        result = replace(result, resolved_id=nsid)
        if result.http_status in (404, 410):
            who = nsid or source.handle or url
            return replace(
                result,
                status=CollectStatus.FAILED,
                error=f"{PLATFORM}: account not found: no public feed for {who} "
                f"(HTTP {result.http_status})",
            )
        if result.status is CollectStatus.FAILED:
            return replace(result, error=f"{PLATFORM} feed: {result.error}")
        posts = tuple(adapt_feed_post(p, watched=self.watched) for p in result.posts)
        feed_nsid = next((p.raw["flickr_nsid"] for p in posts if p.raw.get("flickr_nsid")), None)
        return replace(result, posts=posts, resolved_id=nsid or feed_nsid)


class FlickrApi(ApiClient):
    """Calls to the REST API (one URL, the method a parameter) with the key as `api_key`."""

    def __init__(self, http: HttpClient, url: str, key: str, key_env: str, now: datetime) -> None:
        super().__init__(
            http,
            url,
            platform=PLATFORM,
            now=now,
            token=key,
            token_param="api_key",
            credential_env=key_env,
        )

    async def call(self, method: str, **params: str | int) -> dict[str, Any]:
        """One API method's answer.

        Raises:
            FlickrError: Flickr answered `stat: fail` (the key refused, not found, unavailable).
            ApiError: an HTTP error, a network failure or a body that is not a JSON object.
        """
        query: dict[str, str | int] = {"method": method, "format": "json", "nojsoncallback": 1}
        # The HTTP layer redacts the key from errors and from the answer (Flickr echoes it).
        document = await self.get_object("", {**query, **params}, what=method)
        if document.get("stat") == "fail":
            raise self._describe_failure(method, document)
        return document

    def _describe_failure(self, method: str, document: Mapping[str, Any]) -> FlickrError:
        # Flickr says `stat: fail` in an answer whose HTTP status is a success.
        status = self.last_status
        code = to_int(document.get("code"))
        message = str(document.get("message") or "no message")
        if code == CODE_INVALID_KEY:
            return FlickrError(
                f"{PLATFORM}: credentials invalid: the API key was refused "
                f"(check {self.credential_env}): {message}",
                code=code,
                http_status=status,
            )
        if code == CODE_UNAVAILABLE:
            return FlickrError(
                f"{PLATFORM}: service temporarily unavailable (error {code}); retried later",
                code=code,
                http_status=status,
            )
        return FlickrError(
            f"{PLATFORM}: {method} failed: {message} (error {code})", code=code, http_status=status
        )


async def resolve_account(api: FlickrApi, source: SourceRef) -> str:
    """The account's NSID from the configured handle (an NSID, path alias or screen name).

    Raises:
        ApiError: "account not found" when no lookup knows the handle.
    """
    handle = find_handle(source)
    if handle is None:
        raise ApiError(f"{PLATFORM}: the source has no handle: set handle to the account's NSID")
    if NSID.match(handle):
        return handle
    lookups: list[tuple[str, dict[str, str | int]]] = []
    if PATH_ALIAS.match(handle):
        lookups.append(
            ("flickr.urls.lookupUser", {"url": f"https://www.flickr.com/photos/{handle}/"})
        )
    lookups.append(("flickr.people.findByUsername", {"username": handle}))
    for method, params in lookups:
        try:
            document = await api.call(method, **params)
        except FlickrError as error:
            if error.code == CODE_NOT_FOUND:
                continue
            raise
        user = document.get("user") or {}
        nsid = user.get("nsid") or user.get("id")
        if isinstance(nsid, str) and nsid:
            return nsid
    raise ApiError(
        f"{PLATFORM}: account not found: no Flickr user {handle!r} "
        "(check the handle: an NSID like 12345678@N02, a path alias or a screen name)",
        gone=True,
    )


async def read_account_counts(api: FlickrApi, nsid: str) -> AccountCounts | None:
    """The account's photo count and views from `flickr.people.getInfo`."""
    return parse_person_counts(await api.call("flickr.people.getInfo", user_id=nsid))


def parse_person_counts(document: Mapping[str, Any]) -> AccountCounts | None:
    """`person.photos.count` and `person.photos.views` of a people.getInfo answer (each a
    `{"_content": N}` object in Flickr's JSON); None when it has neither."""
    person = document.get("person")
    photos = person.get("photos") if isinstance(person, dict) else None
    if not isinstance(photos, dict):
        return None

    def content(name: str) -> int | None:
        value = photos.get(name)
        return to_int(value.get("_content") if isinstance(value, dict) else value)

    counts = AccountCounts(views=content("views"), posts=content("count"))
    return None if counts.is_empty() else counts


async def list_photos(api: FlickrApi, nsid: str, since: datetime, limit: int | None) -> PhotoPage:
    """The account's public photos uploaded since `since`, newest first, at most `limit`.

    Paging ends at the last page, not at the first old photo: an out-of-order photo (one whose
    upload date was edited back, like a pinned post) is skipped, never a stop signal.
    """
    floor = int(since.timestamp())
    photos: list[dict[str, Any]] = []
    seen: set[str] = set()
    for page in range(1, MAX_PAGES + 1):
        try:
            document = await api.call(
                "flickr.people.getPublicPhotos",
                user_id=nsid,
                extras=EXTRAS,
                per_page=PER_PAGE,
                page=page,
                min_upload_date=floor,
            )
        except FlickrError as error:
            if error.code == CODE_NOT_FOUND:
                raise ApiError(
                    f"{PLATFORM}: account not found: user {nsid} no longer exists", gone=True
                ) from None
            raise
        block = document.get("photos") or {}
        items = [p for p in block.get("photo") or [] if isinstance(p, dict) and p.get("id")]
        fresh = [p for p in items if (to_int(p.get("dateupload")) or floor) >= floor]
        for photo in fresh:
            if str(photo["id"]) not in seen:
                seen.add(str(photo["id"]))
                photos.append(photo)
        if limit is not None and len(photos) >= limit:
            return PhotoPage(tuple(photos[:limit]), complete=False)
        if not items or not fresh or page >= (to_int(block.get("pages")) or 0):
            return PhotoPage(tuple(photos), complete=True)
    return PhotoPage(tuple(photos), complete=False)


def find_recent_uploads(
    remembered: Any, photos: Iterable[Mapping[str, Any]], refresh_since: datetime
) -> dict[str, int]:
    """Photo id -> upload time of the photos still inside the refresh window: those the cursor
    remembers and those just listed. Only these are checked for deletion."""
    floor = int(refresh_since.timestamp())
    recent = {
        str(k): v
        for k, v in (remembered.items() if isinstance(remembered, dict) else ())
        if isinstance(v, int) and v >= floor
    }
    for photo in photos:
        uploaded = to_int(photo.get("dateupload"))
        if uploaded is not None and uploaded >= floor:
            recent[str(photo["id"])] = uploaded
    return recent


async def check_missing_photos(
    api: FlickrApi, recent: Mapping[str, int], listed: set[str]
) -> dict[str, bool]:
    """Photo id -> deleted, for recent photos missing from a complete listing: getInfo's error 1
    ("Photo not found") means deleted or made private.

    A handful a run, newest first; the rest wait for the next run. Any other failure ends the
    checks for this run without failing the collection: deletion is best effort.
    """
    missing = sorted((i for i in recent if i not in listed), key=lambda i: -recent[i])
    checked: dict[str, bool] = {}
    for photo_id in missing[:MAX_DELETION_CHECKS]:
        try:
            await api.call("flickr.photos.getInfo", photo_id=photo_id)
        except FlickrError as error:
            if error.code != CODE_NOT_FOUND:
                break
            checked[photo_id] = True
        except ApiError:
            break
        else:
            checked[photo_id] = False
    return checked


def make_post(photo: Mapping[str, Any], *, owner: str, watched: Mapping[str, str]) -> PostData:
    """One photo of `flickr.people.getPublicPhotos` (with our extras) as a post. Pure."""
    photo_id = str(photo["id"])
    alias = photo.get("pathalias") or None
    account = alias or owner
    description = (photo.get("description") or {}).get("_content") or ""
    links, mentions, other_mentions = find_links_and_mentions(
        description, own={owner.lower(), (alias or owner).lower()}, watched=watched
    )
    uploaded = to_int(photo.get("dateupload"))
    return PostData(
        platform_post_id=photo_id,
        kind="video" if photo.get("media") == "video" else "photo",
        url=f"https://www.flickr.com/photos/{account}/{photo_id}/",
        author=account,
        published_at=datetime.fromtimestamp(uploaded, UTC) if uploaded is not None else None,
        title=(photo.get("title") or "").strip() or None,
        text=html_to_text(description),
        html=description if re.search(r"<[a-zA-Z/]", description) else None,
        tags=tuple((photo.get("tags") or "").split()),
        links=links,
        mentions=mentions,
        other_mentions=other_mentions,
        media=_make_media(photo),
        raw=dict(photo),
        metrics=_make_metrics(photo),
    )


def adapt_feed_post(post: PostData, *, watched: Mapping[str, str]) -> PostData:
    """A post of the public feed in the API's terms: the photo id, the account's path alias as
    author, the description without the feed's template. Pure."""
    match = FEED_PHOTO_ID.search(post.platform_post_id)
    author_link = str(post.raw.get("href") or "")
    alias_match = ACCOUNT_LINK.match(author_link)
    alias = alias_match.group(1) if alias_match else None
    nsid = str(post.raw.get("flickr_nsid") or "")
    markup = FEED_TEMPLATE.sub("", post.html or "").strip()
    links, mentions, other_mentions = find_links_and_mentions(
        markup, own={n.lower() for n in (alias, nsid) if n}, watched=watched
    )
    return replace(
        post,
        platform_post_id=match.group(1) if match else post.platform_post_id,
        author=alias or post.author,
        text=html_to_text(markup),
        html=markup or None,
        links=links,
        mentions=mentions,
        other_mentions=other_mentions,
    )


def find_links_and_mentions(
    markup: str, *, own: set[str], watched: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """The links of a description, the watched accounts it links to, and how many other
    accounts it links to. Links to other people's Flickr pages are mentions, not links: we
    watch institutions, not citizens. Pure."""
    links: list[str] = []
    mentions: list[str] = []
    others: set[str] = set()
    for url in dict.fromkeys(u.rstrip(".,;:!?)") for u in URL_IN_TEXT.findall(markup)):
        match = ACCOUNT_LINK.match(url)
        name = match.group(1).lower() if match else None
        if name is None or name in own or name in NOT_ACCOUNTS:
            links.append(url)
        elif name in watched:
            links.append(url)
            if watched[name] not in mentions:
                mentions.append(watched[name])
        else:
            others.add(name)
    return tuple(links), tuple(mentions), len(others)


def find_watched_accounts(sources: Iterable[tuple[str | None, str | None]]) -> dict[str, str]:
    """Lower-cased name -> configured handle of every Flickr account we watch, from each
    source's handle and from a flickr.com profile URL."""
    watched: dict[str, str] = {}
    for handle, url in sources:
        name = _clean_handle(handle) if handle else None
        name = name or _profile_alias(url)
        if name:
            watched[name.lower()] = name
    return watched


def find_handle(source: SourceRef) -> str | None:
    """The handle to resolve: the configured one (a profile URL is read for its alias), else
    the alias of a flickr.com profile URL in `url`."""
    if source.handle:
        return _clean_handle(source.handle)
    return _profile_alias(source.url)


def find_feed_address(source: SourceRef, key_env: str) -> tuple[str, str | None]:
    """Where the public feed is, and the account's NSID when known.

    Raises:
        ApiError: without an NSID there is no feed address; the message says what to set.
    """
    handle = find_handle(source)
    nsid = source.platform_id or (handle if handle and NSID.match(handle) else None)
    if source.url and _profile_alias(source.url) is None:
        return source.url, nsid
    if nsid is None:
        raise ApiError(
            f"{PLATFORM}: {handle!r} is not an NSID and {key_env} is not set: the public feed "
            f"needs the account's NSID (like 12345678@N02); set {key_env} or use the NSID as handle"
        )
    return f"{FEED_URL}?{urlencode({'id': nsid, 'format': 'atom'})}", nsid


def _make_media(photo: Mapping[str, Any]) -> tuple[Media, ...]:
    """The largest listed image (url_l, else url_m); a video's image is its poster frame."""
    url: str | None = None
    width: int | None = None
    height: int | None = None
    for size in ("l", "m"):
        if photo.get(f"url_{size}"):
            url = str(photo[f"url_{size}"])
            width, height = (
                to_int(photo.get(f"width_{size}")),
                to_int(photo.get(f"height_{size}")),
            )
            break
    else:
        width, height = to_int(photo.get("o_width")), to_int(photo.get("o_height"))
    thumbnail = str(photo["url_sq"]) if photo.get("url_sq") else None
    if photo.get("media") == "video":
        # The stream's address needs another call (getSizes); the page URL plays it.
        return (Media(type="video", thumbnail_url=url or thumbnail, width=width, height=height),)
    if url is None and thumbnail is None:
        return ()
    return (Media(type="image", url=url, thumbnail_url=thumbnail, width=width, height=height),)


def _make_metrics(photo: Mapping[str, Any]) -> dict[str, int] | None:
    names = {"views": "views", "count_faves": "likes", "count_comments": "replies"}
    metrics = {
        ours: value
        for theirs, ours in names.items()
        if (value := to_int(photo.get(theirs))) is not None
    }
    return metrics or None


def _clean_handle(handle: str) -> str | None:
    handle = handle.strip()
    if handle.startswith(("http://", "https://")):
        return _profile_alias(handle)
    return handle.lstrip("@") or None


def _profile_alias(url: str | None) -> str | None:
    """The account name in a flickr.com profile URL, or None for any other URL."""
    match = ACCOUNT_LINK.match(url or "")
    if match is None or match.group(1).lower() in NOT_ACCOUNTS:
        return None
    return match.group(1)
