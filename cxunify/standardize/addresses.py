"""Postal addresses as DuckDB macros: matching forms of street, city, postcode and state, a
country as its ISO 3166 code, and a location written in one text ("Boston, MA") read into
city, state and country.

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
# A social profile's location names where someone is in one text, and often something else:
# "📍 Brooklyn, NY | she/her", "🌍 everywhere", "www.example.com". What splits it into
# places: a bar, bullet or semicolon, a slash or dash between spaces, and a run of emoji,
# pictographs, arrows or other symbols (with the joiners and selectors that build emoji).
LOCATION_SEPARATORS = (
    r"[|•·;]|\s[/–—-]\s|[\x{2190}-\x{2BFF}\x{1F000}-\x{1FAFF}\x{FE0E}\x{FE0F}\x{200D}"
    r"\x{20E3}\x{E0020}-\x{E007F}]+"
)
# White space around a part of a location: any Unicode space (a no-break space, an
# ideographic space), not only the ASCII ones trim() removes.
LOCATION_SPACE = (
    r"[\s\x{0B}\x{1C}-\x{1F}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}"
    r"\x{205F}\x{3000}]+"
)
# Words that name no place: a part of a location made of these alone is none ("Planet
# Earth", "she/her", "the internet", "wherever I am").
NOT_PLACE_WORDS: tuple[str, ...] = (
    "she", "her", "hers", "he", "him", "his", "they", "them", "their", "theirs", "xe", "xem",
    "xyr", "ze", "zir", "hir", "it", "its", "any", "all", "pronouns",
    "i", "im", "am", "is", "are", "you", "we", "the", "a", "of", "and", "or", "in", "on", "at",
    "to", "here", "there", "where", "wherever", "everywhere", "anywhere", "somewhere",
    "nowhere", "earth", "planet", "world", "worldwide", "global", "globe", "universe", "galaxy",
    "space", "outer", "internet", "online", "web", "cyberspace", "metaverse", "home", "remote",
    "remotely", "travelling", "traveling", "moon", "heaven", "dreamland",
)  # fmt: skip
# First words of a phrase, never of a place's name: "in your heart", "living my best life",
# "based in Berlin" (where the place is a guess).
NOT_PLACE_STARTS: tuple[str, ...] = (
    "in", "on", "at", "my", "your", "our", "their", "where", "wherever", "everywhere",
    "anywhere", "somewhere", "nowhere", "living", "lost", "between", "currently", "mostly",
    "probably", "sometimes", "always", "based", "located", "born", "from", "i", "im", "we",
    "you", "just", "not", "this", "that", "follow", "dm",
)  # fmt: skip
# States whose name, written alone, is more often a city's: "New York" is the city, "Washington"
# (DC) the capital; "California" alone is the state.
CITY_STATE_NAMES: tuple[str, ...] = ("new york", "washington", "washington dc", "washington d c")
# Words that lead in to where someone is ("Based in Berlin", "Living in NYC", "from Lagos,
# Nigeria"): dropped from the start of a place before it is read. Where someone was born or
# raised is not where they are, so "Born in" stays a phrase that names no place.
LOCATION_LEAD_INS = (
    r"(?:(?:(?:currently|now|proudly)\s+)?(?:based|living|located|residing|live|lives)"
    r"\s+(?:in|out\s+of|at|near)|(?:currently|now)\s+in|(?:hailing\s+)?from)"
)
# A flag emoji is a pair of regional indicator symbols, one for each letter of the country's
# ISO 3166-1 alpha-2 code: 🇩🇪 is D E.
FLAG_LETTERS = "".join(chr(0x1F1E6 + i) for i in range(26))
# A code that is a state's and a country's reads as the country when the source's region is
# that country, except these: after a city, CA is California even to a Canadian shop, whose
# customers name their province ("Toronto, ON") and write California's code for Los Angeles.
STATE_CODES_OVER_REGION: tuple[str, ...] = ("ca",)
# Top-level domains that make a part of a location a web address ("example.com"; any other
# before a slash: "linktr.ee/someone").
WEB_DOMAINS = "com|net|org|io|co|me|dev|app|ly|gg|tv|xyz|info|link|bio|page|site|online"

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

-- A location written in one text ("Boston, MA", "San Francisco, CA, USA", "London, England",
-- "📍 Toronto, Ontario | he/him") as its city, state and country, given the region of the
-- source it came from (its phone_region, an ISO code, or NULL). Its first place (the pieces
-- between cx_loc_separators, a lead-in such as "Based in" dropped) is split at commas. The
-- last part is a state (a name or a code, a ZIP code after it aside: "MA 02115", "Ontario")
-- or else a country ("England", "USA", "FR"), and the part before a country may be a state.
-- A code that is a state's and a country's ("DE": Delaware, Germany; "NL": Newfoundland, the
-- Netherlands) is the state's unless something says the country: a state before it
-- ("Toronto, ON, CA"), the country's flag in the text ("Berlin, DE 🇩🇪"), or the source's
-- region being that country (a German shop's "Berlin, DE"; CA is California even so). The
-- city is the first part left that is a place and no country ("Munich, Bavaria, Germany":
-- Munich). A location of one part is a state when it is a state's name and no city's too
-- (California; not New York), a country when it is a country's name or a code of three
-- letters ("LA" is no Laos), else the city. A part with digits, @ or #, a web address, or only
-- words naming no place (she/her, everywhere) is no place: a location of nothing else gives
-- no city. A flag (🇩🇪) is the country when the text writes no other.

-- A part without the ZIP code written after a state ("MA 02115").
CREATE OR REPLACE MACRO _cx_loc_unzip(p) AS regexp_replace(p, '\s+\d{5}(-\d{4})?$', '');

-- The key a part is looked up by in the states and countries maps: its words.
CREATE OR REPLACE MACRO _cx_loc_key(p) AS array_to_string(_cx_addr_words(_cx_loc_unzip(p)), ' ');

CREATE OR REPLACE MACRO _cx_loc_is_state(k) AS
    getvariable('cx_states')[k] IS NOT NULL OR list_contains(getvariable('cx_state_codes'), k);

-- Written alone, a state's name (not its code: "IN", "OR" and "ME" are words) and no city's.
CREATE OR REPLACE MACRO _cx_loc_is_state_name(k) AS
    getvariable('cx_states')[k] IS NOT NULL
    AND NOT list_contains(getvariable('cx_city_state_names'), k);

CREATE OR REPLACE MACRO _cx_loc_is_country(k) AS getvariable('cx_countries')[k] IS NOT NULL;

CREATE OR REPLACE MACRO _cx_loc_is_country_alone(k) AS
    _cx_loc_is_country(k) AND (length(k) > 2 OR k IN ('us', 'uk'));

CREATE OR REPLACE MACRO _cx_loc_is_place(p) AS
    list_transform(
        [_cx_addr_words(p)],
        lambda ws: (lower(p) <> upper(p)  -- a letter of a cased script, or of another:
                    OR regexp_matches(p, '[\x{0590}-\x{08FF}\x{0900}-\x{0DFF}\x{0E00}-\x{0FFF}'
                                         || '\x{1100}-\x{11FF}\x{3040}-\x{30FF}'
                                         || '\x{3400}-\x{9FFF}\x{AC00}-\x{D7AF}]'))
            AND NOT regexp_matches(lower(p), getvariable('cx_loc_not_place_text'))
            AND len(ws) BETWEEN 1 AND 5
            AND NOT list_contains(getvariable('cx_loc_not_place_starts'), ws[1])
            AND len(list_filter(
                ws, lambda w: NOT list_contains(getvariable('cx_loc_not_place_words'), w))) > 0
            AND _cx_addr_unjunk(array_to_string(ws, ' ')) IS NOT NULL)[1];

-- The ISO code of the first flag in a location that is a country's flag, or NULL.
CREATE OR REPLACE MACRO _cx_loc_flag(x) AS
    list_transform(
        [translate(regexp_extract(CAST(x AS VARCHAR), '[\x{1F1E6}-\x{1F1FF}]{2}'),
                   getvariable('cx_loc_flag_letters'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')],
        lambda f: CASE WHEN getvariable('cx_countries')[lower(f)] = f THEN f END)[1];

-- The comma-separated parts of the first place in a location, each piece without the words
-- leading in to it ("Based in").
CREATE OR REPLACE MACRO _cx_loc_parts(x) AS
    list_filter(
        list_transform(
            regexp_split_to_array(CAST(x AS VARCHAR), getvariable('cx_loc_separators')),
            lambda s: list_filter(
                list_transform(string_split(
                                   regexp_replace(s, '^(' || getvariable('cx_loc_space')
                                                  || ')?' || getvariable('cx_loc_lead_ins')
                                                  || getvariable('cx_loc_space'), '', 'i'),
                                   ','),
                               lambda p: regexp_replace(p, '^' || getvariable('cx_loc_space')
                                                        || '|' || getvariable('cx_loc_space')
                                                        || '$', '', 'g')),
                lambda p: p <> '')),
        lambda ps: len(list_filter(ps, lambda p: _cx_loc_is_place(p))) > 0)[1];

-- Whether the last part, a code that is a state's and a country's, is the country: a state
-- before it, the country's flag, or the source's region being the country say so.
CREATE OR REPLACE MACRO _cx_loc_code_is_country(ps, ks, region, flag) AS
    list_transform(
        [getvariable('cx_countries')[ks[-1]]],
        lambda c: coalesce(
            length(ks[-1]) = 2 AND c IS NOT NULL
            AND (len(ps) > 2 AND _cx_loc_is_state(ks[-2])
                 OR coalesce(c = flag, false)
                 OR coalesce(c = upper(region), false)
                    AND NOT list_contains(getvariable('cx_loc_state_codes_over_region'), ks[-1])),
            false))[1];

-- Parts as state, country and the parts left for the city, from their keys `ks`.
CREATE OR REPLACE MACRO _cx_loc_read(ps, ks, region, flag) AS CASE
    WHEN len(ps) = 0 THEN {'state': NULL, 'country': NULL, 'rest': []::VARCHAR[]}
    WHEN len(ps) = 1 AND _cx_loc_is_state_name(ks[1])
        THEN {'state': ps[1], 'country': NULL, 'rest': []::VARCHAR[]}
    WHEN len(ps) = 1 AND _cx_loc_is_country_alone(ks[1])
        THEN {'state': NULL, 'country': ps[1], 'rest': []::VARCHAR[]}
    WHEN len(ps) = 1 THEN {'state': NULL, 'country': NULL, 'rest': ps}
    WHEN _cx_loc_is_state(ks[-1]) AND NOT _cx_loc_code_is_country(ps, ks, region, flag)
        THEN {'state': ps[-1], 'country': NULL, 'rest': ps[1:len(ps) - 1]}
    WHEN _cx_loc_is_country(ks[-1])
         AND (len(ps) > 2 AND _cx_loc_is_state(ks[-2]) OR _cx_loc_is_state_name(ks[-2]))
        THEN {'state': ps[-2], 'country': ps[-1], 'rest': ps[1:len(ps) - 2]}
    WHEN _cx_loc_is_country(ks[-1])
        THEN {'state': NULL, 'country': ps[-1], 'rest': ps[1:len(ps) - 1]}
    ELSE {'state': NULL, 'country': NULL, 'rest': ps} END;

-- The city: the first part left that is a place and no country's name, nor a state's unless
-- the location named its state ("Québec, QC").
CREATE OR REPLACE MACRO _cx_loc_city(r) AS
    list_filter(
        r.rest,
        lambda p: _cx_loc_is_place(p)
                  AND list_transform(
                      [_cx_loc_key(p)],
                      lambda k: (r.state IS NOT NULL OR NOT _cx_loc_is_state_name(k))
                                AND NOT _cx_loc_is_country_alone(k))[1])[1];

-- (Each list is bound once by a lambda: a macro's argument is pasted, and computed, wherever
-- the macro uses it, and _cx_loc_read reads the keys seven times.)
CREATE OR REPLACE MACRO cx_location(x, region := NULL) AS
    list_transform(
        [{'ps': coalesce(_cx_loc_parts(x), []::VARCHAR[]), 'flag': _cx_loc_flag(x)}],
        lambda t: list_transform(
            [list_transform(t.ps, lambda p: _cx_loc_key(p))],
            lambda ks: list_transform(
                [_cx_loc_read(t.ps, ks, CAST(region AS VARCHAR), t.flag)],
                lambda r: {'city': _cx_loc_city(r),
                           'state': cx_state_std(_cx_loc_unzip(r.state)),
                           'country': coalesce(cx_country_std(_cx_loc_unzip(r.country)),
                                               t.flag)})[1])[1])[1];
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
        f"SET VARIABLE cx_state_codes = (SELECT list(DISTINCT code) FROM {table('ref_states')})"
    )
    con.execute(
        "SET VARIABLE cx_city_words = map($k, $v)",
        {"k": list(CITY_WORDS), "v": list(CITY_WORDS.values())},
    )
    con.execute("SET VARIABLE cx_addr_junk = $v", {"v": list(JUNK_ADDRESS_VALUES)})
    con.execute("SET VARIABLE cx_addr_separators = $v", {"v": SEPARATORS})
    con.execute("SET VARIABLE cx_addr_junk_postcodes = $v", {"v": list(JUNK_POSTCODES)})
    con.execute("SET VARIABLE cx_loc_separators = $v", {"v": LOCATION_SEPARATORS})
    con.execute("SET VARIABLE cx_loc_space = $v", {"v": LOCATION_SPACE})
    con.execute(
        "SET VARIABLE cx_loc_not_place_text = $v",
        {"v": rf"[0-9@#]|://|^www\.|\.({WEB_DOMAINS})(/|$)|[a-z0-9]\.[a-z]{{2,}}/"},
    )
    con.execute("SET VARIABLE cx_loc_not_place_words = $v", {"v": list(NOT_PLACE_WORDS)})
    con.execute("SET VARIABLE cx_loc_not_place_starts = $v", {"v": list(NOT_PLACE_STARTS)})
    con.execute("SET VARIABLE cx_city_state_names = $v", {"v": list(CITY_STATE_NAMES)})
    con.execute("SET VARIABLE cx_loc_lead_ins = $v", {"v": LOCATION_LEAD_INS})
    con.execute("SET VARIABLE cx_loc_flag_letters = $v", {"v": FLAG_LETTERS})
    con.execute(
        "SET VARIABLE cx_loc_state_codes_over_region = $v", {"v": list(STATE_CODES_OVER_REGION)}
    )
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
