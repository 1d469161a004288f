"""`omvarld alerts list` and `alerts test`: the rules, what they sent, and a trial message."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from monitor.cli.common import EXIT_FAILED, PLAIN_HELP, fail, out, shown, when, zone_of
from monitor.cli.root import app

alerts_app = typer.Typer(help="Alert rules ([[alerts]]) and what they sent.", **PLAIN_HELP)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="Recent deliveries shown.")
    ] = 20,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule's deliveries.")] = None,
) -> None:
    """The rules with their channels and counts, then the latest deliveries with their
    outcomes: failed ones with the error and when they are tried again."""
    from monitor.alerts.deliver import rule_channels
    from monitor.alerts.store import FAILED, list_events, tally_events

    config = ctx.obj.config()
    if rule is not None and rule not in {r.name for r in config.alerts}:
        fail(f"--rule: no [[alerts]] rule named {rule!r}")
    engine = ctx.obj.engine()
    zone = zone_of(config)
    settings = config.alerting
    tallies = tally_events(engine, settings.max_attempts)
    if not config.alerts:
        out.print("No alert rules: add [[alerts]] to the configuration (see README, Alerts).")
    else:
        rules = Table("rule", "kind", "what", "channels", "sent", "failed", "gave up")
        for configured in config.alerts:
            tally = tallies.get(configured.name)
            what = configured.query or ""
            if configured.kind == "spike":
                measured = " engagement" if configured.measure == "engagement" else ""
                what = f"×{configured.factor:g}{measured} in {configured.hours} h {what}".strip()
            elif configured.kind == "silence":
                what = f"quiet {configured.days} d"
            rules.add_row(
                Text(configured.name),
                configured.kind,
                Text(what),
                Text(", ".join(c.label for c in rule_channels(configured))),
                str(tally.sent if tally else 0),
                str(tally.failed if tally else 0),
                str(tally.given_up if tally else 0),
                style="red" if tally and tally.given_up else None,
            )
        out.print(rules)
    events = list_events(engine, limit, rule)
    if not events:
        out.print("No alerts sent yet.")
        return
    table = Table("when", "rule", "event", "channel", "status", "attempts", title="Latest")
    for event in events:
        status = event.status
        if status == FAILED:
            status = (
                f"failed, again {when(event.next_attempt_at, zone)}"
                if event.next_attempt_at
                else "failed, gave up"
            )
        table.add_row(
            when(event.created_at, zone),
            Text(event.rule),
            Text(event.event_key),
            Text(event.channel),
            status,
            str(event.attempts),
            style="red" if event.status == FAILED else None,
        )
    out.print(table)
    for event in events:
        if event.status == FAILED and event.last_error:
            line = Text(f"{event.rule} → {event.channel} ({event.event_key}): ")
            out.print(line + shown(event.last_error))


@alerts_app.command("test")
def alerts_test(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The rule's name.")],
) -> None:
    """Send a sample message through each of the rule's channels; exit 1 naming each channel
    that failed. Records nothing."""
    from monitor.alerts.deliver import Delivery, deliver_all, rule_channels
    from monitor.alerts.message import AlertWriter

    config = ctx.obj.config()
    chosen = next((r for r in config.alerts if r.name == name), None)
    if chosen is None:
        known = ", ".join(repr(r.name) for r in config.alerts) or "none are configured"
        fail(f"no [[alerts]] rule named {name!r} (rules: {known})")
    writer = AlertWriter(
        chosen.language or config.digest.language, config.digest.timezone, config.web.public_url
    )
    message = writer.test_message(chosen.name)
    channels = rule_channels(chosen)
    errors = deliver_all(
        [Delivery(c, message.title, message.body) for c in channels], config.alerting.timeout
    )
    for channel, error in zip(channels, errors, strict=True):
        if error is None:
            out.print(Text(f"{channel.label}: sent"))
        else:
            out.print(Text(f"{channel.label}: failed: ") + shown(error))
    if any(errors):
        raise typer.Exit(EXIT_FAILED)
