"""The long results table ("estimates") and the formatting of its cells.

One row per population × outcome × method × event time with the columns in
:data:`ESTIMATE_COLUMNS` (extra columns are allowed and carried through the CSV writer). This
module builds it from estimator results, puts it in canonical order, writes and reads it as tidy
CSV, and formats single cells (estimate with ISF stars, standard error in parentheses) for the
table builders in :mod:`finsam_eval.report.tables` and the writers in
:mod:`finsam_eval.report.writers`. The formatting rules are listed in
:mod:`finsam_eval.report.tables`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import OUTCOMES, POPULATIONS

if TYPE_CHECKING:
    from finsam_eval.estimators.result import EstimationResult

__all__ = [
    "DEFAULT_STARS",
    "ESTIMATE_COLUMNS",
    "OUTCOME_ORDER",
    "POPULATION_ORDER",
    "estimates_from_results",
    "format_estimate",
    "format_se",
    "population_outcomes",
    "read_estimates_csv",
    "sort_estimates",
    "write_estimates_csv",
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

DEFAULT_STARS: tuple[float, ...] = (0.10, 0.05, 0.01)


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
