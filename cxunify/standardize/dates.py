"""Dates and timestamps as DuckDB macros, from whatever text an export happened to write.

A date of birth is a strong identifier only if "03/04/1985", "1985-04-03" and "3 April 1985"
become the same value, and event times are only comparable across sources once they are in
UTC. ``cx_parse_date`` and ``cx_parse_timestamp`` accept the formats customer exports use and
return NULL for anything else rather than guess: a missing date costs a little recall, a wrong
one can merge two people.

Numeric dates whose first two parts are both 12 or less are ambiguous; the caller says which
convention a source uses through the ``dayfirst`` argument (from the source's config). A part
above 12 settles it whatever ``dayfirst`` says. Two-digit years are read as the most recent
past: above this year's two digits means 19yy, otherwise 20yy.
"""

from __future__ import annotations

import duckdb

from cxunify.standardize import digits

# Earliest and latest plausible year; outside that the value is a typo or a placeholder
# (0001-01-01, 9999-12-31).
MIN_YEAR = 1900
MAX_YEAR = 2100

MONTHS: dict[str, int] = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}

# Zones written by name, as minutes east of UTC: those of RFC 5322's dates (UT, GMT and the
# US zones: CST is US Central there, as in every mail header) and others each name one zone
# (PST, CET, JST, AEST). Names that stand for several zones are not read (BST: British or
# Bangladesh; IST: India, Ireland or Israel; AST: Atlantic or Arabia): a time in one of them
# is NULL, and the run warns of it, rather than a guess hours off.
ZONES: dict[str, int] = {
    "z": 0, "ut": 0, "utc": 0, "gmt": 0,
    "est": -300, "edt": -240, "cst": -360, "cdt": -300,
    "mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
    "akst": -540, "akdt": -480, "hst": -600,
    "wet": 0, "west": 60, "cet": 60, "cest": 120, "eet": 120, "eest": 180, "msk": 180,
    "hkt": 480, "sgt": 480, "awst": 480, "jst": 540, "kst": 540,
    "acst": 570, "acdt": 630, "aest": 600, "aedt": 660, "nzst": 720, "nzdt": 780,
}  # fmt: skip
# An offset, alone or after UTC or GMT: +05:30, +0530, +05, UTC+05:30, GMT-3.
_OFFSET = r"(?:(?:utc|gmt)[+-]\d{1,2}|[+-]\d{2})(?::?\d{2})?"
_ZONE = "|".join([_OFFSET, *sorted(ZONES, key=lambda name: (-len(name), name))])

# A time of day at the end of a string: hours, minutes, optional seconds and fraction,
# optional am/pm and optional zone (a name of ZONES or an offset).
_TIME = (
    r"[ t](\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,](\d{1,9}))?(?: ?([ap])\.?m\.?)?"
    rf"(?: ?({_ZONE}))?$"
)
# C's ctime order, the year after the time and zone (see _cx_date_ctime).
_CTIME = (
    r"^((?:[a-z]+\.?,? )?[a-z]+\.? \d{1,2}) "
    rf"(\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?: (?:{_ZONE}))?) (\d{{4}})$"
)

_MACROS = r"""
-- Two-digit years are the latest matching year that is not in the future.
CREATE OR REPLACE MACRO _cx_date_year(y) AS
    CASE
        WHEN length(y) = 2 THEN TRY_CAST(y AS INTEGER)
            + CASE WHEN TRY_CAST(y AS INTEGER) > year(current_date) % 100 THEN 1900 ELSE 2000 END
        ELSE TRY_CAST(y AS INTEGER)
    END;

-- TRY_CAST rejects impossible days (1985-02-30) instead of rolling them over.
CREATE OR REPLACE MACRO _cx_date_make(y, m, d) AS
    TRY_CAST(CAST(y AS VARCHAR) || '-' || CAST(m AS VARCHAR) || '-' || CAST(d AS VARCHAR)
             AS DATE);

-- a/b/y where a and b may each be the day or the month: a part above 12 can only be the day.
CREATE OR REPLACE MACRO _cx_date_ab(a, b, y, dayfirst) AS
    _cx_date_make(
        y,
        CASE WHEN a > 12 THEN b WHEN b > 12 THEN a WHEN dayfirst THEN b ELSE a END,
        CASE WHEN a > 12 THEN a WHEN b > 12 THEN b WHEN dayfirst THEN a ELSE b END);

CREATE OR REPLACE MACRO _cx_date_numeric(p, dayfirst) AS
    _cx_date_ab(TRY_CAST(p.a AS INTEGER), TRY_CAST(p.b AS INTEGER), _cx_date_year(p.y),
                dayfirst);

-- Month-name dates reduced to three space-separated words: no weekday, no ordinal suffix,
-- no "of", no commas, dots, dashes or slashes.
CREATE OR REPLACE MACRO _cx_date_words(s) AS
    trim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        regexp_replace(s, '^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+', ''),
        '(\d)(?:st|nd|rd|th)\b', '\1', 'g'),
        '\bof\b', ' ', 'g'),
        '[,./-]', ' ', 'g'),
        ' +', ' ', 'g'));

-- Each public macro first computes everything its branches need into one struct and binds
-- it to `r` with `list_transform([struct], lambda r: ...)[1]`. A macro argument is otherwise
-- pasted in, and computed, at every use, and DuckDB does not share repeated work inside a
-- lambda body or a CASE branch, so the expensive parts are computed here, once.
-- s: the whole text; h: the same without a trailing time of day; p: the parts of a numeric
-- date; w: a month-name date as three words; t: the parts of the time of day.
CREATE OR REPLACE MACRO _cx_date_input_parts(s, h, dayfirst) AS
    struct_pack(
        s := s,
        h := h,
        dayfirst := dayfirst,
        p := regexp_extract(h, '^(\d+)[/.-](\d+)[/.-](\d+)$', ['a', 'b', 'y']),
        w := CASE WHEN regexp_matches(h, '[a-z]') THEN _cx_date_words(h) END,
        t := regexp_extract(s, getvariable('cx_date_time_re'),
                            ['h', 'mi', 'sec', 'frac', 'ap', 'tz']));

CREATE OR REPLACE MACRO _cx_date_input_of(s, dayfirst) AS
    _cx_date_input_parts(s, regexp_replace(s, getvariable('cx_date_time_re'), ''), dayfirst);

-- C's ctime order, the year after the time (Twitter's archive and API: "Wed Oct 10
-- 20:19:24 +0000 2018"; `date`: "Wed Oct 10 20:19:24 UTC 2018"), is read with the year
-- moved before the time; no other format ends in a year after a time.
CREATE OR REPLACE MACRO _cx_date_ctime(s) AS
    regexp_replace(s, getvariable('cx_date_ctime_re'), '\1 \3 \2');

CREATE OR REPLACE MACRO _cx_date_input(x, dayfirst) AS
    _cx_date_input_of(
        _cx_date_ctime(
            trim(regexp_replace(lower(cx_ascii_digits(CAST(x AS VARCHAR))), '\s+', ' ', 'g'))),
        coalesce(CAST(dayfirst AS BOOLEAN), false));

CREATE OR REPLACE MACRO _cx_date_month(m) AS getvariable('cx_date_months')[m];

CREATE OR REPLACE MACRO _cx_date_text(w) AS
    CASE
        WHEN regexp_full_match(w, '\d{1,2} [a-z]+ (?:\d{2}|\d{4})') THEN
            _cx_date_make(_cx_date_year(split_part(w, ' ', 3)),
                          _cx_date_month(split_part(w, ' ', 2)),
                          TRY_CAST(split_part(w, ' ', 1) AS INTEGER))
        WHEN regexp_full_match(w, '[a-z]+ \d{1,2} (?:\d{2}|\d{4})') THEN
            _cx_date_make(_cx_date_year(split_part(w, ' ', 3)),
                          _cx_date_month(split_part(w, ' ', 1)),
                          TRY_CAST(split_part(w, ' ', 2) AS INTEGER))
        WHEN regexp_full_match(w, '\d{4} [a-z]+ \d{1,2}') THEN
            _cx_date_make(TRY_CAST(split_part(w, ' ', 1) AS INTEGER),
                          _cx_date_month(split_part(w, ' ', 2)),
                          TRY_CAST(split_part(w, ' ', 3) AS INTEGER))
    END;

-- The date in input struct `r` (text `s`, the same without a trailing time `h`), before the
-- plausibility check. Every branch is guarded by the exact shape it parses, so no format can
-- be misread as another.
CREATE OR REPLACE MACRO _cx_date_of(r) AS
    CASE
        WHEN regexp_matches(r.s, '^\d{4}-\d{1,2}-\d{1,2}(?:[t ]|$)') THEN
            TRY_CAST(regexp_extract(r.s, '^\d{4}-\d{1,2}-\d{1,2}') AS DATE)
        WHEN regexp_full_match(r.s, '\d{8}(?:\.0+)?') THEN
            _cx_date_make(substr(r.s, 1, 4), substr(r.s, 5, 2), substr(r.s, 7, 2))
        WHEN regexp_full_match(r.h, '\d{4}[/.]\d{1,2}[/.]\d{1,2}') THEN
            TRY_CAST(regexp_replace(r.h, '[/.]', '-', 'g') AS DATE)
        WHEN regexp_full_match(r.h, '\d{1,2}[/.-]\d{1,2}[/.-](?:\d{2}|\d{4})') THEN
            _cx_date_numeric(r.p, r.dayfirst)
        WHEN r.w IS NOT NULL THEN _cx_date_text(r.w)
    END;

-- Applied to a bound value (`d` is used twice, and must not be computed twice).
CREATE OR REPLACE MACRO _cx_date_plausible(d) AS
    CASE WHEN year(d) BETWEEN getvariable('cx_date_min_year') AND getvariable('cx_date_max_year')
         THEN d END;

CREATE OR REPLACE MACRO cx_parse_date(x, dayfirst) AS
    list_transform(
        [list_transform([_cx_date_input(x, dayfirst)], lambda r: _cx_date_of(r))[1]],
        lambda d: _cx_date_plausible(d))[1];

-- Hours, minutes, seconds and fraction as a TIME; NULL when any part is out of range.
CREATE OR REPLACE MACRO _cx_ts_time(t) AS
    CASE
        WHEN t.ap <> '' AND NOT TRY_CAST(t.h AS INTEGER) BETWEEN 1 AND 12 THEN NULL
        WHEN TRY_CAST(t.h AS INTEGER) > 23 THEN NULL
        ELSE TRY_CAST(
            CAST(CASE t.ap WHEN 'p' THEN TRY_CAST(t.h AS INTEGER) % 12 + 12
                           WHEN 'a' THEN TRY_CAST(t.h AS INTEGER) % 12
                           ELSE TRY_CAST(t.h AS INTEGER) END AS VARCHAR)
            || ':' || t.mi || ':' || coalesce(nullif(t.sec, ''), '00')
            || CASE WHEN t.frac <> '' THEN '.' || left(t.frac, 6) ELSE '' END
            AS TIME)
    END;

-- An offset's sign, hours and minutes: +05:30, +0530, +05, -3.
CREATE OR REPLACE MACRO _cx_ts_offset_of(p) AS
    to_minutes(
        CASE WHEN p.sign = '-' THEN -1 ELSE 1 END
        * (TRY_CAST(p.h AS INTEGER) * 60 + coalesce(TRY_CAST(nullif(p.m, '') AS INTEGER), 0)));

-- The zone's offset from UTC; no zone means the time is already UTC.
CREATE OR REPLACE MACRO _cx_ts_offset(z) AS
    CASE
        WHEN z = '' THEN to_minutes(0)
        WHEN NOT regexp_matches(z, '[+-]') THEN to_minutes(getvariable('cx_date_zones')[z])
        ELSE _cx_ts_offset_of(
            regexp_extract(z, '([+-])(\d{1,2}):?(\d{2})?$', ['sign', 'h', 'm']))
    END;

-- `r` is the input struct plus `d`, the date of its date part.
CREATE OR REPLACE MACRO _cx_ts_of(r) AS
    CASE
        -- Unix epoch in seconds (optionally fractional) or milliseconds.
        WHEN regexp_full_match(r.s, '\d{10}(?:\.\d{1,6})?') THEN
            make_timestamp(CAST(round(CAST(r.s AS DOUBLE) * 1000000) AS BIGINT))
        WHEN regexp_full_match(r.s, '\d{13}') THEN make_timestamp(CAST(r.s AS BIGINT) * 1000)
        WHEN r.h <> r.s THEN r.d + _cx_ts_time(r.t) - _cx_ts_offset(r.t.tz)
        -- A time we could not read must not turn into midnight.
        WHEN regexp_matches(r.s, '\d:\d') THEN NULL
        ELSE CAST(r.d AS TIMESTAMP)
    END;

CREATE OR REPLACE MACRO cx_parse_timestamp(x, dayfirst) AS
    list_transform(
        [list_transform(
            [list_transform(
                [_cx_date_input(x, dayfirst)],
                lambda i: struct_pack(s := i.s, h := i.h, t := i.t, d := _cx_date_of(i)))[1]],
            lambda r: _cx_ts_of(r))[1]],
        lambda ts: _cx_date_plausible(ts))[1];
"""


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``cx_parse_date(x, dayfirst)`` and ``cx_parse_timestamp(x, dayfirst)`` on `con`."""
    digits.install(con)
    con.execute(
        "SET VARIABLE cx_date_months = map($k, $v)",
        {"k": list(MONTHS), "v": list(MONTHS.values())},
    )
    con.execute("SET VARIABLE cx_date_time_re = $v", {"v": _TIME})
    con.execute("SET VARIABLE cx_date_ctime_re = $v", {"v": _CTIME})
    con.execute(
        "SET VARIABLE cx_date_zones = map($k, $v)", {"k": list(ZONES), "v": list(ZONES.values())}
    )
    con.execute("SET VARIABLE cx_date_min_year = $v", {"v": MIN_YEAR})
    con.execute("SET VARIABLE cx_date_max_year = $v", {"v": MAX_YEAR})
    con.execute(_MACROS)
