"""`omvarld export` and `archive export|verify`: stored data out, in files that can be checked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli import filters
from monitor.cli.common import (
    EXIT_FAILED,
    PLAIN_HELP,
    fail,
    out,
    parse_moment_option,
    plural,
    refuse_own_files,
    sigterm_as_interrupt,
)
from monitor.cli.root import app

if TYPE_CHECKING:
    pass


archive_app = typer.Typer(
    help="Write a source's records archive, and check one for changes.", **PLAIN_HELP
)
app.add_typer(archive_app, name="archive")

EXPORT_DATASETS = ("posts", "metrics", "source-metrics")
EXPORT_FORMATS = ("csv", "jsonl", "parquet")


@app.command("export")
def export(
    ctx: typer.Context,
    what: Annotated[
        str,
        typer.Argument(
            metavar="posts|metrics|source-metrics",
            help="posts: a row per post with its latest counts; metrics: a row per observation;"
            " source-metrics: a row per observation of an account's followers, views and posts.",
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
    since: filters.SinceOption = None,
    until: filters.UntilOption = None,
    platform: filters.PlatformsOption = None,
    source: filters.SourcesOption = None,
    organisation: filters.OrganisationsOption = None,
    group: filters.GroupsOption = None,
    kind: filters.KindsOption = None,
    min_engagement: filters.MinEngagementOption = None,
) -> None:
    """Export stored posts, their engagement history, or the accounts' own counts over time,
    with a data dictionary beside the file (FILE.dictionary.json: columns, filters, rows,
    SHA-256). Erased posts are left out."""
    from monitor.export import Dataset, ExportError, ExportFormat, dictionary_path, export_dataset

    if what not in EXPORT_DATASETS:
        fail(f"export: expected posts, metrics or source-metrics, got {what!r}")
    if what == "source-metrics" and (kind or min_engagement is not None):
        option = "--kind" if kind else "--min-engagement"
        fail(f"{option}: source-metrics are an account's counts, not posts; leave {option} out")
    chosen_format = file_format or output.suffix.lstrip(".").lower()
    if chosen_format not in EXPORT_FORMATS:
        fail(
            f"--format: expected csv, jsonl or parquet, got {file_format!r}"
            if file_format
            else f"--format: give csv, jsonl or parquet ({output.name} does not say which)"
        )
    chosen = filters.post_filter(
        since, until, platform, source, organisation, group, kind, min_engagement
    )
    refuse_own_files(ctx.obj.config(), "--out", output, dictionary_path(output))
    engine = ctx.obj.synced_engine()
    filters.check_stored(engine, chosen)
    try:
        with sigterm_as_interrupt():
            dataset, export_format = Dataset(what), ExportFormat(chosen_format)
            result = export_dataset(engine, dataset, chosen, export_format, output)
    except ExportError as error:
        fail(str(error))
    except OSError as error:
        fail(f"export to {output} failed: {error}; nothing was written", EXIT_FAILED)
    out.print(
        f"Exported {result.rows:,} {'posts' if what == 'posts' else 'observations'} to "
        f"{result.path} ({chosen_format}, {describe_size(result.bytes)}); data dictionary: "
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
    since: filters.SinceOption = None,
    until: filters.UntilOption = None,
) -> None:
    """Write one source's posts, earlier versions, raw payloads and counts, with a manifest and
    SHA256SUMS, to DIR; the export is recorded in the audit log."""
    from monitor.records import ArchiveError, export_archive

    start = parse_moment_option("--since", since) if since else None
    end = parse_moment_option("--until", until) if until else None
    engine = ctx.obj.synced_engine()
    try:
        with sigterm_as_interrupt():
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
            f"{directory}: {plural(len(report.problems), 'problem')};"
            " the archive is not as written",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILED)
    out.print(f"verified {report.checked} files in {directory}", markup=False)
    out.print(
        report.provenance or f"{ctx.obj.config_path} not found: not checked against an audit log",
        markup=False,
    )


def describe_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"
