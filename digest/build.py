"""Building recipients' weekly digests from the database: queries in, `DigestData` out.

A handful of set queries load a week once: its posts with their latest counts as of the week's
end, the four weeks before summed per source, each source's first and newest post, and the
week's collection runs. Each recipient's digest is then decided in Python by pure functions
working per followed source, so the rules can be read (and tested) apart from the SQL and fifty
digests cost little more than one.
"""

from __future__ import annotations

import gc
import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.model import (
    ChannelChange,
    DataQuality,
    DigestData,
    DomainCount,
    OrganisationNews,
    PostItem,
    Recipient,
    Summary,
    TableRow,
    Trend,
    Week,
)
from monitor.config import Config
from monitor.db import chunks, make_engine
from monitor.filters import engagement_total
from monitor.models import collection_runs, post_metrics, posts, sources
from monitor.processes import start_process_pool
from monitor.terms import TermExtractor
from monitor.types import ENGAGEMENT_NAMES, METRIC_NAMES

BASELINE_WEEKS = 4  # "the 4-week average" of issue 5
# Below this many posts in the four weeks before, the baseline is loaded on a thread: starting a
# process (about half a second) would cost more than the interpreter lock it avoids.
PROCESS_BASELINE_POSTS = 50_000
SILENT_AFTER = timedelta(days=30)
EXCERPT_LENGTH = 280
NEWS_PER_ORGANISATION = 3  # a few each, then "and N more"
DIALOG_POSTS = 5
VIDEO_POSTS = 10
MENTION_POSTS = 10
TREND_TERMS = 10
TOP_DOMAINS = 5
# A term trends when it is not rare this week and at least doubles its usual weekly count (+1, so
# a term unseen before needs three posts, not one).
TREND_MIN_COUNT = 3
TREND_FACTOR = 2.0
SUCCESS_STATUSES = ("ok", "not_modified", "partial")
VIDEO_KINDS = ("video", "live")

_SPACE = re.compile(r"\s+")


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


@dataclass(frozen=True)
class SourceInfo:
    """A source as the digest needs it."""

    id: int
    key: str
    platform: str
    organisation: str
    groups: tuple[str, ...]
    active: bool


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which costs 0.2 s
# over a week's 100,000 posts; nothing assigns to a PostRow after it is made.
@dataclass(slots=True, eq=False)
class PostRow:
    """A stored post of the week with its latest counts as of the week's end (None: it has no
    counts), and what every recipient's digest derives from it, worked out once."""

    id: int
    source: SourceInfo
    kind: str
    url: str | None
    published_at: datetime
    title: str | None
    text: str | None
    tags: tuple[str, ...]
    links: tuple[str, ...]
    media: tuple[dict[str, Any], ...]
    counts: dict[str, int] | None
    engagement: int
    domains: frozenset[str]  # shared link domains
    folded: str  # title and text case-folded, for keywords


@dataclass
class SourceHistory:
    """One source's five weeks as sums and short lists: what every section needs, so that a
    recipient's digest costs work per followed source rather than per post."""

    posts: list[int]  # per baseline week, oldest first
    engagement: list[int]
    counted: int = 0  # posts with counts over the five weeks
    counted_engagement: int = 0
    terms: Counter[str] = field(default_factory=Counter)  # posts per term, four weeks before
    # The week:
    week_posts: int = 0
    week_engagement: int = 0
    week_counted: list[int] = field(default_factory=list)  # engagement of posts with counts
    week_terms: Counter[str] = field(default_factory=Counter)
    week_domains: Counter[str] = field(default_factory=Counter)
    # The week's posts as each section ranks them, in that section's order:
    engaged: list[PostRow] = field(default_factory=list)  # with counts and engagement > 0
    replied: list[PostRow] = field(default_factory=list)
    videos: list[PostRow] = field(default_factory=list)
    uncounted: list[PostRow] = field(default_factory=list)  # newest first


@dataclass(frozen=True)
class SourceSpan:
    """A source's first and newest post before the week's end."""

    first: datetime
    newest: datetime


@dataclass(frozen=True)
class RunSummary:
    """A source's collection attempts during the week."""

    first_success: datetime | None
    last_success: datetime | None
    last_failure: datetime | None


@dataclass(frozen=True)
class WeekData:
    """Everything a week's digests are decided from, loaded once for any number of recipients."""

    week: Week
    generated_at: datetime
    all_sources: dict[int, SourceInfo]
    this_week: list[PostRow]  # newest first
    history: dict[int, SourceHistory]
    spans: dict[int, SourceSpan]
    runs: dict[int, RunSummary]
    terms: TermTotals


@dataclass(frozen=True)
class TermTotals:
    """Posts per term over every loaded source: this week's and the four weeks before."""

    week: Counter[str]
    before: Counter[str]

    @classmethod
    def of(cls, history: Iterable[SourceHistory]) -> TermTotals:
        week: Counter[str] = Counter()
        before: Counter[str] = Counter()
        for summary in history:
            week.update(summary.week_terms)
            before.update(summary.terms)
        return cls(week, before)


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
    return compose_digest(recipient, data, config.digest.top_posts)


def build_digests(
    engine: Engine,
    config: Config,
    recipients: Sequence[Recipient],
    week: Week,
    *,
    now: datetime | None = None,
) -> dict[str, DigestData]:
    """Every recipient's digest of `week`, by email, from one load of the week's data: the same
    digests `build_digest` makes one at a time, at a fraction of the cost for many recipients."""
    data = load_week_data(engine, week, now=now)
    return {r.email: compose_digest(r, data, config.digest.top_posts) for r in recipients}


def make_digest_builder(
    engine: Engine, config: Config, week: Week, *, now: datetime | None = None
) -> Callable[[Recipient], DigestData]:
    """`build_digest` for many recipients in turn (a send loop): the week's data is loaded at the
    first call and reused by the next ones."""
    loaded: list[WeekData] = []

    def build(recipient: Recipient) -> DigestData:
        if not loaded:
            loaded.append(load_week_data(engine, week, now=now))
        return compose_digest(recipient, loaded[0], config.digest.top_posts)

    return build


def select_followed(all_sources: Iterable[SourceInfo], recipient: Recipient) -> list[SourceInfo]:
    """The active sources a recipient follows.

    Groups and organisations add up (follow the municipalities and also the police); platforms
    narrow what they chose. Nothing set follows everything.
    """
    chosen = []
    for source in all_sources:
        if not source.active:
            continue
        if recipient.groups or recipient.organisations:
            in_group = bool(set(source.groups) & set(recipient.groups))
            if not in_group and source.organisation not in recipient.organisations:
                continue
        if recipient.platforms and source.platform not in recipient.platforms:
            continue
        chosen.append(source)
    return sorted(chosen, key=lambda s: s.key)


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
                runs = _load_runs(connection, ids, week.start, week.end)
                # Here rather than apart: that side has the longer way to go already.
                week_terms = count_terms(connection, _in_window(ids, week.start, week.end))
        this_week.sort(key=lambda r: (r.published_at, r.id), reverse=True)
        before, spans = baseline.result()
    history = add_week(before, this_week, week_terms)
    return WeekData(
        week, generated_at, all_sources, this_week, history, spans, runs,
        TermTotals.of(history.values()),
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
) -> tuple[dict[int, SourceHistory], dict[int, SourceSpan]]:
    """The four weeks before and every source's span, on a connection of their own; given a
    URL (in another process), on an engine of their own."""
    engine = make_engine(database) if isinstance(database, str) else database
    try:
        with engine.connect() as connection:
            spans = _load_spans(connection, week.end)
            return _load_baseline(connection, ids, week, counted_until), spans
    finally:
        if isinstance(database, str):
            engine.dispose()


def _load_sources(connection: Connection) -> dict[int, SourceInfo]:
    query = sa.select(
        sources.c.id,
        sources.c.key,
        sources.c.platform,
        sources.c.organisation,
        sources.c.groups,
        sources.c.active,
    )
    return {
        row.id: SourceInfo(
            row.id, row.key, row.platform, row.organisation, tuple(row.groups or ()), row.active
        )
        for row in connection.execute(query)
    }


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
        addresses = (*links, url) if url and source.platform == "feed" else links
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
                domains=frozenset(d for d in map(_domain, addresses) if d),
                folded=f"{title or ''}\n{text or ''}".casefold(),
            )
        )
    return rows


def _load_baseline(
    connection: Connection, source_ids: list[int], week: Week, counted_until: datetime
) -> dict[int, SourceHistory]:
    """Per source: posts, engagement and terms of each of the four weeks before."""
    history: dict[int, SourceHistory] = {}
    if not source_ids:
        return history
    weeks = [week.shifted(-n) for n in range(BASELINE_WEEKS, 0, -1)]
    window = _in_window(source_ids, weeks[0].start, week.start)
    # The database sums the four weeks per source: 300,000 posts become a few thousand rows.
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
        summary = history.get(source_id)
        if summary is None:
            summary = history[source_id] = _new_history()
        summed = int(summed or 0)  # PostgreSQL sums bigints as numeric
        summary.posts[index] = count
        summary.engagement[index] = summed
        summary.counted += counted
        summary.counted_engagement += summed
    for source_id, counted_terms in count_terms(connection, window).items():
        history[source_id].terms = counted_terms
    return history


def count_terms(connection: Connection, where: sa.ColumnElement[bool]) -> dict[int, Counter[str]]:
    """Per source, how many of its posts chosen by `where` use each term."""
    counted: dict[int, Counter[str]] = defaultdict(Counter)
    # Each source's terms as one long string from the database, counted in C, not post by post.
    joined = (
        sa.select(posts.c.source_id, sa.func.aggregate_strings(posts.c.terms, " "))
        .where(where, posts.c.terms.is_not(None))
        .group_by(posts.c.source_id)
    )
    for source_id, text in connection.execute(joined):
        if text:
            counted[source_id].update(text.split())
    # Posts stored before posts.terms existed: their text is split here instead.
    unsplit = sa.select(posts.c.id, posts.c.source_id).where(where, posts.c.terms.is_(None))
    _split_terms(connection, {post_id: counted[source_id]
                              for post_id, source_id in connection.execute(unsplit)})  # fmt: skip
    return dict(counted)


def add_week(
    history: dict[int, SourceHistory],
    this_week: Sequence[PostRow],
    week_terms: dict[int, Counter[str]],
) -> dict[int, SourceHistory]:
    """The baseline completed with the week's posts (newest first) and their terms per source:
    sums, and each source's posts in the order every section ranks them."""
    for row in this_week:
        summary = history.get(row.source.id)
        if summary is None:
            summary = history[row.source.id] = _new_history()
        summary.week_posts += 1
        summary.week_engagement += row.engagement
        summary.week_domains.update(row.domains)
        if row.kind in VIDEO_KINDS:
            summary.videos.append(row)
        if row.counts is None:
            summary.uncounted.append(row)
            continue
        summary.counted += 1
        summary.counted_engagement += row.engagement
        summary.week_counted.append(row.engagement)
        if row.engagement > 0:
            summary.engaged.append(row)
        if row.counts.get("replies", 0) > 0:
            summary.replied.append(row)
    for source_id, counted in week_terms.items():
        history[source_id].week_terms = counted
    for summary in history.values():
        summary.engaged.sort(key=_engagement_order)
        summary.replied.sort(key=_dialog_order)
    return history


def _split_terms(connection: Connection, unsplit: dict[int, Counter[str]]) -> None:
    """Count the terms of posts stored before `posts.terms` existed, from their text, each
    into its counter."""
    terms = TermExtractor()
    for chunk in chunks(list(unsplit), 10_000):
        query = sa.select(
            posts.c.id,
            posts.c.title,
            posts.c.text,
            # Most posts have no tags: their "[]" is cheaper to recognise than to decode.
            sa.type_coerce(posts.c.tags, sa.Text),
        ).where(posts.c.id.in_(chunk))
        for post_id, title, text, raw_tags in connection.execute(query):
            unsplit[post_id].update(terms.extract(title, text, _decode_list(raw_tags)))


def _engagement_order(row: PostRow) -> tuple[int, float, int]:
    return (-row.engagement, -row.published_at.timestamp(), row.id)


def _dialog_order(row: PostRow) -> tuple[int, int, float, int]:
    return (
        -(row.counts or {}).get("replies", 0),
        -row.engagement,
        -row.published_at.timestamp(),
        row.id,
    )


def _new_history() -> SourceHistory:
    return SourceHistory([0] * BASELINE_WEEKS, [0] * BASELINE_WEEKS)


def _decode_list(raw: Any) -> tuple[Any, ...]:
    """A JSON list column read as text (most are empty: "[]" is cheaper to recognise than to
    decode); PostgreSQL hands JSONB over as text too when coerced, but allow a list."""
    if raw is None or raw == "[]":
        return ()
    return tuple(json.loads(raw) if isinstance(raw, str) else raw)


def engagement_of(counts: dict[str, int] | None) -> int:
    """Likes, reposts, replies, quotes and reactions added up; views are not engagement."""
    if not counts:
        return 0
    return sum(counts.get(name, 0) for name in ENGAGEMENT_NAMES)


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


def compose_digest(recipient: Recipient, data: WeekData, top_count: int) -> DigestData:
    """Decide every section of a recipient's digest from the loaded week; no I/O."""
    week = data.week
    followed = select_followed(data.all_sources.values(), recipient)
    start, end = week.start.astimezone(UTC), week.end.astimezone(UTC)
    active = [(s, data.history[s.id]) for s in followed if s.id in data.history]
    this_week = [(s, h) for s, h in active if h.week_posts]
    means = _platform_means(active)
    top = rank_top_posts(this_week, means, top_count)
    shown = [
        *top,
        *(r for _, h in this_week for r in h.videos[:VIDEO_POSTS]),
        *(r for _, h in this_week for r in h.replied[:DIALOG_POSTS]),
        *(r for _, h in this_week for r in h.uncounted[:NEWS_PER_ORGANISATION]),
    ]
    mentions = find_mentions(data.this_week, {s.id for s in followed}, recipient.keywords)
    scores = _score_posts([*shown, *mentions], means)
    videos = sorted(
        (r for _, h in this_week for r in h.videos[:VIDEO_POSTS]),
        key=lambda r: (r.published_at, r.id),
        reverse=True,
    )[:VIDEO_POSTS]
    own = recipient.organisation
    return DigestData(
        recipient=recipient,
        week=week,
        generated_at=data.generated_at,
        summary=_summarise(this_week, [h for _, h in active], top),
        top_posts=tuple(_item(r, scores) for r in top),
        news=tuple(_news(this_week, scores)),
        dialog=tuple(_dialog(this_week, scores)),
        videos=tuple(_item(r, scores) for r in videos),
        trends=tuple(find_trends({s.id for s, _ in active}, data.history, data.terms)),
        domains=tuple(count_domains(this_week, own)),
        by_platform=tuple(tabulate(this_week, lambda s: (s.platform,), None)),
        by_organisation=tuple(
            tabulate(
                this_week,
                lambda s: (s.organisation,),
                own,
                always=_own_followed(followed, own),
            )
        ),
        by_group=tuple(tabulate(this_week, lambda s: s.groups, None)),
        channel_changes=tuple(
            find_channel_changes(followed, data.all_sources, data.spans, start, end)
        ),
        quality=tuple(assess_quality(followed, data.runs)),
        mentions=tuple(_item(r, scores) for r in mentions),
    )


# A followed source and its sums.
Followed = tuple[SourceInfo, SourceHistory]


def _own_followed(followed: Sequence[SourceInfo], own: str | None) -> tuple[str, ...]:
    # The own organisation gets a row even in a week it was silent, so the comparison shows it.
    return (own,) if own and any(s.organisation == own for s in followed) else ()


def _platform_means(active: Sequence[Followed]) -> dict[str, float]:
    """The mean engagement per post with counts, per platform, over the five weeks of the
    followed sources: a like on X and a view on YouTube are not the same."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for source, history in active:
        if history.counted:
            total = totals[source.platform]
            total[0] += history.counted_engagement
            total[1] += history.counted
    return {platform: engagement / count for platform, (engagement, count) in totals.items()}


def _score_posts(rows: Iterable[PostRow], means: dict[str, float]) -> dict[int, float]:
    """Engagement divided by the platform's mean. Posts without counts get no score."""
    scores = {}
    for row in rows:
        if row.counts is not None:
            mean = means.get(row.source.platform, 0.0)
            scores[row.id] = row.engagement / mean if mean else 0.0
    return scores


def rank_top_posts(
    this_week: Sequence[Followed], means: dict[str, float], count: int
) -> list[PostRow]:
    """The week's most engaging posts by score; posts nobody engaged with are not "top".

    Within a platform the score follows engagement, so each source's own `count` best are the
    only candidates.
    """
    candidates = [r for _, h in this_week for r in h.engaged[:count]]
    scores = _score_posts(candidates, means)
    ranked = [r for r in candidates if scores[r.id] > 0]
    ranked.sort(key=lambda r: (-scores[r.id], -r.engagement, -r.published_at.timestamp(), r.id))
    return ranked[:count]


def _summarise(
    this_week: Sequence[Followed], histories: Sequence[SourceHistory], top: Sequence[PostRow]
) -> Summary:
    by_organisation: Counter[str] = Counter()
    for source, history in this_week:
        by_organisation[source.organisation] += history.week_posts
    most_active = min(by_organisation.items(), key=lambda item: (-item[1], item[0]), default=None)
    weekly_posts = [sum(h.posts[n] for h in histories) for n in range(BASELINE_WEEKS)]
    weekly_engagement = [sum(h.engagement[n] for h in histories) for n in range(BASELINE_WEEKS)]
    return Summary(
        posts=sum(h.week_posts for _, h in this_week),
        engagement=sum(h.week_engagement for _, h in this_week),
        posts_previous=weekly_posts[-1],
        engagement_previous=weekly_engagement[-1],
        posts_average=sum(weekly_posts) / BASELINE_WEEKS,
        engagement_average=sum(weekly_engagement) / BASELINE_WEEKS,
        most_active_organisation=most_active[0] if most_active else None,
        most_active_posts=most_active[1] if most_active else 0,
        top_post=_item(top[0], {}) if top else None,
    )


def _news(this_week: Sequence[Followed], scores: dict[int, float]) -> list[OrganisationNews]:
    """Posts without counts (news sites, blogs) per organisation, newest first; organisations
    ordered by their newest post."""
    grouped: dict[str, list[PostRow]] = defaultdict(list)
    totals: Counter[str] = Counter()
    for source, history in this_week:
        if history.uncounted:
            grouped[source.organisation].extend(history.uncounted[:NEWS_PER_ORGANISATION])
            totals[source.organisation] += len(history.uncounted)
    for items in grouped.values():
        items.sort(key=lambda r: (r.published_at, r.id), reverse=True)
    ordered = sorted(
        grouped.items(), key=lambda item: (-item[1][0].published_at.timestamp(), item[0])
    )
    return [
        OrganisationNews(
            organisation=name,
            posts=tuple(_item(r, scores) for r in items[:NEWS_PER_ORGANISATION]),
            more=max(0, totals[name] - NEWS_PER_ORGANISATION),
        )
        for name, items in ordered
    ]


def _dialog(this_week: Sequence[Followed], scores: dict[int, float]) -> list[PostItem]:
    """The posts that drew the most replies (counts only, never who replied)."""
    replied = sorted((r for _, h in this_week for r in h.replied[:DIALOG_POSTS]), key=_dialog_order)
    return [_item(r, scores) for r in replied[:DIALOG_POSTS]]


def find_trends(
    followed: set[int], history: dict[int, SourceHistory], totals: TermTotals
) -> list[Trend]:
    """Hashtags and words used in clearly more posts this week than in an average week of the
    four before, among the `followed` sources; the strongest rise first."""
    chosen = [h for source_id, h in history.items() if source_id in followed]
    others = [h for source_id, h in history.items() if source_id not in followed]
    # Summing per-source counts is the cost, so a recipient who follows most sources gets the
    # totals less the few left out.
    complement = len(others) < len(chosen)
    summed, sign = (others, -1) if complement else (chosen, 1)
    current: Counter[str] = Counter(totals.week) if complement else Counter()
    add = current.subtract if complement else current.update
    for summary in summed:
        add(summary.week_terms)
    candidates = {term for term, count in current.items() if count >= TREND_MIN_COUNT}
    if not candidates:
        return []
    before = Counter({term: totals.before[term] for term in candidates} if complement else {})
    for summary in summed:
        for term in candidates & summary.terms.keys():
            before[term] += sign * summary.terms[term]
    return rank_trends(current, before, candidates)


def rank_trends(current: Counter[str], before: Counter[str], candidates: set[str]) -> list[Trend]:
    """The candidates that at least double their usual weekly count (+1); strongest rise first."""
    trends = []
    for term in candidates:
        baseline = before[term] / BASELINE_WEEKS
        if current[term] >= TREND_FACTOR * baseline + 1:
            trends.append(Trend(term, current[term], baseline))
    # +1 keeps a new term's ratio finite and favours terms with more posts behind them.
    trends.sort(key=lambda t: (-t.count / (t.baseline + 1), -t.count, t.term))
    return trends[:TREND_TERMS]


def count_domains(this_week: Sequence[Followed], own: str | None) -> list[DomainCount]:
    """The link domains most shared by others than the recipient's own organisation; each post
    counts a domain once.

    A feed item's address is the article it shares; a social post's address is its own page on
    the platform, so only its links count.
    """
    counter: Counter[str] = Counter()
    for source, history in this_week:
        if not (own and source.organisation == own):
            counter.update(history.week_domains)
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [DomainCount(domain, count) for domain, count in ranked[:TOP_DOMAINS]]


def _domain(url: str) -> str | None:
    # What urlsplit would say for a plain http(s) address, without its cost on 100,000s of
    # links; anything unusual (user, port, IPv6, odd characters) goes the long way.
    scheme, separator, rest = url.partition("://")
    if separator and scheme in ("https", "http"):
        host = rest.partition("/")[0].partition("?")[0].partition("#")[0]
        if host and host.isascii() and host.replace(".", "").replace("-", "").isalnum():
            return host.lower().removeprefix("www.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.removeprefix("www.")


def tabulate(
    this_week: Sequence[Followed],
    names: Callable[[SourceInfo], Iterable[str]],
    own: str | None,
    *,
    always: Sequence[str] = (),
) -> list[TableRow]:
    """Posts, engagement, median engagement and share of posts per name (a post may count under
    several names, as a source may be in several groups); most posts first."""
    grouped: dict[str, list[SourceHistory]] = {name: [] for name in always}
    for source, history in this_week:
        for name in names(source):
            grouped.setdefault(name, []).append(history)
    total = sum(h.week_posts for _, h in this_week)
    table = []
    for name, histories in grouped.items():
        posts_ = sum(h.week_posts for h in histories)
        counted = [e for h in histories for e in h.week_counted]
        table.append(
            TableRow(
                name=name,
                posts=posts_,
                engagement=sum(h.week_engagement for h in histories),
                # Posts without counts (news) would pull the median to zero saying nothing.
                median=float(statistics.median(counted)) if counted else 0.0,
                share=posts_ / total if total else 0.0,
                own=own is not None and name == own,
            )
        )
    table.sort(key=lambda t: (-t.posts, -t.engagement, t.name))
    return table


def find_channel_changes(
    followed: Sequence[SourceInfo],
    all_sources: dict[int, SourceInfo],
    spans: dict[int, SourceSpan],
    start: datetime,
    end: datetime,
) -> list[ChannelChange]:
    """New accounts, accounts silent for 30 days or more, and organisations' first posts on a
    platform they had not used (moves from X to Mastodon or Bluesky show up here)."""
    first_on: dict[tuple[str, str], datetime] = {}
    first_anywhere: dict[str, datetime] = {}
    for source_id, history in spans.items():
        owner = all_sources.get(source_id)
        if owner is None:
            continue
        key = (owner.organisation, owner.platform)
        first_on[key] = min(first_on.get(key, history.first), history.first)
        first_anywhere[owner.organisation] = min(
            first_anywhere.get(owner.organisation, history.first), history.first
        )
    changes = []
    for source in followed:
        span = spans.get(source.id)
        if span is None:
            continue
        if start <= span.first < end:
            # An organisation that posted elsewhere before and never on this platform moved here.
            moved = (
                first_on[(source.organisation, source.platform)] >= start
                and first_anywhere[source.organisation] < start
            )
            change = "first_on_platform" if moved else "new"
            changes.append(
                ChannelChange(source.organisation, source.platform, source.key, change, span.first)
            )
        elif span.newest <= end - SILENT_AFTER:
            changes.append(
                ChannelChange(
                    source.organisation, source.platform, source.key, "silent", span.newest
                )
            )
    order = {"first_on_platform": 0, "new": 1, "silent": 2}
    changes.sort(key=lambda c: (order[c.change], c.organisation, c.platform, c.source_key))
    return changes


def assess_quality(
    followed: Sequence[SourceInfo], runs: dict[int, RunSummary]
) -> list[DataQuality]:
    """Per platform: how many followed sources were collected during the week, how many were
    left failing, and the span the successful collections cover."""
    by_platform: dict[str, list[SourceInfo]] = defaultdict(list)
    for source in followed:
        by_platform[source.platform].append(source)
    result = []
    for platform in sorted(by_platform):
        summaries = [runs.get(s.id) for s in by_platform[platform]]
        ok = [r for r in summaries if r and r.last_success]
        failing = [
            r
            for r in summaries
            if r and r.last_failure and (r.last_success is None or r.last_success < r.last_failure)
        ]
        result.append(
            DataQuality(
                platform=platform,
                sources=len(summaries),
                sources_ok=len(ok),
                sources_failing=len(failing),
                covered_from=min((r.first_success for r in ok if r.first_success), default=None),
                covered_to=max((r.last_success for r in ok if r.last_success), default=None),
            )
        )
    return result


def find_mentions(
    newest_first: Sequence[PostRow], source_ids: set[int], keywords: Sequence[str]
) -> list[PostRow]:
    """The newest of the followed sources' posts whose title or text contains a keyword,
    case-insensitively."""
    wanted = [k.casefold() for k in keywords if k.strip()]
    found: list[PostRow] = []
    if not wanted:
        return found
    for row in newest_first:
        if row.source.id in source_ids and any(k in row.folded for k in wanted):
            found.append(row)
            if len(found) == MENTION_POSTS:
                break
    return found


def _item(row: PostRow, scores: dict[int, float]) -> PostItem:
    media = row.media[0] if row.media else {}
    duration = media.get("duration_s")
    counts = dict(row.counts or {})
    return PostItem(
        post_id=row.id,
        organisation=row.source.organisation,
        source_key=row.source.key,
        platform=row.source.platform,
        kind=row.kind,
        published_at=row.published_at,
        title=row.title,
        excerpt=make_excerpt(row.text or row.title or ""),
        url=http_only(row.url),
        counts=counts,
        engagement=row.engagement,
        score=scores.get(row.id, 0.0),
        thumbnail_url=http_only(media.get("thumbnail_url")),
        duration_s=duration if isinstance(duration, int) else None,
        views=counts.get("views"),
    )


def make_excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """Plain text with whitespace collapsed, at most `limit` characters, cut at a word with
    "…"."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if text[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:–-") + "…"


def http_only(url: Any) -> str | None:
    """The URL when it is http(s) with a host, else None: post content is untrusted."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None
