"""Configured sources in the database: syncing them from config, choosing what to collect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collectors.base import SourceRef, SourceState
from monitor.config import Config, SourceConfig
from monitor.models import sources


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
                connection.execute(
                    sources.insert().values(
                        key=key, cursor={}, status="new", consecutive_failures=0,
                        next_check_at=now, created_at=now, updated_at=now, **values,
                    )
                )  # fmt: skip
                added.append(key)
                continue
            updates = {k: v for k, v in values.items() if row._mapping[k] != v}
            if "url" in updates:
                updates |= {"fetch_url": None, "etag": None, "last_modified": None}
            if "platform" in updates or "handle" in updates:
                updates |= {"cursor": {}}
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


def select_sources(
    engine: Engine,
    *,
    now: datetime,
    everything: bool = False,
    keys: Sequence[str] = (),
    platform: str | None = None,
) -> list[SourceRow]:
    """Active, enabled sources to collect: the named ones, all of them, or those due now.

    Retired sources are left out unless named: the publisher said they are gone.
    """
    query = sa.select(*[sources.c[name] for name in SourceRow.__dataclass_fields__]).where(
        sources.c.active.is_(True)
    )
    if keys:
        query = query.where(sources.c.key.in_(list(keys)))
    else:
        query = query.where(sources.c.enabled.is_(True), sources.c.status != "retired")
        if not everything:
            query = query.where(
                sa.or_(sources.c.next_check_at.is_(None), sources.c.next_check_at <= now)
            )
    if platform:
        query = query.where(sources.c.platform == platform)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(sources.c.key)).all()
    return [SourceRow(**row._mapping) for row in rows]
