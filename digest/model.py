"""The digest as plain data: what `build` produces and `render` turns into an email.

Nothing here queries or renders. Every text field holds plain text taken from untrusted posts;
the renderer escapes it. Every URL is http(s) or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Week:
    """An ISO week in a time zone: Monday 00:00 to the next Monday 00:00, local time."""

    year: int
    week: int
    timezone: str = "Europe/Stockholm"

    @classmethod
    def parse(cls, text: str, timezone: str = "Europe/Stockholm") -> Week:
        """From "2026-W48". Raises ValueError for anything else or a week the year lacks."""
        year, _, number = text.strip().upper().partition("-W")
        week = cls(int(year), int(number), timezone)
        week.first_day  # noqa: B018 - validates: date.fromisocalendar raises for W53 of a 52-week year
        return week

    @classmethod
    def previous(cls, now: datetime, timezone: str = "Europe/Stockholm") -> Week:
        """The last complete ISO week before `now`, in the time zone."""
        local = now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=7)
        year, week, _ = local.isocalendar()
        return cls(year, week, timezone)

    @property
    def first_day(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def last_day(self) -> date:
        return date.fromisocalendar(self.year, self.week, 7)

    @property
    def start(self) -> datetime:
        """Monday 00:00 local, as an aware datetime (correct across daylight-saving changes)."""
        return datetime.combine(self.first_day, datetime.min.time(), ZoneInfo(self.timezone))

    @property
    def end(self) -> datetime:
        """The next Monday 00:00 local (exclusive)."""
        return datetime.combine(
            self.last_day + timedelta(days=1), datetime.min.time(), ZoneInfo(self.timezone)
        )

    def shifted(self, weeks: int) -> Week:
        """The week `weeks` later (negative: earlier)."""
        year, week, _ = (self.first_day + timedelta(weeks=weeks)).isocalendar()
        return Week(year, week, self.timezone)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


@dataclass(frozen=True)
class Recipient:
    """Who gets a digest and what they follow (from `[[recipients]]`)."""

    email: str
    name: str | None = None
    language: str = "sv"  # sv | en
    organisation: str | None = None  # their own, highlighted against peers
    groups: tuple[str, ...] = ()  # follow these groups' sources; all sources when nothing is set
    organisations: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()  # posts matching them get the "Omnämnanden" section
    skip_empty: bool = True


@dataclass(frozen=True)
class PostItem:
    """One post as a digest shows it."""

    post_id: int
    organisation: str
    source_key: str
    platform: str  # feed | x | youtube | …, as `platforms.label_platform` shows it
    kind: str
    published_at: datetime  # aware, UTC
    title: str | None
    excerpt: str  # plain text, at most 280 characters, cut at a word with "…"
    url: str | None  # http(s) only
    counts: dict[str, int] = field(default_factory=dict)  # METRIC_NAMES -> latest count
    engagement: int = 0  # likes + reposts + replies + quotes + reactions (views not included)
    score: float = 0.0  # engagement normalised per platform, for ranking across platforms
    thumbnail_url: str | None = None  # http(s) only
    duration_s: int | None = None
    views: int | None = None


@dataclass(frozen=True)
class Summary:
    """Veckan i korthet."""

    posts: int
    engagement: int  # of the posts with counts; see engagement_measured
    posts_previous: int  # the week before
    engagement_previous: int
    posts_average: float  # mean of the four weeks before
    engagement_average: float
    most_active_organisation: str | None
    most_active_posts: int
    top_post: PostItem | None
    # Whether any post of the week has counts: without, "Engagemang: 0" would say that nobody
    # engaged where nothing was measured (feeds have no counts).
    engagement_measured: bool = True


@dataclass(frozen=True)
class OrganisationNews:
    """Nytt från organisationerna: one organisation's posts without counts, newest first."""

    organisation: str
    posts: tuple[PostItem, ...]
    more: int = 0  # posts beyond those listed


@dataclass(frozen=True)
class Trend:
    term: str  # a hashtag (with '#'), a word, or a two-word phrase ("ny skola")
    count: int  # this week
    baseline: float  # weekly mean over the four weeks before


@dataclass(frozen=True)
class DomainCount:
    domain: str
    count: int


@dataclass(frozen=True)
class TableRow:
    """A row of the per-platform or per-organisation/group tables."""

    name: str  # an organisation, a group's declared name, or a platform label
    posts: int
    engagement: int | None  # None: none of the row's posts has counts (not measured, not 0)
    median: float | None  # engagement per post with counts; None likewise
    share: float  # share of voice: this row's posts / all posts, 0..1
    own: bool = False  # the recipient's own organisation


@dataclass(frozen=True)
class ChannelChange:
    organisation: str
    platform: str  # the source's platform label
    source_key: str
    # added: the source was added to the config (its first posts are history, not news);
    # started: a watched account posted for the first time; moved: the organisation's first
    # posts on a platform after posting elsewhere (`previous`); silent: no post for 30 days.
    change: str
    since: datetime | None = None  # silent: the last post; else the first post
    previous: tuple[str, ...] = ()  # moved: the platforms the organisation posted on before


@dataclass(frozen=True)
class DataQuality:
    """Datakvalitet: per platform, how complete the week's data is."""

    platform: str
    sources: int  # sources_ok + sources_failing + the sources not collected at all
    sources_ok: int  # collected, and not failing since
    sources_failing: int  # failed at least once and not since recovered
    covered_from: datetime | None  # earliest successful collection in the week
    covered_to: datetime | None  # latest


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and a digest of
# every source makes a thousand of these per recipient; nothing assigns to one after it is made.
@dataclass(slots=True)
class Comparison:
    """Jämförelse: one organisation on one platform in the week (digest/compare.py). None is
    "not measured" and is shown as "—", never as 0."""

    organisation: str
    platform: str
    posts: int
    engagement_per_post: float | None  # over the posts with counts; None: none had counts
    per_thousand_followers: float | None  # engagement per 1,000 followers
    followers: int | None  # at the week's end
    growth_week: int | None  # followers gained during the week
    growth_four_weeks: int | None  # … during the four weeks up to the week's end
    own: bool = False  # the recipient's own organisation


@dataclass(frozen=True)
class ChartWeek:
    """One week of an organisation's chart; widths in percent of its largest week."""

    week: Week
    posts: int
    engagement: int | None  # None: none of the organisation's posts has counts
    posts_width: int  # 0..100
    engagement_width: int


@dataclass(slots=True)
class OrganisationChart:
    """De senaste åtta veckorna: an organisation's posts and engagement per week, oldest first.
    Its `weeks` are made when read: a digest shows a few of the hundreds it ranks."""

    organisation: str
    first_week: Week
    posts: tuple[int, ...]
    engagement: tuple[int, ...] | None  # None: none of its posts in the weeks has counts
    own: bool = False

    @property
    def weeks(self) -> tuple[ChartWeek, ...]:
        from digest.compare import bar_widths  # digest.compare builds these

        post_widths = bar_widths(self.posts)
        engaged = self.engagement
        engagement_widths = bar_widths(engaged) if engaged else [0] * len(self.posts)
        return tuple(
            ChartWeek(
                week=self.first_week.shifted(n),
                posts=count,
                engagement=engaged[n] if engaged else None,
                posts_width=post_widths[n],
                engagement_width=engagement_widths[n],
            )
            for n, count in enumerate(self.posts)
        )


@dataclass(frozen=True)
class DigestData:
    recipient: Recipient
    week: Week
    generated_at: datetime
    summary: Summary
    top_posts: tuple[PostItem, ...] = ()
    news: tuple[OrganisationNews, ...] = ()
    dialog: tuple[PostItem, ...] = ()
    videos: tuple[PostItem, ...] = ()
    trends: tuple[Trend, ...] = ()
    domains: tuple[DomainCount, ...] = ()
    by_platform: tuple[TableRow, ...] = ()
    by_organisation: tuple[TableRow, ...] = ()
    by_group: tuple[TableRow, ...] = ()
    channel_changes: tuple[ChannelChange, ...] = ()
    quality: tuple[DataQuality, ...] = ()
    mentions: tuple[PostItem, ...] = ()  # posts matching the recipient's keywords
    group_names: dict[str, str] = field(default_factory=dict)  # key -> declared name
    comparisons: tuple[Comparison, ...] = ()  # per organisation and platform (digest/compare.py)
    charts: tuple[OrganisationChart, ...] = ()  # the last eight weeks per organisation

    @property
    def is_empty(self) -> bool:
        """Nothing was published by what the recipient follows."""
        return self.summary.posts == 0
