"""Pipeline layer: an analysis configuration → every estimate, table, figure and the report."""

from finsam_eval.pipeline.config import AnalysisConfig, ConfigError, load_config
from finsam_eval.pipeline.output import OutputFolderError
from finsam_eval.pipeline.run import (
    estimate_all,
    joint_draws,
    load_analysis_panel,
    load_panel_for,
    run_analysis,
)

__all__ = [
    "AnalysisConfig",
    "ConfigError",
    "estimate_all",
    "joint_draws",
    "load_analysis_panel",
    "load_config",
    "load_panel_for",
    "OutputFolderError",
    "run_analysis",
]
