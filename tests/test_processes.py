"""Parse pool workers (monitor/processes.py): how they are set up."""

from __future__ import annotations

import gc

from monitor.parsing import PARSE_PRELOAD
from monitor.processes import WORKER_GC_THRESHOLD, start_process_pool


def collector_settings() -> tuple[int, int]:
    """In a worker: its collector's first threshold, and how many objects it leaves alone."""
    return gc.get_threshold()[0], gc.get_freeze_count()


def test_a_worker_leaves_the_imported_modules_to_its_collector_and_looks_less_often() -> None:
    pool = start_process_pool(1, preload=PARSE_PRELOAD)
    try:
        threshold, frozen = pool.submit(collector_settings).result(timeout=60)
    finally:
        pool.shutdown()
    assert threshold == WORKER_GC_THRESHOLD
    assert frozen > 10_000  # the modules the forkserver imported (lxml, feedparser, …)
