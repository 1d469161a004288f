"""Plain text from markup (collectors/text.py): what a reader of a post's text sees."""

from __future__ import annotations

import random

import pytest

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
