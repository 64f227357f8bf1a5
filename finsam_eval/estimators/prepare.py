"""Checks and reshaping done once before any estimator runs (R did's ``pre_process_did``).

Every check and every exclusion lives here, so estimators never re-check raw input and every
excluded row is reported with its reason in ``PreparedPanel.dropped``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "EstimationInputError",
    "PreparedPanel",
    "prepare_panel",
    "require_consecutive_periods",
]

_SHOW = 10


class EstimationInputError(ValueError):
    """Input that an estimator cannot use; the message names the offending rows or values."""


def _show(frame: pd.DataFrame) -> str:
    shown = frame.head(_SHOW).to_string(index=False)
    more = f"\n... and {len(frame) - _SHOW} more" if len(frame) > _SHOW else ""
    return f"\n{shown}{more}"


@dataclass
class PreparedPanel:
    """A validated long panel with integer-coded units, sorted by unit then time.

    Attributes
    ----------
    data
        Columns ``unit`` (int code 0..n_units-1), ``time`` (int), ``cohort`` (int, 0 = never
        treated), ``y`` (float), ``weight`` (float, 1 without weights), ``cluster`` (int code;
        equals ``unit`` when not clustering coarser), and one column per covariate.
    unit_labels
        Original unit identifiers, indexed by unit code.
    times
        Sorted distinct periods.
    cohorts
        Sorted distinct treated cohorts (first treated period), excluding 0.
    balanced
        Whether every unit is observed in every period.
    dropped
        Excluded rows or units with reason, unit, time (if row-level) and n_rows.
    """

    data: pd.DataFrame
    unit_labels: np.ndarray
    times: np.ndarray
    cohorts: np.ndarray
    balanced: bool
    outcome: str
    unit: str
    time: str
    cohort: str
    covariates: list[str]
    cluster: str | None
    weights: str | None
    anticipation: int
    dropped: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return len(self.unit_labels)

    @property
    def n_clusters(self) -> int:
        return int(np.count_nonzero(np.bincount(self.data["cluster"].to_numpy())))

    def info(self) -> dict:
        """Specification facts for ``EstimationResult.info``."""
        return {
            "outcome": self.outcome,
            "unit": self.unit,
            "time": self.time,
            "cohort": self.cohort,
            "covariates": list(self.covariates),
            "cluster": self.cluster,
            "weights": self.weights,
            "anticipation": self.anticipation,
            "n_units": self.n_units,
            "n_obs": len(self.data),
            "n_clusters": self.n_clusters,
            "balanced": self.balanced,
            "dropped": self.dropped,
            "warnings": list(self.warnings),
        }


def _require_columns(data: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise EstimationInputError(
            f"column(s) {missing} not found in the data; available: {list(data.columns)}"
        )


def _numeric(values: pd.Series, rule: str) -> pd.Series:
    """``values`` as numbers (missing stay missing); raises ``rule: <the non-numeric values>``."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() & values.notna()
    if bad.any():
        raise EstimationInputError(f"{rule}: {sorted(map(str, values[bad].unique()))[:_SHOW]}")
    return numeric


def _integer_time(values: pd.Series, name: str) -> np.ndarray:
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        return values.to_numpy(dtype=np.int64)
    numeric = _numeric(values, f"time column {name!r} must be numeric; non-numeric values")
    if numeric.isna().any():
        raise EstimationInputError(f"time column {name!r} has {int(numeric.isna().sum())} missing")
    arr = numeric.to_numpy(dtype=float)
    frac = arr != np.round(arr)
    if frac.any():
        raise EstimationInputError(
            f"time column {name!r} must hold whole periods (years); non-integer values: "
            f"{sorted(set(arr[frac].tolist()))[:_SHOW]}"
        )
    return arr.astype(np.int64)


def _dense_span(values: np.ndarray) -> int | None:
    """``max - min + 1`` of integer values when a bincount over that range is cheap, else None."""
    if not len(values):
        return 0
    span = int(values.max()) - int(values.min()) + 1
    return span if span <= 4 * len(values) + (1 << 20) else None


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes 0..L-1 in the sorted order of the distinct values, and those values.

    The same codes and labels as ``pd.factorize(values, sort=True)`` (missing values form one
    more level, sorted last), without sorting all n values: integer columns with a moderate range
    are coded by a bincount, any other column is factorized unsorted and only the distinct values
    are sorted.
    """
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        raw = values.to_numpy()
        span = _dense_span(raw)
        if span is not None:
            low = raw.min() if len(raw) else 0
            offset = (raw - low).astype(np.int64, copy=False)
            present = np.bincount(offset, minlength=span) > 0
            codes = (np.cumsum(present) - 1)[offset]
            uniques = (np.flatnonzero(present) + low).astype(raw.dtype)
            return codes, pd.Index(uniques)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if not isinstance(uniques, pd.Index) or isinstance(uniques.dtype, pd.CategoricalDtype):
        uniques = pd.Index(np.asarray(uniques))
    rank, ordered = pd.factorize(uniques, sort=True, use_na_sentinel=False)
    return rank[codes].astype(np.int64, copy=False), ordered


def _time_codes(time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..T-1 of integer periods and the sorted distinct periods."""
    span = _dense_span(time)
    if span is None:
        distinct, codes = np.unique(time, return_inverse=True)
        return codes.astype(np.int64, copy=False), distinct
    low = int(time.min()) if len(time) else 0
    present = np.bincount(time - low, minlength=span) > 0
    return (np.cumsum(present) - 1)[time - low], np.flatnonzero(present) + low


def _duplicated(cell: np.ndarray, n_cells: int) -> np.ndarray:
    """Rows whose cell occurs more than once (``duplicated(keep=False)`` on integer cells)."""
    if n_cells <= 4 * len(cell) + (1 << 20):
        return np.bincount(cell, minlength=n_cells)[cell] > 1
    order = np.argsort(cell, kind="stable")
    same = cell[order][1:] == cell[order][:-1]
    flag = np.zeros(len(cell), dtype=bool)
    flag[1:] |= same
    flag[:-1] |= same
    out = np.empty(len(cell), dtype=bool)
    out[order] = flag
    return out


def _varying_units(codes: np.ndarray, values: np.ndarray, n_units: int) -> np.ndarray:
    """Units (codes) with rows whose value differs from another row of the same unit."""
    reference = np.empty(n_units, dtype=values.dtype)
    reference[codes] = values  # any row of the unit serves as its reference
    differs = reference[codes] != values
    return np.flatnonzero(np.bincount(codes[differs], minlength=n_units))


def _spread_exceeds(
    codes: np.ndarray, values: np.ndarray, n_units: int, relative: bool
) -> np.ndarray:
    """Units whose ``max - min`` (NaN skipped) exceeds 1e-12 (times ``|max|`` if ``relative``).

    Only units with any two differing rows are summarised, so a constant column costs O(n).
    """
    candidates = _varying_units(codes, values, n_units)
    if not len(candidates):
        return candidates
    is_candidate = np.zeros(n_units, dtype=bool)
    is_candidate[candidates] = True
    rows = is_candidate[codes]
    spread = (
        pd.DataFrame({"unit": codes[rows], "value": values[rows]})
        .groupby("unit", sort=True)["value"]
        .agg(["min", "max"])
    )
    threshold = 1e-12 * spread["max"].abs() if relative else 1e-12
    return spread.index[(spread["max"] - spread["min"]).abs() > threshold].to_numpy()


def _by_first_appearance(selected: np.ndarray, codes: np.ndarray, n_units: int) -> np.ndarray:
    """``selected`` unit codes ordered by their first row (pandas ``groupby(sort=False)`` order)."""
    first = np.empty(n_units, dtype=np.int64)
    # reversed assignment: the last write, i.e. the earliest row, wins
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return selected[np.argsort(first[selected], kind="stable")]


def prepare_panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str] | None = None,
    weights: str | None = None,
    cluster: str | None = None,
    anticipation: int = 0,
    control: str = "never",
    unbalanced: str = "balance",
    time_invariant_covariates: bool = False,
    treatment: str | None = None,
) -> PreparedPanel:
    """Validate a long panel and code it for estimation.

    Parameters
    ----------
    data
        Long panel, one row per unit and period.
    outcome, unit, time, cohort
        Column names. ``cohort`` is the first treated period; 0 or NaN means never treated.
    covariates
        Covariate columns (numeric).
    weights
        Sampling-weight column, constant within unit.
    cluster
        Cluster column, constant within unit (kommun, förbund, län). None clusters by unit.
    anticipation
        Periods of anticipation (treatment may affect outcomes from ``cohort - anticipation``).
    control
        "never" (never-treated units) or "notyet" (never and not-yet-treated units).
    unbalanced
        "balance" drops units not observed in every period (reported, as R did does);
        "keep" keeps every observation.
    time_invariant_covariates
        Raise if a covariate varies within unit (estimators that support only time-invariant
        covariates set this).
    treatment
        Optional 0/1 treatment-status column; used only to detect treatment that switches off.

    Raises
    ------
    EstimationInputError
        For any input the estimators cannot use, naming the offending rows or values.

    Notes
    -----
    Units and clusters are coded once, at the start, and every check runs on integer codes
    (bincounts and first-value comparisons, no string operations per row), so a panel of 2
    million rows is prepared in a fraction of a second. Unit codes follow the sorted unit
    labels and cluster codes the sorted cluster labels as strings, as
    ``pd.factorize(..., sort=True)`` of the retained rows would give.
    """
    covariates = list(covariates or [])
    _check_prepare_options(control, unbalanced, anticipation)
    extra = [c for c in (weights, cluster, treatment) if c is not None]
    _require_columns(data, [outcome, unit, time, cohort, *covariates, *extra])
    warn: list[str] = []
    dropped: list[pd.DataFrame] = []

    lay = _layout(data, unit, time)
    cohort_of_row = _cohort_codes(data[cohort], cohort)
    _check_unit_structure(lay, cohort_of_row, treatment)
    columns: dict[str, np.ndarray] = {
        "unit": lay.unit_code,
        "time": lay.period,
        "cohort": cohort_of_row,
        "y": _outcome_values(lay, outcome),
        "weight": np.ones(lay.n),
    }
    _add_covariates(lay, columns, covariates, time_invariant_covariates)
    if weights is not None:
        columns["weight"] = _weight_values(lay, weights)
    cluster_values = None
    if cluster is not None:
        columns["cluster"], cluster_values = _cluster_codes(lay, cluster)
    columns["row"] = np.arange(lay.n)
    columns["period_code"] = lay.period_code

    _drop_missing(lay, columns, covariates, dropped)
    first_period = int(columns["time"].min())
    last_period = int(columns["time"].max())
    _drop_early(lay, columns, anticipation, first_period, warn, dropped)
    if unbalanced == "balance":
        _drop_partial_units(lay, columns, warn, dropped)
    if weights is not None:
        _check_constant_weights(lay, columns, weights)
    cohort_of_row = _never_if_after_sample(lay, columns, cohort, anticipation, last_period, warn)
    if control == "never" and not (cohort_of_row == 0).any():
        raise EstimationInputError(
            "control='never' needs never-treated units (cohort 0 or missing), but every unit "
            "is eventually treated; use control='notyet'"
        )
    frame, labels, times, cohort_of_unit = _coded_frame(lay, columns, covariates, cluster_values)
    dropped_frame = (
        pd.concat(dropped, ignore_index=True)
        if dropped
        else pd.DataFrame(columns=["reason", "unit", "time", "n_rows"])
    )
    return PreparedPanel(
        data=frame,
        unit_labels=labels,
        times=times,
        cohorts=np.unique(cohort_of_unit[cohort_of_unit > 0]),
        # unit × period cells are unique (checked above), so every unit has all periods exactly
        # when there are units × periods rows
        balanced=len(frame) == len(labels) * len(times),
        outcome=outcome,
        unit=unit,
        time=time,
        cohort=cohort,
        covariates=covariates,
        cluster=cluster,
        weights=weights,
        anticipation=int(anticipation),
        dropped=dropped_frame,
        warnings=warn,
    )


def _check_prepare_options(control: str, unbalanced: str, anticipation: int) -> None:
    """Refuse unknown ``control``/``unbalanced`` values and a bad ``anticipation``."""
    if control not in ("never", "notyet"):
        raise EstimationInputError(f"control must be 'never' or 'notyet', got {control!r}")
    if unbalanced not in ("balance", "keep"):
        raise EstimationInputError(f"unbalanced must be 'balance' or 'keep', got {unbalanced!r}")
    if int(anticipation) != anticipation or anticipation < 0:
        raise EstimationInputError(f"anticipation must be a non-negative integer: {anticipation}")


@dataclass
class _Layout:
    """The raw panel with its units and periods coded (codes follow the sorted labels)."""

    data: pd.DataFrame
    unit: str
    time: str
    n: int
    unit_code: np.ndarray
    unit_values: pd.Index
    n_all_units: int
    period: np.ndarray
    period_code: np.ndarray
    periods: np.ndarray
    # rows strictly ordered by unit then period: no duplicates, and already in the coded
    # frame's order (dropping rows and recoding the retained units keep that order)
    ordered: bool


def _layout(data: pd.DataFrame, unit: str, time: str) -> _Layout:
    """Code units and periods once; every later check runs on these codes."""
    unit_code, unit_values = _sorted_codes(data[unit])
    period = _integer_time(data[time], time)
    period_code, periods = _time_codes(period)
    cell = unit_code * len(periods) + period_code
    return _Layout(
        data, unit, time, len(data), unit_code, unit_values, len(unit_values), period,
        period_code, periods, bool(np.all(cell[1:] > cell[:-1])),
    )  # fmt: skip


def _cohort_codes(cohort_column: pd.Series, cohort: str) -> np.ndarray:
    """First treated period per row as int64 (0 = never), refusing non-numeric or fractions."""
    if isinstance(cohort_column.dtype, np.dtype) and cohort_column.dtype.kind in "iu":
        cohort_of_row = cohort_column.to_numpy(dtype=np.int64)
        if (cohort_of_row < 0).any():
            raise _fractional_or_negative(cohort, cohort_of_row < 0, cohort_column)
        return cohort_of_row
    cohort_values = _numeric(
        cohort_column,
        f"cohort column {cohort!r} must be numeric (first treated period, 0 = never); bad values",
    )
    as_float = cohort_values.fillna(0).to_numpy(dtype=float)
    bad = (as_float != np.round(as_float)) | (as_float < 0)
    if bad.any():
        raise _fractional_or_negative(cohort, bad, cohort_column)
    return as_float.astype(np.int64)


def _fractional_or_negative(
    cohort: str, bad: np.ndarray, cohort_column: pd.Series
) -> EstimationInputError:
    shown = sorted(map(str, cohort_column[bad].unique()))[:_SHOW]
    return EstimationInputError(
        f"cohort column {cohort!r} must hold whole, non-negative periods (0 or missing = never); "
        f"bad values in {int(bad.sum())} rows: {shown}"
    )


def _check_unit_structure(lay: _Layout, cohort_of_row: np.ndarray, treatment: str | None) -> None:
    """Refuse duplicate unit × period rows, a cohort varying within unit, and exits."""
    unit, time, unit_code, unit_values = lay.unit, lay.time, lay.unit_code, lay.unit_values
    n_all_units = lay.n_all_units
    dup = None
    if not lay.ordered:  # strictly increasing unit × period cells cannot repeat
        dup = _duplicated(
            unit_code * len(lay.periods) + lay.period_code, n_all_units * len(lay.periods)
        )
    if dup is not None and dup.any():
        shown = pd.DataFrame(
            {
                "row": np.flatnonzero(dup),
                "unit_label": unit_values.take(unit_code[dup]),
                "time": lay.period[dup],
            }
        ).rename(columns={"unit_label": unit})
        raise EstimationInputError(
            f"duplicate {unit} × {time} rows ({int(dup.sum())} rows):" + _show(shown)
        )

    varying = _varying_units(unit_code, cohort_of_row, n_all_units)
    if len(varying):
        varying = _by_first_appearance(varying, unit_code, n_all_units)
        raise EstimationInputError(
            f"cohort must be constant within {unit}; it varies for "
            f"{list(unit_values.take(varying[:_SHOW]))}. If treatment switches off (a kommun "
            "leaving a förbund), use method='dcdh', which handles exits."
        )
    if treatment is not None:
        status = pd.to_numeric(lay.data[treatment], errors="coerce").to_numpy(dtype=float)
        # units in the order of their labels as strings, rows by period within unit
        text_order = np.argsort(np.array([str(v) for v in unit_values], dtype=object),
                                kind="stable")  # fmt: skip
        text_rank = np.empty(n_all_units, dtype=np.int64)
        text_rank[text_order] = np.arange(n_all_units)
        key = text_rank[unit_code]
        order = np.lexsort((lay.period, key))
        key, ordered_status = key[order], status[order]
        falls = (np.diff(ordered_status) < 0) & (key[1:] == key[:-1])
        if falls.any():
            exits = text_order[np.unique(key[1:][falls])]
            raise EstimationInputError(
                f"treatment switches off for {list(unit_values.take(exits[:_SHOW]))}: staggered "
                "estimators assume absorbing treatment. Use method='dcdh' (de Chaisemartin & "
                "D'Haultfœuille), which handles exits."
            )


def _outcome_values(lay: _Layout, outcome: str) -> np.ndarray:
    """Outcome as float (NaN = missing), refusing non-numeric, infinite and constant outcomes."""
    data, unit, time = lay.data, lay.unit, lay.time
    column = data[outcome]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiu":
        # already numbers: nothing to coerce, no non-numeric values to look for
        y = column
        nonnumeric = None
    else:
        y = pd.to_numeric(column, errors="coerce")
        nonnumeric = y.isna() & column.notna()
    if nonnumeric is not None and nonnumeric.any():
        raise EstimationInputError(
            f"outcome {outcome!r} must be numeric; non-numeric values in rows "
            f"{np.flatnonzero(nonnumeric.to_numpy()).tolist()[:_SHOW]}: "
            f"{sorted(map(str, data.loc[nonnumeric, outcome].unique()))[:_SHOW]}"
        )
    y = y.to_numpy(dtype=float)
    infinite = np.isinf(y)
    if infinite.any():
        rows = np.flatnonzero(infinite)
        raise EstimationInputError(
            f"outcome {outcome!r} must be finite (NaN marks a missing value); ±inf in "
            f"{len(rows)} rows:"
            + _show(
                pd.DataFrame(
                    {
                        "row": rows,
                        unit: lay.unit_values.take(lay.unit_code[rows]),
                        time: lay.period[rows],
                        outcome: y[rows],
                    }  # fmt: skip
                )
            )
        )
    if np.isnan(y).all():
        raise EstimationInputError(f"outcome {outcome!r} is missing in every row")
    if np.nanmax(y) == np.nanmin(y):
        raise EstimationInputError(
            f"outcome {outcome!r} is constant ({np.nanmax(y)}); nothing to estimate"
        )
    return y


def _add_covariates(
    lay: _Layout, columns: dict[str, np.ndarray], covariates: list[str], time_invariant: bool
) -> None:
    """Add each covariate as a float column, refusing non-numeric, infinite or constant ones."""
    for cov in covariates:
        values = pd.to_numeric(lay.data[cov], errors="coerce")
        if (values.isna() & lay.data[cov].notna()).any():
            raise EstimationInputError(f"covariate {cov!r} must be numeric")
        columns[cov] = values.to_numpy(dtype=float)
        finite = columns[cov][np.isfinite(columns[cov])]
        if np.isinf(columns[cov]).any():
            rows = np.flatnonzero(np.isinf(columns[cov]))
            raise EstimationInputError(
                f"covariate {cov!r} must be finite; ±inf in {len(rows)} rows: "
                f"{rows.tolist()[:_SHOW]}"
            )
        if len(finite) and finite.min() == finite.max():
            raise EstimationInputError(
                f"covariate {cov!r} is constant ({finite[0]}) in every row: it is collinear with "
                "the intercept and the fixed effects and identifies nothing; drop it"
            )
        if time_invariant:
            varies = _spread_exceeds(lay.unit_code, columns[cov], lay.n_all_units, relative=False)
            if len(varies):
                varies = _by_first_appearance(varies, lay.unit_code, lay.n_all_units)
                raise EstimationInputError(
                    f"covariate {cov!r} varies over time within {lay.unit} for "
                    f"{list(lay.unit_values.take(varies[:_SHOW]))}; this estimator supports only "
                    "time-invariant covariates (use the value in a base year)"
                )


def _weight_values(lay: _Layout, weights: str) -> np.ndarray:
    """Sampling weights as float, refusing missing, negative or all-zero weights."""
    unit, time = lay.unit, lay.time
    w = pd.to_numeric(lay.data[weights], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise EstimationInputError(
            f"weights {weights!r} must be finite, non-negative numbers; {len(rows)} rows "
            "are missing, infinite, negative or non-numeric:"
            + _show(
                pd.DataFrame(
                    {"row": rows, unit: lay.unit_values.take(lay.unit_code[rows]),
                     time: lay.period[rows], weights: lay.data[weights].to_numpy()[rows]}
                )
            )
        )  # fmt: skip
    if not (w > 0).any():
        raise EstimationInputError(
            f"weights {weights!r} are zero in every row; at least one unit needs a positive weight"
        )
    return w


def _cluster_codes(lay: _Layout, cluster: str) -> tuple[np.ndarray, pd.Index]:
    """Cluster codes following the labels sorted as strings, constant within unit."""
    # clusters are compared and ordered as strings (1 and "1" are one cluster)
    raw_code, raw_values = _sorted_codes(lay.data[cluster])
    text_code, cluster_values = pd.factorize(raw_values.astype(str), sort=True)
    if (text_code < 0).any():
        raise EstimationInputError(f"cluster variable {cluster!r} has missing values")
    codes = text_code.astype(np.int64)[raw_code]
    varies = _varying_units(lay.unit_code, codes, lay.n_all_units)
    if len(varies):
        varies = _by_first_appearance(varies, lay.unit_code, lay.n_all_units)
        raise EstimationInputError(
            f"cluster variable {cluster!r} must be constant within {lay.unit}; it varies for "
            f"{list(lay.unit_values.take(varies[:_SHOW]))}"
        )
    return codes, cluster_values


def _keep_rows(columns: dict[str, np.ndarray], mask: np.ndarray) -> None:
    """Keep (or reorder) the rows selected by ``mask`` in every column."""
    for name in columns:
        columns[name] = columns[name][mask]


def _drop_missing(
    lay: _Layout, columns: dict[str, np.ndarray], covariates: list[str], dropped: list
) -> None:
    """Drop rows with a missing outcome or covariate (reported)."""
    # rows with a missing outcome or covariate cannot enter any 2×2 comparison
    missing = np.isnan(columns["y"])
    for cov in covariates:
        missing |= np.isnan(columns[cov])
    if missing.any():
        dropped.append(
            pd.DataFrame(
                {
                    "reason": "missing outcome or covariate",
                    "unit": lay.unit_values.take(lay.unit_code[missing]).to_numpy(),
                    "time": lay.period[missing],
                    "n_rows": 1,
                }
            )
        )
        _keep_rows(columns, ~missing)


def _drop_units(
    columns: dict[str, np.ndarray],
    keep: np.ndarray,
    message: str,
    reason: str,
    labels: pd.Index,
    n_rows: np.ndarray,
    warn: list[str],
    dropped: list,
) -> None:
    """Drop whole units: warn with ``message`` (recorded in ``warn``), list the units in the
    ``dropped`` layout (``reason``, no time, their number of rows) and keep the rows ``keep``."""
    # one frame deeper than the _drop_* callers, so the warning points where it did
    warnings.warn(message, UserWarning, stacklevel=5)
    warn.append(message)
    dropped.append(
        pd.DataFrame(
            {"reason": reason, "unit": np.asarray(labels), "time": pd.NA, "n_rows": n_rows}
        )
    )
    _keep_rows(columns, keep)


def _drop_early(
    lay: _Layout,
    columns: dict[str, np.ndarray],
    anticipation: int,
    first_period: int,
    warn: list[str],
    dropped: list,
) -> None:
    """Drop units treated at or before the first period (warned and reported)."""
    # R did drops units already treated in the first period: they have no untreated pre-period
    cohort_of_row = columns["cohort"]
    early = (cohort_of_row > 0) & (cohort_of_row - anticipation <= first_period)
    if early.any():
        lost_rows = np.bincount(columns["unit"][early], minlength=lay.n_all_units)
        lost = np.flatnonzero(lost_rows)  # codes follow the sorted labels
        lost_labels = lay.unit_values.take(lost)
        cohorts_lost = sorted(np.unique(cohort_of_row[early]).tolist())
        msg = (
            f"{len(lost)} units in cohort(s) {cohorts_lost} are treated at or before the first "
            f"period {first_period} (anticipation {anticipation}) and are dropped "
            f"({int(lost_rows.sum())} rows): {list(lost_labels[:_SHOW])}"
        )
        reason = "treated at or before the first period"
        _drop_units(columns, ~early, msg, reason, lost_labels, lost_rows[lost], warn, dropped)


def _drop_partial_units(
    lay: _Layout, columns: dict[str, np.ndarray], warn: list[str], dropped: list
) -> None:
    """Balance the panel: drop units not observed in every period (warned and reported)."""
    n_times = int(np.count_nonzero(np.bincount(columns["period_code"])))
    counts = np.bincount(columns["unit"], minlength=lay.n_all_units)
    partial = np.flatnonzero((counts > 0) & (counts < n_times))
    if len(partial):
        partial_labels = lay.unit_values.take(partial)
        msg = (
            f"{len(partial)} units are not observed in every period and are dropped to "
            f"balance the panel ({int(counts[partial].sum())} rows); use "
            f"unbalanced='keep' to use them: {list(partial_labels[:_SHOW])}"
        )
        reason = "unit not observed in every period (balanced panel)"
        is_partial = np.zeros(lay.n_all_units, dtype=bool)
        is_partial[partial] = True
        keep = ~is_partial[columns["unit"]]
        _drop_units(columns, keep, msg, reason, partial_labels, counts[partial], warn, dropped)


def _check_constant_weights(lay: _Layout, columns: dict[str, np.ndarray], weights: str) -> None:
    """Refuse weights that vary within unit among the retained rows."""
    varies = _spread_exceeds(columns["unit"], columns["weight"], lay.n_all_units, relative=True)
    if len(varies):
        varies = _by_first_appearance(varies, columns["unit"], lay.n_all_units)
        raise EstimationInputError(
            f"weights {weights!r} must be constant within {lay.unit}; they vary for "
            f"{list(lay.unit_values.take(varies[:_SHOW]))}"
        )


def _never_if_after_sample(
    lay: _Layout,
    columns: dict[str, np.ndarray],
    cohort: str,
    anticipation: int,
    last_period: int,
    warn: list[str],
) -> np.ndarray:
    """Recode cohorts after the sample (+ anticipation) to never treated (warned)."""
    # treated only after the sample ends (and after any anticipation window): untreated
    # throughout, so never treated here (R did: cohort > last period + anticipation)
    cohort_of_row = columns["cohort"]
    treated_after = cohort_of_row > last_period + anticipation
    if treated_after.any():
        after = np.flatnonzero(
            np.bincount(columns["unit"][treated_after], minlength=lay.n_all_units)
        )
        late_cohorts = sorted(np.unique(cohort_of_row[treated_after]).tolist())
        msg = (
            f"{len(after)} units have cohorts {late_cohorts[:_SHOW]} after the last period "
            f"{last_period} (+ anticipation {anticipation}) and are treated as never treated "
            f"(check for a typo in {cohort!r}): {list(lay.unit_values.take(after[:_SHOW]))}"
            + (f" ... and {len(after) - _SHOW} more" if len(after) > _SHOW else "")
        )
        warnings.warn(msg, UserWarning, stacklevel=4)
        warn.append(msg)
        cohort_of_row = np.where(treated_after, 0, cohort_of_row)
        columns["cohort"] = cohort_of_row
    return cohort_of_row


def _coded_frame(
    lay: _Layout,
    columns: dict[str, np.ndarray],
    covariates: list[str],
    cluster_values: pd.Index | None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Recode retained units and clusters to 0..L-1 and sort rows by unit then period."""
    # recode the retained units and clusters to 0..L-1, keeping the sorted order
    present = np.bincount(columns["unit"], minlength=lay.n_all_units) > 0
    columns["unit"] = (np.cumsum(present) - 1)[columns["unit"]]
    labels = np.asarray(lay.unit_values[present])
    n_units = len(labels)
    if cluster_values is None:
        columns["cluster"] = columns["unit"].copy()
    else:
        used = np.bincount(columns["cluster"], minlength=len(cluster_values)) > 0
        columns["cluster"] = (np.cumsum(used) - 1)[columns["cluster"]]
    present_periods = np.bincount(columns["period_code"], minlength=len(lay.periods)) > 0
    times = lay.periods[present_periods]
    if not lay.ordered:
        time_index = (np.cumsum(present_periods) - 1)[columns["period_code"]]
        cell = columns["unit"] * len(times) + time_index
        if not np.all(cell[1:] > cell[:-1]):
            _keep_rows(columns, np.argsort(cell, kind="stable"))
    for name, values in columns.items():
        # the frame owns its columns: no read-only views of the caller's data
        if not values.flags.owndata or not values.flags.writeable:
            columns[name] = values.copy()
    cohort_of_unit = np.zeros(n_units, dtype=np.int64)
    cohort_of_unit[columns["unit"]] = columns["cohort"]
    frame = pd.DataFrame(
        {
            name: columns[name]
            for name in ["unit", "time", "cohort", "y", "weight", "cluster", *covariates, "row"]
        },
        copy=False,
    )
    return frame, labels, times, cohort_of_unit


def require_consecutive_periods(panel: PreparedPanel, method: str) -> None:
    """Refuse a panel with missing periods, for methods that count event time in columns.

    Stacked regressions and dCDH index event time by position in the period grid, so a year
    absent from the whole panel would shift every later event time; they refuse it in one line.
    """
    times = np.asarray(panel.times)
    if len(times) < 2:
        return
    step = np.diff(times)
    if (step != 1).any():
        missing = sorted(set(range(int(times[0]), int(times[-1]) + 1)) - set(times.tolist()))
        raise EstimationInputError(
            f"method={method!r} needs consecutive periods, but {panel.time!r} has no rows for "
            f"{missing[:_SHOW]} between {int(times[0])} and {int(times[-1])}; fill or drop "
            "those years, or use cs, twfe, sa, imputation or two_stage, which allow gaps"
        )
