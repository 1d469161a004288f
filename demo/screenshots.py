"""Screenshots of the web app's main pages on the demo database, for the README.

Run `make demo` first, then `.venv/bin/python demo/screenshots.py`: it starts `omvarld web` on
the demo's config, opens each page in headless Chromium (Debian's `chromium`) and writes
docs/screenshots/*.png, and the demo's digest as mailed to docs/digest-demo.png.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "screenshots"
CONFIG = HERE / "omvarld-demo.toml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def main() -> int:
    if not CONFIG.exists():
        print("run `make demo` first: it writes the demo database", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(CONFIG), "web", "--port", str(port)],
        env={**os.environ, "OMVARLD_WEB_SECRET": "demo-screenshots-secret-0123456789"},
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        posts = get_json(base + "/api/posts?limit=1000")["posts"]
        counted = max(
            posts, key=lambda p: len(get_json(f"{base}/api/posts/{p['id']}/metrics")["metrics"])
        )
        digests = []
        pages = {
            "home": "/?week=2026-W48",
            "search": "/search?q=sn%C3%B6*",
            "post": f"/posts/{counted['id']}",
            "sources": "/sources",
            "digests": "/digests",
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="sv-SE")
            for name, path in pages.items():
                page.goto(base + path)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
                print(f"wrote {OUT / name}.png ({path})")
            page.goto(base + "/digests")
            link = page.locator("a[href^='/digests/']").first
            if link.count():
                digests.append(link.get_attribute("href"))
                page.goto(base + str(digests[0]))
                page.screenshot(path=str(OUT / "digest.png"), full_page=False)
                print(f"wrote {OUT / 'digest.png'} ({digests[0]})")
            # The demo's digest as mailed, for the README's "this is what arrives".
            mailed = sorted((HERE / "outbox").glob("*.html"))
            if mailed:
                page.set_viewport_size({"width": 680, "height": 1500})
                page.goto(mailed[-1].as_uri())
                page.screenshot(path=str(OUT.parent / "digest-demo.png"), full_page=True)
                print(f"wrote {OUT.parent / 'digest-demo.png'} ({mailed[-1].name})")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
