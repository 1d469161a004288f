"""The `omvarld` command itself, its global options. The console script is in
`monitor/cli/entry.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import DEFAULT_CONFIG_PATH, PLAIN_HELP, Context, configure_logging, out

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
    configure_logging(verbose)
    ctx.obj = Context(config_path=config)
    ctx.call_on_close(ctx.obj.close)
