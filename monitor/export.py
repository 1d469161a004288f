"""`omvarld export`: stored posts, their engagement history or the accounts' own counts over
time (`source-metrics`) as CSV, JSON Lines or Parquet.

Rows are streamed from the database and written one at a time (Parquet: one row group at a
time), so an export of millions of posts runs in constant memory. The file appears only when
complete: rows go to a hidden temporary file beside it, renamed at the end. Next to every export
goes a data dictionary (`FILE.dictionary.json`) saying what each column means, which filters
chose the rows, how many there are and the file's SHA-256.
"""

from __future__ import annotations

import codecs
import csv
import enum
import hashlib
import io
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.filters import PostFilter, where_posts, where_sources
from monitor.models import post_metrics, posts, source_metrics, sources
from monitor.platforms import CHANNEL_KEYS, PLATFORM_KEYS
from monitor.types import METRIC_NAMES

# Rows fetched per round trip from PostgreSQL's server-side cursor: large enough that round
# trips cost little, small enough that a batch of long posts stays a few megabytes.
STREAM_BATCH = 2_000
# Rows per Parquet row group. A group is built in memory before it is written: an export's peak
# was 197 MiB with 10,000 rows a group and 240 MiB with 20,000 (pyarrow alone takes 60 MiB),
# and groups of 10,000 still let readers skip most of a file by their statistics.
PARQUET_ROW_GROUP = 10_000
# Bytes read at a time when hashing a written file.
HASH_CHUNK = 1 << 20

PARQUET_MISSING = "Parquet needs pyarrow: from the Omvärld checkout, pip install -e '.[parquet]'"
DICTIONARY_SUFFIX = ".dictionary.json"

# A spreadsheet runs a cell that begins with one of these as a formula (OWASP "CSV injection";
# tab and carriage return too). Post text is written by strangers and analysts open exports in
# Excel, so such cells get a leading apostrophe. Cells that already begin with an apostrophe get
# one as well, which keeps the rule reversible: drop one leading apostrophe from any text cell.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")

# "feed, x, … or flickr", for the column descriptions.
PLATFORM_LIST = (
    f"as collected: {', '.join(PLATFORM_KEYS[:-1])} or {PLATFORM_KEYS[-1]} (a YouTube"
    " channel's feed is feed)"
)


class ExportError(Exception):
    """The export cannot start as asked (bad destination, missing extra); nothing was written."""


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


class Dataset(enum.StrEnum):
    POSTS = "posts"
    METRICS = "metrics"
    SOURCE_METRICS = "source-metrics"


@dataclass(frozen=True)
class ExportColumn:
    name: str
    type: str  # integer | string | timestamp | list of strings
    meaning: str


@dataclass(frozen=True)
class ExportResult:
    path: Path
    dictionary_path: Path
    rows: int
    bytes: int
    sha256: str


_COUNT_MEANINGS = {
    "views": "views or plays",
    "likes": "likes or favourites",
    "reposts": "reposts, retweets, boosts or shares",
    "replies": "replies or comments",
    "quotes": "quote posts",
    "reactions": "reactions (Facebook)",
    "bookmarks": "bookmarks",
}
_NOT_REPORTED = "; empty when the platform does not report it"
CHANNEL = ExportColumn(
    "channel",
    "string",
    "the platform readers know the source by: its platform, except that a known platform's"
    f" feed is that platform's ({', '.join(k for k in CHANNEL_KEYS if k != 'feed')};"
    " a YouTube channel's feed is youtube)",
)

POST_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("id", "integer", "Omvärld's id of the post, the same in every export"),
    ExportColumn("source_key", "string", "the watched feed or account, as keyed in the config"),
    ExportColumn("platform", "string", PLATFORM_LIST),
    CHANNEL,
    ExportColumn("organisation", "string", "the organisation the source belongs to"),
    ExportColumn("groups", "list of strings", "the source's groups in the configuration"),
    ExportColumn(
        "platform_post_id", "string", "the platform's own id of the post (for feeds: guid or link)"
    ),
    ExportColumn("kind", "string", "article, post, reply, repost, quote, video, photo or live"),
    ExportColumn("url", "string", "link to the post; empty when it has none"),
    ExportColumn("author", "string", "the author as the platform names them"),
    ExportColumn(
        "published_at",
        "timestamp",
        "when it was published, UTC; an undated entry has the time Omvärld first saw it",
    ),
    ExportColumn("title", "string", "the title, plain text"),
    ExportColumn("text", "string", "the body as plain text, as the publisher wrote it"),
    ExportColumn("language", "string", "language code, e.g. sv, where the source gives one"),
    ExportColumn("tags", "list of strings", "hashtags or categories, without #"),
    ExportColumn("links", "list of strings", "http(s) links in the post"),
    ExportColumn("first_seen_at", "timestamp", "when Omvärld first stored the post, UTC"),
    ExportColumn(
        "deleted_at",
        "timestamp",
        "when the platform said the post was deleted, UTC; empty while it is up",
    ),
    *(
        ExportColumn(name, "integer", f"{_COUNT_MEANINGS[name]} at the latest count{_NOT_REPORTED}")
        for name in METRIC_NAMES
    ),
    ExportColumn(
        "engagement",
        "integer",
        "likes + reposts + replies + quotes + reactions at the latest count (views and bookmarks"
        " are not responses); empty when the post was never counted",
    ),
    ExportColumn(
        "counted_at", "timestamp", "when the latest counts were observed, UTC; empty if never"
    ),
)

METRIC_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("post_id", "integer", "the post's id, as in `omvarld export posts`"),
    ExportColumn("source_key", "string", "the watched feed or account, as keyed in the config"),
    ExportColumn("platform", "string", PLATFORM_LIST),
    CHANNEL,
    ExportColumn("observed_at", "timestamp", "when these counts were observed, UTC"),
    *(
        ExportColumn(name, "integer", f"{_COUNT_MEANINGS[name]}{_NOT_REPORTED}")
        for name in METRIC_NAMES
    ),
)

SOURCE_METRIC_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("source_key", "string", "the watched account, as keyed in the config"),
    ExportColumn("platform", "string", PLATFORM_LIST),
    CHANNEL,
    ExportColumn("organisation", "string", "the organisation the source belongs to"),
    ExportColumn("observed_at", "timestamp", "when these counts were observed, UTC"),
    ExportColumn(
        "followers",
        "integer",
        "followers or subscribers (Facebook: followers, else the page's likes); empty when"
        " the platform does not make them public (Flickr, a channel hiding its subscribers)",
    ),
    ExportColumn(
        "views", "integer", f"total views of the account's content (YouTube, Flickr){_NOT_REPORTED}"
    ),
    ExportColumn(
        "posts",
        "integer",
        "the account's posts, videos or photos as the platform counts them (not the posts"
        f" stored by Omvärld){_NOT_REPORTED}",
    ),
)

COLUMNS = {
    Dataset.POSTS: POST_COLUMNS,
    Dataset.METRICS: METRIC_COLUMNS,
    Dataset.SOURCE_METRICS: SOURCE_METRIC_COLUMNS,
}

FORMAT_NOTES = {
    ExportFormat.CSV: (
        "UTF-8 with a byte-order mark (so that Excel reads å, ä and ö; in Python open it with"
        " encoding='utf-8-sig'), a header row, RFC 4180 quoting and CRLF line ends. An empty cell"
        " means no value. Lists are JSON text. Timestamps are ISO 8601 in UTC. Post text is"
        " untrusted: a text cell that began with =, +, -, @, a tab, a carriage return or an"
        " apostrophe has been given one leading apostrophe, so that spreadsheets show it as text"
        " instead of running it as a formula; remove one leading apostrophe from any text cell"
        " that starts with one to get the original."
    ),
    ExportFormat.JSONL: (
        "UTF-8 JSON Lines: one JSON object per line, keys as the columns. null means no value;"
        " lists are JSON arrays; timestamps are ISO 8601 strings in UTC."
    ),
    ExportFormat.PARQUET: (
        "Apache Parquet: integers as int64, text as UTF-8 strings, lists as list<string>,"
        " timestamps as timestamp[us, UTC]; null means no value."
    ),
}


def export_posts(
    engine: Engine, chosen: PostFilter, format: ExportFormat, out: Path
) -> ExportResult:
    """Write the posts `chosen` selects, each with its latest counts, to `out`."""
    return export_dataset(engine, Dataset.POSTS, chosen, format, out)


def export_metrics(
    engine: Engine, chosen: PostFilter, format: ExportFormat, out: Path
) -> ExportResult:
    """Write every engagement observation of the posts `chosen` selects to `out`."""
    return export_dataset(engine, Dataset.METRICS, chosen, format, out)


def export_dataset(
    engine: Engine,
    dataset: Dataset,
    chosen: PostFilter,
    format: ExportFormat,
    out: Path,
    *,
    now: datetime | None = None,
) -> ExportResult:
    """Write `dataset` to `out` and its data dictionary beside it; both appear only when done.

    Raises:
        ExportError: the destination or the format cannot be used; nothing was written.
        OSError, SQLAlchemyError: writing or reading failed part-way; nothing was left behind.
    """
    columns = COLUMNS[dataset]
    open_writer = writer_for(format)  # before any file exists: a missing extra leaves nothing
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"--out: {out} is a directory; give a file name")
    if not out.parent.is_dir():
        raise ExportError(f"--out: directory {out.parent} does not exist")
    dictionary_file = dictionary_path(out)
    query = QUERIES[dataset](chosen)
    # Rows travel as tuples: the query's columns must be the dictionary's, in its order.
    assert list(query.selected_columns.keys()) == [c.name for c in columns]
    started = now or datetime.now(UTC)
    with _replaced_at_end(out) as data_part, _replaced_at_end(dictionary_file) as dictionary_part:
        with engine.connect() as connection:
            rows = _write_rows(open_writer, data_part, columns, stream_rows(connection, query))
            dialect = connection.dialect.name
        size, digest = hash_file(data_part)
        dictionary = describe_export(
            dataset, format, columns, chosen,
            file=out.name, rows=rows, size=size, sha256=digest, at=started, database=dialect,
        )  # fmt: skip
        with dictionary_part.open("x", encoding="utf-8") as handle:
            json.dump(dictionary, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
    return ExportResult(out, dictionary_file, rows, size, digest)


def dictionary_path(out: Path) -> Path:
    """Where the data dictionary of an export to `out` goes: beside it."""
    return out.with_name(out.name + DICTIONARY_SUFFIX)


# The posts columns exported as they are stored, in order.
_POST_FIELDS = (
    "platform_post_id", "kind", "url", "author", "published_at", "title", "text", "language",
    "tags", "links", "first_seen_at", "deleted_at",
)  # fmt: skip


def posts_query(chosen: PostFilter) -> sa.Select[Any]:
    """Posts with their source and latest counts, in id order, as `chosen` selects them."""
    latest = post_metrics.alias("latest")
    newest_id = (
        sa.select(sa.func.max(post_metrics.c.id))
        .where(post_metrics.c.post_id == posts.c.id)
        .scalar_subquery()
    )
    p = posts.c
    return (
        sa.select(
            p.id,
            sources.c.key.label("source_key"),
            sources.c.platform,
            sources.c.channel,
            sources.c.organisation,
            sources.c.groups,
            *(p[name] for name in _POST_FIELDS),
            *(latest.c[name] for name in METRIC_NAMES),
            p.engagement,
            latest.c.observed_at.label("counted_at"),
        )
        .select_from(posts.join(sources, sources.c.id == p.source_id))
        .outerjoin(latest, latest.c.id == newest_id)
        .where(*where_posts(chosen))
        .order_by(p.id)
    )


def metrics_query(chosen: PostFilter) -> sa.Select[Any]:
    """Every observation of the posts `chosen` selects, post by post, oldest first."""
    m = post_metrics.c
    return (
        sa.select(
            m.post_id,
            sources.c.key.label("source_key"),
            sources.c.platform,
            sources.c.channel,
            m.observed_at,
            *(m[name] for name in METRIC_NAMES),
        )
        .select_from(
            post_metrics.join(posts, posts.c.id == m.post_id).join(
                sources, sources.c.id == posts.c.source_id
            )
        )
        .where(*where_posts(chosen))
        .order_by(m.post_id, m.id)  # the order of ix_post_metrics_post_id_id: no sort needed
    )


def source_metrics_query(chosen: PostFilter) -> sa.Select[Any]:
    """Every account-count observation of the sources `chosen` selects (its platforms, sources,
    organisations and groups; since and until bound `observed_at`), source by source, oldest
    first."""
    m = source_metrics.c
    conditions = where_sources(chosen)
    if chosen.since is not None:
        conditions.append(m.observed_at >= chosen.since)
    if chosen.until is not None:
        conditions.append(m.observed_at < chosen.until)
    return (
        sa.select(
            sources.c.key.label("source_key"),
            sources.c.platform,
            sources.c.channel,
            sources.c.organisation,
            m.observed_at,
            m.followers,
            m.views,
            m.posts,
        )
        .select_from(source_metrics.join(sources, sources.c.id == m.source_id))
        .where(*conditions)
        .order_by(sources.c.key, m.observed_at, m.id)
    )


QUERIES: dict[Dataset, Callable[[PostFilter], sa.Select[Any]]] = {
    Dataset.POSTS: posts_query,
    Dataset.METRICS: metrics_query,
    Dataset.SOURCE_METRICS: source_metrics_query,
}


def stream_rows(connection: Connection, query: sa.Select[Any]) -> Iterator[Sequence[Any]]:
    """The query's rows as tuples in its column order, fetched a batch at a time rather than
    all at once.

    psycopg otherwise loads a whole result into memory, so PostgreSQL gets a server-side
    cursor. SQLite's cursor already steps through the result as it is read.
    """
    if connection.dialect.name == "postgresql":
        connection = connection.execution_options(yield_per=STREAM_BATCH)
    yield from connection.execute(query)


def describe_export(
    dataset: Dataset,
    format: ExportFormat,
    columns: Sequence[ExportColumn],
    chosen: PostFilter,
    *,
    file: str,
    rows: int,
    size: int,
    sha256: str,
    at: datetime,
    database: str,
) -> dict[str, Any]:
    """The data dictionary written beside an export, as JSON-ready data."""
    return {
        "file": file,
        "dataset": dataset.value,
        "format": format.value,
        "format_notes": FORMAT_NOTES[format],
        "rows": rows,
        "bytes": size,
        "sha256": sha256,
        "exported_at": iso_utc(at),
        "omvarld_version": omvarld_version(),
        "database": database,
        "filters": describe_filter(chosen),
        "columns": [{"name": c.name, "type": c.type, "meaning": c.meaning} for c in columns],
        "note": NOTES[dataset],
    }


NOTES = {
    Dataset.POSTS: "Posts erased with `omvarld erase` are never exported. One row per post with"
    " its latest counts",
    Dataset.METRICS: "Posts erased with `omvarld erase` are never exported. One row per"
    " observation: a row is recorded when a post is first counted and whenever a count changes",
    Dataset.SOURCE_METRICS: "One row per observation of an account's own counts: a row is"
    " recorded when they are first read and whenever one of them changes (collectors read them"
    " once a UTC day), so a count holds until the source's next row. since and until filter"
    " observed_at; kinds and min_engagement do not apply.",
}


def describe_filter(chosen: PostFilter) -> dict[str, Any]:
    """The filter as JSON-ready data: every field, unset ones as null or []."""
    described: dict[str, Any] = {}
    for field in fields(chosen):
        value = getattr(chosen, field.name)
        if isinstance(value, datetime):
            value = iso_utc(value)
        elif isinstance(value, tuple):
            value = list(value)
        described[field.name] = value
    return described


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, which every spreadsheet and language reads as UTC."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def omvarld_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("omvarld")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from monitor import __version__

        return __version__


def hash_file(path: Path) -> tuple[int, str]:
    """The file's size and SHA-256, read a chunk at a time."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@contextmanager
def _replaced_at_end(target: Path) -> Iterator[Path]:
    """A hidden temporary path beside `target`, renamed onto it when the block succeeds.

    Any exception, Ctrl-C included, removes the temporary file instead, so a failed or
    interrupted export never leaves a partial file under the name asked for.
    """
    part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        yield part
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    _flush_to_disk(part)
    os.replace(part, target)


def _flush_to_disk(path: Path) -> None:
    # Renaming a file whose data is still in the page cache can leave an empty file under the
    # final name after a power cut; fsync first.
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


# ------------------------------------------------------------------------------------ writers


class RowWriter(Protocol):
    def write(self, row: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


WriterFactory = Callable[[IO[bytes], Sequence[ExportColumn]], RowWriter]


def writer_for(format: ExportFormat) -> WriterFactory:
    """The writer for a format; Parquet's needs the optional pyarrow.

    Raises:
        ExportError: Parquet was asked for and pyarrow is not installed.
    """
    if format is ExportFormat.PARQUET:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ExportError(PARQUET_MISSING) from None
        return ParquetWriter
    return CsvWriter if format is ExportFormat.CSV else JsonlWriter


def _write_rows(
    open_writer: WriterFactory,
    path: Path,
    columns: Sequence[ExportColumn],
    rows: Iterator[Sequence[Any]],
) -> int:
    count = 0
    with path.open("xb") as handle:
        writer = open_writer(handle, columns)
        for row in rows:
            writer.write(row)
            count += 1
        writer.close()
    return count


def neutralise_formula(text: str) -> str:
    """Text a spreadsheet shows as text: see FORMULA_TRIGGERS."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _csv_cell(kind: str) -> Callable[[Any], Any]:
    """How a column's values become CSV cells (None becomes an empty cell by itself)."""
    if kind == "string":
        return lambda value: neutralise_formula(value) if value else value
    if kind == "timestamp":
        return lambda value: None if value is None else iso_utc(value)
    if kind == "list of strings":
        return lambda value: None if value is None else json.dumps(value, ensure_ascii=False)
    return lambda value: value


class CsvWriter:
    """RFC 4180 CSV with formulas neutralised: exports, and `posts search --format csv`."""

    def __init__(
        self,
        handle: IO[bytes],
        columns: Sequence[ExportColumn],
        *,
        byte_order_mark: bool = True,
    ) -> None:
        # The byte-order mark by hand: TextIOWrapper's fast path is for "utf-8", not "utf-8-sig".
        if byte_order_mark:
            handle.write(codecs.BOM_UTF8)
        self._text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        # Converters chosen once per column: a million rows make the per-cell cost count.
        self._cells = [_csv_cell(c.type) for c in columns]
        # The csv module's default dialect is RFC 4180: CRLF, quotes doubled, quoted as needed.
        self._csv = csv.writer(self._text)
        self._csv.writerow([c.name for c in columns])

    def write(self, row: Sequence[Any]) -> None:
        self._csv.writerow([cell(value) for cell, value in zip(self._cells, row, strict=True)])

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # the caller closes the file it opened


class JsonlWriter:
    def __init__(self, handle: IO[bytes], columns: Sequence[ExportColumn]) -> None:
        self._handle = handle
        self._names = [c.name for c in columns]
        self._timestamps = [i for i, c in enumerate(columns) if c.type == "timestamp"]

    def write(self, row: Sequence[Any]) -> None:
        values = list(row)
        for i in self._timestamps:
            if values[i] is not None:
                values[i] = iso_utc(values[i])
        record = dict(zip(self._names, values, strict=True))
        self._handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    def close(self) -> None:
        self._handle.flush()


class ParquetWriter:
    """Buffers a row group of columns, then hands it to pyarrow."""

    def __init__(self, handle: IO[bytes], columns: Sequence[ExportColumn]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {
            "integer": pa.int64(),
            "string": pa.string(),
            "timestamp": pa.timestamp("us", tz="UTC"),
            "list of strings": pa.list_(pa.string()),
        }
        self._pa = pa
        self._schema = pa.schema([pa.field(c.name, types[c.type]) for c in columns])
        self._writer = pq.ParquetWriter(handle, self._schema)
        self._buffer: list[list[Any]] = [[] for _ in columns]
        self._buffered = 0

    def write(self, row: Sequence[Any]) -> None:
        for column, value in zip(self._buffer, row, strict=True):
            column.append(value)
        self._buffered += 1
        if self._buffered >= PARQUET_ROW_GROUP:
            self._flush()

    def close(self) -> None:
        if self._buffered:
            self._flush()
        self._writer.close()

    def _flush(self) -> None:
        arrays = [
            self._pa.array(values, type=field.type)
            for values, field in zip(self._buffer, self._schema, strict=True)
        ]
        table = self._pa.Table.from_arrays(arrays, schema=self._schema)
        self._writer.write_table(table, row_group_size=self._buffered)
        self._buffer = [[] for _ in self._buffer]
        self._buffered = 0
