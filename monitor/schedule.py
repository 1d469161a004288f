"""When to look at a source again. Pure decisions: no I/O, tested with fixed clocks."""

from __future__ import annotations

from datetime import datetime, timedelta

# However often a source fails, we try it again at least daily, so that a fixed feed is
# noticed without anyone having to intervene.
MAX_BACKOFF = timedelta(days=1)


def plan_next_check(
    *,
    now: datetime,
    interval: timedelta,
    consecutive_failures: int,
    retry_after: datetime | None = None,
) -> datetime:
    """The next check: the interval, doubled per consecutive failure up to a day,
    and never before the server's Retry-After."""
    delay = interval
    if consecutive_failures > 0:
        delay = min(interval * 2 ** (consecutive_failures - 1), max(interval, MAX_BACKOFF))
    planned = now + delay
    if retry_after is not None and retry_after > planned:
        planned = retry_after
    return planned
