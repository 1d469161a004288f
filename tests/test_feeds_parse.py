"""Golden files: each feed fixture paired with the posts it must produce (parse only, no I/O).

Regenerate after an intended change with `pytest tests/test_feeds_parse.py --update-goldens`,
then read the diff: it is the change in what users will see.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from collectors.feeds import FeedError, ParsedFeed, parse_feed
from monitor.rows import keep_web_addresses
from tests.conftest import assert_golden
from tests.feedserver import FIXTURES

FEED_URL = "https://www.katrineholm.se/rss"

# fixture -> content type the server sends
PARSED_FIXTURES = {
    "rss091.xml": "application/rss+xml",
    "rss20.xml": "application/rss+xml; charset=utf-8",
    "rss20_edited.xml": "application/rss+xml; charset=utf-8",
    "rdf.xml": "application/rdf+xml",
    "atom.xml": "application/atom+xml",
    "youtube.xml": "text/xml; charset=UTF-8",
    "flickr.xml": "application/atom+xml",
    "mastodon.xml": "application/rss+xml; charset=utf-8",
    "no_guid.xml": "application/rss+xml",
    "latin1.xml": "application/rss+xml",
    "malformed.xml": "application/rss+xml",
    "entity_bomb.xml": "application/rss+xml",
}


def describe(parsed: ParsedFeed) -> dict[str, Any]:
    """What the golden file records: everything but the raw payload, which is kept whole."""
    posts = []
    for post in parsed.posts:
        fields = dataclasses.asdict(post)
        fields["published_at"] = post.published_at.isoformat() if post.published_at else None
        fields["raw_keys"] = sorted(fields.pop("raw"))
        fields["tags"] = list(post.tags)
        fields["links"], fields["mentions"] = list(post.links), list(post.mentions)
        fields["media"] = [dataclasses.asdict(m) for m in post.media]
        posts.append(fields)
    return {
        "title": parsed.title,
        "flavour": parsed.flavour,
        "problem": parsed.problem,
        "posts": posts,
    }


@pytest.mark.parametrize("fixture", sorted(PARSED_FIXTURES))
def test_fixture_parses_to_its_golden_posts(fixture: str, request: pytest.FixtureRequest) -> None:
    body = (FIXTURES / fixture).read_bytes()
    parsed = describe(parse_feed(body, url=FEED_URL, content_type=PARSED_FIXTURES[fixture]))
    text = json.dumps(parsed, ensure_ascii=False, indent=2) + "\n"
    assert_golden(request, fixture.rsplit(".", 1)[0] + ".json", text)


def test_youtube_feed_becomes_videos_with_views_and_likes_as_metrics() -> None:
    parsed = parse_feed((FIXTURES / "youtube.xml").read_bytes(), url="http://127.0.0.1/any")
    assert parsed.flavour == "youtube"
    assert {p.kind for p in parsed.posts} == {"video"}
    first = parsed.posts[0]
    assert first.platform_post_id == "yt:video:dK3v9Qm2TfA"
    assert first.metrics == {"views": 1234, "likes": 42}
    assert first.media[0].thumbnail_url == "https://i1.ytimg.com/vi/dK3v9Qm2TfA/hqdefault.jpg"


def test_mastodon_post_keeps_its_text_and_the_image_alt_text() -> None:
    parsed = parse_feed((FIXTURES / "mastodon.xml").read_bytes(), url=FEED_URL)
    assert parsed.flavour == "mastodon"
    with_image = next(p for p in parsed.posts if p.media)
    assert with_image.kind == "post"
    assert with_image.title is None
    assert with_image.html and "<" in with_image.html
    assert with_image.text and with_image.media[0].alt_text
    assert with_image.text != with_image.media[0].alt_text


def test_entries_without_guid_fall_back_to_link_then_to_a_stable_hash() -> None:
    body = (FIXTURES / "no_guid.xml").read_bytes()
    first, second = parse_feed(body, url=FEED_URL), parse_feed(body, url=FEED_URL)
    ids = [p.platform_post_id for p in first.posts]
    assert ids[0].startswith("http")
    assert ids[1].startswith("sha256:") and ids[2].startswith("sha256:")
    assert len(set(ids)) == 3
    assert ids == [p.platform_post_id for p in second.posts]  # stable across fetches
    assert first.posts[2].published_at is None  # dated at first sight by the store


def test_latin1_feed_decodes_swedish_letters() -> None:
    parsed = parse_feed((FIXTURES / "latin1.xml").read_bytes(), url=FEED_URL)
    assert parsed.problem is None
    assert parsed.posts[0].title and "Välkommen till Örebro" in parsed.posts[0].title


def test_malformed_feed_keeps_what_it_recovered_and_says_so() -> None:
    parsed = parse_feed((FIXTURES / "malformed.xml").read_bytes(), url=FEED_URL)
    assert len(parsed.posts) == 2
    assert (
        parsed.problem
        and "not well-formed" in parsed.problem
        and "2 entries recovered" in parsed.problem
    )


def test_entity_bomb_is_not_expanded() -> None:
    parsed = parse_feed((FIXTURES / "entity_bomb.xml").read_bytes(), url=FEED_URL)
    assert parsed.problem and "undefined entity" in parsed.problem
    assert all(len(p.title or "") < 100 for p in parsed.posts)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ((FIXTURES / "html_page.html").read_bytes(), "text/html; charset=utf-8", "HTML page"),
        ((FIXTURES / "html_page.html").read_bytes(), "application/rss+xml", "HTML page"),
        (b"", "application/rss+xml", "not a feed"),
        (b"\x00\x01\x02 binary", "application/octet-stream", "not a feed"),
        (b'{"json": "instead"}', "application/json", "not a feed"),
    ],
)
def test_a_body_that_is_not_a_feed_is_a_clear_error(
    body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(FeedError, match=message):
        parse_feed(body, url=FEED_URL, content_type=content_type)


def test_script_and_javascript_links_stay_inert_in_text() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><guid>1</guid><title>Hej</title><link>javascript:alert(1)</link>
    <description><![CDATA[<p>Text</p><script>alert('x')</script>
    <a href="javascript:alert(1)">klick</a>]]></description>
    </item></channel></rss>"""
    post = parse_feed(body, url=FEED_URL).posts[0]
    assert keep_web_addresses(post).url is None  # the store keeps only http(s) links
    assert post.text == "Text\nklick"
    assert post.html and "<script>" in post.html  # kept as published; sanitised when rendered


def test_max_entries_takes_the_newest_dated_entries_then_undated_ones_in_feed_order() -> None:
    dates = ["Mon, 02 Nov 2026 08:00:00 GMT", None, "Mon, 23 Nov 2026 08:00:00 GMT", None,
             "Mon, 09 Nov 2026 08:00:00 GMT"]  # fmt: skip
    items = "".join(
        f"<item><guid>e{i}</guid><title>t{i}</title>"
        + (f"<pubDate>{date}</pubDate>" if date else "")
        + "</item>"
        for i, date in enumerate(dates)
    )
    body = f'<rss version="2.0"><channel><title>f</title>{items}</channel></rss>'.encode()

    def taken(limit: int) -> list[str]:
        parsed = parse_feed(body, url="https://example.se/rss", max_entries=limit)
        return [post.platform_post_id for post in parsed.posts]

    assert taken(2) == ["e2", "e4"]
    assert taken(4) == ["e2", "e4", "e0", "e1"]
    assert parse_feed(body, url="https://example.se/rss", max_entries=5).problem is None
    assert parse_feed(body, url="https://example.se/rss", max_entries=1).problem == (
        "5 entries in the feed; the newest 1 taken ([collect] max_entries)"
    )
