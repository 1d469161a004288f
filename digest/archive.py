"""The `digests` table: who got which week's digest, the message itself, and claims on sending.

Sending is made idempotent by the table's UNIQUE (recipient, week), not by looking first: a
sender claims a digest by inserting its row (INSERT … ON CONFLICT DO NOTHING) and only the
inserter sends. Two workers, a rerun or a restarted batch therefore never both send one digest.

SMTP offers no exactly-once delivery: a process that dies between the server's "250 OK" and
marking the row `sent` leaves it `sending`, and nothing can tell whether the message went out.
Such a row is sent again only once it is older than `STALE_SENDING` (an hour; a live sender is
done with one message in seconds), and then as the archived message with its original
Message-ID, so a mail client that has it already can recognise the duplicate. We prefer a rare
duplicate after a crash to a digest silently never delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_string, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.optouts import OptOut, describe_opt_out, find_opt_out
from monitor.config import MAX_ATTEMPTS
from monitor.db import insert_for
from monitor.models import digests

if TYPE_CHECKING:
    from digest.mail import RenderedMail
    from digest.model import Recipient

# A `sending` row older than this was left by a crashed sender and may be sent again (see above).
STALE_SENDING = timedelta(hours=1)

SENDING = "sending"
SENT = "sent"
FAILED = "failed"
SKIPPED = "skipped"  # nothing to report and the recipient asked for no empty digests


@dataclass(frozen=True)
class Claim:
    """The right to send one digest, won by this sender."""

    id: int
    recipient: str
    week: str
    attempts: int
    message: str | None  # archived by an interrupted attempt: send this, not a new one


@dataclass(frozen=True)
class DigestRecord:
    """One row of the archive."""

    id: int
    recipient: str
    week: str
    status: str
    subject: str | None
    message: str | None
    message_id: str | None
    created_at: datetime
    claimed_at: datetime
    sent_at: datetime | None
    attempts: int
    error: str | None


def decide_action(
    record: DigestRecord | None,
    now: datetime,
    stale_after: timedelta,
    max_attempts: int = MAX_ATTEMPTS,
) -> str:
    """What a sender would do with a digest in this state: send, retry, resend or leave.

    `claim_digest` applies the same rules inside its SQL; this copy serves --dry-run.
    """
    if record is None:
        return "send"
    if record.status == FAILED:
        if record.attempts >= max_attempts:
            return f"leave (failed {record.attempts} times)"
        return "retry"
    if record.status == SENDING:
        return "resend" if record.claimed_at < now - stale_after else "leave (being sent)"
    return f"leave ({record.status})"


@dataclass(frozen=True)
class PlannedSend:
    """What `digest send` would do with one recipient's digest: the answer of --dry-run."""

    recipient: str
    action: str  # decide_action's, "skip (empty)" for a digest with nothing to report, or
    # "skip (unsubscribed 2026-12-06 via one-click)"
    subject: str = ""
    html_bytes: int | None = None  # of the digest as it would be composed now


def plan_sends(
    engine: Engine,
    recipients: Sequence[Recipient],
    week: str,
    now: datetime,
    prepare: Callable[[Recipient, int | None], RenderedMail | None],
    *,
    opt_outs: Mapping[str, OptOut],
    timezone: str,
    stale_after: timedelta = STALE_SENDING,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[PlannedSend]:
    """Per recipient, what a send would do and the subject it would carry; records nothing. A
    digest that would be sent is composed (`prepare`, as a send does, without a digest id:
    none is claimed) to tell an empty one. An opted-out recipient (`opt_outs`, from
    `list_opt_outs`) would be passed over, as `deliver_digests` does."""
    archived = {r.recipient: r for r in list_digests(engine, week)}
    plans = []
    for person in recipients:
        opt_out = find_opt_out(opt_outs, person.email)
        if opt_out is not None:
            plans.append(PlannedSend(person.email, f"skip ({describe_opt_out(opt_out, timezone)})"))
            continue
        record = archived.get(person.email)
        action = decide_action(record, now, stale_after, max_attempts)
        if action in ("send", "retry"):
            rendered = prepare(person, None)
            plans.append(
                PlannedSend(person.email, "skip (empty)")
                if rendered is None
                else PlannedSend(
                    person.email, action, rendered.subject, len(rendered.html.encode())
                )
            )
        elif action == "resend" and record is not None:
            plans.append(PlannedSend(person.email, action, record.subject or ""))
        else:
            plans.append(PlannedSend(person.email, action))
    return plans


def claim_digest(
    engine: Engine,
    recipient: str,
    week: str,
    now: datetime,
    *,
    stale_after: timedelta = STALE_SENDING,
    max_attempts: int = MAX_ATTEMPTS,
) -> Claim | None:
    """Claim the (recipient, week) digest for sending; None when another sender has it, or it
    failed `max_attempts` times already.

    A new digest is claimed by inserting its row; a failed one, or one left `sending` longer
    than `stale_after`, by an UPDATE whose WHERE repeats that condition, so of two concurrent
    claimers only one matches (PostgreSQL re-checks the WHERE after waiting on the row lock).
    """
    with engine.begin() as connection:
        insert = insert_for(connection)
        inserted = connection.execute(
            insert(digests)
            .values(
                recipient=recipient,
                week=week,
                status=SENDING,
                created_at=now,
                claimed_at=now,
                attempts=1,
            )
            .on_conflict_do_nothing(index_elements=["recipient", "week"])
            .returning(digests.c.id)
        ).first()
        if inserted is not None:
            return Claim(inserted.id, recipient, week, 1, None)
        reclaimed = connection.execute(
            digests.update()
            .where(
                digests.c.recipient == recipient,
                digests.c.week == week,
                sa.or_(
                    sa.and_(digests.c.status == FAILED, digests.c.attempts < max_attempts),
                    sa.and_(digests.c.status == SENDING, digests.c.claimed_at < now - stale_after),
                ),
            )
            .values(status=SENDING, claimed_at=now, attempts=digests.c.attempts + 1, error=None)
            .returning(digests.c.id, digests.c.attempts, digests.c.message)
        ).first()
    if reclaimed is None:
        return None
    return Claim(reclaimed.id, recipient, week, reclaimed.attempts, reclaimed.message)


def archive_message(
    engine: Engine, claim: Claim, *, subject: str, message: EmailMessage, message_id: str
) -> None:
    """Store the message before it is sent, so a crash leaves what was (maybe) delivered."""
    with engine.begin() as connection:
        connection.execute(
            digests.update()
            .where(digests.c.id == claim.id)
            .values(subject=subject, message=message.as_string(), message_id=message_id)
        )


def record_outcome(
    engine: Engine, claim: Claim, status: str, now: datetime, error: str | None = None
) -> None:
    """Close a claim as sent, failed or skipped."""
    values: dict[str, object] = {"status": status, "error": error}
    if status == SENT:
        values["sent_at"] = now
    with engine.begin() as connection:
        connection.execute(digests.update().where(digests.c.id == claim.id).values(**values))


def find_retryable(engine: Engine, week: str, max_attempts: int = MAX_ATTEMPTS) -> list[str]:
    """The recipients whose digest of `week` failed and may be tried again."""
    query = (
        sa.select(digests.c.recipient)
        .where(
            digests.c.week == week,
            digests.c.status == FAILED,
            digests.c.attempts < max_attempts,
        )
        .order_by(digests.c.recipient)
    )
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def list_digests(engine: Engine, week: str | None = None) -> list[DigestRecord]:
    """The archive, newest week first, then by recipient."""
    query = sa.select(digests).order_by(digests.c.week.desc(), digests.c.recipient)
    if week is not None:
        query = query.where(digests.c.week == week)
    with engine.connect() as connection:
        return [DigestRecord(**row._mapping) for row in connection.execute(query)]


def find_digest(
    engine: Engine,
    *,
    digest_id: int | None = None,
    recipient: str | None = None,
    week: str | None = None,
) -> DigestRecord | None:
    """One archived digest, by id or by recipient and week."""
    query = sa.select(digests)
    if digest_id is not None:
        query = query.where(digests.c.id == digest_id)
    else:
        query = query.where(digests.c.recipient == recipient, digests.c.week == week)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else DigestRecord(**row._mapping)


def parse_message(text: str) -> EmailMessage:
    """An archived message, parsed back."""
    parsed = message_from_string(text, policy=policy.default)
    assert isinstance(parsed, EmailMessage)  # policy.default builds EmailMessage
    return parsed


def read_text_part(text: str) -> str:
    """The plain-text part of an archived message, as the recipient reads it."""
    body = parse_message(text).get_body(preferencelist=("plain",))
    return "" if body is None else str(body.get_content())


def read_html_part(text: str) -> str | None:
    """The HTML part of an archived message exactly as mailed (the web app shows it); None for
    a message without one."""
    body = parse_message(text).get_body(preferencelist=("html",))
    return None if body is None else str(body.get_content())
