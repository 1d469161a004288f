"""SQLite's write-ahead log copied into the database by a thread of its own while a collection
writes. Contains no business logic.

In WAL mode a commit appends the pages it changed to the `-wal` file; a checkpoint copies them
into the database and syncs both files. SQLite runs it inside the commit that finds the log past
`wal_autocheckpoint` pages, so the one database thread of a collection waited for the copying
and, above all, the syncs: its commits took 2.5–2.8 s of a cold pass's 13 s, 1.1 s of it CPU
(issue 15). Here a thread with a connection of its own starts a passive checkpoint as soon as
the log holds `CHECKPOINT_PAGES` pages not yet copied; a passive checkpoint takes no lock that
a writer needs, so the writer goes on meanwhile, and the sync waits on this thread instead.

The writer's own checkpoint stays as it was (monitor.db), for a log this thread does not keep
up with or when it stops (a full disk: it logs why at debug level and leaves the rest to
SQLite). Nothing about durability changes: the same pages are synced, in the same order.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import Engine

from monitor.db import database_files

log = logging.getLogger(__name__)

# Pages written but not copied that start a checkpoint: 8 MiB of 8 KiB pages. Fewer would copy
# the pages each batch rewrites (indexes, the search index) again and again.
CHECKPOINT_PAGES = 1000
POLL_SECONDS = 0.05

# The wal-index header at the start of the `-shm` file (https://www.sqlite.org/walformat.html),
# in the machine's byte order: mxFrame, the log's last valid page, at byte 16, and nBackfill,
# how many of its pages are copied into the database already, at byte 96.
_MX_FRAME = 16
_N_BACKFILL = 96
_HEADER_BYTES = 100
_U32 = struct.Struct("=I")


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


def count_uncopied_pages(database: Path) -> int:
    """Pages in the database's WAL that no checkpoint has copied yet; 0 when it has no WAL."""
    try:
        with database.with_name(f"{database.name}-shm").open("rb") as shared:
            header = shared.read(_HEADER_BYTES)
    except OSError:
        return 0
    if len(header) < _HEADER_BYTES:
        return 0
    (last,) = _U32.unpack_from(header, _MX_FRAME)
    (copied,) = _U32.unpack_from(header, _N_BACKFILL)
    # Read while SQLite may be writing it: a torn read is only a late or an early checkpoint.
    return max(last - copied, 0)


class _Checkpointer(threading.Thread):
    def __init__(self, database: Path) -> None:
        super().__init__(name="omvarld-checkpoint", daemon=True)
        self.database = database
        self.stopping = threading.Event()

    def run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self.stopping.wait(POLL_SECONDS):
                if count_uncopied_pages(self.database) < CHECKPOINT_PAGES:
                    continue
                if connection is None:
                    connection = sqlite3.connect(
                        self.database, isolation_level=None, check_same_thread=False
                    )
                # The GIL is released while SQLite copies and syncs.
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except (sqlite3.Error, OSError) as error:
            log.debug("background checkpoints of %s stopped: %s", self.database, error)
        finally:
            if connection is not None:
                connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
