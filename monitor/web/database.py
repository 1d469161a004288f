"""The web app's database access: reads that cannot write and cannot run for ever.

Pages read through an engine whose connections refuse writes (SQLite `query_only`, PostgreSQL
`default_transaction_read_only`) and cancel any statement that runs past `[web] query_timeout`
(SQLite through a progress handler, PostgreSQL through `statement_timeout`): a search that
would scan for a minute gets a friendly page, and the worker is free again. Opt-outs, the one
thing the web writes, go through a second, ordinary engine.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import make_engine

# Queries a worker runs at once: about two per core. Starlette's thread pool would run forty
# pages at a time, each query then forty times slower, and under fifty clients on PostgreSQL
# queries ran past the query timeout (503s in `make bench-web`); past this many, a page waits
# for a connection (up to POOL_WAIT seconds) and its query then runs at full speed.
POOL_SIZE = max(2, 2 * (os.cpu_count() or 1))
POOL_WAIT = 60.0
# SQLite calls the progress handler every this many virtual-machine steps (~1 ms of work).
SQLITE_STEPS = 20_000


class QueryTimeout(Exception):
    """A page's query ran past [web] query_timeout and was cancelled."""


def make_read_engine(url: str, timeout: float) -> Engine:
    """An engine for pages: read-only, each statement cancelled after `timeout` seconds."""
    if url.startswith("sqlite"):
        engine = make_engine(url, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=POOL_WAIT)
        sa.event.listen(engine, "connect", _make_sqlite_read_only)
        sa.event.listen(engine, "before_cursor_execute", _start_sqlite_deadline(timeout))
        return engine
    milliseconds = max(1, int(timeout * 1000))
    # Added to the URL's own `options` (a search_path, say), which connect_args would replace.
    given = sa.engine.make_url(url).query.get("options") or ""
    if not isinstance(given, str):
        given = " ".join(given)
    options = f"{given} -c statement_timeout={milliseconds} -c default_transaction_read_only=on"
    return make_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_timeout=POOL_WAIT,
        pool_pre_ping=True,
        connect_args={"options": options.strip()},
    )


def make_write_engine(url: str) -> Engine:
    """An ordinary engine for the opt-outs a recipient asks for."""
    return make_engine(url, pool_size=2, max_overflow=4)


def _make_sqlite_read_only(dbapi_connection: Any, record: Any) -> None:
    deadline = [math.inf]
    record.info["deadline"] = deadline
    # A non-zero return interrupts the statement ("interrupted"), which is_timeout recognises.
    dbapi_connection.set_progress_handler(lambda: time.monotonic() > deadline[0], SQLITE_STEPS)
    dbapi_connection.execute("PRAGMA query_only=ON")


def _start_sqlite_deadline(timeout: float) -> Any:
    # A statement's own `web_timeout` execution option (a download streams for longer) wins.
    def start(
        connection: sa.Connection, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool
    ) -> None:
        deadline = connection.connection.info.get("deadline")
        if deadline is not None:
            seconds = context.execution_options.get("web_timeout", timeout) if context else timeout
            deadline[0] = time.monotonic() + seconds

    return start


def is_timeout(error: BaseException) -> bool:
    """Whether a database error is our own cancellation of a slow query, or a page that
    waited POOL_WAIT seconds for a connection: either way, the worker is too busy."""
    if isinstance(error, sa.exc.TimeoutError):
        return True
    text = str(getattr(error, "orig", error)).lower()
    return "interrupted" in text or "statement timeout" in text or "canceling statement" in text
