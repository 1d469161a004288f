"""`omvarld sources list|import-opml|export-opml`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from monitor.cli.common import (
    EXIT_FAILED,
    PLAIN_HELP,
    fail,
    out,
    plural,
    refuse_own_files,
    shown,
)
from monitor.cli.root import app

sources_app = typer.Typer(help="List, import and export sources.", **PLAIN_HELP)
app.add_typer(sources_app, name="sources")


@sources_app.command("list")
def sources_list(
    ctx: typer.Context,
    inactive: Annotated[bool, typer.Option(help="Include sources no longer configured.")] = False,
) -> None:
    """List the configured sources as stored, with their resolved ids."""
    from monitor.platforms import describe_channel
    from monitor.queries import list_source_health

    engine = ctx.obj.synced_engine()
    table = Table("key", "platform", "organisation", "address", "platform id", "groups", "state")
    for source in list_source_health(engine, now=datetime.now(UTC), include_inactive=inactive):
        state = "inactive" if not source.active else ("disabled" if not source.enabled else "")
        table.add_row(
            shown(source.key),
            describe_channel(source.platform, source.channel),
            shown(source.organisation),
            shown(source.address),
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
        str | None,
        typer.Option(
            help="Organisation for every source (default: the one each feed's title names, "
            'else "FYLL I" for you to fill in).'
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="TOML file to write (default sources/<name>.toml).")
    ] = None,
) -> None:
    """Write the feeds of an OPML file as a TOML include file of sources."""
    from monitor.config import derive_source_key
    from monitor.opml import ORGANISATION_PLACEHOLDER, OpmlError, read_opml, render_sources_toml

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
    refuse_own_files(config, "--out", target)  # a database journal need not exist yet
    if target.exists():
        fail(f"{target} exists; choose another file with --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    declared = {key: spec.name or key for key, spec in config.groups.items()}
    document = render_sources_toml(
        fresh, group=group, organisation=organisation, origin=file.name, declared_groups=declared
    )
    target.write_text(document, encoding="utf-8")
    out.print(
        f"wrote {len(fresh)} sources to {target} "
        f"({len(feeds) - len(fresh)} already configured or listed twice were left out)",
        markup=False,
    )
    placeholders = document.count(f'organisation = "{ORGANISATION_PLACEHOLDER}"')
    if placeholders:
        out.print(
            f"{plural(placeholders, 'source')} without a title naming the publisher: "
            f'replace organisation = "{ORGANISATION_PLACEHOLDER}" in {target}',
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
        refuse_own_files(config, "--out", output)
        try:
            output.write_text(document, encoding="utf-8")
        except OSError as error:
            fail(f"--out: cannot write {output}: {error.strerror or error}", EXIT_FAILED)
        out.print(f"wrote {len(feeds)} feeds to {output}", markup=False)
