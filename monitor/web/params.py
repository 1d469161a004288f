"""A search as the address bar says it: `/search?q=…&since=…&platform=…&page=2`.

Pure: query parameters in, a `SearchRequest` or one friendly line per problem out. The same
filters as `omvarld posts search` (monitor.filters.PostFilter), checked the same way; repeated
parameters (`platform=x&platform=youtube`) are alternatives, as repeated CLI options are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from monitor.filters import PostFilter, parse_moment
from monitor.platforms import CHANNEL_KEYS
from monitor.search import SORTS, Sort
from monitor.types import KINDS

PAGE_SIZE = 20
MAX_PAGE = 500  # 10,000 results deep; past that a narrower search serves anyone better
MAX_ENGAGEMENT = 2**62
FILTER_NAMES = ("since", "until", "platform", "source", "organisation", "group", "kind")
MAX_VALUES = 50  # repeated parameters per name: more is not a person's search
MAX_VALUE_CHARS = 500


@dataclass(frozen=True)
class SearchRequest:
    q: str = ""
    chosen: PostFilter = field(default_factory=PostFilter)
    sort: Sort = "newest"
    page: int = 1
    values: dict[str, list[str]] = field(default_factory=dict)  # as given, for the form

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def url(self, **changes: object) -> str:
        """This search's address with some parameters changed (a page, a format)."""
        pairs = [
            (name, value)
            for name, values in self.values.items()
            if name not in changes
            for value in values
        ]
        pairs += [(name, str(value)) for name, value in changes.items() if value is not None]
        return urlencode(pairs)


def read_number(
    text: str | None, name: str, low: int, high: int, default: int | None, problems: list[str]
) -> int | None:
    """A whole number parameter within [low, high]; the default, and a problem, otherwise."""
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        problems.append(f"{name}: expected a whole number from {low} to {high}, got {text!r}")
        return default
    return int(text)


def read_search(
    params: Mapping[str, Sequence[str]], now: datetime
) -> tuple[SearchRequest, list[str]]:
    """The search the parameters ask for, and what is wrong with them (empty when nothing)."""
    problems: list[str] = []
    values: dict[str, list[str]] = {}
    for name in ("q", *FILTER_NAMES, "min_engagement", "sort", "page"):
        given = [value.strip() for value in params.get(name, ()) if value and value.strip()]
        if len(given) > MAX_VALUES or any(len(value) > MAX_VALUE_CHARS for value in given):
            problems.append(f"{name}: too many or too long values")
            given = []
        if given:
            values[name] = given

    def one(name: str) -> str | None:
        return values.get(name, [None])[-1]

    def moment(name: str) -> datetime | None:
        text = one(name)
        if text is None:
            return None
        try:
            return parse_moment(text, now)
        except ValueError as error:
            problems.append(f"{name}: {error}")
            return None

    def known(name: str, allowed: Sequence[str]) -> tuple[str, ...]:
        chosen = tuple(values.get(name, ()))
        unknown = [value for value in chosen if value not in allowed]
        if unknown:
            problems.append(
                f"{name}: unknown {', '.join(map(repr, unknown))}; expected one of"
                f" {', '.join(allowed)}"
            )
            return ()
        return chosen

    def number(name: str, low: int, high: int, default: int | None) -> int | None:
        return read_number(one(name), name, low, high, default, problems)

    sort: Sort = "newest"
    asked = one("sort")
    if asked == "relevance":
        sort = "relevance"
    elif asked not in (None, *SORTS):
        problems.append(f"sort: expected {' or '.join(SORTS)}, got {asked!r}")
    chosen = PostFilter(
        since=moment("since"),
        until=moment("until"),
        platforms=known("platform", CHANNEL_KEYS),
        sources=tuple(values.get("source", ())),
        organisations=tuple(values.get("organisation", ())),
        groups=tuple(values.get("group", ())),
        kinds=known("kind", KINDS),
        min_engagement=number("min_engagement", 0, MAX_ENGAGEMENT, None),
    )
    page = number("page", 1, MAX_PAGE, 1) or 1
    return SearchRequest(one("q") or "", chosen, sort, page, values), problems
