"""Ingest: bulk, idempotent, one transaction per source attempt, on both databases."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collectors.feeds import parse_and_prepare, parse_feed
from monitor.models import collection_runs, post_metrics, post_revisions, posts, sources
from monitor.rows import compute_content_hash, prepare_posts, sort_posts
from monitor.schedule import SchedulePolicy
from monitor.store import (
    BATCH_SIZE,
    Attempt,
    IngestCounts,
    ingest_posts,
    record_attempt,
    record_attempts,
)
from monitor.types import (
    CollectResult,
    CollectStatus,
    Media,
    PostData,
    SourceState,
    UnchangedPost,
)
from tests.conftest import collect_one, configure, feed_source
from tests.feedserver import FeedServer

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def add_source(engine: Engine, key: str = "feed:example.se/rss") -> int:
    with engine.begin() as connection:
        return connection.execute(
            sources.insert()
            .values(
                key=key, platform="feed", url="https://example.se/rss",
                organisation="Exempel kommun", groups=[], cursor={}, status="new",
                consecutive_failures=0, active=True, enabled=True, created_at=NOW, updated_at=NOW,
            )
            .returning(sources.c.id)
        ).scalar_one()  # fmt: skip


def post(number: int, **changes: Any) -> PostData:
    values: dict[str, Any] = {
        "platform_post_id": f"post-{number}",
        "kind": "article",
        "url": f"https://example.se/nyheter/{number}",
        "published_at": NOW - timedelta(minutes=number),
        "title": f"Nyhet {number}",
        "text": "Kommunen informerar.",
        "html": "<p>Kommunen informerar.</p>",
        "raw": {"id": f"post-{number}"},
    }
    return PostData(**(values | changes))


def attempt(engine: Engine, source_id: int, items: list[PostData], when: datetime = NOW) -> Any:
    result = CollectResult(CollectStatus.OK, posts=tuple(items), state=SourceState(etag='"v1"'))
    return record_attempt(engine, Attempt(source_id, when, when, SchedulePolicy()), result)


def rows(engine: Engine, table: sa.Table) -> list[sa.Row]:
    with engine.connect() as connection:
        return connection.execute(sa.select(table).order_by(table.c.id)).all()


def test_failure_in_a_later_batch_leaves_no_rows_of_that_attempt(engine: Engine) -> None:
    source_id = add_source(engine)
    items = [post(i) for i in range(BATCH_SIZE)] + [post(BATCH_SIZE, kind=None)]

    record = attempt(engine, source_id, items)

    assert record.status is CollectStatus.FAILED
    assert record.error and record.error.startswith("could not store posts:")
    assert rows(engine, posts) == []
    (run,) = rows(engine, collection_runs)
    assert (run.status, run.posts_new, run.error) == ("failed", 0, record.error)
    (source,) = rows(engine, sources)
    assert (source.status, source.consecutive_failures, source.etag) == ("failing", 1, None)


def test_ingest_spans_batches_and_counts_every_post(engine: Engine) -> None:
    source_id = add_source(engine)
    items = [post(i) for i in range(2 * BATCH_SIZE + 7)]
    first = attempt(engine, source_id, items)
    second = attempt(engine, source_id, items)
    assert (first.counts.new, first.counts.unchanged) == (len(items), 0)
    assert (second.counts.new, second.counts.updated, second.counts.unchanged) == (0, 0, len(items))
    assert len(rows(engine, posts)) == len(items)


def test_an_id_listed_twice_in_one_feed_is_stored_once(engine: Engine) -> None:
    source_id = add_source(engine)
    record = attempt(engine, source_id, [post(1), post(1, title="Dubblett"), post(2)])
    assert record.counts.new == 2
    assert sorted(r.title for r in rows(engine, posts)) == ["Nyhet 1", "Nyhet 2"]


def test_undated_post_is_dated_at_first_sight_and_keeps_that_date_when_edited(
    engine: Engine,
) -> None:
    source_id = add_source(engine)
    attempt(engine, source_id, [post(1, published_at=None)])
    attempt(engine, source_id, [post(1, published_at=None, title="Rättad")], when=NOW + HOUR)
    (stored,) = rows(engine, posts)
    assert stored.title == "Rättad"
    assert stored.published_at == stored.first_seen_at == NOW
    assert stored.fetched_at == NOW + HOUR


def test_nul_characters_are_dropped_on_both_databases(engine: Engine) -> None:
    source_id = add_source(engine)
    record = attempt(engine, source_id, [post(1, title="Noll\x00tecken", raw={"a": "b\x00"})])
    assert record.status is CollectStatus.OK
    (stored,) = rows(engine, posts)
    assert stored.title == "Nolltecken" and stored.raw == {"a": "b"}


# A malformed feed's item with raw ESC sequences and &#27; (which feedparser decodes to ESC):
# a window title change, colours, a blink, a screen clear.
HOSTILE_FEED = (
    b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Nyheter</title>"
    b"<link>https://example.se/</link><item>"
    b"<title>Kris\x1b]0;pwned\x07 i l&#228;net &#27;[2Jnu</title>"
    b"<link>https://example.se/nyheter/1</link><guid>kris-1</guid>"
    b"<description>&lt;p&gt;Vatten \x1b[31mstiger\x1b[0m &amp;#27;[5m vid\tbron&lt;/p&gt;"
    b"</description><author>info@example.se (\x1b[7mAnna)</author>"
    b"<category>\x1b[7mkris</category>"
    b"<pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate></item></channel></rss>"
)
CONTROL = {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))} - {"\t", "\n"}


def test_control_characters_from_a_hostile_feed_are_not_stored(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add("/nyheter.xml", body=HOSTILE_FEED)
    config = configure(tmp_path, engine, feed_source(url))

    collect_one(config, engine)

    (stored,) = rows(engine, posts)
    assert stored.title == "Kris]0;pwned i länet [2Jnu"
    assert stored.text == "Vatten [31mstiger[0m [5m vid bron"
    assert stored.author == "info@example.se ([7mAnna)"
    assert stored.tags == ["[7mkris"]
    fields = (stored.title, stored.text, stored.html, stored.author, *stored.tags)
    assert not CONTROL & set("".join(fields))
    assert "\t" in stored.html  # tab and newline are text, not control


def test_c1_controls_from_an_api_are_not_stored(engine: Engine) -> None:
    # JSON APIs hand over any code point: U+009B is a one-character CSI to many terminals.
    source_id = add_source(engine)
    hostile = post(1, title="Ny\x9b2Jhet", text="rad\x85ett\r\nrad två", author="\x9d0;x\x9cA")

    attempt(engine, source_id, [hostile])

    (stored,) = rows(engine, posts)
    assert (stored.title, stored.text, stored.author) == ("Ny2Jhet", "radett\nrad två", "0;xA")


def test_edit_and_new_counts_together_write_a_revision_and_a_metric(engine: Engine) -> None:
    source_id = add_source(engine)
    attempt(engine, source_id, [post(1, metrics={"views": 10, "likes": 1})])
    attempt(engine, source_id, [post(1, metrics={"views": 10, "likes": 1})])
    record = attempt(
        engine, source_id, [post(1, title="Ny rubrik", metrics={"views": 25, "likes": 1})]
    )
    assert (record.counts.updated, record.counts.metrics) == (1, 1)
    assert [(m.views, m.likes) for m in rows(engine, post_metrics)] == [(10, 1), (25, 1)]
    (revision,) = rows(engine, post_revisions)
    assert revision.title == "Nyhet 1"


def test_media_tags_and_timestamps_round_trip_as_stored(engine: Engine) -> None:
    source_id = add_source(engine)
    image = Media(type="image", url="https://example.se/bild.jpg", alt_text="Snöplog på E4")
    ingest_and_read = post(1, tags=("snö", "trafik"), media=(image,), language="sv")
    attempt(engine, source_id, [ingest_and_read])
    (stored,) = rows(engine, posts)
    assert stored.tags == ["snö", "trafik"]
    assert stored.media == [
        {"type": "image", "url": "https://example.se/bild.jpg", "alt_text": "Snöplog på E4"}
    ]
    assert stored.published_at == NOW - timedelta(minutes=1)
    assert stored.published_at.tzinfo is not None
    assert stored.content_hash == compute_content_hash(ingest_and_read)


def test_addresses_that_are_not_http_are_not_stored(engine: Engine) -> None:
    source_id = add_source(engine)
    hostile = post(
        1,
        url="javascript:alert(1)",
        links=("https://example.se/ok", "javascript:alert(2)", "data:text/html,<b>x</b>", "/rel"),
        media=(
            Media(
                type="image", url="javascript:alert(3)", thumbnail_url="https://example.se/t.jpg"
            ),
            Media(type="video", url="HTTPS://EXAMPLE.SE/film.mp4", thumbnail_url="vbscript:x"),
        ),
    )
    attempt(engine, source_id, [hostile])
    (stored,) = rows(engine, posts)
    assert stored.url is None
    assert stored.links == ["https://example.se/ok"]
    assert stored.media == [
        {"type": "image", "thumbnail_url": "https://example.se/t.jpg"},
        {"type": "video", "url": "HTTPS://EXAMPLE.SE/film.mp4"},
    ]
    # The hash covers what was stored: the same post without the bad addresses is unchanged.
    clean = post(
        1,
        url=None,
        links=("https://example.se/ok",),
        media=(
            Media(type="image", thumbnail_url="https://example.se/t.jpg"),
            Media(type="video", url="HTTPS://EXAMPLE.SE/film.mp4"),
        ),
    )
    assert stored.content_hash == compute_content_hash(clean)


def test_content_hash_ignores_counts_and_raw_payload() -> None:
    base = post(1)
    assert compute_content_hash(base) == compute_content_hash(
        post(1, metrics={"views": 99}, raw={"fetched": "later"})
    )
    assert compute_content_hash(base) != compute_content_hash(post(1, text="Ändrad text."))


def test_ingest_posts_is_idempotent_within_one_connection(engine: Engine) -> None:
    source_id = add_source(engine)
    with engine.begin() as connection:
        first = ingest_posts(connection, source_id, [post(1), post(2)], now=NOW)
        again = ingest_posts(connection, source_id, [post(1), post(2)], now=NOW)
    assert (first.new, again.new, again.unchanged) == (2, 0, 2)


def test_platform_deletions_date_the_posts_and_keep_their_content(engine: Engine) -> None:
    source_id = add_source(engine)
    attempt(engine, source_id, [post(1), post(2)])
    gone = CollectResult(CollectStatus.OK, deleted=("post-2", "never-stored"))
    later = NOW + HOUR
    record_attempt(engine, Attempt(source_id, later, later, SchedulePolicy()), gone)
    by_id = {r.platform_post_id: r for r in rows(engine, posts)}
    assert by_id["post-1"].deleted_at is None
    assert by_id["post-2"].deleted_at == later and by_id["post-2"].title == "Nyhet 2"


def test_resolved_account_id_and_api_units_are_kept(engine: Engine) -> None:
    from monitor.usage import read_api_usage

    source_id = add_source(engine)
    spent = CollectResult(CollectStatus.OK, resolved_id="109876", api_units=7)
    for day in (NOW - timedelta(days=40), NOW - timedelta(days=1), NOW, NOW):
        record_attempt(engine, Attempt(source_id, day, day, SchedulePolicy()), spent)
    (source,) = rows(engine, sources)
    assert source.platform_id == "109876"
    usage = read_api_usage(engine, NOW)
    assert usage.today == {"feed": 14}
    assert usage.this_month == {"feed": 21}


def stored_posts(engine: Engine, source_id: int) -> list[dict[str, Any]]:
    """A source's posts as stored, without what differs between sources (ids, times)."""
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(posts).where(posts.c.source_id == source_id).order_by(posts.c.id)
        ).all()
        result = []
        for row in found:
            values = dict(row._mapping)
            for name in ("id", "source_id", "first_seen_at", "fetched_at", "search"):
                values.pop(name, None)
            if connection.dialect.name == "sqlite":
                values["stems"] = connection.execute(
                    sa.text("SELECT title, body FROM posts_search WHERE rowid = :id"),
                    {"id": row.id},
                ).one()
            result.append(values)
        return result


def test_posts_prepared_beside_the_parsing_are_stored_as_the_store_prepares_them(
    engine: Engine,
) -> None:
    """A feed's row values are computed in the parse worker (monitor.rows); stored, they must
    be what the store computes itself: the same columns, raw payload, hash, terms and search
    stems."""
    body = (Path(__file__).parent / "fixtures" / "feeds" / "rss20.xml").read_bytes()
    parsed = parse_and_prepare(body, url="https://example.se/rss")
    assert len(parsed.prepared) == len(parsed.posts) > 0
    # The prepared posts travel without their raw payload, which their values hold encoded.
    assert {post.platform_post_id for post in parsed.posts if post.raw} == set()
    whole = parse_feed(body, url="https://example.se/rss").posts
    beside, here = add_source(engine, "feed:a"), add_source(engine, "feed:b")
    state = SourceState(etag='"v1"')
    for source_id, found, prepared in ((beside, parsed.posts, parsed.prepared), (here, whole, ())):
        result = CollectResult(CollectStatus.OK, posts=found, state=state, prepared=prepared)
        record = record_attempt(engine, Attempt(source_id, NOW, NOW, SchedulePolicy()), result)
        assert record.counts.new == len(parsed.posts)

    assert stored_posts(engine, beside) == stored_posts(engine, here)


def test_a_preparation_of_another_post_is_not_stored(engine: Engine) -> None:
    """A collector that rebuilds its posts after parsing (YouTube's, Flickr's adapters) must
    not get the values prepared for the posts it replaced."""
    original = post(1)
    (prepared,) = prepare_posts([original])
    edited = dataclasses.replace(original, title="Rättad rubrik")
    source_id = add_source(engine)
    result = CollectResult(CollectStatus.OK, posts=(edited,), prepared=(prepared,))
    record_attempt(engine, Attempt(source_id, NOW, NOW, SchedulePolicy()), result)

    (stored,) = rows(engine, posts)
    assert stored.title == "Rättad rubrik"
    assert stored.content_hash == compute_content_hash(edited) != prepared.content_hash


def test_a_remembered_read_leaves_out_only_posts_unchanged_since() -> None:
    """What a feed repeats unchanged is neither prepared nor sent to the store; what is new,
    edited, counted (counts move without the content) or listed twice still is."""
    counted = post(3, metrics={"views": 10})
    memory = sort_posts([post(1), post(2), counted, post(4)], None).seen
    assert len(memory.split()) == 4

    edited = post(2, title="Rättad rubrik")
    again = [post(5), post(1), edited, dataclasses.replace(counted, metrics={"views": 12}),
             post(4), post(4, title="Samma id igen")]  # fmt: skip
    found = sort_posts(again, memory)

    assert [p.platform_post_id for p in found.posts] == ["post-5", "post-2", "post-3", "post-4",
                                                         "post-4"]  # fmt: skip
    assert [p.post for p in found.prepared] == list(found.posts)
    assert found.unchanged == (
        UnchangedPost("post-1", compute_content_hash(post(1)), post(1).published_at),
    )
    # The next read remembers this one, unchanged posts included.
    assert [p.platform_post_id for p in sort_posts([post(1), edited], found.seen).unchanged] == [
        "post-1",
        "post-2",
    ]
    # Without a memory, nothing is left out.
    assert sort_posts(again, None).unchanged == ()


def test_posts_sent_as_unchanged_are_counted_and_checked_against_the_database(
    engine: Engine,
) -> None:
    source_id = add_source(engine)
    attempt(engine, source_id, [post(1), post(2), post(3)])
    with engine.begin() as connection:
        connection.execute(posts.delete().where(posts.c.platform_post_id == "post-2"))

    def unchanged(item: PostData) -> UnchangedPost:
        return UnchangedPost(item.platform_post_id, compute_content_hash(item), item.published_at)

    def remembered(
        *items: UnchangedPost, new: tuple[PostData, ...] = (), since: datetime | None = None
    ) -> Any:
        with engine.begin() as connection:
            return ingest_posts(
                connection, source_id, new, now=NOW, unchanged=items, published_since=since
            )

    counts = remembered(unchanged(post(1)), unchanged(post(3)), new=(post(4),))
    assert (counts.new, counts.unchanged, counts.contradicted) == (1, 2, 0)
    # Deleted by hand, or stored with other content than remembered: contradicted. Checked
    # also when nothing else is stored.
    counts = remembered(unchanged(post(2)), unchanged(post(1, title="Annan rubrik")))
    assert (counts.unchanged, counts.contradicted) == (2, 2)
    # A post retention would not keep is not missed.
    counts = remembered(unchanged(post(2)), since=NOW)  # post 2 is two minutes older
    assert (counts.unchanged, counts.contradicted) == (0, 0)


def test_sources_stored_together_keep_their_posts_apart(engine: Engine) -> None:
    """A collection stores many sources' attempts in one transaction, their posts in shared
    statements: each source's posts, counts, revisions and metrics stay its own, the same
    platform id in two sources included."""
    first, second = add_source(engine, "feed:a"), add_source(engine, "feed:b")

    def together(*found: tuple[int, list[PostData]]) -> list[IngestCounts]:
        items = [
            (
                Attempt(source_id, NOW, NOW, SchedulePolicy()),
                CollectResult(CollectStatus.OK, posts=tuple(items)),
            )
            for source_id, items in found
        ]
        return [record.counts for record in record_attempts(engine, items)]

    assert together((first, [post(1), post(2)]), (second, [post(1, title="B"), post(3)])) == [
        IngestCounts(new=2),
        IngestCounts(new=2),
    ]
    counted = post(2, metrics={"views": 5})
    edited = post(1, title="Rättad")
    assert together((first, [edited, counted]), (second, [post(1, title="B"), post(4)])) == [
        IngestCounts(updated=1, unchanged=1, metrics=1),
        IngestCounts(new=1, unchanged=1),
    ]
    titles = {(r.source_id, r.platform_post_id): r.title for r in rows(engine, posts)}
    assert titles == {
        (first, "post-1"): "Rättad",
        (first, "post-2"): "Nyhet 2",
        (second, "post-1"): "B",
        (second, "post-3"): "Nyhet 3",
        (second, "post-4"): "Nyhet 4",
    }
    (revision,) = rows(engine, post_revisions)
    assert (revision.title, revision.superseded_at) == ("Nyhet 1", NOW)
    assert [(m.post_id, m.views) for m in rows(engine, post_metrics)] == [
        (titles_id, 5)
        for titles_id in [
            r.id for r in rows(engine, posts) if (r.source_id, r.title) == (first, "Nyhet 2")
        ]
    ]
