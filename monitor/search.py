"""Full-text search over stored posts: `omvarld posts search`.

A query is parsed once, here, into plain data (`ParsedQuery`), then written out for the
database at hand: an FTS5 MATCH expression of Snowball Swedish stems on SQLite, a
websearch_to_tsquery('swedish', …) text on PostgreSQL. User text never reaches either syntax
unparsed: every word goes out quoted, so FTS5 and PostgreSQL see only our operators.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from monitor.export import POST_COLUMNS, ExportColumn
from monitor.filters import PostFilter, where_posts
from monitor.models import SEARCH_COLUMN, SEARCH_TABLE, posts, search_facets, sources
from monitor.query import MIN_PREFIX_CHARS, ParsedQuery, QueryError, Term, parse_query
from monitor.stems import stem_words
from monitor.text import strip_control

# bm25 weight of a title match against a body match. bm25 caps what repeating a word earns at
# about twice one occurrence, so at ten a title match ranks above any body-only match.
TITLE_WEIGHT = 10.0
# ts_rank weights for {D, C, B, A}: the text is indexed as B, the title as A (migration 0007).
PG_RANK_WEIGHTS = "'{0, 0, 0.1, 1.0}'::float4[]"
# SQLite's newest-first plans (see _sqlite_page): under this many matches, sorting them all
# is cheaper than any walk; a check of one post on its stored stems costs about this many
# times the gathering of one match into a set (a few µs against 0.3 µs at a million posts; a
# MATCH per post was 30–75 µs, a hundred times, and this was 300).
FEW_MATCHES = 5_000
WALK_CHECK_COST = 20
# A walk by date goes back through at most this many times the posts that the page needs
# at the share of posts matching (a word is rarer in short posts: `kommun` with --platform x
# needed twice what x's share of posts predicts), and never through more posts than there are
# matches to sort instead (walking a post and sorting a match cost about the same).
WALK_WINDOW = 30
# Best first ranks this many matches, the ones stored last (the highest ids: what was collected
# most recently), not every match: ranking reads each ranked post's indexed words, and a word in
# half of a million posts took 0.8 s on SQLite and seconds on PostgreSQL to rank whole; the
# thousand stored last take 2-30 ms. A search with fewer matches is ranked whole.
RELEVANCE_POOL = 1_000
EXCERPT_CHARS = 200  # a few lines in a terminal, a cell in a spreadsheet


Sort = Literal["newest", "relevance"]
SORTS: tuple[Sort, ...] = (
    "newest",
    "relevance",
)  # the first, as feed readers show posts, is the default


@dataclass(frozen=True)
class SearchHit:
    id: int
    source_key: str
    organisation: str
    platform: str
    channel: str  # the platform readers know it by (`sources.channel`)
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
    *(
        _EXPORTED[name]
        for name in ("id", "source_key", "organisation", "platform", "channel", "kind")
    ),
    *(_EXPORTED[name] for name in ("published_at", "title")),
    ExportColumn("excerpt", "string", "plain text around the first match"),
    *(_EXPORTED[name] for name in ("url", "engagement")),
    ExportColumn("rank", "number", "higher is better; comparable within one search only"),
)


def to_fts5(query: ParsedQuery) -> str:
    """The FTS5 MATCH expression: stems, each term a quoted phrase, `"snö"*` for a prefix."""

    def phrase(term: Term) -> str:
        # Stems are letters and digits only, so nothing inside the quotes needs escaping.
        return '"' + " ".join(_stems(term)) + '"' + ("*" if term.prefix else "")

    def group(terms: tuple[Term, ...]) -> str:
        return "(" + " OR ".join(map(phrase, terms)) + ")"

    expression = "(" + " AND ".join(map(group, query.required)) + ")"
    if query.excluded:
        expression += " NOT " + group(query.excluded)
    return expression


def to_tsquery(query: ParsedQuery) -> sa.ColumnElement[Any]:
    """PostgreSQL's tsquery, built with functions so that user text is only ever a quoted
    operand: all of the required groups, any term within a group, none of the excluded."""

    def term(found: Term) -> sa.ColumnElement[Any]:
        whole = found.words[:-1] if found.prefix else found.words
        built = (
            sa.func.to_tsquery(_SWEDISH, " <-> ".join(map(_tsquery_operand, whole)))
            if whole
            else None
        )
        if not found.prefix:
            assert built is not None
            return built
        # PostgreSQL drops a stop word even as a prefix (to_tsquery('swedish', 'för:*') is
        # empty, and förskolan goes unfound), so the start of a word is stemmed here, with the
        # same Snowball algorithm, and goes through 'simple', which has no stop words.
        start = sa.func.to_tsquery(_SIMPLE, _tsquery_operand(_stems(found)[-1]) + ":*")
        return start if built is None else sa.func.tsquery_phrase(built, start)

    def either(terms: tuple[Term, ...]) -> sa.ColumnElement[Any]:
        return reduce(sa.func.tsquery_or, map(term, terms))

    built = reduce(sa.func.tsquery_and, map(either, query.required))
    if query.excluded:
        built = sa.func.tsquery_and(built, sa.func.tsquery_not(either(query.excluded)))
    return built


_SWEDISH: sa.ColumnClause[Any] = sa.literal_column("'swedish'::regconfig")
_SIMPLE: sa.ColumnClause[Any] = sa.literal_column("'simple'::regconfig")


def _tsquery_operand(word: str) -> str:
    """A word quoted for to_tsquery: inside quotes, its operators are plain text."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def format_query(query: ParsedQuery) -> str:
    """The query as a person would type it; parse_query reads it back as the same query."""

    def shown(found: Term) -> str:
        text = " ".join(found.words) + ("*" if found.prefix else "")
        return text if len(found.words) == 1 else f'"{text}"'

    parts = [" OR ".join(map(shown, alternatives)) for alternatives in query.required]
    parts += ["-" + shown(found) for found in query.excluded]
    return " ".join(parts)


def suggest_prefix(query: str) -> str | None:
    """What to try when `query` found nothing: its words as starts of words (`snö` -> `snö*`,
    which finds snöröjning). None when it has no such word or cannot be searched."""
    try:
        parsed = parse_query(query)
    except QueryError:
        return None
    widened = tuple(
        tuple(
            Term(found.words, prefix=True)
            if len(found.words) == 1 and len(found.words[0]) >= MIN_PREFIX_CHARS
            else found
            for found in alternatives
        )
        for alternatives in parsed.required
    )
    if widened == parsed.required:
        return None
    return format_query(ParsedQuery(widened, parsed.excluded))


def search_posts(
    engine: Engine,
    query: str,
    chosen: PostFilter,
    limit: int,
    *,
    sort: Sort = "newest",
    offset: int = 0,
) -> list[SearchHit]:
    """The posts matching `query` and the filter, from the `offset`-th on: newest first
    (`sort="newest"`, ties by id), or best first (`"relevance"`: title matches above body-only
    ones, then newer before older) among the RELEVANCE_POOL matches stored last, and nothing
    past those.

    Raises:
        QueryError: the query cannot be searched (see `parse_query`).
    """
    if sort not in SORTS:
        raise ValueError(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
    parsed = parse_query(query)
    with engine.connect() as connection:
        # The page first, on its own: joined to the details below, SQLite planned the two
        # as one and gave up the walk's order (4 s instead of 3 ms for a word in most posts).
        if engine.dialect.name == "postgresql":
            paged = _postgresql_page(parsed, chosen, sort).limit(limit).offset(offset)
            ranks = {row[0]: row[1] for row in connection.execute(paged)}
        else:
            ranks = dict(_sqlite_page(connection, parsed, chosen, sort, limit, offset))
        # Details for the few posts shown only.
        statement = select_hits().where(posts.c.id.in_(list(ranks)))
        details = {row["id"]: row for row in connection.execute(statement).mappings()}
    stems = {stem for alternatives in parsed.required for t in alternatives for stem in _stems(t)}
    return [make_hit(details[post_id], rank, stems) for post_id, rank in ranks.items()]


def search_condition(dialect: str, query: str) -> sa.ColumnElement[bool]:
    """`posts` rows that match `query`, as a condition for another query over posts: the web
    app's download of a search is the export's posts query with this added.

    Raises:
        QueryError: the query cannot be searched (see `parse_query`).
    """
    parsed = parse_query(query)
    if dialect == "postgresql":
        return sa.literal_column(f"posts.{SEARCH_COLUMN}").op("@@")(to_tsquery(parsed))
    searched = sa.table(SEARCH_TABLE, sa.column("rowid", sa.Integer))
    match = sa.literal_column(SEARCH_TABLE).op("MATCH")(to_fts5(parsed))
    return posts.c.id.in_(sa.select(searched.c.rowid).where(match))


def _postgresql_page(parsed: ParsedQuery, chosen: PostFilter, sort: Sort) -> sa.Select[Any]:
    vector: sa.ColumnClause[Any] = sa.literal_column(f"posts.{SEARCH_COLUMN}")
    tsquery = to_tsquery(parsed)
    matched = (
        sa.select(posts.c.id)
        .select_from(posts.join(sources, sources.c.id == posts.c.source_id))
        .where(vector.op("@@")(tsquery), *where_posts(chosen))
    )
    if sort == "newest":
        # The tsquery is a filter on a walk of ix_posts_published_at, newest first, that
        # stops at the page (a common word) or a sort of the few matches (a rare one): the
        # planner picks by its statistics of the lexemes. Nothing is ranked.
        return matched.add_columns(sa.literal(0.0).label("rank")).order_by(
            posts.c.published_at.desc(), posts.c.id.desc()
        )
    # The matches stored last, found by walking the primary key back (a common word) or by
    # sorting the few (a rare one), then ranked.
    pool = (
        matched.add_columns(posts.c.published_at, vector.label("vector"))
        .order_by(posts.c.id.desc())
        .limit(RELEVANCE_POOL)
        .subquery("pool")
    )
    score = sa.func.ts_rank(sa.literal_column(PG_RANK_WEIGHTS), pool.c.vector, tsquery)
    return sa.select(pool.c.id, score.label("rank")).order_by(
        sa.desc("rank"), pool.c.published_at.desc(), pool.c.id.desc()
    )


def _sqlite_page(
    connection: sa.Connection,
    parsed: ParsedQuery,
    chosen: PostFilter,
    sort: Sort,
    limit: int,
    offset: int,
) -> list[tuple[int, float]]:
    """The page's (post id, rank), in order. Newest first, the plan depends on how many posts
    match, counted (up to a point) before anything else is read."""
    index: sa.ColumnClause[Any] = sa.literal_column(SEARCH_TABLE)
    expression = to_fts5(parsed)
    match = index.op("MATCH")(expression)
    searched = sa.table(SEARCH_TABLE, sa.column("rowid", sa.Integer))
    filtered = where_posts(chosen, rows=search_facets)

    def page(statement: sa.Select[Any]) -> list[tuple[int, float]]:
        return [
            (row[0], row[1]) for row in connection.execute(statement.limit(limit).offset(offset))
        ]

    if sort == "relevance":
        # bm25 is lower-is-better and negative; negated, higher is better as on PostgreSQL.
        # FTS5 hands out its matches by rowid, so the ones stored last come first and the
        # pool ends the index's walk; bm25 is computed for those only.
        score = -sa.func.bm25(index, TITLE_WEIGHT, 1.0)
        pool = (
            _sqlite_matches(searched, match, score)
            .add_columns(search_facets.c.published_at)
            .where(*filtered)
            .order_by(searched.c.rowid.desc())
            .limit(RELEVANCE_POOL)
            .subquery("pool")
        )
        ranked = sa.select(pool.c.id, pool.c.rank).order_by(
            pool.c.rank.desc(), pool.c.published_at.desc(), pool.c.id.desc()
        )
        return page(ranked)
    # Every match sorted: a few milliseconds for a rare word, and the way out when a walk
    # found less than the page.
    every = (
        _sqlite_matches(searched, match, sa.literal(0.0))
        .where(*filtered)
        .order_by(search_facets.c.published_at.desc(), search_facets.c.id.desc())
    )
    needed = limit + offset
    posts_count = connection.execute(sa.select(sa.func.max(searched.c.rowid))).scalar() or 0
    # Gathering the matches into a set costs ~0.3 µs a match, once; checking a post on its
    # stems costs ~20 times that, for each post walked past the filters (needed × posts /
    # matches of them): past this many matches, checking wins (20,000 of a million for 20).
    many = int(math.sqrt(WALK_CHECK_COST * needed * posts_count))
    counted = connection.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(searched.c.rowid).where(match).limit(many).subquery()
        )
    ).scalar_one()
    if counted < FEW_MATCHES:
        return page(every)
    # The newest posts from ix_posts_published_at, each looked up in the narrow facets table
    # and its source; CROSS JOIN keeps that order (SQLite's planner would start from the
    # matches and sort them all, the cost this walk is there to avoid).
    walked: sa.FromClause = _WalkNewest(
        _WalkNewest(posts, search_facets, search_facets.c.id == posts.c.id),
        sources,
        sources.c.id == search_facets.c.source_id,
    )
    conditions = [*_published_between(posts, chosen), *filtered]
    if counted >= many:
        # So many match that a post past the filters is almost surely a hit: each post's
        # stored stems are read by its id and the query checked on them, last, and the walk
        # stops at the page. (A MATCH per post cost 30–75 µs: FTS5 parses the query and seeks
        # every segment of the index each time; the stems are one row away.)
        stored = STORED_STEMS
        walked = _WalkNewest(walked, stored, stored.c.id == search_facets.c.id)
        conditions.append(_stems_contain(parsed, stored.c.c0, stored.c.c1))
    else:
        # The matches gathered once into a set that each post walked is checked against. A
        # start of a word must go this way: FTS5 gathers every word that begins so on each
        # look-up. The walk goes only as far back as pays: past the newest `window` posts,
        # a narrow filter (one source) makes sorting every match cheaper.
        conditions.append(search_facets.c.id.in_(sa.select(searched.c.rowid).where(match)))
        window = min(WALK_WINDOW * needed * posts_count // counted, counted)
        oldest = connection.execute(
            sa.select(posts.c.published_at)
            .where(*_published_between(posts, chosen))
            .order_by(posts.c.published_at.desc(), posts.c.id.desc())
            .offset(window)
            .limit(1)
        ).scalar()
        if oldest is not None:
            conditions.append(posts.c.published_at >= oldest)
    walk = (
        sa.select(posts.c.id, sa.literal(0.0))
        .select_from(walked)
        .where(*conditions)
        .order_by(posts.c.published_at.desc(), posts.c.id.desc())
    )
    # A full page from the walk is exact: every post newer than its last was walked.
    found = page(walk)
    return found if len(found) == limit or counted >= many else page(every)


# FTS5's own copy of what the index holds (migration 0007): per post, the title's and the
# text's stems, space-separated, in order.
STORED_STEMS = sa.table(
    f"{SEARCH_TABLE}_content",
    sa.column("id", sa.Integer),
    sa.column("c0", sa.Text),  # title
    sa.column("c1", sa.Text),  # body
)


def _stems_contain(
    parsed: ParsedQuery, title: sa.ColumnElement[Any], body: sa.ColumnElement[Any]
) -> sa.ColumnElement[bool]:
    """The query checked on one post's stored stems, as FTS5's MATCH decides it: a term is a
    run of whole stems (a prefix: the last one's start) within the title or within the body.
    The stems are letters and digits separated by single spaces, so a term bounded by spaces
    is exactly a run of tokens."""
    columns = [" " + sa.func.coalesce(column, "") + " " for column in (title, body)]

    def found(term: Term) -> sa.ColumnElement[bool]:
        needle = " " + " ".join(_stems(term)) + ("" if term.prefix else " ")
        return sa.or_(*(sa.func.instr(column, needle) > 0 for column in columns))

    required = [sa.or_(*map(found, alternatives)) for alternatives in parsed.required]
    excluded = [sa.not_(found(term)) for term in parsed.excluded]
    return sa.and_(*required, *excluded)


def _sqlite_matches(
    searched: sa.TableClause, match: sa.ColumnElement[bool], rank: sa.ColumnElement[Any]
) -> sa.Select[Any]:
    """The matching posts' ids and `rank`, filtered in the narrow facets table (migration
    0009)."""
    return (
        sa.select(search_facets.c.id, rank.label("rank"))
        .select_from(
            searched.join(search_facets, search_facets.c.id == searched.c.rowid).join(
                sources, sources.c.id == search_facets.c.source_id
            )
        )
        .where(match)
    )


class _WalkNewest(sa.sql.expression.Join):
    """A join SQLite may not reorder (CROSS JOIN), walking posts by ix_posts_published_at."""

    inherit_cache = True


@compiles(_WalkNewest, "sqlite")
def _compile_walk_newest(element: _WalkNewest, compiler: SQLCompiler, **kw: Any) -> str:
    assert element.onclause is not None
    left = compiler.process(element.left, **kw)
    if element.left is posts:
        left += " INDEXED BY ix_posts_published_at"
    on = compiler.process(element.onclause, **{**kw, "asfrom": False})
    return f"{left} CROSS JOIN {compiler.process(element.right, **kw)} ON {on}"


def _published_between(rows: sa.FromClause, chosen: PostFilter) -> list[sa.ColumnElement[bool]]:
    """The filter's dates on `rows`: on the index walked, where the walk starts and stops."""
    between = []
    if chosen.since is not None:
        between.append(rows.c.published_at >= chosen.since)
    if chosen.until is not None:
        between.append(rows.c.published_at < chosen.until)
    return between


def _stems(term: Term) -> list[str]:
    return stem_words(" ".join(term.words))


def select_hits() -> sa.Select[Any]:
    """The columns `make_hit` reads, from posts joined to their sources: add the conditions."""
    return sa.select(
        posts.c.id,
        sources.c.key,
        sources.c.organisation,
        sources.c.platform,
        sources.c.channel,
        posts.c.kind,
        posts.c.published_at,
        posts.c.title,
        posts.c.text,
        posts.c.url,
        posts.c.engagement,
    ).select_from(posts.join(sources, sources.c.id == posts.c.source_id))


def make_hit(
    row: sa.RowMapping, rank: float = 0.0, stems: frozenset[str] | set[str] = frozenset()
) -> SearchHit:
    """A result from a row of posts joined to sources (the source's key as `key`): the web
    app's lists of posts are shaped by it too."""
    return SearchHit(
        id=row["id"],
        source_key=row["key"],
        organisation=row["organisation"],
        platform=row["platform"],
        channel=row["channel"],
        kind=row["kind"],
        published_at=row["published_at"],
        # Shown in a terminal: without the control characters of posts stored before ingest
        # removed them.
        title=row["title"] and strip_control(row["title"]),
        excerpt=strip_control(make_excerpt(row["text"] or row["title"] or "", stems)),
        url=row["url"] and strip_control(row["url"]),
        engagement=None if row["engagement"] is None else int(row["engagement"]),
        rank=float(rank),
    )


def make_excerpt(text: str, stems: AbstractSet[str], width: int = EXCERPT_CHARS) -> str:
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
