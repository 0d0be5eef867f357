"""The Splink side of cxunify's peer benchmark (issue 4): the same sample exports, linked with
Splink 5 on DuckDB the way a competent Splink user would, written as an identity map that
`cxunify.evaluate` scores exactly like cxunify's own output.

    python benchmarks/splink_peer.py --data DIR [--work WORKDIR] [--threshold 0.9]

reads DIR/{crm.csv, orders.csv, social.ndjson, tickets.csv}, writes
WORKDIR/identity_map.parquet (source, source_record_id, customer_id for every input record), and
prints JSON with the stage timings, candidate pairs, links, peak RSS of this process and, when
DIR/truth.csv exists, the pairwise and B-cubed scores. `run_splink()` is the same without the
scoring, for benchmarks/run.py.

Settings, and why (also in benchmarks/RESULTS.md, "Splink settings"):

Load and standardise (one SQL statement per source, unioned into one table, `records`). This is
the preparation a Splink user writes by hand; Splink itself does no cleaning.
- CSVs are read with explicit `delim/quote/escape` and `ignore_errors = true`: DuckDB's sniffer
  gives up on orders.csv and tickets.csv because of malformed rows, and the rows it drops are
  the ones cxunify rejects too (identical record sets at 30k, 300k and 1M rows).
- unique_id = '<source>:<record id>', so it is unique across sources (order, contact, ticket ids
  and social handles could otherwise collide); source_dataset = the source name. The model is
  `dedupe_only` over the union: every source can hold several records of one person (many orders
  per customer), so link_only would be wrong, and link_and_dedupe gives the same pairs.
- Names: CRM has first/last columns; orders, social and tickets have one full-name column,
  split after lower-casing, reordering "LAST, FIRST", cutting social bios at '|', removing
  emoji/punctuation, titles (mr, mrs, ms, miss, dr) and generational suffixes (jr, sr, ii, iii):
  first token = first name, last token = last name. Single letters (initials) become NULL, as
  does a placeholder name (guest, customer, test, n/a, ...). No nickname table: Splink ships
  none, and borrowing cxunify's would not measure Splink.
- Email: lower/trim, plus-tag removed, dots removed in gmail.com/googlemail.com local parts;
  NULL unless it looks like an address; placeholder addresses found by profiling (x@x.com,
  test@test.com, no@email.com, ...) become NULL. email_user is the part before '@'.
- Phone: digits only, a leading US country code 1 dropped, last 10 digits kept; NULL when
  shorter, one repeated digit, 1234567890, or a 555-01xx number (reserved fictional numbers,
  which the exports use as placeholders).
- Postcode: first 5 digits of the ZIP (CRM zip, order shipping_zip). City: CRM city, or the part
  of a social bio_location before the comma. Street (CRM only): lower-case, punctuation removed,
  common suffixes abbreviated (street -> st, avenue -> ave, ...). DOB (CRM only): ISO, US
  m/d/Y or 'd Mon Y' parsed to DATE; 1900-01-01 (a placeholder) is NULL.
Not used: social handles (they could only be compared loosely with email usernames, which
no library comparison does), loyalty ids (CRM only), card_last4 (orders only; four digits
shared by many people).
All placeholder values above were found the way a Splink user finds them: top-value counts per
column (what `splink.exploratory.profile_columns` charts).

Comparisons (Splink's comparison library, 5.x API; term-frequency (TF) adjustments on exact
levels, so agreeing on "smith" or "new york" counts for less than on a rare value):
- NameComparison(first_name) and NameComparison(last_name): exact (TF), Jaro-Winkler 0.92,
  0.88, 0.7, else. Two comparisons rather than ForenameSurnameComparison: with the combined one,
  "same surname, different first name" is a single level whose m value also absorbs nicknames
  and missing first names, so households (same surname, same address) scored as matches; with
  separate comparisons a disagreeing first name is evidence against a link. At 30k rows:
  pairwise F1 0.868 both ways, B-cubed F1 0.912 separate vs 0.895 combined.
- email: ExactMatch with TF, not EmailComparison. EmailComparison's fuzzy levels (same
  username at another domain, Jaro-Winkler > 0.88 on the address or the username) are not
  independent of the name: john.smith@gmail.com and john.smith12@yahoo.com are close because
  both people are called John Smith. With them, "same common name + similar email" was the
  largest group of false links at 300k rows (about 20,000 pairs against 1,900 true ones),
  and pairwise precision fell from 0.83 at 30k to 0.67 at 300k. Exact only: 0.85 and 0.84.
- phone: LevenshteinAtThresholds(phone, 1) with TF on the exact level (typos in one digit).
- DateOfBirthComparison(dob, input_is_string=False): exact, 1 edit, within 1 month/1 year/10
  years.
- address: one CustomComparison over street, postcode and city: street + postcode exact, street
  within 3 edits + postcode, postcode (TF), city (TF), else. One comparison because the three
  fields describe one address: as three comparisons (tried first) a shared address was counted
  three times (about +29 bits), and the largest group of false links was household members (same
  surname and address, different email, phone and DOB). Pairwise precision at 30k went from
  0.67 to 0.85 with this change alone.

Blocking rules for prediction (each is an equi-join; Splink removes pairs already produced by an
earlier rule): email; phone; first_name + last_name; last_name + postcode; first_name +
postcode; first_name + dob; last_name + dob; first_name + city; email_user + first_name (same
person, other mail domain). Together they cover every field pair that can link records of
different sources: orders have postcode but no city, social has city but no postcode, CRM alone
has street and DOB. Sizes at 1M rows are in benchmarks/RESULTS.md ("Splink settings"): none
explodes. Of the true pairs at 30k rows, 93% are among the candidates; most of the rest are
social profiles with a first name and a city only, against orders with no city.

Training, as Splink's tutorials do it:
- estimate_probability_two_random_records_match from deterministic rules (email; first+last+dob;
  phone+last_name) with recall 0.7;
- estimate_u_using_random_sampling(max_pairs=1e7, seed=1): seeded so runs are repeatable (no
  measurable cost here); 1e7 is the size Splink's docstring calls "often adequate"; it takes
  about 10 s on this machine whatever the data size;
- estimate_parameters_using_expectation_maximisation twice, blocked on email and on phone
  (after placeholder removal nearly all such pairs are matches, which EM needs), so every
  comparison gets m values from at least one session. Blocking EM on first+last name instead
  lets different people with common names into the m values (F1 0.868 vs 0.876 at 30k).

Prediction and clustering: predict(threshold_match_probability=t) and
cluster_pairwise_predictions_at_threshold(t) with t = 0.9, the same threshold cxunify's sample
config uses (not tuned on the truth). The blocked pairs are computed first with
`inference.compute_blocked_pairs_for_predict()` (cached and reused by predict, so no extra
work) to report the number of candidate pairs.

DuckDB settings: Splink's DuckDBAPI on an in-memory connection with DuckDB's default memory
limit (80% of RAM) and threads (all cores), as Splink uses it out of the box. For data larger
than memory, `--memory-limit` and `--predict-chunks` exist; no figure in RESULTS.md uses them.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Sequence
from itertools import product
from pathlib import Path
from typing import Any

THRESHOLD = 0.9

CSV_OPTIONS = (
    "all_varchar = true, header = true, delim = ',', quote = '\"', escape = '\"', "
    "ignore_errors = true"
)

JUNK_EMAILS = (
    "x@x.com",
    "test@test.com",
    "no@email.com",
    "na@na.com",
    "none@none.com",
    "noemail@noemail.com",
    "email@email.com",
    "test@example.com",
)
JUNK_NAMES = ("guest", "customer", "test", "user", "n/a", "na", "none", "unknown")
TITLES = ("mr", "mrs", "ms", "miss", "dr", "prof", "jr", "sr", "ii", "iii", "iv")

STREET_SUFFIXES = {
    "street": "st",
    "avenue": "ave",
    "road": "rd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "boulevard": "blvd",
    "place": "pl",
    "square": "sq",
    "terrace": "ter",
    "circle": "cir",
    "parkway": "pkwy",
    "highway": "hwy",
    "apartment": "apt",
    "suite": "ste",
}


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _name_tokens(expr: str) -> str:
    """SQL: a full-name column -> list of cleaned lower-case name tokens."""
    lowered = f"lower(trim({expr}))"
    # "LAST, FIRST" -> "first last"; cut social bios at '|'.
    reordered = (
        f"CASE WHEN {lowered} LIKE '%,%' THEN split_part({lowered}, ',', 2) || ' ' || "
        f"split_part({lowered}, ',', 1) ELSE split_part({lowered}, '|', 1) END"
    )
    letters = f"regexp_replace({reordered}, '[^\\p{{L}}'' -]', ' ', 'g')"
    return (
        f"list_filter(string_split(trim(regexp_replace({letters}, '\\s+', ' ', 'g')), ' '), "
        f"lambda t: t <> '' AND t NOT IN ({_sql_list(TITLES)}))"
    )


def _clean_name(expr: str) -> str:
    """SQL: one name part -> lower-case letters, NULL for initials and placeholders."""
    cleaned = f"trim(regexp_replace(lower({expr}), '[^\\p{{L}}'' -]', '', 'g'))"
    return (
        f"CASE WHEN length({cleaned}) < 2 OR {cleaned} IN ({_sql_list(JUNK_NAMES)}) "
        f"THEN NULL ELSE {cleaned} END"
    )


def _email(expr: str) -> str:
    e = f"lower(trim({expr}))"
    local = f"regexp_replace(split_part({e}, '@', 1), '\\+.*$', '')"
    domain = f"replace(split_part({e}, '@', 2), 'googlemail.com', 'gmail.com')"
    local = f"CASE WHEN {domain} = 'gmail.com' THEN replace({local}, '.', '') ELSE {local} END"
    return (
        f"CASE WHEN NOT regexp_full_match(coalesce({e}, ''), '[^@\\s]+@[^@\\s]+\\.[a-z]{{2,}}') "
        f"OR {e} IN ({_sql_list(JUNK_EMAILS)}) THEN NULL ELSE {local} || '@' || {domain} END"
    )


def _phone(expr: str) -> str:
    d = f"regexp_replace(coalesce({expr}, ''), '[^0-9]', '', 'g')"
    d = f"CASE WHEN length({d}) = 11 AND {d} LIKE '1%' THEN substr({d}, 2) ELSE {d} END"
    p = f"right({d}, 10)"
    return (
        f"CASE WHEN length({d}) < 10 OR replace({p}, left({p}, 1), '') = '' "
        f"OR {p} = '1234567890' OR substr({p}, 4, 5) = '55501' THEN NULL ELSE {p} END"
    )


def _postcode(expr: str) -> str:
    z = f"left(regexp_replace(coalesce({expr}, ''), '[^0-9]', '', 'g'), 5)"
    return f"CASE WHEN length({z}) = 5 AND {z} <> '00000' THEN {z} END"


def _street(expr: str) -> str:
    s = f"trim(regexp_replace(lower({expr}), '[^a-z0-9 ]', '', 'g'))"
    for word, abbr in STREET_SUFFIXES.items():
        s = f"regexp_replace({s}, '\\b{word}\\b', '{abbr}', 'g')"
    return f"nullif(regexp_replace({s}, '\\s+', ' ', 'g'), '')"


def _city(expr: str) -> str:
    return f"nullif(trim(lower(split_part({expr}, ',', 1))), '')"


def _dob(expr: str) -> str:
    parsed = (
        f"coalesce(try_strptime({expr}, '%Y-%m-%d'), try_strptime({expr}, '%m/%d/%Y'), "
        f"try_strptime({expr}, '%d %b %Y'))::DATE"
    )
    return f"CASE WHEN {parsed} = DATE '1900-01-01' THEN NULL ELSE {parsed} END"


def standardise_sql(data_dir: Path) -> str:
    """The SQL that builds the `records` table from the four exports."""

    def q(name: str) -> str:
        return "'" + str(data_dir / name).replace("'", "''") + "'"

    def full_name_source(source: str, id_col: str, name_col: str, rest: str, reader: str) -> str:
        return f"""
        SELECT '{source}' AS source_dataset, {id_col}::VARCHAR AS source_record_id,
               {_name_tokens(name_col)} AS toks, {rest}
        FROM {reader}"""

    orders = full_name_source(
        "orders",
        "order_id",
        "billing_name",
        f"{_email('customer_email')} AS email, {_phone('phone')} AS phone, "
        f"{_postcode('shipping_zip')} AS postcode, NULL AS city, NULL AS street, "
        "NULL::DATE AS dob",
        f"read_csv({q('orders.csv')}, {CSV_OPTIONS})",
    )
    social = full_name_source(
        "social",
        "handle",
        "display_name",
        f"{_email('email')} AS email, NULL AS phone, NULL AS postcode, "
        f"{_city('bio_location')} AS city, NULL AS street, NULL::DATE AS dob",
        f"read_json({q('social.ndjson')}, format = 'newline_delimited', "
        "columns = {handle: 'VARCHAR', display_name: 'VARCHAR', email: 'VARCHAR', "
        "bio_location: 'VARCHAR'}, ignore_errors = true)",
    )
    tickets = full_name_source(
        "tickets",
        "ticket_id",
        "requester_name",
        f"{_email('requester_email')} AS email, {_phone('phone')} AS phone, "
        "NULL AS postcode, NULL AS city, NULL AS street, NULL::DATE AS dob",
        f"read_csv({q('tickets.csv')}, {CSV_OPTIONS})",
    )
    split = " UNION ALL ".join([orders, social, tickets])
    return f"""
    CREATE OR REPLACE TABLE records AS
    WITH split AS ({split}),
    named AS (
        SELECT source_dataset, source_record_id,
               {_clean_name("toks[1]")} AS first_name,
               CASE WHEN len(toks) > 1 THEN {_clean_name("toks[-1]")} END AS last_name,
               email, phone, postcode, city, street, dob
        FROM split
        UNION ALL
        SELECT 'crm', contact_id, {_clean_name("first_name")}, {_clean_name("last_name")},
               {_email("email")}, {_phone("phone")}, {_postcode("zip")}, {_city("city")},
               {_street("street")}, {_dob("date_of_birth")}
        FROM read_csv({q("crm.csv")}, {CSV_OPTIONS})
    )
    SELECT source_dataset || ':' || source_record_id AS unique_id, source_dataset,
           source_record_id, first_name, last_name, email,
           split_part(email, '@', 1) AS email_user, phone, postcode, city, street, dob
    FROM named
    WHERE source_record_id IS NOT NULL
    """


def settings() -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.ExactMatch("email").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("phone", 1).configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=False),
            address_comparison(),
        ],
        blocking_rules_to_generate_predictions=prediction_rules(),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def address_comparison() -> Any:
    """Street, postcode and city as one comparison: they describe one address, so as three
    comparisons their agreements would be counted three times (Splink's guidance for
    correlated fields)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.And(cll.NullLevel("postcode"), cll.NullLevel("city")),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("postcode")),
            cll.And(cll.LevenshteinLevel("street", 3), cll.ExactMatchLevel("postcode")),
            cll.ExactMatchLevel("postcode", term_frequency_adjustments=True),
            cll.ExactMatchLevel("city", term_frequency_adjustments=True),
            cll.ElseLevel(),
        ],
        comparison_description="street + postcode, street within 3 edits + postcode, "
        "postcode, city, else",
    )


def prediction_rules() -> list[Any]:
    from splink import block_on

    return [
        block_on("email"),
        block_on("phone"),
        block_on("first_name", "last_name"),
        block_on("last_name", "postcode"),
        block_on("first_name", "postcode"),
        block_on("first_name", "dob"),
        block_on("last_name", "dob"),
        block_on("first_name", "city"),
        block_on("email_user", "first_name"),
    ]


SETTINGS_SUMMARY = (
    "Splink {version}, DuckDB backend, dedupe_only over the union of the 4 sources; "
    "comparisons: Name(first), Name(last), email exact, phone Levenshtein<=1, DOB, address "
    "(street+postcode / postcode / city), TF on exact levels; blocking: email | phone | "
    "first+last | last+postcode | first+postcode | first+dob | last+dob | first+city | "
    "email_user+first; training: prior from deterministic rules (recall 0.7), u by random "
    "sampling (1e7 pairs, seed 1), EM blocked on email and on phone; predict + connected "
    "components at {threshold}"
)


def run_splink(
    data_dir: Path,
    work_dir: Path,
    threshold: float = THRESHOLD,
    quiet: bool = True,
    sweep: Sequence[float] = (),
    memory_limit: str | None = None,
    predict_chunks: int = 1,
) -> dict[str, Any]:
    """Link the exports in `data_dir` with Splink; write `work_dir/identity_map.parquet`.

    Returns stage seconds (load_and_standardise, train, predict, cluster, write), total
    seconds, candidate pairs (blocked pairs that predict scores), links (scored pairs at or
    above `threshold`), records, customers (clusters), the identity map path and this
    process's peak RSS so far (only meaningful when the process did nothing else: run
    `python benchmarks/splink_peer.py` as a child for a clean figure). `sweep`: after the timed
    run, also cluster the same predictions at these thresholds into
    work_dir/threshold-<t>/identity_map.parquet (untimed). `memory_limit` (e.g. "8GB"): cap
    DuckDB's memory and spill to work_dir/duckdb-tmp; None (the default, used for every figure
    in RESULTS.md) keeps DuckDB's own default of 80% of RAM. `predict_chunks` n > 1: block and
    score in n x n chunks (Splink's predict_chunk) to bound memory; same pairs, same result.
    """
    import splink
    from splink import DuckDBAPI, Linker, block_on

    data_dir = Path(data_dir).resolve()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    t_all = time.perf_counter()

    t = time.perf_counter()
    db_api = DuckDBAPI()
    con = db_api.duckdb_con
    if memory_limit:
        con.execute("SET memory_limit = $m", {"m": memory_limit}).fetchall()
        tmp = str(work_dir.resolve() / "duckdb-tmp")
        con.execute("SET temp_directory = $t", {"t": tmp}).fetchall()
    con.execute(standardise_sql(data_dir))
    records = con.execute("SELECT count(*) FROM records").fetchall()[0][0]
    stages["load_and_standardise"] = time.perf_counter() - t

    t = time.perf_counter()
    df = db_api.register("records")
    linker = Linker(df, settings(), log_level=logging.WARNING if quiet else logging.INFO)
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("email"),
            block_on("first_name", "last_name", "dob"),
            block_on("phone", "last_name"),
        ],
        recall=0.7,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    stages["train"] = time.perf_counter() - t

    t = time.perf_counter()
    if predict_chunks <= 1:
        blocked = linker.inference.compute_blocked_pairs_for_predict()
        candidate_pairs = _count(con, blocked.physical_name)
        predictions = linker.inference.predict(
            threshold_match_probability=threshold, warning_mode="never"
        )
    else:
        # Splink's chunked prediction, one (left, right) chunk pair at a time; each chunk's
        # blocked pairs are dropped once scored so they never all sit in memory together.
        n = predict_chunks
        candidate_pairs = 0
        parts = []
        for i, j in product(range(1, n + 1), repeat=2):
            blocked = linker.inference.compute_blocked_pairs_for_predict_chunk((i, n), (j, n))
            candidate_pairs += _count(con, blocked.physical_name)
            parts.append(
                linker.inference.predict_chunk(
                    (i, n), (j, n), threshold_match_probability=threshold, warning_mode="never"
                )
            )
            blocked.drop_table_from_database_and_remove_from_cache()
        union = " UNION ALL ".join(f"SELECT * FROM {part.physical_name}" for part in parts)
        con.execute(f"CREATE TABLE splink_predictions AS {union}").fetchall()
        for part in parts:
            part.drop_table_from_database_and_remove_from_cache()
        predictions = db_api.register("splink_predictions")
    links = _count(con, predictions.physical_name)
    stages["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    )
    stages["cluster"] = time.perf_counter() - t

    t = time.perf_counter()
    identity = work_dir / "identity_map.parquet"
    n_clusters, mapped = _write_identity_map(con, clusters.physical_name, identity)
    stages["write"] = time.perf_counter() - t

    seconds = time.perf_counter() - t_all
    peak = peak_rss_bytes()
    result: dict[str, Any] = {
        "tool": "splink",
        "version": splink.__version__,
        "records": int(records),
        "mapped_records": mapped,
        "stages_seconds": {k: round(v, 3) for k, v in stages.items()},
        "seconds": round(seconds, 3),
        "candidate_pairs": candidate_pairs,
        "links": links,
        "customers": n_clusters,
        "probability_two_random_records_match": (
            linker._settings_obj._probability_two_random_records_match
        ),
        "threshold": threshold,
        "clusters": str(identity),
        "identity_map": str(identity),
        "peak_rss_bytes": peak,
        "settings": SETTINGS_SUMMARY.format(version=splink.__version__, threshold=threshold),
    }

    # Untimed: the same model's clusters at other thresholds (not part of the benchmark).
    if sweep:
        low = linker.inference.predict(threshold_match_probability=min(sweep), warning_mode="never")
        result["sweep"] = {}
        for tt in sorted(sweep):
            c = linker.clustering.cluster_pairwise_predictions_at_threshold(
                low, threshold_match_probability=tt
            )
            folder = work_dir / f"threshold-{tt:g}"
            folder.mkdir(exist_ok=True)
            _write_identity_map(con, c.physical_name, folder / "identity_map.parquet")
            result["sweep"][f"{tt:g}"] = str(folder)
            c.drop_table_from_database_and_remove_from_cache()
    con.close()
    return result


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _write_identity_map(con: Any, clusters_table: str, path: Path) -> tuple[int, int]:
    """identity_map.parquet in cxunify's shape (source, source_record_id, customer_id)."""
    con.execute(
        f"""
        COPY (
            SELECT r.source_dataset AS source, r.source_record_id,
                   c.cluster_id::VARCHAR AS customer_id
            FROM records r JOIN {clusters_table} c USING (unique_id)
            ORDER BY source, source_record_id
        ) TO '{str(path).replace("'", "''")}' (FORMAT parquet)
        """
    )
    n_clusters, mapped = con.execute(
        f"SELECT count(DISTINCT cluster_id), count(*) FROM {clusters_table}"
    ).fetchall()[0]
    return int(n_clusters), int(mapped)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Link cxunify sample exports with Splink (the issue-4 peer); print JSON."
    )
    parser.add_argument("--data", type=Path, required=True, help="folder of sample exports")
    parser.add_argument(
        "--work", type=Path, help="output folder (default: DATA/../splink-<name of DATA>)"
    )
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--verbose", action="store_true", help="Splink's INFO logging")
    parser.add_argument("--no-score", action="store_true", help="skip scoring against truth")
    parser.add_argument(
        "--memory-limit", help="DuckDB memory_limit, e.g. 8GB (default: DuckDB's, 80%% of RAM)"
    )
    parser.add_argument(
        "--predict-chunks",
        type=int,
        default=1,
        help="block and score in N x N chunks to bound memory (default 1: one pass)",
    )
    parser.add_argument(
        "--sweep",
        type=float,
        nargs="+",
        help="after the timed run, also cluster at these thresholds and score them (untimed)",
    )
    args = parser.parse_args(argv)
    work = args.work or args.data.resolve().parent / f"splink-{args.data.resolve().name}"
    result = run_splink(
        args.data,
        work,
        args.threshold,
        quiet=not args.verbose,
        sweep=args.sweep or (),
        memory_limit=args.memory_limit,
        predict_chunks=args.predict_chunks,
    )
    truth = args.data / "truth.csv"
    if truth.is_file() and not args.no_score:
        from cxunify.evaluate import evaluate

        result["quality"] = evaluate(work, truth).as_dict()
        for t, folder in result.get("sweep", {}).items():
            result["sweep"][t] = {"folder": folder, **evaluate(Path(folder), truth).as_dict()}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
