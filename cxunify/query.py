"""Ad-hoc SQL over an output folder, for ``cxunify sql`` and for Python callers.

Views are created fresh over the folder's Parquet files on an in-memory database, so queries
work wherever the folder has been moved, without the DuckDB CLI.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import IO, Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cxunify import jsontext
from cxunify.errors import OutputError, UserError, interrupted, public, unreadable_file
from cxunify.output import MANIFEST, create_views, replacing, require_folder
from cxunify.sql import ident

ExportFormat = Literal["table", "csv", "json", "parquet"]


@public("out_dir")
def open_output(out_dir: Path, skipped: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with a view per output table of `out_dir`; a Parquet file of
    the user's there that cannot be read has no view, and a line in `skipped`."""
    require_folder(out_dir)
    if not (out_dir / MANIFEST).is_file():
        raise OutputError(f"{out_dir}: not a cxunify output folder (no {MANIFEST})")
    con = duckdb.connect(":memory:")
    try:
        # Times with a zone are shown and written in UTC, as the outputs hold them: in the
        # machine's zone, a nightly export's text changed with the server it ran on.
        con.execute("SET TimeZone = 'UTC'")
        create_views(con, out_dir, skipped)
    except duckdb.Error as exc:
        con.close()
        raise _query_error(exc) from None
    return con


class QueryResult:
    """A running query; iterate ``reader`` for Arrow batches. Holds its connection open."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader, warnings: list[str]
    ):
        self.con = con
        self.reader = reader
        self.warnings = warnings  # files of the folder left without a view

    def close(self) -> None:
        self.con.close()


# Statements that answer with rows of their own: SELECT (with DESCRIBE, SHOW, SUMMARIZE, FROM
# and VALUES), EXPLAIN, PRAGMA, CALL, and PIVOT (MULTI).
_QUERIES = frozenset(
    getattr(duckdb.StatementType, name) for name in ("SELECT", "EXPLAIN", "PRAGMA", "CALL", "MULTI")
)

# Statements typed as those that answer, some of which set something and answer 'Success'.
_SETTERS = frozenset((duckdb.StatementType.PRAGMA, duckdb.StatementType.CALL))

# The first words of a query, for a statement DuckDB types MULTI: one holding a PIVOT, which it
# runs as several. A COPY or CREATE of a PIVOT is typed so too, and so is an EXPLAIN of one.
_QUERY_WORDS = frozenset(
    ("SELECT", "FROM", "VALUES", "TABLE", "PIVOT", "UNPIVOT", "DESCRIBE", "SHOW", "SUMMARIZE", "(")
)


@public("out_dir")
def run_query(out_dir: Path, sql: str, text: bool = False) -> QueryResult:
    """Run `sql` over the output views; the result streams in Arrow batches. With `text`
    (for csv, json and the table), dates, times and BLOBs come as the text DuckDB writes for
    them; BIT, BIGNUM, UHUGEINT and VARIANT always do, as no Arrow type holds them."""
    if not sql.strip().strip(";").strip():
        raise UserError("SQL error: the query is empty")
    warnings: list[str] = []
    con = open_output(out_dir, warnings)
    try:
        statements = con.extract_statements(sql)
        if len(statements) > 1:
            # DuckDB runs them all and hands back the last result: the others were dropped.
            con.close()
            raise UserError(
                f"SQL error: the query holds {len(statements)} statements; give one (run "
                "each with its own cxunify sql)"
            )
        if not statements:  # comments alone
            con.close()
            raise UserError("SQL error: the query is empty")
        statement = statements[0]
        refused = _refused(con, statement)
        if refused is not None:
            # DuckDB answers SET, ATTACH, CREATE, COPY ... with a 'Success' or 'Count' row,
            # and an EXPLAIN ANALYZE runs the statement it explains (a COPY wrote its file).
            con.close()
            raise _no_query(refused, statement)
        relation = con.sql(sql)
        if relation is None:  # a statement that returns nothing
            con.close()
            raise UserError("SQL error: the statement returns no rows; give a query")
        answer = zip(relation.columns, map(str, relation.types), strict=True)
        if statement.type in _SETTERS and list(answer) == [("Success", "BOOLEAN")]:
            # A PRAGMA or CALL that sets something (PRAGMA enable_progress_bar): its type is
            # PRAGMA as that of one that answers (PRAGMA table_info), only its answer differs.
            con.close()
            raise _no_query(_first_words(statement), statement)
        relation = _as_text(relation, _TEXT_TYPES if text else _OPAQUE_TYPES)
        return QueryResult(con, _reported(relation.to_arrow_reader(65_536)), warnings)
    except duckdb.Error as exc:
        con.close()
        raise _query_error(exc) from None


def _refused(con: duckdb.DuckDBPyConnection, statement: Any) -> str | None:
    """The first words of what makes `statement` no query ('COPY', 'EXPLAIN ANALYZE COPY'),
    else None. An EXPLAIN is a query when what it explains is one, not a PRAGMA or CALL: EXPLAIN
    ANALYZE runs it, and which of those set something shows only once they have run (EXPLAIN
    ANALYZE CALL enable_logging(storage = 'file') wrote log files)."""
    if statement.type not in _QUERIES:
        return _first_words(statement)
    tokens = _tokens(statement.query)
    if tokens and tokens[0][0].upper() == "EXPLAIN":  # typed MULTI when it explains a PIVOT
        readings = _explained(con, statement.query, tokens)
        if not readings:
            return "EXPLAIN"
        for explaining, explained in readings:
            words = _refused(con, explained)
            if words is None and explained.type in _SETTERS:
                words = _first_words(explained)
            if words is not None:
                return f"{explaining} {words}"
        return None
    if statement.type == duckdb.StatementType.MULTI:
        words = _statement_proper(tokens)
        return None if words in _QUERY_WORDS else words
    return None


def _tokens(sql: str) -> list[tuple[str, int]]:
    """The words and signs of `sql`, each with where it starts; comments left out."""
    found = duckdb.tokenize(sql)
    ends = [start for start, _ in found[1:]] + [len(sql)]
    return [
        (sql[start:end].strip(), start)
        for (start, kind), end in zip(found, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]


def _closing(tokens: list[tuple[str, int]], opening: int) -> int:
    """The index of the parenthesis that closes the one at `opening` (past the end if none)."""
    depth = 0
    for i in range(opening, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[i][0], 0)
        if depth == 0:
            return i
    return len(tokens)


def _explained(
    con: duckdb.DuckDBPyConnection, sql: str, tokens: list[tuple[str, int]]
) -> list[tuple[str, Any]]:
    """The statement an EXPLAIN explains, read each way its words allow (EXPLAIN (FORMAT json)
    SELECT 1 has options in parentheses, EXPLAIN (SELECT 1) a query), each with 'EXPLAIN' or
    'EXPLAIN ANALYZE' as the words before it say."""
    first = 2 if len(tokens) > 1 and tokens[1][0].upper() in ("ANALYZE", "ANALYSE") else 1
    starts = [first]
    if first < len(tokens) and tokens[first][0] == "(":
        starts.append(_closing(tokens, first) + 1)
    readings = []
    for start in starts:
        try:
            statements = con.extract_statements(sql[tokens[start][1] :])
        except (duckdb.Error, IndexError):  # not a statement, or nothing after the options
            continue
        if len(statements) == 1:
            before = {word.upper() for word, _ in tokens[1:start]}
            analyze = " ANALYZE" if before & {"ANALYZE", "ANALYSE"} else ""
            readings.append((f"EXPLAIN{analyze}", statements[0]))
    return readings


def _statement_proper(tokens: list[tuple[str, int]]) -> str:
    """The first word of a statement after its WITH clause: INSERT in WITH t AS (...) INSERT
    ...; the clause's last word when nothing follows it."""
    words = [word.upper() for word, _ in tokens]
    if not words or words[0] != "WITH":
        return words[0] if words else ""
    depth = 0
    for previous, word in pairwise(words):
        depth += {"(": 1, ")": -1}.get(previous, 0)
        # After a parenthesis closing at the top: a comma and the next table of the clause,
        # the AS (or USING KEY) of a table named with its columns, or the statement proper.
        if depth == 0 and previous == ")" and word not in (",", "(", "AS", "USING"):
            return word
    return words[-1]


# The words a statement starts with, after any comments: 'PRAGMA threads', 'FORCE INSTALL'.
_LEADING = re.compile(
    r"(?:\s|/\*.*?\*/|--[^\n]*\n)*((?:PRAGMA|CALL|FORCE)\s+\w+|\w+)", re.IGNORECASE | re.DOTALL
)


def _first_words(statement: Any) -> str:
    """The statement named by its first words: DuckDB types PRAGMA threads=1, RESET and USE as
    SET, INSTALL as LOAD, CHECKPOINT as CALL."""
    leading = _LEADING.match(statement.query)
    words = leading[1].split() if leading else ["WITH"]
    if words[0].upper() == "WITH":  # WITH ... INSERT
        return str(statement.type.name)
    if words[0].upper() in ("PRAGMA", "CALL"):
        return f"{words[0].upper()} {words[1]}"
    return " ".join(word.upper() for word in words)


def _no_query(words: str, statement: Any) -> UserError:
    """The error for a statement that is no query, named by `words`. An extension is
    installed and loaded in DuckDB itself."""
    if words.startswith("EXPLAIN"):
        return UserError(
            f"SQL error: {words}: EXPLAIN takes a query (SELECT ...); EXPLAIN ANALYZE runs "
            "the statement it explains, and cxunify sql writes nothing"
        )
    extension = ", or run it in DuckDB itself" if statement.type.name == "LOAD" else ""
    return UserError(
        f"SQL error: {words} returns no rows of its own; give a query (SELECT ...){extension}"
    )


# Types no Arrow type holds: DuckDB hands BIT and BIGNUM to Arrow as bytes and VARIANT as a
# struct of bytes, whose text is no value (csv stopped with an internal error, a Parquet file
# held the bytes), and a UHUGEINT as a DECIMAL(38, 0) that holds it up to 2**127 only: the
# largest was -1. They are DuckDB's text in every format.
_OPAQUE_TYPES = frozenset({"bignum", "bit", "uhugeint", "variant"})

# Types written as DuckDB's own text in csv, json and the table: Arrow's CSV writer wrote an
# infinite timestamp as '<value out of range: ...>' and failed on a BLOB not in UTF-8; Python
# showed a BLOB as "b'x'" and cannot hold 'infinity' or a year past 9999. A GEOMETRY reaches
# Arrow as its WKB bytes, as Parquet holds it.
_TEXT_TYPES = _OPAQUE_TYPES | frozenset(
    {
        "blob",
        "date",
        "geometry",
        "time",
        "time with time zone",
        "time_ns",
        "timestamp",
        "timestamp_s",
        "timestamp_ms",
        "timestamp_ns",
        "timestamp with time zone",
    }
)


def _text_type(kind: Any, texts: frozenset[str]) -> str | None:
    """The type that `kind` (a DuckDB type) is cast to, each type of `texts` in it VARCHAR,
    else None when nothing in it needs a cast."""
    if kind.id in texts:
        return "VARCHAR"
    if kind.id == "list":
        child = _text_type(kind.children[0][1], texts)
        return None if child is None else f"{child}[]"
    if kind.id == "array":
        child = _text_type(kind.children[0][1], texts)
        return None if child is None else f"{child}[{kind.children[1][1]}]"
    if kind.id == "map":
        key, value = (_text_type(c[1], texts) for c in kind.children)
        if key is None and value is None:
            return None
        return f"MAP({key or kind.children[0][1]}, {value or kind.children[1][1]})"
    if kind.id == "struct":
        fields = [(name, _text_type(child, texts), child) for name, child in kind.children]
        if all(cast is None for _, cast, _ in fields):
            return None
        inner = ", ".join(f"{ident(name)} {cast or child}" for name, cast, child in fields)
        return f"STRUCT({inner})"
    return None


def _as_text(relation: duckdb.DuckDBPyRelation, texts: frozenset[str]) -> duckdb.DuckDBPyRelation:
    """`relation` with its values of a type of `texts` (in lists and structs too) cast to
    VARCHAR: csv and json write what DuckDB writes for them ('infinity', '\\xFF')."""
    casts = [_text_type(kind, texts) for kind in relation.types]
    if all(cast is None for cast in casts):
        return relation
    # By position: a result may name two columns alike.
    names = _unique_names(list(relation.columns))
    return relation.project(
        ", ".join(
            f"CAST(#{i} AS {cast}) AS {ident(name)}" if cast else f"#{i} AS {ident(name)}"
            for i, (name, cast) in enumerate(zip(names, casts, strict=True), start=1)
        )
    )


def _query_error(exc: Exception) -> UserError:
    return UserError(unreadable_file(exc) or f"SQL error: {_one_line(str(exc))}")


# DuckDB's words for an extension the query needs; quoted names and values are left out, so a
# value 'extension' in a conversion error is not taken for one.
_EXTENSION = re.compile(r"\bextensions?\b", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_MISQUOTED = re.compile(r"(extension '\w+):")  # DuckDB's "the required extension 'excel:"


def _one_line(message: str) -> str:
    """DuckDB's `message` on one line: its first line, with a hint that follows it ('Did you
    mean "profiles"?'), not the query quoted under it with a caret. A message about an extension
    is whole: its first line names the extension, the lines after it why it could not be had
    ('Could not establish connection') and how to install it ('INSTALL spatial; LOAD spatial;')."""
    lines = [line.strip() for line in message.strip().splitlines()]
    if not lines:
        return message
    if _EXTENSION.search(_QUOTED.sub("", lines[0])):
        kept = [line for line in lines if line and not _CONTEXT.match(line)]
    else:
        kept = lines[:1] + [line for line in lines[1:2] if line.startswith(_HINTS)]
    text = kept[0]
    for line in kept[1:]:
        text += (" " if text.endswith((".", ":", ";", "!", "?", ")")) else "; ") + line
    return _MISQUOTED.sub(r"\1':", text)


_HINTS = ("Did you mean", "Candidate bindings:")
_CONTEXT = re.compile(r"LINE \d+:|\^+$")  # the query quoted, a caret under the error


def _reported(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """`reader`, whose errors met while rows stream (a cast failing in a later batch) are SQL
    errors as those met before the first row are: pyarrow hands them on as an OSError whose
    text runs over several lines."""

    # Intervals (a difference of timestamps) as DuckDB writes them ('1 day 02:00:00'): neither
    # Arrow's CSV writer nor Parquet takes Arrow's interval type, and its Python form is a repr.
    intervals = [i for i, f in enumerate(reader.schema) if pa.types.is_interval(f.type)]
    schema = reader.schema
    for i in intervals:
        schema = schema.set(i, pa.field(schema.field(i).name, pa.string()))
    for i, name in enumerate(_unique_names(schema.names)):
        schema = schema.set(i, schema.field(i).with_name(name))

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                columns = list(batch.columns)
                for i in intervals:
                    columns[i] = pa.array(
                        [_plain(v, batch.schema.field(i).type) for v in columns[i].to_pylist()],
                        pa.string(),
                    )
                yield pa.RecordBatch.from_arrays(columns, schema=schema)
        except (duckdb.Error, OSError) as exc:
            if interrupted(exc):
                raise
            raise _query_error(exc) from None

    return pa.RecordBatchReader.from_batches(schema, batches())


def _unique_names(names: list[str]) -> list[str]:
    """`names` with each repeat suffixed as DuckDB names the columns of a file that repeats a
    name (``a, a`` → ``a, a_1``): rows are shown and written by name, so the second of two
    columns named alike took the first one's place in a table and in JSON."""
    taken = set(names)
    unique: list[str] = []
    for name in names:
        if name in unique:
            n = 1
            while f"{name}_{n}" in taken:
                n += 1
            name = f"{name}_{n}"
            taken.add(name)
        unique.append(name)
    return unique


def python_rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """The rows of `batch` as Python values; a date or timestamp Python cannot hold (DuckDB's
    'infinity', a year past 9999) is the user's to cast, not a cxunify fault."""
    try:
        return batch.to_pylist()
    except (OverflowError, ValueError) as exc:
        temporal = " or ".join(f.name for f in batch.schema if pa.types.is_temporal(f.type))
        raise UserError(
            f"SQL error: a date or time of {temporal or 'the result'} is beyond what Python "
            f"holds ({exc}: infinity, or a year past 9999); cast it to VARCHAR in the query"
        ) from None


def text_rows(batch: pa.RecordBatch) -> list[list[str | None]]:
    """The rows of `batch` as the text ``--format csv`` writes for each value, without its
    quotes: lists, maps and structs as JSON, booleans as true and false, and, from a
    ``run_query(text=True)``, dates, times and BLOBs as DuckDB's text ('\\xFF', 'infinity')."""
    table = _flat(pa.Table.from_batches([batch]))
    columns = [_cell_texts(column) for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _cell_texts(column: pa.ChunkedArray) -> list[str | None]:
    return _cell_array(column).to_pylist()


def _cell_array(column: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return pc.cast(column, pa.string())  # as Arrow's CSV writer does
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        texts = [None if value is None else str(value) for value in column.to_pylist()]
        return pa.chunked_array([pa.array(texts, pa.string())])


def _interval_text(interval: Any) -> str:
    """An Arrow interval (months, days, nanoseconds) as DuckDB writes one: '1 year 2 months',
    '-1 day -00:00:01.25', '36:00:00'."""
    months, days, nanos = interval.months, interval.days, interval.nanoseconds
    years, months = int(months / 12), months - 12 * int(months / 12)
    parts = [
        f"{n} {unit}{'' if abs(n) == 1 else 's'}"
        for n, unit in ((years, "year"), (months, "month"), (days, "day"))
        if n
    ]
    if nanos or not parts:
        micros = abs(nanos) // 1000
        seconds, micros = divmod(micros, 1_000_000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        parts.append(f"{'-' if nanos < 0 else ''}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}")
    return " ".join(parts)


# The format a result file's extension names: json is a JSON object a line.
_FORMAT_BY_SUFFIX: dict[str, ExportFormat] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
}


# A text result written to a file ending in one of these is compressed so (out.csv.gz).
_COMPRESSED: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _format_suffix(target: Path) -> str:
    """The extension naming the format of `target`, under any compression's (.csv.gz: .csv)."""
    suffixes = [s.lower() for s in target.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        return suffixes[-2] if len(suffixes) > 1 else ""
    return target.suffix.lower()


def result_format(fmt: str | None, target: Path | None) -> ExportFormat:
    """The format a result is shown or written in: `fmt` as given (``--format``), else the one
    the extension of `target` names (``--to out/vip.parquet``: parquet), else table (csv in a
    file). A format the extension contradicts is an error: csv was written into vip.parquet."""
    if fmt is not None and fmt not in ("table", "csv", "json", "parquet"):
        raise UserError(f"--format {fmt}: choose table, csv, json or parquet")
    suffix = _format_suffix(target) if target is not None else ""
    named = _FORMAT_BY_SUFFIX.get(suffix)
    if fmt is None:
        return named or "table"
    writes = "csv" if fmt == "table" else fmt
    if named is not None and named != writes:
        raise UserError(
            f"--format {fmt} and --to {target} disagree: --format {fmt} writes {writes}, a "
            f"{suffix} file holds {named}; give --format {named} (or no --format), or a --to "
            f"FILE ending in .{writes}"
        )
    return fmt  # type: ignore[return-value]


def export(
    reader: pa.RecordBatchReader, fmt: ExportFormat, target: Path | None, option: str = "--to"
) -> int:
    """Write a query result as csv, json (one object per line) or parquet to `target` (its
    folder made if missing; the command's `option` names it in errors), else to stdout;
    return rows."""
    if target is None:
        if fmt == "parquet":
            raise UserError("--format parquet needs --to FILE")
        return _write_text(reader, fmt, sys.stdout)
    compressed = _COMPRESSED.get(target.suffix.lower())
    if fmt == "parquet" and compressed is not None:
        raise UserError(
            f"{option} {target}: a Parquet file is compressed within; write it to a file "
            "ending in .parquet"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and put in its place once whole (see output.replacing).
    with replacing(target) as partial:
        if fmt == "parquet":
            rows = 0
            with pq.ParquetWriter(str(partial), reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
            return rows
        if compressed is not None:  # out.csv.gz was plain csv under a name saying gzip
            with compressed(partial, "wt", encoding="utf-8", newline="") as handle:
                return _write_text(reader, fmt, handle)
        with partial.open("w", encoding="utf-8", newline="") as handle:
            return _write_text(reader, fmt, handle)


def _flat(batch: pa.Table) -> pa.Table:
    """The table with each list, map or struct column as JSON text (a CSV cell holds text;
    Arrow's CSV writer refuses nested values)."""
    for i, column in enumerate(batch.schema):
        if pa.types.is_nested(column.type):
            values = [
                None if v is None else jsontext.dumps(_plain(v, column.type), ensure_ascii=False)
                for v in batch.column(i).to_pylist()
            ]
            batch = batch.set_column(i, column.name, pa.array(values, pa.string()))
    return batch


def _plain(value: Any, kind: pa.DataType) -> Any:
    """A value of Arrow type `kind`, from its Python form, as JSON would hold it: a map as an
    object, a decimal as a number, a date or time as ISO text."""
    if value is None:
        return None
    if pa.types.is_map(kind):
        return {str(k): _plain(v, kind.item_type) for k, v in value}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return [_plain(v, kind.value_type) for v in value]
    if pa.types.is_struct(kind):
        return {f.name: _plain(value[f.name], f.type) for f in kind}
    if pa.types.is_decimal(kind):
        return str(value)  # exact, as before: a float would round past 2**53
    if pa.types.is_interval(kind):
        return _interval_text(value)
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)


_CSV_QUOTED = r'[,"\r\n]'  # a cell holding one of these is quoted (RFC 4180)


def _csv_quoted(text: str) -> str:
    if text == "" or re.search(_CSV_QUOTED, text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_lines(batch: pa.RecordBatch) -> str:
    """The rows of `batch` as CSV lines, each cell as ``text_rows`` has it and quoted only
    where it must be, as DuckDB and Python's csv module write: a null is an empty cell, an
    empty text is "" (Arrow's writer quoted every text, awkward in a shell's ``$(...)``)."""
    if batch.num_rows == 0:
        return ""
    table = _flat(pa.Table.from_batches([batch]))
    cells = []
    for column in table.columns:
        text = _cell_array(column)
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        needs = pc.or_(pc.equal(text, ""), pc.match_substring_regex(text, _CSV_QUOTED))
        cells.append(pc.fill_null(pc.if_else(needs, quoted, text), ""))
    lines = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
    return "\n".join(lines.to_pylist()) + "\n"


def _write_text(reader: pa.RecordBatchReader, fmt: str, handle: IO[str]) -> int:
    rows = 0
    if fmt == "csv":
        handle.write(",".join(_csv_quoted(name) for name in reader.schema.names) + "\n")
        for batch in reader:
            handle.write(_csv_lines(batch))
            rows += batch.num_rows
        return rows
    for batch in reader:
        for record in python_rows(batch):
            plain = {f.name: _plain(record[f.name], f.type) for f in batch.schema}
            handle.write(jsontext.dumps(plain, ensure_ascii=False) + "\n")
            rows += 1
    return rows
