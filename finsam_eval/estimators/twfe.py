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
Sun, L., & Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects. Journal of Econometrics 225(2), 175–199.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from finsam_eval.core import (
    demean,
    group_sums,
    is_nested,
    n_params_with_fixed_effects,
    sandwich,
    small_sample_factor,
)
from finsam_eval.estimators.prepare import EstimationInputError, prepare_panel
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import check_extras

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


def _inference_table(
    estimate: np.ndarray, se: np.ndarray, df: int, alpha: float
) -> dict[str, np.ndarray]:
    critical = stats.t.ppf(1 - alpha / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * stats.t.sf(np.abs(estimate / se), df)
    return {
        "estimate": estimate,
        "se": se,
        "ci_lower": estimate - critical * se,
        "ci_upper": estimate + critical * se,
        "p_value": p_value,
    }


def fit(
    data: pd.DataFrame,
    outcome: str = "share",
    unit: str = "kommun_kod",
    time: str = "year",
    cohort: str = "cohort",
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    anticipation: int = 0,
    unbalanced: str = "balance",
    window: tuple[int, int] | None = None,
    reference: int = -1,
    vcov: str = "cluster",
    alpha: float = 0.05,
    control: str = "never",
    bootstrap: int = 0,
    **ignored: Any,
) -> EstimationResult:
    """Dynamic TWFE event study with unit and year fixed effects.

    Parameters
    ----------
    data
        Long panel, one row per unit and year.
    outcome, unit, time, cohort
        Column names; ``cohort`` is the first year of membership (0 or NaN: never).
    covariates
        Time-varying covariate columns :math:`X_{it}`.
    weights
        Analytic-weight column, constant within unit (population): the fit minimises
        :math:`\\sum w_i \\hat\\varepsilon_{it}^2`, as pyfixest's ``weights=``.
    cluster
        Cluster column, constant within unit (kommun, förbund or län); None clusters by unit.
    anticipation
        Periods of anticipation; the reference period becomes ``reference - anticipation``.
    unbalanced
        "balance" drops units not observed every year (reported); "keep" uses all rows.
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
    control
        Ignored: TWFE compares with every not-yet- and never-treated observation through the
        year effects; recorded in ``info``.
    bootstrap
        Not available for TWFE (analytic variances only); a positive value warns.
    **ignored
        ``seed`` and the CS options at their defaults (ignored); any other option raises
        ``spec.UnknownOptionError`` naming the methods that take it.

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
    Cholesky check, tolerance 1e-9) is dropped and listed in ``info["collinear_dropped"]``.

    *Variance.* CRV1 (Cameron, Gelbach & Miller 2011) with the factor
    :math:`\\frac{G}{G-1}\\frac{N-1}{N-K}`, where :math:`K` counts the slopes and the fixed
    effects not nested in the clusters (fixest's ``fixef.K = "nested"`` and Stata ``xtreg, fe``
    convention; see ``finsam_eval.core.cluster``): unit effects are nested when clusters are at
    the unit level or coarser, so :math:`K = k + T`. HC1 and iid count every fixed-effect level,
    :math:`K = k + N_{units} + T - 1`.
    """
    ignored_names = check_extras("twfe", ignored)
    if control not in ("never", "notyet"):
        raise EstimationInputError(
            f"control={control!r} is not defined for method='twfe'; use one of "
            "['never', 'notyet'] (TWFE's year effects use every untreated row either way)"
        )
    if vcov not in VCOV_TYPES:
        raise EstimationInputError(f"vcov must be one of {sorted(VCOV_TYPES)}, got {vcov!r}")
    vcov_kind = VCOV_TYPES[vcov]
    if int(reference) != reference:
        raise EstimationInputError(f"reference must be an integer relative time: {reference}")
    if window is not None:
        if len(window) != 2 or any(int(v) != v for v in window) or window[0] >= window[1]:
            raise EstimationInputError(f"window must be two integers (lo, hi), lo < hi: {window}")
        lo, hi = int(window[0]), int(window[1])
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
        control="notyet",  # TWFE needs no never-treated group (see the collinearity note)
        unbalanced=unbalanced,
    )
    notes = list(panel.warnings)
    if bootstrap:
        msg = "method='twfe' has analytic variances only; bootstrap is ignored"
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
    frame = panel.data
    unit_code = frame["unit"].to_numpy()
    year = frame["time"].to_numpy()
    cohort_year = frame["cohort"].to_numpy()
    w = frame["weight"].to_numpy(dtype=np.float64)
    y = frame["y"].to_numpy(dtype=np.float64)
    x = (
        frame[panel.covariates].to_numpy(dtype=np.float64)
        if panel.covariates
        else np.empty((len(frame), 0))
    )
    cluster_code = frame["cluster"].to_numpy()
    dropped = [panel.dropped]
    unit_labels = panel.unit_labels

    keep_rows = w > 0
    reasons = ["zero weight"]
    if not panel.balanced:
        year0 = year - year.min()
        keep_rows &= _drop_singletons(unit_code, year0)
        reasons.append("singleton")
    if not keep_rows.all():
        gone = frame.loc[~keep_rows]
        dropped.append(
            pd.DataFrame(
                {
                    "reason": " or ".join(reasons) + " observation (no information for TWFE)",
                    "unit": panel.unit_labels[gone["unit"].to_numpy()],
                    "time": gone["time"].to_numpy(),
                    "n_rows": 1,
                }
            )
        )
        unit_code, year, cohort_year = unit_code[keep_rows], year[keep_rows], cohort_year[keep_rows]
        w, y, x, cluster_code = w[keep_rows], y[keep_rows], x[keep_rows], cluster_code[keep_rows]
        unit_labels = unit_labels[np.bincount(unit_code, minlength=len(unit_labels)) > 0]
        unit_code, _ = _compress(unit_code)
        cluster_code, _ = _compress(cluster_code)
    # rows are sorted by unit then year (prepare_panel), so a unit's first row starts its block
    n_obs = len(y)
    first_row = np.flatnonzero(np.r_[True, unit_code[1:] != unit_code[:-1]])
    n_units = len(first_row)
    year_offset = int(year.min())
    time_code, n_times = _compress(year - year_offset)
    times = np.flatnonzero(np.bincount(year - year_offset) > 0) + year_offset
    cohort_levels, cohort_of_unit = np.unique(cohort_year[first_row], return_inverse=True)
    cohort_of_row = cohort_of_unit[unit_code]
    cluster_of_unit = cluster_code[first_row]
    n_clusters = int(cluster_of_unit.max()) + 1

    # ---- event-time indicators ------------------------------------------------------------
    ref = int(reference) - int(anticipation)
    treated = cohort_year > 0
    relative = (year - cohort_year)[treated]
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
    has_never = bool((cohort_levels == 0).any())
    if not has_never and not binned_low and not binned_high and event_times:
        lowest = event_times.pop(0)
        normalized.append(lowest)
        msg = (
            "no never-treated units: the fully dynamic TWFE specification is collinear, so the "
            f"most negative relative time {lowest} is normalised to 0 as well as {ref}"
        )
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
    if not event_times:
        raise EstimationInputError("no event-time indicator besides the reference period")
    column_of = {e: j for j, e in enumerate(event_times)}
    p = len(event_times)

    def indicator_column(rel: np.ndarray) -> np.ndarray:
        """Column of each relative time in the design, -1 for none (reference or never)."""
        if window is not None:
            rel = np.clip(rel, lo, hi)
        lookup = np.full(int(rel.max() - rel.min()) + 1, -1)
        for e, j in column_of.items():
            if rel.min() <= e <= rel.max():
                lookup[e - rel.min()] = j
        return lookup[rel - rel.min()]

    if panel.balanced:
        table_rel = times[None, :] - cohort_levels[:, None]
        cols = indicator_column(table_rel.ravel()).reshape(table_rel.shape)
        cols[cohort_levels == 0] = -1
        indicators = np.zeros((len(cohort_levels), n_times, p))
        g_idx, t_idx = np.nonzero(cols >= 0)
        indicators[g_idx, t_idx, cols[g_idx, t_idx]] = 1.0
        cohort_weight = np.bincount(cohort_of_unit, weights=w[first_row])
        moments: _BalancedMoments | _DenseMoments = _BalancedMoments(
            indicators, cohort_weight, cohort_of_row, time_code, unit_code, w, y, x
        )
    else:
        design = np.zeros((n_obs, p + x.shape[1]))
        cols = np.full(n_obs, -1)
        cols[treated] = indicator_column((year - cohort_year)[treated])
        rows = np.flatnonzero(cols >= 0)
        design[rows, cols[rows]] = 1.0
        design[:, p:] = x
        moments = _DenseMoments(design, unit_code, time_code, w, y)

    # ---- estimation ---------------------------------------------------------------------------
    names: list[Any] = [*event_times, *panel.covariates]
    keep = _independent_columns(moments.gram, moments.raw_ss, COLLINEARITY_TOL)
    collinear = [names[j] for j in range(len(names)) if j not in keep]
    if collinear:
        msg = f"dropped as collinear with the fixed effects or other regressors: {collinear}"
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
    gram = moments.gram[np.ix_(keep, keep)]
    bread_inverse = np.linalg.inv(gram)
    coef = bread_inverse @ moments.rhs[keep]
    resid = moments.residuals(coef, keep)
    wu = w * resid

    fe_levels = [n_units, n_times]
    if vcov_kind == "CRV1":
        nested = [is_nested(unit_code, cluster_code), is_nested(time_code, cluster_code)]
        n_params = n_params_with_fixed_effects(len(keep), fe_levels, nested)
        factor = small_sample_factor("CRV1", n_obs, n_params, n_clusters)
        unit_scores = moments.unit_scores(wu, keep, unit_code, cohort_of_unit)
        scores = (
            unit_scores
            if n_clusters == n_units
            else group_sums(unit_scores, cluster_of_unit, n_clusters)
        )
        v = sandwich(bread_inverse, scores.T @ scores, factor)
        # unit-level influence functions with the CR1 factor: the cluster-summed
        # psi'psi / n_units**2 is v
        psi = (np.sqrt(factor) * n_units) * (unit_scores @ bread_inverse)
        df_t = n_clusters - 1
    else:
        psi = None
        n_params = n_params_with_fixed_effects(len(keep), fe_levels)
        if vcov_kind == "HC1":
            factor = small_sample_factor("HC1", n_obs, n_params)
            v = sandwich(bread_inverse, moments.hetero_meat(wu**2, keep), factor)
        else:
            factor = small_sample_factor("iid", n_obs, n_params)
            v = factor * float(wu @ resid) * bread_inverse
        df_t = n_obs - n_params
    se = np.sqrt(np.diag(v))

    # ---- result tables ------------------------------------------------------------------------
    kept_names = [names[j] for j in keep]
    n_event = sum(1 for j in keep if j < p)
    estimated = {e: i for i, e in enumerate(kept_names[:n_event])}
    shown = sorted([*estimated, *normalized])
    est = np.array([coef[estimated[e]] if e in estimated else 0.0 for e in shown])
    err = np.array([se[estimated[e]] if e in estimated else np.nan for e in shown])
    event_study = pd.DataFrame({"event_time": shown, **_inference_table(est, err, df_t, alpha)})
    event_study["reference"] = [e not in estimated for e in shown]
    event_influence = None
    if psi is not None:
        event_influence = np.zeros((n_units, len(shown)))
        for j, e in enumerate(shown):
            if e in estimated:
                event_influence[:, j] = psi[:, estimated[e]]
    event_index = pd.Index(kept_names[:n_event], name="event_time")
    vcov_frame = pd.DataFrame(v[:n_event, :n_event], index=event_index, columns=event_index)

    post = [e for e in estimated if e >= 0 and not (binned_high and e == hi)]
    if post:
        a = np.zeros(len(keep))
        a[[estimated[e] for e in post]] = 1.0 / len(post)
        overall_est, overall_se = float(a @ coef), float(np.sqrt(a @ v @ a))
    else:
        overall_est = overall_se = np.nan
        notes.append("no estimated post-treatment event time: overall effect is NaN")
    overall = pd.Series(
        {
            k: float(val[0])
            for k, val in _inference_table(
                np.array([overall_est]), np.array([overall_se]), df_t, alpha
            ).items()
        }
    )
    covariate_table = pd.DataFrame(
        {
            "term": kept_names[n_event:],
            **_inference_table(coef[n_event:], se[n_event:], df_t, alpha),
        }
    )

    info = panel.info()
    info.update(
        {
            "method": "twfe",
            "control": "never- and not-yet-treated (year effects); control option ignored",
            "requested_control": control,
            "n_obs": n_obs,
            "n_units": n_units,
            "n_clusters": n_clusters if vcov_kind == "CRV1" else None,
            "alpha": alpha,
            "reference": ref,
            "normalized_event_times": normalized,
            "collinear_dropped": collinear,
            "window": window,
            "binned": {"lower": binned_low, "upper": binned_high},
            "overall_event_times": post,
            "vcov_type": vcov_kind,
            "n_params": n_params,
            "small_sample_factor": factor,
            "df_t": df_t,
            "demeaning": moments.method,
            "demeaning_iterations": moments.iterations,
            "covariate_coefficients": covariate_table,
            "dropped": pd.concat([d for d in dropped if not d.empty], ignore_index=True)
            if any(not d.empty for d in dropped)
            else panel.dropped,
            "warnings": notes,
            "ignored_options": ignored_names,
        }
    )
    return EstimationResult(
        method="twfe",
        event_study=event_study,
        overall=overall,
        vcov=vcov_frame,
        event_influence=event_influence,
        unit_labels=unit_labels,
        info=info,
    )
