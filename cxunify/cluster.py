"""Stage 6, cluster: group linked records into customers.

Connected components of the links: on DuckDB in memory with SciPy (the links are two integer
columns, a few per record); on engines that keep data out of Python, in SQL by label propagation
with pointer jumping. Then merge guards split components that break a guard.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jellyfish
import pyarrow as pa

from cxunify.config import GuardConfig
from cxunify.engine import DuckDBEngine
from cxunify.errors import CxunifyError
from cxunify.sql import table

CLUSTERS = table("clusters")
LINKS = table("links")


def select_links(engine: DuckDBEngine, threshold: float) -> int:
    """Create ``cx_links(left_node, right_node, match_weight, match_probability)``: scored
    pairs at or above the threshold; return how many. Their levels and partial weights stay in
    ``cx_scored`` only (a copy would be a tenth of a GB per million records)."""
    from cxunify.score import SCORED

    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {LINKS} AS
        SELECT left_node, right_node, match_weight, match_probability FROM {SCORED}
        WHERE match_probability >= $threshold
        ORDER BY left_node, right_node
        """,
        {"threshold": threshold},
    )
    return engine.count(LINKS)


def connected_components(
    engine: DuckDBEngine, nodes_sql: str, edges_sql: str, max_iterations: int = 200
) -> int:
    """Create ``cx_clusters(node, cluster)``; `cluster` is the smallest node of the component.

    `nodes_sql` selects one column ``node``; `edges_sql` selects ``left_node, right_node``.
    On DuckDB the links (a few per record, not the candidate pairs) come into memory as two
    integer arrays and SciPy finds the components in one pass; other engines iterate in SQL
    (`label_propagation`). Returns the number of SQL rounds (0 in memory).
    """
    if engine.name == "duckdb":
        _components_in_memory(engine, nodes_sql, edges_sql)
        return 0
    return label_propagation(engine, nodes_sql, edges_sql, max_iterations)


def _components_in_memory(engine: DuckDBEngine, nodes_sql: str, edges_sql: str) -> None:
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as components

    nodes = (
        engine.arrow(f"SELECT DISTINCT node FROM ({nodes_sql}) ORDER BY node")
        .column("node")
        .to_numpy()
    )
    if len(nodes) == 0:
        engine.execute(f"CREATE OR REPLACE TABLE {CLUSTERS} (node BIGINT, cluster BIGINT)")
        return
    edges = engine.arrow(f"SELECT left_node, right_node FROM ({edges_sql})")
    ends = [edges.column(side).to_numpy() for side in ("left_node", "right_node")]
    left, right = (np.searchsorted(nodes, end).clip(max=len(nodes) - 1) for end in ends)
    if not (np.array_equal(nodes[left], ends[0]) and np.array_equal(nodes[right], ends[1])):
        raise CxunifyError("a link names a node that is not among the nodes")
    graph = coo_matrix(
        (np.ones(len(left), dtype=np.int8), (left, right)), shape=(len(nodes), len(nodes))
    )
    _, labels = components(graph, directed=False)
    # Nodes are sorted, so a component's first node in that order is its smallest.
    _, first = np.unique(labels, return_index=True)
    engine.register_arrow(CLUSTERS, pa.table({"node": nodes, "cluster": nodes[first][labels]}))


def label_propagation(
    engine: DuckDBEngine, nodes_sql: str, edges_sql: str, max_iterations: int = 200
) -> int:
    """`connected_components` in SQL, for engines that cannot hand the links to Python: every
    node takes the smallest label among itself and its neighbours, then the label of its label,
    until nothing changes. Returns the number of rounds, which grows with the log of the
    longest chain."""
    labels, edges, step = table("cc_labels"), table("cc_edges"), table("cc_step")
    engine.execute(
        f"CREATE OR REPLACE TABLE {edges} AS "
        f"SELECT left_node AS a, right_node AS b FROM ({edges_sql}) "
        f"UNION SELECT right_node, left_node FROM ({edges_sql})"
    )
    engine.execute(
        f"CREATE OR REPLACE TABLE {labels} AS SELECT DISTINCT node, node AS label "
        f"FROM ({nodes_sql})"
    )
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        engine.execute(
            f"""
            CREATE OR REPLACE TABLE {step} AS
            WITH hop AS (
                SELECT node, min(label) AS label FROM (
                    SELECT node, label FROM {labels}
                    UNION ALL
                    SELECT e.a, l.label FROM {edges} e JOIN {labels} l ON l.node = e.b
                ) GROUP BY node
            )
            SELECT h.node, least(h.label, j.label) AS label
            FROM hop h JOIN hop j ON j.node = h.label
            """
        )
        changed = engine.scalar(
            f"SELECT count(*) FROM {step} s JOIN {labels} l USING (node) WHERE s.label <> l.label"
        )
        engine.execute(f"CREATE OR REPLACE TABLE {labels} AS SELECT * FROM {step}")
        if changed == 0:
            break
    else:
        raise CxunifyError(f"connected components did not converge in {max_iterations} rounds")
    engine.execute(
        f"CREATE OR REPLACE TABLE {CLUSTERS} AS SELECT node, label AS cluster FROM {labels}"
    )
    engine.drop(labels, edges, step)
    return iterations


# --- merge guards ----------------------------------------------------------------------------

REFUSED = table("refused_links")


@dataclass
class Guards:
    """Limits a customer must respect; a component breaking one is split.

    Values are compared leniently, so typos do not count as conflicts: two dates of birth one
    keystroke apart, or first names that are nicknames or near-spellings of each other, are
    one person's.
    """

    max_emails: int = 5
    max_dobs: int = 1
    check_first_name: bool = True
    check_suffix: bool = True
    check_national_id: bool = True

    @classmethod
    def from_config(cls, settings: GuardConfig) -> Guards:
        return cls(
            max_emails=settings.max_emails,
            max_dobs=1 if settings.dob else 0,
            check_first_name=settings.first_name,
            check_suffix=settings.suffix,
            check_national_id=settings.national_id,
        )


class _Group:
    """The person attributes a (partly built) customer has: a plain class with slots, as the
    guards make one per node of every suspect component."""

    __slots__ = ("dobs", "emails", "firsts", "national_ids", "suffixes")

    def __init__(self, dobs: set, firsts: set, suffixes: set, national_ids: set, emails: set):
        self.dobs, self.firsts, self.suffixes = dobs, firsts, suffixes
        self.national_ids, self.emails = national_ids, emails

    def size(self) -> int:
        return (
            len(self.dobs)
            + len(self.firsts)
            + len(self.suffixes)
            + len(self.national_ids)
            + len(self.emails)
        )

    def absorb(self, other: _Group) -> None:
        self.dobs |= other.dobs
        self.firsts |= other.firsts
        self.suffixes |= other.suffixes
        self.national_ids |= other.national_ids
        self.emails |= other.emails


def _dob_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    if jellyfish.damerau_levenshtein_distance(a, b) <= 1:
        return True
    return a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]


def _first_compatible(a: tuple[str, str, str], b: tuple[str, str, str]) -> bool:
    (std_a, key_a, last_a), (std_b, key_b, last_b) = a, b
    if key_a == key_b or std_a == std_b:
        return True
    formals = _name_variants()[1]
    if not formals.get(std_a, {key_a}).isdisjoint(formals.get(std_b, {key_b})):
        return True  # a nickname of several names: Sammy (Samuel, first listed) and Samantha
    if (  # first and last name swapped, maybe with a typo
        jellyfish.jaro_winkler_similarity(std_a, last_b) >= 0.92
        and jellyfish.jaro_winkler_similarity(last_a, std_b) >= 0.92
    ):
        return True
    # An initial agrees with the name and with its formal spelling: C. with Tina (Christina).
    if len(std_a) == 1 and std_a in (std_b[0], key_b[0]):
        return True
    if len(std_b) == 1 and std_b in (std_a[0], key_a[0]):
        return True
    if _typo_of(std_a, key_b) or _typo_of(std_b, key_a):
        return True
    if std_a in formals and std_b in formals:
        return False  # two names the table knows, of no common formal name: Pam and Pat
    # Near-spellings of names the table does not know: a typo's closeness (Jonh, Jhon), not a
    # relative's (Janet and Joan, 0.81; Eric and Erica, 0.94, are told apart by the table).
    return jellyfish.jaro_winkler_similarity(std_a, std_b) >= FIRST_NAME_SIMILAR


# Jaro-Winkler similarity at which two first names neither table knows are one name's spellings.
FIRST_NAME_SIMILAR = 0.85


def _full_names(firsts: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """A group's first names written out, or its initials when it has nothing else: with a
    name to compare, an initial says nothing more. J. agreed with José and with Joshua, so one
    "J. Malone" order let the guard merge two brothers."""
    written = {first for first in firsts if len(first[0]) > 1}
    return written or firsts


def _typo_of(spelling: str, formal: str) -> bool:
    """Whether `spelling` is a typo of a spelling of the name `formal`: no name the nickname
    table knows, and one edit (a transposition counts as one) from `formal` or a nickname of it:
    Rcih and Richard (through Rich), Bbo and Robert (through Bob). A known name is never a
    typo, so Pam stays apart from Patricia (Pat) and Tim from Thomas (Tom)."""
    variants, formals = _name_variants()
    if len(spelling) < 3 or spelling in formals:
        return False
    return any(
        jellyfish.damerau_levenshtein_distance(spelling, variant) <= 1
        for variant in variants.get(formal, (formal,))
        if len(variant) >= 3
    )


@functools.cache
def _name_variants() -> tuple[dict[str, tuple[str, ...]], dict[str, frozenset[str]]]:
    """From the nickname table, every row (a nickname may name several formal names): each
    formal name with its spellings (itself first), and each name the table knows with the
    formal names it may stand for (a formal name stands for itself)."""
    from cxunify.standardize.names import NICKNAMES_CSV

    variants: dict[str, list[str]] = {}
    formals: dict[str, set[str]] = {}
    with NICKNAMES_CSV.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows, None)
        for row in rows:
            nickname, formal = (value.strip().lower() for value in row[:2])
            variants.setdefault(formal, [formal]).append(nickname)
            formals.setdefault(nickname, set()).add(formal)
            formals.setdefault(formal, set()).add(formal)
    return (
        {formal: tuple(names) for formal, names in variants.items()},
        {name: frozenset(names) for name, names in formals.items()},
    )


def _relation(left: set, right: set, compatible: Callable[[Any, Any], bool]) -> int:
    """+1 when two value sets share a compatible value, -1 when both are present and none
    is compatible, 0 when either is empty."""
    if not left or not right:
        return 0
    if not left.isdisjoint(right):  # the same value: compatible, and the common case
        return 1
    return 1 if any(compatible(x, y) for x in left for y in right) else -1


def _national_id_compatible(a: str, b: str) -> bool:
    return jellyfish.damerau_levenshtein_distance(a, b) <= 1


def _conflict(a: _Group, b: _Group, guards: Guards) -> str | None:
    """The guard that merging `a` and `b` would break, if any.

    Person-specific attributes (first name, date of birth, national id, generational suffix)
    vote: each that conflicts counts against the merge, each that agrees counts for it, and
    the merge is refused when the conflicts are at least as many. Household members differ
    in first name and date of birth; twins share a date of birth but not a first name; a
    father and son differ in suffix and date of birth. A person whose record lost one value
    to a typo or a swap still agrees on the others.
    """
    if len(a.emails | b.emails) > guards.max_emails:
        return f"more than {guards.max_emails} emails"
    votes: list[tuple[str, int]] = []
    if guards.check_first_name:
        votes.append(
            (
                "first name",
                _relation(_full_names(a.firsts), _full_names(b.firsts), _first_compatible),
            )
        )
    if guards.max_dobs == 1:
        votes.append(("date of birth", _relation(a.dobs, b.dobs, _dob_compatible)))
    if guards.check_national_id:
        vote = _relation(a.national_ids, b.national_ids, _national_id_compatible)
        # The same id exactly is an identifier's word, worth more than one soft attribute.
        votes.append(("national id", 2 * vote if a.national_ids & b.national_ids else vote))
    if guards.check_suffix and a.suffixes and b.suffixes and not (a.suffixes & b.suffixes):
        votes.append(("name suffix", -1))
    conflicts = [name for name, vote in votes if vote < 0]
    agreements = sum(vote for _, vote in votes if vote > 0)
    if conflicts and len(conflicts) >= agreements:
        return "conflicting " + " and ".join(conflicts)
    return None


# The same leniency as _first_compatible and _dob_compatible, in SQL over value pairs a, b, or
# less (a cluster it finds no conflict in never reaches the guards): two names the nickname
# table knows (`known`) are alike only by their formal name, as there.
_FIRSTS_COMPATIBLE = f"""(a.k = b.k OR a.s = b.s
    OR (jaro_winkler_similarity(a.s, b.l) >= 0.92 AND jaro_winkler_similarity(a.l, b.s) >= 0.92)
    OR ((length(a.s) = 1 OR length(b.s) = 1) AND substring(a.s, 1, 1) = substring(b.s, 1, 1))
    OR (jaro_winkler_similarity(a.s, b.s) >= {FIRST_NAME_SIMILAR} AND NOT (a.known AND b.known)))"""
KNOWN_FIRSTS = table("known_first_names")
_DOBS_COMPATIBLE = """(a.d = b.d OR damerau_levenshtein(a.d, b.d) <= 1
    OR (substring(a.d, 1, 4) = substring(b.d, 1, 4)
        AND substring(a.d, 5, 2) = substring(b.d, 7, 2)
        AND substring(a.d, 7, 2) = substring(b.d, 5, 2)))"""


def _suspects_sql(guards: Guards) -> str:
    """Clusters where some merge could break a guard: two of its values that are not
    compatible (first names, birth dates), more than one national id or suffix, or more
    emails than allowed. Typo variants of one value are compatible, so the many clusters
    that only hold typos never leave the engine."""
    from cxunify.block import NODES

    parts = [
        f"""SELECT c.cluster FROM {CLUSTERS} c JOIN {NODES} n ON n.node = c.node
            GROUP BY c.cluster
            HAVING count(DISTINCT n.email_std) > $max_emails
                {"OR count(DISTINCT n.name_suffix) > 1" if guards.check_suffix else ""}
                {"OR count(DISTINCT n.national_id) > 1" if guards.check_national_id else ""}"""
    ]
    values = f"FROM {CLUSTERS} c JOIN {NODES} n ON n.node = c.node"
    if guards.check_first_name:
        parts.append(
            f"""SELECT DISTINCT a.cluster FROM firsts a JOIN firsts b
                ON a.cluster = b.cluster
                AND (a.s < b.s OR (a.s = b.s AND (a.k < b.k OR (a.k = b.k AND a.l < b.l))))
                WHERE NOT {_FIRSTS_COMPATIBLE}"""
        )
    if guards.max_dobs == 1:
        parts.append(
            f"""SELECT DISTINCT a.cluster FROM dobs a JOIN dobs b
                ON a.cluster = b.cluster AND a.d < b.d WHERE NOT {_DOBS_COMPATIBLE}"""
        )
    return f"""
        WITH firsts AS (
            SELECT DISTINCT c.cluster, n.first_name_std AS s,
                   coalesce(n.first_name_key, n.first_name_std) AS k,
                   coalesce(n.last_name_std, '') AS l, kn.name IS NOT NULL AS known
            {values} LEFT JOIN {KNOWN_FIRSTS} kn ON kn.name = n.first_name_std
            WHERE n.first_name_std IS NOT NULL
        ), dobs AS (
            SELECT DISTINCT c.cluster, strftime(n.dob, '%Y%m%d') AS d
            {values} WHERE n.dob IS NOT NULL
        )
        {" UNION ".join(parts)}
    """


def apply_guards(
    engine: DuckDBEngine, links_sql: str, guards: Guards, node_names_sql: str | None = None
) -> None:
    """Split components of ``cx_clusters`` that break a guard; the links refused go to
    ``cx_refused_links``.

    Only components that might break a guard (more than one distinct value somewhere) leave
    the engine, with their links: their links are re-added strongest first and a link whose
    merge would break a guard is refused and recorded in ``cx_refused_links``.

    `node_names_sql` selects ``node, name``: links of equal weight (common: same comparison
    levels) are taken in the order of their nodes' names rather than of node numbers, which
    follow input row order; the clusters then do not depend on row order, and an incremental
    update, which numbers records differently, reaches the same clusters as a full run.
    """
    engine.execute(
        f"CREATE OR REPLACE TABLE {REFUSED} (left_node BIGINT, right_node BIGINT, "
        "match_weight DOUBLE, guard VARCHAR)"
    )
    from cxunify.block import NODES

    suspects = table("guard_suspects")
    engine.register_arrow(
        KNOWN_FIRSTS, pa.table({"name": pa.array(sorted(_name_variants()[1]), pa.string())})
    )
    engine.execute(
        f"CREATE OR REPLACE TABLE {suspects} AS {_suspects_sql(guards)}",
        {"max_emails": guards.max_emails},
    )
    engine.drop(KNOWN_FIRSTS)
    if engine.count(suspects) == 0:
        engine.drop(suspects)
        return
    groups: dict[int, _Group] = {}
    for node, dob, first, key, last, suffix, national_id, email in engine.rows(
        f"""
        SELECT n.node, strftime(n.dob, '%Y%m%d'), n.first_name_std, n.first_name_key,
               n.last_name_std, n.name_suffix, n.national_id, n.email_std
        FROM {NODES} n JOIN {CLUSTERS} c ON c.node = n.node
        SEMI JOIN {suspects} s ON s.cluster = c.cluster
        """
    ):
        groups[node] = _Group(
            {dob} if dob else set(),
            {(first, key or first, last or "")} if first else set(),
            {suffix} if suffix else set(),
            {national_id} if national_id else set(),
            {email} if email else set(),
        )
    parent = {node: node for node in groups}

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    names = table("guard_node_names")
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {names} AS
        SELECT c.node, {"n.name" if node_names_sql else "NULL::VARCHAR"} AS name,
               nd.name_suffix AS suffix
        FROM {CLUSTERS} c SEMI JOIN {suspects} s ON s.cluster = c.cluster
        JOIN {NODES} nd ON nd.node = c.node
        {f"JOIN ({node_names_sql}) n ON n.node = c.node" if node_names_sql else ""}
        """
    )
    refused = []
    for left, right, weight in engine.rows(
        f"""
        SELECT k.left_node, k.right_node, k.match_weight FROM ({links_sql}) k
        JOIN {names} ln ON ln.node = k.left_node
        JOIN {names} rn ON rn.node = k.right_node
        -- Of links alike, one whose sides name the same Jr or Sr first: a Jr's order was as
        -- near his father's contact (no suffix) as his own, and went to the first by name.
        ORDER BY k.match_weight DESC, coalesce(ln.suffix = rn.suffix, false) DESC,
                 least(ln.name, rn.name), greatest(ln.name, rn.name), k.left_node, k.right_node
        """
    ):
        a, b = find(left), find(right)
        if a == b:
            continue
        broken = _conflict(groups[a], groups[b], guards)
        if broken is not None:
            refused.append((left, right, weight, broken))
            continue
        keep, gone = (a, b) if a < b else (b, a)
        parent[gone] = keep
        # Pour the smaller group into the larger (the root keeps whichever object): copying a
        # giant component's values into each small group it absorbs would be quadratic.
        if groups[gone].size() > groups[keep].size():
            groups[keep], groups[gone] = groups[gone], groups[keep]
        groups[keep].absorb(groups[gone])
    assignments = pa.table(
        {
            "node": pa.array(list(parent), pa.int64()),
            "cluster": pa.array([find(n) for n in parent], pa.int64()),
        }
    )
    reassigned = table("guard_assignments")
    engine.register_arrow(reassigned, assignments)
    # A join rather than UPDATE ... FROM, which Spark has no form of.
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {CLUSTERS} AS
        SELECT c.node, coalesce(a.cluster, c.cluster) AS cluster
        FROM {CLUSTERS} c LEFT JOIN {reassigned} a ON a.node = c.node
        """
    )
    engine.drop(reassigned)
    if refused:
        # One Arrow batch: executemany inserts row by row, seconds for thousands of links.
        left, right, weight, guard = zip(*refused, strict=True)
        batch = table("guard_refused")
        engine.register_arrow(
            batch,
            pa.table(
                {
                    "left_node": pa.array(left, pa.int64()),
                    "right_node": pa.array(right, pa.int64()),
                    "match_weight": pa.array(weight, pa.float64()),
                    "guard": pa.array(guard, pa.string()),
                }
            ),
        )
        engine.execute(f"INSERT INTO {REFUSED} SELECT * FROM {batch}")
        engine.drop(batch)
    engine.drop(suspects, names)
