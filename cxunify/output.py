"""Stage 9, write: Parquet outputs built in a sibling folder and swapped in when complete.

A reader of the output folder sees either the previous run or the new one, never a mix: the
new files are written next to it and the folder is replaced by renames on the same filesystem.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb

from cxunify.block import RULES
from cxunify.cluster import LINKS, REFUSED
from cxunify.engine import DuckDBEngine
from cxunify.errors import OutputError
from cxunify.identity import IDENTITY
from cxunify.ingest import REJECTS
from cxunify.profile import PROFILES
from cxunify.score import SCORED, SCORED_FLOOR
from cxunify.sql import ident
from cxunify.standardize import RECORDS

MANIFEST = "run.json"
DATABASE = "cxunify.duckdb"

# The standardised fields records.parquet shows per source row: what matching compared, for
# explaining a customer and measuring completeness per source.
RECORD_FIELDS = (
    "first_name",
    "last_name",
    "name_suffix",
    "email",
    "phone",
    "street",
    "city",
    "postcode",
    "state",
    "country",
    "dob",
    "gender",
    "national_id",
    "customer_key",
    "handle",
    "platform",
    "created_at",
)

# Output name -> the query that fills it. The order of columns is the documented contract.
OUTPUT_QUERIES: dict[str, str] = {
    "profiles": f"SELECT * FROM {PROFILES} ORDER BY customer_id",
    "identity_map": f"""
        SELECT r.source, r.source_kind, r.source_record_id, i.customer_id,
               i.confidence, r.file, r.row_number
        FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        ORDER BY r.source, r.record_key
    """,
    "records": f"""
        SELECT r.source, r.source_kind, r.source_record_id, i.customer_id,
               {", ".join(f"r.{ident(c)}" for c in RECORD_FIELDS)}
        FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        ORDER BY r.source, r.record_key
    """,
    "links": "",  # built by links_query(): its columns depend on the comparisons in use
    "rejects": f"SELECT source, file, line, reason, raw FROM {REJECTS} ORDER BY source, file, line",
}


# Scored pairs below the threshold are kept in links.parquet down to this match probability, so
# evaluation can trace precision and recall over thresholds and explain can show near misses;
# lower ones are overwhelmingly non-matches and would only bloat the file.
LINKS_FLOOR = SCORED_FLOOR


def links_query(comparison_names: list[str]) -> str:
    """Scored pairs at or above ``LINKS_FLOOR``: links (``above_threshold``), kept or refused by
    a merge guard (``guard`` says which), and the near misses below the threshold."""
    per_field = ", ".join(
        f"k.{ident('gamma_' + n)}, k.{ident('weight_' + n)}" for n in comparison_names
    )
    # Which pairs are links is the cluster stage's decision (cx_links), not recomputed here.
    return f"""
        SELECT l.source AS left_source, l.source_record_id AS left_source_record_id,
               r.source AS right_source, r.source_record_id AS right_source_record_id,
               li.customer_id, ru.name AS blocking_rule, k.forced,
               k.match_weight, k.match_probability,
               a.left_node IS NOT NULL AND f.guard IS NULL AS kept, f.guard,
               a.left_node IS NOT NULL AS above_threshold,
               {per_field}
        FROM {SCORED} k
        LEFT JOIN {LINKS} a ON a.left_node = k.left_node AND a.right_node = k.right_node
        JOIN {RECORDS} l ON l.record_key = k.left_node
        JOIN {RECORDS} r ON r.record_key = k.right_node
        JOIN {IDENTITY} li ON li.record_key = k.left_node
        LEFT JOIN {RULES} ru ON ru.rule = k.rule
        LEFT JOIN {REFUSED} f ON f.left_node = k.left_node AND f.right_node = k.right_node
        WHERE a.left_node IS NOT NULL OR k.match_probability >= {LINKS_FLOOR}
        ORDER BY k.left_node, k.right_node
    """


def staging_dir(out_dir: Path) -> Path:
    """A fresh folder beside `out_dir` (same filesystem, so the final rename is atomic)."""
    out_dir = out_dir.resolve()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{out_dir.parent}: cannot create output folder: {exc.strerror}"
        ) from None
    staging = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder that is not a cxunify output (it may hold a user's files)."""
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / MANIFEST).exists())
    ):
        raise OutputError(
            f"{out_dir}: exists and is not a cxunify output folder; choose another --out"
        )


def write_tables(
    engine: DuckDBEngine, staging: Path, compression: str, comparison_names: list[str]
) -> dict[str, int]:
    """Write every Parquet output into `staging`; return rows written per output."""
    counts = {}
    queries = {**OUTPUT_QUERIES, "links": links_query(comparison_names)}
    for name, query in queries.items():
        path = staging / f"{name}.parquet"
        # The count is read back from the written file, so it proves what is on disk.
        counts[name] = engine.write_parquet(query, path, compression)
    return counts


def write_manifest(staging: Path, manifest: dict[str, Any]) -> None:
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def swap_in(staging: Path, out_dir: Path) -> None:
    """Replace `out_dir` by `staging` with renames; the old folder is removed afterwards."""
    out_dir = out_dir.resolve()
    check_replaceable(out_dir)
    retired = None
    if out_dir.exists():
        retired = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        out_dir.rename(retired)
    staging.rename(out_dir)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def write_database(out_dir: Path) -> None:
    """Write ``cxunify.duckdb`` with a view per Parquet output, by absolute path.

    DuckDB resolves relative paths in views against the reader's working directory, so the
    views name the files where they finally live. They are created after the swap because
    DuckDB checks a view's files when it is created.
    """
    out_dir = out_dir.resolve()
    partial = out_dir / f".{DATABASE}.partial"
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    try:
        create_views(con, out_dir)
    finally:
        con.close()
    partial.rename(out_dir / DATABASE)


def output_names(out_dir: Path) -> list[str]:
    return sorted(p.stem for p in out_dir.glob("*.parquet"))


def create_views(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    """Create a view per Parquet file of an output folder on `con`; return the view names."""
    names = output_names(out_dir)
    for name in names:
        path = str((out_dir / f"{name}.parquet").resolve()).replace("'", "''")
        # A view body cannot take parameters; the path is ours (an output folder) and quoted.
        con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT * FROM read_parquet('{path}')")
    return names
