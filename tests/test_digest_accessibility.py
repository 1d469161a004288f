"""The digest opened in a browser ("view in browser" shows it as mailed) has no WCAG 2.1 A/AA
violations axe-core can find, in light and dark mode, with and without the web app's links.

Headless Chromium (Debian's `chromium`) through Playwright; every request but the page itself is
refused, so no test reaches the internet (the video thumbnail's host included)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from digest.render import render_digest
from tests.test_digest_render import SETTINGS, WEB, english, huge_week, swedish_week

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` to run axe")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def refuse_network(route: Any) -> None:
    route.abort()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "name", ["swedish with links", "english, every list cut, with links", "swedish, no [web]"]
)
def test_the_digest_has_no_wcag_aa_violations(browser: Any, scheme: str, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    html = {
        "swedish with links": lambda: render_digest(swedish_week(), SETTINGS, WEB).html,
        "english, every list cut, with links": lambda: (
            render_digest(english(huge_week()), SETTINGS, WEB).html
        ),
        "swedish, no [web]": lambda: render_digest(swedish_week(), SETTINGS).html,
    }[name]()
    context = browser.new_context(color_scheme=scheme)
    try:
        page = context.new_page()
        page.route("**/*", refuse_network)
        page.set_content(html)
        violations = Axe().run(page, options=WCAG_AA).response["violations"]
    finally:
        context.close()

    assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []
