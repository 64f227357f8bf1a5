"""Wild cluster bootstrap: parity with the wildboottest package, enumeration, FE, inversion."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import wildboottest

from finsam_eval.inference.wild_cluster import wild_cluster_bootstrap


def _data(n_clusters: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cl = rng.integers(0, n_clusters, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = X @ [1.0, 0.1, 0.3] + rng.normal(size=n) + rng.normal(size=n_clusters)[cl]
    return y, X, cl


@pytest.mark.parametrize("impose_null", [True, False])
def test_enumeration_matches_wildboottest_exactly(impose_null):
    # 2^8 = 256 <= B: both enumerate all sign vectors, so the bootstrap distributions are
    # deterministic and must agree to rounding.
    y, X, cl = _data(8, 400, 1)
    ref = wildboottest(y, X, cl, np.array([0, 1.0, 0]), 9999, impose_null)
    res = wild_cluster_bootstrap(y, X, cl, param=1, B=9999, impose_null=impose_null)
    assert res.enumerated and res.n_boot == 256
    np.testing.assert_allclose(res.t_stat, float(np.ravel(ref.t_stat)[0]), rtol=1e-10)
    np.testing.assert_allclose(
        np.sort(np.abs(res.draws)), np.sort(np.abs(ref.t_boot)), rtol=1e-9, atol=1e-10
    )
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-12)


@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_random_draws_agree_with_wildboottest_within_mc_error(weights):
    # G = 21 (as many as län): random draws. Independent Monte Carlo p-values with B = 9999 differ
    # by sd sqrt(2 p (1 - p) / B) <= 0.0071; we allow 4 such sd (<= 0.028).
    y, X, cl = _data(21, 1050, 2)
    ref = wildboottest(y, X, cl, np.array([0, 0, 1.0]), 9999, True, weights)
    res = wild_cluster_bootstrap(y, X, cl, param=2, B=9999, weights=weights, seed=5, r=0.0)
    p = ref.pvalue
    assert abs(res.p_value - p) <= 4 * np.sqrt(2 * max(p * (1 - p), 0.01) / 9999)
    assert res.n_boot == 9999 and not res.enumerated


def test_fixed_effects_absorbed_match_dummies():
    # unit effects nested in clusters and year effects that are not: absorbing them must give
    # the bootstrap of the regression with dummies (wildboottest, enumeration: exact).
    rng = np.random.default_rng(3)
    n_units, n_years, n_cl = 32, 6, 8
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(np.arange(n_years), n_units)
    cl = unit % n_cl
    x = rng.normal(size=len(unit)) + 0.3 * year
    y = 0.2 * x + rng.normal(size=n_units)[unit] + 0.1 * year + rng.normal(size=len(unit))
    dummies = np.column_stack(
        [(unit == u).astype(float) for u in range(n_units)]
        + [(year == t).astype(float) for t in range(1, n_years)]
    )
    X_full = np.column_stack([x, dummies])
    R = np.zeros(X_full.shape[1])
    R[0] = 1.0
    for impose_null in (True, False):
        ref = wildboottest(y, X_full, cl, R, 999, impose_null)
        res = wild_cluster_bootstrap(
            y, x, cl, fe=np.column_stack([unit, year]), param=0, B=999, impose_null=impose_null
        )
        np.testing.assert_allclose(res.t_stat, float(np.ravel(ref.t_stat)[0]), rtol=1e-8)
        np.testing.assert_allclose(
            np.sort(np.abs(res.draws)), np.sort(np.abs(ref.t_boot)), rtol=1e-6, atol=1e-10
        )
        assert res.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_restriction_vector_and_ci_inversion():
    y, X, cl = _data(12, 600, 4)
    res = wild_cluster_bootstrap(y, X, cl, R=[0, 1.0, -1.0], B=999, seed=1, ci=True)
    lo, hi = res.ci
    assert lo < res.estimate < hi
    # at the interval ends the test is on the edge of rejection at 5 %
    for end, inside in ((lo, lo + 0.01 * (hi - lo)), (hi, hi - 0.01 * (hi - lo))):
        assert (
            wild_cluster_bootstrap(y, X, cl, R=[0, 1, -1], r=inside, B=999, seed=1).p_value >= 0.05
        )
        outside = end + (end - res.estimate) * 0.05
        assert (
            wild_cluster_bootstrap(y, X, cl, R=[0, 1, -1], r=outside, B=999, seed=1).p_value < 0.05
        )


def test_size_under_the_null_is_close_to_nominal():
    # small Monte Carlo: 200 data sets with 12 clusters, true coefficient 0; WCR rejection rate
    # at 10 % within 3 binomial sd.
    rng = np.random.default_rng(7)
    rejections = 0
    reps = 200
    for _ in range(reps):
        cl = np.repeat(np.arange(12), 20)
        x = rng.normal(size=240) + rng.normal(size=12)[cl]
        y = rng.normal(size=240) + rng.normal(size=12)[cl]
        X = np.column_stack([np.ones(240), x])
        rejections += wild_cluster_bootstrap(y, X, cl, param=1, B=199, seed=1).p_value < 0.10
    assert abs(rejections / reps - 0.10) <= 3 * np.sqrt(0.1 * 0.9 / reps)


def test_input_errors():
    y, X, cl = _data(5, 50, 0)
    with pytest.raises(ValueError, match="exactly one"):
        wild_cluster_bootstrap(y, X, cl)
    with pytest.raises(ValueError, match="multiplier"):
        wild_cluster_bootstrap(y, X, cl, param=1, multiplier="gauss", reps=10)
    # the old names still work for one release
    with pytest.warns(DeprecationWarning, match="use reps="):
        old = wild_cluster_bootstrap(y, X, cl, param=1, B=99, weights="webb", seed=1)
    new = wild_cluster_bootstrap(y, X, cl, param=1, reps=99, multiplier="webb", seed=1)
    assert old.p_value == new.p_value
