"""Swedish word stems for full-text search on SQLite. Contains no business logic.

FTS5 has no Swedish stemmer, so SQLite indexes stems that Python computes: the database calls
`stem_text` (registered as the SQL function `omvarld_stems` by monitor.db) from the triggers
that keep the index current, and a query stems its words the same way. PostgreSQL uses its own
Snowball Swedish stemmer, the same algorithm.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterable, Iterator

import Stemmer

from monitor.memo import Memo

# Distinct words remembered before the memory is dropped: words repeat (the thousand commonest
# cover most of any text), but a service that runs for months sees an unbounded vocabulary.
STEM_MEMORY = 200_000

# A word: letters and digits, as FTS5's unicode61 tokenizer sees them (it splits at "_" too),
# so that each stem we hand it stays one token.
_WORD = re.compile(r"[^\W_]+")


# A lower-cased word -> its stem. PyStemmer (C) stems a word in 0.36 µs; the pure-Python
# snowballstemmer takes 9.3 µs.
_STEMS: Memo[str, str] = Memo(Stemmer.Stemmer("swedish").stemWord, STEM_MEMORY)


def words(text: str) -> list[str]:
    """The words of a text, lower-cased, å, ä and ö kept (composed, however they were typed)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


def stem_words(text: str) -> list[str]:
    """The Snowball Swedish stems of a text's words, in order: "Kommunerna beslutade" ->
    ["kommun", "beslut"]."""
    return [_STEMS[word] for word in words(text)]


def stem_chunk(chunk: str) -> str:
    """The stems of a whitespace-free piece of text joined by spaces; "" when it has none."""
    return " ".join(stem_words(chunk))


# A whitespace-free piece of text ("Kommunen," or "#snö") -> its stems joined by spaces. The
# index's triggers stem every post stored: cutting text at whitespace is C work, and most pieces
# of a new post have been seen before.
_CHUNKS: Memo[str, str] = Memo(stem_chunk, STEM_MEMORY)


def stem_text(text: str | None) -> str | None:
    """The stems of a text joined by spaces, what the SQLite index holds; None stays None."""
    if text is None:
        return None
    return stem_chunks(text.split())


def stem_chunks(chunks: Iterable[str]) -> str:
    """`stem_text` of a text already cut at whitespace (`text.split()`), in order."""
    return " ".join(filter(None, map(_CHUNKS.__getitem__, chunks)))


# Stems computed beside the parsing (in a parse worker, monitor.rows), by text: while a batch is
# written, the index's triggers look them up instead of stemming on the database thread. Stems
# are a function of the text alone, so whichever thread finds an entry here finds it right.
_GIVEN: dict[str, str] = {}


@contextlib.contextmanager
def given_stems(pairs: Iterable[tuple[str | None, str | None]]) -> Iterator[None]:
    """Within the block, `stem_stored_text(text)` answers the given (text, stems) pairs from
    memory."""
    _GIVEN.update((text, stems) for text, stems in pairs if text is not None and stems is not None)
    try:
        yield
    finally:
        _GIVEN.clear()


def stem_stored_text(text: str | None) -> str | None:
    """`stem_text`, answered from the given stems where they hold the text (the SQL function
    `omvarld_stems`)."""
    if text is None:
        return None
    known = _GIVEN.get(text)
    return known if known is not None else stem_text(text)
