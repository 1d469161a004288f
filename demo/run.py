"""`make demo`: collect bundled sample feeds, served on loopback, into a demo database.

Runs offline. The feeds in demo/feeds/ are written in the style of Swedish public-sector
publishers: a municipality's news, a region, Krisinformation, a YouTube channel feed, a Flickr
photo feed and a Mastodon account feed.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
FEEDS = HERE / "feeds"
CONFIG = HERE / "omvarld-demo.toml"
DATABASE = HERE / "omvarld-demo.db"
OUTBOX = HERE.parent / "outbox"
DEMO_WEEK = "2026-W48"

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


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def write_config(port: int) -> None:
    lines = [
        "# Written by demo/run.py for `make demo`; regenerated on every run.",
        "[database]",
        f'url = "sqlite:///{DATABASE.name}"',
        "",
        "[collect]",
        "per_host = 8  # every demo feed is on one loopback host",
        "",
        "[digest]",
        'from = "Omvärld demo <omvarld@localhost>"',
        "",
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
    CONFIG.write_text("\n".join(lines), encoding="utf-8")


def omvarld(*args: str) -> int:
    command = [sys.executable, "-m", "monitor", "--config", str(CONFIG), *args]
    print(f"\n$ omvarld --config {CONFIG.relative_to(HERE.parent)} {' '.join(args)}", flush=True)
    env = dict(os.environ)
    if not sys.stdout.isatty():
        env.setdefault("COLUMNS", "140")  # tables stay readable when the output is captured
    return subprocess.call(command, env=env)


def main() -> int:
    handler = functools.partial(QuietHandler, directory=str(FEEDS))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        write_config(port)
        print(f"Serving {len(SOURCES)} sample feeds from {FEEDS} on 127.0.0.1:{port}")
        steps = [
            ("db", "upgrade"),
            ("collect", "--all"),
            ("posts", "list", "--limit", "15"),
            ("collect", "--all"),  # a second pass: conditional requests, nothing new
            ("status",),
            # The sample feeds are dated in week 48 of 2026: the digest of that week.
            ("digest", "preview", "--week", DEMO_WEEK, "--outbox", str(OUTBOX)),
        ]
        for step in steps:
            if omvarld(*step) not in (0, 1):
                return 1
        print(f"\nThe demo database is {DATABASE}; try: omvarld --config {CONFIG} posts list")
        print(f"The digest for the demo recipient is in {OUTBOX}/ (.eml and .html).")
        return 0
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
