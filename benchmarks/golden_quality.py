"""Golden-record quality: how many golden values are the true person's?

    python benchmarks/golden_quality.py                    # the bundled sample (2,000 people)
    python benchmarks/golden_quality.py --people 20000     # and a generated one, seed 11

The sample generator knows each person's true name, email, mobile, current address and date
of birth (`cxunify.sample.true_people`). For each dataset this runs `unify` with the sample
config and scores every customer's golden fields against the person holding most of its
records (`cxunify.evaluate.golden_accuracy`): per field, the share that are the true value
once both are standardised as a run standardises them. Prints one JSON line per dataset.
Not part of the test suite; deterministic, so two commits can be compared field by field.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from cxunify.config import load_config
from cxunify.evaluate import golden_accuracy
from cxunify.pipeline import unify
from cxunify.sample import generate_sample, true_people

ROOT = Path(__file__).resolve().parents[1]
# How the bundled sample was made (configs/sample.yaml says so).
BUNDLED = (2000, 7)


def run(people: int, seed: int, work: Path, bundled: bool) -> dict[str, object]:
    name = "bundled" if bundled else f"people-{people}-seed-{seed}"
    config_path = ROOT / "configs" / "sample.yaml"
    data = ROOT / "sample_data"
    if not bundled:
        data = work / f"data-{name}"
        if not (data / "truth.csv").exists():
            generate_sample(people, seed, data)
        text = config_path.read_text(encoding="utf-8").replace("../sample_data/", f"{data}/")
        config_path = work / f"{name}.yaml"
        config_path.write_text(text, encoding="utf-8")
    out = work / f"out-{name}"
    unify(load_config(config_path), out)
    accuracy = golden_accuracy(out, data / "truth.csv", true_people(people, seed))
    return {
        "data": name,
        "customers": accuracy.customers,
        "overall": round(accuracy.overall, 4),
        **{field: round(share, 4) for field, share in accuracy.fields.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, nargs="*", default=[], help="generated samples")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-bundled", action="store_true", help="skip the bundled sample")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "benchmarks" / "work" / "golden-quality"
    )
    parser.add_argument("--keep", action="store_true", help="keep generated data and outputs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.no_bundled:
        print(json.dumps(run(*BUNDLED, args.work, bundled=True)), flush=True)
    for people in args.people:
        print(json.dumps(run(people, args.seed, args.work, bundled=False)), flush=True)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
