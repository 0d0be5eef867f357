"""Where an update's time goes: stages, and each Parquet file it writes.

    python benchmarks/update_writes.py [--work /tmp/cxunify-bench-incremental]

Run after `benchmarks/incremental.py` (same `--work`): copies its night one (the output the
update starts from) to `<work>/out_writes`, runs the update of tonight's rows once, and prints
the update's stages, then the seconds spent writing each output and state file and the
SHA-256 of the files read and written. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from cxunify import output
from cxunify.config import load_config
from cxunify.engine.duckdb import DuckDBEngine
from cxunify.update import update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cxunify-bench-incremental"))
    args = parser.parse_args()
    out = args.work / "out_writes"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(args.work / "night_one", out)
    seconds: dict[str, float] = {}

    def timed(label: str, work):
        began = time.perf_counter()
        result = work()
        seconds[label] = round(seconds.get(label, 0.0) + time.perf_counter() - began, 2)
        return result

    write_parquet, sha256_of = DuckDBEngine.write_parquet, output.sha256_of

    def write(self, query, path, compression="zstd"):
        # The state's files are named as outputs are: keep their folder in the label.
        parts = Path(str(path)).parts
        label = parts[-1] if parts[-2].startswith(".") else "/".join(parts[-2:])
        return timed(f"write {label}", lambda: write_parquet(self, query, path, compression))

    DuckDBEngine.write_parquet = write  # type: ignore[method-assign]
    output.sha256_of = lambda path: timed("sha256 of files", lambda: sha256_of(path))
    began = time.perf_counter()
    result = update(load_config(args.work / "tonight.yaml"), out)
    print(json.dumps({
        "seconds": round(time.perf_counter() - began, 2),
        "stages": {name: round(s, 2) for name, s in result.stages.items()},
        "files": dict(sorted(seconds.items(), key=lambda item: -item[1])),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
