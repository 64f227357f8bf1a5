"""Numerical kernels: fixed-effect demeaning and cluster sums. Imports nothing from the package."""

from finsam_eval.core.cluster import (
    group_sums,
    is_nested,
    n_params_with_fixed_effects,
    sandwich,
    small_sample_factor,
)
from finsam_eval.core.demean import Demeaned, complete_two_way_cells, demean

__all__ = [
    "Demeaned",
    "complete_two_way_cells",
    "demean",
    "group_sums",
    "is_nested",
    "n_params_with_fixed_effects",
    "sandwich",
    "small_sample_factor",
]
