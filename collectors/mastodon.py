"""Mastodon accounts through the public REST API, with the account's RSS feed as a fallback.

Endpoints (Mastodon API documentation, "accounts" and "statuses" methods):

- `GET /api/v1/accounts/lookup?acct=USER@INSTANCE` resolves the configured handle once to the
  account's stable id (a renamed handle keeps its history).
- The account's `followers_count` and `statuses_count` come with the lookup and with the
  `account` every listed status carries; when neither was read, `GET /api/v1/accounts/:id`
  asks for them, at most once a UTC day.
- `GET /api/v1/accounts/:id/statuses` lists the account's posts, replies and boosts. The first
  collection pages back with `max_id` (the `Link` header's `rel="next"`) through the backfill
  window; later ones page forward with `min_id` (`rel="prev"`) from the newest post older than
  `[collect] refresh_days`, so one request usually brings new posts and fresh counts together.
- `GET /api/v1/statuses/:id` only for a recent post the list no longer shows: 404 means deleted.

Rate limits come as `X-RateLimit-Remaining` and `X-RateLimit-Reset` (ISO 8601; "Rate limits" in
the API guidelines). Where an instance refuses unauthenticated API reads (401/403), the account's
RSS feed `https://INSTANCE/@USER.rss` is read instead with `collectors.feeds.parse_feed`.

No client library: Mastodon.py is synchronous and would bring a second HTTP stack; these three
GETs over the shared aiohttp client are all we need.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from html.parser import HTMLParser
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
from collectors.feeds import fetch_feed
from collectors.http import HttpClient, Response
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
from monitor.values import is_http_url, parse_time, to_int

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from collectors.base import CollectorSettings

PLATFORM = SPECS["mastodon"].name
# The most statuses Mastodon returns per page; asking for more gets 40.
PAGE_LIMIT = 40
# An incremental run reads at most this many pages and resumes where it stopped next time, so
# an account that posted thousands of times since never holds a worker for long.
MAX_PAGES = 10
# Recent posts missing from the list are each confirmed with one request; at most this many a run.
MAX_DELETION_CHECKS = 10
DEFAULT_TOKEN_ENV = default_secret_env("mastodon")
# Link parameters we take from the server's `Link` header (never its host: see `_Reader`).
PAGING_PARAMS = ("max_id", "min_id", "since_id")
MEDIA_TYPES = {"image": "image", "gifv": "video", "video": "video", "audio": "audio"}
_STATUS_PATH = re.compile(r"/@[^/]+/([A-Za-z0-9]+)/?$")
_LINK_PART = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";]+)"?')


@dataclass(frozen=True)
class AccountAddress:
    """Where an account lives: `username@domain`, and the API base to ask about it."""

    username: str
    domain: str
    base_url: str

    @property
    def acct(self) -> str:
        return f"{self.username}@{self.domain}"


@dataclass(frozen=True)
class Cursor:
    """What one collection tells the next (stored in `sources.cursor`).

    `newest_id` is the newest status seen. `refresh_from` is the `min_id` of the next read: the
    newest status older than the refresh window, so that read returns every newer post and with
    it fresh counts. `recent` maps the ids of posts inside the window to their creation time, to
    notice the ones the list stops showing (deleted). Pinned posts never move the cursor.
    """

    newest_id: str | None = None
    refresh_from: str | None = None
    recent: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_state(cls, cursor: Mapping[str, Any]) -> Cursor:
        recent = cursor.get("recent")
        return cls(
            newest_id=cursor.get("newest_id"),
            refresh_from=cursor.get("refresh_from"),
            recent=dict(recent) if isinstance(recent, dict) else {},
        )

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"newest_id": self.newest_id, "refresh_from": self.refresh_from}
        if self.recent:
            state["recent"] = self.recent
        return {k: v for k, v in state.items() if v is not None}


@dataclass(frozen=True)
class Walk:
    """The statuses one walk through the account's list returned, newest pages first."""

    statuses: tuple[dict[str, Any], ...]
    complete: bool  # False when stopped early (page cap, rate limit): the next run resumes
    limited_until: datetime | None = None  # the rate limit ran out and resets then
    boundary_id: str | None = None  # backfill: the first status older than the window
    at_limit: bool = False  # backfill: stopped at backfill_posts


class MastodonCollector:
    platform: ClassVar[str] = "mastodon"

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        self.settings = settings
        self.parsing = parsing
        self.token_env = settings.secret_env or DEFAULT_TOKEN_ENV
        # A token is issued by one instance: it goes only to the platform's configured api_url
        # (Mastodon has no default one).
        self.token_host = urlsplit(settings.api_url).hostname if settings.api_url else None
        self.watched = collect_watched_accounts((s.handle, s.url) for s in settings.sources)

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        try:
            address = locate_account(source.handle, source.url, source.api_url)
        except ValueError as error:
            return CollectResult(CollectStatus.FAILED, state=state, error=f"{PLATFORM}: {error}")
        reader = _Reader(http, address.base_url, self._token_for(address), self.token_env, now)
        account_id = source.platform_id
        looked_up = None
        try:
            if account_id is None:
                account_id, looked_up = await self._resolve(reader, address)
            result = await self._collect_statuses(reader, address, account_id, state, now)
        except ApiError as error:
            refused = error.http_status in (401, 403) and error.retry_after is None
            if refused and reader.token is None:
                return await self._collect_feed(http, address, state, error, account_id, now)
            if error.gone:
                who = f"{address.acct} (id {account_id})" if source.platform_id else address.acct
                error = ApiError(
                    f"{PLATFORM}: account not found: {who} (HTTP {error.http_status});"
                    " check the handle",
                    http_status=error.http_status,
                )
            return failed(
                state, error, resolved_id=account_id, bytes_received=reader.bytes_received
            )
        return await add_account_counts(
            replace(result, resolved_id=account_id),
            state,
            now,
            lambda: self._read_counts(reader, account_id),
            answers=reader,
            known=looked_up or result.account,
        )

    async def _read_counts(self, reader: _Reader, account_id: str) -> AccountCounts | None:
        account, _ = await reader.get(f"/api/v1/accounts/{quote(account_id, safe='')}")
        return parse_account_counts(account)

    def _token_for(self, address: AccountAddress) -> str | None:
        if self.token_host is None or urlsplit(address.base_url).hostname != self.token_host:
            return None
        return self.settings.secret

    async def _resolve(
        self, reader: _Reader, address: AccountAddress
    ) -> tuple[str, AccountCounts | None]:
        """The account's id, and its counts as the lookup gives them."""
        account, _ = await reader.get("/api/v1/accounts/lookup", {"acct": address.acct})
        if not isinstance(account, dict) or not account.get("id"):
            raise ApiError(f"{PLATFORM}: the account lookup for {address.acct} returned no id")
        return str(account["id"]), parse_account_counts(account)

    async def _collect_statuses(
        self,
        reader: _Reader,
        address: AccountAddress,
        account_id: str,
        state: SourceState,
        now: datetime,
    ) -> CollectResult:
        horizon = now - timedelta(days=self.settings.refresh_days)
        previous = Cursor.from_state(state.cursor)
        path = f"/api/v1/accounts/{quote(account_id, safe='')}/statuses"
        deleted: list[str] = []
        if previous.refresh_from is None:
            backfill = Backfill.from_settings(self.settings, now)
            walk = await self._walk_back(reader, path, backfill)
            statuses = list(walk.statuses)
            # An interrupted backfill is done again next time rather than left with a hole.
            cursor = plan_backfill_cursor(walk, horizon) if walk.complete else previous
        else:
            walk = await self._walk_forward(reader, path, previous.refresh_from)
            statuses = list(walk.statuses)
            if walk.complete:
                found, deleted = await self._check_missing(reader, previous, walk, horizon)
                statuses += found
            cursor = plan_incremental_cursor(previous, walk, horizon, deleted)

        posts = tuple(
            parse_status(s, watched=self.watched, local_domain=address.domain) for s in statuses
        )
        error = None
        if walk.limited_until:
            error = (
                f"{PLATFORM}: rate limit reached after {reader.requests} requests; the rest"
                f" is collected after {walk.limited_until:%Y-%m-%d %H:%M} UTC"
            )
        return CollectResult(
            CollectStatus.PARTIAL if walk.limited_until else CollectStatus.OK,
            posts=posts,
            state=replace(state, cursor=cursor.to_state()),
            http_status=reader.last_status,
            error=error,
            retry_after=reader.exhausted_until,
            bytes_received=reader.bytes_received,
            deleted=tuple(deleted),
            account=find_account_counts(statuses, account_id),
        )

    async def _walk_back(self, reader: _Reader, path: str, backfill: Backfill) -> Walk:
        """Newest first through the backfill window. A pinned post older than the window (some
        servers list pinned posts first) is skipped: it neither ends the walk nor is kept."""
        limit = min(PAGE_LIMIT, backfill.max_posts)
        params: dict[str, str | int] = {"limit": limit, "exclude_replies": "false"}
        kept: list[dict[str, Any]] = []
        for _ in range(backfill.max_posts // limit + MAX_PAGES):
            page, response = await reader.get(path, params)
            for status in _statuses_in(page):
                created = parse_time(status.get("created_at"))
                if created is None or created >= backfill.since:
                    kept.append(status)
                elif not is_pinned(status):
                    return Walk(tuple(kept), complete=True, boundary_id=str(status["id"]))
                if len(kept) >= backfill.max_posts:
                    return Walk(tuple(kept), complete=True, at_limit=True)
            following = find_next_page(response, page, limit, direction="next")
            if following is None:
                return Walk(tuple(kept), complete=True)
            if reader.exhausted_until:
                return Walk(tuple(kept), complete=False, limited_until=reader.exhausted_until)
            params = {"limit": limit, "exclude_replies": "false", **following}
        return Walk(tuple(kept), complete=True, at_limit=True)

    async def _walk_forward(self, reader: _Reader, path: str, min_id: str) -> Walk:
        """Everything newer than `min_id`, oldest pages first, at most MAX_PAGES pages."""
        params: dict[str, str | int] = {
            "limit": PAGE_LIMIT, "exclude_replies": "false", "min_id": min_id,
        }  # fmt: skip
        statuses: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page, response = await reader.get(path, params)
            statuses += _statuses_in(page)
            following = find_next_page(response, page, PAGE_LIMIT, direction="prev")
            if following is None:
                return Walk(tuple(statuses), complete=True)
            if reader.exhausted_until:
                return Walk(tuple(statuses), complete=False, limited_until=reader.exhausted_until)
            params = {"limit": PAGE_LIMIT, "exclude_replies": "false", **following}
        return Walk(tuple(statuses), complete=False)

    async def _check_missing(
        self, reader: _Reader, previous: Cursor, walk: Walk, horizon: datetime
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Recent posts the list no longer shows: re-read each; a 404 means it was deleted."""
        listed = {str(s.get("id")) for s in walk.statuses}
        missing = [
            status_id
            for status_id, created in sorted(previous.recent.items(), key=lambda i: i[1])
            if status_id not in listed and (parse_time(created) or horizon) > horizon
        ][-MAX_DELETION_CHECKS:]
        found: list[dict[str, Any]] = []
        deleted: list[str] = []
        for status_id in missing:
            if reader.exhausted_until:
                break
            try:
                status, _ = await reader.get(f"/api/v1/statuses/{quote(status_id, safe='')}")
            except ApiError as error:
                if error.gone:
                    deleted.append(status_id)
                    continue
                break  # not conclusive (rate limit, server error): asked again next run
            if isinstance(status, dict):
                found.append(status)
        return found, deleted

    async def _collect_feed(
        self,
        http: HttpClient,
        address: AccountAddress,
        state: SourceState,
        refusal: ApiError,
        account_id: str | None,
        now: datetime,
    ) -> CollectResult:
        """The account's public RSS feed, for instances that refuse API reads without a token."""
        url = f"{address.base_url}/@{quote(address.username)}.rss"
        # Built from the handle: a redirect of it does not move the source.
        result = await fetch_feed(http, url, state, self.parsing, self.settings, now, movable=False)
        if result.status in (CollectStatus.FAILED, CollectStatus.RETIRED):
            because = (
                f"{PLATFORM}: {address.domain} refuses API reads without a token"
                f" (HTTP {refusal.http_status})"
            )
            fix = f"set {self.token_env} to an access token from {address.domain}"
            if result.http_status is None:
                error = f"{because}, and its RSS feed failed: {result.error}; {fix}"
            elif result.http_status >= 400:
                error = f"{because}, and its RSS feed answered HTTP {result.http_status}; {fix}"
            else:
                error = f"{because}, and its RSS feed is unusable: {result.error}"
            return replace(result, status=CollectStatus.FAILED, error=error)
        author = f"@{address.acct}"
        return replace(
            result,
            posts=tuple(adapt_feed_post(p, author) for p in result.posts),
            resolved_id=account_id,
        )


class _Reader(ApiClient):
    """GETs against one instance's API, watching the rate limit.

    Only paging parameters are taken from `Link` headers, never their host, so a token never
    leaves the instance it was configured for.
    """

    def __init__(
        self, http: HttpClient, base_url: str, token: str | None, token_env: str, now: datetime
    ) -> None:
        # A token error names the variable only when a token was sent.
        super().__init__(
            http,
            base_url,
            platform=PLATFORM,
            now=now,
            token=token,
            credential_env=token_env if token else None,
        )
        self.exhausted_until: datetime | None = None

    async def get(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> tuple[Any, Response]:
        data, response = await self.fetch(path, params)
        remaining = response.header("x-ratelimit-remaining")
        if remaining is not None and remaining.strip() == "0":
            until = find_rate_limit_reset(response, self.now)
            self.exhausted_until = until or self.now + timedelta(minutes=5)
        return data, response


# ---------------------------------------------------------------------- pure parsing, no I/O


def locate_account(handle: str | None, url: str | None, api_url: str | None) -> AccountAddress:
    """The account a source names: `@user@instance`, `user@instance` or `https://instance/@user`.

    Raises:
        ValueError: the source names no instance and has no api_url to ask.
    """
    username, domain = parse_acct(handle or url or "")
    if not username:
        raise ValueError(f"cannot read an account from {handle or url!r}; write @user@instance")
    base = (api_url or "").rstrip("/").removesuffix("/api/v1")
    domain = domain or (urlsplit(base).hostname if base else None)
    if not domain:
        raise ValueError(f"the handle {handle!r} names no instance; write @user@instance")
    return AccountAddress(username=username, domain=domain, base_url=base or f"https://{domain}")


def parse_acct(value: str) -> tuple[str, str | None]:
    """`(username, domain)` from a handle or profile URL; the domain is None when absent."""
    value = value.strip()
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        username = parts.path.strip("/").split("/")[0].lstrip("@")
        return username, (parts.hostname or None)
    username, _, domain = value.lstrip("@").partition("@")
    return username, (domain.lower() or None)


def collect_watched_accounts(addresses: Iterable[tuple[str | None, str | None]]) -> frozenset[str]:
    """`user@domain` (lower case) of every configured Mastodon source."""
    watched = set()
    for handle, url in addresses:
        username, domain = parse_acct(handle or url or "")
        if username and domain:
            watched.add(f"{username}@{domain}".lower())
    return frozenset(watched)


def normalise_acct(acct: str, local_domain: str) -> str:
    """An API `acct` as `user@domain`: local accounts come without their domain."""
    acct = acct.strip().lstrip("@").lower()
    return acct if "@" in acct else f"{acct}@{local_domain.lower()}"


def parse_status(status: dict[str, Any], *, watched: frozenset[str], local_domain: str) -> PostData:
    """A status as a post. A boost (`reblog`) is a repost: the boosted status is its content,
    the boost's own id its identity, and it has no counts of ours (they are the original's)."""
    reblog = status.get("reblog") if isinstance(status.get("reblog"), dict) else None
    content = reblog or status
    quoted = _quoted_status(content)
    if reblog is not None:
        kind = "repost"
    elif status.get("in_reply_to_id"):
        kind = "reply"
    elif content.get("quote"):
        kind = "quote"
    else:
        kind = "post"
    markup = content.get("content") or None
    text = html_to_text(markup)
    spoiler = (content.get("spoiler_text") or "").strip()
    if spoiler:
        text = f"{spoiler}\n{text}" if text else spoiler
    mentioned = [
        normalise_acct(str(m["acct"]), local_domain)
        for m in content.get("mentions") or []
        if isinstance(m, dict) and m.get("acct")
    ]
    kept = tuple(dict.fromkeys(f"@{m}" for m in mentioned if m in watched))
    links = find_links(markup)
    card_url = (content.get("card") or {}).get("url")
    quoted_url = quoted.get("url") if quoted else None
    extra = [u for u in (card_url, quoted_url) if isinstance(u, str)]
    account = status.get("account") or {}
    return PostData(
        platform_post_id=str(status["id"]),
        kind=kind,
        url=_web_url(content),
        author=f"@{normalise_acct(account['acct'], local_domain)}" if account.get("acct") else None,
        published_at=parse_time(status.get("created_at")),
        title=None,
        text=text,
        html=markup,
        language=content.get("language") or None,
        tags=tuple(str(t["name"]) for t in content.get("tags") or [] if t.get("name")),
        links=tuple(dict.fromkeys([*links, *extra])),
        mentions=kept,
        other_mentions=sum(1 for m in mentioned if m not in watched),
        media=tuple(parse_media(m) for m in content.get("media_attachments") or []),
        raw=strip_unwatched_mentions(status, watched, local_domain),
        metrics=None if reblog is not None else parse_metrics(status),
    )


def parse_account_counts(account: Any) -> AccountCounts | None:
    """An Account entity's `followers_count` and `statuses_count`; None when it has neither."""
    if not isinstance(account, dict):
        return None
    counts = AccountCounts(
        followers=to_int(account.get("followers_count")),
        posts=to_int(account.get("statuses_count")),
    )
    return None if counts.is_empty() else counts


def find_account_counts(
    statuses: Iterable[Mapping[str, Any]], account_id: str
) -> AccountCounts | None:
    """The counts of the account itself as the listed statuses carry it (each names its
    poster, the account, boosts included); None when no status did."""
    for status in statuses:
        account = status.get("account")
        if isinstance(account, dict) and str(account.get("id")) == account_id:
            counts = parse_account_counts(account)
            if counts is not None:
                return counts
    return None


def parse_metrics(status: Mapping[str, Any]) -> dict[str, int]:
    """The status's counts by our metric names (`quotes_count` from Mastodon 4.5 on)."""
    names = {
        "replies_count": "replies",
        "reblogs_count": "reposts",
        "favourites_count": "likes",
        "quotes_count": "quotes",
    }
    return {
        ours: int(status[theirs])
        for theirs, ours in names.items()
        if status.get(theirs) is not None
    }


def parse_media(attachment: Mapping[str, Any]) -> Media:
    original = (attachment.get("meta") or {}).get("original") or {}
    duration = original.get("duration")
    return Media(
        type=MEDIA_TYPES.get(str(attachment.get("type")), "other"),
        url=attachment.get("url") or attachment.get("remote_url") or None,
        thumbnail_url=attachment.get("preview_url") or None,
        duration_s=round(duration) if isinstance(duration, int | float) else None,
        alt_text=attachment.get("description") or None,
        width=original.get("width") if isinstance(original.get("width"), int) else None,
        height=original.get("height") if isinstance(original.get("height"), int) else None,
    )


def strip_unwatched_mentions(
    status: Mapping[str, Any], watched: frozenset[str], local_domain: str
) -> dict[str, Any]:
    """The status with every mention of an account we do not watch removed, also inside the
    boosted and the quoted status: we keep institutions, not citizens."""
    clean = dict(status)
    if isinstance(clean.get("mentions"), list):
        clean["mentions"] = [
            m
            for m in clean["mentions"]
            if isinstance(m, dict)
            and normalise_acct(str(m.get("acct", "")), local_domain) in watched
        ]
    if isinstance(clean.get("reblog"), dict):
        clean["reblog"] = strip_unwatched_mentions(clean["reblog"], watched, local_domain)
    quote_ = clean.get("quote")
    if isinstance(quote_, dict) and isinstance(quote_.get("quoted_status"), dict):
        clean["quote"] = quote_ | {
            "quoted_status": strip_unwatched_mentions(
                quote_["quoted_status"], watched, local_domain
            )
        }
    return clean


def find_links(markup: str | None) -> tuple[str, ...]:
    """The http(s) links in a status's HTML, without mention and hashtag links."""
    if not markup:
        return ()
    finder = _LinkFinder()
    finder.feed(markup)
    return tuple(dict.fromkeys(finder.links))


def adapt_feed_post(post: PostData, author: str) -> PostData:
    """A post from the account's RSS feed, under the same id the API gives it."""
    match = _STATUS_PATH.search(urlsplit(post.url or "").path)
    return replace(
        post,
        platform_post_id=match.group(1) if match else post.platform_post_id,
        kind="post",
        author=author,
        links=tuple(dict.fromkeys(find_links(post.html))),
    )


def find_next_page(
    response: Response, page: Any, limit: int, *, direction: str
) -> dict[str, str] | None:
    """The paging parameters of the following page, or None when this page was the last.

    Mastodon sends `rel="next"` only after a full page, and `rel="prev"` after any page: walking
    back we follow `next`; walking forward we follow `prev` while `next` says the page was full.
    Without a `Link` header, a full page continues from its oldest or newest id.
    """
    links = parse_link_header(response.header("link"))
    statuses = _statuses_in(page)
    if not statuses:
        return None
    if links:
        if "next" not in links or direction not in links:
            return None
        return links[direction] or None
    if len(statuses) < limit:
        return None
    ids = sorted((str(s.get("id")) for s in statuses), key=id_order)
    return {"max_id": ids[0]} if direction == "next" else {"min_id": ids[-1]}


def parse_link_header(value: str | None) -> dict[str, dict[str, str]]:
    """`{rel: paging parameters}` from an RFC 8288 `Link` header."""
    links: dict[str, dict[str, str]] = {}
    for url, rel in _LINK_PART.findall(value or ""):
        query = dict(parse_qsl(urlsplit(url).query))
        links[rel.strip()] = {k: v for k, v in query.items() if k in PAGING_PARAMS}
    return links


def plan_backfill_cursor(walk: Walk, horizon: datetime) -> Cursor:
    """The cursor after a first collection that walked back through the backfill window.

    The next read starts after the newest post older than the refresh window; failing that,
    after the first post older than the backfill window, or after the oldest post kept when
    `backfill_posts` ended the walk. An account whose whole history is recent is read again
    from its start ("0")."""
    dated = _dated_unpinned(walk.statuses)
    older = [status_id for status_id, created in dated if created < horizon]
    if older:
        refresh_from = max(older, key=id_order)
    elif walk.boundary_id:
        refresh_from = walk.boundary_id
    elif walk.at_limit and dated:
        refresh_from = min((status_id for status_id, _ in dated), key=id_order)
    else:
        refresh_from = "0"
    return Cursor(
        newest_id=max((status_id for status_id, _ in dated), key=id_order, default=None),
        refresh_from=refresh_from,
        recent={
            status_id: created.isoformat() for status_id, created in dated if created >= horizon
        },
    )


def plan_incremental_cursor(
    previous: Cursor, walk: Walk, horizon: datetime, deleted: Iterable[str]
) -> Cursor:
    """The cursor after a forward read from `previous.refresh_from`: an incomplete read resumes
    where it stopped; a complete one moves the start up to the newest post that left the window."""
    dated = _dated_unpinned(walk.statuses)
    ids = [status_id for status_id, _ in dated]
    known = [*ids, previous.newest_id] if previous.newest_id else ids
    refresh_from: str | None
    if not walk.complete and ids:
        refresh_from = max(ids, key=id_order)
    else:
        older = [status_id for status_id, created in dated if created < horizon]
        refresh_from = max(older, key=id_order) if older else previous.refresh_from
    gone = set(deleted)
    recent = {
        status_id: created
        for status_id, created in previous.recent.items()
        if status_id not in gone and (parse_time(created) or horizon) >= horizon
    }
    recent |= {status_id: created.isoformat() for status_id, created in dated if created >= horizon}
    return Cursor(
        newest_id=max(known, key=id_order, default=None), refresh_from=refresh_from, recent=recent
    )


def id_order(status_id: str) -> tuple[int, str]:
    """Sorts status ids by age: Mastodon's are numbers as strings, other servers' fixed-length
    sortable strings, so length first, then text."""
    return len(status_id), status_id


def is_pinned(status: Mapping[str, Any]) -> bool:
    return status.get("pinned") is True


def _dated_unpinned(statuses: Iterable[dict[str, Any]]) -> list[tuple[str, datetime]]:
    dated = []
    for status in statuses:
        created = parse_time(status.get("created_at"))
        if created is not None and status.get("id") and not is_pinned(status):
            dated.append((str(status["id"]), created))
    return dated


def _statuses_in(page: Any) -> list[dict[str, Any]]:
    return (
        [s for s in page if isinstance(s, dict) and s.get("id")] if isinstance(page, list) else []
    )


def _quoted_status(status: Mapping[str, Any]) -> dict[str, Any] | None:
    quoted = (status.get("quote") or {}).get("quoted_status")
    return quoted if isinstance(quoted, dict) else None


def _web_url(status: Mapping[str, Any]) -> str | None:
    for key in ("url", "uri"):
        value = status.get(key)
        if is_http_url(value):
            return value
    return None


class _LinkFinder(HTMLParser):
    """Collects `<a href>` targets that are neither mentions nor hashtags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        values = dict(attrs)
        href = values.get("href") or ""
        classes = (values.get("class") or "").split()
        if href and "mention" not in classes and "hashtag" not in classes:
            self.links.append(href)
