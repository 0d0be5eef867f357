"""Engines execute the SQL the stages build. DuckDB in-process is the default."""

from cxunify.engine.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine"]
