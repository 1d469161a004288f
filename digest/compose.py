"""Composing recipients' weekly digests from a loaded week: plain data in, `DigestData` out.

Pure: no database, no clock, no files. `digest.load` reads a week once into `WeekData` (its
`generated_at` is the run's "now"); each recipient's digest is then decided here by functions
working per followed source, so the rules can be read (and tested) apart from the SQL, and fifty
digests cost little more than one (lemon24/reader's Decider beside its Pipeline).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from digest.compare import (
    ActivityRow,
    FollowerRow,
    SourceWeeks,
    chart_organisations,
    compare_organisations,
    index_activity,
)
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
from monitor.terms import is_trend_term, phrase_text
from monitor.types import ENGAGEMENT_NAMES
from monitor.values import is_http_url

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
# ... and when more than one organisation uses it: one organisation's recurring phrase ("klockan
# 16" under each event of a municipality, issue 13) is its habit, not a trend.
TREND_MIN_ORGANISATIONS = 2
# Phrases rising across every source that each recipient's trends look for: twice the list, so
# that a recipient following part of the sources still finds theirs among them.
RISING_PHRASES = 2 * TREND_TERMS
VIDEO_KINDS = ("video", "live")

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class SourceInfo:
    """A source as the digest needs it."""

    id: int
    key: str
    platform: str  # as collected: feed | x | youtube | …
    organisation: str
    groups: tuple[str, ...]
    active: bool
    label: str = ""  # the platform readers know it by (`platforms.label_platform`)
    added_at: datetime | None = None  # when the source entered the config
    url: str | None = None  # a feed's address

    @property
    def shown(self) -> str:
        return self.label or self.platform


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
    # Posts per phrase of `WeekData.phrases` (only those), four weeks before.
    phrases: Counter[str] = field(default_factory=Counter)
    counted_weeks: list[int] = field(default_factory=lambda: [0] * BASELINE_WEEKS)
    # The week:
    week_posts: int = 0
    week_engagement: int = 0
    week_counted: list[int] = field(default_factory=list)  # engagement of posts with counts
    week_terms: Counter[str] = field(default_factory=Counter)
    week_phrases: Counter[str] = field(default_factory=Counter)  # of `WeekData.phrases` only
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
    # Per organisation, the hosts of its own websites and accounts: links there are not shared.
    own_hosts: dict[str, frozenset[str]] = field(default_factory=dict)
    # For comparisons and charts (digest/compare.py): each source's weeks as rows, this week
    # and the seven before, and its followers at the week's boundaries.
    activity: dict[int, SourceWeeks] = field(default_factory=dict)
    followers: dict[int, FollowerRow] = field(default_factory=dict)
    # The phrases rising across every loaded source with support (`find_rising_phrases`): the
    # only ones a recipient's trends look for among the sources they follow.
    phrases: tuple[str, ...] = ()


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
        # A recipient who follows YouTube follows YouTube channels' feeds too.
        if recipient.platforms and not {source.platform, source.shown} & set(recipient.platforms):
            continue
        chosen.append(source)
    return sorted(chosen, key=lambda s: s.key)


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
            summary = history[row.source.id] = new_history()
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


def list_activity(
    history: dict[int, SourceHistory], earlier: Iterable[ActivityRow]
) -> dict[int, SourceWeeks]:
    """Per source, its week and the four before (from its sums) and the `earlier` weeks'
    rows, as comparisons and charts take them; made once for every recipient."""
    rows = list(earlier)
    for source_id, summary in history.items():
        week = ActivityRow(
            source_id, 0, summary.week_posts, len(summary.week_counted), summary.week_engagement
        )
        rows.append(week)
        rows.extend(
            ActivityRow(
                source_id,
                BASELINE_WEEKS - index,
                summary.posts[index],
                summary.counted_weeks[index],
                summary.engagement[index],
            )
            for index in range(BASELINE_WEEKS)
            if summary.posts[index]
        )
    return index_activity(rows)


def _engagement_order(row: PostRow) -> tuple[int, float, int]:
    return (-row.engagement, -row.published_at.timestamp(), row.id)


def _dialog_order(row: PostRow) -> tuple[int, int, float, int]:
    return (
        -(row.counts or {}).get("replies", 0),
        -row.engagement,
        -row.published_at.timestamp(),
        row.id,
    )


def new_history() -> SourceHistory:
    """A source's sums before any post is counted in."""
    return SourceHistory([0] * BASELINE_WEEKS, [0] * BASELINE_WEEKS)


def engagement_of(counts: dict[str, int] | None) -> int:
    """Likes, reposts, replies, quotes and reactions added up; views are not engagement."""
    if not counts:
        return 0
    return sum(counts.get(name, 0) for name in ENGAGEMENT_NAMES)


def compose_digest(
    recipient: Recipient,
    data: WeekData,
    top_count: int,
    group_names: Mapping[str, str] | None = None,
) -> DigestData:
    """Decide every section of a recipient's digest from the loaded week; no I/O. Groups are
    shown by their declared `group_names` (`[groups.KEY] name`), else by key."""
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
    names = group_names or {}
    return DigestData(
        recipient=recipient,
        week=week,
        generated_at=data.generated_at,
        summary=_summarise(this_week, [h for _, h in active], top),
        top_posts=tuple(_item(r, scores) for r in top),
        news=tuple(_news(this_week, scores)),
        dialog=tuple(_dialog(this_week, scores)),
        videos=tuple(_item(r, scores) for r in videos),
        trends=tuple(
            find_trends(
                {s.id: h for s, h in active},
                data.history,
                data.terms,
                {s.id: s.organisation for s, _ in active},
                data.phrases,
            )
        ),
        domains=tuple(count_domains(this_week, own, data.own_hosts)),
        by_platform=tuple(tabulate(this_week, lambda s: (s.shown,), None)),
        by_organisation=tuple(
            tabulate(
                this_week,
                lambda s: (s.organisation,),
                own,
                always=_own_followed(followed, own),
            )
        ),
        by_group=tuple(tabulate(this_week, lambda s: [names.get(g, g) for g in s.groups], None)),
        channel_changes=tuple(
            find_channel_changes(followed, data.all_sources, data.spans, start, end)
        ),
        quality=tuple(assess_quality(followed, data.runs)),
        mentions=tuple(_item(r, scores) for r in mentions),
        group_names={key: names[key] for key in recipient.groups if key in names},
        comparisons=tuple(compare_organisations(followed, data.activity, data.followers, own)),
        charts=tuple(chart_organisations(followed, data.activity, week, own)),
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
            total = totals[source.shown]
            total[0] += history.counted_engagement
            total[1] += history.counted
    return {platform: engagement / count for platform, (engagement, count) in totals.items()}


def _score_posts(rows: Iterable[PostRow], means: dict[str, float]) -> dict[int, float]:
    """Engagement divided by the platform's mean. Posts without counts get no score."""
    scores = {}
    for row in rows:
        if row.counts is not None:
            mean = means.get(row.source.shown, 0.0)
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
        engagement_measured=any(h.week_counted for _, h in this_week),
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
    followed: Mapping[int, SourceHistory],
    history: dict[int, SourceHistory],
    totals: TermTotals,
    organisations: Mapping[int, str] | None = None,
    phrases: Sequence[str] = (),
) -> list[Trend]:
    """Hashtags, words and two-word phrases used in clearly more posts this week than in an
    average week of the four before, among the `followed` sources (id -> its history); the
    strongest rise first.

    A trend needs support: not a stop word (`terms.is_trend_term`), and used by at least
    `TREND_MIN_ORGANISATIONS` organisations (`organisations`: source id -> organisation; every
    source counts as its own when not given). Phrases are looked for among `phrases` (those
    rising across every source, `find_rising_phrases`), with the same rules; a word that
    trends only through a phrase shown is left out (`merge_trends`).
    """
    words = _find_word_trends(followed, history, totals, organisations)
    return merge_trends(words, _find_phrase_trends(followed, phrases, organisations))


def _find_word_trends(
    followed: Mapping[int, SourceHistory],
    history: dict[int, SourceHistory],
    totals: TermTotals,
    organisations: Mapping[int, str] | None,
) -> list[Trend]:
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
    candidates = {
        term for term, count in current.items() if count >= TREND_MIN_COUNT and is_trend_term(term)
    }
    if not candidates:
        return []
    before = Counter({term: totals.before[term] for term in candidates} if complement else {})
    for summary in summed:
        for term in candidates & summary.terms.keys():
            before[term] += sign * summary.terms[term]
    return _supported(rank_trends(current, before, candidates, limit=None), followed, organisations)


def _find_phrase_trends(
    followed: Mapping[int, SourceHistory],
    phrases: Sequence[str],
    organisations: Mapping[int, str] | None,
) -> list[Trend]:
    """The `phrases` rising among the followed sources: a few keys looked up per source."""
    if not phrases:
        return []
    current: Counter[str] = Counter()
    before: Counter[str] = Counter()
    for summary in followed.values():
        week, earlier = summary.week_phrases, summary.phrases
        for phrase in phrases:
            current[phrase] += week.get(phrase, 0)
            before[phrase] += earlier.get(phrase, 0)
    candidates = {phrase for phrase, count in current.items() if count >= TREND_MIN_COUNT}
    ranked = rank_trends(current, before, candidates, limit=None)
    return [
        replace(trend, term=phrase_text(trend.term))
        for trend in _supported(ranked, followed, organisations, phrases=True)
    ]


def _supported(
    ranked: Sequence[Trend],
    followed: Mapping[int, SourceHistory],
    organisations: Mapping[int, str] | None,
    *,
    phrases: bool = False,
) -> list[Trend]:
    """The first `TREND_TERMS` of the ranked trends that enough organisations used. Counted
    for the strongest rises only, until the list is full: a term's organisations are a walk
    over the followed sources."""
    supported = []
    for trend in ranked:
        if _organisations_using(trend.term, followed, organisations, phrases) >= (
            TREND_MIN_ORGANISATIONS
        ):
            supported.append(trend)
            if len(supported) == TREND_TERMS:
                break
    return supported


def merge_trends(words: Sequence[Trend], phrases: Sequence[Trend]) -> list[Trend]:
    """Words and phrases in one list, strongest rise first, without counting a phrase twice:
    a word is left out when, without the posts of a phrase shown that holds it, it would not
    have the `TREND_MIN_COUNT` posts a trend needs ("skola" when "ny skola" says it)."""
    kept = [
        word
        for word in words
        if not any(
            word.term in phrase.term.split(" ") and word.count - phrase.count < TREND_MIN_COUNT
            for phrase in phrases
        )
    ]
    return sorted([*kept, *phrases], key=_trend_order)[:TREND_TERMS]


@dataclass(frozen=True)
class PhraseTexts:
    """The phrases of each source's posts in a window as one string (`posts.phrases`, posts
    two spaces apart, padded with a space: a phrase is found whole as " ny_skola "), and how
    many posts used each phrase over all the sources.

    Phrases stay text until a few are wanted: counted per source, every phrase of every post
    would be most of a week's load (issue 13: trends must stay cheap)."""

    by_source: dict[int, str]
    totals: Counter[str]

    @classmethod
    def of(cls, by_source: dict[int, str]) -> PhraseTexts:
        return cls(by_source, Counter(" ".join(by_source.values()).split()))


def find_rising_phrases(
    week: PhraseTexts, before: PhraseTexts, organisations: Mapping[int, str]
) -> tuple[str, ...]:
    """The phrases that rise across all the loaded sources with support, strongest first,
    at most `RISING_PHRASES`: what each recipient's trends then look for among the sources
    they follow. Found once a week, so that a digest sums a few phrases per source rather
    than every phrase of every source (a phrase rising only within a few organisations while
    others use it steadily is not among them)."""
    candidates = {phrase for phrase, count in week.totals.items() if count >= TREND_MIN_COUNT}
    rising: list[str] = []
    for trend in rank_trends(week.totals, before.totals, candidates, limit=None):
        whole = f" {trend.term} "
        users = {organisations[i] for i, text in week.by_source.items() if whole in text}
        if len(users) >= TREND_MIN_ORGANISATIONS:
            rising.append(trend.term)
            if len(rising) == RISING_PHRASES:
                break
    return tuple(rising)


def count_phrases(texts: PhraseTexts, phrases: Sequence[str]) -> dict[int, Counter[str]]:
    """Per source, how many of its posts used each of `phrases` (a post holds a phrase once)."""
    counted: dict[int, Counter[str]] = {}
    for source_id, text in texts.by_source.items():
        found = Counter({p: n for p in phrases if (n := text.count(f" {p} "))})
        if found:
            counted[source_id] = found
    return counted


def _organisations_using(
    term: str,
    followed: Mapping[int, SourceHistory],
    organisations: Mapping[int, str] | None,
    phrases: bool = False,
) -> int:
    """How many organisations among the followed sources used the term (or phrase) this week."""
    users = {
        organisations[source_id] if organisations else source_id
        for source_id, summary in followed.items()
        if term in (summary.week_phrases if phrases else summary.week_terms)
    }
    return len(users)


def _trend_order(trend: Trend) -> tuple[float, int, str]:
    # +1 keeps a new term's ratio finite and favours terms with more posts behind them.
    return (-trend.count / (trend.baseline + 1), -trend.count, trend.term)


def rank_trends(
    current: Counter[str],
    before: Counter[str],
    candidates: set[str],
    limit: int | None = TREND_TERMS,
) -> list[Trend]:
    """The candidates that at least double their usual weekly count (+1); strongest rise first."""
    trends = []
    for term in candidates:
        baseline = before[term] / BASELINE_WEEKS
        if current[term] >= TREND_FACTOR * baseline + 1:
            trends.append(Trend(term, current[term], baseline))
    trends.sort(key=_trend_order)
    return trends[:limit]


def count_domains(
    this_week: Sequence[Followed],
    own: str | None,
    own_hosts: Mapping[str, frozenset[str]] | None = None,
) -> list[DomainCount]:
    """The websites others than the recipient's own organisation link to most; each post counts
    a domain once.

    Only links to others' sites count: a post's own address (an article on the publisher's
    site, a post's page on its platform) never does (`PostRow.domains`), and neither does a
    link to the publishing organisation's own sites and accounts (`own_hosts`), which would
    rank every publisher's website first (issue 13: "mastodon.nu, flen.se").
    """
    counter: Counter[str] = Counter()
    hosts = own_hosts or {}
    for source, history in this_week:
        if own and source.organisation == own:
            continue
        theirs = hosts.get(source.organisation, frozenset())
        for domain, count in history.week_domains.items():
            if not is_within(domain, theirs):
                counter[domain] += count
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [DomainCount(domain, count) for domain, count in ranked[:TOP_DOMAINS]]


def is_within(domain: str, hosts: Iterable[str]) -> bool:
    """Whether a domain is one of the hosts or a subdomain of one (nyheter.flen.se, flen.se)."""
    return any(domain == host or domain.endswith("." + host) for host in hosts)


def domain_of(url: str) -> str | None:
    """The host a link points to, without "www.", for the shared-domains section; None for
    anything but http(s)."""
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
                # Nothing measured is not zero: a row of feeds has no counts at all.
                engagement=sum(counted) if counted else None,
                # Posts without counts (news) would pull the median to zero saying nothing.
                median=float(statistics.median(counted)) if counted else None,
                share=posts_ / total if total else 0.0,
                own=own is not None and name == own,
            )
        )
    table.sort(key=lambda t: (-t.posts, -(t.engagement or 0), t.name))
    return table


def find_channel_changes(
    followed: Sequence[SourceInfo],
    all_sources: dict[int, SourceInfo],
    spans: dict[int, SourceSpan],
    start: datetime,
    end: datetime,
) -> list[ChannelChange]:
    """What changed in the followed channels, each said as what it is (issue 13):

    - added: the source entered the config during the week or since, and its first stored post
      is of the week: its posts are the history collection found, not a new account;
    - moved: a watched organisation's first posts on a platform after posting only on others
      (from X to Mastodon or Bluesky);
    - started: a watched account's first posts;
    - silent: no post for 30 days or more.
    """
    first_on: dict[tuple[str, str], datetime] = {}
    used_before: dict[str, set[str]] = defaultdict(set)
    for source_id, history in spans.items():
        owner = all_sources.get(source_id)
        if owner is None:
            continue
        key = (owner.organisation, owner.shown)
        first_on[key] = min(first_on.get(key, history.first), history.first)
        if history.first < start:
            used_before[owner.organisation].add(owner.shown)
    changes = []
    for source in followed:
        span = spans.get(source.id)
        if was_added(source, span, start, end):
            changes.append(_change(source, "added", span.first if span else None))
        elif span is None:
            continue
        elif start <= span.first < end:
            before = used_before[source.organisation]
            if first_on[(source.organisation, source.shown)] >= start and before:
                changes.append(_change(source, "moved", span.first, tuple(sorted(before))))
            else:
                changes.append(_change(source, "started", span.first))
        elif span.newest <= end - SILENT_AFTER:
            changes.append(_change(source, "silent", span.newest))
    order = {"moved": 0, "started": 1, "added": 2, "silent": 3}
    changes.sort(key=lambda c: (order[c.change], c.organisation, c.platform, c.source_key))
    return changes


def was_added(source: SourceInfo, span: SourceSpan | None, start: datetime, end: datetime) -> bool:
    """Whether the source entered the config during the week, or since (a digest made later)
    with its first stored post in the week: what it posted then is news to us, not new."""
    if source.added_at is None or source.added_at < start:
        return False
    return source.added_at < end or (span is not None and span.first >= start)


def _change(
    source: SourceInfo, change: str, since: datetime | None, previous: tuple[str, ...] = ()
) -> ChannelChange:
    return ChannelChange(source.organisation, source.shown, source.key, change, since, previous)


def assess_quality(
    followed: Sequence[SourceInfo], runs: dict[int, RunSummary]
) -> list[DataQuality]:
    """Per platform: how many followed sources were collected without failing since, how many
    were left failing, and the span the successful collections cover; the rest were not
    collected at all."""
    by_platform: dict[str, list[SourceInfo]] = defaultdict(list)
    for source in followed:
        by_platform[source.shown].append(source)
    result = []
    for platform in sorted(by_platform):
        summaries = [runs.get(s.id) for s in by_platform[platform]]
        succeeded = [r for r in summaries if r and r.last_success]
        failing = [
            r
            for r in summaries
            if r and r.last_failure and (r.last_success is None or r.last_success < r.last_failure)
        ]
        result.append(
            DataQuality(
                platform=platform,
                sources=len(summaries),
                sources_ok=len(succeeded) - sum(1 for r in failing if r.last_success),
                sources_failing=len(failing),
                covered_from=min(
                    (r.first_success for r in succeeded if r.first_success), default=None
                ),
                covered_to=max((r.last_success for r in succeeded if r.last_success), default=None),
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
        platform=row.source.shown,
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
    """The URL when it is http(s) with a host, else None: post content is untrusted (the store
    keeps only such addresses; rows stored before it did may hold others)."""
    url = url.strip() if isinstance(url, str) else None
    return url if is_http_url(url) else None
