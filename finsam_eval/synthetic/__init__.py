"""Calibrated synthetic Finsam data with known truth (all 290 kommuner, 1998–2018)."""

from finsam_eval.synthetic.generator import DEFAULT_SEED, YEARS, SyntheticData, generate_synthetic
from finsam_eval.synthetic.store import (
    load_synthetic,
    load_synthetic_sources,
    load_synthetic_truth,
    write_synthetic,
)

__all__ = [
    "DEFAULT_SEED",
    "YEARS",
    "SyntheticData",
    "generate_synthetic",
    "load_synthetic",
    "load_synthetic_sources",
    "load_synthetic_truth",
    "write_synthetic",
]
