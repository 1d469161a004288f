"""The platforms Omvärld collects: the one list every other part derives its own from (the
config's platform names, secrets and API addresses, the collector registry, the digest's brand
names). Imports nothing: the config reads it without loading a collector.

Adding a platform means one `PlatformSpec` here, its collector module, its tests and fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass


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
