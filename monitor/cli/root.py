"""The `omvarld` command itself: its global options and the console script's entry point, which
turns every way a command ends into an exit code and at most one line on stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.cli.common import (
    DEFAULT_CONFIG_PATH,
    EXIT_FAILED,
    EXIT_USAGE,
    PLAIN_HELP,
    Context,
    err,
    out,
)

app = typer.Typer(
    name="omvarld",
    help="Omvärld: monitor public-sector feeds and social accounts, and send weekly digests.",
    add_completion=False,
    pretty_exceptions_enable=False,
    **PLAIN_HELP,
)


def _print_version(asked: bool) -> None:
    if asked:
        from monitor.export import omvarld_version

        out.print(f"omvarld {omvarld_version()}", markup=False)
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option("--config", "-c", envvar="OMVARLD_CONFIG", help="Configuration file."),
    ] = Path(DEFAULT_CONFIG_PATH),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Context(config_path=config)


def main() -> None:
    """The console script: every way a command ends is an exit code and at most one line on
    stderr; a traceback only with -v."""
    try:
        # Not standalone: Typer would print a usage mistake as a framed panel of several lines.
        code = app(standalone_mode=False)
    except typer.TyperException as error:  # Click's usage errors, raised before a command runs
        sys.exit(_report_usage_error(error))
    except typer.Abort:  # Ctrl-D at a confirmation prompt
        err.print("Aborted.")
        sys.exit(EXIT_FAILED)
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
    # A command returns None; an Exit (ours, or Ctrl-C's 130) comes back as its code.
    sys.exit(code if isinstance(code, int) else 0)


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
    if logging.getLogger().isEnabledFor(logging.INFO):
        import traceback

        traceback.print_exc()
