"""The terms a post is counted under in digest trends: its hashtags and content words, and the
two-word phrases of its headline.

Decided once, when a post is stored (`posts.terms`, `posts.phrases`), so that a digest comparing
a week with the four before reads words instead of splitting half a million texts each Monday.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain

import stopwordsiso

from monitor.memo import Memo

MIN_WORD_LENGTH = 4
# A phrase's words may be short ("ny skola"): two words together say more than either.
MIN_PHRASE_WORD_LENGTH = 2
# Joins a phrase's words in `posts.phrases`, which are space-separated: never part of a stored
# word (`_term_of` refuses words with it), and shown as a space.
PHRASE_JOINER = "_"
# Distinct whitespace-free chunks remembered before the memory is dropped: a long-running
# service sees an unbounded stream of text, a digest build at most a few million chunks.
CHUNK_MEMORY = 500_000

# Function words rise and fall with the number of posts, not with what the posts are about
# ("klockan: 3 gånger", issue 13). A maintained list (stopwords-iso, Swedish and English) rather
# than one of our own; hashtags are kept whatever they say, since someone chose them.
STOP_WORDS: frozenset[str] = frozenset(stopwordsiso.stopwords(["sv", "en"]))

# A word may join parts with hyphens ("covid-19", "e-tjänst"): one term, not two halves.
_WORD = re.compile(r"[#@]?\w+(?:-\w+)*")
# Words and the punctuation between them: a phrase never spans a comma or a full stop.
_TOKEN = re.compile(r"[#@]?\w+(?:-\w+)*|[^\w\s]")
# Where a text's first sentence ends: a post without a title is headed by it.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


class TermExtractor:
    """The hashtags ('#' + tag) and content words of posts, lower-cased, each once per post.

    Words never span whitespace, so text is cut at whitespace (fast, in C) and each distinct
    chunk ("kommunen.", "#trafik", a link) is split into its terms once and remembered.
    """

    def __init__(self) -> None:
        self._chunks: Memo[str, tuple[str, ...]] = Memo(chunk_terms, CHUNK_MEMORY)

    def extract(self, title: str | None, text: str | None, tags: Sequence[str]) -> frozenset[str]:
        content = f"{title} {text}" if title and text else title or text or ""
        return self.extract_chunks(content.split(), tags)

    def extract_chunks(self, chunks: Iterable[str], tags: Sequence[str]) -> frozenset[str]:
        """`extract` of a title and text already cut at whitespace (`str.split`)."""
        terms = set(chain.from_iterable(map(self._chunks.__getitem__, set(chunks))))
        add_tag_terms(terms, tags)
        return frozenset(terms)


def add_tag_terms(terms: set[str], tags: Sequence[str]) -> None:
    """Add a post's hashtags to its content words, each as `tag_term` writes it."""
    if tags:
        terms.update(tag_term(tag) for tag in tags if tag.strip("# "))


def chunk_terms(chunk: str) -> tuple[str, ...]:
    """The terms in a whitespace-free piece of text; a link has none (its host is no topic)."""
    if "://" in chunk or chunk.startswith("www."):
        return ()
    return tuple(t for t in map(_term_of, _WORD.findall(chunk)) if t)


def tag_term(tag: str) -> str:
    """A hashtag as a term: '#' and the tag lower-cased, however the platform wrote it."""
    return "#" + tag.lower().lstrip("#")


def _term_of(token: str) -> str | None:
    """The term a word counts as, or None."""
    # Inline hashtags are in `tags` already; mentions name accounts, not topics.
    if token[0] in "#@" or "_" in token:
        return None
    word = token.lower()
    return word if is_trend_word(word) else None


def is_trend_word(word: str, min_length: int = MIN_WORD_LENGTH) -> bool:
    """Whether a lower-cased word can be a trend: long enough, not a stop word, and made of
    letters, or of a word of letters and hyphenated parts ("covid-19"), never a number."""
    first, _, rest = word.partition("-")
    return (
        len(word) >= min_length
        and word not in STOP_WORDS
        and first.isalpha()
        and (not rest or rest.replace("-", "").isalnum())
    )


def is_trend_term(term: str) -> bool:
    """Whether a stored term can trend: any hashtag, and words `is_trend_word` accepts (posts
    stored before the stop-word list changed may hold words it now refuses)."""
    return term.startswith("#") or is_trend_word(term)


def find_phrases(title: str | None, text: str | None) -> frozenset[str]:
    """The two-word phrases of a post's headline (its title, else its text's first sentence),
    each once, words joined by `PHRASE_JOINER`: two neighbouring words, neither a stop word
    nor a number, with no punctuation, link or hashtag between them ("Ny skola invigs" has
    "ny_skola" and "skola_invigs"; "skolan, biblioteket" none).

    Only the headline: it names what a post is about, and the rest of a long text would
    multiply the phrases a digest counts (issue 13: trends must stay cheap).
    """
    headline = title or (_SENTENCE_END.split(text, maxsplit=1)[0] if text else "")
    return frozenset(_neighbours(headline)) if headline else frozenset()


def _neighbours(text: str) -> Iterator[str]:
    previous = None
    for chunk in text.split():
        if "://" in chunk or chunk.startswith("www."):
            previous = None
            continue
        for token in _TOKEN.findall(chunk):
            word = token.lower()
            if is_trend_word(word, MIN_PHRASE_WORD_LENGTH):
                if previous is not None:
                    yield previous + PHRASE_JOINER + word
                previous = word
            else:
                previous = None


def phrase_text(phrase: str) -> str:
    """A stored phrase as readers write it: "ny_skola" -> "ny skola"."""
    return phrase.replace(PHRASE_JOINER, " ")


# Shared by every ingest: its memory of text chunks already split is what makes it cheap.
_INGEST = TermExtractor()


def stored_terms(title: str | None, text: str | None, tags: Sequence[str]) -> str:
    """A post's terms as ingest stores them in `posts.terms` (`join_terms`)."""
    return join_terms(_INGEST.extract(title, text, tags))


def stored_terms_of_chunks(chunks: Iterable[str], tags: Sequence[str]) -> str:
    """`stored_terms` of a post whose title and text are already cut at whitespace (the
    stems are made from the same pieces: cutting a text is half of what its terms cost)."""
    return join_terms(_INGEST.extract_chunks(chunks, tags))


def stored_phrases(title: str | None, text: str | None) -> str:
    """A post's phrases as ingest stores them in `posts.phrases` (`join_terms`)."""
    return join_terms(find_phrases(title, text))


def join_terms(terms: Iterable[str]) -> str:
    """Terms or phrases as `posts.terms` and `posts.phrases` hold them: sorted, separated by
    spaces (none holds a space)."""
    return " ".join(sorted(terms))
