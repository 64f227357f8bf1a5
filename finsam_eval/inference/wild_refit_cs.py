"""Callaway–Sant'Anna aggregates as linear maps of the outcome, for the re-estimating bootstrap.

For a balanced panel every group-time effect and its influence function are linear in the
outcome (:class:`~finsam_eval.estimators.callaway_santanna.GroupTimeMaps`), and every
aggregation :math:`\\theta_h = \\sum_j \\omega_{hj} ATT_j` with influence function
:math:`\\psi_h = \\sum_j \\omega_{hj}\\psi_j + \\sum_j ATT_j\\,\\xi_{hj}` is linear in them:
the weights :math:`\\omega` and the estimation effect of the weights :math:`\\xi` (R did's
``wif``) depend only on cohort sizes and sampling weights. :func:`linear_cs_aggregate`
materialises :math:`e_h` and :math:`k_{gh}` with :math:`\\hat\\theta_h = e_h'y` and
:math:`\\sum_{i \\in g}\\psi_{ih}/n = k_{gh}'y` (so the analytic standard error is
:math:`(\\sum_g (k_{gh}'y)^2)^{1/2}`), reading :math:`\\omega` and :math:`\\xi` off
:func:`~finsam_eval.estimators.aggregation.aggregate_effects` itself (one evaluation per cell
with that cell's effect set to one), and returns them as a
:class:`~finsam_eval.inference.wild_refit.LinearEventStudy` for
:func:`~finsam_eval.inference.wild_refit.refit_bootstrap`, which re-computes the estimate and
its analytic SE on every bootstrap outcome at :math:`O(G^2)` per draw.

Bootstrap model. CS has no regression of its own, so the bootstrap world is the working model
of the imputation estimator (Borusyak, Jaravel & Spiess 2024), which satisfies the
assumptions CS identifies effects under: unit and year effects fitted by weighted least squares
on the untreated observations (never treated, and treated cohorts before
:math:`g - \\delta`), plus a cohort × period effect on each treated observation, the
sampling-weighted mean of its cell's first-stage residuals. Its fitted values follow parallel
trends exactly, so every CS estimator (unconditional, outcome regression, IPW, doubly robust;
any comparison group and base period) returns the cell effects on them exactly, and the
residuals :math:`\\hat u = y - \\hat y` are what is resampled.

* **WCU**: :math:`y^* = \\hat y + v_g\\hat u`, :math:`t^* = (\\hat\\theta^* - e'\\hat y)/se^*`,
  centred at the bootstrap world's estimand.
* **WCR** (null imposed): the cells of the tested aggregate are shifted by one constant so
  that CS on the restricted fitted values is exactly the null value. Treated observations do
  not enter the first stage, and CS's dynamic and calendar aggregations weight cohorts by
  their sampling-weight totals, which are the cells' weights in the working model, so for
  those aggregates the common shift is restricted least squares of the working model. For the
  group aggregation (each cohort's post-period mean) and "simple" it is the null-imposing
  shift of the tested cells. Pre-period keys carry no effect in the working model, so for
  them WCR and WCU coincide at the null 0.

Only balanced panels (the default ``unbalanced="balance"``) are covered. Memory is
:math:`O(G H n)` for :math:`H` tested keys and :math:`n` observations.

References
----------
Borusyak, K., Jaravel, X. & Spiess, J. (2024). Revisiting event-study designs: robust and
efficient estimation. Review of Economic Studies 91(6), 3253-3285.
Callaway, B. & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
Journal of Econometrics 225(2), 200-230.
Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2008). Bootstrap-based improvements for inference
with clustered errors. Review of Economics and Statistics 90(3), 414-427.
Roodman, D., MacKinnon, J. G., Nielsen, M. Ø. & Webb, M. D. (2019). Fast and wild: bootstrap
inference in Stata using boottest. Stata Journal 19(1), 4-60.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finsam_eval.core import group_sums
from finsam_eval.estimators.aggregation import CellInfluence, GroupTimeEffects, aggregate_effects
from finsam_eval.estimators.callaway_santanna import GroupTimeMaps, group_time_maps
from finsam_eval.estimators.event_study import UnitEffectsSolver
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import result_first
from finsam_eval.inference.wild_refit import LinearEventStudy

__all__ = ["MAX_MAP_ENTRIES", "linear_cs_aggregate"]

# G x H x n entries of the influence maps (240 MB) above which the caller must select keys
MAX_MAP_ENTRIES = 30_000_000


def _aggregation_weights(
    maps: GroupTimeMaps, kind: str, options: dict[str, Any]
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Row labels, weights ``omega`` (k, R) and weight-estimation terms ``xi`` (k, n, R).

    The aggregation is linear in the cell effects, so evaluating it with cell ``j``'s effect
    set to one and zero influence functions returns column ``j`` of both.
    """
    k, n = len(maps.group), len(maps.unit_cohort)
    zeros = CellInfluence(n, k, [])  # no blocks: products with it are zeros, computed cheaply
    omega, xi, labels = [], [], None
    for j in range(k):
        att = np.zeros(k)
        att[j] = 1.0
        effects = GroupTimeEffects(
            group=maps.group,
            time=maps.time,
            att=att,
            influence=zeros,
            unit_cohort=maps.unit_cohort,
            unit_weight=maps.unit_weight,
        )
        agg = aggregate_effects(effects, kind, **options)
        if labels is None:
            labels = [*agg.keys.tolist(), "overall"]
        omega.append(np.r_[agg.estimate, agg.overall])
        xi.append(np.column_stack([agg.influence, agg.overall_influence]))
    return labels or ["overall"], np.array(omega), np.array(xi)


def _working_residuals(maps: GroupTimeMaps, anticipation: int) -> np.ndarray:
    """Residuals of the bootstrap model, flattened units × periods (fitted values: y minus them)."""
    n, T = maps.y.shape
    cohort = maps.unit_cohort[:, None]
    period = maps.times[None, :]
    untreated = (cohort == 0) | (period < cohort - anticipation)
    unit = np.repeat(np.arange(n), T)
    year = np.tile(np.arange(T), n)
    w = np.repeat(maps.unit_weight, T)
    solver = UnitEffectsSolver(unit, n, np.where(untreated.ravel(), w, 0.0), [(year, T)])
    alpha, theta = solver.fit(maps.y.ravel())
    first = maps.y.ravel() - solver.predict(alpha, theta)
    # cohort x period cell means of the first-stage residual on treated observations
    treated = ~untreated.ravel() & (w > 0)
    cell = np.where(treated, np.repeat(maps.unit_cohort, T) * (T + 1) + year, -1)
    inverse = np.unique(cell[treated], return_inverse=True)[1]
    means = np.bincount(inverse, (w * first)[treated]) / np.bincount(inverse, w[treated])
    resid = first.copy()
    resid[treated] -= means[inverse]
    # units without untreated observations are fitted exactly: CS never uses them
    resid[~solver.identified()] = 0.0
    return resid


def linear_cs_aggregate(
    result: EstimationResult,
    *legacy: Any,
    kind: str = "dynamic",
    keys: Sequence[Any] | None = None,
    **options: Any,
) -> LinearEventStudy:
    """Materialise the linear maps of a Callaway–Sant'Anna aggregation.

    Parameters
    ----------
    result
        A Callaway–Sant'Anna result (balanced panel); it carries its data. (The old call
        ``linear_cs_aggregate(data, result, kind, keys)`` warns.)
    kind
        Aggregation: "dynamic", "group", "calendar" or "simple" (as ``result.aggregate``).
    keys
        Keys of the aggregation (event times, cohorts, periods) to materialise; None: all.
        The overall effect of the aggregation is always the last row.
    **options
        ``balance_e``, ``min_e``, ``max_e`` as ``result.aggregate``.

    Returns
    -------
    LinearEventStudy
        ``event_times`` holds the row labels (the keys, then "overall"); ``E @ y`` are the
        aggregation's estimates and ``sqrt(sum_g (K @ y)^2)`` its analytic standard errors.
    """
    result, legacy = result_first(result, legacy, "linear_cs_aggregate")
    if legacy:
        kind = legacy[0]
        keys = legacy[1] if len(legacy) > 1 else keys
    maps = group_time_maps(result)
    labels, omega, xi = _aggregation_weights(maps, kind, options)
    if keys is not None:
        missing = [key for key in keys if key not in labels]
        if missing:
            raise ValueError(f"keys {missing} are not in the {kind} aggregation: {labels[:-1]}")
    selected = None if keys is None else set(keys) | {"overall"}
    wanted = np.array([selected is None or label in selected for label in labels])
    labels = [label for label, keep in zip(labels, wanted, strict=True) if keep]
    omega, xi = omega[:, wanted], xi[:, :, wanted]
    n_units, T = maps.y.shape
    n_obs = n_units * T
    G = int(maps.unit_cluster.max()) + 1
    H = len(labels)
    if G * H * n_obs > MAX_MAP_ENTRIES:
        raise ValueError(
            f"the maps would hold {G} clusters x {H} keys x {n_obs} observations; select keys "
            "(event_times=...) or use the score bootstrap (refit=False)"
        )
    xi_sums = np.stack([group_sums(x, maps.unit_cluster, G) for x in xi])  # (k, G, H)
    E = np.zeros((H, n_obs))
    K = np.zeros((G, H, n_obs))
    carries = np.zeros((H, n_obs))
    for j, m in enumerate(maps.mapping):
        used = np.flatnonzero((omega[j] != 0) | np.any(xi_sums[j] != 0, axis=0))
        if m < 0 or not used.size:
            continue
        rows, a, C = maps.maps[m]
        now, base = rows * T + maps.cur[j], rows * T + maps.pre[j]
        e_part = omega[j, used, None] * a[None, :]
        k_part = (
            omega[j, used][None, :, None] * C[:, None, :]
            + xi_sums[j][:, used, None] * a[None, None, :]
        ) / n_units
        E[np.ix_(used, now)] += e_part
        E[np.ix_(used, base)] -= e_part
        K[:, used[:, None], now[None, :]] += k_part
        K[:, used[:, None], base[None, :]] -= k_part
        treated = rows[maps.unit_cohort[rows] == maps.group[j]]
        carrying = used[omega[j, used] != 0]
        carries[np.ix_(carrying, treated * T + maps.cur[j])] = 1.0
    resid = _working_residuals(maps, result.spec.anticipation)
    return LinearEventStudy(
        event_times=np.array(labels, dtype=object),
        E=E,
        K=K,
        y=maps.y.ravel(),
        resid=resid,
        carries=carries,
        cluster=np.repeat(maps.unit_cluster, T),
    )
