"""The alert process: each pass's alert round, run beside the collecting process.

Apprise imports all ~130 of its plugin modules the first time it reads a URL (0.4 s of CPU,
with no way to load only the plugins a URL needs). Done in the process that collects, that
import held the GIL beside the pass's event loop and database thread and slowed the pass by a
tenth (docs/performance.md, Alerts); and a round run by a process that has just collected pays
for everything it does the first time (imports, Babel's locale data, the stemmer, compiling its
SQL), after the pass. So `omvarld collect` and `omvarld run` start this process at a pass's
first new post, when rules exist (`PassAlerts`). While the pass runs, it loads Apprise and the
message writer on the other core, labels the channels, opens the database and reads and
matches the posts the pass stores; when the pass has ended, it runs the round
(`monitor.alerts.pipeline.run_alerts`) and answers with its report. `omvarld run` keeps one
for all its ticks.

Spawned, not forked: the collecting process has threads (the scheduler, the database thread),
and a forked child could inherit a lock one of them held. Not the parse pool's forkserver
either: whichever starts that server first decides what it preloads.

The collecting process records each pass (`PassAlerts.begin`) before it stores a post, so a
round that never ran is taken over by a later one. When the process dies or stops answering
during a round, the alerts it had claimed fail with a line that says so and are retried like
any failed delivery; the next round starts a new process. A collection never fails because of
it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from monitor.db import first_line
from monitor.processes import watch_parent
from monitor.workers import read_start_ticks

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.alerts.pipeline import PassReader, Send
    from monitor.collect import SourceOutcome
    from monitor.config import Config

log = logging.getLogger(__name__)

# Starting Python, importing Apprise and the message writer and opening the database take a
# second or two, several on a loaded machine; a process that is not ready after this has hung.
READY_SECONDS = 60.0
# The longest the round's database work may take before its deliveries start (a round that
# takes over a crashed pass reads every source's new posts).
DATABASE_SECONDS = 120.0
# Beyond what the process said its next step may take ([alerting] timeout for a delivery), the
# time it may take to say so (a machine under load) before it counts as hung.
ANSWER_GRACE_SECONDS = 5.0
# How long a killed process may take to be gone.
STOP_SECONDS = 5.0
# The alert process's niceness (the collecting process's is 0): see Alerter.start.
NICENESS = 10
# How often the alert process reads the posts a running pass has stored.
READ_EVERY_SECONDS = 0.5


@dataclass(frozen=True)
class AlertReport:
    """What one round of alerts did: messages per outcome, and each failure in one line."""

    sent: int = 0
    failed: int = 0
    failures: tuple[str, ...] = field(default=())
    handed_to: int | None = None  # the process running the round in the background, if one

    def summary(self) -> str:
        if self.handed_to is not None:
            return (
                f"Alerts: sent in the background by process {self.handed_to}"
                " (`omvarld alerts list` shows what went)"
            )
        return f"Alerts: {self.sent} sent, {self.failed} failed"


class AlerterError(Exception):
    """The alert process cannot do what was asked; the message says why, in one line."""


@dataclass(frozen=True)
class _Ready:
    """The process's first word: it is ready for a round."""


@dataclass(frozen=True)
class _Pass:
    """A pass began at `since`, when the newest post's id was `after_id`: read its new posts
    as it stores them."""

    since: datetime
    after_id: int


@dataclass(frozen=True)
class Round:
    """The alert round of the pass that `worker` began at `since`, asked for at `now` (see
    `monitor.alerts.pipeline.run_alerts`)."""

    since: datetime
    worker: str
    pass_id: int | None = None  # its `alert_passes` row
    collected: tuple[str, ...] = ()  # the keys of the sources it collected
    with_new: tuple[str, ...] = ()  # those of them that stored a new post
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def run(
        self, config: Config, engine: Engine, send: Send, reader: PassReader | None = None
    ) -> AlertReport:
        from monitor.alerts.pipeline import run_alerts

        return run_alerts(
            config,
            engine,
            send,
            since=self.since,
            worker=self.worker,
            pass_id=self.pass_id,
            collected=self.collected,
            with_new=self.with_new,
            now=self.now,
            reader=reader,
        )


@dataclass(frozen=True)
class _Progress:
    """The process is at work: its next word comes within `seconds`."""

    seconds: float


@dataclass(frozen=True)
class _Done:
    report: AlertReport


class Alerter:
    """The collecting process's handle on its alert process: started with `start`, given a
    round with `run` (which starts a new process when the last one is gone), ended with
    `close`. One caller at a time: a lock keeps requests and answers in pairs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._ready = False
        self._started_at = 0.0
        self._lock = threading.RLock()

    @property
    def running(self) -> bool:
        """Whether the process runs (it may still be getting ready)."""
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The running process's id; None when there is none."""
        return self._process.pid if self._process is not None else None

    def start(self, since: datetime | None = None, after_id: int = 0) -> None:
        """Start the process unless one runs: it gets ready while the caller does other work.
        With `since`, a pass began then, when the newest post's id was `after_id`: the process
        reads its posts as it stores them.

        Raises:
            AlerterError: it could not be started.
        """
        with self._lock:
            self._start()
            if since is not None:
                try:
                    self._connected().send(_Pass(since, after_id))
                except OSError:  # gone already: the round starts another, and reads then
                    self._discard()

    def _start(self) -> None:
        if self.running:
            return
        self._discard()
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        parent = os.getpid()
        config = round_config(self.config)
        process = context.Process(
            target=serve,
            args=(theirs, config, log_settings(), parent, read_start_ticks(parent)),
            name="omvarld-alerts",
            daemon=True,  # ended with its parent at exit
        )
        try:
            process.start()
        except OSError as error:
            raise AlerterError(f"the alert process could not start: {error}") from error
        finally:
            theirs.close()  # only the child's: its end of file is ours when it dies
        # Niced, so that its second of getting ready takes what the pass leaves of the
        # CPU rather than a share of it; after the pass, it has the CPU to itself.
        assert process.pid is not None  # started
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, process.pid, NICENESS)
        self._process, self._connection = process, mine
        self._started_at = time.monotonic()
        log.info("alert process %s started", process.pid)

    def wait_ready(self) -> None:
        """Start the process if need be and wait until it is ready for a round (a benchmark
        that times the round alone, as a pass would have given it the time).

        Raises:
            AlerterError: it did not get ready.
        """
        with self._lock:
            self._wait_ready()

    def run(self, engine: Engine, alert_round: Round) -> AlertReport:
        """The round, run by the process. Never raises: a process that cannot start, dies or
        hangs is reported in one line, and the alerts it had claimed are marked failed with
        that line, to be retried."""
        with self._lock:
            try:
                self._wait_ready()
                self._connected().send(alert_round)
                limit = DATABASE_SECONDS
                while True:
                    answer = self._receive(limit)
                    if isinstance(answer, _Done):
                        return answer.report
                    assert isinstance(answer, _Progress)
                    limit = answer.seconds + ANSWER_GRACE_SECONDS
            except AlerterError as error:
                reason = str(error)
        log.warning("alerts: %s", reason)
        return report_failed_round(self.config, engine, alert_round.now, reason)

    def close(self) -> None:
        """End the process. Killed, not asked: between rounds it holds nothing, and Python's
        orderly exit of its thousand modules took 0.2 s that `omvarld collect` waited for."""
        with self._lock:
            self._discard()

    def _wait_ready(self) -> None:
        if self._ready and self.running:
            return
        self._start()
        waited = time.monotonic() - self._started_at
        answer = self._receive(max(READY_SECONDS - waited, 0.0), waiting_for="get ready")
        assert isinstance(answer, _Ready)
        self._ready = True

    def _connected(self) -> Connection:
        if self._connection is None:
            raise AlerterError("the alert process is not running")
        return self._connection

    def _receive(self, seconds: float, waiting_for: str = "answer") -> object:
        """The process's next word within `seconds`.

        Raises:
            AlerterError: it ended or did not answer in time (then it is killed).
        """
        connection, process = self._connected(), self._process
        assert process is not None
        if wait([connection, process.sentinel], seconds):
            try:
                if connection.poll():
                    return connection.recv()
            except (EOFError, OSError):
                pass
            process.join(STOP_SECONDS)
            code = process.exitcode
            self._discard()
            raise AlerterError(f"the alert process ended unexpectedly (exit code {code})")
        self._discard()
        if waiting_for == "answer":
            raise AlerterError(
                f"the alert process did not answer within {seconds:g} s ([alerting] timeout"
                f" {self.config.alerting.timeout:g} s and {ANSWER_GRACE_SECONDS:g} s more);"
                " it was stopped"
            )
        raise AlerterError(f"the alert process did not {waiting_for} within {seconds:g} s")

    def _discard(self) -> None:
        """Forget the process, killing it if it still runs."""
        process, connection = self._process, self._connection
        self._process, self._connection, self._ready = None, None, False
        if connection is not None:
            connection.close()
        if process is not None:
            if process.is_alive():
                process.kill()
                process.join(STOP_SECONDS)
            process.close()


def log_settings() -> tuple[int, str | None]:
    """This process's log level and format, for an alert process to write its lines as this
    one does: to the same stderr, at the same level."""
    root = logging.getLogger()
    formats = [getattr(h.formatter, "_fmt", None) for h in root.handlers if h.formatter]
    return root.getEffectiveLevel(), next(filter(None, formats), None)


def round_config(config: Config) -> Config:
    """What a round reads of the config, without the sources and recipients: an alert process
    is handed it down a pipe and unpickles it before it can start (2,000 sources: 0.7 s)."""
    return config.model_copy(update={"sources": (), "recipients": ()})


def report_failed_round(config: Config, engine: Engine, now: datetime, reason: str) -> AlertReport:
    """The report of a round, begun at `now`, that ended for `reason`: the alerts it claimed
    and did not get to record are marked failed with that reason, to be retried. Never raises:
    rows that cannot be marked stay `sending`, and are taken up again when stale."""
    from monitor.alerts.store import fail_unfinished

    retry = now + timedelta(seconds=config.alerting.retry_after)
    try:
        failed = fail_unfinished(engine, now, reason, retry, config.alerting.max_attempts)
    except Exception as error:
        log.warning("alerts: marking the undelivered failed: %s", first_line(error))
        failed = 0
    return AlertReport(0, failed, (reason,))


# ------------------------------------------------------------ in the collecting process: a pass


@dataclass
class PassAlerts:
    """The alerts of one pass, from the collecting process: `begin` records the pass
    (`alert_passes`) before it stores a post, `see` hears each source's outcome, and `finish`
    has the round run after the pass.

    With an `alerter`, the round is its process's: it starts at the pass's first new post, when
    it does not run already (the service keeps one), and reads the pass's posts from the newest
    id at `begin`, so it misses none; `finish` waits for the round. Without one, `finish` hands
    the round to a process that runs it in the background (`monitor.alerts.background`).

    A pass with no new post (most of them: every feed answered 304) alerts on nothing, unless
    silence rules look at its sources, a failed delivery is due again or a crashed pass waits
    for its round; otherwise its round is only forgetting it, done here. Starting a process,
    Apprise and the message writer for it took half a second of CPU, a third of such a pass
    (issue 14)."""

    config: Config
    engine: Engine
    alerter: Alerter | None
    worker: str
    since: datetime
    pass_id: int | None = field(default=None, init=False)  # its `alert_passes` row
    after_id: int = field(default=0, init=False)  # the newest post's id when it began
    started: bool = field(default=False, init=False)  # the alert process was asked to start

    def begin(self) -> None:
        """Record the pass, and hand it to a running alert process. Never raises: what fails
        is logged and the pass goes on (its round reads what it needs itself)."""
        from monitor.alerts.store import open_pass

        try:
            opened = open_pass(self.engine, self.worker, self.since)
            self.pass_id, self.after_id = opened.id, opened.after_id
        except Exception as error:
            log.warning("alerts: the pass could not be recorded: %s", first_line(error))
        if self.alerter is not None and self.alerter.running:
            self._start(self.alerter)

    def see(self, outcome: SourceOutcome) -> None:
        """A source's outcome: its first new post starts the alert process."""
        if outcome.counts.new and not self.started and self.alerter is not None:
            self._start(self.alerter)

    def finish(self, outcomes: Sequence[SourceOutcome]) -> AlertReport:
        """The round of the pass that ended with `outcomes`, or what it was handed to. Never
        raises (see `Alerter.run` and `hand_off_round`)."""
        with_new = [o.key for o in outcomes if o.counts.new]
        if not self.started:
            try:
                if not self._round_needed(with_new):
                    self._forget()
                    return AlertReport()
            except Exception as error:  # the round meets it again, and reports it
                log.warning("alerts: %s", first_line(error))
        collected = tuple(o.key for o in outcomes)
        now = datetime.now(UTC)
        alert_round = Round(self.since, self.worker, self.pass_id, collected, tuple(with_new), now)
        if self.alerter is None:
            from monitor.alerts.background import hand_off_round

            return hand_off_round(self.config, alert_round)
        return self.alerter.run(self.engine, alert_round)

    def _start(self, alerter: Alerter) -> None:
        self.started = True
        try:
            alerter.start(self.since, self.after_id)
        except AlerterError as error:  # the round will try again, and say so
            log.warning("alerts: %s", error)

    def _round_needed(self, with_new: Sequence[str]) -> bool:
        """Whether the round has anything to do: new posts, silence rules to check, a failed
        delivery due again, or a crashed pass to take over."""
        from monitor.alerts.store import find_abandoned_passes, has_retries

        config, now = self.config, datetime.now(UTC)
        if with_new or any(rule.kind == "silence" for rule in config.alerts):
            return True
        rules = [rule.name for rule in config.alerts]
        if has_retries(self.engine, rules, now, config.alerting.max_attempts):
            return True
        lease = timedelta(seconds=config.collect.lease)
        abandoned = find_abandoned_passes(self.engine, self.worker, now, lease)
        return any(record.id != self.pass_id for record in abandoned)

    def _forget(self) -> None:
        """Forget the pass as a round with nothing to claim would."""
        from monitor.alerts.store import claim_new

        if self.pass_id is not None:
            claim_new(self.engine, [], datetime.now(UTC), [self.pass_id])


# ------------------------------------------------------------------------- in the alert process


def serve(
    connection: Connection,
    config: Config,
    logs: tuple[int, str | None],
    parent: int,
    parent_ticks: int | None,
) -> None:
    """The alert process: get ready, say so, then run each round asked for until killed or
    the parent is gone. `logs`: the parent's log level and format."""
    watch_parent(parent, parent_ticks)  # a SIGKILLed parent sends no stop
    level, log_format = logs
    logging.basicConfig(level=level, format=log_format or logging.BASIC_FORMAT)
    from monitor.alerts.deliver import Sender
    from monitor.alerts.pipeline import PassReader, warm_up
    from monitor.db import make_engine

    engine = make_engine(config.database_url)
    timeout = config.alerting.timeout

    def progress(seconds: float) -> None:
        connection.send(_Progress(seconds))

    sender = Sender(config.digest.timezone, config.web.public_url, timeout, progress)
    try:
        warm_up(config, engine)
    except Exception as error:  # the round meets it again, and reports it
        log.warning("alerts: getting ready: %s", first_line(error))
    connection.send(_Ready())
    reader: PassReader | None = None
    while True:
        try:
            # While a pass runs, read what it has stored every READ_EVERY_SECONDS.
            while reader is not None and not connection.poll(READ_EVERY_SECONDS):
                reader = _read(reader)
            request = connection.recv()
        except (EOFError, OSError):
            return
        if isinstance(request, _Pass):
            reader = PassReader(config, engine, request.since, request.after_id)
            continue
        assert isinstance(request, Round)
        try:
            report = request.run(config, engine, sender.send, reader)
        except Exception as error:  # the database gone for a moment: the next round retries
            log.warning("alerts failed: %s", first_line(error), exc_info=True)
            report = AlertReport(failures=(f"alerts could not run: {first_line(error)}",))
        reader = None
        connection.send(_Done(report))


def _read(reader: PassReader) -> PassReader | None:
    """`reader` after reading what its pass stored since; None when that failed (the round
    reads the pass's posts itself then)."""
    try:
        reader.read(datetime.now(UTC))
    except Exception as error:
        log.warning("alerts: reading the pass's posts: %s", first_line(error))
        return None
    return reader
