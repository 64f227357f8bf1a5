"""Panel layer: raw source tables → validated long kommun-year panel + build report.

>>> from finsam_eval.panel import build_panel
>>> built = build_panel(numerators, population, cohorts=cohorts)  # doctest: +SKIP
>>> built.panel, built.report.summary()  # doctest: +SKIP

A panel needs the adoption calendar (``cohorts``); without one, ask for a panel of outcomes only:

>>> outcomes = build_panel(numerators, population, outcome_only=True)  # doctest: +SKIP
"""

from finsam_eval.panel.builder import NEVER_CLUSTER_PREFIX, BuiltPanel, build_panel, empty_panel
from finsam_eval.panel.populations import (
    AGE_BANDS,
    OUTCOMES,
    POPULATIONS,
    SEXES,
    Population,
    is_defined,
)
from finsam_eval.panel.report import BuildReport
from finsam_eval.panel.validation import (
    NUMERATOR_COLUMNS,
    PANEL_COLUMNS,
    POPULATION_COLUMNS,
    PanelValidationError,
    validate_cohorts,
    validate_numerators,
    validate_panel,
    validate_population,
)

__all__ = [
    "AGE_BANDS",
    "NEVER_CLUSTER_PREFIX",
    "NUMERATOR_COLUMNS",
    "OUTCOMES",
    "PANEL_COLUMNS",
    "POPULATIONS",
    "POPULATION_COLUMNS",
    "SEXES",
    "BuildReport",
    "BuiltPanel",
    "PanelValidationError",
    "Population",
    "build_panel",
    "empty_panel",
    "is_defined",
    "validate_cohorts",
    "validate_numerators",
    "validate_panel",
    "validate_population",
]
