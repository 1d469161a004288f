"""A post's row values (monitor/rows.py): computed once, in the parse worker, as the store and
the database's own index triggers would compute them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from monitor.rows import clean_text, compute_content_hash, prepare_post
from monitor.stems import stem_text
from monitor.terms import stored_terms
from monitor.types import Media, PostData


@pytest.mark.parametrize(
    ("title", "text", "tags"),
    [
        ("Ny förskola i Hagalund", "Kommunen bygger. Förskolan öppnar 2027.", ("Skola",)),
        (None, "Bara text, #snö och https://www.example.se/länk", ()),
        ("Bara rubrik", None, ("#trafik", " ")),
        (None, None, ("Snö",)),
        ("", "  Text\u00a0med\tandra  mellanrum \n", ()),
        # Control characters: the stems are of the cleaned text, the terms of the text as sent.
        ("Rubrik\x07 med\x1b[2J skräp", "Ny\x00skola\x1b]0;titel", ("Snö",)),
    ],
)
def test_terms_and_stems_are_those_of_the_post_as_stored(
    title: str | None, text: str | None, tags: tuple[str, ...]
) -> None:
    post = PostData(platform_post_id="1", kind="article", title=title, text=text, tags=tags)
    prepared = prepare_post(post)
    assert prepared.values["terms"] == stored_terms(title, text, tags)
    assert prepared.title_stems == stem_text(clean_text(title))
    assert prepared.text_stems == stem_text(clean_text(text))


def test_content_hash_is_that_of_earlier_versions() -> None:
    """A stored post is compared with its next reading by this hash: a hash computed another way
    after an upgrade would make every stored post look edited, and store a revision of each.
    The value is what json.dumps and SHA-256 gave before the hash was made with orjson."""
    post = PostData(
        platform_post_id="x-1",
        kind="video",
        url='https://www.example.se/nyheter/1?a=1&b="2"',
        author="Kommunikationsenheten \\ Stadshuset",
        published_at=datetime(2026, 12, 6, 8, 30, tzinfo=UTC),
        title="Ny förskola – öppnar \u2028 2027 😀",
        text="Rad ett\nRad\ttvå \x00 med\x1b[2J skräp och \u00e5\u00e4\u00f6 \U0001f4e2",
        html="<p>Rad ett</p><p>Rad två</p>",
        language="sv",
        tags=("Skola", "#snö"),
        links=("https://www.example.se/a", "https://www.example.se/b"),
        mentions=("@stadshuset",),
        other_mentions=3,
        media=(
            Media(
                type="video",
                url="https://v.example.se/1.mp4",
                duration_s=61,
                alt_text="Film\x07",
                width=1280,
                height=720,
            ),
        ),
    )
    expected = "aef3df9c6d002ddeb241169a9b50f081a62b8326589a752dfa55ae5d39e1d41f"
    assert compute_content_hash(post) == expected


def test_a_post_without_its_raw_payload_is_the_same_post() -> None:
    post = PostData(
        platform_post_id="1",
        kind="article",
        title="Rubrik",
        text="Text",
        tags=("Skola",),
        raw={"xml": "<item/>"},
        metrics={"views": 3},
    )
    sent = post.without_raw()
    assert sent == dataclasses.replace(post, raw={})
    assert sent.title is post.title and sent.tags is post.tags and sent.metrics is post.metrics
    assert post.raw == {"xml": "<item/>"}  # the original keeps its payload
