"""Stage 3, block: which pairs of records could be the same customer.

Records identical in every identity field are first collapsed into one node, so the work grows
with distinct identities, not rows; a junk value (a blocklisted or overly common email or phone)
counts as no value there, and a record holding no identity value but junk is a node of its
own, paired with nothing. Candidate pairs are the node pairs sharing every key of at
least one blocking rule (equality on derived keys: email, phone, last name + postcode, ...),
each pair produced once. A key value shared by too many nodes blocks nothing: it is junk or too
common to mean anything, and `plan_rules` shows such values before any pair is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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


def no_identity_sql(alias: str) -> str:
    """SQL: the record or node `alias` holds no identity value (a ticket naming nobody, an
    order row without a name, email or phone; junk values blanked, see matched_records_sql).
    Such records are not identical to one another but unknown: each is an identity of its
    own, which no blocking key can pair."""
    return "(" + " AND ".join(f"{alias}.{ident(c)} IS NULL" for c in IDENTITY_COLUMNS) + ")"


# Carried on nodes; each is a function of the identity columns.
DERIVED_COLUMNS = (
    "first_name_key",
    "last_name_soundex",
    "email_local",
    "email_domain",
)


def _surname_in(spelled: str) -> str:
    """What follows the first name (as written, its formal name or one of that name's
    nicknames), or its initial, in a handle or email local part; or what comes before the
    first name, as written, where it ends the handle ("watsonjun" for Jun)."""
    first = "replace(r.first_name_std, ' ', '')"
    nickname = (
        f"list_filter(getvariable('cx_name_spellings')[r.first_name_key], "
        f"lambda n: starts_with({spelled}, n))[1]"
    )
    return f"""CASE
        WHEN starts_with({spelled}, {first}) THEN substr({spelled}, length({first}) + 1)
        WHEN starts_with({spelled}, r.first_name_key)
            THEN substr({spelled}, length(r.first_name_key) + 1)
        WHEN {nickname} IS NOT NULL THEN substr({spelled}, length({nickname}) + 1)
        WHEN ends_with({spelled}, {first})
            THEN left({spelled}, length({spelled}) - length({first}))
        WHEN starts_with({spelled}, left({first}, 1)) THEN substr({spelled}, 2)
        END"""


# A social account or an order often shows a first name only, or "Jason N.", while the handle
# or email spells the surname too ("jasonnguyen", "jnguyen", "jason.nguyen", Charles's
# "chuckwilliams", "nguyenjason"): blocking then uses what follows the first name there, or
# what comes before it, as the surname. It only finds candidates; the handle and email
# comparisons weigh the evidence.
SURNAME_KEY = f"""CASE
    WHEN length(r.last_name_std) > 1 OR r.first_name_std IS NULL THEN r.last_name_soundex
    ELSE coalesce(
        list_transform([{_surname_in("r.handle_letters")},
                        {_surname_in("regexp_replace(r.email_local, '[^a-z]', '', 'g')")}],
                       lambda v: CASE WHEN length(v) >= 2 THEN cx_soundex(v) END)
            .list_filter(lambda v: v IS NOT NULL)[1],
        r.last_name_soundex)
    END"""
# The surname's first letter: a typo rarely hits it, so with a first name and a city it finds
# "Mary Gbibs" for "Mary Gibbs" where a phonetic code (G112, G120) does not.
LAST_INITIAL = "left(r.last_name_std, 1)"
# Both, as a node's last columns (computed with the standardisation macros).
_NODE_KEYS = f"{SURNAME_KEY} AS surname_key, {LAST_INITIAL} AS last_initial"
BLOCKING_KEYS = IDENTITY_COLUMNS + DERIVED_COLUMNS + ("surname_key", "last_initial")


@dataclass(frozen=True)
class Rule:
    """A blocking rule: pairs of nodes equal (and present) on every key. With `one_side`, only
    pairs where at least one of the two nodes has that property (`ONE_SIDE`)."""

    keys: tuple[str, ...]
    one_side: str | None = None
    max_block_size: int | None = None  # this rule's own limit, below the matching-wide one


# Properties a one-sided rule can ask of either node of a pair, as SQL over a node's columns.
ONE_SIDE = {
    "no_surname": "coalesce(length(last_name_std), 0) <= 1",
    "no_first_name": "coalesce(length(first_name_std), 0) <= 1",
}

# Equality on identifiers, then on names with one more thing in common. Names alone pair
# every John Smith with every other, so a name-only rule compares exact surnames only; a
# surname spelt another way must share a postcode too. Records that show no surname (a social
# account "Jason N.", a ticket from "jason") are paired with everyone of their first name in
# their city or with a surname their handle or email spells: one-sided rules, which pair such
# a record with all the others but never two records that both have a surname.
# Rules on names and cities alone skip blocks of more than WEAK_BLOCK identities: such a block
# pairs a hundred John Smiths, or everyone called Lee in Houston, ever more often as the data
# grows (at 10M rows they made 700M of 810M candidate pairs) for evidence too weak to link.
WEAK_BLOCK = 30
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(("email_std",)),
    Rule(("phone",)),
    Rule(("national_id",)),
    Rule(("last_name_std", "postcode")),
    Rule(("first_name_key", "dob")),
    Rule(("last_name_soundex", "dob")),
    Rule(("first_name_key", "last_name_std"), max_block_size=WEAK_BLOCK),
    Rule(("first_name_key", "surname_key"), one_side="no_surname", max_block_size=WEAK_BLOCK),
    Rule(("first_name_key", "last_name_soundex", "postcode")),
    Rule(("first_name_key", "last_initial", "city_std"), max_block_size=WEAK_BLOCK),
    Rule(("last_name_std", "city_std"), max_block_size=WEAK_BLOCK),
    Rule(("email_local",)),
    Rule(("handle_letters",)),
    Rule(("surname_key", "city_std"), one_side="no_surname", max_block_size=WEAK_BLOCK),
    Rule(("postcode", "dob")),
    Rule(("first_name_key", "city_std"), one_side="no_surname", max_block_size=WEAK_BLOCK),
)


class RuleLike(Protocol):
    @property
    def keys(self) -> Sequence[str]: ...
    @property
    def one_side(self) -> str | None: ...
    @property
    def max_block_size(self) -> int | None: ...


def _limit(rule: RuleLike, max_block_size: int) -> int:
    return min(rule.max_block_size or max_block_size, max_block_size)


def collapse_nodes(
    engine: DuckDBEngine, blocklist: Sequence[str], max_records_per_value: int
) -> tuple[int, dict[str, int]]:
    """Create ``cx_record_nodes(record_key, node)`` and ``cx_nodes``; return the node count
    and the junk values found per column (see find_junk).

    A node is named by its smallest record_key and carries ``n_records``. Junk values are
    blanked before records are collapsed, so they neither join records into a node nor part
    them: rows whose only email is a shop's own address are each a node of their own, and a
    row of a name and that address is one node with the rows of that name alone.
    """
    found = find_junk(engine, blocklist, max_records_per_value)
    assign_record_nodes(engine)
    engine.execute(f"CREATE OR REPLACE TABLE {NODES} AS {node_rows_sql(engine, RECORD_NODE_SIZES)}")
    engine.drop(*(junk_table(column) for column in JUNK_COLUMNS))
    if not isinstance(engine, DuckDBEngine):
        spark: Any = engine
        spark.map_in_duckdb(
            NODES,
            NODES,
            macro_statements(),
            [],
            f"SELECT *, {_NODE_KEYS} FROM {NODES} r",
        )
    return engine.count(NODES), found


# Nodes and their sizes, from cx_record_nodes.
RECORD_NODE_SIZES = f"SELECT node, count(*) AS n_records FROM {RECORD_NODES} GROUP BY node"


def assign_record_nodes(engine: DuckDBEngine) -> None:
    """``cx_record_nodes(record_key, node)``: records with the same identity values, junk
    ones (in the tables find_junk creates) as none, form a node, named by its smallest record
    key; a record with no identity value but junk is a node of its own (records alike in
    naming nobody are not one person, nor are those alike in a placeholder)."""
    partition = ", ".join(ident(c) for c in IDENTITY_COLUMNS)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {RECORD_NODES} AS
        SELECT record_key,
               CASE WHEN {no_identity_sql("r")} THEN record_key
                    ELSE min(record_key) OVER (PARTITION BY {partition}) END AS node
        FROM ({matched_records_sql()}) r
        """
    )


def matched_records_sql() -> str:
    """The identity values of every record as matching sees them: a value of a junk table
    (see find_junk) blanked, with what derives from it."""
    blanked = {c: column for column, derived in JUNK_COLUMNS.items() for c in (column, *derived)}
    aliases = {column: f"j{i}" for i, column in enumerate(JUNK_COLUMNS)}
    values = ", ".join(
        f"CASE WHEN {aliases[blanked[c]]}.value IS NULL THEN r.{ident(c)} END AS {ident(c)}"
        if c in blanked
        else f"r.{ident(c)}"
        for c in IDENTITY_COLUMNS + DERIVED_COLUMNS
    )
    joins = " ".join(
        f"LEFT JOIN {junk_table(column)} {alias} ON {alias}.value = r.{ident(column)}"
        for column, alias in aliases.items()
    )
    return f"SELECT r.record_key, {values} FROM {RECORDS} r {joins}"


def node_rows_sql(engine: DuckDBEngine, sizes_sql: str) -> str:
    """The rows of the nodes in `sizes_sql` (columns node, n_records), from their records,
    junk values blanked (the tables of find_junk).

    The surname key needs the standardisation macros: on Spark it (with the last initial, to
    keep DuckDB's column order) is added to each partition of nodes by DuckDB (see
    standardize and collapse_nodes); on DuckDB the macros are at hand.
    """
    carried = ", ".join(
        [f"r.{ident(c)}" for c in IDENTITY_COLUMNS + DERIVED_COLUMNS]
        + [f"{sql} AS {ident(name)}" for name, sql in NODE_FEATURES.items()]
    )
    return f"""
        WITH sizes AS ({sizes_sql})
        SELECT s.node, s.n_records, {carried}
               {", " + _NODE_KEYS if isinstance(engine, DuckDBEngine) else ""}
        FROM sizes s JOIN ({matched_records_sql()}) r ON r.record_key = s.node
    """


def rule_name(rule: RuleLike) -> str:
    name = " + ".join(rule.keys)
    return f"{name} (one side {rule.one_side})" if rule.one_side else name


def _keyed(rule: RuleLike) -> tuple[str, str, str]:
    """The key columns, the condition that all are present, and the one-side flag (SQL)."""
    columns = ", ".join(ident(c) for c in rule.keys)
    present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in rule.keys)
    flag = ONE_SIDE[rule.one_side] if rule.one_side else "true"
    return columns, present, flag


def plan_rules(
    engine: DuckDBEngine, rules: Sequence[RuleLike], max_block_size: int
) -> list[dict[str, int | str]]:
    """Per rule, the pairs it would produce, from key frequencies alone (no pairs built)."""
    plans: list[dict[str, int | str]] = []
    for rule in rules:
        columns, present, flag = _keyed(rule)
        # n nodes share a key, f of them flagged: a one-sided rule pairs each flagged node with
        # every other one, so f(n - f) + f(f - 1)/2 pairs (n(n - 1)/2 when all are flagged).
        pairs, kept_keys, skipped_keys, skipped_pairs = engine.rows(
            f"""
            WITH sizes AS (
                SELECT n, f, f * (n - f) + f * (f - 1) // 2 AS pairs FROM (
                    SELECT count(*)::HUGEINT AS n, count(*) FILTER (WHERE {flag})::HUGEINT AS f
                    FROM {NODES} WHERE {present} GROUP BY {columns}
                )
            )
            SELECT coalesce(sum(pairs) FILTER (WHERE n <= $max), 0),
                   count(*) FILTER (WHERE n <= $max AND pairs > 0),
                   count(*) FILTER (WHERE n > $max),
                   coalesce(sum(pairs) FILTER (WHERE n > $max), 0)
            FROM sizes
            """,
            {"max": _limit(rule, max_block_size)},
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
    engine: DuckDBEngine,
    rules: Sequence[RuleLike],
    max_block_size: int,
    touching: str | None = None,
) -> int:
    """Create ``cx_pairs(left_node, right_node, rule, rules_met)``, each pair once; return its
    size. `rule` is the first rule that found the pair, bit i of `rules_met` is set when rule i
    found it (training masks the comparisons those rules selected on).

    A key value shared by more than `max_block_size` nodes is skipped: such a block is junk
    (a shop's phone number) or too common to say anything (a first name alone).

    With `touching` (a table of nodes), only the pairs with at least one of those nodes are
    made, and only their blocks are sized: what an update needs for its new and changed nodes.
    """
    found = table("pairs_found")
    engine.execute(
        f"CREATE OR REPLACE TABLE {found} (left_node BIGINT, right_node BIGINT, rule SMALLINT)"
    )
    for index, rule in enumerate(rules):
        columns, present, flag = _keyed(rule)
        join = " AND ".join(f"a.{ident(c)} = b.{ident(c)}" for c in rule.keys)
        if touching is not None:
            # Each pair from a touched node's side; a pair of two touched nodes comes twice
            # and is made once below, with every other repeat.
            pairs = f"""SELECT least(a.node, b.node), greatest(a.node, b.node), $rule
                FROM blocked a JOIN blocked b ON {join} AND a.node <> b.node
                WHERE a.node IN (SELECT node FROM {touching})
                {"AND (a.flagged OR b.flagged)" if rule.one_side else ""}"""
            sized = (
                f"keyed SEMI JOIN (SELECT {columns} FROM keyed SEMI JOIN {touching} "
                f"USING (node)) USING ({columns})"
            )
        elif rule.one_side:
            # Flagged nodes against every node of their block; a pair of two flagged nodes
            # would come twice, so only from its smaller node.
            pairs = f"""SELECT least(a.node, b.node), greatest(a.node, b.node), $rule
                FROM blocked a JOIN blocked b ON {join} AND a.node <> b.node
                WHERE a.flagged AND (NOT b.flagged OR a.node < b.node)"""
            sized = "keyed"
        else:
            pairs = f"""SELECT a.node, b.node, $rule
                FROM blocked a JOIN blocked b ON {join} AND a.node < b.node"""
            sized = "keyed"
        engine.execute(
            f"""
            INSERT INTO {found}
            WITH keyed AS (
                SELECT node, {columns}, coalesce({flag}, false) AS flagged
                FROM {NODES} WHERE {present}
            ),
            usable AS (
                SELECT {columns} FROM {sized} GROUP BY {columns}
                HAVING count(*) BETWEEN 2 AND $max AND bool_or(flagged)
            ),
            blocked AS (SELECT k.* FROM keyed k SEMI JOIN usable u USING ({columns}))
            {pairs}
            """,
            {"max": _limit(rule, max_block_size), "rule": index},
        )
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {PAIRS} AS
        SELECT left_node, right_node, min(rule) AS rule,
               bit_or(1::BIGINT << rule) AS rules_met
        FROM {found}
        GROUP BY left_node, right_node
        """
    )
    engine.drop(found)
    engine.execute(f"CREATE OR REPLACE TABLE {RULES} (rule SMALLINT, name VARCHAR)")
    if rules:
        # All the rules in one statement: on Spark each INSERT writes the table again.
        params: dict[str, object] = {}
        for index, rule in enumerate(rules):
            params |= {f"i{index}": index, f"name{index}": rule_name(rule)}
        rows = ", ".join(f"($i{index}, $name{index})" for index in range(len(rules)))
        engine.execute(f"INSERT INTO {RULES} VALUES {rows}", params)
    return engine.count(PAIRS)


def nodes_of_resized_blocks(
    engine: DuckDBEngine,
    rules: Sequence[RuleLike],
    max_block_size: int,
    before_sql: str,
    changed_sql: str,
    into: str,
) -> int:
    """Add to the table `into` (one column ``node``) the current nodes of every block that
    crossed its size limit between the nodes of `before_sql` (a previous run's) and the current
    ``cx_nodes``, among the blocks of the nodes in `changed_sql` (new, changed or gone); return
    how many were added.

    Only such a block changes the pairs of nodes that did not change themselves: an update
    blocks its nodes again, with the new and changed ones.
    """
    before = engine.count(into)
    for rule in rules:
        columns, present, _ = _keyed(rule)
        engine.execute(
            f"""
            INSERT INTO {into}
            WITH keys AS (
                SELECT {columns} FROM {NODES} WHERE {present}
                    AND node IN (SELECT node FROM ({changed_sql}))
                UNION
                SELECT {columns} FROM ({before_sql}) WHERE {present}
                    AND node IN (SELECT node FROM ({changed_sql}))
            ), sized_now AS (
                SELECT {columns}, count(*) AS n FROM {NODES} SEMI JOIN keys USING ({columns})
                GROUP BY {columns}
            ), sized_before AS (
                SELECT {columns}, count(*) AS n FROM ({before_sql}) SEMI JOIN keys
                USING ({columns}) GROUP BY {columns}
            ), crossed AS (
                SELECT {columns} FROM sized_now a FULL JOIN sized_before b USING ({columns})
                WHERE (coalesce(a.n, 0) > $max) <> (coalesce(b.n, 0) > $max)
            )
            SELECT node FROM {NODES} SEMI JOIN crossed USING ({columns})
            EXCEPT SELECT node FROM {into}
            """,
            {"max": _limit(rule, max_block_size)},
        )
    return engine.count(into) - before


# Junk-prone columns, and the columns derived from each (blanked with it).
JUNK_COLUMNS = {
    "email_std": (
        "email_local",
        "email_domain",
        "email_letters",
        "email_digits",
        "email_name_based",
    ),
    "phone": ("phone_digits", "phone_last7"),
}


def junk_table(column: str) -> str:
    """The table of the junk values of `column` (one column, ``value``)."""
    return table("junk_" + column)


def junk_values_sql(column: str, of_records: str = RECORDS) -> str:
    """The junk values of `column` among the records of `of_records` (parameters ``max`` and
    ``blocklist``, see junk_parameters): a blocklisted value, or one carried by more records
    than ``max_records_per_value`` (a shop's own number typed into every order), or a toll-free
    phone (standardize's ``phone_toll_free``: a business's line, which no customer holds as
    their own, however few orders a small file has it on)."""
    toll_free = " OR bool_or(phone_toll_free)" if column == "phone" else ""
    return f"""
        SELECT {ident(column)} AS value FROM {of_records} WHERE {ident(column)} IS NOT NULL
        GROUP BY {ident(column)}
        HAVING count(*) > $max OR list_contains($blocklist, lower({ident(column)})){toll_free}
    """


def junk_parameters(blocklist: Sequence[str], max_records_per_value: int) -> dict[str, Any]:
    return {"max": max_records_per_value, "blocklist": _blocklist_forms(blocklist)}


def find_junk(
    engine: DuckDBEngine, blocklist: Sequence[str], max_records_per_value: int
) -> dict[str, int]:
    """Create the junk table of each junk-prone column (see junk_table) from the records;
    return how many values each holds.

    Junk is a blocklisted value, or one carried by more records than `max_records_per_value`
    (a shop's own number typed into every order). It is blanked on nodes only: profiles keep
    what was given.
    """
    found = {}
    for column in JUNK_COLUMNS:
        engine.execute(
            f"CREATE OR REPLACE TABLE {junk_table(column)} AS {junk_values_sql(column)}",
            junk_parameters(blocklist, max_records_per_value),
        )
        found[column] = engine.count(junk_table(column))
    return found


def _blocklist_forms(blocklist: Sequence[str]) -> list[str]:
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
