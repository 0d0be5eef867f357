"""The Fellegi–Sunter model: EM recovers known parameters, weights match hand arithmetic,
serialisation is exact, and label switching is never returned silently."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify.model import (
    Comparison,
    MatchModel,
    default_m,
    fit_em,
    probability_from_weight,
    u_from_pattern_counts,
)
from cxunify.score import unseen_pairs

# name, level labels, true m, true u
TRUTH = [
    (
        "first_name",
        ["different", "jw>=0.8", "jw>=0.92", "nickname", "exact"],
        [0.05, 0.03, 0.07, 0.05, 0.80],
        [0.85, 0.08, 0.04, 0.01, 0.02],
    ),
    ("last_name", ["different", "jw>=0.88", "exact"], [0.08, 0.12, 0.80], [0.90, 0.07, 0.03]),
    ("dob", ["different", "exact"], [0.05, 0.95], [0.97, 0.03]),
    ("postcode", ["different", "exact"], [0.15, 0.85], [0.90, 0.10]),
]
TRUE_PRIOR = 0.05
N_PAIRS = 200_000
MISSING_RATE = 0.10


def _simulate(seed: int = 20240607) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gamma vectors for N_PAIRS pairs drawn from TRUTH, ~10% missing per field, aggregated."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(N_PAIRS) < TRUE_PRIOR
    columns = []
    for _, levels, m, u in TRUTH:
        k = len(levels)
        g = np.where(is_match, rng.choice(k, size=N_PAIRS, p=m), rng.choice(k, size=N_PAIRS, p=u))
        g[rng.random(N_PAIRS) < MISSING_RATE] = -1
        columns.append(g)
    gammas = np.stack(columns, axis=1)
    patterns, counts = np.unique(gammas, axis=0, return_counts=True)
    return patterns, counts, gammas


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _simulate()


def _off_start() -> list[Comparison]:
    """Deliberately wrong starting values: generic m, and u that is just m reversed."""
    return [
        Comparison(name, levels, default_m(len(levels)), default_m(len(levels))[::-1])
        for name, levels, _, _ in TRUTH
    ]


def _errors(model: MatchModel) -> tuple[float, float, float]:
    m_err = max(
        float(np.max(np.abs(np.array(m) - c.m)))
        for (_, _, m, _), c in zip(TRUTH, model.comparisons, strict=True)
    )
    u_err = max(
        float(np.max(np.abs(np.array(u) - c.u)))
        for (_, _, _, u), c in zip(TRUTH, model.comparisons, strict=True)
    )
    return m_err, u_err, abs(model.prior - TRUE_PRIOR)


def _assert_oriented(model: MatchModel) -> None:
    top_m = sum(c.m[-1] for c in model.comparisons)
    top_u = sum(c.u[-1] for c in model.comparisons)
    assert top_m >= top_u, "a converged model must not have the classes swapped"


# -- recovery of known parameters ----------------------------------------------------------------


def test_em_recovers_known_parameters(simulated) -> None:
    patterns, counts, _ = simulated
    assert counts.sum() == N_PAIRS
    assert len(patterns) < 1000  # the point: EM runs on a small table, not on the pairs
    start = _off_start()
    before = [(c.m[:], c.u[:]) for c in start]

    model = fit_em(patterns, counts, start, prior=0.2)

    assert model.converged, model.warnings
    assert model.warnings == []
    m_err, u_err, prior_err = _errors(model)
    assert m_err < 0.02
    assert u_err < 0.02
    assert prior_err < 0.01
    history = np.array(model.history)
    assert len(history) == model.iterations + 1
    assert np.all(np.diff(history) >= -1e-9)
    assert model.log_likelihood == history[-1]
    # inputs are not mutated; the result is new objects
    assert [(c.m, c.u) for c in start] == before
    assert all(a is not b for a, b in zip(start, model.comparisons, strict=True))
    for c in model.comparisons:
        assert math.isclose(sum(c.m), 1.0, abs_tol=1e-12)
        assert math.isclose(sum(c.u), 1.0, abs_tol=1e-12)


def test_em_is_deterministic(simulated) -> None:
    patterns, counts, _ = simulated
    a = fit_em(patterns, counts, _off_start(), prior=0.2)
    b = fit_em(patterns, counts, _off_start(), prior=0.2)
    assert a == b


def test_pattern_order_does_not_matter(simulated) -> None:
    patterns, counts, _ = simulated
    order = np.random.default_rng(1).permutation(len(patterns))
    a = fit_em(patterns, counts, _off_start(), prior=0.2)
    b = fit_em(patterns[order], counts[order], _off_start(), prior=0.2)
    for ca, cb in zip(a.comparisons, b.comparisons, strict=True):
        np.testing.assert_allclose(ca.m, cb.m, atol=1e-9)
        np.testing.assert_allclose(ca.u, cb.u, atol=1e-9)


def test_fix_u_keeps_u_exactly(simulated) -> None:
    patterns, counts, _ = simulated
    start = [Comparison(name, levels, default_m(len(levels)), u) for name, levels, _, u in TRUTH]
    model = fit_em(patterns, counts, start, prior=0.2, fix_u=True)
    for s, c in zip(start, model.comparisons, strict=True):
        assert c.u == s.u
    assert model.converged
    m_err, _, prior_err = _errors(model)
    assert m_err < 0.02
    assert prior_err < 0.01


def test_fix_m_for_keeps_that_m(simulated) -> None:
    patterns, counts, _ = simulated
    start = _off_start()
    model = fit_em(patterns, counts, start, prior=0.2, fix_m_for={"dob"})
    by_name = {c.name: c for c in model.comparisons}
    assert by_name["dob"].m == start[2].m
    assert by_name["first_name"].m != start[0].m
    assert by_name["dob"].u != start[2].u  # only m is held


def test_fix_m_for_rejects_unknown_names(simulated) -> None:
    patterns, counts, _ = simulated
    with pytest.raises(ValueError, match="unknown comparison"):
        fit_em(patterns, counts, _off_start(), fix_m_for={"date_of_birth"})
    with pytest.raises(ValueError, match="not a string"):
        fit_em(patterns, counts, _off_start(), fix_m_for="dob")


def test_u_from_random_pairs(simulated) -> None:
    # Random pairs are (almost) all non-matches; use the non-match rows as that sample.
    rng = np.random.default_rng(7)
    columns = []
    for _, levels, _, u in TRUTH:
        g = rng.choice(len(levels), size=50_000, p=u)
        g[rng.random(50_000) < 0.3] = -1
        columns.append(g)
    patterns, counts = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
    u = u_from_pattern_counts(patterns, counts, _off_start())
    for (_, _, _, true_u), est in zip(TRUTH, u, strict=True):
        assert math.isclose(sum(est), 1.0, abs_tol=1e-12)
        assert max(abs(a - b) for a, b in zip(true_u, est, strict=True)) < 0.01


def test_u_from_pattern_counts_floors_unseen_levels_and_keeps_all_missing_fields() -> None:
    comps = [
        Comparison("a", ["no", "yes"], [0.2, 0.8], [0.5, 0.5]),
        Comparison("b", ["no", "yes"], [0.2, 0.8], [0.7, 0.3]),
    ]
    patterns = np.array([[0, -1], [0, -1]])
    u = u_from_pattern_counts(patterns, np.array([3, 5]), comps, floor=1e-4)
    assert u[0][1] == pytest.approx(1e-4)
    assert sum(u[0]) == pytest.approx(1.0)
    assert u[1] == [0.7, 0.3]  # never observed: no evidence, keep the given u


def test_unseen_pairs_count_as_different_with_the_counted_pairs_share_of_values() -> None:
    comps = [
        Comparison("email", ["different", "exact"], [0.2, 0.8], [0.5, 0.5]),
        Comparison("phone", ["different", "exact"], [0.2, 0.8], [0.5, 0.5]),
        Comparison("name", ["different", "exact"], [0.2, 0.8], [0.5, 0.5]),
    ]
    # 10 pairs: 2 share an email, 1 a phone (which only half the pairs have), 2 a name.
    patterns = np.array([[1, -1, 1], [0, 1, 0], [0, 0, 0], [0, -1, 0]])
    counts = np.array([2, 1, 4, 3])
    u = u_from_pattern_counts(patterns, counts, comps, unseen_pairs=[990, 990, 0])
    assert u[0][1] == pytest.approx(2 / 1000)
    assert u[1][1] == pytest.approx(1 / 500)  # half of the unseen pairs have a phone too
    assert u[2][1] == pytest.approx(2 / 10)  # no unseen pairs: the counted share
    assert all(sum(levels) == pytest.approx(1.0) for levels in u)
    # no unseen pairs at all is the plain count
    assert u_from_pattern_counts(patterns, counts, comps, unseen_pairs=[0, 0, 0]) == (
        u_from_pattern_counts(patterns, counts, comps)
    )
    for bad in ([990, 990], [-1, 0, 0], [math.inf, 0, 0], [True, 0, 0]):
        with pytest.raises(ValueError, match="unseen_pairs"):
            u_from_pattern_counts(patterns, counts, comps, unseen_pairs=bad)


def test_unseen_pairs_fill_a_small_sample_up_to_a_million_pairs() -> None:
    assert unseen_pairs(10) == 999_990  # three contacts and two orders: 10 pairs
    assert unseen_pairs(1415 * 1414 // 2) == 0  # the random sample of a large file
    assert unseen_pairs(5_000_000) == 0


# -- a few pairs do not decide m ------------------------------------------------------------------


def _seven_contacts() -> tuple[np.ndarray, np.ndarray, list[Comparison]]:
    """The two candidate pairs of a file of seven contacts: two namesakes of one city with
    different emails, the only pair with two emails to compare, and a contact with a sign-up
    sharing its email, found by the email alone (so its email is masked), in another city."""
    email_levels = ["different", "same local part", "one edit apart", "exact"]
    comparisons = [
        Comparison("name", ["different", "exact"], default_m(2), [0.9, 0.1]),
        Comparison("email", email_levels, default_m(4), [1 - 3e-5, 1e-5, 1e-5, 1e-5]),
        Comparison("city", ["different", "same"], default_m(2), [0.95, 0.05]),
    ]
    return np.array([[1, 0, 1], [-1, -1, 0]]), np.array([1, 1]), comparisons


def test_one_pair_of_namesakes_does_not_make_a_shared_email_evidence_against() -> None:
    patterns, counts, comparisons = _seven_contacts()
    # Unguarded, the namesakes put all of m on "different": sharing an email weighs against.
    plain = fit_em(patterns, counts, comparisons, fix_u=True)
    assert plain.comparisons[1].m[3] == pytest.approx(1e-6)
    assert plain.comparisons[1].partial_weights()[3] < -3

    model = fit_em(
        patterns, counts, comparisons, fix_u=True, pairs_at_least=10, m_at_least_u_for={"email"}
    )
    email = model.comparisons[1]
    # Eight of the ten pairs m rests on take the default m's levels: three in four agree.
    assert email.m[3] > 0.5
    assert email.partial_weights()[3] > 15
    assert min(email.partial_weights()[1:]) >= 0
    # Eight pairs short of ten count as matches half the time: the prior does not vanish.
    assert model.prior >= 0.4
    assert math.isclose(sum(email.m), 1.0, abs_tol=1e-12)


def test_an_identifiers_agreeing_levels_keep_m_at_least_u_on_few_pairs() -> None:
    patterns, counts, _ = _seven_contacts()
    # An email shared by one pair in 20: the default m of a rarer level is below that u.
    common = [
        Comparison("name", ["different", "exact"], default_m(2), [0.9, 0.1]),
        Comparison("email", ["different", "a", "b", "exact"], default_m(4), [0.8, 0.1, 0.05, 0.05]),
        Comparison("city", ["different", "same"], default_m(2), [0.95, 0.05]),
    ]
    guarded = fit_em(
        patterns, counts, common, fix_u=True, pairs_at_least=10, m_at_least_u_for={"email"}
    )
    email = guarded.comparisons[1]
    assert [w >= -1e-12 for w in email.partial_weights()[1:]] == [True, True, True]
    assert email.m[1] == pytest.approx(0.1)  # pinned at its u
    assert math.isclose(sum(email.m), 1.0, abs_tol=1e-12)
    # Not named: the default m stands, below u.
    free = fit_em(patterns, counts, common, fix_u=True, pairs_at_least=10)
    assert free.comparisons[1].partial_weights()[1] < 0


def test_the_guards_change_nothing_where_many_pairs_are_compared(simulated) -> None:
    patterns, counts, _ = simulated
    names = {name for name, *_ in TRUTH}
    plain = fit_em(patterns, counts, _off_start(), prior=0.2)
    guarded = fit_em(
        patterns, counts, _off_start(), prior=0.2, pairs_at_least=10, m_at_least_u_for=names
    )
    assert guarded == plain  # to the bit


def test_a_kind_of_agreement_no_match_shows_weighs_no_less_than_different() -> None:
    # 240 matches agree on name and email, 40 of them with another phone; 5,000 non-matches
    # differ on all three, 20 of them sharing the last 7 digits of a phone. EM counts no
    # match at that level.
    comparisons = [
        Comparison("name", ["different", "exact"], default_m(2), [0.99, 0.01]),
        Comparison("email", ["different", "exact"], default_m(2), [1 - 1e-5, 1e-5]),
        Comparison("phone", ["different", "last 7", "exact"], default_m(3), [0.996, 4e-3, 1e-6]),
    ]
    patterns = np.array([[1, 1, 2], [1, 1, 0], [0, 0, 0], [0, 0, 1]])
    counts = np.array([200, 40, 5000, 20])
    plain = fit_em(patterns, counts, comparisons, fix_u=True, pairs_at_least=10)
    different, last7, exact = plain.comparisons[2].partial_weights()
    assert last7 < different - 5  # the floor of m: far below a phone wholly different
    guarded = fit_em(
        patterns, counts, comparisons, fix_u=True, pairs_at_least=10,
        agreement_at_least_different=True,
    )  # fmt: skip
    weights = guarded.comparisons[2].partial_weights()
    assert weights[1] >= weights[0] - 1e-9
    assert weights[0] == pytest.approx(different, abs=1e-3)
    assert weights[2] == pytest.approx(exact, abs=1e-3)
    assert math.isclose(sum(guarded.comparisons[2].m), 1.0, abs_tol=1e-12)


def test_guard_arguments_are_checked() -> None:
    patterns, counts, comparisons = _seven_contacts()
    for bad in (-1, math.inf, math.nan, True, "10"):
        with pytest.raises(ValueError, match="pairs_at_least"):
            fit_em(patterns, counts, comparisons, pairs_at_least=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="m_at_least_u_for names unknown comparison"):
        fit_em(patterns, counts, comparisons, m_at_least_u_for={"phone"})
    with pytest.raises(ValueError, match="m_at_least_u_for must be a collection"):
        fit_em(patterns, counts, comparisons, m_at_least_u_for="email")


# -- label switching -----------------------------------------------------------------------------


def test_label_switch_start_is_corrected_or_reported(simulated) -> None:
    patterns, counts, _ = simulated
    swapped = [Comparison(name, levels, u, m) for name, levels, m, u in TRUTH]
    model = fit_em(patterns, counts, swapped, prior=0.9)
    if model.converged:
        _assert_oriented(model)
        m_err, u_err, prior_err = _errors(model)
        assert m_err < 0.02
        assert u_err < 0.02
        assert prior_err < 0.01
        assert any("label switching" in w for w in model.warnings)
    else:
        assert any("label switching" in w for w in model.warnings)


def test_label_switch_with_fixed_parameters_is_reported_not_converged(simulated) -> None:
    patterns, counts, _ = simulated
    swapped = [Comparison(name, levels, u, m) for name, levels, m, u in TRUTH]
    # With m fixed for every field the classes cannot be relabelled, only reported.
    model = fit_em(patterns, counts, swapped, prior=0.9, fix_m_for={name for name, *_ in TRUTH})
    assert not model.converged
    assert any("label switching" in w for w in model.warnings)
    for s, c in zip(swapped, model.comparisons, strict=True):
        assert c.m == s.m


def test_non_convergence_is_reported(simulated) -> None:
    patterns, counts, _ = simulated
    model = fit_em(patterns, counts, _off_start(), prior=0.2, max_iterations=2)
    assert model.iterations == 2
    assert not model.converged
    assert any("did not converge" in w for w in model.warnings)


# -- weights by hand -----------------------------------------------------------------------------


def _hand_model() -> MatchModel:
    # weights: a = [-2, +2]; b = [-3, log2(2/3), +4]; prior 0.2 -> prior weight -2
    return MatchModel(
        comparisons=[
            Comparison("a", ["different", "exact"], [0.2, 0.8], [0.8, 0.2]),
            Comparison("b", ["different", "fuzzy", "exact"], [0.1, 0.1, 0.8], [0.8, 0.15, 0.05]),
        ],
        prior=0.2,
        iterations=0,
        converged=True,
        log_likelihood=-1.5,
        history=[-1.5],
    )


def test_weights_and_probabilities_by_hand() -> None:
    model = _hand_model()
    assert model.prior_weight() == pytest.approx(-2.0)
    assert model.comparisons[0].partial_weights() == pytest.approx([-2.0, 2.0])
    assert model.comparisons[1].partial_weights() == pytest.approx([-3.0, math.log2(2 / 3), 4.0])
    gammas = np.array([[1, 2], [0, 0], [-1, 2], [1, -1], [-1, -1], [1, 1]], dtype=np.int8)
    expected_w = [4.0, -7.0, 2.0, 0.0, -2.0, math.log2(2 / 3)]
    expected_p = [16 / 17, 1 / 129, 4 / 5, 1 / 2, 1 / 5, 2 / 5]
    np.testing.assert_allclose(model.match_weights(gammas), expected_w, atol=1e-12)
    np.testing.assert_allclose(model.probabilities(gammas), expected_p, atol=1e-12)
    # all-missing is the prior itself
    assert model.probabilities(np.array([[-1, -1]]))[0] == pytest.approx(model.prior)


def test_match_weights_rejects_bad_gammas() -> None:
    model = _hand_model()
    with pytest.raises(ValueError, match="shape"):
        model.match_weights(np.array([[1, 2, 0]]))
    with pytest.raises(ValueError, match="'b'"):
        model.match_weights(np.array([[1, 3]]))
    with pytest.raises(ValueError, match="integers"):
        model.match_weights(np.array([[1.0, 2.0]]))


def test_weight_table_rows() -> None:
    rows = _hand_model().weight_table()
    assert len(rows) == 5
    assert rows[0] == {
        "comparison": "a",
        "level": "different",
        "gamma": 0,
        "m": 0.2,
        "u": 0.8,
        "partial_weight": pytest.approx(-2.0),
    }
    assert rows[-1]["level"] == "exact" and rows[-1]["partial_weight"] == pytest.approx(4.0)
    with_missing = _hand_model().weight_table(include_missing=True)
    missing = [r for r in with_missing if r["gamma"] == -1]
    assert [r["comparison"] for r in missing] == ["a", "b"]
    assert all(r["partial_weight"] == 0.0 for r in missing)


def test_probability_from_weight_is_stable_at_extremes() -> None:
    p = probability_from_weight(np.array([-5000.0, -1074.0, -60.0, 0.0, 60.0, 5000.0]))
    assert np.all(np.isfinite(p))
    assert p[0] == 0.0 and p[-1] == 1.0 and p[3] == 0.5
    assert 0.0 < p[2] < 1e-17


# -- serialisation -------------------------------------------------------------------------------


def test_json_round_trip_is_exact(simulated) -> None:
    patterns, counts, _ = simulated
    model = fit_em(patterns, counts, _off_start(), prior=0.2)
    text = model.to_json()
    assert json.loads(text)["format"] == "cxunify-model/1"
    again = MatchModel.from_json(text)
    assert again == model
    assert again.to_json() == text


def test_hand_model_without_likelihood_round_trips() -> None:
    model = MatchModel(
        comparisons=_hand_model().comparisons,
        prior=0.3,
        iterations=0,
        converged=False,
        log_likelihood=float("nan"),
        history=[],
    )
    again = MatchModel.from_json(model.to_json())
    assert math.isnan(again.log_likelihood)
    assert again.comparisons == model.comparisons and again.prior == model.prior


def _valid_dict() -> dict:
    return json.loads(_hand_model().to_json())


def _mutate(**changes) -> str:
    data = _valid_dict()
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json at all", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2, 3]", "JSON object"),
        ('{"format": "splink/3"}', "not a cxunify model"),
        (json.dumps({"format": "cxunify-model/1"}), "missing key"),
        (_mutate(prior=1.5), "prior"),
        (_mutate(prior=True), "prior"),
        (_mutate(iterations=-1), "iterations"),
        (_mutate(converged="yes"), "converged"),
        (_mutate(history=["a"]), "history"),
        (_mutate(comparisons=[]), "at least one comparison"),
        (_mutate(extra=1), "unknown key"),
        (
            _mutate(
                comparisons=[
                    {"name": "a", "levels": ["no", "yes"], "m": [0.5, 0.6], "u": [0.5, 0.5]}
                ]
            ),
            r"comparisons\[0\].*sums to",
        ),
        (
            _mutate(
                comparisons=[
                    {"name": "a", "levels": ["no", "yes"], "m": [0.0, 1.0], "u": [0.5, 0.5]}
                ]
            ),
            "infinite weight",
        ),
        (
            _mutate(
                comparisons=[{"name": "a", "levels": ["no", "yes"], "m": [1.0], "u": [0.5, 0.5]}]
            ),
            "2 levels",
        ),
        (
            _mutate(comparisons=[{"name": "a", "levels": ["no", "yes"], "m": [0.5, 0.5]}]),
            r"comparisons\[0\] must have exactly",
        ),
        (
            _mutate(
                comparisons=[
                    {"name": "a", "levels": ["no", "yes"], "m": [0.2, 0.8], "u": [0.8, 0.2]},
                    {"name": "a", "levels": ["no", "yes"], "m": [0.2, 0.8], "u": [0.8, 0.2]},
                ]
            ),
            "unique",
        ),
    ],
)
def test_from_json_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MatchModel.from_json(text)


# -- properties ----------------------------------------------------------------------------------


@st.composite
def simplex(draw, k: int) -> list[float]:
    raw = draw(st.lists(st.floats(0.001, 1.0), min_size=k, max_size=k))
    total = math.fsum(raw)
    return [r / total for r in raw]


@st.composite
def models(draw) -> MatchModel:
    n_fields = draw(st.integers(1, 4))
    comps = []
    for j in range(n_fields):
        k = draw(st.integers(2, 5))
        comps.append(
            Comparison(f"f{j}", [f"l{i}" for i in range(k)], draw(simplex(k)), draw(simplex(k)))
        )
    prior = draw(st.floats(1e-6, 1 - 1e-6))
    return MatchModel(comparisons=comps, prior=prior)


@st.composite
def gamma_tables(draw, comparisons: list[Comparison], min_rows: int = 1) -> np.ndarray:
    n = draw(st.integers(min_rows, 30))
    rows = [[draw(st.integers(-1, len(c.levels) - 1)) for c in comparisons] for _ in range(n)]
    return np.array(rows, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_probabilities_in_unit_interval_and_monotone_in_weight(data) -> None:
    model = data.draw(models())
    gammas = data.draw(gamma_tables(model.comparisons))
    w = model.match_weights(gammas)
    p = model.probabilities(gammas)
    assert np.all(np.isfinite(w))
    assert np.all((p >= 0.0) & (p <= 1.0))
    order = np.argsort(w, kind="stable")
    assert np.all(np.diff(p[order]) >= 0.0)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_fit_em_never_returns_nan(data) -> None:
    start = data.draw(models())
    patterns = data.draw(gamma_tables(start.comparisons))
    counts = np.array(
        data.draw(st.lists(st.integers(0, 10_000), min_size=len(patterns), max_size=len(patterns)))
    )
    if counts.sum() == 0:
        counts[0] = 1
    fix_u = data.draw(st.booleans())
    floor = 1e-6
    model = fit_em(
        patterns,
        counts,
        start.comparisons,
        prior=data.draw(st.floats(0.001, 0.999)),
        fix_u=fix_u,
        max_iterations=30,
    )
    assert math.isfinite(model.prior) and 0.0 < model.prior < 1.0
    assert math.isfinite(model.log_likelihood)
    assert all(math.isfinite(h) for h in model.history)
    for s, c in zip(start.comparisons, model.comparisons, strict=True):
        assert all(math.isfinite(v) for v in c.m + c.u)
        assert math.isclose(sum(c.m), 1.0, abs_tol=1e-9)
        assert min(c.m) >= floor * (1 - 1e-9)
        if fix_u:
            assert c.u == s.u
        else:
            assert min(c.u) >= floor * (1 - 1e-9)
    if model.converged:
        _assert_oriented(model)
    assert np.all(np.isfinite(model.probabilities(patterns)))
