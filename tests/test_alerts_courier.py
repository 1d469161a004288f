"""The delivery process (`monitor.alerts.courier`): Apprise in a spawned process of its own,
against a real loopback webhook; and what happens when that process dies or hangs, with real
signals. The collecting process must never load Apprise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.alerts.courier import Courier, Outgoing
from monitor.alerts.pipeline import run_alerts
from monitor.alerts.rules import NewPost
from monitor.config import Config, load_config
from monitor.db import make_engine, upgrade
from monitor.models import alert_events, sources
from monitor.sources import sync_sources
from monitor.store import ingest_posts
from monitor.types import PostData
from tests.conftest import feed_source, wait_for, write_config
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


def message(url: str, *items: str | NewPost, label: str = "hook") -> Outgoing:
    return Outgoing(label, url, "Kris", "keyword", "sv", tuple(items), len(items))


def flooding(number: int) -> NewPost:
    return NewPost(
        id=number,
        source_key="flen",
        source_platform="feed",
        channel="feed",
        organisation="Flens kommun",
        groups=(),
        published_at=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        title=f"Översvämning {number}",
        text=None,
        url=f"https://www.flen.se/nyheter/{number}",
    )


def has_exited(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie until its parent waits for it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_messages_are_written_and_sent_by_the_process_with_one_answer_each(
    tmp_path: Path,
) -> None:
    with WebhookReceiver() as live, WebhookReceiver() as broken:
        broken.status = 500
        config = rules_config(tmp_path, "sqlite://", live.apprise_url(), broken.apprise_url())
        courier = Courier(config)
        try:
            courier.start()
            assert courier.label(live.apprise_url()) == f"json://127.0.0.1:{live.port}/hook"
            answers = courier.send(
                [
                    message(live.apprise_url(), flooding(1), flooding(2)),
                    message(broken.apprise_url(), flooding(1)),
                ]
            )
        finally:
            courier.close()
        (received,) = live.messages()
    assert answers[0] is None
    assert answers[1] is not None and "500" in answers[1]
    assert received["title"] == "Kris: 2 nya inlägg"
    assert received["message"].splitlines()[1] == "Översvämning 1"


def test_a_hung_process_fails_its_messages_in_one_line_and_the_next_send_starts_anew(
    tmp_path: Path,
) -> None:
    with WebhookReceiver() as hook:
        config = rules_config(tmp_path, "sqlite://", hook.apprise_url(), timeout=1)
        courier = Courier(config)
        try:
            courier.wait_ready()
            hung = courier.pid
            assert hung is not None
            os.kill(hung, signal.SIGSTOP)  # alive, answering nothing
            started = time.monotonic()
            (answer,) = courier.send([message(hook.apprise_url(), flooding(1))])
            waited = time.monotonic() - started
            assert answer == (
                "the delivery process did not answer within 6 s ([alerting] timeout 1 s and"
                " 5 s more); it was stopped"
            )
            assert 5.5 < waited < 15
            assert has_exited(hung)  # killed, and waited for
            assert hook.messages() == []
            assert courier.send([message(hook.apprise_url(), flooding(2))]) == [None]
            assert courier.pid not in (None, hung)
        finally:
            courier.close()
        (received,) = hook.messages()
    assert "Översvämning 2" in received["message"]


def test_a_process_found_dead_before_a_round_is_replaced_without_losing_a_message(
    tmp_path: Path,
) -> None:
    with WebhookReceiver() as hook:
        config = rules_config(tmp_path, "sqlite://", hook.apprise_url())
        courier = Courier(config)
        try:
            courier.wait_ready()
            dead = courier.pid
            assert dead is not None
            os.kill(dead, signal.SIGKILL)
            assert wait_for(lambda: has_exited(dead), 5)
            assert courier.send([message(hook.apprise_url(), flooding(1))]) == [None]
            assert courier.pid != dead
        finally:
            courier.close()
        assert len(hook.messages()) == 1


def test_a_receiver_that_hangs_costs_its_channel_the_timeout_and_the_others_go(
    tmp_path: Path,
) -> None:
    with WebhookReceiver() as hanging, WebhookReceiver() as live:
        hanging.delay = 30
        config = rules_config(
            tmp_path, "sqlite://", hanging.apprise_url(), live.apprise_url(), timeout=1
        )
        courier = Courier(config)
        try:
            started = time.monotonic()
            answers = courier.send(
                [
                    message(hanging.apprise_url(), flooding(1)),
                    message(live.apprise_url(), flooding(1)),
                ]
            )
            waited = time.monotonic() - started
            # The process is not at fault: it answers, and stays for the next round.
            assert courier.send([message(live.apprise_url(), flooding(2))]) == [None]
        finally:
            courier.close()
        assert len(live.messages()) == 2
    assert answers[0] is not None and answers[1] is None
    assert waited < 10


def store_flooding_post(config: Config, database_url: str) -> datetime:
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
            platform_post_id="1",
            kind="article",
            url="https://www.flen.se/nyheter/1",
            author=None,
            published_at=NOW - timedelta(hours=1),
            title="Översvämning vid Skeboån",
            text="Vattnet stiger.",
            html=None,
        )
        ingest_posts(connection, source_id, [post], now=since)
    engine.dispose()
    return since


def test_a_process_killed_while_delivering_fails_the_message_which_a_later_round_sends(
    tmp_path: Path, database_url: str
) -> None:
    with WebhookReceiver() as hook:
        hook.delay = 3  # the process waits on the receiver while it is killed
        config = rules_config(tmp_path, database_url, hook.apprise_url(), timeout=10)
        since = store_flooding_post(config, database_url)
        engine = make_engine(database_url)
        courier = Courier(config)
        try:
            courier.wait_ready()
            victim = courier.pid
            assert victim is not None

            def kill_when_sending() -> None:
                if wait_for(lambda: hook.arrived == 1, 10):
                    os.kill(victim, signal.SIGKILL)

            import threading

            killer = threading.Thread(target=kill_when_sending)
            killer.start()
            report = run_alerts(
                config, engine, courier, since=since, worker="w", collected=["flen"],
                with_new=["flen"],
            )  # fmt: skip
            killer.join()
            assert (report.sent, report.failed) == (0, 1)
            assert report.failures == (
                f"Kris → json://127.0.0.1:{hook.port}/hook: the delivery process ended"
                " unexpectedly (exit code -9)",
            )
            with engine.connect() as connection:
                (row,) = connection.execute(sa.select(alert_events)).all()
            assert (row.status, row.attempts) == ("failed", 1)
            assert row.next_attempt_at is not None

            hook.delay = 0
            time.sleep(1.1)  # retry_after = 1
            again = run_alerts(config, engine, courier, since=datetime.now(UTC), worker="w")
            assert (again.sent, again.failed) == (1, 0)
        finally:
            courier.close()
            engine.dispose()
        messages = [m for m in hook.messages() if "Skeboån" in m["message"]]
    assert len(messages) >= 1  # the killed attempt may have reached the receiver first
    with make_engine(database_url).connect() as connection:
        (row,) = connection.execute(sa.select(alert_events)).all()
    assert (row.status, row.attempts) == ("sent", 2)


def test_collect_with_rules_never_loads_apprise_or_the_message_writer_itself(
    tmp_path: Path, feed_server
) -> None:  # type: ignore[no-untyped-def]
    from tests.test_alerts import rss

    with WebhookReceiver() as hook:
        url = feed_server.add(
            "/flen.xml", body=rss(("1", "Översvämning vid Skeboån", timedelta(hours=1)))
        )
        config = write_config(
            tmp_path,
            f"sqlite:///{tmp_path / 'omvarld.db'}",
            feed_source(url, "Flens kommun", key="flen")
            + f'\n[[alerts]]\nname = "Kris"\nquery = "översvämning"\n'
            f'notify = ["{hook.apprise_url()}"]\n',
        )
        script = (
            "import sys\n"
            "from monitor.cli import main\n"
            f"sys.argv = ['omvarld', '--config', {str(config)!r}, 'collect', '--all']\n"
            "try:\n"
            "    main()\n"
            "except SystemExit:\n"
            "    pass\n"
            "loaded = [m for m in ('apprise', 'monitor.alerts.message') if m in sys.modules]\n"
            "print('loaded:', loaded)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert "Alerts: 1 sent, 0 failed" in done.stdout, done.stdout + done.stderr
        assert len(hook.messages()) == 1
    assert "loaded: []" in done.stdout, done.stdout
