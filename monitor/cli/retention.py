"""`omvarld retention apply`, `erase` and `audit`: what is kept, what goes, and the record of it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from monitor.cli.common import (
    EXIT_FAILED,
    MAX_INTEGER,
    PLAIN_HELP,
    fail,
    jsonable,
    out,
    parse_moment_option,
    plural,
    when,
    zone_of,
)
from monitor.cli.root import app

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
        f"Erased {plural(report.posts_erased, 'post')} ({report.target}): "
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
    start = parse_moment_option("--since", since) if since else None
    entries = list_audit(ctx.obj.engine(), since=start, action=action)
    if as_json:
        records = [jsonable(e.__dict__) for e in entries]
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    if not entries:
        out.print("The audit log has no entries" + (" that match." if since or action else "."))
        return
    zone = zone_of(config)
    table = Table("id", "at", "action", "target", "reason", "actor", "rows")
    for e in entries:
        table.add_row(
            str(e.id), when(e.at, zone), e.action, e.target, e.reason or "", e.actor or "",
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
