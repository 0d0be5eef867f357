"""The DuckDB engine's settings: what a nightly job on a shared box relies on."""

from __future__ import annotations

import pytest

from cxunify.config import EngineConfig
from cxunify.engine import DuckDBEngine
from cxunify.errors import UserError


def setting(engine: DuckDBEngine, name: str) -> object:
    return engine.scalar("SELECT current_setting($name)", {"name": name})


def test_no_progress_bar_on_stdout_to_corrupt_json_output():
    engine = DuckDBEngine()
    assert setting(engine, "enable_progress_bar") is False


def test_the_working_database_never_stops_a_statement_to_checkpoint():
    # An automatic checkpoint of the in-memory database cost an update 2 to 3 s.
    threshold = setting(DuckDBEngine(), "checkpoint_threshold")
    assert str(threshold).endswith("GiB") and float(str(threshold).split()[0]) > 100


def test_memory_limit_defaults_to_2gb_not_most_of_the_machine(monkeypatch):
    monkeypatch.delenv("CXUNIFY_MEMORY_LIMIT", raising=False)
    assert setting(DuckDBEngine(), "memory_limit") == "1.8 GiB"  # DuckDB shows 2GB as GiB


def test_memory_limit_and_threads_from_environment_then_config(monkeypatch):
    monkeypatch.setenv("CXUNIFY_MEMORY_LIMIT", "3GB")
    monkeypatch.setenv("CXUNIFY_THREADS", "1")
    engine = DuckDBEngine()
    assert setting(engine, "memory_limit") == "2.7 GiB"
    assert setting(engine, "threads") == 1
    engine = DuckDBEngine(EngineConfig(memory_limit="1GB", threads=2))
    assert setting(engine, "memory_limit") == "953.6 MiB"
    assert setting(engine, "threads") == 2


def test_spill_files_go_to_the_given_folder(tmp_path):
    engine = DuckDBEngine(temp_dir=tmp_path / "spill")
    assert setting(engine, "temp_directory") == str(tmp_path / "spill")


def test_a_bad_memory_limit_is_a_user_error(monkeypatch):
    monkeypatch.setenv("CXUNIFY_MEMORY_LIMIT", "lots")
    with pytest.raises(UserError, match="'lots' is not a size"):
        DuckDBEngine()


def test_running_out_of_memory_names_the_limit_to_raise():
    from cxunify.errors import ResourceError

    engine = DuckDBEngine(EngineConfig(memory_limit="20MB", threads=1))
    with pytest.raises(ResourceError, match=r"limit of 20MB; raise it with engine\.memory_limit"):
        engine.execute("CREATE TABLE t AS SELECT list(range) AS l FROM range(20000000)")


def test_dictionaries_of_fields_no_source_maps_change_no_output(tmp_path, monkeypatch):
    """A dictionary of fields no source maps is created empty without reading (planning its
    standardisers was a third of a small run): the outputs are those of building them all."""
    import polars as pl

    from cxunify import standardize
    from cxunify.config import load_config
    from cxunify.pipeline import unify
    from tests.conftest import write

    write(tmp_path / "crm.csv", "id,first,email,phone\n1,Ann,ann@mail.com,+14155552671\n"
          "2,ann,ann@mail.com,\n3,Bob,bob@mail.com,+12125550147\n")  # fmt: skip
    write(tmp_path / "tickets.csv", "id,email,opened\nT1,bob@mail.com,2025-01-01 10:00 PST\n")
    config = load_config(
        write(
            tmp_path / "cx.yaml",
            "sources:\n"
            "  - {name: crm, kind: crm, path: crm.csv, id: id,\n"
            "     columns: {first_name: first, email: email, phone: phone}}\n"
            "  - {name: tickets, kind: support, path: tickets.csv, id: id,\n"
            "     columns: {email: email, created_at: opened}}\n",
        )
    )
    assert standardize.mapped_fields(config) == {"first_name", "email", "phone", "created_at"}
    unify(config, tmp_path / "skipped")
    monkeypatch.setattr(standardize, "mapped_fields", lambda config: None)
    unify(config, tmp_path / "all")
    names = sorted(p.name for p in (tmp_path / "all").glob("*.parquet"))
    assert "records.parquet" in names
    run_times = ["issued_at", "redirected_at", "removed_at"]  # when each run started
    for name in names:
        skipped, built = (
            pl.read_parquet(tmp_path / run / name).drop(run_times, strict=False)
            for run in ("skipped", "all")
        )
        assert skipped.equals(built), name
