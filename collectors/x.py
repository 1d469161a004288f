"""X (Twitter) accounts through the X API v2, with tweepy as the client, within a read budget.

Endpoints (X API v2 reference, docs.x.com):

- "User lookup by username" `GET /2/users/by/username/:username`: the handle becomes the account's
  numeric id once; the id survives renames, so a renamed account keeps its history. With
  `user.fields=public_metrics` it also gives the account's counts (followers_count, tweet_count).
- "User lookup by ID" `GET /2/users/:id?user.fields=public_metrics`: the counts again, at most
  once a UTC day per source; one billed read.
- "User Posts timeline" `GET /2/users/:id/tweets`: newest first, `since_id` after the first run,
  `start_time` on the first run (the backfill window), paged with `meta.next_token`.
- "Post lookup by IDs" `GET /2/tweets?ids=`: re-reads recent posts for fresh counts; an id
  answered with a `resource-not-found` error is a deleted post.

tweepy is synchronous (requests), so its calls run in threads, at most `[collect] per_host` at a
time. tweepy hard-codes its host; an adapter mounted on its `requests` session sends every request
to `source.api_url` instead (how tests reach the loopback server), keeping tweepy's own request
building, parsing and exceptions.

Billing: X charges per post read (since 2026). Every post an answer carries, and every user
lookup (the daily one for the account's counts too), is one read, returned as `api_units`.
With `[platforms.x] monthly_read_budget` set:

- new posts are read while the month's budget lasts; at 100 % the source fails with
  "X monthly read budget of N reads spent" until the first day of next month (UTC);
- counts of recent posts are refreshed only from a daily share, so the budget lasts the month:
  what was left of the budget when the UTC day began, divided by the days left in the month (today
  included), minus what X collection has already spent today; each source gets at most its equal
  share of it (`plan_refresh_reads`). Within a source's share the newest posts go first: their
  counts move the most.

Edits: X gives an edited post a new id and lists every version in `edit_history_tweet_ids`,
oldest first. A post is keyed by the FIRST of them, so an edit updates the same post (and the
store keeps the previous text as a revision); its url and counts follow the newest version.
Kinds: repost, quote or reply from `referenced_tweets`, else post. A post with a video stays a
post with a video `Media`: on X a video is an attachment of a post, and the kind says what the
post does in the conversation.
"""

from __future__ import annotations

import asyncio
import calendar
import contextvars
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
import requests.adapters
import tweepy

from collectors.api import (
    ApiError,
    Backfill,
    Tally,
    add_account_counts,
    error_for_status,
    failed,
)
from collectors.http import (
    HttpClient,
    Response,
    find_credentials,
    make_user_agent,
    redact_bytes,
    wait_until_epoch,
)
from collectors.x_posts import (
    NOT_FOUND,
    Account,
    explain,
    find_deleted_ids,
    is_superseded,
    parse_tweets,
    parse_user,
)
from monitor.platforms import SPECS, default_secret_env
from monitor.types import (
    AccountCounts,
    ApiUsage,
    CollectResult,
    CollectStatus,
    PostData,
    SourceRef,
    SourceState,
)
from monitor.values import to_int

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from collectors.base import CollectorSettings

# tweepy logs every request's headers at DEBUG, the bearer token included.
logging.getLogger("tweepy.client").setLevel(logging.INFO)
# urllib3 logs an answer with a malformed header as a warning with a traceback and the URL;
# the attempt's own error line says what went wrong.
logging.getLogger("urllib3.connection").setLevel(logging.ERROR)

PLATFORM = SPECS["x"].name
DEFAULT_TOKEN_ENV = default_secret_env("x")
# The hosts tweepy builds its URLs with; both are sent to `source.api_url`.
TWEEPY_HOSTS = ("https://api.twitter.com/", "https://api.x.com/")
# The timeline endpoint's bounds on max_results.
MIN_PAGE, MAX_PAGE = 5, 100
MAX_LOOKUP_IDS = 100  # ids per post lookup
USAGE_CAPPED = "https://api.twitter.com/2/problems/usage-capped"

TWEET_FIELDS = [
    "created_at", "public_metrics", "entities", "attachments", "referenced_tweets",
    "conversation_id", "lang", "edit_history_tweet_ids", "note_tweet", "in_reply_to_user_id",
]  # fmt: skip
EXPANSIONS = ["attachments.media_keys", "referenced_tweets.id"]
MEDIA_FIELDS = [
    "type", "url", "preview_image_url", "duration_ms", "alt_text", "public_metrics", "width",
    "height",
]  # fmt: skip
USER_FIELDS = ["id", "username", "name", "created_at", "pinned_tweet_id", "public_metrics"]
COUNT_FIELDS = ["public_metrics"]


# ------------------------------------------------------------------------------ budget (pure)


def first_of_next_month(now: datetime) -> datetime:
    """Midnight UTC on the first day of the month after `now`: when a monthly budget renews."""
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def plan_refresh_reads(
    *,
    budget: int | None,
    spent_before_today: int,
    spent_today: int,
    refreshed_today: int,
    sources: int,
    today: date,
) -> int | None:
    """How many posts one source may re-read for fresh counts now; None means all of them.

    The budget left when the UTC day began, spread evenly over the days left in the month
    (today included), is the day's share. A source may use its equal part of that share,
    less what it has refreshed today, and never more than what today's X reads (new posts
    included) have left of the share.

    Args:
        budget: the monthly read budget; None for no budget.
        spent_before_today: reads this month before today.
        spent_today: reads today so far, by every X source.
        refreshed_today: reads this source has spent on refreshes today.
        sources: the number of configured X sources sharing the budget.
    """
    if budget is None:
        return None
    days_left = calendar.monthrange(today.year, today.month)[1] - today.day + 1
    daily = max(budget - spent_before_today, 0) // days_left
    per_source = daily // max(sources, 1)
    return max(0, min(per_source - refreshed_today, daily - spent_today))


@dataclass
class ReadBudget:
    """The month's reads as this run spends them. Reads are reserved before a call (sources
    run concurrently) and settled with what the answer carried."""

    limit: int | None
    spent_before: int  # this month, before this run
    spent: int = 0  # this run, settled
    reserved: int = 0  # this run, asked for and not yet answered

    def remaining(self) -> int | None:
        if self.limit is None:
            return None
        return max(self.limit - self.spent_before - self.spent - self.reserved, 0)

    def reserve(self, wanted: int) -> int:
        """Reserve up to `wanted` reads; the number granted (all of them without a limit)."""
        remaining = self.remaining()
        granted = wanted if remaining is None else min(wanted, remaining)
        self.reserved += granted
        return granted

    def settle(self, reserved: int, used: int) -> None:
        self.reserved -= reserved
        self.spent += used


# ---------------------------------------------------------------------------------- the client


# The Tally of the source whose call is running: a client (and its adapter) serves every source
# on one base URL, and asyncio.to_thread runs each call in a copy of its caller's context.
ANSWERS: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("x_answers", default=None)


class BaseUrlAdapter(requests.adapters.HTTPAdapter):
    """Sends tweepy's requests to the configured API base instead of the host it hard-codes,
    with our timeouts (tweepy sets none), notes each answer's rate-limit headers, and counts
    it in the calling source's Tally (`ANSWERS`) as ApiClient counts its own."""

    def __init__(
        self,
        base_url: str,
        timeout: tuple[float, float],
        on_headers: Callable[[str, Mapping[str, str]], None],
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.on_headers = on_headers

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        answers = ANSWERS.get()
        if answers is not None:
            answers.requests += 1
        response = super().send(request, **kwargs)
        self.on_headers(find_endpoint(parts.path), response.headers)
        if kwargs.get("stream"):
            return response  # tweepy never streams; reading the body here would end the stream
        if answers is not None:
            answers.count(response.status_code, len(response.content))
        # tweepy does not go through HttpClient: redact the bearer token from X's answer here,
        # the same way, should an error body ever echo the request.
        headers = {k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
        secrets = find_credentials(request.url or "", headers)
        if secrets:
            response._content = redact_bytes(response.content, secrets)
        return response


def find_endpoint(path: str) -> str:
    """The rate-limited endpoint of a path: `/2/users/123/tweets` is `/2/users/:id/tweets`."""
    path = re.sub(r"^(/2/users/by/username/)[^/]+", r"\1:username", path)
    return re.sub(r"^(/2/(?:users|tweets)/)\d+(?=/|$)", r"\1:id", path)


@dataclass(frozen=True)
class RateLimit:
    remaining: int
    reset: int  # epoch seconds, as X sends it


class RateLimits:
    """What X's `x-rate-limit-*` headers said last, per endpoint. Limits of an app's bearer
    token are shared by every source, so a spent limit stops the other sources' calls too."""

    def __init__(self) -> None:
        self._limits: dict[str, RateLimit] = {}
        self._lock = threading.Lock()

    def note(self, endpoint: str, headers: Mapping[str, str]) -> None:
        remaining, reset = headers.get("x-rate-limit-remaining"), headers.get("x-rate-limit-reset")
        if not (remaining and reset and remaining.isdigit() and reset.isdigit()):
            return
        with self._lock:
            self._limits[endpoint] = RateLimit(int(remaining), int(reset))

    def spent_until(self, endpoint: str, now: datetime) -> datetime | None:
        """When a spent limit resets (at most LONGEST_SERVER_WAIT from `now`), or None while
        calls are left."""
        with self._lock:
            limit = self._limits.get(endpoint)
        if limit is None or limit.remaining > 0 or limit.reset <= now.timestamp():
            return None
        return wait_until_epoch(now, limit.reset)


# ------------------------------------------------------------------------------- the collector


@dataclass
class _Progress:
    """What one source's attempt has gathered so far; kept when a later call fails, because
    X has billed it."""

    now: datetime  # the attempt's start: the budget and rate limits are judged at it
    timeline: dict[str, tuple[int, PostData]] = field(default_factory=dict)  # first id -> version
    refreshed: list[PostData] = field(default_factory=list)
    units: int = 0
    account: Account | None = None
    counts: AccountCounts | None = None  # the account's, when a user lookup gave them
    max_posts: int | None = None  # the backfill's limit on a first run
    answers: Tally = field(default_factory=Tally)

    def add(self, version: int, post: PostData) -> None:
        """Keep a timeline post; of two versions of one post, the newer."""
        known = self.timeline.get(post.platform_post_id)
        if known is None or known[0] < version:
            self.timeline[post.platform_post_id] = (version, post)

    def newest_timeline(self) -> list[tuple[int, PostData]]:
        """The timeline's posts, newest first, at most the backfill's number."""
        chosen = sorted(self.timeline.values(), key=lambda item: item[0], reverse=True)
        return chosen[: self.max_posts] if self.max_posts is not None else chosen

    def posts(self) -> tuple[PostData, ...]:
        return (*(post for _, post in self.newest_timeline()), *self.refreshed)


class XCollector:
    platform: ClassVar[str] = "x"

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        self.settings = settings
        self.env_name = settings.secret_env or DEFAULT_TOKEN_ENV
        self.sources = sum(1 for s in settings.sources if s.enabled)  # sharing the read budget
        # A paused source is still an institution we watch.
        self.watched = frozenset(
            h.lower() for h in (find_handle(s.handle, s.url) for s in settings.sources) if h
        )
        month, today = usage.this_month.get("x", 0), usage.today.get("x", 0)
        self.spent_before_today, self.spent_today_before = month - today, today
        self.budget = ReadBudget(limit=settings.monthly_read_budget, spent_before=month)
        self.limits = RateLimits()
        self.clients: dict[str, tweepy.Client] = {}
        self.calls = asyncio.Semaphore(settings.per_host)

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        """Resolve the account if needed, read new posts, refresh recent posts' counts."""
        handle = find_handle(source.handle, source.url)
        token = self.settings.secret
        if not handle:
            return CollectResult(CollectStatus.FAILED, state=state, error="source has no handle")
        if not token:
            error = f"credentials missing: set the environment variable {self.env_name}"
            return CollectResult(CollectStatus.FAILED, state=state, error=error)
        client = self._client(source.api_url or self.settings.api_url or "", token)
        progress = _Progress(now)
        try:
            remaining = self.budget.remaining()
            if remaining is not None and remaining < MIN_PAGE:
                raise self._budget_spent(now)
            account = progress.account = await self._find_account(
                client, source, state, handle, progress
            )
            cursor = await self._read_timeline(client, account, state.cursor, handle, now, progress)
        except ApiError as error:
            resolved = progress.account.id if progress.account else None
            return failed(
                state,
                error,
                posts=progress.posts(),
                api_units=progress.units,
                resolved_id=resolved,
                bytes_received=progress.answers.bytes_received,
            )
        result = CollectResult(
            CollectStatus.OK,
            state=SourceState(cursor=cursor),
            http_status=progress.answers.last_status,
            resolved_id=account.id,
        )
        try:
            cursor, deleted = await self._refresh(client, account, cursor, now, progress)
        except ApiError as error:
            # The new posts are in: a refresh that failed costs only this run's counts.
            result = replace(
                result,
                status=CollectStatus.PARTIAL,
                posts=progress.posts(),
                error=f"{error.message}; counts of recent posts not refreshed",
                retry_after=error.retry_after,
                resume_at=error.resume_at,
                api_units=progress.units,
                bytes_received=progress.answers.bytes_received,
            )
        else:
            result = replace(
                result,
                posts=progress.posts(),
                state=SourceState(cursor=cursor),
                deleted=tuple(sorted(deleted)),
                api_units=progress.units,
                bytes_received=progress.answers.bytes_received,
            )
        return await add_account_counts(
            result,
            state,
            now,
            lambda: self._read_counts(client, account, handle, progress),
            answers=progress.answers,
            known=progress.counts,
            units=lambda: progress.units,
        )

    async def _read_counts(
        self, client: tweepy.Client, account: Account, handle: str, progress: _Progress
    ) -> AccountCounts | None:
        document = await self._billed_call(
            1,
            progress,
            "/2/users/:id",
            client.get_user,
            id=account.id,
            user_fields=COUNT_FIELDS,
            not_found=f"account @{handle} not found (id {account.id})",
        )
        return parse_user_counts(document)

    def _client(self, base_url: str, token: str) -> tweepy.Client:
        client = self.clients.get(base_url)
        if client is None:
            client = tweepy.Client(bearer_token=token, return_type=dict, wait_on_rate_limit=False)
            client.user_agent = make_user_agent(self.settings.contact_url)
            timeout = (self.settings.connect_timeout, self.settings.read_timeout)
            adapter = BaseUrlAdapter(base_url, timeout, self.limits.note)
            for host in TWEEPY_HOSTS:
                client.session.mount(host, adapter)
            self.clients[base_url] = client
        return client

    async def _find_account(
        self,
        client: tweepy.Client,
        source: SourceRef,
        state: SourceState,
        handle: str,
        progress: _Progress,
    ) -> Account:
        """The account's id: the stored one while the configured handle is the one it was
        resolved from, else a user lookup (a first run, or an admin changed the handle)."""
        cursor = state.cursor
        if source.platform_id and str(cursor.get("handle", "")).lower() == handle.lower():
            return Account(source.platform_id, str(cursor.get("username") or handle))
        document = await self._billed_call(
            1,
            progress,
            "/2/users/by/username/:username",
            client.get_user,
            username=handle,
            user_fields=USER_FIELDS,
            not_found=f"account @{handle} not found",
        )
        account = parse_user(document, handle)
        progress.counts = parse_user_counts(document)
        return account

    async def _read_timeline(
        self,
        client: tweepy.Client,
        account: Account,
        cursor: Mapping[str, Any],
        handle: str,
        now: datetime,
        progress: _Progress,
    ) -> dict[str, Any]:
        """New posts since the cursor (or the backfill window on a first run); the new cursor.

        Paging follows `next_token` to the end and never stops at a post it already knows,
        so a pinned post (old, yet first on the page) cannot end it early.
        """
        since_id = cursor.get("newest_id") if cursor.get("user_id") == account.id else None
        known = int(since_id) if since_id else 0
        backfill = None if since_id else Backfill.from_settings(self.settings, now)
        progress.max_posts = backfill.max_posts if backfill else None
        newest, token = known, None
        while True:
            wanted = MAX_PAGE
            if backfill is not None:
                wanted = max(MIN_PAGE, min(MAX_PAGE, backfill.max_posts - len(progress.timeline)))
            document = await self._billed_call(
                wanted,
                progress,
                "/2/users/:id/tweets",
                client.get_users_tweets,
                account.id,
                minimum=MIN_PAGE,
                since_id=since_id,
                start_time=backfill.since if backfill else None,
                max_results=wanted,
                pagination_token=token,
                tweet_fields=TWEET_FIELDS,
                expansions=EXPANSIONS,
                media_fields=MEDIA_FIELDS,
                not_found=f"account @{handle} not found (id {account.id})",
            )
            _check_account_errors(document, handle, account)
            ids = [int(tweet["id"]) for tweet in document.get("data") or []]
            page = parse_tweets(document, account=account, watched=self.watched)
            for version, post in zip(ids, page, strict=True):
                if version <= known:
                    continue  # a pinned or already collected post (billed all the same)
                if backfill and post.published_at and post.published_at < backfill.since:
                    continue  # a pinned post older than the backfill window
                progress.add(version, post)
            newest = max([newest, *ids])
            token = (document.get("meta") or {}).get("next_token")
            if not token or not ids:
                break
            # The timeline's position is its last post: a pinned post on top does not count.
            position = ids[-1]
            reached = sum(1 for version, _ in progress.timeline.values() if version >= position)
            if backfill and reached >= backfill.max_posts:
                break
        recent = dict(cursor.get("recent") or {}) if since_id else {}
        for version, post in progress.newest_timeline():
            published = post.published_at or now
            recent[post.platform_post_id] = [str(version), published.isoformat()]
        kept = dict(cursor) if since_id else {}
        return kept | {
            "user_id": account.id,
            "username": account.username,
            "handle": handle.lower(),
            "newest_id": str(newest) if newest else None,
            "recent": recent,
        }

    async def _refresh(
        self,
        client: tweepy.Client,
        account: Account,
        cursor: dict[str, Any],
        now: datetime,
        progress: _Progress,
    ) -> tuple[dict[str, Any], set[str]]:
        """Re-read recent posts not in this run's timeline for their counts, within the day's
        share of the budget; the cursor with what is recent, and the ids X says are deleted."""
        horizon = now - timedelta(days=self.settings.refresh_days)
        recent: dict[str, list[str]] = {
            first: list(entry)
            for first, entry in (cursor.get("recent") or {}).items()
            if datetime.fromisoformat(entry[1]) >= horizon
        }
        today = now.date().isoformat()
        refreshed_today = (
            int(cursor.get("refresh_reads", 0)) if cursor.get("refresh_day") == today else 0
        )
        allowance = plan_refresh_reads(
            budget=self.budget.limit,
            spent_before_today=self.spent_before_today,
            spent_today=self.spent_today_before + self.budget.spent,
            refreshed_today=refreshed_today,
            sources=self.sources,
            today=now.date(),
        )
        due = sorted(
            (first for first in recent if first not in progress.timeline),
            key=lambda first: int(recent[first][0]),
            reverse=True,
        )[:allowance]
        deleted: set[str] = set()
        for start in range(0, len(due), MAX_LOOKUP_IDS):
            batch = due[start : start + MAX_LOOKUP_IDS]
            by_version = {recent[first][0]: first for first in batch}
            before = progress.units
            document = await self._billed_call(
                len(batch),
                progress,
                "/2/tweets",
                client.get_tweets,
                ids=list(by_version),
                tweet_fields=TWEET_FIELDS,
                expansions=EXPANSIONS,
                media_fields=MEDIA_FIELDS,
                not_found="posts not found",
            )
            refreshed_today += progress.units - before
            for version in find_deleted_ids(document.get("errors") or []):
                first = by_version.get(version)
                if first is not None:
                    deleted.add(first)
                    del recent[first]
            tweets = document.get("data") or []
            page = parse_tweets(document, account=account, watched=self.watched)
            for tweet, post in zip(tweets, page, strict=True):
                if post.platform_post_id not in recent:
                    continue
                if is_superseded(tweet):
                    # Edited since: the next refresh reads the current version instead.
                    recent[post.platform_post_id][0] = str(tweet["edit_history_tweet_ids"][-1])
                else:
                    progress.refreshed.append(post)
        refreshed = {"refresh_day": today, "refresh_reads": refreshed_today}
        return cursor | {"recent": recent} | refreshed, deleted

    async def _billed_call(
        self,
        wanted: int,
        progress: _Progress,
        endpoint: str,
        method: Callable[..., Any],
        *args: Any,
        minimum: int = 1,
        not_found: str,
        **params: Any,
    ) -> dict[str, Any]:
        """A call that X bills per returned post (or user): reads are reserved before it, and
        the answer's count is what it cost. Its `max_results` shrinks to the reads granted.

        Raises:
            ApiError: the budget cannot pay for `minimum` reads, or the call failed.
        """
        granted = self.budget.reserve(wanted)
        if granted < minimum:
            self.budget.settle(granted, 0)
            raise self._budget_spent(progress.now)
        if "max_results" in params:
            params["max_results"] = granted
        if "ids" in params:
            params["ids"] = params["ids"][:granted]
        document: dict[str, Any] = {}
        try:
            document = await self._call(
                endpoint,
                method,
                *args,
                now=progress.now,
                answers=progress.answers,
                not_found=not_found,
                **params,
            )
        finally:
            data = document.get("data")
            used = len(data) if isinstance(data, list) else int(bool(data))
            self.budget.settle(granted, used)
            progress.units += used
        return document

    def _budget_spent(self, now: datetime) -> ApiError:
        return ApiError(
            f"{PLATFORM} monthly read budget of {self.budget.limit or 0:,} reads spent;"
            " X collection resumes next month",
            resume_at=first_of_next_month(now),
        )

    async def _call(
        self,
        endpoint: str,
        method: Callable[..., Any],
        *args: Any,
        now: datetime,
        answers: Tally,
        not_found: str,
        **params: Any,
    ) -> dict[str, Any]:
        """Call a tweepy method in a thread, its answer counted in `answers`; its failures
        become one-line ApiErrors. A rate limit the headers said is spent fails at once,
        without calling."""
        until = self.limits.spent_until(endpoint, now)
        if until is not None:
            raise ApiError(
                f"{PLATFORM}: rate limited until {until:%Y-%m-%d %H:%M} UTC"
                " (x-rate-limit-remaining 0)",
                retry_after=until,
            )
        async with self.calls:
            counting = ANSWERS.set(answers)
            try:
                document = await asyncio.to_thread(method, *args, **params)
            except tweepy.HTTPException as error:
                raise describe_failure(error, self.env_name, not_found, now) from None
            except requests.exceptions.JSONDecodeError:
                raise ApiError(
                    f"{PLATFORM}: the API answered with something that is not JSON"
                ) from None
            except requests.Timeout:
                seconds = self.settings.read_timeout
                raise ApiError(f"{PLATFORM}: timed out: no answer within {seconds:g} s") from None
            except requests.ConnectionError as error:
                host = urlsplit(str(error.request.url if error.request else "")).hostname
                raise ApiError(f"{PLATFORM}: cannot connect to {host or 'the API'}") from None
            except requests.RequestException as error:
                raise ApiError(f"{PLATFORM}: request failed: {type(error).__name__}") from None
            finally:
                ANSWERS.reset(counting)
        return document if isinstance(document, dict) else {}


def describe_failure(
    error: tweepy.HTTPException, env_name: str, not_found: str, now: datetime
) -> ApiError:
    """The ApiError for an HTTP failure tweepy raised, with X's own explanation where it gives
    one (such as `client-not-enrolled` or a usage cap)."""
    answer = error.response
    response = Response(
        status=answer.status_code,
        url=answer.url,
        headers={k.lower(): v for k, v in answer.headers.items()},
        body=b"",
    )
    try:
        document = answer.json()
    except ValueError:
        document = {}
    document = document if isinstance(document, dict) else {}
    status = response.status
    if document.get("type") == USAGE_CAPPED or document.get("reason") == "usage-capped":
        until = first_of_next_month(now)
        return ApiError(
            f"{PLATFORM}: the app's API usage cap is reached{explain(document)}; collection"
            " resumes when X resets the cap",
            http_status=status,
            resume_at=until,
        )
    if isinstance(error, tweepy.NotFound):
        return ApiError(f"{PLATFORM}: {not_found} (HTTP 404)", http_status=404, gone=True)
    if isinstance(error, tweepy.Unauthorized):
        return ApiError(
            f"{PLATFORM}: credentials invalid or expired: check {env_name} (HTTP 401)",
            http_status=401,
        )
    base = error_for_status(response, platform=PLATFORM, now=now, credential_env=env_name)
    if isinstance(error, tweepy.Forbidden) and base.retry_after is None:
        return ApiError(
            f"{PLATFORM}: access refused (HTTP 403){explain(document)}; check the app and access"
            f" level behind {env_name}",
            http_status=403,
        )
    return base


def parse_user_counts(document: Mapping[str, Any]) -> AccountCounts | None:
    """A user lookup's `public_metrics`: followers_count and tweet_count; None without them."""
    data = document.get("data")
    metrics = data.get("public_metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        return None
    counts = AccountCounts(
        followers=to_int(metrics.get("followers_count")), posts=to_int(metrics.get("tweet_count"))
    )
    return None if counts.is_empty() else counts


def _check_account_errors(document: Mapping[str, Any], handle: str, account: Account) -> None:
    """A timeline answer without posts whose errors concern the account itself."""
    if document.get("data") or not document.get("errors"):
        return
    about_user = [e for e in document["errors"] if e.get("resource_type") == "user"]
    if not about_user:
        return
    why = explain({"errors": about_user})
    if about_user[0].get("type") == NOT_FOUND:
        raise ApiError(f"{PLATFORM}: account @{handle} not found (id {account.id}){why}", gone=True)
    raise ApiError(f"{PLATFORM}: cannot read @{handle}'s posts{why}")


def find_handle(handle: str | None, url: str | None) -> str | None:
    """The username without '@', from the handle or else a profile URL (x.com/polisen)."""
    if handle:
        return handle.strip().lstrip("@") or None
    if url:
        path = urlsplit(url).path.strip("/").split("/")
        return path[0].lstrip("@") or None if path and path[0] else None
    return None
