"""Stage 5, score: Fellegi–Sunter match weights for every candidate pair.

Training never moves pairs into Python: the engine counts the distinct comparison patterns
(gamma vectors) of the candidate pairs and of a sample of random pairs, and only those counts
(a few thousand rows) are fitted (`cxunify.model`). Scoring is then a lookup per pair, in SQL.
Common values (a frequent surname, a big city's postcode) earn less than rare ones: the weight of
an exact agreement is adjusted by the value's frequency (term-frequency adjustment).
"""

from __future__ import annotations

import numpy as np

from cxunify.block import NODES, PAIRS
from cxunify.compare import KEY_COMPARISON, ComparisonSpec, gammas_sql
from cxunify.engine import DuckDBEngine
from cxunify.model import Comparison, MatchModel, default_m, fit_em, u_from_pattern_counts
from cxunify.sql import ident, table

GAMMAS = table("gammas")
SCORED = table("scored")
RANDOM_PAIRS = 1_000_000


def build_gammas(
    engine: DuckDBEngine,
    comparisons: tuple[ComparisonSpec, ...],
    blocking: list[list[str]],
    rules: list[list[str]] | None = None,
) -> None:
    """Create ``cx_gammas``: candidate pairs with one level per comparison.

    ``rules_met`` has bit i set when the pair satisfies blocking rule i (training uses it to
    tell which comparisons the pair was selected on); ``forced`` is true when a deterministic
    rule (equal and present on all its keys) declares the pair a match.
    """
    forced = " OR ".join(
        "(" + " AND ".join(f"l.{ident(k)} = r.{ident(k)}" for k in rule) + ")"
        for rule in rules or []
    ) or "false"
    met = " + ".join(
        f"CASE WHEN {' AND '.join(f'l.{ident(k)} = r.{ident(k)}' for k in rule)} "
        f"THEN {1 << i} ELSE 0 END"
        for i, rule in enumerate(blocking)
    ) or "0"
    engine.execute(
        f"CREATE OR REPLACE TABLE {GAMMAS} AS "
        + gammas_sql(f"SELECT * FROM {PAIRS}", NODES, comparisons).replace(
            "SELECT p.left_node, p.right_node,",
            f"SELECT p.left_node, p.right_node, p.rule, coalesce({forced}, false) AS forced, "
            f"({met})::BIGINT AS rules_met,",
        )
    )


def _patterns(
    engine: DuckDBEngine, source_sql: str, comparisons: tuple[ComparisonSpec, ...]
) -> tuple[np.ndarray, np.ndarray]:
    columns = ", ".join(ident("gamma_" + c.name) for c in comparisons)
    rows = engine.rows(
        f"SELECT {columns}, count(*) FROM ({source_sql}) GROUP BY ALL ORDER BY ALL"
    )
    if not rows:
        return np.zeros((0, len(comparisons)), dtype=np.int64), np.zeros(0)
    matrix = np.array(rows, dtype=np.int64)
    return matrix[:, :-1], matrix[:, -1].astype(float)


def random_pairs_sql(engine: DuckDBEngine, n_pairs: int, seed: int) -> str:
    """SQL for a reproducible sample of about `n_pairs` random node pairs."""
    nodes = engine.count(NODES)
    side = max(2, min(nodes, int(np.sqrt(n_pairs * 2)) + 1))
    sample = table("random_nodes")
    engine.execute(
        f"CREATE OR REPLACE TABLE {sample} AS SELECT node FROM {NODES} "
        f"USING SAMPLE reservoir({int(side)} ROWS) REPEATABLE ({int(seed)})"
    )
    return f"SELECT a.node AS left_node, b.node AS right_node FROM {sample} a JOIN {sample} b ON a.node < b.node"


def train(
    engine: DuckDBEngine,
    comparisons: tuple[ComparisonSpec, ...],
    rules: list[list[str]],
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
    random_sql = random_pairs_sql(engine, RANDOM_PAIRS, seed)
    random_patterns, random_counts = _patterns(
        engine, gammas_sql(random_sql, NODES, comparisons), comparisons
    )
    start = [
        Comparison(c.name, list(c.levels), default_m(len(c.levels)), _uniform(len(c.levels)))
        for c in comparisons
    ]
    if random_counts.sum() > 0:
        u_random = u_from_pattern_counts(random_patterns, random_counts, start)
        start = [
            Comparison(c.name, c.levels, c.m, u) for c, u in zip(start, u_random, strict=True)
        ]
    masked = []
    for spec in comparisons:
        # Bits of the rules that select on this comparison; a pair found by no other rule
        # agreed here by construction, so this comparison is masked for it.
        selecting = sum(
            1 << i for i, rule in enumerate(rules)
            if any(KEY_COMPARISON.get(key) == spec.name for key in rule)
        )
        gamma = ident("gamma_" + spec.name)
        masked.append(
            f"CASE WHEN rules_met & ~{selecting}::BIGINT = 0 THEN -1 ELSE {gamma} END AS {gamma}"
            if selecting else gamma
        )
    patterns, counts = _patterns(
        engine, f"SELECT {', '.join(masked)} FROM {GAMMAS}", comparisons
    )
    nodes = engine.count(NODES)
    all_pairs = max(nodes * (nodes - 1) / 2, 2.0)
    if counts.sum() == 0:
        # Nothing to learn from (a handful of records): the starting model, said as such.
        return MatchModel(start, prior=1.0 / all_pairs, iterations=0, converged=False,
                          log_likelihood=float("nan"), history=[],
                          warnings=["no candidate pairs: the model was not fitted"])
    fitted = fit_em(
        patterns, counts, start, prior=0.1, fix_u=True, max_iterations=max_iterations
    )
    expected_matches = fitted.prior * counts.sum()
    prior = min(max(expected_matches / all_pairs, 1e-12), 0.5)
    return MatchModel(
        fitted.comparisons, prior=prior, iterations=fitted.iterations,
        converged=fitted.converged, log_likelihood=fitted.log_likelihood,
        history=fitted.history, warnings=fitted.warnings,
    )


def _uniform(k: int) -> list[float]:
    return [1.0 / k] * k


def term_frequencies(engine: DuckDBEngine, comparisons: tuple[ComparisonSpec, ...]) -> None:
    """Per TF column, each value's share of nodes and the chance two random nodes agree."""
    for spec in comparisons:
        if spec.tf_column is None:
            continue
        column = ident(spec.tf_column)
        engine.execute(
            f"""
            CREATE OR REPLACE TABLE {table("tf_" + spec.name)} AS
            WITH counts AS (
                SELECT {column} AS value, count(*)::DOUBLE AS n FROM {NODES}
                WHERE {column} IS NOT NULL GROUP BY {column}
            ), shares AS (
                SELECT value, n / sum(n) OVER () AS share FROM counts
            )
            SELECT value, share, sum(share * share) OVER () AS agree_chance
            FROM shares
            """
        )


def score_pairs(
    engine: DuckDBEngine,
    model: MatchModel,
    comparisons: tuple[ComparisonSpec, ...],
) -> None:
    """Create ``cx_scored``: every candidate pair with its partial and total match weights."""
    term_frequencies(engine, comparisons)
    by_name = {c.name: c for c in model.comparisons}
    partials = []
    joins = []
    for spec in comparisons:
        weights = by_name[spec.name].partial_weights()
        variable = f"cx_weights_{spec.name}"
        engine.execute(
            f"SET VARIABLE {ident(variable)} = MAP($levels, $weights)",
            {"levels": list(range(len(weights))), "weights": [float(w) for w in weights]},
        )
        gamma = f"g.{ident('gamma_' + spec.name)}"
        partial = f"coalesce(getvariable('{variable}')[{gamma}::INTEGER], 0.0)"
        if spec.tf_column is not None:
            top = len(spec.levels) - 1
            tf = table("tf_" + spec.name)
            alias = f"tf_{spec.name}"
            joins.append(
                f"LEFT JOIN {tf} {alias} ON {gamma} = {top} AND {alias}.value = "
                f"ln.{ident(spec.tf_column)}"
            )
            # Agreeing on a value shared by 1 node in 10 says less than on one shared by 1 in
            # 10,000: scale the exact-level evidence by how common this value is.
            partial += (
                f" + CASE WHEN {gamma} = {top} THEN "
                f"coalesce(log2({alias}.agree_chance / {alias}.share), 0.0) ELSE 0.0 END"
            )
        partials.append(f"{partial} AS {ident('weight_' + spec.name)}")
    total = " + ".join(ident("weight_" + c.name) for c in comparisons)
    engine.execute(
        f"""
        CREATE OR REPLACE TABLE {SCORED} AS
        WITH p AS (
            SELECT g.*, {", ".join(partials)}
            FROM {GAMMAS} g
            JOIN {NODES} ln ON ln.node = g.left_node
            {" ".join(joins)}
        )
        SELECT *, $prior + {total} AS match_weight,
               CASE WHEN forced THEN 1.0
                    ELSE 1.0 / (1.0 + pow(2.0, -($prior + {total}))) END AS match_probability
        FROM p
        """,
        {"prior": model.prior_weight()},
    )
