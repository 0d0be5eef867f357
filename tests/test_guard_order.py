"""Merge guards take equal-weight links in the order of node names, so clusters do not depend
on how input rows (and so nodes) happen to be numbered."""

from __future__ import annotations

import datetime as dt

from cxunify.block import NODES
from cxunify.cluster import CLUSTERS, Guards, apply_guards, connected_components
from cxunify.engine import DuckDBEngine

# Ann with two different dates of birth, and a record without one between them: the guard
# can keep only one of the two equal-weight links, and which one depends on the order.
PEOPLE = {
    "crm:1": dt.date(1990, 1, 2),
    "crm:2": None,
    "crm:3": dt.date(1971, 5, 6),
}


def guard(numbering: dict[str, int], names: bool) -> set[frozenset[str]]:
    """Clusters, as sets of names, when nodes are numbered by `numbering`."""
    engine = DuckDBEngine()
    try:
        engine.execute(
            f"CREATE TABLE {NODES} (node BIGINT, first_name_std VARCHAR, first_name_key VARCHAR, "
            "last_name_std VARCHAR, dob DATE, name_suffix VARCHAR, email_std VARCHAR, "
            "national_id VARCHAR)"
        )
        engine.execute("CREATE TABLE node_names (node BIGINT, name VARCHAR)")
        for name, dob in PEOPLE.items():
            number = numbering[name]
            engine.execute(
                f"INSERT INTO {NODES} VALUES ($n, 'ann', 'ann', 'lee', $dob, NULL, NULL, NULL)",
                {"n": number, "dob": dob},
            )
            engine.execute("INSERT INTO node_names VALUES ($n, $name)", {"n": number, "name": name})
        engine.execute("CREATE TABLE l (left_node BIGINT, right_node BIGINT, match_weight DOUBLE)")
        for a, b in (("crm:1", "crm:2"), ("crm:2", "crm:3")):
            left, right = sorted((numbering[a], numbering[b]))
            engine.execute("INSERT INTO l VALUES ($l, $r, 20.0)", {"l": left, "r": right})
        connected_components(engine, f"SELECT node FROM {NODES}", "SELECT * FROM l")
        apply_guards(
            engine, "SELECT * FROM l", Guards(), "SELECT * FROM node_names" if names else None
        )
        rows = engine.rows(
            f"SELECT list(n.name) FROM {CLUSTERS} c JOIN node_names n USING (node) "
            "GROUP BY c.cluster"
        )
    finally:
        engine.close()
    return {frozenset(members) for (members,) in rows}


FORWARD = {"crm:1": 1, "crm:2": 2, "crm:3": 3}
BACKWARD = {"crm:1": 3, "crm:2": 2, "crm:3": 1}


def test_with_node_names_the_numbering_does_not_matter():
    expected = {frozenset({"crm:1", "crm:2"}), frozenset({"crm:3"})}
    assert guard(FORWARD, names=True) == expected
    assert guard(BACKWARD, names=True) == expected


def test_without_names_ties_follow_node_numbers():
    # The behaviour names fix: the same records split differently when numbered differently.
    assert guard(FORWARD, names=False) != guard(BACKWARD, names=False)
