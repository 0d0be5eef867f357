"""`cxunify sql` on a small output of its own: what it refuses, and what it writes."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, small_output, write

PIVOT = "PIVOT (SELECT 1 AS a, 2 AS b) ON a USING sum(b)"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three CRM rows unified; a test that may write into the folder takes a copy."""
    return small_output(tmp_path_factory.mktemp("sql"))


EXPLAIN_REFUSED = (
    ": EXPLAIN takes a query (SELECT ...); EXPLAIN ANALYZE runs the statement it explains, "
    "and cxunify sql writes nothing"
)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("EXPLAIN ANALYZE COPY (SELECT 42 AS a) TO '{target}'", "EXPLAIN ANALYZE COPY"),
        ("EXPLAIN COPY (SELECT 42 AS a) TO '{target}'", "EXPLAIN COPY"),
        ("explain /* c */ analyse (format json) copy (select 42) to '{target}'",
         "EXPLAIN ANALYZE COPY"),
        ("EXPLAIN (ANALYZE) COPY (SELECT 42 AS a) TO '{target}'", "EXPLAIN ANALYZE COPY"),
        (f"EXPLAIN ANALYZE COPY ({PIVOT}) TO '{{target}}'", "EXPLAIN ANALYZE COPY"),
        ("EXPLAIN ANALYZE CREATE TABLE t AS SELECT 42", "EXPLAIN ANALYZE CREATE"),
        ("EXPLAIN ANALYZE SET threads = 1", "EXPLAIN ANALYZE SET"),
        # a CALL or PRAGMA that sets something shows it only once it has run
        ("EXPLAIN ANALYZE CALL enable_logging(storage = 'file', storage_path = '{target}')",
         "EXPLAIN ANALYZE CALL enable_logging"),
    ],
)  # fmt: skip
def test_sql_explain_of_a_statement_that_is_no_query_is_refused_and_writes_nothing(
    cli, out: Path, tmp_path: Path, query: str, error: str
):
    """`EXPLAIN ANALYZE COPY ... TO 'file'` ran the COPY (exit 0, the file written): the
    statement was typed EXPLAIN, a query, whatever it explained."""
    target = tmp_path / "written"
    result = cli("sql", "--out", out, "-f", "csv", "--", query.format(target=target))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: SQL error: {error}{EXPLAIN_REFUSED}\n",
    )
    assert not target.exists()


def test_sql_explain_analyze_copy_leaves_the_outputs_as_they_were(cli, out: Path, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    profiles = (copy / "profiles.parquet").read_bytes()
    query = f"EXPLAIN ANALYZE COPY (SELECT 42 AS a) TO '{copy / 'profiles.parquet'}'"
    result = cli("sql", "--out", copy, query)
    assert result.exit_code == 1
    assert result.stderr == f"Error: SQL error: EXPLAIN ANALYZE COPY{EXPLAIN_REFUSED}\n"
    assert (copy / "profiles.parquet").read_bytes() == profiles
    assert cli("verify", copy).exit_code == 0


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (f"COPY ({PIVOT}) TO '{{target}}'", "COPY"),
        (f"COPY (SELECT * FROM ({PIVOT})) TO '{{target}}'", "COPY"),
        (f"CREATE TABLE t AS {PIVOT}", "CREATE"),
        (f"WITH p(x) AS (SELECT 1) INSERT INTO t SELECT * FROM ({PIVOT})", "INSERT"),
    ],
)
def test_sql_a_write_holding_a_pivot_is_refused_and_writes_nothing(
    cli, out: Path, tmp_path: Path, query: str, error: str
):
    """DuckDB types a statement holding a PIVOT as MULTI (it runs it as several), as it types
    the PIVOT alone: `COPY (PIVOT ...) TO 'file'` wrote its file."""
    target = tmp_path / "written.csv"
    result = cli("sql", "--out", out, "-f", "csv", query.format(target=target))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: SQL error: {error} returns no rows of its own; give a query (SELECT ...)\n",
    )
    assert not target.exists()


@pytest.mark.parametrize(
    ("query", "first_line"),
    [
        ("EXPLAIN ANALYZE SELECT count(*) FROM profiles", "analyzed_plan"),
        ("EXPLAIN (SELECT 1)", "physical_plan"),
        ("EXPLAIN (FORMAT json) SELECT 1", "physical_plan"),
        ("EXPLAIN ANALYZE (FORMAT json) (SELECT 1)", "analyzed_plan"),
        ("EXPLAIN ANALYZE WITH a AS (SELECT 1) SELECT * FROM a", "analyzed_plan"),
        (f"EXPLAIN ANALYZE {PIVOT}", "analyzed_plan"),
        (f"WITH p AS ({PIVOT}) SELECT * FROM p", "2"),
        (f"({PIVOT})", "2"),
    ],
)
def test_sql_explain_of_a_query_and_a_pivot_are_queries(cli, out: Path, query, first_line):
    result = cli("sql", "--out", out, "-f", "csv", "--", query)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith(first_line)


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("vip.parquet", "parquet"),
        ("vip.PARQUET", "parquet"),
        ("vip.csv", "csv"),
        ("vip.json", "json"),
        ("vip.ndjson", "json"),
        ("vip.jsonl", "json"),
        ("vip.txt", "csv"),  # a name that says no format: csv, as before
        # compressed as the name says (vip.csv.gz was plain csv)
        ("vip.csv.gz", "csv"),
        ("vip.ndjson.gz", "json"),
        ("vip.CSV.BZ2", "csv"),
        ("vip.jsonl.xz", "json"),
        ("vip.gz", "csv"),
    ],
)
def test_sql_to_a_file_writes_the_format_its_name_says(cli, out: Path, tmp_path, name, written):
    """`sql --to out/vip.parquet` (the README's own example) without --format wrote CSV text
    into the .parquet file, which the next `cxunify sql` left without a view."""
    import duckdb

    target = tmp_path / name
    query = "SELECT count(*) AS customers FROM profiles"
    result = cli("sql", "--out", out, "--to", target, query)
    assert (result.exit_code, result.stderr) == (0, f"✓ 1 row → {target}\n")
    if written == "parquet":
        assert duckdb.sql(f"SELECT * FROM read_parquet('{target}')").fetchall() == [(2,)]
    else:
        text = {"csv": "customers\n2\n", "json": '{"customers": 2}\n'}[written]
        opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
            target.suffix.lower(), open
        )
        with opener(target, "rt", encoding="utf-8") as handle:
            assert handle.read() == text


def test_sql_to_a_compressed_parquet_file_is_an_error(cli, out: Path, tmp_path):
    target = tmp_path / "vip.parquet.gz"
    result = cli("sql", "--out", out, "--to", target, "SELECT 1 AS a")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: --to {target}: a Parquet file is compressed within; write it to a file ending "
        "in .parquet\n",
    )
    assert not target.exists()


def test_sql_to_a_parquet_file_inside_the_output_is_a_view(cli, out: Path, tmp_path: Path):
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    result = cli("sql", "--out", copy, "--to", copy / "vip.parquet", "SELECT 1 AS a")
    assert result.exit_code == 0, result.stderr
    result = cli("sql", "--out", copy, "-f", "csv", "SELECT a FROM vip")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "a\n1\n", "")


@pytest.mark.parametrize(
    ("fmt", "name", "named", "writes"),
    [
        ("csv", "vip.parquet", "parquet", "csv"),
        ("table", "vip.parquet", "parquet", "csv"),
        ("parquet", "vip.csv", "csv", "parquet"),
        ("json", "vip.csv", "csv", "json"),
        ("table", "vip.ndjson", "json", "csv"),
    ],
)
def test_sql_a_format_its_file_name_contradicts_is_an_error_naming_both(
    cli, out: Path, tmp_path: Path, fmt: str, name: str, named: str, writes: str
):
    target = tmp_path / name
    result = cli("sql", "--out", out, "--format", fmt, "--to", target, "SELECT 1 AS a")
    suffix = target.suffix
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: --format {fmt} and --to {target} disagree: --format {fmt} writes {writes}, "
        f"a {suffix} file holds {named}; give --format {named} (or no --format), or a --to "
        f"FILE ending in .{writes}\n",
    )
    assert not target.exists()


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("csv", "vip.csv"), ("json", "vip.ndjson"), ("parquet", "vip.parquet"), ("csv", "vip.txt")],
)
def test_sql_a_format_its_file_name_agrees_with_is_written(cli, out: Path, tmp_path, fmt, name):
    target = tmp_path / name
    result = cli("sql", "--out", out, "--format", fmt, "--to", target, "SELECT 1 AS a")
    assert (result.exit_code, result.stderr) == (0, f"✓ 1 row → {target}\n")


@pytest.mark.parametrize(
    ("args", "file_name"),
    [
        (("sql", "--out", "OUT", "--to", "FOLDER", "SELECT 1"), "result.csv"),
        (("sql", "--out", "OUT", "-f", "parquet", "--to", "FOLDER", "SELECT 1"), "result.parquet"),
        (("sql", "--out", "OUT", "-f", "json", "--to", "FOLDER", "SELECT 1"), "result.json"),
        (("report", "--out", "OUT", "--to", "FOLDER"), "report.html"),
        (("diff", "OUT", "OUT", "--out", "FOLDER"), "changes.parquet"),
        (("train", "--config", "CONFIG", "--to", "FOLDER"), "model.json"),
    ],
)
def test_a_folder_given_for_the_file_to_write_is_an_error_naming_a_file(
    cli, out: Path, tmp_path: Path, args: tuple[str, ...], file_name: str
):
    """`--to out` with a folder of that name said 'Error: out: Is a directory'."""
    folder = tmp_path / "exports"
    folder.mkdir()
    given = {"OUT": out, "FOLDER": folder, "CONFIG": out.parent / "cfg.yaml"}
    result = cli(*(given.get(a, a) for a in args))
    option = args[args.index("FOLDER") - 1]
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {folder}: is a folder; {option} takes a file name such as {folder / file_name}\n",
    )
    assert list(folder.iterdir()) == []


def test_a_copy_of_an_output_is_queried_with_sql_out_not_its_duckdb_file(cli, tmp_path: Path):
    """A copy's cxunify.duckdb names the original folder's files (by absolute path): once the
    next run replaced them, `duckdb out.yesterday/cxunify.duckdb` showed tonight's data. The
    README said a folder moved works with `cxunify sql --out`, not that a copy's views lie."""
    import duckdb

    out = small_output(tmp_path)  # three CRM rows
    yesterday = tmp_path / "out.yesterday"
    shutil.copytree(out, yesterday)
    with (tmp_path / "crm.csv").open("a") as crm:
        crm.write("4,cy@gmail.com,\n")
    assert cli("unify", "--config", tmp_path / "cfg.yaml", "--out", out, "-q").exit_code == 0
    with duckdb.connect(str(yesterday / "cxunify.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM identity_map").fetchall() == [(4,)]  # tonight's
    result = cli("sql", "--out", yesterday, "-f", "csv", "SELECT count(*) AS n FROM identity_map")
    assert (result.exit_code, result.stdout) == (0, "n\n3\n")  # the copy's own
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "a copy's read the original, which the next run replaces" in readme
    assert "query a moved folder or a copy with it" in readme


def test_a_file_written_replaces_a_symlink_there_and_never_writes_through_it(
    cli, out: Path, tmp_path: Path
):
    """`sql --to` and `report --to` opened the target and wrote through a symlink at it: one
    planted in a shared output folder (out/report.html -> a file of the user's) had that file
    overwritten. A failed query left the earlier result removed too. Files are written beside
    the target and put in its place once whole."""
    victim = write(tmp_path / "victim.txt", "mine\n")
    for command in (
        ("sql", "--out", out, "--to", tmp_path / "result.csv", "SELECT 1 AS x"),
        ("report", "--out", out, "--to", tmp_path / "result.html"),
    ):
        target = Path(command[4])
        target.symlink_to(victim)
        result = cli(*command)
        assert result.exit_code == 0, result.stderr
        assert not target.is_symlink() and target.stat().st_size > 0
        assert victim.read_text() == "mine\n"
    earlier = (tmp_path / "result.csv").read_text()
    result = cli("sql", "--out", out, "--to", tmp_path / "result.csv", "SELECT error('boom')")
    assert result.exit_code == 1
    assert (tmp_path / "result.csv").read_text() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.csv", "result.html", "victim.txt"]
