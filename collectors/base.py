"""The one protocol every collector implements. The data that crosses it is in `monitor.types`.

A collector turns one source into a `CollectResult`. It never touches the database: the store
ingests the result, and the scheduler decides from it when to look again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from collectors.http import HttpClient
    from monitor.config import Config
    from monitor.types import ApiUsage, CollectResult, SourceRef, SourceState


class Collector(Protocol):
    """Collects one platform. Built once per run with the config; `collect` is called per source."""

    platform: ClassVar[str]

    def __init__(self, config: Config, parsing: Executor, usage: ApiUsage) -> None:
        """`parsing` runs CPU-bound work (a process pool on several cores): submit module-level
        functions with picklable arguments. `usage` is what metered APIs have spent."""

    async def collect(
        self, source: SourceRef, state: SourceState, http: HttpClient
    ) -> CollectResult: ...
