"""Inference layer: variance estimators, bootstraps, multiple testing and sensitivity analysis.

Everything here operates on influence functions or score contributions returned by the
estimators, never by re-estimating (see docs/architecture.md). Modules:

- ``multiplier``: multiplier bootstrap on influence functions (Rademacher, Mammen, Webb weights,
  cluster-level draws), IQR-based bootstrap standard errors and sup-t simultaneous bands.
"""

from finsam_eval.inference.multiplier import (
    MultiplierBootstrap,
    analytic_se,
    cluster_sums,
    draw_multipliers,
    multiplier_bootstrap,
)

__all__ = [
    "MultiplierBootstrap",
    "analytic_se",
    "cluster_sums",
    "draw_multipliers",
    "multiplier_bootstrap",
]
