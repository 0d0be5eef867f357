"""Stage 8, profile: one golden record per customer, with its traits.

Survivorship is configured per golden field (``profile.survivorship``): ``most_recent``,
``most_frequent``, ``source_priority`` (an ordered list of source names or kinds), ``longest`` or
``first_non_null`` (the first record read, in config source order then file order). Under a
counting rule (source_priority, most_frequent, longest) a name that is a slip of the keyboard
beside a spelling on twice as many of the customer's records ranks last (see TYPO_FIELDS), and
records the rule ranks alike go to the value on more of the customer's records, then to a
value that is not the start of another of the customer's ('Mic' beside 'Michael'); then every
rule's ties go to the most recent record, then to reading order, so a run is reproducible.
Each golden field keeps where its value came from in ``<field>_provenance`` (source,
source_record_id, rule, seen_at); every distinct email, phone, address and handle stays
available as a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cxunify import traits
from cxunify.config import GOLDEN_FIELD_NAMES, UNKNOWN_CURRENCY, ProfileConfig, SurvivorshipRule
from cxunify.engine import DuckDBEngine
from cxunify.errors import CxunifyError
from cxunify.fields import Kind
from cxunify.identity import IDENTITY
from cxunify.sentiment import SENTIMENT
from cxunify.sql import ident, parquet, table
from cxunify.standardize import RECORDS

PROFILES = table("profiles")
GOLDEN = table("golden")
GOLDEN_ROWS = table("golden_rows")
GOLDEN_WINNERS = table("golden_winners")
GOLDEN_LISTS = table("golden_lists")
GOLDEN_KEPT = table("golden_kept")
# An update's unchanged customers (GOLDEN_KEPT) whose traits are copied too (see traits.Copied).
TRAITS_KEPT = table("traits_kept")
# An update's orders that gained or lost a row, (source, order_id): written by the update.
TOUCHED_ORDERS = table("touched_orders")

GOLDEN_FIELDS = GOLDEN_FIELD_NAMES
SOURCE_KINDS = sorted(kind.value for kind in Kind)
# Sources are listed through a BIGINT bit mask when there are at most this many.
MASK_BITS = 62
ADDRESS_PARTS = ("city", "postcode", "state", "country")
DATE_FIELDS = ("dob",)

# Each rule's order is packed into one DECIMAL(38,0) per row, smallest wins, and the winner's
# record key is its last twelve digits: `min` over a fixed-size number is an aggregate DuckDB can
# spill to disk, where arg_min over a variable-length sort key held every customer's state in
# memory (it stopped 10M-row runs), and it needs no function Spark lacks. From the left: the
# rank (RANK_DIGITS: the address or slip flag, the rule's own order in ORDER_DIGITS, the cut
# flag), how recent (SEEN_DIGITS), the record key (KEY_DIGITS).
KEY_DIGITS = 12
SEEN_DIGITS = 17
RANK_DIGITS = 38 - KEY_DIGITS - SEEN_DIGITS
ORDER_DIGITS = RANK_DIGITS - 2
# A rule ranking by a source's place or a length ranks its equals by count in the last
# COUNT_DIGITS of its order; the place or length has the digits before them.
COUNT_DIGITS = 4
_SEEN_SHIFT = 10**KEY_DIGITS
_RANK_SHIFT = 10 ** (KEY_DIGITS + SEEN_DIGITS)
# How recent: microseconds before 3000-01-01 (UTC), so a year typed as 2205 is still the
# newest; 17 digits reach back over 3,000 years (older is as old), and a missing time is last.
_SEEN_FROM = 32_503_680_000 * 10**6
# (greatest and least skip a NULL: a missing time is tested first.)
_NEWEST_FIRST = (
    f"CASE WHEN seen_at IS NULL THEN {10**SEEN_DIGITS - 1} "
    f"ELSE least(greatest({_SEEN_FROM} - CAST(epoch_us(seen_at) AS DECIMAL(38,0)), 0), "
    f"{10**SEEN_DIGITS - 2}) END"
)
# Rules under which a value held by more of the customer's rows, then a fuller value, wins
# among equally good rows before the newest does (most_recent and first_non_null are by their
# rows alone).
COUNTED_RULES = ("most_frequent", "source_priority", "longest")
# A name on a customer's rows beside another spelling one slip of the keyboard away (a letter
# more, less, changed, or two swapped: Damerau-Levenshtein 1, names of 3 letters or more) held
# by at least TYPO_OUTNUMBERED times as many of its rows is a slip: under a counting rule it
# ranks after every other value, whatever its source's place ('Bredna' in the CRM gives way to
# the orders' 'Brenda', 'Brenda'). On the bundled sample, 31 golden first names and 42 last
# names became the person's own and 3 last names stopped being (two rows of a spelling against
# one is evidence, not proof).
TYPO_FIELDS = ("first_name", "last_name")
TYPO_OUTNUMBERED = 2
# The order of source kinds in which a tie of rows goes to the first (see `_last_tie`).
_KIND_ORDER = "['crm', 'transactions', 'support', 'social']"
# Record keys must fit their digits: a trillion records is far beyond one output folder.
MAX_RECORD_KEY = 10**KEY_DIGITS - 1


@dataclass(frozen=True)
class Unchanged:
    """What an update may copy from the output it updates: the golden records of customers
    whose records are all stored ones (keys up to `last_stored_key`, never replaced) and were
    all that customer's records before. Survivorship reads nothing else, so their golden
    records are the same. So are their traits, but for those relative to the as-of date and
    to the other customers, unless an order of theirs gained or lost a row (see
    traits.Copied). Texts in `sentiment` (text, sentiment) keep their stored score."""

    profiles: Path
    identity_map: Path
    last_stored_key: int
    sentiment: Path | None = None


@dataclass(frozen=True)
class Profiled:
    """What the profile stage built: customers, touchpoints, texts scored, and the as-of used."""

    profiles: int
    touchpoints: int
    texts_scored: int  # distinct texts with a sentiment
    as_of: datetime | None
    golden_copied: int = 0  # an update's golden records copied from the previous output
    traits_copied: int = 0  # an update's customers whose traits (not relative ones) were copied
    sentiment_copied: int = 0  # an update's texts whose stored sentiment was taken
    future_timestamps: int = 0  # timestamps after the run started, left out of the default as_of
    csat_out_of_scale: int = 0  # ticket CSAT values outside profile.experience.csat_scale
    currency_conflicts: int = 0  # amounts naming another currency than their currency column
    warnings: tuple[str, ...] = ()  # what the run did that its user should know of


def survivor_key(field: str, rule: SurvivorshipRule) -> str:
    """A DECIMAL(38,0) whose smallest value marks the winning record for `field` under `rule`;
    its last KEY_DIGITS digits are that record's key.

    Among rows the rule ranks alike (a source_priority tier, values of one length, most_frequent
    values of one count), the value held by more of the customer's rows wins, then a value that
    is not cut short ('Mic' is the start of the customer's 'Michael'), then the newest row, then
    the first by kind, source and id (see `_last_tie`). Address parts prefer records that have
    a street, so a golden address is one record's address wherever a complete one exists, not
    a street from one source and a city from another. Reads the ``freq_<field>`` and
    ``cut_<field>`` columns of :func:`golden_rows_sql` for the rules in COUNTED_RULES.
    """
    column = ident(field)

    # (least and greatest skip a NULL: a missing value is tested first.)
    def descending(value: str, digits: int) -> str:  # larger first, missing last
        top = 10**digits - 2
        return f"CASE WHEN {value} IS NULL THEN {top + 1} ELSE {top} - least({value}, {top}) END"

    frequency = ident("freq_" + field)
    place_digits = ORDER_DIGITS - COUNT_DIGITS
    last_place = 10**place_digits - 1  # a source not in the list (or as far down it)
    then_count = f" * {10**COUNT_DIGITS} + {descending(frequency, COUNT_DIGITS)}"
    order = {
        "most_recent": "0",
        "source_priority": (
            f"least(coalesce(list_position(${_param(field)}, source), "
            f"list_position(${_param(field)}, source_kind), {last_place}), {last_place})"
            f"{then_count}"
        ),
        "most_frequent": descending(frequency, ORDER_DIGITS),
        "longest": (
            f"{descending(f'length(CAST({column} AS VARCHAR))', place_digits)}{then_count}"
        ),
        "first_non_null": "0",
    }[rule.rule]
    cut = f"CAST({ident('cut_' + field)} AS INTEGER)" if rule.rule in COUNTED_RULES else "0"
    rank = f"({order}) * 10 + {cut}"
    if field in ADDRESS_PARTS:
        rank = f"(CASE WHEN street IS NULL THEN {10 ** (RANK_DIGITS - 1)} ELSE 0 END + {rank})"
    elif field in TYPO_FIELDS and rule.rule in COUNTED_RULES:
        # A slip ranks after every other value, and an initial ('M.', the start of the
        # customer's 'Morris') after every other but slips, whatever their sources.
        slip = f"CAST({ident('typo_' + field)} AS INTEGER)"
        initial = f"CAST({ident('initial_' + field)} AS INTEGER)"
        rank = f"(({slip} * 2 + {initial}) * {10 ** (RANK_DIGITS - 1)} + {rank})"
    seen = "0" if rule.rule == "first_non_null" else _NEWEST_FIRST
    return (
        f"(CAST({rank} AS DECIMAL(38,0)) * {_RANK_SHIFT} "
        f"+ CAST({seen} AS DECIMAL(38,0)) * {_SEEN_SHIFT} + {_last_tie(rule)})"
    )


def _last_tie(rule: SurvivorshipRule) -> str:
    """What breaks a tie last, the winning row's number among its customer's rows: the first
    read under first_non_null (its record key); else the row's place by kind (crm,
    transactions, support, social), source and id (`nth`), which an update and a full run
    agree on (an update keys tonight's records after the stored ones: a tie of two rows of
    one time went to the stored one in an update, to the first in the config in a full run)."""
    return "record_key" if rule.rule == "first_non_null" else "nth"


def _winner(key: str) -> str:
    """The row inside a `survivor_key` value: its record key or its `nth` (see `_last_tie`)."""
    return f"CAST({key} % {_SEEN_SHIFT} AS BIGINT)"


def _distinct_list(column: str, expression: str, where: str, others: str | None = None) -> str:
    # Distinct pairs first, then one sorted list per customer: orders repeat the same email
    # thousands of times, and list(DISTINCT ...) over every row is slow. `others`: a list
    # column of more values (a record's other phone columns), listed too.
    more = (
        f" UNION SELECT customer_id, unnest({ident(others)}) FROM r "
        f"WHERE {ident(others)} IS NOT NULL"
        if others
        else ""
    )
    return f"""
        SELECT customer_id, list(v ORDER BY v) AS {ident(column)}
        FROM (SELECT DISTINCT customer_id, {expression} AS v FROM r WHERE {where}{more})
        GROUP BY customer_id"""


def _sort_keys(rules: dict[str, SurvivorshipRule]) -> dict[str, str]:
    """Golden field -> the name of its sort-key column; fields with the same key share one."""
    names: dict[str, str] = {}
    return {
        f: names.setdefault(survivor_key(f, rules[f]), f"sort_key_{len(names) + 1}")
        for f in GOLDEN_FIELDS
    }


def _values_sql(field: str) -> str:
    """SELECT of each distinct value of `field` per customer in ``member_rows``: how many rows
    hold it, whether it is cut short, the start of a longer value of the same customer, and
    whether it is a slip (see TYPO_FIELDS).

    Among a customer's values in order, those starting with a value come right after it (all
    that sort between a value and a longer one starting with it start with it too), so the next
    one tells ('D.' sorts right before 'Donald', and is its start without the full stop that
    marks an initial). A date is never another's start."""
    column = ident(field)
    cut = (
        "false"
        if field in DATE_FIELDS
        else (
            f"coalesce(starts_with(lead({column}) OVER "
            f"(PARTITION BY customer_id ORDER BY {column}), rtrim({column}, '.')), false)"
        )
    )
    # (a name's key: its formal name for a nickname, see names.cx_name_key; a last name's, its
    # standard form, without case or accents: 'Alcántara' is no slip beside 'Alcantara')
    key = {
        "first_name": ", min(first_name_key) AS name_key",
        "last_name": ", min(last_name_std) AS name_key",
    }.get(field, "")
    counted = f"""
        SELECT customer_id, {column} AS v, count(*) AS n, {cut} AS cut{key}
        FROM member_rows WHERE {column} IS NOT NULL GROUP BY customer_id, {column}"""
    if field not in TYPO_FIELDS:
        return counted
    # (named by its field: Spark's parser takes the CTEs of every field's to the top)
    name, slips = ident("counted_" + field), ident("slips_" + field)
    # Two spellings of one name ('Bob' and 'Rob', both Robert's; 'José' and 'Jose') are no slip.
    same_name = " AND NOT coalesce(a.name_key = b.name_key, false)" if key else ""
    # (the distance in WHERE, not in an outer join's ON: Spark runs no Python UDF there)
    return f"""
        WITH {name} AS ({counted}),
        {slips} AS (
            SELECT DISTINCT a.customer_id, a.v
            FROM {name} a JOIN {name} b ON b.customer_id = a.customer_id
            WHERE b.n >= {TYPO_OUTNUMBERED} * a.n AND length(a.v) >= 3 AND b.v <> a.v{same_name}
              AND damerau_levenshtein(lower(a.v), lower(b.v)) = 1
        )
        SELECT c.customer_id, c.v, c.n, c.cut, s.v IS NOT NULL AS typo,
               c.cut AND length(rtrim(c.v, '.')) = 1 AS initial
        FROM {name} c LEFT JOIN {slips} s ON s.customer_id = c.customer_id AND s.v = c.v"""


def golden_rows_sql(rules: dict[str, SurvivorshipRule], skipped: str | None = None) -> str:
    """SELECT of the records survivorship reads: customer id, timestamps, sort keys and, for
    the fields whose rule counts values (COUNTED_RULES), how many of the customer's rows hold
    each row's value (``freq_<field>``) and whether it is cut short (``cut_<field>``). Not
    those of the customers in table `skipped`, whose golden records are copied: a customer's
    counts are of its own rows only.

    Computing each distinct sort key once per row, in a table of its own, is several times
    faster than computing one per field inside the aggregate.
    """
    counted = [f for f in GOLDEN_FIELDS if rules[f].rule in COUNTED_RULES]
    values = "".join(f", {ident('v_' + f)} AS ({_values_sql(f)})" for f in counted)
    joined = "".join(
        f" LEFT JOIN {ident('v_' + f)} ON {ident('v_' + f)}.customer_id = m.customer_id "
        f"AND {ident('v_' + f)}.v = m.{ident(f)}"
        for f in counted
    )
    counts = "".join(
        f", {ident('v_' + f)}.n AS {ident('freq_' + f)}, "
        f"{ident('v_' + f)}.cut AS {ident('cut_' + f)}"
        + (
            f", {ident('v_' + f)}.typo AS {ident('typo_' + f)}, "
            f"{ident('v_' + f)}.initial AS {ident('initial_' + f)}"
            if f in TYPO_FIELDS
            else ""
        )
        for f in counted
    )
    keys = {}
    for field, name in _sort_keys(rules).items():
        keys[name] = survivor_key(field, rules[field])
    key_columns = ", ".join(f"{expression} AS {name}" for name, expression in keys.items())
    return f"""
        WITH member_rows AS (
            SELECT r.record_key, r.source, r.source_kind, r.source_record_id,
                   {", ".join(f"r.{ident(f)}" for f in GOLDEN_FIELDS)}, r.first_name_key,
                   r.last_name_std,
                   r.handle, r.platform, r.created_at, r.resolved_at, r.last_active_at,
                   r.email_others, r.phone_others,
                   i.customer_id,
                   greatest(r.created_at, r.resolved_at, r.last_active_at) AS seen_at,
                   row_number() OVER (
                       PARTITION BY i.customer_id
                       ORDER BY list_position({_KIND_ORDER}, r.source_kind), r.source,
                                r.source_record_id
                   ) AS nth
            FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
            {f"ANTI JOIN {skipped} USING (customer_id)" if skipped else ""}
        ){values}
        SELECT *, {key_columns}
        FROM (SELECT m.*{counts} FROM member_rows m{joined})
    """


# A run of no records binds no source names: an empty list has no element type, and the
# profiles of a run that rejected every row had `sources` of type NULL[].
SOURCE_NAMES = "$source_names::VARCHAR[]"


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


def winners_sql(rules: dict[str, SurvivorshipRule], sources: int = 1) -> str:
    """SELECT from ``cx_golden_rows`` (:func:`golden_rows_sql`) of one row per customer: each
    golden field's winning record key (``w_<field>``), and the counts and dates that need
    no winner. `sources` is how many sources there are (a zero-config run may have hundreds
    of files). Parameters: ``$source_names`` and ``$source_kinds`` (sorted names).
    """
    mask = sources <= MASK_BITS
    sort_keys = _sort_keys(rules)
    winners = ",\n".join(
        f"{_winner(f'min({sort_keys[f]}) FILTER (WHERE {ident(f)} IS NOT NULL)')} "
        f"AS {ident('w_' + f)}"
        for f in GOLDEN_FIELDS
    )
    return f"""
        SELECT customer_id,
               {winners},
               count(*) AS n_records,
               {_in_list_aggregate("source", SOURCE_NAMES, mask)} AS sources,
               {_in_list_aggregate("source_kind", "$source_kinds", True)} AS source_kinds,
               min(least(created_at, resolved_at, last_active_at)) AS first_seen_at,
               max(seen_at) AS last_seen_at
        FROM {GOLDEN_ROWS} GROUP BY customer_id
    """


def _won_sql(field: str, rule: SurvivorshipRule) -> str:
    """SELECT per customer (in customer order) of `field`'s winning value and where it came
    from."""
    column, won = ident(field), ident("w_" + field)
    row = (
        f"r.record_key = w.{won}"
        if _last_tie(rule) == "record_key"
        else f"r.customer_id = w.customer_id AND r.nth = w.{won}"
    )
    return f"""
        SELECT w.customer_id, r.{column}, r.source, r.source_record_id, r.seen_at
        FROM {GOLDEN_WINNERS} w LEFT JOIN {GOLDEN_ROWS} r ON {row}
        ORDER BY w.customer_id
    """


def _lists_sql() -> str:
    """SELECT per customer (in customer order) of every distinct email, phone, address and
    handle."""
    address = (
        "concat_ws(', ', street, city, nullif(concat_ws(' ', upper(state), postcode), ''), country)"
    )
    handle = "coalesce(platform || ':', '') || handle"
    return f"""
        WITH r AS (SELECT * FROM {GOLDEN_ROWS}),
        emails AS ({_distinct_list("emails", "email", "email IS NOT NULL", "email_others")}),
        phones AS ({_distinct_list("phones", "phone", "phone IS NOT NULL", "phone_others")}),
        addresses AS ({_distinct_list("addresses", address, "street IS NOT NULL")}),
        handles AS ({_distinct_list("handles", handle, "handle IS NOT NULL")})
        SELECT w.customer_id,
               coalesce(emails, []) AS emails, coalesce(phones, []) AS phones,
               coalesce(addresses, []) AS addresses, coalesce(handles, []) AS handles
        FROM {GOLDEN_WINNERS} w
        LEFT JOIN emails USING (customer_id)
        LEFT JOIN phones USING (customer_id)
        LEFT JOIN addresses USING (customer_id)
        LEFT JOIN handles USING (customer_id)
        ORDER BY w.customer_id
    """


def golden_sql(sources: int = 1, positional: bool = True) -> str:
    """SELECT of one golden record per customer from the winners (:func:`winners_sql`), the
    won values of each field (:func:`_won_sql`) and the lists (:func:`_lists_sql`), each a
    table with one row per customer in customer order.

    With `positional`, the tables are put side by side by position (DuckDB's POSITIONAL JOIN),
    which streams: joining them by customer would hold a hash table per field in memory at
    once. Parameters: those of :func:`golden_params` and ``$source_names`` / ``$source_kinds``.
    """
    mask = sources <= MASK_BITS
    parts = [(ident("g_" + f), _won_table(f)) for f in GOLDEN_FIELDS] + [("l", GOLDEN_LISTS)]
    if positional:
        beside = " ".join(f"POSITIONAL JOIN {name} {alias}" for alias, name in parts)
    else:
        beside = " ".join(f"JOIN {name} {alias} USING (customer_id)" for alias, name in parts)
    golden = ",\n".join(f"{ident('g_' + f)}.{ident(f)}" for f in GOLDEN_FIELDS)
    provenance = ",\n".join(
        f"CASE WHEN w.{ident('w_' + f)} IS NOT NULL THEN {{'source': {ident('g_' + f)}.source, "
        f"'source_record_id': {ident('g_' + f)}.source_record_id, "
        f"'rule': ${_rule_param(f)}, 'seen_at': {ident('g_' + f)}.seen_at}} END "
        f"AS {ident(f + '_provenance')}"
        for f in GOLDEN_FIELDS
    )
    return f"""
        SELECT w.customer_id,
               {golden},
               l.emails, l.phones, l.addresses, l.handles,
               w.n_records, {_in_list_decoded("w.sources", SOURCE_NAMES, mask)} AS sources,
               {_in_list_decoded("w.source_kinds", "$source_kinds", True)} AS source_kinds,
               w.first_seen_at, w.last_seen_at,
               {provenance}
        FROM {GOLDEN_WINNERS} w {beside}
    """


def _won_table(field: str) -> str:
    return table("golden_" + field)


def golden_params(rules: dict[str, SurvivorshipRule]) -> dict[str, list[str] | str]:
    """The parameters of :func:`golden_sql`: priority lists and rule names per field."""
    params: dict[str, list[str] | str] = {_rule_param(f): rules[f].rule for f in GOLDEN_FIELDS}
    params.update({_param(f): r.sources for f, r in rules.items() if r.rule == "source_priority"})
    return params


def build_golden(
    engine: DuckDBEngine,
    rules: dict[str, SurvivorshipRule],
    unchanged: Unchanged | None = None,
) -> int:
    """Create ``cx_golden``: one golden record per customer; return its row count.

    With `unchanged` (an update), the golden records of customers whose records did not
    change are copied from the previous profiles, and only the others are built.
    """
    if (engine.scalar(f"SELECT max(record_key) FROM {RECORDS}") or 0) > MAX_RECORD_KEY:
        raise CxunifyError(f"more than {MAX_RECORD_KEY} records: survivorship keys overflow")
    params = golden_params(rules)
    rows_params = {k: v for k, v in params.items() if k.startswith("priority_")}
    if unchanged is not None:
        _find_unchanged_customers(engine, unchanged)
    # Whole customers are skipped before the frequency windows, not after: the windows then
    # run over the changed customers' records only.
    rows = golden_rows_sql(rules, GOLDEN_KEPT if unchanged is not None else None)
    engine.execute(f"CREATE OR REPLACE TABLE {GOLDEN_ROWS} AS {rows}", rows_params)
    names = [name for (name,) in engine.rows(f"SELECT DISTINCT source FROM {RECORDS} ORDER BY 1")]
    sources = {
        "source_kinds": SOURCE_KINDS,
        **({"source_names": names} if len(names) <= MASK_BITS else {}),
    }
    engine.execute(
        f"CREATE OR REPLACE TABLE {GOLDEN_WINNERS} AS {winners_sql(rules, len(names))} "
        "ORDER BY customer_id",
        sources,
    )
    # One statement per field: each holds one hash table (of winners), which DuckDB can spill.
    for field in GOLDEN_FIELDS:
        engine.execute(
            f"CREATE OR REPLACE TABLE {_won_table(field)} AS {_won_sql(field, rules[field])}"
        )
    engine.execute(f"CREATE OR REPLACE TABLE {GOLDEN_LISTS} AS {_lists_sql()}")
    engine.execute(
        f"CREATE OR REPLACE TABLE {GOLDEN} AS "
        f"{golden_sql(len(names), positional=engine.name == 'duckdb')}",
        {**{k: v for k, v in params.items() if k not in rows_params}, **sources},
    )
    engine.drop(GOLDEN_WINNERS, GOLDEN_LISTS, *(_won_table(f) for f in GOLDEN_FIELDS))
    engine.drop(GOLDEN_ROWS)
    if unchanged is not None:
        columns = ", ".join(ident(c) for c in engine.columns(GOLDEN))
        engine.execute(
            f"INSERT INTO {GOLDEN} BY NAME SELECT {columns} FROM {parquet('$path')} "
            f"SEMI JOIN {GOLDEN_KEPT} USING (customer_id)",
            {"path": str(unchanged.profiles)},
        )
    return engine.count(GOLDEN)


def _find_unchanged_traits(engine: DuckDBEngine) -> None:
    """``cx_traits_kept``: the customers of ``cx_golden_kept`` none of whose orders gained or
    lost a row (``cx_touched_orders``, written by the update): a row of an order without a
    currency takes the one its other rows name, whoever's they are."""
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {TRAITS_KEPT} AS
        SELECT customer_id FROM {GOLDEN_KEPT} ANTI JOIN (
            SELECT i.customer_id FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
            SEMI JOIN {TOUCHED_ORDERS} o ON o.source = r.source AND o.order_id = r.order_id
            WHERE r.source_kind = 'transactions'
        ) t USING (customer_id)
        """
    )


def _find_unchanged_customers(engine: DuckDBEngine, unchanged: Unchanged) -> None:
    """``cx_golden_kept``: customers whose records are all stored and unchanged, and were
    exactly the records of the same customer id before."""
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {GOLDEN_KEPT} AS
        WITH members AS (
            SELECT i.customer_id, r.record_key, r.source, r.source_record_id
            FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        ), before AS (
            SELECT source, source_record_id, customer_id FROM {parquet("$identity_map")}
        ), sizes_before AS (
            SELECT customer_id, count(*) AS n FROM before GROUP BY customer_id
        ), same AS (
            SELECT m.customer_id, count(*) AS n FROM members m
            LEFT JOIN before b USING (source, source_record_id)
            GROUP BY m.customer_id
            HAVING bool_and(coalesce(m.record_key <= $last_key AND b.customer_id = m.customer_id,
                                     false))
        )
        SELECT customer_id FROM same JOIN sizes_before s USING (customer_id) WHERE same.n = s.n
        """,
        {"identity_map": str(unchanged.identity_map), "last_key": unchanged.last_stored_key},
    )


def build_profiles(
    engine: DuckDBEngine,
    settings: ProfileConfig | None = None,
    unchanged: Unchanged | None = None,
    now: datetime | None = None,
    quote_values: bool = True,
) -> Profiled:
    """Create ``cx_profiles`` (golden record and traits) and ``cx_touchpoints``; with
    `unchanged` (an update), golden records of unchanged customers are copied (see
    `Unchanged`). Without a configured as_of, traits are relative to the newest timestamp
    up to `now` (naive UTC; the time of the call by default). Warnings name no record
    unless `quote_values` (false under output.hash_pii)."""
    settings = settings or ProfileConfig()
    rules = settings.survivorship
    build_golden(engine, rules, unchanged)
    copied = engine.count(GOLDEN_KEPT) if unchanged is not None else 0
    newest, future = newest_timestamp(engine, now or datetime.now(UTC).replace(tzinfo=None))
    as_of = settings.as_of or newest
    scale = settings.experience.csat_scale
    touchpoints, scored = traits.build_touchpoints(
        engine, settings.currency, unchanged.sentiment if unchanged else None, scale
    )
    off_scale = engine.scalar(
        f"SELECT count(*) FROM {RECORDS} WHERE source_kind = 'support' "
        "AND (csat < $low OR csat > $high) "
        "AND csat NOT IN (CAST('Infinity' AS DOUBLE), CAST('-Infinity' AS DOUBLE)) "
        "AND NOT isnan(csat)",
        {"low": scale[0], "high": scale[1]},
    )
    conflicts, warnings = currency_conflicts(engine, settings.currency.base, quote_values)
    kept, traits_copied = None, 0
    if unchanged is not None:
        _find_unchanged_traits(engine)
        kept, traits_copied = (
            traits.Copied(TRAITS_KEPT, unchanged.profiles),
            engine.count(TRAITS_KEPT),
        )
    traits.build_traits(engine, settings, as_of, kept)
    warnings += _ordered_after(engine, as_of)
    engine.drop(GOLDEN_KEPT, TRAITS_KEPT)
    engine.execute(
        f"""
        CREATE OR REPLACE VIEW {PROFILES} AS
        SELECT g.*, t.* EXCLUDE (customer_id)
        FROM {GOLDEN} g LEFT JOIN {traits.TRAITS} t USING (customer_id)
        """
    )
    # A view, not a table: the write stage joins once as it writes. One row per golden record.
    texts = engine.count(SENTIMENT)
    return Profiled(
        engine.count(GOLDEN),
        touchpoints,
        texts,
        as_of,
        copied,
        traits_copied,
        texts - scored,
        future,
        int(off_scale),
        conflicts,
        warnings,
    )


def currency_conflicts(
    engine: DuckDBEngine, base: str | None, quote_values: bool = True
) -> tuple[int, tuple[str, ...]]:
    """How many orders have an amount naming another currency than their currency column (in
    XXX), and, converting into `base`, the warning that their amounts are left out of it,
    naming the (first) record unless not `quote_values` (output.hash_pii).

    Such an order stops nothing: one in a nightly export would stop the nightly job. It keeps
    its record and touchpoint (it still tells who the customer is), with its amount under XXX.
    """
    found = engine.rows(
        f"SELECT count(*) OVER (), source, source_record_id FROM {RECORDS} "
        "WHERE source_kind = 'transactions' AND amount IS NOT NULL AND currency = $unknown "
        "ORDER BY source, source_record_id LIMIT 1",
        {"unknown": UNKNOWN_CURRENCY},
    )
    if not found:
        return 0, ()
    count, source, record = found[0]
    if base is None:  # under XXX in revenue_by_currency, where it is seen
        return int(count), ()
    named = f", record '{record}'" if quote_values else ""
    if count == 1:
        orders = (
            "1 order whose amount names another currency than its currency column "
            f"(source '{source}'{named}) is"
        )
    else:
        orders = (
            f"{count} orders whose amounts name other currencies than their currency column "
            f"(the first: source '{source}'{named}) are"
        )
    return int(count), (
        f"{orders} left out of the figures converted into {base} (revenue, avg_order_value, "
        f"rfm_m) and kept under {UNKNOWN_CURRENCY} in revenue_by_currency and touchpoints; "
        "correct the export to count them",
    )


_TIMESTAMP_COLUMNS = ("created_at", "resolved_at", "last_active_at")


def _ordered_after(engine: DuckDBEngine, as_of: datetime | None) -> tuple[str, ...]:
    """The warning that some customers' last order is after `as_of`: an --as-of before the
    exports' end (or an order dated in the future) gave negative recency_days without a word,
    and the lifecycle stage and RFM scores read it as a recent order. Counted by time, not by
    recency_days, which counts midnights: an order later on the as-of day has recency 0."""
    if as_of is None:  # no time in the data: no order either
        return ()
    [(customers, newest)] = engine.rows(
        f"SELECT count(*), max(last_order_at) FROM {traits.TRAITS} WHERE last_order_at > $as_of",
        {"as_of": as_of},
    )
    if not customers:
        return ()
    who = (
        "1 customer's last order is"
        if customers == 1
        else f"{customers:,} customers' last orders are"
    )
    return (
        f"{who} after as_of ({as_of:%Y-%m-%d %H:%M:%S}; the latest {newest:%Y-%m-%d %H:%M:%S}): "
        "their recency_days is 0 or negative, and every figure counts the orders, tickets and "
        "posts after it; for profiles as they stood at as_of, read exports cut there",
    )


def newest_timestamp(engine: DuckDBEngine, now: datetime) -> tuple[datetime | None, int]:
    """The newest timestamp in the records up to `now` (naive UTC, like the records' own), and
    how many are later than that.

    A date typed with the wrong year (2205 for 2025) would otherwise become the default as_of
    and make every customer look long gone: recency, lifecycle and RFM would all be off.
    """
    newest = ", ".join(f"max(CASE WHEN {c} <= $now THEN {c} END)" for c in _TIMESTAMP_COLUMNS)
    later = " + ".join(f"count(CASE WHEN {c} > $now THEN 1 END)" for c in _TIMESTAMP_COLUMNS)
    [(as_of, future)] = engine.rows(
        f"SELECT greatest({newest}), {later} FROM {RECORDS}", {"now": now}
    )
    return as_of, int(future)


def _param(field: str) -> str:
    return f"priority_{field}"


def _rule_param(field: str) -> str:
    return f"rule_{field}"
