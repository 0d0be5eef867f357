"""Shared fixtures: real files in tmp dirs, real DuckDB, the CLI run in-process."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pytest
from hypothesis import settings
from typer.testing import CliRunner

from cxunify.cli import app

# Property tests draw the same examples on every run (a failure found once is found again,
# in CI too); deadlines are off, as a shared CI machine times erratically.
settings.register_profile("cxunify", derandomize=True, deadline=None)
settings.load_profile("cxunify")

# The standardisation macros' cache (cxunify.standardize.cache) in a folder of this process's
# own, not the user's: no test reads a file an earlier session left, and each xdist worker
# writes it once. The CLI's subprocesses inherit it.
os.environ["CXUNIFY_CACHE_DIR"] = tempfile.mkdtemp(prefix="cxunify-cache-")
atexit.register(shutil.rmtree, os.environ["CXUNIFY_CACHE_DIR"], ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"

# The longest test files, longest first (each file runs whole on one xdist worker). Collected
# first, pytest-xdist hands them out at the start and the workers share the short files at the
# end, so no worker runs a long file alone at the end while the others are idle. The order
# holds because addopts says --no-loadscope-reorder: by default xdist (3.5 and later) hands
# out the files with the most tests first, which put the Spark run 14th and the update, gate,
# safety and quality files (a dozen tests each, with full pipeline runs) among the last. CPU
# seconds on one core: Spark minutes, test_update about 90, test_safety and test_quality 50,
# the CLI, ids, ingest and gates files 40 or more; a file growing past these belongs here.
LONGEST_FIRST = (
    "test_spark.py",
    "test_update.py",
    "test_cli_update.py",
    "test_cli_commands.py",
    "test_ids.py",
    "test_ingest.py",
    "test_gates.py",
    "test_safety.py",
    "test_quality.py",
    "test_explain.py",
    "test_diff.py",
    "test_standardize_phones.py",
    "test_standardize_names.py",
    "test_evaluate.py",
    "test_excel.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: else as collected


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner):
    """Invoke the CLI in-process; returns the click Result (exit_code, stdout, stderr)."""

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


SAMPLE_FLAGS = (
    "--crm", SAMPLE / "crm.csv",
    "--transactions", SAMPLE / "orders.csv",
    "--social", SAMPLE / "social.ndjson",
    "--support", SAMPLE / "tickets.csv",
)  # fmt: skip


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh connection per test module with the name, address and date macros."""
    from cxunify.standardize import addresses, dates, names

    connection = duckdb.connect()
    for module in (names, addresses, dates):
        module.install(connection)
    yield connection
    connection.close()


def one(con: duckdb.DuckDBPyConnection, macro: str, value: object) -> object:
    """The value of a one-argument macro for one input."""
    return con.execute(f"SELECT {macro}($v)", {"v": value}).fetchone()[0]


def each(con: duckdb.DuckDBPyConnection, select: str, **columns: Sequence[object]) -> list[tuple]:
    """The row of ``select`` (expressions over the named columns) for each row of the columns,
    in their order, in one statement. Binding the standardisation macros costs 100 ms or more
    a statement, whatever its rows: the property tests check lists of values at a time."""
    (size,) = {len(column) for column in columns.values()}
    if not size:
        return []
    unnests = ", ".join(f"unnest(${name}) AS {name}" for name in columns)
    rows = con.execute(
        f"SELECT {select} FROM (SELECT {unnests}, unnest(range($n_)) AS i_) ORDER BY i_",
        {**{name: list(column) for name, column in columns.items()}, "n_": size},
    ).fetchall()
    assert len(rows) == size
    return rows


@pytest.fixture(scope="session")
def std_con() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every standardisation macro installed."""
    from cxunify.standardize import install_macros

    con = duckdb.connect()
    install_macros(con)
    return con


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture(scope="session")
def sample_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample unified with its config; the run's --json summary is kept beside
    the folder, in unify.json."""
    out = tmp_path_factory.mktemp("sample") / "out"
    result = CliRunner().invoke(
        app,
        ["unify", "--config", str(ROOT / "configs" / "sample.yaml"), "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.stderr
    (out.parent / "unify.json").write_text(result.stdout)
    return out


SMALL_CONFIG = (
    "sources:\n"
    "  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email, phone: phone}}\n"
)
SMALL_ROWS = "id,email,phone\n1,ann@gmail.com,\n2,ann@gmail.com,\n3,bob@gmail.com,+14155552671\n"


def small_output(folder: Path) -> Path:
    """Three CRM rows (two of one person) unified into `folder`/out, with its update state."""
    write(folder / "crm.csv", SMALL_ROWS)
    config = write(folder / "cfg.yaml", SMALL_CONFIG)
    result = CliRunner().invoke(
        app, ["unify", "--config", str(config), "--out", str(folder / "out"), "-q"]
    )
    assert result.exit_code == 0, result.stderr
    return folder / "out"
