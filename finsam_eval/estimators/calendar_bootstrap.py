"""Sampling variance of an estimate pooled over outcome-imputed calendars, by bootstrap.

Rubin's total variance :math:`T = \\bar U + (1 + M^{-1})B` treats the imputation error of the
pooled estimate :math:`\\bar Q - Q^*` (:math:`Q^*` the estimator on the true calendar) as
uncorrelated with the complete-data error :math:`Q^* - \\theta`. With outcome-informed
calendars it is not: the imputed calendars move the estimate back against the noise, the two
errors are negatively correlated, and :math:`T` overstates the variance (docs/methods.md
measures it). This module estimates the variance of the whole procedure (impute the
calendars, fit the estimator on each, average) by a parametric wild bootstrap:

1. Each bootstrap data set :math:`b` takes one of the analysis' imputed calendars
   :math:`g^{(m)}` (in turn, :math:`m = b \\bmod M`) and its chain's last draw of the working
   model as the truth: fitted values :math:`\\hat y^{(m)}_{it} = \\hat\\alpha_i + \\lambda_t
   + \\tau_{t - g_i}` (:class:`~finsam_eval.estimators.calendars.ChainState`), true
   event-time effects :math:`\\tau^{(m)}_e` (0 before treatment).
2. Its outcomes are :math:`y^*_{it} = \\hat y^{(m)}_{it} + v_i c\\,(y_{it} -
   \\hat y^{(m)}_{it})` with one Rademacher sign :math:`v_i` per kommun, so each kommun keeps
   its residual series' variance and serial correlation (the wild cluster bootstrap; Cameron,
   Gelbach & Miller 2008); :math:`c = \\sqrt{T/(T-1)}` restores the degree of freedom the
   kommun effect takes from each series.
3. ``chains`` calendars are imputed from the analysis' prior start calendars on :math:`y^*`
   (the same chains as the analysis), the estimator is fitted on each, and the pooled
   estimate :math:`\\bar Q^*_b` and the between-chain variance :math:`B^*_b` are kept.

The variance is :math:`\\widehat{\\mathrm{Var}}_b(\\bar Q^*_b - \\tau^{(m_b)}) -
(C^{-1} - M^{-1})\\,\\overline{B^*}` (C chains per bootstrap data set against the analysis'
M: the extra imputation noise of the smaller average is taken off), floored at zero.
Intervals use :math:`t` with (replications − 1) degrees of freedom. Only event-study
quantities are bootstrapped: their truth in the bootstrap world is :math:`\\tau_e` whatever
weights the estimator gives the cohorts, since the working model's effect path is common to
all cohorts.

References
----------
Cameron, A. C., Gelbach, J. B., & Miller, D. L. (2008). Bootstrap-based improvements for
inference with clustered errors. Review of Economics and Statistics 90(3), 414–427.
Rubin, D. B. (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
Meng, X.-L. (1994). Multiple-imputation inferences with uncongenial sources of input.
Statistical Science 9(4), 538–558.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finsam_eval.estimators.calendars import ChainState, augment_with_state

__all__ = ["CalendarBootstrap", "VARIANCE_MODES", "calendar_bootstrap", "check_variance"]

#: Variances of :func:`~finsam_eval.estimators.calendars.estimate_over_calendars`.
VARIANCE_MODES = ("rubin", "bootstrap")

#: Options of the bootstrap variance and their defaults.
BOOTSTRAP_DEFAULTS: dict[str, int] = {"replications": 40, "chains": 2, "seed": 0}

#: Signature of the pooling callback: (outcomes (n, T), calendars (C, n)) -> estimates (C, K).
PoolCallback = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CalendarBootstrap:
    """Bootstrap variance of pooled event-study estimates.

    Attributes
    ----------
    se
        Standard errors (K,) of the pooled estimates.
    bias
        Mean of pooled minus true effect over the bootstrap data sets (K,): the procedure's
        bias in the bootstrap world (reported, not subtracted).
    replications, chains
        Bootstrap data sets and imputed calendars per data set.
    """

    se: np.ndarray
    bias: np.ndarray
    replications: int
    chains: int

    @property
    def df(self) -> int:
        """Degrees of freedom of the t intervals: replications − 1."""
        return self.replications - 1


def check_variance(variance: str, options: Mapping[str, Any] | None, imputation: str) -> dict:
    """Validate ``variance`` and its options; return the options with their defaults."""
    if variance not in VARIANCE_MODES:
        raise ValueError(f"variance must be one of {VARIANCE_MODES}, got {variance!r}")
    if variance == "rubin":
        if options:
            raise ValueError("variance_options apply only to variance='bootstrap'")
        return {}
    if imputation != "outcome":
        raise ValueError(
            "variance='bootstrap' re-imputes the calendars on each bootstrap data set and "
            f"needs imputation='outcome', got imputation={imputation!r}"
        )
    options = dict(options or {})
    unknown = sorted(set(options) - set(BOOTSTRAP_DEFAULTS))
    if unknown:
        raise ValueError(
            f"unknown variance_options {unknown}; allowed: {sorted(BOOTSTRAP_DEFAULTS)}"
        )
    merged = {**BOOTSTRAP_DEFAULTS, **options}
    for key, low in (("replications", 2), ("chains", 2), ("seed", 0)):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(
                f"variance_options[{key!r}] must be an integer >= {low}, got {value!r}"
            )
    return merged


def calendar_bootstrap(
    y: np.ndarray,
    years: np.ndarray,
    start: np.ndarray,
    units: tuple[np.ndarray, np.ndarray, np.ndarray],
    imputed: np.ndarray,
    state: ChainState,
    pool: PoolCallback,
    event_times: np.ndarray,
    *,
    replications: int = 40,
    chains: int = 2,
    rng: np.random.Generator,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    chain_options: Mapping[str, Any] | None = None,
) -> CalendarBootstrap:
    """Bootstrap standard errors of an estimate pooled over outcome-imputed calendars.

    Parameters
    ----------
    y
        Outcomes (n, T) of the analysis.
    years
        Periods (T,).
    start
        The prior calendars (M, n) the analysis' chains started from.
    units
        Join units of those chains (``labels``, ``lo``, ``hi`` of ``join_units``).
    imputed
        The analysis' imputed calendars (M, n), the chains' last states.
    state
        The chains' last parameter draws (:class:`ChainState`).
    pool
        ``pool(y_star, calendars)``: the estimator's event-study estimates (C, K) at
        ``event_times`` on each calendar (NaN where a calendar lacks the event time).
    event_times
        Event times (K,) the estimates refer to.
    replications, chains
        Bootstrap data sets, and calendars imputed on each (at least 2, for the between-chain
        variance).
    rng
        numpy Generator of the signs and the chains.
    counts, chain_options
        As the analysis' chains: count constraints, and ``horizon``, ``iterations``,
        ``swaps``, ``shift_steps`` of :func:`augment_calendars`.

    Returns
    -------
    CalendarBootstrap
    """
    y = np.asarray(y, dtype=float)
    imputed = np.asarray(imputed)
    n_draws, n = imputed.shape
    event_times = np.asarray(event_times)
    pick = np.arange(replications) % n_draws
    fitted = state.fitted(y, imputed)  # (M, n, T)
    n_t = y.shape[1]
    # the kommun effect takes one degree of freedom from each kommun's T residuals: rescale
    # them so that their variance is unbiased for the errors' (as HC1/CR1 do for sandwiches)
    residual = (y[None] - fitted) * np.sqrt(n_t / (n_t - 1))
    truth = state.effects(event_times)[pick]  # (R, K)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(replications, n, 1))
    y_star = fitted[pick] + signs * residual[pick]  # (R, n, T)
    # every bootstrap data set gets `chains` chains from the analysis' prior starts
    starts = np.arange(replications * chains) % start.shape[0]
    labels, lo, hi = (np.asarray(u)[starts] for u in units)
    cohorts, _ = augment_with_state(
        np.repeat(y_star, chains, axis=0), years, np.asarray(start)[starts], labels, lo, hi,
        rng=rng, counts=counts, **dict(chain_options or {}),
    )  # fmt: skip
    estimates = np.stack(
        [pool(y_star[b], cohorts[b * chains : (b + 1) * chains]) for b in range(replications)]
    )  # (R, C, K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # event times absent from a data set
        pooled = np.nanmean(estimates, axis=1)
        between = np.nanmean(np.nanvar(estimates, axis=1, ddof=1), axis=0)
        deviation = pooled - truth
        variance = np.nanvar(deviation, axis=0, ddof=1) - (1 / chains - 1 / n_draws) * between
        bias = np.nanmean(deviation, axis=0)
    return CalendarBootstrap(
        se=np.sqrt(np.maximum(variance, 0.0)),
        bias=bias,
        replications=replications,
        chains=chains,
    )
