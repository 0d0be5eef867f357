"""Stage 7, identify: give each cluster a customer_id.

An id is derived from the cluster's anchor record, the smallest (source, source_record_id) in
it, so it does not depend on row order or on how many runs came before, and a re-run on the
same inputs gives the same ids.
"""

from __future__ import annotations

from cxunify.block import RECORD_NODES
from cxunify.cluster import CLUSTERS, LINKS
from cxunify.engine import DuckDBEngine
from cxunify.sql import table
from cxunify.standardize import RECORDS

IDENTITY = table("identity")


def assign_customer_ids(engine: DuckDBEngine) -> int:
    """Create ``cx_identity(record_key, node, customer_id, confidence)``; return customers.

    ``confidence`` is the best match probability of a link touching the record's node; records
    identical to another record of their customer (same node) have confidence 1.
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
            SELECT cluster, 'c_' || left(sha256(min(member)), 16) AS customer_id
            FROM members GROUP BY cluster
        ), node_sizes AS (
            SELECT node, count(*) AS n FROM members GROUP BY node
        ), best_link AS (
            SELECT node, max(p) AS confidence FROM (
                SELECT left_node AS node, match_probability AS p FROM {LINKS}
                UNION ALL SELECT right_node, match_probability FROM {LINKS}
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
