"""The shared value rules: times, counts and web addresses as platforms send them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from monitor.values import MAX_COUNT, is_http_url, parse_time, to_int

WHEN = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T09:15:00Z",  # RFC 3339, as YouTube, Mastodon and X send it
        "2026-11-20T09:15:00+00:00",
        "2026-11-20T09:15:00+0000",  # Graph
        "2026-11-20T10:15:00+01:00",  # an offset: converted, not dropped
        "2026-11-20T09:15:00",  # naive: taken as UTC
        "2026-11-20T09:15:00.000Z",  # Bluesky's milliseconds
    ],
)
def test_parse_time_gives_aware_utc(text: str) -> None:
    moment = parse_time(text)
    assert moment == WHEN and moment.tzinfo is UTC


@pytest.mark.parametrize(
    "value", [None, "", "igår", 1764000000, True, "2026-13-01T00:00:00Z", "0001-01-01T00:00+01:00"]
)
def test_parse_time_gives_none_for_what_is_not_a_time(value: Any) -> None:
    assert parse_time(value) is None


def test_parse_time_keeps_the_instant_of_a_far_offset() -> None:
    moment = parse_time("2026-11-20T23:30:00-05:00")
    assert moment == datetime(2026, 11, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert moment is not None and moment.date().isoformat() == "2026-11-21"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        ("12", 12),
        (" 12 ", 12),
        ("12.9", 12),  # a Media RSS duration in seconds with a fraction
        (12.9, 12),
        ("1e3", 1000),
        (0, 0),
        ("12345678901234567", 12345678901234567),  # exact: never through a float
        (MAX_COUNT, MAX_COUNT),
    ],
)
def test_to_int_reads_counts(value: Any, expected: int) -> None:
    assert to_int(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        True,  # Python's 1, but no count
        False,
        None,
        "",
        "many",
        "nan",
        "inf",
        float("inf"),
        [3],
        MAX_COUNT + 1,  # a BIGINT column cannot hold it
        str(10**23),
        "9" * 5000,  # longer than int() reads from text
    ],
)
def test_to_int_gives_none_for_what_is_not_a_storable_count(value: Any) -> None:
    assert to_int(value) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://www.katrineholm.se/nyheter/1",
        "http://example.se",
        "HTTPS://EXAMPLE.SE/A",
        "https://example.se?q=1",
        "http://[2001:db8::1]/rss",
    ],
)
def test_web_addresses_are_http_urls(url: str) -> None:
    assert is_http_url(url)


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        " javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "mailto:kommun@katrineholm.se",
        "ftp://example.se/fil",
        "/nyheter/1",
        "//example.se/nyheter",
        "https://",
        "https:///path",
        "http:example.se",
        "HTTP://[::1",  # not even parseable
        "",
        None,
        42,
    ],
)
def test_everything_else_is_not_a_web_address(value: Any) -> None:
    assert not is_http_url(value)
