"""Stage 3, block: which pairs of records could be the same customer.

Records identical in every identity field are first collapsed into one node, so the work grows
with distinct identities, not rows. Candidate pairs are the node pairs sharing every key of at
least one blocking rule (equality on derived keys: email, phone, last name + postcode, ...),
each pair produced once. A key value shared by too many nodes blocks nothing: it is junk or too
common to mean anything, and `plan_rules` shows such values before any pair is built.
"""

from __future__ import annotations

from typing import Any

from cxunify.compare import NODE_FEATURES
from cxunify.engine import DuckDBEngine
from cxunify.sql import ident, table
from cxunify.standardize import RECORDS, macro_statements

# --- probabilistic matching: nodes and candidate pairs ---------------------------------------

NODES = table("nodes")
RECORD_NODES = table("record_nodes")
PAIRS = table("pairs")
RULES = table("rules")

# Records identical in all of these are one node: orders repeat the same name, email and
# address thousands of times, and pairing nodes instead of rows removes that cost entirely.
IDENTITY_COLUMNS = (
    "first_name_std",
    "last_name_std",
    "name_suffix",
    "email_std",
    "phone",
    "phone_digits",
    "street_std",
    "city_std",
    "postcode",
    "dob",
    "national_id",
    "handle_letters",
    "handle",
)
# Carried on nodes; each is a function of the identity columns.
DERIVED_COLUMNS = (
    "first_name_key",
    "last_name_soundex",
    "email_local",
    "email_domain",
)


def _surname_in(spelled: str) -> str:
    """What follows the first name, or its initial, in a handle or email local part."""
    first = "replace(r.first_name_std, ' ', '')"
    return f"""CASE
        WHEN starts_with({spelled}, {first}) THEN substr({spelled}, length({first}) + 1)
        WHEN starts_with({spelled}, r.first_name_key)
            THEN substr({spelled}, length(r.first_name_key) + 1)
        WHEN starts_with({spelled}, left({first}, 1)) THEN substr({spelled}, 2)
        END"""


# A social account or an order often shows a first name only, or "Jason N.", while the handle
# or email spells the surname too ("jasonnguyen", "jnguyen", "jason.nguyen"): blocking then
# uses what follows the first name there as the surname. It only finds candidates; the
# handle and email comparisons weigh the evidence.
SURNAME_KEY = f"""CASE
    WHEN length(r.last_name_std) > 1 OR r.first_name_std IS NULL THEN r.last_name_soundex
    ELSE coalesce(
        list_transform([{_surname_in("r.handle_letters")},
                        {_surname_in("regexp_replace(r.email_local, '[^a-z]', '', 'g')")}],
                       lambda v: CASE WHEN length(v) >= 2 THEN cx_soundex(v) END)
            .list_filter(lambda v: v IS NOT NULL)[1],
        r.last_name_soundex)
    END"""
BLOCKING_KEYS = IDENTITY_COLUMNS + DERIVED_COLUMNS + ("surname_key",)

DEFAULT_RULES: tuple[tuple[str, ...], ...] = (
    ("email_std",),
    ("phone",),
    ("national_id",),
    ("last_name_std", "postcode"),
    ("first_name_key", "dob"),
    ("last_name_soundex", "dob"),
    ("first_name_key", "surname_key"),
    ("email_local",),
    ("handle_letters",),
    ("surname_key", "city_std"),
    ("postcode", "dob"),
    ("first_name_key", "city_std"),
)


def collapse_nodes(engine: DuckDBEngine) -> int:
    """Create ``cx_record_nodes(record_key, node)`` and ``cx_nodes``; return the node count.

    A node is named by its smallest record_key and carries ``n_records``.
    """
    partition = ", ".join(ident(c) for c in IDENTITY_COLUMNS)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {RECORD_NODES} AS
        SELECT record_key, min(record_key) OVER (PARTITION BY {partition}) AS node
        FROM {RECORDS}
        """
    )
    carried = ", ".join(
        [f"r.{ident(c)}" for c in IDENTITY_COLUMNS + DERIVED_COLUMNS]
        + [f"{sql} AS {ident(name)}" for name, sql in NODE_FEATURES.items()]
    )
    # The surname key needs the standardisation macros: on Spark it is added to each
    # partition of nodes by DuckDB (see standardize), on DuckDB the macros are at hand.
    on_duckdb = isinstance(engine, DuckDBEngine)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {NODES} AS
        WITH sizes AS (SELECT node, count(*) AS n_records FROM {RECORD_NODES} GROUP BY node)
        SELECT s.node, s.n_records, {carried}
               {f", {SURNAME_KEY} AS surname_key" if on_duckdb else ""}
        FROM sizes s JOIN {RECORDS} r ON r.record_key = s.node
        ORDER BY s.node
        """
    )
    if not on_duckdb:
        spark: Any = engine
        spark.map_in_duckdb(
            NODES,
            NODES,
            macro_statements(),
            [],
            f"SELECT *, {SURNAME_KEY} AS surname_key FROM {NODES} r",
        )
    return engine.count(NODES)


def rule_name(rule: tuple[str, ...] | list[str]) -> str:
    return " + ".join(rule)


def _keyed(rule: tuple[str, ...] | list[str]) -> tuple[str, str]:
    columns = ", ".join(ident(c) for c in rule)
    present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in rule)
    return columns, present


def plan_rules(
    engine: DuckDBEngine, rules: list[tuple[str, ...]] | list[list[str]], max_block_size: int
) -> list[dict[str, int | str]]:
    """Per rule, the pairs it would produce, from key frequencies alone (no pairs built)."""
    plans: list[dict[str, int | str]] = []
    for rule in rules:
        columns, present = _keyed(rule)
        pairs, kept_keys, skipped_keys, skipped_pairs = engine.rows(
            f"""
            WITH sizes AS (
                SELECT count(*)::HUGEINT AS n FROM {NODES} WHERE {present} GROUP BY {columns}
            )
            SELECT coalesce(sum(n * (n - 1) // 2) FILTER (WHERE n <= $max), 0),
                   count(*) FILTER (WHERE n BETWEEN 2 AND $max),
                   count(*) FILTER (WHERE n > $max),
                   coalesce(sum(n * (n - 1) // 2) FILTER (WHERE n > $max), 0)
            FROM sizes
            """,
            {"max": max_block_size},
        )[0]
        plans.append(
            {
                "rule": rule_name(rule),
                "pairs": int(pairs),
                "blocks": int(kept_keys),
                "skipped_keys": int(skipped_keys),
                "skipped_pairs": int(skipped_pairs),
            }
        )
    return plans


def candidate_pairs(
    engine: DuckDBEngine, rules: list[tuple[str, ...]] | list[list[str]], max_block_size: int
) -> int:
    """Create ``cx_pairs(left_node, right_node, rule)``, each pair once; return its size.

    A key value shared by more than `max_block_size` nodes is skipped: such a block is junk
    (a shop's phone number) or too common to say anything (a first name alone).
    """
    found = table("pairs_found")
    engine.execute(
        f"CREATE OR REPLACE TABLE {found} (left_node BIGINT, right_node BIGINT, rule SMALLINT)"
    )
    for index, rule in enumerate(rules):
        columns, present = _keyed(rule)
        join = " AND ".join(f"a.{ident(c)} = b.{ident(c)}" for c in rule)
        engine.execute(
            f"""
            INSERT INTO {found}
            WITH keyed AS (SELECT node, {columns} FROM {NODES} WHERE {present}),
            usable AS (
                SELECT {columns} FROM keyed GROUP BY {columns}
                HAVING count(*) BETWEEN 2 AND $max
            ),
            blocked AS (SELECT k.* FROM keyed k SEMI JOIN usable u USING ({columns}))
            SELECT a.node, b.node, $rule
            FROM blocked a JOIN blocked b ON {join} AND a.node < b.node
            """,
            {"max": max_block_size, "rule": index},
        )
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {PAIRS} AS
        SELECT left_node, right_node, min(rule) AS rule FROM {found}
        GROUP BY left_node, right_node
        """
    )
    engine.drop(found)
    engine.execute(f"CREATE OR REPLACE TABLE {RULES} (rule SMALLINT, name VARCHAR)")
    for index, rule in enumerate(rules):
        engine.execute(
            f"INSERT INTO {RULES} VALUES ($i, $name)", {"i": index, "name": rule_name(rule)}
        )
    return engine.count(PAIRS)


def null_junk_values(
    engine: DuckDBEngine, blocklist: list[str], max_records_per_value: int
) -> dict[str, int]:
    """Blank emails and phones that are junk, on nodes only (profiles keep what was given).

    Junk is a blocklisted value, or one carried by more records than `max_records_per_value`
    (a shop's own number typed into every order). Returns junk values found per column.
    """
    found = {}
    for column, derived in (
        ("email_std", ("email_local", "email_domain")),
        ("phone", ("phone_digits",)),
    ):
        junk = table("junk_" + column)
        engine.execute(
            f"""
            CREATE OR REPLACE TABLE {junk} AS
            SELECT {ident(column)} AS value FROM {NODES} WHERE {ident(column)} IS NOT NULL
            GROUP BY {ident(column)}
            HAVING sum(n_records) > $max OR list_contains($blocklist, lower({ident(column)}))
            """,
            {"max": max_records_per_value, "blocklist": _blocklist_forms(blocklist)},
        )
        found[column] = engine.count(junk)
        if found[column]:
            blanks = ", ".join(f"{ident(c)} = NULL" for c in (column, *derived))
            engine.execute(
                f"UPDATE {NODES} SET {blanks} WHERE {ident(column)} IN (SELECT value FROM {junk})"
            )
        engine.drop(junk)
    return found


def _blocklist_forms(blocklist: list[str]) -> list[str]:
    """Blocklisted values as written and, for phones, in E.164, all lower case."""
    import phonenumbers

    forms = {v.strip().lower() for v in blocklist}
    for value in blocklist:
        try:
            number = phonenumbers.parse(value, "US")
        except phonenumbers.NumberParseException:
            continue
        forms.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return sorted(forms)
