"""A memory check for `omvarld export` (not a test): does an export stay in constant memory?

Generates, untimed, a SQLite database (or fills a PostgreSQL one given with --database) of
200,000 posts on 200 sources with Swedish text of ordinary length, tags, links and two
observations of counts per post. Then exports, each in a fresh child process through the real
command line, a tenth of the posts and all of them, and prints each child's peak resident set
size and the largest of them (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`). Constant memory
means the two peaks are about the same although one export is ten times the other.

    .venv/bin/python bench/export_memory.py
    .venv/bin/python bench/export_memory.py --posts 1000000 --format parquet
    .venv/bin/python bench/export_memory.py --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.db import make_engine, upgrade
from monitor.models import post_metrics, posts, sources

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
BATCH = 5_000  # rows per executemany
SOURCES = 200
WORDS = tuple(
    " ".join((
        "kommunen informerar om snöröjning vägarbete skolan förskolan vatten avlopp bygglov",
        "detaljplan kollektivtrafik busslinje biblioteket simhallen evenemang kultur idrott",
        "äldreomsorg hemtjänst räddningstjänsten brand olycka polisen trafikverket region",
        "vården vaccination budget fullmäktige beslut remiss medborgardialog",
    )).split(" ")
)  # fmt: skip


def fill(url: str, count: int) -> None:
    """Sources, `count` posts over the last 100 days, and two observations per post."""
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(48)
    with engine.begin() as connection:
        if connection.execute(sa.select(sa.func.count()).select_from(posts)).scalar_one():
            sys.exit(f"{url}: the database already holds posts; give an empty one")
        source_ids = connection.execute(
            sources.insert().returning(sources.c.id),
            [
                {"key": f"feed:kommun{n}.se/rss", "platform": "feed",
                 "url": f"https://kommun{n}.se/rss", "organisation": f"Kommun {n}",
                 "groups": ["kommuner"], "cursor": {}, "status": "ok", "active": True,
                 "enabled": True, "consecutive_failures": 0, "created_at": NOW,
                 "updated_at": NOW}
                for n in range(SOURCES)
            ],
        ).scalars().all()  # fmt: skip
    next_id = 1
    for start in range(0, count, BATCH):
        rows: list[dict[str, Any]] = []
        metrics: list[dict[str, Any]] = []
        for offset in range(min(BATCH, count - start)):
            number = start + offset
            published = NOW - timedelta(seconds=rng.randrange(100 * 86_400))
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(20, 80)))
            rows.append({
                "id": next_id, "source_id": source_ids[number % SOURCES],
                "platform_post_id": f"post-{number}", "kind": "article",
                "url": f"https://kommun.se/nyheter/{number}", "author": "Kommunikation",
                "published_at": published, "title": text[:60].capitalize(), "text": text,
                "html": f"<p>{text}</p>", "language": "sv", "tags": rng.sample(WORDS, 3),
                "links": [f"https://kommun.se/{number}"], "mentions": [], "other_mentions": 0,
                "media": [], "raw": {"guid": f"post-{number}"},
                "content_hash": f"{number:064x}", "first_seen_at": published,
                "fetched_at": published,
            })  # fmt: skip
            for hours in (1, 24):
                metrics.append({
                    "post_id": next_id, "observed_at": published + timedelta(hours=hours),
                    "views": rng.randrange(10_000), "likes": rng.randrange(100) * hours,
                    "reposts": rng.randrange(20), "replies": rng.randrange(10),
                })  # fmt: skip
            next_id += 1
        with engine.begin() as connection:
            connection.execute(posts.insert(), rows)
            connection.execute(post_metrics.insert(), metrics)
    engine.dispose()


def export_in_child(config: Path, out: Path, file_format: str, since: str | None) -> int:
    """Run the export through the command line in a child; its peak RSS in KiB."""
    code = (
        "import resource, sys\n"
        "from monitor.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " file=sys.stderr)\n"
    )
    arguments = ["--config", str(config), "export", "posts", "--format", file_format]
    arguments += ["--out", str(out)] + (["--since", since] if since else [])
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMVARLD_")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *arguments], capture_output=True, text=True, env=environment
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr)
    print(f"  {done.stdout.strip()}  [{seconds:.1f} s]")
    return int(done.stderr.split("peak_rss_kib")[-1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--format", default="csv", choices=("csv", "jsonl", "parquet"))
    parser.add_argument("--database", help="an empty database URL (default: SQLite in a temp dir)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        url = options.database or f"sqlite:///{directory / 'omvarld.db'}"
        started = time.perf_counter()
        fill(url, options.posts)
        print(f"generated {options.posts:,} posts in {time.perf_counter() - started:.0f} s")
        config = directory / "config.toml"
        config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
        tenth = (NOW - timedelta(days=10)).date().isoformat()  # posts span 100 days
        small = export_in_child(
            config, directory / f"tenth.{options.format}", options.format, tenth
        )
        full = export_in_child(config, directory / f"all.{options.format}", options.format, None)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(f"peak RSS: a tenth {small / 1024:.0f} MiB, all {full / 1024:.0f} MiB; "
              f"largest child (RUSAGE_CHILDREN) {peak / 1024:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
