"""Stage 2, standardise: typed, normalised ``cx_records`` from the mapped text rows.

Each kind of value has its own module (names, emails, phones, addresses, dates) that installs
SQL macros on the connection; this stage applies them in one pass, entirely inside the engine.
A record keeps a display form of each value (for golden records) and a matching form.
"""

from __future__ import annotations

import duckdb

from cxunify.config import Config
from cxunify.engine import DuckDBEngine
from cxunify.ingest import MAPPED
from cxunify.sql import table
from cxunify.standardize import addresses, dates, emails, names, phones

RECORDS = table("records")
SETTINGS = table("source_settings")

_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create every standardisation macro (``cx_*``) on a DuckDB connection."""
    for module in (names, emails, phones, addresses, dates):
        module.install(con)
    con.execute(
        "SET VARIABLE cx_currency_symbols = MAP($symbols, $codes)",
        {"symbols": list(_CURRENCY_SYMBOLS), "codes": list(_CURRENCY_SYMBOLS.values())},
    )
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount(x) AS TRY_CAST(
            CASE WHEN regexp_full_match(trim(x), '-?[^0-9-]*\d{1,3}(\.\d{3})*,\d{1,2}')
                 THEN replace(replace(regexp_replace(x, '[^0-9,.-]', '', 'g'), '.', ''), ',', '.')
                 ELSE regexp_replace(x, '[^0-9.-]', '', 'g') END AS DOUBLE)
        """
    )
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_amount_currency(x) AS
            getvariable('cx_currency_symbols')[regexp_extract(x, '[$€£¥₹]')]
        """
    )
    con.execute(
        r"""
        CREATE OR REPLACE MACRO cx_count(x) AS TRY_CAST(
            round(TRY_CAST(regexp_replace(x, '[,\s_]', '', 'g') AS DOUBLE)) AS BIGINT)
        """
    )


def standardize(engine: DuckDBEngine, config: Config) -> int:
    """Build ``cx_records`` (one row per mapped row) and return its row count."""
    install_macros(engine.con)
    engine.execute(
        f"CREATE OR REPLACE TABLE {SETTINGS} (source VARCHAR, phone_region VARCHAR, "
        "dayfirst BOOLEAN)"
    )
    for source in config.sources:
        region = source.phone_region or config.standardize.phone_region
        dayfirst = source.dayfirst if source.dayfirst is not None else config.standardize.dayfirst
        engine.execute(
            f"INSERT INTO {SETTINGS} VALUES ($source, $region, $dayfirst)",
            {"source": source.name, "region": region and region.upper(), "dayfirst": dayfirst},
        )
    engine.execute(f"CREATE OR REPLACE TABLE {RECORDS} AS {records_sql()}")
    return engine.count(RECORDS)


def records_sql() -> str:
    """The SELECT that turns ``cx_mapped`` into ``cx_records``.

    Names come from first/last columns when present, else from splitting ``full_name``.
    """
    return f"""
    WITH m AS (
        SELECT m.*, s.phone_region, s.dayfirst,
               cx_split_full_name(m.full_name) AS split_name,
               coalesce(m.street_number || ' ' || m.street, m.street) AS street_line,
               cx_email_clean(m.email) AS email_clean
        FROM {MAPPED} m JOIN {SETTINGS} s USING (source)
    ), n AS (
        SELECT *,
               coalesce(first_name, split_name.first_name) AS first_in,
               coalesce(last_name, split_name.last_name) AS last_in,
               coalesce(full_name, concat_ws(' ', first_name, last_name)) AS name_in
        FROM m
    )
    SELECT
        row_number() OVER (ORDER BY file_index, row_number) AS record_key,
        source, source_kind, source_record_id, file, row_number,
        cx_name_clean(first_in) AS first_name,
        cx_name_clean(last_in) AS last_name,
        cx_name_std(first_in) AS first_name_std,
        cx_name_std(last_in) AS last_name_std,
        cx_name_key(first_in) AS first_name_key,
        cx_soundex(last_in) AS last_name_soundex,
        coalesce(cx_name_suffix(last_in), cx_name_suffix(name_in)) AS name_suffix,
        email_clean AS email,
        cx_email_parts_std(email_clean) AS email_std,
        nullif(split_part(cx_email_parts_std(email_clean), '@', 1), '') AS email_local,
        nullif(split_part(cx_email_parts_std(email_clean), '@', 2), '') AS email_domain,
        cx_phone_e164(phone, phone_region) AS phone,
        coalesce(ltrim(cx_phone_e164(phone, phone_region), '+'), cx_phone_digits(phone))
            AS phone_digits,
        nullif(trim(regexp_replace(street_line, '\\s+', ' ', 'g')), '') AS street,
        cx_street_std(street_line) AS street_std,
        nullif(trim(address_2), '') AS address_2,
        nullif(trim(city), '') AS city,
        cx_city_std(regexp_replace(city, '\\s*,.*$', '')) AS city_std,
        cx_postcode_std(postcode) AS postcode,
        cx_state_std(state) AS state,
        nullif(upper(trim(country)), '') AS country,
        cx_parse_date(dob, dayfirst) AS dob,
        nullif(lower(trim(gender)), '') AS gender,
        nullif(regexp_replace(national_id, '[^0-9A-Za-z]', '', 'g'), '') AS national_id,
        nullif(trim(customer_key), '') AS customer_key,
        nullif(right(regexp_replace(card_last4, '[^0-9]', '', 'g'), 4), '') AS card_last4,
        nullif(lower(regexp_replace(trim(handle), '^@', '')), '') AS handle,
        nullif(regexp_replace(lower(strip_accents(handle)), '[^a-z]', '', 'g'), '')
            AS handle_letters,
        nullif(lower(trim(platform)), '') AS platform,
        cx_parse_timestamp(created_at, dayfirst) AS created_at,
        cx_parse_timestamp(resolved_at, dayfirst) AS resolved_at,
        cx_parse_timestamp(last_active_at, dayfirst) AS last_active_at,
        nullif(trim(order_id), '') AS order_id,
        cx_amount(amount) AS amount,
        coalesce(nullif(upper(trim(currency)), ''), cx_amount_currency(amount)) AS currency,
        nullif(trim(category), '') AS category,
        nullif(lower(trim(channel)), '') AS channel,
        nullif(lower(trim(status)), '') AS status,
        TRY_CAST(regexp_replace(csat, '[^0-9.]', '', 'g') AS DOUBLE) AS csat,
        nullif(trim(subject), '') AS subject,
        nullif(trim(text), '') AS text,
        cx_count(followers) AS followers,
        cx_count(posts) AS posts
    FROM n
    """
