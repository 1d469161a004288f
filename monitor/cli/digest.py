"""`omvarld digest preview|send|list|show|resubscribe`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from monitor.cli.common import EXIT_FAILED, MAX_INTEGER, PLAIN_HELP, fail, out, shown, when, zone_of
from monitor.cli.root import app

if TYPE_CHECKING:
    from digest.archive import PlannedSend
    from monitor.config import Config

digest_app = typer.Typer(help="Preview, send and read the weekly digests.", **PLAIN_HELP)
app.add_typer(digest_app, name="digest")


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
    from digest.links import make_web_links
    from digest.load import build_digest
    from digest.mail import compose_message, write_outbox
    from digest.optouts import describe_opt_out, find_opt_out, list_opt_outs
    from digest.render import render_digest
    from monitor.tokens import read_secret

    config = ctx.obj.config()
    chosen_week = _digest_week(config, week)
    recipients = _digest_recipients(config, recipient)
    folder = outbox or find_outbox(config)
    engine = ctx.obj.synced_engine()
    now = datetime.now(UTC)
    secret = read_secret(config)
    opt_outs = list_opt_outs(engine)
    table = Table("recipient", "subject", "size", "note", "file")
    for written, person in enumerate(recipients):
        data = build_digest(engine, config, person, chosen_week, now=now)
        # No digest is claimed, so no "view in browser": there is no archived message to view.
        web = make_web_links(config.web, secret, person.email)
        rendered = render_digest(data, config.digest, web)
        message = compose_message(rendered, person, config.digest, now=now)
        try:
            eml, _ = write_outbox(message, folder, week=str(chosen_week), recipient=person.email)
        except OSError as error:  # a full disk: write_outbox left no partial file
            fail(
                f"cannot write {person.email}'s digest to {folder}: "
                f"{error.strerror or error}; {written} of {len(recipients)} written",
                EXIT_FAILED,
            )
        opt_out = find_opt_out(opt_outs, person.email)
        if opt_out is not None:
            note = f"{describe_opt_out(opt_out, config.digest.timezone)}: would be skipped"
        else:
            note = "empty: would be skipped" if data.is_empty and person.skip_empty else ""
        table.add_row(
            shown(person.email), shown(rendered.subject), _kilobytes(message), note, eml.name
        )
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
    from digest.archive import FAILED, plan_sends
    from digest.delivery import UNSUBSCRIBED, deliver_digests, make_preparer, plan_delivery
    from digest.mail import MailConfigError
    from digest.optouts import describe_opt_out, list_opt_outs

    config = ctx.obj.config()
    chosen_week = _digest_week(config, week)
    recipients = _digest_recipients(config, recipient)
    engine = ctx.obj.synced_engine()
    now = datetime.now(UTC)
    plan = plan_delivery(config, outbox)
    via = plan.describe()

    prepare = make_preparer(engine, config, chosen_week, now)
    if dry_run:
        plans = plan_sends(
            engine,
            recipients,
            str(chosen_week),
            now,
            prepare,
            opt_outs=list_opt_outs(engine),
            timezone=config.digest.timezone,
            max_attempts=config.digest.max_attempts,
        )
        _print_send_plan(plans)
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
        if outcome.opt_out is not None:
            status = f"skipped ({describe_opt_out(outcome.opt_out, config.digest.timezone)})"
        elif outcome.by_this_run:
            status = outcome.status
        else:
            status = f"{outcome.status} (earlier)"
        table.add_row(
            outcome.recipient,
            status,
            outcome.subject or "",
            str(outcome.attempts),
            shown(outcome.error),
            style=styles.get(outcome.status),
        )
    out.print(table)
    fresh = [o for o in outcomes if o.by_this_run]
    counts = {s: sum(o.status == s for o in fresh) for s in ("sent", "skipped", "failed")}
    unsubscribed = sum(o.status == UNSUBSCRIBED for o in outcomes)
    earlier = len(outcomes) - len(fresh) - unsubscribed
    out.print(
        f"{chosen_week} via {via}: {counts['sent']} sent, {counts['skipped']} skipped, "
        f"{counts['failed']} failed, {earlier} done earlier or in progress"
        + (f"; {unsubscribed} unsubscribed" if unsubscribed else ""),
        markup=False,
    )
    if any(o.status == FAILED for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


def _print_send_plan(plans: Sequence[PlannedSend]) -> None:
    table = Table("recipient", "would", "subject", "size")
    for plan in plans:
        size = "" if plan.html_bytes is None else f"{plan.html_bytes // 1024} KB HTML"
        table.add_row(plan.recipient, plan.action, plan.subject, size)
    out.print(table)


@digest_app.command("list")
def digest_list(ctx: typer.Context, week: WeekOption = None) -> None:
    """The archive of digests: who got which week's digest, when, and what failed; and who
    unsubscribed."""
    from digest.archive import list_digests
    from digest.optouts import list_opt_outs

    config = ctx.obj.config()
    chosen = str(_digest_week(config, week)) if week else None
    engine = ctx.obj.engine()
    records = list_digests(engine, chosen)
    zone = zone_of(config)
    if not records:
        out.print(f"No digests archived{' for ' + chosen if chosen else ''}.", markup=False)
    else:
        table = Table("id", "week", "recipient", "status", "subject", "sent", "attempts", "error")
        for r in records:
            table.add_row(
                str(r.id), r.week, r.recipient, r.status, shown(r.subject),
                when(r.sent_at, zone), str(r.attempts), shown(r.error),
            )  # fmt: skip
        out.print(table)
    opt_outs = list_opt_outs(engine)
    if opt_outs:
        unsubscribed = Table(
            "recipient",
            "unsubscribed",
            "via",
            title="Unsubscribed: no digests",
            title_justify="left",
        )
        for opt_out in opt_outs.values():
            unsubscribed.add_row(
                shown(opt_out.recipient), when(opt_out.opted_out_at, zone), opt_out.via
            )
        out.print(unsubscribed)
        out.print("`omvarld digest resubscribe EMAIL` undoes an unsubscribe.", markup=False)


@digest_app.command("resubscribe")
def digest_resubscribe(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The address that unsubscribed.")],
) -> None:
    """Undo a recipient's unsubscribe: their digests are sent again from the next send."""
    from digest.optouts import describe_opt_out, find_opt_out, list_opt_outs, remove_opt_out

    config = ctx.obj.config()
    engine = ctx.obj.engine()
    opt_out = find_opt_out(list_opt_outs(engine), email)
    if opt_out is None or not remove_opt_out(engine, email):
        fail(
            f"{email} has not unsubscribed (no opt-out recorded); "
            "`omvarld digest list` shows who has"
        )
    out.print(
        f"{opt_out.recipient} will receive digests again "
        f"(had {describe_opt_out(opt_out, config.digest.timezone)})",
        markup=False,
    )


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
    zone = zone_of(config)
    out.print(f"Digest {record.id}: {record.recipient}, {record.week}", markup=False)
    out.print(f"Status: {record.status} (sent {when(record.sent_at, zone)})", markup=False)
    if record.error:
        out.print(Text("Error: ") + shown(record.error))
    if record.message is None:
        out.print("No message archived (nothing was composed).")
        return
    out.print(Text("Subject: ") + shown(record.subject))
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
