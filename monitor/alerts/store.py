"""`alert_events`: the claims that send each alert once, and what became of each delivery.

As digests are (digest/archive.py), alerts are claimed by inserting their row: UNIQUE (rule,
event_key, channel) lets one inserter win, so several `omvarld run` workers on one PostgreSQL
database never send one alert twice. A failed delivery is claimed again by an UPDATE whose WHERE
repeats the condition (failed, attempts left, its time come), which again only one worker
matches. A row left `sending` by a process that died is taken up again after STALE_SENDING.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import chunks, insert_for
from monitor.models import alert_events

SENDING = "sending"
SENT = "sent"
FAILED = "failed"
ID_BATCH = 500  # ids per IN (…): under SQLite's bound-parameter limit
# A live sender is done with a message within its timeout; older `sending` rows were left.
STALE_SENDING = timedelta(minutes=30)


@dataclass(frozen=True)
class NewEvent:
    """An alert to claim for one channel."""

    rule: str
    kind: str
    event_key: str
    post_id: int | None
    channel: str
    item: str


@dataclass(frozen=True)
class Claimed:
    """An alert this process won the right to deliver."""

    id: int
    rule: str
    kind: str
    event_key: str
    channel: str
    item: str
    attempts: int


@dataclass(frozen=True)
class EventRecord:
    id: int
    rule: str
    kind: str
    event_key: str
    post_id: int | None
    channel: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None


_CLAIMED_COLUMNS = (
    alert_events.c.id,
    alert_events.c.rule,
    alert_events.c.kind,
    alert_events.c.event_key,
    alert_events.c.channel,
    alert_events.c.item,
    alert_events.c.attempts,
)


def claim_new(engine: Engine, events: Sequence[NewEvent], now: datetime) -> list[Claimed]:
    """Insert a row for each event not claimed before; the ones this call inserted."""
    if not events:
        return []
    rows = [
        {
            "rule": e.rule,
            "kind": e.kind,
            "event_key": e.event_key,
            "post_id": e.post_id,
            "channel": e.channel,
            "item": e.item,
            "status": SENDING,
            "attempts": 1,
            "created_at": now,
            "claimed_at": now,
        }
        for e in events
    ]
    with engine.begin() as connection:
        statement = (
            insert_for(connection)(alert_events)
            .on_conflict_do_nothing(index_elements=["rule", "event_key", "channel"])
            .returning(*_CLAIMED_COLUMNS)
        )
        return [Claimed(*row) for row in connection.execute(statement, rows)]


def claim_retries(
    engine: Engine,
    rules: Sequence[str],
    now: datetime,
    max_attempts: int,
    stale_after: timedelta = STALE_SENDING,
) -> list[Claimed]:
    """Claim the failed deliveries of configured rules whose next attempt is due, and those
    left `sending` by a process that died; each by one claimer only."""
    if not rules:
        return []
    with engine.begin() as connection:
        rows = connection.execute(
            alert_events.update()
            .where(
                alert_events.c.rule.in_(list(rules)),
                sa.or_(
                    sa.and_(
                        alert_events.c.status == FAILED,
                        alert_events.c.attempts < max_attempts,
                        alert_events.c.next_attempt_at <= now,
                    ),
                    sa.and_(
                        alert_events.c.status == SENDING,
                        alert_events.c.claimed_at < now - stale_after,
                    ),
                ),
            )
            .values(status=SENDING, claimed_at=now, attempts=alert_events.c.attempts + 1)
            .returning(*_CLAIMED_COLUMNS)
        ).all()
    return [Claimed(*row) for row in rows]


def mark_sent(engine: Engine, ids: Sequence[int], now: datetime) -> None:
    with engine.begin() as connection:
        for batch in chunks(list(ids), ID_BATCH):
            connection.execute(
                alert_events.update()
                .where(alert_events.c.id.in_(batch))
                .values(status=SENT, sent_at=now, last_error=None, next_attempt_at=None)
            )


def mark_failed(
    engine: Engine, ids: Sequence[int], error: str, next_attempt: datetime | None
) -> None:
    """Record a failed delivery; `next_attempt` None: no attempt is left."""
    with engine.begin() as connection:
        for batch in chunks(list(ids), ID_BATCH):
            connection.execute(
                alert_events.update()
                .where(alert_events.c.id.in_(batch))
                .values(status=FAILED, last_error=error, next_attempt_at=next_attempt)
            )


def list_events(engine: Engine, limit: int, rule: str | None = None) -> list[EventRecord]:
    """The newest events first."""
    query = sa.select(
        alert_events.c.id,
        alert_events.c.rule,
        alert_events.c.kind,
        alert_events.c.event_key,
        alert_events.c.post_id,
        alert_events.c.channel,
        alert_events.c.status,
        alert_events.c.attempts,
        alert_events.c.created_at,
        alert_events.c.sent_at,
        alert_events.c.next_attempt_at,
        alert_events.c.last_error,
    )
    if rule is not None:
        query = query.where(alert_events.c.rule == rule)
    query = query.order_by(alert_events.c.created_at.desc(), alert_events.c.id.desc()).limit(limit)
    with engine.connect() as connection:
        return [EventRecord(**row) for row in connection.execute(query).mappings()]


@dataclass(frozen=True)
class RuleTally:
    sent: int = 0
    failed: int = 0  # will be tried again
    given_up: int = 0  # failed with no attempt left
    sending: int = 0


def tally_events(engine: Engine, max_attempts: int) -> dict[str, RuleTally]:
    """Per rule, how its deliveries stand."""
    given_up = sa.and_(alert_events.c.status == FAILED, alert_events.c.attempts >= max_attempts)
    state = sa.case((given_up, "given_up"), else_=alert_events.c.status)
    query = sa.select(alert_events.c.rule, state.label("state"), sa.func.count()).group_by(
        alert_events.c.rule, state
    )
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for rule, name, number in connection.execute(query):
            counts.setdefault(rule, {})[name] = number
    return {rule: RuleTally(**found) for rule, found in counts.items()}
