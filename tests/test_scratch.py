"""Scratch folders in the temp folder: a killed run's copies of the exports do not stay."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cxunify import scratch
from tests.conftest import SAMPLE

pytestmark = pytest.mark.skipif(
    scratch.fcntl is None, reason="no flock here: a dead run's folder cannot be told"
)


def test_a_folder_goes_on_the_way_out_and_a_live_runs_folder_is_never_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch.folder("train") as work:
        (work / "export.csv").write_text("id,email\n1,a@example.com\n")
        assert work.parent == tmp_path and work.name.startswith("cxunify-train-")
        # Its run (this process) holds its lock: another run's sweep leaves it alone.
        assert scratch.sweep(tmp_path) == []
        assert (work / "export.csv").is_file()
    assert not work.exists()


def test_folders_not_made_by_a_run_are_left_alone(tmp_path: Path) -> None:
    others = [tmp_path / "cxunify-cache-x", tmp_path / "something-else", tmp_path / "cxunify-y"]
    for folder in others:
        folder.mkdir()
    (tmp_path / "something-else" / scratch.OWNER).write_text("")
    (tmp_path / "cxunify-file").write_text("not a folder")
    assert scratch.sweep(tmp_path) == []
    assert all(folder.is_dir() for folder in others)


def test_a_killed_runs_copies_go_with_the_next_run(tmp_path: Path) -> None:
    """`cxunify train` killed with SIGKILL while it reads a gzipped export leaves its folder,
    holding the gunzipped copy; the next cxunify command that makes a scratch folder removes
    it."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    orders = tmp_path / "orders.csv.gz"
    orders.write_bytes(gzip.compress((SAMPLE / "orders.csv").read_bytes()))
    env = {**os.environ, "TMPDIR": str(temp)}
    command = [
        sys.executable, "-m", "cxunify", "train", "--to", str(tmp_path / "model.json"),
        "--crm", str(SAMPLE / "crm.csv"), "--transactions", str(orders),
    ]  # fmt: skip
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        # Killed while a scratch folder holds the export gunzipped.
        while time.monotonic() < deadline and run.poll() is None:
            if any(temp.glob("cxunify-*/**/*gunzip*")):
                break
            time.sleep(0.005)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait()
    assert run.returncode == -signal.SIGKILL, "the training ended before the kill"
    (left,) = temp.glob("cxunify-*")
    assert any("gunzip" in p.name for p in left.rglob("*"))

    again = subprocess.run(
        [sys.executable, "-m", "cxunify", "init", "--crm", str(SAMPLE / "crm.csv")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert not left.exists()
    assert list(temp.iterdir()) == []
