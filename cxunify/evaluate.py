"""Matching quality against a truth file: pairwise and B-cubed precision, recall and F1.

The truth file has one row per source record: ``source, source_record_id, person_id``. Only
records present in both the identity map and the truth are scored (rejected rows drop out);
the truth rows naming no record of the output are counted, and said. An id is found as the
output spells it, or else when it is the same text in Unicode's composed form (NFC): a truth
file macOS wrote holds 'Zoë' decomposed. A ratio of no pairs (precision when no pair is
predicted, recall when no pair is true) is None, not a perfect 1.0, and a truth file leaving
no pair to score at all is an error. All counting happens in DuckDB; nothing per pair reaches
Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cxunify import scratch
from cxunify.errors import InputError, OutputError, UserError, public
from cxunify.ingest import readable_text
from cxunify.output import MANIFEST, no_such_source, read_manifest, require_folder
from cxunify.record_ids import as_text_sql, clean_id, clean_id_sql
from cxunify.sql import ident, parquet, read_file
from cxunify.standardize import install_macros


@dataclass(frozen=True)
class Quality:
    """The figures of the `records` scored: the truth's rows naming a record of the output
    (`truth_rows` less `truth_rows_not_in_output`). Pairwise precision is None when no pair
    of them is one customer, recall None when no pair is one person."""

    records: int
    truth_rows: int
    truth_rows_not_in_output: int
    true_customers: int
    predicted_customers: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    pairwise_precision: float | None
    pairwise_recall: float | None
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    largest_cluster: int

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _ratio(part: float, whole: float) -> float | None:
    """`part` of `whole`; None of nothing: a precision of no pairs is no perfect score."""
    return float(part) / float(whole) if whole else None


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _pairs_f1(precision: float | None, recall: float | None) -> float | None:
    """F1 of pairs: None of no pairs. One of precision and recall alone is None only where the
    other is 0 (no correct pair among none predicted, or none true), and F1 is then 0."""
    if precision is None and recall is None:
        return None
    return _f1(precision or 0.0, recall or 0.0)


def evaluate(out_dir: Path, truth_path: Path) -> Quality:
    """Score ``out_dir/identity_map.parquet`` against `truth_path` (CSV or Parquet)."""
    con = _connect(out_dir, truth_path)
    try:
        return _quality(con, truth_path)
    finally:
        con.close()


# Match probabilities the precision/recall trade-off is traced at (the configured threshold is
# added); dense near 1, where Fellegi–Sunter probabilities crowd.
CURVE_THRESHOLDS = (
    0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999,
)  # fmt: skip


@dataclass(frozen=True)
class Evaluation:
    """Everything ``cxunify evaluate`` reports: the quality figures, the precision/recall
    trade-off of the scored links over thresholds, and the worst errors to review."""

    quality: Quality
    threshold: float | None
    curve: list[dict[str, Any]]
    false_merge_links: int
    missed_links: int
    # True pairs split over customers that links.parquet does not hold: never made candidates
    # by a blocking rule, or scored under links_floor (what blocking, not scoring, misses).
    missed_pairs_unscored: int
    split_people: int
    mixed_customers: int
    worst_false_merges: list[dict[str, Any]]
    worst_missed_links: list[dict[str, Any]]
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "quality": self.quality.as_dict()}


@public("out_dir", "truth_path")
def assess(out_dir: Path, truth_path: Path, limit: int = 10) -> Evaluation:
    """Evaluate an output folder against a truth file, with the trade-off and the worst errors.

    The curve counts scored pairs in ``links.parquet`` as a classifier of "same person": at each
    threshold, precision is the share of pairs at or above it whose records are one person, and
    recall the share of the true-match pairs in the file that are at or above it (pairs never
    made candidates, or scored under ``links_floor``, are not in the file, so recall here is
    relative to the scored pairs; the clustering figures in ``quality`` are absolute).
    ``limit``: the worst false merges and missed links listed, 0 or more.
    """
    # As `evaluate --worst` refuses it: DuckDB's own answer was an internal BinderException.
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise UserError(f"limit must be 0 or more, not {limit!r}")
    require_folder(out_dir)
    links = out_dir / "links.parquet"
    if not links.is_file():
        raise OutputError(f"{out_dir}: no links.parquet; run cxunify unify first")
    threshold = _threshold(out_dir)
    con = _connect(out_dir, truth_path)
    try:
        quality = _quality(con, truth_path)
        warnings = _not_in_output(con, out_dir / "identity_map.parquet", quality)
        con.execute(
            f"""
            CREATE TABLE judged AS
            SELECT l.*, a.person_id AS left_person_id, b.person_id AS right_person_id,
                   a.person_id = b.person_id AS same_person, ri.customer_id AS right_customer_id
            FROM {parquet("$links")} l
            JOIN truth a ON a.source = l.left_source
                        AND a.source_record_id = l.left_source_record_id
            JOIN truth b ON b.source = l.right_source
                        AND b.source_record_id = l.right_source_record_id
            JOIN {parquet("$identity")} ri ON ri.source = l.right_source
                        AND ri.source_record_id = l.right_source_record_id
            """,
            {"links": str(links), "identity": str(out_dir / "identity_map.parquet")},
        )
        thresholds = sorted({*CURVE_THRESHOLDS, *([threshold] if threshold is not None else [])})
        curve = _curve(con, thresholds)
        false_merges, missed = _fetch_one(
            con,
            "SELECT count(*) FILTER (kept AND NOT same_person), "
            "count(*) FILTER (same_person AND customer_id <> right_customer_id) FROM judged",
        )
        split_people, mixed_customers = _fetch_one(
            con,
            "SELECT (SELECT count(*) FROM (SELECT person_id FROM joined GROUP BY ALL "
            "                             HAVING count(DISTINCT customer_id) > 1)), "
            "       (SELECT count(*) FROM (SELECT customer_id FROM joined GROUP BY ALL "
            "                             HAVING count(DISTINCT person_id) > 1))",
        )
        worst_false = _rows(
            con,
            f"SELECT {_REVIEW_COLUMNS} FROM judged WHERE kept AND NOT same_person "
            "ORDER BY match_weight DESC, left_source, left_source_record_id, "
            "right_source, right_source_record_id LIMIT $limit",
            {"limit": limit},
        )
        # The missed links closest to being made first: what a threshold or guard change would fix.
        worst_missed = _rows(
            con,
            f"SELECT {_REVIEW_COLUMNS}, right_customer_id, "
            "coalesce(guard, CASE WHEN NOT above_threshold THEN 'below threshold' END, "
            "         'joined elsewhere') AS why_apart "
            "FROM judged WHERE same_person AND customer_id <> right_customer_id "
            "ORDER BY match_weight DESC, left_source, left_source_record_id, "
            "right_source, right_source_record_id LIMIT $limit",
            {"limit": limit},
        )
    finally:
        con.close()
    return Evaluation(
        quality=quality,
        threshold=threshold,
        curve=curve,
        false_merge_links=int(false_merges),
        missed_links=int(missed),
        missed_pairs_unscored=quality.true_pairs - quality.correct_pairs - int(missed),
        split_people=int(split_people),
        mixed_customers=int(mixed_customers),
        worst_false_merges=worst_false,
        worst_missed_links=worst_missed,
        warnings=warnings,
    )


# How a golden field and the truth are compared: in the form a record keeps for the golden
# record (names, email, phone, postcode, state, country, dob), or, for a field kept as written
# (street, city), in the form records are matched by ('12 Main Street' is '12 main st').
_GOLDEN_FORMS = {
    "first_name": "cx_name_clean({})",
    "last_name": "cx_name_clean({})",
    "email": "cx_email_clean({})",
    "phone": "cx_phone_e164({}, NULL)",
    "street": "cx_street_std({})",
    "city": "cx_city_std({})",
    "postcode": "cx_postcode_std({})",
    "state": "cx_state_std({})",
    "country": "cx_country_std({})",
    "dob": "TRY_CAST({} AS DATE)",
}


@dataclass(frozen=True)
class GoldenAccuracy:
    """How many golden values are the true person's: per field, the share of the customers
    whose true value is known that have it; `overall`, the share of all such values."""

    customers: int
    fields: dict[str, float]
    overall: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def golden_accuracy(out_dir: Path, truth_path: Path, people: pl.DataFrame) -> GoldenAccuracy:
    """Score ``out_dir/profiles.parquet``'s golden fields against what each customer's person
    truly is: `people` has a `person_id` (the truth file's) and any of the golden fields,
    as text (a phone in E.164) or a date for dob, with `<field>_alt` for another spelling
    that counts as right too (:func:`cxunify.sample.true_people` gives the sample's).

    A customer is the person holding most of its records (ties: the first person id). Both
    sides are standardised as a run standardises the field, so 'ROBERT ' is 'Robert'; a
    golden NULL is wrong, a true NULL is not scored.
    """
    profiles = out_dir / "profiles.parquet"
    if not profiles.is_file():
        raise OutputError(f"{out_dir}: no profiles.parquet; run cxunify unify first")
    fields = [f for f in _GOLDEN_FORMS if f in people.columns]
    if "person_id" not in people.columns or not fields:
        raise InputError(
            f"people: needs a person_id and golden fields ({', '.join(_GOLDEN_FORMS)}); "
            f"it has {', '.join(people.columns)}"
        )
    con = _connect(out_dir, truth_path)
    try:
        install_macros(con)
        con.register("people", people.to_arrow())
        con.execute(
            """
            CREATE TABLE persons AS
            SELECT customer_id, arg_min(person_id, (-n, person_id)) AS person_id
            FROM (SELECT customer_id, person_id, count(*) AS n FROM joined GROUP BY ALL)
            GROUP BY customer_id
            """
        )
        scores = []
        for field in fields:
            form = _GOLDEN_FORMS[field]
            golden = form.format(f"g.{ident(field)}")
            truths = [
                form.format(f"t.{ident(name)}")
                for name in (field, f"{field}_alt")
                if name in people.columns
            ]
            right = " OR ".join(f"{golden} = {truth}" for truth in truths)
            scores.append(
                f"count(*) FILTER (WHERE {truths[0]} IS NOT NULL) AS {ident(field + '_known')}, "
                f"count(*) FILTER (WHERE coalesce({right}, false)) AS {ident(field + '_right')}"
            )
        row = con.execute(
            f"""
            SELECT count(*), {", ".join(scores)}
            FROM {parquet("$profiles")} g
            JOIN persons USING (customer_id)
            JOIN people t USING (person_id)
            """,
            {"profiles": str(profiles)},
        ).fetchone()
        assert row is not None  # an aggregate without GROUP BY always returns a row
    finally:
        con.close()
    known, correct = row[1::2], row[2::2]
    return GoldenAccuracy(
        customers=int(row[0]),
        fields={f: c / k if k else 0.0 for f, k, c in zip(fields, known, correct, strict=True)},
        overall=sum(correct) / sum(known) if sum(known) else 0.0,
    )


_REVIEW_COLUMNS = (
    "left_source, left_source_record_id, left_person_id, right_source, right_source_record_id, "
    "right_person_id, customer_id, blocking_rule, forced, match_weight, match_probability, "
    "kept, guard"
)


def _threshold(out_dir: Path) -> float | None:
    """The run's threshold; a run.json damaged or edited by hand (a threshold of text) is an
    error naming the key, as in explain and report; it was an internal error."""
    if not (out_dir / MANIFEST).is_file():
        return None
    threshold = read_manifest(out_dir).get("matching", {}).get("threshold")
    return None if threshold is None else float(threshold)  # None: folders from before


def _connect(out_dir: Path, truth_path: Path) -> duckdb.DuckDBPyConnection:
    """A connection holding ``truth`` and ``joined`` (customer and person of each record)."""
    identity = out_dir / "identity_map.parquet"
    if not identity.is_file():
        raise OutputError(f"{out_dir}: no identity_map.parquet; run cxunify unify first")
    if not truth_path.is_file():
        raise InputError(f"{truth_path}: truth file not found")
    if truth_path.suffix.lower() in (".json", ".ndjson", ".jsonl"):
        # Read as CSV, its first line made a column and DuckDB's complaint was about that.
        raise InputError(
            f"{truth_path}: a truth file is CSV or Parquet (columns source, source_record_id, "
            "person_id), not JSON"
        )
    con = duckdb.connect()
    try:
        _read_truth(con, truth_path)
        _check_truth(con, truth_path)
        _find_records(con, identity)
        _check_one_person(con, truth_path)
        con.execute(
            "CREATE TABLE joined AS SELECT customer_id, person_id FROM truth "
            "WHERE customer_id IS NOT NULL"
        )
        if not con.execute("SELECT count(*) FROM joined").fetchone()[0]:  # type: ignore[index]
            raise InputError(
                f"{truth_path}: none of its records is in {identity} (do its source names "
                "and source_record_ids match the output's?)"
            )
    except BaseException:
        con.close()
        raise
    return con


TRUTH_COLUMNS = ("source", "source_record_id", "person_id")


def _read_truth(con: duckdb.DuckDBPyConnection, truth_path: Path) -> None:
    """Table ``truth`` from the file, or a message that says what is wrong with it: empty,
    not the columns, an encoding DuckDB cannot read."""
    with truth_path.open("rb") as head:
        start = head.read(2)
    if not start:
        raise InputError(f"{truth_path}: file is empty")
    if truth_path.suffix.lower() == ".parquet":
        _load_truth(con, truth_path, truth_path, "read_parquet")
        return
    # A CSV in any encoding an export may have, as a run reads one (UTF-16 from Excel's
    # "Unicode text", cp1252): Latin-1 stopped with DuckDB's 'CSV Error on Line: 2'.
    with scratch.folder("truth") as work:
        readable, _ = readable_text(truth_path, "auto", work)
        _load_truth(con, truth_path, readable, "read_csv")


def _load_truth(
    con: duckdb.DuckDBPyConnection, truth_path: Path, readable: Path, reader: str
) -> None:
    # Text as written, as a run reads a CSV's ids: typed, '1.50' was the number 1.5.
    options = ["all_varchar = true"] if reader == "read_csv" else []
    source = read_file(reader, "$path", *options)
    params = {"path": str(readable)}
    try:
        types = {
            str(name): str(kind)
            for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}", params).fetchall()
        }
        columns = list(types)
        # Names and values trimmed as a run trims the ids it stores: a hand-made
        # 'crm,<tab>C1' names crm:C1, under a header with the same tab. A whole number in a
        # Parquet DOUBLE is its digits, as in an export.
        named = {clean_id(c).lower(): c for c in columns}
        missing = [c for c in TRUTH_COLUMNS if c not in named]
        if missing:
            raise InputError(
                f"{truth_path}: needs columns {', '.join(TRUTH_COLUMNS)}; it has "
                f"{', '.join(columns)}"
            )
        values = ", ".join(
            f"{clean_id_sql(as_text_sql(ident(named[c]), types[named[c]]))} AS {c}"
            for c in TRUTH_COLUMNS
        )
        con.execute(f"CREATE TABLE truth AS SELECT {values} FROM {source}", params)
    except duckdb.Error as exc:
        kind = "Parquet" if reader == "read_parquet" else "CSV"
        raise InputError(
            f"{truth_path}: cannot be read as {kind} ({str(exc).splitlines()[0]})"
        ) from None
    if not con.execute("SELECT count(*) FROM truth").fetchone()[0]:  # type: ignore[index]
        raise InputError(f"{truth_path}: no rows under the header")


def _check_truth(con: duckdb.DuckDBPyConnection, truth_path: Path) -> None:
    """Every truth row names a record and a person: a blank person id would make up pairs
    that are not in the file."""
    blank = con.execute(
        "SELECT count(*), min(row) FROM (SELECT rowid + 1 AS row, * FROM truth) "
        "WHERE coalesce(trim(source), '') = '' OR coalesce(trim(source_record_id), '') = '' "
        "OR coalesce(trim(person_id), '') = ''"
    ).fetchone()
    if blank and blank[0]:
        raise InputError(
            f"{truth_path}: {blank[0]} "
            + ("row lacks" if blank[0] == 1 else "rows lack")
            + " a source, source_record_id or person_id "
            f"(the first is data row {blank[1]})"
        )


def _not_ascii_sql(alias: str) -> str:
    """SQL: true when the source or id of `alias` holds a character outside ASCII (more bytes
    than characters); an ASCII text is the same in every Unicode form."""
    wider = (f"strlen({alias}.{c}) > length({alias}.{c})" for c in ("source", "source_record_id"))
    return f"({' OR '.join(wider)})"


def _find_records(con: duckdb.DuckDBPyConnection, identity: Path) -> None:
    """Add to ``truth`` the customer of each record (NULL: the output has no such record),
    its id spelt as the output spells it. An id the output holds in another Unicode form
    (macOS writes 'Zoë' decomposed: 'Zoe' and a combining diaeresis) names the record whose
    id is the same text once both are composed (NFC), when one record alone is."""
    con.execute(
        "CREATE OR REPLACE TABLE truth AS SELECT t.*, i.customer_id "
        f"FROM truth t LEFT JOIN {parquet('$path')} i USING (source, source_record_id)",
        {"path": str(identity)},
    )
    spelt = f"t.customer_id IS NULL AND {_not_ascii_sql('t')}"
    if not _fetch_one(con, f"SELECT count(*) FROM truth t WHERE {spelt}")[0]:
        return
    con.execute(
        f"""
        CREATE OR REPLACE TABLE truth AS
        WITH forms AS (
            SELECT DISTINCT nfc_normalize(t.source) AS source,
                   nfc_normalize(t.source_record_id) AS source_record_id
            FROM truth t WHERE {spelt}
        ), held AS (
            SELECT f.source AS nfc_source, f.source_record_id AS nfc_id,
                   any_value(i.source) AS source, any_value(i.source_record_id) AS id,
                   any_value(i.customer_id) AS customer_id
            FROM {parquet("$path")} i
            JOIN forms f ON nfc_normalize(i.source) = f.source
                        AND nfc_normalize(i.source_record_id) = f.source_record_id
            WHERE {_not_ascii_sql("i")}
            GROUP BY ALL HAVING count(*) = 1
        )
        SELECT coalesce(h.source, t.source) AS source,
               coalesce(h.id, t.source_record_id) AS source_record_id,
               t.person_id, coalesce(t.customer_id, h.customer_id) AS customer_id
        FROM truth t
        LEFT JOIN held h ON t.customer_id IS NULL
                        AND h.nfc_source = nfc_normalize(t.source)
                        AND h.nfc_id = nfc_normalize(t.source_record_id)
        """,
        {"path": str(identity)},
    )


def _check_one_person(con: duckdb.DuckDBPyConnection, truth_path: Path) -> None:
    """A record has one person: a record listed twice with two would make up pairs that are
    not in the file. Rows repeating one another count once."""
    twice = con.execute(
        "SELECT count(*), min(source || ':' || source_record_id) FROM (SELECT source, "
        "source_record_id FROM truth GROUP BY ALL HAVING count(DISTINCT person_id) > 1)"
    ).fetchone()
    if twice and twice[0]:
        raise InputError(
            f"{truth_path}: {twice[0]} "
            + ("record is" if twice[0] == 1 else "records are")
            + f" given more than one person_id (e.g. {twice[1]})"
        )
    con.execute("CREATE OR REPLACE TABLE truth AS SELECT DISTINCT * FROM truth")


def _quality(con: duckdb.DuckDBPyConnection, truth_path: Path) -> Quality:
    row = _fetch_one(
        con,
        """
        WITH cells AS (SELECT customer_id, person_id, count(*)::HUGEINT AS n
                       FROM joined GROUP BY ALL),
             clusters AS (SELECT customer_id, sum(n) AS n FROM cells GROUP BY ALL),
             classes AS (SELECT person_id, sum(n) AS n FROM cells GROUP BY ALL)
        SELECT (SELECT sum(n) FROM cells),
               (SELECT count(*) FROM classes),
               (SELECT count(*) FROM clusters),
               (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM classes),
               (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM clusters),
               (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM cells),
               (SELECT sum(c.n * c.n / k.n) FROM cells c JOIN clusters k USING (customer_id)),
               (SELECT sum(c.n * c.n / p.n) FROM cells c JOIN classes p USING (person_id)),
               (SELECT coalesce(max(n), 0) FROM clusters),
               (SELECT count(*) FROM truth),
               (SELECT count(*) FROM truth WHERE customer_id IS NULL)
        """,
    )
    records, persons, customers, true_pairs, predicted, correct, bp, br, largest = row[:9]
    truth_rows, not_found = int(row[9]), int(row[10])
    records = int(records or 0)
    if not true_pairs and not predicted:
        # Every figure would be a perfect 1.0 of nothing: a truth file naming the output's
        # records under another source name, all but one, scored 1.0000 everywhere.
        missing = (
            f" ({not_found:,} of its {truth_rows:,} rows name no record of the output)"
            if not_found
            else ""
        )
        raise InputError(
            f"{truth_path}: no pair to score: of the {records:,} records it shares with the "
            f"output, no two are one person in it or one customer in the output{missing}"
        )
    precision, recall = _ratio(correct, predicted), _ratio(correct, true_pairs)
    b_precision, b_recall = float(bp) / records, float(br) / records
    pairwise_f1 = _pairs_f1(precision, recall)
    assert pairwise_f1 is not None  # some pair is true or predicted
    return Quality(
        records=records,
        truth_rows=truth_rows,
        truth_rows_not_in_output=not_found,
        true_customers=int(persons),
        predicted_customers=int(customers),
        true_pairs=int(true_pairs),
        predicted_pairs=int(predicted),
        correct_pairs=int(correct),
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=pairwise_f1,
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        largest_cluster=int(largest),
    )


def _curve(con: duckdb.DuckDBPyConnection, thresholds: list[float]) -> list[dict[str, Any]]:
    rows = _rows(
        con,
        """
        WITH t AS (SELECT unnest($thresholds::DOUBLE[]) AS threshold),
             matches AS (SELECT count(*) FILTER (same_person) AS n FROM judged)
        SELECT t.threshold, count(j.match_probability) AS pairs,
               count(*) FILTER (j.same_person) AS true_pairs, any_value(m.n) AS all_true_pairs
        FROM t CROSS JOIN matches m
        LEFT JOIN judged j ON j.match_probability >= t.threshold
        GROUP BY t.threshold ORDER BY t.threshold
        """,
        {"thresholds": thresholds},
    )
    curve = []
    for row in rows:
        precision = _ratio(row["true_pairs"], row["pairs"])
        recall = _ratio(row["true_pairs"], row["all_true_pairs"])
        curve.append(
            {
                "threshold": row["threshold"],
                "pairs": int(row["pairs"]),
                "true_pairs": int(row["true_pairs"]),
                "precision": precision,
                "recall": recall,
                "f1": _pairs_f1(precision, recall),
            }
        )
    return curve


def _not_in_output(con: duckdb.DuckDBPyConnection, identity: Path, quality: Quality) -> list[str]:
    """The truth rows the figures leave out, said: a truth file naming a source the output
    has under another name silently lost its rows (924 of 4,598) from the figures."""
    missing = quality.truth_rows_not_in_output
    if not missing:
        return []
    (example,) = _fetch_one(
        con, "SELECT min(source || ':' || source_record_id) FROM truth WHERE customer_id IS NULL"
    )
    named = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT source FROM truth WHERE customer_id IS NULL"
        ).fetchall()
    }
    sources = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT source FROM {parquet('$path')} ORDER BY ALL", {"path": str(identity)}
        ).fetchall()
    ]
    unknown = sorted(named - set(sources))
    if unknown:
        why = no_such_source(unknown, sources)
    else:
        why = "rows rejected on input (see rejects.parquet), or ids spelt otherwise"
    return [
        f"{missing:,} of the truth's {quality.truth_rows:,} rows name no record of the output "
        f"and are not scored (e.g. {example}): {why}"
    ]


def _fetch_one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns a row
    return row


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
