"""Postal addresses as DuckDB macros: matching forms of street, city, postcode and state, and
a country as its ISO 3166 code.

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
import pycountry

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
# Names of countries in use that ISO 3166 (pycountry: codes, names, official and common names)
# does not give, with their ISO 3166-1 alpha-2 code.
COUNTRY_ALIASES: dict[str, str] = {
    "America": "US", "U.S. of A.": "US", "UK": "GB", "Great Britain": "GB", "Britain": "GB",
    "England": "GB", "Scotland": "GB", "Wales": "GB", "Northern Ireland": "GB",
    "Holland": "NL", "The Netherlands": "NL", "South Korea": "KR", "Korea": "KR",
    "North Korea": "KP", "Russia": "RU", "Vietnam": "VN", "Iran": "IR", "Syria": "SY",
    "Laos": "LA", "Bolivia": "BO", "Venezuela": "VE", "Tanzania": "TZ", "Moldova": "MD",
    "Czech Republic": "CZ", "Turkey": "TR", "Ivory Coast": "CI", "Macedonia": "MK",
    "Taiwan": "TW", "Palestine": "PS", "Vatican": "VA", "Vatican City": "VA", "Brunei": "BN",
    "Cape Verde": "CV", "Swaziland": "SZ", "Burma": "MM", "East Timor": "TL",
    "Micronesia": "FM", "UAE": "AE", "Hong Kong SAR": "HK", "Macau": "MO",
    # names in the country's own language, in Latin letters
    "Deutschland": "DE", "España": "ES", "Italia": "IT", "Österreich": "AT", "Schweiz": "CH",
    "Suisse": "CH", "Svizzera": "CH", "Nederland": "NL", "België": "BE", "Belgique": "BE",
    "Polska": "PL", "Sverige": "SE", "Norge": "NO", "Danmark": "DK", "Suomi": "FI",
    "Brasil": "BR", "Éire": "IE", "Magyarország": "HU", "Česko": "CZ", "Hrvatska": "HR",
}  # fmt: skip
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

-- A country as its ISO 3166-1 alpha-2 code (US for "U.S.A.", "United States of America",
-- "usa"); a name it does not know stays as written, upper-cased; a placeholder is NULL.
CREATE OR REPLACE MACRO cx_country_std(x) AS
    list_transform([_cx_addr_unjunk(array_to_string(_cx_addr_words(x), ' '))],
                   lambda s: CASE WHEN s IS NOT NULL THEN
                       coalesce(getvariable('cx_countries')[s], upper(trim(CAST(x AS VARCHAR))))
                   END)[1];
"""


def _country_names() -> tuple[list[str], list[str]]:
    """Every code and name of a country ISO 3166 gives, then the aliases, with its code."""
    names: list[str] = []
    codes: list[str] = []
    for country in pycountry.countries:
        for attribute in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                names.append(name)
                codes.append(country.alpha_2)
    names += COUNTRY_ALIASES
    codes += COUNTRY_ALIASES.values()
    return names, codes


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

    ``cx_street_std(x)``, ``cx_city_std(x)``, ``cx_postcode_std(x)``, ``cx_state_std(x)`` and
    ``cx_country_std(x)``, plus the tables ``cx_ref_street_words``, ``cx_ref_states`` and
    ``cx_ref_countries`` they were built from.
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
    # Country names keyed by the words the macros make of them, so that a value matches
    # however it is cased, accented or punctuated; the first spelling of a key wins.
    names, codes = _country_names()
    ref = table("ref_countries")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {ref} AS
        SELECT array_to_string(_cx_addr_words(name), ' ') AS name, arg_min(code, i) AS code
        FROM (SELECT unnest($names) AS name, unnest($codes) AS code,
                     generate_subscripts($names, 1) AS i)
        GROUP BY 1
        """,
        {"names": names, "codes": codes},
    )
    con.execute(f"SET VARIABLE cx_countries = (SELECT map(list(name), list(code)) FROM {ref})")
