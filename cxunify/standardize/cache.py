"""The standardisation macros kept in a DuckDB file per user, attached instead of created again.

Creating the macros and their reference tables took about 0.45 s on every connection, a
fifth of a small run (and the test suite makes hundreds). A database file holding them
attaches in about 0.01 s; only the session variables the macros read are set again on each
connection (about 0.08 s), since DuckDB keeps those per connection.

The file is named by a digest of DuckDB's version and of every statement, so a changed macro
or another DuckDB gets a file of its own, never a stale one. It is written under another name
and renamed into place, so runs starting at once see a whole file or none. The folder is
``$CXUNIFY_CACHE_DIR``, else ``$XDG_CACHE_HOME/cxunify``, else ``~/.cache/cxunify``;
``CXUNIFY_CACHE_DIR=`` (empty) turns the cache off. A file DuckDB cannot attach (damaged) is
written again. A folder that cannot be used (not writable, another user's, writable by others:
its file would define the macros every run applies) means the macros are created on the
connection, as without a cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from cxunify.errors import interrupted

CACHE_ENV = "CXUNIFY_CACHE_DIR"
# Part of the digest: raise it when what the file holds changes in a way the statements do not
# show (how they are run, say).
_LAYOUT = "1"

Statements = Sequence[tuple[str, Any]]


def cache_dir() -> Path | None:
    """Where the macro files go; None when the cache is turned off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    try:
        return (Path(base) if base else Path.home() / ".cache") / "cxunify"
    except RuntimeError:  # no home folder (a container's user without one): no cache
        return None


def attach(con: duckdb.DuckDBPyConnection, statements: Statements, name: str) -> bool:
    """Make the tables and macros that `statements` create visible on `con` from the cached
    file `name` of them (written first if missing or damaged), and run the statements setting
    session variables on `con`. False when the cache cannot be used (`con` unchanged but
    perhaps for a file attached): the caller then runs `statements` on `con` itself."""
    folder = cache_dir()
    if folder is None or not _usable(folder):
        return False
    digest = _digest(statements)
    path = folder / f"macros-{name}-{digest[:24]}.duckdb"
    try:
        if not path.is_file():
            _write(path, statements)
        try:
            _attach(con, path, digest)
        except duckdb.Error as exc:  # damaged since it was written
            if interrupted(exc):
                raise
            _write(path, statements)
            _attach(con, path, digest)
        for sql, params in _session_statements(con, digest, statements):
            con.execute(sql, params)
    except (OSError, duckdb.Error) as exc:
        # (Ctrl-C inside one of these statements is DuckDB's error too: not a cache's fault)
        if interrupted(exc):
            raise KeyboardInterrupt from None
        return False
    return True


def _usable(folder: Path) -> bool:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = folder.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(status.st_mode) or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return not hasattr(os, "getuid") or status.st_uid == os.getuid()


def _digest(statements: Statements) -> str:
    text = hashlib.sha256()
    for part in (_LAYOUT, duckdb.__version__):
        text.update(part.encode() + b"\0")
    for sql, params in statements:
        # Parameters are lists, tuples and mappings of text, numbers and None: repr is exact.
        text.update(sql.encode() + b"\0" + repr(params).encode() + b"\0")
    return text.hexdigest()


def _split(
    con: duckdb.DuckDBPyConnection, statements: Statements
) -> list[tuple[duckdb.StatementType, str, Any]]:
    """Each statement on its own, with its parameters (a text holding several takes none)."""
    split: list[tuple[duckdb.StatementType, str, Any]] = []
    for sql, params in statements:
        parts = con.extract_statements(sql)
        if params is not None and len(parts) > 1:
            raise ValueError("parameters for a text of several statements")
        split.extend((part.type, part.query, params) for part in parts)
    return split


_SESSION: dict[str, list[tuple[str, Any]]] = {}


def _session_statements(
    con: duckdb.DuckDBPyConnection, digest: str, statements: Statements
) -> list[tuple[str, Any]]:
    """The statements setting session variables, found once per process (split by `con`'s
    parser, which runs nothing)."""
    if digest not in _SESSION:
        _SESSION[digest] = [
            (sql, params)
            for kind, sql, params in _split(con, statements)
            if kind == duckdb.StatementType.SET
        ]
    return _SESSION[digest]


def _write(path: Path, statements: Statements) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with duckdb.connect(str(partial)) as con:
            for _, sql, params in _split(con, statements):
                con.execute(sql, params)
        os.replace(partial, path)
    finally:
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    _remove_other_versions(path)


def _remove_other_versions(kept: Path) -> None:
    """Files of other versions of the same macros (an upgrade's leftovers), written an hour
    ago or more: a run that attached one has long since read it."""
    name = kept.name.rsplit("-", 1)[0]
    for old in kept.parent.glob(f"{name}-*.duckdb"):
        with contextlib.suppress(OSError):
            if old != kept and time.time() - old.stat().st_mtime > 3600:
                old.unlink()


def _attach(con: duckdb.DuckDBPyConnection, path: Path, digest: str) -> None:
    alias = f"cx_macros_{digest[:12]}"  # hex digits: a safe name
    databases = con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    if (alias,) not in databases:
        con.execute(f"ATTACH $path AS {alias} (READ_ONLY)", {"path": str(path)})
    # The connection's own database first: its tables, and a macro it defines, win.
    (database,) = con.execute("SELECT current_database()").fetchall()[0]
    con.execute("SET search_path = $path", {"path": f"{_quoted(database)}.main,{alias}.main"})


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
