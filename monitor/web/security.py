"""What keeps collected content, other sites and unauthenticated callers in their place.

- Every response carries a Content-Security-Policy without 'unsafe-inline': no script runs at
  all (the pages need none), styles come from our stylesheet only, nothing may frame a page.
  A digest shown as mailed gets its own policy listing the hashes of its inline styles.
- `auth = "proxy"`: the reverse proxy (oauth2-proxy behind nginx) names the signed-in user in a
  header, believed only from `trusted_proxies`. Recipients' pages (/r/…) need only their signed
  token, and /healthz answers the proxy's health checks.
- Forms that change something carry a CSRF token (double submit: a random cookie, the same
  value in the form, compared in constant time); RFC 8058's one-click POST is the exception the
  RFC defines: it carries the signed link instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
CSRF_COOKIE = "omvarld_csrf"
CSRF_FIELD = "csrf"
# Paths open without the proxy's user: the proxy's health checks and recipients' signed links.
PUBLIC_PREFIXES = ("/healthz", "/r/", "/static/")

_STYLE_ATTRIBUTE = re.compile(r"""\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_STYLE_ELEMENT = re.compile(r"<style[^>]*>(.*?)</style>", re.IGNORECASE | re.DOTALL)


def csp_for_mailed_html(html: str) -> str:
    """The policy for a digest shown exactly as mailed: its inline styles allowed by hash (a
    mail cannot link a stylesheet), still no script, no remote content, no framing."""
    hashes = sorted(
        {_hash(value) for value in _style_texts(html)},
    )
    styles = " ".join(f"'{digest}'" for digest in hashes)
    style_source = f"'unsafe-hashes' {styles}" if styles else "'none'"
    return (
        f"default-src 'none'; style-src {style_source}; img-src data:; form-action 'none';"
        " frame-ancestors 'none'; base-uri 'none'"
    )


def _style_texts(html: str) -> Iterable[str]:
    for match in _STYLE_ATTRIBUTE.finditer(html):
        yield _unescape_attribute(match.group(1) if match.group(1) is not None else match.group(2))
    for match in _STYLE_ELEMENT.finditer(html):
        yield match.group(1)


def _unescape_attribute(value: str) -> str:
    # The browser hashes the attribute's value after entity decoding.
    import html

    return html.unescape(value)


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "sha256-" + base64.b64encode(digest).decode()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(cookie: str | None, field: str | None) -> bool:
    return bool(cookie) and bool(field) and hmac.compare_digest(str(cookie), str(field))


def is_trusted(address: str | None, trusted: Iterable[str]) -> bool:
    """Whether a peer address is one of the trusted proxies (addresses or networks)."""
    if not address:
        return False
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(entry, strict=False) for entry in trusted)


def needs_user(path: str) -> bool:
    return not path.startswith(PUBLIC_PREFIXES)
