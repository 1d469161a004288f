"""posts.engagement: the latest count's engagement, kept by the database (migration 0013).

Search's minimum engagement, the web app's lists and the exports read it instead of looking up
each post's newest post_metrics row; these tests hold it to what that look-up gives, whoever
writes the counts: ingest, erasure, retention, a hand-made correction, or an upgrade of a
database that had counts before the column existed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from monitor.db import SCHEMA_HEAD, _alembic_config, upgrade
from monitor.filters import PostFilter
from monitor.models import post_metrics, posts
from monitor.retention import erase_post
from monitor.search import search_posts
from monitor.types import ENGAGEMENT_NAMES
from tests.storedata import DAY, NOW, add_source, collect, post


def counted(number: int, likes: int, reposts: int | None = None, **changes: Any) -> Any:
    """Post `number` as collected with these counts (views are not engagement)."""
    metrics = {"likes": likes, "views": 1000} | ({} if reposts is None else {"reposts": reposts})
    return post(number, metrics=metrics, **changes)


def looked_up(engine: Engine) -> dict[int, int | None]:
    """Each post's engagement the slow way: its newest post_metrics row, summed."""
    m = post_metrics.c
    total = sum((sa.func.coalesce(m[name], 0) for name in ENGAGEMENT_NAMES[1:]),
                sa.func.coalesce(m[ENGAGEMENT_NAMES[0]], 0))  # fmt: skip
    newest = (
        sa.select(total).where(m.post_id == posts.c.id).order_by(m.id.desc()).limit(1)
    ).scalar_subquery()
    with engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(sa.select(posts.c.id, newest))}


def kept(engine: Engine) -> dict[int, int | None]:
    with engine.connect() as connection:
        found = connection.execute(sa.select(posts.c.id, posts.c.engagement))
        return {row[0]: row[1] for row in found}


def ids_by_number(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        found = connection.execute(sa.select(posts.c.platform_post_id, posts.c.id))
        return {int(row[0].removeprefix("id-")): row[1] for row in found}


def test_each_new_count_becomes_the_posts_engagement_and_a_post_never_counted_has_none(
    engine: Engine,
) -> None:
    source = add_source(engine)
    collect(engine, source, [counted(1, likes=3), counted(2, likes=5, reposts=2), post(3)])
    ids = ids_by_number(engine)
    assert kept(engine) == {ids[1]: 3, ids[2]: 7, ids[3]: None} == looked_up(engine)

    # A later pass with new counts: the newest count wins, views never add up.
    collect(engine, source, [counted(1, likes=10, reposts=1), counted(2, likes=5, reposts=2)],
            when=NOW + timedelta(hours=1))  # fmt: skip
    assert kept(engine) == {ids[1]: 11, ids[2]: 7, ids[3]: None} == looked_up(engine)


def test_erasing_a_post_or_deleting_its_latest_count_leaves_what_the_counts_left_say(
    engine: Engine,
) -> None:
    source = add_source(engine)
    collect(engine, source, [counted(1, likes=3), counted(2, likes=4)], when=NOW - DAY)
    collect(engine, source, [counted(1, likes=9), counted(2, likes=6)], when=NOW)
    ids = ids_by_number(engine)
    assert kept(engine) == {ids[1]: 9, ids[2]: 6}

    erase_post(engine, ids[1], reason="begäran från den registrerade", actor="test", now=NOW)
    with engine.begin() as connection:  # a correction by hand: the newest count was wrong
        newest = sa.select(sa.func.max(post_metrics.c.id)).where(post_metrics.c.post_id == ids[2])
        latest = newest.scalar_subquery()
        connection.execute(post_metrics.delete().where(post_metrics.c.id == latest))
    assert kept(engine) == {ids[1]: None, ids[2]: 4} == looked_up(engine)

    with engine.begin() as connection:  # and the one left corrected in place
        connection.execute(post_metrics.update().where(post_metrics.c.post_id == ids[2])
                           .values(likes=40))  # fmt: skip
    assert kept(engine) == {ids[1]: None, ids[2]: 40} == looked_up(engine)


def test_an_older_database_gets_every_posts_engagement_from_the_upgrade(engine: Engine) -> None:
    source = add_source(engine)
    collect(engine, source, [counted(1, likes=3), counted(2, likes=1, reposts=1), post(3)],
            when=NOW - DAY)  # fmt: skip
    collect(engine, source, [counted(1, likes=8)], when=NOW)
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0012")
        assert "engagement" not in {c["name"] for c in sa.inspect(connection).get_columns("posts")}

    assert upgrade(engine) == ("0012", SCHEMA_HEAD)
    ids = ids_by_number(engine)
    assert kept(engine) == {ids[1]: 8, ids[2]: 2, ids[3]: None} == looked_up(engine)
    # And the triggers are back: a new count after the upgrade is kept too.
    collect(engine, source, [counted(3, likes=12)], when=NOW + DAY)
    assert kept(engine)[ids[3]] == 12


def test_search_with_a_minimum_engagement_finds_the_posts_at_or_above_it_by_latest_count(
    engine: Engine,
) -> None:
    source = add_source(engine)
    collect(engine, source, [counted(1, likes=30), counted(2, likes=19), post(3)], when=NOW - DAY)
    # Post 2 rose past the minimum, post 1 fell below it (a like withdrawn is a count too).
    collect(engine, source, [counted(1, likes=12), counted(2, likes=25)], when=NOW)
    ids = ids_by_number(engine)
    found = search_posts(engine, "kommunen", PostFilter(min_engagement=20), limit=10)
    assert [(hit.id, hit.engagement) for hit in found] == [(ids[2], 25)]
    every = search_posts(engine, "kommunen", PostFilter(), limit=10)
    assert {hit.id: hit.engagement for hit in every} == {ids[1]: 12, ids[2]: 25, ids[3]: None}
