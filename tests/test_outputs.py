"""The output contract: every file, column and type the README documents."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import duckdb
import pytest

from cxunify.profile import GOLDEN_FIELDS
from tests.conftest import ROOT, write

PROVENANCE = 'STRUCT("source" VARCHAR, source_record_id VARCHAR, "rule" VARCHAR, seen_at TIMESTAMP)'
CONTRACT = {
    "profiles": {
        "customer_id": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "street": "VARCHAR",
        "city": "VARCHAR",
        "postcode": "VARCHAR",
        "state": "VARCHAR",
        "country": "VARCHAR",
        "dob": "DATE",
        "emails": "VARCHAR[]",
        "phones": "VARCHAR[]",
        "addresses": "VARCHAR[]",
        "handles": "VARCHAR[]",
        "n_records": "BIGINT",
        "sources": "VARCHAR[]",
        "source_kinds": "VARCHAR[]",
        "first_seen_at": "TIMESTAMP",
        "last_seen_at": "TIMESTAMP",
        **{f"{field}_provenance": PROVENANCE for field in GOLDEN_FIELDS},
        "touchpoints": "BIGINT",
        "orders": "BIGINT",
        "revenue": "DECIMAL(38,2)",
        "currency": "VARCHAR",
        "revenue_by_currency": "MAP(VARCHAR, DECIMAL(38,2))",
        "avg_order_value": "DECIMAL(38,2)",
        "first_order_at": "TIMESTAMP",
        "last_order_at": "TIMESTAMP",
        "recency_days": "BIGINT",
        "repeat_purchase": "BOOLEAN",
        "rfm_r": "INTEGER",
        "rfm_f": "INTEGER",
        "rfm_m": "INTEGER",
        "rfm_segment": "VARCHAR",
        "top_categories": "VARCHAR[]",
        "tickets": "BIGINT",
        "open_tickets": "BIGINT",
        "median_resolution_hours": "DOUBLE",
        "last_resolution_hours": "DOUBLE",
        "csat_mean": "DOUBLE",
        "csat_last": "DOUBLE",
        "ticket_channels": "VARCHAR[]",
        "last_contact_at": "TIMESTAMP",
        "sentiment_mean": "DOUBLE",
        "sentiment_last": "DOUBLE",
        "handles_by_platform": "MAP(VARCHAR, VARCHAR[])",
        "social_accounts": "BIGINT",
        "followers": "BIGINT",
        "posts": "BIGINT",
        "last_social_at": "TIMESTAMP",
        "channels": "VARCHAR[]",
        "preferred_channel": "VARCHAR",
        "lifecycle_stage": "VARCHAR",
        "journey_stage": "VARCHAR",
        "experience_score": "DOUBLE",
    },
    "touchpoints": {
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "source": "VARCHAR",
        "source_record_id": "VARCHAR",
        "kind": "VARCHAR",
        "order_id": "VARCHAR",
        "channel": "VARCHAR",
        "amount": "DECIMAL(18,2)",
        "currency": "VARCHAR",
        "csat": "DOUBLE",
        "sentiment": "DOUBLE",
    },
    "identity_map": {
        "source": "VARCHAR",
        "source_kind": "VARCHAR",
        "source_record_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "confidence": "DOUBLE",
        "file": "VARCHAR",
        "row_number": "BIGINT",
    },
    "customer_ids": {"customer_id": "VARCHAR", "issued_at": "TIMESTAMP"},
    "id_redirects": {
        "old_customer_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "redirected_to": "VARCHAR",
        "reason": "VARCHAR",
        "redirected_at": "TIMESTAMP",
        "issued_at": "TIMESTAMP",
    },
    "removed_records": {
        "record": "VARCHAR",
        "customer_id": "VARCHAR",
        "issued_at": "TIMESTAMP",
        "removed_at": "TIMESTAMP",
    },
    "records": {
        "source": "VARCHAR",
        "source_kind": "VARCHAR",
        "source_record_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "name_suffix": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "street": "VARCHAR",
        "city": "VARCHAR",
        "postcode": "VARCHAR",
        "state": "VARCHAR",
        "country": "VARCHAR",
        "dob": "DATE",
        "gender": "VARCHAR",
        "national_id": "VARCHAR",
        "customer_key": "VARCHAR",
        "handle": "VARCHAR",
        "platform": "VARCHAR",
        "created_at": "TIMESTAMP",
    },
    "rejects": {
        "source": "VARCHAR",
        "file": "VARCHAR",
        "line": "BIGINT",
        "reason": "VARCHAR",
        "raw": "VARCHAR",
    },
}
LINKS_FIXED = {
    "left_source": "VARCHAR",
    "left_source_record_id": "VARCHAR",
    "right_source": "VARCHAR",
    "right_source_record_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "blocking_rule": "VARCHAR",
    "forced": "BOOLEAN",
    "match_weight": "DOUBLE",
    "match_probability": "DOUBLE",
    "kept": "BOOLEAN",
    "guard": "VARCHAR",
    "above_threshold": "BOOLEAN",
}


def _schema(path: Path) -> dict[str, str]:
    return {row[0]: row[1] for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_columns_and_types(sample_out: Path, name: str):
    assert _schema(sample_out / f"{name}.parquet") == CONTRACT[name]


def test_links_columns(sample_out: Path):
    schema = _schema(sample_out / "links.parquet")
    assert {k: schema[k] for k in LINKS_FIXED} == LINKS_FIXED
    per_field = [c for c in schema if c not in LINKS_FIXED]
    assert per_field and all(re.fullmatch(r"(gamma|weight)_[a-z_]+", c) for c in per_field)


def test_every_contract_column_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for columns in [*CONTRACT.values(), LINKS_FIXED]:
        for column in columns:
            if column.endswith("_provenance"):
                assert "| &lt;field&gt;_provenance |" in readme and f"`{column}`" in readme
                continue
            assert (
                f"| {column} |" in readme or f"{column}," in readme or f"| {column}, " in readme
            ), column


def test_run_json_accounts_for_every_row(sample_out: Path):
    run = json.loads((sample_out / "run.json").read_text())
    counts = run["counts"]
    assert counts["rows_in"] == counts["rows_mapped"] + counts["rows_rejected"]
    assert counts["balanced"] is True
    assert sum(f["rows"] for f in run["inputs"]) == counts["rows_in"]
    identity = duckdb.sql(f"SELECT count(*) FROM '{sample_out}/identity_map.parquet'").fetchall()[0]
    assert identity == (counts["rows_mapped"],)
    for item in run["inputs"]:
        assert len(item["sha256"]) == 64 and item["bytes"] > 0
    assert set(run["stages_seconds"]) >= {"ingest", "standardize", "block", "score", "write"}
    assert run["model"]["converged"] is True
    assert counts["touchpoints"] == counts["rows_mapped"]
    assert run["as_of"] == "2026-10-31T21:53:25"  # the newest timestamp in the sample
    assert run["matching"] == {"threshold": 0.9, "links_floor": 0.01}


def test_every_run_json_key_is_documented_in_the_readme(sample_out: Path):
    """A key run.json gained (pii_key_check) was read by scripts that learnt of it nowhere."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### `run.json`")[1].split("\n### ")[0]
    run = json.loads((sample_out / "run.json").read_text())
    assert [key for key in run if f"`{key}`" not in section] == []
    assert run["pii_hashed"] is False and run["pii_key_check"] is None


def test_run_json_records_the_digest_of_each_output_and_its_own(sample_out: Path):
    """What the next run checks the files it reads by (a Parquet page carries no checksum)."""
    run = json.loads((sample_out / "run.json").read_text())
    assert sorted(run["outputs"]) == sorted(p.stem for p in sample_out.glob("*.parquet"))
    for name, written in run["outputs"].items():
        path = sample_out / f"{name}.parquet"
        assert written["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), name
        assert duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall() == [(written["rows"],)]
    assert run["outputs"]["identity_map"]["rows"] == run["counts"]["identity_map_rows"]
    body = {key: value for key, value in run.items() if key != "sha256"}
    assert run["sha256"] == hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def test_links_hold_links_and_near_misses(sample_out: Path):
    run = json.loads((sample_out / "run.json").read_text())
    path = sample_out / "links.parquet"
    above, kept, refused, below_floor, misflagged = duckdb.sql(
        f"""
        SELECT count(*) FILTER (above_threshold), count(*) FILTER (kept),
               count(*) FILTER (above_threshold AND NOT kept),
               count(*) FILTER (match_probability < 0.01),
               count(*) FILTER (above_threshold <> (match_probability >= 0.9))
        FROM '{path}'
        """
    ).fetchall()[0]
    assert above == run["counts"]["links"]
    assert refused == run["counts"]["links_refused_by_guards"]
    assert kept == above - refused
    assert (below_floor, misflagged) == (0, 0)
    total = duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
    assert total > above  # near misses are there for the precision/recall curve


def test_records_match_the_identity_map(sample_out: Path):
    query = "SELECT source, source_record_id, customer_id FROM '{}' ORDER BY ALL"
    assert (
        duckdb.sql(query.format(sample_out / "records.parquet")).fetchall()
        == duckdb.sql(query.format(sample_out / "identity_map.parquet")).fetchall()
    )


def test_duckdb_file_has_a_view_per_output_from_any_directory(
    sample_out: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect(str(sample_out / "cxunify.duckdb"), read_only=True)
    views = {
        row[0]
        for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    assert views == {
        "profiles", "identity_map", "links", "records", "rejects", "touchpoints", "customer_ids",
        "id_redirects", "removed_records",
    }  # fmt: skip
    for view in views:
        con.execute(f"SELECT count(*) FROM {view}").fetchone()
    con.close()


def test_duckdb_file_opens_in_duckdb_1(sample_out: Path):
    """DuckDB 2 writes its own storage format by default, which no DuckDB 1.x opens ('Trying
    to read a database file with version number 69, but we can only read versions between 64
    and 68'): the file is in DuckDB 1.0's format (64), in its header after the magic bytes."""
    header = (sample_out / "cxunify.duckdb").read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64


def test_customer_ids_are_stable_across_reruns(cli, sample_out: Path, tmp_path: Path):
    again = tmp_path / "again"
    result = cli("unify", "--config", ROOT / "configs" / "sample.yaml", "--out", again, "-q")
    assert result.exit_code == 0
    query = (
        "SELECT source, source_record_id, customer_id FROM '{}/identity_map.parquet' ORDER BY ALL"
    )
    assert (
        duckdb.sql(query.format(sample_out)).fetchall()
        == duckdb.sql(query.format(again)).fetchall()
    )


def test_rows_naming_nobody_or_only_junk_are_customers_of_their_own(cli, tmp_path: Path):
    """Tickets holding only a subject and a date were identical in every identity field, so
    one identity: one customer of everyone's anonymous tickets. So were tickets whose only
    value is a junk email or phone (the shop's own address, blocklisted; a hotel's front desk,
    on more records than the limit; 0000000000), the value blanked only after the collapse.
    Each is a customer of its own, linked to nothing; a ticket of a name and a junk email is
    one identity with the tickets of that name alone; the others match as without them."""
    write(
        tmp_path / "crm.csv",
        "id,first_name,last_name,email,phone\n"
        "1,Ann,Lee,ann.lee@mailbox.org,+1 617 555 0101\n"
        "2,Bob,Ray,bob.ray@mailbox.org,+1 617 555 0102\n",
    )
    named = "t4,Thanks,2024-03-21,ann.lee@mailbox.org,,\nn1,Hi,2024-03-22,{},Cy Dunn,\n"
    named += "n2,Hello,2024-03-23,,Cy Dunn,\n"
    anonymous = "t1,Refund please,2024-01-05,,,\nt2,Parcel,2024-02-11,,,\nt3,Login,2024-03-20,,,\n"
    junk = "j1,Order,2024-04-01,orders@myshop.com,,\nj2,Order,2024-04-02,orders@myshop.com,,\n"
    junk += "j3,Call,2024-04-03,,,0000000000\nj4,Call,2024-04-04,,,000-000-0000\n"
    junk += "".join(f"j{n},Room,2024-04-0{n},frontdesk@grandhotel.com,,\n" for n in (5, 6, 7))
    header = "ticket_id,subject,created_at,email,name,phone\n"
    write(tmp_path / "tickets.csv", header + anonymous + junk + named.format("orders@myshop.com"))
    write(tmp_path / "named.csv", header + named.format(""))
    config = """sources:
  - {name: crm, kind: crm, path: crm.csv, id: id,
     columns: {first_name: first_name, last_name: last_name, email: email, phone: phone}}
  - {name: tickets, kind: support, path: TICKETS, id: ticket_id,
     columns: {subject: subject, created_at: created_at, email: email, full_name: name,
               phone: phone}}
matching: {blocklist: [orders@myshop.com], max_records_per_value: 2}
"""
    outs = {}
    for tickets in ("tickets.csv", "named.csv"):
        path = write(tmp_path / f"{tickets}.yaml", config.replace("TICKETS", tickets))
        outs[tickets] = tmp_path / tickets.removesuffix(".csv")
        result = cli("unify", "--config", path, "--out", outs[tickets], "-q")
        assert result.exit_code == 0, result.stderr
    out = outs["tickets.csv"]
    rows = duckdb.sql(
        f"SELECT source_record_id, customer_id, confidence FROM '{out}/identity_map.parquet' "
        "ORDER BY source, source_record_id"
    ).fetchall()
    ids = {record: customer for record, customer, _ in rows}
    alone = ["t1", "t2", "t3", *(f"j{n}" for n in range(1, 8))]
    assert len({ids[t] for t in alone} | {ids["1"], ids["2"], ids["n1"]}) == 13
    assert ids["t4"] == ids["1"]
    assert ids["n1"] == ids["n2"]
    confidence = {record: value for record, _, value in rows}
    assert [confidence[t] for t in alone] == [None] * 10  # each stands alone
    assert confidence["n1"] == confidence["n2"] == 1  # one identity
    counts = json.loads((out / "run.json").read_text())["counts"]
    assert (counts["customers"], counts["profiles"], counts["nodes"]) == (13, 13, 14)
    assert (counts["junk_emails"], counts["balanced"]) == (2, True)
    # Rows naming nobody, or only junk, are no part of the model, and a name beside a junk
    # email is the name alone: the links score as without them.
    link = "SELECT match_probability, match_weight FROM '{}/links.parquet' ORDER BY ALL"
    assert (
        duckdb.sql(link.format(out)).fetchall()
        == duckdb.sql(link.format(outs["named.csv"])).fetchall()
    )


def _readme_columns(name: str) -> list[tuple[str, str, str]]:
    """(column, type, meaning) of each row of the README's table for `name`.parquet, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"### `{name}.parquet`", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \| (.*) \|$", section, re.MULTILINE)
    return [row for row in rows if row[0] != "column" and not row[0].startswith("---")]


@pytest.mark.parametrize("name", [*sorted(CONTRACT), "links"])
def test_the_readme_lists_each_outputs_columns_in_order_with_their_types(
    sample_out: Path, name: str
):
    """A reader of the README's tables writes `SELECT *` and positional code against them:
    touchpoints' table had order_id and channel the other way round."""
    actual = [
        (column, kind.replace('"', ""))
        for column, kind in _schema(sample_out / f"{name}.parquet").items()
    ]
    expected: list[tuple[str, str]] = []
    patterns: list[tuple[str, str]] = []  # per-field columns (links' gamma_<field>, ...)
    for column, kind, meaning in _readme_columns(name):
        column = column.replace("&lt;", "<").replace("&gt;", ">")
        if column.startswith("<field>"):  # profiles' provenance: the fields are named
            named = re.findall(r"`(\w+" + re.escape(column[len("<field>") :]) + r")`", meaning)
            expected += [(c, kind) for c in named]
        elif "<field>" in column:
            patterns.append((column.replace("<field>", "[a-z_]+"), kind))
        else:
            expected += [(c.strip(), kind) for c in column.split(",")]
    assert actual[: len(expected)] == expected
    rest = actual[len(expected) :]
    assert all(any(re.fullmatch(p, c) and k == t for p, t in patterns) for c, k in rest), rest
    assert bool(rest) == bool(patterns)


def test_confidence_counts_only_links_that_joined_the_record(sample_out: Path):
    """A link a merge guard refused counted: a contact split off its namesake, a customer of
    one record, had confidence 0.99998, and a review filtering on confidence skipped exactly
    the records split off. No link touching them joined them to anything."""
    identity = f"'{sample_out}/identity_map.parquet'"
    links = f"'{sample_out}/links.parquet'"
    alone = _rows(
        f"SELECT count(*), count(i.confidence) FROM {identity} i "
        f"JOIN (SELECT customer_id FROM {identity} GROUP BY ALL HAVING count(*) = 1) "
        "USING (customer_id)"
    )
    refused = _rows(f"SELECT count(*) FROM {links} WHERE above_threshold AND NOT kept")[0][0]
    assert refused > 0 and alone[0][0] > 0 and alone[0][1] == 0, (refused, alone)
    # Every confidence below 1 is the probability of a kept link of the record's customer.
    unexplained = _rows(
        f"""
        SELECT count(*) FROM {identity} i
        WHERE i.confidence < 1 AND NOT EXISTS (
            SELECT 1 FROM {links} l
            WHERE l.kept AND l.customer_id = i.customer_id
              AND l.match_probability = i.confidence)
        """
    )
    assert unexplained == [(0,)]


def _rows(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()
