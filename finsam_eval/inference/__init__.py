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

from finsam_eval.core.multiplier import (
    MultiplierBootstrap,
    analytic_se,
    cluster_sums,
    draw_multipliers,
    multiplier_bootstrap,
)
from finsam_eval.inference.honest import breakdown_value, honest_did, plot_sensitivity
from finsam_eval.inference.multiple_testing import adjust_pvalues, romano_wolf
from finsam_eval.inference.pretrends import (
    PretestPower,
    pretest_power,
    pretrend_wald,
    slope_for_power,
)
from finsam_eval.inference.wild_cluster import WildBootstrapResult, wild_cluster_bootstrap
from finsam_eval.inference.wild_refit import LinearEventStudy, linear_event_study, refit_bootstrap
from finsam_eval.inference.wild_refit_cs import linear_cs_aggregate
from finsam_eval.inference.wild_results import (
    TwfeDesign,
    score_bootstrap,
    twfe_design,
    wild_bootstrap,
    wild_bootstrap_event_study,
)

__all__ = [
    "MultiplierBootstrap",
    "TwfeDesign",
    "LinearEventStudy",
    "linear_cs_aggregate",
    "linear_event_study",
    "refit_bootstrap",
    "score_bootstrap",
    "twfe_design",
    "wild_bootstrap",
    "wild_bootstrap_event_study",
    "PretestPower",
    "WildBootstrapResult",
    "adjust_pvalues",
    "analytic_se",
    "breakdown_value",
    "cluster_sums",
    "draw_multipliers",
    "honest_did",
    "multiplier_bootstrap",
    "plot_sensitivity",
    "pretest_power",
    "pretrend_wald",
    "romano_wolf",
    "slope_for_power",
    "wild_cluster_bootstrap",
]
