"""When a source is checked next, and its health: a pure decision, tested with fixed clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.schedule import SchedulePolicy, find_rhythm, plan_next_check

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
POLICY = SchedulePolicy(jitter=0.0)


def every(gap: timedelta, count: int = 10) -> list[datetime]:
    return [NOW - gap * i for i in range(count)]


def test_a_new_source_is_checked_after_the_default_interval() -> None:
    plan = plan_next_check(now=NOW, policy=POLICY, succeeded=True)
    assert (plan.next_check_at, plan.status) == (NOW + POLICY.default_interval, "ok")


def test_a_frequent_poster_is_checked_every_fifteen_minutes() -> None:
    plan = plan_next_check(
        now=NOW,
        policy=POLICY,
        succeeded=True,
        rhythm=find_rhythm(every(timedelta(minutes=20)), POLICY),
    )
    assert plan.next_check_at == NOW + timedelta(minutes=15)


def test_a_quiet_source_is_checked_at_most_daily() -> None:
    plan = plan_next_check(
        now=NOW,
        policy=POLICY,
        succeeded=True,
        rhythm=find_rhythm(every(timedelta(days=14)), POLICY),
    )
    assert plan.next_check_at == NOW + timedelta(days=1)


def test_rhythm_between_the_bounds_is_a_quarter_of_the_median_gap() -> None:
    posts = [*every(timedelta(hours=8)), NOW - timedelta(days=300)]  # one old outlier
    assert find_rhythm(posts, POLICY) == timedelta(hours=2)


def test_the_sources_own_interval_replaces_its_rhythm() -> None:
    plan = plan_next_check(
        now=NOW,
        policy=POLICY,
        succeeded=True,
        interval=3 * HOUR,
        rhythm=find_rhythm(every(HOUR), POLICY),
    )
    assert plan.next_check_at == NOW + 3 * HOUR


def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    waits = [
        plan_next_check(
            now=NOW, policy=POLICY, succeeded=False, consecutive_failures=n, failing_since=NOW
        ).next_check_at
        - NOW
        for n in range(1, 7)
    ]
    assert waits == [HOUR, 2 * HOUR, 4 * HOUR, 6 * HOUR, 6 * HOUR, 6 * HOUR]


def test_a_source_failing_for_a_day_is_broken_and_retried_daily() -> None:
    plan = plan_next_check(
        now=NOW,
        policy=POLICY,
        succeeded=False,
        consecutive_failures=9,
        failing_since=NOW - timedelta(days=1, minutes=1),
    )
    assert (plan.status, plan.next_check_at) == ("broken", NOW + timedelta(days=1))


def test_a_broken_source_that_answers_again_is_ok() -> None:
    plan = plan_next_check(
        now=NOW, policy=POLICY, succeeded=True, consecutive_failures=0, failing_since=None
    )
    assert plan.status == "ok"


def test_retry_after_later_than_the_plan_wins() -> None:
    later = NOW + 5 * HOUR
    plan = plan_next_check(
        now=NOW, policy=POLICY, succeeded=False, consecutive_failures=1, retry_after=later
    )
    assert plan.next_check_at == later


def test_retry_after_earlier_than_the_plan_does_not_hurry_us() -> None:
    plan = plan_next_check(
        now=NOW, policy=POLICY, succeeded=True, retry_after=NOW + timedelta(minutes=5)
    )
    assert plan.next_check_at == NOW + HOUR


def test_max_age_or_expires_delays_the_check_but_not_beyond_the_longest_interval() -> None:
    fresh = plan_next_check(now=NOW, policy=POLICY, succeeded=True, fresh_until=NOW + 3 * HOUR)
    assert fresh.next_check_at == NOW + 3 * HOUR
    year = plan_next_check(
        now=NOW, policy=POLICY, succeeded=True, fresh_until=NOW + timedelta(days=365)
    )
    assert year.next_check_at == NOW + POLICY.max_interval


def test_retry_after_far_away_is_capped_at_the_longest_interval() -> None:
    plan = plan_next_check(
        now=NOW,
        policy=POLICY,
        succeeded=False,
        consecutive_failures=1,
        retry_after=datetime(2100, 12, 31, tzinfo=UTC),
    )
    assert plan.next_check_at == NOW + POLICY.max_interval


def test_retry_after_of_a_broken_source_is_capped_at_the_broken_retry() -> None:
    policy = SchedulePolicy(jitter=0.0, broken_retry=timedelta(days=3))
    plan = plan_next_check(
        now=NOW,
        policy=policy,
        succeeded=False,
        consecutive_failures=9,
        failing_since=NOW - timedelta(days=2),
        retry_after=datetime(2100, 12, 31, tzinfo=UTC),
    )
    assert (plan.next_check_at, plan.status) == (NOW + timedelta(days=3), "broken")


@pytest.mark.parametrize(("jitter", "expected"), [(-1.0, 54), (0.0, 60), (1.0, 66), (5.0, 66)])
def test_jitter_spreads_checks_within_a_tenth_of_the_interval(jitter: float, expected: int) -> None:
    plan = plan_next_check(now=NOW, policy=SchedulePolicy(), succeeded=True, jitter=jitter)
    assert plan.next_check_at == NOW + timedelta(minutes=expected)
