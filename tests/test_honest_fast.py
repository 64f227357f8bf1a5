"""The fast paths of the HonestDiD breakdown value give the answers of the plain computation.

``breakdown_value`` keeps the cone's rays and the least-favourable standard normals between
bisection steps, stops the union over the pieces of Delta^RM once 0 is spanned, and computes the
truncated-normal quantile only where it decides (issue 16). Each shortcut is checked here against
what it replaces: numpy's own ``RandomState.multivariate_normal``, the whole union read through
``honest_did``, scipy's ``truncnorm.ppf`` on every grid point.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from finsam_eval.inference import honest
from finsam_eval.inference.honest import breakdown_value, honest_did

_FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "honestdid" / "reference.json").read_text("utf-8")
)
BETA = np.asarray(_FIXTURE["beta"])  # 3 pre, 3 post periods (the honestdid parity inputs)
SIGMA = np.asarray(_FIXTURE["sigma"])
SIGNIFICANT = BETA + np.r_[0, 0, 0, 0.25, 0.2, 0.3]  # post effects away from 0


def _inputs_4x3(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """4 pre and 3 post periods with a clear post effect (a second, larger design)."""
    rng = np.random.default_rng(seed)
    root = rng.normal(scale=0.05, size=(7, 7))
    sigma = root @ root.T + np.diag(rng.uniform(0.002, 0.004, 7))
    beta = np.r_[0.01, -0.02, 0.015, -0.01, -0.25, -0.3, -0.32]
    return beta, sigma


def _bisection_over_honest_did(beta, sigma, n_pre, tol, m_max=10.0, **options):
    """breakdown_value's definition, each step one full honest_did call (the plain route)."""

    def covers(value):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            row = honest_did(beta, sigma, n_pre, m=[value], **options).iloc[1]
        return bool(row["ci_lower"] <= 0 <= row["ci_upper"])

    if covers(0.0):
        return 0.0
    if not covers(m_max):
        return np.inf
    lo, hi = 0.0, m_max
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if covers(mid) else (mid, hi)
    return hi


@pytest.mark.parametrize("seed", [0, 7])
def test_normal_draws_equal_numpy_multivariate_normal(seed):
    rng = np.random.default_rng(11)
    full = rng.normal(size=(6, 6))
    low_rank = rng.normal(size=(6, 3))
    covariances = [
        full @ full.T,
        low_rank @ low_rank.T,  # singular: numpy's SVD route still applies
        np.array([[0.3]]),
        np.diag([1e-8, 2.0, 0.5, 1.0, 3.0, 0.1]),
    ]
    cache: dict = {}
    for cov in covariances:
        for sims in (1000, 13):
            expected = np.random.RandomState(seed).multivariate_normal(  # noqa: NPY002
                np.zeros(cov.shape[0]), cov, size=sims
            )
            for store in (None, cache, cache):  # afresh, then drawn into and read from a cache
                got = honest._normal_draws(cov, sims, seed, store)
                np.testing.assert_array_equal(got, expected)
    assert len(cache) == 4  # one set of standard normals per (seed, sims, n)
    honest._normal_draws(covariances[0], 10, None, cache)  # seed None: fresh entropy, not kept
    assert len(cache) == 4


def test_normal_draws_warn_as_numpy_for_an_indefinite_covariance():
    cov = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.warns(RuntimeWarning, match="positive-semidefinite") as ours:
        got = honest._normal_draws(cov, 50, 0)
    with pytest.warns(RuntimeWarning) as theirs:
        expected = np.random.RandomState(0).multivariate_normal(np.zeros(2), cov, size=50)  # noqa: NPY002
    assert str(ours[0].message) == str(theirs[0].message)
    np.testing.assert_array_equal(got, expected)


def _decision_everywhere(eta, var_b, vlo, vup, lf_cv, size, low_eta):
    """_arp_decision as it was: scipy's truncnorm quantile at every grid point."""
    sigma_b = np.sqrt(np.where(var_b > 0, var_b, 1.0))
    stat, zlo, zup = eta / sigma_b, vlo / sigma_b, np.minimum(vup, lf_cv) / sigma_b
    crit = zlo.copy()
    ok = zlo < zup
    with np.errstate(all="ignore"):
        crit[ok] = stats.truncnorm.ppf(1 - size, zlo[ok], zup[ok])
    low = np.zeros_like(crit) if low_eta is None else low_eta / sigma_b
    reject = (stat > np.maximum(low, crit)) & (zlo <= stat) & (stat <= zup)
    reject |= eta > lf_cv
    return ~np.where(var_b < np.finfo(float).eps, eta > 0, reject)


def test_arp_decision_equals_the_quantile_at_every_point():
    rng = np.random.default_rng(5)
    n = 4000
    eta = rng.normal(scale=2.0, size=n)
    var_b = rng.uniform(0.2, 2.0, n)
    var_b[rng.random(n) < 0.05] = 0.0  # degenerate
    vlo = eta - rng.exponential(2.0, n)
    vup = eta + rng.exponential(2.0, n)
    vlo[rng.random(n) < 0.1] = -np.inf
    vup[rng.random(n) < 0.1] = np.inf
    vlo[rng.random(n) < 0.1] += 3.0  # statistic outside its interval
    empty = rng.random(n) < 0.02
    vup[empty] = vlo[empty]  # an empty truncation interval
    eta[rng.random(n) < 0.01] = np.nan
    low = rng.normal(size=n)
    for lf_cv in (np.inf, 1.5, 0.0):
        for low_eta in (None, low):
            for size in (0.05, 0.0444):
                args = (eta, var_b, vlo, vup, lf_cv, size, low_eta)
                got = honest._arp_decision(*args)
                np.testing.assert_array_equal(got, _decision_everywhere(*args))
                assert got.any() and not got.all()


@pytest.mark.parametrize(
    ("grid_lb", "grid_ub", "grid_points"),
    [
        (None, None, 120),
        (-1.0, 1.0, 201),  # 0 is a grid point
        (1.0, -1.0, 101),  # a decreasing grid: the union may not stop early
    ],
)
def test_zero_question_has_the_whole_union_answer(grid_lb, grid_ub, grid_points):
    beta, sigma = _inputs_4x3()
    lv = np.full(3, 1 / 3)
    answers = set()
    warnings.simplefilter("ignore", UserWarning)  # open ends (pytest restores the filters)
    for m in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0):
        ends = [
            honest._robust_ci(
                beta,
                sigma,
                4,
                3,
                "relative_magnitude",
                m,
                "C-LF",
                0.05,
                lv,
                grid_points,
                grid_lb,
                grid_ub,
                0.005,
                300,
                0,
                {},
                zero_question=question,
            )  # fmt: skip
            for question in (False, True)
        ]
        full, early = (bool(lo <= 0 <= hi) for lo, hi in ends)
        assert early == full, m
        answers.add(full)
    if grid_lb is None:
        assert answers == {True, False}


@pytest.mark.parametrize("grid", [(-1.0, 1.0, 11), (-1.0, 1.0, 10), (1.0, -1.0, 11)])
def test_zero_question_on_designed_piece_sets(grid):
    # Every piece's accept set drawn at random (empty sets, single points, the point 0 itself,
    # one side only), on grids with and without 0 and decreasing: the answer with the early stop
    # is the whole union's.
    rng = np.random.default_rng(2)
    n_pre, lb, ub, points = 3, *grid
    n_pieces = 2 * n_pre
    seen = set()
    for _ in range(400):
        density = rng.choice([0.0, 0.05, 0.1, 0.3, 0.6], size=n_pieces)
        designed = rng.random((n_pieces, points)) < density[:, None]
        only_zero = rng.random(n_pieces) < 0.3  # pieces that accept the point 0 alone, if any
        designed[only_zero] = np.linspace(lb, ub, points) == 0
        answer = {}
        for question in (False, True):
            pieces = iter(designed)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(
                    honest, "_conditional_accept", lambda *a, _p=pieces, **k: next(_p).copy()
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    lo, hi = honest._robust_ci(
                        BETA, SIGMA, n_pre, 3, "relative_magnitude", 1.0, "C-LF", 0.05,
                        np.full(3, 1 / 3), points, lb, ub, 0.005, 10, 0, None,
                        zero_question=question,
                    )  # fmt: skip
            answer[question] = bool(lo <= 0 <= hi)
        assert answer[True] == answer[False], designed
        seen.add(answer[False])
    assert seen == {True, False}


@pytest.mark.parametrize(
    ("beta", "sigma", "n_pre", "options"),
    [
        (SIGNIFICANT, SIGMA, 3, {"l_vec": np.full(3, 1 / 3)}),
        (SIGNIFICANT, SIGMA, 3, {"method": "Conditional"}),
        (*_inputs_4x3(), 4, {"l_vec": np.full(3, 1 / 3)}),
        (BETA, SIGMA, 3, {}),  # covers 0 at Mbar = 0
        (SIGNIFICANT, SIGMA, 3, {"restriction": "smoothness", "method": "C-LF"}),
    ],
)
def test_breakdown_value_equals_the_bisection_over_honest_did(beta, sigma, n_pre, options):
    settings = {"grid_points": 120, "reps": 400, **options}
    m_max = 10.0 if settings.get("restriction") != "smoothness" else 0.5
    calls = {"n": 0}
    inner = honest._conditional_accept

    def counted(*args, **kwargs):
        calls["n"] += 1
        return inner(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(honest, "_conditional_accept", counted)
        fast = breakdown_value(beta, sigma, n_pre, tol=0.02, m_max=m_max, **settings)
        fast_calls = calls["n"]
        calls["n"] = 0
        plain = _bisection_over_honest_did(beta, sigma, n_pre, 0.02, m_max, **settings)
        plain_calls = calls["n"]
    assert fast == plain
    if settings.get("restriction") != "smoothness" and plain > 0:
        assert 0 < plain < m_max
        assert fast_calls < plain_calls  # the union stopped early at least once


def test_breakdown_value_options_are_honest_did_options():
    with pytest.raises(TypeError, match="grid_point"):
        breakdown_value(BETA, SIGMA, 3, grid_point=100)
    with pytest.raises(ValueError, match="finite, non-negative"):
        breakdown_value(SIGNIFICANT, SIGMA, 3, m_max=np.inf, grid_points=60, reps=100)
    with pytest.raises(ValueError, match="reps must be at least 1"):
        breakdown_value(BETA, SIGMA, 3, reps=0)  # C-LF: was an IndexError from np.quantile
    with pytest.raises(ValueError, match="reps must be at least 1"):
        honest_did(BETA, SIGMA, 3, reps=0)
    # the conditional test draws nothing
    assert breakdown_value(BETA, SIGMA, 3, method="Conditional", reps=0, grid_points=60) == 0.0
    new = breakdown_value(SIGNIFICANT, SIGMA, 3, grid_points=60, reps=100, tol=0.1)
    with pytest.warns(DeprecationWarning, match="sims"):
        old = breakdown_value(SIGNIFICANT, SIGMA, 3, grid_points=60, sims=100, tol=0.1)
    assert old == new
