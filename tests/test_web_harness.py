"""The browser harness catches what it is there to catch (tests/browser.py).

The web app's XSS tests pass when nothing runs; that proves something only if the watch would
have seen a vector run. Here the XSS fixture's vectors are served raw, unescaped and without a
CSP, from a loopback server: the watch must report the classic ones, by their ids, through all
three ways they report (dialog, window.__xss, title), and the markup check must flag the ones
that wait for a click. axe must fail an inaccessible page and pass an accessible one, and the
header check must refuse a CSP with 'unsafe-inline'.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.browser import (
    assert_accessible,
    dangerous_markup,
    open_each,
    security_headers_problems,
    watched_page,
)
from tests.feedserver import FeedServer, Route

MAKE_FEED = Path(__file__).parent / "fixtures" / "xss" / "make_feed.py"
# Vectors every browser runs when they reach a page unescaped: the watch must see each.
RUN_BY_THEMSELVES = (
    "script",
    "script upper case",
    "script after attribute breakout",
    "script after title close",
    "img onerror",
    "img onerror entity-encoded payload",
    "svg onload",
    "body onload",
    "details ontoggle",
    "input autofocus onfocus",
    "svg script",
    "noscript title mutation",
    "iframe srcdoc",
    "iframe src = javascript",
    "iframe src = decimal entities",
    "iframe src = data base64",
    "object data = data svg",
)
# Vectors that wait for a person: the markup check must flag each.
WAIT_FOR_A_CLICK = (
    "a onclick",
    "div onmouseover",
    "a href = javascript",
    "a href = decimal entities",
    "form action = javascript",
    "button formaction = javascript",
    "svg a xlink:href = javascript",
    "style attribute expression",
    "meta refresh = javascript",
    "base href = javascript",
    "embed src = javascript",
)
HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@pytest.fixture(scope="module")
def make_feed() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("xss_make_feed", MAKE_FEED)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def html_page(body: str, title: str = "Sida") -> Route:
    page = f'<!doctype html><html lang="sv"><head><title>{title}</title></head><body>{body}'
    return Route(body=page.encode(), content_type="text/html; charset=utf-8", validators=False)


def serve_vectors(server: FeedServer, make_feed: ModuleType, names: tuple[str, ...]) -> list[str]:
    """Each named body vector raw on a page of its own, with payload id = its position + 1."""
    vectors = dict(make_feed.body_vectors())
    paths = []
    for number, name in enumerate(names, start=1):
        server.add(f"/v{number}", html_page(vectors[name](make_feed.payload(number))))
        paths.append(f"/v{number}")
    return paths


def test_the_watch_reports_each_classic_vector_that_runs_by_its_id(
    browser: Any, make_feed: ModuleType
) -> None:
    with FeedServer() as server:
        paths = serve_vectors(server, make_feed, RUN_BY_THEMSELVES)
        with watched_page(browser, server.url(""), script_may_run=True) as watched:
            findings = open_each(watched, paths, lambda page, path: page.executions())

    caught = {int(path.removeprefix("/v")) for path in (f.split(":")[0] for f in findings)}
    missed = [name for n, name in enumerate(RUN_BY_THEMSELVES, start=1) if n not in caught]
    assert missed == [], f"the watch missed {missed}"
    # Each way a vector reports itself was seen: payload(n) cycles through the three.
    assert any("dialog: alert" in f for f in findings)
    assert any("window.__xss called by vector" in f for f in findings)
    assert any("title set by vector" in f for f in findings)


def test_the_markup_check_flags_vectors_that_wait_for_a_click(
    browser: Any, make_feed: ModuleType
) -> None:
    with FeedServer() as server:
        paths = serve_vectors(server, make_feed, WAIT_FOR_A_CLICK)
        with watched_page(browser, server.url(""), script_may_run=True) as watched:
            findings = open_each(watched, paths, lambda page, path: dangerous_markup(page.page))

    flagged = {f.split(":")[0] for f in findings}
    missed = [name for n, name in enumerate(WAIT_FOR_A_CLICK, start=1) if f"/v{n}" not in flagged]
    assert missed == [], f"the markup check missed {missed}"


def test_an_escaped_vector_runs_nothing_and_leaves_no_markup(
    browser: Any, make_feed: ModuleType
) -> None:
    from html import escape

    vectors = dict(make_feed.body_vectors())
    escaped = "".join(f"<p>{escape(vectors[n](make_feed.payload(1)))}</p>" for n in vectors)
    with FeedServer() as server:
        server.add("/escaped", html_page(escaped))
        with watched_page(browser, server.url("")) as watched:
            watched.goto("/escaped")

            assert watched.executions() == []
            assert dangerous_markup(watched.page) == []
            assert "<script>" in watched.page.locator("body").inner_text()


def test_the_page_reaches_nothing_off_loopback(browser: Any) -> None:
    body = '<img src="https://xss.example/bild.jpg" alt="Bild"><img src="/lokal.png" alt="">'
    with FeedServer() as server:
        server.add("/external", html_page(body))
        with watched_page(browser, server.url("")) as watched:
            watched.goto("/external")

            assert watched.blocked == ["https://xss.example/bild.jpg"]
            assert server.requests_to("/lokal.png"), "loopback requests go through"


def test_axe_fails_an_inaccessible_page_with_a_readable_report(browser: Any) -> None:
    inaccessible = (
        '<!doctype html><html><head></head><body><img src="/bild.png">'
        '<input type="text"><p style="color:#bbb;background:#fff">Ljusgrå text</p></body></html>'
    )
    with FeedServer() as server:
        server.add("/bad", body=inaccessible.encode(), content_type="text/html", validators=False)
        with watched_page(browser, server.url("")) as watched:
            watched.goto("/bad")

            with pytest.raises(AssertionError) as failure:
                assert_accessible(watched.page)

    report = str(failure.value)
    for rule in ("html-has-lang", "document-title", "image-alt", "label", "color-contrast"):
        assert rule in report


def test_axe_passes_an_accessible_page(browser: Any) -> None:
    body = (
        "<header><p>Omvärld</p></header><main><h1>Sök</h1>"
        '<form role="search" action="/search"><label for="q">Sök inlägg</label>'
        '<input type="search" id="q" name="q"><button>Sök</button></form></main>'
    )
    with FeedServer() as server:
        server.add("/good", html_page(body, title="Sök – Omvärld"))
        with watched_page(browser, server.url("")) as watched:
            watched.goto("/good")

            assert_accessible(watched.page)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, None),
        ({"content-security-policy": None}, "no Content-Security-Policy"),
        (
            {"content-security-policy": "default-src 'self' 'unsafe-inline';"
             " frame-ancestors 'none'"},
            "script-src allows 'unsafe-inline'",
        ),
        (
            {"content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline';"
             " frame-ancestors 'none'"},
            "style-src allows 'unsafe-inline'",
        ),
        ({"content-security-policy": "default-src 'self'"}, "frame-ancestors 'none'"),
        ({"content-security-policy": "frame-ancestors 'none'"}, "neither script-src"),
        ({"x-content-type-options": None}, "nosniff"),
        ({"referrer-policy": None}, "Referrer-Policy"),
    ],
)  # fmt: skip
def test_the_header_check_names_what_is_missing(
    change: dict[str, str | None], problem: str | None
) -> None:
    headers = {k: v for k, v in {**HEADERS, **change}.items() if v is not None}

    problems = security_headers_problems(headers)

    if problem is None:
        assert problems == []
    else:
        assert any(problem in line for line in problems), problems


def test_a_watched_page_notices_a_page_that_navigates_off_the_app(browser: Any) -> None:
    refresh = '<meta http-equiv="refresh" content="0;url=https://xss.example/falsk-inloggning">'
    with FeedServer() as server:
        server.add("/away", html_page(refresh))
        with watched_page(browser, server.url(""), script_may_run=True) as watched:
            watched.goto("/away")
            watched.page.wait_for_timeout(500)

            assert any("navigated away" in line for line in watched.executions())


def test_a_watched_page_fails_the_test_when_script_ran_on_it(browser: Any) -> None:
    with FeedServer() as server:
        server.add("/alert", html_page("<script>alert('hej')</script>"))

        with (
            pytest.raises(AssertionError, match="dialog: alert: hej"),
            watched_page(browser, server.url("")) as watched,
        ):
            watched.goto("/alert")
