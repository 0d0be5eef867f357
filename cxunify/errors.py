"""The one exception family of cxunify.

The library raises these and never prints or exits; the CLI edge turns them into a one-line
``Error: ...`` on stderr and the exit code carried by the class.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


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


# How DuckDB names a Parquet file it could not read: a damaged page, a truncated file, or
# one cut to nothing (a copy onto a full disk leaves 0 bytes).
_UNREADABLE_FILE = re.compile(
    r'Failed to read file "(?P<a>[^"]+)": (?P<why>[^\n]+)'
    r"|No magic bytes found at end of file '(?P<b>[^']+)'"
    r"|File '(?P<c>[^']+)' (?P<small>too small to be a Parquet file)"
)


def _in_update_state(path: str) -> bool:
    """Whether `path` is in the ``state/`` folder of an output (a folder with run.json)."""
    return any(
        folder.name == "state" and (folder.parent / "run.json").is_file()
        for folder in Path(path).parents
    )


def damaged_state(path: str | Path, why: str) -> str:
    """The one-line message for a file of an output's update state that is not as written."""
    return f"{path}: damaged update state ({why}); run a full `cxunify unify` to rebuild it"


def damaged_output(path: str | Path, why: str, ids: bool = False) -> str:
    """The one-line message for an output file (or run.json) that is not as its run wrote it.
    A full run rebuilds each output but those the customer ids are carried over from (`ids`):
    it reads those too, so it cannot mend them."""
    if ids:
        return (
            f"{path}: damaged output ({why}); the customer ids cannot be carried over from it: "
            "restore the folder from a backup, or remove it to start again with new ids"
        )
    return f"{path}: damaged output ({why}); run a full `cxunify unify` to rebuild it"


def interrupted(exc: BaseException) -> bool:
    """Whether `exc` is an engine's report of Ctrl-C: DuckDB checks for the signal inside a
    query and raises an error of its own instead of KeyboardInterrupt."""
    return type(exc).__name__ == "InterruptException" or str(exc).startswith("Query interrupted")


def unreadable_file(exc: BaseException) -> str | None:
    """The one-line message for an engine error that a file could not be read (a damaged or
    truncated Parquet file: disk trouble, a copy cut short), else None. Such a file is no
    fault of cxunify's, and the message says which file and what to do."""
    found = _UNREADABLE_FILE.search(str(exc))
    if found is None:
        return None
    path = found["a"] or found["b"] or found["c"]
    why = (found["why"] or found["small"] or "truncated, no Parquet footer").strip().rstrip(".")
    if _in_update_state(path):
        return damaged_state(path, why)
    return f"{path}: cannot be read, the file is damaged ({why})"


def public(*paths: str) -> Callable[[F], F]:
    """Make a function of the Python API take what a caller gives and raise what it documents:
    the parameters named in `paths` as text or any path-like too (``explain("out")`` stopped
    at ``'str' / 'str'``), and, as the CLI tells them, a file an engine could not read (a
    damaged output) an OutputError naming it, and DuckDB's report of Ctrl-C a
    KeyboardInterrupt, not an engine's own errors."""

    def wrap(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            for name in paths:
                value = bound.arguments.get(name)
                if isinstance(value, str | os.PathLike) and not isinstance(value, Path):
                    bound.arguments[name] = Path(value)
            try:
                return function(*bound.args, **bound.kwargs)
            except CxunifyError:
                raise
            except Exception as exc:
                if interrupted(exc):
                    raise KeyboardInterrupt from None
                damaged = unreadable_file(exc)
                if damaged is not None:
                    raise OutputError(damaged) from None
                raise

        return call  # type: ignore[return-value]

    return wrap
