"""Small pieces for building SQL safely: identifiers are quoted here, values are always bound.

Nothing from a config or a file header is ever pasted into SQL unquoted.
"""

from __future__ import annotations

from collections.abc import Iterable

# Every table cxunify creates inside the engine starts with this, so they never clash with a
# user's own tables and are easy to find when debugging.
PREFIX = "cx_"


def ident(name: str) -> str:
    '''Quote an identifier for DuckDB and Spark SQL; embedded quotes are doubled.

    >>> print(ident('e-mail "x"'))
    "e-mail ""x"""
    '''
    return '"' + name.replace('"', '""') + '"'


def table(name: str) -> str:
    """The quoted name of one of cxunify's working tables."""
    return ident(PREFIX + name)


def column_list(names: Iterable[str]) -> str:
    return ", ".join(ident(n) for n in names)


def parquet(source: str, *options: str) -> str:
    """``read_parquet`` of `source` (a ``$parameter``, or a quoted path) with `options`, taking
    no columns from the folders above the file: DuckDB otherwise reads ``day=2026-12-05/`` in a
    path as a column ``day``, which every file of an output written under such a folder (a
    nightly job's dated folders) would gain.

    >>> print(parquet("$path"))
    read_parquet($path, hive_partitioning = false)
    """
    return f"read_parquet({', '.join([source, *options, 'hive_partitioning = false'])})"
