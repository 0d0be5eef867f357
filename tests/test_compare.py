"""Each comparison level, computed by the engine on hand-made node pairs."""

from __future__ import annotations

import datetime as dt

import duckdb
import jellyfish
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify.compare import COMPARISON_BY_NAME, NODE_FEATURES, _one_digit_apart, gammas_sql

NODE_COLUMNS = {
    "first_name_std": "VARCHAR",
    "first_name_key": "VARCHAR",
    "last_name_std": "VARCHAR",
    "email_std": "VARCHAR",
    "email_local": "VARCHAR",
    "email_domain": "VARCHAR",
    "phone": "VARCHAR",
    "phone_digits": "VARCHAR",
    "dob": "DATE",
    "street_std": "VARCHAR",
    "postcode": "VARCHAR",
    "city_std": "VARCHAR",
    "national_id": "VARCHAR",
    "handle_letters": "VARCHAR",
    "handle": "VARCHAR",
}


def level(std_con, comparison: str, left: dict, right: dict) -> int:
    columns = ", ".join(f"{name} {kind}" for name, kind in NODE_COLUMNS.items())
    std_con.execute(f"CREATE OR REPLACE TEMP TABLE t_records (node BIGINT, {columns})")
    for node, values in ((1, left), (2, right)):
        row = [values.get(name) for name in NODE_COLUMNS]
        marks = ", ".join("?" * (len(row) + 1))
        std_con.execute(f"INSERT INTO t_records VALUES ({marks})", [node, *row])
    features = ", ".join(f"{sql} AS {name}" for name, sql in NODE_FEATURES.items())
    std_con.execute(
        f"CREATE OR REPLACE TEMP TABLE t_nodes AS SELECT r.*, {features} FROM t_records r"
    )
    sql = gammas_sql(
        "SELECT 1 AS left_node, 2 AS right_node", "t_nodes", (COMPARISON_BY_NAME[comparison],)
    )
    return std_con.execute(sql).fetchone()[2]


def name(first, last=None, key=None):
    return {"first_name_std": first, "last_name_std": last, "first_name_key": key or first}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (name("robert", "smith"), name("robert", "smith"), 6),
        (name("bob", "smith", "robert"), name("robert", "smith"), 5),
        (name("katherine"), name("katherine", key="x"), 6),
        (name("jonathon"), name("jonathan"), 4),
        (name("smith", "robert"), name("robert", "smith"), 2),
        (name("smith", "robret"), name("robert", "smith"), 2),
        (name("r", "smith"), name("robert", "smith"), 1),
        # two equal initials are an initial's evidence, not an exact name's (J. and J. may be
        # José and Joshua)
        (name("j", "malone"), name("j", "malone"), 1),
        (name("j", "malone"), name("m", "malone"), 0),
        (name("mary"), name("peter"), 0),
        (name(None), name("peter"), -1),
    ],
)
def test_first_name_levels(std_con, left, right, expected):
    assert level(std_con, "first_name", left, right) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("smith", "smith", 4),
        ("johnson", "jonson", 3),
        ("smith", "smyth", 2),
        ("s", "smith", 1),
        ("smith", "jones", 0),
        (None, "jones", -1),
    ],
)
def test_last_name_levels(std_con, left, right, expected):
    assert (
        level(std_con, "last_name", {"last_name_std": left}, {"last_name_std": right}) == expected
    )


def email(address):
    if address is None:
        return {}
    local, domain = address.split("@")
    return {"email_std": address, "email_local": local, "email_domain": domain}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("jdoe@gmail.com", "jdoe@gmail.com", 3),
        ("jdoe@gmail.com", "jdoe@yahoo.com", 1),
        ("jdoe1@gmail.com", "jode1@gmail.com", 2),  # a typo in the letters
        ("jdoe@gmail.com", "jdoe1@gmail.com", 0),  # another number is another mailbox
        ("jdoe@gmail.com", "amy@gmail.com", 0),
        (None, "amy@gmail.com", -1),
    ],
)
def test_email_levels(std_con, left, right, expected):
    assert level(std_con, "email", email(left), email(right)) == expected


def test_email_on_a_name_with_a_short_number_is_no_evidence(std_con):
    john = name("john", "smith")
    left, right = email("jsmith84@gmail.com"), email("jsmith84@yahoo.com")
    assert level(std_con, "email", {**left, **john}, {**right, **john}) == -1
    left, right = email("jsmith1984@gmail.com"), email("jsmith1984@yahoo.com")
    assert level(std_con, "email", {**left, **john}, {**right, **john}) == 1


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("+15550102233", "+15550102233", 2),
        ("+15550102233", "+44550102233", 1),
        ("+15550102233", "+15559998877", 0),
        (None, "+15559998877", -1),
    ],
)
def test_phone_levels(std_con, left, right, expected):
    def phone(p):
        return {"phone": p, "phone_digits": p and p.lstrip("+")}

    assert level(std_con, "phone", phone(left), phone(right)) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (dt.date(1985, 3, 12), dt.date(1985, 3, 12), 3),
        (dt.date(1985, 3, 12), dt.date(1985, 12, 3), 2),  # day and month swapped
        (dt.date(1985, 3, 12), dt.date(1985, 3, 13), 2),  # one keystroke
        (dt.date(1985, 3, 12), dt.date(1985, 7, 29), 1),
        (dt.date(1985, 3, 12), dt.date(1971, 7, 29), 0),
        (None, dt.date(1971, 7, 29), -1),
    ],
)
def test_dob_levels(std_con, left, right, expected):
    assert level(std_con, "dob", {"dob": left}, {"dob": right}) == expected


def address(street=None, postcode=None, city=None):
    return {"street_std": street, "postcode": postcode, "city_std": city}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (address("12 main st", "02134"), address("12 main st", "02134"), 5),
        (address("12 main st", "02134"), address("12 mian st", "02134"), 4),
        (address("12 main st", "02134"), address("12 main st", "90210"), 3),
        (address("12 main st", "02134"), address("99 oak ave", "02134"), 2),
        (address(city="boston"), address("9 elm st", city="boston"), 1),
        (address(city="boston"), address(city="denver"), 0),
        (address(), address(city="denver"), -1),
        (address(postcode="02134"), address(city="denver"), -1),  # nothing in common to compare
    ],
)
def test_address_levels(std_con, left, right, expected):
    assert level(std_con, "address", left, right) == expected


def handle(h):
    return {"handle": h, "handle_letters": "".join(c for c in h if c.isalpha())}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ({**handle("toriperez84")}, {"email_local": "tori.perez84"}, 2),
        ({**handle("toriperez84")}, {"email_local": "tori.perez85"}, -1),
        (
            {**handle("toriperez")},
            {**name("tori", "perez"), "email_local": "tori.perez"},
            -1,
        ),
        # a name and a two-digit number: many people with that name have one
        ({**handle("jsmith84")}, {**name("john", "smith"), "email_local": "jsmith84"}, -1),
        ({**handle("jsmith1984")}, {**name("john", "smith"), "email_local": "jsmith1984"}, 2),
        ({**handle("grayjonathan")}, {**name("jonathan", "gray")}, 1),
        ({**handle("dstone")}, {**name("david", "stone")}, 1),
        ({**handle("davidstone"), "last_name_std": "s"}, {**name("david", "stone")}, 1),
        ({**handle("kimmyramsey")}, {**name("kimberly", "ramsey")}, 1),
        # the first name alone repeats the first-name comparison
        ({**handle("davids")}, {**name("david", "stone")}, -1),
        ({**handle("petes")}, {**name("david", "stone")}, 0),
        ({**handle("davids")}, {**name("david")}, -1),
        ({**handle("johnsmith"), **name("john", "smith")}, {"email_local": "x1"}, -1),
        ({}, {**name("david", "stone")}, -1),
        ({**handle("abc1")}, {**handle("abc1")}, 2),
        ({**handle("abc1")}, {**handle("abc2")}, -1),
    ],
)
def test_handle_levels(std_con, left, right, expected):
    assert level(std_con, "handle", left, right) == expected


_DIGITS_CON = duckdb.connect()


@settings(max_examples=120, deadline=None)
@given(
    st.integers(10_000_000, 99_999_999),
    st.lists(st.tuples(st.sampled_from(["replace", "swap"]), st.integers(0, 7), st.integers(0, 9))),
)
def test_one_digit_apart_is_an_edit_distance_of_one_between_the_spellings(number, edits):
    """The arithmetic typo test agrees with Damerau–Levenshtein on the digits, on numbers a
    few random edits apart (edits that keep eight digits)."""
    digits = list(str(number))
    for kind, position, value in edits:
        if kind == "replace" and not (position == 0 and value == 0):
            digits[position] = str(value)
        elif kind == "swap" and position < 7 and not (position == 0 and digits[1] == "0"):
            digits[position], digits[position + 1] = digits[position + 1], digits[position]
    other = int("".join(digits))
    expected = jellyfish.damerau_levenshtein_distance(str(number), str(other)) <= 1
    sql = f"SELECT {_one_digit_apart('a', 'b', 8)} FROM (SELECT $a AS a, $b AS b)"
    assert _DIGITS_CON.execute(sql, {"a": number, "b": other}).fetchall() == [(expected,)]
