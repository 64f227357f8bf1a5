"""Several estimation results side by side, like pyfixest's ``etable`` or R's ``modelsummary``.

One column per result; rows are event times (or aggregations) with the estimate, significance
stars and the standard error in parentheses below, followed by model information rows (method,
outcome, control group, kommuner, clusters, cohorts). Output as a DataFrame of strings, markdown,
LaTeX, HTML or a ``great_tables.GT`` object.

Stars use each row's pointwise two-sided p-value (``p_value`` of the result), the same test as
the pointwise 95 % intervals of the event-study plots; multiple-testing adjusted p-values are in
the pipeline's tables, not here.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.estimators.registry import METHODS
from finsam_eval.estimators.result import AGGREGATION_KINDS, EstimationResult
from finsam_eval.report.writers import latex_escape

__all__ = ["ETABLE_FORMATS", "etable"]

ETABLE_FORMATS = ("dataframe", "markdown", "latex", "html", "gt")
ROW_KINDS = ("event_time", "aggregations")
_CONTROL_NAMES = {"never": "never treated", "notyet": "not yet treated"}


def _stars(p: float, thresholds: Sequence[float]) -> str:
    """One star per threshold the p-value is below (thresholds sorted descending)."""
    if p is None or not np.isfinite(p):
        return ""
    return "*" * sum(p < t for t in thresholds)


def _cell(estimate: Any, se: Any, p: Any, thresholds: Sequence[float], decimals: int):
    """(estimate with stars, "(se)") as strings; empty where the row is absent."""
    if estimate is None or not np.isfinite(float(estimate)):
        return "", ""
    est = f"{float(estimate):.{decimals}f}{_stars(float(p), thresholds)}"
    se_text = "" if se is None or not np.isfinite(float(se)) else f"({float(se):.{decimals}f})"
    return est, se_text


def _headers(
    results: Sequence[EstimationResult] | Mapping[str, EstimationResult],
    labels: Sequence[str] | Mapping[str, str] | None,
) -> tuple[list[str], list[EstimationResult]]:
    fitted = list(results.values()) if isinstance(results, Mapping) else list(results)
    if not fitted:
        raise ValueError("etable needs at least one result")
    bad = [i for i, res in enumerate(fitted) if not isinstance(res, EstimationResult)]
    if bad:
        raise TypeError(
            f"etable takes EstimationResult objects; entries {bad} are "
            f"{[type(fitted[i]).__name__ for i in bad]}"
        )
    if isinstance(results, Mapping):
        names = [str(k) for k in results]
    else:
        names = [res.method for res in fitted]
    if isinstance(labels, Mapping):
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise ValueError(f"labels for unknown columns {unknown}; columns are {names}")
        names = [str(labels.get(name, name)) for name in names]
    elif labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != len(fitted):
            raise ValueError(f"{len(labels)} labels for {len(fitted)} results")
        names = labels
    # pyfixest numbers its columns; we number them only when names repeat
    if len(set(names)) < len(names):
        names = [f"({i + 1}) {name}" for i, name in enumerate(names)]
    return names, fitted


def _event_rows(
    fitted: list[EstimationResult], event_times: Sequence[int] | None
) -> tuple[list[str], list[list[tuple[float, float, float] | None]]]:
    """Row labels and, per row, each result's (estimate, se, p) or None."""
    frames = []
    for res in fitted:
        es = res.event_study
        if "reference" in es:
            es = es[~es["reference"].astype(bool)]
        frames.append(es.set_index(es["event_time"].astype(int)))
    times = sorted(set().union(*(set(f.index) for f in frames)))
    if event_times is not None:
        wanted = [int(t) for t in event_times]
        missing = [t for t in wanted if t not in times]
        if missing:
            raise ValueError(f"event times {missing} are in none of the results; have {times}")
        times = wanted
    labels = [f"e = {t}" for t in times] + ["Overall"]
    values: list[list[tuple[float, float, float] | None]] = []
    for t in times:
        row = []
        for frame in frames:
            if t in frame.index:
                rec = frame.loc[t]
                rec = rec.iloc[0] if isinstance(rec, pd.DataFrame) else rec
                row.append((rec["estimate"], rec["se"], rec.get("p_value", np.nan)))
            else:
                row.append(None)
        values.append(row)
    values.append(
        [
            (r.overall.get("estimate"), r.overall.get("se"), r.overall.get("p_value", np.nan))
            for r in fitted
        ]
    )
    return labels, values


def _aggregation_rows(
    fitted: list[EstimationResult], kinds: Sequence[str]
) -> tuple[list[str], list[list[tuple[float, float, float] | None]]]:
    """One row per aggregation's overall effect; absent where a method lacks it."""
    unknown = [k for k in kinds if k not in AGGREGATION_KINDS]
    if unknown:
        raise ValueError(f"aggregations {unknown} unknown; choose from {AGGREGATION_KINDS}")
    values = []
    for kind in kinds:
        row = []
        for res in fitted:
            try:
                overall = res.aggregate(kind).overall
            except ValueError:  # no group-time effects: only simple and dynamic exist
                row.append(None)
                continue
            row.append((overall.get("estimate"), overall.get("se"), overall.get("p_value")))
        values.append(row)
    return [f"ATT ({kind})" for kind in kinds], values


def _cohort_count(res: EstimationResult) -> str:
    """Number of treated cohorts the estimate uses, where the result records them."""
    if res.att_gt is not None and "cohort" in res.att_gt:
        return str(res.att_gt["cohort"].dropna().nunique())
    effects = res.info.get("cohort_effects")  # Sun & Abraham
    if isinstance(effects, pd.DataFrame) and "cohort" in effects:
        return str(effects["cohort"].dropna().nunique())
    kept = res.info.get("kept_cohorts")  # stacked
    if isinstance(kept, Sequence | np.ndarray):
        return str(len(kept))
    return ""  # the regression estimators do not record their cohorts


def _model_rows(fitted: list[EstimationResult]) -> list[tuple[str, list[str]]]:
    def info(key: str) -> list[str]:
        return ["" if r.info.get(key) is None else str(r.info.get(key)) for r in fitted]

    return [
        (
            "Method",
            [(METHODS[r.method].short_label if r.method in METHODS else r.method) for r in fitted],
        ),
        ("Outcome", info("outcome")),
        ("Control group", [_CONTROL_NAMES.get(str(c), c) for c in info("control")]),
        ("N kommuner", info("n_units")),
        ("Clusters", info("n_clusters")),
        ("Cohorts", [_cohort_count(r) for r in fitted]),
    ]


def _frame(
    names: list[str],
    fitted: list[EstimationResult],
    rows: str,
    event_times: Sequence[int] | None,
    aggregations: Sequence[str],
    stars: Sequence[float],
    decimals: int,
) -> pd.DataFrame:
    if rows == "event_time":
        labels, values = _event_rows(fitted, event_times)
    elif rows == "aggregations":
        labels, values = _aggregation_rows(fitted, aggregations)
    else:
        raise ValueError(f"rows must be one of {ROW_KINDS}, got {rows!r}")
    thresholds = sorted((float(s) for s in stars), reverse=True)
    index: list[tuple[str, str]] = []
    data: list[list[str]] = []
    for label, row in zip(labels, values, strict=True):
        cells = [_cell(*v, thresholds, decimals) if v is not None else ("", "") for v in row]
        index += [(label, "estimate"), (label, "se")]
        data += [[c[0] for c in cells], [c[1] for c in cells]]
    for label, cells in _model_rows(fitted):
        index.append((label, "info"))
        data.append(cells)
    table = pd.DataFrame(
        data,
        index=pd.MultiIndex.from_tuples(index, names=["row", "statistic"]),
        columns=pd.Index(names, name="model"),
        dtype=object,
    )
    star_text = ", ".join(f"{'*' * (i + 1)} p < {t:g}" for i, t in enumerate(thresholds))
    table.attrs["notes"] = (
        "Standard errors in parentheses. "
        + (f"{star_text} (pointwise two-sided p-values). " if thresholds else "")
        + (
            "e = years since joining (0 = the year of joining). "
            if rows == "event_time"
            else "Rows are the overall effects of R did's aggte types. "
        )
        + "Overall: "
        + "; ".join(f"{n}: {r.overall_definition()}" for n, r in zip(names, fitted, strict=True))
    )
    return table


def _flat(table: pd.DataFrame) -> pd.DataFrame:
    """Stub column ``""`` (label on estimate and info rows, blank on SE rows) plus the models."""
    stub = ["" if stat == "se" else row for row, stat in table.index.to_list()]
    out = table.reset_index(drop=True)
    out.insert(0, "", stub)
    return out


def _markdown(table: pd.DataFrame, caption: str | None) -> str:
    flat = _flat(table)
    header = "| " + " | ".join(str(c) for c in flat.columns) + " |"
    align = "|:--|" + "".join("--:|" for _ in flat.columns[1:])
    lines = [f"**{caption}**", ""] if caption else []
    lines += [header, align]
    stats = table.index.get_level_values("statistic")
    for i, rec in enumerate(flat.itertuples(index=False)):
        if stats[i] == "info" and (i == 0 or stats[i - 1] != "info"):
            lines.append("|" + " |" * len(flat.columns))  # a blank separator row
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in rec) + " |")
    lines += ["", table.attrs["notes"]]
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    out = latex_escape(str(text))
    # stars as superscripts, as in published regression tables
    stripped = out.rstrip("*")
    n_stars = len(out) - len(stripped)
    return f"{stripped}$^{{{'*' * n_stars}}}$" if n_stars and stripped else out


def _latex(table: pd.DataFrame, caption: str | None) -> str:
    flat = _flat(table)
    n = len(flat.columns) - 1
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        *([rf"\caption{{{_tex(caption)}}}"] if caption else []),
        rf"\begin{{tabular}}{{l{'c' * n}}}",
        r"\toprule",
        " & ".join(_tex(c) for c in flat.columns) + r" \\",
        r"\midrule",
    ]
    stats = table.index.get_level_values("statistic")
    for i, rec in enumerate(flat.itertuples(index=False)):
        if stats[i] == "info" and (i == 0 or stats[i - 1] != "info"):
            lines.append(r"\midrule")
        lines.append(" & ".join(_tex(v) for v in rec) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\par\footnotesize {_tex(table.attrs['notes'])}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _html(table: pd.DataFrame, caption: str | None) -> str:
    flat = _flat(table)
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in flat.columns)
    body = []
    stats = table.index.get_level_values("statistic")
    for i, rec in enumerate(flat.itertuples(index=False)):
        border = (
            ' style="border-top:1px solid #999"'
            if stats[i] == "info" and (i == 0 or stats[i - 1] != "info")
            else ""
        )
        cells = [f'<th style="text-align:left">{esc(str(rec[0]))}</th>']
        cells += [f'<td style="text-align:center">{esc(str(v))}</td>' for v in rec[1:]]
        body.append(f"<tr{border}>{''.join(cells)}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="finsam-etable">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody>"
        f'<tfoot><tr><td colspan="{len(flat.columns)}">{esc(table.attrs["notes"])}</td></tr>'
        "</tfoot></table>"
    )


def _gt(table: pd.DataFrame, caption: str | None) -> Any:
    try:
        from great_tables import GT
    except ImportError as err:
        raise ImportError(
            "etable(format='gt') needs the great_tables package (pip install great_tables); "
            "the other formats work without it"
        ) from err
    flat = _flat(table).rename(columns={"": "row"})
    stats = table.index.get_level_values("statistic")
    flat.insert(0, "section", np.where(stats == "info", "Model", "Estimates"))
    gt = GT(flat, rowname_col="row", groupname_col="section")
    if caption:
        gt = gt.tab_header(title=caption)
    return gt.tab_source_note(table.attrs["notes"])


def etable(
    results: Sequence[EstimationResult] | Mapping[str, EstimationResult],
    format: str = "dataframe",  # noqa: A002 - pyfixest's argument name
    *,
    labels: Sequence[str] | Mapping[str, str] | None = None,
    rows: str = "event_time",
    event_times: Sequence[int] | None = None,
    aggregations: Sequence[str] = ("simple", "dynamic", "group", "calendar"),
    stars: Sequence[float] = (0.10, 0.05, 0.01),
    decimals: int = 3,
    caption: str | None = None,
) -> pd.DataFrame | str | Any:
    """Estimation results side by side (pyfixest's ``etable``; R ``modelsummary``).

    Parameters
    ----------
    results
        ``EstimationResult`` objects (columns in this order), or a mapping ``label -> result``.
    format
        "dataframe" (strings; index ``(row, statistic)`` with statistic "estimate", "se" or
        "info"), "markdown", "latex" (booktabs), "html", or "gt" (a ``great_tables.GT``; needs
        the great_tables package).
    labels
        Column headers: a list (one per result) or a mapping from the method keys (or the
        mapping's keys) to headers. Default the method keys, numbered "(1) cs" ... if repeated.
    rows
        "event_time": one row pair per event time (union over the results) and the overall
        effect; "aggregations": the overall effect of each aggregation in ``aggregations``
        (methods without group-time effects show "simple" and "dynamic" only).
    event_times
        Event times to show (default all).
    aggregations
        Aggregation kinds for ``rows="aggregations"``.
    stars
        p-value thresholds: one star per threshold the pointwise p-value is below.
    decimals
        Decimals of estimates and standard errors.
    caption
        Title of the table (markdown, LaTeX, HTML, gt).

    Returns
    -------
    pandas.DataFrame, str or great_tables.GT
        The table; ``attrs["notes"]`` (DataFrame) holds the notes printed under the others.
    """
    if format not in ETABLE_FORMATS:
        raise ValueError(f"format must be one of {ETABLE_FORMATS}, got {format!r}")
    names, fitted = _headers(results, labels)
    table = _frame(names, fitted, rows, event_times, aggregations, stars, decimals)
    if format == "dataframe":
        return table
    if format == "markdown":
        return _markdown(table, caption)
    if format == "latex":
        return _latex(table, caption)
    if format == "html":
        return _html(table, caption)
    return _gt(table, caption)
