"""Randomization (permutation) inference on adoption years, and placebo adoption years.

Fisher's randomization test of the sharp null that joining a förbund changed no kommun's
outcome in any year (Fisher 1935; for staggered adoption MacKinnon & Webb 2020, Roth &
Sant'Anna 2023). Under that null the outcomes are fixed whatever the adoption calendar, so
re-assigning the observed adoption years (the unit-level cohort vector, including the
never-members' 0) to kommuner at random gives the null distribution of any statistic. With
``within="lan"`` cohorts are permuted only among the kommuner of the same län, which keeps
regional adoption patterns (förbund were often formed län by län).

For each event-study coefficient and the overall effect, with observed statistic :math:`T`
(the point estimate) and :math:`P` permutation statistics :math:`T^*_p`,

.. math::

    p = \\frac{1 + \\#\\{p : |T^*_p| \\ge |T|\\}}{1 + P},

two-sided and never below :math:`1/(1+P)`. The test is exact for the sharp null if adoption
were random (within strata); otherwise it measures how unusual the estimate is among calendars
with the same cohort sizes. Permutations whose fit fails or yields no value for an event time
are not dropped silently: they are counted in ``n_valid`` / ``n_failed``, their errors are kept
in ``info["errors"]`` and a warning is issued; the p-value then uses the valid ones.

Placebo adoption years (``placebo_shift=k``, :func:`placebo_data`): only pre-treatment data are
kept (a member kommun's rows before its real joining year; all rows of never-members) and every
member's adoption year is moved back by :math:`k` years. Effects of the fake adoption must be
zero if trends are parallel, so the placebo event study at event times :math:`0..k-1` (and its
randomization p-values) is a test of parallel trends with no real treatment in the data. The
placebo panel is unbalanced by construction and is estimated with ``unbalanced="keep"``.

Permutation ``p`` draws from ``np.random.default_rng(SeedSequence(seed).spawn(P)[p])``: results
do not depend on the number of processes. Callaway–Sant'Anna with its defaults on a balanced
panel is computed for all permutations at once (``cs_batch.CSBatch.point_estimates``: cohort sizes,
hence the aggregation weights, are unchanged by permutation), after checking that the batch
reproduces the observed fit; other methods re-fit with ``finsam_eval.estimate`` per permutation.

References
----------
Fisher, R. A. (1935). The Design of Experiments. Oliver & Boyd.
MacKinnon, J. G., & Webb, M. D. (2020). Randomization inference for difference-in-differences
with few treated clusters. Journal of Econometrics 218(2), 435–450.
Roth, J., & Sant'Anna, P. H. C. (2023). Efficient estimation for staggered rollout designs.
Journal of Political Economy Microeconomics 1(4), 669–709.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.core.pool import run_chunks, workers
from finsam_eval.estimators.api import estimate
from finsam_eval.estimators.cs_batch import CSBatch, cs_batch_applies
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.estimators.spec import check_positive_count, check_seed

__all__ = ["RandomizationResult", "placebo_data", "randomization_inference"]

_LAN_COLUMNS = ("lan_kod", "cluster_lan")
_PARITY_TOL = 1e-8


@dataclass
class RandomizationResult:
    """Randomization inference for one event study.

    Attributes
    ----------
    table
        One row per event-study coefficient plus an "overall" row: ``term``, ``event_time``,
        ``estimate`` (observed), ``p_value`` (randomization), ``p_value_normal`` (the
        estimator's own), ``n_valid``, ``n_failed``.
    draws
        Permutation statistics, shape (P, rows of ``table``); NaN where a fit failed.
    cohorts
        The permuted unit cohort vectors, shape (P, n_units), columns in ``units`` order.
    units
        Unit identifiers.
    result
        The estimate on the observed (or placebo) data.
    info
        method, permutations, within, seed, placebo_shift, n_jobs, batched, errors (Counter
        of error messages).
    """

    table: pd.DataFrame
    draws: np.ndarray
    cohorts: np.ndarray
    units: np.ndarray
    result: EstimationResult
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        head = (
            f"Randomization inference: {self.info['method']}, {self.info['permutations']} "
            f"permutations of adoption years"
            + (f" within {self.info['within']}" if self.info["within"] else "")
        )
        return head + "\n" + self.table.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def placebo_data(
    data: pd.DataFrame,
    shift: int,
    unit: str = "kommun_kod",
    time: str = "year",
    cohort: str = "cohort",
) -> pd.DataFrame:
    """Pre-treatment data with every adoption year moved back by ``shift`` years.

    Rows of member kommuner from their real joining year on are dropped (never-members keep
    every row); cohorts become ``cohort - shift``. Members whose fake adoption year leaves no
    earlier period keep their rows but contribute no placebo comparisons.
    """
    if int(shift) != shift or shift < 1:
        raise ValueError(f"placebo shift must be a positive integer, got {shift!r}")
    g = data[cohort].fillna(0).astype(int)
    keep = (g == 0) | (data[time] < g)
    out = data.loc[keep].copy()
    member = out[cohort].fillna(0).astype(int) > 0
    out.loc[member, cohort] = out.loc[member, cohort].astype(int) - int(shift)
    return out.reset_index(drop=True)


def _observed(res: EstimationResult) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Event times and estimates of the coefficients to test (not the normalised reference)."""
    es = res.event_study
    keep = np.isfinite(es["estimate"].to_numpy(float)) & np.isfinite(es["se"].to_numpy(float))
    if "reference" in es.columns:
        keep &= ~es["reference"].astype(bool).to_numpy()
    es = es[keep]
    times = es["event_time"].to_numpy(int)
    values = np.r_[es["estimate"].to_numpy(float), float(res.overall["estimate"])]
    return times, values, es


def _statistics(res: EstimationResult, times: np.ndarray) -> np.ndarray:
    es = res.event_study.set_index("event_time")["estimate"]
    es = es[~es.index.duplicated()]
    values = es.reindex(times).to_numpy(float)
    return np.r_[values, float(res.overall["estimate"])]


def _permutation_chunk(
    data: pd.DataFrame,
    unit_codes: np.ndarray,
    cohort_col: str,
    method: str,
    options: dict,
    times: np.ndarray,
    cohorts: np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """Re-fit for permuted cohort vectors ``cohorts`` (P_chunk, n_units) in one process."""
    out = np.full((len(cohorts), len(times) + 1), np.nan)
    errors: list[str] = []
    frame = data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p, vector in enumerate(cohorts):
            frame[cohort_col] = vector[unit_codes]
            try:
                res = estimate(frame, method=method, cohort=cohort_col, **options)
            except Exception as exc:  # every failure is counted and reported, none is hidden
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            out[p] = _statistics(res, times)
    return out, errors


def _permute(
    cohort: np.ndarray, strata: np.ndarray | None, permutations: int, seed: int
) -> np.ndarray:
    """Permuted cohort vectors (P, n), within strata when given."""
    seeds = np.random.SeedSequence(seed).spawn(permutations)
    out = np.empty((permutations, len(cohort)), dtype=cohort.dtype)
    groups = [np.arange(len(cohort))] if strata is None else [
        np.flatnonzero(strata == s) for s in np.unique(strata)
    ]  # fmt: skip
    for p, ss in enumerate(seeds):
        rng = np.random.default_rng(ss)
        vector = cohort.copy()
        for members in groups:
            vector[members] = cohort[members][rng.permutation(len(members))]
        out[p] = vector
    return out


def randomization_inference(
    result: EstimationResult | pd.DataFrame,
    *legacy_args: Any,
    reps: int | None = None,
    within: str | None = None,
    seed: int = 0,
    placebo_shift: int | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    chunk_size: int = 50,
    **legacy_options: Any,
) -> RandomizationResult:
    """Randomization p-values for an event study by permuting adoption years across kommuner.

    Parameters
    ----------
    result
        A ``finsam_eval.estimate`` result of one population × outcome panel: it carries the
        data, the method and its options, re-used for every permutation. (The old call
        ``randomization_inference(data, method, permutations, ..., **estimate_options)`` warns
        and goes in the next release.)
    reps
        Number of random permutations :math:`P` (default 999: p-values on a 1/1000 grid).
    within
        None (permute across all kommuner), "lan" (within län: column ``lan_kod`` or
        ``cluster_lan``) or any column constant within unit.
    seed
        Seed of the permutations.
    placebo_shift
        If given, test placebo adoption years: :func:`placebo_data` with this shift first.
    n_jobs
        Processes for re-fitting; None uses 2 when there are at least 100 fits.
    progress
        tqdm progress bar.
    chunk_size
        Permutations per task of the process pool.

    Returns
    -------
    RandomizationResult
    """
    if isinstance(result, EstimationResult):
        if legacy_options or len(legacy_args) > 1:
            raise TypeError(
                "randomization_inference(result, reps=, within=, seed=, ...): the estimate "
                f"options come from the result, got {sorted(legacy_options) or legacy_args[1:]}"
            )
        if result.spec is None or result.data is None:
            raise ValueError("the result carries no specification and data (not from estimate)")
        options = result.spec.as_options(changed_only=True)
        columns = {k: options.pop(k, v) for k, v in zip(("unit", "time", "cohort"),
                                                          result.spec.values("unit time cohort"),
                                                          strict=True)}  # fmt: skip
        reps = legacy_args[0] if legacy_args else reps
        return _randomization(result.data, result.method, 999 if reps is None else reps, within,
                              seed, placebo_shift, n_jobs, progress, chunk_size, **columns,
                              **options)  # fmt: skip
    warnings.warn(
        "randomization_inference(data, method, permutations, ...) is deprecated; call "
        "randomization_inference(finsam_eval.estimate(data, method=...), reps=...)",
        DeprecationWarning,
        stacklevel=2,
    )
    names = ("method", "permutations", "within", "seed")
    given = dict(zip(names, legacy_args, strict=False))
    clash = sorted(set(given) & set(legacy_options))
    if clash:
        raise TypeError(f"randomization_inference got multiple values for {clash}")
    given.update(legacy_options)
    method = given.pop("method", "cs")
    permutations = given.pop("permutations", 999 if reps is None else reps)
    within = given.pop("within", within)
    seed = given.pop("seed", seed)
    return _randomization(result, method, permutations, within, seed, placebo_shift, n_jobs,
                          progress, chunk_size, **given)  # fmt: skip


def _randomization(
    data: pd.DataFrame,
    method: str,
    permutations: int,
    within: str | None,
    seed: int,
    placebo_shift: int | None,
    n_jobs: int | None,
    progress: bool,
    chunk_size: int,
    unit: str = "kommun_kod",
    time: str = "year",
    cohort: str = "cohort",
    **estimate_options: Any,
) -> RandomizationResult:
    """:func:`randomization_inference` on a panel and the ``estimate`` options of its fit."""
    check_positive_count("reps (permutations)", permutations)
    check_seed(seed)
    if within is not None and not isinstance(within, str):
        raise ValueError(f"within must be None or a column name, got {within!r}")
    options = dict(estimate_options)
    options.update(unit=unit, time=time)
    if placebo_shift is not None:
        data = placebo_data(data, placebo_shift, unit, time, cohort)
        options.setdefault("unbalanced", "keep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observed = estimate(data, method=method, cohort=cohort, **options)
    times, t_obs, es = _observed(observed)

    units, unit_codes = np.unique(data[unit].to_numpy(), return_inverse=True)
    per_unit = data.assign(_code=unit_codes).groupby("_code", sort=True)
    unit_cohort = per_unit[cohort].first().fillna(0).astype(int).to_numpy()
    if (per_unit[cohort].nunique(dropna=False) > 1).any():
        raise ValueError(f"{cohort!r} varies within {unit!r}: adoption years are per unit")
    strata = None
    if within is not None:
        column = within
        if within == "lan":
            column = next((c for c in _LAN_COLUMNS if c in data.columns), None)
            if column is None:
                raise ValueError(f"within='lan' needs one of the columns {_LAN_COLUMNS}")
        if column not in data.columns:
            raise ValueError(
                f"within={within!r}: no such column; use None, 'lan' or a column constant "
                f"within {unit!r} (columns: {list(data.columns)})"
            )
        if (per_unit[column].nunique(dropna=False) > 1).any():
            raise ValueError(f"stratum column {column!r} varies within {unit!r}")
        strata = per_unit[column].first().to_numpy()
    cohorts = _permute(unit_cohort, strata, permutations, seed)

    draws, errors, batched = _batched(data, observed, options, method, unit_codes, unit_cohort,
                                      cohorts, times, t_obs, time)  # fmt: skip
    jobs = 1
    if draws is None:
        jobs = workers(n_jobs, permutations)
        chunks = [range(i, min(i + chunk_size, permutations))
                  for i in range(0, permutations, chunk_size)]  # fmt: skip
        tasks = [(data, unit_codes, cohort, method, options, times, cohorts[c.start : c.stop])
                 for c in chunks]  # fmt: skip
        results = run_chunks(_permutation_chunk, tasks, [len(c) for c in chunks], jobs,
                             progress, f"permutations ({method})")  # fmt: skip
        draws = np.concatenate([r[0] for r in results])
        errors = [e for r in results for e in r[1]]

    valid = np.isfinite(draws)
    # ties (e.g. a permutation reproducing the observed calendar) count as exceedances
    tol = 1e-12 * np.maximum(1.0, np.abs(t_obs))
    exceed = (np.abs(draws) >= np.abs(t_obs) - tol) & valid
    n_valid = valid.sum(axis=0)
    p_value = (1 + exceed.sum(axis=0)) / (1 + n_valid)
    table = pd.DataFrame(
        {
            "term": ["event_time"] * len(times) + ["overall"],
            "event_time": pd.array([*times.tolist(), pd.NA], dtype="Int64"),
            "estimate": t_obs,
            "p_value": p_value,
            "p_value_normal": np.r_[es["p_value"].to_numpy(float),
                                    float(observed.overall.get("p_value", np.nan))],
            "n_valid": n_valid,
            "n_failed": permutations - n_valid,
        }
    )  # fmt: skip
    if (n_valid < permutations).any():
        worst = int(permutations - n_valid.min())
        warnings.warn(
            f"{worst} of {permutations} permutations gave no estimate for some coefficient "
            f"({len(errors)} fits failed; see info['errors']); their p-values use the "
            "remaining permutations (column n_valid)",
            UserWarning,
            stacklevel=2,
        )
    info = {
        "method": method,
        "permutations": permutations,
        "within": within,
        "seed": seed,
        "placebo_shift": placebo_shift,
        "n_jobs": jobs,
        "batched": batched,
        "errors": Counter(errors),
    }
    return RandomizationResult(table, draws, cohorts, units, observed, info)


def _batched(data, observed, options, method, unit_codes, unit_cohort, cohorts, times, t_obs,
             time) -> tuple[np.ndarray | None, list[str], bool]:  # fmt: skip
    """All permutations at once for CS with its defaults on a balanced panel, else None."""
    batch_options = {k: v for k, v in options.items() if k not in ("unit", "time", "outcome")}
    if not cs_batch_applies(method, batch_options):
        return None, [], False
    years = np.unique(data[time].to_numpy())
    fitted_units = observed.unit_labels
    if (
        len(data) != len(unit_cohort) * len(years)
        or fitted_units is None
        or len(fitted_units) != len(unit_cohort)
    ):
        return None, [], False
    year_codes = np.searchsorted(years, data[time].to_numpy())
    y = np.full((len(unit_cohort), len(years)), np.nan)
    y[unit_codes, year_codes] = data[options.get("outcome", "share")].to_numpy(float)
    if not np.isfinite(y).all():
        return None, [], False
    try:
        cs = CSBatch(unit_cohort, years, batch_options.get("window"))
    except ValueError:
        return None, [], False
    if not np.array_equal(cs.event_times, times):
        return None, [], False
    check = cs.point_estimates(y, unit_cohort[None])[0]
    if not np.max(np.abs(check - t_obs)) < _PARITY_TOL:
        return None, [], False
    return cs.point_estimates(y, cohorts), [], True
