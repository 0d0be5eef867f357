"""Nightly-run safety: one run per output folder, and a killed run never damages the output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cxunify.lock import lock_path, output_lock
from cxunify.output import staging_dir, swap_in
from tests.conftest import ROOT, write

SAMPLE_CONFIG = ROOT / "configs" / "sample.yaml"


def _tiny(tmp_path: Path) -> Path:
    write(tmp_path / "crm.csv", "id,email\n1,ann@gmail.com\n2,bob@gmail.com\n")
    return write(
        tmp_path / "cfg.yaml",
        "sources:\n  - {name: crm, kind: crm, path: crm.csv, id: id, columns: {email: email}}\n",
    )


def test_a_concurrent_second_run_is_refused(cli, tmp_path: Path):
    config, out = _tiny(tmp_path), tmp_path / "out"
    with output_lock(out):  # a run in progress, in this very process
        result = cli("unify", "--config", config, "--out", out, "-q")
        held = json.loads(lock_path(out).read_text())
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"Error: {out}: another cxunify run (pid {os.getpid()} on {held['host']}, started "
    )
    assert "is writing this output folder; wait for it to finish" in result.stderr
    assert not out.exists()
    assert not lock_path(out).exists()
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0


def test_a_run_refused_by_one_reading_the_folder_is_told_it_is_being_read(cli, tmp_path: Path):
    """`unify --previous out --out candidate` (a rule change reviewed) locks out, which it
    only reads: the nightly run on out was told another run 'is writing' it, and looked for
    a second writer of its folder. The lock says what its run does, and for which folder."""
    from cxunify.lock import reading_lock

    config, out = _tiny(tmp_path), tmp_path / "out"
    candidate = tmp_path / "candidate"
    with reading_lock(out, candidate):
        held = json.loads(lock_path(out).read_text())
        result = cli("unify", "--config", config, "--out", out, "-q")
    assert held["mode"] == "read" and held["writing"] == str(candidate)
    assert result.exit_code == 4
    assert " ".join(result.stderr.split()) == (
        f"Error: {out}: another cxunify run (pid {os.getpid()} on {held['host']}, started "
        f"{held['started_at']}) is reading this output folder (as --previous) to write "
        f"{candidate}; wait for it to finish"
    )
    # A lock written before locks said what their run does: either could be meant.
    import socket

    lock_path(out).write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_at": "now"})
    )
    result = cli("unify", "--config", config, "--out", out, "-q")
    lock_path(out).unlink()
    assert result.exit_code == 4
    assert "is writing this output folder, or reading it to write another;" in " ".join(
        result.stderr.split()
    )
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0


def test_a_refused_run_leaves_no_folder_behind(cli, tmp_path: Path):
    """The folders above --out are made to hold the lock: a run refused (a mistyped
    --previous) left them behind, empty; a run that writes its output keeps them."""
    config, out = _tiny(tmp_path), tmp_path / "new" / "deep" / "out"
    result = cli("unify", "--config", config, "--out", out, "--previous", tmp_path / "typo")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'typo'}: no such output folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml", "crm.csv"]
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert (out / "run.json").is_file() and not lock_path(out).exists()


def test_a_stale_lock_from_a_dead_process_is_taken_over(cli, tmp_path: Path):
    config, out = _tiny(tmp_path), tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    for mode in ({"mode": "write"}, {"mode": "read", "writing": str(tmp_path / "other")}):
        lock_path(out).write_text(
            json.dumps(
                {"pid": dead.pid, "host": socket.gethostname(), "started_at": "earlier", **mode}
            )
        )
        result = cli("unify", "--config", config, "--out", out, "-q")
        assert result.exit_code == 0, result.stderr
        assert not lock_path(out).exists()


LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process start times come from /proc"
)


@pytest.fixture
def live_pid():
    """A process alive for the test's duration, standing in for an unrelated process that
    was given the pid of a dead run."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


@LINUX_PROC
def test_a_lock_whose_pid_now_belongs_to_a_later_process_is_taken_over(
    cli, tmp_path: Path, live_pid: int
):
    import socket

    from cxunify.lock import _process_identity

    config, out = _tiny(tmp_path), tmp_path / "out"
    identity = _process_identity(live_pid)
    for stale in (
        {**identity, "pid_started": int(identity["pid_started"]) - 1},  # pid reused
        {**identity, "boot_id": "a-boot-before"},  # the machine restarted since
    ):
        lock_path(out).write_text(
            json.dumps({"pid": live_pid, "host": socket.gethostname(), **stale})
        )
        result = cli("unify", "--config", config, "--out", out, "-q")
        assert result.exit_code == 0, result.stderr
        assert not lock_path(out).exists()
    # The process the lock names, unchanged: the run is refused.
    lock_path(out).write_text(
        json.dumps({"pid": live_pid, "host": socket.gethostname(), "mode": "write", **identity})
    )
    result = cli("unify", "--config", config, "--out", out, "-q")
    assert result.exit_code == 4
    assert " ".join(result.stderr.split()).endswith(
        "is writing this output folder; wait for it to finish"
    )


@LINUX_PROC
def test_a_stale_lock_another_run_took_over_meanwhile_stays_that_runs(
    tmp_path: Path, live_pid: int, monkeypatch
):
    """Two runs start at once after a killed one: both read the dead run's lock, one removes
    it and takes its own; the other removed that new lock too, and both ran on the folder
    (15 of 40 tries with two processes)."""
    import socket

    from cxunify import lock

    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stale = {"pid": dead.pid, "host": host, "started_at": "earlier"}
    other = {"pid": live_pid, "host": host, "started_at": "now", **lock._process_identity(live_pid)}
    lock_path(out).write_text(json.dumps(stale))
    read = lock._read

    def read_as_the_other_run_takes_over(path: Path) -> dict | None:
        holder = read(path)
        if holder == stale:  # the other run removes the stale lock and takes its own now
            path.write_text(json.dumps(other))
        return holder

    monkeypatch.setattr(lock, "_read", read_as_the_other_run_takes_over)
    with pytest.raises(lock.LockedError), output_lock(out):
        pass
    assert json.loads(lock_path(out).read_text()) == other


def test_a_lock_that_cannot_tell_its_process_says_how_to_clear_it(
    cli, tmp_path: Path, live_pid: int
):
    import socket

    config, out = _tiny(tmp_path), tmp_path / "out"
    lock_path(out).write_text(
        json.dumps({"pid": live_pid, "host": socket.gethostname(), "started_at": "x"})
    )
    result = cli("unify", "--config", config, "--out", out, "-q")
    assert result.exit_code == 4
    assert (
        f"wait for it to finish, or, if pid {live_pid} is not a cxunify run, "
        f"remove {lock_path(out)}" in " ".join(result.stderr.split())
    )


def test_a_lock_from_another_host_is_reported_not_broken(cli, tmp_path: Path):
    config, out = _tiny(tmp_path), tmp_path / "out"
    lock_path(out).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started_at": "x"}))
    result = cli("unify", "--config", config, "--out", out, "-q")
    assert result.exit_code == 4
    assert f"if that run is gone, remove {lock_path(out)}" in result.stderr


def test_runs_reading_a_folder_share_its_lock_and_a_writer_waits_for_them_all(cli, tmp_path: Path):
    """Two runs reading out for outputs of their own (a rule change reviewed, an update
    elsewhere) refused each other, as if each could swap out away: they share its lock now,
    and the run writing out is refused while either still reads it, naming both."""
    import socket

    from cxunify.lock import reading_lock

    config, out = _tiny(tmp_path), tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    first, third = tmp_path / "first", tmp_path / "third"
    with reading_lock(out, first):
        alone = json.loads(lock_path(out).read_text())
        result = cli("unify", "--config", config, "--previous", out, "--out", tmp_path / "second")
        assert result.exit_code == 0, result.stderr
        assert json.loads(lock_path(out).read_text()) == alone
        with reading_lock(out, third):
            held = json.loads(lock_path(out).read_text())
            result = cli("unify", "--config", config, "--out", out, "-q")
        assert json.loads(lock_path(out).read_text()) == alone
    assert not lock_path(out).exists()
    assert [reader["writing"] for reader in held["readers"]] == [str(first), str(third)]
    assert result.exit_code == 4
    where = f"pid {os.getpid()} on {socket.gethostname()}, started"
    assert " ".join(result.stderr.split()) == (
        f"Error: {out}: 2 other cxunify runs ({where} {alone['started_at']}; {where} "
        f"{held['readers'][1]['started_at']}) are reading this output folder (as --previous) "
        f"to write {first}, {third}; wait for them to finish"
    )


def test_runs_joining_the_readers_of_a_lock_at_once_are_all_listed(tmp_path: Path):
    """Each reader joining rewrites the list: two at once, one's entry was lost, and the
    lock went with the other while it still read. Eight threads join at one instant."""
    import threading

    from cxunify.lock import reading_lock

    out, readers = tmp_path / "out", 8
    start, joined, read = (threading.Barrier(readers, timeout=10) for _ in range(3))
    listed: list[set[str]] = []
    failed: list[BaseException] = []

    def reading(n: int) -> None:
        try:
            start.wait()
            with reading_lock(out, tmp_path / f"candidate{n}"):
                joined.wait()
                holder = json.loads(lock_path(out).read_text())
                listed.append({reader["writing"] for reader in holder["readers"]})
                read.wait()
        except BaseException as exc:  # (the test's own failure, reported below)
            failed.append(exc)

    threads = [threading.Thread(target=reading, args=(n,)) for n in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed
    assert listed == [{str(tmp_path / f"candidate{n}") for n in range(readers)}] * readers
    assert not lock_path(out).exists()


def test_a_reader_that_died_is_struck_off_a_lock_others_still_read(tmp_path: Path, live_pid):
    """A read lock listing a killed run beside a live one: a reader joins the live one and
    strikes the dead off; a writer is refused, naming the live reader alone."""
    import socket

    from cxunify import lock

    out, host = tmp_path / "out", socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = {"pid": dead.pid, "host": host, "started_at": "then", "mode": "read", "writing": "a"}
    alive = {"pid": live_pid, "host": host, "started_at": "now", "mode": "read", "writing": "b",
             **lock._process_identity(live_pid)}  # fmt: skip
    lock_path(out).write_text(json.dumps({**gone, "readers": [gone, alive]}))
    refused = f"another cxunify run \\(pid {live_pid} on "
    with pytest.raises(lock.LockedError, match=refused), output_lock(out):
        pass
    with lock.reading_lock(out, tmp_path / "candidate"):
        held = json.loads(lock_path(out).read_text())
    assert [reader["writing"] for reader in held["readers"]] == ["b", str(tmp_path / "candidate")]
    assert json.loads(lock_path(out).read_text()) == alive


def test_swap_never_leaves_the_path_missing(tmp_path: Path):
    out, staging = tmp_path / "out", tmp_path / ".out.tmp-1"
    for folder, text in ((out, "old"), (staging, "new")):
        folder.mkdir()
        (folder / "run.json").write_text(text)
    swap_in(staging, out)
    assert (out / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _mode(folder: Path) -> int:
    return os.stat(folder).st_mode & 0o7777


def test_a_run_keeps_the_mode_of_the_output_folder(cli, tmp_path: Path):
    """`chmod 700 out` (the customers' data, for its owner alone) came back 755 after the
    next run: a fresh folder, made under the umask, was swapped in. The new folder takes the
    old one's mode, and so does the one a failed gate sets aside; the owner keeps full
    access (a run writes the folder, and removes the one it replaced)."""
    config, out = _tiny(tmp_path), tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    out.chmod(0o700)
    assert _mode(staging_dir(out)) == 0o700  # from the start: the run's files go there
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert _mode(out) == 0o700
    out.chmod(0o550)
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert _mode(out) == 0o750
    out.chmod(0o710)
    gated = write(tmp_path / "gated.yaml", config.read_text() + "gates:\n  min_linked_share: 1\n")
    assert cli("unify", "--config", gated, "--out", out, "-q").exit_code == 3
    assert (_mode(out), _mode(tmp_path / "out.rejected")) == (0o710, 0o710)


def test_a_run_keeps_what_the_user_put_in_the_output_folder(cli, tmp_path: Path):
    """A run replaced the folder whole: README's `--out out/febrl4`, a report and a
    `sql --to out/vip.parquet` went with the next run, without a word. The output's own
    files are the new run's; the rest is carried over (linked, so a run killed before its
    swap leaves them where they were)."""
    out = tmp_path / "out"
    crm = write(tmp_path / "crm.csv", "id,first_name,email\n1,Ann,ann@fastmail.com\n")
    assert cli("unify", "--crm", crm, "--out", out, "-q").exit_code == 0
    nested = out / "febrl4"
    assert cli("unify", "--crm", crm, "--out", nested, "-q").exit_code == 0
    write(out / "report.html", "<html>mine</html>")
    (out / "notes").mkdir()
    write(out / "notes" / "a.txt", "kept")
    (out / "latest").symlink_to("notes")
    before = (out / "run.json").read_text()
    write(crm, "id,first_name,email\n1,Ann,ann@fastmail.com\n2,Bob,bob@fastmail.com\n")
    assert cli("unify", "--crm", crm, "--out", out, "-q").exit_code == 0
    assert (out / "run.json").read_text() != before
    assert (out / "report.html").read_text() == "<html>mine</html>"
    assert (out / "notes" / "a.txt").read_text() == "kept"
    assert os.readlink(out / "latest") == "notes"
    assert cli("verify", str(nested)).exit_code == 0
    profiles = duckdb.sql(f"SELECT count(*) FROM '{out}/profiles.parquet'").fetchall()
    assert profiles == [(2,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.csv", "out"]


def test_a_signal_between_the_two_renames_of_a_swap_waits_for_the_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Where renameat2 cannot swap (another OS, some network filesystems), the swap is two
    renames; SIGTERM between them (read as Ctrl-C) stopped the run with the output in neither
    place, and the clean-up then removed the new one as unfinished. Now it waits."""
    from cxunify import output

    out, staging = tmp_path / "out", tmp_path / ".out.tmp-1"
    for folder, text in ((out, "old"), (staging, "new")):
        folder.mkdir()
        (folder / "run.json").write_text(text)
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    rename = Path.rename

    def rename_then_terminated(self: Path, target):
        moved = rename(self, target)
        if self == out:  # after the first of the two: the output is in neither place
            os.kill(os.getpid(), signal.SIGTERM)
        return moved

    def stop(signum, frame):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "rename", rename_then_terminated)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            swap_in(staging, out)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (out / "run.json").read_text() == "new"
    assert not staging.exists()


def _readable(out: Path) -> int:
    """Rows of the identity map, read through the output's DuckDB views."""
    con = duckdb.connect(str(out / "cxunify.duckdb"), read_only=True)
    try:
        return con.sql("SELECT count(*) FROM identity_map").fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.parametrize("moment", ["staging", "scoring", "parquet"])
def test_sigkill_mid_run_leaves_the_previous_output_intact(
    sample_out: Path, tmp_path: Path, moment: str
):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    (out / DATABASE).unlink()
    from cxunify.output import write_database

    write_database(out)
    before = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    rows = _readable(out)
    command = [sys.executable, "-m", "cxunify", "unify", "--config", str(SAMPLE_CONFIG),
               "--out", str(out), "-q"]  # fmt: skip
    run = subprocess.Popen(command, cwd=tmp_path)
    deadline = time.monotonic() + 60
    staged_at = None
    try:
        while time.monotonic() < deadline and run.poll() is None:
            staging = list(tmp_path.glob(".out.tmp-*"))
            staged_at = staged_at or (time.monotonic() if staging else None)
            if moment == "staging" and staging:
                break
            # EM and clustering take seconds on the sample: a kill lands in the middle.
            if moment == "scoring" and staged_at and time.monotonic() - staged_at > 1.0:
                break
            if moment == "parquet" and staging and list(staging[0].glob("*.parquet")):
                break
            time.sleep(0.005)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait()
    assert run.returncode == -signal.SIGKILL, f"the run ended before the kill at {moment!r}"
    # The previous output is whole and queryable; the dead run's lock and staging remain.
    assert {p.name: p.read_bytes() for p in out.glob("*.parquet")} == before
    assert _readable(out) == rows
    assert lock_path(out).exists()
    assert list(tmp_path.glob(".out.tmp-*"))
    # The next run detects the stale lock and clears what the dead one left behind.
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []
    assert _readable(out) == rows


def test_sigterm_stops_a_run_that_cleans_up_after_itself(sample_out: Path, tmp_path: Path):
    """A scheduler stops a job with SIGTERM (`timeout 1h cxunify unify ...`). It ended the
    run where it stood, as SIGKILL does, its staging folder and lock left for the next run;
    now the run stops as on Ctrl-C: both go, the previous output stays, and the exit code is
    143 (128 + SIGTERM), as a shell reports a process SIGTERM ended."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    before = {p.name: p.read_bytes() for p in out.glob("*.parquet")}
    command = [sys.executable, "-m", "cxunify", "unify", "--config", str(SAMPLE_CONFIG),
               "--out", str(out), "-q"]  # fmt: skip
    run = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline, staged_at = time.monotonic() + 60, None
    try:
        while time.monotonic() < deadline and run.poll() is None:
            staged = list(tmp_path.glob(".out.tmp-*"))
            staged_at = staged_at or (time.monotonic() if staged else None)
            if staged_at and time.monotonic() - staged_at > 1.0:  # in the middle of the work
                break
            time.sleep(0.005)
        run.send_signal(signal.SIGTERM)
    finally:
        _, errors = run.communicate()
    assert run.returncode == 143, errors
    assert errors.strip().endswith("Terminated.")
    assert {p.name: p.read_bytes() for p in out.glob("*.parquet")} == before
    assert not lock_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# The signal is sent by the process to itself at the moment named, so it lands there each
# time: while typer builds the command (the first second of every command) or in the command
# before its error boundary (while it imports what it runs).
_SIGNAL_AT = """
import os, signal, sys
import typer.main
from cxunify import cli

sig, moment = getattr(signal, sys.argv[1]), sys.argv[2]
if moment == "building":
    build = typer.main.get_command
    def get_command(app):
        os.kill(os.getpid(), sig)
        return build(app)
    typer.main.get_command = get_command
else:
    def _guard(debug, action):
        os.kill(os.getpid(), sig)
    cli._guard = _guard
cli.main(["evaluate", "--out", "out", "--truth", "truth.csv", "--json"])
"""


@pytest.mark.parametrize("moment", ["building", "importing"])
@pytest.mark.parametrize(
    ("name", "code", "said"), [("SIGINT", 130, "Interrupted."), ("SIGTERM", 143, "Terminated.")]
)
def test_a_signal_before_the_command_runs_is_one_line_and_its_exit_code(
    tmp_path: Path, moment: str, name: str, code: int, said: str
):
    """Ctrl-C in the first second of a command printed a 40-line traceback and the process
    died by the signal (-2); later in that second it exited 130 without a word, SIGTERM too."""
    run = subprocess.run(
        [sys.executable, "-c", _SIGNAL_AT, name, moment],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (run.returncode, run.stdout, run.stderr) == (code, "", f"{said}\n")


DATABASE = "cxunify.duckdb"


def test_diff_of_an_output_with_itself_is_empty(cli, sample_out: Path):
    result = cli("diff", sample_out, sample_out, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"] == {
        "created": 0, "merged": 0, "split": 0, "changed": 0, "removed": 0,
    }  # fmt: skip


def test_flags_run_uses_the_lock_too(cli, tmp_path: Path):
    _tiny(tmp_path)
    out = tmp_path / "out"
    with output_lock(out):
        result = cli("unify", "--crm", tmp_path / "crm.csv", "--out", out, "-q")
    assert result.exit_code == 4
    assert "is writing this output folder" in result.stderr


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MB tmpfs, where the machine lets tests mount one (root in a container), else skip."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_is_named_as_one_and_leaves_nothing_behind(cli, small_disk: Path):
    """A nightly run on a full disk said `Internal error: IOException ... please report it`
    (exit 2): a disk to make room on is the user's to fix, and the message says so."""
    out = small_disk / "out"
    result = cli("unify", "--config", ROOT / "configs" / "sample.yaml", "--out", out, "-q")
    assert result.exit_code == 1, result.stderr
    message = " ".join(result.stderr.split())
    assert message.startswith(f"Error: {small_disk}/.out.tmp-"), message
    assert ": no space left on its disk; make room there, or write --out to a disk" in message
    assert list(small_disk.iterdir()) == []  # the run's staging folder went with it


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
def test_an_output_where_no_file_can_be_made_is_not_called_locked(cli):
    """`--out /proc/x` said another run had started (exit 4): /proc makes no files, and
    taking the lock failed three times as if another run kept removing it."""
    result = cli("unify", "--crm", ROOT / "sample_data" / "crm.csv", "--out", "/proc/cx-out")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: /proc/cx-out: cannot create the lock file /proc/.cx-out.lock (No such file or "
        "directory); choose another --out\n",
    )
