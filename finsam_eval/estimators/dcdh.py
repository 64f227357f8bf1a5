"""de Chaisemartin & D'Haultfœuille dynamic effects :math:`DID_\\ell` for treatment that can stop.

Membership of a förbund can end (a kommun leaves), so treatment :math:`D_{g,t} \\in \\{0, 1\\}` is
not absorbing. Following de Chaisemartin & D'Haultfœuille (2024, the estimator of R's
``did_multiplegt_dyn``), let :math:`D_{g,1}` be unit :math:`g`'s treatment in the first period,
:math:`F_g` the first period in which it differs from :math:`D_{g,1}` (:math:`F_g = \\infty` for
units that never switch), :math:`S_g = \\operatorname{sign}(D_{g,F_g} - D_{g,1})` (+1 for a unit
joining, -1 for one leaving), and :math:`T_g` the last period in which some unit with the same
baseline treatment has not switched yet. For :math:`\\ell \\ge 1` and every switcher with
:math:`F_g - 1 + \\ell \\le T_g`,

.. math::

    DID_{g,\\ell} = Y_{g,F_g-1+\\ell} - Y_{g,F_g-1}
    - \\frac{\\sum_{g' \\in C_{g,\\ell}} w_{g'} (Y_{g',F_g-1+\\ell} - Y_{g',F_g-1})}
           {\\sum_{g' \\in C_{g,\\ell}} w_{g'}},
    \\qquad C_{g,\\ell} = \\{g' : D_{g',1} = D_{g,1},\\ F_{g'} > F_g - 1 + \\ell\\},

and :math:`DID_\\ell = \\sum_g w_g S_g DID_{g,\\ell} / N_\\ell` with
:math:`N_\\ell = \\sum_{g \\text{ eligible}} w_g`. :math:`DID_\\ell` is the effect of having
switched :math:`\\ell - 1` periods earlier, whatever happened to treatment afterwards (a kommun
that joins and later leaves stays in its joining cohort); it is reported at event time
:math:`e = \\ell - 1`. Placebos :math:`DID^{pl}_\\ell` replace the outcome change by
:math:`Y_{g,F_g-1-\\ell} - Y_{g,F_g-1}` (same switchers and control sets as :math:`DID_\\ell`) and
are reported at :math:`e = -\\ell - 1`; :math:`e = -1` is the reference period.

The *average total effect per unit of treatment* (the paper's cost-benefit :math:`\\delta`,
Lemma 4) is :math:`\\delta = \\sum_\\ell w_\\ell DID_\\ell` with
:math:`w_\\ell \\propto \\sum_{g} w_g |D_{g,F_g-1+\\ell} - D_{g,1}|` over the switchers eligible
at :math:`\\ell`; without exits :math:`w_\\ell \\propto N_\\ell`. Normalised effects
:math:`DID^n_\\ell = DID_\\ell / \\delta^D_\\ell`, with :math:`\\delta^D_\\ell` the average
number of treated periods since the switch, are in ``info["normalized_effects"]``.

Variance. Treatment paths are conditioned on (design-based). Each unit's contribution
:math:`U_{g,\\ell}` (its own switcher term plus its terms as a control, so that
:math:`\\sum_g U_{g,\\ell} = N_\\ell DID_\\ell`) is recentred on the mean of its cohort
(:math:`D_{g,1}`, :math:`F_g`), and :math:`\\hat V(DID_\\ell) = \\sum_c (\\sum_{g \\in c}
\\tilde U_{g,\\ell})^2 / N_\\ell^2` with clusters :math:`c` (units by default): the conservative
plug-in of the paper's Web Appendix (section 3.7.3), the ``did_multiplegt_dyn`` analytic
variance. The influence function of :math:`DID_\\ell` is :math:`\\psi_c = n \\sum_{g \\in c}
\\tilde U_{g,\\ell} / N_\\ell`, :math:`n` the number of units (clusters); every aggregate (the
overall mean, :math:`\\delta`) is the same linear combination of these columns, so covariances
across horizons are kept.

Relation to other estimators. With absorbing treatment, :math:`DID_\\ell` for joining cohort
:math:`g` is the 2×2 comparison of Callaway & Sant'Anna's :math:`ATT(g, g + \\ell - 1)` with
not-yet-treated controls (base period :math:`g - 1`), and :math:`DID_\\ell` is their
cohort-size-weighted average: CS's dynamic aggregation at :math:`e = \\ell - 1` with
``control="notyet"``, provided controls exist at every horizon (never-treated units guarantee
it). The placebos differ from CS pre-period estimates: their controls must be untreated through
:math:`F_g - 1 + \\ell`.

References
----------
de Chaisemartin, C., & D'Haultfœuille, X. (2020). Two-way fixed effects estimators with
heterogeneous treatment effects. American Economic Review 110(9), 2964–2996.
de Chaisemartin, C., & D'Haultfœuille, X. (2024). Difference-in-differences estimators of
intertemporal treatment effects. Review of Economics and Statistics (NBER WP 29873).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.core import group_sums
from finsam_eval.estimators.event_tables import EventTables, influence_rows
from finsam_eval.estimators.prepare import (
    EstimationInputError,
    _cohort_codes,
    prepare_panel,
    require_consecutive_periods,
)
from finsam_eval.estimators.result import EstimationResult, wald_table
from finsam_eval.estimators.spec import EstimationSpec, fit_contract

__all__ = ["fit", "treatment_matrix"]

_NEVER_COLUMN = "_dcdh_never"
_TREATMENT_COLUMN = "_dcdh_treatment"


_SHOW = 10  # units shown in an error message


def _checked_cohort(data: pd.DataFrame, cohort: str, unit: str) -> np.ndarray:
    """The cohort column as floats (0 = never), with prepare_panel's rules, constant per unit."""
    first = _cohort_codes(data[cohort], cohort).astype(float)
    if unit in data.columns:
        spread = pd.Series(first).groupby(data[unit].to_numpy()).nunique()
        varying = spread.index[spread.to_numpy() > 1]
        if len(varying):
            raise EstimationInputError(
                f"cohort must be constant within {unit}; it varies for "
                f"{sorted(map(str, varying))[:_SHOW]}. For a treatment that switches on and off "
                "pass a 0/1 column as treatment=..."
            )
    return first


def _treatment_status(
    data: pd.DataFrame, time: str, cohort: str, treatment: str | None, unit: str
) -> np.ndarray:
    """0/1 treatment per row: the ``treatment`` column, or 1[t >= cohort] from the cohort."""
    if treatment is not None:
        if treatment not in data.columns:
            raise EstimationInputError(f"treatment column {treatment!r} not found in the data")
        status = pd.to_numeric(data[treatment], errors="coerce").to_numpy(dtype=float)
    else:
        if cohort not in data.columns:
            raise EstimationInputError(
                f"method='dcdh' needs a 0/1 treatment column (treatment=...) or the cohort "
                f"column {cohort!r}"
            )
        first = _checked_cohort(data, cohort, unit)
        year = pd.to_numeric(data[time], errors="coerce").to_numpy(dtype=float)
        status = ((first > 0) & (year >= first)).astype(float)
    bad = ~np.isnan(status) & (status != 0) & (status != 1)
    if bad.any():
        raise EstimationInputError(
            f"treatment must be 0/1; other values: {sorted(set(status[bad].tolist()))[:10]}"
        )
    return status


def treatment_matrix(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str = "cohort",
    treatment: str | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    unbalanced: str = "balance",
):
    """Validate the panel for dCDH and return it with a unit × period treatment matrix.

    ``prepare_panel`` rejects cohorts that vary within unit and treatment that switches off, so
    the treatment status is carried through it as an extra numeric column (missing values drop
    the row, as for covariates) with a constant "never" cohort.

    Returns
    -------
    tuple
        ``(panel, y, d)``: the ``PreparedPanel`` and the (units × periods) outcome and treatment
        matrices.
    """
    status = _treatment_status(data, time, cohort, treatment, unit)
    columns = [c for c in (outcome, unit, time, weights, cluster) if c is not None]
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise EstimationInputError(f"column(s) {missing} not found in the data")
    work = data[list(dict.fromkeys(columns))].assign(
        **{_NEVER_COLUMN: 0, _TREATMENT_COLUMN: status}
    )
    panel = prepare_panel(
        work,
        outcome,
        unit,
        time,
        _NEVER_COLUMN,
        covariates=[_TREATMENT_COLUMN],
        weights=weights,
        cluster=cluster,
        control="never",
        unbalanced=unbalanced,
    )
    if not panel.balanced:
        raise EstimationInputError(
            "method='dcdh' needs a balanced panel; use unbalanced='balance' (drops and reports "
            "units not observed every period)"
        )
    n_units, n_times = panel.n_units, len(panel.times)
    y = panel.data["y"].to_numpy().reshape(n_units, n_times)
    d = panel.data[_TREATMENT_COLUMN].to_numpy().reshape(n_units, n_times)
    return panel, y, d


@dataclass(frozen=True)
class _Switches:
    """Who switches when, and which units serve as controls until which column."""

    baseline: np.ndarray  # D_{g,1}
    first_switch: np.ndarray  # column of F_g; n_t for units that never switch
    direction: np.ndarray  # S_g: +1 joining, -1 leaving, 0 never switching
    switcher: np.ndarray
    last_control: np.ndarray  # last column in which the unit is a control (-1: never)
    horizon_end: dict[float, int]  # T_g by baseline: last column with a same-baseline control
    pairs: list[tuple[float, int]]  # (D_{g,1}, F_g) cohorts of switchers
    cohort_code: np.ndarray  # (D_{g,1}, F_g) cohort of every unit, coded


def _switch_structure(d: np.ndarray, w: np.ndarray, control: str) -> _Switches:
    """Switch cohorts and control availability from the treatment matrix (units × periods)."""
    n_t = d.shape[1]
    baseline = d[:, 0]
    changed = d != baseline[:, None]
    switcher = changed.any(axis=1) & (w > 0)
    first_switch = np.where(switcher, changed.argmax(axis=1), n_t)
    direction = np.where(switcher, np.where(baseline == 0, 1.0, -1.0), 0.0)
    if control == "notyet":
        last_control = first_switch - 1  # never-switchers: n_t - 1
    else:
        last_control = np.where(switcher, -1, n_t - 1)
    last_control = np.where(w > 0, last_control, -1)
    horizon_end = {
        b: int(last_control[baseline == b].max()) for b in (0.0, 1.0) if (baseline == b).any()
    }
    pairs = sorted(
        {
            (float(b), int(f))
            for b, f in zip(baseline[switcher], first_switch[switcher], strict=True)
        }
    )
    if not pairs:
        raise EstimationInputError("no unit changes treatment: nothing to estimate")
    cohort_key = baseline * (n_t + 1) + first_switch  # (D_g1, F_g); S_g follows from D_g1
    cohort_code = np.unique(cohort_key, return_inverse=True)[1]
    return _Switches(baseline, first_switch, direction, switcher, last_control, horizon_end,
                     pairs, cohort_code)  # fmt: skip


def _horizons(
    sw: _Switches, n_t: int, effects: int | None, placebo: int | None,
    window: tuple[int, int] | None,
) -> tuple[int, int]:  # fmt: skip
    """Numbers of effects and placebos: as asked, from ``window``, or every estimable one."""
    ends = {b: min(n_t - 1, end) for b, end in sw.horizon_end.items()}
    last_effect = max(ends[b] - (f - 1) for b, f in sw.pairs)
    last_placebo = max(min(f - 1, ends[b] - (f - 1)) for b, f in sw.pairs)
    if effects is None:
        effects = last_effect if window is None else int(window[1]) + 1
    if placebo is None:
        placebo = last_placebo if window is None else max(0, -int(window[0]) - 1)
    if last_effect < 1:
        # every switcher switches when no unit of its baseline status is left to compare with
        raise EstimationInputError(
            "method='dcdh' finds no comparison: in the period a cohort switches, no unit with "
            "the same baseline treatment is still unswitched (e.g. every unit joins in the same "
            f"year); switch cohorts (baseline, first switch column): {sw.pairs[:_SHOW]}"
        )
    if effects < 1 or placebo < 0:
        raise EstimationInputError(
            f"method='dcdh' needs effects >= 1 and placebo >= 0, got effects={effects}, "
            f"placebo={placebo} (from window={window})"
        )
    return effects, placebo


def _horizon(
    sw: _Switches, y: np.ndarray, d: np.ndarray, w: np.ndarray, ell: int, backward: bool
) -> tuple[float, float, np.ndarray, float, float]:
    """Estimate, N, unit contributions U, per-period dose and cumulated dose at one lag."""
    n_units, n_t = y.shape
    contribution = np.zeros(n_units)
    numerator = n_switch = dose = cumulated = 0.0
    for b, f in sw.pairs:
        ref, out = f - 1, f - 1 + ell
        if out > min(n_t - 1, sw.horizon_end[b]) or (backward and ref - ell < 0):
            continue
        far = ref - ell if backward else out
        movers = np.flatnonzero((sw.baseline == b) & (sw.first_switch == f) & sw.switcher)
        controls = np.flatnonzero((sw.baseline == b) & (sw.last_control >= out))
        w_c = w[controls]
        if not movers.size or w_c.sum() <= 0:
            continue
        change = y[:, far] - y[:, ref]
        signed = w[movers] * sw.direction[movers]
        # every switcher of the cohort shares the control mean; controls carry its weight
        control_share = w_c / w_c.sum()
        contribution[movers] += signed * change[movers]
        contribution[controls] -= signed.sum() * control_share * change[controls]
        numerator += signed @ change[movers] - signed.sum() * (control_share @ change[controls])
        n_switch += w[movers].sum()
        if not backward:
            dose += w[movers] @ np.abs(d[movers, out] - b)
            cumulated += w[movers] @ np.abs((d[movers, f : out + 1] - b).sum(axis=1))
    if n_switch == 0:
        return np.nan, 0.0, contribution, 0.0, 0.0
    return numerator / n_switch, n_switch, contribution, dose, cumulated


def _dynamic_effects(
    sw: _Switches, y: np.ndarray, d: np.ndarray, w: np.ndarray, effects: int, placebo: int
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Placebos (longest lag first) and effects with their unit contributions over N."""
    rows: list[dict[str, Any]] = []
    contributions: list[np.ndarray] = []
    lags = [(ell, True) for ell in range(placebo, 0, -1)]
    lags += [(ell, False) for ell in range(1, effects + 1)]
    for ell, backward in lags:
        est, n_sw, u, dose, cumulated = _horizon(sw, y, d, w, ell, backward)
        if n_sw <= 0:
            continue
        rows.append(
            {
                "event_time": -ell - 1 if backward else ell - 1,
                "kind": "placebo" if backward else "effect",
                "lag": ell,
                "estimate": est,
                "n_switchers": n_sw,
                "dose": np.nan if backward else dose,
                "cumulated_dose": np.nan if backward else cumulated,
            }
        )
        contributions.append(u / n_sw)
    table = pd.DataFrame(rows)
    if not (table["kind"] == "effect").any():
        raise EstimationInputError("no effect is estimable: no switcher has a control")
    return table, contributions


def _influence(
    contributions: list[np.ndarray],
    cohort_code: np.ndarray,
    cluster_of_unit: np.ndarray,
    n_clusters: int,
    cluster: str | None,
) -> np.ndarray:
    """Cohort-recentred contributions, summed within clusters, scaled to influence functions."""
    scaled = np.column_stack(contributions)
    cohort_count = np.bincount(cohort_code)
    centred = (
        scaled
        - (group_sums(scaled, cohort_code, len(cohort_count)) / cohort_count[:, None])[cohort_code]
    )
    if cluster is not None:
        centred = group_sums(centred, cluster_of_unit, n_clusters)
    return centred.shape[0] * centred


@dataclass(frozen=True)
class _Tables(EventTables):
    average_total: pd.Series
    total_weights: pd.Series
    normalized: pd.DataFrame
    overall_event_times: list[int]


def _event_tables(table: pd.DataFrame, psi: np.ndarray, alpha: float) -> _Tables:
    """Event study with the reference row, its variance, the overall and normalised effects."""
    n_rows = psi.shape[0]
    vcov = psi.T @ psi / n_rows**2
    estimates = table["estimate"].to_numpy()
    effect_cols = np.flatnonzero((table["kind"] == "effect").to_numpy())

    def combination(a: np.ndarray) -> pd.Series:
        out = wald_table(np.array([a @ estimates]), np.array([np.sqrt(a @ vcov @ a)]), alpha)
        return out.iloc[0]

    mean_weights = np.zeros(len(table))
    mean_weights[effect_cols[table["event_time"].to_numpy()[effect_cols] >= 0]] = 1.0
    mean_weights /= mean_weights.sum()
    dose = table["dose"].fillna(0.0).to_numpy()
    total_weights = dose / dose.sum() if dose.sum() > 0 else np.full(len(table), np.nan)

    inference = wald_table(estimates, np.sqrt(np.diag(vcov)), alpha)
    inference.insert(0, "event_time", table["event_time"].to_numpy())
    inference["n_switchers"] = table["n_switchers"].to_numpy()
    inference["reference"] = False
    reference = pd.DataFrame(
        {
            "event_time": [-1],
            "estimate": [0.0],
            "se": [np.nan],
            "ci_lower": [np.nan],
            "ci_upper": [np.nan],
            "p_value": [np.nan],
            "n_switchers": [np.nan],
            "reference": [True],
        }
    )
    event_study = pd.concat([inference, reference], ignore_index=True)
    order = np.argsort(event_study["event_time"].to_numpy(), kind="stable")
    event_study = event_study.iloc[order].reset_index(drop=True)
    index = pd.Index(table["event_time"].to_numpy(), name="event_time")

    effects_table = table.loc[effect_cols]
    normal_scale = (
        effects_table["cumulated_dose"].to_numpy() / effects_table["n_switchers"].to_numpy()
    )
    normalized = wald_table(
        effects_table["estimate"].to_numpy() / normal_scale,
        inference["se"].to_numpy()[effect_cols] / normal_scale,
        alpha,
    )
    normalized.insert(0, "event_time", effects_table["event_time"].to_numpy())
    normalized["delta_d"] = normal_scale
    return _Tables(
        event_study=event_study,
        vcov=pd.DataFrame(vcov, index=index, columns=index).sort_index().sort_index(axis=1),
        event_influence=np.column_stack([psi, np.zeros(n_rows)])[:, order],
        overall=combination(mean_weights),
        average_total=combination(total_weights),
        total_weights=pd.Series(
            total_weights[effect_cols], index=effects_table["event_time"].to_numpy()
        ),
        normalized=normalized,
        overall_event_times=table["event_time"].to_numpy()[mean_weights > 0].tolist(),
    )


@fit_contract("dcdh")
def fit(data: pd.DataFrame, spec: EstimationSpec) -> EstimationResult:
    """Dynamic effects :math:`DID_\\ell`, placebos and the average total effect (dCDH 2024).

    Specification
    -------------
    cohort
        Used only when ``treatment`` is None, to derive the absorbing status
        :math:`1[t \\ge \\text{cohort}]`.
    control
        "notyet" (the paper's estimator: same-baseline units that have not switched yet) or
        "never" (only same-baseline units that never switch).
    covariates
        Not supported; must be empty.
    weights
        Weighted control means and :math:`N_\\ell = \\sum w_g`.
    anticipation
        Must be 0 (the estimator compares with the period before the switch).
    unbalanced
        "balance" only: the estimator needs a balanced panel.
    window
        ``(lo, hi)`` restricts the output to placebos :math:`e \\ge lo` and effects
        :math:`e \\le hi` (``effects = hi + 1``, ``placebo = -lo - 1``). Default: every
        estimable effect and placebo.
    treatment
        0/1 treatment-status column (e.g. "member"), which may switch off. None derives it from
        ``cohort``.
    effects, placebo
        Number of effects :math:`\\ell = 1..L` (event times 0..L-1) and placebos; override
        ``window``.

    Returns
    -------
    EstimationResult
        ``event_study`` has placebos (negative event times below -1), the reference period -1
        (estimate 0, ``reference=True``) and the effects, with ``n_switchers``. ``overall`` is the
        equally weighted mean of the effects at :math:`e \\ge 0`; the average total effect
        :math:`\\delta` is ``info["average_total_effect"]``. ``event_influence`` (units or
        clusters × event times, reference column zero) reproduces ``vcov`` as
        :math:`\\psi'\\psi/n^2`.
    """
    outcome, unit, time, cohort, control, covariates, weights, cluster = spec.values(
        "outcome unit time cohort control covariates weights cluster"
    )
    anticipation, unbalanced, window, alpha = spec.values("anticipation unbalanced window alpha")
    treatment, effects, placebo = spec.values("treatment effects placebo")
    if covariates:
        raise EstimationInputError("method='dcdh' does not take covariates")
    if control not in ("never", "notyet"):
        raise EstimationInputError(f"control must be 'never' or 'notyet', got {control!r}")
    if anticipation:
        raise EstimationInputError("method='dcdh' has no anticipation option; use anticipation=0")
    panel, y, d = treatment_matrix(
        data, outcome, unit, time, cohort, treatment, weights, cluster, unbalanced
    )
    require_consecutive_periods(panel, "dcdh")
    notes = spec.fit_notes(panel)
    frame = panel.data
    unit_code = frame["unit"].to_numpy()
    first_row = np.flatnonzero(np.r_[True, unit_code[1:] != unit_code[:-1]])
    w = frame["weight"].to_numpy()[first_row]
    cluster_of_unit = frame["cluster"].to_numpy()[first_row]
    switches = _switch_structure(d, w, control)
    effects, placebo = _horizons(switches, y.shape[1], effects, placebo, window)
    table, contributions = _dynamic_effects(switches, y, d, w, effects, placebo)
    n_clusters = int(cluster_of_unit.max()) + 1 if cluster is not None else len(w)
    psi = _influence(contributions, switches.cohort_code, cluster_of_unit, n_clusters, cluster)
    tables = _event_tables(table, psi, alpha)
    switcher, direction = switches.switcher, switches.direction
    info = panel.info()
    info.update(
        {
            "cohort": cohort if treatment is None else None,
            "treatment": treatment if treatment is not None else f"1[{time} >= {cohort}]",
            "covariates": [],
            "control": control,
            "n_switchers": int(switcher.sum()),
            "n_leavers": int((direction < 0).sum()),
            "n_exits_after_joining": int(
                (switcher & (direction > 0) & (np.diff(d, axis=1) < 0).any(axis=1)).sum()
            ),
            "effects": effects,
            "placebo": placebo,
            "average_total_effect": tables.average_total,
            "average_total_effect_weights": tables.total_weights,
            "normalized_effects": tables.normalized,
            "warnings": notes,
        }
    )
    return tables.result(
        "dcdh",
        info,
        **influence_rows(data, panel),
        overall_event_times=tables.overall_event_times,
        n_clusters=n_clusters,
    )
