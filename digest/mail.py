"""Delivering digests: the MIME message, SMTP with retries, the outbox folder, and the batch.

`deliver_digests` claims each (recipient, week) in the `digests` table before building it (see
digest/archive.py for why that makes sending idempotent), so only the claimer builds and sends.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Protocol
from zoneinfo import ZoneInfo

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
from digest.links import unsubscribe_links
from digest.model import Recipient, Week
from monitor.config import Config, DigestConfig, SmtpConfig

log = logging.getLogger(__name__)

# Waits before each retry after a transient (4xx or connection) failure: four tries in all, seven
# seconds at most, short enough that a Monday batch is not held up by one greylisting relay.
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)


class RenderedMail(Protocol):
    """What `digest.render.render_digest` returns, as far as delivery needs it."""

    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def language(self) -> str: ...


class MailConfigError(Exception):
    """`[smtp]` cannot work as configured (a missing password variable); nothing was sent."""


class DeliveryError(Exception):
    """A message was not delivered. Permanent: do not retry now (a later run may)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def compose_message(
    rendered: RenderedMail, recipient: Recipient, settings: DigestConfig, *, now: datetime
) -> EmailMessage:
    """The digest as a multipart/alternative message: plain text first, then HTML.

    Clients show the last alternative they can, so HTML goes last. Both parts are UTF-8 in
    quoted-printable: 7-bit safe for any relay, and still readable in the raw message.
    """
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = Address(display_name=recipient.name or "", addr_spec=recipient.email)
    set_subject(message, rendered.subject)
    message["Date"] = format_datetime(now.astimezone(ZoneInfo(settings.timezone)))
    message["Message-ID"] = make_msgid(domain=find_sender_domain(settings.sender))
    message["List-Id"] = f"<{settings.list_id}>"
    unsubscribe = unsubscribe_links(
        settings.unsubscribe_mailto, settings.unsubscribe_url, recipient.email,
        sender=settings.sender,
    )  # fmt: skip
    if unsubscribe:
        message["List-Unsubscribe"] = ", ".join(f"<{target}>" for target in unsubscribe)
    if any(target.startswith("https://") for target in unsubscribe):
        # RFC 8058 one-click unsubscribe, which Gmail and Yahoo ask of bulk senders; it is
        # defined for https only.
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # RFC 3834: tells autoresponders not to answer. No `Precedence: bulk`: it is not a standard
    # header, Auto-Submitted says the same, and some providers file "bulk" away as promotions.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # Set after the parts: add_alternative moves every Content-* header into the first part.
    message["Content-Language"] = rendered.language
    return message


def set_subject(message: EmailMessage, subject: str) -> None:
    """Set Subject, RFC 2047-encoded with every space kept.

    Python 3.11's default policy folds a long non-ASCII subject into encoded words split at a
    space and drops that space ("nov): 2 inlägg" arrives as "nov):2 inlägg"). The older
    `email.header.Header` keeps spaces inside the encoded words; its lines are short enough
    that the policy stores them unchanged.
    """
    if subject.isascii():
        message["Subject"] = subject
        return
    encoded = Header(subject, "utf-8", header_name="Subject").encode()
    message.set_raw(*message.policy.header_source_parse([f"Subject: {encoded}\n"]))


def find_sender_domain(sender: str) -> str:
    """The domain of the From address, for Message-IDs; localhost when it has none."""
    _, address = parseaddr(sender)
    return address.rpartition("@")[2] or "localhost"


# ------------------------------------------------------------------------------------------ SMTP


def read_smtp_password(settings: SmtpConfig) -> str | None:
    """The SMTP password from the environment variable `password_env` names.

    Raises MailConfigError naming the variable (never the value) when it is missing.
    """
    if settings.username and not settings.password_env:
        raise MailConfigError(
            "[smtp] username is set but password_env is not; name the environment variable "
            "that holds the password"
        )
    if not settings.password_env:
        return None
    password = os.environ.get(settings.password_env)
    if not password:
        raise MailConfigError(
            f"[smtp] password_env: the environment variable {settings.password_env} is not set"
        )
    return password


class SmtpSender:
    """One SMTP session for a batch, opened on first use and reopened after a failure.

    A 4xx reply or a dropped connection is retried after each of `delays`; a 5xx reply is
    permanent for that message. Failing to log in, or to reach the server at all, is permanent
    for the rest of the batch: retrying every recipient would only lock the account or wait.
    """

    def __init__(
        self,
        settings: SmtpConfig,
        *,
        delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._password = read_smtp_password(settings)
        self._delays = tuple(delays)
        self._sleep = sleep
        self._smtp: smtplib.SMTP | None = None
        self._fatal: DeliveryError | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def deliver(self, message: EmailMessage, *, week: str, recipient: str) -> None:
        """Send one message to `recipient`. Raises DeliveryError when it was not accepted."""
        if self._fatal is not None:
            raise self._fatal
        waits: Iterator[float] = iter(self._delays)
        while True:
            connecting = self._smtp is None
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                    connecting = False
                self._smtp.send_message(message, to_addrs=[recipient])
                return
            except (smtplib.SMTPException, OSError) as error:
                failure = classify_smtp_error(error)
                self.close()  # a fresh session is simpler than knowing what state this one is in
            wait = next(waits, None)
            if failure.permanent or wait is None:
                if connecting:  # unreachable or refused the login: so will it for the rest
                    self._fatal = failure
                raise failure
            log.info("%s: %s; trying again in %s s", recipient, failure, wait)
            self._sleep(wait)

    def _connect(self) -> smtplib.SMTP:
        settings = self._settings
        context = ssl.create_default_context(cafile=settings.ca_file)
        log.info("connecting to %s:%s (%s)", settings.host, settings.port, settings.security)
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            if settings.security == "starttls":
                smtp.starttls(context=context)
            if settings.username:
                smtp.login(settings.username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def classify_smtp_error(error: smtplib.SMTPException | OSError) -> DeliveryError:
    """A DeliveryError saying what the server said, permanent for 5xx replies."""
    code: int | None = None
    text = str(error)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
        text = _decode(reply)
    elif isinstance(error, smtplib.SMTPResponseException):
        code, text = error.smtp_code, _decode(error.smtp_error)
    elif isinstance(error, smtplib.SMTPNotSupportedError):
        return _caused(DeliveryError(f"SMTP: {error}", permanent=True), error)
    elif isinstance(error, smtplib.SMTPServerDisconnected):
        text = f"server disconnected: {error}"
    elif isinstance(error, ssl.SSLCertVerificationError):
        # Waiting does not make a certificate trusted: permanent, and said how to fix.
        text = (
            f"the SMTP server's TLS certificate is not trusted ({error.verify_message}); "
            "for an internal CA set [smtp] ca_file"
        )
        return _caused(DeliveryError(text, permanent=True), error)
    elif isinstance(error, OSError):
        text = f"cannot reach the SMTP server: {error.strerror or error}"
    if code is None:
        return _caused(DeliveryError(text, permanent=False), error)
    return _caused(DeliveryError(f"{code} {text}", permanent=500 <= code < 600), error)


def _caused(failure: DeliveryError, error: BaseException) -> DeliveryError:
    failure.__cause__ = error
    return failure


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


@dataclass(frozen=True)
class SendResult:
    recipient: str
    error: DeliveryError | None = None


def send_messages(
    messages: Sequence[EmailMessage],
    settings: SmtpConfig,
    *,
    delays: Sequence[float] = RETRY_DELAYS,
) -> list[SendResult]:
    """Send each message to the address in its To header over one session; one result each."""
    results = []
    with SmtpSender(settings, delays=delays) as sender:
        for message in messages:
            recipient = message["To"].addresses[0].addr_spec
            try:
                sender.deliver(message, week="", recipient=recipient)
                results.append(SendResult(recipient))
            except DeliveryError as error:
                results.append(SendResult(recipient, error))
    return results


# ---------------------------------------------------------------------------------------- outbox


def name_outbox_file(week: str, recipient: str) -> str:
    """`2026-W48-anna@example.se`: a file name safe on every file system."""
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", f"{week}-{recipient}")


def write_outbox(
    message: EmailMessage, directory: Path, *, week: str, recipient: str
) -> tuple[Path, Path]:
    """Write the message as `<week>-<recipient>.eml` and its HTML part as `.html`.

    The HTML is taken from the message, so the preview is exactly what a mail client gets.
    Both files appear whole or neither does: each is written aside as `.part`, and renamed only
    once both are written; a failure (a full disk) removes the `.part` files.

    Raises:
        OSError: the folder cannot be created or written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = name_outbox_file(week, recipient)
    html_part = message.get_body(preferencelist=("html",))
    html = "" if html_part is None else str(html_part.get_content())
    eml_path, html_path = directory / f"{stem}.eml", directory / f"{stem}.html"
    files = ((eml_path, message.as_bytes()), (html_path, html.encode("utf-8")))
    partials = [path.with_name(path.name + ".part") for path, _ in files]
    try:
        for partial, (_, data) in zip(partials, files, strict=True):
            partial.write_bytes(data)
        for partial, (path, _) in zip(partials, files, strict=True):
            partial.replace(path)
    except BaseException:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise
    return eml_path, html_path


class OutboxSender:
    """Delivers into a folder instead of SMTP: for `make run`, demos and checking by eye."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def deliver(self, message: EmailMessage, *, week: str, recipient: str) -> None:
        try:
            write_outbox(message, self.directory, week=week, recipient=recipient)
        except OSError as error:
            raise DeliveryError(
                f"cannot write to {self.directory}: {error}", permanent=True
            ) from None


class Transport(Protocol):
    def deliver(self, message: EmailMessage, *, week: str, recipient: str) -> None: ...


# ----------------------------------------------------------------------------------------- batch


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one recipient's digest in a run."""

    recipient: str
    week: str
    status: str  # the row's status after the run: sent | failed | skipped | sending
    by_this_run: bool  # False: left alone, done earlier or being sent by another sender
    subject: str | None = None
    error: str | None = None
    attempts: int = 0


def make_preparer(
    engine: Engine, config: Config, week: Week, now: datetime
) -> Callable[[Recipient], RenderedMail | None]:
    """`prepare` for `deliver_digests` from digest.load and digest.render: None for an empty
    digest when the recipient set `skip_empty`. Shared by `digest send` and the scheduler."""
    from digest.load import make_digest_builder
    from digest.render import render_digest

    # The week's data is loaded once, at the first digest this run actually claims.
    build = make_digest_builder(engine, config, week, now=now)

    def prepare(recipient: Recipient) -> RenderedMail | None:
        data = build(recipient)
        if data.is_empty and recipient.skip_empty:
            return None
        return render_digest(data, config.digest)

    return prepare


def deliver_digests(
    engine: Engine,
    recipients: Sequence[Recipient],
    week: Week,
    settings: DigestConfig,
    *,
    prepare: Callable[[Recipient], RenderedMail | None],
    transport: Transport,
    now: datetime | None = None,
    stale_after: timedelta = STALE_SENDING,
) -> list[DeliveryOutcome]:
    """Claim, build, archive and send each recipient's digest for `week`, at most once.

    `prepare` builds and renders one digest, or returns None when there is nothing to send
    (recorded `skipped`). It runs only for digests this call has claimed.
    """
    now = now or datetime.now(UTC)
    outcomes = []
    for recipient in recipients:
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
    prepare: Callable[[Recipient], RenderedMail | None],
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
            rendered = prepare(recipient)
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
