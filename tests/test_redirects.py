"""Redirects from a feed on a public address, through the real CLI (issue 10 item 9).

The pure policy (`may_follow`, `is_internal_address`) is tested in test_http.py. Here a feed really
lives on a public address: tests/redirect_driver.py runs inside a fresh network namespace
(`unshare -rn`) whose `lo` carries two global addresses and has no route anywhere else. SQLite only:
the PostgreSQL server on 127.0.0.1:5432 is outside that namespace and cannot be reached from it.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collectors.http import is_internal_address
from tests.redirect_driver import ADMIN_PATH, OTHER_PUBLIC, PUBLIC

ROOT = Path(__file__).parent.parent
DRIVER_TIMEOUT_S = 180  # two scenarios of two CLI runs each, on a shared 2-core machine


def namespace_problem() -> str | None:
    """Why a network namespace with public addresses on `lo` cannot be made here, or None."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(
        ["unshare", "-rn", "ip", "addr", "add", f"{PUBLIC}/32", "dev", "lo"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.strip() or probe.returncode}"
    return None


@pytest.fixture(scope="module")
def redirects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The driver's summary: both scenarios, collected once for every test here."""
    problem = namespace_problem()
    if problem:
        pytest.skip(f"redirects from a public address not tested end to end: {problem}")
    directory = tmp_path_factory.mktemp("redirects")
    result = subprocess.run(
        ["unshare", "-rn", sys.executable, "-m", "tests.redirect_driver", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_the_feed_addresses_count_as_public() -> None:
    for address in (PUBLIC, OTHER_PUBLIC):
        ip = ipaddress.ip_address(address)
        assert ip.is_global and not is_internal_address(ip)


def test_redirect_from_a_public_feed_to_loopback_is_refused_in_one_line_and_never_sent(
    redirects: dict[str, Any],
) -> None:
    inward = redirects["inward"]
    assert inward["upgrade"]["exit"] == 0
    collect = inward["collect"]
    stdout = collect["stdout"]
    assert collect["exit"] == 1  # the job ran; both sources failed
    assert inward["requests"]["internal"] == []  # not even one request reached the target
    assert sorted(inward["requests"]["public"]) == ["/feed.xml", "/moved.xml"]
    refusal = (
        f"failed: redirect refused: {PUBLIC} redirected to 127.0.0.1 (127.0.0.1), an internal "
        "address; only a source whose own URL is internal may go there"
    )
    for key in ("temporary", "permanent"):
        lines = [line for line in stdout if line.startswith(f"{key}: ")]
        assert lines == [f"{key}: {refusal}"]
    assert "2 sources: 0 new, 0 updated, 0 unchanged posts; 0 not modified, 2 failed" in stdout
    assert not any("moved permanently" in line for line in stdout)
    assert not any("Traceback" in line for line in stdout + collect["stderr"])
    assert inward["target"].endswith(ADMIN_PATH)


def test_refused_301_leaves_the_stored_url_alone_and_stores_nothing_from_the_target(
    redirects: dict[str, Any],
) -> None:
    assert redirects["inward"]["sources"] == {
        "temporary": {"fetch_url": None, "posts": 0},
        "permanent": {"fetch_url": None, "posts": 0},
    }


def test_redirect_from_a_public_feed_to_another_public_address_is_followed(
    redirects: dict[str, Any],
) -> None:
    outward = redirects["outward"]
    collect = outward["collect"]
    stdout = collect["stdout"]
    assert collect["exit"] == 0
    assert sorted(outward["requests"]["other"]) == ["/atom.xml", "/rss.xml"]
    moved = f"permanent: moved permanently to {outward['target']}; update the config"
    assert moved in stdout
    assert "2 sources: 7 new, 0 updated, 0 unchanged posts; 0 not modified, 0 failed" in stdout
    assert outward["sources"] == {
        "temporary": {"fetch_url": None, "posts": 3},  # a 302 is followed but not remembered
        "permanent": {"fetch_url": outward["target"], "posts": 4},
    }
