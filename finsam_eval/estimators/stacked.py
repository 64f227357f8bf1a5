"""Stacked difference-in-differences with corrective weights (Wing, Freedman & Hollingsworth 2024).

For every adoption cohort :math:`a` whose event window :math:`[a + lo, a + hi]` lies inside the
sample, a *sub-experiment* :math:`s = a` holds the units of cohort :math:`a` (treated,
:math:`D_{si} = 1`) and the clean controls (:math:`D_{si} = 0`): never-treated units
(``control="never"``) or, with ``control="notyet"``, also units first treated after the window,
:math:`g_i - \\text{anticipation} > a + hi`. The stacked regression is

.. math::

    y_{sit} = \\alpha_{si} + \\lambda_{st}
    + \\sum_{h \\in [lo, hi],\\, h \\ne r} \\delta_h\\, D_{si}\\, 1[t - a = h] + \\varepsilon_{sit},

with sub-experiment × unit effects :math:`\\alpha_{si}`, sub-experiment × period effects
:math:`\\lambda_{st}`, reference period :math:`r = -1 - \\text{anticipation}`, and weighted least
squares with the corrective weights of Wing et al. (2024, Table 1, "trimmed aggregate ATT"):
treated rows get :math:`Q = 1`, control rows of sub-experiment :math:`a` at event time :math:`e`

.. math::

    Q_{ae} = \\frac{N^D_{ae} / N^D_{e}}{N^C_{ae} / N^C_{e}},

where :math:`N^D_{ae}` (:math:`N^C_{ae}`) is the treated (control) mass of sub-experiment
:math:`a` at event time :math:`e` and :math:`N^D_e, N^C_e` its sum over sub-experiments. In a
balanced panel the weights do not depend on :math:`e`, the weighted treated share is the same in
every sub-experiment, and

.. math::

    \\hat\\delta_h = \\sum_a \\frac{N^D_a}{N^D}\\,\\Big[(\\bar y^{D}_{a,a+h} - \\bar y^{D}_{a,a+r})
    - (\\bar y^{C}_{a,a+h} - \\bar y^{C}_{a,a+r})\\Big],

the cohort-size-weighted average of the sub-experiment 2×2 DiDs: the same number as the
regression on :math:`D_{si}`, event-time dummies and their interactions without fixed effects
(the paper's equation 3 and diff-diff's ``StackedDiD``). Analytic weights :math:`w_i` (constant
within unit) multiply :math:`Q` and enter the masses :math:`N`, giving the population-weighted
trimmed aggregate ATT.

Computation. In a balanced panel each sub-experiment is a complete unit × event-time layout with
weights constant within unit, so the within transformation of the interaction columns depends
only on (sub-experiment, treated, event time): it is computed on that small table
(``finsam_eval.core.demean``), and the Gram matrix, right-hand side and unit scores are small
products with the outcome block of each sub-experiment. Nothing of size (stacked rows × event
times) is built. Unbalanced panels (``unbalanced="keep"``) stack the rows and demean the design
by alternating projections.

Inference. CRV1 clustered by unit (or ``cluster=``; a unit appears in several sub-experiments
and its scores are summed first), with the factor :math:`\\frac{G}{G-1}\\frac{N-1}{N-K}`, where
:math:`N` counts stacked observations and :math:`K` the slopes plus the non-nested fixed effects
(fixest's ``fixef.K = "nested"``), and t intervals with :math:`G - 1` degrees of freedom, as in
``method="twfe"``.

References
----------
Wing, C., Freedman, S. M., & Hollingsworth, A. (2024). Stacked difference-in-differences. NBER
Working Paper 32054.
Cengiz, D., Dube, A., Lindner, A., & Zipperer, B. (2019). The effect of minimum wages on low-wage
jobs. Quarterly Journal of Economics 134(3), 1405–1454.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.core import demean, group_sums, n_params_with_fixed_effects, small_sample_factor
from finsam_eval.estimators.event_tables import EventTables, influence_rows, regression_event_tables
from finsam_eval.estimators.prepare import (
    EstimationInputError,
    require_consecutive_periods,
)
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import EstimationSpec, fit_contract

__all__ = ["DEFAULT_WINDOW", "fit"]

# five pre-periods and the joining year plus five years after: with 1998–2018 and cohorts
# 2004–2015 this keeps the cohorts 2004–2013 (a + 5 <= 2018) and trims 2014–2015
DEFAULT_WINDOW = (-5, 5)


def _validate_window(window: tuple[int, int] | None, ref: int) -> tuple[int, int]:
    lo, hi = DEFAULT_WINDOW if window is None else window
    if int(lo) != lo or int(hi) != hi or lo >= hi:
        raise EstimationInputError(f"window must be two integers (lo, hi), lo < hi: {window}")
    lo, hi = int(lo), int(hi)
    if not lo <= ref < hi or hi < 0:
        raise EstimationInputError(
            f"window {(lo, hi)} must contain the reference period {ref} and event time 0"
        )
    return lo, hi


def _adaptive_window(
    cohort_sizes: dict[int, float], t_min: int, t_max: int, ref: int
) -> tuple[int, int] | None:
    """The window inside ``DEFAULT_WINDOW`` with the most treated unit × event-time cells.

    Used only when no cohort's full default window lies inside the sample (short panels such as
    R did's 5-year ``mpdta``): every window with ``lo <= ref < hi`` and ``hi >= 0`` is scored by
    the treated mass of the cohorts it keeps times its length; ties go to the wider window,
    then the later end. None when no window keeps any cohort.
    """
    best: tuple[float, int, int, tuple[int, int]] | None = None
    for lo in range(DEFAULT_WINDOW[0], ref + 1):
        for hi in range(max(0, ref + 1), DEFAULT_WINDOW[1] + 1):
            mass = sum(n for a, n in cohort_sizes.items() if a + lo >= t_min and a + hi <= t_max)
            if mass <= 0:
                continue
            score = (mass * (hi - lo + 1), hi - lo, hi, (lo, hi))
            if best is None or score[:3] > best[:3]:
                best = score
    return None if best is None else best[3]


def _sub_experiments(
    cohorts: list[int],
    cohort_of_unit: np.ndarray,
    w_unit: np.ndarray,
    control: str,
    anticipation: int,
    window: tuple[int, int],
    span: tuple[int, int],
) -> tuple[list[int], list[tuple[np.ndarray, np.ndarray]], pd.DataFrame]:
    """Sub-experiments: kept cohorts, their treated and clean control units, trimmed cohorts.

    A cohort is trimmed when its event window leaves the sample or it has no clean control
    (never-treated units, with ``control="notyet"`` also units joining after the window) or no
    treated unit with positive weight (Wing, Freedman & Hollingsworth 2024, section 3).
    """
    (lo, hi), (t_min, t_max) = window, span
    never = cohort_of_unit == 0
    kept: list[int] = []
    trimmed: list[dict[str, Any]] = []
    members: list[tuple[np.ndarray, np.ndarray]] = []
    for a in cohorts:
        treated = np.flatnonzero((cohort_of_unit == a) & (w_unit > 0))
        if control == "never":
            clean = never
        else:
            clean = never | (cohort_of_unit - anticipation > a + hi)
        controls = np.flatnonzero(clean & (w_unit > 0))
        reason = None
        if a + lo < t_min or a + hi > t_max:
            reason = f"event window [{a + lo}, {a + hi}] not inside the sample [{t_min}, {t_max}]"
        elif len(controls) == 0:
            reason = f"no clean controls (control={control!r})"
        elif len(treated) == 0:
            reason = "no treated unit with positive weight"
        if reason:
            trimmed.append(
                {"cohort": a, "n_units": int((cohort_of_unit == a).sum()), "reason": reason}
            )
            continue
        kept.append(a)
        members.append((treated, controls))
    return kept, members, pd.DataFrame(trimmed, columns=["cohort", "n_units", "reason"])


@dataclass(frozen=True)
class _StackedInference:
    tables: EventTables
    post: list[int]
    n_clusters: int
    n_params: int
    factor: float
    df_t: int


def _crv1_event_study(
    fitted: tuple[np.ndarray, np.ndarray, np.ndarray, int, pd.DataFrame],
    cluster_of_unit: np.ndarray,
    clustered: bool,
    n_period_effects: int,
    event_times: list[int],
    window: tuple[int, int],
    alpha: float,
) -> _StackedInference:
    """CRV1 variance, influence functions, the event study with its reference row, overall."""
    coef, bread_inverse, unit_scores, n_obs, sub_table = fitted
    lo, hi = window
    p = len(event_times)
    n_clusters = int(cluster_of_unit.max()) + 1
    cluster_scores = group_sums(unit_scores, cluster_of_unit, n_clusters)
    # sub-experiment × unit effects lie inside unit (and coarser) clusters; sub-experiment ×
    # period effects do not
    n_params = n_params_with_fixed_effects(
        p, [int(sub_table["n_units"].sum()), n_period_effects], [True, False]
    )
    factor = small_sample_factor("CRV1", n_obs, n_params, n_clusters)
    score_rows = cluster_scores if clustered else unit_scores
    n_rows = score_rows.shape[0]
    psi = np.sqrt(factor) * n_rows * score_rows @ bread_inverse
    vcov = psi.T @ psi / n_rows**2
    se = np.sqrt(np.diag(vcov))
    df_t = n_clusters - 1
    # every event time of the window but the reference is estimated; the window contains 0
    position = {e: j for j, e in enumerate(event_times)}
    post = [e for e in event_times if e >= 0]
    tables = regression_event_tables(
        coef, vcov, se, psi, position, range(lo, hi + 1), post, df_t, alpha, []
    )
    return _StackedInference(
        tables=tables,
        post=post,
        n_clusters=n_clusters,
        n_params=n_params,
        factor=factor,
        df_t=df_t,
    )


def _trim_notes(
    trimmed_frame: pd.DataFrame, kept: list[int], window: tuple[int, int], control: str
) -> list[str]:
    """Warn about trimmed cohorts (returned as notes); raise when none is left."""
    notes = []
    if not trimmed_frame.empty:
        msg = (
            f"{len(trimmed_frame)} cohort(s) trimmed from the stack (window {window}, "
            f"control={control!r}): {trimmed_frame['cohort'].tolist()}; see "
            "info['trimmed_cohorts']"
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        notes.append(msg)
    if not kept and trimmed_frame.empty:
        raise EstimationInputError(
            "the data hold no treated cohort (every unit has cohort 0 or missing): nothing to stack"
        )
    if not kept:
        raise EstimationInputError(
            f"every cohort was trimmed for window {window} and control={control!r}:\n"
            + trimmed_frame.to_string(index=False)
        )
    return notes


def _fitting_window(
    cohorts: np.ndarray,
    cohort_of_unit: np.ndarray,
    w_unit: np.ndarray,
    window: tuple[int, int],
    span: tuple[int, int],
    ref: int,
    notes: list[str],
) -> tuple[int, int]:
    """The default window, or, when it fits no cohort (a short panel), the window that keeps
    the most treated unit × event-time cells (with a warning added to ``notes``)."""
    (lo, hi), (t_min, t_max) = window, span
    if any(a + lo >= t_min and a + hi <= t_max for a in cohorts):
        return lo, hi
    sizes = {int(a): float(w_unit[cohort_of_unit == a].sum()) for a in cohorts}
    adapted = _adaptive_window(sizes, t_min, t_max, ref)
    if adapted is None:
        return lo, hi
    msg = (
        f"the default window {DEFAULT_WINDOW} fits no cohort in the sample "
        f"[{t_min}, {t_max}]; using window={adapted} (pass window= to choose another)"
    )
    warnings.warn(msg, UserWarning, stacklevel=3)
    notes.append(msg)
    return adapted


@fit_contract("stacked")
def fit(data: pd.DataFrame, spec: EstimationSpec) -> EstimationResult:
    """Stacked DiD event study with Wing–Freedman–Hollingsworth corrective weights.

    Specification
    -------------
    control
        Clean controls of each sub-experiment: "never" (never-treated units) or "notyet" (also
        units first treated after the end of the event window, net of anticipation).
    covariates
        Not supported (the corrective weights target an unconditional estimand); must be empty.
    weights
        Multiplies the corrective weights and enters the treated and control masses.
    anticipation
        The reference period is ``-1 - anticipation`` and not-yet-treated controls must be
        untreated through ``a + hi + anticipation``.
    unbalanced
        "keep" stacks the observed rows (the corrective weights are then computed per
        sub-experiment and event time).
    window
        Event window ``(lo, hi)``, default ``(-5, 5)``; when that fits no cohort in a short
        panel, the sub-window keeping the most treated unit × event-time cells is used, with a
        warning naming it (see ``_adaptive_window``). Cohorts whose window
        ``[a + lo, a + hi]`` is not inside the sample are trimmed and reported in
        ``info["trimmed_cohorts"]``, as are cohorts without clean controls.
    alpha
        Level of the t intervals (:math:`G - 1` degrees of freedom).
    algorithm
        "auto" (cell tables for balanced panels, stacked rows otherwise), "cells" or "rows"; the
        two give the same numbers on balanced panels.

    Returns
    -------
    EstimationResult
        ``event_study`` has one row per event time in the window, the reference period with
        estimate 0, NaN standard error and ``reference=True``. ``overall`` is the equally weighted
        mean of :math:`\\hat\\delta_h` over :math:`h \\ge 0` with standard error
        :math:`\\sqrt{a'\\hat V a}`. ``event_influence`` holds the unit-level (cluster-level
        with ``cluster=``) influence functions :math:`\\psi_i = \\sqrt{c}\\, n\\,
        (\\tilde Z'W\\tilde Z)^{-1} s_i`, with :math:`s_i` unit :math:`i`'s score summed over the
        sub-experiments it appears in, so that :math:`\\psi'\\psi/n^2 = \\hat V` (CRV1); the
        reference column is zero. ``unit_labels`` names its rows.
    """
    control, covariates, cluster, anticipation, window, alpha = spec.values(
        "control covariates cluster anticipation window alpha"
    )
    algorithm = spec.option("algorithm")
    _check_stacked_options(covariates, algorithm)
    ref = -1 - int(anticipation)
    lo, hi = _validate_window(window, ref)
    panel = spec.prepare(data)
    require_consecutive_periods(panel, "stacked")
    notes = spec.fit_notes(panel)
    if algorithm == "cells" and not panel.balanced:
        raise EstimationInputError("algorithm='cells' needs a balanced panel")
    use_cells = panel.balanced if algorithm == "auto" else algorithm == "cells"

    frame = panel.data
    cohort_of_unit, w_unit, cluster_of_unit = _unit_columns(frame)
    n_units = len(w_unit)
    t_min, t_max = int(panel.times[0]), int(panel.times[-1])
    if window is None:
        lo, hi = _fitting_window(panel.cohorts, cohort_of_unit, w_unit, (lo, hi), (t_min, t_max),
                                 ref, notes)  # fmt: skip

    kept, members, trimmed_frame = _sub_experiments(
        panel.cohorts.tolist(), cohort_of_unit, w_unit, control, int(anticipation), (lo, hi),
        (t_min, t_max),
    )  # fmt: skip
    notes += _trim_notes(trimmed_frame, kept, (lo, hi), control)
    event_times = [e for e in range(lo, hi + 1) if e != ref]
    stack = _Stack(w_unit, kept, members, lo, hi, ref)
    if use_cells:
        y_matrix = frame["y"].to_numpy().reshape(n_units, len(panel.times))
        fitted = _fit_cells(y_matrix, stack, t_min)
    else:
        fitted = _fit_rows(frame, stack)
    n_obs, sub_table = fitted[3], fitted[4]

    n_period_effects = len(kept) * (hi - lo + 1)
    fit_ = _crv1_event_study(fitted, cluster_of_unit, cluster is not None, n_period_effects,
                             event_times, (lo, hi), alpha)  # fmt: skip

    info = panel.info()
    info.update(
        {
            "control": control,
            "window": (lo, hi),
            "reference": ref,
            "n_obs": n_obs,
            "n_stacked_obs": n_obs,
            "kept_cohorts": kept,
            "trimmed_cohorts": trimmed_frame,
            "n_params": fit_.n_params,
            "small_sample_factor": fit_.factor,
            "algorithm": "cells" if use_cells else "rows",
            "warnings": notes,
        }
    )
    return fit_.tables.result(
        "stacked",
        info,
        **influence_rows(data, panel),
        overall_event_times=fit_.post,
        df_t=fit_.df_t,
        n_clusters=fit_.n_clusters,
        sub_experiments=sub_table,
    )


def _check_stacked_options(covariates: Any, algorithm: str) -> None:
    """Refuse covariates and an unknown ``algorithm``."""
    if covariates:
        raise EstimationInputError("method='stacked' does not take covariates")
    if algorithm not in ("auto", "cells", "rows"):
        raise EstimationInputError(f"algorithm must be 'auto', 'cells' or 'rows': {algorithm!r}")


def _unit_columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohort, weight and cluster of each unit (rows sorted by unit, first row per unit)."""
    unit_code = frame["unit"].to_numpy()
    first_row = np.flatnonzero(np.r_[True, unit_code[1:] != unit_code[:-1]])
    return (
        frame["cohort"].to_numpy()[first_row],
        frame["weight"].to_numpy()[first_row],
        frame["cluster"].to_numpy()[first_row],
    )


def _interaction_columns(n_e: int, lo: int, ref: int) -> np.ndarray:
    """(2, n_e, p) table of the raw interaction columns D·1[e = h] by (treated, event time)."""
    event_times = [e for e in range(lo, lo + n_e) if e != ref]
    table = np.zeros((2, n_e, len(event_times)))
    for j, e in enumerate(event_times):
        table[1, e - lo, j] = 1.0
    return table


@dataclass(frozen=True)
class _Stack:
    """The stacked design both algorithms fit: unit weights, the kept cohorts with their treated
    and clean-control units, the event window ``[lo, hi]`` and the reference event time."""

    w_unit: np.ndarray
    kept: list[int]
    members: list[tuple[np.ndarray, np.ndarray]]
    lo: int
    hi: int
    ref: int

    def table(self, q_control: Any) -> pd.DataFrame:
        """One row per sub-experiment: its cohort, units, weighted masses and control weight."""
        members, w_unit = self.members, self.w_unit
        return pd.DataFrame(
            {
                "cohort": self.kept,
                "n_treated": [len(t) for t, _ in members],
                "n_control": [len(c) for _, c in members],
                "n_units": [len(t) + len(c) for t, c in members],
                "treated_mass": [w_unit[t].sum() for t, _ in members],
                "control_mass": [w_unit[c].sum() for _, c in members],
                "q_control": q_control,
            }
        )


def _fit_cells(
    y_matrix: np.ndarray, stack: _Stack, t_min: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, pd.DataFrame]:
    """Balanced panels: moments from (sub-experiment, treated, event time) tables."""
    w_unit, kept, members, lo, hi, ref = (
        stack.w_unit, stack.kept, stack.members, stack.lo, stack.hi, stack.ref
    )  # fmt: skip
    n_s, n_e = len(kept), hi - lo + 1
    mass_treated = np.array([w_unit[t].sum() for t, _ in members])
    mass_control = np.array([w_unit[c].sum() for _, c in members])
    q = (mass_treated / mass_treated.sum()) / (mass_control / mass_control.sum())
    # weighted masses of the (sub-experiment, treated) row groups: controls carry Q
    cell_mass = np.column_stack([mass_control * q, mass_treated])  # (n_s, 2)
    raw = _interaction_columns(n_e, lo, ref)
    p = raw.shape[2]
    # demeaning the cell table with row factor (s, d) and column factor (s, e), weighted by the
    # row masses, equals demeaning the stacked rows: the columns are constant within cells and
    # each sub-experiment is a complete layout with weights constant within unit
    table = np.broadcast_to(raw, (n_s, 2, n_e, p)).reshape(n_s * 2 * n_e, p)
    s_idx = np.repeat(np.arange(n_s), 2 * n_e)
    d_idx = np.tile(np.repeat([0, 1], n_e), n_s)
    e_idx = np.tile(np.arange(n_e), 2 * n_s)
    within = demean(
        table, [s_idx * 2 + d_idx, s_idx * n_e + e_idx], cell_mass.ravel()[s_idx * 2 + d_idx]
    )
    a = within.values.reshape(n_s, 2, n_e, p)
    gram = np.einsum("sd,sdej,sdek->jk", cell_mass, a, a)
    rhs = np.zeros(p)
    projections = []
    for s, (a_year, (treated, controls)) in enumerate(zip(kept, members, strict=True)):
        cols = slice(a_year + lo - t_min, a_year + hi - t_min + 1)
        block_t, block_c = y_matrix[treated, cols], y_matrix[controls, cols]
        w_t, w_c = w_unit[treated], w_unit[controls] * q[s]
        # weighted column means of y in the sub-experiment: the part of the within transform of y
        # that survives in A'y once unit means drop out (each row of A sums to zero over e)
        col_mean = (w_t @ block_t + w_c @ block_c) / (w_t.sum() + w_c.sum())
        proj_t = (block_t - col_mean) @ a[s, 1]
        proj_c = (block_c - col_mean) @ a[s, 0]
        rhs += w_t @ proj_t + w_c @ proj_c
        projections.append((proj_t, proj_c))
    bread_inverse = np.linalg.inv(gram)
    coef = bread_inverse @ rhs
    unit_scores = np.zeros((len(w_unit), p))
    for s, (treated, controls) in enumerate(members):
        proj_t, proj_c = projections[s]
        # s_i = w_i Σ_e A_e (ỹ_e - A_e'δ): the fitted part is (A'A)δ for every unit of the group
        fit_t = a[s, 1].T @ (a[s, 1] @ coef)
        fit_c = a[s, 0].T @ (a[s, 0] @ coef)
        unit_scores[treated] += w_unit[treated, None] * (proj_t - fit_t)
        unit_scores[controls] += (w_unit[controls] * q[s])[:, None] * (proj_c - fit_c)
    n_obs = int(sum(len(t) + len(c) for t, c in members) * n_e)
    return coef, bread_inverse, unit_scores, n_obs, stack.table(q)


def _fit_rows(
    frame: pd.DataFrame, stack: _Stack
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, pd.DataFrame]:
    """Any panel: stack the rows and demean the design by alternating projections."""
    w_unit, kept, members, lo, hi, ref = (
        stack.w_unit, stack.kept, stack.members, stack.lo, stack.hi, stack.ref
    )  # fmt: skip
    unit_code = frame["unit"].to_numpy()
    year = frame["time"].to_numpy()
    n_units = len(w_unit)
    rows, sub, treated_flag = [], [], []
    for s, (a_year, (treated, controls)) in enumerate(zip(kept, members, strict=True)):
        role = np.full(n_units, -1)
        role[controls] = 0
        role[treated] = 1
        r = np.flatnonzero((role[unit_code] >= 0) & (year >= a_year + lo) & (year <= a_year + hi))
        rows.append(r)
        sub.append(np.full(len(r), s))
        treated_flag.append(role[unit_code[r]])
    r = np.concatenate(rows)
    s_code = np.concatenate(sub)
    d = np.concatenate(treated_flag)
    n_s, n_e = len(kept), hi - lo + 1
    e = year[r] - np.asarray(kept)[s_code]
    e_code = e - lo
    u = unit_code[r]
    w = w_unit[u]
    # corrective weights per (sub-experiment, event time), from weighted observation counts
    cell = (s_code * n_e + e_code) * 2 + d
    mass = np.bincount(cell, weights=w, minlength=n_s * n_e * 2).reshape(n_s, n_e, 2)
    total = mass.sum(axis=0)  # (n_e, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (mass[:, :, 1] / total[:, 1]) / (mass[:, :, 0] / total[:, 0])
    q = np.where(np.isfinite(q), q, 0.0)
    omega = np.where(d == 1, w, w * q[s_code, e_code])
    raw = _interaction_columns(n_e, lo, ref)
    design = raw[d, e_code]
    keep = omega > 0
    si_code = np.unique(s_code[keep] * n_units + u[keep], return_inverse=True)[1]
    st_code = s_code[keep] * n_e + e_code[keep]
    within = demean(
        np.column_stack([frame["y"].to_numpy()[r[keep]], design[keep]]),
        [si_code, st_code],
        omega[keep],
    )
    if not within.converged:
        raise RuntimeError("alternating projections did not converge")
    y_t, z_t = within.values[:, 0], within.values[:, 1:]
    wk = omega[keep]
    gram = z_t.T @ (z_t * wk[:, None])
    bread_inverse = np.linalg.inv(gram)
    coef = bread_inverse @ (z_t.T @ (wk * y_t))
    resid = y_t - z_t @ coef
    unit_scores = group_sums(z_t, u[keep], n_units, weights=wk * resid)
    q_control = [float(np.mean(q[s][mass[s, :, 0] > 0])) for s in range(n_s)]
    return coef, bread_inverse, unit_scores, int(keep.sum()), stack.table(q_control)
