"""Full-text search over stored posts: `omvarld posts search`.

A query is parsed once, here, into plain data (`ParsedQuery`), then written out for the
database at hand: an FTS5 MATCH expression of Snowball Swedish stems on SQLite, a
websearch_to_tsquery('swedish', …) text on PostgreSQL. User text never reaches either syntax
unparsed: every word goes out quoted, so FTS5 and PostgreSQL see only our operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.export import POST_COLUMNS, ExportColumn
from monitor.filters import PostFilter, latest_engagement, where_posts
from monitor.models import SEARCH_COLUMN, SEARCH_TABLE, posts, search_facets, sources
from monitor.stems import stem_words, words
from monitor.text import strip_control

# bm25 weight of a title match against a body match. bm25 caps what repeating a word earns at
# about twice one occurrence, so at ten a title match ranks above any body-only match.
TITLE_WEIGHT = 10.0
# ts_rank weights for {D, C, B, A}: the text is indexed as B, the title as A (migration 0007).
PG_RANK_WEIGHTS = "'{0, 0, 0.1, 1.0}'::float4[]"
EXCERPT_CHARS = 200  # a few lines in a terminal, a cell in a spreadsheet
# Longer queries are refused before they reach a database: PostgreSQL parses a query of
# 20,000 words into a tree deeper than its stack ("stack depth limit exceeded"), and no one
# types a hundred words to find a post.
MAX_QUERY_WORDS = 100
MAX_QUERY_CHARS = 2_000


class QueryError(ValueError):
    """The search query cannot be searched; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Term:
    """A word, or the words of a quoted phrase in order, lower-cased."""

    words: tuple[str, ...]


@dataclass(frozen=True)
class ParsedQuery:
    """All of `required` (each one of its alternatives), none of `excluded`."""

    required: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]


@dataclass(frozen=True)
class SearchHit:
    id: int
    source_key: str
    organisation: str
    platform: str
    kind: str
    published_at: datetime
    title: str | None
    excerpt: str  # plain text around the first match, or the start of the post
    url: str | None
    engagement: int | None  # at the latest count; None when never counted
    rank: float  # higher is better; comparable within one search only


# `posts search --format csv`'s columns, SearchHit's fields, for the export's CSV writer.
_EXPORTED = {column.name: column for column in POST_COLUMNS}
HIT_COLUMNS: tuple[ExportColumn, ...] = (
    *(_EXPORTED[name] for name in ("id", "source_key", "organisation", "platform", "kind")),
    *(_EXPORTED[name] for name in ("published_at", "title")),
    ExportColumn("excerpt", "string", "plain text around the first match"),
    *(_EXPORTED[name] for name in ("url", "engagement")),
    ExportColumn("rank", "number", "higher is better; comparable within one search only"),
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "term" | "or"
    term: Term | None = None
    negated: bool = False


def parse_query(text: str) -> ParsedQuery:
    """Words (all must match), "quoted phrases", OR between two of them, -word or -"phrase"
    to exclude. Case and punctuation do not matter; å, ä and ö do.

    Raises:
        QueryError: an unbalanced quote, OR without a term on each side, an exclusion of
            nothing or within OR, or nothing left to search for.
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
            found = tuple(words(piece))
            if found:
                tokens.append(_Token("term", Term(found), minus_before_phrase))
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
            found = tuple(words(chunk))
            if found:
                tokens.append(_Token("term", Term(found), chunk.startswith("-")))
            elif chunk.startswith("-"):
                raise lone_minus
    return tokens


def to_fts5(query: ParsedQuery) -> str:
    """The FTS5 MATCH expression: stems, each term a quoted phrase."""

    def phrase(term: Term) -> str:
        # Stems are letters and digits only, so nothing inside the quotes needs escaping.
        return '"' + " ".join(stem_words(" ".join(term.words))) + '"'

    def group(terms: tuple[Term, ...]) -> str:
        return "(" + " OR ".join(map(phrase, terms)) + ")"

    expression = "(" + " AND ".join(map(group, query.required)) + ")"
    if query.excluded:
        expression += " NOT " + group(query.excluded)
    return expression


def to_websearch(query: ParsedQuery) -> str:
    """The text for PostgreSQL's websearch_to_tsquery: every term quoted, our operators only."""

    def phrase(term: Term) -> str:
        return '"' + " ".join(term.words) + '"'

    parts = [" or ".join(map(phrase, alternatives)) for alternatives in query.required]
    parts += ["-" + phrase(term) for term in query.excluded]
    return " ".join(parts)


def search_posts(engine: Engine, query: str, chosen: PostFilter, limit: int) -> list[SearchHit]:
    """The posts matching `query` and the filter, best first: title matches above body-only
    ones, then newer before older.

    Raises:
        QueryError: the query cannot be searched (see `parse_query`).
    """
    parsed = parse_query(query)
    if engine.dialect.name == "postgresql":
        score, condition = _postgresql_match(parsed)
        rows: Any = posts
        searched = posts.join(sources, sources.c.id == posts.c.source_id)
    else:
        score, condition = _sqlite_match(parsed)
        # Matches are filtered in the narrow facets table (migration 0009), not the posts rows.
        rows = search_facets
        index = sa.table(SEARCH_TABLE, sa.column("rowid", sa.Integer))
        searched = index.join(search_facets, search_facets.c.id == index.c.rowid).join(
            sources, sources.c.id == search_facets.c.source_id
        )
    ranked = (
        sa.select(rows.c.id, score.label("rank"))
        .select_from(searched)
        .where(condition, *where_posts(chosen, rows=rows))
        .order_by(sa.desc("rank"), rows.c.published_at.desc(), rows.c.id.desc())
        .limit(limit)
        .subquery("ranked")
    )
    # Details for the few posts shown only: the latest counts are one index step each.
    statement = (
        sa.select(
            posts.c.id,
            sources.c.key,
            sources.c.organisation,
            sources.c.platform,
            posts.c.kind,
            posts.c.published_at,
            posts.c.title,
            posts.c.text,
            posts.c.url,
            latest_engagement().label("engagement"),
            ranked.c.rank,
        )
        .select_from(ranked.join(posts, posts.c.id == ranked.c.id).join(sources))
        .order_by(ranked.c.rank.desc(), posts.c.published_at.desc(), posts.c.id.desc())
    )
    with engine.connect() as connection:
        rows = connection.execute(statement).mappings().all()
    stems = {stem for alternatives in parsed.required for t in alternatives for stem in _stems(t)}
    return [_hit(row, stems) for row in rows]


def _sqlite_match(parsed: ParsedQuery) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[bool]]:
    index: sa.ColumnClause[Any] = sa.literal_column(SEARCH_TABLE)
    # bm25 is lower-is-better and negative; negated, higher is better as on PostgreSQL.
    score = -sa.func.bm25(index, TITLE_WEIGHT, 1.0)
    return score, index.op("MATCH")(to_fts5(parsed))


def _postgresql_match(
    parsed: ParsedQuery,
) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[bool]]:
    vector: sa.ColumnClause[Any] = sa.literal_column(f"posts.{SEARCH_COLUMN}")
    tsquery = sa.func.websearch_to_tsquery(
        sa.literal_column("'swedish'::regconfig"), to_websearch(parsed)
    )
    score = sa.func.ts_rank(sa.literal_column(PG_RANK_WEIGHTS), vector, tsquery)
    return score, vector.op("@@")(tsquery)


def _stems(term: Term) -> list[str]:
    return stem_words(" ".join(term.words))


def _hit(row: sa.RowMapping, stems: set[str]) -> SearchHit:
    return SearchHit(
        id=row["id"],
        source_key=row["key"],
        organisation=row["organisation"],
        platform=row["platform"],
        kind=row["kind"],
        published_at=row["published_at"],
        # Shown in a terminal: without the control characters of posts stored before ingest
        # removed them.
        title=row["title"] and strip_control(row["title"]),
        excerpt=strip_control(make_excerpt(row["text"] or row["title"] or "", stems)),
        url=row["url"] and strip_control(row["url"]),
        engagement=None if row["engagement"] is None else int(row["engagement"]),
        rank=float(row["rank"]),
    )


def make_excerpt(text: str, stems: set[str], width: int = EXCERPT_CHARS) -> str:
    """About `width` characters of `text` on one line, around the first word whose stem is
    searched for (or from the start), with "…" where it was cut."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    start = 0
    offset = 0
    for chunk in flat.split(" "):
        if any(stem in stems for stem in stem_words(chunk)):
            start = max(0, offset - width // 4)  # a little of what leads up to it
            break
        offset += len(chunk) + 1
    start = min(start, len(flat) - width)
    if start > 0:  # begin at a word, not inside one
        start = flat.find(" ", start) + 1 or start
    end = start + width
    if end < len(flat):
        end = flat.rfind(" ", start, end) if flat.rfind(" ", start, end) > start else end
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
