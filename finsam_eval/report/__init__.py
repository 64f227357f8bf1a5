"""Report layer: ISF tables, figures, the self-contained HTML report and the run manifest.

Everything works on tidy frames (the long results table, cohorts, decompositions), never on
estimator internals, so a report can be rebuilt from an output folder (``rebuild_report``).
"""

from __future__ import annotations

from finsam_eval._lazy import lazy_exports

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

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("finsam_eval.report", _EXPORTS, globals())
