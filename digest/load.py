"""Loading a week for the digests from the database: a handful of set queries, once.

The week's posts with their latest counts as of the week's end, the four weeks before summed per
source, each source's first and newest post, and the week's collection runs, read into `WeekData`
for `digest.compose` to decide every recipient's digest from. The I/O edge: the only part of the
digest's building that reads the database, the clock, or starts a process.
"""

from __future__ import annotations

import gc
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.compare import (
    CHART_WEEKS,
    GROWTH_WEEKS,
    ActivityRow,
    FollowerRow,
    compare_organisations,
    index_activity,
)
from digest.compose import (
    BASELINE_WEEKS,
    PhraseTexts,
    PostRow,
    RunSummary,
    SourceHistory,
    SourceInfo,
    SourceSpan,
    TermTotals,
    WeekData,
    add_week,
    compose_digest,
    count_phrases,
    domain_of,
    engagement_of,
    find_rising_phrases,
    is_within,
    list_activity,
    new_history,
    select_followed,
)
from digest.model import Comparison, DigestData, Recipient, Week
from monitor.config import Config
from monitor.db import make_engine
from monitor.filters import engagement_total
from monitor.models import collection_runs, post_metrics, posts, source_metrics, sources
from monitor.platforms import platform_hosts
from monitor.processes import start_process_pool
from monitor.types import METRIC_NAMES

# Between two posts' phrases: a phrase is then always found whole between spaces, even when
# the next post's phrases begin with it.
PHRASE_SEPARATOR = "  "
# Below this many posts in the four weeks before, the baseline is loaded on a thread: starting a
# process (about half a second) would cost more than the interpreter lock it avoids.
PROCESS_BASELINE_POSTS = 50_000
SUCCESS_STATUSES = ("ok", "not_modified", "partial")


def recipients_from_config(config: Config) -> list[Recipient]:
    """The `[[recipients]]` of the config as digest recipients; language falls back to
    `[digest] language`."""
    return [
        Recipient(
            email=entry.email,
            name=entry.name,
            language=entry.language or config.digest.language,
            organisation=entry.organisation,
            groups=tuple(entry.groups),
            organisations=tuple(entry.organisations),
            platforms=tuple(entry.platforms),
            keywords=tuple(entry.keywords),
            skip_empty=entry.skip_empty,
        )
        for entry in config.recipients
    ]


def build_digest(
    engine: Engine,
    config: Config,
    recipient: Recipient,
    week: Week,
    *,
    now: datetime | None = None,
) -> DigestData:
    """The digest of `week` for `recipient`: what the sources they follow published, and how
    complete the data is. Reads only the sources the recipient follows; a handful of queries
    whatever the number of posts."""
    with engine.connect() as connection:
        all_sources = _load_sources(connection)
    ids = [source.id for source in select_followed(all_sources.values(), recipient)]
    data = load_week_data(engine, week, now=now, source_ids=ids)
    return compose_digest(recipient, data, config.digest.top_posts, group_names(config))


def make_digest_builder(
    engine: Engine, config: Config, week: Week, *, now: datetime | None = None
) -> Callable[[Recipient], DigestData]:
    """`build_digest` for many recipients in turn (a send loop): the week's data is loaded at the
    first call and reused by the next ones."""
    loaded: list[WeekData] = []

    def build(recipient: Recipient) -> DigestData:
        if not loaded:
            loaded.append(load_week_data(engine, week, now=now))
        return compose_digest(recipient, loaded[0], config.digest.top_posts, names)

    names = group_names(config)
    return build


def group_names(config: Config) -> dict[str, str]:
    """Each declared group's name by its key (`[groups.kommuner] name = "Kommuner"`)."""
    return {key: group.name for key, group in config.groups.items() if group.name}


def load_comparisons(
    engine: Engine,
    week: Week,
    *,
    group: str | None = None,
    own: str | None = None,
    now: datetime | None = None,
) -> list[Comparison]:
    """The week's comparison of every active source's organisation per platform, or of the
    sources in `group`, as the digest's section has it (`omvarld compare`, `/compare`)."""
    counted_until = max(now or datetime.now(UTC), week.end)  # as a digest made now counts
    with engine.connect() as connection:
        chosen = [
            source
            for source in _load_sources(connection).values()
            if source.active and (group is None or group in source.groups)
        ]
        ids = [source.id for source in chosen]
        activity = load_activity(connection, ids, week, range(1), counted_until)
        followers = load_followers(connection, ids, week)
    return compare_organisations(chosen, index_activity(activity), followers, own)


def load_week_data(
    engine: Engine,
    week: Week,
    *,
    now: datetime | None = None,
    source_ids: Sequence[int] | None = None,
) -> WeekData:
    """The week's posts, the four weeks before as per-source sums, spans and collection runs;
    of every source, or only of `source_ids`. Reads only."""
    with _cycle_collection_paused():
        return _load_week_data(engine, week, now, source_ids)


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Loading a week makes a million small objects that hold no cycles; as they pile up the
    cycle collector would walk them again and again (1.5 s of a 10 s digest run, measured).
    Paused for the load only: whatever other threads drop meanwhile is collected after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # Else the collector's first pass after the load walks every object the load made.
        # Frozen objects are still freed by reference counting when the week is dropped.
        gc.freeze()
        if enabled:
            gc.enable()


def _load_week_data(
    engine: Engine, week: Week, now: datetime | None, source_ids: Sequence[int] | None
) -> WeekData:
    generated_at = now or datetime.now(UTC)
    # Counts as the digest is made: Monday morning's collection says how last week's posts
    # did. A digest rebuilt later for the same week shows the counts known then.
    counted_until = max(generated_at, week.end)
    with engine.connect() as connection:
        all_sources = _load_sources(connection)
    ids = list(all_sources) if source_ids is None else list(source_ids)
    this_week: list[PostRow] = []
    runs: dict[int, RunSummary] = {}
    week_terms: dict[int, Counter[str]] = {}
    week_phrases = PhraseTexts({}, Counter())
    # The four weeks before and the spans are worked out beside the week's posts: in a process
    # of its own when there are many (turning 300,000 posts' terms into counts is Python work,
    # and two threads would take turns at one interpreter lock), else on a thread, where the
    # database's share of the work runs free of the lock. (The windows don't overlap; the
    # spans may see a post stored meanwhile, which no section can tell from one stored a
    # second earlier.)
    apart = _baseline_executor(engine, ids, week)
    with apart as pool:
        baseline = pool.submit(
            _load_history_apart,
            engine if isinstance(pool, ThreadPoolExecutor) else _url_of(engine),
            ids,
            week,
            counted_until,
        )
        if ids:
            with engine.connect() as connection:
                counts = _load_counts(connection, ids, week.start, week.end, counted_until)
                this_week = _load_posts(connection, all_sources, ids, week, counts)
                # Through the digest's making: Monday morning's collection is what says whether
                # the week's posts are all there (and a digest made later, as the demo's is,
                # would otherwise find no collection at all and call every source failing).
                runs = _load_runs(connection, ids, week.start, counted_until)
                # Here rather than apart: that side has the longer way to go already.
                week_terms, phrase_texts = count_terms(
                    connection, _in_window(ids, week.start, week.end)
                )
                week_phrases = PhraseTexts.of(phrase_texts)
        this_week.sort(key=lambda r: (r.published_at, r.id), reverse=True)
        before, spans, earlier, followers, phrases_before = baseline.result()
    history = add_week(before, this_week, week_terms)
    organisations = {source_id: source.organisation for source_id, source in all_sources.items()}
    rising = find_rising_phrases(week_phrases, phrases_before, organisations)
    # Per source, only the few phrases wanted: a digest sums those for what a recipient follows.
    for source_id, counted in count_phrases(week_phrases, rising).items():
        history.setdefault(source_id, new_history()).week_phrases = counted
    for source_id, counted in count_phrases(phrases_before, rising).items():
        history.setdefault(source_id, new_history()).phrases = counted
    return WeekData(
        week, generated_at, all_sources, this_week, history, spans, runs,
        TermTotals.of(history.values()), find_own_hosts(all_sources, this_week),
        list_activity(history, earlier), followers, rising,
    )  # fmt: skip


def _baseline_executor(engine: Engine, ids: list[int], week: Week) -> Executor:
    """A process for a large baseline on a database another process can open, else a thread."""
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return ThreadPoolExecutor(1, thread_name_prefix="digest-baseline")
    weeks = week.shifted(-BASELINE_WEEKS)
    with engine.connect() as connection:
        size = connection.execute(
            sa.select(sa.func.count()).where(_in_window(ids, weeks.start, week.start))
        ).scalar_one()
    if size < PROCESS_BASELINE_POSTS:
        return ThreadPoolExecutor(1, thread_name_prefix="digest-baseline")
    return start_process_pool(1)


def _url_of(engine: Engine) -> str:
    """The engine's URL with its password, for a process that opens the database itself."""
    return engine.url.render_as_string(hide_password=False)


def _load_history_apart(
    database: Engine | str, ids: list[int], week: Week, counted_until: datetime
) -> tuple[
    dict[int, SourceHistory],
    dict[int, SourceSpan],
    list[ActivityRow],
    dict[int, FollowerRow],
    PhraseTexts,
]:
    """The four weeks before (their phrases apart), every source's span, the charts' weeks
    before those four and the followers for comparisons, on a connection of their own; given
    a URL (in another process), on an engine of their own."""
    engine = make_engine(database) if isinstance(database, str) else database
    try:
        with engine.connect() as connection:
            spans = _load_spans(connection, week.end)
            before, phrases = _load_baseline(connection, ids, week, counted_until)
            earlier = load_activity(
                connection, ids, week, range(BASELINE_WEEKS + 1, CHART_WEEKS), counted_until
            )
            followers = load_followers(connection, ids, week)
            return before, spans, earlier, followers, PhraseTexts.of(phrases)
    finally:
        if isinstance(database, str):
            engine.dispose()


def _load_sources(connection: Connection) -> dict[int, SourceInfo]:
    """Every source, labelled by the platform readers know it by (`sources.channel`)."""
    query = sa.select(
        sources.c.id,
        sources.c.key,
        sources.c.platform,
        sources.c.organisation,
        sources.c.groups,
        sources.c.active,
        sources.c.url,
        sources.c.created_at,
        sources.c.channel,
    )
    return {
        row.id: SourceInfo(
            row.id,
            row.key,
            row.platform,
            row.organisation,
            tuple(row.groups or ()),
            row.active,
            label=row.channel,
            added_at=row.created_at,
            url=row.url,
        )
        for row in connection.execute(query)
    }


def find_own_hosts(
    all_sources: dict[int, SourceInfo], this_week: Sequence[PostRow]
) -> dict[str, frozenset[str]]:
    """Per organisation, the hosts of its own sites: its sources' addresses, and the addresses
    of its feeds' posts (the articles on its website)."""
    hosts: dict[str, set[str]] = defaultdict(set)
    for source in all_sources.values():
        host = domain_of(source.url) if source.url else None
        if host:
            hosts[source.organisation].add(host)
    for row in this_week:
        if row.source.shown == "feed" and row.url:
            host = domain_of(row.url)
            if host:
                hosts[row.source.organisation].add(host)
    return {organisation: frozenset(found) for organisation, found in hosts.items()}


def _in_window(source_ids: list[int], start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    """Undeleted, unerased posts of the sources published in [start, end)."""
    return sa.and_(
        posts.c.source_id.in_(source_ids),
        posts.c.published_at >= start,
        posts.c.published_at < end,
        posts.c.deleted_at.is_(None),
        posts.c.erased_at.is_(None),
    )


def _load_counts(
    connection: Connection,
    source_ids: list[int],
    start: datetime,
    end: datetime,
    counted_until: datetime,
) -> dict[int, dict[str, int]]:
    """The latest counts observed before `counted_until` of the posts in [start, end)."""
    latest = (
        sa.select(sa.func.max(post_metrics.c.id))
        .join(posts, posts.c.id == post_metrics.c.post_id)
        .where(_in_window(source_ids, start, end), post_metrics.c.observed_at < counted_until)
        .group_by(post_metrics.c.post_id)
    )
    names = [post_metrics.c[name] for name in METRIC_NAMES]
    # No observed_at: converting 100,000s of timestamps nobody reads is the slow part.
    query = sa.select(post_metrics.c.post_id, *names).where(post_metrics.c.id.in_(latest))
    return {
        row[0]: {
            name: value
            for name, value in zip(METRIC_NAMES, row[1:], strict=True)
            if value is not None
        }
        for row in connection.execute(query)
    }


def _load_posts(
    connection: Connection,
    all_sources: dict[int, SourceInfo],
    source_ids: list[int],
    week: Week,
    counts: dict[int, dict[str, int]],
) -> list[PostRow]:
    """The sources' undeleted posts of the week, with what the digest derives from each."""
    # JSON and timestamps come as text and are decoded here: SQLAlchemy's per-value
    # processors cost more than the rest of reading 100,000 posts together.
    query = sa.select(
        posts.c.id,
        posts.c.source_id,
        posts.c.kind,
        posts.c.url,
        sa.type_coerce(posts.c.published_at, sa.Text),
        posts.c.title,
        posts.c.text,
        sa.type_coerce(posts.c.tags, sa.Text),
        sa.type_coerce(posts.c.links, sa.Text),
        sa.type_coerce(posts.c.media, sa.Text),
    ).where(_in_window(source_ids, week.start, week.end))
    rows = []
    for (
        post_id, source_id, kind, url, published, title, text, raw_tags, raw_links, raw_media,
    ) in connection.execute(query):  # fmt: skip
        source = all_sources[source_id]
        tags = _decode_list(raw_tags)
        links = _decode_list(raw_links)
        post_counts = counts.get(post_id)
        # A post's own address (its page, or the article on its publisher's site) and its
        # platform's own pages are not websites it shares.
        own = (*platform_hosts(source.shown), *([domain_of(url) or ""] if url else ()))
        rows.append(
            PostRow(
                id=post_id,
                source=source,
                kind=kind,
                url=url,
                published_at=_as_utc(published),
                title=title,
                text=text,
                tags=tags,
                links=links,
                media=tuple(m for m in _decode_list(raw_media) if isinstance(m, dict)),
                counts=post_counts,
                engagement=engagement_of(post_counts),
                domains=frozenset(d for d in map(domain_of, links) if d and not is_within(d, own)),
                folded=f"{title or ''}\n{text or ''}".casefold(),
            )
        )
    return rows


def _load_baseline(
    connection: Connection, source_ids: list[int], week: Week, counted_until: datetime
) -> tuple[dict[int, SourceHistory], dict[int, str]]:
    """Per source: posts, engagement and terms of each of the four weeks before, and their
    phrases as text (`PhraseTexts`)."""
    history: dict[int, SourceHistory] = {}
    if not source_ids:
        return history, {}
    weeks = [week.shifted(-n) for n in range(BASELINE_WEEKS, 0, -1)]
    window = _in_window(source_ids, weeks[0].start, week.start)
    for source_id, index, count, counted, summed in sum_weeks(
        connection, source_ids, weeks, counted_until
    ):
        summary = history.get(source_id)
        if summary is None:
            summary = history[source_id] = new_history()
        summary.posts[index] = count
        summary.engagement[index] = summed
        summary.counted_weeks[index] = counted
        summary.counted += counted
        summary.counted_engagement += summed
    terms, phrases = count_terms(connection, window)
    for source_id, used in terms.items():
        history[source_id].terms = used
    return history, phrases


def sum_weeks(
    connection: Connection, source_ids: list[int], weeks: Sequence[Week], counted_until: datetime
) -> Iterator[tuple[int, int, int, int, int]]:
    """Per source and week (by its index in `weeks`, which follow each other): posts, posts
    with counts, and their engagement as last observed before `counted_until`."""
    window = _in_window(source_ids, weeks[0].start, weeks[-1].end)
    # The database sums the weeks per source: 300,000 posts become a few thousand rows.
    which = sa.case(
        *((sa.and_(posts.c.published_at >= w.start, posts.c.published_at < w.end), n)
          for n, w in enumerate(weeks)),
    ).label("which")  # fmt: skip
    # Each post's latest observation by a correlated lookup in (post_id, id): SQLite plans a
    # join to a grouped subquery as a scan per post.
    earlier = post_metrics.alias("earlier")
    latest_id = (
        sa.select(sa.func.max(earlier.c.id))
        .where(earlier.c.post_id == posts.c.id, earlier.c.observed_at < counted_until)
        .scalar_subquery()
    )
    engagement = sa.func.sum(engagement_total(post_metrics))
    sums = (
        sa.select(
            posts.c.source_id, which, sa.func.count(), sa.func.count(post_metrics.c.id), engagement
        )
        .select_from(posts.outerjoin(post_metrics, post_metrics.c.id == latest_id))
        .where(window)
        .group_by(posts.c.source_id, which)
    )
    for source_id, index, count, counted, summed in connection.execute(sums):
        yield source_id, index, count, counted, int(summed or 0)  # PostgreSQL: numeric sums


def load_activity(
    connection: Connection,
    source_ids: list[int],
    week: Week,
    weeks_back: range,
    counted_until: datetime,
) -> list[ActivityRow]:
    """The sources' posts and engagement in the weeks `weeks_back` before `week` (0: itself),
    as comparisons and charts take them."""
    if not source_ids or not weeks_back:
        return []
    backs = sorted(weeks_back, reverse=True)  # oldest first
    weeks = [week.shifted(-back) for back in backs]
    return [
        ActivityRow(source_id, backs[index], count, counted, summed)
        for source_id, index, count, counted, summed in sum_weeks(
            connection, source_ids, weeks, counted_until
        )
    ]


def load_followers(
    connection: Connection, source_ids: list[int], week: Week
) -> dict[int, FollowerRow]:
    """Each source's followers at the end of `week`, at its start and four weeks before its
    end: the latest count observed at or before each (a row is stored only when a count
    changed, so the latest is the count then). Sources never counted are left out."""
    if not source_ids:
        return {}
    ends = (week.end, week.start, week.shifted(1 - GROWTH_WEEKS).start)
    found: list[dict[int, int]] = []
    for boundary in ends:
        counted = sa.and_(
            source_metrics.c.source_id.in_(source_ids),
            source_metrics.c.observed_at <= boundary,
            source_metrics.c.followers.is_not(None),
        )
        latest = (
            sa.select(
                source_metrics.c.source_id, sa.func.max(source_metrics.c.observed_at).label("at")
            )
            .where(counted)
            .group_by(source_metrics.c.source_id)
            .subquery()
        )
        query = (
            sa.select(source_metrics.c.source_id, source_metrics.c.followers)
            .join(
                latest,
                sa.and_(
                    latest.c.source_id == source_metrics.c.source_id,
                    latest.c.at == source_metrics.c.observed_at,
                ),
            )
            .where(source_metrics.c.followers.is_not(None))
        )
        found.append({source_id: int(n) for source_id, n in connection.execute(query)})
    at_end, at_start, before = found
    return {
        source_id: FollowerRow(
            source_id, at_end.get(source_id), at_start.get(source_id), before.get(source_id)
        )
        for source_id in at_end.keys() | at_start.keys() | before.keys()
    }


def count_terms(
    connection: Connection, where: sa.ColumnElement[bool]
) -> tuple[dict[int, Counter[str]], dict[int, str]]:
    """Per source, how many of its posts chosen by `where` use each term; and their phrases
    as one text (`PhraseTexts`)."""
    terms: dict[int, Counter[str]] = {}
    phrases: dict[int, str] = {}
    # Each source's terms and phrases as two long strings from the database, in one pass over
    # the rows; terms counted in C, not post by post.
    joined = (
        sa.select(
            posts.c.source_id,
            sa.func.aggregate_strings(posts.c.terms, " "),
            sa.func.aggregate_strings(posts.c.phrases, PHRASE_SEPARATOR),
        )
        .where(where, posts.c.terms.is_not(None))
        .group_by(posts.c.source_id)
    )
    # Every live post has terms and phrases (perhaps none): ingest stores them, and migrations
    # 0010 and 0014 filled in the posts stored before; an erased post's are NULL, and no
    # window holds it.
    for source_id, term_text, phrase_text in connection.execute(joined):
        if term_text:
            terms[source_id] = Counter(term_text.split())
        if phrase_text and not phrase_text.isspace():
            phrases[source_id] = f" {phrase_text} "
    return terms, phrases


def _decode_list(raw: Any) -> tuple[Any, ...]:
    """A JSON list column read as text (most are empty: "[]" is cheaper to recognise than to
    decode); PostgreSQL hands JSONB over as text too when coerced, but allow a list."""
    if raw is None or raw == "[]":
        return ()
    return tuple(json.loads(raw) if isinstance(raw, str) else raw)


def _load_spans(connection: Connection, end: datetime) -> dict[int, SourceSpan]:
    """Every source's first and newest undeleted post before `end` (all sources: an
    organisation's history on a platform counts even where the recipient doesn't look)."""
    query = (
        sa.select(
            posts.c.source_id,
            sa.func.min(posts.c.published_at).label("first"),
            sa.func.max(posts.c.published_at).label("newest"),
        )
        .where(posts.c.published_at < end, posts.c.deleted_at.is_(None))
        .where(posts.c.erased_at.is_(None))
        .group_by(posts.c.source_id)
    )
    return {
        row.source_id: SourceSpan(_as_utc(row.first), _as_utc(row.newest))
        for row in connection.execute(query)
    }


def _load_runs(
    connection: Connection, source_ids: list[int], start: datetime, end: datetime
) -> dict[int, RunSummary]:
    success = collection_runs.c.status.in_(SUCCESS_STATUSES)
    failure = collection_runs.c.status == "failed"
    finished = collection_runs.c.finished_at
    query = (
        sa.select(
            collection_runs.c.source_id,
            sa.func.min(sa.case((success, finished))).label("first_success"),
            sa.func.max(sa.case((success, finished))).label("last_success"),
            sa.func.max(sa.case((failure, finished))).label("last_failure"),
        )
        .where(
            collection_runs.c.source_id.in_(source_ids),
            finished >= start,
            finished < end,
        )
        .group_by(collection_runs.c.source_id)
    )
    return {
        row.source_id: RunSummary(
            _as_utc(row.first_success),
            _as_utc(row.last_success),
            _as_utc(row.last_failure),
        )
        for row in connection.execute(query)
    }


def _as_utc(value: Any) -> Any:
    """An aggregate's value as an aware UTC datetime: on SQLite, MIN and MAX lose the column's
    type and return the stored text; PostgreSQL returns an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
