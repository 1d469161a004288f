"""Which unfinished passes an alert round takes over (`pick_abandoned`), with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.alerts.store import PassRecord, pick_abandoned

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def record(number: int, worker: str, minutes_ago: float) -> PassRecord:
    return PassRecord(number, worker, NOW - timedelta(minutes=minutes_ago))


def test_a_round_takes_its_own_passes_the_gone_and_the_idle_elsewhere_oldest_first() -> None:
    records = [
        record(1, "here:10:1", 0),  # this round's own pass
        record(2, "here:10:1", 5),  # an earlier tick of this worker whose round failed
        record(3, "here:20:1", 1),  # a process on this host that is gone
        record(4, "here:30:1", 30),  # a live process on this host, however old its pass
        record(5, "there:40:1", 3),  # another host, no lease held, started 3 minutes ago
        record(6, "there:50:1", 0.5),  # another host, no lease, but within a lease of its start
        record(7, "there:60:1", 10),  # another host holding leases: still collecting
    ]
    taken = pick_abandoned(
        records, "here:10:1", {"here:20:1"}, {"there:40:1", "there:50:1"}, NOW, LEASE
    )
    assert [r.id for r in taken] == [2, 5, 3, 1]
