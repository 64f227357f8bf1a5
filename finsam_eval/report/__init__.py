"""Report layer: ISF tables, figures, the self-contained HTML report and the run manifest.

Everything works on tidy frames (the long results table, cohorts, decompositions), never on
estimator internals, so a report can be rebuilt from an output folder (``rebuild_report``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# imported on first use (PEP 562), as in finsam_eval/__init__.py: the figures load matplotlib,
# which the run's main process leaves to its report workers (issue 16)
_EXPORTS = {
    "ESTIMATE_COLUMNS": "finsam_eval.report.tables",
    "ISF_2019_PATTERN": "finsam_eval.report.summary",
    "METHOD_LABELS": "finsam_eval.report.labels",
    "adoption_heatmap": "finsam_eval.report.figures",
    "bacon_scatter": "finsam_eval.report.figures",
    "build_manifest": "finsam_eval.report.manifest",
    "cohort_sizes": "finsam_eval.report.figures",
    "estimates_from_results": "finsam_eval.report.tables",
    "event_study_overlay": "finsam_eval.report.figures",
    "hash_files": "finsam_eval.report.manifest",
    "hash_frames": "finsam_eval.report.manifest",
    "isf_table": "finsam_eval.report.tables",
    "isf_tables": "finsam_eval.report.tables",
    "method_label": "finsam_eval.report.labels",
    "method_slug": "finsam_eval.report.labels",
    "read_estimates_csv": "finsam_eval.report.tables",
    "read_manifest": "finsam_eval.report.manifest",
    "rebuild_report": "finsam_eval.report.html",
    "render_report": "finsam_eval.report.html",
    "report_pdf": "finsam_eval.report.pdf",
    "save_figure": "finsam_eval.report.figures",
    "series_diagnostics": "finsam_eval.report.summary",
    "sort_estimates": "finsam_eval.report.tables",
    "to_html": "finsam_eval.report.tables",
    "to_latex": "finsam_eval.report.tables",
    "to_markdown": "finsam_eval.report.tables",
    "to_xlsx": "finsam_eval.report.tables",
    "write_estimates_csv": "finsam_eval.report.tables",
    "write_figures": "finsam_eval.report.figure_jobs",
    "write_manifest": "finsam_eval.report.manifest",
    "write_report": "finsam_eval.report.html",
    "write_tables": "finsam_eval.report.tables",
    "xlsx_available": "finsam_eval.report.tables",
}

__all__ = [
    "ESTIMATE_COLUMNS",
    "ISF_2019_PATTERN",
    "METHOD_LABELS",
    "adoption_heatmap",
    "bacon_scatter",
    "build_manifest",
    "cohort_sizes",
    "estimates_from_results",
    "event_study_overlay",
    "hash_files",
    "hash_frames",
    "isf_table",
    "isf_tables",
    "method_label",
    "method_slug",
    "read_estimates_csv",
    "read_manifest",
    "rebuild_report",
    "render_report",
    "report_pdf",
    "save_figure",
    "series_diagnostics",
    "sort_estimates",
    "to_html",
    "to_latex",
    "to_markdown",
    "to_xlsx",
    "write_estimates_csv",
    "write_figures",
    "write_manifest",
    "write_report",
    "write_tables",
    "xlsx_available",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'finsam_eval.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
