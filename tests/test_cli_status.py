"""`status` as an operator runs it, after the config changed under stored results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import write_config

FACEBOOK_SOURCE = """\
[[sources]]
platform = "facebook"
handle = "katrineholmskommun"
organisation = "Katrineholms kommun"
"""


def omvarld(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **env}
    for name in ("OMVARLD_DATABASE_URL", "OMVARLD_CONFIG", "FACEBOOK_ACCESS_TOKEN", "FB_TOKEN"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def skip_reasons(status_output: str) -> list[str]:
    """The reasons `status` gives for the skipped Facebook source, one a line."""
    line = re.compile(r"facebook:katrineholmskommun: skipped since [\d-]+ [\d:]+: (.*)")
    return [m[1] for m in map(line.fullmatch, status_output.splitlines()) if m]


@pytest.fixture
def skipped_facebook_source(tmp_path: Path, database_url: str) -> Path:
    """A config whose Facebook source was skipped for want of FACEBOOK_ACCESS_TOKEN."""
    config = write_config(tmp_path, database_url, FACEBOOK_SOURCE)
    assert omvarld(config, "db", "upgrade").returncode == 0
    collected = omvarld(config, "collect", "--all")
    assert "set the environment variable FACEBOOK_ACCESS_TOKEN" in collected.stdout
    return config


def test_status_names_the_variable_the_config_names_now(skipped_facebook_source: Path) -> None:
    config = skipped_facebook_source
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[platforms.facebook]\naccess_token_env = "FB_TOKEN"\n',
        encoding="utf-8",
    )

    shown = omvarld(config, "status")
    as_json = omvarld(config, "status", "--json")

    assert shown.returncode == 0, shown.stderr
    assert "FACEBOOK_ACCESS_TOKEN" not in shown.stdout
    assert skip_reasons(shown.stdout) == [
        "credentials missing: set the environment variable FB_TOKEN"
    ]
    (record,) = json.loads(as_json.stdout)
    assert record["last_error"] == "credentials missing: set the environment variable FB_TOKEN"


def test_status_stops_asking_for_a_token_once_it_is_set(skipped_facebook_source: Path) -> None:
    shown = omvarld(skipped_facebook_source, "status", FACEBOOK_ACCESS_TOKEN="EAAB-token")

    assert shown.returncode == 0, shown.stderr
    assert "credentials missing" not in shown.stdout
    assert skip_reasons(shown.stdout) == ["nothing is missing now: collected at its next check"]


def test_a_database_error_mid_command_is_one_line_and_exit_1(
    tmp_path: Path, database_url: str
) -> None:
    # The schema says it is current, but a table is gone (a hand-made "repair"): the error
    # comes from SQLAlchemy inside the command, which `main` reports without importing it first.
    config = write_config(tmp_path, database_url)
    assert omvarld(config, "db", "upgrade").returncode == 0
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE collection_runs"))
    engine.dispose()

    result = omvarld(config, "status")

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: database: ")
    assert "collection_runs" in line
