"""The alert process (`monitor.alerts.alerter`): each pass's round run in a spawned process of
its own, against a real database and a real loopback webhook; and what happens when that process
dies or hangs, with real signals. The collecting process must never load Apprise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.alerts.alerter import Alerter, Round
from monitor.config import Config, load_config
from monitor.db import make_engine, upgrade
from monitor.models import sources
from monitor.sources import sync_sources
from monitor.store import ingest_posts
from monitor.types import PostData
from tests.conftest import feed_source, wait_for, write_config
from tests.feedserver import FeedServer, flen_rss
from tests.storedata import alert_events_of as events
from tests.webhookserver import WebhookReceiver

NOW = datetime.now(UTC)


def rules_config(tmp_path: Path, database_url: str, *notify: str, timeout: float = 2) -> Config:
    urls = ", ".join(f'"{url}"' for url in notify)
    body = (
        f"[alerting]\ntimeout = {timeout}\nretry_after = 1\n"
        + feed_source("https://www.flen.se/rss", "Flens kommun", key="flen")
        + f'\n[[alerts]]\nname = "Kris"\nquery = "översvämning"\nnotify = [{urls}]\n'
    )
    return load_config(write_config(tmp_path, database_url, body))


def store_flooding_post(config: Config, database_url: str, number: int = 1) -> datetime:
    """A matching post first seen now, as a pass would store it; when the pass began."""
    engine = make_engine(database_url)
    upgrade(engine)
    sync_sources(engine, config, NOW)
    since = datetime.now(UTC)
    with engine.begin() as connection:
        source_id = connection.execute(
            sa.select(sources.c.id).where(sources.c.key == "flen")
        ).scalar_one()
        post = PostData(
            platform_post_id=str(number),
            kind="article",
            url=f"https://www.flen.se/nyheter/{number}",
            author=None,
            published_at=NOW - timedelta(hours=1),
            title=f"Översvämning vid Skeboån {number}",
            text="Vattnet stiger.",
            html=None,
        )
        ingest_posts(connection, source_id, [post], now=since)
    engine.dispose()
    return since


def has_exited(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie until its parent waits for it). The alert
    process has threads: its first shows as a zombie while the others are still exiting, and
    until they have, its parent cannot see it end (waitpid says it runs)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status and tasks == [str(pid)]


def when(condition: Callable[[], bool], act: Callable[[], None]) -> threading.Thread:
    """Do `act` once `condition` holds (within 20 s), beside the test."""

    def watch() -> None:
        if wait_for(condition, 20):
            act()

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def test_a_round_runs_in_the_process_and_reports_what_it_sent(
    tmp_path: Path, database_url: str
) -> None:
    with WebhookReceiver() as hook:
        config = rules_config(tmp_path, database_url, hook.apprise_url())
        since = store_flooding_post(config, database_url)
        engine = make_engine(database_url)
        alerter = Alerter(config)
        try:
            alerter.start()
            report = alerter.run(engine, Round(since, "w", with_new=("flen",)))
            again = alerter.run(engine, Round(since, "w", with_new=("flen",)))
        finally:
            alerter.close()
            engine.dispose()
        (received,) = hook.messages()
    assert (report.sent, report.failed, report.failures) == (1, 0, ())
    assert (again.sent, again.failed) == (0, 0)  # claimed once
    assert received["title"] == "Kris: 1 nytt inlägg"
    assert received["message"].splitlines()[1] == "Översvämning vid Skeboån 1"


def test_a_process_that_hangs_while_sending_is_stopped_and_its_alert_sent_later(
    tmp_path: Path, database_url: str
) -> None:
    with WebhookReceiver() as hook:
        hook.delay = 30  # the process waits on the receiver while it is stopped
        config = rules_config(tmp_path, database_url, hook.apprise_url(), timeout=1)
        since = store_flooding_post(config, database_url)
        engine = make_engine(database_url)
        alerter = Alerter(config)
        try:
            alerter.wait_ready()
            hung = alerter.pid
            assert hung is not None
            stopper = when(lambda: hook.arrived == 1, lambda: os.kill(hung, signal.SIGSTOP))
            started = time.monotonic()
            report = alerter.run(engine, Round(since, "w", with_new=("flen",)))
            waited = time.monotonic() - started
            stopper.join()
            assert report.failures == (
                "the alert process did not answer within 6 s ([alerting] timeout 1 s and"
                " 5 s more); it was stopped",
            )
            assert (report.sent, report.failed) == (0, 1)  # the one alert it had claimed
            assert waited < 15
            assert has_exited(hung)  # killed, and waited for
            (row,) = events(database_url)
            assert (row.status, row.attempts, row.last_error) == ("failed", 1, report.failures[0])
            assert row.next_attempt_at is not None

            hook.delay = 0
            time.sleep(1.1)  # retry_after = 1
            retried = alerter.run(engine, Round(datetime.now(UTC), "w"))
            assert (retried.sent, retried.failed) == (1, 0)
            assert alerter.pid not in (None, hung)
        finally:
            alerter.close()
            engine.dispose()
    (row,) = events(database_url)
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_process_killed_while_sending_fails_its_alert_which_a_later_round_sends(
    tmp_path: Path, database_url: str
) -> None:
    with WebhookReceiver() as hook:
        hook.delay = 3  # the process waits on the receiver while it is killed
        config = rules_config(tmp_path, database_url, hook.apprise_url(), timeout=10)
        since = store_flooding_post(config, database_url)
        engine = make_engine(database_url)
        alerter = Alerter(config)
        try:
            alerter.wait_ready()
            victim = alerter.pid
            assert victim is not None
            killer = when(lambda: hook.arrived == 1, lambda: os.kill(victim, signal.SIGKILL))
            report = alerter.run(engine, Round(since, "w", with_new=("flen",)))
            killer.join()
            assert report.failures == ("the alert process ended unexpectedly (exit code -9)",)
            (row,) = events(database_url)
            assert (row.status, row.attempts) == ("failed", 1)

            hook.delay = 0
            time.sleep(1.1)  # retry_after = 1
            again = alerter.run(engine, Round(datetime.now(UTC), "w"))
            assert (again.sent, again.failed) == (1, 0)
        finally:
            alerter.close()
            engine.dispose()
        # The killed attempt may have reached the receiver before the kill: at least once.
        assert len(hook.messages()) >= 1
    (row,) = events(database_url)
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_process_found_dead_before_a_round_is_replaced_without_losing_an_alert(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'omvarld.db'}"
    with WebhookReceiver() as hook:
        config = rules_config(tmp_path, database_url, hook.apprise_url())
        since = store_flooding_post(config, database_url)
        engine = make_engine(database_url)
        alerter = Alerter(config)
        try:
            alerter.wait_ready()
            dead = alerter.pid
            assert dead is not None
            os.kill(dead, signal.SIGKILL)
            assert wait_for(lambda: has_exited(dead), 5)
            report = alerter.run(engine, Round(since, "w", with_new=("flen",)))
            assert alerter.pid != dead
        finally:
            alerter.close()
            engine.dispose()
        assert len(hook.messages()) == 1
    assert (report.sent, report.failed) == (1, 0)


def test_a_receiver_that_hangs_costs_its_channel_the_timeout_and_the_other_gets_its_alert(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'omvarld.db'}"
    with WebhookReceiver() as hanging, WebhookReceiver() as live:
        hanging.delay = 30
        config = rules_config(
            tmp_path, database_url, hanging.apprise_url("/h"), live.apprise_url("/l"), timeout=1
        )
        since = store_flooding_post(config, database_url)
        engine = make_engine(database_url)
        alerter = Alerter(config)
        try:
            started = time.monotonic()
            report = alerter.run(engine, Round(since, "w", with_new=("flen",)))
            waited = time.monotonic() - started
            first = alerter.pid
            # The process is not at fault: it answered, and serves the next round too.
            alerter.run(engine, Round(datetime.now(UTC), "w"))
            assert alerter.pid == first
        finally:
            alerter.close()
            engine.dispose()
        assert len(live.messages()) == 1
    assert (report.sent, report.failed) == (1, 1)
    assert report.failures[0].startswith(f"Kris → json://127.0.0.1:{hanging.port}/h: ")
    assert waited < 15


def test_collect_with_rules_loads_neither_apprise_nor_the_round_itself(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    with WebhookReceiver() as hook:
        url = feed_server.add(
            "/flen.xml",
            body=flen_rss(
                ("1", "Översvämning vid Skeboån", timedelta(hours=1)), now=datetime.now(UTC)
            ),
        )
        config = write_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'omvarld.db'}",
            feed_source(url, "Flens kommun", key="flen")
            + f'\n[[alerts]]\nname = "Kris"\nquery = "översvämning"\n'
            f'notify = ["{hook.apprise_url()}"]\n',
        )
        heavy = ("apprise", "babel", "monitor.alerts.message", "monitor.alerts.pipeline")
        # Asked at exit: the console script ends the process itself after a collect.
        script = (
            "import atexit, sys\n"
            "from monitor.cli import main\n"
            f"sys.argv = ['omvarld', '--config', {str(config)!r}, 'collect', '--all']\n"
            f"heavy = {heavy!r}\n"
            "atexit.register(lambda: print('loaded:', [m for m in heavy if m in sys.modules]))\n"
            "main()\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert "Alerts: 1 sent, 0 failed" in done.stdout, done.stdout + done.stderr
        assert len(hook.messages()) == 1
    assert "loaded: []" in done.stdout, done.stdout
