"""Collapsing records into nodes, blocking, and the plan computed from key frequencies."""

from __future__ import annotations

import pytest

from cxunify.block import (
    DERIVED_COLUMNS,
    IDENTITY_COLUMNS,
    NODES,
    PAIRS,
    RECORD_NODES,
    RULES,
    SURNAME_KEY,
    Rule,
    candidate_pairs,
    collapse_nodes,
    plan_rules,
)
from cxunify.engine import DuckDBEngine
from cxunify.standardize import RECORDS, install_macros, names


@pytest.fixture
def engine():
    engine = DuckDBEngine()
    names.install(engine.con)  # the surname key uses cx_soundex
    columns = ", ".join(
        f"{c} {'DATE' if c == 'dob' else 'VARCHAR'}" for c in IDENTITY_COLUMNS + DERIVED_COLUMNS
    )
    engine.execute(
        f"CREATE TABLE {RECORDS} (record_key BIGINT, {columns}, "
        "phone_toll_free BOOLEAN DEFAULT false)"
    )
    rows = [
        (1, "ann", "lee", "a@x.com"),
        (2, "ann", "lee", "a@x.com"),
        (3, "ann", "lee", "a@x.com"),
        (4, "ann", "li", "a@x.com"),
        (5, "bob", "lee", "b@x.com"),
        (6, "cy", "lee", "b@x.com"),
        (7, "dee", "ng", None),
    ]
    for key, first, last, email in rows:
        engine.execute(
            f"INSERT INTO {RECORDS} (record_key, first_name_std, last_name_std, email_std) "
            "VALUES (?, ?, ?, ?)",
            [key, first, last, email],
        )
    yield engine
    engine.close()


def test_identical_records_collapse_into_one_node(engine):
    assert collapse_nodes(engine, [], 1000) == (5, {"email_std": 0, "phone": 0})
    mapping = dict(engine.rows(f"SELECT record_key, node FROM {RECORD_NODES}"))
    assert mapping[1] == mapping[2] == mapping[3] == 1
    assert engine.rows(f"SELECT n_records FROM {NODES} WHERE node = 1") == [(3,)]


def test_records_holding_no_identity_value_are_nodes_of_their_own(engine):
    """Three rows naming nobody (tickets with a subject and a date only) were one node, so
    one customer; each is a node of its own now, and no rule pairs them."""
    for key in (8, 9, 10):
        engine.execute(f"INSERT INTO {RECORDS} (record_key) VALUES (?)", [key])
    assert collapse_nodes(engine, [], 1000)[0] == 8
    mapping = dict(engine.rows(f"SELECT record_key, node FROM {RECORD_NODES}"))
    assert [mapping[k] for k in (1, 2, 3, 8, 9, 10)] == [1, 1, 1, 8, 9, 10]
    candidate_pairs(engine, [Rule((c,)) for c in IDENTITY_COLUMNS], 1000)
    assert engine.rows(f"SELECT * FROM {PAIRS} WHERE right_node >= 8") == []


def test_junk_values_neither_join_records_into_a_node_nor_part_them(engine):
    """Rows whose only value was a junk email or phone (a shop's own, blocklisted, or one on
    more records than the limit) were one node, the value blanked only after the collapse: one
    customer of strangers. Junk is no value to collapse on: each such row is a node of its own,
    and a row of a name and a junk value is one node with the rows of that name alone."""
    rows = [
        # key, first, last, email, its local part, phone
        (8, None, None, "shop@x.com", "shop", None),
        (9, None, None, "shop@x.com", "shop", None),
        (10, None, None, None, None, "+15550000000"),
        (11, None, None, None, None, "+15550000000"),
        (12, "dee", "ng", "shop@x.com", "shop", None),  # 7 is dee ng, no email
        (13, "jo", None, "jnguyen@shop.com", "jnguyen", None),  # one record: blocklisted
        # on 5 records, over the limit of 4 (a@x.com is on 4)
        *((k, None, None, "front@desk.com", "front", None) for k in range(14, 19)),
    ]
    for row in rows:
        engine.execute(
            f"INSERT INTO {RECORDS} (record_key, first_name_std, last_name_std, email_std, "
            "email_local, phone) VALUES (?, ?, ?, ?, ?, ?)",
            list(row),
        )
    blocklist = ["shop@x.com", "jnguyen@shop.com", "(555) 000-0000"]
    assert collapse_nodes(engine, blocklist, 4) == (15, {"email_std": 3, "phone": 1})
    mapping = dict(engine.rows(f"SELECT record_key, node FROM {RECORD_NODES}"))
    alone = (8, 9, 10, 11, 14, 15, 16, 17, 18)
    assert [mapping[k] for k in alone] == list(alone)
    assert mapping[12] == mapping[7] == 7
    blanked = engine.rows(
        f"SELECT node, n_records, email_std, email_local, phone, surname_key FROM {NODES} "
        "WHERE node IN (7, 8, 10, 13, 14) ORDER BY node"
    )
    # Jo's surname is not read from the blocklisted address ('jnguyen': Nguyen)
    assert blanked == [(node, 2 if node == 7 else 1, *[None] * 4) for node in (7, 8, 10, 13, 14)]
    candidate_pairs(engine, [Rule(("email_std",)), Rule(("phone",))], 1000)
    assert engine.rows(f"SELECT * FROM {PAIRS} WHERE right_node >= 8") == []


def test_pairs_from_several_rules_are_produced_once(engine):
    collapse_nodes(engine, [], 1000)
    rules = [Rule(("email_std",)), Rule(("last_name_std",)), Rule(("email_std", "last_name_std"))]
    assert candidate_pairs(engine, rules, 1000) == 4
    pairs = engine.rows(f"SELECT left_node, right_node, rule, rules_met FROM {PAIRS} ORDER BY ALL")
    # 1~4 by email, 5~6 by all three rules, 1~5 and 1~6 by last name only
    assert pairs == [(1, 4, 0, 0b001), (1, 5, 1, 0b010), (1, 6, 1, 0b010), (5, 6, 0, 0b111)]


def test_the_rules_are_named_in_one_statement(engine):
    """cx_rules names each rule by its number, written at once: on Spark each INSERT is a
    write of the table and a job, one per rule (the sample's 16 took seconds)."""
    collapse_nodes(engine, [], 1000)
    rules = [Rule(("email_std",)), Rule(("last_name_std",), one_side="no_first_name")]
    statements: list[str] = []
    execute = engine.execute

    def recorded(sql, params=None):
        statements.append(sql)
        return execute(sql, params)

    engine.execute = recorded
    candidate_pairs(engine, rules, 1000)
    assert len([sql for sql in statements if sql.startswith(f"INSERT INTO {RULES}")]) == 1
    assert engine.rows(f"SELECT rule, name FROM {RULES} ORDER BY rule") == [
        (0, "email_std"),
        (1, "last_name_std (one side no_first_name)"),
    ]


def test_a_one_sided_rule_pairs_only_where_a_side_has_the_property(engine):
    engine.execute(f"UPDATE {RECORDS} SET last_name_std = 'l' WHERE record_key = 6")
    engine.execute(f"UPDATE {RECORDS} SET email_std = 'b@x.com' WHERE record_key = 7")
    engine.execute(f"UPDATE {RECORDS} SET last_name_std = NULL WHERE record_key = 7")
    collapse_nodes(engine, [], 1000)
    # b@x.com: 5 (bob lee), 6 (cy l), 7 (dee, no surname); a@x.com: 1 and 4, both with one
    rule = Rule(("email_std",), one_side="no_surname")
    assert candidate_pairs(engine, [rule], 1000) == 3
    pairs = engine.rows(f"SELECT left_node, right_node FROM {PAIRS} ORDER BY ALL")
    assert pairs == [(5, 6), (5, 7), (6, 7)]
    plans = plan_rules(engine, [rule], 1000)
    assert (plans[0]["rule"], plans[0]["pairs"], plans[0]["blocks"]) == (
        "email_std (one side no_surname)",
        3,
        1,
    )


def test_plan_counts_pairs_without_building_them(engine):
    collapse_nodes(engine, [], 1000)
    plans = plan_rules(engine, [Rule(("email_std",)), Rule(("last_name_std",))], 1000)
    assert [(p["rule"], p["pairs"], p["blocks"]) for p in plans] == [
        ("email_std", 2, 2),
        ("last_name_std", 3, 1),
    ]


def test_oversized_blocks_are_skipped_and_reported(engine):
    collapse_nodes(engine, [], 1000)
    plans = plan_rules(engine, [Rule(("last_name_std",))], 2)
    assert (plans[0]["pairs"], plans[0]["skipped_keys"], plans[0]["skipped_pairs"]) == (0, 1, 3)
    assert candidate_pairs(engine, [Rule(("last_name_std",))], 2) == 0


def test_a_rule_can_have_a_block_limit_of_its_own(engine):
    collapse_nodes(engine, [], 1000)
    # last name 'lee': nodes 1, 5 and 6; the rule's own limit of 2 skips that block
    own = Rule(("last_name_std",), max_block_size=2)
    assert candidate_pairs(engine, [own], 1000) == 0
    plan = plan_rules(engine, [own], 1000)[0]
    assert (plan["pairs"], plan["skipped_keys"], plan["skipped_pairs"]) == (0, 1, 3)
    # the matching-wide limit still applies when it is the smaller
    assert candidate_pairs(engine, [Rule(("last_name_std",), max_block_size=50)], 2) == 0
    assert candidate_pairs(engine, [Rule(("last_name_std",), max_block_size=3)], 1000) == 3


@pytest.mark.parametrize(
    ("first", "handle", "surname"),
    [
        ("jason", "jasonnguyen", "nguyen"),
        ("jason", "jnguyen", "nguyen"),
        # the handle spells a nickname of the record's first name, or the surname first
        ("charles", "chuckwilliams", "williams"),
        ("robert", "roblyons", "lyons"),
        ("margaret", "peggybenson", "benson"),
        ("jun", "watsonjun", "watson"),
    ],
)
def test_the_surname_key_of_a_first_name_only_record_is_read_from_its_handle(
    first: str, handle: str, surname: str
):
    engine = DuckDBEngine()
    install_macros(engine.con)
    key = engine.scalar(
        f"""SELECT {SURNAME_KEY} FROM (
            SELECT $first AS first_name_std, cx_name_key($first) AS first_name_key,
                   $handle AS handle_letters, NULL AS email_local, NULL AS last_name_std,
                   NULL AS last_name_soundex) r""",
        {"first": first, "handle": handle},
    )
    assert key == engine.scalar("SELECT cx_soundex($s)", {"s": surname})
    engine.close()
