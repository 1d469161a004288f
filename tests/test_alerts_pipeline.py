"""The round's reading of a pass's new posts (`monitor.alerts.pipeline`), on both databases: read
while the pass stores them, it finds what a round after the pass would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.alerts.pipeline import PassReader, load_new_posts
from monitor.alerts.rules import compile_rule, match_posts
from monitor.alerts.store import newest_post_id
from monitor.config import load_config
from monitor.db import make_engine, upgrade
from monitor.models import sources
from monitor.sources import sync_sources
from monitor.store import ingest_posts
from monitor.types import PostData
from tests.conftest import feed_source, write_config

NOW = datetime.now(UTC)


def post(number: int, title: str, age: timedelta = timedelta(hours=1)) -> PostData:
    return PostData(
        platform_post_id=str(number),
        kind="article",
        url=f"https://www.flen.se/nyheter/{number}",
        author=None,
        published_at=NOW - age,
        title=title,
        text="Kommunen informerar.",
        html=None,
    )


def test_a_pass_read_while_it_runs_finds_what_a_round_after_it_would(
    tmp_path: Path, database_url: str
) -> None:
    body = (
        feed_source("https://www.flen.se/rss", "Flens kommun", key="flen")
        + feed_source("https://www.vingaker.se/rss", "Vingåkers kommun", key="vingaker")
        + '\n[[alerts]]\nname = "Kris"\nquery = "översvämning"\nnotify = ["json://x/y"]\n'
        + '\n[[alerts]]\nname = "Brand"\nquery = "brand*"\nnotify = ["json://x/y"]\n'
    )
    config = load_config(write_config(tmp_path, database_url, body))
    engine = make_engine(database_url)
    upgrade(engine)
    sync_sources(engine, config, NOW)
    with engine.connect() as connection:
        ids = dict(connection.execute(sa.select(sources.c.key, sources.c.id)).all())
    with engine.begin() as connection:  # before the pass: not new
        ingest_posts(connection, ids["flen"], [post(1, "Översvämning i våras")], now=NOW)
    since = datetime.now(UTC)
    with engine.begin() as connection:  # the pass's, with an id below where the reader begins
        ingest_posts(connection, ids["flen"], [post(7, "Översvämning vid bron")], now=since)
    # The reader starts from the newest post, as a pass hands it to the alert process: a post
    # stored below that id (another writer's, under PostgreSQL's sequence) is the round's.
    reader = PassReader(config, engine, since, after_id=newest_post_id(engine))
    with engine.begin() as connection:
        ingest_posts(connection, ids["flen"], [post(2, "Översvämning vid ån")], now=since)
    reader.read(datetime.now(UTC))
    assert [p.title for p in reader.posts.values()] == ["Översvämning vid ån"]
    with engine.begin() as connection:
        batch = [
            post(3, "Brandövning"),
            post(4, "Julmarknad"),
            post(5, "Gammal", timedelta(days=9)),
        ]
        ingest_posts(connection, ids["vingaker"], batch, now=since)
        ingest_posts(connection, ids["flen"], [post(6, "Branden släckt")], now=since)
    # The last batch is left for the round, as the pass's end is.
    oldest = NOW - timedelta(seconds=config.alerting.max_age)
    found, matched = reader.finish(["flen", "vingaker"], oldest)

    expected = load_new_posts(engine, ["flen", "vingaker"], since, oldest)
    rules = [compile_rule(rule) for rule in config.alerts]
    assert sorted(p.id for p in found) == sorted(p.id for p in expected)
    assert {name: [p.id for p in found] for name, found in matched.items()} == {
        name: [p.id for p in found] for name, found in match_posts(rules, expected).items()
    }
    assert {name: [p.title for p in found] for name, found in matched.items()} == {
        "Kris": ["Översvämning vid bron", "Översvämning vid ån"],
        "Brand": ["Brandövning", "Branden släckt"],
    }
    # Only the sources the round asks for: another worker's posts read meanwhile stay out.
    flen_only, _ = reader.finish(["flen"], oldest)
    assert sorted(p.title for p in flen_only) == [
        "Branden släckt",
        "Översvämning vid bron",
        "Översvämning vid ån",
    ]
    engine.dispose()


def test_a_spike_rule_reads_each_posts_latest_engagement(tmp_path: Path, database_url: str) -> None:
    from dataclasses import replace

    from monitor.alerts.pipeline import load_selection_times

    body = feed_source("https://www.flen.se/rss", "Flens kommun", key="flen") + (
        '\n[[alerts]]\nname = "Viralt"\nkind = "spike"\nmeasure = "engagement"\n'
        'notify = ["json://x/y"]\n'
    )
    config = load_config(write_config(tmp_path, database_url, body))
    engine = make_engine(database_url)
    upgrade(engine)
    sync_sources(engine, config, NOW)
    with engine.connect() as connection:
        source_id = connection.execute(sa.select(sources.c.id)).scalar_one()
    counted = replace(post(1, "Inlägg som tar fart"), metrics={"likes": 40, "reposts": 2})
    with engine.begin() as connection:
        ingest_posts(connection, source_id, [counted, post(2, "Inget räknat")], now=NOW)
    published, engagement = load_selection_times(engine, compile_rule(config.alerts[0]), NOW)
    engine.dispose()
    assert sorted(zip(published, engagement, strict=True)) == [
        (NOW - timedelta(hours=1), 0),  # never counted: 0
        (NOW - timedelta(hours=1), 42),
    ]
