"""One run at a time per output folder: a lock file beside it, created with O_EXCL.

The lock file ``.<out>.lock`` sits next to the output folder (the folder itself is replaced by
the run) and holds the owner's pid, host name and start time as JSON, what it does with the
folder (writes it, or reads it as the previous output of a run writing another), and on Linux
the boot and the process's start tick, which tell the owner from a later process given the
same pid. A lock is stale (the run was killed) and taken over when its pid is no longer alive
on this host, when the machine has booted since, or when its pid now belongs to a process
started later; a lock held from another host cannot be checked and is reported with the
command to remove it.
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
    """Another run is writing the same output folder, or reading it for another.

    Its own exit code: a cron wrapper retries later on this one, where a config error needs
    a person (both were 1)."""

    exit_code = 4


def lock_path(out_dir: Path) -> Path:
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.lock"


@contextmanager
def output_lock(out_dir: Path, reading_for: Path | None = None) -> Iterator[Path]:
    """Hold the lock of `out_dir` for the duration of the block; raise LockedError if held.
    `reading_for`: the folder this run writes, when it only reads `out_dir` (see
    `reading_lock`); the lock says so to a run it refuses.

    A run writing `out_dir` makes the folders above it that do not exist yet, to hold the
    lock, and removes them again if it leaves nothing in them: a refused run (a mistyped
    --previous, say) leaves the file system as it was."""
    path = lock_path(out_dir)
    owner: dict[str, str | int] = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "write" if reading_for is None else "read",
        **({} if reading_for is None else {"writing": str(Path(reading_for).resolve())}),
        **_process_identity(os.getpid()),
    }
    made: list[Path] = []
    try:
        _take(path, out_dir, owner, made if reading_for is None else None)
        try:
            yield path
        finally:
            if _read(path) == owner:
                path.unlink(missing_ok=True)
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:  # the run left something in it (its output), or another run did
                break


@contextmanager
def reading_lock(folder: Path, out_dir: Path) -> Iterator[Path | None]:
    """Hold the lock of a folder this run reads but does not write (an update's --previous
    when its --out, `out_dir`, is elsewhere), so no run swaps it away meanwhile. The lock
    belongs beside the folder; when it cannot be made there (a read-only parent: an archived
    output, a snapshot), no run of this user could replace the folder either, and it is read
    without the lock; nor is one made where the parent does not exist (there is no folder to
    read: the run refuses it). Yields the lock file, or None."""
    with ExitStack() as held:
        try:
            path: Path | None = held.enter_context(output_lock(folder, reading_for=out_dir))
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
                raise
            path = None
        yield path


def _take(path: Path, out_dir: Path, owner: dict, made: list[Path] | None) -> None:
    """Take the lock alone. `made`: where to note the folders made to hold it (None: make
    none, the run only reads)."""
    # Three attempts: the next follows the removal of a stale lock, or of the folder by a
    # run beside this one that made it and was refused.
    for _ in range(3):
        if made is not None:
            made += _make_folders(path.parent)
        try:
            if _create(path, owner):
                return
        except FileNotFoundError:
            if made is None:
                raise
            continue
        holder = _read(path)
        if holder is not None and not _is_stale(holder):
            raise LockedError(_describe(out_dir, path, holder))
        _remove_stale(path, holder)
    raise LockedError(f"{out_dir}: could not take the lock {path}; another run started")


def _make_folders(folder: Path) -> list[Path]:
    """Make `folder` and the folders above it that do not exist; return those made,
    outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(exist_ok=True)
    return missing[::-1]


def _create(path: Path, owner: dict) -> bool:
    """Create the lock holding `owner`; False when there is one already."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(owner, handle)
    return True


def _read(path: Path) -> dict | None:
    """The lock's owner, or None when the file is unreadable (being written, or garbage)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _process_identity(pid: int) -> dict[str, str | int]:
    """What tells process `pid` from a later one given the same pid, where the system says
    (Linux): the boot it runs in, and its start time in clock ticks since that boot. Empty
    elsewhere, or when the process is gone."""
    identity: dict[str, str | int] = {}
    try:
        identity["boot_id"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Field 22 (starttime); the command name (field 2) may hold spaces, so count from
        # the ')' that closes it.
        identity["pid_started"] = int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        pass
    return identity


def _is_stale(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    now = _process_identity(pid)
    if "boot_id" in holder and "boot_id" in now and holder["boot_id"] != now["boot_id"]:
        return True  # the machine has restarted since: no process of that boot is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        pass
    # Alive, but the pid may have been given to another process since the owner died (a
    # cron job after a crash, or a container restarted, where pids start over).
    started = holder.get("pid_started")
    return started is not None and "pid_started" in now and started != now["pid_started"]


def _remove_stale(path: Path, holder: dict | None) -> None:
    """Remove a stale lock. An unreadable lock may be one being written this instant, so it
    is only removed once it is a few seconds old.

    Runs started together after a killed one all find its lock stale: the first removes it
    and takes its own, which the others must not remove in turn. So the lock is read again
    and removed only if it is still the stale one, one run at a time (the folder holding
    the lock is locked meanwhile; the kernel releases that lock with its process)."""
    with _taking_over(path.parent):
        if _read(path) != holder:
            return  # taken over, or removed, since it was read: try to take it again
        if holder is None:
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                return
            if age < 5:
                raise LockedError(f"{path}: lock file is being written by another run; try again")
        path.unlink(missing_ok=True)


@contextmanager
def _taking_over(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock of the folder
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (releases the lock)


def _describe(out_dir: Path, path: Path, holder: dict) -> str:
    where = f"pid {holder.get('pid')} on {holder.get('host')}"
    since = holder.get("started_at", "an unknown time")
    if holder.get("host") != socket.gethostname():
        advice = f"if that run is gone, remove {path}"
    elif "pid_started" in holder:
        advice = "wait for it to finish"
    else:  # a lock that cannot tell its owner from a later process with the same pid
        advice = (
            f"wait for it to finish, or, if pid {holder.get('pid')} is not a cxunify run, "
            f"remove {path}"
        )
    mode = holder.get("mode")
    if mode == "read":
        doing = f"is reading this output folder (as --previous) to write {holder.get('writing')}"
    elif mode == "write":
        doing = "is writing this output folder"
    else:  # a lock taken by a version that did not say
        doing = "is writing this output folder, or reading it to write another"
    return f"{out_dir}: another cxunify run ({where}, started {since}) {doing}; {advice}"
