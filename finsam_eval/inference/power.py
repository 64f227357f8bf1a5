"""Monte Carlo bias, coverage and power of event-study estimators; minimum detectable effects.

:func:`simulate` redraws one population × outcome series many times from the fixed synthetic
world (:mod:`finsam_eval.synthetic.montecarlo`: same kommuner, sizes, calendar and levels, new
local shocks and sampling noise), adds an effect path, fits each estimator and compares the
event-study estimates :math:`\\hat\\theta_r(e)` with the truth :math:`\\theta(e)` (the
cohort-size-weighted average of the path, as ``load_synthetic_truth(aggregate="event_time")``):

.. math::

    \\text{bias}(e) = \\bar{\\hat\\theta}(e) - \\theta(e),\\quad
    \\text{rmse}(e) = \\sqrt{R^{-1}\\textstyle\\sum_r (\\hat\\theta_r(e) - \\theta(e))^2},\\quad
    \\text{coverage}(e) = R^{-1}\\textstyle\\sum_r 1\\{\\theta(e) \\in CI_r(e)\\},

and power(e) is the share of replications whose p-value for :math:`\\theta(e) = 0` is below
``alpha``. Monte Carlo error of a coverage rate is :math:`\\sqrt{c(1-c)/R}` (about 1.5 points
at 95 % and :math:`R = 200`).

:func:`minimum_detectable_effect` is the textbook MDE (Bloom 1995) under the ISF design:
:math:`MDE(e) = (z_{1-\\alpha/2} + z_{\\text{power}})\\,SE(e)` with :math:`SE(e)` the Monte Carlo
standard deviation of the estimator under the null (effect 0). The MDE is the true effect that
a two-sided level-:math:`\\alpha` test detects with the given power, assuming a normal estimator
with that standard deviation (the mean analytic standard error is reported alongside).

Callaway–Sant'Anna with its defaults (never-treated comparison, no covariates, no weights, unit
clusters) is fitted for all replications at once by :class:`CSBatch`: on a balanced panel with a
fixed adoption calendar every 2×2 comparison, the dynamic aggregation and the influence
functions are linear in the outcome, so a batch of replications is a few array products. Its
output equals ``estimate(method="cs")`` to rounding; :func:`simulate` checks that on the first
replication and stops if not. Every other method (and CS with other options) is fitted by
``finsam_eval.estimate`` replication by replication, on two processes when there are many.

``design="isf"`` is :func:`finsam_eval.design.isf_design` (cohorts 2005–2010, six follow-up
years, kommuner not yet members as comparisons until they join; :func:`design_world`).
``calendar="intervals"`` replaces the known adoption calendar by the documented intervals: the
true calendar of each replication and the analyst's M calendars are draws of the registry's
``compatible_calendars``, pooled with ``estimate_over_calendars`` (Rubin 1987), for CS on the
batched path and for every other method through ``estimate_over_calendars`` itself.

References
----------
Bloom, H. S. (1995). Minimum detectable effects: a simple way to report the statistical power of
experimental designs. Evaluation Review 19(5), 547–556.
Callaway, B., & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
Journal of Econometrics 225(2), 200–230.
Rubin, D. B. (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.core.distributions import norm_ppf, norm_sf
from finsam_eval.core.pool import chunks as _chunks
from finsam_eval.core.pool import run_chunks
from finsam_eval.core.pool import workers as _workers
from finsam_eval.design import EvaluationDesign, isf_design
from finsam_eval.estimators.api import estimate
from finsam_eval.estimators.calendar_bootstrap import calendar_bootstrap, check_variance
from finsam_eval.estimators.calendars import (
    CalendarSampler,
    augment_with_state,
    check_imputation,
    count_constraints,
    estimate_over_calendars,
    join_units,
    rubin_pool,
)
from finsam_eval.estimators.cs_batch import CSBatch, cs_batch_applies
from finsam_eval.estimators.event_study import t_table
from finsam_eval.estimators.registry import DEFAULT_POWER_METHODS, METHODS
from finsam_eval.estimators.spec import check_alpha, check_count, check_seed
from finsam_eval.synthetic.generator import DEFAULT_SEED
from finsam_eval.synthetic.montecarlo import (
    EffectPath,
    SeriesWorld,
    draw_shares,
    effect_matrix,
    replication_seeds,
    series_world,
    to_panel,
    true_event_study,
)

__all__ = [
    "CALENDAR_ANALYSES",
    "DEFAULT_METHOD_OPTIONS",
    "SimulationResult",
    "design_world",
    "minimum_detectable_effect",
    "simulate",
]

#: Options passed to ``estimate`` per method unless overridden (``MethodInfo.power_options``:
#: the TWFE event study is the conventional binned one, end points -5 and 6).
DEFAULT_METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    key: dict(info.power_options) for key, info in METHODS.items() if info.power_options
}

_PARITY_TOL = 1e-8


# ----------------------------------------------------------------------------------------------
# simulate


@dataclass
class SimulationResult:
    """Monte Carlo results.

    Attributes
    ----------
    summary
        One row per method × event time: ``method``, ``event_time``, ``truth``,
        ``mean_estimate``, ``bias``, ``sd_estimate``, ``rmse``, ``mean_se``, ``coverage``,
        ``coverage_mc_se`` (:math:`\\sqrt{c(1-c)/R}`), ``power`` (share with p < alpha),
        ``n_reps`` (replications with a finite estimate and SE).
    estimates
        One row per replication × method × event time: ``rep``, ``method``, ``event_time``,
        ``estimate``, ``se``, ``ci_lower``, ``ci_upper``, ``p_value``; plus rows with
        ``event_time`` = NA and ``term`` = "overall" for each method's overall effect.
    truth
        ``event_time``, ``truth``, ``n_kommuner_total``.
    info
        population, outcome, design, reps, seed, world_seed, alpha, effect, n_kommuner,
        n_years, n_jobs, batched (methods fitted by CSBatch), method_options.
    """

    summary: pd.DataFrame
    estimates: pd.DataFrame
    truth: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def design_world(world: SeriesWorld, design: EvaluationDesign) -> SeriesWorld:
    """Restrict a series world to an evaluation design (:mod:`finsam_eval.design`).

    - Years: the design's (1998–2016 for :func:`~finsam_eval.design.isf_design`: six
      follow-up years for the 2010 cohort).
    - Kept: evaluated kommuner, never-members, and kommuner joining later inside the years,
      which keep their cohort: with ``control="notyet"`` they are comparisons until they join
      (ISF: "kommuner som (ännu) inte har gått med"); the estimators aggregate only the
      evaluated cohorts (CS's ``cohorts`` option).
    - Recoded: kommuner joining after the last year are never treated inside the panel.
    - Dropped: kommuner joining before the first evaluated cohort (neither evaluated nor
      untreated); none in the default world, whose first cohort is 2005.
    """
    years = np.isin(world.years, design.years(world.years))
    last = int(world.years[years].max())
    roles = design.roles(world.cohort, last_year=last)
    recoded = np.where(world.cohort > last, 0, world.cohort)
    keep = roles != "before_design"
    if design.control == "never":
        keep &= roles != "not_yet"
    return world.subset(kommuner=keep, years=years, cohort=recoded)


def _evaluated_cohorts(world: SeriesWorld, design: EvaluationDesign) -> list[int]:
    roles = design.roles(world.cohort, last_year=int(world.years.max()))
    return sorted(int(g) for g in np.unique(world.cohort[roles == "evaluated"]))


def _method_options(methods: Sequence[str], method_options: Mapping[str, Mapping] | None) -> dict:
    options = {m: dict(DEFAULT_METHOD_OPTIONS.get(m, {})) for m in methods}
    for m, extra in (method_options or {}).items():
        if m not in options:
            raise ValueError(f"method_options given for {m!r}, which is not in methods")
        options[m].update(extra)
    return options


def _event_rows(res, rep: int, method: str, alpha: float) -> pd.DataFrame:
    es = res.event_study
    if "reference" in es.columns:
        es = es[~es["reference"].astype(bool)]
    z = norm_ppf(1 - alpha / 2)
    est = es["estimate"].to_numpy(float)
    se = es["se"].to_numpy(float)
    out = pd.DataFrame(
        {
            "rep": rep,
            "method": method,
            "term": "event_time",
            "event_time": es["event_time"].to_numpy(int),
            "estimate": est,
            "se": se,
            "ci_lower": es["ci_lower"].to_numpy(float) if "ci_lower" in es else est - z * se,
            "ci_upper": es["ci_upper"].to_numpy(float) if "ci_upper" in es else est + z * se,
            "p_value": es["p_value"].to_numpy(float),
        }
    )
    overall = res.overall
    row = pd.DataFrame(
        {
            "rep": [rep],
            "method": method,
            "term": "overall",
            "event_time": [-999_999],
            "estimate": [float(overall["estimate"])],
            "se": [float(overall["se"])],
            "ci_lower": [float(overall.get("ci_lower", np.nan))],
            "ci_upper": [float(overall.get("ci_upper", np.nan))],
            "p_value": [float(overall.get("p_value", np.nan))],
        }
    )
    return pd.concat([out, row], ignore_index=True)


def _batch_rows(fit: dict, cs: CSBatch, reps: Iterable[int], alpha: float) -> pd.DataFrame:
    z = norm_ppf(1 - alpha / 2)
    reps = np.asarray(list(reps))
    est = np.column_stack([fit["estimate"], fit["overall"]])
    se = np.column_stack([fit["se"], fit["overall_se"]])
    times = np.r_[cs.event_times, -999_999]
    n_r, n_e = est.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * norm_sf(np.abs(est / se))
    return pd.DataFrame(
        {
            "rep": np.repeat(reps, n_e),
            "method": "cs",
            "term": np.tile(np.r_[["event_time"] * (n_e - 1), ["overall"]], n_r),
            "event_time": np.tile(times, n_r),
            "estimate": est.ravel(),
            "se": se.ravel(),
            "ci_lower": (est - z * se).ravel(),
            "ci_upper": (est + z * se).ravel(),
            "p_value": p.ravel(),
        }
    )


@dataclass(frozen=True)
class _Fits:
    """What every replication estimates: each of ``methods`` with its ``options``, at level
    ``alpha`` (the part of a chunk's task that the simulations share)."""

    methods: Sequence[str]
    options: Mapping[str, Mapping]
    alpha: float

    def run(self, panel: pd.DataFrame, rep: int) -> Iterator[tuple[str, Any, pd.DataFrame]]:
        """``(method, result, event rows)`` of replication ``rep`` for every method."""
        for method in self.methods:
            res = estimate(panel, method=method, alpha=self.alpha, **self.options[method])
            yield method, res, _event_rows(res, rep, method, self.alpha)


def _simulate_chunk(
    world: SeriesWorld,
    effect: np.ndarray,
    fits: _Fits,
    reps: range,
    seeds: Sequence[np.random.SeedSequence],
) -> pd.DataFrame:
    """Draw replications ``reps`` and fit every method with ``estimate`` (one process)."""
    shares = draw_shares(world, effect, seeds)
    rows = []
    with warnings.catch_warnings():
        # per-replication estimator warnings (e.g. a singular pre-test) would flood the output
        warnings.simplefilter("ignore")
        for r, y in zip(reps, shares, strict=True):
            rows += [out for _, _, out in fits.run(to_panel(world, y), r)]
    return pd.concat(rows, ignore_index=True)


def _tidy_estimates(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The replications' rows in one frame, by method and replication (event time NA on the
    overall rows)."""
    estimates = pd.concat(frames, ignore_index=True)
    estimates["event_time"] = estimates["event_time"].astype("Int64")
    estimates.loc[estimates["term"] == "overall", "event_time"] = pd.NA
    return estimates.sort_values(["method", "rep"], kind="stable", ignore_index=True)


def _summarise(estimates: pd.DataFrame, truth: pd.DataFrame, alpha: float) -> pd.DataFrame:
    es = estimates[estimates["term"] == "event_time"]
    if "truth" not in es.columns:  # one truth for all replications (a fixed calendar)
        es = es.merge(truth[["event_time", "truth"]], on="event_time", how="left")
    ok = np.isfinite(es["estimate"]) & np.isfinite(es["se"])
    es = es[ok].assign(
        error=lambda d: d["estimate"] - d["truth"],
        covered=lambda d: (d["ci_lower"] <= d["truth"]) & (d["truth"] <= d["ci_upper"]),
        rejected=lambda d: d["p_value"] < alpha,
    )
    grouped = es.groupby(["method", "event_time"], sort=False)
    out = grouped.agg(
        truth=("truth", "first"),
        mean_estimate=("estimate", "mean"),
        sd_estimate=("estimate", "std"),
        mean_se=("se", "mean"),
        coverage=("covered", "mean"),
        power=("rejected", "mean"),
        n_reps=("estimate", "size"),
        mse=("error", lambda e: float(np.mean(np.square(e)))),
    ).reset_index()
    out["bias"] = out["mean_estimate"] - out["truth"]
    out["rmse"] = np.sqrt(out.pop("mse"))
    out["coverage_mc_se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["n_reps"])
    columns = ["method", "event_time", "bias", "rmse", "coverage", "power", "truth",
               "mean_estimate", "sd_estimate", "mean_se", "coverage_mc_se", "n_reps"]  # fmt: skip
    return out[columns].sort_values(["method", "event_time"], kind="stable", ignore_index=True)


def _describe(effect: EffectPath) -> str:
    if isinstance(effect, str | int | float):
        return str(effect)
    if isinstance(effect, pd.DataFrame | pd.Series):
        return "table"
    return getattr(effect, "__name__", "callable")


def _apply_design(
    world: SeriesWorld,
    design: str | EvaluationDesign,
    methods: Sequence[str],
    options: dict[str, dict[str, Any]],
) -> tuple[SeriesWorld, list[int] | None, str]:
    """(world as the design observes it, evaluated cohorts or None for all, design name); sets
    CS's control and cohorts in ``options`` from the design."""
    evaluated = None
    if isinstance(design, str) and design == "isf":
        design = isf_design()
    if isinstance(design, EvaluationDesign):
        world = design_world(world, design)
        evaluated = _evaluated_cohorts(world, design)
        restricted = set(evaluated) != set(np.unique(world.cohort[world.cohort > 0]).tolist())
        others = [m for m in methods if m != "cs"]
        if restricted and others:
            raise ValueError(
                f"design {design.name!r} evaluates cohorts {evaluated} only, with later joiners "
                f"as not-yet-treated comparisons; only method 'cs' restricts its event study to "
                f"the evaluated cohorts (option cohorts), not {others}"
            )
        if "cs" in options:
            options["cs"].setdefault("control", design.control)
            if restricted:
                options["cs"].setdefault("cohorts", evaluated)
        design_name = design.name
    elif design == "full":
        design_name = "full"
    else:
        raise ValueError(f"design must be 'full', 'isf' or an EvaluationDesign, got {design!r}")
    return world, evaluated, design_name


def _simulate_fixed(
    world: SeriesWorld,
    tau: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    methods: Sequence[str],
    options: Mapping[str, Mapping],
    alpha: float,
    chunks: list[range],
    n_jobs: int | None,
    progress: bool,
    label: str,
) -> tuple[pd.DataFrame, int, list[str]]:
    """Every replication's estimates on the world's own calendar: (estimates, processes used,
    methods fitted by :class:`CSBatch`); the rest are fitted with ``estimate`` in chunks."""
    reps = sum(len(c) for c in chunks)
    batched = [m for m in methods if cs_batch_applies(m, options[m])]
    generic = [m for m in methods if m not in batched]
    frames = []
    if batched:
        cs = CSBatch(world.cohort, world.years, options["cs"].get("window"),
                     control=options["cs"].get("control", "never"),
                     cohorts=options["cs"].get("cohorts"))  # fmt: skip
        for reps_chunk in chunks:
            y = draw_shares(world, tau, seeds[reps_chunk.start : reps_chunk.stop])
            fit = cs.fit(y)
            if reps_chunk.start == 0:
                _check_parity(cs, fit, to_panel(world, y[0]), options["cs"])
            frames.append(_batch_rows(fit, cs, reps_chunk, alpha))
    jobs = 1
    if generic:
        jobs = _workers(n_jobs, reps * len(generic))
        fits = _Fits(generic, options, alpha)
        tasks = [(world, tau, fits, c, seeds[c.start : c.stop]) for c in chunks]
        frames += run_chunks(_simulate_chunk, tasks, [len(c) for c in chunks], jobs, progress,
                             label)  # fmt: skip
    estimates = _tidy_estimates(frames)
    return estimates, jobs, batched


def _check_simulation_counts(reps: Any, seed: Any) -> None:
    """``reps`` a whole number of at least 2, ``seed`` a non-negative integer."""
    check_count("reps", reps)
    check_seed(seed)
    if reps < 2:
        raise ValueError(f"reps must be at least 2, got {reps}")


def simulate(
    methods: Sequence[str] = DEFAULT_POWER_METHODS,
    reps: int = 200,
    seed: int = 1,
    population: str = "alla",
    outcome: str = "sjukpenning",
    effect: EffectPath = "truth",
    *,
    design: str | EvaluationDesign = "full",
    world_seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    chunk_size: int = 20,
    calendar: str = "known",
    calendar_draws: int = 20,
    calendar_sampler: CalendarSampler | None = None,
    calendar_intervals: pd.DataFrame | None = None,
    calendar_imputation: str = "prior",
    calendar_imputation_options: Mapping[str, Any] | None = None,
    calendar_variance: str = "rubin",
    calendar_variance_options: Mapping[str, Any] | None = None,
    assignment: str = "fixed",
) -> SimulationResult:
    """Monte Carlo bias, RMSE, coverage and power of event-study estimators.

    Parameters
    ----------
    methods
        Estimator keys of ``finsam_eval.estimate``.
    reps
        Replications.
    seed
        Seed of the noise; replication ``r`` uses ``SeedSequence(seed).spawn(reps)[r]``, so
        results are identical for any ``n_jobs`` and ``chunk_size``.
    population, outcome
        The series (one population × outcome of the ISF design).
    effect
        The effect path (``finsam_eval.synthetic.montecarlo.effect_matrix``): "truth" (the
        synthetic truth), a number (0 is the null), a table event_time → att, or a callable
        ``(cohort, event_time) -> pp``.
    design
        "full" (290 kommuner, 1998–2018, every cohort, options as given), "isf"
        (:func:`finsam_eval.design.isf_design`) or an
        :class:`~finsam_eval.design.EvaluationDesign`. A design restricts the world
        (:func:`design_world`), and CS gets the design's ``control`` and evaluated
        ``cohorts`` (unless ``method_options`` set them); the truth averages the evaluated
        cohorts only. Only CS can restrict its event study to the evaluated cohorts, so a
        design whose evaluated cohorts are not all cohorts of the world takes ``cs`` only.
    world_seed
        Seed of the fixed world (sizes, calendar, levels); the default is the bundled data.
    alpha
        Level of the intervals and tests.
    method_options
        Extra ``estimate`` options per method, over :data:`DEFAULT_METHOD_OPTIONS`.
    n_jobs
        Processes; None uses 2 when there are at least 100 per-replication fits.
    progress
        Show a tqdm progress bar.
    chunk_size
        Replications per task.
    calendar
        "known" (default): the analyst knows the world's adoption calendar. "intervals": only
        the documented intervals (:func:`_simulate_intervals`): each replication draws its true
        calendar from ``calendar_sampler`` and the data on it; the analyst pools
        ``calendar_draws`` other compatible calendars with ``estimate_over_calendars``.
    calendar_draws
        Calendars M the analyst pools per replication (``calendar="intervals"``).
    calendar_sampler
        ``(n, seed) -> DataFrame[draw, kommun_kod, cohort]``; None uses
        ``finsam_eval.registry.compatible_calendars``.
    calendar_intervals
        ``kommun_kod``, ``earliest``, ``latest`` (0/0 = no documented membership) for the
        midpoint calendar; None uses ``finsam_eval.registry.calendar_model().kommuner``.
    calendar_imputation, calendar_imputation_options
        "prior" (default): the sampler's draws, from the documented facts alone. "outcome":
        draws from the posterior given the facts and the outcomes, one chain of
        :func:`finsam_eval.estimators.calendars.augment_calendars` per sampler draw, shared by
        every method (options ``iterations``, ``swaps``, ``horizon``, ``shift_steps``).
    calendar_variance, calendar_variance_options
        "rubin" (default). "bootstrap" (method "cs", outcome imputation): also the analysis
        "cs_pooled_bootstrap", the pooled estimate with the bootstrap SE of
        :mod:`finsam_eval.estimators.calendar_bootstrap` (options ``replications``,
        ``chains``; the seed is a stream per replication).
    assignment
        "fixed" (default): every replication keeps the world's calendar. "random": every
        replication also redraws which kommun joins when (:func:`_simulate_assignment`):
        cohorts are drawn independently per kommun with the world's cohort frequencies, so
        cohort shares are random as Callaway & Sant'Anna's variance assumes, and every
        method is scored against its own estimand (column ``estimand`` of the summary).
        ``design="full"`` and ``calendar="known"`` only.

    Returns
    -------
    SimulationResult
    """
    _check_simulation_counts(reps, seed)
    if assignment != "fixed" and calendar != "known":
        raise ValueError(f"assignment={assignment!r} needs calendar='known', got {calendar!r}")
    methods = list(dict.fromkeys(methods))
    options = _method_options(methods, method_options)
    world = series_world(population, outcome, world_seed)
    world, evaluated, design_name = _apply_design(world, design, methods, options)
    if calendar == "intervals":
        return _simulate_intervals(
            world, effect, methods, options, reps, seed, alpha, design_name, calendar_draws,
            calendar_sampler, calendar_intervals, calendar_imputation,
            dict(calendar_imputation_options or {}), calendar_variance,
            calendar_variance_options,
            info={"population": population, "outcome": outcome, "world_seed": world_seed},
        )  # fmt: skip
    if calendar != "known":
        raise ValueError(f"calendar must be 'known' or 'intervals', got {calendar!r}")
    _refuse_interval_options(calendar_imputation, calendar_imputation_options, calendar_variance,
                             calendar_variance_options)  # fmt: skip
    if assignment not in ("fixed", "random"):
        raise ValueError(f"assignment must be 'fixed' or 'random', got {assignment!r}")
    if assignment == "random":
        if design_name != "full":
            raise ValueError(f"assignment='random' needs design='full', got {design_name!r}")
        return _simulate_assignment(
            world, effect, methods, options, reps, seed, alpha, n_jobs, progress, chunk_size,
            info={"population": population, "outcome": outcome, "world_seed": world_seed},
        )  # fmt: skip
    tau = effect_matrix(world, effect)
    truth = true_event_study(world, tau, cohorts=evaluated)
    seeds = replication_seeds(seed, reps)
    estimates, jobs, batched = _simulate_fixed(
        world, tau, seeds, methods, options, alpha, _chunks(reps, chunk_size), n_jobs, progress,
        f"simulate {population}/{outcome}",
    )  # fmt: skip
    summary = _summarise(estimates, truth, alpha)
    info = {
        "population": population,
        "outcome": outcome,
        "calendar": "known",
        "design": design_name,
        "reps": reps,
        "seed": seed,
        "world_seed": world_seed,
        "alpha": alpha,
        "effect": _describe(effect),
        "n_kommuner": world.n_kommuner,
        "n_years": len(world.years),
        "n_jobs": jobs,
        "batched": batched,
        "method_options": options,
    }
    return SimulationResult(summary=summary, estimates=estimates, truth=truth, info=info)


# ----------------------------------------------------------------------------------------------
# random assignment: the cohort shares vary across replications


#: Methods whose intervals include the sampling variance of the estimated cohort shares, so
#: that their estimand weights cohorts by their *expected* (population) shares: CS's
#: aggregation influence function (R did's ``wif``; Callaway & Sant'Anna 2021, Thm 2 and
#: Appendix) and Sun & Abraham's share term (eventstudyinteract), unless switched off.
def _expected_share_estimand(method: str, options: Mapping[str, Any]) -> bool:
    if method == "cs":
        return True
    return method == "sa" and bool(options.get("share_uncertainty", True))


def _cohort_paths(world: SeriesWorld, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cohort values (0 first) and each cohort's mean effect per year, shape (cohorts, years)."""
    values = np.unique(world.cohort)
    index = np.searchsorted(values, world.cohort)
    counts = np.bincount(index, minlength=len(values)).astype(float)
    sums = np.zeros((len(values), tau.shape[1]))
    np.add.at(sums, index, tau)
    return values, sums / counts[:, None]


def _assignment_chunk(
    world: SeriesWorld,
    values: np.ndarray,
    probs: np.ndarray,
    paths: np.ndarray,
    expected: pd.Series,
    fits: _Fits,
    reps: range,
    seeds: Sequence[np.random.SeedSequence],
) -> pd.DataFrame:
    """Replications ``reps`` with a redrawn calendar each; rows carry each method's truth."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-replication estimator warnings
        for r, ss in zip(reps, seeds, strict=True):
            assign_ss, noise_ss = ss.spawn(2)
            drawn = np.random.default_rng(assign_ss).choice(
                len(values), size=world.n_kommuner, p=probs
            )
            world_r = replace(world, cohort=values[drawn])
            tau = paths[drawn]  # cohort 0 has a zero path
            y = draw_shares(world_r, tau, [noise_ss])[0]
            panel = to_panel(world_r, y)
            realised = true_event_study(world_r, tau).set_index("event_time")["truth"]
            for method, res, out in fits.run(panel, r):
                times = out["event_time"]
                if _expected_share_estimand(method, fits.options[method]):
                    truth, estimand = times.map(expected), "expected_shares"
                elif method == "stacked":
                    kept = np.unique(res.sub_experiments["cohort"].to_numpy(int))
                    trimmed = true_event_study(world_r, tau, cohorts=kept)
                    truth = times.map(trimmed.set_index("event_time")["truth"])
                    estimand = "realised_shares_kept_cohorts"
                else:
                    truth, estimand = times.map(realised), "realised_shares"
                rows.append(out.assign(truth=truth.to_numpy(float), estimand=estimand))
    return pd.concat(rows, ignore_index=True)


def _simulate_assignment(
    world: SeriesWorld,
    effect: EffectPath,
    methods: list[str],
    options: dict[str, dict[str, Any]],
    reps: int,
    seed: int,
    alpha: float,
    n_jobs: int | None,
    progress: bool,
    chunk_size: int,
    info: dict[str, Any],
) -> SimulationResult:
    """Coverage when the adoption calendar is itself random (``assignment="random"``).

    Replication :math:`r` draws every kommun's cohort independently from the world's cohort
    frequencies :math:`p_g = n_g / N` (never-treated included), gives cohort :math:`g` the
    effect path :math:`\\tau_g(t)`, the mean over the world's cohort-:math:`g` kommuner of the
    effect (for ``effect="truth"`` the synthetic truth's cohort-specific path; numbers,
    tables and callables already depend on cohort and event time only), and draws new noise.
    Each method is held to its own estimand:

    - CS, and Sun & Abraham with ``share_uncertainty``: :math:`\\theta^*(e) = \\sum_g p_g
      \\tau_g(g+e) / \\sum_g p_g` over cohorts observed at :math:`e`. Their variances include
      the estimated cohort shares, i.e. they treat units as i.i.d. draws of (outcomes,
      cohort) and target the population-share ATT (Callaway & Sant'Anna 2021, Thm 2; R did's
      ``wif``), which a Monte Carlo with a fixed calendar never redraws.
    - stacked: the realised-share ATT over the cohorts it kept (Wing et al. 2024's trimmed
      aggregate), read from ``result.sub_experiments``.
    - every other method: the realised-share ATT
      :func:`~finsam_eval.synthetic.montecarlo.true_event_study` of the drawn calendar
      (their variances condition on the cohorts).

    Replication :math:`r` uses ``SeedSequence(seed).spawn(reps)[r].spawn(2)`` (assignment,
    noise), so results do not depend on ``n_jobs`` or ``chunk_size``.
    """
    tau0 = effect_matrix(world, effect)
    values, paths = _cohort_paths(world, tau0)
    counts = np.array([(world.cohort == g).sum() for g in values], dtype=float)
    probs = counts / counts.sum()
    paths[values == 0] = 0.0
    # the world's own calendar has shares p_g exactly, so its cohort-mean truth is theta*
    expected_frame = true_event_study(world, paths[np.searchsorted(values, world.cohort)])
    expected = expected_frame.set_index("event_time")["truth"]
    seeds = replication_seeds(seed, reps)
    chunks = _chunks(reps, chunk_size)
    jobs = _workers(n_jobs, reps * len(methods))
    fits = _Fits(methods, options, alpha)
    tasks = [(world, values, probs, paths, expected, fits, c, seeds[c.start : c.stop])
             for c in chunks]  # fmt: skip
    label = f"simulate {info['population']}/{info['outcome']} (random assignment)"
    frames = run_chunks(_assignment_chunk, tasks, [len(c) for c in chunks], jobs, progress, label)
    estimates = _tidy_estimates(frames)
    summary = _summarise(estimates, expected_frame, alpha)
    # the truth varies by replication (realised shares): bias is the mean error and truth the
    # mean truth; sd_error is the spread of estimate - truth, the SE's target
    es = estimates[(estimates["term"] == "event_time") & np.isfinite(estimates["estimate"])
                   & np.isfinite(estimates["se"])]  # fmt: skip
    errors = es.assign(error=es["estimate"] - es["truth"]).groupby(["method", "event_time"])
    by_cell = pd.DataFrame(
        {
            "truth": errors["truth"].mean(),
            "bias": errors["error"].mean(),
            "sd_error": errors["error"].std(),
            "estimand": errors["estimand"].first(),
        }
    )
    keys = pd.MultiIndex.from_frame(summary[["method", "event_time"]].astype({"event_time": int}))
    by_cell.index = by_cell.index.set_levels(by_cell.index.levels[1].astype(int), level=1)
    for column in by_cell.columns:
        summary[column] = by_cell[column].reindex(keys).to_numpy()
    info = {
        **info,
        "calendar": "known",
        "assignment": "random",
        "design": "full",
        "reps": reps,
        "seed": seed,
        "alpha": alpha,
        "effect": _describe(effect),
        "n_kommuner": world.n_kommuner,
        "n_years": len(world.years),
        "n_jobs": jobs,
        "cohort_probabilities": dict(zip(values.tolist(), probs.tolist(), strict=True)),
        "method_options": options,
    }
    return SimulationResult(summary=summary, estimates=estimates, truth=expected_frame, info=info)


# ----------------------------------------------------------------------------------------------
# unknown adoption years: the analyst sees only the documented intervals

#: Analyses compared by ``simulate(calendar="intervals")``, per method: its results' ``method``
#: is the estimator's key and the analysis, e.g. "cs_pooled", "imputation_known".
CALENDAR_ANALYSES = {
    "pooled": "Rubin-pooled over calendar_draws compatible calendars (estimate_over_calendars)",
    "single_draw": "one compatible calendar taken as if it were the truth",
    "midpoint": "interval midpoints rounded (half to even), counts not enforced",
    "known": "the true calendar (the oracle, for reference)",
    "pooled_bootstrap": "the pooled estimate with the wild bootstrap SE of the whole procedure "
    "(calendar_variance='bootstrap')",
}


def _refuse_interval_options(
    imputation: str, imputation_options: Any, variance: str, variance_options: Any
) -> None:
    """Raise if options that only calendar="intervals" uses are set with calendar="known"."""
    given = {
        "calendar_imputation": (imputation, "prior"),
        "calendar_imputation_options": (imputation_options, None),
        "calendar_variance": (variance, "rubin"),
        "calendar_variance_options": (variance_options, None),
    }
    named = [f"{k}={v!r}" for k, (v, default) in given.items() if v != default and (v or default)]
    if named:
        raise ValueError(
            f"{', '.join(named)} apply only to calendar='intervals'; with calendar='known' the "
            "analyst has the true calendar"
        )


def _calendar_matrix(calendars: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
    """Cohorts (draws × kommuner in ``codes`` order) from a long calendar frame."""
    wide = calendars.pivot(index="draw", columns="kommun_kod", values="cohort")
    missing = [c for c in codes if c not in wide.columns]
    if missing:
        raise ValueError(f"the calendar sampler gives no cohort for kommuner {missing[:10]}")
    values = wide.reindex(columns=codes).to_numpy()
    if np.isnan(values.astype(float)).any():
        raise ValueError("the calendar sampler left kommuner without a cohort in some draws")
    return values.astype(int)


def _midpoint_calendar(intervals: pd.DataFrame, codes: np.ndarray) -> np.ndarray:
    """Interval midpoints, rounded half to even; 0 where no membership is documented."""
    table = intervals.set_index("kommun_kod").reindex(codes)
    if table[["earliest", "latest"]].isna().any().any():
        lacking = table.index[table["earliest"].isna()].tolist()
        raise ValueError(f"calendar_intervals lack kommuner {lacking[:10]}")
    lo = table["earliest"].to_numpy(dtype=float)
    hi = table["latest"].to_numpy(dtype=float)
    return np.where(lo > 0, np.round((lo + hi) / 2), 0).astype(int)


def _path_table(world: SeriesWorld, effect: EffectPath) -> EffectPath:
    """An effect path that applies to any calendar ("truth" -> its event-time path)."""
    if not (isinstance(effect, str) and effect == "truth"):
        return effect
    path = true_event_study(world, world.effect)
    path = path[path["event_time"] >= 0]
    return pd.DataFrame({"event_time": path["event_time"], "att": path["truth"]})


def _variant_rows(
    r: int, variants: Mapping[str, tuple], grid: np.ndarray, truth_grid: np.ndarray, z: float
) -> list[pd.DataFrame]:
    """Replication ``r``'s rows per analysis: (estimate, se) on the event-time grid get normal
    intervals and p-values; (estimate, se, lower, upper, p) are taken as they are."""
    rows = []
    for name, values in variants.items():
        e = np.ravel(values[0])
        s = np.ravel(values[1])
        if len(values) == 2:
            lo, hi = e - z * s, e + z * s
            with np.errstate(divide="ignore", invalid="ignore"):
                p = 2 * norm_sf(np.abs(e / s))
        else:
            lo, hi, p = values[2], values[3], values[4]
        ok = np.isfinite(e)
        rows.append(
            pd.DataFrame(
                {
                    "rep": r,
                    "method": name,
                    "term": "event_time",
                    "event_time": grid[ok],
                    "estimate": e[ok],
                    "se": s[ok],
                    "ci_lower": np.asarray(lo)[ok],
                    "ci_upper": np.asarray(hi)[ok],
                    "p_value": np.asarray(p)[ok],
                    "truth": truth_grid[ok],
                }
            )
        )
    return rows


def _interval_calendars(
    world: SeriesWorld,
    sampler: CalendarSampler | None,
    intervals: pd.DataFrame | None,
    reps: int,
    n_draws: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(analyst's raw draws (reps, M, n), true calendars (reps, n), analyst's calendars inside
    the panel (reps, M, n), interval midpoints (n)) from one sampler call with ``seed``; a
    join after the panel's last year is "never" inside it."""
    if sampler is None or intervals is None:
        from finsam_eval.registry import calendar_model, compatible_calendars

        sampler = sampler or compatible_calendars
        if intervals is None:
            intervals = calendar_model().kommuner[["kommun_kod", "earliest", "latest"]]
    if world.n_kommuner != len(np.unique(world.codes)):
        raise ValueError("the world's kommun codes are not unique")
    matrix = _calendar_matrix(sampler(reps * (n_draws + 1), seed), world.codes)
    if matrix.shape[0] != reps * (n_draws + 1):
        raise ValueError(
            f"the sampler returned {matrix.shape[0]} draws, not {reps * (n_draws + 1)}"
        )
    last = int(world.years.max())
    # the chains need the documented calendars (joins after the panel included)
    raw_analyst = matrix[reps:].reshape(reps, n_draws, -1).copy()
    matrix = np.where(matrix > last, 0, matrix)  # joining after the panel: untreated inside it
    true_cal = matrix[:reps]
    analyst = matrix[reps:].reshape(reps, n_draws, -1)
    midpoint = np.where(_midpoint_calendar(intervals, world.codes) > last, 0,
                        _midpoint_calendar(intervals, world.codes))  # fmt: skip
    return raw_analyst, true_cal, analyst, midpoint


def _simulate_intervals(
    world: SeriesWorld,
    effect: EffectPath,
    methods: list[str],
    options: dict[str, dict[str, Any]],
    reps: int,
    seed: int,
    alpha: float,
    design_name: str,
    n_draws: int,
    sampler: CalendarSampler | None,
    intervals: pd.DataFrame | None,
    imputation: str,
    imputation_options: dict[str, Any],
    variance: str,
    variance_options: Mapping[str, Any] | None,
    info: dict[str, Any],
) -> SimulationResult:
    """Coverage when the adoption years are known only as documented intervals.

    Replication :math:`r`: the true calendar :math:`c_r` is a draw of the sampler; the shares
    are drawn with the effect path on :math:`c_r` (the world's sizes and levels, new noise);
    the analyst, who sees only the intervals, draws :math:`M` compatible calendars (moved to
    the posterior given the outcomes with ``imputation="outcome"``, once for all methods) and
    pools each method's event studies with Rubin's rules (``estimate_over_calendars``; CS on a
    batched path, checked against it on the first replication). The same data are also
    analysed with the analyst's first draw alone (single draw), with the interval midpoints,
    and with the true calendar. The truth :math:`\\theta_r(e)` averages the path over
    :math:`c_r`'s cohorts as :func:`~finsam_eval.synthetic.montecarlo.true_event_study`.
    ``effect="truth"`` becomes the synthetic truth's event-time path, the same for every
    cohort (the cohort-specific truth is tied to the world's own calendar). All
    ``reps × (M + 1)`` calendars come from one sampler call with ``seed``; true and analyst
    calendars are disjoint draws.
    """
    if n_draws < 2:
        raise ValueError(f"calendar_draws must be at least 2, got {n_draws}")
    check_imputation(imputation, imputation_options, prefix="calendar_")
    boot_options = check_variance(variance, variance_options, imputation)
    if variance == "bootstrap" and methods != ["cs"]:
        raise ValueError(f"calendar_variance='bootstrap' is simulated for 'cs' only, not {methods}")
    evaluated = {m: options[m].get("cohorts") for m in methods}
    if len({repr(c) for c in evaluated.values()}) > 1:
        raise ValueError(
            "calendar='intervals' scores every method against one truth: give the methods the "
            f"same cohorts option, got {evaluated}"
        )
    raw_analyst, true_cal, analyst, midpoint = _interval_calendars(
        world, sampler, intervals, reps, n_draws, seed
    )
    last = int(world.years.max())
    path = _path_table(world, effect)
    n_t = len(world.years)
    grid = np.arange(-(n_t - 1), n_t)  # every possible event time
    fitters = {m: _calendar_fitter(m, options[m], world, grid, midpoint, alpha) for m in methods}
    seeds = replication_seeds(seed, reps)
    z = norm_ppf(1 - alpha / 2)
    counts = model = None
    if imputation == "outcome":
        from finsam_eval.registry import calendar_model

        model = calendar_model()
        # the chains may move the yearly counts only when they hold every kommun of the model
        if set(model.kommuner["kommun_kod"].tolist()) <= set(world.codes.tolist()):
            counts = count_constraints(model)
    rows, truths = [], []
    for r in range(reps):
        world_r = replace(world, cohort=true_cal[r])
        tau = effect_matrix(world_r, path)
        y = draw_shares(world_r, tau, seeds[r : r + 1])
        truth = true_event_study(world_r, tau, cohorts=options[methods[0]].get("cohorts"))
        truth_grid = truth.set_index("event_time")["truth"].reindex(grid).to_numpy()
        truths.append(truth.assign(rep=r))
        if imputation == "outcome":
            # proper imputation: the analyst's chains start at the prior draws and move
            # towards calendars that explain the outcomes (replication-specific stream)
            units = join_units(raw_analyst[r], model, world.codes)
            imputed, state = augment_with_state(
                y[0], world.years, raw_analyst[r], *units, **imputation_options,
                rng=np.random.default_rng([seed, r, 1]), counts=counts,
            )  # fmt: skip
            analyst[r] = np.where(imputed > last, 0, imputed)
        bootstrap = None
        if variance == "bootstrap":

            def bootstrap(pool, r=r, y=y, units=units, imputed=imputed, state=state):
                return calendar_bootstrap(
                    y[0], world.years, raw_analyst[r], units, imputed, state, pool, grid,
                    replications=boot_options["replications"], chains=boot_options["chains"],
                    rng=np.random.default_rng([seed, r, 2]), counts=counts,
                    chain_options=imputation_options,
                )  # fmt: skip

        for method in methods:
            variants = fitters[method](
                world_r, y, analyst[r], true_cal[r], check=r == 0, bootstrap=bootstrap
            )
            rows += _variant_rows(r, variants, grid, truth_grid, z)
    estimates = pd.concat(rows, ignore_index=True)
    estimates["event_time"] = estimates["event_time"].astype("Int64")
    estimates = estimates.sort_values(["method", "rep"], kind="stable", ignore_index=True)
    truth_all = pd.concat(truths, ignore_index=True)
    truth = truth_all.groupby("event_time", as_index=False).agg(
        truth=("truth", "mean"), n_kommuner_total=("n_kommuner_total", "mean")
    )
    summary = _summarise(estimates, truth, alpha)
    info = {
        **info,
        "calendar": "intervals",
        "calendar_draws": n_draws,
        "calendar_imputation": imputation,
        "calendar_imputation_options": imputation_options,
        "calendar_variance": variance,
        "calendar_variance_options": boot_options,
        "analyses": {
            f"{m}_{k}": text
            for m in methods
            for k, text in CALENDAR_ANALYSES.items()
            if k != "pooled_bootstrap" or variance == "bootstrap"
        },
        "design": design_name,
        "reps": reps,
        "seed": seed,
        "alpha": alpha,
        "effect": _describe(effect) + (" (event-time path, all cohorts)"
                                       if isinstance(effect, str) else ""),
        "n_kommuner": world.n_kommuner,
        "n_years": n_t,
        "n_jobs": 1,
        "batched": ["cs"] if "cs" in methods else [],
        "method_options": {m: options[m] for m in methods},
        "truth_by_rep": truth_all,
    }  # fmt: skip
    return SimulationResult(summary=summary, estimates=estimates, truth=truth, info=info)


def _calendar_fitter(
    method: str,
    options: dict[str, Any],
    world: SeriesWorld,
    grid: np.ndarray,
    midpoint: np.ndarray,
    alpha: float,
) -> Callable[..., dict[str, tuple]]:
    """``fit(world_r, y, analyst, true_cohorts, check, bootstrap) -> {analysis: values}``.

    CS is batched (:class:`CSBatch`, the CS event study of every calendar from one prepared
    design; checked against ``estimate_over_calendars`` when ``check``); every other method
    pools through ``estimate_over_calendars`` itself and takes its single-draw, midpoint and
    true-calendar intervals from ``estimate`` (t intervals where the estimator has a t df).
    ``bootstrap`` (CS only: ``pool -> CalendarBootstrap``) adds the pooled estimate with the
    bootstrap SE.
    """
    if method == "cs":
        return _cs_calendar_fitter(options, world, grid, midpoint, alpha)

    def on_grid(table: pd.DataFrame) -> tuple[np.ndarray, ...]:
        table = table.set_index("event_time").reindex(grid)
        return tuple(table[c].to_numpy(dtype=float)
                     for c in ("estimate", "se", "ci_lower", "ci_upper", "p_value"))  # fmt: skip

    def one(world_c: SeriesWorld, y: np.ndarray) -> tuple[np.ndarray, ...]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return on_grid(estimate(to_panel(world_c, y[0]), method=method, **options).event_study)

    def fit(world_r, y, analyst, true_cohorts, check=False, bootstrap=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # partial event times: reported in n_draws
            pooled = estimate_over_calendars(
                to_panel(world_r, y[0]), _calendar_frame(world.codes, analyst), method=method,
                **options,
            )  # fmt: skip
        return {
            f"{method}_pooled": on_grid(pooled.event_study),
            f"{method}_single_draw": one(replace(world_r, cohort=analyst[0]), y),
            f"{method}_midpoint": one(replace(world_r, cohort=midpoint), y),
            f"{method}_known": one(replace(world_r, cohort=true_cohorts), y),
        }

    return fit


def _cs_calendar_fitter(
    options: dict[str, Any],
    world: SeriesWorld,
    grid: np.ndarray,
    midpoint: np.ndarray,
    alpha: float,
) -> Callable[..., dict[str, tuple]]:
    """The batched CS analyses of :func:`_calendar_fitter`."""
    window = options.get("window")
    control = options.get("control", "never")
    cohorts = options.get("cohorts")

    def batch(cohort: np.ndarray) -> CSBatch:
        present = set(np.unique(cohort[cohort > world.years[0]]).tolist())
        chosen = None if cohorts is None else sorted(present & set(cohorts))
        return CSBatch(cohort, world.years, window, control=control, cohorts=chosen)

    def on_grid(cs: CSBatch, fit: dict) -> tuple[np.ndarray, np.ndarray]:
        est = np.full((fit["estimate"].shape[0], len(grid)), np.nan)
        se = est.copy()
        idx = np.searchsorted(grid, cs.event_times)
        est[:, idx], se[:, idx] = fit["estimate"], fit["se"]
        return est, se

    mid_cs = batch(midpoint)

    last = int(world.years.max())

    def pool(y_star: np.ndarray, cohorts: np.ndarray) -> np.ndarray:
        """CS event-study estimates (C, grid) of every calendar on one outcome array."""
        cohorts = np.where(cohorts > last, 0, cohorts)
        return np.vstack([on_grid(cs, cs.fit(y_star[None]))[0] for cs in map(batch, cohorts)])

    def fit(world_r, y, analyst, true_cohorts, check=False, bootstrap=None):
        draws = [on_grid(cs, cs.fit(y)) for cs in (batch(c) for c in analyst)]
        est = np.vstack([d[0] for d in draws])
        se = np.vstack([d[1] for d in draws])
        pooled = rubin_pool(est, se, alpha)
        if check:
            _check_pooled_parity(world_r, y[0], analyst, options, pooled, grid)
        known_cs = batch(true_cohorts)
        variants = {
            "cs_pooled": (pooled["estimate"].to_numpy(), pooled["se"].to_numpy(),
                          pooled["ci_lower"].to_numpy(), pooled["ci_upper"].to_numpy(),
                          pooled["p_value"].to_numpy()),
            "cs_single_draw": draws[0],
            "cs_midpoint": on_grid(mid_cs, mid_cs.fit(y)),
            "cs_known": on_grid(known_cs, known_cs.fit(y)),
        }  # fmt: skip
        if bootstrap is not None:
            boot = bootstrap(pool)
            table = t_table(pooled["estimate"].to_numpy(), boot.se, boot.df, alpha)
            variants["cs_pooled_bootstrap"] = tuple(
                table[c] for c in ("estimate", "se", "ci_lower", "ci_upper", "p_value")
            )
        return variants

    return fit


def _calendar_frame(codes: np.ndarray, cohorts: np.ndarray) -> pd.DataFrame:
    """Long ``draw``, ``kommun_kod``, ``cohort`` frame of a (draws, kommuner) cohort matrix."""
    return pd.DataFrame(
        {
            "draw": np.repeat(np.arange(len(cohorts)), len(codes)),
            "kommun_kod": np.tile(codes, len(cohorts)),
            "cohort": np.asarray(cohorts).ravel(),
        }
    )


def _check_pooled_parity(
    world: SeriesWorld,
    y: np.ndarray,
    analyst: np.ndarray,
    options: Mapping,
    pooled: pd.DataFrame,
    grid: np.ndarray,
) -> None:
    """Stop unless the batched pooling equals ``estimate_over_calendars`` on replication 0."""
    calendars = _calendar_frame(world.codes, analyst)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate_over_calendars(to_panel(world, y), calendars, method="cs", **options)
    es = res.event_study.set_index("event_time")
    mine = pooled.assign(event_time=grid).dropna(subset=["estimate"]).set_index("event_time")
    gaps = [
        np.max(np.abs(es[col].to_numpy() - mine.loc[es.index, col].to_numpy()))
        for col in ("estimate", "se", "ci_lower", "between_sd")
    ]
    if not (max(gaps) < _PARITY_TOL and len(es) == len(mine)):
        raise RuntimeError(
            f"batched pooling differs from estimate_over_calendars by {max(gaps):.3g}"
        )


def _check_parity(cs: CSBatch, fit: dict, panel: pd.DataFrame, options: Mapping) -> None:
    """Stop if CSBatch differs from ``estimate(method="cs")`` on the first replication."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate(panel, method="cs", **options)
    es = res.event_study.set_index("event_time").loc[cs.event_times]
    gaps = [
        np.max(np.abs(es["estimate"].to_numpy() - fit["estimate"][0])),
        np.max(np.abs(es["se"].to_numpy() - fit["se"][0])),
        abs(float(res.overall["estimate"]) - fit["overall"][0]),
        abs(float(res.overall["se"]) - fit["overall_se"][0]),
    ]
    if not max(gaps) < _PARITY_TOL:
        raise RuntimeError(
            f"CSBatch differs from estimate(method='cs') by {max(gaps):.3g}: the CS "
            "implementation changed; update CSBatch"
        )


# ----------------------------------------------------------------------------------------------
# minimum detectable effects


def minimum_detectable_effect(
    population: str | Sequence[str] = "alla",
    outcome: str | Sequence[str] = "sjukpenning",
    method: str = "cs",
    power: float = 0.8,
    alpha: float = 0.05,
    *,
    reps: int = 500,
    seed: int = 1,
    design: str | EvaluationDesign = "isf",
    event_times: Sequence[int] | None = None,
    world_seed: int = DEFAULT_SEED,
    method_options: Mapping[str, Any] | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Minimum detectable effect per event time under the ISF design.

    .. math::

        MDE(e) = \\big(z_{1-\\alpha/2} + z_{\\text{power}}\\big)\\, SE_0(e),

    with :math:`SE_0(e)` the Monte Carlo standard deviation of the estimator over ``reps``
    replications under the null (effect 0) of :func:`simulate` with ``design="isf"``
    (:func:`finsam_eval.design.isf_design`: cohorts 2005–2010 evaluated, kommuner not yet
    members as comparisons until they join, 1998–2016; ``event_times`` None = its 0..6).
    With :math:`\\alpha = 0.05` and 80 % power the factor is 2.80 (Bloom 1995). The Monte Carlo
    SD has relative error about :math:`1/\\sqrt{2R}` (3 % at :math:`R = 500`).

    Parameters
    ----------
    population, outcome
        One name or several; all defined pairs are computed.
    method
        Estimator key.
    power, alpha
        Target power and two-sided level.

    Returns
    -------
    pandas.DataFrame
        ``population``, ``outcome``, ``event_time``, ``mde`` (percentage points), ``sd_null``
        (Monte Carlo SD), ``mean_se`` (mean analytic SE), ``mde_analytic`` (the factor times
        ``mean_se``), ``rejection_null`` (size of the test under the null), ``n_reps``.
    """
    from finsam_eval.panel.populations import is_defined

    check_alpha(alpha)
    if isinstance(power, bool) or not isinstance(power, int | float) or not 0 < power < 1:
        raise ValueError(
            f"power must be a number strictly between 0 and 1 (e.g. 0.8), got {power!r}"
        )
    if event_times is None:
        event_times = (design if isinstance(design, EvaluationDesign) else isf_design()).event_times
    populations = [population] if isinstance(population, str) else list(population)
    outcomes = [outcome] if isinstance(outcome, str) else list(outcome)
    factor = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    frames = []
    for pop in populations:
        for out in outcomes:
            if not is_defined(pop, out):
                continue
            sim = simulate([method], reps=reps, seed=seed, population=pop, outcome=out,
                           effect=0.0, design=design, world_seed=world_seed, alpha=alpha,
                           method_options={method: dict(method_options or {})}, n_jobs=n_jobs,
                           progress=progress)  # fmt: skip
            s = sim.summary[sim.summary["event_time"].isin(list(event_times))]
            frames.append(
                pd.DataFrame(
                    {
                        "population": pop,
                        "outcome": out,
                        "event_time": s["event_time"].to_numpy(int),
                        "mde": factor * s["sd_estimate"].to_numpy(),
                        "sd_null": s["sd_estimate"].to_numpy(),
                        "mean_se": s["mean_se"].to_numpy(),
                        "mde_analytic": factor * s["mean_se"].to_numpy(),
                        "rejection_null": s["power"].to_numpy(),
                        "n_reps": s["n_reps"].to_numpy(),
                    }
                )
            )
    if not frames:
        raise ValueError(f"no defined population × outcome among {populations} × {outcomes}")
    return pd.concat(frames, ignore_index=True)
