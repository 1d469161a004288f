"""The digest's content, built from a fixed database stored through the real store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import digest.load
from digest.compose import compose_digest, make_excerpt
from digest.load import build_digest, load_week_data, make_digest_builder, recipients_from_config
from digest.model import (
    ChannelChange,
    DataQuality,
    DigestData,
    DomainCount,
    Recipient,
    TableRow,
    Trend,
    Week,
)
from monitor.config import Config
from monitor.db import SCHEMA_HEAD, _alembic_config, upgrade
from monitor.models import posts
from monitor.terms import TermExtractor
from tests.digestdata import (
    CONFIG,
    LONG_TEXT,
    READER,
    STOCKHOLM,
    THUMBNAIL,
    WEEK,
    build,
    fill,
    local,
    post,
    setup_config,
    store,
)


@pytest.fixture
def config(digest_config: Config) -> Config:
    """The fixed database, filled (tests.digestdata)."""
    return digest_config


def ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        query = sa.select(posts.c.platform_post_id, posts.c.id)
        return {key: post_id for key, post_id in connection.execute(query)}


def names(items: Sequence[Any], engine: Engine) -> list[str]:
    by_id = {v: k for k, v in ids(engine).items()}
    return [by_id[item.post_id] for item in items]


def test_summary_counts_the_week_against_the_previous_and_the_four_before(
    engine: Engine, config: Config
) -> None:
    digest = build(engine, config)
    summary = digest.summary
    assert (summary.posts, summary.engagement) == (11, 90 + 7 + 20 + 29 + 1 + 4)
    assert (summary.posts_previous, summary.engagement_previous) == (3, 30)
    assert (summary.posts_average, summary.engagement_average) == (7 / 4, 65 / 4)
    assert (summary.most_active_organisation, summary.most_active_posts) == (
        "Katrineholms kommun",
        6,
    )
    assert summary.top_post is not None and summary.top_post.post_id == ids(engine)["p1"]
    assert digest.generated_at == local(11, 30, 7)
    assert not digest.is_empty


def test_top_posts_are_ranked_by_engagement_normalised_per_platform(
    engine: Engine, config: Config
) -> None:
    top = build(engine, config).top_posts
    # X's mean over five weeks: 177 / 8; YouTube's: 35 / 3; Mastodon's: 4 / 1.
    assert names(top, engine) == ["p1", "v1", "m1", "k1", "p2", "v2"]
    assert [round(p.score, 4) for p in top] == [
        round(90 / (177 / 8), 4), round(29 / (35 / 3), 4), 1.0,
        round(20 / (177 / 8), 4), round(7 / (177 / 8), 4), round(1 / (35 / 3), 4),
    ]  # fmt: skip
    first = top[0]
    assert first.counts == {"views": 1000, "likes": 50, "reposts": 10, "replies": 30}
    assert (first.engagement, first.views, first.platform, first.organisation) == (
        90,
        1000,
        "x",
        "Polisen",
    )
    assert first.published_at == local(11, 23, 8) and first.published_at.tzinfo is not None
    assert first.excerpt == "Trafikolycka på E4 vid Nyköping, vinterväglag. #trafik"
    assert first.url == "https://x.com/polisen/status/1"


def test_top_posts_follow_the_configured_number(tmp_path: Path, engine: Engine) -> None:
    config = setup_config(tmp_path, engine, CONFIG.replace("top_posts = 10", "top_posts = 2"))
    fill(engine)
    assert names(build(engine, config).top_posts, engine) == ["p1", "v1"]


def test_news_lists_posts_without_counts_per_organisation_newest_first(
    engine: Engine, config: Config
) -> None:
    news = build(engine, config).news
    assert [(n.organisation, names(n.posts, engine), n.more) for n in news] == [
        ("Katrineholms kommun", ["f4", "f3", "f2"], 1),
        ("Länsstyrelsen", ["l1"], 0),
    ]
    budget = news[0].posts[1]
    assert len(budget.excerpt) <= 280 and budget.excerpt.endswith("…")
    assert budget.excerpt.startswith("Kommunstyrelsen föreslår en budget för 2027 där")
    collapsed = " ".join(LONG_TEXT.split())
    kept = budget.excerpt.removesuffix("…")
    assert collapsed.startswith(kept) and collapsed[len(kept)] in " ,"  # cut between words


def test_dialog_ranks_by_replies_and_videos_are_newest_first(
    engine: Engine, config: Config
) -> None:
    digest = build(engine, config)
    assert names(digest.dialog, engine) == ["p1", "k1", "v1", "p2"]
    assert [(v.kind, v.title, v.thumbnail_url, v.duration_s, v.views) for v in digest.videos] == [
        ("live", "Livesänd pressträff", None, None, 100),
        ("video", "Vinterväglag – så kör du säkert", THUMBNAIL, 95, 2000),
    ]


def test_trends_rise_against_the_baseline_and_domains_count_shared_links(
    engine: Engine, config: Config
) -> None:
    digest = build(engine, config)
    # "information" is in three posts this week but in six of the four weeks before: no trend.
    assert digest.trends == (Trend("vinterväglag", 4, 0.0), Trend("#trafik", 3, 0.25))
    # Links to others' sites only: an article's own address (katrineholm.se, lansstyrelsen.se)
    # and Katrineholm's X post linking to its own website are not shared websites.
    assert digest.domains == (DomainCount("trafikverket.se", 3), DomainCount("smhi.se", 1))


def test_posts_stored_before_terms_were_kept_get_them_from_the_upgrade_and_count_the_same(
    engine: Engine, config: Config
) -> None:
    from alembic import command

    stored = build(engine, config)
    terms_of_posts = sa.select(posts.c.id, posts.c.terms).order_by(posts.c.id)
    with engine.begin() as connection:
        at_ingest = connection.execute(terms_of_posts).all()
        command.downgrade(_alembic_config(connection), "0009")
        connection.execute(sa.update(posts).values(terms=None))  # as migration 0005 left them

    assert upgrade(engine) == ("0009", SCHEMA_HEAD)
    with engine.connect() as connection:
        assert connection.execute(terms_of_posts).all() == at_ingest
    assert None not in {terms for _, terms in at_ingest}  # every post has them again
    assert build(engine, config).trends == stored.trends == (
        Trend("vinterväglag", 4, 0.0), Trend("#trafik", 3, 0.25),
    )  # fmt: skip


def test_tables_give_posts_engagement_median_and_share(engine: Engine, config: Config) -> None:
    own = Recipient(email="anna@katrineholm.se", organisation="Katrineholms kommun")
    digest = build(engine, config, own)
    assert digest.by_platform == (
        TableRow("feed", 5, None, None, 5 / 11),  # feeds have no counts: not measured, not 0
        TableRow("x", 3, 117, 20.0, 3 / 11),
        TableRow("youtube", 2, 30, 15.0, 2 / 11),
        TableRow("mastodon", 1, 4, 4.0, 1 / 11),
    )
    assert digest.by_organisation == (
        TableRow("Katrineholms kommun", 6, 24, 12.0, 6 / 11, own=True),
        TableRow("Polisen", 4, 127, 18.0, 4 / 11),
        TableRow("Länsstyrelsen", 1, None, None, 1 / 11),
    )
    assert digest.by_group == (
        TableRow("kommuner", 6, 24, 12.0, 6 / 11),
        TableRow("myndigheter", 5, 127, 18.0, 5 / 11),
    )
    # Others' links only: the own organisation's web and posts are left out.
    assert digest.domains == (DomainCount("trafikverket.se", 2), DomainCount("smhi.se", 1))


def test_channel_changes_say_moved_started_and_went_quiet(engine: Engine, config: Config) -> None:
    assert build(engine, config).channel_changes == (
        ChannelChange(
            "Katrineholms kommun", "mastodon", "katrineholm-mastodon", "moved",
            local(11, 28, 10), ("feed", "x"),
        ),
        # Watched since October, first post this week: it started posting.
        ChannelChange("Länsstyrelsen", "feed", "lansstyrelsen", "started", local(11, 26, 12)),
        ChannelChange("Region Sörmland", "feed", "region", "silent", local(10, 20, 10)),
    )  # fmt: skip


def test_quality_counts_sources_ok_and_left_failing_per_platform(
    engine: Engine, config: Config
) -> None:
    # Collections until the digest is made count (Monday 01:00's here); YouTube failed after
    # its last success, so it is failing and not ok: the two never add up past the sources.
    assert build(engine, config).quality == (
        DataQuality("feed", 3, 3, 0, local(11, 26, 12), local(11, 30, 1)),
        DataQuality("mastodon", 1, 1, 0, local(11, 29, 22), local(11, 29, 22)),
        DataQuality("x", 2, 2, 0, local(11, 27, 20), local(11, 29, 22)),
        DataQuality("youtube", 1, 0, 1, local(11, 29, 22), local(11, 29, 22)),
    )


def test_mentions_match_keywords_in_title_or_text_ignoring_case(
    engine: Engine, config: Config
) -> None:
    anna = Recipient(email="anna@example.se", keywords=("VINTERVÄGLAG",))
    assert names(build(engine, config, anna).mentions, engine) == ["p2", "v1", "f1", "p1"]
    assert build(engine, config).mentions == ()


def test_recipient_follows_groups_and_organisations_narrowed_by_platform(
    engine: Engine, config: Config
) -> None:
    def posts_for(
        groups: tuple[str, ...] = (),
        organisations: tuple[str, ...] = (),
        platforms: tuple[str, ...] = (),
    ) -> int:
        recipient = Recipient("a@example.se", groups=groups, organisations=organisations)
        return build(engine, config, replace(recipient, platforms=platforms)).summary.posts

    assert posts_for(groups=("kommuner",)) == 6
    assert posts_for(organisations=("Polisen",), platforms=("youtube",)) == 2
    assert posts_for(groups=("kommuner",), organisations=("Polisen",)) == 10
    assert posts_for(platforms=("x",)) == 3
    assert posts_for(groups=("regioner",)) == 0


def test_a_week_without_posts_is_empty(engine: Engine, config: Config) -> None:
    digest = build(engine, config, week=Week(2026, 51))
    assert digest.is_empty
    assert digest.top_posts == digest.news == digest.trends == digest.by_platform == ()
    assert build(engine, config, Recipient("x@example.se", groups=("ingen",))).is_empty


def test_recipients_take_the_digest_language_unless_they_set_their_own(
    tmp_path: Path, engine: Engine
) -> None:
    anna, per = recipients_from_config(setup_config(tmp_path, engine))
    assert anna == Recipient(
        email="anna@katrineholm.se",
        language="en",
        organisation="Katrineholms kommun",
        groups=("kommuner",),
        keywords=("vinterväglag",),
    )
    assert (per.language, per.platforms) == ("sv", ("x",))


SMALL = """
[[sources]]
platform = "feed"
key = "kommun"
url = "https://www.kommun.se/rss"
organisation = "Kommunen"
"""


def test_a_daylight_saving_week_spans_167_hours_and_keeps_its_boundaries(
    tmp_path: Path, engine: Engine
) -> None:
    week = Week(2026, 13)  # summer time starts Sunday 29 March 2026
    assert week.end.astimezone(UTC) - week.start.astimezone(UTC) == timedelta(hours=167)
    config = setup_config(tmp_path, engine, SMALL)
    items = [
        post("before", local(3, 22, 23, 30), kind="article", title="Vecka 12"),
        post("first", local(3, 23, 0, 15), kind="article", title="Måndag"),
        post("last", local(3, 29, 23, 30), kind="article", title="Söndag sommartid"),
        post("after", local(3, 30, 0, 15), kind="article", title="Vecka 14"),
    ]
    store(engine, "kommun", items, local(3, 30, 1))
    digest = build_digest(engine, config, READER, week)
    assert [p.title for n in digest.news for p in n.posts] == ["Söndag sommartid", "Måndag"]


def test_week_53_exists_and_its_posts_are_found(tmp_path: Path, engine: Engine) -> None:
    week = Week.parse("2026-W53")
    assert (week.first_day.isoformat(), week.last_day.isoformat()) == ("2026-12-28", "2027-01-03")
    config = setup_config(tmp_path, engine, SMALL)
    items = [
        post("new-year", local(1, 2, 12, year=2027), kind="article", title="Nyårshälsning"),
        post("w1", local(1, 4, 0, 15, year=2027), kind="article", title="Vecka 1"),
    ]
    store(engine, "kommun", items, local(1, 4, 1, year=2027))
    digest = build_digest(engine, config, READER, week)
    assert digest.summary.posts == 1
    assert digest.news[0].posts[0].title == "Nyårshälsning"


def test_previous_week_is_the_last_complete_local_week() -> None:
    monday_morning = datetime(2026, 11, 30, 7, 0, tzinfo=STOCKHOLM)
    assert Week.previous(monday_morning) == WEEK
    # 23:30 UTC on Sunday is already Monday in Stockholm: week 48 is complete.
    assert Week.previous(datetime(2026, 11, 29, 23, 30, tzinfo=UTC)) == WEEK
    assert str(Week.previous(datetime(2027, 1, 4, 7, 0, tzinfo=STOCKHOLM))) == "2026-W53"


def test_excerpt_collapses_whitespace_and_cuts_at_a_word() -> None:
    assert make_excerpt("  Hej\n\n  världen  ") == "Hej världen"
    text = "ord " * 100
    excerpt = make_excerpt(text)
    assert len(excerpt) <= 280 and excerpt.endswith("ord…")
    assert make_excerpt("a" * 300) == "a" * 279 + "…"


MANY_READERS = (
    READER,
    Recipient("anna@katrineholm.se", organisation="Katrineholms kommun", groups=("kommuner",),
              keywords=("vinterväglag",)),
    Recipient("per@example.se", platforms=("x",)),
    Recipient("lisa@polisen.se", organisation="Polisen", organisations=("Polisen",),
              groups=("regioner",), keywords=("information",)),
    Recipient("ingen@example.se", groups=("ingen",)),
)  # fmt: skip


def build_together(
    engine: Engine, config: Config, recipients: Sequence[Recipient], now: datetime
) -> dict[str, DigestData]:
    """Every recipient's digest of WEEK by email, from one load of the week's data."""
    data = load_week_data(engine, WEEK, now=now)
    return {r.email: compose_digest(r, data, config.digest.top_posts) for r in recipients}


def test_digests_built_together_equal_digests_built_one_at_a_time(
    engine: Engine, config: Config
) -> None:
    now = local(11, 30, 7)
    alone = {r.email: build_digest(engine, config, r, WEEK, now=now) for r in MANY_READERS}
    together = build_together(engine, config, MANY_READERS, now)
    assert together == alone
    builder = make_digest_builder(engine, config, WEEK, now=now)
    assert {r.email: builder(r) for r in MANY_READERS} == alone
    assert together["anna@katrineholm.se"].mentions
    assert together["ingen@example.se"].is_empty


def test_a_large_baseline_read_in_another_process_gives_the_same_digests(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = local(11, 30, 7)
    on_a_thread = build_together(engine, config, MANY_READERS, now)
    # Any baseline counts as large: the four weeks before are read by a forkserver process
    # that opens the database from its URL (on PostgreSQL, with this test's own schema).
    monkeypatch.setattr(digest.load, "PROCESS_BASELINE_POSTS", 0)
    assert build_together(engine, config, MANY_READERS, now) == on_a_thread
    assert any(d.trends for d in on_a_thread.values())  # the baseline was there to compare


def test_a_builder_loads_the_week_once_so_later_posts_are_not_seen(
    engine: Engine, config: Config
) -> None:
    builder = make_digest_builder(engine, config, WEEK, now=local(11, 30, 7))
    before = builder(READER).summary.posts
    store(
        engine, "lansstyrelsen", [post("late", local(11, 27, 12), kind="article")], local(12, 1, 8)
    )
    assert builder(READER).summary.posts == before
    assert build(engine, config).summary.posts == before + 1


def test_terms_are_words_and_hashtags_once_per_post_whatever_the_punctuation() -> None:
    terms = TermExtractor()
    text = (
        "Skolan, skolan! (Vinterväglag) #halka @polisen E4 år2026 snö_röjning och covid-19 "
        "https://www.trafikverket.se/trafikinfo www.smhi.se\tkommunen.\nInte klockan"
    )
    # A link is no words (its host would trend with every post that links there); a
    # hyphenated compound is one term; stop words ("och", "inte") none.
    assert terms.extract("Snöröjning", text, ("Trafik", "#Krisinfo", "# ")) == {
        "snöröjning", "skolan", "vinterväglag", "covid-19", "kommunen", "klockan",
        "#trafik", "#krisinfo",
    }  # fmt: skip
    # Remembered pieces give the same answer the second time.
    expected = {"skolan", "vinterväglag", "covid-19", "kommunen", "klockan"}
    assert terms.extract(None, text, ()) == expected
    assert terms.extract(None, text, ()) == expected
    assert terms.extract(None, None, ()) == frozenset()
