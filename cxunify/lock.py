"""One run at a time per output folder: a lock file beside it, created with O_EXCL.

The lock file ``.<out>.lock`` sits next to the output folder (the folder itself is replaced by
the run) and holds the owner's pid, host name and start time as JSON. A lock whose pid is no
longer alive on this host is stale (the run was killed) and is taken over; a lock held from
another host cannot be checked and is reported with the command to remove it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cxunify.errors import UserError


class LockedError(UserError):
    """Another run is writing the same output folder."""


def lock_path(out_dir: Path) -> Path:
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.lock"


@contextmanager
def output_lock(out_dir: Path) -> Iterator[Path]:
    """Hold the lock of `out_dir` for the duration of the block; raise LockedError if held."""
    path = lock_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # Two attempts: the second follows the removal of a stale lock.
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is not None and not _is_stale(holder):
                raise LockedError(_describe(out_dir, path, holder)) from None
            _remove_stale(path, holder)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(owner, handle)
        break
    else:
        raise LockedError(f"{out_dir}: could not take the lock {path}; another run started")
    try:
        yield path
    finally:
        if _read(path) == owner:
            path.unlink(missing_ok=True)


@contextmanager
def reading_lock(folder: Path) -> Iterator[Path | None]:
    """Hold the lock of a folder this run reads but does not write (an update's --previous
    when --out is elsewhere), so no run swaps it away meanwhile. The lock belongs beside the
    folder; when it cannot be made there (a read-only parent: an archived output, a
    snapshot), no run of this user could replace the folder either, and it is read without
    the lock. Yields the lock file, or None."""
    with ExitStack() as held:
        try:
            path: Path | None = held.enter_context(output_lock(folder))
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            path = None
        yield path


def _read(path: Path) -> dict | None:
    """The lock's owner, or None when the file is unreadable (being written, or garbage)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _is_stale(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _remove_stale(path: Path, holder: dict | None) -> None:
    """Remove a stale lock. An unreadable lock may be one being written this instant, so it
    is only removed once it is a few seconds old."""
    if holder is None:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return
        if age < 5:
            raise LockedError(f"{path}: lock file is being written by another run; try again")
    path.unlink(missing_ok=True)


def _describe(out_dir: Path, path: Path, holder: dict) -> str:
    where = f"pid {holder.get('pid')} on {holder.get('host')}"
    since = holder.get("started_at", "an unknown time")
    advice = (
        "wait for it to finish"
        if holder.get("host") == socket.gethostname()
        else f"if that run is gone, remove {path}"
    )
    return (
        f"{out_dir}: another cxunify run ({where}, started {since}) is writing this output "
        f"folder; {advice}"
    )
