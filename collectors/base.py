"""The one protocol every collector implements, and the settings it is built with. The data that
crosses it is in `monitor.types`.

A collector turns one source into a `CollectResult`. It never touches the database nor reads the
config: the engine (`monitor.collect`) builds it with its `CollectorSettings`, the store ingests
the result, and the scheduler decides from it when to look again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from concurrent.futures import Executor
    from datetime import datetime

    from collectors.http import HttpClient
    from monitor.types import ApiUsage, CollectResult, SourceRef, SourceState


@dataclass(frozen=True)
class ConfiguredSource:
    """A configured source of the collector's platform, paused ones too: mentions of the
    institutions we watch are kept by handle, and a metered API's budget is shared by them."""

    handle: str | None
    url: str | None
    name: str | None = None
    organisation: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class CollectorSettings:
    """What a collector reads of the config: `[collect]`, its `[platforms.KEY]` table with the
    credential it names, and its platform's sources. The engine makes one when a run builds the
    collector, so a credential is read from the environment then and goes nowhere else."""

    # [collect]
    backfill_days: int
    backfill_posts: int
    refresh_days: int
    max_entries: int  # a feed's newest entries taken per fetch
    max_interval: int  # seconds: the longest the schedule waits, so the longest wait we report
    per_host: int
    connect_timeout: float
    read_timeout: float
    contact_url: str
    # [platforms.KEY]
    api_url: str | None = None  # `[platforms.KEY] api_url`, else the platform's default
    secret: str | None = field(default=None, repr=False)  # the credential; None when unset
    secret_env: str | None = None  # the variable it is read from, for messages that say "set …"
    monthly_read_budget: int | None = None
    daily_quota_units: int | None = None
    sources: tuple[ConfiguredSource, ...] = ()


class Collector(Protocol):
    """Collects one platform. Built once per run; `collect` is called per source."""

    platform: ClassVar[str]

    def __init__(self, settings: CollectorSettings, parsing: Executor, usage: ApiUsage) -> None:
        """`settings` is all a collector knows of the config, its credential included.
        `parsing` runs CPU-bound work (a process pool on several cores): submit module-level
        functions with picklable arguments. `usage` is what metered APIs have spent."""

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient, now: datetime
    ) -> CollectResult:
        """One attempt at `source`. `now` is the attempt's start (UTC): the one clock a
        collector reads, for its windows and for the waits a server asks for."""
