"""Leases: several workers share one database without collecting a slot twice."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import collection_runs, posts, sources
from monitor.schedule import SchedulePolicy
from monitor.sources import (
    claim_sources,
    count_due_sources,
    find_lease_holders,
    release_leases,
    renew_leases,
)
from monitor.store import Attempt, record_attempt
from monitor.types import CollectResult, CollectStatus, PostData
from monitor.workers import make_worker_id, read_start_ticks

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def add_sources(engine: Engine, count: int, *, due_in: timedelta = -timedelta(minutes=1)) -> None:
    with engine.begin() as connection:
        connection.execute(
            sources.insert(),
            [
                {
                    "key": f"feed:example.se/{i}", "platform": "feed",
                    "url": f"https://example.se/{i}", "organisation": "Exempel",
                    "groups": [], "cursor": {}, "status": "ok", "consecutive_failures": 0,
                    "active": True, "enabled": True, "created_at": NOW, "updated_at": NOW,
                    "next_check_at": NOW + due_in - timedelta(seconds=i),
                }
                for i in range(count)
            ],
        )  # fmt: skip


def test_a_claimed_source_is_not_claimed_again_until_its_lease_runs_out(engine: Engine) -> None:
    add_sources(engine, 5)
    first = claim_sources(engine, now=NOW, worker="a", lease=LEASE, limit=3)
    second = claim_sources(engine, now=NOW, worker="b", lease=LEASE)
    assert len(first) == 3 and len(second) == 2
    assert not {r.key for r in first} & {r.key for r in second}
    assert claim_sources(engine, now=NOW, worker="c", lease=LEASE) == []
    later = claim_sources(engine, now=NOW + LEASE + timedelta(seconds=1), worker="c", lease=LEASE)
    assert len(later) == 5  # a dead worker's leases expire and are taken over


def test_the_most_overdue_sources_are_claimed_first(engine: Engine) -> None:
    add_sources(engine, 10)
    claimed = claim_sources(engine, now=NOW, worker="a", lease=LEASE, limit=2)
    assert sorted(r.key for r in claimed) == ["feed:example.se/8", "feed:example.se/9"]


def test_sources_not_yet_due_are_left_alone(engine: Engine) -> None:
    add_sources(engine, 3, due_in=timedelta(hours=1))
    assert claim_sources(engine, now=NOW, worker="a", lease=LEASE) == []
    assert count_due_sources(engine, NOW) == 0
    assert len(claim_sources(engine, now=NOW, worker="a", lease=LEASE, everything=True)) == 3


def test_a_worker_that_lost_its_lease_stores_nothing(engine: Engine) -> None:
    add_sources(engine, 1)
    (mine,) = claim_sources(engine, now=NOW, worker="slow", lease=LEASE)
    expired = NOW + LEASE + timedelta(seconds=1)
    (theirs,) = claim_sources(engine, now=expired, worker="fast", lease=LEASE)
    result = CollectResult(
        CollectStatus.OK, posts=(PostData(platform_post_id="1", kind="article", published_at=NOW),)
    )
    late = record_attempt(engine, Attempt(mine.id, NOW, expired, SchedulePolicy(), "slow"), result)
    assert late.status is CollectStatus.FAILED and late.error and "lease" in late.error
    stored = record_attempt(
        engine, Attempt(theirs.id, expired, expired, SchedulePolicy(), "fast"), result
    )
    assert stored.counts.new == 1
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(collection_runs)).scalar_one()
            == 1
        )
        assert connection.execute(sa.select(sa.func.count()).select_from(posts)).scalar_one() == 1
        row = connection.execute(sa.select(sources)).one()
    assert (row.leased_by, row.leased_until) == (None, None)


def test_released_sources_are_due_again_at_once(engine: Engine) -> None:
    add_sources(engine, 2)
    claimed = claim_sources(engine, now=NOW, worker="a", lease=LEASE)
    release_leases(engine, [r.id for r in claimed], "a")
    assert count_due_sources(engine, NOW) == 2
    assert len(claim_sources(engine, now=NOW, worker="b", lease=LEASE)) == 2


def hold(engine: Engine, worker: str, until: datetime) -> None:
    """Every source leased to `worker` until then, as a worker that claimed them leaves it."""
    with engine.begin() as connection:
        connection.execute(sources.update().values(leased_by=worker, leased_until=until))


def exited_pid() -> int:
    """The pid of a process that has just ended."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_leases_of_a_process_on_this_host_that_is_gone_are_taken_at_once(engine: Engine) -> None:
    add_sources(engine, 3)
    host = socket.gethostname()
    hold(engine, f"{host}:{exited_pid()}:12345", NOW + LEASE)
    assert count_due_sources(engine, NOW) == 3
    assert find_lease_holders(engine, now=NOW, worker="b") == []
    assert len(claim_sources(engine, now=NOW, worker="b", lease=LEASE)) == 3


def test_a_pid_now_used_by_another_process_does_not_keep_a_lease(engine: Engine) -> None:
    add_sources(engine, 2)
    started = read_start_ticks(os.getpid())
    assert started is not None
    # This very pid, but a process that started at another moment: the holder is gone.
    hold(engine, f"{socket.gethostname()}:{os.getpid()}:{started - 1}", NOW + LEASE)
    assert len(claim_sources(engine, now=NOW, worker="b", lease=LEASE)) == 2


def test_a_live_holder_keeps_its_leases_and_is_named(engine: Engine) -> None:
    add_sources(engine, 2)
    hold(engine, make_worker_id(), NOW + LEASE)  # this process: alive
    assert claim_sources(engine, now=NOW, worker="b", lease=LEASE) == []
    assert count_due_sources(engine, NOW) == 0
    (holder,) = find_lease_holders(engine, now=NOW, worker="b")
    assert (holder.worker, holder.sources, holder.until) == (make_worker_id(), 2, NOW + LEASE)


def test_another_hosts_lease_holds_until_it_runs_out_unless_renewed(engine: Engine) -> None:
    add_sources(engine, 2)
    elsewhere = "db-worker-2.example.se:4242:99"  # this host cannot tell whether it lives
    hold(engine, elsewhere, NOW + timedelta(minutes=1))
    later = NOW + timedelta(seconds=90)
    assert claim_sources(engine, now=NOW, worker="b", lease=LEASE) == []
    assert renew_leases(engine, elsewhere, later + timedelta(minutes=1)) == 2  # its heartbeat
    assert claim_sources(engine, now=later, worker="b", lease=LEASE) == []
    after = later + timedelta(minutes=1, seconds=1)  # it stopped beating: its sources return
    assert len(claim_sources(engine, now=after, worker="b", lease=LEASE)) == 2


def test_named_sources_are_taken_even_from_a_live_holder(engine: Engine) -> None:
    add_sources(engine, 2)
    hold(engine, make_worker_id(), NOW + LEASE)
    (taken,) = claim_sources(engine, now=NOW, worker="b", lease=LEASE, keys=["feed:example.se/1"])
    assert taken.key == "feed:example.se/1"
    (holder,) = find_lease_holders(engine, now=NOW, worker="b", everything=True)
    assert holder.sources == 1
