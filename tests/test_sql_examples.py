"""The SQL in the README's "Questions in SQL" answers its questions on both databases, through
the stable views `posts_latest` and `daily_activity`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import sources
from monitor.schedule import SchedulePolicy
from monitor.store import Attempt, record_attempt
from monitor.types import CollectResult, CollectStatus, PostData, SourceState

README = Path(__file__).parent.parent / "README.md"
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # week 48
VIDEO = "https://www.youtube.com/watch?v=C2lUFynUYDK"


def readme_queries() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## Questions in SQL", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def add_source(engine: Engine, key: str, platform: str, organisation: str) -> int:
    with engine.begin() as connection:
        return connection.execute(
            sources.insert()
            .values(
                key=key, platform=platform, url="https://example.se/", organisation=organisation,
                groups=[], cursor={}, status="new", consecutive_failures=0, active=True,
                enabled=True, created_at=MONDAY, updated_at=MONDAY,
            )
            .returning(sources.c.id)
        ).scalar_one()  # fmt: skip


def post(number: int, when: datetime, **changes: Any) -> PostData:
    values: dict[str, Any] = {
        "platform_post_id": f"p{number}",
        "kind": "article",
        "url": f"https://example.se/{number}",
        "published_at": when,
        "title": f"Nyhet {number}",
        "text": "Kommunen informerar.",
    }
    return PostData(**(values | changes))


def collect(engine: Engine, source_id: int, items: list[PostData], when: datetime) -> None:
    result = CollectResult(CollectStatus.OK, posts=tuple(items), state=SourceState())
    record_attempt(engine, Attempt(source_id, when, when, SchedulePolicy()), result)


@pytest.fixture
def answers(engine: Engine) -> list[list[tuple[Any, ...]]]:
    kommun = add_source(engine, "feed:katrineholm", "feed", "Katrineholms kommun")
    skatt = add_source(engine, "youtube:skatteverket", "youtube", "Skatteverket")
    tyst = add_source(engine, "mastodon:tyst", "mastodon", "Tysta myndigheten")
    collect(engine, tyst, [post(9, datetime(2026, 10, 1, 9, 0, tzinfo=UTC), kind="post")], MONDAY)
    news = [post(1, MONDAY), post(2, MONDAY + timedelta(days=2))]
    collect(engine, kommun, news, MONDAY + timedelta(days=3))
    # News 1 is edited the next day.
    edited = [post(1, MONDAY, title="Nyhet 1, rättad"), news[1]]
    collect(engine, kommun, edited, MONDAY + timedelta(days=4))
    video = post(3, MONDAY + timedelta(days=1), kind="video", url=VIDEO, title="Deklarera")
    for day, views, likes in [(1, 100, 5), (2, 900, 40), (5, 1500, 61)]:
        counted = PostData(**(vars(video) | {"metrics": {"views": views, "likes": likes}}))
        collect(engine, skatt, [counted], MONDAY + timedelta(days=day, hours=1))
    with engine.connect() as connection:
        return [list(map(tuple, connection.execute(sa.text(q)))) for q in readme_queries()]


def test_the_readme_asks_five_questions() -> None:
    assert len(readme_queries()) == 5


def test_each_readme_query_answers_its_question(answers: list[list[tuple[Any, ...]]]) -> None:
    most, top, growth, quiet, changed = answers
    assert [(o, int(p), int(e)) for o, p, e in most] == [
        ("Katrineholms kommun", 2, 0),
        ("Skatteverket", 1, 61),
    ]
    assert [(row[0], row[3], row[5], row[6]) for row in top] == [
        ("Skatteverket", "Deklarera", 61, VIDEO)
    ]
    assert [(views, likes) for _, views, likes in growth] == [(100, 5), (900, 40), (1500, 61)]
    assert [row[0] for row in quiet] == ["mastodon:tyst"]
    assert [(row[0], row[1]) for row in changed] == [("Katrineholms kommun", "Nyhet 1, rättad")]
