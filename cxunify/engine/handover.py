"""Where a Spark run changes engines: from DuckDB (ingest, standardise) to Spark (the rest).

Ingest stays on DuckDB because it is file work, not row work at scale: detecting encodings,
keeping the line number and raw text of every unparseable row, reading spreadsheets' exports.
Standardising runs there too, in the macros that already give each row its matching forms;
both are one linear pass. What grows faster than the rows — candidate pairs, their
comparisons, scoring, clustering — and everything after (customer ids, profiles, outputs,
update state, gates) runs on Spark, from the records handed over as Parquet; nothing comes
back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxunify.block import NODES, RECORD_NODES
from cxunify.config import Config
from cxunify.engine.duckdb import DuckDBEngine
from cxunify.errors import UserError
from cxunify.ingest import REJECTS
from cxunify.standardize import RECORDS

INSTALL_HINT = "the spark engine needs pyspark: pip install 'cxunify[spark]'"

# The working tables the Spark stages start from.
HANDED_OVER = (RECORDS, RECORD_NODES, NODES, REJECTS)


def open_spark(config: Config, staging: Path, session: Any = None) -> Any:
    """A SparkEngine for `config`, its working tables under ``spark.work_dir`` or `staging`.

    Raises UserError naming what to install when pyspark (or the rest of the spark extra) is
    missing, before any work is done.
    """
    try:
        import pyspark  # noqa: F401
        import rapidfuzz  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    from cxunify.engine.spark import SparkEngine

    work_dir = config.spark.work_dir or str(staging / ".work" / "spark")
    if config.spark.work_dir:
        work_dir = work_dir.rstrip("/") + f"/{staging.name.lstrip('.')}"
    return SparkEngine(config.spark, work_dir, session)


def hand_over(local: DuckDBEngine, spark: Any, folder: Path) -> None:
    """Give Spark the records, nodes and rejects DuckDB built, as Parquet in `folder`."""
    spark.adopt(local, HANDED_OVER, folder)
