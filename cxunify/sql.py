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


# DuckDB reads ``key=value`` folders in a path as columns, and lets such a folder's value
# replace a column of the file with the same name (exports/country=DE/crm.csv would make every
# row's country DE). A file is read as it is.
NO_FOLDER_COLUMNS = "hive_partitioning = false"


def read_file(function: str, source: str, *options: str) -> str:
    """A call of DuckDB's table function `function` (read_csv, read_parquet, ...) on `source`
    (a ``$parameter``, or a quoted path) with `options`, taking no columns from folders.

    >>> print(read_file("read_csv", "$path", "header = true"))
    read_csv($path, header = true, hive_partitioning = false)
    """
    return f"{function}({', '.join([source, *options, NO_FOLDER_COLUMNS])})"


def parquet(source: str, *options: str) -> str:
    """``read_parquet`` of `source` with `options`, taking no columns from folders (an output
    written under a nightly job's ``day=2026-12-05/`` would gain a ``day`` column).

    >>> print(parquet("$path"))
    read_parquet($path, hive_partitioning = false)
    """
    return read_file("read_parquet", source, *options)
