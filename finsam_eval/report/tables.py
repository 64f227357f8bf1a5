"""ISF-style result tables and the tidy long results table.

The input of every function here is the long results table ("estimates"): one row per
population × outcome × method × event time with the columns in :data:`ESTIMATE_COLUMNS` (extra
columns are allowed and carried through the CSV writer). Building from frames rather than from
estimator objects keeps the report layer testable without estimators and lets the CLI rebuild a
report from an output folder.

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

import html
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import OUTCOMES, POPULATIONS
from finsam_eval.report import labels as _labels
from finsam_eval.report.labels import (
    adjustment_label,
    check_language,
    method_label,
    method_slug,
    population_label,
    text,
)

if TYPE_CHECKING:
    from finsam_eval.estimators.result import EstimationResult

__all__ = [
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

#: Columns of the long results table, in the order the CSV writer uses.
ESTIMATE_COLUMNS: list[str] = [
    "population",
    "outcome",
    "method",
    "event_time",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "p_value",
    "p_adjusted",
    "n_units",
    "n_clusters",
]
# p_adjusted is only produced when a multiple-testing correction ran; it is added as NaN.
_OPTIONAL_COLUMNS = {"p_adjusted"}

#: ISF (2019) order of populations and outcomes (the panel layer's); tables and figures follow it.
POPULATION_ORDER: tuple[str, ...] = tuple(POPULATIONS)
OUTCOME_ORDER: tuple[str, ...] = OUTCOMES

#: Row and caption labels as in the ISF report (Swedish terms; from :mod:`finsam_eval.report.labels`).
OUTCOME_LABELS: dict[str, str] = dict(_labels._OUTCOMES["sv"])
POPULATION_LABELS: dict[str, str] = dict(_labels._POPULATIONS["sv"])

# Outcomes defined per population (docs/architecture.md). Used only when the panel layer's
# population definitions are not importable, so the report works on its own; a test checks the
# two agree once finsam_eval.panel.populations exists.
_FALLBACK_POPULATION_OUTCOMES: dict[str, tuple[str, ...]] = {
    "alla": OUTCOME_ORDER[:5],
    "kvinnor": OUTCOME_ORDER[:5],
    "man": OUTCOME_ORDER[:5],
    "unga": OUTCOME_ORDER,
    "aldre": OUTCOME_ORDER[:4],
}

DEFAULT_EVENT_TIMES: tuple[int, ...] = tuple(range(0, 7))
DEFAULT_STARS: tuple[float, ...] = (0.10, 0.05, 0.01)
DAGGER = "†"
DAGGER_LEVEL = 0.05


def population_outcomes(population: str) -> tuple[str, ...] | None:
    """Outcomes defined for a population, in ISF order.

    Parameters
    ----------
    population
        Population key (alla, kvinnor, man, unga, aldre).

    Returns
    -------
    tuple of str or None
        The outcomes, or None for a population the library does not define (then every outcome
        present in the estimates is shown).
    """
    try:  # the panel layer owns the definitions; fall back so report does not depend on it
        from finsam_eval.panel.populations import POPULATIONS
    except ImportError:
        defined = _FALLBACK_POPULATION_OUTCOMES.get(population)
    else:
        spec = POPULATIONS.get(population)
        defined = None if spec is None else tuple(spec.outcomes)
    if defined is None:
        return None
    return tuple(sorted(defined, key=_outcome_rank))


def _rank(order: Sequence[str], value: Any) -> tuple[int, str]:
    """Sort key: known values in the given order, unknown ones after them alphabetically."""
    value = str(value)
    return (order.index(value), "") if value in order else (len(order), value)


def _outcome_rank(outcome: Any) -> tuple[int, str]:
    return _rank(OUTCOME_ORDER, outcome)


def _population_rank(population: Any) -> tuple[int, str]:
    return _rank(POPULATION_ORDER, population)


# --------------------------------------------------------------------------------------------
# Cell formatting
# --------------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    # "-0.000" would claim a sign the rounded number does not have
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


def format_estimate(
    estimate: float,
    p_value: float | None = None,
    *,
    stars: Sequence[float] = DEFAULT_STARS,
    decimals: int = 3,
) -> str:
    """Format an estimate with ISF significance stars, e.g. ``-0.123**``.

    Parameters
    ----------
    estimate
        The point estimate (already scaled to percentage points).
    p_value
        Its p-value; missing (None/NaN) gives no stars.
    stars
        Significance thresholds; the number of stars is the number of thresholds strictly above
        the p-value, so (0.10, 0.05, 0.01) gives one star for p < 0.10 and three for p < 0.01.
    decimals
        Decimals of the fixed-point number.

    Returns
    -------
    str
        The formatted cell, "" when the estimate is missing.
    """
    if _is_missing(estimate):
        return ""
    n_stars = 0 if _is_missing(p_value) else sum(float(p_value) < t for t in stars)
    return _fixed(float(estimate), decimals) + "*" * n_stars


def format_se(se: float, *, decimals: int = 3) -> str:
    """Format a standard error in parentheses, e.g. ``(0.045)``; "" when missing."""
    if _is_missing(se):
        return ""
    return f"({_fixed(float(se), decimals)})"


def _star_note(stars: Sequence[float]) -> list[tuple[str, str]]:
    """(stars, threshold) pairs from the fewest stars to the most, e.g. [("*", "0.1"), ...]."""
    ordered = sorted(stars, reverse=True)
    return [("*" * (i + 1), _threshold_text(t)) for i, t in enumerate(ordered)]


def _threshold_text(threshold: float) -> str:
    """0.1 -> "0.10" as ISF prints it; finer thresholds keep their digits (0.001)."""
    text = f"{threshold:.2f}"
    return text if float(text) == threshold else f"{threshold:g}"


# --------------------------------------------------------------------------------------------
# The long table
# --------------------------------------------------------------------------------------------


def _check_columns(estimates: pd.DataFrame, needed: Iterable[str]) -> None:
    missing = [c for c in needed if c not in estimates.columns]
    if missing:
        raise ValueError(f"estimates table lacks column(s) {missing}; needs {ESTIMATE_COLUMNS}")


def estimates_from_results(
    results: Iterable[tuple[str, str, EstimationResult]],
) -> pd.DataFrame:
    """Build the long results table from estimator results.

    Parameters
    ----------
    results
        Triples ``(population, outcome, result)``.

    Returns
    -------
    pandas.DataFrame
        :data:`ESTIMATE_COLUMNS` plus ``term`` ("event_time" or "overall", from
        ``EstimationResult.to_frame``) and any extra event-study columns (e.g. bands). The
        sample sizes come from ``result.info`` (``n_units``, ``n_clusters``).
    """
    frames = []
    for population, outcome, result in results:
        frame = result.to_frame()
        frame.insert(0, "outcome", outcome)
        frame.insert(0, "population", population)
        if "p_adjusted" not in frame.columns:
            frame["p_adjusted"] = np.nan
        for key in ("n_units", "n_clusters"):
            value = result.info.get(key)
            frame[key] = np.nan if value is None else value
        # to_frame puts pd.NA in the overall row; a float column keeps CSV output numeric
        frame["event_time"] = pd.to_numeric(frame["event_time"], errors="coerce").astype(float)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=ESTIMATE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[_column_order(out)]


def _column_order(estimates: pd.DataFrame) -> list[str]:
    extra = sorted(c for c in estimates.columns if c not in ESTIMATE_COLUMNS)
    return [c for c in ESTIMATE_COLUMNS if c in estimates.columns] + extra


def sort_estimates(estimates: pd.DataFrame) -> pd.DataFrame:
    """The long table in canonical order: columns as :data:`ESTIMATE_COLUMNS` then extra columns
    alphabetically; rows by population and outcome (ISF order), method, term, event time.

    A missing ``p_adjusted`` column is added as NaN so every file has the same columns.
    """
    _check_columns(estimates, [c for c in ESTIMATE_COLUMNS if c not in _OPTIONAL_COLUMNS])
    out = estimates.copy()
    if "p_adjusted" not in out.columns:
        out["p_adjusted"] = np.nan
    keys = pd.DataFrame(
        {
            "_pop": [_population_rank(v) for v in out["population"]],
            "_out": [_outcome_rank(v) for v in out["outcome"]],
            "_method": out["method"].astype(str).to_numpy(),
            # event-time rows first, then overall/other terms, alphabetically
            "_term": (
                [(0, "") if str(v) == "event_time" else (1, str(v)) for v in out["term"]]
                if "term" in out.columns
                else [(0, "")] * len(out)
            ),
            "_t": pd.to_numeric(out["event_time"], errors="coerce").to_numpy(dtype=float),
        },
        index=out.index,
    )
    # NaN event times (overall rows) sort last within their term
    order = keys.sort_values(
        ["_pop", "_out", "_method", "_term", "_t"], kind="stable", na_position="last"
    ).index
    return out.loc[order, _column_order(out)].reset_index(drop=True)


def write_estimates_csv(estimates: pd.DataFrame, path: str | Path) -> Path:
    """Write the long table as tidy CSV, byte-identical for the same input.

    Canonical row and column order (:func:`sort_estimates`), floats as ``%.10g``, missing values
    as empty fields, "\\n" line endings, UTF-8.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = sort_estimates(estimates).to_csv(
        index=False, float_format="%.10g", na_rep="", lineterminator="\n"
    )
    path.write_bytes(text.encode("utf-8"))
    return path


def read_estimates_csv(path: str | Path) -> pd.DataFrame:
    """Read a long table written by :func:`write_estimates_csv`."""
    return pd.read_csv(
        path,
        dtype={"population": str, "outcome": str, "method": str},
        keep_default_na=True,
    )


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


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _rows(table: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """(outcome, statistic, cells) per table row."""
    out = []
    for (outcome, statistic), cells in zip(table.index, table.to_numpy(), strict=True):
        out.append((str(outcome), str(statistic), ["" if c is None else str(c) for c in cells]))
    return out


def _label(outcome: str, labels: Mapping[str, str] | None, language: str = "en") -> str:
    if labels is None:
        return outcome_label_for(outcome, language)
    return labels.get(outcome, outcome)


def outcome_label_for(outcome: str, language: str) -> str:
    """Row label of an outcome: the ISF (Swedish) label in Swedish, the English one otherwise."""
    from finsam_eval.report.labels import outcome_label

    return outcome_label(outcome, language)


def default_caption(table: pd.DataFrame, language: str = "en") -> str:
    """Caption from the table's attrs, e.g. "Alla 19–64 år: Callaway & Sant'Anna (2021)"."""
    population = table.attrs.get("population")
    method = table.attrs.get("method")
    if population is None or method is None:
        return ""
    return f"{population_label(population, language)}: {method_label(method)}"


def _notes_parts(
    table: pd.DataFrame, language: str = "en"
) -> tuple[str, list[tuple[str, str]], str]:
    """(lead text, star legend, p-value source and N) for the table notes."""
    check_language(language)
    stars = table.attrs.get("stars", DEFAULT_STARS)
    p_col = table.attrs.get("p_col", "p_value")
    if p_col == "p_value":
        source = text("stars_pointwise", language)
    else:
        source = f"p: {p_col}"
    if table.attrs.get("dagger"):
        adjustment = adjustment_label(str(table.attrs.get("adjustment", "romano_wolf")))
        source += "; " + text("dagger", language, adjustment=adjustment)
    n_units, n_clusters = table.attrs.get("n_units"), table.attrs.get("n_clusters")
    n_cohorts = table.attrs.get("n_cohorts")
    if n_units is not None:
        source += ". " + text(
            "n_line",
            language,
            units=n_units,
            clusters="–" if n_clusters is None else n_clusters,
            cohorts="–" if n_cohorts is None else n_cohorts,
        ).rstrip(".")
    return text("table_lead", language), _star_note(stars), source


def to_markdown(
    table: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
    notes: bool = True,
    language: str = "en",
) -> str:
    """Render an ISF table as a GitHub-flavoured Markdown pipe table.

    The SE row has an empty first cell. Stars in cells are left as is (a lone ``**`` in a cell
    cannot open emphasis); stars in the notes are escaped.

    Parameters
    ----------
    table
        Output of :func:`isf_table`.
    labels
        Outcome labels, default :data:`OUTCOME_LABELS`.
    caption
        Bold line above the table; None uses :func:`default_caption`, "" none.
    notes
        Append the notes paragraph (units, star legend, which p-values, N).
    language
        "sv" or "en": headers, notes and default labels.

    Returns
    -------
    str
        Markdown ending in a newline.
    """

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|")

    lines = []
    caption = default_caption(table, language) if caption is None else caption
    if caption:
        lines += [f"**{esc(caption)}**", ""]
    header = [text("outcome", language)] + [str(c) for c in table.columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|:---|" + "---:|" * len(table.columns))
    for outcome, statistic, cells in _rows(table):
        first = esc(_label(outcome, labels, language)) if statistic == "estimate" else ""
        lines.append("| " + " | ".join([first, *(esc(c) for c in cells)]) + " |")
    if notes:
        lead, legend, source = _notes_parts(table, language)
        stars = ", ".join(f"{s.replace('*', chr(92) + '*')} p < {t}" for s, t in legend)
        lines += ["", f"{lead} {stars} ({source})."]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",  # OT1 font encoding prints "<" as an inverted "!"
    ">": r"\textgreater{}",
    "–": "--",
    "—": "---",
    "−": "$-$",
    "†": r"\dag{}",  # the adjusted-significance mark
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (one pass, so replacements are never re-escaped)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_cell(text: str) -> str:
    text = latex_escape(text)
    # a leading ASCII "-" is a minus sign: typeset it as one
    return "$-$" + text[1:] if text.startswith("-") else text


def to_latex(
    table: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
    label: str | None = None,
    notes: bool = True,
    float_env: bool = True,
    language: str = "en",
) -> str:
    """Render an ISF table as a booktabs LaTeX table (needs ``\\usepackage{booktabs}``).

    Parameters
    ----------
    table
        Output of :func:`isf_table`.
    labels
        Outcome labels, default :data:`OUTCOME_LABELS` (escaped; non-ASCII letters need UTF-8
        input, the LaTeX default since 2018).
    caption, label
        ``\\caption`` and ``\\label``; None derives them from the table's attrs
        (label ``tab:isf-<population>-<method>``), "" omits them.
    notes
        Notes paragraph below the tabular (only inside the float environment).
    float_env
        Wrap in a ``table`` environment; False returns the bare ``tabular``.
    language
        "sv" or "en": headers, notes and default labels.

    Returns
    -------
    str
        LaTeX source ending in a newline.
    """
    n = len(table.columns)
    # the displayed grid (label column, SE rows with an empty label), cells escaped here so
    # that a leading "-" becomes a typographic minus; pandas' Styler writes the booktabs tabular
    grid = _grid(table, labels, language).map(_latex_cell)
    grid.columns = pd.MultiIndex.from_tuples(
        [("", latex_escape(text("outcome", language)))]
        + [(latex_escape(text("years_since_joining", language)), str(c)) for c in table.columns]
    )
    tabular = grid.style.hide(axis="index").to_latex(
        hrules=True, column_format="l" + "r" * n, multicol_align="c"
    )
    body = tabular.rstrip("\n").split("\n")
    # booktabs: a rule under the spanning header (Styler has no option for \cmidrule)
    body.insert(3, f"\\cmidrule(l){{2-{n + 1}}}")
    if not float_env:
        return "\n".join(body) + "\n"

    caption = default_caption(table, language) if caption is None else caption
    if label is None:
        population, method = table.attrs.get("population"), table.attrs.get("method")
        label = f"tab:isf-{population}-{method_slug(method)}" if population and method else ""
    lines = [r"\begin{table}[htbp]", r"\centering"]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{latex_escape(label)}}}")
    lines += body
    if notes:
        lead, legend, source = _notes_parts(table, language)
        stars = ", ".join(f"{s} $p<{t}$" for s, t in legend)
        lines += [
            r"\par\smallskip",
            f"{{\\footnotesize {latex_escape(lead)} {stars} ({latex_escape(source)}).}}",
        ]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(
    table: pd.DataFrame,
    *,
    table_id: str | None = None,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
    notes: bool = True,
    language: str = "en",
) -> str:
    """Render an ISF table as an HTML ``<table>`` fragment (escaped, no inline styles).

    Parameters
    ----------
    table
        Output of :func:`isf_table`.
    table_id
        ``id`` attribute; None gives ``table-<population>-<method>`` from the attrs.
    labels
        Outcome labels, default :data:`OUTCOME_LABELS`.
    caption
        ``<caption>`` text; None uses :func:`default_caption`, "" none.
    notes
        Notes in a ``<tfoot>`` row.
    language
        "sv" or "en": headers, notes and default labels.

    Returns
    -------
    str
        The fragment, ending in a newline. Estimate rows have class "estimate", SE rows "se".
    """
    esc = html.escape
    n = len(table.columns)
    if table_id is None:
        population, method = table.attrs.get("population"), table.attrs.get("method")
        table_id = f"table-{population}-{method_slug(method)}" if population and method else None
    id_attr = f' id="{esc(table_id)}"' if table_id else ""
    lines = [f'<table{id_attr} class="isf-table">']
    caption = default_caption(table, language) if caption is None else caption
    if caption:
        lines.append(f"<caption>{esc(caption)}</caption>")
    lines += [
        "<thead>",
        f'<tr><th scope="col" rowspan="2">{esc(text("outcome", language))}</th>'
        f'<th scope="colgroup" colspan="{n}">{esc(text("years_since_joining", language))}</th>'
        "</tr>",
        "<tr>" + "".join(f'<th scope="col">{esc(str(c))}</th>' for c in table.columns) + "</tr>",
        "</thead>",
        "<tbody>",
    ]
    for outcome, statistic, cells in _rows(table):
        tds = "".join(f"<td>{esc(c)}</td>" for c in cells)
        if statistic == "estimate":
            head = f'<th scope="row" rowspan="2">{esc(_label(outcome, labels, language))}</th>'
            lines.append(f'<tr class="estimate" data-outcome="{esc(outcome)}">{head}{tds}</tr>')
        else:
            lines.append(f'<tr class="se" data-outcome="{esc(outcome)}">{tds}</tr>')
    lines.append("</tbody>")
    if notes:
        lead, legend, source = _notes_parts(table, language)
        stars = ", ".join(f"{s} p &lt; {t}" for s, t in legend)
        lines.append(
            f'<tfoot><tr><td colspan="{n + 1}">{esc(lead)} {stars} ({esc(source)}).</td></tr>'
            "</tfoot>"
        )
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def xlsx_available() -> bool:
    """Whether openpyxl (needed by :func:`to_xlsx`) is installed."""
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return False
    return True


def _grid(
    table: pd.DataFrame, labels: Mapping[str, str] | None, language: str = "en"
) -> pd.DataFrame:
    """The table as displayed: label column, estimate row, SE row with an empty label."""
    records = [
        [_label(outcome, labels, language) if statistic == "estimate" else "", *cells]
        for outcome, statistic, cells in _rows(table)
    ]
    header = text("outcome", language)
    return pd.DataFrame(records, columns=[header, *(str(c) for c in table.columns)])


def to_xlsx(
    table: pd.DataFrame,
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    sheet_name: str | None = None,
    language: str = "en",
) -> Path:
    """Write an ISF table to an Excel workbook as displayed (strings, SE rows below).

    The numbers for further computation are in the CSV long table; this is the formatted table.
    Unlike the text writers the file is not byte-identical across runs (zip timestamps).

    Raises
    ------
    ImportError
        When openpyxl is not installed (see :func:`xlsx_available`).
    """
    if not xlsx_available():
        raise ImportError("to_xlsx needs openpyxl: pip install openpyxl")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if sheet_name is None:
        population, method = table.attrs.get("population"), table.attrs.get("method")
        sheet_name = f"{population}-{method_slug(method)}" if population and method else "Sheet1"
    # Excel limits sheet names to 31 characters
    _grid(table, labels, language).to_excel(
        path, sheet_name=sheet_name[:31], index=False, engine="openpyxl"
    )
    return path


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
