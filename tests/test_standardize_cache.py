"""The macros' cache: a DuckDB file per user, attached instead of creating the macros again."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from cxunify.standardize import cache, install_macros, macro_statements
from tests.conftest import SAMPLE

# Every family of macro, over the sample's values (and some written otherwise).
VALUES = f"""
    SELECT cx_name_std(first_name), cx_name_key(last_name), cx_soundex(last_name),
           cx_street_std(street), cx_city_std(city), cx_state_std(state),
           cx_postcode_std(zip), cx_country_std(country),
           cx_phone_e164(phone, 'US'), cx_phone_e164('030 1234567', 'DE'),
           cx_email_parts_std(cx_email_clean(email)), cx_parse_date(date_of_birth, false),
           cx_parse_timestamp(created_at, false), cx_amount('€1.234,50'),
           cx_location(city || ', ' || state, 'US'),
           cx_split_full_name(first_name || ' ' || last_name)
    FROM read_csv('{SAMPLE / "crm.csv"}', all_varchar = true) ORDER BY contact_id LIMIT 300
"""


def installed(folder: str | None, monkeypatch) -> duckdb.DuckDBPyConnection:
    if folder is None:
        monkeypatch.setenv(cache.CACHE_ENV, "")  # off
    else:
        monkeypatch.setenv(cache.CACHE_ENV, folder)
    con = duckdb.connect()
    install_macros(con)
    return con


def databases_of(con: duckdb.DuckDBPyConnection, function: str) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "SELECT database_name FROM duckdb_functions() WHERE function_name = $f", {"f": function}
        ).fetchall()
    }


def test_macros_from_the_cache_give_the_values_created_ones_do(tmp_path, monkeypatch):
    created = installed(None, monkeypatch)
    assert databases_of(created, "cx_street_std") == {"memory"}
    assert not any(tmp_path.iterdir())
    expected = created.execute(VALUES).fetchall()
    assert len(expected) == 300

    written = installed(str(tmp_path), monkeypatch)  # writes the file, then attaches it
    (file,) = tmp_path.glob("macros-all-*.duckdb")
    attached = installed(str(tmp_path), monkeypatch)  # attaches the file written
    for con in (written, attached):
        (database,) = databases_of(con, "cx_street_std")
        assert database.startswith("cx_macros_")
        assert con.execute(VALUES).fetchall() == expected
    assert list(tmp_path.iterdir()) == [file]  # no partial file left beside it
    # The connection's own tables are where they were: a run's tables go to its database.
    attached.execute("CREATE TABLE cx_records AS SELECT 1 AS x")
    assert databases_of_table(attached, "cx_records") == {"memory"}


def databases_of_table(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT database_name FROM duckdb_tables() WHERE table_name = $t", {"t": table}
    ).fetchall()
    return {row[0] for row in rows}


def test_a_damaged_cache_file_is_written_again(tmp_path, monkeypatch):
    expected = installed(None, monkeypatch).execute(VALUES).fetchall()
    installed(str(tmp_path), monkeypatch)
    (file,) = tmp_path.glob("macros-all-*.duckdb")
    damaged = bytearray(file.read_bytes())
    damaged[: len(damaged) // 2] = b"\x00" * (len(damaged) // 2)
    file.write_bytes(bytes(damaged))
    con = installed(str(tmp_path), monkeypatch)
    assert con.execute(VALUES).fetchall() == expected
    assert databases_of(con, "cx_street_std") != {"memory"}  # from the file written again
    assert file.read_bytes() != bytes(damaged)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_cache_folder_others_can_write_to_is_not_used(tmp_path, monkeypatch):
    """Its file would define the macros every run applies: the macros are created instead."""
    expected = installed(None, monkeypatch).execute(VALUES).fetchall()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    con = installed(str(shared), monkeypatch)
    assert databases_of(con, "cx_street_std") == {"memory"}
    assert not any(shared.iterdir())
    assert con.execute(VALUES).fetchall() == expected


def test_changed_macros_get_a_file_of_their_own(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    statements = macro_statements()
    assert cache.attach(duckdb.connect(), statements, "all")
    (first,) = tmp_path.glob("macros-all-*.duckdb")
    changed = [*statements, ("CREATE OR REPLACE MACRO cx_extra(x) AS x + 1", None)]
    con = duckdb.connect()
    assert cache.attach(con, changed, "all")
    assert con.execute("SELECT cx_extra(1)").fetchall() == [(2,)]
    # The first file is kept while a run may still be reading it, and goes once an hour old.
    assert len(list(tmp_path.glob("macros-all-*.duckdb"))) == 2
    os.utime(first, (first.stat().st_atime, first.stat().st_mtime - 7200))
    assert cache.attach(duckdb.connect(), [*changed, ("SELECT 1", None)], "all")
    assert first.exists() is False
    assert len(list(tmp_path.glob("macros-all-*.duckdb"))) == 2
    # Values-only macros (what `init` reads with) are a file of their own too.
    assert cache.attach(duckdb.connect(), macro_statements(values_only=True), "values")
    assert len(list(tmp_path.glob("macros-values-*.duckdb"))) == 1


def test_the_default_folder_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "cxunify"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == Path.home() / ".cache" / "cxunify"
    monkeypatch.setenv(cache.CACHE_ENV, "")
    assert cache.cache_dir() is None
