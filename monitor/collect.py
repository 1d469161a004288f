"""The collection engine: fetch concurrently, parse on every core, store on one thread.

One event loop does all HTTP. Parsing (feedparser is pure Python and CPU-bound) runs in a process
pool sized to the cores. Storing runs on one database thread, so a slow write never stalls the
fetches, SQLite only ever sees one writer from this process, and writes keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors import get_collector_class
from collectors.base import Collector, CollectorSettings, ConfiguredSource
from collectors.http import HttpClient, make_user_agent
from monitor.checkpoints import checkpointing
from monitor.config import Config, missing_secret, secret, secret_env
from monitor.db import first_line
from monitor.parsing import make_parse_executor
from monitor.platforms import SPECS
from monitor.retention import find_cutoffs
from monitor.sources import (
    SourceRow,
    claim_sources,
    mark_skipped,
    release_leases,
    renew_leases,
)
from monitor.store import Attempt, AttemptRecord, IngestCounts, record_attempts
from monitor.types import ApiUsage, CollectResult, CollectStatus
from monitor.usage import read_api_usage

log = logging.getLogger(__name__)

# After a stop request, in-flight sources get this long to finish before they are given back.
STOP_GRACE_SECONDS = 8.0
STOP_POLL_SECONDS = 0.2
# At most this many attempts share one transaction.
STORE_BATCH = 200
# A writer finding fewer queued, none with posts, while sources are still being fetched waits
# this long for more: a statement of 100 attempts costs far less per attempt than ten of 10, and
# the database thread takes the GIL from the fetches less often (issue 15: a warm pass). Attempts
# with posts are written at once: they hold their slots until stored, and the database is what
# a cold pass waits for.
STORE_GATHER_SECONDS = 0.02
# Leases are renewed this many times per lease length, so one late or failed renewal (a slow
# write ahead of it on the database thread) does not let another worker take a source over.
HEARTBEATS_PER_LEASE = 3


@dataclass(frozen=True)
class SourceOutcome:
    """How one source's attempt ended, for summaries and logs."""

    key: str
    organisation: str
    platform: str
    status: CollectStatus
    counts: IngestCounts
    error: str | None = None
    http_status: int | None = None
    moved_to: str | None = None
    seconds: float = 0.0


def find_skip_reason(config: Config, platform: str) -> str | None:
    """Why a source of this platform cannot be collected now, or None."""
    env_name = missing_secret(config, platform)
    if env_name:
        return f"credentials missing: set the environment variable {env_name}"
    if get_collector_class(platform) is None:
        return f"this version has no {platform} collector yet"
    return None


def make_collector_settings(config: Config, platform: str) -> CollectorSettings:
    """What a platform's collector reads of the config, its credential read from the
    environment now."""
    collect, spec = config.collect, SPECS[platform]
    setting = spec.secret_setting
    table = config.platform(platform)
    return CollectorSettings(
        backfill_days=collect.backfill_days,
        backfill_posts=collect.backfill_posts,
        refresh_days=collect.refresh_days,
        max_entries=collect.max_entries,
        max_interval=collect.max_interval,
        per_host=collect.per_host,
        connect_timeout=collect.connect_timeout,
        read_timeout=collect.read_timeout,
        contact_url=collect.contact_url,
        api_url=table.api_url or spec.default_api_url,
        secret=secret(config, platform, setting) if setting else None,
        secret_env=secret_env(config, platform, setting) if setting else None,
        monthly_read_budget=table.monthly_read_budget,
        daily_quota_units=table.daily_quota_units,
        sources=tuple(
            ConfiguredSource(s.handle, s.url, s.name, s.organisation, s.enabled)
            for s in config.sources
            if s.platform == platform
        ),
    )


def collect_sources(
    config: Config,
    engine: Engine,
    rows: Sequence[SourceRow],
    *,
    worker: str | None = None,
    on_outcome: Callable[[SourceOutcome], None] | None = None,
    stop: threading.Event | None = None,
) -> list[SourceOutcome]:
    """Collect the given sources once and store what they yield. Never raises for a source.

    With `worker`, the rows must be leased to it (see `claim_sources`); the leases are renewed
    while the run lasts, and an attempt whose lease was lost is not stored.
    """
    run = _Run(config, engine, worker, on_outcome, stop, expected=len(rows))
    return asyncio.run(run.collect(rows))


def collect_due(
    config: Config,
    engine: Engine,
    *,
    worker: str,
    stop: threading.Event,
    on_outcome: Callable[[SourceOutcome], None] | None = None,
) -> list[SourceOutcome]:
    """One service tick: claim due sources and collect them until none are due, or stop."""
    run = _Run(config, engine, worker, on_outcome, stop, expected=None)
    return asyncio.run(run.collect_due())


class _Slot:
    """One of the run's `concurrency` slots: a source holds it from before its fetch until its
    attempt is stored, so that fetched bodies in memory stay bounded, or gives it back sooner."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self.slots = slots
        self.held = False

    async def __aenter__(self) -> _Slot:
        await self.slots.acquire()
        self.held = True
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()


class _Run:
    """One collection run: its HTTP client, executors, collectors and outcomes."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        worker: str | None,
        on_outcome: Callable[[SourceOutcome], None] | None,
        stop: threading.Event | None,
        expected: int | None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.worker = worker
        self.on_outcome = on_outcome
        self.stop = stop or threading.Event()
        self.expected = expected
        self.policy = config.collect.policy()
        self.outcomes: list[SourceOutcome] = []
        self.collectors: dict[str, Collector] = {}
        settings = config.collect
        self.http = HttpClient(
            user_agent=make_user_agent(settings.contact_url),
            concurrency=settings.concurrency,
            per_host=settings.per_host,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_body_bytes=settings.max_body_bytes,
        )
        self.database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omvarld-db")
        self.parsing = make_parse_executor(config, expected)
        # Sources beyond this many wait before fetching, so bodies in memory stay bounded.
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.unstored: list[tuple[Attempt, CollectResult, asyncio.Future[AttemptRecord]]] = []
        self.writer: asyncio.Task[None] | None = None
        self.usage: ApiUsage | None = None  # read when the first collector is made
        self.fetching = 0  # attempts waiting for their collector
        self.skip_reasons: dict[str, str | None] = {}  # by platform

    async def collect(self, rows: Sequence[SourceRow]) -> list[SourceOutcome]:
        async with self._resources():
            tasks = [asyncio.create_task(self._one(row)) for row in rows]
            await self._finish(tasks, rows)
        return self.outcomes

    async def collect_due(self) -> list[SourceOutcome]:
        settings = self.config.collect
        worker = self.worker
        assert worker is not None
        async with self._resources():
            pending: dict[asyncio.Task[None], SourceRow] = {}
            while not self.stop.is_set():
                # Claim no more than can start now: a claimed source waiting for a slot would
                # burn its lease.
                room = settings.concurrency - len(pending)
                rows: list[SourceRow] = []
                if room > 0:
                    rows = await self._in_database(
                        claim_sources,
                        self.engine,
                        now=datetime.now(UTC),
                        worker=worker,
                        lease=timedelta(seconds=settings.lease),
                        limit=room,
                    )
                pending |= {asyncio.create_task(self._one(row)): row for row in rows}
                if not pending:
                    break
                done, _ = await asyncio.wait(
                    pending, timeout=STOP_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    del pending[task]
            await self._finish(list(pending), list(pending.values()))
        return self.outcomes

    async def _finish(self, tasks: list[asyncio.Task[None]], rows: Sequence[SourceRow]) -> None:
        """Wait for the tasks; on a stop request, give in-flight ones a grace period, then
        cancel them and hand their sources back."""
        remaining = set(tasks)
        deadline: float | None = None
        while remaining:
            _, remaining = await asyncio.wait(remaining, timeout=STOP_POLL_SECONDS)
            if self.stop.is_set():
                deadline = deadline or time.monotonic() + STOP_GRACE_SECONDS
                if time.monotonic() >= deadline:
                    for task in remaining:
                        task.cancel()
                    await asyncio.gather(*remaining, return_exceptions=True)
                    break
        if self.worker is not None and self.stop.is_set():
            finished = {o.key for o in self.outcomes}
            unfinished = [row.id for row in rows if row.key not in finished]
            # The database thread runs in order: a write already queued lands first, and its
            # lease is then no longer ours to release.
            await self._release(unfinished)

    async def _release(self, source_ids: list[int]) -> None:
        """Give sources back, best effort: if the database refuses (a full disk), the leases
        are reclaimed once this process is gone (see `claim_sources`)."""
        assert self.worker is not None
        try:
            await self._in_database(release_leases, self.engine, source_ids, self.worker)
        except Exception as error:
            # Info, not a warning: this process's leases are reclaimed once it has exited.
            log.info("could not give back %d sources: %s", len(source_ids), first_line(error))

    @contextlib.asynccontextmanager
    async def _resources(self) -> AsyncIterator[None]:
        heartbeat = asyncio.create_task(self._heartbeat()) if self.worker else None
        try:
            with checkpointing(self.engine):
                async with self.http:
                    yield
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
            self.parsing.shutdown(wait=True, cancel_futures=True)
            self.database.shutdown(wait=True)

    async def _heartbeat(self) -> None:
        """Renew this worker's leases while the run lasts: a lease is short, so the sources of
        a worker that died where nobody can see it (another host) return within one lease."""
        assert self.worker is not None
        lease = self.config.collect.lease
        while True:
            await asyncio.sleep(lease / HEARTBEATS_PER_LEASE)
            until = datetime.now(UTC) + timedelta(seconds=lease)
            try:
                await self._in_database(renew_leases, self.engine, self.worker, until)
            except Exception as error:  # the next beat tries again; the lease has time left
                log.warning("could not renew leases: %s", first_line(error))

    async def _in_database(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.database, lambda: function(*args, **kwargs))

    async def _one(self, row: SourceRow) -> None:
        """Attempt one source; whatever happens, the source gets an outcome (and the task ends
        without an exception nobody would read)."""
        async with _Slot(self.slots) as slot:
            if self.stop.is_set():
                return  # not started: the source is handed back, still due
            started = time.monotonic()
            try:
                outcome = await self._attempt(row, slot)
            except Exception as error:  # the database failed, and then recording that too
                log.info("source %s failed", row.key, exc_info=True)
                if self.worker is not None:
                    await self._release([row.id])
                reason = (
                    f"database: {first_line(error)}"
                    if isinstance(error, SQLAlchemyError)
                    else f"internal error: {error!r}"
                )
                outcome = SourceOutcome(
                    row.key, row.organisation, row.platform, CollectStatus.FAILED, IngestCounts(),
                    reason, seconds=time.monotonic() - started,
                )  # fmt: skip
        self.outcomes.append(outcome)
        log.info(
            "source=%s status=%s http=%s new=%d updated=%d seconds=%.2f%s",
            outcome.key,
            outcome.status.value,
            outcome.http_status,
            outcome.counts.new,
            outcome.counts.updated,
            outcome.seconds,
            f" error={outcome.error!r}" if outcome.error else "",
        )
        if self.on_outcome:
            self.on_outcome(outcome)

    async def _attempt(self, row: SourceRow, slot: _Slot) -> SourceOutcome:
        started = time.monotonic()
        if row.platform not in self.skip_reasons:
            # Once per platform and run: the environment is read when a run starts.
            self.skip_reasons[row.platform] = find_skip_reason(self.config, row.platform)
        skip_reason = self.skip_reasons[row.platform]
        if skip_reason:
            interval = timedelta(seconds=row.interval_s or self.config.collect.interval)
            now = datetime.now(UTC)
            await self._in_database(mark_skipped, self.engine, row.id, skip_reason, now, interval)
            return SourceOutcome(
                row.key,
                row.organisation,
                row.platform,
                CollectStatus.SKIPPED,
                IngestCounts(),
                skip_reason,
            )
        started_at = datetime.now(UTC)
        self.fetching += 1
        try:
            result = await self._collector(row.platform).collect(
                row.to_ref(), row.to_state(), self.http, started_at
            )
        except Exception as error:
            # A collector bug must cost one source, not the run; the traceback goes to the log.
            log.exception("collector %s failed on %s", row.platform, row.key)
            result = CollectResult(
                CollectStatus.FAILED, state=row.to_state(), error=f"internal error: {error!r}"
            )
        finally:
            self.fetching -= 1
        attempt = Attempt(
            source_id=row.id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            policy=self.policy,
            worker=self.worker,
            jitter=random.uniform(-1.0, 1.0),
            published_since=find_cutoffs(self.config.retention, started_at).posts,
        )
        if not result.posts:
            # Nothing of it waits in memory: the next source may start while this one waits
            # for the database, and the writer finds fuller batches.
            slot.release()
        record = await self._store(attempt, result)
        if not record.stored and self.worker is not None:
            await self._release([row.id])
        return SourceOutcome(
            key=row.key,
            organisation=row.organisation,
            platform=row.platform,
            status=record.status,
            counts=record.counts,
            error=record.error,
            http_status=result.http_status,
            moved_to=result.moved_to,
            seconds=time.monotonic() - started,
        )

    async def _store(self, attempt: Attempt, result: CollectResult) -> AttemptRecord:
        """Queue an attempt for the database thread; attempts that arrive while it is busy are
        stored together in one transaction."""
        future: asyncio.Future[AttemptRecord] = asyncio.get_running_loop().create_future()
        self.unstored.append((attempt, result, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self.unstored:
            if self._worth_gathering():
                await asyncio.sleep(STORE_GATHER_SECONDS)
            batch, self.unstored = self.unstored[:STORE_BATCH], self.unstored[STORE_BATCH:]
            try:
                records = await self._in_database(
                    record_attempts, self.engine, [(a, r) for a, r, _ in batch]
                )
            except Exception as error:  # the database itself failed: every waiter learns it
                for _, _, future in batch:
                    future.set_exception(error)
                continue
            for (_, _, future), record in zip(batch, records, strict=True):
                future.set_result(record)

    def _worth_gathering(self) -> bool:
        """Whether the writer should wait for a fuller batch (see STORE_GATHER_SECONDS)."""
        return (
            len(self.unstored) < STORE_BATCH
            and self.fetching > 0
            and not any(result.posts for _, result, _ in self.unstored)
        )

    def _collector(self, platform: str) -> Collector:
        collector = self.collectors.get(platform)
        if collector is None:
            collector_class = get_collector_class(platform)
            assert collector_class is not None  # find_skip_reason said so
            if self.usage is None:
                self.usage = read_api_usage(self.engine, datetime.now(UTC))
            settings = make_collector_settings(self.config, platform)
            collector = self.collectors[platform] = collector_class(
                settings, self.parsing, self.usage
            )
        return collector
