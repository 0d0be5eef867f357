"""Matching quality against a truth file: pairwise and B-cubed precision, recall and F1.

The truth file has one row per source record: ``source, source_record_id, person_id``. Only
records present in both the identity map and the truth are scored (rejected rows drop out).
All counting happens in DuckDB; nothing per pair reaches Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from cxunify.errors import InputError, OutputError


@dataclass(frozen=True)
class Quality:
    records: int
    true_customers: int
    predicted_customers: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    largest_cluster: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def evaluate(out_dir: Path, truth_path: Path) -> Quality:
    """Score ``out_dir/identity_map.parquet`` against `truth_path` (CSV or Parquet)."""
    identity = out_dir / "identity_map.parquet"
    if not identity.is_file():
        raise OutputError(f"{out_dir}: no identity_map.parquet; run cxunify unify first")
    if not truth_path.is_file():
        raise InputError(f"{truth_path}: truth file not found")
    con = duckdb.connect()
    try:
        reader = "read_parquet" if truth_path.suffix == ".parquet" else "read_csv"
        try:
            con.execute(
                f"CREATE TABLE truth AS SELECT source::VARCHAR AS source, "
                "source_record_id::VARCHAR AS source_record_id, person_id::VARCHAR AS person_id "
                f"FROM {reader}($path)",
                {"path": str(truth_path)},
            )
        except duckdb.Error as exc:
            raise InputError(
                f"{truth_path}: needs columns source, source_record_id, person_id "
                f"({str(exc).splitlines()[0]})"
            ) from None
        con.execute(
            "CREATE TABLE joined AS SELECT i.customer_id, t.person_id "
            "FROM read_parquet($path) i JOIN truth t USING (source, source_record_id)",
            {"path": str(identity)},
        )
        row = con.execute(
            """
            WITH cells AS (SELECT customer_id, person_id, count(*)::HUGEINT AS n
                           FROM joined GROUP BY ALL),
                 clusters AS (SELECT customer_id, sum(n) AS n FROM cells GROUP BY ALL),
                 classes AS (SELECT person_id, sum(n) AS n FROM cells GROUP BY ALL)
            SELECT (SELECT sum(n) FROM cells),
                   (SELECT count(*) FROM classes),
                   (SELECT count(*) FROM clusters),
                   (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM classes),
                   (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM clusters),
                   (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM cells),
                   (SELECT sum(c.n * c.n / k.n) FROM cells c JOIN clusters k USING (customer_id)),
                   (SELECT sum(c.n * c.n / p.n) FROM cells c JOIN classes p USING (person_id)),
                   (SELECT coalesce(max(n), 0) FROM clusters)
            """
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    records, persons, customers, true_pairs, predicted, correct, bp, br, largest = row
    records = int(records or 0)
    precision = float(correct) / float(predicted) if predicted else 1.0
    recall = float(correct) / float(true_pairs) if true_pairs else 1.0
    b_precision = float(bp) / records if records else 1.0
    b_recall = float(br) / records if records else 1.0
    return Quality(
        records=records,
        true_customers=int(persons),
        predicted_customers=int(customers),
        true_pairs=int(true_pairs),
        predicted_pairs=int(predicted),
        correct_pairs=int(correct),
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        largest_cluster=int(largest),
    )
