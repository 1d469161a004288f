"""Who holds a lease, and whether that process still runs. Contains no business logic.

A worker is named `host:pid:start`, where start is the process's start time in clock ticks
since boot (field 22 of /proc/<pid>/stat). The pid alone is not enough: once a process is gone
its pid is handed out again, and a lease must not stay locked by a stranger that happens to get
it. Only the host that runs a process can tell whether it is gone; other hosts' leases are short
and renewed while their holder works (see `monitor.collect`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

# /proc/<pid>/stat: fields after the command name (which may hold spaces and parentheses)
# start at field 3; the start time is field 22.
_START_FIELD = 22 - 3


def read_start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot; None if there is no such process
    (or no /proc to ask)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[_START_FIELD])


@cache
def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text(encoding="ascii").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class Worker:
    """A process that can hold leases: its host, pid and start."""

    host: str
    pid: int
    start_ticks: int | None = None  # None: unknown (no /proc, or a name from an older version)

    @classmethod
    def current(cls) -> Worker:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, read_start_ticks(pid))

    @classmethod
    def parse(cls, name: str) -> Worker | None:
        """The worker a `leased_by` value names, or None if it names none."""
        host, _, rest = name.partition(":")
        pid, _, start = rest.partition(":")
        if not (host and pid.isdigit() and (start.isdigit() or not start)):
            return None
        return cls(host, int(pid), int(start) if start else None)

    def __str__(self) -> str:
        start = "" if self.start_ticks is None else f":{self.start_ticks}"
        return f"{self.host}:{self.pid}{start}"

    @property
    def is_local(self) -> bool:
        return self.host == socket.gethostname()

    def is_gone(self) -> bool:
        """True only when this process is on this host and certainly no longer runs: its pid is
        free or belongs to a process that started at another time."""
        if not self.is_local:
            return False
        if not Path("/proc").is_dir():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False
        started = read_start_ticks(self.pid)
        return started is None or (self.start_ticks is not None and started != self.start_ticks)

    def started_at(self) -> datetime | None:
        """When the process started, for people; known only on its own host."""
        boot = _boot_time()
        if not self.is_local or self.start_ticks is None or boot is None:
            return None
        return datetime.fromtimestamp(boot + self.start_ticks / os.sysconf("SC_CLK_TCK"), UTC)


def make_worker_id() -> str:
    """This process as a lease holder (`host:pid:start`), so an admin can tell workers apart
    and a dead one's leases can be told from a live one's."""
    return str(Worker.current())


def find_gone(names: list[str]) -> list[str]:
    """The `leased_by` values among `names` whose processes ran on this host and are gone."""
    gone = []
    for name in names:
        worker = Worker.parse(name)
        if worker is not None and worker.is_gone():
            gone.append(name)
    return gone
