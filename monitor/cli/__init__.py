"""The `omvarld` command line: one module per command group, each registering its commands on
`app` when imported.

Heavy modules are imported inside commands: start-up time counts when the scheduler or a
benchmark starts the CLI thousands of times. `app` itself (Typer and every command) is loaded on
first use: the console script `main` needs it for everything but a plain `collect`. Exit codes:
0 done; 1 the job ran and something failed (named in the output); 2 bad usage or bad config (one
line per problem, no traceback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.cli.entry import main

if TYPE_CHECKING:
    from monitor.cli.commands import app


def __getattr__(name: str) -> Any:
    if name == "app":
        from monitor.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
