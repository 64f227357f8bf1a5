"""Pre-trend Wald test and Roth (2022) power / conditional bias."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from finsam_eval.estimators.result import EstimationResult
from finsam_eval.inference.pretrends import pretest_power, pretrend_wald, slope_for_power


def _result(times, estimate, vcov, reference=-1) -> EstimationResult:
    """An event study with the normalised reference row (estimate 0, se 0) included."""
    times = np.asarray(times)
    se = np.sqrt(np.diag(vcov))
    es = pd.DataFrame({"event_time": times, "estimate": estimate, "se": se})
    ref = pd.DataFrame({"event_time": [reference], "estimate": [0.0], "se": [0.0]})
    es = pd.concat([es, ref]).sort_values("event_time", ignore_index=True)
    for col in ("ci_lower", "ci_upper", "p_value"):
        es[col] = np.nan
    v = pd.DataFrame(vcov, index=times, columns=times)
    return EstimationResult("test", es, pd.Series({"estimate": 0.0}), v)


def _example(seed=0):
    rng = np.random.default_rng(seed)
    times = np.array([-4, -3, -2, 0, 1, 2])
    L = rng.normal(size=(6, 6)) * 0.1
    vcov = L @ L.T + 0.01 * np.eye(6)
    est = rng.multivariate_normal(np.zeros(6), vcov)
    return times, est, vcov


def test_wald_matches_direct_formula():
    times, est, vcov = _example()
    res = _result(times, est, vcov)
    out = pretrend_wald(res)
    pre = times < 0
    w = est[pre] @ np.linalg.solve(vcov[np.ix_(pre, pre)], est[pre])
    assert out["W"] == pytest.approx(w, rel=1e-10)
    assert out["df"] == 3
    assert out["p_value"] == pytest.approx(stats.chi2.sf(w, 3), rel=1e-10)
    one = pretrend_wald(res, leads=[-2])
    assert one["W"] == pytest.approx(est[2] ** 2 / vcov[2, 2], rel=1e-10)
    with pytest.raises(ValueError, match="leads"):
        pretrend_wald(res, leads=[-1])  # the reference period is not a lead


@pytest.mark.parametrize("delta", [0.0, 0.05, -0.2])
def test_single_lead_power_closed_form(delta):
    # one lead: power = P(|Z + delta / sigma| > z_{1 - alpha / 2})
    times = np.array([-2, 0, 1])
    vcov = np.array([[0.01, 0.004, 0.002], [0.004, 0.02, 0.01], [0.002, 0.01, 0.03]])
    res = _result(times, np.zeros(3), vcov)
    trend = {-2: delta, 0: 0.0, 1: 0.0}
    out = pretest_power(res, trend)
    shift = delta / 0.1
    z = stats.norm.ppf(0.975)
    expected = stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift)
    assert out.power == pytest.approx(expected, abs=1e-12)
    if delta == 0.0:
        assert out.bayes_factor == pytest.approx(1.0)
    # truncated-normal mean of the lead, and the post-period shift through the regression
    lo, hi = (-z * 0.1 - delta) / 0.1, (z * 0.1 - delta) / 0.1
    mean_pre = delta + 0.1 * stats.truncnorm.mean(lo, hi)
    post = out.table.set_index("event_time")["mean_if_pass"]
    assert post[-2] == pytest.approx(mean_pre, abs=1e-12)
    assert post[0] == pytest.approx((mean_pre - delta) * 0.004 / 0.01, abs=1e-12)


def test_conditional_bias_matches_brute_force_simulation():
    times, est, vcov = _example(1)
    res = _result(times, est, vcov)
    slope = 0.08
    out = pretest_power(res, slope, n_sims=200_000, seed=3)
    delta = slope * (times + 1)
    rng = np.random.default_rng(11)
    draws = rng.multivariate_normal(delta, vcov, size=400_000)
    se = np.sqrt(np.diag(vcov))
    pre = times < 0
    passed = np.all(np.abs(draws[:, pre]) <= stats.norm.ppf(0.975) * se[pre], axis=1)
    assert out.power == pytest.approx(1 - passed.mean(), abs=0.004)
    brute = draws[passed].mean(axis=0)
    # Monte Carlo sd of a conditional mean here is < 0.001
    np.testing.assert_allclose(out.table["mean_if_pass"], brute, atol=0.004)
    np.testing.assert_allclose(out.table["trend"], delta)
    assert "Power of the pre-test" in out.summary()


def test_slope_for_power_inverts_power():
    times, est, vcov = _example(2)
    res = _result(times, est, vcov)
    gamma = slope_for_power(res, power=0.8)
    assert pretest_power(res, gamma).power == pytest.approx(0.8, abs=1e-5)
    assert gamma > 0


def test_trend_vector_length_checked():
    times, est, vcov = _example()
    res = _result(times, est, vcov)
    with pytest.raises(ValueError, match="values"):
        pretest_power(res, [0.1, 0.2])
