"""Real `omvarld run` services for the tests that start them: a config fragment that makes them
quick, starting one as a process, upgrading its database first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FAST = """
[collect]
tick = 1
lease = 5
interval = "1d"
min_interval = 1
"""


def start_service(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def upgrade(config: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "db", "upgrade"],
        check=True,
        capture_output=True,
    )
