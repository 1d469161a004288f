"""OPML in and out: feed lists from other readers become a TOML include file, and back."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from monitor.values import is_http_url


class OpmlError(Exception):
    """The OPML file cannot be read; the message names the file and the reason."""


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str | None
    category: str | None  # the enclosing outline's title, if any


def read_opml(path: str) -> list[OpmlFeed]:
    """Every outline with an http(s) xmlUrl, in document order."""
    try:
        tree = ElementTree.parse(path)
    except OSError as error:
        raise OpmlError(f"{path}: cannot read: {error.strerror}") from None
    except ElementTree.ParseError as error:
        raise OpmlError(f"{path}: not valid OPML: {error}") from None
    body = tree.getroot().find("body")
    if tree.getroot().tag != "opml" or body is None:
        raise OpmlError(f"{path}: not valid OPML: no <opml><body>")
    feeds: list[OpmlFeed] = []

    def walk(node: ElementTree.Element, category: str | None) -> None:
        for outline in node.findall("outline"):
            url = (outline.get("xmlUrl") or "").strip()
            title = outline.get("title") or outline.get("text")
            if is_http_url(url):
                feeds.append(OpmlFeed(url=url, title=title, category=category))
            walk(outline, title if not url else category)

    walk(body, None)
    return feeds


# Written where nothing says who publishes a feed: valid TOML that config check accepts, and a
# word no admin overlooks in the digest or `sources list` (issue 13).
ORGANISATION_PLACEHOLDER = "FYLL I"
# How feed titles join a publisher to what the feed holds: "Katrineholms kommun - Nyheter".
_TITLE_SEPARATORS = re.compile(r"\s+[-–—|:]\s+")


def guess_organisation(feed: OpmlFeed) -> str | None:
    """The organisation a feed's title names ("Katrineholms kommun" of "Katrineholms kommun –
    Nyheter"), or None without a title. A folder names a kind of publisher ("Kommuner"), never
    one, so it is not asked."""
    title = (feed.title or "").strip()
    if not title:
        return None
    return _TITLE_SEPARATORS.split(title, maxsplit=1)[0].strip() or None


def render_sources_toml(
    feeds: Iterable[OpmlFeed],
    *,
    group: str | None,
    organisation: str | None,
    origin: str,
    declared_groups: Mapping[str, str] | None = None,
) -> str:
    """A TOML include file with one [[sources]] table per feed.

    Each feed's organisation is `organisation`, else the one its title names (with a comment
    asking the admin to check it), else `ORGANISATION_PLACEHOLDER` with a comment naming the
    feed's host. An OPML folder becomes the group whose key or declared name it matches
    (`declared_groups`: key -> name), else a comment.
    """
    lines = [f"# Imported from {origin} on {datetime.now(UTC):%Y-%m-%d}.", ""]
    for feed in feeds:
        guessed = None if organisation else guess_organisation(feed)
        owner = organisation or guessed or ORGANISATION_PLACEHOLDER
        lines += ["[[sources]]", 'platform = "feed"', f"url = {_toml_string(feed.url)}"]
        if organisation:
            lines.append(f"organisation = {_toml_string(owner)}")
        elif guessed:
            lines.append(f"organisation = {_toml_string(owner)}  # from the feed's title: check")
        else:
            host = urlsplit(feed.url).hostname or feed.url
            lines.append(
                f"organisation = {_toml_string(owner)}  # the organisation publishing "
                + _comment(host)
            )
        if feed.title and feed.title != owner:
            lines.append(f"name = {_toml_string(feed.title)}")
        folder_group = _group_of(feed.category, declared_groups or {})
        if group or folder_group:
            lines.append(f"groups = [{_toml_string(group or folder_group or '')}]")
        elif feed.category:
            lines.append(f"# OPML folder: {_comment(feed.category)}")
        lines.append("")
    return "\n".join(lines)


def _group_of(folder: str | None, declared: Mapping[str, str]) -> str | None:
    """The declared group an OPML folder names, by key or name, in any letter case."""
    if not folder:
        return None
    wanted = folder.strip().casefold()
    for key, name in declared.items():
        if wanted in (key.casefold(), name.casefold()):
            return key
    return None


def _comment(text: str) -> str:
    """Text on one comment line: a newline would end the comment, and TOML allows no other
    control characters in one."""
    return "".join(char for char in " ".join(text.split()) if char.isprintable())


@dataclass(frozen=True)
class ExportedFeed:
    url: str
    title: str
    group: str | None


def render_opml(feeds: Sequence[ExportedFeed], *, title: str = "Omvärld sources") -> str:
    """OPML 2.0, one outline per group holding its feeds."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC))
    body = ElementTree.SubElement(root, "body")
    folders: dict[str | None, ElementTree.Element] = {None: body}
    for feed in feeds:
        parent = folders.get(feed.group)
        if parent is None:
            parent = folders[feed.group] = ElementTree.SubElement(
                body, "outline", text=feed.group or "", title=feed.group or ""
            )
        ElementTree.SubElement(
            parent, "outline", type="rss", text=feed.title, title=feed.title, xmlUrl=feed.url
        )
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, "unicode") + "\n"


def _toml_string(value: str) -> str:
    # JSON's string escapes (\", \\, \n, \uXXXX) are all valid in TOML basic strings; JSON
    # leaves DEL (U+007F) raw, which TOML forbids.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
