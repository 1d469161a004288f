"""The collection engine: run collectors concurrently, store each result as it arrives.

Fetching happens on one event loop; storing happens on one database thread, so a slow write
never stalls the fetches and SQLite only ever sees one writer from this process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from collectors import get_collector_class
from collectors.base import Collector, CollectResult, CollectStatus
from collectors.http import HttpClient, make_user_agent
from monitor.config import Config, missing_secret
from monitor.sources import SourceRow
from monitor.store import IngestCounts, mark_skipped, record_attempt

log = logging.getLogger(__name__)


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


def collect_sources(
    config: Config,
    engine: Engine,
    rows: Sequence[SourceRow],
    on_outcome: Callable[[SourceOutcome], None] | None = None,
) -> list[SourceOutcome]:
    """Collect the given sources once and store what they yield. Never raises for a source."""
    return asyncio.run(_collect_all(config, engine, rows, on_outcome))


async def _collect_all(
    config: Config,
    engine: Engine,
    rows: Sequence[SourceRow],
    on_outcome: Callable[[SourceOutcome], None] | None,
) -> list[SourceOutcome]:
    settings = config.collect
    collectors: dict[str, Collector] = {}
    outcomes: list[SourceOutcome] = []
    http = HttpClient(
        user_agent=make_user_agent(settings.contact_url),
        concurrency=settings.concurrency,
        per_host=settings.per_host,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_body_bytes=settings.max_body_bytes,
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omvarld-db") as database:
        async with http:

            async def run_one(row: SourceRow) -> None:
                outcome = await _collect_one(config, engine, row, http, collectors, database)
                outcomes.append(outcome)
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
                if on_outcome:
                    on_outcome(outcome)

            await asyncio.gather(*(run_one(row) for row in rows))
    return outcomes


async def _collect_one(
    config: Config,
    engine: Engine,
    row: SourceRow,
    http: HttpClient,
    collectors: dict[str, Collector],
    database: ThreadPoolExecutor,
) -> SourceOutcome:
    started = time.monotonic()
    interval = timedelta(seconds=row.interval_s or config.collect.interval)
    skip_reason = find_skip_reason(config, row.platform)
    if skip_reason:
        await asyncio.get_running_loop().run_in_executor(
            database, mark_skipped, engine, row.id, skip_reason, datetime.now(UTC), interval
        )
        return SourceOutcome(
            row.key,
            row.organisation,
            row.platform,
            CollectStatus.SKIPPED,
            IngestCounts(),
            skip_reason,
        )
    collector = collectors.get(row.platform)
    if collector is None:
        collector_class = get_collector_class(row.platform)
        assert collector_class is not None  # find_skip_reason said so
        collector = collectors[row.platform] = collector_class(config)

    started_at = datetime.now(UTC)
    try:
        result = await collector.collect(row.to_ref(), row.to_state(), http)
    except Exception as error:
        # A collector bug must cost one source, not the run; the traceback goes to the log.
        log.exception("collector %s failed on %s", row.platform, row.key)
        result = CollectResult(
            CollectStatus.FAILED, state=row.to_state(), error=f"internal error: {error!r}"
        )
    finished_at = datetime.now(UTC)
    record = await asyncio.get_running_loop().run_in_executor(
        database,
        lambda: record_attempt(
            engine,
            row.id,
            result,
            started_at=started_at,
            finished_at=finished_at,
            interval=interval,
        ),
    )
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
