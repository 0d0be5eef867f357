"""CSAT ratings: the number written, with its sign, so a negative falls outside any scale."""

from __future__ import annotations

import re
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="session")
def con(std_con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return std_con  # the session's connection with every standardisation macro


def rating(con: duckdb.DuckDBPyConnection, text: str | None) -> float | None:
    (value,) = con.execute("SELECT cx_rating($t)", {"t": text}).fetchone()
    return value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", 4.0),
        (" 5 ", 5.0),
        ("4.5", 4.5),
        ("4,5", 4.5),  # a decimal comma: it read as 45, outside the scale
        (" 4,5 ", 4.5),
        ("-0,5", -0.5),
        (",5", 0.5),
        ("5.", 5.0),
        ("1,234", 1.234),  # no rating has thousands: a comma is a decimal comma
        ("٤٫٥", 4.5),  # Arabic-Indic digits and decimal separator
        ("-1", -1.0),  # "unrated" in some helpdesks: read as 1 it was a rating of 1
        (" -1", -1.0),
        ("-0.5", -0.5),
        ("\u22121", -1.0),  # a typeset minus
        ("+3", 3.0),
        ("٣", 3.0),
        ("4/5", 45.0),  # kept as its digits: outside a 1-5 scale, so counted, not lost
        ("80%", 80.0),
        ("4.5/5", 455.0),  # its digits and point made 4.55, a rating
        ("4,5/5", 455.0),
        ("4 stars", 4.0),
        ("3.5 stars", 35.0),
        ("1.234,5", 12345.0),
        ("4.5.6", 456.0),
        ("- 1", -1.0),
        # a two-level survey: the ends of whatever scale is configured (see touchpoints)
        ("Good", float("inf")),
        (" bad ", float("-inf")),
        ("Good, with comment", float("inf")),
        ("bad_with_comment", float("-inf")),
        ("Offered", None),  # asked, not answered
        ("Unoffered", None),
        ("goodness", None),
        ("", None),
        ("-", None),
        (None, None),
    ],
)
def test_ratings(con, text: str | None, value: float | None):
    assert rating(con, text) == value


@settings(max_examples=100, deadline=None)
@given(n=st.integers(-1000, 1000), space=st.sampled_from(["", " "]))
def test_a_written_whole_rating_reads_as_itself(con, n: int, space: str):
    assert rating(con, f"{space}{n}{space}") == n


@settings(max_examples=120, deadline=None)
@given(text=st.text(alphabet="0123456789.,-+/% ab", max_size=8))
def test_a_rating_written_with_a_minus_is_never_positive(con, text: str):
    """Never raises; a leading minus is never dropped (a -1 read as 1 was a rating)."""
    value = rating(con, text)
    if text.lstrip().startswith("-") and value is not None:
        assert value <= 0


@settings(max_examples=100, deadline=None)
@given(
    whole=st.integers(0, 10**6),
    decimals=st.text(alphabet="0123456789", min_size=1, max_size=6),
    minus=st.booleans(),
)
def test_a_decimal_comma_reads_as_a_decimal_point(con, whole: int, decimals: str, minus: bool):
    """4,5 is 4.5, as 4.5 is: it read as 45."""
    sign = "-" if minus else ""
    expected = float(f"{sign}{whole}.{decimals}")
    assert rating(con, f"{sign}{whole},{decimals}") == rating(con, f"{sign}{whole}.{decimals}")
    assert rating(con, f"{sign}{whole},{decimals}") == expected


@settings(max_examples=120, deadline=None)
@given(text=st.text(alphabet="0123456789.,-+/% ab\u2212\u0663\u066b", max_size=8))
def test_a_rating_read_and_written_out_reads_as_itself(con, text: str):
    """Never raises; a rating read, written as a plain decimal, is read as the same rating,
    and one written otherwise than as a number is the number its digits make."""
    value = rating(con, text)
    if value is None:
        return
    assert rating(con, format(Decimal(repr(value)), "f")) == value
    ascii_text = text.strip().replace("\u2212", "-").replace("\u0663", "3").replace("\u066b", ".")
    if not re.fullmatch(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)", ascii_text):
        digits = re.sub("[^0-9]", "", ascii_text)
        assert value == (-1 if ascii_text.startswith("-") else 1) * float(digits)
