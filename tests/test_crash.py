"""A crash or a full disk costs only the work in flight: `omvarld collect` and `omvarld run` as
real processes, SIGKILLed mid-pass, on a disk that fills up, and with a database refusing
writes; afterwards no source stays locked and no child process lives on."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import make_engine
from monitor.models import collection_runs, sources
from tests.conftest import feed_source, scalar, wait_for, write_config
from tests.feedserver import FeedServer, Route

OMVARLD = [sys.executable, "-m", "monitor"]
# Stalled feeds answer after this long: far beyond any test, so a pass stays mid-flight.
STALL_SECONDS = 60.0


def feed(number: int, items: int = 1) -> bytes:
    entries = "".join(
        f"<item><guid>nyhet-{number}-{i}</guid><title>Nyhet {i} från kommun {number}</title>"
        f"<description>{'Kommunen informerar om vägarbeten och översvämning. ' * 20}"
        "</description><pubDate>Mon, 30 Nov 2026 08:00:00 +0100</pubDate></item>"
        for i in range(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Kommun {number}</title>{entries}</channel></rss>"
    ).encode()


class Feeds:
    """Feeds `kommun-0` … on a loopback server; those named in `stalled` hang until removed."""

    def __init__(self, server: FeedServer, count: int, items: int = 1) -> None:
        self.stalled: set[int] = set()
        self._lock = threading.Lock()
        self.config = ""
        for number in range(count):
            url = server.add_handler(f"/k{number}.xml", self._handler(number, feed(number, items)))
            self.config += feed_source(url, f"Kommun {number}", key=f"kommun-{number}")

    def _handler(self, number: int, body: bytes) -> Callable[..., Route]:
        def answer(_request: object) -> Route:
            with self._lock:
                stall = STALL_SECONDS if number in self.stalled else 0.0
            return Route(body=body, stall_seconds=stall)

        return answer

    def stall(self, numbers: range | set[int]) -> None:
        with self._lock:
            self.stalled = set(numbers)


def prepare(directory: Path, database_url: str, body: str) -> Path:
    """A config of `body` on the database, its schema made as an admin would."""
    config = write_config(directory, database_url, body)
    done = omvarld(config, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return config


def omvarld(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OMVARLD, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"COLUMNS": "200"},
    )


def start(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`omvarld` in a session of its own, so a test can SIGKILL it with all its children."""
    return subprocess.Popen(
        [*OMVARLD, "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=os.environ | {"COLUMNS": "200"} | (env or {}),
    )


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the process and everything in its session, as `kill -9 -PGID` does."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)


def leased(engine: Engine) -> int:
    return scalar(
        engine,
        sa.select(sa.func.count()).select_from(sources).where(sources.c.leased_by.is_not(None)),
    )


@pytest.fixture
def database(database_url: str) -> Iterator[Engine]:
    """The test's database as the CLI will open it (schema made by `db upgrade` in the test)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def summary_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if re.match(r"\d+ sources?: ", line)]
    return line


# ------------------------------------------------------------------------ 1. a database that fails


def can_mount_tmpfs() -> str | None:
    """Why a private tmpfs cannot be mounted here, or None if it can."""
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m none /mnt"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a user namespace: {probe.stderr.strip()}"
    return None


def test_a_full_disk_fails_every_source_exits_one_and_locks_none(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    reason = can_mount_tmpfs()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    feeds = Feeds(feed_server, 200, items=30)  # about 30 kB of posts a source: 2 MB fill fast
    disk = tmp_path / "disk"
    disk.mkdir()
    config = write_config(tmp_path, f"sqlite:///{disk / 'omvarld.db'}", feeds.config)
    saved = tmp_path / "saved.db"
    # In a mount namespace of its own, so the 2 MB tmpfs is private to this run and vanishes
    # with it; the database is copied out (with SQLite's backup, WAL included) to look at.
    script = (
        'mount -t tmpfs -o size=2m none "$1" && "$2" -m monitor --config "$3" db upgrade'
        ' && "$2" -m monitor --config "$3" collect --all; echo "exit=$?";'
        ' "$2" -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup('
        'sqlite3.connect(sys.argv[2]))" "$1/omvarld.db" "$4"'
    )
    run = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(disk), sys.executable, str(config),
         str(saved)],
        capture_output=True, text=True, timeout=300, env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip

    assert "exit=1" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    summary = summary_line(run.stdout)
    failed = int(re.search(r"(\d+) failed", summary).group(1))  # type: ignore[union-attr]
    assert summary.startswith("200 sources: ") and failed >= 100, summary  # every source listed
    full = re.findall(r"^kommun-\d+: failed: could not store posts: database or disk is full$",
                      run.stdout, re.MULTILINE)  # fmt: skip
    assert len(full) == failed
    assert "Traceback" not in run.stderr and "never retrieved" not in run.stderr, run.stderr

    # The leases the full disk kept from being given back do not lock the sources: their
    # holder is gone, so the next collection (on a disk with room) takes them at once.
    again = omvarld(write_config(tmp_path, f"sqlite:///{saved}", feeds.config), "collect", "--all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "being collected" not in again.stdout
    assert summary_line(again.stdout).startswith("200 sources: ")
    assert summary_line(again.stdout).endswith(" 0 failed")


def with_full_temporary_directory(
    directory: Path, config: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`omvarld ARGS` with SQLite's temporary directory on a 16 kB tmpfs, filled, mounted in a
    mount namespace of its own; stdout's first line is `df`'s of that directory."""
    reason = can_mount_tmpfs()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    directory.mkdir()
    script = (
        'mount -t tmpfs -o size=16k none "$1" && head -c 16384 /dev/zero > "$1/fill";'
        ' df -k "$1" | tail -n 1; dir="$1" python="$2"; shift 2;'
        ' SQLITE_TMPDIR="$dir" "$python" -m monitor "$@"'
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(directory), sys.executable,
         "--config", str(config), *args],
        capture_output=True, text=True, timeout=300, env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip


def test_a_full_temporary_directory_does_not_stop_a_collection(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """SQLite spills a statement's journal to its temporary directory past 64 KiB; a batch of
    posts keeps its journals in memory (monitor.db.begin_batch), so a full /tmp, which an
    operator may not even know the database uses, fails no source."""
    feeds = Feeds(feed_server, 100, items=30)
    config = prepare(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}", feeds.config)

    run = with_full_temporary_directory(tmp_path / "tmp", config, "collect", "--all")

    assert " 100% " in run.stdout.splitlines()[0], run.stdout  # the directory was full
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert summary_line(run.stdout) == (
        "100 sources: 3000 new, 0 updated, 0 unchanged posts; 0 not modified, 0 failed"
    )


def test_a_full_temporary_directory_does_not_stop_the_sync_of_a_large_config(
    tmp_path: Path,
) -> None:
    """Every command first writes the config's sources into the database: 2,000 of them in
    one statement's journal spilled to /tmp, and a full one failed even a search."""
    body = "".join(
        feed_source(f"http://127.0.0.1:9/k{n}.xml", f"Kommun {n}", key=f"kommun-{n}")
        for n in range(2000)
    )
    config = prepare(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}", body)

    run = with_full_temporary_directory(tmp_path / "tmp", config, "posts", "search", "skola")

    assert " 100% " in run.stdout.splitlines()[0], run.stdout
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "disk is full" not in run.stdout + run.stderr


REFUSE_SQLITE = """
CREATE TRIGGER refuse_runs BEFORE INSERT ON collection_runs
BEGIN SELECT RAISE(ABORT, 'collection_runs is refusing writes'); END
"""
REFUSE_POSTGRESQL = [
    """
    CREATE FUNCTION refuse_runs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'collection_runs is refusing writes'; END $$
    """,
    "CREATE TRIGGER refuse_runs BEFORE INSERT ON collection_runs"
    " FOR EACH ROW EXECUTE FUNCTION refuse_runs()",
]


def test_a_database_that_refuses_even_the_failure_fails_every_source_and_gives_leases_back(
    tmp_path: Path, database_url: str, database: Engine, feed_server: FeedServer
) -> None:
    feeds = Feeds(feed_server, 20)  # past the process-pool threshold, as in production
    config = prepare(tmp_path, database_url, feeds.config)
    with database.begin() as connection:
        statements = REFUSE_SQLITE if database.dialect.name == "sqlite" else REFUSE_POSTGRESQL
        for statement in [statements] if isinstance(statements, str) else statements:
            connection.execute(sa.text(statement))

    result = omvarld(config, "collect", "--all")

    assert result.returncode == 1, result.stdout + result.stderr
    assert summary_line(result.stdout) == (
        "20 sources: 0 new, 0 updated, 0 unchanged posts; 0 not modified, 20 failed"
    )
    errors = [line for line in result.stdout.splitlines() if ": failed: " in line]
    assert len(errors) == 20
    assert all("could not store posts: " in line for line in errors)
    assert all("collection_runs is refusing writes" in line for line in errors)
    # The failures are in the summary; stderr holds no empty line (a progress bar's, in a pipe).
    assert "" not in result.stderr.splitlines(), result.stderr
    assert leased(database) == 0  # the leases could be written, so they were given back
    assert scalar(database, sa.select(sa.func.count()).select_from(collection_runs)) == 0


# ----------------------------------------------------------------------- 2. a collection killed


def start_stalled_collect(
    directory: Path, database_url: str, database: Engine, server: FeedServer
) -> tuple[Feeds, Path, subprocess.Popen[str]]:
    """`collect --all` of 20 feeds, all leased and hanging: it is mid-pass."""
    feeds = Feeds(server, 20)
    config = prepare(directory, database_url, feeds.config)
    feeds.stall(range(20))
    collect = start(config, "collect", "--all")
    try:
        assert wait_for(lambda: leased(database) == 20, 30)
        assert wait_for(lambda: len(server.requests_to("/k0.xml")) == 1, 10)
    except BaseException:
        kill_group(collect)
        raise
    return feeds, config, collect


def test_a_sigkilled_collect_locks_nothing(
    tmp_path: Path, database_url: str, database: Engine, feed_server: FeedServer
) -> None:
    feeds, config, first = start_stalled_collect(tmp_path, database_url, database, feed_server)
    kill_group(first)
    feeds.stall(set())

    status = omvarld(config, "status")
    assert status.stdout.splitlines()[-1].endswith("; 20 due now"), status.stdout
    one = omvarld(config, "collect", "--source", "kommun-3")
    assert one.returncode == 0, one.stdout + one.stderr
    assert summary_line(one.stdout).startswith("1 source: 1 new")
    again = omvarld(config, "collect", "--all")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "being collected" not in again.stdout
    assert summary_line(again.stdout).startswith("20 sources: 19 new")
    assert leased(database) == 0


def test_a_live_collection_is_named_left_alone_and_overridden_only_by_source(
    tmp_path: Path, database_url: str, database: Engine, feed_server: FeedServer
) -> None:
    feeds, config, first = start_stalled_collect(tmp_path, database_url, database, feed_server)
    try:
        feeds.stall(range(1, 20))  # kommun-0's first request hangs; another one would not

        second = omvarld(config, "collect", "--all")
        status = omvarld(config, "status")
        taken = omvarld(config, "collect", "--source", "kommun-0")
    finally:
        kill_group(first)

    held = re.compile(
        rf"^20 sources are being collected by host {re.escape(socket.gethostname())}, "
        rf"pid {first.pid} \(running since \d{{4}}-\d\d-\d\d \d\d:\d\d\); left to it\.$"
    )
    assert held.match(second.stdout.splitlines()[0]), second.stdout
    assert "Nothing is due" not in second.stdout and "Use --all" not in second.stdout
    assert second.returncode == 0
    assert status.stdout.splitlines()[-1].endswith("; 0 due now")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert summary_line(taken.stdout).startswith("1 source: 1 new")


def test_nothing_to_collect_says_why_instead_of_suggesting_all(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    config = prepare(tmp_path, database_url, "")
    empty = omvarld(config, "collect", "--all")
    assert empty.returncode == 0
    assert empty.stdout.splitlines()[0] == (
        "Nothing to collect: no active, enabled sources (see `omvarld sources list`)."
    )


# ------------------------------------------------------- 2. workers on other hosts (PostgreSQL)


def start_elsewhere(config: Path, host: str) -> subprocess.Popen[str]:
    """`omvarld run` as if on another machine: its own UTS namespace names another host, so
    this host cannot see whether it lives and must trust its lease."""
    command = ["unshare", "-ru", "sh", "-c", 'hostname "$1" && shift && exec "$@"', "sh", host]
    return subprocess.Popen(
        [*command, *OMVARLD, "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_another_hosts_worker_keeps_its_sources_while_it_beats_and_loses_them_when_killed(
    tmp_path: Path, database_url: str, database: Engine, feed_server: FeedServer
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("workers on several hosts share PostgreSQL; SQLite serves one process")
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to give a worker a host name of its own")
    feeds = Feeds(feed_server, 4)
    lease = 3
    fast = (
        f'[collect]\nper_host = 8\ntick = 1\nlease = {lease}\ninterval = "1d"\nmin_interval = 1\n'
    )
    config = prepare(tmp_path, database_url, fast + feeds.config)
    feeds.stall(range(4))
    remote = start_elsewhere(config, "omvarld-elsewhere")
    local: subprocess.Popen[str] | None = None
    try:
        held_by_remote = (
            sa.select(sa.func.count())
            .select_from(sources)
            .where(sources.c.leased_by.like("omvarld-elsewhere:%"))
        )
        assert wait_for(lambda: scalar(database, held_by_remote) == 4, 30), remote.stdout
        local = start(config, "run")
        # Three leases long: without the heartbeat the local worker would take them over.
        time.sleep(3 * lease)
        assert [len(feed_server.requests_to(f"/k{n}.xml")) for n in range(4)] == [1, 1, 1, 1]
        busy = omvarld(config, "collect", "--all")
        assert busy.stdout.startswith(
            "4 sources are being collected by host omvarld-elsewhere, pid "
        ), busy.stdout
        assert "(lease renewed until " in busy.stdout

        feeds.stall(set())
        kill_group(remote)  # its leases run out within one lease; the local worker takes over
        ok_runs = sa.select(sa.func.count(sa.distinct(collection_runs.c.source_id))).where(
            collection_runs.c.status == "ok"
        )
        assert wait_for(lambda: scalar(database, ok_runs) == 4, 3 * lease + 10)
    finally:
        kill_group(remote)
        if local is not None:
            local.send_signal(signal.SIGTERM)
            local.communicate(timeout=20)
    assert leased(database) == 0


def test_a_sigkilled_run_workers_sources_are_taken_over_at_once_by_another_worker(
    tmp_path: Path, database_url: str, database: Engine, feed_server: FeedServer
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share PostgreSQL; SQLite serves one process")
    feeds = Feeds(feed_server, 10)
    # A long lease: only seeing that the holder is gone can hand its sources on in time.
    slow = '[collect]\ntick = 1\nlease = "10m"\ninterval = "1d"\nmin_interval = 1\n'
    config = prepare(tmp_path, database_url, slow + feeds.config)
    feeds.stall(range(10))
    first = start(config, "run")
    second: subprocess.Popen[str] | None = None
    try:
        assert wait_for(lambda: leased(database) == 10, 30)
        kill_group(first)
        feeds.stall(set())
        second = start(config, "run")
        ok_runs = sa.select(sa.func.count(sa.distinct(collection_runs.c.source_id))).where(
            collection_runs.c.status == "ok"
        )
        assert wait_for(lambda: scalar(database, ok_runs) == 10, 30)
    finally:
        kill_group(first)
        if second is not None:
            second.send_signal(signal.SIGTERM)
            output, _ = second.communicate(timeout=20)
    assert second.returncode == 0, output
    assert leased(database) == 0


# ------------------------------------------------------------------- 3. no orphaned processes


def marked_processes(marker: str) -> list[int]:
    """Processes whose environment carries `marker`: everything a test's command started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_a_sigkilled_collect_leaves_no_forkserver_or_pool_worker_behind(
    tmp_path: Path, database_url: str, database: Engine, feed_server: FeedServer
) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc to find the children by")
    feeds = Feeds(feed_server, 20)  # the pool starts at 16 sources
    # All in flight at once: stalled feeds must not hold the only connections to the server.
    config = prepare(tmp_path, database_url, "[collect]\nper_host = 32\n" + feeds.config)
    feeds.stall(range(10, 20))  # half are parsed (the pool starts), half keep the pass going
    marker = f"OMVARLD_TEST_MARK={uuid.uuid4().hex}"
    name, value = marker.split("=")
    collect = start(config, "collect", "--all", env={name: value})
    runs = sa.select(sa.func.count()).select_from(collection_runs)
    try:
        assert wait_for(lambda: scalar(database, runs) >= 10, 30)
        children = [pid for pid in marked_processes(marker) if pid != collect.pid]
        assert len(children) >= 2, "the process pool should have started"  # server + workers
        os.kill(collect.pid, signal.SIGKILL)  # the parent only: its children are on their own
        collect.communicate(timeout=10)
        survived = wait_for(lambda: not marked_processes(marker), 5)
        left = marked_processes(marker)
    finally:
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)
    assert survived, f"children of a SIGKILLed collect still running: {left}"


def forkservers(marker: str) -> list[int]:
    """The parse forkservers among the processes a test's command started."""
    found = []
    for pid in marked_processes(marker):
        with contextlib.suppress(OSError):
            if b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


@pytest.mark.parametrize(("sources", "servers"), [(20, 1), (3, 0)])
def test_the_parse_server_starts_before_the_first_feed_arrives_only_for_many_sources(
    tmp_path: Path, database_url: str, feed_server: FeedServer, sources: int, servers: int
) -> None:
    # Its start-up (Python and the parsers' imports) overlaps the collecting process's own;
    # below 16 sources a pass parses in threads, and starts no process.
    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc to find the children by")
    feeds = Feeds(feed_server, sources)
    config = prepare(tmp_path, database_url, "[collect]\nper_host = 32\n" + feeds.config)
    feeds.stall(range(sources))  # no feed answers: nothing is parsed while we look
    marker = f"OMVARLD_TEST_MARK={uuid.uuid4().hex}"
    name, value = marker.split("=")
    collect = start(config, "collect", "--all", env={name: value})
    try:
        paths = [f"/k{number}.xml" for number in range(sources)]
        assert wait_for(lambda: all(feed_server.requests_to(p) for p in paths), 30)
        time.sleep(0.5)  # a forkserver started with the pass would be up by now
        assert len(forkservers(marker)) == servers
    finally:
        kill_group(collect)
        for pid in marked_processes(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# ------------------------------------------------ 4. alerts: a crash loses none, leaves nothing


def test_a_collect_killed_between_storing_and_alerting_loses_no_alert(
    tmp_path: Path, database_url: str, database: Engine, feed_server: FeedServer
) -> None:
    from monitor.models import alert_events, alert_passes, posts
    from tests.webhookserver import WebhookReceiver

    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc to find the children by")
    feeds = Feeds(feed_server, 2)
    with WebhookReceiver() as hook:
        rule = (
            '\n[alerting]\nmax_age = "365d"\n'
            '\n[[alerts]]\nname = "Översvämning"\nquery = "översvämning"\n'
            f'notify = ["{hook.apprise_url()}"]\n'
        )
        config = prepare(tmp_path, database_url, feeds.config + rule)
        feeds.stall({1})  # kommun-0 is stored while kommun-1 keeps the pass from its alerts
        marker = f"OMVARLD_TEST_MARK={uuid.uuid4().hex}"
        name, value = marker.split("=")
        collect = start(config, "collect", "--all", env={name: value})
        stored = sa.select(sa.func.count()).select_from(posts)
        try:
            assert wait_for(lambda: scalar(database, stored) == 1, 30)
            # The parent only, as the kernel's OOM killer would: the delivery process it
            # started must notice and go too.
            os.kill(collect.pid, signal.SIGKILL)
            collect.communicate(timeout=10)
            assert wait_for(lambda: marked_processes(marker) == [], 10), marked_processes(marker)
        finally:
            kill_group(collect)
        assert hook.messages() == []
        assert scalar(database, sa.select(sa.func.count()).select_from(alert_passes)) == 1

        feeds.stall(set())
        again = omvarld(config, "collect", "--all")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Alerts: 1 sent, 0 failed" in again.stdout, again.stdout
        (message,) = hook.messages()
    # kommun-0's post was not new to this pass: the killed pass's record brought it in.
    assert message["title"] == "Översvämning: 2 nya inlägg"
    assert "från kommun 0" in message["message"] and "från kommun 1" in message["message"]
    assert scalar(database, sa.select(sa.func.count()).select_from(alert_passes)) == 0
    assert scalar(database, sa.select(sa.func.count()).select_from(alert_events)) == 2
