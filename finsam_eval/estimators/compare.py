"""Fit several estimators on one specification and lay their event studies side by side.

Heterogeneity-robust estimators differ in their comparison groups and weights (Callaway &
Sant'Anna 2021; Sun & Abraham 2021; Borusyak, Jaravel & Spiess 2024; Gardner 2021), so agreement
across them is a robustness check and disagreement with TWFE a symptom of the negative-weight
problem (Goodman-Bacon 2021). ``compare`` fits each method through ``finsam_eval.estimate`` with
the same specification and returns one tidy table and an overlay plot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.estimators.api import METHODS, estimate
from finsam_eval.estimators.result import EstimationResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["ComparisonResult", "compare"]

TABLE_COLUMNS = ["method", "event_time", "estimate", "se", "ci_lower", "ci_upper", "p_value"]


@dataclass
class ComparisonResult:
    """Event studies of several methods on one specification.

    Attributes
    ----------
    results
        ``EstimationResult`` by method key, in the order requested.
    table
        Tidy long table: ``method``, ``event_time``, ``estimate``, ``se``, ``ci_lower``,
        ``ci_upper``, ``p_value`` (reference rows have estimate 0 and NaN se).
    overall
        One row per method: the overall effect (average of event times >= 0 for the event-study
        estimators; see each method's docstring).
    """

    results: dict[str, EstimationResult]
    table: pd.DataFrame
    overall: pd.DataFrame

    def plot(
        self,
        ax: Axes | None = None,
        width: float = 0.6,
        labels: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Axes:
        """Overlay of the event studies: estimates and intervals dodged, one colour per method.

        Parameters
        ----------
        ax
            Axes to draw on; a new figure when None.
        width
            Total horizontal spread of the dodged methods at each event time: method ``k`` of
            ``K`` is drawn at ``event_time + offset_k``, offsets evenly spaced over
            ``[-width/2, width/2]`` (a single result's ``plot(offset=...)`` does the same by hand).
        labels
            Legend labels by method key (default the keys).
        **kwargs
            Passed to ``Axes.errorbar``.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5))
        methods = list(self.results)
        offsets = (
            np.linspace(-width / 2, width / 2, len(methods)) if len(methods) > 1 else np.zeros(1)
        )
        colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        for k, method in enumerate(methods):
            rows = self.table[self.table["method"] == method]
            x = rows["event_time"].to_numpy(dtype=float) + offsets[k]
            est = rows["estimate"].to_numpy(dtype=float)
            yerr = np.vstack([est - rows["ci_lower"], rows["ci_upper"] - est]).astype(float)
            ax.errorbar(
                x,
                est,
                yerr=np.nan_to_num(yerr),
                fmt="o",
                markersize=4,
                capsize=2,
                color=colours[k % len(colours)],
                label=(labels or {}).get(method, method),
                **kwargs,
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.axvline(-0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel("Years since joining")
        outcome = next(iter(self.results.values())).info.get("outcome", "outcome")
        ax.set_ylabel(f"Effect on {outcome}")
        ax.legend(frameon=False)
        return ax


def compare(
    data: pd.DataFrame,
    methods: Sequence[str] | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    **spec: Any,
) -> ComparisonResult:
    """Fit ``methods`` on the same specification and collect their event studies.

    Parameters
    ----------
    data
        Long panel.
    methods
        Keys of ``finsam_eval.estimators.METHODS``; None fits every registered method.
    method_options
        Extra options per method, e.g. ``{"twfe": {"vcov": "hetero"}}``.
    **spec
        The shared specification passed to ``finsam_eval.estimate`` (outcome, unit, time,
        cohort, control, covariates, weights, cluster, anticipation, window, alpha, ...).

    Returns
    -------
    ComparisonResult
    """
    methods = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; available: {sorted(METHODS)}")
    if "method" in spec:
        raise ValueError("pass the methods as methods=[...], not method=")
    options = dict(method_options or {})
    stray = [m for m in options if m not in methods]
    if stray:
        raise ValueError(
            f"method_options names method(s) {stray} that are not compared (methods={methods}); "
            "add them to methods or drop their options"
        )
    results: dict[str, EstimationResult] = {}
    for method in methods:
        results[method] = estimate(data, method=method, **spec, **dict(options.get(method, {})))
    frames = []
    overall = []
    for method, res in results.items():
        es = res.event_study
        frames.append(es.assign(method=method)[TABLE_COLUMNS])
        overall.append(pd.DataFrame([res.overall]).assign(method=method))
    table = pd.concat(frames, ignore_index=True)
    overall_frame = pd.concat(overall, ignore_index=True)
    overall_frame = overall_frame[["method", *[c for c in overall_frame if c != "method"]]]
    return ComparisonResult(results=results, table=table, overall=overall_frame)
