"""Building blocks shared by the regression-based event-study estimators.

Imputation (Borusyak, Jaravel & Spiess 2024), two-stage DiD (Gardner 2021) and Sun & Abraham
(2021) share the same pieces: fixed-effect least squares on untreated observations solved by a
Schur complement on the unit effects (never a dense unit dummy matrix), the event-time targets,
unit-level arrays, option checks, and the packaging of event-time estimates with their influence
functions into an ``EstimationResult``. They live here so that each estimator module holds only
its own method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.core import group_sums, unique_codes
from finsam_eval.core.distributions import t_ppf, t_sf
from finsam_eval.core.multiplier import draw_multipliers
from finsam_eval.estimators.prepare import EstimationInputError, PreparedPanel
from finsam_eval.estimators.result import EstimationResult, wald_columns, wald_table

if TYPE_CHECKING:
    from finsam_eval.estimators.spec import EstimationSpec

__all__ = [
    "influence_row_labels",
    "EventEstimates",
    "UnitEffectsSolver",
    "check_window",
    "dropped_rows",
    "event_targets",
    "first_stage",
    "merged_dropped",
    "multiplier_band",
    "package",
    "t_table",
    "unit_arrays",
]


# ---------------------------------------------------------------------------------------------
# Fixed-effect least squares by a Schur complement on the unit effects
# ---------------------------------------------------------------------------------------------


class UnitEffectsSolver:
    """Weighted least squares with unit effects and a small block of other regressors.

    The regressors are unit indicators plus :math:`F = [\\text{categorical blocks} \\mid
    \\text{dense columns}]`, where each categorical block (years, lead or event-time
    indicators) is given by integer codes (-1: no indicator) and is never expanded. With
    :math:`D = \\mathrm{diag}(\\sum_t w_{it})` and :math:`B_i = \\sum_t w_{it}F_{it}`, the normal
    equations :math:`D\\alpha + B\\theta = c_u,\\ B'\\alpha + F'WF\\theta = c_F` are solved by
    eliminating :math:`\\alpha`:

    .. math::

        S\\theta = c_F - B'D^{-1}c_u, \\quad S = F'WF - B'D^{-1}B, \\quad
        \\alpha = D^{-1}(c_u - B\\theta).

    :math:`S` is small (years + indicators + covariates), so this is exact and costs
    :math:`O(n p^2)`. Columns of :math:`F` with no weight in the sample, and the first year
    (absorbed by the unit effects), are fixed at zero.

    Parameters
    ----------
    unit
        Unit codes 0..n_units-1 of every observation.
    n_units
        Number of units.
    weights
        Observation weights; 0 outside the estimation sample (rows keep their places so that
        predictions and sums need no re-indexing).
    blocks
        Categorical blocks as (codes, n_levels); the first is the year block whose first
        present level is the base.
    dense
        Dense regressors (n, k) or None.
    """

    def __init__(
        self,
        unit: np.ndarray,
        n_units: int,
        weights: np.ndarray,
        blocks: Sequence[tuple[np.ndarray, int]],
        dense: np.ndarray | None = None,
    ) -> None:
        self.unit = unit
        self.n_units = n_units
        self.w = weights
        self.blocks = [(np.asarray(c), int(L)) for c, L in blocks]
        self.dense = dense if dense is not None and dense.shape[1] else None
        self.offsets = np.cumsum([0] + [L for _, L in self.blocks])
        self.k_dense = 0 if self.dense is None else self.dense.shape[1]
        self.p = int(self.offsets[-1]) + self.k_dense
        # per block, built once (the solver's sums run several times per fit over all rows):
        # the rows with an indicator (None: every row, as in the year block), their codes and
        # their unit × level keys
        self._has: list[np.ndarray | None] = []
        self._codes: list[np.ndarray] = []
        self._unit_keys: list[np.ndarray] = []
        # whether the keys are 0, 1, 2, ...: rows sorted by unit then level, each unit with
        # every level once (the year block of a balanced panel); its unit sums are the rows
        self._grid: list[bool] = []
        for codes, n_levels in self.blocks:
            has = codes >= 0
            every = bool(has.all())
            self._has.append(None if every else has)
            self._codes.append(codes if every else codes[has])
            keys = (unit if every else unit[has]) * n_levels + self._codes[-1]
            self._unit_keys.append(keys)
            self._grid.append(
                len(keys) == n_units * n_levels and np.array_equal(keys, np.arange(len(keys)))
            )
        self.unit_weight = np.bincount(unit, weights=weights, minlength=n_units)
        self.B = self.unit_sums(weights)
        gram = self.cross(weights)
        present = np.diag(gram) > 0
        year_codes, _ = self.blocks[0]
        year_weight = np.bincount(year_codes, weights=weights, minlength=self.blocks[0][1])
        base = int(np.flatnonzero(year_weight > 0)[0])
        present[base] = False
        self.active = np.flatnonzero(present)
        with np.errstate(divide="ignore"):
            self.inverse_unit_weight = np.where(self.unit_weight > 0, 1 / self.unit_weight, 0.0)
        self._b_active = self.B[:, self.active]  # used by every solve
        ba = self._b_active
        schur = gram[np.ix_(self.active, self.active)] - ba.T @ (
            ba * self.inverse_unit_weight[:, None]
        )
        self.schur = (schur + schur.T) / 2
        # scipy.linalg on first use: importing it costs ~0.15 s, and this module is imported
        # with finsam_eval.estimate (issue 16)
        from scipy.linalg import cho_factor

        try:
            self._factor = cho_factor(self.schur)
        except np.linalg.LinAlgError as err:
            raise EstimationInputError(
                "the untreated-observation model is not identified (unit and year effects "
                "cannot be separated, or covariates are collinear with them)"
            ) from err

    def _rows_with_code(self, block: int, values: np.ndarray) -> np.ndarray:
        """``values`` of the rows that have an indicator in categorical block ``block``."""
        has = self._has[block]
        return values if has is None else values[has]

    def unit_sums(self, values: np.ndarray) -> np.ndarray:
        """Per-unit sums of ``values * F`` (n_units × p) for one per-observation vector."""
        out = np.zeros((self.n_units, self.p))
        for b, ((_, n_levels), start) in enumerate(zip(self.blocks, self.offsets, strict=False)):
            if self._grid[b]:
                # one row per key: bincount's sums are 0.0 + value, i.e. the values themselves
                # (with -0.0 as 0.0, which adding 0.0 reproduces)
                np.add(values.reshape(self.n_units, n_levels), 0.0,
                       out=out[:, start : start + n_levels])  # fmt: skip
                continue
            out[:, start : start + n_levels] = np.bincount(
                self._unit_keys[b],
                weights=self._rows_with_code(b, values),
                minlength=self.n_units * n_levels,
            ).reshape(self.n_units, n_levels)
        if self.dense is not None:
            out[:, self.offsets[-1] :] = group_sums(self.dense, self.unit, self.n_units, values)
        return out

    def cross(self, values: np.ndarray) -> np.ndarray:
        """:math:`F'\\mathrm{diag}(values)F` (p × p)."""
        out = np.zeros((self.p, self.p))
        for a, ((codes_a, la), sa) in enumerate(zip(self.blocks, self.offsets, strict=False)):
            for b, ((codes_b, lb), sb) in enumerate(zip(self.blocks, self.offsets, strict=False)):
                if b < a:
                    continue
                if self._has[a] is None and self._has[b] is None:
                    # every row has both indicators (the year block with itself): no mask
                    keys, weights = codes_a * lb + codes_b, values
                else:
                    has = (codes_a >= 0) & (codes_b >= 0)
                    keys, weights = codes_a[has] * lb + codes_b[has], values[has]
                table = np.bincount(keys, weights=weights, minlength=la * lb).reshape(la, lb)
                out[sa : sa + la, sb : sb + lb] = table
                out[sb : sb + lb, sa : sa + la] = table.T
            if self.dense is not None:
                has = codes_a >= 0
                table = group_sums(self.dense[has], codes_a[has], la, values[has])
                out[sa : sa + la, self.offsets[-1] :] = table
                out[self.offsets[-1] :, sa : sa + la] = table.T
        if self.dense is not None:
            d0 = self.offsets[-1]
            out[d0:, d0:] = self.dense.T @ (self.dense * values[:, None])
        return out

    def column_sums(self, values: np.ndarray) -> np.ndarray:
        """:math:`F'v` for one per-observation vector (length p)."""
        out = np.zeros(self.p)
        for b, ((_, n_levels), start) in enumerate(zip(self.blocks, self.offsets, strict=False)):
            out[start : start + n_levels] = np.bincount(
                self._codes[b], weights=self._rows_with_code(b, values), minlength=n_levels
            )
        if self.dense is not None:
            out[self.offsets[-1] :] = self.dense.T @ values
        return out

    def target_sums(
        self, rows: np.ndarray, column: np.ndarray, values: np.ndarray, n_columns: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Right-hand sides :math:`(Z'\\omega)` for a sparse per-observation target.

        Observation ``rows[j]`` carries weight ``values[j]`` in target column ``column[j]``.
        Returns the unit part (n_units × H) and the F part (p × H).
        """
        c_u = np.bincount(
            self.unit[rows] * n_columns + column, weights=values, minlength=self.n_units * n_columns
        ).reshape(self.n_units, n_columns)
        c_f = np.zeros((self.p, n_columns))
        for (codes, n_levels), start in zip(self.blocks, self.offsets, strict=False):
            c = codes[rows]
            has = c >= 0
            c_f[start : start + n_levels] = np.bincount(
                c[has] * n_columns + column[has],
                weights=values[has],
                minlength=n_levels * n_columns,
            ).reshape(n_levels, n_columns)
        if self.dense is not None:
            c_f[self.offsets[-1] :] = group_sums(self.dense[rows], column, n_columns, values).T
        return c_u, c_f

    def solve(self, c_u: np.ndarray, c_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit effects (n_units × H) and F coefficients (p × H, inactive ones 0)."""
        c_u = c_u.reshape(self.n_units, -1)
        c_f = c_f.reshape(self.p, -1)
        scaled = c_u * self.inverse_unit_weight[:, None]
        rhs = c_f[self.active] - self._b_active.T @ scaled
        theta = np.zeros((self.p, c_u.shape[1]))
        from scipy.linalg import cho_solve

        theta[self.active] = cho_solve(self._factor, rhs)
        alpha = scaled - (self.B @ theta) * self.inverse_unit_weight[:, None]
        return alpha, theta

    def fit(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit effects (n_units,) and F coefficients (p,) of the weighted fit of ``y``."""
        wy = self.w * y
        alpha, theta = self.solve(np.bincount(self.unit, wy, self.n_units), self.column_sums(wy))
        return alpha[:, 0], theta[:, 0]

    def predict(self, alpha: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """:math:`\\alpha_i + F_{it}\\theta` for every observation."""
        out = alpha[self.unit]  # a new array
        for b, start in enumerate(self.offsets[:-1]):
            has = self._has[b]
            if has is None:
                out += theta[start + self._codes[b]]
            else:
                out[has] += theta[start + self._codes[b]]
        if self.dense is not None:
            out += self.dense @ theta[self.offsets[-1] :]
        return out

    def identified(self) -> np.ndarray:
        """Whether each observation's prediction is identified (its unit and year have weight)."""
        year_codes, n_years = self.blocks[0]
        year_ok = np.bincount(year_codes, weights=self.w, minlength=n_years) > 0
        return (self.unit_weight[self.unit] > 0) & year_ok[year_codes]

    def untreated_influence(
        self, residual: np.ndarray, alpha: np.ndarray, theta: np.ndarray
    ) -> np.ndarray:
        """:math:`\\sum_t v_{0,it}\\tilde\\varepsilon_{it}` per unit for targets solved as (alpha, theta).

        :math:`v_0 = -w(\\alpha_i + F_{it}\\theta)`, so the unit sum is
        :math:`-(\\alpha_i r_i + R_i\\theta)` with :math:`r_i = \\sum_t w\\tilde\\varepsilon` (0 up to
        rounding) and :math:`R_i = \\sum_t w\\tilde\\varepsilon F_{it}`.
        """
        wr = self.w * residual
        r0 = np.bincount(self.unit, wr, self.n_units)
        return -(alpha * r0[:, None] + self.unit_sums(wr) @ theta)

    def score_influence(self, residual: np.ndarray) -> np.ndarray:
        """Per-unit influence of the active F coefficients, :math:`S^{-1}R_i'` (n_units × p_act).

        Unit effects are partialled out (Frisch–Waugh–Lovell): the score of unit ``i`` is
        :math:`\\sum_t w\\hat u (F_{it} - \\bar F_i) = R_i - r_i\\bar F_i`.
        """
        wr = self.w * residual
        r0 = np.bincount(self.unit, wr, self.n_units)
        scores = self.unit_sums(wr) - self.B * (r0 * self.inverse_unit_weight)[:, None]
        from scipy.linalg import cho_solve

        return cho_solve(self._factor, scores[:, self.active].T).T


# ---------------------------------------------------------------------------------------------
# Shared pieces of the event-study estimators (imputation, two-stage, Sun–Abraham)
# ---------------------------------------------------------------------------------------------


def influence_row_labels(data: pd.DataFrame, panel: PreparedPanel) -> np.ndarray:
    """Labels of the rows of cluster-level (or unit-level) influence functions.

    ``prepare_panel`` codes clusters by the sorted string labels of the retained rows, so the
    cluster labels are those, in that order; without a cluster column the rows are the units.
    """
    if panel.cluster is None:
        return np.asarray(panel.unit_labels)
    retained = data[panel.cluster].astype(str).to_numpy()[panel.data["row"].to_numpy()]
    return np.sort(pd.unique(retained))


def dropped_rows(panel: PreparedPanel, mask: np.ndarray, reason: str) -> pd.DataFrame:
    """Rows of ``panel.data`` selected by ``mask`` in the ``dropped`` layout, one line per row."""
    gone = panel.data.loc[mask]
    return pd.DataFrame(
        {
            "reason": reason,
            "unit": panel.unit_labels[gone["unit"].to_numpy()],
            "time": gone["time"].to_numpy(),
            "n_rows": 1,
        }
    )


def merged_dropped(dropped: list[pd.DataFrame], panel: PreparedPanel) -> pd.DataFrame:
    """The non-empty ``dropped`` frames concatenated; the panel's own when all are empty."""
    if any(not d.empty for d in dropped):
        return pd.concat([d for d in dropped if not d.empty], ignore_index=True)
    return panel.dropped


def t_table(estimate: np.ndarray, se: np.ndarray, df: int, alpha: float) -> dict[str, np.ndarray]:
    """Estimate, SE, t interval with ``df`` degrees of freedom and two-sided t p-value."""
    columns = wald_columns(estimate, se, alpha, critical=t_ppf(1 - alpha / 2, df))
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["p_value"] = 2 * t_sf(np.abs(columns["estimate"] / columns["se"]), df)
    return columns


def check_window(window: tuple[int, int] | None) -> tuple[float, float]:
    """Window bounds, (-inf, inf) when None."""
    if window is None:
        return -np.inf, np.inf
    if len(window) != 2 or any(int(v) != v for v in window) or window[0] > window[1]:
        raise EstimationInputError(f"window must be two integers (lo, hi), lo <= hi: {window}")
    return int(window[0]), int(window[1])


@dataclass
class EventEstimates:
    """Event-time estimates and their unit-level influence before packaging.

    ``psi`` has shape (n_units, n_event_times) and is scaled so that the cluster sums give the
    covariance directly: :math:`V = \\sum_c (\\sum_{i\\in c}\\psi_i)(\\cdot)'`.
    """

    event_times: np.ndarray
    estimate: np.ndarray
    psi: np.ndarray
    n_obs: np.ndarray


def multiplier_band(
    influence_by_cluster: np.ndarray, se: np.ndarray, reps: int, seed: int | None, alpha: float
) -> float:
    """Sup-t critical value from Rademacher multiplier draws over clusters.

    Each draw is :math:`\\sum_c \\xi_c \\psi_c` (cluster-summed influence); the critical value is
    the :math:`1-\\alpha` quantile of :math:`\\max_e |draw_e / se_e|` (Montiel Olea &
    Plagborg-Møller 2019), the simultaneous band of R did's ``cband``.
    """
    rng = np.random.default_rng(seed)
    ok = np.isfinite(se) & (se > 0)
    xi = draw_multipliers(rng, (reps, influence_by_cluster.shape[0]), "rademacher")
    t = np.abs(xi @ influence_by_cluster[:, ok]) / se[ok]
    return float(np.quantile(t.max(axis=1), 1 - alpha))


def package(
    spec: EstimationSpec,
    panel: PreparedPanel,
    estimates: EventEstimates,
    reference: Sequence[int],
    cluster_of_unit: np.ndarray,
    info: dict[str, Any],
    pretest: pd.Series | None = None,
    pretest_leads: Sequence[int] = (),
) -> EstimationResult:
    """Build the ``EstimationResult`` from event-time estimates and influence functions.

    ``spec`` gives the method, the window, ``alpha`` and the band's ``reps`` and ``seed``.
    Event times outside the window are dropped; reference (normalised) times inside it are shown
    with estimate 0, NaN standard error and ``reference=True`` (zero influence columns). The
    covariance is :math:`\\mathrm{IF}'\\mathrm{IF}/n^2` with IF summed within clusters,
    :math:`\\mathrm{IF} = n\\psi`; ``overall`` averages the estimated event times
    :math:`e \\ge 0` with equal weights, its IF being the mean of their IF columns.
    """
    method, window, alpha, bootstrap, seed = spec.values("method window alpha reps seed")
    lo, hi = check_window(window)
    keep = (estimates.event_times >= lo) & (estimates.event_times <= hi)
    times = estimates.event_times[keep]
    est = estimates.estimate[keep]
    psi = estimates.psi[:, keep]
    n_obs = estimates.n_obs[keep]
    ref = [int(r) for r in reference if lo <= r <= hi and r not in set(times.tolist())]
    order = np.argsort(np.r_[times, ref], kind="stable")
    all_times = np.r_[times, ref].astype(int)[order]
    is_ref = np.r_[np.zeros(len(times), bool), np.ones(len(ref), bool)][order]
    n_units = psi.shape[0]
    n_clusters = int(cluster_of_unit.max()) + 1
    by_cluster = group_sums(psi, cluster_of_unit, n_clusters)
    vcov = by_cluster.T @ by_cluster
    se = np.sqrt(np.diag(vcov))
    full_est = np.r_[est, np.zeros(len(ref))][order]
    full_se = np.r_[se, np.full(len(ref), np.nan)][order]
    full_psi = np.hstack([psi, np.zeros((n_units, len(ref)))])[:, order]
    table = wald_table(full_est, full_se, alpha)
    table.insert(0, "event_time", all_times)
    table["reference"] = is_ref
    table["n_obs"] = np.r_[n_obs, np.zeros(len(ref), dtype=int)][order]
    post = times >= 0
    if post.any():
        a = post / post.sum()
        overall_psi = psi @ a
        overall_by_cluster = by_cluster @ a
        overall_est = float(est @ a)
        overall_se = float(np.sqrt(overall_by_cluster @ overall_by_cluster))
    else:
        overall_psi = np.zeros(n_units)
        overall_by_cluster = np.zeros(n_clusters)
        overall_est = overall_se = np.nan
        info.setdefault("warnings", []).append("no event time >= 0 in the window: overall is NaN")
    overall = wald_table(np.array([overall_est]), np.array([overall_se]), alpha).iloc[0]
    overall.name = None
    if bootstrap:
        critical = multiplier_band(
            np.column_stack([by_cluster, overall_by_cluster]),
            np.r_[se, overall_se],
            int(bootstrap),
            seed,
            alpha,
        )
        band = wald_table(full_est, full_se, alpha, critical=critical)
        table["band_lower"] = band["ci_lower"].to_numpy()
        table["band_upper"] = band["ci_upper"].to_numpy()
        info["critical_value"] = critical
    index = pd.Index(times, name="event_time")
    info.update(
        {
            "method": method,
            "n_units": n_units,
            "alpha": alpha,
            "window": window,
        }
    )
    return EstimationResult(
        method=method,
        event_study=table,
        overall=overall,
        vcov=pd.DataFrame(vcov, index=index, columns=index),
        event_influence=n_units * full_psi,
        unit_labels=np.asarray(panel.unit_labels),
        info=info,
        pretest=pretest,
        overall_event_times=times[post].tolist(),
        overall_influence=n_units * overall_psi,
        pretest_leads=[int(k) for k in pretest_leads],
        n_clusters=n_clusters,
    )


def unit_arrays(panel: PreparedPanel) -> dict[str, np.ndarray]:
    """Per-observation arrays and per-unit cohort/cluster/weight from a prepared panel."""
    frame = panel.data
    unit = frame["unit"].to_numpy()
    first = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    time = frame["time"].to_numpy()
    years = panel.times
    # every row's period is one of ``years`` (sorted, integer): a lookup table over their range
    # gives searchsorted's codes without a binary search per row
    lookup = np.zeros(int(years[-1]) - int(years[0]) + 1, dtype=np.intp)
    lookup[years - years[0]] = np.arange(len(years))
    return {
        "unit": unit,
        "time": time,
        "year_code": lookup[time - years[0]],
        "cohort": frame["cohort"].to_numpy(),
        "y": frame["y"].to_numpy(dtype=np.float64),
        "w": frame["weight"].to_numpy(dtype=np.float64),
        "cluster_of_unit": frame["cluster"].to_numpy()[first],
        "cohort_of_unit": frame["cohort"].to_numpy()[first],
        "x": frame[panel.covariates].to_numpy(dtype=np.float64)
        if panel.covariates
        else np.empty((len(frame), 0)),
    }


def first_stage(
    panel: PreparedPanel, arrays: dict[str, np.ndarray], anticipation: int
) -> tuple[UnitEffectsSolver, np.ndarray, np.ndarray, np.ndarray]:
    """Fit the untreated-outcome model; return the solver, untreated mask, fitted Y(0), residual.

    The residual :math:`Y - \\hat Y(0)` is the first-step residual on untreated rows and
    :math:`\\hat\\tau_{it}` on treated ones.
    """
    cohort, time = arrays["cohort"], arrays["time"]
    untreated = (cohort == 0) | (time < cohort - anticipation)
    if not untreated.any():
        raise EstimationInputError("no untreated observations: the Y(0) model cannot be fitted")
    w0 = np.where(untreated, arrays["w"], 0.0)
    solver = UnitEffectsSolver(
        arrays["unit"],
        panel.n_units,
        w0,
        [(arrays["year_code"], len(panel.times))],
        arrays["x"],
    )
    alpha, theta = solver.fit(arrays["y"])
    fitted = solver.predict(alpha, theta)
    return solver, untreated, fitted, arrays["y"] - fitted


def untreated_model_info(
    panel: PreparedPanel, control: str, untreated: np.ndarray, reference: int
) -> dict[str, Any]:
    """Summary facts of a fit whose Y(0) model (:func:`first_stage`) uses every untreated
    observation (imputation, two-stage): that control group, the one requested, the sample."""
    return {
        "control": "all untreated observations (never and not-yet treated)",
        "requested_control": control,
        "anticipation": int(panel.anticipation),
        "reference": reference,
        "n_obs": len(panel.data),
        "n_untreated_obs": int(untreated.sum()),
    }


def event_targets(
    event: np.ndarray, rows: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event times, column code per row and normalised weights (sum 1 within each event time)."""
    times, column = unique_codes(event[rows])
    total = np.bincount(column, weights=weight, minlength=len(times))
    if np.any(total <= 0):
        bad = times[total <= 0].tolist()
        raise EstimationInputError(f"event times {bad} have zero total weight")
    return times, column, weight / total[column]
