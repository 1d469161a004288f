"""SQLite's WAL copied into the database beside a collection's writer (monitor/checkpoints.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from monitor.checkpoints import CHECKPOINT_PAGES, checkpointing, count_uncopied_pages
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


def test_the_log_reaches_the_database_while_the_writer_goes_on(tmp_path: Path) -> None:
    database = tmp_path / "omvarld.db"
    engine = make_engine(f"sqlite:///{database}")
    with checkpointing(engine):
        _write(engine)
        # The writer checkpoints only past SQLITE_CHECKPOINT_PAGES: what is copied was copied
        # by the thread, and the database file holds the rows, not only the log.
        assert _wait_for(lambda: count_uncopied_pages(database) < CHECKPOINT_PAGES)
        assert database.stat().st_size >= CHECKPOINT_PAGES * SQLITE_PAGE_SIZE
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
    assert count_uncopied_pages(database) >= CHECKPOINT_PAGES
    assert database.stat().st_size < CHECKPOINT_PAGES * SQLITE_PAGE_SIZE // 10
    engine.dispose()


def test_other_databases_get_no_thread(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with checkpointing(make_engine(url)):
            assert not _checkpoint_threads()
