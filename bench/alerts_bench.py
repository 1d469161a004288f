"""The alert matching of one churn pass, timed on its own (issue 14). Not a test.

Stores bench/feedgen.py's feeds in a fresh SQLite database (no HTTP: the posts go straight to
`ingest_posts`), churns 10 % of them as collect_bench.py does (three new entries each), then
times, in this process: reading the pass's new posts, matching them against N rules in Python
(`monitor.alerts.rules.match_posts`, the way Omvärld does it), the alternative of one full-text
query per rule on the new posts' ids (`monitor.search.search_condition`), and the whole
`run_alerts` round with its claims and deliveries to a loopback webhook, in this process, and
as `omvarld collect` runs it: in the alert process, made ready first (as a pass gives it the
time).

    .venv/bin/python bench/alerts_bench.py                  # 2,000 feeds, 50 rules
    .venv/bin/python bench/alerts_bench.py --feeds 500 --rules 200
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from alert_rules import AlertSink, rules_toml
from feedgen import Feed, FeedFactory

from collectors.text import html_to_text
from monitor.alerts.alerter import Alerter, AlertReport
from monitor.alerts.deliver import Sender
from monitor.alerts.pipeline import load_new_posts, run_alerts, warm_up
from monitor.alerts.rules import compile_rule, match_posts
from monitor.config import load_config
from monitor.db import make_engine, upgrade
from monitor.models import alert_events, posts, sources
from monitor.search import search_condition
from monitor.sources import sync_sources
from monitor.store import ingest_posts
from monitor.types import PostData

CHURN_SHARE = 0.10


def post_data(feed: Feed) -> list[PostData]:
    return [
        PostData(
            platform_post_id=entry.guid,
            kind="video" if feed.kind == "youtube" else "article",
            url=entry.link,
            author=entry.author,
            published_at=entry.published,
            title=entry.title,
            text=html_to_text(entry.html),
            html=entry.html,
        )
        for entry in feed.entries
    ]


def best_of(repeats: int, function: Callable[[], object]) -> tuple[float, object]:
    """The fastest of `repeats` runs in milliseconds, and the last answer."""
    times = []
    answer: object = None
    for _ in range(repeats):
        started = time.perf_counter()
        answer = function()
        times.append((time.perf_counter() - started) * 1000)
    return min(times), answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="profile the second round")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="omvarld-alerts-bench-"))
    sink = AlertSink()
    factory = FeedFactory(args.seed)
    feeds = [factory.feed(i) for i in range(args.feeds)]
    body = f'[database]\nurl = "sqlite:///{work / "omvarld.db"}"\n'
    for feed in feeds:
        body += (
            f'\n[[sources]]\nplatform = "feed"\nurl = "https://{feed.host}/{feed.index}.xml"\n'
            f'organisation = "{feed.organisation}"\nkey = "{feed.key}"\n'
        )
    (work / "config.toml").write_text(body + rules_toml(args.rules, sink.url), encoding="utf-8")
    config = load_config(work / "config.toml")
    engine = make_engine(config.database_url)
    upgrade(engine)
    sync_sources(engine, config, datetime.now(UTC))
    with engine.connect() as connection:
        ids = dict(connection.execute(sa.select(sources.c.key, sources.c.id)).all())

    started = time.perf_counter()
    cold = datetime.now(UTC)
    with engine.begin() as connection:
        for feed in feeds:
            ingest_posts(connection, ids[feed.key], post_data(feed), now=cold)
    print(
        f"{args.feeds:,} feeds, {sum(len(f.entries) for f in feeds):,} posts stored in"
        f" {time.perf_counter() - started:.1f} s; {args.rules} rules"
    )

    churned = random.Random(args.seed + 1).sample(feeds, round(len(feeds) * CHURN_SHARE))
    since = datetime.now(UTC)
    with engine.begin() as connection:
        for feed in churned:
            factory.churn(feed)
            ingest_posts(
                connection, ids[feed.key], post_data(feed), now=since + timedelta(seconds=1)
            )
    keys = [feed.key for feed in churned]
    now = datetime.now(UTC) + timedelta(seconds=2)
    oldest = now - timedelta(seconds=config.alerting.max_age)

    load_ms, loaded = best_of(args.repeats, lambda: load_new_posts(engine, keys, since, oldest))
    new_posts = list(loaded)  # type: ignore[call-overload]
    rules = [compile_rule(rule) for rule in config.alerts]
    compile_ms, _ = best_of(args.repeats, lambda: [compile_rule(r) for r in config.alerts])
    match_ms, matched = best_of(args.repeats, lambda: match_posts(rules, new_posts))
    hits = sum(len(found) for found in matched.values())  # type: ignore[attr-defined]

    new_ids = [post.id for post in new_posts]

    def sql_matching() -> int:
        found = 0
        with engine.connect() as connection:
            for rule in config.alerts:
                assert rule.query is not None
                query = sa.select(posts.c.id).where(
                    posts.c.id.in_(new_ids), search_condition(engine.dialect.name, rule.query)
                )
                found += len(connection.execute(query).all())
        return found

    sql_ms, sql_hits = best_of(args.repeats, sql_matching)

    warm_started = time.perf_counter()
    sender = Sender(config.digest.timezone, config.web.public_url, config.alerting.timeout)
    warm_up(config, engine)  # as the alert process does while the pass runs
    warm_ms = (time.perf_counter() - warm_started) * 1000

    def round_of_alerts() -> AlertReport:
        return run_alerts(
            config, engine, sender.send, since=since, worker="bench", collected=keys,
            with_new=keys, now=now,
        )  # fmt: skip

    round_started = time.perf_counter()
    report = round_of_alerts()
    round_ms = (time.perf_counter() - round_started) * 1000
    second_started = time.perf_counter()
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    again = round_of_alerts()
    second_ms = (time.perf_counter() - second_started) * 1000
    if args.profile:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

    # As `omvarld collect` runs it, on a database as it was before these rounds.
    with engine.begin() as connection:
        connection.execute(alert_events.delete())
    alerter = Alerter(config)
    alerter.wait_ready()
    process_started = time.perf_counter()
    in_process = alerter.run_round(
        engine, since=since, worker="bench", collected=keys, with_new=keys
    )
    process_ms = (time.perf_counter() - process_started) * 1000
    alerter.close()

    print(f"churn: {len(churned)} feeds, {len(new_posts)} new posts within max_age")
    print(f"  read the pass's new posts:            {load_ms:8.1f} ms (best of {args.repeats})")
    print(f"  compile {args.rules} rules:                  {compile_ms:8.1f} ms")
    print(f"  match in Python (stored stems):       {match_ms:8.1f} ms, {hits} matches")
    print(f"  match in SQL (one FTS query a rule):  {sql_ms:8.1f} ms, {sql_hits} matches")
    print(f"  get ready: Apprise, Babel, rules, queries (the alert process): {warm_ms:5.1f} ms")
    print(
        f"  run_alerts, first round:             {round_ms:8.1f} ms"
        f" ({report.sent} messages sent, {report.failed} failed)"
    )
    print(f"  run_alerts again (all claimed):      {second_ms:8.1f} ms ({again.sent} sent)")
    print(
        f"  the round in a ready alert process:  {process_ms:8.1f} ms"
        f" ({in_process.sent} sent, {in_process.failed} failed)"
    )
    print(f"  messages the webhook received: {sink.received}")
    sink.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
