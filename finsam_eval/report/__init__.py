"""Report layer: ISF tables, figures, the self-contained HTML report and the run manifest.

Everything works on tidy frames (the long results table, cohorts, decompositions), never on
estimator internals, so a report can be rebuilt from an output folder (``rebuild_report``).
"""

from finsam_eval.report.figures import (
    adoption_heatmap,
    bacon_scatter,
    cohort_sizes,
    event_study_overlay,
    save_figure,
    write_figures,
)
from finsam_eval.report.html import rebuild_report, render_report, write_report
from finsam_eval.report.labels import METHOD_LABELS, method_label, method_slug
from finsam_eval.report.manifest import (
    build_manifest,
    hash_files,
    hash_frames,
    read_manifest,
    write_manifest,
)
from finsam_eval.report.pdf import report_pdf
from finsam_eval.report.summary import ISF_2019_PATTERN, series_diagnostics
from finsam_eval.report.tables import (
    ESTIMATE_COLUMNS,
    estimates_from_results,
    isf_table,
    isf_tables,
    read_estimates_csv,
    sort_estimates,
    to_html,
    to_latex,
    to_markdown,
    to_xlsx,
    write_estimates_csv,
    write_tables,
    xlsx_available,
)

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
