"""State tables kept as a base file plus the deltas of later updates.

An update changes a small share of the stored records, identities and comparison levels, yet
writing them whole again took seconds per million rows. So each of those tables is a folder of
parts: ``rows-00000.parquet`` (the base a full run writes) and, per update since, the rows it
added (``rows-0000N.parquet``) and the keys whose older rows it removed or replaced
(``removed-0000N.parquet``, columns ``key`` and ``part``). A row of part j is current unless a
later part removed its key. The parts an update did not write are hard links to the previous
state's files (a copy where the filesystem cannot link): parts are never written twice, so the
previous output and the new one can share them.

An update writes the table whole again (compaction) once its deltas hold more than
``COMPACT_SHARE`` of the base's rows, or there are ``MAX_PARTS`` parts, so reading stays about
as cheap as reading one file; and records and nodes, which hold personal values, whenever it
deletes records (comparison levels hold none).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxunify.errors import OutputError
from cxunify.sql import parquet

if TYPE_CHECKING:
    from cxunify.engine import DuckDBEngine
    from cxunify.output import Folder

COMPACT_SHARE = 0.25
MAX_PARTS = 16


@dataclass(frozen=True)
class Part:
    """One update's rows (``rows`` of them), and the file of keys it removed (none in a base)."""

    index: int
    rows: int
    removed: int | None = None

    @property
    def rows_file(self) -> str:
        return f"rows-{self.index:05d}.parquet"

    @property
    def removed_file(self) -> str | None:
        return None if self.removed is None else f"removed-{self.index:05d}.parquet"


@dataclass(frozen=True)
class Layered:
    """A state table: its folder, its parts in order, and the columns a removed key names
    (a row is removed when any of them equals the key: a pair goes with either node)."""

    folder: Path
    parts: tuple[Part, ...]
    keys: tuple[str, ...]

    @classmethod
    def scan(cls, folder: Path, keys: tuple[str, ...]) -> Layered:
        """The table stored in `folder`, its parts found by their names (row counts are read
        from the files' footers)."""
        import pyarrow.parquet as pq

        parts = []
        for rows in sorted(folder.glob("rows-*.parquet")):
            index = int(rows.stem.split("-")[1])
            removed = folder / f"removed-{index:05d}.parquet"
            parts.append(
                Part(
                    index,
                    pq.read_metadata(rows).num_rows,
                    pq.read_metadata(removed).num_rows if removed.is_file() else None,
                )
            )
        if not parts or parts[0].removed is not None:
            raise FileNotFoundError(f"{folder}: no base part")
        return cls(folder, tuple(parts), keys)

    def read_sql(self, name: str) -> tuple[str, dict[str, Any]]:
        """A query of the current rows, and its parameters (prefixed by `name`, so that
        several tables can be read in one statement)."""
        rows = [str(self.folder / p.rows_file) for p in self.parts]
        removed = [str(self.folder / p.removed_file) for p in self.parts if p.removed_file]
        source, gone = f"${name}_rows", f"${name}_removed"
        if not removed:
            return f"SELECT * FROM {parquet(source, listed=True)}", {f"{name}_rows": rows}
        # The part a row came from is in its file's name; a removal only applies to the
        # parts before its own (a key an update replaced is in its own rows again).
        anti = "\n".join(
            f"ANTI JOIN {parquet(gone, listed=True)} g{i} "
            f"ON g{i}.key = r.{key} AND g{i}.part > r.cx_part"
            for i, key in enumerate(self.keys)
        )
        sql = f"""
            SELECT r.* EXCLUDE (cx_file, cx_part) FROM (
                SELECT *, CAST(regexp_extract(cx_file, '-(\\d+)\\.parquet$', 1) AS INTEGER)
                       AS cx_part
                FROM {parquet(source, "filename = 'cx_file'", listed=True)}
            ) r
            {anti}
        """
        return sql, {f"{name}_rows": rows, f"{name}_removed": removed}

    def delta_rows(self) -> int:
        return sum(p.rows for p in self.parts[1:])


def write_whole(engine: DuckDBEngine, folder: Folder, query_sql: str, compression: str) -> None:
    """Write a table as one base part into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    engine.write_parquet(query_sql, str(folder / Part(0, 0).rows_file), compression)


def should_compact(stored: Layered, new_rows: int) -> bool:
    """Whether a delta of `new_rows` rows would make the table due to be written whole."""
    too_many_parts = len(stored.parts) + 1 > MAX_PARTS
    deltas = stored.delta_rows() + new_rows
    return too_many_parts or deltas > COMPACT_SHARE * max(stored.parts[0].rows, 1)


def write_delta(
    engine: DuckDBEngine,
    stored: Layered,
    folder: Path,
    rows_sql: str,
    removed_sql: str,
    compression: str,
) -> None:
    """Link the stored parts into `folder` and add one part: the rows of `rows_sql` and the
    keys of `removed_sql` (one column)."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in stored.parts:
        for file in (part.rows_file, part.removed_file):
            if file:
                _link(stored.folder / file, folder / file)
    index = stored.parts[-1].index + 1
    probe = Part(index, 0, 0)
    engine.write_parquet(rows_sql, str(folder / probe.rows_file), compression)
    engine.write_parquet(
        f"SELECT DISTINCT key, {index} AS part FROM ({removed_sql}) k(key)",
        str(folder / str(probe.removed_file)),
        compression,
    )


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or one without hard links
        try:
            shutil.copyfile(source, target)
        except OSError as exc:
            raise OutputError(f"{target}: cannot copy the stored state: {exc.strerror}") from None
