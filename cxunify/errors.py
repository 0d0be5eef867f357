"""The one exception family of cxunify.

The library raises these and never prints or exits; the CLI edge turns them into a one-line
``Error: ...`` on stderr and the exit code carried by the class.
"""

from __future__ import annotations


class CxunifyError(Exception):
    """Base of every error cxunify raises on purpose."""

    exit_code = 2


class UserError(CxunifyError):
    """Something the user can fix: a config, a flag, an input file."""

    exit_code = 1


class ConfigError(UserError):
    """The configuration is invalid. ``problems`` holds every problem found, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems) if len(problems) > 1 else problems[0])


class InputError(UserError):
    """An input file cannot be read as declared (missing, empty, bad encoding, bad columns)."""


class OutputError(UserError):
    """The output folder cannot be written or read."""


class ResourceError(UserError):
    """The resources the run was given are not enough (DuckDB's memory limit)."""


class QualityGateError(CxunifyError):
    """A quality gate failed; the previous output was kept."""

    exit_code = 3
