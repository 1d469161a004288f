"""What `omvarld collect` does once its options are read: shared by its Typer command
(`monitor/cli/collect.py`) and the console script's short way in (`monitor/cli/entry.py`).

Imports neither Typer nor Rich's tables and progress bars unless they are used: a scheduled
warm collection is mostly start-up (issue 15).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.text import Text

from monitor.cli.common import EXIT_FAILED, Context, err, fail, out, plural, shown, when, zone_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.alerts.alerter import Alerter, AlertReport
    from monitor.collect import SourceOutcome
    from monitor.config import Config
    from monitor.sources import LeaseHolder, SourceRow


def collect_once(
    context: Context, *, everything: bool, keys: Sequence[str], platform: str | None
) -> int:
    """Collect the sources that are due (or all, or the named ones) once and print how it went;
    the exit code: 1 when a source failed. A usage mistake raises Typer's Exit (see `fail`)."""
    from monitor.platforms import CHANNEL_KEYS

    # A platform as collected or as readers know it: `youtube` takes a YouTube channel's feed.
    if platform is not None and platform not in CHANNEL_KEYS:
        expected = ", ".join(CHANNEL_KEYS)
        fail(f"--platform: unknown platform {platform!r}; expected one of {expected}")
    config = context.config()
    if not keys:
        from monitor.parsing import prepare_parsing

        # First: the parse pool's forkserver starts while this process imports the rest.
        prepare_parsing(config)
    from monitor.db import describe_database
    from monitor.sources import claim_sources, find_lease_holders, select_sources
    from monitor.workers import make_worker_id

    engine = context.synced_engine()
    now = datetime.now(UTC)
    if keys:
        known = {r.key for r in select_sources(engine, now=now, keys=keys)}
        unknown = sorted(set(keys) - known)
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
            if config.alerts:
                from monitor.alerts.alerter import PassAlerts

                print_alert_report(PassAlerts(config, engine, alerter, worker, now).finish([]))
            out.print(f"Database: {describe_database(engine)}", markup=False)
            return 0
        return _collect_rows(config, engine, alerter, rows, now, worker)
    finally:
        if alerter is not None:
            alerter.close()


def _make_alerter(config: Config) -> Alerter | None:
    """The alert process's handle (not started yet) when there are rules whose rounds this
    process waits for; None when there are none, or they run in the background."""
    if not config.alerts or config.alerting.background:
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
) -> int:
    """Collect the claimed sources, say how it went, and alert on the pass; the exit code."""
    from monitor.collect import collect_sources
    from monitor.db import describe_database
    from monitor.types import CollectStatus

    alerts = None
    if config.alerts:
        from monitor.alerts.alerter import PassAlerts

        alerts = PassAlerts(config, engine, alerter, worker, now)
        alerts.begin()
    with _progress_bar(len(rows)) as advance, spare_the_garbage_collector():
        hear = _both(advance, alerts.see if alerts is not None else None)
        outcomes = collect_sources(config, engine, rows, worker=worker, on_outcome=hear)

    # A round for the background is handed off before anything is printed, so that output
    # that cannot be written (`omvarld collect | head`) does not keep the pass from its alerts;
    # a round waited for comes after the summary.
    report = alerts.finish(outcomes) if alerts is not None and alerter is None else None
    outcomes.sort(key=lambda o: (o.organisation, o.key))
    print_collect_summary(outcomes)
    if alerts is not None:
        print_alert_report(alerts.finish(outcomes) if report is None else report)
    out.print(f"Database: {describe_database(engine)}", markup=False)
    return EXIT_FAILED if any(o.status is CollectStatus.FAILED for o in outcomes) else 0


def _both(
    first: Callable[[SourceOutcome], None] | None, second: Callable[[SourceOutcome], None] | None
) -> Callable[[SourceOutcome], None] | None:
    """One callback that calls both that are given."""
    if first is None or second is None:
        return first or second

    def both(outcome: SourceOutcome) -> None:
        first(outcome)
        second(outcome)

    return both


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[SourceOutcome], None] | None]:
    """A progress bar on stderr and the callback that advances it, for a person watching; in a
    pipe or a log neither (the bar would leave an empty line there)."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("Collecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=total)

        def advance(outcome: SourceOutcome) -> None:
            progress.update(task, advance=1, description=outcome.key)

        yield advance


# The garbage collector's youngest generation is examined after this many new objects, not 700:
# a pass allocates a few dozen per source and reference counting frees nearly all of them, so
# examining them sooner finds nothing (issue 15: half the collector's time in a warm pass).
PASS_GC_THRESHOLD = 20_000


@contextlib.contextmanager
def spare_the_garbage_collector() -> Iterator[None]:
    """During the pass: what is alive before it (the modules, the config, the claimed sources)
    stays alive through it, so the cyclic garbage collector stops walking it, and looks at new
    objects less often. Two full walks of the start-up heap cost ~0.15 s of a 2,000-source warm
    pass. Undone after the pass: a process that goes on (a test calling `collect` again and
    again) must get its garbage, and the database connections it holds, collected. Not for
    `omvarld run`, whose heap changes with each tick."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(PASS_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def print_alert_report(report: AlertReport) -> None:
    """Say what the pass's alerts did, when anything went or failed. A failed delivery is
    named but leaves the exit code to the collection: it is retried by later passes."""
    if not (report.sent or report.failed or report.failures or report.handed_to):
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
    if listed:
        from rich.table import Table

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
                shown(outcome.key),
                shown(outcome.organisation),
                outcome.status.value.replace("_", " "),
                str(counts.new),
                str(counts.updated),
                str(counts.unchanged),
                style=styles.get(outcome.status),
            )
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
