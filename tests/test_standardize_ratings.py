"""CSAT ratings: the number written, with its sign, so a negative falls outside any scale."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import each


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


TOP, MIDDLE, BOTTOM = "top", "middle", "bottom"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        # Freshdesk's survey, Help Scout's, a satisfaction survey's: read as no rating before
        ("Awesome", TOP),
        ("Neutral", MIDDLE),
        ("Not Good", BOTTOM),
        ("Great", TOP),
        ("Okay", MIDDLE),
        ("Satisfied", TOP),
        ("Dissatisfied", BOTTOM),
        ("Very satisfied", TOP),
        ("very-dissatisfied", BOTTOM),
        ("Happy", TOP),
        ("Unhappy", BOTTOM),
        ("Not satisfied", BOTTOM),
        ("Neutral, with comment", MIDDLE),
    ],
)
def test_ratings_in_words_are_the_top_middle_or_bottom_of_the_scale(con, text: str, level: str):
    """+infinity, NaN or -infinity: the touchpoints read them as the configured scale's top,
    middle and bottom (test_traits checks those)."""
    value = rating(con, text)
    assert value is not None
    got = MIDDLE if math.isnan(value) else TOP if value > 0 else BOTTOM
    assert (got, math.isinf(value) or math.isnan(value)) == (level, True)


@pytest.mark.parametrize("text", ["Meh", "not good at all", "good job", "n/a", "N/A", "none"])
def test_other_words_are_no_rating(con, text: str):
    assert rating(con, text) is None


# Values are checked a list per statement (see tests.conftest.each): 20 or 24 lists of 5 to 25
# values are at least the 100 or 120 values one at a time these properties were checked on.


def ratings(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[float | None]:
    return [value for (value,) in each(con, "cx_rating(t)", t=texts)]


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-1000, 1000), st.sampled_from(["", " "])), min_size=5, max_size=25
    )
)
def test_a_written_whole_rating_reads_as_itself(con, cases: list[tuple[int, str]]):
    texts = [f"{space}{n}{space}" for n, space in cases]
    for (n, _), text, value in zip(cases, texts, ratings(con, texts), strict=True):
        assert value == n, text


@settings(max_examples=24, deadline=None)
@given(texts=st.lists(st.text(alphabet="0123456789.,-+/% ab", max_size=8), min_size=5, max_size=25))
def test_a_rating_written_with_a_minus_is_never_positive(con, texts: list[str]):
    """Never raises; a leading minus is never dropped (a -1 read as 1 was a rating)."""
    for text, value in zip(texts, ratings(con, texts), strict=True):
        if text.lstrip().startswith("-") and value is not None:
            assert value <= 0, text


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.text(alphabet="0123456789", min_size=1, max_size=6),
            st.booleans(),
        ),
        min_size=5,
        max_size=25,
    )
)
def test_a_decimal_comma_reads_as_a_decimal_point(con, cases: list[tuple[int, str, bool]]):
    """4,5 is 4.5, as 4.5 is: it read as 45."""
    written = [f"{'-' if minus else ''}{whole}{{}}{decimals}" for whole, decimals, minus in cases]
    rows = each(
        con,
        "cx_rating(c), cx_rating(p)",
        c=[text.format(",") for text in written],
        p=[text.format(".") for text in written],
    )
    for text, (comma, point) in zip(written, rows, strict=True):
        expected = float(text.format("."))
        assert comma == point == expected, text.format(",")


@settings(max_examples=24, deadline=None)
@given(
    texts=st.lists(
        st.text(alphabet="0123456789.,-+/% ab\u2212\u0663\u066b", max_size=8),
        min_size=5,
        max_size=25,
    )
)
def test_a_rating_read_and_written_out_reads_as_itself(con, texts: list[str]):
    """Never raises; a rating read, written as a plain decimal, is read as the same rating,
    and one written otherwise than as a number is the number its digits make."""
    read = [(text, value) for text, value in zip(texts, ratings(con, texts), strict=True)]
    read = [(text, value) for text, value in read if value is not None]
    plain = [format(Decimal(repr(value)), "f") for _, value in read]
    for (text, value), again in zip(read, ratings(con, plain), strict=True):
        assert again == value, text
        ascii_text = (
            text.strip().replace("\u2212", "-").replace("\u0663", "3").replace("\u066b", ".")
        )
        if not re.fullmatch(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)", ascii_text):
            digits = re.sub("[^0-9]", "", ascii_text)
            assert value == (-1 if ascii_text.startswith("-") else 1) * float(digits), text
