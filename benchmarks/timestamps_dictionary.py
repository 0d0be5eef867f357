"""Timestamps and amounts read inline against read once per distinct value (a dictionary).

    python benchmarks/timestamps_dictionary.py [--rows 1000000]

The standardize stage reads a record's timestamps that are not ISO 8601, and its amounts,
through a dictionary of their distinct values (`cxunify.standardize.dictionary_sql`) instead of
parsing each row's inline. This times both ways in one DuckDB connection on generated columns
(US-style `03/15/2024 10:22` and ISO timestamps in three columns, one a third filled, one
empty; plain `19.99` and `$1,234.50` amounts), checks they give the same values, and prints
seconds and the ratio. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time

import duckdb

from cxunify.standardize import _ISO_TIMESTAMP, install_macros

TIMESTAMPS = {
    "us": "strftime(TIMESTAMP '2020-01-01' + to_seconds(i * 37), '%m/%d/%Y %H:%M')",
    "iso": "strftime(TIMESTAMP '2020-01-01' + to_seconds(i * 37), '%Y-%m-%d %H:%M:%S')",
}
AMOUNTS = {
    "plain": "printf('%.2f', (i * 7919 % 50000) / 100.0)",
    "dollar": "printf('$%,.2f', (i * 7919 % 500000) / 100.0)",
}
COLUMNS = ("created_at", "resolved_at", "last_active_at")


def timed(con: duckdb.DuckDBPyConnection, *statements: str) -> float:
    began = time.perf_counter()
    for sql in statements:
        con.execute(sql)
    return time.perf_counter() - began


def iso_or(column: str, otherwise: str) -> str:
    return (
        f"CASE WHEN regexp_full_match(n.{column}, '{_ISO_TIMESTAMP}') "
        f"THEN TRY_CAST(replace(rtrim(n.{column}, 'Z'), 'T', ' ') AS TIMESTAMP) "
        f"ELSE {otherwise} END"
    )


def timestamps(con: duckdb.DuckDBPyConnection, rows: int, written: str) -> tuple[float, float]:
    con.execute(
        f"CREATE OR REPLACE TABLE n AS SELECT i AS k, false AS dayfirst, {written} AS created_at, "
        f"CASE WHEN i % 3 = 0 THEN {written} END AS resolved_at, "
        f"NULL::VARCHAR AS last_active_at FROM range({rows}) t(i)"
    )
    inline = ", ".join(
        f"{iso_or(c, f'cx_parse_timestamp(n.{c}, n.dayfirst)')} AS {c}" for c in COLUMNS
    )
    distinct = " UNION ".join(
        f"SELECT {c} AS v, dayfirst FROM n WHERE NOT regexp_full_match({c}, '{_ISO_TIMESTAMP}')"
        for c in COLUMNS
    )
    joined = ", ".join(f"{iso_or(c, f'd{i}.parsed')} AS {c}" for i, c in enumerate(COLUMNS))
    joins = " ".join(
        f"LEFT JOIN d d{i} ON d{i}.v = n.{c} AND d{i}.dayfirst = n.dayfirst"
        for i, c in enumerate(COLUMNS)
    )
    a = timed(con, f"CREATE OR REPLACE TABLE a AS SELECT k, {inline} FROM n")
    b = timed(
        con,
        "CREATE OR REPLACE TABLE d AS SELECT v, dayfirst, cx_parse_timestamp(v, dayfirst) "
        f"AS parsed FROM ({distinct})",
        f"CREATE OR REPLACE TABLE b AS SELECT k, {joined} FROM n {joins}",
    )
    check(con, COLUMNS)
    return a, b


def amounts(con: duckdb.DuckDBPyConnection, rows: int, written: str) -> tuple[float, float]:
    con.execute(
        f"CREATE OR REPLACE TABLE n AS SELECT i AS k, {written} AS amount, "
        f"CASE WHEN i % 2 = 0 THEN 'usd' END AS currency FROM range({rows}) t(i)"
    )
    a = timed(
        con,
        "CREATE OR REPLACE TABLE a AS SELECT k, cx_amount(amount) AS amount, "
        "cx_currency(currency, cx_amount_currency_written(amount)) AS currency FROM n",
    )
    b = timed(
        con,
        "CREATE OR REPLACE TABLE d AS SELECT v, cx_amount(v) AS amount, "
        "cx_amount_currency_written(v) AS written "
        "FROM (SELECT DISTINCT amount AS v FROM n WHERE amount IS NOT NULL)",
        "CREATE OR REPLACE TABLE b AS SELECT k, d.amount, cx_currency(currency, d.written) "
        "AS currency FROM n LEFT JOIN d ON d.v = n.amount",
    )
    check(con, ("amount", "currency"))
    return a, b


def check(con: duckdb.DuckDBPyConnection, columns: tuple[str, ...]) -> None:
    same = " AND ".join(f"a.{c} IS NOT DISTINCT FROM b.{c}" for c in columns)
    differ = con.execute(f"SELECT count(*) FROM a JOIN b USING (k) WHERE NOT ({same})").fetchall()[
        0
    ][0]
    if differ:
        raise SystemExit(f"the two ways differ on {differ} rows")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    con = duckdb.connect()
    install_macros(con)
    for label, written in TIMESTAMPS.items():
        a, b = timestamps(con, args.rows, written)
        print(f"timestamps {label}: inline {a:.2f} s, dictionary {b:.2f} s, ratio {b / a:.2f}")
    for label, written in AMOUNTS.items():
        a, b = amounts(con, args.rows, written)
        print(f"amounts {label}: inline {a:.2f} s, dictionary {b:.2f} s, ratio {b / a:.2f}")


if __name__ == "__main__":
    main()
