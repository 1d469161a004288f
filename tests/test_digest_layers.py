"""The digest's layers: it imports nothing from the collectors, and composing is pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import digest

DIGEST = Path(digest.__file__).parent


def modules_imported_by(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after `statement`."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_the_digest_imports_nothing_from_the_collectors() -> None:
    names = sorted(f"digest.{path.stem}" for path in DIGEST.glob("*.py"))
    modules = modules_imported_by("import " + ", ".join(names))
    assert {"digest.compose", "digest.load", "digest.delivery"} <= modules
    assert sorted(m for m in modules if m.partition(".")[0] == "collectors") == []


def test_composing_a_digest_reads_no_database_mail_or_clock() -> None:
    modules = modules_imported_by("import digest.compose")
    outside = {"sqlalchemy", "smtplib", "monitor.db", "monitor.config", "digest.load"}
    assert outside & modules == set()
    # The run's "now" comes in with the loaded week (WeekData.generated_at).
    source = (DIGEST / "compose.py").read_text(encoding="utf-8")
    assert ".now(" not in source and "time.time" not in source
