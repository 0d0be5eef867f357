"""One run at a time writes an output folder: a lock file beside it, created with O_EXCL.

The lock file ``.<out>.lock`` sits next to the output folder (the folder itself is replaced by
the run) and holds the owner's pid, host name and start time as JSON, what it does with the
folder (writes it, or reads it as the previous output of a run writing another), and on Linux
the boot and the process's start tick, which tell the owner from a later process given the
same pid. A run writing the folder holds the lock alone. Runs that only read it share it: the
lock then lists them all under ``readers`` (its own fields are the first reader's), and the
last to finish removes it; a run writing the folder is refused while any of them reads it,
and they are refused while it writes. A lock is stale (the run was killed) and taken over
when its pid is no longer alive on this host, when the machine has booted since, or when its
pid now belongs to a process started later (a reader that died is struck off the list); a
lock held from another host cannot be checked and is reported with the command to remove it.
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

from cxunify.errors import OutputError, UserError

# Readers share a lock by rewriting its list of readers, one at a time under a lock of the
# folder holding it (flock, POSIX). Elsewhere a reader holds the lock alone, as a writer does.
_CAN_SHARE = os.name == "posix"


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
    `reading_lock`): runs reading a folder share its lock, which says what they do to a run
    it refuses.

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
        if reading_for is not None and _CAN_SHARE:
            _join(path, out_dir, owner)
        else:
            _take(path, out_dir, owner, made if reading_for is None else None)
        try:
            yield path
        finally:
            _release(path, owner)
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:  # the run left something in it (its output), or another run did
                break


@contextmanager
def reading_lock(folder: Path, out_dir: Path) -> Iterator[Path | None]:
    """Hold the lock of a folder this run reads but does not write (an update's --previous
    when its --out, `out_dir`, is elsewhere), so no run swaps it away meanwhile; other runs
    reading it share the lock. The lock belongs beside the folder; when it cannot be made
    there (a read-only parent: an archived output, a snapshot), no run of this user could
    replace the folder either, and it is read without the lock; nor is one made where the
    parent does not exist (there is no folder to read: the run refuses it). Yields the lock
    file, or None."""
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
    missing: FileNotFoundError | None = None
    for _ in range(3):
        if made is not None:
            made += _make_folders(path.parent)
        try:
            if _create(path, owner):
                return
        except FileNotFoundError as exc:
            if made is None:
                raise
            missing = exc
            continue
        missing = None
        holder = _read_settled(path)
        running = _live(holder)
        if running:
            raise LockedError(_describe(out_dir, path, running))
        _remove_stale(path, holder)
    if missing is not None and path.parent.is_dir():
        # (not a race: the folder is there, and its file system makes no file: /proc)
        raise OutputError(
            f"{out_dir}: cannot create the lock file {path} ({missing.strerror}); choose "
            "another --out"
        )
    raise LockedError(f"{out_dir}: could not take the lock {path}; another run started")


def _join(path: Path, out_dir: Path, owner: dict) -> None:
    """Take the lock, or join the runs reading the folder that hold it."""
    for _ in range(3):
        if _create(path, owner):
            return
        with _folder_locked(path.parent):
            holder = _read_settled(path)
            if holder is not None and holder.get("mode") == "read":
                running = _live(holder)
                if running:
                    _rewrite(path, [*running, owner])
                    return
                path.unlink(missing_ok=True)  # its readers are all gone
                continue
        running = _live(holder)
        if running:  # a run writing the folder
            raise LockedError(_describe(out_dir, path, running))
        _remove_stale(path, holder)
    raise LockedError(f"{out_dir}: could not take the lock {path}; another run started")


def _release(path: Path, owner: dict) -> None:
    """Give the lock up: remove it, or, while other runs still read the folder, strike this
    one off its readers."""
    if _read(path) is None:
        return  # removed (by hand, or as stale while this run was thought dead)
    with _folder_locked(path.parent):
        holder = _read(path)
        if holder is None:
            return
        readers = _holders(holder)
        if owner not in readers:
            return  # taken over (this run was thought dead): it is another run's now
        readers.remove(owner)
        running = [reader for reader in readers if not _is_stale(reader)]
        if running:
            _rewrite(path, running)
        else:
            path.unlink(missing_ok=True)


def _make_folders(folder: Path) -> list[Path]:
    """Make `folder` and the folders above it that do not exist; return those made,
    outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():  # a file where a folder should be
        raise OutputError(f"{folder}: is a file, not a folder: nothing can be written inside it")
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


def _rewrite(path: Path, readers: list[dict]) -> None:
    """Replace the lock by one held by `readers`, whole (a rename): a run reading it at that
    instant reads the one or the other. Its own fields are the first reader's, as a lock
    of one run's are, so a version that knows no list still sees a live run."""
    holder = readers[0] if len(readers) == 1 else {**readers[0], "readers": readers}
    written = path.with_name(f"{path.name}.{os.getpid()}.new")
    try:
        written.write_text(json.dumps(holder), encoding="utf-8")
        os.replace(written, path)
    finally:
        written.unlink(missing_ok=True)


def _read(path: Path) -> dict | None:
    """The lock's owner, or None when the file is unreadable (being written, or garbage)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _read_settled(path: Path) -> dict | None:
    """The lock's owner; a lock file just created is empty for the instant before its owner
    is written, so an unreadable one is read again for up to a second."""
    for _ in range(20):
        holder = _read(path)
        if holder is not None or not path.exists():
            return holder
        time.sleep(0.05)
    return None


def _holders(holder: dict) -> list[dict]:
    """The runs a lock is held by: its readers, or the one run whose fields it holds."""
    readers = holder.get("readers")
    if isinstance(readers, list) and readers and all(isinstance(r, dict) for r in readers):
        return list(readers)
    return [{key: value for key, value in holder.items() if key != "readers"}]


def _live(holder: dict | None) -> list[dict]:
    """The runs holding the lock that are still running (or cannot be checked)."""
    if holder is None:
        return []
    return [run for run in _holders(holder) if not _is_stale(run)]


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
    with _folder_locked(path.parent):
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
def _folder_locked(folder: Path) -> Iterator[None]:
    """One run at a time changes a lock in `folder`: takes a stale one over, or joins or
    leaves the readers of one (the kernel releases this lock with its process)."""
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


def _describe(out_dir: Path, path: Path, holders: list[dict]) -> str:
    """Who holds the lock: one run, or the runs reading the folder together."""
    one = len(holders) == 1
    runs = "; ".join(
        f"pid {h.get('pid')} on {h.get('host')}, started {h.get('started_at', 'an unknown time')}"
        for h in holders
    )
    them = "it" if one else "them"
    if any(h.get("host") != socket.gethostname() for h in holders):
        advice = f"if {'that run is' if one else 'those runs are'} gone, remove {path}"
    elif all("pid_started" in h for h in holders):
        advice = f"wait for {them} to finish"
    else:  # a lock that cannot tell its owner from a later process with the same pid
        pids = ", ".join(str(h.get("pid")) for h in holders)
        advice = (
            f"wait for {them} to finish, or, if pid {pids} is not a cxunify run, remove {path}"
            if one
            else f"wait for {them} to finish, or, if pids {pids} are not cxunify runs, "
            f"remove {path}"
        )
    mode = holders[0].get("mode")
    if mode == "read":
        writing = ", ".join(dict.fromkeys(str(h.get("writing")) for h in holders))
        doing = f"reading this output folder (as --previous) to write {writing}"
    elif mode == "write":
        doing = "writing this output folder"
    else:  # a lock taken by a version that did not say
        doing = "writing this output folder, or reading it to write another"
    if one:
        return f"{out_dir}: another cxunify run ({runs}) is {doing}; {advice}"
    return f"{out_dir}: {len(holders)} other cxunify runs ({runs}) are {doing}; {advice}"
