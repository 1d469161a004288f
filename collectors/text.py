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
# Elements whose tags an HTML parser reads as nothing but tags around text, in text order:
# no raw text (script, style, textarea, title), no table or select rules that move text, no
# foreign content (svg, math). Markup with these tags and no others is read without a parser
# (`_strip_plain_tags`); the block elements above are line breaks by then.
_PLAIN_ELEMENTS = (
    "a|abbr|b|bdi|bdo|big|cite|code|data|del|dfn|em|figcaption|figure|font|i|img|ins|kbd|mark"
    "|q|s|samp|small|span|strike|strong|sub|sup|time|tt|u|var|wbr"
)
# HTML's five whitespace characters, the only ones that separate a tag's parts: to the
# tokenizer, '<a\xa0title="…">' is an element named 'a\xa0title="…'.
_SPACE = r"\t\n\f\r "
# One start or end tag of such an element, as the HTML tokenizer reads it: a name, then
# attributes whose quoted values may hold '<' and '>'.
_PLAIN_TAG = re.compile(
    rf"</?(?:{_PLAIN_ELEMENTS})"
    rf"""(?:[{_SPACE}]+[^{_SPACE}"'<>/=]+"""
    rf"""(?:[{_SPACE}]*=[{_SPACE}]*(?:"[^"]*"|'[^']*'|[^{_SPACE}"'=<>`]+))?)*"""
    rf"[{_SPACE}]*/?>",
    re.IGNORECASE | re.ASCII,
)
# A numeric character reference, which html.unescape and an HTML parser read alike only for
# a character that is neither a control nor a noncharacter nor out of range.
_NUMERIC_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+))")


def html_to_text(markup: str | None) -> str | None:
    """The visible text of an HTML fragment: no tags, no scripts or styles, entities decoded."""
    if not markup:
        return None
    spaced = _BLOCK_BOUNDARY.sub("\n", markup)
    text = _strip_plain_tags(spaced)
    if text is None:
        text = html.unescape(nh3.clean(spaced, tags=set()))
    return "\n".join(filter(None, map(collapse_spaces, text.splitlines()))) or None


def _strip_plain_tags(markup: str) -> str | None:
    """`html.unescape(nh3.clean(markup, tags=set()))` for markup whose every '<' opens a tag of
    `_PLAIN_ELEMENTS`, without the HTML parser; None for any other markup.

    nh3 (an HTML5 parser, then a serialiser) was 14 µs of the 30 µs a post's text took in a
    parse worker (issue 15), for markup that nearly always is text in <p>, <a> and <strong>.
    Each piece of text between two tags is decoded alone, as the parser does: "&am<b></b>p;"
    is "&amp;", not "&".
    """
    pieces = _PLAIN_TAG.split(markup)
    text = "".join(pieces)
    if "<" in text or "\x00" in text:
        return None  # a comment, a script, another element, a stray '<'; NUL, which it drops
    if "&" not in text:
        return text
    if "&#" in text:
        # Each piece's own references: "&#6<b></b>5;" holds U+0006, not "A".
        references = _NUMERIC_REFERENCE.finditer(" ".join(pieces))
        if not all(map(_reads_alike, references)):
            return None
    return "".join(map(html.unescape, pieces))


def _reads_alike(reference: re.Match[str]) -> bool:
    hexadecimal, decimal = reference.groups()
    if len(hexadecimal or decimal) > 7:
        return False
    code = int(hexadecimal, 16) if hexadecimal else int(decimal)
    if 0x20 <= code < 0x7F or code in (0x09, 0x0A) or 0xA0 <= code < 0xD800:
        return True
    # Not a surrogate, not out of range, not one of Unicode's noncharacters.
    return 0xE000 <= code <= 0x10FFFF and not 0xFDD0 <= code <= 0xFDEF and code & 0xFFFE != 0xFFFE


def collapse_spaces(line: str) -> str:
    """The line's words separated by single spaces, none before or after.

    That is `" ".join(line.split())`, which makes an object of every word: 20 µs of the 52 µs
    `html_to_text` took for a post of the benchmark's feeds (issue 15), for lines that nearly
    all come out as they went in. Every whitespace character but the space is unprintable, so a
    printable line with no space at either end and none doubled is its own answer.
    """
    if not line:
        return line  # half of a post's lines: the blank ones between its blocks
    if line.isprintable() and "  " not in line and line[0] != " " and line[-1] != " ":
        return line
    return " ".join(line.split())
