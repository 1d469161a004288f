"""Handing alert messages to Apprise, one channel at a time. The only module here that does
network I/O, and the only one that imports Apprise: in the alert process of a collection
(`monitor.alerts.alerter`), in the process itself for `alerts test`, `alerts list` and
`config check`.

A channel is one `notify` URL or one `notify_env` variable of a rule. Its label, which logs,
`alert_events.channel` and `omvarld alerts list` show, never holds a secret: a variable's name,
or the URL as Apprise's privacy mode writes it (passwords and tokens masked), without its query.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor.text import strip_control

if TYPE_CHECKING:
    from monitor.alerts.rules import NewPost
    from monitor.config import AlertRuleConfig

log = logging.getLogger(__name__)

# Channels delivered at once: a dead webhook waits out its timeout beside the others, not
# before them.
PARALLEL_DELIVERIES = 8
# An error kept and shown is one line of at most this many characters.
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Channel:
    """Where a rule's alerts go; `url` is None when its variable is unset (`problem` says so)."""

    label: str
    url: str | None
    problem: str | None = None


def rule_channels(
    rule: AlertRuleConfig, describe: Callable[[str], str] | None = None
) -> list[Channel]:
    """The rule's channels, URLs from the file first, then each variable's, read now.

    `describe` labels a URL from the file (default: `describe_url`, which loads Apprise; a
    collection asks its delivery process). A variable's channel is labelled by its name."""
    describe = describe or describe_url
    channels = [Channel(describe(url), url) for url in rule.notify]
    for name in rule.notify_env:
        value = os.environ.get(name, "").strip()
        if value:
            channels.append(Channel(f"${name}", value))
        else:
            channels.append(
                Channel(f"${name}", None, f"the environment variable {name} is not set")
            )
    return channels


def _instantiate(url: str) -> Any:
    import apprise

    return apprise.Apprise.instantiate(url)


@functools.lru_cache(maxsize=1024)
def describe_url(url: str) -> str:
    """The URL as shown (remembered: Apprise parses a URL in about 0.4 ms, and every pass
    labels every channel): Apprise's privacy form (secrets masked) without its query string; the
    scheme alone when Apprise cannot read it."""
    service = _instantiate(url)
    if service is None:
        scheme = url.partition("://")[0] if "://" in url else "?"
        return f"{strip_control(scheme)}://…"
    shown: str = service.url(privacy=True)
    return shown.partition("?")[0]


def check_url(url: str) -> str | None:
    """Why Apprise cannot deliver to `url`, or None when it can."""
    if _instantiate(url) is not None:
        return None
    scheme = url.partition("://")[0] if "://" in url else url[:20]
    return (
        f"Apprise cannot use a {strip_control(scheme)}:// URL: unknown scheme or missing parts"
        " (see https://appriseit.com/services/)"
    )


@dataclass(frozen=True)
class Delivery:
    channel: Channel
    title: str
    body: str


def deliver(delivery: Delivery, timeout: float) -> str | None:
    """Send one message through one channel; None when it went, else why it did not (one line,
    no secret). Never raises."""
    channel = delivery.channel
    if channel.url is None:
        return channel.problem or "no URL"
    try:
        notifier = _notifier(channel.url)
        if notifier is None:
            return check_url(channel.url) or "Apprise refused the URL"
        result = notifier.notify(
            body=delivery.body, title=delivery.title, body_format="text", timeout=timeout
        )
        if result:
            return None
        return _reason(result) or "Apprise reported a failure"
    except Exception as error:  # a plugin's bug must cost one channel, not the pass
        log.info("alert channel %s raised", channel.label, exc_info=True)
        return f"internal error: {type(error).__name__}"


_thread_state = threading.local()


def _notifier(url: str) -> Any:
    """This thread's Apprise object for `url` (None: Apprise cannot use it), made once:
    reading the URL and setting up its plugin anew was a third of each message's cost. One a
    thread, as Apprise's plugins are not made to serve concurrent calls."""
    import apprise

    notifiers: dict[str, Any] = _thread_state.__dict__.setdefault("notifiers", {})
    if url not in notifiers:
        notifier = apprise.Apprise()
        notifiers[url] = notifier if notifier.add(url) else None
    return notifiers[url]


def _reason(result: Any) -> str | None:
    """The last warning Apprise logged for the failed service: it names the host, not the
    secret (Apprise logs securely by default)."""
    lines = [str(getattr(entry, "message", entry)) for entry in result.logs()]
    if not lines:
        return None
    return " ".join(strip_control(lines[-1]).split())[:MAX_ERROR_CHARS]


def deliver_each(
    deliveries: Sequence[Delivery], timeout: float
) -> Iterator[tuple[int, str | None]]:
    """`deliver` for each, at most PARALLEL_DELIVERIES at once: (position, answer) as each
    finishes."""
    if len(deliveries) == 1:
        yield 0, deliver(deliveries[0], timeout)
        return
    workers = min(PARALLEL_DELIVERIES, len(deliveries)) or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omvarld-alert") as pool:
        futures = {pool.submit(deliver, d, timeout): i for i, d in enumerate(deliveries)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def deliver_all(deliveries: Sequence[Delivery], timeout: float) -> list[str | None]:
    """`deliver` for each, at most PARALLEL_DELIVERIES at once; the answers in order."""
    answers: list[str | None] = [None] * len(deliveries)
    for position, answer in deliver_each(deliveries, timeout):
        answers[position] = answer
    return answers


@dataclass(frozen=True)
class Outgoing:
    """One message of a round for one channel, to write and send."""

    channel: Channel  # with its URL
    rule: str
    kind: str  # keyword | spike | silence
    language: str
    # The events listed, at most [alerting] max_items: an item already written (a spike's, a
    # silence's), or a post to write one for.
    items: tuple[str | NewPost, ...]
    count: int  # the events the message stands for; those not listed are counted
    measure: str = "posts"  # what a spike rule counts: posts or engagement


class Sender:
    """Writes a round's messages and sends them: `send` answers per message None when it
    went, else why not, in one line. `progress`, when given, hears before the first delivery
    and after each how long the next may take (the alert process tells its parent)."""

    def __init__(
        self,
        timezone: str,
        public_url: str | None,
        timeout: float,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        from monitor.alerts.message import TEXTS, AlertWriter

        self.timeout = timeout
        self.progress = progress or (lambda seconds: None)
        self.writers = {language: AlertWriter(language, timezone, public_url) for language in TEXTS}
        for writer in self.writers.values():
            writer.fmt.local(datetime.now(UTC))  # Babel reads its locale data at the first use

    def send(self, messages: Sequence[Outgoing]) -> list[str | None]:
        answers: list[str | None] = [None] * len(messages)
        deliveries, positions = [], []
        items: dict[tuple[str, int], str] = {}  # a post listed by many rules is written once
        for index, message in enumerate(messages):
            try:
                title, body = self._write(message, items)
            except Exception as error:  # a bug in writing one message must cost that one only
                log.warning("writing an alert of rule %r failed", message.rule, exc_info=True)
                answers[index] = f"internal error: {type(error).__name__}"
                continue
            deliveries.append(Delivery(message.channel, title, body))
            positions.append(index)
        self.progress(self.timeout)
        for position, answer in deliver_each(deliveries, self.timeout):
            answers[positions[position]] = answer
            self.progress(self.timeout)
        return answers

    def _write(self, message: Outgoing, items: dict[tuple[str, int], str]) -> tuple[str, str]:
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
