"""Newest-first search and its pages, over enough posts that SQLite takes each of its plans:
the sort of a rare word's matches, the walk by date against a set of a common word's, and the
walk that checks each post for a word in nearly every post (monitor.search._sqlite_page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from monitor.filters import PostFilter
from monitor.models import posts, sources
from monitor.search import FEW_MATCHES, search_posts

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
COUNT = 12_000  # a word in all of them is past the walk's check threshold; one in half is not


@pytest.fixture
def stored(engine: Engine) -> list[dict[str, Any]]:
    """COUNT posts of two sources, four at each minute (ties in published_at), with a word in
    every post, one in every other, one in every thousandth."""
    with engine.begin() as connection:
        town, agency = (
            connection.execute(
                sources.insert().values(
                    key=key, platform=platform, url=f"https://{key}.example.se/",
                    organisation=key, groups=[], cursor={}, status="ok",
                    consecutive_failures=0, active=True, enabled=True, created_at=NOW,
                    updated_at=NOW,
                ).returning(sources.c.id)
            ).scalar_one()
            for key, platform in (("town", "feed"), ("agency", "x"))
        )  # fmt: skip
        rows = [
            {
                "source_id": town if n % 10 == 0 else agency,
                "platform_post_id": f"p{n}",
                "kind": "post",
                "url": f"https://example.se/{n}",
                # Stored out of date order: ids do not follow time.
                "published_at": NOW - timedelta(minutes=(n * 7919 % COUNT) // 4),
                "title": None,
                "text": " ".join(
                    ["Kommunen informerar."]
                    + (["Ny skola öppnar."] if n % 2 == 0 else [])
                    + (["Vattenläcka på Storgatan."] if n % 1000 == 0 else [])
                ),
                "content_hash": f"h{n}",
                "fetched_at": NOW,
                "first_seen_at": NOW,
            }
            for n in range(COUNT)
        ]
        connection.execute(posts.insert(), rows)
        stored = connection.execute(
            posts.select().with_only_columns(
                posts.c.id, posts.c.source_id, posts.c.published_at, posts.c.text
            )
        ).mappings()
        return [dict(row) | {"town": row["source_id"] == town} for row in stored]


def newest(rows: list[dict[str, Any]]) -> list[int]:
    ordered = sorted(rows, key=lambda row: (row["published_at"], row["id"]), reverse=True)
    return [row["id"] for row in ordered]


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("kommunen", "Kommunen"),  # every post: checked post by post
        ("skola", "skola"),  # half: walked against the set of matches
        ("skol*", "skola"),  # the same, as a start of a word
        ("vattenläcka", "Vattenläcka"),  # twelve: sorted
    ],
)
def test_newest_first_pages_follow_published_at_then_id_without_overlap(
    engine: Engine, stored: list[dict[str, Any]], query: str, word: str
) -> None:
    since = NOW - timedelta(hours=30)
    expected = {
        "everything": newest([r for r in stored if word in r["text"]]),
        "town": newest([r for r in stored if word in r["text"] and r["town"]]),
        "since": newest([r for r in stored if word in r["text"] and r["published_at"] >= since]),
    }
    chosen = {
        "everything": PostFilter(),
        "town": PostFilter(sources=("town",)),
        "since": PostFilter(since=since),
    }
    assert len(expected["everything"]) in (12, COUNT // 2, COUNT)
    assert (len(expected["everything"]) < FEW_MATCHES) == (word == "Vattenläcka")

    for name, ids in expected.items():
        pages = [
            [hit.id for hit in search_posts(engine, query, chosen[name], 20, offset=offset)]
            for offset in (0, 20, 40)
        ]
        assert pages == [ids[0:20], ids[20:40], ids[40:60]], name
    far = search_posts(engine, query, PostFilter(), 20, offset=len(expected["everything"]) - 5)
    assert [hit.id for hit in far] == expected["everything"][-5:]
    if word != "Vattenläcka":  # the page did meet ties, and broke them by id
        shown = search_posts(engine, query, PostFilter(), 40)
        assert any(a.published_at == b.published_at for a, b in pairwise(shown))


def test_relevance_pages_do_not_overlap(engine: Engine, stored: list[dict[str, Any]]) -> None:
    first = search_posts(engine, "skola", PostFilter(), 20, sort="relevance")
    second = search_posts(engine, "skola", PostFilter(), 20, sort="relevance", offset=20)

    assert len(first) == len(second) == 20
    assert not {hit.id for hit in first} & {hit.id for hit in second}
    assert [hit.rank for hit in first] == sorted((hit.rank for hit in first), reverse=True)
    assert first[-1].rank >= second[0].rank


def test_a_common_word_absent_from_the_filtered_posts_falls_back_and_finds_none(
    engine: Engine, stored: list[dict[str, Any]]
) -> None:
    """`kommunen -skola` matches the 6,000 odd posts, none of the town's (all even): the walk
    over the town's posts finds nothing, and the plan after it says exactly that there is
    none, rather than what the walk happened to see."""
    town = PostFilter(sources=("town",))
    assert search_posts(engine, "kommunen -skola", town, 1) == []
    # The same word where it is common among the filtered posts: found by the first walk.
    agency = PostFilter(sources=("agency",))
    expected = [r["id"] for r in stored if not r["town"] and "skola" not in r["text"]]
    hits = search_posts(engine, "kommunen -skola", agency, 20)
    assert [hit.id for hit in hits] == [i for i in newest(stored) if i in set(expected)][:20]
