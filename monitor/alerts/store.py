"""`alert_events`: the claims that send each alert once, and what became of each delivery.

As digests are (digest/archive.py), alerts are claimed by inserting their row: UNIQUE (rule,
event_key, channel) lets one inserter win, so several `omvarld run` workers on one PostgreSQL
database never send one alert twice. A failed delivery is claimed again by an UPDATE whose WHERE
repeats the condition (failed, attempts left, its time come), which again only one worker
matches. A row left `sending` by a process that died is taken up again after STALE_SENDING.

`alert_passes` holds the passes whose alerts are not claimed yet: a crash between storing a
pass's posts and claiming their alerts leaves its row, and a later round looks at the posts
first seen since then (`find_abandoned_passes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.db import chunks, insert_for
from monitor.models import alert_events, alert_passes, posts, sources
from monitor.workers import Worker, find_gone

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
    item: str  # a spike's or silence's lines; "" for a post's (written from it when sent)


@dataclass(frozen=True)
class Claimed:
    """An alert this process won the right to deliver."""

    id: int
    rule: str
    kind: str
    event_key: str
    post_id: int | None
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
    alert_events.c.post_id,
    alert_events.c.channel,
    alert_events.c.item,
    alert_events.c.attempts,
)


def claim_new(
    engine: Engine, events: Sequence[NewEvent], now: datetime, finished: Sequence[int] = ()
) -> list[Claimed]:
    """Insert a row for each event not claimed before; the ones this call inserted. The
    `alert_passes` rows `finished` are deleted in the same transaction: from then on their
    alerts are in `alert_events`, and not before."""
    if not events and not finished:
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
    claimed = []
    with engine.begin() as connection:
        if rows:
            # One statement for them all: SQLAlchemy sends it as multi-row INSERTs
            # ("insertmanyvalues"), a thousand rows or the parameter limit at a time.
            statement = (
                insert_for(connection)(alert_events)
                .on_conflict_do_nothing(index_elements=["rule", "event_key", "channel"])
                .returning(*_CLAIMED_COLUMNS)
            )
            claimed = [Claimed(*row) for row in connection.execute(statement, rows)]
        for batch in chunks(list(finished), ID_BATCH):
            connection.execute(alert_passes.delete().where(alert_passes.c.id.in_(batch)))
    return claimed


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
            .where(_due_again(rules, now, max_attempts, stale_after))
            .values(status=SENDING, claimed_at=now, attempts=alert_events.c.attempts + 1)
            .returning(*_CLAIMED_COLUMNS)
        ).all()
    return [Claimed(*row) for row in rows]


def has_retries(
    engine: Engine,
    rules: Sequence[str],
    now: datetime,
    max_attempts: int,
    stale_after: timedelta = STALE_SENDING,
) -> bool:
    """Whether `claim_retries` would claim anything now (without claiming it)."""
    if not rules:
        return False
    with engine.connect() as connection:
        query = sa.select(alert_events.c.id).where(
            _due_again(rules, now, max_attempts, stale_after)
        )
        return connection.execute(query.limit(1)).first() is not None


def _due_again(
    rules: Sequence[str], now: datetime, max_attempts: int, stale_after: timedelta
) -> sa.ColumnElement[bool]:
    """Deliveries of these rules to try again now: failed ones whose next attempt is due, and
    those left `sending` by a process that died."""
    return sa.and_(
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


def fail_unfinished(
    engine: Engine, claimed_at: datetime, error: str, next_attempt: datetime, max_attempts: int
) -> int:
    """Record as failed the alerts a round claimed at `claimed_at` and left `sending` (its
    process died or hung); tried again from `next_attempt` while attempts are left. How many
    messages they were (one per rule and channel)."""
    with engine.begin() as connection:
        rows = connection.execute(
            alert_events.update()
            .where(alert_events.c.status == SENDING, alert_events.c.claimed_at == claimed_at)
            .values(
                status=FAILED,
                last_error=error,
                next_attempt_at=sa.case(
                    (alert_events.c.attempts < max_attempts, next_attempt), else_=None
                ),
            )
            .returning(alert_events.c.rule, alert_events.c.channel)
        ).all()
    return len(set(rows))


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


@dataclass(frozen=True)
class PassRecord:
    """A pass whose alerts were not claimed yet."""

    id: int
    worker: str
    started_at: datetime


def newest_post_id(engine: Engine) -> int:
    """The id of the newest stored post (0 when there is none): a pass that begins now stores
    posts with greater ids, but for those a concurrent writer took ids for before."""
    with engine.connect() as connection:
        return _newest_post_id(connection)


def _newest_post_id(connection: Connection) -> int:
    return int(connection.execute(sa.select(sa.func.max(posts.c.id))).scalar() or 0)


@dataclass(frozen=True)
class OpenedPass:
    id: int  # its `alert_passes` row
    after_id: int  # the newest post's id when it began (`newest_post_id`)


def open_pass(engine: Engine, worker: str, started_at: datetime) -> OpenedPass:
    """Record a pass that starts now, before it stores any post, and read where its posts'
    ids will begin, in one transaction."""
    with engine.begin() as connection:
        after_id = _newest_post_id(connection)
        pass_id = connection.execute(
            alert_passes.insert()
            .values(worker=worker, started_at=started_at)
            .returning(alert_passes.c.id)
        ).scalar_one()
    return OpenedPass(int(pass_id), after_id)


def find_abandoned_passes(
    engine: Engine, worker: str, now: datetime, lease: timedelta
) -> list[PassRecord]:
    """The unclaimed passes a round of `worker` takes over (see `pick_abandoned`), oldest
    first."""
    with engine.connect() as connection:
        records = [
            PassRecord(*row)
            for row in connection.execute(
                sa.select(alert_passes.c.id, alert_passes.c.worker, alert_passes.c.started_at)
            )
        ]
        others = sorted({r.worker for r in records if r.worker != worker})
        if not others:
            return pick_abandoned(records, worker, set(), set(), now, lease)
        elsewhere = {name for name in others if not _is_local(name)}
        leasing: set[str] = set()
        if elsewhere:
            leasing = set(
                connection.execute(
                    sa.select(sources.c.leased_by)
                    .where(sources.c.leased_until > now, sources.c.leased_by.in_(elsewhere))
                    .distinct()
                ).scalars()
            )
    return pick_abandoned(records, worker, set(find_gone(others)), elsewhere - leasing, now, lease)


def _is_local(name: str) -> bool:
    parsed = Worker.parse(name)
    return parsed is not None and parsed.is_local


def pick_abandoned(
    records: Sequence[PassRecord],
    worker: str,
    gone: set[str],
    idle_elsewhere: set[str],
    now: datetime,
    lease: timedelta,
) -> list[PassRecord]:
    """Which unclaimed passes a round of `worker` takes over: its own (an earlier round of
    this process failed), those of processes on this host that are gone, and those of workers
    on other hosts (`idle_elsewhere`: they hold no lease) older than a lease, as a live worker
    renews its leases while its pass runs.

    Taking over a live worker's pass costs work, not correctness: both rounds read its posts,
    and the claims still let each alert go once."""
    return sorted(
        (
            r
            for r in records
            if r.worker == worker
            or r.worker in gone
            or (r.worker in idle_elsewhere and r.started_at < now - lease)
        ),
        key=lambda r: (r.started_at, r.id),
    )
