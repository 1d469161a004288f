"""Plain text from untrusted markup. Contains no business logic."""

from __future__ import annotations

import html
import re

import nh3

# Block-level boundaries become line breaks, so "<p>a</p><p>b</p>" reads "a\nb", not "ab".
_BLOCK_BOUNDARY = re.compile(
    r"<\s*/?\s*(?:br|p|div|li|ul|ol|h[1-6]|tr|table|blockquote|section|article|pre)\b[^>]*>",
    re.IGNORECASE,
)


def html_to_text(markup: str | None) -> str | None:
    """The visible text of an HTML fragment: no tags, no scripts or styles, entities decoded."""
    if not markup:
        return None
    spaced = _BLOCK_BOUNDARY.sub("\n", markup)
    text = html.unescape(nh3.clean(spaced, tags=set()))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line) or None
