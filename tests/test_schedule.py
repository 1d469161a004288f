"""When a source is checked next: a pure decision, tested with fixed clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.schedule import MAX_BACKOFF, plan_next_check

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_healthy_source_is_checked_again_after_its_interval() -> None:
    assert plan_next_check(now=NOW, interval=HOUR, consecutive_failures=0) == NOW + HOUR


def test_failures_double_the_wait_up_to_a_day() -> None:
    waits = [
        plan_next_check(now=NOW, interval=HOUR, consecutive_failures=n) - NOW for n in range(1, 8)
    ]
    assert waits[:4] == [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR]
    assert waits[-1] == MAX_BACKOFF == timedelta(days=1)


def test_retry_after_later_than_the_plan_wins() -> None:
    later = NOW + 5 * HOUR
    assert (
        plan_next_check(now=NOW, interval=HOUR, consecutive_failures=1, retry_after=later) == later
    )


def test_retry_after_earlier_than_the_plan_does_not_hurry_us() -> None:
    soon = NOW + timedelta(minutes=5)
    planned = plan_next_check(now=NOW, interval=HOUR, consecutive_failures=0, retry_after=soon)
    assert planned == NOW + HOUR


def test_an_interval_longer_than_a_day_is_not_shortened_by_backoff() -> None:
    week = timedelta(days=7)
    assert plan_next_check(now=NOW, interval=week, consecutive_failures=3) == NOW + week
