"""cxunify called as a library: what it takes and what it raises, as its docstrings say.

DuckDB ran a signal's Python handler inside a query, then raised its own 'Query interrupted'
error: a scheduler's handler (Airflow's task timeout raises an exception of its own) reached
the caller as a RuntimeError, its exception lost, and Ctrl-C was no KeyboardInterrupt."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from cxunify import load_config
from tests.conftest import ROOT


class TaskTimeout(BaseException):
    """What a scheduler's signal handler raises."""


@pytest.mark.parametrize(
    ("signum", "handler", "raised"),
    [
        (signal.SIGALRM, "timed_out", TaskTimeout),
        # (Python's own Ctrl-C handler, set here: a job started in the background by a
        # shell, as CI may be, inherits SIGINT ignored)
        (signal.SIGINT, "default", KeyboardInterrupt),
    ],
)
def test_a_signal_inside_a_query_reaches_the_caller_as_raised(signum, handler, raised):
    """A query of many seconds, the signal a moment into it: the handler's exception comes
    out as raised (Ctrl-C's KeyboardInterrupt), at once, and the engine is usable after."""
    import time

    from cxunify.engine import DuckDBEngine

    def timed_out(signum: int, frame: object) -> None:
        raise TaskTimeout(f"signal {signum}")

    before = signal.signal(
        signum, timed_out if handler == "timed_out" else signal.default_int_handler
    )
    engine = DuckDBEngine()
    try:
        threading.Timer(0.3, os.kill, (os.getpid(), signum)).start()
        began = time.monotonic()
        with pytest.raises(raised):
            engine.scalar("SELECT sum(hash(range)) FROM range(1000000000000)")
        assert time.monotonic() - began < 10
        assert engine.scalar("SELECT 42") == 42
    finally:
        engine.close()
        signal.signal(signum, before)


def test_importing_cxunify_loads_no_engine():
    """`import cxunify` loaded DuckDB, pyarrow and every stage (0.8 s, 94 MB), which a
    scheduler parsing a DAG file that imports it paid on every parse."""
    import subprocess
    import sys

    probe = (
        "import sys, cxunify; heavy = {'duckdb', 'pyarrow', 'polars', 'cxunify.pipeline'}; "
        "print(sorted(heavy & set(sys.modules))); "
        "from cxunify import CxunifyError, LockedError, QualityGateError, UserError, unify; "
        "print(issubclass(LockedError, UserError), issubclass(QualityGateError, CxunifyError), "
        "callable(unify), cxunify.explain.__name__)"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines() == ["[]", "True True True cxunify.explain"]


def test_paths_may_be_given_as_text(sample_out: Path):
    """`explain("out", ...)` stopped at "unsupported operand type(s) for /: 'str' and 'str'",
    `load_config("cfg.yaml")` at "'str' object has no attribute 'is_dir'"."""
    from cxunify.explain import explain
    from cxunify.query import run_query
    from cxunify.verify import verify_output

    config = load_config(str(ROOT / "configs" / "sample.yaml"))
    assert [s.name for s in config.sources] == ["crm", "orders", "social", "tickets"]
    result = run_query(str(sample_out), "SELECT min(customer_id) AS c FROM profiles")
    try:
        [customer] = result.reader.read_all().column("c").to_pylist()
    finally:
        result.close()
    assert explain(str(sample_out), customer_id=customer).customer_id == customer
    assert all(check.problem is None for check in verify_output(str(sample_out)))


def test_a_damaged_output_is_an_output_error_naming_the_file(sample_out: Path, tmp_path: Path):
    """A truncated Parquet file of an output raised DuckDB's InvalidInputException (several
    lines, with SQL in them) through the API; the CLI said it in one line."""
    import shutil

    from cxunify.errors import OutputError
    from cxunify.explain import explain

    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    damaged = out / "identity_map.parquet"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(OutputError, match=r"identity_map\.parquet: cannot be read"):
        explain(out, record="crm:C00000001")


def test_the_reading_functions_take_text_paths_and_name_a_damaged_file(
    sample_out: Path, tmp_path: Path
):
    import shutil

    from cxunify.diff import diff_outputs, write_changes
    from cxunify.errors import OutputError
    from cxunify.evaluate import assess
    from cxunify.report import build_report

    truth = str(ROOT / "sample_data" / "truth.csv")
    assert assess(str(sample_out), truth).quality.predicted_customers > 2000
    changes = diff_outputs(str(sample_out), str(sample_out))
    write_changes(changes, str(tmp_path / "changes.csv"))
    assert (tmp_path / "changes.csv").is_file()
    assert build_report(str(sample_out), str(tmp_path / "r.html")).bytes > 0
    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    (out / "profiles.parquet").write_bytes(b"")
    for call in (
        lambda: diff_outputs(sample_out, out),
        lambda: build_report(out, tmp_path / "r2.html"),
    ):
        with pytest.raises(OutputError, match=r"profiles\.parquet"):
            call()
