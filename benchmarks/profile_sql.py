"""Where a run spends its time: every SQL statement of `cxunify unify`, timed, slowest first.

    python benchmarks/profile_sql.py --config benchmarks/work/people-221239/cxunify.yaml \
        --out /tmp/profiled [--top 30] [--memory-limit 200MB]
    python benchmarks/profile_sql.py --config tonight.yaml --update night_one/ --out /tmp/updated

Runs the pipeline in this process with the DuckDB engine's statements wrapped in a timer and
prints, per stage, wall and CPU seconds (CPU counts every thread, so on a busy machine it is the
steadier figure), then the `--top` slowest statements with their stage. With a low
`--memory-limit` it also names the statement that could not stay within it (the way to find an
operator that cannot spill: 1M rows with 200MB behaves roughly like 10M rows with 2GB).
With `--update PREVIOUS` it times `cxunify update` instead: PREVIOUS (a finished output, left
as it is) is copied to `--out` and updated there with the config's exports.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from cxunify import pipeline, update
from cxunify.config import load_config
from cxunify.engine import duckdb as engine_module


class Timings:
    """Statement timings, attributed to the stage running at the time."""

    def __init__(self) -> None:
        self.stage = "-"
        self.statements: list[tuple[float, float, str, str]] = []

    # the pipeline's progress protocol
    def start(self, stage: str, description: str) -> None:
        self.stage = stage

    def advance(self, stage: str, fraction: float) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass

    def wrap(self, method: Any) -> Any:
        timings = self

        def timed(engine: Any, sql: str, params: Any = None) -> Any:
            began, cpu = time.perf_counter(), time.process_time()
            try:
                return method(engine, sql, params)
            except Exception as exc:
                print(f"FAILED in {timings.stage}: {type(exc).__name__}: {exc}\n{sql}")
                raise
            finally:
                timings.statements.append(
                    (
                        time.perf_counter() - began,
                        time.process_time() - cpu,
                        timings.stage,
                        " ".join(sql.split()),
                    )
                )

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--memory-limit", help="DuckDB memory limit for this run, e.g. 200MB")
    parser.add_argument("--update", type=Path, metavar="PREVIOUS", help="time an update of it")
    args = parser.parse_args()
    if args.memory_limit:
        os.environ["CXUNIFY_MEMORY_LIMIT"] = args.memory_limit
    timings = Timings()
    for name in ("execute", "rows", "scalar", "arrow"):
        method = getattr(engine_module.DuckDBEngine, name)
        setattr(engine_module.DuckDBEngine, name, timings.wrap(method))
    config = load_config(args.config)
    if args.update:
        shutil.rmtree(args.out, ignore_errors=True)
        shutil.copytree(args.update, args.out)
    began, cpu = time.perf_counter(), time.process_time()
    if args.update:
        result = update.update(config, args.out, progress=timings)
    else:
        result = pipeline.unify(config, args.out, progress=timings)
    print(
        f"total: {time.perf_counter() - began:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
        f"(stages: {result.stages})"
    )
    by_stage: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for wall, cpu_seconds, stage, _ in timings.statements:
        by_stage[stage][0] += wall
        by_stage[stage][1] += cpu_seconds
    print("SQL by stage (wall s, CPU s):")
    for stage, (wall, cpu_seconds) in by_stage.items():
        print(f"  {stage:12s} {wall:7.2f} {cpu_seconds:7.2f}")
    print(f"slowest {args.top} statements (wall s, CPU s, stage):")
    for wall, cpu_seconds, stage, sql in sorted(timings.statements, reverse=True)[: args.top]:
        print(f"  {wall:7.2f} {cpu_seconds:7.2f} {stage:12s} {sql[:140]}")


if __name__ == "__main__":
    main()
