"""`omvarld collect` leaves its alert round to a process that outlives it ([alerting] background,
the default), as an operator meets it: real `omvarld` processes, a real webhook receiver, both
databases. The round itself is the one test_alerts.py follows in detail, waited for."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.db import make_engine
from monitor.models import alert_events, alert_passes
from tests.conftest import feed_source, scalar, wait_for, write_config
from tests.feedserver import FeedServer, flen_rss
from tests.storedata import alert_events_of as events
from tests.webhookserver import WebhookReceiver

OMVARLD = [sys.executable, "-m", "monitor"]
HANDED = re.compile(r"Alerts: sent in the background by process (\d+)")


def setup(
    tmp_path: Path, database_url: str, feed_server: FeedServer, *hooks: WebhookReceiver
) -> Path:
    body = flen_rss(
        ("1", "Översvämning vid Skeboån", timedelta(hours=1)),
        ("2", "Julmarknad", timedelta(hours=2)),
        now=datetime.now(UTC),
    )
    url = feed_server.add("/flen.xml", body=body)
    config = write_config(
        tmp_path,
        database_url,
        feed_source(url, "Flens kommun", key="flen")
        + '\n[[alerts]]\nname = "Kris i länet"\nquery = "översvämning"\nnotify = ['
        + ", ".join(f'"{hook.apprise_url()}"' for hook in hooks)
        + "]\n",
    )
    assert omvarld(config, "db", "upgrade", out=tmp_path / "upgrade.out").returncode == 0
    return config


def omvarld(config: Path, *args: str, out: Path) -> subprocess.CompletedProcess[str]:
    """`omvarld` with its output to a file, as cron or a log file takes it: nothing waits for
    what still writes to it after the command has ended."""
    with out.open("w") as output:
        return subprocess.run(
            [*OMVARLD, "--config", str(config), *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            env=os.environ | {"COLUMNS": "200"},
        )


def is_gone(pid: int) -> bool:
    """Whether the process has ended (a zombie waiting for init to reap it has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def handed_to(output: str) -> int:
    found = HANDED.search(output)
    assert found is not None, output
    return int(found.group(1))


def test_collect_exits_and_its_round_sends_the_alert_once_in_the_background(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc to see the round's process end by")
    with WebhookReceiver() as hook, WebhookReceiver() as dead:
        dead.status = 500
        config = setup(tmp_path, database_url, feed_server, hook, dead)
        out = tmp_path / "collect.out"
        done = omvarld(config, "collect", "--all", out=out)
        assert done.returncode == 0, out.read_text()
        pid = handed_to(out.read_text())
        assert wait_for(lambda: len(hook.messages()) == 1, 60), out.read_text()
        assert wait_for(lambda: is_gone(pid), 30)
        # The round wrote its report after the collection's, to the same output: the dead
        # webhook cost its own message only.
        written = out.read_text()
        assert written.index("Alerts: sent in the background") < written.index(
            "Alerts: 1 sent, 1 failed"
        ), written
        assert f"alert failed: Kris i länet → json://127.0.0.1:{dead.port}/hook" in written
        assert hook.messages()[0]["title"] == "Kris i länet: 1 nytt inlägg"

        # Nothing new, and the failed delivery not due again yet: no round, no message.
        again = omvarld(config, "collect", "--all", out=tmp_path / "again.out")
        assert again.returncode == 0
        assert "Alerts:" not in (tmp_path / "again.out").read_text()
        assert len(hook.messages()) == 1
    assert sorted((e.status, e.attempts) for e in events(database_url)) == [
        ("failed", 1),
        ("sent", 1),
    ]
    engine = make_engine(database_url)
    assert scalar(engine, sa.select(sa.func.count()).select_from(alert_passes)) == 0
    engine.dispose()


def test_a_round_killed_before_its_claim_is_sent_by_the_next_collect(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("holding a round before its claim needs a table lock, which SQLite lacks")
    with WebhookReceiver() as hook:
        config = setup(tmp_path, database_url, feed_server, hook)
        engine = make_engine(database_url)
        # A pass never writes alert_events; its round claims there first. Held, as a slow
        # database would, until the round is killed, as a systemd oneshot unit's end would.
        with engine.connect() as holder:
            holder.execute(sa.text(f"LOCK TABLE {alert_events.name} IN EXCLUSIVE MODE"))
            out = tmp_path / "collect.out"
            assert omvarld(config, "collect", "--all", out=out).returncode == 0
            pid = handed_to(out.read_text())
            os.kill(pid, signal.SIGKILL)
            assert wait_for(lambda: is_gone(pid), 30)
            holder.rollback()
        assert hook.messages() == []
        assert scalar(engine, sa.select(sa.func.count()).select_from(alert_passes)) == 1
        status = tmp_path / "status.out"
        assert omvarld(config, "status", out=status).returncode == 0
        assert "Alerts: no round ran for 1 pass since " in status.read_text(), status.read_text()

        # The feed is unchanged, but the killed round's pass waits: the next collect's round
        # takes it over.
        again = tmp_path / "again.out"
        assert omvarld(config, "collect", "--all", out=again).returncode == 0
        retaken = handed_to(again.read_text())
        assert wait_for(lambda: len(hook.messages()) == 1, 60), again.read_text()
        assert wait_for(lambda: is_gone(retaken), 30)
        assert "Översvämning vid Skeboån" in hook.messages()[0]["message"]
        assert scalar(engine, sa.select(sa.func.count()).select_from(alert_passes)) == 0
        assert omvarld(config, "status", out=status).returncode == 0
        assert "no round ran" not in status.read_text()
        assert "1 delivery sent" in status.read_text(), status.read_text()
        engine.dispose()
    assert [(e.status, e.attempts) for e in events(database_url)] == [("sent", 1)]


def test_a_collect_whose_output_is_gone_still_hands_off_its_round(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    """`omvarld collect | head -1` with head long gone: the summary cannot be written, the
    alerts still go."""
    with WebhookReceiver() as hook:
        config = setup(tmp_path, database_url, feed_server, hook)
        collect = subprocess.Popen(
            [*OMVARLD, "--config", str(config), "collect", "--all"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ | {"COLUMNS": "200"},
        )
        assert collect.stdout is not None
        collect.stdout.close()  # the reader is gone before a line is written
        _, errors = collect.communicate(timeout=120)
        assert collect.returncode == 1, errors  # its output was lost: not a success
        assert b"Traceback" not in errors, errors
        assert wait_for(lambda: len(hook.messages()) == 1, 60)
    assert wait_for(lambda: [e.status for e in events(database_url)] == ["sent"], 30)
