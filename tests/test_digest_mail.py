"""Delivering digests to a real SMTP server on loopback: message structure, headers, retries,
permanent failures, and sending each (recipient, week) once, also under two concurrent senders."""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from digest.archive import archive_message, claim_digest, find_retryable, list_digests
from digest.delivery import DeliveryOutcome, deliver_digests
from digest.mail import MailConfigError, OutboxSender, SmtpSender, compose_message
from digest.model import Recipient, Week
from monitor.config import DigestConfig, SmtpConfig
from monitor.db import make_engine
from tests.smtpserver import Authenticator, Server, start_server

# aiosmtpd repeats it for each session of the AUTH server below.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

WEEK = Week(2026, 48)
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 07:00 in Stockholm
FAST = (0.01, 0.02, 0.04)

ANNA = Recipient("anna@example.se", "Anna Ångström")
BO = Recipient("bo@example.se", "Bo")


@dataclass(frozen=True)
class Rendered:
    """Stands in for digest.render.RenderedDigest."""

    subject: str = "Omvärldsbevakning v. 48 (23–29 nov): 1 234 inlägg, +8 %"
    html: str = '<!doctype html><html lang="sv"><body><p>Hej – veckan i korthet</p></body></html>'
    text: str = "Hej – veckan i korthet\n"
    language: str = "sv"
    one_click_url: str | None = None


def render(recipient: Recipient, digest_id: int | None) -> Rendered:
    return Rendered()


SETTINGS = DigestConfig.model_validate(
    {
        "from": "Omvärld <omvarld@kommun.example.se>",
        "list_id": "veckobrev.kommun.example.se",
        "unsubscribe_url": "https://kommun.example.se/avregistrera",
        "unsubscribe_mailto": "avregistrera@kommun.example.se",
    }
)


@pytest.fixture
def smtp_with_auth() -> Iterator[Server]:
    # Plain-text AUTH on loopback: a TLS certificate here would test ssl, not us.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        servers = start_server(
            authenticator=Authenticator(),
            auth_require_tls=False,
            auth_required=True,
            auth_exclude_mechanism=["LOGIN"],  # else smtplib tries each password twice
        )
        server = next(servers)
    yield server
    next(servers, None)


def send(
    engine: Engine,
    server: Server,
    recipients: list[Recipient],
    *,
    now: datetime = NOW,
    prepare: Any = render,
    sleeps: list[float] | None = None,
) -> list[DeliveryOutcome]:
    sleep = (sleeps if sleeps is not None else []).append
    with SmtpSender(server.settings, delays=FAST, sleep=sleep) as sender:
        return deliver_digests(
            engine, recipients, WEEK, SETTINGS, prepare=prepare, transport=sender, now=now
        )


def test_a_digest_arrives_as_text_then_html_with_every_list_header(
    engine: Engine, smtp: Server
) -> None:
    outcomes = send(engine, smtp, [ANNA])

    assert [(o.recipient, o.status) for o in outcomes] == [("anna@example.se", "sent")]
    [message] = smtp.mailbox.received
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parts[0].get_content().splitlines() == ["Hej – veckan i korthet"]
    assert "<p>Hej – veckan i korthet</p>" in parts[1].get_content()

    assert message["Subject"] == "Omvärldsbevakning v. 48 (23–29 nov): 1 234 inlägg, +8 %"
    assert message["From"].addresses[0].display_name == "Omvärld"
    assert message["To"].addresses[0].display_name == "Anna Ångström"
    assert message["Date"].endswith("+0100")  # Stockholm in November
    assert message["Message-ID"].endswith("@kommun.example.se>")
    assert message["List-Id"] == "<veckobrev.kommun.example.se>"
    assert message["List-Unsubscribe"] == (
        "<mailto:avregistrera@kommun.example.se>, <https://kommun.example.se/avregistrera>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "sv"
    assert message["Precedence"] is None


def test_a_line_starting_with_from_arrives_as_written_not_quoted(
    engine: Engine, smtp: Server
) -> None:
    # Long enough that quoted-printable wraps the HTML line and "From " starts a line of it.
    sentence = "From websites and news feeds, newest first."
    text = f"NEWS FROM THE ORGANISATIONS\n\n{sentence}\n"
    html = f"<p>{'x' * 72} {sentence}</p>"

    send(engine, smtp, [ANNA], prepare=lambda recipient, _: Rendered(text=text, html=html))

    [message] = smtp.mailbox.received
    plain, rich = (part.get_content() for part in message.iter_parts())
    assert sentence in plain.splitlines() and ">From" not in plain
    assert sentence in rich and ">From" not in rich


def test_headers_are_ascii_on_the_wire_and_the_date_follows_summer_time() -> None:
    summer = datetime(2026, 6, 15, 5, 0, tzinfo=UTC)
    message = compose_message(Rendered(), ANNA, SETTINGS, now=summer)

    raw = message.as_bytes()
    assert raw.isascii()  # names and subject RFC 2047-encoded, bodies quoted-printable
    assert message["Date"] == "Mon, 15 Jun 2026 07:00:00 +0200"


def test_a_long_subject_with_non_breaking_spaces_arrives_with_every_space(
    engine: Engine, smtp: Server
) -> None:
    # Babel writes "1 234" and "+8 %" with no-break spaces; folding once lost the space after ":".
    subject = "Omvärldsbevakning v. 47 (16–22 nov): 1\xa0234 inlägg, +100\xa0% mot veckan före"

    send(engine, smtp, [ANNA], prepare=lambda recipient, _: Rendered(subject=subject))

    [message] = smtp.mailbox.received
    assert message["Subject"] == subject
    assert list_digests(engine)[0].subject == subject


def test_one_click_unsubscribe_is_offered_only_with_an_https_url() -> None:
    for unsubscribe, one_click in [
        ({"unsubscribe_mailto": "nej@example.se"}, False),
        ({"unsubscribe_url": "http://example.se/nej"}, False),
        ({"unsubscribe_url": "https://example.se/nej"}, True),
    ]:
        settings = DigestConfig.model_validate(unsubscribe)
        message = compose_message(Rendered(), ANNA, settings, now=NOW)
        assert message["List-Unsubscribe"] is not None
        assert (message["List-Unsubscribe-Post"] is not None) is one_click
    bare = compose_message(Rendered(), ANNA, DigestConfig(), now=NOW)
    assert bare["List-Unsubscribe"] == "<mailto:omvarld@localhost?subject=unsubscribe>"
    assert bare["List-Unsubscribe-Post"] is None


def test_each_recipient_gets_an_unsubscribe_link_of_their_own() -> None:
    settings = DigestConfig.model_validate(
        {"unsubscribe_url": "https://kommun.example.se/avregistrera?vem={email}"}
    )
    for recipient, link in [
        (ANNA, "https://kommun.example.se/avregistrera?vem=anna%40example.se"),
        (Recipient("o'brien+test@example.se"),
         "https://kommun.example.se/avregistrera?vem=o%27brien%2Btest%40example.se"),
    ]:  # fmt: skip
        message = compose_message(Rendered(), recipient, settings, now=NOW)
        assert message["List-Unsubscribe"] == f"<{link}>"


def test_logs_in_with_the_password_from_the_named_environment_variable(
    smtp_with_auth: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMVARLD_SMTP_PASSWORD", "hemligt")
    settings = smtp_with_auth.settings.model_copy(
        update={"username": "omvarld", "password_env": "OMVARLD_SMTP_PASSWORD"}
    )
    messages = [compose_message(Rendered(), r, SETTINGS, now=NOW) for r in (ANNA, BO)]

    with SmtpSender(settings, delays=FAST) as sender:  # raises DeliveryError if one is refused
        for recipient, message in zip((ANNA, BO), messages, strict=True):
            sender.deliver(message, week=str(WEEK), recipient=recipient.email)

    assert len(smtp_with_auth.mailbox.received) == 2
    assert smtp_with_auth.logins == [(b"omvarld", b"hemligt")]  # one session for the batch


def test_a_refused_login_fails_the_batch_after_one_attempt(
    engine: Engine, smtp_with_auth: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMVARLD_SMTP_PASSWORD", "fel")
    smtp_with_auth.settings = smtp_with_auth.settings.model_copy(
        update={"username": "omvarld", "password_env": "OMVARLD_SMTP_PASSWORD"}
    )

    outcomes = send(engine, smtp_with_auth, [ANNA, BO])

    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].error is not None and outcomes[0].error.startswith("535")
    assert len(smtp_with_auth.logins) == 1  # not once per recipient: that locks accounts
    assert smtp_with_auth.mailbox.received == []


def test_a_missing_password_variable_is_named_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMVARLD_SMTP_PASSWORD", raising=False)
    settings = SmtpConfig(username="omvarld", password_env="OMVARLD_SMTP_PASSWORD")
    with pytest.raises(MailConfigError, match="OMVARLD_SMTP_PASSWORD is not set"):
        SmtpSender(settings)


def test_a_451_is_retried_after_a_pause_and_then_delivered(engine: Engine, smtp: Server) -> None:
    smtp.mailbox.data_replies.append("451 4.3.0 Try again later")
    sleeps: list[float] = []

    outcomes = send(engine, smtp, [ANNA], sleeps=sleeps)

    assert outcomes[0].status == "sent"
    assert sleeps == [FAST[0]]
    assert len(smtp.mailbox.received) == 1


def test_a_server_that_keeps_saying_451_leaves_the_digest_failed(
    engine: Engine, smtp: Server
) -> None:
    smtp.mailbox.data_replies.extend(["451 4.3.0 Try again later"] * 4)
    sleeps: list[float] = []

    outcomes = send(engine, smtp, [ANNA], sleeps=sleeps)

    assert outcomes[0].status == "failed" and outcomes[0].error == "451 4.3.0 Try again later"
    assert sleeps == list(FAST)


def test_a_550_is_recorded_for_that_recipient_the_others_are_sent_and_a_rerun_retries_it(
    engine: Engine, smtp: Server
) -> None:
    smtp.mailbox.refused["anna@example.se"] = "550 5.1.1 No such user"
    sleeps: list[float] = []

    first = send(engine, smtp, [ANNA, BO], sleeps=sleeps)

    assert [(o.recipient, o.status) for o in first] == [
        ("anna@example.se", "failed"),
        ("bo@example.se", "sent"),
    ]
    assert first[0].error == "550 5.1.1 No such user"
    assert sleeps == []  # permanent: not retried within the run
    rows = {r.recipient: r for r in list_digests(engine, "2026-W48")}
    assert rows["anna@example.se"].status == "failed"
    assert rows["anna@example.se"].error == "550 5.1.1 No such user"

    del smtp.mailbox.refused["anna@example.se"]
    second = send(engine, smtp, [ANNA, BO], now=NOW + timedelta(hours=1))

    assert [(o.status, o.by_this_run) for o in second] == [("sent", True), ("sent", False)]
    assert len(smtp.mailbox.to("anna@example.se")) == 1
    assert len(smtp.mailbox.to("bo@example.se")) == 1
    assert list_digests(engine, "2026-W48")[0].attempts == 2


def test_running_send_twice_sends_each_digest_once_and_archives_it(
    engine: Engine, smtp: Server
) -> None:
    send(engine, smtp, [ANNA, BO])
    again = send(engine, smtp, [ANNA, BO], now=NOW + timedelta(minutes=5))

    assert [o.by_this_run for o in again] == [False, False]
    assert len(smtp.mailbox.received) == 2
    [row] = [r for r in list_digests(engine) if r.recipient == "anna@example.se"]
    assert row.status == "sent" and row.sent_at is not None and row.attempts == 1
    archived = email.message_from_string(row.message or "", policy=email.policy.default)
    assert archived["Message-ID"] == smtp.mailbox.to("anna@example.se")[0]["Message-ID"]
    assert row.message_id == archived["Message-ID"] and row.subject == Rendered.subject


def test_an_empty_digest_is_recorded_skipped_and_not_sent(engine: Engine, smtp: Server) -> None:
    def nothing_for_anna(recipient: Recipient, digest_id: int | None) -> Rendered | None:
        return None if recipient is ANNA else Rendered()

    outcomes = send(engine, smtp, [ANNA, BO], prepare=nothing_for_anna)

    assert [o.status for o in outcomes] == ["skipped", "sent"]
    assert [m["To"].addresses[0].addr_spec for m in smtp.mailbox.received] == ["bo@example.se"]


def test_a_digest_that_fails_to_build_is_failed_and_the_others_still_go(
    engine: Engine, smtp: Server
) -> None:
    def broken_for_anna(recipient: Recipient, digest_id: int | None) -> Rendered:
        if recipient is ANNA:
            raise KeyError("organisation")
        return Rendered()

    outcomes = send(engine, smtp, [ANNA, BO], prepare=broken_for_anna)

    assert [o.status for o in outcomes] == ["failed", "sent"]
    assert outcomes[0].error == "building the digest failed: KeyError('organisation')"


def test_a_send_interrupted_by_a_crash_is_resent_only_after_an_hour_with_the_same_message_id(
    engine: Engine, smtp: Server
) -> None:
    # A sender claimed and archived Anna's digest, then died before recording the outcome.
    claim = claim_digest(engine, "anna@example.se", "2026-W48", NOW)
    assert claim is not None
    message = compose_message(Rendered(), ANNA, SETTINGS, now=NOW)
    archive_message(
        engine, claim, subject="arkiverad", message=message, message_id=message["Message-ID"]
    )

    soon = send(engine, smtp, [ANNA], now=NOW + timedelta(minutes=30))
    assert (soon[0].status, soon[0].by_this_run) == ("sending", False)
    assert smtp.mailbox.received == []

    later = send(engine, smtp, [ANNA], now=NOW + timedelta(hours=2))
    assert later[0].status == "sent" and later[0].attempts == 2
    [received] = smtp.mailbox.received
    assert received["Message-ID"] == message["Message-ID"]


def test_two_concurrent_senders_send_each_digest_exactly_once(
    database_url: str, engine: Engine, smtp: Server
) -> None:
    recipients = [Recipient(f"mottagare{i}@example.se") for i in range(30)]
    start = threading.Barrier(2)
    results: list[list[DeliveryOutcome]] = []

    def worker() -> None:
        own = make_engine(database_url)  # each worker its own connections, as two processes
        start.wait()
        results.append(send(own, smtp, recipients))
        own.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    addresses = sorted(m["To"].addresses[0].addr_spec for m in smtp.mailbox.received)
    assert addresses == sorted(r.email for r in recipients)
    assert len(results) == 2
    sent_by = [sum(o.by_this_run for o in run) for run in results]
    assert sum(sent_by) == 30
    assert all(r.status == "sent" for r in list_digests(engine, "2026-W48"))


def test_the_outbox_gets_an_eml_and_an_html_file_once_per_digest(
    engine: Engine, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"

    outcomes = deliver_digests(
        engine, [ANNA], WEEK, SETTINGS, prepare=render, transport=OutboxSender(outbox), now=NOW
    )

    assert outcomes[0].status == "sent"
    assert sorted(p.name for p in outbox.iterdir()) == [
        "2026-W48-anna@example.se.eml",
        "2026-W48-anna@example.se.html",
    ]
    eml = email.message_from_bytes(
        (outbox / "2026-W48-anna@example.se.eml").read_bytes(), policy=email.policy.default
    )
    assert eml.get_content_type() == "multipart/alternative"
    html = (outbox / "2026-W48-anna@example.se.html").read_text(encoding="utf-8")
    assert html.rstrip("\n") == Rendered.html

    for path in outbox.iterdir():
        path.unlink()
    deliver_digests(
        engine, [ANNA], WEEK, SETTINGS, prepare=render, transport=OutboxSender(outbox), now=NOW
    )
    assert list(outbox.iterdir()) == []  # delivered already: idempotent in the folder as well


def test_a_digest_that_keeps_failing_is_tried_max_attempts_times_then_left(
    engine: Engine, smtp: Server
) -> None:
    smtp.mailbox.refused["anna@example.se"] = "550 5.1.1 No such user"
    settings = SETTINGS.model_copy(update={"max_attempts": 3})
    outcomes = []
    for hour in range(5):
        with SmtpSender(smtp.settings, delays=FAST, sleep=lambda _: None) as sender:
            outcomes.append(
                deliver_digests(
                    engine, [ANNA], WEEK, settings, prepare=render, transport=sender,
                    now=NOW + timedelta(hours=hour),
                )[0]
            )  # fmt: skip

    assert [(o.by_this_run, o.attempts) for o in outcomes] == [
        (True, 1), (True, 2), (True, 3), (False, 3), (False, 3),
    ]  # fmt: skip
    assert find_retryable(engine, str(WEEK), max_attempts=3) == []
    assert find_retryable(engine, str(WEEK), max_attempts=4) == ["anna@example.se"]
    assert list_digests(engine, str(WEEK))[0].status == "failed"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made by the openssl command-line tool."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS tests need the openssl command to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "relay.pem", directory / "relay.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


def tls_server(certificate: Certificate, security: str) -> Iterator[Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    options: dict[str, Any] = {
        "authenticator": Authenticator(),
        "auth_required": True,
        "auth_exclude_mechanism": ["LOGIN"],
    }
    if security == "ssl":
        # aiosmtpd only counts STARTTLS as TLS for AUTH; this whole connection is TLS.
        options |= {"ssl_context": context, "auth_require_tls": False}
    else:
        options |= {"tls_context": context, "require_starttls": True}
    for server in start_server(**options):
        yield replace_settings(server, security=security, username="omvarld")


def replace_settings(server: Server, **changes: Any) -> Server:
    return Server(server.mailbox, server.settings.model_copy(update=changes), server.logins)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_relay_with_tls_gets_the_login_and_the_digest_encrypted(
    engine: Engine,
    certificate: Certificate,
    security: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMVARLD_TEST_SMTP_PASSWORD", "hemligt")
    servers = tls_server(certificate, security)
    server = replace_settings(
        next(servers), ca_file=str(certificate.cert), password_env="OMVARLD_TEST_SMTP_PASSWORD"
    )
    try:
        outcomes = send(engine, server, [ANNA])
    finally:
        next(servers, None)

    assert [(o.status, o.error) for o in outcomes] == [("sent", None)]
    assert server.logins == [(b"omvarld", b"hemligt")]  # require_starttls: only after TLS
    assert len(server.mailbox.to("anna@example.se")) == 1


def test_an_untrusted_relay_certificate_fails_at_once_and_says_how_to_fix_it(
    engine: Engine, certificate: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMVARLD_TEST_SMTP_PASSWORD", "hemligt")
    servers = tls_server(certificate, "starttls")
    server = replace_settings(next(servers), password_env="OMVARLD_TEST_SMTP_PASSWORD")
    sleeps: list[float] = []
    try:
        outcomes = send(engine, server, [ANNA, BO], sleeps=sleeps)
    finally:
        next(servers, None)

    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].error is not None
    assert outcomes[0].error.startswith("the SMTP server's TLS certificate is not trusted")
    assert "[smtp] ca_file" in outcomes[0].error
    assert sleeps == []  # no retrying a certificate
    assert server.logins == [] and server.mailbox.received == []  # the password never left


def test_with_no_unsubscribe_setting_every_digest_offers_a_mail_to_the_sender(
    engine: Engine, smtp: Server, tmp_path: Path
) -> None:
    """Gmail and Yahoo require List-Unsubscribe of bulk mail: with neither unsubscribe_url nor
    unsubscribe_mailto set, a mail to the From address with the subject "unsubscribe"."""
    bare = DigestConfig.model_validate({"from": "Omvärld <omvarld@kommun.example.se>"})
    expected = "<mailto:omvarld@kommun.example.se?subject=unsubscribe>"

    with SmtpSender(smtp.settings, delays=FAST) as sender:
        deliver_digests(engine, [ANNA], WEEK, bare, prepare=render, transport=sender, now=NOW)
    outbox = tmp_path / "outbox"
    deliver_digests(
        engine, [BO], WEEK, bare, prepare=render, transport=OutboxSender(outbox), now=NOW
    )

    [mailed] = smtp.mailbox.received
    written = email.message_from_bytes(
        (outbox / "2026-W48-bo@example.se.eml").read_bytes(), policy=email.policy.default
    )
    for message in (mailed, written):
        assert message["List-Unsubscribe"] == expected
        assert message["List-Unsubscribe-Post"] is None  # one click is for https only
