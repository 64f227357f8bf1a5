"""Dynamic two-way fixed-effects (TWFE) event study.

The regression is

.. math::

    y_{it} = \\alpha_i + \\lambda_t + \\sum_{k \\ne r} \\beta_k \\, 1[\\,b(t - g_i) = k\\,]
    + X_{it}'\\gamma + \\varepsilon_{it},

with unit effects :math:`\\alpha_i`, year effects :math:`\\lambda_t`, first membership year
:math:`g_i` (never-treated units have every indicator 0), reference period
:math:`r = \\text{reference} - \\text{anticipation}` (default :math:`-1`), and
:math:`b(k) = \\min(\\max(k, lo), hi)` binning the end points of ``window=(lo, hi)`` (no binning
when ``window`` is None). It is estimated by weighted least squares on within-transformed data
(Frisch–Waugh–Lovell), with analytic weights as in fixest's and pyfixest's ``weights=``.

Under heterogeneous effects across cohorts the :math:`\\beta_k` mix effects of other periods and
cohorts with possibly negative weights (Sun & Abraham 2021; Goodman-Bacon 2021); this estimator is
the conventional benchmark against which the heterogeneity-robust estimators are compared.

Two computational routes give the same numbers:

* balanced panels (complete unit × year layout, weights constant within unit): the indicators
  depend only on (cohort, year), so their within transformation is the closed-form two-way
  transformation of a cohort × year table, and every moment (Gram matrix, cross products,
  cluster scores) is a small table product. Nothing of size n × (number of event times) is built,
  which keeps 100 000 units × 21 years well under a second.
* unbalanced panels: the dense design is demeaned by accelerated alternating projections
  (``finsam_eval.core.demean``), after removing singleton observations iteratively (units or
  years observed once, as pyfixest does by default; they fit perfectly and only inflate N).

References
----------
Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing. Journal
of Econometrics 225(2), 254–277.
Sun & Abraham (2021), on the contamination of these coefficients under heterogeneous effects:
see :mod:`finsam_eval.estimators.sun_abraham`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.core import (
    demean,
    group_sums,
    is_nested,
    n_params_with_fixed_effects,
    sandwich,
    small_sample_factor,
)
from finsam_eval.estimators.event_study import dropped_rows, merged_dropped, t_table
from finsam_eval.estimators.event_tables import EventTables, regression_event_tables
from finsam_eval.estimators.prepare import EstimationInputError
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import EstimationSpec, fit_contract

__all__ = ["fit"]

VCOV_TYPES = {"cluster": "CRV1", "CRV1": "CRV1", "hetero": "HC1", "HC1": "HC1", "iid": "iid"}
# relative tolerance of the sequential Cholesky collinearity check (pyfixest's collin_tol)
COLLINEARITY_TOL = 1e-9


def _compress(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Recode non-negative integer codes to 0..L-1 keeping their order (no sort: O(n))."""
    present = np.bincount(codes) > 0
    mapping = np.cumsum(present) - 1
    return mapping[codes], int(present.sum())


def _drop_singletons(unit: np.ndarray, time_code: np.ndarray) -> np.ndarray:
    """Mask of rows kept after iteratively removing units or years observed only once."""
    keep = np.ones(len(unit), dtype=bool)
    while True:
        single = (np.bincount(unit, weights=keep)[unit] == 1) | (
            np.bincount(time_code, weights=keep)[time_code] == 1
        )
        single &= keep
        if not single.any():
            return keep
        keep &= ~single


def _independent_columns(gram: np.ndarray, raw_ss: np.ndarray, tol: float) -> list[int]:
    """Columns kept by a sequential Cholesky-type check, in order.

    A column is dropped when the fixed effects absorb it (its demeaned sum of squares is at most
    ``tol`` times its raw one) or when the earlier kept columns explain all but ``tol`` of it.
    """
    keep: list[int] = []
    for j in range(gram.shape[0]):
        d = gram[j, j]
        if not d > tol * raw_ss[j]:
            continue
        residual = d
        if keep:
            g_kj = gram[keep, j]
            residual = d - g_kj @ np.linalg.solve(gram[np.ix_(keep, keep)], g_kj)
        if residual > tol * d:
            keep.append(j)
    return keep


class _BalancedMoments:
    """Moments from the cohort × year structure of a complete unit × year layout."""

    def __init__(
        self,
        indicators: np.ndarray,
        cohort_weight: np.ndarray,
        cohort_of_row: np.ndarray,
        time_code: np.ndarray,
        unit: np.ndarray,
        w: np.ndarray,
        y: np.ndarray,
        x: np.ndarray,
    ) -> None:
        n_g, n_t, p = indicators.shape
        self.n_g, self.n_t, self.p = n_g, n_t, p
        # the within transformation of an indicator depends on (cohort, year) only: demean the
        # cohort × year table with cohort weights (row means over years, weighted year means)
        table = demean(
            indicators.reshape(n_g * n_t, p),
            [np.repeat(np.arange(n_g), n_t), np.tile(np.arange(n_t), n_g)],
            np.repeat(cohort_weight, n_t),
        )
        self.a = table.values.reshape(n_g, n_t, p)
        within = demean(np.column_stack([y, x]), [unit, time_code], w)
        self.method = within.method
        self.iterations = within.iterations
        self.y = within.values[:, 0]
        self.x = within.values[:, 1:]
        self.w = w
        self.cell = cohort_of_row * n_t + time_code
        self.n_units = int(unit.max()) + 1
        unit_year = unit * n_t + time_code
        # prepare_panel sorts by unit then year, so a unit × year table is usually a reshape
        self.unit_year = None if np.array_equal(unit_year, np.arange(len(unit))) else unit_year
        wy = np.bincount(self.cell, weights=w * self.y, minlength=n_g * n_t).reshape(n_g, n_t)
        wx = group_sums(self.x, self.cell, n_g * n_t, weights=w).reshape(n_g, n_t, -1)
        gram_dd = np.einsum("g,gtj,gtk->jk", cohort_weight, self.a, self.a)
        gram_dx = np.einsum("gtj,gtk->jk", self.a, wx)
        gram_xx = self.x.T @ (self.x * w[:, None])
        self.gram = np.block([[gram_dd, gram_dx], [gram_dx.T, gram_xx]])
        self.rhs = np.concatenate([np.einsum("gtj,gt->j", self.a, wy), self.x.T @ (w * self.y)])
        self.raw_ss = np.concatenate(
            [np.einsum("g,gtj->j", cohort_weight, indicators**2), (x**2 * w[:, None]).sum(axis=0)]
        )

    def _split(self, keep: list[int]) -> tuple[list[int], list[int]]:
        return [j for j in keep if j < self.p], [j - self.p for j in keep if j >= self.p]

    def residuals(self, coef: np.ndarray, keep: list[int]) -> np.ndarray:
        keep_d, keep_x = self._split(keep)
        fitted_table = self.a[:, :, keep_d] @ coef[: len(keep_d)]
        return self.y - fitted_table.ravel()[self.cell] - self.x[:, keep_x] @ coef[len(keep_d) :]

    def unit_scores(
        self, wu: np.ndarray, keep: list[int], unit: np.ndarray, cohort_of_unit: np.ndarray
    ) -> np.ndarray:
        keep_d, keep_x = self._split(keep)
        # each unit's score is its year profile of weighted residuals times its cohort's
        # demeaned indicator table
        if self.unit_year is None:
            profile = wu.reshape(self.n_units, self.n_t)
        else:
            profile = np.bincount(
                self.unit_year, weights=wu, minlength=self.n_units * self.n_t
            ).reshape(self.n_units, self.n_t)
        scores = np.empty((self.n_units, len(keep_d) + len(keep_x)))
        for g in range(self.n_g):
            rows = cohort_of_unit == g
            scores[rows, : len(keep_d)] = profile[rows] @ self.a[g][:, keep_d]
        scores[:, len(keep_d) :] = group_sums(self.x[:, keep_x], unit, self.n_units, weights=wu)
        return scores

    def hetero_meat(self, q: np.ndarray, keep: list[int]) -> np.ndarray:
        keep_d, keep_x = self._split(keep)
        a = self.a[:, :, keep_d]
        x = self.x[:, keep_x]
        q_table = np.bincount(self.cell, weights=q, minlength=self.n_g * self.n_t)
        qx = group_sums(x, self.cell, self.n_g * self.n_t, weights=q).reshape(
            self.n_g, self.n_t, -1
        )
        meat_dd = np.einsum("gt,gtj,gtk->jk", q_table.reshape(self.n_g, self.n_t), a, a)
        meat_dx = np.einsum("gtj,gtk->jk", a, qx)
        return np.block([[meat_dd, meat_dx], [meat_dx.T, x.T @ (x * q[:, None])]])


class _DenseMoments:
    """Moments from an explicitly demeaned design (unbalanced panels)."""

    def __init__(
        self,
        design: np.ndarray,
        unit: np.ndarray,
        time_code: np.ndarray,
        w: np.ndarray,
        y: np.ndarray,
    ) -> None:
        within = demean(np.column_stack([y, design]), [unit, time_code], w)
        self.method = within.method
        self.iterations = within.iterations
        if not within.converged:
            raise RuntimeError("alternating projections did not converge")
        self.y = within.values[:, 0]
        self.z = within.values[:, 1:]
        self.gram = self.z.T @ (self.z * w[:, None])
        self.rhs = self.z.T @ (w * self.y)
        self.raw_ss = (design**2 * w[:, None]).sum(axis=0)

    def residuals(self, coef: np.ndarray, keep: list[int]) -> np.ndarray:
        return self.y - self.z[:, keep] @ coef

    def unit_scores(
        self, wu: np.ndarray, keep: list[int], unit: np.ndarray, cohort_of_unit: np.ndarray
    ) -> np.ndarray:
        return group_sums(self.z[:, keep], unit, len(cohort_of_unit), weights=wu)

    def hetero_meat(self, q: np.ndarray, keep: list[int]) -> np.ndarray:
        z = self.z[:, keep]
        return z.T @ (z * q[:, None])


@fit_contract("twfe")
def fit(data: pd.DataFrame, spec: EstimationSpec) -> EstimationResult:
    """Dynamic TWFE event study with unit and year fixed effects.

    Specification
    -------------
    control
        Recorded only: TWFE compares with every not-yet- and never-treated observation through
        the year effects.
    covariates
        Time-varying covariate columns :math:`X_{it}`.
    weights
        The fit minimises :math:`\\sum w_i \\hat\\varepsilon_{it}^2`, as pyfixest's ``weights=``.
    anticipation
        The reference period becomes ``reference - anticipation``.
    window
        ``(lo, hi)`` event-time window with binned end points: relative times :math:`\\le lo`
        share the ``lo`` indicator and :math:`\\ge hi` the ``hi`` one. None uses every observed
        relative time without binning.
    reference
        Omitted (normalised) relative time before the anticipation shift, default -1.
    vcov
        "cluster" (CRV1, default), "hetero" (HC1) or "iid".
    alpha
        Level of the t intervals (t with G - 1 degrees of freedom for CRV1, N - K otherwise, as
        fixest).

    Returns
    -------
    EstimationResult
        ``event_study`` has one row per event time, including the reference period with
        estimate 0, NaN standard error and ``reference=True``; ``vcov`` covers the estimated event
        times. ``overall`` is the equally weighted mean of the estimated post-treatment
        coefficients (event times :math:`\\ge 0`), excluding the upper end point when it bins
        later periods, with standard error :math:`\\sqrt{a'\\hat V a}`.
        ``event_influence`` (CRV1 only; None for HC1 and iid) holds unit-level influence
        functions in ``event_study`` row order, a zero column for each reference row:
        :math:`\\psi_i = \\sqrt{c}\\, n\\, (\\tilde Z'W\\tilde Z)^{-1} s_i` with unit
        :math:`i`'s score :math:`s_i = \\sum_t w_{it}\\hat u_{it}\\tilde z_{it}`, :math:`n`
        retained units and the CR1 factor :math:`c` *included*, so that with
        :math:`\\Psi_g = \\sum_{i \\in g}\\psi_i` summed within the clusters,
        :math:`\\sum_g \\Psi_g\\Psi_g'/n^2 = \\hat V` and a multiplier bootstrap over
        clusters reproduces the analytic standard errors. ``unit_labels`` names its rows (units
        left after singleton removal).

    Notes
    -----
    *Collinearity.* Without never-treated units the fully dynamic specification (no binning) is
    collinear: relative time :math:`t - g_i` is the difference of a year and a unit effect. As in
    fixest/pyfixest practice (``ref = c(-1, min)``), the most negative relative time is then
    normalised too; it is listed in ``info["normalized_event_times"]`` and shown as a reference
    row. Any further column collinear with the fixed effects or earlier columns (sequential
    Cholesky check, tolerance 1e-9) is dropped and listed in ``collinear_dropped``.

    *Variance.* CRV1 (Cameron, Gelbach & Miller 2011) with the factor
    :math:`\\frac{G}{G-1}\\frac{N-1}{N-K}`, where :math:`K` counts the slopes and the fixed
    effects not nested in the clusters (fixest's ``fixef.K = "nested"`` and Stata ``xtreg, fe``
    convention; see ``finsam_eval.core.cluster``): unit effects are nested when clusters are at
    the unit level or coarser, so :math:`K = k + T`. HC1 and iid count every fixed-effect level,
    :math:`K = k + N_{units} + T - 1`.
    """
    control, anticipation, window, alpha = spec.values("control anticipation window alpha")
    reference, vcov = spec.values("reference vcov")
    vcov_kind, lo, hi = _check_options(control, vcov, reference, window)
    # TWFE needs no never-treated group (see the collinearity note)
    panel = spec.prepare(data, control="notyet")
    notes = spec.fit_notes(panel)
    rows = _informative_rows(panel)
    events = _event_times(rows, int(reference), int(anticipation), window, lo, hi, notes)
    moments = _moments(rows, events, window, lo, hi, panel.balanced)
    names: list[Any] = [*events.event_times, *panel.covariates]
    keep, collinear = _kept_columns(moments, names, notes)
    fitted = _solve_and_variance(moments, keep, rows, vcov_kind)
    tables, post, covariate_table = _result_tables(fitted, names, keep, events, hi, alpha, notes)
    n_clusters = rows.n_clusters if vcov_kind == "CRV1" else None
    info = panel.info()
    info.update(
        {
            "control": "never- and not-yet-treated (year effects); control option ignored",
            "requested_control": control,
            "n_obs": rows.n_obs,
            "n_units": rows.n_units,
            "n_clusters": n_clusters,  # (None overrides the panel's count: not clustered)
            "reference": events.ref,
            "normalized_event_times": events.normalized,
            "window": window,
            "binned": {"lower": events.binned_low, "upper": events.binned_high},
            "n_params": fitted["n_params"],
            "small_sample_factor": fitted["factor"],
            "demeaning": moments.method,
            "demeaning_iterations": moments.iterations,
            "covariate_coefficients": covariate_table,
            "dropped": merged_dropped(rows.dropped, panel),
            "warnings": notes,
        }
    )
    return tables.result(
        "twfe",
        info,
        rows.unit_labels,
        overall_event_times=post,
        df_t=fitted["df_t"],
        collinear_dropped=collinear,
        n_clusters=n_clusters,
        vcov_type=vcov_kind,
    )


def _check_options(
    control: str, vcov: str, reference: float, window: Any
) -> tuple[str, int | None, int | None]:
    """Validate TWFE's options; return the variance kind and the window's end points."""
    if control not in ("never", "notyet"):
        raise EstimationInputError(
            f"control={control!r} is not defined for method='twfe'; use one of "
            "['never', 'notyet'] (TWFE's year effects use every untreated row either way)"
        )
    if vcov not in VCOV_TYPES:
        raise EstimationInputError(f"vcov must be one of {sorted(VCOV_TYPES)}, got {vcov!r}")
    if int(reference) != reference:
        raise EstimationInputError(f"reference must be an integer relative time: {reference}")
    lo = hi = None
    if window is not None:
        if len(window) != 2 or any(int(v) != v for v in window) or window[0] >= window[1]:
            raise EstimationInputError(f"window must be two integers (lo, hi), lo < hi: {window}")
        lo, hi = int(window[0]), int(window[1])
    return VCOV_TYPES[vcov], lo, hi


@dataclass
class _Rows:
    """Rows of the prepared panel that carry information for TWFE, as arrays and codes."""

    unit_code: np.ndarray
    year: np.ndarray
    cohort_year: np.ndarray
    w: np.ndarray
    y: np.ndarray
    x: np.ndarray
    cluster_code: np.ndarray
    unit_labels: np.ndarray
    dropped: list[pd.DataFrame]
    n_obs: int = 0
    first_row: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    n_units: int = 0
    time_code: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    n_times: int = 0
    times: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    cohort_levels: np.ndarray = field(default_factory=lambda: np.empty(0))
    cohort_of_unit: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    cohort_of_row: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    cluster_of_unit: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    n_clusters: int = 0


def _informative_rows(panel: Any) -> _Rows:
    """Drop zero-weight rows (and singletons when unbalanced), reported; code units and years."""
    frame = panel.data
    r = _Rows(
        unit_code=frame["unit"].to_numpy(),
        year=frame["time"].to_numpy(),
        cohort_year=frame["cohort"].to_numpy(),
        w=frame["weight"].to_numpy(dtype=np.float64),
        y=frame["y"].to_numpy(dtype=np.float64),
        x=(
            frame[panel.covariates].to_numpy(dtype=np.float64)
            if panel.covariates
            else np.empty((len(frame), 0))
        ),
        cluster_code=frame["cluster"].to_numpy(),
        unit_labels=panel.unit_labels,
        dropped=[panel.dropped],
    )
    keep_rows = r.w > 0
    reasons = ["zero weight"]
    if not panel.balanced:
        year0 = r.year - r.year.min()
        keep_rows &= _drop_singletons(r.unit_code, year0)
        reasons.append("singleton")
    if not keep_rows.all():
        reason = " or ".join(reasons) + " observation (no information for TWFE)"
        r.dropped.append(dropped_rows(panel, ~keep_rows, reason))
        r.unit_code, r.year, r.cohort_year = (
            r.unit_code[keep_rows],
            r.year[keep_rows],
            r.cohort_year[keep_rows],
        )
        r.w, r.y, r.x = r.w[keep_rows], r.y[keep_rows], r.x[keep_rows]
        r.cluster_code = r.cluster_code[keep_rows]
        r.unit_labels = r.unit_labels[np.bincount(r.unit_code, minlength=len(r.unit_labels)) > 0]
        r.unit_code, _ = _compress(r.unit_code)
        r.cluster_code, _ = _compress(r.cluster_code)
    # rows are sorted by unit then year (prepare_panel), so a unit's first row starts its block
    r.n_obs = len(r.y)
    r.first_row = np.flatnonzero(np.r_[True, r.unit_code[1:] != r.unit_code[:-1]])
    r.n_units = len(r.first_row)
    year_offset = int(r.year.min())
    r.time_code, r.n_times = _compress(r.year - year_offset)
    r.times = np.flatnonzero(np.bincount(r.year - year_offset) > 0) + year_offset
    r.cohort_levels, r.cohort_of_unit = np.unique(r.cohort_year[r.first_row], return_inverse=True)
    r.cohort_of_row = r.cohort_of_unit[r.unit_code]
    r.cluster_of_unit = r.cluster_code[r.first_row]
    r.n_clusters = int(r.cluster_of_unit.max()) + 1
    return r


@dataclass
class _Events:
    """Estimated and normalised event times of the design."""

    ref: int
    event_times: list[int]
    normalized: list[int]
    binned_low: bool
    binned_high: bool


def _event_times(
    r: _Rows,
    reference: int,
    anticipation: int,
    window: Any,
    lo: int | None,
    hi: int | None,
    notes: list[str],
) -> _Events:
    """Event times with an indicator, the normalised ones and whether the end points bin."""
    ref = reference - anticipation
    treated = r.cohort_year > 0
    relative = (r.year - r.cohort_year)[treated]
    if not relative.size:
        raise EstimationInputError(
            "no observation of a treated unit is left (every unit is never treated, or "
            "anticipation moves every treated row out of the panel): no event-time effect to "
            "estimate"
        )
    binned_low = window is not None and bool(relative.min() < lo)
    binned_high = window is not None and bool(relative.max() > hi)
    if window is not None:
        if not lo <= ref <= hi:
            raise EstimationInputError(f"reference period {ref} lies outside the window {window}")
        relative = np.clip(relative, lo, hi)
    rel_min = int(relative.min())
    observed = np.flatnonzero(np.bincount(relative - rel_min) > 0) + rel_min
    if ref not in observed:
        raise EstimationInputError(
            f"reference period {ref} (reference {reference}, anticipation {anticipation}) is not "
            f"observed for any treated unit; observed relative times: {observed.tolist()}"
        )
    normalized = [ref]
    event_times = [int(e) for e in observed if e != ref]
    has_never = bool((r.cohort_levels == 0).any())
    if not has_never and not binned_low and not binned_high and event_times:
        lowest = event_times.pop(0)
        normalized.append(lowest)
        msg = (
            "no never-treated units: the fully dynamic TWFE specification is collinear, so the "
            f"most negative relative time {lowest} is normalised to 0 as well as {ref}"
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        notes.append(msg)
    if not event_times:
        raise EstimationInputError("no event-time indicator besides the reference period")
    return _Events(ref, event_times, normalized, binned_low, binned_high)


def _moments(
    r: _Rows, events: _Events, window: Any, lo: int | None, hi: int | None, balanced: bool
) -> _BalancedMoments | _DenseMoments:
    """Event-time indicators (binned at the window's end points) and their moments."""
    column_of = {e: j for j, e in enumerate(events.event_times)}
    p = len(events.event_times)

    def indicator_column(rel: np.ndarray) -> np.ndarray:
        """Column of each relative time in the design, -1 for none (reference or never)."""
        if window is not None:
            rel = np.clip(rel, lo, hi)
        lookup = np.full(int(rel.max() - rel.min()) + 1, -1)
        for e, j in column_of.items():
            if rel.min() <= e <= rel.max():
                lookup[e - rel.min()] = j
        return lookup[rel - rel.min()]

    if balanced:
        table_rel = r.times[None, :] - r.cohort_levels[:, None]
        cols = indicator_column(table_rel.ravel()).reshape(table_rel.shape)
        cols[r.cohort_levels == 0] = -1
        indicators = np.zeros((len(r.cohort_levels), r.n_times, p))
        g_idx, t_idx = np.nonzero(cols >= 0)
        indicators[g_idx, t_idx, cols[g_idx, t_idx]] = 1.0
        cohort_weight = np.bincount(r.cohort_of_unit, weights=r.w[r.first_row])
        return _BalancedMoments(
            indicators, cohort_weight, r.cohort_of_row, r.time_code, r.unit_code, r.w, r.y, r.x
        )
    treated = r.cohort_year > 0
    design = np.zeros((r.n_obs, p + r.x.shape[1]))
    cols = np.full(r.n_obs, -1)
    cols[treated] = indicator_column((r.year - r.cohort_year)[treated])
    rows = np.flatnonzero(cols >= 0)
    design[rows, cols[rows]] = 1.0
    design[:, p:] = r.x
    return _DenseMoments(design, r.unit_code, r.time_code, r.w, r.y)


def _kept_columns(
    moments: _BalancedMoments | _DenseMoments, names: list[Any], notes: list[str]
) -> tuple[list[int], list[Any]]:
    """Columns kept by the collinearity check and the names of those dropped (warned)."""
    keep = _independent_columns(moments.gram, moments.raw_ss, COLLINEARITY_TOL)
    collinear = [names[j] for j in range(len(names)) if j not in keep]
    if collinear:
        msg = f"dropped as collinear with the fixed effects or other regressors: {collinear}"
        warnings.warn(msg, UserWarning, stacklevel=3)
        notes.append(msg)
    return keep, collinear


def _solve_and_variance(
    moments: _BalancedMoments | _DenseMoments, keep: list[int], r: _Rows, vcov_kind: str
) -> dict[str, Any]:
    """WLS coefficients of the kept columns and their CRV1, HC1 or iid variance."""
    gram = moments.gram[np.ix_(keep, keep)]
    bread_inverse = np.linalg.inv(gram)
    coef = bread_inverse @ moments.rhs[keep]
    resid = moments.residuals(coef, keep)
    wu = r.w * resid

    fe_levels = [r.n_units, r.n_times]
    if vcov_kind == "CRV1":
        nested = [is_nested(r.unit_code, r.cluster_code), is_nested(r.time_code, r.cluster_code)]
        n_params = n_params_with_fixed_effects(len(keep), fe_levels, nested)
        factor = small_sample_factor("CRV1", r.n_obs, n_params, r.n_clusters)
        unit_scores = moments.unit_scores(wu, keep, r.unit_code, r.cohort_of_unit)
        scores = (
            unit_scores
            if r.n_clusters == r.n_units
            else group_sums(unit_scores, r.cluster_of_unit, r.n_clusters)
        )
        v = sandwich(bread_inverse, scores.T @ scores, factor)
        # unit-level influence functions with the CR1 factor: the cluster-summed
        # psi'psi / n_units**2 is v
        psi = (np.sqrt(factor) * r.n_units) * (unit_scores @ bread_inverse)
        df_t = r.n_clusters - 1
    else:
        psi = None
        n_params = n_params_with_fixed_effects(len(keep), fe_levels)
        if vcov_kind == "HC1":
            factor = small_sample_factor("HC1", r.n_obs, n_params)
            v = sandwich(bread_inverse, moments.hetero_meat(wu**2, keep), factor)
        else:
            factor = small_sample_factor("iid", r.n_obs, n_params)
            v = factor * float(wu @ resid) * bread_inverse
        df_t = r.n_obs - n_params
    se = np.sqrt(np.diag(v))
    return {
        "coef": coef,
        "v": v,
        "se": se,
        "psi": psi,
        "n_params": n_params,
        "factor": factor,
        "df_t": df_t,
    }


def _result_tables(
    fitted: dict[str, Any],
    names: list[Any],
    keep: list[int],
    events: _Events,
    hi: int | None,
    alpha: float,
    notes: list[str],
) -> tuple[EventTables, list[int], pd.DataFrame]:
    """Event-study tables (reference rows, influence, vcov, overall), the event times the
    overall effect averages, and the covariate table."""
    coef, v, se, psi, df_t = (fitted[k] for k in ("coef", "v", "se", "psi", "df_t"))
    p = len(events.event_times)
    kept_names = [names[j] for j in keep]
    n_event = sum(1 for j in keep if j < p)
    estimated = {e: i for i, e in enumerate(kept_names[:n_event])}
    shown = sorted([*estimated, *events.normalized])
    # the upper end point is not an effect when it bins later periods
    post = [e for e in estimated if e >= 0 and not (events.binned_high and e == hi)]
    tables = regression_event_tables(coef, v, se, psi, estimated, shown, post, df_t, alpha, notes)
    covariate_table = pd.DataFrame(
        {
            "term": kept_names[n_event:],
            **t_table(coef[n_event:], se[n_event:], df_t, alpha),
        }
    )
    return tables, post, covariate_table
