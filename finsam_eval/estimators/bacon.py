"""Goodman-Bacon (2021) decomposition of the static two-way fixed-effects estimate.

In a balanced panel with units in timing groups :math:`k` (first treated period :math:`t_k`) and a
never-treated group :math:`U`, the coefficient of the static regression

.. math::

    y_{it} = \\alpha_i + \\lambda_t + \\beta^{DD} D_{it} + \\varepsilon_{it}

is a weighted average of every 2×2 difference-in-differences that compares one timing group with
another or with :math:`U` (Goodman-Bacon 2021, Theorem 1):

.. math::

    \\hat\\beta^{DD} = \\sum_{k \\ne U} s_{kU}\\hat\\beta^{2\\times2}_{kU}
    + \\sum_{e<\\ell}\\big(s^{e}_{e\\ell}\\hat\\beta^{2\\times2,e}_{e\\ell}
    + s^{\\ell}_{e\\ell}\\hat\\beta^{2\\times2,\\ell}_{e\\ell}\\big),
    \\qquad \\sum s = 1.

With group shares :math:`n_k`, the fraction of periods treated :math:`\\bar D_k` and
:math:`n_{ab} = n_a/(n_a + n_b)`, the weights are proportional to

.. math::

    s_{kU} &\\propto (n_k + n_U)^2\\, n_{kU}(1 - n_{kU})\\, \\bar D_k(1 - \\bar D_k), \\\\
    s^{e}_{e\\ell} &\\propto \\big((n_e + n_\\ell)(1 - \\bar D_\\ell)\\big)^2 n_{e\\ell}(1 - n_{e\\ell})
        \\frac{\\bar D_e - \\bar D_\\ell}{1 - \\bar D_\\ell}\\frac{1 - \\bar D_e}{1 - \\bar D_\\ell}, \\\\
    s^{\\ell}_{e\\ell} &\\propto \\big((n_e + n_\\ell)\\bar D_e\\big)^2 n_{e\\ell}(1 - n_{e\\ell})
        \\frac{\\bar D_\\ell}{\\bar D_e}\\frac{\\bar D_e - \\bar D_\\ell}{\\bar D_e},

each divided by the variance of the demeaned treatment (so that they sum to one). The 2×2
estimates are differences of period-averaged group means: earlier group :math:`e` against the
not-yet-treated later group :math:`\\ell` over the periods before :math:`t_\\ell`, and the later
group against the already-treated earlier group (the "forbidden" comparison, biased when effects
change over time) over the periods from :math:`t_e` on.

Analytic weights constant within unit enter as group masses and weighted group means: the
weighted regression is then the unweighted one on a panel where each unit counts in proportion
to its weight, so the theorem holds unchanged.

References
----------
Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing. Journal of
Econometrics 225(2), 254–277.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.core import demean, group_sums
from finsam_eval.estimators.prepare import EstimationInputError, prepare_panel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["BaconResult", "bacon_decomposition"]

EARLIER_VS_LATER = "earlier vs later treated"
LATER_VS_EARLIER = "later vs earlier treated (forbidden)"
TREATED_VS_NEVER = "treated vs never treated"
COMPARISON_TYPES = (TREATED_VS_NEVER, EARLIER_VS_LATER, LATER_VS_EARLIER)


@dataclass
class BaconResult:
    """Result of :func:`bacon_decomposition`.

    Attributes
    ----------
    table
        One row per 2×2 comparison: ``treated`` (cohort whose treatment switches on in the
        comparison), ``comparison`` (the control cohort, or "never"), ``type`` (one of
        "treated vs never treated", "earlier vs later treated", "later vs earlier treated
        (forbidden)"), ``estimate``, ``weight``, ``periods_start``, ``periods_end``.
    twfe_estimate
        Static TWFE coefficient :math:`\\hat\\beta^{DD}` from the within regression.
    info
        Sample facts (n_units, n_periods, dropped units, weights column).
    """

    table: pd.DataFrame
    twfe_estimate: float
    info: dict[str, Any] = field(default_factory=dict)

    def by_type(self) -> pd.DataFrame:
        """Total weight and weight-averaged estimate per comparison type."""
        t = self.table.assign(weighted=self.table["estimate"] * self.table["weight"])
        out = t.groupby("type", sort=False)[["weight", "weighted"]].sum()
        out["estimate"] = out["weighted"] / out["weight"]
        return out[["weight", "estimate"]].reset_index()

    def summary(self) -> str:
        """Plain-text summary: the TWFE estimate and the weight per comparison type."""
        body = self.by_type().to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return f"Static TWFE estimate: {self.twfe_estimate:.6g}\n{body}"

    def plot(self, ax: Axes | None = None) -> Axes:
        """Scatter of 2×2 estimates against their weights, coloured by comparison type."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        for kind, marker in zip(COMPARISON_TYPES, ("o", "s", "^"), strict=True):
            rows = self.table[self.table["type"] == kind]
            if len(rows):
                ax.scatter(rows["weight"], rows["estimate"], marker=marker, label=kind, alpha=0.8)
        ax.axhline(
            self.twfe_estimate, color="black", linestyle="--", linewidth=0.8, label="TWFE estimate"
        )
        ax.set_xlabel("Weight")
        ax.set_ylabel("2×2 DiD estimate")
        ax.legend(fontsize="small")
        return ax


def bacon_decomposition(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    weights: str | None = None,
) -> BaconResult:
    """Decompose the static TWFE estimate into 2×2 DiD comparisons (Goodman-Bacon 2021).

    Parameters
    ----------
    data, outcome, unit, time, cohort, weights
        The long panel and its columns, as :func:`~finsam_eval.estimators.prepare.prepare_panel`
        reads them (``weights``: optional analytic weights, constant within unit, e.g. the
        population).

    Returns
    -------
    BaconResult
        ``table`` of comparisons whose ``weight`` sums to one and whose weighted ``estimate`` sums
        to ``twfe_estimate`` (exactly, up to rounding).

    Notes
    -----
    Needs a balanced panel: units not observed in every period are dropped (reported in
    ``info["dropped"]``), as are units treated in the first period (``prepare_panel`` drops
    them: they have no untreated period; in Goodman-Bacon's notation they would be an
    always-treated control group). Cohorts after the last period count as never treated.
    """
    panel = prepare_panel(
        data, outcome, unit, time, cohort, weights=weights, control="notyet", unbalanced="balance"
    )
    frame = panel.data
    times = panel.times
    n_t = len(times)
    unit_code = frame["unit"].to_numpy()
    first = np.flatnonzero(np.r_[True, unit_code[1:] != unit_code[:-1]])
    cohort_of_unit = frame["cohort"].to_numpy()[first]
    w_unit = frame["weight"].to_numpy()[first]
    if not (w_unit > 0).any():
        raise EstimationInputError("every unit has zero weight")
    levels, group = np.unique(cohort_of_unit, return_inverse=True)
    n_g = len(levels)
    if not (levels > 0).any():
        raise EstimationInputError("no treated cohort: nothing to decompose")

    # everything below uses only group masses and weighted group × period means of y
    y_table = frame["y"].to_numpy().reshape(len(first), n_t)
    mass = np.bincount(group, weights=w_unit, minlength=n_g)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = group_sums(y_table, group, n_g, weights=w_unit) / mass[:, None]
    share = mass / mass.sum()
    # fraction of periods treated; cohort 0 (never) and cohorts beyond the sample have 0
    treated_share = np.array([(times >= g).mean() if g > 0 else 0.0 for g in levels])
    start = np.array([np.searchsorted(times, g) if g > 0 else n_t for g in levels])

    rows: list[dict[str, Any]] = []

    def window_mean(k: int, lo: int, hi: int) -> float:
        return float(means[k, lo:hi].mean())

    never = np.flatnonzero(levels == 0)
    treated_groups = [k for k in range(n_g) if levels[k] > 0 and mass[k] > 0]
    for k in treated_groups:
        for u in never:
            if mass[u] <= 0:
                continue
            n_ku = share[k] / (share[k] + share[u])
            d_k = treated_share[k]
            s = (share[k] + share[u]) ** 2 * n_ku * (1 - n_ku) * d_k * (1 - d_k)
            sk = start[k]
            est = (window_mean(k, sk, n_t) - window_mean(k, 0, sk)) - (
                window_mean(u, sk, n_t) - window_mean(u, 0, sk)
            )
            rows.append(_row(levels[k], "never", TREATED_VS_NEVER, est, s, times[0], times[-1]))
    for i, e in enumerate(treated_groups):
        for late in treated_groups[i + 1 :]:
            n_el = share[e] / (share[e] + share[late])
            d_e, d_l = treated_share[e], treated_share[late]
            se, sl = start[e], start[late]
            pair = share[e] + share[late]
            # earlier group treated, later group not yet: periods before the later start
            s_early = (
                (pair * (1 - d_l)) ** 2
                * n_el
                * (1 - n_el)
                * (d_e - d_l)
                / (1 - d_l)
                * (1 - d_e)
                / (1 - d_l)
            )
            est_early = (window_mean(e, se, sl) - window_mean(e, 0, se)) - (
                window_mean(late, se, sl) - window_mean(late, 0, se)
            )
            rows.append(
                _row(
                    levels[e],
                    levels[late],
                    EARLIER_VS_LATER,
                    est_early,
                    s_early,
                    times[0],
                    times[sl - 1],
                )
            )
            # later group treated, earlier group (already treated) as control: from the earlier
            # start on
            s_late = (pair * d_e) ** 2 * n_el * (1 - n_el) * d_l / d_e * (d_e - d_l) / d_e
            est_late = (window_mean(late, sl, n_t) - window_mean(late, se, sl)) - (
                window_mean(e, sl, n_t) - window_mean(e, se, sl)
            )
            rows.append(
                _row(
                    levels[late],
                    levels[e],
                    LATER_VS_EARLIER,
                    est_late,
                    s_late,
                    times[se],
                    times[-1],
                )
            )
    table = pd.DataFrame(rows)
    # Theorem 1: the unnormalised weights sum to the variance of the demeaned treatment
    table["weight"] = table["weight"] / table["weight"].sum()

    twfe = _static_twfe(frame)
    info = panel.info()
    info.update({"n_periods": n_t, "cohorts": panel.cohorts.tolist(), "method": "bacon"})
    return BaconResult(table=table, twfe_estimate=twfe, info=info)


def _row(
    treated: Any, comparison: Any, kind: str, estimate: float, weight: float, start: Any, end: Any
) -> dict[str, Any]:
    return {
        "treated": int(treated),
        "comparison": comparison if isinstance(comparison, str) else int(comparison),
        "type": kind,
        "estimate": float(estimate),
        "weight": float(weight),
        "periods_start": int(start),
        "periods_end": int(end),
    }


def _static_twfe(frame: pd.DataFrame) -> float:
    """Coefficient of D in the weighted within regression y ~ D | unit + time."""
    d = ((frame["cohort"] > 0) & (frame["time"] >= frame["cohort"])).to_numpy(dtype=float)
    w = frame["weight"].to_numpy()
    time_code = np.unique(frame["time"].to_numpy(), return_inverse=True)[1]
    within = demean(
        np.column_stack([frame["y"].to_numpy(), d]), [frame["unit"].to_numpy(), time_code], w
    ).values
    dy, dd = within[:, 0], within[:, 1]
    return float((w * dd * dy).sum() / (w * dd * dd).sum())
