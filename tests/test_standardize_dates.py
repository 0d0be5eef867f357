"""Date and timestamp parsing macros: examples for each format and rule, round trips of
generated dates and datetimes through every supported format, and one pass over a table large
enough to show the macros run vectorised."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify.standardize import dates
from tests.conftest import each


def parse_date(con: duckdb.DuckDBPyConnection, value: object, dayfirst: bool) -> date | None:
    return con.execute("SELECT cx_parse_date($v, $d)", {"v": value, "d": dayfirst}).fetchone()[0]


def parse_ts(con: duckdb.DuckDBPyConnection, value: object, dayfirst: bool) -> datetime | None:
    return con.execute("SELECT cx_parse_timestamp($v, $d)", {"v": value, "d": dayfirst}).fetchone()[
        0
    ]


def _current_yy() -> int:
    return date.today().year % 100


D = date(1985, 3, 12)


@pytest.mark.parametrize(
    ("raw", "dayfirst", "expected"),
    [
        # ISO and compact forms are never ambiguous
        ("1985-03-12", False, D),
        ("1985-3-12", True, D),
        ("19850312", False, D),
        ("19850312.0", False, D),
        ("1985/03/12", True, D),
        ("1985.03.12", False, D),
        ("1985-03-12T10:30:00Z", False, D),
        ("1985-03-12 23:30:00-05:00", True, D),  # the date as written, not converted
        ("  1985-03-12  ", False, D),
        # day and month order: dayfirst decides only when both are 12 or less
        ("12/03/1985", True, D),
        ("03/12/1985", False, D),
        ("12/03/1985", False, date(1985, 12, 3)),
        ("13/03/1985", False, date(1985, 3, 13)),
        ("03/13/1985", True, date(1985, 3, 13)),
        ("12-03-1985", True, D),
        ("12.03.1985", True, D),
        ("3/12/1985", False, D),
        ("12/3/1985", True, D),
        ("12/03/1985 10:30", True, D),
        # two-digit years
        ("12/03/85", True, D),
        ("03/12/85", False, D),
        ("01/01/00", True, date(2000, 1, 1)),
        ("12 Mar 85", True, D),
        # month names
        ("12 March 1985", False, D),
        ("12 Mar 1985", True, D),
        ("12-Mar-1985", False, D),
        ("12 MARCH 1985", False, D),
        ("March 12, 1985", True, D),
        ("Mar 12 1985", False, D),
        ("Mar. 12, 1985", False, D),
        ("12th March 1985", False, D),
        ("12th of March, 1985", False, D),
        ("March 12th, 1985", False, D),
        ("Tuesday, 12 March 1985", False, D),
        ("Tue, 12 Mar 1985", True, D),
        ("Sept 3 1985", True, date(1985, 9, 3)),
        ("1985 March 12", False, D),
        # impossible or implausible
        ("1985-02-30", False, None),
        ("31/02/1985", True, None),
        ("13/13/1985", True, None),
        ("1899-12-31", False, None),
        ("2101-01-01", False, None),
        ("0001-01-01", False, None),
        ("9999-12-31", False, None),
        ("12 Smarch 1985", False, None),
        ("1985", False, None),
        ("garbage", False, None),
        ("", False, None),
        (None, True, None),
    ],
)
def test_parse_date(con, raw, dayfirst, expected):
    assert parse_date(con, raw, dayfirst) == expected


def test_two_digit_year_pivot(con):
    yy = _current_yy()
    assert parse_date(con, f"01/06/{yy:02d}", True) == date(2000 + yy, 6, 1)
    if yy < 99:
        assert parse_date(con, f"01/06/{yy + 1:02d}", True) == date(1901 + yy, 6, 1)


def test_parse_date_accepts_non_text_and_null_dayfirst(con):
    row = con.execute(
        "SELECT cx_parse_date(19850312, true), cx_parse_date(DATE '1985-03-12', NULL), "
        "cx_parse_date('03/12/1985', NULL)"
    ).fetchone()
    assert row == (D, D, D)  # NULL dayfirst means month first


@pytest.mark.parametrize(
    ("raw", "dayfirst", "expected"),
    [
        ("2020-01-01T10:00:00Z", False, datetime(2020, 1, 1, 10)),
        ("2020-01-01T10:00:00", False, datetime(2020, 1, 1, 10)),
        ("2020-01-01 10:00:00", True, datetime(2020, 1, 1, 10)),
        ("2020-01-01 10:00", True, datetime(2020, 1, 1, 10)),
        ("2020-01-01T10:00:00.123Z", False, datetime(2020, 1, 1, 10, 0, 0, 123000)),
        ("2020-01-01T10:00:00.123456789Z", False, datetime(2020, 1, 1, 10, 0, 0, 123456)),
        ("2020-01-01T10:00:00+02:00", False, datetime(2020, 1, 1, 8)),
        ("2020-01-01T10:00:00-05:30", False, datetime(2020, 1, 1, 15, 30)),
        ("2020-01-01T10:00:00+0200", False, datetime(2020, 1, 1, 8)),
        ("2020-01-01 10:00:00+00", False, datetime(2020, 1, 1, 10)),
        ("2020-01-01T01:00:00+02:00", False, datetime(2019, 12, 31, 23)),
        ("2020-01-01 10:00:00 UTC", False, datetime(2020, 1, 1, 10)),
        # zones by name (RFC 5322's and others naming one zone each) and after UTC or GMT
        ("2020-01-01T10:00:00 PST", False, datetime(2020, 1, 1, 18)),
        ("2020-07-01 10:00 PDT", False, datetime(2020, 7, 1, 17)),
        ("2020-01-01 10:00 pm EST", False, datetime(2020, 1, 2, 3)),
        ("12/03/2020 14:30 CET", True, datetime(2020, 3, 12, 13, 30)),
        ("2020-01-01 10:00 JST", False, datetime(2020, 1, 1, 1)),
        ("2020-01-01 10:00 UT", False, datetime(2020, 1, 1, 10)),
        ("2020-01-01 10:00 UTC+05:30", False, datetime(2020, 1, 1, 4, 30)),
        ("2020-01-01 10:00 GMT-3", False, datetime(2020, 1, 1, 13)),
        ("Wed Oct 10 20:19:24 PDT 2018", False, datetime(2018, 10, 11, 3, 19, 24)),
        # a name of several zones, or none, is no time: hours off would be worse than none
        ("2020-01-01T10:00:00 BST", False, None),
        ("2020-01-01T10:00:00 IST", False, None),
        ("2020-01-01T10:00:00 XYZ", False, None),
        ("12/03/2020 14:30", True, datetime(2020, 3, 12, 14, 30)),
        ("12/03/2020 14:30", False, datetime(2020, 12, 3, 14, 30)),
        ("13/03/2020 14:30:15", False, datetime(2020, 3, 13, 14, 30, 15)),
        ("12/03/2020 2:30 PM", True, datetime(2020, 3, 12, 14, 30)),
        ("12/03/2020 12:05 am", True, datetime(2020, 3, 12, 0, 5)),
        ("March 12, 2020 10:30 PM", False, datetime(2020, 3, 12, 22, 30)),
        # ctime's order, the year last: Twitter's archive and API, `date`
        ("Wed Oct 10 20:19:24 +0000 2018", False, datetime(2018, 10, 10, 20, 19, 24)),
        ("Wed Oct 10 20:19:24 -0500 2018", True, datetime(2018, 10, 11, 1, 19, 24)),
        ("Wed Oct 10 20:19:24 UTC 2018", False, datetime(2018, 10, 10, 20, 19, 24)),
        ("Mon Oct  1 08:05:00 2018", False, datetime(2018, 10, 1, 8, 5)),
        ("Wed Oct 10 25:19:24 +0000 2018", False, None),
        ("1600000000", False, datetime(2020, 9, 13, 12, 26, 40)),
        ("1600000000123", False, datetime(2020, 9, 13, 12, 26, 40, 123000)),
        ("1600000000.5", False, datetime(2020, 9, 13, 12, 26, 40, 500000)),
        ("2020-01-01", False, datetime(2020, 1, 1)),
        ("12 March 2020", False, datetime(2020, 3, 12)),
        ("20200101", False, datetime(2020, 1, 1)),
        ("2020-01-01T25:00:00", False, None),
        ("2020-01-01T10:60:00", False, None),
        ("2020-13-01T10:00:00", False, None),
        ("12/03/2020 13:00 pm", True, None),
        ("2020-01-01Tgarbage", False, datetime(2020, 1, 1)),  # the date part is still a date
        ("2020-01-01 10:00 in the morning", False, None),  # a time we cannot read
        ("10:30", False, None),
        ("123456789", False, None),  # nine digits is not an epoch we accept
        ("garbage", False, None),
        ("", False, None),
        (None, False, None),
    ],
)
def test_parse_timestamp(con, raw, dayfirst, expected):
    assert parse_ts(con, raw, dayfirst) == expected


def test_parse_timestamp_accepts_timestamps(con):
    row = con.execute(
        "SELECT cx_parse_timestamp(TIMESTAMP '2020-01-01 10:00:00', false), "
        "cx_parse_timestamp(1600000000, NULL)"
    ).fetchone()
    assert row == (datetime(2020, 1, 1, 10), datetime(2020, 9, 13, 12, 26, 40))


def test_install_is_idempotent(con):
    dates.install(con)
    dates.install(con)
    assert parse_date(con, "12 March 1985", True) == D


# --- round trips --------------------------------------------------------------------------

# (strftime format, dayfirst it needs; None when the format is unambiguous)
_DATE_FORMATS: list[tuple[str, bool | None]] = [
    ("%Y-%m-%d", None),
    ("%Y%m%d", None),
    ("%Y/%m/%d", None),
    ("%Y.%m.%d", None),
    ("%d/%m/%Y", True),
    ("%m/%d/%Y", False),
    ("%d-%m-%Y", True),
    ("%m-%d-%Y", False),
    ("%d.%m.%Y", True),
    ("%m.%d.%Y", False),
    ("%d %B %Y", None),
    ("%d %b %Y", None),
    ("%d-%b-%Y", None),
    ("%B %d, %Y", None),
    ("%b %d %Y", None),
    ("%b %d, %Y", None),
    ("%A, %d %B %Y", None),
    ("%Y-%m-%dT%H:%M:%S", None),
    ("%Y-%m-%d %H:%M:%S%z", None),
    ("%d/%m/%Y %H:%M", True),
    ("%m/%d/%Y %H:%M:%S", False),
]
_TWO_DIGIT_FORMATS: list[tuple[str, bool | None]] = [
    ("%d/%m/%y", True),
    ("%m/%d/%y", False),
    ("%d.%m.%y", True),
    ("%d %b %y", None),
    ("%d-%b-%y", None),
]

_DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


# Values are checked a list per statement (see tests.conftest.each): 15 lists of 5 to 25 values
# are at least the 75 values one at a time that these properties were checked on.


def _lists(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(strategy, min_size=5, max_size=25)


def parse_dates(con: duckdb.DuckDBPyConnection, cases: list[tuple[str, bool]]) -> list:
    """cx_parse_date of each (text, dayfirst), in one statement."""
    rows = each(con, "cx_parse_date(t, d)", t=[t for t, _ in cases], d=[d for _, d in cases])
    return [value for (value,) in rows]


def parse_tss(con: duckdb.DuckDBPyConnection, cases: list[tuple[str, bool]]) -> list:
    """cx_parse_timestamp of each (text, dayfirst), in one statement."""
    rows = each(con, "cx_parse_timestamp(t, d)", t=[t for t, _ in cases], d=[d for _, d in cases])
    return [value for (value,) in rows]


def _written(formats: list[tuple[str, bool | None]], dates: st.SearchStrategy = _DATES):
    """(date, its text in one of the formats, the dayfirst the format needs or a coin's)."""
    return st.tuples(dates, st.sampled_from(formats), st.booleans()).map(
        lambda c: (c[0], c[0].strftime(c[1][0]), c[2] if c[1][1] is None else c[1][1])
    )


def _in_pivot_window(value: date) -> bool:
    yy = value.year % 100
    return value.year == (1900 if yy > _current_yy() else 2000) + yy


@settings(max_examples=15, deadline=None)
@given(_lists(_written(_DATE_FORMATS)))
def test_dates_round_trip(con, cases):
    parsed = parse_dates(con, [(text, dayfirst) for _, text, dayfirst in cases])
    for (value, text, _), got in zip(cases, parsed, strict=True):
        assert got == value, text


@settings(max_examples=15, deadline=None)
@given(_lists(_written(_TWO_DIGIT_FORMATS, _DATES.filter(_in_pivot_window))))
def test_two_digit_years_round_trip_inside_the_pivot_window(con, cases):
    parsed = parse_dates(con, [(text, dayfirst) for _, text, dayfirst in cases])
    for (value, text, _), got in zip(cases, parsed, strict=True):
        assert got == value, text


@settings(max_examples=15, deadline=None)
@given(
    _lists(
        st.tuples(
            _DATES.filter(lambda d: d.day > 12), st.booleans(), st.sampled_from(["/", "-", "."])
        )
    )
)
def test_a_day_above_12_wins_over_dayfirst(con, cases):
    written = [
        (value.strftime(fmt), dayfirst)
        for value, dayfirst, sep in cases
        for fmt in (f"%d{sep}%m{sep}%Y", f"%m{sep}%d{sep}%Y")
    ]
    parsed = parse_dates(con, written)
    expected = [value for value, _, _ in cases for _ in range(2)]
    for (text, dayfirst), got, value in zip(written, parsed, expected, strict=True):
        assert got == value, (text, dayfirst)


_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_DATETIMES = st.datetimes(
    min_value=datetime(1901, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.none() | _OFFSETS
)
_TRUNCATE = {
    "minutes": lambda d: d.replace(second=0, microsecond=0),
    "seconds": lambda d: d.replace(microsecond=0),
    "milliseconds": lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000),
    "microseconds": lambda d: d,
}


def _as_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _iso(value: datetime, sep: str, timespec: str, zone: str) -> str:
    text = value.isoformat(sep=sep, timespec=timespec)
    if value.tzinfo is not None and zone != "+HH:MM":
        offset = text[-6:]
        if zone == "Z" and offset == "+00:00":
            text = text[:-6] + "Z"
        elif zone == "+HHMM":
            text = text[:-6] + offset.replace(":", "")
    return text


@settings(max_examples=15, deadline=None)
@given(
    _lists(
        st.tuples(
            _DATETIMES,
            st.sampled_from(["T", " "]),
            st.sampled_from(sorted(_TRUNCATE)),
            st.sampled_from(["+HH:MM", "Z", "+HHMM"]),
            st.booleans(),
        )
    )
)
def test_iso_datetimes_round_trip_to_utc(con, cases):
    texts = [_iso(value, sep, timespec, zone) for value, sep, timespec, zone, _ in cases]
    parsed = parse_tss(con, [(text, c[4]) for text, c in zip(texts, cases, strict=True)])
    for (value, _, timespec, _, _), text, got in zip(cases, texts, parsed, strict=True):
        assert got == _as_naive_utc(_TRUNCATE[timespec](value)), text


@settings(max_examples=15, deadline=None)
@given(
    _lists(
        st.tuples(
            st.datetimes(min_value=datetime(1901, 1, 2), max_value=datetime(2099, 12, 30)),
            st.sampled_from(sorted(dates.ZONES)),
            st.sampled_from(["%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M %p", "%a %b %d %H:%M:%S"]),
        )
    )
)
def test_times_in_a_named_zone_round_trip_to_utc(con, cases):
    """A time written in a zone by name (10:00 PST) is that zone's offset from UTC."""
    texts = [
        f"{value:%a %b %d %H:%M:%S} {zone.upper()} {value:%Y}"
        if shape.startswith("%a")
        else f"{value.strftime(shape)} {zone.upper()}"
        for value, zone, shape in cases
    ]
    parsed = parse_tss(con, [(text, False) for text in texts])
    for (value, zone, shape), text, got in zip(cases, texts, parsed, strict=True):
        written = value.replace(microsecond=0, second=0 if "%S" not in shape else value.second)
        assert got == written - timedelta(minutes=dates.ZONES[zone]), text


@settings(max_examples=15, deadline=None)
@given(_lists(st.tuples(_DATETIMES, st.booleans())))
def test_ctime_datetimes_round_trip_to_utc(con, cases):
    """Twitter's created_at ("Wed Oct 10 20:19:24 +0000 2018") read no date at all."""
    texts = [
        # +HHMM; none: the time is UTC
        value.strftime(f"%a %b %d %H:%M:%S{' %z' if value.tzinfo is not None else ''} %Y")
        for value, _ in cases
    ]
    parsed = parse_tss(con, [(text, c[1]) for text, c in zip(texts, cases, strict=True)])
    for (value, _), text, got in zip(cases, texts, parsed, strict=True):
        assert got == _as_naive_utc(value.replace(microsecond=0)), text


@settings(max_examples=15, deadline=None)
@given(
    _lists(
        st.tuples(
            st.integers(min_value=1_000_000_000, max_value=4_102_444_799), st.integers(0, 999)
        )
    )
)
def test_epochs_round_trip(con, cases):
    rows = each(
        con,
        "cx_parse_timestamp(s, false), cx_parse_timestamp(ms, true)",
        s=[str(seconds) for seconds, _ in cases],
        ms=[f"{seconds}{millis:03d}" for seconds, millis in cases],
    )
    for (seconds, millis), row in zip(cases, rows, strict=True):
        moment = datetime(1970, 1, 1) + timedelta(seconds=seconds)
        assert row == (moment, moment + timedelta(milliseconds=millis)), (seconds, millis)


@settings(max_examples=15, deadline=None)
@given(_lists(st.tuples(st.text(), st.booleans())))
def test_never_raises(con, cases):
    rows = each(
        con,
        "cx_parse_date(v, d), cx_parse_timestamp(v, d)",
        v=[text for text, _ in cases],
        d=[dayfirst for _, dayfirst in cases],
    )
    assert len(rows) == len(cases)


# --- vectorised over a large table ----------------------------------------------------------


def test_every_macro_runs_over_200k_rows(con):
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE many_dates AS
        WITH d AS (
            SELECT i, DATE '1950-01-01' + CAST(i % 20000 AS INTEGER) AS day
            FROM range(200000) AS r(i)
        )
        SELECT CASE i % 8
                   WHEN 0 THEN strftime(day, '%Y-%m-%d')
                   WHEN 1 THEN strftime(day, '%d/%m/%Y')
                   WHEN 2 THEN strftime(day, '%m/%d/%y')
                   WHEN 3 THEN strftime(day, '%d %B %Y')
                   WHEN 4 THEN strftime(day, '%b %d, %Y')
                   WHEN 5 THEN strftime(day, '%Y%m%d')
                   WHEN 6 THEN strftime(day, '%Y-%m-%dT%H:%M:%S+02:00')
                   ELSE strftime(day, '%d.%m.%Y 10:30')
               END AS text,
               i % 3 = 0 AS dayfirst
        FROM d
        """
    )
    row = con.execute(
        """
        SELECT count(*), count(cx_parse_date(text, dayfirst)),
               count(cx_parse_timestamp(text, dayfirst)),
               count(DISTINCT cx_parse_date(text, dayfirst))
        FROM many_dates
        """
    ).fetchone()
    total, parsed_dates, parsed_timestamps, distinct = row
    assert total == 200_000
    # Ambiguous day/month orders still parse (to the order dayfirst says); only impossible
    # ones (a day above 12 read as a month) are NULL.
    assert parsed_dates > 150_000 and parsed_timestamps > 150_000
    assert distinct > 10_000
