"""A post as the posts table stores it: the values that depend on the post alone. Pure.

Storing a post computes its content hash, its trend terms and phrases, its search stems and its
JSON columns; that is most of what ingest costs in Python. All of it depends on the post only,
so a feed's posts are prepared where they were parsed (a parse worker, `sort_posts`), and the
one database thread of a collection only writes them. Posts that arrive unprepared (the API
collectors') are prepared by the store itself, with the same function.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.chunks import read_post_text
from monitor.jsontext import dump_json, encode_json
from monitor.stems import stem_text
from monitor.terms import stored_phrases, stored_terms
from monitor.text import strip_control
from monitor.types import Media, PostData, UnchangedPost
from monitor.values import is_http_url


@dataclass(frozen=True)
class PreparedPost:
    """What storing `post` computes from it alone.

    `post` is the very object the values were computed from: the store uses a preparation only
    for that object (`prepared_for`), so a collector that rebuilds its posts after parsing
    (`dataclasses.replace`) gets them prepared again instead of storing stale values.
    """

    post: PostData
    content_hash: str
    values: dict[str, Any]  # the row's columns, JSON ones already encoded
    title_stems: str | None
    text_stems: str | None


def prepare_post(
    post: PostData, content_hash: str | None = None, *, sent: PostData | None = None
) -> PreparedPost:
    """The post's row values. Addresses that are not http(s) must already be gone
    (`keep_web_addresses`): the hash covers what is stored. `content_hash`, when given, is the
    post's (`compute_content_hash`), computed already. `sent`, when given, is the object the
    preparation is for: `post` as it is sent to the store (`sort_posts`)."""
    content_hash = content_hash or compute_content_hash(post)
    title, text = clean_text(post.title), clean_text(post.text)
    if title is post.title and text is post.text:
        # Each chunk of the text read once, for its stems and its terms alike (issue 15).
        terms, title_stems, text_stems = read_post_text(title, text, post.tags)
    else:
        # Cleaning removed a control character: the terms are of the post as it came
        # (`stored_terms`), the stems of the cleaned text.
        terms = stored_terms(post.title, post.text, post.tags)
        title_stems, text_stems = stem_text(title), stem_text(text)
    values = {
        "platform_post_id": post.platform_post_id,
        "kind": post.kind,
        "url": clean_text(post.url),
        "author": clean_text(post.author),
        "title": title,
        "text": text,
        "html": clean_text(post.html),
        "language": clean_text(post.language),
        # JSON columns lose their NULs in `encode_json`, in one pass over the encoded text.
        "tags": encode_json([strip_control(tag) for tag in post.tags]),
        "links": encode_json(list(post.links)),
        "mentions": encode_json([strip_control(mention) for mention in post.mentions]),
        "other_mentions": post.other_mentions,
        "media": encode_json(
            [{k: v for k, v in _media_fields(m).items() if v is not None} for m in post.media]
        ),
        # Encoded here, in the parse worker for a feed's post: it was the largest piece of
        # Python a new post cost the database thread of a cold pass (issue 15).
        "raw": encode_json(post.raw),
        "terms": terms,
        "phrases": stored_phrases(post.title, post.text),
        "content_hash": content_hash,
    }
    return PreparedPost(sent or post, content_hash, values, title_stems, text_stems)


def prepare_posts(posts: Sequence[PostData]) -> tuple[PreparedPost, ...]:
    """`prepare_post` for each post without its non-web addresses, as the store will see it."""
    return sort_posts(posts, None).prepared


@dataclass(frozen=True)
class SortedPosts:
    """A read's posts sorted by a source's memory of them (`sort_posts`)."""

    # New, changed or not remembered: to be stored. Without their raw payload, which their
    # preparation holds encoded.
    posts: tuple[PostData, ...]
    prepared: tuple[PreparedPost, ...]  # their row values, one for each
    unchanged: tuple[UnchangedPost, ...]  # as remembered: not to be prepared nor sent
    seen: str  # the memory of this read, for the next


def sort_posts(posts: Sequence[PostData], seen: str | None) -> SortedPosts:
    """The posts without their non-web addresses, as the store will see them, prepared, but
    for those `seen` remembers unchanged.

    `seen` is a previous read's memory: a digest of each post's id and content hash. A feed
    answering with a body because one entry changed repeats its other twenty unchanged, and
    preparing those (trend terms, stems, JSON) and sending them to the store was most of what
    such a feed cost (issue 15). Posts with counts are always sent, since their counts move
    without their content; so is an id the feed lists twice, which the store resolves. The
    store checks that unchanged posts are still stored as remembered (`ingest_posts`).
    """
    known = set(seen.split()) if seen else set()
    listed = Counter(post.platform_post_id for post in posts) if known else Counter()
    kept: list[PostData] = []
    prepared: list[PreparedPost] = []
    unchanged: list[UnchangedPost] = []
    digests: list[str] = []
    for post in map(keep_web_addresses, posts):
        content_hash = compute_content_hash(post)
        digest = _remembered_as(post.platform_post_id, content_hash)
        digests.append(digest)
        if digest in known and post.metrics is None and listed[post.platform_post_id] == 1:
            unchanged.append(UnchangedPost(post.platform_post_id, content_hash, post.published_at))
        else:
            # The raw payload crosses to the store once, encoded in the values, not also as
            # itself.
            sent = post.without_raw()
            kept.append(sent)
            prepared.append(prepare_post(post, content_hash, sent=sent))
    return SortedPosts(tuple(kept), tuple(prepared), tuple(unchanged), " ".join(digests))


def _remembered_as(platform_post_id: str, content_hash: str) -> str:
    """A post's id and content in 16 characters: a memory of 100 entries stays under 2 KB."""
    key = f"{platform_post_id}\n{content_hash}".encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def prepared_for(post: PostData, given: dict[int, PreparedPost]) -> PreparedPost:
    """The preparation of this very post among `given` (by identity), else a new one."""
    prepared = given.get(id(post))
    if prepared is not None and prepared.post is post:
        return prepared
    return prepare_post(post)


# The columns a new row adds to a prepared post's own values (`added_values`).
ADDED_COLUMNS = ("source_id", "published_at", "first_seen_at", "fetched_at")
# The columns `post_row` fills.
POST_ROW_COLUMNS = frozenset(
    {
        "platform_post_id", "kind", "url", "author", "title", "text", "html", "language", "tags",
        "links", "mentions", "other_mentions", "media", "raw", "terms", "phrases",
        "content_hash", "source_id", "published_at", "first_seen_at", "fetched_at",
    }
)  # fmt: skip


def post_row(source_id: int, prepared: PreparedPost, now: datetime) -> dict[str, Any]:
    """A new posts row."""
    return prepared.values | dict(
        zip(ADDED_COLUMNS, added_values(source_id, prepared, now), strict=True)
    )


def added_values(
    source_id: int, prepared: PreparedPost, now: datetime
) -> tuple[int, datetime, datetime, datetime]:
    """What a new posts row holds beside the post's prepared values, in ADDED_COLUMNS' order."""
    # An undated entry is dated when we first saw it.
    return source_id, prepared.post.published_at or now, now, now


def compute_content_hash(post: PostData) -> str:
    """A fingerprint of what a reader sees; counts and the raw payload are left out."""
    visible = [
        post.kind,
        post.url,
        post.author,
        post.published_at.isoformat() if post.published_at else None,
        post.title,
        post.text,
        post.html,
        post.language,
        list(post.tags),
        list(post.links),
        list(post.mentions),
        post.other_mentions,
        [_media_fields(m) for m in post.media],
    ]
    return hashlib.sha256(dump_json(visible)).hexdigest()


def keep_web_addresses(post: PostData) -> PostData:
    """The post without its addresses that are not http(s) (its url, links, media): a
    `javascript:` link from a hostile source would run when a reader clicks it in a digest.

    The one place this rule is enforced, before the content hash, so the hash covers what is
    stored. Returns the post itself when every address is a web address, as nearly all are.
    """
    if (
        (post.url is None or is_http_url(post.url))
        and (not post.links or all(map(is_http_url, post.links)))
        and (not post.media or all(map(_has_web_addresses, post.media)))
    ):
        return post
    return dataclasses.replace(
        post,
        url=post.url if is_http_url(post.url) else None,
        links=tuple(filter(is_http_url, post.links)),
        media=tuple(
            dataclasses.replace(
                media,
                url=media.url if is_http_url(media.url) else None,
                thumbnail_url=media.thumbnail_url if is_http_url(media.thumbnail_url) else None,
            )
            for media in post.media
        ),
    )


def _has_web_addresses(media: Media) -> bool:
    return (media.url is None or is_http_url(media.url)) and (
        media.thumbnail_url is None or is_http_url(media.thumbnail_url)
    )


def clean_text(value: str | None) -> str | None:
    """Drop control characters but tab and newline: NUL, which PostgreSQL refuses in text, and
    the ESC sequences of a hostile feed, which a terminal showing the post would run."""
    return strip_control(value) if value else value


def _media_fields(media: Media) -> dict[str, Any]:
    # dataclasses.asdict deep-copies; this runs for every post of every feed.
    return {
        "type": media.type,
        "url": media.url,
        "thumbnail_url": media.thumbnail_url,
        "duration_s": media.duration_s,
        "alt_text": clean_text(media.alt_text),
        "width": media.width,
        "height": media.height,
    }
