"""Full-text search: Swedish stems, ranking, query syntax, filters and the index kept current by
the database through ingest, edits, erasure and deletes, on both databases."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import _alembic_config, make_engine
from monitor.filters import PostFilter, parse_moment
from monitor.models import posts, sources
from monitor.schedule import SchedulePolicy
from monitor.search import (
    RELEVANCE_POOL,
    QueryError,
    SearchHit,
    make_excerpt,
    parse_query,
    search_posts,
    suggest_prefix,
)
from monitor.stems import stem_text
from monitor.store import Attempt, record_attempt, record_attempts
from monitor.types import KINDS, CollectResult, CollectStatus, PostData, SourceState
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
EVERYTHING = PostFilter()
runner = CliRunner()


def add_source(
    engine: Engine,
    key: str,
    *,
    platform: str = "feed",
    organisation: str = "Exempel kommun",
    groups: tuple[str, ...] = (),
) -> int:
    with engine.begin() as connection:
        return connection.execute(
            sources.insert()
            .values(
                key=key, platform=platform, url=f"https://{key}.example.se/",
                organisation=organisation, groups=list(groups), cursor={}, status="new",
                consecutive_failures=0, active=True, enabled=True, created_at=NOW, updated_at=NOW,
            )
            .returning(sources.c.id)
        ).scalar_one()  # fmt: skip


def post(number: int, title: str | None, text: str | None, **changes: Any) -> PostData:
    values: dict[str, Any] = {
        "platform_post_id": f"post-{number}",
        "kind": "article",
        "url": f"https://example.se/{number}",
        "published_at": NOW - timedelta(hours=number),
        "title": title,
        "text": text,
    }
    return PostData(**(values | changes))


def store(engine: Engine, source_id: int, *items: PostData, when: datetime = NOW) -> None:
    """Through the real ingest path, one collection attempt."""
    result = CollectResult(CollectStatus.OK, posts=items, state=SourceState())
    record = record_attempt(engine, Attempt(source_id, when, when, SchedulePolicy()), result)
    assert record.status is CollectStatus.OK, record.error


def found(engine: Engine, query: str, chosen: PostFilter = EVERYTHING) -> list[str]:
    """The urls of the hits, best first."""
    return [hit.url or "" for hit in search_posts(engine, query, chosen, limit=50)]


@pytest.fixture
def source_id(engine: Engine) -> int:
    return add_source(engine, "exempel")


def test_a_stem_finds_every_inflection_and_swedish_letters_matter(
    engine: Engine, source_id: int
) -> None:
    store(
        engine,
        source_id,
        post(1, "Kommunen bygger ny skola", "Byggstart i vår."),
        post(2, None, "Tre kommuner samarbetar om räddningstjänst."),
        post(3, "Översvämningar i Örebro", "Vattnet stiger vid ån."),
        post(4, "Varning för översvämning", None),
        post(5, "Oversvamning", "Stavat utan prickar."),
    )

    assert sorted(found(engine, "kommun")) == ["https://example.se/1", "https://example.se/2"]
    assert sorted(found(engine, "KOMMUNER")) == ["https://example.se/1", "https://example.se/2"]
    assert sorted(found(engine, "översvämningar")) == [
        "https://example.se/3",
        "https://example.se/4",
    ]
    assert found(engine, "oversvamning") == ["https://example.se/5"]


def test_a_title_match_ranks_above_body_only_matches(engine: Engine, source_id: int) -> None:
    store(
        engine,
        source_id,
        post(1, "Nytt från nämnden", "Budgeten, budgeten och åter budgeten: budget i fokus."),
        post(2, "Budgeten är klar", "Fullmäktige har beslutat."),
        post(3, "Om skolan", "Skolans budget diskuterades."),
    )

    hits = search_posts(engine, "budget", EVERYTHING, limit=10, sort="relevance")

    assert hits[0].url == "https://example.se/2"
    assert {hit.url for hit in hits[1:]} == {"https://example.se/1", "https://example.se/3"}
    assert hits[0].rank > hits[1].rank >= hits[2].rank


def test_best_match_first_ranks_the_matches_collected_last_and_nothing_past_them(
    engine: Engine, source_id: int
) -> None:
    # The best match of all, collected first: outside the RELEVANCE_POOL collected last.
    best = post(0, "Budget", "Budget, budget, budget.", published_at=NOW - timedelta(days=400))
    store(engine, source_id, best, when=NOW - timedelta(days=1))
    later = [post(n, None, f"Nämnden om budget {n}.") for n in range(1, RELEVANCE_POOL)]
    store(engine, source_id, *later, post(RELEVANCE_POOL, "Budgeten klar", "Fullmäktige beslöt."))

    def relevance(offset: int, limit: int = 20) -> list[str]:
        hits = search_posts(engine, "budget", EVERYTHING, limit, sort="relevance", offset=offset)
        return [hit.url or "" for hit in hits]

    # Among the thousand collected last, the title match ranks first, then newest first.
    assert relevance(0, 3) == [f"https://example.se/{n}" for n in (RELEVANCE_POOL, 1, 2)]
    assert relevance(RELEVANCE_POOL - 2) == [f"https://example.se/{n}" for n in (998, 999)]
    assert relevance(RELEVANCE_POOL) == []
    # Newest first still reaches every match, the first collected last (it is the oldest).
    newest = search_posts(engine, "budget", EVERYTHING, 5, offset=RELEVANCE_POOL - 2)
    assert [hit.url for hit in newest][-1] == "https://example.se/0"


def test_phrases_or_and_exclusion(engine: Engine, source_id: int) -> None:
    store(
        engine,
        source_id,
        post(1, "Vattenläcka", "Tillfälligt avstängt vatten på Storgatan."),
        post(2, "Avstängt", "Storgatan: vatten finns, men gatan är avstängd."),
        post(3, "Brand", "Räddningstjänsten larmades till en brand."),
        post(4, "Övning", "Räddningstjänsten övar brand i skolan."),
    )

    assert found(engine, '"avstängt vatten"') == ["https://example.se/1"]
    assert sorted(found(engine, "vattenläcka OR övning")) == [
        "https://example.se/1",
        "https://example.se/4",
    ]
    assert found(engine, "brand -övning") == ["https://example.se/3"]
    assert found(engine, 'räddningstjänsten -"övar brand"') == ["https://example.se/3"]
    assert sorted(found(engine, "storgatan vatten")) == [
        "https://example.se/1",
        "https://example.se/2",
    ]


def test_every_filter_narrows_the_hits(engine: Engine) -> None:
    town = add_source(engine, "town", organisation="Flens kommun", groups=("kommuner", "sörmland"))
    agency = add_source(engine, "agency", platform="x", organisation="Trafikverket")
    store(engine, town, post(1, "Snöröjning", "Plogbilarna är ute.", kind="article"))
    store(
        engine,
        agency,
        post(2, "Snöröjning", "Vägarna plogas.", kind="post", metrics={"likes": 7, "reposts": 3}),
        post(30, "Snöröjning", "Gammalt inlägg.", kind="post", metrics={"likes": 1, "views": 900}),
    )

    def urls(**fields: Any) -> list[str]:
        return sorted(found(engine, "snöröjning", PostFilter(**fields)))

    assert urls() == ["https://example.se/1", "https://example.se/2", "https://example.se/30"]
    assert urls(since=NOW - timedelta(days=1)) == ["https://example.se/1", "https://example.se/2"]
    assert urls(until=NOW - timedelta(days=1)) == ["https://example.se/30"]
    assert urls(platforms=("feed",)) == ["https://example.se/1"]
    assert urls(sources=("agency",)) == ["https://example.se/2", "https://example.se/30"]
    assert urls(organisations=("Flens kommun",)) == ["https://example.se/1"]
    assert urls(groups=("regioner", "sörmland")) == ["https://example.se/1"]
    assert urls(groups=("regioner",)) == []
    assert urls(kinds=("post",)) == ["https://example.se/2", "https://example.se/30"]
    # Views are not engagement; a post never counted has none.
    assert urls(min_engagement=10) == ["https://example.se/2"]
    assert urls(min_engagement=1) == ["https://example.se/2", "https://example.se/30"]
    assert urls(platforms=("x",), min_engagement=10, since=NOW - timedelta(days=1)) == [
        "https://example.se/2"
    ]
    (hit,) = search_posts(engine, "plogas", EVERYTHING, limit=5)
    assert (hit.source_key, hit.organisation, hit.platform, hit.kind) == (
        "agency",
        "Trafikverket",
        "x",
        "post",
    )
    assert hit.engagement == 10
    assert hit.published_at == NOW - timedelta(hours=2)


def test_an_edited_post_is_found_by_its_new_text_only(engine: Engine, source_id: int) -> None:
    store(engine, source_id, post(1, "Inställt möte", "Mötet om detaljplanen är inställt."))
    store(
        engine,
        source_id,
        post(1, "Flyttat möte", "Mötet om detaljplanen flyttas till biblioteket."),
        when=NOW + timedelta(hours=1),
    )

    assert found(engine, "biblioteket") == ["https://example.se/1"]
    assert found(engine, "flyttat") == ["https://example.se/1"]
    assert found(engine, "inställt") == []


def test_filters_follow_an_edit_of_kind_and_date(engine: Engine, source_id: int) -> None:
    store(engine, source_id, post(1, "Brandövning", "Övning vid skolan.", kind="article"))
    later = NOW + timedelta(days=3)
    edited = post(1, "Brandövning", "Övning vid skolan.", kind="video", published_at=later)
    store(engine, source_id, edited, when=later)

    assert found(engine, "brandövning", PostFilter(kinds=("video",))) == ["https://example.se/1"]
    assert found(engine, "brandövning", PostFilter(kinds=("article",))) == []
    assert found(engine, "brandövning", PostFilter(since=NOW + timedelta(days=1))) == [
        "https://example.se/1"
    ]


def test_an_erased_post_is_no_longer_found(engine: Engine, source_id: int) -> None:
    store(engine, source_id, post(1, "Personuppgifter", "Namn och adress."), post(2, "Adress", ""))
    with engine.begin() as connection:  # what `omvarld erase` does to a post
        connection.execute(
            posts.update()
            .where(posts.c.platform_post_id == "post-1")
            .values(title=None, text=None, erased_at=NOW)
        )

    assert found(engine, "adress") == ["https://example.se/2"]
    assert found(engine, "personuppgifter") == []


def test_a_deleted_post_leaves_the_index(engine: Engine, source_id: int) -> None:
    store(engine, source_id, post(1, "Gallras", "Gammal nyhet."), post(2, "Gallras", "Ny."))
    with engine.begin() as connection:  # what retention does
        connection.execute(posts.delete().where(posts.c.platform_post_id == "post-1"))

    assert found(engine, "gallras") == ["https://example.se/2"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            count = connection.execute(sa.text("SELECT count(*) FROM posts_search")).scalar()
        assert count == 1


def test_posts_stored_before_the_search_migration_are_indexed_by_it(
    database_url: str,
) -> None:
    from alembic import command

    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0006")
    with engine.begin() as connection:
        # The tables as 0006 left them: raw SQL, as the models describe the newest schema.
        source_id = connection.execute(
            sa.text(
                "INSERT INTO sources (key, platform, url, organisation, groups, active, enabled,"
                " cursor, status, consecutive_failures, created_at, updated_at) VALUES"
                " ('exempel', 'feed', 'https://exempel.example.se/', 'Exempel kommun', '[]',"
                " true, true, '{}', 'new', 0, :now, :now) RETURNING id"
            ),
            {"now": NOW.replace(tzinfo=None)},
        ).scalar_one()
        connection.execute(
            sa.text(
                "INSERT INTO posts (source_id, platform_post_id, kind, url, published_at, title,"
                " text, tags, links, mentions, other_mentions, media, content_hash, fetched_at,"
                " first_seen_at) VALUES (:source, 'p1', 'article', 'https://example.se/1',"
                " :now, 'Kommunerna', 'text', '[]', '[]', '[]', 0, '[]', 'h', :now, :now)"
            ),
            {"source": source_id, "now": NOW.replace(tzinfo=None)},
        )
        command.upgrade(_alembic_config(connection), "head")

    assert found(engine, "kommun") == ["https://example.se/1"]
    engine.dispose()


def test_the_excerpt_is_plain_text_around_the_first_match() -> None:
    text = "Inledning. " * 40 + "Här beslutade kommunen om en ny   skola.\n" + "Slut. " * 40

    excerpt = make_excerpt(text, {"kommun"}, width=80)

    assert "kommunen om en ny skola" in excerpt
    assert excerpt.startswith("…") and excerpt.endswith("…")
    assert len(excerpt) <= 82
    assert make_excerpt("Kort text.", {"kommun"}) == "Kort text."


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('"översvämning', "unbalanced quote"),
        ("OR", "OR needs a word or phrase on each side"),
        ("brand OR", "OR needs a word or phrase on each side"),
        ("brand OR OR skola", "OR needs a word or phrase on each side"),
        ("-brand", "nothing to search for"),
        ("brand -", "'-' must be followed by a word or phrase"),
        ("brand OR -skola", "an excluded word cannot be part of OR"),
        ("!!! ???", "nothing to search for"),
        ("", "nothing to search for"),
        (" ".join(["hus"] * 101), "the query has 101 words; at most 100 can be searched"),
        ('"' + " ".join(["hus"] * 101) + '"', "the query has 101 words"),  # a phrase's words
        ("hus " * 501, "the query has 2,004 characters; at most 2,000 can be searched"),
        ("snö**", "misplaced \\* in 'snö\\*\\*'"),
        ("*", "misplaced \\*"),
        ("skola -*", "misplaced \\*"),
        ("sn*ö", "misplaced \\*"),
        ('"snö* fall"', "misplaced \\*"),
        ('"snö*', "unbalanced quote"),
        ("sn*", "sn\\* is too short a start of a word: give at least 3 letters"),
    ],
)
def test_a_malformed_query_is_refused_with_a_reason(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(query)


def test_a_start_of_a_word_finds_the_words_that_begin_so(engine: Engine, source_id: int) -> None:
    store(
        engine,
        source_id,
        post(1, "Snöröjningen har startat", "Plogbilarna är ute."),
        post(2, "Prognos", "Kraftigt snöfall väntas i natt."),
        post(3, "Sno", "Ett annat ord: sno, utan prickar."),
        post(4, "Förskolan stänger", "Förskolan har stängt i dag."),
        post(5, "Ny skolgård", "Skolgården är klar."),
    )

    assert sorted(found(engine, "snö*")) == ["https://example.se/1", "https://example.se/2"]
    assert found(engine, "snö") == []
    assert suggest_prefix("snö") == "snö*"
    # "för" is a stop word to PostgreSQL's Swedish dictionary; as a start of a word it counts.
    assert found(engine, "för*") == ["https://example.se/4"]
    assert found(engine, '"ny skol*"') == ["https://example.se/5"]
    assert found(engine, "snö* -snöfall") == ["https://example.se/1"]
    assert sorted(found(engine, "sno OR snöf*")) == ["https://example.se/2", "https://example.se/3"]
    assert found(engine, "SNÖRÖJ*, plogbil*") == ["https://example.se/1"]


def test_suggest_prefix_widens_the_words_and_nothing_else() -> None:
    assert suggest_prefix("Snö skola") == "snö* skola*"
    assert suggest_prefix('snö "ny skola" -is') == 'snö* "ny skola" -is'
    assert suggest_prefix("snö OR is") == "snö* OR is"  # two letters are too few a start
    assert suggest_prefix("snö*") is None
    assert suggest_prefix('"ny skola"') is None
    assert suggest_prefix('"snö') is None  # not a query: nothing to suggest


def test_fts5_syntax_in_user_text_is_searched_as_words(engine: Engine, source_id: int) -> None:
    store(engine, source_id, post(1, "Kommunen NEAR skolan", "title: * ^ { } ( ) AND"))

    # Operators and column filters of FTS5 (and tsquery's & | ! :*) are plain words to us.
    assert found(engine, "kommunen NEAR(skolan) title: AND & | ! ^ :") == ["https://example.se/1"]


def test_dates_and_spans_are_moments_in_utc() -> None:
    assert parse_moment("2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_moment("2026-11-01T09:00+01:00", NOW) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert parse_moment("7d", NOW) == NOW - timedelta(days=7)
    with pytest.raises(ValueError, match="a span like 7d"):
        parse_moment("last week", NOW)


# The command, as analysts run it, over posts collected from a loopback feed.


def collected(tmp_path: Path, database_url: str, feed_server: FeedServer) -> str:
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    config = str(write_config(tmp_path, database_url, feed_source(url, key="katrineholm")))
    assert runner.invoke(app, ["--config", config, "db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["--config", config, "collect", "--all"]).exit_code == 0
    return config


def test_cli_search_writes_csv_and_jsonl_that_parse(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    config = collected(tmp_path, database_url, feed_server)

    as_csv = runner.invoke(
        app,
        ["--config", config, "posts", "search", "snöröjning", "--format", "csv",
         "--sort", "relevance"],
    )  # fmt: skip
    as_jsonl = runner.invoke(
        app, ["--config", config, "posts", "search", "snöröjningen", "--format", "jsonl"]
    )
    table = runner.invoke(
        app, ["--config", config, "posts", "search", "kommun", "--since", "3650d"],
        env={"COLUMNS": "200"},
    )  # fmt: skip

    assert as_csv.exit_code == 0, as_csv.output
    (row,) = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert row["title"].startswith("Snöröjningen har startat")
    assert row["source_key"] == "katrineholm" and row["platform"] == "feed"
    assert float(row["rank"]) > 0
    assert as_jsonl.exit_code == 0, as_jsonl.output
    (hit,) = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert hit["title"] == row["title"] and hit["engagement"] is None
    assert datetime.fromisoformat(hit["published_at"]).tzinfo is not None
    assert table.exit_code == 0, table.output
    assert "Katrineholms kommun" in table.stdout


def test_cli_search_sorts_newest_first_and_suggests_a_prefix_when_nothing_is_found(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    config = collected(tmp_path, database_url, feed_server)

    def search(*arguments: str) -> Any:
        return runner.invoke(
            app, ["--config", config, "posts", "search", *arguments, "--format", "jsonl"]
        )

    several = "kommunen OR biblioteket OR vattenläcka"
    newest, relevance, prefix, nothing = (
        search(several), search(several, "--sort", "relevance"), search("plog*"), search("plog")
    )  # fmt: skip

    assert newest.exit_code == relevance.exit_code == prefix.exit_code == 0, newest.output
    dates = [json.loads(line)["published_at"] for line in newest.stdout.splitlines()]
    assert len(dates) == 3 and dates == sorted(dates, reverse=True)
    assert {json.loads(line)["rank"] for line in newest.stdout.splitlines()} == {0.0}
    assert all(json.loads(line)["rank"] > 0 for line in relevance.stdout.splitlines())
    assert json.loads(prefix.stdout.splitlines()[0])["title"].startswith("Snöröjningen")
    table = runner.invoke(app, ["--config", config, "posts", "search", "plog"])
    assert nothing.exit_code == table.exit_code == 0 and nothing.stdout == ""
    assert (
        table.stderr.strip() == "no stored posts match 'plog'; try 'plog*' for words that begin so"
    )


FORMULA_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Nyheter</title><link>https://example.se/</link><item>
<title>=HYPERLINK("https://evil.example/","Klicka här")</title>
<link>https://example.se/nyheter/1</link><guid>1</guid><author>@kommunen</author>
<description>-2+3 timmar snöröjning i natt</description>
<pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate></item></channel></rss>
"""


def test_cli_search_csv_neutralises_formulas_as_the_export_does(
    tmp_path: Path, database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.add("/nyheter.xml", body=FORMULA_FEED.encode())
    config = str(write_config(tmp_path, database_url, feed_source(url, key="exempel")))
    assert runner.invoke(app, ["--config", config, "db", "upgrade"]).exit_code == 0
    collected = runner.invoke(app, ["--config", config, "collect", "--all"])
    assert collected.exit_code == 0, collected.output
    out = tmp_path / "posts.csv"

    searched = runner.invoke(
        app, ["--config", config, "posts", "search", "snöröjning", "--format", "csv"]
    )
    exported = runner.invoke(app, ["--config", config, "export", "posts", "--out", str(out)])

    assert searched.exit_code == 0 and exported.exit_code == 0, searched.output + exported.output
    (hit,) = csv.DictReader(io.StringIO(searched.stdout, newline=""))
    with out.open(encoding="utf-8-sig", newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert hit["title"] == row["title"] == '\'=HYPERLINK("https://evil.example/","Klicka här")'
    assert hit["excerpt"] == row["text"] == "'-2+3 timmar snöröjning i natt"
    assert hit["published_at"] == row["published_at"] == "2026-11-23T08:00:00Z"
    assert list(hit) == [field.name for field in fields(SearchHit)]
    assert searched.stdout_bytes.endswith(b"\r\n")  # RFC 4180, like the export


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (['"snöröjning'], "error: search: unbalanced quote"),
        (["OR"], "error: search: OR needs a word or phrase on each side"),
        (["kommun", "--since", "förra veckan"], "error: --since: expected a date like"),
        (["kommun", "--format", "xml"], "error: --format: expected table, csv or jsonl"),
        (["kommun", "--sort", "best"], "error: --sort: expected newest or relevance, got 'best'"),
        (["snö**"], "error: search: misplaced * in 'snö**'"),
    ],
)
def test_cli_search_refuses_bad_input_with_one_line_and_exit_2(
    tmp_path: Path, database_url: str, feed_server: FeedServer, arguments: list[str], message: str
) -> None:
    config = collected(tmp_path, database_url, feed_server)

    result = runner.invoke(app, ["--config", config, "posts", "search", *arguments])

    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(message)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--platform", "fed", "error: --platform: unknown 'fed'; expected one of feed, "),
        (
            "--kind",
            "artikel",
            f"error: --kind: unknown 'artikel'; expected one of {', '.join(KINDS)}",
        ),
        (
            "--source",
            "katrineholms",
            "error: --source: no source with key 'katrineholms';"
            " `omvarld sources list --inactive` shows them",
        ),
        (
            "--group",
            "kommun",
            "error: --group: unknown 'kommun'; expected one of kommuner, sörmland",
        ),
    ],
)
def test_cli_search_refuses_a_filter_value_that_matches_nothing_stored(
    tmp_path: Path, database_url: str, feed_server: FeedServer, option: str, value: str,
    message: str,
) -> None:  # fmt: skip
    # A typo here printed "no stored posts match" and exited 0, as if nothing had been written.
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    source = feed_source(url, key="katrineholm") + 'groups = ["kommuner", "sörmland"]\n'
    config = str(write_config(tmp_path, database_url, source))
    assert runner.invoke(app, ["--config", config, "db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["--config", config, "collect", "--all"]).exit_code == 0

    refused = runner.invoke(app, ["--config", config, "posts", "search", "kommun", option, value])
    found = runner.invoke(
        app, ["--config", config, "posts", "search", "kommun", "--group", "sörmland",
              "--source", "katrineholm", "--platform", "feed", "--format", "jsonl"],
    )  # fmt: skip

    assert refused.exit_code == 2
    assert refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert line.startswith(message)
    assert found.exit_code == 0, found.output
    assert [json.loads(line)["source_key"] for line in found.stdout.splitlines()]


def index_of(engine: Engine) -> dict[int, tuple[str | None, str | None]]:
    """SQLite's search index, by post id."""
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT rowid, title, body FROM posts_search"))
        return {row[0]: (row[1], row[2]) for row in rows}


def test_the_index_of_batched_ingest_is_the_index_a_trigger_writes(
    engine: Engine, source_id: int
) -> None:
    """Ingest writes the index rows of new posts itself, a batch at a time (migration 0016);
    any other writer's inserts are indexed by the trigger. Both must give the same index, and
    posts without title or text none."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's search column is generated by PostgreSQL itself")
    items = [
        post(1, "Kommunen bygger ny skola", "Byggstart i vår."),
        post(2, None, "Tre kommuner samarbetar."),
        post(3, "Bara rubrik", None),
        post(4, None, None),
        post(5, "Översvämning\u0000 vid ån", "Vattnet stiger."),
    ]
    store(engine, source_id, *items)
    other = add_source(engine, "annan")
    with engine.begin() as connection:  # a hand INSERT, as an admin or a COPY would write
        for item in items:
            connection.execute(
                posts.insert().values(
                    source_id=other, platform_post_id=item.platform_post_id, kind=item.kind,
                    published_at=item.published_at, text=item.text,
                    title=item.title and item.title.replace("\0", ""), content_hash="x",
                    first_seen_at=NOW, fetched_at=NOW,
                )
            )  # fmt: skip
    with engine.connect() as connection:
        ids = {
            (row.source_id, row.platform_post_id): row.id
            for row in connection.execute(
                sa.select(posts.c.id, posts.c.source_id, posts.c.platform_post_id)
            )
        }
    index = index_of(engine)
    for item in items:
        batched = index.get(ids[source_id, item.platform_post_id])
        triggered = index.get(ids[other, item.platform_post_id])
        assert batched == triggered, item.platform_post_id
    assert ids[source_id, "post-4"] not in index
    assert len(index) == 8
    # The hand-inserted copies have no address: found as "".
    assert sorted(found(engine, "kommun")) == [
        "",
        "",
        "https://example.se/1",
        "https://example.se/2",
    ]
    assert sorted(found(engine, "översvämning")) == ["", "https://example.se/5"]


def test_a_batch_of_hundreds_of_posts_is_indexed_whole_and_exact(
    engine: Engine, source_id: int
) -> None:
    """Ingest writes a batch's index rows in statements of up to 1,024 rows (issue 15): every
    post of a large attempt (two batches, statements of 256, 128, 64 … rows) is found by its
    own word, and FTS5 finds its index consistent with what it holds."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's search column is generated by PostgreSQL itself")
    count = 777
    store(
        engine,
        source_id,
        *(post(n, f"Nyhet {n}", f"Kommunen meddelar ärende{n} i dag.") for n in range(count)),
    )

    index = index_of(engine)
    assert len(index) == count
    assert {body for _, body in index.values()} == {
        f"kommun meddel ärende{n} i dag" for n in range(count)
    }
    for n in (0, 63, 64, 255, 256, 499, 500, 776):
        assert found(engine, f"ärende{n}") == [f"https://example.se/{n}"]
    with engine.begin() as connection:  # raises if the index and its content disagree
        connection.exec_driver_sql(
            "INSERT INTO posts_search (posts_search, rank) VALUES ('integrity-check', 1)"
        )


def test_each_post_of_a_batch_of_several_sources_is_indexed_under_its_own_id(
    engine: Engine, source_id: int
) -> None:
    """Ingest knows the ids of the posts it inserts without reading them back (issue 15): SQLite
    gives each new row the largest id so far plus one. Each post's index row must be its own,
    in a batch of several sources' attempts after older posts, and after an id listed twice."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's search column is generated by PostgreSQL itself")
    other = add_source(engine, "annan")
    texts = {(source_id, "post-900"): "Gammal nyhet om ärendeäldre."}
    texts |= {(source_id, f"post-{n}"): f"Ärende{n} i dag." for n in range(100)}
    texts |= {(other, f"post-{n}"): f"Ärendeannan{n} i dag." for n in range(70)}
    texts |= {(other, "post-500"): "Dubblett ärendedubbel.", (other, "post-501"): "Efter."}

    def posts_of(owner: int, *numbers: int) -> tuple[PostData, ...]:
        return tuple(post(n, None, texts[owner, f"post-{n}"]) for n in numbers)

    store(engine, source_id, *posts_of(source_id, 900))
    records = record_attempts(
        engine,
        [
            (Attempt(owner, NOW, NOW, SchedulePolicy()), CollectResult(CollectStatus.OK, posts))
            for owner, posts in ((source_id, posts_of(source_id, *range(100))),
                                 (other, posts_of(other, *range(70))))
        ],
    )  # fmt: skip
    assert [r.counts.new for r in records] == [100, 70]
    store(engine, other, *posts_of(other, 500), post(500, None, "Tvåa."), *posts_of(other, 501))

    with engine.connect() as connection:
        owners = {
            row.id: (row.source_id, row.platform_post_id)
            for row in connection.execute(
                sa.select(posts.c.id, posts.c.source_id, posts.c.platform_post_id)
            )
        }
    index = index_of(engine)
    assert len(index) == len(texts)
    for rowid, (_, body) in index.items():
        assert body == stem_text(texts[owners[rowid]]), owners[rowid]
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO posts_search (posts_search, rank) VALUES ('integrity-check', 1)"
        )


def test_a_batch_of_new_posts_beside_stored_ones_indexes_only_the_new(
    engine: Engine, source_id: int
) -> None:
    store(engine, source_id, post(1, "Första", "Text ett."), post(2, "Andra", "Text två."))
    store(
        engine, source_id, post(1, "Första", "Text ett."), post(2, "Andra rättad", "Text två."),
        post(3, "Tredje", "Text tre."), when=NOW + timedelta(hours=1),
    )  # fmt: skip

    assert sorted(found(engine, "rättad")) == ["https://example.se/2"]
    assert sorted(found(engine, "text")) == [f"https://example.se/{n}" for n in (1, 2, 3)]
    if engine.dialect.name == "sqlite":
        assert len(index_of(engine)) == 3
