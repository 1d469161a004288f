"""`omvarld config check`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from monitor.cli.common import EXIT_USAGE, PLAIN_HELP, err, out, plural
from monitor.cli.root import app

if TYPE_CHECKING:
    from monitor.config import Config

config_app = typer.Typer(help="Check the configuration.", **PLAIN_HELP)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration and summarise its sources."""
    from collections import Counter

    from digest.delivery import describe_delivery
    from digest.links import describe_web_links
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
    links, links_warning = describe_web_links(config)
    if links:
        out.print(links, markup=False)
    if links_warning:
        err.print(links_warning, markup=False)
    if config.alerts and not check_alert_channels(config):
        raise typer.Exit(EXIT_USAGE)


def check_alert_channels(config: Config) -> bool:
    """Summarise the alert rules and check each channel's URL with Apprise, one line per
    problem; False when a URL cannot be used. An unset notify_env variable is a warning: the
    service's environment may have it where this shell does not."""
    import os
    from collections import Counter

    from monitor.alerts.deliver import check_url

    usable = True
    for position, rule in enumerate(config.alerts, 1):
        where = f"{config.path}: alerts[{position}]"
        for index, url in enumerate(rule.notify, 1):
            reason = check_url(url)
            if reason:
                err.print(f"{where}.notify[{index}]: {reason}", markup=False)
                usable = False
        for name in rule.notify_env:
            value = os.environ.get(name, "").strip()
            if not value:
                err.print(
                    f"{where}.notify_env: warning: {name} is not set here; alerts to it fail"
                    " until the service's environment sets it",
                    markup=False,
                )
            elif reason := check_url(value):
                err.print(f"{where}.notify_env: the URL in {name}: {reason}", markup=False)
                usable = False
    kinds = Counter(rule.kind for rule in config.alerts)
    described = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    channels = sum(len(r.notify) + len(r.notify_env) for r in config.alerts)
    counted = f"{plural(len(config.alerts), 'rule')} ({described}), {plural(channels, 'channel')}"
    out.print(f"Alerts: {counted}", markup=False)
    return usable
