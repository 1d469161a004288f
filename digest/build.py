"""Building a recipient's weekly digest from the database: queries in, `DigestData` out.

A handful of set queries per digest load the followed sources' posts of the week and the four
weeks before, their latest counts as of the week's end, each source's first and newest post, and
the week's collection runs. Everything else is decided in one pass in Python by pure functions,
so the rules can be read (and tested) apart from the SQL.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from collectors.base import METRIC_NAMES
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
from monitor.models import collection_runs, post_metrics, posts, sources

# The counts that make up engagement; views are a different kind of attention and kept apart.
ENGAGEMENT_NAMES = ("likes", "reposts", "replies", "quotes", "reactions")
BASELINE_WEEKS = 4  # "the 4-week average" of issue 5
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
MIN_WORD_LENGTH = 4
SUCCESS_STATUSES = ("ok", "not_modified", "partial")
VIDEO_KINDS = ("video", "live")

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


@dataclass(frozen=True)
class PostRow:
    """A stored post with its latest counts as of the week's end (None: it has no counts)."""

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

    @property
    def engagement(self) -> int:
        if not self.counts:
            return 0
        return sum(self.counts.get(name, 0) for name in ENGAGEMENT_NAMES)


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


def build_digest(
    engine: Engine,
    config: Config,
    recipient: Recipient,
    week: Week,
    *,
    now: datetime | None = None,
) -> DigestData:
    """The digest of `week` for `recipient`: what the sources they follow published, and how
    complete the data is. Reads only; five queries whatever the number of posts."""
    start = week.shifted(-BASELINE_WEEKS).start
    generated_at = now or datetime.now(UTC)
    # Counts as the digest is made: Monday morning's collection says how last week's posts
    # did. A digest rebuilt later for the same week shows the counts known then.
    counted_until = max(generated_at, week.end)
    with engine.connect() as connection:
        all_sources = _load_sources(connection)
        followed = select_followed(all_sources.values(), recipient)
        ids = [source.id for source in followed]
        rows = (
            _load_posts(connection, all_sources, ids, start, week.end, counted_until) if ids else []
        )
        spans = _load_spans(connection, week.end)
        runs = _load_runs(connection, ids, week.start, week.end) if ids else {}
    return compose_digest(
        recipient=recipient,
        week=week,
        generated_at=generated_at,
        top_count=config.digest.top_posts,
        followed=followed,
        all_sources=all_sources,
        rows=rows,
        spans=spans,
        runs=runs,
    )


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


def _load_posts(
    connection: Connection,
    all_sources: dict[int, SourceInfo],
    source_ids: list[int],
    start: datetime,
    end: datetime,
    counted_until: datetime,
) -> list[PostRow]:
    """Undeleted posts of the sources published in [start, end), with their latest counts
    observed before `counted_until`."""
    window = sa.and_(
        posts.c.source_id.in_(source_ids),
        posts.c.published_at >= start,
        posts.c.published_at < end,
        posts.c.deleted_at.is_(None),
    )
    latest = (
        sa.select(sa.func.max(post_metrics.c.id))
        .join(posts, posts.c.id == post_metrics.c.post_id)
        .where(window, post_metrics.c.observed_at < counted_until)
        .group_by(post_metrics.c.post_id)
    )
    counts: dict[int, dict[str, int]] = {}
    metric_query = sa.select(post_metrics).where(post_metrics.c.id.in_(latest))
    for row in connection.execute(metric_query):
        mapping = row._mapping
        counts[row.post_id] = {
            name: mapping[name] for name in METRIC_NAMES if mapping[name] is not None
        }
    query = sa.select(
        posts.c.id,
        posts.c.source_id,
        posts.c.kind,
        posts.c.url,
        posts.c.published_at,
        posts.c.title,
        posts.c.text,
        posts.c.tags,
        posts.c.links,
        posts.c.media,
    ).where(window)
    return [
        PostRow(
            id=row.id,
            source=all_sources[row.source_id],
            kind=row.kind,
            url=row.url,
            published_at=row.published_at,
            title=row.title,
            text=row.text,
            tags=tuple(row.tags or ()),
            links=tuple(row.links or ()),
            media=tuple(m for m in row.media or () if isinstance(m, dict)),
            counts=counts.get(row.id),
        )
        for row in connection.execute(query)
    ]


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


def compose_digest(
    *,
    recipient: Recipient,
    week: Week,
    generated_at: datetime,
    top_count: int,
    followed: Sequence[SourceInfo],
    all_sources: dict[int, SourceInfo],
    rows: Sequence[PostRow],
    spans: dict[int, SourceSpan],
    runs: dict[int, RunSummary],
) -> DigestData:
    """Decide every section from loaded rows; no I/O."""
    weeks = [week.shifted(-n) for n in range(BASELINE_WEEKS, 0, -1)]
    bounds = [(w.start.astimezone(UTC), w.end.astimezone(UTC)) for w in weeks]
    start, end = week.start.astimezone(UTC), week.end.astimezone(UTC)
    this_week = sorted(
        (r for r in rows if start <= r.published_at < end),
        key=lambda r: (r.published_at, r.id),
        reverse=True,
    )
    earlier = [[r for r in rows if lo <= r.published_at < hi] for lo, hi in bounds]

    scores = _score_posts(rows)
    top = rank_top_posts(this_week, scores, top_count)
    summary = _summarise(this_week, earlier, top)
    return DigestData(
        recipient=recipient,
        week=week,
        generated_at=generated_at,
        summary=summary,
        top_posts=tuple(_item(r, scores) for r in top),
        news=tuple(_news(this_week, scores)),
        dialog=tuple(_dialog(this_week, scores)),
        videos=tuple(_item(r, scores) for r in this_week if r.kind in VIDEO_KINDS)[:VIDEO_POSTS],
        trends=tuple(find_trends(this_week, [r for rows_ in earlier for r in rows_])),
        domains=tuple(count_domains(this_week, recipient.organisation)),
        by_platform=tuple(tabulate(this_week, lambda r: (r.source.platform,), None)),
        by_organisation=tuple(
            tabulate(
                this_week,
                lambda r: (r.source.organisation,),
                recipient.organisation,
                always=_own_followed(followed, recipient.organisation),
            )
        ),
        by_group=tuple(tabulate(this_week, lambda r: r.source.groups, None)),
        channel_changes=tuple(find_channel_changes(followed, all_sources, spans, start, end)),
        quality=tuple(assess_quality(followed, runs)),
        mentions=tuple(
            _item(r, scores) for r in find_mentions(this_week, recipient.keywords)[:MENTION_POSTS]
        ),
    )


def _own_followed(followed: Sequence[SourceInfo], own: str | None) -> tuple[str, ...]:
    # The own organisation gets a row even in a week it was silent, so the comparison shows it.
    return (own,) if own and any(s.organisation == own for s in followed) else ()


def _score_posts(rows: Sequence[PostRow]) -> dict[int, float]:
    """Engagement divided by the platform's mean engagement per post over the five weeks: a
    like on X and a view on YouTube are not the same. Posts without counts get no score."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.counts is not None:
            total = totals[row.source.platform]
            total[0] += row.engagement
            total[1] += 1
    scores = {}
    for row in rows:
        if row.counts is None:
            continue
        engagement, count = totals[row.source.platform]
        mean = engagement / count
        scores[row.id] = row.engagement / mean if mean else 0.0
    return scores


def rank_top_posts(
    this_week: Sequence[PostRow], scores: dict[int, float], count: int
) -> list[PostRow]:
    """The week's most engaging posts by score; posts nobody engaged with are not "top"."""
    ranked = [r for r in this_week if scores.get(r.id, 0.0) > 0]
    ranked.sort(key=lambda r: (-scores[r.id], -r.engagement, -r.published_at.timestamp(), r.id))
    return ranked[:count]


def _summarise(
    this_week: Sequence[PostRow], earlier: Sequence[Sequence[PostRow]], top: Sequence[PostRow]
) -> Summary:
    by_organisation = Counter(r.source.organisation for r in this_week)
    most_active = min(by_organisation.items(), key=lambda item: (-item[1], item[0]), default=None)
    previous = earlier[-1]
    return Summary(
        posts=len(this_week),
        engagement=sum(r.engagement for r in this_week),
        posts_previous=len(previous),
        engagement_previous=sum(r.engagement for r in previous),
        posts_average=sum(len(w) for w in earlier) / len(earlier),
        engagement_average=sum(r.engagement for w in earlier for r in w) / len(earlier),
        most_active_organisation=most_active[0] if most_active else None,
        most_active_posts=most_active[1] if most_active else 0,
        top_post=_item(top[0], {}) if top else None,
    )


def _news(this_week: Sequence[PostRow], scores: dict[int, float]) -> list[OrganisationNews]:
    """Posts without counts (news sites, blogs) per organisation, newest first; organisations
    ordered by their newest post."""
    grouped: dict[str, list[PostRow]] = defaultdict(list)
    for row in this_week:  # newest first already
        if row.counts is None:
            grouped[row.source.organisation].append(row)
    ordered = sorted(
        grouped.items(), key=lambda item: (-item[1][0].published_at.timestamp(), item[0])
    )
    return [
        OrganisationNews(
            organisation=name,
            posts=tuple(_item(r, scores) for r in items[:NEWS_PER_ORGANISATION]),
            more=max(0, len(items) - NEWS_PER_ORGANISATION),
        )
        for name, items in ordered
    ]


def _dialog(this_week: Sequence[PostRow], scores: dict[int, float]) -> list[PostItem]:
    replied = [r for r in this_week if r.counts and r.counts.get("replies", 0) > 0]
    replied.sort(
        key=lambda r: (
            -(r.counts or {}).get("replies", 0),
            -r.engagement,
            -r.published_at.timestamp(),
            r.id,
        )
    )
    return [_item(r, scores) for r in replied[:DIALOG_POSTS]]


def extract_terms(row: PostRow) -> set[str]:
    """The hashtags ('#' + tag) and content words of a post, lower-cased, each once."""
    terms = {"#" + tag.lower().lstrip("#") for tag in row.tags if tag.strip("# ")}
    text = " ".join(part for part in (row.title, row.text) if part)
    for match in _WORD.finditer(text):
        token = match.group()
        # Inline hashtags are in `tags` already; mentions name accounts, not topics.
        if token[0] in "#@" or not token.isalpha():
            continue
        word = token.lower()
        if len(word) >= MIN_WORD_LENGTH and word not in STOP_WORDS:
            terms.add(word)
    return terms


def find_trends(this_week: Sequence[PostRow], baseline_rows: Sequence[PostRow]) -> list[Trend]:
    """Hashtags and words used in clearly more posts this week than in an average week of the
    four before; the strongest rise first."""
    current = Counter(term for row in this_week for term in extract_terms(row))
    candidates = {term for term, count in current.items() if count >= TREND_MIN_COUNT}
    if not candidates:
        return []
    before = Counter(
        term for row in baseline_rows for term in extract_terms(row) if term in candidates
    )
    trends = []
    for term in candidates:
        baseline = before[term] / BASELINE_WEEKS
        if current[term] >= TREND_FACTOR * baseline + 1:
            trends.append(Trend(term, current[term], baseline))
    # +1 keeps a new term's ratio finite and favours terms with more posts behind them.
    trends.sort(key=lambda t: (-t.count / (t.baseline + 1), -t.count, t.term))
    return trends[:TREND_TERMS]


def count_domains(this_week: Sequence[PostRow], own: str | None) -> list[DomainCount]:
    """The link domains most shared by others than the recipient's own organisation; each post
    counts a domain once.

    A feed item's address is the article it shares; a social post's address is its own page on
    the platform, so only its links count.
    """
    counter: Counter[str] = Counter()
    for row in this_week:
        if own and row.source.organisation == own:
            continue
        addresses = (*row.links, row.url) if row.source.platform == "feed" else row.links
        domains = {_domain(link) for link in addresses if link}
        counter.update(d for d in domains if d)
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [DomainCount(domain, count) for domain, count in ranked[:TOP_DOMAINS]]


def _domain(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.removeprefix("www.")


def tabulate(
    this_week: Sequence[PostRow],
    names: Any,
    own: str | None,
    *,
    always: Sequence[str] = (),
) -> list[TableRow]:
    """Posts, engagement, median engagement and share of posts per name (a post may count under
    several names, as a source may be in several groups); most posts first."""
    grouped: dict[str, list[PostRow]] = {name: [] for name in always}
    for row in this_week:
        for name in names(row):
            grouped.setdefault(name, []).append(row)
    total = len(this_week)
    table = [
        TableRow(
            name=name,
            posts=len(items),
            engagement=sum(r.engagement for r in items),
            # Posts without counts (news) would pull the median to zero without saying anything.
            median=float(statistics.median([r.engagement for r in items if r.counts is not None]))
            if any(r.counts is not None for r in items)
            else 0.0,
            share=len(items) / total if total else 0.0,
            own=own is not None and name == own,
        )
        for name, items in grouped.items()
    ]
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


def find_mentions(this_week: Sequence[PostRow], keywords: Sequence[str]) -> list[PostRow]:
    """The week's posts whose title or text contains a keyword, case-insensitively; newest
    first."""
    wanted = [k.casefold() for k in keywords if k.strip()]
    if not wanted:
        return []
    return [
        row
        for row in this_week
        if any(k in f"{row.title or ''}\n{row.text or ''}".casefold() for k in wanted)
    ]


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
