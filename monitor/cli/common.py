"""What every command of the `omvarld` CLI shares: the consoles, the Context that loads the
configuration and the database once, `fail`, and how times, counts and stored text are printed.
Contains no command.

Heavy modules are imported inside functions: `omvarld --help` must not load the database or the
HTTP libraries (tests/test_cli_help.py says so), and a plain `omvarld collect` comes in without
Typer (monitor/cli/entry.py), which only a mistake then loads, to raise its Exit.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.config import Config

EXIT_FAILED = 1
EXIT_USAGE = 2

# Without --config or OMVARLD_CONFIG, in the current directory. Here, not in monitor.config:
# `omvarld --help` shows it without loading the config validation (pydantic).
DEFAULT_CONFIG_PATH = "config.toml"

# Past this, a number is a typo or an attack, and SQLite cannot bind an integer over 2**63 - 1.
MAX_INTEGER = 2**63 - 1  # the largest integer both databases store: counts, ids

# Messages never wrap: a path or error split over two lines is harder to read and to grep.
# No emoji codes: a source or organisation named "… :x: …" is printed as written (and Rich's
# table of codes is not loaded to look for them).
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

# Help is plain text: Rich markup would take "[retention]" in a help text for a style and drop it.
PLAIN_HELP: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None}


def configure_logging(verbose: bool) -> None:
    """-v (--verbose) logs each step; else only warnings and errors."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@dataclass
class Context:
    config_path: Path
    _config: Config | None = None
    _engine: Engine | None = None

    def config(self) -> Config:
        from monitor.config import ConfigError, load_config

        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as error:
                for problem in error.problems:
                    err.print(str(problem), markup=False)
                import typer

                raise typer.Exit(EXIT_USAGE) from None
        return self._config

    def engine(self, *, upgrade: bool = True) -> Engine:
        """The database, its schema made current where that is ours to do."""
        from monitor.db import DatabaseError, ensure_schema, make_engine

        if self._engine is None:
            try:
                engine = make_engine(self.config().database_url)
                if upgrade:
                    ensure_schema(engine)
            except DatabaseError as error:
                fail(str(error))
            self._engine = engine
        return self._engine

    def close(self) -> None:
        """Give back the database connections: a process that runs commands one after another
        (the tests) must not keep one pool per command open."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def synced_engine(self) -> Engine:
        """The database with the config's sources written into it."""
        from monitor.sources import sync_sources

        engine = self.engine()
        report = sync_sources(engine, self.config(), datetime.now(UTC))
        for key in report.deactivated:
            err.print(f"source {key} is no longer configured: marked inactive, posts kept")
        return engine


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    import typer

    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def shown(value: str | None) -> Text:
    """Stored text (a title, an author, a mail server's answer) as printed: plain, so that a
    "[link=…]" in it is not Rich markup, and without the control characters of rows stored
    before ingest removed them, so that it cannot drive the terminal."""
    from monitor.text import strip_control

    return Text(strip_control(value or ""))


def refuse_own_files(config: Config, option: str, *targets: Path) -> None:
    """Refuse to write over the database, its journals or the configuration
    (`export --out omvarld.db` once replaced the database with CSV and exited 0). Paths are
    compared resolved, so neither a relative path nor a symbolic link gets past."""
    from monitor.db import database_files

    database = database_files(config.database_url)
    own = dict.fromkeys(database[1:], "a file of the database")
    own |= dict.fromkeys(database[:1], "the database")
    own[config.path.resolve()] = "the configuration file"
    for target in targets:
        what = own.get(target.resolve())
        if what:
            fail(f"{option}: {target} is {what}; write to another file")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let `kill` (or a cron timeout) stop an export like Ctrl-C does: the half-written
    temporary file is removed on the way out instead of staying on disk."""

    def interrupt(_signal: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def plural(number: int, noun: str) -> str:
    """'1 post', '2 posts'; '2 deliveries'."""
    if number == 1:
        return f"{number} {noun}"
    return f"{number} {noun[:-1]}ies" if noun.endswith("y") else f"{number} {noun}s"


def zone_of(config: Config) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(config.digest.timezone)  # validated with the config


def when(moment: datetime | None, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "–"


def parse_moment_option(option: str, value: str) -> datetime:
    from monitor.filters import parse_moment

    try:
        return parse_moment(value, datetime.now(UTC))
    except ValueError as error:
        fail(f"{option}: {error}")
    except OverflowError:  # 99999999d back, or 9999-12-31 at -23:59 moved to UTC
        fail(f"{option}: {value!r} reaches past the dates this can handle (years 1 to 9999)")


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else list(v) if isinstance(v, tuple) else v
        for k, v in values.items()
    }
