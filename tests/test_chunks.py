"""A post's text read for its search stems and trend terms (monitor/chunks.py): the C extension
must answer exactly as the Python reading, which is the reference.

The stems go into the search index and the terms into `posts.terms`; a reading that differed
would make search and trends disagree between machines with and without a compiler.
"""

from __future__ import annotations

import random

import pytest

from monitor import chunks
from monitor.stems import STEM_MEMORY, stem_chunk, stem_text
from monitor.terms import chunk_terms, stored_terms

# Pieces of text of every sort the reading must cut and read alike: Swedish words in several
# cases, hashtags, mentions, links, numbers, hyphens and underscores, punctuation, every kind of
# whitespace str.split() cuts at (and characters it does not: a no-break space is whitespace,
# a zero-width space is not), a decomposed "å", characters of two and four bytes, and a lone
# surrogate.
PIECES = [
    "Kommunen", "kommunerna", "SKOLAN", "förskola", "Älvsbyn", "öppnar", "trafiken", "och",
    "#snö", "#Trafik", "@kommunen", "https://www.kommun.se/nyheter?id=1", "www.kommun.se",
    "covid-19", "e-tjänst", "2026", "3,5", "ord_med_understreck", "Ja!", "(nej)", "bl.a.",
    "a\u030angström", "Ωμέγα", "ΣΟΦΙΑ", "İstanbul", "straße", "日本語", "😀", "x😀y", "\ud800",
    "–", "’s", "", "-", "#", "@", "_",
]  # fmt: skip
SPACES = [
    " ", "  ", "\n", "\t", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2009",
    "\u2028", "\u3000", "\u200b", "\ufeff",
]  # fmt: skip

needs_c = pytest.mark.skipif(
    chunks.read_in_c is None,
    reason="monitor._chunks is not built (no C compiler at install): the Python reading runs",
)


def make_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(PIECES) + rng.choice(SPACES) for _ in range(length))


def test_the_python_reading_is_the_stems_and_terms_of_the_whole_post() -> None:
    """The reference itself: what `stem_text` and `stored_terms` say of the title and text."""
    rng = random.Random(1)
    for _ in range(2_000):
        title, text = make_text(rng, rng.randint(0, 4)), make_text(rng, rng.randint(0, 30))
        tags = rng.sample(["snö", "#Trafik", " ", "Skola"], rng.randint(0, 2))
        assert chunks.read_in_python(title, text, tags) == (
            stored_terms(title, text, tags),
            stem_text(title),
            stem_text(text),
        )


@needs_c
def test_the_c_reading_answers_as_the_python_one() -> None:
    assert chunks.read_in_c is not None
    rng = random.Random(2)
    for _ in range(20_000):
        title = None if rng.random() < 0.1 else make_text(rng, rng.randint(0, 5))
        text = None if rng.random() < 0.1 else make_text(rng, rng.randint(0, 40))
        tags = rng.sample(["snö", "#Trafik", "", "Skola"], rng.randint(0, 2))
        assert chunks.read_in_c(title, text, tags) == chunks.read_in_python(title, text, tags), (
            title,
            text,
        )


@needs_c
def test_a_chunk_reads_the_same_in_a_text_of_any_width() -> None:
    """Python stores text of one to four bytes a character; the reader compares characters, so
    "skolan" in a text with an emoji is the "skolan" met in plain text."""
    from monitor._chunks import ChunkReader

    reader = ChunkReader(stem_chunk, chunk_terms, STEM_MEMORY)
    found_narrow: set[str] = set()
    narrow = reader.read("skolan öppnar", found_narrow)
    remembered = reader.remembered()
    assert reader.read("öppnar skolan", set()) == "öppn skolan"
    assert reader.remembered() == remembered  # met before: found, not learnt again
    for wide in ("skolan öppnar Ω", "skolan öppnar 😀"):
        found: set[str] = set()
        assert reader.read(wide, found).startswith(narrow)
        assert found_narrow <= found
    assert reader.remembered() == remembered + 2  # only "Ω" and "😀" were new


@needs_c
def test_a_reader_past_its_limit_forgets_and_reads_on_alike() -> None:
    from monitor._chunks import ChunkReader

    reader = ChunkReader(stem_chunk, chunk_terms, 3)
    rng = random.Random(3)
    for _ in range(500):
        text = make_text(rng, rng.randint(0, 12))
        found: set[str] = set()
        assert reader.read(text, found) == stem_text(text)
        assert reader.remembered() <= 3
        expected = stored_terms(None, text, ())
        assert " ".join(sorted(found)) == expected


@needs_c
def test_a_failing_function_fails_the_read_and_leaves_the_reader_sound() -> None:
    from monitor._chunks import ChunkReader

    def stem(chunk: str) -> str:
        if chunk == "trasig":
            raise ValueError("no stem")
        return stem_chunk(chunk)

    reader = ChunkReader(stem, chunk_terms, 100)
    with pytest.raises(ValueError, match="no stem"):
        reader.read("skolan trasig kommunen", set())
    assert reader.read("skolan kommunen", set()) == stem_text("skolan kommunen")

    wrong = ChunkReader(stem_chunk, lambda chunk: [chunk], 100)  # a list, not a tuple
    with pytest.raises(TypeError, match="tuple"):
        wrong.read("skolan", set())
    with pytest.raises(TypeError):
        reader.read(b"skolan", set())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChunkReader(stem_chunk, chunk_terms, 0)
