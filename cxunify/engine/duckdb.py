"""The DuckDB engine: one in-process connection, spilling to the output's temp folder."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from cxunify.config import EngineConfig, memory_limit_problem, threads_problem
from cxunify.errors import ResourceError, UserError
from cxunify.sql import ident, parquet

if TYPE_CHECKING:
    import pyarrow as pa

# DuckDB's own default takes 80% of the machine; a nightly job shares its box. Past this much
# memory DuckDB spills to the output's temp folder, which it does well: 1M input rows run
# within it, 10M rows a little slower. Raise it (config or environment) on a dedicated box.
DEFAULT_MEMORY_LIMIT = "2GB"

# output.hash_pii's digests, as SQL functions of a text, a list of texts, and a map of lists of
# texts (keys kept); both engines define them once the key is set (`set_pii_key`).
PII_DIGEST = "cx_pii_digest"
PII_DIGEST_LIST = "cx_pii_digest_list"
PII_DIGEST_MAP = "cx_pii_digest_map"
PII_VARIABLE = "cx_pii_key"

T = TypeVar("T")


class DuckDBEngine:
    """Runs SQL on an in-process DuckDB database.

    Thread count and memory limit come from the config, else ``CXUNIFY_THREADS`` and
    ``CXUNIFY_MEMORY_LIMIT`` (else all cores and ``DEFAULT_MEMORY_LIMIT``); spill files go
    to ``temp_dir`` so a run cleans up after itself.
    """

    name = "duckdb"

    def __init__(self, settings: EngineConfig | None = None, temp_dir: Path | None = None):
        settings = settings or EngineConfig()
        self.con = duckdb.connect(":memory:")
        threads = settings.threads or _env_threads("CXUNIFY_THREADS")
        memory = settings.memory_limit or _env_memory_limit("CXUNIFY_MEMORY_LIMIT")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.memory_limit = memory
        if memory:
            try:
                self.con.execute("SET memory_limit = $limit", {"limit": memory})
            except duckdb.Error:
                raise UserError(f"memory limit {memory!r} is not a size like '8GB'") from None
        if temp_dir is not None:
            temp_dir.mkdir(parents=True, exist_ok=True)
            self.con.execute("SET temp_directory = $dir", {"dir": str(temp_dir)})
        # DuckDB draws its own progress bar on stdout for long queries, which would corrupt
        # `--json` output; progress is the CLI's job.
        self.con.execute("SET enable_progress_bar = false")
        # Row order of inputs is part of provenance (row numbers), so keep it.
        self.con.execute("SET preserve_insertion_order = true")
        # An in-memory database checkpoints too (since DuckDB 1.4), each time 16 MB of changes
        # have gathered; here that only vacuums, since working tables are replaced, not
        # deleted from. An update paid 2 to 3 s for the one its stored records set off,
        # in the middle of a statement that takes 0.02 s (221k people, 1% new).
        self.con.execute("SET checkpoint_threshold = '1TB'")

    @contextmanager
    def _within_memory(self) -> Iterator[None]:
        """An operation DuckDB cannot spill is a limit to raise, and a full disk room to make,
        not bugs to report."""
        try:
            yield
        except duckdb.OutOfMemoryException:
            raise ResourceError(
                f"DuckDB ran out of memory within its limit of {self.memory_limit}; raise it "
                "with engine.memory_limit in the config or CXUNIFY_MEMORY_LIMIT (e.g. 8GB)"
            ) from None
        except duckdb.IOException as exc:
            full = _NO_SPACE.search(str(exc))
            if full is None:
                raise
            raise ResourceError(
                f"{full['path'] or 'a file'}: no space left on its disk; make room there, or "
                "write --out to a disk with more (a run writes its new output, and what does "
                "not fit in memory, beside the output folder, and replaces the old one last)"
            ) from None

    def _run(self, work: Callable[[], T]) -> T:
        """`work`, a call of the connection, on a thread of its own while this one waits.

        DuckDB runs a signal's Python handler inside a query and then raises its own 'Query
        interrupted' error: Ctrl-C reached a program calling cxunify as a RuntimeError, not
        KeyboardInterrupt, and the exception a scheduler's handler raises (Airflow's task
        timeout) was lost. Waiting here, the handler runs in this thread and its exception
        propagates; the query is interrupted and waited for on the way out. (Off the main
        thread no handler runs: the work is done in place.)"""
        if threading.current_thread() is not threading.main_thread():
            return work()
        outcome: list[tuple[bool, Any]] = []
        finished = threading.Event()

        def target() -> None:
            try:
                outcome.append((True, work()))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append((False, exc))
            finally:
                finished.set()

        # Waited for by an event, not Thread.join: a join a signal's exception interrupted
        # returns at once the next time (CPython), and the query would run on past it. Started
        # inside the try: start() waits for the thread to run, and a signal may end that wait
        # while the work goes on.
        try:
            threading.Thread(target=target, name="cxunify-duckdb", daemon=True).start()
            while not finished.wait(0.5):
                pass
        except BaseException:
            self.con.interrupt()
            finished.wait()
            raise
        done, value = outcome[0]
        if not done:
            raise value
        return value  # type: ignore[no-any-return]

    def execute(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> None:
        """Run a statement whose result is not needed (DDL, CREATE TABLE AS, COPY)."""
        with self._within_memory():
            self._run(lambda: self.con.execute(sql, params))

    def rows(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> list[tuple]:
        with self._within_memory():
            return self._run(lambda: self.con.execute(sql, params).fetchall())

    def scalar(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> Any:
        with self._within_memory():
            # fetchall: DuckDB 2 keeps a result fetched with fetchone open, and then refuses
            # the connection other work until it is read to the end.
            found = self._run(lambda: self.con.execute(sql, params).fetchall())
        return found[0][0] if found else None

    def arrow(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> pa.Table:
        """A query's result as an Arrow table, for results meant to be held in memory."""
        with self._within_memory():
            return self._run(lambda: self.con.sql(sql, params=params).to_arrow_table())

    def columns(
        self, relation_sql: str, params: dict[str, Any] | Sequence[Any] | None = None
    ) -> list[str]:
        """Column names of a table or of a query, without running it fully."""
        described = self.con.execute(f"SELECT * FROM {relation_sql} LIMIT 0", params)
        return [d[0] for d in described.description]

    def count(self, table_sql: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table_sql}"))

    def write_parquet(self, query_sql: str, path: Path | str, compression: str = "zstd") -> int:
        """Write a query's result to one Parquet file (streamed; never held in Python).

        Returns the rows the written file holds, read back from it.
        """
        codec = {"uncompressed": "uncompressed"}.get(compression, compression)
        self.execute(
            f"COPY ({query_sql}) TO $path (FORMAT parquet, COMPRESSION {ident(codec)})",
            {"path": str(path)},
        )
        return int(self.scalar(f"SELECT count(*) FROM {parquet('$p')}", {"p": str(path)}))

    def set_pii_key(self, key: str) -> None:
        """Define the digest functions of output.hash_pii: the hex SHA-256 of `key`, the byte
        0x1F and the value (NULL stays NULL). The key is bound, never part of a statement."""
        self.execute(f"SET VARIABLE {PII_VARIABLE} = $key", {"key": key})
        self.execute(
            f"CREATE OR REPLACE MACRO {PII_DIGEST}(v) AS "
            f"sha256(getvariable('{PII_VARIABLE}') || chr(31) || CAST(v AS VARCHAR))"
        )
        self.execute(
            f"CREATE OR REPLACE MACRO {PII_DIGEST_LIST}(l) AS "
            f"list_transform(l, lambda v: {PII_DIGEST}(v))"
        )
        self.execute(
            f"CREATE OR REPLACE MACRO {PII_DIGEST_MAP}(m) AS map_from_entries(list_transform("
            f"map_entries(m), lambda e: {{'key': e.key, 'value': {PII_DIGEST_LIST}(e.value)}}))"
        )

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make a small Arrow table built in Python a working table (a copy, not a view)."""
        self.con.register("cx_arrow_input", table)
        try:
            self.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM cx_arrow_input")
        finally:
            self.con.unregister("cx_arrow_input")

    def drop(self, *tables_sql: str) -> None:
        for name in tables_sql:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def close(self) -> None:
        self.con.close()


# DuckDB's message for a write the disk had no room for (ENOSPC), naming the file when it can.
_NO_SPACE = re.compile(
    r'(?:Could not write (?:to )?file \\?"(?P<path>[^"\\]+)\\?"[^\n]*)?No space left on device'
)


def _env_threads(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        threads = int(value)
    except ValueError:
        raise UserError(f"{name}={value!r} is not a whole number of threads") from None
    # 0 was taken for unset (all cores), a negative count reached DuckDB as a bug, and a
    # huge one hung the run.
    problem = threads_problem(threads)
    if problem:
        raise UserError(f"{name}={value!r}: {problem}")
    return threads


def _env_memory_limit(name: str) -> str:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return DEFAULT_MEMORY_LIMIT
    problem = memory_limit_problem(value)
    if problem:
        raise UserError(f"{name}: {problem}")
    return value
