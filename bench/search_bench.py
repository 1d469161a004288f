"""The search benchmark: `omvarld posts search` on a million posts, against a LIKE scan.

Not a test. One run generates, untimed, a SQLite database (made with `monitor.db.upgrade`, so the
search index's triggers are active and fill the index as rows arrive: the load rate printed is
ingest with index maintenance, in bulk) of 1,000,000 posts from 1,000 sources of ~300
organisations on seven platforms, each source in one or two groups. Swedish text from the digest
benchmark's vocabulary, inflected (kommunen, kommuner, kommunens …), words drawn with Zipf
frequencies so that a few are common and most are rare; counts for the social posts. Then it
times typical searches with a filter, each run 20 times through `monitor.search.search_posts`
(what the command calls) newest first and by relevance, p50 and p95; issue 6's bar: p95 ≤ 100 ms
on SQLite; issue 12's: newest first never slower than the peer. The peer is what an analyst does
without us: `LIKE '%word%'` over title and text with the same filter, newest first, stopping at
the newest 20.

The same searches run on PostgreSQL (OMVARLD_TEST_DATABASE_URL, a schema of its own, dropped
after) over a smaller generated set (--pg-posts), loaded with COPY; the ingest cost of the index
is measured through `monitor.store.record_attempt` with and without the index's triggers; and
`omvarld export posts --format csv` runs as a subprocess for its peak RSS (bar: ≤ 200 MB).

    .venv/bin/python bench/search_bench.py               # builds /tmp/omvarld-search-1m.db
    .venv/bin/python bench/search_bench.py --database /tmp/omvarld-search-1m.db   # reuses it
    .venv/bin/python bench/search_bench.py --posts 100000 --database /tmp/s100k.db --pg-posts 0
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from digest_bench import FILLER, PLATFORM_SHARES, WORDS, make_organisations
from sqlalchemy.engine import Engine

from monitor.db import make_engine, upgrade
from monitor.filters import PostFilter
from monitor.models import sources
from monitor.schedule import SchedulePolicy
from monitor.search import SORTS, SearchHit, Sort, search_posts
from monitor.store import Attempt, record_attempt
from monitor.types import CollectResult, CollectStatus, PostData, SourceState

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
DAYS = 365  # posts spread over a year
BATCH = 5_000  # rows per executemany
RUNS = 20
SUFFIXES = ("", "", "", "en", "er", "erna", "ens", "ar", "arna", "et", "s")
# Rare on purpose: about one post in 2,000 mentions one of these.
RARE = ("vattenläcka", "skogsbrand", "ishockeyhall", "läckage", "ras", "jordskred")
GROUP_EXTRA = ("krisberedskap", "sörmland", "skåne", "norrland")


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    chosen: PostFilter
    like: str  # the peer: the same question as a LIKE scan (WHERE clause over p and s)


def cases() -> list[Case]:
    month = NOW - timedelta(days=30)
    return [
        Case("common word + --platform x", "kommun", PostFilter(platforms=("x",)),
             "(p.title LIKE '%kommun%' OR p.text LIKE '%kommun%') AND s.platform = 'x'"),
        Case("rare word + --since 30d", "vattenläcka", PostFilter(since=month),
             "(p.title LIKE '%vattenläck%' OR p.text LIKE '%vattenläck%')"
             f" AND p.published_at >= '{month:%Y-%m-%d %H:%M:%S}'"),
        Case('phrase + --group krisberedskap', '"ny skola"', PostFilter(groups=("krisberedskap",)),
             "(p.title LIKE '%ny skola%' OR p.text LIKE '%ny skola%')"
             " AND EXISTS (SELECT 1 FROM json_each(s.groups) WHERE value = 'krisberedskap')"),
        Case("OR + --min-engagement 20", "översvämning OR skogsbrand",
             PostFilter(min_engagement=20),
             "(p.title LIKE '%översvämning%' OR p.text LIKE '%översvämning%'"
             " OR p.title LIKE '%skogsbrand%' OR p.text LIKE '%skogsbrand%')"
             " AND (SELECT coalesce(likes,0)+coalesce(reposts,0)+coalesce(replies,0)"
             "+coalesce(quotes,0)+coalesce(reactions,0) FROM post_metrics m"
             " WHERE m.post_id = p.id ORDER BY m.id DESC LIMIT 1) >= 20"),
        # Not typical: the most frequent word of all, in about half the posts. FTS5 scores every
        # match (about 1 µs each) before it can say which twenty rank first.
        Case("very common word + --platform x", "invånare", PostFilter(platforms=("x",)),
             "(p.title LIKE '%invånare%' OR p.text LIKE '%invånare%') AND s.platform = 'x'"),
        Case("two words, no filter", "budget fullmäktige", PostFilter(),
             "(p.title LIKE '%budget%' OR p.text LIKE '%budget%')"
             " AND (p.title LIKE '%fullmäktige%' OR p.text LIKE '%fullmäktige%')"),
    ]  # fmt: skip


# Where the searched words sit among all word forms by frequency (1: the most frequent). Real
# posts draw on tens of thousands of words: a topic word like "översvämning" is in well under
# one post in a hundred, "kommun" in a few. (A vocabulary of the digest benchmark's 1,000 forms
# alone put every word in more than one post in ten, which no real word but a stop word is.)
RANKS = {
    "invånare": 1, "kommunen": 80, "kommun": 150, "kommuner": 250, "budget": 60,
    "fullmäktige": 90, "översvämning": 400, "översvämningar": 700, "skola": 120,
}  # fmt: skip
TAIL_WORDS = 40_000  # made-up words after the real ones: the long tail of real text
SYLLABLES = (
    "an", "be", "da", "fö", "gr", "hå", "ka", "li", "mo", "nä", "or", "på", "ru",
    "sk", "st", "tr", "ul", "va", "äl", "ör", "ing", "ning", "het", "lig", "else",
)  # fmt: skip


class Vocabulary:
    """Inflected Swedish words and a long tail of made-up ones, with Zipf frequencies: rank r is
    drawn with weight 1/r; the searched words at the ranks in RANKS."""

    def __init__(self, rng: random.Random) -> None:
        forms = [w + s for w in WORDS for s in SUFFIXES if not (w.endswith("en") and s)]
        tail = {"".join(rng.choices(SYLLABLES, k=rng.randint(3, 5))) for _ in range(TAIL_WORDS)}
        forms = list(dict.fromkeys([*forms, *sorted(tail - set(forms))]))
        forms = [f for f in forms if f not in RANKS and f != "ny"]
        rng.shuffle(forms)
        for word, rank in sorted(RANKS.items(), key=lambda item: item[1]):
            forms.insert(rank - 1, word)
        self.forms = forms
        total = 0.0
        self.cumulative = []
        for rank in range(1, len(forms) + 1):
            total += 1 / rank
            self.cumulative.append(total)
        self.rng = rng

    def sentence(self, words: int) -> str:
        content = self.rng.choices(self.forms, cum_weights=self.cumulative, k=words)
        chosen = [w if self.rng.random() < 0.6 else self.rng.choice(FILLER) for w in content]
        if self.rng.random() < 0.002:  # about one post in a hundred
            chosen.insert(self.rng.randrange(len(chosen)), "ny skola")
        if self.rng.random() < 0.0005 * len(RARE):
            chosen.insert(self.rng.randrange(len(chosen)), self.rng.choice(RARE))
        return " ".join(chosen).capitalize() + "."

    def text(self, length: int) -> str:
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < length:
            parts.append(self.sentence(self.rng.randint(6, 14)))
        return " ".join(parts)


def source_rows(rng: random.Random, count: int) -> list[dict[str, Any]]:
    organisations = make_organisations(rng)
    platforms, shares = list(PLATFORM_SHARES), list(PLATFORM_SHARES.values())
    rows = []
    for n in range(count):
        name, group = organisations[n % len(organisations)]
        chosen = "feed" if n < len(organisations) else rng.choices(platforms, shares)[0]
        groups = [group] + ([rng.choice(GROUP_EXTRA)] if rng.random() < 0.3 else [])
        rows.append({
            "id": n + 1, "key": f"src-{n + 1}-{chosen}", "platform": chosen, "name": name,
            "url": f"https://org{n + 1}.example.se/", "organisation": name, "groups": groups,
            "active": True, "enabled": True, "cursor": {}, "status": "ok",
            "consecutive_failures": 0, "created_at": NOW, "updated_at": NOW,
        })  # fmt: skip
    return rows


def post_rows(
    rng: random.Random, vocabulary: Vocabulary, sources_: list[dict[str, Any]], count: int
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Batches of (post rows, metric rows) as plain tuples, ids from 1."""
    weights = [rng.lognormvariate(0, 1.0) for _ in sources_]
    chosen = rng.choices(range(len(sources_)), weights, k=count)
    posts_batch: list[tuple[Any, ...]] = []
    metrics_batch: list[tuple[Any, ...]] = []
    for post_id, index in enumerate(chosen, start=1):
        source = sources_[index]
        published = NOW - timedelta(seconds=rng.random() * DAYS * 86400)
        stamp = published.strftime("%Y-%m-%d %H:%M:%S.%f")
        if source["platform"] == "feed":
            kind = "article"
            title: str | None = vocabulary.sentence(rng.randint(3, 8)).rstrip(".")
            text = vocabulary.text(rng.randint(200, 700))
        else:
            kind, title, text = "post", None, vocabulary.text(rng.randint(60, 260))
            likes = int(rng.paretovariate(1.2)) - 1
            metrics_batch.append(
                (post_id, stamp, likes * 10, likes, likes // 3, likes // 5, 0, likes // 2)
            )
        posts_batch.append((
            post_id, source["id"], f"p{post_id}", kind, f"https://example.se/{post_id}", stamp,
            title, text, "[]", "[]", "[]", 0, "[]", f"h{post_id}", stamp, stamp,
        ))  # fmt: skip
        if len(posts_batch) == BATCH:
            yield posts_batch, metrics_batch
            posts_batch, metrics_batch = [], []
    if posts_batch:
        yield posts_batch, metrics_batch


POST_COLUMNS = (
    "id, source_id, platform_post_id, kind, url, published_at, title, text, tags, links,"
    " mentions, other_mentions, media, content_hash, fetched_at, first_seen_at"
)
METRIC_COLUMNS = "post_id, observed_at, views, likes, reposts, replies, quotes, reactions"


def generate_sqlite(engine: Engine, seed: int, source_count: int, post_count: int) -> float:
    """Fill the database with triggers active; returns seconds spent inserting posts."""
    rng = random.Random(seed)
    rows = source_rows(rng, source_count)
    with engine.begin() as connection:
        connection.execute(sources.insert(), rows)
    vocabulary = Vocabulary(rng)
    raw = engine.raw_connection()  # has omvarld_stems, registered by monitor.db on connect
    inserting = 0.0
    cursor = raw.cursor()
    for done, (post_batch, metric_batch) in enumerate(post_rows(rng, vocabulary, rows, post_count)):
        began = time.perf_counter()
        cursor.executemany(f"INSERT INTO posts ({POST_COLUMNS}) VALUES ({','.join('?' * 16)})",
                           post_batch)  # fmt: skip
        inserting += time.perf_counter() - began
        cursor.executemany(
            f"INSERT INTO post_metrics ({METRIC_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", metric_batch
        )
        raw.commit()
        if done % 40 == 0:
            print(f"  {(done + 1) * BATCH:,} posts", end="\r", flush=True)
    cursor.execute("ANALYZE")
    raw.commit()
    raw.close()
    return inserting


def generate_postgresql(engine: Engine, seed: int, source_count: int, post_count: int) -> float:
    """Fill the schema with COPY (posts.search is generated as rows arrive); returns seconds."""
    rng = random.Random(seed)
    rows = source_rows(rng, source_count)
    with engine.begin() as connection:
        connection.execute(sources.insert(), rows)
    vocabulary = Vocabulary(rng)
    raw: Any = engine.raw_connection()
    began = time.perf_counter()
    with raw.cursor() as cursor:
        for post_batch, metric_batch in post_rows(rng, vocabulary, rows, post_count):
            with cursor.copy(f"COPY posts ({POST_COLUMNS}) FROM STDIN") as copy:
                for row in post_batch:
                    copy.write_row(row)
            with cursor.copy(f"COPY post_metrics ({METRIC_COLUMNS}) FROM STDIN") as copy:
                for row in metric_batch:
                    copy.write_row(row)
        cursor.execute("ANALYZE")
    raw.commit()
    raw.close()
    return time.perf_counter() - began


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def time_runs(call: Callable[[], object], runs: int) -> list[float]:
    call()  # warm the page cache and the statement cache: analysts search a warm database
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def time_searches(
    engine: Engine, runs: int, label: str, sort: Sort = "newest"
) -> dict[str, list[float]]:
    results = {}
    for case in cases():

        def search(c: Case = case) -> list[SearchHit]:
            return search_posts(engine, c.query, c.chosen, 20, sort=sort)

        hits = search()
        timings = time_runs(search, runs)
        results[case.name] = timings
        print(
            f"  {label:10} {sort:9} {case.name:34} p50 {statistics.median(timings):7.1f} ms"
            f"  p95 {percentile(timings, 0.95):7.1f} ms  ({len(hits)} hits shown)"
        )
    return results


def time_like_peer(path: Path, runs: int) -> dict[str, list[float]]:
    """The same questions as LIKE scans, newest first, on a plain sqlite3 connection."""
    connection = sqlite3.connect(path)
    results = {}
    for case in cases():
        sql = (
            "SELECT p.id FROM posts p JOIN sources s ON s.id = p.source_id"
            f" WHERE p.erased_at IS NULL AND {case.like} ORDER BY p.published_at DESC LIMIT 20"
        )
        timings = time_runs(lambda q=sql: connection.execute(q).fetchall(), runs)
        results[case.name] = timings
        print(f"  LIKE scan  {case.name:34} p50 {statistics.median(timings):7.1f} ms")
    connection.close()
    return results


def measure_ingest_cost(posts_per_source: int = 100, source_count: int = 400) -> None:
    """µs per post that the search index adds to ingest (`record_attempt`), SQLite: the same
    posts stored with the index's triggers and without them, best of three each."""
    rng = random.Random(7)
    vocabulary = Vocabulary(rng)
    batches = [
        tuple(
            PostData(
                platform_post_id=f"{s}-{n}", kind="article", url=f"https://example.se/{s}/{n}",
                published_at=NOW - timedelta(minutes=n), title=vocabulary.sentence(6),
                text=vocabulary.text(rng.randint(200, 700)),
            )
            for n in range(posts_per_source)
        )
        for s in range(source_count)
    ]  # fmt: skip
    total = posts_per_source * source_count
    best: dict[bool, float] = {}
    for _ in range(3):
        for indexed in (True, False):
            with tempfile.TemporaryDirectory() as directory:
                engine = make_engine(f"sqlite:///{directory}/ingest.db")
                upgrade(engine)
                with engine.begin() as connection:
                    if not indexed:
                        for name in ("insert", "update", "delete"):
                            connection.exec_driver_sql(f"DROP TRIGGER posts_search_{name}")
                    connection.execute(sources.insert(), source_rows(rng, source_count))
                began = time.perf_counter()
                for number, items in enumerate(batches, start=1):
                    result = CollectResult(CollectStatus.OK, posts=items, state=SourceState())
                    record_attempt(engine, Attempt(number, NOW, NOW, SchedulePolicy()), result)
                seconds = time.perf_counter() - began
                best[indexed] = min(best.get(indexed, seconds), seconds)
                engine.dispose()
    per_post = {k: v / total * 1e6 for k, v in best.items()}
    print(
        f"ingest of {total:,} feed posts (record_attempt, SQLite): {per_post[False]:.0f} µs/post"
        f" without the index, {per_post[True]:.0f} µs/post with it:"
        f" +{per_post[True] - per_post[False]:.0f} µs/post"
    )


def measure_export_rss(database: Path) -> None:
    """Peak RSS of `omvarld export posts --format csv` over the whole database, as a process."""
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "config.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{database}"\n', encoding="utf-8")
        out = Path(directory) / "posts.csv"
        began = time.perf_counter()
        command = [sys.executable, "-m", "monitor", "--config", str(config), "export", "posts",
                   "--format", "csv", "--out", str(out)]  # fmt: skip
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - began
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if finished.returncode != 0:
            print(f"export failed ({finished.returncode}): {finished.stderr.strip()[:300]}")
            return
        size = out.stat().st_size / 1e6
        print(f"export posts --format csv: {size:,.0f} MB in {seconds:.1f} s,"
              f" peak RSS {peak_mb:.0f} MB (bar ≤ 200 MB)")  # fmt: skip


def run_postgresql(args: argparse.Namespace) -> None:
    base = os.environ.get("OMVARLD_TEST_DATABASE_URL")
    if not base or args.pg_posts <= 0:
        print("PostgreSQL: skipped (set OMVARLD_TEST_DATABASE_URL, --pg-posts > 0)")
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    engine = make_engine(f"{base}{separator}options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        seconds = generate_postgresql(engine, args.seed, args.sources, args.pg_posts)
        print(f"PostgreSQL: {args.pg_posts:,} posts loaded with COPY in {seconds:.1f} s"
              f" ({args.pg_posts / seconds:,.0f} posts/s, tsvector generated)")  # fmt: skip
        for sort in SORTS:
            time_searches(engine, args.runs, "postgresql", sort)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--pg-posts", type=int, default=1_000_000, help="0: skip PostgreSQL")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--database", type=Path, default=Path("/tmp/omvarld-search-1m.db"),
        help="the SQLite file: reused when it exists, built otherwise",
    )  # fmt: skip
    parser.add_argument("--skip", nargs="*", default=[], choices=["ingest", "export", "like"])
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()},"
          f" SQLite {sqlite3.sqlite_version}")  # fmt: skip

    engine = make_engine(f"sqlite:///{args.database}")
    if not args.database.exists():
        upgrade(engine)
        seconds = generate_sqlite(engine, args.seed, args.sources, args.posts)
        print(f"SQLite: {args.posts:,} posts inserted with the index's triggers in"
              f" {seconds:.1f} s ({args.posts / seconds:,.0f} posts/s)")  # fmt: skip
    size = args.database.stat().st_size / 1e6
    print(f"SQLite file {args.database}: {size:,.0f} MB")
    ours = {sort: time_searches(engine, args.runs, "sqlite", sort) for sort in SORTS}
    if "like" not in args.skip:
        peer = time_like_peer(args.database, max(5, args.runs // 4))
        for name in ours["newest"]:
            like = statistics.median(peer[name])
            ratios = "  ".join(
                f"{sort} {like / statistics.median(ours[sort][name]):,.1f}×" for sort in SORTS
            )
            print(f"  {name:36} LIKE scan / search, p50: {ratios}")
    engine.dispose()
    if "ingest" not in args.skip:
        measure_ingest_cost()
    if "export" not in args.skip:
        measure_export_rss(args.database)
    run_postgresql(args)


if __name__ == "__main__":
    main()
