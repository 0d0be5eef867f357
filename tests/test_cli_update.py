"""`cxunify update` through the CLI on tiny exports: exit codes and exact messages."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb

from cxunify import output, update
from tests.conftest import write

CRM = (
    "contact_id,first_name,last_name,email\n"
    "C1,Ann,Lee,ann.lee@fastmail.com\n"
    "C2,Bob,Ng,bob.ng@fastmail.com\n"
    "C3,Cy,Oh,cy.oh@fastmail.com\n"
)
ORDERS = (
    "order_id,email,amount,ordered_at\n"
    "O1,ann.lee@fastmail.com,10.00,2025-06-01\n"
    "O2,bob.ng@fastmail.com,20.00,2025-06-02\n"
)
CONFIG = (
    "sources:\n"
    "  - {name: crm, kind: crm, path: crm.csv, id: contact_id,\n"
    "     columns: {first_name: first_name, last_name: last_name, email: email}}\n"
    "  - {name: orders, kind: transactions, path: orders.csv, id: order_id,\n"
    "     columns: {email: email, amount: amount, created_at: ordered_at}}\n"
)


def unified(cli, tmp_path: Path) -> tuple[Path, Path]:
    """A config over crm.csv and orders.csv in tmp_path, and a full run of it in out/."""
    write(tmp_path / "crm.csv", CRM)
    write(tmp_path / "orders.csv", ORDERS)
    config = write(tmp_path / "c.yaml", CONFIG)
    out = tmp_path / "out"
    result = cli("unify", "--config", config, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    return config, out


def test_update_takes_as_of_like_unify(cli, tmp_path: Path):
    config, out = unified(cli, tmp_path)
    result = cli("update", "--previous", out, "--config", config, "-q", "--as-of", "2030-01-01")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["as_of"] == "2030-01-01T00:00:00"
    result = cli("update", "--previous", out, "--config", config, "--as-of", "yesterday")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: --as-of: 'yesterday' is not a date; write it as 2025-06-30 or 2025-06-30T18:00:00"
    )


def test_deletions_naming_a_source_the_output_lacks_are_an_error(cli, tmp_path: Path):
    """An erasure request for `CRM` (the source is `crm`) must not pass as 0 deletions."""
    config, out = unified(cli, tmp_path)
    before = (out / "run.json").read_text()
    for rows, named in (
        ("CRM,C1\n", "source 'CRM' not in {out} (its sources: crm, orders; did you mean 'crm'?)"),
        ("nosuch,X\ncrm,C1\nzz,Y\n", "sources 'nosuch', 'zz' not in {out} (its sources: crm, "
                                     "orders)"),
    ):  # fmt: skip
        deletions = write(tmp_path / "del.csv", "source,source_record_id\n" + rows)
        result = cli("update", "--previous", out, "--config", config, "--delete", deletions)
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: {deletions}: {named.format(out=out)}; nothing was deleted\n"
        )
        assert (out / "run.json").read_text() == before


def test_deletions_not_found_are_shown_on_screen(cli, tmp_path: Path):
    config, out = unified(cli, tmp_path)
    write(tmp_path / "crm.csv", CRM.splitlines()[0] + "\n")  # a night with only deletions
    write(tmp_path / "orders.csv", ORDERS.splitlines()[0] + "\n")
    deletions = write(tmp_path / "del.csv", "source,source_record_id\ncrm,C1\ncrm,C9\norders,O7\n")
    result = cli("update", "--previous", out, "--config", config, "--delete", deletions)
    assert result.exit_code == 0, result.stderr
    customers = json.loads((out / "run.json").read_text())["counts"]["profiles"]
    assert " ".join(result.stderr.split()) == (  # (rich wraps the line at 80 columns)
        f"✓ 0 new or changed rows, 1 deleted, 2 to delete not found → {customers} customers "
        f"in {out}"
    )


def test_deletions_are_read_as_exports_are_read(cli, tmp_path: Path):
    """A hand-made erasure file with a space after each comma: the stored ids were trimmed
    when read, so ' C1' names C1, not a record 'not found' while the person stays. So does
    'C1' and a tab (it was trimmed of spaces only)."""
    config, out = unified(cli, tmp_path)
    write(tmp_path / "crm.csv", CRM.splitlines()[0] + "\n")
    write(tmp_path / "orders.csv", ORDERS.splitlines()[0] + "\n")
    deletions = write(
        tmp_path / "del.csv", "source, source_record_id\ncrm, C1\t\n orders , O1 \n\n"
    )
    result = cli("update", "--previous", out, "--config", config, "--delete", deletions,
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    changed = json.loads(result.stdout)["update"]
    assert (changed["records_deleted"], changed["deletions_not_found"]) == (2, 0)
    left = duckdb.sql(f"SELECT source_record_id FROM '{out}/identity_map.parquet' ORDER BY 1")
    assert left.fetchall() == [("C2",), ("C3",), ("O2",)]


def test_deletions_in_latin_1_are_read(cli, tmp_path: Path):
    """A deletions file saved by a spreadsheet on Windows stopped the update with DuckDB's
    'CSV Error on Line: 2'."""
    config, out = unified(cli, tmp_path)
    write(tmp_path / "crm.csv", CRM.splitlines()[0] + "\n")
    write(tmp_path / "orders.csv", ORDERS.splitlines()[0] + "\n")
    deletions = tmp_path / "del.csv"
    deletions.write_bytes("source,source_record_id\ncrm,C1\ncrm,Cé9\n".encode("latin-1"))
    result = cli("update", "--previous", out, "--config", config, "--delete", deletions,
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    changed = json.loads(result.stdout)["update"]
    assert (changed["records_deleted"], changed["deletions_not_found"]) == (1, 1)


def test_a_deletion_without_its_id_is_an_error(cli, tmp_path: Path):
    """An erasure request whose id was lost on the way must not pass as nothing to do."""
    config, out = unified(cli, tmp_path)
    write(tmp_path / "crm.csv", CRM.splitlines()[0] + "\n")
    write(tmp_path / "orders.csv", ORDERS.splitlines()[0] + "\n")
    before = (out / "run.json").read_text()
    for rows in ("crm,C1\ncrm,\n", "crm,C1\n, C2\n"):
        deletions = write(tmp_path / "del.csv", "source,source_record_id\n" + rows)
        result = cli("update", "--previous", out, "--config", config, "--delete", deletions)
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: {deletions}: row 2 of the deletions lacks a source or a "
            "source_record_id; nothing was deleted\n"
        )
        assert (out / "run.json").read_text() == before


def test_a_row_rejected_for_its_values_and_sent_again_is_rejected_once(cli, tmp_path: Path):
    """Whole exports named by their date, a new contact on top: the repeated id and the row
    without one are the same bad rows as last night, though read from another file and
    row. They were carried over beside tonight's copies, one more of each every night,
    inflating rows_in and the reject rate a gate checks."""
    header = CRM.splitlines()[0] + "\n"
    rows = CRM.split("\n", 1)[1] + "C3,Cy,Oh,cy.oh2@fastmail.com\n,Flo,Gee,flo.gee@fastmail.com\n"
    write(tmp_path / "crm_d1.csv", header + rows)
    source = (
        "sources:\n  - {{name: crm, kind: crm, path: crm_d{}.csv, id: contact_id,\n"
        "     columns: {{first_name: first_name, last_name: last_name, email: email}}}}\n"
    )
    config = write(tmp_path / "c.yaml", source.format(1))
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    for night in (2, 3):
        write(
            tmp_path / f"crm_d{night}.csv", header + f"C{night + 8},Di,Wu,d{night}@x.org\n" + rows
        )
        write(config, source.format(night))
        result = cli("update", "--previous", out, "--config", config, "--json")
        assert result.exit_code == 0, result.stderr
        counts = json.loads(result.stdout)["counts"]
        assert (counts["rows_in"], counts["rows_rejected"]) == (4 + night, 2)
    rejects = duckdb.sql(f"SELECT file, reason FROM '{out}/rejects.parquet' ORDER BY 2")
    assert rejects.fetchall() == [
        (str(tmp_path / "crm_d3.csv"), "duplicate id C3 (first at row 4) in contact_id"),
        (str(tmp_path / "crm_d3.csv"), "missing id in contact_id"),
    ]


def test_an_order_naming_two_currencies_in_an_update_warns_as_a_full_run_does(cli, tmp_path):
    """Converting into a base, tonight's one order whose amount and currency column name two
    currencies stopped the nightly update. It goes on as a full run over the same rows does
    (test_traits): the order kept under XXX, its amount left out of the converted figures,
    and the same warning."""
    header = "order_id,email,amount,currency,ordered_at\n"
    write(tmp_path / "crm.csv", CRM)
    write(tmp_path / "orders.csv", header + "O1,ann.lee@fastmail.com,10.00,USD,2025-06-01\n")
    config = write(
        tmp_path / "c.yaml",
        CONFIG.replace("amount: amount,", "amount: amount, currency: currency,")
        + "profile:\n  currency: {base: USD, rates: {EUR: 1.1}}\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").stderr == ""
    write(tmp_path / "crm.csv", CRM.splitlines()[0] + "\n")
    write(tmp_path / "orders.csv", header + "O3,ann.lee@fastmail.com,9.00 EUR,USD,2025-06-03\n")
    result = cli("update", "--previous", out, "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    warning = (
        "1 order whose amount names another currency than its currency column (source "
        "'orders', record 'O3') is left out of the figures converted into USD (revenue, "
        "avg_order_value, rfm_m) and kept under XXX in revenue_by_currency and touchpoints; "
        "correct the export to count them"
    )
    assert " ".join(result.stderr.split()) == f"Warning: {warning}"
    assert json.loads(result.stdout)["warnings"] == [warning]
    manifest = json.loads((out / "run.json").read_text())
    assert (manifest["counts"]["currency_conflicts"], manifest["warnings"]) == (1, [warning])
    buyer = duckdb.sql(
        "SELECT orders, revenue, currency, avg_order_value, rfm_m, revenue_by_currency "
        f"FROM '{out}/profiles.parquet' WHERE orders > 0"
    ).fetchall()
    assert buyer == [
        (2, Decimal("10.00"), "USD", Decimal("10.00"), 1,
         {"USD": Decimal("10.00"), "XXX": Decimal("9.00")}),
    ]  # fmt: skip


def test_a_zero_config_update_keeps_the_stored_id_column(cli, tmp_path: Path):
    """Tonight's CRM repeats an id and leaves one empty: inferring an id from it would fall
    back to row numbers, and the update refused. The stored id column is kept instead, and
    the bad rows are rejected as a full run would reject them."""
    write(tmp_path / "crm.csv", CRM)
    out = tmp_path / "out"
    assert cli("unify", "--crm", tmp_path / "crm.csv", "--out", out, "-q").exit_code == 0
    delta = write(
        tmp_path / "tonight" / "crm.csv",
        CRM.splitlines()[0] + "\nC4,Di,Wu,di.wu@fastmail.com\nC4,Ed,Fox,ed.fox@fastmail.com\n"
        ",Flo,Gee,flo.gee@fastmail.com\n",
    )
    result = cli("update", "--previous", out, "--crm", delta, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["update"]["records_added_or_changed"] == 1
    rejected = sorted(
        reason for (reason,) in duckdb.sql(f"SELECT reason FROM '{out}/rejects.parquet'").fetchall()
    )
    assert rejected == [
        "duplicate id C4 (first at row 1) in contact_id",
        "missing id in contact_id",
    ]


# Shopify's orders export: one row per line item, the order's Name on each row, its Id and
# total on the first only; no column names a row.
SHOPIFY = "Name,Email,Financial Status,Total,Created at,Lineitem name,Id\n"
SHOPIFY_ROWS = (
    "#1001,ann.lee@fastmail.com,paid,46.34,2025-06-01 10:00:00 +0100,Tee,5601\n"
    "#1001,ann.lee@fastmail.com,,,2025-06-01 10:00:00 +0100,Socks,\n"
    "#1002,bob.ng@fastmail.com,paid,20.00,2025-06-02 10:00:00 +0100,Cap,5602\n"
)
SHOPIFY_TONIGHT = (
    "#1003,ann.lee@fastmail.com,paid,12.00,2025-06-03 10:00:00 +0100,Socks,5603\n"
    "#1004,cy.oh@fastmail.com,paid,30.00,2025-06-03 11:00:00 +0100,Tee,5604\n"
    "#1004,cy.oh@fastmail.com,,,2025-06-03 11:00:00 +0100,Cap,\n"
)


def _orders_of(out: Path) -> list[tuple]:
    return duckdb.sql(
        "SELECT i.source_record_id, p.email, p.orders, p.revenue "
        f"FROM '{out}/identity_map.parquet' i JOIN '{out}/profiles.parquet' p USING (customer_id) "
        "WHERE i.source = 'orders' ORDER BY 1"
    ).fetchall()


def test_a_line_item_export_without_an_id_column_takes_tonights_orders(cli, tmp_path: Path):
    """Shopify's orders export has no column naming a row (the Name repeats on each line
    item, the Id is on an order's first row only), so its rows were numbered and every
    update refused them: a nightly job could not update a shop's orders at all, and a night
    of single-line orders inferred `Id` as the id ("id was unset, now 'Id'"). Each row is
    now named by its order and its place in it (#1001/2): tonight's new orders, alone or in
    the whole export again, update the output as a full run on all the rows would."""
    orders = write(tmp_path / "orders.csv", SHOPIFY + SHOPIFY_ROWS)
    out = tmp_path / "out"
    assert cli("unify", "--transactions", orders, "--out", out, "-q").exit_code == 0
    assert [row[0] for row in _orders_of(out)] == ["#1001/1", "#1001/2", "#1002/1"]
    whole = write(tmp_path / "whole" / "orders.csv", SHOPIFY + SHOPIFY_ROWS + SHOPIFY_TONIGHT)
    full = tmp_path / "full"
    assert cli("unify", "--transactions", whole, "--out", full, "-q").exit_code == 0
    expected = _orders_of(full)
    assert expected[-3:] == [
        ("#1003/1", "ann.lee@fastmail.com", 2, Decimal("58.34")),
        ("#1004/1", "cy.oh@fastmail.com", 1, Decimal("30.00")),
        ("#1004/2", "cy.oh@fastmail.com", 1, Decimal("30.00")),
    ]
    night = tmp_path / "night"
    tonight = write(tmp_path / "tonight" / "orders.csv", SHOPIFY + SHOPIFY_TONIGHT)
    for sent, added, unchanged in ((tonight, 3, 0), (whole, 3, 3)):
        shutil.rmtree(night, ignore_errors=True)
        shutil.copytree(out, night)
        result = cli("update", "--previous", night, "--transactions", sent, "--json")
        assert result.exit_code == 0, result.stderr
        counts = json.loads(result.stdout)["update"]
        assert (counts["records_added_or_changed"], counts["records_unchanged"]) == (
            added,
            unchanged,
        )
        assert _orders_of(night) == expected


def test_an_order_line_without_its_order_number_is_refused_in_an_update(cli, tmp_path: Path):
    """A row of such an export without an order number is named by its row number, which
    names another record in each night's file: the update refuses it, naming the column."""
    orders = write(tmp_path / "orders.csv", SHOPIFY + SHOPIFY_ROWS)
    out = tmp_path / "out"
    assert cli("unify", "--transactions", orders, "--out", out, "-q").exit_code == 0
    before = (out / "run.json").read_text()
    tonight = write(
        tmp_path / "tonight" / "orders.csv",
        SHOPIFY + SHOPIFY_TONIGHT + ",dee@fastmail.com,paid,9.00,2025-06-04 10:00:00 +0100,Tee,\n",
    )
    result = cli("update", "--previous", out, "--transactions", tonight)
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        "Error: source 'orders': 1 of tonight's rows has no order number in 'Name': such rows "
        "are named by their row number, which names another record in each file, so an update "
        "cannot tell a changed row from a new one; give the source an id column, or run a "
        "full `cxunify unify`"
    )
    assert (out / "run.json").read_text() == before


def test_a_zero_config_update_maps_a_stored_source_as_the_run_that_wrote_it(cli, tmp_path: Path):
    """Tonight's three new contacts: two typed 'n/a' for email and phone. Inferred from
    them alone, the email and phone columns no longer looked like emails and phones and
    were left unmapped, so the third contact's email and phone were lost; a full run on
    all the rows maps them. A stored source keeps the mapping it was stored with."""
    write(tmp_path / "crm.csv", CRM)
    out = tmp_path / "out"
    assert cli("unify", "--crm", tmp_path / "crm.csv", "--out", out, "-q").exit_code == 0
    header = "contact_id,first_name,last_name,email,phone\n"
    write(tmp_path / "crm.csv", CRM.replace("contact_id,first_name,last_name,email\n", header))
    delta = write(
        tmp_path / "tonight" / "crm.csv",
        header + "C4,Di,Wu,n/a,n/a\nC5,Ed,Fox,n/a,n/a\nC6,Flo,Gee,flo.gee@fastmail.com,"
        "415-555-0101\n",
    )
    result = cli("update", "--previous", out, "--crm", delta, "-q")
    assert result.exit_code == 0, result.stderr
    stored = duckdb.sql(
        f"SELECT email FROM '{out}/records.parquet' WHERE source_record_id = 'C6'"
    ).fetchall()
    assert stored == [("flo.gee@fastmail.com",)]


def test_a_zero_config_update_takes_a_quiet_nights_header_only_export(cli, tmp_path: Path):
    """No new contacts tonight: the CRM export holds its header alone. There is nothing to
    infer a mapping from, but the source is stored, so it contributes 0 rows (as with a
    config) instead of stopping the nightly job with 'no data rows to infer a mapping'."""
    write(tmp_path / "crm.csv", CRM)
    write(tmp_path / "orders.csv", ORDERS)
    out = tmp_path / "out"
    flags = ("--crm", tmp_path / "crm.csv", "--transactions", tmp_path / "orders.csv")
    assert cli("unify", *flags, "--out", out, "-q").exit_code == 0
    crm = write(tmp_path / "tonight" / "crm.csv", CRM.splitlines()[0] + "\n")
    orders = write(
        tmp_path / "tonight" / "orders.csv",
        ORDERS.splitlines()[0] + "\nO3,cy.oh@fastmail.com,30.00,2025-07-01\n",
    )
    result = cli("update", "--previous", out, "--crm", crm, "--transactions", orders, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["update"]["records_added_or_changed"] == 1
    assert summary["update"]["sources_added"] == []
    deletions = write(tmp_path / "del.csv", "source,source_record_id\ncrm,C2\n")
    header_only = write(tmp_path / "tonight" / "orders.csv", ORDERS.splitlines()[0] + "\n")
    result = cli("update", "--previous", out, "--crm", crm, "--transactions", header_only,
                 "--delete", deletions, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["update"]["records_deleted"] == 1
    sources = duckdb.sql(
        f"SELECT source, count(*) FROM '{out}/identity_map.parquet' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert sources == [("crm", 2), ("orders", 3)]


def test_a_quiet_nights_ndjson_of_no_line_is_no_records(cli, tmp_path: Path):
    """Exporters write an NDJSON of no record as 0 bytes: 'file is empty' stopped the night,
    tonight's deletions included, though a CSV of its header alone is read as no rows. With
    a config, or without one for a stored source; a first run without a config still has
    nothing to infer a mapping from."""
    write(tmp_path / "social.ndjson", '{"id": "S1", "handle": "@ann", "name": "Ann Lee"}\n')
    out = tmp_path / "out"
    flags = ("--social", f"social={tmp_path / 'social.ndjson'}")
    assert cli("unify", *flags, "--out", out, "-q").exit_code == 0
    quiet = write(tmp_path / "tonight" / "social.ndjson", "")
    deletions = write(tmp_path / "del.csv", "source,source_record_id\nsocial,@ann\n")
    result = cli("update", "--previous", out, "--social", f"social={quiet}",
                 "--delete", deletions, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["update"]["records_deleted"] == 1
    config = write(
        tmp_path / "tonight" / "cfg.yaml",
        f"sources:\n  - {{name: social, kind: social, path: {quiet}, id: id,\n"
        "     columns: {handle: handle, full_name: name}}\n",
    )
    result = cli("unify", "--config", config, "--out", tmp_path / "quiet", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["rows_in"] == 0
    result = cli("unify", "--social", quiet, "--out", tmp_path / "first")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {quiet}: file is empty\n"


def test_a_source_with_other_settings_names_what_differs(cli, tmp_path: Path):
    _, out = unified(cli, tmp_path)
    other = write(
        tmp_path / "other.yaml",
        CONFIG.replace("id: contact_id,", "id: email, dayfirst: true,"),
    )
    result = cli("update", "--previous", out, "--config", other)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: source 'crm' has other settings than in the run that wrote it "
        "(dayfirst was unset, now true; id was 'contact_id', now 'email'); an update cannot "
        "change them: run a full `cxunify unify`\n"
    )


def test_an_output_stored_by_another_version_is_not_updated(cli, tmp_path: Path, monkeypatch):
    """Stored records, identities and comparison levels are reused as they were made: made by
    another standardisation (an upgrade), they were mixed with tonight's without a word, and
    the update no longer equalled a full run. A full run over it keeps the ids."""
    config, out = unified(cli, tmp_path)
    monkeypatch.setattr(update, "STORED_BY_PACKAGES", (*update.STORED_BY_PACKAGES, "rich"))
    result = cli("update", "--previous", out, "--config", config)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: its records were standardised, blocked, compared and clustered by "
        "another version of cxunify (its code or reference tables), DuckDB, phonenumbers, "
        "jellyfish or pycountry than this one; an update cannot mix them with tonight's: run "
        "a full `cxunify unify` once (it keeps the ids), then update as before\n"
    )
    ids = duckdb.sql(f"SELECT * FROM '{out}/identity_map.parquet' ORDER BY ALL").fetchall()
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert duckdb.sql(f"SELECT * FROM '{out}/identity_map.parquet' ORDER BY ALL").fetchall() == ids
    assert cli("update", "--previous", out, "--config", config).exit_code == 0


def test_the_version_check_covers_the_guards_and_the_reference_tables():
    """The nickname table keys first names and the guards read it; the stored clusters of
    untouched components are the guards' work: a new table or guard left an update's
    untouched customers as the old code made them, unlike a full run's."""
    package = Path(update.__file__).parent
    names = {str(path.relative_to(package)) for path in update.stored_files()}
    assert {"cluster.py", "block.py", "compare.py", "standardize/names.py"} <= names
    assert {"data/nicknames.csv", "data/street_suffixes.csv", "data/us_states.csv"} <= names
    assert not any(name.startswith("data/sample") for name in names)  # the generator's
    # header spellings decide only how a zero-config run maps columns; the state holds that
    assert "data/header_names.csv" not in names
    # nor does the macros' cache, which keeps what the other modules make
    assert "standardize/cache.py" not in names and "standardize/dates.py" in names


def test_rows_of_a_source_without_an_id_column_are_refused(cli, tmp_path: Path):
    """Without an id column rows are named by their row number: tonight's first row replaced
    the stored record 1, a different person, who was gone from the output without a word.
    A night with no rows for such a source, or deleting its records, still works."""
    header = "first_name,last_name,email\n"
    crm = write(tmp_path / "crm.csv", header + "Ann,Lee,ann.lee@fastmail.com\nBob,Ng,bob@x.org\n")
    config = write(
        tmp_path / "c.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv,\n"
        "     columns: {first_name: first_name, last_name: last_name, email: email}}\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    before = (out / "run.json").read_text()
    write(crm, header + "Cy,Oh,cy.oh@fastmail.com\n")
    for args in (("--config", config), ("--crm", crm)):
        result = cli("update", "--previous", out, *args)
        assert result.exit_code == 1
        assert " ".join(result.stderr.split()) == (
            f"Error: {crm}: source 'crm' has no id column: its rows are named by their row "
            "number, which names another record in each file, so an update cannot tell a "
            "changed row from a new one; give the source an id column, or run a full "
            "`cxunify unify`"
        )
        assert (out / "run.json").read_text() == before
    write(crm, header)
    deletions = write(tmp_path / "del.csv", "source,source_record_id\ncrm,2\n")
    result = cli("update", "--previous", out, "--config", config, "--delete", deletions)
    assert result.exit_code == 0, result.stderr
    names = duckdb.sql(f"SELECT first_name FROM '{out}/records.parquet'").fetchall()
    assert names == [("Ann",)]


def test_changed_matching_settings_are_named(cli, tmp_path: Path):
    """Someone raised the threshold in the nightly config: the update says which settings
    differ, not only that some do."""
    _, out = unified(cli, tmp_path)
    other = write(
        tmp_path / "other.yaml",
        CONFIG + "standardize: {phone_region: GB}\nmatching:\n  threshold: 0.95\n"
        "  blocking: [[email_std], [phone]]\n",
    )
    result = cli("update", "--previous", out, "--config", other)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: standardisation or matching settings differ from the run that wrote "
        "it (matching.blocking differs; matching.threshold was 0.9, now 0.95; "
        "standardize.phone_region was 'US', now 'GB'); an update cannot mix them: run a full "
        "`cxunify unify`\n"
    )


def test_an_update_adding_a_source_warns_and_a_flag_can_name_it(cli, tmp_path: Path):
    """Zero-config sources are named by file stem: tonight's orders_2025-07-01.csv would be
    a new source beside the stored `orders`, its orders counted twice."""
    write(tmp_path / "crm.csv", CRM)
    write(tmp_path / "orders.csv", ORDERS)
    out = tmp_path / "out"
    flags = ("--crm", tmp_path / "crm.csv", "--transactions", tmp_path / "orders.csv")
    assert cli("unify", *flags, "--out", out, "-q").exit_code == 0
    tonight = write(
        tmp_path / "orders_2025-07-01.csv",
        ORDERS.splitlines()[0] + "\nO3,cy.oh@fastmail.com,30.00,2025-07-01\n",
    )
    result = cli("update", "--previous", out, "--out", tmp_path / "o1", "--transactions",
                 tonight, "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    warning = (
        "source 'orders_2025_07_01' is not in the previous output (its transactions "
        "sources: orders): its rows were added as a new source, not as changes to stored "
        "records; to update 'orders', name the source: --transactions orders=PATH"
    )
    assert result.stderr == f"Warning: {warning}\n"
    # in run.json too: a nightly script reading it (or --json) saw nothing of it
    assert json.loads((tmp_path / "o1" / "run.json").read_text())["warnings"] == [warning]
    result = cli("update", "--previous", out, "--transactions", f"orders={tonight}", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["update"]["sources_added"] == []
    assert summary["update"]["records_added_or_changed"] == 1
    sources = duckdb.sql(
        f"SELECT source, count(*) FROM '{out}/identity_map.parquet' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert sources == [("crm", 3), ("orders", 3)]


def test_an_update_finds_a_new_sources_orders_a_stored_source_holds(cli, tmp_path: Path):
    """A night's export of orders read as a new source, repeating a stored order, counted it
    twice without the warning a full run of the same files gives: the update compared
    tonight's files with each other only."""
    write(tmp_path / "crm.csv", CRM)
    write(tmp_path / "orders.csv", ORDERS)
    out = tmp_path / "out"
    flags = ("--crm", tmp_path / "crm.csv", "--transactions", tmp_path / "orders.csv")
    assert cli("unify", *flags, "--out", out, "-q").exit_code == 0
    first = ORDERS.splitlines()[1]
    tonight = write(tmp_path / "more.csv", ORDERS.splitlines()[0] + f"\n{first}\n")
    result = cli("update", "--previous", out, "--transactions", tonight, "--json")
    assert result.exit_code == 0, result.stderr
    order_id = first.split(",")[0]
    overlap = (
        f"sources 'more' and 'orders' hold 1 order alike (order id and amount; the first: "
        f"'{order_id}'), counted once in each"
    )
    warnings = json.loads(result.stdout)["warnings"]
    assert [w for w in warnings if w.startswith(overlap)], warnings
    full = cli("unify", *flags, "--transactions", tonight, "--out", tmp_path / "full", "--json")
    assert full.exit_code == 0, full.stderr
    assert [w for w in json.loads(full.stdout)["warnings"] if w.startswith(overlap)]


def test_an_update_adding_a_source_by_config_says_to_name_it_there(cli, tmp_path: Path):
    _, out = unified(cli, tmp_path)
    support = write(tmp_path / "tickets.csv", "ticket_id,email\nT1,ann.lee@fastmail.com\n")
    renamed = write(
        tmp_path / "renamed.yaml",
        CONFIG.replace("name: orders", "name: orders2")
        + f"  - {{name: tickets, kind: support, path: {support}, id: ticket_id, "
        "columns: {email: email}}\n",
    )
    result = cli("update", "--previous", out, "--config", renamed, "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "Warning: source 'orders2' is not in the previous output (its transactions sources: "
        "orders): its rows were added as a new source, not as changes to stored records; to "
        "update 'orders', give the source that name in the config\n"
        "Warning: source 'tickets' is not in the previous output (it held no support source): "
        "its rows were added as a new source, not as changes to stored records\n"
    )


def test_an_update_elsewhere_reads_a_previous_output_it_cannot_lock(
    cli, tmp_path: Path, monkeypatch
):
    """`--previous A --out B` with A's folder read-only (an archived output): the lock beside
    A cannot be made, and no run of this user could swap A either: A is read without it."""
    import errno
    import os

    from cxunify.lock import lock_path

    config, out = unified(cli, tmp_path)
    refused, real_open = lock_path(out), os.open

    def read_only(path, *args, **kwargs):
        if Path(path) == refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    elsewhere = tmp_path / "elsewhere"
    result = cli("update", "--previous", out, "--out", elsewhere, "--config", config, "-q")
    assert result.exit_code == 0, result.stderr
    assert (elsewhere / "run.json").is_file() and not lock_path(elsewhere).exists()


def test_a_refused_update_leaves_no_folder_behind(cli, tmp_path: Path):
    """A mistyped --previous under a folder that does not exist either: the update made
    that folder (and those above --out) to hold its lock, then refused, and left them."""
    write(tmp_path / "crm.csv", CRM)
    write(tmp_path / "orders.csv", ORDERS)
    config = write(tmp_path / "c.yaml", CONFIG)
    typo = tmp_path / "typo" / "deeper"
    for out in ((), ("--out", tmp_path / "new" / "deep" / "out")):
        result = cli("update", "--previous", typo, *out, "--config", config)
        assert result.exit_code == 1
        assert result.stderr == f"Error: {typo}: no such output folder\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "crm.csv", "orders.csv"]


def test_an_output_inside_the_previous_one_is_refused(cli, tmp_path: Path):
    """The next update of out/ replaces it whole, and out/sub with it."""
    config, out = unified(cli, tmp_path)
    result = cli("update", "--previous", out, "--out", out / "sub", "--config", config)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'sub'}: --out is inside --previous {out}, which a run writing it "
        "replaces whole; choose a folder outside it\n"
    )
    assert not (out / "sub").exists()
    # ... and a previous output inside the folder the update replaces
    import shutil

    shutil.copytree(out, tmp_path / "copy")
    shutil.move(tmp_path / "copy", out / "old")
    result = cli("update", "--previous", out / "old", "--out", out, "--config", config)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'old'}: --previous is inside --out {out}, which this run replaces "
        "whole; choose a folder outside it\n"
    )


ERASED = (
    "erase.me.4417@fastmail.com",
    "+447700900417",
    "7700 900417",
    "CX4417",
    "OX4417",
    "TX4417",
)


def surviving(out: Path, needles: tuple[str, ...]) -> list[str]:
    """Every Parquet file under `out` (state/ and its parts too) and every view of its
    database holding one of `needles` in any column, as text: `file: needle`."""
    con = duckdb.connect()
    found = []
    relations = [
        (str(path.relative_to(out)), f"read_parquet('{path}')") for path in out.rglob("*.parquet")
    ]
    database = out / "cxunify.duckdb"
    con.execute(f"ATTACH '{database}' AS db (READ_ONLY)")
    views = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE database_name = 'db' AND NOT internal"
    ).fetchall()
    relations += [(f"cxunify.duckdb:{name}", f'db."{name}"') for (name,) in views]
    for name, relation in relations:
        for needle in needles:
            hit = con.execute(
                f"SELECT count(*) FROM {relation} t WHERE contains(t::VARCHAR, $needle)",
                {"needle": needle},
            ).fetchone()[0]
            if hit:
                found.append(f"{name}: {needle}")
    return sorted(found)


def test_an_erased_person_survives_nowhere_in_the_new_output(cli, tmp_path: Path):
    """A person asks to be erased: their records are deleted, and nothing of them is left in
    any file of the new output, the state the next update reads and the rejects carried over
    from earlier runs included (a line with a field too many, and a repeated id)."""
    crm = (
        "contact_id,first_name,last_name,email,phone\n"
        "CX4417,Ann,Lee,erase.me.4417@fastmail.com,+44 7700 900417\n"
        "C2,Bob,Ng,bob.ng@fastmail.com,+44 7700 900222\n"
        "C3,Cy,Oh,cy.oh@fastmail.com,\n"
        "CX4417,Ann,Lee,erase.me.4417@fastmail.com,+44 7700 900417,sent twice\n"
        "C3,Cy,Oh,cy.oh@fastmail.com,,kept\n"
    )
    orders = (
        "order_id,email,amount,ordered_at\n"
        "OX4417,erase.me.4417@fastmail.com,10.00,2025-06-01\n"
        "O2,bob.ng@fastmail.com,20.00,2025-06-02\n"
        "OX4417,erase.me.4417@fastmail.com,12.00,2025-06-03\n"
    )
    tickets = "ticket_id,email,body\nTX4417,erase.me.4417@fastmail.com,call me on 7700 900417\n"
    write(tmp_path / "crm.csv", crm)
    write(tmp_path / "orders.csv", orders)
    write(tmp_path / "tickets.csv", tickets)
    config = write(
        tmp_path / "c.yaml",
        CONFIG.replace("email: email}}", "email: email, phone: phone}}", 1)
        + "  - {name: tickets, kind: support, path: tickets.csv, id: ticket_id,\n"
        "     columns: {email: email, text: body}}\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert len(surviving(out, ERASED)) > 10  # (the scan finds them before)
    write(tmp_path / "crm.csv", crm.splitlines()[0] + "\n")  # a night with only deletions
    write(tmp_path / "orders.csv", orders.splitlines()[0] + "\n")
    write(tmp_path / "tickets.csv", tickets.splitlines()[0] + "\n")
    deletions = write(
        tmp_path / "erase.csv",
        "source,source_record_id\ncrm,CX4417\norders,OX4417\ntickets,TX4417\n",
    )
    erased = tmp_path / "erased"
    result = cli("update", "--previous", out, "--out", erased, "--config", config, "--delete",
                 deletions, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert surviving(erased, ERASED) == []
    assert json.loads(result.stdout)["update"]["rejects_deleted"] == 2
    # the other person's rejected line is kept
    kept = duckdb.sql(f"SELECT raw FROM '{erased}/rejects.parquet'").fetchall()
    assert kept == [("C3,Cy,Oh,cy.oh@fastmail.com,,kept",)]


def test_a_deleted_record_in_a_row_rejected_tonight_is_an_error(cli, tmp_path: Path):
    """Tonight's export still holds a broken line (or a repeat) of the record being erased:
    its raw text would stay in rejects.parquet, so the update refuses, as it does for a
    record both deleted and sent."""
    write(tmp_path / "crm.csv", "contact_id,first_name,last_name,email\nC1,Ann,Lee,ann@x.com\n")
    write(tmp_path / "orders.csv", "order_id,email,amount,ordered_at\n")
    config = write(tmp_path / "c.yaml", CONFIG)
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    deletions = write(tmp_path / "erase.csv", "source,source_record_id\ncrm,C1\n")
    for tonight in (
        "contact_id,first_name,last_name,email\nC1,Ann,Lee,ann@x.com,a field too many\n",
        "contact_id,first_name,last_name,email\nC2,Bo,Ng,bo@x.com\nC2,Bo,Ng,bo@x.com\n"
        "C1,Ann,Lee,ann@x.com,again\n",
    ):
        write(tmp_path / "crm.csv", tonight)
        result = cli("update", "--previous", out, "--config", config, "--delete", deletions)
        assert result.exit_code == 1
        assert " ".join(result.stderr.split()) == (
            f"Error: {deletions}: crm:C1 is both deleted and in a row of tonight's exports "
            "that was rejected; keep one of them"
        )
    # Another person's broken line does not stop the erasure.
    write(tmp_path / "crm.csv", "contact_id,first_name,last_name,email\nC2,Bo,Ng,bo@x.com,x\n")
    result = cli("update", "--previous", out, "--config", config, "--delete", deletions, "-q")
    assert result.exit_code == 0, result.stderr


def test_an_update_is_refused_while_the_update_a_gate_stopped_is_not_applied(cli, tmp_path: Path):
    """A nightly delta stopped by a gate is not in the output; the next night's update ran on
    top of it, leaving those rows out for good, and (passing) removed the rejected folder
    that showed it. It is refused, naming the update set aside and its files; so is an
    update of that output written to another folder."""
    import shutil

    config, out = unified(cli, tmp_path)
    header = CRM.splitlines()[0]
    write(tmp_path / "orders.csv", ORDERS.splitlines()[0] + "\n")
    write(
        tmp_path / "crm.csv", f"{header}\nC4,Dee,Ma,dee.ma@fastmail.com\n,No,Id,no@fastmail.com\n"
    )
    gated = write(tmp_path / "gated.yaml", CONFIG + "gates:\n  max_reject_rate: 0\n")
    assert cli("update", "--previous", out, "--config", gated, "-q").exit_code == 3
    aside = tmp_path / "out.rejected"
    stopped = json.loads((aside / "run.json").read_text())
    assert stopped["quality"]["failed"][0].startswith("gates.max_reject_rate: ")
    before = (out / "run.json").read_text()
    write(tmp_path / "crm.csv", f"{header}\nC5,Eve,Oh,eve.oh@fastmail.com\n")
    result = cli("update", "--previous", out, "--config", config, "-q")
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        f"Error: {aside}: holds the update started {stopped['started_at']} that a quality "
        f"gate stopped ({stopped['quality']['failed'][0]}), so its rows and "
        f"deletions are not in {out} (it read {tmp_path / 'crm.csv'}, {tmp_path / 'orders.csv'}); "
        "an update now would leave them out for good. Once the gate passes, update with its "
        "files again (the same files, with tonight's beside them if any, and its deletions "
        f"file) or run a full cxunify unify; or remove {aside} to go on without that update"
    )
    assert (out / "run.json").read_text() == before and aside.is_dir()
    # An update of out written elsewhere would leave them out just as well: it was not told.
    elsewhere = tmp_path / "elsewhere"
    result = cli("update", "--previous", out, "--out", elsewhere, "--config", config, "-q")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {aside}: holds the update started ")
    assert not elsewhere.exists() and not (tmp_path / "elsewhere.rejected").exists()
    # Damaged, its run.json can no longer tell whether it holds an update: not passed over.
    text = (aside / "run.json").read_text()
    for damaged, problem in (
        (text.replace('"rows_in": ', '"rows_in": 1', 1).encode(), output.NOT_AS_WRITTEN),
        (text[: len(text) // 2].encode(), "not a JSON object"),
        (b"\xff" + text.encode(), "not UTF-8"),
    ):
        (aside / "run.json").write_bytes(damaged)
        result = cli("update", "--previous", out, "--config", config, "-q")
        assert result.exit_code == 1
        assert " ".join(result.stderr.split()) == (
            f"Error: {aside / 'run.json'}: damaged ({problem}), so there is no telling whether "
            f"{aside} holds an update a quality gate stopped, whose rows an update now would "
            f"leave out for good; run a full cxunify unify, or remove {aside} if it holds no "
            "update you need"
        )
        assert (out / "run.json").read_text() == before
    (aside / "run.json").write_text(text)
    # Set aside elsewhere, the two nights go in together.
    shutil.move(aside, tmp_path / "inspected")
    write(
        tmp_path / "crm.csv",
        f"{header}\nC4,Dee,Ma,dee.ma@fastmail.com\nC5,Eve,Oh,eve.oh@fastmail.com\n",
    )
    result = cli("update", "--previous", out, "--config", config, "-q")
    assert result.exit_code == 0, result.stderr
    held = duckdb.sql(f"SELECT source_record_id FROM '{out}/identity_map.parquet'").fetchall()
    assert {"C4", "C5"} <= {record for (record,) in held}


def test_the_update_a_gate_stopped_is_applied_by_running_it_again(cli, tmp_path: Path):
    """Refused until a person moved the rejected folder away, even for the same command once
    the gate was fixed: a nightly job stayed stopped. An update reading the stopped one's
    files again (the same bytes), with its deletions file, applies it; without the deletions
    file it would not, and it is refused."""
    config, out = unified(cli, tmp_path)
    header = CRM.splitlines()[0]
    write(tmp_path / "orders.csv", ORDERS.splitlines()[0] + "\n")
    write(tmp_path / "crm.csv", f"{header}\nC4,Dee,Ma,dee.ma@fastmail.com\n")
    erase = write(tmp_path / "erase.csv", "source,source_record_id\ncrm,C2\n")
    gated = write(tmp_path / "gated.yaml", CONFIG + "gates:\n  min_linked_share: 1\n")
    args = ("update", "--previous", out, "-q", "--delete", erase)
    assert cli(*args, "--config", gated).exit_code == 3
    stopped = json.loads((tmp_path / "out.rejected" / "run.json").read_text())
    assert stopped["update"]["deletions_file"]["path"] == str(erase)
    result = cli("update", "--previous", out, "-q", "--config", config)
    assert result.exit_code == 1 and "holds the update started" in result.stderr
    write(tmp_path / "crm.csv", f"{header}\nC4,Dee,Ma,dee.ma@fastmail.com\n\n")  # other bytes
    result = cli(*args, "--config", config)
    assert result.exit_code == 1 and "holds the update started" in result.stderr
    write(tmp_path / "crm.csv", f"{header}\nC4,Dee,Ma,dee.ma@fastmail.com\n")
    result = cli(*args, "--config", config)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "out.rejected").exists()
    held = {
        r
        for (r,) in duckdb.sql(
            f"SELECT source_record_id FROM '{out}/identity_map.parquet'"
        ).fetchall()
    }
    assert "C4" in held and "C2" not in held


def test_deletions_alone_say_what_to_give_with_them(cli, tmp_path: Path):
    """`update --delete erase.csv` with no exports said only 'no input: give --config, or at
    least one of --crm/...', as if deletions needed none of them."""
    config, out = unified(cli, tmp_path)
    before = (out / "run.json").read_text()
    deletions = write(tmp_path / "del.csv", "source,source_record_id\ncrm,C1\n")
    result = cli("update", "--previous", out, "--delete", deletions)
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        "Error: no input: an update reads tonight's exports beside --delete; with deletions "
        "alone, give each source an export holding just its header row (--crm crm=HEADER.csv "
        "--transactions orders=HEADER.csv), or a --config naming such files"
    )
    assert (out / "run.json").read_text() == before
    # As it says: a header alone is a quiet night.
    write(tmp_path / "crm.csv", CRM.splitlines()[0] + "\n")
    write(tmp_path / "orders.csv", ORDERS.splitlines()[0] + "\n")
    result = cli("update", "--previous", out, "--config", config, "--delete", deletions, "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["update"]["records_deleted"] == 1
