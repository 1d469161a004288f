"""`omvarld config check`."""

from __future__ import annotations

import typer
from rich.table import Table

from monitor.cli.common import PLAIN_HELP, err, out
from monitor.cli.root import app

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
