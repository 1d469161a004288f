"""The audit log: one row per decision that removed or handed out data (retention, erasure, …).

Writers add their row in the same transaction as the change it records, so the log never claims
what did not happen. Nothing prunes it: it is the record of what was pruned.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.models import audit_log

# The actor of what the scheduled service does on its own.
SERVICE_ACTOR = "omvarld run"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    action: str
    target: str
    reason: str | None
    actor: str | None
    counts: dict[str, Any]


def current_user() -> str:
    """The OS user running the command, for `audit_log.actor`."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # A container user without a passwd entry or LOGNAME: still record that someone did it.
        return "unknown user"


def record_audit(
    connection: Connection,
    *,
    at: datetime,
    action: str,
    target: str,
    reason: str | None,
    actor: str | None,
    counts: dict[str, Any],
) -> int:
    """Add one audit row inside the caller's transaction; returns its id."""
    return int(
        connection.execute(
            audit_log.insert()
            .values(at=at, action=action, target=target, reason=reason, actor=actor, counts=counts)
            .returning(audit_log.c.id)
        ).scalar_one()
    )


def list_audit(
    engine: Engine, *, since: datetime | None = None, action: str | None = None
) -> list[AuditEntry]:
    """The log, oldest first, optionally from a moment on and of one action."""
    query = sa.select(audit_log).order_by(audit_log.c.at, audit_log.c.id)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    with engine.connect() as connection:
        return [
            AuditEntry(
                id=row.id,
                at=row.at,
                action=row.action,
                target=row.target,
                reason=row.reason,
                actor=row.actor,
                counts=dict(row.counts or {}),
            )
            for row in connection.execute(query)
        ]
