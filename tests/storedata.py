"""Posts stored through the real ingest path, for tests of what is done with stored posts
(retention, erasure, the kept latest engagement): a source row, a post, one collection attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import make_engine
from monitor.models import alert_events, sources
from monitor.schedule import SchedulePolicy
from monitor.store import Attempt, record_attempt
from monitor.types import CollectResult, CollectStatus, PostData, SourceState

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def add_source(engine: Engine, key: str = "feed:example.se/rss") -> int:
    with engine.begin() as connection:
        return connection.execute(
            sources.insert()
            .values(
                key=key, platform="feed", url=f"https://example.se/{key}", organisation="Exempel",
                groups=[], cursor={}, status="new", consecutive_failures=0, active=True,
                enabled=True, created_at=NOW, updated_at=NOW,
            )
            .returning(sources.c.id)
        ).scalar_one()  # fmt: skip


def post(number: int, published_at: datetime = NOW - DAY, **changes: Any) -> PostData:
    values: dict[str, Any] = {
        "platform_post_id": f"id-{number}",
        "kind": "article",
        "url": f"https://example.se/nyheter/{number}",
        "author": "Redaktionen",
        "published_at": published_at,
        "title": f"Nyhet {number}",
        "text": "Kommunen informerar.",
        "html": "<p>Kommunen informerar.</p>",
        "raw": {"guid": f"id-{number}"},
    }
    return PostData(**(values | changes))


def collect(
    engine: Engine,
    source_id: int,
    items: list[PostData],
    when: datetime = NOW,
    published_since: datetime | None = None,
) -> Any:
    result = CollectResult(CollectStatus.OK, posts=tuple(items), state=SourceState())
    attempt = Attempt(source_id, when, when, SchedulePolicy(), published_since=published_since)
    return record_attempt(engine, attempt, result)


def alert_events_of(database_url: str) -> list[sa.Row]:
    """Every row of alert_events, in the order they were claimed."""
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(alert_events).order_by(alert_events.c.id)).all()
    engine.dispose()
    return rows
