"""The one result type every estimator returns.

Modelled on statsmodels/linearmodels results objects: tidy frames as attributes, ``summary()``
for people, ``to_frame()`` for pipelines, ``plot()`` returning matplotlib Axes. Where an estimator
provides unit-level influence functions (Callaway–Sant'Anna), aggregations and bootstraps are
linear algebra on them and never re-estimate (Callaway & Sant'Anna 2021, section 4).
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.core.distributions import norm_ppf, norm_sf

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from finsam_eval.estimators.prepare import PreparedPanel
    from finsam_eval.estimators.spec import EstimationSpec

__all__ = ["AggregationResult", "Deferred", "EstimationResult", "Summary", "wald_table"]

EVENT_STUDY_COLUMNS = ["event_time", "estimate", "se", "ci_lower", "ci_upper", "p_value"]
AGGREGATION_KINDS = ("simple", "dynamic", "group", "calendar")
#: What each aggregation's rows and overall effect are (R did's ``aggte`` types).
AGGREGATION_DESCRIPTIONS = {
    "simple": "simple ATT: cohort-share-weighted mean of all post-treatment ATT(g,t)",
    "dynamic": "event study by years since joining; overall = mean of the effects at e >= 0",
    "group": "by cohort (year of joining); overall = cohort-share-weighted mean",
    "calendar": "by calendar year; overall = mean over the years",
}


def _integral_keys(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Cast a float column of whole numbers (cohorts, years) to int: 2005, not 2005.0."""
    if column in frame and pd.api.types.is_float_dtype(frame[column]):
        values = frame[column].to_numpy()
        if len(values) and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            frame = frame.assign(**{column: values.astype(np.int64)})
    return frame


def _fmt(value: Any, digits: int = 5) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}g}"
    return str(value)


def _repr_line(
    name: str, keys: list, keys_label: str, overall: dict, count: bool = False, **fields: Any
) -> str:
    """``Name(field=..., keys=first..last, overall=estimate (se ...))``: the one-line repr of
    an estimation or aggregation result (``count``: the number of keys after their span)."""
    span = f"{keys[0]}..{keys[-1]}" + (f" ({len(keys)})" if count else "") if keys else "none"
    shown = [f"{k}={v}" for k, v in fields.items()] + [f"{keys_label}={span}"]
    estimate = f"{_fmt(overall.get('estimate'), 4)} (se {_fmt(overall.get('se'), 3)})"
    return f"{name}({', '.join(shown)}, overall={estimate})"


class Summary:
    """A result summary that prints as text and renders as HTML tables in Jupyter.

    ``str(summary)`` is the plain-text summary (as ``summary()`` returned before it returned
    this object); ``_repr_html_`` draws the same content as HTML: a title, a two-column table
    of specification facts, the result tables and notes. ``"text" in summary`` searches the text.

    Parameters
    ----------
    text
        The plain-text rendering.
    title
        Heading of the HTML rendering.
    facts
        ``(label, value)`` pairs (specification and sample).
    tables
        ``(caption, frame)`` pairs.
    notes
        Lines shown under the tables.
    """

    def __init__(
        self,
        text: str,
        title: str = "",
        facts: Sequence[tuple[str, Any]] = (),
        tables: Sequence[tuple[str, pd.DataFrame]] = (),
        notes: Sequence[str] = (),
    ) -> None:
        self.text = text
        self.title = title
        self.facts = list(facts)
        self.tables = list(tables)
        self.notes = list(notes)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def __contains__(self, item: str) -> bool:
        return item in self.text

    def _repr_html_(self) -> str:
        parts = ['<div class="finsam-summary">']
        if self.title:
            parts.append(f"<h4>{html.escape(self.title)}</h4>")
        if self.facts:
            rows = "".join(
                f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
                f"<td style='text-align:left'>{html.escape(_fmt(v))}</td></tr>"
                for k, v in self.facts
            )
            parts.append(f"<table>{rows}</table>")
        for caption, frame in self.tables:
            table = frame.to_html(
                index=False, border=0, na_rep="", float_format=lambda v: f"{v:.5g}"
            )
            parts.append(f"<p><b>{html.escape(caption)}</b></p>{table}")
        parts.extend(f"<p>{html.escape(note)}</p>" for note in self.notes)
        parts.append("</div>")
        return "\n".join(parts)


def wald_columns(
    estimate: np.ndarray, se: np.ndarray, alpha: float = 0.05, critical: float | None = None
) -> dict[str, np.ndarray]:
    """:func:`wald_table`'s columns as new arrays, for callers that add columns of their own.

    Building a frame once from all its columns is several times faster than ``insert`` calls
    on a finished one (issue 16: per-call pandas overhead of small estimations).
    """
    # copies: the frame built from these columns does not alias the caller's arrays
    estimate = np.array(estimate, dtype=float)
    se = np.array(se, dtype=float)
    z = norm_ppf(1 - alpha / 2) if critical is None else critical
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * norm_sf(np.abs(estimate / se))
    return {
        "estimate": estimate,
        "se": se,
        "ci_lower": estimate - z * se,
        "ci_upper": estimate + z * se,
        "p_value": p_value,
    }


def wald_table(
    estimate: np.ndarray, se: np.ndarray, alpha: float = 0.05, critical: float | None = None
) -> pd.DataFrame:
    """Normal-approximation intervals and two-sided p-values for estimates and SEs.

    ``critical`` replaces the pointwise normal quantile, e.g. by a sup-t critical value for
    simultaneous bands (Montiel Olea & Plagborg-Møller 2019).
    """
    # the columns are new arrays, so the frame need not copy them again
    return pd.DataFrame(wald_columns(estimate, se, alpha, critical), copy=False)


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

    def __post_init__(self) -> None:
        self.table = _integral_keys(self.table, "key")

    def summary(self) -> Summary:
        """Plain-text (``str``) and HTML (Jupyter) summary: the rows and the overall effect."""
        lines = [f"Aggregation: {self.kind}"]
        if not self.table.empty:
            lines.append(self.table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        lines.append("Overall: " + ", ".join(f"{k}={v:.6g}" for k, v in self.overall.items()))
        description = AGGREGATION_DESCRIPTIONS.get(self.kind, self.kind)
        tables = [] if self.table.empty else [(f"Aggregation: {self.kind}", self.table)]
        tables.append(("Overall effect", pd.DataFrame([self.overall])))
        return Summary(
            "\n".join(lines),
            title=f"Aggregation: {self.kind}",
            facts=[("Rows and overall", description)],
            tables=tables,
        )

    def __repr__(self) -> str:
        keys = self.table["key"].tolist() if "key" in self.table else []
        return _repr_line("AggregationResult", keys, "keys", self.overall, True,
                          kind=repr(self.kind))  # fmt: skip

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


#: The design facts of :class:`EstimationResult` that ``info`` repeats for display.
_DESIGN_FACTS = (
    "overall_event_times",
    "overall_influence",
    "influence_level",
    "pretest_leads",
    "df_t",
    "collinear_dropped",
    "n_clusters",
    "vcov_type",
    "sub_experiments",
)


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
        reasons), warnings, and method-specific entries. A read-only summary: inference reads
        the design from ``spec``, ``data`` and ``cluster_codes``, never from here.
    spec
        The validated :class:`~finsam_eval.estimators.spec.EstimationSpec` of the fit (R did's
        ``MP$DIDparams``): aggregation and inference never ask for the options again.
    data
        The panel the method was fitted on (a reference, not a copy), so inference that
        re-estimates (wild refit, randomization, HonestDiD's inputs) needs no data argument.
    overall_event_times
        Event times whose equally weighted mean is ``overall`` (the event-study methods); None
        where ``overall`` is not such a mean (CS: the simple ATT).
    overall_influence
        Unit-level influence function of ``overall``, scaled like ``event_influence`` (the
        multiplier-band event studies); None where the method does not report it.
    influence_level
        What the rows of ``event_influence`` are: "unit", or "cluster" where the estimator
        sums its influence functions by cluster (stacked and dCDH with ``cluster=``).
    pretest_leads
        Event times of the lead coefficients that ``pretest`` tests (imputation's BJS Test 1).
    df_t
        Degrees of freedom of the t intervals (TWFE and stacked: their own; the few-clusters
        rule: G - 1); None for normal intervals.
    collinear_dropped
        Regressors dropped as collinear with the fixed effects (TWFE).
    n_clusters
        Number of clusters of the variance; None where it is not clustered (TWFE's HC1, iid).
    vcov_type
        "CRV1" (clustered: CRV1 or the method's clustered influence-function variance, every
        method's default), "HC1" or "iid" (TWFE's ``vcov``).
    sub_experiments
        Stacked DiD's sub-experiments (one row per kept cohort).

    The facts from ``overall_event_times`` on are set by the estimator and read by inference
    and reports from here; ``info`` repeats them for display only.
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
    spec: EstimationSpec | None = field(default=None, repr=False)
    data: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    overall_event_times: list[int] | None = None
    overall_influence: np.ndarray | None = field(default=None, repr=False, compare=False)
    influence_level: str = "unit"
    pretest_leads: list[int] = field(default_factory=list)
    df_t: float | None = None
    collinear_dropped: list[Any] = field(default_factory=list)
    n_clusters: int | None = None
    vcov_type: str = "CRV1"
    sub_experiments: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.influence_level not in ("unit", "cluster"):
            raise ValueError(
                f"influence_level must be 'unit' or 'cluster', got {self.influence_level!r}"
            )
        # the read-only summary shows the design facts too (inference reads the fields)
        for name in _DESIGN_FACTS:
            value = getattr(self, name)
            if value is not None and not (isinstance(value, list) and not value):
                self.info[name] = value

    def _design_source(self) -> tuple[EstimationSpec, pd.DataFrame]:
        if self.spec is None or self.data is None:
            raise ValueError(
                "this result carries no specification and data (it was not made by "
                "finsam_eval.estimate or a method's fit); inference needs them"
            )
        return self.spec, self.data

    def prepared_panel(
        self, control: str | None = None, unbalanced: str | None = None
    ) -> PreparedPanel:
        """The fitted panel prepared again from ``data`` with ``spec`` (validated, coded).

        ``control`` and ``unbalanced`` override the spec's (the regression-type replays
        prepare with every untreated row, ``control="notyet"``).
        """
        spec, data = self._design_source()
        return spec.prepare(data, control=control, unbalanced=unbalanced)

    @property
    def cluster_codes(self) -> np.ndarray:
        """Cluster label of every unit in ``unit_labels`` order (the unit itself without a
        cluster column): what the wild and multiplier bootstraps draw over."""
        spec, data = self._design_source()
        if self.unit_labels is None:
            raise ValueError(f"method={self.method!r} reports no unit-level rows (unit_labels)")
        labels = np.asarray(self.unit_labels)
        if spec.cluster is None:
            return labels
        out = data.drop_duplicates(spec.unit).set_index(spec.unit)[spec.cluster]
        out = out.reindex(pd.Index(labels))
        if out.isna().any():
            raise ValueError(
                f"no {spec.cluster!r} value for units {list(out.index[out.isna()])[:10]}"
            )
        return out.to_numpy()

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

    def overall_definition(self) -> str:
        """What ``overall`` is for this result (CS: the simple ATT; event studies: a mean)."""
        definition = self.info.get("overall_definition")
        if definition:
            return str(definition)
        post = self.overall_event_times
        if post:
            return f"equally weighted mean of the event-time effects at e = {_span(post)}"
        return "the method's overall effect (see its docstring)"

    def _pretest_line(self) -> str | None:
        # the note is printed, so the Deferred pre-test's warning would only repeat it
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pre-test not computed")
            pretest = self.pretest
        if pretest is not None:
            return "Pre-test of parallel trends: " + ", ".join(
                f"{k}={v:.5g}" for k, v in pretest.items()
            )
        note = self.info.get("pretest_note")
        return f"Pre-test of parallel trends: {note}" if note else None

    def summary(self) -> Summary:
        """Specification, sample, event study and overall effect.

        Returns a :class:`Summary`: ``print(res.summary())`` shows the plain text, Jupyter shows
        HTML tables. The overall effect is named (for CS the simple ATT of R's
        ``aggte(type="simple")``; for the event-study estimators the mean of the post-period
        coefficients).
        """
        info = self.info
        cluster = info.get("cluster") or info.get("unit")
        head = [
            f"Method: {self.method}",
            f"Outcome: {info.get('outcome')}   control: {info.get('control', '-')}   "
            f"cluster: {cluster}",
            f"Units: {info.get('n_units')}   observations: {info.get('n_obs')}   "
            f"clusters: {info.get('n_clusters')}",
        ]
        notes: list[str] = []
        dropped = info.get("dropped")
        if isinstance(dropped, pd.DataFrame) and not dropped.empty:
            head.append(f"Excluded: {len(dropped)} entries (see result.info['dropped'])")
            notes.append(head[-1])
        body = self.event_study.to_string(index=False, float_format=lambda v: f"{v:.5g}")
        overall = ", ".join(f"{k}={v:.5g}" for k, v in self.overall.items())
        definition = self.overall_definition()
        parts = [*head, "", "Event study:", body, "", f"Overall: {overall}"]
        parts.append(f"  (overall = {definition})")
        pretest = self._pretest_line()
        if pretest is not None:
            parts.append(pretest)
            notes.append(pretest)
        facts = [
            ("Method", self.method),
            ("Outcome", info.get("outcome")),
            ("Control group", info.get("control", "-")),
            ("Clustered by", cluster),
            ("Units (kommuner)", info.get("n_units")),
            ("Observations", info.get("n_obs")),
            ("Clusters", info.get("n_clusters")),
        ]
        cohorts = _cohorts(self)
        if cohorts is not None:
            facts.append(("Cohorts", cohorts))
        return Summary(
            "\n".join(parts),
            title=f"{self.method}: effect on {info.get('outcome', 'outcome')}",
            facts=facts,
            tables=[
                ("Event study", self.event_study),
                (f"Overall effect ({definition})", pd.DataFrame([self.overall])),
            ],
            notes=notes,
        )

    def __repr__(self) -> str:
        times = self.event_study["event_time"].tolist() if "event_time" in self.event_study else []
        return _repr_line(
            "EstimationResult", times, "event_times", self.overall, method=repr(self.method),
            outcome=repr(self.info.get("outcome")), n_units=self.info.get("n_units"),
        )  # fmt: skip

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def plot(
        self,
        ax: Axes | None = None,
        label: str | None = None,
        *,
        offset: float = 0.0,
        legend: bool = True,
        **kwargs: Any,
    ) -> Axes:
        """Event-study plot: estimates with 95% intervals, a zero line and the treatment start.

        Parameters
        ----------
        ax
            Axes to draw on (a new figure when None); pass the same axes to overlay results.
        label
            Legend entry, default the method key.
        offset
            Horizontal shift of the points in years, e.g. ``-0.1`` and ``0.1`` so that two
            overlaid event studies do not hide each other (``compare(...).plot()`` does this).
        legend
            Draw (or refresh) the legend, which then lists every labelled series on ``ax``.
        **kwargs
            Passed to ``Axes.errorbar``.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        es = self.event_study
        x = es["event_time"].to_numpy(dtype=float) + float(offset)
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
        if legend:
            ax.legend(frameon=False)
        return ax


def _span(values: Sequence[Any]) -> str:
    values = [int(v) for v in values]
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(str(v) for v in values)


def _cohorts(res: EstimationResult) -> str | None:
    """Cohorts (years of joining) of a result with group-time effects, e.g. "2005..2013 (9)"."""
    if res.att_gt is None or "cohort" not in res.att_gt:
        return None
    cohorts = sorted({int(c) for c in res.att_gt["cohort"].dropna()})
    return f"{_span(cohorts)} ({len(cohorts)})" if cohorts else None
