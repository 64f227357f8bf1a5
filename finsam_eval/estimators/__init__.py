"""Estimators layer: one module per method, all returning ``EstimationResult``."""

from finsam_eval.estimators.api import METHODS, estimate
from finsam_eval.estimators.calendars import estimate_over_calendars, impute_calendars
from finsam_eval.estimators.prepare import EstimationInputError, PreparedPanel, prepare_panel
from finsam_eval.estimators.registry import MethodInfo, method_info
from finsam_eval.estimators.result import AggregationResult, EstimationResult
from finsam_eval.estimators.spec import EstimationSpec, UnknownOptionError

__all__ = [
    "METHODS",
    "AggregationResult",
    "EstimationInputError",
    "EstimationResult",
    "EstimationSpec",
    "MethodInfo",
    "UnknownOptionError",
    "PreparedPanel",
    "estimate",
    "estimate_over_calendars",
    "impute_calendars",
    "method_info",
    "prepare_panel",
]
