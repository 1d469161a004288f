"""Where digests go: one rule for the scheduled send, `digest send`, `digest preview` and
`config check`, so that what `config check` promises is what Monday does.

The rule: `[smtp]` in the configuration means mail; without it digests are written to the outbox
folder (`[digest] outbox`, default `outbox/` beside the configuration), where nobody receives
them. `digest send --outbox DIR` delivers into DIR instead; `digest preview` always writes files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from digest.mail import MailConfigError, OutboxSender, SmtpSender, Transport, read_smtp_password
from monitor.config import Config, SmtpConfig

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
