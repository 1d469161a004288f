"""The whole `omvarld` app: the root command and every command group, each registering its
commands on `app` when imported. Loading it loads Typer: the console script does so only for
what its short way in does not read (see `monitor/cli/entry.py`)."""

from monitor.cli.root import app

# The order of these imports is the order `omvarld --help` lists the commands in.
# isort: off
from monitor.cli import config, db, sources, collect, alerts, posts, compare  # noqa: F401
from monitor.cli import digest, retention, export, web  # noqa: F401
# isort: on

__all__ = ["app"]
