"""Turn a week's `DigestData` into the email a communicator reads: subject, HTML and plain text.

Everything here is a pure function of the data and `[digest]` settings: no database, no network.
Post text is untrusted (issue 5): Jinja2 autoescapes the HTML template, nothing from a post is
ever marked safe, and a link is written only when its URL is http(s). Numbers and dates go through
Babel so Swedish reads "1 234 inlägg", "+8 %" and English "1,234 posts", "+8%".
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

import css_inline
import jinja2
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import (
    format_decimal,
    format_percent,
    get_minus_sign_symbol,
    get_plus_sign_symbol,
)

from digest.links import (
    WebLinks,
    find_more_links,
    follow_filters,
    http_url,
    mailto_url,
    personalise_url,
)
from digest.model import (
    ChannelChange,
    ChartWeek,
    Comparison,
    DataQuality,
    DigestData,
    DomainCount,
    OrganisationChart,
    OrganisationNews,
    PostItem,
    TableRow,
    Trend,
)
from monitor.config import DigestConfig
from monitor.platforms import platform_name

TEMPLATES = Path(__file__).parent / "templates"

# Gmail clips a message whose HTML passes 102 KB and hides the rest (with the footer and its
# unsubscribe link) behind "View entire message"; 90 KB leaves room for headers and encoding.
MAX_HTML_BYTES = 90_000

ASCII_SPACES = re.compile(r"[ \t\r\n\f\v]+")

LOCALES = {"sv": "sv_SE", "en": "en_GB"}  # en_GB: day before month, 24-hour clock, like Sweden

# What the digest writes where a figure cannot be measured (a feed's engagement, an account
# without a follower count): never 0, which would say "measured, and nothing".
UNMEASURED = "—"
# The longest bar of a chart takes this share of its cell; its number stands in the rest.
BAR_SHARE = 75

# A title is not cut by the builder (only the excerpt is); a hostile feed could send megabytes.
MAX_TITLE_CHARS = 200

# What the reader sees for each platform key; news sites and blogs are one kind to a reader.
PLATFORM_NAMES = {
    "sv": {"feed": "Webb/nyhetsflöde"},
    "en": {"feed": "Web/news feed"},
}

# Count labels in METRIC_NAMES order, (singular, plural). Views lead: they are what a video has.
COUNT_LABELS = {
    "sv": {
        "views": ("visning", "visningar"),
        "likes": ("gilla-markering", "gilla-markeringar"),
        "reposts": ("delning", "delningar"),
        "replies": ("svar", "svar"),
        "quotes": ("citat", "citat"),
        "reactions": ("reaktion", "reaktioner"),
        "bookmarks": ("bokmärke", "bokmärken"),
    },
    "en": {
        "views": ("view", "views"),
        "likes": ("like", "likes"),
        "reposts": ("repost", "reposts"),
        "replies": ("reply", "replies"),
        "quotes": ("quote", "quotes"),
        "reactions": ("reaction", "reactions"),
        "bookmarks": ("bookmark", "bookmarks"),
    },
}

# Every sentence the digest says, per language. Placeholders are filled with str.format, after
# which the template escapes the whole sentence: organisation names and terms come from data.
TEXTS: dict[str, dict[str, str]] = {
    "sv": {
        "title": "Omvärldsbevakning",
        "week": "v. {n}",
        "post": "inlägg",
        "posts": "inlägg",
        "greeting": "Hej {name}!",
        "intro": "Här är veckans sammanfattning av vad organisationerna du följer har publicerat.",
        "brief": "Veckan i korthet",
        "brief_engagement": "Engagemang: {engagement}",
        "against_previous": "{change} mot veckan innan",
        "against_average": "{change} mot snittet för de fyra veckorna innan",
        "none_previous": "inga inlägg veckan innan",
        "engagement_note": (
            "Engagemang är summan av gilla-markeringar, delningar, svar, citat och reaktioner."
        ),
        "most_active": "Mest aktiv: {organisation} med {posts}.",
        "top_post": "Veckans mest engagerande inlägg: {organisation} på {platform}.",
        "empty_week": "Inga nya inlägg från dem du följer den här veckan.",
        "mentions": "Omnämnanden",
        "mentions_intro": "Inlägg som nämner dina bevakningsord: {keywords}.",
        "top_posts": "Mest engagerande inlägg",
        "top_posts_intro": (
            "Rangordnade efter engagemang i förhållande till vad som är vanligt på varje plattform."
        ),
        "news": "Nytt från organisationerna",
        "news_intro": "Från webbplatser och nyhetsflöden, nyast först.",
        "dialog": "Dialog",
        "dialog_intro": "Inläggen som fick flest svar och kommentarer.",
        "videos": "Nya videor",
        "video_length": "Längd {duration}",
        "trends": "Trender",
        "trends_intro": "Ord, uttryck och hashtaggar som ökar jämfört med de fyra veckorna innan.",
        "trend": "{term}: {count} gånger (i snitt {baseline} per vecka tidigare)",
        "domains": "Mest delade webbplatser",
        "domain": "{domain}: {count}",
        "link": "länk",
        "source": "källa",
        "sources": "källor",
        "links": "länkar",
        "by_platform": "Per plattform",
        "by_organisation": "Per organisation",
        "by_group": "Per grupp",
        "col_platform": "Plattform",
        "col_organisation": "Organisation",
        "col_group": "Grupp",
        "col_posts": "Inlägg",
        "col_engagement": "Engagemang",
        "col_median": "Median per inlägg",
        "col_share": "Andel av inläggen",
        "own": "din organisation",
        "channels": "Kanalförändringar",
        "channel_added": (
            "{organisation} på {platform} ({account}) lades till i bevakningen den här veckan."
        ),
        "channel_added_since": (
            "{organisation} på {platform} ({account}) lades till i bevakningen; "
            "det äldsta inlägget som hämtades är från {date}."
        ),
        "channel_started": "{organisation} började publicera på {platform} ({account}).",
        "channel_started_since": (
            "{organisation} började publicera på {platform} ({account}) {date}."
        ),
        "channel_moved": (
            "{organisation} har börjat publicera på {platform} ({account}); "
            "tidigare bara på {previous}."
        ),
        "channel_moved_since": (
            "{organisation} har börjat publicera på {platform} ({account}) {date}; "
            "tidigare bara på {previous}."
        ),
        "channel_silent": (
            "{organisation} har inte publicerat på {platform} ({account}) på över 30 dagar."
        ),
        "channel_silent_since": (
            "{organisation} har inte publicerat på {platform} ({account}) sedan {date}."
        ),
        "quality": "Datakvalitet",
        "quality_all_ok": "Alla {sources} källor hämtades utan fel under veckan.",
        "quality_some_failing": (
            "{ok} av {sources} källor hämtades utan fel under veckan; "
            "inlägg kan saknas från {gaps}."
        ),
        "quality_failing": "{sources} med fel",
        "quality_uncollected": "{sources} som inte hämtades",
        "col_sources_ok": "Källor utan fel",
        "col_sources_failing": "Med fel",
        "col_window": "Hämtat",
        "no_collection": "ingen lyckad hämtning",
        "more": "och {n} till",
        "more_organisations": "och {n} organisationer till",
        "open_post": "Öppna inlägget",
        "why": "Du får det här brevet på {email} eftersom du följer {following}.",
        "following_all": "alla bevakade källor",
        "following_groups": "grupperna {names}",
        "following_group": "gruppen {names}",
        "following_organisations": "{names}",
        "following_platforms": "på {names}",
        "view_in_browser": "Visa i webbläsaren",
        "recipient_page": "Se vad du följer eller avsluta prenumerationen:",
        "change": "Ändra vad du följer:",
        "unsubscribe": "Avsluta prenumerationen:",
        "unsubscribe_mail": "Vill du inte längre få brevet? Mejla",
        "unsubscribe_contact": "Vill du inte längre få brevet? Kontakta avsändaren.",
        "sender": "Avsändare: {sender}",
        "generated": "Den här sammanställningen är automatiskt genererad av Omvärld {date}.",
        "compare": "Jämförelse",
        "compare_intro": (
            "Veckans siffror per plattform för organisationerna du följer. "
            "— betyder att det inte går att mäta: webbflöden har varken engagemang eller följare."
        ),
        "col_per_post": "Engagemang per inlägg",
        "col_per_thousand": "Engagemang per 1 000 följare",
        "col_followers": "Följare",
        "col_growth_week": "Nya följare (veckan)",
        "col_growth_four": "Nya följare (4 veckor)",
        "charts": "De senaste åtta veckorna",
        "charts_intro": (
            "Inlägg och engagemang per vecka. Staplarna jämför varje organisations veckor "
            "med dess största vecka."
        ),
        "col_week": "Vecka",
        "charts_words": "Inlägg och engagemang per vecka, den äldsta först.",
        "chart_week": "{week}: {posts}, engagemang {engagement}",
    },
    "en": {
        "title": "Weekly monitoring",
        "week": "week {n}",
        "post": "post",
        "posts": "posts",
        "greeting": "Hello {name},",
        "intro": "Here is this week's summary of what the organisations you follow published.",
        "brief": "The week in brief",
        "brief_engagement": "Engagement: {engagement}",
        "against_previous": "{change} against the week before",
        "against_average": "{change} against the average of the four weeks before",
        "none_previous": "no posts the week before",
        "engagement_note": (
            "Engagement is the sum of likes, reposts, replies, quotes and reactions."
        ),
        "most_active": "Most active: {organisation} with {posts}.",
        "top_post": "The week's most engaging post: {organisation} on {platform}.",
        "empty_week": "No new posts from what you follow this week.",
        "mentions": "Mentions",
        "mentions_intro": "Posts that mention your keywords: {keywords}.",
        "top_posts": "Most engaging posts",
        "top_posts_intro": "Ranked by engagement relative to what is usual on each platform.",
        "news": "News from the organisations",
        "news_intro": "From websites and news feeds, newest first.",
        "dialog": "Conversation",
        "dialog_intro": "The posts that drew the most replies and comments.",
        "videos": "New videos",
        "video_length": "Length {duration}",
        "trends": "Trends",
        "trends_intro": "Words, phrases and hashtags rising against the four weeks before.",
        "trend": "{term}: {count} times (previously {baseline} a week on average)",
        "domains": "Most shared websites",
        "domain": "{domain}: {count}",
        "link": "link",
        "source": "source",
        "sources": "sources",
        "links": "links",
        "by_platform": "By platform",
        "by_organisation": "By organisation",
        "by_group": "By group",
        "col_platform": "Platform",
        "col_organisation": "Organisation",
        "col_group": "Group",
        "col_posts": "Posts",
        "col_engagement": "Engagement",
        "col_median": "Median per post",
        "col_share": "Share of voice",
        "own": "your organisation",
        "channels": "Channel changes",
        "channel_added": (
            "{organisation} on {platform} ({account}) was added to the monitoring this week."
        ),
        "channel_added_since": (
            "{organisation} on {platform} ({account}) was added to the monitoring; "
            "the oldest post collected is from {date}."
        ),
        "channel_started": "{organisation} started posting on {platform} ({account}).",
        "channel_started_since": (
            "{organisation} started posting on {platform} ({account}) on {date}."
        ),
        "channel_moved": (
            "{organisation} has started posting on {platform} ({account}); "
            "before, only on {previous}."
        ),
        "channel_moved_since": (
            "{organisation} has started posting on {platform} ({account}) on {date}; "
            "before, only on {previous}."
        ),
        "channel_silent": (
            "{organisation} has not posted on {platform} ({account}) for more than 30 days."
        ),
        "channel_silent_since": (
            "{organisation} has not posted on {platform} ({account}) since {date}."
        ),
        "quality": "Data quality",
        "quality_all_ok": "All {sources} sources were collected without errors during the week.",
        "quality_some_failing": (
            "{ok} of {sources} sources were collected without errors during the week; "
            "posts may be missing from {gaps}."
        ),
        "quality_failing": "{sources} failing",
        "quality_uncollected": "{sources} not collected",
        "col_sources_ok": "Sources without errors",
        "col_sources_failing": "Failing",
        "col_window": "Collected",
        "no_collection": "no successful collection",
        "more": "and {n} more",
        "more_organisations": "and {n} more organisations",
        "open_post": "Open the post",
        "why": "You receive this at {email} because you follow {following}.",
        "following_all": "all monitored sources",
        "following_groups": "the groups {names}",
        "following_group": "the group {names}",
        "following_organisations": "{names}",
        "following_platforms": "on {names}",
        "view_in_browser": "View in browser",
        "recipient_page": "See what you follow or unsubscribe:",
        "change": "Change what you follow:",
        "unsubscribe": "Unsubscribe:",
        "unsubscribe_mail": "To stop receiving it, email",
        "unsubscribe_contact": "To stop receiving it, contact the sender.",
        "sender": "Sender: {sender}",
        "generated": "This digest was automatically generated by Omvärld on {date}.",
        "compare": "Comparison",
        "compare_intro": (
            "The week's figures per platform for the organisations you follow. "
            "— means it cannot be measured: web feeds have neither engagement nor followers."
        ),
        "col_per_post": "Engagement per post",
        "col_per_thousand": "Engagement per 1,000 followers",
        "col_followers": "Followers",
        "col_growth_week": "New followers (week)",
        "col_growth_four": "New followers (4 weeks)",
        "charts": "The last eight weeks",
        "charts_intro": (
            "Posts and engagement per week. The bars compare each organisation's weeks with "
            "its largest week."
        ),
        "col_week": "Week",
        "charts_words": "Posts and engagement per week, the oldest first.",
        "chart_week": "{week}: {posts}, engagement {engagement}",
    },
}


@dataclass(frozen=True)
class RenderedDigest:
    """The finished email content; delivery adds headers and the MIME structure."""

    subject: str
    html: str
    text: str
    language: str  # sv | en, also the HTML lang attribute
    one_click_url: str | None = None  # the web app's signed unsubscribe, for List-Unsubscribe


@dataclass(frozen=True)
class SectionLimits:
    """How many items each list shows before "och N till"; halved while the HTML is too big."""

    top_posts: int
    mentions: int = 10
    news_organisations: int = 30
    news_posts: int = 5  # per organisation
    dialog: int = 5
    videos: int = 6
    trends: int = 10
    domains: int = 10
    table_rows: int = 25  # per-organisation and per-group tables; own rows are always kept
    channel_changes: int = 20
    comparisons: int = 2  # rows per platform besides the own organisation's
    charts: int = 2  # organisations; the own organisation's is always kept

    def halved(self) -> SectionLimits:
        """Every limit halved, never below one item: a section shrinks but does not vanish."""
        return SectionLimits(
            **{f.name: max(1, getattr(self, f.name) // 2) for f in dataclasses.fields(self)}
        )

    @property
    def smallest(self) -> bool:
        return all(getattr(self, f.name) == 1 for f in dataclasses.fields(self))


T = TypeVar("T")


@dataclass(frozen=True)
class Shown(Generic[T]):
    """The items a section lists and how many it leaves out."""

    items: tuple[T, ...]
    more: int = 0


@dataclass(frozen=True)
class NewsShown:
    """One organisation's news as listed: `more` counts the builder's rest and what was cut."""

    organisation: str
    posts: tuple[PostItem, ...]
    more: int


@dataclass(frozen=True)
class DigestView:
    """What the templates show: the data cut to the limits. Sections with no items are omitted."""

    mentions: Shown[PostItem]
    top_posts: Shown[PostItem]
    news: Shown[NewsShown]
    dialog: Shown[PostItem]
    videos: Shown[PostItem]
    trends: Shown[Trend]
    domains: Shown[DomainCount]
    by_organisation: Shown[TableRow]
    by_group: Shown[TableRow]
    channel_changes: Shown[ChannelChange]
    comparisons: Shown[Comparison]
    charts: Shown[OrganisationChart]


def cut(items: Sequence[T], limit: int) -> Shown[T]:
    """The first `limit` items and the count of the rest."""
    return Shown(tuple(items[:limit]), max(0, len(items) - limit))


Owned = TypeVar("Owned", TableRow, OrganisationChart)


def cut_table(rows: Sequence[Owned], limit: int) -> Shown[Owned]:
    """The first `limit` rows plus the recipient's own rows wherever they rank: they are the
    reason a reader looks at the table."""
    shown = list(rows[:limit]) + [row for row in rows[limit:] if row.own]
    return Shown(tuple(shown), len(rows) - len(shown))


def cut_news(news: Sequence[OrganisationNews], limits: SectionLimits) -> Shown[NewsShown]:
    organisations = cut(news, limits.news_organisations)
    return Shown(
        tuple(
            NewsShown(
                item.organisation,
                item.posts[: limits.news_posts],
                item.more + max(0, len(item.posts) - limits.news_posts),
            )
            for item in organisations.items
        ),
        organisations.more,
    )


def make_view(data: DigestData, limits: SectionLimits) -> DigestView:
    """The data cut to what the limits allow."""
    return DigestView(
        mentions=cut(data.mentions, limits.mentions),
        top_posts=cut(data.top_posts, limits.top_posts),
        news=cut_news(data.news, limits),
        dialog=cut(data.dialog, limits.dialog),
        videos=cut(data.videos, limits.videos),
        trends=cut(data.trends, limits.trends),
        domains=cut(data.domains, limits.domains),
        by_organisation=cut_table(data.by_organisation, limits.table_rows),
        by_group=cut_table(data.by_group, limits.table_rows),
        channel_changes=cut(data.channel_changes, limits.channel_changes),
        comparisons=cut_comparisons(data.comparisons, limits.comparisons),
        charts=cut_table(data.charts, limits.charts),
    )


def cut_comparisons(rows: Sequence[Comparison], limit: int) -> Shown[Comparison]:
    """Per platform (the rows come grouped by platform), the own organisation's row and the
    first `limit` others; with an own organisation, only the platforms it is on: the section
    compares it with its peers, and stays short."""
    own_platforms = {row.platform for row in rows if row.own}
    shown: list[Comparison] = []
    seen: dict[str, int] = {}
    cut = 0  # "and N more" counts the rows left out of the tables shown, not other platforms'
    for row in rows:
        if own_platforms and row.platform not in own_platforms:
            continue
        if row.own:
            shown.append(row)
            continue
        seen[row.platform] = seen.get(row.platform, 0) + 1
        if seen[row.platform] <= limit:
            shown.append(row)
        else:
            cut += 1
    return Shown(tuple(shown), cut)


class Formatter:
    """Numbers, dates and words in the reader's language, times in the week's time zone."""

    def __init__(self, language: str, timezone: str) -> None:
        self.language = language
        self.locale = LOCALES[language]
        self.zone = ZoneInfo(timezone)
        self.texts = TEXTS[language]
        # The locale's percent pattern with one optional decimal: 0.3 % of 300 organisations
        # is not 0 %.
        pattern = Locale.parse(self.locale).percent_formats[None].pattern
        self.share_pattern = pattern.replace("#,##0", "#,##0.#", 1)

    def text(self, key: str, **values: object) -> str:
        return self.texts[key].format(**values)

    def number(self, value: float) -> str:
        return format_decimal(value, format="#,##0.#", locale=self.locale)

    def posts(self, count: int) -> str:
        """ "1 234 inlägg", "1 post", "1,234 posts"."""
        word = self.texts["post"] if count == 1 else self.texts["posts"]
        return f"{self.number(count)} {word}"

    def count(self, name: str, value: int) -> str:
        one, other = COUNT_LABELS[self.language].get(name, (name, name))
        return f"{self.number(value)} {one if value == 1 else other}"

    def counts(self, post: PostItem) -> str:
        """The post's non-zero counts, views first, joined by middle dots."""
        order = COUNT_LABELS[self.language]
        names = [name for name in order if post.counts.get(name)]
        return " · ".join(self.count(name, post.counts[name]) for name in names)

    def sources(self, count: int) -> str:
        word = self.texts["source"] if count == 1 else self.texts["sources"]
        return f"{self.number(count)} {word}"

    def share(self, value: float) -> str:
        return format_percent(value, format=self.share_pattern, locale=self.locale)

    def change(self, current: float, reference: float) -> str | None:
        """ "+8 %" / "−3 %" (sv), "+8%" (en); None without a reference to compare with."""
        if reference <= 0:
            return None
        percent = (Decimal(current - reference) / Decimal(reference) * 100).quantize(
            Decimal(1), ROUND_HALF_UP
        )
        if percent > 0:
            sign = get_plus_sign_symbol(self.locale)
        elif percent < 0:
            sign = get_minus_sign_symbol(self.locale)
        else:
            sign = "±"
        return sign + format_percent(abs(percent) / 100, locale=self.locale)

    def changes(self, current: int, previous: int, average: float) -> str:
        """The parenthesised comparison after a weekly figure, or "" when there is none."""
        parts = []
        against_previous = self.change(current, previous)
        if against_previous is not None:
            parts.append(self.text("against_previous", change=against_previous))
        elif current:
            parts.append(self.text("none_previous"))
        against_average = self.change(current, average)
        if against_average is not None:
            parts.append(self.text("against_average", change=against_average))
        return f" ({', '.join(parts)})" if parts else ""

    def platform(self, key: str) -> str:
        return PLATFORM_NAMES[self.language].get(key) or platform_name(key)

    def month(self, day: date) -> str:
        # CLDR abbreviates Swedish months with a dot ("nov."); in a range in a subject line it
        # reads as punctuation, so it goes.
        return format_date(day, "MMM", locale=self.locale).rstrip(".")

    def day_range(self, first: date, last: date) -> str:
        """ "23–29 nov", "30 nov–6 dec", "29 Dec–4 Jan"."""
        if first.month == last.month:
            return f"{first.day}–{last.day} {self.month(last)}"
        return f"{first.day} {self.month(first)}–{last.day} {self.month(last)}"

    def local(self, moment: datetime) -> str:
        """ "mån 24 nov. 09:05" in the week's time zone."""
        return format_datetime(moment, "EEE d MMM HH:mm", tzinfo=self.zone, locale=self.locale)

    def day(self, moment: datetime) -> str:
        return format_datetime(moment, "d MMM y", tzinfo=self.zone, locale=self.locale)

    def duration(self, seconds: int) -> str:
        """ "4:05", or "1:02:03" from an hour."""
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}:{minutes:02d}:{secs:02d}"
        return f"{minutes}:{secs:02d}"

    def shorten(self, text: str, limit: int = MAX_TITLE_CHARS) -> str:
        """The text on one line, cut at a word with "…" beyond `limit` characters."""
        text = collapse_spaces(text)
        if len(text) <= limit:
            return text
        return text[:limit].rsplit(" ", 1)[0] + "…"

    def names(self, items: Sequence[str]) -> str:
        return format_list(list(items), locale=self.locale)

    def trend(self, term: str, count: int, baseline: float) -> str:
        return self.text(
            "trend",
            term=self.shorten(term, 80),
            count=self.number(count),
            baseline=format_decimal(baseline, format="#,##0.#", locale=self.locale),
        )

    def domain(self, domain: str, count: int) -> str:
        word = self.texts["link"] if count == 1 else self.texts["links"]
        return self.text(
            "domain", domain=self.shorten(domain, 80), count=f"{self.number(count)} {word}"
        )

    def channel_change(self, change: ChannelChange) -> str:
        key = f"channel_{change.change}"
        values = {
            "organisation": change.organisation,
            "platform": self.platform(change.platform),
            "account": self.shorten(change.source_key, 80),
            "previous": self.names([self.platform(p) for p in change.previous]),
        }
        if change.since is not None:
            key += "_since"
            values["date"] = self.day(change.since)
        return self.text(key, **values)

    def window(self, row: DataQuality) -> str:
        if row.covered_from is None or row.covered_to is None:
            return self.texts["no_collection"]
        return f"{self.local(row.covered_from)} – {self.local(row.covered_to)}"

    def quality_line(self, rows: Sequence[DataQuality]) -> str:
        """The honest completeness line: how many sources the week's picture rests on."""
        sources = sum(row.sources for row in rows)
        ok = sum(row.sources_ok for row in rows)
        failing = sum(row.sources_failing for row in rows)
        if ok == sources:
            return self.text("quality_all_ok", sources=self.number(sources))
        # The same numbers as the table beside it: failing there, never collected apart.
        gaps = []
        if failing:
            gaps.append(self.text("quality_failing", sources=self.sources(failing)))
        if sources - ok - failing:
            uncollected = self.sources(sources - ok - failing)
            gaps.append(self.text("quality_uncollected", sources=uncollected))
        return self.text(
            "quality_some_failing",
            ok=self.number(ok),
            sources=self.number(sources),
            gaps=self.names(gaps),
        )

    def group(self, data: DigestData, key: str) -> str:
        """A group by its declared name, else its key."""
        return data.group_names.get(key, key)

    def following(self, data: DigestData) -> str:
        """What the recipient follows, as the end of "because you follow …"."""
        recipient = data.recipient
        parts = []
        if recipient.groups:
            key = "following_groups" if len(recipient.groups) > 1 else "following_group"
            groups = [self.group(data, key) for key in recipient.groups]
            parts.append(self.text(key, names=self.names(groups)))
        if recipient.organisations:
            parts.append(
                self.text("following_organisations", names=self.names(recipient.organisations))
            )
        following = self.names(parts) if parts else self.texts["following_all"]
        if recipient.platforms:
            platforms = [self.platform(key) for key in recipient.platforms]
            following += " " + self.text("following_platforms", names=self.names(platforms))
        return following

    def measured(self, value: float | None) -> str:
        """A figure, or "—" where it cannot be measured (never 0 for that)."""
        return UNMEASURED if value is None else self.number(value)

    def growth(self, value: int | None) -> str:
        """Followers gained: "+12", "−3" (the locale's signs), "±0", or "—" when unmeasured."""
        if value is None:
            return UNMEASURED
        if value > 0:
            return get_plus_sign_symbol(self.locale) + self.number(value)
        if value < 0:
            return get_minus_sign_symbol(self.locale) + self.number(-value)
        return "±0"

    def chart_week(self, week: ChartWeek) -> str:
        """A chart's week in words: the same numbers as its bars."""
        return self.text(
            "chart_week",
            week=self.text("week", n=week.week.week),
            posts=self.posts(week.posts),
            engagement=self.measured(week.engagement),
        )

    def comparison(self, row: Comparison) -> str:
        """A comparison row in words, for the plain-text part."""
        t = self.texts
        # What cannot be measured is left out here rather than written as a row of dashes.
        measured = [
            ("col_per_post", row.engagement_per_post, self.measured(row.engagement_per_post)),
            (
                "col_per_thousand",
                row.per_thousand_followers,
                self.measured(row.per_thousand_followers),
            ),
            ("col_followers", row.followers, self.measured(row.followers)),
            ("col_growth_week", row.growth_week, self.growth(row.growth_week)),
            ("col_growth_four", row.growth_four_weeks, self.growth(row.growth_four_weeks)),
        ]
        figures = [self.posts(row.posts)] + [
            f"{t[key].lower()} {said}" for key, value, said in measured if value is not None
        ]
        own = f" ({t['own']})" if row.own else ""
        return f"{row.organisation}{own}: {', '.join(figures)}"


def bar_percent(width: int) -> int:
    """A bar's share of its cell: the longest bar leaves room for its number beside it."""
    return max(1, round(width * BAR_SHARE / 100)) if width > 0 else 0


def find_trend_links(data: DigestData, web: WebLinks | None) -> dict[str, str]:
    """Each trend's search in the web app: the term (a hashtag as its word; search stems words
    and ignores '#'), the digest's week and what the recipient follows; none without a web app."""
    if web is None:
        return {}
    week = [("since", data.week.first_day.isoformat()), ("until", data.week.last_day.isoformat())]
    follow = follow_filters(data.recipient)
    links = {}
    for trend in data.trends:
        word = trend.term.lstrip("#")
        # A phrase ("ny skola") and a hyphenated compound are searched as one phrase.
        query = f'"{word}"' if " " in word or "-" in word else word
        links[trend.term] = web.search([("q", query), *follow, *week])
    return links


def collapse_spaces(text: str) -> str:
    """Runs of ASCII whitespace as one space. Not str.split(): it would also eat the no-break
    spaces Babel puts in "1 234" and "8 %"."""
    return ASCII_SPACES.sub(" ", text).strip()


def wrap(text: str, indent: str = "  ", subsequent: str | None = None) -> str:
    """Plain text wrapped at 76 columns and indented; URLs and long words are never broken,
    since a broken URL no longer works."""
    return textwrap.fill(
        collapse_spaces(text),
        width=76,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def make_subject(data: DigestData, fmt: Formatter) -> str:
    """`Omvärldsbevakning v. 48 (23–29 nov): 1 234 inlägg, +8 %`; no change after an empty week."""
    week = data.week
    subject = (
        f"{fmt.texts['title']}{',' if fmt.language == 'en' else ''} "
        f"{fmt.text('week', n=week.week)} ({fmt.day_range(week.first_day, week.last_day)}): "
        f"{fmt.posts(data.summary.posts)}"
    )
    change = fmt.change(data.summary.posts, data.summary.posts_previous)
    return f"{subject}, {change}" if change is not None else subject


@cache
def environment() -> jinja2.Environment:
    """The template environment: autoescape on for HTML, off for the plain-text part (which
    escaping would only garble), undefined names an error rather than a silent blank."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def inline_css(html: str) -> str:
    """Styles moved onto each element (Gmail and Outlook drop or ignore <style>); @media rules
    for dark mode and narrow screens cannot be inlined and stay in a <style> block."""
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    return inliner.inline(html)


def render_digest(
    data: DigestData, settings: DigestConfig, web: WebLinks | None = None
) -> RenderedDigest:
    """The digest as subject, inlined HTML and plain text, in the recipient's language.

    Lists are cut to `SectionLimits`, then halved until the HTML fits in `MAX_HTML_BYTES`;
    whatever is cut is announced as "och N till" / "and N more", a link to the search page when
    there is a web app (`web`). With the recipient's signed links, the digest opens with "view
    in browser" (once its `digests` row is claimed) and its footer leads to the recipient page
    instead of the configured settings and unsubscribe pages.
    """
    language = data.recipient.language if data.recipient.language in LOCALES else None
    language = language or settings.language
    fmt = Formatter(language, data.week.timezone)
    subject = make_subject(data, fmt)
    context = {
        "data": data,
        "fmt": fmt,
        "t": fmt.texts,
        "subject": subject,
        "language": language,
        "http_url": http_url,
        "wrap": wrap,
        "settings_url": http_url(personalise_url(settings.settings_url, data.recipient.email)),
        "unsubscribe_url": http_url(
            personalise_url(settings.unsubscribe_url, data.recipient.email)
        ),
        "unsubscribe_mailto": mailto_url(settings.unsubscribe_mailto),
        "sender": settings.sender,
        "view_url": http_url(web.view_in_browser) if web else None,
        "recipient_url": http_url(web.recipient_page) if web else None,
        "more": find_more_links(data, web),
        "trend_links": find_trend_links(data, web),
        "bar_percent": bar_percent,
    }
    html_template = environment().get_template("digest.html.j2")
    limits = SectionLimits(top_posts=settings.top_posts)
    while True:
        view = make_view(data, limits)
        html = inline_css(html_template.render(view=view, **context))
        if len(html.encode("utf-8")) <= MAX_HTML_BYTES or limits.smallest:
            break
        limits = limits.halved()
    text = environment().get_template("digest.txt.j2").render(view=view, **context)
    return RenderedDigest(
        subject=subject,
        html=html,
        text=text,
        language=language,
        one_click_url=http_url(web.one_click) if web else None,
    )
