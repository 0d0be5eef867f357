"""`cxunify update` through the CLI on tiny exports: exit codes and exact messages."""

from __future__ import annotations

import json
from pathlib import Path

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
