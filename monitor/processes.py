"""Process pools that a multi-threaded service can start safely. Contains no business logic."""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from monitor.workers import read_start_ticks

# Where a pidfd is missing (not Linux), a worker looks for its parent this often.
PARENT_POLL_SECONDS = 0.5


def start_process_pool(processes: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """A pool whose workers come from a forkserver, with `preload` imported there once.

    Not plain fork: a child forked from a multi-threaded process (the service, with its
    scheduler and database threads) could inherit a lock another thread held; the forkserver
    forks from a clean, single-threaded process. The preload is the first pool's: the server
    starts once per process.

    Each worker exits as soon as the process that started the pool is gone, even when that one
    was SIGKILLed: the workers are the forkserver's children, not its, so no parent-death
    signal reaches them, and they hold both ends of their task queue, so they would wait on it
    forever. The forkserver itself stops when the last of them has (it watches a pipe they and
    the parent hold).
    """
    parent = os.getpid()
    pool = ProcessPoolExecutor(
        processes,
        mp_context=_forkserver_context(preload),
        initializer=start_worker,
        initargs=(parent, read_start_ticks(parent)),
    )
    _widen_pipes(pool)
    return pool


def start_forkserver(preload: Sequence[str]) -> None:
    """Start the forkserver that `start_process_pool(…, preload)` will fork its workers from,
    without waiting for it: it starts Python and imports `preload` (a quarter of a second) while
    this process goes on, and a pool started later finds it ready."""
    _forkserver_context(preload)
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _forkserver_context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    """The forkserver's context, with `preload` for the server when it has yet to start."""
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return context


# A parsed feed with its prepared rows is a few hundred kilobytes. Through a pipe of Linux's
# default 64 KB, a worker waits for the parent to read each part of it, and the parent reads
# only when the thread that does so gets the GIL: the workers spent a fifth of a cold pass
# waiting to hand back results. 1 MB is Linux's default ceiling for an unprivileged process.
PIPE_BYTES = 1 << 20


def widen_pipe(descriptor: int) -> bool:
    """Give the pipe PIPE_BYTES where the system allows (Linux); whether it did."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return False
    try:
        fcntl.fcntl(descriptor, set_size, PIPE_BYTES)
    except OSError:
        return False
    return True


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Give the pool's task and result pipes PIPE_BYTES where the system allows (Linux);
    elsewhere, or if the pool's internals differ, they stay as they are."""
    for queue in (getattr(pool, "_result_queue", None), getattr(pool, "_call_queue", None)):
        for end in ("_reader", "_writer"):
            connection = getattr(queue, end, None)
            try:
                if widen_pipe(connection.fileno()):  # type: ignore[union-attr]
                    break  # both ends share the one pipe
            except (AttributeError, OSError, ValueError):
                continue


# A worker's cyclic garbage collector looks at new objects after this many, not 700: parsing a
# feed allocates tens of thousands, and reference counting frees nearly all of them, so the
# collector's walks found nothing and cost 1.7 % of a parse's instructions (issue 15).
WORKER_GC_THRESHOLD = 20_000


def start_worker(pid: int, start_ticks: int | None) -> None:
    """A pool worker's set-up: it ends with process `pid`, and its collector leaves alone the
    modules the forkserver imported, which live as long as it does."""
    watch_parent(pid, start_ticks)
    gc.freeze()
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])


def watch_parent(pid: int, start_ticks: int | None) -> None:
    """In a pool worker: end this process when process `pid` (started at `start_ticks`) ends."""
    threading.Thread(
        target=_exit_with, args=(pid, start_ticks), name="omvarld-parent-watch", daemon=True
    ).start()


def _exit_with(pid: int, start_ticks: int | None) -> None:
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here, or the parent is already gone
        descriptor = None
    # Opened after the parent may have died: a pid handed to a newer process is not it.
    if read_start_ticks(pid) != start_ticks:
        os._exit(1)
    if descriptor is not None:
        select.select([descriptor], [], [])  # readable once the process has exited
    else:
        while read_start_ticks(pid) == start_ticks and _exists(pid):
            time.sleep(PARENT_POLL_SECONDS)
    # Not sys.exit: the main thread may be deep in a parse; nothing it holds needs saving.
    os._exit(1)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
