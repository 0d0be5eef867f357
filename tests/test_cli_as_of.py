"""`cxunify unify --as-of`: traits are relative to the given date, and run.json says which."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

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
