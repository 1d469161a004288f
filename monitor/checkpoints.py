"""SQLite's write-ahead log copied into the database by a thread of its own while a collection
writes. Contains no business logic.

In WAL mode a commit appends the pages it changed to the `-wal` file; a checkpoint copies them
into the database and syncs both files. SQLite runs it inside the commit that finds the log past
`wal_autocheckpoint` pages, so the one database thread of a collection waited for the copying
and, above all, the syncs: its commits took 2.5–2.8 s of a cold pass's 13 s, 1.1 s of it CPU
(issue 15). Here a thread with a connection of its own starts a passive checkpoint as soon as
the log holds `CHECKPOINT_PAGES` pages not yet copied (`read_log`); a passive checkpoint takes
no lock that a writer needs, so the writer goes on meanwhile, and the sync waits on this thread
instead.

The writer's own checkpoint stays as it was (monitor.db), for a log this thread does not keep
up with or when it stops (a full disk: it logs why at debug level and leaves the rest to
SQLite). Nothing about durability changes: the same pages are synced, in the same order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import Engine

from monitor.db import database_files

log = logging.getLogger(__name__)

# Pages written but not copied that start a checkpoint: 8 MiB of 8 KiB pages. Fewer would copy
# the pages each batch rewrites (indexes, the search index) again and again.
CHECKPOINT_PAGES = 1000
POLL_SECONDS = 0.05

# The `-wal` file (https://www.sqlite.org/fileformat2.html#walformat), big-endian: a header of
# magic, format version, page size, checkpoint sequence and the two salts, then frames of a
# 24-byte header (the salts at bytes 8-16) and a page. Frames written since the log last
# restarted carry the header's salts; the ones after them are older and carry others.
_LOG_HEADER = struct.Struct(">6I")
_LOG_HEADER_BYTES = 32
_LOG_MAGIC = (0x377F0682, 0x377F0683)
_FRAME_HEADER_BYTES = 24
_FRAME_SALTS = struct.Struct(">8x2I")


@contextlib.contextmanager
def checkpointing(engine: Engine) -> Iterator[None]:
    """Within the block, checkpoint the WAL of `engine`'s SQLite file beside its writers; for
    any other database, nothing."""
    files = database_files(engine.url.render_as_string(hide_password=False))
    if not files:
        yield
        return
    checkpointer = _Checkpointer(files[0])
    checkpointer.start()
    try:
        yield
    finally:
        checkpointer.stop()


def read_log(database: Path) -> tuple[tuple[int, int], int] | None:
    """The salts of the database's WAL and how many pages it holds since it last restarted
    (SQLite's mxFrame, give or take a commit being written); None when it has no log.

    Read from the `-wal` file, never from the `-shm` file that holds the same count: SQLite
    keeps its locks on that one as POSIX locks, and closing any descriptor of a file drops all
    of a process's locks on it. A thread that opened and closed `-shm` to read the count took
    this process's locks away from its own connections, and another process opening the
    database then rebuilt the `-shm` file under them (a collection died of SIGBUS). SQLite
    locks nothing in the `-wal` file.
    """
    try:
        with database.with_name(f"{database.name}-wal").open("rb") as wal:
            header = wal.read(_LOG_HEADER_BYTES)
            if len(header) < _LOG_HEADER_BYTES:
                return None
            magic, _, page_size, _, first, second = _LOG_HEADER.unpack_from(header)
            if magic not in _LOG_MAGIC or not 512 <= page_size <= 65536:
                return None
            salts = (first, second)
            return salts, _count_current_frames(wal, _FRAME_HEADER_BYTES + page_size, salts)
    except OSError:
        return None


def _count_current_frames(wal: BinaryIO, frame_bytes: int, salts: tuple[int, int]) -> int:
    """How many frames from the log's start carry `salts`: those of its current run come first,
    older ones after them, so the last is found by halves (a dozen reads of 24 bytes)."""
    low, high = 0, (os.fstat(wal.fileno()).st_size - _LOG_HEADER_BYTES) // frame_bytes
    while low < high:
        middle = (low + high + 1) // 2
        wal.seek(_LOG_HEADER_BYTES + (middle - 1) * frame_bytes)
        found = wal.read(_FRAME_HEADER_BYTES)
        current = len(found) == _FRAME_HEADER_BYTES and _FRAME_SALTS.unpack_from(found) == salts
        low, high = (middle, high) if current else (low, middle - 1)
    return low


class _Checkpointer(threading.Thread):
    def __init__(self, database: Path) -> None:
        super().__init__(name="omvarld-checkpoint", daemon=True)
        self.database = database
        self.stopping = threading.Event()

    def run(self) -> None:
        connection: sqlite3.Connection | None = None
        # What this thread's last checkpoint copied, in which run of the log: a checkpoint of
        # another connection (the writer's own) is not seen, and only makes the next one early.
        copied_salts: tuple[int, int] | None = None
        copied = 0
        try:
            while not self.stopping.wait(POLL_SECONDS):
                found = read_log(self.database)
                if found is None:
                    continue
                salts, pages = found
                if pages - (copied if salts == copied_salts else 0) < CHECKPOINT_PAGES:
                    continue
                if connection is None:
                    connection = sqlite3.connect(
                        self.database, isolation_level=None, check_same_thread=False
                    )
                # The GIL is released while SQLite copies and syncs.
                _, _, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                copied_salts, copied = salts, max(done, 0)
        except (sqlite3.Error, OSError) as error:
            log.debug("background checkpoints of %s stopped: %s", self.database, error)
        finally:
            if connection is not None:
                connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
