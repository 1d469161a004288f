"""Retention, erasure and the audit log, on both databases: what goes leaves no trace, what
stays is untouched, a later collection brings nothing back, and every run is logged."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from monitor.audit import SERVICE_ACTOR, list_audit
from monitor.cli import app
from monitor.config import ConfigError, RetentionConfig, load_config
from monitor.models import audit_log, post_metrics, post_revisions, posts
from monitor.retention import (
    ERASED_CONTENT_HASH,
    Cutoffs,
    apply_retention,
    erase_author,
    erase_post,
    find_cutoffs,
    normalise_handle,
)
from monitor.service import run_upkeep
from monitor.types import Media, PostData
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer
from tests.storedata import DAY, NOW, add_source, collect, post

SECRET = "xyzzy"  # appears only in the content to be erased, so any trace of it is a leak
WIDE = {"COLUMNS": "250"}


# --------------------------------------------------------------------------------------- helpers


def secret_post(number: int, **changes: Any) -> PostData:
    """A post whose every content column carries SECRET."""
    values: dict[str, Any] = {
        "url": f"https://example.se/{SECRET}-{number}",
        "author": f"@{SECRET}_person",
        "title": f"Om {SECRET}plugg",
        "text": f"Texten nämner {SECRET}plugg.",
        "html": f"<p>Texten nämner <b>{SECRET}plugg</b>.</p>",
        "language": "sv",
        "tags": (f"{SECRET}tagg",),
        "links": (f"https://example.se/{SECRET}-länk",),
        "media": (Media(type="image", url=f"https://example.se/{SECRET}.jpg", alt_text=SECRET),),
        "raw": {"guid": f"id-{number}", "summary": f"{SECRET} i rådata"},
    }
    return post(number, **(values | changes))


def rows(engine: Engine, table: sa.Table) -> list[sa.Row[Any]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(table).order_by(table.c.id)))


def by_platform_id(engine: Engine) -> dict[str, sa.Row[Any]]:
    return {r.platform_post_id: r for r in rows(engine, posts)}


def tables_holding(engine: Engine, needle: str) -> list[str]:
    """Every table whose rows, read as text, hold `needle` (case-insensitively): all tables the
    database has, including any a search index keeps."""
    found = []
    with engine.connect() as connection:
        for name in sa.inspect(connection).get_table_names():
            for row in connection.exec_driver_sql(f'SELECT * FROM "{name}"'):
                text = " ".join(
                    v.decode("latin-1") if isinstance(v, bytes | memoryview) else str(v)
                    for v in (bytes(x) if isinstance(x, memoryview) else x for x in row)
                )
                if needle in text.lower():
                    found.append(name)
                    break
    return found


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t.name: [tuple(r) for r in rows(engine, t)]
        for t in (posts, post_revisions, post_metrics, audit_log)
    }


def config_file(tmp_path: Path, engine: Engine, body: str = "") -> Path:
    return write_config(tmp_path, engine.url.render_as_string(hide_password=False), body)


def cli(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args], env=WIDE, input=input)


# ------------------------------------------------------------------------------------- decisions


def test_cutoffs_are_utc_midnights_n_days_before_today() -> None:
    now = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    settings = RetentionConfig(posts_after_days=365, metrics_daily_after_days=30)
    assert find_cutoffs(settings, now) == Cutoffs(
        posts=datetime(2025, 12, 1, tzinfo=UTC),
        raw=None,
        metrics=datetime(2026, 11, 1, tzinfo=UTC),
    )
    # 00:30 in Stockholm is still the previous day in UTC, and so are its cutoffs.
    stockholm = datetime.fromisoformat("2026-12-01T00:30+01:00")
    assert find_cutoffs(settings, stockholm).posts == datetime(2025, 11, 30, tzinfo=UTC)
    assert find_cutoffs(RetentionConfig(), now) == Cutoffs()


def test_handles_compare_without_case_at_or_space() -> None:
    assert normalise_handle(" @Åsa.Öberg ") == normalise_handle("åsa.öberg") == "åsa.öberg"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("posts_after_day = 30", "2: retention.posts_after_day: unknown key; did you mean"
         " 'posts_after_days'?"),
        ("raw_after_days = 0", "2: retention.raw_after_days: Input should be greater than or"
         " equal to 1"),
        ('posts_after_days = "30"', "2: retention.posts_after_days: Input should be a valid"
         " integer"),
        ("metrics_daily_after_days = true", "2: retention.metrics_daily_after_days: Input should"
         " be a valid integer"),
        (
            "posts_after_days = 90\nraw_after_days = 90",
            "3: retention.raw_after_days: 90 days is not shorter than posts_after_days (90): posts "
            "are deleted before this would apply; make it shorter or remove it",
        ),
    ],
)  # fmt: skip
def test_config_problems_name_the_retention_key(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[retention]\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert [str(p) for p in raised.value.problems] == [f"{path}:{problem}"]

    result = CliRunner().invoke(app, ["--config", str(path), "retention", "apply"], env=WIDE)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{path}:{problem}"]


def test_without_retention_settings_apply_keeps_everything_and_logs_nothing(
    tmp_path: Path, engine: Engine
) -> None:
    source_id = add_source(engine)
    collect(engine, source_id, [post(1, published_at=NOW - 4000 * DAY)])
    result = cli(config_file(tmp_path, engine), "retention", "apply")
    assert result.exit_code == 0, result.output
    assert "no [retention] settings, so everything is kept" in result.stdout
    assert len(rows(engine, posts)) == 1 and rows(engine, audit_log) == []


# --------------------------------------------------------------------------------------- erasure


def test_erased_post_leaves_no_trace_and_is_not_collected_again(engine: Engine) -> None:
    source_id = add_source(engine)
    collect(
        engine, source_id, [secret_post(1, metrics={"views": 5}), post(2, metrics={"views": 1})]
    )
    edited = secret_post(1, title=f"Rättad {SECRET}", metrics={"views": 9})
    collect(engine, source_id, [edited], when=NOW + timedelta(hours=1))
    target = by_platform_id(engine)["id-1"]
    assert len(rows(engine, post_revisions)) == 1 and len(rows(engine, post_metrics)) == 3

    report = erase_post(engine, target.id, reason="Begäran 2026/17", actor="anna", now=NOW)

    assert report.counts == {
        "posts": {"erased": 1}, "post_revisions": {"deleted": 1}, "post_metrics": {"deleted": 2},
    }  # fmt: skip
    erased = by_platform_id(engine)["id-1"]
    content = {
        name: erased._mapping[name]
        for name in (
            "url",
            "author",
            "title",
            "text",
            "html",
            "language",
            "raw",
            "terms",
            "phrases",
        )
    }
    assert content == dict.fromkeys(content)
    assert (erased.tags, erased.links, erased.mentions, erased.media) == ([], [], [], [])
    assert (erased.content_hash, erased.erased_at) == (ERASED_CONTENT_HASH, NOW)
    assert tables_holding(engine, SECRET) == []
    kept = by_platform_id(engine)["id-2"]
    assert kept.title == "Nyhet 2" and [m.post_id for m in rows(engine, post_metrics)] == [kept.id]
    (entry,) = list_audit(engine)
    assert (entry.action, entry.target, entry.reason, entry.actor) == (
        "erase", f"post {target.id}", "Begäran 2026/17", "anna",
    )  # fmt: skip
    assert entry.counts == report.counts

    # The platform still lists the post, even edited with new counts: it stays erased.
    again = collect(engine, source_id, [secret_post(1, text="Ny text", metrics={"views": 20})])
    assert (again.counts.new, again.counts.updated, again.counts.metrics) == (0, 0, 0)
    assert by_platform_id(engine)["id-1"] == erased
    assert tables_holding(engine, SECRET) == []
    # Erasing it twice changes and logs nothing.
    assert erase_post(engine, target.id, reason="igen", actor="anna", now=NOW).posts_erased == 0
    assert len(rows(engine, audit_log)) == 1


def test_erased_sqlite_file_holds_no_copy_of_the_text(tmp_path: Path) -> None:
    from monitor.db import make_engine, upgrade

    path = tmp_path / "omvarld.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    source_id = add_source(engine)
    collect(engine, source_id, [secret_post(1), *(post(n) for n in range(2, 50))])
    collect(engine, source_id, [secret_post(1, title=f"Rättad {SECRET}")], when=NOW + DAY)
    post_id = by_platform_id(engine)["id-1"].id

    erase_post(engine, post_id, reason="Begäran", actor="anna", now=NOW)

    # secure_delete zeroed the freed space and the checkpoint emptied the write-ahead log.
    files = [path, path.with_name(path.name + "-wal")]
    leaks = [f.name for f in files if f.exists() and SECRET.encode() in f.read_bytes()]
    engine.dispose()
    assert leaks == []


def test_erase_author_reaches_posts_whose_earlier_version_had_that_author(
    tmp_path: Path, engine: Engine
) -> None:
    source_id = add_source(engine)
    collect(engine, source_id, [
        post(1, author="@Åsa.Öberg"),
        post(2, author="åsa.öberg", title="Första versionen"),
        post(3, author="Redaktionen"),
        post(4, author="@åsa.öberg.extra"),
    ])  # fmt: skip
    # Post 2's byline was later changed: only its earlier version names her.
    collect(engine, source_id, [post(2, author="Redaktionen", title="Andra")], when=NOW + DAY)
    config = config_file(tmp_path, engine)

    result = cli(config, "erase", "--author", "ÅSA.ÖBERG", "--reason", "Begäran 2026/18", "--yes")

    assert result.exit_code == 0, result.output
    assert "Erased 2 posts (author @ÅSA.ÖBERG): 1 earlier versions and 0 rows of counts" in (
        result.stdout
    )
    stored = by_platform_id(engine)
    assert [k for k, r in stored.items() if r.erased_at is not None] == ["id-1", "id-2"]
    assert stored["id-3"].author == "Redaktionen" and stored["id-4"].author == "@åsa.öberg.extra"
    assert rows(engine, post_revisions) == []
    report = erase_author(engine, "@åsa.öberg", reason="igen", actor="anna", now=NOW)
    assert (report.posts_erased, report.audit_id) == (0, None)


def test_erase_asks_first_and_a_no_erases_nothing(tmp_path: Path, engine: Engine) -> None:
    source_id = add_source(engine)
    collect(engine, source_id, [post(1, title="Ska bort", metrics={"likes": 3})])
    post_id = by_platform_id(engine)["id-1"].id
    config = config_file(tmp_path, engine)
    args = ("erase", "--post", str(post_id), "--reason", "Begäran")

    declined = cli(config, *args, input="n\n")
    assert declined.exit_code == 1
    assert re.search(
        rf"│\s*{post_id}\s*│\s*feed:example.se/rss\s*│.*│\s*Ska bort\s*│\s*0\s*│\s*1\s*│",
        declined.stdout,
    )
    assert "Erase 1 posts, deleting 0 earlier versions and 1 rows of counts?" in declined.stdout
    assert "Nothing erased." in declined.stdout
    assert by_platform_id(engine)["id-1"].erased_at is None and rows(engine, audit_log) == []

    accepted = cli(config, *args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert by_platform_id(engine)["id-1"].erased_at is not None
    assert cli(config, *args).stdout.startswith(f"Post {post_id} was already erased on ")


def test_erase_refuses_an_unknown_post_and_a_missing_choice(tmp_path: Path, engine: Engine) -> None:
    config = config_file(tmp_path, engine)
    unknown = cli(config, "erase", "--post", "999", "--reason", "Begäran", "--yes")
    assert (unknown.exit_code, unknown.stderr) == (2, "error: --post: no post with id 999\n")
    neither = cli(config, "erase", "--reason", "Begäran")
    assert (neither.exit_code, neither.stderr) == (
        2,
        "error: give either --post ID or --author HANDLE\n",
    )
    blank = cli(config, "erase", "--post", "1", "--reason", " ")
    assert (blank.exit_code, blank.stderr) == (
        2,
        "error: --reason: say why; it is kept in the audit log\n",
    )
    assert cli(config, "erase", "--post", "1").exit_code == 2  # --reason is required


# ------------------------------------------------------------------------------------- retention


def test_old_counts_are_thinned_to_the_last_of_each_utc_day(engine: Engine) -> None:
    source_id = add_source(engine)
    old_day = (NOW - 40 * DAY).replace(hour=0, minute=0, second=0)
    times = [old_day + timedelta(hours=h) for h in (1, 9, 23)]  # one UTC day, three counts
    times += [old_day + DAY + timedelta(hours=h) for h in (2, 3)]  # the next day, two
    times += [NOW - timedelta(hours=h) for h in (3, 2, 1)]  # recent: all kept
    for views, when in enumerate(times, start=1):
        collect(engine, source_id, [post(1, published_at=old_day, metrics={"views": views})], when)
    settings = RetentionConfig(metrics_daily_after_days=30)

    report = apply_retention(engine, settings, NOW, actor="anna")

    assert report.counts == {"post_metrics": {"thinned": 3}}
    assert [m.views for m in rows(engine, post_metrics)] == [3, 5, 6, 7, 8]
    (entry,) = list_audit(engine)
    cutoff = f"{find_cutoffs(settings, NOW).metrics:%Y-%m-%d}"
    assert entry.target == f"counts observed before {cutoff}, thinned to daily"
    assert entry.reason == "[retention] metrics_daily_after_days = 30"
    assert apply_retention(engine, settings, NOW, actor="anna").counts == {
        "post_metrics": {"thinned": 0}
    }


def test_raw_payloads_of_old_posts_and_their_revisions_are_dropped(engine: Engine) -> None:
    source_id = add_source(engine)
    old, recent = NOW - 100 * DAY, NOW - 10 * DAY
    collect(engine, source_id, [post(1, old), post(2, recent), post(3, old, raw=None)])
    collect(engine, source_id, [post(1, old, title="Rättad")], when=NOW + timedelta(minutes=1))

    report = apply_retention(engine, RetentionConfig(raw_after_days=90), NOW, actor="anna")

    # Post 3 arrived without a payload (JSON null): nothing to drop, so it is not counted.
    assert report.counts == {"posts": {"raw_dropped": 1}, "post_revisions": {"raw_dropped": 1}}
    stored = by_platform_id(engine)
    assert stored["id-1"].raw is None and stored["id-1"].title == "Rättad"
    assert stored["id-2"].raw == {"guid": "id-2"}
    (revision,) = rows(engine, post_revisions)
    assert revision.raw is None and revision.title == "Nyhet 1"
    with engine.connect() as connection:  # SQL NULL, not JSON null
        assert (
            connection.execute(sa.select(sa.func.count()).where(posts.c.raw.is_(None))).scalar_one()
            == 1
        )


def test_old_posts_go_with_their_revisions_and_counts_and_are_not_collected_again(
    engine: Engine,
) -> None:
    source_id = add_source(engine)
    old, recent = NOW - 400 * DAY, NOW - 300 * DAY
    collect(
        engine,
        source_id,
        [post(1, old, metrics={"likes": 1}), post(2, recent, metrics={"likes": 2})],
    )
    collect(engine, source_id, [post(1, old, title="Rättad", metrics={"likes": 4})], when=NOW + DAY)
    settings = RetentionConfig(posts_after_days=365)

    report = apply_retention(engine, settings, NOW, actor="anna")

    assert report.counts == {
        "post_metrics": {"deleted": 2}, "post_revisions": {"deleted": 1}, "posts": {"deleted": 1},
    }  # fmt: skip
    assert list(by_platform_id(engine)) == ["id-2"]
    assert [m.likes for m in rows(engine, post_metrics)] == [2]
    again = collect(
        engine,
        source_id,
        [post(1, old), post(3)],
        published_since=find_cutoffs(settings, NOW).posts,
    )
    assert again.counts.new == 1 and sorted(by_platform_id(engine)) == ["id-2", "id-3"]


def test_collection_leaves_out_items_older_than_the_posts_cutoff(
    tmp_path: Path, engine: Engine, feed_server: FeedServer
) -> None:
    def item(guid: str, published: datetime) -> str:
        date = published.strftime("%a, %d %b %Y %H:%M:%S +0000")
        return f"<item><guid>{guid}</guid><title>{guid}</title><pubDate>{date}</pubDate></item>"

    feed = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>K</title>'
        + item("gammal", NOW - 800 * DAY) + item("ny", NOW - DAY) + "</channel></rss>"
    )  # fmt: skip
    url = feed_server.add("/rss.xml", body=feed.encode())
    config = config_file(
        tmp_path, engine, "[retention]\nposts_after_days = 730\n" + feed_source(url)
    )

    result = cli(config, "collect", "--all")

    assert result.exit_code == 0, result.output
    assert list(by_platform_id(engine)) == ["ny"]


def test_dry_run_counts_what_a_run_then_does_and_writes_nothing(
    tmp_path: Path, engine: Engine
) -> None:
    source_id = add_source(engine)
    morning = (NOW - 50 * DAY).replace(hour=8, minute=0, second=0)  # two counts in one UTC day
    for views, when in ((1, morning), (2, morning + timedelta(hours=1))):
        collect(engine, source_id, [
            post(1, NOW - 500 * DAY, metrics={"views": views}),
            post(2, NOW - 60 * DAY, metrics={"views": views}),
        ], when)  # fmt: skip
    body = (
        "[retention]\nposts_after_days = 365\nraw_after_days = 30\nmetrics_daily_after_days = 14\n"
    )
    config = config_file(tmp_path, engine, body)
    before = snapshot(engine)

    dry = cli(config, "retention", "apply", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert snapshot(engine) == before
    assert "Dry run: nothing was changed or logged." in dry.stdout
    applied = cli(config, "retention", "apply")
    assert applied.exit_code == 0, applied.output

    def table_rows(result: Result) -> list[list[str]]:
        return [
            [cell.strip() for cell in line.split("│")[1:-1]]
            for line in result.stdout.splitlines()
            if line.startswith("│")
        ]

    expected = [
        ["post_metrics", "deleted", "2"], ["post_metrics", "thinned", "1"],
        ["post_revisions", "deleted", "0"], ["post_revisions", "raw dropped", "0"],
        ["posts", "deleted", "1"], ["posts", "raw dropped", "1"],
    ]  # fmt: skip
    assert table_rows(dry) == table_rows(applied) == expected
    assert len(rows(engine, audit_log)) == 1


def test_audit_lists_every_run_and_erasure_and_retention_never_prunes_it(
    tmp_path: Path, engine: Engine
) -> None:
    with engine.begin() as connection:  # an entry older than any cutoff below
        connection.execute(audit_log.insert().values(
            at=NOW - 3000 * DAY, action="archive-export", target="posts 2017", reason=None,
            actor="bo", counts={"posts": 12},
        ))  # fmt: skip
    source_id = add_source(engine)
    collect(engine, source_id, [post(1, NOW - 500 * DAY), post(2)])
    config = config_file(tmp_path, engine, "[retention]\nposts_after_days = 365\n")
    assert cli(config, "retention", "apply").exit_code == 0
    post_id = by_platform_id(engine)["id-2"].id
    assert (
        cli(config, "erase", "--post", str(post_id), "--reason", "Begäran 7", "--yes").exit_code
        == 0
    )

    listed = cli(config, "audit")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if line.startswith("│")]
    assert [line.split("│")[3].strip() for line in lines] == [
        "archive-export",
        "retention",
        "erase",
    ]
    assert (
        "posts deleted 1" in lines[1] and f"post {post_id}" in lines[2] and "Begäran 7" in lines[2]
    )

    erasures = json.loads(cli(config, "audit", "--action", "erase", "--json").stdout)
    assert [(e["action"], e["target"], e["reason"]) for e in erasures] == [
        ("erase", f"post {post_id}", "Begäran 7")
    ]
    assert erasures[0]["counts"]["posts"] == {"erased": 1}
    recent = cli(config, "audit", "--since", "7d", "--json")
    assert [e["action"] for e in json.loads(recent.stdout)] == ["retention", "erase"]
    assert (
        cli(config, "audit", "--action", "nothing").stdout
        == "The audit log has no entries that match.\n"
    )


# --------------------------------------------------------------------------------------- service


def test_daily_upkeep_applies_retention_as_the_service_and_logs_one_line(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    source_id = add_source(engine)
    collect(engine, source_id, [post(1, NOW - 100 * DAY), post(2)])
    with_retention = load_config(
        config_file(tmp_path, engine, "[retention]\nraw_after_days = 90\n")
    )
    without = load_config(config_file(tmp_path, engine))

    assert run_upkeep(engine, without, NOW).retention is None
    assert rows(engine, audit_log) == []
    with caplog.at_level(logging.INFO, logger="monitor.service"):
        report = run_upkeep(engine, with_retention, NOW)

    assert report.retention is not None
    assert report.retention.counts == {
        "posts": {"raw_dropped": 1},
        "post_revisions": {"raw_dropped": 0},
    }
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retention:")]
    assert line.startswith("retention: posts.raw_dropped=1 post_revisions.raw_dropped=0 seconds=")
    (entry,) = list_audit(engine)
    assert (entry.action, entry.actor) == ("retention", SERVICE_ACTOR)


def test_an_erased_post_is_no_longer_found_by_search(engine: Engine) -> None:
    from monitor.filters import PostFilter
    from monitor.search import search_posts

    source_id = add_source(engine)
    collect(engine, source_id, [secret_post(1), post(2, title=f"Också {SECRET}plugg")])
    found = search_posts(engine, f"{SECRET}plugg", PostFilter(), limit=10)
    assert len(found) == 2
    erase_post(engine, by_platform_id(engine)["id-1"].id, reason="Begäran", actor="anna", now=NOW)

    (hit,) = search_posts(engine, f"{SECRET}plugg", PostFilter(), limit=10)
    assert hit.title == f"Också {SECRET}plugg"
