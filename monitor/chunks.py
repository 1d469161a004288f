"""A post's title and text read once for their search stems and their trend terms. Pure.

Both are worked out per whitespace-free chunk of text ("Kommunen,", "#snö") and remembered by
chunk: the stems for the SQLite search index (monitor.stems), the terms for digest trends
(monitor.terms). A post's text is about 200 chunks, and in Python each costs an object
(str.split), a hash and two lookups: 51 of the ~200 µs a post cost a parse worker of a cold pass
(issue 15). `monitor._chunks`, a C extension built at install where a compiler is, reads a
text's chunks where they lie and makes an object only for a chunk it has never met, whose stems
and terms the Python functions compute: 20 µs. Without it, the Python below reads the same: it
is the reference, and tests/test_chunks.py holds the two to one answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.stems import STEM_MEMORY, stem_chunk, stem_chunks
from monitor.terms import add_tag_terms, chunk_terms, join_terms, stored_terms_of_chunks

# (terms, title stems, text stems)
ReadText = tuple[str, str | None, str | None]


def read_in_python(title: str | None, text: str | None, tags: Sequence[str]) -> ReadText:
    """`read_post_text` without the C extension."""
    title_chunks = title.split() if title else []
    text_chunks = text.split() if text else []
    return (
        stored_terms_of_chunks(title_chunks + text_chunks, tags),
        None if title is None else stem_chunks(title_chunks),
        None if text is None else stem_chunks(text_chunks),
    )


def _make_c_reading() -> Callable[[str | None, str | None, Sequence[str]], ReadText] | None:
    try:
        from monitor._chunks import ChunkReader
    except ImportError:  # not built: no compiler at install
        return None
    reader = ChunkReader(stem_chunk, chunk_terms, STEM_MEMORY)

    def read_in_c(title: str | None, text: str | None, tags: Sequence[str]) -> ReadText:
        found: set[str] = set()
        title_stems = None if title is None else reader.read(title, found)
        text_stems = None if text is None else reader.read(text, found)
        add_tag_terms(found, tags)
        return join_terms(found), title_stems, text_stems

    return read_in_c


read_in_c = _make_c_reading()

# `read_post_text(title, text, tags)`: a post's stored terms (`monitor.terms.stored_terms`) and
# the stems of its title and of its text (`monitor.stems.stem_text`), reading each chunk once.
# Chosen once, not for every post.
read_post_text = read_in_c or read_in_python
