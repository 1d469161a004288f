"""Which stored posts a reader asks for: one filter shared by `posts search` and `export`.

A `PostFilter` is plain data; `where_posts` turns it into SQLAlchemy Core conditions on
`posts` joined to `sources`, the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from monitor.models import posts, sources
from monitor.sources import on_platforms
from monitor.types import ENGAGEMENT_NAMES


@dataclass(frozen=True)
class PostFilter:
    """Posts to include; an empty tuple or None means no restriction on that field.

    Values within one field are alternatives (any platform listed); fields combine with AND.
    """

    since: datetime | None = None  # published at or after
    until: datetime | None = None  # published before
    # As collected or as shown (`monitor.sources.on_platforms`).
    platforms: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # source keys
    organisations: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # a source in any of these groups
    kinds: tuple[str, ...] = ()
    # Latest engagement at least this; posts never counted have none and are left out.
    min_engagement: int | None = None


def engagement_total(metrics: sa.FromClause) -> sa.ColumnElement[int]:
    """One observation's engagement: its ENGAGEMENT_NAMES counts added up, a missing one as 0."""
    counts = [sa.func.coalesce(metrics.c[name], 0) for name in ENGAGEMENT_NAMES]
    return sum(counts[1:], counts[0])


def where_posts(
    chosen: PostFilter, *, erased: bool = False, rows: sa.FromClause = posts
) -> list[sa.ColumnElement[bool]]:
    """Conditions for a query over `rows` JOIN `sources`: the filter's, and never erased posts
    (with `erased`, only erased ones: the records archive says how many it leaves out).

    `rows` is `posts`, or a narrower table with the same `id`, `published_at`, `kind`,
    `erased_at` and `engagement` (SQLite's search facets, migrations 0009 and 0013)."""
    conditions: list[sa.ColumnElement[bool]] = [
        rows.c.erased_at.is_not(None) if erased else rows.c.erased_at.is_(None)
    ]
    if chosen.since is not None:
        conditions.append(rows.c.published_at >= chosen.since)
    if chosen.until is not None:
        conditions.append(rows.c.published_at < chosen.until)
    conditions += where_sources(chosen)
    if chosen.kinds:
        conditions.append(rows.c.kind.in_(chosen.kinds))
    if chosen.min_engagement is not None:
        conditions.append(rows.c.engagement >= chosen.min_engagement)
    return conditions


def where_sources(chosen: PostFilter) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions on `sources` alone: platforms, sources, organisations, groups
    (what the account-count export filters by)."""
    conditions: list[sa.ColumnElement[bool]] = []
    if chosen.platforms:
        conditions.append(on_platforms(chosen.platforms))
    if chosen.sources:
        conditions.append(sources.c.key.in_(chosen.sources))
    if chosen.organisations:
        conditions.append(sources.c.organisation.in_(chosen.organisations))
    if chosen.groups:
        conditions.append(InAnyGroup(chosen.groups))
    return conditions


class InAnyGroup(sa.sql.expression.ColumnElement[bool]):
    """`sources.groups` (a JSON array) holds at least one of the given groups.

    JSON membership has no common SQL spelling, so each dialect gets its own below.
    """

    type = sa.Boolean()
    inherit_cache = False  # holds a tuple of plain values SQLAlchemy cannot key a cache on

    def __init__(self, groups: tuple[str, ...]) -> None:
        self.groups = groups


@compiles(InAnyGroup, "sqlite")
def _in_any_group_sqlite(element: InAnyGroup, compiler: SQLCompiler, **kw: Any) -> str:
    # The sources in the groups, found once (a thousand rows), not a JSON scan per post.
    grouped = sources.alias("grouped")
    members = sa.func.json_each(grouped.c.groups).table_valued("value")
    chosen = (
        sa.select(grouped.c.id)
        .select_from(grouped.join(members, sa.true()))
        .where(members.c.value.in_(element.groups))
    )
    return compiler.process(sources.c.id.in_(chosen), **kw)


@compiles(InAnyGroup, "postgresql")
def _in_any_group_postgresql(element: InAnyGroup, compiler: SQLCompiler, **kw: Any) -> str:
    # jsonb ?| text[]: any of the strings is a top-level element of the array.
    wanted = sa.literal(list(element.groups), ARRAY(sa.Text))
    return compiler.process(sources.c.groups.op("?|")(wanted), **kw)


_SPAN = re.compile(r"^\d+[smhd]$")


def parse_moment(value: str, now: datetime) -> datetime:
    """A moment from what a person types: a date ("2026-11-01", midnight UTC), an ISO time
    ("2026-11-01T08:00+01:00", UTC when no offset) or a span back from `now` ("7d", "12h").

    Raises:
        ValueError: the text is neither; the message shows the accepted forms.
    """
    from monitor.config import parse_duration

    text = value.strip()
    try:
        if _SPAN.match(text):
            return now - timedelta(seconds=parse_duration(text))
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"expected a date like 2026-11-23, a time like 2026-11-23T08:00 or a span like 7d,"
            f" got {value!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
