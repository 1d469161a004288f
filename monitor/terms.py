"""The terms a post is counted under in digest trends: its hashtags and content words.

Decided once, when a post is stored (`posts.terms`), so that a digest comparing a week with the
four before reads words instead of splitting half a million texts each Monday.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain

from monitor.memo import Memo

MIN_WORD_LENGTH = 4
# Distinct whitespace-free chunks remembered before the memory is dropped: a long-running
# service sees an unbounded stream of text, a digest build at most a few million chunks.
CHUNK_MEMORY = 500_000

# Frequent Swedish (and a few English and web) words of four letters or more: they rise and fall
# with the number of posts, not with what the posts are about.
STOP_WORDS = frozenset((
    "about", "after", "alla", "allt", "also", "andra", "annat", "bara", "been", "bland", "både",
    "dagar", "dagen", "denna", "dessa", "dessutom", "detta", "dina", "ditt", "därför", "efter",
    "eftersom", "eller", "enligt", "from", "från", "fått", "före", "genom", "hade", "hans", "have",
    "hela", "heller", "helt", "hennes", "here", "honom", "html", "http", "https", "idag", "igen",
    "igår", "imorgon", "ingen", "inget", "inom", "inte", "just", "kanske", "klicka", "kommer",
    "kunde", "kunna", "lite", "liten", "längre", "mellan", "mera", "mest", "mina", "mindre",
    "mitt", "more", "mycket", "många", "måste", "nästa", "någon", "något", "några", "också",
    "samma", "samt", "sedan", "sina", "sitt", "själv", "skall", "skulle", "stora", "stort",
    "större", "than", "that", "their", "there", "they", "this", "till", "tills", "under", "utan",
    "vara", "varit", "varje", "vars", "vecka", "veckan", "vilka", "vilken", "vilket", "vill",
    "våra", "vårt", "were", "what", "when", "which", "will", "with", "your", "ännu", "även",
    "året", "över",
))  # fmt: skip

_WORD = re.compile(r"[#@]?\w+")


class TermExtractor:
    """The hashtags ('#' + tag) and content words of posts, lower-cased, each once per post.

    Words never span whitespace, so text is cut at whitespace (fast, in C) and each distinct
    chunk ("kommunen.", "#trafik", a link) is split into its terms once and remembered.
    """

    def __init__(self) -> None:
        self._chunks: Memo[str, tuple[str, ...]] = Memo(_chunk_terms, CHUNK_MEMORY)

    def extract(self, title: str | None, text: str | None, tags: Sequence[str]) -> frozenset[str]:
        content = f"{title} {text}" if title and text else title or text or ""
        terms = set(chain.from_iterable(map(self._chunks.__getitem__, set(content.split()))))
        if tags:
            terms.update(tag_term(tag) for tag in tags if tag.strip("# "))
        return frozenset(terms)


def _chunk_terms(chunk: str) -> tuple[str, ...]:
    """The terms in a whitespace-free piece of text."""
    return tuple(t for t in map(_term_of, _WORD.findall(chunk)) if t)


def tag_term(tag: str) -> str:
    """A hashtag as a term: '#' and the tag lower-cased, however the platform wrote it."""
    return "#" + tag.lower().lstrip("#")


def _term_of(token: str) -> str | None:
    """The term a word counts as, or None."""
    # Inline hashtags are in `tags` already; mentions name accounts, not topics.
    if token[0] in "#@" or not token.isalpha():
        return None
    word = token.lower()
    return word if len(word) >= MIN_WORD_LENGTH and word not in STOP_WORDS else None


# Shared by every ingest: its memory of text chunks already split is what makes it cheap.
_INGEST = TermExtractor()


def stored_terms(title: str | None, text: str | None, tags: Sequence[str]) -> str:
    """A post's terms as ingest stores them in `posts.terms`: sorted, space-separated (no term
    holds a space)."""
    return " ".join(sorted(_INGEST.extract(title, text, tags)))
