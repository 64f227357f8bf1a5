"""Imputation event study of Borusyak, Jaravel & Spiess (2024).

Step 1 fits the untreated-potential-outcome model on the untreated observations
:math:`\\Omega_0 = \\{(i,t): g_i = 0 \\text{ or } t < g_i - a\\}` (``a`` = anticipation),

.. math::

    Y_{it}(0) = \\alpha_i + \\lambda_t + X_{it}'\\gamma + \\varepsilon_{it},

by weighted least squares. Step 2 imputes :math:`\\hat Y_{it}(0)` for every treated observation
and forms :math:`\\hat\\tau_{it} = Y_{it} - \\hat Y_{it}(0)`. Step 3 aggregates: the effect at
event time :math:`h` is :math:`\\hat\\tau_h = \\sum_{it \\in \\Omega_1,\\, t - g_i = h}
\\omega_{it}\\hat\\tau_{it}` with :math:`\\omega_{it} \\propto w_i q_{it}` (analytic weight times an
optional per-observation effect weight), normalised to sum to one at each :math:`h`.

Every estimate is linear in the outcomes, :math:`\\hat\\tau_h = \\sum_{it} v^h_{it} Y_{it}`, with
:math:`v^h_{it} = \\omega_{it}` on treated observations and
:math:`v^h_0 = -W_0 Z_0 (Z_0'W_0Z_0)^{-1} Z_1'\\omega` on untreated ones (:math:`Z` the fixed-effect
and covariate design). The conservative variance of their Theorem 3 is
:math:`\\hat V_h = \\sum_c \\big(\\sum_{i \\in c}\\sum_t v^h_{it}\\tilde\\varepsilon_{it}\\big)^2`, with
first-step residuals :math:`\\tilde\\varepsilon_{it}` on :math:`\\Omega_0` and
:math:`\\tilde\\varepsilon_{it} = \\hat\\tau_{it} - \\tilde\\tau_{g(it)}` on :math:`\\Omega_1`, where
:math:`\\tilde\\tau` averages :math:`\\hat\\tau` within cohort × event-time cells with weights
:math:`v^2` (their equation 8; R ``didimputation`` and diff-diff's default partition). No
small-sample factor is applied (as in both reference implementations).

The unit-level sums :math:`\\psi^h_i = \\sum_t v^h_{it}\\tilde\\varepsilon_{it}` are the influence
functions: ``event_influence`` is :math:`n\\psi` so that the cluster-summed
:math:`\\mathrm{IF}'\\mathrm{IF}/n^2` is the covariance above. :math:`v_0` is never materialised:
with the normal equations :math:`\\sum_t w_{it}\\tilde\\varepsilon_{it} = 0` per unit,
:math:`\\sum_{t} v^h_{0,it}\\tilde\\varepsilon_{it} = -R_i\\theta^h`, where :math:`R_i` holds the
unit's residual-weighted sums of the non-unit regressors and :math:`\\theta^h` solves a small
Schur-complement system (one column per event time).

Pre-trends (their Test 1): on :math:`\\Omega_0` only, add lead indicators
:math:`1[t - g_i = k]` for every pre-period relative time :math:`k \\ne -1 - a` and test them jointly
with a cluster-robust (CRV1) Wald test. The lead coefficients are the pre-period rows of the
event study, relative to :math:`-1 - a` (diff-diff's ``pretrends=True`` convention).

References
----------
Borusyak, K., Jaravel, X., & Spiess, J. (2024). Revisiting event-study designs: robust and
efficient estimation. Review of Economic Studies 91(6), 3253–3285.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from finsam_eval.core import group_sums, is_nested, n_params_with_fixed_effects, small_sample_factor
from finsam_eval.estimators.event_study import (
    EventEstimates,
    UnitEffectsSolver,
    check_window,
    event_targets,
    first_stage,
    package,
    reject_options,
    unit_arrays,
)
from finsam_eval.estimators.prepare import EstimationInputError, PreparedPanel, prepare_panel
from finsam_eval.estimators.result import EstimationResult

__all__ = ["fit"]


# ---------------------------------------------------------------------------------------------
# The imputation estimator
# ---------------------------------------------------------------------------------------------


def _pretrend(
    panel: PreparedPanel,
    arrays: dict[str, np.ndarray],
    untreated: np.ndarray,
    reference: int,
    lo: float,
    n_units: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.Series | None, dict[str, Any]]:
    """BJS Test 1: lead indicators on the untreated observations, CRV1 Wald test.

    Returns lead times, coefficients, influence (n_units × leads, CRV1 factor included, so its
    cluster-summed cross product is the CRV1 covariance), counts, the pretest and notes.
    """
    cohort, time = arrays["cohort"], arrays["time"]
    rel = np.where(cohort > 0, time - cohort, np.iinfo(np.int64).min)
    candidate = untreated & (cohort > 0) & (rel != reference) & (rel >= lo)
    if not candidate.any():
        return np.empty(0, int), np.empty(0), np.empty((n_units, 0)), np.empty(0, int), None, {}
    leads, lead_code = np.unique(rel[candidate], return_inverse=True)
    codes = np.full(len(rel), -1)
    codes[candidate] = lead_code
    w0 = np.where(untreated, arrays["w"], 0.0)
    solver = UnitEffectsSolver(
        arrays["unit"],
        n_units,
        w0,
        [(arrays["year_code"], len(panel.times)), (codes, len(leads))],
        arrays["x"],
    )
    alpha, theta = solver.fit(arrays["y"])
    resid = np.where(untreated, arrays["y"] - solver.predict(alpha, theta), 0.0)
    influence = solver.score_influence(resid)
    n_years = len(panel.times)
    active = solver.active
    lead_cols = [
        int(np.flatnonzero(active == n_years + j)[0])
        for j in range(len(leads))
        if (n_years + j) in set(active.tolist())
    ]
    estimable = np.array([(n_years + j) in set(active.tolist()) for j in range(len(leads))])
    cluster_of_unit = arrays["cluster_of_unit"]
    n_clusters = int(cluster_of_unit.max()) + 1
    unit_rows = arrays["unit"][untreated]
    cluster_rows = cluster_of_unit[unit_rows]
    year_rows = arrays["year_code"][untreated]
    nested = [is_nested(unit_rows, cluster_rows), is_nested(year_rows, cluster_rows)]
    n_obs0 = int(untreated.sum())
    n_slopes = len(active) - (n_years - 1)
    n_params = n_params_with_fixed_effects(
        n_slopes, [int(np.unique(unit_rows).size), int(np.unique(year_rows).size)], nested
    )
    factor = small_sample_factor("CRV1", n_obs0, n_params, n_clusters)
    lead_influence = np.sqrt(factor) * influence[:, lead_cols]
    gamma = theta[n_years : n_years + len(leads)][estimable]
    by_cluster = group_sums(lead_influence, cluster_of_unit, n_clusters)
    v = by_cluster.T @ by_cluster
    q = len(gamma)
    stat = float(gamma @ np.linalg.solve(v, gamma))
    pretest = pd.Series(
        {
            "statistic": stat,
            "df": float(q),
            "p_value": float(stats.chi2.sf(stat, q)),
            "f_statistic": stat / q,
            "f_p_value": float(stats.f.sf(stat / q, q, n_clusters - 1)),
        }
    )
    counts = np.bincount(lead_code, minlength=len(leads))[estimable]
    notes = {"pretest_small_sample_factor": factor, "pretest_leads": leads[estimable].tolist()}
    return leads[estimable], gamma, lead_influence, counts, pretest, notes


def fit(
    data: pd.DataFrame,
    outcome: str = "share",
    unit: str = "kommun_kod",
    time: str = "year",
    cohort: str = "cohort",
    control: str = "never",
    est_method: str | None = "dr",
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    anticipation: int = 0,
    base_period: str = "varying",
    unbalanced: str = "balance",
    window: tuple[int, int] | None = None,
    bootstrap: int = 0,
    seed: int | None = None,
    alpha: float = 0.05,
    effect_weights: str | None = None,
    pretrends: bool = True,
    leave_one_out: bool = False,
    **options: Any,
) -> EstimationResult:
    """Borusyak–Jaravel–Spiess (2024) imputation event study.

    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    outcome, unit, time, cohort
        Column names; ``cohort`` is the first treated period (0 or NaN: never treated).
    control
        "never" or "notyet": recorded only. The imputation model always uses every untreated
        observation (never-treated units and not-yet-treated periods), which is what makes
        the estimator efficient; "lasttreated" raises.
    est_method
        Callaway–Sant'Anna option; only its default is accepted.
    covariates
        Time-varying covariates in the Y(0) model.
    weights
        Analytic-weight column (constant within unit): weighted least squares in step 1 and
        effect weights proportional to it in step 3.
    cluster
        Cluster column (constant within unit); None clusters by unit.
    anticipation
        Periods of anticipation :math:`a`: observations with :math:`t \\ge g - a` are treated.
    base_period
        Accepted and ignored (the imputation model has no base period).
    unbalanced
        "balance" or "keep" (the estimator handles unbalanced panels natively).
    window
        ``(lo, hi)``: event times reported; leads below ``lo`` are not added to the pre-trend
        regression. None reports every observed relative time.
    bootstrap, seed
        Rademacher multiplier draws over clusters for a sup-t band (0: none).
    alpha
        Level of the normal intervals.
    effect_weights
        Optional column of non-negative per-observation weights :math:`q_{it}` for the
        aggregation of :math:`\\hat\\tau_{it}` (default 1), multiplied by the analytic weight.
    pretrends
        Estimate the lead regression and its Wald test (pre-period rows and ``pretest``).
    leave_one_out
        Leave-one-out :math:`\\tilde\\tau` (BJS Supplementary Appendix A.9, Stata
        ``did_imputation, leaveout``): less downward-biased in small cohorts. Default False, as R
        ``didimputation`` and diff-diff's default.

    Returns
    -------
    EstimationResult
        ``event_study``: lead coefficients (:math:`k < -1 - a`), the reference row
        :math:`-1 - a`, and imputation effects (:math:`h \\ge -a`), with ``n_obs``.
        ``pretest``: Wald statistic (chi-squared, ``df`` leads) and its F version with
        :math:`G-1` denominator degrees of freedom (diff-diff's).

    Notes
    -----
    Intervals are normal, as in the paper. The lead block uses CRV1 with fixest's small-sample
    factor, the effect block none (BJS); ``vcov`` includes their cross-covariance from the joint
    influence functions.
    """
    ignored = reject_options("imputation", est_method, options)
    if control not in ("never", "notyet"):
        raise EstimationInputError(
            f"control={control!r}: the imputation estimator uses every untreated observation "
            "(control 'never' or 'notyet' are accepted and recorded)"
        )
    lo, hi = check_window(window)
    extra = [effect_weights] if effect_weights is not None else []
    panel = prepare_panel(
        data,
        outcome,
        unit,
        time,
        cohort,
        covariates=covariates,
        weights=weights,
        cluster=cluster,
        anticipation=anticipation,
        control="notyet",
        unbalanced=unbalanced,
    )
    arrays = unit_arrays(panel)
    q = np.ones(len(panel.data))
    if extra:
        values = pd.to_numeric(data[effect_weights], errors="coerce").to_numpy(dtype=float)
        q = values[panel.data["row"].to_numpy()]
        if np.isnan(q).any() or (q < 0).any():
            raise EstimationInputError(f"effect_weights {effect_weights!r} must be >= 0 numbers")
    notes = list(panel.warnings)
    solver, untreated, _, resid = first_stage(panel, arrays, anticipation)
    n_units = panel.n_units
    treated = ~untreated
    imputable = solver.identified()
    lost = treated & ~imputable
    dropped = [panel.dropped]
    if lost.any():
        msg = (
            f"{int(lost.sum())} treated observations cannot be imputed (their unit or year has "
            "no untreated observation) and are excluded from the effects"
        )
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
        gone = panel.data.loc[lost]
        dropped.append(
            pd.DataFrame(
                {
                    "reason": "treated observation without imputable Y(0)",
                    "unit": panel.unit_labels[gone["unit"].to_numpy()],
                    "time": gone["time"].to_numpy(),
                    "n_rows": 1,
                }
            )
        )
    event = arrays["time"] - arrays["cohort"]
    rows = np.flatnonzero(treated & imputable & (arrays["w"] * q > 0))
    if not rows.size:
        raise EstimationInputError("no treated observation with an imputable Y(0)")
    tau = resid[rows]
    times, column, omega = event_targets(event, rows, (arrays["w"] * q)[rows])
    n_h = len(times)
    estimate = np.bincount(column, weights=omega * tau, minlength=n_h)

    # tau-tilde: v^2-weighted mean within cohort × event-time cells (BJS eq. 8, unit-clustered
    # form with one observation per unit and cell)
    cell, cell_code = np.unique(arrays["cohort"][rows] * (n_h + 1) + column, return_inverse=True)
    v2 = omega**2
    v2_sum = np.bincount(cell_code, v2)
    tilde = np.bincount(cell_code, v2 * tau) / v2_sum
    aux = tau - tilde[cell_code]
    if leave_one_out:
        # BJS Supplementary Appendix A.9: excluding the unit from its own cell average inflates
        # its residual by 1 / (1 - v_i^2 / sum_j v_j^2); undefined for single-unit cells
        share = v2 / v2_sum[cell_code]
        aux = aux / (1 - np.where(share < 1, share, 0.0))
    psi = np.bincount(
        arrays["unit"][rows] * n_h + column,
        weights=omega * aux,
        minlength=n_units * n_h,
    ).reshape(n_units, n_h)
    c_u, c_f = solver.target_sums(rows, column, omega, n_h)
    t_alpha, t_theta = solver.solve(c_u, c_f)
    psi += solver.untreated_influence(np.where(untreated, resid, 0.0), t_alpha, t_theta)
    counts = np.bincount(column, minlength=n_h)
    # the observation-weighted ATT over all treated observations (BJS's and diff-diff's
    # "overall"), for comparison with the horizon average reported as ``overall``
    att_weight = (arrays["w"] * q)[rows] / (arrays["w"] * q)[rows].sum()
    cell_all, code_all = np.unique(arrays["cohort"][rows] * (n_h + 1) + column, return_inverse=True)
    tilde_all = np.bincount(code_all, att_weight**2 * tau) / np.bincount(code_all, att_weight**2)
    psi_all = np.bincount(
        arrays["unit"][rows], att_weight * (tau - tilde_all[code_all]), minlength=n_units
    )[:, None]
    a_u, a_f = solver.target_sums(rows, np.zeros(rows.size, dtype=np.int64), att_weight, 1)
    a_alpha, a_theta = solver.solve(a_u, a_f)
    psi_all += solver.untreated_influence(np.where(untreated, resid, 0.0), a_alpha, a_theta)
    att_by_cluster = group_sums(psi_all[:, 0], arrays["cluster_of_unit"], panel.n_clusters)
    att_treated = pd.Series(
        {"estimate": float(att_weight @ tau), "se": float(np.sqrt(att_by_cluster @ att_by_cluster))}
    )

    reference = -1 - int(anticipation)
    pretest = None
    info_extra: dict[str, Any] = {}
    if pretrends:
        leads, gamma, lead_influence, lead_counts, pretest, info_extra = _pretrend(
            panel, arrays, untreated, reference, lo, n_units
        )
        if len(leads):
            keep = leads <= hi
            times = np.r_[leads[keep], times]
            estimate = np.r_[gamma[keep], estimate]
            psi = np.hstack([lead_influence[:, keep], psi])
            counts = np.r_[lead_counts[keep], counts]
    info = panel.info()
    info.update(
        {
            "control": "all untreated observations (never and not-yet treated)",
            "requested_control": control,
            "anticipation": int(anticipation),
            "reference": reference,
            "n_obs": len(panel.data),
            "n_untreated_obs": int(untreated.sum()),
            "n_treated_obs_used": int(rows.size),
            "effect_weights": effect_weights,
            "leave_one_out": leave_one_out,
            "att_treated_obs": att_treated,
            "variance": "BJS Theorem 3 conservative (tau-tilde by cohort x event time), no "
            "small-sample factor; leads: CRV1",
            "dropped": pd.concat([d for d in dropped if not d.empty], ignore_index=True)
            if any(not d.empty for d in dropped)
            else panel.dropped,
            "warnings": notes,
            "ignored_options": ignored,
            **info_extra,
        }
    )
    return package(
        "imputation",
        panel,
        EventEstimates(times, estimate, psi, counts),
        [reference] if pretrends else [],
        arrays["cluster_of_unit"],
        window,
        alpha,
        bootstrap,
        seed,
        info,
        pretest,
    )
