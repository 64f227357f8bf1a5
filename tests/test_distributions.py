"""finsam_eval.core.distributions against scipy.stats itself (the functions must be
bit-identical: they replace scipy.stats calls whose results are documented)."""

import numpy as np
import pytest
from scipy import stats

from finsam_eval.core import distributions as dist

X = np.r_[-np.inf, -40.0, -3.0, -1e-300, 0.0, 1e-300, np.linspace(0.001, 12, 97), 41.0, 1e6,
          np.inf, np.nan]  # fmt: skip
Q = np.r_[0.0, 1e-12, np.linspace(0.0005, 0.9995, 61), 1 - 1e-12, 1.0, -0.1, 1.1, np.nan]
DFS = [0.5, 1, 2, 2.5, 7, 24, 289, 1e7, np.inf, 0, -1, np.nan]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)  # equal to the last bit, NaN where scipy has NaN


@pytest.mark.parametrize("df", DFS)
def test_t_and_chi2_match_scipy_stats(df):
    _same(dist.t_sf(X, df), stats.t.sf(X, df))
    _same(dist.t_ppf(Q, df), stats.t.ppf(Q, df))
    _same(dist.chi2_sf(X, df), stats.chi2.sf(X, df))


@pytest.mark.parametrize("dfn", [1, 3, 12.5, np.inf, 0, np.nan])
@pytest.mark.parametrize("dfd", [1, 28, 289, np.inf, -2])
def test_f_matches_scipy_stats(dfn, dfd):
    _same(dist.f_sf(X, dfn, dfd), stats.f.sf(X, dfn, dfd))


def test_normal_matches_scipy_stats():
    _same(dist.norm_ppf(Q), stats.norm.ppf(Q))
    _same(dist.norm_isf(Q), stats.norm.isf(Q))
    _same(dist.norm_cdf(X), stats.norm.cdf(X))
    _same(dist.norm_sf(X), stats.norm.sf(X))


def test_scalars_stay_scalars_and_broadcast():
    for ours, theirs in [
        (dist.t_sf(2.1, 28), stats.t.sf(2.1, 28)),
        (dist.t_ppf(0.975, 28), stats.t.ppf(0.975, 28)),
        (dist.chi2_sf(7.3, 4), stats.chi2.sf(7.3, 4)),
        (dist.f_sf(2.2, 4, 289), stats.f.sf(2.2, 4, 289)),
        (dist.norm_ppf(0.975), stats.norm.ppf(0.975)),
    ]:
        assert np.ndim(ours) == 0 and float(ours) == float(theirs)
    grid = np.linspace(0.1, 5, 7)
    dfs = np.array([[3.0], [30.0]])
    _same(dist.t_sf(grid, dfs), stats.t.sf(grid, dfs))
    _same(dist.chi2_sf(grid, dfs), stats.chi2.sf(grid, dfs))
