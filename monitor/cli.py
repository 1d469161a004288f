"""The `omvarld` command line.

Heavy modules are imported inside commands: start-up time counts when the scheduler or a
benchmark starts the CLI thousands of times. Exit codes: 0 done; 1 the job ran and something
failed (named in the output); 2 bad usage or bad config (one line per problem, no traceback).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.config import DEFAULT_CONFIG_PATH

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitor.collect import SourceOutcome
    from monitor.config import Config
    from monitor.queries import SourceHealth
    from monitor.sources import LeaseHolder
    from monitor.types import ApiUsage

EXIT_FAILED = 1
EXIT_USAGE = 2

# Messages never wrap: a path or error split over two lines is harder to read and to grep.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Help is plain text: Rich markup would take "[retention]" in a help text for a style and drop it.
PLAIN_HELP: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": None}

app = typer.Typer(
    name="omvarld",
    help="Omvärld: monitor public-sector feeds and social accounts, and send weekly digests.",
    add_completion=False,
    pretty_exceptions_enable=False,
    **PLAIN_HELP,
)
config_app = typer.Typer(help="Check the configuration.", **PLAIN_HELP)
db_app = typer.Typer(help="Manage the database schema.", **PLAIN_HELP)
sources_app = typer.Typer(help="List, import and export sources.", **PLAIN_HELP)
posts_app = typer.Typer(help="Read stored posts.", **PLAIN_HELP)
digest_app = typer.Typer(help="Preview, send and read the weekly digests.", **PLAIN_HELP)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(sources_app, name="sources")
app.add_typer(posts_app, name="posts")
app.add_typer(digest_app, name="digest")


@dataclass
class Context:
    config_path: Path
    _config: Config | None = None
    _engine: Engine | None = None

    def config(self) -> Config:
        from monitor.config import ConfigError, load_config

        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as error:
                for problem in error.problems:
                    err.print(str(problem), markup=False)
                raise typer.Exit(EXIT_USAGE) from None
        return self._config

    def engine(self, *, upgrade: bool = True) -> Engine:
        """The database, its schema made current where that is ours to do."""
        from monitor.db import DatabaseError, ensure_schema, make_engine

        if self._engine is None:
            try:
                engine = make_engine(self.config().database_url)
                if upgrade:
                    ensure_schema(engine)
            except DatabaseError as error:
                fail(str(error))
            self._engine = engine
        return self._engine

    def synced_engine(self) -> Engine:
        """The database with the config's sources written into it."""
        from monitor.sources import sync_sources

        engine = self.engine()
        report = sync_sources(engine, self.config(), datetime.now(UTC))
        for key in report.deactivated:
            err.print(f"source {key} is no longer configured: marked inactive, posts kept")
        return engine


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def _shown(value: str | None) -> Text:
    """Stored text (a title, an author, a mail server's answer) as printed: plain, so that a
    "[link=…]" in it is not Rich markup, and without the control characters of rows stored
    before ingest removed them, so that it cannot drive the terminal."""
    from monitor.text import strip_control

    return Text(strip_control(value or ""))


def _refuse_own_files(config: Config, option: str, *targets: Path) -> None:
    """Refuse to write over the database, its journals or the configuration
    (`export --out omvarld.db` once replaced the database with CSV and exited 0). Paths are
    compared resolved, so neither a relative path nor a symbolic link gets past."""
    from monitor.db import database_files

    database = database_files(config.database_url)
    own = dict.fromkeys(database[1:], "a file of the database")
    own |= dict.fromkeys(database[:1], "the database")
    own[config.path.resolve()] = "the configuration file"
    for target in targets:
        what = own.get(target.resolve())
        if what:
            fail(f"{option}: {target} is {what}; write to another file")


def _print_version(asked: bool) -> None:
    if asked:
        from monitor.export import omvarld_version

        out.print(f"omvarld {omvarld_version()}", markup=False)
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option("--config", "-c", envvar="OMVARLD_CONFIG", help="Configuration file."),
    ] = Path(DEFAULT_CONFIG_PATH),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Context(config_path=config)


# ---------------------------------------------------------------------------------------- config


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration and summarise its sources."""
    from collections import Counter

    from digest.delivery import describe_delivery
    from monitor.collect import find_skip_reason

    config = ctx.obj.config()
    sources = config.sources
    enabled = sum(s.enabled for s in sources)
    out.print(f"{config.path}: valid, {len(sources)} sources ({enabled} enabled)", markup=False)
    by_platform = Counter(s.platform for s in sources)
    by_group = Counter(g for s in sources for g in s.groups)
    table = Table("platform", "sources", "note", title="Sources per platform", title_justify="left")
    for platform, count in sorted(by_platform.items()):
        table.add_row(platform, str(count), find_skip_reason(config, platform) or "")
    out.print(table)
    if by_group:
        groups = Table("group", "sources", title="Sources per group", title_justify="left")
        for group, count in sorted(by_group.items()):
            groups.add_row(group, str(count))
        out.print(groups)
    delivery, warning = describe_delivery(config)
    out.print(delivery, markup=False)
    if warning:
        err.print(warning, markup=False)


# -------------------------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the tables or bring them to the newest schema."""
    from monitor.db import DatabaseError, describe_database, upgrade

    engine = ctx.obj.engine(upgrade=False)
    try:
        before, after = upgrade(engine)
    except DatabaseError as error:
        fail(str(error))
    where = describe_database(engine)
    if before == after:
        out.print(f"{where}: already at schema {after}", markup=False)
    else:
        out.print(f"{where}: schema {before or 'empty'} → {after}", markup=False)


# --------------------------------------------------------------------------------------- sources


@sources_app.command("list")
def sources_list(
    ctx: typer.Context,
    inactive: Annotated[bool, typer.Option(help="Include sources no longer configured.")] = False,
) -> None:
    """List the configured sources as stored, with their resolved ids."""
    from monitor.queries import list_source_health

    engine = ctx.obj.synced_engine()
    table = Table("key", "platform", "organisation", "address", "platform id", "groups", "state")
    for source in list_source_health(engine, now=datetime.now(UTC), include_inactive=inactive):
        state = "inactive" if not source.active else ("disabled" if not source.enabled else "")
        table.add_row(
            source.key,
            source.platform,
            source.organisation,
            source.address or "",
            source.platform_id or "",
            ", ".join(source.groups),
            state or source.status,
        )
    out.print(table)


@sources_app.command("import-opml")
def sources_import_opml(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="OPML file exported from a feed reader.")],
    group: Annotated[
        str | None, typer.Option(help="Put every imported source in this group.")
    ] = None,
    organisation: Annotated[
        str | None, typer.Option(help="Organisation for every source (default: OPML folder).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="TOML file to write (default sources/<name>.toml).")
    ] = None,
) -> None:
    """Write the feeds of an OPML file as a TOML include file of sources."""
    from monitor.config import derive_source_key
    from monitor.opml import OpmlError, read_opml, render_sources_toml

    config = ctx.obj.config()
    try:
        feeds = read_opml(str(file))
    except OpmlError as error:
        fail(str(error))
    # A feed already configured, or listed twice in the OPML (in two folders), is written once.
    known = {derive_source_key(s.platform, s.url, s.handle) for s in config.sources}
    fresh = []
    for feed in feeds:
        key = derive_source_key("feed", feed.url, None)
        if key not in known:
            known.add(key)
            fresh.append(feed)
    target = output or config.path.parent / "sources" / f"{file.stem}.toml"
    _refuse_own_files(config, "--out", target)  # a database journal need not exist yet
    if target.exists():
        fail(f"{target} exists; choose another file with --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        render_sources_toml(fresh, group=group, organisation=organisation, origin=file.name),
        encoding="utf-8",
    )
    out.print(
        f"wrote {len(fresh)} sources to {target} "
        f"({len(feeds) - len(fresh)} already configured or listed twice were left out)",
        markup=False,
    )
    out.print(f'Include it from {config.path} with: include = ["sources/*.toml"]', markup=False)


@sources_app.command("export-opml")
def sources_export_opml(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--out", help="File to write (default stdout).")
    ] = None,
) -> None:
    """Write the configured feed sources as OPML 2.0."""
    from monitor.opml import ExportedFeed, render_opml

    config = ctx.obj.config()
    feeds = [
        ExportedFeed(
            url=s.url or "",
            title=s.name or s.organisation,
            group=s.groups[0] if s.groups else None,
        )
        for s in config.sources
        if s.platform == "feed" and s.url
    ]
    document = render_opml(feeds)
    if output is None:
        sys.stdout.write(document)
    else:
        _refuse_own_files(config, "--out", output)
        try:
            output.write_text(document, encoding="utf-8")
        except OSError as error:
            fail(f"--out: cannot write {output}: {error.strerror or error}", EXIT_FAILED)
        out.print(f"wrote {len(feeds)} feeds to {output}", markup=False)


# --------------------------------------------------------------------------------------- collect


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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from monitor.collect import collect_sources
    from monitor.config import PLATFORMS
    from monitor.db import describe_database
    from monitor.sources import claim_sources, find_lease_holders, select_sources
    from monitor.types import CollectStatus
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
            f"{_count(holder.sources, 'source')} {'is' if holder.sources == 1 else 'are'} being"
            f" collected by {_describe_holder(holder, config)};"
            " left to it.",
            markup=False,
        )
    if not rows:
        if not holders:
            out.print(_describe_nothing_due(engine, config, now, platform), markup=False)
        out.print(f"Database: {describe_database(engine)}", markup=False)
        return

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
    with progress:
        task = progress.add_task("", total=len(rows))

        def advance(outcome: SourceOutcome) -> None:
            progress.update(task, advance=1, description=outcome.key)

        outcomes = collect_sources(config, engine, rows, worker=worker, on_outcome=advance)

    outcomes.sort(key=lambda o: (o.organisation, o.key))
    print_collect_summary(outcomes)
    out.print(f"Database: {describe_database(engine)}", markup=False)
    if any(o.status in (CollectStatus.FAILED,) for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


def _describe_holder(holder: LeaseHolder, config: Config) -> str:
    """Host, pid and since when: the process start where this host can see it, else how long
    its renewed lease runs."""
    from monitor.workers import Worker

    worker = Worker.parse(holder.worker)
    if worker is None:
        return holder.worker
    zone = _timezone(config)
    started = worker.started_at()
    since = (
        f"running since {_when(started, zone)}"
        if started
        else f"lease renewed until {_when(holder.until, zone)}"
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
    counted = _count(following.sources, noun)
    if following.at is None:
        return f"Nothing is due: no next check is set for the {counted}."
    return (
        f"Nothing is due: the next of the {counted}, {following.key}, is due at "
        f"{_when(following.at, _timezone(config))}. Use --all to collect every source now."
    )


# A table longer than this is no longer read: past it, only sources with news or problems are
# listed (rendering 2,000 rows also took longer than collecting them).
SUMMARY_ROWS = 40


def print_collect_summary(outcomes: Sequence[SourceOutcome]) -> None:
    """A table of counts per source, then one line per source that needs attention."""
    from monitor.types import CollectStatus

    quiet = (CollectStatus.NOT_MODIFIED, CollectStatus.OK)
    shown = list(outcomes)
    if len(shown) > SUMMARY_ROWS:
        shown = [o for o in outcomes if o.status not in quiet or o.counts.new or o.counts.updated][
            :SUMMARY_ROWS
        ]
    table = Table("source", "organisation", "result", "new", "updated", "unchanged")
    styles = {
        CollectStatus.FAILED: "red",
        CollectStatus.PARTIAL: "yellow",
        CollectStatus.SKIPPED: "dim",
        CollectStatus.RETIRED: "magenta",
    }
    for outcome in shown:
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
    if shown:
        out.print(table)
    if len(shown) < len(outcomes):
        out.print(
            f"({len(outcomes) - len(shown)} more sources not listed; `omvarld status` lists all)"
        )
    for outcome in outcomes:
        if outcome.moved_to:
            out.print(
                f"{outcome.key}: moved permanently to {outcome.moved_to}; update the config",
                markup=False,
            )
        if outcome.error:
            out.print(Text(f"{outcome.key}: {outcome.status.value}: ") + _shown(outcome.error))
    failed = sum(o.status is CollectStatus.FAILED for o in outcomes)
    not_modified = sum(o.status is CollectStatus.NOT_MODIFIED for o in outcomes)
    out.print(
        f"{_count(len(outcomes), 'source')}: {sum(o.counts.new for o in outcomes)} new, "
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
    from monitor.queries import list_source_health
    from monitor.sources import count_due_sources
    from monitor.store import read_api_usage

    config = ctx.obj.config()
    engine = ctx.obj.synced_engine()
    now = datetime.now(UTC)
    health = [_with_current_skip_reason(config, h) for h in list_source_health(engine, now=now)]
    if as_json:
        records = [
            _jsonable(h.__dict__) | {"failing_over_a_day": h.failing_long(now)} for h in health
        ]
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    zone = _timezone(config)
    table = Table(
        "source", "state", "last success", "failures", "posts", "newest post", "304s (7 d)",
        "next check",
    )  # fmt: skip
    styles = {"failing": "yellow", "broken": "red", "retired": "magenta", "skipped": "dim"}
    for h in health:
        share = "–" if h.not_modified_share is None else f"{h.not_modified_share:.0%}"
        table.add_row(
            h.key,
            h.status + (" !" if h.failing_long(now) else ""),
            _when(h.last_success_at, zone),
            str(h.consecutive_failures),
            str(h.post_count),
            _when(h.newest_post_at, zone),
            share,
            _when(h.next_check_at, zone),
            style=styles.get(h.status),
        )
    out.print(table)
    for h in health:
        if h.last_error:
            flag = "FAILING FOR OVER A DAY: " if h.failing_long(now) else ""
            since = _when(h.failing_since or h.last_error_at, zone)
            out.print(Text(f"{flag}{h.key}: {h.status} since {since}: ") + _shown(h.last_error))
    by_state: dict[str, int] = {}
    for h in health:
        by_state[h.status] = by_state.get(h.status, 0) + 1
    summary = ", ".join(f"{count} {state}" for state, count in sorted(by_state.items()))
    out.print(f"{len(health)} sources ({summary}); {count_due_sources(engine, now)} due now")
    for line in describe_api_usage(config, read_api_usage(engine, now)):
        out.print(line, markup=False)


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


# Warn before a metered API's budget runs out, while there is still time to act.
BUDGET_WARNING_SHARE = 0.8


def describe_api_usage(config: Config, usage: ApiUsage) -> list[str]:
    """Lines on metered APIs: X reads this month against its budget, YouTube quota today."""
    lines = []
    budget = config.platform("x").monthly_read_budget
    spent = usage.this_month.get("x", 0)
    if budget or spent:
        share = f" of {budget:,} ({spent / budget:.0%})" if budget else " (no budget set)"
        warning = "WARNING: " if budget and spent >= BUDGET_WARNING_SHARE * budget else ""
        stopped = "; X collection stopped until next month" if budget and spent >= budget else ""
        lines.append(f"{warning}X reads this month: {spent:,}{share}{stopped}")
    quota = config.platform("youtube").daily_quota_units or 10_000
    units = usage.today.get("youtube", 0)
    if units:
        lines.append(f"YouTube API quota today: {units:,} of {quota:,} units")
    return lines


# ----------------------------------------------------------------------------------------- posts


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
    start = _parse_moment("--since", since) if since else None
    engine = ctx.obj.synced_engine()
    zone = _timezone(config)
    table = Table("published", "organisation", "kind", "post", "link")
    for post in list_posts(engine, source_key=source, since=start, limit=limit):
        headline = post.title or (post.text or "").replace("\n", " ")
        table.add_row(
            _when(post.published_at, zone),
            _shown(post.organisation),
            post.kind,
            _shown(headline[:80] + ("…" if len(headline) > 80 else "")),
            _shown(post.url),
        )
    out.print(table)


# Past these, a number is a typo or an attack, and SQLite cannot bind an integer over 2**63 - 1.
MAX_LIMIT = 1_000_000  # more posts than a terminal or a search shows; `export` has no limit
MAX_INTEGER = 2**63 - 1  # the largest integer both databases store: counts, ids
LimitOption = Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many posts.")]

# The filters `posts search` and `export` share (monitor.filters.PostFilter).
SinceOption = Annotated[
    str | None, typer.Option(help="Published since (2026-11-01, 2026-11-01T08:00 or 7d).")
]
UntilOption = Annotated[
    str | None, typer.Option(help="Published before (a date means its first moment, UTC).")
]
PlatformsOption = Annotated[
    list[str] | None, typer.Option("--platform", help="Only this platform (repeat for several).")
]
SourcesOption = Annotated[
    list[str] | None, typer.Option("--source", help="Only this source (its key).")
]
OrganisationsOption = Annotated[
    list[str] | None, typer.Option("--organisation", help="Only this organisation.")
]
GroupsOption = Annotated[
    list[str] | None, typer.Option("--group", help="Only sources in this group.")
]
KindsOption = Annotated[list[str] | None, typer.Option("--kind", help="Only this kind of post.")]
MinEngagementOption = Annotated[
    int | None,
    typer.Option(
        min=0, max=MAX_INTEGER, help="Latest likes+reposts+replies+quotes+reactions at least."
    ),
]


def _post_filter(
    since: str | None,
    until: str | None,
    platform: list[str] | None,
    source: list[str] | None,
    organisation: list[str] | None,
    group: list[str] | None,
    kind: list[str] | None,
    min_engagement: int | None,
) -> Any:
    """The PostFilter the shared options say."""
    from monitor.filters import PostFilter

    return PostFilter(
        since=_parse_moment("--since", since) if since else None,
        until=_parse_moment("--until", until) if until else None,
        platforms=tuple(platform or ()),
        sources=tuple(source or ()),
        organisations=tuple(organisation or ()),
        groups=tuple(group or ()),
        kinds=tuple(kind or ()),
        min_engagement=min_engagement,
    )


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
    since: SinceOption = None,
    until: UntilOption = None,
    platform: PlatformsOption = None,
    source: SourcesOption = None,
    organisation: OrganisationsOption = None,
    group: GroupsOption = None,
    kind: KindsOption = None,
    min_engagement: MinEngagementOption = None,
    output: Annotated[
        str, typer.Option("--format", help="table, csv or jsonl (one JSON object a line).")
    ] = "table",
    limit: LimitOption = 20,
) -> None:
    """Search stored posts, best match first (title matches above body-only ones)."""
    from monitor.search import QueryError, search_posts

    if output not in ("table", "csv", "jsonl"):
        fail(f"--format: expected table, csv or jsonl, got {output!r}")
    chosen = _post_filter(since, until, platform, source, organisation, group, kind, min_engagement)
    config = ctx.obj.config()
    engine = ctx.obj.synced_engine()
    try:
        hits = search_posts(engine, query, chosen, limit)
    except QueryError as error:
        fail(f"search: {error}")
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
            sys.stdout.write(json.dumps(_jsonable(asdict(hit)), ensure_ascii=False) + "\n")
        return
    if not hits:
        err.print(f"no stored posts match {query!r}", markup=False)
        return
    zone = _timezone(config)
    table = Table("published", "organisation", "platform", "post", "engagement", "link")
    for hit in hits:
        post = (
            f"{hit.title}: {hit.excerpt}"
            if hit.title and hit.title not in hit.excerpt
            else hit.excerpt
        )
        # A terminal row, not the whole excerpt: --format csv or jsonl carries all of it.
        table.add_row(
            _when(hit.published_at, zone),
            _shown(hit.organisation),
            hit.platform,
            _shown(post if len(post) <= 100 else post[:99] + "…"),
            "–" if hit.engagement is None else str(hit.engagement),
            _shown(hit.url),
        )
    out.print(table)


# ---------------------------------------------------------------------------------------- digest

WeekOption = Annotated[
    str | None,
    typer.Option("--week", help="ISO week like 2026-W48 (default: the last complete week)."),
]
RecipientOption = Annotated[
    str | None, typer.Option("--recipient", help="Only this recipient (an email in the config).")
]


@digest_app.command("preview")
def digest_preview(
    ctx: typer.Context,
    week: WeekOption = None,
    recipient: RecipientOption = None,
    outbox: Annotated[
        Path | None, typer.Option(help="Folder for the files (default: the config's outbox).")
    ] = None,
) -> None:
    """Write each recipient's digest as .eml and .html files; sends and records nothing."""
    from digest.delivery import find_outbox
    from digest.load import build_digest
    from digest.mail import compose_message, write_outbox
    from digest.render import render_digest

    config = ctx.obj.config()
    chosen_week = _digest_week(config, week)
    recipients = _digest_recipients(config, recipient)
    folder = outbox or find_outbox(config)
    engine = ctx.obj.synced_engine()
    now = datetime.now(UTC)
    table = Table("recipient", "subject", "size", "note", "file")
    for written, person in enumerate(recipients):
        data = build_digest(engine, config, person, chosen_week, now=now)
        rendered = render_digest(data, config.digest)
        message = compose_message(rendered, person, config.digest, now=now)
        try:
            eml, _ = write_outbox(message, folder, week=str(chosen_week), recipient=person.email)
        except OSError as error:  # a full disk: write_outbox left no partial file
            fail(
                f"cannot write {person.email}'s digest to {folder}: "
                f"{error.strerror or error}; {written} of {len(recipients)} written",
                EXIT_FAILED,
            )
        note = "empty: would be skipped" if data.is_empty and person.skip_empty else ""
        table.add_row(person.email, rendered.subject, _kilobytes(message), note, eml.name)
    out.print(table)
    out.print(f"Wrote {len(recipients)} digests for {chosen_week} to {folder}", markup=False)


@digest_app.command("send")
def digest_send(
    ctx: typer.Context,
    week: WeekOption = None,
    recipient: RecipientOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show who would get what; send nothing.")
    ] = False,
    outbox: Annotated[
        Path | None, typer.Option(help="Deliver into this folder instead of through SMTP.")
    ] = None,
) -> None:
    """Send the week's digests, each (recipient, week) at most once; exit 1 if any failed."""
    from digest.archive import FAILED, STALE_SENDING
    from digest.delivery import deliver_digests, make_preparer, plan_delivery
    from digest.mail import MailConfigError

    config = ctx.obj.config()
    chosen_week = _digest_week(config, week)
    recipients = _digest_recipients(config, recipient)
    engine = ctx.obj.synced_engine()
    now = datetime.now(UTC)
    plan = plan_delivery(config, outbox)
    via = plan.describe()

    prepare = make_preparer(engine, config, chosen_week, now)
    if dry_run:
        _print_send_plan(
            engine, recipients, str(chosen_week), now, STALE_SENDING, prepare,
            config.digest.max_attempts,
        )  # fmt: skip
        out.print(f"Dry run for {chosen_week} via {via}: nothing sent or recorded.", markup=False)
        return
    try:
        with plan.open_transport() as transport:
            outcomes = deliver_digests(
                engine, recipients, chosen_week, config.digest, prepare=prepare,
                transport=transport, now=now,
            )  # fmt: skip
    except MailConfigError as error:
        fail(str(error))
    table = Table("recipient", "status", "subject", "attempts", "error")
    styles = {"failed": "red", "skipped": "dim"}
    for outcome in outcomes:
        status = outcome.status if outcome.by_this_run else f"{outcome.status} (earlier)"
        table.add_row(
            outcome.recipient,
            status,
            outcome.subject or "",
            str(outcome.attempts),
            _shown(outcome.error),
            style=styles.get(outcome.status),
        )
    out.print(table)
    fresh = [o for o in outcomes if o.by_this_run]
    counts = {s: sum(o.status == s for o in fresh) for s in ("sent", "skipped", "failed")}
    out.print(
        f"{chosen_week} via {via}: {counts['sent']} sent, {counts['skipped']} skipped, "
        f"{counts['failed']} failed, {len(outcomes) - len(fresh)} done earlier or in progress",
        markup=False,
    )
    if any(o.status == FAILED for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


def _print_send_plan(
    engine: Engine,
    recipients: Sequence[Any],
    week: str,
    now: datetime,
    stale_after: timedelta,
    prepare: Any,
    max_attempts: int,
) -> None:
    """--dry-run: per recipient, what a send would do, and the subject it would carry."""
    from digest.archive import decide_action, list_digests

    archived = {r.recipient: r for r in list_digests(engine, week)}
    table = Table("recipient", "would", "subject", "size")
    for person in recipients:
        action = decide_action(archived.get(person.email), now, stale_after, max_attempts)
        subject = size = ""
        if action in ("send", "retry"):
            rendered = prepare(person)
            if rendered is None:
                action = "skip (empty)"
            else:
                subject = rendered.subject
                size = f"{len(rendered.html.encode()) // 1024} KB HTML"
        elif action == "resend":
            subject = archived[person.email].subject or ""
        table.add_row(person.email, action, subject, size)
    out.print(table)


@digest_app.command("list")
def digest_list(ctx: typer.Context, week: WeekOption = None) -> None:
    """The archive of digests: who got which week's digest, when, and what failed."""
    from digest.archive import list_digests

    config = ctx.obj.config()
    chosen = str(_digest_week(config, week)) if week else None
    records = list_digests(ctx.obj.engine(), chosen)
    if not records:
        out.print(f"No digests archived{' for ' + chosen if chosen else ''}.", markup=False)
        return
    zone = _timezone(config)
    table = Table("id", "week", "recipient", "status", "subject", "sent", "attempts", "error")
    for r in records:
        table.add_row(
            str(r.id), r.week, r.recipient, r.status, _shown(r.subject), _when(r.sent_at, zone),
            str(r.attempts), _shown(r.error),
        )  # fmt: skip
    out.print(table)


@digest_app.command("show")
def digest_show(
    ctx: typer.Context,
    digest_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", min=1, max=MAX_INTEGER, help="From `list`.")
    ] = None,
    week: WeekOption = None,
    recipient: Annotated[str | None, typer.Option(help="Whose digest (with --week).")] = None,
) -> None:
    """Print an archived digest as its recipient read it (the plain-text part)."""
    from digest.archive import find_digest, read_text_part
    from monitor.text import strip_control

    config = ctx.obj.config()
    if digest_id is None and recipient is None:
        fail("give a digest ID (see `omvarld digest list`) or --recipient EMAIL [--week]")
    chosen = str(_digest_week(config, week))
    engine = ctx.obj.engine()
    if digest_id is not None:
        record = find_digest(engine, digest_id=digest_id)
        missing = f"no digest with id {digest_id}; `omvarld digest list` shows the archive"
    else:
        record = find_digest(engine, recipient=recipient, week=chosen)
        missing = f"no digest for {recipient} in {chosen}; `omvarld digest list` shows the archive"
    if record is None:
        fail(missing)
    zone = _timezone(config)
    out.print(f"Digest {record.id}: {record.recipient}, {record.week}", markup=False)
    out.print(f"Status: {record.status} (sent {_when(record.sent_at, zone)})", markup=False)
    if record.error:
        out.print(Text("Error: ") + _shown(record.error))
    if record.message is None:
        out.print("No message archived (nothing was composed).")
        return
    out.print(Text("Subject: ") + _shown(record.subject))
    out.print("")
    # Digests archived before ingest removed control characters carry them in their text.
    sys.stdout.write(strip_control(read_text_part(record.message)))


def _digest_week(config: Config, text: str | None) -> Any:
    """The --week as a Week, by default the last complete week in the digest's time zone."""
    from digest.model import Week

    if text is None:
        return Week.previous(datetime.now(UTC), config.digest.timezone)
    try:
        return Week.parse(text, config.digest.timezone)
    except ValueError:
        fail(f"--week: expected an ISO week like 2026-W48, got {text!r}")


def _digest_recipients(config: Config, email: str | None) -> list[Any]:
    """The configured recipients, or the one --recipient names."""
    from digest.load import recipients_from_config

    recipients = recipients_from_config(config)
    if not recipients:
        fail(f"{config.path}: no [[recipients]] configured; add one to send digests")
    if email is None:
        return recipients
    chosen = [r for r in recipients if r.email.lower() == email.lower()]
    if not chosen:
        fail(f"--recipient: {email} is not among the [[recipients]] in {config.path}")
    return chosen


def _kilobytes(message: Any) -> str:
    return f"{len(message.as_bytes()) / 1024:.0f} KB"


# ----------------------------------------------------------------------- retention, erase, audit

retention_app = typer.Typer(help="Apply the [retention] settings.", **PLAIN_HELP)
app.add_typer(retention_app, name="retention")


@retention_app.command("apply")
def retention_apply(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change and log nothing.")
    ] = False,
) -> None:
    """Delete old posts, drop old raw payloads and thin old counts as [retention] says."""
    from monitor.audit import current_user
    from monitor.retention import apply_retention, describe_cutoffs

    config = ctx.obj.config()
    if not config.retention.enabled:
        out.print(f"{config.path}: no [retention] settings, so everything is kept.", markup=False)
        return
    report = apply_retention(
        ctx.obj.engine(), config.retention, datetime.now(UTC), actor=current_user(),
        dry_run=dry_run,
    )  # fmt: skip
    table = Table("table", "would be" if dry_run else "change", "rows")
    for name, changes in report.counts.items():
        for what, rows in changes.items():
            table.add_row(name, what.replace("_", " "), f"{rows:,}")
    out.print(table)
    out.print(f"Cutoffs: {describe_cutoffs(report.cutoffs)}", markup=False)
    if dry_run:
        out.print("Dry run: nothing was changed or logged.")
    else:
        out.print(f"Done in {report.seconds:.1f} s; audit entry {report.audit_id}.")


@app.command("erase")
def erase(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit log (e.g. a request's reference).")
    ],
    post: Annotated[
        int | None, typer.Option("--post", min=1, max=MAX_INTEGER, help="The post's id.")
    ] = None,
    author: Annotated[
        str | None, typer.Option("--author", help="Every post by this author (with or without @).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a post, or every post of an author: content, revisions and counts go; an empty row
    stays so that the next collection does not store the post again."""
    from monitor.audit import current_user
    from monitor.retention import (
        erase_author,
        erase_post,
        find_author_post_ids,
        list_erasure_candidates,
    )

    if (post is None) == (author is None):
        fail("give either --post ID or --author HANDLE")
    if not reason.strip():
        fail("--reason: say why; it is kept in the audit log")
    engine = ctx.obj.engine()
    if author is not None:
        with engine.connect() as connection:
            ids = find_author_post_ids(connection, author)
        if not ids:
            out.print(f"No stored post is by {author}: nothing to erase.", markup=False)
            return
    else:
        assert post is not None
        ids = [post]
    candidates = list_erasure_candidates(engine, ids)
    if not candidates:
        fail(f"--post: no post with id {post}")
    if all(c.erased_at for c in candidates):
        out.print(f"Post {post} was already erased on {candidates[0].erased_at:%Y-%m-%d}.")
        return
    if not yes:
        _print_erasure_plan(candidates)
        revisions = sum(c.revisions for c in candidates)
        metrics = sum(c.metrics for c in candidates)
        question = (
            f"Erase {len(candidates)} posts, deleting {revisions} earlier versions and {metrics} "
            "rows of counts? This cannot be undone"
        )
        if not typer.confirm(question, default=False):
            out.print("Nothing erased.")
            raise typer.Exit(EXIT_FAILED)
    now, actor = datetime.now(UTC), current_user()
    if author is not None:
        report = erase_author(engine, author, reason=reason, actor=actor, now=now)
    else:
        assert post is not None
        report = erase_post(engine, post, reason=reason, actor=actor, now=now)
    counts = report.counts
    out.print(
        f"Erased {_count(report.posts_erased, 'post')} ({report.target}): "
        f"{counts.get('post_revisions', {}).get('deleted', 0)} earlier versions and "
        f"{counts.get('post_metrics', {}).get('deleted', 0)} rows of counts deleted; "
        f"audit entry {report.audit_id}.",
        markup=False,
    )


def _print_erasure_plan(candidates: Sequence[Any]) -> None:
    table = Table("id", "source", "published", "author", "post", "versions", "counts")
    for c in candidates:
        headline = c.headline[:60] + ("…" if len(c.headline) > 60 else "")
        table.add_row(
            str(c.id), c.source_key, f"{c.published_at:%Y-%m-%d}", c.author or "", headline,
            str(c.revisions), str(c.metrics),
        )  # fmt: skip
    out.print(table)


@app.command("audit")
def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Only entries since (YYYY-MM-DD or a span like 30d).")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action: retention, erase, …")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The audit log: every retention run and erasure, who ran it, why, and the rows affected."""
    from monitor.audit import list_audit

    config = ctx.obj.config()
    start = _parse_moment("--since", since) if since else None
    entries = list_audit(ctx.obj.engine(), since=start, action=action)
    if as_json:
        records = [_jsonable(e.__dict__) for e in entries]
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    if not entries:
        out.print("The audit log has no entries" + (" that match." if since or action else "."))
        return
    zone = _timezone(config)
    table = Table("id", "at", "action", "target", "reason", "actor", "rows")
    for e in entries:
        table.add_row(
            str(e.id), _when(e.at, zone), e.action, e.target, e.reason or "", e.actor or "",
            _describe_counts(e.counts),
        )  # fmt: skip
    out.print(table)


def _describe_counts(counts: dict[str, Any]) -> str:
    """`posts erased 1; post_metrics deleted 3` from an audit entry's counts (per table, and
    per kind of change where the writer says)."""
    parts = []
    for name, value in counts.items():
        if isinstance(value, dict):
            parts += [f"{name} {what.replace('_', ' ')} {n:,}" for what, n in value.items()]
        else:
            parts.append(f"{name} {value:,}" if isinstance(value, int) else f"{name} {value}")
    return "; ".join(parts)


# ------------------------------------------------------------------------------ export, archive

archive_app = typer.Typer(
    help="Write a source's records archive, and check one for changes.", **PLAIN_HELP
)
app.add_typer(archive_app, name="archive")

EXPORT_DATASETS = ("posts", "metrics")
EXPORT_FORMATS = ("csv", "jsonl", "parquet")


@app.command("export")
def export(
    ctx: typer.Context,
    what: Annotated[
        str,
        typer.Argument(
            metavar="posts|metrics",
            help="posts: a row per post with its latest counts; metrics: a row per observation.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--out", help="File to write; it appears (or is replaced) only once complete."
        ),
    ],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="csv, jsonl or parquet (default: from --out's extension)."),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    platform: PlatformsOption = None,
    source: SourcesOption = None,
    organisation: OrganisationsOption = None,
    group: GroupsOption = None,
    kind: KindsOption = None,
    min_engagement: MinEngagementOption = None,
) -> None:
    """Export stored posts, or their engagement history, with a data dictionary beside the
    file (FILE.dictionary.json: columns, filters, rows, SHA-256). Erased posts are left out."""
    from monitor.config import PLATFORMS
    from monitor.export import Dataset, ExportError, ExportFormat, dictionary_path, export_dataset
    from monitor.types import KINDS

    if what not in EXPORT_DATASETS:
        fail(f"export: expected posts or metrics, got {what!r}")
    chosen_format = file_format or output.suffix.lstrip(".").lower()
    if chosen_format not in EXPORT_FORMATS:
        fail(
            f"--format: expected csv, jsonl or parquet, got {file_format!r}"
            if file_format
            else f"--format: give csv, jsonl or parquet ({output.name} does not say which)"
        )
    _check_known("--platform", platform, PLATFORMS)
    _check_known("--kind", kind, KINDS)
    chosen = _post_filter(since, until, platform, source, organisation, group, kind, min_engagement)
    _refuse_own_files(ctx.obj.config(), "--out", output, dictionary_path(output))
    engine = ctx.obj.synced_engine()
    _check_source_keys(engine, source or [])
    try:
        with _sigterm_as_interrupt():
            dataset, export_format = Dataset(what), ExportFormat(chosen_format)
            result = export_dataset(engine, dataset, chosen, export_format, output)
    except ExportError as error:
        fail(str(error))
    except OSError as error:
        fail(f"export to {output} failed: {error}; nothing was written", EXIT_FAILED)
    out.print(
        f"Exported {result.rows:,} {'posts' if what == 'posts' else 'observations'} to "
        f"{result.path} ({chosen_format}, {_size(result.bytes)}); data dictionary: "
        f"{result.dictionary_path}",
        markup=False,
    )


@archive_app.command("export")
def archive_export(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--source", help="The source's key.")],
    output: Annotated[
        Path, typer.Option("--out", help="A new or empty directory for the archive.")
    ],
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Write one source's posts, earlier versions, raw payloads and counts, with a manifest and
    SHA256SUMS, to DIR; the export is recorded in the audit log."""
    from monitor.records import ArchiveError, export_archive

    start = _parse_moment("--since", since) if since else None
    end = _parse_moment("--until", until) if until else None
    engine = ctx.obj.synced_engine()
    try:
        with _sigterm_as_interrupt():
            result = export_archive(engine, source, output, since=start, until=end)
    except ArchiveError as error:
        fail(str(error))
    except OSError as error:
        fail(f"archive to {output} failed: {error}; nothing was written", EXIT_FAILED)
    counts = ", ".join(f"{f.name} {f.records:,}" for f in result.files)
    erased = f"; {result.erased_left_out} erased posts left out" if result.erased_left_out else ""
    out.print(f"Archived {source} to {result.directory}: {counts}{erased}", markup=False)
    out.print(f"Check it any time with: omvarld archive verify {result.directory}", markup=False)


@archive_app.command("verify")
def archive_verify(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="An archive written by `archive export`.")
    ],
) -> None:
    """Recompute every file's SHA-256 and name each altered, missing, extra or refused (not a
    regular file) file, and compare the manifest with the export in the audit log (exit 1)."""
    from monitor.records import ArchiveError, verify_archive

    # Without a configuration (an archive checked on another machine) the files are still
    # checked against each other; only the audit log's record is out of reach.
    engine = ctx.obj.engine() if ctx.obj.config_path.exists() else None
    try:
        report = verify_archive(directory, engine)
    except ArchiveError as error:
        fail(str(error))
    for problem in report.problems:
        out.print(str(problem), markup=False)
    if report.problems:
        out.print(
            f"{directory}: {_count(len(report.problems), 'problem')};"
            " the archive is not as written",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILED)
    out.print(f"verified {report.checked} files in {directory}", markup=False)
    out.print(
        report.provenance or f"{ctx.obj.config_path} not found: not checked against an audit log",
        markup=False,
    )


def _check_known(option: str, values: list[str] | None, known: Sequence[str]) -> None:
    unknown = [v for v in values or () if v not in known]
    if unknown:
        fail(
            f"{option}: unknown {', '.join(map(repr, unknown))}; expected one of {', '.join(known)}"
        )


def _check_source_keys(engine: Engine, keys: Sequence[str]) -> None:
    """A mistyped --source fails loudly instead of exporting nothing."""
    import sqlalchemy as sa

    from monitor.models import sources

    if not keys:
        return
    with engine.connect() as connection:
        known = set(connection.scalars(sa.select(sources.c.key).where(sources.c.key.in_(keys))))
    unknown = [k for k in keys if k not in known]
    if unknown:
        fail(
            f"--source: no source with key {', '.join(map(repr, unknown))};"
            " `omvarld sources list --inactive` shows them"
        )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let `kill` (or a cron timeout) stop an export like Ctrl-C does: the half-written
    temporary file is removed on the way out instead of staying on disk."""
    import signal

    def interrupt(_signal: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _count(number: int, noun: str) -> str:
    """'1 post', '2 posts'."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"


# --------------------------------------------------------------------------------------- helpers


def _timezone(config: Config) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(config.digest.timezone)  # validated with the config


def _when(moment: datetime | None, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "–"


def _parse_moment(option: str, value: str) -> datetime:
    from monitor.filters import parse_moment

    try:
        return parse_moment(value, datetime.now(UTC))
    except ValueError as error:
        fail(f"{option}: {error}")
    except OverflowError:  # 99999999d back, or 9999-12-31 at -23:59 moved to UTC
        fail(f"{option}: {value!r} reaches past the dates this can handle (years 1 to 9999)")


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else list(v) if isinstance(v, tuple) else v
        for k, v in values.items()
    }


def main() -> None:
    """The console script: every way a command ends is an exit code and at most one line on
    stderr; a traceback only with -v."""
    import sqlalchemy as sa

    try:
        # Not standalone: Typer would print a usage mistake as a framed panel of several lines.
        code = app(standalone_mode=False)
    except typer.TyperException as error:  # Click's usage errors, raised before a command runs
        sys.exit(_report_usage_error(error))
    except typer.Abort:  # Ctrl-D at a confirmation prompt
        err.print("Aborted.")
        sys.exit(EXIT_FAILED)
    except sa.exc.SQLAlchemyError as error:
        # The database went away or refused mid-command: one line, not a traceback.
        from monitor.db import first_line

        _print_traceback_if_verbose()
        err.print(f"error: database: {_one_line(first_line(error))}", markup=False)
        sys.exit(EXIT_FAILED)
    except Exception as error:
        _print_traceback_if_verbose()
        message = _one_line(str(error)) or type(error).__name__
        err.print(f"internal error: {message}; run with -v for details", markup=False)
        sys.exit(EXIT_FAILED)
    # A command returns None; an Exit (ours, or Ctrl-C's 130) comes back as its code.
    sys.exit(code if isinstance(code, int) else 0)


def _report_usage_error(error: Any) -> int:
    """One line naming the option and what is wrong with it, and where the help is."""
    # The help that `omvarld posts` (no command) asks for is already printed; checked by name
    # as Typer itself does, the class being internal to it.
    if type(error).__name__ != "NoArgsIsHelpError":
        message = _one_line(error.format_message())
        context = getattr(error, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        err.print(f"error: {message}{hint}", markup=False)
    return int(getattr(error, "exit_code", EXIT_USAGE))


def _one_line(text: str) -> str:
    """An error's text on one line, without control characters: a database or a library may
    quote stored text, or the input, in its message."""
    from monitor.text import strip_control

    return " ".join(strip_control(text).split())


def _print_traceback_if_verbose() -> None:
    # -v (and `run`, which logs each step) set the log to INFO: the place for the details.
    if logging.getLogger().isEnabledFor(logging.INFO):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":
    main()
