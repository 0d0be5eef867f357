"""Engines execute the SQL the stages build. DuckDB in-process is the default; Spark runs the
same SQL, transpiled, when the data outgrows one machine (`cxunify.engine.spark`)."""

from importlib.util import find_spec

from cxunify.engine.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "dialect_available"]

# What `pip install 'cxunify[spark]'` adds.
SPARK_EXTRA = ("pyspark", "sqlglot", "rapidfuzz")


def dialect_available() -> bool:
    """True when the spark extra (pyspark, sqlglot, rapidfuzz) is installed."""
    return all(find_spec(name) is not None for name in SPARK_EXTRA)
