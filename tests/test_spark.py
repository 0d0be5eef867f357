"""The Spark engine gives the same customers, profiles and output schemas as DuckDB.

The end-to-end test runs Spark in local mode (local[2]) on sample_data; it takes about three
minutes on two cores (of a suite of about seven), most of it Spark's per-query overhead.
Without pyspark or Java it is skipped on a workstation and fails in CI (CI installs both: see
.ci/run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from cxunify.config import load_config
from cxunify.engine import dialect_available
from cxunify.errors import ConfigError
from tests.conftest import ROOT

SAMPLE_CONFIG = ROOT / "configs" / "sample.yaml"


def _spark_ready() -> str | None:
    """Why Spark cannot run here, or None when it can."""
    if not dialect_available():
        return "the spark extra is not installed (pip install -e '.[test]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java is not installed"
    return None


def _require_spark() -> None:
    reason = _spark_ready()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the Spark test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def spark_session():
    """One local[2] session for the module, handed to the pipeline as a user would."""
    _require_spark()
    from cxunify.config import SparkConfig
    from cxunify.engine.spark import spark_session as start

    session = start(SparkConfig(master="local[2]", conf={"spark.ui.enabled": "false"}))
    yield session
    session.stop()


def _partition(out: Path) -> set[frozenset[tuple[str, str]]]:
    """Customers as sets of (source, source_record_id): equal up to the naming of ids."""
    members = pl.read_parquet(out / "identity_map.parquet")
    grouped = members.group_by("customer_id").agg(
        pl.concat_str(["source", "source_record_id"], separator="\x1f").alias("m")
    )
    return {frozenset(tuple(m.split("\x1f")) for m in row) for row in grouped["m"].to_list()}


def _schema(path: Path) -> list[tuple[str, str]]:
    return [(field.name, str(field.type)) for field in pq.read_schema(path)]


def test_spark_gives_the_same_customers_profiles_and_schemas(tmp_path, spark_session):
    from cxunify.pipeline import unify

    config = load_config(SAMPLE_CONFIG)
    on_duckdb = unify(config, tmp_path / "duckdb")
    on_spark = unify(config.with_engine("spark"), tmp_path / "spark", spark_session=spark_session)

    duck, spark = tmp_path / "duckdb", tmp_path / "spark"
    assert on_spark.manifest["engine"] == "spark"
    assert _partition(spark) == _partition(duck)
    outputs = sorted(p.name for p in duck.glob("*.parquet"))
    assert {"profiles.parquet", "identity_map.parquet", "links.parquet"} <= set(outputs)
    assert sorted(p.name for p in spark.glob("*.parquet")) == outputs
    for name in outputs:
        assert _schema(spark / name) == _schema(duck / name), name

    # Everything after reading the files, publishing included, ran on Spark: nothing came back.
    assert on_spark.manifest["stages_engine"] == {
        "ingest": "duckdb",
        **dict.fromkeys(("standardize", "block", "compare", "score", "cluster"), "spark"),
        **dict.fromkeys(("identify", "profile", "write"), "spark"),
    }
    assert set(on_duckdb.manifest["stages_engine"].values()) == {"duckdb"}

    profiles_duck = pl.read_parquet(duck / "profiles.parquet")
    profiles_spark = pl.read_parquet(spark / "profiles.parquet")
    assert profiles_duck.height > 2000
    # Same ids, golden values, lists, dates and traits. A mean of doubles may differ in its
    # last bit: each engine sums in its own order (DuckDB's own order varies with threads).
    means = ["csat_mean", "sentiment_mean"]
    assert profiles_spark.drop(means).equals(profiles_duck.drop(means))
    for column in means:
        gap = (profiles_spark[column] - profiles_duck[column]).abs().max()
        assert profiles_spark[column].is_null().equals(profiles_duck[column].is_null())
        assert gap is None or gap < 1e-12, column

    # Every link, with the same levels; weights agree to float rounding.
    key = ["left_source", "left_source_record_id", "right_source", "right_source_record_id"]
    links = pl.read_parquet(duck / "links.parquet").join(
        pl.read_parquet(spark / "links.parquet"), on=key, how="full", suffix="_spark"
    )
    assert links["match_weight"].null_count() == 0
    assert links["match_weight_spark"].null_count() == 0
    for column in [c for c in links.columns if c.startswith("gamma_") and "_spark" not in c]:
        assert (links[column] == links[column + "_spark"]).all(), column
    assert (links["match_weight"] - links["match_weight_spark"]).abs().max() < 1e-9
    assert on_spark.counts == on_duckdb.counts

    # The session handed in stays up; only local outputs get the DuckDB views.
    assert not spark_session.sparkContext._jsc.sc().isStopped()
    views = duckdb.connect(str(spark / "cxunify.duckdb"), read_only=True)
    assert views.execute("SELECT count(*) FROM profiles").fetchall()[0][0] == profiles_spark.height


def test_fuzzy_udfs_match_duckdb_functions(spark_session, tmp_path):
    from cxunify.config import SparkConfig
    from cxunify.engine.spark import SparkEngine

    pairs = [
        ("martha", "marhta"), ("a", "amy"), ("j", "john"), ("jon", "john"), ("", ""),
        ("dwayne", "duane"), ("ca", "abc"), ("x", None), (None, None), ("ebec", "edeec"),
    ]  # fmt: skip
    engine = SparkEngine(SparkConfig(), str(tmp_path / "work"), spark_session)
    engine.spark.createDataFrame(pairs, "a string, b string").createOrReplaceTempView("cx_p")
    query = (
        "SELECT a, b, jaro_winkler_similarity(a, b) >= 0.8, damerau_levenshtein(a, b) "
        "FROM cx_p ORDER BY a NULLS FIRST, b NULLS FIRST"
    )
    on_spark = engine.rows(query)
    engine.close()
    local = duckdb.connect()
    local.execute("CREATE TABLE cx_p (a VARCHAR, b VARCHAR)")
    local.executemany("INSERT INTO cx_p VALUES (?, ?)", pairs)
    assert on_spark == local.execute(query).fetchall()


def test_engine_spark_without_pyspark_says_what_to_install(tmp_path):
    # A real CLI run in a child interpreter where pyspark cannot be imported.
    code = (
        "import sys; sys.modules['pyspark'] = None; "
        "from cxunify.cli import app; app(prog_name='cxunify')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "unify", "--config", str(SAMPLE_CONFIG),
         "--out", str(tmp_path / "out"), "--engine", "spark", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    hint = "Error: the spark engine needs pyspark: pip install 'cxunify[spark]'"
    assert done.stderr.strip() == hint
    assert not (tmp_path / "out").exists()


def test_engine_is_chosen_in_config_or_by_flag(tmp_path):
    text = SAMPLE_CONFIG.read_text().replace("../sample_data", str(ROOT / "sample_data"))
    path = tmp_path / "c.yaml"
    path.write_text(
        text + "\nengine: spark\nspark:\n  master: local[2]\n  conf:\n"
        "    spark.executor.memory: 2g\n"
    )
    config = load_config(path)
    assert config.engine.name == "spark"
    assert config.spark.master == "local[2]"
    assert config.spark.conf == {"spark.executor.memory": "2g"}
    assert config.with_engine("duckdb").engine.name == "duckdb"
    with pytest.raises(ConfigError, match="--engine: 'flink' is not an engine"):
        config.with_engine("flink")


def test_dialect_rewrites_what_spark_names_differently():
    pytest.importorskip("sqlglot")
    from cxunify.engine import dialect

    sql = dialect.to_spark(
        dialect.parse(
            "SELECT first(x ORDER BY k DESC) FILTER (WHERE x IS NOT NULL), "
            "list(DISTINCT e ORDER BY e) FILTER (WHERE e IS NOT NULL), "
            "coalesce(list_position($kinds, s), 99), getvariable('w')[g::INTEGER], "
            "jaro_winkler_similarity(a, b), damerau_levenshtein(a, b) FROM t GROUP BY y"
        ),
        {"w": {0: -2.5, 1: 3.0}},
    )
    assert "ARRAY_SORT(COLLECT_SET(e) FILTER(WHERE NOT e IS NULL))" in sql
    assert "TRY_ELEMENT_AT(ARRAY_SORT(COLLECT_LIST(NAMED_STRUCT('k0', k, 'v', x)) FILTER(" in sql
    assert "NULLIF(ARRAY_POSITION(:kinds, s), 0)" in sql
    lookup = "CASE CAST(g AS INT) WHEN 0 THEN CAST(-2.5 AS DOUBLE) WHEN 1 THEN CAST(3.0 AS DOUBLE)"
    assert lookup in sql
    assert "CX_JARO_WINKLER(a, b)" in sql and "CX_DAMERAU_LEVENSHTEIN(a, b)" in sql
