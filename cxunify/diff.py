"""What changed between two outputs: customers created, merged, split, changed and removed.

Records are matched between the outputs by (source, source_record_id), so the comparison
works for any two runs: last night's and tonight's, or the current rules and a rule change
run with ``--previous`` on the same exports, before it ships.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from cxunify.errors import OutputError, public
from cxunify.output import MANIFEST, refuse_file_as_folder, require_folder
from cxunify.query import export, result_format
from cxunify.sql import column_list, parquet
from cxunify.traits import RELATIVE_TRAITS

CHANGES = ("created", "merged", "split", "changed", "removed")


@dataclass
class Diff:
    """One row per customer that differs (``changes``), and how many of each kind."""

    changes: pa.Table
    counts: dict[str, int]


# A customer of NEW is
#   created  when none of its records existed in OLD,
#   split    when its id is new but some of its records belonged to an OLD customer,
#   merged   when it kept an OLD id and absorbed other OLD customers (their ids are in NEW no
#            more: a record that moved from a customer who is still there is no merge, and
#            run.json's ids count no merge for it),
#   changed  when it kept its id and its records or profile differ (not the traits that move
#            with the as-of date or with other customers: a night moves as_of for everyone);
# an OLD customer none of whose records remain is removed. Profiles are compared column by
# column by name: EXCEPT pairs columns by place, so the same columns in another order made
# every customer changed.
def diff_sql(profile_columns: Sequence[str]) -> str:
    """The changes between two outputs, comparing the profiles on `profile_columns`."""
    columns = column_list(profile_columns)
    return f"""
WITH old_map AS (SELECT source, source_record_id, customer_id FROM {parquet("$old_map")}),
new_map AS (SELECT source, source_record_id, customer_id FROM {parquet("$new_map")}),
joined AS (
    SELECT n.customer_id, o.customer_id AS old_id,
           o.customer_id IN (SELECT customer_id FROM new_map) AS old_id_lives
    FROM new_map n LEFT JOIN old_map o USING (source, source_record_id)
),
per_new AS (
    SELECT customer_id,
           count(*) AS records_after,
           list(DISTINCT old_id ORDER BY old_id) FILTER (WHERE old_id IS NOT NULL) AS old_ids,
           count(*) FILTER (WHERE old_id <> customer_id AND NOT old_id_lives) AS absorbed,
           count(*) FILTER (WHERE old_id = customer_id) AS records_kept
    FROM joined GROUP BY customer_id
),
old_sizes AS (SELECT customer_id, count(*) AS n FROM old_map GROUP BY customer_id),
old_profiles AS (SELECT {columns} FROM {parquet("$old_profiles")}),
new_profiles AS (SELECT {columns} FROM {parquet("$new_profiles")}),
profile_changed AS (
    SELECT customer_id FROM (
        SELECT * FROM new_profiles EXCEPT SELECT * FROM old_profiles
    )
),
classified AS (
    SELECT p.customer_id,
           CASE WHEN s.customer_id IS NULL AND coalesce(len(p.old_ids), 0) = 0 THEN 'created'
                WHEN s.customer_id IS NULL THEN 'split'
                WHEN p.absorbed > 0 THEN 'merged'
                WHEN p.records_after <> s.n OR p.records_kept <> s.n
                     OR p.customer_id IN (SELECT customer_id FROM profile_changed)
                    THEN 'changed'
           END AS change,
           coalesce(list_filter(p.old_ids, lambda x: x <> p.customer_id), [])
               AS other_customer_ids,
           coalesce(s.n, 0) AS records_before, p.records_after
    FROM per_new p LEFT JOIN old_sizes s USING (customer_id)
)
SELECT customer_id, change, other_customer_ids, records_before, records_after
FROM classified WHERE change IS NOT NULL
UNION ALL
SELECT s.customer_id, 'removed', [], s.n, 0
FROM old_sizes s
WHERE s.customer_id NOT IN (SELECT customer_id FROM new_map)
  AND s.customer_id NOT IN (SELECT old_id FROM joined WHERE old_id IS NOT NULL)
ORDER BY change, customer_id
"""


@public("old", "new")
def diff_outputs(old: Path, new: Path) -> Diff:
    """Compare the outputs in folders `old` and `new`.

    Example::

        from pathlib import Path
        from cxunify.diff import diff_outputs
        print(diff_outputs(Path("out.yesterday"), Path("out")).counts)
    """
    params = {}
    for label, folder in (("old", old), ("new", new)):
        require_folder(folder)
        if not (folder / MANIFEST).is_file():
            raise OutputError(f"{folder}: not a cxunify output folder (no {MANIFEST})")
        for name, key in (("identity_map", "map"), ("profiles", "profiles")):
            path = folder / f"{name}.parquet"
            if not path.is_file():
                raise OutputError(f"{folder}: {name}.parquet is missing")
            params[f"{label}_{key}"] = str(path)
    con = duckdb.connect(":memory:")
    try:
        columns = _shared_profile_columns(con, old, new, params)
        try:
            changes = con.sql(diff_sql(columns), params=params).to_arrow_table()
        except (duckdb.BinderException, duckdb.ConversionException) as exc:
            # A column of the same name and another type (outputs of different versions).
            message = str(exc).strip().splitlines()[0]
            raise OutputError(f"cannot compare {old} with {new}: {message}") from None
    finally:
        con.close()
    kinds = changes.column("change").to_pylist()
    return Diff(changes=changes, counts={kind: kinds.count(kind) for kind in CHANGES})


def _shared_profile_columns(
    con: duckdb.DuckDBPyConnection, old: Path, new: Path, params: dict[str, str]
) -> list[str]:
    """NEW's profile columns, which must be OLD's too (in any order): a column only one of
    them has would make every customer changed (outputs of different cxunify versions).
    Traits that move with the as-of date or with the other customers are left out."""
    old_columns = _columns(con, params["old_profiles"])
    new_columns = _columns(con, params["new_profiles"])
    if set(old_columns) == set(new_columns):
        return [c for c in new_columns if c not in RELATIVE_TRAITS]
    differences = [
        f"only in {folder}: {', '.join(only)}"
        for folder, only in (
            (old, [c for c in old_columns if c not in new_columns]),
            (new, [c for c in new_columns if c not in old_columns]),
        )
        if only
    ]
    raise OutputError(
        f"cannot compare {old} with {new}: their profiles have different columns "
        f"({'; '.join(differences)}); compare outputs of the same cxunify version"
    )


def _columns(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    described = con.execute(f"SELECT * FROM {parquet('$path')} LIMIT 0", {"path": path})
    return [column[0] for column in described.description]


@public("path")
def write_changes(diff: Diff, path: Path) -> None:
    """Write every change to `path`, in a folder made if it does not exist, in the format its
    name ends in, as `cxunify sql --to` writes a result (.parquet, .csv, .json, .ndjson,
    .jsonl; csv for any other name, compressed under .gz, .bz2 or .xz): it wrote Parquet
    whatever the name, so `--out changes.csv` held Parquet a spreadsheet could not open."""
    fmt = result_format(None, path)
    refuse_file_as_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        export(diff.changes.to_reader(), "csv" if fmt == "table" else fmt, path, "--out")
    except OSError as exc:  # pyarrow's message does not name the path first
        reason = os.strerror(exc.errno) if exc.errno else str(exc).splitlines()[0]
        raise OutputError(f"{path}: {reason}") from None
