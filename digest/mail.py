"""Mail: the digest as a MIME message, SMTP with retries, and the outbox folder.

What one message needs to leave, whatever the run; the batch (claim, build, archive, send per
recipient) is digest/delivery.py's.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Protocol
from zoneinfo import ZoneInfo

from digest.links import unsubscribe_links
from digest.model import Recipient
from monitor.config import DigestConfig, SmtpConfig

log = logging.getLogger(__name__)

# Waits before each retry after a transient (4xx or connection) failure: four tries in all, seven
# seconds at most, short enough that a Monday batch is not held up by one greylisting relay.
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)

# A line starting "From " in a quoted-printable body; see protect_from_lines.
FROM_LINE = re.compile(r"^From ", re.MULTILINE)


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
    @property
    def one_click_url(self) -> str | None: ...


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
        sender=settings.sender, one_click=rendered.one_click_url,
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
    for part in message.iter_parts():
        protect_from_lines(part)
    # Set after the parts: add_alternative moves every Content-* header into the first part.
    message["Content-Language"] = rendered.language
    return message


def protect_from_lines(part: MIMEPart) -> None:
    """Encode the F of every line starting "From " in a quoted-printable part as `=46`.

    smtplib's `send_message` writes with mbox's "From " quoting on, so such a line (the English
    "From websites and news feeds", or a soft-wrapped line of a post) arrived as ">From …",
    unlike the archived message. `=46rom` decodes to the same text and is never quoted
    (RFC 2045 6.7's own advice for mail that may pass through mbox files).
    """
    payload = part.get_payload()
    if isinstance(payload, str):
        part.set_payload(FROM_LINE.sub("=46rom ", payload))


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
