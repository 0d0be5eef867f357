"""Small pieces for building SQL safely: identifiers are quoted here, values are always bound.

Nothing from a config or a file header is ever pasted into SQL unquoted.
"""

from __future__ import annotations

import re
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


# DuckDB reads a path holding `*`, `?` or `[` as a glob: an output folder `out[1]` was read as
# `out1`, a file `a[1].csv` as `a1.csv`. Each such character in brackets stands for itself.
_GLOB_CHARACTERS = re.compile(r"([\[*?])")
_LITERAL_SQL = "regexp_replace({}, '([\\[*?])', '[\\1]', 'g')"


def literal_path(path: str) -> str:
    """`path` as a DuckDB file reader takes it to mean that one file, not a glob.

    >>> print(literal_path("out[1]/a*.parquet"))
    out[[]1]/a[*].parquet
    """
    return _GLOB_CHARACTERS.sub(r"[\1]", path)


def read_file(function: str, source: str, *options: str, listed: bool = False) -> str:
    """A call of DuckDB's table function `function` (read_csv, read_parquet, ...) on `source`
    with `options`, taking no columns from folders. `source` is a ``$parameter`` holding a
    path (`listed`: a list of paths), each read as that one file (see `literal_path`), or a
    quoted `literal_path`.

    >>> print(read_file("read_csv", "$path", "header = true"))
    read_csv(regexp_replace($path, '([\\[*?])', '[\\1]', 'g'), header = true, \
hive_partitioning = false)
    """
    if re.fullmatch(r"\$\w+", source):
        source = (
            f"list_transform({source}, lambda p: {_LITERAL_SQL.format('p')})"
            if listed
            else _LITERAL_SQL.format(source)
        )
    return f"{function}({', '.join([source, *options, NO_FOLDER_COLUMNS])})"


def parquet(source: str, *options: str, listed: bool = False) -> str:
    """``read_parquet`` of `source` with `options`, taking no columns from folders (an output
    written under a nightly job's ``day=2026-12-05/`` would gain a ``day`` column); `source`
    as `read_file` takes it.

    >>> print(parquet("'out/links.parquet'"))
    read_parquet('out/links.parquet', hive_partitioning = false)
    """
    return read_file("read_parquet", source, *options, listed=listed)
