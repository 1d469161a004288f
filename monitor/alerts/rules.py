"""What alert rules decide, without I/O: which new posts a keyword rule matches, whether a
selection's posts spike, which watched sources have gone quiet. Times come in as arguments.

A query is matched as SQLite's full-text index matches it (monitor.search): Snowball Swedish
stems of the title and of the text, a term a run of whole stems in either (a prefix term: the
last stem's start). The same on both databases, so a rule fires alike wherever it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import AlertRuleConfig
from monitor.query import ParsedQuery, Term, parse_query
from monitor.stems import stem_text, stem_words

# A spike is measured against the same weekday and hours of this many weeks before.
BASELINE_WEEKS = 4
# "Regularly" for a silence rule: its min_posts are counted over this span before the last post.
REGULAR_SPAN = timedelta(weeks=4)


@dataclass(frozen=True)
class NewPost:
    """A post first seen in this pass, with what rules filter on and messages show."""

    id: int
    source_key: str
    source_platform: str  # the source's own platform key ("feed" for every feed)
    channel: str  # the platform it is shown under (`sources.channel`: "youtube" for its feed)
    organisation: str
    groups: tuple[str, ...]
    published_at: datetime
    title: str | None
    text: str | None
    url: str | None
    stems: PostStems | None = None  # as stored by the index, when the database keeps them


@dataclass(frozen=True)
class PostStems:
    """A post's title and text as the index holds them, in one string: the title's stems, " | ",
    the text's, padded with a space at each end. A phrase is found as " stem stem " (a prefix
    term without the last space); none can span the two, as "|" is no stem. `words` holds each
    stem once: a one-word term is a set lookup, not a search through the text."""

    text: str
    words: frozenset[str]

    @classmethod
    def of(cls, title: str | None, text: str | None) -> PostStems:
        return cls.stored(stem_text(title), stem_text(text))

    @classmethod
    def stored(cls, title_stems: str | None, text_stems: str | None) -> PostStems:
        """From stems already made: what SQLite's index keeps (`posts_search_content`)."""
        joined = f" {title_stems or ''} | {text_stems or ''} "
        return cls(joined, frozenset(joined.split()))


@dataclass(frozen=True)
class Selection:
    """A rule's filters: values within one are alternatives, filters combine with AND."""

    groups: frozenset[str] = frozenset()
    platforms: frozenset[str] = frozenset()
    organisations: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()

    def admits(
        self,
        source_key: str,
        platforms: tuple[str, str],
        organisation: str,
        groups: Sequence[str],
    ) -> bool:
        """`platforms`: the source's own and the one it is shown under, either matching (as
        `--platform youtube` finds a YouTube channel's feed)."""
        return (
            (not self.sources or source_key in self.sources)
            and (not self.platforms or not self.platforms.isdisjoint(platforms))
            and (not self.organisations or organisation in self.organisations)
            and (not self.groups or not self.groups.isdisjoint(groups))
        )


@dataclass(frozen=True)
class _Needle:
    """A term as searched for: the stems that must all be among the post's, and the run of
    stems to find in its text when that is not enough (a phrase; a prefix, whose last stem may
    go on: " snö" finds " snöfall ")."""

    whole: tuple[str, ...]
    run: str | None

    def found(self, stems: PostStems) -> bool:
        words = stems.words
        for stem in self.whole:
            if stem not in words:
                return False
        return self.run is None or self.run in stems.text


def _needle(term: Term) -> _Needle:
    stems = stem_words(" ".join(term.words))
    if term.prefix:
        return _Needle(tuple(stems[:-1]), " " + " ".join(stems))
    if len(stems) == 1:
        return _Needle((stems[0],), None)
    return _Needle(tuple(stems), " " + " ".join(stems) + " ")


class QueryMatcher:
    """A parsed query as needles to look for in `PostStems`."""

    def __init__(self, query: ParsedQuery) -> None:
        self.required = tuple(tuple(map(_needle, group)) for group in query.required)
        self.excluded = tuple(map(_needle, query.excluded))
        # Stems of which a matching post has at least one: those of the first required group
        # made of plain words (most rules'). A post with none of them is passed over with one
        # set operation; None when every group has a phrase or a prefix.
        self.triggers: frozenset[str] | None = next(
            (
                frozenset(n.whole[0] for n in group)
                for group in self.required
                if all(n.run is None for n in group)
            ),
            None,
        )

    def matches(self, stems: PostStems) -> bool:
        if self.triggers is not None and self.triggers.isdisjoint(stems.words):
            return False
        for group in self.required:
            for needle in group:
                if needle.found(stems):
                    break
            else:
                return False
        return not any(needle.found(stems) for needle in self.excluded)


@dataclass(frozen=True)
class Rule:
    """An `[[alerts]]` rule ready to decide: its filters and its query compiled once."""

    config: AlertRuleConfig
    selection: Selection
    matcher: QueryMatcher | None  # None: every post of the selection
    filtered: bool  # whether the selection narrows anything

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> str:
        return self.config.kind

    def admits(self, post: NewPost, stems: PostStems) -> bool:
        if self.filtered and not self.selection.admits(
            post.source_key, (post.source_platform, post.channel), post.organisation, post.groups
        ):
            return False
        return self.matcher is None or self.matcher.matches(stems)


def compile_rule(config: AlertRuleConfig) -> Rule:
    """The rule with its query parsed (the config validated it already)."""
    selection = Selection(
        frozenset(config.groups),
        frozenset(config.platforms),
        frozenset(config.organisations),
        frozenset(config.sources),
    )
    matcher = QueryMatcher(parse_query(config.query)) if config.query is not None else None
    return Rule(config, selection, matcher, selection != Selection())


def match_posts(rules: Sequence[Rule], posts: Sequence[NewPost]) -> dict[str, list[NewPost]]:
    """Per rule name, the posts it matches, oldest first: one pass over the posts, each
    stemmed once whatever the number of rules."""
    matched: dict[str, list[NewPost]] = {}
    for post in sorted(posts, key=lambda p: (p.published_at, p.id)):
        stems = post.stems or PostStems.of(post.title, post.text)
        for rule in rules:
            if rule.admits(post, stems):
                matched.setdefault(rule.name, []).append(post)
    return matched


@dataclass(frozen=True)
class SpikeCheck:
    """The posts (or their engagement) of the last `hours` against the same hours of the weeks
    before."""

    start: datetime  # of the window measured
    end: datetime
    current: int  # posts, or engagement
    baseline: float  # the mean over BASELINE_WEEKS
    fired: bool


def check_spike(
    published: Sequence[datetime],
    now: datetime,
    hours: int,
    factor: float,
    minimum: int,
    weights: Sequence[int] | None = None,
) -> SpikeCheck:
    """Whether what was published in the `hours` up to `now` is at least `minimum` and at
    least `factor` times the mean of the same weekday and hours of the BASELINE_WEEKS weeks
    before (a weekly rhythm: Monday mornings are busy everywhere).

    What is counted: the posts, or with `weights` (one a post: its engagement) their sum."""
    span = timedelta(hours=hours)
    amounts = [1] * len(published) if weights is None else list(weights)

    def counted(end: datetime) -> int:
        return sum(
            amount
            for moment, amount in zip(published, amounts, strict=True)
            if end - span < moment <= end
        )

    current = counted(now)
    baseline = sum(counted(now - timedelta(weeks=k)) for k in range(1, BASELINE_WEEKS + 1))
    mean = baseline / BASELINE_WEEKS
    fired = current >= minimum and current >= factor * mean
    return SpikeCheck(now - span, now, current, mean, fired)


def spike_period(now: datetime, hours: int) -> datetime:
    """The start of the `hours`-long period (counted from the epoch, UTC) that `now` falls in:
    a rule fires at most once per period, however many passes see the spike."""
    span = int(timedelta(hours=hours).total_seconds())
    seconds = int(now.timestamp())
    return datetime.fromtimestamp(seconds - seconds % span, tz=now.tzinfo)


@dataclass(frozen=True)
class SourceActivity:
    """A watched source's posting, as a silence rule needs it."""

    key: str
    organisation: str
    platform: str  # as shown
    last_post_at: datetime | None
    posts_before: int  # in the REGULAR_SPAN before its last post (that one included)
    last_success_at: datetime | None  # the latest collection that succeeded


def find_quiet_sources(
    activity: Sequence[SourceActivity], days: int, min_posts: int
) -> list[SourceActivity]:
    """The sources that posted regularly (at least `min_posts` in the REGULAR_SPAN up to their
    last post) and were then seen, by a collection that succeeded, to have posted nothing for
    `days`. A source we failed to collect is not called quiet: the silence may be ours."""
    return [
        source
        for source in activity
        if seen_quiet(source.last_post_at, source.last_success_at, days)
        and source.posts_before >= min_posts
    ]


def seen_quiet(last_post_at: datetime | None, last_success_at: datetime | None, days: int) -> bool:
    """Whether a collection that succeeded saw a source without a new post for `days`."""
    return (
        last_post_at is not None
        and last_success_at is not None
        and last_success_at - last_post_at >= timedelta(days=days)
    )


def next_attempt_at(attempts: int, now: datetime, retry_after: int) -> datetime:
    """When a delivery that failed `attempts` times is tried again: `retry_after` seconds after
    the first failure, doubling after each next one."""
    return now + timedelta(seconds=retry_after * 2 ** (attempts - 1))
