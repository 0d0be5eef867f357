"""The same run on DuckDB and on Spark in local mode: time, and whether the customers agree.

    python benchmarks/spark_vs_duckdb.py --rows 100000 1000000 --master 'local[2]'

For each size, generates sample exports (about 4.5 rows per person) with `cxunify sample`, runs
`unify` with DuckDB and then with Spark, and prints one JSON line: wall seconds and stage
seconds of each engine, and whether identity_map partitions and profiles are identical.
Spark in local mode on one machine measures overhead, not a cluster's speed; it shows what the
engine costs where DuckDB would do, and that the answers do not change. Not part of the suite.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import polars as pl

from cxunify.config import SparkConfig, load_config
from cxunify.pipeline import unify
from cxunify.sample import generate_sample

ROOT = Path(__file__).resolve().parents[1]
ROWS_PER_PERSON = 4.52


def sample_config(rows: int, work: Path):
    """Generated exports of about `rows` rows, read with the sample config's mappings."""
    data = work / f"data-{rows}"
    if not (data / "truth.csv").exists():
        generate_sample(max(1, round(rows / ROWS_PER_PERSON)), 11, data)
    # The sample config, reading these files (an unmapped source is a config error, so the
    # mappings cannot be copied in after validation).
    text = (ROOT / "configs" / "sample.yaml").read_text(encoding="utf-8")
    path = work / f"sample-{rows}.yaml"
    path.write_text(text.replace("../sample_data/", f"{data}/"), encoding="utf-8")
    config = load_config(path)
    return config


def partition(out: Path) -> set[frozenset[str]]:
    members = pl.read_parquet(out / "identity_map.parquet")
    grouped = members.group_by("customer_id").agg(
        pl.concat_str(["source", "source_record_id"], separator="\x1f").alias("m")
    )
    return {frozenset(m) for m in grouped["m"].to_list()}


class StageLog:
    """Prints each stage's seconds to stderr as it ends, so a long run shows where it is."""

    def __init__(self, engine: str, rows: int):
        self.engine, self.rows, self.began = engine, rows, 0.0

    def start(self, stage: str, description: str) -> None:
        self.began = time.perf_counter()

    def advance(self, stage: str, fraction: float) -> None:
        pass

    def finish(self, stage: str) -> None:
        seconds = time.perf_counter() - self.began
        print(f"{self.engine} {self.rows} {stage} {seconds:.1f}s", file=sys.stderr, flush=True)


def run(rows: int, work: Path, master: str, driver_memory: str) -> dict[str, object]:
    config = sample_config(rows, work)
    results: dict[str, object] = {}
    for engine in ("duckdb", "spark"):
        chosen = config.with_engine(engine)
        if engine == "spark":
            chosen.spark = SparkConfig(
                master=master,
                conf={"spark.driver.memory": driver_memory, "spark.ui.enabled": "false"},
            )
        started = time.perf_counter()
        result = unify(chosen, work / f"out-{engine}-{rows}", StageLog(engine, rows))
        results[engine] = {
            "seconds": round(time.perf_counter() - started, 1),
            "stages": result.stages,
            "stages_engine": result.manifest["stages_engine"],
            "customers": result.counts["customers"],
            "candidate_pairs": result.counts["candidate_pairs"],
        }
        results["rows"] = result.counts["rows_in"]
    duck, spark = work / f"out-duckdb-{rows}", work / f"out-spark-{rows}"
    results["same_clusters"] = partition(duck) == partition(spark)
    profiles = [pl.read_parquet(out / "profiles.parquet") for out in (duck, spark)]
    # Means of doubles are summed in each engine's own order: compared to the last bits apart.
    means = ["csat_mean", "sentiment_mean"]
    results["same_profiles"] = profiles[1].drop(means).equals(profiles[0].drop(means))
    results["means_max_gap"] = max(
        (profiles[1][m] - profiles[0][m]).abs().max() or 0.0 for m in means
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work-spark")
    parser.add_argument("--keep", action="store_true", help="keep generated data and outputs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        print(json.dumps(run(rows, args.work, args.master, args.driver_memory)), flush=True)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
