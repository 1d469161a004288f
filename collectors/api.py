"""What every JSON-API collector shares: requests, error mapping, backfill windows.

Contains no platform logic. Each platform module decides which calls to make and how to read
the answers; this module turns HTTP outcomes into the one-line errors and health that admins
see, the same way for every platform.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
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
from monitor.types import CollectResult, CollectStatus, SourceState

if TYPE_CHECKING:
    from monitor.config import CollectConfig


EPOCH_THRESHOLD = 10**9  # 2001-09-09 as an epoch time; as seconds from now, 31 years


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
    def from_config(cls, settings: CollectConfig, now: datetime) -> Backfill:
        return cls(
            since=now - timedelta(days=settings.backfill_days), max_posts=settings.backfill_posts
        )


async def get_json(
    http: HttpClient,
    url: str,
    *,
    platform: str,
    params: Mapping[str, str | int] | None = None,
    headers: dict[str, str] | None = None,
    credential_env: str | None = None,
) -> tuple[Any, Response]:
    """GET a JSON document. Raises ApiError with a message naming what to do.

    Args:
        platform: the platform's name as admins know it, for messages ("Mastodon").
        credential_env: the environment variable holding the token, named in credential errors.
    """
    try:
        response = await http.get(url, {"Accept": "application/json", **(headers or {})}, params)
    except FetchError as error:
        raise ApiError(f"{platform}: {error}") from None
    if response.status >= 400:
        raise error_for_status(response, platform=platform, credential_env=credential_env)
    try:
        return json.loads(response.body), response
    except ValueError:
        raise ApiError(
            f"{platform}: the API answered HTTP {response.status} with something that is not JSON",
            http_status=response.status,
        ) from None


def error_for_status(
    response: Response, *, platform: str, credential_env: str | None = None
) -> ApiError:
    """The ApiError an HTTP error status means, with the rate-limit reset when one is given."""
    status = response.status
    now = datetime.now(UTC)
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
