"""Stage 8, profile: one golden record per customer.

Survivorship: for each golden field the value comes from the most trusted record that has one:
CRM before support before transactions before social, then the most recent, then the first
read. Every distinct email, phone and handle stays available as a list.
"""

from __future__ import annotations

from cxunify.engine import DuckDBEngine
from cxunify.identity import IDENTITY
from cxunify.sql import ident, table
from cxunify.standardize import RECORDS

PROFILES = table("profiles")

KIND_PRIORITY = ("crm", "support", "transactions", "social")

GOLDEN_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "city",
    "postcode",
    "state",
    "country",
    "dob",
)


def build_profiles(engine: DuckDBEngine) -> int:
    """Create ``cx_profiles`` from records and their customer ids; return its row count."""
    order = "kind_rank, created_at DESC NULLS LAST, record_key"
    golden = ",\n".join(
        f"first({ident(f)} ORDER BY {order}) FILTER (WHERE {ident(f)} IS NOT NULL) AS {ident(f)}"
        for f in GOLDEN_FIELDS
    )
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {PROFILES} AS
        WITH r AS (
            SELECT r.*, i.customer_id,
                   coalesce(list_position($kinds, r.source_kind), 99) AS kind_rank,
                   greatest(r.created_at, r.resolved_at, r.last_active_at) AS seen_at
            FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        )
        SELECT customer_id,
               {golden},
               list(DISTINCT email ORDER BY email) FILTER (WHERE email IS NOT NULL) AS emails,
               list(DISTINCT phone ORDER BY phone) FILTER (WHERE phone IS NOT NULL) AS phones,
               list(DISTINCT coalesce(platform || ':', '') || handle
                    ORDER BY coalesce(platform || ':', '') || handle)
                    FILTER (WHERE handle IS NOT NULL) AS handles,
               count(*) AS n_records,
               list(DISTINCT source ORDER BY source) AS sources,
               list(DISTINCT source_kind ORDER BY source_kind) AS source_kinds,
               min(least(created_at, resolved_at, last_active_at)) AS first_seen_at,
               max(seen_at) AS last_seen_at
        FROM r
        GROUP BY customer_id
        ORDER BY customer_id
        """,
        {"kinds": list(KIND_PRIORITY)},
    )
    # Lists are empty, not NULL, when a customer has no such value: simpler SQL for analysts.
    for column in ("emails", "phones", "handles"):
        engine.execute(f"UPDATE {PROFILES} SET {ident(column)} = [] WHERE {ident(column)} IS NULL")
    return engine.count(PROFILES)
