"""The Spark engine: the stages' SQL, transpiled from DuckDB's dialect, run by a SparkSession.

Spark has no mutable tables of its own without a table format (Delta, Iceberg), so a cxunify
working table is a Parquet folder under the work directory, registered as a temporary view.
Each CREATE, INSERT or UPDATE writes a new version of that folder and points the view at it:
the plan of every later query starts from files, never from a growing lineage, which keeps the
iterative stages (connected components) as cheap in round ten as in round one.

Spark lacks Jaro–Winkler and Damerau–Levenshtein; they are vectorised pandas UDFs over
rapidfuzz, which computes the same values as DuckDB's functions.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq
from sqlglot import exp

from cxunify.config import SparkConfig
from cxunify.engine import dialect
from cxunify.engine.duckdb import PII_DIGEST, PII_DIGEST_LIST, PII_DIGEST_MAP
from cxunify.engine.hadoop import HadoopPath, is_uri
from cxunify.errors import CxunifyError, UserError
from cxunify.sentiment import SENTIMENT_UDF

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# SQL statements with their parameters, run in order.
Statements = Sequence[tuple[str, Any]]

INSTALL_HINT = "the spark engine needs pyspark: pip install 'cxunify[spark]'"

# Settings for a session cxunify creates itself; a session handed in is used as it is.
DEFAULT_CONF = {
    # DuckDB's semantics: a map or array lookup that misses is NULL, not an error.
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    # DuckDB writes TIMESTAMP without time zone; Spark reads it back as TIMESTAMP_NTZ.
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
}


def is_local_path(location: str | Path) -> bool:
    """True for a plain path on this machine. A URI, ``file://`` included, goes through
    Hadoop's FileSystem like any store."""
    return not is_uri(location)


def spark_session(settings: SparkConfig) -> SparkSession:
    """A SparkSession from the ``spark:`` settings (or the active one, under spark-submit)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    builder = SparkSession.builder.appName(settings.app_name)
    if settings.master:
        builder = builder.master(settings.master)
    conf = dict(DEFAULT_CONF)
    if (settings.master or "local").startswith("local"):
        # Python workers on this machine run this interpreter, which has cxunify installed
        # (PySpark reads the variable when the session starts; a user's own setting wins).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # A cluster's 200 shuffle partitions are mostly empty tasks on one machine.
        conf["spark.sql.shuffle.partitions"] = "8"
        # On a busy machine a long GC pause is not a lost executor: the driver and executor
        # share a JVM, and the default 120 s heartbeat timeout ends the whole run.
        conf["spark.network.timeout"] = "900s"
        conf["spark.executor.heartbeatInterval"] = "60s"
    for key, value in {**conf, **settings.conf}.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # Java missing or a bad setting: the JVM says why on one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot start Spark: {first}") from None


class SparkEngine:
    """Runs the stages' DuckDB-dialect SQL on Spark.

    `work_dir` holds the working tables (any path Spark can write: local, s3a://, hdfs://,
    abfss://); it is removed by `close`. A `session` handed in is left running on close.
    """

    name = "spark"

    def __init__(self, settings: SparkConfig, work_dir: str, session: SparkSession | None = None):
        self.owns_session = session is None
        self.spark = session if session is not None else spark_session(settings)
        self.work_dir = str(work_dir).rstrip("/")
        self.tables: dict[str, str] = {}  # view name -> the Parquet folder behind it
        self.variables: dict[str, dict[Any, Any]] = {}
        self.file_views: set[str] = set()  # views over files read with read_parquet()
        self._register_udfs()

    # --- the DuckDBEngine interface --------------------------------------------------------

    def execute(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> None:
        """Run a statement: CREATE [OR REPLACE] TABLE, INSERT, UPDATE, DROP, SET VARIABLE."""
        bound = _named(params)
        tree = dialect.parse(sql)
        if isinstance(tree, exp.Set):
            self._set_variable(tree, bound)
        elif isinstance(tree, exp.Create):
            self._create(tree, bound)
        elif isinstance(tree, exp.Insert):
            self._insert(tree, bound)
        elif isinstance(tree, exp.Update):
            self._update(tree, bound)
        elif isinstance(tree, exp.Drop):
            self.drop(tree.this.name)
        else:
            self._frame(tree, bound).collect()

    def rows(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> list[tuple]:
        return [tuple(row) for row in self._frame(dialect.parse(sql), _named(params)).collect()]

    def scalar(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def columns(self, relation_sql: str, params: dict[str, Any] | None = None) -> list[str]:
        return self._frame(dialect.parse(f"SELECT * FROM {relation_sql}"), params or {}).columns

    def count(self, table_sql: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table_sql}"))

    def write_parquet(self, query_sql: str, path: Path | str, compression: str = "zstd") -> int:
        """Write a query's result as Parquet at `path`; return the rows written.

        A local `path` becomes one Parquet file, like DuckDB's; one on a store (s3a://,
        hdfs://, abfss://, file://) a folder of part files, written in parallel and in the
        query's order (part-00000 first), which is how Spark and every reader of those stores
        expect a table.
        """
        frame = self._frame(dialect.parse(query_sql), {})
        target = str(path)
        if is_local_path(target):
            local = Path(target)
            parts = local.with_name(f".{local.name}.parts-{uuid.uuid4().hex[:8]}")
            # One partition keeps the ORDER BY of the query in the file.
            frame.coalesce(1).write.option("compression", compression).parquet(str(parts))
            (part,) = parts.glob("part-*.parquet")
            part.replace(local)
            shutil.rmtree(parts, ignore_errors=True)
            # The footer's count: a Spark read of the file is two jobs (its schema, its count).
            return int(pq.ParquetFile(local).metadata.num_rows)
        frame.write.mode("overwrite").option("compression", compression).parquet(target)
        return self.spark.read.parquet(_literal(target)).count()

    def drop(self, *tables_sql: str) -> None:
        for name in tables_sql:
            view = _unquote(name)
            self.spark.catalog.dropTempView(view)
            location = self.tables.pop(view, None)
            if location is not None:
                self._remove(location)

    def close(self) -> None:
        for view in [*self.tables, *self.file_views]:
            self.spark.catalog.dropTempView(view)
        self.file_views.clear()
        self.tables.clear()
        self._remove(self.work_dir)
        if self.owns_session:
            self.spark.stop()

    # --- what the stages need beyond SQL --------------------------------------------------

    def map_in_duckdb(
        self, source_sql: str, target_sql: str, setup: Statements, script: Statements, result: str
    ) -> None:
        """Build `target_sql` from `source_sql` one partition at a time, each in an in-memory
        DuckDB on the executor that holds it.

        For work that is row by row (standardising values) but written as DuckDB macros: the
        same SQL gives the same values, with no translation. Each task runs `setup` (macros,
        reference tables), registers its partition as the source table, runs `script` and
        returns the rows of the query `result`. The output's types are DuckDB's, found by a
        dry run on an empty partition here on the driver.
        """
        from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

        source, target = _unquote(source_sql), _unquote(target_sql)
        frame = self.spark.table(source)
        empty = to_arrow_schema(frame.schema).empty_table()
        schema = _duckdb_query(setup, script, result, source, empty).schema
        run = _duckdb_partitions(source, list(setup), list(script), result, schema)
        self._materialize(target, frame.mapInArrow(run, from_arrow_schema(schema)))

    def set_pii_key(self, key: str) -> None:
        """Define the digest functions of output.hash_pii, with DuckDB's values. They are
        Python UDFs holding the key, so the key reaches the executors inside the functions
        and never appears in a statement, a query plan or Spark's UI. (Spark runs no Python UDF
        inside a lambda, so lists and maps get functions of their own.)"""
        from pyspark.sql.functions import pandas_udf, udf

        digest, digest_list, digest_map = _pii_digests(key)
        self.spark.udf.register(PII_DIGEST, pandas_udf(digest, "string"))  # type: ignore[call-overload]
        self.spark.udf.register(PII_DIGEST_LIST, udf(digest_list, "array<string>"))
        self.spark.udf.register(PII_DIGEST_MAP, udf(digest_map, "map<string, array<string>>"))

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make a small Arrow table (built by the driver) a working table."""
        self._materialize(_unquote(name), self.spark.createDataFrame(table.to_pandas()))

    def adopt(self, source: Any, tables_sql: Iterable[str], handover_dir: Path) -> None:
        """Take over working tables from another engine (DuckDB) through Parquet files, written
        to the local `handover_dir` and, when the work directory is on a store, copied there
        for the executors to read."""
        handover_dir.mkdir(parents=True, exist_ok=True)
        for name in tables_sql:
            view = _unquote(name)
            path = handover_dir / f"{view}.parquet"
            source.write_parquet(f"SELECT * FROM {name}", path, "zstd")
            location = str(path)
            if is_uri(self.work_dir):
                location = f"{self.work_dir}/handover/{view}.parquet"
                HadoopPath(location, self.spark).upload(path)
                path.unlink()
            self.spark.read.parquet(_literal(location)).createOrReplaceTempView(view)
            self.tables[view] = location

    # --- statements -----------------------------------------------------------------------

    def _frame(self, tree: exp.Expression, params: dict[str, Any]) -> DataFrame:
        for reader in list(tree.find_all(exp.ReadParquet)):
            reader.replace(exp.to_identifier(self._file_view(reader, params)))
        args = {}
        for node in list(tree.find_all(exp.Placeholder)):
            value = params.get(node.name)
            if node.name not in params:
                raise CxunifyError(f"SQL parameter ${node.name} has no value")
            if isinstance(value, list | tuple) and not value:
                # An empty list has no element type to infer; every list the stages bind
                # holds text.
                node.replace(exp.cast(exp.Array(expressions=[]), "ARRAY<STRING>"))
            elif isinstance(value, datetime) and value.tzinfo is None:
                # A naive datetime is DuckDB's TIMESTAMP; bound as is, Spark would make it a
                # TIMESTAMP in the session's time zone.
                iso = exp.Literal.string(value.isoformat(sep=" "))
                node.replace(exp.cast(iso, "TIMESTAMP_NTZ", dialect="spark"))
            else:
                args[node.name] = list(value) if isinstance(value, tuple) else value
        return self.spark.sql(dialect.to_spark(tree, self.variables), args=args or None)

    def _file_view(self, node: exp.ReadParquet, params: dict[str, Any]) -> str:
        """``read_parquet($path, hive_partitioning = false)``: a view over the Parquet file or
        folder at that path (Spark takes no columns from the folders above it either)."""
        argument, *options = node.expressions
        if any(o.sql("duckdb").lower() != "hive_partitioning = false" for o in options):
            raise CxunifyError("Spark reads read_parquet with hive_partitioning = false only")
        if isinstance(argument, exp.RegexpReplace):  # sql.read_file's path taken literally
            argument = argument.this
        if isinstance(argument, exp.Placeholder):
            if argument.name not in params:
                raise CxunifyError(f"SQL parameter ${argument.name} has no value")
            location = str(params[argument.name])
        elif argument.is_string:
            location = argument.name
        else:
            raise CxunifyError("Spark reads read_parquet('path') or read_parquet($path) only")
        view = f"cx_file_{uuid.uuid5(uuid.NAMESPACE_URL, location).hex[:16]}"
        if view not in self.file_views:
            self.spark.read.parquet(_literal(location)).createOrReplaceTempView(view)
            self.file_views.add(view)
        return view

    def _set_variable(self, tree: exp.Set, params: dict[str, Any]) -> None:
        item = tree.expressions[0].this
        value = item.expression
        if not (isinstance(value, exp.Map) and isinstance(value.args.get("keys"), exp.Placeholder)):
            raise CxunifyError("Spark takes SET VARIABLE x = MAP($keys, $values) only")
        keys, values = params[value.args["keys"].name], params[value.args["values"].name]
        self.variables[item.this.name] = dict(zip(keys, values, strict=True))

    def _create(self, tree: exp.Create, params: dict[str, Any]) -> None:
        target = tree.this
        if isinstance(target, exp.Schema):  # CREATE TABLE t (column type, ...): empty
            view = target.this.name
            columns = [
                exp.alias_(exp.cast(exp.null(), d.args["kind"]), d.name) for d in target.expressions
            ]
            query = exp.select(*columns).where(exp.false())
        else:
            view = target.name
            query = tree.expression
        if query is None:
            raise CxunifyError(f"Spark cannot run this CREATE: {tree.sql('duckdb')[:80]}")
        if tree.args.get("kind", "").upper() == "VIEW":  # computed where it is read, as in DuckDB
            self.drop(view)
            self._frame(query, params).createOrReplaceTempView(view)
            return
        self._materialize(view, self._frame(query, params))

    def _insert(self, tree: exp.Insert, params: dict[str, Any]) -> None:
        view = tree.this.name
        source = tree.expression
        if isinstance(source, exp.Values):
            selects = [exp.select(*row.expressions) for row in source.expressions]
            query: exp.Expression = selects[0]
            for more in selects[1:]:
                query = exp.union(query, more, distinct=False)
        else:
            query = source
        self._append(view, self._frame(query, params), by_name=bool(tree.args.get("by_name")))

    def _update(self, tree: exp.Update, params: dict[str, Any]) -> None:
        """UPDATE t SET c = v WHERE p, as a new version of t with CASE WHEN p THEN v ELSE c."""
        if tree.args.get("from_") or tree.args.get("from"):
            raise CxunifyError("Spark runs UPDATE without FROM only; write it as a join")
        view = tree.this.name
        where = tree.args.get("where")
        assigned = {eq.this.name: eq.expression for eq in tree.expressions}
        projections = []
        for column in self.spark.table(view).columns:
            ident = exp.column(column, quoted=True)
            if column in assigned:
                value = assigned[column]
                if where is not None:
                    value = exp.Case().when(where.this.copy(), value.copy()).else_(ident)
                projections.append(exp.alias_(value, column, quoted=True))
            else:
                projections.append(ident)
        query = exp.select(*projections).from_(exp.to_table(view, quoted=True))
        self._materialize(view, self._frame(query, params))

    # --- storage --------------------------------------------------------------------------

    def _materialize(self, view: str, frame: DataFrame) -> None:
        old = self.tables.get(view)
        location = f"{self.work_dir}/{view}/{uuid.uuid4().hex[:12]}"
        frame.write.parquet(location)
        # Read back with the schema it was written with: inferring it is another job.
        self.spark.read.schema(frame.schema).parquet(_literal(location)).createOrReplaceTempView(
            view
        )
        self.tables[view] = location
        if old is not None:
            self._remove(old)

    def _append(self, view: str, frame: DataFrame, by_name: bool = False) -> None:
        from pyspark.sql.functions import lit

        schema = self.spark.table(view).schema
        if by_name:  # INSERT ... BY NAME: a column the query lacks is NULL
            unknown = set(frame.columns) - set(schema.names)
            if unknown:
                raise CxunifyError(f"INSERT into {view} BY NAME: no column {sorted(unknown)[0]}")
            frame = frame.select(
                *(frame[n] if n in frame.columns else lit(None).alias(n) for n in schema.names)
            )
        if len(frame.columns) != len(schema.fields):
            raise CxunifyError(
                f"INSERT into {view}: {len(frame.columns)} values for {len(schema.fields)} columns"
            )
        renamed = frame.toDF(*schema.names)  # INSERT matches columns by position
        aligned = renamed.select(*(renamed[f.name].cast(f.dataType).alias(f.name) for f in schema))
        location = self.tables.get(view)
        if location is None:
            raise CxunifyError(f"INSERT into {view}, which cxunify did not create")
        aligned.write.mode("append").parquet(location)
        self.spark.read.schema(schema).parquet(_literal(location)).createOrReplaceTempView(view)

    def _remove(self, location: str) -> None:
        if is_local_path(location):
            shutil.rmtree(location, ignore_errors=True)
        else:
            HadoopPath(location, self.spark).remove_tree()

    def _register_udfs(self) -> None:
        from pyspark.sql.functions import pandas_udf

        jaro_winkler, damerau_levenshtein, sentiment = _udfs()
        # The ignores: pyspark's stubs type only the functionType forms of pandas_udf, not the
        # type-hinted pandas_udf(f, returnType) that Spark 3+ documents (SPARK-42235).
        self.spark.udf.register(
            dialect.JARO_WINKLER_UDF,
            pandas_udf(jaro_winkler, "double"),  # type: ignore[call-overload]
        )
        self.spark.udf.register(
            dialect.DAMERAU_LEVENSHTEIN_UDF,
            pandas_udf(damerau_levenshtein, "bigint"),  # type: ignore[call-overload]
        )
        self.spark.udf.register(
            SENTIMENT_UDF,
            pandas_udf(sentiment, "double"),  # type: ignore[call-overload]
        )


def _udfs() -> tuple[Any, Any, Any]:
    """The pandas UDFs, defined here so they are shipped by value: a Python worker then needs
    pandas, rapidfuzz and vaderSentiment, not cxunify (whose import would cost each worker
    seconds)."""

    def pairwise(left: Any, right: Any, scorer: Any, empty: Any, dtype: str, numpy_type: Any):
        import pandas as pd
        from rapidfuzz.process import cpdist

        present = left.notna() & right.notna()
        result = pd.Series(pd.NA, index=left.index, dtype=dtype)
        if present.any():
            # float64: DuckDB's thresholds (>= 0.80) meet values like 0.7999999999999999.
            scores = cpdist(
                left[present].tolist(),
                right[present].tolist(),
                scorer=scorer,
                workers=1,
                dtype=numpy_type,
            )
            result[present] = scores
            result[present & (left == "") & (right == "")] = empty
        return result

    def jaro_winkler(left: pd.Series, right: pd.Series) -> pd.Series:
        import numpy as np
        from rapidfuzz.distance import JaroWinkler

        # DuckDB scores two empty strings 0, rapidfuzz 1.
        return pairwise(left, right, JaroWinkler.similarity, 0.0, "Float64", np.float64)

    def damerau_levenshtein(left: pd.Series, right: pd.Series) -> pd.Series:
        import numpy as np
        from rapidfuzz.distance import DamerauLevenshtein

        return pairwise(left, right, DamerauLevenshtein.distance, 0, "Int64", np.int64)

    analyzers: list[Any] = []  # one per Python worker task, not one per batch of texts

    def sentiment(texts: pd.Series) -> pd.Series:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        if not analyzers:
            analyzers.append(SentimentIntensityAnalyzer())
        polarity = analyzers[0].polarity_scores
        # VADER is Python by nature; this runs once per distinct text, on the executors.
        return pd.Series(
            [None if text is None else polarity(text)["compound"] for text in texts],
            index=texts.index,
            dtype="float64",
        )

    return jaro_winkler, damerau_levenshtein, sentiment


def _literal(location: str) -> str:
    """`location` as Spark reads it to mean that one file or folder: Hadoop takes a path
    holding `{}[]*?` as a glob (an output folder `out[1]` made the handed-over tables 'not
    found'); a backslash before each such character stands for it."""
    return re.sub(r"([{}\[\]*?\\])", r"\\\1", location)


def _pii_digests(key: str) -> tuple[Any, Any, Any]:
    """output.hash_pii's digests of a text, a list of texts and a map of lists (as DuckDB's
    macros: `DuckDBEngine.set_pii_key`), defined here so they are shipped by value."""

    def one(value: Any) -> str | None:
        import hashlib

        if value is None:
            return None
        return hashlib.sha256(f"{key}\x1f{value}".encode()).hexdigest()

    def texts(values: pd.Series) -> pd.Series:
        return pd.Series([one(v) for v in values], index=values.index, dtype="object")

    # Unannotated: Spark reads a plain UDF's type hints as a request for a pandas UDF.
    def listed(values):  # type: ignore[no-untyped-def]
        return None if values is None else [one(v) for v in values]

    def mapped(entries):  # type: ignore[no-untyped-def]
        return None if entries is None else {k: listed(v) for k, v in entries.items()}

    return texts, listed, mapped


def _duckdb_query(
    setup: Statements, script: Statements, result: str, source: str, rows: pa.Table
) -> pa.Table:
    """`result` over `rows` registered as `source`, after `setup` and `script` (on the driver)."""
    import duckdb

    con = duckdb.connect()
    try:
        for sql, params in setup:
            con.execute(sql, params)
        con.register(source, rows)
        for sql, params in script:
            con.execute(sql, params)
        return con.sql(result).to_arrow_table()
    finally:
        con.close()


def _duckdb_partitions(
    source: str, setup: Statements, script: Statements, result: str, schema: pa.Schema
) -> Any:
    """The function mapInArrow runs on each partition; shipped by value, so a worker needs
    duckdb and pyarrow, not cxunify."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        import duckdb
        import pyarrow as pa

        partition = list(batches)
        if not partition:
            return
        con = duckdb.connect()
        try:
            # Spark runs a task per core; one DuckDB thread each keeps to that.
            con.execute("SET threads = 1")
            con.execute("SET preserve_insertion_order = true")
            for sql, params in setup:
                con.execute(sql, params)
            con.register(source, pa.Table.from_batches(partition))
            for sql, params in script:
                con.execute(sql, params)
            for batch in con.sql(result).to_arrow_reader(65_536):
                yield batch.cast(schema)
        finally:
            con.close()

    return run


def _named(params: dict[str, Any] | Sequence[Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise CxunifyError("the Spark engine takes named parameters ($name) only")
    return params


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name
