"""Documentation that cannot drift (Datasette's tests/test_docs.py): every config key and every
platform is in README.md or config.example.toml, and every module of monitor/, collectors/ and
digest/ is in docs/architecture.md, under its package's heading.

The module list is read from the filesystem, so a module added without a line in the
architecture page fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from monitor.config import PLATFORMS, Config

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGES = ("monitor", "collectors", "digest")
# Set by load_config, never written in a config file.
NOT_CONFIG_KEYS = {"path"}


def models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation holds: itself, or inside tuple[...], dict[..., ...],
    X | None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from models_in(argument)


def config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path for messages, key as written in TOML) for every field, nested ones too."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key in NOT_CONFIG_KEYS:
            continue
        yield f"{prefix}{key}", key
        for nested in models_in(field.annotation):
            yield from config_keys(nested, f"{prefix}{key}.")


def documented_key(key: str) -> bool:
    """A key is documented when the README names it in backticks, or the example config writes
    it (`key =`, commented out or not) or opens a table of that name."""
    written = re.compile(rf"^\s*#?\s*{re.escape(key)}\s*=|\[{re.escape(key)}[.\]]", re.MULTILINE)
    return f"`{key}`" in README or written.search(EXAMPLE) is not None


def package_section(package: str) -> str:
    """The part of docs/architecture.md under the "### `package/`" heading."""
    heading = f"### `{package}/`"
    assert heading in ARCHITECTURE, f"docs/architecture.md has no {heading} section"
    return ARCHITECTURE.split(heading, 1)[1].split("\n### ", 1)[0]


def modules(package: str) -> list[str]:
    """Every module of `package` on disk, as a path inside it (`cli/collect.py`,
    `migrations/versions/0001_initial_schema.py`). A package marker holding nothing but a
    docstring is not a module to explain."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.name == "__init__.py" and not has_code(path):
            continue
        found.append(path.relative_to(ROOT / package).as_posix())
    return found


def has_code(path: Path) -> bool:
    body = compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
    names = set(body.co_names) - {"__doc__"}
    return bool(names) or any(isinstance(c, types.CodeType) for c in body.co_consts)


def named_in(module: str, section: str, names: list[str]) -> bool:
    """Named by its path in the package (`cli/collect.py`), or by its file name alone when no
    other module of the package has that name (`0007_search.py`, but not a second `config.py`)."""
    name = Path(module).name
    unique = sum(Path(other).name == name for other in names) == 1
    return f"`{module}`" in section or (unique and f"`{name}`" in section)


def test_every_config_key_is_in_the_readme_or_the_example_config() -> None:
    missing = [path for path, key in config_keys(Config) if not documented_key(key)]
    assert missing == [], f"config keys documented nowhere: {missing}"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_platform_is_in_the_readme_and_the_example_config(platform: str) -> None:
    assert f"`{platform}`" in README
    assert re.search(rf"\b{platform}\b", EXAMPLE)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_in_the_architecture_page(package: str) -> None:
    section = package_section(package)
    names = modules(package)
    missing = [module for module in names if not named_in(module, section, names)]
    assert missing == [], f"{package}/ modules missing from docs/architecture.md: {missing}"


def config_check(directory: Path, config: str) -> list[str]:
    process = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", config, "config", "check"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return (process.stdout + process.stderr).splitlines()


def test_the_readme_shows_what_config_check_prints_for_the_example_and_a_typo(
    tmp_path: Path,
) -> None:
    """The README's `config check` lines are the command's own, on the example config as it
    stands and with its last source's `organisation` misspelt (it said 14 sources of 16)."""
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")
    last = 'organisation = "Region Sörmland"'
    assert EXAMPLE.count(last) == 1 and EXAMPLE.rindex("[[sources]]") < EXAMPLE.index(last)
    text = EXAMPLE.replace(last, last.replace("organisation", "organization"))
    (tmp_path / "typo.toml").write_text(text, encoding="utf-8")

    printed = config_check(tmp_path, "config.toml")[:1]
    printed += [
        line.replace("typo.toml:", "config.toml:", 1)
        for line in config_check(tmp_path, "typo.toml")
    ]

    shown = [line for line in README.splitlines() if line.startswith("config.toml:")]
    assert shown == printed
