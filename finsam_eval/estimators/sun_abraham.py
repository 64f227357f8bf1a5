"""Interaction-weighted event study of Sun & Abraham (2021).

The saturated regression on the never-treated (or last-treated) control cohort :math:`C` and the
treated cohorts :math:`g`,

.. math::

    y_{it} = \\alpha_i + \\lambda_t + \\sum_{g \\notin C}\\sum_{e \\ne r}
    \\delta_{g,e}\\, 1[g_i = g]\\, 1[t - g = e] + X_{it}'\\gamma + \\varepsilon_{it},
    \\qquad r = -1 - a,

estimated by weighted least squares, gives cohort-specific effects :math:`\\delta_{g,e}`. The
interaction-weighted (IW) estimate at event time :math:`e` averages them with the cohort shares
among units observed at :math:`e`:

.. math::

    \\hat\\nu_e = \\sum_g \\hat s_{g,e}\\hat\\delta_{g,e}, \\qquad
    \\hat s_{g,e} = \\frac{\\sum_i w_i 1[g_i = g,\\ i \\text{ observed at } g + e]}
    {\\sum_i w_i 1[g_i \\notin C,\\ i \\text{ observed at } g_i + e]}.

*Variance.* Sun & Abraham (2021, Proposition 6 and their ``eventstudyinteract``) add the
sampling variance of the shares to that of the regression. Here both enter one unit-level
influence function (delta method on the stacked estimating equations),

.. math::

    \\psi_i(\\hat\\nu_e) = \\sqrt{c}\\sum_g \\hat s_{g,e}\\,\\psi_i(\\hat\\delta_{g,e})
    + \\frac{w_i 1[i \\text{ observed at } g_i + e]}{W_e}(\\hat\\delta_{g_i,e} - \\hat\\nu_e),

with :math:`\\psi_i(\\hat\\delta)` the regression's sandwich contributions (CRV1,
:math:`c = \\frac{G}{G-1}\\frac{N-1}{N-K}`, fixest's nested convention), summed within clusters.
Differences from the references: fixest's ``aggregate(sunab)`` and pyfixest use the first term
only (shares treated as known; ``info["vcov_regression"]``); ``eventstudyinteract`` adds the share
variance (``info["vcov_shares"]``) but drops the cross term, which is asymptotically zero because
the regression scores have mean zero given the cohort.

*Computation.* On a balanced panel without covariates the saturated regression has a closed form:
every treated cohort's cells are fitted exactly, so year effects come from the control cohort
alone and :math:`\\hat\\delta_{g,t-g} = (\\bar y_{g,t} - \\bar y_{g,g+r}) - (\\bar y_{C,t} -
\\bar y_{C,g+r})` (weighted cohort means); the regression's sandwich contributions are then the
units' deviations from these means, so nothing of size n × (cells) is built. Otherwise the
design is within-transformed with ``finsam_eval.core.demean``.

References
----------
Sun, L., & Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects. Journal of Econometrics 225(2), 175–199.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from finsam_eval.core import (
    demean,
    group_sums,
    is_nested,
    n_params_with_fixed_effects,
    small_sample_factor,
)
from finsam_eval.estimators.event_study import (
    EventEstimates,
    dropped_rows,
    merged_dropped,
    package,
    unit_arrays,
)
from finsam_eval.estimators.prepare import EstimationInputError, PreparedPanel
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import EstimationSpec, fit_contract

__all__ = ["fit"]


def _closed_form(
    y: np.ndarray,
    w_unit: np.ndarray,
    cohort_of_unit: np.ndarray,
    years: np.ndarray,
    control_cohort: int,
    cells: list[tuple[int, int]],
    reference: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Cell effects and per-unit sandwich contributions (n_units × cells), balanced panel.

    ``y`` is the (n_units, n_years) outcome table of the regression sample.
    """
    n_units = y.shape[0]
    delta = np.empty(len(cells))
    psi = np.zeros((n_units, len(cells)))
    mean = {}
    centred = np.empty_like(y)
    for g in np.unique(cohort_of_unit):
        rows = cohort_of_unit == g
        wg = w_unit[rows]
        mean[g] = wg @ y[rows] / wg.sum()
        centred[rows] = (y[rows] - mean[g]) * (wg / wg.sum())[:, None]
    col = {int(t): j for j, t in enumerate(years)}
    control = np.flatnonzero(cohort_of_unit == control_cohort)
    centred_control = centred[control]
    cell_cohort = np.array([g for g, _ in cells])
    # all cells of one cohort at once: one gather of its units' rows, one of the controls'
    for g in np.unique(cell_cohort).tolist():
        ks = np.flatnonzero(cell_cohort == g)
        ts = np.array([col[g + cells[k][1]] for k in ks])
        base = col[g + reference]
        delta[ks] = (mean[g][ts] - mean[g][base]) - (
            mean[control_cohort][ts] - mean[control_cohort][base]
        )
        rows = np.flatnonzero(cohort_of_unit == g)
        own = centred[rows]
        psi[np.ix_(rows, ks)] = own[:, ts] - own[:, [base]]
        psi[np.ix_(control, ks)] = -(centred_control[:, ts] - centred_control[:, [base]])
    return delta, psi


@fit_contract("sa")
def fit(data: pd.DataFrame, spec: EstimationSpec) -> EstimationResult:
    """Sun & Abraham (2021) interaction-weighted event study.

    Specification
    -------------
    control
        "never" (never-treated units, default) or "lasttreated" (the last-treated cohort; its
        treated periods, from :math:`g_{last} - a` on, and the never-treated units are dropped,
        as in Sun & Abraham's application). "notyet" raises: the IW estimator needs a single
        control cohort.
    covariates
        Time-varying covariates in the saturated regression.
    weights
        Weighted regression and weighted cohort shares.
    window
        ``(lo, hi)``: event times reported. The regression stays fully saturated (no binning),
        so the window selects output only.
    share_uncertainty
        Include the share term in the influence functions (default, Sun & Abraham); False
        gives fixest's variance.
    dense
        Force the within-transformed dense regression even where the closed form applies (for
        testing the two routes against each other).

    Returns
    -------
    EstimationResult
        ``event_study`` has the IW estimates (pre- and post-period) and the reference row;
        ``info`` holds ``cohort_effects`` (:math:`\\hat\\delta_{g,e}`), ``shares``,
        ``vcov_regression`` and ``vcov_shares``.
    """
    control, anticipation, share_uncertainty, dense = spec.values(
        "control anticipation share_uncertainty dense"
    )
    if control not in ("never", "lasttreated"):
        raise EstimationInputError(
            f"control={control!r}: Sun & Abraham use one control cohort, 'never' (never-treated) "
            "or 'lasttreated' (the last-treated cohort)"
        )
    panel = spec.prepare(data, control="never" if control == "never" else "notyet")
    arrays = unit_arrays(panel)
    notes = list(panel.warnings)
    ref = -1 - int(anticipation)
    s = _regression_sample(panel, arrays, control, int(anticipation), ref)
    delta, psi_delta, method, n_slopes = _saturated_fit(s, arrays, ref, dense)
    sh = _cohort_shares(s, delta)
    factor, n_params, psi_reg, psi_share = _influence(s, sh, delta, psi_delta, n_slopes)
    psi_used = psi_reg + psi_share if share_uncertainty else psi_reg
    psi = np.zeros((panel.n_units, len(sh.event_times)))
    psi[s.used_units] = psi_used

    n_clusters = int(np.unique(s.cluster_of_unit).size)
    cl_codes = np.unique(s.cluster_of_unit, return_inverse=True)[1]
    reg_c = group_sums(psi_reg, cl_codes, n_clusters)
    share_c = group_sums(psi_share, cl_codes, n_clusters)
    index = pd.Index(sh.event_times, name="event_time")
    counts = np.bincount(sh.e_of_obs, minlength=len(sh.event_times))
    info = panel.info()
    info.update(
        {
            "control": "never-treated"
            if control == "never"
            else f"last-treated ({s.control_cohort})",
            "control_cohort": s.control_cohort,
            "anticipation": int(anticipation),
            "reference": ref,
            "n_obs": len(s.rows),
            "n_units_used": s.n_used,
            "computation": method,
            "cohort_effects": pd.DataFrame(
                {
                    "cohort": [g for g, _ in s.cells],
                    "event_time": [e for _, e in s.cells],
                    "estimate": delta,
                    "se_regression": np.sqrt(
                        np.einsum(
                            "ck,ck->k",
                            *(2 * [group_sums(np.sqrt(factor) * psi_delta, cl_codes, n_clusters)]),
                        )
                    ),
                }
            ),
            "shares": pd.DataFrame(
                sh.share,
                index=pd.MultiIndex.from_tuples(s.cells, names=["cohort", "event_time"]),
                columns=index,
            ),
            "vcov_regression": pd.DataFrame(reg_c.T @ reg_c, index=index, columns=index),
            "vcov_shares": pd.DataFrame(share_c.T @ share_c, index=index, columns=index),
            "share_uncertainty": share_uncertainty,
            "small_sample_factor": factor,
            "n_params": n_params,
            "variance": "CRV1 regression term + cohort-share term (delta method, joint IF)"
            if share_uncertainty
            else "CRV1 regression term only (fixest aggregate)",
            "dropped": merged_dropped(s.dropped, panel),
            "warnings": notes,
        }
    )
    # the package helper clusters with the panel's cluster codes of every unit
    return package(
        spec,
        panel,
        EventEstimates(sh.event_times, sh.nu, psi, counts),
        [ref],
        arrays["cluster_of_unit"],
        info,
    )


@dataclass
class _Sample:
    """Rows of the saturated regression, their codes and the (cohort, event time) cells."""

    control_cohort: int
    dropped: list[pd.DataFrame]
    rows: np.ndarray
    used_units: np.ndarray
    unit_code: np.ndarray
    years: np.ndarray
    year_code: np.ndarray
    n_used: int
    n_years: int
    w_row: np.ndarray
    y_row: np.ndarray
    cohort_of_unit: np.ndarray
    w_unit: np.ndarray
    cluster_of_unit: np.ndarray
    event_row: np.ndarray
    cell_row: np.ndarray
    key_row: np.ndarray
    cell_keys: np.ndarray
    cells: list[tuple[int, int]]


def _regression_sample(
    panel: PreparedPanel, arrays: dict[str, np.ndarray], control: str, anticipation: int, ref: int
) -> _Sample:
    """Rows used (last-treated control cuts later periods, reported) and the interaction cells."""
    cohort_row, time_row = arrays["cohort"], arrays["time"]
    keep = arrays["w"] > 0
    dropped = [panel.dropped]
    if control == "lasttreated":
        if len(panel.cohorts) < 2:
            raise EstimationInputError("control='lasttreated' needs at least two treated cohorts")
        control_cohort = int(panel.cohorts.max())
        cut = (cohort_row == 0) | (time_row >= control_cohort - anticipation)
        if cut.any():
            reason = (
                "never-treated unit or period at/after the last cohort's treatment "
                "(control='lasttreated')"
            )
            dropped.append(dropped_rows(panel, cut & keep, reason))
        keep &= ~cut
    else:
        control_cohort = 0
    rows = np.flatnonzero(keep)
    unit_all = arrays["unit"][rows]
    used_units, unit_code = np.unique(unit_all, return_inverse=True)
    years, year_code = np.unique(time_row[rows], return_inverse=True)
    n_used = len(used_units)
    c_row = cohort_row[rows]
    w_row = arrays["w"][rows]
    w_unit = np.zeros(n_used)
    w_unit[unit_code] = w_row
    treated_row = c_row != control_cohort
    event_row = np.where(treated_row, time_row[rows] - c_row, ref)
    cell_row = treated_row & (event_row != ref)
    # cells (cohort, event time) as one integer key per row, sorted like the (g, e) pairs
    e_min = int(event_row.min()) if len(rows) else 0
    span = int(event_row.max()) - e_min + 1 if len(rows) else 1
    key_row = c_row.astype(np.int64) * span + (event_row - e_min)
    cell_keys = np.unique(key_row[cell_row])
    cells = list(
        zip((cell_keys // span).tolist(), (cell_keys % span + e_min).tolist(), strict=True)
    )
    if not cells:
        raise EstimationInputError("no treated cohort is observed outside the reference period")
    present_years = set(np.asarray(years).tolist())
    no_base = sorted({g for g, _ in cells if g + ref not in present_years})
    if no_base:
        raise EstimationInputError(
            f"cohort(s) {no_base} have no rows in their reference period (cohort {ref:+d}: "
            f"{[g + ref for g in no_base]}), which Sun–Abraham's interactions are measured "
            "against; fill those years or use imputation, two_stage or cs, which allow gaps"
        )
    return _Sample(
        control_cohort, dropped, rows, used_units, unit_code, years, year_code, n_used,
        len(years), w_row, arrays["y"][rows], arrays["cohort_of_unit"][used_units], w_unit,
        arrays["cluster_of_unit"][used_units], event_row, cell_row, key_row, cell_keys, cells,
    )  # fmt: skip


def _saturated_fit(
    s: _Sample, arrays: dict[str, np.ndarray], ref: int, dense: bool
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """Cell effects and their per-unit contributions; closed form when balanced, else WLS."""
    balanced = len(s.rows) == s.n_used * s.n_years
    x = arrays["x"][s.rows]
    closed = balanced and x.shape[1] == 0 and not dense
    # rows are sorted by unit then year (prepare_panel), so a balanced sample reshapes directly
    if closed:
        delta, psi_delta = _closed_form(
            s.y_row.reshape(s.n_used, s.n_years),
            s.w_unit,
            s.cohort_of_unit,
            s.years,
            s.control_cohort,
            s.cells,
            ref,
        )
        return delta, psi_delta, "closed form (balanced, no covariates)", len(s.cells)
    n_cells = len(s.cells)
    cell_of_row = np.full(len(s.rows), -1)
    cell_of_row[s.cell_row] = np.searchsorted(s.cell_keys, s.key_row[s.cell_row])
    design = np.zeros((len(s.rows), n_cells + x.shape[1]))
    hit = np.flatnonzero(cell_of_row >= 0)
    design[hit, cell_of_row[hit]] = 1.0
    design[:, n_cells:] = x
    within = demean(np.column_stack([s.y_row, design]), [s.unit_code, s.year_code], s.w_row)
    if not within.converged:
        raise RuntimeError("alternating projections did not converge")
    yd, zd = within.values[:, 0], within.values[:, 1:]
    gram = zd.T @ (zd * s.w_row[:, None])
    try:
        bread = np.linalg.inv(gram)
    except np.linalg.LinAlgError as err:
        raise EstimationInputError("the saturated regression is collinear") from err
    coef = bread @ (zd.T @ (s.w_row * yd))
    resid = yd - zd @ coef
    scores = group_sums(zd, s.unit_code, s.n_used, weights=s.w_row * resid)
    psi_all = scores @ bread
    method = f"within transformation ({within.method})"
    return coef[:n_cells], psi_all[:, :n_cells], method, design.shape[1]


@dataclass
class _Shares:
    """Cohort shares of the treated units observed at each event time, and the IW estimates."""

    event_times: np.ndarray
    e_pos: dict[int, int]
    observed: np.ndarray
    e_of_obs: np.ndarray
    share: np.ndarray
    cohorts_treated: np.ndarray
    g_pos: dict[int, int]
    treated_unit: np.ndarray
    gi: np.ndarray
    total_at: np.ndarray
    nu: np.ndarray


def _cohort_shares(s: _Sample, delta: np.ndarray) -> _Shares:
    """Weighted cohort composition at each event time and the IW average ``nu = delta @ share``."""
    # shares: weighted cohort composition of the treated units observed at each event time
    event_times = np.array(sorted({e for _, e in s.cells}))
    e_pos = {int(e): j for j, e in enumerate(event_times)}
    observed = np.zeros((s.n_used, len(event_times)), dtype=bool)
    obs_rows = np.flatnonzero(s.cell_row)
    e_of_obs = np.searchsorted(event_times, s.event_row[obs_rows])
    observed[s.unit_code[obs_rows], e_of_obs] = True
    share = np.zeros((len(s.cells), len(event_times)))
    cohort_of_unit = s.cohort_of_unit
    cohorts_treated = np.unique(cohort_of_unit[cohort_of_unit != s.control_cohort])
    cohort_weight_at = np.zeros((len(cohorts_treated), len(event_times)))
    g_pos = {int(g): j for j, g in enumerate(cohorts_treated)}
    treated_unit = cohort_of_unit != s.control_cohort
    gi = np.searchsorted(cohorts_treated, cohort_of_unit)
    gi[(gi >= len(cohorts_treated)) | (cohorts_treated[np.minimum(gi, len(cohorts_treated) - 1)]
                                       != cohort_of_unit)] = -1  # fmt: skip
    for j in range(len(event_times)):
        cohort_weight_at[:, j] = np.bincount(
            gi[treated_unit],
            weights=(s.w_unit * observed[:, j])[treated_unit],
            minlength=len(cohorts_treated),
        )
    total_at = cohort_weight_at.sum(axis=0)
    for k, (g, e) in enumerate(s.cells):
        share[k, e_pos[e]] = cohort_weight_at[g_pos[g], e_pos[e]] / total_at[e_pos[e]]
    nu = delta @ share
    return _Shares(
        event_times, e_pos, observed, e_of_obs, share, cohorts_treated, g_pos, treated_unit, gi,
        total_at, nu,
    )  # fmt: skip


def _influence(
    s: _Sample, sh: _Shares, delta: np.ndarray, psi_delta: np.ndarray, n_slopes: int
) -> tuple[float, int, np.ndarray, np.ndarray]:
    """CRV1 factor, parameter count, and the regression and cohort-share influence terms."""
    # fixest small-sample factor with nested unit effects
    unit_rows = s.unit_code
    cluster_rows = s.cluster_of_unit[unit_rows]
    n_clusters = int(np.unique(s.cluster_of_unit).size)
    nested = [is_nested(unit_rows, cluster_rows), is_nested(s.year_code, cluster_rows)]
    n_params = n_params_with_fixed_effects(n_slopes, [s.n_used, s.n_years], nested)
    factor = small_sample_factor("CRV1", len(s.rows), n_params, n_clusters)
    psi_reg = np.sqrt(factor) * (psi_delta @ sh.share)
    # share term: w_i 1[observed at e] (delta_{g_i, e} - nu_e) / W_e for treated units
    delta_table = np.zeros((len(sh.cohorts_treated), len(sh.event_times)))
    for k, (g, e) in enumerate(s.cells):
        delta_table[sh.g_pos[g], sh.e_pos[e]] = delta[k]
    psi_share = np.zeros_like(psi_reg)
    tu = np.flatnonzero(sh.treated_unit)
    psi_share[tu] = (
        (s.w_unit[tu, None] * sh.observed[tu])
        * (delta_table[sh.gi[tu]] - sh.nu[None, :])
        / sh.total_at[None, :]
    )
    return factor, n_params, psi_reg, psi_share
