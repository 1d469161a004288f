"""Plain text from markup (collectors/text.py): what a reader of a post's text sees."""

from __future__ import annotations

import html
import random
import time

import nh3
import pytest

import collectors.text as text_module
from collectors.text import collapse_spaces, html_to_text
from monitor.text import strip_control

# Every kind of character the shortcut in collapse_spaces must tell apart: words, the space,
# line breaks of every sort, tabs, no-break and other Unicode spaces, and characters that are
# unprintable without being whitespace (a soft hyphen, a zero-width space).
ALPHABET = [
    "a", "ö", "–", " ", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85",
    "\xa0", "\u2009", "\u2028", "\u3000", "\xad", "\u200b",
]  # fmt: skip


def test_collapsing_spaces_is_joining_the_words_of_any_line() -> None:
    rng = random.Random(15)
    for _ in range(50_000):
        line = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        assert collapse_spaces(line) == " ".join(line.split()), repr(line)


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (
            "<p>Ny  förskola\u00a0i\tHagalund</p><p> Öppnar 2027 </p>",
            "Ny förskola i Hagalund\nÖppnar 2027",
        ),
        ("<p>Rad ett<br>rad två</p>\r\n<ul><li>Punkt</li></ul>", "Rad ett\nrad två\nPunkt"),
        ("<script>alert(1)</script><p>Text &amp; bild</p>", "Text & bild"),
        ("<p> </p><p>\u2028</p>", None),
    ],
)
def test_html_becomes_lines_of_words(markup: str, expected: str | None) -> None:
    assert html_to_text(markup) == expected


def test_control_characters_go_and_nothing_else() -> None:
    """monitor.text.strip_control, what every stored text goes through: its shortcut for
    printable text must never keep a control character, nor drop anything else."""
    controls = {chr(c) for c in [*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}
    alphabet = [*controls, "\t", "\n", "a", "ö", " ", "\xa0", "\xad", "\u2028", "\u200b", "😀"]
    rng = random.Random(16)
    for _ in range(50_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        if rng.random() < 0.5:  # printable text, the shortcut's
            text = "".join(c for c in text if c.isprintable())
        assert strip_control(text) == "".join(c for c in text if c not in controls), repr(text)


# Pieces of markup for `test_markup_reads_as_an_html_parser_reads_it`: text, references a parser
# and html.unescape might read apart, tags of the plain elements written every way the
# tokenizer allows, and everything that must go to the parser (comments, raw text, tables,
# foreign content, stray '<', NUL).
MARKUP_PIECES = [
    "Kommun", "ö", "x", " ", "  ", "\n", "\r", "\r\n", "\t", "\xa0", "\x0c", "\u2028", "=", '"',
    "'", ";", "#", ">", "<", "<<", "&", "&am", "p;", "&amp;", "&amp", "&AMP;", "&nbsp;", "&lt;",
    "&gt;", "&lt;b&gt;", "&notit;", "&copy2", "&hellip", "&hellip;", "&#8217;", "&#x2019;",
    "&#65", "&#x;", "&#;", "&#1;", "&#9;", "&#13;", "&#x81;", "&#128;", "&#0;", "&#xD800;",
    "&#xFFFE;", "&#xFDD0;", "&#6", "&#x8", "5;", "1;", "&#", "&#x110000;", "&#99999999;",
    "&#0000000065;", "&#x1F600;",
    "<a href=\"https://kommun.se/?a=1&amp;b=2\">", "</a>", "<a title='a>b'>", "<a title=\"<p>\">",
    "<B>", "</b>", "<strong>", "</strong>", "<em >", "</em >", "<img src=x/>", "<img alt=\"ö\">",
    "<span\nclass=\"c\">", "</span>", "<a\xa0title=\"x>y\">", "<i>", "</i>", "<b/>", "<a/b>",
    "<a b=\"", "<a\thref=x>", "<A HREF=X>", "<b\x0cclass=x>", "<a href = \"x\" >", "<a x=`y`>",
    "<a =x>", "</a href=\"x\">", "<sup>", "<sub>", "<q>", "<time datetime=\"2026\">", "<s>",
    "<u>", "<code>", "<font color=red>", "<figure>", "<figcaption>", "<wbr>", "<kbd>",
    "<abbr title=\"x\">", "<bdo dir=rtl>", "<ins>", "<del>", "<mark>", "<tt>", "<strike>",
    "<p>", "</p>", "<br>", "<br/>", "<li>", "<div class=x>", "<h2>", "<blockquote>", "<pre>",
    "<!-- c -->", "<!--", "-->", "<!>", "<?php ?>", "<![CDATA[x]]>", "</>", "<x-y>", "<script>",
    "</script>", "<style>", "</style>", "<textarea>", "<title>", "<table>", "<td>", "<select>",
    "<option>", "<svg>", "<math>", "<template>", "<noscript>", "<iframe>", "<plaintext>",
    "<xmp>", "<listing>", "\x00", "<\u212abd>", "<ſ>",
]  # fmt: skip


def _read_by_parser(markup: str) -> str | None:
    """What html_to_text answered when every fragment went through nh3's HTML parser."""
    spaced = text_module._BLOCK_BOUNDARY.sub("\n", markup)
    text = html.unescape(nh3.clean(spaced, tags=set()))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(filter(None, lines)) or None


def test_markup_reads_as_an_html_parser_reads_it() -> None:
    """html_to_text reads plain markup without the parser: it must give the very text the
    parser gives, or every stored post would look edited (its content hash covers the text)."""
    rng = random.Random(151)
    shortcut = 0
    for _ in range(40_000):
        markup = "".join(rng.choice(MARKUP_PIECES) for _ in range(rng.randint(0, 14)))
        assert html_to_text(markup) == _read_by_parser(markup), repr(markup)
        shortcut += text_module._strip_plain_tags(markup) is not None
    assert shortcut > 4_000  # the shortcut was tried, not only the parser


@pytest.mark.parametrize(
    "markup",
    [
        "&am<b></b>p;",  # not a reference: the parser reads the text between tags alone
        "&#6<b></b>5;",  # nor this: U+0006, which html.unescape would drop, then "5;"
        "x&#6<b>5;</b>",
        "&#x8<i>1;",
        "&#65<i>;",
        "<a title='&#1;'>&#65;</a>",
    ],
)
def test_references_end_where_a_tag_begins(markup: str) -> None:
    assert html_to_text(markup) == _read_by_parser(markup)


def test_hostile_markup_takes_no_longer_to_read_than_its_size() -> None:
    """Unclosed quotes and tags by the thousand: read at the speed of ordinary markup."""
    for markup in (
        '<a x="' * 50_000,
        "<a x='<b y=\"" * 30_000,
        "<a " + "x=y " * 100_000,
        "<b>" + "&amp" * 100_000,
    ):
        started = time.process_time()
        html_to_text(markup)
        assert time.process_time() - started < 2.0, markup[:40]
