"""Simultaneous (sup-t) confidence bands for the event study of any estimator.

A pointwise 95 % interval covers each event-time effect with probability 0.95; the band
:math:`\\hat\\theta_e \\pm c\\,\\widehat{se}_e` with the sup-t critical value

.. math::

    c = q_{1-\\alpha}\\Big(\\max_{e} \\frac{|\\hat\\theta^*_e - \\hat\\theta_e|}{\\sigma_e}\\Big)

covers the whole path jointly (Montiel Olea & Plagborg-Møller 2019), so statements such as
"the effect is positive in every year after joining" or "no lead differs from zero" have the
stated level. :math:`c` depends only on the correlation of the estimates and is computed

- from the unit-level influence functions (``result.event_influence``) by the multiplier
  bootstrap over clusters when the estimator provides them (Callaway & Sant'Anna 2021,
  Algorithm 1): :math:`\\hat\\theta^*_b - \\hat\\theta = n^{-1}\\sum_c V_{bc} S_c`, standardised by
  the exact standard deviation of the draws :math:`\\sigma_e = \\sqrt{\\sum_c S_{ce}^2}/n`;
- otherwise from the covariance ``result.vcov``: draws :math:`Z \\sim N(0, R)` with :math:`R`
  the correlation matrix of the estimates, :math:`c` the :math:`1-\\alpha` quantile of
  :math:`\\max_e |Z_e|` (the plug-in sup-t band of Montiel Olea & Plagborg-Møller 2019, section
  3).

The band applies :math:`c` to the reported standard errors; as R's ``did``, :math:`c` is never
below the pointwise :math:`z_{1-\\alpha/2}`. The normalised reference period (no standard error)
gets no band. For the joint Wald pre-test of the leads use
:func:`finsam_eval.inference.pretrends.pretrend_wald`.

References
----------
Montiel Olea, J. L., & Plagborg-Møller, M. (2019). Simultaneous confidence bands: theory,
implementation, and an application to SVARs. Journal of Applied Econometrics 34(1), 1–17.
Callaway, B., & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
Journal of Econometrics 225(2), 200–230.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import pandas as pd

from finsam_eval.core.distributions import norm_ppf
from finsam_eval.core.multiplier import cluster_sums, draw_multipliers
from finsam_eval.core.vocabulary import renamed_options
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import check_alpha, check_count, check_seed

__all__ = ["add_bands", "sup_t_critical_value"]

_BLOCK = 512


def _influence_critical(
    influence: np.ndarray,
    cluster: np.ndarray | None,
    alpha: float,
    draws: int,
    rng: np.random.Generator,
    multiplier: str,
) -> float:
    n = influence.shape[0]
    sums = cluster_sums(influence, cluster) / n
    sd = np.sqrt(np.einsum("ce,ce->e", sums, sums))
    if not np.all(sd > 0):
        raise ValueError("an influence function column is identically zero")
    t_max = np.empty(draws)
    for start in range(0, draws, _BLOCK):
        stop = min(start + _BLOCK, draws)
        v = draw_multipliers(rng, (stop - start, sums.shape[0]), multiplier)
        t_max[start:stop] = np.max(np.abs(v @ sums) / sd, axis=1)
    return float(np.quantile(t_max, 1 - alpha, method="inverted_cdf"))


def _gaussian_critical(
    vcov: np.ndarray, alpha: float, draws: int, rng: np.random.Generator
) -> float:
    sd = np.sqrt(np.diag(vcov))
    corr = vcov / np.outer(sd, sd)
    # eigen-decomposition instead of Cholesky: event-study covariances are often singular
    values, vectors = np.linalg.eigh(corr)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    t_max = np.empty(draws)
    for start in range(0, draws, _BLOCK):
        stop = min(start + _BLOCK, draws)
        z = rng.standard_normal((stop - start, len(sd))) @ root.T
        t_max[start:stop] = np.max(np.abs(z), axis=1)
    return float(np.quantile(t_max, 1 - alpha, method="inverted_cdf"))


@renamed_options(draws="reps", weights="multiplier")
def sup_t_critical_value(
    res: EstimationResult,
    alpha: float = 0.05,
    reps: int = 10_000,
    seed: int | None = 0,
    cluster: np.ndarray | Mapping | pd.Series | None = None,
    source: str = "auto",
    multiplier: str = "rademacher",
) -> tuple[float, str, np.ndarray]:
    """The sup-t critical value of an event study and how it was computed.

    ``reps`` draws of the multiplier bootstrap (distribution ``multiplier``) on the influence
    functions, or of the Gaussian with the event study's ``vcov``; old names ``draws=`` and
    ``weights=`` warn. Other arguments as :func:`add_bands`.

    Returns
    -------
    critical, source, event_times
        The critical value (before flooring at the pointwise quantile), "influence" or "vcov",
        and the event times it covers.
    """
    es = res.event_study
    se = es["se"].to_numpy(float)
    usable = np.isfinite(se) & (se > 0)
    if "reference" in es.columns:
        usable &= ~es["reference"].astype(bool).to_numpy()
    times = es["event_time"].to_numpy(int)[usable]
    if not usable.any():
        raise ValueError("no event-study coefficient has a standard error")
    rng = np.random.default_rng(seed)
    if source not in ("auto", "influence", "vcov"):
        raise ValueError(f"source must be 'auto', 'influence' or 'vcov', got {source!r}")
    have_influence = res.event_influence is not None
    if source == "influence" and not have_influence:
        raise ValueError(f"method {res.method!r} provides no event-study influence functions")
    if have_influence and source != "vcov":
        labels = _cluster_labels(res, cluster)
        crit = _influence_critical(res.event_influence[:, usable], labels, alpha, reps, rng,
                                   multiplier)  # fmt: skip
        return crit, "influence", times
    vcov = res.vcov.loc[times, times].to_numpy(float)
    return _gaussian_critical(vcov, alpha, reps, rng), "vcov", times


def _cluster_labels(
    res: EstimationResult, cluster: np.ndarray | Mapping | pd.Series | None
) -> np.ndarray | None:
    """Cluster of each row of ``event_influence``: an array in that order, or a unit → cluster
    mapping resolved through ``unit_labels``; None = one multiplier per row."""
    if cluster is None:
        return None
    n = res.event_influence.shape[0]
    if isinstance(cluster, Mapping | pd.Series):
        if res.unit_labels is None:
            raise ValueError("a unit → cluster mapping needs result.unit_labels")
        if res.influence_level == "cluster":
            # the estimator summed its influence functions by cluster (stacked, dCDH): its rows
            # are the clusters already, labelled by unit_labels
            return np.asarray(res.unit_labels)
        mapped = pd.Series(cluster).reindex(res.unit_labels)
        if mapped.isna().any():
            raise ValueError(
                "cluster mapping misses units: " + str(list(mapped.index[mapped.isna()][:5]))
            )
        return mapped.to_numpy()
    labels = np.asarray(cluster)
    if len(labels) != n:
        raise ValueError(f"cluster has {len(labels)} labels for {n} influence-function rows")
    return labels


@renamed_options(draws="reps", weights="multiplier")
def add_bands(
    res: EstimationResult,
    alpha: float = 0.05,
    reps: int = 10_000,
    seed: int | None = 0,
    *,
    cluster: np.ndarray | Mapping | pd.Series | None = None,
    source: str = "auto",
    multiplier: str = "rademacher",
) -> EstimationResult:
    """A copy of ``res`` whose event study has a simultaneous band.

    Parameters
    ----------
    res
        Any estimator's result.
    alpha
        1 − joint coverage.
    reps
        Bootstrap or Gaussian draws for the critical value (old name ``draws=``, warns).
    seed
        Seed of the numpy Generator.
    cluster
        Multiplier-bootstrap clusters for the influence-function route: labels in
        ``event_influence`` row order or a unit → cluster mapping (e.g. kommun → län). None:
        one multiplier per row (the unit, or the cluster if the estimator already summed).
    source
        "auto" (influence functions when available, else vcov), "influence" or "vcov".
    multiplier
        Multiplier distribution: "rademacher", "mammen" or "webb" (old name ``weights=``,
        warns: ``weights`` names sampling weights only).

    Returns
    -------
    EstimationResult
        With ``band_lower``/``band_upper`` in ``event_study`` and ``info["band"]``:
        critical_value, pointwise, source, alpha, draws, seed.
    """
    check_alpha(alpha)
    check_count("reps", reps)
    check_seed(seed)
    crit, used, times = sup_t_critical_value(res, alpha, reps, seed, cluster, source, multiplier)
    pointwise = float(norm_ppf(1 - alpha / 2))
    critical = max(crit, pointwise)
    out = copy.copy(res)
    es = res.event_study.copy()
    inside = es["event_time"].isin(times).to_numpy()
    half = critical * es["se"].to_numpy(float)
    es["band_lower"] = np.where(inside, es["estimate"] - half, np.nan)
    es["band_upper"] = np.where(inside, es["estimate"] + half, np.nan)
    out.event_study = es
    out.info = dict(res.info)
    out.info["band"] = {
        "critical_value": critical,
        "sup_t": crit,
        "pointwise": pointwise,
        "source": used,
        "alpha": alpha,
        "draws": reps,
        "seed": seed,
    }
    return out
