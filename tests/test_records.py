"""`omvarld archive export|verify`: a source's records as checkable files, on both databases."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from monitor.audit import list_audit
from monitor.cli import app
from monitor.db import make_engine, upgrade
from monitor.export import iso_utc
from monitor.records import verify_archive
from tests.exportdata import FEED_KEY, MASTODON_KEY, Sample, build_sample

runner = CliRunner()

DATA_FILES = ["posts.jsonl", "revisions.jsonl", "raw.jsonl", "metrics.jsonl", "source.json"]


@pytest.fixture
def sample(tmp_path: Path, engine: Engine) -> Sample:
    return build_sample(tmp_path, engine)


def archive(sample: Sample, out: Path, *args: str) -> Any:
    return runner.invoke(app, ["--config", str(sample.config), "archive", "export", "--out",
                               str(out), *args])  # fmt: skip


def verify(directory: Path, config: Path | None = None) -> Any:
    """`archive verify`, by default without a configuration (so without an audit log)."""
    config = config or directory.parent / "ingen-config.toml"
    return runner.invoke(app, ["--config", str(config), "archive", "verify", str(directory)])


def verify_process(directory: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """`archive verify` as a real process, with a timeout: a FIFO once made it wait forever."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "archive", "verify",
         str(directory)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def written(sample: Sample, tmp_path: Path) -> Path:
    out = tmp_path / "arkiv"
    result = archive(sample, out, "--source", MASTODON_KEY)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Archived {MASTODON_KEY} to {out}: posts.jsonl 3, revisions.jsonl 0, raw.jsonl 3, "
        "metrics.jsonl 3, source.json 1; 1 erased posts left out",
        f"Check it any time with: omvarld archive verify {out}",
    ]
    return out


def test_export_writes_the_source_records_and_verify_passes(
    engine: Engine, sample: Sample, written: Path
) -> None:
    result = verify(written, sample.config)

    assert result.exit_code == 0, result.output
    (entry,) = list_audit(engine, action="archive-export")
    assert result.stdout.splitlines() == [
        f"verified 6 files in {written}",
        f"manifest.json is the one exported here on {iso_utc(entry.at)} by {entry.actor}"
        f" (audit log entry {entry.id})",
    ]
    assert sorted(p.name for p in written.iterdir()) == sorted(
        [*DATA_FILES, "manifest.json", "SHA256SUMS"]
    )
    ids = sample.ids
    posts = lines(written / "posts.jsonl")
    assert [p["id"] for p in posts] == [ids["m1"], ids["m2"], ids["m3"]]  # m4 was erased
    assert posts[2]["deleted_at"] is not None and "raw" not in posts[0]
    assert lines(written / "raw.jsonl") == [
        {"post_id": ids[name], "raw": {"id": name, "visibility": "public"}}
        for name in ("m1", "m2", "m3")
    ]
    metrics = lines(written / "metrics.jsonl")
    assert [(m["post_id"], m["likes"]) for m in metrics] == [
        (ids["m1"], 10), (ids["m1"], 12), (ids["m2"], 1),
    ]  # fmt: skip
    assert lines(written / "revisions.jsonl") == []  # the Mastodon posts were never edited
    source = json.loads((written / "source.json").read_text())
    assert (source["key"], source["organisation"]) == (MASTODON_KEY, "Polisen")
    assert (source["platform"], source["channel"]) == ("mastodon", "mastodon")
    assert "cursor" not in source
    manifest = json.loads((written / "manifest.json").read_text())
    assert manifest["source"] == MASTODON_KEY
    assert manifest["erased_posts_left_out"] == 1
    assert manifest["period"]["since"] is None
    assert [(f["name"], f["records"]) for f in manifest["files"]] == [
        ("posts.jsonl", 3), ("revisions.jsonl", 0), ("raw.jsonl", 3), ("metrics.jsonl", 3),
        ("source.json", 1),
    ]  # fmt: skip


def test_sha256sum_checks_the_archive_without_omvarld(written: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils) is not installed")
    done = subprocess.run(
        ["sha256sum", "--check", "--strict", "SHA256SUMS"],
        cwd=written, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == 6


def test_edited_posts_keep_their_earlier_versions_with_raw_payloads(
    sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "kommun"
    assert archive(sample, out, "--source", FEED_KEY).exit_code == 0

    (revision,) = lines(out / "revisions.jsonl")
    assert revision["post_id"] == sample.ids["a3"]
    assert (revision["title"], revision["raw"]["title"]) == ("Nyhet 3", "Nyhet 3")
    (edited,) = [p for p in lines(out / "posts.jsonl") if p["id"] == sample.ids["a3"]]
    assert edited["title"] == "Rättad"


def test_period_selects_posts_by_publication(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "period"
    result = archive(sample, out, "--source", MASTODON_KEY, "--since", "2026-11-20",
                     "--until", "2026-11-22")  # fmt: skip

    assert result.exit_code == 0, result.output
    assert [p["id"] for p in lines(out / "posts.jsonl")] == [sample.ids["m1"]]
    assert {m["post_id"] for m in lines(out / "metrics.jsonl")} == {sample.ids["m1"]}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["period"]["since"] == "2026-11-20T00:00:00Z"
    assert manifest["period"]["until"] == "2026-11-22T00:00:00Z"
    assert manifest["erased_posts_left_out"] == 0  # the erased post is from 19 November


def test_a_changed_byte_is_named(written: Path) -> None:
    data = bytearray((written / "posts.jsonl").read_bytes())
    data[10] ^= 0x01
    (written / "posts.jsonl").write_bytes(bytes(data))

    result = verify(written)

    assert result.exit_code == 1
    assert "altered: posts.jsonl (SHA-256 differs from manifest.json)" in result.stdout
    assert "1 problem; the archive is not as written" in result.stdout


def test_a_deleted_file_is_named(written: Path) -> None:
    (written / "raw.jsonl").unlink()

    result = verify(written)

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "missing: raw.jsonl"


def test_an_added_file_is_named(written: Path) -> None:
    (written / "notes").mkdir()
    (written / "notes" / "anteckning.txt").write_text("tillagd efteråt")

    result = verify(written)

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "extra: notes/anteckning.txt"


def test_a_rewritten_manifest_is_named(written: Path) -> None:
    manifest = json.loads((written / "manifest.json").read_text())
    manifest["source"] = "någon annan"
    (written / "manifest.json").write_text(json.dumps(manifest))

    problems = verify_archive(written).problems

    assert [str(p) for p in problems] == [
        "altered: manifest.json (SHA-256 differs from SHA256SUMS)"
    ]


def test_several_problems_are_all_named(written: Path) -> None:
    manifest = json.loads((written / "manifest.json").read_text())
    (listed,) = [f for f in manifest["files"] if f["name"] == "metrics.jsonl"]
    (written / "metrics.jsonl").write_text("")
    (written / "source.json").unlink()
    (written / "extra.json").write_text("{}")

    assert [str(p) for p in verify_archive(written).problems] == [
        f"altered: metrics.jsonl (0 bytes, manifest.json says {listed['bytes']})",
        "missing: source.json",
        "extra: extra.json",
    ]


def test_archive_export_is_recorded_in_the_audit_log(
    engine: Engine, sample: Sample, written: Path
) -> None:
    (entry,) = list_audit(engine, action="archive-export")

    assert entry.target == f"source {MASTODON_KEY}"
    assert entry.actor == getpass.getuser()
    manifest_sha256 = hashlib.sha256((written / "manifest.json").read_bytes()).hexdigest()
    assert entry.counts == {
        "posts.jsonl": 3, "revisions.jsonl": 0, "raw.jsonl": 3, "metrics.jsonl": 3,
        "source.json": 1, "manifest_sha256": manifest_sha256,
    }  # fmt: skip


def test_a_non_empty_directory_is_refused_and_left_alone(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "upptagen"
    out.mkdir()
    (out / "annat.txt").write_text("annat")

    result = archive(sample, out, "--source", MASTODON_KEY)

    assert result.exit_code == 2
    assert f"error: --out: {out} is not an empty directory; choose a new one" in result.output
    assert [p.name for p in out.iterdir()] == ["annat.txt"]
    assert list_audit(engine, action="archive-export") == []


def test_an_empty_directory_is_filled(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "tom"
    out.mkdir()

    assert archive(sample, out, "--source", FEED_KEY).exit_code == 0
    assert verify(out).exit_code == 0


def test_an_unknown_source_is_a_usage_error_and_leaves_nothing(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    result = archive(sample, tmp_path / "ingen", "--source", "finns-inte")

    assert result.exit_code == 2
    assert "--source: no source with key 'finns-inte'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if "ingen" in p.name) == []
    assert list_audit(engine, action="archive-export") == []


def test_verify_of_something_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = verify(tmp_path / "saknas")

    assert result.exit_code == 2
    assert f"error: {tmp_path / 'saknas'} is not a directory" in result.output


# ------------------------------------------------------------------ what verify refuses to read


def test_a_fifo_in_the_archive_is_refused_not_waited_on(sample: Sample, written: Path) -> None:
    (written / "raw.jsonl").unlink()
    os.mkfifo(written / "raw.jsonl")

    done = verify_process(written, sample.config)

    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "refused: raw.jsonl (a FIFO; not read)",
        f"{written}: 1 problem; the archive is not as written",
    ]
    assert done.stderr == ""


def test_a_symlink_to_dev_zero_is_refused_not_read(sample: Sample, written: Path) -> None:
    (written / "posts.jsonl").unlink()
    (written / "posts.jsonl").symlink_to("/dev/zero")

    done = verify_process(written, sample.config)

    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == (
        "refused: posts.jsonl (a symbolic link to /dev/zero; not followed)"
    )
    assert "Traceback" not in done.stderr


def test_a_symlink_out_of_the_archive_is_refused_though_its_target_matches(
    sample: Sample, written: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "utanfor.jsonl"
    (written / "metrics.jsonl").rename(outside)
    (written / "metrics.jsonl").symlink_to(outside)

    result = verify(written, sample.config)

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"refused: metrics.jsonl (a symbolic link to {outside}; not followed)",
        f"{written}: 1 problem; the archive is not as written",
    ]


def rewrite_consistently(directory: Path, name: str, data: bytes) -> None:
    """Change a data file and make manifest.json and SHA256SUMS agree with it, as someone
    covering their tracks would."""
    (directory / name).write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["name"] == name:
            entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    sums = "".join(
        f"{hashlib.sha256((directory / line.split()[1]).read_bytes()).hexdigest()}  "
        f"{line.split()[1]}\n"
        for line in (directory / "SHA256SUMS").read_text().splitlines()
    )
    (directory / "SHA256SUMS").write_text(sums)


def test_a_consistent_rewrite_of_data_manifest_and_sums_is_caught_by_the_audit_log(
    engine: Engine, sample: Sample, written: Path
) -> None:
    rewrite_consistently(written, "posts.jsonl", b'{"id": 1, "text": "Det har aldrig hant."}\n')
    assert verify(written).exit_code == 0  # the files agree with each other: only the log knows

    result = verify(written, sample.config)

    (entry,) = list_audit(engine, action="archive-export")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "altered: manifest.json (SHA-256 differs from the export recorded in the audit log"
        f" (entry {entry.id}, {iso_utc(entry.at)}))",
        f"{written}: 1 problem; the archive is not as written",
    ]


def test_an_archive_from_elsewhere_verifies_and_says_it_is_not_recorded_here(
    sample: Sample, written: Path, tmp_path: Path
) -> None:
    """The archive comes from another Omvärld (a SQLite database elsewhere); this database
    recorded its own export (`written`), not that one."""
    elsewhere_dir = tmp_path / "annanstans"
    elsewhere_dir.mkdir()
    elsewhere = make_engine(f"sqlite:///{elsewhere_dir / 'omvarld.db'}")
    upgrade(elsewhere)
    other = build_sample(elsewhere_dir, elsewhere)
    elsewhere.dispose()
    foreign = tmp_path / "fran-annanstans"
    assert archive(other, foreign, "--source", FEED_KEY).exit_code == 0

    result = verify(foreign, sample.config)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"verified 6 files in {foreign}",
        "manifest.json not recorded here: this database's audit log has no such export",
    ]


def test_a_manifest_naming_a_file_by_a_number_is_named_without_a_traceback(
    sample: Sample, written: Path
) -> None:
    manifest = json.loads((written / "manifest.json").read_text())
    manifest["files"][0]["name"] = 5
    (written / "manifest.json").write_text(json.dumps(manifest))

    done = verify_process(written, sample.config)

    assert done.returncode == 1
    assert "altered: manifest.json (files[1].name is not a file name: 5)" in done.stdout
    assert done.stderr == ""
