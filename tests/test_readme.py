"""The README's two commands are the ones CI runs."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_exactly_two_commands():
    run_sample, run_tests = commands()
    assert "pip install -e ." in run_sample
    assert "cxunify unify --config configs/sample.yaml --out out/" in run_sample
    assert "pip install -e '.[test]'" in run_tests and run_tests.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands()[1] in ci
