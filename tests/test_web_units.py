"""The web app's pure parts: what a search address means, which language a reader gets, the
engagement chart's geometry, the mailed digest's style hashes, signed recipient links."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from monitor.tokens import BadToken, sign, verify
from monitor.web.charts import plot_curve
from monitor.web.i18n import choose_language
from monitor.web.params import MAX_PAGE, PAGE_SIZE, read_search
from monitor.web.security import csp_for_mailed_html, csrf_matches, is_trusted

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_a_search_address_becomes_the_filters_of_posts_search() -> None:
    wanted, problems = read_search(
        {
            "q": ["snö*"],
            "since": ["7d"],
            "until": ["2026-12-01"],
            "platform": ["x", "youtube"],
            "organisation": ["Flens kommun"],
            "group": ["kommuner"],
            "kind": ["video"],
            "min_engagement": ["10"],
            "sort": ["relevance"],
            "page": ["3"],
        },
        NOW,
    )
    assert problems == []
    assert wanted.q == "snö*"
    assert wanted.chosen.since == NOW - timedelta(days=7)
    assert wanted.chosen.until == datetime(2026, 12, 1, tzinfo=UTC)
    assert wanted.chosen.platforms == ("x", "youtube")
    assert wanted.chosen.organisations == ("Flens kommun",)
    assert wanted.chosen.groups == ("kommuner",)
    assert wanted.chosen.kinds == ("video",)
    assert wanted.chosen.min_engagement == 10
    assert (wanted.sort, wanted.page, wanted.offset) == ("relevance", 3, 2 * PAGE_SIZE)
    # The next page's address keeps every filter and changes only the page.
    assert "page=4" in wanted.url(page=4) and "platform=x&platform=youtube" in wanted.url(page=4)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"since": ["igår"]}, "since: expected a date like 2026-11-23"),
        ({"platform": ["myspace"]}, "platform: unknown 'myspace'"),
        ({"kind": ["<script>"]}, "kind: unknown '<script>'"),
        ({"min_engagement": ["-1"]}, "min_engagement: expected a whole number from 0"),
        ({"min_engagement": ["99999999999999999999999"]}, "min_engagement: expected a whole"),
        ({"page": ["0"]}, "page: expected a whole number from 1"),
        ({"page": [str(MAX_PAGE + 1)]}, f"page: expected a whole number from 1 to {MAX_PAGE}"),
        ({"sort": ["random"]}, "sort: expected newest or relevance"),
        ({"q": ["x" * 5000]}, "q: too many or too long values"),
        ({"platform": ["x"] * 51}, "platform: too many or too long values"),
    ],
)
def test_bad_search_parameters_get_one_line_each(params: dict, expected: str) -> None:
    _, problems = read_search(params, NOW)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems


@pytest.mark.parametrize(
    ("asked", "cookie", "header", "expected"),
    [
        (None, None, None, "sv"),
        (None, None, "en-US,en;q=0.9", "en"),
        (None, None, "sv-SE,sv;q=0.9,en;q=0.8", "sv"),
        (None, None, "en;q=0.5,sv;q=0.9", "sv"),
        (None, None, "de-DE,fr;q=0.9", "sv"),
        (None, None, "en;q=bogus", "sv"),
        (None, "en", "sv", "en"),
        ("sv", "en", "en", "sv"),
        ("xx", None, "en", "en"),
    ],
)
def test_the_language_is_the_switch_then_the_cookie_then_the_browser(
    asked: str | None, cookie: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(asked, cookie, header) == expected


def test_the_engagement_curve_spans_the_chart_and_starts_at_zero() -> None:
    points = [(NOW + timedelta(hours=hour), value) for hour, value in ((0, 0), (1, 40), (5, 90))]
    curve = plot_curve(points)
    assert curve is not None
    xs = [x for x, _ in curve.dots]
    ys = [y for _, y in curve.dots]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    assert ys[0] == curve.baseline  # zero sits on the baseline
    assert ys[-1] < ys[1] < ys[0]  # higher counts are drawn higher
    assert [value for _, value in curve.y_ticks] == [0, 50, 100]  # a round top above 90
    assert plot_curve([]) is None
    single = plot_curve([(NOW, 7)])
    assert single is not None and len(single.dots) == 1


def test_a_mailed_digest_may_use_exactly_its_own_inline_styles() -> None:
    html = (
        "<html><head><style>p{color:#333}</style></head><body>"
        "<p style=\"color:#123;margin:0\">a</p><p style='font-weight:700'>b</p>"
        '<p style="content:&quot;x&quot;">c</p></body></html>'
    )
    policy = csp_for_mailed_html(html)

    def allowed(text: str) -> bool:
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        return f"'sha256-{digest}'" in policy

    assert allowed("p{color:#333}")
    assert allowed("color:#123;margin:0")
    assert allowed("font-weight:700")
    assert allowed('content:"x"')  # hashed as the browser sees it, entities decoded
    assert not allowed("color:red")
    assert "unsafe-inline" not in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy


def test_recipient_links_are_signed_for_one_purpose_and_refuse_any_change() -> None:
    secret = b"s" * 32
    token = sign(secret, "anna@flen.se")
    assert verify(secret, token) == "anna@flen.se"
    payload, signature = token.split(".")
    forged_payload = base64.urlsafe_b64encode(b"boss@flen.se").rstrip(b"=").decode()
    for tampered in (
        f"{forged_payload}.{signature}",
        f"{payload}.{signature[:-2]}AA",
        payload,
        "",
        "a.b.c",
        "%%%.###",
        "x" * 5000,
    ):
        with pytest.raises(BadToken):
            verify(secret, tampered)
    with pytest.raises(BadToken):
        verify(b"t" * 32, token)  # another installation's secret
    with pytest.raises(BadToken):
        verify(secret, token, purpose="digest")  # signed for the recipient page only


def test_csrf_and_proxy_checks() -> None:
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd")
    assert not csrf_matches(None, None) and not csrf_matches("", "")
    assert is_trusted("127.0.0.1", ["127.0.0.1"])
    assert is_trusted("10.1.2.3", ["10.0.0.0/8"])
    assert not is_trusted("10.1.2.3", ["127.0.0.1"])
    assert not is_trusted("not-an-ip", ["127.0.0.1"])
    assert not is_trusted(None, ["127.0.0.1"])
