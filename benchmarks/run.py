"""cxunify beside Splink on the same generated customer data, one size per invocation.

    pip install -e '.[bench]'
    python benchmarks/run.py --people 22124      # about 100k input rows
    python benchmarks/run.py --people 221239     # about 1M
    python benchmarks/run.py --people 2212389    # about 10M

Generates the four exports with `cxunify sample --people N --seed 11`, then runs, each in a
child process of its own so that its peak RSS is its own:

* `cxunify unify --config <sample mappings> --out <dir> --json`, end to end (ingest to profiles
  written), and
* `benchmarks/splink_peer.py`, Splink on DuckDB with the settings documented there (load and
  standardise, train, predict, cluster), which writes its clusters as an identity map.

Both identity maps are scored against the generator's truth file by the same evaluator
(`cxunify.evaluate`). Prints one JSON object and a Markdown row per tool; `--json FILE` also
saves the object. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from cxunify.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]
SEED = 11


def child(command: list[str], log: Path) -> dict[str, Any]:
    """Run `command` with stdout to `log` and stderr to `log`.err; return wall seconds, peak
    RSS and the exit code."""
    started = time.perf_counter()
    with log.open("w") as out, log.with_suffix(".err").open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        # CPU seconds are what a busy machine distorts least: compare tools by them too.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
        "exit_code": os.waitstatus_to_exitcode(status),
    }


def summary(log: Path) -> dict[str, Any]:
    """The JSON object the child printed on stdout."""
    try:
        return json.loads(log.read_text())
    except json.JSONDecodeError:
        raise SystemExit(f"{log}: no JSON summary; see {log.with_suffix('.err')}") from None


def generate(people: int, data: Path) -> dict[str, Any]:
    if (data / "truth.csv").exists():
        return {"seconds": None, "reused": True}
    data.mkdir(parents=True, exist_ok=True)
    run = child(
        [sys.executable, "-m", "cxunify", "sample", "--people", str(people), "--seed", str(SEED),
         "--out", str(data)],
        data.parent / "generate.log",
    )
    if run["exit_code"] != 0:
        raise SystemExit(f"cxunify sample failed; see {data.parent / 'generate.err'}")
    return run


def write_config(data: Path, work: Path) -> Path:
    """The bundled sample config's mappings, pointed at the generated files."""
    config = yaml.safe_load((ROOT / "configs" / "sample.yaml").read_text())
    for source in config["sources"]:
        source["path"] = str(data / Path(source["path"]).name)
    path = work / "cxunify.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_cxunify(config: Path, out: Path, work: Path) -> dict[str, Any]:
    log = work / "cxunify.log"
    run = child(
        [sys.executable, "-m", "cxunify", "unify", "--config", str(config), "--out", str(out),
         "--json", "--quiet"],
        log,
    )
    if run["exit_code"] != 0:
        raise SystemExit(f"cxunify unify failed; see {log.with_suffix('.err')}")
    result = summary(log)
    return {
        **run,
        "stages_seconds": result["stages_seconds"],
        "candidate_pairs": result["counts"]["candidate_pairs"],
        "links": result["counts"]["links"],
        "rows": result["counts"]["rows_in"],
    }


def run_splink(data: Path, out: Path, work: Path, extra: list[str]) -> dict[str, Any]:
    log = work / "splink.log"
    run = child(
        [sys.executable, str(ROOT / "benchmarks" / "splink_peer.py"), "--data", str(data),
         "--work", str(out), "--no-score", *extra],
        log,
    )
    if run["exit_code"] != 0:
        raise SystemExit(f"splink_peer.py failed; see {log.with_suffix('.err')}")
    result = summary(log)
    return {
        **run,
        "stages_seconds": result["stages_seconds"],
        "candidate_pairs": result.get("candidate_pairs"),
        "links": result.get("links"),
    }


def quality(out: Path, truth: Path) -> dict[str, Any]:
    q = evaluate(out, truth)
    return {
        "pairwise_precision": round(q.pairwise_precision, 4),
        "pairwise_recall": round(q.pairwise_recall, 4),
        "pairwise_f1": round(q.pairwise_f1, 4),
        "bcubed_f1": round(q.bcubed_f1, 4),
        "largest_cluster": q.largest_cluster,
        "predicted_customers": q.predicted_customers,
        "true_customers": q.true_customers,
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("cxunify", "duckdb", "splink", "polars"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def machine() -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cores": os.cpu_count(), "ram_gib": round(memory / 2**30, 1),
            "system": platform.platform()}


def markdown_row(name: str, people: int, result: dict[str, Any]) -> str:
    stages = ", ".join(f"{k} {v}" for k, v in result["stages_seconds"].items())
    q = result["quality"]
    pairs = result.get("candidate_pairs")
    cells = [
        name, f"{people:,}", result["seconds"], result["cpu_seconds"], result["peak_rss_gib"],
        f"{pairs:,}" if isinstance(pairs, int) else "-",
        q["pairwise_precision"], q["pairwise_recall"], q["pairwise_f1"], q["bcubed_f1"],
        q["largest_cluster"], stages,
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


HEADER = (
    "| tool | people | seconds | CPU seconds | peak RSS GiB | candidate pairs | P | R | F1 "
    "| B-cubed F1 | largest cluster | stage seconds |"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, required=True,
                        help="people to generate (about 4.5 input rows each)")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument("--skip-splink", action="store_true", help="run cxunify only")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--memory-limit", help="cxunify's DuckDB memory limit (default: its own, 2GB)"
    )
    parser.add_argument(
        "--splink-memory-limit", help="Splink's DuckDB memory limit (default: 80%% of RAM)"
    )
    parser.add_argument(
        "--splink-predict-chunks", type=int, default=1,
        help="Splink's prediction in N x N chunks, to bound its memory at 10M rows",
    )
    args = parser.parse_args()

    work = args.work / f"people-{args.people}"
    data = work / "data"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "people": args.people, "seed": SEED, "machine": machine(), "versions": versions(),
        "generate": generate(args.people, data),
    }
    truth = data / "truth.csv"
    config = write_config(data, work)
    if args.memory_limit:
        os.environ["CXUNIFY_MEMORY_LIMIT"] = args.memory_limit
    splink_options = ["--predict-chunks", str(args.splink_predict_chunks)]
    if args.splink_memory_limit:
        splink_options += ["--memory-limit", args.splink_memory_limit]
    results["options"] = {"memory_limit": args.memory_limit,
                          "splink_memory_limit": args.splink_memory_limit,
                          "splink_predict_chunks": args.splink_predict_chunks}
    cx = run_cxunify(config, work / "cxunify-out", work)
    cx["quality"] = quality(work / "cxunify-out", truth)
    results["cxunify"] = cx
    results["rows"] = cx["rows"]
    if not args.skip_splink:
        sp = run_splink(data, work / "splink-out", work, splink_options)
        sp["quality"] = quality(work / "splink-out", truth)
        results["splink"] = sp
        results["ratios"] = {
            "splink_seconds_over_cxunify": round(sp["seconds"] / cx["seconds"], 2),
            "splink_cpu_over_cxunify": round(sp["cpu_seconds"] / cx["cpu_seconds"], 2),
            "splink_rss_over_cxunify": round(sp["peak_rss_gib"] / cx["peak_rss_gib"], 2),
            "f1_cxunify_minus_splink": round(
                cx["quality"]["pairwise_f1"] - sp["quality"]["pairwise_f1"], 4),
        }
    print(json.dumps(results))
    print(HEADER)
    print(markdown_row("cxunify", args.people, cx))
    if "splink" in results:
        print(markdown_row("Splink", args.people, results["splink"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
