"""Order amounts: every common way of writing a number of money, and nothing else, is read."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify.standardize import install_macros


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    install_macros(connection)
    yield connection
    connection.close()


def amounts(con: duckdb.DuckDBPyConnection, texts: list[str | None]) -> list[float | None]:
    if not texts:
        return []
    rows = con.execute(
        "SELECT cx_amount(t) FROM unnest($texts) WITH ORDINALITY AS u(t, i) ORDER BY i",
        {"texts": texts},
    ).fetchall()
    return [value for (value,) in rows]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12.50", 12.5),
        (" 12.50 ", 12.5),
        ("-12.50", -12.5),
        ("1,234.56", 1234.56),
        ("12,345,678.9", 12345678.9),
        ("1,234", 1234.0),
        ("1.234,56", 1234.56),
        ("1 234,56", 1234.56),
        ("1\u00a0234,56", 1234.56),
        ("1234,5", 1234.5),
        ("1'234.50", 1234.5),
        ("$12.50", 12.5),
        ("-$12.50", -12.5),
        ("$-12.50", -12.5),
        ("USD 12.50", 12.5),
        ("12.50 EUR", 12.5),
        ("€ 1.234,56", 1234.56),
        ("(12.50)", -12.5),
        ("($12.50)", -12.5),
        ("12.50-", -12.5),
        ("\u221212.50", -12.5),  # a typeset minus, as spreadsheets' number formats write it
        ("\u2212$1,234.50", -1234.5),
        ("12.50\u2212", -12.5),
        ("\uff0d12.50", -12.5),
        ("1e3", 1000.0),
        ("1.5e2", 150.0),
        ("1E-2", 0.01),
        (".5", 0.5),
        ("+3", 3.0),
        ("kr 12,50", 12.5),
        ("12,50 kr", 12.5),
        ("R$ 12,50", 12.5),
        ("zł 12,50", 12.5),
        ("US$12.50", 12.5),
        ("A$12.50", 12.5),
        ("Fr. 12.50", 12.5),
        ("₩1,000", 1000.0),
        ("₹1,00,000", 100000.0),
        ("₹12,34,567.89", 1234567.89),
    ],
)
def test_written_amounts(con, text: str, value: float):
    assert amounts(con, [text]) == [pytest.approx(value)]


@pytest.mark.parametrize(
    "text", ["", "abc", "12.5.6", "1,2,3", "5 apples", "nan", "inf", "12..5", "1e", "$", "()"]
)
def test_what_is_not_an_amount_is_null_never_another_number(con, text: str):
    """The old reading kept the digits of anything: `1e3` was 13, `1.5e2` was 1.52."""
    assert amounts(con, [text]) == [None]


def _styles(cents: int) -> list[str]:
    """One amount written as exports write it: US and European separators, currency before
    or after, accounting brackets and signs (ASCII or typeset) for negatives."""
    value = Decimal(cents).scaleb(-2)
    whole, frac = f"{abs(value):,.2f}".split(".")
    us, eu = f"{whole}.{frac}", f"{whole.replace(',', '.')},{frac}"
    if value >= 0:
        return [us, eu, f"${us}", f"{eu} EUR", f"USD {us}", f"{abs(value):.2f}"]
    return [f"-{us}", f"-{eu}", f"(${us})", f"({eu})", f"-${us}", f"{us}-", f"\u2212{us}"]


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(-(10**9), 10**9))
def test_every_style_of_one_amount_reads_as_that_amount(con, cents: int):
    texts = _styles(cents)
    assert amounts(con, texts) == [pytest.approx(cents / 100)] * len(texts)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="0123456789.,-+()$€eE ab", max_size=10))
def test_a_number_read_is_the_number_written(con, text: str):
    """Whatever the text, a value read is the one Python reads from it once its currency,
    brackets and separators are taken off, or NULL: never a number the text does not say."""
    (got,) = amounts(con, [text])
    if got is None:
        return
    bare = text.strip().strip("()").replace("$", "").replace("€", "").replace(" ", "")
    bare = re.sub("^[A-Za-z]{1,3}|[A-Za-z]{1,3}$", "", bare.strip("+-"))  # a currency
    candidates = {bare.replace(",", ""), bare.replace(".", "").replace(",", ".")}
    readings = set()
    for candidate in candidates:
        for sign in (1, -1):
            with contextlib.suppress(ValueError):
                readings.add(sign * abs(float(candidate.strip("+-"))))
    assert any(got == pytest.approx(r) for r in readings), (text, got)
