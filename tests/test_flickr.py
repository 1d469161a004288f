"""Flickr collection end to end: a fake REST API and feed on loopback, the real aiohttp client,
the real engine and store, both databases."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from collectors.flickr import EXTRAS
from monitor.cli import app
from monitor.config import Config
from monitor.models import collection_runs, post_metrics, post_revisions, posts, sources
from monitor.types import CollectStatus
from tests.conftest import collect_all, count, only, source_row, write_config
from tests.conftest import configure as configure_sources
from tests.feedserver import FeedServer, Request, Route
from tests.platforms import (
    account_counts,
    json_route,
    pass_a_day,
    requests_to_endpoint,
    source_table,
)

FIXTURES = Path(__file__).parent / "fixtures" / "flickr"
KEY = "f1c4e2a9b7d64c3e8a0b5d2f9e7c1a36"
NSID = "137895521@N04"
REST = "/services/rest"
BRIDGE, SNOW, FILM = "55012783426", "55009341872", "55004410219"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class FakeFlickr:
    """Flickr's REST endpoint as the collector sees it: methods dispatched on `method`,
    photos paged three at a time, `min_upload_date` honoured, errors as `stat: fail`."""

    PAGE_SIZE = 3

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.photos: list[dict[str, Any]] = load("public_photos.json")["photos"]["photo"]
        # Keep the fixture's spacing, with the newest upload an hour ago.
        shift = int(time.time()) - 3600 - max(int(p["dateupload"]) for p in self.photos)
        for photo in self.photos:
            photo["dateupload"] = str(int(photo["dateupload"]) + shift)
            photo["lastupdate"] = str(int(photo["lastupdate"]) + shift)
        self.pinned: list[dict[str, Any]] = []  # shown first on page 1, whatever their date
        self.aliases = {"trafikverket": NSID}
        self.users = {NSID}
        self.deleted: set[str] = set()  # getInfo answers "Photo not found"
        self.person: dict[str, Any] = load("people_info.json")
        self.failure: Callable[[dict[str, str]], Route | None] = lambda query: None
        server.add_handler(REST, self.answer)

    @property
    def url(self) -> str:
        return self.server.url(REST)

    def photo(self, photo_id: str) -> dict[str, Any]:
        return next(p for p in self.photos if p["id"] == photo_id)

    def calls(self, method: str) -> list[dict[str, str]]:
        called = requests_to_endpoint(self.server, REST)
        return [r.query for r in called if r.query.get("method") == method]

    def answer(self, request: Request) -> Route:
        query = request.query
        failure = self.failure(query)
        if failure is not None:
            return failure
        if query.get("api_key") != KEY or query.get("format") != "json":
            return json_route(load("error_invalid_key.json"))
        method = query["method"]
        if method == "flickr.urls.lookupUser":
            alias = query["url"].rstrip("/").rsplit("/", 1)[-1].lower()
            if alias not in self.aliases:
                return json_route(load("error_user_not_found.json"))
            user = {"id": self.aliases[alias], "username": {"_content": alias}}
            return json_route({"user": user, "stat": "ok"})
        if method == "flickr.people.findByUsername":
            return json_route(load("error_user_not_found.json"))
        if method == "flickr.people.getPublicPhotos":
            return self._list(query)
        if method == "flickr.people.getInfo":
            if query["user_id"] not in self.users:
                return json_route(load("error_user_not_found.json"))
            return json_route(self.person)
        if method == "flickr.photos.getInfo":
            if query["photo_id"] in self.deleted:
                return json_route(load("error_photo_not_found.json"))
            return json_route(load("photo_info.json"))
        return json_route({"stat": "fail", "code": 112, "message": f'Method "{method}" not found'})

    def _list(self, query: dict[str, str]) -> Route:
        if query["user_id"] not in self.users:
            return json_route(load("error_user_not_found.json"))
        floor = int(query.get("min_upload_date", 0))
        listed = sorted(
            (p for p in self.photos if int(p["dateupload"]) >= floor),
            key=lambda p: -int(p["dateupload"]),
        )
        page = int(query.get("page", 1))
        pages = max(1, -(-len(listed) // self.PAGE_SIZE))
        shown = listed[(page - 1) * self.PAGE_SIZE : page * self.PAGE_SIZE]
        if page == 1:
            shown = self.pinned + shown
        block = {"page": page, "pages": pages, "perpage": 100, "total": len(listed), "photo": shown}
        return json_route({"photos": block, "stat": "ok"})


@pytest.fixture
def flickr(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FakeFlickr:
    monkeypatch.setenv("FLICKR_API_KEY", KEY)
    return FakeFlickr(feed_server)


def flickr_source(handle: str, organisation: str = "Trafikverket", **extra: str | bool) -> str:
    return source_table("flickr", handle=handle, organisation=organisation, **extra)


def configure(
    tmp_path: Path, engine: Engine, fake: FakeFlickr, body: str, collect: str = ""
) -> Config:
    settings = f'[collect]\n{collect}\n[platforms.flickr]\napi_url = "{fake.url}"\n\n'
    return configure_sources(tmp_path, engine, body, settings)


def stored(engine: Engine, platform_post_id: str) -> sa.Row[Any]:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(posts).where(posts.c.platform_post_id == platform_post_id)
        ).one()


def stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(posts.c.platform_post_id)).scalars())


def near(value: str, moment: datetime) -> bool:
    return abs(int(value) - moment.timestamp()) < 120


def test_first_run_resolves_the_alias_once_and_backfills_every_page_in_the_window(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.OK and outcome.error is None
    assert outcome.counts.new == 7  # the eighth photo is 39 days old: outside backfill_days
    assert "54930044678" not in stored_ids(engine)
    row = source_row(engine, "flickr:trafikverket")
    assert row.platform_id == NSID
    assert row.cursor["last_upload"] == int(flickr.photo(BRIDGE)["dateupload"])
    lookup = flickr.calls("flickr.urls.lookupUser")
    assert [q["url"] for q in lookup] == ["https://www.flickr.com/photos/trafikverket/"]
    listing = flickr.calls("flickr.people.getPublicPhotos")
    assert [q["page"] for q in listing] == ["1", "2", "3"]
    for query in listing:
        assert query["user_id"] == NSID and query["per_page"] == "100"
        assert query["extras"] == EXTRAS and query["nojsoncallback"] == "1"
        assert near(query["min_upload_date"], datetime.now(UTC) - timedelta(days=30))

    bridge = stored(engine, BRIDGE)
    assert bridge.kind == "photo" and bridge.author == "trafikverket"
    assert bridge.url == f"https://www.flickr.com/photos/trafikverket/{BRIDGE}/"
    assert bridge.title == "Ny gång- och cykelbro över Nyköpingsån"
    assert bridge.text.startswith("Brobalken lyftes på plats under tisdagen.")
    assert "<a href=" in bridge.html
    assert bridge.published_at == datetime.fromtimestamp(
        int(flickr.photo(BRIDGE)["dateupload"]), UTC
    )
    assert bridge.tags == ["trafikverket", "nyköping", "bro", "cykelväg"]
    assert bridge.links == ["https://www.trafikverket.se/vara-projekt/nykoping-bro/"]
    assert bridge.media == [
        {
            "type": "image",
            "url": "https://live.staticflickr.com/65535/55012783426_3f9a1c27be_b.jpg",
            "thumbnail_url": "https://live.staticflickr.com/65535/55012783426_3f9a1c27be_s.jpg",
            "width": 1024,
            "height": 683,
        }
    ]
    assert bridge.raw["views"] == "412" and bridge.raw["id"] == BRIDGE
    film = stored(engine, FILM)
    assert film.kind == "video" and film.media[0]["type"] == "video"
    untitled = stored(engine, "54998120537")
    assert (untitled.text, untitled.tags, untitled.media[0]["width"]) == (None, [], 375)
    with engine.connect() as connection:
        counts = connection.execute(
            sa.select(post_metrics.c.views, post_metrics.c.likes, post_metrics.c.replies)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .where(posts.c.platform_post_id == BRIDGE)
        ).one()
    assert tuple(counts) == (412, 9, 2)
    assert count(engine, post_metrics) == 7


def test_backfill_stops_at_backfill_posts_without_reading_further_pages(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(
        tmp_path, engine, flickr, flickr_source("trafikverket"), "backfill_posts = 4\n"
    )
    outcome = only(collect_all(config, engine))

    assert outcome.counts.new == 4
    assert [q["page"] for q in flickr.calls("flickr.people.getPublicPhotos")] == ["1", "2"]
    assert stored_ids(engine) == {BRIDGE, SNOW, FILM, "54998120537"}


def test_photo_count_and_views_land_and_followers_stay_null(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    collect_all(config, engine)
    (info,) = flickr.calls("flickr.people.getInfo")
    assert info["user_id"] == NSID
    assert account_counts(engine, "flickr:trafikverket") == [(None, 3905112, 6241)]

    flickr.person["person"]["photos"]["count"] = {"_content": 6242}
    pass_a_day(engine, "flickr:trafikverket")
    collect_all(config, engine)
    assert account_counts(engine, "flickr:trafikverket") == [
        (None, 3905112, 6241),
        (None, 3905112, 6242),
    ]


def test_second_run_lists_only_the_refresh_window_and_adds_the_new_upload(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    collect_all(config, engine)
    new_photo = copy.deepcopy(flickr.photo(SNOW))
    new_photo |= {"id": "55020011223", "title": "Halkbekämpning på Öresundsbron"}
    new_photo["dateupload"] = new_photo["lastupdate"] = str(int(time.time()) - 60)
    flickr.photos.insert(0, new_photo)
    before = len(flickr.server.requests)

    outcome = only(collect_all(config, engine))

    assert (outcome.counts.new, outcome.counts.updated, outcome.counts.unchanged) == (1, 0, 5)
    second = [r.query for r in flickr.server.requests[before:]]
    assert [q["method"] for q in second] == ["flickr.people.getPublicPhotos"] * 2
    assert [q["page"] for q in second] == ["1", "2"]
    # The refresh window (14 days) starts before the newest stored upload: counts of
    # recent photos are re-read with the new ones.
    assert near(second[0]["min_upload_date"], datetime.now(UTC) - timedelta(days=14))
    assert source_row(engine, "flickr:trafikverket").cursor["last_upload"] == int(
        new_photo["dateupload"]
    )


def test_without_a_refresh_window_the_second_run_starts_at_the_newest_upload(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(
        tmp_path, engine, flickr, flickr_source("trafikverket"), "refresh_days = 0\n"
    )
    collect_all(config, engine)
    outcome = only(collect_all(config, engine))

    assert (outcome.counts.new, outcome.counts.unchanged) == (0, 1)
    last = flickr.calls("flickr.people.getPublicPhotos")[-1]
    assert last["min_upload_date"] == flickr.photo(BRIDGE)["dateupload"]


def test_changed_counts_append_a_metrics_row_and_leave_the_post_alone(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    collect_all(config, engine)
    flickr.photo(BRIDGE).update(views="530", count_faves="12")

    outcome = only(collect_all(config, engine))

    assert (outcome.counts.updated, outcome.counts.metrics) == (0, 1)
    assert count(engine, post_revisions) == 0
    with engine.connect() as connection:
        history = connection.execute(
            sa.select(post_metrics.c.views, post_metrics.c.likes, post_metrics.c.replies)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .where(posts.c.platform_post_id == BRIDGE)
            .order_by(post_metrics.c.id)
        ).all()
    assert [tuple(r) for r in history] == [(412, 9, 2), (530, 12, 2)]


def test_edited_title_and_description_keep_the_previous_version(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    collect_all(config, engine)
    original = stored(engine, SNOW)
    photo = flickr.photo(SNOW)
    photo["title"] = "Snöröjning på E4 vid Södertälje (rättad bildtext)"
    correction = "Plogbilar i tidig morgontrafik. Rättelse: bilden är från Hallunda."
    photo["description"] = {"_content": correction}
    photo["lastupdate"] = str(int(time.time()))

    outcome = only(collect_all(config, engine))

    assert (outcome.counts.new, outcome.counts.updated) == (0, 1)
    edited = stored(engine, SNOW)
    with engine.connect() as connection:
        revision = connection.execute(sa.select(post_revisions)).one()
    assert edited.title.endswith("(rättad bildtext)") and "Hallunda" in edited.text
    assert revision.post_id == original.id
    assert (revision.title, revision.text) == (original.title, original.text)


def test_recent_photo_missing_from_the_stream_is_checked_and_marked_deleted(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    collect_all(config, engine)
    # Both vanish from the stream; getInfo says one is gone, the other still exists.
    flickr.photos = [p for p in flickr.photos if p["id"] not in (SNOW, FILM)]
    flickr.deleted.add(SNOW)

    outcome = only(collect_all(config, engine))
    assert outcome.status is CollectStatus.OK
    assert sorted(q["photo_id"] for q in flickr.calls("flickr.photos.getInfo")) == [FILM, SNOW]
    assert stored(engine, SNOW).deleted_at is not None
    assert stored(engine, FILM).deleted_at is None
    assert stored(engine, SNOW).title == "Snöröjning på E4 vid Södertälje"  # content kept

    collect_all(config, engine)
    assert len(flickr.calls("flickr.photos.getInfo")) == 2  # each was checked once


def test_renamed_account_keeps_its_source_row_platform_id_and_posts(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket", key="trafikverket"))
    collect_all(config, engine)
    before = source_row(engine, "trafikverket")
    flickr.aliases = {"trafikverket_sverige": NSID}
    for photo in flickr.photos:
        photo["pathalias"] = "trafikverket_sverige"
    renamed = flickr_source("trafikverket_sverige", key="trafikverket")
    config = configure(tmp_path, engine, flickr, renamed)

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.OK and outcome.counts.new == 0
    after = source_row(engine, "trafikverket")
    assert (after.id, after.platform_id) == (before.id, NSID)
    # The changed handle is resolved again, to the same NSID: history continues.
    assert len(flickr.calls("flickr.urls.lookupUser")) == 2
    assert count(engine, posts) == 7
    new_url = f"https://www.flickr.com/photos/trafikverket_sverige/{BRIDGE}/"
    assert stored(engine, BRIDGE).url == new_url


def test_out_of_order_old_photo_on_the_first_page_does_not_stop_paging(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    old = flickr.photo("54930044678")  # 39 days old, shown first like a pinned post
    flickr.pinned = [old]
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))

    outcome = only(collect_all(config, engine))

    assert outcome.counts.new == 7
    assert "54930044678" not in stored_ids(engine)
    assert [q["page"] for q in flickr.calls("flickr.people.getPublicPhotos")] == ["1", "2", "3"]
    assert source_row(engine, "flickr:trafikverket").cursor["last_upload"] == int(
        flickr.photo(BRIDGE)["dateupload"]
    )


def test_mentions_keep_watched_accounts_and_only_count_the_others(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    body = flickr_source("trafikverket") + flickr_source(
        "NykopingsKommun", "Nyköpings kommun", enabled=False
    )
    config = configure(tmp_path, engine, flickr, body)
    collect_all(config, engine)

    bridge = stored(engine, BRIDGE)
    assert bridge.mentions == ["NykopingsKommun"]
    assert bridge.other_mentions == 1  # the photographer's account: counted, not named
    assert bridge.links == [
        "https://www.trafikverket.se/vara-projekt/nykoping-bro/",
        "https://www.flickr.com/people/nykopingskommun/",
    ]
    assert not any("anna_lindqvist" in link for link in bridge.links)
    assert stored(engine, SNOW).mentions == [] and stored(engine, SNOW).other_mentions == 0


def _fail_every_call(route: Route) -> Callable[[FakeFlickr], None]:
    def arrange(fake: FakeFlickr) -> None:
        fake.failure = lambda query: route

    return arrange


def _forget_alias(fake: FakeFlickr) -> None:
    fake.aliases = {}


def _wrong_key(fake: FakeFlickr) -> None:
    fake.failure = lambda query: (
        json_route(load("error_invalid_key.json")) if query.get("api_key") == KEY else None
    )


def _rate_limited_for_two_hours(fake: FakeFlickr) -> None:
    # The reset time is taken when the test runs, not when the module is imported: a long
    # suite would otherwise leave less than the 7,000 s the test expects.
    reset_at = int(time.time()) + 7200
    fake.failure = lambda query: json_route(
        {}, status=429, headers={"X-RateLimit-Reset": str(reset_at)}
    )


@pytest.mark.parametrize(
    ("arrange", "message", "retry_seconds"),
    [
        (_forget_alias, "Flickr: account not found: no Flickr user 'trafikverket'", None),
        (
            _wrong_key,
            "Flickr: credentials invalid: the API key was refused (check FLICKR_API_KEY)",
            None,
        ),
        (
            _fail_every_call(json_route(load("error_unavailable.json"))),
            "Flickr: service temporarily unavailable (error 105); retried later",
            None,
        ),
        (
            _fail_every_call(json_route({"stat": "fail"}, status=401)),
            "Flickr: credentials invalid or expired (check FLICKR_API_KEY): HTTP 401",
            None,
        ),
        (
            _fail_every_call(
                Route(status=503, body=b"busy", content_type="text/plain", validators=False)
            ),
            "Flickr: temporary server error (HTTP 503); retried later",
            None,
        ),
        (
            _fail_every_call(json_route({}, status=429, headers={"Retry-After": "3600"})),
            "Flickr: rate limited until ",
            3600,
        ),
        (
            _rate_limited_for_two_hours,
            "Flickr: rate limited until ",
            7000,
        ),
    ],
    ids=["not-found", "invalid-key", "code-105", "http-401", "http-503", "429", "429-reset"],
)
def test_failure_is_one_line_stores_nothing_and_reschedules(
    tmp_path: Path,
    engine: Engine,
    flickr: FakeFlickr,
    arrange: Callable[[FakeFlickr], None],
    message: str,
    retry_seconds: int | None,
) -> None:
    arrange(flickr)
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    started = datetime.now(UTC)

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error and outcome.error.startswith(message) and "\n" not in outcome.error
    assert KEY not in outcome.error
    row = source_row(engine, "flickr:trafikverket")
    assert (row.status, row.consecutive_failures, row.last_error) == ("failing", 1, outcome.error)
    assert row.platform_id is None and row.cursor == {}
    assert count(engine, posts) == 0
    if retry_seconds:
        assert row.next_check_at >= started + timedelta(seconds=retry_seconds)


def test_vanished_account_fails_as_not_found_and_its_posts_are_kept(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    collect_all(config, engine)
    flickr.users = set()

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == f"Flickr: account not found: user {NSID} no longer exists"
    with engine.connect() as connection:
        deleted = connection.execute(
            sa.select(sa.func.count()).where(posts.c.deleted_at.is_not(None))
        ).scalar_one()
    assert (count(engine, posts), deleted) == (7, 0)


def test_the_key_never_reaches_errors_payloads_or_the_database(
    tmp_path: Path, engine: Engine, flickr: FakeFlickr
) -> None:
    flickr.photo(BRIDGE)["description"] = {"_content": f"Länk: https://example.se/?api_key={KEY}"}
    config = configure(tmp_path, engine, flickr, flickr_source("trafikverket"))
    collect_all(config, engine)
    flickr.failure = lambda query: json_route(
        {"stat": "fail", "code": 99, "message": f"Insufficient permissions (api_key={KEY})"}
    )
    outcome = only(collect_all(config, engine))

    assert outcome.error == (
        "Flickr: flickr.people.getPublicPhotos failed: "
        "Insufficient permissions (api_key=[redacted]) (error 99)"
    )
    with engine.connect() as connection:
        everything = [
            json.dumps([list(row) for row in connection.execute(sa.select(table))], default=str)
            for table in (sources, posts, post_revisions, collection_runs)
        ]
    assert all(KEY not in dump for dump in everything)


def test_without_a_key_the_public_feed_is_read_with_the_api_photo_ids(
    tmp_path: Path, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLICKR_API_KEY", raising=False)
    feed = feed_server.add(
        "/services/feeds/photos_public.gne",
        body=(FIXTURES / "photos_public.atom").read_bytes(),
        content_type="application/atom+xml; charset=utf-8",
    )
    body = flickr_source(NSID, url=feed)
    config = configure_sources(tmp_path, engine, body)

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.OK and outcome.counts.new == 3
    assert stored_ids(engine) == {BRIDGE, SNOW, "54998120537"}
    bridge = stored(engine, BRIDGE)
    assert (bridge.kind, bridge.author) == ("photo", "trafikverket")
    assert bridge.text == (
        "Brobalken lyftes på plats under tisdagen. Bron öppnar för trafik i början av december. "
        "Foto: Trafikverket"
    )
    assert bridge.url == f"https://www.flickr.com/photos/trafikverket/{BRIDGE}/"
    assert stored(engine, "54998120537").text is None
    assert source_row(engine, f"flickr:{NSID.lower()}").platform_id == NSID

    again = only(collect_all(config, engine))
    assert again.status is CollectStatus.NOT_MODIFIED
    assert feed_server.requests[-1].headers["if-none-match"].startswith('"')


def test_without_a_key_a_path_alias_fails_naming_the_variable(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLICKR_API_KEY", raising=False)
    body = flickr_source("trafikverket")
    config = configure_sources(tmp_path, engine, body)

    outcome = only(collect_all(config, engine))

    assert outcome.status is CollectStatus.FAILED
    assert outcome.error == (
        "Flickr: 'trafikverket' is not an NSID and FLICKR_API_KEY is not set: the public feed "
        "needs the account's NSID (like 12345678@N02); set FLICKR_API_KEY or use the NSID as handle"
    )


def test_cli_collect_prints_the_summary_and_status_shows_the_failure(
    tmp_path: Path, database_url: str, flickr: FakeFlickr
) -> None:
    runner = CliRunner()
    body = f'[platforms.flickr]\napi_url = "{flickr.url}"\n\n'
    body += flickr_source("trafikverket") + flickr_source("nedlagda_kontoret", "Nedlagda verket")
    config = str(write_config(tmp_path, database_url, body))
    env = {"COLUMNS": "200"}
    assert runner.invoke(app, ["--config", config, "db", "upgrade"], env=env).exit_code == 0

    result = runner.invoke(app, ["--config", config, "collect", "--all"], env=env)

    assert result.exit_code == 1  # one source failed
    lines = result.stdout.splitlines()
    assert "2 sources: 7 new, 0 updated, 0 unchanged posts; 0 not modified, 1 failed" in lines
    assert any(
        line.startswith("flickr:nedlagda_kontoret: failed: Flickr: account not found")
        for line in lines
    )
    status = runner.invoke(app, ["--config", config, "status"], env=env)
    assert status.exit_code == 0
    assert any(
        line.startswith("flickr:nedlagda_kontoret: failing since ")
        and line.endswith(
            ": Flickr: account not found: no Flickr user 'nedlagda_kontoret' (check the handle: "
            "an NSID like 12345678@N02, a path alias or a screen name)"
        )
        for line in status.stdout.splitlines()
    )
    assert "Traceback" not in result.output + status.output
