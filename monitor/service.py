"""`omvarld run`: the long-running service.

APScheduler drives these jobs: a collection tick that claims whatever is due from the database
(one indexed query, no job per source: the database is the schedule, as in Miniflux); daily
upkeep (retention, pruning old runs); one digest job per recipients' schedule (e.g. Mondays
07:00 in the digest's time zone); and, when there are recipients, a half-hourly retry of failed
digests. Any number of processes can share one PostgreSQL database; leases (renewed by a
heartbeat while a pass runs) and the digests' unique claims keep them apart.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.alerts.alerter import Alerter, PassAlerts
from monitor.audit import SERVICE_ACTOR
from monitor.collect import collect_due
from monitor.config import Config
from monitor.models import alert_events, collection_runs
from monitor.retention import RetentionReport, apply_retention
from monitor.workers import make_worker_id

log = logging.getLogger(__name__)

MAINTENANCE_HOUR = 3  # local time: the quietest hour for publishers and for us
DIGEST_RETRY = timedelta(minutes=30)  # how often failed digests are tried again


class ServiceError(Exception):
    """The service cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class UpkeepReport:
    runs_pruned: int
    alerts_pruned: int = 0
    retention: RetentionReport | None = None  # None: no [retention] setting


def lock_embedded_database(engine: Engine) -> IO[str] | None:
    """Refuse a second service on one SQLite file: SQLite has one writer, and two schedulers
    would each think they own every source. Returns the held lock (keep it open)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    path = Path(engine.url.database).resolve().with_suffix(".run-lock")
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ServiceError(
            f"another 'omvarld run' is already using {Path(engine.url.database).resolve()}; "
            "SQLite serves one service process. To run several workers, use PostgreSQL."
        ) from None
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def run_upkeep(engine: Engine, config: Config, now: datetime) -> UpkeepReport:
    """Prune old collection runs and alert deliveries, apply [retention] when set, and refresh
    the query planner's statistics (after the deletes, so they describe what is left)."""
    cutoff = now - timedelta(days=config.collect.keep_runs_days)
    with engine.begin() as connection:
        pruned = connection.execute(
            collection_runs.delete().where(collection_runs.c.started_at < cutoff)
        ).rowcount
        # Kept as long as the runs. A silence alert's row stays: its source may still be quiet,
        # and without the row the same quiet spell would be announced again.
        alerts_pruned = connection.execute(
            alert_events.delete().where(
                alert_events.c.created_at < cutoff, alert_events.c.kind != "silence"
            )
        ).rowcount
    retention = None
    if config.retention.enabled:
        retention = apply_retention(engine, config.retention, now, actor=SERVICE_ACTOR)
        log.info("retention: %s seconds=%.1f", retention.summary(), retention.seconds)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(sa.text("PRAGMA optimize"))
        else:
            connection.execute(sa.text("ANALYZE"))
        connection.commit()
    return UpkeepReport(runs_pruned=pruned, alerts_pruned=alerts_pruned, retention=retention)


def run_service(
    config: Config,
    engine: Engine,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
) -> None:
    """Collect due sources every tick until SIGTERM or SIGINT; then stop claiming, finish or
    hand back in-flight sources within about ten seconds, and return.

    Raises:
        ServiceError: another service holds this SQLite database.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    lock = lock_embedded_database(engine)
    stop = stop or threading.Event()
    worker = make_worker_id()
    # One alert process for every tick's alerts, started by the first pass.
    alerter = Alerter(config) if config.alerts else None
    if once:
        try:
            _tick(config, engine, worker, stop, alerter)
        finally:
            if alerter is not None:
                alerter.close()
        return

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    scheduler = BackgroundScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
    )
    scheduler.add_job(
        _tick,
        "interval",
        seconds=config.collect.tick,
        args=(config, engine, worker, stop, alerter),
        id="collect",
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        _upkeep,
        "cron",
        hour=MAINTENANCE_HOUR,
        timezone=config.digest.timezone,
        args=(config, engine),
        id="upkeep",
    )
    for schedule, emails in group_recipients_by_schedule(config).items():
        day, time_of_day = schedule.split()
        hour, minute = time_of_day.split(":")
        scheduler.add_job(
            _send_digests,
            "cron",
            day_of_week=day,
            hour=int(hour),
            minute=int(minute),
            timezone=config.digest.timezone,
            args=(config, engine, emails),
            id=f"digest {schedule}",
        )
    if config.recipients:
        scheduler.add_job(
            retry_failed_digests,
            "interval",
            seconds=DIGEST_RETRY.total_seconds(),
            args=(config, engine),
            id="digest retry",
        )
    log.info("worker %s started: tick every %d s", worker, config.collect.tick)
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)  # the running tick sees `stop` and winds down
        if alerter is not None:
            alerter.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if lock is not None:
            lock.close()
    log.info("worker %s stopped", worker)


def group_recipients_by_schedule(config: Config) -> dict[str, tuple[str, ...]]:
    """Recipients' emails per weekly send time: `[digest] schedule` or their own."""
    groups: dict[str, list[str]] = {}
    for recipient in config.recipients:
        groups.setdefault(recipient.schedule or config.digest.schedule, []).append(recipient.email)
    return {schedule: tuple(emails) for schedule, emails in groups.items()}


def retry_failed_digests(config: Config, engine: Engine) -> None:
    """Last week's digests that failed (an SMTP server down at 07:00), tried again until
    `[digest] max_attempts`; the claim in the database still keeps each to one sender."""
    from digest.archive import find_retryable
    from digest.model import Week

    now = datetime.now(UTC)
    week = Week.previous(now, config.digest.timezone)
    emails = find_retryable(engine, str(week), config.digest.max_attempts)
    if emails:
        log.info("digest retry week=%s recipients=%d", week, len(emails))
        # The same moment for both: just after Sunday midnight, a week decided again would be
        # the new one, whose digests are not due until the schedule says.
        _send_digests(config, engine, tuple(emails), now)


def _send_digests(
    config: Config, engine: Engine, emails: tuple[str, ...], now: datetime | None = None
) -> None:
    """The weekly send: the digests of the week before `now`, each (recipient, week) at most
    once, so several workers firing together, or a restart, send nothing twice."""
    from digest.delivery import deliver_digests, make_preparer, plan_delivery
    from digest.load import recipients_from_config
    from digest.mail import MailConfigError
    from digest.model import Week
    from digest.optouts import describe_opt_out

    now = now or datetime.now(UTC)
    week = Week.previous(now, config.digest.timezone)
    recipients = [r for r in recipients_from_config(config) if r.email in emails]
    plan = plan_delivery(config)  # the rule `digest send` and `config check` follow too
    try:
        with plan.open_transport() as transport:
            outcomes = deliver_digests(
                engine, recipients, week, config.digest,
                prepare=make_preparer(engine, config, week, now), transport=transport, now=now,
            )  # fmt: skip
    except MailConfigError as error:
        log.error("digests of %s not sent: %s", week, error)
        return
    except Exception:
        log.exception("sending the digests of %s failed", week)
        return
    for outcome in outcomes:
        status, reason = outcome.status, f" error={outcome.error!r}" if outcome.error else ""
        if outcome.opt_out is not None:  # said as `digest send` says it
            status = f"skipped ({describe_opt_out(outcome.opt_out, config.digest.timezone)})"
        log.info("digest week=%s recipient=%s status=%s%s", week, outcome.recipient, status, reason)


def _tick(
    config: Config, engine: Engine, worker: str, stop: threading.Event, alerter: Alerter | None
) -> None:
    started = time.monotonic()
    since = datetime.now(UTC)
    alerts = None
    if alerter is not None:
        alerts = PassAlerts(config, engine, alerter, worker, since)
        alerts.begin()
    try:
        outcomes = collect_due(
            config, engine, worker=worker, stop=stop, on_outcome=alerts.see if alerts else None
        )
    except Exception:
        # A broken tick (the database gone for a moment) must not end the service. Its pass
        # stays recorded: the next tick's alerts look at what it stored.
        log.exception("collection tick failed")
        return
    if alerts is not None:
        # Every tick, with or without news: failed deliveries come due again.
        alerts.finish(outcomes)
    if outcomes:
        failed = sum(o.status.value == "failed" for o in outcomes)
        new = sum(o.counts.new for o in outcomes)
        log.info(
            "tick: sources=%d new=%d failed=%d seconds=%.1f",
            len(outcomes),
            new,
            failed,
            time.monotonic() - started,
        )


def _upkeep(config: Config, engine: Engine) -> None:
    try:
        report = run_upkeep(engine, config, datetime.now(UTC))
    except Exception:
        log.exception("daily upkeep failed")
        return
    log.info(
        "upkeep: collection_runs_pruned=%d alert_events_pruned=%d",
        report.runs_pruned,
        report.alerts_pruned,
    )
