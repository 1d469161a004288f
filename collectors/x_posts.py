"""X's answers as posts: pure functions from the API v2 documents to `PostData`, and the ids,
times, kinds and counts they carry. No I/O; `collectors.x` does the calls and the budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collectors.api import ApiError
from monitor.platforms import SPECS
from monitor.types import Media, PostData
from monitor.values import parse_time

PLATFORM = SPECS["x"].name
# Snowflake ids carry their creation time: milliseconds since this epoch, above bit 22.
SNOWFLAKE_EPOCH_MS = 1288834974657
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
# X's own language codes for posts without language: undetermined, media, hashtags or mentions
# only, no linguistic content.
NO_LANGUAGE = frozenset({"und", "zxx", "qme", "qht", "qam", "qct", "qst"})
MAX_DETAIL = 200  # characters of X's own explanation kept in an error line
METRICS = {
    "impression_count": "views",
    "like_count": "likes",
    "retweet_count": "reposts",
    "reply_count": "replies",
    "quote_count": "quotes",
    "bookmark_count": "bookmarks",
}
KIND_OF_REFERENCE = {"retweeted": "repost", "quoted": "quote", "replied_to": "reply"}


@dataclass(frozen=True)
class Account:
    """Whose posts a source collects: the stable id and the username to show and link."""

    id: str
    username: str


def parse_user(document: Mapping[str, Any], handle: str) -> Account:
    """The account from a user lookup answer.

    Raises:
        ApiError: the answer says the account does not exist (or is suspended).
    """
    data = document.get("data")
    if not isinstance(data, dict) or not data.get("id"):
        raise ApiError(f"{PLATFORM}: account @{handle} not found{explain(document)}", gone=True)
    return Account(id=str(data["id"]), username=str(data.get("username") or handle))


def find_deleted_ids(errors: Iterable[Mapping[str, Any]]) -> set[str]:
    """Post ids a post lookup reports as not found: deleted by their author or by X."""
    return {
        str(error.get("resource_id") or error.get("value"))
        for error in errors
        if error.get("type") == NOT_FOUND and error.get("resource_type", "tweet") == "tweet"
    }


def parse_tweets(
    document: Mapping[str, Any], *, account: Account, watched: frozenset[str]
) -> list[PostData]:
    """Posts from a timeline or post lookup answer, in the answer's order.

    Args:
        account: the source's account, for urls, authors and what to keep in `raw`.
        watched: lower-cased usernames of the configured X sources; other mentions are counted.
    """
    media = {
        item["media_key"]: item
        for item in (document.get("includes") or {}).get("media", [])
        if item.get("media_key")
    }
    return [make_post(tweet, media, account, watched) for tweet in document.get("data") or []]


def make_post(
    tweet: Mapping[str, Any],
    media_by_key: Mapping[str, Mapping[str, Any]],
    account: Account,
    watched: frozenset[str],
) -> PostData:
    """One post from an X post object and the answer's media."""
    tweet_id = str(tweet["id"])
    first_id = find_first_id(tweet)
    note = tweet.get("note_tweet") or {}
    entities = note.get("entities") or tweet.get("entities") or {}
    usernames = _unique(m.get("username", "") for m in entities.get("mentions", []))
    kept = tuple(u for u in usernames if u.lower() in watched)
    keys = (tweet.get("attachments") or {}).get("media_keys", [])
    attached = [media_by_key[key] for key in keys if key in media_by_key]
    language = tweet.get("lang")
    return PostData(
        platform_post_id=first_id,
        kind=_kind_of(tweet),
        url=f"https://x.com/{account.username}/status/{tweet_id}",
        author=account.username,
        published_at=_published_at(tweet, first_id),
        text=_unescape(note.get("text") or tweet.get("text") or "") or None,
        language=None if not language or language in NO_LANGUAGE else language,
        tags=_unique(h.get("tag", "") for h in entities.get("hashtags", [])),
        links=_unique(
            u.get("expanded_url", "")
            for u in entities.get("urls", [])
            # A link carrying a media key is the attachment's own x.com page.
            if not u.get("media_key") and isinstance(u.get("expanded_url"), str)
        ),
        mentions=kept,
        other_mentions=len(usernames) - len(kept),
        media=tuple(_make_media(item) for item in attached),
        raw=_private_raw(tweet, attached, account, watched),
        metrics=_metrics(tweet.get("public_metrics")),
    )


def find_first_id(tweet: Mapping[str, Any]) -> str:
    """The id of a post's first version, which keys the post through its edits."""
    history = tweet.get("edit_history_tweet_ids") or []
    return str(history[0]) if history else str(tweet["id"])


def is_superseded(tweet: Mapping[str, Any]) -> bool:
    """Whether a newer version of this post exists (it was edited after this version)."""
    history = tweet.get("edit_history_tweet_ids") or []
    return bool(history) and str(history[-1]) != str(tweet["id"])


def snowflake_time(post_id: str) -> datetime | None:
    """When X created an id: X ids carry their creation time in milliseconds."""
    try:
        milliseconds = (int(post_id) >> 22) + SNOWFLAKE_EPOCH_MS
    except ValueError:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


def _published_at(tweet: Mapping[str, Any], first_id: str) -> datetime | None:
    # An edited version's created_at is the edit's time; the post was published with its first id.
    if first_id != str(tweet["id"]):
        return snowflake_time(first_id)
    return parse_time(tweet.get("created_at")) or snowflake_time(first_id)


def _kind_of(tweet: Mapping[str, Any]) -> str:
    types = {ref.get("type") for ref in tweet.get("referenced_tweets") or []}
    for reference, kind in KIND_OF_REFERENCE.items():
        if reference in types:
            return kind
    return "post"


def _make_media(item: Mapping[str, Any]) -> Media:
    kind = item.get("type")
    duration = item.get("duration_ms")
    return Media(
        type="image"
        if kind == "photo"
        else "video"
        if kind in ("video", "animated_gif")
        else "other",
        url=item.get("url"),
        thumbnail_url=item.get("preview_image_url"),
        duration_s=round(duration / 1000) if isinstance(duration, int | float) else None,
        alt_text=item.get("alt_text") or None,
        width=item.get("width"),
        height=item.get("height"),
    )


def _metrics(counts: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not counts:
        return None
    metrics = {
        name: int(counts[key]) for key, name in METRICS.items() if isinstance(counts.get(key), int)
    }
    return metrics or None


def _private_raw(
    tweet: Mapping[str, Any],
    media: list[Mapping[str, Any]],
    account: Account,
    watched: frozenset[str],
) -> dict[str, Any]:
    """The post as X returned it, without the citizens in it: mentions of accounts we do not
    watch are removed, and so is the id of a replied-to account other than the source's own."""
    raw = dict(tweet)
    if "entities" in raw:
        raw["entities"] = _watched_entities(raw["entities"], watched)
    if isinstance(raw.get("note_tweet"), dict) and "entities" in raw["note_tweet"]:
        note = dict(raw["note_tweet"])
        note["entities"] = _watched_entities(note["entities"], watched)
        raw["note_tweet"] = note
    if str(raw.get("in_reply_to_user_id", account.id)) != account.id:
        del raw["in_reply_to_user_id"]
    if media:
        raw["includes"] = {"media": [dict(m) for m in media]}
    return raw


def _watched_entities(entities: Mapping[str, Any], watched: frozenset[str]) -> dict[str, Any]:
    kept = dict(entities)
    if "mentions" in kept:
        kept["mentions"] = [
            m for m in kept["mentions"] if str(m.get("username", "")).lower() in watched
        ]
    return kept


def _unescape(text: str) -> str:
    # X escapes exactly these three in post text.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def explain(document: Mapping[str, Any]) -> str:
    """X's own words from an answer's first error or problem, as ': detail', or ''."""
    errors = document.get("errors") or [document]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    words = first.get("detail") or first.get("message") or first.get("title")
    if not words:
        return ""
    line = " ".join(str(words).split())
    return ": " + (line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - 1] + "…")
