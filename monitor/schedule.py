"""When to look at a source again, and what state its health is in. Pure: no I/O, no clock.

Every input is a parameter, the random jitter included, so that each rule can be tested with a
fixed clock and the whole schedule replayed.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# A source's rhythm is read from this many of its newest posts.
RHYTHM_SAMPLE = 10
# We check a source about four times per gap between its posts: a new post waits on average an
# eighth of the gap, without asking a quiet source every few minutes.
CHECKS_PER_POSTING_GAP = 4


@dataclass(frozen=True)
class SchedulePolicy:
    """The bounds the schedule works within; from `[collect]` in the config."""

    min_interval: timedelta = timedelta(minutes=15)
    max_interval: timedelta = timedelta(days=1)
    default_interval: timedelta = timedelta(hours=1)  # until a source has a rhythm
    jitter: float = 0.1  # ± this share of the interval, so 300 sources don't fire together
    max_backoff: timedelta = timedelta(hours=6)
    broken_after: timedelta = timedelta(days=1)  # failing this long: broken, retried daily
    broken_retry: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class CheckPlan:
    next_check_at: datetime
    status: str  # ok | failing | broken


def find_rhythm(published: Sequence[datetime], policy: SchedulePolicy) -> timedelta:
    """The interval a source's posting rhythm asks for, within the policy's bounds."""
    newest = sorted(published, reverse=True)[:RHYTHM_SAMPLE]
    gaps = [a - b for a, b in itertools.pairwise(newest) if a > b]
    if len(gaps) < 2:
        return policy.default_interval
    median = timedelta(seconds=statistics.median(g.total_seconds() for g in gaps))
    wanted = median / CHECKS_PER_POSTING_GAP
    return min(max(wanted, policy.min_interval), policy.max_interval)


def plan_next_check(
    *,
    now: datetime,
    policy: SchedulePolicy,
    succeeded: bool,
    consecutive_failures: int = 0,
    failing_since: datetime | None = None,
    interval: timedelta | None = None,
    rhythm: timedelta | None = None,
    retry_after: datetime | None = None,
    fresh_until: datetime | None = None,
    resume_at: datetime | None = None,
    jitter: float = 0.0,
) -> CheckPlan:
    """The next check of a source after an attempt, and its health state.

    Args:
        succeeded: the attempt fetched the source (200 or 304), even if parsing was partial.
        consecutive_failures: failures in a row, this attempt included when it failed.
        failing_since: when the current run of failures began.
        interval: the source's own configured interval, which replaces its rhythm.
        rhythm: the interval the source's posting rhythm asks for (`find_rhythm`).
        retry_after: the server asked us not to return before this (429, 503).
        fresh_until: the server said the response stays fresh until then (max-age, Expires).
        resume_at: a limit we know lifts then (a spent monthly budget): never capped.
        jitter: a random number in [-1, 1], scaled by the policy.
    """
    if succeeded or consecutive_failures == 0:
        base = interval or rhythm or policy.default_interval
        status = "ok"
    elif failing_since is not None and now - failing_since >= policy.broken_after:
        # Broken: a visible state, retried daily; never silently dropped.
        base = max(policy.broken_retry, interval or timedelta(0))
        status = "broken"
    else:
        normal = interval or policy.default_interval
        base = min(normal * 2 ** (consecutive_failures - 1), max(normal, policy.max_backoff))
        status = "failing"
    planned = now + base + base * policy.jitter * max(-1.0, min(1.0, jitter))
    # Servers' own wishes win over our rhythm, within reason: a feed claiming to stay fresh for
    # a year, or asking us to come back in 2100, is still looked at after max_interval (or the
    # broken-source retry, when that is longer).
    longest = now + max(policy.max_interval, base)
    for wish in (fresh_until, retry_after):
        if wish is not None:
            planned = max(planned, min(wish, longest))
    if resume_at is not None:
        planned = max(planned, resume_at)
    return CheckPlan(next_check_at=planned, status=status)
