"""``finsam_eval.estimate``: one entry point for every staggered-adoption estimator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from finsam_eval.estimators.registry import METHODS, method_info
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import EstimationSpec, few_clusters_inference

__all__ = ["METHODS", "estimate"]


def estimate(
    data: pd.DataFrame,
    outcome: str = "share",
    unit: str = "kommun_kod",
    time: str = "year",
    cohort: str = "cohort",
    method: str = "cs",
    control: str = "never",
    est_method: str | None = None,
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    anticipation: int = 0,
    base_period: str | None = None,
    unbalanced: str = "balance",
    window: tuple[int, int] | None = None,
    reps: int = 0,
    seed: int | None = None,
    alpha: float = 0.05,
    **method_options: Any,
) -> EstimationResult:
    """Estimate dynamic effects of joining a förbund with a staggered-adoption estimator.

    Parameters
    ----------
    data
        Long panel (one row per unit and period), e.g. one population × outcome slice of
        ``finsam_eval.load_synthetic()``.
    outcome, unit, time, cohort
        Column names; ``cohort`` is the first year of membership, 0 or NaN for never.
    method
        "cs" (Callaway & Sant'Anna 2021), "twfe" (dynamic two-way fixed effects),
        "sa" (Sun & Abraham 2021), "imputation" (Borusyak, Jaravel & Spiess 2024),
        "two_stage" (Gardner 2021), "stacked" (Wing, Freedman & Hollingsworth 2024) or
        "dcdh" (de Chaisemartin & D'Haultfœuille 2024). docs/methods.md says what each assumes.
    control
        "never" or "notyet" (not-yet-treated units also serve as controls); Sun–Abraham also
        takes "lasttreated".
    est_method
        CS only: "dr" (Sant'Anna & Zhao 2020 locally efficient doubly robust, the default),
        "ipw", "reg". Other methods refuse any value but "dr".
    covariates, weights, cluster
        Covariate columns, a sampling-weight column (constant within unit), and the cluster
        column (kommun, förbund or län; None clusters by unit).
    anticipation
        Periods before joining in which effects may already appear.
    base_period
        "varying" (default) or "universal" (CS pre-treatment comparisons, as in R's did).
    unbalanced
        "balance" (drop and report units not seen in every period) or "keep".
    window
        Event-time window (lo, hi); TWFE bins the end points.
    reps, seed
        Bootstrap draws (0 = analytic SEs only) and the seed of their numpy Generator. The old
        name ``bootstrap=`` still works for one release, with a ``DeprecationWarning``.
    alpha
        Significance level of the intervals.
    **method_options
        Options of one method (``MethodInfo.options`` in ``finsam_eval.estimators.registry``,
        e.g. CS's ``multiplier="rademacher"|"mammen"|"webb"``); an option the method does not
        take raises, naming the methods that take it.

    Returns
    -------
    EstimationResult
        With ``spec``, the validated :class:`~finsam_eval.estimators.spec.EstimationSpec`.

    Raises
    ------
    UnknownOptionError
        An option ``method`` does not take (a ``TypeError``).
    EstimationInputError
        A value outside its rule (a ``ValueError``); the message names value and rule.

    Notes
    -----
    With fewer than ``spec.FEW_CLUSTERS`` (50) clusters, intervals and p-values use t(G-1)
    critical values and a warning points to the wild cluster bootstrap; with one cluster they
    are NaN (see ``spec.few_clusters_inference``).
    """
    info = method_info(method)
    options = dict(
        outcome=outcome,
        unit=unit,
        time=time,
        cohort=cohort,
        control=control,
        covariates=covariates,
        weights=weights,
        cluster=cluster,
        anticipation=anticipation,
        unbalanced=unbalanced,
        window=window,
        seed=seed,
        alpha=alpha,
    )
    if "bootstrap" not in method_options:
        options["reps"] = reps  # else the deprecated name is renamed (and warned about) by build
    if est_method is not None:
        options["est_method"] = est_method
    if base_period is not None:
        options["base_period"] = base_period
    spec = EstimationSpec.build(method, data, _warn_level=4, **options, **method_options)
    return few_clusters_inference(info.fit(data, spec), spec.alpha)
