"""The digest benchmark: every recipient's weekly digest built and rendered from a large database.

Not a test. One run generates, untimed, a fresh SQLite database (made with `monitor.db.upgrade`)
holding 1,000 sources of ~300 organisations (kommuner, regioner, myndigheter) on every platform,
100,000 posts in ISO week 2026-W48 and 80,000 posts in each of the seven weeks before (the
baseline's four and the charts' three more), Swedish text with hashtags and links, counts for
the social posts (one observation for a baseline post, two for a post of the week, one of them
after the digest is made), a collection run every six hours per source during the week, some
failed, and the social accounts' follower counts (`source_metrics`, a change every three days
over nine weeks). Then it times building (as `digest send` does: the week's data loaded once
by `digest.load`, then composed per recipient) and rendering (`digest.render.render_digest`) the
digests of 50 recipients following varied groups, organisations, platforms and keywords. Issue
5's bar: all of it in ≤ 10 s.

    .venv/bin/python bench/digest_bench.py
    .venv/bin/python bench/digest_bench.py --per-call   # also time build_digest per recipient
    .venv/bin/python bench/digest_bench.py --profile /tmp/digest.prof
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.compose import compose_digest
from digest.load import build_digest, load_week_data
from digest.model import Recipient, Week
from digest.render import render_digest
from monitor.config import Config
from monitor.db import make_engine, upgrade
from monitor.models import collection_runs, post_metrics, posts, source_metrics, sources
from monitor.terms import stored_phrases, stored_terms

WEEK = Week(2026, 48)
BASELINE_WEEKS = 4
CHART_WEEKS = 8  # the digest's charts: the week and seven before
FOLLOWER_EVERY = timedelta(days=3)  # how often a social account's follower count changed
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 07:00 in Stockholm, when digests go out
BATCH = 5_000  # rows per executemany: large enough to amortise, small enough for SQLite's memory
# Share of sources per platform: news feeds dominate, then the big social platforms.
PLATFORM_SHARES = {
    "feed": 0.35,
    "x": 0.18,
    "facebook": 0.15,
    "youtube": 0.08,
    "mastodon": 0.09,
    "bluesky": 0.09,
    "flickr": 0.06,
}
GROUP_SIZES = {"kommuner": 200, "regioner": 21, "myndigheter": 79}
PLACES = (
    "Katrineholm", "Nyköping", "Eskilstuna", "Västerås", "Örebro", "Uppsala", "Linköping",
    "Norrköping", "Jönköping", "Växjö", "Kalmar", "Karlstad", "Falun", "Gävle", "Sundsvall",
    "Östersund", "Umeå", "Luleå", "Kiruna", "Visby", "Halmstad", "Borås", "Trollhättan", "Lund",
    "Malmö", "Helsingborg", "Kristianstad", "Karlskrona", "Motala", "Mjölby", "Skövde", "Lidköping",
)  # fmt: skip
AGENCIES = (
    "Polisen", "Skatteverket", "Försäkringskassan", "Trafikverket", "Länsstyrelsen",
    "Folkhälsomyndigheten", "Socialstyrelsen", "Skolverket", "Naturvårdsverket", "SMHI",
    "Arbetsförmedlingen", "Kriminalvården", "Migrationsverket", "Livsmedelsverket", "MSB",
    "Boverket", "Energimyndigheten", "Lantmäteriet", "Tullverket", "Kustbevakningen",
)  # fmt: skip
WORDS = (
    "kommunen", "regionen", "invånare", "förskola", "skolan", "omsorgen", "budget", "beslut",
    "fullmäktige", "nämnden", "bygglov", "detaljplan", "trafik", "vägarbete", "snöröjning",
    "vinterväglag", "halka", "kollektivtrafik", "bussar", "cykelbana", "biblioteket", "kultur",
    "konsert", "utställning", "idrott", "badhuset", "simhall", "fritidsgård", "ungdomar",
    "äldreboende", "hemtjänst", "vården", "vårdcentral", "vaccination", "influensa", "sjukhuset",
    "akutmottagning", "ambulans", "räddningstjänsten", "brand", "olycka", "polisen", "brott",
    "trygghet", "valet", "demokrati", "medborgardialog", "enkät", "remiss", "samråd", "miljö",
    "klimat", "energi", "solceller", "avfall", "återvinning", "vatten", "avlopp", "dricksvatten",
    "bostäder", "hyresrätter", "näringsliv", "företag", "arbetsmarknad", "praktik", "sommarjobb",
    "studenter", "utbildning", "lärare", "rektor", "elever", "betyg", "skolmat", "lunch",
    "parkering", "gator", "belysning", "park", "lekplats", "julmarknad", "advent", "lucia",
    "skatt", "deklaration", "pension", "bidrag", "ansökan", "tillstånd", "krisberedskap",
    "elavbrott", "storm", "översvämning", "värmebölja", "pollen", "luftkvalitet", "natur",
    "friluftsliv", "vandringsled", "fiske", "jakt", "djur", "veterinär", "livsmedel", "kontroll",
    "inspektion", "granskning", "rapport", "statistik", "prognos", "analys", "digitalisering",
    "e-tjänst", "webbplats", "öppettider", "kundtjänst", "information", "nyheter", "pressträff",
    "presskonferens", "intervju", "rekrytering", "lediga", "jobb", "chef", "medarbetare",
)  # fmt: skip
FILLER = (
    "och", "i", "på", "för", "med", "att", "vi", "nu", "det", "en", "ett", "som", "till", "om",
    "har", "kan", "ska", "inte", "från", "efter", "under", "även", "mer", "alla", "här",
)  # fmt: skip
HASHTAGS = tuple(
    [w.replace("-", "") for w in WORDS[:60]] + ["svpol", "krisinfo", "jul2026", "valet2026"]
)
DOMAINS = (
    "www.krisinformation.se", "www.trafikverket.se", "www.smhi.se", "www.1177.se",
    "www.regeringen.se", "www.scb.se", "www.svt.se", "www.dn.se", "www.sr.se", "www.polisen.se",
    "www.skatteverket.se", "www.msb.se", "www.folkhalsomyndigheten.se", "youtu.be",
)  # fmt: skip
SOCIAL_HOSTS = {
    "x": "https://x.com/{handle}/status/{n}",
    "facebook": "https://www.facebook.com/{handle}/posts/{n}",
    "youtube": "https://www.youtube.com/watch?v={n}",
    "mastodon": "https://mastodon.nu/@{handle}/{n}",
    "bluesky": "https://bsky.app/profile/{handle}.bsky.social/post/{n}",
    "flickr": "https://www.flickr.com/photos/{handle}/{n}",
}


def make_organisations(rng: random.Random) -> list[tuple[str, str]]:
    """(name, group) for ~300 organisations."""
    result = []
    for group, size in GROUP_SIZES.items():
        for n in range(size):
            if group == "kommuner":
                name = f"{PLACES[n % len(PLACES)]}{'' if n < len(PLACES) else f' {n}'} kommun"
            elif group == "regioner":
                name = f"Region {PLACES[n % len(PLACES)]}"
            else:
                base = AGENCIES[n % len(AGENCIES)]
                name = base if n < len(AGENCIES) else f"{base} {PLACES[n % len(PLACES)]}"
            result.append((name, group))
    rng.shuffle(result)
    return result


def make_sentence(rng: random.Random, words: int) -> str:
    chosen = [
        rng.choice(WORDS) if rng.random() < 0.55 else rng.choice(FILLER) for _ in range(words)
    ]
    return " ".join(chosen).capitalize() + "."


def make_text(rng: random.Random, length: int) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < length:
        parts.append(make_sentence(rng, rng.randint(6, 14)))
    return " ".join(parts)


def generate(
    engine: Engine, rng: random.Random, source_count: int, week_posts: int, base_posts: int
) -> dict[str, int]:
    """Fill the database; returns the number of rows per table."""
    organisations = make_organisations(rng)
    platforms = list(PLATFORM_SHARES)
    shares = list(PLATFORM_SHARES.values())
    created = NOW - timedelta(days=400)
    source_rows = []
    for n in range(source_count):
        name, group = organisations[n % len(organisations)]
        # Every organisation has a feed; the rest of its sources spread over the platforms.
        chosen = "feed" if n < len(organisations) else rng.choices(platforms, shares)[0]
        groups = [group] + (["krisberedskap"] if rng.random() < 0.1 else [])
        source_rows.append({
            "id": n + 1, "key": f"src-{n + 1}-{chosen}", "platform": chosen, "name": name,
            "handle": f"org{n + 1}", "url": f"https://org{n + 1}.example.se/", "organisation": name,
            "groups": groups, "active": rng.random() > 0.02, "enabled": True, "cursor": {},
            "status": "ok", "consecutive_failures": 0, "created_at": created, "updated_at": created,
        })  # fmt: skip
    # How much each source posts: a long tail, as in reality (a few very active accounts).
    weights = [rng.lognormvariate(0, 1.0) for _ in source_rows]
    # 2 % of sources are new this week, 3 % went silent long ago.
    new = set(rng.sample(range(source_count), source_count // 50))
    silent = set(rng.sample(sorted(set(range(source_count)) - new), source_count * 3 // 100))
    counts = {"sources": len(source_rows), "posts": 0, "post_metrics": 0, "collection_runs": 0}
    with engine.begin() as connection:
        connection.execute(sources.insert(), source_rows)

    post_id = 0
    metric_id = 0
    # Ingest decides each post's trend terms (monitor.store); timed apart, as the cost moved there.
    term_seconds = 0.0

    def post_batches() -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        nonlocal post_id, metric_id, term_seconds
        plan: list[tuple[int, int]] = [(0, week_posts)] + [
            (-k, base_posts) for k in range(1, BASELINE_WEEKS + 1)
        ]
        # The charts' eight weeks reach three weeks further back than the baseline.
        plan += [(-k, base_posts) for k in range(BASELINE_WEEKS + 1, CHART_WEEKS)]
        plan.append((-9, len(silent) * 3))  # the silent sources' last posts, two months back
        for offset, total in plan:
            week = WEEK.shifted(offset)
            start = week.start.astimezone(UTC)
            span = (week.end - week.start).total_seconds()
            eligible = [
                i
                for i in range(source_count)
                if (offset == -9) == (i in silent) and not (offset < 0 and i in new)
            ]
            chosen_sources = rng.choices(eligible, [weights[i] for i in eligible], k=total)
            post_rows: list[dict[str, Any]] = []
            metric_rows: list[dict[str, Any]] = []
            for index in chosen_sources:
                post_id += 1
                source = source_rows[index]
                kind_platform = str(source["platform"])
                published = start + timedelta(seconds=rng.random() * span)
                tags = rng.sample(HASHTAGS, rng.choice((0, 0, 1, 1, 2, 3)))
                links = [
                    f"https://{rng.choice(DOMAINS)}/artikel/{rng.randint(1, 5000)}"
                    for _ in range(rng.choice((0, 0, 1, 1, 2)))
                ]
                media: list[dict[str, Any]] = []
                if kind_platform == "feed":
                    kind, title = "article", make_sentence(rng, rng.randint(3, 8)).rstrip(".")
                    text = make_text(rng, rng.randint(200, 700))
                    url = f"https://org{index + 1}.example.se/nyheter/{post_id}"
                else:
                    title = None
                    text = make_text(rng, rng.randint(60, 260))
                    text += "".join(f" #{tag}" for tag in tags) + "".join(
                        f" {link}" for link in links
                    )
                    url = SOCIAL_HOSTS[kind_platform].format(handle=source["handle"], n=post_id)
                    kind = "post"
                    if kind_platform == "youtube":
                        kind = "video" if rng.random() > 0.05 else "live"
                        title = make_sentence(rng, rng.randint(4, 9)).rstrip(".")
                        media = [{
                            "type": "video", "url": url, "duration_s": rng.randint(20, 3600),
                            "thumbnail_url": f"https://i.ytimg.com/vi/{post_id}/hq.jpg",
                        }]  # fmt: skip
                    elif kind_platform == "flickr":
                        kind = "photo"
                        media = [
                            {"type": "photo", "url": f"https://live.staticflickr.com/{post_id}.jpg"}
                        ]
                fetched = published + timedelta(minutes=rng.randint(5, 120))
                began = time.perf_counter()
                terms = stored_terms(title, text, tags)
                phrases = stored_phrases(title, text)
                term_seconds += time.perf_counter() - began
                post_rows.append({
                    "id": post_id, "source_id": source["id"], "platform_post_id": str(post_id),
                    "kind": kind, "url": url, "published_at": published, "title": title,
                    "text": text, "tags": tags, "links": links, "mentions": [], "other_mentions": 0,
                    "media": media, "content_hash": hashlib.sha1(text.encode()).hexdigest(),
                    "terms": terms, "phrases": phrases,
                    "fetched_at": fetched, "first_seen_at": fetched,
                    # 0.5 % of posts were deleted; the digest leaves them out.
                    "deleted_at": fetched + timedelta(hours=1) if rng.random() < 0.005 else None,
                })  # fmt: skip
                if kind_platform != "feed":
                    popularity = rng.lognormvariate(2, 1.5)
                    observations = [fetched + timedelta(hours=12)]
                    if offset == 0:
                        observations.append(NOW + timedelta(hours=2))  # after the digest is made
                    for k, observed in enumerate(observations, start=1):
                        metric_id += 1
                        grow = k * popularity
                        metric_rows.append({
                            "id": metric_id, "post_id": post_id, "observed_at": observed,
                            "views": int(grow * 40) if kind_platform in ("x", "youtube") else None,
                            "likes": int(grow), "reposts": int(grow / 5), "replies": int(grow / 8),
                            "quotes": int(grow / 20) if kind_platform in ("x", "bluesky") else None,
                            "reactions": int(grow / 3) if kind_platform == "facebook" else None,
                            "bookmarks": None,
                        })  # fmt: skip
                if len(post_rows) >= BATCH:
                    yield post_rows, metric_rows
                    post_rows, metric_rows = [], []
            if post_rows:
                yield post_rows, metric_rows

    with engine.begin() as connection:
        for post_rows, metric_rows in post_batches():
            connection.execute(posts.insert(), post_rows)
            if metric_rows:
                connection.execute(post_metrics.insert(), metric_rows)
            counts["posts"] += len(post_rows)
            counts["post_metrics"] += len(metric_rows)

    # A collection run every six hours per active source during the week; 5 % failed, and a few
    # sources never recovered.
    broken = set(rng.sample(range(source_count), source_count // 40))
    run_rows = []
    start = WEEK.start.astimezone(UTC)
    for index, source in enumerate(source_rows):
        for slot in range(28):
            began = start + timedelta(hours=6 * slot, minutes=rng.randint(0, 59))
            failed = (index in broken and slot > 20) or rng.random() < 0.05
            run_rows.append({
                "source_id": source["id"], "started_at": began,
                "finished_at": began + timedelta(seconds=rng.randint(1, 30)),
                "status": "failed" if failed else rng.choice(("ok", "not_modified")),
                "http_status": 500 if failed else 200, "posts_new": 0, "posts_updated": 0,
                "posts_unchanged": 0, "metrics_written": 0, "bytes_received": 0,
                "error": "HTTP 500" if failed else None,
            })  # fmt: skip
    with engine.begin() as connection:
        connection.execute(collection_runs.insert(), run_rows)
    counts["collection_runs"] = len(run_rows)

    # Follower counts of the social accounts (source_metrics, a row when the count changed)
    # over the nine weeks before the digest, for its comparisons.
    metric_rows = []
    first = NOW - timedelta(weeks=9)
    for source in source_rows:
        if source["platform"] == "feed":
            continue
        followers = int(rng.lognormvariate(7, 1.5))
        observed = first + timedelta(hours=rng.randint(0, 71))
        while observed < NOW:
            followers += rng.randint(-5, 40)
            metric_rows.append({
                "source_id": source["id"], "observed_at": observed, "followers": followers,
                "views": None, "posts": None,
            })  # fmt: skip
            observed += FOLLOWER_EVERY
    with engine.begin() as connection:
        connection.execute(source_metrics.insert(), metric_rows)
    counts["source_metrics"] = len(metric_rows)
    counts["term_us_per_post"] = round(term_seconds / max(counts["posts"], 1) * 1e6)
    return counts


def make_recipients(engine: Engine, rng: random.Random, count: int) -> list[Recipient]:
    """Recipients as communicators set them up: their own group, a few peer organisations, a
    platform or two, keywords; a few follow everything."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sources.c.organisation, sources.c.groups)).all()
    by_group: dict[str, list[str]] = {}
    for organisation, groups in rows:
        for group in groups:
            by_group.setdefault(group, [])
            if organisation not in by_group[group]:
                by_group[group].append(organisation)
    group_names = sorted(by_group)
    recipients = []
    for n in range(count):
        own_group = rng.choice(("kommuner", "kommuner", "regioner", "myndigheter"))
        own = rng.choice(by_group[own_group])
        style = n % 5
        followed_groups: tuple[str, ...] = ()
        organisations: tuple[str, ...] = ()
        platforms: tuple[str, ...] = ()
        if style == 0:
            pass  # everything
        elif style == 1:
            followed_groups = (own_group,)
        elif style == 2:
            followed_groups = tuple(rng.sample(group_names, 2))
            platforms = tuple(rng.sample(list(PLATFORM_SHARES), 3))
        elif style == 3:
            organisations = (
                own,
                *rng.sample(by_group[own_group], min(15, len(by_group[own_group]))),
            )
        else:
            followed_groups = ("myndigheter",)
            organisations = (own,)
        recipients.append(
            Recipient(
                email=f"kommunikator{n}@example.se",
                name=f"Kommunikatör {n}",
                language="en" if n % 7 == 0 else "sv",
                organisation=own,
                groups=followed_groups,
                organisations=organisations,
                platforms=platforms,
                keywords=tuple(rng.sample(WORDS, rng.randint(0, 3))),
            )
        )
    return recipients


def run(engine: Engine, config: Config, recipients: Sequence[Recipient]) -> dict[str, float]:
    """Build and render every digest; returns seconds per stage."""
    began = time.perf_counter()
    # What a send does, timed in its two steps: one load, then a composition per recipient.
    data = load_week_data(engine, WEEK, now=NOW)
    load_s = time.perf_counter() - began
    built = {r.email: compose_digest(r, data, config.digest.top_posts) for r in recipients}
    build_s = time.perf_counter() - began
    began = time.perf_counter()
    sizes = [len(render_digest(built[r.email], config.digest).html.encode()) for r in recipients]
    render_s = time.perf_counter() - began
    return {
        "build": build_s,
        "load": load_s,
        "render": render_s,
        "largest_html_kb": max(sizes) / 1024,
        "posts_in_largest": max(d.summary.posts for d in built.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=100_000, help="posts in the week")
    parser.add_argument("--baseline", type=int, default=80_000, help="posts per earlier week")
    parser.add_argument("--recipients", type=int, default=50)
    parser.add_argument("--seed", type=int, default=48)
    parser.add_argument("--per-call", action="store_true", help="also time build_digest per call")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed part here")
    parser.add_argument("--database", type=Path, help="reuse or keep the SQLite file here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="omvarld-digest-bench-") as directory:
        path = args.database or Path(directory) / "bench.db"
        fresh = not path.exists()
        engine = make_engine(f"sqlite:///{path}")
        rng = random.Random(args.seed)
        if fresh:
            upgrade(engine)
            began = time.perf_counter()
            counts = generate(engine, rng, args.sources, args.posts, args.baseline)
            print(f"generated in {time.perf_counter() - began:.1f} s (not timed): ", end="")
            print(", ".join(f"{n:,} {table}" for table, n in counts.items()))
        recipients = make_recipients(engine, random.Random(args.seed + 1), args.recipients)
        config = Config(path=path)

        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        figures = run(engine, config, recipients)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)

        total = figures["build"] + figures["render"]
        count = len(recipients)
        print(
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; week {WEEK}, "
            f"{count} recipients (largest digest: {figures['posts_in_largest']:,.0f} posts of the "
            f"week, {figures['largest_html_kb']:.1f} KB HTML)"
        )
        print(f"total   {total:.2f} s   ({total / count * 1000:.0f} ms per digest)   bar ≤ 10 s")
        for stage in ("build", "render"):
            seconds = figures[stage]
            print(f"{stage:<7} {seconds:.2f} s   ({seconds / count * 1000:.0f} ms per digest)")
        compose = figures["build"] - figures["load"]
        print(f"  of the build: loading the week once {figures['load']:.2f} s, ", end="")
        print(f"composing {compose:.2f} s ({compose / count * 1000:.0f} ms per digest)")
        if args.per_call:
            began = time.perf_counter()
            for recipient in recipients:
                build_digest(engine, config, recipient, WEEK, now=NOW)
            per_call = time.perf_counter() - began
            print(f"build_digest, one call per recipient: {per_call:.2f} s")
        engine.dispose()


if __name__ == "__main__":
    main()
