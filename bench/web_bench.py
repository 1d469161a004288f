"""The web benchmark (`make bench-web`): a real `omvarld web` over a million posts.

Not a test. For SQLite and for PostgreSQL (OMVARLD_TEST_DATABASE_URL), over the search
benchmark's generated data (bench/search_bench.py: 1,000,000 posts from 1,000 sources, Swedish
words with Zipf frequencies, counts on the social posts), it starts `omvarld web` as a process
of its own with one worker and measures what issue 12 sets bars for:

- the search page, one client: a mix of rare, common and very common words, a prefix, a phrase,
  OR, filters and both sort orders, each query RUNS times after one warm-up; p95 ≤ 150 ms;
- the home page (this week, and a full week of the data), one client; p95 ≤ 300 ms;
- 50 clients at once on the search page for 30 s (aiohttp in this process): 0 errors; the
  requests per second and the p95 are reported;
- the worker's peak resident memory (VmHWM in /proc/PID/status) over all of it; ≤ 250 MB.

It prints a table with each figure, its bar and pass/fail, and exits 1 if any bar is missed.

Generating the data takes minutes, so it is kept: SQLite as bench/.data/web-s{seed}-{posts}.db,
PostgreSQL as the database omvarld_webbench_s{seed}_{posts} on the test server, each reused while it
holds the expected number of posts (--fresh builds them again). bench/.data is ignored by git.

    make bench-web
    .venv/bin/python bench/web_bench.py --posts 100000 --duration 10   # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_bench import generate_postgresql, generate_sqlite, percentile

from monitor.db import make_engine, upgrade
from tests.smtpserver import free_port
from tests.webserver import serve

DATA = Path(__file__).resolve().parent / ".data"
RUNS = 20
SEARCH_BAR_MS = 150.0
HOME_BAR_MS = 300.0
RSS_BAR_MB = 250.0
# The search page as analysts use it: rare and common words, a prefix, a phrase, OR, filters.
SEARCHES = [
    urlencode(query)
    for query in (
        {"q": "vattenläcka"},
        {"q": "kommun"},
        {"q": "invånare"},
        {"q": "skog*"},
        {"q": "översvämn*", "since": "2026-11-01"},
        {"q": "kommun", "platform": "x"},
        {"q": "vattenläcka", "since": "2026-11-01", "until": "2026-11-30"},
        {"q": '"ny skola"', "group": "krisberedskap"},
        {"q": "översvämning OR skogsbrand", "min_engagement": "20"},
        {"q": "budget fullmäktige"},
        {"q": "kommun", "sort": "relevance"},
        {"q": "budget fullmäktige", "sort": "relevance", "page": "2"},
        {"q": "invånare", "kind": "post", "page": "3"},
    )
]
HOMES = ("/", "/?week=2026-W47")


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    bar: str
    passed: bool | None  # None: reported, no bar


def count_posts(url: str) -> int | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM posts")).scalar_one())
    except sa.exc.DBAPIError:  # no such database or table yet
        return None
    finally:
        engine.dispose()


def prepare_sqlite(seed: int, sources: int, posts: int, fresh: bool) -> str:
    """The cached SQLite database of `posts` posts: its URL, generated when missing."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"web-s{seed}-{posts}.db"
    url = f"sqlite:///{path}"
    if path.exists() and not fresh and count_posts(url) == posts:
        print(f"SQLite: reusing {path}")
        return url
    for stale in DATA.glob(f"{path.name}*"):
        stale.unlink()
    engine = make_engine(url)
    upgrade(engine)
    began = time.perf_counter()
    generate_sqlite(engine, seed, sources, posts)
    engine.dispose()
    print(f"SQLite: {posts:,} posts generated in {time.perf_counter() - began:.0f} s ({path})")
    return url


def prepare_postgresql(base: str, seed: int, sources: int, posts: int, fresh: bool) -> str:
    """The kept PostgreSQL database of `posts` posts, beside the test database on the same
    server: its URL, generated when missing. A database of its own rather than a schema: the
    URL then needs no search_path, and the test database's cleanups never touch it."""
    server = sa.make_url(base)
    name = f"omvarld_webbench_s{seed}_{posts}"
    url = server.set(database=name).render_as_string(hide_password=False)
    if not fresh and count_posts(url) == posts:
        print(f"PostgreSQL: reusing database {name}")
        return url
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")  # CREATE DATABASE needs it
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    seconds = generate_postgresql(engine, seed, sources, posts)
    engine.dispose()
    print(f"PostgreSQL: {posts:,} posts loaded in {seconds:.0f} s (database {name})")
    return url


def get(url: str) -> float:
    """Milliseconds to fetch `url` whole; HTTPError unless it answers 200."""
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return (time.perf_counter() - began) * 1000


def time_pages(base_url: str, paths: list[str], runs: int) -> tuple[list[float], list[str]]:
    """Each path once to warm up, then `runs` times: every timing in milliseconds, and a line
    for each path that did not answer 200 (left out of the timings)."""
    timings, failures = [], []
    for path in paths:
        try:
            get(base_url + path)
            one = [get(base_url + path) for _ in range(runs)]
        except urllib.error.HTTPError as error:
            failures.append(f"{path}: HTTP {error.code}")
            print(f"    {path[:70]:70} HTTP {error.code}: left out")
            continue
        timings += one
        p50, p95 = statistics.median(one), percentile(one, 0.95)
        print(f"    {path[:70]:70} p50 {p50:7.1f}  p95 {p95:7.1f} ms")
    return timings, failures


async def load(
    base_url: str, paths: list[str], clients: int, seconds: float
) -> tuple[list[float], Counter[str], float]:
    """`clients` tasks each fetching the paths in turn for `seconds`: the timings of the 200
    answers in ms, the other outcomes counted ("HTTP 503", "ServerDisconnectedError"), and the
    seconds it took. Bounded: every task stops at the deadline."""
    timings: list[float] = []
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    began = time.perf_counter()
    deadline = began + seconds

    async def client(number: int, session: aiohttp.ClientSession) -> None:
        index = number
        while time.perf_counter() < deadline:
            path = paths[index % len(paths)]
            index += 1
            start = time.perf_counter()
            try:
                async with session.get(base_url + path) as response:
                    await response.read()
                    if response.status != 200:
                        errors[f"HTTP {response.status}"] += 1
                        continue
            except (TimeoutError, aiohttp.ClientError) as error:
                errors[type(error).__name__] += 1
                continue
            timings.append((time.perf_counter() - start) * 1000)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(n, session) for n in range(clients)))
    return timings, errors, time.perf_counter() - began


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


@contextmanager
def web_server(database_url: str) -> Iterator[tuple[int, str, Path]]:
    """`omvarld web` over `database_url`: its pid, base URL and log."""
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "config.toml"
        config.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "OMVARLD_DATABASE_URL"}
        log = Path(directory) / "web.log"
        with serve(config, env, free_port(), log) as (process, base_url):
            yield process.pid, base_url, log


def logged_errors(log: Path) -> list[str]:
    """The distinct ERROR lines the server logged, without their time stamps."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return sorted({line.split(" ERROR ", 1)[1][:160] for line in lines if " ERROR " in line})


def measure(label: str, database_url: str, args: argparse.Namespace) -> list[Figure]:
    print(f"\n{label}: omvarld web, one worker")
    figures = []
    with web_server(database_url) as (pid, base_url, log):
        searches = [f"/search?{query}" for query in SEARCHES]
        print("  search page, one client:")
        timings, failures = time_pages(base_url, searches, args.runs)
        p95 = percentile(timings, 0.95) if timings else float("nan")
        figures += [
            Figure(f"{label}: search p95, one client", p95, "ms", f"≤ {SEARCH_BAR_MS:.0f}",
                   p95 <= SEARCH_BAR_MS),
            Figure(f"{label}: search errors, one client", len(failures), "", "0", not failures),
        ]  # fmt: skip
        print("  home page, one client:")
        for home in HOMES:
            timings, failures = time_pages(base_url, [home], args.runs)
            p95 = percentile(timings, 0.95) if timings else float("nan")
            figures.append(Figure(f"{label}: home {home} p95", p95, "ms", f"≤ {HOME_BAR_MS:.0f}",
                                  p95 <= HOME_BAR_MS and not failures))  # fmt: skip
        print(f"  search page, {args.clients} clients for {args.duration:.0f} s ...")
        loaded, errors, elapsed = asyncio.run(load(base_url, searches, args.clients, args.duration))
        failed = sum(errors.values())
        if errors:
            print("    not answered 200: " + ", ".join(f"{n} × {e}" for e, n in errors.items()))
            for line in logged_errors(log):
                print(f"    server logged: {line}")
        figures += [
            Figure(f"{label}: {args.clients} clients, errors", failed, "", "0", failed == 0),
            Figure(f"{label}: {args.clients} clients, requests/s", len(loaded) / elapsed, "/s",
                   "", None),
            Figure(f"{label}: {args.clients} clients, p95",
                   percentile(loaded, 0.95) if loaded else float("nan"), "ms", "", None),
        ]  # fmt: skip
        rss = peak_rss_mb(pid)
        figures.append(Figure(f"{label}: worker peak RSS", rss, "MB", f"≤ {RSS_BAR_MB:.0f}",
                              rss <= RSS_BAR_MB))  # fmt: skip
    return figures


def print_table(figures: list[Figure]) -> None:
    print(f"\n{'figure':48} {'value':>12} {'bar':>8}  result")
    for figure in figures:
        value = f"{figure.value:,.1f} {figure.unit}".strip()
        result = {True: "pass", False: "FAIL", None: ""}[figure.passed]
        print(f"{figure.name:48} {value:>12} {figure.bar:>8}  {result}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the load run")
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="generate the data again")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()},"
          f" SQLite {sqlite3.sqlite_version}")  # fmt: skip
    figures: list[Figure] = []
    if "sqlite" in args.databases:
        url = prepare_sqlite(args.seed, args.sources, args.posts, args.fresh)
        figures += measure("SQLite", url, args)
    if "postgresql" in args.databases:
        base = os.environ.get("OMVARLD_TEST_DATABASE_URL")
        if base:
            url = prepare_postgresql(base, args.seed, args.sources, args.posts, args.fresh)
            figures += measure("PostgreSQL", url, args)
        else:
            print("PostgreSQL: skipped (set OMVARLD_TEST_DATABASE_URL)")
    print_table(figures)
    return 1 if any(f.passed is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
