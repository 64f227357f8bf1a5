"""Two-stage difference-in-differences of Gardner (2021), as in R's ``did2s`` (Butts & Gardner 2022).

Stage 1 fits unit and year effects (and covariates) on the untreated observations
:math:`\\Omega_0 = \\{g_i = 0 \\text{ or } t < g_i - a\\}` by weighted least squares and residualises
every observation: :math:`\\tilde y_{it} = y_{it} - \\hat\\alpha_i - \\hat\\lambda_t - X_{it}'\\hat\\gamma`.
Stage 2 regresses :math:`\\tilde y` on event-time indicators :math:`D^e_{it} = 1[t - g_i = e]` for
every observed :math:`e \\ne r = -1 - a` (no intercept; never-treated rows have none), so

.. math::

    \\hat\\beta_e = \\frac{\\sum_{t - g_i = e} w_i\\tilde y_{it}}{\\sum_{t - g_i = e} w_i}.

For :math:`e \\ge -a` this equals the imputation estimate with equal (analytic-weighted) effect
weights; for pre-periods it is the mean first-stage residual of units :math:`|e|` periods before
joining.

The variance is the GMM (two-step M-estimator) correction of Gardner (2021) / ``did2s``:
with second-stage residual :math:`\\hat u_2` and first-stage residual :math:`\\hat u_1`,

.. math::

    \\hat V = (X_2'WX_2)^{-1}\\Big(\\sum_c \\hat s_c \\hat s_c'\\Big)(X_2'WX_2)^{-1},\\quad
    \\hat s_c = X_{2c}'W\\hat u_{2c} - X_2'WZ\\,(Z_0'WZ_0)^{-1} Z_{0c}'W\\hat u_{1c},

with :math:`Z` the stage-1 design, and no small-sample factor (as ``did2s`` and pyfixest). The
correction term is computed without forming :math:`Z` (see
``finsam_eval.estimators.imputation.UnitEffectsSolver``).

References
----------
Butts, K., & Gardner, J. (2022). did2s: Two-stage difference-in-differences. The R Journal 14(3).
Gardner, J. (2021). Two-stage differences in differences. Working paper, arXiv:2207.05943.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from finsam_eval.estimators.event_study import (
    EventEstimates,
    event_targets,
    first_stage,
    package,
    unit_arrays,
    untreated_model_info,
)
from finsam_eval.estimators.prepare import EstimationInputError
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import EstimationSpec, fit_contract

__all__ = ["fit"]


@fit_contract("two_stage")
def fit(data: pd.DataFrame, spec: EstimationSpec) -> EstimationResult:
    """Gardner (2021) two-stage DiD event study with the GMM-corrected clustered variance.

    Specification
    -------------
    control
        "never" or "notyet": recorded only; stage 1 always uses every untreated observation.
    covariates
        Time-varying covariates of stage 1.
    weights
        Used in both stages (pyfixest's ``weights=``).
    window
        ``(lo, hi)``: event times reported. The stage-2 indicators are mutually exclusive, so
        leaving some out changes neither the other coefficients nor their variance.

    Returns
    -------
    EstimationResult
        One row per event time with ``n_obs``; the reference row has estimate 0.
    """
    control, anticipation = spec.values("control anticipation")
    if control not in ("never", "notyet"):
        raise EstimationInputError(
            f"control={control!r}: two-stage DiD fits stage 1 on every untreated observation "
            "(control 'never' or 'notyet' are accepted and recorded)"
        )
    panel = spec.prepare(data, control="notyet")
    arrays = unit_arrays(panel)
    notes = list(panel.warnings)
    solver, untreated, _, resid = first_stage(panel, arrays, anticipation)
    reference = -1 - int(anticipation)
    event = arrays["time"] - arrays["cohort"]
    identified = solver.identified()
    has_dummy = (arrays["cohort"] > 0) & (event != reference) & (arrays["w"] > 0)
    lost = has_dummy & ~identified
    if lost.any():
        msg = (
            f"{int(lost.sum())} observations have no stage-1 fit (their unit or year has no "
            "untreated observation) and are left out of stage 2"
        )
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
    rows = np.flatnonzero(has_dummy & identified)
    if not rows.size:
        raise EstimationInputError(
            "no observation of a treated unit carries an event-time indicator (the data hold "
            "no treated cohort, or none of its rows has a stage-1 fit)"
        )
    times, column, omega = event_targets(event, rows, arrays["w"][rows])
    n_e = len(times)
    estimate = np.bincount(column, weights=omega * resid[rows], minlength=n_e)
    u2 = resid[rows] - estimate[column]
    # (X2'WX2)^{-1} X2_c'W u2 is omega-weighted sums of u2: omega = w / sum_e w
    psi = np.bincount(
        arrays["unit"][rows] * n_e + column, weights=omega * u2, minlength=panel.n_units * n_e
    ).reshape(panel.n_units, n_e)
    c_u, c_f = solver.target_sums(rows, column, omega, n_e)
    t_alpha, t_theta = solver.solve(c_u, c_f)
    psi += solver.untreated_influence(np.where(untreated, resid, 0.0), t_alpha, t_theta)
    counts = np.bincount(column, minlength=n_e)
    times, estimate, psi, counts = _drop_degenerate(
        times, estimate, psi, counts, resid[untreated], reference, notes
    )

    info = panel.info()
    info.update(
        {
            **untreated_model_info(panel, control, untreated, reference),
            "variance": "GMM-corrected clustered sandwich (did2s), no small-sample factor",
            "warnings": notes,
        }
    )
    return package(
        spec,
        panel,
        EventEstimates(times, estimate, psi, counts),
        [reference],
        arrays["cluster_of_unit"],
        info,
    )


def _drop_degenerate(
    times: np.ndarray,
    estimate: np.ndarray,
    psi: np.ndarray,
    counts: np.ndarray,
    untreated_resid: np.ndarray,
    reference: int,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leave out event times whose estimate is zero by construction, and say so.

    A pre-period event time whose observations are the only untreated ones in their years has
    stage-1 residuals that the year effects set to zero on average: its estimate and its
    influence function vanish to rounding error, and a t-test on it would report p = 0. Such
    event times are not identified; with no identified post-period event time left, nothing is.
    """
    scale = float(np.sqrt(np.mean(untreated_resid**2))) if untreated_resid.size else 0.0
    tol = 1e-9 * max(scale, np.finfo(float).tiny) * np.sqrt(max(psi.shape[0], 1))
    degenerate = (np.abs(estimate) <= tol) & (np.sqrt((psi**2).sum(axis=0)) <= tol)
    if degenerate.any():
        msg = (
            f"event time(s) {times[degenerate].tolist()} left out: their observations are the "
            "only untreated ones in their years, so stage 1 fits them exactly and the estimate is "
            "zero by construction (not identified)"
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        notes.append(msg)
    keep = ~degenerate
    if not (times[keep] > reference).any():
        raise EstimationInputError(
            "two-stage DiD identifies no effect: no treated observation after joining has a "
            "stage-1 fit (no untreated observation in those years, e.g. every unit joins in the "
            "same year); add never-treated or later-joining units"
        )
    return times[keep], estimate[keep], psi[:, keep], counts[keep]
