"""Numerical kernels: fixed-effect demeaning, cluster sums and sandwich factors, and the
multiplier bootstrap on influence functions. Imports nothing from the package outside ``core``,
so estimators and inference both build on it."""

from finsam_eval.core.cluster import (
    group_sums,
    is_nested,
    n_params_with_fixed_effects,
    sandwich,
    small_sample_factor,
    unique_codes,
)
from finsam_eval.core.demean import Demeaned, complete_two_way_cells, demean
from finsam_eval.core.multiplier import (
    WEIGHT_KINDS,
    MultiplierBootstrap,
    analytic_se,
    cluster_sums,
    cluster_weights,
    draw_multipliers,
    multiplier_bootstrap,
    se_from_square_sums,
)

__all__ = [
    "WEIGHT_KINDS",
    "Demeaned",
    "MultiplierBootstrap",
    "analytic_se",
    "cluster_sums",
    "cluster_weights",
    "complete_two_way_cells",
    "demean",
    "draw_multipliers",
    "group_sums",
    "is_nested",
    "multiplier_bootstrap",
    "n_params_with_fixed_effects",
    "sandwich",
    "se_from_square_sums",
    "small_sample_factor",
    "unique_codes",
]
