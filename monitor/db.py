"""Engines and schema migrations. Contains no business logic."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from monitor.jsontext import serialize_json

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
SQLITE_STEM_FUNCTION = "omvarld_stems"  # named in migration 0007's triggers
SQLITE_BUSY_TIMEOUT_MS = 10_000  # a second writer waits this long before "database is locked"
SQLITE_PAGE_SIZE = 8192  # bytes, for a new database (`_configure_sqlite`)
SQLITE_CACHE_KIB = 8192  # page cache per connection
SQLITE_BATCH_CACHE_KIB = 32768  # page cache of a connection that has written a batch
SQLITE_CHECKPOINT_PAGES = 4000  # WAL pages (32 MiB of 8 KiB pages) before a commit checkpoints
# The newest migration in migrations/versions; a test checks it against Alembic. Kept here so
# that commands check the schema without importing Alembic.
SCHEMA_HEAD = "0018"
SQLITE_JOURNALS = ("-wal", "-shm", "-journal")  # files beside an SQLite database, as it names them


_PASSWORD_IN_URL = re.compile(r"(//[^/:@]*:).*@")  # to the last @: a password may hold one


class DatabaseError(Exception):
    """The database cannot be used as configured; the message says why and what to do."""


def make_engine(url: str, **options: Any) -> Engine:
    """An engine with the settings each dialect needs (WAL and foreign keys on SQLite);
    `options` go to `sa.create_engine` (the web app's pool size and connect arguments)."""
    try:
        engine = sa.create_engine(url, json_serializer=serialize_json, **options)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
        raise DatabaseError(f"database url {_redact(url)!r}: {error}") from None
    except ValueError:  # SQLAlchemy half-parsed it: a host "[::1" without its "]", a port "x"
        raise DatabaseError(
            f"database url {_redact(url)!r} is not a URL: check the host and port"
        ) from None
    except ModuleNotFoundError as error:
        hint = (
            "from the Omvärld checkout: pip install -e '.[postgresql]'"
            if url.startswith("postgresql")
            else "use sqlite:///FILE or postgresql+psycopg://…"
        )
        raise DatabaseError(
            f"database url {_redact(url)!r}: driver {error.name} is not installed; {hint}"
        ) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _configure_sqlite)
    return engine


@contextlib.contextmanager
def begin_batch(engine: Engine) -> Iterator[Connection]:
    """`engine.begin()` for a transaction of many small writes: the sync of the config's
    sources, a claim of sources, a batch of collected attempts. On SQLite, its statement
    journals are kept in memory instead of in temporary files.

    A multi-row INSERT in a transaction may fail halfway (a NOT NULL), so SQLite copies each
    page the statement changes into a statement journal, and spills that journal to a file in
    the temporary directory past 64 KiB. A cold pass of 2,000 feeds wrote 436 MB in 106,000
    writes to such files, up to a fifth of its system time, and a full /tmp failed every source
    although the database's disk had room (issue 15); with 2,000 sources in the config, every
    command failed at the sync. A statement of a batch changes a few hundred pages at most.
    Other transactions keep the spilling default: retention's set-based statements may change
    every page of a table.

    The connection's page cache grows to SQLITE_BATCH_CACHE_KIB, and stays so: the batches of
    a collection rewrite the same index pages, and with 8 MiB the writer of that cold pass
    read 490 MB of pages back from the WAL (issue 15). Connections that only read keep 8 MiB.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        # Before the transaction: SQLite decides where its statement journals go when it
        # begins. A PRAGMA starts none (Python's sqlite3 begins before the first write).
        connection.exec_driver_sql("PRAGMA temp_store = MEMORY")
        connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_BATCH_CACHE_KIB}")
        connection.commit()
        try:
            with connection.begin():
                yield connection
        finally:
            _reset_temp_store(connection)


def _reset_temp_store(connection: Connection) -> None:
    """The connection back to SQLite's default temporary storage, or out of the pool."""
    try:
        connection.exec_driver_sql("PRAGMA temp_store = DEFAULT")
        connection.commit()
    except sa.exc.SQLAlchemyError:
        # Not to be handed to a retention run with journals that cannot spill.
        connection.invalidate()


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Pages of 8 KiB (SQLite's default is 4 KiB) for a new database; an existing one keeps its
    # own, so this must come before anything writes the file. A post's row holds its text, its
    # HTML and its raw payload (7 KB on average in the benchmark's feeds): with 8 KiB pages it
    # spills into fewer overflow pages, and each index holds more keys a page. Storing a cold
    # pass's posts took SQLite 15 % less CPU, for a file 4 % larger (issue 15).
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    # 8 MiB of pages cached per connection, where the default is 2 MiB: the indexes of posts
    # that a collection writes to stay in memory.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The commit that finds the WAL past this many pages copies it into the database and syncs
    # the file. At SQLite's 1,000 pages that was every third batch of a cold pass: commits took
    # 3 s of the database thread's 12–13 s, 1.2 s of it CPU, copying again the index pages each
    # batch rewrites. At 4,000 a cold pass took 5–6 % less time (issue 15); the WAL file beside
    # the database grows to about 32 MiB.
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.close()
    # The search index's triggers (migration 0007) call this on every write to posts, so every
    # connection that may write needs it, and a query stems its words with the same function.
    from monitor.stems import stem_stored_text

    dbapi_connection.create_function(SQLITE_STEM_FUNCTION, 1, stem_stored_text, deterministic=True)


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None for an empty one.

    Read with plain SQL: importing Alembic costs every command a tenth of a second.
    """
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest migration's revision, from Alembic's scripts (SCHEMA_HEAD must match)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """The revisions this version has migrations for (a migration's file name begins with its
    revision), read without importing Alembic."""
    return {path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("*.py")}


def _refuse_newer(current: str | None) -> None:
    """A revision we have no migration for was written by a later version of Omvärld: Alembic
    would fail on it with a traceback, and this version's queries may not fit its tables."""
    if current is not None and current not in known_revisions():
        raise DatabaseError(
            f"the database was written by a newer Omvärld (schema {current});"
            f" this version knows up to {SCHEMA_HEAD}"
        )


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest revision. Returns (before, after).

    Raises:
        DatabaseError: the database cannot be reached, or is at a revision this version does
            not know.
    """
    from alembic import command

    before = current_revision(engine)
    _refuse_newer(before)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
    except sa.exc.OperationalError as error:
        raise DatabaseError(
            f"cannot upgrade {describe_database(engine)}: {first_line(error)}"
        ) from None
    return before, current_revision(engine)


def ensure_schema(engine: Engine) -> None:
    """Upgrade an embedded SQLite database in place; require `db upgrade` for a shared server.

    On a shared PostgreSQL the schema changes when an admin says so, not when some worker
    happens to start with a newer version.
    """
    try:
        current = current_revision(engine)
    except sa.exc.OperationalError as error:
        raise DatabaseError(
            f"cannot open {describe_database(engine)}: {first_line(error)}"
        ) from None
    if current == SCHEMA_HEAD:
        return
    _refuse_newer(current)
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    state = "is empty" if current is None else f"is at revision {current}"
    raise DatabaseError(
        f"the database {state}; run 'omvarld db upgrade' to bring it to {SCHEMA_HEAD}"
    )


def describe_database(engine: Engine) -> str:
    """Where the data is, for people: a file path for SQLite, the URL without password else."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return str(Path(engine.url.database).resolve())
    return _redact(str(engine.url))


def database_files(url: str) -> list[Path]:
    """The files an SQLite database lives in, symbolic links resolved as SQLite resolves them:
    the database and its journals (WAL, shared memory, rollback). None for a server database."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return []
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return []
    path = Path(name).resolve()
    return [path, *(path.with_name(path.name + suffix) for suffix in SQLITE_JOURNALS)]


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        # Unparsable, yet it may hold a password: hide whatever is between "user:" and "@".
        return _PASSWORD_IN_URL.sub(r"\1***@", url)


def first_line(error: BaseException) -> str:
    """A database error as one line: the driver's own message when SQLAlchemy wraps one."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of at most `size`: statements stay under SQLite's bound-parameter limit."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# Rows read and written per round trip by `fill_column`: a few MB of text, whatever the table.
FILL_BATCH = 5_000


def fill_column(
    connection: Connection,
    table: sa.TableClause,
    column: str,
    where: sa.ColumnElement[bool],
    read: Sequence[sa.ColumnElement[Any]],
    compute: Callable[..., Any],
) -> None:
    """Set `column` of the rows `where` chooses to `compute(*read)`, a batch at a time, by id
    (a migration filling in what ingest now stores, for the rows stored before). The table's
    `id` is its primary key.
    """
    ids = table.c.id
    store = (
        sa.update(table)
        .where(ids == sa.bindparam("row_id"))
        .values({column: sa.bindparam("row_value")})
    )
    after = 0
    while True:
        # By id from the last one done: each batch starts where an index finds it at once.
        batch = connection.execute(
            sa.select(ids, *read).where(where, ids > after).order_by(ids).limit(FILL_BATCH)
        ).all()
        if not batch:
            return
        connection.execute(
            store, [{"row_id": row[0], "row_value": compute(*row[1:])} for row in batch]
        )
        after = batch[-1][0]


def insert_for(connection: Connection) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
