"""Incremental update against a full run: time, and whether the clusters are the same.

    python benchmarks/incremental.py --people 20000 --new-share 0.01 --repeat 3 [--whole-exports]

Generates sample exports with `cxunify sample`, holds back `--new-share` of the CRM, order
and social rows as "tonight's" rows, fits the model on the rest, and times

* night one: a full `unify --model` on the rest,
* the update: `cxunify update` with only tonight's rows (with `--whole-exports`, with the
  whole CRM, order and social files again, as a system that exports its whole table each
  night sends them: most rows are unchanged),
* the reference: a full `unify --model` on all rows (what the update must equal),
* with `--with-training`, also a plain full `unify` on all rows, fitting its own model as a
  nightly job without `update` would (its clusters may differ: another model).

Reports seconds per stage (best of `--repeat` runs) and whether the update's customers
equal the full run's as partitions of the records. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import duckdb

from cxunify.config import load_config
from cxunify.pipeline import train, unify
from cxunify.sample import generate_sample
from cxunify.update import update

ROOT = Path(__file__).resolve().parents[1]
HELD_BACK = {"crm": "crm.csv", "orders": "orders.csv", "social": "social.ndjson"}
ID_COLUMNS = {"crm": "contact_id", "orders": "order_id", "social": "handle"}


def split_rows(source: Path, id_column: str, base: Path, tonight: Path, every: int) -> int:
    """Every `every`-th record goes to `tonight`, the rest to `base`; return records held.

    CSV is split by the csv module (some fields hold quoted line breaks), NDJSON by lines.
    The generator repeats some ids on purpose (a full run rejects the repeats, an update
    treats a known id as a change), so only records with an id of their own are held back.
    """
    if source.suffix == ".ndjson":
        lines = [line + "\n" for line in source.read_text(encoding="utf-8").split("\n") if line]
        ids = [_json_id(line, id_column) for line in lines]
        held = _held(ids, every)
        base.write_text("".join(x for i, x in enumerate(lines) if i not in held))
        tonight.write_text("".join(lines[i] for i in sorted(held)))
        return len(held)
    with source.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    position = header.index(id_column)
    held = _held([row[position] if len(row) > position else None for row in rows], every)
    for path, chosen in (
        (base, [r for i, r in enumerate(rows) if i not in held]),
        (tonight, [rows[i] for i in sorted(held)]),
    ):
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([header, *chosen])
    return len(held)


def _json_id(line: str, id_column: str) -> object:
    try:
        return json.loads(line).get(id_column)
    except (ValueError, AttributeError):
        return None


def _held(ids: list, every: int) -> set[int]:
    seen = Counter(ids)
    return {
        i
        for i, value in enumerate(ids)
        if i % every == every // 2 and value is not None and seen[value] == 1
    }


def config_text(data: Path, files: dict[str, Path], only: set[str] | None = None) -> str:
    text = (ROOT / "configs" / "sample.yaml").read_text().replace("../sample_data/", f"{data}/")
    for name, path in files.items():
        text = text.replace(f"{data}/{HELD_BACK[name]}", str(path))
    if only is None:
        return text
    head, rest = text.split("sources:\n", 1)
    blocks = rest.split("\n  - name: ")
    tail = blocks[-1][blocks[-1].index("standardize:") :]
    blocks[-1] = blocks[-1][: blocks[-1].index("standardize:")]
    kept = [b if i == 0 else "  - name: " + b for i, b in enumerate(blocks)]
    kept = [b for b in kept if b.strip().removeprefix("- name: ").split("\n")[0] in only]
    return head + "sources:\n" + "\n".join(b.rstrip("\n") for b in kept) + "\n\n" + tail


def partition(out: Path) -> set[frozenset[str]]:
    rows = duckdb.sql(
        f"SELECT list(source || ':' || source_record_id) FROM '{out}/identity_map.parquet' "
        "GROUP BY customer_id"
    ).fetchall()
    return {frozenset(m) for (m,) in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the timings")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cxunify-bench-incremental"))
    parser.add_argument(
        "--whole-exports", action="store_true", help="tonight's files hold every row again"
    )
    parser.add_argument(
        "--with-training",
        action="store_true",
        help="also time a full run that fits its own model, as plain `cxunify unify` does",
    )
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    data = args.work / "data"
    generate_sample(args.people, 7, data)
    every = round(1 / args.new_share)
    base_files, new_files, held = {}, {}, 0
    for name, file in HELD_BACK.items():
        base_files[name] = args.work / f"base_{file}"
        new_files[name] = args.work / f"new_{file}"
        held += split_rows(data / file, ID_COLUMNS[name], base_files[name], new_files[name], every)
    configs = {}
    for label, text in (
        ("base", config_text(data, base_files)),
        ("tonight", config_text(data, {} if args.whole_exports else new_files, set(HELD_BACK))),
        ("all", config_text(data, {})),
    ):
        configs[label] = args.work / f"{label}.yaml"
        configs[label].write_text(text)
    model = train(load_config(configs["base"]))
    results = {"people": args.people, "rows_held_back": held, "whole_exports": args.whole_exports}

    def timed(label: str, action, repeat: int = 1, prepare=None) -> None:
        """Best of `repeat` runs: the machine may be shared, and the minimum is the least
        disturbed measurement. `prepare` runs before each, untimed."""
        best = None
        for _ in range(repeat):
            if prepare is not None:
                prepare()
            began = time.perf_counter()
            result = action()
            seconds = round(time.perf_counter() - began, 2)
            if best is None or seconds < best["seconds"]:
                best = {"seconds": seconds, "rows": result.counts["rows_in"]}
                best["stages"] = result.stages
                if "update" in result.manifest:
                    best["update"] = result.manifest["update"]
        results[label] = best

    out, full = args.work / "out", args.work / "full"
    timed("night_one_full", lambda: unify(load_config(configs["base"]), out, model=model))
    night_one = args.work / "night_one"
    shutil.copytree(out, night_one)

    def restore_night_one() -> None:
        shutil.rmtree(out)
        shutil.copytree(night_one, out)

    timed(
        "update",
        lambda: update(load_config(configs["tonight"]), out),
        args.repeat,
        prepare=restore_night_one,
    )
    timed(
        "full_on_all_rows",
        lambda: unify(load_config(configs["all"]), full, model=model),
        args.repeat,
    )
    if args.with_training:
        # The full run a nightly job would run without `update`: `cxunify unify`, which fits
        # its model on the data each time (no --model), from an empty output folder.
        trained = args.work / "trained"
        timed(
            "full_with_training",
            lambda: unify(load_config(configs["all"]), trained),
            args.repeat,
            prepare=lambda: shutil.rmtree(trained, ignore_errors=True),
        )
        results["update_share_of_full_with_training"] = round(
            results["update"]["seconds"] / results["full_with_training"]["seconds"], 3
        )
    results["same_clusters"] = partition(out) == partition(full)
    results["update_share_of_full"] = round(
        results["update"]["seconds"] / results["full_on_all_rows"]["seconds"], 3
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
