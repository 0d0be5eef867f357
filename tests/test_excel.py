"""Excel exports: a workbook's sheet reads as the same rows its CSV export would give."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, SAMPLE, write
from tests.test_update import partition

SAMPLE_CONFIG = ROOT / "configs" / "sample.yaml"


def _workbook(csv_path: Path, target: Path, sheet: str = "Contacts") -> tuple[int, int]:
    """The CSV as a workbook the way a person saves one: a notes sheet first, phone numbers
    that are all digits typed as numbers, ISO dates of birth as date cells (but those before
    March 1900, which Excel counts one day off: it holds 29 February 1900)."""
    import xlsxwriter

    with csv_path.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    book = xlsxwriter.Workbook(str(target))
    book.add_worksheet("Notes").write(0, 0, "exported from the CRM")
    cells = book.add_worksheet(sheet)
    dated = book.add_format({"num_format": "yyyy-mm-dd"})
    cells.write_row(0, 0, header)
    phone, dob = header.index("phone"), header.index("date_of_birth")
    numbers = dates = 0
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row):
            if value == "":
                continue
            if c == phone and re.fullmatch(r"[1-9][0-9]{9}", value):
                cells.write_number(r, c, int(value))
                numbers += 1
            elif c == dob and re.fullmatch(r"\d{4}-\d\d-\d\d", value) and value > "1900-03":
                cells.write_datetime(r, c, datetime.fromisoformat(value), dated)
                dates += 1
            else:
                cells.write_string(r, c, value)
    book.close()
    return numbers, dates


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """The sample config with the CRM read from a workbook of crm.csv, run into from_excel;
    the run reading the CSV is the suite's sample run (`sample_out`: the same config)."""
    from typer.testing import CliRunner

    from cxunify.cli import app

    folder = tmp_path_factory.mktemp("excel")
    typed = _workbook(SAMPLE / "crm.csv", folder / "crm.xlsx")
    assert typed[0] > 50 and typed[1] > 500  # numbers and date cells, not only text
    text = SAMPLE_CONFIG.read_text().replace("../sample_data/", f"{SAMPLE}/")
    as_excel = write(
        folder / "excel.yaml",
        text.replace(f"path: {SAMPLE}/crm.csv", f"path: {folder}/crm.xlsx\n    sheet: Contacts"),
    )
    out = folder / "from_excel"
    result = CliRunner().invoke(app, ["unify", "--config", str(as_excel), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return folder


def test_a_sheet_gives_the_customers_and_profiles_of_its_csv(runs, sample_out: Path):
    csv_out, excel_out = sample_out, runs / "from_excel"
    assert partition(excel_out) == partition(csv_out)
    query = "SELECT * EXCLUDE (customer_id) FROM '{}/profiles.parquet' ORDER BY ALL"
    assert duckdb.sql(query.format(excel_out)).fetchall() == (
        duckdb.sql(query.format(csv_out)).fetchall()
    )
    # rows are numbered as data rows (1: the row under the header), as in the CSV
    numbers = "SELECT source_record_id, row_number FROM '{}/identity_map.parquet' ORDER BY ALL"
    assert duckdb.sql(numbers.format(excel_out)).fetchall() == (
        duckdb.sql(numbers.format(csv_out)).fetchall()
    )


def test_unknown_sheet_unreadable_workbook_and_sheet_of_a_csv_are_one_line_errors(
    cli, runs, tmp_path: Path
):
    def unify(path: Path, extra: str = "") -> str:
        config = write(
            tmp_path / "c.yaml",
            f"sources:\n  - name: crm\n    kind: crm\n    path: {path}\n{extra}"
            "    columns:\n      email: email\n",
        )
        result = cli("unify", "--config", config, "--out", tmp_path / "out")
        assert result.exit_code == 1
        assert "Traceback" not in result.stderr
        return result.stderr.strip()

    book = runs / "crm.xlsx"
    assert unify(book, "    sheet: Leads\n") == (
        f"Error: {book}: no sheet named 'Leads' (it has Notes, Contacts)"
    )
    fake = write(tmp_path / "fake.xlsx", "contact_id,email\nC1,a@x.com\n")
    assert unify(fake).startswith(f"Error: {fake}: cannot read as Excel: ")
    # The config and the key are named, as for any mistake in a config.
    assert unify(SAMPLE / "crm.csv", "    sheet: Contacts\n") == (
        f"Error: {tmp_path / 'c.yaml'}: sources[0].sheet: {SAMPLE / 'crm.csv'} is not an Excel "
        "file (csv); a sheet is for Excel workbooks only"
    )


def test_zero_config_reads_the_first_sheet_with_rows(cli, tmp_path: Path):
    """A cover sheet first, a blank row, a header repeated in another case: the first sheet
    holding rows is read, the blank row is no record (rows keep their place in the sheet), and
    the repeated header gets a suffix (as in a CSV) instead of shadowing the first."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(tmp_path / "contacts.xlsx"))
    book.add_worksheet("Cover").write(0, 0, "Contacts, exported 2026-12-05")
    book.add_worksheet("Empty")
    cells = book.add_worksheet("Export")
    cells.write_row(0, 0, ["Email", "First Name", "Last Name", "Phone", "EMAIL"])
    cells.write_row(1, 0, ["ann.lee@fastmail.com", "Ann", "Lee", 5550100001, "old@x.com"])
    cells.write_row(3, 0, ["bob.ng@fastmail.com", "Bob", "Ng", "+1 555 010 0002"])
    book.close()
    out = tmp_path / "out"
    result = cli("unify", "--crm", tmp_path / "contacts.xlsx", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    rows = duckdb.sql(f"SELECT email, phone FROM '{out}/profiles.parquet' ORDER BY 1").fetchall()
    assert rows == [
        ("ann.lee@fastmail.com", "+15550100001"),
        ("bob.ng@fastmail.com", "+15550100002"),
    ]
    numbers = duckdb.sql(f"SELECT row_number FROM '{out}/identity_map.parquet' ORDER BY 1")
    assert numbers.fetchall() == [(1,), (3,)]


def test_other_sheets_holding_rows_are_warned_of(cli, tmp_path: Path):
    """A workbook's second sheet of contacts was left out without a word."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(tmp_path / "contacts.xlsx"))
    book.add_worksheet("Empty")
    for name, email in (("Contacts", "ann@fastmail.com"), ("More", "bob@fastmail.com")):
        cells = book.add_worksheet(name)
        cells.write_row(0, 0, ["Email", "First Name"])
        cells.write_row(1, 0, [email, name])
    book.close()
    out = tmp_path / "out"
    result = cli("unify", "--crm", tmp_path / "contacts.xlsx", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    warning = (
        f"{tmp_path / 'contacts.xlsx'}: sheet 'Contacts' read for source 'contacts'; sheet "
        "'More' holds rows too and is not read: give each a source of its own with `sheet:`"
    )
    assert json.loads((out / "run.json").read_text())["warnings"] == [warning]


def test_a_title_above_the_header_is_no_header(cli, tmp_path: Path):
    """A title in A1 and a blank row above the header: the title named one column, the rest
    were `__UNNAMED__`, names and phones were lost and the header row became a customer."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(tmp_path / "contacts.xlsx"))
    cells = book.add_worksheet("Export")
    cells.write(0, 0, "Customer export generated 2026-12-01")
    cells.write_row(2, 0, ["contact_id", "first_name", "email", "phone"])
    cells.write_row(3, 0, ["C1", "Ann", "ann@fastmail.com", "+1 555 010 0001"])
    cells.write_row(4, 0, ["C2", "Bob", "bob@fastmail.com", None])
    book.close()
    out = tmp_path / "out"
    result = cli("unify", "--crm", tmp_path / "contacts.xlsx", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    records = duckdb.sql(
        f"SELECT source_record_id, first_name, phone, row_number FROM '{out}/records.parquet' "
        f"JOIN '{out}/identity_map.parquet' USING (source, source_record_id) ORDER BY 1"
    )
    assert records.fetchall() == [("C1", "Ann", "+15550100001", 1), ("C2", "Bob", None, 2)]
