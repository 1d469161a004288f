"""Headless Chromium for the web app's tests: Playwright's sync API driving Debian's `chromium`
(no browser download), axe-core for accessibility, and a watch on every page for script that
should never run.

A watched page fails its test when anything a hostile post carries runs: a dialog (`alert`),
a call of `window.__xss(ID)` (defined on every page and frame before any of its scripts), or a
document title set to `XSS-ID`. The XSS fixture's vectors report themselves in exactly these
ways (tests/fixtures/xss/make_feed.py). The page can reach nothing but loopback: a request
anywhere else is aborted and recorded, so no test reaches the internet even when a post links
to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite runs as root in CI, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# WCAG 2.1 A and AA: what DOS-lagen (the Swedish accessibility act) requires of public services.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
XSS_VECTORS = json.loads(
    (Path(__file__).parent / "fixtures" / "xss" / "vectors.json").read_text(encoding="utf-8")
)
# What a vector sets the title to: exactly this, so a post title that merely shows a vector's
# text (escaped, as it should be) is not mistaken for one that ran.
XSS_TITLE = re.compile(r"\s*XSS-(\d+)\s*")
# Every request the page makes to an address not on loopback goes through the abort handler.
NOT_LOOPBACK = re.compile(r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost|\[::1\])[:/])[a-z]+:")
# Defined in every frame before the frame's own scripts: what a vector calls if it runs.
DETECTOR = "window.__xss = (id) => { window.__xss_report(String(id)); };"
# Long enough for the handlers a page load triggers (onerror of a broken image, onload of an
# SVG, autofocus) to have fired after the load event.
SETTLE_MS = 100


def describe_vector(vector_id: str) -> str:
    return f"vector {vector_id} ({XSS_VECTORS.get(vector_id, 'not in vectors.json')})"


@dataclass
class WatchedPage:
    """A page and what happened on it that must not: dialogs, reported vectors, XSS titles,
    navigations off the app, requests off loopback."""

    page: Any  # playwright.sync_api.Page
    base_url: str
    dialogs: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    navigated_away: list[str] = field(default_factory=list)

    def goto(self, path: str, status: int | None = 200) -> Any:
        """Open `path` on the app, wait for it to settle; the response (its status checked
        unless `status` is None)."""
        url = path if path.startswith("http") else self.base_url + path
        response = self.page.goto(url, wait_until="load")
        assert response is not None, f"no response for {url}"
        self.page.wait_for_timeout(SETTLE_MS)
        if status is not None:
            assert response.status == status, f"{url}: HTTP {response.status}, not {status}"
        return response

    def executions(self) -> list[str]:
        """What ran that should not have, one readable line each."""
        found = [f"dialog: {message}" for message in self.dialogs]
        found += [f"window.__xss called by {describe_vector(v)}" for v in self.reports]
        for frame in self.page.frames:
            try:
                title = frame.evaluate("document.title")
            except Exception:  # a frame that went away, or one that cannot be read
                continue
            if ran := XSS_TITLE.fullmatch(title):
                found.append(f"title set by {describe_vector(ran.group(1))}")
        found += [f"the page navigated away to {url}" for url in self.navigated_away]
        return found

    def assert_no_script_ran(self, where: str = "") -> None:
        ran = self.executions()
        assert not ran, f"script ran on {where or self.page.url}:\n" + "\n".join(ran)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for a test module; skips, saying why, when Debian's chromium is
    missing. Not for the session: Playwright's sync API keeps an event loop running while it
    is open, and every later test that calls asyncio.run (the collectors) would fail."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def watched_page(
    browser: Any,
    base_url: str,
    language: str = "sv",
    bypass_csp: bool = False,
    script_may_run: bool = False,
) -> Iterator[WatchedPage]:
    """A new page in a fresh context asking for `language` (Accept-Language), watched: when
    the block ends, it fails if script ran on the page it was left on (unless
    `script_may_run`, for the tests of the watch itself).

    `bypass_csp` turns off the page's Content-Security-Policy: the CSP alone would stop most
    inline script, so with it off a test sees whether escaping and sanitising stop it too.
    """
    context = browser.new_context(
        locale="sv-SE" if language == "sv" else "en-GB",
        extra_http_headers={"Accept-Language": language},
        bypass_csp=bypass_csp,
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    watched = WatchedPage(page=page, base_url=base_url.rstrip("/"))
    context.expose_binding("__xss_report", lambda source, value: watched.reports.append(value))
    context.add_init_script(DETECTOR)

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_navigated(frame: Any) -> None:
        # Following the app's own links is what the flows do; leaving the app is not.
        if frame == page.main_frame and not frame.url.startswith(watched.base_url + "/"):
            watched.navigated_away.append(frame.url)

    def abort(route: Any) -> None:
        watched.blocked.append(route.request.url)
        route.abort()

    page.on("dialog", on_dialog)
    page.on("framenavigated", on_navigated)
    context.route(NOT_LOOPBACK, abort)
    try:
        yield watched
        if not script_may_run:
            watched.assert_no_script_ran()
    finally:
        context.close()


def assert_accessible(page: Any, context: str | None = None) -> None:
    """Fail with axe-core's readable report unless the page has no WCAG 2.1 A/AA violation."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    results = Axe().run(page, context=context, options=options)
    assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"


def security_headers_problems(headers: dict[str, str]) -> list[str]:
    """What the response's headers lack of issue 12's rules, one line each (none: fine)."""
    problems = []
    policy = headers.get("content-security-policy")
    if not policy:
        return ["no Content-Security-Policy header"]
    directives = {
        name.lower(): value.split()
        for name, _, value in (d.strip().partition(" ") for d in policy.split(";") if d.strip())
    }
    for name in ("script-src", "style-src"):
        # A missing directive falls back to default-src.
        sources = directives.get(name, directives.get("default-src"))
        if sources is None:
            problems.append(f"CSP has neither {name} nor default-src: {policy}")
        elif "'unsafe-inline'" in sources:
            problems.append(f"CSP {name} allows 'unsafe-inline': {policy}")
    if directives.get("frame-ancestors") != ["'none'"]:
        problems.append(f"CSP lacks frame-ancestors 'none': {policy}")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if not headers.get("referrer-policy"):
        problems.append("no Referrer-Policy")
    return problems


def dangerous_markup(page: Any) -> list[str]:
    """Elements and attributes in the page that could run script or leave it when a person
    clicks, hovers or submits (the watch sees only what runs by itself): inline handlers,
    non-http(s) URLs in any attribute that takes a URL, scripts, frames, objects, <base>,
    <meta http-equiv>. One line per finding, with the element's markup."""
    findings: list[str] = []
    for frame in page.frames:  # a digest shown in a sandboxed frame is read too
        try:
            found = frame.evaluate(DANGEROUS_MARKUP_SCRIPT)
        except Exception:
            if frame == page.main_frame:
                raise  # a check that cannot run must not pass
            continue  # a frame that went away, or a cross-origin one
        prefix = "" if frame == page.main_frame else f"in frame {frame.url[:60]}: "
        findings += [prefix + line for line in found]
    return findings


DANGEROUS_MARKUP_SCRIPT = r"""
() => {
  const found = [];
  const urlAttributes = ['href', 'src', 'srcset', 'action', 'formaction', 'data', 'poster',
                         'background', 'code', 'codebase', 'xlink:href', 'lowsrc', 'dynsrc'];
  const safeUrl = (value) => {
    const v = value.trim();
    if (v === '' || v.startsWith('#') || v.startsWith('/') || v.startsWith('?')) return true;
    try {
      const scheme = new URL(v, document.baseURI).protocol;
      return scheme === 'http:' || scheme === 'https:' || scheme === 'mailto:';
    } catch (e) { return false; }
  };
  const describe = (el) => el.outerHTML.slice(0, 200);
  // <link rel=icon href="data:,"> is how a page asks for no favicon: it loads nothing.
  const noIcon = (el, value) => el.tagName === 'LINK' && value === 'data:,';
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    // A frame the page itself sandboxes without scripts (a digest shown as mailed) is safe.
    const scriptless = tag === 'iframe' && el.hasAttribute('sandbox')
      && !el.getAttribute('sandbox').split(/\s+/).includes('allow-scripts');
    if (['iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'base'].includes(tag)
        && !scriptless) {
      found.push(`<${tag}> element: ${describe(el)}`);
    }
    const equiv = (el.getAttribute('http-equiv') || '').toLowerCase();
    if (tag === 'meta' && ['refresh', 'set-cookie'].includes(equiv)) {
      found.push(`<meta http-equiv=${equiv}>: ${describe(el)}`);
    }
    if (tag === 'script' && !el.src) {
      if (el.textContent.trim()) found.push(`inline <script>: ${describe(el)}`);
    }
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith('on')) found.push(`${name} handler: ${describe(el)}`);
      if (urlAttributes.includes(name)) {
        const values = name === 'srcset'
          ? attr.value.split(',').map((part) => part.trim().split(/\s+/)[0])
          : [attr.value];
        for (const value of values) {
          if (!safeUrl(value) && !noIcon(el, value)) {
            found.push(`${name}=${value.slice(0, 80)}: ${describe(el)}`);
          }
        }
      }
      if (name === 'style' && /expression|javascript:|behavior|binding/i.test(attr.value)) {
        found.push(`style with script: ${describe(el)}`);
      }
    }
  }
  return found;
}
"""


def open_each(
    watched: WatchedPage, paths: list[str], check: Callable[[WatchedPage, str], list[str]]
) -> list[str]:
    """Open every path on one page and collect `check`'s findings for each, so one test
    reports every bad page at once rather than the first."""
    findings = []
    for path in paths:
        watched.dialogs.clear()
        watched.reports.clear()
        watched.navigated_away.clear()
        watched.goto(path, status=None)
        findings += [f"{path}: {line}" for line in check(watched, path)]
    return findings
