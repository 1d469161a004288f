"""Signed links for recipients: the digest's unsubscribe and settings links, with no login.

A token names one recipient (their e-mail address) and one purpose, signed with HMAC-SHA256
under the secret in `[web] secret_env`. It does not expire: an unsubscribe link in a mail from
last year must still work. Changing the secret invalidates every link already mailed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from monitor.config import Config

RECIPIENT = "recipient"  # the recipient page and its unsubscribe
MIN_SECRET_BYTES = 16  # shorter secrets can be guessed; `config check` says so


class BadToken(ValueError):
    """The token was not signed by this installation's secret (tampered, truncated, or old)."""


def read_secret(config: Config) -> bytes | None:
    """The signing secret from the environment variable `[web] secret_env` names, or None."""
    value = os.environ.get(config.web.secret_env, "")
    return value.encode() if len(value) >= MIN_SECRET_BYTES else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadToken("not a token") from None


def _mac(secret: bytes, purpose: str, payload: bytes) -> bytes:
    # The purpose is part of what is signed, so a token made for one use cannot open another.
    return hmac.new(secret, purpose.encode() + b"\0" + payload, hashlib.sha256).digest()[:18]


def sign(secret: bytes, value: str, purpose: str = RECIPIENT) -> str:
    """A URL-safe token carrying `value`, signed for `purpose`."""
    payload = value.encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, purpose, payload))}"


def verify(secret: bytes, token: str, purpose: str = RECIPIENT) -> str:
    """The value a token carries; BadToken unless this secret signed it for this purpose."""
    if len(token) > 2048 or token.count(".") != 1:
        raise BadToken("not a token")
    encoded, signature = token.split(".")
    payload = _unb64(encoded)
    if not hmac.compare_digest(_unb64(signature), _mac(secret, purpose, payload)):
        raise BadToken("the signature does not match")
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise BadToken("not a token") from None
