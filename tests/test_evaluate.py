"""Evaluation against a truth file: hand-computed on a tiny folder, recomputed on the sample."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cxunify.evaluate import assess, evaluate, golden_accuracy
from tests.conftest import SAMPLE, write


def _tiny_output(folder: Path) -> Path:
    """Five records of two people (a1 a2 a3, b1 b2) put into three customers:
    {a1, a2, b1}, {a3}, {b2}; four scored pairs, threshold 0.9."""
    folder.mkdir()
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM (VALUES ('crm', 'a1', 'c1'), ('crm', 'a2', 'c1'), "
        "('crm', 'b1', 'c1'), ('crm', 'a3', 'c2'), ('crm', 'b2', 'c3')) "
        "t(source, source_record_id, customer_id)) TO $p (FORMAT parquet)",
        {"p": str(folder / "identity_map.parquet")},
    )
    con.execute(
        """
        COPY (SELECT 'crm' AS left_source, l AS left_source_record_id, 'crm' AS right_source,
                     r AS right_source_record_id, c AS customer_id, 'email_std' AS blocking_rule,
                     false AS forced, w AS match_weight, p AS match_probability, kept,
                     NULL::VARCHAR AS guard, p >= 0.9 AS above_threshold
              FROM (VALUES ('a1', 'a2', 'c1', 6.6, 0.99, true),
                           ('a1', 'b1', 'c1', 4.2, 0.95, true),
                           ('a2', 'a3', 'c1', 0.0, 0.5, false),
                           ('b1', 'b2', 'c1', -2.0, 0.2, false)) t(l, r, c, w, p, kept))
        TO $p (FORMAT parquet)
        """,
        {"p": str(folder / "links.parquet")},
    )
    con.close()
    (folder / "run.json").write_text(json.dumps({"matching": {"threshold": 0.9}}))
    truth = folder / "truth.csv"
    truth.write_text(
        "source,source_record_id,person_id\n"
        + "".join(f"crm,{r},{r[0].upper()}\n" for r in ("a1", "a2", "a3", "b1", "b2"))
    )
    return truth


def test_a_run_json_of_wrong_types_is_a_user_error(cli, tmp_path: Path):
    """A threshold of text in a hand-edited run.json was an internal error (exit 2,
    ValueError); "matching": null was taken for no threshold at all."""
    out = tmp_path / "out"
    truth = _tiny_output(out)
    for damaged, problem in (
        ({"matching": {"threshold": "0.9x"}}, "matching.threshold: not a number"),
        ({"matching": None}, "matching: not an object"),
    ):
        (out / "run.json").write_text(json.dumps(damaged))
        result = cli("evaluate", "--out", out, "--truth", truth)
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: {out / 'run.json'}: not a readable run manifest ({problem}); run cxunify "
            "unify again\n",
        )


def test_hand_computed_figures(tmp_path: Path):
    out = tmp_path / "out"
    truth = _tiny_output(out)
    evaluation = assess(out, truth)
    q = evaluation.quality
    # True pairs: a1a2 a1a3 a2a3 b1b2 (4); predicted: a1a2 a1b1 a2b1 (3); correct: a1a2.
    assert (q.true_pairs, q.predicted_pairs, q.correct_pairs) == (4, 3, 1)
    assert q.pairwise_precision == pytest.approx(1 / 3)
    assert q.pairwise_recall == pytest.approx(1 / 4)
    assert q.pairwise_f1 == pytest.approx(2 / 7)
    # B-cubed precision per record: a1 2/3, a2 2/3, b1 1/3, a3 1, b2 1; recall: a1 2/3,
    # a2 2/3, a3 1/3, b1 1/2, b2 1/2.
    assert q.bcubed_precision == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    assert q.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)
    assert (q.true_customers, q.predicted_customers, q.largest_cluster) == (2, 3, 3)
    assert (evaluation.split_people, evaluation.mixed_customers) == (2, 1)
    curve = {point["threshold"]: point for point in evaluation.curve}
    # Three of the four scored pairs are one person; at 0.9 two pairs pass, one of them true.
    assert (curve[0.9]["pairs"], curve[0.9]["true_pairs"]) == (2, 1)
    assert (curve[0.9]["precision"], curve[0.9]["recall"]) == pytest.approx((1 / 2, 1 / 3))
    assert (curve[0.5]["precision"], curve[0.5]["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert (curve[0.1]["pairs"], curve[0.1]["recall"]) == (4, 1.0)
    assert evaluation.false_merge_links == 1
    assert [r["right_source_record_id"] for r in evaluation.worst_false_merges] == ["b1"]
    assert evaluation.missed_links == 2
    # Of the three true pairs split (a1a3, a2a3, b1b2), one is in no row of links.parquet.
    assert evaluation.missed_pairs_unscored == 1
    assert [
        (r["right_source_record_id"], r["why_apart"]) for r in evaluation.worst_missed_links
    ] == [
        ("a3", "below threshold"),
        ("b2", "below threshold"),
    ]


def test_golden_accuracy_hand_computed(tmp_path: Path):
    """Customers c1 {a1, a2, b1} and c2 {a3} are person A's (most of their records), c3 {b2}
    B's. Golden values are compared as a run standardises them; another spelling given for a
    field counts; a golden NULL is wrong, a field whose true value is unknown is not scored."""
    out = tmp_path / "out"
    truth = _tiny_output(out)
    duckdb.execute(
        "COPY (SELECT * FROM (VALUES "
        "('c1', 'Jose', 'LEE ', 'A@X.COM', '12 Main St.', DATE '1980-02-03'), "
        "('c2', 'Joe', NULL, 'a@x.com', '12 Main St Apt 4', DATE '1980-03-02'), "
        "('c3', 'Ann', 'Lee', NULL, NULL, NULL)) "
        "t(customer_id, first_name, last_name, email, street, dob)) TO $p (FORMAT parquet)",
        {"p": str(out / "profiles.parquet")},
    )
    people = pl.DataFrame(
        {
            "person_id": ["A", "B"],
            "first_name": ["José", "Ann"],
            "first_name_alt": ["Jose", "Ann"],
            "last_name": ["Lee", None],
            "email": ["a@x.com", "b@x.com"],
            "street": ["12 Main Street", None],
            "dob": [date(1980, 2, 3), None],
        }
    )
    accuracy = golden_accuracy(out, truth, people)
    assert accuracy.customers == 3
    assert accuracy.fields == {
        "first_name": 2 / 3,
        "last_name": 1 / 2,
        "email": 2 / 3,
        "street": 1 / 2,
        "dob": 1 / 2,
    }
    assert accuracy.overall == 7 / 12


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _independent_quality(out: Path, truth_path: Path) -> dict[str, float]:
    """Pairwise and B-cubed figures recomputed in plain Python, record by record."""
    truth = {(r["source"], r["source_record_id"]): r["person_id"] for r in _read_csv(truth_path)}
    rows = duckdb.sql(
        f"SELECT source, source_record_id, customer_id FROM '{out}/identity_map.parquet'"
    ).fetchall()
    assigned = [(customer, truth[(s, i)]) for s, i, customer in rows if (s, i) in truth]
    cluster_size = Counter(c for c, _ in assigned)
    class_size = Counter(p for _, p in assigned)
    cell_size = Counter(assigned)

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    correct = sum(pairs(n) for n in cell_size.values())
    predicted = sum(pairs(n) for n in cluster_size.values())
    true = sum(pairs(n) for n in class_size.values())
    b_precision = sum(cell_size[(c, p)] / cluster_size[c] for c, p in assigned) / len(assigned)
    b_recall = sum(cell_size[(c, p)] / class_size[p] for c, p in assigned) / len(assigned)
    return {
        "records": len(assigned),
        "true_customers": len(class_size),
        "predicted_customers": len(cluster_size),
        "pairwise_precision": correct / predicted,
        "pairwise_recall": correct / true,
        "bcubed_precision": b_precision,
        "bcubed_recall": b_recall,
    }


def test_sample_figures_match_an_independent_computation(cli, sample_out: Path):
    result = cli("evaluate", "--out", sample_out, "--truth", SAMPLE / "truth.csv", "--json")
    assert result.exit_code == 0, result.stderr
    reported = json.loads(result.stdout)
    expected = _independent_quality(sample_out, SAMPLE / "truth.csv")
    for name, value in expected.items():
        assert reported["quality"][name] == pytest.approx(value, abs=1e-12), name
    # DuckDB sums floats in parallel, so the last digit may differ between two runs.
    assert reported["quality"] == pytest.approx(
        evaluate(sample_out, SAMPLE / "truth.csv").as_dict()
    )


def test_sample_curve_and_errors_match_the_links(sample_out: Path):
    truth = {
        (r["source"], r["source_record_id"]): r["person_id"]
        for r in _read_csv(SAMPLE / "truth.csv")
    }
    customer = {
        (s, i): c
        for s, i, c in duckdb.sql(
            f"SELECT source, source_record_id, customer_id FROM '{sample_out}/identity_map.parquet'"
        ).fetchall()
    }
    links = duckdb.sql(
        "SELECT left_source, left_source_record_id, right_source, right_source_record_id, "
        f"match_probability, match_weight, kept FROM '{sample_out}/links.parquet'"
    ).fetchall()
    judged = [
        (truth[(ls, li)] == truth[(rs, ri)], p, w, kept, customer[(ls, li)] != customer[(rs, ri)])
        for ls, li, rs, ri, p, w, kept in links
    ]
    evaluation = assess(sample_out, SAMPLE / "truth.csv", limit=5)
    all_true = sum(same for same, *_ in judged)
    for point in evaluation.curve:
        passing = [same for same, p, *_ in judged if p >= point["threshold"]]
        assert point["pairs"] == len(passing)
        assert point["precision"] == pytest.approx(sum(passing) / len(passing))
        assert point["recall"] == pytest.approx(sum(passing) / all_true)
    assert 0.9 in [point["threshold"] for point in evaluation.curve]
    false_merges = sorted((w for same, _, w, kept, _ in judged if kept and not same), reverse=True)
    assert evaluation.false_merge_links == len(false_merges) > 0
    assert [r["match_weight"] for r in evaluation.worst_false_merges] == false_merges[:5]
    missed = sorted((w for same, _, w, _, apart in judged if same and apart), reverse=True)
    assert evaluation.missed_links == len(missed) > 0
    assert [r["match_weight"] for r in evaluation.worst_missed_links] == missed[:5]


def test_evaluate_prints_tables(cli, sample_out: Path):
    result = cli("evaluate", "--out", sample_out, "--truth", SAMPLE / "truth.csv", "--worst", "2")
    assert result.exit_code == 0, result.stderr
    for text in ("pairwise", "B-cubed", "0.9 ◀", "Worst false merges", "Worst missed links"):
        assert text in result.stdout


def test_evaluate_user_errors(cli, sample_out: Path, tmp_path: Path):
    result = cli("evaluate", "--out", sample_out, "--truth", tmp_path / "none.csv")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'none.csv'}: truth file not found"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,person\n1,2\n")
    result = cli("evaluate", "--out", sample_out, "--truth", bad)
    assert result.exit_code == 1
    assert "needs columns source, source_record_id, person_id" in result.stderr
    # Read as CSV, a JSON truth file was said to lack the columns its objects hold.
    truth = write(tmp_path / "truth.json", '[{"source": "crm", "source_record_id": "C1", '
                  '"person_id": "P1"}]')  # fmt: skip
    result = cli("evaluate", "--out", sample_out, "--truth", truth)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {truth}: a truth file is CSV or Parquet (columns source, source_record_id, "
        "person_id), not JSON\n"
    )
    result = cli("evaluate", "--out", tmp_path, "--truth", SAMPLE / "truth.csv")
    assert result.exit_code == 1
    assert "no links.parquet; run cxunify unify first" in result.stderr


@pytest.mark.parametrize("limit", [-1, 2.5, True, "3"])
def test_assess_refuses_a_limit_that_is_not_a_count(sample_out: Path, limit: object):
    """The CLI's --worst takes 0 or more; the API passed -1 to DuckDB, whose BinderException
    ('LIMIT/OFFSET cannot be negative') was no error of cxunify's."""
    from cxunify.errors import UserError

    with pytest.raises(UserError, match=r"^limit must be 0 or more, not "):
        assess(sample_out, SAMPLE / "truth.csv", limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("zzz,1,P1\n", "none of its records is in {out}/identity_map.parquet (do its source "
         "names and source_record_ids match the output's?)"),
        ("crm,C00000001,P1\ncrm,C00000002,\n", "1 row lacks a source, source_record_id or "
         "person_id (the first is data row 2)"),
        ("crm,C00000001,P1\ncrm,C00000001,P2\n", "1 record is given more than one person_id "
         "(e.g. crm:C00000001)"),
    ],
)  # fmt: skip
def test_a_truth_file_that_cannot_score_the_output_is_a_user_error(
    cli, sample_out: Path, tmp_path: Path, rows: str, message: str
):
    """Such a file once gave a perfect score (nothing matched) or an internal error."""
    truth = write(tmp_path / "truth.csv", "source,source_record_id,person_id\n" + rows)
    result = cli("evaluate", "--out", sample_out, "--truth", truth)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {truth}: " + message.format(out=sample_out)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"id,person\n1,2\n", "truth.csv",
         "needs columns source, source_record_id, person_id; it has id, person"),
        (b"", "truth.csv", "file is empty"),
        (b"source,source_record_id,person_id\n", "truth.csv", "no rows under the header"),
        ("\ufeffsource,source_record_id,person_id\n".encode("utf-16-be"), "truth.csv",
         "no rows under the header"),
    ],
)  # fmt: skip
def test_a_truth_file_says_what_is_wrong_with_it(
    cli, sample_out: Path, tmp_path: Path, content: bytes, name: str, message: str
):
    """These said 'needs columns ...' followed by DuckDB's 'Binder Error: Column "source"
    referenced that exists in the SELECT clause ...' (an empty file too), or that none of the
    truth's records was in the output (a header alone, UTF-16 big-endian text)."""
    truth = tmp_path / name
    truth.write_bytes(content)
    result = cli("evaluate", "--out", sample_out, "--truth", truth)
    assert (result.exit_code, result.stderr) == (1, f"Error: {truth}: {message}\n")


@pytest.mark.parametrize("name", ["truth.txt", "TRUTH.PARQUET", "be.csv", "latin1.csv"])
def test_truth_in_utf16_or_named_in_capitals_scores_as_the_csv(
    cli, sample_out: Path, tmp_path: Path, name: str
):
    """Excel's "Unicode text" (UTF-16 with a BOM) and a file named TRUTH.PARQUET were read as
    CSV in UTF-8 and refused as lacking the columns they have; UTF-16 big-endian was refused,
    and Latin-1 (person ids 'Pé1') stopped with DuckDB's 'CSV Error on Line: 2'."""
    expected = json.loads(
        cli("evaluate", "--out", sample_out, "--truth", SAMPLE / "truth.csv", "--json").stdout
    )
    truth = tmp_path / name
    text = (SAMPLE / "truth.csv").read_text(encoding="utf-8")
    if name.endswith(".txt"):
        truth.write_bytes(text.replace(",", "\t").encode("utf-16"))  # a BOM, little-endian
    elif name == "be.csv":
        truth.write_bytes(("\ufeff" + text).encode("utf-16-be"))
    elif name == "latin1.csv":
        accented = "\n".join(line + "é" for line in text.splitlines()) + "\n"
        truth.write_bytes(accented.replace("person_idé", "person_id").encode("latin-1"))
    else:
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq

        pq.write_table(pa_csv.read_csv(SAMPLE / "truth.csv"), truth)
    result = cli("evaluate", "--out", sample_out, "--truth", truth, "--json")
    assert result.exit_code == 0, result.stderr
    # (B-cubed sums doubles in the order the rows were read: equal to the last bits or so)
    assert json.loads(result.stdout)["quality"] == pytest.approx(expected["quality"])


@pytest.mark.parametrize("after", [" ", "\t"])
def test_a_truth_file_written_with_spaces_after_its_commas(
    cli, sample_out: Path, tmp_path: Path, after: str
):
    """'crm, C00000001, P00001808' was compared with its spaces: no record of the output
    matched, and evaluate stopped saying none of its records is in the output. A tab was
    kept after spaces were trimmed."""
    expected = json.loads(
        cli("evaluate", "--out", sample_out, "--truth", SAMPLE / "truth.csv", "--json").stdout
    )
    truth = tmp_path / "truth.csv"
    truth.write_text((SAMPLE / "truth.csv").read_text(encoding="utf-8").replace(",", "," + after))
    result = cli("evaluate", "--out", sample_out, "--truth", truth, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["quality"] == pytest.approx(expected["quality"])


def test_truth_ids_are_read_as_a_run_reads_ids(tmp_path: Path):
    """A truth CSV's ids were typed by DuckDB: '1.50', '2.0' and '1e3' became the numbers
    1.5, 2.0 and 1000.0, no record's id. A CSV's ids are text as written; a whole number in
    a Parquet DOUBLE is its digits, as a run reads the same export."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cxunify.evaluate import _read_truth

    as_csv = write(
        tmp_path / "truth.csv",
        "source,source_record_id,person_id\ncrm,1.50,1\ncrm,2.0,1\ncrm,1e3,2\n",
    )
    as_parquet = tmp_path / "truth.parquet"
    pq.write_table(
        pa.table({"source": ["crm", "crm"], "source_record_id": [1.0, 2.5], "person_id": [7, 7]}),
        as_parquet,
    )
    for truth, expected in (
        (as_csv, [("crm", "1.50", "1"), ("crm", "2.0", "1"), ("crm", "1e3", "2")]),
        (as_parquet, [("crm", "1", "7"), ("crm", "2.5", "7")]),
    ):
        with duckdb.connect() as con:
            _read_truth(con, truth)
            assert con.execute("SELECT * FROM truth").fetchall() == expected


def _truth(folder: Path, rows: str) -> Path:
    return write(folder / "truth2.csv", "source,source_record_id,person_id\n" + rows)


def test_truth_rows_naming_no_record_of_the_output_are_counted_and_said(cli, tmp_path: Path):
    """A truth file naming a source by another name than the output's lost its rows from the
    figures without a word (924 of 4,598 of a sample's)."""
    out = tmp_path / "out"
    _tiny_output(out)
    truth = _truth(out, "crm,a1,A\ncrm,a2,A\ncrm,a3,A\nCRM,b1,B\nCRM,b2,B\ncrm,b9,B\n")
    quality = evaluate(out, truth)
    assert (quality.records, quality.truth_rows, quality.truth_rows_not_in_output) == (3, 6, 3)
    warning = (
        "Warning: 3 of the truth's 6 rows name no record of the output and are not scored "
        "(e.g. CRM:b1): the output has no source 'CRM' (its sources: crm; did you mean 'crm'?)\n"
    )
    result = cli("evaluate", "--out", out, "--truth", truth, "--json")
    assert (result.exit_code, result.stderr) == (0, warning)
    reported = json.loads(result.stdout)
    assert reported["quality"]["truth_rows_not_in_output"] == 3
    assert reported["warnings"] == [warning.removeprefix("Warning: ").strip()]
    result = cli("evaluate", "--out", out, "--truth", truth)
    assert (result.exit_code, result.stderr) == (0, warning)
    assert "3 records (the truth's other 3 rows name none of the output): " in result.stdout
    # Of a source the output has, the rows are said to be rejected or spelt otherwise.
    truth = _truth(out, "crm,a1,A\ncrm,a2,A\ncrm,a9,A\n")
    assert cli("evaluate", "--out", out, "--truth", truth).stderr == (
        "Warning: 1 of the truth's 3 rows name no record of the output and are not scored "
        "(e.g. crm:a9): rows rejected on input (see rejects.parquet), or ids spelt otherwise\n"
    )


def test_no_pair_left_to_score_is_an_error_not_a_perfect_score(cli, tmp_path: Path):
    """With all but a record or two of the truth missing from the output, every figure was
    1.0000, of no pair at all."""
    out = tmp_path / "out"
    _tiny_output(out)
    truth = _truth(out, "crm,a3,A\ncrm,b2,B\nsocial,a1,A\n")
    result = cli("evaluate", "--out", out, "--truth", truth)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {truth}: no pair to score: of the 2 records it shares with the output, no two "
        "are one person in it or one customer in the output (1 of its 3 rows name no record of "
        "the output)\n",
    )


def test_a_share_of_no_pairs_is_none_not_one(cli, tmp_path: Path):
    """Precision of no predicted pair, recall of no true pair, were a perfect 1.0: now None
    (null in --json, – on screen), and F1 beside a 0 is 0."""
    out = tmp_path / "out"
    _tiny_output(out)
    # a1 and a3 are one person, in two customers: no pair predicted, one true, none found.
    quality = evaluate(out, _truth(out, "crm,a1,A\ncrm,a3,A\n"))
    assert (quality.predicted_pairs, quality.true_pairs) == (0, 1)
    assert (quality.pairwise_precision, quality.pairwise_recall, quality.pairwise_f1) == (
        None,
        0.0,
        0.0,
    )
    # a1 and b1 are one customer, two people: one pair predicted, wrongly, none true.
    truth = _truth(out, "crm,a1,A\ncrm,b1,B\n")
    quality = evaluate(out, truth)
    assert (quality.pairwise_precision, quality.pairwise_recall, quality.pairwise_f1) == (
        0.0,
        None,
        0.0,
    )
    result = cli("evaluate", "--out", out, "--truth", truth, "--json")
    assert result.exit_code == 0, result.stderr
    reported = json.loads(result.stdout)
    assert reported["quality"]["pairwise_recall"] is None
    # The scored link a1-b1 is the only one of two truth records: a false merge, no true pair.
    curve = {point["threshold"]: point for point in reported["curve"]}
    assert (curve[0.9]["precision"], curve[0.9]["recall"], curve[0.9]["f1"]) == (0.0, None, 0.0)
    assert (curve[0.99]["precision"], curve[0.99]["recall"], curve[0.99]["f1"]) == (
        None,
        None,
        None,
    )
    result = cli("evaluate", "--out", out, "--truth", truth)
    assert result.exit_code == 0, result.stderr
    assert "│ pairwise │    0.0000 │      – │ 0.0000 │" in result.stdout
    assert "0 true pairs, 1 predicted, 0 correct; – is a share of no pairs" in result.stdout


def test_a_truth_id_in_another_unicode_form_names_the_outputs_record(tmp_path: Path):
    """macOS writes 'Zoë' decomposed ('Zoe' and a combining diaeresis): a truth file saved
    there named no record of an output holding 'Zoë' composed, and scored without it."""
    import unicodedata

    out = tmp_path / "out"
    _tiny_output(out)
    composed = "Zo\u00eb"
    for name, columns in (
        ("identity_map", ["source_record_id"]),
        ("links", ["left_source_record_id", "right_source_record_id"]),
    ):
        path = out / f"{name}.parquet"
        renamed = ", ".join(f"replace({c}, 'a3', $id) AS {c}" for c in columns)
        duckdb.execute(
            f"COPY (SELECT * REPLACE ({renamed}) FROM read_parquet($path)) TO $to (FORMAT parquet)",
            {"path": str(path), "to": str(path.with_suffix(".new")), "id": composed},
        )
        path.with_suffix(".new").replace(path)
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    truth = _truth(out, f"crm,a1,A\ncrm,a2,A\ncrm,{decomposed},A\ncrm,b1,B\ncrm,b2,B\n")
    evaluation = assess(out, truth)
    # The figures of test_hand_computed_figures, a3 found under its composed id.
    q = evaluation.quality
    assert (q.records, q.true_pairs, q.predicted_pairs, q.correct_pairs) == (5, 4, 3, 1)
    assert q.truth_rows_not_in_output == 0
    assert [
        (r["right_source_record_id"], r["why_apart"]) for r in evaluation.worst_missed_links
    ] == [(composed, "below threshold"), ("b2", "below threshold")]
