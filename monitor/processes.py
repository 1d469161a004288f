"""Process pools that a multi-threaded service can start safely. Contains no business logic."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor


def start_process_pool(processes: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """A pool whose workers come from a forkserver, with `preload` imported there once.

    Not plain fork: a child forked from a multi-threaded process (the service, with its
    scheduler and database threads) could inherit a lock another thread held; the forkserver
    forks from a clean, single-threaded process. The preload is the first pool's: the server
    starts once per process.
    """
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(processes, mp_context=context)
