"""The shared HTTP layer's pure parts: server-asked waits, bounded whatever the server says."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import pytest

from collectors.api import find_rate_limit_reset
from collectors.facebook import find_regain_time
from collectors.http import (
    LONGEST_SERVER_WAIT,
    Response,
    find_credentials,
    is_internal_address,
    may_follow,
    parse_freshness,
    parse_retry_after,
    redact,
    redact_bytes,
)
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


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata services live here
        ("0.0.0.0", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("193.180.18.1", False),
        ("8.8.8.8", False),
        ("2a00:1450:4001::1", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_is_internal_address(address: str, internal: bool) -> None:
    assert is_internal_address(ip_address(address)) is internal


PUBLIC = (ip_address("193.180.18.1"),)
OTHER_PUBLIC = (ip_address("8.8.8.8"), ip_address("2a00:1450:4001::1"))
LOOPBACK = (ip_address("127.0.0.1"),)
PRIVATE = (ip_address("10.0.0.5"),)


@pytest.mark.parametrize(
    ("configured", "target", "allowed"),
    [
        (PUBLIC, OTHER_PUBLIC, True),
        (PUBLIC, LOOPBACK, False),
        (PUBLIC, PRIVATE, False),
        (PUBLIC, (ip_address("169.254.169.254"),), False),
        (PUBLIC, (*OTHER_PUBLIC, *LOOPBACK), False),  # one internal answer is enough to refuse
        (PUBLIC, (), False),  # a target that resolves to nothing is not followed
        (LOOPBACK, PRIVATE, True),  # a source configured internal may stay internal
        (PRIVATE, LOOPBACK, True),
        ((*PUBLIC, *PRIVATE), LOOPBACK, True),
        ((), LOOPBACK, False),
    ],
)
def test_may_follow_keeps_public_sources_out_of_internal_addresses(
    configured: tuple[ipaddress.IPv4Address, ...],
    target: tuple[ipaddress.IPv4Address, ...],
    allowed: bool,
) -> None:
    assert may_follow(configured, target) is allowed


def test_credentials_are_found_in_the_authorization_header_and_credential_parameters() -> None:
    found = find_credentials(
        "https://api.example/v3/x?key=yt-secret-1&part=snippet",
        {"Authorization": "Bearer bearer-secret-2", "Accept": "application/json"},
        {"api_key": "flickr-secret-3", "access_token": "graph-secret-4", "method": "m"},
    )
    assert sorted(found) == ["bearer-secret-2", "flickr-secret-3", "graph-secret-4", "yt-secret-1"]


def test_redact_replaces_plain_and_url_encoded_secrets() -> None:
    secret = "a+b/c=d secret"
    text = f"url=https://h/?key=a%2Bb%2Fc%3Dd+secret and {secret} and a%2Bb%2Fc%3Dd%20secret"
    assert secret not in redact(text, [secret])
    assert "a%2Bb" not in redact(text, [secret])
    assert redact_bytes(b'{"q": "a+b/c=d secret"}', [secret]) == b'{"q": "[redacted]"}'
