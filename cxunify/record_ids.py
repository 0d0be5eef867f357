"""Source record ids as every command reads them: ingest, an update's deletions, explain's
``--record`` and evaluate's truth file compare ids made by the same rules, so that one record
has one id whichever file or command names it.

An id loses its control characters (a NUL) and the whitespace at its ends (a tab or a
carriage return an exporter left in, a no-break space from a spreadsheet) and an apostrophe
before a number (a spreadsheet's mark that the cell is text), and a whole number held as a
floating-point number (a Parquet DOUBLE, a JSON ``1.0``) reads as its digits (``1``), as an
Excel number cell does.
Text stays as written: ``1.0`` in a CSV file is the id ``1.0``. The ids a state stores were
made by these rules: the module is among those an update checks (update.STORED_BY).
"""

from __future__ import annotations

import re

# Whitespace an id loses at either end: Unicode's (tab, line breaks, no-break and other
# spaces) and the invisible zero-width space and byte order mark that travel with pasted text.
ID_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200C))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

# Control characters an id loses wherever they are (a NUL or a bell a legacy system left in:
# 'C6\x00' was stored so, and `explain crm:C6` found no record), as the fields lose them.
_ID_CONTROLS = "[\\x00-\\x08\\x0e-\\x1f\\x7f]"  # (an RE2 and a Python pattern alike)

# DuckDB's types of numbers that may hold a fraction, whose text an id must not take as is.
_FRACTIONAL = ("FLOAT", "DOUBLE", "DECIMAL")


def clean_id(text: str) -> str:
    """`text` without whitespace at its ends, as ids are stored, and without the apostrophe
    a spreadsheet or an exporter puts before a number to keep it text (Shopify's
    ``'7284919287000``), which the system itself does not show.

    >>> clean_id("\\tC1\\u00a0"), clean_id("'7284919287000"), clean_id("'C1")
    ('C1', '7284919287000', "'C1")
    """
    trimmed = re.sub(_ID_CONTROLS, "", text).strip(ID_SPACE)
    if trimmed[:1] == "'" and trimmed[1:2] in tuple("0123456789"):
        return trimmed[1:]
    return trimmed


def clean_id_sql(text_sql: str) -> str:
    """SQL for the id text `text_sql` as `clean_id` makes it; NULL when none is left."""
    bare = f"regexp_replace({text_sql}, '{_ID_CONTROLS}', '', 'g')"
    return f"NULLIF(regexp_replace(trim({bare}, '{ID_SPACE}'), '^''([0-9])', '\\1'), '')"


def number_text_sql(double_sql: str) -> str:
    """SQL for the text of the DOUBLE `double_sql`: a whole number as its digits (1.0 is 1,
    1e20 is 100000000000000000000, from the shortest decimal that reads back as the same
    double, so it is the same text in every run), any other as DuckDB writes it (1.5)."""
    # (Beyond 38 digits, which no id holds, DuckDB's own text: 1e+40.)
    return (
        f"CASE WHEN isfinite({double_sql}) AND {double_sql} = trunc({double_sql}) THEN "
        f"coalesce(TRY_CAST(TRY_CAST({double_sql}::VARCHAR AS DECIMAL(38, 0)) AS VARCHAR), "
        f"{double_sql}::VARCHAR) ELSE {double_sql}::VARCHAR END"
    )


def as_text_sql(column_sql: str, type_name: str) -> str:
    """SQL for the value of `column_sql`, of DuckDB type `type_name`, as text: a whole number
    of a type that may hold a fraction as its digits (2.00 is 2), anything else cast to
    VARCHAR."""
    if type_name.startswith("DECIMAL"):  # exact: not by way of a DOUBLE
        return (
            f"CASE WHEN {column_sql} = trunc({column_sql}) THEN "
            f"CAST({column_sql} AS HUGEINT)::VARCHAR ELSE {column_sql}::VARCHAR END"
        )
    if not type_name.startswith(_FRACTIONAL):
        return f"{column_sql}::VARCHAR"
    # A FLOAT goes by its own shortest text (3.1 is 3.1, not 3.0999999046325684).
    return number_text_sql(f"{column_sql}::VARCHAR::DOUBLE")
