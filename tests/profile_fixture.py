"""Tiny hand-made ``cx_records`` and ``cx_identity`` tables for the profile and traits tests."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Any

from cxunify.engine import DuckDBEngine
from cxunify.identity import IDENTITY
from cxunify.standardize import RECORDS

# The columns of cx_records the profile stage reads, with their types in the real table.
RECORD_COLUMNS = {
    "record_key": "BIGINT",
    "source": "VARCHAR",
    "source_kind": "VARCHAR",
    "source_record_id": "VARCHAR",
    "first_name": "VARCHAR",
    "first_name_key": "VARCHAR",
    "last_name": "VARCHAR",
    "last_name_std": "VARCHAR",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "street": "VARCHAR",
    "city": "VARCHAR",
    "postcode": "VARCHAR",
    "state": "VARCHAR",
    "country": "VARCHAR",
    "dob": "DATE",
    "handle": "VARCHAR",
    "platform": "VARCHAR",
    "created_at": "TIMESTAMP",
    "resolved_at": "TIMESTAMP",
    "last_active_at": "TIMESTAMP",
    "order_id": "VARCHAR",
    "amount": "DOUBLE",
    "currency": "VARCHAR",
    "category": "VARCHAR",
    "channel": "VARCHAR",
    "status": "VARCHAR",
    "csat": "DOUBLE",
    "subject": "VARCHAR",
    "text": "VARCHAR",
    "followers": "BIGINT",
    "posts": "BIGINT",
    "email_others": "VARCHAR[]",
    "phone_others": "VARCHAR[]",
}

SOURCE_OF_KIND = {
    "crm": "crm",
    "transactions": "orders",
    "support": "tickets",
    "social": "social",
}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def day(text: str) -> date:
    return date.fromisoformat(text)


def load_records(rows: list[dict[str, Any]]) -> DuckDBEngine:
    """An engine holding `rows` as records; each row names its ``customer_id`` and ``kind``.

    Record keys follow list order; source ids are the kind's source name and the key.
    """
    engine = DuckDBEngine()
    columns = ", ".join(f"{name} {kind}" for name, kind in RECORD_COLUMNS.items())
    engine.execute(f"CREATE TABLE {RECORDS} ({columns})")
    engine.execute(f"CREATE TABLE {IDENTITY} (record_key BIGINT, customer_id VARCHAR)")
    for key, row in enumerate(rows, start=1):
        values = {name: row.get(name) for name in RECORD_COLUMNS}
        if values["last_name_std"] is None and values["last_name"] is not None:
            # as the standardiser has it, without case or accents
            folded = unicodedata.normalize("NFKD", values["last_name"].lower())
            values["last_name_std"] = "".join(c for c in folded if not unicodedata.combining(c))
        kind = row["kind"]
        values.update(
            record_key=key,
            source_kind=kind,
            source=row.get("source", SOURCE_OF_KIND[kind]),
            source_record_id=f"{SOURCE_OF_KIND[kind]}-{key}",
        )
        placeholders = ", ".join(f"${name}" for name in RECORD_COLUMNS)
        engine.execute(f"INSERT INTO {RECORDS} VALUES ({placeholders})", values)
        engine.execute(
            f"INSERT INTO {IDENTITY} VALUES ($key, $customer)",
            {"key": key, "customer": row["customer_id"]},
        )
    return engine


def by_customer(engine: DuckDBEngine, table_sql: str) -> dict[str, dict[str, Any]]:
    """Every row of a per-customer table as a dict, keyed by customer_id."""
    cursor = engine.con.execute(f"SELECT * FROM {table_sql}")
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
