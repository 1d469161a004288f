"""Comparing organisations per platform, and their last eight weeks as bars: pure figures.

No database, clock or files: `digest.load` reads plain rows (posts per source and week with the
engagement of those that have counts; followers at the week's boundaries from `source_metrics`)
and the functions here turn them into what the digest, `omvarld compare` and the web's
`/compare` page show alike (issue 13, items 2 and 6).

What cannot be measured stays None, shown as "—", never 0: a feed has no engagement and no
followers, and an account whose platform gave no follower count has no growth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.model import Comparison, OrganisationChart, Week

if TYPE_CHECKING:
    from digest.compose import SourceInfo  # digest.compose calls this module

CHART_WEEKS = 8  # issue 13: "the last eight weeks' posts and engagement"
GROWTH_WEEKS = 4  # follower growth over the week and over four weeks
PER_FOLLOWERS = 1000  # engagement per 1,000 followers


@dataclass(frozen=True)
class ActivityRow:
    """One source's posts published in one week, and the engagement of those with counts."""

    source_id: int
    weeks_back: int  # 0: the week compared; 1: the week before it; …
    posts: int
    counted: int  # posts with counts (a feed's posts have none)
    engagement: int  # summed over the counted posts


@dataclass(slots=True)
class SourceWeeks:
    """One source's `CHART_WEEKS` weeks, oldest first (the last is the week compared): what
    the functions here read, indexed once from the rows for every recipient."""

    posts: list[int]
    counted: list[int]
    engagement: list[int]  # of the counted posts


def index_activity(activity: Iterable[ActivityRow]) -> dict[int, SourceWeeks]:
    """The rows per source as its weeks, oldest first; weeks beyond the charts' are left out."""
    indexed: dict[int, SourceWeeks] = {}
    for row in activity:
        if not 0 <= row.weeks_back < CHART_WEEKS:
            continue
        weeks = indexed.get(row.source_id)
        if weeks is None:
            weeks = indexed[row.source_id] = SourceWeeks(
                [0] * CHART_WEEKS, [0] * CHART_WEEKS, [0] * CHART_WEEKS
            )
        index = CHART_WEEKS - 1 - row.weeks_back
        weeks.posts[index] += row.posts
        weeks.counted[index] += row.counted
        weeks.engagement[index] += row.engagement if row.counted else 0
    return indexed


@dataclass(frozen=True)
class FollowerRow:
    """A source's followers at the week's boundaries: the latest count observed at or before
    each; None where none was."""

    source_id: int
    at_end: int | None
    at_start: int | None  # one week before the end
    four_weeks_before: int | None  # four weeks before the end


def compare_organisations(
    chosen: Iterable[SourceInfo],
    activity: Mapping[int, SourceWeeks],
    followers: Mapping[int, FollowerRow],
    own: str | None = None,
) -> list[Comparison]:
    """One row per organisation and platform of the chosen sources, the week's figures (the
    last of each source's weeks); sorted by platform, the own organisation first, then by
    posts.

    Sums run over the organisation's sources on the platform; each ratio and growth only over
    the sources that measured both of its parts, so an account without a follower count
    neither adds engagement to "per 1,000 followers" nor hides the others' growth.
    """
    grouped: dict[tuple[str, str], list[SourceInfo]] = defaultdict(list)
    for source in chosen:
        # Per platform as readers know it: a YouTube channel's feed is a YouTube row.
        grouped[(source.organisation, source.shown)].append(source)
    rows = []
    for (organisation, platform), members in grouped.items():
        # (posts, counted, engagement) of the week per source.
        week = {
            s.id: (w.posts[-1], w.counted[-1], w.engagement[-1])
            for s in members
            if (w := activity.get(s.id)) is not None
        }
        audience = [followers[s.id] for s in members if s.id in followers]
        counted = sum(c for _, c, _ in week.values())
        # Engagement per 1,000 followers: the accounts with both a follower count and counts.
        measured = [
            (week[f.source_id][2], f.at_end)
            for f in audience
            if f.at_end and f.source_id in week and week[f.source_id][1]
        ]
        reach = sum(at_end for _, at_end in measured)
        rows.append(
            Comparison(
                organisation=organisation,
                platform=platform,
                posts=sum(p for p, _, _ in week.values()),
                engagement_per_post=(
                    sum(e for _, _, e in week.values()) / counted if counted else None
                ),
                per_thousand_followers=(
                    PER_FOLLOWERS * sum(e for e, _ in measured) / reach if reach else None
                ),
                followers=_sum_known([f.at_end for f in audience]),
                growth_week=_growth(audience, lambda f: f.at_start),
                growth_four_weeks=_growth(audience, lambda f: f.four_weeks_before),
                own=own is not None and organisation == own,
            )
        )
    rows.sort(key=lambda r: (r.platform, not r.own, -r.posts, r.organisation))
    return rows


def chart_organisations(
    chosen: Iterable[SourceInfo],
    activity: Mapping[int, SourceWeeks],
    week: Week,
    own: str | None = None,
) -> list[OrganisationChart]:
    """Each organisation's posts and engagement in the `CHART_WEEKS` weeks up to `week`, with
    bar widths in percent of its own largest week (a reader compares an organisation's weeks
    with each other; across organisations the numbers say it). The own organisation first,
    then the most active over the eight weeks; organisations silent all along are left out.

    Engagement is None for every week of an organisation none of whose posts had counts in
    the eight weeks (feeds only): not measured, rather than nothing.
    """
    posts: dict[str, list[int]] = {}
    engagement: dict[str, list[int]] = {}
    counted: dict[str, int] = defaultdict(int)
    for source in chosen:
        name = source.organisation
        if name not in posts:
            posts[name], engagement[name] = [0] * CHART_WEEKS, [0] * CHART_WEEKS
        weeks = activity.get(source.id)
        if weeks is None:
            continue
        posts[name] = [a + b for a, b in zip(posts[name], weeks.posts, strict=True)]
        engagement[name] = [a + b for a, b in zip(engagement[name], weeks.engagement, strict=True)]
        counted[name] += sum(weeks.counted)
    first_week = week.shifted(1 - CHART_WEEKS)
    charts = []
    for name, weekly in posts.items():
        is_own = own is not None and name == own
        if not any(weekly) and not is_own:
            continue
        engaged = tuple(engagement[name]) if counted[name] else None
        charts.append(OrganisationChart(name, first_week, tuple(weekly), engaged, is_own))
    charts.sort(key=lambda c: (not c.own, -sum(c.posts), c.organisation))
    return charts


def bar_widths(values: Sequence[int]) -> list[int]:
    """Each value in whole percent of the largest (0 for all when the largest is 0); a value
    above zero is at least 1 %, so that a small week still shows a bar."""
    top = max(values, default=0)
    if top <= 0:
        return [0] * len(values)
    return [max(1, round(100 * v / top)) if v > 0 else 0 for v in values]


def _sum_known(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _growth(
    audience: Sequence[FollowerRow], before: Callable[[FollowerRow], int | None]
) -> int | None:
    """Followers gained since a boundary, over the accounts counted at both ends."""
    changes = [
        f.at_end - start
        for f in audience
        if f.at_end is not None and (start := before(f)) is not None
    ]
    return sum(changes) if changes else None
