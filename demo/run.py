"""`make demo`: collect bundled sample feeds, served on loopback, into a demo database.

Runs offline. The feeds in demo/feeds/ are written in the style of Swedish public-sector
publishers: a municipality's news, a region, Krisinformation, a YouTube channel feed, a Flickr
photo feed and a Mastodon account feed. Everything it writes (config, database, digests) goes
into one directory, demo/ by default, apart from what `make run` writes.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
FEEDS = HERE / "feeds"
DEMO_WEEK = "2026-W48"
WEB_PORT = 8080  # what `omvarld web` listens on by default

# (key, file, organisation, groups)
SOURCES = [
    ("katrineholm-nyheter", "katrineholm-nyheter.xml", "Katrineholms kommun", ["kommuner"]),
    ("region-sormland-nyheter", "region-sormland.xml", "Region Sörmland", ["regioner"]),
    ("krisinformation-nyheter", "krisinformation.xml", "Krisinformation.se", ["myndigheter"]),
    ("skatteverket-youtube", "youtube-skatteverket.xml", "Skatteverket", ["myndigheter"]),
    ("trafikverket-flickr", "flickr-trafikverket.xml", "Trafikverket", ["myndigheter"]),
    (
        "krisinformation-mastodon",
        "mastodon-krisinformation.xml",
        "Krisinformation.se",
        ["myndigheter"],
    ),
]


GROUP_NAMES = {"kommuner": "Kommuner", "regioner": "Regioner", "myndigheter": "Myndigheter"}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Demo:
    """Where the demo writes: its own config, database and outbox in one directory."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "omvarld-demo.toml"

    @property
    def database(self) -> Path:
        return self.directory / "omvarld-demo.db"

    @property
    def outbox(self) -> Path:
        return self.directory / "outbox"


def start_afresh(demo: Demo) -> None:
    """Remove the previous run's database and digests: the week's digest is archived once
    sent, so a second run on the same database would send nothing and show the old one."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        demo.database.with_name(demo.database.name + suffix).unlink(missing_ok=True)
    if demo.outbox.is_dir():
        for old in demo.outbox.glob("*.eml"):
            old.unlink()
        for old in demo.outbox.glob("*.html"):
            old.unlink()


def shown(path: Path) -> str:
    """A path as the reader types it here: relative when it is below the current directory."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def omvarld_command() -> list[str]:
    """How to run omvarld from this shell: the virtual environment's own script, which is not
    on PATH unless the environment is activated (so a bare `omvarld` is not found)."""
    script = Path(sys.executable).parent / "omvarld"
    program = [shown(script)] if script.exists() else [shown(Path(sys.executable)), "-m", "monitor"]
    if "/" not in program[0]:  # a shell looks a bare name up on PATH
        program[0] = f"./{program[0]}"
    return program


def write_config(demo: Demo, port: int) -> None:
    lines = [
        "# Written by demo/run.py for `make demo`; regenerated on every run.",
        "[database]",
        f'url = "sqlite:///{demo.database.name}"',
        "",
        "[collect]",
        "per_host = 8  # every demo feed is on one loopback host",
        "",
        "[digest]",
        'from = "Omvärld demo <omvarld@localhost>"',
        "",
        "[web]",
        "# `omvarld web` on this machine: the digest's links to the full lists point here.",
        f'public_url = "http://127.0.0.1:{WEB_PORT}"',
        "",
        '# Groups by the names readers know (the digest says "Kommuner", not the key).',
        *(
            line
            for key, name in GROUP_NAMES.items()
            for line in (f"[groups.{key}]", f'name = "{name}"', "")
        ),
        "[[recipients]]",
        'email = "kommunikation@katrineholm.se"',
        'name = "Kommunikationsavdelningen"',
        'organisation = "Katrineholms kommun"',
        "",
    ]
    for key, file, organisation, groups in SOURCES:
        group_list = ", ".join(f'"{g}"' for g in groups)
        lines += [
            "[[sources]]",
            'platform = "feed"',
            f'key = "{key}"',
            f'url = "http://127.0.0.1:{port}/{file}"',
            f'organisation = "{organisation}"',
            f"groups = [{group_list}]",
            "",
        ]
    demo.config.write_text("\n".join(lines), encoding="utf-8")


def omvarld(demo: Demo, *args: str) -> int:
    """Run one command, echoed as the reader would type it."""
    command = [*omvarld_command(), "--config", shown(demo.config), *args]
    print(f"\n$ {shlex.join(command)}", flush=True)
    env = dict(os.environ)
    if not sys.stdout.isatty():
        env.setdefault("COLUMNS", "140")  # tables stay readable when the output is captured
    return subprocess.call(
        [sys.executable, "-m", "monitor", "--config", str(demo.config), *args], env=env
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=HERE,
        help="where the demo's config, database and outbox/ go (default: demo/)",
    )
    demo = Demo(parser.parse_args(argv).dir.resolve())
    demo.directory.mkdir(parents=True, exist_ok=True)
    start_afresh(demo)
    handler = functools.partial(QuietHandler, directory=str(FEEDS))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        write_config(demo, port)
        print(f"Serving {len(SOURCES)} sample feeds from {shown(FEEDS)} on 127.0.0.1:{port}")
        steps = [
            ("db", "upgrade"),
            ("collect", "--all"),
            ("posts", "list", "--limit", "15"),
            ("collect", "--all"),  # a second pass: conditional requests, nothing new
            ("status",),
            # The sample feeds are dated in week 48 of 2026: the digest of that week, "sent"
            # into the outbox and so archived, for the web app's digest archive.
            ("digest", "send", "--week", DEMO_WEEK, "--outbox", shown(demo.outbox)),
        ]
        for step in steps:
            if omvarld(demo, *step) not in (0, 1):
                return 1
        search = [*omvarld_command(), "--config", shown(demo.config), "posts", "search", "kommun"]
        web = [*omvarld_command(), "--config", shown(demo.config), "web", "--port", str(WEB_PORT)]
        print(f"\nThe digest for the demo recipient is in {shown(demo.outbox)}/ (.eml and .html).")
        print("Browse the demo's posts, sources and digest archive with the web app:")
        print(f"  {shlex.join(web)}")
        print(f"and open http://127.0.0.1:{WEB_PORT}/ (Ctrl-C stops it).")
        print(f"The demo database is {shown(demo.database)}. Search it with:")
        print(f"  {shlex.join(search)}")
        return 0
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
