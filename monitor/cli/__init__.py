"""The `omvarld` command line: one module per command group, each registering its commands on
`app` when imported.

Heavy modules are imported inside commands: start-up time counts when the scheduler or a
benchmark starts the CLI thousands of times. Exit codes: 0 done; 1 the job ran and something
failed (named in the output); 2 bad usage or bad config (one line per problem, no traceback).
"""

from monitor.cli.root import app, main

# The order of these imports is the order `omvarld --help` lists the commands in.
# isort: off
from monitor.cli import config, db, sources, collect, alerts, posts, compare  # noqa: F401
from monitor.cli import digest, retention, export, web  # noqa: F401
# isort: on

__all__ = ["app", "main"]
