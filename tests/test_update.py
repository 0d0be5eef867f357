"""Incremental update: the result equals a full run on all the data with the same model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from cxunify import update
from cxunify.config import Config
from tests.conftest import ROOT, SAMPLE, write

SAMPLE_CONFIG = ROOT / "configs" / "sample.yaml"


def partition(out: Path) -> set[frozenset[str]]:
    """Customers as sets of records, whatever their ids."""
    rows = duckdb.sql(
        f"SELECT list(source || ':' || source_record_id) FROM '{out}/identity_map.parquet' "
        "GROUP BY customer_id"
    ).fetchall()
    return {frozenset(members) for (members,) in rows}


def _config_for(crm: Path, sources: str = "all") -> str:
    text = SAMPLE_CONFIG.read_text().replace("../sample_data/", f"{SAMPLE}/")
    text = text.replace(f"{SAMPLE}/crm.csv", str(crm))
    if sources == "crm":
        crm_block = text[text.index("  - name: crm") : text.index("  - name: orders")]
        text = "sources:\n" + crm_block + text[text.index("standardize:") :]
    return text


NAMING_NOBODY = [f"X{n},,,,,,,TX,,USA,,2024-0{n}-01T00:00:00Z,L{n}" for n in range(1, 5)]
# Contacts whose only value is a hotel's front desk address, and one of a name and that address
# (G1) beside the same name alone (G2): 3 such addresses stored and 2 tonight.
FRONT_DESK = [f"F{n},,,frontdesk@grandhotel.com,,,,,,,,2024-0{n}-01T00:00:00Z," for n in (1, 2, 3)]
FRONT_DESK_TONIGHT = [
    "F4,,,frontdesk@grandhotel.com,,,,,,,,2024-04-01T00:00:00Z,",
    "G1,Quentin,Halloway,frontdesk@grandhotel.com,,,,,,,,2024-05-01T00:00:00Z,",
]
NAME_ALONE = "G2,Quentin,Halloway,,,,,,,,,2024-06-01T00:00:00Z,"


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory):
    """Night one: CRM without 2% of its rows. Night two: those rows, and one contact whose
    email changed. `full` is a full run on night two's data with night one's model. Each night
    brings two contacts naming nobody (a state, a country, a date and a loyalty number), and
    contacts whose only value is one email (see FRONT_DESK)."""
    from typer.testing import CliRunner

    from cxunify.cli import app

    folder = tmp_path_factory.mktemp("nights")
    head, *rows = (SAMPLE / "crm.csv").read_text().splitlines()
    late = [r for i, r in enumerate(rows) if i % 50 == 3] + NAMING_NOBODY[2:] + FRONT_DESK_TONIGHT
    early = [r for i, r in enumerate(rows) if i % 50 != 3] + NAMING_NOBODY[:2]
    early += [*FRONT_DESK, NAME_ALONE]
    changed = early[10].split(",")
    changed[3] = "someone.else@fastmail.com"  # the email column
    changed = ",".join(changed)
    write(folder / "crm1.csv", "\n".join([head, *early]) + "\n")
    write(folder / "crm_new.csv", "\n".join([head, *late, changed]) + "\n")
    all_rows = [changed if r == early[10] else r for r in early] + late
    write(folder / "crm_all.csv", "\n".join([head, *all_rows]) + "\n")
    configs = {
        name: write(folder / f"{name}.yaml", _config_for(folder / crm, scope))
        for name, crm, scope in (
            ("night1", "crm1.csv", "all"),
            ("delta", "crm_new.csv", "crm"),
            ("all", "crm_all.csv", "all"),
        )
    }
    cli = CliRunner()

    def run(*args) -> dict:
        result = cli.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args else {}

    # Night one fits the model (as `train` would: the same EM on the same rows) and keeps it in
    # its state; `out` is a copy of night one, updated in place.
    run("unify", "--config", configs["night1"], "--out", folder / "night1")
    model = folder / "model.json"
    shutil.copyfile(folder / "night1" / "state" / "model.json", model)
    shutil.copytree(folder / "night1", folder / "out")
    summary = run("update", "--previous", folder / "out", "--config", configs["delta"], "--json")
    run("unify", "--config", configs["all"], "--model", model, "--out", folder / "full")
    return folder, summary, len(late) + 1


def test_incremental_equals_a_full_run(nights):
    folder, summary, new_rows = nights
    assert partition(folder / "out") == partition(folder / "full")
    assert summary["update"]["records_added_or_changed"] == new_rows
    assert 0 < summary["update"]["pairs_compared"] < summary["counts"]["candidate_pairs"] / 10
    assert summary["update"]["nodes_reblocked_for_block_size"] == 0
    # most customers' records did not change: their golden records were copied, not rebuilt
    copied = summary["update"]["golden_records_copied"]
    assert summary["counts"]["customers"] * 0.8 < copied < summary["counts"]["customers"]
    # tonight's rows hold no text: every sentiment is the stored one, and equals a full run's
    assert summary["update"]["sentiment_copied"] == summary["counts"]["texts_scored"] > 100
    sentiment = (
        "SELECT source, source_record_id, sentiment FROM '{}/touchpoints.parquet' ORDER BY ALL"
    )
    updated = duckdb.sql(sentiment.format(folder / "out")).fetchall()
    assert updated == duckdb.sql(sentiment.format(folder / "full")).fetchall()
    full = json.loads((folder / "full" / "run.json").read_text())["counts"]
    # every count describes the whole output, as a full run's does (emails_read counted only
    # tonight's rows)
    assert {k: v for k, v in summary["counts"].items() if v != full[k]} == {}
    assert summary["counts"]["emails_read"] > 1000


def test_golden_records_are_not_copied_across_a_change_of_the_code_that_picks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An update copies unchanged customers' golden records when the profile settings and
    the package version are the stored ones; the version stays the same from one commit to
    the next, so a new tie-break (slips of the keyboard) left the old golden values of every
    unchanged customer in place. The code of the modules that pick them counts too now."""
    package = Path(update.__file__).parent
    for name in update.PROFILED_BY:
        (tmp_path / name).write_bytes((package / name).read_bytes())
    assert update.profiled_code_digest(tmp_path) == update.profiled_code_digest()
    with (tmp_path / "profile.py").open("a") as changed:
        changed.write("# a new tie-break\n")
    assert update.profiled_code_digest(tmp_path) != update.profiled_code_digest()
    config = Config.model_validate({"sources": [{"name": "crm", "kind": "crm", "path": "c.csv",
                                                 "columns": {"email": "email"}}]})  # fmt: skip
    before = update.profile_digest(config)
    monkeypatch.setattr(update, "profiled_code_digest", lambda: "another")
    assert update.profile_digest(config) != before


def test_contacts_naming_nobody_are_customers_of_their_own_after_an_update(nights):
    """Tonight's contacts naming nobody were one identity with the stored ones, one customer
    of them all; each stands alone, in the update as in night one and a full run."""
    folder, _, _ = nights
    for out, contacts in (("night1", 2), ("out", 4), ("full", 4)):
        rows = duckdb.sql(
            f"SELECT source_record_id, m.customer_id, n_records, confidence "
            f"FROM '{folder / out}/identity_map.parquet' m "
            f"JOIN '{folder / out}/profiles.parquet' USING (customer_id) "
            "WHERE source_record_id LIKE 'X%' ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in rows] == [f"X{n}" for n in range(1, contacts + 1)], out
        assert len({r[1] for r in rows}) == contacts, out
        assert {r[2:] for r in rows} == {(1, None)}, out


def test_update_keeps_every_unaffected_id(nights):
    folder, summary, _ = nights

    def ids(out: Path) -> dict[tuple[str, str], str]:
        rows = duckdb.sql(
            f"SELECT source, source_record_id, customer_id FROM '{out}/identity_map.parquet'"
        ).fetchall()
        return {(s, r): c for s, r, c in rows}

    before, after = ids(folder / "night1"), ids(folder / "out")
    changed = {before[k] for k in before if after[k] != before[k]}
    assert len(changed) == summary["ids"]["customers_id_changed"] <= 10
    unaffected = {k: v for k, v in before.items() if v not in changed}
    assert {k: after[k] for k in unaffected} == unaffected


def test_changed_record_replaces_the_stored_one(nights):
    folder, _, _ = nights
    emails = duckdb.sql(
        f"SELECT list(DISTINCT e) FROM '{folder}/out/profiles.parquet', unnest(emails) t(e)"
    ).fetchall()[0][0]
    assert "someone.else@fastmail.com" in emails
    # Same customers with the same golden records (ids differ: the update carried them over).
    golden = "SELECT * EXCLUDE (customer_id) FROM '{}/profiles.parquet' ORDER BY ALL"
    updated = duckdb.sql(golden.format(folder / "out")).fetchall()
    assert updated == duckdb.sql(golden.format(folder / "full")).fetchall()


def test_update_needs_the_same_matching_settings(cli, nights, tmp_path: Path):
    folder, _, _ = nights
    text = (folder / "delta.yaml").read_text().replace("threshold: 0.9", "threshold: 0.8")
    config = write(
        tmp_path / "delta.yaml", text.replace("crm_new.csv", str(folder / "crm_new.csv"))
    )
    result = cli("update", "--previous", folder / "night1", "--config", config, "--out",
                 tmp_path / "out")  # fmt: skip
    assert result.exit_code == 1
    assert "standardisation or matching settings differ" in result.stderr
    assert not (tmp_path / "out").exists()


def test_update_of_a_folder_that_is_not_an_output(cli, tmp_path: Path, nights):
    folder, _, _ = nights
    result = cli("update", "--previous", tmp_path, "--config", folder / "delta.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path}: --previous is not a cxunify output folder"


def test_a_run_without_state_has_the_same_outputs_and_cannot_be_updated(cli, nights, tmp_path):
    folder, _, _ = nights
    config = write(
        tmp_path / "stateless.yaml",
        (folder / "night1.yaml").read_text() + "\noutput:\n  state: false\n",
    )
    out = tmp_path / "out"
    result = cli("unify", "--config", config, "--model", folder / "model.json", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert not (out / "state").exists()
    assert (folder / "night1" / "state" / "gammas" / "rows-00000.parquet").exists()
    # Sums of doubles may differ in the last bit between runs (DuckDB adds in thread order):
    # weights and the figures made from them are compared to 9 decimals.
    for name, columns in (
        ("identity_map", "source, source_record_id, customer_id, round(confidence, 9)"),
        ("records", "*"),
        ("profiles", "* EXCLUDE (csat_mean, sentiment_mean, experience_score)"),
        ("links", "left_source, left_source_record_id, right_source, right_source_record_id, "
                  "customer_id, kept, round(match_weight, 9)"),
    ):  # fmt: skip
        query = f"SELECT {columns} FROM '{{}}/{name}.parquet' ORDER BY ALL"
        same = duckdb.sql(query.format(out)).fetchall()
        assert same == duckdb.sql(query.format(folder / "night1")).fetchall(), name
    result = cli("update", "--previous", out, "--config", folder / "delta.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {out}: has no update state (it was written with `output.state: false` or by "
        "an older version); run a full `cxunify unify` first"
    )


def test_sigkill_during_an_update_leaves_the_output_intact(nights, tmp_path: Path):
    import shutil
    import signal
    import subprocess
    import sys
    import time

    folder, _, _ = nights
    out = tmp_path / "out"
    shutil.copytree(folder / "night1", out)
    before = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    command = [sys.executable, "-m", "cxunify", "update", "--previous", str(out),
               "--config", str(folder / "delta.yaml"), "-q"]  # fmt: skip
    run = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and run.poll() is None:
            staging = list(tmp_path.glob(".out.tmp-*"))
            if staging and list(staging[0].glob("*.parquet")):
                break
            time.sleep(0.005)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait()
    assert run.returncode == -signal.SIGKILL, "the update ended before the kill"
    assert {p.name: p.read_bytes() for p in out.glob("*.parquet")} == before
    assert (out / "state" / "state.json").is_file()
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert partition(out) == partition(folder / "out")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_the_nodes_of_a_block_crossing_the_size_limit_are_blocked_again():
    """Pairs of unchanged nodes stay as stored unless a new or changed node pushed their
    block over the size limit, or a gone one brought it back under: then the nodes of that
    block are blocked again, with the new and changed ones."""
    from cxunify import block
    from cxunify.engine import DuckDBEngine

    engine = DuckDBEngine()
    rule = [block.Rule(("last_name_std",))]
    engine.execute(
        "CREATE TABLE before AS SELECT * FROM (VALUES (1, 'lee'), (2, 'lee'), (3, 'ng')) "
        "t(node, last_name_std)"
    )

    def resized(now: list[tuple[int, str]], changed: list[int], limit: int = 2) -> list[int]:
        engine.execute(
            f"CREATE OR REPLACE TABLE {block.NODES} (node BIGINT, last_name_std VARCHAR)"
        )
        engine.con.executemany(f"INSERT INTO {block.NODES} VALUES (?, ?)", now)
        engine.execute("CREATE OR REPLACE TABLE again (node BIGINT)")
        changed_sql = f"SELECT unnest({changed or [0]}) AS node"
        block.nodes_of_resized_blocks(
            engine, rule, limit, "SELECT * FROM before", changed_sql, "again"
        )
        return [node for (node,) in engine.rows("SELECT node FROM again ORDER BY node")]

    assert resized([(1, "lee"), (2, "lee"), (3, "ng"), (4, "ng")], [4]) == []
    assert resized([(1, "lee"), (2, "lee"), (3, "ng"), (4, "lee")], [4]) == [1, 2, 4]
    assert resized([(1, "lee"), (3, "ng")], [2], limit=1) == [1]  # lee: 2 -> 1, back under
    assert resized([(1, "lee"), (2, "lee"), (3, "ng")], []) == []
    engine.close()


def test_an_update_across_block_size_limits_still_equals_a_full_run(nights, tmp_path: Path):
    """With a block-size limit so small that tonight's rows push blocks over it, the update
    blocks those blocks' nodes again, and still reaches the full run's customers."""
    from typer.testing import CliRunner

    from cxunify.cli import app

    folder, _, _ = nights
    cli = CliRunner()
    configs = {}
    for name in ("night1", "delta", "all"):
        text = (folder / f"{name}.yaml").read_text()
        configs[name] = write(
            tmp_path / f"{name}.yaml", text.replace("matching:", "matching:\n  max_block_size: 3")
        )

    def run(*args) -> dict:
        result = cli.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args else {}

    model = folder / "model.json"
    run("unify", "--config", configs["night1"], "--model", model, "--out", tmp_path / "out")
    summary = run("update", "--previous", tmp_path / "out", "--config", configs["delta"], "--json")
    run("unify", "--config", configs["all"], "--model", model, "--out", tmp_path / "full")
    assert summary["update"]["nodes_reblocked_for_block_size"] > 0
    assert partition(tmp_path / "out") == partition(tmp_path / "full")


def test_deleted_records_leave_as_if_never_read(nights, tmp_path: Path):
    """`update --delete`: the stored records named go, and the result is a full run's on the
    data without them (customers, golden records, counts); their values are gone from every
    output and from the state."""
    from typer.testing import CliRunner

    from cxunify.cli import app

    folder, _, _ = nights
    head, *rows = (folder / "crm1.csv").read_text().splitlines()
    # Contacts of customers with other records too, so customers shrink rather than vanish.
    linked = set(
        duckdb.sql(
            f"SELECT source_record_id FROM '{folder}/night1/identity_map.parquet' "
            "WHERE source = 'crm' AND customer_id IN (SELECT customer_id FROM "
            f"'{folder}/night1/identity_map.parquet' GROUP BY 1 HAVING count(*) > 2)"
        ).fetchnumpy()["source_record_id"]
    )
    gone = [r for r in rows if r.split(",")[0] in linked][:6]
    gone_ids = [r.split(",")[0] for r in gone]
    write(
        tmp_path / "erase.csv",
        "source,source_record_id\n" + "".join(f"crm,{i}\n" for i in gone_ids) + "crm,NOT-STORED\n",
    )
    write(tmp_path / "none.csv", head + "\n")
    write(tmp_path / "rest.csv", "\n".join([head, *(r for r in rows if r not in gone)]) + "\n")
    delta = write(tmp_path / "delta.yaml", _config_for(tmp_path / "none.csv", "crm"))
    rest = write(tmp_path / "rest.yaml", _config_for(tmp_path / "rest.csv"))
    cli = CliRunner()

    def run(*args) -> dict:
        result = cli.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args else {}

    out, full = tmp_path / "out", tmp_path / "full"
    summary = run("update", "--previous", folder / "night1", "--out", out, "--config", delta,
                  "--delete", tmp_path / "erase.csv", "--json")  # fmt: skip
    run("unify", "--config", rest, "--model", folder / "model.json", "--out", full)
    assert summary["update"]["records_deleted"] == len(gone) == 6
    assert summary["update"]["deletions_not_found"] == 1
    assert partition(out) == partition(full)
    golden = (
        "SELECT * EXCLUDE (customer_id, csat_mean, sentiment_mean, experience_score), "
        "round(csat_mean, 9), round(sentiment_mean, 9), round(experience_score, 9) "
        "FROM '{}/profiles.parquet' ORDER BY ALL"
    )
    assert duckdb.sql(golden.format(out)).fetchall() == duckdb.sql(golden.format(full)).fetchall()
    full_counts = json.loads((full / "run.json").read_text())["counts"]
    for count in ("rows_in", "rows_mapped", "rows_rejected", "nodes", "candidate_pairs", "links",
                  "customers"):  # fmt: skip
        assert summary["counts"][count] == full_counts[count], count
    for path in (out / "identity_map.parquet", out / "records.parquet",
                 out / "state" / "records" / "*.parquet"):  # fmt: skip
        found = duckdb.sql(
            f"SELECT count(*) FROM '{path}' WHERE source = 'crm' AND source_record_id IN "
            f"(SELECT unnest({gone_ids!r}))"
        ).fetchall()[0][0]
        assert found == 0, path


def test_deletions_that_clash_or_lack_columns_are_user_errors(cli, nights, tmp_path: Path):
    folder, _, _ = nights
    _, first, *_ = (folder / "crm_new.csv").read_text().splitlines()
    write(tmp_path / "bad.csv", "contact_id\nC1\n")
    write(tmp_path / "clash.csv", f"source,source_record_id\ncrm,{first.split(',')[0]}\n")
    write(tmp_path / "broken.csv", 'source,source_record_id\ncrm,"C1\n')
    for name, message in (
        ("bad.csv", "deletions need a header with source and source_record_id (it has contact_id)"),
        ("broken.csv", "cannot read as CSV ("),
        ("clash.csv", f"crm:{first.split(',')[0]} is both deleted and in tonight's exports"),
        ("missing.csv", "deletions file not found"),
    ):
        result = cli("update", "--previous", folder / "night1", "--out", tmp_path / "o",
                     "--config", folder / "delta.yaml", "--delete", tmp_path / name)  # fmt: skip
        assert result.exit_code == 1, name
        assert result.stderr.startswith(f"Error: {tmp_path / name}: {message}"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "o").exists()


def test_chained_updates_keep_deltas_that_read_as_the_whole_state(
    nights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two updates in a row add their records, identities and comparison levels to the stored
    state as deltas (the stored parts are linked, not written again, nor hashed again: their
    SHA-256 is the one the previous state recorded); the state reads back as the one an update
    writing it whole gives, and the result still equals a full run."""
    from typer.testing import CliRunner

    from cxunify import ingest, layers
    from cxunify.cli import app
    from cxunify.update import LAYERED

    folder, _, _ = nights
    head, *tonight = (folder / "crm_new.csv").read_text().splitlines()
    first, second = tonight[: len(tonight) // 2], tonight[len(tonight) // 2 :]
    # A record of the first update changes in the second: it comes first with an email it
    # loses in the second. The two send night two's rows between them, so the result is to
    # equal the nights' full run on those rows.
    moved = first[0].split(",")
    moved[3] = "moved.on@fastmail.com"
    first, second = [",".join(moved), *first[1:]], [*second, first[0]]
    configs = {}
    for name, rows in (("a", first), ("b", second)):
        write(tmp_path / f"crm_{name}.csv", "\n".join([head, *rows]) + "\n")
        configs[name] = write(
            tmp_path / f"{name}.yaml", _config_for(tmp_path / f"crm_{name}.csv", "crm")
        )
    cli = CliRunner()

    def run(*args) -> None:
        result = cli.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr

    one, two, whole = tmp_path / "one", tmp_path / "two", tmp_path / "whole"
    run("update", "--previous", folder / "night1", "--out", one, "--config", configs["a"])
    hashed: list[Path] = []
    sha256_of = ingest.sha256_of

    def counted(path: Path) -> str:
        hashed.append(path)
        return sha256_of(path)

    monkeypatch.setattr(ingest, "sha256_of", counted)
    run("update", "--previous", one, "--out", two, "--config", configs["b"])
    monkeypatch.setattr(ingest, "sha256_of", sha256_of)
    digests = [json.loads((o / "state" / "state.json").read_text())["files"] for o in (one, two)]
    files = {
        p.relative_to(two / "state").as_posix(): sha256_of(p)
        for p in (two / "state").rglob("*")
        if p.is_file() and p.name != "state.json"
    }
    assert digests[1] == files
    # The update checked each stored file once; of its own state it hashed only the files it
    # wrote: the parts linked from one's state keep one's digests.
    assert sorted(p for p in hashed if p.is_relative_to(one)) == sorted(
        one / "state" / name for name in digests[0]
    )
    written = {p.as_posix().rsplit("/state/", 1)[1] for p in hashed if ".two.tmp-" in str(p)}
    linked = {name for name in files if (two / "state" / name).stat().st_nlink > 1}
    assert written == set(files) - linked
    assert linked and {n: digests[1][n] for n in linked} == {n: digests[0][n] for n in linked}
    monkeypatch.setattr(layers, "COMPACT_SHARE", 0.0)
    run("update", "--previous", one, "--out", whole, "--config", configs["b"])
    assert partition(two) == partition(folder / "full") == partition(whole)

    con = duckdb.connect()
    for name, keys in LAYERED.items():
        chained = layers.Layered.scan(two / "state" / name, keys)
        assert [p.index for p in chained.parts] == [0, 1, 2], name
        assert len(layers.Layered.scan(whole / "state" / name, keys).parts) == 1, name
        base = chained.folder / "rows-00000.parquet"
        assert base.stat().st_ino == (folder / "night1" / "state" / name / base.name).stat().st_ino
        sql, params = chained.read_sql("t")
        read = con.execute(f"SELECT * FROM ({sql}) ORDER BY ALL", params).fetchall()
        compacted = con.execute(
            f"SELECT * FROM '{whole}/state/{name}/rows-00000.parquet' ORDER BY ALL"
        ).fetchall()
        assert read == compacted, name

    def emails(out: Path) -> str:
        return str(con.execute(f"SELECT list(email) FROM '{out}/records.parquet'").fetchall())

    assert "moved.on@fastmail.com" in emails(one)
    assert "moved.on@fastmail.com" not in emails(two)


def _collapse_nodes_whole(engine, config, state_dir):
    """What an update's nodes are defined as: every record collapsed again, junk counted
    again, and the differences from the stored nodes found by comparing whole tables."""
    from cxunify import block
    from cxunify import update as u

    stored, params = u.stored_table(state_dir, "nodes").read_sql("nodes")
    engine.execute(f"CREATE OR REPLACE TABLE {u.STORED_NODES} AS {stored}", params)
    _, found = block.collapse_nodes(
        engine, config.matching.blocklist, config.matching.max_records_per_value
    )
    for name, kept, columns, rows, other in (
        (u.NODES_ADDED, "*", "*", block.NODES, u.STORED_NODES),
        (u.NODES_REMOVED, "node", "*", u.STORED_NODES, block.NODES),
        (u.TOUCHED, "node", "* EXCLUDE (n_records)", block.NODES, u.STORED_NODES),
        (u.GONE, "node", "* EXCLUDE (n_records)", u.STORED_NODES, block.NODES),
    ):
        engine.execute(
            f"CREATE OR REPLACE TABLE {name} AS SELECT {kept} FROM "
            f"(SELECT {columns} FROM {rows} EXCEPT SELECT {columns} FROM {other})"
        )
    return found


@pytest.fixture(scope="module")
def junk_limited(nights, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    """The nights' configs with a junk limit (max_records_per_value: 4), and night one run
    with it; read only (updates of it write elsewhere)."""
    from typer.testing import CliRunner

    from cxunify.cli import app

    folder, _, _ = nights
    here = tmp_path_factory.mktemp("junk")
    limit = "matching:\n  max_records_per_value: 4"
    configs = {
        name: write(
            here / f"{name}.yaml",
            (folder / f"{name}.yaml").read_text().replace("matching:", limit),
        )
        for name in ("night1", "delta")
    }
    night1 = here / "night1"
    args = ["unify", "--config", configs["night1"], "--model", folder / "model.json"]
    result = CliRunner().invoke(app, [*map(str, args), "--out", str(night1)])
    assert result.exit_code == 0, result.stderr
    return configs, night1


@pytest.mark.parametrize("deleting", [False, True], ids=["junk-grows", "junk-shrinks"])
def test_nodes_built_from_the_stored_ones_equal_nodes_collapsed_whole(
    nights, junk_limited, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deleting: bool
):
    """With a junk limit tonight's rows cross (a value becomes junk) and, with deletions,
    fall back under (a value stops being junk), the update's nodes, the nodes it blocks again
    and the state's delta are those of collapsing every record again."""
    from typer.testing import CliRunner

    from cxunify import layers, update
    from cxunify.cli import app

    folder, _, _ = nights
    configs, night1 = junk_limited
    cli = CliRunner()

    def run(*args) -> dict:
        result = cli.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args else {}

    con = duckdb.connect()
    counts = f"""
        SELECT email_std, count(*) AS n FROM '{night1}/state/records/*.parquet'
        WHERE email_std IS NOT NULL GROUP BY ALL
    """
    new_emails = [line.split(",")[3].lower() for line in (folder / "crm_new.csv").open()]
    crossing = con.execute(
        f"SELECT count(*) FROM ({counts}) WHERE n = 4 AND email_std IN (SELECT unnest($e))",
        {"e": new_emails},
    ).fetchone()[0]
    assert crossing > 0, "tonight's rows make a value junk"
    extra = ()
    if deleting:  # one record of each of three values carried by 5 records: no longer junk
        erase = con.execute(
            f"""SELECT any_value(source), any_value(source_record_id)
                FROM '{night1}/state/records/*.parquet'
                WHERE email_std IN (SELECT email_std FROM ({counts}) WHERE n = 5)
                GROUP BY email_std ORDER BY email_std LIMIT 3"""
        ).fetchall()
        assert len(erase) == 3
        # and a front desk contact: the address is on 4 records, no longer junk
        lines = ["source,source_record_id", *(f"{s},{r}" for s, r in erase), "crm,F1"]
        extra = ("--delete", write(tmp_path / "erase.csv", "\n".join(lines) + "\n"))
    summaries, outs = [], []
    for label in ("built", "whole"):
        if label == "whole":
            monkeypatch.setattr(update, "_collapse_nodes", _collapse_nodes_whole)
        outs.append(tmp_path / label)
        args = ["--previous", night1, "--out", outs[-1], "--config", configs["delta"]]
        summaries.append(run("update", *args, "--json", *extra))
    built, whole = summaries
    assert partition(outs[0]) == partition(outs[1])
    for key in ("pairs_compared", "pairs_reused", "nodes_reblocked_for_block_size",
                "components_reclustered", "golden_records_copied"):  # fmt: skip
        assert built["update"][key] == whole["update"][key], key
    assert built["counts"] == whole["counts"]
    assert built["counts"]["junk_emails"] > 0
    nodes = []
    for out in outs:
        sql, params = layers.Layered.scan(out / "state" / "nodes", ("node",)).read_sql("n")
        nodes.append(con.execute(f"SELECT * FROM ({sql}) ORDER BY ALL", params).fetchall())
    parts = [sorted(p.name for p in (out / "state" / "nodes").iterdir()) for out in outs]
    assert parts[0] == parts[1]
    assert len(parts[0]) == (1 if deleting else 3)  # deleting writes the state whole
    assert nodes[0] == nodes[1]
    # The front desk address on 5 records is junk tonight: its contacts were one identity
    # in night one, and are customers of their own (G1 is one with the name alone, G2); on 4
    # records it is no junk, and they are one customer again.
    customers = dict(
        duckdb.sql(
            f"SELECT source_record_id, customer_id FROM '{outs[0]}/identity_map.parquet' "
            "WHERE source_record_id SIMILAR TO '[FG][0-9]'"
        ).fetchall()
    )
    if deleting:
        assert customers["F2"] == customers["F3"] == customers["F4"]
    else:
        assert len({customers[f"F{n}"] for n in range(1, 5)} | {customers["G1"]}) == 5
        assert customers["G1"] == customers["G2"]


def test_outputs_in_a_folder_named_like_a_partition(cli, nights, tmp_path: Path):
    """A nightly job's dated folders (``day=2026-12-05/``) are not read as a column: DuckDB
    would otherwise add ``day`` to every file read from below one."""
    folder, _, _ = nights
    out = tmp_path / "day=2026-12-05" / "out"
    shutil.copytree(folder / "night1", out)
    result = cli("update", "--previous", out, "--config", folder / "delta.yaml")
    assert result.exit_code == 0, result.stderr
    assert partition(out) == partition(folder / "out")
    con = duckdb.connect(str(out / "cxunify.duckdb"), read_only=True)
    for view in ("profiles", "identity_map", "links", "records"):
        columns = [c[0] for c in con.execute(f"SELECT * FROM {view} LIMIT 0").description]
        assert "day" not in columns, view
    con.close()
    customer = duckdb.sql(
        f"SELECT min(customer_id) FROM '{folder}/out/profiles.parquet'"
    ).fetchall()[0][0]
    for command in (
        ("diff", folder / "night1", out),
        ("evaluate", "--out", out, "--truth", SAMPLE / "truth.csv"),
        ("explain", "--out", out, "--customer", customer),
        ("report", "--out", out, "--to", tmp_path / "report.html"),
    ):
        result = cli(*command)
        assert result.exit_code == 0, (command[0], result.stderr)


@pytest.mark.parametrize("stored_by", ["this version", "another version"])
def test_an_export_of_the_whole_table_updates_only_what_changed(
    nights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored_by: str
):
    """Tonight's CRM export holds every contact again, most of them unchanged: those rows are
    the stored records (not changes; read as stored, they are not even standardised again,
    unless another version of cxunify stored them), bad rows sent again are rejected once, and
    the result is the update with only the new and changed rows, and a full run's counts."""
    from typer.testing import CliRunner

    from cxunify import ingest, standardize
    from cxunify.cli import app

    standardised: list[int] = []
    original = standardize.standardize

    def counting(engine, config):
        standardised.append(engine.count(ingest.MAPPED))
        return original(engine, config)

    monkeypatch.setattr(standardize, "standardize", counting)
    folder, delta_only, _ = nights
    config = write(tmp_path / "whole.yaml", _config_for(folder / "crm_all.csv", "crm"))
    previous, out = tmp_path / "night1", tmp_path / "out"
    shutil.copytree(folder / "night1", previous)
    if stored_by == "another version":
        from cxunify.update import _state_digest

        state = {**json.loads((previous / "state" / "state.json").read_text()), "cxunify": "0.0"}
        state["sha256"] = _state_digest(state)  # (a state.json not as written is refused)
        (previous / "state" / "state.json").write_text(json.dumps(state))
    args = ["--previous", previous, "--out", out, "--config", config, "--json"]
    result = CliRunner().invoke(app, ["update", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert partition(out) == partition(folder / "out") == partition(folder / "full")
    stored_crm = duckdb.sql(
        f"SELECT count(*) FROM '{folder}/night1/identity_map.parquet' WHERE source = 'crm'"
    ).fetchall()[0][0]
    update = summary["update"]
    assert update["records_unchanged"] == stored_crm - 1  # one contact changed its email
    for key in ("records_added_or_changed", "pairs_compared", "pairs_reused"):
        assert update[key] == delta_only["update"][key], key
    crm_rows = len((folder / "crm_all.csv").read_text().splitlines()) - 1
    assert standardised == [
        update["records_added_or_changed"] if stored_by == "this version" else crm_rows
    ]
    full = json.loads((folder / "full" / "run.json").read_text())["counts"]
    for count in ("rows_in", "rows_mapped", "rows_rejected", "customers"):
        assert summary["counts"][count] == full[count], count
    rejects = "SELECT source, reason, raw FROM '{}/rejects.parquet' ORDER BY ALL"
    assert duckdb.sql(rejects.format(out)).fetchall() == (
        duckdb.sql(rejects.format(folder / "full")).fetchall()
    )


def test_a_bad_row_sent_again_is_rejected_once(cli, tmp_path: Path):
    head = "contact_id,first_name,last_name,email\n"
    rows = "C1,Ann,Lee,ann.lee@fastmail.com\nC2,Bob,Ng,bob.ng@fastmail.com\n"
    bad = "C3,Cy,Oh,cy@fastmail.com,1,2\n"  # too many columns: the row cannot be used
    body = "sources:\n  - name: crm\n    kind: crm\n    path: crm.csv\n    id: contact_id\n"
    config = write(tmp_path / "c.yaml", body + "    columns: {email: email}\n")
    write(tmp_path / "crm.csv", head + rows + bad)
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    write(tmp_path / "crm.csv", head + rows + "C4,Di,Wu,di.wu@fastmail.com\n" + bad)
    result = cli("update", "--previous", out, "--config", config, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["update"]["records_unchanged"] == 2
    assert summary["update"]["records_added_or_changed"] == 1
    assert summary["counts"]["rows_in"] == 4
    rejected = duckdb.sql(f"SELECT raw FROM '{out}/rejects.parquet'").fetchall()
    assert len(rejected) == 1 and "Cy" in rejected[0][0]


def _copy_of_night_one(nights, tmp_path: Path) -> tuple[Path, Path]:
    """The `nights` folder, and a copy of its night-one output in tmp_path to damage."""
    folder, _, _ = nights
    previous = tmp_path / "night1"
    shutil.copytree(folder / "night1", previous)
    return folder, previous


def test_an_update_elsewhere_locks_the_folder_it_reads(cli, nights, tmp_path: Path):
    """`--previous A --out B` reads A's state and links its parts: a run writing A meanwhile
    (an update of A in place) would swap them away, so A is locked too."""
    from cxunify.lock import lock_path, output_lock

    folder, previous = _copy_of_night_one(nights, tmp_path)
    args = ("update", "--previous", previous, "--config", folder / "delta.yaml")
    with output_lock(previous):
        result = cli(*args, "--out", tmp_path / "elsewhere")
    assert result.exit_code == 4
    assert result.stderr.startswith(f"Error: {previous}: another cxunify run (pid ")
    assert not (tmp_path / "elsewhere").exists()
    assert not lock_path(previous).exists() and not lock_path(tmp_path / "elsewhere").exists()
    assert cli(*args, "--out", tmp_path / "elsewhere").exit_code == 0


NOT_AS_WRITTEN = (
    "damaged update state (its SHA-256 differs from the one recorded when it was written); "
    "run a full `cxunify unify` to rebuild it"
)
OUTPUT_NOT_AS_WRITTEN = (
    "damaged output (its SHA-256 differs from the one recorded when it was written); "
    "run a full `cxunify unify` to rebuild it"
)
IDS_NOT_AS_WRITTEN = (
    "damaged output (its SHA-256 differs from the one recorded when it was written); the "
    "customer ids cannot be carried over from it: restore the folder from a backup, or remove "
    "it to start again with new ids"
)


def _damage(data: bytes, how: str) -> bytes:
    third = len(data) // 3
    if how == "one byte a third in":
        return data[:third] + bytes([data[third] ^ 0x01]) + data[third + 1 :]
    if how == "200 bytes a third in":
        return data[:third] + b"\xff" * 200 + data[third + 200 :]
    if how == "cut short":
        return data[:-1]
    assert how == "a byte added"
    return data + b" "


@pytest.mark.parametrize(
    ("damaged", "how", "expected"),
    [
        ("state/gammas/rows-00000.parquet", "one byte a third in", NOT_AS_WRITTEN),
        ("state/records/rows-00000.parquet", "200 bytes a third in", NOT_AS_WRITTEN),
        ("state/nodes/rows-00000.parquet", "cut short", NOT_AS_WRITTEN),
        ("state/links.parquet", "one byte a third in", NOT_AS_WRITTEN),
        ("state/model.json", "a byte added", NOT_AS_WRITTEN),
        ("state/state.json", "a byte added", NOT_AS_WRITTEN),
        ("profiles.parquet", "one byte a third in", OUTPUT_NOT_AS_WRITTEN),
        ("rejects.parquet", "cut short", OUTPUT_NOT_AS_WRITTEN),
        ("run.json", "a digit added", OUTPUT_NOT_AS_WRITTEN),
        ("identity_map.parquet", "one byte a third in", IDS_NOT_AS_WRITTEN),
        ("customer_ids.parquet", "200 bytes a third in", IDS_NOT_AS_WRITTEN),
        ("removed_records.parquet", "cut short", IDS_NOT_AS_WRITTEN),
    ],
)  # fmt: skip
def test_a_damaged_file_of_the_previous_output_is_a_one_line_error(
    cli, nights, tmp_path: Path, damaged: str, how: str, expected: str
):
    """Bytes changed in a file of the previous output (disk trouble, a bad copy): the update
    names the file and what to do, exits 1, and leaves the output as it was. A Parquet page
    as DuckDB writes it has no checksum, and bytes changed inside a zstd frame's literals
    decode to other values without an error: an update read such a gammas file and went on 1
    time in 4 (what lies a third into it changes from run to run), building on other levels
    than those stored. The state's files are checked by the SHA-256 state.json recorded (a
    digit of state.json's own changed is as bad), before any is read; a model.json with a
    space added still reads, and is not the one written. So are the outputs the update reads
    (golden records are copied from profiles.parquet, ids from identity_map.parquet), by the
    SHA-256 run.json recorded, and run.json itself (a digit of a count changed); a full run
    reads the files the ids come from too, so it is not what mends those."""
    folder, previous = _copy_of_night_one(nights, tmp_path)
    path = previous / damaged
    data = path.read_bytes()
    if damaged in ("state/state.json", "run.json"):  # a digit added, the JSON still valid
        key = b'"last_record_key": ' if damaged == "state/state.json" else b'"rows_in": '
        digit = data.index(key) + len(key)
        data = data[:digit] + b"1" + data[digit:]
    else:
        data = _damage(data, how)
    path.write_bytes(data)
    before = {p: p.read_bytes() for p in previous.rglob("*") if p.is_file()}
    result = cli("update", "--previous", previous, "--config", folder / "delta.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {path}: {expected}"
    assert {p: p.read_bytes() for p in previous.rglob("*") if p.is_file()} == before


def test_a_part_the_state_did_not_write_is_a_one_line_error(cli, nights, tmp_path: Path):
    """A part file in a state table that state.json does not list would be read as one of its
    parts (they are found by their names)."""
    folder, previous = _copy_of_night_one(nights, tmp_path)
    stray = previous / "state" / "records" / "rows-00001.parquet"
    shutil.copyfile(previous / "state" / "records" / "rows-00000.parquet", stray)
    result = cli("update", "--previous", previous, "--config", folder / "delta.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {stray}: damaged update state (a file the state did not write); run a full "
        "`cxunify unify` to rebuild it"
    )


def test_a_state_without_digests_is_refused_once(cli, nights, tmp_path: Path):
    """A state written before its files' digests were kept cannot be checked: the update
    says to run a full unify (after which updates go on: every other test updates one)."""
    folder, previous = _copy_of_night_one(nights, tmp_path)
    state_json = previous / "state" / "state.json"
    state = json.loads(state_json.read_text())
    del state["files"], state["sha256"]
    state_json.write_text(json.dumps({**state, "format": "cxunify-state/3"}, indent=2))
    result = cli("update", "--previous", previous, "--config", folder / "delta.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {previous}: its update state was written by an older version of cxunify, which "
        "recorded no digests to check its files by; run a full `cxunify unify` once (it keeps "
        "the ids), then update as before"
    )


def test_a_full_run_carries_no_ids_over_from_a_damaged_identity_map(cli, nights, tmp_path: Path):
    """A full run reads the files the customer ids are carried over from as an update does:
    it checks them too, and so is not what the update's message for them says to run."""
    folder, previous = _copy_of_night_one(nights, tmp_path)
    path = previous / "identity_map.parquet"
    path.write_bytes(_damage(path.read_bytes(), "one byte a third in"))
    before = {p: p.read_bytes() for p in previous.rglob("*") if p.is_file()}
    result = cli("unify", "--config", folder / "night1.yaml", "--out", previous)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {path}: {IDS_NOT_AS_WRITTEN}"
    assert {p: p.read_bytes() for p in previous.rglob("*") if p.is_file()} == before


def test_outputs_without_digests_are_refused_once(cli, nights, tmp_path: Path):
    """Outputs written before run.json kept their digests cannot be checked: the update says
    to run a full unify, which writes them (and checks nothing it has no digest of)."""
    folder, previous = _copy_of_night_one(nights, tmp_path)
    manifest = previous / "run.json"
    run = json.loads(manifest.read_text())
    del run["outputs"], run["sha256"]
    manifest.write_text(json.dumps(run, indent=2))
    result = cli("update", "--previous", previous, "--config", folder / "delta.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {previous}: its outputs were written by an older version of cxunify, which "
        "recorded no digests to check them by; run a full `cxunify unify` once (it keeps the "
        "ids), then update as before"
    )


def test_survivorship_may_name_a_source_only_the_previous_runs_read(cli, nights, tmp_path: Path):
    """Tonight's config names the CRM only; ranking orders first for emails is still valid
    (the stored orders records take part), a misspelt source is not."""
    folder, _, _ = nights
    rules = "profile:\n  survivorship:\n    email: {rule: source_priority, sources: [%s, crm]}\n"
    for name, code in (("orders", 0), ("ordrs", 1)):
        config = write(tmp_path / "delta.yaml", (folder / "delta.yaml").read_text() + rules % name)
        result = cli("update", "--previous", folder / "night1", "--out", tmp_path / name,
                     "--config", config, "-q")  # fmt: skip
        assert result.exit_code == code, result.stderr
    assert result.stderr.strip().endswith(
        "profile.survivorship.email.sources: 'ordrs' is neither a source nor a kind; "
        "did you mean 'orders'?"
    )


def test_carried_rejects_naming_a_deleted_record_are_dropped_when_readable():
    """A rejected line names a deleted record when its source's id column, read with the
    dialect and header its file was read with, holds the id (or, for a row rejected for its
    values, the mapped row's source_record_id does). Lines that cannot be read so stay."""
    from cxunify.engine import DuckDBEngine
    from cxunify.update import DELETIONS, _drop_deleted_rejects

    engine = DuckDBEngine()
    engine.execute(
        f"CREATE TABLE {DELETIONS} AS SELECT * FROM (VALUES ('crm', 'C1'), ('posts', 'P1'), "
        "('shop', '7')) t(source, source_record_id)"
    )
    rejects = {
        1: ("crm", "crm.csv", 5, "C1,Ann,Lee,ann@x.com,extra"),  # dropped
        2: ("crm", "crm.csv", 6, 'C2,"C1",Lee'),  # C1 in another column: kept
        3: ("crm", "crm2.csv", 2, 'Lee;" C1";ann@x.com;x'),  # another file, dialect: dropped
        4: ("crm", "old.csv", 2, "C1,Ann,Lee,ann@x.com,extra"),  # no dialect kept: kept
        5: ("crm", None, None, '{"source_record_id":"C1","email":"ann@x.com"}'),  # dropped
        6: ("crm", None, None, '{"source_record_id":"C2","email":"C1"}'),  # kept
        7: ("posts", "posts.ndjson", 3, '{"post_id":"P1","email":"ann@x'),  # broken: kept
        8: ("shop", "shop.csv", 4, "7,ann@x.com,extra"),  # no id column (row numbers): kept
    }
    engine.execute(
        "CREATE TABLE carried (reject BIGINT, source VARCHAR, file VARCHAR, line BIGINT, "
        "raw VARCHAR)"
    )
    engine.con.executemany(
        "INSERT INTO carried VALUES (?, ?, ?, ?, ?)", [(k, *v) for k, v in rejects.items()]
    )
    comma = {"delimiter": ",", "quote": '"', "escape": '"'}
    inputs = [
        {"source": "crm", "path": "crm.csv", "dialect": {**comma, "header": ["id", "a", "b"]}},
        {"source": "crm", "path": "old.csv"},
        {"source": "crm", "path": "crm2.csv", "dialect": {**comma, "header": ["x", "id"]}},
        {  # the same path read on another night, with another header
            "source": "crm",
            "path": "crm2.csv",
            "dialect": {"delimiter": ";", "quote": '"', "escape": '"', "header": ["n", "id"]},
        },
        {"source": "shop", "path": "shop.csv", "dialect": {**comma, "header": ["n", "e"]}},
    ]
    sources = {
        "crm": ["crm", None, None, "id"],
        "posts": ["social", None, None, "post_id"],
        "shop": ["transactions", None, None, None],
    }
    assert _drop_deleted_rejects(engine, "carried", inputs, sources) == 3
    kept = [k for (k,) in engine.rows("SELECT reject FROM carried ORDER BY 1")]
    assert kept == [2, 4, 6, 7, 8]
    engine.close()


def test_a_row_changed_in_a_fields_other_column_is_not_read_as_stored():
    """A row whose mobile phone changed (the second column of `phone: [work, mobile]`) digested
    as before, so an update would keep its stored record and profile the old mobile number."""
    from cxunify.engine import DuckDBEngine
    from cxunify.ingest import MAPPED, create_tables
    from cxunify.standardize import raw_digest_sql

    engine = DuckDBEngine()
    create_tables(engine)
    engine.execute(
        f"INSERT INTO {MAPPED} (record_key, phone, phone_others) VALUES "
        "(1, '+14155552671', ['+12125550147']), (2, '+14155552671', ['+12125550148']), "
        "(3, '+14155552671', NULL)"
    )
    digests = [d for (d,) in engine.rows(f"SELECT {raw_digest_sql()} FROM {MAPPED}")]
    assert len(set(digests)) == 3


ORDER_LINES = "line_id,order_id,email,amount,currency,order_date\n"
ORDERS_SOURCE = """  - name: orders
    kind: transactions
    path: {path}
    id: line_id
    columns: {{order_id: order_id, email: email, amount: amount, currency: currency,
              created_at: order_date}}
"""


def test_traits_copied_for_unchanged_customers_equal_a_full_runs(cli, tmp_path: Path):
    """An unchanged customer keeps its traits but for the relative ones, computed again as of
    tonight's newest order (Cy's recency). Ann's records are unchanged too, but a row of her
    order 100 arrives tonight under Bob in another currency: her row without a currency no
    longer takes USD from its order, so her traits are computed again."""
    crm = "sources:\n  - name: crm\n    kind: crm\n    path: crm.csv\n    id: contact_id\n"
    crm += "    columns: {first_name: first_name, last_name: last_name, email: email}\n"
    write(tmp_path / "crm.csv", "contact_id,first_name,last_name,email\n"
          "C1,Ann,Lee,ann.lee@fastmail.com\nC2,Bob,Ng,bob.ng@fastmail.com\n"
          "C3,Cy,Oh,cy.oh@fastmail.com\n")  # fmt: skip
    stored = ("L1,100,ann.lee@fastmail.com,10.00,USD,2024-01-05\n"
              "L2,100,ann.lee@fastmail.com,5.00,,2024-01-05\n"
              "L3,200,bob.ng@fastmail.com,20.00,EUR,2024-01-10\n"
              "L4,300,cy.oh@fastmail.com,30.00,USD,2024-03-01\n")  # fmt: skip
    tonight = "L5,100,bob.ng@fastmail.com,7.00,EUR,2024-06-01\n"
    write(tmp_path / "orders1.csv", ORDER_LINES + stored)
    write(tmp_path / "orders_new.csv", ORDER_LINES + tonight)
    write(tmp_path / "orders_all.csv", ORDER_LINES + stored + tonight)
    night1 = write(tmp_path / "night1.yaml", crm + ORDERS_SOURCE.format(path="orders1.csv"))
    delta = write(tmp_path / "delta.yaml",
                  "sources:\n" + ORDERS_SOURCE.format(path="orders_new.csv"))  # fmt: skip
    whole = write(tmp_path / "all.yaml", crm + ORDERS_SOURCE.format(path="orders_all.csv"))
    out, full = tmp_path / "out", tmp_path / "full"
    assert cli("unify", "--config", night1, "--out", out, "-q").exit_code == 0
    shutil.copyfile(out / "state" / "model.json", tmp_path / "model.json")
    result = cli("update", "--previous", out, "--config", delta, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["update"]
    assert cli("unify", "--config", whole, "--model", tmp_path / "model.json", "--out", full,
               "-q").exit_code == 0  # fmt: skip
    assert partition(out) == partition(full)
    assert summary["golden_records_copied"] == 2  # Ann and Cy
    assert summary["traits_copied"] == 1  # Cy
    profiles = "SELECT * EXCLUDE (customer_id) FROM '{}/profiles.parquet' ORDER BY ALL"
    updated = duckdb.sql(profiles.format(out)).fetchall()
    assert updated == duckdb.sql(profiles.format(full)).fetchall()
    traits = (
        "SELECT first_name, recency_days, lifecycle_stage, revenue_by_currency "
        "FROM '{}/profiles.parquet' WHERE first_name IN ('Ann', 'Cy') ORDER BY 1"
    )
    (ann, cy) = duckdb.sql(traits.format(out)).fetchall()
    assert cy[1] == 92  # 2024-03-01 to 2024-06-01 (it was 0 as of night one)
    assert {k: str(v) for k, v in ann[3].items()} == {"USD": "10.00", "XXX": "5.00"}


def test_a_tie_of_times_goes_to_the_same_row_in_an_update_and_a_full_run(cli, tmp_path: Path):
    """A ticket and an order of one time gave the golden phone to the ticket in an update (it
    was stored, read first) and to the order in a full run listing orders first: `diff` then
    showed a change that never happened. A tie goes to a row by kind, source and id."""
    tickets = (
        "  - {name: tickets, kind: support, path: tickets.csv, id: ticket_id,\n"
        "     columns: {email: email, phone: phone, created_at: opened}}\n"
    )
    orders = (
        "  - {name: orders, kind: transactions, path: orders.csv, id: order_id,\n"
        "     columns: {email: email, phone: phone, created_at: placed}}\n"
    )
    write(tmp_path / "tickets.csv", "ticket_id,email,phone,opened\n"
          "T1,ann.lee@fastmail.com,+14155552671,2024-06-01 10:00:00\n")  # fmt: skip
    write(tmp_path / "night" / "orders.csv", "order_id,email,phone,placed\n"
          "O1,ann.lee@fastmail.com,+12125550147,2024-06-01 10:00:00\n")  # fmt: skip
    shutil.copyfile(tmp_path / "night" / "orders.csv", tmp_path / "orders.csv")
    rules = "matching:\n  rules: [[email_std]]\n"  # equal emails link, whatever EM learns
    night1 = write(tmp_path / "night1.yaml", "sources:\n" + tickets + rules)
    delta = write(tmp_path / "night" / "delta.yaml", "sources:\n" + orders + rules)
    whole = write(tmp_path / "all.yaml", "sources:\n" + orders + tickets + rules)
    out, full = tmp_path / "out", tmp_path / "full"
    assert cli("unify", "--config", night1, "--out", out, "-q").exit_code == 0
    shutil.copyfile(out / "state" / "model.json", tmp_path / "model.json")
    result = cli("update", "--previous", out, "--config", delta, "-q")
    assert result.exit_code == 0, result.stderr
    assert cli("unify", "--config", whole, "--model", tmp_path / "model.json", "--out", full,
               "-q").exit_code == 0  # fmt: skip
    golden = "SELECT phone, phone_provenance.source FROM '{}/profiles.parquet'"
    assert duckdb.sql(golden.format(out)).fetchall() == [("+12125550147", "orders")]
    assert duckdb.sql(golden.format(full)).fetchall() == [("+12125550147", "orders")]
