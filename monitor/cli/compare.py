"""`omvarld compare`: organisations side by side per platform for a week (issue 13, item 2)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from monitor.cli.common import fail, out, shown
from monitor.cli.digest import WeekOption, _digest_week
from monitor.cli.root import app

if TYPE_CHECKING:
    from digest.model import Comparison

FORMATS = ("table", "csv", "jsonl")
# The columns of --format csv and jsonl, in order: a Comparison's fields.
COLUMNS = (
    ("organisation", "string", "the organisation"),
    (
        "platform",
        "string",
        "the platform readers know it by (`sources.channel`: youtube for a YouTube channel's"
        " feed; feed for web and news feeds)",
    ),
    ("posts", "integer", "posts published in the week"),
    ("engagement_per_post", "number", "over the posts with counts; empty: not measured"),
    ("per_thousand_followers", "number", "engagement per 1,000 followers; empty: not measured"),
    ("followers", "integer", "at the week's end; empty: not measured"),
    ("growth_week", "integer", "followers gained during the week; empty: not measured"),
    ("growth_four_weeks", "integer", "followers gained in the four weeks up to the week's end"),
)


@app.command("compare")
def compare(
    ctx: typer.Context,
    group: Annotated[
        str | None, typer.Option("--group", help="Only the sources in this group (its key).")
    ] = None,
    week: WeekOption = None,
    output: Annotated[
        str, typer.Option("--format", help="table, csv or jsonl (one JSON object a line).")
    ] = "table",
) -> None:
    """Organisations side by side per platform: posts, engagement per post and per 1,000
    followers, follower growth over the week and four weeks ("—": not measured)."""
    from digest.load import load_comparisons
    from monitor.sources import list_source_groups

    if output not in FORMATS:
        fail(f"--format: expected table, csv or jsonl, got {output!r}")
    config = ctx.obj.config()
    chosen_week = _digest_week(config, week)
    engine = ctx.obj.synced_engine()
    if group is not None:
        groups = list_source_groups(engine)
        if group not in groups:
            known = ", ".join(groups) or "none yet"
            fail(f"--group: no source is in a group {group!r}; groups: {known}")
    rows = load_comparisons(engine, chosen_week, group=group)
    if output == "csv":
        write_csv(rows)
    elif output == "jsonl":
        for row in rows:
            values = {name: asdict(row)[name] for name, _, _ in COLUMNS}
            sys.stdout.write(json.dumps(values, ensure_ascii=False) + "\n")
    else:
        print_table(rows, str(chosen_week))


def write_csv(rows: list[Comparison]) -> None:
    """The export's CSV writer: its quoting and neutralised formulas; None an empty cell."""
    from monitor.export import CsvWriter, ExportColumn

    sys.stdout.flush()
    columns = [ExportColumn(*column) for column in COLUMNS]
    writer = CsvWriter(sys.stdout.buffer, columns, byte_order_mark=False)
    for row in rows:
        writer.write([getattr(row, name) for name, _, _ in COLUMNS])
    writer.close()


def print_table(rows: list[Comparison], week: str) -> None:
    from digest.render import UNMEASURED

    def figure(value: float | None) -> str:
        if value is None:
            return UNMEASURED
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"

    def growth(value: int | None) -> str:
        return UNMEASURED if value is None else f"{value:+,d}" if value else "±0"

    if not rows:
        out.print(f"no active sources to compare in {week}", markup=False)
        return
    table = Table(
        "platform", "organisation", "posts", "engagement/post", "per 1,000 followers",
        "followers", "growth week", "growth 4 weeks", title=f"Comparison {week}",
    )  # fmt: skip
    for row in rows:
        table.add_row(
            row.platform,
            shown(row.organisation),
            f"{row.posts:,d}",
            figure(row.engagement_per_post),
            figure(row.per_thousand_followers),
            figure(row.followers),
            growth(row.growth_week),
            growth(row.growth_four_weeks),
        )
    out.print(table)
