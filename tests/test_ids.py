"""Stable customer ids across runs: carry-over, merges, splits, redirects, identical reruns."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb

from tests.conftest import ROOT, write

SAMPLE_CONFIG = ROOT / "configs" / "sample.yaml"

# Deterministic links: equal email or equal phone is a match, whatever EM learns. Records
# have no names, so nothing else makes them candidates and no guard can refuse a link.
CONFIG = (
    "sources:\n"
    "  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email, phone: phone}}\n"
    "matching:\n  rules: [[email_std], [phone]]\n"
)
PHONE_1, PHONE_2 = "+14155552671", "+12125550147"


def run(cli, folder: Path, rows: list[str], *extra: str) -> dict:
    write(folder / "crm.csv", "id,email,phone\n" + "\n".join(rows) + "\n")
    config = write(folder / "cfg.yaml", CONFIG)
    result = cli("unify", "--config", config, "--out", folder / "out", "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def ids(out: Path) -> dict[str, str]:
    rows = duckdb.sql(
        f"SELECT source_record_id, customer_id FROM '{out}/identity_map.parquet'"
    ).fetchall()
    return dict(rows)


def redirects(out: Path) -> list[tuple]:
    return duckdb.sql(
        f"SELECT old_customer_id, customer_id, redirected_to, reason "
        f"FROM '{out}/id_redirects.parquet' ORDER BY redirected_at, old_customer_id"
    ).fetchall()


def issued(out: Path) -> dict[str, object]:
    return dict(duckdb.sql(f"SELECT * FROM '{out}/customer_ids.parquet'").fetchall())


def test_identical_rerun_gives_identical_ids_and_profiles(cli, sample_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    result = cli("unify", "--config", SAMPLE_CONFIG, "--out", out, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    customers = summary["counts"]["customers"]
    assert summary["ids"]["previous_customers"] == customers
    assert summary["ids"]["customers_kept"] == customers
    assert summary["ids"]["customers_id_changed"] == 0
    for name in ("identity_map", "profiles", "customer_ids", "id_redirects"):
        assert (out / f"{name}.parquet").read_bytes() == (
            sample_out / f"{name}.parquet"
        ).read_bytes(), name


def test_adding_records_keeps_every_unaffected_id(cli, tmp_path: Path):
    first = run(
        cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,", f"3,bob@gmail.com,{PHONE_1}"]
    )
    before = ids(tmp_path / "out")
    assert first["ids"]["customers_new"] == 2
    second = run(
        cli,
        tmp_path,
        ["0,cat@gmail.com,", "1,ann@gmail.com,", "2,ann@gmail.com,", f"3,bob@gmail.com,{PHONE_1}",
         f"4,,{PHONE_1}"],
    )  # fmt: skip
    after = ids(tmp_path / "out")
    assert {k: after[k] for k in before} == before
    assert after["4"] == after["3"]  # joined bob
    assert after["0"] not in before.values()
    assert second["ids"] == {
        "previous_customers": 2,
        "customers_kept": 2,
        "customers_new": 1,
        "customers_split_off": 0,
        "customers_merged": 0,
        "customers_id_changed": 0,
        "customers_removed": 0,
        "customers_returned": 0,
        "id_changed_share": 0.0,
        "removed_share": 0.0,
    }
    assert redirects(tmp_path / "out") == []


def test_new_ids_do_not_depend_on_row_order(cli, tmp_path: Path):
    rows = ["1,ann@gmail.com,", f"2,bob@gmail.com,{PHONE_1}", f"3,,{PHONE_1}"]
    run(cli, tmp_path / "a", rows)
    run(cli, tmp_path / "b", list(reversed(rows)))
    assert ids(tmp_path / "a" / "out") == ids(tmp_path / "b" / "out")


def customers(out: Path) -> set[frozenset[tuple[str, str]]]:
    """The partition of records into customers, whatever the ids."""
    rows = duckdb.sql(
        f"SELECT list([source, source_record_id]) FROM '{out}/identity_map.parquet' "
        "GROUP BY customer_id"
    ).fetchall()
    return {frozenset((source, record_id) for source, record_id in row[0]) for row in rows}


def test_trained_model_and_customers_do_not_depend_on_row_order(
    cli, sample_out: Path, tmp_path: Path
):
    # A nightly export whose ORDER BY is unstable must not churn ids: the model unify trains
    # (no --model) is fitted on a sample of random pairs, which once followed row order.
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    config = tmp_path / "configs" / "sample.yaml"
    config.parent.mkdir()
    shutil.copy(SAMPLE_CONFIG, config)
    orders = tmp_path / "sample_data" / "orders.csv"
    with orders.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))  # rows may hold quoted line breaks
    with orders.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *reversed(rows)])
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.stderr

    def model(out: Path) -> dict:
        return json.loads((out / "run.json").read_text(encoding="utf-8"))["model"]

    assert model(tmp_path / "out") == model(sample_out)
    assert customers(tmp_path / "out") == customers(sample_out)


def test_merge_keeps_the_older_id_and_redirects_the_other(cli, tmp_path: Path):
    out = tmp_path / "out"
    run(cli, tmp_path, [f"1,,{PHONE_1}"])  # customer A: the older id
    old = ids(out)["1"]
    run(cli, tmp_path, [f"1,,{PHONE_1}", "2,ann@gmail.com,", "3,ann@gmail.com,"])  # B, 2 records
    newer = ids(out)["2"]
    assert issued(out)[old] < issued(out)[newer]
    summary = run(
        cli,
        tmp_path,
        [f"1,,{PHONE_1}", "2,ann@gmail.com,", "3,ann@gmail.com,", f"4,ann@gmail.com,{PHONE_1}"],
    )
    # B has more records, but the older id survives a merge.
    assert set(ids(out).values()) == {old}
    assert redirects(out) == [(newer, old, old, "merge")]
    assert summary["ids"]["customers_merged"] == 1
    assert summary["ids"]["customers_id_changed"] == 1
    assert summary["ids"]["id_changed_share"] == 0.5
    assert list(issued(out)) == [old]


def test_split_keeps_the_id_on_the_largest_part(cli, tmp_path: Path):
    out = tmp_path / "out"
    rows = ["1,ann@gmail.com,", "2,ann@gmail.com,", "5,ann@gmail.com,",
            f"3,ann@gmail.com,{PHONE_1}", f"4,,{PHONE_1}"]  # fmt: skip
    run(cli, tmp_path, rows)
    whole = ids(out)["1"]
    assert set(ids(out).values()) == {whole}
    # Record 3 changes its email: {1, 2, 5} and {3, 4} are no longer linked.
    rows[3] = f"3,bob@gmail.com,{PHONE_1}"
    summary = run(cli, tmp_path, rows)
    after = ids(out)
    assert after["1"] == after["2"] == after["5"] == whole
    assert after["3"] == after["4"] != whole
    assert redirects(out) == [(whole, after["3"], after["3"], "split")]
    assert summary["ids"]["customers_split_off"] == 1
    assert summary["ids"]["customers_id_changed"] == 1


def test_a_record_moving_to_another_customer_changes_no_id(cli, tmp_path: Path):
    """Ann's records 1 and 2 part, 2 joining Bob: each half holds one of Ann's records. The
    half holding no other customer's records keeps Ann's id, so both ids live on. The larger
    half (2 with Bob) kept it before, merged it with Bob's and gave record 1 a new id: two
    ids changed where none had to."""
    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,", f"3,bob@gmail.com,{PHONE_1}"])
    before = ids(out)
    assert before["1"] == before["2"] != before["3"]
    summary = run(
        cli, tmp_path, ["1,ann@gmail.com,", f"2,,{PHONE_1}", f"3,bob@gmail.com,{PHONE_1}"]
    )
    after = ids(out)
    assert after == {"1": before["1"], "2": before["3"], "3": before["3"]}
    assert redirects(out) == []
    assert summary["ids"]["customers_kept"] == 2
    assert summary["ids"]["customers_merged"] == summary["ids"]["customers_split_off"] == 0
    # Ann only: her record 2 carries another id now (it was Ann and Bob, each of whom had a
    # record under a new id).
    assert summary["ids"]["customers_id_changed"] == 1


def test_a_split_undone_leaves_no_redirect_from_an_id_to_itself(cli, tmp_path: Path):
    """The part that split off joins its customer again: the split redirect, resolved through
    the merge, pointed from the customer's id to that same id ('part of it is now at
    itself'); a redirect names an id a downstream system may hold and where it went."""
    out = tmp_path / "out"
    rows = ["1,ann@gmail.com,", "2,ann@gmail.com,", "5,ann@gmail.com,",
            f"3,ann@gmail.com,{PHONE_1}", f"4,,{PHONE_1}"]  # fmt: skip
    run(cli, tmp_path, rows)
    whole = ids(out)["1"]
    run(cli, tmp_path, [*rows[:3], f"3,bob@gmail.com,{PHONE_1}", rows[4]])
    split_off = ids(out)["3"]
    assert redirects(out) == [(whole, split_off, split_off, "split")]
    run(cli, tmp_path, rows)
    assert set(ids(out).values()) == {whole}
    assert redirects(out) == [(split_off, whole, whole, "merge")]


def test_an_id_in_use_is_never_issued_again(cli, tmp_path: Path):
    out = tmp_path / "out"
    rows = ["1,ann@gmail.com,", "2,ann@gmail.com,", f"3,ann@gmail.com,{PHONE_1}", f"4,,{PHONE_1}"]
    run(cli, tmp_path, rows)
    whole = ids(out)["1"]  # derived from record 1, the smallest
    # Record 1 leaves, alone: the id stays with the larger part, and record 1, which it was
    # derived from, gets another.
    rows[0] = "1,zed@gmail.com,"
    run(cli, tmp_path, rows)
    assert ids(out)["2"] == whole
    assert ids(out)["1"] != whole
    assert ids(out)["1"].startswith("c_") and len(ids(out)["1"]) == 18


def test_a_merge_undone_gives_the_retired_id_back(cli, tmp_path: Path):
    """The merged-away id comes back to the records it was derived from: its merge redirect
    would otherwise send a downstream system to the customer it has left."""
    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,"])
    ann = ids(out)["1"]
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,", f"3,,{PHONE_1}"])
    retired = ids(out)["3"]
    issued_before = issued(out)
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,", f"3,ann@gmail.com,{PHONE_1}"])
    assert redirects(out) == [(retired, ann, ann, "merge")]
    retired_issued = issued_before[retired]
    summary = run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,", f"3,,{PHONE_1}"])
    assert ids(out) == {"1": ann, "2": ann, "3": retired}
    assert issued(out)[retired] == retired_issued  # not this run's start
    assert redirects(out) == [(ann, retired, retired, "split")]
    assert summary["ids"]["customers_split_off"] == 1


def test_a_merge_undone_gives_both_ids_back_when_the_merged_away_side_is_larger(
    cli, tmp_path: Path
):
    """The merged-away customer, larger than the one it was merged into, owned the surviving
    id when the merge was undone: the contact that id was derived from got a new one, and the
    retired id, with its merge redirect, stayed away. Each id goes back to its own records,
    with the time it was first issued."""
    out = tmp_path / "out"
    run(cli, tmp_path, ["1,ann@gmail.com,"])
    ann, ann_issued = ids(out)["1"], issued(out)[ids(out)["1"]]
    orders = [f"3,,{PHONE_1}", f"4,,{PHONE_1}", f"5,,{PHONE_1}"]
    run(cli, tmp_path, ["1,ann@gmail.com,", *orders])
    other = ids(out)["3"]
    other_issued = issued(out)[other]
    bridge = f"6,ann@gmail.com,{PHONE_1}"
    run(cli, tmp_path, ["1,ann@gmail.com,", *orders, bridge])  # the older id survives
    assert set(ids(out).values()) == {ann}
    assert redirects(out) == [(other, ann, ann, "merge")]
    summary = run(cli, tmp_path, ["1,ann@gmail.com,", *orders])  # the bridge is gone
    assert ids(out) == {"1": ann, "3": other, "4": other, "5": other}
    assert issued(out) == {ann: ann_issued, other: other_issued}
    assert redirects(out) == [(ann, other, other, "split")]
    assert summary["ids"]["customers_split_off"] == 1
    assert summary["ids"]["customers_kept"] == 1


def test_redirect_chains_resolve_to_the_live_id(cli, tmp_path: Path):
    out = tmp_path / "out"
    x, y, z = "1,x@gmail.com,", f"2,y@gmail.com,{PHONE_1}", f"3,,{PHONE_2}"
    run(cli, tmp_path, [x])
    run(cli, tmp_path, [x, y])
    run(cli, tmp_path, [x, y, z])
    first, second, third = ids(out)["1"], ids(out)["2"], ids(out)["3"]
    run(cli, tmp_path, [x, y, z, f"4,y@gmail.com,{PHONE_2}"])  # third → second
    assert redirects(out) == [(third, second, second, "merge")]
    run(cli, tmp_path, [x, y, z, f"4,y@gmail.com,{PHONE_2}", f"5,x@gmail.com,{PHONE_1}"])
    assert redirects(out) == [(third, first, second, "merge"), (second, first, first, "merge")]


def test_previous_must_be_an_output(cli, tmp_path: Path):
    write(tmp_path / "crm.csv", "id,email,phone\n1,ann@gmail.com,\n")
    config = write(tmp_path / "cfg.yaml", CONFIG)
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "--previous", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path}: --previous is not a cxunify output folder"


def test_previous_from_another_folder(cli, tmp_path: Path):
    run(cli, tmp_path, ["1,ann@gmail.com,"])
    kept = ids(tmp_path / "out")["1"]
    shutil.move(tmp_path / "out", tmp_path / "yesterday")
    write(tmp_path / "crm.csv", "id,email,phone\n1,ann@gmail.com,\n2,bob@gmail.com,\n")
    result = cli(
        "unify", "--config", tmp_path / "cfg.yaml", "--out", tmp_path / "out",
        "--previous", tmp_path / "yesterday", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert ids(tmp_path / "out")["1"] == kept


def test_a_run_reading_another_folder_locks_it(cli, tmp_path: Path):
    """Reviewing a rule change (`unify --previous out --out out.candidate`) while the nightly
    update replaces out: the ids were read from whichever output out held at each read, one
    file from each perhaps. The folder read is locked, as an update elsewhere locks it."""
    from cxunify.lock import lock_path, output_lock

    run(cli, tmp_path, ["1,ann@gmail.com,"])
    previous = tmp_path / "out"
    args = ("unify", "--config", tmp_path / "cfg.yaml", "--out", tmp_path / "candidate",
            "--previous", previous, "-q")  # fmt: skip
    with output_lock(previous):
        result = cli(*args)
    assert result.exit_code == 4
    assert result.stderr.startswith(f"Error: {previous}: another cxunify run (pid ")
    assert not (tmp_path / "candidate").exists()
    assert not lock_path(previous).exists()
    assert cli(*args).exit_code == 0


def test_a_redirect_to_a_customer_whose_records_are_all_gone_names_nobody(cli, tmp_path: Path):
    """id_redirects.customer_id names a customer of this run, or is NULL: never an id that
    no profile holds; the customer back with its id, it names it again."""
    out = tmp_path / "out"
    run(cli, tmp_path, [f"1,,{PHONE_1}"])
    older = ids(out)["1"]
    run(cli, tmp_path, [f"1,,{PHONE_1}", "2,ann@gmail.com,"])
    newer = ids(out)["2"]
    run(cli, tmp_path, [f"1,,{PHONE_1}", "2,ann@gmail.com,", f"3,ann@gmail.com,{PHONE_1}"])
    assert redirects(out) == [(newer, older, older, "merge")]
    summary = run(cli, tmp_path, ["4,cat@gmail.com,"])  # every earlier record is gone
    assert redirects(out) == [(newer, None, older, "merge")]
    assert summary["ids"]["customers_removed"] == 1
    assert summary["ids"]["removed_share"] == 1.0
    # They are back (last night's export was cut short), with their id: the redirect leads
    # to it again.
    back = [f"1,,{PHONE_1}", "2,ann@gmail.com,", f"3,ann@gmail.com,{PHONE_1}"]
    summary = run(cli, tmp_path, [*back, "4,cat@gmail.com,"])
    assert {ids(out)[k] for k in "123"} == {older}
    assert redirects(out) == [(newer, older, older, "merge")]
    assert summary["ids"]["customers_returned"] == 1


def test_an_output_folder_without_its_identity_map_is_refused(cli, tmp_path: Path):
    """Taken for a first run, it would issue every id afresh and skip the churn gates."""
    run(cli, tmp_path, ["1,ann@gmail.com,"])
    (tmp_path / "out" / "identity_map.parquet").unlink()
    config = tmp_path / "cfg.yaml"
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'out'}: holds run.json but no identity_map.parquet, so the "
        "customer ids of the previous run cannot be carried over; restore it from a backup, "
        "or remove the folder to start again with new ids\n"
    )


def test_an_output_nested_in_its_previous_output_is_refused(cli, tmp_path: Path):
    """The next run writing the outer folder would replace it whole, the inner one with it."""
    run(cli, tmp_path, ["1,ann@gmail.com,"])
    out = tmp_path / "out"
    result = cli("unify", "--config", tmp_path / "cfg.yaml", "--previous", out,
                 "--out", out / "sub", "-q")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'sub'}: --out is inside --previous {out}, which a run writing it "
        "replaces whole; choose a folder outside it\n"
    )
    assert not (out / "sub").exists()


def removed(out: Path) -> list[tuple]:
    return duckdb.sql(
        f"SELECT record, customer_id FROM '{out}/removed_records.parquet' ORDER BY record"
    ).fetchall()


def digest(record_id: str) -> str:
    import hashlib

    return hashlib.sha256(f"crm\x1f{record_id}".encode()).hexdigest()


def test_records_back_after_leaving_get_their_id_back_in_unify_and_update(cli, tmp_path: Path):
    """A customer whose records all left (an export cut short one night, a contact deleted
    by mistake) and came back got the id of its smallest record afresh, not the id it had:
    here that of record 2, which had left for good, so a downstream system holding the
    customer's id lost it. The records that left are remembered with their id
    (removed_records.parquet, by digest), and a full run and an update agree."""
    out = tmp_path / "out"
    run(cli, tmp_path, ["2,ann@gmail.com,", "5,ann@gmail.com,"])
    ann, issued_at = ids(out)["5"], issued(out)[ids(out)["5"]]
    run(cli, tmp_path, ["9,zed@gmail.com,"])  # both of ann's records leave
    zed = ids(out)["9"]
    assert removed(out) == sorted([(digest("2"), ann), (digest("5"), ann)])
    shutil.copytree(out, tmp_path / "updated")
    summary = run(cli, tmp_path, ["5,ann@gmail.com,", "9,zed@gmail.com,"])  # 5 is back
    assert ids(out) == {"5": ann, "9": zed}
    assert issued(out)[ann] == issued_at
    assert summary["ids"]["customers_returned"] == 1 and summary["ids"]["customers_new"] == 0
    assert removed(out) == [(digest("2"), ann)]  # 2 is still away
    # The same night as an update of the copy: 5 added, 9 kept as stored.
    write(tmp_path / "crm.csv", "id,email,phone\n5,ann@gmail.com,\n")
    result = cli("update", "--previous", tmp_path / "updated", "--config", tmp_path / "cfg.yaml")
    assert result.exit_code == 0, result.stderr
    for name in ("identity_map", "customer_ids", "id_redirects", "removed_records"):
        assert _ids_of(tmp_path / "updated", name) == _ids_of(out, name), name


def _ids_of(out: Path, name: str) -> list[tuple]:
    columns = "source, source_record_id, customer_id" if name == "identity_map" else "*"
    return duckdb.sql(f"SELECT {columns} FROM '{out}/{name}.parquet' ORDER BY ALL").fetchall()


def test_an_id_whose_records_left_is_never_issued_to_another_person(cli, tmp_path: Path):
    """Record 1 (ann's id was derived from it) was erased, and its id came back later as
    another person's: ann's id stayed with record 2, then both left; record 1, back, was given
    the id derived from it, which a downstream system held as ann's. It gets its own id."""
    out = tmp_path / "out"
    config = tmp_path / "cfg.yaml"
    run(cli, tmp_path, ["1,ann@gmail.com,", "2,ann@gmail.com,"])
    ann = ids(out)["1"]

    def update(rows: list[str], *erase: str) -> None:
        write(tmp_path / "crm.csv", "id,email,phone\n" + "".join(r + "\n" for r in rows))
        extra = []
        if erase:
            lines = ["source,source_record_id", *(f"crm,{e}" for e in erase)]
            extra = ["--delete", write(tmp_path / "erase.csv", "\n".join(lines) + "\n")]
        result = cli("update", "--previous", out, "--config", config, "-q", *extra)
        assert result.exit_code == 0, result.stderr

    update([], "1")
    assert ids(out) == {"2": ann}
    update(["1,zed@gmail.com,"])  # another person, under the erased record's id
    zed = ids(out)["1"]
    assert zed != ann
    update([], "1", "2")
    assert ids(out) == {}
    update(["1,zed@gmail.com,"])
    assert ids(out) == {"1": zed}
    assert ann in {customer for _, customer in removed(out)}
