"""Schema management: SQLite upgrades itself, PostgreSQL waits for `db upgrade`; timestamps are
stored alike whoever formats them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import SCHEMA_HEAD, begin_batch, head_revision, make_engine
from monitor.models import UTCDateTime
from tests.conftest import write_config

runner = CliRunner()


def test_embedded_sqlite_is_created_by_any_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, "sqlite:///data/omvarld.db")
    (tmp_path / "data").mkdir()
    result = runner.invoke(app, ["--config", str(config), "status"])
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'omvarld.db'}")
    with engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
        # What a collection's writes cost (docs/performance.md): pages of 8 KiB for a new file,
        # and a checkpoint only once the WAL holds 32 MiB of them.
        assert connection.execute(sa.text("PRAGMA page_size")).scalar_one() == 8192
        assert connection.execute(sa.text("PRAGMA wal_autocheckpoint")).scalar_one() == 4000
        version = connection.execute(
            sa.text("SELECT version_num FROM alembic_version")
        ).scalar_one()
    assert version == head_revision()


def test_db_upgrade_reports_the_change_then_that_nothing_is_left(  # type: ignore[no-untyped-def]
    tmp_path, database_url: str
) -> None:
    config = str(write_config(tmp_path, database_url))
    first = runner.invoke(app, ["--config", config, "db", "upgrade"])
    assert first.exit_code == 0 and f"schema empty → {head_revision()}" in first.stdout
    second = runner.invoke(app, ["--config", config, "db", "upgrade"])
    assert second.exit_code == 0 and f"already at schema {head_revision()}" in second.stdout
    engine = make_engine(database_url)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"sources", "posts", "post_metrics", "post_revisions", "collection_runs"} <= tables


def test_postgresql_is_not_upgraded_behind_the_admins_back(  # type: ignore[no-untyped-def]
    tmp_path, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        return  # SQLite upgrades itself: covered above
    config = str(write_config(tmp_path, database_url))
    result = runner.invoke(app, ["--config", config, "status"])
    assert result.exit_code == 2
    assert "the database is empty; run 'omvarld db upgrade'" in result.output


def test_migrations_create_exactly_the_tables_the_code_expects(engine) -> None:  # type: ignore[no-untyped-def]
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from monitor.models import described_by_metadata, metadata

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": described_by_metadata}
        )
        assert compare_metadata(context, metadata) == []


def test_schema_head_constant_names_the_newest_migration() -> None:
    from monitor.db import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD


def test_known_revisions_are_the_migrations_alembic_finds() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from monitor.db import MIGRATIONS, known_revisions

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    walked = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    assert known_revisions() == walked


def test_a_newer_database_is_left_as_it_is(tmp_path, engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as connection:  # as a later Omvärld with migration 0999 leaves it
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    config = str(write_config(tmp_path, engine.url.render_as_string(hide_password=False)))

    upgraded = runner.invoke(app, ["--config", config, "db", "upgrade"])
    listed = runner.invoke(app, ["--config", config, "posts", "list"])

    for result in (upgraded, listed):
        assert result.exit_code == 2
        assert result.stderr == (
            "error: the database was written by a newer Omvärld (schema 0999);"
            f" this version knows up to {SCHEMA_HEAD}\n"
        )
    with engine.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        assert version.scalar_one() == "0999"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 6, 8, 0, tzinfo=UTC),  # no microseconds: still written with six
        datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1))),
        datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a four-digit year, as SQLAlchemy pads it
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_sqlite_timestamps_are_written_as_sqlalchemy_writes_them(moment: datetime) -> None:
    # UTCDateTime formats SQLite's text itself (faster); rows written before must still compare
    # and sort with new ones, so the text is SQLAlchemy's to the character.
    dialect = sqlite.dialect()
    reference = sa.DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert reference is not None
    ours = UTCDateTime().bind_processor(dialect)
    assert ours is not None

    assert ours(moment) == reference(moment.astimezone(UTC).replace(tzinfo=None))


def test_a_naive_timestamp_is_refused_on_sqlite_too() -> None:
    ours = UTCDateTime().bind_processor(sqlite.dialect())
    assert ours is not None

    with pytest.raises(ValueError, match="naive datetime"):
        ours(datetime(2026, 12, 6, 8, 0))


def test_a_batch_keeps_its_journals_in_memory_and_gives_its_connection_back_as_it_was(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """monitor.db.begin_batch: in memory for the batch only, whether it commits or fails, so
    that a retention run handed the same pooled connection may still spill its journals."""
    engine = make_engine(
        f"sqlite:///{tmp_path / 'omvarld.db'}", poolclass=sa.pool.SingletonThreadPool
    )
    temp_store = sa.text("PRAGMA temp_store")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x INTEGER NOT NULL)"))

    with begin_batch(engine) as connection:
        assert connection.execute(temp_store).scalar_one() == 2  # MEMORY
        assert connection.execute(sa.text("PRAGMA cache_size")).scalar_one() == -32768  # KiB
        connection.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
    with pytest.raises(sa.exc.IntegrityError), begin_batch(engine) as connection:
        connection.execute(sa.text("INSERT INTO t VALUES (3)"))
        connection.execute(sa.text("INSERT INTO t VALUES (4), (NULL)"))

    with engine.connect() as connection:
        assert connection.execute(temp_store).scalar_one() == 0  # the default: files
        assert connection.execute(sa.text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
    engine.dispose()
