"""CSAT ratings: the number written, with its sign, so a negative falls outside any scale."""

from __future__ import annotations

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
        ("-1", -1.0),  # "unrated" in some helpdesks: read as 1 it was a rating of 1
        (" -1", -1.0),
        ("-0.5", -0.5),
        ("\u22121", -1.0),  # a typeset minus
        ("+3", 3.0),
        ("٣", 3.0),
        ("4/5", 45.0),  # kept as its digits: outside a 1-5 scale, so counted, not lost
        ("80%", 80.0),
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
