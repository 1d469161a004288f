"""The queries behind the web pages, each one statement or a few, each bounded.

Pages never load more rows than they show: the week's overview groups in the database, the
post page reads one post with its revisions and counts, the archive lists digests without
their messages.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.filters import PostFilter, engagement_total, where_posts
from monitor.models import collection_runs, digests, post_metrics, post_revisions, posts, sources
from monitor.search import SearchHit, make_hit, select_hits
from monitor.types import METRIC_NAMES

TOP_POSTS = 10
MAX_CURVE_POINTS = 500  # a post counted every hour for three weeks; older points are thinned


@dataclass(frozen=True)
class PlatformCount:
    organisation: str
    channel: str  # the platform readers know it by (`sources.channel`)
    posts: int
    engagement: int | None  # None: nothing measured (feeds have no counts)


@dataclass(frozen=True)
class Attention:
    key: str
    organisation: str
    channel: str
    status: str
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class Revision:
    superseded_at: datetime
    title: str | None
    text: str | None
    url: str | None
    changes: tuple[str, ...]  # title | text | link | other: what the next version changed


@dataclass(frozen=True)
class MetricPoint:
    observed_at: datetime
    counts: dict[str, int | None]
    engagement: int


@dataclass(frozen=True)
class PostPage:
    id: int
    source_key: str
    organisation: str
    platform: str
    channel: str
    kind: str
    url: str | None
    author: str | None
    published_at: datetime
    first_seen_at: datetime
    title: str | None
    text: str | None
    html: str | None
    language: str | None
    tags: list[str]
    links: list[str]
    media: list[dict[str, Any]]
    deleted_at: datetime | None
    erased_at: datetime | None
    revisions: list[Revision]
    metrics: list[MetricPoint]


@dataclass(frozen=True)
class Run:
    started_at: datetime
    finished_at: datetime
    status: str
    http_status: int | None
    posts_new: int
    posts_updated: int
    posts_unchanged: int
    bytes_received: int
    error: str | None


@dataclass(frozen=True)
class DigestRow:
    id: int
    recipient: str
    week: str
    status: str
    subject: str | None
    sent_at: datetime | None


@dataclass(frozen=True)
class WeekOverview:
    counts: list[PlatformCount]  # most posts first
    top: list[SearchHit]  # the most engaging posts, most first


def summarise_week(
    engine: Engine, start: datetime, end: datetime, top: int = TOP_POSTS
) -> WeekOverview:
    """A week's posts and engagement per organisation and platform, and its most engaging
    posts, from one pass over the week's posts and their kept latest engagement (migration 0013)."""
    week = (
        sa.select(posts.c.id, sources.c.organisation, sources.c.channel, posts.c.engagement)
        .select_from(posts.join(sources, sources.c.id == posts.c.source_id))
        .where(
            posts.c.published_at >= start,
            posts.c.published_at < end,
            posts.c.deleted_at.is_(None),
            posts.c.erased_at.is_(None),
        )
    )
    totals: dict[tuple[str, str], list[int | None]] = {}
    engaged: list[tuple[int, int]] = []
    with engine.connect() as connection:
        for post_id, organisation, channel, engagement in connection.execute(week):
            total = totals.setdefault((organisation, channel), [0, None])
            total[0] = (total[0] or 0) + 1
            if engagement is not None:
                total[1] = (total[1] or 0) + engagement
                if engagement > 0:
                    engaged.append((engagement, post_id))
        best = heapq.nlargest(top, engaged)
        details = {
            row["id"]: row
            for row in connection.execute(
                select_hits().where(posts.c.id.in_([post_id for _, post_id in best]))
            ).mappings()
        }
    counts = [
        PlatformCount(organisation, channel, int(number or 0), engagement)
        for (organisation, channel), (number, engagement) in totals.items()
    ]
    counts.sort(key=lambda row: (-row.posts, row.organisation, row.channel))
    return WeekOverview(counts, [make_hit(details[post_id]) for _, post_id in best])


def list_filtered_posts(
    engine: Engine, chosen: PostFilter, limit: int, offset: int = 0
) -> list[SearchHit]:
    """Posts by filter alone (a search with no words), newest first, one page. Posts their
    publisher deleted are listed, as search lists them: the post page says so."""
    query = (
        select_hits()
        .where(*where_posts(chosen))
        .order_by(posts.c.published_at.desc(), posts.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as connection:
        return [make_hit(row) for row in connection.execute(query).mappings()]


def list_attention(engine: Engine) -> list[Attention]:
    """Active, enabled sources whose last collection failed, longest failing first."""
    query = (
        sa.select(sources)
        .where(
            sources.c.active.is_(True),
            sources.c.enabled.is_(True),
            sa.or_(sources.c.consecutive_failures > 0, sources.c.status.in_(("failing", "broken"))),
        )
        .order_by(sources.c.consecutive_failures.desc(), sources.c.key)
        .limit(50)
    )
    with engine.connect() as connection:
        return [
            Attention(
                row.key,
                row.organisation,
                row.channel,
                row.status,
                row.consecutive_failures,
                row.last_error,
                row.last_success_at,
            )
            for row in connection.execute(query)
        ]


def find_post(engine: Engine, post_id: int) -> PostPage | None:
    """One post with its earlier versions (oldest first) and its engagement series."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(
                posts,
                sources.c.key.label("source_key"),
                sources.c.organisation,
                sources.c.platform,
                sources.c.channel,
            )
            .join(sources, sources.c.id == posts.c.source_id)
            .where(posts.c.id == post_id)
        ).first()
        if row is None:
            return None
        versions = connection.execute(
            sa.select(post_revisions)
            .where(post_revisions.c.post_id == post_id)
            .order_by(post_revisions.c.superseded_at, post_revisions.c.id)
        ).all()
        counted = connection.execute(
            sa.select(post_metrics, engagement_total(post_metrics).label("engagement"))
            .where(post_metrics.c.post_id == post_id)
            .order_by(post_metrics.c.observed_at, post_metrics.c.id)
        ).all()
    return PostPage(
        id=row.id,
        source_key=row.source_key,
        organisation=row.organisation,
        platform=row.platform,
        channel=row.channel,
        kind=row.kind,
        url=row.url,
        author=row.author,
        published_at=row.published_at,
        first_seen_at=row.first_seen_at,
        title=row.title,
        text=row.text,
        html=row.html,
        language=row.language,
        tags=[str(tag) for tag in row.tags or ()],
        links=[str(link) for link in row.links or ()],
        media=[item for item in row.media or () if isinstance(item, dict)],
        deleted_at=row.deleted_at,
        erased_at=row.erased_at,
        revisions=_revisions(versions, row),
        metrics=_thin([_point(point) for point in counted], MAX_CURVE_POINTS),
    )


def _revisions(versions: Sequence[Any], current: Any) -> list[Revision]:
    """Each earlier version with what the version after it changed."""
    revisions = []
    for index, version in enumerate(versions):
        after = versions[index + 1] if index + 1 < len(versions) else current
        changes = tuple(
            name
            for name, column in (("title", "title"), ("text", "text"), ("link", "url"))
            if getattr(version, column) != getattr(after, column)
        ) or ("other",)
        revisions.append(
            Revision(version.superseded_at, version.title, version.text, version.url, changes)
        )
    return revisions


def _point(row: Any) -> MetricPoint:
    counts = {name: getattr(row, name) for name in METRIC_NAMES}
    return MetricPoint(row.observed_at, counts, int(row.engagement or 0))


def _thin(points: list[MetricPoint], limit: int) -> list[MetricPoint]:
    """At most `limit` points, evenly chosen, the first and the latest always kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(index * step)] for index in range(limit)]


def find_source(engine: Engine, key: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.select(sources).where(sources.c.key == key)).first()


def list_runs(engine: Engine, source_id: int, limit: int = 50) -> list[Run]:
    query = (
        sa.select(collection_runs)
        .where(collection_runs.c.source_id == source_id)
        .order_by(collection_runs.c.started_at.desc(), collection_runs.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [
            Run(
                row.started_at,
                row.finished_at,
                row.status,
                row.http_status,
                row.posts_new,
                row.posts_updated,
                row.posts_unchanged,
                row.bytes_received,
                row.error,
            )
            for row in connection.execute(query)
        ]


def list_digest_rows(engine: Engine, limit: int = 500) -> list[DigestRow]:
    """The archive, newest week first, without the messages themselves."""
    query = (
        sa.select(
            digests.c.id,
            digests.c.recipient,
            digests.c.week,
            digests.c.status,
            digests.c.subject,
            digests.c.sent_at,
        )
        .order_by(digests.c.week.desc(), digests.c.recipient)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [DigestRow(**row._mapping) for row in connection.execute(query)]
