"""`cxunify verify`: is every file of an output folder the one its run wrote?

A run records the SHA-256 of each Parquet output and of its own run.json in run.json, and of
each file of its update state in state/state.json (see output.write_tables, update.save_state).
An update checks the files it reads before reading them; this checks them all, so a pipeline
can verify a folder before loading it, and a copy or a backup can be checked against its run.
Parquet pages as DuckDB writes them carry no checksum: a damaged byte inside a compressed
page may read as another value without any error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxunify import output, update
from cxunify.errors import OutputError, public
from cxunify.output import NOT_AS_WRITTEN, digest_problem


@dataclass(frozen=True)
class Checked:
    """One file: its path in the folder, and what is wrong with it (None: as written)."""

    file: str
    problem: str | None


@public("folder")
def verify_output(folder: Path) -> list[Checked]:
    """Every file `folder`'s run.json and state.json record a digest of (and the two files
    themselves), each with its problem, if any; state.json is missing when the run wrote a
    state. Stops at a folder that is no output or was written before digests were kept."""
    output.require_folder(folder)
    manifest = folder / output.MANIFEST
    if not manifest.is_file():
        raise OutputError(f"{folder}: not a cxunify output folder (no {output.MANIFEST})")
    run = _json(manifest)
    if run is None or "sha256" not in run or not isinstance(run.get("outputs"), dict):
        raise OutputError(
            f"{folder}: its run.json records no digests to check its files by (written by an "
            "older version of cxunify, or damaged); run a full `cxunify unify` to write them"
        )
    checked = [
        Checked(
            output.MANIFEST,
            None if run["sha256"] == output.manifest_digest(run) else NOT_AS_WRITTEN,
        )
    ]
    for name, entry in sorted(run["outputs"].items()):
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if digest is not None:
            checked.append(_file(folder, f"{name}.parquet", digest))
    state_dir = folder / update.STATE
    # run.json says whether the run wrote a state; one of an older version does not, and its
    # state/ folder does. Without state.json the folder cannot be updated.
    if run.get("update_state") is True or state_dir.exists():
        checked += _state(state_dir)
    return checked


def _state(state_dir: Path) -> list[Checked]:
    prefix = f"{update.STATE}/"
    if not (state_dir / "state.json").exists():
        return [Checked(prefix + "state.json", "missing")]
    state = _json(state_dir / "state.json")
    files = state.get("files") if state else None
    if state is None:
        return [Checked(prefix + "state.json", "unreadable: not a JSON object")]
    if "sha256" not in state or not isinstance(files, dict):
        return [Checked(prefix + "state.json", "records no digests of the state's files")]
    own = None if state["sha256"] == update._state_digest(state) else NOT_AS_WRITTEN
    checked = [Checked(prefix + "state.json", own)]
    for name, digest in sorted(files.items()):
        checked.append(_file(state_dir, name, digest, prefix))
    return checked


def _file(folder: Path, name: str, digest: str, prefix: str = "") -> Checked:
    return Checked(prefix + name, digest_problem(folder / name, digest))


def _json(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
