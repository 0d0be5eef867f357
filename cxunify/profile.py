"""Stage 8, profile: one golden record per customer, with its traits.

Survivorship is configured per golden field (``profile.survivorship``): ``most_recent``,
``most_frequent``, ``source_priority`` (an ordered list of source names or kinds), ``longest`` or
``first_non_null`` (the first record read, in config source order then file order). Ties go to
the most recent record, then to reading order, so a run is reproducible. Each golden field keeps
where its value came from in ``<field>_provenance`` (source, source_record_id, rule, seen_at);
every distinct email, phone, address and handle stays available as a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cxunify import traits
from cxunify.config import GOLDEN_FIELD_NAMES, ProfileConfig, SurvivorshipRule
from cxunify.engine import DuckDBEngine
from cxunify.fields import Kind
from cxunify.identity import IDENTITY
from cxunify.sql import ident, table
from cxunify.standardize import RECORDS

PROFILES = table("profiles")
GOLDEN = table("golden")
GOLDEN_ROWS = table("golden_rows")

GOLDEN_FIELDS = GOLDEN_FIELD_NAMES
SOURCE_KINDS = sorted(kind.value for kind in Kind)
# Sources are listed through a BIGINT bit mask when there are at most this many.
MASK_BITS = 62
ADDRESS_PARTS = ("city", "postcode", "state", "country")

# Among equally good candidates: the newest record, then the first read. A winner is found with
# arg_min over a binary sort key, then its row is joined back once: carrying the values through
# the aggregate (or first(... ORDER BY ...)) is several times slower at a million rows.
# Descending keys are numbers (epoch_us): Spark's form of the key negates them.
_TIE_BREAK = "epoch_us(seen_at), 'DESC NULLS LAST', record_key, 'ASC NULLS LAST'"


@dataclass(frozen=True)
class Profiled:
    """What the profile stage built: customers, touchpoints, texts scored, and the as-of used."""

    profiles: int
    touchpoints: int
    texts_scored: int
    as_of: datetime | None


def survivor_key(field: str, rule: SurvivorshipRule) -> str:
    """A sort key whose smallest value marks the winning record for `field` under `rule`.

    Address parts prefer records that have a street, so a golden address is one record's
    address wherever a complete one exists, not a street from one source and a city from another.
    """
    column = ident(field)
    by_rule = {
        "most_recent": _TIE_BREAK,
        "source_priority": (
            f"coalesce(list_position(${_param(field)}, source), "
            f"list_position(${_param(field)}, source_kind), 1000), 'ASC NULLS LAST', {_TIE_BREAK}"
        ),
        "most_frequent": f"{ident('freq_' + field)}, 'DESC NULLS LAST', {_TIE_BREAK}",
        "longest": f"length(CAST({column} AS VARCHAR)), 'DESC NULLS LAST', {_TIE_BREAK}",
        "first_non_null": "record_key, 'ASC NULLS LAST'",
    }[rule.rule]
    if field in ADDRESS_PARTS:
        by_rule = f"street IS NULL, 'ASC NULLS LAST', {by_rule}"
    return f"create_sort_key({by_rule})"


def _distinct_list(column: str, expression: str, where: str) -> str:
    # Distinct pairs first, then one sorted list per customer: orders repeat the same email
    # thousands of times, and list(DISTINCT ...) over every row is slow.
    return f"""
        SELECT customer_id, list(v ORDER BY v) AS {ident(column)}
        FROM (SELECT DISTINCT customer_id, {expression} AS v FROM r WHERE {where})
        GROUP BY customer_id"""


def _sort_keys(rules: dict[str, SurvivorshipRule]) -> dict[str, str]:
    """Golden field -> the name of its sort-key column; fields with the same key share one."""
    names: dict[str, str] = {}
    return {
        f: names.setdefault(survivor_key(f, rules[f]), f"sort_key_{len(names) + 1}")
        for f in GOLDEN_FIELDS
    }


def golden_rows_sql(rules: dict[str, SurvivorshipRule]) -> str:
    """SELECT of the records survivorship reads: customer id, timestamps and sort keys.

    Computing each distinct sort key once per row, in a table of its own, is several times
    faster than computing one per field inside the aggregate.
    """
    frequencies = "".join(
        f", count(*) OVER (PARTITION BY customer_id, {ident(f)}) AS {ident('freq_' + f)}"
        for f, rule in rules.items()
        if rule.rule == "most_frequent"
    )
    keys = {}
    for field, name in _sort_keys(rules).items():
        keys[name] = survivor_key(field, rules[field])
    key_columns = ", ".join(f"{expression} AS {name}" for name, expression in keys.items())
    return f"""
        SELECT *, {key_columns}
        FROM (
            SELECT r.record_key, r.source, r.source_kind, r.source_record_id,
                   {", ".join(f"r.{ident(f)}" for f in GOLDEN_FIELDS)},
                   r.handle, r.platform, r.created_at, r.resolved_at, r.last_active_at,
                   i.customer_id,
                   greatest(r.created_at, r.resolved_at, r.last_active_at) AS seen_at
                   {frequencies}
            FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        )
    """


def _in_list_aggregate(column: str, names: str, mask: bool) -> str:
    # Which of a few known names a customer's rows carry, as a bit mask: an integer aggregate
    # is some twenty times cheaper than list(DISTINCT ...) over a million rows.
    if mask:
        return f"bit_or(1::BIGINT << (list_position({names}, {column}) - 1))"
    return f"list_sort(list(DISTINCT {column}))"


def _in_list_decoded(column: str, names: str, mask: bool) -> str:
    if mask:
        return f"list_filter({names}, lambda name, i: (({column} >> (i - 1)) & 1) = 1)"
    return column


def golden_sql(rules: dict[str, SurvivorshipRule], sources: int = 1) -> str:
    """SELECT of one golden record per customer from ``cx_golden_rows`` (:func:`golden_rows_sql`).

    `sources` is how many sources there are (a zero-config run may have hundreds of files).
    Parameters: those of :func:`golden_params`, ``$source_names`` and ``$source_kinds``
    (sorted names).
    """
    mask = sources <= MASK_BITS
    sort_keys = _sort_keys(rules)
    winners = ",\n".join(
        f"arg_min(record_key, {sort_keys[f]}) FILTER (WHERE {ident(f)} IS NOT NULL) "
        f"AS {ident('w_' + f)}"
        for f in GOLDEN_FIELDS
    )
    keys = ", ".join(ident("w_" + f) for f in GOLDEN_FIELDS)
    golden = ",\n".join(f"{ident('g_' + f)}.{ident(f)}" for f in GOLDEN_FIELDS)
    joins = "\n".join(
        f"LEFT JOIN won {ident('g_' + f)} ON {ident('g_' + f)}.record_key = w.{ident('w_' + f)}"
        for f in GOLDEN_FIELDS
    )
    provenance = ",\n".join(
        f"CASE WHEN w.{ident('w_' + f)} IS NOT NULL THEN {{'source': {ident('g_' + f)}.source, "
        f"'source_record_id': {ident('g_' + f)}.source_record_id, "
        f"'rule': ${_rule_param(f)}, 'seen_at': {ident('g_' + f)}.seen_at}} END "
        f"AS {ident(f + '_provenance')}"
        for f in GOLDEN_FIELDS
    )
    address = (
        "concat_ws(', ', street, city, nullif(concat_ws(' ', upper(state), postcode), ''), country)"
    )
    handle = "coalesce(platform || ':', '') || handle"
    return f"""
        WITH r AS (SELECT * FROM {GOLDEN_ROWS}),
        w AS (
            SELECT customer_id,
                   {winners},
                   count(*) AS n_records,
                   {_in_list_aggregate("source", "$source_names", mask)} AS sources,
                   {_in_list_aggregate("source_kind", "$source_kinds", True)} AS source_kinds,
                   min(least(created_at, resolved_at, last_active_at)) AS first_seen_at,
                   max(seen_at) AS last_seen_at
            FROM r GROUP BY customer_id
        ), won AS (
            SELECT record_key, source, source_record_id, seen_at,
                   {", ".join(ident(f) for f in GOLDEN_FIELDS)}
            FROM r WHERE record_key IN (SELECT unnest([{keys}]) FROM w)
        ),
        emails AS ({_distinct_list("emails", "email", "email IS NOT NULL")}),
        phones AS ({_distinct_list("phones", "phone", "phone IS NOT NULL")}),
        addresses AS ({_distinct_list("addresses", address, "street IS NOT NULL")}),
        handles AS ({_distinct_list("handles", handle, "handle IS NOT NULL")})
        SELECT w.customer_id,
               {golden},
               coalesce(emails, []) AS emails, coalesce(phones, []) AS phones,
               coalesce(addresses, []) AS addresses, coalesce(handles, []) AS handles,
               n_records, {_in_list_decoded("sources", "$source_names", mask)} AS sources,
               {_in_list_decoded("source_kinds", "$source_kinds", True)} AS source_kinds,
               first_seen_at, last_seen_at,
               {provenance}
        FROM w
        {joins}
        LEFT JOIN emails USING (customer_id)
        LEFT JOIN phones USING (customer_id)
        LEFT JOIN addresses USING (customer_id)
        LEFT JOIN handles USING (customer_id)
    """


def golden_params(rules: dict[str, SurvivorshipRule]) -> dict[str, list[str] | str]:
    """The parameters of :func:`golden_sql`: priority lists and rule names per field."""
    params: dict[str, list[str] | str] = {_rule_param(f): rules[f].rule for f in GOLDEN_FIELDS}
    params.update({_param(f): r.sources for f, r in rules.items() if r.rule == "source_priority"})
    return params


def build_golden(engine: DuckDBEngine, rules: dict[str, SurvivorshipRule]) -> int:
    """Create ``cx_golden``: one golden record per customer; return its row count."""
    params = golden_params(rules)
    rows_params = {k: v for k, v in params.items() if k.startswith("priority_")}
    engine.execute(
        f"CREATE OR REPLACE TABLE {GOLDEN_ROWS} AS {golden_rows_sql(rules)}", rows_params
    )
    names = [name for (name,) in engine.rows(f"SELECT DISTINCT source FROM {RECORDS} ORDER BY 1")]
    engine.execute(
        f"CREATE OR REPLACE TABLE {GOLDEN} AS {golden_sql(rules, len(names))}",
        {
            **{k: v for k, v in params.items() if k not in rows_params},
            "source_kinds": SOURCE_KINDS,
            **({"source_names": names} if len(names) <= MASK_BITS else {}),
        },
    )
    engine.drop(GOLDEN_ROWS)
    return engine.count(GOLDEN)


def build_profiles(engine: DuckDBEngine, settings: ProfileConfig | None = None) -> Profiled:
    """Create ``cx_profiles`` (golden record and traits) and ``cx_touchpoints``."""
    settings = settings or ProfileConfig()
    rules = settings.survivorship
    build_golden(engine, rules)
    as_of = settings.as_of or engine.scalar(
        f"SELECT max(greatest(created_at, resolved_at, last_active_at)) FROM {RECORDS}"
    )
    touchpoints, scored = traits.build_touchpoints(engine, settings.currency)
    traits.build_traits(engine, settings, as_of)
    engine.execute(
        f"""
        CREATE OR REPLACE VIEW {PROFILES} AS
        SELECT g.*, t.* EXCLUDE (customer_id)
        FROM {GOLDEN} g LEFT JOIN {traits.TRAITS} t USING (customer_id)
        """
    )
    # A view, not a table: the write stage joins once as it writes. One row per golden record.
    return Profiled(engine.count(GOLDEN), touchpoints, scored, as_of)


def _param(field: str) -> str:
    return f"priority_{field}"


def _rule_param(field: str) -> str:
    return f"rule_{field}"
