"""The delivery process: Apprise, and the writing of messages, in a process of their own.

Apprise imports all ~130 of its plugin modules the first time it reads a URL (0.4 s of CPU,
with no way to load only the plugins a URL needs). Done in the process that collects, that
import held the GIL beside the pass's event loop and database thread and slowed the pass by a
tenth (docs/performance.md, Alerts). So `omvarld collect` and `omvarld run` start this process
when a pass starts and rules exist: it imports Apprise and the message writer on the other core
while the pass runs, labels the rules' channels (Apprise's privacy form of each URL), and then
writes and sends the messages each alert round hands it, answering for each message: sent, or
why not, in one line. `omvarld run` keeps one for all its ticks.

Spawned, not forked: the collecting process has threads (the scheduler, the database thread),
and a forked child could inherit a lock one of them held. Not the parse pool's forkserver
either: whichever starts that server first decides what it preloads.

When the process dies or stops answering, the messages it had fail with a line that says so
and are retried by later rounds like any failed delivery; the next round starts a new process.
A collection never fails because of it. Contains no business logic: what to send is decided by
`monitor.alerts.pipeline`, how it reads by `monitor.alerts.message`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from monitor.processes import watch_parent
from monitor.workers import read_start_ticks

if TYPE_CHECKING:
    from monitor.alerts.rules import NewPost
    from monitor.config import Config

log = logging.getLogger(__name__)

# Starting Python and importing Apprise and the message writer takes about a second, several
# on a loaded machine; a process that is not ready after this has hung.
READY_SECONDS = 60.0
# Beyond [alerting] timeout, which bounds each Apprise call, the time the process may take
# between two answers (writing the messages, a machine under load) before it counts as hung.
ANSWER_GRACE_SECONDS = 5.0
# How long a killed process may take to be gone.
STOP_SECONDS = 5.0


class CourierError(Exception):
    """The delivery process cannot do what was asked; the message says why, in one line."""


@dataclass(frozen=True)
class Outgoing:
    """One message for one channel, for the delivery process to write and send."""

    label: str  # the channel as shown: a URL without its secrets, or $VARIABLE
    url: str
    rule: str
    kind: str  # keyword | spike | silence
    language: str
    # The events listed, at most [alerting] max_items: an item already written (a spike's, a
    # silence's), or a post for the process to write one for.
    items: tuple[str | NewPost, ...]
    count: int  # the events the message stands for; those not listed are counted
    measure: str = "posts"  # what a spike rule counts: posts or engagement


@dataclass(frozen=True)
class _Labels:
    """The first thing the process says (it is ready), and its answer to a `_Label`."""

    labels: dict[str, str]  # URL -> label


@dataclass(frozen=True)
class _Label:
    urls: tuple[str, ...]


@dataclass(frozen=True)
class _Send:
    messages: tuple[Outgoing, ...]
    timeout: float  # seconds each channel may take


@dataclass(frozen=True)
class _Sent:
    index: int  # of the message in _Send.messages
    error: str | None  # None: sent


class Courier:
    """The collecting process's handle on its delivery process: started with `start`, asked
    with `label` and `send` (each starts a new process when the last one is gone), ended
    with `close`. One caller at a time: a lock keeps questions and answers in pairs."""

    def __init__(self, config: Config) -> None:
        self.urls = tuple(sorted({url for rule in config.alerts for url in rule.notify}))
        self.timezone = config.digest.timezone
        self.public_url = config.web.public_url
        self.timeout = config.alerting.timeout
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._labels: dict[str, str] | None = None  # None until the process said it is ready
        self._started_at = 0.0
        self._lock = threading.RLock()

    @property
    def pid(self) -> int | None:
        """The running process's id; None when there is none."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the process unless one runs: it gets ready while the caller does other work."""
        with self._lock:
            if self._process is not None and self._process.is_alive():
                return
            self._discard()
            context = multiprocessing.get_context("spawn")
            mine, theirs = context.Pipe()
            parent = os.getpid()
            process = context.Process(
                target=serve,
                args=(
                    theirs,
                    self.urls,
                    self.timezone,
                    self.public_url,
                    parent,
                    read_start_ticks(parent),
                ),
                name="omvarld-alerts",
                # Ended with its parent at exit; it holds no state worth a clean stop.
                daemon=True,
            )
            try:
                process.start()
            except OSError as error:
                raise CourierError(f"the delivery process could not start: {error}") from error
            finally:
                theirs.close()  # only the child's: its end of file is ours when it dies
            self._process, self._connection = process, mine
            self._started_at = time.monotonic()
            log.debug("delivery process %s started", process.pid)

    def wait_ready(self) -> None:
        """Start the process if need be and wait until it has loaded Apprise (a benchmark that
        times the round alone, as a pass would have given it the time).

        Raises:
            CourierError: it did not get ready.
        """
        with self._lock:
            self._ready()

    def label(self, url: str) -> str:
        """The URL as shown (Apprise's privacy form, secrets masked, without its query).

        Raises:
            CourierError: the process did not answer.
        """
        with self._lock:
            labels = self._ready()
            if url not in labels:
                connection = self._connected()
                connection.send(_Label((url,)))
                answer = self._receive(self.timeout + ANSWER_GRACE_SECONDS)
                assert isinstance(answer, _Labels)
                labels.update(answer.labels)
            return labels[url]

    def send(self, messages: Sequence[Outgoing]) -> list[str | None]:
        """Write and send each message; per message None when it went, else why it did not,
        in one line. Never raises: a process that cannot start, dies or hangs fails the
        messages it had not answered for."""
        answered: dict[int, str | None] = {}
        with self._lock:
            try:
                self._ready()
                self._connected().send(_Send(tuple(messages), self.timeout))
                # Each Apprise call ends within the timeout, and a new one starts only when
                # one ends: a live process answers at least that often.
                limit = self.timeout + ANSWER_GRACE_SECONDS
                while len(answered) < len(messages):
                    answer = self._receive(limit)
                    assert isinstance(answer, _Sent)
                    answered[answer.index] = answer.error
            except CourierError as error:
                log.warning("alert delivery process: %s", error)
                return [answered[i] if i in answered else str(error) for i in range(len(messages))]
        return [answered[i] for i in range(len(messages))]

    def close(self) -> None:
        """End the process. Killed, not asked: it holds nothing (every request was answered),
        and Python's orderly exit of its thousand modules took 0.2 s that `omvarld collect`
        would have waited for."""
        with self._lock:
            self._discard()

    def _ready(self) -> dict[str, str]:
        """The labels the process sent when it got ready, after starting it if need be."""
        if self._labels is not None and self._process is not None and self._process.is_alive():
            return self._labels
        if self._process is None or not self._process.is_alive():
            self.start()
        waited = time.monotonic() - self._started_at
        answer = self._receive(max(READY_SECONDS - waited, 0.0), waiting_for="get ready")
        assert isinstance(answer, _Labels)
        self._labels = dict(answer.labels)
        return self._labels

    def _connected(self) -> Connection:
        if self._connection is None:
            raise CourierError("the delivery process is not running")
        return self._connection

    def _receive(self, seconds: float, waiting_for: str = "answer") -> object:
        """The process's next answer within `seconds`.

        Raises:
            CourierError: it ended or did not answer in time (then it is killed).
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
            raise CourierError(f"the delivery process ended unexpectedly (exit code {code})")
        self._discard()
        if waiting_for == "answer":
            raise CourierError(
                f"the delivery process did not answer within {seconds:g} s ([alerting] timeout"
                f" {self.timeout:g} s and {ANSWER_GRACE_SECONDS:g} s more); it was stopped"
            )
        raise CourierError(f"the delivery process did not {waiting_for} within {seconds:g} s")

    def _discard(self) -> None:
        """Forget the process, killing it if it still runs."""
        process, connection = self._process, self._connection
        self._process, self._connection, self._labels = None, None, None
        if connection is not None:
            connection.close()
        if process is not None:
            if process.is_alive():
                process.kill()
                process.join(STOP_SECONDS)
            process.close()


# ------------------------------------------------------------------------- in the child process


def serve(
    connection: Connection,
    urls: Iterable[str],
    timezone: str,
    public_url: str | None,
    parent: int,
    parent_ticks: int | None,
) -> None:
    """The delivery process: load Apprise, label `urls`, say it is ready, then answer each
    request until it is killed or the parent is gone."""
    watch_parent(parent, parent_ticks)  # a SIGKILLed parent sends no stop
    from monitor.alerts.deliver import describe_url

    labels = {url: describe_url(url) for url in urls}
    # Ready means ready to write, too: Babel's imports and locale data load before the pass
    # ends, not after.
    writers = _Writers(timezone, public_url)
    connection.send(_Labels(labels))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if isinstance(request, _Label):
            connection.send(_Labels({url: describe_url(url) for url in request.urls}))
        elif isinstance(request, _Send):
            _send_all(connection, request, writers)


class _Writers:
    """One AlertWriter per language, made when the process starts."""

    def __init__(self, timezone: str, public_url: str | None) -> None:
        from monitor.alerts.message import TEXTS, AlertWriter

        self.writers = {language: AlertWriter(language, timezone, public_url) for language in TEXTS}
        for writer in self.writers.values():
            writer.fmt.local(datetime.now(UTC))  # Babel reads its locale data at the first use

    def write(self, message: Outgoing, items: dict[tuple[str, int], str]) -> tuple[str, str]:
        """The message's title and body; `items` keeps the posts' lines written so far this
        round, as one post is listed by many rules' messages."""
        writer = self.writers[message.language]
        listed = []
        for item in message.items:
            if isinstance(item, str):
                listed.append(item)
                continue
            key = (message.language, item.id)
            if key not in items:
                items[key] = writer.post_item(item)
            listed.append(items[key])
        written = writer.message(message.rule, message.kind, listed, message.count, message.measure)
        return written.title, written.body


def _send_all(connection: Connection, request: _Send, writers: _Writers) -> None:
    """Write each message and send it; answer for each as it finishes."""
    from monitor.alerts.deliver import Channel, Delivery, deliver_each

    deliveries, positions = [], []
    items: dict[tuple[str, int], str] = {}
    for index, message in enumerate(request.messages):
        try:
            title, body = writers.write(message, items)
        except Exception as error:  # a bug in writing one message must cost that one only
            log.warning("writing an alert of rule %r failed", message.rule, exc_info=True)
            connection.send(_Sent(index, f"internal error: {type(error).__name__}"))
            continue
        deliveries.append(Delivery(Channel(message.label, message.url), title, body))
        positions.append(index)
    for position, answer in deliver_each(deliveries, request.timeout):
        connection.send(_Sent(positions[position], answer))
