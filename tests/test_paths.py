"""Paths holding a glob's characters (`*`, `?`, `[`) name that one file or folder.

DuckDB's file readers take a path as a glob: an output folder `out[1]` was read as `out1`
beside it, and an export `a[1].csv` as `a1.csv`, without a word."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from cxunify.sql import literal_path
from tests.conftest import write

CRM = "id,email,first_name\nC1,ann@gmail.com,Ann\nC2,bob@gmail.com,Bob\nC3,cy@gmail.com,Cy\n"
ORDERS = "order_id,email,amount\nO1,dan@gmail.com,5\n"


def _sources(out: Path) -> list[tuple]:
    path = literal_path(f"{out}/identity_map.parquet")  # (this test's own reading, too)
    return duckdb.sql(f"SELECT source, count(*) FROM '{path}' GROUP BY 1").fetchall()


def test_an_output_folder_named_with_brackets_is_that_folder(cli, tmp_path: Path):
    crm = write(tmp_path / "crm.csv", CRM)
    orders = write(tmp_path / "orders.csv", ORDERS)
    out, other = tmp_path / "out[1]", tmp_path / "out1"
    assert cli("unify", "--crm", crm, "--out", out, "-q").exit_code == 0
    assert cli("unify", "--transactions", orders, "--out", other, "-q").exit_code == 0

    result = cli("sql", "--out", out, "--format", "csv", "SELECT source, count(*) n "
                 "FROM identity_map GROUP BY 1")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "source,n\ncrm,3\n"
    result = cli("explain", "--out", out, "--record", "crm:C1")
    assert result.exit_code == 0, result.stderr
    database = duckdb.connect(str(out / "cxunify.duckdb"), read_only=True)
    try:
        assert database.sql("SELECT DISTINCT source FROM identity_map").fetchall() == [("crm",)]
    finally:
        database.close()
    assert cli("report", "--out", out, "--to", tmp_path / "r.html").exit_code == 0

    # The next run carries its ids over from that folder, not from out1's orders.
    assert cli("unify", "--crm", crm, "--out", out, "-q").exit_code == 0
    ids = json.loads((out / "run.json").read_text())["ids"]
    assert ids["previous_customers"] == 3 and ids["customers_kept"] == 3


def test_an_update_of_an_output_named_with_brackets(cli, tmp_path: Path):
    """An update reads its state's parts as lists of files (a glob of each, as for one)."""
    crm = write(tmp_path / "crm.csv", CRM)
    out = tmp_path / "nightly [1]"
    assert cli("unify", "--crm", f"crm={crm}", "--out", out, "-q").exit_code == 0
    # A folder the brackets would match, of another output.
    orders = write(tmp_path / "orders.csv", ORDERS)
    sibling = tmp_path / "nightly 1"
    assert cli("unify", "--crm", f"crm={orders}", "--out", sibling, "-q").exit_code == 0
    write(crm, "id,email,first_name\nC4,dee@gmail.com,Dee\n")
    result = cli("update", "--previous", out, "--crm", f"crm={crm}", "-q")
    assert result.exit_code == 0, result.stderr
    write(crm, "id,email,first_name\nC5,eve@gmail.com,Eve\n")
    result = cli("update", "--previous", out, "--crm", f"crm={crm}", "-q")
    assert result.exit_code == 0, result.stderr
    assert _sources(out) == [("crm", 5)]


def test_exports_named_with_brackets_are_each_read_once(cli, tmp_path: Path):
    write(tmp_path / "a[1].csv", "id,email,first_name\nB1,br@gmail.com,Bracket\n")
    write(tmp_path / "a1.csv", "id,email,first_name\nP1,pl@gmail.com,Plain\n")
    write(tmp_path / "crm [2] ü.csv", "id,email,first_name\nU1,un@gmail.com,Umlaut\n")
    out = tmp_path / "out"
    result = cli("unify", "--crm", f"crm={tmp_path}/a*.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    names = duckdb.sql(f"SELECT first_name FROM '{out}/records.parquet' ORDER BY 1").fetchall()
    assert names == [("Bracket",), ("Plain",)] and _rejects(out) == 0
    # A file whose name holds a glob's characters is that file, not a pattern matching none.
    result = cli("unify", "--crm", tmp_path / "crm [2] ü.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert duckdb.sql(f"SELECT first_name FROM '{out}/records.parquet'").fetchall() == [("Umlaut",)]


def _rejects(out: Path) -> int:
    [(count,)] = duckdb.sql(f"SELECT count(*) FROM '{out}/rejects.parquet'").fetchall()
    return count


def test_an_output_folder_with_a_backslash_is_refused_before_any_work(cli, tmp_path: Path):
    """DuckDB opens a database at a path read with a backslash as '/': the outputs were
    written and swapped in, then cxunify.duckdb could not be made ('Internal error:
    IOException'), run after run."""
    crm = write(tmp_path / "crm.csv", CRM)
    out = tmp_path / "back\\slash"
    result = cli("unify", "--crm", crm, "--out", out, "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: a backslash in the output folder's path is not supported (DuckDB "
        "reads it as a folder separator when it writes cxunify.duckdb); choose another --out\n"
    )
    assert not out.exists()
