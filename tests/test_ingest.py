"""Bad input gets the documented behaviour: rejects with reasons, or a one-line error."""

import json
import re
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import write

CRM = "contact_id,first_name,last_name,email,phone\n"


def config(tmp_path: Path, body: str, name: str = "crm.csv", extra: str = "") -> Path:
    return write(
        tmp_path / "cfg.yaml",
        f"""
sources:
  - name: crm
    kind: crm
    path: {name}
    id: contact_id
{extra}    columns:
      first_name: first_name
      last_name: last_name
      email: email
      phone: phone
""",
    )


def rejects(out: Path) -> list[tuple]:
    return duckdb.sql(
        f"SELECT source, file, line, reason, raw FROM '{out}/rejects.parquet' ORDER BY line"
    ).fetchall()


def test_broken_csv_row_goes_to_rejects_with_line_and_raw_text(cli, tmp_path: Path):
    data = write(
        tmp_path / "crm.csv",
        CRM + "1,Ann,Lee,ann@x.com,5550100001\n2,Bob,Ray,bob@x.com,5550100002,EXTRA\n"
        "3,Cy,Ng,cy@x.com,5550100003\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, ""), "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert rejects(out) == [
        (
            "crm",
            str(data),
            3,
            "unparseable CSV row: too many columns",
            "2,Bob,Ray,bob@x.com,5550100002,EXTRA",
        )
    ]
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["rows_in"] == 3
    assert run["counts"]["rows_rejected"] == 1
    assert run["counts"]["rows_mapped"] == 2
    assert run["counts"]["balanced"] is True
    ids = duckdb.sql(f"SELECT source_record_id FROM '{out}/identity_map.parquet' ORDER BY 1")
    assert ids.fetchall() == [("1",), ("3",)]


def test_latin1_file_is_read_with_auto_encoding(cli, tmp_path: Path):
    write(tmp_path / "crm.csv", CRM + "1,Renée,Müller,r@x.com,5550100001\n", encoding="latin-1")
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, ""), "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    names = duckdb.sql(f"SELECT first_name, last_name FROM '{out}/profiles.parquet'").fetchall()
    assert names == [("Renée", "Müller")]
    run = json.loads((out / "run.json").read_text())
    assert run["inputs"][0]["encoding"] == "cp1252"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf16_file_without_a_byte_order_mark_is_read_as_utf16(
    cli, tmp_path: Path, encoding: str
):
    """Valid UTF-8 as well (a NUL beside each ASCII byte): read so, no column was found."""
    write(tmp_path / "crm.csv", CRM + "1,Renée,Müller,r@x.com,5550100001\n", encoding=encoding)
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, ""), "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    names = duckdb.sql(f"SELECT first_name, last_name FROM '{out}/profiles.parquet'").fetchall()
    assert names == [("Renée", "Müller")]
    assert json.loads((out / "run.json").read_text())["inputs"][0]["encoding"] == encoding


def test_latin1_file_declared_utf8_is_a_one_line_error(cli, tmp_path: Path):
    data = write(tmp_path / "crm.csv", CRM + "1,Renée,Müller,r@x.com,1\n", encoding="latin-1")
    cfg = config(tmp_path, "", extra="    encoding: utf-8\n")
    result = cli("unify", "--config", cfg, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}:2: not valid UTF-8; set the source's encoding (e.g. encoding: latin-1) "
        "or encoding: auto\n"
    )
    assert not (tmp_path / "out").exists()


ROWS = "".join(f"{n},Ann,Lee,ann{n}@x.com,5550100001\n" for n in range(1, 30_000))  # > 1 MiB


@pytest.mark.parametrize(
    ("encoding", "body", "line", "problem"),
    [
        # 0x81 is no character in cp1252
        ("cp1252", CRM.encode() + b"1,A\x81n,Lee,a@x.com,1\n", 2, "not valid cp1252"),
        ("ascii", (CRM + "1,A,B,a@x.com,1\n2,Renée,B,r@x.com,2\n").encode(), 3, "not valid ascii"),
        # past the first MiB read, the lines before it counted
        ("cp1252", (CRM + ROWS).encode() + b"\x81\n", 30_001, "not valid cp1252"),
        # a lone surrogate (a high one not followed by a low one)
        ("utf-16", (CRM + "1,A").encode("utf-16") + b"\x00\xd8A\x00\n\x00", 2, "not valid utf-16"),
    ],
)
def test_a_file_its_declared_encoding_cannot_read_names_the_line(
    cli, tmp_path: Path, encoding: str, body: bytes, line: int, problem: str
):
    data = tmp_path / "crm.csv"
    data.write_bytes(body)
    cfg = config(tmp_path, "", extra=f"    encoding: {encoding}\n")
    result = cli("unify", "--config", cfg, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}:{line}: {problem}; set the source's encoding (e.g. encoding: latin-1) "
        "or encoding: auto\n"
    )


def test_a_utf16_file_cut_inside_a_character_is_a_one_line_error(cli, tmp_path: Path):
    """A byte order mark makes `auto` read the file as UTF-16; an odd last byte is half a
    character, and the error says the file looks cut short."""
    data = tmp_path / "crm.csv"
    data.write_bytes((CRM + "1,A,B,a@x.com,1\n").encode("utf-16") + b"2")
    result = cli("unify", "--config", config(tmp_path, ""), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {data}:3: ends inside a UTF-16 character; is it cut short?\n"


def test_unknown_encoding_is_a_one_line_error(cli, tmp_path: Path):
    data = write(tmp_path / "crm.csv", CRM + "1,A,B,a@x.com,1\n")
    cfg = config(tmp_path, "", extra="    encoding: klingon\n")
    result = cli("unify", "--config", cfg, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {data}: unknown encoding 'klingon'\n"


def test_empty_file_is_a_one_line_error(cli, tmp_path: Path):
    data = write(tmp_path / "crm.csv", "")
    result = cli("unify", "--config", config(tmp_path, ""), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {data}: file is empty (source 'crm')\n"


def test_header_only_file_gives_no_rows_but_succeeds(cli, tmp_path: Path):
    write(tmp_path / "crm.csv", CRM)
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, ""), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["counts"]["profiles"] == 0


def test_misspelt_config_key_is_a_one_line_error(cli, tmp_path: Path):
    write(tmp_path / "crm.csv", CRM + "1,A,B,a@x.com,1\n")
    cfg = config(tmp_path, "")
    cfg.write_text(cfg.read_text().replace("columns:", "colums:"))
    result = cli("unify", "--config", cfg, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert (
        result.stderr == f"Error: {cfg}: sources[0].colums: unknown key; did you mean 'columns'?\n"
    )


def test_missing_mapped_column_is_named_with_a_suggestion(cli, tmp_path: Path):
    data = write(tmp_path / "crm.csv", "contact_id,first_name,last_name,e_mail,phone\n1,A,B,c,d\n")
    result = cli("unify", "--config", config(tmp_path, ""), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}: sources[0].columns.email: column 'email' not found in crm.csv; "
        "did you mean 'e_mail'?\n"
    )


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        (
            "crm.csv",
            '    delimiter: ";"\n',
            "its header was read as one column 'contact_id,first_name,last_name,email,ph…' with "
            "delimiter ';'; is the delimiter ','? (set sources[0].delimiter to it, or leave it "
            "out to have it sniffed)",
        ),
        (
            "crm.tsv",
            "",
            "its header was read as one column 'contact_id,first_name,last_name,email,ph…' with "
            "delimiter '\\t'; is the delimiter ','? (set sources[0].format: csv, or "
            "sources[0].delimiter)",
        ),
    ],
)
def test_a_header_read_as_one_column_names_the_delimiter(
    cli, tmp_path: Path, name: str, extra: str, message: str
):
    """A config's `delimiter: ";"` on a comma-separated file reported each mapped column not
    found (`column 'first_name' not found in crm.csv; did you mean
    'contact_id,first_name,...'?`), with no word that the whole header was read as one
    column: the error says so, and which delimiter the header holds."""
    data = write(tmp_path / name, CRM + "1,A,B,a@x.com,1\n")
    cfg = config(tmp_path, "", name=name, extra=extra)
    result = cli("unify", "--config", cfg, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {data}: {message}\n"


def _unify_with_column_lists(cli, tmp_path: Path, crm: str, emails: str) -> tuple[Path, list]:
    """`crm` unified with its phone mapped to [work_phone, mobile_phone], its email to the
    list `emails`, and phone the only rule; returns the output and each record's
    (source_record_id, customer_id, phone, email)."""
    write(tmp_path / "crm.csv", crm)
    cfg = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - name: crm\n    kind: crm\n    path: crm.csv\n    id: id\n"
        f"    columns:\n      phone: [work_phone, mobile_phone]\n      email: {emails}\n"
        "matching:\n  rules: [[phone]]\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", cfg, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(
        f"SELECT source_record_id, customer_id, phone, email FROM '{out}/identity_map.parquet' "
        f"JOIN '{out}/records.parquet' USING (source, source_record_id, customer_id) "
        "ORDER BY source_record_id"
    ).fetchall()
    return out, rows


def test_a_phone_in_the_second_of_two_columns_links_its_record(cli, tmp_path: Path):
    """An export with a work and a mobile phone (Freshdesk's, Salesforce's) mapped one of them:
    a contact whose number was in the other had no phone. Mapped as a list, a record takes the
    first column holding a value: 1 links to 2 by the mobile number; 3 keeps its work phone
    to match by, not its mobile, which its profile lists all the same."""
    out, rows = _unify_with_column_lists(
        cli,
        tmp_path,
        "id,work_phone,mobile_phone,email,email_2\n1,,+14155552671,,ann@x.com\n"
        "2,(415) 555-2671,,,\n3,+12125550147,+14155552671,bo@x.com,Bo@Y.com\n",
        "[email, email_2]",
    )
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("1", "+14155552671", "ann@x.com"),
        ("2", "+14155552671", None),
        ("3", "+12125550147", "bo@x.com"),
    ]
    assert rows[0][1] == rows[1][1] != rows[2][1]
    profile = duckdb.sql(
        f"SELECT phone, phones, email, emails FROM '{out}/profiles.parquet' WHERE customer_id = $c",
        params={"c": rows[2][1]},
    ).fetchall()
    assert profile == [
        ("+12125550147", ["+12125550147", "+14155552671"], "bo@x.com", ["bo@x.com", "bo@y.com"])
    ]


def test_a_placeholder_in_the_first_of_two_columns_gives_way_to_the_second(cli, tmp_path: Path):
    """A contact whose work phone was 'n/a' and mobile a real number took 'n/a' as its phone,
    so it had none to match by; its email likewise (test@test.com before a real address). Now
    the first value of use is the one matched by, and a cell of several addresses
    ('a@x.com; b@y.com') is each of them in the profile's emails."""
    out, rows = _unify_with_column_lists(
        cli,
        tmp_path,
        "id,work_phone,mobile_phone,email,other_emails\n"
        '1,n/a,+14155552671,test@test.com,"a@x.com; b@y.com"\n'
        "2,(415) 555-2671,,,\n3,,,n/a,\n",
        "[email, other_emails]",
    )
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("1", "+14155552671", "a@x.com"),
        ("2", "+14155552671", None),
        ("3", None, None),
    ]
    assert rows[0][1] == rows[1][1] != rows[2][1]
    profile = duckdb.sql(
        f"SELECT phones, email, emails FROM '{out}/profiles.parquet' WHERE customer_id = $c",
        params={"c": rows[0][1]},
    ).fetchall()
    assert profile == [(["+14155552671"], "a@x.com", ["a@x.com", "b@y.com"])]
    counts = json.loads((out / "run.json").read_text())["counts"]
    # 1 wrote test@test.com first but has an address of use; 3 wrote only 'n/a'
    assert (counts["emails_read"], counts["emails_unusable"]) == (2, 1)


def test_missing_file_and_glob_without_match(cli, tmp_path: Path):
    result = cli(
        "unify",
        "--config",
        config(tmp_path, "", name="nope/*.csv"),
        "--out",
        tmp_path / "out",
        "-q",
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'cfg.yaml'}: sources[0].path: no file matches 'nope/*.csv'\n"
    )
    gone = config(tmp_path, "", name="gone.csv")
    result = cli("unify", "--config", gone, "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'cfg.yaml'}: sources[0].path: file not found: "
        f"{tmp_path / 'gone.csv'}\n"
    )


def test_a_folder_for_a_file_says_it_is_a_folder_and_what_glob_to_give(cli, tmp_path: Path):
    """An export folder (a Spark job's part files) given as the path was 'file not found',
    though it is there: the message names the folder and a glob of its files."""
    write(tmp_path / "crm" / "part-0.parquet", "")
    write(tmp_path / "crm" / "_SUCCESS", "")
    result = cli("unify", "--config", config(tmp_path, "", name="crm"), "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'cfg.yaml'}: sources[0].path: {tmp_path / 'crm'} is a folder; "
        "name its files with a glob (e.g. crm/*.parquet)\n"
    )
    result = cli("unify", "--crm", f"{tmp_path}/crm/", "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --crm {tmp_path}/crm/: is a folder; name its files with a glob "
        f"(e.g. {tmp_path}/crm/*.parquet)\n"
    )


@pytest.mark.parametrize(("name", "extension"), [("crm.dat", "(.dat)"), ("crm", "(none)")])
def test_a_file_of_unknown_extension_names_the_format_key(cli, tmp_path, name, extension):
    # It named the file only, not the config or the key to set.
    data = write(tmp_path / name, CRM + "1,A,B,a@x.com,1\n")
    cfg = config(tmp_path, "", name=name)
    result = cli("plan", "--config", cfg)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {cfg}: sources[0].format: cannot tell the format of {data} from its "
        f"extension {extension}; set format: csv, tsv, ndjson, json, parquet or excel\n"
    )
    declared = config(tmp_path, "", name=name, extra="    format: csv\n")
    assert cli("plan", "--config", declared).exit_code == 0


def test_missing_and_duplicate_ids_are_rejected(cli, tmp_path: Path):
    write(tmp_path / "crm.csv", CRM + "1,A,B,a@x.com,1\n,C,D,c@x.com,2\n1,E,F,e@x.com,3\n")
    out = tmp_path / "out"
    assert cli("unify", "--config", config(tmp_path, ""), "--out", out, "-q").exit_code == 0
    reasons = sorted(r[3] for r in rejects(out))
    assert reasons == [
        "duplicate id 1 (first at row 1) in contact_id",
        "missing id in contact_id",
    ]


def test_a_row_of_no_value_is_rejected_as_empty(cli, tmp_path: Path):
    """A spreadsheet's blank line saved as `,,,,` was a customer of nothing, and without a
    config it made the id column look incomplete: every row was named by its number."""
    write(tmp_path / "crm.csv", CRM + "1,A,B,a@x.com,1\n,,,,\n7,,,,\n2,C,D,c@x.com,2\n")
    out = tmp_path / "out"
    assert cli("unify", "--config", config(tmp_path, ""), "--out", out, "-q").exit_code == 0
    assert [r[3] for r in rejects(out)] == ["empty row: no mapped column holds a value"]
    ids = f"SELECT source_record_id FROM '{out}/identity_map.parquet' ORDER BY 1"
    assert duckdb.sql(ids).fetchall() == [("1",), ("2",), ("7",)]  # an id alone: a contact
    result = cli("unify", "--crm", tmp_path / "crm.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert [r[3] for r in rejects(out)] == ["empty row: no mapped column holds a value"]
    assert duckdb.sql(ids).fetchall() == [("1",), ("2",), ("7",)]


def test_a_total_row_under_the_data_is_rejected_not_a_customer(cli, tmp_path: Path):
    """A report's `Total` row, naming nobody, was a customer holding every order's revenue:
    summed over profiles, revenue came out twice what was sold."""
    write(
        tmp_path / "orders.csv",
        "order_id,customer_email,order_date,category,amount\n"
        "O1,ann@x.com,2024-01-02,Total Gym,10.00\nO2,bob@y.com,2024-01-03,,20.00\n"
        "O3,,2024-01-04,,5.00\n"  # an order naming nobody: a customer of its own
        "Total,,,,35.00\n,,Grand Total:,,35.00\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--transactions", tmp_path / "orders.csv", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert [r[3] for r in rejects(out)] == [
        "summary row: 'Total' and no one named",
        "summary row: 'Grand Total:' and no one named",
    ]
    revenue = f"SELECT email, revenue FROM '{out}/profiles.parquet' ORDER BY revenue"
    assert duckdb.sql(revenue).fetchall() == [(None, 5.0), ("ann@x.com", 10.0), ("bob@y.com", 20.0)]


@pytest.mark.parametrize(
    ("cell", "summary"),
    [("Total", True), ("TOTALS:", True), ("Total: 10 contacts", True), ("Subtotal (3)", True),
     ("sub-total", True), ("grand total", True), ("Summe", True), ("Gesamt:", True),
     ("Totally", False), ("TotalEnergies", False), ("T-100", False), ("Sumner", False)],
)  # fmt: skip
def test_what_reads_as_a_summary_label(cell, summary):
    from cxunify.ingest import SUMMARY_LABEL

    with duckdb.connect() as con:
        found = con.execute(
            "SELECT regexp_full_match(lower(trim($cell)), $label)",
            {"cell": cell, "label": SUMMARY_LABEL},
        ).fetchall()
    assert found == [(summary,)]


def test_glob_reads_every_file_and_ndjson_bad_lines_are_rejected(cli, tmp_path: Path):
    write(tmp_path / "s" / "a.ndjson", '{"handle": "@ann", "name": "Ann Lee"}\n{"handle": \n')
    write(tmp_path / "s" / "b.ndjson", '{"handle": "bob", "name": "Bob Ray"}\n\n[1, 2]\n')
    cfg = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - name: social\n    kind: social\n    path: s/*.ndjson\n    id: handle\n"
        "    columns:\n      handle: handle\n      full_name: name\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", cfg, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert [(r[2], r[3], r[4]) for r in rejects(out)] == [
        (2, "invalid JSON", '{"handle": '),
        (3, "not a JSON object", "[1, 2]"),
    ]
    handles = duckdb.sql(f"SELECT handles FROM '{out}/profiles.parquet' ORDER BY 1").fetchall()
    assert handles == [(["ann"],), (["bob"],)]


def test_a_json_key_no_object_of_a_file_holds_is_missing_not_an_error(cli, tmp_path: Path):
    """NDJSON has no header, and exporters leave out a null key: a day's file whose few
    objects have no email stopped the run (and a nightly update) with 'column not found'.
    A key that looks like a misspelling of one the file holds is still an error."""
    write(tmp_path / "s" / "a.ndjson", '{"handle": "ann", "email": "ann.lee@fastmail.com"}\n')
    write(tmp_path / "s" / "b.ndjson", '{"handle": "bob", "name": "Bob Ray"}\n')
    body = (
        "sources:\n  - name: social\n    kind: social\n    path: s/*.ndjson\n    id: handle\n"
        "    columns:\n      handle: handle\n      email: {key}\n"
    )
    cfg = write(tmp_path / "cfg.yaml", body.format(key="email"))
    out = tmp_path / "out"
    result = cli("unify", "--config", cfg, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    emails = duckdb.sql(f"SELECT handle, email FROM '{out}/records.parquet' ORDER BY 1").fetchall()
    assert emails == [("ann", "ann.lee@fastmail.com"), ("bob", None)]
    write(tmp_path / "cfg.yaml", body.format(key="emial"))
    result = cli("unify", "--config", cfg, "--out", out, "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 's' / 'a.ndjson'}: sources[0].columns.email: column 'emial' not "
        "found in a.ndjson; did you mean 'email'?\n"
    )


@pytest.mark.parametrize("fmt", ["parquet", "json", "tsv"])
def test_other_formats(cli, tmp_path: Path, fmt: str):
    rows = [
        {
            "contact_id": "1",
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "a@x.com",
            "phone": "5550100001",
        }
    ]
    path = tmp_path / f"crm.{fmt}"
    if fmt == "parquet":
        duckdb.sql(
            "SELECT '1' contact_id, 'Ann' first_name, 'Lee' last_name, 'a@x.com' email, "
            "'5550100001' phone"
        ).write_parquet(str(path))
    elif fmt == "json":
        write(path, json.dumps(rows))
    else:
        write(path, "\t".join(rows[0]) + "\n" + "\t".join(rows[0].values()) + "\n")
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, "", name=path.name), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    got = duckdb.sql(f"SELECT first_name, email, phone FROM '{out}/profiles.parquet'").fetchall()
    assert got == [("Ann", "a@x.com", "+15550100001")]


def test_a_folder_named_like_a_partition_is_not_a_column(cli, tmp_path: Path):
    """DuckDB would read exports/country=DE/ as a column country = DE, replacing the file's."""
    folder = tmp_path / "country=DE"
    folder.mkdir()
    write(folder / "crm.csv", "contact_id,email,country\nC1,ann.lee@fastmail.com,FR\n")
    write(folder / "social.ndjson", '{"handle": "bob_ng", "email": "bob.ng@fastmail.com"}\n')
    out = tmp_path / "out"
    result = cli("unify", "--crm", folder / "crm.csv", "--social", folder / "social.ndjson",
                 "--out", out, "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(f"SELECT source, country FROM '{out}/records.parquet' ORDER BY 1").fetchall()
    assert rows == [("crm", "FR"), ("social", None)]


def test_control_characters_reach_no_name_email_or_address(cli, tmp_path: Path):
    """A NUL or a bell in a legacy export's name reached the golden first_name ('An\\x00n');
    a tab or a line break in a name or an address is a space."""
    write(
        tmp_path / "crm.csv",
        "contact_id,first_name,last_name,email,phone,city\n"
        '1,An\x00n,"Lee\x07\x7f",\x1bann@x.com\t,+1 212 555\x000199,"San\r\nJose\x85"\n',
    )
    out = tmp_path / "out"
    body = config(tmp_path, "").read_text() + "      city: city\n"
    result = cli("unify", "--config", write(tmp_path / "cfg.yaml", body), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    got = duckdb.sql(
        f"SELECT first_name, last_name, email, phone, city FROM '{out}/records.parquet'"
    )
    assert got.fetchall() == [("Ann", "Lee", "ann@x.com", "+12125550199", "San Jose")]


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_no_controls_leaves_no_control_character_and_nothing_else_changed(value: str):
    import unicodedata

    from cxunify.standardize.text import no_controls

    with duckdb.connect() as con:
        got = con.execute(f"SELECT {no_controls('$v')}", {"v": value}).fetchall()[0][0]
    assert not any(unicodedata.category(c) == "Cc" for c in got)
    if not any(unicodedata.category(c) == "Cc" for c in value):
        assert got == value


CITY_CSV = 'id,name,email,city\n1,Ann Lee,ann@x.com,"Paris, TX"\n2,Bob Ray,bob@x.com,Austin\n'


def _read(cli, tmp_path: Path, path: Path) -> tuple[list[tuple], list[tuple]]:
    """Run the file as a CRM export; return (id, first_name, city) per record, and rejects."""
    out = tmp_path / "out"
    result = cli("unify", "--crm", path, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    records = duckdb.sql(
        f"SELECT source_record_id, first_name, city FROM '{out}/records.parquet' ORDER BY 1"
    ).fetchall()
    return records, [(line, reason) for _, _, line, reason, _ in rejects(out)]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet", "xlsx"])
def test_a_column_named_like_the_row_number_column_is_an_ordinary_column(
    cli, tmp_path: Path, fmt: str
):
    """Each file gets a row-number column while it is read; a file's own column of that
    name (any case) must neither replace it nor be lost. Without an id column the row number
    is the record id, so the ids show which one was used."""
    header = ["CX_ROW", "cx_row_1", "first_name", "email", "file_row_number"]
    rows = [["x", "y", "Ann", "ann.lee@fastmail.com", "z"],
            ["x", "y", "Bob", "bob.ng@fastmail.com", "z"]]  # fmt: skip
    path = tmp_path / f"crm.{fmt}"
    if fmt == "csv":
        write(path, "\n".join(",".join(r) for r in [header, *rows]) + "\n")
    elif fmt == "ndjson":
        write(path, "".join(json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in rows))
    elif fmt == "parquet":
        columns = ", ".join(f"col{i} AS {n}" for i, n in enumerate(header))
        values = ", ".join(str(tuple(r)) for r in rows)
        duckdb.sql(f"COPY (SELECT {columns} FROM (VALUES {values})) TO '{path}'")
    else:
        import xlsxwriter

        with xlsxwriter.Workbook(path) as book:
            sheet = book.add_worksheet()
            for i, row in enumerate([header, *rows]):
                sheet.write_row(i, 0, row)
    records, _ = _read(cli, tmp_path, path)
    assert [(record_id, first_name) for record_id, first_name, _ in records] == [
        ("1", "Ann"),
        ("2", "Bob"),
    ]


def test_a_badly_quoted_row_is_rejected_alone(cli, tmp_path: Path):
    """DuckDB's dialect detection once chose "no quoting" to fit one stray quote, and every
    row with a quoted comma then went to rejects as too many columns."""
    path = write(
        tmp_path / "crm.csv", CITY_CSV + '3,"Di" Ko,di@x.com,Dallas\n4,Cy Lu,cy@x.com,"Rome, GA"\n'
    )
    records, rejected = _read(cli, tmp_path, path)
    assert records == [("1", "Ann", "Paris, TX"), ("2", "Bob", "Austin"), ("4", "Cy", "Rome, GA")]
    assert rejected == [(4, "unparseable CSV row: unquoted value")]


def test_mixed_line_endings_and_a_row_with_an_extra_field(cli, tmp_path: Path):
    """Files joined from two systems: CR LF lines and LF lines in one file, and a row with
    a field too many. The odd row is rejected with its line; the file is read."""
    text = (
        CITY_CSV.replace("\n", "\r\n")
        + "3,Cy Lu,cy@x.com,Rome\n"
        + "4,Di Ko,di@x.com,Oslo,extra\r\n"
    )
    path = tmp_path / "crm.csv"
    path.write_bytes(text.encode())
    records, rejected = _read(cli, tmp_path, path)
    assert records == [("1", "Ann", "Paris, TX"), ("2", "Bob", "Austin"), ("3", "Cy", "Rome")]
    assert rejected == [(5, "unparseable CSV row: too many columns")]


def test_the_delimiter_is_the_one_the_rows_agree_with(cli, tmp_path: Path):
    """Told by the header alone, `Marketing consent (email; sms; phone; post)` made a comma
    file `;`-separated: 'column email not found', or without a config every row unread."""
    path = write(
        tmp_path / "crm.csv",
        "id,name,Marketing consent (email; sms; phone; post; mail),city\n"
        "1,Ann Lee,yes,Paris\n2,Bob Ray,no,Austin\n",
    )
    records, rejected = _read(cli, tmp_path, path)
    assert records == [("1", "Ann", "Paris"), ("2", "Bob", "Austin")] and rejected == []


def test_a_stray_cr_in_a_file_of_lf_lines_is_a_line_break(cli, tmp_path: Path):
    """One lone CR stopped the whole file: `cannot read as CSV: ... The CSV Parser state
    machine reached an invalid state`. A row ending in it is read; a row a CR typed into a
    field splits is two rows, the broken part rejected with its line."""
    path = tmp_path / "crm.csv"
    path.write_bytes((CITY_CSV + "3,Cy Lu,cy@x.com,Rome\r4,Di Ko,di@x.com,Os\rlo\n").encode())
    records, rejected = _read(cli, tmp_path, path)
    assert records == [
        ("1", "Ann", "Paris, TX"), ("2", "Bob", "Austin"), ("3", "Cy", "Rome"), ("4", "Di", "Os"),
    ]  # fmt: skip
    assert rejected == [(6, "unparseable CSV row: missing columns")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_rejects_name_their_line_in_the_file_after_a_quoted_line_break(
    cli, tmp_path: Path, newline: str
):
    """DuckDB counts records: a rejected row after a value holding a line break was named
    by its record number, a line too soon (and so was a stray quote's)."""
    text = (
        "\n" + CITY_CSV.replace("Ann Lee", '"Ann\nLee"')
        + "3,Cy Lu,cy@x.com,Rome,extra\n"
        + '4,"Di,di@x.com,Oslo\n'
        + "5,Ed Ko,ed@x.com,Lima\n"
    )  # fmt: skip
    path = tmp_path / "crm.csv"
    path.write_bytes(text.replace("\n", newline).encode())
    records, rejected = _read(cli, tmp_path, path)
    assert [record_id for record_id, _, _ in records] == ["1", "2", "5"]
    assert rejected == [
        (6, "unparseable CSV row: too many columns"),
        (7, "unparseable CSV row: a quote that is not closed on its line"),
    ]


@pytest.mark.parametrize("ending", ["", ","])
def test_a_header_ending_in_a_delimiter_reads_rows_with_or_without_the_empty_field(
    cli, tmp_path: Path, ending: str
):
    """`id,name,email,city,` over rows without the last, empty field: every row was rejected
    as missing columns. A row two fields short is still rejected."""
    header, rows = CITY_CSV.split("\n", 1)
    rows = rows.replace("\n", ending + "\n")
    path = write(tmp_path / "crm.csv", header + ",\n" + rows + "3,Cy Lu\n")
    records, rejected = _read(cli, tmp_path, path)
    assert records == [("1", "Ann", "Paris, TX"), ("2", "Bob", "Austin")]
    assert rejected == [(4, "unparseable CSV row: missing columns")]


def test_the_delimiter_is_the_one_that_splits_the_header(cli, tmp_path: Path):
    path = write(tmp_path / "crm.csv", 'id;name;email;city\n1;Ann Lee;ann@x.com;"Paris; TX"\n')
    assert _read(cli, tmp_path, path) == ([("1", "Ann", "Paris; TX")], [])


# A lone CR inside a quoted value is left out: DuckDB takes it for a line end.
csv_text = st.text(alphabet="aZé ,;\"'\n\t|", max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(csv_text, csv_text, csv_text), max_size=6), crlf=st.booleans())
def test_any_table_the_csv_module_writes_reads_back_as_written(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str]], crlf: bool
):
    """Whatever the values hold (delimiters, quotes, line breaks), a file written by a
    standard CSV writer reads back value for value (an empty field is NULL)."""
    import csv as csv_module

    from cxunify.engine import DuckDBEngine
    from cxunify.ingest import create_tables, load_raw

    path = tmp_path_factory.mktemp("csv") / "t.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv_module.writer(handle, lineterminator="\r\n" if crlf else "\n")
        writer.writerows([("a", "b", "c"), *rows])
    engine = DuckDBEngine()
    create_tables(engine)
    raw = load_raw(engine, path, path, "csv", None, "cx_raw", "s", work_dir=path.parent / "work")
    got = engine.rows(f"SELECT a, b, c FROM cx_raw ORDER BY {raw.row}")
    engine.close()
    assert raw.rejected == 0 and raw.columns == ["a", "b", "c"]
    assert got == [tuple(v if v != "" else None for v in row) for row in rows]


def test_gzipped_exports_read_as_their_plain_files(cli, tmp_path: Path):
    import gzip

    plain = CITY_CSV.replace("Paris, TX", "Paris, TX café")
    path = tmp_path / "crm.csv.gz"
    path.write_bytes(gzip.compress(plain.encode("cp1252")))  # and not UTF-8, for good measure
    records, rejected = _read(cli, tmp_path, path)
    assert records == [("1", "Ann", "Paris, TX café"), ("2", "Bob", "Austin")]
    assert rejected == []
    path.write_bytes(gzip.compress(plain.encode())[:-12])
    result = cli("unify", "--crm", path, "--out", tmp_path / "out2", "-q")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}: not a readable gzip file (")


def test_a_repeated_header_line_is_rejected_as_one(cli, tmp_path: Path):
    """Exports joined with `cat a.csv b.csv` repeat the header: not a record with id
    'contact_id' (nor a duplicate id), but a header line, rejected as such."""
    body = CRM + "C1,Ann,Lee,ann@x.com,\n" + CRM + "C2,Bob,Ray,bob@x.com,\n"
    write(tmp_path / "crm.csv", body)
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, ""), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert [(reason, json.loads(raw)["source_record_id"]) for *_, reason, raw in rejects(out)] == [
        ("a repeated header line (its id is the id column's name)", "contact_id")
    ]
    ids = duckdb.sql(f"SELECT source_record_id FROM '{out}/records.parquet' ORDER BY 1")
    assert ids.fetchall() == [("C1",), ("C2",)]


def test_a_quote_never_closed_swallows_no_rows(cli, tmp_path: Path):
    """A quote opened and not closed made the rest of the file (or all up to the next stray
    quote) one field: a single reject holding hundreds of good rows. Only the line with the
    stray quote is rejected; a quoted line break elsewhere stays one field."""
    rows = [f"{i},Name{i} Lee,n{i}@x.com,City{i}" for i in range(1, 301)]
    rows[1] = '2,"Bob Ray,bob@x.com,Austin'
    rows[99] = '100,"Zed Ko,z@x.com,Oslo'
    rows[199] = '200,"Two\nLines",t@x.com,"Rome, GA"'
    rows[-1] = '300,"Last,l@x.com,Lima'
    path = write(tmp_path / "crm.csv", "id,name,email,city\n" + "\n".join(rows) + "\n")
    records, rejected = _read(cli, tmp_path, path)
    assert len(records) == 297
    assert [city for id_, _, city in records if id_ == "200"] == ["Rome, GA"]
    reason = "unparseable CSV row: a quote that is not closed on its line"
    assert rejected == [(3, reason), (101, reason), (302, reason)]  # row 200 has 2 lines
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert (run["counts"]["rows_in"], run["counts"]["rows_rejected"]) == (300, 3)


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_a_file_of_cr_lf_or_cr_lines_rejects_its_bad_rows_alone_and_as_written(
    cli, tmp_path: Path, ending: str
):
    """Windows exports end lines in CR LF, where DuckDB starts a bad row's text at the LF
    before it: a stray quote was not seen (the row's 'first line' was that LF), so it
    swallowed every row after it, and a rejected row's raw text began with a line break,
    which `update --delete` could not read its id from (the row stayed in rejects). In a
    file of CR lines (an old Mac's) a stray quote was not looked for at all (rows were
    taken to span lines only with an LF in them)."""
    lines = [
        "id,name,email,city",
        '1,Ann Lee,ann@x.com,"Paris, TX"',
        "2,Bob Ray,bob@x.com,Austin,EXTRA",
        '3,"Cy Ng,cy@x.com,Oslo',
        "4,Di Ko,di@x.com,Lima",
        "5,Ed Wu,ed@x.com,Rome",
    ]
    path = write(tmp_path / "crm.csv", ending.join(lines) + ending)
    records, _ = _read(cli, tmp_path, path)
    assert [r[0] for r in records] == ["1", "4", "5"]
    assert [(line, raw) for _, _, line, _, raw in rejects(tmp_path / "out")] == [
        (3, "2,Bob Ray,bob@x.com,Austin,EXTRA"),
        (4, '3,"Cy Ng,cy@x.com,Oslo'),
    ]


def test_an_excel_sep_line_names_the_delimiter_and_is_not_the_header(cli, tmp_path: Path):
    """Exporters for Excel write `sep=;` above the header; it was read as the header (one
    column, 'sep='), so no row could be read."""
    lines = ["sep=;", "id;name;email;city", "1;Ann Lee;ann@x.com;Paris, TX", "2;Bob;b@x.com;A;B"]
    path = write(tmp_path / "crm.csv", "\r\n".join(lines) + "\r\n")
    records, rejected = _read(cli, tmp_path, path)
    assert records == [("1", "Ann", "Paris, TX")]
    assert rejected == [(4, "unparseable CSV row: too many columns")]


def test_blank_lines_before_the_header_are_skipped(cli, tmp_path: Path):
    """Some exporters start with an empty line; rejects keep the file's own line numbers."""
    path = write(
        tmp_path / "crm.csv", "\n\n" + CITY_CSV + '3,"Cy Lu,cy@x.com,Rome\n4,Di,d@x.com,Oslo\n'
    )
    records, rejected = _read(cli, tmp_path, path)
    assert [r[0] for r in records] == ["1", "2", "4"]
    assert rejected == [(6, "unparseable CSV row: a quote that is not closed on its line")]


def test_backslash_escaped_quotes_are_read_with_the_sources_escape(cli, tmp_path: Path):
    """`"say \\"hi\\""` broke the RFC 4180 dialect (its row went to rejects); with
    `escape: "\\\\"` it is one value. A quote left open after an escaped one still rejects
    its own line only."""
    write(
        tmp_path / "crm.csv",
        CRM + '1,"Ann \\"Nan\\"",Lee,ann@x.com,\n2,"Bo \\"B,Ray,bob@x.com,\n3,Cy,Ng,cy@x.com,\n',
    )
    out = tmp_path / "out"
    cfg = config(tmp_path, "", extra='    escape: "\\\\"\n')
    result = cli("unify", "--config", cfg, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    names = duckdb.sql(
        f"SELECT source_record_id, first_name FROM '{out}/records.parquet' ORDER BY 1"
    )
    assert names.fetchall() == [("1", 'Ann "Nan"'), ("3", "Cy")]
    assert [(line, reason) for _, _, line, reason, _ in rejects(out)] == [
        (3, "unparseable CSV row: a quote that is not closed on its line")
    ]


def test_a_source_quoted_with_single_quotes(cli, tmp_path: Path):
    """The quote character is the source's, in reading and in finding stray quotes."""
    write(
        tmp_path / "crm.csv",
        CRM + "1,'Lee, Ann',Lee,ann@x.com,\n2,'Bob,Ray,bob@x.com,\n3,'O''Neil',Ng,cy@x.com,\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, "", extra="    quote: \"'\"\n"),
                 "--out", out, "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    names = duckdb.sql(
        f"SELECT source_record_id, first_name FROM '{out}/records.parquet' ORDER BY 1"
    )
    assert names.fetchall() == [("1", "Lee, Ann"), ("3", "O'Neil")]
    assert [(line, reason) for _, _, line, reason, _ in rejects(out)] == [
        (3, "unparseable CSV row: a quote that is not closed on its line")
    ]


@pytest.mark.parametrize("blank_lines", [0, 2])
def test_a_quote_left_open_in_the_header_is_a_one_line_error(cli, tmp_path: Path, blank_lines: int):
    """It made the whole file the header: every mapped column 'not found', or, without a
    config, 'no data rows to infer a mapping from'."""
    data = write(
        tmp_path / "crm.csv",
        "\n" * blank_lines + 'contact_id,"first_name,last_name,email,phone\n1,A,B,a@x.com,1\n',
    )
    message = (
        f'Error: {data}:{blank_lines + 1}: the header line opens a quote (") and does not '
        "close it; close it or remove it\n"
    )
    result = cli("unify", "--config", config(tmp_path, ""), "--out", tmp_path / "out", "-q")
    assert (result.exit_code, result.stderr) == (1, message)
    result = cli("unify", "--crm", data, "--out", tmp_path / "out", "-q")
    assert (result.exit_code, result.stderr) == (1, message)


def test_a_stray_quote_early_in_the_file_leaves_rows_to_infer_from(cli, tmp_path: Path):
    """The zero-config sample was read without stray-quote recovery: a quote left open on
    line 2 made the sample one reject, and inference had 'no data rows'."""
    path = write(
        tmp_path / "crm.csv",
        'id,name,email,city\n1,"Ann Lee,ann@x.com,Paris\n2,Bob Ray,bob@x.com,Austin\n'
        "3,Cy Lu,cy@x.com,Rome\n",
    )
    records, rejected = _read(cli, tmp_path, path)
    assert records == [("2", "Bob", "Austin"), ("3", "Cy", "Rome")]
    assert rejected == [(2, "unparseable CSV row: a quote that is not closed on its line")]
    result = cli("init", "--crm", path)
    assert result.exit_code == 0, result.stderr
    assert "email: email" in result.stdout and "id: id" in result.stdout


def test_a_copy_with_one_line_ending_is_made_in_the_runs_work_folder(
    cli, tmp_path: Path, monkeypatch
):
    """Not in the system's temp folder: a copy as large as the export lands beside the run
    (on the disk given to it) and goes with it."""
    from cxunify import ingest

    targets: list[Path] = []

    def one_line_ending(source: Path, target: Path) -> Path:
        targets.append(target)
        return real(source, target)

    real = ingest._one_line_ending
    monkeypatch.setattr(ingest, "_one_line_ending", one_line_ending)
    (tmp_path / "crm.csv").write_bytes((CRM + "1,A,B,a@x.com,1\r\n2,C,D,c@x.com,2\n").encode())
    out = tmp_path / "out"
    result = cli("unify", "--config", config(tmp_path, ""), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert len(targets) == 1
    assert targets[0].relative_to(tmp_path).parts[0].startswith(".out.tmp-")
    assert not targets[0].exists()
    assert json.loads((out / "run.json").read_text())["counts"]["rows_mapped"] == 2


def _social_config(tmp_path: Path, name: str) -> Path:
    return write(
        tmp_path / "cfg.yaml",
        f"sources:\n  - name: social\n    kind: social\n    path: {name}\n    id: handle\n"
        "    columns:\n      handle: handle\n",
    )


def test_a_json_export_cut_short_is_a_one_line_error(cli, tmp_path: Path):
    data = write(tmp_path / "s.json", '[{"handle": "ann"},\n {"handle": "bob"},\n {"hand')
    result = cli("unify", "--config", _social_config(tmp_path, "s.json"), "--out",
                 tmp_path / "out", "-q")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}: not valid JSON (unexpected end of data: is the file cut short?)\n"
    )


@pytest.mark.parametrize("document", ["[1, 2]", '[["ann"], ["bob"]]', "null\n"])
def test_a_json_document_without_objects_says_what_a_json_export_holds(
    cli, tmp_path: Path, document: str
):
    """It was told NDJSON holds one object per line, and to set format: json, its format."""
    data = write(tmp_path / "s.json", document)
    result = cli("unify", "--config", _social_config(tmp_path, "s.json"), "--out",
                 tmp_path / "out", "-q")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}: no value of it is a JSON object; a JSON export holds an array of "
        "objects (or one object per line), one per record\n"
    )


@pytest.mark.parametrize("indent", [None, 2])
def test_records_wrapped_in_one_json_object_are_a_one_line_error_naming_the_key(
    cli, tmp_path: Path, indent: int | None
):
    """{"data": [{...}, {...}]} was read as one record without an id: 0 profiles, one
    'missing id' reject, and no word of why. (On one line it is read as NDJSON.)"""
    records = [{"handle": "ann"}, {"handle": "bob"}]
    data = write(tmp_path / "s.json", json.dumps({"total": 2, "data": records}, indent=indent))
    result = cli("unify", "--config", _social_config(tmp_path, "s.json"), "--out",
                 tmp_path / "out", "-q")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}: one JSON object holding the records under key 'data' (an array of 2 "
        "objects); a JSON export holds the array of records itself (or one object per line): "
        "export that, or extract it (e.g. jq '.data')\n"
    )
    # Without a config: `total` read as an amount made it one record of no one, exit 0.
    result = cli("unify", "--social", data, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert "one JSON object holding the records under key 'data'" in result.stderr


def test_one_json_record_holding_an_array_of_objects_is_a_record(cli, tmp_path: Path):
    write(tmp_path / "s.json", json.dumps({"handle": "ann", "posts": [{"id": 1}]}))
    out = tmp_path / "out"
    result = cli("unify", "--config", _social_config(tmp_path, "s.json"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    handles = duckdb.sql(f"SELECT source_record_id FROM '{out}/records.parquet'")
    assert handles.fetchall() == [("ann",)]
    result = cli("unify", "--social", tmp_path / "s.json", "--out", tmp_path / "o2", "-q")
    assert result.exit_code == 0, result.stderr
    handles = duckdb.sql(f"SELECT handle FROM '{tmp_path}/o2/records.parquet'")
    assert handles.fetchall() == [("ann",)]


def test_a_json_array_or_object_in_a_mapped_key_is_its_one_value_or_a_reject(cli, tmp_path: Path):
    """An "email": ["a@x.com"] became no email, without a word: an array of one value is
    that value ([] none), and a record holding more in a mapped key is rejected, naming it.
    Unmapped keys hold what they like."""
    lines = [
        {"handle": "ann", "email": ["ann@x.com"], "tags": [1, 2]},
        {"handle": "bob", "email": ["bob@x.com", "b2@x.com"]},
        {"handle": ["cy"], "email": [], "name": {"first": "Cy"}},
        {"handle": "di", "email": "di@x.com"},
    ]
    write(tmp_path / "s.ndjson", "".join(json.dumps(line) + "\n" for line in lines))
    write(
        tmp_path / "cfg.yaml",
        "sources:\n  - name: social\n    kind: social\n    path: s.ndjson\n    id: handle\n"
        "    columns:\n      handle: handle\n      email: email\n      first_name: name\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", tmp_path / "cfg.yaml", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    reason = "not one value (a JSON array or object) in "
    assert [(line, why) for _, _, line, why, _ in rejects(out)] == [
        (2, reason + "email"),
        (3, reason + "name"),
    ]
    emails = duckdb.sql(f"SELECT source_record_id, email FROM '{out}/records.parquet' ORDER BY 1")
    assert emails.fetchall() == [("ann", "ann@x.com"), ("di", "di@x.com")]
    counts = json.loads((out / "run.json").read_text())["counts"]
    assert (counts["rows_in"], counts["rows_rejected"], counts["balanced"]) == (4, 2, True)


def test_a_json_export_of_one_object_per_line_rejects_its_broken_line(cli, tmp_path: Path):
    """A .json file written a line per record was one document to DuckDB: a last line cut
    short failed the whole file; it is read as NDJSON, the broken line rejected."""
    write(tmp_path / "s.json", '{"handle": "ann"}\n{"handle": "bob"}\n{"hand')
    out = tmp_path / "out"
    result = cli("unify", "--config", _social_config(tmp_path, "s.json"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert [(line, reason, raw) for _, _, line, reason, raw in rejects(out)] == [
        (3, "invalid JSON", '{"hand')
    ]
    handles = duckdb.sql(f"SELECT source_record_id FROM '{out}/records.parquet' ORDER BY 1")
    assert handles.fetchall() == [("ann",), ("bob",)]


def test_an_ndjson_file_without_one_object_is_a_one_line_error(cli, tmp_path: Path):
    """A pretty-printed JSON document named .ndjson had no line that is an object, so no
    columns: the error was 'column 'handle' not found'."""
    data = write(tmp_path / "s.ndjson", '[\n  {\n    "handle": "ann"\n  }\n]\n')
    result = cli("unify", "--config", _social_config(tmp_path, "s.ndjson"), "--out",
                 tmp_path / "out", "-q")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}:1: not valid JSON, and no line of the file is a JSON object; NDJSON "
        "holds one object per line (one JSON document: set format: json)\n"
    )


def test_a_column_repeated_in_the_header_is_an_error_only_when_mapped(cli, tmp_path: Path):
    """`email,...,email`: the mapping read the first copy, silently. Mapping it names the
    file and the column; a repeated column the mapping does not use is no matter."""
    data = write(
        tmp_path / "crm.csv",
        "contact_id,first_name,last_name,email,phone,email\n1,A,B,a@x.com,1,b@x.com\n",
    )
    result = cli("unify", "--config", config(tmp_path, ""), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {data}: sources[0].columns.email: the header of crm.csv repeats column "
        "'email'; rename the copies in the file, or map 'email_1' for the second\n"
    )
    cfg = config(tmp_path, "")
    cfg.write_text(cfg.read_text().replace("email: email", "email: email_1"))
    out = tmp_path / "out"
    result = cli("unify", "--config", cfg, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    emails = duckdb.sql(f"SELECT email FROM '{out}/records.parquet'").fetchall()
    assert emails == [("b@x.com",)]


def _ingested_ids(tmp_path: Path, name: str) -> tuple[list[str], list[str]]:
    """The ids `name` (a file in tmp_path with columns contact_id and email) is read with,
    and the reasons of its rows rejected for their id: ingest alone, no full run."""
    from cxunify.config import validate_config
    from cxunify.engine import DuckDBEngine
    from cxunify.ingest import ingest

    source = {"name": "crm", "kind": "crm", "path": name, "id": "contact_id"}
    raw = {"sources": [{**source, "columns": {"email": "email"}}]}
    engine = DuckDBEngine()
    try:
        ingest(engine, validate_config(raw, origin="t.yaml", base_dir=tmp_path), tmp_path / "w")
        ids = [i for (i,) in engine.rows("SELECT source_record_id FROM cx_mapped ORDER BY 1")]
        reasons = [r for (r,) in engine.rows("SELECT reason FROM cx_rejects ORDER BY 1")]
    finally:
        engine.close()
    return ids, reasons


def test_an_id_loses_any_whitespace_at_its_ends_not_only_spaces(tmp_path: Path):
    """A tab, a carriage return or a no-break space an exporter left at an id's end made it
    another id: the same record in two nights' exports had two identities, and --delete
    could not find it."""
    write(
        tmp_path / "crm.csv",
        'contact_id,email\nC1,a@x.com\n\tC1,b@x.com\n"C2\r",c@x.com\n\u200bC3\u00a0 ,d@x.com\n'
        "\u3000\t,e@x.com\nC 4\t,f@x.com\n",
    )
    ids, reasons = _ingested_ids(tmp_path, "crm.csv")
    assert ids == ["C 4", "C1", "C2", "C3"]  # (inside an id, a space stays)
    assert reasons == ["duplicate id C1 (first at row 1) in contact_id", "missing id in contact_id"]


def test_an_apostrophe_that_keeps_a_number_text_is_no_part_of_the_id(tmp_path: Path):
    """Shopify writes '7284919287000 so that a spreadsheet keeps the id text; the id is
    7284919287000, as its admin, an erasure request or `explain` name it. An apostrophe
    before anything else is part of the id."""
    write(tmp_path / "crm.csv", "contact_id,email\n'7284919287000,a@x.com\n'C1,b@x.com\n")
    ids, reasons = _ingested_ids(tmp_path, "crm.csv")
    assert ids == ["'C1", "7284919287000"] and reasons == []


def test_a_whole_number_id_held_as_a_float_reads_as_its_digits(tmp_path: Path):
    """A Parquet DOUBLE id 1.0 was the id '1.0' and a JSON 1e20 '100000000000000000000.0',
    where the same export as CSV or a workbook gives 1: another identity. A fraction stays,
    and text stays as written (a CSV's 1.0, a JSON string "8.0")."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq
    import xlsxwriter

    columns = {
        "contact_id": pa.array([1.0, 1.5, 1e20, -0.0, 2.0**60, None], pa.float64()),
        "email": pa.array(["a", "b", "c", "d", "e", "f"]),
    }
    pq.write_table(pa.table(columns), tmp_path / "double.parquet")
    for name, ids in (
        ("float.parquet", pa.array([3.0, 3.1], pa.float32())),
        ("decimal.parquet", pa.array([Decimal("2.00"), Decimal("2.50")], pa.decimal128(10, 2))),
    ):
        pq.write_table(pa.table({"contact_id": ids, "email": ["a", "b"]}), tmp_path / name)
    write(
        tmp_path / "crm.ndjson",
        '{"contact_id": 1.0, "email": "a"}\n{"contact_id": 1.5, "email": "b"}\n'
        '{"contact_id": 1e20, "email": "c"}\n{"contact_id": [7.0], "email": "d"}\n'
        '{"contact_id": "8.0", "email": "e"}\n{"contact_id": 12, "email": "f"}\n',
    )
    write(tmp_path / "crm.csv", "contact_id,email\n1.0,a\n1,b\n")
    book = xlsxwriter.Workbook(str(tmp_path / "crm.xlsx"))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["contact_id", "email"])
    for row, value in enumerate([1.0, 1.5, 1e20], start=1):
        sheet.write_number(row, 0, value)
        sheet.write_string(row, 1, "a")
    book.close()
    whole = ["1", "1.5", "100000000000000000000"]
    assert _ingested_ids(tmp_path, "double.parquet") == (
        ["0", *whole, "1152921504606847000"],  # (2**60: the shortest text of the double)
        ["missing id in contact_id"],
    )
    assert _ingested_ids(tmp_path, "float.parquet") == (["3", "3.1"], [])
    assert _ingested_ids(tmp_path, "decimal.parquet") == (["2", "2.50"], [])
    assert _ingested_ids(tmp_path, "crm.ndjson") == ([*whole, "12", "7", "8.0"], [])
    assert _ingested_ids(tmp_path, "crm.csv") == (["1", "1.0"], [])
    assert _ingested_ids(tmp_path, "crm.xlsx") == (whole, [])


def test_lines_of_an_order_without_the_id_its_first_row_holds_are_named_in_a_warning(
    tmp_path: Path,
):
    """Shopify's Id is on an order's first row only: as the id, it rejected the order's
    other lines as `missing id`, unexplained; rows of no order read elsewhere (a first row
    without its id) are rejected without the warning."""
    from cxunify.config import validate_config
    from cxunify.engine import DuckDBEngine
    from cxunify.ingest import ingest

    write(
        tmp_path / "orders.csv",
        "Name,Email,Total,Id\n#1001,a@x.com,46.34,561\n#1001,a@x.com,,\n#1002,b@x.com,9.00,\n",
    )
    columns = {"order_id": "Name", "email": "Email", "amount": "Total"}
    source = {"name": "shop", "kind": "transactions", "path": "orders.csv", "id": "Id"}
    raw = {"sources": [{**source, "columns": columns}]}
    config = validate_config(raw, origin="t.yaml", base_dir=tmp_path)
    engine = DuckDBEngine()
    try:
        ingested = ingest(engine, config, tmp_path / "w")
    finally:
        engine.close()
    assert ingested.rows_rejected == 2
    assert ingested.warnings == [
        "source 'shop': 1 row rejected for its id in 'Id' belongs to orders read from another "
        "row (the first: order '#1001'), as an export of one row per line item writes them; "
        "rows sharing an order_id are one order: to keep these rows, leave `id` out (rows are "
        "then named by their order and their place in it: #1001/2) or set it to a column "
        "unique per row"
    ]


def test_a_line_items_row_takes_the_customer_fields_its_order_names(tmp_path: Path):
    """A line item's row of an order written one row per item names nobody (Shopify writes
    the billing name, phone and address on the order's first row only, its Email on each
    row, a point of sale not even that): such rows of every order were one identity, a
    customer of many orders of no amount. A row keeps a value of its own, and takes none
    its order's rows disagree on."""
    from cxunify.config import validate_config
    from cxunify.engine import DuckDBEngine
    from cxunify.ingest import ingest

    write(
        tmp_path / "orders.csv",
        "Name,Email,Billing Name,Phone\n"
        "#1,a@x.com,Ann Lee,555-0101\n#1,,,\n#1,b@x.com,,\n"
        "#2,c@x.com,Cy Ng,555-0102\n#2,,,\n#3,,Bo Ray,\n",
    )
    columns = {"order_id": "Name", "email": "Email", "full_name": "Billing Name", "phone": "Phone"}
    raw = {"sources": [{"name": "shop", "kind": "transactions", "path": "orders.csv",
                        "columns": columns}]}  # fmt: skip
    engine = DuckDBEngine()
    try:
        ingest(engine, validate_config(raw, origin="t.yaml", base_dir=tmp_path), tmp_path / "w")
        rows = engine.rows(
            "SELECT source_record_id, email, full_name, phone FROM cx_mapped ORDER BY row_number"
        )
    finally:
        engine.close()
    assert rows == [
        ("#1/1", "a@x.com", "Ann Lee", "555-0101"),
        ("#1/2", None, "Ann Lee", "555-0101"),  # #1's rows name two emails: neither is its
        ("#1/3", "b@x.com", "Ann Lee", "555-0101"),
        ("#2/1", "c@x.com", "Cy Ng", "555-0102"),
        ("#2/2", "c@x.com", "Cy Ng", "555-0102"),
        ("#3/1", None, "Bo Ray", None),
    ]


def test_an_ndjson_line_over_two_mb_is_read(cli, tmp_path: Path, monkeypatch):
    """A record of 3 MB (a long ticket body) stopped the whole file: `cannot read as JSON:
    Invalid Input Error: CSV Error on Line: 2`, DuckDB's line cap for a CSV."""
    import cxunify.ingest

    body = "x" * (3 << 20)
    lines = [{"handle": "ann", "bio": "hi"}, {"handle": "bob", "bio": body}]
    data = write(tmp_path / "s.ndjson", "".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    result = cli("unify", "--config", _social_config(tmp_path, "s.ndjson"), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    handles = duckdb.sql(f"SELECT source_record_id FROM '{out}/records.parquet' ORDER BY 1")
    assert handles.fetchall() == [("ann",), ("bob",)]
    # Past the cap a line is named, with its size.
    monkeypatch.setattr(cxunify.ingest, "NDJSON_MAX_LINE", 1 << 20)
    result = cli("unify", "--config", _social_config(tmp_path, "s.ndjson"), "--out", out, "-q")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {data}:2: a line of {len(json.dumps(lines[1])):,} bytes, over the 1 MB a "
        "record's line may hold; is the file one object per line?\n",
    )


def test_a_customer_key_loses_the_apostrophe_that_kept_it_text(cli, tmp_path: Path):
    """A loyalty number '7012345678901 from a spreadsheet is 7012345678901, as its id is: the
    key kept the apostrophe while the id from the same kind of cell lost it."""
    write(
        tmp_path / "crm.csv",
        "contact_id,email,loyalty_id\n'7012345678901,a@x.com,'7012345678901\n2,b@x.com,'LY-1\n",
    )
    config = write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: contact_id,\n"
        "     columns: {email: email, customer_key: loyalty_id}}\n",
    )
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(
        f"SELECT source_record_id, customer_key FROM '{tmp_path}/out/records.parquet' ORDER BY 1"
    ).fetchall()
    assert rows == [("2", "'LY-1"), ("7012345678901", "7012345678901")]


def test_unpacking_a_gzip_stops_before_the_disk_is_full(cli, tmp_path: Path, monkeypatch):
    """A .gz of a few MB may unpack to gigabytes (a gzip bomb): it was unpacked whole, the
    disk filled, and the error said 'not a readable gzip file ([Errno 28] ...)'. Unpacking now
    stops while ingest.KEEP_FREE bytes are free (here: more than the disk has)."""
    import gzip
    import shutil

    from cxunify import ingest

    header = b"id,email,first_name\n"
    bomb = tmp_path / "crm.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as packed:
        packed.write(header)
        for _ in range(80):
            packed.write(b"," * (1 << 20))  # 80 MB of one character
    monkeypatch.setattr(ingest, "KEEP_FREE", shutil.disk_usage(tmp_path).free + (1 << 40))
    out = tmp_path / "out"
    result = cli("unify", "--config", write(tmp_path / "cfg.yaml", (
        "sources:\n  - {name: crm, kind: crm, path: crm.csv.gz, id: id, "
        "columns: {email: email, first_name: first_name}}\n")), "--out", out, "-q")  # fmt: skip
    assert result.exit_code == 1
    assert re.fullmatch(
        rf"Error: {re.escape(str(bomb))}: unpacked to 67,\d{{3}},\d{{3}} bytes in \S+ and "
        r"stopped, [\d,]+ bytes left on its disk \(a run stops unpacking while [\d,]+ bytes "
        r"are free\); make room there, or unpack the file where there is room and give that\n",
        " ".join(result.stderr.split(" ")),
    ), result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_a_json_document_nested_deeper_than_python_parses_is_one_record(cli, tmp_path: Path):
    """A .json file of one object, one of its values nested 3,000 arrays deep: DuckDB reads
    it, but the check for records wrapped in it ({"contacts": [...]}) parsed it in Python,
    and the run stopped with 'Internal error: RecursionError', exit 2."""
    deep = "[" * 3000 + "]" * 3000
    social = tmp_path / "one.json"
    social.write_text(f'{{"handle": "annlee", "display_name": "Ann Lee", "deep": {deep}}}')
    out = tmp_path / "out"
    result = cli("unify", "--social", social, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(f"SELECT handle, last_name FROM '{out}/records.parquet'").fetchall()
    assert rows == [("annlee", "Lee")]
