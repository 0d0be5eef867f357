"""`cxunify unify --as-of`: traits are relative to the given date, and run.json says which."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb

from cxunify.config import parse_as_of
from tests.conftest import ROOT


def test_as_of_moves_lifecycle_and_is_recorded(cli, tmp_path: Path):
    out = tmp_path / "out"
    config = ROOT / "configs" / "sample.yaml"
    result = cli("unify", "--config", config, "--out", out, "-q", "--as-of", "2030-01-01")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["as_of"] == "2030-01-01T00:00:00"
    stages = duckdb.sql(
        f"SELECT lifecycle_stage, min(recency_days) FROM '{out}/profiles.parquet' "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    # the sample's newest order is from 2026: three years on, every buyer has lapsed
    assert [s for s, _ in stages] == ["lapsed", "prospect"]
    assert stages[0][1] > 365


def test_an_as_of_before_the_last_orders_is_warned_of(cli, tmp_path: Path):
    """README's own `--as-of 2026-06-30` on the sample (whose orders run to October) gave
    518 customers a negative recency_days, read as recent buyers, without a word."""
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,email,amount,created_at\nA1,ann@fastmail.com,10,2026-05-02 10:00:00\n"
        "A2,bob@fastmail.com,20,2026-10-31 21:53:25\nA3,cy@fastmail.com,5,2026-06-30 10:00:00\n"
    )
    out = tmp_path / "out"
    result = cli("unify", "--transactions", orders, "--out", out, "-q", "--as-of", "2026-06-30")
    assert result.exit_code == 0, result.stderr
    recency = duckdb.sql(f"SELECT email, recency_days FROM '{out}/profiles.parquet' ORDER BY 1")
    assert recency.fetchall() == [
        ("ann@fastmail.com", 59), ("bob@fastmail.com", -123), ("cy@fastmail.com", 0),
    ]  # fmt: skip
    # Cy's order later on the as-of day is after it too, though its recency_days is 0.
    warning = (
        "2 customers' last orders are after as_of (2026-06-30 00:00:00; the latest "
        "2026-10-31 21:53:25): their recency_days is 0 or negative, and every figure counts the "
        "orders, tickets and posts after it; for profiles as they stood at as_of, read exports "
        "cut there"
    )
    assert json.loads((out / "run.json").read_text())["warnings"] == [warning]
    assert "Warning: " + warning in " ".join(result.stderr.split())


def _tiny(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "crm.csv").write_text("id,email\n1,ann@gmail.com\n")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email}}\n"
        + extra
    )
    return config


def test_an_as_of_with_an_offset_is_its_time_in_utc(cli, tmp_path: Path):
    """`--as-of 2026-06-30T18:00:00+02:00` was bound with its offset, and DuckDB took it to the
    machine's wall time: 12:00 on a machine in New York, so traits depended on where the run
    ran. It is 16:00 UTC, as every time of the records is, wherever it runs."""
    assert parse_as_of("2026-06-30T18:00:00+02:00") == datetime(2026, 6, 30, 16)
    assert parse_as_of("2026-06-30T18:00:00") == datetime(2026, 6, 30, 18)
    out = tmp_path / "out"
    config = _tiny(tmp_path)
    result = cli(
        "unify", "--config", config, "--out", out, "-q", "--as-of", "2026-07-01T01:00+02:00"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["as_of"] == "2026-06-30T23:00:00"


def test_a_compact_date_is_a_date_not_seconds_since_1970(cli, tmp_path: Path):
    """`--as-of 20250630` was read as 20,250,630 seconds after 1970: 1970-08-23."""
    out = tmp_path / "out"
    result = cli("unify", "--config", _tiny(tmp_path), "--out", out, "-q", "--as-of", "20250630")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["as_of"] == "2025-06-30T00:00:00"


def test_what_is_not_a_date_is_a_one_line_error(cli, tmp_path: Path):
    config, out = _tiny(tmp_path), tmp_path / "out"
    for given in ("2025", "yesterday", "2025-13-01"):
        result = cli("unify", "--config", config, "--out", out, "-q", "--as-of", given)
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            f"Error: --as-of: '{given}' is not a date; write it as 2025-06-30 or "
            "2025-06-30T18:00:00"
        )
    result = cli("unify", "--config", _tiny(tmp_path, "profile: {as_of: 2025}\n"), "--out", out)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {tmp_path / 'cfg.yaml'}: profile.as_of: '2025' is not a date; write it as "
        "2025-06-30 or 2025-06-30T18:00:00"
    )
    assert not out.exists()


def test_a_bad_phone_region_flag_with_a_config_is_a_one_line_error(cli, tmp_path: Path):
    out = tmp_path / "out"
    result = cli("unify", "--config", _tiny(tmp_path), "--phone-region", "XX", "--out", out)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: --phone-region: 'XX' is not a phone region (ISO 3166 alpha-2, e.g. US, GB)"
    )


def test_a_future_timestamp_is_counted_not_taken_as_the_default_as_of(cli, tmp_path: Path):
    """A year typed 2095 for 2025 made every customer look long gone."""
    # A year past 2100 is no date, written with a time of day or not (with one, it was read).
    (tmp_path / "crm.csv").write_text(
        "id,email,created\n1,ann@gmail.com,2024-05-01\n2,bob@gmail.com,2095-01-02\n"
        "3,cy@gmail.com,2205-01-01\n4,dee@gmail.com,2205-01-01 10:00:00\n"
        "5,eve@gmail.com,9999-12-31T00:00:00Z\n"
    )
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id,\n"
        "     columns: {email: email, created_at: created}}\n"
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", config, "--out", out, "-q", "--json")
    assert result.exit_code == 0, result.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["as_of"] == "2024-05-01T00:00:00"
    assert run["counts"]["future_timestamps"] == 1
    assert json.loads(result.stdout)["counts"]["future_timestamps"] == 1
    seen = f"SELECT email FROM '{out}/profiles.parquet' WHERE first_seen_at IS NULL ORDER BY 1"
    assert duckdb.sql(seen).fetchall() == [
        ("cy@gmail.com",),
        ("dee@gmail.com",),
        ("eve@gmail.com",),
    ]
