"""Helpers the platform tests share: JSON answers on the loopback server, the requests one
endpoint received, and [[sources]] tables. Contains no platform's behaviour: each fake API
stays in its platform's test module."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collectors.api import COUNTS_DAY
from monitor.models import source_metrics, sources
from tests.feedserver import FeedServer, Request, Route


def json_route(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Route:
    """An API answer: `document` as UTF-8 JSON, never revalidated (APIs send no validators)."""
    return Route(
        body=json.dumps(document, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json; charset=utf-8",
        headers=headers or {},
        validators=False,
    )


def requests_to_endpoint(server: FeedServer, path: str) -> list[Request]:
    """The requests `server` received for `path`, whatever their query strings."""
    return [r for r in server.requests if urlsplit(r.path).path == path]


def toml_value(value: str | bool | int) -> str:
    # JSON strings and booleans are TOML's too; letters like å stay as written.
    return json.dumps(value, ensure_ascii=False)


def source_table(platform: str, **fields: str | bool | int) -> str:
    """One [[sources]] table, its fields in the order given, each value quoted as TOML needs."""
    lines = ["[[sources]]", f"platform = {toml_value(platform)}"]
    lines += [f"{name} = {toml_value(value)}" for name, value in fields.items()]
    return "\n".join(lines) + "\n\n"


def account_counts(engine: Engine, key: str) -> list[tuple[int | None, int | None, int | None]]:
    """The source's `source_metrics` rows as (followers, views, posts), oldest first."""
    m = source_metrics.c
    query = (
        sa.select(m.followers, m.views, m.posts)
        .join(sources, sources.c.id == m.source_id)
        .where(sources.c.key == key)
        .order_by(m.id)
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def pass_a_day(engine: Engine, key: str) -> None:
    """Make the source's counts look read yesterday, as they are the day after a run: the next
    run asks for them again (collectors ask once a UTC day)."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with engine.begin() as connection:
        cursor = connection.execute(
            sa.select(sources.c.cursor).where(sources.c.key == key)
        ).scalar_one()
        connection.execute(
            sources.update()
            .where(sources.c.key == key)
            .values(cursor={**(cursor or {}), COUNTS_DAY: yesterday})
        )
