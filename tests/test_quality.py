"""Measured matching quality through the CLI, on the bundled sample and the Febrl sets.

The floors sit just under the figures measured when they were set (see benchmarks/RESULTS.md);
the pipeline is deterministic, so a drop below a floor is a regression, not noise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from cxunify.evaluate import evaluate, golden_accuracy
from cxunify.febrl import write_febrl
from cxunify.sample import true_people
from tests.conftest import ROOT, SAMPLE, SAMPLE_FLAGS


@pytest.fixture(scope="module")
def febrl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("febrl")
    write_febrl(root / "data" / "febrl")
    (root / "configs").mkdir()
    for name in ("febrl3.yaml", "febrl4.yaml"):
        shutil.copy(ROOT / "configs" / name, root / "configs" / name)
    return root


def _unify(cli, *args) -> None:
    result = cli("unify", *args, "--quiet")
    assert result.exit_code == 0, result.stderr


def test_sample_quality(sample_out: Path):
    quality = evaluate(sample_out, SAMPLE / "truth.csv")
    assert quality.pairwise_precision >= 0.98
    assert quality.pairwise_recall >= 0.97
    assert quality.pairwise_f1 >= 0.97
    assert quality.bcubed_f1 >= 0.97
    assert quality.largest_cluster <= 60


def test_sample_golden_accuracy(sample_out: Path):
    """Golden fields that are the true person's (the bundled sample is `cxunify sample
    --people 2000 --seed 7`; benchmarks/golden_quality.py prints them all). Names and email
    rose by 1.3 to 2.6 points when rows a source_priority tier ranks alike went to the value on
    more of the customer's rows before the newest (first_name was 0.875)."""
    accuracy = golden_accuracy(sample_out, SAMPLE / "truth.csv", true_people(2000, 7))
    assert accuracy.customers == 2117
    assert accuracy.fields["first_name"] >= 0.90
    assert accuracy.fields["last_name"] >= 0.87
    assert accuracy.fields["email"] >= 0.87
    assert accuracy.fields["phone"] >= 0.82
    assert accuracy.fields["street"] >= 0.68
    assert accuracy.overall >= 0.80


def test_sample_model_weighs_no_kind_of_agreement_below_different(sample_out: Path):
    # EM counted no match sharing only a phone's last 7 digits (0 of 6,938) or a dob one typo
    # apart: they weighed -3.7 and -10.4 bits, below a phone or dob wholly different (-2.6).
    model = json.loads((sample_out / "run.json").read_text())["model"]
    weights: dict[str, list[float]] = {}
    for row in model["weights"]:
        weights.setdefault(row["comparison"], []).append(row["partial_weight"])
    for comparison, levels in weights.items():
        assert min(levels[1:]) >= levels[0] - 1e-9, comparison


def test_social_account_whose_handle_spells_a_nickname_finds_its_owner(sample_out: Path):
    # "Daniel" of handle dancole68: blocking read the surname as what follows the initial
    # ("ancole"), so no pair with the CRM's Daniel Cole of San Francisco was ever compared.
    customers = duckdb.sql(
        f"""SELECT DISTINCT customer_id FROM '{sample_out}/identity_map.parquet'
            WHERE (source, source_record_id) IN (('social', 'dancole68'), ('crm', 'C00001170'))"""
    ).fetchall()
    assert len(customers) == 1


def test_social_display_name_tagline_is_not_the_surname(sample_out: Path):
    # "George Mathis | grocery lover": the name was George Lover, which nothing linked to
    # the CRM's George Mathis of Philadelphia.
    rows = duckdb.sql(
        f"""SELECT source, last_name, customer_id FROM '{sample_out}/records.parquet'
            WHERE (source, source_record_id) IN (('social', 'georgemathis77'), ('crm', 'C00001791'))
            ORDER BY source"""
    ).fetchall()
    assert [r[:2] for r in rows] == [("crm", "Mathis"), ("social", "Mathis")]
    assert rows[0][2] == rows[1][2]


@pytest.mark.parametrize(("task", "floor"), [("febrl3", 0.985), ("febrl4", 0.99)])
def test_febrl_quality_with_config(cli, febrl_dir: Path, task: str, floor: float):
    out = febrl_dir / f"out-{task}"
    _unify(cli, "--config", febrl_dir / "configs" / f"{task}.yaml", "--out", out)
    quality = evaluate(out, febrl_dir / "data" / "febrl" / f"{task}_truth.csv")
    assert quality.pairwise_precision >= 0.995
    assert quality.pairwise_f1 >= floor


def test_febrl4_quality_zero_config(cli, febrl_dir: Path):
    data = febrl_dir / "data" / "febrl"
    out = febrl_dir / "out-zero"
    _unify(cli, "--crm", data / "febrl4a.csv", "--crm", data / "febrl4b.csv", "--out", out)
    quality = evaluate(out, data / "febrl4_truth.csv")
    assert quality.pairwise_f1 >= 0.99


def test_sample_zero_config_matches_the_config_run(cli, sample_out: Path, tmp_path: Path):
    out = tmp_path / "zero"
    _unify(
        cli,
        *SAMPLE_FLAGS,
        "--out",
        out,
    )
    zero = evaluate(out, SAMPLE / "truth.csv")
    configured = evaluate(sample_out, SAMPLE / "truth.csv")
    # the floors hold without a hand-written config too
    assert zero.pairwise_precision >= 0.97
    assert zero.pairwise_recall >= 0.97
    assert zero.pairwise_f1 >= 0.97
    assert abs(zero.pairwise_f1 - configured.pairwise_f1) < 0.005


def test_junk_values_shared_by_500_people_link_nobody(cli, tmp_path: Path):
    import random

    rng = random.Random(3)
    first = ["anna", "ben", "carl", "dina", "eli", "fay", "gus", "hana", "ivan", "jill"]
    lines = ["id,first_name,last_name,email,phone,dob"]
    for i in range(500):
        name = first[i % 10]
        surname = "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        lines.append(
            f"{i},{name},{surname},test@test.com,0000000000,19{50 + i % 50}-01-{1 + i % 28:02d}"
        )
    (tmp_path / "crm.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    _unify(cli, "--crm", tmp_path / "crm.csv", "--out", out)
    import duckdb

    customers = duckdb.sql(f"SELECT count(*) FROM '{out}/profiles.parquet'").fetchall()[0]
    assert customers == (500,)


def test_junk_by_frequency_links_nobody(cli, tmp_path: Path):
    """A shop's own phone typed into every order is junk by frequency, not by a list."""
    firsts = ["Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gail", "Hugo", "Iris", "Jack"]
    lasts = ["Lee", "Ng", "Ortiz", "Park", "Quinn", "Ruiz"]
    lines = ["order_id,billing_name,phone"]
    for i in range(60):
        lines.append(f"{i},{firsts[i % 10]} {lasts[i // 10]},+1 555 010 9999")
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "sources:\n  - name: orders\n    kind: transactions\n    path: orders.csv\n"
        "    id: order_id\n    columns:\n      full_name: billing_name\n      phone: phone\n"
        "matching:\n  max_records_per_value: 50\n"
    )
    out = tmp_path / "out"
    _unify(cli, "--config", cfg, "--out", out)
    import json

    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["junk_phones"] == 1
    assert run["counts"]["profiles"] == 60
