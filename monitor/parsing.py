"""Where a pass parses its feeds: in threads of the collecting process for a few sources, else
in a pool of processes (parsing is CPU work that would hold the GIL the fetching and the database
thread need), forked from a forkserver that has imported the parsers once.

`prepare_parsing` starts that forkserver as soon as the config says a pass will use it, so that
its start-up overlaps the collecting process's own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config import Config

# Below this many sources a process pool costs more to start than it saves.
PROCESS_POOL_THRESHOLD = 16
# What the parse pool's forkserver imports once for all its workers: the parsers (feedxml brings
# lxml and feedparser), and what prepares a post's row values.
PARSE_PRELOAD = ("collectors.feeds", "collectors.feedxml", "monitor.rows")


class _LazyProcessPool(Executor):
    """A process pool started at its first task, so a run with nothing to parse pays nothing."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: Executor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._pool is None:
                # Imported here: multiprocessing is start-up time a warm pass does not need.
                from monitor.processes import start_process_pool

                self._pool = start_process_pool(self.processes, preload=PARSE_PRELOAD)
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def make_parse_executor(config: Config, expected: int | None) -> Executor:
    """What parses a pass over `expected` sources (None: as many as come due)."""
    processes = parse_processes(config, expected)
    if processes <= 1:
        return ThreadPoolExecutor(max_workers=2, thread_name_prefix="omvarld-parse")
    return _LazyProcessPool(processes)


def parse_processes(config: Config, expected: int | None) -> int:
    """How many processes parse a pass over `expected` sources (None: as many as come due); 1
    means threads of this process."""
    if expected is not None and expected < PROCESS_POOL_THRESHOLD:
        return 1
    return config.collect.parse_processes or os.cpu_count() or 1


def prepare_parsing(config: Config) -> None:
    """Before a pass over the configured sources: when it would parse in a process pool, start
    the pool's forkserver now. Python's start and the parsers' imports take it a fifth of a
    second, which it spends beside this process's own start; started at the first feed to
    parse, it kept the database thread of a churn pass waiting that long for its first posts
    (issue 15)."""
    if parse_processes(config, len(config.sources)) > 1:
        from monitor.processes import start_forkserver

        start_forkserver(PARSE_PRELOAD)
