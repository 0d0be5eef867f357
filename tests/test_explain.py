"""`cxunify explain`: a customer's records, links, weight waterfall and guard splits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import write


@pytest.fixture(scope="module")
def small_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ann Lee twice (same email, phone, dob) and Bob Diaz once: one link, two customers."""
    root = tmp_path_factory.mktemp("explain")
    write(
        root / "crm.csv",
        "id,first_name,last_name,email,phone,dob\n"
        "1,Ann,Lee,ann.lee@gmail.com,+15550101001,1980-01-02\n"
        "2,Anne,Lee,ann.lee@gmail.com,+15550101001,1980-01-02\n"
        "3,Bob,Diaz,bob.diaz@outlook.com,+15550109999,1975-06-07\n",
    )
    from typer.testing import CliRunner

    from cxunify.cli import app

    out = root / "out"
    result = CliRunner().invoke(app, ["unify", "--crm", str(root / "crm.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


def test_json_explains_the_link_field_by_field(cli, small_out: Path):
    result = cli("explain", "--out", small_out, "--record", "crm:2", "--json")
    assert result.exit_code == 0, result.stderr
    explained = json.loads(result.stdout)
    assert [r["source_record_id"] for r in explained["records"]] == ["1", "2"]
    assert [r["first_name"] for r in explained["records"]] == ["Ann", "Anne"]
    assert explained["records"][0]["dob"] == "1980-01-02"
    (link,) = explained["links"]
    assert (link["left"], link["right"], link["kept"], link["status"]) == (
        "crm:1",
        "crm:2",
        True,
        "linked",
    )
    run = json.loads((small_out / "run.json").read_text())
    levels = {(w["comparison"], w["gamma"]): w for w in run["model"]["weights"]}
    stored = duckdb.sql(f"SELECT * FROM '{small_out}/links.parquet'").fetchall()[0]
    names = [d[0] for d in duckdb.sql(f"SELECT * FROM '{small_out}/links.parquet'").description]
    stored_link = dict(zip(names, stored, strict=True))
    fields = {f["comparison"]: f for f in link["fields"]}
    # Every comparison of the pair is there with the level label of run.json and the stored
    # partial weight; the prior and the partial weights add up to the stored match weight.
    assert set(fields) == {n.removeprefix("gamma_") for n in names if n.startswith("gamma_")}
    assert fields["email"]["level"] == levels[("email", fields["email"]["gamma"])]["level"]
    assert fields["phone"]["level"] == levels[("phone", fields["phone"]["gamma"])]["level"]
    assert fields["phone"]["weight"] == pytest.approx(
        levels[("phone", fields["phone"]["gamma"])]["partial_weight"]
    )
    for name, evidence in fields.items():
        assert evidence["weight"] == pytest.approx(stored_link[f"weight_{name}"] or 0.0)
    total = link["prior_weight"] + sum(f["weight"] for f in link["fields"])
    assert (
        total == pytest.approx(link["match_weight"]) == pytest.approx(stored_link["match_weight"])
    )
    assert explained["guard_splits"] == []


def test_customer_and_record_give_the_same_explanation(cli, small_out: Path):
    by_record = json.loads(cli("explain", "--out", small_out, "--record", "crm:3", "--json").stdout)
    customer = by_record["customer_id"]
    by_customer = cli("explain", "--out", small_out, "--customer", customer, "--json")
    assert json.loads(by_customer.stdout) == by_record
    assert [r["first_name"] for r in by_record["records"]] == ["Bob"]


def test_a_record_pasted_with_whitespace_at_its_ends_is_found(cli, small_out: Path):
    """Ids are stored without the whitespace at their ends: 'crm:3' and a tab was no record."""
    asked = cli("explain", "--out", small_out, "--record", "crm:3", "--json")
    pasted = cli("explain", "--out", small_out, "--record", "crm:\t3\u00a0\r\n", "--json")
    assert pasted.exit_code == 0, pasted.stderr
    assert json.loads(pasted.stdout) == json.loads(asked.stdout)


def test_text_output_has_records_links_and_a_waterfall(cli, small_out: Path):
    result = cli("explain", "--out", small_out, "--record", "crm:1")
    assert result.exit_code == 0, result.stderr
    for text in ("Source records", "crm:1", "crm:2", "Scored pairs", "prior", "match weight"):
        assert text in result.stdout
    assert "█" in result.stdout and "linked" in result.stdout


def test_guard_splits_on_the_sample(cli, sample_out: Path):
    # The strongest refused link whose records stayed apart: a refused link's records can
    # still meet through a third record the guard let in (Ciudy ~ Cindy ~ Cynthia).
    refused = duckdb.sql(
        f"SELECT k.left_source, k.left_source_record_id, k.guard "
        f"FROM '{sample_out}/links.parquet' k "
        f"JOIN '{sample_out}/identity_map.parquet' r ON r.source = k.right_source "
        "AND r.source_record_id = k.right_source_record_id "
        "WHERE k.guard IS NOT NULL AND r.customer_id <> k.customer_id "
        "ORDER BY k.match_weight DESC LIMIT 1"
    ).fetchall()
    source, record, guard = refused[0]
    result = cli("explain", "--out", sample_out, "--record", f"{source}:{record}", "--json")
    assert result.exit_code == 0, result.stderr
    explained = json.loads(result.stdout)
    assert guard in {split["guard"] for split in explained["guard_splits"]}
    assert all(
        s["other_customer_id"] != explained["customer_id"] for s in explained["guard_splits"]
    )
    statuses = {link["status"] for link in explained["links"]}
    assert f"refused: {guard}" in statuses
    text = cli("explain", "--out", sample_out, "--record", f"{source}:{record}").stdout
    assert f"Guard '{guard}' refused" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Error: give either --customer or --record"),
        (("--customer", "c_1", "--record", "crm:1"), "Error: give either --customer or --record"),
        (("--record", "crm"), "Error: --record crm: expected SOURCE:ID, e.g. crm:C00000250"),
        (("--record", "crm:404"), "Error: no record crm:404 in {out}/identity_map.parquet"),
        # A source the output does not have was 'no record' alone, as a mistyped id is.
        (
            ("--record", "CRM:1"),
            "Error: no record CRM:1 in {out}/identity_map.parquet: the output has no source "
            "'CRM' (its sources: crm; did you mean 'crm'?)",
        ),
        (
            ("--record", "orders:1"),
            "Error: no record orders:1 in {out}/identity_map.parquet: the output has no source "
            "'orders' (its sources: crm)",
        ),
        (("--customer", "c_nobody"), "Error: no customer c_nobody in {out}"),
    ],
)
def test_user_errors(cli, small_out: Path, args: tuple[str, ...], message: str):
    result = cli("explain", "--out", small_out, *args)
    assert result.exit_code == 1
    assert result.stderr.strip() == message.format(out=small_out)


def test_a_rejected_record_says_it_was_rejected_and_why(cli, sample_out: Path):
    """A row rejected on input was 'no record' alone, as if the id were mistyped."""
    rejects = sample_out / "rejects.parquet"
    with duckdb.connect() as con:
        [(file, line, reason)] = con.execute(
            "SELECT file, line, reason FROM read_parquet($p) "
            "WHERE starts_with(raw, 'ORD-10000152,')",
            {"p": str(rejects)},
        ).fetchall()
    result = cli("explain", "--out", sample_out, "--record", "orders:ORD-10000152")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: record orders:ORD-10000152 was rejected on input ({reason}; {file} line "
        f"{line}); {rejects} holds its raw row\n",
    )
    # An id no raw row holds whole (a part of one) may be a row whose id could not be read.
    result = cli("explain", "--out", sample_out, "--record", "orders:10000152")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no record orders:10000152 in {sample_out}/identity_map.parquet; 7 rows of "
        f"orders were rejected on input, and it may be one whose id could not be read: see "
        f"{rejects}\n"
    )


def test_an_output_folder_from_before_records_parquet(cli, tmp_path: Path):
    result = cli("explain", "--out", tmp_path, "--customer", "c_1")
    assert result.exit_code == 1
    assert "no records.parquet; run cxunify unify (this version) first" in result.stderr


def test_a_record_whose_source_or_id_holds_a_colon(cli, tmp_path: Path):
    """`--record` was split at its first colon, so such a record could not be asked for."""
    write(tmp_path / "crm.csv", "id,email\nA:1,ann.lee@gmail.com\n")
    config = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: 'eu:crm', kind: crm, path: crm.csv, id: id, "
        "columns: {email: email}}\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    result = cli("explain", "--out", out, "--record", "eu:crm:A:1", "--json")
    assert result.exit_code == 0, result.stderr
    assert [r["source_record_id"] for r in json.loads(result.stdout)["records"]] == ["A:1"]
    # In another case, the source's name is told whole, colon and all.
    result = cli("explain", "--out", out, "--record", "EU:CRM:A:1")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no record EU:CRM:A:1 in {out}/identity_map.parquet: the output has no source "
        "'EU:CRM' (its sources: eu:crm; did you mean 'eu:crm'?)\n",
    )


@pytest.mark.parametrize("manifest", ["{not json", "[]"])
def test_a_damaged_run_json_is_a_user_error(cli, small_out: Path, tmp_path: Path, manifest: str):
    """A run.json cut short or overwritten was an internal error (exit 2, JSONDecodeError)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(small_out, out)
    (out / "run.json").write_text(manifest)
    result = cli("explain", "--out", out, "--record", "crm:1")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'run.json'}: not a readable run manifest; run cxunify unify again\n"
    )


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ({"matching": None, "model": None}, "matching: not an object"),
        ({"model": None}, "model: not an object"),
        ({"model": {"weights": [{"comparison": "email"}]}}, "model.weights[0]: no level"),
        ({"model": {"weights": {}}}, "model.weights: not a list"),
        (
            {"model": {"weights": [{"name": "email", "levels": "ab"}]}},
            "model.weights[0].levels: not a list",
        ),
        (
            {"model": {"weights": [{"comparison": "e", "level": "x", "gamma": "1"}]}},
            "model.weights[0].gamma: not a whole number",
        ),
        ({"matching": {"threshold": "high"}}, "matching.threshold: not a number"),
    ],
)
def test_a_run_json_of_wrong_types_is_a_user_error(
    cli, small_out: Path, tmp_path: Path, manifest: dict, problem: str
):
    """A run.json edited by hand ("model": null, a weight without its level) was an internal
    error (exit 2: AttributeError, KeyError)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(small_out, out, ignore=shutil.ignore_patterns("state"))
    run = json.loads((small_out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(run | manifest))
    result = cli("explain", "--out", out, "--record", "crm:1")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {out / 'run.json'}: not a readable run manifest ({problem}); run cxunify "
        "unify again\n",
    )


def test_records_joined_as_one_identity_say_so(cli, tmp_path: Path):
    # Two rows equal in every identity field are one identity: no pair is ever scored.
    data = write(
        tmp_path / "crm.csv",
        "id,first_name,last_name,email\n1,Ann,Lee,ann@gmail.com\n2,Ann,Lee,ann@gmail.com\n"
        "3,Bob,Diaz,bob@outlook.com\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--crm", data, "--out", out, "-q").exit_code == 0
    together = cli("explain", "--out", out, "--record", "crm:2")
    assert together.exit_code == 0, together.stderr
    assert (
        "No scored pairs touch this customer's records: its 2 records are identical in every "
        "identity field" in " ".join(together.stdout.split())
    )
    alone = cli("explain", "--out", out, "--record", "crm:3")
    assert "No scored pairs touch this customer's record." in " ".join(alone.stdout.split())


def test_values_with_brackets_are_shown_as_they_are(cli, small_out: Path, tmp_path: Path):
    """rich read brackets in a record's values as markup: a first name '[red]Ann' showed as
    'Ann', and a city '[/b]' stopped explain with an internal error (exit 2)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(small_out, out)
    records = out / "records.parquet"
    duckdb.sql(
        f"COPY (SELECT * REPLACE (CASE WHEN source_record_id = '1' THEN '[red]Ann' "
        f"ELSE first_name END AS first_name, '[/b]' AS city) FROM '{records}') "
        f"TO '{tmp_path / 'records.parquet'}' (FORMAT parquet)"
    )
    shutil.move(tmp_path / "records.parquet", records)
    result = cli("explain", "--out", out, "--record", "crm:1")
    assert result.exit_code == 0, result.stderr
    assert "[red]Ann" in result.stdout and "[/b]" in result.stdout


def test_an_id_retired_by_a_merge_names_the_customer_it_went_to(
    cli, small_out: Path, tmp_path: Path
):
    """A downstream system holding an id a merge retired got 'no customer c_... in out', as
    for an id never issued, though id_redirects.parquet says where its records are."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(small_out, out)
    ((kept,),) = duckdb.sql(f"SELECT min(customer_id) FROM '{out}/profiles.parquet'").fetchall()
    duckdb.sql(
        f"COPY (SELECT * FROM (VALUES ('c_old', '{kept}', 'c_mid', 'merge', "
        "TIMESTAMP '2026-01-02 03:04:05'), ('c_gone', NULL, 'c_mid', 'merge', "
        "TIMESTAMP '2026-01-03 00:00:00'), ('c_part', 'c_other', 'c_other', 'split', "
        "TIMESTAMP '2026-01-04 00:00:00')) "
        "t(old_customer_id, customer_id, redirected_to, reason, redirected_at)) "
        f"TO '{tmp_path / 'redirects.parquet'}' (FORMAT parquet)"
    )
    shutil.move(tmp_path / "redirects.parquet", out / "id_redirects.parquet")
    expected = {
        "c_old": f"customer c_old was merged into {kept} on 2026-01-02; ask for --customer {kept}",
        "c_gone": f"customer c_gone was merged into c_mid on 2026-01-03, whose records are no "
        f"longer in {out}",
        "c_part": f"no customer c_part in {out}; part of its records became customer c_other on "
        "2026-01-04 (split)",
        "c_never": f"no customer c_never in {out}",
    }
    for retired, message in expected.items():
        result = cli("explain", "--out", out, "--customer", retired)
        assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n")


def test_the_id_alone_names_a_customer_or_a_record(cli, small_out: Path):
    by_record = cli("explain", "--out", small_out, "--record", "crm:1", "--json")
    customer = json.loads(by_record.stdout)["customer_id"]
    for target in ("crm:1", customer):
        result = cli("explain", "--out", small_out, target, "--json")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == by_record.stdout
    both = cli("explain", "--out", small_out, "crm:1", "--customer", customer)
    assert both.exit_code == 1
    assert both.stderr.strip() == "Error: give crm:1 or --customer/--record, not both"


def test_a_customer_of_many_records_shows_each_fields_values(cli, sample_out: Path):
    """Side by side, 42 records took a column each of 80 characters: every cell was empty."""
    customer, records = duckdb.sql(
        f"SELECT customer_id, count(*) FROM '{sample_out}/identity_map.parquet' "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).fetchall()[0]
    names = duckdb.sql(
        f"SELECT r.first_name, count(*), min(r.source || ':' || r.source_record_id) "
        f"FROM '{sample_out}/records.parquet' r WHERE r.customer_id = '{customer}' "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    assert records > 8 and len(names) > 1  # more than 80 characters hold, and names differ
    result = cli("explain", "--out", sample_out, customer)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())  # the table folds long cells
    assert f"Source records: the values of their {records} records" in text
    commonest, count, _ = names[0]
    assert f"{commonest} ({count})" in text
    rare, _, holder = names[-1]
    assert f"{rare} ({holder}" in text
    assert f"{customer}: {records} source records" in text


def test_the_stages_segment_and_score_explained_are_those_of_every_sample_profile(
    sample_out: Path,
):
    """The rules told in words (trait_reasons) and the SQL that set the traits are two
    writings of README's rules: on every customer of the sample they give the same answers."""
    from cxunify.trait_reasons import trait_reasons

    manifest = json.loads((sample_out / "run.json").read_text(encoding="utf-8"))
    assert manifest["profile"]["lifecycle"] == {"new_days": 90, "active_days": 180,
                                                "lapsed_days": 365}  # fmt: skip
    found = duckdb.sql(f"SELECT * FROM '{sample_out}/profiles.parquet'")
    names = found.columns
    seen: dict[str, set] = {}
    for row in found.fetchall():
        profile = dict(zip(names, row, strict=True))
        for reason in trait_reasons(profile, manifest["profile"], manifest["as_of"]):
            assert reason.value == profile[reason.trait], (profile["customer_id"], reason)
            seen.setdefault(reason.trait, set()).add(reason.value)
    # Every stage and segment occurs, so each rule was checked on some customer.
    assert seen["lifecycle_stage"] == {"prospect", "new", "active", "at_risk", "lapsed"}
    assert seen["journey_stage"] == {"research", "comparison", "purchase", "support", "loyalty"}
    assert len(seen["rfm_segment"] - {None}) == 8
    assert None in seen["experience_score"] and len(seen["experience_score"]) > 100


def test_explain_says_why_a_customer_is_at_risk(cli, sample_out: Path):
    (customer,) = duckdb.sql(
        f"SELECT customer_id FROM '{sample_out}/profiles.parquet' "
        "WHERE lifecycle_stage = 'at_risk' ORDER BY customer_id LIMIT 1"
    ).fetchall()[0]
    result = cli("explain", "--out", sample_out, customer, "--json")
    assert result.exit_code == 0, result.stderr
    traits = {t["trait"]: t for t in json.loads(result.stdout)["traits"]}
    assert traits["lifecycle_stage"]["value"] == "at_risk"
    assert "beyond active_days (180), within lapsed_days (365)" in traits["lifecycle_stage"]["why"]
    text = cli("explain", "--out", sample_out, customer, "--waterfalls", "0")
    assert "Stages and score: why" in text.stdout and "lapsed_days" in text.stdout


def test_an_output_without_recorded_settings_says_so(cli, small_out: Path, tmp_path: Path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(small_out, out)
    manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
    del manifest["profile"]
    from cxunify.output import with_digest

    (out / "run.json").write_text(json.dumps(with_digest(manifest)), encoding="utf-8")
    ((customer,),) = duckdb.sql(
        f"SELECT customer_id FROM '{out}/profiles.parquet' LIMIT 1"
    ).fetchall()
    result = cli("explain", "--out", out, customer, "--json")
    assert result.exit_code == 0, result.stderr
    for reason in json.loads(result.stdout)["traits"]:
        assert reason["why"] == (
            "this output's run.json does not record the settings it was set with"
        )


def test_a_customer_whose_records_all_left_says_so(cli, tmp_path: Path):
    """An id whose records were all deleted (or left the exports) was 'no customer', as an id
    never issued; removed_records.parquet says they left, and when."""
    config = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email}}\n",
    )
    write(tmp_path / "crm.csv", "id,email\n1,ann@gmail.com\n2,ann@gmail.com\n3,bob@gmail.com\n")
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "--quiet").exit_code == 0
    ((ann,),) = duckdb.sql(
        f"SELECT customer_id FROM '{out}/identity_map.parquet' WHERE source_record_id = '1'"
    ).fetchall()
    write(tmp_path / "crm.csv", "id,email\n3,bob@gmail.com\n")
    assert cli("unify", "--config", config, "--out", out, "--quiet").exit_code == 0
    result = cli("explain", "--out", out, "--customer", ann)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: no customer {ann} in {out}: all 2 of its records left (the last on "
    )
    assert "deleted, or no longer in the exports" in result.stderr


def test_a_record_that_left_says_so(cli, tmp_path: Path, monkeypatch):
    """`explain --record crm:1` of a record deleted or gone from the exports said only 'no
    record', though removed_records.parquet keeps its digest, its customer and when it left;
    with hash_pii the digest is keyed, found with the key."""
    write(tmp_path / "crm.csv", "id,email\n1,ann@gmail.com\n2,ann@gmail.com\n3,bob@gmail.com\n")
    plain = "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email}}\n"
    for config in (plain, plain + "output:\n  hash_pii: true\n"):
        monkeypatch.setenv("CXUNIFY_PII_KEY", "explain-test-key-not-secret")
        write(tmp_path / "cfg.yaml", config)
        write(tmp_path / "crm.csv", "id,email\n1,ann@gmail.com\n2,ann@gmail.com\n")
        out = tmp_path / ("hashed" if "hash_pii" in config else "plain")
        command = ("unify", "--config", tmp_path / "cfg.yaml", "--out", out, "--quiet")
        assert cli(*command).exit_code == 0
        ((ann,),) = duckdb.sql(
            f"SELECT customer_id FROM '{out}/identity_map.parquet' WHERE source_record_id = '1'"
        ).fetchall()
        write(tmp_path / "crm.csv", "id,email\n2,ann@gmail.com\n")
        assert cli(*command).exit_code == 0
        result = cli("explain", "--out", out, "--record", "crm: 1")
        assert result.exit_code == 1
        assert re.fullmatch(
            rf"Error: record crm:1 left {re.escape(str(out))} on \d{{4}}-\d\d-\d\d \(deleted, "
            rf"or no longer in the exports\); it was customer {ann}'s then\n",
            " ".join(result.stderr.split(" ")).replace("\n", " ").rstrip() + "\n",
        ), result.stderr
        assert "no record" in cli("explain", "--out", out, "--record", "crm:9").stderr
    # Without the key, a hashed output's digests tell nothing.
    monkeypatch.delenv("CXUNIFY_PII_KEY")
    result = cli("explain", "--out", tmp_path / "hashed", "--record", "crm:1")
    assert result.stderr.startswith("Error: no record crm:1 in ")
