"""Run an analysis configuration: every population × outcome × estimator → an output folder.

The output folder holds ``estimates.csv`` (the tidy long table of every estimate), ISF-style
tables per population and method (Markdown, LaTeX, HTML, XLSX), figures, a self-contained HTML
report and ``manifest.json`` (versions, config hash, input-data hash, seed, timings).

Error control across the family of estimates uses joint multiplier-bootstrap draws: every
estimator returns unit-level influence functions of its event-study estimates, and one set of
cluster-level multiplier weights, shared by all series, turns them into joint replicates
(the Romano–Wolf step-down needs their joint distribution; Romano & Wolf 2005).
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from finsam_eval.core.multiplier import rademacher_signs
from finsam_eval.core.vocabulary import renamed_options
from finsam_eval.estimators import estimate
from finsam_eval.estimators.registry import method_info, methods_where
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.pipeline.calendar import (
    CalendarPlan,
    apply_calendar,
    apply_design,
    resolve_calendar,
)
from finsam_eval.pipeline.config import AnalysisConfig, ConfigError
from finsam_eval.report.estimates import ESTIMATE_COLUMNS as _REPORT_COLUMNS

if TYPE_CHECKING:
    from finsam_eval.report.background import Background

__all__ = [
    "AnalysisOutput",
    "DesignedPanels",
    "designed_panels",
    "add_wild_pvalues",
    "estimate_all",
    "joint_draws",
    "load_panel_for",
    "run_analysis",
]

# the report's long-table columns with the simultaneous band after the pointwise interval
_AFTER_CI = _REPORT_COLUMNS.index("ci_upper") + 1
ESTIMATE_COLUMNS = [
    *_REPORT_COLUMNS[:_AFTER_CI],
    "band_lower",
    "band_upper",
    *_REPORT_COLUMNS[_AFTER_CI:],
]


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool) -> Iterable:
    # a tqdm bar on a terminal, plain lines (no "\r") in logs
    from finsam_eval.core.progress import progress

    return progress(iterable, total, desc, enabled)


def load_panel_for(config: AnalysisConfig) -> pd.DataFrame:
    """The panel named by ``config.source``: the bundled synthetic data or a built panel file.

    A panel file's ``cohort`` column is set to the placeholder 0: the run's calendar
    (``[design] calendar``) supplies the cohorts (:func:`load_analysis_panel`).
    """
    if config.source == "synthetic":
        from finsam_eval.synthetic import load_synthetic

        return load_synthetic(seed=config.seed)
    if config.source == "microdata":
        return _microdata_panel(config)
    path = Path(config.source)
    if not path.is_file():
        raise FileNotFoundError(f"data.source {config.source!r} is neither 'synthetic' nor a file")
    if path.suffix == ".parquet":
        panel = pd.read_parquet(path)
    else:
        panel = pd.read_csv(path, dtype={"kommun_kod": str, "lan_kod": str, "forbund": str})
    # a panel file's cohorts are never used: the run's calendar replaces them (apply_calendar),
    # so a blank or missing cohort column (an outcome-only panel) is a placeholder here
    panel["cohort"] = np.int64(0)
    if "forbund" in panel.columns:
        panel["forbund"] = panel["forbund"].fillna("")
    from finsam_eval.panel import validate_panel

    validate_panel(panel)
    return panel


def _microdata_panel(config: AnalysisConfig, progress: bool = True) -> pd.DataFrame:
    """The panel built from person-year microdata; ``attrs["data_source"]`` says how."""
    from finsam_eval.microdata import build_microdata_panel

    cohorts = None
    if config.cohorts:
        cohorts = pd.read_csv(config.cohorts, dtype={"kommun_kod": str, "forbund": str})
        if "forbund" in cohorts.columns:
            cohorts["forbund"] = cohorts["forbund"].fillna("")
    built = build_microdata_panel(
        config.path,
        cohorts,
        outcome_only=cohorts is None,
        engine=config.engine,
        memory_limit=config.memory_limit,
        populations=config.populations,
        progress=(lambda message: print(f"microdata: {message}", flush=True)) if progress else None,
    )
    panel = built.panel
    report = built.report
    panel.attrs["data_source"] = {
        "source": "microdata",
        "input": report.source,
        "engine": report.engine,
        "rows_read": report.n_rows,
        "rows_rejected": {
            r.reason: int(r.n_rows) for r in report.rejected.itertuples(index=False) if r.n_rows
        },
        "cohorts": config.cohorts or "none (outcome-only panel)",
        "summary": report.summary(),
    }
    return panel


def load_analysis_panel(config: AnalysisConfig) -> tuple[pd.DataFrame, CalendarPlan]:
    """The panel of ``config`` with its calendar in place, checked before anything runs.

    Raises
    ------
    CalendarConflictError
        A user calendar conflicts with documented facts (and ``allow_conflicts`` is false).
    ConfigError
        A bad calendar, a window longer than the data allow, or an estimator option a method
        refuses (:func:`check_method_options`).
    """
    panel, plan, _ = _load_checked(config)
    return panel, plan


def _load_checked(
    config: AnalysisConfig,
) -> tuple[pd.DataFrame, CalendarPlan, DesignedPanels | None]:
    """:func:`load_analysis_panel` and the designed panels its checks built (None when the
    calendar is "documented"), which the run reuses."""
    check_method_options(config)
    loaded = load_panel_for(config)
    plan = resolve_calendar(config)
    panel = apply_calendar(loaded, plan, config)
    if plan.mode == "documented":
        horizon = int(plan.manifest.get("horizon", 2015))
        late = panel["year"] > horizon
        if late.any():
            plan.notes.append(
                f"Years after {horizon} ({sorted(panel.loc[late, 'year'].unique().tolist())}) "
                f"are left out: the documented membership ends in April {horizon}, so whether "
                "a kommun without a förbund then joined later is unknown."
            )
            panel = panel[~late].reset_index(drop=True)
    years = config.design().years(panel["year"].unique()).tolist()
    cohorts = plan.cohort_values() or sorted(panel["cohort"].unique().tolist())
    config.check_window(years, cohorts)
    designed = check_analysis_panel(panel, config, plan)
    return panel, plan, designed


def balanced_only_methods() -> tuple[str, ...]:
    """Estimators that refuse an unbalanced panel (registry fact ``balanced_only``).

    A design that censors later joiners (preset "isf") cannot run them;
    tests/test_config_parity.py checks this against the estimators.
    """
    return methods_where(balanced_only=True)


def check_analysis_panel(
    panel: pd.DataFrame, config: AnalysisConfig, plan: CalendarPlan
) -> DesignedPanels | None:
    """The checks of the loaded panel that ``run`` would otherwise meet during estimation.

    Run by :func:`load_analysis_panel`, so ``finsam-eval validate`` and ``run`` refuse the same
    configurations before anything is estimated: every configured series has rows, the design's
    cohorts are present, no configured method refuses the design's (unbalanced) panel, stacked
    keeps at least one cohort in the window, and the Romano–Wolf draws fit the memory guard of
    ``finsam_eval.estimators.spec.MAX_DRAW_BYTES``.

    Returns the designed panels (:func:`designed_panels`) it checked, None for a "documented"
    calendar (the design is applied per draw).

    Raises
    ------
    ConfigError
        One line per problem.
    """
    from finsam_eval.estimators.spec import MAX_DRAW_BYTES

    problems = []
    designed = None
    present = set(panel[["population", "outcome"]].drop_duplicates().itertuples(index=False))
    missing = [f"{p} × {o}" for p, o in config.series() if (p, o) not in present]
    if missing:
        problems.append(
            f"design.populations/outcomes: the panel has no rows for {missing} (data.source "
            f"{config.source!r})"
        )
    if plan.mode != "documented":
        try:
            designed = designed_panels(panel, config)
        except ValueError as error:
            problems.append(f"design.preset: {error}")
        else:
            if "stacked" in config.methods:
                # stacked keeps a cohort only if its whole event window lies inside the years
                stacked_panel, _ = designed.for_method("stacked")
                first, last = int(stacked_panel["year"].min()), int(stacked_panel["year"].max())
                lo, hi = config.window
                treated = sorted(set(stacked_panel.loc[stacked_panel["cohort"] > 0, "cohort"]))
                if treated and not any(first <= g + lo and g + hi <= last for g in treated):
                    problems.append(
                        f"design.window {list(config.window)}: method 'stacked' keeps no cohort, "
                        f"since no cohort's event window [g{lo:+d}, g{hi:+d}] lies inside the "
                        f"years {first}–{last} (cohorts {treated[0]}–{treated[-1]}); use a "
                        "shorter window"
                    )
            refusing = [m for m in config.methods if m in balanced_only_methods()]
            if designed.unbalanced and refusing:
                problems.append(
                    f"design.methods: {refusing} need a balanced panel, but preset "
                    f"{config.preset!r} keeps kommuner joining after the evaluated cohorts only "
                    "before they join (an unbalanced panel); leave them out or use preset = "
                    '"all_cohorts"'
                )
    if config.adjust == "romano_wolf" and config.cluster_column in panel.columns:
        clusters = int(panel[config.cluster_column].nunique())
        need = config.bootstrap * clusters * 8
        if need > MAX_DRAW_BYTES:
            problems.append(
                f"inference.bootstrap = {config.bootstrap} Romano–Wolf draws over {clusters} "
                f"clusters need about {need / 1024**3:.1f} GiB (limit "
                f"{MAX_DRAW_BYTES / 1024**3:.0f} GiB); use fewer draws (999 to 9999 suffice)"
            )
    if problems:
        raise ConfigError.from_problems(problems)
    return designed


def design_manifest(config: AnalysisConfig) -> dict[str, Any]:
    """The ``design`` entry of the manifest: the preset's design and its sources."""
    design = config.design()
    return {
        "preset": config.preset,
        "description": design.describe(),
        "cohorts": None if design.cohorts is None else list(design.cohorts),
        "follow_up": design.follow_up,
        "control": config.control,
        "window": list(config.window),
        "sources": [list(pair) for pair in design.sources],
    }


def design_notes(
    panel: pd.DataFrame,
    config: AnalysisConfig,
    plan: CalendarPlan,
    designed: DesignedPanels | None = None,
) -> list[str]:
    """What the design does to this panel (for the run notes); ``designed``: the panel's
    :func:`designed_panels` when already built."""
    if plan.mode == "documented":
        design = config.design()
        return [
            f"Design {design.describe()}; applied to each compatible calendar (later joiners "
            "are comparisons until they join)."
        ]
    return (designed_panels(panel, config) if designed is None else designed).notes


def kommun_clusters(panel: pd.DataFrame, config: AnalysisConfig) -> pd.Series:
    """The configured cluster label of every kommun (constant within kommun in a built panel)."""
    return panel.drop_duplicates("kommun_kod").set_index("kommun_kod")[config.cluster_column]


def input_hash(panel: pd.DataFrame) -> str:
    """SHA-256 of the panel's column names, dtypes and values (independent of where it was
    stored; :func:`finsam_eval.report.manifest.hash_frames`).

    Hashes the columns' values with ``pandas.util.hash_pandas_object`` instead of rendering the
    panel as CSV text (1.4 s for the default run's 152 250 rows, against 0.05 s).
    """
    from finsam_eval.report.manifest import hash_frames

    return hash_frames({"panel": panel})


def method_control(method: str, control: str) -> str:
    """The control group a method uses under the configured one (``MethodInfo.control_for``:
    Sun & Abraham run a not-yet-treated configuration against the never-treated, and the run
    notes say so)."""
    return method_info(method).control_for(control)


def _series_panels(
    panel: pd.DataFrame, config: AnalysisConfig
) -> dict[tuple[str, str], pd.DataFrame]:
    """The panel of every population × outcome, with ``kommun_weight`` when weighting."""
    if config.weights:
        # estimators take sampling weights constant within kommun: each kommun is weighted by
        # its mean population (the series' denominator) over the panel years
        panel = panel.assign(
            kommun_weight=panel.groupby(["population", "outcome", "kommun_kod"])[
                "weight"
            ].transform("mean")
        )
    return dict(tuple(panel.groupby(["population", "outcome"], sort=False)))


def _options(
    method: str, config: AnalysisConfig, cohorts: list[int] | None = None, unbalanced: bool = False
) -> dict[str, object]:
    """The estimator options of ``method`` under ``config`` (weights and cluster aside).

    ``cohorts``: the design's evaluated cohorts, passed to Callaway & Sant'Anna (the only
    estimator that takes them; the others get a censored panel, :func:`apply_design`).
    ``unbalanced``: the panel was censored, so units not seen in every year are kept.
    """
    extra: dict[str, object] = {}
    if cohorts is not None and method_info(method).takes_cohorts:
        extra["cohorts"] = cohorts
    if unbalanced:
        extra["unbalanced"] = "keep"
    return extra | {
        "outcome": "share",
        "unit": "kommun_kod",
        "time": "year",
        "cohort": "cohort",
        "control": method_control(method, config.control),
        "est_method": config.est_method,
        "anticipation": config.anticipation,
        "base_period": config.base_period,
        "window": config.window,
        "alpha": config.alpha,
    }


def check_method_options(config: AnalysisConfig) -> None:
    """Check every configured method's options as ``estimate`` will, before any data is read.

    The options are those :func:`_fit` passes (through
    :meth:`finsam_eval.estimators.spec.EstimationSpec.build`, the check ``estimate`` runs), so
    ``finsam-eval validate`` refuses what ``run`` would refuse, e.g. ``est_method = "ipw"`` for a
    method other than CS.

    Raises
    ------
    ConfigError
        Naming the method and the option's problem.
    """
    from finsam_eval.estimators.spec import EstimationSpec, check_reference_period

    for method in config.methods:
        # estimate()'s own defaults, then what _fit passes
        options: dict[str, Any] = {
            "covariates": None,
            "unbalanced": "balance",
            "weights": "kommun_weight" if config.weights else None,
            "cluster": config.cluster_column,
            "reps": 0,
            "seed": config.inference_seed,
            **_options(method, config),
        }
        try:
            EstimationSpec.build(method, None, **options)
            check_reference_period(method, options)
            if method == "cs":
                # CS's own option values (est_method, base_period), as its fit checks them
                from finsam_eval.estimators.callaway_santanna import _check_options

                _check_options(config.est_method, config.base_period, 0, "rademacher", None)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"design.methods: {method!r} refuses this configuration: {error}"
            ) from error


def _fit(
    series: pd.DataFrame, method: str, config: AnalysisConfig, **design_options: Any
) -> EstimationResult:
    options = _options(method, config, **design_options)
    if options["control"] != config.control:
        warnings.warn(
            f"{method}: control={config.control!r} is not defined for this estimator; "
            f"it uses control={options['control']!r}",
            UserWarning,
            stacklevel=2,
        )
    return estimate(
        series,
        method=method,
        weights="kommun_weight" if config.weights else None,
        cluster=config.cluster_column,
        reps=0,
        seed=config.inference_seed,
        **options,
    )


@dataclass
class DesignedPanels:
    """The panel of the configured design, per kind of estimator.

    Attributes
    ----------
    whole
        Design years, kommuner that joined before the design left out; later joiners whole
        (for estimators told the evaluated cohorts, ``MethodInfo.takes_cohorts``).
    censored
        As ``whole``, with later joiners' rows from their join year on left out and cohort 0
        (for every other estimator).
    unbalanced
        True when ``censored`` lost rows (so those estimators keep unbalanced units).
    cohorts
        The evaluated cohorts present in the panel, or None (every cohort).
    notes
        What the design did, for the run notes.
    """

    whole: pd.DataFrame
    censored: pd.DataFrame
    unbalanced: bool
    cohorts: list[int] | None
    notes: list[str]

    def for_method(self, method: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        """The panel and design options (``cohorts``, ``unbalanced``) of ``method``."""
        if self.cohorts is not None and method_info(method).takes_cohorts:
            return self.whole, {"cohorts": self.cohorts}
        return self.censored, {"unbalanced": self.unbalanced}


def designed_panels(panel: pd.DataFrame, config: AnalysisConfig) -> DesignedPanels:
    """Apply the configured design (``[design] preset``) to a panel with its cohorts."""
    design = config.design()
    whole, notes, _ = apply_design(panel, design, censor_not_yet=False)
    if design.cohorts is None:
        return DesignedPanels(whole, whole, False, None, notes)
    censored, _, unbalanced = apply_design(panel, design, censor_not_yet=True)
    present = set(whole.loc[whole["cohort"] > 0, "cohort"].astype(int).tolist())
    cohorts = [g for g in design.cohorts if g in present]
    missing = [g for g in design.cohorts if g not in present]
    if not cohorts:
        raise ValueError(
            f"the data have no kommun in the design's cohorts {list(design.cohorts)} "
            f"(preset {config.preset!r})"
        )
    if missing:
        notes.append(f"Design cohorts without kommuner in the calendar: {missing}.")
    # the unique codes: Arrow-backed string isin looks up every value given (issue 16)
    later = censored["kommun_kod"].isin(
        whole.loc[whole["cohort"] > design.cohorts[-1], "kommun_kod"].unique()
    )
    if later.any():
        n_rows = len(whole) - len(censored)
        notes.append(
            f"{censored.loc[later, 'kommun_kod'].nunique()} kommuner joining after "
            f"{design.cohorts[-1]} are comparisons until they join (seed 001: 'inte (ännu)'): "
            f"{', '.join(methods_where(takes_cohorts=True))} aggregates only the evaluated "
            "cohorts' effects; the other estimators get only their rows before joining "
            f"({n_rows} rows left out, unbalanced units kept)."
        )
    return DesignedPanels(whole, censored, unbalanced, cohorts, notes)


def add_wild_pvalues(
    panel: pd.DataFrame,
    estimates: pd.DataFrame,
    results: dict[tuple[str, str, str], EstimationResult],
    config: AnalysisConfig,
    progress: bool = True,
) -> pd.DataFrame:
    """Add ``p_value_wild`` and ``wild_bootstrap`` (its kind) to every event-time row.

    ``wild_bootstrap(result, reps=config.wild_bootstrap)`` of each series' estimate, clustered like
    the estimates, seeded with the inference seed: the restricted wild cluster bootstrap of TWFE and
    the re-estimating WCR of CS, imputation and two-stage (docs/inference.md). Methods without one
    keep empty values, and their results get a note saying so.
    """
    from finsam_eval.inference.wild_results import wild_bootstrap

    designed = designed_panels(panel, config)
    grouped = {
        "whole": _series_panels(designed.whole, config),
        "censored": _series_panels(designed.censored, config),
    }
    estimates = estimates.assign(p_value_wild=np.nan, wild_bootstrap=pd.NA)
    keys = list(results)
    for population, outcome, method in _progress(keys, len(keys), "wild bootstrap", progress):
        if not method_info(method).wild:
            results[(population, outcome, method)].info.setdefault("run_warnings", []).append(
                f"no wild bootstrap for {method}: p_value_wild is empty (available for "
                f"{', '.join(methods_where(wild=True))})"
            )
            continue
        _, design_options = designed.for_method(method)
        which = "whole" if "cohorts" in design_options else "censored"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the estimate's warnings are already in the notes
            try:
                fitted = estimate(
                    grouped[which][(population, outcome)],
                    method=method,
                    cluster=config.cluster_column,
                    weights="kommun_weight" if config.weights else None,
                    **_options(method, config, **design_options),
                )
                table = wild_bootstrap(
                    fitted, reps=config.wild_bootstrap, seed=config.inference_seed, overall=False
                )
            except ValueError as error:
                # e.g. a re-estimating bootstrap that covers balanced panels only (a design
                # that censors later joiners): the p-values stay empty, the notes say why
                results[(population, outcome, method)].info.setdefault("run_warnings", []).append(
                    f"no wild bootstrap for {method}: {error}"
                )
                continue
        p_value = table.set_index(table["event_time"].astype(int))["p_value"]
        kind = table.set_index(table["event_time"].astype(int))["bootstrap"]
        rows = (
            (estimates["population"] == population)
            & (estimates["outcome"] == outcome)
            & (estimates["method"] == method)
        )
        times = estimates.loc[rows, "event_time"]
        estimates.loc[rows, "p_value_wild"] = times.map(p_value).to_numpy(dtype=float)
        estimates.loc[rows, "wild_bootstrap"] = times.map(kind).to_numpy(dtype=object)
    return estimates


@dataclass
class AnalysisOutput:
    """Everything one run produced (also written to the output folder)."""

    estimates: pd.DataFrame
    results: dict[tuple[str, str, str], EstimationResult]
    panel: pd.DataFrame
    timings: dict[str, float]


def estimate_all(
    panel: pd.DataFrame,
    config: AnalysisConfig,
    progress: bool = True,
    calendar: CalendarPlan | None = None,
    on_result: Callable[[tuple[str, str, str], EstimationResult], None] | None = None,
    designed: DesignedPanels | None = None,
    on_series: Callable[[str, str, pd.DataFrame], None] | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, str, str], EstimationResult]]:
    """Estimate every configured population × outcome × method; a tidy long table + results.

    ``panel`` carries the calendar's cohorts (:func:`apply_calendar`); the configured design
    (:func:`designed_panels`) is applied here. With a "documented" ``calendar`` every method
    is fitted on each compatible calendar and pooled (:func:`_fit_documented`). ``on_result``
    is called with each (population, outcome, method) key and its finished result (the run
    starts report work on it while the next series is estimated); ``on_series`` with each
    population, outcome and the series' rows of the long table (every method's event study)
    once its last method is estimated. ``designed``: the panel's :func:`designed_panels` when
    already built.
    """
    lo, hi = config.window
    from finsam_eval.inference.bands import add_bands

    documented = calendar is not None and calendar.mode == "documented"
    jobs = [(p, o, m) for p, o in config.series() for m in config.methods]
    clusters = kommun_clusters(panel, config)
    if documented:
        assert calendar is not None and calendar.draws is not None
        # cohorts change with the draw: only the design's years are applied here
        design = config.design()
        years_only, _, _ = apply_design(
            panel.assign(cohort=np.int64(0)), design, censor_not_yet=False
        )
        grouped = {"": _series_panels(years_only, config)}
    else:
        designed = designed_panels(panel, config) if designed is None else designed
        grouped = {
            "whole": _series_panels(designed.whole, config),
            "censored": _series_panels(designed.censored, config),
        }
    results: dict[tuple[str, str, str], EstimationResult] = {}
    rows = []
    for population, outcome, method in _progress(jobs, len(jobs), "estimating", progress):
        if (population, outcome) not in grouped[next(iter(grouped))]:
            raise ValueError(f"the panel has no rows for {population} × {outcome}")
        # estimator warnings (trimmed cohorts, dropped units) are kept with the result and
        # written to notes.csv rather than printed once per series
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if documented:
                res = _fit_documented(
                    grouped[""][(population, outcome)], calendar.draws, method, config
                )
            else:
                _, design_options = designed.for_method(method)
                which = "whole" if "cohorts" in design_options else "censored"
                res = _fit(grouped[which][(population, outcome)], method, config, **design_options)
        res.info.setdefault("run_warnings", []).extend(str(w.message) for w in caught)
        if config.bootstrap and not documented:
            # sup-t band over the window's estimated event times (Montiel Olea &
            # Plagborg-Møller 2019), clustered like the estimates
            res = add_bands(
                res,
                alpha=config.alpha,
                reps=config.bootstrap,
                seed=config.inference_seed,
                cluster=clusters,
            )
        results[(population, outcome, method)] = res
        if on_result is not None:
            on_result((population, outcome, method), res)
        es = res.event_study
        es = es[(es["event_time"] >= lo) & (es["event_time"] <= hi)]
        columns = ["event_time", "estimate", "se", "ci_lower", "ci_upper", "p_value"]
        columns += [c for c in ("band_lower", "band_upper") if c in es.columns]
        columns += [c for c in POOLED_COLUMNS if documented and c in es.columns]
        rows.append(
            es[columns].assign(
                population=population,
                outcome=outcome,
                method=method,
                n_units=res.info.get("n_units"),
                n_clusters=res.info.get("n_clusters"),
            )
        )
        if on_series is not None and method == config.methods[-1]:
            on_series(population, outcome, pd.concat(rows[-len(config.methods) :]))
    estimates = pd.concat(rows, ignore_index=True)
    estimates["p_adjusted"] = np.nan
    for column in ("band_lower", "band_upper"):
        if column not in estimates.columns:
            estimates[column] = np.nan
    extra = [c for c in POOLED_COLUMNS if c in estimates.columns]
    return estimates[ESTIMATE_COLUMNS + extra], results


#: Columns of a pooled event study (Rubin's rules over calendars) carried into estimates.csv
POOLED_COLUMNS = (
    "within_se",
    "between_sd",
    "min_estimate",
    "max_estimate",
    "fraction_missing_info",
    "n_draws",
)


def _fit_documented(
    series: pd.DataFrame, draws: pd.DataFrame, method: str, config: AnalysisConfig
) -> EstimationResult:
    """Fit ``method`` on every compatible calendar of ``draws`` and pool (Rubin's rules).

    The design is applied per draw: Callaway & Sant'Anna gets the evaluated cohorts
    (``cohorts=``) and pools through ``estimate_over_calendars``; for other estimators each
    draw's later joiners are censored at their join year, as :func:`designed_panels` does for
    one calendar.
    """
    from finsam_eval.estimators.calendars import estimate_over_calendars

    design = config.design()
    options = _options(method, config)
    common = {
        "weights": "kommun_weight" if config.weights else None,
        "cluster": config.cluster_column,
        "reps": 0,
        "seed": config.inference_seed,
    }
    if design.cohorts is None:
        return estimate_over_calendars(series, draws, method=method, **common, **options)
    present = set(draws.loc[draws["cohort"] > 0, "cohort"].astype(int).tolist())
    cohorts = [g for g in design.cohorts if g in present]
    if method_info(method).takes_cohorts:
        return estimate_over_calendars(
            series, draws, method=method, cohorts=cohorts, **common, **options
        )
    return _pool_censored(series, draws, method, design, common, options)


@renamed_options(draws="reps")
def joint_draws(
    results: dict[tuple[str, str, str], EstimationResult],
    estimates: pd.DataFrame,
    clusters: pd.Series,
    reps: int,
    seed: int,
) -> np.ndarray:
    """Joint multiplier-bootstrap t-statistics for every row of ``estimates``.

    One matrix of Rademacher weights over clusters (B × G) is shared by every series, so the
    replicates keep the dependence across outcomes, populations and event times.

    Parameters
    ----------
    results
        Estimation results keyed by (population, outcome, method), each with
        ``event_influence`` and ``unit_labels``.
    estimates
        The long table; rows without influence functions get NaN columns.
    clusters
        Cluster label by unit label.
    reps
        Number of bootstrap replicates B (old name ``draws=``, warns).
    seed
        Seed of the numpy Generator.

    Returns
    -------
    numpy.ndarray
        Shape (B, len(estimates)): centred bootstrap estimates divided by their SEs.
    """
    labels, cluster_codes = np.unique(clusters.to_numpy(dtype=str), return_inverse=True)
    # unit label -> position, a hash lookup on plain str objects (pandas' Arrow-backed strings
    # look values up one by one: 4 ms a series, issue 16)
    unit_index = pd.Index(clusters.index.to_numpy(dtype=str).astype(object))
    rng = np.random.default_rng(seed)
    weights = rademacher_signs(rng, (reps, len(labels)))
    out = np.full((reps, len(estimates)), np.nan)
    key_columns = [estimates[c].to_numpy(dtype=object) for c in ("population", "outcome", "method")]
    rows_of = pd.Series(np.arange(len(estimates))).groupby(key_columns, sort=False).indices
    for key, res in results.items():
        if res.event_influence is None or res.unit_labels is None:
            continue
        rows = rows_of.get(key, np.array([], dtype=np.intp))  # ascending, as the table's
        es_times = res.event_study["event_time"].to_numpy()
        position = {t: i for i, t in enumerate(es_times)}
        columns = [position[t] for t in estimates["event_time"].to_numpy()[rows]]
        influence = np.nan_to_num(res.event_influence[:, columns])
        # EstimationResult convention: cov = S'S / n² with S the cluster sums of the rows and
        # n the number of rows (units, or clusters where the estimator returns cluster rows)
        n = influence.shape[0]
        labels_given = np.asarray(res.unit_labels).astype(str)
        position_of_unit = unit_index.get_indexer(labels_given.astype(object))
        in_labels = np.searchsorted(labels, labels_given)
        if (position_of_unit >= 0).all():
            unit_cluster = cluster_codes[position_of_unit]
        elif len(labels) and (labels[np.minimum(in_labels, len(labels) - 1)] == labels_given).all():
            # estimators that cluster inside return cluster-level influence functions
            unit_cluster = in_labels
        else:
            continue
        summed = np.zeros((len(labels), influence.shape[1]))
        np.add.at(summed, unit_cluster, influence)
        replicates = weights @ summed / n
        se = estimates["se"].to_numpy()[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, rows] = replicates / se
    return out


def _adjust(estimates: pd.DataFrame, draws: np.ndarray | None, config: AnalysisConfig) -> None:
    """Fill ``p_adjusted`` in place: error control within each family of post-period estimates."""
    from finsam_eval.inference.multiple_testing import adjust_pvalues

    if config.adjust == "none":
        return
    first, last = config.event_times
    tested = estimates["event_time"].between(first, last) & estimates["se"].notna()
    by = {"population": ["population"], "outcome": ["outcome"], "all": []}[config.family]
    for _, family in estimates[tested].groupby(["method", *by], sort=False):
        rows = family.index.to_numpy()
        family_draws = None
        method = config.adjust
        if method == "romano_wolf":
            family_draws = None if draws is None else draws[:, rows]
            if family_draws is None or np.isnan(family_draws).any():
                # no joint replicates for this estimator: fall back to Holm, which needs none
                method = "holm"
                family_draws = None
        adjusted = adjust_pvalues(family.reset_index(drop=True), method=method, draws=family_draws)
        estimates.loc[rows, "p_adjusted"] = adjusted["p_adjusted"].to_numpy()


def run_notes(
    results: dict[tuple[str, str, str], EstimationResult], notes: Iterable[str] = ()
) -> pd.DataFrame:
    """Every warning and exclusion the estimators reported, one row per message and series.

    ``notes``: run-wide notes (calendar, design), first, with empty population/outcome/method.
    """
    rows = [("", "", "", "note", note) for note in dict.fromkeys(notes)]
    for (population, outcome, method), res in results.items():
        for message in dict.fromkeys(res.info.get("run_warnings", [])):
            rows.append((population, outcome, method, "warning", message))
        dropped = res.info.get("dropped")
        if isinstance(dropped, pd.DataFrame) and not dropped.empty:
            for reason, group in dropped.groupby("reason", sort=True):
                rows.append(
                    (population, outcome, method, "excluded", f"{reason}: {len(group)} entries")
                )
    return pd.DataFrame(rows, columns=["population", "outcome", "method", "kind", "message"])


def bacon_decompositions(panel: pd.DataFrame, config: AnalysisConfig) -> dict[str, pd.DataFrame]:
    """Goodman-Bacon (2021) decompositions of the static TWFE estimate for the first configured
    population's series: what the TWFE numbers in the report are averages of."""
    from finsam_eval.estimators.bacon import bacon_decomposition

    population = config.populations[0]
    out = {}
    for pop, outcome in config.series():
        if pop != population:
            continue
        data = panel[(panel["population"] == pop) & (panel["outcome"] == outcome)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = bacon_decomposition(
                    data, outcome="share", unit="kommun_kod", time="year", cohort="cohort"
                )
            except ValueError:
                # unbalanced user panels have no decomposition; the report goes without it
                continue
        out[f"{pop}-{outcome}"] = result.table
    return out


def _cohorts(panel: pd.DataFrame) -> pd.DataFrame:
    return (
        panel[["kommun_kod", "cohort", "forbund"]]
        .drop_duplicates("kommun_kod")
        .sort_values("kommun_kod", ignore_index=True)
    )


def _design_counts(
    cohorts: pd.DataFrame, evaluated: Iterable[int] | None = None
) -> dict[str, object]:
    """N of the design for the report: kommuner, evaluated adopting cohorts and never-members."""
    cohort = pd.to_numeric(cohorts["cohort"], errors="coerce").fillna(0).astype(int)
    joined = sorted(set(cohort[cohort > 0].tolist()))
    if evaluated is not None:
        joined = [c for c in joined if c in set(evaluated)]
    return {
        "n_kommuner": int(len(cohorts)),
        "n_cohorts": len(joined),
        "cohort_years": f"{joined[0]}–{joined[-1]}" if joined else "–",
        "n_never": int((cohort == 0).sum()),
    }


def design_truth(truth: pd.DataFrame, config: AnalysisConfig, years: list[int]) -> pd.DataFrame:
    """True effects per event time for the design's evaluated cohorts.

    Cohort-size weights over the evaluated cohorts observed at each event time within
    ``years`` (the weights of Callaway & Sant'Anna's dynamic aggregation), from the synthetic
    truth's cohort × event-time effects (columns population, outcome, cohort, event_time,
    att, n_kommuner).
    """
    design = config.design()
    first, last = min(years), max(years)
    chosen = truth["cohort"].between(first + 1, last)
    if design.cohorts is not None:
        chosen &= truth["cohort"].isin(design.cohorts)
    chosen &= (truth["cohort"] + truth["event_time"]).between(first, last)
    rows = truth[chosen].assign(weighted=lambda t: t["att"] * t["n_kommuner"])
    grouped = rows.groupby(["population", "outcome", "event_time"], sort=False)
    out = grouped[["weighted", "n_kommuner"]].sum().reset_index()
    out["att"] = out["weighted"] / out["n_kommuner"]
    return out[["population", "outcome", "event_time", "att"]]


def _calendar_cohorts(panel: pd.DataFrame, plan: CalendarPlan) -> pd.DataFrame:
    """Each kommun's cohort under the calendar in use (the first draw when pooling draws)."""
    if plan.mode == "documented" and plan.draws is not None:
        first = plan.draws[plan.draws["draw"] == plan.draws["draw"].min()]
        return first[["kommun_kod", "cohort"]].reset_index(drop=True)
    return _cohorts(panel)


def _summary_text(
    table: str,
    estimates: pd.DataFrame,
    config: AnalysisConfig,
    out_dir: Path,
    timings: dict[str, float],
) -> str:
    """Text for the terminal: the headline event study by method (with the true effects on
    synthetic data) and what was written, once the run's timings are known."""
    return "\n".join(
        [
            table,
            "",
            f"{len(estimates)} estimates for {len(config.series())} series × "
            f"{len(config.methods)} methods in {sum(timings.values()):.1f} s → {out_dir}",
        ]
    )


def _summary_table(
    estimates: pd.DataFrame, config: AnalysisConfig, years: list[int] | None = None
) -> str:
    """The headline series' event study by method (and the truth on synthetic data) as text."""
    # the ISF headline series when configured, else the first one
    headline = ("alla", "sjukpenning")
    population, outcome = headline if headline in config.series() else config.series()[0]
    first, last = config.event_times
    rows = estimates[
        (estimates["population"] == population)
        & (estimates["outcome"] == outcome)
        & estimates["event_time"].between(first, last)
    ]
    table = rows.pivot_table(index="event_time", columns="method", values="estimate", sort=True)
    table = table[[m for m in config.methods if m in table.columns]]
    if config.source == "synthetic":
        from finsam_eval.synthetic import load_synthetic_truth

        truth = design_truth(load_synthetic_truth(seed=config.seed), config, years)
        truth = truth[(truth["population"] == population) & (truth["outcome"] == outcome)]
        table.insert(0, "truth", truth.set_index("event_time")["att"].reindex(table.index))
    return "\n".join(
        [
            f"Event study: {population} × {outcome} (percentage points)",
            table.to_string(float_format=lambda v: f"{v:8.3f}"),
        ]
    )


def run_analysis(config: AnalysisConfig, out_dir: str | Path, progress: bool = True) -> str:
    """Run ``config`` and write the complete output folder; returns a printable summary.

    ``out_dir`` must be new, empty or an earlier finsam-eval output (recognised by its
    ``manifest.json``); anything else raises
    :class:`~finsam_eval.pipeline.output.OutputFolderError` before any work. The run writes into
    a sibling folder and then replaces ``out_dir`` whole, so no file of an earlier run survives;
    a failed run leaves ``out_dir`` as it was. The manifest's ``files`` lists every file written.
    """
    from finsam_eval.core.blas import blas_threads
    from finsam_eval.pipeline.output import check_output_folder, replace_folder, staging_folder

    final = Path(out_dir)
    check_output_folder(final)
    staged = staging_folder(final)
    try:
        # kommun-sized products throughout: one BLAS thread each (finsam_eval.core.blas)
        with blas_threads(1):
            summary = _write_run(config, staged, final, progress)
        replace_folder(staged, final)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return summary


def _write_run(config: AnalysisConfig, out: Path, final: Path, progress: bool) -> str:
    """The run itself, written into ``out``; ``final`` is where the folder will live."""
    from finsam_eval.report.background import Background, available_cores

    # the figures and the HonestDiD breakdown values are computed in forked workers while this
    # process estimates and writes the rest. Two pools, forked before the panel is loaded, each
    # importing only what its tasks need on the core this process leaves free: matplotlib for
    # the figures, scipy.stats for HonestDiD (one pool for both paid each import per worker).
    # The figures that need only the panel start first, beside the single-threaded estimation.
    cores = available_cores()
    figure_workers = Background(max(1, cores - 2), preload=_FIGURE_MODULES, inline=cores < 2)
    honest_worker = Background(1, preload=_HONEST_MODULES, inline=cores < 2)
    with figure_workers.start() as background, honest_worker.start() as honest:
        return _write_run_with(config, out, final, progress, background, honest)


#: Modules the run's figure workers import before their first task
_FIGURE_MODULES = ("finsam_eval.report.figures",)
#: Modules the run's HonestDiD worker (which also writes the ISF tables) imports first
_HONEST_MODULES = (
    "finsam_eval.report.summary",
    "finsam_eval.inference.honest",
    "finsam_eval.report.tables",
    "openpyxl",
    "pandas.io.formats.style",
)


def _write_run_with(
    config: AnalysisConfig,
    out: Path,
    final: Path,
    progress: bool,
    background: Background,
    honest: Background,
) -> str:
    """:func:`_write_run`, with ``background`` (a ``report.background.Background``) drawing the
    figures and ``honest`` bisecting the breakdown values."""
    from finsam_eval.pipeline.output import listed_files
    from finsam_eval.report import (
        build_manifest,
        write_estimates_csv,
        write_manifest,
        write_report,
    )
    from finsam_eval.report.figure_jobs import write_figures

    timings: dict[str, float] = {}
    start = time.perf_counter()
    panel, plan, designed = _load_checked(config)
    data_source = panel.attrs.get("data_source")
    timings["load"] = time.perf_counter() - start

    from finsam_eval.core.progress import step
    from finsam_eval.report.labels import text
    from finsam_eval.report.summary import headline_method, series_breakdown

    language = config.report_language
    figure_dir = out / "figures"
    years = sorted(panel["year"].unique().tolist())
    # one calendar's cohorts for the adoption figures; pooled runs have no single calendar
    cohorts = _cohorts(panel) if plan.mode != "documented" else None
    step("report: Bacon decompositions", progress)
    decompositions = bacon_decompositions(panel, config) if plan.mode != "documented" else {}
    # drawn by the workers beside the estimation (the event-study figures follow it)
    planned = [
        write_figures(
            figure_dir, cohorts=cohorts, years=years, language=language, background=background
        ),
        write_figures(
            figure_dir,
            decomposition=decompositions or None,
            language=language,
            background=background,
        ),
    ]

    # the headline method's HonestDiD breakdown values (for the summary) are bisected in the
    # workers as soon as each series is estimated
    headline = headline_method(config.methods)
    event_times = range(config.event_times[0], config.event_times[1] + 1)
    breakdowns: dict[tuple[str, str], Any] = {}

    def start_figure(population: str, outcome: str, rows: pd.DataFrame) -> None:
        # a series' event-study figure needs only its estimates and intervals: drawn by the
        # workers while the next series is estimated
        planned.append(
            write_figures(
                figure_dir, rows, methods=config.methods, language=language, background=background
            )
        )

    def start_breakdown(key: tuple[str, str, str], result: EstimationResult) -> None:
        if config.report_honest and key[2] == headline:
            task = (result.event_study, result.vcov, event_times)
            breakdowns[key[:2]] = honest.map(series_breakdown, [task])

    start = time.perf_counter()
    estimates, results = estimate_all(
        panel,
        config,
        progress=progress,
        calendar=plan,
        on_result=start_breakdown,
        designed=designed,
        on_series=start_figure,
    )
    timings["estimate"] = time.perf_counter() - start

    start = time.perf_counter()
    estimates = _inference(panel, estimates, results, config, plan, progress)
    timings["inference"] = time.perf_counter() - start

    start = time.perf_counter()
    step("report: figures", progress)
    write_estimates_csv(estimates, out / "estimates.csv")
    notes = run_notes(results, plan.notes + design_notes(panel, config, plan, designed))
    notes.to_csv(out / "notes.csv", index=False, lineterminator="\n")
    design_counts = _design_counts(
        _calendar_cohorts(panel, plan), evaluated=config.design().cohorts
    )
    step("report: tables", progress)
    tables_written = _start_tables(
        out / "tables", estimates, config, language, design_counts["n_cohorts"], honest
    )
    # pre-trend tests and HonestDiD breakdown values for the summary: the headline method only
    diagnostics = _diagnostics(results, headline, event_times, config, breakdowns, progress)
    diagnostics.to_csv(
        out / "diagnostics.csv", index=False, lineterminator="\n", float_format="%.10g"
    )
    for key, table in decompositions.items():
        table.to_csv(
            out / f"bacon-{key}.csv", index=False, lineterminator="\n", float_format="%.10g"
        )
    # the terminal summary's table while the workers finish
    summary_table = _summary_table(estimates, config, config.design().years(years).tolist())
    tables_written.get()
    drawn: dict[str, Path] = {}
    for figures in planned:
        figures.pending.get()
        drawn.update(figures)
    timings["report"] = time.perf_counter() - start
    manifest = build_manifest(
        config.to_dict(),
        config.text,
        input_hash(panel),
        seed=config.seed,
        timings=timings,
        extra={
            "title": text("title", language),
            "config_sha256_canonical": config.hash,
            "calendar": plan.manifest,
            "design": {**design_manifest(config), **design_counts},
            # where the panel came from (person-year microdata: input, engine, rejections)
            **({"data_source": data_source} if data_source else {}),
            # what this run wrote (`report` reads only these): the folder so far, the manifest
            # and the report written next
            "files": sorted({*listed_files(out), "manifest.json", "report.html"}),
        },
    )
    write_manifest(manifest, out / "manifest.json")
    step("report: report.html", progress)
    write_report(
        out,
        estimates,
        drawn,
        manifest,
        title=text("title", language),
        methods=config.methods,
        event_times=list(range(config.event_times[0], config.event_times[1] + 1)),
        notes=notes,
        diagnostics=diagnostics,
        language=language,
    )
    return _summary_text(summary_table, estimates, config, final, timings)


def _start_tables(
    folder: Path,
    estimates: pd.DataFrame,
    config: AnalysisConfig,
    language: str,
    n_cohorts: int | None,
    background: Background,
) -> Any:
    """Write the ISF tables (Markdown, LaTeX, HTML, xlsx), one population per task, by
    ``background``'s workers (the run's HonestDiD worker, which has time to spare; issue 16) or,
    when it runs inline, here at once. Returns a handle whose ``get()`` waits for the files."""
    options = {
        "methods": config.methods,
        "language": language,
        "event_times": list(range(config.event_times[0], config.event_times[1] + 1)),
        "n_cohorts": n_cohorts,
        "adjustment": config.adjust,
    }
    tasks = [
        (folder, rows, options)
        for _, rows in estimates.groupby("population", sort=False, observed=True)
    ]
    return background.map(_write_population_tables, tasks)


def _write_population_tables(
    folder: Path, estimates: pd.DataFrame, options: dict[str, Any]
) -> list[Path]:
    """``report.write_tables`` for one population's estimates (a worker task of the run)."""
    from finsam_eval.report import write_tables

    return write_tables(folder, estimates, **options)


def _inference(
    panel: pd.DataFrame,
    estimates: pd.DataFrame,
    results: dict[tuple[str, str, str], EstimationResult],
    config: AnalysisConfig,
    plan: CalendarPlan,
    progress: bool,
) -> pd.DataFrame:
    """The run's inference step: adjusted p-values (Romano–Wolf draws or the configured
    adjustment) and the wild bootstrap's p-values when configured."""
    draws = None
    if config.adjust == "romano_wolf":
        draws = joint_draws(
            results,
            estimates,
            kommun_clusters(panel, config),
            config.bootstrap,
            config.inference_seed,
        )
    _adjust(estimates, draws, config)
    if config.wild_bootstrap and plan.mode == "documented":
        plan.notes.append(
            "No wild bootstrap: the estimates are pooled over calendars (Rubin's rules); "
            "p_value_wild is empty."
        )
        estimates = estimates.assign(p_value_wild=np.nan, wild_bootstrap=pd.NA)
    elif config.wild_bootstrap:
        estimates = add_wild_pvalues(panel, estimates, results, config, progress=progress)
    return estimates


def _diagnostics(
    results: dict[tuple[str, str, str], EstimationResult],
    headline: str,
    event_times: Iterable[int],
    config: AnalysisConfig,
    breakdowns: dict[tuple[str, str], Any],
    progress: bool,
) -> pd.DataFrame:
    """``report.summary.series_diagnostics`` of the headline method, with the breakdown values
    the workers computed (``breakdowns``: (population, outcome) → pending result)."""
    from finsam_eval.report.summary import series_diagnostics

    n_series = sum(1 for key in results if key[2] == headline)
    ticker = iter(_progress(range(n_series), n_series, "report: diagnostics", progress))
    diagnostics = series_diagnostics(
        results,
        headline,
        list(event_times),
        honest=config.report_honest,
        on_series=lambda population, outcome: next(ticker, None),
        breakdowns={series: pending.get()[0] for series, pending in breakdowns.items()},
    )
    for _ in ticker:  # close the progress report
        pass
    return diagnostics


def _pool_censored(
    series: pd.DataFrame,
    draws: pd.DataFrame,
    method: str,
    design: Any,
    common: dict[str, Any],
    options: dict[str, Any],
) -> EstimationResult:
    """An estimator without ``cohorts=`` over compatible calendars, the design applied per draw.

    Each draw's later joiners are censored at their join year (:func:`apply_design`), the
    estimator is fitted on that panel, and the draws are pooled with Rubin's rules as
    ``estimate_over_calendars`` pools them (its pooling helpers, Rubin 1987).
    """
    from finsam_eval.estimators.calendars import pool_results

    alpha = float(options.get("alpha", 0.05))
    labels = np.sort(pd.unique(draws["draw"]))
    cohorts = draws.set_index(["draw", "kommun_kod"])["cohort"]
    codes = series["kommun_kod"].astype(str)
    results = []
    censored_any = False
    for label in labels:
        cohort = codes.map(cohorts.xs(label, level="draw"))
        if cohort.isna().any():
            missing = sorted(codes[cohort.isna()].unique())
            raise ValueError(f"calendar draw {label} has no cohort for kommuner {missing[:10]}")
        draw_data = series.assign(cohort=cohort.astype(np.int64).to_numpy())
        draw_data, _, censored = apply_design(draw_data, design, censor_not_yet=True)
        censored_any |= censored
        extra = {"unbalanced": "keep"} if censored else {}
        results.append(estimate(draw_data, method=method, **common, **options, **extra))
    unbalanced = "keep" if censored_any else results[0].info.get("unbalanced")
    return pool_results(
        results,
        method,
        alpha,
        None,
        {
            "n_draws": len(labels),
            "draws": labels.tolist(),
            "pooling": "Rubin (1987) rules over calendars, design applied per draw",
            "unbalanced": unbalanced,
        },
    )
