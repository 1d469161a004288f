"""The shared vocabulary: post kinds, count names, and the plain data that crosses from the
collectors to the store, the digest, search and export. Imports nothing else of the project, so
any part may import it without pulling in another.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a name for the annotation only: this module imports nothing of the project
    from monitor.rows import PreparedPost

# Engagement counts we keep per post; a platform fills the ones it has.
METRIC_NAMES = ("views", "likes", "reposts", "replies", "quotes", "reactions", "bookmarks")
# The counts that add up to engagement; views (a scroll past is not a response) and bookmarks
# (private) are not among them.
ENGAGEMENT_NAMES = ("likes", "reposts", "replies", "quotes", "reactions")

KINDS = ("article", "post", "reply", "repost", "quote", "video", "photo", "live")


class CollectStatus(enum.StrEnum):
    OK = "ok"  # fetched and parsed
    NOT_MODIFIED = "not_modified"  # the server said nothing changed; nothing parsed
    PARTIAL = "partial"  # parsed with problems: what was recovered is kept
    FAILED = "failed"  # nothing usable; the source is retried later
    RETIRED = "retired"  # the publisher says it is gone for good
    SKIPPED = "skipped"  # not attempted (missing credentials, no collector)


@dataclass(frozen=True)
class SourceRef:
    """What a collector needs to know about the source it collects."""

    id: int
    key: str
    platform: str
    organisation: str
    url: str | None = None  # where to fetch now (after permanent redirects)
    handle: str | None = None
    platform_id: str | None = None
    api_url: str | None = None


@dataclass(frozen=True)
class SourceState:
    """What a collector remembers between runs: HTTP validators and a platform cursor."""

    etag: str | None = None
    last_modified: str | None = None
    cursor: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    type: str  # image | video | audio | other
    url: str | None = None
    thumbnail_url: str | None = None
    duration_s: int | None = None
    alt_text: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class PostData:
    """One post, article or video as the platform published it."""

    platform_post_id: str
    kind: str
    url: str | None = None
    author: str | None = None
    published_at: datetime | None = None  # timezone-aware UTC; None when the source gives none
    title: str | None = None
    text: str | None = None  # plain text, for search and excerpts
    html: str | None = None  # the original markup, unsanitised: sanitise on render
    language: str | None = None
    tags: tuple[str, ...] = ()  # hashtags or categories, without '#'
    links: tuple[str, ...] = ()  # http(s) links in the post, expanded where the platform says
    # We watch institutions, not citizens: mentions of watched accounts are kept by handle,
    # every other mention only counted.
    mentions: tuple[str, ...] = ()
    other_mentions: int = 0
    media: tuple[Media, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, int] | None = None  # METRIC_NAMES -> count, when the platform gives them

    def without_raw(self) -> PostData:
        """The post with an empty raw payload, its other fields the very same objects.

        A copy of its fields: `dataclasses.replace` runs `__init__`, which sets each field of
        a frozen dataclass through `object.__setattr__`, 4.2 µs against 0.5 µs for each new
        post of a cold pass (issue 15)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__, raw={})
        return copy


@dataclass(frozen=True)
class UnchangedPost:
    """A post a collector found as it was when last stored (by its memory of the source,
    `monitor.rows.sort_posts`), and so neither prepared nor sent: the store only checks that
    the database still holds it so."""

    platform_post_id: str
    content_hash: str
    published_at: datetime | None


@dataclass(frozen=True)
class AccountCounts:
    """The account's own counts as the platform reported them at one moment; None where the
    platform gives no such count (Flickr keeps followers private, a YouTube channel may hide
    its subscribers). Stored in `source_metrics` when one of them moved."""

    followers: int | None = None
    views: int | None = None  # total views of the account's content (YouTube, Flickr)
    posts: int | None = None  # the account's posts, videos, statuses or photos

    def is_empty(self) -> bool:
        return self.followers is None and self.views is None and self.posts is None


@dataclass(frozen=True)
class CollectResult:
    """What one attempt at a source produced."""

    status: CollectStatus
    posts: tuple[PostData, ...] = ()
    state: SourceState = SourceState()
    http_status: int | None = None
    error: str | None = None  # one line for admins: what went wrong and, where known, the fix
    retry_after: datetime | None = None  # the server asked us not to come back before this (capped)
    # A limit we know lifts then (X's monthly read budget or usage cap): not before this, uncapped.
    resume_at: datetime | None = None
    fresh_until: datetime | None = None  # the server said its answer stays fresh until then
    moved_to: str | None = None  # a permanent redirect: fetch here from now on
    bytes_received: int = 0
    resolved_id: str | None = None  # the account's stable platform id, once resolved
    deleted: tuple[str, ...] = ()  # platform post ids the platform says are gone
    api_units: int = 0  # billed reads or quota units this attempt spent (X, YouTube)
    account: AccountCounts | None = None  # the account's counts, when read this attempt
    # The posts' row values, computed beside the parsing (monitor.rows); the store prepares
    # any post they do not cover.
    prepared: tuple[PreparedPost, ...] = ()
    # Posts left out of `posts` because they are as last stored (a feed's unchanged entries).
    unchanged: tuple[UnchangedPost, ...] = ()


@dataclass(frozen=True)
class ApiUsage:
    """Units a platform's API has spent so far (X bills each read, YouTube counts quota), read
    from the database when a run starts. A collector adds what it spends during the run."""

    today: dict[str, int] = field(default_factory=dict)  # platform -> units, this UTC day
    this_month: dict[str, int] = field(default_factory=dict)  # platform -> units, this month
