"""`omvarld export`: files that read back as the stored rows, filters, the data dictionary, and
no partial file when something goes wrong, on both databases."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from monitor.cli import app
from monitor.export import (
    METRIC_COLUMNS,
    POST_COLUMNS,
    ExportColumn,
    ExportFormat,
    export_metrics,
    export_posts,
)
from monitor.filters import PostFilter
from monitor.models import UTCDateTime, post_metrics, posts, sources
from tests.exportdata import (
    DAY,
    FEED_KEY,
    FORMULA_TEXT,
    FORMULA_TITLE,
    MASTODON_KEY,
    MINUS_TEXT,
    NOW,
    Sample,
    article,
    build_sample,
    store,
)

runner = CliRunner()


@pytest.fixture
def sample(tmp_path: Path, engine: Engine) -> Sample:
    return build_sample(tmp_path, engine)


def expected_posts(engine: Engine) -> list[dict[str, Any]]:
    """The stored posts as the `posts_latest` view (migration 0006) reports them, with the
    list columns it leaves out: an account of the data independent of the export's query."""
    timestamps = ("published_at", "first_seen_at", "deleted_at", "counted_at")
    view = sa.text("SELECT * FROM posts_latest ORDER BY id").columns(
        **{name: UTCDateTime() for name in timestamps}
    )
    lists = sa.select(posts.c.id, sources.c.groups, posts.c.tags, posts.c.links).join(
        sources, sources.c.id == posts.c.source_id
    )
    with engine.connect() as connection:
        extra = {row.id: row._mapping for row in connection.execute(lists)}
        rows = [row._mapping for row in connection.execute(view)]
    names = [c.name for c in POST_COLUMNS]
    return [
        {name: extra[row["id"]][name] if name in ("groups", "tags", "links") else row[name]
         for name in names}
        for row in rows
    ]  # fmt: skip


def read_back(path: Path, columns: tuple[ExportColumn, ...]) -> list[dict[str, Any]]:
    """An export's rows as Python values, read with each format's ordinary reader."""
    types = {c.name: c.type for c in columns}
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_table(path).to_pylist())
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle]
        return [{k: _timestamp(v) if types[k] == "timestamp" else v for k, v in r.items()}
                for r in records]  # fmt: skip
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{k: _csv_value(v, types[k]) for k, v in r.items()} for r in csv.DictReader(handle)]


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _csv_value(cell: str, kind: str) -> Any:
    if cell == "":
        return None
    if kind == "integer":
        return int(cell)
    if kind == "timestamp":
        return datetime.fromisoformat(cell)
    if kind == "list of strings":
        return json.loads(cell)
    return cell[1:] if cell.startswith("'") else cell  # the sidecar's rule for formula cells


def exported_ids(engine: Engine, tmp_path: Path, chosen: PostFilter) -> set[int]:
    out = tmp_path / "chosen.jsonl"
    export_posts(engine, chosen, ExportFormat.JSONL, out)
    return {row["id"] for row in read_back(out, POST_COLUMNS)}


@pytest.mark.parametrize("file_format", list(ExportFormat))
def test_posts_export_reads_back_as_the_stored_posts_with_their_latest_counts(
    engine: Engine, sample: Sample, tmp_path: Path, file_format: ExportFormat
) -> None:
    out = tmp_path / f"posts.{file_format}"

    result = export_posts(engine, PostFilter(), file_format, out)

    expected = expected_posts(engine)
    assert read_back(out, POST_COLUMNS) == expected
    assert result.rows == len(expected) == 6  # seven stored, one erased
    by_id = {row["id"]: row for row in expected}
    m1 = by_id[sample.ids["m1"]]
    assert (m1["likes"], m1["engagement"], m1["tags"]) == (12, 18, ["halka"])
    assert by_id[sample.ids["m3"]]["deleted_at"] is not None
    assert by_id[sample.ids["a3"]]["title"] == "Rättad"


@pytest.mark.parametrize("file_format", list(ExportFormat))
def test_metrics_export_has_one_row_per_observation_of_posts_not_erased(
    engine: Engine, sample: Sample, tmp_path: Path, file_format: ExportFormat
) -> None:
    out = tmp_path / f"metrics.{file_format}"

    export_metrics(engine, PostFilter(), file_format, out)

    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(post_metrics, sources.c.key, sources.c.platform, sources.c.channel)
            .join(posts, posts.c.id == post_metrics.c.post_id)
            .join(sources, sources.c.id == posts.c.source_id)
            .order_by(post_metrics.c.post_id, post_metrics.c.id)
        ).all()
    names = [c.name for c in METRIC_COLUMNS]
    expected = [
        {name: row.key if name == "source_key" else row._mapping[name] for name in names}
        for row in stored
    ]
    assert read_back(out, METRIC_COLUMNS) == expected
    assert [row["post_id"] for row in expected].count(sample.ids["m1"]) == 2
    assert sample.ids[sample.erased] not in {row["post_id"] for row in expected}


def test_filters_narrow_the_export(engine: Engine, sample: Sample, tmp_path: Path) -> None:
    ids = sample.ids

    def chosen(**fields: Any) -> set[str]:
        found = exported_ids(engine, tmp_path, PostFilter(**fields))
        return {name for name, post_id in ids.items() if post_id in found}

    assert chosen() == {"a1", "a2", "a3", "m1", "m2", "m3"}
    assert chosen(platforms=("mastodon",)) == {"m1", "m2", "m3"}
    assert chosen(sources=(FEED_KEY,)) == {"a1", "a2", "a3"}
    assert chosen(organisations=("Polisen",)) == {"m1", "m2", "m3"}
    assert chosen(groups=("blåljus",)) == {"m1", "m2", "m3"}
    assert chosen(groups=("kommuner", "regioner")) == {"a1", "a2", "a3"}
    assert chosen(kinds=("reply",)) == {"m2"}
    assert chosen(since=NOW - 3 * DAY, until=NOW - DAY) == {"a3", "m1"}  # until is exclusive
    assert chosen(min_engagement=5) == {"a3", "m1"}
    assert chosen(platforms=("mastodon",), min_engagement=5) == {"m1"}


def test_cli_filter_options_reach_the_export(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "polisen.jsonl"
    out.parent.mkdir()

    result = runner.invoke(app, [
        "--config", str(sample.config), "export", "posts", "--out", str(out),
        "--group", "blåljus", "--kind", "post", "--min-engagement", "5",
        "--since", "2026-11-21", "--until", "2026-11-22T08:00",
    ])  # fmt: skip

    assert result.exit_code == 0, result.output
    assert [row["id"] for row in read_back(out, POST_COLUMNS)] == [sample.ids["m1"]]
    assert f"Exported 1 posts to {out} (jsonl" in result.stdout
    dictionary = json.loads(out.with_name("polisen.jsonl.dictionary.json").read_text())
    assert dictionary["filters"] == {
        "since": "2026-11-21T00:00:00Z",
        "until": "2026-11-22T08:00:00Z",
        "platforms": [],
        "sources": [],
        "organisations": [],
        "groups": ["blåljus"],
        "kinds": ["post"],
        "min_engagement": 5,
    }


def test_mistyped_source_or_platform_is_a_usage_error_and_writes_nothing(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = str(sample.config)

    by_source = runner.invoke(
        app,
        ["--config", config, "export", "posts", "--out", str(out / "x.csv"), "--source", "nope"],
    )
    by_platform = runner.invoke(
        app, ["--config", config, "export", "metrics", "--out", str(out / "x.csv"),
              "--platform", "myspace"],
    )  # fmt: skip
    no_format = runner.invoke(app, ["--config", config, "export", "posts", "--out", str(out / "x")])
    no_folder = runner.invoke(
        app, ["--config", config, "export", "posts", "--out", str(out / "saknas" / "x.csv")]
    )

    assert {by_source.exit_code, by_platform.exit_code, no_format.exit_code} == {2}
    assert no_folder.exit_code == 2
    assert f"--out: directory {out / 'saknas'} does not exist" in no_folder.output
    assert "--source: no source with key 'nope'" in by_source.output
    assert "--platform: unknown 'myspace'" in by_platform.output
    assert "--format: give csv, jsonl or parquet (x does not say which)" in no_format.output
    assert list(out.iterdir()) == []


def test_a_group_no_source_is_in_is_a_usage_error_naming_the_groups(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    # `--group kommun` exported an empty file and exited 0, like `posts search` did.
    out = tmp_path / "x.csv"

    result = runner.invoke(
        app, ["--config", str(sample.config), "export", "posts", "--out", str(out),
              "--group", "kommun"],
    )  # fmt: skip

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --group: unknown 'kommun'; expected one of blåljus, kommuner, myndigheter"
    ]
    assert not out.exists()


def test_erased_posts_are_never_exported(engine: Engine, sample: Sample, tmp_path: Path) -> None:
    for file_format in ExportFormat:
        out = tmp_path / f"posts.{file_format}"
        export_posts(engine, PostFilter(sources=(MASTODON_KEY,)), file_format, out)
        assert sample.ids[sample.erased] not in {row["id"] for row in read_back(out, POST_COLUMNS)}
    raw = (tmp_path / "posts.jsonl").read_text(encoding="utf-8")
    assert "privatperson" not in raw and '"m4"' not in raw


def test_csv_cells_that_look_like_formulas_get_a_leading_apostrophe(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    export_posts(engine, PostFilter(), ExportFormat.CSV, tmp_path / "posts.csv")
    export_posts(engine, PostFilter(), ExportFormat.JSONL, tmp_path / "posts.jsonl")

    with (tmp_path / "posts.csv").open(encoding="utf-8-sig", newline="") as handle:
        cells = {cell for row in csv.reader(handle) for cell in row}
    assert "'" + FORMULA_TEXT in cells
    assert "'" + FORMULA_TITLE in cells
    assert "'" + MINUS_TEXT in cells
    assert "'@medborgare Vi återkommer." in cells
    assert "'@polisen@polisen.se" in cells  # the author column too
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    # JSON Lines is not opened in spreadsheets: the text stays exactly as published.
    texts = {json.loads(line)["text"] for line in (tmp_path / "posts.jsonl").open()}
    assert FORMULA_TEXT in texts and MINUS_TEXT in texts


def test_csv_is_excel_readable_utf8_with_rfc4180_quoting(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "posts.csv"
    export_posts(engine, PostFilter(sources=(FEED_KEY,)), ExportFormat.CSV, out)
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,source_key,platform,")
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert '"\'=HYPERLINK(""https://evil.example/"",""Klicka här"")"'.encode() in data
    assert '"[""snö"", ""trafik""]"'.encode() in data


@pytest.mark.parametrize("file_format", list(ExportFormat))
def test_dictionary_beside_the_file_names_columns_filters_rows_and_its_hash(
    engine: Engine, sample: Sample, tmp_path: Path, file_format: ExportFormat
) -> None:
    out = tmp_path / f"posts.{file_format}"
    chosen = PostFilter(platforms=("mastodon",), since=NOW - 30 * DAY)

    result = export_posts(engine, chosen, file_format, out)

    dictionary = json.loads((tmp_path / f"posts.{file_format}.dictionary.json").read_text())
    assert dictionary["file"] == out.name
    assert (dictionary["dataset"], dictionary["format"]) == ("posts", str(file_format))
    assert dictionary["rows"] == result.rows == 3
    assert dictionary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert dictionary["bytes"] == out.stat().st_size
    assert dictionary["database"] == engine.dialect.name
    assert dictionary["omvarld_version"] == version("omvarld")
    assert datetime.fromisoformat(dictionary["exported_at"]).tzinfo is not None
    assert dictionary["filters"]["platforms"] == ["mastodon"]
    assert dictionary["filters"]["since"] == "2026-10-24T08:00:00Z"
    assert [c["name"] for c in dictionary["columns"]] == [c.name for c in POST_COLUMNS]
    assert all(c["type"] and c["meaning"] for c in dictionary["columns"])
    if file_format is ExportFormat.CSV:
        assert "apostrophe" in dictionary["format_notes"]
        with out.open(encoding="utf-8-sig", newline="") as handle:
            assert next(csv.reader(handle)) == [c["name"] for c in dictionary["columns"]]


def _cli(config: Path, *args: str, code: str | None = None, **popen: Any) -> Any:
    """The real command line in a child process (`code` runs first, in the child)."""
    prelude = code or ""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OMVARLD_")}
    return subprocess.run(
        [sys.executable, "-c", f"{prelude}\nfrom monitor.cli import main\nmain()",
         "--config", str(config), *args],
        capture_output=True, text=True, env=environment, timeout=120, **popen,
    )  # fmt: skip


def test_parquet_without_pyarrow_says_how_to_install_it_and_writes_nothing(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()

    # A None entry in sys.modules makes `import pyarrow` fail as if it were not installed.
    block = "import sys; sys.modules['pyarrow'] = None"
    done = _cli(sample.config, "export", "posts", "--format", "parquet",
                "--out", str(out / "posts.parquet"), code=block)  # fmt: skip

    assert done.returncode == 2
    assert done.stderr == (
        "error: Parquet needs pyarrow: from the Omvärld checkout, pip install -e '.[parquet]'\n"
    )
    assert list(out.iterdir()) == []


def _limit_file_size() -> None:
    # Writing past the limit fails with EFBIG (instead of killing the process) once SIGXFSZ is
    # ignored: a real failure part-way through the export, like a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_failed_export_leaves_no_partial_file_and_keeps_the_previous_one(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    long_text = "Informationen om vinterväghållningen uppdateras löpande. " * 20
    store(engine, FEED_KEY, [article(n, NOW - n * DAY, text=long_text) for n in range(10, 60)])
    out = tmp_path / "out"
    out.mkdir()
    target = out / "posts.csv"
    first = _cli(sample.config, "export", "posts", "--out", str(target), "--since", "2026-11-20")
    assert first.returncode == 0, first.stderr
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    failed = _cli(sample.config, "export", "posts", "--out", str(target),
                  preexec_fn=_limit_file_size)  # fmt: skip

    assert failed.returncode == 1
    assert f"error: export to {target} failed: [Errno 27] File too large" in failed.stderr
    assert "nothing was written" in failed.stderr and "Traceback" not in failed.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert sorted(before) == ["posts.csv", "posts.csv.dictionary.json"]


def test_export_never_writes_over_the_database_or_the_config(
    engine: Engine, sample: Sample, tmp_path: Path
) -> None:
    # `--out omvarld.db` replaced the database with CSV and exited 0.
    refused = {"config.toml": "the configuration file"}
    (tmp_path / "sub").mkdir()
    if engine.dialect.name == "sqlite":  # a server database has no file to protect
        (tmp_path / "link.csv").symlink_to(tmp_path / "omvarld.db")
        refused |= {
            "omvarld.db": "the database",
            "sub/../omvarld.db": "the database",
            str(tmp_path / "link.csv"): "the database",
            "omvarld.db-wal": "a file of the database",
            "omvarld.db-shm": "a file of the database",
            "omvarld.db-journal": "a file of the database",
        }
    (tmp_path / "posts.csv.dictionary.json").symlink_to(sample.config)
    kept = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}

    done = {
        out: _cli(sample.config, "export", "posts", "--format", "csv", "--out", out, cwd=tmp_path)
        for out in refused
    }
    # Its data dictionary (FILE.dictionary.json) would have replaced the config.
    beside = _cli(sample.config, "export", "posts", "--out", "posts.csv", cwd=tmp_path)
    opml = _cli(sample.config, "sources", "export-opml", "--out", "config.toml", cwd=tmp_path)

    for out, what in refused.items():
        assert done[out].returncode == 2, done[out].stderr
        assert done[out].stderr == f"error: --out: {Path(out)} is {what}; write to another file\n"
    assert beside.returncode == 2
    assert "--out: posts.csv.dictionary.json is the configuration file" in beside.stderr
    assert opml.returncode == 2
    assert (
        opml.stderr
        == "error: --out: config.toml is the configuration file; write to another file\n"
    )
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == kept
