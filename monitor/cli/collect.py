"""`omvarld collect`, `run` (the scheduled service) and `status`: collecting, and how it goes."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table
from rich.text import Text

from monitor.cli.common import EXIT_FAILED, err, fail, jsonable, out, plural, shown, when, zone_of
from monitor.cli.root import app

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.alerts.alerter import Alerter
    from monitor.collect import SourceOutcome
    from monitor.config import Config
    from monitor.queries import SourceHealth
    from monitor.sources import LeaseHolder, SourceRow


@app.command("collect")
def collect(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Collect every source now.")] = False,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Collect this source (repeatable).")
    ] = None,
    platform: Annotated[str | None, typer.Option(help="Only sources of this platform.")] = None,
) -> None:
    """Collect the sources that are due (or --all, or --source KEY) once, and store their posts."""
    from monitor.config import PLATFORMS
    from monitor.db import describe_database
    from monitor.sources import claim_sources, find_lease_holders, select_sources
    from monitor.workers import make_worker_id

    if platform is not None and platform not in PLATFORMS:
        fail(f"--platform: unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
    config = ctx.obj.config()
    engine = ctx.obj.synced_engine()
    keys = source or []
    now = datetime.now(UTC)
    unknown = sorted(set(keys) - {r.key for r in select_sources(engine, now=now, keys=keys)})
    if unknown:
        fail(f"--source: no active source with key {', '.join(map(repr, unknown))}")
    # Claimed like the service claims, so a manual run and `omvarld run` never collect the
    # same source at once.
    worker = make_worker_id()
    lease = timedelta(seconds=config.collect.lease)
    chosen: dict[str, Any] = {"everything": everything, "keys": keys, "platform": platform}
    rows = claim_sources(engine, now=now, worker=worker, lease=lease, **chosen)
    holders = find_lease_holders(engine, now=now, worker=worker, **chosen)
    for holder in holders:
        out.print(
            f"{plural(holder.sources, 'source')} {'is' if holder.sources == 1 else 'are'} being"
            f" collected by {_describe_holder(holder, config)};"
            " left to it.",
            markup=False,
        )
    alerter = _make_alerter(config)
    try:
        if not rows:
            if not holders:
                out.print(_describe_nothing_due(engine, config, now, platform), markup=False)
            # Failed deliveries may be due again, and a crashed pass's alerts left to send.
            print_alert_report(config, engine, alerter, now, [], worker=worker)
            out.print(f"Database: {describe_database(engine)}", markup=False)
            return
        _collect_rows(config, engine, alerter, rows, now, worker)
    finally:
        if alerter is not None:
            alerter.close()


def _make_alerter(config: Config) -> Alerter | None:
    """The alert process's handle when there are rules (not started yet)."""
    if not config.alerts:
        return None
    from monitor.alerts.alerter import Alerter

    return Alerter(config)


def _collect_rows(
    config: Config,
    engine: Engine,
    alerter: Alerter | None,
    rows: Sequence[SourceRow],
    now: datetime,
    worker: str,
) -> None:
    """Collect the claimed sources, say how it went, and alert on the pass."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from monitor.collect import collect_sources
    from monitor.db import describe_database
    from monitor.types import CollectStatus

    progress = Progress(
        TextColumn("Collecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
        # Only for a person watching: in a pipe or a log it would leave an empty line.
        disable=not err.is_terminal,
    )
    pass_id = None
    if config.alerts:
        from monitor.alerts.alerter import begin_pass

        # The alert process gets ready for the round on the other core while the pass runs.
        pass_id = begin_pass(config, engine, alerter, worker, now)
    with progress:
        task = progress.add_task("", total=len(rows))

        def advance(outcome: SourceOutcome) -> None:
            progress.update(task, advance=1, description=outcome.key)

        outcomes = collect_sources(config, engine, rows, worker=worker, on_outcome=advance)

    outcomes.sort(key=lambda o: (o.organisation, o.key))
    print_collect_summary(outcomes)
    print_alert_report(config, engine, alerter, now, outcomes, worker=worker, pass_id=pass_id)
    out.print(f"Database: {describe_database(engine)}", markup=False)
    if any(o.status in (CollectStatus.FAILED,) for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


def print_alert_report(
    config: Config,
    engine: Engine,
    alerter: Alerter | None,
    since: datetime,
    outcomes: Sequence[SourceOutcome],
    *,
    worker: str,
    pass_id: int | None = None,
) -> None:
    """Alert on the pass (when rules are configured) and say what went out. A failed delivery
    is named but leaves the exit code to the collection: it is retried by later passes."""
    if not config.alerts or alerter is None:
        return
    from monitor.alerts.alerter import alert_after_pass

    report = alert_after_pass(
        config, engine, alerter, since, outcomes, worker=worker, pass_id=pass_id
    )
    if report is None or not (report.sent or report.failed or report.failures):
        return
    out.print(report.summary(), markup=False)
    for failure in report.failures:
        out.print(Text("alert failed: ") + shown(failure))


def _describe_holder(holder: LeaseHolder, config: Config) -> str:
    """Host, pid and since when: the process start where this host can see it, else how long
    its renewed lease runs."""
    from monitor.workers import Worker

    worker = Worker.parse(holder.worker)
    if worker is None:
        return holder.worker
    zone = zone_of(config)
    started = worker.started_at()
    since = (
        f"running since {when(started, zone)}"
        if started
        else f"lease renewed until {when(holder.until, zone)}"
    )
    return f"host {worker.host}, pid {worker.pid} ({since})"


def _describe_nothing_due(
    engine: Engine, config: Config, now: datetime, platform: str | None
) -> str:
    """Why a collection found nothing to do, and when there will be something."""
    from monitor.sources import find_next_due

    following = find_next_due(engine, now=now, platform=platform)
    noun = f"{platform} source" if platform else "source"
    if not following.sources:
        return f"Nothing to collect: no active, enabled {noun}s (see `omvarld sources list`)."
    counted = plural(following.sources, noun)
    if following.at is None:
        return f"Nothing is due: no next check is set for the {counted}."
    return (
        f"Nothing is due: the next of the {counted}, {following.key}, is due at "
        f"{when(following.at, zone_of(config))}. Use --all to collect every source now."
    )


# A table longer than this is no longer read: past it, only sources with news or problems are
# listed (rendering 2,000 rows also took longer than collecting them).
SUMMARY_ROWS = 40


def print_collect_summary(outcomes: Sequence[SourceOutcome]) -> None:
    """A table of counts per source, then one line per source that needs attention."""
    from monitor.types import CollectStatus

    quiet = (CollectStatus.NOT_MODIFIED, CollectStatus.OK)
    listed = list(outcomes)
    if len(listed) > SUMMARY_ROWS:
        listed = [o for o in outcomes if o.status not in quiet or o.counts.new or o.counts.updated][
            :SUMMARY_ROWS
        ]
    table = Table("source", "organisation", "result", "new", "updated", "unchanged")
    styles = {
        CollectStatus.FAILED: "red",
        CollectStatus.PARTIAL: "yellow",
        CollectStatus.SKIPPED: "dim",
        CollectStatus.RETIRED: "magenta",
    }
    for outcome in listed:
        counts = outcome.counts
        table.add_row(
            outcome.key,
            outcome.organisation,
            outcome.status.value.replace("_", " "),
            str(counts.new),
            str(counts.updated),
            str(counts.unchanged),
            style=styles.get(outcome.status),
        )
    if listed:
        out.print(table)
    if len(listed) < len(outcomes):
        out.print(
            f"({len(outcomes) - len(listed)} more sources not listed; `omvarld status` lists all)"
        )
    for outcome in outcomes:
        if outcome.moved_to:
            out.print(
                f"{outcome.key}: moved permanently to {outcome.moved_to}; update the config",
                markup=False,
            )
        if outcome.error:
            out.print(Text(f"{outcome.key}: {outcome.status.value}: ") + shown(outcome.error))
    failed = sum(o.status is CollectStatus.FAILED for o in outcomes)
    not_modified = sum(o.status is CollectStatus.NOT_MODIFIED for o in outcomes)
    out.print(
        f"{plural(len(outcomes), 'source')}: {sum(o.counts.new for o in outcomes)} new, "
        f"{sum(o.counts.updated for o in outcomes)} updated, "
        f"{sum(o.counts.unchanged for o in outcomes)} unchanged posts; "
        f"{not_modified} not modified, {failed} failed"
    )


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
        print_alert_health(config, engine)


def print_alert_health(config: Config, engine: Engine) -> None:
    """One line on the alerts: sent, and failed deliveries (to be retried, and given up)."""
    from monitor.alerts.store import tally_events

    tallies = tally_events(engine, config.alerting.max_attempts).values()
    sent = sum(t.sent for t in tallies)
    failed = sum(t.failed for t in tallies)
    given_up = sum(t.given_up for t in tallies)
    line = f"Alerts: {plural(len(config.alerts), 'rule')}; {plural(sent, 'delivery')} sent"
    if failed or given_up:
        line += f", {failed} failed (to be retried), {given_up} given up: see `omvarld alerts list`"
    out.print(line, markup=False, style="red" if given_up else "yellow" if failed else None)


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
