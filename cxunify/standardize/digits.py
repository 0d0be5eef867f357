"""Decimal digits of any script as ASCII digits, as a DuckDB macro.

Exports from the Gulf, Iran, India or a Japanese form write ``٠٥٠ ١٢٣ ٤٥٦٧``, ``۰۹۱۲``,
``१२३४५`` or ``０９０``: the same numbers in other digits. The regular expressions of every
standardiser read ``\\d`` and ``[0-9]`` as ASCII only, so without this those values are read as
junk or, worse, with their ASCII characters alone. ``cx_ascii_digits(x)`` maps every Unicode
decimal digit (general category Nd, per Python's ``unicodedata``) to its ASCII digit and
leaves everything else as it is.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

import duckdb


@functools.cache
def non_ascii_digits() -> tuple[str, ...]:
    """Every Unicode decimal digit outside ASCII, in code point order."""
    # Cached: each engine (each run, each test) installs the macros. A regex finds them:
    # \d matches exactly the characters with a decimal value (Unicode's Nd), and scanning
    # every code point with it takes a seventh of asking unicodedata of each (1.15 s on a
    # busy machine, a second of every command that standardises).
    everything = "".join(map(chr, range(0x80, sys.maxunicode + 1)))
    return tuple(re.findall(r"\d", everything))


@functools.cache
def _macro() -> str:
    digits = non_ascii_digits()
    by_value = ["".join(d for d in digits if unicodedata.decimal(d) == v) for v in range(10)]
    # Ten regexp_replace calls with a character class each cost a tenth of one translate()
    # over all 660 digits, which builds its lookup table afresh for every row.
    mapped = "x"
    for value, chars in enumerate(by_value):
        mapped = f"regexp_replace({mapped}, '[{chars}]', '{value}', 'g')"
    # Pure ASCII (byte length = length) and text without such digits pass untouched, at
    # almost no cost.
    return f"""
    CREATE OR REPLACE MACRO cx_ascii_digits(x) AS
        CASE WHEN strlen(x) = length(x) THEN x
             WHEN NOT regexp_matches(x, '[{"".join(digits)}]') THEN x
             ELSE {mapped}
        END"""


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``cx_ascii_digits(x)`` on `con` (``'+٩٧١ ٥٠'`` gives ``'+971 50'``).

    Other modules' installs call this first: a macro's body is bound when it is created.
    """
    con.execute(_macro())
