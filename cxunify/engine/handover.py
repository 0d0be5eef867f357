"""Where a Spark run changes engines: from DuckDB (ingest) to Spark (everything after).

Ingest stays on DuckDB because it is file work, not row work at scale: detecting encodings,
keeping the line number and raw text of every unparseable row, reading spreadsheets' exports;
it is one linear pass. Everything after it — standardising, candidate pairs, their
comparisons, scoring, clustering, customer ids, profiles, outputs, update state, gates — runs
on Spark, from the mapped rows and rejects handed over as Parquet; nothing comes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxunify.config import Config
from cxunify.engine.duckdb import DuckDBEngine
from cxunify.errors import UserError
from cxunify.ingest import MAPPED, REJECTS

INSTALL_HINT = "the spark engine needs pyspark: pip install 'cxunify[spark]'"

# The working tables the Spark stages start from.
HANDED_OVER = (MAPPED, REJECTS)


def _check_installed() -> None:
    """Raise UserError naming what to install when the spark extra is missing."""
    try:
        import pyspark  # noqa: F401
        import rapidfuzz  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None


def session_for(config: Config, session: Any = None) -> tuple[Any, bool]:
    """`session`, or a SparkSession started from the ``spark:`` settings; and whether it was
    started here (then the caller stops it)."""
    _check_installed()
    if session is not None:
        return session, False
    from cxunify.engine.spark import spark_session

    return spark_session(config.spark), True


def open_spark(config: Config, staging: Any, session: Any = None) -> Any:
    """A SparkEngine for `config`, its working tables under ``spark.work_dir`` or `staging`
    (a local folder or a `HadoopPath`).

    Raises UserError naming what to install when pyspark (or the rest of the spark extra) is
    missing, before any work is done.
    """
    _check_installed()
    from cxunify.engine.spark import SparkEngine

    work_dir = config.spark.work_dir or str(staging / ".work" / "spark")
    if config.spark.work_dir:
        work_dir = work_dir.rstrip("/") + f"/{staging.name.lstrip('.')}"
    return SparkEngine(config.spark, work_dir, session)


def hand_over(local: DuckDBEngine, spark: Any, folder: Path) -> None:
    """Give Spark the mapped rows and rejects DuckDB read, as Parquet in `folder`."""
    spark.adopt(local, HANDED_OVER, folder)
