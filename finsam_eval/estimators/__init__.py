"""Estimators layer: one module per method, all returning ``EstimationResult``."""

from finsam_eval.estimators.api import METHODS, estimate
from finsam_eval.estimators.calendars import estimate_over_calendars
from finsam_eval.estimators.prepare import EstimationInputError, PreparedPanel, prepare_panel
from finsam_eval.estimators.result import AggregationResult, EstimationResult

__all__ = [
    "METHODS",
    "AggregationResult",
    "EstimationInputError",
    "EstimationResult",
    "PreparedPanel",
    "estimate",
    "estimate_over_calendars",
    "prepare_panel",
]
