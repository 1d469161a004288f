"""A post's row values (monitor/rows.py): computed once, in the parse worker, as the store and
the database's own index triggers would compute them."""

from __future__ import annotations

import pytest

from monitor.rows import clean_text, prepare_post
from monitor.stems import stem_text
from monitor.terms import stored_terms
from monitor.types import PostData


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
