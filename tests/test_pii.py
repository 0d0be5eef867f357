"""output.hash_pii: personal values in the outputs are keyed digests; nothing else changes."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, SAMPLE, write

KEY = "test-key-not-secret"
HEX = re.compile(r"^[0-9a-f]{64}$")


def digest(value: object) -> str:
    return hashlib.sha256(f"{KEY}\x1f{value}".encode()).hexdigest()


def _config(tmp_path: Path, output: str = "output:\n  hash_pii: true\n") -> Path:
    text = (ROOT / "configs" / "sample.yaml").read_text().replace("../sample_data/", f"{SAMPLE}/")
    return write(tmp_path / "hashed.yaml", text + "\n" + output)


@pytest.fixture(scope="module")
def hashed_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from cxunify.cli import app

    folder = tmp_path_factory.mktemp("pii")
    out = folder / "out"
    result = CliRunner().invoke(
        app,
        ["unify", "--config", str(_config(folder)), "--out", str(out), "-q"],
        env={"CXUNIFY_PII_KEY": KEY},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    return out


def _rows(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()


def test_records_hold_digests_of_the_standardised_values(hashed_out: Path, sample_out: Path):
    fields = ("first_name", "last_name", "email", "phone", "street", "dob", "national_id",
              "customer_key", "handle")  # fmt: skip
    query = "SELECT source, source_record_id, {} FROM '{}/records.parquet' ORDER BY 1, 2"
    plain = _rows(query.format(", ".join(fields), sample_out))
    hashed = _rows(query.format(", ".join(fields), hashed_out))
    assert [r[:2] for r in plain] == [r[:2] for r in hashed]
    checked = 0
    for before, after in zip(plain, hashed, strict=True):
        for value, hashed_value in zip(before[2:], after[2:], strict=True):
            assert hashed_value == (None if value is None else digest(value))
            checked += value is not None
    assert checked > 30_000
    # What is not personal is kept as it was; the customers are the same, of other ids.
    kept = "SELECT source, source_record_id, {}, city, postcode, state, country, " \
           "name_suffix, gender, platform, created_at FROM '{}/records.parquet' r " \
           "ORDER BY 1, 2"  # fmt: skip
    assert _rows(kept.format(_plain_id(hashed_out, sample_out), hashed_out)) == _rows(
        kept.format("customer_id", sample_out)
    )


def _plain_id(hashed_out: Path, sample_out: Path, alias: str = "r") -> str:
    """SQL: the id the plain run gave the customer of `alias` in the hashed run's output,
    one for one (the same customers, each of an id of its own)."""
    pairs = _rows(
        f"SELECT DISTINCT h.customer_id, p.customer_id FROM '{hashed_out}/identity_map.parquet' h "
        f"JOIN '{sample_out}/identity_map.parquet' p USING (source, source_record_id)"
    )
    assert len({h for h, _ in pairs}) == len({p for _, p in pairs}) == len(pairs)
    cases = " ".join(f"WHEN '{h}' THEN '{p}'" for h, p in pairs)
    return f"CASE {alias}.customer_id {cases} END AS customer_id"


def test_ids_and_removed_records_are_keyed_digests(hashed_out: Path, cli, tmp_path, monkeypatch):
    """A customer id is made from its smallest source and source id, and removed_records
    names a record that left by a digest of them: unkeyed, whoever held the output could
    confirm a guessed source id of an erased person (a handle, a CRM number) by hashing
    it. With hash_pii they are the key's digests."""
    members = _rows(
        f"SELECT customer_id, min(source || chr(31) || source_record_id) "
        f"FROM '{hashed_out}/identity_map.parquet' GROUP BY 1"
    )
    assert len(members) > 2000
    for customer_id, member in members:
        assert customer_id == "c_" + digest(member)[:16]
        assert customer_id != "c_" + hashlib.sha256(member.encode()).hexdigest()[:16]
    # A contact that leaves the exports (an erasure upstream) is named by the keyed digest,
    # and gets its id back when it returns.
    monkeypatch.setenv("CXUNIFY_PII_KEY", KEY)
    crm = write(tmp_path / "crm.csv", "id,email,first_name\nann.g,ann@gmail.com,Ann\n")
    write(tmp_path / "orders.csv", "order_id,email,amount\no1,bob@gmail.com,3\n")
    config = write(
        tmp_path / "cfg.yaml",
        "sources:\n"
        "  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email, "
        "first_name: first_name}}\n"
        "  - {name: shop, kind: transactions, path: orders.csv, id: order_id, "
        "columns: {email: email, amount: amount}}\n"
        "output:\n  hash_pii: true\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    [(ann,)] = _rows(f"SELECT customer_id FROM '{out}/identity_map.parquet' WHERE source = 'crm'")
    assert ann == "c_" + digest("crm\x1fann.g")[:16]
    crm.write_text("id,email,first_name\n")
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert _rows(f"SELECT record, customer_id FROM '{out}/removed_records.parquet'") == [
        (digest("crm\x1fann.g"), ann)
    ]
    crm.write_text("id,email,first_name\nann.g,ann@gmail.com,Ann\n")
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert _rows(f"SELECT customer_id FROM '{out}/identity_map.parquet' WHERE source = 'crm'") == [
        (ann,)
    ]


def test_profiles_hold_digests_and_the_same_customers_and_traits(hashed_out, sample_out):
    personal = ("first_name", "last_name", "email", "phone", "street", "dob", "emails", "phones",
                "addresses", "handles", "handles_by_platform")  # fmt: skip
    # The same customers, each of another id (see test_ids_and_removed_records_are_keyed_...).
    # Means of doubles may differ in the last bit between runs: compared to 9 decimals.
    rest = (
        "SELECT * EXCLUDE ({}, csat_mean, sentiment_mean, experience_score) REPLACE ({}), "
        "round(csat_mean, 9), round(sentiment_mean, 9), round(experience_score, 9) "
        "FROM '{}/profiles.parquet' p ORDER BY customer_id"
    )
    columns = ", ".join(personal)
    plain_id = _plain_id(hashed_out, sample_out, "p")
    assert _rows(rest.format(columns, plain_id, hashed_out)) == _rows(
        rest.format(columns, "customer_id AS customer_id", sample_out)
    )
    query = "SELECT {} FROM '{}/profiles.parquet' p ORDER BY {}"
    for before, after in zip(
        _rows(query.format(columns, sample_out, "customer_id")),
        _rows(query.format(columns, hashed_out, plain_id.removesuffix(" AS customer_id"))),
        strict=True,
    ):
        for name, value, hashed_value in zip(personal, before, after, strict=True):
            if name == "handles_by_platform":
                expected = value and {k: [digest(h) for h in v] for k, v in value.items()}
            elif isinstance(value, list):
                expected = [digest(v) for v in value]
            else:
                expected = None if value is None else digest(value)
            assert hashed_value == expected, name
    schema = dict(_rows(f"SELECT column_name, column_type FROM (DESCRIBE "
                        f"SELECT * FROM '{hashed_out}/profiles.parquet')"))  # fmt: skip
    assert schema["dob"] == "VARCHAR" and schema["emails"] == "VARCHAR[]"


def test_no_output_file_holds_a_raw_personal_value(hashed_out: Path, sample_out: Path):
    emails = {e for (e,) in _rows(f"SELECT email FROM '{sample_out}/records.parquet' "
                                 "WHERE email IS NOT NULL")}  # fmt: skip
    assert len(emails) > 1000
    found = set()
    for path in sorted(hashed_out.rglob("*.parquet")):
        for (text,) in _rows(f"SELECT to_json(t)::VARCHAR FROM '{path}' t"):
            found.update(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text))
    assert not found & emails
    assert not (hashed_out / "state").exists()  # state/ keeps raw values: not written
    raw = _rows(f"SELECT raw FROM '{hashed_out}/rejects.parquet'")
    plain = _rows(f"SELECT raw FROM '{sample_out}/rejects.parquet'")
    assert len(raw) == len(plain) > 0 and all(HEX.match(r) for (r,) in raw)


def test_an_update_of_a_hashed_output_says_it_needs_a_full_run(cli, hashed_out, tmp_path):
    """It said the output "has no update state ... run a full `cxunify unify` first", and a
    full hashed run writes none either: the advice went round in a circle."""
    crm = write(tmp_path / "crm.csv", "contact_id,first_name,email\nN1,Ann,ann@fastmail.com\n")
    result = cli("update", "--previous", hashed_out, "--crm", crm, "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        f"Error: {hashed_out}: its personal values are hashed (output.hash_pii), so it keeps "
        "no plain records for tonight's to be linked against: a hashed output is replaced by "
        "a full `cxunify unify` each run, not updated"
    )
    assert json.loads((hashed_out / "run.json").read_text())["pii_hashed"] is True
    assert not (tmp_path / "o").exists()


def test_hashing_needs_a_key_and_no_state(cli, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CXUNIFY_PII_KEY", raising=False)
    result = cli("unify", "--config", _config(tmp_path), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: output.hash_pii needs a secret key in the environment variable "
        "CXUNIFY_PII_KEY (the same key gives the same digests in every run)\n"
    )
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("CXUNIFY_PII_KEY", KEY)
    config = _config(tmp_path, "output:\n  hash_pii: true\n  state: true\n")
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {config}: output: hash_pii: state/ would keep the raw values an update "
        "compares; set state: false (hashed outputs are replaced by full runs, not updated)\n"
    )


# Exports whose values the warnings of a plain run quote: a created_at column holding an email
# and a phone, a csat word, a line's id repeated on an order read from another row, an order
# held by two sources, an amount naming another currency than its column.
HASHED_WARNINGS_CONFIG = """\
sources:
  - {name: tickets, kind: support, path: tickets.csv, id: ticket_id,
     columns: {email: email, created_at: created_at, csat: csat, subject: subject}}
  - {name: lines, kind: transactions, path: lines.csv, id: line_id,
     columns: {order_id: order_id, email: email, amount: amount, created_at: ordered_at}}
  - {name: shop, kind: transactions, path: shop.csv, id: txn,
     columns: {order_id: order_id, email: email, amount: amount, currency: currency,
               created_at: ordered_at}}
profile:
  currency: {base: USD, rates: {EUR: 1.1}}
output:
  hash_pii: true
"""
RAW_IN_WARNINGS = ("zebulon", "quixmail", "617-253-1234", "ZQORD4242", "ZQTXN888")


def _hashed_warnings_exports(folder: Path, gates: str = "") -> Path:
    write(
        folder / "tickets.csv",
        "ticket_id,email,created_at,csat,subject\n"
        "T1,ann@mail.com,zebulon.quixote@quixmail.net 617-253-1234,Meh-Zebulon,Late\n"
        "T2,bob@mail.com,2025-01-02 09:00,n/a,Fine\n",
    )
    write(
        folder / "lines.csv",
        "line_id,order_id,email,amount,ordered_at\n"
        "L1,ZQORD4242,ann@mail.com,20.00,2025-01-01\n"
        # (a line of the order under the same line id: a copy of the row whole is a
        # duplicate, rejected without the warning)
        "L1,ZQORD4242,ann@mail.com,5.00,2025-01-01\n",
    )
    write(
        folder / "shop.csv",
        "txn,order_id,email,amount,currency,ordered_at\n"
        "S1,ZQORD4242,ann@mail.com,20.00,USD,2025-01-01\n"
        "ZQTXN888,O2,bob@mail.com,9.00 EUR,USD,2025-01-03\n",
    )
    return write(folder / "hashed.yaml", HASHED_WARNINGS_CONFIG + gates)


def test_hashed_warnings_quote_no_value_of_the_exports(cli, tmp_path: Path, monkeypatch):
    """Under output.hash_pii the warnings quoted the values they were about (a created_at
    value holding an email and a phone, a csat word, an order id, a record id) in the clear,
    on stderr, in run.json and in --json, also in the folder a failed gate sets aside. They
    name the source, column and count alone."""
    monkeypatch.setenv("CXUNIFY_PII_KEY", KEY)
    config = _hashed_warnings_exports(tmp_path, "gates:\n  max_reject_rate: 0\n")
    out = tmp_path / "out"
    stopped = cli("unify", "--config", config, "--out", out, "--json", "-q")
    assert stopped.exit_code == 3, stopped.stderr
    # (the next run, passing, removes the folder set aside)
    aside = (tmp_path / "out.rejected" / "run.json").read_text()
    config.write_text(HASHED_WARNINGS_CONFIG)
    result = cli("unify", "--config", config, "--out", out, "--json", "-q")
    assert result.exit_code == 0, result.stderr
    warnings = [
        "source 'lines': 1 row rejected for its id in 'line_id' belongs to orders read from "
        "another row, as an export of one row per line item writes them; rows sharing an "
        "order_id are one order: to keep these rows, leave `id` out (rows are then named by "
        "their order and their place in it: #1001/2) or set it to a column unique per row",
        "sources 'lines' and 'shop' hold 1 order alike (order id and amount), counted once "
        "in each: if they are overlapping exports of one system, read them as one source (a "
        "glob in its path; without a config, NAME=PATTERN: --transactions "
        "'orders=orders_*.csv'), where rows sharing an order id are one order",
        "source 'tickets': 1 of its 2 created_at values are not read as times and left empty "
        "(the README's profiles.parquet section says which formats, zones and years are read)",
        "source 'tickets': its only csat value is not read as a rating and left empty (the "
        "README's profiles.parquet section says which numbers and words are ratings)",
        "1 order whose amount names another currency than its currency column (source "
        "'shop') is left out of the figures converted into USD (revenue, avg_order_value, "
        "rfm_m) and kept under XXX in revenue_by_currency and touchpoints; correct the "
        "export to count them",
    ]
    for run, manifest in ((stopped, aside), (result, (out / "run.json").read_text())):
        for text in (run.stdout, run.stderr, manifest):
            assert not [raw for raw in RAW_IN_WARNINGS if raw.lower() in text.lower()]
        assert json.loads(manifest)["warnings"] == warnings
        assert json.loads(run.stdout)["warnings"] == warnings
        assert " ".join(run.stderr.split()).count("Warning: ") == len(warnings)


def test_a_customer_key_is_hashed_in_every_output_and_in_explain(cli, tmp_path, monkeypatch):
    """A loyalty number (customer_key) stayed in the clear in records.parquet, and so in
    `cxunify explain`, of a hashed run: it is the customer's own, as an email is. Gender is
    kept, as the README says."""
    monkeypatch.setenv("CXUNIFY_PII_KEY", KEY)
    write(
        tmp_path / "crm.csv",
        "contact_id,first_name,email,loyalty_id,gender\n"
        "C1,Ann,ann@mail.com,LOY-998877,F\n"
        "C2,Bob,bob@mail.com,LOY-554433,M\n",
    )
    config = write(
        tmp_path / "c.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: contact_id,\n"
        "     columns: {first_name: first_name, email: email, customer_key: loyalty_id,\n"
        "               gender: gender}}\noutput:\n  hash_pii: true\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", config, "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    assert _rows(
        f"SELECT customer_key, gender FROM '{out}/records.parquet' ORDER BY source_record_id"
    ) == [(digest("LOY-998877"), "f"), (digest("LOY-554433"), "m")]
    for path in sorted(out.rglob("*.parquet")):
        for (text,) in _rows(f"SELECT to_json(t)::VARCHAR FROM '{path}' t"):
            assert "LOY-" not in text, path
    assert "LOY-" not in (out / "run.json").read_text()
    for shown in (("crm:C1",), ("crm:C1", "--json")):
        explained = cli("explain", *shown, "--out", out)
        assert explained.exit_code == 0, explained.stderr
        assert digest("LOY-998877")[:8] in explained.stdout
        assert "LOY-" not in explained.stdout + explained.stderr


def test_a_change_of_key_or_of_hashing_is_warned_of(cli, tmp_path: Path, monkeypatch):
    """A run hashed with another key than the previous output's changed every digest, and
    the joins of downstream tables on them stopped matching without a word; so did a run
    that began or stopped hashing. run.json records a check of the key (a digest of a fixed
    text, never the key) by which the next run tells; a short key is warned of."""
    write(tmp_path / "crm.csv", "id,email\n1,ann@gmail.com\n2,bob@gmail.com\n")
    plain = write(
        tmp_path / "plain.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email}}\n",
    )
    hashed = write(tmp_path / "hashed.yaml", plain.read_text() + "output:\n  hash_pii: true\n")
    out = tmp_path / "out"

    def run(config: Path, key: str | None) -> list[str]:
        """The run's warnings, the same on stderr, in --json and in run.json."""
        if key is None:
            monkeypatch.delenv("CXUNIFY_PII_KEY", raising=False)
        else:
            monkeypatch.setenv("CXUNIFY_PII_KEY", key)
        result = cli("unify", "--config", config, "--out", out, "--json", "-q")
        assert result.exit_code == 0, result.stderr
        manifest = json.loads((out / "run.json").read_text())
        assert manifest["pii_key_check"] == (
            None
            if key is None
            else hashlib.sha256(f"{key}\x1fcxunify key check".encode()).hexdigest()
        )
        assert json.loads(result.stdout)["warnings"] == manifest["warnings"]
        assert result.stderr == "".join(f"Warning: {w}\n" for w in manifest["warnings"])
        if key is not None:
            assert key not in (out / "run.json").read_text() + result.stdout + result.stderr
        return manifest["warnings"]

    other = "another-key-not-secret"
    assert run(plain, None) == []
    assert run(hashed, KEY) == [
        f"the previous output ({out}) holds the personal values in the clear and this one "
        "their digests (output.hash_pii): joins on those columns between the two, or with "
        "tables loaded from the previous one, will not match"
    ]
    assert run(hashed, KEY) == []
    assert run(hashed, other) == [
        f"CXUNIFY_PII_KEY is not the key the previous output ({out}) was hashed with: every "
        "digest changed, and joins on the previous output's digests (tables loaded from it) "
        "will not match this one's; if the key changed by mistake, run again with the "
        "previous one"
    ]
    assert run(plain, None) == [
        f"the previous output ({out}) holds digests of the personal values (output.hash_pii) "
        "and this one the values in the clear: joins on those columns between the two, or "
        "with tables loaded from the previous one, will not match"
    ]
    assert run(hashed, "0123456789abcde") == [
        "CXUNIFY_PII_KEY is shorter than 16 characters: whoever holds the digest of a value "
        "they know (their own email) can find a short key by trying keys, and with it every "
        "value; use a long random one (openssl rand -hex 32)",
        f"the previous output ({out}) holds the personal values in the clear and this one "
        "their digests (output.hash_pii): joins on those columns between the two, or with "
        "tables loaded from the previous one, will not match",
    ]
