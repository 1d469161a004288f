"""`omvarld collect`, `run` (the scheduled service) and `status`: collecting, and how it goes."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from monitor.cli.common import fail, jsonable, out, plural, shown, when, zone_of
from monitor.cli.root import app

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.config import Config
    from monitor.queries import SourceHealth


@app.command("collect")
def collect(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Collect every source now.")] = False,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Collect this source (repeatable).")
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(help="Only sources of this platform (youtube: a YouTube feed too)."),
    ] = None,
) -> None:
    """Collect the sources that are due (or --all, or --source KEY) once, and store their posts."""
    # A plain `omvarld collect` usually comes the short way (monitor/cli/entry.py) and is read
    # the same (tests/test_cli_entry.py); this is the way of CliRunner and of every mistake.
    from monitor.cli.collecting import collect_once

    code = collect_once(ctx.obj, everything=everything, keys=source or [], platform=platform)
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------------------------------- run


@app.command("run")
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit (for cron).")] = False,
) -> None:
    """Run the service: collect due sources every tick until SIGTERM or Ctrl-C."""
    from monitor.service import ServiceError, run_service

    logging.getLogger().setLevel(logging.INFO)
    for chatty in ("alembic", "apscheduler"):  # their INFO lines repeat every tick
        logging.getLogger(chatty).setLevel(logging.WARNING)
    config = ctx.obj.config()
    engine = ctx.obj.synced_engine()
    try:
        run_service(config, engine, once=once)
    except ServiceError as error:
        fail(str(error))


# ---------------------------------------------------------------------------------------- status


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per source: state, last success, failures in a row, posts, 304 share, next check, and
    the last error of each source with one. Sources failing for over a day are flagged."""
    from monitor.platforms import describe_channel
    from monitor.queries import list_source_health
    from monitor.sources import count_due_sources
    from monitor.usage import describe_api_usage, read_api_usage

    config = ctx.obj.config()
    engine = ctx.obj.synced_engine()
    now = datetime.now(UTC)
    health = [_with_current_skip_reason(config, h) for h in list_source_health(engine, now=now)]
    if as_json:
        records = [
            jsonable(h.__dict__) | {"failing_over_a_day": h.failing_long(now)} for h in health
        ]
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    zone = zone_of(config)
    # Keys whole (folded past 30 characters) rather than cut short by the columns beside them.
    keys = Column(
        "source",
        overflow="fold",
        min_width=min(30, max(map(len, (h.key for h in health)), default=6)),
    )
    table = Table(
        keys, "state", "last success", "failures", "posts", "newest post", "304s (7 d)",
        "next check", "followers (7 d)", "account views; posts (7 d)",
    )  # fmt: skip
    styles = {"failing": "yellow", "broken": "red", "retired": "magenta", "skipped": "dim"}
    for h in health:
        share = "–" if h.not_modified_share is None else f"{h.not_modified_share:.0%}"
        table.add_row(
            # The platform under the key: a column of its own would squeeze the rest.
            Text(h.key) + Text(f"\n{describe_channel(h.platform, h.channel)}", style="dim"),
            h.status + (" !" if h.failing_long(now) else ""),
            when(h.last_success_at, zone),
            str(h.consecutive_failures),
            str(h.post_count),
            when(h.newest_post_at, zone),
            share,
            when(h.next_check_at, zone),
            describe_count(h.followers, h.followers_change_7d),
            "; ".join(
                describe_count(value, change)
                for value, change in (
                    (h.views, h.views_change_7d),
                    (h.account_posts, h.account_posts_change_7d),
                )
            ),
            style=styles.get(h.status),
        )
    out.print(table)
    for h in health:
        if h.last_error:
            flag = "FAILING FOR OVER A DAY: " if h.failing_long(now) else ""
            since = when(h.failing_since or h.last_error_at, zone)
            out.print(Text(f"{flag}{h.key}: {h.status} since {since}: ") + shown(h.last_error))
    by_state: dict[str, int] = {}
    for h in health:
        by_state[h.status] = by_state.get(h.status, 0) + 1
    summary = ", ".join(f"{count} {state}" for state, count in sorted(by_state.items()))
    out.print(f"{len(health)} sources ({summary}); {count_due_sources(engine, now)} due now")
    for line in describe_api_usage(config, read_api_usage(engine, now)):
        out.print(line, markup=False)
    if config.alerts:
        print_alert_health(config, engine, now)


def print_alert_health(config: Config, engine: Engine, now: datetime) -> None:
    """One line on the alerts: sent, and failed deliveries (to be retried, and given up); and
    one on passes whose round never ran, when there are such."""
    from monitor.alerts.store import find_abandoned_passes, tally_events
    from monitor.workers import make_worker_id

    tallies = tally_events(engine, config.alerting.max_attempts).values()
    sent = sum(t.sent for t in tallies)
    failed = sum(t.failed for t in tallies)
    given_up = sum(t.given_up for t in tallies)
    line = f"Alerts: {plural(len(config.alerts), 'rule')}; {plural(sent, 'delivery')} sent"
    if failed or given_up:
        line += f", {failed} failed (to be retried), {given_up} given up: see `omvarld alerts list`"
    out.print(line, markup=False, style="red" if given_up else "yellow" if failed else None)
    # What the next round would take over: passes whose process is gone before their round
    # claimed their alerts (killed, or its background round killed with it).
    lease = timedelta(seconds=config.collect.lease)
    waiting = find_abandoned_passes(engine, make_worker_id(), now, lease)
    if waiting:
        since = when(waiting[0].started_at, zone_of(config))
        passes = "1 pass" if len(waiting) == 1 else f"{len(waiting)} passes"
        out.print(
            f"Alerts: no round ran for {passes} since {since} (its process was killed); the"
            " next pass sends their alerts. If this keeps happening where a command's end ends"
            " what it started (systemd oneshot, docker run), set [alerting] background = false",
            markup=False,
            style="yellow",
        )


def describe_count(value: int | None, change: int | None) -> str:
    """An account count with its change over the week: "61,315 (+115)"; "–" when the
    platform gives none (never 0), and no change when there was no count a week ago."""
    if value is None:
        return "–"
    return f"{value:,}" if change is None else f"{value:,} ({change:+,})"


def _with_current_skip_reason(config: Config, health: SourceHealth) -> SourceHealth:
    """A skipped source's reason as the config says it now: the one stored at the last
    collection may name an environment variable the config has renamed since."""
    from dataclasses import replace

    from monitor.collect import find_skip_reason

    if health.status != "skipped":
        return health
    reason = find_skip_reason(config, health.platform)
    return replace(
        health, last_error=reason or "nothing is missing now: collected at its next check"
    )
