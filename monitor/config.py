"""Load and validate the TOML configuration.

Every problem is reported as one line naming the file, the key path and the reason, so an admin
can fix a broken file without reading a traceback. Secrets never appear in the file: a platform
names the environment variable that holds its token, and `secret()` reads it at the moment of use.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import os
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from monitor.schedule import SchedulePolicy

import tomli
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

from monitor.files import NotRegularFile, open_regular
from monitor.platforms import CHANNEL_KEYS, PLATFORM_KEYS, SPECS, default_env_name
from monitor.values import is_http_url

PLATFORMS = PLATFORM_KEYS
if TYPE_CHECKING:
    Platform = str
    Channel = str
else:
    # pydantic checks a source's platform against this; mypy cannot read a Literal built at
    # run time, so it sees a str.
    Platform = Literal[PLATFORM_KEYS]
    # What a recipient may follow: a platform, or one whose feeds are known (vimeo).
    Channel = Literal[CHANNEL_KEYS]

DEFAULT_DATABASE_URL = "sqlite:///omvarld.db"

# Which environment-variable setting a platform cannot work without. Platforms absent here work
# without credentials (feeds, Mastodon and Bluesky public APIs; YouTube and Flickr fall back to
# their public feeds).
REQUIRED_SECRETS: dict[str, str] = {
    spec.key: spec.secret_setting
    for spec in SPECS.values()
    if spec.secret_required and spec.secret_setting
}

DEFAULT_API_URLS: dict[str, str] = {
    spec.key: spec.default_api_url for spec in SPECS.values() if spec.default_api_url
}

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}

# No interval, backoff, lease or tick is meant to be longer than a year: a bigger number is a typo,
# and "99999999999999d" overflowed the date arithmetic of the first collection.
MAX_DURATION_DAYS = 365
# Day counts (backfill, retention, pruning) beyond a century are typos too, and overflow dates.
MAX_DAYS = 36_500
# Seconds a connection or a read may take; TOML's `inf` passed a positive check and then failed
# every fetch with an OverflowError.
MAX_TIMEOUT = 3600.0


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


def parse_config_duration(value: int | str) -> int:
    """`parse_duration` for a config key: at most MAX_DURATION_DAYS."""
    seconds = parse_duration(value)
    if seconds > MAX_DURATION_DAYS * 86400:
        raise ValueError(f"at most {MAX_DURATION_DAYS} days, got {value!r}")
    return seconds


class _Strict(BaseModel):
    # Unknown keys are typos far more often than they are intentional.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str = DEFAULT_DATABASE_URL


class CollectConfig(_Strict):
    concurrency: int = Field(64, ge=1, le=1024)
    per_host: int = Field(2, ge=1, le=256)
    backfill_days: int = Field(30, ge=0, le=MAX_DAYS)
    backfill_posts: int = Field(200, ge=1)
    connect_timeout: float = Field(10.0, gt=0, le=MAX_TIMEOUT)
    read_timeout: float = Field(30.0, gt=0, le=MAX_TIMEOUT)
    max_body_bytes: int = Field(15 * 1024 * 1024, ge=1024)
    max_entries: int = Field(500, ge=1, le=100_000)  # a feed's newest entries taken per fetch
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
    # collection_runs older than this are pruned daily
    keep_runs_days: int = Field(90, ge=1, le=MAX_DAYS)
    # counts of posts younger than this are refreshed
    refresh_days: int = Field(14, ge=0, le=MAX_DAYS)

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
        return parse_config_duration(value)

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


# What an absent `[platforms.KEY]` table means; one frozen instance, not one per question (the
# sync asks once per source).
NO_PLATFORM_SETTINGS = PlatformConfig()


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
        return None if value is None else parse_config_duration(value)

    @field_validator("url", "api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
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
        missing = find_missing_address(self.platform, self.url, self.handle)
        if missing:
            raise ValueError(missing)
        return self

    @property
    def stable_key(self) -> str:
        return self.key or derive_source_key(self.platform, self.url, self.handle)


def find_missing_address(platform: str, url: str | None, handle: str | None) -> str | None:
    """What a source of this platform lacks to be found, or None."""
    if platform == "feed" and not url:
        return "a feed source needs url"
    if platform != "feed" and not (handle or url):
        return f"a {platform} source needs handle"
    return None


_SCHEDULE = re.compile(r"(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):([0-5]\d)")


def check_schedule(value: str) -> str:
    """A weekly send time, "mon 07:00" (weekday and local time)."""
    if not _SCHEDULE.fullmatch(value.strip()):
        raise ValueError(f'expected a weekday and time like "mon 07:00", got {value!r}')
    return value.strip()


def check_header_value(value: str | None) -> str | None:
    """A value that goes into a mail header (From, To's name, List-Id): one line. A CR or LF
    would be refused by the mail library at send time, for every recipient; say so now."""
    if value is not None and re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        raise ValueError(
            f"{value!r} holds a line break or control character; it goes into a mail header"
        )
    return value


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

    @field_validator("sender", "list_id")
    @classmethod
    def _header(cls, value: str) -> str:
        check_header_value(value)
        return value


class SmtpConfig(_Strict):
    """`[smtp]`: the relay digests are sent through."""

    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None  # the password is read from this environment variable
    timeout: float = Field(30.0, gt=0, le=MAX_TIMEOUT)
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
    platforms: tuple[Channel, ...] = ()  # youtube follows YouTube channels' feeds too
    keywords: tuple[str, ...] = ()
    schedule: str | None = None  # overrides [digest] schedule for this recipient
    skip_empty: bool = True

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_schedule(value)

    @field_validator("name")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        return check_header_value(value)

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
    posts_after_days: StrictInt | None = Field(None, ge=1, le=MAX_DAYS)
    raw_after_days: StrictInt | None = Field(None, ge=1, le=MAX_DAYS)
    metrics_daily_after_days: StrictInt | None = Field(None, ge=1, le=MAX_DAYS)

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


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class WebConfig(_Strict):
    """`[web]`: the web app (`omvarld web`) and the links digests carry to it."""

    # Links in digests (view in browser, "och N till", one-click unsubscribe) start with this.
    public_url: str | None = None
    secret_env: str = "OMVARLD_WEB_SECRET"  # signs recipients' links; unset: no signed links
    auth: Literal["none", "proxy"] = "none"
    proxy_user_header: str = "X-Forwarded-User"
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    query_timeout: float = Field(10.0, gt=0, le=300)  # seconds before a page's query is cancelled

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value.rstrip("/")
        if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
            return value.rstrip("/")
        raise ValueError("must be an https:// address (http:// only for localhost)")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value


# What `[alerting]` defaults to: a post older than this when first seen (a new source's
# backfill, a feed that republished its archive) is no news to anyone.
ALERT_MAX_AGE = "2d"
ALERT_KINDS = ("keyword", "spike", "silence")


class AlertingConfig(_Strict):
    """`[alerting]`: what every `[[alerts]]` rule shares. (`[alerts]` cannot hold it: TOML
    does not let one name be a table and an array of tables.)"""

    max_age: int = parse_duration(ALERT_MAX_AGE)  # seconds; durations like "2d" are accepted
    # A failed delivery is tried again by later passes, `retry_after` after the first failure
    # and twice as long after each next one, until it has had `max_attempts`.
    max_attempts: int = Field(5, ge=1, le=20)
    retry_after: int = parse_duration("5m")
    max_items: int = Field(10, ge=1, le=100)  # posts listed in one message; the rest are counted
    timeout: float = Field(15.0, gt=0, le=300)  # seconds one channel may take to deliver
    # `omvarld collect` leaves its round to a process that outlives it, so the pass does not
    # wait for Apprise and the deliveries (monitor/alerts/background.py); false: it waits and
    # prints what went, for where the end of a command ends what it started (a systemd oneshot
    # unit, `docker run`). `omvarld run` keeps an alert process of its own either way.
    background: bool = True

    @field_validator("max_age", "retry_after", mode="before")
    @classmethod
    def _duration(cls, value: int | str) -> int:
        return parse_config_duration(value)


class AlertRuleConfig(_Strict):
    """One `[[alerts]]` rule: which posts or events, and where to tell about them."""

    name: str
    kind: Literal["keyword", "spike", "silence"] = "keyword"
    query: str | None = None  # the syntax of `omvarld posts search`
    groups: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    organisations: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # source keys
    notify: tuple[str, ...] = ()  # Apprise URLs without secrets
    notify_env: tuple[str, ...] = ()  # environment variables holding Apprise URLs
    language: Literal["sv", "en"] | None = None  # default: [digest] language
    # spike: at least `factor` times the posts of the same weekday and hours in the four weeks
    # before, and at least `min_posts`, within the last `hours`. With measure = "engagement",
    # the posts' engagement (likes, shares, comments … at their latest count) is summed instead,
    # and at least `min_engagement` of it.
    factor: float = Field(3.0, gt=1, le=1000)
    hours: int = Field(3, ge=1, le=24 * 7)
    measure: Literal["posts", "engagement"] = "posts"
    min_engagement: int = Field(100, ge=1, le=100_000_000)
    # silence: a source with at least `min_posts` in the four weeks before its last post that
    # has posted nothing for `days`. spike: the fewest posts in `hours` that can be a spike.
    min_posts: int = Field(5, ge=1, le=10_000)
    days: int = Field(7, ge=1, le=MAX_DURATION_DAYS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a rule needs a name")
        check_header_value(value)  # it becomes a mail subject
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        from monitor.query import QueryError, parse_query

        if value is not None:
            try:
                parse_query(value)
            except QueryError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("notify_env")
    @classmethod
    def _env_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _complete(self) -> AlertRuleConfig:
        if self.kind == "keyword" and self.query is None:
            raise ValueError("a keyword rule needs query")
        if self.kind == "silence" and self.query is not None:
            raise ValueError("a silence rule watches sources, not words: remove query")
        if self.measure != "posts" and self.kind != "spike":
            raise ValueError('measure is a spike rule\'s: remove it, or set kind = "spike"')
        if not self.notify and not self.notify_env:
            raise ValueError("a rule needs notify or notify_env: where to send its alerts")
        return self


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
    web: WebConfig = WebConfig()
    alerting: AlertingConfig = AlertingConfig()
    alerts: tuple[AlertRuleConfig, ...] = ()

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
        return self.platforms.get(name, NO_PLATFORM_SETTINGS)

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
    env_name = secret_env(config, platform, setting)
    return None if os.environ.get(env_name) else env_name


def secret(config: Config, platform: str, setting: str) -> str | None:
    """Read a platform secret from the environment variable the config names."""
    return os.environ.get(secret_env(config, platform, setting)) or None


def secret_env(config: Config, platform: str, setting: str) -> str:
    """The environment variable `[platforms.KEY] <setting>` names, else the platform's default."""
    env_name: str = getattr(config.platform(platform), setting) or default_env_name(
        platform, setting
    )
    return env_name


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file, at a 1-based line of it when that is known."""

    file: str
    key: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.reason}" if self.key else f"{where}: {self.reason}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class _Origin:
    file: str
    position: int  # 1-based, as problems name it: sources[1] is the file's first [[sources]]


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
            where = f"sources[{origin.position}]"
            problems += _problems_from(error, origin.file, where, SourceConfig)
            problems += _address_problems(error, raw, origin.file, where)
            continue
        origins[len(sources)] = origin
        sources.append(source)
    problems += _find_duplicates(sources, origins)

    try:
        config = Config.model_validate({**document, "path": path, "sources": ()})
    except ValidationError as error:
        problems += _problems_from(error, shown, "", Config)
        config = None
    # Checked against the declared names even when the rest of the file is broken, so that one
    # round of `config check` shows every problem.
    problems += _check_groups(document.get("groups"), raw_sources)
    problems += _check_alert_rules(document.get("alerts"), sources, shown)
    if problems or config is None:
        raise ConfigError(_in_file_order(problems, shown))
    return config.model_copy(update={"sources": tuple(sources)})


def _source_entries(entries: Any, file: str, problems: list[Problem]) -> list[tuple[Any, _Origin]]:
    if not isinstance(entries, list):
        problems.append(Problem(file, "sources", "expected an array of tables: write [[sources]]"))
        return []
    return [(entry, _Origin(file, i)) for i, entry in enumerate(entries, 1)]


# The largest configuration or included file read: 2,000 sources take about 400 kB.
MAX_CONFIG_BYTES = 1_000_000


def _open_regular_file(path: Path, shown: str) -> IO[bytes]:
    """Open a configuration file only if it is a regular file of at most MAX_CONFIG_BYTES:
    `include = ["/dev/zero"]` was read until the OOM killer came."""
    try:
        handle, size = open_regular(path)
    except NotRegularFile:
        reason = "not a regular file; a configuration is a TOML file"
        raise ConfigError([Problem(shown, "", reason)]) from None
    if size > MAX_CONFIG_BYTES:
        handle.close()
        reason = f"{size:,} bytes is more than a configuration file may hold (1 MB)"
        raise ConfigError([Problem(shown, "", reason)])
    return handle


def _read_toml(path: Path, shown: str) -> dict[str, Any]:
    try:
        with _open_regular_file(path, shown) as handle:
            return tomli.load(handle)
    except FileNotFoundError:
        raise ConfigError([Problem(shown, "", "file not found")]) from None
    except OSError as error:
        raise ConfigError([Problem(shown, "", f"cannot read: {error.strerror}")]) from None
    except UnicodeDecodeError as error:
        data = error.object
        line_of_byte = data.count(b"\n", 0, error.start) + 1
        reason = f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8"
        raise ConfigError([Problem(shown, "", reason, line_of_byte)]) from None
    except tomli.TOMLDecodeError as error:
        # tomli names the position only inside its message: "… (at line 3, column 9)".
        message = str(error)
        position = re.search(r" \(at line (\d+), column \d+\)$", message)
        line = int(position[1]) if position else None
        reason = f"invalid TOML: {message[: position.start()] if position else message}"
        raise ConfigError([Problem(shown, "", reason, line)]) from None
    except RecursionError:
        # tomli recurses once per nesting level of arrays and inline tables.
        raise ConfigError([Problem(shown, "", "invalid TOML: nested too deeply")]) from None


def _expand_include(base: Path, pattern: str, shown: str, problems: list[Problem]) -> list[Path]:
    full = pattern if os.path.isabs(pattern) else str(base.parent / pattern)
    if glob.has_magic(pattern):
        return [Path(p) for p in sorted(glob.glob(full))]
    if not os.path.exists(full):
        problems.append(Problem(shown, "include", f"{pattern!r}: file not found"))
        return []
    return [Path(full)]


def _problems_from(
    error: ValidationError, file: str, prefix: str, model: type[BaseModel]
) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = item["loc"]
        # Positions are shown 1-based, as a person counts the tables in the file.
        path = "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in loc)
        key = (prefix + path).lstrip(".")
        reason = item["msg"].removeprefix("Value error, ")
        if key.endswith(".[key]"):  # a bad table name, such as [platforms.tiktok]
            key = key.removesuffix(".[key]")
        if item["type"] == "literal_error" and "platform" in key:
            reason = f"unknown platform {item['input']!r}; expected one of {', '.join(PLATFORMS)}"
        elif item["type"] == "model_type":
            reason = "expected a table"
        elif item["type"] == "missing":
            reason = "missing required key"
        elif item["type"] == "extra_forbidden":
            reason = "unknown key" + _suggest_key(model, loc)
        problems.append(Problem(file, key, reason))
    return problems


def _suggest_key(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """'; did you mean 'organisation'?' for a misspelt key, or nothing."""
    known = _known_keys(model, loc[:-1])
    if model is Config:
        known = [k for k in known if k != "path"] + ["include"]  # path is set by load_config
    match = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the table at `loc` below `model` may hold, as written in the file."""
    annotation: Any = model
    for part in (*loc, None):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
            annotation = args[0]  # X | None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            by_key = {f.alias or name: f for name, f in annotation.model_fields.items()}
            if part is None:
                return list(by_key)
            if part not in by_key:
                return []
            annotation = by_key[str(part)].annotation
        elif part is not None and get_origin(annotation) in (tuple, list):
            annotation = get_args(annotation)[0]
        elif part is not None and get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return []
    return []


def _address_problems(error: ValidationError, raw: Any, file: str, where: str) -> list[Problem]:
    """A missing url or handle, which pydantic checks only once every field is valid."""
    if not isinstance(raw, dict) or raw.get("platform") not in PLATFORMS:
        return []
    if any(not item["loc"] or item["loc"][0] in ("url", "handle") for item in error.errors()):
        return []  # already said
    missing = find_missing_address(raw["platform"], raw.get("url"), raw.get("handle"))
    return [Problem(file, where, missing)] if missing else []


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
                        f"sources[{here.position}]",
                        f"duplicate source {marker[0]} {marker[1]!r} "
                        f"(first in {first.file} sources[{first.position}])",
                    )
                )
                break
        else:
            seen[("key", source.stable_key)] = seen[("address", address)] = i
    return problems


def _check_groups(declared: Any, raw_sources: Iterable[tuple[Any, _Origin]]) -> list[Problem]:
    # Groups need no declaration; once [groups] declares some, a reference to an undeclared
    # one is most likely a typo. Read from the raw tables, so that a source with other problems
    # has this one named in the same round.
    if not isinstance(declared, dict) or not declared:
        return []
    problems = []
    for raw, origin in raw_sources:
        groups = raw.get("groups") if isinstance(raw, dict) else None
        for group in groups if isinstance(groups, list) else ():
            if isinstance(group, str) and group not in declared:
                problems.append(
                    Problem(
                        origin.file,
                        f"sources[{origin.position}].groups",
                        f"undeclared group {group!r}",
                    )
                )
    return problems


def _check_alert_rules(raw_rules: Any, sources: Sequence[SourceConfig], file: str) -> list[Problem]:
    """Rules that could never fire: a name used twice, a filter naming a group, organisation
    or source that no configured source has. Read from the raw tables, as `_check_groups`
    does, so that a rule with other problems has these named in the same round."""
    if not isinstance(raw_rules, list):
        return []
    problems = []
    names: set[str] = set()
    known = {
        "groups": {g for s in sources for g in s.groups},
        "organisations": {s.organisation for s in sources},
        "sources": {s.stable_key for s in sources},
    }
    nouns = {"groups": "group", "organisations": "organisation", "sources": "source"}
    for position, raw in enumerate(raw_rules, 1):
        if not isinstance(raw, dict):
            continue
        where = f"alerts[{position}]"
        name = raw.get("name")
        if isinstance(name, str) and name.strip() in names:
            problems.append(Problem(file, f"{where}.name", f"a second rule named {name.strip()!r}"))
        names.add(name.strip() if isinstance(name, str) else "")
        for field, noun in nouns.items():
            values = raw.get(field)
            for value in values if isinstance(values, list) else ():
                if isinstance(value, str) and value not in known[field]:
                    reason = f"no configured source has {noun} {value!r}"
                    problems.append(Problem(file, f"{where}.{field}", reason))
    return problems


def _in_file_order(problems: list[Problem], main_file: str) -> list[Problem]:
    """The problems with their line numbers, top to bottom: the main file, then each include."""
    lines: dict[str, dict[str, int]] = {}
    located = []
    for problem in problems:
        if problem.line is None and problem.key:
            if problem.file not in lines:
                lines[problem.file] = _read_key_lines(Path(problem.file))
            line = find_line(lines[problem.file], problem.key)
            problem = dataclasses.replace(problem, line=line)
        located.append(problem)
    files = list(dict.fromkeys([main_file, *(p.file for p in located)]))
    return sorted(located, key=lambda p: (files.index(p.file), p.line or 0))


def _read_key_lines(path: Path) -> dict[str, int]:
    try:
        return find_key_lines(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


_BARE_OR_QUOTED = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_ARRAY_TABLE_LINE = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?")
_TABLE_LINE = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?")
_KEY_LINE = re.compile(rf"\s*({_DOTTED})\s*=")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'[^\']*\'')


def find_key_lines(text: str) -> dict[str, int]:
    """The 1-based line of each table and key in a TOML text, by the paths problems name:
    `collect.concurrency`, `platforms.x`, `sources[2].url` (in the second [[sources]]).

    TOML parsers keep no positions, so the lines are read here. It only points at a line:
    something it misreads, such as a "[table]" line inside a multi-line string, costs a line
    number, nothing more.
    """
    found: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    string_end: str | None = None  # the quotes closing the multi-line string being passed over
    depth = 0  # of the multi-line array or inline table being passed over
    for number, line in enumerate(text.splitlines(), 1):
        if string_end is not None:
            if line.count(string_end) % 2:
                string_end = None
            continue
        if depth > 0:
            depth += _open_brackets(line)
            continue
        if match := _ARRAY_TABLE_LINE.fullmatch(line):
            name = _key_path(match[1])
            counts[name] = counts.get(name, 0) + 1
            table = f"{name}[{counts[name]}]"
            found.setdefault(table, number)
        elif match := _TABLE_LINE.fullmatch(line):
            table = _key_path(match[1])
            found.setdefault(table, number)
        elif match := _KEY_LINE.match(line):
            key = _key_path(match[1])
            found.setdefault(f"{table}.{key}" if table else key, number)
            value = line[match.end() :]
            string_end = next((q for q in ('"""', "'''") if value.count(q) % 2), None)
            if string_end is None:
                depth = _open_brackets(value)
    return found


def _open_brackets(text: str) -> int:
    """How many more arrays and inline tables `text` opens than it closes."""
    code = _STRING.sub("", text).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


def _key_path(dotted: str) -> str:
    parts = re.findall(r"""([A-Za-z0-9_-]+)|"([^"]*)"|'([^']*)'""", dotted)
    return ".".join("".join(groups) for groups in parts)


def find_line(lines: Mapping[str, int], key: str) -> int | None:
    """The line of `key`, else of the nearest table holding it (a missing key: its table's)."""
    while key:
        if key in lines:
            return lines[key]
        key = re.sub(r"(?:\.[^.\[\]]*|\[\d+\])$", "", key)
    return None
