"""Fast Monte Carlo redraws of one population × outcome series from the fixed synthetic world.

The synthetic generator (:mod:`finsam_eval.synthetic.generator`) draws one data set. Power
analysis and coverage checks need hundreds of data sets from the *same* design: the same
kommuner, sizes, adoption calendar and expected levels, with new noise each time. This module
collapses the generator's cells (sex × age band) into one population-level series and redraws
its noise, vectorised over replications (arrays ``reps × kommuner × years``).

Model of the population-level share of kommun :math:`k` in year :math:`t` (percent), with
cells :math:`c` (sex × age band inside the population), cell populations :math:`n_{ktc}`,
:math:`N_{kt} = \\sum_c n_{ktc}` (the panel's ``denominator``):

.. math::

    y_{kt} = \\underbrace{\\sum_c \\frac{n_{ktc}}{N_{kt}} \\mu_{ktc}}_{\\text{expected}}
      + \\tau_{kt}
      + \\underbrace{\\textstyle\\sum_c \\frac{n_{ktc}}{N_{kt}} s_c}_{\\text{shock scale}}\\, u_{kt}
      + \\sigma_{kt}\\,\\varepsilon_{kt},

- :math:`\\mu_{ktc}` the cell's untreated expected share (``WorldCell.expected``);
- :math:`\\tau_{kt}` the effect path: the generator's true effect (the population-weighted cell
  effects), zero, or a user-specified path (:func:`effect_matrix`);
- :math:`u_{kt}` a stationary AR(1) local shock, :math:`u_{kt} = \\rho u_{k,t-1} + \\eta_{kt}`,
  :math:`\\eta \\sim N(0, \\sigma_u^2)` with :math:`\\rho` = ``SHOCK_RHO``,
  :math:`\\sigma_u` = ``SHOCK_SD`` and :math:`u_{k,1998}` from the stationary distribution. In
  the generator one shock per kommun × year × outcome multiplies every cell's national level
  :math:`s_c`, so the population-level shock is exactly the weighted scale times :math:`u`;
- :math:`\\sigma_{kt}\\varepsilon_{kt}` sampling noise: the normal approximation to the sum of the
  cells' binomial counts,
  :math:`\\sigma_{kt} = 100\\sqrt{\\sum_c n_{ktc}\\,p_{ktc}(1-p_{ktc})}/N_{kt}` with
  :math:`p_{ktc} = \\mu_{ktc}/100`. This is the exact variance of the population share given
  the cell shares; it is at most the pooled :math:`100\\sqrt{p(1-p)/N}` (equal when all cells
  share one rate). It is evaluated at the untreated expected cell shares, so that every effect
  path (including the null) has the same noise: effects of a few tenths of a percentage point
  change :math:`\\sigma` by well under 5 %.

Shares are not truncated at zero: the smallest expected population-level share is several
:math:`\\sigma` above it. Replication :math:`r` uses its own ``numpy`` Generator seeded with
``np.random.SeedSequence(seed).spawn(reps)[r]`` (:func:`replication_seeds`), so a replication's
draw does not depend on how replications are batched or distributed over processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import AGE_BANDS, POPULATIONS, is_defined
from finsam_eval.synthetic.generator import (
    DEFAULT_SEED,
    SEXES,
    SHOCK_RHO,
    SHOCK_SD,
    YEARS,
    generate_synthetic,
)

__all__ = [
    "EffectPath",
    "SeriesWorld",
    "draw_shares",
    "effect_matrix",
    "replication_seeds",
    "series_world",
    "to_panel",
    "true_event_study",
]

#: An effect path: "truth" (the synthetic truth), a number (constant effect in every
#: post-joining year; 0 is the null), a table event_time → att (DataFrame with those columns, or
#: a Series indexed by event time), or a callable ``(cohort, event_time) -> pp`` on arrays.
EffectPath = (
    str | float | int | pd.DataFrame | pd.Series | Callable[[np.ndarray, np.ndarray], np.ndarray]
)

_NEVER_CLUSTER_PREFIX = "none-"  # as the panel builder labels kommuner without a förbund


@dataclass(frozen=True)
class SeriesWorld:
    """The fixed design of one population × outcome series, arrays (kommun, year).

    Attributes
    ----------
    population, outcome
        The series.
    codes, lan, forbund
        Kommun codes, län codes and förbund cluster labels (``"none-<kod>"`` without a förbund).
    cohort
        First membership year, 0 = never.
    years
        Calendar years (columns of every array).
    denominator
        Population of the series :math:`N_{kt}` (the panel's ``denominator`` and ``weight``).
    expected
        Population-weighted untreated expected share (percent), without the local shock.
    effect
        The synthetic truth's effect :math:`\\tau_{kt}` (percentage points; 0 if untreated).
    shock_scale
        Population-weighted cell levels multiplying the AR(1) shock.
    sampling_sd
        Sampling standard deviation :math:`\\sigma_{kt}` (percentage points).
    """

    population: str
    outcome: str
    codes: np.ndarray
    lan: np.ndarray
    forbund: np.ndarray
    cohort: np.ndarray
    years: np.ndarray
    denominator: np.ndarray
    expected: np.ndarray
    effect: np.ndarray
    shock_scale: np.ndarray
    sampling_sd: np.ndarray

    @property
    def n_kommuner(self) -> int:
        return len(self.codes)

    def subset(self, kommuner: np.ndarray | None = None, years: np.ndarray | None = None,
               cohort: np.ndarray | None = None) -> SeriesWorld:  # fmt: skip
        """A restricted design: a kommun mask, a year mask and/or recoded cohorts."""
        rows = np.ones(self.n_kommuner, bool) if kommuner is None else np.asarray(kommuner, bool)
        cols = np.ones(len(self.years), bool) if years is None else np.asarray(years, bool)
        grid = np.ix_(rows, cols)
        new_cohort = self.cohort if cohort is None else np.asarray(cohort)
        return replace(
            self,
            codes=self.codes[rows],
            lan=self.lan[rows],
            forbund=self.forbund[rows],
            cohort=new_cohort[rows],
            years=self.years[cols],
            denominator=self.denominator[grid],
            expected=self.expected[grid],
            effect=self.effect[grid],
            shock_scale=self.shock_scale[grid],
            sampling_sd=self.sampling_sd[grid],
        )


@cache
def _synthetic(seed: int):
    return generate_synthetic(seed)


@cache
def _series_world(population: str, outcome: str, seed: int) -> SeriesWorld:
    from finsam_eval.registry.membership import calendar_to_cohorts

    if not is_defined(population, outcome):
        raise ValueError(f"outcome {outcome!r} is not defined for population {population!r}")
    data = _synthetic(seed)
    world = data.world
    spec = POPULATIONS[population]
    bands = spec.bands()
    band_index = {band: i for i, band in enumerate(AGE_BANDS)}
    shape = world.band_pop.shape[:2]
    total = np.zeros(shape)
    expected = np.zeros(shape)
    effect = np.zeros(shape)
    scale = np.zeros(shape)
    variance = np.zeros(shape)
    for sex in spec.sex:
        for band in bands:
            n = world.band_pop[:, :, SEXES.index(sex), band_index[band]].astype(float)
            total += n
            cell = world.cells.get((outcome, sex, band))
            if cell is None:  # a cell with zero base rate (uvas outside 19-24) adds people only
                continue
            p = cell.expected / 100.0
            expected += n * cell.expected
            effect += n * cell.effect
            scale += n * cell.shock_scale
            variance += n * p * (1.0 - p)
    cohorts = calendar_to_cohorts(data.calendar).set_index("kommun_kod").reindex(world.codes)
    forbund = np.where(
        cohorts["forbund"].fillna("").to_numpy(dtype=object) == "",
        _NEVER_CLUSTER_PREFIX + world.codes.astype(str),
        cohorts["forbund"].fillna("").to_numpy(dtype=object),
    ).astype(object)
    return SeriesWorld(
        population=population,
        outcome=outcome,
        codes=world.codes.astype(object),
        lan=world.lan.astype(object),
        forbund=forbund,
        cohort=world.cohort.astype(int),
        years=YEARS.copy(),
        denominator=total,
        expected=expected / total,
        effect=effect / total,
        shock_scale=scale / total,
        sampling_sd=100.0 * np.sqrt(variance) / total,
    )


def series_world(population: str = "alla", outcome: str = "sjukpenning",
                 seed: int = DEFAULT_SEED) -> SeriesWorld:  # fmt: skip
    """The fixed design of one series, from the synthetic world generated with ``seed``.

    Sizes, calendar, levels and true effects are those of ``generate_synthetic(seed)``; the
    default seed is the bundled data set. Cached per (population, outcome, seed).
    """
    return _series_world(population, outcome, int(seed))


def effect_matrix(world: SeriesWorld, effect: EffectPath = "truth") -> np.ndarray:
    """The effect path :math:`\\tau_{kt}` (percentage points) on the world's (kommun, year) grid.

    Parameters
    ----------
    world
        The series design.
    effect
        ``"truth"``: the synthetic truth (cohort-specific, dynamic). A number: that effect in
        every year from joining on (0: the null). A DataFrame with columns ``event_time`` and
        ``att`` (or a Series indexed by event time): ``att`` at the listed event times, 0 at
        the others (values at negative event times model anticipation or trend violations). A
        callable ``f(cohort, event_time)`` evaluated on (kommun, year) arrays of treated
        kommuner. Never-treated kommuner (cohort 0) always get 0.
    """
    treated = (world.cohort > 0)[:, None]
    cohort = np.broadcast_to(world.cohort[:, None], world.expected.shape)
    event = world.years[None, :] - cohort
    if isinstance(effect, str):
        if effect != "truth":
            raise ValueError(f"effect must be 'truth', a number, a table or a callable: {effect!r}")
        return world.effect.copy()
    if isinstance(effect, int | float | np.number):
        return np.where(treated & (event >= 0), float(effect), 0.0)
    if isinstance(effect, pd.DataFrame):
        missing = {"event_time", "att"} - set(effect.columns)
        if missing:
            raise ValueError(f"effect table lacks columns {sorted(missing)}")
        effect = pd.Series(effect["att"].to_numpy(float), index=effect["event_time"].astype(int))
    if isinstance(effect, pd.Series):
        if effect.index.has_duplicates:
            raise ValueError("effect path has duplicate event times")
        path = effect.astype(float)
        values = path.reindex(event.ravel()).fillna(0.0).to_numpy().reshape(event.shape)
        return np.where(treated, values, 0.0)
    if callable(effect):
        values = np.asarray(effect(cohort, event), dtype=float)
        return np.where(treated, np.broadcast_to(values, event.shape), 0.0)
    raise TypeError(f"unsupported effect path of type {type(effect).__name__}")


def true_event_study(
    world: SeriesWorld, effect: np.ndarray, cohorts: Sequence[int] | None = None
) -> pd.DataFrame:
    """True dynamic effects of a path, aggregated as ``load_synthetic_truth("event_time")``.

    For cohort :math:`g` and event time :math:`e`, :math:`ATT(g, e)` is the mean over the
    cohort's kommuner of :math:`\\tau_{k, g+e}` (unweighted across kommuner, as
    Callaway–Sant'Anna's default); the event-time truth weights cohorts with :math:`g + e`
    inside the years by their number of kommuner:
    :math:`\\theta(e) = \\sum_g n_g ATT(g, e) / \\sum_g n_g`. ``cohorts`` limits the average
    to those cohorts (a design's evaluated cohorts); None uses every treated cohort.

    Returns
    -------
    pandas.DataFrame
        ``event_time``, ``truth``, ``n_kommuner_total``.
    """
    present = np.unique(world.cohort[world.cohort > 0])
    cohorts = present if cohorts is None else present[np.isin(present, list(cohorts))]
    weighted: dict[int, float] = {}
    counts: dict[int, int] = {}
    for g in cohorts:
        members = world.cohort == g
        att = effect[members].mean(axis=0)
        for e, value in zip((world.years - g).astype(int), att, strict=True):
            weighted[e] = weighted.get(e, 0.0) + value * members.sum()
            counts[e] = counts.get(e, 0) + int(members.sum())
    times = np.array(sorted(weighted), dtype=int)
    return pd.DataFrame(
        {
            "event_time": times,
            "truth": [weighted[e] / counts[e] for e in times],
            "n_kommuner_total": [counts[e] for e in times],
        }
    )


def replication_seeds(
    seed: int | np.random.SeedSequence, reps: int
) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per replication: ``SeedSequence(seed).spawn(reps)``."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(reps)


def draw_shares(
    world: SeriesWorld, effect: np.ndarray, seeds: Sequence[np.random.SeedSequence]
) -> np.ndarray:
    """Population-level shares for a batch of replications, shape (len(seeds), kommuner, years).

    Each replication draws, from its own Generator, the AR(1) innovations and then the sampling
    noise (two standard-normal arrays of shape (kommuner, years)); the AR(1) recursion is
    vectorised over replications and kommuner. See the module docstring for the model.
    """
    n_k, n_t = world.expected.shape
    z = np.empty((len(seeds), 2, n_k, n_t))
    for r, ss in enumerate(seeds):
        z[r] = np.random.default_rng(ss).standard_normal((2, n_k, n_t))
    shock = np.empty((len(seeds), n_k, n_t))
    shock[:, :, 0] = z[:, 0, :, 0] * SHOCK_SD / np.sqrt(1.0 - SHOCK_RHO**2)
    for j in range(1, n_t):
        shock[:, :, j] = SHOCK_RHO * shock[:, :, j - 1] + SHOCK_SD * z[:, 0, :, j]
    return (
        (world.expected + effect)[None]
        + world.shock_scale[None] * shock
        + world.sampling_sd[None] * z[:, 1]
    )


def to_panel(world: SeriesWorld, shares: np.ndarray) -> pd.DataFrame:
    """A tidy long panel of one replication, in the columns estimators expect.

    Parameters
    ----------
    shares
        Shape (kommuner, years).

    Returns
    -------
    pandas.DataFrame
        ``kommun_kod``, ``lan_kod``, ``year``, ``population``, ``outcome``, ``cohort``,
        ``share``, ``denominator``, ``weight`` (= denominator), ``cluster_kommun``,
        ``cluster_forbund``, ``cluster_lan``; sorted by kommun then year.
    """
    n_k, n_t = shares.shape
    codes = np.repeat(world.codes, n_t)
    return pd.DataFrame(
        {
            "kommun_kod": codes,
            "lan_kod": np.repeat(world.lan, n_t),
            "year": np.tile(world.years, n_k),
            "population": world.population,
            "outcome": world.outcome,
            "cohort": np.repeat(world.cohort, n_t),
            "share": shares.reshape(-1),
            "denominator": world.denominator.reshape(-1),
            "weight": world.denominator.reshape(-1),
            "cluster_kommun": codes,
            "cluster_forbund": np.repeat(world.forbund, n_t),
            "cluster_lan": np.repeat(world.lan, n_t),
        }
    )
