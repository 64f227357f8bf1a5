"""Inference layer: variance estimators, bootstraps, multiple testing and sensitivity analysis.

Everything here operates on influence functions or score contributions returned by the
estimators (see docs/architecture.md), except the few-cluster wild bootstraps, which re-estimate:
the TWFE regression (``wild_results``) and the imputation, two-stage and Callaway–Sant'Anna
estimators replayed as linear maps of the outcome (``wild_refit``, ``wild_refit_cs``). Modules:

- ``honest``: Rambachan–Roth sensitivity of event-study conclusions to violations of parallel
  trends (``honest_did``, ``breakdown_value``, ``plot_sensitivity``).
- ``multiple_testing``: familywise and false-discovery-rate adjustments, Romano–Wolf stepdown.
- ``wild_cluster``: wild cluster bootstrap of a regression, for few clusters.
- ``wild_results``: wild bootstrap of event studies (TWFE WCR/WCU, re-estimating WCR/WCU for
  imputation, two-stage and CS aggregates, score bootstrap of influence functions).
- ``wild_refit``: the imputation and two-stage estimators as linear maps of the outcome and
  the re-estimating wild cluster bootstrap-t.
- ``wild_refit_cs``: Callaway–Sant'Anna aggregates as linear maps of the outcome.
- ``pretrends``: joint Wald pre-test and its power against linear trends.
- ``bands``: sup-t simultaneous bands.

The multiplier-bootstrap kernel (Rademacher, Mammen, Webb weights drawn per cluster,
IQR-based standard errors, sup-t critical values) lives in :mod:`finsam_eval.core.multiplier`,
below the estimators that use it, and is re-exported here.
"""

from __future__ import annotations

from finsam_eval._lazy import lazy_exports

# imported on first use (PEP 562), as in finsam_eval/__init__.py: honest and pretrends load
# scipy.stats and scipy.optimize, which a run that only needs the bands should not pay for
# (issue 16)
_EXPORTS = {
    "LinearEventStudy": "finsam_eval.inference.wild_refit",
    "MultiplierBootstrap": "finsam_eval.core.multiplier",
    "PretestPower": "finsam_eval.inference.pretrends",
    "TwfeDesign": "finsam_eval.inference.wild_results",
    "WildBootstrapResult": "finsam_eval.inference.wild_cluster",
    "adjust_pvalues": "finsam_eval.inference.multiple_testing",
    "analytic_se": "finsam_eval.core.multiplier",
    "breakdown_value": "finsam_eval.inference.honest",
    "cluster_sums": "finsam_eval.core.multiplier",
    "draw_multipliers": "finsam_eval.core.multiplier",
    "honest_did": "finsam_eval.inference.honest",
    "linear_cs_aggregate": "finsam_eval.inference.wild_refit_cs",
    "linear_event_study": "finsam_eval.inference.wild_refit",
    "multiplier_bootstrap": "finsam_eval.core.multiplier",
    "plot_sensitivity": "finsam_eval.inference.honest",
    "pretest_power": "finsam_eval.inference.pretrends",
    "pretrend_wald": "finsam_eval.inference.pretrends",
    "refit_bootstrap": "finsam_eval.inference.wild_refit",
    "romano_wolf": "finsam_eval.inference.multiple_testing",
    "score_bootstrap": "finsam_eval.inference.wild_results",
    "slope_for_power": "finsam_eval.inference.pretrends",
    "twfe_design": "finsam_eval.inference.wild_results",
    "wild_bootstrap": "finsam_eval.inference.wild_results",
    "wild_bootstrap_event_study": "finsam_eval.inference.wild_results",
    "wild_cluster_bootstrap": "finsam_eval.inference.wild_cluster",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("finsam_eval.inference", _EXPORTS, globals())
