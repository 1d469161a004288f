"""`omvarld --help` for every command says what its docstring says, and `--version` answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from monitor.cli import app

# A config section named in help, "[retention]": Rich markup took these for styles and dropped them.
SECTION = re.compile(r"\[\[?[a-z_.]+\]\]?")


def omvarld(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=60,
    )


def every_command() -> list[tuple[tuple[str, ...], Any]]:
    """Each command and group of `omvarld` (click objects), with the words that reach it."""
    found = []

    def walk(path: tuple[str, ...], command: Any) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():  # a group's
            walk((*path, name), sub)

    walk((), typer.main.get_command(app))
    return found


def written_help(command: Any) -> str:
    """The help as written in the code: the docstring or help=, and each option's help=."""
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    return "\n".join(texts)


COMMANDS = every_command()


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "omvarld")
def test_help_keeps_every_config_section_its_docstring_names(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    sections = SECTION.findall(written_help(command))

    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})

    assert result.exit_code == 0, result.output
    shown = re.sub(r"\s+", " ", result.stdout)
    for section in sections:
        assert section in shown, f"{' '.join(path)} --help lost {section}"


def test_the_walk_meets_config_sections_at_all() -> None:
    # Keeps the test above from passing by finding nothing to check.
    assert sum(len(SECTION.findall(written_help(c))) for _, c in COMMANDS) >= 2


def test_top_level_help_lists_retention_with_its_section_as_a_process() -> None:
    process = omvarld("--help")

    assert process.returncode == 0, process.stderr
    assert re.search(r"retention\s+Apply the \[retention\] settings\.", process.stdout)


def test_version_prints_the_installed_version_as_a_process() -> None:
    process = omvarld("--version")

    assert (process.returncode, process.stdout, process.stderr) == (
        0,
        f"omvarld {version('omvarld')}\n",
        "",
    )


# What `omvarld --help` must not load: the database, the HTTP and feed libraries, the scheduler
# and the config validation cost a second of start-up together, and help needs none of them.
HEAVY = ("sqlalchemy", "aiohttp", "feedparser", "tweepy", "apscheduler", "pydantic")


def test_help_imports_none_of_the_heavy_libraries() -> None:
    # lemon24/reader's lazy-import test: -X importtime names every module the process imports.
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert process.returncode == 0, process.stderr
    assert "collect" in process.stdout
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in process.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "monitor.cli" in imported  # the check reads the output it means to
    assert sorted({name.split(".")[0] for name in imported} & set(HEAVY)) == []
