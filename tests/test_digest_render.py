"""Rendering the weekly digest: what a reader sees in the subject, the HTML and the text part.

The data is built by hand (no database): a realistic Swedish week among organisations in
Sörmland. Golden files pin the full Swedish and English digests; regenerate them after an
intended change with `pytest tests/test_digest_render.py --update-goldens` and read the diff.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.numbers import format_decimal

from digest.links import WebLinks
from digest.model import (
    ChannelChange,
    DataQuality,
    DigestData,
    DomainCount,
    OrganisationNews,
    PostItem,
    Recipient,
    Summary,
    TableRow,
    Trend,
    Week,
)
from digest.render import MAX_HTML_BYTES, RenderedDigest, render_digest
from monitor.config import DigestConfig
from tests.conftest import assert_golden

WEEK = Week(2026, 48)  # Monday 23 November to Sunday 29 November 2026
GENERATED_AT = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 07:00 in Stockholm

SETTINGS = DigestConfig.model_validate(
    {
        "from": "Omvärld <omvarld@katrineholm.se>",
        "settings_url": "https://omvarld.katrineholm.se/installningar",
        "unsubscribe_url": "https://omvarld.katrineholm.se/avsluta?token=abc123",
    }
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in week 48 of 2026 given in UTC (Stockholm is UTC+1 in November)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def post(post_id: int, organisation: str, platform: str, **fields: Any) -> PostItem:
    values: dict[str, Any] = {
        "source_key": f"{platform}:{organisation.lower().replace(' ', '-')}",
        "kind": "post",
        "published_at": at(24, 8, 5),
        "title": None,
        "excerpt": "",
        "url": f"https://example.se/{platform}/{post_id}",
    }
    values.update(fields)
    return PostItem(post_id=post_id, organisation=organisation, platform=platform, **values)


TOP_POSTS = (
    post(
        1,
        "Region Sörmland",
        "x",
        excerpt="Nu öppnar vaccinationsmottagningen i Nyköping även på lördagar. Boka tid via "
        "1177 eller kom på drop-in mellan 10 och 14.",
        url="https://x.com/regionsormland/status/1861",
        counts={"views": 18_400, "likes": 312, "reposts": 96, "replies": 41, "quotes": 7},
        engagement=456,
        score=9.4,
    ),
    post(
        2,
        "Katrineholms kommun",
        "facebook",
        published_at=at(27, 15, 30),
        excerpt="Välkommen till julmarknaden på Stortorget på söndag! Hantverk, glögg och "
        "tomtens verkstad för barnen. Parkera gärna vid Kulturcentrum.",
        url="https://www.facebook.com/katrineholmskommun/posts/1234",
        counts={"likes": 240, "reposts": 31, "replies": 28, "reactions": 260},
        engagement=559,
        score=7.1,
    ),
    post(
        3,
        "Polisen",
        "x",
        published_at=at(26, 21, 12),
        excerpt="Trafikolycka på riksväg 52 vid Nävertorp. Vägen är avstängd i båda "
        "riktningarna. Räkna med förseningar.",
        url="https://x.com/polisen_sormland/status/1862",
        counts={"likes": 88, "reposts": 120, "replies": 15},
        engagement=223,
        score=6.0,
    ),
    post(
        4,
        "Krisinformation",
        "mastodon",
        published_at=at(25, 12, 0),
        excerpt="SMHI varnar för snöfall i Södermanland under onsdagen. Följ råden från din "
        "kommun och håll dig uppdaterad.",
        url="https://mastodon.krisinformation.se/@krisinformation/113",
        counts={"likes": 54, "reposts": 61, "replies": 3},
        engagement=118,
        score=4.2,
    ),
)

VIDEO = post(
    5,
    "Skatteverket",
    "youtube",
    kind="video",
    published_at=at(25, 9, 0),
    title="Så deklarerar du digitalt",
    excerpt="Vi visar steg för steg hur du deklarerar i e-tjänsten.",
    url="https://www.youtube.com/watch?v=dK3v9Qm2TfA",
    thumbnail_url="https://i1.ytimg.com/vi/dK3v9Qm2TfA/hqdefault.jpg",
    duration_s=754,
    views=12_345,
    counts={"views": 12_345, "likes": 87},
    engagement=87,
)

NEWS = (
    OrganisationNews(
        "Katrineholms kommun",
        (
            post(
                10,
                "Katrineholms kommun",
                "feed",
                kind="article",
                published_at=at(28, 10, 0),
                title="Nya öppettider på biblioteket i jul",
                excerpt="Biblioteket har ändrade öppettider under jul och nyår.",
                url="https://www.katrineholm.se/nyheter/bibliotek-jul",
            ),
            post(
                11,
                "Katrineholms kommun",
                "feed",
                kind="article",
                published_at=at(26, 7, 45),
                title="Snöröjningen är i full gång",
                excerpt="Så prioriterar vi snöröjningen i kommunen.",
                url="https://www.katrineholm.se/nyheter/snorojning",
            ),
        ),
        more=3,
    ),
    OrganisationNews(
        "Skatteverket",
        (
            post(
                12,
                "Skatteverket",
                "feed",
                kind="article",
                published_at=at(24, 13, 0),
                title="Nya regler för rot- och rutavdrag 2027",
                excerpt="Från den 1 januari ändras reglerna.",
                url="https://www.skatteverket.se/nyheter/rotrut2027",
            ),
        ),
    ),
)


def swedish_week(**changes: Any) -> DigestData:
    """A realistic week for a communicator at Katrineholms kommun: every section has content."""
    data = DigestData(
        recipient=Recipient(
            email="anna.lindqvist@katrineholm.se",
            name="Anna",
            organisation="Katrineholms kommun",
            groups=("Kommuner i Sörmland", "Myndigheter"),
            keywords=("julmarknad",),
        ),
        week=WEEK,
        generated_at=GENERATED_AT,
        summary=Summary(
            posts=1234,
            engagement=56_789,
            posts_previous=1143,
            engagement_previous=60_000,
            posts_average=1100.5,
            engagement_average=52_000.0,
            most_active_organisation="Region Sörmland",
            most_active_posts=87,
            top_post=TOP_POSTS[0],
        ),
        top_posts=TOP_POSTS,
        mentions=(TOP_POSTS[1],),
        news=NEWS,
        dialog=(TOP_POSTS[0], TOP_POSTS[1]),
        videos=(VIDEO,),
        trends=(Trend("#julmarknad", 42, 3.5), Trend("snöfall", 31, 8.25)),
        domains=(DomainCount("krisinformation.se", 31), DomainCount("polisen.se", 1)),
        by_platform=(
            TableRow("feed", 410, None, None, 410 / 1234),
            TableRow("x", 388, 21_000, 31.5, 388 / 1234),
            TableRow("facebook", 250, 30_100, 88.0, 250 / 1234),
            TableRow("youtube", 12, 1_200, 64.0, 12 / 1234),
            TableRow("mastodon", 170, 4_300, 18.0, 170 / 1234),
            TableRow("bluesky", 4, 189, 40.5, 4 / 1234),
        ),
        by_organisation=(
            TableRow("Region Sörmland", 87, 9_870, 60.0, 87 / 1234),
            TableRow("Polisen", 64, 12_400, 101.5, 64 / 1234),
            TableRow("Katrineholms kommun", 31, 2_950, 44.0, 31 / 1234, own=True),
            TableRow("Skatteverket", 22, 1_800, 35.0, 22 / 1234),
            TableRow("Krisinformation", 19, 2_100, 70.0, 19 / 1234),
        ),
        by_group=(
            TableRow("Kommuner i Sörmland", 640, 20_500, 22.0, 640 / 1234),
            TableRow("Myndigheter", 594, 36_289, 48.0, 594 / 1234),
        ),
        channel_changes=(
            ChannelChange(
                "Region Sörmland",
                "bluesky",
                "bluesky:regionsormland",
                "moved",
                at(25, 9, 30),
                ("x",),
            ),
            ChannelChange(
                "Krisinformation", "mastodon", "mastodon:@krisinformation", "started", at(23, 8, 0)
            ),
            ChannelChange(
                "Polisen",
                "facebook",
                "facebook:polisensodermanland",
                "silent",
                datetime(2026, 10, 12, 14, 0, tzinfo=UTC),
            ),
        ),
        quality=(
            DataQuality("feed", 12, 12, 0, at(23, 0, 10), at(29, 22, 50)),
            DataQuality("x", 4, 2, 1, at(23, 0, 15), at(29, 22, 45)),
            DataQuality("youtube", 2, 2, 0, None, None),
        ),
    )
    return dataclasses.replace(data, **changes)


def english(data: DigestData) -> DigestData:
    return dataclasses.replace(data, recipient=dataclasses.replace(data.recipient, language="en"))


def with_summary(data: DigestData, **changes: Any) -> DigestData:
    return dataclasses.replace(data, summary=dataclasses.replace(data.summary, **changes))


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of <style> blocks."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def flat(text: str) -> str:
    """The plain-text part with its line wrapping undone, to find a sentence in it."""
    return re.sub(r"\s*\n\s*", " ", text)


def visible(html: str) -> str:
    """The HTML with entities decoded: the serializer writes a no-break space as &nbsp;."""
    return unescape(html)


def check_golden(rendered: RenderedDigest, name: str, request: pytest.FixtureRequest) -> None:
    for suffix, content in (("html", rendered.html), ("txt", rendered.text)):
        assert_golden(request, f"{name}.{suffix}", content)


def test_swedish_digest_matches_its_golden_files(request: pytest.FixtureRequest) -> None:
    check_golden(render_digest(swedish_week(), SETTINGS), "digest_sv", request)


def test_english_digest_matches_its_golden_files(request: pytest.FixtureRequest) -> None:
    check_golden(render_digest(english(swedish_week()), SETTINGS), "digest_en", request)


def test_subject_names_week_dates_posts_and_change_in_swedish() -> None:
    rendered = render_digest(swedish_week(), SETTINGS)
    assert rendered.subject == "Omvärldsbevakning v. 48 (23–29 nov): 1\xa0234 inlägg, +8\xa0%"
    assert rendered.language == "sv"


def test_subject_in_english_has_no_space_before_percent() -> None:
    rendered = render_digest(english(swedish_week()), SETTINGS)
    assert rendered.subject == "Weekly monitoring, week 48 (23–29 Nov): 1,234 posts, +8%"
    assert rendered.language == "en"


def test_week_after_an_empty_week_has_no_percentage() -> None:
    data = with_summary(swedish_week(), posts=12, posts_previous=0, posts_average=0.0)
    rendered = render_digest(data, SETTINGS)
    assert rendered.subject == "Omvärldsbevakning v. 48 (23–29 nov): 12 inlägg"
    assert "%" not in rendered.subject
    assert "12 inlägg (inga inlägg veckan innan)." in rendered.text
    english_subject = render_digest(english(data), SETTINGS).subject
    assert english_subject == "Weekly monitoring, week 48 (23–29 Nov): 12 posts"


def test_a_decrease_is_shown_with_the_locales_minus_sign() -> None:
    data = with_summary(swedish_week(), posts=1050, posts_previous=1143)
    assert render_digest(data, SETTINGS).subject.endswith("1\xa0050 inlägg, −8\xa0%")
    assert render_digest(english(data), SETTINGS).subject.endswith("1,050 posts, -8%")


def test_week_53_spans_two_months_and_years() -> None:
    data = swedish_week(week=Week(2026, 53))
    assert render_digest(data, SETTINGS).subject.startswith(
        "Omvärldsbevakning v. 53 (28 dec–3 jan): "
    )
    assert render_digest(english(data), SETTINGS).subject.startswith(
        "Weekly monitoring, week 53 (28 Dec–3 Jan): "
    )


def test_numbers_use_babels_grouping_for_each_language() -> None:
    swedish = render_digest(swedish_week(), SETTINGS)
    grouped = format_decimal(1234, locale="sv_SE")
    assert grouped in ("1\xa0234", "1\u202f234")
    assert f"{grouped} inlägg" in flat(swedish.text)
    assert f"Engagemang: {format_decimal(56789, locale='sv_SE')}" in visible(swedish.html)
    assert "1,234 posts" in render_digest(english(swedish_week()), SETTINGS).text


def test_html_declares_language_and_both_colour_schemes() -> None:
    for data, language in ((swedish_week(), "sv"), (english(swedish_week()), "en")):
        html = render_digest(data, SETTINGS).html
        assert Elements(html).all("html")[0]["lang"] == language
        metas = {attrs.get("name"): attrs.get("content") for attrs in Elements(html).all("meta")}
        assert metas["color-scheme"] == "light dark"
        assert metas["supported-color-schemes"] == "light dark"


def test_layout_is_one_600_pixel_column() -> None:
    tables = Elements(render_digest(swedish_week(), SETTINGS).html).all("table")
    container = [t for t in tables if t.get("width") == "600"]
    assert len(container) == 1
    assert "width: 600px" in (container[0]["style"] or "")


def test_every_image_has_alt_text_and_a_video_thumbnail_is_described_by_its_title() -> None:
    images = Elements(render_digest(swedish_week(), SETTINGS).html).all("img")
    assert images
    assert all((image.get("alt") or "").strip() for image in images)
    assert images[0]["alt"] == "Så deklarerar du digitalt"


def test_video_shows_duration_as_minutes_and_seconds_and_views() -> None:
    rendered = render_digest(swedish_week(), SETTINGS)
    assert "Längd 12:34 · 12\xa0345 visningar" in visible(rendered.html)
    long = dataclasses.replace(VIDEO, duration_s=3723)
    assert "Length 1:02:03" in render_digest(english(swedish_week(videos=(long,))), SETTINGS).html


def test_css_is_inlined_and_only_media_queries_stay_in_a_style_block() -> None:
    elements = Elements(render_digest(swedish_week(), SETTINGS).html)
    styled = [attrs for _, attrs in elements.tags if attrs.get("style")]
    assert len(styled) > 50
    remaining = re.sub(r"/\*.*?\*/", "", "".join(elements.styles), flags=re.S)
    assert "prefers-color-scheme: dark" in remaining
    outside_media = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", remaining)
    assert outside_media.strip() == ""


def test_no_scripts_tracking_pixels_or_rewritten_links() -> None:
    html = render_digest(swedish_week(), SETTINGS).html
    assert "<script" not in html.lower()
    elements = Elements(html)
    assert all(image.get("width") != "1" for image in elements.all("img"))
    hrefs = {attrs["href"] for attrs in elements.all("a")}
    assert "https://x.com/regionsormland/status/1861" in hrefs
    assert "https://www.katrineholm.se/nyheter/bibliotek-jul" in hrefs


def test_hostile_post_renders_as_harmless_text_without_a_link() -> None:
    hostile = post(
        99,
        "Polisen",
        "x",
        title='<img src=x onerror="alert(1)">',
        excerpt="Läs mer <script>alert(1)</script> här",
        url="javascript:alert(1)",
        counts={"likes": 5},
        engagement=5,
    )
    video = dataclasses.replace(VIDEO, url=" JavaScript:alert(2)", thumbnail_url="data:image/png;x")
    breakout = post(
        98, "Polisen", "x", excerpt="Bryter ut", url='https://x.se/" onmouseover="alert(3)'
    )
    data = swedish_week(top_posts=(hostile, breakout), mentions=(hostile,), videos=(video,))
    data = with_summary(data, top_post=hostile)
    rendered = render_digest(data, SETTINGS)
    assert "<script" not in rendered.html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "javascript:" not in rendered.html.lower()
    assert "javascript:" not in rendered.text.lower()
    assert "data:image" not in rendered.html
    assert "onmouseover" not in rendered.html
    elements = Elements(rendered.html)
    assert not [name for _, attrs in elements.tags for name in attrs if name.startswith("on")]
    assert elements.all("img") == []
    assert "Läs mer <script>alert(1)</script> här" in rendered.text


def huge_week() -> DigestData:
    """Every list far longer than a digest shows."""
    many_posts = tuple(
        dataclasses.replace(
            TOP_POSTS[index % 4],
            post_id=1000 + index,
            excerpt=("Långt inlägg om vinterväghållning och kollektivtrafik i länet. " * 5)[:279]
            + "…",
        )
        for index in range(500)
    )
    many_news = tuple(
        OrganisationNews(f"Kommun {index}", NEWS[0].posts, more=4) for index in range(300)
    )
    many_rows = tuple(
        TableRow(f"Organisation {index}", 300 - index, 1000, 3.0, 0.003, own=index == 280)
        for index in range(300)
    )
    videos = tuple(dataclasses.replace(VIDEO, post_id=5000 + n) for n in range(40))
    return swedish_week(
        top_posts=many_posts,
        mentions=many_posts,
        dialog=many_posts,
        news=many_news,
        videos=videos,
        by_organisation=many_rows,
    )


def test_html_stays_under_the_clipping_limit_with_huge_lists() -> None:
    data = huge_week()
    rendered = render_digest(data, SETTINGS)
    assert len(rendered.html.encode("utf-8")) < MAX_HTML_BYTES
    assert re.search(r"och [\d\xa0\u202f]+ till", rendered.html)
    assert re.search(r"och [\d\xa0\u202f]+ organisationer till", rendered.html)
    assert "Organisation 280</strong> (din organisation)" in rendered.html
    assert "Mest engagerande inlägg" in rendered.html
    english_html = render_digest(english(data), SETTINGS).html
    assert len(english_html.encode("utf-8")) < MAX_HTML_BYTES
    assert re.search(r"and [\d,]+ more", english_html)


WEB = WebLinks("https://omvarld.katrineholm.se", "YW5uYQ.c2lnbmF0dXJl", 4711)
MORE_LINK = re.compile(r'<a [^>]*href="([^"]+)"[^>]*>(och [^<]+ till)</a>')


def more_links(html: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Each "och N till" link's text and the search filters its URL carries."""
    found = []
    for href, text in MORE_LINK.findall(html):
        parts = urlsplit(unescape(href))
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{WEB.public_url}/search"
        found.append((text, parse_qs(parts.query)))
    return found


def test_each_and_n_more_of_posts_links_to_the_search_for_that_sections_list() -> None:
    rendered = render_digest(huge_week(), SETTINGS, WEB)

    week = {"since": ["2026-11-23"], "until": ["2026-11-29"]}
    follows = {"group": ["Kommuner i Sörmland", "Myndigheter"]}
    filters = [query for _, query in more_links(rendered.html)]
    assert {"q": ['"julmarknad"'], **follows, **week, "sort": ["newest"]} in filters  # mentions
    assert {**follows, **week, "min_engagement": ["1"]} in filters  # top posts, dialog
    assert {**follows, "kind": ["video"], **week} in filters
    assert {"organisation": ["Kommun 0"], **follows, **week} in filters  # one organisation's news
    assert {**follows, **week} in filters  # "och N organisationer till"
    # The organisation table lists no posts: its "och N till" stays plain text.
    assert len(re.findall(r'<p class="more"[^>]*>och [^<]+ till</p>', rendered.html)) == 1
    # The text part gives the same searches after the words.
    for href, text in MORE_LINK.findall(rendered.html):
        assert f"{text}: {unescape(href)}" in flat(rendered.text)


def test_a_recipient_following_groups_and_organisations_gets_searches_of_neither() -> None:
    # The digest adds groups and organisations up; search would take only what is in both.
    recipient = Recipient(
        "per@example.se", groups=("Kommuner",), organisations=("Polisen",), platforms=("x",)
    )
    rendered = render_digest(dataclasses.replace(huge_week(), recipient=recipient), SETTINGS, WEB)

    filters = [query for _, query in more_links(rendered.html)]
    assert {"platform": ["x"], "since": ["2026-11-23"], "until": ["2026-11-29"]} in filters


def test_with_web_links_the_html_still_stays_under_the_clipping_limit() -> None:
    for data in (huge_week(), english(huge_week())):
        rendered = render_digest(data, SETTINGS, WEB)
        assert len(rendered.html.encode("utf-8")) < MAX_HTML_BYTES
        assert f"{WEB.public_url}/r/{WEB.token}/digests/4711" in rendered.html


def test_with_web_links_the_footer_leads_to_the_recipient_page_only() -> None:
    rendered = render_digest(swedish_week(), SETTINGS, WEB)

    page = f"{WEB.public_url}/r/{WEB.token}"
    hrefs = [attrs["href"] for attrs in Elements(rendered.html).all("a")]
    assert hrefs[0] == f"{page}/digests/4711"
    assert page in hrefs
    assert "https://omvarld.katrineholm.se/avsluta?token=abc123" not in hrefs
    assert "https://omvarld.katrineholm.se/installningar" not in hrefs
    assert rendered.text.startswith(f"Visa i webbläsaren: {page}/digests/4711\n")
    assert f"Se vad du följer eller avsluta prenumerationen: {page}" in rendered.text
    assert rendered.one_click_url == f"{page}/unsubscribe"


def test_search_links_without_the_secret_carry_no_recipient_links() -> None:
    rendered = render_digest(huge_week(), SETTINGS, WebLinks(WEB.public_url))

    assert more_links(rendered.html)
    assert "/r/" not in rendered.html and "/r/" not in rendered.text
    assert "Visa i webbläsaren" not in rendered.html
    assert "https://omvarld.katrineholm.se/avsluta?token=abc123" in rendered.html
    assert rendered.one_click_url is None


def test_empty_sections_are_left_out() -> None:
    quiet = DigestData(
        recipient=Recipient(email="anna.lindqvist@katrineholm.se"),
        week=WEEK,
        generated_at=GENERATED_AT,
        summary=Summary(0, 0, 5, 40, 6.0, 50.0, None, 0, None),
    )
    rendered = render_digest(quiet, SETTINGS)
    for heading in (
        "Omnämnanden",
        "Mest engagerande inlägg",
        "Nytt från organisationerna",
        "Dialog",
        "Nya videor",
        "Trender",
        "Per plattform",
        "Per organisation",
        "Per grupp",
        "Kanalförändringar",
        "Datakvalitet",
    ):
        assert heading not in rendered.html
        assert heading.upper() not in rendered.text
    assert "Veckan i korthet" in rendered.html
    assert "Inga nya inlägg från dem du följer den här veckan." in rendered.text
    assert rendered.subject == "Omvärldsbevakning v. 48 (23–29 nov): 0 inlägg, −100\xa0%"


def test_sections_come_in_the_agreed_order() -> None:
    text = render_digest(swedish_week(), SETTINGS).text
    headings = [
        "VECKAN I KORTHET",
        "OMNÄMNANDEN",
        "MEST ENGAGERANDE INLÄGG",
        "NYTT FRÅN ORGANISATIONERNA",
        "DIALOG",
        "NYA VIDEOR",
        "TRENDER",
        "PER PLATTFORM",
        "PER ORGANISATION",
        "PER GRUPP",
        "KANALFÖRÄNDRINGAR",
        "DATAKVALITET",
    ]
    positions = [text.index(f"\n{heading}\n") for heading in headings]
    assert positions == sorted(positions)


def test_posts_show_platform_as_text_and_local_time_in_the_weeks_zone() -> None:
    html = render_digest(swedish_week(), SETTINGS).html
    assert "Region Sörmland · X · tis 24 nov. 09:05" in html
    assert "Katrineholms kommun · Facebook · fre 27 nov. 16:30" in html
    assert "Webb/nyhetsflöde" in html
    english_html = render_digest(english(swedish_week()), SETTINGS).html
    assert "Region Sörmland · X · Tue 24 Nov 09:05" in english_html
    assert "Web/news feed" in english_html


def test_own_organisation_is_highlighted_in_words_not_only_colour() -> None:
    html = render_digest(swedish_week(), SETTINGS).html
    assert "<strong>Katrineholms kommun</strong> (din organisation)" in html
    own_rows = [attrs for attrs in Elements(html).all("tr") if "own" in (attrs.get("class") or "")]
    assert len(own_rows) == 1
    assert "background-color: #fff4ce" in (own_rows[0]["style"] or "")


def test_channel_changes_say_what_changed_in_a_sentence() -> None:
    text = flat(render_digest(swedish_week(), SETTINGS).text)
    assert (
        "Region Sörmland har börjat publicera på Bluesky (bluesky:regionsormland) 25 nov. 2026; "
        "tidigare bara på X."
    ) in text
    assert (
        "Krisinformation började publicera på Mastodon (mastodon:@krisinformation) 23 nov. 2026."
    ) in text
    assert "Polisen har inte publicerat på Facebook" in text
    english_text = flat(render_digest(english(swedish_week()), SETTINGS).text)
    assert (
        "Region Sörmland has started posting on Bluesky (bluesky:regionsormland) on "
        "25 Nov 2026; before, only on X."
    ) in english_text


def test_a_source_added_to_the_config_is_said_to_be_added_not_a_new_account() -> None:
    added = ChannelChange("Flens kommun", "feed", "flen-nyheter", "added", at(23, 8, 0))
    data = swedish_week(channel_changes=(added,))
    text = flat(render_digest(data, SETTINGS).text)
    assert "Flens kommun på Webb/nyhetsflöde (flen-nyheter) lades till i bevakningen" in text
    assert "nytt konto" not in text
    english_text = flat(render_digest(english(data), SETTINGS).text)
    assert "was added to the monitoring" in english_text
    assert "new account" not in english_text


def test_data_quality_says_how_complete_the_week_is() -> None:
    text = render_digest(swedish_week(), SETTINGS).text
    # The line and the table tell one story: X has 2 sources ok, 1 failing, 1 never collected.
    assert (
        "16 av 18 källor hämtades utan fel under veckan; inlägg kan saknas från 1 källa med fel "
        "och 1 källa som inte hämtades."
    ) in flat(text)
    assert "ingen lyckad hämtning" in text
    complete = swedish_week(quality=(DataQuality("feed", 12, 12, 0, at(23, 0), at(29, 22)),))
    assert "Alla 12 källor hämtades utan fel under veckan." in flat(
        render_digest(complete, SETTINGS).text
    )


def test_data_quality_never_says_sources_may_miss_posts_beside_no_failures() -> None:
    # Issue 13: "0 av 6 källor hämtades utan fel; inlägg från 6 källor kan saknas" beside "Med
    # fel 0". Sources not collected are named as such, not counted as failing.
    uncollected = swedish_week(quality=(DataQuality("feed", 6, 0, 0, None, None),))
    text = flat(render_digest(uncollected, SETTINGS).text)
    assert "0 av 6 källor hämtades utan fel under veckan; inlägg kan saknas från 6 källor som " in (
        text
    )
    assert "med fel" not in text.split("DATAKVALITET")[1].split("*")[0]


def test_footer_explains_why_and_how_to_change_or_stop() -> None:
    rendered = render_digest(swedish_week(), SETTINGS)
    assert (
        "Du får det här brevet på anna.lindqvist@katrineholm.se eftersom du följer "
        "grupperna Kommuner i Sörmland och Myndigheter."
    ) in flat(rendered.text)
    hrefs = {attrs["href"] for attrs in Elements(rendered.html).all("a")}
    assert "https://omvarld.katrineholm.se/installningar" in hrefs
    assert "https://omvarld.katrineholm.se/avsluta?token=abc123" in hrefs
    assert "Avsändare: Omvärld &lt;omvarld@katrineholm.se&gt;" in rendered.html
    assert "automatiskt genererad" in rendered.html
    assert "automatically generated" in render_digest(english(swedish_week()), SETTINGS).html


def test_footer_offers_the_mailto_address_when_there_is_no_unsubscribe_page() -> None:
    settings = DigestConfig.model_validate({"unsubscribe_mailto": "avsluta@katrineholm.se"})
    rendered = render_digest(swedish_week(), settings)
    hrefs = {attrs["href"] for attrs in Elements(rendered.html).all("a")}
    assert "mailto:avsluta@katrineholm.se" in hrefs
    assert "Vill du inte längre få brevet? Mejla avsluta@katrineholm.se." in rendered.text
    assert "Ändra vad du följer" not in rendered.text


def test_footer_links_carry_the_recipients_address_where_the_config_asks_for_it() -> None:
    settings = DigestConfig.model_validate(
        {
            "settings_url": "https://omvarld.katrineholm.se/installningar?for={email}",
            "unsubscribe_url": "https://omvarld.katrineholm.se/avsluta?for={email}",
        }
    )
    data = swedish_week()
    rendered = render_digest(data, settings)
    who = data.recipient.email.replace("@", "%40")
    hrefs = {attrs["href"] for attrs in Elements(rendered.html).all("a")}
    assert f"https://omvarld.katrineholm.se/installningar?for={who}" in hrefs
    assert f"https://omvarld.katrineholm.se/avsluta?for={who}" in hrefs
    assert f"https://omvarld.katrineholm.se/avsluta?for={who}" in rendered.text
    assert "{email}" not in rendered.html + rendered.text


def test_english_recipient_gets_english_even_when_the_default_is_swedish() -> None:
    rendered = render_digest(english(swedish_week()), SETTINGS)
    assert "The week in brief" in rendered.html
    assert "Veckan i korthet" not in rendered.html
    assert "(+8% against the week before, +12% against the average" in rendered.text


def test_generated_at_is_shown_in_local_time() -> None:
    later = swedish_week(generated_at=GENERATED_AT + timedelta(hours=1))
    assert "automatiskt genererad av Omvärld mån 30 nov. 08:00." in flat(
        render_digest(later, SETTINGS).text
    )


# The digest opened in a browser ("view in browser" shows it as mailed): axe-core in headless
# Chromium (Debian's `chromium`, through Playwright). Every request but the page itself is
# refused, so no test reaches the internet (the video thumbnail's host included).

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
def test_the_digest_has_no_wcag_aa_violations_in_a_browser(
    browser: Any, scheme: str, name: str
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    data, web = {
        "swedish with links": (swedish_week(), WEB),
        "english, every list cut, with links": (english(huge_week()), WEB),
        "swedish, no [web]": (swedish_week(), None),
    }[name]
    context = browser.new_context(color_scheme=scheme)
    try:
        page = context.new_page()
        page.route("**/*", refuse_network)
        page.set_content(render_digest(data, SETTINGS, web).html)
        violations = Axe().run(page, options=WCAG_AA).response["violations"]
    finally:
        context.close()

    assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []
