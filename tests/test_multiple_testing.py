"""Multiple-testing adjustments: statsmodels parity, properties, Romano–Wolf checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from finsam_eval.inference.multiple_testing import adjust_pvalues, romano_wolf

P_VALUES = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=30)


# The published definitions, written out one hypothesis at a time (independent of the
# vectorised statsmodels code the library calls).
def _bonferroni_definition(p):
    return [min(1.0, len(p) * x) for x in p]


def _holm_definition(p):
    """Holm (1979): p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j)), 1-based ranks."""
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order, start=1):
        running = max(running, min(1.0, (m - rank + 1) * p[i]))
        out[i] = running
    return out


def _bh_definition(p):
    """Benjamini & Hochberg (1995): p_(i) -> min_{j >= i} min(1, m p_(j) / j)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    out = [0.0] * m
    for rank, i in enumerate(order, start=1):
        out[i] = min(min(1.0, m * p[j] / k) for k, j in enumerate(order, start=1) if k >= rank)
    return out


DEFINITIONS = {"holm": _holm_definition, "bonferroni": _bonferroni_definition, "bh": _bh_definition}


@pytest.mark.parametrize("method", ["holm", "bonferroni", "bh"])
@settings(max_examples=60, deadline=None)
@given(p=P_VALUES)
def test_matches_published_definition(method, p):
    table = pd.DataFrame({"p_value": p})
    ours = adjust_pvalues(table, method=method)["p_adjusted"].to_numpy()
    np.testing.assert_allclose(ours, DEFINITIONS[method](p), rtol=1e-12, atol=1e-15)


def test_bh_rejects_as_in_the_1995_paper():
    """Benjamini & Hochberg (1995, section 4.1): the 15 p-values of the worked example; at
    q = 0.05 the step-up procedure rejects the four smallest (Bonferroni at 0.05: three)."""
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459]
    p += [0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000]
    table = pd.DataFrame({"p_value": p})
    bh = adjust_pvalues(table, method="bh")["p_adjusted"].to_numpy()
    assert (bh <= 0.05).tolist() == [True] * 4 + [False] * 11
    bonf = adjust_pvalues(table, method="bonferroni")["p_adjusted"].to_numpy()
    assert (bonf <= 0.05).tolist() == [True] * 3 + [False] * 12


@pytest.mark.parametrize("method", ["holm", "bonferroni", "bh"])
@settings(max_examples=60, deadline=None)
@given(p=P_VALUES)
def test_bounds_and_monotonicity(method, p):
    p = np.asarray(p)
    adj = adjust_pvalues(pd.DataFrame({"p_value": p}), method=method)["p_adjusted"].to_numpy()
    assert np.all(adj >= p - 1e-15) and np.all(adj <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-15)  # order of the raw p-values is kept


def test_families_are_adjusted_separately_and_nan_rows_kept():
    table = pd.DataFrame(
        {
            "outcome": ["sa"] * 3 + ["sjukpenning"] * 3,
            "p_value": [0.01, 0.02, np.nan, 0.03, 0.04, 0.5],
        }
    )
    out = adjust_pvalues(table, "holm", family_cols=["outcome"])
    np.testing.assert_allclose(out["p_adjusted"].iloc[:2], [0.02, 0.02])
    assert np.isnan(out["p_adjusted"].iloc[2])
    np.testing.assert_allclose(out["p_adjusted"].iloc[3:], _holm_definition([0.03, 0.04, 0.5]))
    assert "p_adjusted" not in table.columns  # the input is not modified


def _romano_wolf_brute_force(t_obs: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The textbook step-down loop, one hypothesis at a time."""
    t_abs, d_abs = np.abs(t_obs), np.abs(draws)
    order = np.argsort(-t_abs, kind="stable")
    out = np.empty(len(t_abs))
    running = 0.0
    for k, j in enumerate(order):
        remaining = order[k:]
        max_stat = d_abs[:, remaining].max(axis=1)
        p = (1 + np.sum(max_stat >= t_abs[j])) / (len(draws) + 1)
        running = max(running, p)
        out[j] = running
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(1, 8))
def test_romano_wolf_matches_brute_force(seed, m):
    rng = np.random.default_rng(seed)
    corr = 0.5 * np.ones((m, m)) + 0.5 * np.eye(m)
    draws = rng.multivariate_normal(np.zeros(m), corr, size=300)
    t_obs = rng.normal(size=m) * 2
    np.testing.assert_allclose(romano_wolf(t_obs, draws), _romano_wolf_brute_force(t_obs, draws))


def test_romano_wolf_from_table_with_estimate_draws():
    rng = np.random.default_rng(1)
    est = np.array([0.3, -0.1, 0.05, 0.2])
    se = np.array([0.1, 0.1, 0.05, 0.2])
    boot = est + se * rng.normal(size=(999, 4))  # bootstrap estimates, not centred
    table = pd.DataFrame({"estimate": est, "se": se, "p_value": [0.01, 0.3, 0.3, 0.3]})
    out = adjust_pvalues(table, "romano_wolf", draws=boot, draws_kind="estimate")
    expected = romano_wolf(est / se, (boot - est) / se)
    np.testing.assert_allclose(out["p_adjusted"], expected)
    assert np.all(out["p_adjusted"] >= 0) and np.all(out["p_adjusted"] <= 1)


def test_romano_wolf_with_independent_draws_is_close_to_holm_sidak():
    # With independent statistics the max-t step-down equals the Šidák step-down in the limit,
    # a hair less conservative than Holm. 200 000 draws: Monte Carlo error < 0.003.
    rng = np.random.default_rng(2)
    m = 5
    t_obs = np.array([3.2, 2.6, 2.2, 1.0, 0.3])
    draws = rng.normal(size=(200_000, m))
    rw = romano_wolf(t_obs, draws)
    p = 2 * stats.norm.sf(t_obs)
    sidak = multipletests(p, method="holm-sidak")[1]
    holm = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(rw, sidak, atol=0.004)
    assert np.all(rw <= holm + 0.004)


def test_romano_wolf_less_conservative_than_holm_with_correlated_tests():
    rng = np.random.default_rng(3)
    m = 6
    corr = 0.9 * np.ones((m, m)) + 0.1 * np.eye(m)
    draws = rng.multivariate_normal(np.zeros(m), corr, size=20_000)
    t_obs = np.array([2.4, 2.3, 2.2, 2.1, 2.0, 1.9])
    p = 2 * stats.norm.sf(t_obs)
    assert np.all(romano_wolf(t_obs, draws) < multipletests(p, method="holm")[1])


def test_romano_wolf_controls_fwer_under_the_null():
    # 200 replications of 6 correlated tests, all nulls true, 499 bootstrap draws from the
    # estimated (here: true) joint distribution. FWER at 5 % within 2.5 binomial sd of α.
    rng = np.random.default_rng(4)
    m, reps, alpha = 6, 200, 0.05
    corr = 0.6 * np.ones((m, m)) + 0.4 * np.eye(m)
    chol = np.linalg.cholesky(corr)
    any_rejection = 0
    for _ in range(reps):
        t_obs = chol @ rng.normal(size=m)
        draws = rng.normal(size=(499, m)) @ chol.T
        any_rejection += np.any(romano_wolf(t_obs, draws) <= alpha)
    assert any_rejection / reps <= alpha + 2.5 * np.sqrt(alpha * (1 - alpha) / reps)


def test_input_errors():
    table = pd.DataFrame({"p_value": [0.1, 0.2]})
    with pytest.raises(ValueError, match="draws"):
        adjust_pvalues(table, "romano_wolf")
    with pytest.raises(ValueError, match="shape"):
        adjust_pvalues(table, "romano_wolf", draws=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="method"):
        adjust_pvalues(table, "sidak")
    with pytest.raises(ValueError, match="outside"):
        adjust_pvalues(pd.DataFrame({"p_value": [1.5]}), "holm")


def test_romano_wolf_counts_ties_as_exceedances():
    # p = (1 + #{b : max* >= |t|}) / (B + 1) with ">=": hand-counted on integer draws where the
    # observed statistic ties bootstrap maxima (a ">" would give 2/5 and 1/5 instead)
    draws = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 2.0], [2.0, 0.0]])
    t_obs = np.array([3.0, 2.0])
    # hypothesis 1 (|t| = 3): maxima over both columns are 1, 2, 3, 2 -> one tie -> 2/5
    # hypothesis 2 (|t| = 2): maxima over column 2 alone are 0, 1, 2, 0 -> one tie -> 2/5,
    # then the step-down running maximum keeps 2/5
    np.testing.assert_allclose(romano_wolf(t_obs, draws), [2 / 5, 2 / 5])
    np.testing.assert_allclose(romano_wolf(np.array([2.0]), draws[:, :1]), [4 / 5])


def test_romano_wolf_t_from_p_fallback_matches_estimate_and_se():
    # without estimate/se columns the observed |t| is recovered as the normal quantile of p/2;
    # a table whose est/se give exactly those t must get the same adjusted p-values
    rng = np.random.default_rng(5)
    p = np.array([0.001, 0.02, 0.2, 0.6])
    t = stats.norm.isf(p / 2)
    draws = rng.standard_normal((499, 4))
    only_p = pd.DataFrame({"p_value": p})
    with_se = pd.DataFrame({"p_value": p, "estimate": 2 * t, "se": np.full(4, 2.0)})
    fallback = adjust_pvalues(only_p, "romano_wolf", draws=draws)
    direct = adjust_pvalues(with_se, "romano_wolf", draws=draws)
    adj = [c for c in fallback.columns if c not in only_p.columns]
    assert adj, "adjust_pvalues added no column"
    np.testing.assert_allclose(fallback[adj].to_numpy(float), direct[adj].to_numpy(float))
    expected = [(1 + np.sum(np.abs(draws)[:, k:].max(axis=1) >= t[k])) / 500 for k in range(4)]
    np.testing.assert_allclose(fallback[adj[0]].to_numpy(float), np.maximum.accumulate(expected))
