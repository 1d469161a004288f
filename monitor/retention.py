"""Retention and erasure: how long collected data is kept, and removing it on request.

What goes is decided by pure functions (`find_cutoffs`, `normalise_handle`); the functions that
write run set-based SQL (a statement per table and step, never a loop over rows) and record one
`audit_log` row per run. Erased posts stay as tombstones, so that the next collection recognises
them and leaves them alone (`monitor.store`); posts deleted by retention are kept out by their age.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from monitor.audit import record_audit
from monitor.config import RetentionConfig
from monitor.db import chunks, first_line
from monitor.models import SEARCH_TABLE, post_metrics, post_revisions, posts, sources

# An erased post's content hash: no real SHA-256 looks like it, so it can never match content.
ERASED_CONTENT_HASH = "erased"

# Ids per statement when erasing: well under SQLite's bound-parameter limit.
ERASE_BATCH = 500


# ------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Cutoffs:
    """Moments before which data goes, each a UTC midnight; None keeps that data."""

    posts: datetime | None = None  # posts published before: deleted with revisions and counts
    raw: datetime | None = None  # posts published before: raw payloads dropped
    metrics: datetime | None = None  # counts observed before: one row per post and UTC day kept

    @property
    def any(self) -> bool:
        return any(c is not None for c in (self.posts, self.raw, self.metrics))


def find_cutoffs(settings: RetentionConfig, now: datetime) -> Cutoffs:
    """Each setting's cutoff: the start of the UTC day `N` days before today (UTC).

    Whole days make the audit log's target exact ("posts published before 2025-11-30"), and keep
    every UTC day of counts on one side of the metrics cutoff, so thinning never splits a day. What
    goes is always older than N days; what stays is at most N + 1 days old.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def before(days: int | None) -> datetime | None:
        return None if days is None else today - timedelta(days=days)

    return Cutoffs(
        posts=before(settings.posts_after_days),
        raw=before(settings.raw_after_days),
        metrics=before(settings.metrics_daily_after_days),
    )


def describe_cutoffs(cutoffs: Cutoffs) -> str:
    """The audit log's target of a retention run."""
    parts = []
    if cutoffs.posts:
        parts.append(f"posts published before {cutoffs.posts:%Y-%m-%d}")
    if cutoffs.raw:
        parts.append(f"raw payloads of posts published before {cutoffs.raw:%Y-%m-%d}")
    if cutoffs.metrics:
        parts.append(f"counts observed before {cutoffs.metrics:%Y-%m-%d}, thinned to daily")
    return "; ".join(parts) or "nothing (no [retention] settings)"


def describe_settings(settings: RetentionConfig) -> str:
    """The audit log's reason of a retention run: the settings that decided it."""
    chosen = [
        f"{name} = {days}"
        for name, days in (
            ("posts_after_days", settings.posts_after_days),
            ("raw_after_days", settings.raw_after_days),
            ("metrics_daily_after_days", settings.metrics_daily_after_days),
        )
        if days is not None
    ]
    return "[retention] " + ", ".join(chosen)


def normalise_handle(handle: str) -> str:
    """An author as `erase --author` compares it: no surrounding space or leading "@", and
    Unicode case folded (so "@Åsa" and "åsa" are one author, which SQL's lower() misses on
    SQLite)."""
    return handle.strip().lstrip("@").strip().casefold()


# ------------------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class RetentionReport:
    """What a retention run removed (or, dry, would remove): rows per table and kind of change."""

    cutoffs: Cutoffs
    counts: dict[str, dict[str, int]]
    dry_run: bool
    audit_id: int | None
    seconds: float

    def summary(self) -> str:
        """One line for logs: `posts.deleted=3 post_metrics.thinned=120 …`."""
        items = [
            f"{t}.{what}={n}" for t, changes in self.counts.items() for what, n in changes.items()
        ]
        return " ".join(items) or "nothing configured"


@dataclass(frozen=True)
class _Change:
    """One set-based change: which rows of a table, and whether they go or lose `raw`."""

    table: sa.Table
    what: str  # "deleted" | "raw_dropped" | "thinned"
    where: ColumnElement[bool]


def _steps(dialect: str, cutoffs: Cutoffs) -> list[list[_Change]]:
    """The changes of a run, grouped in steps (one transaction each), in the order they run.

    Later steps exclude what earlier ones delete, so a dry run's counts, taken before anything
    is deleted, equal what the run then does.
    """
    kept_posts: ColumnElement[bool] = sa.true()
    steps: list[list[_Change]] = []
    if cutoffs.posts is not None:
        old = sa.select(posts.c.id).where(posts.c.published_at < cutoffs.posts)
        steps.append(
            [
                _Change(post_metrics, "deleted", post_metrics.c.post_id.in_(old)),
                _Change(post_revisions, "deleted", post_revisions.c.post_id.in_(old)),
                _Change(posts, "deleted", posts.c.published_at < cutoffs.posts),
            ]
        )
        kept_posts = posts.c.published_at >= cutoffs.posts
    if cutoffs.raw is not None:
        aged = sa.and_(posts.c.published_at < cutoffs.raw, kept_posts)
        steps.append(
            [
                _Change(posts, "raw_dropped", sa.and_(aged, _has_raw(dialect, posts.c.raw))),
                _Change(
                    post_revisions,
                    "raw_dropped",
                    sa.and_(
                        post_revisions.c.post_id.in_(sa.select(posts.c.id).where(aged)),
                        _has_raw(dialect, post_revisions.c.raw),
                    ),
                ),
            ]
        )
    if cutoffs.metrics is not None:
        steps.append([_Change(post_metrics, "thinned", _superseded_metrics(dialect, cutoffs))])
    return steps


def _has_raw(dialect: str, column: sa.Column[Any]) -> ColumnElement[bool]:
    # A post collected without a payload holds JSON null, not SQL NULL: it has nothing to drop.
    if dialect == "postgresql":
        return sa.and_(column.is_not(None), sa.func.jsonb_typeof(column) != "null")
    return sa.and_(column.is_not(None), sa.cast(column, sa.Text) != "null")


def _utc_day(dialect: str, column: sa.Column[Any]) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)  # SQLite stores UTC text, "YYYY-MM-DD HH:MM:SS.ffffff"


def _superseded_metrics(dialect: str, cutoffs: Cutoffs) -> ColumnElement[bool]:
    """Counts observed before the cutoff that are not their post's last of that UTC day."""
    assert cutoffs.metrics is not None
    rank = sa.func.row_number().over(
        partition_by=(post_metrics.c.post_id, _utc_day(dialect, post_metrics.c.observed_at)),
        order_by=(post_metrics.c.observed_at.desc(), post_metrics.c.id.desc()),
    )
    aged = post_metrics.c.observed_at < cutoffs.metrics
    if cutoffs.posts is not None:  # the counts of posts about to be deleted are counted there
        old = sa.select(posts.c.id).where(posts.c.published_at < cutoffs.posts)
        aged = sa.and_(aged, post_metrics.c.post_id.not_in(old))
    ranked = sa.select(post_metrics.c.id, rank.label("rank")).where(aged).subquery()
    return post_metrics.c.id.in_(sa.select(ranked.c.id).where(ranked.c.rank > 1))


def _tally(done: list[tuple[_Change, int]]) -> dict[str, dict[str, int]]:
    """Rows per table and kind of change, for the report and the audit log."""
    counts: dict[str, dict[str, int]] = {}
    for change, rows in done:
        table = counts.setdefault(change.table.name, {})
        table[change.what] = table.get(change.what, 0) + rows
    return counts


def _count(connection: Connection, change: _Change) -> int:
    query = sa.select(sa.func.count()).select_from(change.table).where(change.where)
    return int(connection.execute(query).scalar_one())


def _apply(connection: Connection, change: _Change) -> int:
    if change.what == "raw_dropped":
        statement: Any = change.table.update().where(change.where).values(raw=sa.null())
    else:
        statement = change.table.delete().where(change.where)
    return int(connection.execute(statement).rowcount)


def apply_retention(
    engine: Engine,
    settings: RetentionConfig,
    now: datetime,
    *,
    actor: str,
    reason: str | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Delete old posts, drop old raw payloads and thin old counts, as `settings` say.

    Each step is one transaction of a few set-based statements; the audit row is written with
    the last step, so the log never lacks a run that changed something. A dry run only counts:
    it writes nothing, not even an audit row. With no setting, nothing runs and nothing is logged.

    Args:
        actor: who runs it (the OS user, or `monitor.audit.SERVICE_ACTOR`).
        reason: why; by default the settings that decided it.
    """
    started = time.monotonic()
    cutoffs = find_cutoffs(settings, now)
    steps = _steps(engine.dialect.name, cutoffs)
    if dry_run or not steps:
        with engine.connect() as connection:
            counted = [
                (change, _count(connection, change) if dry_run else 0)
                for step in steps
                for change in step
            ]
        return RetentionReport(cutoffs, _tally(counted), dry_run, None, time.monotonic() - started)

    why = reason or describe_settings(settings)

    def log(connection: Connection, why: str, done: list[tuple[_Change, int]]) -> int:
        return record_audit(
            connection, at=now, action="retention", target=describe_cutoffs(cutoffs), reason=why,
            actor=actor, counts=_tally(done),
        )  # fmt: skip

    committed: list[tuple[_Change, int]] = []
    audit_id: int | None = None
    for index, step in enumerate(steps):
        try:
            with engine.begin() as connection:
                done = [(change, _apply(connection, change)) for change in step]
                if index == len(steps) - 1:
                    audit_id = log(connection, why, committed + done)
            committed += done
        except Exception as error:
            if committed:  # earlier steps were committed: the log must say so
                with engine.begin() as connection:
                    log(connection, f"{why}; stopped by an error: {first_line(error)}", committed)
            raise
    counts = _tally(committed)
    return RetentionReport(cutoffs, counts, False, audit_id, time.monotonic() - started)


# --------------------------------------------------------------------------------------- erasure


class UnknownPostError(LookupError):
    """No post has the id given to `erase --post`."""


@dataclass(frozen=True)
class ErasureCandidate:
    """A post `erase` would erase, as the confirmation shows it."""

    id: int
    source_key: str
    published_at: datetime
    headline: str
    author: str | None
    revisions: int
    metrics: int
    erased_at: datetime | None


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did: the posts emptied, and their revisions and counts deleted."""

    target: str
    post_ids: tuple[int, ...]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    audit_id: int | None = None

    @property
    def posts_erased(self) -> int:
        return self.counts.get("posts", {}).get("erased", 0)


def find_author_post_ids(connection: Connection, handle: str) -> list[int]:
    """Posts not yet erased whose current version or any revision has this author."""
    wanted = normalise_handle(handle)
    if not wanted:
        return []
    # The distinct authors are few (one or a handful per source): comparing them in Python folds
    # Unicode case correctly on both databases, and the posts are then selected by equality.
    authors = sa.union(
        sa.select(posts.c.author.label("author")).where(posts.c.author.is_not(None)),
        sa.select(post_revisions.c.author).where(post_revisions.c.author.is_not(None)),
    )
    matching = [a for (a,) in connection.execute(authors) if normalise_handle(a) == wanted]
    if not matching:
        return []
    query = (
        sa.select(posts.c.id)
        .where(
            posts.c.erased_at.is_(None),
            sa.or_(
                posts.c.author.in_(matching),
                posts.c.id.in_(
                    sa.select(post_revisions.c.post_id).where(post_revisions.c.author.in_(matching))
                ),
            ),
        )
        .order_by(posts.c.id)
    )
    return list(connection.execute(query).scalars())


def list_erasure_candidates(engine: Engine, post_ids: Sequence[int]) -> list[ErasureCandidate]:
    """The posts with these ids, with their revision and count rows, for a confirmation."""
    revisions = (
        sa.select(sa.func.count()).where(post_revisions.c.post_id == posts.c.id).scalar_subquery()
    )
    metrics = (
        sa.select(sa.func.count()).where(post_metrics.c.post_id == posts.c.id).scalar_subquery()
    )
    found: list[ErasureCandidate] = []
    with engine.connect() as connection:
        for batch in chunks(list(post_ids), ERASE_BATCH):
            query = (
                sa.select(
                    posts.c.id, sources.c.key, posts.c.published_at, posts.c.title, posts.c.text,
                    posts.c.author, posts.c.erased_at, revisions.label("revisions"),
                    metrics.label("metrics"),
                )
                .join(sources, sources.c.id == posts.c.source_id)
                .where(posts.c.id.in_(batch))
                .order_by(posts.c.id)
            )  # fmt: skip
            for row in connection.execute(query):
                headline = (row.title or row.text or "").replace("\n", " ")
                found.append(
                    ErasureCandidate(
                        row.id, row.key, row.published_at, headline, row.author,
                        row.revisions, row.metrics, row.erased_at,
                    )
                )  # fmt: skip
    return found


def erase_post(
    engine: Engine, post_id: int, *, reason: str, actor: str, now: datetime
) -> ErasureReport:
    """Erase one post: empty its content, delete its revisions and counts, keep a tombstone.

    An already erased post is left as it is and logs nothing (`posts_erased` is 0).

    Raises:
        UnknownPostError: no post has this id.
        ValueError: the reason is empty.
    """
    target = f"post {post_id}"
    with _erasing(engine) as connection:
        row = connection.execute(
            sa.select(posts.c.id, posts.c.erased_at).where(posts.c.id == post_id)
        ).one_or_none()
        if row is None:
            raise UnknownPostError(f"no post with id {post_id}")
        ids = [] if row.erased_at is not None else [post_id]
        return _erase(connection, ids, target=target, reason=reason, actor=actor, now=now)


def erase_author(
    engine: Engine, handle: str, *, reason: str, actor: str, now: datetime
) -> ErasureReport:
    """Erase every post whose current version or any revision has this author (compared
    without case or a leading "@"). No matching post: nothing is written or logged.

    Raises:
        ValueError: the reason is empty.
    """
    target = f"author @{handle.strip().lstrip('@')}"
    with _erasing(engine) as connection:
        ids = find_author_post_ids(connection, handle)
        return _erase(connection, ids, target=target, reason=reason, actor=actor, now=now)


@contextmanager
def _erasing(engine: Engine) -> Iterator[Connection]:
    """A transaction for an erasure that, on SQLite, also overwrites what it frees.

    SQLite leaves deleted content in free pages and in the write-ahead log until they are
    reused: `secure_delete` zeroes it as it is freed, and a checkpoint afterwards copies the
    zeroed pages into the file and empties the log. PostgreSQL keeps dead row versions until
    vacuum reuses their space (see docs/operations.md).
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA secure_delete = ON")
            connection.commit()
        try:
            with connection.begin():
                yield connection
        finally:
            if sqlite:
                # Off again before the connection goes back to the pool: zeroing costs writes.
                connection.exec_driver_sql("PRAGMA secure_delete = OFF")
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.commit()


def _erase(
    connection: Connection,
    post_ids: Sequence[int],
    *,
    target: str,
    reason: str,
    actor: str,
    now: datetime,
) -> ErasureReport:
    if not reason.strip():
        raise ValueError("an erasure needs a reason: it is kept in the audit log")
    if not post_ids:
        return ErasureReport(target, ())
    counts = {
        "posts": {"erased": 0},
        "post_revisions": {"deleted": 0},
        "post_metrics": {"deleted": 0},
    }
    values: dict[str, Any] = {
        "url": None, "author": None, "title": None, "text": None, "html": None, "language": None,
        "tags": [], "links": [], "mentions": [], "other_mentions": 0, "media": [],
        "raw": sa.null(), "terms": None, "phrases": None,
        "content_hash": ERASED_CONTENT_HASH, "erased_at": now,
    }  # fmt: skip
    for batch in chunks(list(post_ids), ERASE_BATCH):
        counts["post_metrics"]["deleted"] += connection.execute(
            post_metrics.delete().where(post_metrics.c.post_id.in_(batch))
        ).rowcount
        counts["post_revisions"]["deleted"] += connection.execute(
            post_revisions.delete().where(post_revisions.c.post_id.in_(batch))
        ).rowcount
        counts["posts"]["erased"] += connection.execute(
            posts.update().where(posts.c.id.in_(batch), posts.c.erased_at.is_(None)).values(values)
        ).rowcount
    if connection.dialect.name == "sqlite" and counts["posts"]["erased"]:
        _merge_search_index(connection)
    audit_id = record_audit(
        connection, at=now, action="erase", target=target, reason=reason.strip(), actor=actor,
        counts=counts,
    )  # fmt: skip
    return ErasureReport(target, tuple(post_ids), counts, audit_id)


def _merge_search_index(connection: Connection) -> None:
    """Rewrite SQLite's full-text index without the erased posts' words.

    Deleting from FTS5 only records that entries are gone: the words stay in the older index
    segments until those are merged, which 'optimize' does for all of them at once.
    """
    exists = connection.execute(
        sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": SEARCH_TABLE},
    ).first()
    if exists:
        connection.exec_driver_sql(
            f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('optimize')"
        )
