"""The digest tests' fixed database: week 2026-W48 and the four weeks before it, stored
through the real store, for the digest's content and its golden files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.load import build_digest
from digest.model import DigestData, Recipient, Week
from monitor.config import Config, load_config
from monitor.models import sources
from monitor.schedule import SchedulePolicy
from monitor.sources import sync_sources
from monitor.store import Attempt, record_attempt
from monitor.types import CollectResult, CollectStatus, Media, PostData
from tests.conftest import write_config

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WEEK = Week(2026, 48)  # Monday 23 November to Sunday 29 November 2026
READER = Recipient(email="anna@example.se")
THUMBNAIL = "https://i.ytimg.com/vi/abc/hq.jpg"

CONFIG = """
[digest]
language = "en"
top_posts = 10

[[recipients]]
email = "anna@katrineholm.se"
organisation = "Katrineholms kommun"
groups = ["kommuner"]
keywords = ["vinterväglag"]

[[recipients]]
email = "per@example.se"
language = "sv"
platforms = ["x"]

[[sources]]
platform = "feed"
key = "katrineholm-nyheter"
url = "https://www.katrineholm.se/rss"
organisation = "Katrineholms kommun"
groups = ["kommuner"]

[[sources]]
platform = "x"
key = "katrineholm-x"
handle = "katrineholm"
organisation = "Katrineholms kommun"
groups = ["kommuner"]

[[sources]]
platform = "mastodon"
key = "katrineholm-mastodon"
handle = "@katrineholm@mastodon.nu"
organisation = "Katrineholms kommun"
groups = ["kommuner"]

[[sources]]
platform = "x"
key = "polisen-x"
handle = "polisen"
organisation = "Polisen"
groups = ["myndigheter"]

[[sources]]
platform = "youtube"
key = "polisen-youtube"
handle = "polisen"
organisation = "Polisen"
groups = ["myndigheter"]

[[sources]]
platform = "feed"
key = "lansstyrelsen"
url = "https://www.lansstyrelsen.se/rss"
organisation = "Länsstyrelsen"
groups = ["myndigheter"]

[[sources]]
platform = "feed"
key = "region"
url = "https://regionsormland.se/rss"
organisation = "Region Sörmland"
groups = ["regioner"]
"""

LONG_TEXT = (
    "Kommunstyrelsen   föreslår en budget\n\nför 2027 där skolan och omsorgen prioriteras. "
    + "Satsningen omfattar nya lokaler, fler lärare och längre öppettider i biblioteken. " * 4
)


def local(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    """A Stockholm wall-clock time as the UTC datetime the database holds."""
    return datetime(year, month, day, hour, minute, tzinfo=STOCKHOLM).astimezone(UTC)


def post(pid: str, when: datetime, **values: Any) -> PostData:
    kind = values.pop("kind", "post")
    return PostData(platform_post_id=pid, kind=kind, published_at=when, **values)


def setup_config(tmp_path: Path, engine: Engine, body: str = CONFIG) -> Config:
    url = engine.url.render_as_string(hide_password=False)
    config = load_config(write_config(tmp_path, url, body))
    sync_sources(engine, config, local(10, 1, 0))
    return config


def store(
    engine: Engine,
    key: str,
    items: Sequence[PostData],
    when: datetime,
    status: CollectStatus = CollectStatus.OK,
    deleted: tuple[str, ...] = (),
) -> None:
    with engine.connect() as connection:
        source_id = connection.execute(
            sa.select(sources.c.id).where(sources.c.key == key)
        ).scalar_one()
    result = CollectResult(status, posts=tuple(items), deleted=deleted)
    record_attempt(engine, Attempt(source_id, when, when, SchedulePolicy()), result)


def fill(engine: Engine) -> None:
    """Four weeks of history, week 48 and a little after."""
    # History: Polisen on X each week, a YouTube video in W46, Katrineholm on X and the web in W47.
    for number, day in enumerate((27, 3, 10, 17)):
        month = 10 if day == 27 else 11
        when = local(month, day, 10)
        tags = ("trafik",) if number == 3 else ()
        item = post(f"old-{number}", when, text="Polisen delar information.", tags=tags)
        store(
            engine, "polisen-x", [replace(item, metrics={"likes": 10})], when + timedelta(hours=1)
        )
    video = post("yt-old", local(11, 11, 12), kind="video", title="Information om id-kort")
    store(
        engine,
        "polisen-youtube",
        [replace(video, metrics={"views": 500, "likes": 5})],
        local(11, 11, 13),
    )
    older = post(
        "k-old", local(11, 18, 9), text="Information från kommunen.", metrics={"likes": 20}
    )
    store(engine, "katrineholm-x", [older], local(11, 18, 10))
    article = post("f-old", local(11, 19, 9), kind="article", title="Nytt bibliotek")
    store(engine, "katrineholm-nyheter", [article], local(11, 19, 10))
    region = post("r-old", local(10, 20, 10), kind="article", title="Vårdval")
    store(engine, "region", [region], local(10, 20, 11))

    # Week 48.
    store(
        engine,
        "katrineholm-nyheter",
        [
            post(
                "f1", local(11, 23, 9), kind="article", title="Snöröjning i centrum",
                text="Vinterväglag gäller i hela kommunen från måndag.",
                url="https://www.katrineholm.se/nyheter/snorojning",
                links=("https://www.trafikverket.se/trafikinfo",),
            ),
            post(
                "f2", local(11, 24, 10), kind="article", title="Ny förskola",
                text="Byggstart för förskola på Norr. Mer information på webben.",
                url="https://www.katrineholm.se/nyheter/forskola",
            ),
            post(
                "f3", local(11, 25, 11), kind="article", title="Budget 2027", text=LONG_TEXT,
                url="https://www.katrineholm.se/nyheter/budget",
            ),
            # Sunday 23:30 local is still week 48 (22:30 UTC).
            post(
                "f4", local(11, 29, 23, 30), kind="article", title="Sent beslut",
                text="Kommunfullmäktige sammanträdde sent.",
                url="https://www.katrineholm.se/nyheter/beslut",
            ),
        ],
        local(11, 29, 23, 45),
    )  # fmt: skip
    # Monday 00:15 local belongs to week 49.
    next_week = post("f5", local(11, 30, 0, 15), kind="article", title="Nästa vecka")
    store(engine, "katrineholm-nyheter", [next_week], local(11, 30, 1))
    store(
        engine,
        "lansstyrelsen",
        [
            post(
                "l1", local(11, 26, 12), kind="article", title="Vattenbrist i länet",
                text="Länsstyrelsen uppmanar till sparsamhet.",
                url="https://www.lansstyrelsen.se/vatten",
                links=("https://www.smhi.se/varningar", "https://www.trafikverket.se/"),
            )
        ],
        local(11, 29, 22),
    )  # fmt: skip
    polisen = [
        post(
            "p1", local(11, 23, 8), text="Trafikolycka på E4 vid Nyköping, vinterväglag. #trafik",
            tags=("trafik",), url="https://x.com/polisen/status/1",
            links=("https://www.trafikverket.se/trafikinfo",),
            metrics={"views": 1000, "likes": 50, "reposts": 10, "replies": 30},
        ),
        post(
            "p2", local(11, 26, 16),
            text="Vinterväglag i länet, kör försiktigt. Mer information kommer. #trafik",
            tags=("Trafik",), url="https://x.com/polisen/status/2",
            metrics={"likes": 5, "replies": 2},
        ),
        post(
            "gone", local(11, 25, 9), text="Raderat: vinterväglag", tags=("trafik",),
            metrics={"likes": 1000, "replies": 500},
        ),
    ]  # fmt: skip
    store(engine, "polisen-x", polisen, local(11, 27, 20))
    store(engine, "polisen-x", [], local(11, 28, 22), deleted=("gone",))
    # Counts observed after the week do not change its digest.
    later = replace(polisen[0], metrics={"likes": 500, "reposts": 10, "replies": 30})
    store(engine, "polisen-x", [later], local(12, 1, 9))
    k1 = post(
        "k1", local(11, 27, 9), text="Information om snöröjning. #trafik", tags=("trafik",),
        url="https://x.com/katrineholm/status/3", links=("https://www.katrineholm.se/snorojning",),
        metrics={"likes": 10, "replies": 8, "quotes": 2},
    )  # fmt: skip
    store(engine, "katrineholm-x", [k1], local(11, 29, 22))
    videos = [
        post(
            "v1", local(11, 24, 15), kind="video", title="Vinterväglag – så kör du säkert",
            text="Polisen ger råd om vinterkörning.", url="https://www.youtube.com/watch?v=abc",
            media=(Media("video", thumbnail_url=THUMBNAIL, duration_s=95),),
            metrics={"views": 2000, "likes": 25, "replies": 4},
        ),
        post(
            "v2", local(11, 27, 19), kind="live", title="Livesänd pressträff",
            url="https://www.youtube.com/watch?v=def",
            media=(Media("video", thumbnail_url="javascript:alert(1)"),),
            metrics={"views": 100, "likes": 1},
        ),
    ]  # fmt: skip
    store(engine, "polisen-youtube", videos, local(11, 29, 22))
    store(engine, "polisen-youtube", [], local(11, 29, 23), status=CollectStatus.FAILED)
    m1 = post(
        "m1", local(11, 28, 10), text="Nu finns vi på Mastodon! Följ oss här.",
        url="https://mastodon.nu/@katrineholm/4", metrics={"likes": 3, "reposts": 1},
    )  # fmt: skip
    store(engine, "katrineholm-mastodon", [m1], local(11, 29, 22))
    store(engine, "region", [], local(11, 25, 12), status=CollectStatus.FAILED)
    store(engine, "region", [], local(11, 26, 12), status=CollectStatus.NOT_MODIFIED)


def build(
    engine: Engine, config: Config, recipient: Recipient = READER, week: Week = WEEK
) -> DigestData:
    return build_digest(engine, config, recipient, week, now=local(11, 30, 7))


# A demo-like world (issue 13): a municipality's web feed, a YouTube channel's feed, a Flickr
# feed and a Mastodon feed served from loopback, as the demo serves its feeds.
CHANNELS_CONFIG = """
[digest]
language = "sv"

[groups.kommuner]
name = "Kommuner"

[groups.myndigheter]
name = "Myndigheter"

[[sources]]
platform = "feed"
key = "flen-nyheter"
url = "https://www.flen.se/rss"
organisation = "Flens kommun"
groups = ["kommuner"]

[[sources]]
platform = "feed"
key = "skatteverket-youtube"
url = "https://www.youtube.com/feeds/videos.xml?channel_id=UCx4Rk9Vb2TqWmHs7LpNzA3g"
organisation = "Skatteverket"
groups = ["myndigheter"]

[[sources]]
platform = "feed"
key = "trafikverket-flickr"
url = "https://www.flickr.com/services/feeds/photos_public.gne?id=137895521@N04"
organisation = "Trafikverket"
groups = ["myndigheter"]

[[sources]]
platform = "feed"
key = "krisinformation-mastodon"
url = "http://127.0.0.1:8000/mastodon-krisinformation.xml"
organisation = "Krisinformation.se"
groups = ["myndigheter"]
"""


def store_channel_world(engine: Engine) -> None:
    """A week of posts on `CHANNELS_CONFIG`'s four feeds (a web feed, YouTube, Flickr, and
    Mastodon served from loopback)."""
    store(
        engine,
        "flen-nyheter",
        [
            post(
                "f1", local(11, 23, 9), kind="article", title="Julmarknad",
                text="Julmarknaden öppnar klockan 16. Vinterväglag på torget.",
                url="https://www.flen.se/nyheter/julmarknad",
                links=("https://www.flen.se/evenemang", "https://www.trafikverket.se/trafikinfo"),
            ),
            post(
                "f2", local(11, 25, 9), kind="article", title="Skolval",
                text="Skolvalet stänger klockan 13.", url="https://www.flen.se/nyheter/skolval",
            ),
            post(
                "f3", local(11, 27, 9), kind="article", title="Språkcafé",
                text="Språkcafé klockan 16–18 i biblioteket.",
                url="https://www.flen.se/nyheter/sprakcafe",
            ),
        ],
        local(11, 29, 22),
    )  # fmt: skip
    store(
        engine,
        "skatteverket-youtube",
        [
            post(
                "yt:1", local(11, 24, 12), kind="video", title="Deklarera digitalt",
                url="https://www.youtube.com/watch?v=C2lUFynUYDK",
            )
        ],
        local(11, 29, 22),
    )  # fmt: skip
    store(
        engine,
        "trafikverket-flickr",
        [
            post(
                "fl:1", local(11, 26, 12), kind="photo", title="Vinterväglag på E4",
                text="Vinterväglag och plogbilar.",
                url="https://www.flickr.com/photos/trafikverket/55016950961/",
            )
        ],
        local(11, 29, 22),
    )  # fmt: skip
    store(
        engine,
        "krisinformation-mastodon",
        [
            post(
                "m1", local(11, 28, 10), text="Vinterväglag i hela landet. Läs mer.",
                url="https://mastodon.nu/@krisinformation/117695141314579341",
                links=("https://www.krisinformation.se/nyheter/vinter", "https://mastodon.nu/tags/x"),
            )
        ],
        local(11, 29, 22),
    )  # fmt: skip
