"""Engines execute the SQL the stages build. DuckDB in-process is the default; Spark runs the
same SQL, transpiled, when the data outgrows one machine (`cxunify.engine.spark`)."""

from cxunify.engine.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine"]
