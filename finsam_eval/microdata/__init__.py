"""Microdata layer: person-year register data → the long kommun-year panel (issue 15).

Sits between the panel layer (whose ``build_panel`` it reuses) and the synthetic layer (whose
person-level generator writes its schema).

>>> from finsam_eval.microdata import build_microdata_panel
>>> built = build_microdata_panel("persons/", cohorts=cohorts)  # doctest: +SKIP
>>> built.panel, print(built.report.summary())  # doctest: +SKIP
"""

from finsam_eval.microdata.build import (
    BuiltMicroPanel,
    MicrodataReport,
    MicrodataValidationError,
    build_microdata_panel,
    microdata_cells,
)
from finsam_eval.microdata.engines import DuckDBEngine, SparkEngine, make_engine
from finsam_eval.microdata.readers import MicrodataError, MicrodataSource, find_microdata
from finsam_eval.microdata.schema import (
    FLAG_COLUMNS,
    MICRODATA_COLUMNS,
    ORIGIN_STATES,
    REJECT_REASONS,
    TRANSITION_OUTCOMES,
    TRANSITIONS,
    Transition,
)
from finsam_eval.microdata.sql import transpile

__all__ = [
    "FLAG_COLUMNS",
    "MICRODATA_COLUMNS",
    "ORIGIN_STATES",
    "REJECT_REASONS",
    "TRANSITIONS",
    "TRANSITION_OUTCOMES",
    "BuiltMicroPanel",
    "DuckDBEngine",
    "MicrodataError",
    "MicrodataReport",
    "MicrodataSource",
    "MicrodataValidationError",
    "SparkEngine",
    "Transition",
    "build_microdata_panel",
    "find_microdata",
    "make_engine",
    "microdata_cells",
    "transpile",
]
