"""Load and validate the TOML configuration.

Every problem is reported as one line naming the file, the key path and the reason, so an admin
can fix a broken file without reading a traceback. Secrets never appear in the file: a platform
names the environment variable that holds its token, and `secret()` reads it at the moment of use.
"""

from __future__ import annotations

import glob
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from monitor.schedule import SchedulePolicy

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

PLATFORMS = ("feed", "x", "youtube", "mastodon", "bluesky", "facebook", "flickr")
Platform = Literal["feed", "x", "youtube", "mastodon", "bluesky", "facebook", "flickr"]

DEFAULT_CONFIG_PATH = "config.toml"
DEFAULT_DATABASE_URL = "sqlite:///omvarld.db"

# Which environment-variable setting a platform cannot work without. Platforms absent here work
# without credentials (feeds, Mastodon and Bluesky public APIs; YouTube and Flickr fall back to
# their public feeds).
REQUIRED_SECRETS: dict[str, str] = {"x": "bearer_token_env", "facebook": "access_token_env"}

DEFAULT_API_URLS: dict[str, str] = {
    "x": "https://api.twitter.com",
    "youtube": "https://www.googleapis.com/youtube/v3",
    "facebook": "https://graph.facebook.com/v21.0",
    "flickr": "https://api.flickr.com/services/rest",
    "bluesky": "https://public.api.bsky.app",
}

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: int | str) -> int:
    """Seconds from an int or a string like "90", "15m", "2h", "1d"."""
    if isinstance(value, bool):
        raise ValueError('expected a duration like 900, "15m", "2h" or "1d"')
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f'expected a duration like 900, "15m", "2h" or "1d", got {value!r}')
        seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


class _Strict(BaseModel):
    # Unknown keys are typos far more often than they are intentional.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str = DEFAULT_DATABASE_URL


class CollectConfig(_Strict):
    concurrency: int = Field(64, ge=1, le=1024)
    per_host: int = Field(2, ge=1, le=256)
    backfill_days: int = Field(30, ge=0)
    backfill_posts: int = Field(200, ge=1)
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_body_bytes: int = Field(15 * 1024 * 1024, ge=1024)
    contact_url: str = "https://github.com/omvarld/omvarld"
    # Scheduling, in seconds (durations like "15m" are accepted).
    interval: int = 3600  # until a source has a posting rhythm
    min_interval: int = 900
    max_interval: int = 86400
    max_backoff: int = 6 * 3600
    broken_after: int = 86400
    jitter: float = Field(0.1, ge=0, le=0.5)
    # The service.
    tick: int = 30  # seconds between looks for due sources
    # A claimed source is another worker's again after this unless its holder renews it;
    # holders renew while they work, so a dead worker's sources return within one lease.
    lease: int = Field(60, ge=3)
    parse_processes: int = Field(0, ge=0)  # 0: one per core
    keep_runs_days: int = Field(90, ge=1)  # collection_runs older than this are pruned daily
    refresh_days: int = Field(14, ge=0)  # counts of posts younger than this are refreshed

    @field_validator(
        "interval",
        "min_interval",
        "max_interval",
        "max_backoff",
        "broken_after",
        "tick",
        "lease",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: int | str) -> int:
        return parse_duration(value)

    @model_validator(mode="after")
    def _bounds(self) -> CollectConfig:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval is longer than max_interval")
        return self

    def policy(self) -> SchedulePolicy:
        from monitor.schedule import SchedulePolicy

        return SchedulePolicy(
            min_interval=timedelta(seconds=self.min_interval),
            max_interval=timedelta(seconds=self.max_interval),
            default_interval=timedelta(seconds=self.interval),
            jitter=self.jitter,
            max_backoff=timedelta(seconds=self.max_backoff),
            broken_after=timedelta(seconds=self.broken_after),
        )


class PlatformConfig(_Strict):
    api_url: str | None = None
    bearer_token_env: str | None = None
    api_key_env: str | None = None
    access_token_env: str | None = None
    monthly_read_budget: int | None = Field(None, ge=0)
    daily_quota_units: int | None = Field(None, ge=0)  # YouTube Data API: 10,000 by default


class GroupConfig(_Strict):
    name: str | None = None
    description: str | None = None


class SourceConfig(_Strict):
    platform: Platform
    url: str | None = None
    handle: str | None = None
    organisation: str
    groups: tuple[str, ...] = ()
    key: str | None = None
    name: str | None = None
    interval: int | None = None
    enabled: bool = True
    api_url: str | None = None

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: int | str | None) -> int | None:
        return None if value is None else parse_duration(value)

    @field_validator("url", "api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@/-]*", value):
            raise ValueError("a key uses letters, digits and . _ : @ / - only")
        return value

    @model_validator(mode="after")
    def _address(self) -> SourceConfig:
        if self.platform == "feed" and not self.url:
            raise ValueError("a feed source needs url")
        if self.platform != "feed" and not (self.handle or self.url):
            raise ValueError(f"a {self.platform} source needs handle")
        return self

    @property
    def stable_key(self) -> str:
        return self.key or derive_source_key(self.platform, self.url, self.handle)


_SCHEDULE = re.compile(r"(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):([0-5]\d)")


def check_schedule(value: str) -> str:
    """A weekly send time, "mon 07:00" (weekday and local time)."""
    if not _SCHEDULE.fullmatch(value.strip()):
        raise ValueError(f'expected a weekday and time like "mon 07:00", got {value!r}')
    return value.strip()


# A failed digest is tried again by later runs (`omvarld run` every half hour) until it has had
# this many attempts: a mailbox that refuses it all day is a matter for a person, not a loop.
MAX_ATTEMPTS = 5


class DigestConfig(_Strict):
    """`[digest]`: when and how weekly digests go out."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schedule: str = "mon 07:00"  # weekday and local time of the weekly send
    timezone: str = "Europe/Stockholm"
    language: Literal["sv", "en"] = "sv"
    sender: str = Field("Omvärld <omvarld@localhost>", alias="from")
    top_posts: int = Field(10, ge=1, le=50)
    unsubscribe_url: str | None = None  # https: adds List-Unsubscribe-Post (one click)
    unsubscribe_mailto: str | None = None
    list_id: str = "omvarld.localhost"
    settings_url: str | None = None  # where a recipient changes what they follow
    outbox: str | None = None  # scheduled sends write .eml/.html here instead of using SMTP
    max_attempts: int = Field(MAX_ATTEMPTS, ge=1, le=50)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return check_schedule(value)


class SmtpConfig(_Strict):
    """`[smtp]`: the relay digests are sent through."""

    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None  # the password is read from this environment variable
    timeout: float = Field(30.0, gt=0)
    # PEM file of the CA that signed the relay's certificate, for an internal CA; default: the
    # system's trusted CAs. Certificates are always verified.
    ca_file: str | None = None


class RecipientConfig(_Strict):
    """One `[[recipients]]` table."""

    email: str
    name: str | None = None
    language: Literal["sv", "en"] | None = None  # default: [digest] language
    organisation: str | None = None
    groups: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    keywords: tuple[str, ...] = ()
    schedule: str | None = None  # overrides [digest] schedule for this recipient
    skip_empty: bool = True

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_schedule(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", value):
            raise ValueError(f"not an email address: {value!r}")
        return value


class RetentionConfig(_Strict):
    """`[retention]`: how long what was collected is kept; every key absent keeps everything.

    Ages are in whole UTC days and counted by publication (posts, raw payloads) or by observation
    (counts). `posts_after_days` is declared first because the others are checked against it.
    """

    # Strict: `true` or "30" for a number of days is a mistake, not something to coerce.
    posts_after_days: StrictInt | None = Field(None, ge=1)
    raw_after_days: StrictInt | None = Field(None, ge=1)
    metrics_daily_after_days: StrictInt | None = Field(None, ge=1)

    @field_validator("raw_after_days", "metrics_daily_after_days")
    @classmethod
    def _before_posts_go(cls, value: int | None, info: ValidationInfo) -> int | None:
        # A step that can only ever touch posts already deleted does nothing: most likely the two
        # numbers were swapped, so it is refused rather than silently ignored.
        posts_days = info.data.get("posts_after_days")
        if value is not None and posts_days is not None and value >= posts_days:
            raise ValueError(
                f"{value} days is not shorter than posts_after_days ({posts_days}): posts are "
                f"deleted before this would apply; make it shorter or remove it"
            )
        return value

    @property
    def enabled(self) -> bool:
        return any(
            days is not None
            for days in (self.posts_after_days, self.raw_after_days, self.metrics_daily_after_days)
        )


class Config(_Strict):
    path: Path
    database: DatabaseConfig = DatabaseConfig()
    collect: CollectConfig = CollectConfig()
    platforms: dict[Platform, PlatformConfig] = {}
    groups: dict[str, GroupConfig] = {}
    sources: tuple[SourceConfig, ...] = ()
    digest: DigestConfig = DigestConfig()
    smtp: SmtpConfig = SmtpConfig()
    recipients: tuple[RecipientConfig, ...] = ()
    retention: RetentionConfig = RetentionConfig()

    @property
    def database_url(self) -> str:
        """The database URL, environment first, relative SQLite paths anchored at the config."""
        url = os.environ.get("OMVARLD_DATABASE_URL") or self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = url[len(prefix) :]
            if path and not os.path.isabs(path):
                return prefix + str((self.path.parent / path).resolve())
        return url

    def platform(self, name: str) -> PlatformConfig:
        return self.platforms.get(name, PlatformConfig())  # type: ignore[call-overload]

    def api_url(self, source: SourceConfig) -> str | None:
        return (
            source.api_url
            or self.platform(source.platform).api_url
            or DEFAULT_API_URLS.get(source.platform)
        )


def derive_source_key(platform: str, url: str | None, handle: str | None) -> str:
    """A readable, stable id: `feed:www.example.se/rss`, `mastodon:user@instance`."""
    if handle:
        return f"{platform}:{handle.strip().lstrip('@').lower()}"
    parts = urlsplit(url or "")
    address = parts.netloc.lower() + parts.path.rstrip("/")
    if parts.query:
        address += "?" + parts.query
    return f"{platform}:{address}"


def missing_secret(config: Config, platform: str) -> str | None:
    """The environment variable a platform needs and lacks, or None when it can run."""
    setting = REQUIRED_SECRETS.get(platform)
    if setting is None:
        return None
    env_name = getattr(config.platform(platform), setting) or _default_env_name(platform, setting)
    return None if os.environ.get(env_name) else env_name


def secret(config: Config, platform: str, setting: str) -> str | None:
    """Read a platform secret from the environment variable the config names."""
    env_name = getattr(config.platform(platform), setting) or _default_env_name(platform, setting)
    return os.environ.get(env_name) or None


def _default_env_name(platform: str, setting: str) -> str:
    # bearer_token_env -> X_BEARER_TOKEN, access_token_env -> FACEBOOK_ACCESS_TOKEN
    return f"{platform.upper()}_{setting.removesuffix('_env').upper()}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.key}: {self.reason}" if self.key else f"{self.file}: {self.reason}"
        )


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class _Origin:
    file: str
    index: int


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, merge includes, validate. Raises ConfigError listing every problem found."""
    path = Path(path)
    shown = str(path)
    document = _read_toml(path, shown)
    problems: list[Problem] = []

    includes = document.pop("include", [])
    raw_sources = _source_entries(document.pop("sources", []), shown, problems)

    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        problems.append(Problem(shown, "include", "expected a list of file patterns"))
        includes = []
    for pattern in includes:
        for included in _expand_include(path, pattern, shown, problems):
            try:
                extra = _read_toml(included, str(included))
            except ConfigError as error:
                problems += error.problems
                continue
            unknown = sorted(set(extra) - {"sources"})
            if unknown:
                problems.append(
                    Problem(str(included), unknown[0], "an included file holds only [[sources]]")
                )
            raw_sources += _source_entries(extra.get("sources", []), str(included), problems)

    sources: list[SourceConfig] = []
    origins: dict[int, _Origin] = {}
    for raw, origin in raw_sources:
        try:
            source = SourceConfig.model_validate(raw)
        except ValidationError as error:
            problems += _problems_from(error, origin.file, f"sources[{origin.index}]")
            continue
        origins[len(sources)] = origin
        sources.append(source)
    problems += _find_duplicates(sources, origins)

    try:
        config = Config.model_validate({**document, "path": path, "sources": ()})
    except ValidationError as error:
        problems += _problems_from(error, shown, "")
        config = None
    if config is not None:
        problems += _check_groups(config, sources, origins)
    if problems or config is None:
        raise ConfigError(problems)
    return config.model_copy(update={"sources": tuple(sources)})


def _source_entries(entries: Any, file: str, problems: list[Problem]) -> list[tuple[Any, _Origin]]:
    if not isinstance(entries, list):
        problems.append(Problem(file, "sources", "expected an array of tables: write [[sources]]"))
        return []
    return [(entry, _Origin(file, i)) for i, entry in enumerate(entries)]


def _read_toml(path: Path, shown: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([Problem(shown, "", "file not found")]) from None
    except OSError as error:
        raise ConfigError([Problem(shown, "", f"cannot read: {error.strerror}")]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([Problem(shown, "", f"invalid TOML: {error}")]) from None


def _expand_include(base: Path, pattern: str, shown: str, problems: list[Problem]) -> list[Path]:
    full = pattern if os.path.isabs(pattern) else str(base.parent / pattern)
    if glob.has_magic(pattern):
        return [Path(p) for p in sorted(glob.glob(full))]
    if not os.path.exists(full):
        problems.append(Problem(shown, "include", f"{pattern!r}: file not found"))
        return []
    return [Path(full)]


def _problems_from(error: ValidationError, file: str, prefix: str) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        key = (prefix + loc).lstrip(".")
        reason = item["msg"].removeprefix("Value error, ")
        if key.endswith(".[key]"):  # a bad table name, such as [platforms.tiktok]
            key = key.removesuffix(".[key]")
        if item["type"] == "literal_error" and "platform" in key:
            reason = f"unknown platform {item['input']!r}; expected one of {', '.join(PLATFORMS)}"
        elif item["type"] == "model_type":
            reason = "expected a table"
        elif item["type"] == "extra_forbidden":
            reason = "unknown key"
        problems.append(Problem(file, key, reason))
    return problems


def _find_duplicates(sources: list[SourceConfig], origins: Mapping[int, _Origin]) -> list[Problem]:
    """Two entries with the same key, or the same address under two keys, are one mistake."""
    problems = []
    seen: dict[tuple[str, str], int] = {}
    for i, source in enumerate(sources):
        address = derive_source_key(source.platform, source.url, source.handle)
        for marker in (("key", source.stable_key), ("address", address)):
            if marker in seen:
                first, here = origins[seen[marker]], origins[i]
                problems.append(
                    Problem(
                        here.file,
                        f"sources[{here.index}]",
                        f"duplicate source {marker[0]} {marker[1]!r} "
                        f"(first in {first.file} sources[{first.index}])",
                    )
                )
                break
        else:
            seen[("key", source.stable_key)] = seen[("address", address)] = i
    return problems


def _check_groups(
    config: Config, sources: Iterable[SourceConfig], origins: Mapping[int, _Origin]
) -> list[Problem]:
    # Groups need no declaration; once [groups] declares some, a reference to an undeclared
    # one is most likely a typo.
    if not config.groups:
        return []
    problems = []
    for i, source in enumerate(sources):
        for group in source.groups:
            if group not in config.groups:
                origin = origins[i]
                problems.append(
                    Problem(
                        origin.file,
                        f"sources[{origin.index}].groups",
                        f"undeclared group {group!r}",
                    )
                )
    return problems
