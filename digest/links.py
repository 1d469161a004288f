"""Links in a digest: only http(s) and mailto, checked, and personalised per recipient.

Shared by the rendered footer and the List-Unsubscribe header, so that both say the same.
"""

from __future__ import annotations

from email.utils import parseaddr
from urllib.parse import quote


def personalise_url(url: str | None, email: str) -> str | None:
    """A configured link with `{email}` replaced by the recipient's address, URL-encoded: one
    unsubscribe or settings link per person, so the page it opens knows who clicked."""
    return None if url is None else url.replace("{email}", quote(email, safe=""))


def http_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: checked here again although the builder promises it,
    because a `javascript:` or `data:` link in a mail is an attack, not a broken link."""
    if not url:
        return None
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        return None
    if any(ord(char) < 0x21 or char in "\"'<>\\`" for char in url):
        return None  # a well-formed URL has these percent-encoded; raw ones smell of injection
    return url


def mailto_url(address: str | None) -> str | None:
    """`mailto:` link for the unsubscribe address (given with or without the scheme)."""
    if not address:
        return None
    address = address.strip().removeprefix("mailto:")
    if not address or any(ord(char) < 0x21 or char in "\"'<>\\`" for char in address):
        return None
    return f"mailto:{address}"


def unsubscribe_links(
    mailto: str | None, url: str | None, email: str, *, sender: str | None = None
) -> list[str]:
    """The recipient's ways to unsubscribe, each checked: mailto first (RFC 2369 lists them in
    the sender's order of preference), then the page with `{email}` filled in.

    With neither configured (or neither usable), a mail to the `sender` (the From header) with
    the subject "unsubscribe": Gmail and Yahoo require every bulk message to offer a way out.
    """
    links = [mailto_url(mailto), http_url(personalise_url(url, email))]
    chosen = [link for link in links if link]
    if not chosen and sender:
        fallback = mailto_url(parseaddr(sender)[1])
        if fallback:
            chosen.append(f"{fallback}?subject=unsubscribe")
    return chosen
