"""Postal addresses as DuckDB macros: matching forms of street, city, postcode and state.

"123 North Main Street, Apt. #4" and "123 N Main St Unit 4" are the same door. The macros
reduce each part to one spelling (USPS-style abbreviations, which also cover Australian and
British street types) so equal addresses compare equal in SQL. They are matching forms only;
the display form of an address is the trimmed input.

Everything runs inside DuckDB. Reference lists are bound into session variables read by the
macros with ``getvariable``, so :func:`install` must run on every connection that uses them.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cxunify.sql import table
from cxunify.standardize import digits
from cxunify.standardize.names import SEPARATORS
from cxunify.standardize.reference import DATA_DIR, PLACEHOLDERS, read_pairs

STREET_WORDS_CSV = DATA_DIR / "street_suffixes.csv"
STATES_CSV = DATA_DIR / "us_states.csv"

# City words whose abbreviation is universal: "St. Louis", "Ft Worth", "Mt Isa".
CITY_WORDS: dict[str, str] = {"st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount"}
# Placeholders typed into address fields; compared with the standardised form, with and
# without its spaces.
JUNK_ADDRESS_VALUES: tuple[str, ...] = (
    *PLACEHOLDERS,
    "no address",
    "noaddress",
    "address",
)
# Postcodes that mean "none" once upper-cased and stripped to letters and digits.
JUNK_POSTCODES: tuple[str, ...] = (
    "NA",
    "NONE",
    "NULL",
    "UNKNOWN",
    "TEST",
    "XXX",
    "XXXX",
    "XXXXX",
    "NIL",
    "NAN",
    "TBD",
    "UNK",
)

_MACROS = r"""
-- `list_transform([e], lambda v: ...)[1]` binds `e` once: a macro argument is otherwise
-- pasted in, and computed, at every place the macro uses it.

-- strip_accents leaves letters that are not "letter + accent" alone; spell those out too.
CREATE OR REPLACE MACRO _cx_addr_fold(x) AS
    translate(
        replace(replace(replace(replace(strip_accents(lower(trim(CAST(x AS VARCHAR)))),
                                        'ß', 'ss'), 'æ', 'ae'), 'œ', 'oe'), 'þ', 'th'),
        'øłđðı', 'olddi');

-- Words of an address part: apostrophes and dots vanish ("O'Connell" -> "oconnell"), any
-- other punctuation separates words ("12-14", "1/23", "#4").
CREATE OR REPLACE MACRO _cx_addr_words(x) AS
    list_filter(
        string_split(
            regexp_replace(regexp_replace(_cx_addr_fold(x), '[''’‘`´ʼ.]', '', 'g'),
                           '[' || getvariable('cx_addr_separators') || ']+', ' ', 'g'),
            ' '),
        lambda t: t <> '');

-- Standardised text, or NULL when empty or a placeholder however it was punctuated ("N/A"
-- becomes "n a", which is "na" without spaces).
CREATE OR REPLACE MACRO _cx_addr_unjunk(s) AS
    list_transform(
        [s],
        lambda v: CASE
            WHEN v = '' THEN NULL
            WHEN list_contains(getvariable('cx_addr_junk'), v) THEN NULL
            WHEN list_contains(getvariable('cx_addr_junk'), replace(v, ' ', '')) THEN NULL
            ELSE v END)[1];

CREATE OR REPLACE MACRO cx_street_std(x) AS
    _cx_addr_unjunk(array_to_string(
        list_transform(_cx_addr_words(x),
                       lambda w: coalesce(getvariable('cx_street_words')[w], w)),
        ' '));

CREATE OR REPLACE MACRO cx_city_std(x) AS
    _cx_addr_unjunk(array_to_string(
        list_transform(_cx_addr_words(x),
                       lambda w: coalesce(getvariable('cx_city_words')[w], w)),
        ' '));

-- A postcode read from a numeric CSV column arrives as "2134.0", whose ".0" is not part of it.
-- Nine digits is a US ZIP+4, matched on its first five.
CREATE OR REPLACE MACRO cx_postcode_std(x) AS
    list_transform(
        [upper(regexp_replace(
            regexp_replace(strip_accents(trim(cx_ascii_digits(CAST(x AS VARCHAR)))),
                           '^(\d+)\.0+$', '\1'),
            '[^A-Za-z0-9]', '', 'g'))],
        lambda s: CASE
            WHEN s = '' THEN NULL
            WHEN regexp_full_match(s, '0+') THEN NULL
            WHEN list_contains(getvariable('cx_addr_junk_postcodes'), s) THEN NULL
            WHEN regexp_full_match(s, '\d{9}') THEN left(s, 5)
            ELSE s END)[1];

CREATE OR REPLACE MACRO cx_state_std(x) AS
    list_transform([_cx_addr_unjunk(array_to_string(_cx_addr_words(x), ' '))],
                   lambda s: coalesce(getvariable('cx_states')[s], s))[1];
"""


def _load_map(
    con: duckdb.DuckDBPyConnection, source: Path, name: str, key: str, value: str
) -> None:
    """Copy a reference CSV into table ``cx_ref_<name>`` and variable ``cx_<name>``."""
    keys, values = read_pairs(source)
    ref = table(f"ref_{name}")
    con.execute(f"CREATE OR REPLACE TABLE {ref} ({key} VARCHAR PRIMARY KEY, {value} VARCHAR)")
    con.execute(f"INSERT INTO {ref} SELECT unnest($k), unnest($v)", {"k": keys, "v": values})
    # The variable name comes from this module's own constants, never from data.
    con.execute(f"SET VARIABLE cx_{name} = (SELECT map(list({key}), list({value})) FROM {ref})")


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the address macros on `con`.

    ``cx_street_std(x)``, ``cx_city_std(x)``, ``cx_postcode_std(x)`` and ``cx_state_std(x)``,
    plus the tables ``cx_ref_street_words`` and ``cx_ref_states`` they were built from.
    """
    digits.install(con)
    _load_map(con, STREET_WORDS_CSV, "street_words", "word", "abbrev")
    _load_map(con, STATES_CSV, "states", "name", "code")
    con.execute(
        "SET VARIABLE cx_city_words = map($k, $v)",
        {"k": list(CITY_WORDS), "v": list(CITY_WORDS.values())},
    )
    con.execute("SET VARIABLE cx_addr_junk = $v", {"v": list(JUNK_ADDRESS_VALUES)})
    con.execute("SET VARIABLE cx_addr_separators = $v", {"v": SEPARATORS})
    con.execute("SET VARIABLE cx_addr_junk_postcodes = $v", {"v": list(JUNK_POSTCODES)})
    con.execute(_MACROS)
