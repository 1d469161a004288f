"""Delivering a week's digests: where they go, and the batch that claims, builds, archives and
sends each one at most once.

Where: one rule for the scheduled send, `digest send`, `digest preview` and `config check`, so
that what `config check` promises is what Monday does.

The rule: `[smtp]` in the configuration means mail; without it digests are written to the outbox
folder (`[digest] outbox`, default `outbox/` beside the configuration), where nobody receives
them. `digest send --outbox DIR` delivers into DIR instead; `digest preview` always writes files.

The batch: `deliver_digests` claims each (recipient, week) in the `digests` table before building
it (see digest/archive.py for why that makes sending idempotent), so only the claimer builds and
sends. The message itself, SMTP and the outbox files are digest/mail.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import Engine

from digest.archive import (
    FAILED,
    SENT,
    SKIPPED,
    STALE_SENDING,
    archive_message,
    claim_digest,
    find_digest,
    parse_message,
    record_outcome,
)
from digest.mail import (
    DeliveryError,
    MailConfigError,
    OutboxSender,
    RenderedMail,
    SmtpSender,
    Transport,
    compose_message,
    read_smtp_password,
)
from digest.model import Recipient, Week
from digest.optouts import OptOut, find_opt_out, list_opt_outs
from monitor.config import Config, DigestConfig, SmtpConfig

log = logging.getLogger(__name__)

# An outcome's status for a recipient who unsubscribed: no row in `digests`, nothing sent.
UNSUBSCRIBED = "unsubscribed"

DEFAULT_OUTBOX = "outbox"

WEEKDAYS = {
    "mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
    "sat": "Saturday", "sun": "Sunday",
}  # fmt: skip


@dataclass(frozen=True)
class DeliveryPlan:
    """How this run delivers: through `smtp`, or into the `outbox` folder."""

    kind: Literal["smtp", "outbox"]
    outbox: Path  # the folder for files: outbox delivery, and `digest preview`
    smtp: SmtpConfig | None  # set when kind is "smtp"

    def describe(self) -> str:
        """`SMTP smtp.example.se:587 (starttls)` or `outbox folder outbox`, for summaries."""
        if self.smtp is not None:
            return f"SMTP {self.smtp.host}:{self.smtp.port} ({self.smtp.security})"
        return f"outbox folder {self.outbox}"

    @contextmanager
    def open_transport(self) -> Iterator[Transport]:
        """The transport, closed (the SMTP session ended) on the way out.

        Raises:
            MailConfigError: `[smtp]` cannot work as configured; nothing was sent.
        """
        if self.smtp is None:
            yield OutboxSender(self.outbox)
            return
        with SmtpSender(self.smtp) as sender:
            yield sender


def smtp_configured(config: Config) -> bool:
    """Whether the file has an `[smtp]` table: the model fills in a default one either way."""
    return "smtp" in config.model_fields_set


def find_outbox(config: Config) -> Path:
    """The outbox folder, relative paths taken from the configuration file's folder."""
    return config.path.parent / (config.digest.outbox or DEFAULT_OUTBOX)


def plan_delivery(config: Config, outbox: Path | None = None) -> DeliveryPlan:
    """The one rule (see the module's docstring); `outbox` is an explicit `--outbox DIR`."""
    if outbox is not None:
        return DeliveryPlan("outbox", outbox, None)
    if smtp_configured(config):
        return DeliveryPlan("smtp", find_outbox(config), config.smtp)
    return DeliveryPlan("outbox", find_outbox(config), None)


def describe_schedules(config: Config) -> str:
    """`every Monday 07:00 Europe/Stockholm`, or several send times joined with "and"."""
    schedules = dict.fromkeys(r.schedule or config.digest.schedule for r in config.recipients)
    if not schedules:
        schedules = {config.digest.schedule: None}
    times = [f"{WEEKDAYS[s.split()[0]]} {s.split()[1]}" for s in schedules]
    return f"every {' and '.join(times)} {config.digest.timezone}"


def describe_delivery(config: Config) -> tuple[str, str | None]:
    """`config check`'s line saying where digests go, and a warning when recipients are
    configured but nothing would reach them (None when something would)."""
    plan = plan_delivery(config)
    count = len(config.recipients)
    if not count:
        return "Digests: none — no [[recipients]]", None
    people = f"{count} recipient" + ("" if count == 1 else "s")
    if plan.smtp is not None:
        smtp = plan.smtp
        line = (
            f"Digests: mailed through {smtp.host}:{smtp.port} ({smtp.security}) "
            f"{describe_schedules(config)} to {people}"
        )
    else:
        line = f"Digests: written to {plan.outbox}/ {describe_schedules(config)} for {people}"
        line += " — no [smtp]"
    if plan.smtp is None:
        return line, (
            f"warning: no digest reaches the {people}: without [smtp] they are only written "
            f"to {plan.outbox}/; add [smtp] to mail them"
        )
    try:
        read_smtp_password(plan.smtp)
    except MailConfigError as error:
        return line, f"warning: no digest reaches the {people}: {error}"
    return line, None


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one recipient's digest in a run."""

    recipient: str
    week: str
    status: str  # the row's status after the run: sent | failed | skipped | sending; or
    # UNSUBSCRIBED (no row: the recipient opted out, see `opt_out`)
    by_this_run: bool  # False: left alone, done earlier or being sent by another sender
    subject: str | None = None
    error: str | None = None
    attempts: int = 0
    opt_out: OptOut | None = None


# Builds and renders one recipient's digest, given the id of its claimed `digests` row (None
# when nothing is claimed: a dry run); None when there is nothing to send.
Prepare = Callable[[Recipient, int | None], RenderedMail | None]


def make_preparer(engine: Engine, config: Config, week: Week, now: datetime) -> Prepare:
    """`prepare` for `deliver_digests` from digest.load and digest.render: None for an empty
    digest when the recipient set `skip_empty`. Shared by `digest send` and the scheduler.

    With `[web] public_url` the digest links into the web app; the digest id makes its "view
    in browser" link, which is why it is rendered only after the claim.
    """
    from digest.links import make_web_links
    from digest.load import make_digest_builder
    from digest.render import render_digest
    from monitor.tokens import read_secret

    # The week's data is loaded once, at the first digest this run actually claims.
    build = make_digest_builder(engine, config, week, now=now)
    secret = read_secret(config)

    def prepare(recipient: Recipient, digest_id: int | None) -> RenderedMail | None:
        data = build(recipient)
        if data.is_empty and recipient.skip_empty:
            return None
        web = make_web_links(config.web, secret, recipient.email, digest_id)
        return render_digest(data, config.digest, web)

    return prepare


def deliver_digests(
    engine: Engine,
    recipients: Sequence[Recipient],
    week: Week,
    settings: DigestConfig,
    *,
    prepare: Prepare,
    transport: Transport,
    now: datetime | None = None,
    stale_after: timedelta = STALE_SENDING,
) -> list[DeliveryOutcome]:
    """Claim, build, archive and send each recipient's digest for `week`, at most once.

    A recipient who unsubscribed (digest/optouts.py) is passed over before any claim: no row,
    no mail, an UNSUBSCRIBED outcome. `prepare` builds and renders one digest, or returns None
    when there is nothing to send (recorded `skipped`). It runs only for digests this call has
    claimed.
    """
    now = now or datetime.now(UTC)
    opt_outs = list_opt_outs(engine)
    outcomes = []
    for recipient in recipients:
        opt_out = find_opt_out(opt_outs, recipient.email)
        if opt_out is not None:
            outcomes.append(
                DeliveryOutcome(recipient.email, str(week), UNSUBSCRIBED, False, opt_out=opt_out)
            )
            continue
        outcomes.append(
            _deliver_one(
                engine, recipient, str(week), settings, prepare, transport, now, stale_after
            )
        )
    return outcomes


def _deliver_one(
    engine: Engine,
    recipient: Recipient,
    week: str,
    settings: DigestConfig,
    prepare: Prepare,
    transport: Transport,
    now: datetime,
    stale_after: timedelta,
) -> DeliveryOutcome:
    claim = claim_digest(
        engine,
        recipient.email,
        week,
        now,
        stale_after=stale_after,
        max_attempts=settings.max_attempts,
    )
    if claim is None:
        record = find_digest(engine, recipient=recipient.email, week=week)
        assert record is not None  # a claim fails only on an existing row; rows are never deleted
        return DeliveryOutcome(
            recipient.email, week, record.status, False, record.subject, record.error,
            record.attempts,
        )  # fmt: skip

    def close(status: str, subject: str | None, error: str | None = None) -> DeliveryOutcome:
        record_outcome(engine, claim, status, datetime.now(UTC), error)
        return DeliveryOutcome(recipient.email, week, status, True, subject, error, claim.attempts)

    if claim.message is not None:
        message = parse_message(claim.message)  # an interrupted send: the same message again
        subject = str(message["Subject"])
    else:
        try:
            rendered = prepare(recipient, claim.id)
            if rendered is None:
                return close(SKIPPED, None)
            message = compose_message(rendered, recipient, settings, now=datetime.now(UTC))
        except Exception as error:  # a bug in building must not stop the other recipients
            log.exception("%s %s: building the digest failed", recipient.email, week)
            return close(FAILED, None, f"building the digest failed: {error!r}")
        subject = rendered.subject
        archive_message(
            engine, claim, subject=subject, message=message, message_id=message["Message-ID"]
        )
    try:
        transport.deliver(message, week=week, recipient=recipient.email)
    except DeliveryError as error:
        log.warning("%s %s: not delivered: %s", recipient.email, week, error)
        return close(FAILED, subject, str(error))
    return close(SENT, subject)
