"""Handing alert messages to Apprise, one channel at a time. The only module here that does
network I/O.

A channel is one `notify` URL or one `notify_env` variable of a rule. Its label, which logs,
`alert_events.channel` and `omvarld alerts list` show, never holds a secret: a variable's name,
or the URL as Apprise's privacy mode writes it (passwords and tokens masked), without its query.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from monitor.config import AlertRuleConfig
from monitor.text import strip_control

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


def rule_channels(rule: AlertRuleConfig) -> list[Channel]:
    """The rule's channels, URLs from the file first, then each variable's, read now."""
    channels = [Channel(describe_url(url), url) for url in rule.notify]
    for name in rule.notify_env:
        value = os.environ.get(name, "").strip()
        if value:
            channels.append(Channel(f"${name}", value))
        else:
            channels.append(
                Channel(f"${name}", None, f"the environment variable {name} is not set")
            )
    return channels


def warm_up() -> threading.Thread:
    """Load Apprise and its plugins in a background thread, and the alert modules with it.

    Apprise imports each of its ~130 service modules the first time it reads a URL: a quarter
    of a second. `omvarld collect` starts this beside the collection, which mostly waits on
    the network, so that the alerts after it do not wait for the imports."""

    def load() -> None:
        try:
            import monitor.alerts.pipeline  # noqa: F401

            _instantiate("json://localhost")
        except Exception:  # the alerts will meet and report it themselves
            log.info("loading Apprise ahead failed", exc_info=True)

    thread = threading.Thread(target=load, name="omvarld-apprise", daemon=True)
    thread.start()
    return thread


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
    import apprise

    channel = delivery.channel
    if channel.url is None:
        return channel.problem or "no URL"
    try:
        notifier = apprise.Apprise()
        if not notifier.add(channel.url):
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


def _reason(result: Any) -> str | None:
    """The last warning Apprise logged for the failed service: it names the host, not the
    secret (Apprise logs securely by default)."""
    lines = [str(getattr(entry, "message", entry)) for entry in result.logs()]
    if not lines:
        return None
    return " ".join(strip_control(lines[-1]).split())[:MAX_ERROR_CHARS]


def deliver_all(deliveries: Sequence[Delivery], timeout: float) -> list[str | None]:
    """`deliver` for each, at most PARALLEL_DELIVERIES at once; the answers in order."""
    if not deliveries:
        return []
    if len(deliveries) == 1:
        return [deliver(deliveries[0], timeout)]
    workers = min(PARALLEL_DELIVERIES, len(deliveries))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omvarld-alert") as pool:
        return list(pool.map(lambda d: deliver(d, timeout), deliveries))
