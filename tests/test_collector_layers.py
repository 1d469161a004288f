"""The collectors' layer: they turn a source into a CollectResult with what the engine hands
them, and reach neither the config, the database nor the digest."""

from __future__ import annotations

import ast
from pathlib import Path

import collectors

COLLECTORS = Path(collectors.__file__).parent
# The engine reads the config and stores results; a collector gets its settings from it.
OUTSIDE = ("monitor.config", "monitor.store", "monitor.db", "digest")


def imported_modules(source: str) -> set[str]:
    """Every module a Python source imports, at the top, inside functions or for type checking
    only; `from monitor import config` counts as `monitor.config`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def reached_outside(modules: set[str]) -> list[str]:
    """The parts of OUTSIDE that these modules are, or are inside of."""
    return [
        name
        for name in OUTSIDE
        if any(module == name or module.startswith(name + ".") for module in modules)
    ]


def test_the_check_sees_each_way_of_importing() -> None:
    source = (
        "import digest.render\n"
        "from monitor import config\n"
        "if TYPE_CHECKING:\n    from monitor.store import Attempt\n"
        "def f():\n    import monitor.db\n"
        "from monitor.types import PostData\n"
    )
    assert reached_outside(imported_modules(source)) == list(OUTSIDE)


def test_collectors_import_neither_the_config_the_store_the_database_nor_the_digest() -> None:
    found = [
        f"{path.name} imports {name}"
        for path in sorted(COLLECTORS.glob("*.py"))
        for name in reached_outside(imported_modules(path.read_text(encoding="utf-8")))
    ]
    assert found == []


def test_collectors_read_neither_the_clock_nor_the_environment() -> None:
    # The engine hands each attempt its start (`collect(..., now)`) and each collector its
    # credential (`CollectorSettings.secret`), so a test can fix both and a run reads each once.
    reads = (".now(", ".utcnow(", "time.time(", "date.today(", "os.environ", "getenv(")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(COLLECTORS.glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(read in line for read in reads)
    ]
    assert found == []
