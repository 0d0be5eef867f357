"""cxunify diff: every kind of change between two outputs, on screen and in a file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from cxunify.diff import CHANGES
from tests.conftest import write
from tests.test_ids import PHONE_1, PHONE_2, ids, run


def test_diff_lists_created_merged_split_changed_and_removed(cli, tmp_path: Path):
    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,", "12,ann@gmail.com,",
                        f"3,ann@gmail.com,{PHONE_1}",
                        f"4,,{PHONE_1}", "5,bob@gmail.com,", f"6,,{PHONE_2}", "7,dan@gmail.com,",
                        "8,eve@gmail.com,"])  # fmt: skip
    old = ids(out)
    shutil.copytree(out, tmp_path / "old")
    # 3 leaves ann: {3, 4} split off, ann keeps her id with fewer records (changed);
    # 9 bridges bob and the PHONE_2 customer (merge); dan gains a record (changed);
    # eve's only record is gone (removed); 10 is new (created).
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,", "12,ann@gmail.com,",
                        f"3,zed@gmail.com,{PHONE_1}",
                        f"4,,{PHONE_1}", "5,bob@gmail.com,", f"6,,{PHONE_2}", "7,dan@gmail.com,",
                        f"9,bob@gmail.com,{PHONE_2}", "11,dan@gmail.com,",
                        "10,fay@gmail.com,"])  # fmt: skip
    new = ids(out)
    changes = tmp_path / "changes.parquet"
    result = cli("diff", tmp_path / "old", out, "--out", changes)
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(f"SELECT * FROM '{changes}' ORDER BY change").fetchall()
    # bob and the PHONE_2 customer date from the same run and have one record each: the
    # smaller id survives.
    merged_into, absorbed = sorted([old["5"], old["6"]])
    assert new["5"] == merged_into
    assert rows[:2] == sorted([(old["1"], "changed", [], 5, 3), (new["7"], "changed", [], 1, 2)])
    assert rows[2:] == [
        (new["10"], "created", [], 0, 1),
        (merged_into, "merged", [absorbed], 1, 3),
        (old["8"], "removed", [], 1, 0),
        (new["3"], "split", [old["1"]], 0, 2),
    ]
    types = {r[0]: r[1] for r in duckdb.sql(f"DESCRIBE SELECT * FROM '{changes}'").fetchall()}
    assert types == {
        "customer_id": "VARCHAR",
        "change": "VARCHAR",
        "other_customer_ids": "VARCHAR[]",
        "records_before": "BIGINT",
        "records_after": "BIGINT",
    }
    as_json = json.loads(cli("diff", tmp_path / "old", out, "--json").stdout)
    assert as_json["counts"] == {"created": 1, "merged": 1, "split": 1, "changed": 2, "removed": 1}


def test_a_record_moving_between_two_customers_who_stay_is_no_merge(cli, tmp_path: Path):
    """One record moving from ann to bob, both still there, was bob's `merged`, while the
    run's ids counted no merge (no id retired): the nightly gate and diff disagreed."""
    out = tmp_path / "out"
    rows = ["1,ann@gmail.com,", "2,ann@gmail.com,", "5,ann@gmail.com,", "3,bob@gmail.com,",
            "4,bob@gmail.com,"]  # fmt: skip
    run(cli, tmp_path, rows)
    old = ids(out)
    shutil.copytree(out, tmp_path / "old")
    summary = run(cli, tmp_path, [rows[0], "2,bob@gmail.com,", *rows[2:]])
    assert summary["ids"]["customers_merged"] == 0 and ids(out)["2"] == old["3"]
    result = cli("diff", tmp_path / "old", out, "--out", tmp_path / "changes.parquet")
    assert result.exit_code == 0, result.stderr
    changes = duckdb.sql(f"SELECT * FROM '{tmp_path}/changes.parquet' ORDER BY 1").fetchall()
    assert changes == sorted(
        [(old["1"], "changed", [], 3, 2), (old["3"], "changed", [old["1"]], 2, 3)]
    )


def test_diff_writes_the_format_its_out_file_is_named_for(cli, tmp_path: Path):
    """`diff --out changes.csv` wrote Parquet (the file began PAR1), where `sql --to` writes
    the format the name ends in: so does diff now, as sql does."""
    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,"])
    shutil.copytree(out, tmp_path / "old")
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,bob@gmail.com,"])
    created = ids(out)["2"]
    written = {}
    for name in ("changes.csv", "changes.json", "changes.parquet", "changes"):
        result = cli("diff", tmp_path / "old", out, "--out", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        written[name] = (tmp_path / name).read_bytes()
    assert written["changes.csv"] == (
        b"customer_id,change,other_customer_ids,records_before,records_after\n"
        + f"{created},created,[],0,1\n".encode()
    )
    assert written["changes"] == written["changes.csv"]  # csv for any other name, as sql
    assert json.loads(written["changes.json"]) == {
        "customer_id": created,
        "change": "created",
        "other_customer_ids": [],
        "records_before": 0,
        "records_after": 1,
    }
    assert written["changes.parquet"].startswith(b"PAR1")
    result = cli("diff", tmp_path / "old", out, "--out", tmp_path / "changes.parquet.gz")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: --out {tmp_path / 'changes.parquet.gz'}: a Parquet file is compressed "
        "within; write it to a file ending in .parquet\n",
    )
    assert not (tmp_path / "changes.parquet.gz").exists()


def test_diff_compares_profiles_by_column_name(cli, tmp_path: Path):
    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,", f"2,bob@gmail.com,{PHONE_1}"])
    profiles = out / "profiles.parquet"
    columns = [row[0] for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{profiles}'").fetchall()]

    def rewritten(name: str, select: str) -> Path:
        # The same output with its profiles rewritten by `select`.
        copy = tmp_path / name
        shutil.copytree(out, copy)
        duckdb.sql(f"COPY ({select} FROM '{profiles}') TO '{copy / 'profiles.parquet'}'")
        return copy

    # The same columns in another order: every customer was 'changed'.
    reordered = rewritten("reordered", "SELECT " + ", ".join(f'"{c}"' for c in reversed(columns)))
    result = cli("diff", out, reordered, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"] == dict.fromkeys(CHANGES, 0)
    # A column only one output has: no answer that would call every customer changed.
    fewer = rewritten("fewer", "SELECT * EXCLUDE (orders, phones)")
    result = cli("diff", out, fewer)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot compare {out} with {fewer}: their profiles have different columns "
        f"(only in {out}: phones, orders); compare outputs of the same cxunify version\n"
    )
    # A column of another type: it was an internal error (a ConversionException).
    retyped = rewritten("retyped", "SELECT * REPLACE (phones[1] AS phones)")
    result = cli("diff", out, retyped)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot compare {out} with {retyped}: Conversion ")


def test_diff_needs_two_outputs(cli, tmp_path: Path):
    result = cli("diff", tmp_path, tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path}: not a cxunify output folder (no run.json)"


def test_diff_limit_and_out_errors_are_one_line(cli, tmp_path: Path, capsys):
    import pytest

    from cxunify.cli import main

    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,"])
    result = cli("diff", out, out, "--out", out / "run.json" / "changes.parquet")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'run.json'}: is a file, not a folder: nothing can be written inside it\n"
    )
    with pytest.raises(SystemExit) as exited:
        main(["diff", str(out), str(out), "--limit", "-1"])
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "Error: Invalid value for '--limit': Input should be greater than or equal to 0 "
        "(see `cxunify diff --help`)\n"
    )


def test_write_changes_in_a_folder_that_is_a_file_is_an_output_error(cli, tmp_path: Path):
    """The API raised mkdir's bare FileExistsError; the CLI alone said what it meant."""
    import pytest

    from cxunify.diff import diff_outputs, write_changes
    from cxunify.errors import OutputError

    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,"])
    a_file = write(tmp_path / "afile", "x")
    for under in ("c.csv", "sub/c.csv"):
        with pytest.raises(OutputError) as error:
            write_changes(diff_outputs(out, out), a_file / under)
        assert str(error.value) == (
            f"{a_file}: is a file, not a folder: nothing can be written inside it"
        )


def test_a_night_moving_as_of_changes_only_the_customers_whose_records_changed(cli, tmp_path: Path):
    """Tonight's order moves as_of a month on: every customer's recency, lifecycle stage and
    RFM scores (ranks among all customers) move with it. Those are not changes to a customer,
    else a nightly diff lists nearly everyone with an order as 'changed'."""
    from tests.conftest import write

    header = "order_id,email,full_name,amount,ordered_at\n"
    write(tmp_path / "orders.csv", header + "".join(
        f"O{i},{name}@fastmail.com,{name.title()} Lee,{10 * i}.00,2025-06-0{i}\n"
        for i, name in enumerate(("ann", "bob", "cy", "dee", "eve", "fay"), start=1)
    ))  # fmt: skip
    config = write(
        tmp_path / "c.yaml",
        "sources:\n  - {name: orders, kind: transactions, path: orders.csv, id: order_id,\n"
        "     columns: {email: email, full_name: full_name, amount: amount, "
        "created_at: ordered_at}}\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    shutil.copytree(out, tmp_path / "old")
    write(tmp_path / "orders.csv", header + "O7,bob@fastmail.com,Bob Lee,70.00,2025-09-30\n")
    result = cli("update", "--previous", out, "--config", config, "-q")
    assert result.exit_code == 0, result.stderr
    recency = duckdb.sql(
        f"SELECT list(recency_days ORDER BY email) FROM '{tmp_path}/old/profiles.parquet' "
        f"UNION ALL SELECT list(recency_days ORDER BY email) FROM '{out}/profiles.parquet'"
    ).fetchall()
    assert recency[0] != recency[1]  # every customer's recency moved
    changes = tmp_path / "changes.parquet"
    result = cli("diff", tmp_path / "old", out, "--out", changes, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"] == {
        "created": 0, "merged": 0, "split": 0, "changed": 1, "removed": 0,
    }  # fmt: skip
    rows = duckdb.sql(
        f"SELECT p.email, c.records_before, c.records_after FROM '{changes}' c "
        f"JOIN '{out}/profiles.parquet' p USING (customer_id)"
    ).fetchall()
    assert rows == [("bob@fastmail.com", 1, 2)]


def test_limit_0_prints_the_counts_only(cli, sample_out: Path):
    """`--limit 0` printed an empty table and '0 rows' before the counts, for a job to parse
    around; the README promises the counts only."""
    result = cli("diff", sample_out, sample_out, "--limit", "0")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "0 created, 0 merged, 0 split, 0 changed, 0 removed\n"
