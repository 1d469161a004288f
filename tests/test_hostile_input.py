"""Hostile and absurd input to the real `omvarld` command, in a child process: each ends in one
line on stderr and the documented exit code (0 done, 1 the job failed, 2 bad usage or config),
never a traceback.

To add a case, add a `Case` to CASES: the arguments, what to do to the workspace first (a
`setup` that may rewrite the config or the database), the exit code and a piece of the line.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.db import SCHEMA_HEAD, make_engine, upgrade
from monitor.models import digests, posts
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer

BOTH = ("sqlite", "postgresql")
SQLITE = ("sqlite",)  # for input refused before any database is opened: one run is enough
NEWER = f"{int(SCHEMA_HEAD) + 1:04d}"  # a revision no migration here has written
TOO_LATE = "9999-12-31T23:59:59-23:59"  # in UTC, past the last moment a date can have
HUGE = str(10**23)


@dataclass(frozen=True)
class Workspace:
    directory: Path
    config: Path
    database_url: str


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    expected_code: int
    expected: str  # in the one line on stderr
    setup: Callable[[Workspace], None] | None = None
    databases: tuple[str, ...] = SQLITE
    env: dict[str, str] = field(default_factory=dict)


def stamp_newer_schema(workspace: Workspace) -> None:
    """The database as a later version of Omvärld leaves it: at a revision unknown here."""
    engine = make_engine(workspace.database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": NEWER})
    engine.dispose()


def unparsable_database_url(workspace: Workspace) -> None:
    write_config(workspace.directory, "postgresql+psycopg://omvarld:hemligt@[::1/omvarld")


def write_opml(workspace: Workspace) -> None:
    (workspace.directory / "feeds.opml").write_text(
        '<opml version="2.0"><head/><body>'
        '<outline type="rss" text="Nyheter" xmlUrl="https://example.se/rss"/></body></opml>',
        encoding="utf-8",
    )


def words(count: int) -> str:
    return " ".join(["hus"] * count)


NEWER_MESSAGE = f"the database was written by a newer Omvärld (schema {NEWER})"
COMMANDS_OPENING_THE_DATABASE = [
    ("status",),
    ("sources", "list"),
    ("collect", "--all"),
    ("posts", "list"),
    ("posts", "search", "kommun"),
    ("export", "posts", "--out", "posts.csv"),
    ("digest", "list"),
    ("audit",),
]

CASES = [
    # Moments past what a date can hold.
    Case("since-span", ("posts", "list", "--since", "99999999d"), 2, "--since"),
    Case("search-since-span", ("posts", "search", "kommun", "--since", "99999999d"), 2, "--since"),
    Case("search-until-offset", ("posts", "search", "kommun", "--until", TOO_LATE), 2, "--until"),
    Case(
        "export-until-offset",
        ("export", "posts", "--out", "posts.csv", "--until", TOO_LATE),
        2,
        "--until",
    ),
    Case("audit-since-span", ("audit", "--since", "99999999d"), 2, "--since"),
    Case(
        "archive-since-span",
        ("archive", "export", "--source", "x", "--out", "archive", "--since", "99999999d"),
        2,
        "--since",
    ),
    # Counts no database can bind, negative or written as a float.
    Case("list-limit-float", ("posts", "list", "--limit", "1e23"), 2, "--limit"),
    Case("list-limit-huge", ("posts", "list", "--limit", HUGE), 2, "--limit"),
    Case("search-limit-huge", ("posts", "search", "kommun", "--limit", HUGE), 2, "--limit"),
    Case("search-limit-negative", ("posts", "search", "kommun", "--limit", "-5"), 2, "--limit"),
    Case("list-limit-zero", ("posts", "list", "--limit", "0"), 2, "--limit"),
    Case(
        "search-min-engagement-huge",
        ("posts", "search", "kommun", "--min-engagement", HUGE),
        2,
        "--min-engagement",
    ),
    Case(
        "export-min-engagement-float",
        ("export", "posts", "--out", "posts.csv", "--min-engagement", "1e23"),
        2,
        "--min-engagement",
    ),
    Case(
        "search-min-engagement-negative",
        ("posts", "search", "kommun", "--min-engagement", "-1"),
        2,
        "--min-engagement",
    ),
    Case("digest-id-huge", ("digest", "show", HUGE), 2, "[ID]"),
    Case("erase-post-huge", ("erase", "--post", HUGE, "--reason", "test", "--yes"), 2, "--post"),
    # Mistyped commands and options: one line, not a framed panel of usage.
    Case("unknown-command", ("posts", "lst"), 2, "No such command 'lst'"),
    Case("unknown-option", ("posts", "list", "--limt", "3"), 2, "No such option: --limt"),
    # Queries too long to search (PostgreSQL ran out of stack on 20,000 words).
    Case("search-20000-words", ("posts", "search", words(20_000)), 2, "at most", databases=BOTH),
    Case("search-101-words", ("posts", "search", words(101)), 2, "at most 100", databases=BOTH),
    # A database from a newer version of Omvärld: refused by every command (PostgreSQL's
    # commands asked for `db upgrade` before, which then failed with a traceback).
    *(
        Case(
            f"newer-schema-{'-'.join(args[:2])}",
            args,
            2,
            NEWER_MESSAGE,
            setup=stamp_newer_schema,
            databases=BOTH if args == ("status",) else SQLITE,
        )
        for args in COMMANDS_OPENING_THE_DATABASE
    ),
    Case(
        "newer-schema-db-upgrade",
        ("db", "upgrade"),
        2,
        NEWER_MESSAGE,
        setup=stamp_newer_schema,
        databases=BOTH,
    ),
    # Files of the database as output: a journal that does not exist yet would be created.
    Case(
        "opml-import-out-journal",
        ("sources", "import-opml", "feeds.opml", "--out", "omvarld.db-journal"),
        2,
        "--out: omvarld.db-journal is a file of the database",
        write_opml,
    ),
    # Broken settings and surroundings.
    Case(
        "database-url-unparsable",
        ("status",),
        2,
        "'postgresql+psycopg://omvarld:***@[::1/omvarld' is not a URL",  # no password shown
        unparsable_database_url,
    ),
    Case(
        "opml-out-missing-directory",
        ("sources", "export-opml", "--out", "no/such/feeds.opml"),
        1,
        "--out: cannot write no/such/feeds.opml",
    ),
]


def run_cli(workspace: Workspace, *args: str, env: dict[str, str] | None = None) -> Any:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMVARLD_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(workspace.config), *args],
        capture_output=True, text=True, cwd=workspace.directory, env=environment | (env or {}),
        timeout=120,
    )  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path, database_url: str) -> Workspace:
    """A config file and a database at the newest schema, no sources."""
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    return Workspace(tmp_path, write_config(tmp_path, database_url), database_url)


@pytest.mark.parametrize(
    ("database_url", "case"),
    [pytest.param(db, case, id=f"{case.id}-{db}") for case in CASES for db in case.databases],
    indirect=["database_url"],
)
def test_hostile_input_ends_in_one_line_and_the_documented_exit_code(
    workspace: Workspace, case: Case
) -> None:
    if case.setup is not None:
        case.setup(workspace)

    done = run_cli(workspace, *case.args, env=case.env)

    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert case.expected in done.stderr, done.stderr
    assert done.returncode == case.expected_code, done.stderr


# Anything still unforeseen ends in one line too. Here: a machine without time zone data, where
# the default zone (Europe/Stockholm) is needed to show times. (On SQLite only: psycopg warns on
# stderr about the server's zone on such a machine.)


def without_time_zones(workspace: Workspace) -> dict[str, str]:
    if importlib.util.find_spec("tzdata") is not None:
        pytest.skip("the tzdata package supplies time zones whatever PYTHONTZPATH says")
    return {"PYTHONTZPATH": str(workspace.directory / "no-time-zones")}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unforeseen_error_is_one_line_and_exit_1(workspace: Workspace) -> None:
    done = run_cli(workspace, "posts", "list", env=without_time_zones(workspace))

    assert done.returncode == 1
    assert done.stderr == (
        "internal error: 'No time zone found with key Europe/Stockholm'; run with -v for details\n"
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unforeseen_error_shows_its_traceback_with_verbose(workspace: Workspace) -> None:
    done = run_cli(workspace, "-v", "posts", "list", env=without_time_zones(workspace))

    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert "ZoneInfoNotFoundError" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("internal error: ")


# Rows stored before ingest removed control characters still hold them: the commands that print
# stored text remove them on the way out.

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"
CONTROL = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))} - {"\t", "\n"}


def test_stored_escape_sequences_do_not_reach_the_terminal(
    workspace: Workspace, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/nyheter.xml", "rss20.xml")
    write_config(workspace.directory, workspace.database_url, feed_source(url, key="kommunen"))
    assert run_cli(workspace, "collect", "--all").returncode == 0
    engine = make_engine(workspace.database_url)
    with engine.begin() as connection:  # as a hostile feed's post was stored before the fix
        connection.execute(
            posts.update().values(
                title=ESCAPES + posts.c.title + ESCAPES,
                text=ESCAPES + posts.c.text,
                url=posts.c.url + ESCAPES,
            )
        )
        connection.execute(digests.insert().values(archived_digest(ESCAPES)))
    engine.dispose()

    printed = [
        run_cli(workspace, "posts", "list", env=WIDE),
        run_cli(workspace, "posts", "search", "snöröjning", env=WIDE),
        run_cli(workspace, "posts", "search", "snöröjning", "--format", "csv"),
        run_cli(workspace, "digest", "show", "1"),
    ]

    for done in printed:
        assert done.returncode == 0, done.stderr
        assert not CONTROL & set(done.stdout.replace("\r\n", "\n")), done.args
    listed, table, as_csv, digest = (done.stdout for done in printed)
    assert "]0;pwned[2J31mSnöröjningen har startat" in listed
    assert "]0;pwned[2J31mSnöröjningen har startat" in table
    (hit,) = csv.DictReader(io.StringIO(as_csv))
    assert hit["title"].startswith("]0;pwned[2J31mSnöröjningen har startat")
    assert "Subject: Omvärld v. 48: ]0;pwned[2J31m" in digest
    assert "1. ]0;pwned[2J31mSnöröjningen" in digest


WIDE = {"COLUMNS": "400"}  # a table row on one line, so that a title is not wrapped


def archived_digest(escapes: str) -> dict[str, Any]:
    """A digest archived before the fix, its subject and text carrying a post's escapes."""
    message = EmailMessage()
    message["Subject"] = f"Omvärld v. 48: {escapes}"
    message.set_content(f"Veckans inlägg\n\n1. {escapes}Snöröjningen har startat\n")
    now = datetime.now(UTC)
    return {
        "recipient": "anna@example.se", "week": "2026-W48", "status": "sent",
        "subject": message["Subject"], "message": message.as_string(), "created_at": now,
        "claimed_at": now, "sent_at": now, "attempts": 1,
    }  # fmt: skip
