"""State tables as a base plus deltas: what is read back is what was written last."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify import layers
from cxunify.engine import DuckDBEngine

# An update: the keys it removes (or replaces), and the rows it adds as (key, value).
updates = st.lists(
    st.tuples(
        st.sets(st.integers(0, 12), max_size=5),
        st.dictionaries(st.integers(0, 12), st.integers(0, 99), max_size=5),
    ),
    max_size=5,
)


def _write(engine: DuckDBEngine, rows: dict[int, int]) -> str:
    engine.execute("CREATE OR REPLACE TABLE t (k INTEGER, v INTEGER)")
    if rows:
        engine.con.executemany("INSERT INTO t VALUES (?, ?)", sorted(rows.items()))
    return "SELECT * FROM t"


def _read(engine: DuckDBEngine, table: layers.Layered) -> dict[int, int]:
    sql, params = table.read_sql("t")
    found = engine.rows(f"SELECT k, v FROM ({sql}) ORDER BY k", params)
    assert len(found) == len({k for k, _ in found}), "a key read twice"
    return dict(found)


@settings(max_examples=40, deadline=None)
@given(base=st.dictionaries(st.integers(0, 12), st.integers(0, 99), max_size=8), steps=updates)
def test_reading_the_parts_gives_the_table_as_last_written(base, steps):
    engine = DuckDBEngine()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "0"
        layers.write_whole(engine, folder, _write(engine, base), "zstd")
        expected = dict(base)
        for number, (removed, added) in enumerate(steps, 1):
            stored = layers.Layered.scan(folder, ("k",))
            assert _read(engine, stored) == expected
            # A replaced key is removed and added again by the same update.
            gone = removed | (added.keys() & expected.keys())
            engine.execute("CREATE OR REPLACE TABLE gone (k INTEGER)")
            if gone:
                engine.con.executemany("INSERT INTO gone VALUES (?)", [(k,) for k in gone])
            folder = Path(tmp) / str(number)
            rows = _write(engine, added)
            layers.write_delta(engine, stored, folder, rows, "SELECT k FROM gone", "zstd")
            expected = {k: v for k, v in expected.items() if k not in gone}
            expected.update(added)
        final = layers.Layered.scan(folder, ("k",))
        assert _read(engine, final) == expected
        assert len(final.parts) == len(steps) + 1
    engine.close()


def test_a_pair_goes_with_either_of_its_keys(tmp_path: Path):
    engine = DuckDBEngine()
    engine.execute("CREATE TABLE p AS SELECT * FROM (VALUES (1, 2), (1, 3), (3, 4)) t(a, b)")
    layers.write_whole(engine, tmp_path / "0", "SELECT * FROM p", "zstd")
    stored = layers.Layered.scan(tmp_path / "0", ("a", "b"))
    engine.execute("CREATE TABLE q AS SELECT * FROM (VALUES (2, 5)) t(a, b)")
    layers.write_delta(engine, stored, tmp_path / "1", "SELECT * FROM q", "SELECT 2", "zstd")
    now = layers.Layered.scan(tmp_path / "1", ("a", "b"))
    sql, params = now.read_sql("pairs")
    assert engine.rows(f"SELECT a, b FROM ({sql}) ORDER BY ALL", params) == [(1, 3), (2, 5), (3, 4)]
    # unchanged parts are the same files, linked, not written again
    assert (tmp_path / "1" / "rows-00000.parquet").stat().st_ino == (
        tmp_path / "0" / "rows-00000.parquet"
    ).stat().st_ino
    engine.close()


def test_a_table_is_written_whole_again_once_its_deltas_grow():
    stored = layers.Layered(Path("."), (layers.Part(0, 1000), layers.Part(1, 100, 3)), ("k",))
    assert not layers.should_compact(stored, 100)  # 200 of 1,000 rows in deltas
    assert layers.should_compact(stored, 151)  # over a quarter
    many = layers.Layered(
        Path("."), (layers.Part(0, 1000), *(layers.Part(i, 0, 0) for i in range(1, 16))), ("k",)
    )
    assert layers.should_compact(many, 0)
