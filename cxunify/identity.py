"""Stage 7, identify: give each cluster a customer_id.

An id is derived from the cluster's anchor record, the smallest (source, source_record_id) in
it, so it does not depend on row order or on how many runs came before, and a re-run on the
same inputs gives the same ids.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cxunify.block import RECORD_NODES
from cxunify.cluster import CLUSTERS, LINKS, REFUSED
from cxunify.engine import DuckDBEngine
from cxunify.engine.duckdb import PII_DIGEST
from cxunify.engine.hadoop import HadoopPath
from cxunify.sql import parquet, table
from cxunify.standardize import RECORDS

IDENTITY = table("identity")

# A name for each node that does not depend on row order: its smallest source record.
NODE_NAMES_SQL = f"""
    SELECT rn.node, min(r.source || chr(31) || r.source_record_id) AS name
    FROM {RECORD_NODES} rn JOIN {RECORDS} r USING (record_key) GROUP BY rn.node
"""


def assign_customer_ids(engine: DuckDBEngine, keyed: bool = False) -> int:
    """Create ``cx_identity(record_key, node, customer_id, confidence)``; return customers.

    ``confidence`` is the best match probability of a link touching the record's node that
    joined it (a link a merge guard refused does not: the record it would have joined is in
    another customer); records identical to another record of their customer (same node) have
    confidence 1.
    """
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {IDENTITY} AS
        WITH members AS (
            SELECT r.record_key, rn.node, c.cluster,
                   r.source || chr(31) || r.source_record_id AS member
            FROM {RECORDS} r
            JOIN {RECORD_NODES} rn USING (record_key)
            JOIN {CLUSTERS} c ON c.node = rn.node
        ), anchors AS (
            SELECT cluster, 'c_' || left({_sha256(keyed)}(min(member)), 16) AS customer_id
            FROM members GROUP BY cluster
        ), node_sizes AS (
            SELECT node, count(*) AS n FROM members GROUP BY node
        ), joined AS (
            SELECT l.left_node, l.right_node, l.match_probability FROM {LINKS} l
            LEFT JOIN {REFUSED} f ON f.left_node = l.left_node AND f.right_node = l.right_node
            WHERE f.left_node IS NULL
        ), best_link AS (
            SELECT node, max(p) AS confidence FROM (
                SELECT left_node AS node, match_probability AS p FROM joined
                UNION ALL SELECT right_node, match_probability FROM joined
            ) GROUP BY node
        )
        SELECT m.record_key, m.node, a.customer_id,
               CASE WHEN s.n > 1 THEN 1.0 ELSE b.confidence END AS confidence
        FROM members m JOIN anchors a USING (cluster)
        JOIN node_sizes s USING (node)
        LEFT JOIN best_link b USING (node)
        ORDER BY m.record_key
        """
    )
    return int(engine.scalar(f"SELECT count(DISTINCT customer_id) FROM {IDENTITY}"))


# --- carrying ids over from the previous run ---------------------------------------------------

CUSTOMER_IDS = table("customer_ids")
REDIRECTS = table("id_redirects")
# (not "removed_records": an update names its replaced and deleted records so)
REMOVED = table("records_left")
PREVIOUS_REMOVED = table("previous_removed")
ISSUED_BEFORE = table("issued_before")
DIGESTS = table("record_digests")
PREVIOUS_MAP = table("previous_map")
PREVIOUS_IDS = table("previous_ids")
ASSIGNED = table("id_assigned")


@dataclass
class Churn:
    """How this run's customer ids relate to the previous run's (all zero on a first run)."""

    previous_customers: int = 0
    customers_kept: int = 0
    customers_new: int = 0
    customers_split_off: int = 0
    customers_merged: int = 0
    customers_id_changed: int = 0
    # Previous customers none of whose records is in this run: their ids name nobody now.
    customers_removed: int = 0
    # Customers given back the id their records had when they all left an earlier run.
    customers_returned: int = 0

    @property
    def id_changed_share(self) -> float:
        """Share of the previous run's customers some of whose records now carry another id."""
        if not self.previous_customers:
            return 0.0
        return self.customers_id_changed / self.previous_customers

    @property
    def removed_share(self) -> float:
        """Share of the previous run's customers none of whose records is in this run."""
        if not self.previous_customers:
            return 0.0
        return self.customers_removed / self.previous_customers

    def as_dict(self) -> dict[str, int | float]:
        return {
            **asdict(self),
            "id_changed_share": round(self.id_changed_share, 6),
            "removed_share": round(self.removed_share, 6),
        }


@dataclass
class PreviousOutput:
    """Where the previous run's identity lives; absent files are treated as empty."""

    identity_map: Path | HadoopPath
    customer_ids: Path | HadoopPath | None
    redirects: Path | HadoopPath | None
    started_at: datetime
    removed_records: Path | HadoopPath | None = None
    # How its personal values were written (its run.json's pii_hashed and pii_key_check):
    # a run whose values will not join with them says so (see output.pii_warnings).
    pii_hashed: bool = False
    pii_key_check: str | None = None


def carry_over_ids(
    engine: DuckDBEngine, previous: PreviousOutput | None, run_at: datetime, keyed: bool = False
) -> Churn:
    """Replace fresh ids in ``cx_identity`` by the previous run's where the customer survives.

    Rules (README, "Stable customer ids"):

    * each previous id is *owned* by the new cluster holding most of its records (ties: the
      cluster holding records of fewer other previous customers, where the id is likelier to
      live on than be merged away; then the cluster with more records in all; then the
      smaller fresh id);
    * a cluster owning several previous ids (a merge) keeps the oldest one (earliest
      ``issued_at``; ties: most records, then the smaller id); the others are redirected to it
      with reason ``merge``;
    * a cluster owning none gets a fresh id from its anchor record; if it holds records of a
      previous customer (a split: the largest part kept the id) the redirect from that
      customer to it has reason ``split``;
    * records that left an earlier run (``removed_records``) and are back vote for the id
      they had then, when no record of the previous run holds that id and it was not merged
      away: a customer whose records all left and came back gets its id back (``returned``);
    * a fresh id never reuses an id issued before, so a retired id cannot come back.

    Creates ``cx_customer_ids(customer_id, issued_at)`` and ``cx_id_redirects`` (previous
    redirects with chains resolved, plus this run's) and returns the churn figures.
    """
    run_at = run_at.astimezone(UTC).replace(tzinfo=None)
    _load_previous(engine, previous)
    _load_issued(engine, keyed)
    # A record back after leaving an earlier run votes for its id then, unless a record of
    # the previous run still holds that id (it stays with them) or it was merged away (its
    # redirect says where its customer went; `_avoid_reissuing` has the one exception).
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {table("id_votes")} AS
        WITH live AS (
            SELECT i.customer_id AS fresh_id, p.customer_id AS old_id, count(*) AS votes
            FROM {IDENTITY} i JOIN {RECORDS} r USING (record_key)
            JOIN {PREVIOUS_MAP} p USING (source, source_record_id)
            GROUP BY ALL
        ), back AS (
            SELECT i.customer_id AS fresh_id, g.customer_id AS old_id, count(*) AS votes
            FROM {IDENTITY} i JOIN {DIGESTS} d USING (record_key)
            JOIN {PREVIOUS_REMOVED} g USING (record)
            WHERE g.customer_id NOT IN (SELECT old_id FROM live)
              AND g.customer_id NOT IN (
                  SELECT old_customer_id FROM {REDIRECTS} WHERE reason = 'merge')
            GROUP BY ALL
        )
        SELECT fresh_id, old_id, votes, false AS returned FROM live
        UNION ALL SELECT fresh_id, old_id, votes, true AS returned FROM back
        """
    )
    votes = table("id_votes")
    # A merge undone: the part holding the record an id merged into `old_id` was derived from
    # (its fresh id is that id) gets it back (`_avoid_reissuing`), so it does not own
    # `old_id`, which stays with the other parts, however large the part is.
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {table("id_owners")} AS
        WITH sizes AS (SELECT customer_id AS fresh_id, count(*) AS n FROM {IDENTITY} GROUP BY 1),
        rivals AS (SELECT fresh_id, count(DISTINCT old_id) - 1 AS n FROM {votes} GROUP BY 1),
        undone AS (
            SELECT v.fresh_id, v.old_id FROM {votes} v
            JOIN {REDIRECTS} r ON r.old_customer_id = v.fresh_id AND r.customer_id = v.old_id
            JOIN (SELECT old_id FROM {votes} GROUP BY old_id HAVING count(*) > 1) USING (old_id)
            WHERE r.reason = 'merge'
        )
        SELECT v.fresh_id, v.old_id, v.votes, v.returned
        FROM {votes} v JOIN sizes s USING (fresh_id) JOIN rivals o USING (fresh_id)
        ANTI JOIN undone u USING (fresh_id, old_id)
        QUALIFY row_number() OVER (
            PARTITION BY v.old_id ORDER BY v.votes DESC, o.n, s.n DESC, v.fresh_id
        ) = 1
        """
    )
    owners = table("id_owners")
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {ASSIGNED} AS
        WITH kept AS (
            SELECT o.fresh_id, o.old_id AS customer_id, o.returned FROM {owners} o
            LEFT JOIN {ISSUED_BEFORE} p ON p.customer_id = o.old_id
            QUALIFY row_number() OVER (
                PARTITION BY o.fresh_id ORDER BY p.issued_at NULLS LAST, o.votes DESC, o.old_id
            ) = 1
        ), clusters AS (SELECT DISTINCT customer_id AS fresh_id FROM {IDENTITY})
        SELECT c.fresh_id, coalesce(k.customer_id, c.fresh_id) AS customer_id,
               CASE WHEN k.returned THEN 'returned'
                    WHEN k.customer_id IS NOT NULL THEN 'kept'
                    WHEN c.fresh_id IN (SELECT fresh_id FROM {votes}) THEN 'split'
                    ELSE 'new' END AS origin
        FROM clusters c LEFT JOIN kept k USING (fresh_id)
        """
    )
    _avoid_reissuing(engine)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {IDENTITY} AS
        SELECT i.record_key, i.node, a.customer_id, i.confidence
        FROM {IDENTITY} i JOIN {ASSIGNED} a ON a.fresh_id = i.customer_id
        ORDER BY i.record_key
        """
    )
    _write_customer_ids(engine, run_at)
    _write_redirects(engine, run_at)
    _write_removed_records(engine, run_at, keyed)
    churn = _churn(engine)
    # The previous identity map (a row per record) and the vote tables are done with: freed,
    # the later stages have that memory before DuckDB spills to disk.
    engine.drop(
        PREVIOUS_MAP, PREVIOUS_IDS, PREVIOUS_REMOVED, ISSUED_BEFORE, DIGESTS, ASSIGNED, votes,
        owners, table("id_merges"),
    )  # fmt: skip
    return churn


def _sha256(keyed: bool) -> str:
    """The SQL function of the digests ids and removed records are made by: SHA-256, or with
    output.hash_pii the keyed digest of the personal values (the engine's `set_pii_key`), so
    that whoever holds the output cannot confirm a guessed source id of an erased record (a
    handle, a CRM number) by hashing it."""
    return PII_DIGEST if keyed else "sha256"


def record_digest(alias: str, keyed: bool = False) -> str:
    """SQL: the SHA-256 (hex) of a record's source, 0x1F and source id (keyed: see `_sha256`),
    as ``removed_records`` names a record that left (the key itself, a handle perhaps, does
    not stay once erased)."""
    return f"{_sha256(keyed)}({alias}.source || chr(31) || {alias}.source_record_id)"


def _load_previous(engine: DuckDBEngine, previous: PreviousOutput | None) -> None:
    engine.execute(
        f"CREATE OR REPLACE TABLE {PREVIOUS_MAP} "
        "(source VARCHAR, source_record_id VARCHAR, customer_id VARCHAR)"
    )
    engine.execute(
        f"CREATE OR REPLACE TABLE {PREVIOUS_IDS} (customer_id VARCHAR, issued_at TIMESTAMP)"
    )
    engine.execute(f"CREATE OR REPLACE TABLE {REDIRECTS} ({REDIRECT_COLUMNS})")
    engine.execute(f"CREATE OR REPLACE TABLE {PREVIOUS_REMOVED} ({REMOVED_COLUMNS})")
    if previous is None:
        return
    engine.execute(
        f"INSERT INTO {PREVIOUS_MAP} SELECT source, source_record_id, customer_id "
        f"FROM {parquet('$path')}",
        {"path": str(previous.identity_map)},
    )
    if previous.customer_ids is not None:
        engine.execute(
            f"INSERT INTO {PREVIOUS_IDS} SELECT customer_id, issued_at FROM {parquet('$path')}",
            {"path": str(previous.customer_ids)},
        )
    else:  # an output written before ids were tracked: its ids date from that run
        engine.execute(
            f"INSERT INTO {PREVIOUS_IDS} SELECT DISTINCT customer_id, $at FROM {PREVIOUS_MAP}",
            {"at": previous.started_at.astimezone(UTC).replace(tzinfo=None)},
        )
    if previous.redirects is not None:
        engine.execute(
            f"INSERT INTO {REDIRECTS} BY NAME SELECT * FROM {parquet('$path')}",
            {"path": str(previous.redirects)},
        )
    if previous.removed_records is not None:
        engine.execute(
            f"INSERT INTO {PREVIOUS_REMOVED} BY NAME SELECT * FROM {parquet('$path')}",
            {"path": str(previous.removed_records)},
        )


def _load_issued(engine: DuckDBEngine, keyed: bool) -> None:
    """Every id issued before with its issue time: the previous run's, and those of records
    that left earlier runs; and each record's digest, which names it in removed_records."""
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {ISSUED_BEFORE} AS
        SELECT customer_id, min(issued_at) AS issued_at FROM (
            SELECT customer_id, issued_at FROM {PREVIOUS_IDS}
            UNION ALL SELECT customer_id, issued_at FROM {PREVIOUS_REMOVED}
            UNION ALL SELECT old_customer_id, issued_at FROM {REDIRECTS}
            WHERE reason = 'merge' AND issued_at IS NOT NULL
        ) GROUP BY customer_id
        """
    )
    # Only needed to find records back: none can be when no record has left, and a record of
    # the previous run had not left (a record back is dropped from removed_records), so only
    # records new since then are hashed: the cost follows the change, not the record count.
    none_left = "" if engine.count(PREVIOUS_REMOVED) else " WHERE false"
    engine.execute(
        f"CREATE OR REPLACE TABLE {DIGESTS} AS "
        f"SELECT r.record_key, {record_digest('r', keyed)} AS record FROM {RECORDS} r "
        f"ANTI JOIN {PREVIOUS_MAP} p USING (source, source_record_id){none_left}"
    )


REDIRECT_COLUMNS = (
    "old_customer_id VARCHAR, customer_id VARCHAR, redirected_to VARCHAR, "
    "reason VARCHAR, redirected_at TIMESTAMP, issued_at TIMESTAMP"
)
REMOVED_COLUMNS = "record VARCHAR, customer_id VARCHAR, issued_at TIMESTAMP, removed_at TIMESTAMP"


def _avoid_reissuing(engine: DuckDBEngine) -> None:
    """Re-derive a fresh id that equals one issued before (a split-off part can contain the
    record an old id was derived from). Hashing the id again is deterministic and converges
    at once in practice; the loop is bounded for safety.

    One exception: an id retired by a merge comes back to the customer holding the record it
    was derived from, when that customer stands apart again (the merge was undone: a
    bridging record deleted or changed). Its records are that customer's again, and the
    merge redirect, which would now send the id to someone else, is dropped (see
    `_write_redirects`).
    """
    carried = f"SELECT customer_id FROM {ASSIGNED} WHERE origin IN ('kept', 'returned')"
    merged_away = (
        f"SELECT old_customer_id FROM {REDIRECTS} WHERE reason = 'merge' "
        f"AND old_customer_id NOT IN ({carried})"
    )
    # Ids of customers whose records all left an earlier run are issued before too: they
    # come back only with those records (`returned`), never to someone else.
    clash = f"""
        origin NOT IN ('kept', 'returned') AND (
            customer_id IN (SELECT customer_id FROM {PREVIOUS_IDS})
            OR customer_id IN (SELECT customer_id FROM {ISSUED_BEFORE}
                               WHERE customer_id NOT IN ({merged_away}))
            OR customer_id IN (SELECT old_customer_id FROM {REDIRECTS}
                               WHERE old_customer_id NOT IN ({merged_away}))
            OR customer_id IN ({carried}))
    """
    for _ in range(8):
        if not engine.scalar(f"SELECT count(*) FROM {ASSIGNED} WHERE {clash}"):
            return
        engine.execute(
            f"UPDATE {ASSIGNED} SET customer_id = 'c_' || left(sha256(customer_id), 16) "
            f"WHERE {clash}"
        )


def _write_customer_ids(engine: DuckDBEngine, run_at: datetime) -> None:
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {CUSTOMER_IDS} AS
        SELECT a.customer_id, coalesce(p.issued_at, $run_at) AS issued_at
        FROM {ASSIGNED} a LEFT JOIN {ISSUED_BEFORE} p
             ON p.customer_id = a.customer_id
             -- (or a merge undone: the id merged away is its own records' again)
             AND (a.origin IN ('kept', 'returned') OR a.customer_id = a.fresh_id)
        ORDER BY a.customer_id
        """,
        {"run_at": run_at},
    )


def _write_redirects(engine: DuckDBEngine, run_at: datetime) -> None:
    """Add this run's merges and splits; earlier redirects follow this run's merges, so
    ``customer_id`` always names a customer of this run (chains A→B→C resolve to C)."""
    owners = table("id_owners")
    merges = table("id_merges")
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {merges} AS
        SELECT o.old_id AS old_customer_id, a.customer_id
        FROM {owners} o JOIN {ASSIGNED} a USING (fresh_id)
        WHERE a.customer_id <> o.old_id
        """
    )
    # A join, not UPDATE ... FROM, which Spark has no form of (each old id merges once).
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {REDIRECTS} AS
        SELECT r.old_customer_id, coalesce(m.customer_id, r.customer_id) AS customer_id,
               r.redirected_to, r.reason, r.redirected_at, r.issued_at
        FROM {REDIRECTS} r LEFT JOIN {merges} m ON m.old_customer_id = r.customer_id
        """
    )
    engine.execute(
        f"""
        INSERT INTO {REDIRECTS}
        SELECT m.old_customer_id, m.customer_id, m.customer_id AS redirected_to,
               'merge' AS reason, $run_at AS redirected_at, i.issued_at
        FROM {merges} m LEFT JOIN {ISSUED_BEFORE} i ON i.customer_id = m.old_customer_id
        UNION ALL
        SELECT v.old_id, a.customer_id, a.customer_id AS redirected_to, 'split' AS reason,
               $run_at AS redirected_at, p.issued_at
        FROM {table("id_votes")} v JOIN {ASSIGNED} a USING (fresh_id)
        LEFT JOIN {PREVIOUS_IDS} p ON p.customer_id = v.old_id
        WHERE a.origin = 'split'
        QUALIFY row_number() OVER (
            PARTITION BY v.fresh_id ORDER BY v.votes DESC, p.issued_at NULLS LAST, v.old_id
        ) = 1
        """,
        {"run_at": run_at},
    )
    _follow_returned(engine)
    # A customer whose records are all gone (deleted, or no longer exported) leaves its
    # redirects pointing nowhere: NULL says so, rather than naming an id nobody holds.
    # A merge undone gives the retired id back; its merge redirect goes. A split undone (the
    # part that split off merged back) would point from the id to itself; it goes too.
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {REDIRECTS} AS
        SELECT r.old_customer_id, a.customer_id, r.redirected_to, r.reason, r.redirected_at,
               r.issued_at
        FROM {REDIRECTS} r
        LEFT JOIN (SELECT DISTINCT customer_id FROM {ASSIGNED}) a USING (customer_id)
        LEFT JOIN (SELECT DISTINCT customer_id AS live FROM {ASSIGNED}) o
            ON o.live = r.old_customer_id
        -- a merged-away id given back to its own records (`_avoid_reissuing`) is live again
        WHERE (r.reason <> 'merge' OR o.live IS NULL)
          AND a.customer_id IS DISTINCT FROM r.old_customer_id
        ORDER BY r.redirected_at, r.old_customer_id, a.customer_id
        """
    )


def _follow_returned(engine: DuckDBEngine) -> None:
    """A redirect that led nowhere (its customer's records had all gone) leads to that
    customer again when its records are back with its id (`returned`): to the id it ends at
    following the merges from `redirected_to`, when that is a customer of this run."""
    returned = f"SELECT customer_id FROM {ASSIGNED} WHERE origin = 'returned'"
    if not engine.scalar(f"SELECT count(*) FROM ({returned})"):
        return
    ends, step = table("redirect_ends"), table("redirect_ends_next")
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {ends} AS
        SELECT DISTINCT redirected_to AS start, redirected_to AS id FROM {REDIRECTS}
        WHERE customer_id IS NULL
        """
    )
    merged = f"SELECT old_customer_id, redirected_to FROM {REDIRECTS} WHERE reason = 'merge'"
    for _ in range(16):  # a chain is as long as the merges it went through
        engine.execute(
            f"""
            CREATE OR REPLACE TABLE {step} AS
            SELECT e.start, coalesce(m.redirected_to, e.id) AS id
            FROM {ends} e LEFT JOIN ({merged}) m ON m.old_customer_id = e.id
            """
        )
        engine.execute(f"CREATE OR REPLACE TABLE {ends} AS SELECT * FROM {step}")
        pending = engine.scalar(
            f"SELECT count(*) FROM {ends} e JOIN ({merged}) m ON m.old_customer_id = e.id"
        )
        if not pending:
            break
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {REDIRECTS} AS
        SELECT r.old_customer_id, coalesce(r.customer_id, b.id) AS customer_id,
               r.redirected_to, r.reason, r.redirected_at, r.issued_at
        FROM {REDIRECTS} r
        LEFT JOIN (SELECT * FROM {ends} WHERE id IN (SELECT customer_id FROM {ASSIGNED})) b
            ON r.customer_id IS NULL AND b.start = r.redirected_to
        """
    )
    engine.drop(ends, step)


def _write_removed_records(engine: DuckDBEngine, run_at: datetime, keyed: bool) -> None:
    """`REMOVED` (removed_records.parquet): each record of an earlier run not in this one, by its
    digest, with the id it had when it left and that id's issue time; the earlier rows of
    records back in this run go."""
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {REMOVED} AS
        WITH gone AS (
            SELECT {record_digest("p", keyed)} AS record, p.customer_id, i.issued_at,
                   $run_at AS removed_at
            FROM {PREVIOUS_MAP} p
            LEFT JOIN {RECORDS} r USING (source, source_record_id)
            LEFT JOIN {PREVIOUS_IDS} i USING (customer_id)
            WHERE r.record_key IS NULL
        ), earlier AS (
            SELECT g.record, g.customer_id, g.issued_at, g.removed_at
            FROM {PREVIOUS_REMOVED} g LEFT JOIN {DIGESTS} d ON d.record = g.record
            WHERE d.record IS NULL
        )
        SELECT * FROM (SELECT * FROM gone UNION ALL SELECT * FROM earlier)
        QUALIFY row_number() OVER (PARTITION BY record ORDER BY removed_at DESC) = 1
        ORDER BY record
        """,
        {"run_at": run_at},
    )


def _churn(engine: DuckDBEngine) -> Churn:
    kept, new, split, returned = engine.rows(
        f"""
        SELECT count(*) FILTER (WHERE origin = 'kept'), count(*) FILTER (WHERE origin = 'new'),
               count(*) FILTER (WHERE origin = 'split'),
               count(*) FILTER (WHERE origin = 'returned')
        FROM {ASSIGNED}
        """
    )[0]
    # Per previous customer, in one pass over the previous map: whether any of its records is
    # in this run, and whether any of those carries another id now.
    previous, changed, removed = engine.rows(
        f"""
        SELECT count(*), count(*) FILTER (WHERE changed), count(*) FILTER (WHERE NOT present)
        FROM (
            SELECT p.customer_id, bool_or(r.record_key IS NOT NULL) AS present,
                   bool_or(i.customer_id <> p.customer_id) AS changed
            FROM {PREVIOUS_MAP} p LEFT JOIN {RECORDS} r USING (source, source_record_id)
            LEFT JOIN {IDENTITY} i USING (record_key)
            GROUP BY p.customer_id
        ) per_customer
        """
    )[0]
    return Churn(
        previous_customers=int(previous),
        customers_kept=int(kept),
        customers_returned=int(returned),
        customers_new=int(new),
        customers_split_off=int(split),
        customers_merged=engine.count(table("id_merges")),
        customers_id_changed=int(changed),
        customers_removed=int(removed),
    )
