"""The console script's short way into a plain `omvarld collect`: it reads the command line as
Typer does, ends every way with the same exit code and lines, and loads no Typer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from monitor.cli import app
from monitor.cli.entry import PlainCollect, read_plain_collect
from tests.conftest import feed_source, write_config
from tests.feedserver import FeedServer


def read_by_typer(before: list[str], after: list[str], environ: dict[str, str]) -> PlainCollect:
    """What Typer makes of `omvarld BEFORE collect AFTER`: the root's and the command's options."""
    group: Any = typer.main.get_command(app)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        with group.make_context("omvarld", [*before, "collect"]) as root:
            command = group.get_command(root, "collect")
            with command.make_context("collect", list(after), parent=root) as context:
                given = context.params
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return PlainCollect(
        config=Path(root.params["config"]),
        verbose=root.params["verbose"],
        everything=given["everything"],
        keys=tuple(given["source"] or ()),
        platform=given["platform"],
    )


# Each command line as the options before `collect` and those after it.
READ_THE_SHORT_WAY = [
    ([], []),
    ([], ["--all"]),
    (["--config", "omvarld.toml"], ["--all"]),
    (["--config=omvarld.toml"], []),
    (["-c", "omvarld.toml", "-v"], ["--all"]),
    (["--verbose", "--config", "a.toml", "-c", "b.toml"], []),  # the last one wins
    (["-c", "collect"], []),  # a config file named like the command
    ([], ["--source", "flen", "--source=gnesta", "--platform", "feed"]),
    ([], ["--platform=x", "--platform", "feed", "--all", "--all"]),
]


@pytest.mark.parametrize(
    ("before", "after"), READ_THE_SHORT_WAY, ids=lambda args: " ".join(args) or "-"
)
@pytest.mark.parametrize("config_env", [None, "", "from-env.toml"])
def test_a_plain_collect_is_read_as_typer_reads_it(
    before: list[str], after: list[str], config_env: str | None
) -> None:
    environ = {} if config_env is None else {"OMVARLD_CONFIG": config_env}

    read = read_plain_collect([*before, "collect", *after], environ)

    assert read is not None
    assert read == read_by_typer(before, after, environ)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["--version"],
        ["status"],
        ["collect", "--help"],
        ["collect", "--all", "extra"],
        ["collect", "--bogus"],
        ["collect", "--source"],  # no value
        ["collect", "--source="],
        ["collect", "--source", "--all"],  # Typer would take --all for the key
        ["-c", "-v", "collect"],
        ["-c=x.toml", "collect"],  # Click reads "=x.toml" as the file
        ["-cx.toml", "collect"],
        ["-vc", "x.toml", "collect"],
        ["--config", "x.toml"],
        ["collect", "--", "--all"],
        ["run", "collect"],
        ["collect", "--all=1"],
    ],
    ids=lambda args: " ".join(args) or "(none)",
)
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert read_plain_collect(args, {}) is None


def omvarld(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMVARLD_")}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment | {"COLUMNS": "200"},
        timeout=120,
    )


def imported(process: subprocess.CompletedProcess[str]) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in process.stderr.splitlines()
        if line.startswith("import time:")
    }


def said(process: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in process.stderr.splitlines() if not line.startswith("import time:")]


def test_a_warm_collect_as_a_process_loads_no_typer_and_says_what_typer_would(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    url = feed_server.add_fixture("/news.xml", "rss20.xml")
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}", feed_source(url, key="katrineholm")
    )
    first = omvarld("--config", str(config), "collect", "--all", cwd=tmp_path)
    assert first.returncode == 0, first.stderr

    again = omvarld("-c", str(config), "collect", "--all", cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert said(again) == []
    assert "1 source: 0 new, 0 updated, 0 unchanged posts; 1 not modified, 0 failed" in (
        again.stdout.splitlines()
    )
    assert f"Database: {tmp_path / 'omvarld.db'}" in again.stdout.splitlines()
    modules = imported(again)
    assert "monitor.collect" in modules  # the check reads the output it means to
    assert sorted(m for m in modules if m.split(".")[0] in ("typer", "click")) == []


def test_mistakes_on_the_short_way_end_as_on_typers(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'omvarld.db'}")

    platform = omvarld("-c", str(config), "collect", "--platform", "tiktok", cwd=tmp_path)
    unknown = omvarld("-c", str(config), "collect", "--source", "flen", cwd=tmp_path)
    missing = omvarld("-c", str(tmp_path / "absent.toml"), "collect", cwd=tmp_path)

    assert (platform.returncode, said(platform)) == (
        2,
        [
            "error: --platform: unknown platform 'tiktok'; expected one of "
            "feed, x, youtube, mastodon, bluesky, facebook, flickr, vimeo, slideshare"
        ],
    )
    assert (unknown.returncode, said(unknown)) == (
        2,
        ["error: --source: no active source with key 'flen'"],
    )
    assert (missing.returncode, said(missing)) == (
        2,
        [f"{tmp_path / 'absent.toml'}: file not found"],
    )


def test_a_collect_that_fails_somewhere_ends_with_code_1_and_all_its_output(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # The short way ends the process without taking its heap apart (`end_process`): the exit
    # code, the last line written and the log lines must get out all the same.
    good = feed_server.add_fixture("/news.xml", "rss20.xml")
    gone = feed_server.add("/gone.xml", status=404)
    config = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'omvarld.db'}",
        feed_source(good, key="katrineholm") + feed_source(gone, key="flen"),
    )

    done = omvarld("--config", str(config), "collect", "--all", cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert "2 sources: 4 new, 0 updated, 0 unchanged posts; 0 not modified, 1 failed" in lines
    assert lines[-1] == f"Database: {tmp_path / 'omvarld.db'}"
