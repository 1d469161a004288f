"""OPML in and out: feed lists from other readers become a TOML include file, and back."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
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


def render_sources_toml(
    feeds: Iterable[OpmlFeed], *, group: str | None, organisation: str | None, origin: str
) -> str:
    """A TOML include file with one [[sources]] table per feed."""
    lines = [f"# Imported from {origin} on {datetime.now(UTC):%Y-%m-%d}.", ""]
    for feed in feeds:
        owner = organisation or feed.category or feed.title or urlsplit(feed.url).hostname
        lines += [
            "[[sources]]",
            'platform = "feed"',
            f"url = {_toml_string(feed.url)}",
            f"organisation = {_toml_string(owner or feed.url)}",
        ]
        if feed.title and feed.title != owner:
            lines.append(f"name = {_toml_string(feed.title)}")
        if group:
            lines.append(f"groups = [{_toml_string(group)}]")
        lines.append("")
    return "\n".join(lines)


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
