"""Callaway & Sant'Anna (2021) group-time effects for staggered adoption, as R's ``did``.

For each treated cohort :math:`g` (first treated period) and period :math:`t`, the group-time
average treatment effect

.. math::

    ATT(g, t) = \\mathbb{E}[Y_t(g) - Y_t(0) \\mid G = g]

is identified by a 2×2 comparison of cohort :math:`g` with a comparison group between a base
period :math:`b` and :math:`t`. With ``anticipation`` :math:`\\delta`, post-treatment cells
(:math:`t \\ge g`) use :math:`b = g - \\delta - 1`; pre-treatment cells use
:math:`b = t - 1` ("varying") or :math:`b = g - \\delta - 1` ("universal", where the cell
:math:`t = b` is normalised to zero). Comparison units are never-treated ("never") or, with
"notyet", also units first treated after :math:`\\max(t, b) + \\delta` other than cohort
:math:`g` (Callaway & Sant'Anna 2021, Theorems 1 and 2; the definition of R ``did`` 2.x).
Each 2×2 is estimated by :mod:`finsam_eval.estimators.drdid` (unconditional, outcome
regression, standardized IPW or doubly robust), with covariates taken at the earlier of the two
periods as R does for panels.

Inference uses unit-level influence functions :math:`\\psi` in R's scale: the cell's
estimator-level influence function times :math:`n / n_{gt}`, zero for units outside the cell.
Standard errors are :math:`\\sqrt{\\sum_c (\\sum_{i\\in c}\\psi_i)^2}/n` with clusters
:math:`c` (units by default). R's ``did`` does not cluster analytic standard errors (only its
bootstrap); here analytic and bootstrap standard errors are clustered alike, and with unit
clusters both equal R's. Aggregations (:mod:`finsam_eval.estimators.aggregation`) and the
multiplier bootstrap (:mod:`finsam_eval.core.multiplier`) are linear algebra on
:math:`\\psi`, never re-estimation.

Unbalanced panels: by default units not observed in every period are dropped (and reported).
With ``unbalanced="keep"`` every observation is used as R's ``allow_unbalanced_panel=TRUE``:
each 2×2 runs the repeated-cross-section estimator on the rows of its two periods, and the
row-level influence functions, scaled by :math:`n_{units}/n_{rows}`, are summed within unit.

References
----------
Callaway, B., & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
Journal of Econometrics 225(2), 200–230.
Sant'Anna, P. H. C., & Zhao, J. (2020). Doubly robust difference-in-differences estimators.
Journal of Econometrics 219(1), 101–122.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular

from finsam_eval.core import group_sums
from finsam_eval.core.distributions import chi2_sf, norm_ppf
from finsam_eval.core.multiplier import (
    WEIGHT_KINDS,
    analytic_se,
    cluster_sums,
    multiplier_bootstrap,
    multiplier_bootstrap_many,
    se_from_square_sums,
)
from finsam_eval.estimators import drdid
from finsam_eval.estimators.aggregation import (
    Aggregate,
    CellInfluence,
    GroupTimeEffects,
    aggregate_effects,
)
from finsam_eval.estimators.prepare import (
    EstimationInputError,
    PreparedPanel,
)
from finsam_eval.estimators.result import (
    AggregationResult,
    Deferred,
    EstimationResult,
    wald_columns,
)
from finsam_eval.estimators.spec import EstimationSpec, fit_contract

__all__ = ["GroupTimeMaps", "fit", "fit_prepared", "group_time_maps"]

EST_METHODS = ("dr", "ipw", "reg")
_PANEL_ESTIMATORS = {
    "dr": drdid.drdid_panel,
    "ipw": drdid.std_ipw_did_panel,
    "reg": drdid.reg_did_panel,
}
_RC_ESTIMATORS = {"dr": drdid.drdid_rc, "ipw": drdid.std_ipw_did_rc, "reg": drdid.reg_did_rc}


@dataclass
class _Cells:
    """Group-time cells: identifiers, estimates and unit-level influence functions."""

    group: np.ndarray
    time: np.ndarray
    att: np.ndarray
    influence: CellInfluence
    reference: np.ndarray  # universal base period cell, normalised to zero


@dataclass
class _Design:
    """Unit-level arrays built once from the prepared panel."""

    times: np.ndarray
    n: int
    cohort: np.ndarray
    weight: np.ndarray
    cluster: np.ndarray | None
    y: np.ndarray  # (n, T); NaN where unobserved
    x: np.ndarray | None  # (n, T, p) covariates or None
    x_invariant: bool
    rows: dict[str, np.ndarray] | None  # row-level arrays for unbalanced panels


def _no_cell_message(
    design: _Design, cohorts: np.ndarray, covariates: list[str], notes: list[str]
) -> str:
    """Why no ATT(g,t) could be estimated, naming covariates without overlap or variation."""
    msg = f"no ATT(g,t) could be estimated ({len(notes)} cells failed; first: {notes[0]})"
    if design.x is None or not covariates:
        return msg
    x = design.x[:, 0, :]  # covariates in the first period (R did's base for panels)
    never = design.cohort == 0
    problems = []
    for k, name in enumerate(covariates):
        values = x[:, k]
        if np.nanmax(values) == np.nanmin(values):
            problems.append(f"{name!r} is constant ({np.nanmax(values)}) across units")
            continue
        for g in cohorts.tolist():
            treated = design.cohort == g
            if not treated.any() or not never.any():
                continue
            t_lo, t_hi = np.nanmin(values[treated]), np.nanmax(values[treated])
            c_lo, c_hi = np.nanmin(values[never]), np.nanmax(values[never])
            if t_hi < c_lo or t_lo > c_hi or t_lo == t_hi:
                problems.append(
                    f"{name!r} separates cohort {g} (range [{t_lo:.4g}, {t_hi:.4g}]) from the "
                    f"never-treated (range [{c_lo:.4g}, {c_hi:.4g}]): no overlap"
                )
                break
    if problems:
        msg += (
            "; covariate problems: " + "; ".join(problems) + ". Drop or recode these covariates"
            " (est_method='reg' needs variation, not overlap)"
        )
    else:
        msg += f"; check the covariates {covariates} for collinearity or lack of overlap"
    return msg


def _check_options(
    est_method: str, base_period: str, bootstrap: int, bootstrap_weights: str, window: Any
) -> tuple[float, float]:
    if est_method not in EST_METHODS:
        raise EstimationInputError(f"est_method must be one of {EST_METHODS}, got {est_method!r}")
    if base_period not in ("varying", "universal"):
        raise EstimationInputError(
            f"base_period must be 'varying' or 'universal', got {base_period!r}"
        )
    if int(bootstrap) != bootstrap or bootstrap < 0:
        raise EstimationInputError(f"bootstrap must be a non-negative integer: {bootstrap}")
    if bootstrap_weights not in WEIGHT_KINDS:
        raise EstimationInputError(
            f"bootstrap_weights must be one of {WEIGHT_KINDS}, got {bootstrap_weights!r}"
        )
    if window is None:
        return -np.inf, np.inf
    if len(window) != 2 or any(int(v) != v for v in window) or window[0] > window[1]:
        raise EstimationInputError(f"window must be two integers (lo, hi), lo <= hi: {window}")
    return float(window[0]), float(window[1])


def _last_cohort_as_controls(panel: PreparedPanel, control: str) -> tuple[PreparedPanel, list]:
    """Without never-treated units, drop periods from the last cohort's start (R did).

    With not-yet-treated controls and no never-treated units, R's ``did`` keeps only periods
    before the last cohort starts (less anticipation), so that cohort serves as the comparison
    group throughout and gets no effects of its own.
    """
    frame = panel.data
    if control != "notyet" or (frame["cohort"] == 0).any():
        return panel, []
    latest = int(frame["cohort"].max())
    cutoff = latest - panel.anticipation
    late = frame["time"] >= cutoff
    msg = (
        f"no never-treated units: periods from {cutoff} on are dropped ({int(late.sum())} rows) "
        f"and cohort {latest} serves only as comparison group (as R did)"
    )
    warnings.warn(msg, UserWarning, stacklevel=4)
    dropped = pd.DataFrame(
        {
            "reason": "period at or after the last cohort's start (no never-treated units)",
            "unit": pd.NA,
            "time": np.sort(frame.loc[late, "time"].unique()),
            "n_rows": frame.loc[late].groupby("time").size().to_numpy(),
        }
    )
    panel.data = frame.loc[~late].reset_index(drop=True)
    panel.times = np.sort(panel.data["time"].unique())
    panel.cohorts = panel.cohorts[panel.cohorts < latest]
    panel.dropped = pd.concat([panel.dropped, dropped], ignore_index=True)
    panel.warnings.append(msg)
    return panel, [latest]


def _design(panel: PreparedPanel, keep_unbalanced: bool) -> _Design:
    frame = panel.data
    times = panel.times
    n = panel.n_units
    unit = frame["unit"].to_numpy()
    first = np.r_[True, unit[1:] != unit[:-1]]  # data are sorted by unit then time
    cohort = frame["cohort"].to_numpy()[first]
    weight = frame["weight"].to_numpy(dtype=float)[first]
    cluster = frame["cluster"].to_numpy()[first] if panel.cluster is not None else None
    covs = panel.covariates
    balanced = len(frame) == n * len(times)
    if balanced:
        # sorted by unit then time with every period present: the rows are the unit × period
        # grid in order, so a reshape places them (no period search over all rows)
        t_idx = None
        y = frame["y"].to_numpy(dtype=float).reshape(n, len(times)).copy()
    else:
        t_idx = np.searchsorted(times, frame["time"].to_numpy())
        y = np.full((n, len(times)), np.nan)
        y[unit, t_idx] = frame["y"].to_numpy(dtype=float)
    x = None
    invariant = True
    if covs:
        values = frame[covs].to_numpy(dtype=float)
        if balanced:
            x = values.reshape(n, len(times), len(covs))
        else:
            x = np.full((n, len(times), len(covs)), np.nan)
            x[unit, t_idx] = values
        with np.errstate(invalid="ignore"):
            spread = np.nanmax(x, axis=1) - np.nanmin(x, axis=1)
        invariant = bool(np.all(spread == 0))
    rows = None
    if keep_unbalanced and not balanced:
        rows = {
            "unit": unit,
            "time": t_idx,
            "y": frame["y"].to_numpy(dtype=float),
            "w": frame["weight"].to_numpy(dtype=float),
            "x": frame[covs].to_numpy(dtype=float) if covs else None,
            "by_time": [np.flatnonzero(t_idx == j) for j in range(len(times))],
        }
    return _Design(times, n, cohort, weight, cluster, y, x, invariant, rows)


def _base_index(times: np.ndarray, g: int, anticipation: int) -> int:
    # last period before the cohort's (anticipated) start
    return int(np.flatnonzero(times + anticipation < g)[-1])


def _cell_plan(
    times: np.ndarray, cohorts: np.ndarray, anticipation: int, base_period: str
) -> list[tuple[int, int, int, bool]]:
    """(g, current index, base index, reference cell) for every cell, in R's order."""
    start = 1 if base_period == "varying" else 0
    plan = []
    for g in cohorts:
        base_g = _base_index(times, int(g), anticipation)
        for cur in range(start, len(times)):
            pre = cur - 1 if base_period == "varying" else base_g
            if g <= times[cur]:
                pre = base_g
            plan.append((int(g), cur, pre, base_period == "universal" and pre == cur))
    return plan


def _control_mask(
    cohort: np.ndarray, g: int, cutoff: np.ndarray | None, control: str
) -> np.ndarray:
    """Comparison units: never treated, or (notyet) first treated after ``cutoff``."""
    never = cohort == 0
    if control == "never":
        return never
    later = (cohort[:, None] > cutoff[None, :]) & (cohort != g)[:, None]
    return never[:, None] | later


def _estimate_cells(
    design: _Design,
    cohorts: np.ndarray,
    control: str,
    est_method: str,
    anticipation: int,
    base_period: str,
) -> tuple[_Cells, list[str]]:
    times, n, cohort, w = design.times, design.n, design.cohort, design.weight
    plan = _cell_plan(times, cohorts, anticipation, base_period)
    k = len(plan)
    att = np.full(k, np.nan)
    # influence functions by blocks of cells over the units they involve (CellInfluence)
    blocks: list[tuple[np.ndarray | None, np.ndarray, np.ndarray]] = []
    failures: dict[int, str] = {}
    group = np.array([p[0] for p in plan], dtype=np.int64)
    cur_idx = np.array([p[1] for p in plan], dtype=np.int64)
    pre_idx = np.array([p[2] for p in plan], dtype=np.int64)
    reference = np.array([p[3] for p in plan], dtype=bool)
    cutoff = times[np.maximum(cur_idx, pre_idx)] + anticipation
    att[reference] = 0.0

    def fail(j: int, why: str) -> None:
        failures[int(j)] = f"ATT({group[j]},{times[cur_idx[j]]}) not estimated: {why}"

    influence = None
    if design.rows is not None:
        _rc_cells(design, group, cur_idx, pre_idx, reference, cutoff, control, est_method, att,
                  blocks, fail)  # fmt: skip
    elif design.x is None and control == "never" and not np.isnan(design.y).any():
        influence = CellInfluence(
            n, k, _never_cells(design, group, cur_idx, pre_idx, reference, est_method, att, fail)
        )
    elif design.x is None:
        # no covariates, balanced: every estimator reduces to the unconditional one, and a
        # whole cohort's cells are one vectorised computation over the cohort and its
        # comparison units
        for g in np.unique(group):
            cols = np.flatnonzero((group == g) & ~reference)
            if not len(cols):
                continue
            treated = cohort == g
            ctrl = _control_mask(cohort, g, cutoff[cols], control)
            rows = np.flatnonzero(treated | (ctrl if ctrl.ndim == 1 else ctrl.any(axis=1)))
            y_rows = design.y[rows]
            dy = y_rows[:, cur_idx[cols]] - y_rows[:, pre_idx[cols]]
            est, phi = drdid.unconditional_panel(dy, treated[rows], ctrl[rows], w[rows])
            w_d = w[treated].sum()
            w_c = w[rows] @ ctrl[rows] if ctrl.ndim == 2 else w[rows][ctrl[rows]].sum()
            ok = (w_d > 0) & (w_c > 0)
            if est_method in ("dr", "ipw"):
                # DRDID trims comparison units with score >= 0.995: with an intercept-only score
                # every comparison unit would go, and R returns NA
                with np.errstate(invalid="ignore", divide="ignore"):
                    ok &= w_d / (w_d + w_c) < drdid.TRIM_LEVEL
            ok = np.broadcast_to(ok, cols.shape)
            for j in cols[~ok]:
                fail(j, "no treated or comparison units (or no overlap)")
            att[cols[ok]] = est[ok]
            if ok.all():
                phi *= n
                blocks.append((rows, cols, phi))
            else:
                blocks.append((rows, cols[ok], phi[:, ok] * n))
    else:
        _covariate_cells(design, group, cur_idx, pre_idx, reference, cutoff, control, est_method,
                         att, blocks, fail)  # fmt: skip
    if influence is None:
        influence = CellInfluence.from_cell_blocks(n, k, blocks, cohort)
    notes = [failures[j] for j in sorted(failures)]
    return _Cells(group, times[cur_idx], att, influence, reference), notes


def _never_cells(design, group, cur_idx, pre_idx, reference, est_method, att,
                 fail) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
    """Balanced, no covariates, never-treated comparisons: the influence blocks directly.

    Every estimator is then the unconditional 2×2 (:func:`drdid.unconditional_panel`'s
    formulas), and the never-treated units are the comparison units of every cell: their
    outcome changes, means and influence functions for all cells are one array (the
    :class:`CellInfluence` block of the never-treated), and each cohort's treated units give
    its own block. Nothing is computed over a cohort and the never-treated together and then
    split by unit cohort again (at 100 000 units that regrouping cost as much as the 2×2s).
    Returns the blocks ordered by unit cohort (never-treated first), as ``from_cell_blocks``.
    """
    n, cohort, w, y = design.n, design.cohort, design.weight, design.y
    cells = np.flatnonzero(~reference)  # grouped by cohort, ascending (the plan's order)
    never = np.flatnonzero(cohort == 0)
    y_never, w_never = y[never], w[never]
    w_c = w_never.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        b_never = -(w_never / w_c)  # (a - b) of unconditional_panel; a = 0 for these units
    # the never-treated block over all cells, filled cohort by cohort (cache-sized pieces)
    phi_c = np.empty((len(never), len(cells)))
    blocks = []
    ok_cells = np.ones(len(cells), dtype=bool)
    start = 0
    for g in np.unique(group[cells]):
        piece = slice(start, start + int(np.count_nonzero(group[cells] == g)))
        start = piece.stop
        cols = cells[piece]
        treated = np.flatnonzero(cohort == g)
        w_d = w[treated].sum()
        ok = (w_d > 0) & (w_c > 0)
        if est_method in ("dr", "ipw"):
            # DRDID trims comparison units with score >= 0.995: with an intercept-only score
            # every comparison unit would go, and R returns NA
            with np.errstate(invalid="ignore", divide="ignore"):
                ok &= w_d / (w_d + w_c) < drdid.TRIM_LEVEL
        if not ok:
            for j in cols:
                fail(j, "no treated or comparison units (or no overlap)")
            ok_cells[piece] = False
            continue
        part = phi_c[:, piece]
        np.subtract(y_never[:, cur_idx[cols]], y_never[:, pre_idx[cols]], out=part)
        mean_c = w_never @ part / w_c
        y_treated = y[treated]
        phi_d = y_treated[:, cur_idx[cols]] - y_treated[:, pre_idx[cols]]
        mean_d = w[treated] @ phi_d / w_d
        att[cols] = mean_d - mean_c
        phi_d -= mean_d
        phi_d *= (w[treated] / w_d)[:, None]
        phi_d *= n
        blocks.append((treated, cols, phi_d))
        part -= mean_c
        part *= b_never[:, None]
        part *= n
    if not ok_cells.all():
        phi_c = phi_c[:, ok_cells]
    if ok_cells.any():
        blocks.insert(0, (never, cells[ok_cells], phi_c))
    return blocks


def _covariate_cells(design, group, cur_idx, pre_idx, reference, cutoff, control, est_method,
                     att, blocks, fail) -> None:  # fmt: skip
    """Balanced panel with covariates: small dense 2×2 estimations over each cell's units.

    Cells of one cohort with the same comparison group and covariate period share their units,
    design and propensity score, so they are estimated together (one column per period).
    """
    n, cohort, w = design.n, design.cohort, design.weight
    estimator = _PANEL_ESTIMATORS[est_method]
    # covariates at the earlier of the two periods (R did for panels)
    x_period = np.zeros_like(cur_idx) if design.x_invariant else np.minimum(cur_idx, pre_idx)
    sets: dict[tuple, list[int]] = {}
    for j in np.flatnonzero(~reference):
        key = (group[j], x_period[j], None if control == "never" else cutoff[j])
        sets.setdefault(key, []).append(int(j))
    for (g, period, _), members in sets.items():
        cells = np.array(members, dtype=np.int64)
        treated = cohort == g
        ctrl = _control_mask(cohort, g, cutoff[cells[:1]], control).reshape(n, -1)[:, 0]
        if not treated.any() or not ctrl.any():
            for j in cells:
                fail(j, "no treated or comparison units")
            continue
        rows = np.flatnonzero(treated | ctrl)
        x = np.column_stack([np.ones(len(rows)), design.x[rows, period, :]])
        d = treated[rows].astype(float)
        ws = w[rows]
        y_rows = design.y[rows]
        y1 = y_rows[:, cur_idx[cells]]
        y0 = y_rows[:, pre_idx[cells]]
        try:
            if est_method == "reg":
                est, inf = estimator(y1, y0, d, x, ws)
            else:
                # the propensity score depends only on the units and covariates
                ps = drdid.fit_logit(d, x, ws / ws.mean())
                if ps.ps.max() >= 0.999:
                    for j in cells:
                        fail(j, "overlap violated (propensity score >= 0.999)")
                    continue
                est, inf = estimator(y1, y0, d, x, ws, pscore=ps)
        except np.linalg.LinAlgError as err:
            for j in cells:
                fail(j, str(err))
            continue
        finite = np.isfinite(est)
        for j in cells[~finite]:
            fail(j, "estimate is not finite")
        att[cells[finite]] = est[finite]
        blocks.append((rows, cells[finite], inf[:, finite] * (n / len(d))))


def _rc_cells(design, group, cur_idx, pre_idx, reference, cutoff, control, est_method,
              att, blocks, fail) -> None:  # fmt: skip
    """Unbalanced panel kept whole: repeated-cross-section 2×2s, influence summed by unit."""
    rows, n, cohort = design.rows, design.n, design.cohort
    by_cohort: dict[int, tuple[list[int], list[np.ndarray]]] = {}
    # without covariates all three estimators coincide; outcome regression is the cheapest
    estimator = _RC_ESTIMATORS["reg" if rows["x"] is None else est_method]
    for j in np.flatnonzero(~reference):
        g = group[j]
        idx = np.concatenate([rows["by_time"][pre_idx[j]], rows["by_time"][cur_idx[j]]])
        unit_cohort = cohort[rows["unit"][idx]]
        treated = unit_cohort == g
        ctrl = _control_mask(unit_cohort, g, cutoff[j : j + 1], control).reshape(-1, 1)[:, 0]
        idx = idx[treated | ctrl]
        d = treated[treated | ctrl].astype(float)
        post = (rows["time"][idx] == cur_idx[j]).astype(float)
        if min((d * post).sum(), (d * (1 - post)).sum(), ((1 - d) * post).sum(),
               ((1 - d) * (1 - post)).sum()) == 0:  # fmt: skip
            fail(j, "no treated or comparison rows in one of the two periods")
            continue
        ones = np.ones((len(idx), 1))
        x = ones if rows["x"] is None else np.column_stack([ones, rows["x"][idx]])
        try:
            est, inf = estimator(rows["y"][idx], post, d, x, rows["w"][idx])
        except np.linalg.LinAlgError as err:
            fail(j, str(err))
            continue
        if not np.isfinite(est):
            fail(j, "estimate is not finite")
            continue
        att[j] = est
        cells, columns = by_cohort.setdefault(int(g), ([], []))
        cells.append(int(j))
        columns.append(np.bincount(rows["unit"][idx], weights=inf, minlength=n) * (n / len(d)))
    # one block of all units per cohort: the units of its cells differ from period to period
    for cells, columns in by_cohort.values():
        blocks.append((None, np.array(cells, dtype=np.int64), np.column_stack(columns)))


def _bootstrap(influence, cluster, n_boot, seed, weights, alpha):
    rng = np.random.default_rng(seed)
    return multiplier_bootstrap(influence, n_boot, rng, cluster=cluster, multiplier=weights,
                                alpha=alpha)  # fmt: skip


def _sup_t(boot_draws: np.ndarray, se: np.ndarray, alpha: float) -> float:
    usable = np.isfinite(se) & (se > 0)
    if not usable.any():
        return np.nan
    t_max = np.max(np.abs(boot_draws[:, usable] / se[usable]), axis=1)
    crit = float(np.quantile(t_max, 1 - alpha, method="inverted_cdf"))
    # R falls back to pointwise intervals when the band would be narrower
    return max(crit, float(norm_ppf(1 - alpha / 2)))


def _summarise(
    agg: Aggregate,
    cluster: np.ndarray | None,
    alpha: float,
    n_boot: int,
    seed: int | None,
    boot_weights: str,
) -> tuple[pd.DataFrame, pd.Series, float | None]:
    """Table and overall row of an aggregation, with bootstrap bands when requested."""
    return _summarise_many([agg], cluster, alpha, n_boot, seed, boot_weights)[0]


def _summarise_many(
    aggs: Sequence[Aggregate],
    cluster: np.ndarray | None,
    alpha: float,
    n_boot: int,
    seed: int | None,
    boot_weights: str,
    key_name: str = "key",
) -> list[tuple[pd.DataFrame, pd.Series, float | None]]:
    """:func:`_summarise` of several aggregations with one bootstrap over all their columns.

    Every summary reseeds its multiplier draws with ``seed``, so all of them use the same
    multipliers: they are drawn once and applied to each aggregation's influence functions
    (bit-identical to separate calls; at 100 000 units and 999 draws, drawing the multipliers
    is most of the bootstrap's time). The tables' first column is named ``key_name``.
    """
    influences = [np.column_stack([agg.influence, agg.overall_influence]) for agg in aggs]
    if n_boot:
        rng = np.random.default_rng(seed)
        boots = multiplier_bootstrap_many(
            influences, n_boot, rng, cluster=cluster, multiplier=boot_weights, alpha=alpha
        )
    out = []
    for i, (agg, influence) in enumerate(zip(aggs, influences, strict=True)):
        estimate = np.r_[agg.estimate, agg.overall]
        crit = None
        if n_boot:
            se = boots[i].se
            if len(agg.keys):
                crit = _sup_t(boots[i].draws[:, :-1], se[:-1], alpha)
        else:
            se = analytic_se(influence, cluster)
        columns = wald_columns(estimate, se, alpha)
        # each frame is built once from its columns (insert and iloc on a finished frame cost
        # more than the arithmetic of a kommun-sized fit)
        overall = pd.Series([float(v[-1]) for v in columns.values()], index=list(columns))
        table = {key_name: np.array(agg.keys)} | {k: v[:-1] for k, v in columns.items()}
        if crit is not None:
            table["band_lower"] = table["estimate"] - crit * table["se"]
            table["band_upper"] = table["estimate"] + crit * table["se"]
        out.append((pd.DataFrame(table, copy=False), overall, crit))
    return out


def _pretest(
    cells: _Cells,
    valid: np.ndarray,
    se: np.ndarray,
    cluster: np.ndarray | None,
    info: dict[str, Any] | None = None,
) -> pd.Series | None:
    """Wald test that all pre-treatment ATT(g, t) are zero (R did's ``att_gt`` pre-test).

    :math:`W = \\hat\\theta_{pre}'\\hat V_{pre}^{-1}\\hat\\theta_{pre} \\sim \\chi^2_q` with
    :math:`q` pre-treatment cells (:math:`g > t`) of non-zero variance, from the blocks of
    :class:`~finsam_eval.estimators.aggregation.CellInfluence` (never a dense n × q matrix).
    As R's did, no generalised inverse: when ``rcond(V) <= eps`` (R's check) the test is not
    computed, with a one-line reason (rank of ``V`` against ``q``) in the warning and in
    ``info["pretest_note"]``; ``pretrend_wald`` tests the event-study leads instead.
    """
    pre = valid & (cells.group > cells.time) & np.isfinite(se)
    if not pre.any():
        return None
    n = cells.influence.n
    if cluster is None:
        v = cells.influence.crossprod(np.flatnonzero(pre)) / n**2
    else:
        sums = cells.influence.cluster_sums(np.flatnonzero(pre), cluster)
        v = sums.T @ sums / n**2
    theta = cells.att[pre]
    q = int(pre.sum())
    try:
        # R did: rcond(preV) <= .Machine$double.eps means singular (1-norm condition number)
        rcond = 1.0 / (np.linalg.norm(v, 1) * np.linalg.norm(np.linalg.inv(v), 1))
        root = np.linalg.cholesky(v) if rcond > np.finfo(float).eps else None
    except np.linalg.LinAlgError:
        root = None
    if root is None:
        rank = int(np.linalg.matrix_rank(v, hermitian=True))
        note = (
            f"not computed: the covariance of the {q} pre-treatment ATT(g,t) has rank "
            f"{rank} (singular, as R did also reports; small cohorts make cells collinear); "
            "pretrend_wald(res) tests the event-study leads instead"
        )
        if info is not None:
            info["pretest_note"] = note
        warnings.warn(f"pre-test {note}", UserWarning, stacklevel=5)
        return None
    z = solve_triangular(root, theta, lower=True)
    w_stat = float(z @ z)
    return pd.Series({"W": w_stat, "df": q, "p_value": float(chi2_sf(w_stat, q))})


@fit_contract("cs")
def fit(data: pd.DataFrame, spec: EstimationSpec) -> EstimationResult:
    """Callaway & Sant'Anna (2021) staggered difference-in-differences (R ``did::att_gt``).

    Specification
    -------------
    est_method
        "dr" (locally efficient doubly robust, Sant'Anna & Zhao 2020), "ipw" (standardized
        IPW) or "reg" (outcome regression). Without covariates all equal the unconditional DiD.
    covariates
        In panels the value at the earlier period of each 2×2 is used.
    weights
        Normalised inside each 2×2, as R.
    base_period
        "varying" or "universal".
    unbalanced
        "keep" is R's ``allow_unbalanced_panel=TRUE``.
    window
        Event-time range (lo, hi) of the event study (R's ``min_e``/``max_e``).
    reps, seed, multiplier
        Multiplier-bootstrap draws (0 = analytic), seed, and "rademacher"/"mammen"/"webb".
        Bootstrap standard errors and sup-t bands are computed for the event study, the overall
        effect and every ``aggregate`` call.
    bootstrap_att_gt
        Also bootstrap the group-time table (standard errors and a sup-t band over all cells,
        as R's ``att_gt``). Off by default: with many units it is the most expensive product
        (n × cells × draws) and the aggregations do not need it; ``att_gt`` then reports
        analytic standard errors.
    cohorts
        Evaluated cohorts: only their ATT(g, t) enter the event study, the overall effect,
        the pre-test and ``aggregate`` (None: every cohort). Units of the other cohorts still
        serve as comparisons (with "notyet" until they join, e.g. the ISF design's later
        joiners, ``finsam_eval.design.isf_design``); their cells stay in ``att_gt``.

    Returns
    -------
    EstimationResult
        ``event_study`` (dynamic aggregation), ``overall`` (the simple ATT of R's
        ``aggte(type="simple")`` and diff-diff's ``overall_att``: the cohort-share-weighted mean
        of all post-treatment ATT(g, t), equal to ``aggregate("simple").overall``; ``window``
        does not restrict it), ``att_gt``, ``influence``, ``pretest`` and ``aggregate(kind, balance_e, min_e, max_e)``.
        ``influence`` (dense units × cells) and ``pretest`` are computed on first access: the
        estimation itself keeps each cell's influence function only over the units of its
        2×2 comparison (:class:`~finsam_eval.estimators.aggregation.CellInfluence`).
    """
    (control, unbalanced, window, bootstrap, alpha, est_method, base_period, seed, bootstrap_weights,
     bootstrap_att_gt, cohorts) = spec.values(
        "control unbalanced window reps alpha est_method base_period seed multiplier "
        "bootstrap_att_gt cohorts"
    )  # fmt: skip
    _check_options(est_method, base_period, bootstrap, bootstrap_weights, window)
    panel = spec.prepare(data)
    return fit_prepared(
        panel,
        control=control,
        est_method=est_method,
        base_period=base_period,
        unbalanced=unbalanced,
        window=window,
        reps=bootstrap,
        seed=seed,
        alpha=alpha,
        multiplier=bootstrap_weights,
        bootstrap_att_gt=bootstrap_att_gt,
        cohorts=cohorts,
    )


def fit_prepared(
    panel: PreparedPanel,
    *,
    control: str = "never",
    est_method: str = "dr",
    base_period: str = "varying",
    unbalanced: str = "balance",
    window: tuple[int, int] | None = None,
    reps: int = 0,
    seed: int | None = None,
    alpha: float = 0.05,
    multiplier: str = "rademacher",
    bootstrap_att_gt: bool = False,
    cohorts: Sequence[int] | None = None,
) -> EstimationResult:
    """:func:`fit` on a panel already prepared by ``prepare_panel`` (same options).

    For callers that fit one panel many times with different cohort columns
    (``finsam_eval.estimators.calendars.estimate_over_calendars``): the validation, balancing
    and coding of ``prepare_panel`` are done once. ``panel`` is modified (copy it first).
    """
    min_e, max_e = _check_options(est_method, base_period, reps, multiplier, window)
    cluster = panel.cluster
    evaluated = cohorts
    panel, _ = _last_cohort_as_controls(panel, control)
    cohorts = panel.cohorts[panel.cohorts > panel.times[0] + panel.anticipation]
    if not len(cohorts):
        raise EstimationInputError("no treated cohort has a pre-treatment period to compare with")
    design = _design(panel, keep_unbalanced=unbalanced == "keep")
    cells, notes = _estimate_cells(
        design, cohorts, control, est_method, panel.anticipation, base_period
    )
    if notes and not np.isfinite(cells.att[~cells.reference]).any():
        raise EstimationInputError(_no_cell_message(design, cohorts, list(panel.covariates), notes))
    if notes:
        # one warning listing every failed cell (not one warning per cell)
        warnings.warn(
            f"{len(notes)} of {int((~cells.reference).sum())} ATT(g,t) not estimated:\n"
            + "\n".join(notes),
            UserWarning,
            stacklevel=2,
        )
    valid = np.isfinite(cells.att)
    chosen = _evaluated_cohorts(cells, evaluated)
    used = valid if chosen is None else valid & np.isin(cells.group, chosen)
    clusters = design.cluster
    n_boot = int(reps)
    att_table, se_cells, crit_cells = _att_gt_table(
        cells, valid, clusters, design.n, alpha, n_boot if bootstrap_att_gt else 0, seed,
        multiplier,
    )  # fmt: skip

    effects = GroupTimeEffects(
        group=cells.group[used],
        time=cells.time[used],
        att=cells.att[used],
        influence=cells.influence if used.all() else cells.influence.select(used),
        unit_cohort=design.cohort,
        unit_weight=design.weight,
    )

    def aggregator(
        kind: str, balance_e: int | None = None, min_e: float = -np.inf, max_e: float = np.inf
    ) -> AggregationResult:
        agg = aggregate_effects(effects, kind, balance_e=balance_e, min_e=min_e, max_e=max_e)
        table, overall, crit = _summarise(agg, clusters, alpha, n_boot, seed, multiplier)
        influence = np.column_stack([agg.influence, agg.overall_influence])
        return AggregationResult(kind, table, overall, influence, crit)

    dynamic = aggregate_effects(effects, "dynamic", min_e=min_e, max_e=max_e)
    # the peers' overall effect (R did's aggte "simple", diff-diff's overall_att), not the mean
    # of the event-time effects, which weights late event times (few cohorts) as much as early
    simple = aggregate_effects(effects, "simple")
    (event_study, _, crit_es), (_, overall, _) = _summarise_many(
        [dynamic, simple], clusters, alpha, n_boot, seed, multiplier, "event_time"
    )
    sums = cluster_sums(dynamic.influence, clusters)
    vcov = pd.DataFrame(
        sums.T @ sums / design.n**2,
        index=pd.Index(dynamic.keys, name="event_time"),
        columns=pd.Index(dynamic.keys, name="event_time"),
        copy=False,
    )

    info = panel.info()
    info.update(
        {
            "n_obs": len(panel.data),
            "control": control,
            "est_method": est_method,
            "base_period": base_period,
            "unbalanced": unbalanced,
            "estimator_2x2": (
                "repeated cross-section (unbalanced panel kept)"
                if design.rows is not None
                else "panel"
            ),
            "n_cells": len(cells.att),
            "cohorts": None if chosen is None else [int(g) for g in chosen],
            "cells_not_estimated": int((~valid).sum()),
            "alpha": alpha,
            "bootstrap": n_boot,
            "multiplier": multiplier if n_boot else None,
            "seed": seed,
            "critical_value": crit_es,
            "overall_definition": (
                "simple ATT: cohort-share-weighted mean of all post-treatment ATT(g,t) "
                '(R did aggte type="simple")'
            ),
            "critical_value_att_gt": crit_cells,
            "att_gt_se_type": "bootstrap" if crit_cells is not None else "analytic",
            "se_type": (
                f"multiplier bootstrap ({n_boot} draws, IQR-based)"
                if n_boot
                else "analytic influence function"
            )
            + (f", clustered by {cluster}" if cluster else ", clustered by unit"),
            "warnings": list(panel.warnings) + notes,
        }
    )
    return EstimationResult(
        method="cs",
        event_study=event_study,
        overall=overall,
        vcov=vcov,
        att_gt=att_table,
        # the dense group-time influence matrix and the pre-test are built on first access
        influence=Deferred(cells.influence.dense),
        event_influence=dynamic.influence,
        unit_labels=panel.unit_labels,
        info=info,
        aggregator=aggregator,
        pretest=Deferred(lambda: _pretest(cells, used, se_cells, clusters, info)),
        n_clusters=panel.n_clusters,
    )


@dataclass
class GroupTimeMaps:
    """Group-time effects of a balanced panel as linear maps of the outcome.

    Every 2×2 estimator of :mod:`~finsam_eval.estimators.drdid` is linear in the outcome change
    :math:`\\Delta Y = Y_t - Y_b` once the propensity score (a function of covariates and
    cohorts only) is fixed, and so is its influence function (the outcome-regression and
    propensity-score estimation effects are linear in :math:`\\Delta Y` too). Cell :math:`j`
    is :math:`ATT_j = a_j'\\Delta Y_j` and :math:`\\psi_j = M_j\\Delta Y_j` (R did's scale, zero
    outside the cell's units), :math:`\\Delta Y_j` the changes of the cell's units between
    periods ``pre[j]`` and ``cur[j]``; only the cluster sums :math:`C_j` of :math:`M_j`'s rows
    are kept (what clustered variances need). Cells sharing their units, design and
    propensity score share one map.

    Attributes
    ----------
    group, time, cur, pre
        Cohort, period, and period indices of the outcome and of the base, per cell (k,).
    mapping
        Index into ``maps`` per cell (k,); -1 for the reference cells of a universal base
        period, which are 0 by construction (kept because aggregations count them).
    maps
        ``(rows, a, C)``: the cell's units, coefficients (len(rows),) and the influence map
        summed within clusters (n_clusters × len(rows)).
    y
        Outcome, units × periods.
    unit_cohort, unit_weight, unit_cluster
        Per unit: cohort (0 never treated), sampling weight and cluster code 0..G-1 (units
        when the fit was not clustered).
    times
        The periods.
    """

    group: np.ndarray
    time: np.ndarray
    cur: np.ndarray
    pre: np.ndarray
    mapping: np.ndarray
    maps: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    y: np.ndarray
    unit_cohort: np.ndarray
    unit_weight: np.ndarray
    unit_cluster: np.ndarray
    times: np.ndarray


def _evaluated_cohorts(cells: Any, evaluated: Sequence[int] | None) -> np.ndarray | None:
    """Sorted cohorts to evaluate (None: all), refusing cohorts without estimated cells."""
    if evaluated is None:
        return None
    chosen = np.unique(np.asarray(list(evaluated), dtype=np.int64))
    unknown = sorted(set(chosen.tolist()) - set(np.unique(cells.group).tolist()))
    if unknown:
        raise EstimationInputError(
            f"cohorts {unknown} are not treated cohorts of the panel with a pre-treatment "
            f"period (cohorts: {sorted(np.unique(cells.group).tolist())})"
        )
    return chosen


def _att_gt_table(
    cells: Any,
    valid: np.ndarray,
    clusters: np.ndarray,
    n: int,
    alpha: float,
    n_boot: int,
    seed: int | None,
    bootstrap_weights: str,
) -> tuple[pd.DataFrame, np.ndarray, float | None]:
    """Group-time table with analytic SEs, or bootstrap SEs and sup-t bands when ``n_boot``.

    Returns the table, the analytic cell SEs (NaN for cells not estimated) and the sup-t
    critical value (None without the bootstrap).
    """
    se_cells = se_from_square_sums(cells.influence.square_sums(clusters), n)
    se_cells[~valid] = np.nan
    crit_cells = None
    se_table = se_cells
    if n_boot:
        boot = _bootstrap(cells.influence.columns(np.flatnonzero(valid)), clusters, n_boot, seed,
                          bootstrap_weights, alpha)  # fmt: skip
        se_table = np.full(len(valid), np.nan)
        se_table[valid] = boot.se
        crit_cells = _sup_t(boot.draws, boot.se, alpha)
    # the frame is built once from all its columns (new arrays: it aliases nothing of cells)
    table = {
        "cohort": cells.group.copy(),
        "time": cells.time.copy(),
        "event_time": cells.time - cells.group,
    } | wald_columns(cells.att, se_table, alpha)
    if crit_cells is not None:
        table["band_lower"] = table["estimate"] - crit_cells * table["se"]
        table["band_upper"] = table["estimate"] + crit_cells * table["se"]
    return pd.DataFrame(table, copy=False), se_cells, crit_cells


def group_time_maps(result: EstimationResult) -> GroupTimeMaps:
    """Replay a ``fit`` on its prepared panel and return its cells as linear maps.

    The panel is the result's own (``result.prepared_panel()``: its data and specification);
    each 2×2 estimator is evaluated on the identity matrix of outcome changes (one column per
    unit of the cell), which gives its coefficients and influence-function map at once. The cells returned are
    those the fit aggregates (estimated or reference cells), in the order of ``result.att_gt``.

    Raises
    ------
    NotImplementedError
        For ``unbalanced="keep"`` on an unbalanced panel (the repeated-cross-section 2×2s are
        not replayed).
    """
    if result.method != "cs":
        raise ValueError(
            f"group_time_maps needs a Callaway-Sant'Anna result, not {result.method!r}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the fit has already reported them
        panel = result.prepared_panel()  # (raises, clearly, for a result without its spec)
        spec = result.spec
        control, est_method, base_period, evaluated = spec.values(
            "control est_method base_period cohorts"
        )
        panel, _ = _last_cohort_as_controls(panel, control)
    design = _design(panel, keep_unbalanced=spec.unbalanced == "keep")
    if design.rows is not None:
        raise NotImplementedError(
            "the linear replay covers balanced panels; this fit kept an unbalanced panel "
            "(unbalanced='keep', repeated-cross-section 2x2s)"
        )
    anticipation = panel.anticipation
    cohorts = panel.cohorts[panel.cohorts > panel.times[0] + anticipation]
    plan = _cell_plan(design.times, cohorts, anticipation, base_period)
    group = np.array([p[0] for p in plan], dtype=np.int64)
    cur = np.array([p[1] for p in plan], dtype=np.int64)
    pre = np.array([p[2] for p in plan], dtype=np.int64)
    reference = np.array([p[3] for p in plan], dtype=bool)
    times, n, cohort, w = design.times, design.n, design.cohort, design.weight
    cutoff = times[np.maximum(cur, pre)] + anticipation
    x_period = (
        np.zeros_like(cur) if design.x is None or design.x_invariant else np.minimum(cur, pre)
    )
    cluster = (
        np.unique(design.cluster, return_inverse=True)[1]
        if design.cluster is not None
        else np.arange(n)
    )
    n_clusters = int(cluster.max()) + 1
    estimated = result.att_gt.set_index(["cohort", "time"])["estimate"]
    maps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    index: dict[tuple, int] = {}
    kept, mapping = [], []
    for j in range(len(plan)):
        if evaluated is not None and group[j] not in evaluated:
            continue  # not an evaluated cohort: the fit does not aggregate it
        if reference[j]:  # universal base period: normalised to 0, no map
            kept.append(j)
            mapping.append(-1)
            continue
        if not np.isfinite(estimated.get((group[j], times[cur[j]]), np.nan)):
            continue  # the fit could not estimate this cell
        key = (group[j], x_period[j], None if control == "never" else cutoff[j])
        if key not in index:
            treated = cohort == group[j]
            ctrl = _control_mask(cohort, group[j], cutoff[j : j + 1], control).reshape(n, -1)[:, 0]
            rows = np.flatnonzero(treated | ctrl)
            identity = np.eye(len(rows))
            if design.x is None:
                a, M = drdid.unconditional_panel(identity, treated[rows], ctrl[rows], w[rows])
                M = M * n
            else:
                x = np.column_stack([np.ones(len(rows)), design.x[rows, x_period[j], :]])
                d = treated[rows].astype(float)
                ws = w[rows]
                options = {}
                if est_method != "reg":
                    options["pscore"] = drdid.fit_logit(d, x, ws / ws.mean())
                a, M = _PANEL_ESTIMATORS[est_method](identity, 0 * identity, d, x, ws, **options)
                M = M * (n / len(rows))
            index[key] = len(maps)
            C = group_sums(M, cluster[rows], n_clusters)
            maps.append((rows, np.asarray(a, dtype=float), C))
        kept.append(j)
        mapping.append(index[key])
    kept_arr = np.array(kept, dtype=np.int64)
    order = np.lexsort((times[cur[kept_arr]], group[kept_arr]))  # att_gt rows: cohort, period
    kept_arr = kept_arr[order]
    return GroupTimeMaps(
        group=group[kept_arr],
        time=times[cur[kept_arr]],
        cur=cur[kept_arr],
        pre=pre[kept_arr],
        mapping=np.array(mapping, dtype=np.int64)[order],
        maps=maps,
        y=design.y,
        unit_cohort=cohort,
        unit_weight=w,
        unit_cluster=cluster,
        times=times,
    )
