"""Fixtures shared by the suite: both databases, a loopback feed server, config files."""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.collect import SourceOutcome, collect_sources
from monitor.config import Config, load_config
from monitor.db import make_engine, upgrade
from monitor.models import posts, sources
from monitor.sources import select_sources, sync_sources
from tests.browser import browser  # noqa: F401 (a fixture: one browser a module)
from tests.feedserver import FeedServer
from tests.platforms import source_table
from tests.smtpserver import Server, start_server
from tests.webserver import web_app  # noqa: F401 (a fixture: one `omvarld web` per database)

PG_URL_ENV = "OMVARLD_TEST_DATABASE_URL"
GOLDEN = Path(__file__).parent / "golden"
# Every process the suite starts inherits this, so the processes it leaves behind can be found
# at the end, wherever they were reparented (see pytest_sessionfinish).
SESSION_MARK = f"OMVARLD_TEST_SESSION={uuid.uuid4().hex}"
os.environ["OMVARLD_TEST_SESSION"] = SESSION_MARK.partition("=")[2]
# How long processes of killed commands get to notice and exit before they count as left.
LEFTOVER_GRACE_SECONDS = 5.0


def _postgres_url_with_schema(base: str, schema: str) -> str:
    # Each test gets its own schema, so tests never see each other's rows.
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'omvarld.db'}"
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} is not set: PostgreSQL variant skipped")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_url_with_schema(base, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with the schema at head."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def digest_config(tmp_path: Path, engine: Engine) -> Config:
    """The digest tests' fixed database (weeks 2026-W44 to W48), filled; its config."""
    # Imported here: tests.digestdata builds on this module's helpers.
    from tests.digestdata import fill, setup_config

    config = setup_config(tmp_path, engine)
    fill(engine)
    return config


@pytest.fixture
def smtp() -> Iterator[Server]:
    """An SMTP server on loopback without authentication; its mailbox keeps what arrives."""
    yield from start_server()


def write_config(directory: Path, database_url: str, body: str = "") -> Path:
    """A config file in `directory` using `database_url`, followed by `body` (TOML)."""
    path = directory / "config.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n\n' + textwrap.dedent(body), encoding="utf-8"
    )
    return path


def feed_source(url: str, organisation: str = "Katrineholms kommun", **extra: str) -> str:
    """One [[sources]] table for a feed."""
    return source_table("feed", url=url, organisation=organisation, **extra)


# End-to-end collection, as the CLI does it: write a config, sync it, collect every source.


def configure(tmp_path: Path, engine: Engine, body: str, collect: str = "") -> Config:
    config = load_config(
        write_config(tmp_path, str(engine.url.render_as_string(False)), collect + body)
    )
    sync_sources(engine, config, datetime.now(UTC))
    return config


def collect_all(config: Config, engine: Engine) -> dict[str, SourceOutcome]:
    rows = select_sources(engine, now=datetime.now(UTC), everything=True)
    return {o.key: o for o in collect_sources(config, engine, rows)}


def collect_one(config: Config, engine: Engine) -> SourceOutcome:
    """Collect the config's only source; its outcome."""
    return only(collect_all(config, engine))


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether `condition` came true within `seconds` (real processes take real time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def scalar(engine: Engine, query: sa.Select) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def count(engine: Engine, table: sa.Table, *where: Any) -> int:
    """How many rows of `table` match `where` (all of them by default)."""
    query = sa.select(sa.func.count()).select_from(table).where(*where)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def source_row(engine: Engine, key: str) -> sa.Row:
    with engine.connect() as connection:
        return connection.execute(sa.select(sources).where(sources.c.key == key)).one()


def only(outcomes: dict[str, SourceOutcome]) -> SourceOutcome:
    (outcome,) = outcomes.values()
    return outcome


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", help="rewrite tests/golden/ from current output"
    )


def assert_golden(request: pytest.FixtureRequest, name: str, content: str) -> None:
    """`content` is what tests/golden/`name` holds; `pytest --update-goldens` first writes it
    there, after an intended change (then read the diff: it is what users will see change)."""
    golden = GOLDEN / name
    if request.config.getoption("--update-goldens"):
        golden.write_text(content, encoding="utf-8")
    assert content == golden.read_text(encoding="utf-8"), f"{golden} differs"


def skip_reason(report: pytest.TestReport) -> str:
    """A skipped test's reason as `pytest -rs` prints it, without the location."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per distinct skip reason with its count, unless -rs already listed each skip:
    without PostgreSQL, hundreds of variants skip for the same reason, and a line apiece
    buried the failures (issue 11)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped or "s" in terminalreporter.reportchars.lower():
        return
    terminalreporter.write_sep("=", "skipped, by reason (pytest -rs lists each test)")
    for reason, number in Counter(skip_reason(r) for r in skipped).most_common():
        terminalreporter.write_line(f"{number} skipped: {reason}")


def stored_posts(engine: Engine) -> dict[str, sa.Row]:
    """Every stored post, by its platform post id."""
    with engine.connect() as connection:
        return {row.platform_post_id: row for row in connection.execute(sa.select(posts))}


def find_leftover_processes() -> list[str]:
    """Processes this session started that still run, but this one and its own forkserver and
    resource tracker (they end with it): orphans of killed commands, workers of pools that
    were never shut down. As "pid: command line"."""
    own = os.getpid()
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            if SESSION_MARK.encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        helper = "multiprocessing.forkserver" in command or "resource_tracker" in command
        if not (parent == own and helper):
            left.append(f"{entry.name}: {command[:200]}")
    return left


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the suite leaves any process of its own behind (forkservers and pool
    workers outliving a killed parent used to)."""
    if not Path("/proc/self/environ").exists():
        print("\nleft-over process check skipped: no /proc on this machine")
        return
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while (left := find_leftover_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        print("\nprocesses started by the tests are still running:\n" + "\n".join(left))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
