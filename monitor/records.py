"""The records archive: one source's posts, earlier versions, raw payloads and counts as files
that can be checked for changes years later without Omvärld (`sha256sum -c SHA256SUMS`).

An archive is a directory of JSON Lines files, `source.json`, and `manifest.json` and
`SHA256SUMS` listing every file with its size and SHA-256. It is written into a hidden directory
beside the target and renamed into place when complete, from one database snapshot, a row at a
time. Every archive export is recorded in `audit_log` with the manifest's SHA-256: the files check
each other, so only that record tells a consistent rewrite of data, manifest and SHA256SUMS from
the archive as written.

Verifying reads regular files inside the archive only: a symlink (out of the archive, or to
/dev/zero) or a FIFO is named and never opened, so verify neither hangs nor vouches for a file
that is not there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.audit import current_user, list_audit, record_audit
from monitor.export import iso_utc, omvarld_version, stream_rows
from monitor.files import NotRegularFile, open_regular
from monitor.filters import PostFilter, where_posts
from monitor.models import (
    REVISION_COLUMNS,
    post_metrics,
    post_revisions,
    posts,
    sources,
)
from monitor.types import METRIC_NAMES

MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
ARCHIVE_FORMAT = 1  # raised when a file's layout changes, so a reader can tell versions apart

# What each data file holds, written into the manifest for whoever opens the archive later.
CONTENTS = {
    "posts.jsonl": "the source's posts as last collected, one JSON object per line, by id",
    "revisions.jsonl": (
        "earlier versions of edited posts (with that version's raw payload), by post and time"
    ),
    "raw.jsonl": "each post's payload as the platform gave it: {post_id, raw}, by post id",
    "metrics.jsonl": "every engagement observation of the posts, by post and time",
    "source.json": "the watched feed or account as configured and stored",
}

# Post columns in posts.jsonl: the stored version without its raw payload (in raw.jsonl) and
# without the digest's derived search terms.
POST_FIELDS = (
    "id", "platform_post_id", "kind", "url", "author", "published_at", "title", "text", "html",
    "language", "tags", "links", "mentions", "other_mentions", "media", "content_hash",
    "first_seen_at", "fetched_at", "deleted_at",
)  # fmt: skip
# Source columns in source.json: what the source is, not the collector's working state
# (cursor, validators, leases).
SOURCE_FIELDS = (
    "key", "platform", "channel", "name", "handle", "url", "fetch_url", "platform_id",
    "organisation", "groups", "active", "enabled", "status", "created_at", "updated_at",
    "retired_at",
)  # fmt: skip

_SUMS_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")

EXPORT_ACTION = "archive-export"
MANIFEST_SHA256 = "manifest_sha256"  # the key of the manifest's SHA-256 in the audit row's counts
# manifest.json and SHA256SUMS are a few hundred bytes as written; a larger one is not ours.
MAX_LISTING_BYTES = 1_000_000

_FILE_TYPES = {
    stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}  # fmt: skip


class ArchiveError(Exception):
    """The archive cannot be written or read as asked; the message names the thing and why."""


@dataclass(frozen=True)
class ArchivedFile:
    name: str
    records: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ArchiveResult:
    directory: Path
    files: tuple[ArchivedFile, ...]
    erased_left_out: int


@dataclass(frozen=True)
class Problem:
    kind: str  # altered | missing | extra | refused (not a regular file: never opened)
    name: str  # the file, relative to the archive directory
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Verification:
    checked: int  # files whose size and SHA-256 were recomputed
    problems: tuple[Problem, ...]
    # What this database's audit log says of the manifest: None when no database was asked.
    provenance: str | None = None


@dataclass(frozen=True)
class _Manifest:
    files: dict[str, tuple[int, str]]  # name -> (bytes, SHA-256)
    source: str | None
    created_at: str | None
    sha256: str  # of manifest.json itself


def export_archive(
    engine: Engine,
    source_key: str,
    out: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    actor: str | None = None,
) -> ArchiveResult:
    """Write the archive of one source's posts published in [since, until) to `out`.

    Raises:
        ArchiveError: `out` is not empty or not creatable, or no source has the key.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArchiveError(f"--out: {out} is not an empty directory; choose a new one")
    if not out.parent.is_dir():
        raise ArchiveError(f"--out: directory {out.parent} does not exist")
    started = now or datetime.now(UTC)
    who = actor or current_user()
    chosen = PostFilter(since=since, until=until, sources=(source_key,))
    part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    part.mkdir()
    try:
        with engine.connect() as connection:
            _begin_snapshot(connection)
            source = connection.execute(
                sa.select(*(sources.c[name] for name in SOURCE_FIELDS)).where(
                    sources.c.key == source_key
                )
            ).one_or_none()
            if source is None:
                raise ArchiveError(
                    f"--source: no source with key {source_key!r};"
                    " `omvarld sources list --inactive` shows them"
                )
            queries = {
                "posts.jsonl": _posts_query(chosen),
                "revisions.jsonl": _revisions_query(chosen),
                "raw.jsonl": _raw_query(chosen),
                "metrics.jsonl": _metrics_query(chosen),
            }
            files = [
                _write_lines(part / name, connection, query) for name, query in queries.items()
            ]
            files.append(_write_json(part / "source.json", _jsonable(dict(source._mapping))))
            erased = _count_erased(connection, chosen)
            dialect = connection.dialect.name
        manifest = {
            "archive": "omvarld records archive",
            "archive_format": ARCHIVE_FORMAT,
            "created_at": iso_utc(started),
            "created_by": who,
            "omvarld_version": omvarld_version(),
            "database": dialect,
            "source": source_key,
            "period": {
                "since": iso_utc(since) if since else None,
                "until": iso_utc(until) if until else None,
                "of": "published_at: posts published at or after since and before until",
            },
            "erased_posts_left_out": erased,
            "files": [
                {
                    "name": f.name,
                    "bytes": f.bytes,
                    "sha256": f.sha256,
                    "records": f.records,
                    "contents": CONTENTS[f.name],
                }
                for f in files
            ],
        }
        listed = _write_json(part / MANIFEST, manifest)
        sums = "".join(f"{f.sha256}  {f.name}\n" for f in [*files, listed])
        counts: dict[str, int | str] = {f.name: f.records for f in files}
        counts[MANIFEST_SHA256] = listed.sha256
        (part / CHECKSUMS).write_text(sums, encoding="utf-8")
        for path in part.iterdir():
            _flush_to_disk(path)
        # The audit row and the archive appear together: the rename happens inside the audit
        # transaction, and rename(2) replaces an empty directory, so the archive is complete
        # under its name or absent.
        with engine.begin() as connection:
            record_audit(
                connection,
                at=started,
                action=EXPORT_ACTION,
                target=f"source {source_key}",
                reason=None,
                actor=who,
                counts=counts,
            )
            os.replace(part, out)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return ArchiveResult(out, tuple(files), erased)


def verify_archive(directory: Path, engine: Engine | None = None) -> Verification:
    """Recompute every file's size and SHA-256 and compare them with the manifest and
    SHA256SUMS; name every altered, missing, extra or refused (not regular) file. With `engine`,
    also compare the manifest with the export recorded in that database's audit log.

    Raises:
        ArchiveError: `directory` is not a directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArchiveError(f"{directory} is not a directory")
    problems: list[Problem] = []
    present, refused = _list_files(directory, problems)
    sums = _read_sums(directory, present, problems)
    manifest = _read_manifest(directory, present, problems)
    listed = None if manifest is None else manifest.files
    if sums is not None and listed is not None and set(sums) != {*listed, MANIFEST}:
        problems.append(Problem("altered", CHECKSUMS, f"does not list the files {MANIFEST} does"))

    expected: dict[str, list[tuple[str, int | None, str]]] = {}
    # The manifest first: it also knows sizes, and a size says more than a hash.
    for name, (listed_size, listed_digest) in (listed or {}).items():
        expected.setdefault(name, []).append((MANIFEST, listed_size, listed_digest))
    for name, digest in (sums or {}).items():
        expected.setdefault(name, []).append((CHECKSUMS, None, digest))
    checked = 0
    for name in sorted(expected):
        if name in refused:
            continue  # named already; "missing" as well would say the same twice
        if name not in present:
            problems.append(Problem("missing", name))
            continue
        try:
            with _open_regular(directory / name) as handle:
                actual_size = os.fstat(handle.fileno()).st_size
                actual_digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except _Refused as refusal:  # replaced since it was listed
            problems.append(Problem("refused", name, str(refusal)))
            continue
        checked += 1
        for where, size, digest in expected[name]:
            if size is not None and size != actual_size:
                detail = f"{actual_size} bytes, {where} says {size}"
            elif digest != actual_digest:
                detail = f"SHA-256 differs from {where}"
            else:
                continue
            problems.append(Problem("altered", name, detail))
            break
    known = {*expected, MANIFEST, CHECKSUMS}
    problems += [Problem("extra", name) for name in sorted(present - known)]
    provenance = None
    if engine is not None:
        provenance = _check_export_record(engine, manifest, problems)
    return Verification(checked, tuple(problems), provenance)


class _Refused(Exception):
    """Not a regular file inside the archive: not opened (or closed at once)."""


def _describe_refusal(path: Path, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return f"a symbolic link to {os.readlink(path)}; not followed"
    return f"{_FILE_TYPES.get(stat.S_IFMT(mode), 'not a regular file')}; not read"


def _list_files(directory: Path, problems: list[Problem]) -> tuple[set[str], set[str]]:
    """The regular files below `directory` (relative names), and the names refused: symlinks
    (even to directories: os.walk does not follow them) and FIFOs, devices or sockets."""
    present: set[str] = set()
    refused: set[str] = set()
    for root, directories, files in os.walk(directory):
        for name in sorted([*directories, *files]):
            path = Path(root, name)
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            relative = path.relative_to(directory).as_posix()
            if stat.S_ISREG(mode):
                present.add(relative)
            else:
                refused.add(relative)
                problems.append(Problem("refused", relative, _describe_refusal(path, mode)))
    return present, refused


def _open_regular(path: Path) -> io.BufferedReader:
    """Open `path` for reading only if it is a regular file, not through a symlink: checked on
    the open file, so a file swapped after listing is refused too."""
    try:
        handle, _ = open_regular(path, follow_symlinks=False)
    except NotRegularFile as refusal:
        raise _Refused(_describe_refusal(path, refusal.mode)) from None
    except OSError as error:
        raise _Refused(f"cannot be opened safely: {error.strerror}") from None
    return handle


def _read_listing(directory: Path, name: str, problems: list[Problem]) -> bytes | None:
    """manifest.json or SHA256SUMS, if it is a regular file of a sensible size."""
    try:
        with _open_regular(directory / name) as handle:
            data: bytes = handle.read(MAX_LISTING_BYTES + 1)
    except _Refused as refusal:
        problems.append(Problem("refused", name, str(refusal)))
        return None
    if len(data) > MAX_LISTING_BYTES:
        problems.append(Problem("altered", name, f"larger than {MAX_LISTING_BYTES:,} bytes"))
        return None
    return data


def _read_sums(
    directory: Path, present: set[str], problems: list[Problem]
) -> dict[str, str] | None:
    if CHECKSUMS not in present:
        if not any(p.name == CHECKSUMS for p in problems):
            problems.append(Problem("missing", CHECKSUMS))
        return None
    data = _read_listing(directory, CHECKSUMS, problems)
    if data is None:
        return None
    sums: dict[str, str] = {}
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        lines = ["?"]
    for number, line in enumerate(lines, 1):
        match = _SUMS_LINE.match(line)
        if match is None:
            problems.append(Problem("altered", CHECKSUMS, f"line {number} is not 'SHA256  NAME'"))
            continue
        sums[match[2]] = match[1]
    return sums


def _read_manifest(directory: Path, present: set[str], problems: list[Problem]) -> _Manifest | None:
    if MANIFEST not in present:
        if not any(p.name == MANIFEST for p in problems):
            problems.append(Problem("missing", MANIFEST))
        return None
    data = _read_listing(directory, MANIFEST, problems)
    if data is None:
        return None
    try:
        return _parse_manifest(data)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        # Reported as altered by its SHA256SUMS line as well, unless that was rewritten too.
        detail = str(error) if isinstance(error, _ManifestError) else "not a readable manifest"
        problems.append(Problem("altered", MANIFEST, detail))
        return None


class _ManifestError(ValueError):
    """The manifest is JSON of the wrong shape; the message says where."""


def _parse_manifest(data: bytes) -> _Manifest:
    manifest = json.loads(data)
    files: dict[str, tuple[int, str]] = {}
    for number, entry in enumerate(manifest["files"], 1):
        name, size, digest = entry["name"], entry["bytes"], entry["sha256"]
        # A name that is not a string (a number, a list) would otherwise end in a traceback.
        if not isinstance(name, str) or not name:
            raise _ManifestError(f"files[{number}].name is not a file name: {name!r}")
        if not isinstance(size, int) or isinstance(size, bool) or not isinstance(digest, str):
            raise _ManifestError(f"files[{number}] ({name}): bytes or sha256 of the wrong type")
        files[name] = (size, digest)
    source, created = manifest.get("source"), manifest.get("created_at")
    return _Manifest(
        files,
        source if isinstance(source, str) else None,
        created if isinstance(created, str) else None,
        hashlib.sha256(data).hexdigest(),
    )


def _check_export_record(
    engine: Engine, manifest: _Manifest | None, problems: list[Problem]
) -> str | None:
    """Compare the manifest with the export this database's audit log recorded: the only check
    a rewrite of every file, SHA256SUMS included, cannot pass. Returns what the log says."""
    if manifest is None:
        return None
    entries = list_audit(engine, action=EXPORT_ACTION)
    for entry in entries:
        if entry.counts.get(MANIFEST_SHA256) == manifest.sha256:
            return (
                f"{MANIFEST} is the one exported here on {iso_utc(entry.at)}"
                f" by {entry.actor or 'unknown user'} (audit log entry {entry.id})"
            )
    same_export = [
        entry
        for entry in entries
        if entry.target == f"source {manifest.source}" and iso_utc(entry.at) == manifest.created_at
    ]
    recorded = [entry for entry in same_export if MANIFEST_SHA256 in entry.counts]
    if recorded:
        problems.append(
            Problem(
                "altered",
                MANIFEST,
                f"SHA-256 differs from the export recorded in the audit log"
                f" (entry {recorded[0].id}, {iso_utc(recorded[0].at)})",
            )
        )
        return None
    if same_export:
        return (
            f"{MANIFEST} not recorded here: the export of {manifest.created_at}"
            f" (audit log entry {same_export[0].id}) was recorded without its SHA-256"
        )
    return f"{MANIFEST} not recorded here: this database's audit log has no such export"


def _begin_snapshot(connection: Connection) -> None:
    """Make every query on `connection` see the same committed state, so that a collection
    running meanwhile cannot put a post's counts in the archive without the post."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    else:
        # pysqlite starts no transaction for reads; in WAL mode an explicit one is a snapshot.
        connection.exec_driver_sql("BEGIN")


def _posts_query(chosen: PostFilter) -> sa.Select[Any]:
    return (
        sa.select(*(posts.c[name] for name in POST_FIELDS))
        .select_from(_posts_with_source())
        .where(*where_posts(chosen))
        .order_by(posts.c.id)
    )


def _revisions_query(chosen: PostFilter) -> sa.Select[Any]:
    r = post_revisions.c
    return (
        sa.select(r.id, r.post_id, r.superseded_at, *(r[name] for name in REVISION_COLUMNS))
        .select_from(post_revisions.join(_posts_with_source(), posts.c.id == r.post_id))
        .where(*where_posts(chosen))
        .order_by(r.post_id, r.id)
    )


def _raw_query(chosen: PostFilter) -> sa.Select[Any]:
    return (
        sa.select(posts.c.id.label("post_id"), posts.c.raw)
        .select_from(_posts_with_source())
        .where(*where_posts(chosen))
        .order_by(posts.c.id)
    )


def _metrics_query(chosen: PostFilter) -> sa.Select[Any]:
    m = post_metrics.c
    return (
        sa.select(m.id, m.post_id, m.observed_at, *(m[name] for name in METRIC_NAMES))
        .select_from(post_metrics.join(_posts_with_source(), posts.c.id == m.post_id))
        .where(*where_posts(chosen))
        .order_by(m.post_id, m.id)
    )


def _count_erased(connection: Connection, chosen: PostFilter) -> int:
    """Erased posts the period would have held: the archive says how many it lacks, not which."""
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(_posts_with_source())
        .where(*where_posts(chosen, erased=True))
    ).scalar_one()


def _posts_with_source() -> sa.Join:
    return posts.join(sources, sources.c.id == posts.c.source_id)


def _write_lines(path: Path, connection: Connection, query: sa.Select[Any]) -> ArchivedFile:
    """Write the query's rows as JSON Lines, hashing as they go; one pass, one row in memory."""
    names = list(query.selected_columns.keys())
    digest = hashlib.sha256()
    size = records = 0
    with path.open("xb") as handle:
        for row in stream_rows(connection, query):
            line = _encode(_jsonable(dict(zip(names, row, strict=True)))) + b"\n"
            handle.write(line)
            digest.update(line)
            size += len(line)
            records += 1
    return ArchivedFile(path.name, records, size, digest.hexdigest())


def _write_json(path: Path, value: Mapping[str, Any]) -> ArchivedFile:
    data = json.dumps(value, ensure_ascii=False, indent=2).encode() + b"\n"
    path.write_bytes(data)
    return ArchivedFile(path.name, 1, len(data), hashlib.sha256(data).hexdigest())


def _encode(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: iso_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _flush_to_disk(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
