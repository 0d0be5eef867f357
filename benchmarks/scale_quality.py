"""Matching quality as the data grows: does precision hold at 30k, 300k and 1M rows?

    python benchmarks/scale_quality.py --rows 30000 300000 1000000

For each size, generates sample exports (about 4.5 rows per person) with `cxunify sample`,
runs `cxunify unify` through the Python API, and scores identity_map against the truth file.
Also reports how often hard negatives were merged: records of *different* people who share a
household address, or a name with only a Jr/Sr suffix between them, that ended up in one
customer. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

import duckdb

from cxunify.config import load_config
from cxunify.evaluate import evaluate
from cxunify.pipeline import unify
from cxunify.sample import generate_sample

ROOT = Path(__file__).resolve().parents[1]
ROWS_PER_PERSON = 4.52


def hard_negative_rate(out: Path, truth: Path) -> dict[str, float]:
    """Share of different-person pairs sharing a street and surname (households, twins,
    Jr/Sr) that were put in one customer."""
    con = duckdb.connect()
    con.execute(
        f"""
        CREATE TABLE j AS
        SELECT i.customer_id, t.person_id, lower(c.last_name) AS last, lower(c.street) AS street
        FROM read_parquet('{out}/identity_map.parquet') i
        JOIN read_csv('{truth}', all_varchar = true) t USING (source, source_record_id)
        JOIN read_csv('{truth.parent}/crm.csv', all_varchar = true) c
          ON i.source = 'crm' AND c.contact_id = i.source_record_id
        """
    )
    row = con.execute(
        """
        WITH p AS (SELECT DISTINCT person_id, customer_id, last, street FROM j),
        pairs AS (
            SELECT a.person_id, b.person_id AS other, a.customer_id = b.customer_id AS merged
            FROM p a JOIN p b ON a.street = b.street AND a.last = b.last
             AND a.person_id < b.person_id
        )
        SELECT count(DISTINCT (person_id, other)),
               count(DISTINCT (person_id, other)) FILTER (WHERE merged)
        FROM pairs
        """
    ).fetchone()
    con.close()
    pairs, merged = row
    return {"hard_negative_pairs": pairs, "merged": merged,
            "rate": merged / pairs if pairs else 0.0}


def run(rows: int, work: Path) -> dict[str, object]:
    people = max(1, round(rows / ROWS_PER_PERSON))
    data = work / f"data-{rows}"
    if not (data / "truth.csv").exists():
        generate_sample(people, 11, data)
    # The sample config, reading this size's files: every size is read the same way.
    text = (ROOT / "configs" / "sample.yaml").read_text(encoding="utf-8")
    scale_config = work / f"scale-{rows}.yaml"
    scale_config.write_text(text.replace("../sample_data/", f"{data}/"), encoding="utf-8")
    config = load_config(scale_config)
    out = work / f"out-{rows}"
    started = time.perf_counter()
    result = unify(config, out)
    seconds = time.perf_counter() - started
    quality = evaluate(out, data / "truth.csv")
    return {
        "rows": result.counts["rows_in"],
        "people": people,
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in quality.as_dict().items()},
        "hard_negatives": hard_negative_rate(out, data / "truth.csv"),
        "stages": result.stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[30_000, 300_000, 1_000_000])
    # A folder of its own: it is removed at the end, and benchmarks/work holds other runs.
    parser.add_argument(
        "--work", type=Path, default=ROOT / "benchmarks" / "work" / "scale-quality"
    )
    parser.add_argument("--keep", action="store_true", help="keep generated data and outputs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        print(json.dumps(run(rows, args.work)), flush=True)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
