"""Alerts from `omvarld run`: two real workers sharing PostgreSQL send each alert once, also
when both retry the deliveries a receiver refused; one delivery process serves every tick."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.db import make_engine
from monitor.models import alert_events
from tests.conftest import feed_source, scalar, wait_for, write_config
from tests.feedserver import FeedServer
from tests.services import FAST, start_service, upgrade
from tests.webhookserver import WebhookReceiver

FEEDS = 40


def flooding_feed(number: int) -> bytes:
    published = format_datetime(datetime.now(UTC) - timedelta(minutes=number))
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Kommun {number}</title><item><guid>larm-{number}</guid>"
        f"<title>Översvämning i kommun {number}</title>"
        f"<pubDate>{published}</pubDate></item></channel></rss>"
    ).encode()


def posts_named(messages: list[dict[str, str]]) -> Counter[int]:
    """How often each kommun's post was listed, over every message received."""
    named: Counter[int] = Counter()
    for message in messages:
        named.update(int(n) for n in re.findall(r"Översvämning i kommun (\d+)", message["message"]))
    return named


@pytest.mark.slow
def test_two_workers_on_postgresql_send_each_alert_once_and_retry_each_once(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share PostgreSQL; SQLite serves one service process")
    with WebhookReceiver() as steady, WebhookReceiver() as flaky:
        flaky.status = 503  # down at first: every alert to it fails, and both workers retry
        body = FAST.replace("[collect]", "[collect]\nconcurrency = 4\nper_host = 4")
        body += "[alerting]\nretry_after = 1\nmax_items = 100\nmax_attempts = 20\n"
        for number in range(FEEDS):
            # Slow enough that the pass outlasts the second worker's start: both collect.
            url = feed_server.add(f"/k{number}.xml", body=flooding_feed(number), stall_seconds=0.3)
            body += feed_source(url, f"Kommun {number}", key=f"kommun-{number}")
        body += (
            '\n[[alerts]]\nname = "Kris"\nquery = "översvämning"\n'
            f'notify = ["{steady.apprise_url("/steady")}", "{flaky.apprise_url("/flaky")}"]\n'
        )
        config = write_config(tmp_path, database_url, body)
        upgrade(config)
        engine = make_engine(database_url)
        sent = (
            sa.select(sa.func.count())
            .select_from(alert_events)
            .where(alert_events.c.status == "sent")
        )
        workers = [start_service(config) for _ in range(2)]
        try:
            assert wait_for(lambda: len(posts_named(steady.messages())) == FEEDS, 60)
            flaky.status = 200
            assert wait_for(lambda: scalar(engine, sent) == 2 * FEEDS, 60)
            time.sleep(2)  # anything doubled would land now
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            outputs = [worker.communicate(timeout=30)[0] for worker in workers]
        engine.dispose()
        assert [w.returncode for w in workers] == [0, 0], outputs
        steady_named = posts_named(steady.messages())
        flaky_named = posts_named(flaky.messages())
    assert set(steady_named) == set(flaky_named) == set(range(FEEDS))
    assert set(steady_named.values()) == {1}, steady_named
    assert set(flaky_named.values()) == {1}, flaky_named
    # Both workers found work: the claims, not luck, kept them apart.
    assert all("alert rule='Kris'" in output for output in outputs), outputs


def delivery_processes(parent: int) -> set[int]:
    """The spawned children of process `parent` (the delivery process; the parse pool's
    workers come from a forkserver, and the resource tracker runs no spawn_main)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def test_the_service_keeps_one_delivery_process_across_ticks_and_stops_it(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc to find the delivery process by")
    with WebhookReceiver() as hook:
        hook.status = 503  # the first tick's delivery fails; later ticks retry it
        body = FAST + "[alerting]\nretry_after = 1\nmax_attempts = 20\n"
        url = feed_server.add("/k0.xml", body=flooding_feed(0))
        body += feed_source(url, "Kommun 0", key="kommun-0")
        body += (
            '\n[[alerts]]\nname = "Kris"\nquery = "översvämning"\n'
            f'notify = ["{hook.apprise_url()}"]\n'
        )
        config = write_config(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}", body)
        upgrade(config)
        service = start_service(config)
        seen: set[int] = set()
        try:
            assert wait_for(lambda: bool(seen.update(delivery_processes(service.pid)) or seen), 30)
            assert wait_for(lambda: hook.arrived >= 2, 30)  # two ticks' attempts, both refused
            seen |= delivery_processes(service.pid)
            hook.status = 200
            assert wait_for(lambda: len(hook.messages()) == 1, 30)
            seen |= delivery_processes(service.pid)
        finally:
            service.send_signal(signal.SIGTERM)
            output = service.communicate(timeout=30)[0]
        assert service.returncode == 0, output
    assert len(seen) == 1, f"delivery processes started: {seen}"
    assert not Path(f"/proc/{seen.pop()}").exists()  # stopped with the service
