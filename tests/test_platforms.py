"""The platform registry: one PlatformSpec a platform, and every other list derived from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from collectors import COLLECTORS, get_collector_class
from monitor.config import DEFAULT_API_URLS, PLATFORMS, REQUIRED_SECRETS
from monitor.platforms import PLATFORM_KEYS, SPECS, default_secret_env, platform_name

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "monitor" / "platforms.py"
# Written as a list in prose: "feed, x, youtube" or "youtube | mastodon".
PROSE_LIST = re.compile(r"\b(\w+)\s*(?:,|\||or|and)\s*(\w+)\s*(?:,|\||or|and)\s*(\w+)\b")


def find_platform_lists(source: str) -> list[int]:
    """The lines where Python source writes two or more platform keys in one literal (a tuple,
    list, set, dict or Literal[...] of them) or a text listing three."""
    keys = set(PLATFORM_KEYS)
    found = []
    for node in ast.walk(ast.parse(source)):
        elements: list[ast.expr | None] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = list(node.elts)
        elif isinstance(node, ast.Dict):
            elements = list(node.keys)
        strings = [e.value for e in elements if isinstance(e, ast.Constant)]
        if isinstance(node, ast.expr) and len(keys.intersection(map(str, strings))) >= 2:
            found.append(node.lineno)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in PROSE_LIST.finditer(node.value):
                if len(keys.intersection(match.groups())) == 3:
                    found.append(node.lineno)
    return found


def test_the_platform_keys_are_listed_only_in_the_registry() -> None:
    modules = [
        path
        for part in ("monitor", "collectors", "digest")
        for path in sorted((ROOT / part).rglob("*.py"))
        if path != REGISTRY and "migrations" not in path.parts
    ]
    assert len(modules) > 40
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in modules
        for line in find_platform_lists(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_check_sees_each_way_of_writing_a_list() -> None:
    assert find_platform_lists('PLATFORMS = ("feed", "x", "youtube")') == [1]
    assert find_platform_lists('Platform = Literal["feed", "x"]') == [1]
    assert find_platform_lists('URLS = {\n    "x": "a",\n    "flickr": "b",\n}') == [1]
    assert find_platform_lists('HELP = "feed, x, youtube or flickr"') == [1]
    assert find_platform_lists('PLATFORM = "youtube"\nNAME = "YouTube, Flickr"') == []


def test_every_list_of_platforms_comes_from_the_specs() -> None:
    assert PLATFORMS == PLATFORM_KEYS == tuple(COLLECTORS)
    assert REQUIRED_SECRETS == {"x": "bearer_token_env", "facebook": "access_token_env"}
    urls = {key: spec.default_api_url for key, spec in SPECS.items() if spec.default_api_url}
    assert urls == DEFAULT_API_URLS
    # The digest's brand names come from the specs too (digest.render through platform_name).
    assert [platform_name(key) for key in PLATFORM_KEYS] == [spec.name for spec in SPECS.values()]
    assert platform_name("youtube") == "YouTube"
    assert default_secret_env("x") == "X_BEARER_TOKEN"
    assert default_secret_env("youtube") == "YOUTUBE_API_KEY"


def test_every_spec_names_a_collector_of_its_own_platform() -> None:
    for key in PLATFORM_KEYS:
        collector = get_collector_class(key)
        assert collector is not None and collector.platform == key
