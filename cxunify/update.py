"""Incremental update: link only new and changed records, re-cluster only what they touch.

A full run leaves what an update needs in ``<out>/state/``: the standardised records, the
nodes they collapse into, the comparison levels of every candidate pair, the links, the
components and the final clusters, and the fitted model. ``cxunify update`` then

1. reads and standardises only the new exports (rows whose source and id are already stored
   replace the stored ones, unless equal to them in every value, as most rows of an export of
   the whole table are; stored records keep their record keys, new ones get keys above);
2. collapses all records into nodes (junk values recounted over all of them, so a value that
   becomes junk, or stops being junk, changes its nodes) and blocks only the new and changed
   nodes, with the nodes of any block they pushed over its size limit or brought back under:
   only those pairs are made and compared; every other pair, and its comparison levels, comes
   from the state, as both its nodes and their blocks are as they were;
3. scores every pair with the stored model (term frequencies are recounted, as in a full run);
4. finds components over all links and runs the merge guards only on components that differ
   from the previous run (a new or changed node, different members, or links that differ or
   come in another order); the others keep their previous clusters as they were.

The state's records, nodes and comparison levels are each a base plus the deltas of the
updates since (``layers``): an update reads them as one table and writes only its own delta.

With the stored model, the clusters equal those of a full run on all the data with that
model (``unify --model``); tests check it. ``--delete`` removes stored records; a change
of matching settings needs a full ``unify`` (an update refuses then).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from cxunify import block, cluster, ingest, layers, output, profile, score, scratch, standardize
from cxunify.compare import ComparisonSpec
from cxunify.config import Config, SourceConfig
from cxunify.engine import DuckDBEngine
from cxunify.engine.hadoop import is_uri
from cxunify.errors import (
    CxunifyError,
    InputError,
    OutputError,
    UserError,
    damaged_state,
    public,
)
from cxunify.identity import NODE_NAMES_SQL
from cxunify.ingest import REJECTS
from cxunify.lock import output_lock, reading_lock
from cxunify.model import MatchModel
from cxunify.record_ids import clean_id, clean_id_sql
from cxunify.sentiment import SENTIMENT
from cxunify.sql import ident, parquet, read_file, table
from cxunify.standardize import RECORDS

if TYPE_CHECKING:  # pipeline imports this module
    from cxunify.identity import PreviousOutput
    from cxunify.pipeline import Progress, RunResult

STATE = "state"
# 4: state.json records the SHA-256 of every file of the state, and of its own keys.
STATE_FORMAT = "cxunify-state/4"
OLDER_STATE_FORMATS = ("cxunify-state/3",)
# The large state tables are kept as a base plus each update's delta (see layers), with the
# columns a removed key names.
LAYERED = {"records": ("record_key",), "nodes": ("node",), "gammas": ("left_node", "right_node")}
REMOVED_RECORDS = table("removed_records")
NODES_ADDED = table("nodes_added")
NODES_REMOVED = table("nodes_removed")
TOUCHED = table("touched_nodes")
GONE = table("gone_nodes")
STORED_NODES = table("stored_nodes")
STORED_RECORDS = table("stored_records")
CHANGED = table("changed_components")
DELETIONS = table("deletions")


def matching_settings(config: Config) -> dict[str, Any]:
    """What must not change between a run and an update of it: how records are
    standardised and matched."""
    return {
        "standardize": config.standardize.model_dump(mode="json"),
        "matching": config.matching.model_dump(mode="json"),
    }


def settings_digest(config: Config) -> str:
    return hashlib.sha256(
        json.dumps(matching_settings(config), sort_keys=True).encode()
    ).hexdigest()


# The modules that pick golden values, score texts and derive traits: an update copies what
# they made for unchanged customers, so a change to them (a new tie-break) must not leave old
# values in place.
# The package version alone did not tell: it stays the same from one commit to the next.
PROFILED_BY = ("profile.py", "sentiment.py", "traits.py")


def profiled_code_digest(root: Path = Path(__file__).parent) -> str:
    digest = hashlib.sha256()
    for name in PROFILED_BY:
        digest.update(f"{name}\n".encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def profile_digest(config: Config) -> str:
    """The settings golden records depend on, and the code and version that built them: an
    update copies unchanged customers' golden records only when all are the same."""
    settings = {
        "profile": config.profile.model_dump(mode="json", exclude={"as_of"}),
        "cxunify": metadata.version("cxunify"),
        "code": profiled_code_digest(),
        "vaderSentiment": metadata.version("vaderSentiment"),  # stored sentiment is copied
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _unchanged_golden(config: Config, state: dict, previous: Path) -> profile.Unchanged | None:
    if state.get("profile") != profile_digest(config):
        return None
    profiles = previous / "profiles.parquet"
    return (
        profile.Unchanged(
            profiles=profiles,
            identity_map=previous / "identity_map.parquet",
            last_stored_key=int(state["last_record_key"]),
            sentiment=sentiment
            if (sentiment := previous / STATE / "sentiment.parquet").is_file()
            else None,
        )
        if profiles.is_file()
        else None
    )


SOURCE_SETTINGS = ("kind", "phone_region", "dayfirst", "id", "decimal_comma")


def padded_settings(stored: list) -> list:
    """A stored source's settings, those a state written before a setting was kept (absent:
    None) included."""
    return [*stored, *[None] * (len(SOURCE_SETTINGS) - len(stored))]


def source_settings(config: Config) -> dict[str, list]:
    """Per source, what shapes its records (not its path: an update reads other files)."""
    return {
        s.name: [s.kind, s.phone_region, s.dayfirst, _id_setting(s), s.decimal_comma]
        for s in config.sources
    }


def _id_setting(source: SourceConfig) -> str | dict[str, str] | None:
    """What names a source's records: its id column; the order_id column, for records named
    by their order and line (``{"order_lines": column}``); None: their row numbers."""
    if source.order_lines is not None:
        return {"order_lines": source.order_lines}
    return source.id


def sources_added(config: Config, stored: dict[str, list]) -> list[dict[str, Any]]:
    """The sources of `config` that `stored` (the state's sources) does not hold, each with
    its kind and the stored sources of that kind (those its rows may have been meant for)."""
    return [
        {
            "source": source.name,
            "kind": source.kind.value,
            "stored_of_kind": sorted(n for n, s in stored.items() if s[0] == source.kind.value),
        }
        for source in config.sources
        if source.name not in stored
    ]


def source_added_warning(added: dict[str, Any], named_by_flags: bool) -> str:
    """The warning for a source of `sources_added`: an update that adds a source may have been
    meant to update a stored one (a nightly file named by its date is a new source by its
    file name, its rows counted twice). In run.json and --json with the other warnings: a
    nightly script reading them saw nothing when it went to stderr alone."""
    kind, stored = added["kind"], added["stored_of_kind"]
    if not stored:
        held, hint = f"it held no {kind} source", ""
    else:
        held = f"its {kind} sources: {', '.join(stored)}"
        hint = f"; to update '{stored[0]}', " + (
            f"name the source: --{kind} {stored[0]}=PATH"
            if named_by_flags
            else "give the source that name in the config"
        )
    return (
        f"source '{added['source']}' is not in the previous output ({held}): its rows were "
        f"added as a new source, not as changes to stored records{hint}"
    )


# The code whose results the state keeps (records' ids read and values standardised,
# identities blocked, pairs' comparison levels, the clusters of components no record touched)
# and what it builds on: the reference tables standardisation and the guards read (nicknames,
# street words, states). An update reuses those results, so another version of any of them
# would mix its records, nodes, levels and clusters with tonight's, and the update would
# differ from a full run.
STORED_BY = ("standardize", "record_ids.py", "block.py", "compare.py", "cluster.py", "data")
STORED_BY_PACKAGES = ("duckdb", "phonenumbers", "jellyfish", "pycountry")


# Reference tables of `data` that only decide how a zero-config run maps an export's columns:
# an update maps a stored source as it was mapped (the state holds the mapping), so a new
# header spelling changes no stored record. And the cache of the standardisation macros: it
# keeps the statements the other modules make, keyed by their digest, and makes none itself
# (a change to how it handles Ctrl-C made every stored output need a full run).
NOT_STORED_BY = ("header_names.csv", "cache.py")


def stored_files() -> list[Path]:
    """The files of `STORED_BY`: modules, and a folder's modules and reference tables."""
    root = Path(__file__).parent
    files = []
    for name in STORED_BY:
        if (root / name).is_dir():
            files += sorted(
                p
                for p in (root / name).iterdir()
                if p.suffix in (".py", ".csv") and p.name not in NOT_STORED_BY
            )
        else:
            files.append(root / name)
    return files


def stored_code_digest() -> str:
    """A digest of the code that made what the state stores (`STORED_BY`) and of the versions
    of the packages it uses."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in stored_files():
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(path.read_bytes())
    for package in STORED_BY_PACKAGES:
        digest.update(f"{package} {metadata.version(package)}\n".encode())
    return digest.hexdigest()


def _check_settings(config: Config, state: dict, previous: Path) -> None:
    if state.get("stored_by") != stored_code_digest():
        raise UserError(
            f"{previous}: its records were standardised, blocked, compared and clustered by "
            "another version of cxunify (its code or reference tables), DuckDB, phonenumbers, "
            "jellyfish or pycountry than this one; an update cannot mix them with tonight's: "
            "run a full `cxunify unify` "
            "once (it keeps the ids), then update as before"
        )
    if state["settings"] != settings_digest(config):
        stored_values = state.get("settings_values")  # (not in states written before it)
        differ = (
            f" ({_settings_differ(stored_values, matching_settings(config))})"
            if isinstance(stored_values, dict)
            else ""
        )
        raise UserError(
            f"{previous}: standardisation or matching settings differ from the run that "
            f"wrote it{differ}; an update cannot mix them: run a full `cxunify unify`"
        )
    stored = state.get("sources", {})
    config.check_survivorship(tuple(stored))
    for name, settings in source_settings(config).items():
        if name in stored and padded_settings(stored[name]) != settings:
            differ = "; ".join(
                f"{key} was {_setting(before)}, now {_setting(now)}"
                for key, before, now in zip(
                    SOURCE_SETTINGS, padded_settings(stored[name]), settings, strict=True
                )
                if before != now
            )
            raise UserError(
                f"{previous}: source '{name}' has other settings than in the run that wrote it "
                f"({differ}); an update cannot change them: run a full `cxunify unify`"
            )


def _settings_differ(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> str:
    """The dotted keys whose values differ, each with both values (a list or mapping too
    long to show: only its key)."""
    differ = []
    for key in sorted(before.keys() | now.keys()):
        old, new = before.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            differ.append(_settings_differ(old, new, f"{prefix}{key}."))
        elif isinstance(old, list | dict) or isinstance(new, list | dict):
            differ.append(f"{prefix}{key} differs")
        else:
            differ.append(f"{prefix}{key} was {_setting(old)}, now {_setting(new)}")
    return "; ".join(differ)


def _setting(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, dict) and "order_lines" in value:
        return f"the order in '{value['order_lines']}' and the row's place in it"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return f"'{getattr(value, 'value', value)}'"


@dataclass(frozen=True)
class StateDelta:
    """An update's previous state, and the largest record key it held: the update's state
    adds its changes to the stored tables instead of writing them whole, unless records were
    deleted (their values must leave the state's files too)."""

    state_dir: Path
    last_key: int
    deleted: bool = False
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # the stored mappings
    files: dict[str, str] = field(default_factory=dict)  # the stored files' SHA-256


def stored_table(state_dir: Path, name: str) -> layers.Layered:
    try:
        return layers.Layered.scan(state_dir / name, LAYERED[name])
    except (OSError, ValueError):  # missing or unreadable parts (pyarrow's errors are both)
        raise OutputError(
            f"{state_dir / name}: unreadable update state; run a full `cxunify unify`"
        ) from None


def save_state(
    engine: DuckDBEngine,
    staging: output.Folder,
    config: Config,
    model: MatchModel | score.LogisticModel,
    previous_sources: dict[str, list] | None = None,
    delta: StateDelta | None = None,
) -> None:
    """Write ``state/`` into a finished run's staging folder (an update's `delta` adds its
    records and nodes to the stored ones)."""
    folder = staging / STATE
    folder.mkdir(exist_ok=True)
    # An update may name only some sources; the others' settings stay as stored.
    stored_sources = previous_sources or {}
    compression = config.output.compression
    # Unsorted: only joins read the state, and sorting wide tables costs seconds at scale.
    tables = {
        "links": f"SELECT left_node, right_node, match_weight FROM {cluster.LINKS}",
        "components": f"SELECT node, component FROM {table('components')}",
        "clusters": f"SELECT node, cluster FROM {cluster.CLUSTERS}",
        "refused_links": f"SELECT * FROM {cluster.REFUSED}",
        # each distinct text's score: an update scores only texts it has not seen
        "sentiment": f"SELECT text, sentiment FROM {SENTIMENT}",
    }
    for name, query in tables.items():
        engine.write_parquet(query, str(folder / f"{name}.parquet"), compression)
    last_key = int(engine.scalar(f"SELECT coalesce(max(record_key), 0) FROM {RECORDS}"))
    layered = {
        "records": (
            f"SELECT * FROM {RECORDS}",
            f"SELECT * FROM {RECORDS} WHERE record_key > {delta.last_key if delta else 0:d}",
            f"SELECT record_key FROM {REMOVED_RECORDS}",
        ),
        "nodes": (
            f"SELECT * FROM {block.NODES}",
            f"SELECT * FROM {NODES_ADDED}",
            f"SELECT node FROM {NODES_REMOVED}",
        ),
    }
    for name, (whole, rows, removed) in layered.items():
        if delta is None or not _add_delta(engine, delta, folder, name, rows, removed, config):
            layers.write_whole(engine, folder / name, whole, compression)
    (folder / "model.json").write_text(model.to_json() + "\n", encoding="utf-8")
    # An update only adds keys above the stored ones, so the largest key in use only grows
    # and keys are never reused: a stored node id always names the same node.
    state = {
        "format": STATE_FORMAT,
        "settings": settings_digest(config),
        # (named when an update finds them changed)
        "settings_values": matching_settings(config),
        "profile": profile_digest(config),
        "sources": {**stored_sources, **source_settings(config)},
        # how each source's columns were mapped: a zero-config update maps a stored
        # source so, not as a few rows of tonight's would suggest
        "columns": {
            **(delta.columns if delta else {}),
            **{source.name: dict(source.columns) for source in config.sources},
        },
        "last_record_key": max(last_key, delta.last_key if delta else 0),
        # what standardised the records and digested their fields (see
        # _skip_rows_read_as_stored)
        "cxunify": metadata.version("cxunify"),
        "duckdb": metadata.version("duckdb"),
        # the code that made the stored records, nodes and levels (see _check_settings)
        "stored_by": stored_code_digest(),
        # what an update checks the files by before reading them (none on a store,
        # which an update does not read)
        "files": _state_files(folder, delta) if isinstance(folder, Path) else None,
    }
    (folder / "state.json").write_text(
        json.dumps({**state, "sha256": _state_digest(state)}, indent=2) + "\n",
        encoding="utf-8",
    )


def _state_files(folder: Path, delta: StateDelta | None) -> dict[str, str]:
    """The SHA-256 of each file of the state written into `folder` (state.json aside), by its
    path in the folder. A part linked from the previous state keeps the digest recorded there
    (the update checked it before reading the state): an update hashes only what it wrote."""
    files = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if not path.is_file() or name == "state.json":
            continue
        carried = delta.files.get(name) if delta else None
        if carried and delta and _same_file(delta.state_dir / name, path):
            files[name] = carried
        else:
            files[name] = ingest.sha256_of(path)
    return files


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _state_digest(state: dict[str, Any]) -> str:
    """The SHA-256 of state.json's keys but its own: damaged, it may still be valid JSON (a
    digit of last_record_key changed would have an update reuse record keys)."""
    # As read back: JSON makes tuples lists and keys text, which sort otherwise.
    body = json.loads(json.dumps({key: value for key, value in state.items() if key != "sha256"}))
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _check_state_files(state_dir: Path, state: dict[str, Any]) -> None:
    """Stop unless every file of the state is the one written, before any of it is read.
    Parquet pages as DuckDB writes them carry no checksum: bytes overwritten inside a
    compressed page (disk trouble, a bad copy) may decode to other values without an error,
    and an update would build on other records than those stored. Each file is read once;
    a part of a layered table that the state does not list (it would be read as one) stops
    it too."""
    recorded = state["files"]
    for name, digest in recorded.items():
        path = state_dir / name
        try:
            found = ingest.sha256_of(path)
        except FileNotFoundError:
            raise OutputError(damaged_state(path, "missing")) from None
        except OSError as exc:
            raise OutputError(damaged_state(path, f"cannot be read: {exc.strerror}")) from None
        if found != digest:
            raise OutputError(damaged_state(path, output.NOT_AS_WRITTEN))
    for name in LAYERED:
        parts = state_dir / name
        for path in sorted(parts.iterdir()) if parts.is_dir() else ():
            if f"{name}/{path.name}" not in recorded:
                raise OutputError(damaged_state(path, "a file the state did not write"))


def _add_delta(
    engine: DuckDBEngine,
    delta: StateDelta,
    folder: output.Folder,
    name: str,
    rows_sql: str,
    removed_sql: str,
    config: Config,
) -> bool:
    """Add an update's rows and removed keys to a stored table, unless it is due to be
    written whole; returns whether it added them."""
    stored = stored_table(delta.state_dir, name)
    if delta.deleted or layers.should_compact(stored, engine.count(f"({rows_sql})")):
        return False
    assert isinstance(folder, Path)  # an update writes local folders
    layers.write_delta(
        engine, stored, folder / name, rows_sql, removed_sql, config.output.compression
    )
    return True


def save_gammas(engine: DuckDBEngine, staging: output.Folder, config: Config) -> None:
    """Write every candidate pair's comparison levels to the state, before scoring's input
    is dropped (it is the largest table; an update reuses it instead of comparing again)."""
    layers.write_whole(
        engine,
        staging / STATE / "gammas",
        f"SELECT * FROM {score.GAMMAS}",
        config.output.compression,
    )


def remember_components(engine: DuckDBEngine) -> None:
    """Keep the components as found before the guards split them (the state needs them)."""
    engine.execute(
        f"CREATE OR REPLACE TABLE {table('components')} AS "
        f"SELECT node, cluster AS component FROM {cluster.CLUSTERS}"
    )


def components_split(engine: DuckDBEngine) -> int:
    """How many components (as found before the guards) a guard split: those holding a
    refused link. Both nodes of a link are in one component, so it does not matter which
    end is the left one (which an update, numbering tonight's records last, may turn)."""
    return int(
        engine.scalar(
            f"SELECT count(DISTINCT c.component) FROM {cluster.REFUSED} r "
            f"JOIN {table('components')} c ON c.node = r.left_node"
        )
    )


def stored_sources(previous: Path | str) -> dict[str, list]:
    """The sources an output's update state holds (name -> [kind, phone_region, dayfirst,
    id, decimal_comma, columns]: columns is the field -> column mapping; a setting or the
    columns None in states written before they were kept), or none when it has no readable
    state (the update says why)."""
    if is_uri(previous):
        return {}
    output.require_folder(previous)
    try:
        state = _read_state_json(Path(previous) / STATE)
    except OutputError:
        return {}
    sources, columns = state.get("sources", {}), state.get("columns", {})
    if not isinstance(sources, dict) or not isinstance(columns, dict):
        return {}
    return {
        name: [*padded_settings(settings), columns.get(name)]
        for name, settings in sources.items()
        if isinstance(settings, list)
    }


def _run_wrote_state(out_dir: Path) -> bool:
    """Whether the output's run.json says its run wrote an update state."""
    try:
        return output.read_manifest(out_dir).get("update_state") is True
    except OutputError:  # no readable run.json: nothing says so
        return False


def _read_state_json(folder: Path) -> dict[str, Any]:
    path = folder / "state.json"
    if not path.is_file():
        if _run_wrote_state(folder.parent):  # removed or lost since: not a setting's doing
            raise OutputError(damaged_state(path, "missing"))
        raise OutputError(
            f"{folder.parent}: has no update state (it was written with `output.state: "
            "false` or by an older version); run a full `cxunify unify` first"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise OutputError(f"{path}: unreadable update state; run a full `cxunify unify`") from None
    if not isinstance(state, dict):
        raise OutputError(f"{path}: unreadable update state; run a full `cxunify unify`")
    stored_format = state.get("format")
    if stored_format in OLDER_STATE_FORMATS:
        raise OutputError(
            f"{folder.parent}: its update state was written by an older version of cxunify, "
            "which recorded no digests to check its files by; run a full `cxunify unify` "
            "once (it keeps the ids), then update as before"
        )
    if stored_format != STATE_FORMAT:
        raise OutputError(f"{path}: unknown state format; run a full `cxunify unify`")
    if state.get("sha256") != _state_digest(state):
        raise OutputError(damaged_state(path, output.NOT_AS_WRITTEN))
    files = state.get("files")
    if not isinstance(files, dict):  # written on a store
        raise OutputError(
            f"{path}: records no digests of the state's files (it was written on a store); "
            "run a full `cxunify unify`"
        )
    return state


@public("deletions")
def update(
    config: Config,
    previous: Path | str,
    out_dir: Path | str | None = None,
    progress: Progress | None = None,
    deletions: Path | None = None,
) -> RunResult:
    """Add the exports of `config` (new and changed rows only) to the output in `previous`,
    writing the result to `out_dir` (default: `previous` itself). Returns a RunResult.

    `deletions` is a CSV file with columns ``source`` and ``source_record_id``: those stored
    records are removed (an erasure request, a contact deleted upstream), as if a full run
    had never read them.

    An update runs on DuckDB whatever ``engine`` says (run.json's ``stages_engine`` shows it),
    so its folders are local ones.
    """
    from cxunify.pipeline import RunResult

    for location in (previous, out_dir):
        if location is not None and is_uri(location):
            raise UserError(
                f"{location}: an update runs on DuckDB and reads and writes local folders; "
                "for an output on a store run a full `cxunify unify --engine spark`"
            )
    output.require_folder(previous)
    if config.output.hash_pii:
        output.pii_key()
    previous = Path(previous).resolve()
    out_dir = Path(out_dir or previous).resolve()
    check_not_nested(previous, out_dir)
    output.check_replaceable(out_dir)
    # The previous folder is locked too when it is not the output: an update of it in place
    # would swap it away while this one reads its state and links its parts.
    with (
        output_lock(out_dir),
        reading_lock(previous, out_dir) if previous != out_dir else nullcontext(),
    ):
        output.remove_leftovers(out_dir)
        prior = output.find_previous(previous, for_update=True)
        if prior is None:
            raise OutputError(f"{previous}: --previous is not a cxunify output folder")
        if json.loads((previous / output.MANIFEST).read_text(encoding="utf-8")).get("pii_hashed"):
            raise OutputError(
                f"{previous}: its personal values are hashed (output.hash_pii), so it keeps no "
                "plain records for tonight's to be linked against: a hashed output is "
                "replaced by a full `cxunify unify` each run, not updated"
            )
        state_dir = previous / STATE
        state = _read_state_json(state_dir)
        _check_settings(config, state, previous)
        _check_state_files(state_dir, state)
        # (find_previous checked run.json and the outputs the ids are carried over from)
        manifest = json.loads((previous / output.MANIFEST).read_text(encoding="utf-8"))
        # profiles.parquet is read only when golden records are copied from it
        copied = _unchanged_golden(config, state, previous) is not None
        read = ("rejects", "profiles") if copied else ("rejects",)
        output.check_manifest(previous, manifest, read)
        output.check_outputs(previous, manifest, read)
        _check_no_update_set_aside(out_dir, previous, manifest, config, deletions)
        result = _update(config, previous, state, manifest, out_dir, prior, progress, deletions)
    return RunResult(out_dir=out_dir, manifest=result[0], stages=result[1])


def _check_no_update_set_aside(
    out_dir: Path,
    previous: Path,
    manifest: dict[str, Any],
    config: Config,
    deletions: Path | None,
) -> None:
    """Refuse to update while an update of `previous` that a quality gate stopped after
    `previous` was written is set aside, in ``<out>.rejected`` or ``<previous>.rejected``
    (the two differ for an update writing another folder: a stopped update of `previous` in
    place, say, before tonight's writes elsewhere): its rows are not in `previous`, and
    tonight's update on top of it would leave them out for good (a delta is not sent again),
    with nothing to say so once a passing run removed the folder. A full run reads whole
    exports and supersedes it; so does an update reading every file the stopped one read
    (the same bytes) and its deletions file: the same command again once the gate passes."""
    for aside in dict.fromkeys((output.rejected_dir(out_dir), output.rejected_dir(previous))):
        stopped = _set_aside_manifest(aside)
        if stopped is None:
            continue
        try:
            started = datetime.fromisoformat(stopped["started_at"])
            built_on = stopped["update"]["previous"]
            failed = stopped["quality"]["failed"]
            read = [f for f in stopped["inputs"] if f.get("update") and f not in manifest["inputs"]]
            since = started > datetime.fromisoformat(manifest["started_at"])
        except (ValueError, KeyError, TypeError):
            continue  # not a rejected update: a full run's (or an older version's)
        if built_on != str(previous) or not since:
            continue
        if _reads_again(stopped["update"], read, config, deletions):
            continue
        files = ", ".join(sorted({str(f.get("path")) for f in read})) or "no file"
        raise UserError(
            f"{aside}: holds the update started {stopped['started_at']} that a quality gate "
            f"stopped ({'; '.join(failed)}), so its rows and deletions are not in {previous} "
            f"(it read {files}); an update now would leave them out for good. Once the gate "
            "passes, update with its files again (the same files, with tonight's beside them "
            "if any, and its deletions file) or run a full cxunify unify; or remove "
            f"{aside} to go on without that update"
        )


def _set_aside_manifest(aside: output.Folder) -> dict[str, Any] | None:
    """The run.json of the run set aside in `aside`, None if there is none. One that is
    damaged may be an update a gate stopped, whose rows would be left out for good: an error,
    not a folder passed over (before, a changed byte or a file cut short passed unseen). A
    folder set aside before run.json kept a digest is read as it is."""
    path = aside / output.MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # (ValueError: not UTF-8)
        problem = f"cannot be read: {exc.strerror}" if isinstance(exc, OSError) else "not UTF-8"
        raise OutputError(_damaged_aside(aside, problem)) from None
    try:
        stopped = json.loads(text)
    except ValueError:
        stopped = None
    if not isinstance(stopped, dict):
        raise OutputError(_damaged_aside(aside, "not a JSON object"))
    digest = stopped.get("sha256")
    if digest is not None and digest != output.manifest_digest(stopped):
        raise OutputError(_damaged_aside(aside, output.NOT_AS_WRITTEN))
    return stopped


def _damaged_aside(aside: output.Folder, problem: str) -> str:
    return (
        f"{aside / output.MANIFEST}: damaged ({problem}), so there is no telling whether "
        f"{aside} holds an update a quality gate stopped, whose rows an update now would leave "
        f"out for good; run a full cxunify unify, or remove {aside} if it holds no update you "
        "need"
    )


def _reads_again(
    stopped: dict[str, Any], read: list[dict], config: Config, deletions: Path | None
) -> bool:
    """Whether this update reads every file a stopped update read (by content) and deletes
    what it deleted (the same deletions file, or neither has one)."""
    if "deletions_file" in stopped:
        asked = stopped["deletions_file"]
        if asked is not None and (deletions is None or _digest(deletions) != asked.get("sha256")):
            return False
    elif stopped.get("records_deleted") or stopped.get("deletions_not_found"):
        return False  # written before the deletions file was noted: its deletions are unknown
    tonight = set()
    for i, source in enumerate(config.sources):
        try:
            exports = ingest.resolve_files(source, config.base_dir, f"sources[{i}]")
        except CxunifyError:
            return False  # the run reports it
        tonight |= {_digest(e.path) for e in exports if e.path is not None}
    tonight.discard(None)
    return bool(read) and all(f.get("sha256") in tonight for f in read)


def _digest(path: Path) -> str | None:
    """A file's SHA-256, or None when it cannot be read (the run reports why)."""
    try:
        return ingest.sha256_of(path)
    except OSError:
        return None


def check_not_nested(previous: Path, out_dir: Path) -> None:
    """A run replaces its output folder whole: an output inside the previous one goes with
    the next run writing that, and a previous output inside this one goes with this one."""
    if out_dir != previous and out_dir.is_relative_to(previous):
        raise UserError(
            f"{out_dir}: --out is inside --previous {previous}, which a run writing it "
            "replaces whole; choose a folder outside it"
        )
    if out_dir != previous and previous.is_relative_to(out_dir):
        raise UserError(
            f"{previous}: --previous is inside --out {out_dir}, which this run replaces "
            "whole; choose a folder outside it"
        )


def _update(
    config: Config,
    previous: Path,
    state: dict[str, Any],
    previous_manifest: dict[str, Any],
    out_dir: Path,
    prior: PreviousOutput,
    progress: Progress | None,
    deletions: Path | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    from cxunify.pipeline import (
        Published,
        SilentProgress,
        Stages,
        _comparisons,
        link_components,
        publish,
        score_and_keep,
    )

    started = datetime.now(UTC)
    state_dir = previous / STATE
    staging = output.staging_dir(out_dir)
    stage = Stages(progress or SilentProgress())
    engine = DuckDBEngine(config.engine, temp_dir=staging / ".spill")
    try:
        with stage("ingest") as advance:
            ingested = ingest.ingest(engine, config, staging / ".work", advance)
        _refuse_numbered_rows(engine, config, ingested)
        with stage("standardize"):
            asked = (
                _read_deletions(
                    engine,
                    deletions,
                    previous,
                    sorted(state.get("sources", {})),
                    [vars(f) for f in ingested.files],
                    {source.name: source.id for source in config.sources},
                )
                if deletions
                else 0
            )
            carried_rejects, rejects_deleted = _carry_rejects(
                engine,
                previous / "rejects.parquet",
                previous_manifest.get("inputs", []),
                state.get("sources", {}),
                deletions is not None,
            )
            stored, params = stored_table(state_dir, "records").read_sql("records")
            engine.execute(f"CREATE TABLE {STORED_RECORDS} AS {stored}", params)
            read_unchanged = _skip_rows_read_as_stored(engine, state)
            standardize.standardize(engine, config)
            # values written and not read (dates, times, ratings): tonight's, in cx_mapped
            unread_warnings = standardize.unread_warnings(engine, not config.output.hash_pii)
            engine.drop(ingest.MAPPED)
            kept, deleted, unchanged = _merge_records(
                engine, int(state["last_record_key"]), deletions is not None
            )
            emails_read, emails_unusable = standardize.email_counts(engine)
            added = sources_added(config, state.get("sources", {}))
            warnings = (
                *(source_added_warning(a, config.origin == "<flags>") for a in added),
                *ingested.warnings,
                *standardize.order_warnings(engine, not config.output.hash_pii),
                *standardize.phone_warnings(engine, config),
                *unread_warnings,
            )
            unchanged += read_unchanged
            records = engine.count(RECORDS)
        with stage("block"):
            junk = _collapse_nodes(engine, config, state_dir)
            nodes = engine.count(block.NODES)
            # Pairs of nodes that did not change are the stored ones, unless a new or changed
            # node pushed their block over its size limit (or a gone one brought it back
            # under): the nodes of such blocks are blocked again with the changed ones.
            resized = block.nodes_of_resized_blocks(
                engine,
                config.matching.blocking,
                config.matching.max_block_size,
                f"SELECT * FROM {STORED_NODES}",
                f"SELECT node FROM {TOUCHED} UNION SELECT node FROM {GONE}",
                TOUCHED,
            )
            engine.drop(STORED_NODES)
            block.candidate_pairs(
                engine,
                config.matching.blocking,
                config.matching.max_block_size,
                touching=TOUCHED,
            )
        comparisons = _comparisons(config)
        model = score.load_model(state_dir / "model.json")
        score.check_model(model, comparisons)
        with stage("compare"):
            compared, gammas_saved = _compare_touching_pairs(
                engine, state_dir, config, comparisons, staging
            )
            pairs = engine.count(score.GAMMAS)
        with stage("score"):
            score_and_keep(engine, model, comparisons, config, staging, gammas_saved)
        with stage("cluster"):
            links = link_components(engine, config.matching.threshold)
            reclustered = _recluster_changed(engine, state_dir, config)
        # A row sent again unchanged is the stored record it equals: counted once.
        rows_in = kept + carried_rejects + ingested.rows_in - unchanged
        counts = {
            "rows_in": rows_in,
            "rows_rejected": carried_rejects + ingested.rows_rejected,
            "rows_mapped": records,
            "nodes": nodes,
            "candidate_pairs": pairs,
            "links": links,
            "links_refused_by_guards": engine.count(cluster.REFUSED),
            "components_split_by_guards": components_split(engine),
            "junk_emails": junk["email_std"],
            "junk_phones": junk["phone"],
            # tonight's rows
            "emails_read": emails_read,
            "emails_unusable": emails_unusable,
        }
        inputs = [
            *previous_manifest.get("inputs", []),
            *({**vars(f), "update": True} for f in ingested.files),
        ]
        summary = {
            "previous": str(previous),
            "records_added_or_changed": ingested.rows_in - ingested.rows_rejected - unchanged,
            # Rows equal to their stored record (an export of the whole table): not changes.
            "records_unchanged": unchanged,
            "records_deleted": deleted,
            # Named by the deletions file but not stored: deleted before, or never read.
            "deletions_not_found": asked - deleted,
            # Which file: an update stopped by a gate is applied by one reading its files
            # and this one again (see _check_no_update_set_aside).
            "deletions_file": None
            if deletions is None
            else {"path": str(deletions), "sha256": ingest.sha256_of(deletions)},
            # Rejected lines carried over from earlier runs that named a deleted record.
            "rejects_deleted": rejects_deleted,
            "pairs_compared": compared,
            "pairs_reused": pairs - compared,
            # Nodes blocked again, with the new and changed ones, because their block crossed
            # its size limit.
            "nodes_reblocked_for_block_size": resized,
            "components_reclustered": reclustered,
            # Sources tonight's config names that the previous output does not hold: a nightly
            # file named by its date (orders_2025_07_01) would add its orders a second time.
            "sources_added": added,
        }
        manifest = publish(
            engine,
            config,
            Published(
                out_dir,
                staging,
                started,
                prior,
                model,
                True,
                state.get("sources"),
                _unchanged_golden(config, state, previous),
                StateDelta(
                    state_dir,
                    int(state["last_record_key"]),
                    deleted > 0,
                    state.get("columns", {}),
                    state["files"],
                ),
                warnings,
                # The reject gate watches tonight's files: over every row stored, 80% of a
                # night's rows rejected was 1% and passed.
                (ingested.rows_in, ingested.rows_rejected),
            ),
            stage,
            inputs,
            counts,
            {"update": summary},
        )
    except BaseException:
        engine.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest, stage.timings


def _refuse_numbered_rows(engine: DuckDBEngine, config: Config, ingested: ingest.Ingested) -> None:
    """Rows of a source without an id column are named by their row number: tonight's row 1
    would replace the stored record 1, another person. Deleting such records by number,
    and a night without rows for them, are fine. Rows named by their order and line
    (`SourceConfig.order_lines`) are not numbered, unless they carry no order_id."""
    numbered = {
        source.name for source in config.sources if source.id is None and source.order_lines is None
    }
    for read in ingested.files:
        if read.source in numbered and read.rows > read.rejected:
            raise InputError(
                f"{read.path}: source '{read.source}' has no id column: its rows are named "
                "by their row number, which names another record in each file, so an update "
                "cannot tell a changed row from a new one; give the source an id column, or "
                "run a full `cxunify unify`"
            )
    for source, rows in ingest.numbered_order_lines(engine, config).items():
        order = next(s.order_lines for s in config.sources if s.name == source)
        raise InputError(
            f"source '{source}': {rows:,} of tonight's rows {'has' if rows == 1 else 'have'} "
            f"no order number in '{order}': such rows are named by their row number, which "
            "names another record in each file, so an update cannot tell a changed row from "
            "a new one; give the source an id column, or run a full `cxunify unify`"
        )


def _carry_rejects(
    engine: DuckDBEngine,
    path: Path,
    inputs: list[dict[str, Any]],
    sources: dict[str, list],
    deleting: bool,
) -> tuple[int, int]:
    """Add the stored rejects to tonight's, but those of a row sent again tonight and
    rejected again (same source, same text or values: `_rejected_row`): it is one bad row,
    not two; and, when records
    are deleted (``cx_deletions``), those naming a deleted record (see
    `_drop_deleted_rejects`). Returns how many were carried, and how many were dropped as
    naming a deleted record."""
    carried = table("carried_rejects")
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {carried} AS
        SELECT * FROM {parquet("$path")} p
        ANTI JOIN (SELECT source, {_rejected_row("r")} AS row FROM {REJECTS} r) t
            ON t.source = p.source AND t.row = {_rejected_row("p")}
        """,
        {"path": str(path)},
    )
    dropped = _drop_deleted_rejects(engine, carried, inputs, sources) if deleting else 0
    engine.execute(f"INSERT INTO {REJECTS} BY NAME SELECT * FROM {carried}")
    count = engine.count(carried)
    engine.drop(carried)
    return count, dropped


def _rejected_row(alias: str) -> str:
    """A rejected row as it is when sent again: its text, or, rejected for its values (a
    repeated or missing id: no line, its values as JSON), those values without the file and
    row they were read from, which a whole export named by its date changes every night."""
    where_read = """'{"file": null, "file_index": null, "row_number": null}'"""
    return (
        f"CASE WHEN {alias}.line IS NULL AND json_valid({alias}.raw) "
        f"THEN json_merge_patch({alias}.raw, {where_read})::VARCHAR ELSE {alias}.raw END"
    )


def _drop_deleted_rejects(
    engine: DuckDBEngine, rejects: str, inputs: list[dict[str, Any]], sources: dict[str, list]
) -> int:
    """Delete from the table `rejects` the rejected rows that name a deleted record: their
    raw text holds the person's values (see `_rejects_naming_deleted`).
    Returns how many went."""
    id_columns = {
        name: dict(zip(SOURCE_SETTINGS, settings, strict=False)).get("id")
        for name, settings in sources.items()
    }
    named = [row for row, _, _ in _rejects_naming_deleted(engine, rejects, inputs, id_columns)]
    if named:
        engine.execute(
            f"DELETE FROM {rejects} WHERE rowid IN (SELECT unnest($named))", {"named": named}
        )
    return len(set(named))


def _rejects_naming_deleted(
    engine: DuckDBEngine,
    rejects: str,
    inputs: list[dict[str, Any]],
    id_columns: dict[str, str | None],
) -> list[tuple[Any, str, str]]:
    """The rows of the table `rejects` that name a deleted record (``cx_deletions``) in their
    source's id column (`id_columns`), as (rowid, source, source_record_id). A row rejected
    for its values (a repeated id) holds the mapped row as JSON; an unparseable CSV line is
    read with the dialect and header its file was read with (`inputs`, as run.json keeps
    them). Lines that cannot be read so (broken JSON, a source without an id column, an
    output written before inputs kept dialects) cannot be told apart and are not named."""
    named: list[tuple[Any, str, str]] = engine.rows(
        f"""
        SELECT r.rowid, d.source, d.source_record_id
        FROM {rejects} r JOIN {DELETIONS} d
            ON r.line IS NULL AND r.source = d.source
           AND json_extract_string(CASE WHEN json_valid(r.raw) THEN r.raw ELSE '{{}}' END,
                                   '$.source_record_id') = d.source_record_id
        """
    )
    dialects: dict[tuple[str, str], list[ingest.CsvDialect]] = {}
    for read in inputs:
        if read.get("dialect"):
            dialects.setdefault((read["source"], read["path"]), []).append(
                ingest.CsvDialect.from_described(read["dialect"])
            )
    for row_key, source, file, raw, record_id in engine.rows(
        f"""
        SELECT r.rowid, r.source, r.file, r.raw, d.source_record_id
        FROM {rejects} r JOIN {DELETIONS} d
            ON d.source = r.source AND contains(r.raw, d.source_record_id)
        WHERE r.line IS NOT NULL
        """
    ):
        id_column = id_columns.get(source)
        for dialect in dialects.get((source, file), []):
            if id_column not in dialect.columns:
                continue
            fields = dialect.fields(raw)
            at = list(dialect.columns).index(id_column)
            if fields is not None and len(fields) > at and clean_id(fields[at]) == record_id:
                named.append((row_key, source, record_id))
                break
    return named


def _load_deletions(engine: DuckDBEngine, path: Path, readable: Path) -> None:
    dialect = ingest.csv_header(readable, None, shown=path)
    if not {"source", "source_record_id"} <= set(dialect.columns):
        raise InputError(
            f"{path}: deletions need a header with source and source_record_id "
            f"(it has {', '.join(dialect.columns) or 'none'})"
        )
    try:  # strictly: a deletion on a broken row must not be skipped
        # Trimmed as ingest trims the ids it stores: ' C1' or 'C1\t' in a hand-made file
        # names C1.
        engine.execute(
            f"""
            CREATE OR REPLACE TABLE {DELETIONS} AS
            SELECT {clean_id_sql("source")} AS source,
                   {clean_id_sql("source_record_id")} AS source_record_id
            FROM {read_file("read_csv", "$path", ingest.CSV_OPTIONS)}
            """,
            {"path": str(readable), **dialect.params()},
        )
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from None


def _read_deletions(
    engine: DuckDBEngine,
    path: Path,
    previous: Path,
    known: list[str],
    tonight: list[dict[str, Any]],
    id_columns: dict[str, str | None],
) -> int:
    """``cx_deletions``: the distinct (source, source_record_id) of the deletions CSV; a
    record also among tonight's rows is an error (keep it, or delete it: not both), rejected
    rows included (`tonight`: tonight's files as run.json lists them; `id_columns`: each
    source's id column), and so is a source the output does not hold (`known`): an erasure
    request must not be skipped for a misspelt name. Returns how many records it names."""
    if not path.is_file():
        raise InputError(f"{path}: deletions file not found")
    # In any encoding an export may have, as a run reads one: a Latin-1 file stopped with
    # DuckDB's 'CSV Error on Line: 2'.
    with scratch.folder("deletions") as work:
        readable, _ = ingest.readable_text(path, "auto", work)
        _load_deletions(engine, path, readable)
    incomplete = engine.rows(
        f"SELECT rowid + 1 FROM {DELETIONS} "
        "WHERE (source IS NULL) <> (source_record_id IS NULL) ORDER BY 1 LIMIT 1"
    )
    if incomplete:  # an erasure request whose id was lost must not pass as nothing to do
        raise InputError(
            f"{path}: row {incomplete[0][0]} of the deletions lacks a source or a "
            "source_record_id; nothing was deleted"
        )
    engine.execute(
        f"CREATE OR REPLACE TABLE {DELETIONS} AS SELECT DISTINCT source, source_record_id "
        f"FROM {DELETIONS} WHERE source IS NOT NULL"
    )
    unknown = [
        source
        for (source,) in engine.rows(f"SELECT DISTINCT source FROM {DELETIONS} ORDER BY 1")
        if source not in known
    ]
    if unknown:
        raise InputError(f"{path}: {_unknown_sources(unknown, known, previous)}")
    clash = engine.rows(
        f"SELECT d.source, d.source_record_id FROM {DELETIONS} d "
        f"SEMI JOIN {ingest.MAPPED} r USING (source, source_record_id) ORDER BY ALL LIMIT 1"
    )
    if clash:
        source, record_id = clash[0]
        raise InputError(
            f"{path}: {source}:{record_id} is both deleted and in tonight's exports; "
            "keep one of them"
        )
    # A row rejected tonight keeps its raw text in rejects.parquet: one naming an erased
    # record would carry the person's values on.
    rejected = sorted(
        (source, record_id)
        for _, source, record_id in _rejects_naming_deleted(engine, REJECTS, tonight, id_columns)
    )
    if rejected:
        source, record_id = rejected[0]
        raise InputError(
            f"{path}: {source}:{record_id} is both deleted and in a row of tonight's exports "
            "that was rejected; keep one of them"
        )
    return engine.count(DELETIONS)


def _unknown_sources(unknown: list[str], known: list[str], previous: Path) -> str:
    names = ", ".join(f"'{name}'" for name in unknown)
    return (
        f"{'source' if len(unknown) == 1 else 'sources'} {names} not in {previous} "
        f"(its sources: {', '.join(known)}{output.source_hint(unknown[0], known)}); nothing "
        "was deleted"
    )


def _skip_rows_read_as_stored(engine: DuckDBEngine, state: dict) -> int:
    """Drop from ``cx_mapped`` the rows read exactly as their stored record (in
    ``cx_stored_records``) was (same source,
    id and fields as read): they are not standardised again, and the stored record stays
    (see `_merge_records`). Only when the same versions of cxunify and DuckDB stored them:
    another could standardise the same row otherwise, or digest it otherwise. Returns how many
    rows were dropped."""
    if any(state.get(p) != metadata.version(p) for p in ("cxunify", "duckdb")):
        return 0
    before = engine.count(ingest.MAPPED)
    engine.execute(
        f"""
        DELETE FROM {ingest.MAPPED} WHERE record_key IN (
            SELECT m.record_key FROM {ingest.MAPPED} m
            JOIN {STORED_RECORDS} s USING (source, source_record_id)
            WHERE s.raw_digest = {standardize.raw_digest_sql("m.")}
        )
        """
    )
    return before - engine.count(ingest.MAPPED)


def _merge_records(
    engine: DuckDBEngine, last_key: int, deleting: bool = False
) -> tuple[int, int, int]:
    """Stored records (``cx_stored_records``, which becomes ``cx_records``) not replaced by a
    new row of the same source and id, nor deleted, plus the new rows keyed after every key
    used so far; ``cx_removed_records`` keeps the keys of
    the stored records that went. A row equal to the stored record of its source and id in
    every value (a nightly export of the whole table sends most rows again) is not a change:
    the stored record stays, with its key and the file and row it was read from. Returns how
    many stored records were kept, how many were deleted, and how many rows came unchanged."""
    new = table("new_records")
    engine.execute(f"ALTER TABLE {RECORDS} RENAME TO {new.split('.')[-1]}")
    engine.execute(f"ALTER TABLE {STORED_RECORDS} RENAME TO {RECORDS.split('.')[-1]}")
    provenance = ("record_key", "file", "row_number")
    same = " AND ".join(
        f"n.{ident(c)} IS NOT DISTINCT FROM s.{ident(c)}"
        for c in engine.columns(new)
        if c not in provenance
    )
    sent = engine.count(new)
    engine.execute(
        f"""
        DELETE FROM {new} WHERE record_key IN (
            SELECT n.record_key FROM {new} n
            JOIN {RECORDS} s USING (source, source_record_id)
            WHERE {same}
        )
        """
    )
    unchanged = sent - engine.count(new)
    # Stored records that go: replaced by tonight's row of the same source and id, or deleted.
    gone = f"SELECT source, source_record_id FROM {new}"
    if deleting:
        gone += f" UNION ALL SELECT source, source_record_id FROM {DELETIONS}"
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {REMOVED_RECORDS} AS
        SELECT s.record_key, n.source IS NULL AS deleted
        FROM {RECORDS} s
        SEMI JOIN ({gone}) g USING (source, source_record_id)
        LEFT JOIN (SELECT DISTINCT source, source_record_id FROM {new}) n
            USING (source, source_record_id)
        """
    )
    deleted = int(engine.scalar(f"SELECT count(*) FILTER (WHERE deleted) FROM {REMOVED_RECORDS}"))
    # Orders that gained or lost a row: their other rows may take another currency, so their
    # customers' traits are not copied (see profile.Unchanged).
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {profile.TOUCHED_ORDERS} AS
        SELECT DISTINCT source, order_id FROM (
            SELECT source, source_kind, order_id FROM {RECORDS}
            WHERE record_key IN (SELECT record_key FROM {REMOVED_RECORDS})
            UNION ALL SELECT source, source_kind, order_id FROM {new}
        ) WHERE source_kind = 'transactions' AND order_id IS NOT NULL
        """
    )
    engine.execute(
        f"DELETE FROM {RECORDS} WHERE record_key IN (SELECT record_key FROM {REMOVED_RECORDS})"
    )
    if deleting:
        engine.drop(DELETIONS)
    kept = engine.count(RECORDS)
    engine.execute(
        f"INSERT INTO {RECORDS} BY NAME "
        f"SELECT * REPLACE (record_key + $offset AS record_key) FROM {new}",
        {"offset": last_key},
    )
    engine.drop(new)
    return kept, deleted, unchanged


def _collapse_nodes(engine: DuckDBEngine, config: Config, state_dir: Path) -> dict[str, int]:
    """The nodes a full run would collapse the records into, built from the stored ones; returns
    the junk values found per column.

    A stored node whose smallest record is still there holds the same values (records do not
    change once stored, and a node's values are its smallest record's, junk ones blanked), so
    its row is the stored one with its new size, unless that record holds a value that became
    junk or stopped being junk tonight. Rows are built from the records only for such nodes
    and for new node ids (junk values, recounted over every record, join no records into a
    node: a value that becomes junk parts its records, one that stops being junk joins them).

    Also fills ``cx_touched_nodes`` (nodes that are new or differ in any value from the stored
    node of the same id), ``cx_gone_nodes`` (stored nodes that no longer exist as they were)
    and, for the state's delta, ``cx_nodes_added`` (nodes that differ in anything, their size
    included) and ``cx_nodes_removed`` (the ids of the stored nodes those replace or that
    went).
    """
    stored, params = stored_table(state_dir, "nodes").read_sql("nodes")
    engine.execute(f"CREATE OR REPLACE TABLE {STORED_NODES} AS {stored}", params)
    found = block.find_junk(
        engine, config.matching.blocklist, config.matching.max_records_per_value
    )
    block.assign_record_nodes(engine)
    sizes = table("node_sizes")
    engine.execute(f"CREATE OR REPLACE TABLE {sizes} AS {block.RECORD_NODE_SIZES}")
    # Junk values in the stored records (what the stored nodes were blanked of), and the
    # values that are junk tonight and were not, or the reverse.
    records, records_params = stored_table(state_dir, "records").read_sql("records")
    junk = block.junk_parameters(config.matching.blocklist, config.matching.max_records_per_value)
    turned = []
    for column in block.JUNK_COLUMNS:
        now, before = block.junk_table(column), table(f"junk_before_{column}")
        engine.execute(
            f"CREATE OR REPLACE TABLE {before} AS {block.junk_values_sql(column, f'({records})')}",
            {**junk, **records_params},
        )
        turned.append(f"{ident(column)} IN (SELECT value FROM ({_either_not_both(now, before)}))")
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {TOUCHED} AS
        SELECT node FROM {sizes} ANTI JOIN {STORED_NODES} USING (node)
        UNION
        SELECT s.node FROM {sizes} s SEMI JOIN (
            SELECT record_key FROM {RECORDS} WHERE {" OR ".join(turned)}
        ) r ON r.record_key = s.node
        """
    )
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {block.NODES} AS
        SELECT s.node, s.n_records, st.* EXCLUDE (node, n_records)
        FROM {sizes} s JOIN {STORED_NODES} st USING (node)
        ANTI JOIN {TOUCHED} USING (node)
        """
    )
    built = f"SELECT * FROM {sizes} SEMI JOIN {TOUCHED} USING (node)"
    engine.execute(f"INSERT INTO {block.NODES} BY NAME {block.node_rows_sql(engine, built)}")
    for column in block.JUNK_COLUMNS:
        engine.drop(block.junk_table(column), table(f"junk_before_{column}"))
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {GONE} AS
        SELECT node FROM {STORED_NODES} ANTI JOIN {block.NODES} USING (node)
        UNION
        SELECT node FROM {TOUCHED} SEMI JOIN {STORED_NODES} USING (node)
        """
    )
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {NODES_ADDED} AS
        SELECT n.* FROM {block.NODES} n LEFT JOIN {STORED_NODES} st USING (node)
        WHERE st.node IS NULL OR n.n_records <> st.n_records
           OR n.node IN (SELECT node FROM {TOUCHED})
        """
    )
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {NODES_REMOVED} AS
        SELECT node FROM {STORED_NODES} SEMI JOIN (
            SELECT node FROM {GONE} UNION ALL SELECT node FROM {NODES_ADDED}
        ) USING (node)
        """
    )
    engine.drop(sizes)
    return found


def _either_not_both(a: str, b: str) -> str:
    """SQL: the values of table `a` or table `b` (one column, ``value``) and not both."""
    return (
        f"(SELECT value FROM {a} EXCEPT SELECT value FROM {b}) "
        f"UNION ALL (SELECT value FROM {b} EXCEPT SELECT value FROM {a})"
    )


def _compare_touching_pairs(
    engine: DuckDBEngine,
    state_dir: Path,
    config: Config,
    comparisons: tuple[ComparisonSpec, ...],
    staging: Path,
) -> tuple[int, bool]:
    """``cx_pairs`` holds the pairs with a new or changed node: compare those, and take every
    other pair's levels from the state (both its nodes are as they were, and so are their
    blocks). Returns the number of pairs compared, and whether the state's delta of
    comparison levels is written (else the state is due to get them whole)."""
    compared = engine.count(block.PAIRS)
    score.build_gammas(engine, comparisons, config.matching.rules)
    stored = stored_table(state_dir, "gammas")
    saved = False
    if config.output.state and not layers.should_compact(stored, compared):
        # A stored pair goes when either node changed or went: its levels may differ.
        layers.write_delta(
            engine,
            stored,
            staging / STATE / "gammas",
            f"SELECT * FROM {score.GAMMAS}",
            f"SELECT node FROM {TOUCHED} UNION ALL SELECT node FROM {GONE}",
            config.output.compression,
        )
        saved = True
    unchanged = table("unchanged_nodes")
    engine.execute(
        f"CREATE OR REPLACE TABLE {unchanged} AS "
        f"SELECT node FROM {block.NODES} ANTI JOIN {TOUCHED} USING (node)"
    )
    gammas, params = stored.read_sql("gammas")
    engine.execute(
        f"""
        INSERT INTO {score.GAMMAS} BY NAME
        SELECT g.* FROM ({gammas}) g
        SEMI JOIN {unchanged} l ON l.node = g.left_node
        SEMI JOIN {unchanged} r ON r.node = g.right_node
        """,
        params,
    )
    engine.drop(unchanged)
    return compared, saved


def _recluster_changed(engine: DuckDBEngine, state_dir: Path, config: Config) -> int:
    """Run the merge guards on changed components only; the others keep their stored
    clusters and refused links. Returns how many components were re-clustered.

    A component is unchanged when it has no touched node, the same members as a stored
    component, and the same links in the same order of strength (the guards see links
    strongest first, so the order decides which link a guard refuses).
    """
    paths = {n: str(state_dir / f"{n}.parquet") for n in ("links", "components", "clusters")}
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {CHANGED} AS
        WITH current AS (
            SELECT c.cluster AS component, l.left_node, l.right_node,
                   row_number() OVER (PARTITION BY c.cluster
                       ORDER BY l.match_weight DESC, l.left_node, l.right_node) AS rank
            FROM {cluster.LINKS} l JOIN {cluster.CLUSTERS} c ON c.node = l.left_node
        ), stored_components AS (SELECT * FROM {parquet("$components")}),
        stored AS (
            SELECT s.component, l.left_node, l.right_node,
                   row_number() OVER (PARTITION BY s.component
                       ORDER BY l.match_weight DESC, l.left_node, l.right_node) AS rank
            FROM {parquet("$links")} l JOIN stored_components s ON s.node = l.left_node
        ), members AS (
            SELECT c.cluster AS component, count(*) AS n,
                   count(DISTINCT s.component) AS stored_components,
                   count(*) FILTER (WHERE s.component IS NULL) AS unstored,
                   any_value(s.component) AS stored_component
            FROM {cluster.CLUSTERS} c LEFT JOIN stored_components s USING (node)
            GROUP BY c.cluster
        ), stored_sizes AS (
            SELECT component AS stored_component, count(*) AS stored_n
            FROM stored_components GROUP BY component
        )
        SELECT c.cluster AS component FROM {cluster.CLUSTERS} c
        WHERE c.node IN (SELECT node FROM {TOUCHED})
        UNION
        SELECT m.component FROM members m LEFT JOIN stored_sizes z USING (stored_component)
        WHERE m.stored_components <> 1 OR m.unstored > 0 OR z.stored_n IS DISTINCT FROM m.n
        UNION
        SELECT coalesce(cur.component, cc.cluster)
        FROM current cur FULL JOIN stored st USING (left_node, right_node)
        LEFT JOIN {cluster.CLUSTERS} cc ON cc.node = st.left_node
        WHERE cur.rank IS DISTINCT FROM st.rank
        """,
        {"links": paths["links"], "components": paths["components"]},
    )
    kept, kept_refused = table("kept_clusters"), table("kept_refused")
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {kept} AS
        SELECT s.node, s.cluster FROM {parquet("$clusters")} s
        JOIN {cluster.CLUSTERS} c USING (node)
        WHERE c.cluster NOT IN (SELECT component FROM {CHANGED})
        """,
        {"clusters": paths["clusters"]},
    )
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {kept_refused} AS
        SELECT r.* FROM {parquet("$refused")} r SEMI JOIN {kept} k ON k.node = r.left_node
        """,
        {"refused": str(state_dir / "refused_links.parquet")},
    )
    engine.execute(f"DELETE FROM {cluster.CLUSTERS} WHERE node IN (SELECT node FROM {kept})")
    cluster.apply_guards(
        engine,
        f"SELECT * FROM {cluster.LINKS} WHERE left_node IN (SELECT node FROM {cluster.CLUSTERS})",
        cluster.Guards.from_config(config.matching.guards),
        NODE_NAMES_SQL,
    )
    engine.execute(f"INSERT INTO {cluster.CLUSTERS} SELECT node, cluster FROM {kept}")
    engine.execute(f"INSERT INTO {cluster.REFUSED} BY NAME SELECT * FROM {kept_refused}")
    reclustered = engine.count(CHANGED)
    engine.drop(kept, kept_refused)
    return reclustered
