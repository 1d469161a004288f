"""Recipients who unsubscribed: the `digest_opt_outs` table (migration 0011).

Recipients stay configuration as code; an opt-out only records that a configured address asked
to stop receiving digests, when, and how (`via`: one-click, recipient page, cli). Sends skip
such recipients before claiming anything, so an opted-out address gets no mail and no row in
`digests`; `omvarld digest resubscribe` removes the record.

Addresses are stored as given (the form the config and the signed link carry) and matched
case-insensitively: `Anna@Example.se` and `anna@example.se` are one mailbox to the people who
type them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.db import insert_for
from monitor.models import digest_opt_outs

ONE_CLICK = "one-click"  # RFC 8058's POST from the mail client's own unsubscribe button
RECIPIENT_PAGE = "recipient page"  # the form on /r/{token}
CLI = "cli"


@dataclass(frozen=True)
class OptOut:
    """One recipient's standing request to receive no digests."""

    recipient: str  # as recorded
    opted_out_at: datetime
    via: str


def record_opt_out(engine: Engine, email: str, now: datetime, via: str) -> bool:
    """Record that `email` unsubscribed; True when newly recorded, False when it already was
    (in any letter case).

    Safe with concurrent callers (a mail client's one-click POST and a link scanner racing, or
    several web workers): the unique `recipient` key decides, through ON CONFLICT DO NOTHING,
    and the NOT EXISTS keeps a second spelling of the same address out. Two different spellings
    inserted in the very same instant could both land; every reader matches case-insensitively,
    so that costs a duplicate line, never a mail.
    """
    table = digest_opt_outs
    already = sa.select(table.c.id).where(sa.func.lower(table.c.recipient) == email.lower())
    with engine.begin() as connection:
        insert = insert_for(connection)
        chosen = sa.select(
            sa.literal(email, sa.Text).label("recipient"),
            sa.literal(now, table.c.opted_out_at.type).label("opted_out_at"),
            sa.literal(via, sa.Text).label("via"),
        ).where(~already.exists())
        inserted = connection.execute(
            insert(table)
            .from_select(["recipient", "opted_out_at", "via"], chosen)
            .on_conflict_do_nothing(index_elements=["recipient"])
            .returning(table.c.id)
        ).first()
    return inserted is not None


def list_opt_outs(engine: Engine) -> dict[str, OptOut]:
    """Every opt-out, keyed by the lower-cased address (look up with `find_opt_out`)."""
    table = digest_opt_outs
    query = sa.select(table.c.recipient, table.c.opted_out_at, table.c.via).order_by(
        table.c.opted_out_at, table.c.id
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    found: dict[str, OptOut] = {}
    for row in rows:
        found.setdefault(row.recipient.lower(), OptOut(row.recipient, row.opted_out_at, row.via))
    return found


def find_opt_out(opt_outs: Mapping[str, OptOut], email: str) -> OptOut | None:
    """The recipient's opt-out in `list_opt_outs`'s answer, whatever the letter case."""
    return opt_outs.get(email.lower())


def remove_opt_out(engine: Engine, email: str) -> bool:
    """Undo an opt-out (any letter case); False when none was recorded."""
    table = digest_opt_outs
    with engine.begin() as connection:
        deleted = connection.execute(
            table.delete().where(sa.func.lower(table.c.recipient) == email.lower())
        )
        return deleted.rowcount > 0


def describe_opt_out(opt_out: OptOut, timezone: str) -> str:
    """`unsubscribed 2026-12-06 via one-click`, the day in the digest's time zone."""
    day = opt_out.opted_out_at.astimezone(ZoneInfo(timezone)).date().isoformat()
    return f"unsubscribed {day} via {opt_out.via}"
