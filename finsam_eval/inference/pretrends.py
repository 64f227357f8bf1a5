"""Pre-trend diagnostics: the joint Wald pre-test and its power (Roth 2022).

A pre-test of parallel trends (are the lead coefficients jointly zero?) is routinely reported,
but with ~20 clusters and noisy kommun shares it may have little power against trends that
would matter, and conditioning the analysis on passing it distorts the post-period estimates
(Roth 2022, "Pretest with caution", AER: Insights 4(3)). :func:`pretest_power` quantifies both
for a user-specified hypothesised trend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from finsam_eval.core.distributions import chi2_sf, norm_cdf, norm_ppf
from finsam_eval.core.vocabulary import renamed_options
from finsam_eval.estimators.spec import check_alpha, check_positive_count, check_seed

if TYPE_CHECKING:
    from finsam_eval.estimators.result import EstimationResult

__all__ = ["PretestPower", "pretest_power", "pretrend_wald", "slope_for_power"]


def _event_study_arrays(
    res: EstimationResult, reference: int = -1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event times, estimates and covariance of an event study without the reference period.

    Rows with a missing or zero standard error (the normalised reference) are dropped.
    """
    if not hasattr(res, "event_study"):  # duck-typed: anything with an event study table
        raise TypeError(
            f"takes a result of finsam_eval.estimate (EstimationResult), got {type(res).__name__}"
        )
    es = res.event_study
    times = es["event_time"].to_numpy(dtype=int)
    se = es["se"].to_numpy(dtype=float)
    keep = (times != reference) & np.isfinite(se) & (se > 0)
    keep &= np.isin(times, np.asarray(res.vcov.index, dtype=int))
    times = np.sort(times[keep])
    est = es.set_index("event_time").loc[times, "estimate"].to_numpy(dtype=float)
    vcov = res.vcov.loc[times, times].to_numpy(dtype=float)
    return times, est, vcov


def pretrend_wald(
    res: EstimationResult, leads: Sequence[int] | None = None, reference: int = -1
) -> pd.Series:
    """Joint Wald test that the lead (pre-period) coefficients are zero.

    ``W = beta_pre' V_pre^{-1} beta_pre ~ chi2(df)`` under parallel trends (and no anticipation),
    ``df = rank(V_pre)``; a generalised inverse is used when ``V_pre`` is singular.

    Parameters
    ----------
    res
        An ``EstimationResult`` (``event_study`` and ``vcov``).
    leads
        Event times to test; default every event time < 0 except ``reference``.

    Returns
    -------
    pandas.Series
        ``W``, ``df``, ``p_value``.
    """
    times, est, vcov = _event_study_arrays(res, reference)
    if leads is not None:
        post = sorted(int(e) for e in leads if e >= 0)
        if post:
            raise ValueError(
                f"leads must be pre-period event times (< 0); {post} are effects after joining"
            )
    sel = times < 0 if leads is None else np.isin(times, np.asarray(leads, dtype=int))
    if leads is not None and sel.sum() != len(set(leads)):
        missing = sorted(set(leads) - set(times[sel].tolist()))
        raise ValueError(f"leads {missing} are not in the event study (or are the reference)")
    if not sel.any():
        raise ValueError("no lead coefficients to test")
    b, v = est[sel], vcov[np.ix_(sel, sel)]
    df = int(np.linalg.matrix_rank(v))
    w = float(b @ np.linalg.pinv(v, hermitian=True) @ b)
    return pd.Series({"W": w, "df": df, "p_value": float(chi2_sf(w, df))})


@dataclass
class PretestPower:
    """Power of the pre-test against a hypothesised trend and its consequences (Roth 2022).

    Attributes
    ----------
    power
        Probability that the pre-test rejects if the trend is ``trend``.
    p_pass
        ``1 - power``.
    bayes_factor
        ``P(pass | trend) / P(pass | no trend)``: how much passing the pre-test should change the
        odds of the trend against parallel trends.
    likelihood_ratio
        Density of the observed leads under the trend over that under parallel trends.
    table
        One row per event time: ``event_time``, ``trend`` (the hypothesised ``delta``),
        ``mean_if_pass`` (``E[beta_hat - tau | pass]``, i.e. the bias of the coefficient
        conditional on passing the pre-test; for post periods the bias of the effect estimate),
        ``bias_change`` (``mean_if_pass - trend``, the distortion from pre-testing).
    """

    power: float
    p_pass: float
    bayes_factor: float
    likelihood_ratio: float
    table: pd.DataFrame

    def summary(self) -> str:
        head = (
            f"Power of the pre-test: {self.power:.4g} (Bayes factor {self.bayes_factor:.4g}, "
            f"likelihood ratio {self.likelihood_ratio:.4g})"
        )
        return head + "\n" + self.table.to_string(index=False, float_format=lambda v: f"{v:.5g}")


def _trend_vector(
    trend: float | Sequence[float] | Mapping[int, float] | pd.Series,
    times: np.ndarray,
    reference: int,
) -> np.ndarray:
    """The hypothesised ``delta`` at ``times``: a slope (linear, 0 at ``reference``) or values."""
    if np.isscalar(trend):
        return float(trend) * (times - reference).astype(float)
    if isinstance(trend, Mapping | pd.Series):
        series = pd.Series(trend)
        series.index = series.index.astype(int)
        missing = sorted(set(times.tolist()) - set(series.index.tolist()))
        if missing:
            raise ValueError(f"trend has no value for event times {missing}")
        return series.loc[times].to_numpy(dtype=float)
    vec = np.asarray(trend, dtype=float).ravel()
    if len(vec) != len(times):
        raise ValueError(
            f"trend has {len(vec)} values, the event study {len(times)} event times "
            f"({times.tolist()}, reference {reference} excluded)"
        )
    return vec


def _pass_probability(mean: np.ndarray, vcov: np.ndarray, crit: float) -> float:
    """``P(|b_t / se_t| <= crit for all t)`` for ``b ~ N(mean, vcov)`` (Genz's algorithm)."""
    se = np.sqrt(np.diag(vcov))
    if len(mean) == 1:
        z = mean[0] / se[0]
        return float(norm_cdf(crit - z) - norm_cdf(-crit - z))
    from scipy import stats  # here: the pre-test's Wald form does not need scipy.stats (issue 16)

    corr = vcov / np.outer(se, se)
    lower = np.full(len(mean), -crit)
    # fixed seed: Genz's quasi-Monte Carlo integration is otherwise random in the 6th digit
    return float(
        stats.multivariate_normal.cdf(
            -lower, mean / se, corr, allow_singular=True, maxpts=200_000 * len(mean),
            abseps=1e-7, releps=1e-7, lower_limit=lower, rng=0,
        )
    )  # fmt: skip


@renamed_options(n_sims="reps")
def pretest_power(
    res: EstimationResult,
    trend: float | Sequence[float] | Mapping[int, float] | pd.Series,
    alpha: float = 0.05,
    *,
    reference: int = -1,
    reps: int = 200_000,
    seed: int = 0,
) -> PretestPower:
    """Power of the pre-test against a hypothesised trend, and the bias after passing it.

    The pre-test is Roth's (2022): it rejects when any lead coefficient is individually
    significant, ``max_t |beta_hat_t / se_t| > z_{1 - alpha/2}`` over pre-periods ``t``. Under a
    hypothesised differential trend ``delta`` (and no effect before treatment),
    ``beta_hat ~ N(tau + delta, Sigma)`` with ``tau_pre = 0``. Then

    * power ``= 1 - P(pass)``, the rectangle probability of the leads (Genz's algorithm);
    * the bias conditional on passing is ``E[beta_hat - tau | pass]``: for the leads the mean of
      a normal truncated to the acceptance rectangle, estimated by simulation with ``n_sims``
      draws and a fixed ``seed`` (exact truncated-normal moments for a single lead); for the
      post periods ``delta_post + Sigma_post,pre Sigma_pre^{-1} (E[beta_pre | pass] -
      delta_pre)``, exact given the pre-period mean because ``beta_post`` is linear in
      ``beta_pre`` plus independent noise.

    Parameters
    ----------
    res
        An ``EstimationResult`` (``event_study`` and ``vcov``).
    trend
        A slope ``gamma`` (``delta_t = gamma * (t - reference)``, Roth's linear trend) or the
        values of ``delta`` at every event time of the event study (sequence in event-time order,
        or a mapping/Series indexed by event time).

    References
    ----------
    Roth, J. (2022). Pretest with caution: event-study estimates after testing for parallel
    trends. American Economic Review: Insights 4(3), 305-322.
    """
    check_alpha(alpha)
    check_positive_count("reps", reps)
    check_seed(seed)
    n_sims = reps  # the body's name for it
    times, est, vcov = _event_study_arrays(res, reference)
    delta = _trend_vector(trend, times, reference)
    pre = times < 0
    if not pre.any():
        raise ValueError("no lead coefficients: the pre-test is not defined")
    crit = norm_ppf(1 - alpha / 2)
    v_pre = vcov[np.ix_(pre, pre)]
    se_pre = np.sqrt(np.diag(v_pre))
    d_pre = delta[pre]

    from scipy import stats  # as in _pass_probability

    p_pass = _pass_probability(d_pre, v_pre, crit)
    p_pass_null = _pass_probability(np.zeros_like(d_pre), v_pre, crit)
    dist_trend = stats.multivariate_normal(d_pre, v_pre, allow_singular=True)
    dist_null = stats.multivariate_normal(np.zeros_like(d_pre), v_pre, allow_singular=True)
    lr = float(np.exp(dist_trend.logpdf(est[pre]) - dist_null.logpdf(est[pre])))

    if pre.sum() == 1:
        lo = (-crit * se_pre[0] - d_pre[0]) / se_pre[0]
        hi = (crit * se_pre[0] - d_pre[0]) / se_pre[0]
        mean_pre = d_pre + se_pre * stats.truncnorm.mean(lo, hi)
    else:
        rng = np.random.default_rng(seed)
        draws = rng.multivariate_normal(d_pre, v_pre, size=n_sims, method="cholesky")
        passed = np.all(np.abs(draws) <= crit * se_pre, axis=1)
        if not passed.any():
            raise ValueError("the pre-test (almost) never passes under this trend")
        mean_pre = draws[passed].mean(axis=0)
    # regression of all coefficients on the leads: exact conditional mean given E[pre | pass]
    coef = np.linalg.lstsq(v_pre, vcov[pre, :], rcond=None)[0]  # (n_pre, n)
    mean_all = delta + (mean_pre - d_pre) @ coef
    mean_all[pre] = mean_pre

    table = pd.DataFrame(
        {
            "event_time": times,
            "trend": delta,
            "mean_if_pass": mean_all,
            "bias_change": mean_all - delta,
        }
    )
    return PretestPower(
        power=1.0 - p_pass,
        p_pass=p_pass,
        bayes_factor=p_pass / p_pass_null,
        likelihood_ratio=lr,
        table=table,
    )


def slope_for_power(
    res: EstimationResult, power: float = 0.8, alpha: float = 0.05, reference: int = -1
) -> float:
    """The positive linear-trend slope against which the pre-test has the given power.

    Roth's (2022) benchmark: a trend ``delta_t = gamma (t - reference)`` with ``gamma`` this
    large would be detected with probability ``power``; smaller trends could hide in the data.
    """
    times, _, vcov = _event_study_arrays(res, reference)
    pre = times < 0
    v_pre = vcov[np.ix_(pre, pre)]
    crit = norm_ppf(1 - alpha / 2)
    size = 1.0 - _pass_probability(np.zeros(pre.sum()), v_pre, crit)
    if power <= size:
        raise ValueError(f"power must exceed the size of the pre-test ({size:.4g})")
    slope_pre = (times[pre] - reference).astype(float)

    def gap(gamma: float) -> float:
        return 1.0 - _pass_probability(gamma * slope_pre, v_pre, crit) - power

    hi = float(np.sqrt(np.diag(v_pre)).max())
    while gap(hi) < 0:
        hi *= 2.0
    from scipy import optimize  # as in _pass_probability

    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-10 * hi))
