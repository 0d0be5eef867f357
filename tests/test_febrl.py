"""`python -m cxunify.febrl`: the Febrl benchmark sets as CSV, and its arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FILES = ("febrl3.csv", "febrl4a.csv", "febrl4b.csv", "febrl3_truth.csv", "febrl4_truth.csv")


def _febrl(cwd: Path, *args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cxunify.febrl", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)


def test_help_prints_usage_and_writes_nothing(tmp_path: Path):
    """`python -m cxunify.febrl --help` wrote the Febrl CSVs into a folder named --help."""
    for flag in ("--help", "-h"):
        done = _febrl(tmp_path, flag)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.startswith("usage: python -m cxunify.febrl [-h] [DIR]\n")
        words = " ".join(done.stdout.split())  # argparse wraps to the terminal's width
        assert "febrl4a.csv" in words and "(default: data/febrl)" in words
    assert list(tmp_path.iterdir()) == []


def test_a_usage_mistake_is_one_line_and_exit_1(tmp_path: Path):
    (tmp_path / "a_file").write_text("")
    for args, error in (
        (["--bogus"], "unrecognized arguments: --bogus (see `python -m cxunify.febrl --help`)"),
        (["a", "b"], "unrecognized arguments: b (see `python -m cxunify.febrl --help`)"),
        (["a_file"], "a_file: not a folder"),
    ):
        done = _febrl(tmp_path, *args)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"Error: {error}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]


def test_writes_the_files_into_the_folder_given(tmp_path: Path):
    done = _febrl(tmp_path, "febrl")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "febrl").iterdir()) == sorted(FILES)
    assert done.stderr.splitlines()[0] == "febrl/febrl3.csv: 5000 rows"
