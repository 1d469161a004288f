"""Read-side queries behind `sources list`, `status` and `posts list`. One query per listing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.models import collection_runs, posts, source_metrics, sources

LONG_FAILURE = timedelta(days=1)
# `status` shows how the account's counts moved over this long.
COUNTS_CHANGE_SPAN = timedelta(days=7)


@dataclass(frozen=True)
class AccountFigures:
    """A source's latest account counts (`source_metrics`) and how each moved over
    COUNTS_CHANGE_SPAN; a change is None when either end is unknown (no count a week ago,
    or a count the platform does not give)."""

    followers: int | None = None
    views: int | None = None
    posts: int | None = None
    followers_change: int | None = None
    views_change: int | None = None
    posts_change: int | None = None
    counted_at: datetime | None = None


@dataclass(frozen=True)
class SourceHealth:
    key: str
    platform: str
    channel: str  # the platform readers know it by (`sources.channel`)
    organisation: str
    address: str | None
    platform_id: str | None
    groups: tuple[str, ...]
    active: bool
    enabled: bool
    status: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_check_at: datetime | None
    post_count: int
    newest_post_at: datetime | None
    failing_since: datetime | None = None
    not_modified_share: float | None = None  # of this week's attempts, answered 304
    # The account's own counts: followers, total views and posts as the platform reports
    # them (not the posts stored here), each with its change over the last 7 days.
    followers: int | None = None
    followers_change_7d: int | None = None
    views: int | None = None
    views_change_7d: int | None = None
    account_posts: int | None = None
    account_posts_change_7d: int | None = None
    counted_at: datetime | None = None

    def failing_long(self, now: datetime) -> bool:
        """Failing for more than a day: what an admin must look at."""
        return self.failing_since is not None and now - self.failing_since > LONG_FAILURE


@dataclass(frozen=True)
class PostSummary:
    id: int
    source_key: str
    organisation: str
    kind: str
    published_at: datetime
    title: str | None
    text: str | None
    url: str | None


def list_source_health(
    engine: Engine, *, now: datetime, include_inactive: bool = False
) -> list[SourceHealth]:
    """Every source with its health, post figures and the week's share of 304 answers."""
    week = (
        sa.select(
            collection_runs.c.source_id,
            sa.func.count().label("attempts"),
            sa.func.sum(sa.case((collection_runs.c.status == "not_modified", 1), else_=0)).label(
                "not_modified"
            ),
        )
        .where(collection_runs.c.started_at >= now - timedelta(days=7))
        .group_by(collection_runs.c.source_id)
        .subquery()
    )
    counts = (
        sa.select(
            posts.c.source_id,
            sa.func.count().label("post_count"),
            sa.func.max(posts.c.published_at).label("newest_post_at"),
        )
        .group_by(posts.c.source_id)
        .subquery()
    )
    query = (
        sa.select(
            sources,
            sa.func.coalesce(counts.c.post_count, 0).label("post_count"),
            counts.c.newest_post_at,
            week.c.attempts,
            week.c.not_modified,
        )
        .select_from(
            sources.outerjoin(counts, counts.c.source_id == sources.c.id).outerjoin(
                week, week.c.source_id == sources.c.id
            )
        )
        .order_by(sources.c.organisation, sources.c.key)
    )
    if not include_inactive:
        query = query.where(sources.c.active.is_(True))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        figures = read_account_figures(connection, now)
    return [
        SourceHealth(
            key=row.key,
            platform=row.platform,
            channel=row.channel,
            organisation=row.organisation,
            address=row.fetch_url or row.url or row.handle,
            platform_id=row.platform_id,
            groups=tuple(row.groups or ()),
            active=row.active,
            enabled=row.enabled,
            status=row.status,
            consecutive_failures=row.consecutive_failures,
            last_success_at=row.last_success_at,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
            next_check_at=row.next_check_at,
            post_count=row.post_count,
            newest_post_at=row.newest_post_at,
            failing_since=row.failing_since,
            not_modified_share=(row.not_modified / row.attempts) if row.attempts else None,
            **_account_fields(figures.get(row.id)),
        )
        for row in rows
    ]


def read_account_figures(connection: Connection, now: datetime) -> dict[int, AccountFigures]:
    """Every source's latest account counts and their change since COUNTS_CHANGE_SPAN ago
    (the row in effect then: rows are written only when a count moved). Two grouped
    lookups of the newest row per source, whatever the number of sources."""
    latest = _newest_rows(connection, None)
    before = _newest_rows(connection, now - COUNTS_CHANGE_SPAN)
    figures = {}
    for source_id, row in latest.items():
        then = before.get(source_id)
        figures[source_id] = AccountFigures(
            followers=row.followers,
            views=row.views,
            posts=row.posts,
            followers_change=_change(row.followers, then.followers if then else None),
            views_change=_change(row.views, then.views if then else None),
            posts_change=_change(row.posts, then.posts if then else None),
            counted_at=row.observed_at,
        )
    return figures


def _newest_rows(connection: Connection, until: datetime | None) -> dict[int, Any]:
    newest = sa.select(sa.func.max(source_metrics.c.id)).group_by(source_metrics.c.source_id)
    if until is not None:
        newest = newest.where(source_metrics.c.observed_at <= until)
    query = sa.select(source_metrics).where(source_metrics.c.id.in_(newest))
    return {row.source_id: row for row in connection.execute(query)}


def _change(now: int | None, then: int | None) -> int | None:
    return None if now is None or then is None else now - then


def _account_fields(figures: AccountFigures | None) -> dict[str, Any]:
    if figures is None:
        return {}
    return {
        "followers": figures.followers,
        "followers_change_7d": figures.followers_change,
        "views": figures.views,
        "views_change_7d": figures.views_change,
        "account_posts": figures.posts,
        "account_posts_change_7d": figures.posts_change,
        "counted_at": figures.counted_at,
    }


def list_posts(
    engine: Engine,
    *,
    source_key: str | None = None,
    since: datetime | None = None,
    limit: int = 20,
) -> list[PostSummary]:
    """The newest posts, optionally of one source and since a moment."""
    query = (
        sa.select(
            posts.c.id,
            sources.c.key.label("source_key"),
            sources.c.organisation,
            posts.c.kind,
            posts.c.published_at,
            posts.c.title,
            posts.c.text,
            posts.c.url,
        )
        .join(sources, sources.c.id == posts.c.source_id)
        .where(posts.c.deleted_at.is_(None))
        .order_by(posts.c.published_at.desc(), posts.c.id.desc())
        .limit(limit)
    )
    if source_key:
        query = query.where(sources.c.key == source_key)
    if since:
        query = query.where(posts.c.published_at >= since)
    with engine.connect() as connection:
        return [PostSummary(**row._mapping) for row in connection.execute(query)]
