"""Feeds on public addresses redirecting elsewhere, collected by the real `omvarld` CLI.

Every loopback test server is internal, and a source configured at an internal address may be
redirected anywhere (issue 10 item 9), so the refusal needs a feed on a public address. Run as
`unshare -rn python -m tests.redirect_driver DIRECTORY` (tests/test_redirects.py does): a fresh
network namespace holds only `lo` and no route out, so the public addresses given to `lo` here
reach nothing but this process's servers. Prints one JSON summary per scenario on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from monitor.db import make_engine
from monitor.models import posts, sources
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer

PUBLIC = "45.0.0.1"  # where the configured feeds live: global unicast, not internal
OTHER_PUBLIC = "45.0.0.2"  # a second public host a feed may move to
ADMIN_PATH = "/internal-admin?token=abc"  # what the issue saw requested on the internal port
COMMAND_TIMEOUT_S = 60  # a hung collection fails the test instead of blocking the suite


def add_public_addresses() -> None:
    """Bring `lo` up with both public addresses on it (only inside a fresh namespace)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in (PUBLIC, OTHER_PUBLIC):
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)


def omvarld(config: Path, *args: str) -> dict[str, Any]:
    """Run the CLI as a user does; its exit code and output lines."""
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return {
        "exit": result.returncode,
        "stdout": result.stdout.splitlines(),
        "stderr": result.stderr.splitlines(),
    }


def collect(directory: Path, body: str) -> dict[str, Any]:
    """`db upgrade` then `collect --all` on a fresh SQLite database; the stored rows after."""
    directory.mkdir()
    database = f"sqlite:///{directory / 'omvarld.db'}"
    config = write_config(directory, database, body)
    summary = {
        "upgrade": omvarld(config, "db", "upgrade"),
        "collect": omvarld(config, "collect", "--all"),
    }
    engine = make_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sources.c.id, sources.c.key, sources.c.fetch_url)).all()
        stored = {
            row.key: {
                "fetch_url": row.fetch_url,
                "posts": connection.execute(
                    sa.select(sa.func.count()).where(posts.c.source_id == row.id)
                ).scalar_one(),
            }
            for row in rows
        }
    engine.dispose()
    return {**summary, "sources": stored}


def redirected_inward(directory: Path) -> dict[str, Any]:
    """A 302 and a 301 from a public feed to a feed on the internal admin path."""
    with FeedServer(PUBLIC) as public, FeedServer() as internal:
        target = internal.add_fixture(ADMIN_PATH, "rss20.xml")
        temporary = public.add("/feed.xml", status=302, location=target, validators=False)
        permanent = public.add("/moved.xml", status=301, location=target, validators=False)
        body = feed_source(temporary, key="temporary")
        body += feed_source(permanent, "Flens kommun", key="permanent")
        summary = collect(directory, body)
        asked = {
            "public": [r.path for r in public.requests],
            "internal": [r.path for r in internal.requests],
        }
    return {**summary, "target": target, "requests": asked}


def redirected_outward(directory: Path) -> dict[str, Any]:
    """The same 302 and 301, to a feed on another public address."""
    with FeedServer(PUBLIC) as public, FeedServer(OTHER_PUBLIC) as other:
        new_home = other.add_fixture("/rss.xml", "rss20.xml")
        elsewhere = other.add_fixture("/atom.xml", "atom.xml")
        temporary = public.add("/feed.xml", status=302, location=elsewhere, validators=False)
        permanent = public.add("/moved.xml", status=301, location=new_home, validators=False)
        body = feed_source(temporary, key="temporary")
        body += feed_source(permanent, "Flens kommun", key="permanent")
        summary = collect(directory, body)
        asked = {"other": [r.path for r in other.requests]}
    return {**summary, "target": new_home, "requests": asked}


def main() -> None:
    directory = Path(sys.argv[1])
    add_public_addresses()
    summary = {
        "inward": redirected_inward(directory / "inward"),
        "outward": redirected_outward(directory / "outward"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
