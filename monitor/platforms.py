"""The platforms Omvärld collects: the one list every other part derives its own from (the
config's platform names, secrets and API addresses, the collector registry, the digest's brand
names), and the recognition of known platforms' feeds (`label_platform`). Imports nothing of the
project: the config reads it without loading a collector.

Adding a platform means one `PlatformSpec` here, its collector module, its tests and fixtures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class PlatformSpec:
    key: str  # as written in `[[sources]] platform = …` and stored in `sources.platform`
    name: str  # the brand, as admins and readers know it
    collector: str  # "module:Class", imported on first use so the CLI starts fast
    # The `[platforms.KEY]` setting naming the environment variable of its credential.
    secret_setting: str | None = None
    secret_required: bool = False  # False: without a credential it collects less, or a feed
    default_api_url: str | None = None  # `[platforms.KEY] api_url` overrides it


PLATFORMS: tuple[PlatformSpec, ...] = (
    PlatformSpec("feed", "Feed", "collectors.feeds:FeedCollector"),
    PlatformSpec(
        "x",
        "X",
        "collectors.x:XCollector",
        secret_setting="bearer_token_env",
        secret_required=True,  # X has no public reads
        default_api_url="https://api.twitter.com",
    ),
    PlatformSpec(
        "youtube",
        "YouTube",
        "collectors.youtube:YouTubeCollector",
        secret_setting="api_key_env",  # without it: the channel feed
        default_api_url="https://www.googleapis.com/youtube/v3",
    ),
    PlatformSpec(
        "mastodon",
        "Mastodon",
        "collectors.mastodon:MastodonCollector",
        secret_setting="access_token_env",  # the instance comes from the handle
    ),
    PlatformSpec(
        "bluesky",
        "Bluesky",
        "collectors.bluesky:BlueskyCollector",
        secret_setting="access_token_env",
        default_api_url="https://public.api.bsky.app",
    ),
    PlatformSpec(
        "facebook",
        "Facebook",
        "collectors.facebook:FacebookCollector",
        secret_setting="access_token_env",
        secret_required=True,  # Graph has no public reads
        default_api_url="https://graph.facebook.com/v21.0",
    ),
    PlatformSpec(
        "flickr",
        "Flickr",
        "collectors.flickr:FlickrCollector",
        secret_setting="api_key_env",  # without it: the public feed
        default_api_url="https://api.flickr.com/services/rest",
    ),
)
PLATFORM_KEYS: tuple[str, ...] = tuple(spec.key for spec in PLATFORMS)
SPECS: dict[str, PlatformSpec] = {spec.key: spec for spec in PLATFORMS}


def default_secret_env(key: str) -> str:
    """The variable a platform's credential is read from when `[platforms.KEY]` names none.

    Raises:
        KeyError: the platform is unknown or takes no credential.
    """
    setting = SPECS[key].secret_setting
    if setting is None:
        raise KeyError(f"platform {key!r} takes no credential")
    return default_env_name(key, setting)


def default_env_name(key: str, setting: str) -> str:
    """bearer_token_env of x -> X_BEARER_TOKEN; access_token_env of facebook ->
    FACEBOOK_ACCESS_TOKEN."""
    return f"{key.upper()}_{setting.removesuffix('_env').upper()}"


@dataclass(frozen=True)
class FeedPlatform:
    """A platform whose feeds are collected as `feed` sources but shown under its own name."""

    key: str  # a `PlatformSpec` key where the platform has a collector of its own
    name: str
    hosts: tuple[str, ...]  # the platform's own hosts (subdomains included)


# Feeds readers know by their platform (issue 13: "Skatteverket på Webb/nyhetsflöde" was a
# YouTube channel). Mastodon runs on any host, so it is recognised by its address patterns.
FEED_PLATFORMS: tuple[FeedPlatform, ...] = (
    FeedPlatform("youtube", "YouTube", ("youtube.com", "youtu.be")),
    FeedPlatform("flickr", "Flickr", ("flickr.com", "staticflickr.com")),
    FeedPlatform("bluesky", "Bluesky", ("bsky.app", "bsky.social")),
    FeedPlatform("vimeo", "Vimeo", ("vimeo.com",)),
    FeedPlatform("slideshare", "SlideShare", ("slideshare.net",)),
    FeedPlatform("x", "X", ("x.com", "twitter.com", "t.co")),
    FeedPlatform("facebook", "Facebook", ("facebook.com", "fb.com", "fb.me")),
)
_BY_KEY = {platform.key: platform for platform in FEED_PLATFORMS}
# Every value `label_platform` gives, and so `sources.channel` holds: what `--platform` and
# `?platform=` accept (a YouTube channel's feed is found by `youtube`, a Vimeo feed by `vimeo`).
CHANNEL_KEYS: tuple[str, ...] = (
    *PLATFORM_KEYS,
    *(platform.key for platform in FEED_PLATFORMS if platform.key not in SPECS),
)
# A Mastodon account's feed (`/@name.rss`, `/users/name.rss`) and post (`/@name/123`) addresses.
_MASTODON = re.compile(r"^/(?:@[\w.-]+(?:\.rss|/\d+/?)|users/[\w.-]+(?:\.rss|/statuses/\d+))$")


def label_platform(platform: str, url: str | None, post_url: str | None = None) -> str:
    """The platform a source is shown under: its own for API sources; for a feed, the platform
    the feed's address (else one of its posts' addresses) belongs to, else "feed".

    The one place addresses are recognised. Stored as `sources.channel` (set when a source is
    added or its address changes, and from its first posts while a feed's address says nothing),
    which the digest, exports, search, `compare` and the web read and filter by.
    """
    if platform != "feed":
        return platform
    for address in (url, post_url):
        found = _recognise(address) if address else None
        if found:
            return found
    return "feed"


def describe_channel(platform: str, channel: str) -> str:
    """A source's platform for a listing: "youtube (feed)" for a YouTube channel's feed (the
    platform readers know it by, and how it is collected), else the platform alone."""
    return platform if channel in ("", platform) else f"{channel} ({platform})"


def _recognise(url: str) -> str | None:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    if not host:
        return None
    for candidate in FEED_PLATFORMS:
        if any(host == own or host.endswith("." + own) for own in candidate.hosts):
            return candidate.key
    return "mastodon" if _MASTODON.match(parts.path) else None


def platform_hosts(label: str) -> tuple[str, ...]:
    """The hosts of a platform's own pages (x.com for X): a link there is no shared website."""
    known = _BY_KEY.get(label)
    return known.hosts if known else ()


def platform_name(label: str) -> str:
    """The brand a reader knows a platform by ("YouTube"); the key itself when unknown."""
    spec = SPECS.get(label)
    if spec is not None:
        return spec.name
    known = _BY_KEY.get(label)
    return known.name if known else label
