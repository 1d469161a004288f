"""`omvarld run` as a real process: ticks, SIGTERM, one service per SQLite file, and several
workers sharing PostgreSQL with one of them killed mid-pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import make_engine
from monitor.models import collection_runs, posts, sources
from tests.conftest import feed_source, scalar, wait_for, write_config
from tests.feedserver import FeedServer
from tests.services import FAST, start_service, upgrade
from tests.smtpserver import Server


def one_entry_feed(number: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Kommun {number}</title><item><guid>nyhet-{number}</guid>"
        f"<title>Nyhet från kommun {number}</title>"
        "<pubDate>Mon, 23 Nov 2026 08:00:00 +0100</pubDate></item></channel></rss>"
    ).encode()


@pytest.mark.slow
def test_service_collects_on_its_tick_and_stops_cleanly_on_sigterm(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    quick = feed_server.add("/quick.xml", body=one_entry_feed(1))
    stalled = feed_server.add("/stalled.xml", body=one_entry_feed(2), stall_seconds=60)
    body = FAST + feed_source(quick, key="quick") + feed_source(stalled, key="stalled")
    config = write_config(tmp_path, database_url, body)
    upgrade(config)
    engine = make_engine(database_url)

    service = start_service(config)
    try:
        assert wait_for(
            lambda: scalar(engine, sa.select(sa.func.count()).select_from(posts)) == 1, 20
        )
        assert wait_for(lambda: len(feed_server.requests_to("/stalled.xml")) == 1, 10)
        service.send_signal(signal.SIGTERM)
        # Stopping waits for no stalled fetch (it is handed back); the timeout bounds a hang,
        # not the speed of a loaded machine.
        output, _ = service.communicate(timeout=30)
    finally:
        service.kill()
    assert service.returncode == 0, output
    assert "source=quick status=ok http=200 new=1 updated=0" in output
    assert "Traceback" not in output
    with engine.connect() as connection:
        stalled_row = connection.execute(sa.select(sources).where(sources.c.key == "stalled")).one()
        runs = connection.execute(sa.select(collection_runs.c.source_id)).scalars().all()
    # The stalled source was handed back untouched: no run, no lease, still due.
    assert stalled_row.id not in runs
    assert (stalled_row.leased_by, stalled_row.status) == (None, "new")
    engine.dispose()


@pytest.mark.slow
def test_second_service_on_one_sqlite_file_refuses_to_start(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.add("/a.xml", body=one_entry_feed(1))
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}", FAST + feed_source(url))
    first = start_service(config)
    try:
        assert wait_for(lambda: len(feed_server.requests_to("/a.xml")) == 1, 20)
        second = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=15)
    assert second.returncode == 2
    assert "another 'omvarld run' is already using" in second.stderr
    assert "use PostgreSQL" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.slow
def test_three_workers_collect_each_source_exactly_once_though_one_is_killed(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share PostgreSQL; SQLite refuses a second one (tested above)")
    total = 300
    body = FAST.replace("[collect]", "[collect]\nconcurrency = 8\nper_host = 8")
    for number in range(total):
        # A little latency per feed, so the pass lasts long enough to kill a worker inside it.
        url = feed_server.add(f"/k{number}.xml", body=one_entry_feed(number), stall_seconds=0.05)
        body += feed_source(url, f"Kommun {number}", key=f"kommun-{number}")
    config = write_config(tmp_path, database_url, body)
    upgrade(config)
    engine = make_engine(database_url)
    count_runs = sa.select(sa.func.count()).select_from(collection_runs)

    workers = [start_service(config) for _ in range(3)]
    try:
        assert wait_for(lambda: scalar(engine, count_runs) >= 30, 30)
        os.kill(workers[0].pid, signal.SIGKILL)  # mid-pass: its pid is gone, its leases move on
        assert wait_for(
            lambda: (
                scalar(engine, sa.select(sa.func.count(sa.distinct(collection_runs.c.source_id))))
                == total
            ),
            60,
        )
        time.sleep(2)  # anything doubled would land now
    finally:
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=20)[0] for worker in workers[1:]]
        workers[0].wait(timeout=5)
    assert [w.returncode for w in workers[1:]] == [0, 0], outputs
    with engine.connect() as connection:
        per_source = connection.execute(
            sa.select(collection_runs.c.source_id, sa.func.count())
            .where(collection_runs.c.status == "ok")
            .group_by(collection_runs.c.source_id)
        ).all()
        stored_posts = connection.execute(
            sa.select(sa.func.count()).select_from(posts)
        ).scalar_one()
        leased = connection.execute(
            sa.select(sa.func.count()).select_from(sources).where(sources.c.leased_by.is_not(None))
        ).scalar_one()
    assert len(per_source) == total and {count for _, count in per_source} == {1}
    assert stored_posts == total
    assert leased == 0
    engine.dispose()


def test_digest_sends_are_scheduled_per_recipient_send_time(tmp_path: Path) -> None:
    from monitor.config import ConfigError, load_config
    from monitor.service import group_recipients_by_schedule

    body = """
[digest]
schedule = "mon 07:00"

[[recipients]]
email = "a@katrineholm.se"

[[recipients]]
email = "b@flen.se"
schedule = "tue 08:30"

[[recipients]]
email = "c@vingaker.se"
"""
    config = load_config(write_config(tmp_path, "sqlite:///x.db", body))
    assert group_recipients_by_schedule(config) == {
        "mon 07:00": ("a@katrineholm.se", "c@vingaker.se"),
        "tue 08:30": ("b@flen.se",),
    }
    bad = write_config(tmp_path, "sqlite:///x.db", body.replace("tue 08:30", "tisdag 8"))
    with pytest.raises(ConfigError) as error:
        load_config(bad)
    assert str(error.value) == (
        f'{bad}:13: recipients[2].schedule: expected a weekday and time like "mon 07:00",'
        " got 'tisdag 8'"
    )


def test_failed_digests_of_last_week_are_retried_and_sent_ones_left_alone(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    from datetime import UTC, datetime

    from digest.archive import claim_digest, list_digests, record_outcome
    from digest.model import Week
    from monitor.config import load_config
    from monitor.service import retry_failed_digests

    body = """
[digest]
outbox = "outbox"
max_attempts = 3

[[recipients]]
email = "anna@katrineholm.se"
skip_empty = false  # no posts collected here: the digest still goes out

[[recipients]]
email = "bo@flen.se"

[[recipients]]
email = "cilla@vingaker.se"
"""
    config = load_config(write_config(tmp_path, database_url, body))
    now = datetime.now(UTC)
    week = str(Week.previous(now, config.digest.timezone))
    for email, status, attempts in [
        ("anna@katrineholm.se", "failed", 1),  # the relay was down at 07:00
        ("bo@flen.se", "sent", 1),
        ("cilla@vingaker.se", "failed", 3),  # refused three times: left for a person
    ]:
        claim = claim_digest(engine, email, week, now)
        assert claim is not None
        record_outcome(engine, claim, status, now, "451 try later" if status == "failed" else None)
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE digests SET attempts = {attempts}"
                                       f" WHERE recipient = '{email}'"))  # fmt: skip

    retry_failed_digests(config, engine)

    rows = {r.recipient: (r.status, r.attempts) for r in list_digests(engine, week)}
    assert rows == {
        "anna@katrineholm.se": ("sent", 2),
        "bo@flen.se": ("sent", 1),
        "cilla@vingaker.se": ("failed", 3),
    }
    outbox = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert [name for name in outbox if name.endswith(".eml")] == [f"{week}-anna@katrineholm.se.eml"]


def test_the_scheduled_digest_is_mailed_through_smtp_even_with_an_outbox_set(
    tmp_path: Path, database_url: str, engine: Engine, smtp: Server
) -> None:
    """The example config sets `[digest] outbox` and `[smtp]`: Monday's digests must be mailed,
    as `digest send` mails them, not left as files nobody receives."""
    from datetime import UTC, datetime

    from digest.archive import list_digests
    from digest.model import Week
    from monitor.config import load_config
    from monitor.service import _send_digests

    body = f"""
[digest]
outbox = "outbox"

[smtp]
host = "127.0.0.1"
port = {smtp.settings.port}
security = "none"
timeout = 5

[[recipients]]
email = "anna@katrineholm.se"
skip_empty = false  # no posts collected here: the digest still goes out
"""
    config = load_config(write_config(tmp_path, database_url, body))
    now = datetime.now(UTC)

    _send_digests(config, engine, ("anna@katrineholm.se",), now)

    [message] = smtp.mailbox.received
    assert message["To"].addresses[0].addr_spec == "anna@katrineholm.se"
    week = str(Week.previous(now, config.digest.timezone))
    assert [(r.recipient, r.status) for r in list_digests(engine, week)] == [
        ("anna@katrineholm.se", "sent")
    ]
    assert not (tmp_path / "outbox").exists()
