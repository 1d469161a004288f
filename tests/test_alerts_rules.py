"""What alert rules decide, without a database or a network: matching, spikes with a fixed
clock, quiet sources, backoff, and how a burst is worded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from monitor.alerts.message import AlertWriter
from monitor.alerts.rules import (
    NewPost,
    SourceActivity,
    SpikeCheck,
    check_spike,
    compile_rule,
    find_quiet_sources,
    match_posts,
    next_attempt_at,
    spike_period,
)
from monitor.config import AlertRuleConfig

# Sunday 6 December 2026, 09:00 UTC (10:00 in Stockholm).
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def rule(**values: object) -> AlertRuleConfig:
    return AlertRuleConfig.model_validate({"name": "Kris", "notify": ["json://x/y"], **values})


def post(number: int, title: str, text: str = "", **extra: object) -> NewPost:
    values: dict[str, object] = {
        "id": number,
        "source_key": "feed:www.flen.se/rss",
        "source_platform": "feed",
        "channel": "feed",
        "organisation": "Flens kommun",
        "groups": ("kommuner",),
        "published_at": NOW - timedelta(minutes=number),
        "title": title,
        "text": text,
        "url": f"https://www.flen.se/nyheter/{number}",
    }
    return NewPost(**(values | extra))  # type: ignore[arg-type]


def test_a_keyword_rule_matches_stems_in_title_or_text_and_honours_or_and_exclusion() -> None:
    flooding = compile_rule(rule(query="översvämning OR skogsbrand -övning"))
    posts = [
        post(1, "Översvämningarna vid ån"),  # a stem of översvämning
        post(2, "Vägarbete", "En skogsbrand vid sjön"),
        post(3, "Övning: översvämning i centrum"),  # excluded
        post(4, "Julmarknad"),
    ]
    assert [p.id for p in match_posts([flooding], posts)["Kris"]] == [2, 1]  # oldest first


def test_a_phrase_must_be_consecutive_and_a_prefix_a_start_of_a_word() -> None:
    phrase = compile_rule(rule(name="Fras", query='"stängd väg"'))
    prefix = compile_rule(rule(name="Prefix", query="snö*"))
    posts = [
        post(1, "Vägen är stängd", "ingen stängd väg här"),
        post(2, "Väg stängd"),
        post(3, "Snöröjningen har börjat"),
    ]
    matched = match_posts([phrase, prefix], posts)
    assert [p.id for p in matched["Fras"]] == [1]
    assert [p.id for p in matched["Prefix"]] == [3]


def test_filters_narrow_a_rule_to_groups_platforms_organisations_and_sources() -> None:
    posts = [
        post(1, "Översvämning", groups=("regioner",)),
        post(2, "Översvämning", organisation="Katrineholms kommun"),
        post(3, "Översvämning", source_platform="mastodon", channel="mastodon",
             source_key="mastodon:flen@x.se"),
        # A YouTube channel's feed: a feed source, shown (and filtered) as YouTube.
        post(4, "Översvämning", channel="youtube", source_key="feed:youtube.com/flen"),
    ]  # fmt: skip
    rules = [
        compile_rule(rule(name="G", query="översvämning", groups=["kommuner"])),
        compile_rule(rule(name="O", query="översvämning", organisations=["Flens kommun"])),
        compile_rule(rule(name="P", query="översvämning", platforms=["mastodon"])),
        compile_rule(rule(name="Y", query="översvämning", platforms=["youtube"])),
        compile_rule(rule(name="F", query="översvämning", platforms=["feed"])),
        compile_rule(rule(name="S", query="översvämning", sources=["feed:www.flen.se/rss"])),
    ]
    matched = {name: [p.id for p in found] for name, found in match_posts(rules, posts).items()}
    assert matched == {
        "G": [4, 3, 2], "O": [4, 3, 1], "P": [3], "Y": [4], "F": [4, 2, 1], "S": [2, 1],
    }  # fmt: skip


def times(*hours_ago: float) -> list[datetime]:
    return [NOW - timedelta(hours=h) for h in hours_ago]


def test_a_spike_is_many_posts_against_the_same_hours_of_the_four_weeks_before() -> None:
    week = 24 * 7
    # Two posts in each of the baseline weeks' same three hours; eight now.
    baseline = [k * week + h for k in range(1, 5) for h in (0.5, 2.5)]
    check = check_spike(times(*[0.1 * i for i in range(8)], *baseline), NOW, 3, 3.0, 5)
    assert (check.current, check.baseline, check.fired) == (8, 2.0, True)
    assert check.start == NOW - timedelta(hours=3)
    # Six is 3.0 times the baseline: enough; five is not.
    assert check_spike(times(*[0.1 * i for i in range(6)], *baseline), NOW, 3, 3.0, 5).fired
    assert not check_spike(times(*[0.1 * i for i in range(5)], *baseline), NOW, 3, 3.0, 5).fired


def test_posts_outside_the_compared_hours_do_not_count_and_few_posts_are_no_spike() -> None:
    week = 24 * 7
    # A busy Monday last week, but at other hours; and the window just before this one.
    elsewhere = [week + 5, week - 5, 3.5, 4]
    check = check_spike(times(0.5, 1, 1.5, 2, *elsewhere), NOW, 3, 3.0, 5)
    assert (check.current, check.baseline, check.fired) == (4, 0.0, False)  # under min_posts
    assert check_spike(times(0.5, 1, 1.5, 2, 2.5, *elsewhere), NOW, 3, 3.0, 5).fired


def test_an_engagement_spike_sums_the_engagement_against_the_same_hours_before() -> None:
    week = 24 * 7
    # Each baseline week: two posts with 10 each in the same three hours; now one post.
    baseline = [k * week + h for k in range(1, 5) for h in (0.5, 2.5)]
    published = times(1, *baseline)

    def check(now_engagement: int) -> SpikeCheck:
        weights = [now_engagement] + [10] * len(baseline)
        return check_spike(published, NOW, 3, 3.0, 50, weights)

    viral = check(90)
    assert (viral.current, viral.baseline, viral.fired) == (90, 20.0, True)
    assert not check(59).fired  # under 3 × 20
    # One post is no spike of posts: the same posts counted as posts.
    assert not check_spike(published, NOW, 3, 3.0, 5).fired
    writer = AlertWriter("en", "Europe/Stockholm", None)
    assert writer.spike_item(viral, None, 4, "engagement") == (
        "90 in engagement (likes, shares, comments …) on posts in the last 3 hours against 20"
        " on average on the same weekday and hours of the 4 weeks before."
    )
    title = writer.message("Viral", "spike", ["…"], 1, "engagement").title
    assert title == "Viral: unusually much engagement"


def test_only_a_spike_rule_can_measure_engagement() -> None:
    assert rule(kind="spike", measure="engagement").measure == "engagement"
    with pytest.raises(ValidationError, match="measure is a spike rule's"):
        rule(query="brand", measure="engagement")


def test_a_spike_fires_once_per_period_of_its_hours() -> None:
    first = spike_period(NOW, 3)
    assert first == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert spike_period(NOW + timedelta(hours=2, minutes=59), 3) == first
    assert spike_period(NOW + timedelta(hours=3), 3) == first + timedelta(hours=3)


def activity(
    key: str, last_days_ago: float | None, before: int, checked_days_ago: float
) -> SourceActivity:
    return SourceActivity(
        key=key,
        organisation="Flens kommun",
        platform="feed",
        last_post_at=None if last_days_ago is None else NOW - timedelta(days=last_days_ago),
        posts_before=before,
        last_success_at=NOW - timedelta(days=checked_days_ago),
    )


def test_a_regular_source_seen_quiet_for_the_days_is_silent_and_others_are_not() -> None:
    sources = [
        activity("quiet", 8, 12, 0),
        activity("irregular", 8, 2, 0),  # two posts in four weeks: quiet is its normal
        activity("recent", 2, 30, 0),
        activity("unchecked", 8, 12, 6),  # our last successful look was 2 days after its post
        activity("never-posted", None, 0, 0),
    ]
    assert [s.key for s in find_quiet_sources(sources, days=7, min_posts=5)] == ["quiet"]


def test_failed_deliveries_back_off_doubling() -> None:
    assert [next_attempt_at(n, NOW, 300) - NOW for n in (1, 2, 3)] == [
        timedelta(minutes=5),
        timedelta(minutes=10),
        timedelta(minutes=20),
    ]


def test_a_burst_is_one_message_listing_the_first_items_and_counting_the_rest() -> None:
    writer = AlertWriter("sv", "Europe/Stockholm", "https://omvarld.example.se")
    items = [writer.post_item(post(n, f"Översvämning {n}")) for n in range(1, 16)]
    message = writer.message("Kris i länet", "keyword", items[:10], 15)
    assert message.title == "Kris i länet: 15 nya inlägg"
    assert message.body.count("Flens kommun · Webb/nyhetsflöde · ") == 10
    assert message.body.endswith("… och 5 till")
    english = AlertWriter("en", "Europe/Stockholm", None)
    burst = english.message("Crisis", "keyword", ["a", "b"], 3)
    assert (burst.title, burst.body) == ("Crisis: 3 new posts", "a\n\nb\n\n… and 1 more")


def test_a_post_item_is_plain_text_with_local_time_and_only_web_links() -> None:
    writer = AlertWriter("sv", "Europe/Stockholm", "https://omvarld.example.se")
    hostile = post(
        7,
        "<b>Översvämning</b> <script>alert(1)</script>vid ån",
        url="javascript:alert(1)",
        published_at=datetime(2026, 12, 6, 7, 5, tzinfo=UTC),
    )
    assert writer.post_item(hostile) == (
        "Flens kommun · Webb/nyhetsflöde · sön 6 dec. 08:05\n"
        "Översvämning vid ån\n"
        "I Omvärld: https://omvarld.example.se/posts/7"
    )
    untitled = post(8, "", "Första raden\nAndra raden")
    assert writer.post_item(untitled).splitlines()[1] == "Första raden"
