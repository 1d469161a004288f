"""A known platform's feed is that platform everywhere (issue 13, item 3): `sources.channel`
as sync, the store and migration 0014 set it, and the filters, exports, search, status, compare
and the web reading it, on both databases."""

from __future__ import annotations

import csv
import io
import json
import os
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from digest.load import build_digest, load_comparisons, recipients_from_config
from monitor.cli import app
from monitor.config import Config, load_config
from monitor.db import _alembic_config, make_engine
from monitor.models import sources
from monitor.sources import sync_sources
from tests import webserver
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
from tests.smtpserver import free_port

runner = CliRunner()
CHANNELS = {
    "flen-nyheter": "feed",
    "skatteverket-youtube": "youtube",
    "trafikverket-flickr": "flickr",
    "krisinformation-mastodon": "mastodon",  # served from loopback: known by its posts
}


@pytest.fixture
def config(tmp_path: Path, engine: Engine) -> Config:
    config = setup_config(
        tmp_path, engine, CHANNELS_CONFIG + '\n[web]\nsecret_env = "OMVARLD_WEB_SECRET"\n'
    )
    store_channel_world(engine)
    return config


def stored_channels(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sources.c.key, sources.c.channel))
        return {key: channel for key, channel in rows}


def omvarld(config: Config, *args: str) -> str:
    result = runner.invoke(app, ["--config", str(config.path), *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_each_feed_is_stored_under_its_platform_by_its_address_or_its_posts(
    engine: Engine, config: Config
) -> None:
    assert stored_channels(engine) == CHANNELS


def test_a_feed_moved_to_another_address_is_known_again_by_the_new_one(
    engine: Engine, config: Config
) -> None:
    moved = config.path.read_text(encoding="utf-8").replace(
        "https://www.flen.se/rss", "https://vimeo.com/flenskommun/videos/rss"
    )
    config.path.write_text(moved, encoding="utf-8")
    sync_sources(engine, load_config(config.path), local(12, 1, 0))

    assert stored_channels(engine) == CHANNELS | {"flen-nyheter": "vimeo"}


def test_platform_filter_finds_a_youtube_channels_feed_and_feed_finds_every_feed(
    config: Config,
) -> None:
    def found(query: str, *platforms: str) -> list[tuple[str, str, str]]:
        options = [option for p in platforms for option in ("--platform", p)]
        printed = omvarld(config, "posts", "search", query, *options, "--format", "jsonl")
        hits = [json.loads(line) for line in printed.splitlines()]
        return sorted((h["source_key"], h["platform"], h["channel"]) for h in hits)

    assert found("deklarera", "youtube") == [("skatteverket-youtube", "feed", "youtube")]
    assert found("vinterväglag", "flickr", "mastodon") == [
        ("krisinformation-mastodon", "feed", "mastodon"),
        ("trafikverket-flickr", "feed", "flickr"),
    ]
    assert [key for key, _, _ in found("vinterväglag", "feed")] == [
        "flen-nyheter", "krisinformation-mastodon", "trafikverket-flickr",
    ]  # fmt: skip


def test_collect_platform_takes_a_youtube_channels_feed_and_feed_takes_every_feed(
    engine: Engine, config: Config
) -> None:
    # Nothing due (checked in an hour): collect says which of the chosen sources is next,
    # without fetching anything.
    later = datetime.now(UTC) + timedelta(hours=1)
    with engine.begin() as connection:
        connection.execute(sources.update().values(next_check_at=later))

    youtube = omvarld(config, "collect", "--platform", "youtube")
    feeds = omvarld(config, "collect", "--platform", "feed")

    assert "the next of the 1 youtube source, skatteverket-youtube, is due at" in youtube
    assert "the next of the 4 feed sources" in feeds


def test_the_search_table_shows_the_platform_readers_know(config: Config) -> None:
    table = omvarld(config, "posts", "search", "deklarera")
    (row,) = [line for line in table.splitlines() if "Skatteverket" in line]
    assert "youtube" in row and "feed" not in row


def test_exports_carry_the_channel_beside_the_stored_platform(
    tmp_path: Path, config: Config
) -> None:
    out = tmp_path / "posts.csv"
    omvarld(config, "export", "posts", "--format", "csv", "--out", str(out), "--platform", "flickr")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [(r["source_key"], r["platform"], r["channel"]) for r in rows] == [
        ("trafikverket-flickr", "feed", "flickr")
    ]
    dictionary = json.loads((tmp_path / "posts.csv.dictionary.json").read_text(encoding="utf-8"))
    assert "channel" in json.dumps(dictionary)


def test_status_and_sources_list_say_youtube_collected_as_a_feed(config: Config) -> None:
    listed = {
        line.split()[1]: line
        for line in omvarld(config, "sources", "list").splitlines()
        if "│" in line
    }
    assert "youtube (feed)" in listed["skatteverket-youtube"]
    assert "mastodon (feed)" in listed["krisinformation-mastodon"]
    assert "(feed)" not in listed["flen-nyheter"]
    # status: the platform under each source's key.
    rows = [line for line in omvarld(config, "status").splitlines() if line.startswith("│")]
    cells = [row.split("│")[1].strip() for row in rows]
    under = {key: cells[n + 1] for n, key in enumerate(cells[:-1]) if key in CHANNELS}
    assert under == {
        "flen-nyheter": "feed",
        "skatteverket-youtube": "youtube (feed)",
        "trafikverket-flickr": "flickr (feed)",
        "krisinformation-mastodon": "mastodon (feed)",
    }
    status = json.loads(omvarld(config, "status", "--json"))
    assert {s["key"]: s["channel"] for s in status} == CHANNELS


def test_compare_has_a_row_per_platform_readers_know_not_one_feed_row(
    engine: Engine, config: Config
) -> None:
    rows = load_comparisons(engine, WEEK, now=local(11, 30, 7))
    assert sorted((r.organisation, r.platform, r.posts) for r in rows) == [
        ("Flens kommun", "feed", 3),
        ("Krisinformation.se", "mastodon", 1),
        ("Skatteverket", "youtube", 1),
        ("Trafikverket", "flickr", 1),
    ]
    printed = omvarld(config, "compare", "--week", str(WEEK), "--format", "jsonl")
    assert {json.loads(line)["platform"] for line in printed.splitlines()} == {
        "feed", "mastodon", "youtube", "flickr",
    }  # fmt: skip


def test_the_web_shows_and_filters_by_the_platform_readers_know(
    tmp_path: Path, config: Config
) -> None:
    env = {**os.environ, "OMVARLD_WEB_SECRET": "s" * 32}
    log = tmp_path / f"web-{time.monotonic_ns()}.log"
    with webserver.serve(config.path, env, free_port(), log) as (_, base):

        def page(path: str) -> str:
            with urllib.request.urlopen(base + path, timeout=30) as answer:
                return str(answer.read().decode())

        found = page("/search?platform=youtube")
        assert "Deklarera digitalt" in found and "Julmarknad" not in found
        assert "Skatteverket · YouTube" in found
        listed = page("/sources")
        assert "YouTube" in listed and "Flickr" in listed
        assert '<option value="vimeo"' in page("/search")
        listed_posts = json.loads(page("/api/posts?platform=mastodon"))["posts"]
        assert [(p["platform"], p["channel"]) for p in listed_posts] == [("feed", "mastodon")]
        assert "Krisinformation.se · Mastodon" in page(f"/posts/{listed_posts[0]['id']}")
        # The week's posts per organisation and platform, each row leading to its posts.
        home = page("/?week=2026-W48").replace("&amp;", "&")
        assert "<td>YouTube</td>" in home and "platform=youtube" in home
        assert "<td>Flickr</td>" in home and "<td>Mastodon</td>" in home
        compared = page("/compare?week=2026-W48")
        assert "<td>YouTube</td>" in compared and "<td>Flickr</td>" in compared


def test_migration_0014_labels_stored_feeds_by_their_address_or_newest_post(
    database_url: str,
) -> None:
    from alembic import command

    engine = make_engine(database_url)
    now = local(11, 1, 0).replace(tzinfo=None)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0012")
        for key, url in (
            ("yt", "https://www.youtube.com/feeds/videos.xml?channel_id=UC1"),
            ("loopback", "http://127.0.0.1:8000/m.xml"),
            ("web", "https://www.flen.se/rss"),
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO sources (key, platform, url, organisation, groups, active,"
                    " enabled, cursor, status, consecutive_failures, created_at, updated_at)"
                    " VALUES (:key, 'feed', :url, 'Org', '[]', true, true, '{}', 'new', 0,"
                    " :now, :now)"
                ),
                {"key": key, "url": url, "now": now},
            )
        connection.execute(
            sa.text(
                "INSERT INTO posts (source_id, platform_post_id, kind, url, published_at, title,"
                " text, tags, links, mentions, other_mentions, media, content_hash, fetched_at,"
                " first_seen_at) SELECT id, 'p1', 'post', :url, :now, 't', 't', '[]', '[]',"
                " '[]', 0, '[]', 'h', :now, :now FROM sources WHERE key = 'loopback'"
            ),
            {"url": "https://mastodon.nu/@kris/117695141314579341", "now": now},
        )
        command.upgrade(_alembic_config(connection), "head")
        view = connection.execute(sa.text("SELECT source_key, channel FROM posts_latest")).all()

    assert stored_channels(engine) == {"yt": "youtube", "loopback": "mastodon", "web": "feed"}
    assert [tuple(row) for row in view] == [("loopback", "mastodon")]
    engine.dispose()


def test_a_recipient_following_a_feed_platform_gets_its_feeds(
    tmp_path: Path, engine: Engine, config: Config
) -> None:
    body = CHANNELS_CONFIG + (
        '\n[[recipients]]\nemail = "foto@flen.se"\nplatforms = ["flickr", "vimeo"]\n'
    )
    (tmp_path / "vimeo").mkdir()
    url = engine.url.render_as_string(hide_password=False)
    following = load_config(write_config(tmp_path / "vimeo", url, body))
    (recipient,) = recipients_from_config(following)
    digest = build_digest(engine, following, recipient, WEEK, now=local(11, 30, 7))
    assert [(row.name, row.posts) for row in digest.by_platform] == [("flickr", 1)]


def test_a_news_feed_linking_to_one_video_stays_a_feed(
    tmp_path: Path, engine: Engine, config: Config
) -> None:
    body = CHANNELS_CONFIG + (
        '\n[[sources]]\nplatform = "feed"\nkey = "proxied"\nurl = "http://127.0.0.1:8000/n.xml"\n'
        'organisation = "Flens kommun"\n'
    )
    (tmp_path / "proxied").mkdir()
    url = engine.url.render_as_string(hide_password=False)
    sync_sources(
        engine, load_config(write_config(tmp_path / "proxied", url, body)), local(12, 1, 0)
    )
    video = post("v", local(11, 30, 9), url="https://www.youtube.com/watch?v=abc")
    news = post("n", local(11, 30, 8), url="https://www.flen.se/nyheter/julmarknad")
    store(engine, "proxied", [video, news], local(12, 1, 1))

    assert stored_channels(engine)["proxied"] == "feed"
