"""Stage 2, standardise: typed, normalised ``cx_records`` from the mapped text rows.

Each kind of value has its own module (names, emails, phones, addresses, dates) that installs
SQL macros on the connection; this stage applies them in one pass, entirely inside the engine.
A record keeps a display form of each value (for golden records) and a matching form.

On Spark the same SQL runs partition by partition, each in a DuckDB of its own on the
executor holding the rows (the macros are DuckDB's; translating them would give other values
at the margins of regular expressions and accents); record keys come with the rows from
ingest.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any, cast

import duckdb
import phonenumbers

from cxunify.config import UNKNOWN_CURRENCY, Config, currency_codes
from cxunify.engine import DuckDBEngine
from cxunify.fields import FIELD_NAMES
from cxunify.ingest import MAPPED, OTHERS
from cxunify.record_ids import clean_id_sql
from cxunify.sql import ident, table
from cxunify.standardize import addresses, cache, dates, digits, emails, names, phones

RECORDS = table("records")
SETTINGS = table("source_settings")

# ISO 4217 codes of the currency symbols exports write, alone or after letters naming whose
# dollar (or yen) it is. A symbol not here (RD$, kr) names no currency that can be told.
_CURRENCY_SYMBOLS = {
    "$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW",
    "US$": "USD", "CA$": "CAD", "C$": "CAD", "A$": "AUD", "AU$": "AUD", "NZ$": "NZD",
    "HK$": "HKD", "S$": "SGD", "NT$": "TWD", "MX$": "MXN", "R$": "BRL", "CN¥": "CNY",
    "JP¥": "JPY",
}  # fmt: skip
# Symbols that several currencies write ($: dozens of dollars, £: several pounds, ¥: yen and
# yuan). Alone they read as the first of them, and beside an amount they agree with whatever
# currency the row's currency column names: $12.50 with CAD is 12.50 CAD.
_SHARED_SYMBOLS = ["$", "£", "¥"]


def install_macros(con: duckdb.DuckDBPyConnection, values_only: bool = False) -> None:
    """Make every standardisation macro (``cx_*``) usable on a DuckDB connection; with
    `values_only`, only those of dates, times, amounts, currencies, ratings and counts (what
    inferring a config reads with). They come from the user's cache of them (see `cache`),
    else are created on the connection."""
    statements = macro_statements(values_only)
    if not cache.attach(con, statements, "values" if values_only else "all"):
        for sql, params in statements:
            con.execute(sql, params)


def _create_macros(con: duckdb.DuckDBPyConnection, values_only: bool) -> None:
    """Create the macros on `con` (names, emails, phones and addresses take most of the time,
    most of it the phone rules)."""
    for module in (
        (digits, dates) if values_only else (digits, names, emails, phones, addresses, dates)
    ):
        module.install(con)
    con.execute(
        "SET VARIABLE cx_currency_symbols = MAP($symbols, $codes)",
        {"symbols": list(_CURRENCY_SYMBOLS), "codes": list(_CURRENCY_SYMBOLS.values())},
    )
    con.execute("SET VARIABLE cx_shared_currency_symbols = $shared", {"shared": _SHARED_SYMBOLS})
    con.execute("SET VARIABLE cx_unknown_currency = $unknown", {"unknown": UNKNOWN_CURRENCY})
    con.execute("SET VARIABLE cx_currency_codes = $codes", {"codes": currency_codes()})
    # An amount as exports write it: 1,234.56 or 1.234,56 (or 1 234,56, 1'234.50), a
    # currency symbol or code before or after, a sign before or after, accounting brackets
    # for a negative, 1e3. Anything else is NULL, never the digits it happens to hold.
    # Read as DECIMAL, not DOUBLE (money is never float): 1.005 rounds to 1.01 as written,
    # and 99999999999999.99 stays itself; only 1e3 goes through a double.
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount_number(s) AS CASE
            WHEN regexp_full_match(s, '\d+(\.\d+)?[eE][+-]?\d+')
                THEN TRY_CAST(TRY_CAST(s AS DOUBLE) AS DECIMAL(38,10))
            WHEN regexp_full_match(s, '\d{1,3}([. \x{00A0}]\d{3})*,\d{1,2}|\d+,\d{1,2}')
                THEN TRY_CAST(
                    replace(regexp_replace(s, '[. \x{00A0}]', '', 'g'), ',', '.') AS DECIMAL(38,10))
            WHEN regexp_full_match(s, '\d{1,3}([, \x{00A0}'']\d{3})*(\.\d*)?|\d+(\.\d*)?|\.\d+'
                                       || '|\d{1,2}(,\d{2})+,\d{3}(\.\d*)?')  -- or 1,00,000
                THEN TRY_CAST(regexp_replace(s, '[, \x{00A0}'']', '', 'g') AS DECIMAL(38,10))
            END
        """
    )
    # A currency: a symbol, maybe after letters (US$, R$), or 2 or 3 letters (USD, kr, zł, Fr.).
    # Latin letters by range: RE2 takes a tenth of a second to compile any-letter (pL) per query.
    currency = r"(?:[A-Za-z\x{00C0}-\x{024F}]{0,2}[$€£¥₹₩]|[A-Za-z\x{00C0}-\x{024F}]{2,3}\.?)"
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount_parts(t) AS regexp_extract(
            CASE WHEN regexp_full_match(t, '\(.*\)') THEN '(' || trim(t[2:-2]) ELSE t END,
            '^(\(?)([+-]?)\s*"""
        + currency
        + r"""?\s*([+-]?)\s*(\d[\d., \x{00A0}'']*(?:[eE][+-]?\d+)?|\.\d+)\s*"""
        + currency
        + r"""?\s*(-?)$',
            ['bracket', 'sign', 'sign_after_currency', 'number', 'sign_after'])
        """
    )
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount_signed(p) AS
            CASE WHEN p['bracket'] = '('
                      OR '-' IN (p['sign'], p['sign_after_currency'], p['sign_after'])
                 THEN -cx_amount_number(trim(p['number']))
                 ELSE cx_amount_number(trim(p['number'])) END
        """
    )
    # Any script's digits, the Arabic decimal and thousands separators, and the minus signs of
    # typesetting (U+2212, and the full-width and small forms) read as ASCII: a refund written
    # −12.50 by a spreadsheet's number format was no amount at all.
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount_ascii(x) AS
            CASE WHEN strlen(x) = length(x) THEN x
                 ELSE regexp_replace(replace(replace(cx_ascii_digits(x), '٫', '.'), '٬', ','),
                                     '[\x{2212}\x{FF0D}\x{FE63}]', '-', 'g') END
        """
    )
    # The lambda binds the parts once: passed straight in, they were copied into every use in
    # cx_amount_signed and cx_amount_number, and the parts' regular expression ran about ten
    # times a value (bound, a million amounts such as $1,234.50 read three times as fast).
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount_of(x) AS
            CASE WHEN regexp_full_match(x, '-?\d+(\.\d+)?')
                 THEN TRY_CAST(x AS DECIMAL(38,10))
                 ELSE list_transform([cx_amount_parts(trim(x))], lambda p: cx_amount_signed(p))[1]
                 END
        """
    )
    # The lambda binds the ASCII form once: passed straight in, it would be copied into every
    # use of the argument in cx_amount_of and its macros, and binding grew tenfold (55 ms a
    # query, paid by every statement reading an amount).
    # Plain amounts first, outside the lambda, which costs a list per row.
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount(x) AS
            CASE WHEN regexp_full_match(x, '-?\d+(\.\d+)?')
                 THEN TRY_CAST(x AS DECIMAL(38,10))
                 ELSE list_transform([cx_amount_ascii(x)], lambda v: cx_amount_of(v))[1] END
        """
    )
    # A currency as written, in a currency column or beside an amount: an ISO 4217 code in any
    # case, or a symbol above. Anything else (kr, Fr., dollars, the NET of '12.50 net', a typo
    # such as EUE) names none that can be told.
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_currency_code(c) AS CASE
            WHEN upper(rtrim(trim(c), '.')) = getvariable('cx_unknown_currency') THEN NULL
            WHEN list_contains(getvariable('cx_currency_codes'), upper(rtrim(trim(c), '.')))
                THEN upper(rtrim(trim(c), '.'))
            ELSE getvariable('cx_currency_symbols')[upper(trim(c))] END
        """
    )
    # The currency beside an amount, as written (US$ in US$12.50, EUR in 12.50 EUR): where the
    # amount reader takes one, next to the number. After it first: $12.50 CAD is in CAD.
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount_currency_written(x) AS CASE
            WHEN x IS NULL OR regexp_full_match(x, '[\d\s.,''()+-]*') THEN NULL  -- a bare number
            ELSE nullif(coalesce(
                nullif(regexp_extract(cx_amount_ascii(x), '[\d.]\s*("""
        + currency
        + r""")\s*-?\s*\)?\s*$', 1), ''),
                regexp_extract(cx_amount_ascii(x), '^\s*\(?\s*[+-]?\s*("""
        + currency
        + r""")\s*[+-]?\s*[\d.]', 1)), '') END
        """
    )
    # A row's currency from its currency column `c` and the currency `written` beside its
    # amount (cx_amount_currency_written): the column's, else the written one. When the two name
    # different currencies neither is taken: the amount is in the unknown currency (XXX, never
    # the base currency a run converts into), unless the written one is a symbol several
    # currencies share.
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_currency(c, written) AS CASE
            WHEN written IS NULL THEN cx_currency_code(c)
            WHEN nullif(trim(c), '') IS NULL THEN cx_currency_code(written)
            WHEN cx_currency_code(written) <> cx_currency_code(c)
                 AND NOT list_contains(getvariable('cx_shared_currency_symbols'), written)
                THEN getvariable('cx_unknown_currency')
            ELSE cx_currency_code(c) END
        """
    )
    # A rating is the number written, with a decimal point or a decimal comma (4.5 and 4,5:
    # no rating has thousands), negative when written with a minus: a -1 (another helpdesk's
    # "unrated") must fall outside any scale, not read as a 1. A rating written otherwise is
    # the number its digits make, so that it falls outside too and is counted: '4/5' reads as
    # 45, '80%' as 80, '4.5/5' as 455 (its digits and point made 4.55, a rating).
    # A rating in words (a helpdesk's satisfaction survey: Zendesk's Good and Bad, Freshdesk's
    # Awesome, Neutral and Not Good, Help Scout's Great, Okay and Not Good, a survey's Very
    # satisfied to Very dissatisfied) is the top, the middle or the bottom of whatever scale is
    # configured: +infinity, NaN and -infinity here, which the touchpoints read as the scale's
    # top, middle and bottom. No finer: a survey of five levels reads Satisfied at the top, as
    # Very satisfied. Zendesk writes a comment beside it as 'Good, with comment'. 'offered' or
    # 'unoffered' (no answer) is no rating (see RATING_PLACEHOLDERS).
    con.execute(
        r"""
        CREATE OR REPLACE MACRO _cx_rating_word(w) AS CASE
            WHEN regexp_full_match(w, '((very|extremely)_)?(good|great|awesome|happy|satisfied)')
                THEN 'Infinity'::DOUBLE
            WHEN regexp_full_match(w, 'neutral|okay|ok') THEN 'NaN'::DOUBLE
            WHEN regexp_full_match(w, '((very|extremely)_)?(bad|unhappy|(dis|un)satisfied)')
                 OR regexp_full_match(w, 'not_(good|happy|satisfied)') THEN '-Infinity'::DOUBLE
            END
        """
    )
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_rating_of(t) AS coalesce(
            _cx_rating_word(regexp_replace(
                regexp_replace(lower(t), '[\s,_-]*with[\s_]comment$', ''), '[\s_-]+', '_', 'g')),
            CASE WHEN regexp_full_match(t, '[+-]?(\d+([.,]\d*)?|[.,]\d+)')
                     THEN TRY_CAST(replace(t, ',', '.') AS DOUBLE)
                 ELSE TRY_CAST(regexp_extract(t, '^(-)', 1) || regexp_replace(t, '[^0-9]', '', 'g')
                               AS DOUBLE) END)
        """
    )
    con.execute("CREATE OR REPLACE MACRO cx_rating(x) AS cx_rating_of(trim(cx_amount_ascii(x)))")
    # A count as social profiles show it: 1,234, or 1.2K and 3.4M (a thousand, a million).
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_count_of(t) AS CASE
            WHEN regexp_full_match(t, '\d+([.,]\d+)?\s*[kKmM]') THEN TRY_CAST(round(
                TRY_CAST(replace(regexp_extract(t, '^\d+([.,]\d+)?'), ',', '.') AS DOUBLE)
                * CASE WHEN lower(right(t, 1)) = 'k' THEN 1000 ELSE 1000000 END) AS BIGINT)
            ELSE TRY_CAST(round(TRY_CAST(regexp_replace(t, '[,\s_]', '', 'g') AS DOUBLE))
                          AS BIGINT) END
        """
    )
    con.execute("CREATE OR REPLACE MACRO cx_count(x) AS cx_count_of(trim(cx_amount_ascii(x)))")


class _Recorder:
    """Stands in for a connection and keeps what is executed on it."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.statements.append((sql, params))


def macro_statements(values_only: bool = False) -> list[tuple[str, Any]]:
    """What creates the macros, to replay on another DuckDB (a Spark executor's)."""
    return list(_recorded(values_only))


@functools.cache
def _recorded(values_only: bool) -> tuple[tuple[str, Any], ...]:
    # The phone rules alone take 0.4 s to build from phonenumbers' metadata: once a process.
    recorder = _Recorder()
    _create_macros(cast(duckdb.DuckDBPyConnection, recorder), values_only)
    return tuple(recorder.statements)


def settings_sql(config: Config) -> list[tuple[str, Any]]:
    """Statements creating ``cx_source_settings``: each source's phone region and dayfirst."""
    statements: list[tuple[str, Any]] = [
        (
            f"CREATE OR REPLACE TABLE {SETTINGS} (source VARCHAR, phone_region VARCHAR, "
            "dayfirst BOOLEAN, decimal_comma BOOLEAN)",
            None,
        )
    ]
    for source in config.sources:
        region = source.phone_region or config.standardize.phone_region
        dayfirst = source.dayfirst if source.dayfirst is not None else config.standardize.dayfirst
        comma = (
            source.decimal_comma
            if source.decimal_comma is not None
            else config.standardize.decimal_comma
        )
        statements.append(
            (
                f"INSERT INTO {SETTINGS} VALUES ($source, $region, $dayfirst, $comma)",
                {
                    "source": source.name,
                    "region": region and region.upper(),
                    "dayfirst": dayfirst,
                    "comma": comma,
                },
            )
        )
    return statements


def standardize(engine: Any, config: Config) -> int:
    """Build ``cx_records`` (one row per mapped row) and return its row count."""
    script = settings_sql(config) + [(sql, None) for sql in dictionary_sql(mapped_fields(config))]
    if not isinstance(engine, DuckDBEngine):  # Spark
        engine.map_in_duckdb(MAPPED, RECORDS, macro_statements(), script, records_sql())
        return engine.count(RECORDS)
    install_macros(engine.con)
    for sql, params in script:
        engine.execute(sql, params)
    engine.execute(f"CREATE OR REPLACE TABLE {RECORDS} AS {records_sql()}")
    engine.drop(*DICTIONARIES.values())
    return engine.count(RECORDS)


def order_warnings(engine: Any, quote_values: bool = True) -> list[str]:
    """A warning for two transactions sources holding the same orders (one order id and
    amount): overlapping exports read as a source each (`--transactions 'orders_*.csv'`: a
    source per file) counted each shared order twice, in orders and revenue, without a word.
    Over the records (amounts read: 20 and 20.00 are one), so an update, whose exports are
    tonight's alone, finds a new source's orders that a stored one holds, as a full run does.
    The first order id is quoted unless `quote_values` is false (output.hash_pii: a warning
    goes to logs the outputs' digests keep it from). Plain SQL, for either engine."""
    shared = engine.rows(
        f"""
        SELECT a.source, b.source, count(DISTINCT a.order_id), min(a.order_id)
        FROM {RECORDS} a JOIN {RECORDS} b
          ON b.order_id = a.order_id AND b.amount = a.amount AND a.source < b.source
        WHERE a.source_kind = 'transactions' AND b.source_kind = 'transactions'
        GROUP BY ALL ORDER BY ALL
        """
    )
    warnings = []
    for left, right, count, first in shared:
        example = f"; the first: '{first}'" if quote_values else ""
        warnings.append(
            f"sources '{left}' and '{right}' hold {count:,} "
            f"{'order' if count == 1 else 'orders'} alike (order id and amount{example}), "
            "counted once in each: if they are overlapping exports of one system, read them "
            "as one source (a glob in its path; without a config, NAME=PATTERN: "
            "--transactions 'orders=orders_*.csv'), where rows sharing an order id are one "
            "order"
        )
    return warnings


# The date and time columns of a record, and what their values are read as.
_DATED = {"dob": "dates", "created_at": "times", "resolved_at": "times", "last_active_at": "times"}


# What a rating column holds where no rating was given: nothing, a survey offered and not
# answered (Zendesk's Offered, Unoffered), n/a, none, a dash. Lower case, trimmed.
RATING_PLACEHOLDERS = r"(un|not )?offered|n/?a|none|null|-+|–|—"


def unread_warnings(engine: Any, quote_values: bool = True) -> list[str]:
    """A warning per source and column of values written that were read as nothing (left
    NULL), dates and times first, then ratings; such a value went missing without a word, and
    with it the customer's recency and journey, or csat_mean and experience score. One pass
    over the mapped rows and their records for both. Tonight's rows only in an update
    (``cx_mapped`` holds them); plain SQL, for either engine.

    Dates and times: a zone it does not know (10:00 BST, which is British or Bangladesh
    time), a year past 2100, a day that does not exist. Placeholders are not counted: values
    with no digit but 0 (n/a, 0000-00-00) and those of the year 9999. A date of birth is not
    quoted: it is personal; nor is any value when `quote_values` is false (output.hash_pii:
    a column misread may hold anything, `ann@x.com 617-253-1234` under created_at, and a
    warning goes to logs and run.json in the clear).

    Ratings: a word no survey's scale names (Meh), text. Placeholders (RATING_PLACEHOLDERS)
    are not counted; a number outside the scale is read, and counted apart
    (counts.csat_out_of_scale)."""
    figures = []
    for column in _DATED:
        text = f"CAST(m.{column} AS VARCHAR)"
        # written: a digit but 0, and not of the year 9999 (both placeholders)
        written = f"regexp_matches({text}, '[1-9]') AND NOT contains({text}, '9999')"
        figures += _unread_figures(written, f"r.{column}", text)
    rating = "lower(trim(CAST(m.csat AS VARCHAR)))"
    written = f"{rating} <> '' AND NOT regexp_full_match({rating}, '{RATING_PLACEHOLDERS}')"
    figures += _unread_figures(written, "r.csat", "trim(CAST(m.csat AS VARCHAR))")
    rows = engine.rows(
        f"SELECT m.source, {', '.join(figures)} "
        f"FROM {MAPPED} m JOIN {RECORDS} r USING (record_key) GROUP BY m.source ORDER BY 1"
    )
    dated, rated = [], []
    for source, *counted in rows:
        for i, (column, what) in enumerate(_DATED.items()):
            written_count, unread, example = counted[3 * i : 3 * i + 3]
            if not unread:
                continue
            which = (
                f"its only {column} value is"
                if written_count == 1
                else f"{unread:,} of its {written_count:,} {column} values are"
            )
            quoted = f" (such as {example!r})" if what == "times" and quote_values else ""
            dated.append(
                f"source '{source}': {which} not read as {what}{quoted} and left empty (the "
                "README's profiles.parquet section says which formats, zones and years are read)"
            )
        written_count, unread, example = counted[3 * len(_DATED) :]
        if not unread:
            continue
        if written_count == 1:
            quoted = f" ({example!r})" if quote_values else ""
            which = f"its only csat value{quoted} is not read as a rating"
        else:
            quoted = f" (such as {example!r})" if quote_values else ""
            which = (
                f"{unread:,} of its {written_count:,} csat values are not read as ratings{quoted}"
            )
        rated.append(
            f"source '{source}': {which} and left empty (the README's profiles.parquet "
            "section says which numbers and words are ratings)"
        )
    return [*dated, *rated]


def _unread_figures(written: str, read: str, shown: str) -> list[str]:
    """Values `written`, those of them whose record holds no value (`read` NULL), and the
    first of those as `shown`."""
    unread = f"{written} AND {read} IS NULL"
    return [
        f"count(*) FILTER (WHERE {written})",
        f"count(*) FILTER (WHERE {unread})",
        f"min({shown}) FILTER (WHERE {unread})",
    ]


def email_counts(engine: Any) -> tuple[int, int]:
    """Records of ``cx_records`` with an email written (in any of their email columns), and
    those of them with none of use to match (not an address, or a placeholder: test@test.com,
    any address at example.com), in any column: a record whose first column holds 'n/a' and
    whose second holds an address matches by the address and is not counted unusable.
    Plain SQL, for either engine; an update counts its merged records, as a full run would."""
    read, unusable = engine.rows(
        f"""
        SELECT coalesce(sum(CASE WHEN email_written THEN 1 ELSE 0 END), 0),
               coalesce(sum(CASE WHEN email_written AND email IS NULL THEN 1 ELSE 0 END), 0)
        FROM {RECORDS}
        """
    )[0]
    return int(read), int(unusable)


def phone_warnings(engine: Any, config: Config) -> list[str]:
    """A warning per source most of whose phones (not placeholders) are no number where they
    were read: a UK shop's `020 7946 0018` in a config without phone_region is read in the
    default, US, and matches nothing, without a word. On DuckDB, the warning names the region
    that reads most of them, of those whose numbers the run holds elsewhere (its orders' +44).
    Plain SQL for the counts, for either engine; an update counts its merged records."""
    counts = engine.rows(
        f"""
        SELECT source, count(*) AS phones,
               count(*) FILTER (WHERE phone IS NULL) AS not_numbers
        FROM {RECORDS} WHERE phone_digits IS NOT NULL
        GROUP BY source ORDER BY source
        """
    )
    default = config.standardize.phone_region
    regions = {source.name: source.phone_region for source in config.sources}
    warnings = []
    for source, written, not_numbers in counts:
        if not_numbers * 2 <= written:
            continue
        region = regions.get(source) or default
        where = "its phone_region" if regions.get(source) else "the default: the source sets none"
        counted = (
            "its only phone is no number"
            if written == 1
            else f"{not_numbers:,} of its {written:,} phones are no number"
        )
        text = (
            f"source '{source}': {counted} when read in {region} ({where}) and "
            f"{'is' if written == 1 else 'are'} not used to match"
        )
        better = (
            _region_reading(engine, source, region) if isinstance(engine, DuckDBEngine) else None
        )
        if better is not None:
            other, read = better
            them = (
                f"it is a number when read in {other}"
                if written == 1
                else f"{read:,} of them are {other} numbers"
            )
            text += (
                f"; {them}: set phone_region: {other} on the "
                f"source (without a config, --phone-region {other})"
            )
        else:
            text += (
                "; set the source's phone_region (without a config, --phone-region) to the "
                f"country {'it is' if written == 1 else 'they are'} from"
            )
        warnings.append(text)
    return warnings


def _region_reading(
    engine: DuckDBEngine, source: str, region: str | None
) -> tuple[str, int] | None:
    """Of the regions of the numbers the run read (each number's own region), the
    one reading most of `source`'s phones that are no number in `region`, and how many; None
    when none reads half of them."""
    codes = engine.rows(
        f"""
        SELECT phone, count(*) AS n FROM {RECORDS} WHERE phone IS NOT NULL
        GROUP BY phone ORDER BY n DESC, phone LIMIT 1000
        """
    )
    found: dict[str, int] = {}
    for phone, n in codes:
        try:
            other = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
        except phonenumbers.NumberParseException:
            continue
        if other and other != region and other in phonenumbers.SUPPORTED_REGIONS:
            found[other] = found.get(other, 0) + int(n)
    best = None
    failing = (
        f"FROM {RECORDS} WHERE source = $source AND phone IS NULL AND phone_digits IS NOT NULL"
    )
    total = int(engine.scalar(f"SELECT count(*) {failing}", {"source": source}))
    for other in sorted(found, key=lambda r: (-found[r], r))[:5]:
        read = int(
            engine.scalar(
                f"SELECT count(*) {failing} AND cx_phone_e164(phone_digits, $region) IS NOT NULL",
                {"source": source, "region": other},
            )
        )
        if read * 2 >= total and (best is None or read > best[1]):
            best = (other, read)
    return best


# Exports repeat values endlessly (every order repeats its buyer's name and phone), so the
# costlier standardisers run once per distinct value, in these tables, and rows join to them.
DICTIONARIES = {
    "full_names": table("dict_full_names"),
    "names": table("dict_names"),
    "phones": table("dict_phones"),
    "emails": table("dict_emails"),
    "dates": table("dict_dates"),
    "streets": table("dict_streets"),
    "locations": table("dict_locations"),
    "cities": table("dict_cities"),
    "countries": table("dict_countries"),
    "timestamps": table("dict_timestamps"),
    "amounts": table("dict_amounts"),
}

# The timestamp columns of a record. Most timestamps are plain ISO 8601, which a cast reads;
# the rest go through the full parser once per distinct value, in a dictionary. Written inline,
# the parser took half a second to plan for each of the three columns in every run, however
# few its rows, and at a million rows of 03/15/2024 10:22 it ran four times slower than the
# dictionary (1M rows: 8.8 s inline, 2.1 s through the dictionary; ISO: 2.6 s and 0.6 s).
_TIMESTAMP_COLUMNS = ("created_at", "resolved_at", "last_active_at")
_ISO_TIMESTAMP = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?"
# A number of dots each before three digits and no comma (1.234, 2.000, 1.234.567 EUR).
_DOT_THOUSANDS = r"(^|[^\d.,])\d{1,3}(\.\d{3})+($|[^\d.,])"


# The fields each dictionary reads (from ``cx_mapped`` or another dictionary).
_DICTIONARY_FIELDS = {
    "full_names": ("full_name",),
    "names": ("first_name", "last_name", "full_name"),
    "countries": ("country",),
    "phones": ("phone",),
    "emails": ("email",),
    "dates": ("dob",),
    "amounts": ("amount",),
    "timestamps": _TIMESTAMP_COLUMNS,
    "streets": ("street",),
    "locations": ("location",),
    "cities": ("city", "location"),
}


def mapped_fields(config: Config) -> frozenset[str]:
    """The fields some source of `config` maps to a column."""
    return frozenset(
        name for source in config.sources for name in FIELD_NAMES if source.columns_of(name)
    )


def dictionary_sql(mapped: Collection[str] | None = None) -> list[str]:
    """CREATE statements for the per-distinct-value standardisation tables.

    A dictionary of fields no source maps (none of `mapped`; None: all may be) reads no row
    of ``cx_mapped``: its table is created empty, with the same columns. Planning one is
    most of its cost on a small run (a fifth of a run of a few rows was planning the
    standardisers of names, dates and places a config did not map)."""
    d = DICTIONARIES
    selects = {
        "full_names": f"""
        SELECT v, cx_split_full_name(v) AS split, cx_name_suffix(cx_name_head(v)) AS suffix
        FROM (SELECT DISTINCT full_name AS v FROM {MAPPED} WHERE full_name IS NOT NULL)""",
        "names": f"""
        SELECT v, cx_name_clean(v) AS clean, cx_name_std(v) AS std, cx_name_key(v) AS key,
               cx_soundex(v) AS soundex, cx_name_suffix(v) AS suffix
        FROM (
            SELECT first_name AS v FROM {MAPPED} UNION SELECT last_name FROM {MAPPED}
            UNION SELECT split.first_name FROM {d["full_names"]}
            UNION SELECT split.last_name FROM {d["full_names"]}
        ) WHERE v IS NOT NULL""",
        "countries": f"""
        SELECT v, cx_country_std(v) AS code
        FROM (SELECT DISTINCT country AS v FROM {MAPPED} WHERE country IS NOT NULL)""",
        # Each phone in its source's region and, where the record names another country, in
        # that country's (see records_sql).
        "phones": f"""
        WITH p AS (
            SELECT m.phone AS v, s.phone_region, co.code AS country
            FROM {MAPPED} m JOIN {SETTINGS} s USING (source)
            LEFT JOIN {d["countries"]} co ON co.v = m.country
            WHERE m.phone IS NOT NULL
            UNION SELECT unnest(m.phone_others), s.phone_region, co.code
            FROM {MAPPED} m JOIN {SETTINGS} s USING (source)
            LEFT JOIN {d["countries"]} co ON co.v = m.country
            WHERE m.phone_others IS NOT NULL
        )
        SELECT *, cx_phone_toll_free(e164) AS toll_free
        FROM (SELECT v, region, cx_phone_e164(v, region) AS e164, cx_phone_digits(v) AS digits
              FROM (SELECT v, phone_region AS region FROM p
                    UNION SELECT v, country FROM p WHERE country IS DISTINCT FROM phone_region
                                                     AND country IS NOT NULL))""",
        # DuckDB 2.0 fails to bind cx_email_parts_std(cx_email_clean(column)) when the column
        # is entirely NULL, so the clean form comes first, from a subquery.
        "emails": f"""
        WITH e AS (
            SELECT v, cx_email_clean(v) AS clean
            FROM (SELECT email AS v FROM {MAPPED} WHERE email IS NOT NULL
                  UNION SELECT unnest(email_others) FROM {MAPPED}
                  WHERE email_others IS NOT NULL)
        )
        SELECT v, clean, cx_email_parts_std_no_xn(clean) AS std
        FROM e WHERE NOT contains(clean, 'xn--')
        UNION ALL
        SELECT v, clean, cx_email_parts_std(clean) AS std FROM e WHERE contains(clean, 'xn--')""",
        "dates": f"""
        SELECT v, dayfirst, cx_parse_date(v, dayfirst) AS parsed
        FROM (SELECT DISTINCT m.dob AS v, s.dayfirst
              FROM {MAPPED} m JOIN {SETTINGS} s USING (source) WHERE m.dob IS NOT NULL)""",
        # Prices repeat (19.99); read once each, an amount column took a tenth of a second to
        # plan in every run and a third longer at a million rows of $1,234.50.
        # A source writing a decimal comma (12,50) writes 1.234 for 1234: its dots, each
        # before three digits, are thousands.
        "amounts": f"""
        SELECT v, decimal_comma,
               CASE WHEN decimal_comma AND regexp_matches(v, '{_DOT_THOUSANDS}')
                    THEN cx_amount(replace(v, '.', '')) ELSE cx_amount(v) END AS amount,
               cx_amount_currency_written(v) AS written
        FROM (SELECT DISTINCT m.amount AS v, s.decimal_comma
              FROM {MAPPED} m JOIN {SETTINGS} s USING (source) WHERE m.amount IS NOT NULL)""",
        "timestamps": """
        SELECT v, dayfirst, cx_parse_timestamp(v, dayfirst) AS parsed FROM ("""
        + " UNION ".join(
            f"""SELECT m.{column} AS v, s.dayfirst FROM {MAPPED} m JOIN {SETTINGS} s USING (source)
                WHERE NOT regexp_full_match(m.{column}, '{_ISO_TIMESTAMP}')"""
            for column in _TIMESTAMP_COLUMNS
        )
        + ")",
        "streets": f"""
        SELECT v, cx_street_std(v) AS std FROM (
            SELECT DISTINCT coalesce(street_number || ' ' || street, street) AS v
            FROM {MAPPED} WHERE street IS NOT NULL)""",
        # A location as its city, state and country ("Boston, MA"), read with its source's
        # region (a German shop's "Berlin, DE" is Germany); the city is standardised with the
        # cities written as such.
        "locations": f"""
        SELECT v, region, cx_location(v, region) AS parts
        FROM (SELECT DISTINCT m.location AS v, s.phone_region AS region
              FROM {MAPPED} m JOIN {SETTINGS} s USING (source) WHERE m.location IS NOT NULL)""",
        "cities": f"""
        SELECT v, cx_city_std(regexp_replace(v, '\\s*,.*$', '')) AS std
        FROM (SELECT city AS v FROM {MAPPED} WHERE city IS NOT NULL
              UNION SELECT parts.city FROM {d["locations"]} WHERE parts.city IS NOT NULL)""",
    }
    return [
        f"CREATE OR REPLACE TABLE {d[name]} AS "
        + (
            select
            if mapped is None or any(field in mapped for field in _DICTIONARY_FIELDS[name])
            else f"SELECT * FROM ({select}) LIMIT 0"
        )
        for name, select in selects.items()
    ]


def _timestamp(column: str) -> str:
    """A timestamp column of ``n`` read: ISO by a cast, the rest from its dictionary row. A
    year outside the plausible ones is no time, as it is no date (2205-01-01 10:00 was read
    while 2205-01-01 was not)."""
    return (
        f"CASE WHEN regexp_full_match(n.{column}, '{_ISO_TIMESTAMP}') "
        f"THEN CASE WHEN CAST(left(n.{column}, 4) AS INTEGER) BETWEEN "
        "getvariable('cx_date_min_year') AND getvariable('cx_date_max_year') "
        f"THEN TRY_CAST(replace(rtrim(n.{column}, 'Z'), 'T', ' ') AS TIMESTAMP) END "
        f"ELSE {ident('ts_' + column)}.parsed END"
    )


def raw_digest_sql(alias: str = "") -> str:
    """A digest of a mapped row's fields as read, before any standardising: an update takes a
    row whose digest is its stored record's as unchanged, and does not standardise it again.
    DuckDB's 64-bit hash (a third of an md5's cost at 1M rows, in 8 bytes), so an update only
    trusts digests stored by the same DuckDB version; 63 bits of it, as a BIGINT (Spark, whose
    tasks standardise with DuckDB, has no unsigned integers)."""
    fields = ", ".join(f"{alias}{ident(name)}" for name in (*FIELD_NAMES, *OTHERS.values()))
    return f"CAST(hash({fields}) >> 1 AS BIGINT)"


# A record's phone in E.164: read in the region of the country the record names, else (no
# country, or no number of that country's lengths: a traveller's home number) in its source's
# phone_region. A German customer's 030 1234567 in a US shop's export was read as the US
# number +1 030-123-4567 (of a US number's length, so possible; no US number starts with 0),
# and did not link to the +49 30 1234567 of the customer's order. `pc` and `ph` are the phones
# dictionary joined on each region.
_PHONE = "coalesce(pc.e164, ph.e164)"


def records_sql() -> str:
    """The SELECT that turns ``cx_mapped`` into ``cx_records``.

    Names come from first/last columns when present, else from splitting ``full_name``.
    """
    d = DICTIONARIES
    timestamp_joins = "\n".join(
        f"LEFT JOIN {d['timestamps']} {ident('ts_' + column)} ON {ident('ts_' + column)}.v = "
        f"n.{column} AND {ident('ts_' + column)}.dayfirst = n.dayfirst"
        for column in _TIMESTAMP_COLUMNS
    )
    return f"""
    WITH m AS (
        SELECT m.*, s.phone_region, s.dayfirst, s.decimal_comma, co.code AS country_code,
               fn.split AS split_name, fn.suffix AS full_name_suffix,
               coalesce(m.street_number || ' ' || m.street, m.street) AS street_line,
               -- a source's own city, state and country first, then its location's
               coalesce(m.city, lo.parts.city) AS city_in,
               lo.parts.state AS location_state, lo.parts.country AS location_country
        FROM {MAPPED} m JOIN {SETTINGS} s USING (source)
        LEFT JOIN {d["full_names"]} fn ON fn.v = m.full_name
        LEFT JOIN {d["countries"]} co ON co.v = m.country
        LEFT JOIN {d["locations"]} lo
            ON lo.v = m.location AND lo.region IS NOT DISTINCT FROM s.phone_region
    ), n AS (
        SELECT *,
               coalesce(first_name, split_name.first_name) AS first_in,
               coalesce(last_name, split_name.last_name) AS last_in
        FROM m
    ), other_values AS (
        -- The values of a record with several for a field (see ingest.OTHERS), each with its
        -- place, the first written first. Only such records: the others join nothing here.
        SELECT record_key, 'phone' AS field, s.phone_region, co.code AS country,
               unnest([phone] || phone_others) AS v,
               generate_subscripts([phone] || phone_others, 1) AS i
        FROM {MAPPED} JOIN {SETTINGS} s USING (source)
        LEFT JOIN {d["countries"]} co ON co.v = country
        WHERE phone_others IS NOT NULL
        UNION ALL
        SELECT record_key, 'email', NULL, NULL, unnest([email] || email_others),
               generate_subscripts([email] || email_others, 1)
        FROM {MAPPED} WHERE email_others IS NOT NULL
    ), others AS (
        -- The record matches by the first value of use (a placeholder written first, 'n/a'
        -- or test@test.com, gives way to the next); the rest of use are its others.
        SELECT o.record_key,
               arg_min(o.v, o.i) FILTER (WHERE {_PHONE} IS NOT NULL) AS phone_taken,
               arg_min(o.v, o.i) FILTER (WHERE em.clean IS NOT NULL) AS email_taken,
               list({_PHONE} ORDER BY o.i) FILTER (WHERE {_PHONE} IS NOT NULL) AS phones,
               list(em.clean ORDER BY o.i) FILTER (WHERE em.clean IS NOT NULL) AS emails
        FROM other_values o
        LEFT JOIN {d["phones"]} ph
            ON o.field = 'phone' AND ph.v = o.v AND ph.region IS NOT DISTINCT FROM o.phone_region
        LEFT JOIN {d["phones"]} pc
            ON o.field = 'phone' AND pc.v = o.v AND pc.region = o.country
        LEFT JOIN {d["emails"]} em ON o.field = 'email' AND em.v = o.v
        GROUP BY o.record_key
    )
    SELECT
        record_key,
        source, source_kind, source_record_id, file, row_number,
        nf.clean AS first_name,
        nl.clean AS last_name,
        nf.std AS first_name_std,
        nl.std AS last_name_std,
        nf.key AS first_name_key,
        nl.soundex AS last_name_soundex,
        coalesce(nl.suffix, full_name_suffix) AS name_suffix,
        em.clean AS email,
        coalesce(trim(CAST(n.email AS VARCHAR)) <> '', false) AS email_written,
        em.std AS email_std,
        nullif(split_part(em.std, '@', 1), '') AS email_local,
        nullif(split_part(em.std, '@', 2), '') AS email_domain,
        {_PHONE} AS phone,
        coalesce(ltrim({_PHONE}, '+'), ph.digits) AS phone_digits,
        -- a business's line (see block.junk_values_sql)
        coalesce(CASE WHEN pc.e164 IS NOT NULL THEN pc.toll_free ELSE ph.toll_free END, false)
            AS phone_toll_free,
        nullif(trim(regexp_replace(street_line, '\\s+', ' ', 'g')), '') AS street,
        st.std AS street_std,
        nullif(trim(address_2), '') AS address_2,
        nullif(trim(city_in), '') AS city,
        ci.std AS city_std,
        cx_postcode_std(postcode) AS postcode,
        coalesce(cx_state_std(state), location_state) AS state,
        coalesce(country_code, location_country) AS country,
        dd.parsed AS dob,
        nullif(lower(trim(gender)), '') AS gender,
        nullif(regexp_replace(cx_ascii_digits(national_id), '[^0-9A-Za-z]', '', 'g'), '')
            AS national_id,
        -- as an id is read: a spreadsheet's apostrophe before a number ('7012...) goes
        {clean_id_sql("customer_key")} AS customer_key,
        nullif(right(regexp_replace(cx_ascii_digits(card_last4), '[^0-9]', '', 'g'), 4), '')
            AS card_last4,
        nullif(lower(regexp_replace(trim(handle), '^@', '')), '') AS handle,
        nullif(regexp_replace(lower(strip_accents(handle)), '[^a-z]', '', 'g'), '')
            AS handle_letters,
        nullif(lower(trim(platform)), '') AS platform,
        {_timestamp("created_at")} AS created_at,
        {_timestamp("resolved_at")} AS resolved_at,
        {_timestamp("last_active_at")} AS last_active_at,
        nullif(trim(order_id), '') AS order_id,
        am.amount,
        cx_currency(currency, am.written) AS currency,
        nullif(trim(category), '') AS category,
        nullif(lower(trim(channel)), '') AS channel,
        nullif(lower(trim(status)), '') AS status,
        cx_rating(csat) AS csat,
        nullif(trim(subject), '') AS subject,
        nullif(trim(text), '') AS text,
        cx_count(followers) AS followers,
        cx_count(posts) AS posts,
        nullif(others.emails[2:], []) AS email_others,
        nullif(others.phones[2:], []) AS phone_others,
        {raw_digest_sql("n.")} AS raw_digest
    FROM n
    LEFT JOIN others USING (record_key)
    LEFT JOIN {d["names"]} nf ON nf.v = n.first_in
    LEFT JOIN {d["names"]} nl ON nl.v = n.last_in
    LEFT JOIN {d["emails"]} em ON em.v = coalesce(others.email_taken, n.email)
    LEFT JOIN {d["phones"]} ph
        ON ph.v = coalesce(others.phone_taken, n.phone)
        AND ph.region IS NOT DISTINCT FROM n.phone_region
    LEFT JOIN {d["phones"]} pc
        ON pc.v = coalesce(others.phone_taken, n.phone) AND pc.region = n.country_code
    LEFT JOIN {d["dates"]} dd ON dd.v = n.dob AND dd.dayfirst = n.dayfirst
    LEFT JOIN {d["streets"]} st ON st.v = n.street_line
    LEFT JOIN {d["cities"]} ci ON ci.v = n.city_in
    LEFT JOIN {d["amounts"]} am ON am.v = n.amount AND am.decimal_comma = n.decimal_comma
    {timestamp_joins}
    """
