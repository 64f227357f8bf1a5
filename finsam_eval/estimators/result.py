"""The one result type every estimator returns.

Modelled on statsmodels/linearmodels results objects: tidy frames as attributes, ``summary()``
for people, ``to_frame()`` for pipelines, ``plot()`` returning matplotlib Axes. Where an estimator
provides unit-level influence functions (Callaway–Sant'Anna), aggregations and bootstraps are
linear algebra on them and never re-estimate (Callaway & Sant'Anna 2021, section 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["AggregationResult", "Deferred", "EstimationResult", "wald_table"]

EVENT_STUDY_COLUMNS = ["event_time", "estimate", "se", "ci_lower", "ci_upper", "p_value"]
AGGREGATION_KINDS = ("simple", "dynamic", "group", "calendar")


def wald_table(
    estimate: np.ndarray, se: np.ndarray, alpha: float = 0.05, critical: float | None = None
) -> pd.DataFrame:
    """Normal-approximation intervals and two-sided p-values for estimates and SEs.

    ``critical`` replaces the pointwise normal quantile, e.g. by a sup-t critical value for
    simultaneous bands (Montiel Olea & Plagborg-Møller 2019).
    """
    estimate = np.asarray(estimate, dtype=float)
    se = np.asarray(se, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2) if critical is None else critical
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * stats.norm.sf(np.abs(estimate / se))
    return pd.DataFrame(
        {
            "estimate": estimate,
            "se": se,
            "ci_lower": estimate - z * se,
            "ci_upper": estimate + z * se,
            "p_value": p_value,
        }
    )


class Deferred:
    """A value computed by ``compute()`` on first use and then kept.

    Estimators pass one for result fields that are costly and often unused (the dense
    group-time influence matrix, the pre-test); the field reads as the computed value.
    """

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute: Callable[[], Any] | None = compute
        self._value: Any = None

    def value(self) -> Any:
        if self._compute is not None:
            self._value = self._compute()
            self._compute = None
        return self._value


class _DeferrableField:
    """Dataclass field descriptor: stores a value or a :class:`Deferred`, returns the value."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_stored"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return None  # the field's default
        stored = obj.__dict__.get(self._slot)
        return stored.value() if isinstance(stored, Deferred) else stored

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._slot] = value


@dataclass
class AggregationResult:
    """An aggregation of group-time effects (R did's ``aggte``).

    Attributes
    ----------
    kind
        "simple", "dynamic", "group" or "calendar".
    table
        One row per key (event time, cohort or calendar year): ``key``, ``estimate``, ``se``,
        ``ci_lower``, ``ci_upper``, ``p_value`` (+ ``band_lower``/``band_upper`` with a
        simultaneous critical value when bootstrapped). Empty for "simple".
    overall
        The overall effect of this aggregation: estimate, se, ci_lower, ci_upper, p_value.
    influence
        Unit-level influence functions, shape (n_units, n_keys + 1); the last column is the
        overall effect. None when the estimator does not provide them.
    """

    kind: str
    table: pd.DataFrame
    overall: pd.Series
    influence: np.ndarray | None = None
    critical_value: float | None = None

    def summary(self) -> str:
        lines = [f"Aggregation: {self.kind}"]
        if not self.table.empty:
            lines.append(self.table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        lines.append("Overall: " + ", ".join(f"{k}={v:.6g}" for k, v in self.overall.items()))
        return "\n".join(lines)


@dataclass
class EstimationResult:
    """Result of ``finsam_eval.estimate`` for every method.

    Attributes
    ----------
    method
        Estimator key ("cs", "twfe", "sa", ...).
    event_study
        Columns ``event_time``, ``estimate``, ``se``, ``ci_lower``, ``ci_upper``, ``p_value``
        (+ ``band_lower``, ``band_upper`` when simultaneous bands were computed).
    overall
        Series with estimate, se, ci_lower, ci_upper, p_value.
    vcov
        Covariance of the event-study estimates, indexed by event time on both axes.
    att_gt
        Group-time effects (cohort, time, estimate, se, ...) where the method has them.
    influence
        Unit-level influence functions of the group-time effects (n_units × n_cells), scaled so
        that ``influence.T @ influence / n**2`` is their covariance (R did's convention). May be
        built on first access (an estimator passes a :class:`Deferred`).
    event_influence
        Unit-level (or cluster-level) influence functions of the event-study estimates, shape
        (n_units, n_event_times) in ``event_study`` row order, scaled like ``influence``. The
        pipeline draws joint multiplier-bootstrap replicates across series from them
        (Romano–Wolf error control needs the joint distribution).
    unit_labels
        Unit identifiers in the row order of ``influence`` and ``event_influence``.
    pretest
        Wald pre-test of parallel trends (W, df, p_value) where the method has one; may be
        computed on first access (an estimator passes a :class:`Deferred`).
    info
        Specification and sample facts: outcome, unit, time, cohort, control, n_units, n_obs,
        n_clusters, cluster, anticipation, alpha, dropped (DataFrame of excluded rows/units and
        reasons), warnings, and method-specific entries.
    """

    method: str
    event_study: pd.DataFrame
    overall: pd.Series
    vcov: pd.DataFrame
    att_gt: pd.DataFrame | None = None
    influence: np.ndarray | None = _DeferrableField()  # type: ignore[assignment]
    event_influence: np.ndarray | None = None
    unit_labels: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    aggregator: Callable[..., AggregationResult] | None = field(default=None, repr=False)
    pretest: pd.Series | None = _DeferrableField()  # type: ignore[assignment]

    def aggregate(self, kind: str = "dynamic", **options: Any) -> AggregationResult:
        """Aggregate group-time effects (``kind`` in simple, dynamic, group, calendar).

        Methods without group-time effects support "dynamic" (the event study) and "simple"
        (the overall effect) only.
        """
        if kind not in AGGREGATION_KINDS:
            raise ValueError(f"kind must be one of {AGGREGATION_KINDS}, got {kind!r}")
        if self.aggregator is not None:
            return self.aggregator(kind, **options)
        if options:
            raise ValueError(f"method {self.method!r} takes no aggregation options: {options}")
        if kind == "dynamic":
            table = self.event_study.rename(columns={"event_time": "key"})
            return AggregationResult("dynamic", table, self.overall)
        if kind == "simple":
            return AggregationResult("simple", pd.DataFrame(), self.overall)
        raise ValueError(
            f"method {self.method!r} has no group-time effects; aggregate(kind={kind!r}) needs "
            "method='cs'"
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy long table: one row per event time plus one 'overall' row, with method."""
        es = self.event_study.copy()
        es.insert(0, "term", "event_time")
        overall = pd.DataFrame([self.overall]).assign(term="overall", event_time=pd.NA)
        out = pd.concat([es, overall[es.columns.intersection(overall.columns)]], ignore_index=True)
        out.insert(0, "method", self.method)
        return out

    def summary(self) -> str:
        """A plain-text summary: specification, sample, event study and overall effect."""
        info = self.info
        head = [
            f"Method: {self.method}",
            f"Outcome: {info.get('outcome')}   control: {info.get('control', '-')}   "
            f"cluster: {info.get('cluster') or info.get('unit')}",
            f"Units: {info.get('n_units')}   observations: {info.get('n_obs')}   "
            f"clusters: {info.get('n_clusters')}",
        ]
        dropped = info.get("dropped")
        if isinstance(dropped, pd.DataFrame) and not dropped.empty:
            head.append(f"Excluded: {len(dropped)} entries (see result.info['dropped'])")
        body = self.event_study.to_string(index=False, float_format=lambda v: f"{v:.5g}")
        overall = ", ".join(f"{k}={v:.5g}" for k, v in self.overall.items())
        parts = [*head, "", "Event study:", body, "", f"Overall: {overall}"]
        if self.pretest is not None:
            parts.append(
                "Pre-test of parallel trends: "
                + ", ".join(f"{k}={v:.5g}" for k, v in self.pretest.items())
            )
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"EstimationResult(method={self.method!r}, overall={self.overall.to_dict()})"

    def plot(self, ax: Axes | None = None, label: str | None = None, **kwargs: Any) -> Axes:
        """Event-study plot: estimates with 95% intervals, a zero line and the treatment start."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        es = self.event_study
        x = es["event_time"].to_numpy(dtype=float) + kwargs.pop("offset", 0.0)
        yerr = np.vstack([es["estimate"] - es["ci_lower"], es["ci_upper"] - es["estimate"]]).astype(
            float
        )
        ax.errorbar(
            x, es["estimate"], yerr=yerr, fmt="o", capsize=3, label=label or self.method, **kwargs
        )
        if {"band_lower", "band_upper"}.issubset(es.columns):
            ax.fill_between(x, es["band_lower"], es["band_upper"], alpha=0.15, step=None)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.axvline(-0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel("Years since joining")
        ax.set_ylabel(f"Effect on {self.info.get('outcome', 'outcome')}")
        return ax
