"""The fixed cost of a run: a zero-config `unify` of a few rows, and where its statements go.

    python benchmarks/small_run.py [--rows 5] [--repeat 4] [--work /tmp/cxunify-bench-small]

Takes the first `--rows` rows of each bundled sample export, runs `cxunify unify --crm ...
--transactions ... --social ... --support ...` on them through the CLI (in this process, as
the tests do) `--repeat` times, and prints each run's seconds, then, for the last run, the
seconds its DuckDB statements took by the module that made them, and the slowest statements.
The test suite makes some hundreds of runs like this one: their fixed cost is most of its
time. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import time
import traceback
from pathlib import Path

from typer.testing import CliRunner

from cxunify.cli import app
from cxunify.engine.duckdb import DuckDBEngine

ROOT = Path(__file__).resolve().parents[1]
EXPORTS = {
    "--crm": "crm.csv",
    "--transactions": "orders.csv",
    "--social": "social.ndjson",
    "--support": "tickets.csv",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/cxunify-bench-small"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    flags: list[str] = []
    for flag, name in EXPORTS.items():
        # Lines, not records: the first rows of these files hold no quoted line break.
        lines = (ROOT / "sample_data" / name).read_text(encoding="utf-8").splitlines()
        header = 0 if name.endswith(".ndjson") else 1
        (args.work / name).write_text("\n".join(lines[: args.rows + header]) + "\n")
        flags += [flag, str(args.work / name)]

    statements: list[tuple[float, str, str]] = []

    def timed(method):
        def run(self, sql, params=None):
            began = time.perf_counter()
            result = method(self, sql, params)
            caller = next(
                frame
                for frame in reversed(traceback.extract_stack()[:-1])
                if "cxunify" in frame.filename and "engine" not in frame.filename
            )
            where = f"{Path(caller.filename).stem}.{caller.name}"
            statements.append((time.perf_counter() - began, where, re.sub(r"\s+", " ", sql)))
            return result

        return run

    for name in ("execute", "rows", "scalar", "arrow"):
        setattr(DuckDBEngine, name, timed(getattr(DuckDBEngine, name)))
    out = args.work / "out"
    for i in range(args.repeat):
        statements.clear()
        shutil.rmtree(out, ignore_errors=True)
        began = time.perf_counter()
        result = CliRunner().invoke(app, ["unify", *flags, "--out", str(out), "-q"])
        assert result.exit_code == 0, result.stderr
        print(f"run {i + 1}: {time.perf_counter() - began:.2f} s")
    total = sum(s for s, _, _ in statements)
    print(f"last run: {len(statements)} statements, {total:.2f} s in them")
    by_module: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for seconds, where, _ in statements:
        by_module[where.split(".")[0]] += seconds
        counts[where.split(".")[0]] += 1
    for module, seconds in by_module.most_common():
        print(f"{seconds:7.3f} s {counts[module]:4d} statements  {module}")
    print("slowest statements:")
    for seconds, where, sql in sorted(statements, reverse=True)[:10]:
        print(f"{seconds:7.3f} s  {where}: {sql[:100]}")


if __name__ == "__main__":
    main()
