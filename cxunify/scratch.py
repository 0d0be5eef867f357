"""Scratch folders in the system's temp folder that a killed run does not leave behind.

A run copies exports there (a gunzipped file, a file in UTF-8, DuckDB's spill): raw customer
data. `tempfile.TemporaryDirectory` removes its folder on the way out, but a run killed with
SIGKILL (the kernel's out-of-memory killer, a container stopped) never gets there, and the
next run would not look. Each folder here holds a file its run keeps locked (`flock`); the
kernel releases the lock with the process, so any later run can tell a folder whose run is
gone, and removes it before it makes its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock to tell a dead run's folder by, so nothing is swept
    fcntl = None  # type: ignore[assignment]

PREFIX = "cxunify-"
OWNER = ".owner"


def _held(path: Path) -> int | None:
    """Open and lock `path` (created); the descriptor holding the lock, or None when another
    process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep(root: Path | None = None) -> list[Path]:
    """Remove this user's scratch folders under `root` (the temp folder) whose run is gone;
    return them. A folder without its owner file is left alone: it is being made, or made by
    something else."""
    if fcntl is None:
        return []
    root = Path(tempfile.gettempdir()) if root is None else root
    removed = []
    with contextlib.suppress(OSError):
        for folder in root.glob(f"{PREFIX}*"):
            owner = folder / OWNER
            try:
                if folder.is_symlink() or folder.lstat().st_uid != os.getuid():
                    continue
                if not owner.is_file():
                    continue
                fd = _held(owner)
            except OSError:
                continue
            if fd is None:
                continue  # its run is alive
            try:
                shutil.rmtree(folder, ignore_errors=True)
            finally:
                os.close(fd)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def folder(kind: str) -> Iterator[Path]:
    """A new scratch folder `cxunify-<kind>-*`, removed on the way out, and by a later run if
    this one is killed. Dead runs' folders are swept first."""
    sweep()
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-"))
    # Locked under another name, then renamed: a sweep never sees an owner file unlocked.
    fd = _held(path / f"{OWNER}.new")
    try:
        if fd is None:  # cannot be: the file is new and ours
            raise OSError(f"{path}: cannot lock its owner file")
        os.replace(path / f"{OWNER}.new", path / OWNER)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if fd is not None:
            os.close(fd)
