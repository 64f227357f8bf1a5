"""``finsam_eval.estimate``: one entry point for every staggered-adoption estimator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

import pandas as pd

from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import few_clusters_inference, validate_request

__all__ = ["METHODS", "estimate"]

# method key -> module in finsam_eval.estimators exposing ``fit(data, **spec) -> EstimationResult``
METHODS: dict[str, str] = {
    "cs": "finsam_eval.estimators.callaway_santanna",
    "twfe": "finsam_eval.estimators.twfe",
    "stacked": "finsam_eval.estimators.stacked",
    "dcdh": "finsam_eval.estimators.dcdh",
    "sa": "finsam_eval.estimators.sun_abraham",
    "imputation": "finsam_eval.estimators.imputation",
    "two_stage": "finsam_eval.estimators.two_stage",
}


def _fitter(method: str) -> Callable[..., EstimationResult]:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; available: {sorted(METHODS)}")
    return import_module(METHODS[method]).fit


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
    bootstrap: int = 0,
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
    bootstrap, seed
        Multiplier-bootstrap draws (0 = analytic SEs only) and the seed of its numpy Generator.
    alpha
        Significance level of the intervals.
    **method_options
        Options of one method (``METHOD_OPTIONS`` in ``finsam_eval.estimators.spec``); an
        option the method does not take raises, naming the methods that take it.

    Returns
    -------
    EstimationResult

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
    fit = _fitter(method)
    options = dict(
        outcome=outcome,
        unit=unit,
        time=time,
        cohort=cohort,
        control=control,
        est_method=est_method,
        covariates=covariates,
        weights=weights,
        cluster=cluster,
        anticipation=anticipation,
        base_period=base_period,
        unbalanced=unbalanced,
        window=window,
        bootstrap=bootstrap,
        seed=seed,
        alpha=alpha,
        **method_options,
    )
    if est_method is None:
        del options["est_method"]
    if base_period is None:
        del options["base_period"]
    passed = validate_request(method, data, options)
    return few_clusters_inference(fit(data, **passed), alpha)
