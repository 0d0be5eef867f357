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
from cxunify.identity import IDENTITY
from cxunify.sql import ident, table
from cxunify.standardize import RECORDS

PROFILES = table("profiles")
GOLDEN = table("golden")

GOLDEN_FIELDS = GOLDEN_FIELD_NAMES
ADDRESS_PARTS = ("city", "postcode", "state", "country")
KIND_PRIORITY = ("crm", "support", "transactions", "social")

# Among equally good candidates: the newest record, then the first read.
_TIE_BREAK = "seen_at DESC NULLS LAST, record_key"


@dataclass(frozen=True)
class Profiled:
    """What the profile stage built: customers, touchpoints, texts scored, and the as-of used."""

    profiles: int
    touchpoints: int
    texts_scored: int
    as_of: datetime | None


def survivor_order(field: str, rule: SurvivorshipRule) -> str:
    """The ORDER BY that puts the winning record for `field` first under `rule`.

    Address parts prefer records that have a street, so a golden address is one record's
    address wherever a complete one exists, not a street from one source and a city from another.
    """
    column = ident(field)
    by_rule = {
        "most_recent": _TIE_BREAK,
        "source_priority": (
            f"coalesce(list_position(${_param(field)}, source), "
            f"list_position(${_param(field)}, source_kind), 1000), {_TIE_BREAK}"
        ),
        "most_frequent": f"{ident('freq_' + field)} DESC, {_TIE_BREAK}",
        "longest": f"length(CAST({column} AS VARCHAR)) DESC, {_TIE_BREAK}",
        "first_non_null": "record_key",
    }[rule.rule]
    return f"street IS NULL, {by_rule}" if field in ADDRESS_PARTS else by_rule


def golden_sql(rules: dict[str, SurvivorshipRule]) -> str:
    """SELECT of one golden record per customer from records joined to their customer ids."""
    frequencies = "".join(
        f", count(*) OVER (PARTITION BY customer_id, {ident(f)}) AS {ident('freq_' + f)}"
        for f, rule in rules.items()
        if rule.rule == "most_frequent"
    )
    winners = ",\n".join(
        f"first({{'value': {ident(f)}, 'source': source, 'source_record_id': source_record_id, "
        f"'seen_at': seen_at}} ORDER BY {survivor_order(f, rules[f])}) "
        f"FILTER (WHERE {ident(f)} IS NOT NULL) AS {ident('w_' + f)}"
        for f in GOLDEN_FIELDS
    )
    golden = ",\n".join(f"{ident('w_' + f)}.value AS {ident(f)}" for f in GOLDEN_FIELDS)
    provenance = ",\n".join(
        f"CASE WHEN {ident('w_' + f)} IS NOT NULL THEN {{'source': {ident('w_' + f)}.source, "
        f"'source_record_id': {ident('w_' + f)}.source_record_id, "
        f"'rule': ${_rule_param(f)}, 'seen_at': {ident('w_' + f)}.seen_at}} END "
        f"AS {ident(f + '_provenance')}"
        for f in GOLDEN_FIELDS
    )
    address = (
        "concat_ws(', ', street, city, nullif(concat_ws(' ', upper(state), postcode), ''), country)"
    )
    return f"""
        WITH r AS (
            SELECT r.*, i.customer_id,
                   greatest(r.created_at, r.resolved_at, r.last_active_at) AS seen_at
                   {frequencies}
            FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        ), w AS (
            SELECT customer_id,
                   {winners},
                   coalesce(list(DISTINCT email ORDER BY email)
                            FILTER (WHERE email IS NOT NULL), []) AS emails,
                   coalesce(list(DISTINCT phone ORDER BY phone)
                            FILTER (WHERE phone IS NOT NULL), []) AS phones,
                   coalesce(list(DISTINCT {address} ORDER BY {address})
                            FILTER (WHERE street IS NOT NULL), []) AS addresses,
                   coalesce(list(DISTINCT coalesce(platform || ':', '') || handle
                                 ORDER BY coalesce(platform || ':', '') || handle)
                            FILTER (WHERE handle IS NOT NULL), []) AS handles,
                   count(*) AS n_records,
                   list(DISTINCT source ORDER BY source) AS sources,
                   list(DISTINCT source_kind ORDER BY source_kind) AS source_kinds,
                   min(least(created_at, resolved_at, last_active_at)) AS first_seen_at,
                   max(seen_at) AS last_seen_at
            FROM r
            GROUP BY customer_id
        )
        SELECT customer_id,
               {golden},
               emails, phones, addresses, handles,
               n_records, sources, source_kinds, first_seen_at, last_seen_at,
               {provenance}
        FROM w
    """


def golden_params(rules: dict[str, SurvivorshipRule]) -> dict[str, list[str] | str]:
    """The parameters of :func:`golden_sql`: priority lists and rule names per field."""
    params: dict[str, list[str] | str] = {_rule_param(f): rules[f].rule for f in GOLDEN_FIELDS}
    params.update({_param(f): r.sources for f, r in rules.items() if r.rule == "source_priority"})
    return params


def build_profiles(engine: DuckDBEngine, settings: ProfileConfig | None = None) -> Profiled:
    """Create ``cx_profiles`` (golden record and traits) and ``cx_touchpoints``."""
    settings = settings or ProfileConfig()
    rules = settings.survivorship
    engine.execute(f"CREATE OR REPLACE TABLE {GOLDEN} AS {golden_sql(rules)}", golden_params(rules))
    as_of = settings.as_of or engine.scalar(
        f"SELECT max(greatest(created_at, resolved_at, last_active_at)) FROM {RECORDS}"
    )
    touchpoints, scored = traits.build_touchpoints(engine, settings.currency)
    traits.build_traits(engine, settings, as_of)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {PROFILES} AS
        SELECT g.*, t.* EXCLUDE (customer_id)
        FROM {GOLDEN} g LEFT JOIN {traits.TRAITS} t USING (customer_id)
        ORDER BY customer_id
        """
    )
    engine.drop(GOLDEN, traits.TRAITS)
    return Profiled(engine.count(PROFILES), touchpoints, scored, as_of)


def _param(field: str) -> str:
    return f"priority_{field}"


def _rule_param(field: str) -> str:
    return f"rule_{field}"
