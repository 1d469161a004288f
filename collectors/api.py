"""What every JSON-API collector shares: requests, error mapping, backfill windows.

Contains no platform logic. Each platform module decides which calls to make and how to read
the answers; this module turns HTTP outcomes into the one-line errors and health that admins
see, the same way for every platform.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from collectors.http import (
    FetchError,
    HttpClient,
    Response,
    bound_wait,
    parse_retry_after,
    wait_seconds,
    wait_until_epoch,
)
from monitor.types import AccountCounts, CollectResult, CollectStatus, SourceState

if TYPE_CHECKING:
    from collectors.base import CollectorSettings


EPOCH_THRESHOLD = 10**9  # 2001-09-09 as an epoch time; as seconds from now, 31 years
# The cursor key holding the UTC day a source's account counts were last read by a call of
# their own. Such a call is made at most once a day: followers move slowly, the comparisons
# read them by the day, and X and YouTube bill the call. Counts an answer already asked for
# carries (a Mastodon status names its account) are taken on every run.
COUNTS_DAY = "counts_day"


class ApiError(Exception):
    """A call failed; `message` is the one line for admins, `retry_after` when to come back."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: datetime | None = None,
        resume_at: datetime | None = None,
        gone: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after  # the server's wish, capped by the schedule
        self.resume_at = resume_at  # a limit we know lifts then (see CollectResult.resume_at)
        self.gone = gone  # the account itself does not exist (any more)


@dataclass(frozen=True)
class Backfill:
    """How far a source's first collection reaches: `[collect] backfill_days` and
    `backfill_posts`, whichever is reached first."""

    since: datetime
    max_posts: int

    @classmethod
    def from_settings(cls, settings: CollectorSettings, now: datetime) -> Backfill:
        return cls(
            since=now - timedelta(days=settings.backfill_days), max_posts=settings.backfill_posts
        )


class Tally:
    """What one attempt's API requests added up to: the numbers its CollectResult reports.

    `requests` counts every request tried (one that never got an answer too) and
    `bytes_received` every answer's body, whatever its status. `last_status` is the status of
    the last answer taken (below 400), the result's `http_status`: an error's status travels
    in its ApiError instead, so an error a platform shrugs off (a post gone since) never makes
    a good result look failed.
    """

    def __init__(self) -> None:
        self.requests = 0
        self.bytes_received = 0
        self.last_status: int | None = None

    def count(self, status: int, size: int) -> None:
        """Add one answer of `size` bytes (its request was counted when it was sent)."""
        self.bytes_received += size
        if status < 400:
            self.last_status = status


class ApiClient(Tally):
    """GETs against one platform's JSON API at one base URL, with one credential.

    The contract, which every platform's client keeps (each adds only its auth, its error
    mapping and its paging):

    - `fetch(path, params)` GETs `base_url + path` (a path starts with "/", or is "" for an
      API with one endpoint) with `Accept: application/json`. The credential goes as
      `Authorization: Bearer <token>` or, when `token_param` is set, as that query parameter;
      without a token the request is anonymous.
    - Every request and answer is counted as `Tally` says (`requests`, `bytes_received`,
      `last_status`).
    - A status of 400 or more raises what `describe_error` makes of the answer. The default
      is `error_for_status` (rate limit with its reset, credentials naming `credential_env`,
      not found, server error); a platform overrides it to read its own error body. It may
      return another exception than ApiError (YouTube's spent quota) for its caller to handle.
    - No answer (connection, timeout, size, redirect) raises ApiError "<platform>: <why>"; a
      body that is not JSON raises ApiError naming `what` was called and the status; `get_object`
      also refuses JSON that is not an object.
    - Credentials never reach a message or a stored answer: the HttpClient redacts the
      Authorization header and credential query parameters (`http.CREDENTIAL_PARAMS`) from
      its errors and from the response (some APIs echo the request) before this class sees them.

    Args:
        platform: the platform's name as admins know it, for messages ("Mastodon").
        token_param: the query parameter that carries the token (YouTube's `key`); the
            Authorization header carries it when unset.
        credential_env: the environment variable holding the token, named in credential errors.
        now: the attempt's start, from which the waits a server asks for are counted.
    """

    def __init__(
        self,
        http: HttpClient,
        base_url: str,
        *,
        platform: str,
        now: datetime,
        token: str | None = None,
        token_param: str | None = None,
        credential_env: str | None = None,
    ) -> None:
        super().__init__()
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.platform = platform
        self.token = token
        self.token_param = token_param
        self.credential_env = credential_env
        self.now = now

    async def fetch(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        what: str = "the API",
        lookup: str | None = None,
    ) -> tuple[Any, Response]:
        """The decoded JSON of one GET and the answer it came in.

        Args:
            what: the call as messages name it ("getAuthorFeed").
            lookup: the account this call looks up, for `describe_error` to say it is gone.
        """
        response = await self._answer(path, params, lookup)
        try:
            return json.loads(response.body), response
        except ValueError:
            raise ApiError(
                f"{self.platform}: {what} answered HTTP {response.status} with something that "
                "is not JSON",
                http_status=response.status,
            ) from None

    async def get_object(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        what: str = "the API",
        lookup: str | None = None,
    ) -> dict[str, Any]:
        """The JSON object one GET answers; anything else raises ApiError."""
        response = await self._answer(path, params, lookup)
        try:
            document = json.loads(response.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ApiError(
                f"{self.platform}: {what} answered HTTP {response.status} with something that "
                "is not a JSON object",
                http_status=response.status,
            )
        return document

    def describe_error(self, response: Response, lookup: str | None) -> Exception:
        """What an answer with an error status means: the platform's hook, see the class."""
        return error_for_status(
            response, platform=self.platform, now=self.now, credential_env=self.credential_env
        )

    async def _answer(
        self, path: str, params: Mapping[str, str | int] | None, lookup: str | None
    ) -> Response:
        headers = {"Accept": "application/json"}
        if self.token and self.token_param:
            params = {**(params or {}), self.token_param: self.token}
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.requests += 1
        try:
            response = await self.http.get(self.base_url + path, headers, params or None)
        except FetchError as error:
            raise ApiError(f"{self.platform}: {error}") from None
        self.count(response.status, len(response.body))
        if response.status >= 400:
            raise self.describe_error(response, lookup)
        return response


def error_for_status(
    response: Response, *, platform: str, now: datetime, credential_env: str | None = None
) -> ApiError:
    """The ApiError an HTTP error status means, with the rate-limit reset when one is given."""
    status = response.status
    if status == 429 or (status == 403 and _rate_limit_exhausted(response)):
        until = find_rate_limit_reset(response, now)
        when = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
        return ApiError(f"{platform}: rate limited{when}", http_status=status, retry_after=until)
    if status in (401, 403):
        which = f" (check {credential_env})" if credential_env else ""
        reason = "credentials invalid or expired" if status == 401 else "access refused"
        return ApiError(f"{platform}: {reason}{which}: HTTP {status}", http_status=status)
    if status in (404, 410):
        return ApiError(f"{platform}: not found (HTTP {status})", http_status=status, gone=True)
    if status >= 500:
        return ApiError(
            f"{platform}: temporary server error (HTTP {status}); retried later",
            http_status=status,
            retry_after=parse_retry_after(response.header("retry-after"), now),
        )
    return ApiError(f"{platform}: HTTP {status}", http_status=status)


def find_rate_limit_reset(response: Response, now: datetime) -> datetime | None:
    """When a rate limit resets: Retry-After, or the reset headers the platforms send
    (`x-rate-limit-reset` as epoch seconds on X and Mastodon-style `x-ratelimit-reset` as an
    ISO date or epoch, `ratelimit-reset` as seconds from now)."""
    retry_after = parse_retry_after(response.header("retry-after"), now)
    if retry_after:
        return retry_after
    for name in ("x-rate-limit-reset", "x-ratelimit-reset"):
        value = response.header(name)
        if not value:
            continue
        if value.strip().isdigit():
            return wait_until_epoch(now, int(value))
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        return bound_wait(when, now)
    value = response.header("ratelimit-reset")
    if value and value.strip().isdigit():
        number = int(value)
        # The IETF draft says seconds from now; Bluesky sends an epoch time
        # (bluesky-social/atproto#3436). No reset is 30 years away.
        if number > EPOCH_THRESHOLD:
            return wait_until_epoch(now, number)
        return wait_seconds(now, number)
    return None


async def add_account_counts(
    result: CollectResult,
    previous: SourceState,
    now: datetime,
    read: Callable[[], Awaitable[AccountCounts | None]],
    *,
    answers: Tally,
    known: AccountCounts | None = None,
    units: Callable[[], int] | None = None,
) -> CollectResult:
    """The result with the account's counts: `known` when an answer of this attempt carried
    them, else what `read` (a call of their own) returns, once per UTC day.

    What the read cost is added to the result: the bytes `answers` counted and, for a metered
    API, the units `units` reports. A failed read never costs the posts: the result turns
    PARTIAL with one more line naming the problem, and the read is tried again at the next
    attempt. A result that failed is returned as it is.
    """
    if result.status not in (CollectStatus.OK, CollectStatus.PARTIAL):
        return result
    today = now.date().isoformat()
    counts = known
    if counts is None:
        if previous.cursor.get(COUNTS_DAY) == today:
            return _with_cursor(result, {COUNTS_DAY: today})
        bytes_before, units_before = answers.bytes_received, units() if units else 0
        problem = None
        try:
            counts = await read()
        except ApiError as error:
            problem = f"{error.message}; the account's follower counts were not read"
        result = replace(
            result,
            bytes_received=result.bytes_received + answers.bytes_received - bytes_before,
            api_units=result.api_units + (units() - units_before if units else 0),
        )
        if problem is not None:
            line = f"{result.error}; {problem}" if result.error else problem
            return replace(result, status=CollectStatus.PARTIAL, error=line)
    result = _with_cursor(result, {COUNTS_DAY: today})
    return replace(result, account=counts if counts and not counts.is_empty() else None)


def _with_cursor(result: CollectResult, additions: Mapping[str, Any]) -> CollectResult:
    cursor = {**result.state.cursor, **additions}
    return replace(result, state=replace(result.state, cursor=cursor))


def failed(state: SourceState, error: ApiError, **changes: Any) -> CollectResult:
    """The result of an attempt that an ApiError ended: the old state kept."""
    result = CollectResult(
        CollectStatus.FAILED,
        state=state,
        http_status=error.http_status,
        error=error.message,
        retry_after=error.retry_after,
        resume_at=error.resume_at,
    )
    return replace(result, **changes) if changes else result


def _rate_limit_exhausted(response: Response) -> bool:
    remaining = response.header("x-rate-limit-remaining") or response.header(
        "x-ratelimit-remaining"
    )
    return remaining is not None and remaining.strip() == "0"
