"""SQLite's WAL copied into the database beside a collection's writer (monitor/checkpoints.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.checkpoints import CHECKPOINT_PAGES, POLL_SECONDS, checkpointing, read_log
from monitor.db import SQLITE_CHECKPOINT_PAGES, SQLITE_PAGE_SIZE, make_engine

# Enough pages to start a background checkpoint, too few for the writer's own.
ROWS = 40
ROW_BYTES = (CHECKPOINT_PAGES + 500) * SQLITE_PAGE_SIZE // ROWS
assert CHECKPOINT_PAGES + 500 < SQLITE_CHECKPOINT_PAGES


def _write(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS blobs (data BLOB)")
    for _ in range(ROWS):  # a transaction each, as a collection's batches
        with engine.begin() as connection:
            connection.exec_driver_sql(f"INSERT INTO blobs VALUES (randomblob({ROW_BYTES}))")


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "omvarld-checkpoint"]


def test_the_log_reaches_the_database_while_the_writer_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor.checkpoints")  # why the thread stopped
    database = tmp_path / "omvarld.db"
    engine = make_engine(f"sqlite:///{database}")
    with checkpointing(engine):
        _write(engine)
        # The writer checkpoints only past SQLITE_CHECKPOINT_PAGES: what is copied was copied
        # by the thread, and the database file holds the rows, not only the log.
        copied = _wait_for(lambda: database.stat().st_size >= CHECKPOINT_PAGES * SQLITE_PAGE_SIZE)
        assert copied, (read_log(database), caplog.text)
    assert not _checkpoint_threads()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        assert connection.exec_driver_sql("SELECT count(*) FROM blobs").scalar_one() == ROWS
    engine.dispose()


def test_without_it_the_rows_stay_in_the_log(tmp_path: Path) -> None:
    """The control: the same writes alone leave the log uncopied (so the test above can fail)."""
    database = tmp_path / "omvarld.db"
    engine = make_engine(f"sqlite:///{database}")
    _write(engine)
    time.sleep(0.3)
    found = read_log(database)
    assert found is not None and found[1] >= CHECKPOINT_PAGES
    assert database.stat().st_size < CHECKPOINT_PAGES * SQLITE_PAGE_SIZE // 10
    engine.dispose()


def test_other_databases_get_no_thread(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with checkpointing(make_engine(url)):
            assert not _checkpoint_threads()


def test_the_log_is_read_as_sqlite_counts_it_through_its_restarts(tmp_path: Path) -> None:
    """`read_log` against SQLite's own count of the log's pages (what a checkpoint reports),
    after the log restarts over older frames and after it is truncated."""
    database = tmp_path / "omvarld.db"
    engine = make_engine(f"sqlite:///{database}")

    def sqlite_count(mode: str) -> int:
        with engine.connect() as connection:
            return connection.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})").one()[1]

    _write(engine)
    for rows, truncate in ((ROWS, False), (5, True), (3, False)):
        found = read_log(database)
        assert found is not None
        assert found[1] == sqlite_count("PASSIVE") > 0
        if truncate:
            sqlite_count("TRUNCATE")
            assert read_log(database) is None  # an empty log
        with engine.begin() as connection:  # the next run of the log, over the older frames
            for _ in range(rows):
                connection.exec_driver_sql(f"INSERT INTO blobs VALUES (randomblob({ROW_BYTES}))")
    engine.dispose()
    assert read_log(tmp_path / "none.db") is None


# Takes SQLite's "dead man switch" lock of a `-shm` file (byte 128: `UNIX_SHM_DMS` in SQLite's
# os_unix.c) as a process that opens the database first would, to rebuild the file.
TAKE_DMS_LOCK = """
import fcntl, sys
with open(sys.argv[1], "r+b") as shared:
    try:
        fcntl.lockf(shared, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
    except OSError:
        print("held")
    else:
        print("taken")
"""


def test_the_thread_leaves_sqlites_locks_in_place(tmp_path: Path) -> None:
    """Closing a descriptor of a file drops all of a process's POSIX locks on it: a thread that
    read the `-shm` file took this process's SQLite locks away, and another process rebuilt the
    file under its connections (a collection died of SIGBUS)."""
    database = tmp_path / "omvarld.db"
    engine = make_engine(f"sqlite:///{database}")
    shared = database.with_name(f"{database.name}-shm")

    def other_process() -> str:
        taking = [sys.executable, "-c", TAKE_DMS_LOCK, str(shared)]
        return subprocess.run(taking, capture_output=True, text=True, check=True).stdout.strip()

    with engine.connect() as connection:  # holds the lock while it is open
        connection.exec_driver_sql("CREATE TABLE blobs (data BLOB)")
        connection.commit()
        assert other_process() == "held"  # the control: the test can see the lock
        with checkpointing(engine):
            _write(engine)
            time.sleep(5 * POLL_SECONDS)  # the thread has read the log again and again
            assert other_process() == "held"
    engine.dispose()
