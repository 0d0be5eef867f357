"""Address standardisation macros: examples for each rule, the reference tables, properties
over arbitrary text, and one pass over a table large enough to show they run vectorised."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify import ingest, standardize
from cxunify.config import load_config
from cxunify.engine.duckdb import DuckDBEngine
from cxunify.standardize import addresses
from tests.conftest import one


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123 North Main Street Apartment 4", "123 n main st unit 4"),
        ("123 N. Main St., Apt. #4", "123 n main st unit 4"),
        ("123 N MAIN ST UNIT 4", "123 n main st unit 4"),
        ("123 North Main Street, Suite 4", "123 n main st unit 4"),
        ("Flat 2, 10 Downing Street", "unit 2 10 downing st"),
        ("10 Downing Str", "10 downing st"),
        ("5 Fifth Av", "5 fifth ave"),
        ("5 Fifth Avenue", "5 fifth ave"),
        ("1 Rodeo Road", "1 rodeo rd"),
        ("7 Mulholland Drive", "7 mulholland dr"),
        ("8 Penny Lane", "8 penny ln"),
        ("9 Sunset Boulevard", "9 sunset blvd"),
        ("9 Sunset Blvd.", "9 sunset blvd"),
        ("2 Baker Court", "2 baker ct"),
        ("3 Pudding Place", "3 pudding pl"),
        ("4 Royal Crescent", "4 royal cres"),
        ("5 Ocean Terrace", "5 ocean tce"),
        ("6 Garden Circuit", "6 gdn cct"),  # every word, not only the last
        ("7 Marine Parade", "7 marine pde"),
        ("8 Pacific Highway", "8 pacific hwy"),
        ("9 Elm Close", "9 elm cl"),
        ("10 Berkeley Square", "10 berkeley sq"),
        ("12-14 Smith St", "12 14 smith st"),
        ("1/23 King's Parade", "1 23 kings pde"),
        ("O'Connell Street", "oconnell st"),
        ("22 Rue de l'Église", "22 rue de leglise"),
        ("500 South West Expressway", "500 s w expy"),
        ("  12   Main    St  ", "12 main st"),
        ("n/a", None),
        ("N/A", None),
        ("Unknown", None),
        ("-", None),
        ("#", None),
        ("", None),
        (None, None),
    ],
)
def test_street_std(con, raw, expected):
    assert one(con, "cx_street_std", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("St. Louis", "saint louis"),
        ("ST LOUIS", "saint louis"),
        ("Saint Louis", "saint louis"),
        ("Port St. Lucie", "port saint lucie"),
        ("Ft Worth", "fort worth"),
        ("Ft. Lauderdale", "fort lauderdale"),
        ("Mt. Isa", "mount isa"),
        ("Mt Pleasant", "mount pleasant"),
        ("Stockholm", "stockholm"),  # "st" only as a whole word
        ("Montréal", "montreal"),
        ("Saint-Étienne", "saint etienne"),
        ("Wilkes-Barre", "wilkes barre"),
        ("Coeur d'Alene", "coeur dalene"),
        ("  NEW   YORK ", "new york"),
        ("n/a", None),
        ("?", None),
        ("", None),
        (None, None),
    ],
)
def test_city_std(con, raw, expected):
    assert one(con, "cx_city_std", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("02134", "02134"),
        ("02134-1234", "02134"),
        ("021341234", "02134"),
        (" 90210 ", "90210"),
        ("sw1a 1aa", "SW1A1AA"),
        ("SW1A 1AA", "SW1A1AA"),
        ("EC1A-1BB", "EC1A1BB"),
        ("2000", "2000"),
        ("K1A 0B1", "K1A0B1"),
        ("2134.0", "2134"),  # a numeric CSV column's float rendering
        ("00000", None),
        ("0", None),
        ("N/A", None),
        ("none", None),
        ("-", None),
        ("", None),
        (None, None),
    ],
)
def test_postcode_std(con, raw, expected):
    assert one(con, "cx_postcode_std", raw) == expected


def test_postcode_std_accepts_numbers(con):
    assert con.execute("SELECT cx_postcode_std(90210), cx_postcode_std(2134.0)").fetchone() == (
        "90210",
        "2134",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("California", "ca"),
        ("CALIFORNIA", "ca"),
        ("CA", "ca"),
        (" ca ", "ca"),
        ("Calif.", "ca"),
        ("New York", "ny"),
        ("new  york", "ny"),
        ("District of Columbia", "dc"),
        ("Washington D.C.", "dc"),
        ("Washington", "wa"),
        ("New South Wales", "nsw"),
        ("NSW", "nsw"),
        ("N.S.W.", "nsw"),
        ("Victoria", "vic"),
        ("Queensland", "qld"),
        ("Western Australia", "wa"),
        ("Tasmania", "tas"),
        ("Northern Territory", "nt"),
        ("Australian Capital Territory", "act"),
        ("South Australia", "sa"),
        ("Ontario", "on"),
        ("Québec", "qc"),
        ("British Columbia", "bc"),
        ("Île-de-France", "ile de france"),
        ("", None),
        ("  ", None),
        ("n/a", None),
        (None, None),
    ],
)
def test_state_std(con, raw, expected):
    assert one(con, "cx_state_std", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the sample's spellings of one country, which were six groups in profiles.country
        ("US", "US"), ("USA", "US"), ("U.S.", "US"), ("United States", "US"),
        ("UNITED STATES OF AMERICA", "US"), ("u.s.a.", "US"),
        ("Germany", "DE"), ("DEU", "DE"), ("Deutschland", "DE"), ("  france ", "FR"),
        ("Côte d'Ivoire", "CI"), ("Korea, Republic of", "KR"), ("South Korea", "KR"),
        ("UK", "GB"), ("England", "GB"), ("Türkiye", "TR"), ("Turkey", "TR"),
        ("Georgia", "GE"),  # in a country column, the country
        ("Atlantis", "ATLANTIS"),  # not a country it knows: as written, upper-cased
        ("n/a", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_country_std(con, raw, expected):
    assert one(con, "cx_country_std", raw) == expected


_COUNTRIES = sorted(pycountry.countries, key=lambda c: c.alpha_2)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(_COUNTRIES),
    st.sampled_from(["alpha_2", "alpha_3", "name"]),
    st.sampled_from([str.upper, str.lower, str.title, lambda t: f"  {t} "]),
)
def test_every_country_code_and_name_is_its_code(con, country, attribute, spelling):
    assert one(con, "cx_country_std", spelling(getattr(country, attribute))) == country.alpha_2


@settings(max_examples=40, deadline=None)
@given(st.text())
def test_country_std_never_raises_and_keeps_its_own_codes(con, text):
    code = one(con, "cx_country_std", text)
    if code is not None:
        assert one(con, "cx_country_std", code) == code


def test_install_is_idempotent(con):
    addresses.install(con)
    addresses.install(con)
    assert one(con, "cx_street_std", "1 Main Street") == "1 main st"
    assert con.execute("SELECT count(*) FROM cx_ref_states").fetchone()[0] >= 59


# --- locations ---------------------------------------------------------------------------


# Locations as written, and their city, state and country.
LOCATIONS: list[tuple[str | None, tuple[str | None, str | None, str | None]]] = [
    ("Boston, MA", ("Boston", "ma", None)),
    ("San Francisco, CA, USA", ("San Francisco", "ca", "US")),
    ("London, England", ("London", None, "GB")),
    ("Toronto, Ontario", ("Toronto", "on", None)),
    ("Berlin, Germany", ("Berlin", None, "DE")),
    ("NYC", ("NYC", None, None)),
    ("New York", ("New York", None, None)),  # the city, though a state's name
    ("New York, NY", ("New York", "ny", None)),
    ("Brooklyn, New York, USA", ("Brooklyn", "ny", "US")),
    ("Washington, DC", ("Washington", "dc", None)),
    ("California", (None, "ca", None)),
    ("California, USA", (None, "ca", "US")),
    ("USA", (None, None, "US")),
    ("Germany", (None, None, "DE")),
    ("LA", ("LA", None, None)),  # two letters alone are no country (Laos)
    ("Paris, FR", ("Paris", None, "FR")),
    ("Paris, TX", ("Paris", "tx", None)),
    ("Atlanta, Georgia", ("Atlanta", "ga", None)),
    ("Berlin, DE", ("Berlin", "de", None)),  # a state's code first: Delaware
    # a code that is a state's and a country's is the country when the text says so
    ("Berlin, DE 🇩🇪", ("Berlin", None, "DE")),  # the country's flag
    ("Amsterdam, NL 🇳🇱", ("Amsterdam", None, "NL")),
    ("Toronto, ON, CA", ("Toronto", "on", "CA")),  # a state before it
    ("Wilmington, DE, US", ("Wilmington", "de", "US")),
    ("Dover, DE 🇺🇸", ("Dover", "de", "US")),  # another country's flag: the state
    ("Milan, IT", ("Milan", None, "IT")),
    ("Madrid, ES", ("Madrid", None, "ES")),
    ("Lisbon, PT", ("Lisbon", None, "PT")),
    ("Sydney, NSW", ("Sydney", "nsw", None)),
    ("Munich, Bavaria, Germany", ("Munich", None, "DE")),
    ("Shoreditch, London, UK", ("Shoreditch", None, "GB")),
    ("Sydney, NSW, Australia", ("Sydney", "nsw", "AU")),
    ("Québec, QC", ("Québec", "qc", None)),
    ("Boston, MA 02115", ("Boston", "ma", None)),
    # a ZIP code after a country is no part of it (was the country 'GERMANY 10115')
    ("Berlin, Germany 10115", ("Berlin", None, "DE")),
    ("0,::::j,pw 00000", ("::::j", None, "PW")),  # found by hypothesis: 'PW 00000'
    ("St. Louis, MO", ("St. Louis", "mo", None)),
    ("  boston ,  ma  ", ("boston", "ma", None)),
    ("Москва, Россия", ("Москва", None, None)),
    ("東京", ("東京", None, None)),
    ("Dallas/Fort Worth", ("Dallas/Fort Worth", None, None)),
    ("France, Paris", ("Paris", None, None)),  # a country first is no city
    # what is no place gives no city, and the place beside it is still read
    ("📍 Brooklyn, NY | she/her", ("Brooklyn", "ny", None)),
    ("he/him 🏳️\u200d🌈 Austin, TX", ("Austin", "tx", None)),
    # a flag names the country when no other is written
    ("Berlin 🇩🇪", ("Berlin", None, "DE")),
    ("🇩🇪", (None, None, "DE")),
    ("Austin, TX 🇺🇸", ("Austin", "tx", "US")),
    ("London 🇬🇧 | NYC 🇺🇸", ("London", None, "GB")),  # the first flag
    ("🇫🇷 Paris, Texas, USA", ("Paris", "tx", "US")),  # a country written: that one
    ("🇪🇺 Brussels", ("Brussels", None, None)),  # no country's flag
    # words leading in to the place are dropped
    ("Based in Berlin", ("Berlin", None, None)),
    ("Living in NYC", ("NYC", None, None)),
    ("from Lagos, Nigeria", ("Lagos", None, "NG")),
    ("📍 based in Brooklyn, NY", ("Brooklyn", "ny", None)),
    ("Currently based out of Austin, TX | he/him", ("Austin", "tx", None)),
    ("located in São Paulo, Brasil", ("São Paulo", None, "BR")),
    ("Born in Lagos", (None, None, None)),  # where one was born is not where one is
    ("fromage lover", ("fromage lover", None, None)),  # a lead-in is a whole word
    ("🌍 everywhere", (None, None, None)),
    ("she/her", (None, None, None)),
    ("they/them", (None, None, None)),
    ("Planet Earth", (None, None, None)),
    ("the internet", (None, None, None)),
    ("in your heart", (None, None, None)),
    ("living my best life", (None, None, None)),
    ("www.example.com", (None, None, None)),
    ("https://example.com/me", (None, None, None)),
    ("linktr.ee/someone", (None, None, None)),
    ("@someone", (None, None, None)),
    ("#blessed", (None, None, None)),
    ("10001", (None, None, None)),
    ("🌴☀️", (None, None, None)),
    ("n/a", (None, None, None)),
    (",,,", (None, None, None)),
    ("", (None, None, None)),
    (None, (None, None, None)),
]


def test_location(con):
    """All in one query (binding cx_location takes a tenth of a second); a difference shows
    the texts read otherwise."""
    rows = con.execute(
        "SELECT cx_location(v) FROM unnest($vs) WITH ORDINALITY AS t(v, n) ORDER BY n",
        {"vs": [raw for raw, _ in LOCATIONS]},
    ).fetchall()
    read = {
        raw: (p["city"], p["state"], p["country"])
        for (raw, _), (p,) in zip(LOCATIONS, rows, strict=True)
    }
    assert read == dict(LOCATIONS)


# A code that is a state's and a country's, read with the region of the source it came from:
# the country when the source is that country's, else the state; CA stays California.
@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("Berlin, DE", "DE", ("Berlin", None, "DE")),
        ("Berlin, DE", "de", ("Berlin", None, "DE")),
        ("Berlin, DE", "US", ("Berlin", "de", None)),
        ("Berlin, DE", "GB", ("Berlin", "de", None)),
        ("Amsterdam, NL", "NL", ("Amsterdam", None, "NL")),
        ("St. John's, NL", "CA", ("St. John's", "nl", None)),
        ("Mumbai, IN", "IN", ("Mumbai", None, "IN")),
        ("Indianapolis, IN", "US", ("Indianapolis", "in", None)),
        ("Los Angeles, CA", "CA", ("Los Angeles", "ca", None)),
        ("Boston, MA", "DE", ("Boston", "ma", None)),
        ("Berlin, Delaware", "DE", ("Berlin", "de", None)),  # a state's name is the state
        ("Sydney, NSW", "AU", ("Sydney", "nsw", None)),
        ("Adelaide, SA", "AU", ("Adelaide", "sa", None)),
        ("Berlin, DE", None, ("Berlin", "de", None)),
    ],
)
def test_location_code_of_a_state_and_a_country_with_the_source_region(con, raw, region, expected):
    (parts,) = con.execute("SELECT cx_location($v, $r)", {"v": raw, "r": region}).fetchone()
    assert (parts["city"], parts["state"], parts["country"]) == expected


def test_standardise_reads_a_location_with_its_source_region(tmp_path: Path):
    """Standardise read every location alike: "Berlin, DE" from a German shop was Delaware.
    Each distinct location is now read with its source's phone region, so the German shop's
    is Germany and a US shop's (the default region) stays Delaware; a flag and a lead-in are
    read in either."""
    rows = 'handle,name,location\n{0}1,Ann Lee,"Berlin, DE"\n{0}2,Bob Roy,Based in Bonn 🇩🇪\n'
    sources = ""
    for name, region in (("de", "\n    phone_region: de"), ("us", "")):
        (tmp_path / f"{name}.csv").write_text(rows.format(name), encoding="utf-8")
        sources += (
            f"  - name: {name}\n    kind: social\n    path: {name}.csv\n    id: handle{region}\n"
            "    columns: {handle: handle, full_name: name, location: location}\n"
        )
    (tmp_path / "c.yaml").write_text(f"sources:\n{sources}", encoding="utf-8")
    config = load_config(tmp_path / "c.yaml")
    engine = DuckDBEngine()
    ingest.ingest(engine, config, tmp_path / "work")
    standardize.standardize(engine, config)
    assert engine.rows(
        "SELECT source_record_id, city, state, country FROM cx_records ORDER BY 1"
    ) == [
        ("de1", "Berlin", None, "DE"),
        ("de2", "Bonn", None, "DE"),
        ("us1", "Berlin", "de", None),
        ("us2", "Bonn", None, "DE"),
    ]


# Each location read, with whether the text spells its state and its country (by a code or a
# name the reference gives it, as the words the address macros make of text), and the
# location read again from its city, state and a name of its country no state has ("geo" for
# Georgia). One query for a list of texts: binding cx_location takes a tenth of a second.
_READ_LOCATIONS = """
    WITH t AS (
        SELECT n, v, cx_location(v, $region) AS parts, cx_location(v) AS plain,
               ' ' || array_to_string(_cx_addr_words(v), ' ') || ' ' AS words
        FROM unnest($vs) WITH ORDINALITY AS u(v, n)
    ), named AS (
        SELECT n, v, parts, plain,
               parts.state IS NULL OR contains(words, ' ' || parts.state || ' ') OR EXISTS (
                   SELECT 1 FROM cx_ref_states s WHERE s.code = parts.state
                   AND contains(words, ' ' || array_to_string(_cx_addr_words(s.name), ' ') || ' ')
               ) AS state_named,
               parts.country IS NULL OR EXISTS (
                   SELECT 1 FROM cx_ref_countries c WHERE c.code = parts.country
                   AND contains(words, ' ' || c.name || ' ')
               ) OR contains(v, translate(parts.country, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                                          getvariable('cx_loc_flag_letters'))) AS country_named,
               concat_ws(', ', parts.city, parts.state, (
                   SELECT min(c.name) FROM cx_ref_countries c
                   WHERE c.code = parts.country AND length(c.name) > 2
                     AND getvariable('cx_states')[c.name] IS NULL
                     AND NOT list_contains(getvariable('cx_state_codes'), c.name)
               )) AS written
        FROM t
    )
    SELECT v, parts, plain, state_named, country_named, written,
           CASE WHEN parts.city IS NOT NULL THEN cx_location(written, $region) END AS again
    FROM named ORDER BY n
"""


# Text as ingest hands it on: no NUL (ingest removes control characters; the address macros'
# words of a text end at a NUL).
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
_PLACE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(
            ["Boston", "New York", "St. Louis", "Québec", "München", "東京", "Georgia", "LA",
             "Ontario", "MA", "ny", "NSW", "Massachusetts", "DC", "USA", "Germany", "UK",
             "FR", "DE", "England", "she/her", "🌍", "everywhere", "www.x.com", "#tag",
             "10001", "MA 02115", "Planet Earth", "in", "the Hague", "NL", "CA", "IN",
             "🇩🇪", "🇺🇸", "🇳🇱", "🇪🇺", "Based in", "living in Boston", "from", "Born in"]
        ),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
    ),
    min_size=1,
    max_size=4,
).flatmap(
    lambda parts: st.lists(
        st.sampled_from([", ", ",", " | ", " 📍 ", " / ", " · ", " "]),
        min_size=len(parts),
        max_size=len(parts),
    ).map(lambda seps: "".join(p + s for p, s in zip(parts, seps, strict=True)))
)  # fmt: skip


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.one_of(_TEXT, _PLACE_TEXT), min_size=1, max_size=25),
    st.sampled_from([None, "US", "DE", "NL", "CA", "IN", "AU"]),
)
def test_location_parts_are_read_from_the_text(con, texts, region):
    """Never raises; the city is a part of the text as written; a state or a country is a
    code of the reference (a state's, an ISO country's) that the text spells, by code, name
    or flag; and what was read reads again the same, with the same source region: its city,
    state and country joined. The region only ever reads a state's code as the country it
    is too (its city then none when it is a state's name)."""
    for text, parts, plain, state_named, country_named, written, again in con.execute(
        _READ_LOCATIONS, {"vs": texts, "region": region}
    ).fetchall():
        city = parts["city"]
        assert state_named and country_named, (text, parts)
        if parts != plain:
            assert region is not None and plain["country"] is None, (text, parts, plain)
            assert parts["state"] is None and plain["state"] == region.lower(), (text, parts)
            assert parts["country"] == region and city in (plain["city"], None), (text, parts)
        if city is not None:
            assert city == city.strip() and city in text and "," not in city, (text, parts)
            assert again == parts, (text, written)


# --- reference tables ---------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_street_words_table():
    rows = _rows(addresses.STREET_WORDS_CSV)
    assert set(rows[0]) == {"word", "abbrev"}
    table = {r["word"]: r["abbrev"] for r in rows}
    assert len(table) == len(rows), "a word has one abbreviation"
    for word, abbrev in {
        "street": "st",
        "avenue": "ave",
        "road": "rd",
        "drive": "dr",
        "lane": "ln",
        "boulevard": "blvd",
        "court": "ct",
        "place": "pl",
        "crescent": "cres",
        "terrace": "tce",
        "circuit": "cct",
        "parade": "pde",
        "highway": "hwy",
        "close": "cl",
        "square": "sq",
        "north": "n",
        "south": "s",
        "east": "e",
        "west": "w",
        "apartment": "unit",
        "apt": "unit",
        "suite": "unit",
        "flat": "unit",
        "str": "st",
        "av": "ave",
    }.items():
        assert table[word] == abbrev
    # Idempotence of cx_street_std depends on this: an abbreviation stays what it is.
    assert all(table.get(abbrev, abbrev) == abbrev for abbrev in table.values())
    assert all(" " not in w and w == w.lower() for w in table)


def test_states_table():
    rows = _rows(addresses.STATES_CSV)
    assert set(rows[0]) == {"name", "code"}
    table = {r["name"]: r["code"] for r in rows}
    assert len(table) == len(rows)
    assert len({c for c in table.values() if len(c) == 2}) >= 51  # 50 states and DC
    assert {"nsw", "vic", "qld", "sa", "wa", "tas", "nt", "act"} <= set(table.values())
    assert {"on", "qc", "bc", "ab", "mb", "sk", "ns", "nb", "nl", "pe", "yt", "nu"} <= set(
        table.values()
    )
    # Codes are never also names, so cx_state_std is idempotent.
    assert not set(table) & set(table.values())


# --- properties ---------------------------------------------------------------------------

_STD = ("cx_street_std", "cx_city_std", "cx_postcode_std", "cx_state_std")


def all_forms(con: duckdb.DuckDBPyConnection, *values: str | None) -> list[tuple]:
    """Every macro of _STD applied to each value, in one query: one row per value."""
    select = ", ".join(f"{m}(v)" for m in _STD)
    return con.execute(
        f"SELECT {select} FROM unnest($vs) WITH ORDINALITY AS t(v, n) ORDER BY n",
        {"vs": list(values)},
    ).fetchall()


def assert_idempotent(con: duckdb.DuckDBPyConnection, results: list[tuple]) -> None:
    """Each form of each row of results is its macro's form of itself (one query for all)."""
    again = all_forms(con, *(form for row in results for form in row))
    for k, row in enumerate(results):
        for i, macro in enumerate(_STD):
            if row[i] is not None:
                assert again[k * len(_STD) + i][i] == row[i], (macro, row[i])


# Texts are checked a list per query: 15 lists of 5 to 25 texts are at least the 75 texts one
# at a time these properties were checked on.
@settings(max_examples=15, deadline=None)
@given(st.lists(st.text(), min_size=5, max_size=25))
def test_never_raises_and_is_idempotent(con, texts):
    results = all_forms(con, *texts)
    assert len(results) == len(texts)
    assert_idempotent(con, results)


_ADDRESSY = st.lists(
    st.one_of(
        st.from_regex(r"[0-9]{1,4}[a-c]?", fullmatch=True),
        st.sampled_from(["North", "St.", "Street", "AVE", "Apt", "#4", "Main", "Saint", "Mt"]),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzéü'-.,#", min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
).map(" ".join)


@settings(max_examples=15, deadline=None)
@given(st.lists(_ADDRESSY, min_size=5, max_size=25))
def test_case_and_spacing_do_not_change_address_forms(con, texts):
    shouty = ["  " + text.upper().replace(" ", "   ") + " " for text in texts]
    forms = all_forms(con, *texts, *shouty)
    plain, loud = forms[: len(texts)], forms[len(texts) :]
    for text, plain_forms, loud_forms in zip(texts, plain, loud, strict=True):
        assert plain_forms == loud_forms, text
    assert_idempotent(con, plain)


# --- vectorised over a large table ----------------------------------------------------------


def test_every_macro_runs_over_200k_rows(con):
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE many_addresses AS
        SELECT CAST(i % 997 AS VARCHAR) || ' '
               || ['North ', '', 'S. ', ''][i % 4 + 1]
               || ['Main', 'King''s', 'Église', 'Elm'][i % 4 + 1] || ' '
               || ['Street', 'St.', 'Avenue', 'Rd', 'Crescent', 'Terrace'][i % 6 + 1]
               || ['', ', Apt 4', ' Unit 2B', ' #7'][i % 4 + 1] AS street,
               ['St. Louis', 'Ft Worth', 'Montréal', 'n/a', 'Sydney'][i % 5 + 1] AS city,
               ['02134-1234', 'sw1a 1aa', '2000', '00000', ''][i % 5 + 1] AS postcode,
               ['California', 'NSW', 'n.y.', 'Victoria', ''][i % 5 + 1] AS state
        FROM range(200000) AS r(i)
        """
    )
    row = con.execute(
        """
        SELECT count(*), count(DISTINCT cx_street_std(street)), count(cx_city_std(city)),
               count(cx_postcode_std(postcode)), count(cx_state_std(state))
        FROM many_addresses
        """
    ).fetchone()
    assert row == (200_000, row[1], 160_000, 120_000, 160_000)
    assert row[1] > 1000
