"""Matching quality on small files: an analyst's CRM of 30 to 500 people and its orders.

    python benchmarks/small_files.py                  # the table: 20 runs, about a minute
    python benchmarks/small_files.py --reference      # and the bundled sample, Febrl3, Febrl4

For each size and seed, generates sample exports with `cxunify sample` (about 4.5 rows per
person), runs `cxunify unify` through the Python API with the sample config's mappings and,
for the first seed, zero-config too (the four files named by kind, as `--crm ...
--transactions ...` does: it maps the same columns and has given the same figures, so the
other seeds run it only with `--zero-config-all`), and scores identity_map against the truth
file: pairwise and B-cubed precision, recall and F1, and the pairs wrongly merged and missed.
`--reference` adds the runs the small files are compared with (about 40 s more on a quiet
machine). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from cxunify.config import Kind, load_config
from cxunify.evaluate import Quality, evaluate
from cxunify.infer import config_from_flags
from cxunify.pipeline import unify
from cxunify.sample import generate_sample

ROOT = Path(__file__).resolve().parents[1]
SIZES = (30, 60, 120, 250, 500)
SEEDS = (1, 2, 3)


def _config(data: Path, work: Path, zero_config: bool):  # type: ignore[no-untyped-def]
    if zero_config:
        flags = {
            Kind.crm: [str(data / "crm.csv")],
            Kind.transactions: [str(data / "orders.csv")],
            Kind.social: [str(data / "social.ndjson")],
            Kind.support: [str(data / "tickets.csv")],
        }
        config, _ = config_from_flags(flags, work)
        return config
    text = (ROOT / "configs" / "sample.yaml").read_text(encoding="utf-8")
    path = work / "small.yaml"
    path.write_text(text.replace("../sample_data/", f"{data}/"), encoding="utf-8")
    return load_config(path)


def _run(config, out: Path, truth: Path) -> Quality:  # type: ignore[no-untyped-def]
    unify(config, out)
    return evaluate(out, truth)


def _row(label: str, q: Quality) -> str:
    wrong = q.predicted_pairs - q.correct_pairs
    missed = q.true_pairs - q.correct_pairs
    return (
        f"| {label} | {q.records} | {q.pairwise_precision:.4f} | {q.pairwise_recall:.4f} | "
        f"{q.pairwise_f1:.4f} | {q.bcubed_f1:.4f} | {wrong} | {missed} |"
    )


def _total(label: str, qs: list[Quality]) -> str:
    true_pairs = sum(q.true_pairs for q in qs)
    predicted = sum(q.predicted_pairs for q in qs)
    correct = sum(q.correct_pairs for q in qs)
    p = correct / predicted if predicted else 1.0
    r = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    records = sum(q.records for q in qs)
    bcubed = sum(q.bcubed_f1 * q.records for q in qs) / records
    return (
        f"| **{label}** | {records} | {p:.4f} | {r:.4f} | {f1:.4f} | {bcubed:.4f} | "
        f"{predicted - correct} | {true_pairs - correct} |"
    )


HEADER = (
    "| run | records | pairwise P | pairwise R | pairwise F1 | B-cubed F1 | pairs wrongly "
    "merged | pairs missed |\n|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--reference", action="store_true", help="bundled sample and Febrl too")
    parser.add_argument(
        "--zero-config-all", action="store_true", help="zero-config for every seed, not the first"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="cxunify-small-") as tmp:
        work = Path(tmp)
        totals: dict[str, list[Quality]] = {"config": [], "zero-config": []}
        for people in args.sizes:
            for seed in args.seeds:
                data = work / f"data-{people}-{seed}"
                generate_sample(people, seed, data)
                zero = args.zero_config_all or seed == args.seeds[0]
                for mode in ("config", "zero-config") if zero else ("config",):
                    out = work / f"out-{people}-{seed}-{mode}"
                    config = _config(data, work, mode == "zero-config")
                    q = _run(config, out, data / "truth.csv")
                    totals[mode].append(q)
                    print(_row(f"{people} people, seed {seed}, {mode}", q), flush=True)
                    shutil.rmtree(out)
        for mode, qs in totals.items():
            print(_total(f"all small files, {mode} ({len(qs)} runs)", qs))
        if args.reference:
            # sample.yaml reads ../sample_data/ relative to itself; Febrl is written first.
            sample = _run(
                load_config(ROOT / "configs" / "sample.yaml"),
                work / "out-sample",
                ROOT / "sample_data" / "truth.csv",
            )
            print(_row("bundled sample (2,000 people)", sample))
            from cxunify.febrl import write_febrl

            febrl = work / "data" / "febrl"
            write_febrl(febrl)
            for name in ("febrl3", "febrl4"):
                text = (ROOT / "configs" / f"{name}.yaml").read_text(encoding="utf-8")
                path = work / f"{name}.yaml"
                path.write_text(text.replace("../data/febrl/", f"{febrl}/"), encoding="utf-8")
                q = _run(load_config(path), work / f"out-{name}", febrl / f"{name}_truth.csv")
                print(_row(name, q))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
