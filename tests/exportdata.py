"""Sample posts for the export and archive tests, stored the way collection stores them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import posts
from monitor.retention import erase_post
from monitor.schedule import SchedulePolicy
from monitor.store import Attempt, AttemptRecord, record_attempt
from monitor.types import CollectResult, CollectStatus, PostData
from tests.conftest import configure, source_row

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

FEED_KEY = "katrineholm"
MASTODON_KEY = "polisen"
SOURCES = f"""
[[sources]]
key = "{FEED_KEY}"
platform = "feed"
url = "https://www.katrineholm.se/rss"
organisation = "Katrineholms kommun"
groups = ["kommuner"]

[[sources]]
key = "{MASTODON_KEY}"
platform = "mastodon"
handle = "@polisen@polisen.se"
organisation = "Polisen"
groups = ["myndigheter", "blåljus"]
"""

# A post's text may be anything a stranger types: these begin like spreadsheet formulas.
FORMULA_TEXT = '=HYPERLINK("https://evil.example/","Klicka här")'
FORMULA_TITLE = "+46 8 123 45: ring oss"
MINUS_TEXT = "-5 grader i natt, halt på vägarna"


@dataclass(frozen=True)
class Sample:
    config: Path
    ids: dict[str, int]  # platform post id -> posts.id, erased post included
    erased: str  # platform post id of the erased post


def store(
    engine: Engine, key: str, items: list[PostData], when: datetime = NOW, **extra: Any
) -> AttemptRecord:
    result = CollectResult(CollectStatus.OK, posts=tuple(items), **extra)
    source_id = source_row(engine, key).id
    return record_attempt(engine, Attempt(source_id, when, when, SchedulePolicy()), result)


def article(number: int, published: datetime, **changes: Any) -> PostData:
    values: dict[str, Any] = {
        "platform_post_id": f"a{number}",
        "kind": "article",
        "url": f"https://www.katrineholm.se/nyheter/{number}",
        "author": "Kommunikationsavdelningen",
        "published_at": published,
        "title": f"Nyhet {number}",
        "text": "Kommunen informerar om snöröjningen.",
        "html": "<p>Kommunen informerar om snöröjningen.</p>",
        "language": "sv",
        "raw": {"guid": f"a{number}", "title": f"Nyhet {number}"},
    }
    return PostData(**(values | changes))


def toot(name: str, published: datetime, **changes: Any) -> PostData:
    values: dict[str, Any] = {
        "platform_post_id": name,
        "kind": "post",
        "url": f"https://polisen.se/@polisen/{name}",
        "author": "@polisen@polisen.se",
        "published_at": published,
        "text": f"Polisen informerar ({name}).",
        "language": "sv",
        "raw": {"id": name, "visibility": "public"},
    }
    return PostData(**(values | changes))


def build_sample(tmp_path: Path, engine: Engine) -> Sample:
    """Seven posts on two sources: edited, counted twice, deleted by the platform, erased."""
    config = configure(tmp_path, engine, SOURCES)
    store(engine, FEED_KEY, [
        article(1, NOW - DAY, tags=("snö", "trafik"), links=("https://trafikverket.se/",),
                metrics={"views": 100, "likes": 3}),
        article(2, NOW - 10 * DAY, title=FORMULA_TITLE, text=FORMULA_TEXT),
        article(3, NOW - 3 * DAY, metrics={"likes": 7}),
    ])  # fmt: skip
    store(engine, FEED_KEY, [article(3, NOW - 3 * DAY, title="Rättad", metrics={"likes": 7})],
          when=NOW + HOUR)  # fmt: skip
    store(engine, MASTODON_KEY, [
        toot("m1", NOW - 2 * DAY, text=MINUS_TEXT, tags=("halka",),
             metrics={"likes": 10, "reposts": 4, "replies": 2}),
        toot("m2", NOW - DAY, kind="reply", text="@medborgare Vi återkommer.",
             metrics={"likes": 1}),
        toot("m3", NOW - 5 * DAY),
        toot("m4", NOW - 4 * DAY, text="Namn på en privatperson", metrics={"likes": 99}),
    ])  # fmt: skip
    store(engine, MASTODON_KEY,
          [toot("m1", NOW - 2 * DAY, text=MINUS_TEXT, tags=("halka",),
                metrics={"likes": 12, "reposts": 4, "replies": 2})],
          when=NOW + HOUR, deleted=("m3",))  # fmt: skip
    ids = post_ids(engine)
    erase_post(engine, ids["m4"], reason="begäran 2026-42", actor="tester", now=NOW + 2 * HOUR)
    return Sample(config.path, ids, erased="m4")


def post_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(posts.c.platform_post_id, posts.c.id))
        return {row.platform_post_id: row.id for row in rows}
