"""Digits of any script read as ASCII digits, before phones, dates, amounts and postcodes."""

from __future__ import annotations

import sys
import unicodedata

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify.standardize import digits
from tests.conftest import each

SCRIPTS = {
    "ascii": "0123456789",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "persian": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "bengali": "০১২৩৪৫৬৭৮৯",
    "thai": "๐๑๒๓๔๕๖๗๘๙",
    "full-width": "０１２３４５６７８９",
    "mathematical bold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
}


@pytest.fixture(scope="session")
def con(std_con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return std_con  # the session's connection with every standardisation macro


def written_in(script: str, text: str) -> str:
    return text.translate(str.maketrans("0123456789", SCRIPTS[script]))


def python_ascii_digits(text: str) -> str:
    return "".join(
        c if unicodedata.decimal(c, None) is None else str(unicodedata.decimal(c)) for c in text
    )


def test_every_decimal_digit_is_known() -> None:
    assert len(digits.non_ascii_digits()) >= 600
    for script in SCRIPTS.values():
        assert all(c in digits.non_ascii_digits() or c.isascii() for c in script)


@settings(max_examples=20)
@given(
    st.lists(
        st.text() | st.text(st.sampled_from(digits.non_ascii_digits()) | st.characters()),
        min_size=5,
        max_size=25,
    )
)
def test_like_unicodedata_never_raises_and_is_idempotent(
    con: duckdb.DuckDBPyConnection, texts: list[str]
) -> None:
    """(Texts are checked a list per statement: see tests.conftest.each.)"""
    mapped = [value for (value,) in each(con, "cx_ascii_digits(v)", v=texts)]
    again = [value for (value,) in each(con, "cx_ascii_digits(v)", v=mapped)]
    for text, once, twice in zip(texts, mapped, again, strict=True):
        assert once == python_ascii_digits(text), text
        assert twice == once, text


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_phones_read_any_script(con: duckdb.DuckDBPyConnection, script: str) -> None:
    raw = written_in(script, "+971 50 123 4567")
    assert con.execute(
        "SELECT cx_phone_e164(?, 'US'), cx_phone_digits(?)", [raw, raw]
    ).fetchone() == ("+971501234567", "971501234567")
    national = written_in(script, "050 123 4567")
    assert con.execute("SELECT cx_phone_e164(?, 'AE')", [national]).fetchone() == ("+971501234567",)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_dates_amounts_postcodes_read_any_script(
    con: duckdb.DuckDBPyConnection, script: str
) -> None:
    date_text, stamp_text = written_in(script, "15/03/1984"), written_in(script, "2024-03-15 10:30")
    amount, postcode = written_in(script, "1,234.50"), written_in(script, "SW1A 1AA 2134")
    row = con.execute(
        "SELECT cx_parse_date(?, true)::VARCHAR, cx_parse_timestamp(?, false)::VARCHAR, "
        "cx_amount(?), cx_count(?), cx_postcode_std(?)",
        [date_text, stamp_text, amount, amount, postcode],
    ).fetchone()
    assert row == ("1984-03-15", "2024-03-15 10:30:00", 1234.5, 1235, "SW1A1AA2134")


def test_arabic_separators_in_amounts(con: duckdb.DuckDBPyConnection) -> None:
    # U+066B ARABIC DECIMAL SEPARATOR, U+066C ARABIC THOUSANDS SEPARATOR
    assert con.execute("SELECT cx_amount('١٬٢٣٤٫٥٠')").fetchone() == (1234.5,)


@settings(max_examples=9)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(SCRIPTS)),
            st.text("0123456789 +-()./:,", max_size=20),
            st.booleans(),
        ),
        min_size=20,
        max_size=50,
    )
)
def test_other_scripts_read_as_ascii_or_not_at_all(
    con: duckdb.DuckDBPyConnection, cases: list[tuple[str, str, bool]]
) -> None:
    """Each standardiser gives the ASCII writing's value, never a different one. (Cases are
    checked a list per query: binding these macros takes tens of milliseconds.)"""
    sql = (
        "SELECT list_transform($cases, lambda c: [cx_phone_e164(c.t, 'GB'), "
        "cx_phone_digits(c.t), CAST(cx_parse_date(c.t, c.d) AS VARCHAR), "
        "CAST(cx_parse_timestamp(c.t, c.d) AS VARCHAR), CAST(cx_amount(c.t) AS VARCHAR), "
        "CAST(cx_count(c.t) AS VARCHAR), cx_postcode_std(c.t)])"
    )

    def values(written: list[tuple[str, bool]]) -> list:
        rows = [{"t": t, "d": d} for t, d in written]
        return con.execute(sql, {"cases": rows}).fetchone()[0]

    ascii_rows = values([(text, dayfirst) for _, text, dayfirst in cases])
    other_rows = values([(written_in(script, text), dayfirst) for script, text, dayfirst in cases])
    for case, ascii_row, other_row in zip(cases, ascii_rows, other_rows, strict=True):
        assert other_row == ascii_row, case


def test_the_digits_found_by_regex_are_unicodes_decimal_digits():
    """The regex scan replaced asking unicodedata of every code point (a second of every
    run): both must give the same characters, on whatever Python runs it."""
    by_unicodedata = tuple(
        chr(point)
        for point in range(0x80, sys.maxunicode + 1)
        if unicodedata.decimal(chr(point), None) is not None
    )
    assert digits.non_ascii_digits() == by_unicodedata
