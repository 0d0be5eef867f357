"""Quality gates: each one fails the run with exit code 3, keeps the previous output and
sets the new one aside."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import write

SOURCES = (
    "sources:\n"
    "  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email, phone: phone}}\n"
    "matching:\n  rules: [[email_std], [phone]]\n"
)
PHONE = "+14155552671"
FIRST = ["1,ann@gmail.com,", f"2,bob@gmail.com,{PHONE}"]
# Night two: a bridge merges ann into bob, one row has no id (rejected), one stands alone.
SECOND = [*FIRST, f"3,ann@gmail.com,{PHONE}", ",nobody@gmail.com,", "4,cat@gmail.com,"]


def unify(cli, folder: Path, rows: list[str], gates: str = ""):
    write(folder / "crm.csv", "id,email,phone\n" + "\n".join(rows) + "\n")
    config = write(folder / "cfg.yaml", SOURCES + (f"gates:\n{gates}" if gates else ""))
    return cli("unify", "--config", config, "--out", folder / "out", "-q")


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        (
            "max_cluster_size: 2",
            "gates.max_cluster_size: the largest customer has 3 records (limit 2)",
        ),
        (
            "max_reject_rate: 0.1",
            "gates.max_reject_rate: 20.00% of rows were rejected (limit 10.00%)",
        ),
        (
            "min_linked_share: 0.9",
            "gates.min_linked_share: 75.00% of records are linked to another record "
            "(minimum 90.00%)",
        ),
        (
            "max_id_changed_share: 0.25",
            "gates.max_id_changed_share: 50.00% of the previous run's customers changed id "
            "(limit 25.00%)",
        ),
        (
            "max_customers_merged: 0",
            "gates.max_customers_merged: 1 customer was merged into others since the previous "
            "run (limit 0)",
        ),
    ],
)
def test_each_gate_fails_with_exit_code_3(cli, tmp_path: Path, gate: str, message: str):
    out = tmp_path / "out"
    assert unify(cli, tmp_path, FIRST).exit_code == 0
    before = (out / "identity_map.parquet").read_bytes()
    result = unify(cli, tmp_path, SECOND, f"  {gate}\n")
    assert result.exit_code == 3, result.stderr
    aside = tmp_path / "out.rejected"
    assert result.stderr.splitlines() == [
        f"Error: quality gate failed: {message}; the previous output was kept; this run's "
        f"output is in {aside} for inspection",
    ]
    assert (out / "identity_map.parquet").read_bytes() == before
    # The rejected run is complete and queryable for inspection.
    run = json.loads((aside / "run.json").read_text())
    assert run["quality"]["failed"] == [message]
    con = duckdb.connect(str(aside / "cxunify.duckdb"), read_only=True)
    assert con.sql("SELECT count(*) FROM identity_map").fetchall() == [(4,)]
    con.close()


def test_gates_that_hold_let_the_run_through(cli, tmp_path: Path):
    assert unify(cli, tmp_path, FIRST).exit_code == 0
    gates = "  max_cluster_size: 3\n  max_reject_rate: 0.25\n  max_customers_merged: 1\n"
    result = unify(cli, tmp_path, SECOND, gates)
    assert result.exit_code == 0, result.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["quality"] == {
        "max_cluster_size": 3,
        "reject_rate": 0.2,
        "linked_share": 0.75,
        "id_changed_share": 0.5,
        "customers_merged": 1,
        "removed_share": 0.0,
        "failed": [],
    }


def test_a_truncated_export_fails_the_removed_customers_gate(cli, tmp_path: Path):
    """Customers whose records all vanished (an export cut short, ids renumbered at the
    source) change no id and merge nothing: only this gate sees them."""
    assert unify(cli, tmp_path, FIRST).exit_code == 0
    gates = "  max_id_changed_share: 0\n  max_customers_merged: 0\n"
    result = unify(cli, tmp_path, [FIRST[0]], gates + "  max_customers_removed_share: 0.4\n")
    assert result.exit_code == 3, result.stderr
    assert result.stderr.splitlines()[0].startswith(
        "Error: quality gate failed: gates.max_customers_removed_share: 50.00% of the "
        "previous run's customers have no record in this run (limit 40.00%); "
    )
    run = json.loads((tmp_path / "out.rejected" / "run.json").read_text())
    assert run["ids"]["customers_removed"] == 1 and run["ids"]["removed_share"] == 0.5
    assert run["ids"]["customers_id_changed"] == 0


def test_a_failed_gate_shows_enough_digits_to_tell_figure_and_limit_apart(cli, tmp_path: Path):
    """20% of rows rejected against a limit of 19.996% read "20.00% (limit 20.00%)"."""
    assert unify(cli, tmp_path, FIRST).exit_code == 0
    result = unify(cli, tmp_path, SECOND, "  max_reject_rate: 0.19996\n")
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0].startswith(
        "Error: quality gate failed: gates.max_reject_rate: 20.000% of rows were rejected "
        "(limit 19.996%); "
    )


def test_a_failed_gate_on_a_first_run_does_not_claim_an_output_was_kept(cli, tmp_path: Path):
    result = unify(cli, tmp_path, SECOND, "  max_cluster_size: 2\n")
    assert result.exit_code == 3
    # One line for the one failure (a second 'Error:' line read as a second error).
    assert result.stderr.splitlines() == [
        "Error: quality gate failed: gates.max_cluster_size: the largest customer has 3 records "
        f"(limit 2); there was no output in {tmp_path / 'out'} to keep; this run's output is in "
        f"{tmp_path / 'out.rejected'} for inspection",
    ]
    # Each gate that fails has its line, the last saying where the output went.
    result = unify(cli, tmp_path, SECOND, "  max_cluster_size: 2\n  max_reject_rate: 0.1\n")
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        "Error: quality gate failed: gates.max_cluster_size: the largest customer has 3 records "
        "(limit 2)",
        "Error: quality gate failed: gates.max_reject_rate: 20.00% of rows were rejected (limit "
        f"10.00%); there was no output in {tmp_path / 'out'} to keep; this run's output is in "
        f"{tmp_path / 'out.rejected'} for inspection",
    ]
    assert not (tmp_path / "out").exists()


def test_churn_gates_do_not_apply_to_a_first_run(cli, tmp_path: Path):
    result = unify(cli, tmp_path, SECOND, "  max_customers_merged: 0\n  max_id_changed_share: 0\n")
    assert result.exit_code == 0, result.stderr


def test_gates_config_is_typed(cli, tmp_path: Path):
    result = unify(cli, tmp_path, FIRST, "  max_reject_rate: 2\n  max_cluster_sise: 3\n")
    assert result.exit_code == 1
    assert "gates.max_reject_rate: Input should be less than or equal to 1" in result.stderr
    assert "gates.max_cluster_sise: unknown key; did you mean 'max_cluster_size'?" in result.stderr
    # YAML's true is not 1, nor 1.0; 0 is a share of 0.
    result = unify(cli, tmp_path, FIRST, "  max_cluster_size: true\n  max_reject_rate: true\n")
    assert result.exit_code == 1
    config = tmp_path / "cfg.yaml"
    assert result.stderr.splitlines() == [
        f"Error: {config}: gates.max_cluster_size: should be a whole number, not true",
        f"Error: {config}: gates.max_reject_rate: should be a number, not true",
    ]
    assert unify(cli, tmp_path, FIRST, "  max_reject_rate: 0\n").exit_code == 0


def test_a_failed_gate_with_json_still_prints_the_summary(cli, tmp_path: Path):
    """A pipeline reading `--json` learns which gate failed, and where the output went."""
    assert unify(cli, tmp_path, FIRST).exit_code == 0
    write(tmp_path / "crm.csv", "id,email,phone\n" + "\n".join(SECOND) + "\n")
    config = write(tmp_path / "cfg.yaml", SOURCES + "gates:\n  max_cluster_size: 2\n")
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 3
    summary = json.loads(result.stdout)
    assert summary["status"] == "quality_gate_failed"
    assert summary["out"] == str(tmp_path / "out.rejected")
    assert summary["failed"] == summary["quality"]["failed"]
    assert summary["failed"] == [
        "gates.max_cluster_size: the largest customer has 3 records (limit 2)"
    ]
    assert summary["counts"]["rows_in"] == 5 and summary["ids"]["customers_merged"] == 1
    # The keys of a passing run's summary, as the stopped run measured them (stages_seconds
    # and rejected_removed were missing): one script reads both.
    stopped = json.loads((tmp_path / "out.rejected" / "run.json").read_text())
    assert summary["stages_seconds"] == stopped["stages_seconds"]
    assert set(stopped["stages_seconds"]) >= {"ingest", "cluster", "profile"}
    assert summary["rejected_removed"] is None
    passing = write(tmp_path / "passing.yaml", SOURCES)
    passed = cli("unify", "--config", passing, "--out", tmp_path / "o2", "--json")
    assert passed.exit_code == 0, passed.stderr
    assert set(summary) == set(json.loads(passed.stdout)) | {"failed"}


def test_machine_readable_json_has_no_nan(cli, tmp_path: Path):
    """A run with no candidate pairs has no log-likelihood: null, not NaN (not JSON)."""
    write(tmp_path / "crm.csv", "id,email,phone\n1,ann@gmail.com,\n")
    config = write(tmp_path / "cfg.yaml", SOURCES)
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr

    def strict(text: str) -> object:
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))

    strict(result.stdout)
    strict((tmp_path / "out" / "run.json").read_text())
    query = cli("sql", "--out", tmp_path / "out", "--format", "json", "SELECT 'nan'::DOUBLE AS x")
    assert strict(query.stdout) == {"x": None}


def test_a_run_that_passes_removes_the_output_a_gate_set_aside_and_says_so(cli, tmp_path: Path):
    """Last week's out.rejected beside a healthy output: a monitoring script checking for the
    folder, or an operator, could not tell whether tonight's run had failed. The run that
    replaces the output removes it, and run.json, --json and stderr say which run it held."""
    assert unify(cli, tmp_path, FIRST).exit_code == 0
    assert unify(cli, tmp_path, SECOND, "  max_cluster_size: 2\n").exit_code == 3
    aside = tmp_path / "out.rejected"
    stopped = json.loads((aside / "run.json").read_text())
    removed = {
        "folder": str(aside),
        "started_at": stopped["started_at"],
        "failed": ["gates.max_cluster_size: the largest customer has 3 records (limit 2)"],
    }
    config = tmp_path / "cfg.yaml"
    write(config, SOURCES + "gates:\n  max_cluster_size: 3\n")
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    assert not aside.exists()
    assert json.loads(result.stdout)["rejected_removed"] == removed
    assert json.loads((tmp_path / "out" / "run.json").read_text())["rejected_removed"] == removed
    assert result.stderr == (
        f"Removed {aside}: the output of the run started {stopped['started_at']} that a "
        "quality gate stopped, superseded by this run\n"
    )
    # With nothing to remove, the key says so; a folder of that name that is not an output
    # (someone's own) is left alone.
    (aside / "notes").mkdir(parents=True)
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rejected_removed"] is None
    assert (aside / "notes").is_dir() and result.stderr == ""


def test_an_updates_reject_rate_is_that_of_tonights_rows(cli, tmp_path: Path):
    """A night whose file was 80% broken rows passed `max_reject_rate: 0.02`: measured over
    every row stored, its rejects were 1%. The gate watches what tonight's files hold."""
    stored = [f"{i},p{i}@gmail.com," for i in range(1, 301)]
    assert unify(cli, tmp_path, stored, "  max_reject_rate: 0.02\n").exit_code == 0
    tonight = write(
        tmp_path / "tonight" / "crm.csv",
        "id,email,phone\n301,new@gmail.com,\n" + ",nobody@gmail.com,\n" * 4,
    )
    config = write(
        tmp_path / "tonight" / "cfg.yaml",
        SOURCES.replace("path: crm.csv", f"path: {tonight}") + "gates:\n  max_reject_rate: 0.02\n",
    )
    result = cli("update", "--previous", tmp_path / "out", "--config", config, "-q")
    assert result.exit_code == 3, result.stderr
    assert (
        "gates.max_reject_rate: 80.00% of tonight's rows were rejected (limit 2.00%)"
        in result.stderr
    )
    run = json.loads((tmp_path / "out.rejected" / "run.json").read_text())
    assert run["quality"]["reject_rate"] == 0.8
    assert run["counts"]["rows_rejected"] == 4 and run["counts"]["rows_in"] == 305


def test_an_erasure_a_gate_stops_is_applied_by_the_same_update_under_a_raised_limit(
    cli, tmp_path: Path
):
    """An erasure removes customers, so a batch of them larger than a churn gate allows is
    stopped like any update: the erased values stay in out/ and later updates are refused
    until it lands. The README's way through: the same command with the limit raised."""
    assert unify(cli, tmp_path, FIRST).exit_code == 0
    config = tmp_path / "cfg.yaml"
    write(config, SOURCES + "gates:\n  max_customers_removed_share: 0.4\n")
    erase = write(tmp_path / "erase.csv", "source,source_record_id\ncrm,1\n")
    write(tmp_path / "crm.csv", "id,email,phone\n")  # a night with only the erasure
    command = ("update", "--previous", tmp_path / "out", "--config", config, "--delete", erase)
    result = cli(*command, "-q")
    assert result.exit_code == 3, result.stderr
    assert "gates.max_customers_removed_share: 50.00%" in result.stderr

    def emails() -> list[str]:
        query = f"SELECT email FROM '{tmp_path}/out/records.parquet' ORDER BY 1"
        return [email for (email,) in duckdb.sql(query).fetchall()]

    assert emails() == ["ann@gmail.com", "bob@gmail.com"]
    result = cli("update", "--previous", tmp_path / "out", "--config", config, "-q")
    assert result.exit_code == 1 and "that a quality gate stopped" in result.stderr
    write(config, SOURCES + "gates:\n  max_customers_removed_share: 0.5\n")
    result = cli(*command, "-q")
    assert result.exit_code == 0, result.stderr
    assert emails() == ["bob@gmail.com"]
    assert not (tmp_path / "out.rejected").exists()
