"""ISF-style result tables, built from the tidy long results table.

The input of every function here is the long results table ("estimates"): one row per
population × outcome × method × event time with the columns in :data:`ESTIMATE_COLUMNS` (extra
columns are allowed and carried through the CSV writer). Building from frames rather than from
estimator objects keeps the report layer testable without estimators and lets the CLI rebuild a
report from an output folder.

The long table and cell formatting live in :mod:`finsam_eval.report.estimates`, labels and
captions in :mod:`finsam_eval.report.labels`, the per-format writers in
:mod:`finsam_eval.report.writers`; their public names are re-exported here.

Formatting decisions (all outputs are byte-identical for the same input):

- Numbers are in percentage points (outcome shares are percent, so an estimate is already a
  difference in percentage points; ``scale`` converts otherwise) with 3 decimals by default.
- The minus sign is the ASCII hyphen-minus "-" in the table frame, Markdown, HTML, CSV and xlsx,
  so that values survive copy-paste into spreadsheets and any font or encoding. LaTeX writes it as
  ``$-$`` (still ASCII) to get a typographic minus instead of a hyphen. A value that rounds to zero
  is written without a sign ("0.000", never "-0.000").
- Stars follow ISF (2019): ``*`` p < 0.10, ``**`` p < 0.05, ``***`` p < 0.01, strict
  inequalities, on the pointwise p-value by default, so that a ``**`` agrees with a pointwise
  95 % interval in the figures that excludes zero. When the table has multiple-testing adjusted
  p-values, a dagger ``†`` marks estimates whose adjusted p-value is below 0.05 (see
  :func:`isf_table`); the notes under every table say both.
- Standard errors are in parentheses on the row below the estimate.
- Text files use "\\n" line endings, UTF-8, no timestamps.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from finsam_eval.report.estimates import (
    _OPTIONAL_COLUMNS,
    DEFAULT_STARS,
    ESTIMATE_COLUMNS,
    OUTCOME_ORDER,
    POPULATION_ORDER,
    _check_columns,
    _is_missing,
    _outcome_rank,
    _population_rank,
    estimates_from_results,
    format_estimate,
    format_se,
    population_outcomes,
    read_estimates_csv,
    sort_estimates,
    write_estimates_csv,
)
from finsam_eval.report.labels import (
    OUTCOME_LABELS,
    POPULATION_LABELS,
    default_caption,
    method_slug,
    outcome_label_for,
)
from finsam_eval.report.writers import (
    latex_escape,
    to_html,
    to_latex,
    to_markdown,
    to_xlsx,
    xlsx_available,
)

__all__ = [
    "DEFAULT_EVENT_TIMES",
    "DEFAULT_STARS",
    "ESTIMATE_COLUMNS",
    "OUTCOME_LABELS",
    "OUTCOME_ORDER",
    "POPULATION_LABELS",
    "POPULATION_ORDER",
    "default_caption",
    "estimates_from_results",
    "format_estimate",
    "format_se",
    "isf_table",
    "isf_tables",
    "latex_escape",
    "outcome_label_for",
    "population_outcomes",
    "read_estimates_csv",
    "sort_estimates",
    "to_html",
    "to_latex",
    "to_markdown",
    "to_xlsx",
    "write_estimates_csv",
    "write_tables",
    "xlsx_available",
]

DEFAULT_EVENT_TIMES: tuple[int, ...] = tuple(range(0, 7))
DAGGER = "†"
DAGGER_LEVEL = 0.05


# --------------------------------------------------------------------------------------------
# ISF tables
# --------------------------------------------------------------------------------------------


def _choose_p_col(selection: pd.DataFrame, p_col: str | None) -> str:
    # pointwise by default: the stars then say what the figures' pointwise intervals say
    p_col = "p_value" if p_col is None else p_col
    _check_columns(selection, [p_col])
    return p_col


def _sample_sizes(selection: pd.DataFrame) -> dict[str, Any]:
    """Largest n_units / n_clusters of a table's series (outcomes share the kommuner)."""
    out: dict[str, Any] = {}
    for key in ("n_units", "n_clusters"):
        values = pd.to_numeric(selection.get(key), errors="coerce")
        out[key] = None if values is None or values.isna().all() else int(values.max())
    return out


def isf_table(
    estimates: pd.DataFrame,
    population: str,
    method: str,
    event_times: Iterable[int] = DEFAULT_EVENT_TIMES,
    *,
    stars: Sequence[float] = DEFAULT_STARS,
    p_col: str | None = None,
    decimals: int = 3,
    scale: float = 1.0,
    outcomes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One ISF-style table: outcomes × follow-up years for a population and a method.

    Parameters
    ----------
    estimates
        The long results table (:data:`ESTIMATE_COLUMNS`; rows with other ``term`` values than
        "event_time", such as the overall effect, are ignored).
    population, method
        The slice to tabulate.
    event_times
        Follow-up years (columns), 0 = the year of joining.
    stars
        Significance thresholds (see :func:`format_estimate`).
    p_col
        p-value column for the stars; None: the pointwise ``p_value``. When ``p_adjusted`` has
        values and the stars are not already on it, estimates with an adjusted p-value below
        0.05 get a dagger (``†``) after their stars.
    decimals
        Decimals of estimates and standard errors.
    scale
        Multiplier applied to estimates and SEs; 1.0 because shares are in percent and so
        effects already in percentage points.
    outcomes
        Rows to show, default every outcome defined for the population (ISF order) that has
        estimates. Outcomes not defined for the population (e.g. uvas outside unga) are never
        shown.

    Returns
    -------
    pandas.DataFrame
        String cells; index (outcome, statistic) with statistic "estimate" (e.g. ``-0.123**``)
        followed by "se" (e.g. ``(0.045)``); columns the event times. ``attrs`` carries
        population, method, p_col, stars, decimals, dagger (whether adjusted p-values mark
        cells), n_units and n_clusters for the writers' captions and notes.

    Raises
    ------
    ValueError
        Missing columns, no estimates for the slice, or duplicate rows for one cell.
    """
    _check_columns(estimates, [c for c in ESTIMATE_COLUMNS if c not in _OPTIONAL_COLUMNS])
    times = [int(t) for t in event_times]
    selection = estimates[
        (estimates["population"].astype(str) == population)
        & (estimates["method"].astype(str) == method)
    ]
    if selection.empty:
        raise ValueError(f"no estimates for population={population!r}, method={method!r}")
    if "term" in selection.columns:
        selection = selection[selection["term"].isna() | (selection["term"] == "event_time")]
    used_p = _choose_p_col(selection, p_col)
    dagger = (
        used_p != "p_adjusted"
        and "p_adjusted" in selection.columns
        and bool(selection["p_adjusted"].notna().any())
    )

    event_time = pd.to_numeric(selection["event_time"], errors="coerce")
    selection = selection[event_time.isin(times)].assign(_t=event_time.astype(float))
    duplicated = selection.duplicated(["outcome", "_t"], keep=False)
    if duplicated.any():
        cells = selection.loc[duplicated, ["outcome", "_t"]].drop_duplicates()
        raise ValueError(
            f"duplicate estimates for population={population!r}, method={method!r}: "
            f"{cells.to_dict('records')}"
        )

    defined = population_outcomes(population)
    present = set(selection["outcome"].astype(str))
    if outcomes is None:
        rows = sorted(present, key=_outcome_rank)
    else:
        rows = list(outcomes)
    if defined is not None:
        # built-in outcomes not defined for the population (uvas outside unga) are left out;
        # outcomes outside the built-in catalogue are kept, labelled by their name
        rows = [o for o in rows if o in defined or o not in OUTCOME_ORDER]
    if not rows:
        raise ValueError(
            f"no outcome to show for population={population!r}, method={method!r}: outcomes "
            f"present {sorted(present)}, requested {outcomes}, defined for the population "
            f"{list(defined) if defined is not None else 'any'}"
        )

    lookup = {(str(r["outcome"]), float(r["_t"])): r for r in selection.to_dict("records")}
    index = pd.MultiIndex.from_tuples(
        [(o, stat) for o in rows for stat in ("estimate", "se")], names=["outcome", "statistic"]
    )
    data: list[list[str]] = []
    for outcome in rows:
        est_row, se_row = [], []
        for t in times:
            rec = lookup.get((outcome, float(t)))
            if rec is None:
                est_row.append("")
                se_row.append("")
                continue
            est, se = rec["estimate"], rec["se"]
            est = est * scale if not _is_missing(est) else est
            se = se * abs(scale) if not _is_missing(se) else se
            cell = format_estimate(est, rec[used_p], stars=stars, decimals=decimals)
            if dagger and cell and not _is_missing(rec["p_adjusted"]):
                cell += DAGGER if float(rec["p_adjusted"]) < DAGGER_LEVEL else ""
            est_row.append(cell)
            se_row.append(format_se(se, decimals=decimals))
        data.extend([est_row, se_row])
    table = pd.DataFrame(
        data, index=index, columns=pd.Index(times, name="event_time"), dtype=object
    )
    table.attrs.update(
        {
            "population": population,
            "method": method,
            "p_col": used_p,
            "stars": tuple(float(s) for s in stars),
            "decimals": decimals,
            "dagger": dagger,
            **_sample_sizes(selection),
        }
    )
    return table


def isf_tables(
    estimates: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    **options: Any,
) -> dict[tuple[str, str], pd.DataFrame]:
    """Every ISF table: one per population × method present in the estimates.

    Parameters
    ----------
    estimates
        The long results table.
    methods
        Methods in the wanted order; default every method present, alphabetically.
    **options
        Passed to :func:`isf_table`.

    Returns
    -------
    dict
        ``(population, method) -> table``, populations in ISF order, then methods.
    """
    _check_columns(estimates, ["population", "method"])
    populations = sorted(set(estimates["population"].astype(str)), key=_population_rank)
    if methods is None:
        methods = sorted(set(estimates["method"].astype(str)))
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for population in populations:
        for method in methods:
            mask = (estimates["population"].astype(str) == population) & (
                estimates["method"].astype(str) == method
            )
            if mask.any():
                out[(population, method)] = isf_table(estimates, population, method, **options)
    return out


_WRITERS = {"md": to_markdown, "tex": to_latex, "html": to_html}


def write_tables(
    out_dir: str | Path,
    estimates: pd.DataFrame,
    *,
    formats: Sequence[str] = ("md", "tex", "html", "xlsx"),
    methods: Sequence[str] | None = None,
    language: str = "en",
    n_cohorts: int | None = None,
    adjustment: str | None = None,
    **options: Any,
) -> list[Path]:
    """Write every ISF table as ``isf_<population>_<method slug>.<ext>`` into ``out_dir``
    (the slug of Sun–Abraham is ``sunab``: ``sa`` is also an outcome).

    Parameters
    ----------
    out_dir
        Target folder (created).
    estimates
        The long results table.
    formats
        Any of "md", "tex", "html", "xlsx". "xlsx" is skipped with a warning when openpyxl is
        not installed, so a run without it still produces the text tables.
    language
        "sv" or "en" (headers, notes, labels).
    n_cohorts, adjustment
        Number of adoption cohorts and the multiple-testing adjustment behind the dagger, for
        the notes under each table.
    methods, **options
        Passed to :func:`isf_tables`.

    Returns
    -------
    list of pathlib.Path
        Written files in a stable order.
    """
    unknown = set(formats) - {*_WRITERS, "xlsx"}
    if unknown:
        raise ValueError(f"unknown table format(s) {sorted(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = list(formats)
    if "xlsx" in formats and not xlsx_available():
        warnings.warn("openpyxl not installed: xlsx tables skipped", stacklevel=2)
        formats.remove("xlsx")
    written = []
    for (population, method), table in isf_tables(estimates, methods=methods, **options).items():
        if n_cohorts is not None:
            table.attrs["n_cohorts"] = int(n_cohorts)
        if adjustment is not None:
            table.attrs["adjustment"] = adjustment
        stem = out_dir / f"isf_{population}_{method_slug(method)}"
        for ext in formats:
            path = stem.with_suffix(f".{ext}")
            if ext == "xlsx":
                to_xlsx(table, path, language=language)
            else:
                path.write_bytes(_WRITERS[ext](table, language=language).encode("utf-8"))
            written.append(path)
    return written
