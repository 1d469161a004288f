"""The fast reading of feeds (collectors/feedxml.py) gives the posts feedparser's reading gives.

Every post field but the raw payload must be equal: a difference would show up as an edit of
every stored post the first time a feed is read the other way. Compared on every fixture, the
benchmark's generated feeds, and random combinations of the shapes real feeds take.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from pathlib import Path

import pytest
from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252

from bench.feedgen import FeedFactory, render
from collectors.feeds import FeedError, ParsedFeed, parse_feed
from collectors.feedxml import _redecode, parse_time, read_feed

FIXTURES = Path(__file__).parent / "fixtures"
FEED_URL = "https://www.example.se/nyheter/feed"
CONTENT_TYPES = (None, "application/rss+xml", "text/xml", "application/atom+xml; charset=utf-8")


def read_both(body: bytes, content_type: str | None) -> tuple[object, object]:
    """Both readings without raw payloads (or the error each raised)."""
    readings = []
    for fast in (False, True):
        try:
            parsed = parse_feed(body, url=FEED_URL, content_type=content_type, fast=fast)
        except FeedError as error:
            readings.append(("FeedError", str(error)))
            continue
        readings.append(without_raw(parsed))
    return readings[0], readings[1]


def without_raw(parsed: ParsedFeed) -> ParsedFeed:
    posts = tuple(dataclasses.replace(post, raw={}) for post in parsed.posts)
    return dataclasses.replace(parsed, posts=posts)


FIXTURE_FILES = sorted(
    p.relative_to(FIXTURES).as_posix()
    for p in [*FIXTURES.glob("**/*.xml"), *FIXTURES.glob("**/*.atom")]
)


@pytest.mark.parametrize("fixture", FIXTURE_FILES)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_every_fixture_reads_the_same_both_ways(fixture: str, content_type: str | None) -> None:
    feedparser_reading, fast_reading = read_both((FIXTURES / fixture).read_bytes(), content_type)
    assert fast_reading == feedparser_reading


def test_the_fast_reading_takes_the_common_shapes() -> None:
    """Not a correctness test: the fast path must actually be taken where it should."""
    taken = {
        name
        for name in FIXTURE_FILES
        if read_feed((FIXTURES / name).read_bytes(), "application/xml") is not None
    }
    assert {"feeds/rss20.xml", "feeds/atom.xml", "feeds/youtube.xml", "feeds/mastodon.xml"} <= taken
    # A DOCTYPE with entities, a Latin-1 feed, a broken one and RDF are feedparser's.
    for name in (
        "feeds/entity_bomb.xml",
        "feeds/latin1.xml",
        "feeds/malformed.xml",
        "feeds/rdf.xml",
    ):
        assert name not in taken


def test_the_benchmark_feeds_read_the_same_both_ways() -> None:
    factory = FeedFactory(7)
    for index in range(60):
        body = render(factory.feed(index), "http://127.0.0.1:8080")
        assert read_feed(body, "text/xml") is not None
        feedparser_reading, fast_reading = read_both(body, "text/xml")
        assert fast_reading == feedparser_reading, f"feed {index}"


# Pieces of an RSS item, each a shape met in real feeds; items are random combinations of them.
RSS_PIECES = [
    "<title>Ny förskola i Norra Ängen</title>",
    "<title>Tom &amp; Jerry &lt;b&gt;fet&lt;/b&gt; rubrik</title>",
    "<title>Rubrik med <![CDATA[<em>cdata</em>]]> i</title>",
    "<title>  </title>",
    "<title>Ã…rsredovisning fÃ¶r 2026</title>",  # UTF-8 read as Latin-1 by a CMS
    "<title>Citat \u0093så sa hon\u0094 \u0096 kommunen</title>",  # cp1252's C1 characters
    "<link>https://www.flen.se/nyheter/1</link>",
    "<link>/nyheter/relativ</link>",
    "<link>https://www.flen.se/?a=1&amp;b=2</link>",
    "<link></link>",
    '<guid isPermaLink="false">urn:uuid:1234</guid>',
    "<guid>https://www.flen.se/nyheter/guid</guid>",
    '<guid isPermaLink="true">https://www.flen.se/nyheter/perma</guid>',
    "<pubDate>Tue, 24 Nov 2026 10:00:12 +0100</pubDate>",
    "<pubDate>2026-11-24T10:00:12Z</pubDate>",
    "<pubDate>inte ett datum</pubDate>",
    "<dc:date>2026-11-23T08:00:00+01:00</dc:date>",
    "<description>&lt;p&gt;Brödtext med &lt;a href='/x'&gt;länk&lt;/a&gt;.&lt;/p&gt;</description>",
    "<description><![CDATA[<p>Brödtext i <strong>CDATA</strong></p>"
    "<script>alert(1)</script>]]></description>",
    "<description>Bara text, inga taggar.</description>",
    "<description>Text <!-- en kommentar --> efter</description>",
    "<content:encoded><![CDATA[<p>Hela artikeln</p>]]></content:encoded>",
    "<author>info@flen.se (Flens kommun)</author>",
    "<author>Flens kommun</author>",
    "<dc:creator>Kommunikationsavdelningen</dc:creator>",
    "<dc:creator>Anna Andersson</dc:creator>",
    "<category>Trafik</category>",
    "<category>Trafik</category>",
    '<category domain="https://www.flen.se/kategori">Skola</category>',
    '<category domain="https://www.flen.se/kategori">Skola</category>',
    "<category></category>",
    "<dc:subject>Miljö</dc:subject>",
    '<enclosure url="https://www.flen.se/bild.jpg" type="image/JPEG" length="1234"/>',
    '<enclosure url="https://www.flen.se/pod.mp3" type="audio/mpeg" length="99"/>',
    '<media:content url="https://www.flen.se/v.mp4" medium="video" duration="61" width="640"'
    ' height="360"><media:description type="plain">Alt-text till videon</media:description>'
    "</media:content>",
    '<media:thumbnail url="https://www.flen.se/tumme.jpg" width="120"/>',
    "<media:thumbnail>https://www.flen.se/tumme-text.jpg</media:thumbnail>",
    '<media:content url="https://www.flen.se/bild2.jpg" type="image/png"/>',
    "<media:keywords>vatten, avlopp ,, va</media:keywords>",
    '<media:category scheme="urn:x">Kultur</media:category>',
    "<comments>https://www.flen.se/nyheter/1#kommentarer</comments>",
    "<wfw:commentRss>https://www.flen.se/nyheter/1/feed</wfw:commentRss>",
    "<slash:comments>4</slash:comments>",
    '<x:okand attr="1">okänd</x:okand>',
    "<x:okand2>okänt utan attribut</x:okand2>",
    '<atom:link rel="alternate" href="https://www.flen.se/atom-lank"/>',
    "<itunes:author>Podd</itunes:author>",
    "<source url='https://annan.se/rss'>Annan källa</source>",
]

ATOM_PIECES = [
    "<title>Ny förskola</title>",
    '<title type="html">Tom &amp;amp; &lt;b&gt;Jerry&lt;/b&gt;</title>',
    '<title type="text">&lt;b&gt;inte html&lt;/b&gt;</title>',
    '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div></title>',
    "<id>tag:flen.se,2026:1</id>",
    "<id>https://www.flen.se/nyheter/id-som-lank</id>",
    '<link href="https://www.flen.se/nyheter/a"/>',
    '<link rel="alternate" type="text/html" href="https://www.flen.se/nyheter/b"/>',
    '<link rel="self" href="https://www.flen.se/nyheter/self"/>',
    '<link rel="enclosure" type="image/jpeg" href="https://www.flen.se/bild.jpg" length="5"/>',
    '<link rel="alternate" type="application/pdf" href="https://www.flen.se/doc.pdf"/>',
    "<published>2026-11-24T10:00:12+01:00</published>",
    "<updated>2026-11-25T06:41:03Z</updated>",
    "<updated>ogiltigt</updated>",
    '<summary type="html">&lt;p&gt;Sammanfattning&lt;/p&gt;</summary>',
    "<summary>Ren text &amp; mer</summary>",
    '<content type="html">&lt;p&gt;Innehåll&lt;/p&gt;</content>',
    '<content type="text">Innehåll som text</content>',
    '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></content>',
    '<content type="image/png">aGVq</content>',
    "<author><name>Flens kommun</name><email>info@flen.se</email></author>",
    "<author><name>Region Sörmland</name><uri>https://regionsormland.se</uri></author>",
    "<author><email>press@flen.se</email></author>",
    '<category term="skola" scheme="urn:s" label="Skola"/>',
    '<category term="skola" scheme="urn:s" label="Skola"/>',
    '<category term="trafik"/>',
    "<media:group><media:title>Videotitel</media:title><media:description>Rad ett\n\nRad två"
    " https://www.flen.se</media:description><media:community>"
    '<media:starRating count="12" average="5.00" min="1" max="5"/>'
    '<media:statistics views="345"/></media:community></media:group>',
    '<yt:videoId xmlns:yt="http://www.youtube.com/xml/schemas/2015">abc</yt:videoId>',
    "<source><title>Annan</title><id>tag:annan</id></source>",
]

RSS_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"'
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/"'
    ' xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:slash="http://purl.org/rss/1.0/modules/slash/"'
    ' xmlns:x="urn:example:okand" xmlns:atom="http://www.w3.org/2005/Atom"'
    ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"{lang}>\n<channel>'
    "<title>Flens kommun</title><link>https://www.flen.se</link>{language}{generator}\n"
)
ATOM_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"'
    ' xmlns:media="http://search.yahoo.com/mrss/"{lang}>\n<title>Flens kommun</title>'
    "<id>tag:flen.se,2026:feed</id>{generator}\n"
)


def random_rss(rng: random.Random) -> bytes:
    items = []
    for _ in range(rng.randint(1, 4)):
        pieces = rng.sample(RSS_PIECES, rng.randint(1, 9))
        lang = rng.choice(["", ' xml:lang="en"', ' xml:lang=""'])
        items.append(f"<item{lang}>{''.join(pieces)}</item>")
    head = RSS_HEAD.format(
        lang=rng.choice(["", ' xml:lang="sv_SE"']),
        language=rng.choice(["", "<language>sv-se</language>", "<dc:language>sv</dc:language>"]),
        generator=rng.choice(
            ["", "<generator>Mastodon v4.2</generator>", "<generator>EPiServer</generator>"]
        ),
    )
    return (head + "\n".join(items) + "</channel></rss>").encode()


def random_atom(rng: random.Random) -> bytes:
    entries = []
    for _ in range(rng.randint(1, 4)):
        pieces = rng.sample(ATOM_PIECES, rng.randint(1, 8))
        lang = rng.choice(["", ' xml:lang="de"'])
        entries.append(f"<entry{lang}>{''.join(pieces)}</entry>")
    head = ATOM_HEAD.format(
        lang=rng.choice(["", ' xml:lang="sv"']),
        generator=rng.choice(
            [
                "",
                '<generator uri="https://www.flickr.com/">Flickr</generator>',
                "<generator>WordPress</generator>",
            ]
        ),
    )
    return (head + "\n".join(entries) + "</feed>").encode()


@pytest.mark.parametrize("seed", range(40))
def test_random_feeds_read_the_same_both_ways(seed: int) -> None:
    rng = random.Random(seed)
    fast = 0
    for _ in range(25):
        body = random_rss(rng) if rng.random() < 0.6 else random_atom(rng)
        content_type = rng.choice(CONTENT_TYPES)
        fast += read_feed(body, content_type) is not None
        feedparser_reading, fast_reading = read_both(body, content_type)
        assert fast_reading == feedparser_reading, body.decode()
    assert fast >= 5  # the comparison is not only of feedparser with itself


def test_the_fast_reading_keeps_the_entry_as_sent() -> None:
    body = (FIXTURES / "feeds" / "rss20.xml").read_bytes()
    parsed = parse_feed(body, url=FEED_URL, content_type="application/rss+xml")
    xml = parsed.posts[0].raw["xml"]
    assert xml.startswith("<item") and xml.endswith("</item>")
    assert 'xmlns:content="http://purl.org/rss/1.0/modules/content/"' in xml  # self-contained
    assert parsed.posts[0].title is not None and parsed.posts[0].title.split()[0] in xml


DATES = [
    "2026-11-24T10:00:12+01:00", "2026-11-24T10:00:12.123456Z", "2026-11-24T10:00:12Z",
    "2026-11-24T23:30:00-05:30", "2026-02-30T10:00:00Z", "2026-11-24T24:00:00Z",
    "2026-11-24T10:00:60Z", "2026-11-24T10:00:12+24:00", "2026-11-24 10:00:12", "2026-11-24",
    "Tue, 24 Nov 2026 10:00:12 +0100", "Tue, 24 Nov 2026 10:00:12 GMT",
    "Tue, 4 Nov 2026 10:00:12 -0530", "Wed, 24 Nov 2026 10:00:12 UT", "Tue, 24 Nov 2026 10:00:12 Z",
    "Tue, 24 Nov 2026 10:00:12 CET", "Tue, 24 Nov 26 10:00:12 +0100",
    "Tue, 31 Feb 2026 10:00:12 +0000",
    "24 Nov 2026 10:00:12 +0100", "tue, 24 nov 2026 10:00:12 +0100", "", "igår",
]  # fmt: skip


@pytest.mark.parametrize("value", DATES)
def test_dates_read_directly_are_the_dates_feedparser_reads(value: str) -> None:
    expected = _parse_date(value)
    got = parse_time(value)
    assert (got and tuple(got)[:6]) == (expected and tuple(expected)[:6])


REDECODED = [
    "", "ascii", "Ny förskola – Åsa’s", "Ã…rsredovisning fÃ¶r 2026", "Citat \u0093så\u0094 \u0096",
    "pris\u00a0100\u00a0kr", "«citat» 20°", "Ã©\u2013", "\u00c3", "\u00c2\u00a0", "\ud800 lön",
    "\ud800\u0093", "ö\u0080", "\u00e2\u0080\u0099",
]  # fmt: skip


@pytest.mark.parametrize("value", REDECODED)
def test_redecoding_skips_only_what_it_would_not_change(value: str) -> None:
    """_redecode's shortcut (no character in U+0080..U+00BF) against its two steps done."""
    expected = value
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        expected = expected.encode("iso-8859-1").decode("utf-8")
    expected = expected.translate(_cp1252)
    assert _redecode(value) == expected
