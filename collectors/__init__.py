"""One module per platform behind the protocol in `collectors.base`.

Adding a platform means one module, one `PlatformSpec` in `monitor.platforms` (from which
`COLLECTORS` is made), its tests and its fixtures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from monitor.platforms import PLATFORMS

if TYPE_CHECKING:
    from collectors.base import Collector

# Imported on first use, so that the CLI starts without loading every platform library.
COLLECTORS: dict[str, str] = {spec.key: spec.collector for spec in PLATFORMS}


def get_collector_class(platform: str) -> type[Collector] | None:
    """The collector class for a platform, or None when this version has none."""
    target = COLLECTORS.get(platform)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    collector: type[Collector] = getattr(importlib.import_module(module_name), class_name)
    return collector
