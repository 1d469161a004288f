"""How much of the metered APIs is spent: read for collectors to budget with, and described in the
words `omvarld status` prints (X's reads this month against its budget, YouTube's quota units
today). The store adds what an attempt spent in the attempt's own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import api_usage
from monitor.types import ApiUsage

if TYPE_CHECKING:
    from monitor.config import Config

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
    units = usage.today.get("youtube", 0)
    if units:
        # Imported only now: the collector loads the feed parser, and only a configuration
        # that spends YouTube quota needs the default the collector itself plans with.
        from collectors.youtube import DEFAULT_DAILY_QUOTA

        quota = config.platform("youtube").daily_quota_units or DEFAULT_DAILY_QUOTA
        lines.append(f"YouTube API quota today: {units:,} of {quota:,} units")
    return lines


def read_api_usage(engine: Engine, now: datetime) -> ApiUsage:
    """What metered APIs have spent today and this month (UTC), for collectors to budget."""
    month_start = now.date().replace(day=1)
    query = sa.select(api_usage.c.platform, api_usage.c.day, api_usage.c.units).where(
        api_usage.c.day >= month_start
    )
    usage = ApiUsage()
    with engine.connect() as connection:
        for platform, day, units in connection.execute(query):
            usage.this_month[platform] = usage.this_month.get(platform, 0) + units
            if day == now.date():
                usage.today[platform] = usage.today.get(platform, 0) + units
    return usage
