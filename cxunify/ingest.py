"""Stage 1, ingest: read every file of every source into the engine, keeping every row.

Each file becomes a raw table of text columns. Rows that cannot be parsed, and rows without a
usable id, go to ``cx_rejects`` with the file, line and reason; the rest are mapped onto the
canonical fields in ``cx_mapped`` (all text; standardise gives them types).

Files are read on this machine, by DuckDB: keeping each rejected row's line number and raw
text and detecting encodings needs the file itself, not a store's splits of it. With the
spark engine a source may name files on a store (``s3a://``, ``hdfs://``, ...): each is
copied here through Hadoop's FileSystem, read as a local file, and named by its URI wherever
the user sees it (identity map, rejects, run.json, messages).
"""

from __future__ import annotations

import codecs
import csv
import errno
import glob
import gzip
import hashlib
import io
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import pyarrow as pa

from cxunify.config import Config, SourceConfig
from cxunify.engine import DuckDBEngine
from cxunify.engine.hadoop import HadoopPath, has_glob, jvm_errors, jvm_reason, store_files
from cxunify.errors import InputError, ResourceError
from cxunify.fields import (
    FIELD_BY_NAME,
    FIELD_NAMES,
    SEVERAL_COLUMN_FIELDS,
    fields_for_headers,
    misspelt_field,
)
from cxunify.printable import printable
from cxunify.record_ids import as_text_sql, clean_id_sql, number_text_sql
from cxunify.sql import ident, parquet, read_file, table

EXTENSION_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
    ".ods": "excel",
}
# Formats read as they are, not as text in some encoding.
BINARY_FORMATS = ("parquet", "excel")

MAPPED = table("mapped")
REJECTS = table("rejects")

# Meta columns of cx_mapped, before the canonical fields.
MAPPED_META = ("source", "source_kind", "file", "row_number", "source_record_id")
# After the canonical fields, for each field a source may map several columns to: the values
# of those columns after the first one written (NULL when there are none). A record matches
# by the first of them all that is of use (standardize picks it); profiles list them all.
OTHERS: dict[str, str] = {field: f"{field}_others" for field in SEVERAL_COLUMN_FIELDS}
# What separates the values of a cell holding several (`a@x.com; b@y.com`, `a@x.com,b@y.com`)
# in a field's columns after its first.
_SEVERAL_IN_A_CELL = "'\\s*[;,]\\s*'"


@dataclass
class InputFile:
    """One file read, with what run.json reports about it."""

    source: str
    kind: str
    path: str
    format: str
    encoding: str
    bytes: int
    sha256: str
    rows: int = 0  # data rows found in the file (parsed + unparseable)
    rejected: int = 0  # of those, rows that went to rejects
    # A CSV's delimiter, quote, escape and header: an update reads a carried-over rejected
    # line with them to find the record it names (an erasure must remove it too).
    dialect: dict[str, Any] | None = None


@dataclass
class Ingested:
    files: list[InputFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the user should know of

    @property
    def rows_in(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rejected for f in self.files)


@dataclass(frozen=True)
class Export:
    """One file of a source. `location` names it to the user: in the identity map, rejects,
    run.json and messages. It is read from `path` on this machine, or, on a store, from a
    copy of `remote` (see `fetch`)."""

    location: str
    path: Path | None = None
    remote: HadoopPath | None = None

    def fetch(self, folder: Path) -> Path:
        """The file to read: `path`, or `remote` copied into the empty `folder`."""
        if self.remote is None:
            assert self.path is not None
            return self.path
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / self.remote.name
        try:
            self.remote.download(copy)
        except jvm_errors() as exc:
            raise InputError(f"{self.location}: cannot copy it here: {jvm_reason(exc)}") from None
        return copy


def resolve_files(
    source: SourceConfig,
    base_dir: Path,
    key: str,
    spark_session: Any = None,
    engine_name: str = "duckdb",
) -> list[Export]:
    """The files a source's path or glob names, in a stable order.

    Local or mounted paths and ``file://`` URIs are files on this machine. Any other URI is
    on a store and is listed through Hadoop's FileSystem in `spark_session`'s JVM (Hadoop's
    glob syntax). Without a session it is refused, saying what to do: use the spark engine,
    or, when `engine_name` is spark already (plan, train and update run on DuckDB), copy or
    mount the files.
    """
    location = urlparse(source.path)
    if location.scheme == "file":
        pattern = Path(unquote(location.path))
    elif len(location.scheme) > 1:  # one letter is a Windows drive
        return _store_files(source, key, spark_session, engine_name)
    else:
        pattern = Path(source.path).expanduser()
    if not pattern.is_absolute():
        pattern = base_dir / pattern
    # A file whose name holds a glob's characters ('crm [1].csv') is that file.
    if glob.has_magic(str(pattern)) and not pattern.is_file():
        matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
        files = [p for p in matches if p.is_file()]
        if not files:
            raise InputError(f"{key}.path: no file matches '{source.path}'")
        return [Export(str(p), path=p) for p in files]
    if pattern.is_dir():
        raise InputError(f"{key}.path: {pattern} is a folder; {folder_hint(pattern, source.path)}")
    if not pattern.is_file():
        raise InputError(f"{key}.path: file not found: {pattern}")
    return [Export(str(pattern), path=pattern)]


def local_files(config: Config) -> list[Path]:
    """The files on this machine that `config`'s sources name, for a command writing a file
    to refuse to write over one of them. A source whose files cannot be listed (none there,
    or on a store) adds none: reading it says why."""
    files = []
    for i, source in enumerate(config.sources):
        try:
            exports = resolve_files(source, config.base_dir, f"sources[{i}]")
        except InputError:
            continue
        files += [export.path for export in exports if export.path is not None]
    return files


def folder_hint(folder: Path, given: str) -> str:
    """What to give instead of `folder` (written `given`): its files, by a glob of the
    extension they have (.csv when they have none or several)."""
    known = {extension(p) for p in folder.iterdir() if p.is_file() and extension_format(p)}
    suffix = known.pop() if len(known) == 1 else ".csv"
    return f"name its files with a glob (e.g. {given.rstrip('/')}/*{suffix})"


def _store_files(
    source: SourceConfig, key: str, spark_session: Any, engine_name: str
) -> list[Export]:
    where = f"{key}.path: {source.path}"
    if spark_session is None:
        if engine_name == "spark":
            raise InputError(
                f"{where}: exports on a store are read by unify only; this command runs on "
                "DuckDB: copy them to this machine or mount the store"
            )
        raise InputError(
            f"{where}: exports on a store need the spark engine (--engine spark); with "
            "DuckDB, copy them to this machine or mount the store"
        )
    try:
        files = store_files(source.path, spark_session)
    except jvm_errors() as exc:
        raise InputError(f"{where}: cannot list it: {jvm_reason(exc)}") from None
    if not files:
        if has_glob(source.path):
            raise InputError(f"{key}.path: no file matches '{source.path}'")
        raise InputError(f"{key}.path: file not found: {source.path}")
    return [Export(file.uri, remote=file) for file in files]


def file_format(path: Path | str, declared: str, key: str | None = None) -> str:
    """The format `declared`, or with ``auto`` the one `path`'s extension names. When the
    extension names none, the error names `key`, the source's ``format`` key to set (with
    its config), else the file."""
    if declared != "auto":
        return declared
    fmt = extension_format(path)
    if fmt is None:
        what = (
            f"{key}: cannot tell the format of {path}" if key else f"{path}: cannot tell the format"
        )
        raise InputError(
            f"{what} from its extension ({extension(path) or 'none'}); set format: csv, tsv, "
            "ndjson, json, parquet or excel"
        )
    return fmt


def extension(path: Path | str) -> str:
    """A file's extension, past a compression suffix (.csv of crm.csv.gz); '' if none."""
    suffixes = [s.lower() for s in PurePath(path).suffixes if s.lower() not in {".gz", ".zst"}]
    return suffixes[-1] if suffixes else ""


def extension_format(path: Path | str) -> str | None:
    """The format a file's extension names, else None."""
    return EXTENSION_FORMATS.get(extension(path))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def readable_text(
    path: Path, declared: str, work_dir: Path, shown: Path | str | None = None
) -> tuple[Path, str]:
    """A UTF-8 copy of a text file when it is not UTF-8 already, and the encoding used.

    ``auto`` accepts UTF-8 (with or without BOM) and UTF-16 (with a BOM, or without one when
    every other byte of its start is NUL), and falls back to cp1252, then latin-1, which cover
    the exports spreadsheets on Windows write. Messages name the file `shown` (default: `path`).
    """
    shown = path if shown is None else shown
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic.startswith(b"\x1f\x8b"):  # gzip: read through a plain copy
        path = _gunzip(path, work_dir, shown)
    elif magic == b"\x28\xb5\x2f\xfd":
        raise InputError(f"{shown}: zstd-compressed; decompress it first (gzip is read as is)")
    if declared.lower() != "auto":
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            raise InputError(f"{shown}: unknown encoding '{declared}'") from None
        if codec == "utf-8":
            bad_line = _first_non_utf8_line(path)
            if bad_line is not None:
                raise InputError(
                    f"{shown}:{bad_line}: not valid UTF-8; set the source's encoding "
                    "(e.g. encoding: latin-1) or encoding: auto"
                )
            return path, "utf-8"
        hint = "set the source's encoding (e.g. encoding: latin-1) or encoding: auto"
        return _transcoded(path, codec, work_dir, shown, declared, hint), codec
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        hint = "it starts with a UTF-16 byte order mark; if it is in another encoding, set "
        hint += "the source's encoding"
        return _transcoded(path, "utf-16", work_dir, shown, "UTF-16", hint), "utf-16"
    utf16 = _utf16_without_bom(path)
    if utf16 is not None:
        hint = "it reads as UTF-16 (every other byte of its start is 0); if it is in another "
        hint += "encoding, set the source's encoding"
        return _transcoded(path, utf16, work_dir, shown, "UTF-16", hint), utf16
    if _first_non_utf8_line(path) is None:
        return path, "utf-8"
    for codec in ("cp1252", "latin-1"):
        try:
            return _transcode(path, codec, work_dir), codec
        except _Undecodable:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _transcoded(
    path: Path, codec: str, work_dir: Path, shown: Path | str, named: str, hint: str
) -> Path:
    """`path` in UTF-8 (see _transcode); a byte `codec` cannot read is the one-line error
    naming its line, the encoding as `named` and what to do (`hint`)."""
    try:
        return _transcode(path, codec, work_dir)
    except _Undecodable as exc:
        raise InputError(exc.message(shown, named, hint)) from None


def _utf16_without_bom(path: Path) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` for UTF-16 text written without a byte order mark (as
    some exporters do), else None. Such text is valid UTF-8 too, each ASCII character a byte
    and a NUL, so it would be read as names and values full of NULs. Told by its start: most
    of one side of each byte pair NUL (the high byte of ASCII), hardly any of the other."""
    with path.open("rb") as handle:
        start = handle.read(4096)
    start = start[: len(start) // 2 * 2]
    pairs = len(start) // 2
    if pairs < 2:
        return None
    even, odd = start[0::2].count(0), start[1::2].count(0)
    for codec, high, low in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if high * 2 > pairs and low * 10 < high:
            try:
                codecs.getincrementaldecoder(codec)().decode(start)
            except UnicodeDecodeError:
                return None
            return codec
    return None


class _Undecodable(Exception):
    """A file its codec cannot decode: at `line`, or, `cut_short`, in its last bytes."""

    def __init__(self, line: int, cut_short: bool) -> None:
        super().__init__(line, cut_short)
        self.line = line
        self.cut_short = cut_short

    def message(self, shown: Path | str, encoding: str, hint: str) -> str:
        """What is wrong, and, unless the file is cut short, `hint` on what to do."""
        if self.cut_short:
            return f"{shown}:{self.line}: ends inside a {encoding} character; is it cut short?"
        return f"{shown}:{self.line}: not valid {encoding}; {hint}"


def _first_non_utf8_line(path: Path) -> int | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + chunk[: exc.start].count(b"\n")
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return line
    return None


def _copy_of(path: Path, work_dir: Path, name: str) -> Path:
    """Where a working copy of `path` goes in `work_dir` (named by the path, so the files of
    a glob do not collide)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return work_dir / f"{hashlib.sha1(str(path).encode()).hexdigest()[:12]}-{name}"


# Unpacking stops while this much of its disk is still free: a small .gz may hold gigabytes
# (a gzip bomb, or a very repetitive export), and a full disk stops everything else on it.
KEEP_FREE = 1 << 30
_FREE_CHECKED_EVERY = 64 << 20


def _gunzip(path: Path, work_dir: Path, shown: Path | str) -> Path:
    target = _copy_of(path, work_dir, "gunzip")
    written = 0
    with gzip.open(path, "rb") as src, target.open("wb") as dst:
        while True:
            try:
                chunk = src.read(1 << 20)
            except (OSError, EOFError) as exc:
                raise InputError(f"{shown}: not a readable gzip file ({exc})") from None
            if not chunk:
                return target
            try:
                dst.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                raise _no_room(shown, target, written, "no space left on its disk") from None
            before, written = written, written + len(chunk)
            if written // _FREE_CHECKED_EVERY > before // _FREE_CHECKED_EVERY:
                free = shutil.disk_usage(target.parent).free
                if free < KEEP_FREE:
                    raise _no_room(shown, target, written, f"{free:,} bytes left on its disk")


def _no_room(shown: Path | str, target: Path, written: int, why: str) -> ResourceError:
    return ResourceError(
        f"{shown}: unpacked to {written:,} bytes in {target.parent} and stopped, {why} (a run "
        f"stops unpacking while {KEEP_FREE:,} bytes are free); make room there, or unpack "
        "the file where there is room and give that"
    )


def _transcode(path: Path, codec: str, work_dir: Path) -> Path:
    """A UTF-8 copy of `path`, read as `codec`; `_Undecodable` names the first line it
    cannot read."""
    target = _copy_of(path, work_dir, path.name)
    decoder = codecs.getincrementaldecoder(codec)()
    line = 1
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            state = decoder.getstate()
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                decoder.setstate(state)
                raise _Undecodable(line + _lines_before_error(decoder, chunk), False) from None
            line += text.count("\n")
            dst.write(text)
        try:
            dst.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            raise _Undecodable(line, True) from None
    return target


def _lines_before_error(decoder: codecs.IncrementalDecoder, chunk: bytes) -> int:
    """The line breaks `decoder` reads in `chunk` before the byte it cannot decode (fed one
    byte at a time: only on the way to an error, so speed does not matter)."""
    breaks = 0
    for at in range(len(chunk)):
        try:
            breaks += decoder.decode(chunk[at : at + 1]).count("\n")
        except UnicodeDecodeError:
            break
    return breaks


@dataclass
class RawFile:
    """A file loaded as a table of text columns, plus `row`: the 1-based data row, and the
    names a CSV header repeats in the same case (`repeated`: the copies after the first are
    read as ``name_1``, ...)."""

    table: str
    columns: list[str]
    rows: int
    rejected: int
    row: str = "cx_row"
    repeated: tuple[str, ...] = ()  # column names the header holds twice (CSV)
    dialect: CsvDialect | None = None  # how a CSV was read
    # A JSON document that is one object holding the records in an array: its key, and how
    # many objects the array holds (see `wrapped_records`).
    wrapped: tuple[str, int] | None = None
    # A workbook read without a `sheet`: the sheet read, and the later ones holding rows too.
    other_sheets: tuple[str, tuple[str, ...]] | None = None

    def wrapped_error(self, path: Path | str) -> InputError:
        """The error for a file whose records are `wrapped` in an object, naming its key."""
        assert self.wrapped is not None
        key, count = self.wrapped
        return InputError(
            f"{path}: one JSON object holding the records under key '{key}' (an array of "
            f"{count} objects); a JSON export holds the array of records itself (or one "
            f"object per line): export that, or extract it (e.g. jq '.{key}')"
        )


def row_column(columns: list[str]) -> str:
    """A name for the row-number column that none of the file's columns has (names compare
    without case, as DuckDB's do): ``cx_row``, unless the file has a column of that name."""
    taken = {c.lower() for c in columns}
    return next(
        name
        for name in ("cx_row", *(f"cx_row_{i}" for i in range(1, len(taken) + 2)))
        if name not in taken
    )


def load_raw(
    engine: DuckDBEngine,
    path: Path | str,
    readable: Path,
    fmt: str,
    delimiter: str | None,
    raw_table: str,
    source_name: str,
    limit: int | None = None,
    sheet: str | None = None,
    *,
    work_dir: Path,
    quote: str = '"',
    escape: str | None = None,
    mapped: tuple[str, ...] = (),
) -> RawFile:
    """Load the file `readable` into ``raw_table``; unparseable rows go to cx_rejects, their
    file named `path` (the file as the user names it: `readable` may be a copy). `sheet` is
    the Excel sheet to read (else the first); `quote` and `escape` are a CSV's (the escape
    defaults to the quote: a quote inside a field doubled). Working copies of a CSV go in
    `work_dir` and are removed before returning. `mapped` are the columns read into fields:
    a JSON record holding more than one value in one of them is rejected."""
    if fmt in ("csv", "tsv"):
        dialect = csv_header(
            readable, delimiter or ("\t" if fmt == "tsv" else None), quote, escape, shown=path
        )
        return _load_csv(
            engine, path, readable, fmt, dialect, raw_table, source_name, limit, work_dir
        )
    if fmt == "json" and _one_object_per_line(readable):
        fmt = "ndjson"  # a .json export written a line per record: its lines can be rejected
    if fmt in ("ndjson", "json"):
        return _load_json(engine, path, readable, fmt, raw_table, source_name, limit, mapped)
    if fmt == "parquet":
        return _load_parquet(engine, path, readable, raw_table, limit)
    if fmt == "excel":
        return _load_excel(engine, path, readable, raw_table, limit, sheet)
    raise InputError(f"{path}: unsupported format '{fmt}'")


def _limit(limit: int | None) -> str:
    return f" LIMIT {int(limit)}" if limit is not None else ""


def _load_csv(
    engine: DuckDBEngine,
    path: Path | str,
    readable: Path,
    fmt: str,
    dialect: CsvDialect,
    raw_table: str,
    source_name: str,
    limit: int | None,
    work_dir: Path,
) -> RawFile:
    """A CSV (or TSV) read with a fixed dialect: the delimiter given, or the one that splits
    the header into most columns; fields quoted with the source's quote, a quote inside
    escaped (by default doubled, RFC 4180). A row that breaks it (a stray quote, too many or
    too few fields, a line past DuckDB's maximum size) goes to rejects with its line; the
    other rows are read as the file means them. (DuckDB's own detection would pick whatever
    dialect also fits the broken row: a single `"Di" Ko` made it drop quoting, and every
    quoted comma of the file then split its row.)

    With a `limit` (a sample), the first `limit` lines are read the same way, broken rows
    and stray quotes included, so a sample holds the rows a full read would keep.

    The copies a read needs (the sample, the file with one line ending, the parts around
    stray quotes) go in a folder of `work_dir`: they can be as large as the file."""
    if not dialect.columns:
        raise InputError(f"{path}: the first line holds no column names")
    scratch = _copy_of(readable, work_dir, "csv")
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        source = readable
        if limit is not None:
            source = _first_lines(readable, dialect.skip + 1 + limit, scratch / "sample.csv")
        try:
            _read_csv(engine, source, dialect)
        except duckdb.Error as exc:
            if "invalid state" not in str(exc):
                raise InputError(
                    f"{path}: cannot read as {fmt.upper()}: {_reason(exc, source, path)}"
                ) from None
            # Lines ending in CR LF and in LF alike (files joined from two systems), or a
            # stray CR: DuckDB's strict parser takes one kind per file, so the lines are
            # given one ending.
            source = _one_line_ending(source, scratch / "lines.csv")
            try:
                _read_csv(engine, source, dialect)
            except duckdb.Error as again:
                raise InputError(
                    f"{path}: cannot read as {fmt.upper()}: {_reason(again, source, path)}"
                ) from None
        rejected = _read_past_stray_quotes(engine, path, source, dialect, scratch, source_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    row = row_column(list(dialect.columns))
    parsed = table("csv_parsed")
    # rowid follows file order because insertion order is preserved.
    engine.execute(
        f"CREATE OR REPLACE TABLE {raw_table} AS SELECT *, rowid + 1 AS {ident(row)} FROM {parsed}"
    )
    engine.drop(parsed)
    rows = engine.count(raw_table)
    columns = list(dialect.columns)
    return RawFile(raw_table, columns, rows + rejected, rejected, row, dialect.repeated, dialect)


def _first_lines(file: Path, count: int, target: Path) -> Path:
    """`file` itself when it has at most `count` lines, else a copy of its first `count`
    lines in `target`."""
    with file.open("rb") as src:
        head = src.read(1 << 16)
        newline = b"\n" if b"\n" in head or b"\r" not in head else b"\r"
        src.seek(0)
        size = 0  # bytes of the first `count` lines
        for chunk in iter(lambda: src.read(1 << 20), b""):
            ends = chunk.count(newline)
            if ends >= count:
                cut = -1
                for _ in range(count):
                    cut = chunk.index(newline, cut + 1)
                size += cut + 1
                break
            size += len(chunk)
            count -= ends
        if size >= file.stat().st_size:
            return file
        src.seek(0)
        with target.open("wb") as dst:
            while size > 0:
                chunk = src.read(min(size, 1 << 20))
                dst.write(chunk)
                size -= len(chunk)
    return target


# The dialect `_load_csv` describes, as read_csv options (parameters: CsvDialect.params).
CSV_OPTIONS = (
    "all_varchar = true, header = true, auto_detect = false, strict_mode = true, "
    "quote = $quote, escape = $escape, delim = $delim, columns = $columns, skip = $skip"
)


def _read_csv(engine: DuckDBEngine, file: Path, dialect: CsvDialect) -> None:
    """``cx_csv_parsed``: the rows of `file` as text; a row that breaks the dialect goes to
    DuckDB's reject tables."""
    engine.execute("DROP TABLE IF EXISTS reject_errors")
    engine.execute("DROP TABLE IF EXISTS reject_scans")
    options = CSV_OPTIONS + ", store_rejects = true"
    engine.execute(
        f"CREATE OR REPLACE TABLE {table('csv_parsed')} AS "
        f"SELECT * FROM {read_file('read_csv', '$path', options)}",
        {"path": str(file), **dialect.params()},
    )


# What a delimiter can be when none is given: the one that splits the header most wins.
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class CsvDialect:
    """How `_load_csv` reads a file: its delimiter, quote and escape, its columns (all text),
    how many blank lines come before the header, and the names the header holds more than
    once in the same case (`repeated`)."""

    delim: str
    columns: dict[str, str]
    skip: int = 0
    quote: str = '"'
    escape: str = '"'
    repeated: tuple[str, ...] = ()

    def params(self) -> dict[str, object]:
        """The parameters ``CSV_OPTIONS`` names."""
        return {
            "delim": self.delim,
            "columns": self.columns,
            "skip": self.skip,
            "quote": self.quote,
            "escape": self.escape,
        }

    @classmethod
    def from_described(cls, described: dict[str, Any]) -> CsvDialect:
        """The dialect `described` describes."""
        return cls(
            described["delimiter"],
            dict.fromkeys(described["header"], "VARCHAR"),
            quote=described["quote"],
            escape=described["escape"],
        )

    def described(self) -> dict[str, Any]:
        """What run.json's inputs keep of it (`header`: the column names as read)."""
        return {
            "delimiter": self.delim,
            "quote": self.quote,
            "escape": self.escape,
            "header": list(self.columns),
        }

    def fields(self, line: str) -> list[str] | None:
        """The fields of one line read with this dialect, or None when it cannot be read."""
        reader = csv.reader(
            [line],
            delimiter=self.delim,
            quotechar=self.quote,
            doublequote=self.escape == self.quote,
            escapechar=None if self.escape == self.quote else self.escape,
        )
        try:
            return next(reader, [])
        except csv.Error:
            return None

    def leaves_quote_open(self, line: str) -> bool:
        """Whether a quote opened on `line` is still open at its end (an escaped quote, or
        with the default escape a doubled one, does not count)."""
        if self.escape == self.quote:
            return line.count(self.quote) % 2 == 1
        quoted = escaped = False
        for char in line:
            if escaped:
                escaped = False
            elif quoted and char == self.escape:
                escaped = True
            elif char == self.quote:
                quoted = not quoted
        return quoted


def csv_header(
    readable: Path,
    delim: str | None,
    quote: str = '"',
    escape: str | None = None,
    shown: Path | str | None = None,
) -> CsvDialect:
    """The delimiter, and the columns named by the first record after any blank lines and an
    Excel ``sep=`` line (names trimmed; a blank name becomes ``column<i>``, and a name
    repeated in any case gets ``_1``, ``_2``: DuckDB's names, which configs written for
    earlier versions use). The ``sep=`` line names the delimiter unless `delim` is given.

    A header line that opens a quote and does not close it is an error naming the file
    `shown` (default: `readable`) and the line: read on, it would make the whole file one
    column name."""
    escape = quote if escape is None else escape
    with readable.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        head = handle.read(1 << 16)
    blank = head[: len(head) - len(head.lstrip(" \t\r\n"))]
    blank = blank[: max(blank.rfind("\n"), blank.rfind("\r")) + 1]  # whole lines only
    skip = max(blank.count("\n"), blank.count("\r"))
    head = head[len(blank) :]
    header_line = re.split("[\r\n]", head, maxsplit=1)[0]
    excel_sep = re.fullmatch("sep=(.)", header_line, re.IGNORECASE)
    if excel_sep:
        # Excel's line naming the delimiter, which exporters write above the header for
        # Excel to open the file in columns (sep=; in much of Europe): not the header.
        delim = delim or excel_sep.group(1)
        head = head[len(header_line) :]
        head = head[2:] if head.startswith("\r\n") else head[1:]
        skip += 1
        header_line = re.split("[\r\n]", head, maxsplit=1)[0]

    def first_records(d: str, count: int = 1) -> list[list[str]]:
        reader = csv.reader(
            io.StringIO(head, newline=""),
            delimiter=d,
            quotechar=quote,
            doublequote=escape == quote,
            escapechar=None if escape == quote else escape,
        )
        records: list[list[str]] = []
        try:
            for record in reader:
                if record:  # (a blank line is no record)
                    records.append(record)
                if len(records) == count:
                    break
        except csv.Error:
            pass
        return records

    def fit(d: str) -> tuple[bool, bool, int]:
        """How well `d` splits the file: the header into several names, and the first rows
        into as many fields as the header (a header alone decides by its names: `Marketing
        consent (email; sms; phone; post)` over comma rows made it `;`), then more names."""
        header, *rows = first_records(d, 21) or [[]]
        n = len(header)
        widths = {n, n - 1} if header and not header[-1].strip() else {n}
        fitting = sum(len(row) in widths for row in rows)
        return n > 1, fitting * 5 >= len(rows) * 4, n

    if delim is None:
        delim = max((d for d in _DELIMITERS if d != quote), key=fit)
    dialect = CsvDialect(delim, {}, skip, quote, escape)
    if dialect.leaves_quote_open(header_line):
        raise InputError(
            f"{readable if shown is None else shown}:{skip + 1}: the header line opens a "
            f"quote ({quote}) and does not close it; close it or remove it"
        )
    header, *rows = first_records(delim, 2) or [[]]
    if len(header) > 1 and not header[-1].strip() and rows and len(rows[0]) == len(header) - 1:
        # A header ending in a delimiter its rows lack (`id,name,email,` over `1,Ann,a@x.com`),
        # as many exporters write it: that empty name is no column. (Told by the first row:
        # a row that does carry the empty field is then one field too many, and rejected.)
        header = header[:-1]
    names: list[str] = []
    seen: dict[str, int] = {}
    as_written: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = raw.strip() or f"column{i}"
        as_written[name] = as_written.get(name, 0) + 1
        while name.lower() in seen:
            seen[name.lower()] += 1
            name = f"{name}_{seen[name.lower()] - 1}"
        seen[name.lower()] = 1
        names.append(name)
    repeated = tuple(name for name, n in as_written.items() if n > 1)
    return replace(dialect, columns=dict.fromkeys(names, "VARCHAR"), repeated=repeated)


def _one_line_ending(source: Path, target: Path) -> Path:
    """Copy `source` with every CR LF as LF, and a lone CR too: one stray CR in a file of LF
    lines (a row ending as an old Mac's, a CR typed into a field) made the whole file
    unreadable. A row a CR splits is rejected in its parts, with their lines."""
    with source.open("rb") as src, target.open("wb") as dst:
        carry = b""
        for chunk in iter(lambda: src.read(1 << 20), b""):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            lines = chunk[: len(chunk) - len(carry)].replace(b"\r\n", b"\n")
            dst.write(lines.replace(b"\r", b"\n"))
        dst.write(carry.replace(b"\r", b"\n"))
    return target


# A file with more stray quotes than this is read as DuckDB parses it (see below).
MAX_STRAY_QUOTES = 20


def _read_past_stray_quotes(
    engine: DuckDBEngine,
    path: Path | str,
    file: Path,
    dialect: CsvDialect,
    scratch: Path,
    source_name: str,
) -> int:
    """Harvest the rejects of the read `_read_csv` just made of `file`; return how many.

    A quote that opens a field and is never closed on its line makes the rest of the file,
    or everything up to the next stray quote, one field: one reject that swallowed every row
    after it. When a reject spans lines and its first line leaves a quote open, that first
    line alone is rejected, and the rows before and after it are read again (the
    part after it with the header in front), until no such reject is left."""
    parsed, kept = table("csv_parsed"), table("csv_kept")
    engine.execute(f"CREATE OR REPLACE TABLE {kept} AS SELECT * FROM {parsed} LIMIT 0")
    lines_cut = rejected = 0  # lines of the file cut out of the part read (after the header)
    for part in range(MAX_STRAY_QUOTES + 1):
        start = _stray_quote(engine, file, dialect) if part < MAX_STRAY_QUOTES else None
        if start is None:
            engine.execute(f"INSERT INTO {kept} SELECT * FROM {parsed}")
            rejected += _harvest_csv_rejects(engine, path, source_name, file, lines_cut)
            break
        data = file.read_bytes()
        newline = b"\n" if b"\n" in data else b"\r"
        header_end = 0
        for _ in range(dialect.skip + 1):  # the blank lines and the header
            header_end = data.find(newline, header_end) + 1
        line_end = data.find(newline, start)
        line_end = len(data) if line_end < 0 else line_end + 1
        before = scratch / f"before-{part}.csv"
        before.write_bytes(data[:start])
        _read_csv(engine, before, dialect)
        engine.execute(f"INSERT INTO {kept} SELECT * FROM {parsed}")
        rejects = _harvest_csv_rejects(engine, path, source_name, before, lines_cut)
        stray = data[start:line_end].decode("utf-8", errors="replace").rstrip("\r\n")
        engine.execute(
            f"INSERT INTO {REJECTS} VALUES ($source, $file, $line, $reason, $raw)",
            {
                "source": source_name,
                "file": str(path),
                "line": lines_cut + data[:start].count(newline) + 1,
                "reason": "unparseable CSV row: a quote that is not closed on its line",
                "raw": stray,
            },
        )
        rejected += rejects + 1
        lines_cut += data[header_end:line_end].count(newline)
        after = scratch / f"after-{part}.csv"
        after.write_bytes(data[:header_end] + data[line_end:])
        _read_csv(engine, after, dialect)
        file = after
    engine.execute(f"CREATE OR REPLACE TABLE {parsed} AS SELECT * FROM {kept}")
    engine.drop(kept)
    return rejected


def _stray_quote(engine: DuckDBEngine, file: Path, dialect: CsvDialect) -> int | None:
    """The byte offset in `file` of the first rejected row that spans lines and whose first
    line leaves a quote open (a quote opened and not closed), if any."""
    found = engine.rows(
        "SELECT line_byte_position - 1 FROM reject_errors "
        "WHERE (contains(csv_line, chr(10)) OR contains(csv_line, chr(13))) "
        "AND error_type IN ('UNQUOTED VALUE', 'UNTERMINATED QUOTE') ORDER BY 1"
    )
    with file.open("rb") as handle:
        for (start,) in found:
            handle.seek(int(start))
            if handle.read(1) == b"\n":  # the LF of a CR LF: DuckDB starts the row there
                start += 1
            handle.seek(int(start))
            line = _line_from(handle).decode("utf-8", errors="replace")
            if dialect.leaves_quote_open(line):
                return int(start)
    return None


def _line_from(handle: io.BufferedReader) -> bytes:
    """The bytes from `handle`'s position to the end of their line, ended by LF or by CR
    (readline stops at LF only: a file of CR lines, from an old Mac, is one line to it)."""
    parts = []
    for chunk in iter(lambda: handle.read(1 << 16), b""):
        end = re.search(rb"[\r\n]", chunk)
        if end:
            parts.append(chunk[: end.start()])
            break
        parts.append(chunk)
    return b"".join(parts)


def _harvest_csv_rejects(
    engine: DuckDBEngine, path: Path | str, source_name: str, file: Path, lines_cut: int
) -> int:
    """Move DuckDB's rejects of the last read, of `file`, into ``cx_rejects``; return how
    many. Each is named by its first line in the file: DuckDB counts records, and a quoted
    field spanning lines is one record (`lines_cut`: the lines of the file, after its header,
    cut out of `file`)."""
    exists = engine.scalar(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reject_errors'"
    )
    if not exists:
        return 0
    starts = engine.rows(
        "SELECT line, min(line_byte_position) - 1 AS start FROM reject_errors GROUP BY line "
        "HAVING start IS NOT NULL ORDER BY start"
    )
    lines = table("reject_lines")
    engine.register_arrow(
        lines,
        pa.table(
            {
                "line": pa.array([int(line) for line, _ in starts], pa.int64()),
                "file_line": pa.array(
                    [n + lines_cut for n in _lines_at(file, [int(at) for _, at in starts])],
                    pa.int64(),
                ),
            }
        ),
    )
    # One line can carry several errors; it is still one rejected row. In a file of CR LF
    # lines DuckDB's text of a row starts with the LF ending the line before: not the row's.
    engine.execute(
        f"""
        INSERT INTO {REJECTS}
        SELECT $source, $file, coalesce(any_value(l.file_line), e.line::BIGINT + $cut),
               'unparseable CSV row: ' || string_agg(DISTINCT lower(error_type), ', '),
               any_value(CASE WHEN starts_with(csv_line, chr(10)) THEN substr(csv_line, 2)
                              ELSE csv_line END)
        FROM reject_errors e LEFT JOIN {lines} l ON l.line = e.line
        GROUP BY e.line
        ORDER BY e.line
        """,
        {"source": source_name, "file": str(path), "cut": lines_cut},
    )
    engine.drop(lines)
    return int(engine.scalar("SELECT count(DISTINCT line) FROM reject_errors"))


def _lines_at(file: Path, offsets: list[int]) -> list[int]:
    """The line of `file` (1-based; lines end in LF, or in CR in a file without LF) at each of
    the ascending byte `offsets`, read once. An offset on an LF, where DuckDB starts a row of
    a file of CR LF lines, is the line after it."""
    with file.open("rb") as handle:
        head = handle.read(1 << 16)
        newline = b"\n" if b"\n" in head or b"\r" not in head else b"\r"
        handle.seek(0)
        found, line, at = [], 1, 0
        for offset in offsets:
            while at < offset:
                chunk = handle.read(min(offset - at, 1 << 20))
                if not chunk:
                    break
                line += chunk.count(newline)
                at += len(chunk)
            if handle.read(1) == b"\n":
                line += newline == b"\n"
                at += 1
            else:
                handle.seek(at)
            found.append(line)
    return found


def _load_json(
    engine: DuckDBEngine,
    path: Path | str,
    readable: Path,
    fmt: str,
    raw_table: str,
    source_name: str,
    limit: int | None,
    mapped: tuple[str, ...] = (),
) -> RawFile:
    """A JSON or NDJSON file's objects, a column per key, each value as text: a nested one as
    its JSON, except in the `mapped` keys, which hold one value: an array of one value is
    that value ([] is none), and a record holding more (an array of several, an object) is
    rejected, naming the keys."""
    lines = table("json_lines")
    try:
        if fmt == "ndjson":
            # One text column per physical line keeps line numbers and the raw text of bad lines.
            engine.execute(
                f"CREATE OR REPLACE TABLE {lines} AS SELECT j FROM "
                + read_file(
                    "read_csv",
                    "$path",
                    "columns = {'j': 'VARCHAR'}, header = false, delim = chr(30), quote = ''",
                    "escape = '', auto_detect = false, max_line_size = $max_line",
                )
                + _limit(limit),
                {"path": str(readable), "max_line": NDJSON_MAX_LINE},
            )
            engine.execute(
                f"CREATE OR REPLACE TABLE {lines} AS SELECT rowid + 1 AS line, j FROM {lines}"
            )
        else:
            engine.execute(
                f"CREATE OR REPLACE TABLE {lines} AS SELECT NULL::BIGINT AS line, json::VARCHAR "
                "AS j FROM "
                + read_file("read_json_objects", "$path", "format = 'auto'")
                + _limit(limit),
                {"path": str(readable)},
            )
            engine.execute(
                f"CREATE OR REPLACE TABLE {lines} AS SELECT rowid + 1 AS line, j FROM {lines}"
            )
    except duckdb.Error as exc:
        too_long = _LINE_TOO_LONG.search(str(exc))
        if too_long is not None:
            raise InputError(
                f"{path}:{too_long['line']}: a line of {int(too_long['size']):,} bytes, over "
                f"the {NDJSON_MAX_LINE >> 20} MB a record's line may hold; is the file one "
                "object per line?"
            ) from None
        raise InputError(f"{path}: {_json_reason(exc, readable, path)}") from None
    engine.execute(f"DELETE FROM {lines} WHERE j IS NULL OR trim(j) = ''")
    engine.execute(
        f"CREATE OR REPLACE TABLE {lines} AS SELECT line, j, coalesce(json_valid(j), false) "
        f"AS valid FROM {lines}"
    )
    # A cast of invalid JSON raises, so only valid lines are cast to see if they are objects.
    engine.execute(
        f"CREATE OR REPLACE TABLE {lines} AS SELECT line, j, valid, "
        f"valid AND json_type(CASE WHEN valid THEN j ELSE 'null' END::JSON) = 'OBJECT' "
        f"AS is_object FROM {lines}"
    )
    # Mapped keys holding no single value: "nested" says which, in a valid object. Each line
    # is parsed once for all of them (json_extract of a list of paths): a path each parsed it
    # four times a key.
    held = list(dict.fromkeys(mapped))
    nested = []
    for i in range(1, len(held) + 1):
        value = f"mv[{i}]"
        nested.append(
            f"CASE WHEN json_type({value}) = 'OBJECT' OR (json_type({value}) = 'ARRAY' AND "
            f"(json_array_length({value}) > 1 OR json_type({value}, '$[0]') IN "
            f"('ARRAY', 'OBJECT'))) THEN $held[{i}] END"
        )
    if nested:
        engine.execute(
            f"CREATE OR REPLACE TABLE {lines} AS SELECT line, j, valid, is_object, "
            f"CASE WHEN is_object THEN concat_ws(', ', {', '.join(nested)}) ELSE '' END "
            f"AS nested FROM (SELECT *, json_extract(CASE WHEN is_object THEN j ELSE '{{}}' "
            f"END, $paths) AS mv FROM {lines})",
            {"paths": [_json_path(key) for key in held], "held": held},
        )
    else:
        engine.execute(f"CREATE OR REPLACE TABLE {lines} AS SELECT *, '' AS nested FROM {lines}")
    bad = "(NOT is_object OR nested <> '')"
    first_bad = engine.rows(
        f"SELECT line, valid FROM {lines} WHERE NOT is_object AND NOT EXISTS "
        f"(SELECT 1 FROM {lines} WHERE is_object) ORDER BY line LIMIT 1"
    )
    if first_bad:  # nothing to read: no columns, and every mapped column "not found"
        line, valid = first_bad[0]
        if fmt == "json":  # one document, valid (else DuckDB said so): its values are no objects
            raise InputError(
                f"{path}: no value of it is a JSON object; a JSON export holds an array of "
                "objects (or one object per line), one per record"
            )
        raise InputError(
            f"{path}:{line}: {'not a JSON object' if valid else 'not valid JSON'}, and no "
            "line of the file is a JSON object; NDJSON holds one object per line (one JSON "
            "document: set format: json)"
        )
    engine.execute(
        f"""
        INSERT INTO {REJECTS}
        SELECT $source, $file, line,
               CASE WHEN NOT valid THEN 'invalid JSON'
                    WHEN NOT is_object THEN 'not a JSON object'
                    ELSE 'not one value (a JSON array or object) in ' || nested END, j
        FROM {lines} WHERE {bad}
        ORDER BY line
        """,
        {"source": source_name, "file": str(path)},
    )
    rejected = int(engine.scalar(f"SELECT count(*) FROM {lines} WHERE {bad}"))
    rows = engine.count(lines)
    keys = [
        row[0]
        for row in engine.rows(
            f"SELECT k FROM (SELECT unnest(json_keys(CASE WHEN is_object THEN j ELSE '{{}}' "
            f"END::JSON)) AS k, line FROM {lines}) GROUP BY k ORDER BY min(line), k"
        )
    ]
    # Each line parsed once for all its keys (v, a list of their values as JSON).
    projections = []
    for i, key in enumerate(keys, start=1):
        value = f"json_extract_string(v[{i}], '$')"
        if key in mapped:  # an array of one value: that value; a whole number 1.0: 1
            one = f"CASE WHEN json_type(v[{i}]) = 'ARRAY' THEN v[{i}] -> '$[0]' ELSE v[{i}] END"
            value = (
                f"CASE WHEN json_type({one}) = 'DOUBLE' THEN {number_text_sql(f'({one})::DOUBLE')} "
                f"ELSE json_extract_string({one}, '$') END"
            )
        projections.append(f"{value} AS {ident(key)}")
    row = row_column(keys)
    projections.append(f"line AS {ident(row)}")
    engine.execute(
        f"CREATE OR REPLACE TABLE {raw_table} AS SELECT {', '.join(projections)} "
        f"FROM (SELECT line, json_extract(j, $paths) AS v FROM {lines} "
        f"WHERE NOT ({bad})) ORDER BY line",
        {"paths": [_json_path(key) for key in keys]},
    )
    wrapped = None
    if rows == 1 and not rejected:  # (a .json file on one line ending in a newline is NDJSON)
        wrapped = _wrapped_records(engine.scalar(f"SELECT j FROM {lines}"))
    engine.drop(lines)
    return RawFile(raw_table, keys, rows, rejected, row, wrapped=wrapped)


def _json_path(key: str) -> str:
    """The JSONPath of the top-level `key`."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrapped_records(document: str) -> tuple[str, int] | None:
    """The key of the one JSON object `document` under which an array of objects is, and
    how many they are (the largest such array), else None: ``{"contacts": [{...}, ...]}``
    holds records, while read as one it is a record whose fields are missing."""
    try:
        parsed = json.loads(document)
    except RecursionError:  # nested deeper than Python parses; DuckDB read it as one record
        return None
    found = [
        (key, len(value))
        for key, value in parsed.items()
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
    ]
    return max(found, key=lambda kv: kv[1]) if found else None


def _one_object_per_line(readable: Path) -> bool:
    """Whether the first line of `readable` is a whole JSON object (NDJSON named .json)."""
    with readable.open("rb") as handle:
        first = handle.readline(1 << 20)
    if not first.endswith(b"\n"):
        return False  # one line, or a line longer than records are
    try:
        return isinstance(json.loads(first.decode("utf-8-sig")), dict)
    except (ValueError, RecursionError):
        return False


# DuckDB's words for a JSON document it cannot parse.
_MALFORMED_JSON = re.compile(
    # (Its record and line numbers count one too many: they are left out.)
    r"Malformed JSON in file .*, at byte \d+ in (?:record/value|line) \d+: "
    r"(?P<why>[^\n]+?)\.?\s*$",
    re.MULTILINE,
)


# An NDJSON line may hold this much: a record with a long text (DuckDB's default, 2 MB, made a
# ticket body of 3 MB stop the whole file). A JSON array's objects are read up to DuckDB's size.
NDJSON_MAX_LINE = 256 << 20
_LINE_TOO_LONG = re.compile(
    r"CSV Error on Line: (?P<line>\d+).*?Maximum line size of \d+ bytes exceeded\. "
    r"Actual Size:(?P<size>\d+) bytes",
    re.DOTALL,
)


def _json_reason(exc: Exception, readable: Path, shown: Path | str) -> str:
    """What is wrong with a JSON document, in one line: not valid JSON, DuckDB's reason, and,
    for a document that ends too soon, that it looks cut short."""
    found = _MALFORMED_JSON.search(str(exc))
    if found is None:
        return f"cannot read as JSON: {_reason(exc, readable, shown)}"
    why = found["why"]
    if "end of data" in why:
        why += ": is the file cut short?"
    return f"not valid JSON ({why})"


def _load_parquet(
    engine: DuckDBEngine, path: Path | str, readable: Path, raw_table: str, limit: int | None
) -> RawFile:
    try:
        # The file's own columns, then its row numbers (file_row_number is not used: a
        # column of the file may have that name).
        types = engine.rows(f"DESCRIBE SELECT * FROM {parquet('$path')}", {"path": str(readable)})
        columns = [str(name) for name, *_ in types]
        row = row_column(columns)
        # Each value as text; a whole number in a DOUBLE as its digits (an id 1.0 is 1, as in
        # a CSV or a workbook of the same export).
        values = ", ".join(
            f"{as_text_sql(ident(name), str(kind))} AS {ident(name)}" for name, kind, *_ in types
        )
        engine.execute(
            f"CREATE OR REPLACE TABLE {raw_table} AS SELECT {values} FROM "
            f"{parquet('$path')}{_limit(limit)}",
            {"path": str(readable)},
        )
    except duckdb.Error as exc:
        raise InputError(
            f"{path}: cannot read as Parquet: {_reason(exc, readable, path)}"
        ) from None
    # rowid follows file order because insertion order is preserved.
    engine.execute(
        f"CREATE OR REPLACE TABLE {raw_table} AS SELECT *, rowid + 1 AS {ident(row)} "
        f"FROM {raw_table}"
    )
    return RawFile(raw_table, columns, engine.count(raw_table), 0, row)


def _load_excel(
    engine: DuckDBEngine,
    path: Path | str,
    readable: Path,
    raw_table: str,
    limit: int | None,
    sheet: str | None,
) -> RawFile:
    """A sheet of a workbook (`sheet`, else the first that holds rows under its header), its
    first row the header, every cell as the text it holds (a number as its digits, a date cell
    as an ISO date and time, an empty cell as NULL). Blank rows are skipped, as blank lines of a
    CSV are; a row's number is its place in the sheet, 1 being the row below the header."""
    import fastexcel

    try:
        workbook = fastexcel.read_excel(str(readable))
        names = workbook.sheet_names
        if sheet is not None and sheet not in names:
            raise InputError(f"{path}: no sheet named '{sheet}' (it has {', '.join(names)})")
        chosen: str | None = sheet
        others: tuple[str, ...] = ()
        if chosen is None:  # a workbook often opens on a cover or notes sheet
            held = [n for n in names if workbook.load_sheet(n, dtypes="string", n_rows=1).height]
            chosen, others = (held[0], tuple(held[1:])) if held else (names[0], ())
        header = _header_row(workbook, chosen)
        data = workbook.load_sheet(
            chosen, header_row=header, dtypes="string", n_rows=limit
        ).to_arrow()
    except fastexcel.FastExcelError as exc:
        raise InputError(f"{path}: cannot read as Excel: {_first_line(exc)}") from None
    row = row_column(data.column_names)
    data = data.append_column(row, pa.array(range(1, data.num_rows + 1), pa.int64()))
    engine.register_arrow(raw_table, data)
    # DuckDB's own names (a header repeated in another case gets a suffix, as in a CSV).
    columns = [c for c in engine.columns(raw_table) if c != row]
    present = " OR ".join(f"{ident(c)} IS NOT NULL" for c in columns) or "false"
    engine.execute(f"DELETE FROM {raw_table} WHERE NOT ({present})")
    rows = engine.count(raw_table)
    return RawFile(
        raw_table, columns, rows, 0, row, other_sheets=(chosen, others) if others else None
    )


def _header_row(workbook: Any, sheet: str | None) -> int:
    """The row of a sheet holding its column names: the first, unless it holds a title (a
    cell or two, `Customer export generated ...`, above a blank row and the header): then the
    first of the next rows filled as the widest are. A title read as the header named one
    column and left the others `__UNNAMED__`; the header row became a customer."""
    top = workbook.load_sheet(sheet, header_row=None, dtypes="string", n_rows=30).to_arrow()
    filled = [sum(value is not None for value in row.values()) for row in top.to_pylist()]
    widest = max(filled, default=0)
    if not filled or filled[0] * 2 > widest:
        return 0
    return next(i for i, n in enumerate(filled) if n * 5 >= widest * 4)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _reason(exc: Exception, readable: Path, shown: Path | str) -> str:
    """DuckDB's first line, naming the file as the user does, not the copy that was read."""
    return _first_line(exc).replace(str(readable), str(shown))


def create_tables(engine: DuckDBEngine) -> None:
    canonical = ", ".join(f"{ident(name)} VARCHAR" for name in FIELD_NAMES)
    others = ", ".join(f"{ident(name)} VARCHAR[]" for name in OTHERS.values())
    engine.execute(
        f"CREATE OR REPLACE TABLE {MAPPED} (record_key BIGINT, source VARCHAR, "
        "source_kind VARCHAR, file VARCHAR, file_index INTEGER, row_number BIGINT, "
        f"source_record_id VARCHAR, {canonical}, {others})"
    )
    engine.execute(
        f"CREATE OR REPLACE TABLE {REJECTS} (source VARCHAR, file VARCHAR, line BIGINT, "
        "reason VARCHAR, raw VARCHAR)"
    )


def repeated_copies(column: str, columns: list[str]) -> list[str]:
    """The copies of a header name `column` repeats, as they are read: ``email_1``, ..."""
    return [c for c in columns if re.fullmatch(re.escape(column) + r"_[0-9]+", c)]


def _check_columns(source: SourceConfig, key: str, path: str, raw: RawFile, fmt: str) -> None:
    """Every column the source maps is in the file, once: a name the header repeats would
    read its first copy, which may not be the one meant.

    JSON has no header, and an object leaves out a key it has no value for: a day's few
    objects may all lack one. There a key no object holds is missing in every row, unless
    the file holds a key spelt almost like it (the config's misspelling)."""
    import difflib

    problems = []
    columns = raw.columns
    wanted = [
        (f"{key}.columns.{f}" + (f"[{i}]" if isinstance(mapped, list) else ""), column)
        for f, mapped in source.columns.items()
        for i, column in enumerate(source.columns_of(f))
    ]
    if source.id is not None:
        wanted.append((f"{key}.id", source.id))
    if raw.wrapped and not (
        source.id in columns if source.id else set(source.mapped_columns()) & set(columns)
    ):  # (A record of its own, one customer with a list of addresses, holds its fields.)
        raise raw.wrapped_error(path)
    mapped = set(source.mapped_columns())
    for where, column in wanted:
        # (a name mapped with every copy, `email: [email, email_1]`, reads them all)
        if column in raw.repeated and not set(repeated_copies(column, columns)) <= mapped:
            problems.append(
                f"{where}: the header of {PurePath(path).name} repeats column '{column}'; "
                f"rename the copies in the file, or map '{column}_1' for the second"
            )
        elif column not in columns:
            if fmt in ("json", "ndjson") and not difflib.get_close_matches(
                column, columns, n=1, cutoff=0.8
            ):
                continue
            close = difflib.get_close_matches(column, columns, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"{where}: column '{column}' not found in {PurePath(path).name}{hint}")
    if problems and raw.dialect is not None:
        _check_delimiter(source, key, path, raw.dialect.delim, columns)
    if problems:
        # (a mapped name or a header's holding a line break or an escape is shown escaped)
        raise InputError(printable(f"{path}: " + "; ".join(problems)))


# Delimiters CSV exports are written with; a header holding one of them in a single column
# was split by another.
_DELIMITERS = (",", ";", "\t", "|")


def _check_delimiter(
    source: SourceConfig, key: str, path: str, delimiter: str, columns: list[str]
) -> None:
    """A file whose header was read as one column holding another common delimiter (a
    config's `delimiter: ";"` on a comma-separated file) is an error saying so: each mapped
    column was reported not found, with no hint that the whole header was one name."""
    if len(columns) != 1:
        return
    counts = {d: columns[0].count(d) for d in _DELIMITERS if d != delimiter}
    other = max(counts, key=lambda d: counts[d])
    if not counts[other]:
        return

    def shown(text: str) -> str:  # (a tab as \t)
        return text.replace("\t", "\\t")

    header = shown(columns[0])
    header = header if len(header) <= 40 else header[:40] + "…"
    if source.delimiter is not None:
        fix = f"set {key}.delimiter to it, or leave it out to have it sniffed"
    elif delimiter == "\t":  # (a .tsv file, or format: tsv)
        fix = f"set {key}.format: csv, or {key}.delimiter"
    else:
        fix = f"set {key}.delimiter"
    raise InputError(
        f"{path}: its header was read as one column '{header}' with delimiter "
        f"'{shown(delimiter)}'; is the delimiter '{shown(other)}'? ({fix})"
    )


def ingest(
    engine: DuckDBEngine,
    config: Config,
    work_dir: Path,
    progress: Callable[[float], None] | None = None,
    spark_session: Any = None,
) -> Ingested:
    """Read all sources into ``cx_mapped`` and ``cx_rejects``.

    With `spark_session`, sources may name files on the stores its Hadoop FileSystem reaches
    (``s3a://``, ``hdfs://``, ``abfss://``, ``gs://``): each is copied under `work_dir`, read,
    and its copy deleted before the next file is copied (the driver's disk holds one file).

    Raises InputError naming the file for anything the user must fix (missing or empty file,
    unknown encoding, mapped column absent from the header).
    """
    create_tables(engine)
    planned: list[tuple[str, SourceConfig, Export]] = []
    for i, source in enumerate(config.sources):
        key = f"sources[{i}]"
        # A path that matches nothing is the config's fault: name the config, as its other
        # errors do (a source inferred from flags has no config file).
        where = key if config.origin == "<flags>" else f"{config.origin}: {key}"
        for export in resolve_files(
            source, config.base_dir, where, spark_session, config.engine.name
        ):
            # Before any file is read, as a path matching nothing is.
            fmt = file_format(export.location, source.format, f"{where}.format")
            if source.sheet is not None and fmt != "excel":
                raise InputError(
                    f"{where}.sheet: {export.location} is not an Excel file ({fmt}); a sheet "
                    "is for Excel workbooks only"
                )
            planned.append((key, source, export))
    ingested = Ingested()
    keys_used = 0
    # Without a config, a column whose header is one slip off a field's (`frist_name`) was
    # left unmapped, its values lost without a word: the run says which field it may be.
    misspelt: set[tuple[str, str]] = set()
    for file_index, (key, source, export) in enumerate(planned):
        copies = work_dir / "exports" / str(file_index)
        try:
            path = export.fetch(copies)
            read, keys, raw = _read_file(
                engine, key, source, export.location, path, file_index, keys_used, copies
            )
            if config.origin == "<flags>":
                for column, field_name in misspelt_columns(source, raw.columns).items():
                    if (source.name, column) not in misspelt:  # (once for a glob's files)
                        misspelt.add((source.name, column))
                        ingested.warnings.append(
                            f"column '{column}' of {PurePath(export.location).name} is not "
                            f"mapped; did you mean {field_name}? map it with a config "
                            "(cxunify init)"
                        )
            if raw.other_sheets is not None:
                chosen, others = raw.other_sheets
                one = len(others) == 1
                ingested.warnings.append(
                    f"{export.location}: sheet '{chosen}' read for source '{source.name}'; "
                    f"{'sheet' if one else 'sheets'} {', '.join(repr(n) for n in others)} "
                    f"{'holds rows too and is' if one else 'hold rows too and are'} not read: "
                    "give each a source of its own with `sheet:`"
                )
        finally:
            shutil.rmtree(copies, ignore_errors=True)
        ingested.files.append(read)
        keys_used += keys
        if progress:
            progress((file_index + 1) / len(planned))
    _name_order_lines(engine, config)
    ingested.warnings += _few_order_lines(engine, config)
    _reject_bad_ids(engine, config, ingested)
    _fill_order_rows(engine)
    ingested.warnings += _no_amounts(config, ingested)
    return ingested


def misspelt_columns(source: SourceConfig, columns: list[str]) -> dict[str, str]:
    """Of a file's columns the source does not read, those whose header names no field but is
    one slip off a spelling of one (`frist_name`: see `fields.misspelt_field`), and that field;
    not a field the source maps from another column (an email or phone, which take several,
    aside)."""
    read = {*source.mapped_columns(), *([source.id] if source.id is not None else [])}
    taken = {f for f in source.columns if not FIELD_BY_NAME[f].several_columns}
    found = {}
    for column, named in zip(columns, fields_for_headers(columns), strict=True):
        if column in read or named is not None:
            continue
        field_name = misspelt_field(column, taken)
        if field_name is not None:
            found[column] = field_name
    return found


def _no_amounts(config: Config, ingested: Ingested) -> list[str]:
    """A warning for each transactions source with rows that maps no amount: without a config,
    an amount column whose values were a third unreadable (`12,50 EUR`, `free`) was left out,
    and every customer's revenue was NULL without a word."""
    read = {f.source for f in ingested.files if f.rows > f.rejected}
    return [
        f"source '{source.name}' (transactions) maps no amount: its rows count as orders, "
        "with no revenue; map its column of amounts (columns: {amount: ...}; `cxunify init` "
        "on its file says why no column was mapped)"
        for source in config.sources
        if source.kind == "transactions" and "amount" not in source.columns
        and source.name in read
    ]  # fmt: skip


def _read_file(
    engine: DuckDBEngine,
    key: str,
    source: SourceConfig,
    location: str,
    path: Path,
    file_index: int,
    keys_used: int,
    copies: Path,
) -> tuple[InputFile, int, RawFile]:
    """Read the local file `path`, named `location` to the user, into ``cx_mapped``; return
    what run.json reports of it, the record keys its rows used and how it was read (its
    table dropped: its columns, the sheets it left). Working copies (a UTF-8
    copy of a file in another encoding, a CSV's copies) go in `copies`, removed once the
    file is read."""
    size = path.stat().st_size
    fmt = file_format(location, source.format)
    if size == 0 and fmt != "ndjson":  # NDJSON of no line is no records: a quiet night
        raise InputError(f"{location}: file is empty (source '{source.name}')")
    readable, encoding = (
        (path, "binary")
        if fmt in BINARY_FORMATS
        else readable_text(path, source.encoding, copies, shown=location)
    )
    raw_table = table(f"raw_{file_index}")
    raw = load_raw(
        engine,
        location,
        readable,
        fmt,
        source.delimiter,
        raw_table,
        source.name,
        sheet=source.sheet,
        work_dir=copies,
        quote=source.quote,
        escape=source.escape,
        mapped=tuple(c for c in (source.id, *source.mapped_columns()) if c is not None),
    )
    _check_columns(source, key, location, raw, fmt)
    _insert_mapped(engine, source, location, file_index, raw, keys_used)
    keys = int(engine.scalar(f"SELECT coalesce(max({ident(raw.row)}), 0) FROM {raw_table}"))
    engine.drop(raw_table)
    read = InputFile(
        source=source.name,
        kind=source.kind.value,
        path=location,
        format=fmt,
        encoding=encoding,
        bytes=size,
        sha256=sha256_of(path),
        rows=raw.rows,
        rejected=raw.rejected,
        dialect=raw.dialect.described() if raw.dialect else None,
    )
    return read, keys, raw


def _insert_mapped(
    engine: DuckDBEngine,
    source: SourceConfig,
    location: str,
    file_index: int,
    raw: RawFile,
    keys_used: int,
) -> None:
    """Append a file's rows to ``cx_mapped``, each keyed by its row number after the keys of
    the files before it: record keys follow reading order without sorting every row. Names,
    emails, phones and addresses lose their control characters. A field mapped to several
    columns takes the first value written in them, and its other values (a cell of a column
    after the first split at ';' and ',') go to its ``OTHERS`` column."""
    # (Here, not at the top: the standardize package imports this module.)
    from cxunify.standardize.text import PLAIN_TEXT_FIELDS, no_controls

    projections, others = [], []
    for name in FIELD_NAMES:
        values = []
        # (A mapped key the JSON file's objects all leave out is missing: see _check_columns.)
        for column in (c for c in source.columns_of(name) if c in raw.columns):
            text = no_controls(ident(column)) if name in PLAIN_TEXT_FIELDS else ident(column)
            values.append(f"NULLIF(trim({text}), '')")
        value = (
            "NULL::VARCHAR"
            if not values
            else values[0]
            if len(values) == 1
            else f"coalesce({', '.join(values)})"
        )
        if name in OTHERS and len(values) > 1:
            # The columns after the first may hold several values in a cell (HubSpot's
            # Additional email addresses: 'a@x.com; b@y.com'), each a value of its own.
            pieces = ", ".join(
                [f"[{values[0]}]"]
                + [f"string_split_regex({v}, {_SEVERAL_IN_A_CELL})" for v in values[1:]]
            )
            present = f"list_filter(flatten([{pieces}]), lambda v: trim(v) <> '')"
            value = f"{present}[1]"
            other = f"CASE WHEN len({present}) > 1 THEN {present}[2:] END"
            projections.append(f"{value} AS {ident(name)}")
            others.append(f"{other} AS {ident(OTHERS[name])}")
            continue
        projections.append(f"{value} AS {ident(name)}")
        if name in OTHERS:
            others.append(f"NULL::VARCHAR[] AS {ident(OTHERS[name])}")
    row = ident(raw.row)
    if source.id is None:
        record_id = f"CAST({row} AS VARCHAR)"
    else:  # an id key no object holds: every row is rejected for its missing id
        record_id = clean_id_sql(ident(source.id)) if source.id in raw.columns else "NULL"
    engine.execute(
        f"INSERT INTO {MAPPED} SELECT $keys_used + {row}, $source, $kind, $file, $file_index, "
        f"{row}, {record_id}, {', '.join(projections + others)} FROM {raw.table} "
        f"ORDER BY {row}",
        {
            "keys_used": keys_used,
            "source": source.name,
            "kind": source.kind.value,
            "file": location,
            "file_index": file_index,
        },
    )


# Who placed an order, and when: fields an order's rows share, which an export of one row per
# line item writes on the order's first row only (Shopify repeats the Email, at most).
ORDER_SHARED_FIELDS = (
    "first_name", "last_name", "full_name", "email", "phone", "street", "street_number",
    "address_2", "city", "postcode", "state", "country", "dob", "gender", "national_id",
    "customer_key", "card_last4", "handle", "platform", "created_at",
)  # fmt: skip


def _fill_order_rows(engine: DuckDBEngine) -> None:
    """A transactions row missing a field its order's other rows agree on takes it: the
    rows of an order (sharing an order_id in a source) are one customer's, and a line item's
    row that names nobody would otherwise be linked to nobody (a record holding no identity
    value is an identity of its own)."""
    repeated = table("orders_repeated")
    engine.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {repeated} AS
        SELECT source, order_id FROM {MAPPED}
        WHERE source_kind = 'transactions' AND order_id IS NOT NULL
        GROUP BY source, order_id HAVING count(*) > 1
        """
    )
    if engine.count(repeated) == 0:
        engine.drop(repeated)
        return
    agreed = ", ".join(
        f"CASE WHEN min({ident(f)}) = max({ident(f)}) THEN min({ident(f)}) END AS {ident(f)}"
        for f in ORDER_SHARED_FIELDS
    )
    filled = ", ".join(
        f"{ident(f)} = coalesce(m.{ident(f)}, o.{ident(f)})" for f in ORDER_SHARED_FIELDS
    )
    engine.execute(
        f"""
        UPDATE {MAPPED} m SET {filled}
        FROM (SELECT source, order_id, {agreed}
              FROM {MAPPED} JOIN {repeated} USING (source, order_id)
              WHERE source_kind = 'transactions'
              GROUP BY source, order_id) o
        WHERE m.source_kind = 'transactions' AND m.source = o.source
              AND m.order_id = o.order_id
        """
    )
    engine.drop(repeated)


def _order_rows_rejected(engine: DuckDBEngine, config: Config, bad: str) -> list[str]:
    """A warning per transactions source of which rows rejected for their id belong to an
    order another row of the source was read for: an export of one row per line item under
    an `id` that names the order (repeated on each line) or that only its first row holds.
    The rows are rightly rejected (an id names one row), but the fix is the config's. The
    first order is quoted unless the outputs are hashed (output.hash_pii).

    Not a row repeating a kept row of its order in every value read: an order exported twice
    (its row copied), whose copy is rightly rejected as a duplicate and loses nothing; the
    warning sent the user to leave `id` out, which would rename every row (ORD-1/1)."""
    same = " AND ".join(
        f"k.{ident(c)} IS NOT DISTINCT FROM m.{ident(c)}" for c in (*FIELD_NAMES, *OTHERS.values())
    )
    found = engine.rows(
        f"""
        WITH kept_rows AS (
            SELECT m.* FROM {MAPPED} m
            ANTI JOIN {bad} b USING (file_index, row_number)
            WHERE m.source_kind = 'transactions' AND m.order_id IS NOT NULL
        ), rejected AS (
            SELECT b.source, b.file_index, b.row_number, m.order_id
            FROM {bad} b JOIN {MAPPED} m USING (file_index, row_number)
            WHERE m.source_kind = 'transactions' AND m.order_id IS NOT NULL
              AND NOT starts_with(b.reason, 'a repeated header')
              AND NOT EXISTS (SELECT 1 FROM kept_rows k
                              WHERE k.source = m.source AND k.order_id = m.order_id AND {same})
        ), kept AS (
            SELECT DISTINCT source, order_id FROM kept_rows
        )
        SELECT source, count(*), first(order_id ORDER BY file_index, row_number)
        FROM rejected JOIN kept USING (source, order_id)
        GROUP BY source ORDER BY source
        """
    )
    id_column = {s.name: s.id for s in config.sources}
    warnings = []
    for source, rows, order in found:
        example = "" if config.output.hash_pii else f" (the first: order '{order}')"
        warnings.append(
            f"source '{source}': {rows:,} {'row' if rows == 1 else 'rows'} rejected for "
            f"{'its' if rows == 1 else 'their'} id in '{id_column[source]}' "
            f"{'belongs' if rows == 1 else 'belong'} to orders read from another "
            f"row{example}, as an export of one row per line item writes them; rows sharing "
            "an order_id are one order: to keep these rows, leave `id` out (rows are then "
            "named by their order and their place in it: #1001/2) or set it to a column "
            "unique per row"
        )
    return warnings


def _order_line_sources(config: Config) -> list[str]:
    """The sources whose rows are named by their order and line (`SourceConfig.order_lines`)."""
    return [s.name for s in config.sources if s.order_lines is not None]


# The order id that names a line's record: NULL when the row carries none.
_LINE_ORDER = clean_id_sql("order_id")


# Without a config, a transactions source whose order ids repeat on rows that differ is read
# as one row per line item (see infer). A real export of line items repeats many of its
# orders (each of more than one item); a share this small repeating is as likely an order
# written twice with a change (a status updated), and reading the source as line items
# renames every row (ORD-1/1): the run says so.
FEW_REPEATED_ORDERS = 0.01


def few_repeated_orders(repeated: int, orders: int) -> bool:
    """Whether `repeated` of `orders` order ids repeating is too few to tell line items."""
    return 0 < repeated <= FEW_REPEATED_ORDERS * orders


def _few_order_lines(engine: DuckDBEngine, config: Config) -> list[str]:
    """A warning per source read as line items without a config (`_name_order_lines`)
    whose repeated order ids are few (`FEW_REPEATED_ORDERS`), naming how many."""
    sources = _order_line_sources(config) if config.origin == "<flags>" else []
    if not sources:
        return []
    found = engine.rows(
        f"""
        SELECT source, count(*), count(*) FILTER (WHERE n > 1),
               min(ord) FILTER (WHERE n > 1)
        FROM (SELECT source, {_LINE_ORDER} AS ord, count(*) AS n FROM {MAPPED}
              WHERE list_contains($sources, source) AND ord IS NOT NULL GROUP BY ALL)
        GROUP BY source ORDER BY source
        """,
        {"sources": sources},
    )
    by_name = {s.name: s for s in config.sources}
    warnings = []
    for source, orders, repeated, order in found:
        if not few_repeated_orders(repeated, orders):
            continue
        column = by_name[source].columns["order_id"]
        example = "" if config.output.hash_pii else f" (the first: order '{order}')"
        warnings.append(
            f"source '{source}': {repeated:,} of its {orders:,} order ids in '{column}' "
            f"{'repeats' if repeated == 1 else 'repeat'}{example} on rows that differ, so its "
            "rows are read as line items, each named by its order and its place in it "
            "(#1001/2), not by its id; if the repeats are orders written twice, map "
            f"'{column}' as the id in a config (`cxunify init` drafts one): the repeats are "
            "then rejected as duplicate ids"
        )
    return warnings


def _name_order_lines(engine: DuckDBEngine, config: Config) -> None:
    """Name each row of a source without an id column but with an order_id
    (`SourceConfig.order_lines`) by its order and its place among the order's rows, in
    reading order: ``#1001/1``, ``#1001/2``. The names stay the same in each night's whole
    export, and a night's file of new orders names no stored record, so an update can take
    its rows. A row with no order_id keeps its row number."""
    sources = _order_line_sources(config)
    if not sources:
        return
    engine.execute(
        f"""
        UPDATE {MAPPED} m SET source_record_id = n.line_id
        FROM (SELECT file_index, row_number,
                     ord || '/' || row_number() OVER (
                         PARTITION BY source, ord ORDER BY file_index, row_number
                     ) AS line_id
              FROM (SELECT file_index, row_number, source, {_LINE_ORDER} AS ord
                    FROM {MAPPED} WHERE list_contains($sources, source))
              WHERE ord IS NOT NULL) n
        WHERE m.file_index = n.file_index AND m.row_number = n.row_number
        """,
        {"sources": sources},
    )


def numbered_order_lines(engine: DuckDBEngine, config: Config) -> dict[str, int]:
    """Per source named by order lines (`_name_order_lines`), how many of the rows read
    carry no order_id and so are named by their row number."""
    sources = _order_line_sources(config)
    if not sources:
        return {}
    rows = engine.rows(
        f"SELECT source, count(*) FROM {MAPPED} WHERE list_contains($sources, source) "
        f"AND {_LINE_ORDER} IS NULL GROUP BY source ORDER BY source",
        {"sources": sources},
    )
    return {source: int(count) for source, count in rows}


# Fields that name or locate a person: a row holding none of them names nobody.
_NAMING_FIELDS = (
    "first_name", "last_name", "full_name", "email", "phone", "street", "street_number",
    "address_2", "city", "postcode", "location", "dob", "national_id", "customer_key",
    "card_last4", "handle",
)  # fmt: skip
# What a report's summary row says in its id, order id, date or status (lower case, trimmed):
# Total, Totals:, Grand total, Subtotal (3 rows), Total: 10 contacts; Sum, Summe, Gesamt,
# Somme, Totaal, Totale. (Not in free text: a category "Total Gym" is a product.)
SUMMARY_LABEL = (
    r"((grand|sub)[ -]?)?totals?([\s:(].*)?"
    r"|(sum|summe|gesamt|gesamtsumme|somme|suma|totaal|totale)\s*:?"
)
_SUMMARY_COLUMNS = (
    "source_record_id", "order_id", "created_at", "resolved_at", "last_active_at", "status",
)  # fmt: skip


def _reject_bad_ids(engine: DuckDBEngine, config: Config, ingested: Ingested) -> None:
    """Rows without an id, or repeating an id already seen in their source, go to rejects."""
    id_column = {s.name: s.id or "row number" for s in config.sources}
    ranked = table("mapped_ranked")
    engine.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {ranked} AS
        SELECT source, file, file_index, row_number, source_record_id,
               row_number() OVER (PARTITION BY source, source_record_id
                                  ORDER BY file_index, row_number) AS nth,
               first(file || ':' || row_number) OVER (PARTITION BY source, source_record_id
                                  ORDER BY file_index, row_number) AS first_at
        FROM {MAPPED}
        """
    )
    # A row whose id is the id column's own name is a header line again: exports joined
    # file after file with `cat` repeat it. Matched without case, as headers are.
    headers = table("id_headers")
    engine.execute(f"CREATE OR REPLACE TEMP TABLE {headers} (source VARCHAR, id_header VARCHAR)")
    for source in config.sources:
        if source.id:
            engine.execute(
                f"INSERT INTO {headers} VALUES ($source, $header)",
                {"source": source.name, "header": source.id},
            )
    # A row of no value at all (`,,,,` from a spreadsheet's blank line) was a customer of
    # nothing; a row holding only an amount or a date stays a customer of its own.
    empty = " AND ".join(
        [*(f"m.{ident(f)} IS NULL" for f in FIELD_NAMES),
         *(f"coalesce(len(m.{ident(o)}), 0) = 0" for o in OTHERS.values())]
    )  # fmt: skip
    # A row naming nobody that says it is a total (`Total,,,30.00` under a report's orders)
    # was a customer holding every order's revenue at once.
    nobody = " AND ".join(
        [*(f"m.{ident(f)} IS NULL" for f in _NAMING_FIELDS),
         *(f"coalesce(len(m.{ident(o)}), 0) = 0" for o in OTHERS.values())]
    )  # fmt: skip
    labels = ", ".join(
        f"CASE WHEN regexp_full_match(lower(trim(m.{ident(c)})), $summary) "
        f"THEN trim(m.{ident(c)}) END"
        for c in _SUMMARY_COLUMNS
    )
    bad = table("mapped_bad")
    engine.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {bad} AS
        SELECT r.file_index, r.row_number, r.source, r.file,
               CASE WHEN r.empty THEN 'empty row: no mapped column holds a value'
                    WHEN r.summary IS NOT NULL
                        THEN 'summary row: ''' || r.summary || ''' and no one named'
                    WHEN r.source_record_id IS NULL THEN 'missing id'
                    WHEN lower(r.source_record_id) = lower(r.id_header)
                        THEN 'a repeated header line (its id is the id column''s name)'
                    ELSE 'duplicate id ' || r.source_record_id || ' (first at row '
                         || split_part(r.first_at, ':', -1) || ')' END AS reason
        FROM (
            -- (an id alone is a value: a contact of that id; rows without an id column
            -- are named by their row number)
            SELECT r.*, {empty} AND (r.source_record_id IS NULL OR h.id_header IS NULL)
                   AS empty, CASE WHEN {nobody} THEN coalesce({labels}) END AS summary, h.id_header
            FROM {ranked} r JOIN {MAPPED} m USING (file_index, row_number)
            LEFT JOIN {headers} h ON h.source = r.source
        ) r
        WHERE r.empty OR r.summary IS NOT NULL OR r.source_record_id IS NULL OR r.nth > 1
              OR lower(r.source_record_id) = lower(r.id_header)
        """,
        {"summary": SUMMARY_LABEL},
    )
    engine.drop(headers)
    if engine.count(bad) == 0:
        engine.drop(ranked, bad)
        return
    ingested.warnings += _order_rows_rejected(engine, config, bad)
    reasons = engine.rows(f"SELECT source, file, count(*) FROM {bad} GROUP BY ALL")
    for source_name, column in id_column.items():
        engine.execute(
            f"UPDATE {bad} SET reason = reason || ' in ' || $column "
            "WHERE source = $source AND NOT starts_with(reason, 'a repeated header') "
            "AND NOT starts_with(reason, 'empty row') AND NOT starts_with(reason, 'summary row')",
            {"column": column, "source": source_name},
        )
    engine.execute(
        f"""
        INSERT INTO {REJECTS}
        SELECT b.source, b.file, NULL::BIGINT, b.reason, to_json(m)::VARCHAR
        FROM {bad} b
        JOIN (SELECT * EXCLUDE (record_key) FROM {MAPPED}) m USING (file_index, row_number)
        ORDER BY b.file_index, b.row_number
        """
    )
    engine.execute(
        f"DELETE FROM {MAPPED} m USING {bad} b "
        "WHERE m.file_index = b.file_index AND m.row_number = b.row_number"
    )
    by_file = {(s, f): int(n) for s, f, n in reasons}
    for item in ingested.files:
        item.rejected += by_file.get((item.source, item.path), 0)
    engine.drop(ranked, bad)
