"""Well-formed RSS 2.0 and Atom 1.0 read with lxml by feedparser's rules: parse_feed's fast path.

feedparser calls a Python handler for every SAX event of a feed; that is about 80 % of a cold
collection's CPU time. Nearly every publisher sends well-formed RSS 2.0 or Atom 1.0, so this
module reads those with lxml (libxml2 builds the tree in C) and then applies, to the elements
`parse_feed` reads, the rules feedparser's handlers apply: which element wins when several name
the same thing, a guid standing in for a missing link, when a description is content, how an
author is spelled, which tags are kept, what is stripped and re-decoded. Where feedparser has a
helper (dates, URL joining, "does this look like HTML", the cp1252 mapping), it is called, so the
two readings cannot drift apart on those.

It answers only what it knows. Anything else returns None and parse_feed asks feedparser: a
DOCTYPE (entities), a parse error, a charset other than UTF-8, xml:base, XHTML or base64
content, markup inside a text element, an element within an entry that feedparser has a handler
for and this module does not emulate (`_read_entry`), RDF and Atom 0.3. tests/test_feedxml.py
checks that both readings give the same posts on every fixture, the benchmark's feeds and the
odd shapes it generates.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
# feedparser's prefix for each namespace it knows ('' for the core formats' own).
PREFIXES: dict[str, str] = {
    uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()
}
XML_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/xml",
        "text/xml",
    }
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# What feedparser resolves as a URI when it pops an element of this name (with base '' here).
RELATIVE_URI_ELEMENTS = frozenset(_FeedParserMixin.can_be_relative_uri)
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']""")
# xml:base, or feedparser's reading of any attribute named `base`, moves the base URI.
_BASE_ATTRIBUTE = re.compile(rb"""\sbase\s*=|xml:base""")
# feedparser's (mixin._sync_author_detail) pattern for an e-mail address in an author's text.
_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)
_C1 = re.compile("[\x80-\x9f]")
_ENTITY = re.compile("&([A-Za-z0-9_]+);")  # feedparser's reading of an entity in a link's text
_NAMESPACE_DECLARATION = re.compile(rb"""xmlns(?::([\w.-]+))?\s*=\s*["']([^"']*)["']""")

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    remove_comments=True,
    remove_pis=True,
    huge_tree=False,
)


class Unsupported(Exception):
    """This document, or something in it, is left to feedparser."""


def read_feed(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """The document as feedparser's result would hold it, for the keys parse_feed reads
    (`version`, `namespaces`, `feed`, `entries`), with `xml`: each entry's XML as the publisher
    sent it; or None when feedparser must read it."""
    try:
        _check_bytes(body, content_type)
        root = etree.fromstring(body, _PARSER)
        if root.tag == "rss":
            return _read_rss(root, body)
        if root.tag == f"{{{ATOM}}}feed":
            return _read_atom(root, body)
    except (Unsupported, etree.XMLSyntaxError, ValueError):
        return None
    return None


# The two date shapes nearly every feed uses (RFC 3339 and RFC 822 with a numeric or UTC zone).
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|([+-])(\d\d):(\d\d))\Z"
)
_RFC822 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d?) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" (\d{4}) (\d\d):(\d\d):(\d\d) (?:GMT|UTC?|Z|([+-])(\d\d)(\d\d))\Z"
)
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
)}  # fmt: skip


def parse_time(value: str) -> time.struct_time | None:
    """feedparser's `_parse_date` (UTC), answered directly for the two shapes nearly every feed
    uses; anything else, and any value out of range (feedparser rolls 30 February over into
    March), is feedparser's to read."""
    if match := _RFC3339.match(value):
        year, month, day, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    elif match := _RFC822.match(value):
        day, month_name, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
        month = str(_MONTHS[month_name])
    else:
        return _parse_date(value)
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return _parse_date(value)
    # The moment in UTC, moved by the offset as naive time: what astimezone(UTC) gives (and the
    # same OverflowError at the ends of time), without making two time zones for every date.
    if sign and (zone_hours != "00" or zone_minutes != "00"):
        offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        if offset >= _DAY:  # what timezone() refuses: feedparser's to read
            return _parse_date(value)
        moment = moment - offset if sign == "+" else moment + offset
    return moment.utctimetuple()  # of a naive time: as it is, tm_isdst 0


_DAY = timedelta(days=1)


def _check_bytes(body: bytes, content_type: str | None) -> None:
    """What can be refused before parsing: encodings, entities, bases."""
    if content_type:
        kind, _, parameters = content_type.partition(";")
        if kind.strip().lower() not in XML_TYPES:
            raise Unsupported("content type")
        charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", parameters, re.IGNORECASE)
        if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
            raise Unsupported("charset")
    head = body[:1024]
    declared = _DECLARED_ENCODING.match(head)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise Unsupported("encoding")
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in body:
        raise Unsupported("doctype")
    if b"base" in body and _BASE_ATTRIBUTE.search(body):
        raise Unsupported("base")


def _namespaces(body: bytes) -> dict[str | None, str]:
    """Every namespace the document declares, by prefix, as feedparser's `namespaces`."""
    found: dict[str | None, str] = {}
    for prefix, uri in _NAMESPACE_DECLARATION.findall(body):
        if uri:
            found[prefix.decode() or None] = uri.decode()
    return found


def _read_rss(root: Any, body: bytes) -> dict[str, Any]:
    channel = root.find("channel")
    if channel is None or len(root) != 1:
        raise Unsupported("rss layout")
    items = channel.findall("item")
    if len(items) != sum(1 for _ in root.iter("item")):
        raise Unsupported("items outside the channel")
    language = _language_of(root.attrib, None)
    reading = _Reading(atom=False, language=_language_of(channel.attrib, language))
    feed = _read_feed_level(channel, language, skip="item")
    return _document("rss20", body, feed, reading, items)


def _read_atom(root: Any, body: bytes) -> dict[str, Any]:
    language = _language_of(root.attrib, None)
    reading = _Reading(atom=True, language=language)
    entries = root.findall(f"{{{ATOM}}}entry")
    if len(entries) != sum(1 for _ in root.iter(f"{{{ATOM}}}entry")):
        raise Unsupported("nested entries")
    feed = _read_feed_level(root, language, skip=f"{{{ATOM}}}entry")
    return _document("atom10", body, feed, reading, entries)


def _document(
    version: str, body: bytes, feed: dict[str, Any], reading: _Reading, entries: list[Any]
) -> dict[str, Any]:
    return {
        "version": version,
        "namespaces": _namespaces(body),
        "feed": feed,
        "entries": [reading.entry(entry) for entry in entries],
        "xml": [etree.tostring(entry, encoding="unicode", with_tail=False) for entry in entries],
        "bozo": False,
        "bozo_exception": None,
    }


def _read_feed_level(parent: Any, root_language: str | None, skip: str) -> dict[str, Any]:
    """The feed's title, language and generator, as feedparser's `feed`."""
    feed: dict[str, Any] = {}
    if root_language:  # only the root's xml:lang is the feed's (unknown_starttag)
        feed["language"] = root_language.replace("_", "-")
    title_seen = False
    for child in parent:
        if child.tag == skip:
            continue
        name = _feedparser_name(child)
        if name in ("title", "dc:title") and not title_seen:
            value = _text(child, "title")
            if value:
                feed["title"] = value
                title_seen = True
        elif name in ("language", "dc:language"):
            feed["language"] = _text(child, "language")
        elif name == "generator":
            attributes = _attributes(child.attrib)
            href = attributes.get("url", attributes.get("uri", attributes.get("href")))
            detail = {k: v for k, v in attributes.items() if k not in ("url", "uri", "href")}
            if href:
                detail["href"] = _urljoin("", href)
            detail["name"] = _text(child, "generator")
            feed["generator_detail"] = detail
    return feed


def _language_of(attributes: Any, inherited: str | None) -> str | None:
    """xml:lang (or a plain lang) in scope, as feedparser tracks it: '' clears it. (Given the
    element's `attrib`, which lxml makes anew at each access.)"""
    if not attributes:
        return inherited
    lang = attributes.get(f"{{{XML_NAMESPACE}}}lang", attributes.get("lang"))
    if lang == "":
        return None
    return inherited if lang is None else lang


def _feedparser_name(element: Any) -> str:
    """The element's name as feedparser's handlers see it: its known prefix, lower case."""
    tag = element.tag
    known = _KNOWN_NAMES.get(tag)
    if known is not None:
        return known
    if not isinstance(tag, str):
        return ""
    if tag[0] != "{":
        name = _KNOWN_NAMES[tag] = tag.lower()
        return name
    uri, _, local = tag[1:].partition("}")
    prefix = PREFIXES.get(uri.lower())
    if prefix is not None:  # the name depends on the tag alone: remember it
        name = _KNOWN_NAMES[tag] = f"{prefix}:{local.lower()}" if prefix else local.lower()
        return name
    if prefix is None:
        prefix = element.prefix or ""
        if prefix in PREFIXES.values() and prefix:
            # A known prefix bound to a namespace feedparser does not know: its handlers
            # would run on a name that means something else here.
            raise Unsupported("prefix")
    return f"{prefix}:{local.lower()}" if prefix else local.lower()


# Tags whose feedparser name depends on the tag alone (no namespace, or one feedparser knows).
_KNOWN_NAMES: dict[Any, str] = {}


def _attributes(attrib: Any) -> dict[str, str]:
    """Attributes (an element's `attrib`) as feedparser's strict parser passes them: lower-case
    names, and lower-case values of rel and type."""
    attributes = {}
    for key, value in attrib.items():
        if key[0] == "{":
            uri, _, local = key[1:].partition("}")
            prefix = PREFIXES.get(uri.lower(), "")
            key = f"{prefix}:{local}" if prefix else local
        key = key.lower()
        attributes[key] = value.lower() if key in ("rel", "type") else value
    return attributes


def _has_handler(name: str) -> bool:
    """Whether feedparser has a handler for elements of this name (remembered: it depends on
    the name alone, and the same few unknown names come in every entry)."""
    known = _HAS_HANDLER.get(name)
    if known is None:
        method = name.replace(":", "_")
        known = _HAS_HANDLER[name] = hasattr(StrictFeedParser, "_start_" + method) or hasattr(
            StrictFeedParser, "_end_" + method
        )
    return known


_HAS_HANDLER: dict[str, bool] = {}


TITLES = frozenset({"title", "dc:title", "media:title"})
DESCRIPTIONS = frozenset({"description", "dc:description", "media:description"})
AUTHORS = frozenset({"author", "dc:creator", "dc:author"})
PUBLISHED = frozenset({"published", "pubdate", "issued", "dcterms:issued"})
UPDATED = frozenset({"updated", "modified", "lastbuilddate", "dc:date", "dcterms:modified"})
CREATED = frozenset({"created", "dcterms:created"})
CATEGORIES = frozenset({"category", "dc:subject", "media:category", "keywords"})
# Elements with a feedparser handler whose effect on an entry is on keys parse_feed never reads.
# The keys of an entry parse_feed reads: an unknown element of such a name would overwrite one.
READ_KEYS = frozenset(
    {
        "link", "links", "id", "title", "title_detail", "summary", "summary_detail", "content",
        "author", "tags", "media_content", "media_thumbnail", "enclosures", "published",
        "published_parsed", "updated", "updated_parsed", "created", "created_parsed",
    }
)  # fmt: skip
INERT_HANDLED = frozenset({"comments", "media:group", "media:rating", "media:credit"})
EMULATED = (
    TITLES | DESCRIPTIONS | AUTHORS | PUBLISHED | UPDATED | CREATED | CATEGORIES | INERT_HANDLED
) | {
    "link", "guid", "id", "summary", "content", "content:encoded", "name", "email", "uri",
    "url", "enclosure", "media:content", "media:thumbnail", "media:keywords",
}  # fmt: skip


class _Reading:
    """One document's reading: the format and the language in scope at its top."""

    def __init__(self, *, atom: bool, language: str | None) -> None:
        self.atom = atom
        self.language = language

    def entry(self, element: Any) -> dict[str, Any]:
        return _EntryReader(self, element).read()


def _text(element: Any, name: str) -> str:
    """The element's text as feedparser's pop() returns it for an element expecting text."""
    if len(element):
        raise Unsupported("markup inside a text element")
    value = (element.text or "").strip()
    if name in RELATIVE_URI_ELEMENTS and value:
        value = _urljoin("", value)
    return _redecode(value)


def _redecode(value: str) -> str:
    """feedparser's last steps on every text: text that is UTF-8 read as Latin-1 is read again,
    and the C1 characters of cp1252 become what Windows meant. (Both are no-ops on ASCII, and
    the mapping on text without C1 characters; checking first is much cheaper than doing.)"""
    if value.isascii():
        return value
    # Both steps are also no-ops on text without a character in U+0080..U+00BF: the mapping
    # needs one of U+0080..U+009F, and the re-reading one of them as a UTF-8 continuation byte
    # (without one, every non-ASCII character is a lead byte with nothing to continue it, or
    # is not Latin-1 at all). Nearly every text is such (å, ä, ö, é, –, ’), and in UTF-8 it has
    # no byte 0xC2, the lead byte of exactly those characters: encoding and looking is many
    # times cheaper than the failed re-reading and the search it spares. (surrogatepass: a
    # lone surrogate is not one of them either, and must not raise here.)
    if b"\xc2" not in value.encode("utf-8", "surrogatepass"):
        return value
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    return value.translate(_cp1252) if _C1.search(value) else value


class _EntryReader:
    """feedparser's handlers, replayed in document order over one entry's elements."""

    def __init__(self, reading: _Reading, element: Any) -> None:
        self.reading = reading
        self.element = element
        self.entry: dict[str, Any] = {}
        self.depths: dict[str, int] = {}  # feedparser's property_depth_map
        self.title_depth = -1
        self.guid_is_link = False
        self.has_content = False
        self.authors: list[dict[str, str]] = []
        self.in_author = False

    def read(self) -> dict[str, Any]:
        language = _language_of(self.element.attrib, self.reading.language)
        for child in self.element:
            self._visit(child, 1, language)
        links = self.entry.get("links", [])
        self.entry["enclosures"] = [
            {k: v for k, v in link.items() if k != "rel"}
            for link in links
            if link["rel"] == "enclosure"
        ]
        return self.entry

    def _visit(self, element: Any, depth: int, language: str | None) -> None:
        # (The common cases of _feedparser_name and _language_of inline: this runs for every
        # element of every entry.)
        name = _KNOWN_NAMES.get(element.tag) or _feedparser_name(element)
        if not name:
            return
        # lxml makes a new proxy at every `.attrib`: one per element, passed on.
        attrib = element.attrib
        if attrib:
            language = _language_of(attrib, language)
        start = _STARTS.get(name)
        if start is None:
            self._unknown(element, name, attrib, depth, language)
        elif not start(self, element, name, _attributes(attrib) if attrib else {}, depth, language):
            for child in element:
                self._visit(child, depth + 1, language)

    def _unknown(
        self, element: Any, name: str, attrib: Any, depth: int, language: str | None
    ) -> None:
        """An element this module does not emulate: refused if feedparser has a handler for it,
        else read through, its attributes kept as feedparser keeps them."""
        if _has_handler(name):
            raise Unsupported(f"element {name}")
        for child in element:
            self._visit(child, depth + 1, language)
        key = name.replace(":", "_")
        if key in READ_KEYS:
            raise Unsupported(f"element {name} would overwrite {key}")
        if attrib:
            # feedparser keeps an unknown element's attributes under its name
            # (media_statistics).
            self.entry[key] = _attributes(attrib)

    # The handlers of the elements this module emulates (`_STARTS`, by feedparser name): each
    # reads its element, and returns True when its children are done (False: visit them).

    def _start_title(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self._title(element, name, attributes, depth, language)
        return True

    def _start_description(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        """A description, or summary: a second one after a summary is content."""
        default = "text/html" if name in DESCRIPTIONS else "text/plain"
        if "summary" in self.entry and not self.has_content:
            self.has_content = True  # _start_content
            self._content(element, attributes, depth, language, "text/plain")
        else:
            self._summary(element, attributes, depth, language, default)
        return True

    def _start_content(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self.has_content = True
        default = "text/html" if name == "content:encoded" else "text/plain"
        self._content(element, attributes, depth, language, default)
        return True

    def _start_link(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self._link(element, attributes, depth)
        return True

    def _start_id(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self.guid_is_link = attributes.get("ispermalink", "true") == "true"
        value = _text(element, "id" if self.guid_is_link else "guid")
        self._store("id", value, depth)
        if self.guid_is_link:
            self.entry.setdefault("link", value)
        return True

    def _start_date(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        key = "published" if name in PUBLISHED else "updated" if name in UPDATED else "created"
        value = _text(element, key)
        self._store(key, value, depth)
        self.entry[f"{key}_parsed"] = parse_time(value)
        return True

    def _start_category(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self._category(element, attributes, name)
        return True

    def _start_media_keywords(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        for term in _text(element, "media_keywords").split(","):
            if term.strip():
                self._add_tag(term.strip(), None, None)
        return True

    def _start_enclosure(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self._enclosure(attributes)
        return True

    def _start_media_content(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self.entry.setdefault("media_content", []).append(attributes)
        return False

    def _start_media_thumbnail(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self.entry.setdefault("media_thumbnail", []).append(attributes)
        url = _text(element, "url")
        if url and "url" not in attributes:
            attributes["url"] = url
        return True

    def _start_author(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        self.authors.append({})
        if len(element):
            if any(t.strip() for t in [element.text or "", *(c.tail or "" for c in element)]):
                raise Unsupported("text beside an author's parts")
            self.in_author = True
            for child in element:
                self._visit(child, depth + 1, language)
            self.in_author = False
            value = ""
        else:
            value = _text(element, "author")
        self._store("author", value, depth)
        self._sync_author()
        return True

    def _start_name(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        """An author's name or email."""
        if len(element):
            raise Unsupported("markup in a name")
        if self.in_author:
            self._save_author(name, (element.text or "").strip())
        return True

    def _start_uri(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        value = _text(element, "href")
        if self.in_author:
            self._save_author("href", value)
        return True

    def _start_inert(
        self, element: Any, name: str, attributes: dict[str, str], depth: int, language: str | None
    ) -> bool:
        """Handled by feedparser, on keys parse_feed never reads: only its children matter."""
        return False

    def _store(self, key: str, value: Any, depth: int) -> None:
        """pop()'s rule: a value at the same depth or shallower replaces the one stored."""
        old = self.depths.get(key)
        if old is None or depth <= old:
            self.depths[key] = depth
            self.entry[key] = value

    def _typed(
        self,
        element: Any,
        attributes: dict[str, str],
        name: str,
        language: str | None,
        default: str,
    ) -> tuple[str, dict[str, Any]]:
        """A text with content parameters (push_content/pop_content)."""
        if "mode" in attributes or "src" in attributes:
            raise Unsupported("content mode or src")
        kind = self._map_type(attributes.get("type", default))
        if kind == "application/xhtml+xml":
            raise Unsupported("xhtml")
        if not (kind.startswith("text/") or kind.endswith("+xml") or kind.endswith("/xml")):
            raise Unsupported("base64")
        if language:
            language = language.replace("_", "-")
        value = _text(element, name)
        if (
            not self.reading.atom
            and kind == "text/plain"
            and _FeedParserMixin.looks_like_html(value)
        ):
            kind = "text/html"
        return value, {"type": kind, "language": language, "base": ""}

    @staticmethod
    def _map_type(kind: str) -> str:
        return _FeedParserMixin.map_content_type(kind)

    def _title(
        self,
        element: Any,
        name: str,
        attributes: dict[str, str],
        depth: int,
        language: str | None,
    ) -> None:
        value, detail = self._typed(element, attributes, "title", language, "text/plain")
        if not -1 < self.title_depth <= depth:
            self._store("title", value, depth)
            self.entry["title_detail"] = detail | {"value": value}
        # _end_title marks the depth even when pop() did not store; media:title puts it back.
        if value and name != "media:title":
            self.title_depth = depth

    def _summary(
        self,
        element: Any,
        attributes: dict[str, str],
        depth: int,
        language: str | None,
        default: str,
    ) -> None:
        value, detail = self._typed(element, attributes, "summary", language, default)
        self._store("summary", value, depth)
        self.entry["summary_detail"] = detail | {"value": value}

    def _content(
        self,
        element: Any,
        attributes: dict[str, str],
        depth: int,
        language: str | None,
        default: str,
    ) -> None:
        value, detail = self._typed(element, attributes, "content", language, default)
        self.entry.setdefault("content", []).append(detail | {"value": value})
        if detail["type"] in {"text/plain"} | HTML_TYPES:
            self.entry.setdefault("summary", value)

    def _link(self, element: Any, attributes: dict[str, str], depth: int) -> None:
        attributes.setdefault("rel", "alternate")
        default_type = "application/atom+xml" if attributes["rel"] == "self" else "text/html"
        attributes.setdefault("type", default_type)
        href = attributes.get("url", attributes.get("uri", attributes.get("href")))
        if href:
            attributes = {k: v for k, v in attributes.items() if k not in ("url", "uri")}
            attributes["href"] = _urljoin("", href)
            self.entry.setdefault("links", []).append(attributes)
            if (
                attributes["rel"] == "alternate"
                and self._map_type(attributes["type"]) in HTML_TYPES
            ):
                self.entry["link"] = attributes["href"]
            if len(element) or (element.text or "").strip():
                raise Unsupported("link with both href and text")
            return
        self.entry.setdefault("links", []).append(attributes)
        value = _text(element, "link")
        if "&" in value:  # (both steps are no-ops without one)
            value = _ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&"))
        self.entry["link"] = value
        if value:
            self.entry["links"][-1]["href"] = value

    def _enclosure(self, attributes: dict[str, str]) -> None:
        href = attributes.pop("url", attributes.pop("uri", attributes.pop("href", None)))
        if href:
            attributes["href"] = href
        attributes["rel"] = "enclosure"
        self.entry.setdefault("links", []).append(attributes)

    def _category(self, element: Any, attributes: dict[str, str], name: str) -> None:
        if name == "media:category":
            attributes.setdefault("scheme", "http://search.yahoo.com/mrss/category_schema")
        self._add_tag(
            attributes.get("term"),
            attributes.get("scheme", attributes.get("domain")),
            attributes.get("label"),
        )
        value = _text(element, "category")
        if not value:
            return
        tags = self.entry.get("tags", [])
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def _add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        tags = self.entry.setdefault("tags", [])
        if not term and not scheme and not label:
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)

    def _save_author(self, key: str, value: str) -> None:
        self.entry.setdefault("author_detail", {})[key] = value
        self._sync_author()
        if not self.authors:
            self.authors.append({})
        self.authors[-1][key] = value

    def _sync_author(self) -> None:
        if not self.authors:
            self.authors.append({})  # feedparser's default: a fresh detail
        detail = self.authors[-1]
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                self.entry["author"] = f"{name} ({email})"
            elif name:
                self.entry["author"] = name
            elif email:
                self.entry["author"] = email
            return
        # Without a detail, feedparser splits the text into the detail: `author` stays, but
        # the detail now has a name, which a later sync would use.
        author = self.entry.get("author")
        if not author:
            return
        email = None
        found = _EMAIL.search(author)
        if found:
            email = found.group(0)
            author = author.replace(email, "").replace("()", "").replace("<>", "")
            author = author.replace("&lt;&gt;", "").strip()
            if author and author[0] == "(":
                author = author[1:]
            if author and author[-1] == ")":
                author = author[:-1]
            author = author.strip()
        if author or email:
            self.entry.setdefault("author_detail", detail)
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email


_Start = Callable[[_EntryReader, Any, str, dict[str, str], int, str | None], bool]
# Each emulated element's handler, by feedparser name: one look-up per element instead of a
# chain of set tests. The groups are disjoint (no name had two branches in that chain), so their
# order here is moot.
_STARTS: dict[str, _Start] = {
    **dict.fromkeys(TITLES, _EntryReader._start_title),
    **dict.fromkeys(DESCRIPTIONS | {"summary"}, _EntryReader._start_description),
    **dict.fromkeys(("content", "content:encoded"), _EntryReader._start_content),
    "link": _EntryReader._start_link,
    **dict.fromkeys(("guid", "id"), _EntryReader._start_id),
    **dict.fromkeys(PUBLISHED | UPDATED | CREATED, _EntryReader._start_date),
    **dict.fromkeys(CATEGORIES, _EntryReader._start_category),
    "media:keywords": _EntryReader._start_media_keywords,
    "enclosure": _EntryReader._start_enclosure,
    "media:content": _EntryReader._start_media_content,
    "media:thumbnail": _EntryReader._start_media_thumbnail,
    **dict.fromkeys(AUTHORS, _EntryReader._start_author),
    **dict.fromkeys(("name", "email"), _EntryReader._start_name),
    **dict.fromkeys(("uri", "url"), _EntryReader._start_uri),
    **dict.fromkeys(INERT_HANDLED, _EntryReader._start_inert),
}
assert _STARTS.keys() == EMULATED, "every emulated element has exactly one handler"
