"""The web app in a real browser (issue 12): headless Chromium on a real `omvarld web` over a
database collected from the fixture feeds, the hostile ones and the XSS feeds, on SQLite and on
PostgreSQL.

Every page of the contract, in Swedish and in English: no WCAG 2.1 A/AA violation (axe-core),
no script of a post runs, the security headers are there. The flows a person follows: search
from the home page and open a post, sources to a source, the digest archive to a digest, the
keyboard alone to the search box. And every post of the XSS feeds, opened with the page's CSP
switched off, runs nothing and carries no markup that would run on a click.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser import (
    WatchedPage,
    assert_accessible,
    dangerous_markup,
    open_each,
    security_headers_problems,
    watched_page,
)
from tests.webserver import WebApp

LANGUAGES = ("sv", "en")
XSS_SOURCES = ("xss-rss", "xss-atom", "xss-mastodon")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


def first_post(app: WebApp, key: str) -> int:
    return app.post_ids(key)[0]


def first_digest(app: WebApp, recipient: str) -> int:
    return next(i for i, r in app.digests() if r == recipient)


def recipient_path(app: WebApp, language: str, suffix: str = "") -> str:
    return f"/r/{app.recipient_token(READER[language])}{suffix}"


# Whose pages a person reading in each language opens: a digest shows as it was mailed, in its
# recipient's language, whatever the browser asks for.
READER = {"sv": "anna@example.se", "en": "bo@example.se"}
# Every HTML page of the contract, by a name for the test id: its path, for a reader of a language.
PAGES: dict[str, Callable[[WebApp, str], str]] = {
    "home": lambda app, language: "/",
    "home, a week": lambda app, language: "/?week=2026-W47",
    "search": lambda app, language: "/search?q=kommun",
    "search empty": lambda app, language: "/search?q=",
    "search prefix": lambda app, language: "/search?q=" + quote("snö*"),
    "search filtered": lambda app, language: (
        "/search?q=kommun&since=2026-11-01&until=2026-11-30&platform=feed"
        "&organisation=" + quote("Katrineholms kommun") + "&group=kommuner&kind=article"
        "&min_engagement=0&sort=relevance&page=1"
    ),
    "search page 2": lambda app, language: "/search?q=skadlig&sort=newest&page=2",
    "search source filter": lambda app, language: "/search?q=&source=katrineholm-nyheter",
    "post": lambda app, language: f"/posts/{first_post(app, 'katrineholm-nyheter')}",
    "post with counts": lambda app, language: f"/posts/{first_post(app, 'skatteverket-youtube')}",
    "post with media": lambda app, language: (
        f"/posts/{first_post(app, 'krisinformation-mastodon')}"
    ),
    "sources": lambda app, language: "/sources",
    "sources with problems": lambda app, language: "/sources?problems=1",
    "source": lambda app, language: "/sources/katrineholm-nyheter",
    "failing source": lambda app, language: "/sources/flyttad-sida",
    "digests": lambda app, language: "/digests",
    "digest": lambda app, language: f"/digests/{first_digest(app, READER[language])}",
    "recipient": lambda app, language: recipient_path(app, language),
    "unsubscribe form": lambda app, language: recipient_path(app, language, "/unsubscribe"),
    "recipient digest": lambda app, language: recipient_path(
        app, language, f"/digests/{first_digest(app, READER[language])}"
    ),
    "accessibility statement": lambda app, language: "/accessibility",
    "compare": lambda app, language: "/compare?week=2026-W48",
    "compare, a group": lambda app, language: "/compare?week=2026-W47&group=kommuner",
}
# Pages that refuse bad input: each a page of its own, accessible, one clear line.
REFUSALS: dict[str, tuple[Callable[[WebApp], str], int]] = {
    "unknown post": (lambda app: "/posts/999999999", 404),
    "unknown source": (lambda app: "/sources/finns-inte", 404),
    "tampered token": (lambda app: recipient_path(app, "sv")[:-3] + "xyz", 400),
    "compare, unknown group": (lambda app: "/compare?group=finns-inte", 400),
    "compare, malformed week": (lambda app: "/compare?week=2026-W99", 400),
}
API: dict[str, Callable[[WebApp], str]] = {
    "posts": lambda app: "/api/posts?q=kommun",
    "sources": lambda app: "/api/sources",
    "metrics": lambda app: f"/api/posts/{first_post(app, 'skatteverket-youtube')}/metrics",
    "health": lambda app: "/healthz",
}


def check_page(watched: WatchedPage, response: Any, language: str) -> None:
    """What every HTML page owes a person: its language, a title, no script of a post run,
    the security headers, no WCAG 2.1 A/AA violation."""
    assert security_headers_problems(response.headers) == []
    lang = watched.page.evaluate("document.documentElement.lang")
    assert lang.split("-")[0] == language, f"<html lang={lang!r}>, not {language}"
    assert watched.page.title().strip(), "the page has no title"
    assert not TRACEBACK.search(watched.page.content()), "the page shows a traceback"
    watched.assert_no_script_ran()
    assert_accessible(watched.page)


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_is_accessible_safe_and_in_the_asked_language(
    browser: Any, web_app: WebApp, language: str, name: str
) -> None:
    with watched_page(browser, web_app.base_url, language) as watched:
        response = watched.goto(PAGES[name](web_app, language))

        check_page(watched, response, language)


@pytest.mark.parametrize("name", REFUSALS)
def test_bad_input_gets_an_accessible_page_with_one_clear_line(
    browser: Any, web_app: WebApp, name: str
) -> None:
    path, status = REFUSALS[name]
    with watched_page(browser, web_app.base_url) as watched:
        response = watched.goto(path(web_app), status=status)

        check_page(watched, response, "sv")
        assert watched.page.locator("main").inner_text().strip(), "the page says nothing"


def test_english_by_the_lang_switch_without_accept_language(browser: Any, web_app: WebApp) -> None:
    with watched_page(browser, web_app.base_url, language="sv") as watched:
        response = watched.goto("/?lang=en")

        check_page(watched, response, "en")


@pytest.mark.parametrize("name", API)
def test_api_answers_json_with_the_security_headers(
    browser: Any, web_app: WebApp, name: str
) -> None:
    with watched_page(browser, web_app.base_url) as watched:
        response = watched.page.request.get(web_app.url(API[name](web_app)))

        assert response.status == 200, response.text()[:300]
        assert response.headers["content-type"].startswith("application/json")
        assert security_headers_problems(response.headers) == []
        json.loads(response.text())


# ------------------------------------------------------------------------------- the flows


def test_search_from_the_home_page_finds_a_post_and_opens_it(browser: Any, web_app: WebApp) -> None:
    with watched_page(browser, web_app.base_url) as watched:
        page = watched.page
        watched.goto("/")

        search = page.locator('form[role="search"] input[type="search"][name="q"]')
        search.fill("snöröjning")
        search.press("Enter")
        page.wait_for_url(re.compile(r"/search\?(.*&)?q=sn"))
        result = page.locator('main a[href^="/posts/"]', has_text="Snöröjningen")
        result.first.click()
        page.wait_for_url(re.compile(r"/posts/\d+$"))

        assert "Snöröjningen har startat" in page.locator("h1").inner_text()
        watched.assert_no_script_ran()


def test_sources_lead_to_a_source_page_with_its_collection_runs(
    browser: Any, web_app: WebApp
) -> None:
    with watched_page(browser, web_app.base_url) as watched:
        page = watched.page
        watched.goto("/sources")

        page.locator('main a[href="/sources/katrineholm-nyheter"]').first.click()
        page.wait_for_url(re.compile(r"/sources/katrineholm-nyheter$"))

        assert "Katrineholms kommun" in page.locator("main").inner_text()
        watched.assert_no_script_ran()


def test_sources_with_problems_lists_the_failing_feeds_and_not_the_healthy_ones(
    browser: Any, web_app: WebApp
) -> None:
    with watched_page(browser, web_app.base_url) as watched:
        watched.goto("/sources?problems=1")

        listed = watched.page.locator("main").inner_text()
        assert "flyttad-sida" in listed or "Trosa kommun" in listed
        assert "borttagen" in listed or "Eskilstuna kommun" in listed
        assert "katrineholm-nyheter" not in listed


def test_digest_archive_opens_a_digest_as_it_was_mailed(browser: Any, web_app: WebApp) -> None:
    subjects = {str(message["Subject"]) for message in web_app.mail}
    with watched_page(browser, web_app.base_url) as watched:
        page = watched.page
        watched.goto("/digests")

        page.locator('main a[href^="/digests/"]').first.click()
        page.wait_for_url(re.compile(r"/digests/\d+$"))

        # The subject is the mailed page's title; a digest may also show it in its text.
        shown = " ".join([page.title(), *(text_of(frame) for frame in page.frames)])
        shown = " ".join(shown.split())
        assert any(" ".join(s.split()) in shown for s in subjects), f"none of {subjects} shown"
        watched.assert_no_script_ran()


def text_of(frame: Any) -> str:
    """A frame's text as a person reads it, white space (no-break spaces too) folded."""
    return " ".join(frame.evaluate("document.body ? document.body.innerText : ''").split())


def test_keyboard_alone_reaches_the_search_box_and_shows_where_focus_is(
    browser: Any, web_app: WebApp
) -> None:
    with watched_page(browser, web_app.base_url) as watched:
        page = watched.page
        watched.goto("/")
        search = page.locator('input[type="search"][name="q"]')
        unfocused = focus_style(search)

        for _ in range(15):
            page.keyboard.press("Tab")
            if search.evaluate("element => element === document.activeElement"):
                break
        else:
            pytest.fail("15 presses of Tab did not reach the search box")

        focused = focus_style(search)
        assert focused != unfocused, f"no visible focus style: {focused}"
        page.keyboard.type("budget")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/search\?(.*&)?q=budget"))


def focus_style(locator: Any) -> dict[str, str]:
    """What shows focus: the outline, the box shadow, the border and the background."""
    return dict(
        locator.evaluate(
            """element => {
                const style = getComputedStyle(element);
                return {
                    outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
                    shadow: style.boxShadow, border: style.borderColor,
                    background: style.backgroundColor,
                };
            }"""
        )
    )


# ------------------------------------------------------------------------------ the XSS feeds


def test_no_xss_post_runs_script_even_with_the_csp_off(browser: Any, web_app: WebApp) -> None:
    ids = web_app.post_ids(*XSS_SOURCES)
    assert len(ids) > 300, f"only {len(ids)} posts of the XSS feeds were stored"

    def check(watched: WatchedPage, path: str) -> list[str]:
        return watched.executions() + dangerous_markup(watched.page)

    with watched_page(browser, web_app.base_url, bypass_csp=True) as watched:
        findings = open_each(watched, [f"/posts/{i}" for i in ids], check)

    assert findings == [], f"{len(findings)} findings:\n" + "\n".join(findings[:60])


def test_pages_listing_xss_posts_run_no_script(browser: Any, web_app: WebApp) -> None:
    digests = [f"/digests/{i}" for i, _ in web_app.digests()]
    mine = [i for i, r in web_app.digests() if r == READER["sv"]]
    paths = [
        "/",
        "/search?q=skadlig",
        "/search?q=skadlig&page=2",
        "/search?q=skadlig&sort=relevance",
        "/search?q=XSS&group=skadliga",
        "/sources",
        *[f"/sources/{key}" for key in XSS_SOURCES],
        *digests,
        *[recipient_path(web_app, "sv", f"/digests/{i}") for i in mine],
    ]

    def check(watched: WatchedPage, path: str) -> list[str]:
        return watched.executions() + dangerous_markup(watched.page)

    for bypass_csp in (False, True):
        with watched_page(browser, web_app.base_url, bypass_csp=bypass_csp) as watched:
            findings = open_each(watched, paths, check)
        assert findings == [], f"CSP {'off' if bypass_csp else 'on'}:\n" + "\n".join(findings)


def test_xss_posts_show_their_text_as_text(browser: Any, web_app: WebApp) -> None:
    # Escaping must not eat the post: the vector's own words stay readable as text.
    post = web_app.post_ids("xss-rss")[0]
    with watched_page(browser, web_app.base_url) as watched:
        watched.goto(f"/posts/{post}")

        assert "Skadlig kod i flödet" in watched.page.locator("main").inner_text()


def test_the_server_logged_no_traceback(web_app: WebApp) -> None:
    # Last in this module, so it reads the log of every page above on this database.
    log = web_app.server_log()
    assert not TRACEBACK.search(log), log[-3000:]
