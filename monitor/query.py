"""The search query's syntax, parsed into plain data: `omvarld posts search`, the web app's
search and `[[alerts]]` rules. Pure, and light to import: validating a config's alert rules
must not load the database layer (monitor/search.py writes a parsed query out for SQLite's
FTS5 and PostgreSQL), or `omvarld collect` pays for it before its parse pool can start.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.stems import words

# Longer queries are refused before they reach a database: PostgreSQL parses a query of
# 20,000 words into a tree deeper than its stack ("stack depth limit exceeded"), and no one
# types a hundred words to find a post.
MAX_QUERY_WORDS = 100
MAX_QUERY_CHARS = 2_000
# `s*` would gather every word that begins with s (a merge over a tenth of the index, for
# every post); three letters are where a start of a word begins to mean something.
MIN_PREFIX_CHARS = 3


class QueryError(ValueError):
    """The search query cannot be searched; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Term:
    """A word, or the words of a quoted phrase in order, lower-cased; with `prefix`, the last
    word is the start of a word (`snö*` finds snöröjning and snöfall)."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """All of `required` (each one of its alternatives), none of `excluded`."""

    required: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]


@dataclass(frozen=True)
class _Token:
    kind: str  # "term" | "or"
    term: Term | None = None
    negated: bool = False


def parse_query(text: str) -> ParsedQuery:
    """Words (all must match), "quoted phrases", OR between two of them, -word or -"phrase"
    to exclude, word* for words that begin so. Case and punctuation do not matter; å, ä and ö
    do.

    Raises:
        QueryError: an unbalanced quote, OR without a term on each side, an exclusion of
            nothing or within OR, a misplaced or too early *, or nothing left to search for.
    """
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query has {len(text):,} characters; at most {MAX_QUERY_CHARS:,} can be searched"
        )
    if text.count('"') % 2:
        raise QueryError(
            f'unbalanced quote in {text!r}: close the phrase with " or remove the lone "'
        )
    tokens = _tokens(text)
    counted = sum(len(t.term.words) for t in tokens if t.term is not None)
    if counted > MAX_QUERY_WORDS:
        raise QueryError(
            f"the query has {counted:,} words; at most {MAX_QUERY_WORDS} can be searched at once"
        )
    required: list[tuple[Term, ...]] = []
    excluded: list[Term] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token.kind == "or":
            raise QueryError(f"OR needs a word or phrase on each side, in {text!r}")
        assert token.term is not None
        if token.negated:
            if position + 1 < len(tokens) and tokens[position + 1].kind == "or":
                raise QueryError(f"an excluded word cannot be part of OR, in {text!r}")
            excluded.append(token.term)
            position += 1
            continue
        alternatives = [token.term]
        position += 1
        while position < len(tokens) and tokens[position].kind == "or":
            following = tokens[position + 1] if position + 1 < len(tokens) else None
            if following is None or following.kind == "or":
                raise QueryError(f"OR needs a word or phrase on each side, in {text!r}")
            if following.negated:
                raise QueryError(f"an excluded word cannot be part of OR, in {text!r}")
            assert following.term is not None
            alternatives.append(following.term)
            position += 2
        required.append(tuple(alternatives))
    if not required:
        raise QueryError(
            f"nothing to search for in {text!r}: give at least one word that is not excluded"
        )
    return ParsedQuery(tuple(required), tuple(excluded))


def _tokens(text: str) -> list[_Token]:
    """Terms and ORs; pieces without a letter or digit ("&", "–") are dropped."""
    lone_minus = QueryError(f"'-' must be followed by a word or phrase, in {text!r}")
    tokens: list[_Token] = []
    minus_before_phrase = False
    pieces = text.split('"')
    # Between quotes (odd pieces): phrases. Outside (even pieces): words and operators.
    for index, piece in enumerate(pieces):
        if index % 2:
            phrase, prefix = _split_prefix(piece, text)
            found = tuple(words(phrase))
            if found:
                tokens.append(_Token("term", Term(found, prefix), minus_before_phrase))
            elif minus_before_phrase:
                raise lone_minus
            minus_before_phrase = False
            continue
        chunks = piece.split()
        for position, chunk in enumerate(chunks):
            if chunk == "OR":
                tokens.append(_Token("or"))
                continue
            if chunk == "-":
                # Only -"a phrase" (the dash touching the quote) makes a lone dash an operator.
                touching = position == len(chunks) - 1 and piece.endswith("-")
                if not touching or index + 1 == len(pieces):
                    raise lone_minus
                minus_before_phrase = True
                continue
            word, prefix = _split_prefix(chunk, text)
            found = tuple(words(word))
            if found:
                tokens.append(_Token("term", Term(found, prefix), chunk.startswith("-")))
            elif chunk.startswith("-"):
                raise lone_minus
    return tokens


def _split_prefix(piece: str, text: str) -> tuple[str, bool]:
    """A word or phrase without its prefix *, and whether it had one: one *, right after the
    last word's letters (`snö*`, `"ny sko*"`; punctuation may follow, as in `snö*,`)."""
    if "*" not in piece:
        return piece, False
    before, _, after = piece.partition("*")
    if "*" in after or not words(before[-1:]) or words(after):
        raise QueryError(
            f"misplaced * in {piece.strip()!r}: put one * right after the start of a word,"
            " as in snö* for snöröjning and snöfall"
        )
    start = words(before)[-1]
    if len(start) < MIN_PREFIX_CHARS:
        raise QueryError(
            f"{start}* is too short a start of a word: give at least {MIN_PREFIX_CHARS} letters"
            " before *, as in snö*"
        )
    return before + after, True
