"""Issue 13's misleading digest cases, each shown gone, on both databases.

A demo-like world: a municipality's web feed, a YouTube channel feed, a Flickr feed and a
Mastodon feed (one served from loopback, as the demo serves its feeds), stored through the real
store, built and rendered as a recipient gets it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from digest.compose import (
    PhraseTexts,
    SourceHistory,
    TermTotals,
    count_phrases,
    find_rising_phrases,
    find_trends,
    new_history,
)
from digest.links import WebLinks
from digest.load import build_digest
from digest.model import Recipient
from digest.render import render_digest
from monitor.cli import app
from monitor.config import Config, load_config
from monitor.platforms import label_platform
from monitor.sources import sync_sources
from monitor.terms import find_phrases
from monitor.types import CollectStatus
from tests.conftest import write_config
from tests.digestdata import (
    CHANNELS_CONFIG,
    WEEK,
    local,
    post,
    setup_config,
    store,
    store_channel_world,
)

READER = Recipient(email="anna@flen.se", groups=("kommuner", "myndigheter"))


@pytest.fixture
def config(tmp_path: Path, engine: Engine) -> Config:
    config = setup_config(tmp_path, engine, CHANNELS_CONFIG)
    store_channel_world(engine)
    return config


def text_of(engine: Engine, config: Config, recipient: Recipient = READER) -> str:
    data = build_digest(engine, config, recipient, WEEK, now=local(11, 30, 7))
    return " ".join(render_digest(data, config.digest).text.split())


def test_feeds_of_known_platforms_are_labelled_by_their_platform(
    engine: Engine, config: Config
) -> None:
    data = build_digest(engine, config, READER, WEEK, now=local(11, 30, 7))
    # One row per real platform, not one "Webb/nyhetsflöde" row for four channels; the
    # loopback Mastodon feed is recognised by its posts' addresses.
    assert {row.name for row in data.by_platform} == {"feed", "youtube", "flickr", "mastodon"}
    text = text_of(engine, config)
    assert "* YouTube: 1 inlägg" in text
    assert "* Flickr: 1 inlägg" in text
    assert "* Mastodon: 1 inlägg" in text
    assert "Skatteverket · Webb/nyhetsflöde" not in text


def test_nothing_measured_is_shown_as_a_dash_and_no_engagement_line(
    engine: Engine, config: Config
) -> None:
    text = text_of(engine, config)
    assert "Engagemang:" not in text
    assert "engagemang 0" not in text
    assert "* Webb/nyhetsflöde: 3 inlägg, engagemang —, median per inlägg —" in text


def test_one_organisations_recurring_word_is_no_trend_and_each_trend_links_to_a_search(
    engine: Engine, config: Config
) -> None:
    data = build_digest(engine, config, READER, WEEK, now=local(11, 30, 7))
    # "klockan" is in three of Flen's posts only; "vinterväglag" in three organisations' posts.
    assert [trend.term for trend in data.trends] == ["vinterväglag"]
    web = WebLinks("https://omvarld.example.se")
    rendered = render_digest(data, config.digest, web)
    assert "klockan" not in rendered.text.split("TRENDER")[1]
    assert (
        "https://omvarld.example.se/search?q=vinterv%C3%A4glag&group=kommuner&group=myndigheter"
        "&since=2026-11-23&until=2026-11-29"
    ) in rendered.html.replace("&amp;", "&")


def test_shared_websites_leave_out_the_publishers_own_sites(engine: Engine, config: Config) -> None:
    data = build_digest(engine, config, READER, WEEK, now=local(11, 30, 7))
    # flen.se is Flen's own site, mastodon.nu Krisinformation's instance.
    assert [d.domain for d in data.domains] == ["krisinformation.se", "trafikverket.se"]


def test_groups_appear_by_their_declared_name(engine: Engine, config: Config) -> None:
    text = text_of(engine, config)
    assert "* Myndigheter: 3 inlägg" in text
    assert "* Kommuner: 3 inlägg" in text
    assert "eftersom du följer grupperna Kommuner och Myndigheter" in text


def test_a_source_added_to_the_config_is_announced_as_added_not_as_a_new_account(
    tmp_path: Path, engine: Engine, config: Config
) -> None:
    # As in the demo, a source enters the config after the week (Monday 06:00) and its first
    # collection finds posts of the week: history found, not a new account.
    late = tmp_path / "late"
    late.mkdir()
    body = CHANNELS_CONFIG + (
        '\n[[sources]]\nplatform = "feed"\nkey = "flen-ny"\nurl = "https://www.flen.se/ny/rss"\n'
        'organisation = "Flens kommun"\ngroups = ["kommuner"]\n'
    )
    url = engine.url.render_as_string(hide_password=False)
    added = load_config(write_config(late, url, body))
    sync_sources(engine, added, local(11, 30, 6))
    store(
        engine,
        "flen-ny",
        [post("n1", local(11, 24, 9), kind="article", title="Nytt", url="https://www.flen.se/n")],
        local(11, 30, 6),
    )
    text = text_of(engine, added)
    assert "Flens kommun på Webb/nyhetsflöde (flen-ny) lades till i bevakningen" in text
    assert "nytt konto" not in text


def test_data_quality_counts_the_collection_that_brought_the_week_in(
    engine: Engine, config: Config
) -> None:
    # Collected after the week (Monday 06:00, as the demo collects before its digest): the
    # line must not say every source may miss posts beside "med fel 0".
    text = text_of(engine, config)
    assert "Alla 4 källor hämtades utan fel under veckan." in text
    store(engine, "flen-nyheter", [], local(11, 30, 6), status=CollectStatus.FAILED)
    text = text_of(engine, config)
    assert (
        "3 av 4 källor hämtades utan fel under veckan; inlägg kan saknas från 1 källa med fel."
        in (text)
    )


@pytest.mark.parametrize(
    ("url", "post_url", "label"),
    [
        ("https://www.youtube.com/feeds/videos.xml?channel_id=UCx", None, "youtube"),
        ("https://www.flickr.com/services/feeds/photos_public.gne?id=1@N04", None, "flickr"),
        ("https://mastodon.nu/@krisinformation.rss", None, "mastodon"),
        ("https://social.example.se/users/kommunen.rss", None, "mastodon"),
        ("https://bsky.app/profile/polisen.se/rss", None, "bluesky"),
        ("https://vimeo.com/regionsormland/videos/rss", None, "vimeo"),
        ("https://www.slideshare.net/rss/user/kommunen", None, "slideshare"),
        ("https://www.flen.se/rss", None, "feed"),
        ("https://www.flen.se/rss", "https://www.flen.se/nyheter/@evenemang", "feed"),
        ("http://127.0.0.1:8000/m.xml", "https://mastodon.nu/@kris/117695141314579341", "mastodon"),
        ("http://127.0.0.1:8000/y.xml", "https://www.youtube.com/watch?v=abc", "youtube"),
    ],
)
def test_known_platforms_feeds_are_recognised_by_their_address_or_their_posts(
    url: str, post_url: str | None, label: str
) -> None:
    assert label_platform("feed", url, post_url) == label
    assert label_platform("mastodon", url, post_url) == "mastodon"  # API sources keep theirs


def test_sources_list_shows_a_youtube_feed_as_youtube_collected_as_a_feed(
    engine: Engine, config: Config
) -> None:
    listed = CliRunner().invoke(
        app, ["--config", str(config.path), "sources", "list"], env={"COLUMNS": "200"}
    )
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[1]: line for line in listed.output.splitlines() if "│" in line}
    assert "youtube (feed)" in rows["skatteverket-youtube"]
    assert "flickr (feed)" in rows["trafikverket-flickr"]
    assert "(feed)" not in rows["flen-nyheter"]


def week_of(**terms: int) -> SourceHistory:
    """A source's history with `terms` used this week by that many of its posts, none before."""
    history = new_history()
    history.week_terms = Counter(terms)
    return history


def test_trends_need_posts_organisations_and_no_stop_word() -> None:
    followed = {
        1: week_of(ockuperad=2, kommer=3, klockan=5, snöstorm=2, **{"#och": 3}),
        2: week_of(ockuperad=1, kommer=3, snöstorm=1, **{"#och": 1}),
        3: week_of(snöstorm=1),
    }
    organisations = {1: "Flens kommun", 2: "Polisen", 3: "Polisen"}
    trends = find_trends(followed, followed, TermTotals.of(followed.values()), organisations)
    # "kommer" is a stop word; "klockan" one organisation's; a hashtag stays whatever it says.
    assert [trend.term for trend in trends] == ["#och", "snöstorm", "ockuperad"]
    # Two sources of one organisation are one organisation: no support.
    alone = {2: followed[2], 3: followed[3]}
    assert find_trends(alone, alone, TermTotals.of(alone.values()), organisations) == []


@pytest.mark.parametrize(
    ("title", "text", "phrases"),
    [
        ("Ny skola invigs", None, {"ny_skola", "skola_invigs"}),
        # Stop words, punctuation, numbers, links and hashtags end a phrase.
        ("Skolan, biblioteket och 2026 års budget", None, {"års_budget"}),
        (None, "Läs mer: https://www.flen.se/ny skola #skola invigs", set()),
        # The headline only: the title, else the text's first sentence.
        (
            None,
            "Julmarknaden öppnar lördag. Ny skola nämns här.",
            {"julmarknaden_öppnar", "öppnar_lördag"},
        ),
        ("Vinterväglag", "Halka varnas.", set()),
    ],
)
def test_phrases_are_neighbouring_words_of_the_headline(
    title: str | None, text: str | None, phrases: set[str]
) -> None:
    assert find_phrases(title, text) == phrases


def phrase_texts(**posts_of: list[str]) -> PhraseTexts:
    """Each source's (`s1`, `s2`, …) posts' phrases, as `digest.load` reads them."""
    return PhraseTexts.of(
        {int(key[1:]): f" {'  '.join(posts)} " for key, posts in posts_of.items() if posts}
    )


def test_a_phrase_trends_by_the_same_rules_and_its_word_is_not_counted_twice() -> None:
    week = phrase_texts(
        s1=["halka_varnas ny_skola", "ny_skola", "halka_varnas", "halka_varnas"],
        s2=["ny_skola skola_invigs"],
        s3=["stängd_väg"],
    )
    before = phrase_texts(s1=["halka_varnas"] * 12)  # three a week before: no rise
    organisations = {1: "Flens kommun", 2: "Katrineholms kommun", 3: "Polisen"}
    # Three posts of two organisations; one organisation's steady phrase is no trend, and
    # "skola invigs" has one post.
    rising = find_rising_phrases(week, before, organisations)
    assert rising == ("ny_skola",)
    assert count_phrases(week, rising) == {1: Counter(ny_skola=2), 2: Counter(ny_skola=1)}
    followed = {1: week_of(skola=2), 2: week_of(skola=1), 3: week_of()}
    for source_id, counted in count_phrases(week, rising).items():
        followed[source_id].week_phrases = counted

    def trends() -> list[tuple[str, int]]:
        totals = TermTotals.of(followed.values())
        found = find_trends(followed, followed, totals, organisations, rising)
        return [(t.term, t.count) for t in found]

    # "skola" trends only through "ny skola": shown once, as the phrase.
    assert trends() == [("ny skola", 3)]
    # A word used well beyond the phrase stays a trend of its own.
    followed[3].week_terms = Counter(skola=3)
    assert trends() == [("skola", 6), ("ny skola", 3)]
    # A recipient following one of the two organisations has no support for it.
    alone = {1: followed[1]}
    assert (
        find_trends(alone, followed, TermTotals.of(followed.values()), organisations, rising) == []
    )


def test_a_phrase_of_one_organisation_or_two_posts_is_no_trend() -> None:
    week = phrase_texts(s1=["ny_skola", "ny_skola", "ny_skola stängd_väg"], s2=["stängd_väg"])
    assert find_rising_phrases(week, phrase_texts(), {1: "Flens kommun", 2: "Flens kommun"}) == ()
    assert find_rising_phrases(week, phrase_texts(), {1: "Flens kommun", 2: "Polisen"}) == ()


def test_a_phrase_trend_links_to_a_phrase_search(engine: Engine, config: Config) -> None:
    for key, organisation_post in (("flen-nyheter", "n1"), ("trafikverket-flickr", "n2")):
        store(
            engine,
            key,
            [
                post(f"{organisation_post}-{n}", local(11, 24, 10 + n), title="Ny skola invigs")
                for n in range(2)
            ],
            local(11, 29, 22),
        )
    data = build_digest(engine, config, READER, WEEK, now=local(11, 30, 7))
    assert "ny skola" in [trend.term for trend in data.trends]
    assert "skola" not in [trend.term for trend in data.trends]
    rendered = render_digest(data, config.digest, WebLinks("https://omvarld.example.se"))
    assert "ny skola: 4 gånger (i snitt 0 per vecka tidigare)" in rendered.text
    assert "/search?q=%22ny+skola%22&group=kommuner" in rendered.html.replace("&amp;", "&")
