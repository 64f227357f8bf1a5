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
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.core import (
    group_sums,
    is_nested,
    n_params_with_fixed_effects,
    small_sample_factor,
    unique_codes,
)
from finsam_eval.core.distributions import chi2_sf, f_sf
from finsam_eval.estimators.event_study import (
    EventEstimates,
    UnitEffectsSolver,
    check_window,
    dropped_rows,
    event_targets,
    first_stage,
    merged_dropped,
    package,
    unit_arrays,
    untreated_model_info,
)
from finsam_eval.estimators.prepare import EstimationInputError, PreparedPanel
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import EstimationSpec, fit_contract

__all__ = ["fit"]


# ---------------------------------------------------------------------------------------------
# The imputation estimator
# ---------------------------------------------------------------------------------------------


def _n_levels(codes: np.ndarray) -> int:
    """Distinct non-negative integer codes (a count, without sorting the rows)."""
    return int(np.count_nonzero(np.bincount(codes))) if codes.size else 0


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
    leads, lead_code = unique_codes(rel[candidate])
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
        n_slopes, [_n_levels(unit_rows), _n_levels(year_rows)], nested
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
            "p_value": float(chi2_sf(stat, q)),
            "f_statistic": stat / q,
            "f_p_value": float(f_sf(stat / q, q, n_clusters - 1)),
        }
    )
    counts = np.bincount(lead_code, minlength=len(leads))[estimable]
    notes = {"pretest_small_sample_factor": factor, "pretest_leads": leads[estimable].tolist()}
    return leads[estimable], gamma, lead_influence, counts, pretest, notes


@fit_contract("imputation")
def fit(data: pd.DataFrame, spec: EstimationSpec) -> EstimationResult:
    """Borusyak–Jaravel–Spiess (2024) imputation event study.

    Specification
    -------------
    control
        "never" or "notyet": recorded only. The imputation model always uses every untreated
        observation (never-treated units and not-yet-treated periods), which is what makes
        the estimator efficient.
    covariates
        Time-varying covariates in the Y(0) model.
    weights
        Weighted least squares in step 1 and effect weights proportional to it in step 3.
    anticipation
        Observations with :math:`t \\ge g - a` are treated.
    unbalanced
        Either: the estimator handles unbalanced panels natively.
    window
        ``(lo, hi)``: event times reported; leads below ``lo`` are not added to the pre-trend
        regression. None reports every observed relative time.
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
    control, anticipation, window = spec.values("control anticipation window")
    effect_weights, pretrends, leave_one_out = spec.values("effect_weights pretrends leave_one_out")
    lo, hi = _check_options(control, window)
    panel = spec.prepare(data, control="notyet")
    arrays = unit_arrays(panel)
    q = _effect_weight_values(data, effect_weights, panel)
    notes = list(panel.warnings)
    solver, untreated, _, resid = first_stage(panel, arrays, anticipation)
    n_units = panel.n_units
    treated = ~untreated
    imputable = solver.identified()
    dropped = [panel.dropped, _report_unimputable(panel, treated & ~imputable, notes)]
    event = arrays["time"] - arrays["cohort"]
    rows = np.flatnonzero(treated & imputable & (arrays["w"] * q > 0))
    if not rows.size:
        raise EstimationInputError("no treated observation with an imputable Y(0)")
    tau = resid[rows]
    times, column, omega = event_targets(event, rows, (arrays["w"] * q)[rows])
    n_h = len(times)
    estimate = np.bincount(column, weights=omega * tau, minlength=n_h)
    psi = _horizon_influence(
        arrays, rows, column, omega, tau, n_h, n_units, leave_one_out, solver, untreated, resid
    )
    counts = np.bincount(column, minlength=n_h)
    att_treated = _att_treated_obs(
        arrays, q, rows, column, tau, n_h, n_units, solver, untreated, resid, panel.n_clusters
    )

    reference = -1 - int(anticipation)
    pretest = None
    info_extra: dict[str, Any] = {}
    if pretrends:
        times, estimate, psi, counts, pretest, info_extra = _prepend_leads(
            panel, arrays, untreated, reference, (lo, hi), (times, estimate, psi, counts)
        )
    leads = info_extra.pop("pretest_leads", [])
    info = panel.info()
    info.update(
        {
            **untreated_model_info(panel, control, untreated, reference),
            "n_treated_obs_used": int(rows.size),
            "effect_weights": effect_weights,
            "leave_one_out": leave_one_out,
            "att_treated_obs": att_treated,
            "variance": "BJS Theorem 3 conservative (tau-tilde by cohort x event time), no "
            "small-sample factor; leads: CRV1",
            "dropped": merged_dropped(dropped, panel),
            "warnings": notes,
            **info_extra,
        }
    )
    return package(
        spec,
        panel,
        EventEstimates(times, estimate, psi, counts),
        [reference] if pretrends else [],
        arrays["cluster_of_unit"],
        info,
        pretest,
        pretest_leads=leads,
    )


def _effect_weight_values(
    data: pd.DataFrame, effect_weights: str | None, panel: PreparedPanel
) -> np.ndarray:
    """Effect weights of the retained rows (ones without the option), refusing bad values."""
    q = np.ones(len(panel.data))
    if effect_weights is not None:
        values = pd.to_numeric(data[effect_weights], errors="coerce").to_numpy(dtype=float)
        q = values[panel.data["row"].to_numpy()]
        if np.isnan(q).any() or (q < 0).any():
            raise EstimationInputError(f"effect_weights {effect_weights!r} must be >= 0 numbers")
    return q


def _report_unimputable(panel: PreparedPanel, lost: np.ndarray, notes: list[str]) -> pd.DataFrame:
    """Warn about and list treated rows whose Y(0) cannot be imputed (empty frame if none)."""
    if not lost.any():
        return pd.DataFrame()
    msg = (
        f"{int(lost.sum())} treated observations cannot be imputed (their unit or year has "
        "no untreated observation) and are excluded from the effects"
    )
    warnings.warn(msg, UserWarning, stacklevel=3)
    notes.append(msg)
    return dropped_rows(panel, lost, "treated observation without imputable Y(0)")


def _horizon_influence(
    arrays: dict[str, np.ndarray],
    rows: np.ndarray,
    column: np.ndarray,
    omega: np.ndarray,
    tau: np.ndarray,
    n_h: int,
    n_units: int,
    leave_one_out: bool,
    solver: Any,
    untreated: np.ndarray,
    resid: np.ndarray,
) -> np.ndarray:
    """Unit × horizon influence functions (BJS Theorem 3, conservative tau-tilde)."""
    # tau-tilde: v^2-weighted mean within cohort × event-time cells (BJS eq. 8, unit-clustered
    # form with one observation per unit and cell)
    cell, cell_code = unique_codes(arrays["cohort"][rows] * (n_h + 1) + column)
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
    return psi


def _att_treated_obs(
    arrays: dict[str, np.ndarray],
    q: np.ndarray,
    rows: np.ndarray,
    column: np.ndarray,
    tau: np.ndarray,
    n_h: int,
    n_units: int,
    solver: Any,
    untreated: np.ndarray,
    resid: np.ndarray,
    n_clusters: int,
) -> pd.Series:
    """Observation-weighted ATT over all treated observations and its clustered SE."""
    # the observation-weighted ATT over all treated observations (BJS's and diff-diff's
    # "overall"), for comparison with the horizon average reported as ``overall``
    att_weight = (arrays["w"] * q)[rows] / (arrays["w"] * q)[rows].sum()
    cell_all, code_all = unique_codes(arrays["cohort"][rows] * (n_h + 1) + column)
    tilde_all = np.bincount(code_all, att_weight**2 * tau) / np.bincount(code_all, att_weight**2)
    psi_all = np.bincount(
        arrays["unit"][rows], att_weight * (tau - tilde_all[code_all]), minlength=n_units
    )[:, None]
    a_u, a_f = solver.target_sums(rows, np.zeros(rows.size, dtype=np.int64), att_weight, 1)
    a_alpha, a_theta = solver.solve(a_u, a_f)
    psi_all += solver.untreated_influence(np.where(untreated, resid, 0.0), a_alpha, a_theta)
    att_by_cluster = group_sums(psi_all[:, 0], arrays["cluster_of_unit"], n_clusters)
    return pd.Series(
        {"estimate": float(att_weight @ tau), "se": float(np.sqrt(att_by_cluster @ att_by_cluster))}
    )


def _check_options(control: str, window: Any) -> tuple[float, float]:
    """Refuse a control group other than 'never'/'notyet'; return the window's end points."""
    if control not in ("never", "notyet"):
        raise EstimationInputError(
            f"control={control!r}: the imputation estimator uses every untreated observation "
            "(control 'never' or 'notyet' are accepted and recorded)"
        )
    return check_window(window)


def _prepend_leads(
    panel: PreparedPanel,
    arrays: dict[str, np.ndarray],
    untreated: np.ndarray,
    reference: int,
    window: tuple[float, float],
    effects: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any, dict[str, Any]]:
    """Put the pre-trend leads up to the window's end before the horizons' effects."""
    lo, hi = window
    times, estimate, psi, counts = effects
    leads, gamma, lead_influence, lead_counts, pretest, info_extra = _pretrend(
        panel, arrays, untreated, reference, lo, panel.n_units
    )
    if len(leads):
        keep = leads <= hi
        times = np.r_[leads[keep], times]
        estimate = np.r_[gamma[keep], estimate]
        psi = np.hstack([lead_influence[:, keep], psi])
        counts = np.r_[lead_counts[keep], counts]
    return times, estimate, psi, counts, pretest, info_extra
