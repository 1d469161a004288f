"""Configured sources in the database: syncing them from config, choosing what to collect."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.config import Config, SourceConfig
from monitor.db import SCHEMA_HEAD, begin_batch, insert_for
from monitor.models import meta, sources
from monitor.platforms import label_platform
from monitor.types import SourceRef, SourceState
from monitor.workers import find_gone


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


# The `meta` row holding the fingerprint of the sources the last sync wrote.
SYNC_META_KEY = "sources_sync"


def fingerprint_sources(config: Config) -> str:
    """A digest of everything `sync_sources` writes from the config: each source's key and
    values, in order, and the schema they are written into. Two configs with the same
    fingerprint leave the sources table the same, whatever else in them differs."""
    written = [
        SCHEMA_HEAD,
        *([source.stable_key, _config_values(config, source)] for source in config.sources),
    ]
    encoded = json.dumps(written, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def sync_sources(engine: Engine, config: Config, now: datetime) -> SyncReport:
    """Make the sources table say what the config says; write only what differs.

    A source removed from the config is marked inactive, its posts kept. A source whose key
    stays keeps its history when its handle or URL changes; a new URL forgets the old one's
    HTTP validators and redirect target.

    Nothing is read but one row when the config's sources are those the last sync wrote (their
    fingerprint is kept in `meta`): every command syncs, and comparing 2,000 sources row by row
    took a tenth of a second (issue 15). A change made to the sources table by hand is
    therefore undone only when the config's sources next change.
    """
    fingerprint = fingerprint_sources(config)
    added, changed, deactivated = [], [], []
    with begin_batch(engine) as connection:
        synced = connection.execute(
            sa.select(meta.c.value).where(meta.c.key == SYNC_META_KEY)
        ).scalar()
        if synced == fingerprint:
            return SyncReport()
        stored = {row.key: row for row in connection.execute(sa.select(sources))}
        new_rows: list[dict[str, Any]] = []
        for source in config.sources:
            key = source.stable_key
            values = _config_values(config, source)
            row = stored.get(key)
            if row is None:
                new_rows.append(
                    dict(
                        key=key, cursor={}, status="new", consecutive_failures=0,
                        next_check_at=now, created_at=now, updated_at=now, **values,
                    )
                )  # fmt: skip
                continue
            updates = {k: v for k, v in values.items() if row._mapping[k] != v}
            if "url" in updates:
                updates |= {"fetch_url": None, "etag": None, "last_modified": None}
            if "platform" in updates or "url" in updates:
                # Known again from the new address; a feed's posts may still name it later.
                updates["channel"] = label_platform(values["platform"], values["url"])
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
        if new_rows:
            # One statement for all, not one per source: a first sync of 2,000 sources is part
            # of the first collection (issue 15). Workers starting together all sync: the first
            # insert of a key wins, the rest skip it.
            statement = (
                insert_for(connection)(sources)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(sources.c.key)
            )
            inserted = {row.key for row in connection.execute(statement, new_rows)}
            added = [row["key"] for row in new_rows if row["key"] in inserted]
        configured = {s.stable_key for s in config.sources}
        for key, row in stored.items():
            if key not in configured and row.active:
                connection.execute(
                    sources.update()
                    .where(sources.c.id == row.id)
                    .values(active=False, updated_at=now)
                )
                deactivated.append(key)
        statement = insert_for(connection)(meta).values(
            key=SYNC_META_KEY, value=fingerprint, updated_at=now
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["key"], set_={"value": fingerprint, "updated_at": now}
            )
        )
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
        query = query.where(on_platforms([platform]))
    return query


def on_platforms(wanted: Sequence[str]) -> sa.ColumnElement[bool]:
    """Sources of these platforms as collected or as shown (`sources.platform` or
    `sources.channel`): "youtube" finds a YouTube channel's feed too, "feed" every feed. What
    every `--platform` means."""
    return sa.or_(sources.c.platform.in_(wanted), sources.c.channel.in_(wanted))


# In SourceRow's field order, so that a row becomes one positionally: by name (`**row._mapping`)
# took half of claiming 2,000 sources.
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
        return [SourceRow(*row) for row in connection.execute(query).all()]


def _free(now: datetime, gone: Sequence[str]) -> sa.ColumnElement[bool]:
    """Sources no live worker holds: never leased, lease run out, or held by a process on this
    host that is gone (a crash, a SIGKILL, a full disk that kept it from giving them back)."""
    free = sa.or_(sources.c.leased_until.is_(None), sources.c.leased_until < now)
    return sa.or_(free, sources.c.leased_by.in_(list(gone))) if gone else free


def _find_gone_holders(connection: Connection, now: datetime) -> list[str]:
    """Holders of unexpired leases that ran on this host and no longer do."""
    held = sa.select(sources.c.leased_by).where(sources.c.leased_until >= now).distinct()
    return find_gone([name for name in connection.execute(held).scalars() if name])


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
    stored, its holder is seen to be gone, or the lease runs out (a worker on another host that
    stopped renewing it), whichever comes first. Named sources are taken even from a live
    holder: someone asked for them; the holder's attempt is then not stored.
    """
    with begin_batch(engine) as connection:
        ids = _selection(now, everything, keys, platform)
        if not keys:
            ids = ids.where(_free(now, _find_gone_holders(connection, now)))
        ids = ids.order_by(sources.c.next_check_at, sources.c.id).limit(limit)
        if engine.dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        statement = (
            sources.update()
            .where(sources.c.id.in_(ids.scalar_subquery()))
            .values(leased_until=now + lease, leased_by=worker)
            .returning(*_ROW_COLUMNS)
        )
        rows = [SourceRow(*row) for row in connection.execute(statement).all()]
    return sorted(rows, key=lambda row: row.key)


@dataclass(frozen=True)
class LeaseHolder:
    """A live worker holding some of the sources a collection wanted."""

    worker: str
    sources: int
    until: datetime  # its latest lease: renewed while it works


def find_lease_holders(
    engine: Engine,
    *,
    now: datetime,
    worker: str,
    everything: bool = False,
    keys: Sequence[str] = (),
    platform: str | None = None,
) -> list[LeaseHolder]:
    """Other live workers holding sources of this selection, most sources first."""
    query = (
        sa.select(sources.c.leased_by, sa.func.count(), sa.func.max(sources.c.leased_until))
        .where(
            sources.c.id.in_(_selection(now, everything, keys, platform)),
            sources.c.leased_until >= now,
            sources.c.leased_by != worker,
        )
        .group_by(sources.c.leased_by)
    )
    with engine.connect() as connection:
        held = connection.execute(query).all()
        gone = set(find_gone([name for name, _, _ in held]))
    holders = [LeaseHolder(name, count, until) for name, count, until in held]
    return sorted(
        (h for h in holders if h.worker not in gone), key=lambda h: (-h.sources, h.worker)
    )


@dataclass(frozen=True)
class NextDue:
    """When the next of the sources a collection could take is due."""

    sources: int  # collectable sources (active, enabled, not retired)
    key: str | None = None
    at: datetime | None = None


def find_next_due(engine: Engine, *, now: datetime, platform: str | None = None) -> NextDue:
    """The source due next among those a collection would take, and how many there are."""
    selection = _selection(now, True, (), platform)
    with engine.connect() as connection:
        total = connection.execute(
            sa.select(sa.func.count()).where(sources.c.id.in_(selection))
        ).scalar_one()
        first = connection.execute(
            sa.select(sources.c.key, sources.c.next_check_at)
            .where(sources.c.id.in_(selection), sources.c.next_check_at.is_not(None))
            .order_by(sources.c.next_check_at, sources.c.key)
            .limit(1)
        ).first()
    if first is None:
        return NextDue(total)
    return NextDue(total, first.key, first.next_check_at)


def count_due_sources(engine: Engine, now: datetime) -> int:
    """How many sources are due and not held by a live worker: what the service still has to
    do."""
    with engine.connect() as connection:
        free = _free(now, _find_gone_holders(connection, now))
        query = (
            sa.select(sa.func.count())
            .select_from(sources)
            .where(sources.c.id.in_(_selection(now, False, (), None)), free)
        )
        return int(connection.execute(query).scalar_one())


def find_unknown_source_keys(engine: Engine, keys: Sequence[str]) -> list[str]:
    """The keys, of those given, that no stored source has (active or not: a source no longer
    configured keeps its posts), so that a mistyped key fails instead of matching nothing."""
    if not keys:
        return []
    with engine.connect() as connection:
        known = set(connection.scalars(sa.select(sources.c.key).where(sources.c.key.in_(keys))))
    return [k for k in keys if k not in known]


def list_source_groups(engine: Engine) -> list[str]:
    """Every group a stored source is in (active or not), sorted: what a group filter can
    match."""
    with engine.connect() as connection:
        lists = connection.scalars(sa.select(sources.c.groups))
        return sorted({group for groups in lists for group in groups or ()})


# ---------------------------------------------------------------------- leases without an attempt


def mark_skipped(
    engine: Engine, source_id: int, reason: str, now: datetime, interval: timedelta
) -> None:
    """Note why a source was not attempted, without counting it as a failure."""
    with engine.begin() as connection:
        connection.execute(
            sources.update()
            .where(sources.c.id == source_id)
            .values(
                status="skipped",
                last_error=reason,
                last_error_at=now,
                updated_at=now,
                next_check_at=now + interval,
                leased_until=None,
                leased_by=None,
            )
        )


def renew_leases(engine: Engine, worker: str, until: datetime) -> int:
    """Extend every lease this worker holds (its heartbeat); how many it holds."""
    with engine.begin() as connection:
        return connection.execute(
            sources.update()
            .where(sources.c.leased_by == worker, sources.c.leased_until.is_not(None))
            .values(leased_until=until)
        ).rowcount


def release_leases(engine: Engine, source_ids: Sequence[int], worker: str) -> None:
    """Give sources back without an attempt (a worker stopping), still due as they were."""
    if not source_ids:
        return
    with engine.begin() as connection:
        connection.execute(
            sources.update()
            .where(sources.c.id.in_(list(source_ids)), sources.c.leased_by == worker)
            .values(leased_until=None, leased_by=None)
        )
