"""The test suite itself: `make test` shows a count per skip reason instead of a line per
skipped test, the slow service tests are selectable by their marker, and shared helpers and
fixtures have one home."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import PG_URL_ENV

ROOT = Path(__file__).parent.parent


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    """pytest on this suite in a process of its own, without PostgreSQL so that tests skip."""
    env = {name: value for name, value in os.environ.items() if name != PG_URL_ENV}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_skips_are_counted_per_reason_and_listed_one_by_one_only_with_rs() -> None:
    plain = pytest_run("tests/test_db.py")
    listed = pytest_run("-rs", "tests/test_db.py")

    assert plain.returncode == 0, plain.stdout
    assert "SKIPPED [" not in plain.stdout
    reason = f"{PG_URL_ENV} is not set: PostgreSQL variant skipped"
    assert re.search(rf"^\d+ skipped: {reason}$", plain.stdout, re.MULTILINE), plain.stdout
    assert listed.returncode == 0, listed.stdout
    assert re.search(rf"^SKIPPED \[1\] tests/test_db.py:\d+: {reason}$", listed.stdout, re.M)


def test_service_tests_are_marked_slow_and_selectable_either_way() -> None:
    slow = pytest_run("--collect-only", "-q", "-m", "slow", "tests/test_service.py")
    quick = pytest_run("--collect-only", "-q", "-m", "not slow", "tests/test_service.py")

    started = {line.split("[")[0] for line in slow.stdout.splitlines() if "::test_" in line}
    assert started == {
        "tests/test_service.py::test_service_collects_on_its_tick_and_stops_cleanly_on_sigterm",
        "tests/test_service.py::test_second_service_on_one_sqlite_file_refuses_to_start",
        "tests/test_service.py::"
        "test_three_workers_collect_each_source_exactly_once_though_one_is_killed",
    }
    assert "::test_digest_sends_are_scheduled_per_recipient_send_time" in quick.stdout
    assert not any(name in quick.stdout for name in started)


def test_no_test_module_imports_from_another_test_module() -> None:
    """Shared fixtures and helpers live in conftest or a helper module (tests/platforms.py,
    tests/smtpserver.py, tests/digestdata.py): importing one test module from another runs its
    tests' module code twice and hides where a fixture comes from."""
    importing = {
        f"{path.name}: {line.strip()}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(from tests\.test_|import tests\.test_)", line)
    }
    assert importing == set()


def test_golden_files_are_compared_and_rewritten_in_one_place() -> None:
    rewriting = {
        path.name
        for path in (ROOT / "tests").glob("*.py")
        if path != Path(__file__) and '"--update-goldens"' in path.read_text(encoding="utf-8")
    }
    assert rewriting == {"conftest.py"}
