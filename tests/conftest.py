"""Shared fixtures: real files in tmp dirs, real DuckDB, the CLI run in-process."""

from __future__ import annotations

from collections.abc import Iterator
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

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"

# Test files whose setup outlasts most of the suite (the Spark run: a JVM and a pipeline of
# Spark jobs, minutes on two cores). Collected first, pytest-xdist hands them to a worker at
# the start and the other workers share the rest meanwhile; collected in their alphabetical
# place, they started late and ran on alone at the end.
LONGEST_FIRST = ("test_spark.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)  # stable: else as collected


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
    out = tmp_path_factory.mktemp("sample") / "out"
    result = CliRunner().invoke(
        app, ["unify", "--config", str(ROOT / "configs" / "sample.yaml"), "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.stderr
    return out
