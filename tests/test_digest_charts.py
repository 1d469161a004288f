"""The eight-week charts (issue 13, item 6): each organisation's posts and engagement as bars
built from table cells, so Outlook, Gmail and Apple Mail all draw them (no image, no SVG), the
numbers beside the bars as text, within the 90 KB budget however many organisations there are,
and without WCAG 2.1 AA violations in light or dark mode."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from digest.compare import CHART_WEEKS, ActivityRow, bar_widths, chart_organisations, index_activity
from digest.compose import SourceInfo
from digest.model import Comparison, DigestData, Recipient, Summary
from digest.render import BAR_SHARE, MAX_HTML_BYTES, render_digest
from monitor.config import DigestConfig
from tests.browser import assert_accessible
from tests.digestdata import WEEK, build, fill, setup_config

SETTINGS = DigestConfig(sender="Omvärld <omvarld@example.se>")
OWN = "Katrineholms kommun"
X = SourceInfo(1, "k-x", "x", OWN, ("kommuner",), True)
WEB = SourceInfo(2, "k-web", "feed", OWN, ("kommuner",), True)
NEWS = SourceInfo(3, "l-web", "feed", "Länsstyrelsen", ("myndigheter",), True)
QUIET = SourceInfo(4, "f-x", "x", "Flens kommun", ("kommuner",), True)
# A bar cell: its width and colour; the number follows in the next cell.
BAR = re.compile(r'<td width="(\d+)%" height="10" bgcolor="(#[0-9a-f]{6})"')


def test_bar_widths_are_proportional_to_the_largest_week() -> None:
    assert bar_widths([0, 5, 10, 20]) == [0, 25, 50, 100]
    assert bar_widths([1, 1000]) == [1, 100]  # a small week still shows
    assert bar_widths([0, 0]) == [0, 0]


def test_each_organisation_charts_its_eight_weeks_oldest_first() -> None:
    activity = [
        ActivityRow(1, 0, 4, 4, 80),
        ActivityRow(1, 7, 2, 2, 20),
        ActivityRow(2, 0, 4, 0, 0),  # the web's posts add posts, not engagement
        ActivityRow(3, 3, 1, 0, 0),
        ActivityRow(1, 8, 50, 50, 5000),  # the ninth week back is not charted
    ]
    charts = chart_organisations([NEWS, X, WEB, QUIET], index_activity(activity), WEEK, OWN)

    assert [c.organisation for c in charts] == [OWN, "Länsstyrelsen"]  # silent Flen left out
    own = charts[0]
    assert own.own and len(own.weeks) == CHART_WEEKS
    assert [str(w.week) for w in own.weeks] == [f"2026-W{n}" for n in range(41, 49)]
    assert [w.posts for w in own.weeks] == [2, 0, 0, 0, 0, 0, 0, 8]
    assert [w.posts_width for w in own.weeks] == [25, 0, 0, 0, 0, 0, 0, 100]
    assert [w.engagement for w in own.weeks] == [20, 0, 0, 0, 0, 0, 0, 80]
    assert [w.engagement_width for w in own.weeks][::7] == [25, 100]
    # Only feeds: engagement is not measured, rather than nothing.
    assert {w.engagement for w in charts[1].weeks} == {None}


def digest_with(charts_count: int, platforms: int, own_last: bool = True) -> DigestData:
    """A digest whose comparison and charts list many organisations; the own one ranks last."""
    names = [f"Organisation {n:03d} med ett långt namn" for n in range(charts_count)]
    own = names[-1] if own_last else names[0]
    keys = ("x", "facebook", "mastodon", "bluesky", "youtube", "flickr", "feed")[:platforms]
    sources = [
        SourceInfo(n * platforms + p, f"s{n}-{p}", key, name, ("kommuner",), True)
        for n, name in enumerate(names)
        for p, key in enumerate(keys)
    ]
    activity = [
        ActivityRow(s.id, back, 1 + (s.id + back) % 9, 1, 10 * back + s.id % 50)
        for s in sources
        for back in range(CHART_WEEKS)
    ]
    charts = chart_organisations(sources, index_activity(activity), WEEK, own)
    comparisons = [
        Comparison(s.organisation, s.platform, 3, 12.5, 1.2, 12_345, 10, -20, s.organisation == own)
        for s in sources
    ]
    return DigestData(
        recipient=Recipient(email="anna@example.se", organisation=own),
        week=WEEK,
        generated_at=datetime(2026, 11, 30, 6, tzinfo=UTC),
        summary=Summary(100, 1000, 90, 900, 95.0, 950.0, names[0], 9, None),
        comparisons=tuple(
            sorted(comparisons, key=lambda c: (c.platform, not c.own, c.organisation))
        ),
        charts=tuple(charts),
    )


def chart_section(html: str, heading: str = "De senaste åtta veckorna") -> str:
    return html.split(f"{heading}</h2>", 1)[1].split('</td></tr>\n<tr><td class="section"', 1)[0]


def test_rendered_bars_are_table_cells_with_widths_proportional_to_the_numbers() -> None:
    data = digest_with(3, 1, own_last=False)
    html = render_digest(data, SETTINGS).html
    section = chart_section(html)

    assert "<img" not in section and "<svg" not in section
    first = data.charts[0]
    # The own organisation's weeks: its table, one row a week.
    rows = section.split("</h3>", 1)[1].split("<h3", 1)[0].split('<tr><th class="cw"')[1:]
    assert len(rows) == CHART_WEEKS
    for week, row in zip(first.weeks, rows, strict=True):
        bars = BAR.findall(row)
        widths = {colour: int(width) for width, colour in bars}
        # The longest bar takes BAR_SHARE % of its cell, the others in proportion; none for 0.
        assert widths.get("#2f6aa6", 0) == round(week.posts_width * BAR_SHARE / 100)
        assert widths.get("#b3541e", 0) == round(week.engagement_width * BAR_SHARE / 100)
        # And the same numbers in text beside the bars.
        assert f">{week.posts}</td>" in row and f">{week.engagement}</td>" in row
    text = render_digest(data, SETTINGS).text
    assert f"v. 41: {first.weeks[0].posts} inlägg, engagemang {first.weeks[0].engagement}" in text


def test_many_organisations_stay_within_the_budget_and_keep_the_own_one() -> None:
    data = digest_with(300, 7)
    rendered = render_digest(data, SETTINGS)

    assert len(rendered.html.encode("utf-8")) <= MAX_HTML_BYTES
    own = data.recipient.organisation
    assert own is not None
    charts = chart_section(rendered.html)
    assert f"{own} (din organisation)</h3>" in charts
    shown = charts.count("</h3>")
    assert 1 <= shown < 300 and f"och {300 - shown} organisationer till" in charts
    comparison = rendered.html.split("Jämförelse</h2>", 1)[1].split("</table>", 1)[0]
    assert f"<strong>{own}</strong> (din organisation)" in comparison
    assert comparison.count('class="own"') == 7  # one a platform, wherever it ranks


def test_the_fixed_databases_digest_charts_each_followed_organisation(
    tmp_path: Path, engine: Engine
) -> None:
    config = setup_config(tmp_path, engine)
    fill(engine)
    data = build(engine, config, Recipient(email="anna@example.se", organisation=OWN))

    charts = {c.organisation: c for c in data.charts}
    assert next(iter(charts)) == OWN and charts[OWN].own
    # Katrineholm in week 47: a post on X (20 likes) and an article; in week 48 six posts.
    assert [w.posts for w in charts[OWN].weeks][-2:] == [2, 6]
    assert [w.engagement for w in charts[OWN].weeks][-2:] == [20, 24]
    # Polisen's X posts go back to week 44 (27 October).
    assert [w.posts for w in charts["Polisen"].weeks][3:] == [1, 1, 2, 1, 4]
    assert {w.engagement for w in charts["Länsstyrelsen"].weeks} == {None}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_charts_and_comparison_have_no_wcag_aa_violations(browser: Any, scheme: str) -> None:
    data = digest_with(4, 3)
    context = browser.new_context(color_scheme=scheme)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())
        page.set_content(render_digest(replace(data), SETTINGS).html)
        assert_accessible(page)
    finally:
        context.close()
