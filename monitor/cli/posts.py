"""`omvarld posts list|search`, and the post filters `posts search` shares with `export`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, cast

import typer
from rich.table import Table

from monitor.cli import filters
from monitor.cli.common import (
    PLAIN_HELP,
    err,
    fail,
    jsonable,
    out,
    parse_moment_option,
    shown,
    when,
    zone_of,
)
from monitor.cli.root import app

posts_app = typer.Typer(help="Read stored posts.", **PLAIN_HELP)
app.add_typer(posts_app, name="posts")


# Past this, a number is a typo or an attack.
MAX_LIMIT = 1_000_000  # more posts than a terminal or a search shows; `export` has no limit
LimitOption = Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many posts.")]


@posts_app.command("list")
def posts_list(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source's posts (its key).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only posts published since (YYYY-MM-DD or 7d).")
    ] = None,
    limit: LimitOption = 20,
) -> None:
    """The newest stored posts."""
    from monitor.queries import list_posts

    config = ctx.obj.config()
    start = parse_moment_option("--since", since) if since else None
    engine = ctx.obj.synced_engine()
    zone = zone_of(config)
    table = Table("published", "organisation", "kind", "post", "link")
    for post in list_posts(engine, source_key=source, since=start, limit=limit):
        headline = post.title or (post.text or "").replace("\n", " ")
        table.add_row(
            when(post.published_at, zone),
            shown(post.organisation),
            post.kind,
            shown(headline[:80] + ("…" if len(headline) > 80 else "")),
            shown(post.url),
        )
    out.print(table)


@posts_app.command("search")
def posts_search(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            help='Words (all must match), "a phrase", OR between two, -word to exclude.',
            show_default=False,
        ),
    ],
    since: filters.SinceOption = None,
    until: filters.UntilOption = None,
    platform: filters.PlatformsOption = None,
    source: filters.SourcesOption = None,
    organisation: filters.OrganisationsOption = None,
    group: filters.GroupsOption = None,
    kind: filters.KindsOption = None,
    min_engagement: filters.MinEngagementOption = None,
    output: Annotated[
        str, typer.Option("--format", help="table, csv or jsonl (one JSON object a line).")
    ] = "table",
    sort: Annotated[
        str,
        typer.Option(
            help="newest (newest first, as feed readers show posts) or relevance (best match"
            " first: title matches above body-only ones, among the 1,000 matches collected"
            " last)."
        ),
    ] = "newest",
    limit: LimitOption = 20,
) -> None:
    """Search stored posts, newest first (--sort relevance: best match first)."""
    from monitor.search import (
        RELEVANCE_POOL,
        SORTS,
        QueryError,
        Sort,
        search_posts,
        suggest_prefix,
    )

    if output not in ("table", "csv", "jsonl"):
        fail(f"--format: expected table, csv or jsonl, got {output!r}")
    if sort not in SORTS:
        fail(f"--sort: expected {' or '.join(SORTS)}, got {sort!r}")
    chosen = filters.post_filter(
        since, until, platform, source, organisation, group, kind, min_engagement
    )
    config = ctx.obj.config()
    engine = ctx.obj.synced_engine()
    filters.check_stored(engine, chosen)
    try:
        hits = search_posts(engine, query, chosen, limit, sort=cast(Sort, sort))
    except QueryError as error:
        fail(f"search: {error}")
    if sort == "relevance" and len(hits) == RELEVANCE_POOL < limit:
        err.print(
            f"note: --sort relevance ranks the {RELEVANCE_POOL:,} matches collected last;"
            " --sort newest lists every match",
            markup=False,
        )
    if output == "csv":
        from dataclasses import astuple

        from monitor.export import CsvWriter
        from monitor.search import HIT_COLUMNS

        # The export's writer: the same quoting, and the same neutralised formulas, for a
        # spreadsheet opened from either. No byte-order mark on a stream that may be piped.
        sys.stdout.flush()
        writer = CsvWriter(sys.stdout.buffer, HIT_COLUMNS, byte_order_mark=False)
        for hit in hits:
            writer.write(astuple(hit))
        writer.close()
        return
    if output == "jsonl":
        from dataclasses import asdict

        for hit in hits:
            sys.stdout.write(json.dumps(jsonable(asdict(hit)), ensure_ascii=False) + "\n")
        return
    if not hits:
        widened = suggest_prefix(query)
        hint = f"; try {widened!r} for words that begin so" if widened else ""
        err.print(f"no stored posts match {query!r}{hint}", markup=False)
        return
    zone = zone_of(config)
    table = Table("published", "organisation", "platform", "post", "engagement", "link")
    for hit in hits:
        post = (
            f"{hit.title}: {hit.excerpt}"
            if hit.title and hit.title not in hit.excerpt
            else hit.excerpt
        )
        # A terminal row, not the whole excerpt: --format csv or jsonl carries all of it.
        table.add_row(
            when(hit.published_at, zone),
            shown(hit.organisation),
            hit.channel,
            shown(post if len(post) <= 100 else post[:99] + "…"),
            "–" if hit.engagement is None else str(hit.engagement),
            shown(hit.url),
        )
    out.print(table)
