"""Ad-hoc SQL over an output folder, for ``cxunify sql`` and for Python callers.

Views are created fresh over the folder's Parquet files on an in-memory database, so queries
work wherever the folder has been moved, without the DuckDB CLI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Literal

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from cxunify.errors import OutputError, UserError
from cxunify.output import MANIFEST, create_views

ExportFormat = Literal["table", "csv", "json", "parquet"]


def open_output(out_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with a view per output table of `out_dir`."""
    if not (out_dir / MANIFEST).is_file():
        raise OutputError(f"{out_dir}: not a cxunify output folder (no {MANIFEST})")
    con = duckdb.connect(":memory:")
    create_views(con, out_dir)
    return con


class QueryResult:
    """A running query; iterate ``reader`` for Arrow batches. Holds its connection open."""

    def __init__(self, con: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader):
        self.con = con
        self.reader = reader

    def close(self) -> None:
        self.con.close()


def run_query(out_dir: Path, sql: str) -> QueryResult:
    """Run `sql` over the output views; the result streams in Arrow batches."""
    con = open_output(out_dir)
    try:
        return QueryResult(con, con.sql(sql).to_arrow_reader(65_536))
    except duckdb.Error as exc:
        con.close()
        message = str(exc).strip().splitlines()[0]
        raise UserError(f"SQL error: {message}") from None


def export(reader: pa.RecordBatchReader, fmt: ExportFormat, target: Path | None) -> int:
    """Write a query result as csv, json (one object per line) or parquet; return rows."""
    if fmt == "parquet":
        if target is None:
            raise UserError("--format parquet needs --to FILE")
        rows = 0
        with pq.ParquetWriter(str(target), reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        return rows
    handle: IO[str]
    handle = target.open("w", encoding="utf-8", newline="") if target else sys.stdout
    try:
        return _write_text(reader, fmt, handle)
    finally:
        if target:
            handle.close()


def _write_text(reader: pa.RecordBatchReader, fmt: str, handle: IO[str]) -> int:
    rows = 0
    if fmt == "csv":
        import io

        first = True
        for batch in reader:
            buffer = io.BytesIO()
            pa_csv.write_csv(
                pa.Table.from_batches([batch], reader.schema),
                buffer,
                pa_csv.WriteOptions(include_header=first),
            )
            handle.write(buffer.getvalue().decode("utf-8"))
            first = False
            rows += batch.num_rows
        if first:
            handle.write(",".join(f'"{n}"' for n in reader.schema.names) + "\n")
        return rows
    for batch in reader:
        for record in batch.to_pylist():
            handle.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
            rows += 1
    return rows
