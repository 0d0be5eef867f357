"""Stage 9, write: Parquet outputs built in a sibling folder and swapped in when complete.

A reader of the output folder sees either the previous run or the new one, never a mix: the
new files are written next to it and the two folders are exchanged in one atomic
``renameat2(RENAME_EXCHANGE)`` on Linux, so the output path never goes missing, even for an
instant. Elsewhere (or on a filesystem without it) two renames are used, with a window of
microseconds in which the path does not exist.

On a store reached through Spark (s3a://, hdfs://, abfss://: a `HadoopPath`) a rename is not
atomic (on object stores it copies), so ``run.json`` is the marker instead: it is removed from
the old output first and written to the new one last. A folder with ``run.json`` holds one
complete run; while a run is replaced there is a window without it, in which readers wait.
Each output there is a folder of Parquet part files (Spark's layout), and no
``cxunify.duckdb`` is written.
"""

from __future__ import annotations

import ctypes
import difflib
import hashlib
import json
import os
import shutil
import signal
import stat
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import duckdb

from cxunify import jsontext
from cxunify.block import RULES
from cxunify.cluster import LINKS, REFUSED
from cxunify.engine import DuckDBEngine
from cxunify.engine.duckdb import PII_DIGEST, PII_DIGEST_LIST, PII_DIGEST_MAP
from cxunify.engine.hadoop import HadoopPath, is_uri
from cxunify.errors import OutputError, UserError, damaged_output, interrupted, unreadable_file
from cxunify.identity import CUSTOMER_IDS, IDENTITY, REDIRECTS, REMOVED, PreviousOutput
from cxunify.ingest import REJECTS, sha256_of
from cxunify.profile import PROFILES
from cxunify.score import SCORED, SCORED_FLOOR
from cxunify.sql import ident, literal_path, parquet
from cxunify.standardize import RECORDS
from cxunify.traits import TOUCHPOINTS_QUERY

MANIFEST = "run.json"
DATABASE = "cxunify.duckdb"
DATABASE_FORMAT = "v1.0.0"  # see write_database

# The standardised fields records.parquet shows per source row: what matching compared, for
# explaining a customer and measuring completeness per source.
RECORD_FIELDS = (
    "first_name",
    "last_name",
    "name_suffix",
    "email",
    "phone",
    "street",
    "city",
    "postcode",
    "state",
    "country",
    "dob",
    "gender",
    "national_id",
    "customer_key",
    "handle",
    "platform",
    "created_at",
)


# The queries of the outputs that hold personal data, with those columns as given: as they
# are, or as digests (see output_queries).
def _profiles_query(columns: str = "*") -> str:
    return f"SELECT {columns} FROM {PROFILES} ORDER BY customer_id"


def _records_query(fields: str | None = None) -> str:
    fields = fields or ", ".join(f"r.{ident(c)}" for c in RECORD_FIELDS)
    return f"""
        SELECT r.source, r.source_kind, r.source_record_id, i.customer_id, {fields}
        FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        ORDER BY r.source, r.record_key
    """


def _rejects_query(raw: str = "raw") -> str:
    return (
        f"SELECT source, file, line, reason, {raw} AS raw FROM {REJECTS} "
        "ORDER BY source, file, line"
    )


# Output name -> the query that fills it. The order of columns is the documented contract.
OUTPUT_QUERIES: dict[str, str] = {
    "profiles": _profiles_query(),
    "identity_map": f"""
        SELECT r.source, r.source_kind, r.source_record_id, i.customer_id,
               i.confidence, r.file, r.row_number
        FROM {RECORDS} r JOIN {IDENTITY} i USING (record_key)
        ORDER BY r.source, r.record_key
    """,
    "records": _records_query(),
    "links": "",  # built by links_query(): its columns depend on the comparisons in use
    "touchpoints": TOUCHPOINTS_QUERY,
    "rejects": _rejects_query(),
    "customer_ids": f"SELECT customer_id, issued_at FROM {CUSTOMER_IDS} ORDER BY customer_id",
    "id_redirects": f"""
        SELECT old_customer_id, customer_id, redirected_to, reason, redirected_at, issued_at
        FROM {REDIRECTS} ORDER BY redirected_at, old_customer_id, customer_id
    """,
    "removed_records": (
        f"SELECT record, customer_id, issued_at, removed_at FROM {REMOVED} ORDER BY record"
    ),
}
# The outputs the next run reads to carry the customer ids over (see find_previous).
ID_OUTPUTS = ("identity_map", "customer_ids", "id_redirects", "removed_records")


# output.hash_pii: which columns hold personal data, and their shape. Source ids stay as they
# are (they are how a row is found in its system), as do city, state, country and postcode
# (what analysts group by), and gender. A customer_key is hashed: unlike a source's row id it
# is the customer's own account or loyalty number, which they give at a till or on a call.
PII_KEY_ENV = "CXUNIFY_PII_KEY"
PROFILE_PII = {
    **dict.fromkeys(("first_name", "last_name", "email", "phone", "street", "dob"), "value"),
    **dict.fromkeys(("emails", "phones", "addresses", "handles"), "list"),
    "handles_by_platform": "map",
}
RECORD_PII = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "dob",
    "national_id",
    "customer_key",
    "handle",
)


def pii_key() -> str:
    """The secret that keys output.hash_pii's digests, from the environment (never the
    config, which is shared and committed)."""
    key = os.environ.get(PII_KEY_ENV, "")
    if not key:
        raise UserError(
            f"output.hash_pii needs a secret key in the environment variable {PII_KEY_ENV} "
            "(the same key gives the same digests in every run)"
        )
    return key


# run.json's pii_key_check is the digest of this text, made as the outputs' digests are.
KEY_CHECK_LABEL = "cxunify key check"
# A key shorter than this is warned of: anyone holding one digest of a value they know (their
# own email's) can try keys against it, and a short key is soon found.
SHORT_KEY = 16


def keyed_digest(key: str, text: str) -> str:
    """The digest a hashed output holds for `text` (hex SHA-256 of the key, the byte 0x1F and
    the text), as the engines' `set_pii_key` functions make it in SQL."""
    return hashlib.sha256(f"{key}\x1f{text}".encode()).hexdigest()


def pii_key_check(key: str) -> str:
    """The digest of KEY_CHECK_LABEL under `key` (hex SHA-256 of the key, the byte 0x1F and
    the label, as every digest of a hashed output is made), by which a later run tells whether
    the key changed. It reveals nothing about the key that a digest of a known value in the
    outputs would not."""
    return keyed_digest(key, KEY_CHECK_LABEL)


def pii_warnings(key: str | None, previous: PreviousOutput | None) -> list[str]:
    """What a run should warn of about its digests: a short `key` (None: the run writes
    personal values in the clear), and digests that will not join with the previous
    output's: made with another key, or appearing or disappearing. Every digest changes then,
    and a downstream table joined on them silently stops matching."""
    warnings = []
    if key is not None and len(key) < SHORT_KEY:
        warnings.append(
            f"{PII_KEY_ENV} is shorter than {SHORT_KEY} characters: whoever holds the digest "
            "of a value they know (their own email) can find a short key by trying keys, and "
            "with it every value; use a long random one (openssl rand -hex 32)"
        )
    if previous is None:
        return warnings
    folder = previous.identity_map.parent
    if key is not None and not previous.pii_hashed:
        warnings.append(
            f"the previous output ({folder}) holds the personal values in the clear and this "
            "one their digests (output.hash_pii): joins on those columns between the two, or "
            "with tables loaded from the previous one, will not match"
        )
    elif key is None and previous.pii_hashed:
        warnings.append(
            f"the previous output ({folder}) holds digests of the personal values "
            "(output.hash_pii) and this one the values in the clear: joins on those columns "
            "between the two, or with tables loaded from the previous one, will not match"
        )
    elif (
        key is not None
        and previous.pii_key_check is not None
        and previous.pii_key_check != pii_key_check(key)
    ):
        warnings.append(
            f"{PII_KEY_ENV} is not the key the previous output ({folder}) was hashed with: "
            "every digest changed, and joins on the previous output's digests (tables loaded "
            "from it) will not match this one's; if the key changed by mistake, run again "
            "with the previous one"
        )
    return warnings


def hashed(column_sql: str, shape: str = "value") -> str:
    """`column_sql` with each personal value replaced by its keyed digest (a list element by
    element; a map's lists of values, keys kept). Equal values give equal digests within and
    across runs with one key, and without the key a digest cannot be matched by hashing guesses
    (every phone number, say). The engine defines the functions: see `set_pii_key`."""
    function = {"list": PII_DIGEST_LIST, "map": PII_DIGEST_MAP}.get(shape, PII_DIGEST)
    return f"{function}({column_sql})"


def output_queries(
    engine: DuckDBEngine,
    comparison_names: list[str],
    hash_pii: bool = False,
    names: tuple[str, ...] | None = None,
) -> dict[str, str]:
    """Output name -> the query that fills it, for the outputs `names` (default: all); with
    `hash_pii`, personal columns are digests (the key must be set first: see `write_tables`)."""
    queries = {**OUTPUT_QUERIES, "links": links_query(comparison_names)}
    if names is not None:
        queries = {name: query for name, query in queries.items() if name in names}
    if not hash_pii:
        return queries
    if "profiles" in queries:
        queries["profiles"] = _profiles_query(
            ", ".join(
                f"{hashed(ident(c), PROFILE_PII[c])} AS {ident(c)}" if c in PROFILE_PII
                else ident(c)
                for c in engine.columns(PROFILES)
            )
        )  # fmt: skip
    if "records" in queries:
        queries["records"] = _records_query(
            ", ".join(
                f"{hashed('r.' + ident(c))} AS {ident(c)}" if c in RECORD_PII else f"r.{ident(c)}"
                for c in RECORD_FIELDS
            )
        )
    if "rejects" in queries:
        queries["rejects"] = _rejects_query(hashed("raw"))
    return queries


# Scored pairs below the threshold are kept in links.parquet down to this match probability, so
# evaluation can trace precision and recall over thresholds and explain can show near misses;
# lower ones are overwhelmingly non-matches and would only bloat the file.
LINKS_FLOOR = SCORED_FLOOR


def links_query(comparison_names: list[str]) -> str:
    """Scored pairs at or above ``LINKS_FLOOR``: links (``above_threshold``), kept or refused by
    a merge guard (``guard`` says which), and the near misses below the threshold."""
    per_field = ", ".join(
        f"k.{ident('gamma_' + n)}, k.{ident('weight_' + n)}" for n in comparison_names
    )
    # Which pairs are links is the cluster stage's decision (cx_links), not recomputed here.
    return f"""
        SELECT l.source AS left_source, l.source_record_id AS left_source_record_id,
               r.source AS right_source, r.source_record_id AS right_source_record_id,
               li.customer_id, ru.name AS blocking_rule, k.forced,
               k.match_weight, k.match_probability,
               a.left_node IS NOT NULL AND f.guard IS NULL AS kept, f.guard,
               a.left_node IS NOT NULL AS above_threshold,
               {per_field}
        FROM {SCORED} k
        LEFT JOIN {LINKS} a ON a.left_node = k.left_node AND a.right_node = k.right_node
        JOIN {RECORDS} l ON l.record_key = k.left_node
        JOIN {RECORDS} r ON r.record_key = k.right_node
        JOIN {IDENTITY} li ON li.record_key = k.left_node
        LEFT JOIN {RULES} ru ON ru.rule = k.rule
        LEFT JOIN {REFUSED} f ON f.left_node = k.left_node AND f.right_node = k.right_node
        WHERE a.left_node IS NOT NULL OR k.match_probability >= {LINKS_FLOOR}
        ORDER BY k.left_node, k.right_node
    """


# An output folder: local, or on a store Spark writes.
Folder = Path | HadoopPath


@overload
def staging_dir(out_dir: Path) -> Path: ...
@overload
def staging_dir(out_dir: HadoopPath) -> HadoopPath: ...
def staging_dir(out_dir: Folder) -> Folder:
    """A fresh folder beside `out_dir` (same filesystem, so the final rename is atomic)."""
    name = f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if isinstance(out_dir, HadoopPath):
        on_store = out_dir.parent / name
        on_store.mkdir()
        return on_store
    out_dir = out_dir.resolve()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{out_dir.parent}: cannot create output folder: {exc.strerror}"
        ) from None
    staging = out_dir.parent / name
    staging.mkdir()
    # Before a file is written in it: the run's exports and spill files go there too.
    _take_mode(staging, out_dir)
    return staging


def _take_mode(folder: Path, out_dir: Path) -> None:
    """Give `folder`, which takes `out_dir`'s place (or is set aside beside it), the
    permission bits of `out_dir`, if it is a folder: a `chmod 700 out` keeping other users
    out of the customers' data was undone by each run's fresh folder (755 under the usual
    umask). The owner keeps full access: the run writes into it, and removes the folder it
    replaces."""
    if out_dir.is_dir():
        os.chmod(folder, stat.S_IMODE(out_dir.stat().st_mode) | stat.S_IRWXU)


def check_replaceable(out_dir: Folder) -> None:
    """Refuse to replace a folder that is not a cxunify output (it may hold a user's files),
    or one whose path DuckDB cannot open a database in."""
    if isinstance(out_dir, Path) and os.sep == "/" and "\\" in str(out_dir.absolute()):
        # DuckDB opens a database file at a path read with a backslash as '/': the outputs were
        # written and swapped in, then cxunify.duckdb could not be made, run after run.
        raise OutputError(
            f"{out_dir}: a backslash in the output folder's path is not supported (DuckDB "
            "reads it as a folder separator when it writes cxunify.duckdb); choose another --out"
        )
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not _is_output(out_dir))
    ):
        raise OutputError(
            f"{out_dir}: exists and is not a cxunify output folder; choose another --out"
        )


def _is_output(folder: Folder) -> bool:
    if (folder / MANIFEST).exists():
        return True
    # On a store, a run stopped while replacing the output leaves it without run.json.
    known = {f"{name}.parquet" for name in OUTPUT_QUERIES} | {"state"}  # update.STATE
    # (names starting with . or _ are the store's own: checksums, _SUCCESS)
    return isinstance(folder, HadoopPath) and all(
        p.name in known or p.name[0] in "._" for p in folder.iterdir()
    )


def write_tables(
    engine: DuckDBEngine,
    staging: Folder,
    compression: str,
    comparison_names: list[str],
    hash_pii: bool = False,
    names: tuple[str, ...] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write the Parquet outputs `names` (default: every one) into `staging`; return per
    output the rows written and the file's SHA-256 (None on a store, whose outputs are folders
    of part files and which an update does not read)."""
    written: dict[str, dict[str, Any]] = {}
    if hash_pii:
        engine.set_pii_key(pii_key())
    for name, query in output_queries(engine, comparison_names, hash_pii, names).items():
        path = staging / f"{name}.parquet"
        # The count is read back from the written file, so it proves what is on disk.
        rows = engine.write_parquet(query, str(path), compression)
        # A Parquet page as DuckDB writes it carries no checksum: the next run checks the
        # files it reads by this (see check_outputs).
        written[name] = {
            "rows": rows,
            "sha256": sha256_of(path) if isinstance(path, Path) else None,
        }
    return written


def manifest_digest(run: dict[str, Any]) -> str:
    """The SHA-256 of run.json's keys but its own (``sha256``): an update trusts what it
    says of the files read before (their SHA-256, dialects) and of the outputs, and a damaged
    one may still be valid JSON."""
    # As read back: JSON makes tuples lists, non-finite floats null and keys text.
    body = json.loads(jsontext.dumps({key: value for key, value in run.items() if key != "sha256"}))
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def with_digest(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with the digest of its content (``sha256``: see `manifest_digest`)."""
    return {**manifest, "sha256": manifest_digest(manifest)}


def write_manifest(staging: Folder, manifest: dict[str, Any]) -> None:
    (staging / MANIFEST).write_text(jsontext.dumps(manifest, indent=2) + "\n")


NOT_AS_WRITTEN = "its SHA-256 differs from the one recorded when it was written"


def digest_problem(path: Path, digest: str) -> str | None:
    """What is wrong with the file at `path` against the SHA-256 recorded when it was written
    (None: it is that file). Reads it once."""
    try:
        found = sha256_of(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    return None if found == digest else NOT_AS_WRITTEN


def check_outputs(folder: Path, run: dict[str, Any], names: tuple[str, ...]) -> None:
    """Stop unless each output `names` of `folder` for which its run.json (`run`) records a
    SHA-256 is the file that run wrote, before the file is read: bytes overwritten inside a
    compressed Parquet page (disk trouble, a bad copy) may decode to other values without an
    error, and the next run would carry them on. A recorded file that is gone is damage too.
    Outputs without a digest (written before they were kept, or on a store) are not checked
    here: see `check_manifest`."""
    recorded = run.get("outputs")
    for name in names:
        entry = recorded.get(name) if isinstance(recorded, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if digest is None:
            continue
        path = folder / f"{name}.parquet"
        problem = digest_problem(path, digest)
        if problem is not None:
            raise OutputError(damaged_output(path, problem, name in ID_OUTPUTS))


def check_manifest(folder: Path, run: dict[str, Any], names: tuple[str, ...]) -> None:
    """For an update: stop unless run.json (`run`) is as written and records the SHA-256 of
    each output `names` that `folder` holds, so that `check_outputs` checks every one. An
    output written before the digests were kept is refused once: a full run writes them."""
    path = folder / MANIFEST
    if "sha256" not in run or not isinstance(run.get("outputs"), dict):
        raise OutputError(
            f"{folder}: its outputs were written by an older version of cxunify, which "
            "recorded no digests to check them by; run a full `cxunify unify` once (it keeps "
            "the ids), then update as before"
        )
    if run["sha256"] != manifest_digest(run):
        raise OutputError(damaged_output(path, NOT_AS_WRITTEN))
    for name in names:
        entry = run["outputs"].get(name)
        if (folder / f"{name}.parquet").exists() and not (
            isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
        ):
            raise OutputError(
                f"{path}: records no digest of {name}.parquet to check it by (it was written "
                "on a store); run a full `cxunify unify`"
            )


def remove_tree(folder: Folder) -> None:
    """Delete a folder and what it holds, if it exists."""
    if isinstance(folder, HadoopPath):
        folder.remove_tree()
    else:
        shutil.rmtree(folder, ignore_errors=True)


def swap_in(staging: Folder, out_dir: Folder) -> None:
    """Put `staging` in place of `out_dir` atomically; the old folder is removed afterwards."""
    if isinstance(out_dir, HadoopPath) and isinstance(staging, HadoopPath):
        _replace_on_store(staging, out_dir)
        return
    assert isinstance(staging, Path) and isinstance(out_dir, Path)
    out_dir = out_dir.resolve()
    check_replaceable(out_dir)
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    _take_mode(staging, out_dir)  # as it is now: it may have changed since the run began
    _carry_over(out_dir, staging)
    if _exchange(staging, out_dir):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous run
        return
    retired = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with _signals_held():
        out_dir.rename(retired)
        staging.rename(out_dir)
    shutil.rmtree(retired, ignore_errors=True)


def _carry_over(out_dir: Path, staging: Path) -> None:
    """Hard-link into `staging` what `out_dir` holds of the user's (all but the output's own
    files): a run replaced the folder whole, and a report, a `sql --to out/vip.parquet` or
    another run's output put there (README's `--out out/febrl4`) went with the old run.
    Links, not moves: killed before the swap, the run leaves every file where it was."""
    owned = {MANIFEST, DATABASE, f".{DATABASE}.partial", "state"}  # state: update.STATE
    owned |= {f"{name}.parquet" for name in OUTPUT_QUERIES}
    for entry in out_dir.iterdir():
        if entry.name not in owned and not (staging / entry.name).exists():
            _link_tree(entry, staging / entry.name)


def _link_tree(source: Path, target: Path) -> None:
    if source.is_symlink():
        target.symlink_to(os.readlink(source))
    elif source.is_dir():
        target.mkdir()
        for entry in source.iterdir():
            _link_tree(entry, target / entry.name)
    else:
        try:
            os.link(source, target)
        except OSError:  # a filesystem without hard links
            shutil.copy2(source, target)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done: between two renames the output is
    in neither place, and a run stopping there would clear away its new output as unfinished,
    leaving only the retired one, which the next run clears as a leftover. (SIGKILL cannot
    wait; where it is, renameat2 swaps in one call instead.) Python runs signal handlers in
    the main thread, so that is where they are held; a signal is handled as it would have
    been once the block is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    held = (signal.SIGINT, signal.SIGTERM)
    before = {number: signal.signal(number, lambda n, f: caught.append((n, f))) for number in held}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        for number, frame in caught[:1]:
            then = before[signal.Signals(number)]
            if callable(then):
                then(number, frame)
            elif then == signal.SIG_DFL:
                signal.raise_signal(number)


def _replace_on_store(staging: HadoopPath, out_dir: HadoopPath) -> None:
    """Replace `out_dir` by `staging` with ``run.json`` as the marker: removed from the old
    output first, written to the new one last."""
    check_replaceable(out_dir)
    marker = staging / MANIFEST
    manifest = marker.read_text()
    marker.unlink()
    if out_dir.exists():
        (out_dir / MANIFEST).unlink(missing_ok=True)
        out_dir.remove_tree()
    staging.rename(out_dir)
    (out_dir / MANIFEST).write_text(manifest)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one system call (Linux renameat2); False where it is unavailable."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: filesystem or kernel lacks it
        return False
    raise OutputError(f"{b}: cannot swap in the new output: {os.strerror(errno)}")


def remove_leftovers(out_dir: Folder) -> list[Folder]:
    """Remove staging and retired folders a killed run left beside `out_dir`.

    Only call this while holding the output's lock: no live run can own them then.
    """
    out_dir = out_dir.resolve()
    found: list[Folder] = [
        *out_dir.parent.glob(f".{out_dir.name}.tmp-*"),
        *out_dir.parent.glob(f".{out_dir.name}.old-*"),
    ]
    for path in found:
        remove_tree(path)
    return found


def rejected_dir(out_dir: Folder) -> Folder:
    """Where a run that failed a quality gate leaves its output: ``<out>.rejected``."""
    out_dir = out_dir.resolve()
    return out_dir.parent / f"{out_dir.name}.rejected"


def superseded_rejection(out_dir: Folder) -> dict[str, Any] | None:
    """The output an earlier run stopped by a gate left in ``<out>.rejected``, which a run
    that passes its gates replaces `out_dir` over: the folder, when that run started and the
    gates it failed. None when there is none (or the folder is not a cxunify output: it is
    someone's own, and stays).

    It is removed once the new output is in place (`remove_superseded`): left there, a
    monitoring script or an operator finds last week's rejected output beside a healthy one
    and cannot tell whether tonight's run failed."""
    aside = rejected_dir(out_dir)
    if not (aside / MANIFEST).is_file():
        return None
    try:
        run = json.loads((aside / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = None
    run = run if isinstance(run, dict) else {}
    quality = run.get("quality")
    return {
        "folder": str(aside),
        "started_at": run.get("started_at"),
        "failed": quality.get("failed") if isinstance(quality, dict) else None,
    }


def remove_superseded(out_dir: Folder) -> None:
    """Remove the ``<out>.rejected`` `superseded_rejection` found (still a cxunify output)."""
    aside = rejected_dir(out_dir)
    if (aside / MANIFEST).is_file():
        remove_tree(aside)


def set_aside(staging: Folder, out_dir: Folder) -> Folder:
    """Move a finished output that failed a quality gate to ``<out>.rejected`` beside
    `out_dir` (replacing an earlier one), with its database, for inspection."""
    aside = rejected_dir(out_dir)
    if aside.exists():
        if not (aside / MANIFEST).exists():
            raise OutputError(f"{aside}: exists and is not a cxunify output; remove it")
        remove_tree(aside)
    if isinstance(staging, Path) and isinstance(out_dir, Path):
        _take_mode(staging, out_dir.resolve())  # it holds the same customers' data
    staging.rename(aside)  # type: ignore[arg-type]  # both local or both on the store
    if isinstance(aside, Path):
        write_database(aside)
    return aside


def require_folder(out_dir: Path | str) -> None:
    """Stop at an output folder that is not there, in the one line every command reading an
    output says it with: each said what it looked for first ('no run.json', 'no
    profiles.parquet; run cxunify unify', 'no links.parquet'), as if the folder were there."""
    if not Path(out_dir).exists():
        raise OutputError(f"{out_dir}: no such output folder")


def source_hint(name: str, sources: Sequence[str]) -> str:
    """'; did you mean 'crm'?' for a source name the output does not hold, naming the one it
    holds in another case (CRM: crm), or else one spelt alike; '' when none is."""
    close = [s for s in sources if s.lower() == name.lower()] or difflib.get_close_matches(
        name, list(sources), n=1, cutoff=0.6
    )
    return f"; did you mean '{close[0]}'?" if close else ""


def no_such_source(names: Sequence[str], sources: Sequence[str]) -> str:
    """Why source `names` (the first three shown) name nothing, with the output's `sources`:
    "the output has no source 'CRM' (its sources: crm, orders; did you mean 'crm'?)"."""
    shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
    return (
        f"the output has no source {shown} (its sources: {', '.join(sources)}"
        f"{source_hint(names[0], sources)})"
    )


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The run.json of an output folder, for the commands that read one; a file cut short or
    overwritten is the user's to mend, not a cxunify fault."""
    manifest = out_dir / MANIFEST
    try:
        run = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = None
    if not isinstance(run, dict):
        raise OutputError(f"{manifest}: not a readable run manifest; run cxunify unify again")
    problem = manifest_problem(run)
    if problem is not None:
        raise OutputError(
            f"{manifest}: not a readable run manifest ({problem}); run cxunify unify again"
        )
    return run


_KIND_NAMES = {str: "text", int: "a whole number", float: "a number", list: "a list"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def manifest_problem(run: dict[str, Any]) -> str | None:
    """What is wrong, key first, with the parts of a run.json that explain, report and
    evaluate read (a file edited by hand: ``"model": null``, a weight without its level),
    else None; each was an internal error (KeyError, AttributeError) deep in the command.
    A part missing is no problem: folders of older versions lack some."""
    for key in ("matching", "model", "counts"):
        if key in run and not isinstance(run[key], dict):
            return f"{key}: not an object"
    threshold = run.get("matching", {}).get("threshold")
    if threshold is not None and not _number(threshold):
        return "matching.threshold: not a number"
    weights = run.get("model", {}).get("weights", [])
    if not isinstance(weights, list):
        return "model.weights: not a list"
    for i, entry in enumerate(weights):
        key = f"model.weights[{i}]"
        if not isinstance(entry, dict):
            return f"{key}: not an object"
        if "comparison" in entry:  # Fellegi–Sunter: one entry per level
            shape: dict[str, Any] = {"comparison": str, "level": str, "gamma": int}
            if entry.get("m") is not None or entry.get("u") is not None:
                shape |= {"m": float, "u": float}
        else:  # logistic: one entry per comparison, with its levels
            shape = {"name": str, "levels": list}
        for field, kind in shape.items():
            value = entry.get(field)
            if field not in entry:
                return f"{key}: no {field}"
            if not (_number(value) if kind is float else isinstance(value, kind)) or (
                kind is int and isinstance(value, bool)
            ):
                return f"{key}.{field}: not {_KIND_NAMES[kind]}"
    return None


def find_previous(previous: Folder, for_update: bool = False) -> PreviousOutput | None:
    """The identity files of a previous output folder, or None when there is none yet.

    Those a local folder's run.json records a SHA-256 of are checked by it before they are
    read; `for_update`, run.json must be as written and record one for each (see
    `check_manifest`)."""
    previous = previous.resolve()
    manifest = previous / MANIFEST
    # (on a store, each output is a folder of part files)
    if not manifest.is_file():
        return None
    if not (previous / "identity_map.parquet").exists():
        # Treated as no previous run, every id would be issued afresh and the churn gates
        # skipped: a damaged output must be mended or removed by hand.
        raise OutputError(
            f"{previous}: holds {MANIFEST} but no identity_map.parquet, so the customer ids "
            "of the previous run cannot be carried over; restore it from a backup, or remove "
            "the folder to start again with new ids"
        )
    try:
        run = json.loads(manifest.read_text(encoding="utf-8"))
        started_at = datetime.fromisoformat(run["started_at"])
    except (OSError, ValueError, KeyError, TypeError):
        raise OutputError(f"{manifest}: unreadable run manifest") from None
    if isinstance(previous, Path):
        if for_update:
            check_manifest(previous, run, ID_OUTPUTS)
        # A full run checks them too: it carries the ids over from them, so it is no cure
        # for their damage. (Its own run.json is not checked: its ids' digests matching
        # prove both them and the files whole, and a full run rebuilds the rest.)
        check_outputs(previous, run, ID_OUTPUTS)

    def optional(name: str) -> Folder | None:
        path = previous / f"{name}.parquet"
        return path if path.exists() else None

    key_check = run.get("pii_key_check")
    return PreviousOutput(
        identity_map=previous / "identity_map.parquet",
        customer_ids=optional("customer_ids"),
        redirects=optional("id_redirects"),
        removed_records=optional("removed_records"),
        started_at=started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC),
        pii_hashed=run.get("pii_hashed") is True,
        pii_key_check=key_check if isinstance(key_check, str) else None,
    )


def write_database(out_dir: Path) -> None:
    """Write ``cxunify.duckdb`` with a view per Parquet output, by absolute path.

    DuckDB resolves relative paths in views against the reader's working directory, so the
    views name the files where they finally live. They are created after the swap because
    DuckDB checks a view's files when it is created.
    """
    out_dir = out_dir.resolve()
    partial = out_dir / f".{DATABASE}.partial"
    partial.unlink(missing_ok=True)
    # In the storage format of DuckDB 1.0, which every later DuckDB reads: by default 2.x
    # writes its own, and no DuckDB 1.x CLI (the one a BI user may have) could open the file.
    con = duckdb.connect(str(partial), config={"storage_compatibility_version": DATABASE_FORMAT})
    try:
        create_views(con, out_dir)
    finally:
        con.close()
    partial.rename(out_dir / DATABASE)


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A file beside `target` to write in its place, which replaces `target` once written
    whole (removed if the writing fails). A command's file (`--to`) is never seen cut short,
    an earlier one stays when the writing fails, and a symlink at `target` is replaced, not
    written through: one planted in a shared output folder (out/report.html pointing at a
    file of the user's) had that file overwritten."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def refuse_output_file(
    target: Path,
    option: str,
    *out_dirs: Path,
    inputs: Sequence[Path] = (),
    example: str = "result.csv",
) -> None:
    """Stop before a command writes `target` (its `option`) over a file of one of the output
    folders `out_dirs`: ``--to out/profiles.parquet`` or ``--to out/run.json`` replaced the
    output's own file, which the command may be reading meanwhile. Other files (the default
    ``report.html``) may go there. A `target` that is a folder is refused too, suggesting a
    file in it named `example`: ``--to out`` said only 'out: Is a directory'.

    Nor may `target` be a file the command reads (`inputs`: ``train --crm crm.csv --to
    crm.csv`` replaced the export with the model) or an export one of `out_dirs` was made from
    (run.json's inputs: ``sql --to crm.csv`` replaced it with the query's result): the export
    is the user's data, often the only copy on this machine."""
    if target.is_dir():
        raise UserError(
            f"{target}: is a folder; {option} takes a file name such as {target / example}"
        )
    own = {MANIFEST, DATABASE, *(f"{name}.parquet" for name in OUTPUT_QUERIES)}
    where = target.resolve()
    # Any output's, not only those the command reads: `train --to out/profiles.parquet`, or
    # `report --to yesterday/run.json`, replaced another output's file.
    around = [a for a in (where.parent, where.parent.parent) if _is_output(a)]
    for out_dir in (*out_dirs, *around):
        folder = out_dir.resolve()
        if where.parent == folder and where.name in own:
            raise OutputError(
                f"{option} {target}: would replace the output's own {where.name} in "
                f"{out_dir}; write it elsewhere"
            )
        if where.is_relative_to(folder / "state"):  # update.STATE
            raise OutputError(
                f"{option} {target}: inside {out_dir}'s update state; write it elsewhere"
            )
    for read in inputs:
        if same_file(target, read):
            raise UserError(
                f"{option} {target}: is {read}, a file this command reads; write it elsewhere"
            )
    for out_dir in out_dirs:
        for read in recorded_inputs(out_dir):
            if same_file(target, read):
                raise OutputError(
                    f"{option} {target}: is {read}, an export {out_dir} was made from "
                    f"({MANIFEST} inputs); write it elsewhere"
                )


def refuse_file_as_folder(target: Path) -> None:
    """Stop before writing `target` in a folder that is a file (``--to notes.txt/r.html``):
    mkdir's FileExistsError or NotADirectoryError reached a caller of the Python API as it
    was. The error names the file, as the CLI says it of any path."""
    for folder in target.parents:  # the nearest one there decides
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise OutputError(
                    f"{folder}: is a file, not a folder: nothing can be written inside it"
                )
            return


def same_file(a: Path, b: Path) -> bool:
    """Whether paths `a` and `b` name one file: the same inode when both exist (a hard link,
    a symlink, another spelling of the path), else the same absolute path."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is not there (yet)
        return a.resolve() == b.resolve()


def recorded_inputs(out_dir: Path) -> list[Path]:
    """The files on this machine that the output folder `out_dir` was made from, as its
    run.json records them (each export read, and an update's deletions file); none when it has
    no readable run.json, which the command reading the folder reports in its own words."""
    try:
        run = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(run, dict):
        return []
    entries = run.get("inputs")
    entries = list(entries) if isinstance(entries, list) else []
    update = run.get("update")
    if isinstance(update, dict):
        entries.append(update.get("deletions_file"))
    paths = [entry.get("path") for entry in entries if isinstance(entry, dict)]
    # (an export on a store, s3a://..., is no file here)
    return [Path(p) for p in paths if isinstance(p, str) and p and not is_uri(p)]


def output_names(out_dir: Path) -> list[str]:
    return sorted(p.stem for p in out_dir.glob("*.parquet"))


def create_views(
    con: duckdb.DuckDBPyConnection, out_dir: Path, skipped: list[str] | None = None
) -> list[str]:
    """Create a view per Parquet file of an output folder on `con`; return the view names.

    A Parquet file of the user's own beside the outputs (``cxunify sql --to out/vip.parquet``)
    is a view too, but one that cannot be read is left out, with a line in `skipped` when
    given: a CSV named ``.parquet`` there stopped every later query over the real outputs. A
    damaged output of cxunify's own is an error still."""
    names = []
    for name in output_names(out_dir):
        path = literal_path(str((out_dir / f"{name}.parquet").resolve())).replace("'", "''")
        # A view body cannot take parameters; the path is ours (an output folder) and quoted.
        source = parquet(f"'{path}'")
        try:
            con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT * FROM {source}")
        except duckdb.Error as exc:
            if name in OUTPUT_QUERIES or interrupted(exc):
                raise
            if skipped is not None:
                why = unreadable_file(exc) or f"{path}: {str(exc).strip().splitlines()[0]}"
                skipped.append(f"{why}; not one of cxunify's outputs, it is left without a view")
            continue
        names.append(name)
    return names
