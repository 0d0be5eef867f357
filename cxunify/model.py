"""The Fellegi–Sunter match model, fitted by EM on the counts of distinct comparison patterns.

Candidate pairs live in DuckDB and can number in the billions, but each pair is described only by
its vector of comparison levels ("gammas"), and there are few distinct vectors: a handful of
fields with a handful of levels each. The engine groups pairs by that vector and hands us the
distinct patterns with their counts, so EM here runs over a few thousand weighted rows and its cost
does not depend on the number of pairs. Everything below is vectorised over patterns and only
loops over fields and levels.

Conventions:

* gamma ``0`` is "disagree", ``1..k-1`` increasingly strong agreement, ``-1`` a value missing on
  either side. Missing is neutral: it contributes weight 0 and is left out of the likelihood
  (marginalising an unobserved field out of a conditionally independent model drops its factor).
* Weights are log2 Bayes factors, so they add up and can be computed in SQL from
  :meth:`MatchModel.weight_table` plus :meth:`MatchModel.prior_weight`.
* Every ``m`` and ``u`` probability is strictly positive, so no level can carry an infinite weight
  and one unusual field can never veto or force a link on its own.

Label switching: a two-class mixture has the same likelihood with the classes swapped, so EM can
end with the "match" class being the one that *disagrees* more. :func:`fit_em` checks the
orientation after fitting (the sum over comparisons of ``m`` at the top level must not be below the
sum of ``u`` at the top level). When every parameter was free the swapped fit is exactly as good
as the relabelled one, so it is relabelled and a warning recorded; when some parameters were held
fixed relabelling would break them, so the result is returned with ``converged=False`` and a
warning. A swapped model is never returned as if it were fine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "cxunify-model/1"

# m and u are written by hand in configs; allow for decimal rounding in those, nothing more.
_SUM_TOLERANCE = 1e-6


def _is_number(value: object) -> bool:
    # bool is an int subclass; a JSON true where a probability belongs is a mistake, not 1.0.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_distribution(name: str, what: str, values: Sequence[Any], k: int) -> list[float]:
    if not isinstance(values, list | tuple | np.ndarray):
        raise ValueError(f"comparison {name!r}: {what} must be a list of {k} probabilities")
    if len(values) != k:
        raise ValueError(
            f"comparison {name!r}: {what} has {len(values)} values but there are {k} levels"
        )
    out: list[float] = []
    for i, v in enumerate(values):
        if isinstance(v, np.generic):
            v = v.item()
        if not _is_number(v) or not math.isfinite(v):
            raise ValueError(f"comparison {name!r}: {what}[{i}] is not a finite number: {v!r}")
        if not 0.0 < v <= 1.0:
            raise ValueError(
                f"comparison {name!r}: {what}[{i}] = {v!r} must be in (0, 1]; "
                "a zero probability would give that level an infinite weight"
            )
        out.append(float(v))
    total = math.fsum(out)
    if abs(total - 1.0) > _SUM_TOLERANCE:
        raise ValueError(f"comparison {name!r}: {what} sums to {total!r}, not 1")
    return out


@dataclass
class Comparison:
    """One compared field: level labels and the per-level match (m) and non-match (u) rates.

    ``levels[g]`` labels gamma value ``g``; ``m[g] = P(level g | match)`` and
    ``u[g] = P(level g | non-match)``, each over the pairs where the field is present.
    """

    name: str
    levels: list[str]
    m: list[float]
    u: list[float]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"comparison name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.levels, list | tuple) or not all(
            isinstance(level, str) for level in self.levels
        ):
            raise ValueError(f"comparison {self.name!r}: levels must be a list of strings")
        if len(self.levels) < 2:
            raise ValueError(
                f"comparison {self.name!r}: needs at least 2 levels (disagree and agree), "
                f"got {len(self.levels)}"
            )
        self.levels = list(self.levels)
        k = len(self.levels)
        self.m = _check_distribution(self.name, "m", self.m, k)
        self.u = _check_distribution(self.name, "u", self.u, k)

    def partial_weights(self) -> list[float]:
        """log2(m/u) per level: the evidence one level adds to the match weight."""
        return [math.log2(m / u) for m, u in zip(self.m, self.u, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "levels": list(self.levels),
            "m": list(self.m),
            "u": list(self.u),
        }


def probability_from_weight(weights: np.ndarray | float) -> np.ndarray:
    """Match probability 2^w / (1 + 2^w) for log2 Bayes factors ``w``.

    Written as 1 / (1 + 2^-w): for large negative ``w`` the power overflows to inf and the result
    is a clean 0 (with full relative precision before that), and every step is monotone, so the
    probability never decreases as the weight grows.
    """
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp2(-w))


@dataclass
class MatchModel:
    """A fitted (or hand-written) Fellegi–Sunter model.

    ``prior`` is P(match) among the pairs the model was fitted on, i.e. after blocking; it is not
    a property of the population. ``history[0]`` is the log-likelihood at the starting values and
    ``history[i]`` after EM iteration ``i``, so ``log_likelihood == history[-1]``. ``warnings``
    holds anything a report should surface (label switching, non-convergence).
    """

    comparisons: list[Comparison]
    prior: float
    iterations: int = 0
    converged: bool = False
    log_likelihood: float = float("nan")
    history: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.comparisons, list | tuple) or not self.comparisons:
            raise ValueError("a model needs at least one comparison")
        for c in self.comparisons:
            if not isinstance(c, Comparison):
                raise ValueError(f"comparisons must be Comparison objects, got {type(c).__name__}")
        names = [c.name for c in self.comparisons]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"comparison names must be unique; repeated: {', '.join(duplicates)}")
        self.comparisons = list(self.comparisons)
        if isinstance(self.prior, np.generic):
            self.prior = self.prior.item()
        if not _is_number(self.prior) or not 0.0 < self.prior < 1.0:
            raise ValueError(f"prior must be a number strictly between 0 and 1, got {self.prior!r}")
        self.prior = float(self.prior)
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int | np.integer):
            raise ValueError(f"iterations must be an integer, got {self.iterations!r}")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        self.iterations = int(self.iterations)
        if not isinstance(self.converged, bool | np.bool_):
            raise ValueError(f"converged must be true or false, got {self.converged!r}")
        self.converged = bool(self.converged)
        if isinstance(self.log_likelihood, np.generic):
            self.log_likelihood = self.log_likelihood.item()
        if not _is_number(self.log_likelihood):
            raise ValueError(f"log_likelihood must be a number, got {self.log_likelihood!r}")
        self.log_likelihood = float(self.log_likelihood)
        if not isinstance(self.history, list | tuple | np.ndarray):
            raise ValueError("history must be a list of numbers")
        history = [v.item() if isinstance(v, np.generic) else v for v in self.history]
        if not all(_is_number(v) for v in history):
            raise ValueError("history must be a list of numbers")
        self.history = [float(v) for v in history]
        if not isinstance(self.warnings, list | tuple) or not all(
            isinstance(w, str) for w in self.warnings
        ):
            raise ValueError("warnings must be a list of strings")
        self.warnings = list(self.warnings)

    # -- weights -----------------------------------------------------------------------------

    def prior_weight(self) -> float:
        """log2(prior / (1 - prior)): the weight of a pair before any field is compared."""
        return math.log2(self.prior / (1.0 - self.prior))

    def _check_gammas(self, gammas: np.ndarray) -> np.ndarray:
        return _check_patterns(gammas, self.comparisons, "gammas")

    def match_weights(self, gammas: np.ndarray) -> np.ndarray:
        """Match weight per row: prior weight plus each field's partial weight (-1 adds 0).

        ``gammas`` is an integer array of shape (n, n_fields), columns in the order of
        ``comparisons``.
        """
        g = self._check_gammas(gammas)
        total = np.full(g.shape[0], self.prior_weight(), dtype=np.float64)
        for j, comparison in enumerate(self.comparisons):
            # The appended 0.0 sits at index -1, so missing values look up a zero weight.
            table = np.append(np.asarray(comparison.partial_weights(), dtype=np.float64), 0.0)
            total += table[g[:, j]]
        return total

    def probabilities(self, gammas: np.ndarray) -> np.ndarray:
        """P(match | gammas) = 2^w / (1 + 2^w), computed without overflow."""
        return probability_from_weight(self.match_weights(gammas))

    def weight_table(self, include_missing: bool = False) -> list[dict[str, Any]]:
        """One row per comparison level: comparison, level, gamma, m, u, partial_weight.

        Meant to become a lookup table joined on (comparison, gamma) in SQL. Missing values
        (gamma -1) have no row unless ``include_missing`` is set, in which case they get
        ``m = u = None`` and ``partial_weight = 0.0`` so an inner join still works.
        """
        rows: list[dict[str, Any]] = []
        for c in self.comparisons:
            if include_missing:
                rows.append(
                    {
                        "comparison": c.name,
                        "level": "missing",
                        "gamma": -1,
                        "m": None,
                        "u": None,
                        "partial_weight": 0.0,
                    }
                )
            for gamma, (label, m, u, w) in enumerate(
                zip(c.levels, c.m, c.u, c.partial_weights(), strict=True)
            ):
                rows.append(
                    {
                        "comparison": c.name,
                        "level": label,
                        "gamma": gamma,
                        "m": m,
                        "u": u,
                        "partial_weight": w,
                    }
                )
        return rows

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "prior": self.prior,
            "iterations": self.iterations,
            "converged": self.converged,
            # A hand-written model has no likelihood (NaN), which JSON cannot hold: write null.
            "log_likelihood": (self.log_likelihood if math.isfinite(self.log_likelihood) else None),
            "history": list(self.history),
            "warnings": list(self.warnings),
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def to_json(self) -> str:
        """JSON text; floats are written with repr precision so :meth:`from_json` is exact."""
        try:
            return json.dumps(self.to_dict(), indent=2, allow_nan=False)
        except ValueError as exc:
            # Only a non-finite history entry can get here; fit_em never produces one.
            raise ValueError(f"model cannot be written as JSON: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> MatchModel:
        if not isinstance(data, dict):
            raise ValueError(f"model must be a JSON object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt != FORMAT:
            raise ValueError(f"not a cxunify model: 'format' is {fmt!r}, expected {FORMAT!r}")
        required = {"prior", "iterations", "converged", "log_likelihood", "history", "comparisons"}
        missing = sorted(required - data.keys())
        if missing:
            raise ValueError(f"model is missing key(s): {', '.join(missing)}")
        # A new field means a new format version; unknown keys are typos or a newer writer.
        unknown = sorted(data.keys() - required - {"format", "warnings"})
        if unknown:
            raise ValueError(f"model has unknown key(s): {', '.join(unknown)}")
        raw_comparisons = data["comparisons"]
        if not isinstance(raw_comparisons, list):
            raise ValueError("model 'comparisons' must be a list")
        comparisons: list[Comparison] = []
        for i, rc in enumerate(raw_comparisons):
            if not isinstance(rc, dict):
                raise ValueError(f"comparisons[{i}] must be an object")
            keys = {"name", "levels", "m", "u"}
            if rc.keys() != keys:
                raise ValueError(
                    f"comparisons[{i}] must have exactly the keys name, levels, m, u; "
                    f"got {', '.join(sorted(rc.keys())) or 'none'}"
                )
            try:
                comparisons.append(Comparison(rc["name"], rc["levels"], rc["m"], rc["u"]))
            except ValueError as exc:
                raise ValueError(f"comparisons[{i}]: {exc}") from None
        return cls(
            comparisons=comparisons,
            prior=data["prior"],
            iterations=data["iterations"],
            converged=data["converged"],
            log_likelihood=(
                float("nan") if data["log_likelihood"] is None else data["log_likelihood"]
            ),
            history=data["history"],
            warnings=data.get("warnings", []),
        )

    @classmethod
    def from_json(cls, text: str) -> MatchModel:
        """Parse and validate :meth:`to_json` output; raises ValueError saying what is wrong."""
        if not isinstance(text, str | bytes | bytearray):
            raise ValueError(f"model JSON must be text, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"model is not valid JSON: {exc}") from None
        return cls.from_dict(data)


# -- fitting ---------------------------------------------------------------------------------


def default_m(levels: int) -> list[float]:
    """Starting m for a comparison with ``levels`` levels: geometric, ratio 4, rising to the top.

    Gives e.g. [0.2, 0.8] for two levels and puts ~75% on the top level for more; close enough
    to typical match behaviour for EM to start on the right side of the label-switch symmetry.
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"a comparison needs at least 2 levels, got {levels!r}")
    raw = [4.0**i for i in range(levels)]
    total = math.fsum(raw)
    return [r / total for r in raw]


def _floor_normalise(p: np.ndarray, floor: float | np.ndarray) -> np.ndarray:
    """Renormalise ``p`` to sum to 1 with every entry >= its floor (so <= 1 - floor too).

    ``floor`` is one number for every entry or one per entry (their sum at most 1). Entries below
    their floor are pinned to it and the rest rescaled into what is left; rescaling can push
    another entry under, hence the (at most k-round) loop. Entries already inside are left in
    proportion, so the floor does not disturb EM unless it actually binds.
    """
    p = np.asarray(p, dtype=np.float64)
    floors = np.broadcast_to(np.asarray(floor, dtype=np.float64), p.shape)
    pinned = np.zeros(p.shape[0], dtype=bool)
    q = p / p.sum() if p.sum() > 0 else np.full(p.shape[0], 1.0 / p.shape[0])
    for _ in range(p.shape[0]):
        free = ~pinned
        # One floor for all: times the count, as a sum of equal floors may differ in the last bit.
        budget = 1.0 - (floor * pinned.sum() if np.ndim(floor) == 0 else floors[pinned].sum())
        mass = q[free].sum()
        scaled = q * (budget / mass) if mass > 0 else np.full_like(q, budget / free.sum())
        out = np.where(pinned, floors, scaled)
        under = free & (out < floors)
        if not under.any():
            return out
        pinned |= under
    # Reached only when the floors sum to 1 (the last free entry is pinned when the budget left
    # is below its floor), or to just under 1 by rounding: out is then the floors.
    return out


def _check_patterns(
    patterns: np.ndarray, comparisons: Sequence[Comparison], what: str
) -> np.ndarray:
    g = np.asarray(patterns)
    if g.ndim != 2 or g.shape[1] != len(comparisons):
        raise ValueError(
            f"{what} must have shape (n, {len(comparisons)}) — one column per comparison — "
            f"got {g.shape}"
        )
    if g.size and not np.issubdtype(g.dtype, np.integer):
        raise ValueError(f"{what} must be integers (comparison levels), got dtype {g.dtype}")
    g = g.astype(np.int64, copy=False)
    for j, c in enumerate(comparisons):
        if g.shape[0] == 0:
            break
        lo, hi = int(g[:, j].min()), int(g[:, j].max())
        if lo < -1 or hi >= len(c.levels):
            raise ValueError(
                f"{what}: column {j} ({c.name!r}) has values in [{lo}, {hi}] but must be in "
                f"[-1, {len(c.levels) - 1}]"
            )
    return g


def _check_counts(counts: np.ndarray, n: int) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"counts must have shape ({n},) to match the patterns, got {c.shape}")
    if c.size and not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.floating)):
        raise ValueError(f"counts must be numbers, got dtype {c.dtype}")
    c = c.astype(np.float64)
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("counts must be finite and non-negative")
    if not c.sum() > 0:
        raise ValueError("counts sum to zero: there is nothing to fit")
    return c


def u_from_pattern_counts(
    patterns: np.ndarray,
    counts: np.ndarray,
    comparisons: Sequence[Comparison],
    floor: float = 1e-6,
    unseen_pairs: Sequence[float] | None = None,
) -> list[list[float]]:
    """u per comparison as level frequencies among (random, hence almost all non-matching) pairs.

    Missing values are excluded from each comparison's denominator, as in the model. A comparison
    with no observed value at all keeps its current ``u``: there is no evidence to replace it with.
    Frequencies are floored so an unseen level does not get an infinite weight.

    ``unseen_pairs`` (one number per comparison) are pairs of different people that were not
    counted, taken to differ (level 0) on that comparison, and to have its values as often as
    the counted pairs do. One pair in 4 agrees; with 96 pairs unseen, one in 100:

    >>> x = Comparison("x", ["different", "same"], [0.2, 0.8], [0.5, 0.5])
    >>> u_from_pattern_counts(np.array([[1], [0]]), np.array([1, 3]), [x], unseen_pairs=[96])
    [[0.99, 0.01]]
    """
    g = _check_patterns(patterns, comparisons, "patterns")
    c = _check_counts(counts, g.shape[0])
    _check_floor(floor, comparisons)
    unseen = [0.0] * len(comparisons) if unseen_pairs is None else list(unseen_pairs)
    if len(unseen) != len(comparisons) or not all(
        _is_number(n) and math.isfinite(n) and n >= 0 for n in unseen
    ):
        raise ValueError(
            f"unseen_pairs must be {len(comparisons)} finite numbers >= 0, one per comparison, "
            f"got {unseen_pairs!r}"
        )
    out: list[list[float]] = []
    for j, comparison in enumerate(comparisons):
        k = len(comparison.levels)
        observed = g[:, j] >= 0
        freq = np.bincount(g[observed, j], weights=c[observed], minlength=k)
        if freq.sum() > 0:
            freq[0] += unseen[j] * freq.sum() / c.sum()
            out.append([float(v) for v in _floor_normalise(freq, floor)])
        else:
            out.append(list(comparison.u))
    return out


def _check_floor(floor: float, comparisons: Sequence[Comparison]) -> None:
    k_max = max(len(c.levels) for c in comparisons)
    if not _is_number(floor) or not 0.0 < floor < 1.0 / k_max:
        raise ValueError(
            f"floor must be > 0 and < 1/{k_max} (the most levels of any comparison), got {floor!r}"
        )


def _log_params(values: list[np.ndarray]) -> list[np.ndarray]:
    # Index -1 (missing) reads the appended 0: a missing field multiplies both classes by 1.
    return [np.append(np.log(v), 0.0) for v in values]


def _e_step(
    columns: list[np.ndarray],
    counts: np.ndarray,
    m: list[np.ndarray],
    u: list[np.ndarray],
    prior: float,
) -> tuple[np.ndarray, float]:
    """Posterior P(match | pattern) and the observed-data log-likelihood, in log space."""
    log_match = np.full(counts.shape[0], math.log(prior))
    log_non = np.full(counts.shape[0], math.log1p(-prior))
    for col, lm, lu in zip(columns, _log_params(m), _log_params(u), strict=True):
        log_match += lm[col]
        log_non += lu[col]
    log_total = np.logaddexp(log_match, log_non)
    posterior = np.exp(log_match - log_total)
    # fsum: an exactly rounded sum keeps the reported history honest to ~1e-10, so a tiny
    # late-iteration increase is not drowned by summation noise.
    log_likelihood = math.fsum((counts * log_total).tolist())
    return posterior, log_likelihood


def _orientation_ok(m: list[np.ndarray], u: list[np.ndarray]) -> bool:
    return float(sum(mf[-1] for mf in m)) >= float(sum(uf[-1] for uf in u))


def fit_em(
    patterns: np.ndarray,
    counts: np.ndarray,
    comparisons: list[Comparison],
    prior: float = 0.1,
    fix_u: bool = False,
    fix_m_for: Collection[str] = frozenset(),
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    floor: float = 1e-6,
    pairs_at_least: float = 0.0,
    m_at_least_u_for: Collection[str] = frozenset(),
    agreement_at_least_different: bool = False,
) -> MatchModel:
    """Fit m, u and the prior by EM on distinct comparison patterns and their counts.

    ``patterns`` is (n_patterns, n_fields) with values -1..k_f-1, columns in the order of
    ``comparisons``, whose m and u are the starting values (they are not modified). ``counts`` are
    the number of pairs (or any non-negative weight) per pattern.

    ``fix_u`` keeps every u exactly at its starting value (e.g. estimated from random pairs with
    :func:`u_from_pattern_counts`); ``fix_m_for`` names comparisons whose m is kept exactly (e.g.
    the fields used for blocking in this training pass, whose agreement is forced by the blocking).
    Learned probabilities are kept in [floor, 1 - floor]; fixed ones are left as given.

    Two guards keep a few pairs from deciding the fit (both off by default):

    * ``pairs_at_least``: each learned m, and the prior, is a share of at least this many pairs.
      A comparison's m rests on the pairs EM counts as matches among those it is observed on;
      the matches short of ``pairs_at_least`` are taken to spread over the levels as
      :func:`default_m` says. The prior rests on all the pairs; those short of it are taken to
      match half the time. A pseudo-count that is zero once enough pairs are compared, so a
      large fit is unchanged to the bit. Without it the only pair of a tiny file with two
      emails to compare, two namesakes with different ones, put all of m on "different", and
      an exact email weighed nothing or against a match.
    * ``m_at_least_u_for`` names comparisons (identifiers: a mailbox, a phone line, an id, a
      handle) whose agreeing levels (every level above 0) keep ``m >= u`` while fewer than
      ``pairs_at_least`` matches inform their m: a few pairs never make sharing one evidence
      against a match.
    * ``agreement_at_least_different``: no level above 0 (a kind of agreement: a typo apart,
      the same year, the last 7 digits of a phone) weighs less than level 0, "different":
      its m is kept at least ``m[0] * u[k] / u[0]``. EM finds no match at a level the
      matches it counts never show, and m there falls to the floor: a dob one typo apart
      weighed -10.4 bits on the sample and a shared last 7 digits of a phone -3.7, where a
      dob or phone wholly different weighed -2.6; in a file of 30 people a first name
      within Jaro-Winkler 0.80 weighed -9.2 and a different one -4.6. Being partly alike is
      never stronger evidence of two people than being wholly different.

    Stops when the largest change of any learned m, u or prior is below ``tolerance``
    (``converged=True``) or after ``max_iterations``. EM never lowers the likelihood, so
    ``history`` is non-decreasing up to rounding — except where the floor or a guard binds, as
    neither is part of the EM update. See the module docstring for how label switching is handled.
    """
    comparisons = list(comparisons)
    if not comparisons:
        raise ValueError("fit_em needs at least one comparison")
    g = _check_patterns(patterns, comparisons, "patterns")
    c = _check_counts(counts, g.shape[0])
    if not _is_number(prior) or not 0.0 < prior < 1.0:
        raise ValueError(f"starting prior must be strictly between 0 and 1, got {prior!r}")
    _check_floor(floor, comparisons)
    if (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, int)
        or max_iterations < 0
    ):
        raise ValueError(f"max_iterations must be a non-negative integer, got {max_iterations!r}")
    if not _is_number(tolerance) or not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    if not _is_number(pairs_at_least) or not 0 <= pairs_at_least < math.inf:
        raise ValueError(f"pairs_at_least must be a finite number >= 0, got {pairs_at_least!r}")
    names = [comp.name for comp in comparisons]
    for what, given in (("fix_m_for", fix_m_for), ("m_at_least_u_for", m_at_least_u_for)):
        if isinstance(given, str):
            # A bare string would silently be treated as a set of characters.
            raise ValueError(f"{what} must be a collection of comparison names, not a string")
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(
                f"{what} names unknown comparison(s): {', '.join(unknown)}; "
                f"known: {', '.join(names)}"
            )

    fixed_m = [comp.name in fix_m_for for comp in comparisons]
    m = [
        np.asarray(comp.m) if fixed else _floor_normalise(np.asarray(comp.m), floor)
        for comp, fixed in zip(comparisons, fixed_m, strict=True)
    ]
    u = [
        np.asarray(comp.u) if fix_u else _floor_normalise(np.asarray(comp.u), floor)
        for comp in comparisons
    ]
    # The matches short of pairs_at_least, per comparison: levels as the default m says.
    pseudo = [np.asarray(default_m(len(comp.levels))) for comp in comparisons]
    at_least_u = [comp.name in m_at_least_u_for for comp in comparisons]
    lam = float(min(max(prior, floor), 1.0 - floor))

    columns = [np.ascontiguousarray(g[:, j]) for j in range(g.shape[1])]
    observed = [col >= 0 for col in columns]
    total = c.sum()

    posterior, log_likelihood = _e_step(columns, c, m, u, lam)
    history = [log_likelihood]
    converged = False
    iterations = 0
    for _ in range(max_iterations):
        iterations += 1
        weighted_match = c * posterior
        weighted_non = c - weighted_match
        # Pairs short of pairs_at_least count as matches half the time.
        short_pairs = pairs_at_least - total
        matched = weighted_match.sum()
        share = (
            (matched + 0.5 * short_pairs) / pairs_at_least if short_pairs > 0 else matched / total
        )
        new_lam = float(min(max(share, floor), 1.0 - floor))
        change = abs(new_lam - lam)
        new_m: list[np.ndarray] = []
        new_u: list[np.ndarray] = []
        for j, comp in enumerate(comparisons):
            col, obs, k = columns[j][observed[j]], observed[j], len(comp.levels)
            # No observed mass (field always missing, or a class emptied): no evidence to move
            # on, so the current estimate is held rather than divided by zero.
            u_j = u[j]
            if not fix_u:
                mass = np.bincount(col, weights=weighted_non[obs], minlength=k)
                if mass.sum() > 0:
                    u_j = _floor_normalise(mass, floor)
            m_j = m[j]
            if not fixed_m[j]:
                mass = np.bincount(col, weights=weighted_match[obs], minlength=k)
                short = pairs_at_least - mass.sum()
                floors = np.full(k, floor)
                if short > 0:
                    # Too few matches to go by: the rest agree as the default m says, and an
                    # identifier's agreeing levels keep m >= u.
                    if at_least_u[j]:
                        floors[1:] = np.maximum(u_j[1:], floor)
                    m_j = _floor_normalise(
                        mass + short * pseudo[j], floors if at_least_u[j] else floor
                    )
                elif mass.sum() > 0:
                    m_j = _floor_normalise(mass, floor)
                if agreement_at_least_different and m_j[0] < u_j[0]:
                    # Renormalising lowers m[0] a little, so the bound holds after it too;
                    # with m[0] < u[0] the floors sum to less than m[0] / u[0] < 1.
                    floors[1:] = np.maximum(floors[1:], m_j[0] * u_j[1:] / u_j[0])
                    if np.any(m_j < floors):
                        m_j = _floor_normalise(m_j, floors)
            change = max(
                change, float(np.max(np.abs(m_j - m[j]))), float(np.max(np.abs(u_j - u[j])))
            )
            new_m.append(m_j)
            new_u.append(u_j)
        m, u, lam = new_m, new_u, new_lam
        posterior, log_likelihood = _e_step(columns, c, m, u, lam)
        history.append(log_likelihood)
        if change < tolerance:
            converged = True
            break

    warnings: list[str] = []
    if not converged:
        warnings.append(
            f"EM did not converge within {max_iterations} "
            f"iteration{'' if max_iterations == 1 else 's'} "
            f"(tolerance {tolerance:g}); the parameters may still be moving"
        )
    if not _orientation_ok(m, u):
        if not fix_u and not any(fixed_m) and pairs_at_least == 0:
            # With nothing held fixed or guarded the likelihood is symmetric in the two classes,
            # so the relabelled fit is the same optimum, just named the right way round.
            m, u, lam = u, m, 1.0 - lam
            warnings.append(
                "label switching: the fitted 'match' class agreed less than the 'non-match' "
                "class; the classes were swapped back (same likelihood)"
            )
        else:
            converged = False
            warnings.append(
                "label switching: the fitted 'match' class agrees less than the 'non-match' "
                "class and cannot be relabelled because some parameters were held fixed or "
                "guarded; do not use this model — check the starting m/u and the fixed parameters"
            )

    fitted = [
        Comparison(
            name=comp.name,
            levels=list(comp.levels),
            m=[float(v) for v in mf],
            u=[float(v) for v in uf],
        )
        for comp, mf, uf in zip(comparisons, m, u, strict=True)
    ]
    return MatchModel(
        comparisons=fitted,
        prior=lam,
        iterations=iterations,
        converged=converged,
        log_likelihood=history[-1],
        history=history,
        warnings=warnings,
    )
