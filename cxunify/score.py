"""Stage 5, score: Fellegi–Sunter match weights for every candidate pair.

Training never moves pairs into Python: the engine counts the distinct comparison patterns
(gamma vectors) of the candidate pairs and of a sample of random pairs, and only those counts
(a few thousand rows) are fitted (`cxunify.model`). Scoring is then a lookup per pair, in SQL.
Common values (a frequent surname, a big city's postcode) earn less than rare ones: the weight of
an exact agreement is adjusted by the value's frequency (term-frequency adjustment).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cxunify.block import IDENTITY_COLUMNS, NODES, PAIRS, RuleLike, no_identity_sql
from cxunify.compare import KEY_COMPARISON, ComparisonSpec, gammas_sql
from cxunify.engine import DuckDBEngine
from cxunify.errors import InputError
from cxunify.model import Comparison, MatchModel, default_m, fit_em, u_from_pattern_counts
from cxunify.record_ids import clean_id
from cxunify.sql import ident, table
from cxunify.standardize import RECORDS

GAMMAS = table("gammas")
SCORED = table("scored")
RANDOM_PAIRS = 1_000_000


def build_gammas(
    engine: DuckDBEngine,
    comparisons: tuple[ComparisonSpec, ...],
    rules: list[list[str]] | None = None,
) -> None:
    """Create ``cx_gammas``: candidate pairs with one level per comparison.

    ``rules_met`` (from blocking) has bit i set when blocking rule i found the pair (training
    uses it to tell which comparisons the pair was selected on); ``forced`` is true when a
    deterministic rule in `rules` (equal and present on all its keys) declares the pair a
    match.
    """
    forced = (
        " OR ".join(
            "(" + " AND ".join(f"l.{ident(k)} = r.{ident(k)}" for k in rule) + ")"
            for rule in rules or []
        )
        or "false"
    )
    engine.execute(
        f"CREATE OR REPLACE TABLE {GAMMAS} AS "
        + gammas_sql(f"SELECT * FROM {PAIRS}", NODES, comparisons).replace(
            "SELECT p.left_node, p.right_node,",
            "SELECT p.left_node, p.right_node, p.rule, "
            f"coalesce({forced}, false) AS forced, p.rules_met,",
        )
    )


def _patterns(
    engine: DuckDBEngine, source_sql: str, comparisons: tuple[ComparisonSpec, ...]
) -> tuple[np.ndarray, np.ndarray]:
    columns = ", ".join(ident("gamma_" + c.name) for c in comparisons)
    rows = engine.rows(f"SELECT {columns}, count(*) FROM ({source_sql}) GROUP BY ALL ORDER BY ALL")
    if not rows:
        return np.zeros((0, len(comparisons)), dtype=np.int64), np.zeros(0)
    matrix = np.array(rows, dtype=np.int64)
    return matrix[:, :-1], matrix[:, -1].astype(float)


def random_pairs_sql(engine: DuckDBEngine, n_pairs: int, seed: int, nodes: int) -> str:
    """SQL for a reproducible sample of about `n_pairs` random node pairs, of the `nodes`
    nodes holding an identity value (see `matchable_nodes`: one naming nobody, or only a junk
    value, is never compared, so it is no pair's side)."""
    side = max(2, min(nodes, int(np.sqrt(n_pairs * 2)) + 1))
    sample = table("random_nodes")
    # Nodes ranked by a hash of their identity values and the seed. Not of the node number:
    # that is the smallest record key, which follows the exports' row order, so re-sorting an
    # export changed the sample, the model and the customers. Not a reservoir sample either:
    # that is engine-specific, and DuckDB and Spark must fit the same model. The values are
    # the node's, junk blanked (its record's junk value would depend on which record is the
    # smallest); they are unique per node holding one, so the node number never breaks a tie.
    engine.execute(
        f"CREATE OR REPLACE TABLE {sample} AS SELECT n.node FROM {NODES} n "
        f"WHERE NOT {no_identity_sql('n')} "
        f"ORDER BY md5({_identity_text('n')} || $separator || $seed), n.node LIMIT {int(side)}",
        {"seed": str(int(seed)), "separator": _SEPARATOR},
    )
    return (
        f"SELECT a.node AS left_node, b.node AS right_node "
        f"FROM {sample} a JOIN {sample} b ON a.node < b.node"
    )


def matchable_nodes(engine: DuckDBEngine) -> int:
    """The nodes holding an identity value that is no junk: the pairs the prior is a share of
    are theirs, so rows naming nobody, or only a placeholder (each a node of its own), leave
    the model as it was without them."""
    return int(engine.scalar(f"SELECT count(*) FROM {NODES} n WHERE NOT {no_identity_sql('n')}"))


# Between the identity values in a node's text: a control character, which no standardised
# value is expected to hold (were one to, two nodes could share a text and a hash).
_SEPARATOR = "\x1f"


def _identity_text(alias: str) -> str:
    """SQL: the identity values of `alias` as one text, the same on DuckDB and Spark, and
    different for records with different values (a missing value is not an empty one)."""
    return " || $separator || ".join(
        f"coalesce('=' || CAST({alias}.{ident(column)} AS VARCHAR), '-')"
        for column in IDENTITY_COLUMNS
    )


def train(
    engine: DuckDBEngine,
    comparisons: tuple[ComparisonSpec, ...],
    rules: Sequence[RuleLike],
    seed: int = 42,
    max_iterations: int = 100,
) -> MatchModel:
    """Fit the match model: u from random pairs, m and the prior by EM on candidate patterns.

    u is the chance a level occurs between two records of different people, which random
    pairs estimate well. m is learned by EM with u held fixed; for each pair, the comparisons
    its blocking rule selected on are masked, since agreement there was guaranteed. The prior
    EM finds applies to candidate pairs; scoring needs it over all pairs, so it is rescaled by
    the expected number of matching pairs.
    """
    nodes = matchable_nodes(engine)
    random_sql = random_pairs_sql(engine, RANDOM_PAIRS, seed, nodes)
    random_patterns, random_counts = _patterns(
        engine, gammas_sql(random_sql, NODES, comparisons), comparisons
    )
    start = [
        Comparison(c.name, list(c.levels), default_m(len(c.levels)), _uniform(len(c.levels)))
        for c in comparisons
    ]
    unseen = [unseen_pairs(random_counts.sum()) if c.identifier else 0.0 for c in comparisons]
    if random_counts.sum() > 0:
        u_random = u_from_pattern_counts(random_patterns, random_counts, start, unseen_pairs=unseen)
        start = [Comparison(c.name, c.levels, c.m, u) for c, u in zip(start, u_random, strict=True)]
    masked = []
    for spec in comparisons:
        # Bits of the rules that select on this comparison; a pair found by no other rule
        # agreed here by construction, so this comparison is masked for it.
        selecting = sum(
            1 << i
            for i, rule in enumerate(rules)
            if any(KEY_COMPARISON.get(key) == spec.name for key in rule.keys)
        )
        gamma = ident("gamma_" + spec.name)
        masked.append(
            f"CASE WHEN rules_met & ~{selecting}::BIGINT = 0 THEN -1 ELSE {gamma} END AS {gamma}"
            if selecting
            else gamma
        )
    patterns, counts = _patterns(engine, f"SELECT {', '.join(masked)} FROM {GAMMAS}", comparisons)
    all_pairs = max(nodes * (nodes - 1) / 2, 2.0)
    if counts.sum() == 0:
        # Nothing to learn from (a handful of records): the starting model, said as such.
        return MatchModel(
            start,
            prior=1.0 / all_pairs,
            iterations=0,
            converged=False,
            log_likelihood=float("nan"),
            history=[],
            warnings=["no candidate pairs: the model was not fitted"],
        )
    guards: dict[str, Any] = {
        "pairs_at_least": PAIRS_AT_LEAST,
        "m_at_least_u_for": {c.name for c in comparisons if c.agreement_never_against},
        "agreement_at_least_different": True,
    }
    fitted = fit_em(
        patterns, counts, start, prior=0.1, fix_u=True, max_iterations=max_iterations, **guards
    )
    expected_matches = fitted.prior * counts.sum()
    prior = min(max(expected_matches / all_pairs, 1e-12), 0.5)
    if random_counts.sum() > 0:
        # Random pairs are nearly all non-matches, but the few true matches among them decide
        # the u of rare agreeing levels (a handle equal to the email's local part, say), which
        # then swings with the sample drawn. Weighted by each pair's chance of being a
        # non-match under the fitted model (with the prior over all pairs), they are left
        # out; m and the prior are fitted again with that u.
        non_match = 1.0 - replace(fitted, prior=prior).probabilities(random_patterns)
        u_non_match = u_from_pattern_counts(
            random_patterns, random_counts * non_match, start, unseen_pairs=unseen
        )
        start = [
            Comparison(c.name, c.levels, c.m, u)
            for c, u in zip(fitted.comparisons, u_non_match, strict=True)
        ]
        fitted = fit_em(
            patterns,
            counts,
            start,
            prior=fitted.prior,
            fix_u=True,
            max_iterations=max_iterations,
            **guards,
        )
        expected_matches = fitted.prior * counts.sum()
        prior = min(max(expected_matches / all_pairs, 1e-12), 0.5)
    return MatchModel(
        fitted.comparisons,
        prior=prior,
        iterations=fitted.iterations,
        converged=fitted.converged,
        log_likelihood=fitted.log_likelihood,
        history=fitted.history,
        warnings=fitted.warnings,
    )


# u of an identifier comparison (email, phone, national id) is a share of at least this many
# pairs. The random pairs are that many when there are 1,415 nodes or more; a smaller file has
# fewer pairs in all, and the few of them sharing an email are mostly the very matches being
# sought: in a file of three contacts and their two orders, the two pairs sharing an email are
# 2 of its 10 pairs, u = 0.2, and an exact email said less than the prior took away (EM, which
# would tell those matches apart, had nothing to learn from either: blocking found the pairs
# on the email itself). The pairs short of this count are taken to be of people who differ:
# the assumption the floor of u at 1e-6 (one pair in a million) already makes for a level no
# random pair shows, made for a level a few pairs show too. Not for names, dates and places,
# which more people share the more people there are: for them the file's own frequencies are
# the estimate (two John Smiths of a four-row file in two cities are still two people).
U_PAIRS_AT_LEAST = RANDOM_PAIRS


# m of every comparison, and the prior, are shares of at least this many pairs (fit_em's
# pairs_at_least): where EM counts fewer matches among the pairs a comparison is observed on,
# the matches short of it take the levels the default m gives (three in four agree exactly),
# and while they do, an identifier's agreeing levels keep m at least u; fewer candidate pairs
# than this count as matches half the time. In a file of seven contacts the one pair with two
# emails to compare was two namesakes of one city with different ones (a sign-up sharing a
# contact's email was found by that email alone, which training masks): EM put m of every
# agreeing email level at 1e-6, merged the namesakes and left the shared email weighing
# nothing, or against a match where u was above 1e-6. The sample's and Febrl's fits count
# more than 150 matches on every comparison they observe and 5,000 candidate pairs or more:
# their fits are unchanged to the bit.
PAIRS_AT_LEAST = 10


def unseen_pairs(counted: float) -> float:
    """The pairs short of :data:`U_PAIRS_AT_LEAST` in a sample of `counted` random pairs.

    >>> unseen_pairs(10), unseen_pairs(2_000_000)
    (999990.0, 0.0)
    """
    return max(0.0, float(U_PAIRS_AT_LEAST) - float(counted))


def _uniform(k: int) -> list[float]:
    return [1.0 / k] * k


NODE_TF = table("node_tf")


def term_frequencies(engine: DuckDBEngine, comparisons: tuple[ComparisonSpec, ...]) -> None:
    """Create ``cx_node_tf(node, tf_<comparison>, ...)``: per node and TF column, the bits by
    which agreeing exactly on the node's value is adjusted, log2(chance that two random nodes
    agree on any value / this value's share of nodes); 0 when the node has no value.

    Computed once per node rather than per pair: scoring then joins this on the node number
    instead of every pair looking up its values by text.
    """
    specs = [spec for spec in comparisons if spec.tf_column is not None]
    shares, adjustments, joins = [], [], []
    for spec in specs:
        column, alias = ident(spec.tf_column or ""), f"tf_{spec.name}"
        counts, values = ident(f"{alias}_counts"), ident(f"{alias}_shares")
        # The totals are one-row aggregates joined to every value, not sum() OVER (): Spark
        # moves every row of a window without PARTITION BY into one task. They are sums of
        # integers (the chance of agreeing is the sum of squared counts over the squared
        # total), so no engine's order of adding, nor its threads, changes a bit of them.
        shares.append(
            f"""{counts} AS (
                SELECT {column} AS value, count(*) AS n FROM {NODES}
                WHERE {column} IS NOT NULL GROUP BY {column}
            ), {values} AS (
                SELECT c.value, c.n / t.total AS share,
                       t.squares / (t.total * t.total) AS agree_chance
                FROM {counts} c CROSS JOIN (
                    SELECT CAST(sum(n) AS DOUBLE) AS total,
                           CAST(sum(n * n) AS DOUBLE) AS squares
                    FROM {counts}
                ) t
            )"""
        )
        joins.append(f"LEFT JOIN {values} {alias} ON {alias}.value = n.{column}")
        adjustments.append(
            f"coalesce(log2({alias}.agree_chance / {alias}.share), 0.0) AS {ident(alias)}"
        )
    engine.execute(
        f"CREATE OR REPLACE TABLE {NODE_TF} AS "
        f"{'WITH ' + ', '.join(shares) if shares else ''} "
        f"SELECT n.node{''.join(', ' + a for a in adjustments)} FROM {NODES} n {' '.join(joins)}"
    )


# Scored pairs less likely than this to match are not kept: most candidate pairs are clear
# non-matches, and holding their weights would cost more memory than everything else. Links
# and near misses (what explain, evaluate and the report look at) are all above it.
SCORED_FLOOR = 0.01


def score_pairs(
    engine: DuckDBEngine,
    model: MatchModel | LogisticModel,
    comparisons: tuple[ComparisonSpec, ...],
    floor: float = SCORED_FLOOR,
) -> None:
    """Create ``cx_scored``: candidate pairs whose match probability reaches `floor` (and pairs
    a deterministic rule forces), with their partial and total match weights.

    Term-frequency adjustment applies to the Fellegi–Sunter model, whose u it refines.
    """
    use_tf = isinstance(model, MatchModel)
    if isinstance(model, MatchModel):
        term_frequencies(engine, comparisons)
        weights_by_name = {c.name: c.partial_weights() for c in model.comparisons}
    else:
        weights_by_name = model.weights()
    partials = []
    for spec in comparisons:
        weights = weights_by_name[spec.name]
        variable = f"cx_weights_{spec.name}"
        engine.execute(
            f"SET VARIABLE {ident(variable)} = MAP($levels, $weights)",
            {"levels": list(range(len(weights))), "weights": [float(w) for w in weights]},
        )
        gamma = f"g.{ident('gamma_' + spec.name)}"
        partial = f"coalesce(getvariable('{variable}')[{gamma}::INTEGER], 0.0)"
        if use_tf and spec.tf_column is not None:
            # Agreeing on a value shared by 1 node in 10 says less than on one shared by 1 in
            # 10,000: scale the exact-level evidence by how common this value is.
            partial += (
                f" + CASE WHEN {gamma} = {spec.tf_gamma} THEN tf.{ident('tf_' + spec.name)} "
                "ELSE 0.0 END"
            )
        partials.append(f"{partial} AS {ident('weight_' + spec.name)}")
    total = " + ".join(ident("weight_" + c.name) for c in comparisons)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {SCORED} AS
        WITH p AS (
            SELECT g.*, {", ".join(partials)}
            FROM {GAMMAS} g
            {f"JOIN {NODE_TF} tf ON tf.node = g.left_node" if use_tf else ""}
        )
        SELECT *, $prior + {total} AS match_weight,
               CASE WHEN forced THEN 1.0
                    ELSE 1.0 / (1.0 + pow(2.0, -($prior + {total}))) END AS match_probability
        FROM p
        WHERE forced OR $prior + {total} >= $floor_weight
        """,
        {"prior": model.prior_weight(), "floor_weight": math.log2(floor / (1.0 - floor))},
    )
    engine.drop(NODE_TF)


# --- supervised alternative ------------------------------------------------------------------

LOGISTIC_FORMAT = "cxunify-logistic/1"


@dataclass
class LogisticModel:
    """A logistic regression over one-hot comparison levels, trained on labelled pairs.

    Its log-odds are a sum of one number per (comparison, level) plus an intercept, so it is
    scored by the same SQL as the Fellegi–Sunter model: weights in bits are the coefficients
    divided by ln 2. A missing value (level -1) contributes nothing, as in Fellegi–Sunter.
    """

    comparisons: list[dict[str, Any]]  # {"name", "levels", "weights"} (weights in bits)
    intercept_weight: float
    labelled_pairs: int

    def __post_init__(self) -> None:
        # Checked as MatchModel checks its m and u: read from a file, an intercept of NaN made
        # every match weight NaN, a weights list cut short weighed its missing levels 0, and
        # a weight of text was an internal error.
        self.intercept_weight = _finite_weight("intercept_weight", self.intercept_weight)
        pairs = self.labelled_pairs
        if isinstance(pairs, bool) or not isinstance(pairs, int | np.integer) or pairs < 1:
            raise ValueError(f"labelled_pairs must be a whole number >= 1, got {pairs!r}")
        self.labelled_pairs = int(pairs)
        if not isinstance(self.comparisons, list | tuple):
            raise ValueError("model 'comparisons' must be a list")
        if not self.comparisons:
            raise ValueError("a model needs at least one comparison")
        self.comparisons = [_checked_comparison(i, c) for i, c in enumerate(self.comparisons)]
        names = [c["name"] for c in self.comparisons]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"comparison names must be unique; repeated: {', '.join(duplicates)}")

    def weights(self) -> dict[str, list[float]]:
        return {c["name"]: list(c["weights"]) for c in self.comparisons}

    def prior_weight(self) -> float:
        return self.intercept_weight

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": LOGISTIC_FORMAT,
                "comparisons": self.comparisons,
                "intercept_weight": self.intercept_weight,
                "labelled_pairs": self.labelled_pairs,
            },
            indent=2,
            allow_nan=False,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticModel:
        """The model a ``cxunify-logistic/1`` object holds; raises ValueError naming the key
        that is wrong."""
        keys = {"format", "comparisons", "intercept_weight", "labelled_pairs"}
        missing = sorted(keys - data.keys())
        if missing:
            raise ValueError(f"model is missing key(s): {', '.join(missing)}")
        unknown = sorted(data.keys() - keys)
        if unknown:
            raise ValueError(f"model has unknown key(s): {', '.join(unknown)}")
        return cls(data["comparisons"], data["intercept_weight"], data["labelled_pairs"])


def _finite_weight(what: str, value: object) -> float:
    # bool is an int subclass: a JSON true where a weight belongs is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return float(value)


def _checked_comparison(i: int, comparison: object) -> dict[str, Any]:
    """A logistic model's comparison ``{"name", "levels", "weights"}``, one finite weight per
    level, with its weights as floats."""
    where = f"comparisons[{i}]"
    if not isinstance(comparison, dict):
        raise ValueError(f"{where} must be an object")
    if comparison.keys() != {"name", "levels", "weights"}:
        raise ValueError(
            f"{where} must have exactly the keys name, levels, weights; "
            f"got {', '.join(sorted(comparison.keys())) or 'none'}"
        )
    name, levels, weights = comparison["name"], comparison["levels"], comparison["weights"]
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: comparison name must be a non-empty string, got {name!r}")
    where = f"{where}: comparison {name!r}"
    if not isinstance(levels, list | tuple) or not all(isinstance(v, str) for v in levels):
        raise ValueError(f"{where}: levels must be a list of strings")
    if len(levels) < 2:
        raise ValueError(
            f"{where}: needs at least 2 levels (disagree and agree), got {len(levels)}"
        )
    k = len(levels)
    if not isinstance(weights, list | tuple):
        raise ValueError(f"{where}: weights must be a list of {k} numbers, got {weights!r}")
    if len(weights) != k:
        raise ValueError(f"{where}: weights has {len(weights)} values but there are {k} levels")
    return {
        "name": name,
        "levels": list(levels),
        "weights": [_finite_weight(f"{where}: weights[{j}]", w) for j, w in enumerate(weights)],
    }


def load_model(path: Path) -> MatchModel | LogisticModel:
    """Read a model written by ``cxunify train``."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the model: {exc}") from None
    try:
        if isinstance(data, dict) and data.get("format") == LOGISTIC_FORMAT:
            return LogisticModel.from_dict(data)
        return MatchModel.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        reason = str(exc).removeprefix("not a cxunify model: ")
        raise InputError(f"{path}: not a cxunify model: {reason}") from None


def check_model(model: MatchModel | LogisticModel, comparisons: tuple[ComparisonSpec, ...]) -> None:
    """A model must know every comparison the config uses, with the same levels."""
    known = (
        {c.name: list(c.levels) for c in model.comparisons}
        if isinstance(model, MatchModel)
        else {c["name"]: list(c["levels"]) for c in model.comparisons}
    )
    for spec in comparisons:
        if spec.name not in known:
            raise InputError(f"the model has no comparison '{spec.name}'; train it again")
        if known[spec.name] != list(spec.levels):
            raise InputError(
                f"the model's levels for '{spec.name}' differ from this version's; train again"
            )


def read_labels(path: Path) -> list[tuple[str, str, str, str, bool]]:
    """Labelled pairs: left_source, left_source_record_id, right_source,
    right_source_record_id, is_match (1/0, true/false, yes/no); each pair once, in the
    order first labelled, whichever side a row names a record on."""
    import csv

    wanted = [
        "left_source",
        "left_source_record_id",
        "right_source",
        "right_source_record_id",
        "is_match",
    ]
    truthy = {"1", "true", "yes", "y", "match", "t"}
    falsy = {"0", "false", "no", "n", "non-match", "nonmatch", "f"}
    import io

    from cxunify import scratch
    from cxunify.ingest import readable_text

    # Each pair's first line and label, and, of a pair labelled both ways, the lines of its
    # first label and of the first that contradicts it.
    labels: dict[tuple[tuple[str, str], ...], tuple[int, tuple[str, str, str, str, bool]]] = {}
    contradicted: dict[tuple[tuple[str, str], ...], tuple[int, int]] = {}
    # In any encoding an export may have, as a run reads one (UTF-16, cp1252: a reviewer's
    # spreadsheet on Windows); a BOM before the header is no column name's.
    try:
        with scratch.folder("labels") as work:
            readable, _ = readable_text(path, "auto", work)
            text = readable.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in wanted if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)}")
    for line, row in enumerate(reader, start=2):
        flag = (row["is_match"] or "").strip().lower()
        if flag not in truthy | falsy:
            raise InputError(f"{path}:{line}: is_match must be 1/0, true/false or yes/no")
        # Trimmed as a run trims the ids it stores: 'C1\t' names C1.
        left, left_id, right, right_id = (clean_id(row[c] or "") for c in wanted[:4])
        if (left, left_id) == (right, right_id):
            raise InputError(f"{path}:{line}: {left}:{left_id} is labelled as a pair with itself")
        # A pair is a pair whichever record is on the left; a row repeating one counts once.
        pair = tuple(sorted([(left, left_id), (right, right_id)]))
        label = (left, left_id, right, right_id, flag in truthy)
        first_line, first_label = labels.setdefault(pair, (line, label))
        if first_label[4] != label[4]:
            contradicted.setdefault(pair, (first_line, line))
    if not labels:
        raise InputError(f"{path}: no labelled pairs under the header")
    if contradicted:
        # Both a match and not: which the reviewer meant is theirs to say, not the model's.
        pair, (first_line, line) = next(iter(contradicted.items()))
        left, left_id, right, right_id, _ = labels[pair][1]
        many = len(contradicted)
        raise InputError(
            f"{path}: {many} pair{'s are' if many > 1 else ' is'} labelled both a match and a "
            f"non-match{', e.g.' if many > 1 else ':'} {left}:{left_id} and {right}:{right_id} "
            f"(lines {first_line} and {line}); label each pair once"
        )
    return [label for _, label in labels.values()]


def train_supervised(
    engine: DuckDBEngine,
    comparisons: tuple[ComparisonSpec, ...],
    labels: list[tuple[str, str, str, str, bool]],
    labels_path: Path,
) -> LogisticModel:
    """Fit recordlinkage's logistic regression on the labelled pairs' comparison levels."""
    import pandas as pd
    import recordlinkage

    from cxunify.block import RECORD_NODES

    labelled = table("labelled")
    engine.execute(
        f"CREATE OR REPLACE TABLE {labelled} (i INTEGER, ls VARCHAR, lid VARCHAR, "
        "rs VARCHAR, rid VARCHAR, is_match BOOLEAN)"
    )
    engine.con.executemany(
        f"INSERT INTO {labelled} VALUES (?, ?, ?, ?, ?, ?)",
        [(i, *row) for i, row in enumerate(labels)],
    )
    pairs_sql = f"""
        SELECT lb.i, ln.node AS left_node, rn.node AS right_node, lb.is_match
        FROM {labelled} lb
        JOIN {RECORDS} lr ON lr.source = lb.ls AND lr.source_record_id = lb.lid
        JOIN {RECORD_NODES} ln ON ln.record_key = lr.record_key
        JOIN {RECORDS} rr ON rr.source = lb.rs AND rr.source_record_id = lb.rid
        JOIN {RECORD_NODES} rn ON rn.record_key = rr.record_key
    """
    rows = engine.rows(
        gammas_sql(pairs_sql, NODES, comparisons).replace(
            "SELECT p.left_node, p.right_node,", "SELECT p.i, p.is_match,"
        )
    )
    if len(rows) < len(labels):
        raise InputError(
            f"{labels_path}: {len(labels) - len(rows)} labelled pairs name records that are "
            "not in the inputs"
        )
    classes = {row[1] for row in rows}
    if classes != {True, False}:
        raise InputError(f"{labels_path}: needs both matches and non-matches to learn from")
    columns = [f"{spec.name}={level}" for spec in comparisons for level in range(len(spec.levels))]
    features = np.zeros((len(rows), len(columns)))
    offset = 0
    for j, spec in enumerate(comparisons):
        for k, row in enumerate(rows):
            gamma = row[2 + j]
            if gamma is not None and gamma >= 0:
                features[k, offset + gamma] = 1.0
        offset += len(spec.levels)
    index = pd.MultiIndex.from_tuples([(row[0], row[0]) for row in rows])
    frame = pd.DataFrame(features, index=index, columns=columns)
    matches = index[[bool(row[1]) for row in rows]]
    classifier = recordlinkage.LogisticRegressionClassifier()
    classifier.fit(frame, matches)
    coefficients = np.asarray(classifier.coefficients, dtype=float) / np.log(2)
    out, offset = [], 0
    for spec in comparisons:
        k = len(spec.levels)
        out.append(
            {
                "name": spec.name,
                "levels": list(spec.levels),
                "weights": [float(w) for w in coefficients[offset : offset + k]],
            }
        )
        offset += k
    engine.drop(labelled)
    return LogisticModel(out, float(classifier.intercept) / np.log(2), len(rows))
