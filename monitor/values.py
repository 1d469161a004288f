"""Reading values from what platforms send: times, counts, web addresses. Contains no business
logic and imports nothing else of the project, so collectors and the store share one rule each.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

# The range of the BIGINT columns counts are stored in: SQLite cannot even bind a larger
# integer, and PostgreSQL refuses it, which would fail a whole collection over one odd number.
MIN_COUNT = -(2**63)
MAX_COUNT = 2**63 - 1
_NO_HOST = ("", "/", "?", "#")  # what can follow "//" when an address has no host


def parse_time(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from ISO 8601 / RFC 3339 text, or None.

    Text without an offset is taken as UTC. Accepts `Z`, `+00:00` and Graph's `+0000`; anything
    that is not such text (None, a number, a date out of datetime's range) gives None.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        return None


def to_int(value: Any) -> int | None:
    """A count or size as an int, or None.

    Takes ints, floats and numeric text ("12", "12.0", "1e3"; fractions are cut). A bool is not a
    count, although Python takes True for 1. So is no number outside the stored range.
    """
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        try:
            number = int(float(value))
        except (TypeError, ValueError, OverflowError):  # None, "abc", "nan", "inf"
            return None
    except OverflowError:  # float("inf")
        return None
    return number if MIN_COUNT <= number <= MAX_COUNT else None


def is_http_url(value: Any) -> bool:
    """Whether `value` is an absolute http(s) address with a host: the only kind of address we
    store or link to (never `javascript:`, `data:` or a relative path)."""
    if not isinstance(value, str):
        return False
    # How nearly every address comes: no parsing needed, only a host after the scheme.
    if value.startswith("https://"):
        return value[8:9] not in _NO_HOST
    if value.startswith("http://"):
        return value[7:8] not in _NO_HOST
    try:
        parts = urlsplit(value)
    except ValueError:  # an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
