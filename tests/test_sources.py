"""Config sources synced into the sources table, and the choice of what to collect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.config import load_config
from monitor.models import posts, sources
from monitor.schedule import SchedulePolicy
from monitor.sources import select_sources, sync_sources
from monitor.store import Attempt, record_attempt
from monitor.types import CollectResult, CollectStatus, PostData, SourceState
from tests.conftest import write_config

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

KATRINEHOLM = """
[[sources]]
platform = "feed"
key = "katrineholm-nyheter"
url = "https://www.katrineholm.se/rss"
organisation = "Katrineholms kommun"
groups = ["kommuner"]
"""
MASTODON = """
[[sources]]
platform = "mastodon"
key = "krisinformation-mastodon"
handle = "@krisinformation@mastodon.nu"
organisation = "Krisinformation"
"""


def sync(tmp_path: Path, engine: Engine, body: str, when: datetime = NOW):  # type: ignore[no-untyped-def]
    url = engine.url.render_as_string(hide_password=False)
    return sync_sources(engine, load_config(write_config(tmp_path, url, body)), when)


def stored(engine: Engine) -> dict[str, sa.Row]:
    with engine.connect() as connection:
        return {r.key: r for r in connection.execute(sa.select(sources))}


def store_one_post(engine: Engine, source_id: int) -> None:
    result = CollectResult(
        CollectStatus.OK,
        posts=(PostData(platform_post_id="1", kind="post", published_at=NOW, text="Hej"),),
        state=SourceState(etag='"abc"', cursor={"min_id": "1"}),
    )
    attempt = Attempt(source_id, NOW, NOW, SchedulePolicy())
    record_attempt(engine, attempt, result)


def test_new_sources_are_added_due_now(tmp_path: Path, engine: Engine) -> None:
    report = sync(tmp_path, engine, KATRINEHOLM + MASTODON)
    assert sorted(report.added) == ["katrineholm-nyheter", "krisinformation-mastodon"]
    row = stored(engine)["katrineholm-nyheter"]
    assert (row.status, row.next_check_at, row.groups, row.active) == (
        "new",
        NOW,
        ["kommuner"],
        True,
    )


def test_a_second_sync_of_the_same_config_writes_nothing(tmp_path: Path, engine: Engine) -> None:
    sync(tmp_path, engine, KATRINEHOLM)
    report = sync(tmp_path, engine, KATRINEHOLM, when=NOW + timedelta(hours=1))
    assert report.added == report.changed == report.deactivated == ()
    assert stored(engine)["katrineholm-nyheter"].updated_at == NOW


def test_removed_source_is_marked_inactive_and_keeps_its_posts(
    tmp_path: Path, engine: Engine
) -> None:
    sync(tmp_path, engine, KATRINEHOLM + MASTODON)
    store_one_post(engine, stored(engine)["krisinformation-mastodon"].id)
    report = sync(tmp_path, engine, KATRINEHOLM)
    assert report.deactivated == ("krisinformation-mastodon",)
    assert stored(engine)["krisinformation-mastodon"].active is False
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(posts)).scalar_one() == 1
    assert [r.key for r in select_sources(engine, now=NOW, everything=True)] == [
        "katrineholm-nyheter"
    ]

    sync(tmp_path, engine, KATRINEHOLM + MASTODON)
    assert stored(engine)["krisinformation-mastodon"].active is True


def test_renamed_handle_with_a_stable_key_keeps_its_history(tmp_path: Path, engine: Engine) -> None:
    sync(tmp_path, engine, MASTODON)
    before = stored(engine)["krisinformation-mastodon"]
    store_one_post(engine, before.id)

    renamed = MASTODON.replace("@krisinformation@mastodon.nu", "@krisinfo@social.sunet.se")
    report = sync(tmp_path, engine, renamed)

    after = stored(engine)["krisinformation-mastodon"]
    assert report.changed == ("krisinformation-mastodon",)
    assert (after.id, after.handle) == (before.id, "@krisinfo@social.sunet.se")
    assert after.cursor == {}  # the old account's cursor means nothing to the new handle
    with engine.connect() as connection:
        assert connection.execute(sa.select(posts.c.source_id)).scalar_one() == before.id


def test_changed_url_forgets_validators_and_redirect_target(tmp_path: Path, engine: Engine) -> None:
    sync(tmp_path, engine, KATRINEHOLM)
    row = stored(engine)["katrineholm-nyheter"]
    store_one_post(engine, row.id)
    with engine.begin() as connection:
        connection.execute(sources.update().values(fetch_url="https://www.katrineholm.se/ny-rss"))

    sync(tmp_path, engine, KATRINEHOLM.replace("/rss", "/nyheter.rss"))
    after = stored(engine)["katrineholm-nyheter"]
    assert (after.url, after.fetch_url, after.etag) == (
        "https://www.katrineholm.se/nyheter.rss",
        None,
        None,
    )


def test_only_due_enabled_sources_are_selected_unless_all_or_named(
    tmp_path: Path, engine: Engine
) -> None:
    disabled = (
        KATRINEHOLM.replace("katrineholm-nyheter", "avstangd").replace("/rss", "/gammal-rss")
        + "enabled = false\n"
    )
    sync(tmp_path, engine, KATRINEHOLM + MASTODON + disabled)
    with engine.begin() as connection:
        connection.execute(
            sources.update()
            .where(sources.c.key == "katrineholm-nyheter")
            .values(next_check_at=NOW + timedelta(hours=1))
        )

    def keys(**options: object) -> list[str]:
        return [r.key for r in select_sources(engine, now=NOW, **options)]  # type: ignore[arg-type]

    assert keys() == ["krisinformation-mastodon"]
    assert keys(everything=True) == ["katrineholm-nyheter", "krisinformation-mastodon"]
    assert keys(keys=["avstangd"]) == ["avstangd"]
    assert keys(everything=True, platform="mastodon") == ["krisinformation-mastodon"]
