"""Writing what collectors found: bulk, idempotent, one transaction per source attempt.

An unchanged post writes nothing. A changed post first copies its stored version into
`post_revisions`. Counts append to `post_metrics` only when one of them moved, and so do an
account's own counts to `source_metrics`. The store never does HTTP; it is handed plain
`CollectResult`s.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import operator
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.db import begin_batch, first_line, insert_for
from monitor.models import (
    REVISION_COLUMNS,
    api_usage,
    collection_runs,
    post_metrics,
    post_revisions,
    posts,
    source_metrics,
    sources,
)
from monitor.platforms import label_platform
from monitor.rows import (
    ADDED_COLUMNS,
    POST_ROW_COLUMNS,
    PreparedPost,
    added_values,
    clean_text,
    keep_web_addresses,
    post_row,
    prepared_for,
)
from monitor.schedule import RHYTHM_SAMPLE, SchedulePolicy, find_rhythm, plan_next_check
from monitor.stems import given_stems
from monitor.types import (
    METRIC_NAMES,
    AccountCounts,
    CollectResult,
    CollectStatus,
    PostData,
    SourceState,
    UnchangedPost,
)

log = logging.getLogger(__name__)

# Posts written together (`ingest_many`): the SELECT of their ids binds about as many values,
# and a source id for each source among them, well under SQLite's limit (SQLITE_VARIABLES).
BATCH_SIZE = 500
# Rows per multi-row INSERT on SQLite (`_insert_values`): a few hundred kilobytes of posts.
ROWS_PER_STATEMENT = 64
# Rows per INSERT into the search index: a batch's in one to three statements. A statement
# of many rows opens a savepoint, and SQLite's FTS5 (3.40) writes out the terms it holds in
# memory at every savepoint: each 64 rows became a segment of the index of their own, to be
# merged again later. With 1,024, SQLite built a cold pass's index with 15 % less CPU (issue
# 15). Its rows are small (a post's stems, about 1 KB): the statements kept prepared stay small.
SEARCH_ROWS_PER_STATEMENT = 1024
# Bound values per SQLite statement: under its limit (32,766 since SQLite 3.32, 999 before).
SQLITE_VARIABLES = 30_000 if sqlite3.sqlite_version_info >= (3, 32) else 990


@dataclass(frozen=True)
class IngestCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    metrics: int = 0
    # Posts a collector sent as unchanged that the database does not hold as it remembered.
    contradicted: int = 0

    def __add__(self, other: IngestCounts) -> IngestCounts:
        names = (field.name for field in dataclasses.fields(self))
        return IngestCounts(**{name: getattr(self, name) + getattr(other, name) for name in names})


@dataclass(frozen=True)
class AttemptRecord:
    """What storing one attempt did: the counts, and the status after storage."""

    status: CollectStatus
    counts: IngestCounts
    error: str | None
    # False when not even the failure could be written (a full disk): the source's row, lease
    # included, is as it was.
    stored: bool = True


@dataclass(frozen=True)
class Attempt:
    """Who made an attempt at a source, and when; what the store needs besides the result."""

    source_id: int
    started_at: datetime
    finished_at: datetime
    policy: SchedulePolicy
    worker: str | None = None  # the lease holder; None for a manual, unleased collection
    jitter: float = 0.0  # a random number in [-1, 1] for the schedule
    # Posts published before this are not stored: retention deletes them ([retention]
    # posts_after_days), and an old feed item must not come back with the next collection.
    published_since: datetime | None = None


LEASE_LOST = "not stored: another worker took this source over (lease expired)"


def record_attempts(
    engine: Engine, items: Sequence[tuple[Attempt, CollectResult]]
) -> list[AttemptRecord]:
    """Store attempts: their posts, each source's new state and health, and collection runs.

    Several attempts share one transaction, because a commit per source would cost more than
    the source's rows. If that transaction fails, each attempt is stored again on its own, so a
    bad source costs only itself and never leaves partial rows. An attempt whose worker no longer
    holds the source's lease stores nothing, so no slot is collected twice. When not even the
    failure can be written (a full disk), the record says so (`stored` is False) instead of
    raising: every attempt gets its record.
    """
    if not items:
        return []
    try:
        with begin_batch(engine) as connection:
            return _record(connection, items)
    except sa.exc.SQLAlchemyError as error:
        if len(items) > 1:
            return [record_attempt(engine, attempt, result) for attempt, result in items]
        ((attempt, result),) = items
        # One line: the summary names the source and the error; -v adds this to the log.
        log.info("storing source %s failed: %s", attempt.source_id, first_line(error))
        message = f"could not store posts: {first_line(error)}"
        failed = dataclasses.replace(result, status=CollectStatus.FAILED, posts=(), error=message)
        try:
            with begin_batch(engine) as connection:
                return _record(connection, [(attempt, failed)])
        except sa.exc.SQLAlchemyError as again:
            log.info(
                "recording source %s's failure failed: %s", attempt.source_id, first_line(again)
            )
            return [AttemptRecord(CollectStatus.FAILED, IngestCounts(), message, stored=False)]


def record_attempt(engine: Engine, attempt: Attempt, result: CollectResult) -> AttemptRecord:
    """Store one attempt; see `record_attempts`."""
    (record,) = record_attempts(engine, [(attempt, result)])
    return record


def _record(
    connection: Connection, items: Sequence[tuple[Attempt, CollectResult]]
) -> list[AttemptRecord]:
    query = sa.select(
        sources.c.id,
        sources.c.consecutive_failures,
        sources.c.failing_since,
        sources.c.interval_s,
        sources.c.rhythm_s,
        sources.c.leased_by,
        sources.c.channel,
        sources.c.etag,
        sources.c.last_modified,
        sources.c.cursor,
    ).where(sources.c.id.in_([attempt.source_id for attempt, _ in items]))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    current = {row.id: row for row in connection.execute(query)}

    records: dict[int, AttemptRecord] = {}  # by the attempt's position in `items`
    held: list[tuple[int, Attempt, CollectResult]] = []
    for position, (attempt, result) in enumerate(items):
        row = current.get(attempt.source_id)
        if row is None or (attempt.worker is not None and row.leased_by != attempt.worker):
            records[position] = AttemptRecord(CollectStatus.FAILED, IngestCounts(), LEASE_LOST)
        else:
            held.append((position, attempt, result))
    ingests = [
        Ingest(a.source_id, r.posts, a.finished_at, a.published_since, r.prepared, r.unchanged)
        for _, a, r in held
    ]
    kept: list[tuple[Attempt, CollectResult, IngestCounts]] = []
    for (position, attempt, result), counts in zip(
        held, ingest_many(connection, ingests), strict=True
    ):
        if counts.contradicted:
            # The collector's memory of the source is not what the database holds (posts
            # deleted or edited by hand, retention made longer): its state is dropped, so that
            # the next attempt reads the whole source again and stores what is missing.
            log.info(
                "source %s: %d posts not stored as its collector remembers; read in full next",
                attempt.source_id,
                counts.contradicted,
            )
            result = dataclasses.replace(result, state=SourceState())
        kept.append((attempt, result, counts))
        records[position] = AttemptRecord(result.status, counts, result.error)

    # A rhythm changes only when posts do: it is recomputed then, and read from the row else.
    rhythm_ids = [
        a.source_id
        for a, r, c in kept
        if _succeeded(r.status) and (c.new or c.updated or current[a.source_id].rhythm_s is None)
    ]
    recent = _recent_post_times(connection, rhythm_ids)
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for attempt, result, _ in kept:
        values = _source_values(attempt, result, current[attempt.source_id], recent)
        by_shape.setdefault(tuple(sorted(values)), []).append(values)
    for shape, rows in by_shape.items():
        statement = (
            sources.update()
            .where(sources.c.id == sa.bindparam("b_id"))
            .values({name: sa.bindparam(f"b_{name}") for name in shape if name != "id"})
        )
        connection.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
    if kept:
        connection.execute(collection_runs.insert(), [_run_row(a, r, c) for a, r, c in kept])
    for attempt, result, _ in kept:
        if result.deleted:
            _mark_deleted(connection, attempt.source_id, result.deleted, attempt.finished_at)
    _add_api_usage(connection, [(a, r) for a, r, _ in kept if r.api_units])
    append_source_metrics(
        connection,
        [(a.source_id, r.account, a.finished_at) for a, r, _ in kept if r.account is not None],
    )
    return [records[position] for position in range(len(items))]


ACCOUNT_COUNT_NAMES = ("followers", "views", "posts")


def append_source_metrics(
    connection: Connection,
    observed: Sequence[tuple[int, AccountCounts, datetime]],
) -> int:
    """Append each source's account counts to `source_metrics` when one of them differs from
    the source's latest row (or it has none); the number of rows written.

    A series of changes only: unchanged counts write nothing however many runs read them, so
    there is at most one row a day (the collectors read counts daily) unless a count moved. A
    count the platform stopped giving (a channel hiding its subscribers) is a change to NULL.
    Counts with no value at all write nothing.
    """
    wanted = {
        source_id: (counts, at) for source_id, counts, at in observed if not counts.is_empty()
    }
    if not wanted:
        return 0
    newest = (
        sa.select(sa.func.max(source_metrics.c.id))
        .where(source_metrics.c.source_id.in_(list(wanted)))
        .group_by(source_metrics.c.source_id)
    )
    latest = {
        row.source_id: tuple(row._mapping[name] for name in ACCOUNT_COUNT_NAMES)
        for row in connection.execute(
            sa.select(source_metrics).where(source_metrics.c.id.in_(newest))
        )
    }
    rows = []
    for source_id, (counts, at) in wanted.items():
        snapshot = (counts.followers, counts.views, counts.posts)
        if latest.get(source_id) != snapshot:
            values = dict(zip(ACCOUNT_COUNT_NAMES, snapshot, strict=True))
            rows.append({"source_id": source_id, "observed_at": at, **values})
    if rows:
        connection.execute(source_metrics.insert(), rows)
    return len(rows)


def _mark_deleted(
    connection: Connection, source_id: int, platform_post_ids: Sequence[str], now: datetime
) -> None:
    """The platform says these posts are gone: date their deletion, keep their content."""
    connection.execute(
        posts.update()
        .where(
            posts.c.source_id == source_id,
            posts.c.platform_post_id.in_(list(platform_post_ids)),
            posts.c.deleted_at.is_(None),
            posts.c.erased_at.is_(None),  # a tombstone stays as it was erased
        )
        .values(deleted_at=now)
    )


def _add_api_usage(connection: Connection, spent: Sequence[tuple[Attempt, CollectResult]]) -> None:
    totals: dict[tuple[str, date], int] = {}
    platforms = (
        dict(
            connection.execute(
                sa.select(sources.c.id, sources.c.platform).where(
                    sources.c.id.in_([a.source_id for a, _ in spent])
                )
            ).all()
        )
        if spent
        else {}
    )
    for attempt, result in spent:
        key = (platforms[attempt.source_id], attempt.finished_at.date())
        totals[key] = totals.get(key, 0) + result.api_units
    if not totals:
        return
    statement = insert_for(connection)(api_usage)
    statement = statement.on_conflict_do_update(
        index_elements=["platform", "day"],
        set_={"units": api_usage.c.units + statement.excluded.units},
    )
    connection.execute(
        statement,
        [{"platform": p, "day": d, "units": units} for (p, d), units in totals.items()],
    )


def _succeeded(status: CollectStatus) -> bool:
    return status in (CollectStatus.OK, CollectStatus.PARTIAL, CollectStatus.NOT_MODIFIED)


def ingest_posts(
    connection: Connection,
    source_id: int,
    items: Sequence[PostData],
    *,
    now: datetime,
    published_since: datetime | None = None,
    prepared: Sequence[PreparedPost] = (),
    unchanged: Sequence[UnchangedPost] = (),
) -> IngestCounts:
    """Upsert a source's posts in bulk (`ingest_many` with one `Ingest`)."""
    ingest = Ingest(source_id, items, now, published_since, prepared, unchanged)
    (counts,) = ingest_many(connection, [ingest])
    return counts


@dataclass(frozen=True)
class Ingest:
    """One source's posts as one attempt found them, to be stored at `now`.

    Posts published before `published_since` are left out (retention would delete them).
    `prepared` may hold the posts' row values, computed where they were parsed (monitor.rows);
    a post without is prepared by the store. `unchanged` are posts the collector left out as
    stored already: they are counted, and checked against the database
    (`IngestCounts.contradicted` says how many are not stored so).
    """

    source_id: int
    items: Sequence[PostData]
    now: datetime
    published_since: datetime | None = None
    prepared: Sequence[PreparedPost] = ()
    unchanged: Sequence[UnchangedPost] = ()


@dataclass(frozen=True)
class _Part:
    """Up to BATCH_SIZE posts of one `Ingest` (the `index`-th), written in one batch."""

    index: int
    source_id: int
    now: datetime
    posts: list[PreparedPost]
    confirm: Sequence[UnchangedPost]


def ingest_many(connection: Connection, ingests: Sequence[Ingest]) -> list[IngestCounts]:
    """Upsert the posts of several sources in bulk, their counts in the same order.

    The sources' posts are written together, per batch of about BATCH_SIZE posts: one SELECT,
    one INSERT of the new posts with their search index, one UPDATE of the edited ones, a few
    statements for revisions and counts. A collection stores many sources in one transaction,
    and a statement per source (a changed feed has a few new posts) cost more than its rows on
    the one database thread (issue 15). Erased posts are left as they are.
    """
    counts = [IngestCounts()] * len(ingests)
    for batch in _batches(ingests):
        for part, found in zip(batch, _ingest_batch(connection, batch), strict=True):
            counts[part.index] += found
    return counts


def _batches(ingests: Sequence[Ingest]) -> Iterator[list[_Part]]:
    """The ingests' posts in batches of about BATCH_SIZE, each source at most once a batch."""
    batch: list[_Part] = []
    size = 0
    in_batch: set[int] = set()  # source ids
    for index, ingest in enumerate(ingests):
        unique: dict[str, PostData] = {}
        for post in ingest.items:
            if not _too_old(post.published_at, ingest.published_since):
                # A feed listing an id twice: the first wins.
                unique.setdefault(post.platform_post_id, post)
        given = {id(p.post): p for p in ingest.prepared}
        ready = [prepared_for(keep_web_addresses(post), given) for post in unique.values()]
        # An old post retention has deleted is not missing: it would not be stored again.
        confirm = [
            p for p in ingest.unchanged if not _too_old(p.published_at, ingest.published_since)
        ]
        while ready or confirm:
            # At most BATCH_SIZE ids a part, posts first: statements stay under SQLite's limit.
            posts_part, ready = ready[:BATCH_SIZE], ready[BATCH_SIZE:]
            room = BATCH_SIZE - len(posts_part)
            confirm_part, confirm = confirm[:room], confirm[room:]
            part_size = len(posts_part) + len(confirm_part)
            if batch and (size + part_size > BATCH_SIZE or ingest.source_id in in_batch):
                yield batch
                batch, size, in_batch = [], 0, set()
            batch.append(_Part(index, ingest.source_id, ingest.now, posts_part, confirm_part))
            size += part_size
            in_batch.add(ingest.source_id)
    if batch:
        yield batch


def _too_old(published_at: datetime | None, published_since: datetime | None) -> bool:
    return bool(published_since and published_at and published_at < published_since)


def _ingest_batch(connection: Connection, batch: list[_Part]) -> list[IngestCounts]:
    wanted: list[sa.ColumnElement[bool]] = [
        sa.and_(
            posts.c.source_id == part.source_id,
            posts.c.platform_post_id.in_(
                [p.post.platform_post_id for p in part.posts]
                + [p.platform_post_id for p in part.confirm]
            ),
        )
        for part in batch
    ]
    # An OR of one term per source: SQLite looks each (source, id) up in the unique index,
    # where a row-value IN would scan it.
    stored = {
        (row.source_id, row.platform_post_id): row
        for row in connection.execute(
            sa.select(
                posts.c.id,
                posts.c.source_id,
                posts.c.platform_post_id,
                posts.c.content_hash,
                posts.c.erased_at,
            ).where(sa.or_(*wanted))
        ).all()
    }

    fresh: list[tuple[_Part, PreparedPost]] = []
    changed: list[tuple[_Part, int, PreparedPost]] = []
    ids: dict[tuple[int, str], int] = {}
    known: set[tuple[int, str]] = set()
    for part in batch:
        for prepared in part.posts:
            key = (part.source_id, prepared.post.platform_post_id)
            row = stored.get(key)
            if row is None:
                fresh.append((part, prepared))
                continue
            known.add(key)
            if row.erased_at is not None:
                # An erased post is a tombstone that stays one: seen again, it gets no update,
                # no revision and no counts (`omvarld erase`).
                continue
            ids[key] = row.id
            if row.content_hash != prepared.content_hash:
                changed.append((part, row.id, prepared))

    inserted: dict[tuple[int, str], int] = {}
    if fresh:
        inserted = _insert_posts(connection, fresh)
        ids |= inserted
    if changed:
        by_time: dict[datetime, list[int]] = {}
        for part, post_id, _ in changed:
            by_time.setdefault(part.now, []).append(post_id)
        for now, post_ids in by_time.items():
            _supersede(connection, post_ids, now)
        _overwrite(connection, [(post_id, p, part.now) for part, post_id, p in changed])
    metrics = _append_metrics(connection, batch, ids, known)

    edited = Counter(part.index for part, _, _ in changed)
    counts = []
    for part in batch:
        new = sum(1 for p in part.posts if (part.source_id, p.post.platform_post_id) in inserted)
        updated = edited[part.index]
        # A post sent as unchanged is contradicted when it is not stored, or stored otherwise;
        # an erased post stays a tombstone whatever its content was.
        contradicted = sum(
            1
            for p in part.confirm
            if (row := stored.get((part.source_id, p.platform_post_id))) is None
            or (row.erased_at is None and row.content_hash != p.content_hash)
        )
        counts.append(
            IngestCounts(
                new=new,
                updated=updated,
                unchanged=len(part.posts) - new - updated + len(part.confirm),
                metrics=metrics.get(part.index, 0),
                contradicted=contradicted,
            )
        )
    return counts


def _insert_posts(
    connection: Connection, fresh: list[tuple[_Part, PreparedPost]]
) -> dict[tuple[int, str], int]:
    """Insert new posts (a post stored meanwhile is left alone): the ids of the inserted ones
    by (source id, platform id).

    SQLite gets multi-row INSERTs of the prepared values (stored exactly as SQLAlchemy stores
    them: `_SQLitePostColumns`), then the batch's search index rows, from the stems computed
    with the posts (migration 0016): SQLAlchemy's multi-row INSERT … RETURNING cost as much
    Python as SQLite's own work on the one database thread of a collection, and the index
    trigger's two calls into Python a row waited for the GIL behind the fetching and parsing.
    """
    if connection.dialect.name != "sqlite":
        rows = [post_row(part.source_id, p, part.now) for part, p in fresh]
        # One compiled statement, many parameter sets: SQLAlchemy batches them into multi-row
        # INSERTs itself ("insertmanyvalues"), without compiling a statement per source.
        statement = (
            insert_for(connection)(posts)
            .on_conflict_do_nothing(index_elements=["source_id", "platform_post_id"])
            .returning(posts.c.id, posts.c.source_id, posts.c.platform_post_id)
        )
        return {
            (row.source_id, row.platform_post_id): row.id
            for row in connection.execute(statement, rows)
        }
    columns = _sqlite_post_columns(connection.dialect)
    # Each time as SQLite stores it, formatted once: an attempt's own time stands in three
    # columns of each of its posts.
    as_text: dict[datetime, str] = {}
    values = []
    for part, p in fresh:
        source_id, *times = added_values(part.source_id, p, part.now)
        texts = [as_text.get(t) or as_text.setdefault(t, columns.to_text(t)) for t in times]
        values.append((*columns.own(p.values), source_id, *texts))
    # Rows inserted now get ids above the largest so far (one writer: SQLite's write lock).
    largest = "SELECT max(id) FROM posts"
    before = connection.exec_driver_sql(largest).scalar() or 0
    connection.exec_driver_sql("INSERT INTO posts_search_paused VALUES (1)")
    inserted = _insert_values(
        connection,
        "posts",
        columns.names,
        values,
        " ON CONFLICT (source_id, platform_post_id) DO NOTHING",
    )
    connection.exec_driver_sql("DELETE FROM posts_search_paused")
    keys = [(part.source_id, p.post.platform_post_id) for part, p in fresh]
    if inserted == len(keys) and connection.exec_driver_sql(largest).scalar() == before + inserted:
        # Every row went in, and SQLite gave each the largest id so far plus one, in the order
        # of the VALUES: the ids are known without reading the rows back, which cost the one
        # database thread of a cold pass 4 ms a batch (issue 15).
        ids = dict(zip(keys, range(before + 1, before + 1 + inserted), strict=True))
    else:  # a row left out (the batch has no two of an id, so another writer's), or ids apart
        ids = _read_new_ids(connection, before)
    index_rows = [
        (ids[key], p.title_stems, p.text_stems)
        for key, (_, p) in zip(keys, fresh, strict=True)
        if key in ids and (p.values["title"] is not None or p.values["text"] is not None)
    ]
    _insert_values(
        connection,
        "posts_search",
        ("rowid", "title", "body"),
        index_rows,
        rows_per_statement=SEARCH_ROWS_PER_STATEMENT,
    )
    return ids


def _read_new_ids(connection: Connection, before: int) -> dict[tuple[int, str], int]:
    """The ids of the posts above `before` by (source id, platform id), read back."""
    # One row of JSON rather than a row per post: each row fetched is a step into SQLite that
    # gives the GIL away and waits to get it back behind the fetching and parsing threads.
    found = connection.exec_driver_sql(
        "SELECT json_group_array(json_array(id, source_id, platform_post_id)) FROM posts"
        " WHERE id > ?",
        (before,),
    ).scalar()
    return {
        (source_id, platform_id): post_id
        for post_id, source_id, platform_id in json.loads(found or "[]")
    }


def _insert_values(
    connection: Connection,
    table: str,
    names: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    suffix: str = "",
    *,
    rows_per_statement: int = ROWS_PER_STATEMENT,
) -> int:
    """INSERT rows on SQLite in multi-row statements: one step into SQLite (and one release of
    the GIL) for up to `rows_per_statement` rows, where executemany steps once a row. Returns
    how many rows went in (a row an ON CONFLICT `suffix` leaves out is not counted).

    Each statement has a power of two of rows (64 and 64 and 16 and 4 and 1 for 149), so only a
    handful of statement texts exist: Python's sqlite3 keeps the last 128 statements prepared,
    each holding copies of the values it was last bound to, and statements of every size up
    to a thousand rows of posts held hundreds of megabytes (issue 15).
    """
    fit = max(1, min(rows_per_statement, SQLITE_VARIABLES // len(names)))
    most = 1 << (fit.bit_length() - 1)  # the largest power of two that fits
    row = "(" + ", ".join("?" * len(names)) + ")"
    start = inserted = 0
    while start < len(values):
        size = min(most, 1 << ((len(values) - start).bit_length() - 1))
        chunk = values[start : start + size]
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([row] * size)}"
        result = connection.exec_driver_sql(
            sql + suffix, tuple(itertools.chain.from_iterable(chunk))
        )
        inserted += result.rowcount
        start += size
    return inserted


@dataclass(frozen=True)
class _SQLitePostColumns:
    """How a new posts row is written on SQLite: the post's own columns straight from its
    prepared values, then the four `added_values` gives.

    The values are bound as they are: `prepare_post` encodes the JSON columns itself, and the
    JSON type's bind processor passes encoded JSON through unchanged. Only the times need
    SQLite's text, with the DATETIME columns' own processor. A tuple per post from
    `operator.itemgetter`, in C, where running every column's processor cost the one database
    thread of a cold pass 23 µs a post (issue 15).
    """

    names: tuple[str, ...]
    own: Callable[[dict[str, Any]], tuple[Any, ...]]
    to_text: Callable[[datetime], str]


@functools.cache
def _sqlite_post_columns(dialect: Any) -> _SQLitePostColumns:
    own = sorted(POST_ROW_COLUMNS - set(ADDED_COLUMNS))
    to_text = posts.c.published_at.type._cached_bind_processor(dialect)
    assert to_text is not None  # UTCDateTime's, on SQLite
    return _SQLitePostColumns(
        names=(*own, *ADDED_COLUMNS), own=operator.itemgetter(*own), to_text=to_text
    )


def _stems_of(batch: Sequence[PreparedPost]) -> Iterator[tuple[str | None, str | None]]:
    for prepared in batch:
        yield prepared.values["title"], prepared.title_stems
        yield prepared.values["text"], prepared.text_stems


_UPDATED_COLUMNS = (
    "kind", "url", "author", "title", "text", "html", "language", "tags", "links", "mentions",
    "other_mentions", "media", "raw", "terms", "phrases",
    "content_hash", "fetched_at",
)  # fmt: skip


def _overwrite(connection: Connection, changed: list[tuple[int, PreparedPost, datetime]]) -> None:
    """Replace the stored content of changed posts, each as fetched at its time; first_seen_at
    stays, and so does the date of an undated entry."""
    values: dict[str, Any] = {name: sa.bindparam(f"b_{name}") for name in _UPDATED_COLUMNS}
    published = sa.bindparam("b_published_at", type_=posts.c.published_at.type)
    values["published_at"] = sa.func.coalesce(published, posts.c.published_at)
    parameters = []
    for post_id, prepared, now in changed:
        row = prepared.values | {"fetched_at": now}
        parameters.append(
            {f"b_{name}": row[name] for name in _UPDATED_COLUMNS}
            | {"b_id": post_id, "b_published_at": prepared.post.published_at}
        )
    statement = posts.update().where(posts.c.id == sa.bindparam("b_id")).values(values)
    with given_stems(_stems_of([prepared for _, prepared, _ in changed])):
        connection.execute(statement, parameters)


def _supersede(connection: Connection, post_ids: list[int], now: datetime) -> None:
    """Copy the stored versions of posts about to change into post_revisions, in the database."""
    columns = [posts.c[name] for name in REVISION_COLUMNS]
    source = sa.select(
        posts.c.id, sa.literal(now, type_=post_revisions.c.superseded_at.type), *columns
    ).where(posts.c.id.in_(post_ids))
    connection.execute(
        post_revisions.insert().from_select(["post_id", "superseded_at", *REVISION_COLUMNS], source)
    )


def _append_metrics(
    connection: Connection,
    batch: list[_Part],
    ids: dict[tuple[int, str], int],
    known: set[tuple[int, str]],
) -> dict[int, int]:
    """Append the counts of the batch's posts that moved since their latest row: how many
    rows each part (by its index) wrote."""
    counted = [
        (part, ids[key], prepared.post.metrics)
        for part in batch
        for prepared in part.posts
        if prepared.post.metrics
        and (key := (part.source_id, prepared.post.platform_post_id)) in ids
    ]
    if not counted:
        return {}
    known_ids = [ids[key] for key in known if key in ids]
    latest: dict[int, dict[str, int | None]] = {}
    if known_ids:
        newest = (
            sa.select(sa.func.max(post_metrics.c.id))
            .where(post_metrics.c.post_id.in_(known_ids))
            .group_by(post_metrics.c.post_id)
        )
        for row in connection.execute(sa.select(post_metrics).where(post_metrics.c.id.in_(newest))):
            latest[row.post_id] = {name: row._mapping[name] for name in METRIC_NAMES}
    rows = []
    written: dict[int, int] = {}
    for part, post_id, metrics in counted:
        snapshot: dict[str, int | None] = {name: (metrics or {}).get(name) for name in METRIC_NAMES}
        if latest.get(post_id) != snapshot:
            rows.append({"post_id": post_id, "observed_at": part.now, **snapshot})
            written[part.index] = written.get(part.index, 0) + 1
    if rows:
        connection.execute(post_metrics.insert(), rows)
    return written


def _source_values(
    attempt: Attempt, result: CollectResult, current: Any, recent: dict[int, list[datetime]]
) -> dict[str, Any]:
    """The source row's new values after an attempt: state, health and next check."""
    now = attempt.finished_at
    values: dict[str, Any] = {
        "id": attempt.source_id,
        "last_attempt_at": now,
        "updated_at": now,
        "leased_until": None,
        "leased_by": None,
    }
    if result.moved_to:
        values["fetch_url"] = result.moved_to
    if result.resolved_id:
        values["platform_id"] = result.resolved_id
    # Only from a whole read: the posts left out as unchanged would have had their say.
    if current.channel == "feed" and result.posts and not result.unchanged:
        channel = _channel_of_posts(result.posts)
        if channel != "feed":
            values["channel"] = channel
    if result.error:
        values |= {"last_error": clean_text(result.error), "last_error_at": now}
    if result.status is CollectStatus.RETIRED:
        return values | {"status": "retired", "retired_at": now, "next_check_at": None}

    succeeded = _succeeded(result.status)
    rhythm: timedelta | None
    if attempt.source_id in recent:
        rhythm = find_rhythm(recent[attempt.source_id], attempt.policy)
        values["rhythm_s"] = int(rhythm.total_seconds())
    else:
        rhythm = timedelta(seconds=current.rhythm_s) if current.rhythm_s else None
    failures = 0 if succeeded else current.consecutive_failures + 1
    failing_since = None if succeeded else (current.failing_since or now)
    plan = plan_next_check(
        now=now,
        policy=attempt.policy,
        succeeded=succeeded,
        consecutive_failures=failures,
        failing_since=failing_since,
        interval=timedelta(seconds=current.interval_s) if current.interval_s else None,
        rhythm=rhythm,
        retry_after=result.retry_after,
        fresh_until=result.fresh_until,
        resume_at=result.resume_at,
        jitter=attempt.jitter,
    )
    values |= {
        "status": plan.status,
        "consecutive_failures": failures,
        "failing_since": failing_since,
        "next_check_at": plan.next_check_at,
    }
    if succeeded:
        values["last_success_at"] = now
        # Only what changed: a feed answering 304 keeps its validators and cursor, and leaving
        # them out of its UPDATE spares binding them for every source of a warm pass.
        state = {
            "etag": result.state.etag,
            "last_modified": result.state.last_modified,
            "cursor": result.state.cursor,
        }
        values |= {name: value for name, value in state.items() if getattr(current, name) != value}
    return values


# Posts whose addresses decide a feed's platform: enough to tell a channel's feed from a news
# feed that links to one video, few enough to cost nothing per attempt.
CHANNEL_SAMPLE = 10


def _channel_of_posts(items: Sequence[PostData]) -> str:
    """The platform a feed whose address says nothing (a proxy, the demo's loopback server) is
    known by from its posts' addresses, when all of the first `CHANNEL_SAMPLE` agree (a
    YouTube channel's entries all link to youtube.com); else "feed".

    A news feed's first post already says "feed", so the look stops there: this runs for every
    feed answered with posts, on the database thread."""
    agreed: str | None = None
    for post in items[:CHANNEL_SAMPLE]:
        if not post.url:
            continue
        found = label_platform("feed", None, post.url)
        if found == "feed" or (agreed is not None and found != agreed):
            return "feed"
        agreed = found
    return agreed or "feed"


def _recent_post_times(connection: Connection, source_ids: list[int]) -> dict[int, list[datetime]]:
    """The newest posts' times of each source, for its rhythm: one query for all of them."""
    if not source_ids:
        return {}
    rank = (
        sa.func.row_number()
        .over(partition_by=posts.c.source_id, order_by=posts.c.published_at.desc())
        .label("rank")
    )
    ranked = (
        sa.select(posts.c.source_id, posts.c.published_at, rank)
        .where(posts.c.source_id.in_(source_ids))
        .subquery()
    )
    recent: dict[int, list[datetime]] = {}
    query = sa.select(ranked.c.source_id, ranked.c.published_at).where(
        ranked.c.rank <= RHYTHM_SAMPLE
    )
    for source_id, published_at in connection.execute(query):
        recent.setdefault(source_id, []).append(published_at)
    return recent


def _run_row(attempt: Attempt, result: CollectResult, counts: IngestCounts) -> dict[str, Any]:
    return {
        "source_id": attempt.source_id,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "status": result.status.value,
        "http_status": result.http_status,
        "posts_new": counts.new,
        "posts_updated": counts.updated,
        "posts_unchanged": counts.unchanged,
        "metrics_written": counts.metrics,
        "bytes_received": result.bytes_received,
        # A server's error text is as untrusted as a post: `status` prints it.
        "error": clean_text(result.error),
    }
