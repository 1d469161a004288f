"""Files a configuration reads, its includes above all, are regular files of a sane size: an
include of /dev/zero, a FIFO or a huge file is one line and exit 2, never a hang or the OOM
killer. Run as real processes, with a memory limit so a regression fails instead of swapping."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_config


def limit_memory() -> None:
    # Before the fix /dev/zero was read until memory ran out: fail at 1 GB instead.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def config_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
    )


def with_include(tmp_path: Path, include: Path) -> Path:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}")
    config.write_text(f'include = ["{include}"]\n' + config.read_text(encoding="utf-8"))
    return config


def test_an_include_of_dev_zero_is_refused_in_one_line(tmp_path: Path) -> None:
    done = config_check(with_include(tmp_path, Path("/dev/zero")))

    assert done.returncode == 2
    assert done.stderr == "/dev/zero: not a regular file; a configuration is a TOML file\n"


def test_an_include_of_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "sources.toml"
    os.mkfifo(fifo)

    done = config_check(with_include(tmp_path, fifo))

    assert done.returncode == 2
    assert done.stderr == f"{fifo}: not a regular file; a configuration is a TOML file\n"


def test_an_include_larger_than_a_megabyte_is_refused_naming_it(tmp_path: Path) -> None:
    huge = tmp_path / "sources" / "alla.toml"
    huge.parent.mkdir()
    huge.write_text("# " + "x" * 1_100_000 + "\n")
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}")
    config.write_text('include = ["sources/*.toml"]\n' + config.read_text(encoding="utf-8"))

    done = config_check(config)

    assert done.returncode == 2
    assert done.stderr == (
        f"{huge}: 1,100,003 bytes is more than a configuration file may hold (1 MB)\n"
    )
