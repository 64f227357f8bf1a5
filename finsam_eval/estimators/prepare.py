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

__all__ = ["EstimationInputError", "PreparedPanel", "prepare_panel"]

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
        return int(self.data["cluster"].nunique())

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


def _integer_time(values: pd.Series, name: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() & values.notna()
    if bad.any():
        raise EstimationInputError(
            f"time column {name!r} must be numeric; non-numeric values: "
            f"{sorted(map(str, values[bad].unique()))[:_SHOW]}"
        )
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
    """
    covariates = list(covariates or [])
    if control not in ("never", "notyet"):
        raise EstimationInputError(f"control must be 'never' or 'notyet', got {control!r}")
    if unbalanced not in ("balance", "keep"):
        raise EstimationInputError(f"unbalanced must be 'balance' or 'keep', got {unbalanced!r}")
    if int(anticipation) != anticipation or anticipation < 0:
        raise EstimationInputError(f"anticipation must be a non-negative integer: {anticipation}")
    extra = [c for c in (weights, cluster, treatment) if c is not None]
    _require_columns(data, [outcome, unit, time, cohort, *covariates, *extra])
    warn: list[str] = []
    dropped: list[pd.DataFrame] = []

    frame = pd.DataFrame(
        {
            "unit_label": data[unit].to_numpy(),
            "time": _integer_time(data[time], time),
            "row": np.arange(len(data)),
        }
    )
    cohort_values = pd.to_numeric(data[cohort], errors="coerce")
    bad_cohort = cohort_values.isna() & data[cohort].notna()
    if bad_cohort.any():
        raise EstimationInputError(
            f"cohort column {cohort!r} must be numeric (first treated period, 0 = never); "
            f"bad values: {sorted(map(str, data.loc[bad_cohort, cohort].unique()))[:_SHOW]}"
        )
    frame["cohort"] = cohort_values.fillna(0).to_numpy(dtype=float)
    if (frame["cohort"] != np.round(frame["cohort"])).any() or (frame["cohort"] < 0).any():
        raise EstimationInputError(f"cohort column {cohort!r} must hold whole, non-negative periods")
    frame["cohort"] = frame["cohort"].astype(np.int64)

    key = frame[["unit_label", "time"]]
    dup = key.duplicated(keep=False)
    if dup.any():
        raise EstimationInputError(
            f"duplicate {unit} × {time} rows ({int(dup.sum())} rows):"
            + _show(frame.loc[dup, ["row", "unit_label", "time"]].rename(columns={"unit_label": unit}))
        )

    varying = frame.groupby("unit_label", sort=False)["cohort"].nunique()
    if (varying > 1).any():
        raise EstimationInputError(
            f"cohort must be constant within {unit}; it varies for "
            f"{list(varying.index[varying > 1][:_SHOW])}. If treatment switches off (a kommun "
            "leaving a förbund), use method='dcdh', which handles exits."
        )
    if treatment is not None:
        status = pd.to_numeric(data[treatment], errors="coerce").to_numpy()
        order = np.lexsort((frame["time"].to_numpy(), frame["unit_label"].astype(str).to_numpy()))
        s = pd.Series(status[order], index=frame["unit_label"].to_numpy()[order])
        exits = s.groupby(level=0, sort=False).apply(lambda v: bool((np.diff(v.to_numpy()) < 0).any()))
        if exits.any():
            raise EstimationInputError(
                f"treatment switches off for {list(exits.index[exits][:_SHOW])}: staggered "
                "estimators assume absorbing treatment. Use method='dcdh' (de Chaisemartin & "
                "D'Haultfœuille), which handles exits."
            )

    y = pd.to_numeric(data[outcome], errors="coerce")
    nonnumeric = y.isna() & data[outcome].notna()
    if nonnumeric.any():
        raise EstimationInputError(
            f"outcome {outcome!r} must be numeric; non-numeric values in rows "
            f"{frame.loc[nonnumeric.to_numpy(), 'row'].tolist()[:_SHOW]}: "
            f"{sorted(map(str, data.loc[nonnumeric, outcome].unique()))[:_SHOW]}"
        )
    frame["y"] = y.to_numpy(dtype=float)
    if np.isnan(frame["y"]).all():
        raise EstimationInputError(f"outcome {outcome!r} is missing in every row")
    if np.nanmax(frame["y"]) == np.nanmin(frame["y"]):
        raise EstimationInputError(
            f"outcome {outcome!r} is constant ({np.nanmax(frame['y'])}); nothing to estimate"
        )

    for cov in covariates:
        values = pd.to_numeric(data[cov], errors="coerce")
        if (values.isna() & data[cov].notna()).any():
            raise EstimationInputError(f"covariate {cov!r} must be numeric")
        frame[cov] = values.to_numpy(dtype=float)
        if time_invariant_covariates:
            spread = frame.groupby("unit_label", sort=False)[cov].agg(["min", "max"])
            varies = spread.index[(spread["max"] - spread["min"]).abs() > 1e-12]
            if len(varies):
                raise EstimationInputError(
                    f"covariate {cov!r} varies over time within {unit} for "
                    f"{list(varies[:_SHOW])}; this estimator supports only time-invariant "
                    "covariates (use the value in a base year)"
                )

    frame["weight"] = 1.0
    if weights is not None:
        w = pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=float)
        if np.isnan(w).any() or (w < 0).any():
            raise EstimationInputError(f"weights {weights!r} must be non-negative numbers")
        frame["weight"] = w
    if cluster is not None:
        frame["cluster_label"] = data[cluster].astype(str).to_numpy()
        n_per_unit = frame.groupby("unit_label", sort=False)["cluster_label"].nunique()
        if (n_per_unit > 1).any():
            raise EstimationInputError(
                f"cluster variable {cluster!r} must be constant within {unit}; it varies for "
                f"{list(n_per_unit.index[n_per_unit > 1][:_SHOW])}"
            )

    # rows with a missing outcome or covariate cannot enter any 2×2 comparison
    missing = np.isnan(frame["y"].to_numpy())
    for cov in covariates:
        missing |= np.isnan(frame[cov].to_numpy())
    if missing.any():
        gone = frame.loc[missing, ["unit_label", "time", "row"]]
        dropped.append(
            pd.DataFrame(
                {
                    "reason": "missing outcome or covariate",
                    "unit": gone["unit_label"].to_numpy(),
                    "time": gone["time"].to_numpy(),
                    "n_rows": 1,
                }
            )
        )
        frame = frame.loc[~missing]

    first_period = int(frame["time"].min())
    last_period = int(frame["time"].max())
    # R did drops units already treated in the first period: they have no untreated pre-period
    early = (frame["cohort"] > 0) & (frame["cohort"] - anticipation <= first_period)
    if early.any():
        lost = frame.loc[early].groupby("unit_label", sort=True).size()
        cohorts_lost = sorted(frame.loc[early, "cohort"].unique().tolist())
        msg = (
            f"{len(lost)} units in cohort(s) {cohorts_lost} are treated at or before the first "
            f"period {first_period} (anticipation {anticipation}) and are dropped "
            f"({int(lost.sum())} rows): {list(lost.index[:_SHOW])}"
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        warn.append(msg)
        dropped.append(
            pd.DataFrame(
                {
                    "reason": "treated at or before the first period",
                    "unit": lost.index.to_numpy(),
                    "time": pd.NA,
                    "n_rows": lost.to_numpy(),
                }
            )
        )
        frame = frame.loc[~early]

    times = np.sort(frame["time"].unique())
    if unbalanced == "balance":
        counts = frame.groupby("unit_label", sort=True).size()
        partial = counts.index[counts < len(times)]
        if len(partial):
            msg = (
                f"{len(partial)} units are not observed in every period and are dropped to "
                f"balance the panel ({int(counts[partial].sum())} rows); use "
                f"unbalanced='keep' to use them: {list(partial[:_SHOW])}"
            )
            warnings.warn(msg, UserWarning, stacklevel=3)
            warn.append(msg)
            dropped.append(
                pd.DataFrame(
                    {
                        "reason": "unit not observed in every period (balanced panel)",
                        "unit": np.asarray(partial),
                        "time": pd.NA,
                        "n_rows": counts[partial].to_numpy(),
                    }
                )
            )
            frame = frame.loc[~frame["unit_label"].isin(partial)]
            times = np.sort(frame["time"].unique())

    if weights is not None:
        spread = frame.groupby("unit_label", sort=False)["weight"].agg(["min", "max"])
        varies = spread.index[(spread["max"] - spread["min"]).abs() > 1e-12 * spread["max"].abs()]
        if len(varies):
            raise EstimationInputError(
                f"weights {weights!r} must be constant within {unit}; they vary for "
                f"{list(varies[:_SHOW])}"
            )

    # treated only after the sample ends (and after any anticipation window): untreated
    # throughout, so never treated here (R did: cohort > last period + anticipation)
    treated_after = frame["cohort"] > last_period + anticipation
    if treated_after.any():
        units_after = frame.loc[treated_after, "unit_label"].unique()
        msg = (
            f"{len(units_after)} units have cohorts after the last period {last_period} "
            f"(+ anticipation {anticipation}) and are treated as never treated"
        )
        warn.append(msg)
        frame.loc[treated_after, "cohort"] = 0

    if control == "never" and not (frame["cohort"] == 0).any():
        raise EstimationInputError(
            "control='never' needs never-treated units (cohort 0 or missing), but every unit "
            "is eventually treated; use control='notyet'"
        )

    codes, labels = pd.factorize(frame["unit_label"], sort=True)
    frame["unit"] = codes.astype(np.int64)
    if cluster is not None:
        frame["cluster"] = pd.factorize(frame["cluster_label"], sort=True)[0].astype(np.int64)
    else:
        frame["cluster"] = frame["unit"]
    frame = frame.sort_values(["unit", "time"], kind="stable").reset_index(drop=True)
    columns = ["unit", "time", "cohort", "y", "weight", "cluster", *covariates, "row"]
    dropped_frame = (
        pd.concat(dropped, ignore_index=True)
        if dropped
        else pd.DataFrame(columns=["reason", "unit", "time", "n_rows"])
    )
    cohorts = np.sort(frame.loc[frame["cohort"] > 0, "cohort"].unique())
    return PreparedPanel(
        data=frame[columns],
        unit_labels=np.asarray(labels),
        times=times,
        cohorts=cohorts,
        balanced=bool(frame.groupby("unit").size().eq(len(times)).all()),
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
