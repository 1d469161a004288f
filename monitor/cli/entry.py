"""The console script `omvarld`: every way a command ends is an exit code and at most one line on
stderr; a traceback only with -v. Contains no command.

A plain `omvarld [-c FILE] [-v] collect [--all] [--source KEY …] [--platform P]`, what cron and
schedulers run, comes in a short way: its options are read here and the collection runs without
loading Typer and every other command, a tenth of a second of a warm pass of 2,000 feeds
(issue 15). Anything else (help, --version, another command, an option not read here, a
mistake) goes to Typer, which knows them all; tests/test_cli_entry.py holds both to one reading.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from monitor.cli.common import DEFAULT_CONFIG_PATH, EXIT_FAILED, EXIT_USAGE, err

# What Typer answers Ctrl-C with (the shell's 128 + SIGINT).
EXIT_INTERRUPTED = 130
CONFIG_ENV = "OMVARLD_CONFIG"  # what --config defaults to, as `main_options` declares


def main() -> None:
    """The console script."""
    try:
        collect = read_plain_collect(sys.argv[1:], os.environ)
        if collect is not None:
            end_process(_collect(collect))
        code = _run_typer()
    except Exception as error:
        _print_traceback_if_verbose()
        if _is_database_error(error):
            # The database went away or refused mid-command: one line, not a traceback.
            from monitor.db import first_line

            err.print(f"error: database: {_one_line(first_line(error))}", markup=False)
        else:
            message = _one_line(str(error)) or type(error).__name__
            err.print(f"internal error: {message}; run with -v for details", markup=False)
        sys.exit(EXIT_FAILED)
    sys.exit(code)


def end_process(code: int) -> NoReturn:
    """Exit with `code` as Python would, but without taking the heap apart: the exit handlers
    run (logging's flush among them) and the output is flushed; then the process ends. Freeing
    the thousand modules and every object of a pass one by one took 0.1 s, a seventh of a warm
    pass of 2,000 feeds (issue 15), and gave nothing back that the system does not. Only when
    no other thread runs: Python's own exit would wait for it."""
    import atexit
    import contextlib
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # The reader may have gone away (`| head`), or the stream been closed.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _run_typer() -> int:
    import typer

    from monitor.cli import app

    try:
        # Not standalone: Typer would print a usage mistake as a framed panel of several lines.
        code = app(standalone_mode=False)
    except typer.TyperException as error:  # Click's usage errors, raised before a command runs
        return _report_usage_error(error)
    except typer.Abort:  # Ctrl-D at a confirmation prompt
        err.print("Aborted.")
        return EXIT_FAILED
    # A command returns None; an Exit (ours, or Ctrl-C's 130) comes back as its code.
    return code if isinstance(code, int) else 0


@dataclass(frozen=True)
class PlainCollect:
    """The options of a plain `omvarld … collect …`, as Typer would read them."""

    config: Path
    verbose: bool = False
    everything: bool = False
    keys: tuple[str, ...] = ()
    platform: str | None = None


# The options read here, by each of their names; every other option goes to Typer.
_GLOBAL_FLAGS = {"--verbose": "--verbose", "-v": "--verbose"}
_GLOBAL_VALUED = {"--config": "--config", "-c": "--config"}
_COLLECT_FLAGS = {"--all": "--all"}
_COLLECT_VALUED = {"--source": "--source", "--platform": "--platform"}


def read_plain_collect(args: Sequence[str], environ: Mapping[str, str]) -> PlainCollect | None:
    """A plain `collect` command line read without Typer, or None for anything else."""
    global_options = _read_options(args, _GLOBAL_FLAGS, _GLOBAL_VALUED)
    if global_options is None:
        return None
    read, position = global_options
    if args[position : position + 1] != ["collect"]:
        return None
    collect_options = _read_options(args[position + 1 :], _COLLECT_FLAGS, _COLLECT_VALUED)
    if collect_options is None or collect_options[1] != len(args) - position - 1:
        return None  # a word after collect's options: Typer says what is wrong with it
    read |= collect_options[0]
    configs, platforms = read.get("--config"), read.get("--platform")
    return PlainCollect(
        # The last of a repeated option wins, as in Click; an empty variable counts as unset.
        config=Path(configs[-1] if configs else environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH),
        verbose="--verbose" in read,
        everything="--all" in read,
        keys=tuple(read.get("--source", ())),
        platform=platforms[-1] if platforms else None,
    )


def _read_options(
    args: Sequence[str], flags: Mapping[str, str], valued: Mapping[str, str]
) -> tuple[dict[str, list[str]], int] | None:
    """The options at the start of `args` (flags, and options with a value after a space or,
    for long names, after "="), by their long names, and where the first other word is; None
    when an option is not one of these, or a value is empty or looks like an option."""
    read: dict[str, list[str]] = {}
    position = 0
    while position < len(args) and args[position].startswith("-"):
        name, equals, value = args[position].partition("=")
        if not equals and name in flags:
            read.setdefault(flags[name], [])
            position += 1
            continue
        if name not in valued or (equals and not name.startswith("--")):
            return None
        if not equals:
            if position + 1 == len(args):
                return None
            position += 1
            value = args[position]
        if not value or value.startswith("-"):
            return None  # Typer would take `-v` after --config for the file: not what was meant
        read.setdefault(valued[name], []).append(value)
        position += 1
    return read, position


def _collect(options: PlainCollect) -> int:
    from monitor.cli.collecting import collect_once
    from monitor.cli.common import Context, configure_logging

    configure_logging(options.verbose)
    context = Context(config_path=options.config)
    try:
        return collect_once(
            context,
            everything=options.everything,
            keys=options.keys,
            platform=options.platform,
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`| head`): no more output, no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as error:
        # `fail` and a broken config end the command with Typer's Exit: loaded only then.
        typer = sys.modules.get("typer")
        if typer is not None and isinstance(error, typer.Exit):
            return int(error.exit_code)
        raise
    finally:
        context.close()


def _is_database_error(error: Exception) -> bool:
    # Asked of the loaded module, not imported for the question: `omvarld --help` stays free of
    # SQLAlchemy, and only a command that loaded it can have raised its errors.
    sqlalchemy = sys.modules.get("sqlalchemy")
    return sqlalchemy is not None and isinstance(error, sqlalchemy.exc.SQLAlchemyError)


def _report_usage_error(error: Any) -> int:
    """One line naming the option and what is wrong with it, and where the help is."""
    # The help that `omvarld posts` (no command) asks for is already printed; checked by name
    # as Typer itself does, the class being internal to it.
    if type(error).__name__ != "NoArgsIsHelpError":
        message = _one_line(error.format_message())
        context = getattr(error, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        err.print(f"error: {message}{hint}", markup=False)
    return int(getattr(error, "exit_code", EXIT_USAGE))


def _one_line(text: str) -> str:
    """An error's text on one line, without control characters: a database or a library may
    quote stored text, or the input, in its message."""
    from monitor.text import strip_control

    return " ".join(strip_control(text).split())


def _print_traceback_if_verbose() -> None:
    # -v (and `run`, which logs each step) set the log to INFO: the place for the details.
    import logging

    if logging.getLogger().isEnabledFor(logging.INFO):
        import traceback

        traceback.print_exc()
