"""The shared HTTP layer's pure parts: server-asked waits, bounded whatever the server says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collectors.api import find_rate_limit_reset
from collectors.facebook import find_regain_time
from collectors.http import LONGEST_SERVER_WAIT, Response, parse_freshness, parse_retry_after
from collectors.x import RateLimits

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
LATEST = NOW + LONGEST_SERVER_WAIT


def answer(**headers: str) -> Response:
    return Response(status=429, url="http://127.0.0.1/", headers=headers, body=b"")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", NOW + timedelta(seconds=120)),
        ("99999999999999", LATEST),
        ("9" * 400, LATEST),
        ("Fri, 31 Dec 2100 23:59:59 GMT", LATEST),
        ("Fri, 31 Dec 9999 23:59:59 GMT", LATEST),
        ("Mon, 01 Jan 2001 00:00:00 GMT", NOW),
        ("soon", None),
    ],
)
def test_retry_after_is_bounded_and_never_overflows(value: str, expected: datetime) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("cache_control", "expires"),
    [("max-age=99999999999999", None), (None, "Fri, 31 Dec 9999 23:59:59 GMT")],
)
def test_freshness_is_bounded_and_never_overflows(
    cache_control: str | None, expires: str | None
) -> None:
    assert parse_freshness(cache_control, expires, NOW) == LATEST


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "99999999999999"},
        {"x-rate-limit-reset": "99999999999999"},
        {"x-ratelimit-reset": "99999999999999"},
        {"x-ratelimit-reset": "9999-12-31T23:59:59Z"},
        {"ratelimit-reset": "99999999999999"},
        {"ratelimit-reset": "4102444799"},  # 2099-12-31 as an epoch time
    ],
)
def test_rate_limit_resets_are_bounded_and_never_overflow(headers: dict[str, str]) -> None:
    assert find_rate_limit_reset(answer(**headers), NOW) == LATEST


def test_rate_limit_reset_in_seconds_from_now_is_kept() -> None:
    assert find_rate_limit_reset(answer(**{"ratelimit-reset": "60"}), NOW) == NOW + timedelta(
        seconds=60
    )


def test_facebook_regain_time_is_bounded() -> None:
    usage = '{"123": [{"estimated_time_to_regain_access": 99999999999999}]}'
    until = find_regain_time(answer(**{"x-business-use-case-usage": usage}), NOW)
    assert until == LATEST


def test_x_rate_limit_reset_far_away_is_bounded() -> None:
    limits = RateLimits()
    limits.note(
        "/2/users/:id/tweets", {"x-rate-limit-remaining": "0", "x-rate-limit-reset": "9" * 30}
    )
    until = limits.spent_until("/2/users/:id/tweets", datetime.now(UTC))
    assert until is not None and until <= datetime.now(UTC) + LONGEST_SERVER_WAIT
