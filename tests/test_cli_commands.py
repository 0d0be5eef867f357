"""Every command through the CLI: exit codes and what it prints."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from cxunify.cli import app
from tests.conftest import ROOT, SAMPLE, SAMPLE_FLAGS, small_output, write

SAMPLE_CONFIG = ROOT / "configs" / "sample.yaml"


def test_every_command_has_help(cli):
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = cli(name, "--help")
        assert result.exit_code == 0
        assert command.callback.__doc__, name
        readme = (ROOT / "README.md").read_text()
        assert f"cxunify {name}" in readme, f"{name} is not documented in the README"


def test_version_prints_what_run_json_records(cli):
    from importlib import metadata

    from cxunify.pipeline import versions

    result = cli("--version")
    assert result.exit_code == 0
    line = result.stdout.strip()
    assert "\n" not in line  # one line, however narrow the terminal: for logs and scripts
    assert line.startswith(f"cxunify {metadata.version('cxunify')} (python ")
    assert all(f"{name} {version}" in line for name, version in versions().items())
    assert cli("--version", "unify", "--out", "/nonexistent/never/made").exit_code == 0


def test_plan_counts_pairs_per_rule(cli):
    result = cli("plan", "--config", SAMPLE_CONFIG, "--json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["nodes"] > 5000
    rules = {r["rule"]: r for r in plan["rules"]}
    assert rules["email_std"]["pairs"] > 0
    assert not any(r["explodes"] for r in plan["rules"])


def test_plan_says_its_total_is_the_sum_over_the_rules(cli, tmp_path: Path):
    """The total said pairs found by several rules counted once, but it is the plain sum of
    the rules' pairs: the sample's 49,757, of which the run finds 19,879."""
    rows = "id,first_name,last_name,state\n1,ann,lee,ca\n2,bob,lee,ca\n3,cy,lee,ca\n"
    write(tmp_path / "crm.csv", rows)
    cfg = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id,\n"
        "     columns: {first_name: first_name, last_name: last_name, city: state}}\n"
        "matching:\n  blocking: [[city_std], [last_name_std]]\n",
    )
    result = cli("plan", "--config", cfg)
    assert result.exit_code == 0, result.stderr
    # The same three pairs by each rule: 6 in the sum, 3 candidate pairs in the run.
    assert result.stdout.endswith(
        "at most 6 candidate pairs: the sum over the rules, a pair found by several rules "
        "counted by each (the run counts it once)\n"
    )


def test_plan_warns_on_a_rule_that_explodes(cli, tmp_path: Path):
    lines = ["id,first_name,last_name,state"] + [f"{i},n{i},s{i},ca" for i in range(300)]
    write(tmp_path / "crm.csv", "\n".join(lines) + "\n")
    cfg = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id,\n"
        "     columns: {first_name: first_name, last_name: last_name, city: state}}\n"
        "matching:\n  blocking: [[city_std]]\n",
    )
    result = cli("plan", "--config", cfg)
    assert result.exit_code == 0, result.stderr
    assert "Warning: rule 'city_std' would produce 44,850 pairs" in result.stderr


def test_notes_warnings_and_counts_on_stderr_are_one_line_whatever_the_width(
    cli, tmp_path: Path, sample_out: Path, monkeypatch
):
    """Rich wrapped them at 80 columns (or $COLUMNS) when stderr was a file, so a log read a
    line at a time held half a note; and a note said '1 key values'."""
    monkeypatch.setenv("COLUMNS", "30")
    lines = ["id,first_name,last_name,state"] + [f"{i},n{i},s{i},ca" for i in range(300)]
    lines += [
        "300,ann,lee,ny",
        "301,bob,lee,ny",
        "302,cy,lee,ny",
        "303,dee,kim,tx",
        "304,di,kim,tx",
    ]
    write(tmp_path / "crm.csv", "\n".join(lines) + "\n")
    cfg = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id,\n"
        "     columns: {first_name: first_name, last_name: last_name, city: state}}\n"
        "matching:\n  blocking: [[city_std], [last_name_std]]\n  max_block_size: 2\n"
        "  max_iterations: 1\nengine: spark\n",
    )
    result = cli("plan", "--config", cfg)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "Note: cxunify plan runs on DuckDB; engine: spark applies to unify",
        "Note: rule 'city_std' skips 2 key values shared by more than 2 identities",
        "Note: rule 'last_name_std' skips 1 key value shared by more than 2 identities",
    ]
    result = cli("train", "--config", cfg, "--to", tmp_path / "model.json")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if not line.startswith("✓")]
    assert warnings[0].startswith("Note: cxunify train runs on DuckDB; engine: spark applies")
    assert warnings[1].startswith("Warning: EM did not converge within 1 iteration (")
    assert warnings[1].endswith("; the parameters may still be moving")
    result = cli("diff", sample_out, sample_out, "--limit", "0")
    assert (result.exit_code, result.stderr) == (
        0,
        "0 created, 0 merged, 0 split, 0 changed, 0 removed\n",
    )


def test_train_then_unify_with_the_model(cli, tmp_path: Path, sample_out: Path):
    model = tmp_path / "model.json"
    result = cli("train", "--config", SAMPLE_CONFIG, "--to", model)
    assert result.exit_code == 0, result.stderr
    assert "converged" in result.stderr
    saved = json.loads(model.read_text())
    assert saved["format"] == "cxunify-model/1"
    out = tmp_path / "out"
    result = cli("unify", "--config", SAMPLE_CONFIG, "--model", model, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["source"] == "--model file"
    query = (
        "SELECT source, source_record_id, customer_id FROM '{}/identity_map.parquet' ORDER BY ALL"
    )
    assert (
        duckdb.sql(query.format(out)).fetchall() == duckdb.sql(query.format(sample_out)).fetchall()
    )


def test_counts_of_one_are_said_in_the_singular(cli, tmp_path: Path):
    """'1 rows', 'EM, 1 iterations' and '1 customers' in what the commands say."""
    write(tmp_path / "crm.csv", "id,email,phone\n" + "".join(
        f"{i},{name}@gmail.com,+1415555267{i}\n" for i, name in enumerate("aabb", 1)
    ))  # fmt: skip
    cfg = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id,\n"
        "     columns: {email: email, phone: phone}}\nmatching: {max_iterations: 1}\n",
    )
    result = cli("train", "--config", cfg, "--to", tmp_path / "model.json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(
        f"✓ model (EM, 1 iteration, NOT converged) → {tmp_path / 'model.json'}\n"
        "Warning: EM did not converge within 1 iteration (tolerance"
    )
    one = write(tmp_path / "one" / "crm.csv", "id,email\n1,ann@gmail.com\n")
    result = cli("unify", "--crm", one, "--out", tmp_path / "out")
    assert (result.exit_code, result.stderr) == (
        0,
        f"✓ 1 row → 1 customer (0 rejected) in {tmp_path / 'out'}\n",
    )
    result = cli("sql", "--out", tmp_path / "out", "SELECT 1 AS n")
    assert (result.exit_code, result.stderr) == (0, "1 row\n")


def test_train_with_no_record_pairs_is_an_error_writing_no_model(cli, tmp_path: Path):
    """A header-only export trained 'EM, 0 iterations, NOT converged' with exit 0, and wrote
    the untrained starting model for a later `unify --model` to use as if fitted."""
    model = tmp_path / "model.json"
    cfg = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email}}\n",
    )
    for rows, why in (
        ("", "the exports hold no rows"),
        # every row rejected (no id)
        (",ann@gmail.com\n,bob@gmail.com\n",
         "every row of the exports was rejected (2 rows; `cxunify unify` writes them to "
         "rejects.parquet with why)"),
        # ann's two rows are one identity, and no rule pairs her with bob
        ("1,ann@gmail.com\n2,ann@gmail.com\n3,bob@gmail.com\n",
         "no blocking rule makes a candidate pair of the exports' 2 distinct identities "
         "(records alike in every identity field are one); train on more of the data"),
    ):  # fmt: skip
        write(tmp_path / "crm.csv", "id,email\n" + rows)
        result = cli("train", "--config", cfg, "--to", model)
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: no record pairs to train on: {why}\n",
        ), rows
        assert not model.exists()
    result = cli("train", "--crm", tmp_path / "crm.csv", "--to", model)  # (without a config)
    assert result.exit_code == 1 and "no record pairs to train on" in result.stderr
    assert not model.exists()


def test_a_bad_model_file_is_a_user_error(cli, tmp_path: Path):
    model = write(tmp_path / "model.json", '{"format": "nope"}')
    result = cli("unify", "--config", SAMPLE_CONFIG, "--model", model, "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {model}: not a cxunify model: 'format' is 'nope', expected 'cxunify-model/1'\n"
    )


def _logistic_model(**changes: object) -> str:
    """A logistic model file's text as `train --labels` writes it (email first), with
    `changes` made to the model or its email comparison."""
    from cxunify.compare import COMPARISONS, EMAIL

    comparisons = [
        {
            "name": spec.name,
            "levels": list(spec.levels),
            "weights": [-3.5] + [2.0] * (len(spec.levels) - 1),
        }
        for spec in sorted(COMPARISONS, key=lambda spec: spec is not EMAIL)
    ]
    model = {
        "format": "cxunify-logistic/1",
        "comparisons": comparisons,
        "intercept_weight": -12.0,
        "labelled_pairs": 40,
    }
    for key, value in changes.items():
        if key in model:
            model[key] = value
        else:
            comparisons[0][key] = value
    return json.dumps(model)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # A NaN intercept made every match weight NaN, and NaN pairs were kept as links.
        ({"intercept_weight": float("nan")}, "intercept_weight is not a finite number: nan"),
        ({"intercept_weight": "-12"}, "intercept_weight is not a finite number: '-12'"),
        # Cut short, the levels past the end weighed 0.
        (
            {"weights": [-3.5, 2.0]},
            "comparisons[0]: comparison 'email': weights has 2 values but there are 4 levels",
        ),
        # These were exit 2, 'Internal error: ValueError' or 'TypeError'.
        (
            {"weights": [-3.5, "abc", 2.0, 2.0]},
            "comparisons[0]: comparison 'email': weights[1] is not a finite number: 'abc'",
        ),
        (
            {"weights": None},
            "comparisons[0]: comparison 'email': weights must be a list of 4 numbers, got None",
        ),
        ({"comparisons": "x"}, "model 'comparisons' must be a list"),
        ({"labelled_pairs": None}, "labelled_pairs must be a whole number >= 1, got None"),
    ],
)
def test_a_damaged_logistic_model_file_is_a_user_error_naming_the_key(
    cli, tmp_path: Path, changes: dict, reason: str
):
    from cxunify.score import LogisticModel, load_model

    model = write(tmp_path / "model.json", _logistic_model())
    assert isinstance(load_model(model), LogisticModel)  # as written, it loads
    write(model, _logistic_model(**changes))
    crm = write(tmp_path / "crm.csv", "id,email\nC1,ann@example.org\nC2,ann@example.org\n")
    cfg = write(
        tmp_path / "cfg.yaml",
        f"sources:\n  - {{name: crm, kind: crm, path: {crm}, id: id, columns: {{email: email}}}}\n",
    )
    result = cli("unify", "--config", cfg, "--model", model, "--out", tmp_path / "out")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {model}: not a cxunify model: {reason}\n",
    )
    assert not (tmp_path / "out").exists()


def test_labelled_pairs_train_a_logistic_regression(cli, tmp_path: Path, sample_out: Path):
    # Label the sample's links by the truth file: matches and non-matches a reviewer would mark.
    pairs = duckdb.sql(
        f"""
        WITH t AS (SELECT * FROM read_csv('{SAMPLE}/truth.csv', all_varchar = true))
        SELECT l.left_source, l.left_source_record_id, l.right_source, l.right_source_record_id,
               (a.person_id = b.person_id)::INTEGER AS is_match
        FROM '{sample_out}/links.parquet' l
        JOIN t a ON a.source = l.left_source AND a.source_record_id = l.left_source_record_id
        JOIN t b ON b.source = l.right_source AND b.source_record_id = l.right_source_record_id
        WHERE l.above_threshold
        ORDER BY is_match, hash(l.left_source_record_id) LIMIT 3000
        """
    )
    labels = tmp_path / "labels.csv"
    pairs.write_csv(str(labels))
    model = tmp_path / "logistic.json"
    result = cli("train", "--config", SAMPLE_CONFIG, "--labels", labels, "--to", model)
    assert result.exit_code == 0, result.stderr
    assert "logistic regression on 3,000 labelled pairs" in result.stderr
    out = tmp_path / "out"
    result = cli("unify", "--config", SAMPLE_CONFIG, "--model", model, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    from cxunify.evaluate import evaluate

    assert evaluate(out, SAMPLE / "truth.csv").pairwise_f1 >= 0.9


def test_labels_file_with_bad_values(cli, tmp_path: Path):
    labels = write(
        tmp_path / "labels.csv",
        "left_source,left_source_record_id,right_source,right_source_record_id,is_match\n"
        "crm,C00000001,crm,C00000002,maybe\n",
    )
    result = cli("train", "--config", SAMPLE_CONFIG, "--labels", labels, "--to", tmp_path / "m")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {labels}:2: is_match must be 1/0, true/false or yes/no\n"
    header = "left_source,left_source_record_id,right_source,right_source_record_id,is_match\n"
    labels = write(tmp_path / "labels.csv", header)
    result = cli("train", "--config", SAMPLE_CONFIG, "--labels", labels, "--to", tmp_path / "m")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {labels}: no labelled pairs under the header\n",
    )
    # Another encoding than UTF-8 was an internal error (exit 2, UnicodeDecodeError): it is
    # read as exports are.
    from cxunify.score import read_labels

    labels.write_bytes((header + "crm,C1,crm,C2,1\ncrm,Jos\u00e9,crm,C3,0\n").encode("latin-1"))
    assert read_labels(labels)[1] == ("crm", "Jos\u00e9", "crm", "C3", False)


LABELS_HEADER = "left_source,left_source_record_id,right_source,right_source_record_id,is_match\n"


def _four_contacts(tmp_path: Path) -> Path:
    """A config of four contacts, C1 and C2 one person: enough to train on two labels."""
    crm = write(
        tmp_path / "crm.csv",
        "id,first_name,last_name,email\n"
        "C1,Ann,Lee,ann@example.org\nC2,Ann,Lee,ann@example.org\n"
        "C3,Bob,Stone,bob@example.org\nC4,Cy,Hart,cy@example.org\n",
    )
    return write(
        tmp_path / "cfg.yaml",
        f"sources:\n  - {{name: crm, kind: crm, path: {crm}, id: id,\n"
        "     columns: {first_name: first_name, last_name: last_name, email: email}}\n",
    )


def test_a_pair_labelled_again_counts_once(cli, tmp_path: Path):
    # Rows 4 and 5 label the pair of row 2 again, one with its sides swapped: they counted as
    # three pairs, 4 labelled pairs in all, and weighed that pair three times.
    labels = write(
        tmp_path / "labels.csv",
        LABELS_HEADER + "crm,C1,crm,C2,1\ncrm,C1,crm,C3,0\ncrm,C2,crm,C1,yes\ncrm,C1,crm,C2,1\n",
    )
    model = tmp_path / "model.json"
    result = cli("train", "--config", _four_contacts(tmp_path), "--labels", labels, "--to", model)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"✓ model (logistic regression on 2 labelled pairs) → {model}\n"
    assert json.loads(model.read_text())["labelled_pairs"] == 2


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        # Trained on silently, the model learning both from one comparison pattern.
        (
            "crm,C1,crm,C2,1\ncrm,C1,crm,C3,0\ncrm,C2,crm,C1,0\n",
            "{labels}: 1 pair is labelled both a match and a non-match: crm:C1 and crm:C2 "
            "(lines 2 and 4); "
            "label each pair once",
        ),
        (
            "crm,C1,crm,C2,1\ncrm,C1,crm,C3,0\ncrm,C1,crm,C2,no\ncrm,C3,crm,C1,1\ncrm,C1,crm,C2,0\n",
            "{labels}: 2 pairs are labelled both a match and a non-match, e.g. crm:C1 and crm:C2 "
            "(lines 2 and 4); label each pair once",
        ),
        # Trained on as a match: every comparison agreeing exactly, as a record with itself does.
        (
            "crm,C1,crm,C2,1\ncrm,C3,crm, C3\t,1\ncrm,C1,crm,C4,0\n",
            "{labels}:3: crm:C3 is labelled as a pair with itself",
        ),
    ],
)
def test_contradictory_labels_and_a_record_paired_with_itself_are_errors(
    cli, tmp_path: Path, rows: str, error: str
):
    labels = write(tmp_path / "labels.csv", LABELS_HEADER + rows)
    config = _four_contacts(tmp_path)
    result = cli("train", "--config", config, "--labels", labels, "--to", tmp_path / "m.json")
    assert (result.exit_code, result.stderr) == (1, f"Error: {error.format(labels=labels)}\n")
    assert not (tmp_path / "m.json").exists()


def test_labelled_ids_are_read_as_a_run_stores_them(tmp_path: Path):
    """An id with a tab or a no-break space at an end names the record without it."""
    from cxunify.score import read_labels

    labels = write(
        tmp_path / "labels.csv",
        "left_source,left_source_record_id,right_source,right_source_record_id,is_match\n"
        "crm,\tC1, crm ,C2\u00a0\t,1\n",
    )
    assert read_labels(labels) == [("crm", "C1", "crm", "C2", True)]
    # A spreadsheet's UTF-8 BOM before the header is no part of its first column's name.
    labels.write_bytes(b"\xef\xbb\xbf" + labels.read_bytes())
    assert read_labels(labels) == [("crm", "C1", "crm", "C2", True)]


def test_sql_table_csv_json_parquet(cli, sample_out: Path, tmp_path: Path):
    query = "SELECT count(*) AS n FROM profiles"
    result = cli("sql", "--out", sample_out, query)
    assert result.exit_code == 0 and " n " in result.stdout
    profiles = duckdb.sql(f"SELECT count(*) FROM '{sample_out}/profiles.parquet'").fetchall()[0][0]
    result = cli("sql", "--out", sample_out, "--format", "csv", query)
    assert result.stdout == f"n\n{profiles}\n"
    result = cli("sql", "--out", sample_out, "--format", "json", query)
    assert json.loads(result.stdout) == {"n": profiles}
    target = tmp_path / "[/x] [bold]n.parquet"  # no markup: no internal error, no name lost
    result = cli("sql", "--out", sample_out, "--format", "parquet", "--to", target, query)
    assert (result.exit_code, result.stderr) == (0, f"✓ 1 row → {target}\n")
    assert duckdb.sql(f"SELECT n FROM '{target}'").fetchall()[0] == (profiles,)


def test_sql_table_shows_brackets_as_they_are(cli, sample_out: Path):
    """rich read brackets in values and column names as markup: a ticket subject '[URGENT]'
    or a city '[bold]' showed as nothing, and a '[/b]' stopped the command (exit 2)."""
    query = "SELECT '[/b]' AS \"[x]\", '[bold]' AS city, '[red]Ann' AS n"
    result = cli("sql", "--out", sample_out, query)
    assert result.exit_code == 0, result.stderr
    for text in ("[x]", "[/b]", "[bold]", "[red]Ann"):
        assert text in result.stdout


def test_sql_table_shows_control_characters_as_their_code(cli, sample_out: Path):
    """An escape in a value (a ticket's text keeps its own) or a column name went to the
    terminal as it was: a text could turn the screen red, clear it or move the cursor."""
    query = (
        "SELECT 'a' || chr(27) || '[2Jb' || chr(7) AS \"t\x1b]0;x\", 'x' || chr(13) || 'y' AS cr, "
        "'é' || chr(155) AS c1"
    )
    result = cli("sql", "--out", sample_out, query)
    assert result.exit_code == 0, result.stderr
    assert not {"\x1b", "\x07", "\r", "\x9b"} & set(result.stdout)
    assert result.stdout.splitlines()[1].split() == ["┃", "t\\x1B]0;x", "┃", "cr", "┃", "c1", "┃"]
    assert result.stdout.splitlines()[3].split() == [
        "│", "a\\x1B[2Jb\\x07", "│", "x\\x0Dy", "│", "é\\x9B", "│"
    ]  # fmt: skip


def test_sql_table_too_wide_for_the_terminal_is_shown_a_row_at_a_time(cli, sample_out: Path):
    """SELECT * FROM profiles, the README's first query, cut its 65 columns to a letter or to
    nothing on an 80-column terminal: neither names nor values could be read."""
    columns = duckdb.sql(f"SELECT * FROM '{sample_out}/profiles.parquet' LIMIT 2")
    ids = [row[0] for row in columns.fetchall()]
    result = cli("sql", "--out", sample_out, "--limit", "2", "SELECT * FROM profiles")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("row 1 ─") and lines[0].rstrip().endswith("─")
    names = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert names == ["row", *columns.columns, "row", *columns.columns]
    assert lines[1].split() == ["customer_id", ids[0]]
    second = next(i for i, line in enumerate(lines) if line.startswith("row 2 ─"))
    assert lines[second + 1].split() == ["customer_id", ids[1]]
    narrow = cli("sql", "--out", sample_out, "--limit", "1", "SELECT customer_id FROM profiles")
    assert narrow.stdout.splitlines()[3].split() == ["│", ids[0], "│"]


def test_sql_columns_named_alike_each_keep_their_values(cli, sample_out: Path, tmp_path: Path):
    """A join's two `customer_id` columns: rows were shown and written by name, so the table
    showed the second column's value under the first and an empty second column, and JSON
    had one key, the second's value."""
    query = "SELECT 1 AS a, 2 AS a, 3 AS a_1"
    result = cli("sql", "--out", sample_out, "--format", "json", query)
    assert json.loads(result.stdout) == {"a": 1, "a_2": 2, "a_1": 3}
    result = cli("sql", "--out", sample_out, query)
    assert result.exit_code == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()[1::2]] == [
        ["┃", "a", "┃", "a_2", "┃", "a_1", "┃"],
        ["│", "1", "│", "2", "│", "3", "│"],
    ]
    target = tmp_path / "a.parquet"
    assert cli("sql", "--out", sample_out, "-f", "parquet", "--to", target, query).exit_code == 0
    assert duckdb.sql(f"SELECT a, a_2, a_1 FROM '{target}'").fetchall() == [(1, 2, 3)]


def test_sql_table_turns_only_the_rows_shown_into_python(cli, sample_out: Path):
    """Every row became Python values to show the first 50 (3M rows: 18 s instead of 3), and a
    value Python cannot hold (a timestamp of 'infinity') in a row never shown stopped it."""
    query = (
        "SELECT * FROM (SELECT 1 AS n, NULL::TIMESTAMP AS t "
        "UNION ALL SELECT 2, 'infinity'::TIMESTAMP) ORDER BY n"
    )
    result = cli("sql", "--out", sample_out, "--limit", "1", query)
    assert (result.exit_code, result.stderr) == (0, "2 rows, first 1 shown\n")


def test_sql_table_shows_a_date_python_cannot_hold_as_duckdb_does(cli, sample_out: Path):
    """DuckDB's 'infinity' or a year past 9999 stopped the table with an internal error
    (exit 2, OverflowError), then with an error telling to cast it to VARCHAR."""
    query = (
        "SELECT 1 AS n, 'infinity'::TIMESTAMP AS t, DATE '-infinity' AS d, DATE '12000-01-01' AS y"
    )
    result = cli("sql", "--out", sample_out, query)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[3].split() == [
        "│", "1", "│", "infinity", "│", "-infinity", "│", "12000-01-01", "│"
    ]  # fmt: skip


def test_python_rows_of_a_date_python_cannot_hold_is_a_user_error(sample_out: Path):
    """For Python callers of run_query without text, as the table was: an OverflowError."""
    from cxunify.errors import UserError
    from cxunify.query import python_rows, run_query

    result = run_query(
        sample_out, "SELECT 1 AS n, 'infinity'::TIMESTAMP AS t, DATE '-infinity' AS d"
    )
    try:
        with pytest.raises(UserError) as raised:
            python_rows(next(iter(result.reader)))
    finally:
        result.close()
    assert str(raised.value) == (
        "SQL error: a date or time of t or d is beyond what Python holds (date value out of "
        "range: infinity, or a year past 9999); cast it to VARCHAR in the query"
    )


def test_sql_table_shows_each_value_as_csv_writes_it(cli, sample_out: Path):
    """A BLOB showed as Python's repr (b'x', b'\\xff\\x00'), a boolean as True, a list as
    ['a'], a map as a list of tuples ([('USD', Decimal('1.25'))]) and a time with a zone in
    the Python form of its offset: each cell is now the text of the same value in csv."""
    query = (
        "SELECT 'x'::BLOB AS b, '\\xFF\\x00a'::BLOB AS raw, encode('é') AS utf8, true AS t, "
        "['a', NULL] AS l, MAP {'USD': 1.25::DECIMAL(10,2)} AS m, {'k': 'y'::BLOB} AS s, "
        "TIMESTAMPTZ '2024-01-01 10:00:00+02' AS tz"
    )
    result = cli("sql", "--out", sample_out, "-f", "csv", query)
    assert result.exit_code == 0, result.stderr
    cells = next(csv.DictReader(io.StringIO(result.stdout)))
    assert cells == {
        "b": "x",
        "raw": "\\xFF\\x00a",
        "utf8": "\\xC3\\xA9",
        "t": "true",
        "l": '["a", null]',
        "m": '{"USD": "1.25"}',
        "s": '{"k": "y"}',
        "tz": "2024-01-01 08:00:00+00",
    }
    result = cli("sql", "--out", sample_out, "--limit", "1", query)
    assert result.exit_code == 0, result.stderr
    lines = [line.split("│")[1:-1] for line in result.stdout.splitlines() if line.startswith("│")]
    shown = ["".join(part.strip() for part in column) for column in zip(*lines, strict=True)]
    assert shown == [cell.replace(" ", "") for cell in cells.values()]  # folded to fit 80


def test_sql_csv_and_json_write_dates_times_and_blobs_as_duckdb_does(cli, sample_out: Path):
    """An infinite timestamp came out in CSV as '<value out of range: ...>' with exit 0, and
    stopped json; a BLOB was "b'x'" in json, and one not in UTF-8 stopped CSV with an
    internal error (ArrowInvalid)."""
    query = (
        "SELECT 'infinity'::TIMESTAMP AS t, DATE '-infinity' AS d, 'x'::BLOB AS b, "
        "'\\xFF\\x00'::BLOB AS raw, TIMESTAMP '2024-01-01 10:00:00.5' AS at, "
        "[DATE '2024-01-02'] AS days, {'k': 'y'::BLOB, 'n': 1} AS s, 1 AS b"
    )
    result = cli("sql", "--out", sample_out, "-f", "csv", query)
    assert (result.exit_code, result.stdout) == (
        0,
        "t,d,b,raw,at,days,s,b_1\n"
        'infinity,-infinity,x,\\xFF\\x00,2024-01-01 10:00:00.5,"[""2024-01-02""]",'
        '"{""k"": ""y"", ""n"": 1}",1\n',
    ), result.stderr
    result = cli("sql", "--out", sample_out, "-f", "json", query)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "t": "infinity",
        "d": "-infinity",
        "b": "x",
        "raw": "\\xFF\\x00",
        "at": "2024-01-01 10:00:00.5",
        "days": ["2024-01-02"],
        "s": {"k": "y", "n": 1},
        "b_1": 1,
    }


def test_sql_bits_bignums_geometries_and_variants_are_duckdb_text(cli, sample_out: Path):
    """DuckDB hands BIT, BIGNUM and GEOMETRY to Arrow as bytes: csv stopped with an internal
    error (ArrowInvalid), json and the table showed b'\\x05\\xfd'; a VARIANT (the typed_value
    of duckdb_settings()) was a struct of bytes, and the largest UHUGEINT was -1."""
    query = (
        "SELECT '101'::BIT AS bits, 12345678901234567890123456789::BIGNUM AS big, "
        "'POINT(1 2)'::GEOMETRY AS g, [1, 2]::VARIANT AS v, "
        "340282366920938463463374607431768211455::UHUGEINT AS u"
    )
    values = ["101", "12345678901234567890123456789", "POINT (1 2)", "[1, 2]", str(2**128 - 1)]
    result = cli("sql", "--out", sample_out, "-f", "csv", query)
    assert (result.exit_code, result.stdout) == (
        0,
        "bits,big,g,v,u\n" + ",".join(v if "," not in v else f'"{v}"' for v in values) + "\n",
    ), result.stderr
    result = cli("sql", "--out", sample_out, "-f", "json", query)
    assert json.loads(result.stdout) == dict(
        zip(["bits", "big", "g", "v", "u"], values, strict=True)
    )
    result = cli("sql", "--out", sample_out, "SELECT '101'::BIT AS bits, [1, 2]::VARIANT AS v")
    assert result.stdout.splitlines()[3].split() == ["│", "101", "│", "[1,", "2]", "│"]


def test_sql_parquet_holds_bits_bignums_variants_and_uhugeints_as_text(
    cli, sample_out: Path, tmp_path: Path
):
    """No Arrow type holds them: a Parquet file held a BIT or a BIGNUM as bytes, a VARIANT as
    a struct of bytes, and the largest UHUGEINT as -1."""
    target = tmp_path / "v.parquet"
    query = (
        "SELECT '101'::BIT AS bits, 123::BIGNUM AS big, [1, 2]::VARIANT AS v, "
        "340282366920938463463374607431768211455::UHUGEINT AS u, ['1'::BIT] AS l"
    )
    result = cli("sql", "--out", sample_out, "-f", "parquet", "--to", target, query)
    assert result.exit_code == 0, result.stderr
    assert duckdb.sql(f"SELECT * FROM '{target}'").fetchall() == [
        ("101", "123", "[1, 2]", str(2**128 - 1), ["1"])
    ]


def test_sql_csv_of_no_rows_quotes_its_header_as_of_rows(cli, sample_out: Path):
    """A column name holding a quote broke the header of an empty result ("a"b"), which a CSV
    reader then read as other columns; the header of a result with rows was right."""
    for where in ("", " WHERE false"):
        result = cli(
            "sql", "--out", sample_out, "-f", "csv", f'SELECT 1 AS "a""b", 2 AS "c,d"{where}'
        )
        assert result.exit_code == 0, result.stderr
        assert next(csv.reader(io.StringIO(result.stdout))) == ['a"b', "c,d"]
        assert result.stdout.startswith('"a""b","c,d"\n')


def test_sql_writes_times_with_a_zone_in_utc_whatever_the_machines_zone(sample_out: Path):
    """A TIMESTAMPTZ came out in the server's own zone, so one query's CSV changed with the
    machine it ran on (a subprocess: the zone is read from TZ when DuckDB starts)."""
    import os
    import subprocess
    import sys

    query = "SELECT TIMESTAMPTZ '2024-01-01 10:00:00+02' AS at"
    done = subprocess.run(
        [sys.executable, "-m", "cxunify", "sql", "--out", str(sample_out), "-f", "csv", query],
        capture_output=True, text=True, env={**os.environ, "TZ": "Asia/Tokyo"}, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "at\n2024-01-01 08:00:00+00\n"), done.stderr


def test_sql_limit_must_not_be_negative(sample_out: Path, capsys):
    import pytest

    from cxunify.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["sql", "--out", str(sample_out), "--limit", "-1", "SELECT 1"])
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "Error: Invalid value for '--limit': Input should be greater than or equal to 0 "
        "(see `cxunify sql --help`)\n"
    )


def test_no_command_is_a_user_error_whose_help_goes_to_stderr(capsys):
    """`cxunify` alone printed the help on stdout, where a script reading stdout as JSON
    took it for the output, and a blank line on stderr."""
    from cxunify.cli import main

    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "Usage: cxunify [OPTIONS] COMMAND [ARGS]..." in printed.err
    assert all(f" {name} " in printed.err for name in ("unify", "update", "sql", "diff"))


def test_sql_works_after_the_folder_moves(cli, sample_out: Path, tmp_path: Path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(sample_out, moved)
    result = cli("sql", "--out", moved, "--format", "csv", "SELECT count(*) AS n FROM identity_map")
    assert result.exit_code == 0, result.stderr


def test_sql_nested_values_are_json_in_csv_and_json(cli, sample_out: Path):
    """Lists, maps and structs (emails, revenue_by_currency) as JSON text in a CSV cell, and
    as JSON arrays and objects in --format json; Arrow's CSV writer refused them."""
    query = (
        "SELECT ['a@x.com', 'b@x.com'] AS emails, MAP {'USD': 12.50::DECIMAL(38,2)} AS money, "
        "MAP {}::MAP(VARCHAR, INTEGER) AS empty, {'n': 1, 'd': DATE '2025-01-02'} AS s, "
        "NULL::VARCHAR[] AS missing"
    )
    result = cli("sql", "--out", sample_out, "--format", "csv", query)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        ["emails", "money", "empty", "s", "missing"],
        ['["a@x.com", "b@x.com"]', '{"USD": "12.50"}', "{}", '{"n": 1, "d": "2025-01-02"}', ""],
    ]
    result = cli("sql", "--out", sample_out, "--format", "json", query)
    assert json.loads(result.stdout) == {
        "emails": ["a@x.com", "b@x.com"],
        "money": {"USD": "12.50"},
        "empty": {},
        "s": {"n": 1, "d": "2025-01-02"},
        "missing": None,
    }
    result = cli("sql", "--out", sample_out, "--format", "csv", "SELECT * FROM profiles LIMIT 5")
    assert result.exit_code == 0, result.stderr


def test_sql_intervals_are_duckdb_text_in_every_format(cli, sample_out: Path, tmp_path: Path):
    """A difference of timestamps is an INTERVAL: --format csv and parquet stopped with an
    internal error (Arrow writes no intervals), table and json showed Python's repr
    (MonthDayNano(months=0, ...))."""
    query = (
        "SELECT TIMESTAMP '2024-03-01 10:00' - TIMESTAMP '2024-01-01 09:30' AS span, "
        "[INTERVAL 14 MONTH] AS spans"
    )
    result = cli("sql", "--out", sample_out, "--format", "csv", query)
    assert (result.exit_code, result.stdout) == (
        0,
        'span,spans\n60 days 00:30:00,"[""1 year 2 months""]"\n',
    )
    result = cli("sql", "--out", sample_out, "--format", "json", query)
    assert json.loads(result.stdout) == {"span": "60 days 00:30:00", "spans": ["1 year 2 months"]}
    result = cli("sql", "--out", sample_out, query)
    assert result.exit_code == 0 and "60 days 00:30:00" in result.stdout
    target = tmp_path / "span.parquet"
    result = cli(
        "sql",
        "--out",
        sample_out,
        "--format",
        "parquet",
        "--to",
        target,
        "SELECT TIMESTAMP '2024-03-01 10:00' - TIMESTAMP '2024-01-01 09:30' AS span",
    )
    assert result.exit_code == 0, result.stderr
    assert duckdb.sql(f"SELECT span FROM '{target}'").fetchall() == [("60 days 00:30:00",)]


def test_sql_errors_are_user_errors(cli, sample_out: Path, tmp_path: Path):
    result = cli("sql", "--out", sample_out, "SELECT nope FROM profiles")
    assert result.exit_code == 1 and result.stderr.startswith("Error: SQL error: ")
    for empty in ("", " ;"):
        result = cli("sql", "--out", sample_out, empty)
        assert (result.exit_code, result.stderr) == (1, "Error: SQL error: the query is empty\n")
    result = cli("sql", "--out", tmp_path, "SELECT 1")  # a folder, but no output
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path}: not a cxunify output folder (no run.json)\n"


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_output(tmp_path_factory.mktemp("tiny"))


# Each command that reads an output folder, with MISSING for the folder and OUT for a real one.
READING_AN_OUTPUT = {
    "sql": ("sql", "--out", "MISSING", "SELECT 1"),
    "verify": ("verify", "MISSING"),
    "verify --out": ("verify", "--out", "MISSING"),
    "report": ("report", "--out", "MISSING"),
    "explain": ("explain", "--out", "MISSING", "--customer", "c_0123456789abcdef"),
    "explain --record": ("explain", "--out", "MISSING", "crm:1"),
    "evaluate": ("evaluate", "--out", "MISSING", "--truth", "TRUTH"),
    "diff OLD": ("diff", "MISSING", "OUT"),
    "diff NEW": ("diff", "OUT", "MISSING"),
    "update --config": ("update", "--previous", "MISSING", "--config", "CONFIG"),
    "update --crm": ("update", "--previous", "MISSING", "--crm", "CRM"),
    "unify --previous": ("unify", "--config", "CONFIG", "--previous", "MISSING", "--out", "NEW"),
}


@pytest.mark.parametrize("args", READING_AN_OUTPUT.values(), ids=READING_AN_OUTPUT.keys())
def test_an_output_folder_that_is_not_there_is_said_alike(
    cli, tiny_out: Path, tmp_path: Path, args: tuple[str, ...]
):
    """Each command said what it looked for first, as if the folder were there: 'not a cxunify
    output folder (no run.json)', 'no profiles.parquet; run cxunify unify (this version)
    first', 'no records.parquet; ...', 'no links.parquet; ...', '--previous is not a cxunify
    output folder'."""
    missing = tmp_path / "typo" / "out"
    given = {
        "MISSING": missing,
        "OUT": tiny_out,
        "NEW": tmp_path / "new",
        "TRUTH": write(tmp_path / "truth.csv", "source,source_record_id,person_id\ncrm,1,A\n"),
        "CONFIG": tiny_out.parent / "cfg.yaml",
        "CRM": tiny_out.parent / "crm.csv",
    }
    result = cli(*(given.get(arg, arg) for arg in args))
    assert (result.exit_code, result.stderr) == (1, f"Error: {missing}: no such output folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truth.csv"]  # nothing made


def test_sql_an_extension_the_query_needs_is_named_with_how_to_install_it(
    cli, sample_out: Path, tmp_path: Path, monkeypatch
):
    """DuckDB's message about a missing extension runs over several lines: the one-line error
    stopped at "the required extension 'excel:", not saying why it could not be installed,
    and a function of an extension never said which extension nor how to install it."""
    result = cli("sql", "--out", sample_out, "SELECT st_point(1, 2)")
    assert (result.exit_code, result.stderr) == (
        1,
        'Error: SQL error: Catalog Error: Scalar Function with name "st_point" is not in the '
        "catalog, but it exists in the spatial extension. Please try installing and loading the "
        "spatial extension: INSTALL spatial; LOAD spatial;\n",
    )
    # Without a home folder DuckDB cannot install one, offline or not: the same on any machine.
    monkeypatch.setenv("HOME", str(tmp_path / "nowhere"))
    result = cli("sql", "--out", sample_out, "SELECT * FROM read_xlsx('customers.xlsx')")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: SQL error: An error occurred while trying to automatically install the required "
        f"extension 'excel': Can't find the home directory at '{tmp_path / 'nowhere'}'; "
    )
    assert result.stderr.count("\n") == 1


def test_sql_error_keeps_duckdbs_hint_and_drops_the_caret(cli, sample_out: Path):
    """The hint on the line after the error ('Did you mean "profiles"?') was cut off."""
    for query, error in (
        ("SELECT * FROM profile", 'profile does not exist! Did you mean "profiles"?'),
        ("SELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
    ):
        result = cli("sql", "--out", sample_out, query)
        assert result.exit_code == 1
        assert result.stderr.endswith(f"{error}\n") and result.stderr.count("\n") == 1


def test_sql_several_statements_are_refused(cli, sample_out: Path):
    """DuckDB ran each and handed back the last result: `SELECT 1; SELECT 2` showed 2 alone
    and dropped the first silently."""
    result = cli("sql", "--out", sample_out, "SELECT 1; SELECT 2;")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: SQL error: the query holds 2 statements; give one (run each with its own "
        "cxunify sql)\n",
    )
    result = cli("sql", "--out", sample_out, "-f", "csv", "SELECT 'a;b' AS s;")
    assert (result.exit_code, result.stdout) == (0, "s\na;b\n")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("SET threads = 1", "SET returns no rows of its own; give a query (SELECT ...)"),
        ("ATTACH ':memory:' AS x", "ATTACH returns no rows of its own; give a query (SELECT ...)"),
        (
            "CREATE TABLE t AS SELECT 1",
            "CREATE returns no rows of its own; give a query (SELECT ...)",
        ),
        (
            "PRAGMA threads=1",
            "PRAGMA threads returns no rows of its own; give a query (SELECT ...)",
        ),
        (
            "-- c\n pragma enable_progress_bar;",
            "PRAGMA enable_progress_bar returns no rows of its own; give a query (SELECT ...)",
        ),
        (
            "CALL checkpoint()",
            "CALL checkpoint returns no rows of its own; give a query (SELECT ...)",
        ),
        ("CHECKPOINT", "CHECKPOINT returns no rows of its own; give a query (SELECT ...)"),
        (
            "install spatial",
            "INSTALL returns no rows of its own; give a query (SELECT ...), or run it in DuckDB "
            "itself",
        ),
        ("/* c */", "the query is empty"),
        ("-- c\n", "the query is empty"),
    ],
)
def test_sql_a_statement_that_is_no_query_is_refused(cli, sample_out: Path, query, error):
    """SET and ATTACH printed DuckDB's 'Success' table with exit 0, the code saying they were
    refused, and so did a PRAGMA or CALL that sets something; a query of comments alone was
    said to return no rows."""
    result = cli("sql", "--out", sample_out, "-f", "csv", "--", query)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: SQL error: {error}\n",
    )


def test_sql_statements_with_rows_of_their_own_are_queries(cli, sample_out: Path):
    for query in (
        "DESCRIBE profiles",
        "SUMMARIZE SELECT 1",
        "PRAGMA version",
        "EXPLAIN SELECT 1",
        "PRAGMA table_info('profiles')",
        "PRAGMA show_tables",
        "CALL pragma_version()",
    ):
        result = cli("sql", "--out", sample_out, "-f", "csv", query)
        assert result.exit_code == 0 and result.stdout.count("\n") > 1, (query, result.stderr)
    result = cli("sql", "--out", sample_out, "-f", "csv", 'SELECT true AS "Success"')
    assert (result.exit_code, result.stdout) == (0, "Success\ntrue\n"), result.stderr


def test_sql_a_query_may_start_with_a_comment(cli, sample_out: Path, tmp_path: Path, capsys):
    """A query starting with '--' (the README's examples do) was read as an option: 'No such
    option'. One whose first word holds no space is told to go after --."""
    from cxunify.cli import main

    query = "-- one row\nSELECT 1 AS a"
    for args in (
        ("--out", sample_out, "-f", "csv", query),
        (query, "--out", sample_out, "-f", "csv"),
    ):
        result = cli("sql", *args)
        assert (result.exit_code, result.stdout) == (0, "a\n1\n"), result.stderr
    target = tmp_path / "a b.csv"  # an option given as --to=VALUE with a space stays one
    result = cli("sql", "--out", sample_out, "-f", "csv", f"--to={target}", query)
    assert (result.exit_code, target.read_text()) == (0, "a\n1\n"), result.stderr
    with pytest.raises(SystemExit) as exited:
        main(["sql", "--out", str(sample_out), "--x"])
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "Error: No such option: --x (see `cxunify sql --help`); a query that starts with - "
        "goes after --: cxunify sql --out DIR -- QUERY\n"
    )


def test_an_output_file_cut_to_nothing_is_a_user_error(cli, sample_out: Path, tmp_path: Path):
    """A profiles.parquet of 0 bytes (copied onto a full disk) was an internal error (exit 2,
    'too small to be a Parquet file'); a file cut short was already a one-line error."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    (out / "profiles.parquet").write_bytes(b"")
    message = (
        f"Error: {out / 'profiles.parquet'}: cannot be read, the file is damaged "
        "(too small to be a Parquet file)\n"
    )
    result = cli("sql", "--out", out, "SELECT count(*) FROM profiles")
    assert (result.exit_code, result.stderr) == (1, message)
    result = cli("diff", sample_out, out)
    assert (result.exit_code, result.stderr) == (1, message)


def _linked_output(sample_out: Path, tmp_path: Path) -> Path:
    """An output folder whose files are links to the sample's (no copy of its state)."""
    out = tmp_path / "out"
    out.mkdir()
    for path in sample_out.iterdir():
        if path.is_file():
            (out / path.name).symlink_to(path)
    return out


def test_sql_a_users_unreadable_parquet_beside_the_outputs_is_skipped(
    cli, sample_out: Path, tmp_path: Path
):
    """CSV text named out/vip.parquet (as `cxunify sql -f csv --to out/vip.parquet` wrote,
    now an error) stopped every later query over the folder ('vip.parquet ... damaged'); a
    user's file that reads is a view still, and a damaged output of cxunify's own an error
    still."""
    out = _linked_output(sample_out, tmp_path)
    (out / "vip.parquet").write_text("a\n1\n")
    good = out / "good.parquet"
    result = cli("sql", "--out", out, "-f", "parquet", "--to", good, "SELECT 7 AS a")
    assert result.exit_code == 0, result.stderr
    result = cli("sql", "--out", out, "-f", "csv", "SELECT count(*) AS n FROM profiles, good")
    assert (result.exit_code, result.stdout) == (0, "n\n2117\n")
    assert result.stderr == (
        f"Warning: {out / 'vip.parquet'}: cannot be read, the file is damaged (too small to "
        "be a Parquet file); not one of cxunify's outputs, it is left without a view\n"
    )
    (out / "links.parquet").unlink()
    (out / "links.parquet").write_text("a\n1\n")
    result = cli("sql", "--out", out, "SELECT count(*) FROM profiles")
    assert result.exit_code == 1 and "links.parquet" in result.stderr


@pytest.mark.parametrize(
    ("fmt", "first", "note"),
    [("csv", b"range\n", b""), ("table", None, b"200,000 rows, first 50 shown\n")],
)
def test_sql_piped_into_a_reader_that_stops_early_ends_quietly(
    sample_out: Path, fmt: str, first: bytes | None, note: bytes
):
    """`cxunify sql ... | head` said 'Error: Broken pipe' and exited 1, failing a script
    under `set -o pipefail` for rows it did not want; then the table did (rich ends the
    process with exit 1 when its reader stops)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "cxunify", "sql", "--out", str(sample_out), "-f", fmt]
    with subprocess.Popen(
        [*command, "SELECT * FROM range(200000)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as piped:
        assert piped.stdout is not None and piped.stderr is not None
        line = piped.stdout.readline()
        assert line == first if first is not None else line
        piped.stdout.close()
        assert (piped.wait(timeout=60), piped.stderr.read()) == (0, note)


def test_a_file_written_over_the_output_s_own_is_refused(cli, sample_out: Path, tmp_path: Path):
    """`sql --to out/profiles.parquet` (filtering profiles in place), `report --to
    out/run.json` and `diff --out old/identity_map.parquet` replaced the output's own file:
    the output was broken for every later command and the nightly update."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    query = "SELECT * FROM profiles LIMIT 1"
    for args, message in (
        (("sql", "--out", out, "-f", "parquet", "--to", out / "profiles.parquet", query),
         f"--to {out / 'profiles.parquet'}: would replace the output's own profiles.parquet"),
        (("sql", "--out", out, "-f", "csv", "--to", out / "state" / "x.csv", query),
         f"--to {out / 'state' / 'x.csv'}: inside {out}'s update state"),
        (("report", "--out", out, "--to", out / "run.json"),
         f"--to {out / 'run.json'}: would replace the output's own run.json"),
        (("diff", out, sample_out, "--out", out / "identity_map.parquet"),
         f"--out {out / 'identity_map.parquet'}: would replace the output's own identity_map"),
        # another output's file, or a file no command reads from the output: refused alike
        (("sql", "--out", sample_out, "--to", out / "links.parquet", query),
         f"--to {out / 'links.parquet'}: would replace the output's own links.parquet"),
        (("report", "--out", sample_out, "--to", out / "state" / "r.html"),
         f"--to {out / 'state' / 'r.html'}: inside {out}'s update state"),
        (("train", "--config", SAMPLE_CONFIG, "--to", out / "customer_ids.parquet"),
         f"--to {out / 'customer_ids.parquet'}: would replace the output's own customer_ids"),
        (("init", "--crm", SAMPLE / "crm.csv", "--to", out / "profiles.parquet"),
         f"--to {out / 'profiles.parquet'}: would replace the output's own profiles.parquet"),
    ):  # fmt: skip
        result = cli(*args)
        assert result.exit_code == 1 and result.stderr.startswith(f"Error: {message}"), args
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not (out / "state" / "x.csv").exists()
    result = cli("sql", "--out", out, "-f", "csv", "--to", out / "vip.csv", query)
    assert result.exit_code == 0, result.stderr


def test_a_file_written_over_an_export_read_is_refused(cli, tmp_path: Path):
    """`init --crm crm.csv --to crm.csv` replaced the export with YAML, `train` with the model,
    and `sql --to`, `report --to` and `diff --out` naming an export the output was made from
    (run.json's inputs) with their result: often the only copy of the customers' data here."""
    out = small_output(tmp_path)
    crm = tmp_path / "crm.csv"
    alias = tmp_path / "alias.csv"  # the same file by another name
    alias.hardlink_to(crm)
    labels = write(tmp_path / "labels.csv", "left,right,match\ncrm:1,crm:2,1\n")
    before = crm.read_bytes()
    reads = f"--to {crm}: is "
    for args, message in (
        (("init", "--crm", crm, "--to", crm), f"{reads}{crm}, a file this command reads"),
        (("init", "--crm", alias, "--to", crm), f"{reads}{alias}, a file this command reads"),
        (("init", "--crm", crm, "--to", tmp_path / "x" / ".." / "crm.csv"),
         f"--to {tmp_path / 'x' / '..' / 'crm.csv'}: is {crm}, a file this command reads"),
        (("train", "--crm", crm, "--to", crm), f"{reads}{crm}, a file this command reads"),
        (("train", "--config", tmp_path / "cfg.yaml", "--to", crm),
         f"{reads}{crm}, a file this command reads"),
        (("train", "--config", tmp_path / "cfg.yaml", "--labels", labels, "--to", labels),
         f"--to {labels}: is {labels}, a file this command reads"),
        (("sql", "--out", out, "--to", crm, "SELECT 1"),
         f"{reads}{crm}, an export {out} was made from (run.json inputs)"),
        (("sql", "--out", out, "--to", alias, "SELECT 1"),
         f"--to {alias}: is {crm}, an export {out} was made from (run.json inputs)"),
        (("report", "--out", out, "--to", crm),
         f"{reads}{crm}, an export {out} was made from (run.json inputs)"),
        (("diff", out, out, "--out", crm),
         f"--out {crm}: is {crm}, an export {out} was made from (run.json inputs)"),
    ):  # fmt: skip
        result = cli(*args)
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: {message}; write it elsewhere\n",
        ), args
    assert crm.read_bytes() == before


def test_init_replaces_a_config_only_with_force(cli, tmp_path: Path):
    """Running `init --to configs/mine.yaml` again silently discarded the user's edits."""
    target = tmp_path / "configs" / "mine.yaml"
    assert cli("init", "--crm", SAMPLE / "crm.csv", "--to", target).exit_code == 0
    edited = target.read_text() + "# reviewed by Ann\n"
    target.write_text(edited)
    result = cli("init", "--crm", SAMPLE / "crm.csv", "--to", target)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: --to {target}: exists (edits made to it would be lost); pass --force to "
        "replace it, or write to another --to\n",
    )
    assert target.read_text() == edited
    result = cli("init", "--crm", SAMPLE / "crm.csv", "--to", target, "--force")
    assert result.exit_code == 0, result.stderr
    assert "reviewed by Ann" not in target.read_text()


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "parquet"])
def test_sql_error_after_the_first_rows_is_one_line_and_leaves_no_file(
    cli, sample_out: Path, tmp_path: Path, fmt: str
):
    """An error DuckDB meets while rows stream (a cast failing in a later batch) came through
    pyarrow as an OSError: several lines (the SQL with a caret), no 'SQL error:', and a
    half-written --to file left behind for the next step of a job to read."""
    query = "SELECT CASE WHEN i > 70000 THEN 'x'::INTEGER ELSE i END AS n FROM range(100000) t(i)"
    target = tmp_path / f"n.{fmt}"
    result = cli("sql", "--out", sample_out, "--format", fmt, "--to", target, query)
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: SQL error: Conversion Error: Could not convert string 'x' to INT32\n",
    )
    assert not target.exists()
    if fmt == "parquet":  # needs --to
        return
    result = cli("sql", "--out", sample_out, "--format", fmt, query)
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: SQL error: Conversion Error: Could not convert string 'x' to INT32\n"
    )


def test_init_prints_a_config_that_unify_accepts(cli, tmp_path: Path):
    target = tmp_path / "configs" / "mine.yaml"
    result = cli(
        "init",
        *SAMPLE_FLAGS,
        "--to",
        target,
    )
    assert result.exit_code == 0, result.stderr
    text = target.read_text()
    assert "email: customer_email  # header 'customer_email'; 100% look like emails" in text
    assert "full_name: billing_name" in text and "id: order_id" in text
    assert "path: ../../" not in text or "sample_data" in text
    from cxunify.config import load_config

    config = load_config(target)
    assert [s.kind.value for s in config.sources] == ["crm", "transactions", "social", "support"]
    assert config.sources[0].id == "contact_id"
    assert config.sources[0].columns["customer_key"] == "loyalty_id"


def test_init_reads_columns_named_like_its_own_working_names(cli, tmp_path: Path):
    # The value checks run over all columns at once (unpivoted): headers such as these must
    # stay ordinary columns.
    data = write(
        tmp_path / "people.csv",
        "position,v,0,name\n1,ann@x.com,+44 20 7946 0018,Ann Lee\n"
        "2,bo@x.com,+44 20 7946 0019,Bo Ng\n",
    )
    result = cli("init", "--crm", data)
    assert result.exit_code == 0, result.stderr
    text = result.stdout.replace('"', "").replace("'", "")
    assert "email: v  # values: 100% of v are emails" in text


def test_init_maps_names_in_any_script(cli, tmp_path: Path):
    """A name looked like one only with a Latin letter in it (RE2's \\W is ASCII): a zero-config
    run left out the first and last names of an export of Дмитрий Иванов, 李 小龙 and Ольга
    Петрова, and matched them on email alone."""
    data = write(
        tmp_path / "crm.csv",
        "contact_id,first_name,last_name,email\n1,Дмитрий,Иванов,d@x.ru\n"
        "2,Ольга,Петрова,o@x.ru\n3,李,小龙,li@x.cn\n4,José,Núñez,j@x.es\n",
    )
    result = cli("init", "--crm", data)
    assert result.exit_code == 0, result.stderr
    assert "first_name: first_name" in result.stdout
    assert "last_name: last_name" in result.stdout


def test_a_flagged_file_of_which_no_column_is_recognised(cli, tmp_path: Path):
    # Its rows had no field to link by: each was a customer with nothing but its id.
    data = write(tmp_path / "codes.csv", "foo,bar\n1,x\n2,y\n")
    result = cli("unify", "--crm", data, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --crm {data}: no column is recognised as a customer field; map its columns in "
        f"a config (`cxunify init --crm {data} --to cx.yaml` drafts one)\n"
    )
    assert not (tmp_path / "out").exists()
    # init drafts the config all the same, and says what is left to do.
    result = cli("init", "--crm", data)
    assert result.exit_code == 0
    assert result.stderr == (
        f"Warning: {data}: no column is recognised as a customer field; map at least one in "
        "the columns of source 'codes' before running\n"
    )
    assert "    columns: {}  # no column recognised: map at least one before running\n" in (
        result.stdout
    )


def test_an_empty_path_flag_says_so(cli, tmp_path: Path):
    # It was read as the current folder: "--crm : file not found".
    result = cli("unify", "--crm", "", "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == "Error: --crm: the path is empty; give a file or a glob\n"


@pytest.mark.parametrize("command", ["unify", "init"])
def test_a_flagged_file_of_unknown_extension_names_the_flag(cli, tmp_path: Path, command: str):
    # It said "set format:", a key the flags have no way to set; then it ended at "a config
    # that sets its format:", naming neither the key's spelling nor its values.
    data = write(tmp_path / "people.dat", "id,email\n1,ann@x.com\n")
    out = ("--out", tmp_path / "out", "-q") if command == "unify" else ()
    result = cli(command, "--crm", data, *out)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --crm {data}: cannot tell its format from its extension (.dat); "
        "rename it (.csv, .tsv, .jsonl, .json, .parquet, .xlsx), or read it with a config "
        "whose source sets its format (format: csv, or tsv, ndjson, json, parquet, excel)\n"
    )


def test_a_file_named_by_two_flags_is_an_error(cli, tmp_path: Path):
    # Read as two sources, its rows were counted twice and linked to themselves.
    data = write(tmp_path / "people.csv", "id,email\n1,ann@x.com\n")
    for flags in (
        ("--crm", data, "--crm", data),
        ("--crm", data, "--support", data),
        ("--crm", tmp_path / "*.csv", "--crm", f"mine={data}"),
    ):
        result = cli("unify", *flags, "--out", tmp_path / "out", "-q")
        assert result.exit_code == 1
        assert " ".join(result.stderr.split()).endswith(
            f"{data} is also named by {flags[0]} {flags[1]}; give each file once"
        )


def test_init_falls_back_to_row_numbers_without_a_unique_key(cli, tmp_path: Path):
    data = write(
        tmp_path / "people.csv",
        "account_id,Email Address,Name\n1,a@x.com,Ann Lee\n1,b@x.com,Bo Ng\n",
    )
    result = cli("init", "--crm", data)
    assert result.exit_code == 0, result.stderr
    assert "# id: (none) no unique key column found" in result.stdout
    assert "email: Email Address" in result.stdout.replace('"', "")


def test_unify_json_summary(sample_out: Path):
    summary = json.loads((sample_out.parent / "unify.json").read_text())  # the run's stdout
    assert summary["status"] == "ok"
    assert (
        summary["counts"]["rows_in"]
        == summary["counts"]["rows_mapped"] + summary["counts"]["rows_rejected"]
    )


def test_a_hand_made_file_links_orders_to_the_contact_of_their_email(cli, tmp_path: Path):
    # A first try: contacts, and orders each under one contact's email. The 21 pairs of seven
    # records were all the random pairs, the two sharing an email among them: an exact email
    # looked as common as 1 pair in 10, and the orders stayed customers of their own. Two John
    # Smiths in two cities stay two people: the file's own name frequencies still count.
    crm = write(
        tmp_path / "crm.csv",
        "contact_id,first_name,last_name,email,city\n"
        "C1,Anna,Smith,anna.smith@gmail.com,\n"
        "C2,Bob,Jones,bob.jones@gmail.com,\n"
        "C3,Carol,White,carol.white@gmail.com,\n"
        "J1,John,Smith,,San Francisco\n"
        "J2,John,Smith,,New York\n",
    )
    orders = write(
        tmp_path / "orders.csv",
        "order_id,email,amount,order_date\n"
        "O1,anna.smith@gmail.com,10.50,2025-01-02\n"
        "O2,bob.jones@gmail.com,20.00,2025-01-03\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--crm", crm, "--transactions", orders, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    identity_map = out / "identity_map.parquet"
    customers = duckdb.sql(
        "SELECT list(source_record_id ORDER BY source_record_id) AS records "
        f"FROM '{identity_map}' GROUP BY customer_id ORDER BY records"
    ).fetchall()
    assert customers == [(["C1", "O1"],), (["C2", "O2"],), (["C3"],), (["J1"],), (["J2"],)]


def test_emails_at_example_com_are_counted_and_warned_of(cli, tmp_path: Path):
    """ann@example.com names nobody (RFC 2606 keeps the domain for examples), so it is not
    used to match; a file made by hand with such addresses matched on names alone, and
    run.json said junk_emails 0."""
    crm = write(
        tmp_path / "crm.csv",
        "contact_id,first_name,last_name,email\n"
        "C1,Anna,Smith,anna@example.com\n"
        "C2,Bob,Jones,bob@example.org\n"
        "C3,Cy,Oh,not an email\n"
        "C4,Dee,Ma,dee.ma@gmail.com\n"
        "C5,Eve,Li,\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--crm", crm, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    warning = (
        "Warning: 3 of the 4 emails read are not addresses or are placeholders (test@test.com, "
        "any address at example.com, example.org, example.net, test.com or .invalid, domains "
        "reserved for examples) and are not used to match"
    )
    assert warning in " ".join(result.stderr.split())
    run = json.loads((out / "run.json").read_text())
    assert (run["counts"]["emails_read"], run["counts"]["emails_unusable"]) == (4, 3)
    assert run["warnings"] == [warning.removeprefix("Warning: ")]


UK_CONTACTS = (
    "id,first_name,last_name,email,phone\n1,Ann,Lee,ann@fastmail.com,020 7946 0018\n"
    "2,Bob,Ng,bob@fastmail.com,0161 496 0754\n3,Cy,Oh,cy@fastmail.com,07700 900123\n"
    "4,Di,Wu,di@fastmail.com,0000000000\n"
)
UK_ORDERS = "oid,email,phone,amount\nA1,ann2@fastmail.com,+44 20 7946 0018,10\n"


def _uk_config(tmp_path: Path, region: str = "") -> Path:
    sources = ""
    for name, kind, id_, columns in (
        ("crm", "crm", "id", "{first_name: first_name, last_name: last_name, email: email, "
                            "phone: phone}"),
        ("orders", "transactions", "oid", "{email: email, phone: phone, amount: amount}"),
    ):  # fmt: skip
        sources += f"  - name: {name}\n    kind: {kind}\n    path: {name}.csv\n    id: {id_}\n"
        sources += f"    phone_region: {region}\n" if region and name == "crm" else ""
        sources += f"    columns: {columns}\n"
    write(tmp_path / "crm.csv", UK_CONTACTS)
    write(tmp_path / "orders.csv", UK_ORDERS)
    return write(tmp_path / "c.yaml", "sources:\n" + sources)


def test_phones_that_are_no_number_where_they_are_read_are_warned_of(cli, tmp_path: Path):
    """A British shop's config without phone_region read its contacts' 020 numbers in the
    default region, US: none was a number, and none matched its orders' +44 numbers, without a
    word. The warning names the region the run's other numbers read them in; the placeholder
    is no phone anywhere and is not counted."""
    out = tmp_path / "out"
    result = cli("unify", "--config", _uk_config(tmp_path), "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    warning = (
        "source 'crm': 3 of its 3 phones are no number when read in US (the default: the "
        "source sets none) and are not used to match; 3 of them are GB numbers: set "
        "phone_region: GB on the source (without a config, --phone-region GB)"
    )
    assert "Warning: " + warning in " ".join(result.stderr.split())
    assert json.loads((out / "run.json").read_text())["warnings"] == [warning]
    # Following it, Ann's contact and her order share a number, and no warning is left.
    result = cli("unify", "--config", _uk_config(tmp_path, "GB"), "--out", out, "--quiet")
    assert result.exit_code == 0 and "Warning" not in result.stderr, result.stderr
    ann = duckdb.sql(
        f"SELECT count(DISTINCT customer_id) FROM '{out}/identity_map.parquet' "
        "WHERE source_record_id IN ('1', 'A1')"
    ).fetchall()
    assert ann == [(1,)]
    # A lone source of national numbers: no other number tells their region.
    result = cli("unify", "--crm", tmp_path / "crm.csv", "--out", tmp_path / "o2", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (
        "3 of its 3 phones are no number when read in US (the default: the source sets none) "
        "and are not used to match; set the source's phone_region (without a config, "
        "--phone-region) to the country they are from"
    ) in " ".join(result.stderr.split())
    # One phone is one phone, in the words too.
    one = write(
        tmp_path / "one.csv",
        UK_CONTACTS.split("\n", 2)[0] + "\n" + UK_CONTACTS.split("\n")[1] + "\n",
    )
    result = cli("unify", "--crm", one, "--out", tmp_path / "o3", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (
        "source 'one': its only phone is no number when read in US (the default: the source "
        "sets none) and is not used to match; set the source's phone_region (without a "
        "config, --phone-region) to the country it is from"
    ) in " ".join(result.stderr.split())


def test_a_tiny_file_links_on_a_shared_email_whatever_its_namesakes_say(cli, tmp_path: Path):
    # Two John Smiths of one city with different emails were the only pair with two emails to
    # compare (the sign-up sharing Mary's email was found by that email alone, so EM did not
    # see it): EM put m of every agreeing email level at 1e-6. The namesakes were merged on
    # their name and city, and the shared email weighed nothing.
    crm = write(
        tmp_path / "crm.csv",
        "contact_id,first_name,last_name,email,city\n"
        "C1,John,Smith,john.smith@gmail.com,Boston\n"
        "C2,John,Smith,jsmith.work@yahoo.com,Boston\n"
        "C3,Mary,Jones,mary.jones@gmail.com,Austin\n"
        "C4,,,mary.jones@gmail.com,Dallas\n"
        "C5,Peter,Brown,pbrown@outlook.com,Seattle\n"
        "C6,Linda,Garcia,linda.g@hotmail.com,Miami\n"
        "C7,Omar,Haddad,omar.h@icloud.com,Chicago\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--crm", crm, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    customers = duckdb.sql(
        "SELECT list(source_record_id ORDER BY source_record_id) AS records "
        f"FROM '{out / 'identity_map.parquet'}' GROUP BY customer_id ORDER BY records"
    ).fetchall()
    assert customers == [
        (["C1"],), (["C2"],), (["C3", "C4"],), (["C5"],), (["C6"],), (["C7"],)
    ]  # fmt: skip
    weights = json.loads((out / "run.json").read_text())["model"]["weights"]
    agreeing = {
        (w["comparison"], w["level"]): w["partial_weight"]
        for w in weights
        if w["comparison"] in ("email", "phone", "national_id", "handle") and w["gamma"] > 0
    }
    assert agreeing[("email", "exact")] > 10
    assert min(agreeing.values()) >= 0, agreeing


def test_names_holding_control_characters_are_shown_escaped_in_errors(cli, tmp_path: Path):
    """A hand-written config's key or mapped column holding a line break and an escape
    (turning the terminal red, clearing it) passed both to stderr as they were: the one-line
    error was two, and the terminal obeyed the escape."""
    write(tmp_path / "crm.csv", "id,first_name\n1,ann\n")
    key = write(
        tmp_path / "key.yaml",
        'sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, "bad\\nkey\\u001b[31m": 1,'
        "\n     columns: {first_name: first_name}}\n",
    )
    result = cli("unify", "--config", key, "--out", tmp_path / "out", "--json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error: {key}: sources[0].bad\\nkey\\x1b[31m: unknown key\n"
    column = write(
        tmp_path / "column.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id,\n"
        '     columns: {first_name: "first\\nname\\u001b[2J"}}\n',
    )
    result = cli("unify", "--config", column, "--out", tmp_path / "out", "--json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: {tmp_path / 'crm.csv'}: sources[0].columns.first_name: column "
        "'first\\nname\\x1b[2J' not found in crm.csv; did you mean 'first_name'?\n"
    )
    # A value too, and through the Python API as well as the command.
    from cxunify.config import load_config
    from cxunify.errors import ConfigError

    value = write(tmp_path / "value.yaml", 'sources: []\nmatching: {threshold: "0.9\\r\\n"}\n')
    with pytest.raises(ConfigError) as error:
        load_config(value)
    assert "matching.threshold: should be a number, not text ('0.9\\r\\n')" in str(error.value)
    assert not any(c in str(error.value) for c in "\r\n\x1b")
    from cxunify.errors import InputError
    from cxunify.pipeline import plan

    with pytest.raises(InputError) as error:
        plan(load_config(column))
    assert "column 'first\\nname\\x1b[2J' not found" in str(error.value)


def test_no_input_and_both_kinds_of_input_are_user_errors(cli, tmp_path: Path):
    result = cli("unify", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "no input" in result.stderr
    result = cli(
        "unify", "--config", SAMPLE_CONFIG, "--crm", SAMPLE / "crm.csv", "--out", tmp_path / "o"
    )
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: give either --config or --crm/--transactions/--social/--support\n"
    )


def test_flags_naming_a_store_say_a_config_is_needed(cli, tmp_path: Path):
    result = cli("unify", "--crm", "s3a://bucket/crm.csv", "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --crm s3a://bucket/crm.csv: flags read local files; for exports on a store write "
        "a config with `path: s3a://bucket/crm.csv` and `engine: spark` (`cxunify init` on a "
        "local copy drafts one)\n"
    )
    assert not (tmp_path / "o").exists()


def test_refuses_to_replace_a_folder_that_is_not_an_output(cli, tmp_path: Path):
    precious = write(tmp_path / "docs" / "thesis.txt", "years of work")
    result = cli("unify", "--config", SAMPLE_CONFIG, "--out", tmp_path / "docs", "-q")
    assert result.exit_code == 1
    assert "is not a cxunify output folder" in result.stderr
    assert precious.read_text() == "years of work"


def test_sample_command_is_deterministic(cli, tmp_path: Path):
    for name in ("a", "b"):
        assert (
            cli("sample", "--people", 300, "--seed", 3, "--out", tmp_path / name, "-q").exit_code
            == 0
        )
    for file in ("crm.csv", "orders.csv", "social.ndjson", "tickets.csv", "truth.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_sample_replaces_no_other_exports_without_force(cli, tmp_path: Path):
    """`cxunify sample --out data/` replaced the exports (or a user's own crm.csv) there
    without a word. The same people and seed write the same bytes, so running it again is
    fine; other ones are an error naming the file, and --force replaces them."""
    out = tmp_path / "data"
    assert cli("sample", "--people", 30, "--seed", 3, "--out", out, "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["crm.csv", "orders.csv", "social.ndjson", "tickets.csv", "truth.csv"]
    assert cli("sample", "--people", 30, "--seed", 3, "--out", out, "-q").exit_code == 0
    result = cli("sample", "--people", 30, "--seed", 4, "--out", out, "-q")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {out / 'crm.csv'}: exists, and is not what --people 30 --seed 4 write; pass "
        "--force to replace it, or write to another --out"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written
    result = cli("sample", "--people", 30, "--seed", 4, "--out", out, "-q", "--force")
    assert result.exit_code == 0, result.stderr
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(after) == sorted(before) and after["crm.csv"] != before["crm.csv"]


def test_internal_errors_exit_2_without_traceback(cli, tmp_path: Path, monkeypatch):
    import cxunify.pipeline

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cxunify.pipeline, "unify", boom)
    result = cli("unify", "--config", SAMPLE_CONFIG, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "Internal error: RuntimeError: kaboom" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_inside_a_query_is_an_interruption_not_a_bug(cli, tmp_path: Path, monkeypatch):
    """DuckDB reports Ctrl-C during a query as an error of its own, not KeyboardInterrupt."""
    import cxunify.pipeline

    for error in (duckdb.InterruptException("INTERRUPT Error: Interrupted!"),
                  RuntimeError("Query interrupted")):  # fmt: skip

        def interrupted(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(cxunify.pipeline, "unify", interrupted)
        result = cli("unify", "--config", SAMPLE_CONFIG, "--out", tmp_path / "o")
        assert (result.exit_code, result.stderr) == (130, "Interrupted.\n")


def test_paths_that_cannot_be_written_are_one_line_user_errors(
    cli, sample_out: Path, tmp_path: Path
):
    """A folder where a file should go, a file where a folder should be."""
    a_file = write(tmp_path / "a_file", "x")
    in_a_file = "is a file, not a folder: nothing can be written inside it"  # "File exists"
    cases = [
        (("sql", "--out", sample_out, "--format", "csv", "--to", tmp_path, "SELECT 1"),
         f"Error: {tmp_path}: is a folder; --to takes a file name such as {tmp_path}/result.csv"),
        (("sql", "--out", sample_out, "--format", "csv", "--to", a_file / "x.csv", "SELECT 1"),
         f"Error: {a_file}: {in_a_file}"),
        (("report", "--out", sample_out, "--to", a_file / "report.html"),
         f"Error: {a_file}: {in_a_file}"),
        (("diff", sample_out, sample_out, "--out", a_file / "changes.parquet"),
         f"Error: {a_file}: {in_a_file}"),
        (("unify", "--crm", SAMPLE / "crm.csv", "--out", a_file / "out", "-q"),
         f"Error: {a_file}: {in_a_file}"),
    ]  # fmt: skip
    for args, message in cases:
        result = cli(*args)
        assert (result.exit_code, result.stderr.strip()) == (1, message), args


@pytest.mark.parametrize(
    ("command", "written"),
    [
        (("sql", "--format", "csv", "--to", "{to}/x.csv", "SELECT 1"), "x.csv"),
        (("sql", "--format", "parquet", "--to", "{to}/x.parquet", "SELECT 1"), "x.parquet"),
        (("report", "--to", "{to}/report.html"), "report.html"),
        (("diff", "{out}", "{out}", "--out", "{to}/changes.parquet"), "changes.parquet"),
    ],
)
def test_files_written_go_into_folders_made_for_them(
    cli, sample_out: Path, tmp_path: Path, command: tuple[str, ...], written: str
):
    # As train --to and init --to do; these said "No such file or directory".
    to = tmp_path / "reports" / "nightly"
    args = [a.format(to=to, out=sample_out) for a in command]
    if args[0] != "diff":
        args[1:1] = ["--out", str(sample_out)]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert (to / written).is_file()


def test_the_command_exits_with_the_documented_codes(tmp_path: Path):
    """Through the installed entry point (`python -m cxunify`, as cron runs it): a usage
    error is a user error, 1 with one line (Click would exit 2, this tool's internal-error
    code); a failed gate is 3; a good run 0."""
    import subprocess
    import sys

    def run(*args) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "cxunify", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)

    bad = run("unify", "--bogus")
    assert (bad.returncode, bad.stderr.count("\n")) == (1, 1)
    assert bad.stderr.startswith("Error: No such option: --bogus")
    assert bad.stderr.rstrip().endswith("(see `cxunify unify --help`)")
    assert run("sample", "--people", "0").returncode == 1
    write(tmp_path / "crm.csv", "id,email\n1,ann@gmail.com\n2,ann@gmail.com\n")
    config = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email}}\n"
        "matching:\n  rules: [[email_std]]\n",
    )
    assert run("unify", "--config", config, "--out", "out", "-q").returncode == 0
    gated = write(tmp_path / "gated.yaml", config.read_text() + "gates:\n  max_cluster_size: 1\n")
    assert run("unify", "--config", gated, "--out", "out", "-q").returncode == 3


def test_times_not_read_are_warned_of_per_source_and_column(cli, tmp_path: Path):
    """A time in a zone named for several (BST) or of a year past 2100 was NULL without a word,
    and the customer's recency and journey with it. A zone of one name (PST) is read; a
    placeholder (n/a) is not counted. An update warns of tonight's rows."""
    tickets = write(
        tmp_path / "tickets.csv",
        "ticket_id,email,created_at,subject\n"
        "T1,ann@mail.com,2025-01-01T10:00:00 PST,Late\n"
        "T2,bob@mail.com,2025-01-02 09:00 BST,Broken\n"
        "T3,cy@mail.com,2205-01-03 10:00,Typo\n"
        "T4,di@mail.com,n/a,Nothing\n"
        "T5,ed@mail.com,2025-01-04 10:00,Fine\n",
    )

    def config(path: Path) -> Path:
        return write(
            tmp_path / f"{path.stem}.yaml",
            f"sources:\n  - {{name: tickets, kind: support, path: {path}, id: ticket_id,\n"
            "     columns: {email: email, created_at: created_at, subject: subject}}\n",
        )

    out = tmp_path / "out"
    result = cli("unify", "--config", config(tickets), "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    warning = (
        "source 'tickets': 2 of its 4 created_at values are not read as times (such as "
        "'2025-01-02 09:00 BST') and left empty (the README's profiles.parquet section says "
        "which formats, zones and years are read)"
    )
    assert "Warning: " + warning in " ".join(result.stderr.split())
    assert json.loads((out / "run.json").read_text())["warnings"] == [warning]
    times = dict(
        duckdb.sql(f"SELECT source_record_id, ts FROM '{out}/touchpoints.parquet'").fetchall()
    )
    assert times["T1"] == datetime(2025, 1, 1, 18) and times["T2"] is None
    tonight = write(
        tmp_path / "tonight.csv",
        "ticket_id,email,created_at,subject\nT6,fay@mail.com,2025-01-05 10:00 IST,New\n",
    )
    result = cli("update", "--config", config(tonight), "--previous", out, "--json", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == [
        "source 'tickets': its only created_at value is not read as times (such as "
        "'2025-01-05 10:00 IST') and left empty (the README's profiles.parquet section says "
        "which formats, zones and years are read)"
    ]
