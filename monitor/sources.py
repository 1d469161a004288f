"""Configured sources in the database: syncing them from config, choosing what to collect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collectors.base import SourceRef, SourceState
from monitor.config import Config, SourceConfig
from monitor.models import sources
from monitor.store import insert_for as _insert_for


@dataclass(frozen=True)
class SyncReport:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deactivated: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceRow:
    """A source as stored, with what collecting it needs."""

    id: int
    key: str
    platform: str
    organisation: str
    name: str | None
    url: str | None
    fetch_url: str | None
    handle: str | None
    platform_id: str | None
    api_url: str | None
    interval_s: int | None
    status: str
    etag: str | None
    last_modified: str | None
    cursor: dict[str, Any]
    next_check_at: datetime | None

    def to_ref(self) -> SourceRef:
        return SourceRef(
            id=self.id,
            key=self.key,
            platform=self.platform,
            organisation=self.organisation,
            url=self.fetch_url or self.url,
            handle=self.handle,
            platform_id=self.platform_id,
            api_url=self.api_url,
        )

    def to_state(self) -> SourceState:
        return SourceState(
            etag=self.etag, last_modified=self.last_modified, cursor=dict(self.cursor or {})
        )


def _config_values(config: Config, source: SourceConfig) -> dict[str, Any]:
    return {
        "platform": source.platform,
        "name": source.name,
        "handle": source.handle,
        "url": source.url,
        "organisation": source.organisation,
        "groups": list(source.groups),
        "api_url": config.api_url(source),
        "interval_s": source.interval,
        "enabled": source.enabled,
        "active": True,
    }


def sync_sources(engine: Engine, config: Config, now: datetime) -> SyncReport:
    """Make the sources table say what the config says; write only what differs.

    A source removed from the config is marked inactive, its posts kept. A source whose key
    stays keeps its history when its handle or URL changes; a new URL forgets the old one's
    HTTP validators and redirect target.
    """
    added, changed, deactivated = [], [], []
    with engine.begin() as connection:
        stored = {row.key: row for row in connection.execute(sa.select(sources))}
        for source in config.sources:
            key = source.stable_key
            values = _config_values(config, source)
            row = stored.get(key)
            if row is None:
                # Workers starting together all sync: the first insert wins, the rest skip.
                inserted = connection.execute(
                    _insert_for(connection)(sources)
                    .values(
                        key=key, cursor={}, status="new", consecutive_failures=0,
                        next_check_at=now, created_at=now, updated_at=now, **values,
                    )
                    .on_conflict_do_nothing(index_elements=["key"])
                )  # fmt: skip
                if inserted.rowcount:
                    added.append(key)
                continue
            updates = {k: v for k, v in values.items() if row._mapping[k] != v}
            if "url" in updates:
                updates |= {"fetch_url": None, "etag": None, "last_modified": None}
            if "platform" in updates or "handle" in updates:
                # Resolved again: a renamed account resolves to the id it had, and its history
                # continues; a handle now naming another account gets that account's id.
                updates |= {"cursor": {}, "platform_id": None}
            if row.status == "retired" and ("url" in updates or "handle" in updates):
                updates |= {"status": "new", "retired_at": None, "next_check_at": now}
            if updates:
                connection.execute(
                    sources.update().where(sources.c.id == row.id).values(updated_at=now, **updates)
                )
                changed.append(key)
        configured = {s.stable_key for s in config.sources}
        for key, row in stored.items():
            if key not in configured and row.active:
                connection.execute(
                    sources.update()
                    .where(sources.c.id == row.id)
                    .values(active=False, updated_at=now)
                )
                deactivated.append(key)
    return SyncReport(tuple(added), tuple(changed), tuple(deactivated))


def _selection(
    now: datetime, everything: bool, keys: Sequence[str], platform: str | None
) -> sa.Select[Any]:
    """Active, enabled sources to collect: the named ones, all of them, or those due now.

    Retired sources are left out unless named: the publisher said they are gone.
    """
    query = sa.select(sources.c.id).where(sources.c.active.is_(True))
    if keys:
        query = query.where(sources.c.key.in_(list(keys)))
    else:
        query = query.where(sources.c.enabled.is_(True), sources.c.status != "retired")
        if not everything:
            query = query.where(sources.c.next_check_at <= now)
    if platform:
        query = query.where(sources.c.platform == platform)
    return query


_ROW_COLUMNS = [sources.c[name] for name in SourceRow.__dataclass_fields__]


def select_sources(
    engine: Engine,
    *,
    now: datetime,
    everything: bool = False,
    keys: Sequence[str] = (),
    platform: str | None = None,
) -> list[SourceRow]:
    """The sources a collection would take now, without claiming them."""
    ids = _selection(now, everything, keys, platform)
    query = sa.select(*_ROW_COLUMNS).where(sources.c.id.in_(ids)).order_by(sources.c.key)
    with engine.connect() as connection:
        return [SourceRow(**row._mapping) for row in connection.execute(query)]


def claim_sources(
    engine: Engine,
    *,
    now: datetime,
    worker: str,
    lease: timedelta,
    limit: int | None = None,
    everything: bool = False,
    keys: Sequence[str] = (),
    platform: str | None = None,
) -> list[SourceRow]:
    """Lease sources to this worker: those due (most overdue first), all, or the named ones.

    One statement. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets any number of workers claim at
    once without waiting for or doubling each other; a source stays leased until the attempt is
    stored or the lease runs out (a worker that died), whichever comes first.
    """
    ids = (
        _selection(now, everything, keys, platform)
        .where(sa.or_(sources.c.leased_until.is_(None), sources.c.leased_until < now))
        .order_by(sources.c.next_check_at, sources.c.id)
        .limit(limit)
    )
    if engine.dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    statement = (
        sources.update()
        .where(sources.c.id.in_(ids.scalar_subquery()))
        .values(leased_until=now + lease, leased_by=worker)
        .returning(*_ROW_COLUMNS)
    )
    with engine.begin() as connection:
        rows = [SourceRow(**row._mapping) for row in connection.execute(statement)]
    return sorted(rows, key=lambda row: row.key)


def count_due_sources(engine: Engine, now: datetime) -> int:
    """How many sources are due and not leased: what the service still has to do."""
    query = (
        sa.select(sa.func.count())
        .select_from(sources)
        .where(
            sources.c.id.in_(_selection(now, False, (), None)),
            sa.or_(sources.c.leased_until.is_(None), sources.c.leased_until < now),
        )
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())
