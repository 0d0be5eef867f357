"""Why a customer is what it is: its source records, the links between them, and the guards.

Reads an output folder only (records, identity_map, links, profiles and run.json), so a
customer can be explained on any machine the folder is copied to. Each link's match weight is
decomposed into the prior and one partial weight per comparison, in the order they add up,
which is what the CLI draws as a waterfall. Its stages, RFM segment and experience score are
told by the rules that gave them (trait_reasons).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from cxunify.errors import OutputError, UserError, public
from cxunify.output import (
    PII_KEY_ENV,
    keyed_digest,
    no_such_source,
    read_manifest,
    require_folder,
)
from cxunify.record_ids import clean_id, clean_id_sql
from cxunify.sql import parquet
from cxunify.trait_reasons import TraitReason, trait_reasons

NEEDED = (
    "records.parquet", "identity_map.parquet", "links.parquet", "profiles.parquet", "run.json"
)  # fmt: skip


@dataclass(frozen=True)
class FieldEvidence:
    """One comparison of a pair: its level and that level's partial match weight (bits)."""

    comparison: str
    gamma: int
    level: str
    weight: float


@dataclass(frozen=True)
class LinkExplanation:
    """One scored pair touching the customer, with its weight taken apart."""

    left: str  # "source:source_record_id"
    right: str
    left_customer_id: str
    right_customer_id: str
    blocking_rule: str | None
    forced: bool
    kept: bool
    above_threshold: bool
    guard: str | None
    prior_weight: float
    fields: list[FieldEvidence]
    match_weight: float
    match_probability: float

    @property
    def status(self) -> str:
        if self.kept:
            return "linked"
        if self.guard is not None:
            return f"refused: {self.guard}"
        return "below threshold"


@dataclass(frozen=True)
class Explanation:
    """A customer's records, every scored pair touching them, and what the guards refused."""

    customer_id: str
    threshold: float | None
    records: list[dict[str, Any]]
    links: list[LinkExplanation]
    # Its lifecycle and journey stages, RFM segment and experience score, each with why.
    traits: list[TraitReason] = field(default_factory=list)

    @property
    def guard_splits(self) -> list[dict[str, Any]]:
        """Per guard and customer on the other side, how many links the guard refused."""
        found: dict[tuple[str, str], int] = {}
        for link in self.links:
            if link.guard is None:
                continue
            other = (
                link.right_customer_id
                if link.left_customer_id == self.customer_id
                else link.left_customer_id
            )
            found[(link.guard, other)] = found.get((link.guard, other), 0) + 1
        return [
            {"guard": guard, "other_customer_id": other, "links_refused": n}
            for (guard, other), n in sorted(found.items())
        ]

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``cxunify explain --json`` prints (dates and times as ISO text)."""
        return {
            "customer_id": self.customer_id,
            "threshold": self.threshold,
            "records": [
                {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()}
                for r in self.records
            ],
            "links": [{**asdict(link), "status": link.status} for link in self.links],
            "guard_splits": self.guard_splits,
            "traits": [asdict(reason) for reason in self.traits],
        }


@public("out_dir")
def explain(
    out_dir: Path, customer_id: str | None = None, record: str | None = None
) -> Explanation:
    """Explain the customer `customer_id`, or the customer of `record` (``SOURCE:ID``).

    Example::

        explanation = explain(Path("out"), record="crm:C00000250")
        for link in explanation.links:
            print(link.left, link.right, link.match_weight, link.status)
    """
    if (customer_id is None) == (record is None):
        raise UserError("give either --customer or --record")
    require_folder(out_dir)
    for name in NEEDED:
        if not (out_dir / name).is_file():
            raise OutputError(f"{out_dir}: no {name}; run cxunify unify (this version) first")
    manifest = read_manifest(out_dir)
    con = duckdb.connect()
    try:
        if record is not None:
            customer_id = _customer_of(con, out_dir, record)
        assert customer_id is not None
        records = _records(con, out_dir, customer_id)
        if not records:
            raise UserError(_not_found(con, out_dir, customer_id))
        links = _links(con, out_dir, customer_id, _level_labels(manifest))
        traits = _traits(con, out_dir, customer_id, manifest)
    finally:
        con.close()
    threshold = manifest.get("matching", {}).get("threshold")
    return Explanation(
        customer_id=customer_id, threshold=threshold, records=records, links=links, traits=traits
    )


def _traits(
    con: duckdb.DuckDBPyConnection, out_dir: Path, customer_id: str, manifest: dict[str, Any]
) -> list[TraitReason]:
    found = con.execute(
        f"SELECT * FROM {parquet('$p')} WHERE customer_id = $c",
        {"p": str(out_dir / "profiles.parquet"), "c": customer_id},
    )
    names = [d[0] for d in found.description]
    rows = found.fetchall()
    if not rows:
        return []
    profile = dict(zip(names, rows[0], strict=True))
    return trait_reasons(profile, manifest.get("profile"), manifest.get("as_of"))


def _customer_of(con: duckdb.DuckDBPyConnection, out_dir: Path, record: str) -> str:
    source, sep, record_id = record.partition(":")
    if not sep or not clean_id(source) or not clean_id(record_id):
        raise UserError(f"--record {record}: expected SOURCE:ID, e.g. crm:C00000250")
    # Matched whole, not split at the first colon: a source name or an id may hold one. The
    # id is trimmed as a run trims the ids it stores: 'crm: C1' pasted with a tab names crm:C1.
    record = clean_id(record)
    found = con.execute(
        f"SELECT DISTINCT source, customer_id FROM {parquet('$path')} "
        "WHERE starts_with($record, source || ':') "
        f"AND source_record_id = {clean_id_sql('substr($record, length(source) + 2)')}",
        {"path": str(out_dir / "identity_map.parquet"), "record": record},
    ).fetchall()
    if not found:
        raise UserError(_removed(con, out_dir, record) or _rejected(con, out_dir, record))
    if len(found) > 1:
        sources = " and ".join(sorted(str(s) for s, _ in found))
        raise UserError(f"--record {record}: names a record of {sources}; ask by --customer")
    return str(found[0][1])


def _removed(con: duckdb.DuckDBPyConnection, out_dir: Path, record: str) -> str | None:
    """When `record` (SOURCE:ID) left an earlier run (deleted, or no longer in the exports),
    what removed_records.parquet says of it: it keeps a digest of each such record, with its
    customer then. With hash_pii the digest is keyed: found only with CXUNIFY_PII_KEY set."""
    removed = out_dir / "removed_records.parquet"
    if not removed.is_file():
        return None
    hashed = read_manifest(out_dir).get("pii_hashed") is True
    key = os.environ.get(PII_KEY_ENV) if hashed else None
    if hashed and not key:
        return None
    # Every way to split it at a colon: a source name or an id may hold one.
    named = {}
    for at in (i for i, char in enumerate(record) if char == ":"):
        source, record_id = record[:at], clean_id(record[at + 1 :])
        text = f"{source}\x1f{record_id}"  # (as identity.record_digest makes it in SQL)
        digest = keyed_digest(key, text) if key else hashlib.sha256(text.encode()).hexdigest()
        named[digest] = f"{source}:{record_id}"
    found = con.execute(
        f"SELECT record, customer_id, removed_at FROM {parquet('$path')} "
        "WHERE record IN (SELECT unnest($digests)) ORDER BY removed_at DESC LIMIT 1",
        {"path": str(removed), "digests": list(named)},
    ).fetchall()
    if not found:
        return None
    digest, customer_id, removed_at = found[0]
    record = named[digest]
    day = f" on {removed_at:%Y-%m-%d}" if removed_at is not None else ""
    return (
        f"record {record} left {out_dir}{day} (deleted, or no longer in the exports); it was "
        f"customer {customer_id}'s then"
    )


def _rejected(con: duckdb.DuckDBPyConnection, out_dir: Path, record: str) -> str:
    """Why `record` (SOURCE:ID) has no customer: a row rejected on input is in rejects.parquet
    alone, which said only 'no record'. Its id is looked for in the raw row (a line, or the
    values as JSON) as a whole field; a row whose id cannot be found so is left to the user."""
    missing = f"no record {record} in {out_dir}/identity_map.parquet"
    rejects = out_dir / "rejects.parquet"
    if not rejects.is_file():
        return missing + _unknown_source(con, out_dir, record)
    rows = con.execute(
        f"SELECT source, file, line, reason, raw FROM {parquet('$path')} "
        "WHERE starts_with($record, source || ':') ORDER BY file, line",
        {"path": str(rejects), "record": record},
    ).fetchall()
    for source, file, line, reason, raw in rows:
        record_id = re.escape(clean_id(record[len(source) + 1 :]))
        if re.search(rf"(?<![\w.@+-]){record_id}(?![\w.@+-])", raw or ""):
            at = f"{file} line {line}" if line is not None else str(file)
            return (
                f"record {record} was rejected on input ({reason}; {at}); "
                f"{rejects} holds its raw row"
            )
    if not rows:
        return missing + _unknown_source(con, out_dir, record)
    sources = sorted({str(source) for source, *_ in rows})
    return (
        f"{missing}; {len(rows):,} rows of {' and '.join(sources)} were rejected on input, "
        f"and it may be one whose id could not be read: see {rejects}"
    )


def _unknown_source(con: duckdb.DuckDBPyConnection, out_dir: Path, record: str) -> str:
    """': the output has no source 'CRM' (its sources: crm, ...; did you mean 'crm'?)' when
    `record` names no source of the output, as evaluate says of a truth file's; else ''."""
    sources = [
        str(s)
        for (s,) in con.execute(
            f"SELECT DISTINCT source FROM {parquet('$path')} ORDER BY ALL",
            {"path": str(out_dir / "identity_map.parquet")},
        ).fetchall()
    ]
    if any(record.startswith(f"{source}:") for source in sources):
        return ""
    # The source as typed: as long as one of the output's in another case (a name may hold
    # a colon), else up to the first colon.
    typed = next(
        (record[: len(s)] for s in sources if record.lower().startswith(f"{s.lower()}:")),
        record.partition(":")[0],
    )
    return ": " + no_such_source([typed], sources)


def _not_found(con: duckdb.DuckDBPyConnection, out_dir: Path, customer_id: str) -> str:
    """Why no record carries `customer_id`: an id a downstream system still holds may have
    been retired by a merge, which ``id_redirects.parquet`` records with where it went."""
    missing = f"no customer {customer_id} in {out_dir}"
    redirects = out_dir / "id_redirects.parquet"
    if not redirects.is_file():
        return _left(con, out_dir, customer_id, missing)
    found = con.execute(
        f"SELECT customer_id, redirected_to, reason, redirected_at FROM {parquet('$path')} "
        "WHERE old_customer_id = $customer "
        "ORDER BY reason = 'merge' DESC, redirected_at DESC LIMIT 1",
        {"path": str(redirects), "customer": customer_id},
    ).fetchone()
    if found is None:
        return _left(con, out_dir, customer_id, missing)
    now, to, reason, when = found
    day = f" on {when:%Y-%m-%d}" if when is not None else ""
    if reason != "merge":
        return f"{missing}; part of its records became customer {to}{day} ({reason})"
    if now is None:
        return (
            f"customer {customer_id} was merged into {to}{day}, whose records are no "
            f"longer in {out_dir}"
        )
    return f"customer {customer_id} was merged into {now}{day}; ask for --customer {now}"


def _left(con: duckdb.DuckDBPyConnection, out_dir: Path, customer_id: str, missing: str) -> str:
    """`missing`, and whether the customer's records all left (removed_records.parquet)."""
    removed = out_dir / "removed_records.parquet"
    if not removed.is_file():
        return missing
    ((records, last),) = con.execute(
        f"SELECT count(*), max(removed_at) FROM {parquet('$path')} WHERE customer_id = $customer",
        {"path": str(removed), "customer": customer_id},
    ).fetchall()
    if not records:
        return missing
    day = f" on {last:%Y-%m-%d}" if last is not None else ""
    held = "its record" if records == 1 else f"all {records} of its records"
    return (
        f"{missing}: {held} left (the last{day}: deleted, or no longer in the exports); "
        "should they come back, they get its id back"
    )


def _records(con: duckdb.DuckDBPyConnection, out_dir: Path, customer_id: str) -> list[dict]:
    cursor = con.execute(
        f"SELECT r.*, i.confidence FROM {parquet('$records')} r "
        f"JOIN {parquet('$identity')} i USING (source, source_record_id) "
        "WHERE r.customer_id = $customer ORDER BY r.source, r.source_record_id",
        {
            "records": str(out_dir / "records.parquet"),
            "identity": str(out_dir / "identity_map.parquet"),
            "customer": customer_id,
        },
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _level_labels(manifest: dict[str, Any]) -> dict[tuple[str, int], str]:
    """(comparison, gamma) → level label, from either kind of model run.json describes."""
    weights = manifest.get("model", {}).get("weights", [])
    labels: dict[tuple[str, int], str] = {}
    for entry in weights:
        if "comparison" in entry:  # Fellegi–Sunter: one row per level
            labels[(entry["comparison"], int(entry["gamma"]))] = str(entry["level"])
        else:  # logistic: one entry per comparison with its levels
            for gamma, label in enumerate(entry.get("levels", [])):
                labels[(entry["name"], gamma)] = str(label)
    return labels


def _links(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    customer_id: str,
    labels: dict[tuple[str, int], str],
) -> list[LinkExplanation]:
    """Every scored pair with a record of the customer on either side, strongest first."""
    cursor = con.execute(
        f"""
        WITH ids AS (SELECT source, source_record_id, customer_id FROM {parquet("$identity")})
        SELECT l.*, lc.customer_id AS left_customer_id, rc.customer_id AS right_customer_id
        FROM {parquet("$links")} l
        JOIN ids lc ON lc.source = l.left_source
                   AND lc.source_record_id = l.left_source_record_id
        JOIN ids rc ON rc.source = l.right_source
                   AND rc.source_record_id = l.right_source_record_id
        WHERE lc.customer_id = $customer OR rc.customer_id = $customer
        ORDER BY l.kept DESC, l.match_weight DESC, l.left_source, l.left_source_record_id,
                 l.right_source, l.right_source_record_id
        """,
        {
            "links": str(out_dir / "links.parquet"),
            "identity": str(out_dir / "identity_map.parquet"),
            "customer": customer_id,
        },
    )
    names = [d[0] for d in cursor.description]
    comparisons = [n.removeprefix("gamma_") for n in names if n.startswith("gamma_")]
    explained = []
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        fields = []
        for name in comparisons:
            gamma = int(row[f"gamma_{name}"])
            label = "missing" if gamma < 0 else labels.get((name, gamma), f"level {gamma}")
            fields.append(FieldEvidence(name, gamma, label, float(row[f"weight_{name}"] or 0.0)))
        weight = float(row["match_weight"])
        explained.append(
            LinkExplanation(
                left=f"{row['left_source']}:{row['left_source_record_id']}",
                right=f"{row['right_source']}:{row['right_source_record_id']}",
                left_customer_id=row["left_customer_id"],
                right_customer_id=row["right_customer_id"],
                blocking_rule=row["blocking_rule"],
                forced=bool(row["forced"]),
                kept=bool(row["kept"]),
                above_threshold=bool(row["above_threshold"]),
                guard=row["guard"],
                # The prior is what the partial weights do not account for, so the steps always
                # sum to the stored weight, whichever model (EM or logistic) produced it.
                prior_weight=weight - sum(f.weight for f in fields),
                fields=fields,
                match_weight=weight,
                match_probability=float(row["match_probability"]),
            )
        )
    return explained
