"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, for the delivery
tests: the digest's, the CLI's and the service's."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.config import SmtpConfig


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what arrives and can refuse on cue."""

    received: list[EmailMessage] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)  # answered to DATA before accepting
    refused: dict[str, str] = field(default_factory=dict)  # address -> RCPT reply
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(parsed)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if m["To"].addresses[0].addr_spec == address]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    mailbox: Mailbox
    settings: SmtpConfig
    logins: list[tuple[bytes, bytes]]


def start_server(**options: Any) -> Iterator[Server]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield Server(
            mailbox,
            SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=5),
            options.get("authenticator", Authenticator()).logins,
        )
    finally:
        controller.stop()


class Authenticator:
    """Accepts `omvarld` with the password `hemligt`; remembers every attempt."""

    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        good = (data.login, data.password) == (b"omvarld", b"hemligt")
        return AuthResult(success=good, handled=False)  # handled=False: aiosmtpd answers 535
