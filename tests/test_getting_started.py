"""What a newcomer types from the README, `make run` and `make demo` works as printed.

`make run` installs omvarld into .venv, which is not on PATH: a bare `omvarld` is "command not
found" until the environment is activated. So every command these print or show is run here
with a PATH that does not hold .venv/bin.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import feed_source
from tests.feedserver import FeedServer
from tests.smtpserver import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# What a fresh shell has: the system's programs, not the virtual environment's.
FRESH_SHELL = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": os.environ.get("HOME", "/tmp"),
    "COLUMNS": "200",
}
ACTIVATE = re.compile(r"^(?:\.|source) \.venv/bin/activate\b")
NEEDS_VENV = pytest.mark.skipif(
    not (VENV_BIN / "omvarld").exists(),
    reason=f"{VENV_BIN / 'omvarld'} is missing: run `make install` first",
)


def in_fresh_shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, cwd=cwd, env=FRESH_SHELL, capture_output=True, text=True, timeout=120
    )


def files_below(directory: Path) -> dict[str, float]:
    return {
        str(p.relative_to(directory)): p.stat().st_mtime
        for p in (directory.rglob("*") if directory.exists() else ())
    }


# ------------------------------------------------------------------------------------ make run


@NEEDS_VENV
def test_make_run_ends_with_a_next_command_that_runs_without_activation(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    config = tmp_path / "config.toml"
    recipient = '[[recipients]]\nemail = "kommunikation@katrineholm.se"\n\n'
    config.write_text(recipient + feed_source(url, key="katrineholm"), encoding="utf-8")

    # -o: the test uses the environment as it is; make must not reinstall it.
    made = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed-stamp", "run", f"CONFIG={config}"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    hint = lines[lines.index("omvarld is in .venv/bin/, which is not on PATH. Next, for example:")]
    assert hint == lines[-3]
    assert lines[-2] == f"  .venv/bin/omvarld --config {config} status"
    assert lines[-1] == (
        f"or, after '. .venv/bin/activate' in this shell: omvarld --config {config} status"
    )
    status = in_fresh_shell(lines[-2].strip(), cwd=ROOT)
    assert status.returncode == 0, status.stderr
    assert "katrineholm" in status.stdout
    activated = in_fresh_shell(". .venv/bin/activate && " + lines[-1].split(": ", 1)[1], cwd=ROOT)
    assert activated.returncode == 0, activated.stderr
    assert "katrineholm" in activated.stdout
    # Without activation, the bare form is what fails: the reason for the hint.
    assert in_fresh_shell(f"omvarld --config {config} status", cwd=ROOT).returncode == 127


# ---------------------------------------------------------------------------------------- demo


def test_demo_writes_everything_into_its_own_directory_and_its_commands_run(
    tmp_path: Path,
) -> None:
    run_outbox = files_below(ROOT / "outbox")  # what `make run` wrote: not the demo's to touch

    demo = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "run.py"), "--dir", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert demo.returncode == 0, demo.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    assert sorted(p.suffix for p in (tmp_path / "demo" / "outbox").iterdir()) == [".eml", ".html"]
    assert files_below(ROOT / "outbox") == run_outbox
    lines = demo.stdout.splitlines()
    assert "The digest for the demo recipient is in demo/outbox/ (.eml and .html)." in lines
    assert lines[-2] == "The demo database is demo/omvarld-demo.db. Search it with:"
    # Every command shown is one the reader can type: a path to the program, never a bare name.
    shown = [line.removeprefix("$ ") for line in lines if line.startswith("$ ")]
    assert len(shown) == 6
    web_line = next(line for line in lines if line.endswith(" web --port 8080"))
    assert all("/" in shlex.split(command)[0] for command in [*shown, lines[-1], web_line])
    search = in_fresh_shell(lines[-1].strip(), cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    assert "Katrineholms kommun" in search.stdout
    # The web app command it prints serves the demo's database, its digest in the archive.
    at = lines.index("Browse the demo's posts, sources and digest archive with the web app:")
    port = free_port()
    web = lines[at + 1].strip().replace("--port 8080", f"--port {port}")
    assert lines[at + 2] == "and open http://127.0.0.1:8080/ (Ctrl-C stops it)."
    log = (tmp_path / "web.log").open("wb")
    server = subprocess.Popen(["bash", "-c", f"exec {web}"], cwd=tmp_path, stdout=log, stderr=log)
    try:
        archive = fetch_when_up(f"http://127.0.0.1:{port}/digests")
        assert "2026-W48" in archive and "kommunikation@katrineholm.se" in archive
        assert "Katrineholms kommun" in fetch_when_up(f"http://127.0.0.1:{port}/search?q=kommun")
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_demo_by_default_writes_into_demo_not_the_outbox_of_make_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location("demo_run", ROOT / "demo" / "run.py")
    assert spec is not None and spec.loader is not None
    demo_run = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "demo_run", demo_run)  # its dataclass looks itself up there
    spec.loader.exec_module(demo_run)

    demo = demo_run.Demo(demo_run.HERE)

    assert demo.outbox == ROOT / "demo" / "outbox" != ROOT / "outbox"
    assert demo.database == ROOT / "demo" / "omvarld-demo.db" != ROOT / "omvarld.db"


# ------------------------------------------------------------------------------- documentation


def console_blocks(path: Path) -> list[list[str]]:
    """The typed commands of each ```console block."""
    blocks = re.findall(r"```console\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
    return [[line[2:] for line in block.splitlines() if line.startswith("$ ")] for block in blocks]


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_documented_commands_activate_the_environment_before_a_bare_omvarld(
    document: Path,
) -> None:
    for commands in console_blocks(document):
        activated = False
        for command in commands:
            activated = activated or bool(ACTIVATE.match(command))
            if command.startswith("omvarld ") and not activated:
                pytest.fail(f"{document.name}: `{command}` without `. .venv/bin/activate` first")


def test_documented_pip_commands_install_from_the_checkout() -> None:
    # `pip install 'omvarld[parquet]'` looked on a registry, where there is no omvarld.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    texts = {p.name: p.read_text(encoding="utf-8") for p in DOCUMENTS}
    texts["config.example.toml"] = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    texts["monitor/db.py"] = (ROOT / "monitor" / "db.py").read_text(encoding="utf-8")
    texts["monitor/export.py"] = (ROOT / "monitor" / "export.py").read_text(encoding="utf-8")

    found = []
    for name, text in texts.items():
        assert "omvarld[" not in text, f"{name} installs omvarld from a registry"
        found += [(name, extra) for extra in re.findall(r"pip install -e '\.\[(\w+)\]'", text)]

    assert {extra for _, extra in found} == {"postgresql", "parquet"}
    assert all(extra in extras for _, extra in found)


def fetch_when_up(url: str, seconds: float = 20.0) -> str:
    """The page's text once the server answers (it takes a moment to start)."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except urllib.error.HTTPError:
            raise  # the server is up and answered with an error: that is the finding
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
