"""Synthetic person-year register data consistent with the kommun-level synthetic world.

Each synthetic person has a home kommun, a sex and a birth year, and is followed through
1998–2018 while aged 19–65 (and until a small yearly attrition, emigration or death, removes
her). Every year she moves to another kommun with probability 2 %.

States. For each ISF outcome o (and ``arbetslos``) a person's flag in year t is ``Φ(z) < p``,
where ``z`` is a stationary Gaussian AR(1) latent of the person (persistence ``RHO[o]``) and
``p`` the share of the kommun-level synthetic world (:func:`finsam_eval.synthetic
.generate_synthetic`; count / population of her kommun, year, sex and age band, which includes
the world's true effect). So every cell's expected share is the world's share exactly (a
Gaussian copula; Nelsen 2006, ch. 2), and aggregating reproduces the kommun-level shares and
effects within sampling noise; the latent gives the year-to-year persistence the transitions
measure.

Work. ``arbete`` follows the person: someone in one of the origin states
(:data:`~finsam_eval.microdata.schema.ORIGIN_STATES`) in t−1 is in work in t with probability
``q`` (a kommun level plus a national path with the 2009 recession) plus the designed effect
:func:`work_effect` of her kommun of t−1's förbund membership; others are in work with
probability 0.8.

Truth. The data are generated twice with the same random numbers: with the effects and without
them (p minus the world's cell effect, and no work effect). The difference of the two
aggregated shares, per kommun-year, is the true effect on every outcome, transitions included
(:attr:`MicrodataWorld.truth_kt`); :attr:`MicrodataWorld.truth` averages it over each cohort's
kommuner by event time, as the kommun-level truth does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from finsam_eval.microdata.schema import FLAG_COLUMNS, ORIGIN_STATES, TRANSITIONS
from finsam_eval.panel.populations import AGE_BANDS, OUTCOMES, POPULATIONS, SEXES
from finsam_eval.registry import harmonise_codes
from finsam_eval.synthetic.generator import DEFAULT_SEED, YEARS, SyntheticData, generate_synthetic

__all__ = ["RHO", "MicrodataWorld", "generate_microdata", "work_effect"]

#: Year-to-year correlation of each state's latent (how persistent the state is).
RHO: dict[str, float] = {
    "sjukpenning": 0.6,
    "sa": 0.95,
    "ekonomiskt_bistand": 0.8,
    "af_till_arbete": 0.3,
    "studier": 0.8,
    "uvas": 0.6,
    "arbetslos": 0.6,
}
#: Registered unemployment by age band (share, around 2005).
UNEMPLOYMENT = {"19-24": 0.10, "25-54": 0.06, "55-64": 0.06}
MOVE_RATE = 0.02
LEAVE_RATE = 0.005
AGE_FIRST, AGE_LAST = 19, 65  # ages observed (65: the t of transitions from 64)
HEBY, HEBY_OLD, HEBY_LAST_OLD = "0331", "1917", 2006


def work_effect(cohort: np.ndarray, event_time: np.ndarray) -> np.ndarray:
    """Designed effect (probability points) on moving from an origin state to work.

    2 points in the year of joining, growing by 0.5 a year to 4 points; zero before joining and
    for never-members (cohort 0).
    """
    cohort = np.asarray(cohort)
    e = np.asarray(event_time)
    effect = 0.02 + 0.005 * np.minimum(np.maximum(e, 0), 4)
    return np.where((cohort > 0) & (e >= 0), effect, 0.0)


@dataclass
class MicrodataWorld:
    """What :func:`generate_microdata` made.

    Attributes
    ----------
    path
        Folder of the hive-partitioned parquet files (``year=YYYY/part-*.parquet``), or None.
    frame
        The person-years as a DataFrame when no ``path`` was given, else None.
    persons, person_years
        Sizes.
    cohorts
        The adoption cohorts of the world (``kommun_kod``, ``cohort``, ``forbund``), for
        :func:`finsam_eval.microdata.build_microdata_panel`.
    truth_kt
        Per kommun, year, population and outcome (ISF and transition): ``share1`` (with the
        effects), ``share0`` (without), ``effect`` (percentage points) — kommun-years of treated
        kommuner in which both are defined.
    truth
        ATT(g, e) per population × outcome: ``population, outcome, cohort, event_time, att,
        n_kommuner`` (mean of ``truth_kt.effect`` over the cohort's kommuner).
    seed, world_seed
        Seeds of the persons and of the kommun-level world.
    """

    path: Path | None
    frame: pd.DataFrame | None
    persons: int
    person_years: int
    cohorts: pd.DataFrame
    truth_kt: pd.DataFrame
    truth: pd.DataFrame
    seed: int
    world_seed: int


def _band_index(age: np.ndarray) -> np.ndarray:
    out = np.zeros(age.shape, dtype=np.int8)
    for i, (lo, _) in enumerate(AGE_BANDS.values()):
        out[age >= lo] = i
    return out


def _world_tables(
    data: SyntheticData, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shares with and without effects (state, kommun, year, sex, band), persons by age, size."""
    numerators, _ = harmonise_codes(data.numerators)
    population, _ = harmonise_codes(data.population)
    k_of = {c: i for i, c in enumerate(codes)}
    n_k, n_t, bands = len(codes), len(YEARS), list(AGE_BANDS)
    pop = population[population["kommun_kod"].isin(k_of)]
    ki = pop["kommun_kod"].map(k_of).to_numpy()
    ti = pop["year"].to_numpy() - YEARS[0]
    si = pop["sex"].map({s: i for i, s in enumerate(SEXES)}).to_numpy()
    ages = pop["age"].to_numpy()
    by_age = np.zeros((n_k, n_t, 2, 200))
    np.add.at(by_age, (ki, ti, si, ages), pop["population"].to_numpy(dtype=float))
    band_pop = np.zeros((n_k, n_t, 2, len(bands)))
    for b, (lo, hi) in enumerate(AGE_BANDS.values()):
        band_pop[..., b] = by_age[..., lo : hi + 1].sum(axis=-1)
    states = [*OUTCOMES, "arbetslos"]
    share1 = np.zeros((len(states), n_k, n_t, 2, len(bands)))
    num = numerators[numerators["kommun_kod"].isin(k_of)]
    oi = num["outcome"].map({o: i for i, o in enumerate(OUTCOMES)}).to_numpy()
    counts = np.zeros_like(share1)
    np.add.at(
        counts,
        (
            oi,
            num["kommun_kod"].map(k_of).to_numpy(),
            num["year"].to_numpy() - YEARS[0],
            num["sex"].map({s: i for i, s in enumerate(SEXES)}).to_numpy(),
            num["age_band"].map({b: i for i, b in enumerate(bands)}).to_numpy(),
        ),
        num["count"].to_numpy(dtype=float),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        share1[: len(OUTCOMES)] = np.where(band_pop > 0, counts[: len(OUTCOMES)] / band_pop, 0.0)
    effect = np.zeros_like(share1)
    world = data.world
    if world is not None:
        rows = pd.Index(world.codes).get_indexer(codes)
        for (outcome, sex, band), cell in world.cells.items():
            effect[OUTCOMES.index(outcome), :, :, SEXES.index(sex), bands.index(band)] = (
                cell.effect[rows] / 100.0
            )
    # registered unemployment: not in the kommun world; national level by band, the recession,
    # and the kommun's economic-assistance level (they move together)
    eb = share1[OUTCOMES.index("ekonomiskt_bistand")]
    national = eb.mean(axis=0, keepdims=True)
    relative = np.clip(np.where(national > 0, eb / np.where(national > 0, national, 1), 1), 0.5, 2)
    path = 1.0 + np.where(np.isin(YEARS, [2009, 2010]), 0.25, 0.0)
    base = np.array([UNEMPLOYMENT[b] for b in bands])
    share1[-1] = base[None, None, None, :] * path[None, :, None, None] * np.sqrt(relative)
    share1 = np.clip(share1, 0.0, 1.0)
    share0 = np.clip(share1 - effect, 0.0, 1.0)
    size = by_age[..., AGE_FIRST:AGE_LAST].sum(axis=(2, 3)).mean(axis=1)
    return share1, share0, by_age, size, band_pop


def _simulate(
    rng: np.random.Generator,
    n: int,
    home_p: np.ndarray,
    women: np.ndarray,
    birth_cdf: np.ndarray,
    birth_years: np.ndarray,
    work_level: np.ndarray,
) -> dict[str, np.ndarray]:
    """Persons' attributes, residence and random numbers (shared by both potential worlds)."""
    n_t = len(YEARS)
    n_k = len(home_p)
    cdf = np.cumsum(home_p)
    cdf /= cdf[-1]
    home = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), n_k - 1)
    sex = (rng.random(n) >= women[home]).astype(np.int8)  # 0 = K, 1 = M
    u = rng.random(n)
    # inverse CDF per person without a Python loop: rows of the kommun's CDF
    rows = birth_cdf[home]
    by_idx = np.minimum((rows < u[:, None]).sum(axis=1), len(birth_years) - 1)
    birth = birth_years[by_idx]
    age = YEARS[None, :] - birth[:, None]
    first = np.clip(birth + AGE_FIRST - YEARS[0], 0, n_t)
    stay = rng.geometric(LEAVE_RATE, n)  # years observed before leaving
    j = np.arange(n_t)[None, :]
    observed = (age >= AGE_FIRST) & (age <= AGE_LAST) & (j < (first + stay)[:, None])
    move = rng.random((n, n_t)) < MOVE_RATE
    move[:, 0] = True
    dest = np.minimum(np.searchsorted(cdf, rng.random((n, n_t)), side="right"), n_k - 1)
    dest[:, 0] = home
    last = np.maximum.accumulate(np.where(move, j, 0), axis=1)
    kommun = np.take_along_axis(dest, last, axis=1)
    eps = {s: rng.standard_normal((n, n_t)) for s in RHO}
    work_u = rng.random((n, n_t))
    return {
        "sex": sex,
        "birth": birth,
        "age": age,
        "observed": observed,
        "kommun": kommun,
        "eps": eps,
        "work_u": work_u,
        "work_level": work_level,
    }


def _states(
    sim: dict[str, np.ndarray],
    share: np.ndarray,
    work_delta: np.ndarray,
) -> dict[str, np.ndarray]:
    """Flags of every state for one potential world (shares ``share``, work effect)."""
    n, n_t = sim["observed"].shape
    k, age, sex = sim["kommun"], sim["age"], sim["sex"]
    band = _band_index(age)
    tt = np.broadcast_to(np.arange(n_t)[None, :], (n, n_t))
    ss = np.broadcast_to(sex[:, None], (n, n_t))
    flags: dict[str, np.ndarray] = {}
    for si, state in enumerate([*OUTCOMES, "arbetslos"]):
        rho = RHO[state]
        eps = sim["eps"][state]
        z = np.empty((n, n_t))
        z[:, 0] = eps[:, 0]
        scale = np.sqrt(1 - rho**2)
        for t in range(1, n_t):
            z[:, t] = rho * z[:, t - 1] + scale * eps[:, t]
        p = share[si][k, tt, ss, band]
        flags[state] = (ndtr(z) < p) & sim["observed"]
    origin = np.zeros((n, n_t), dtype=bool)
    for state in ORIGIN_STATES:
        origin |= flags[state]
    observed = sim["observed"]
    q = np.where(origin, 0.25, 0.8)  # a person's first observed year
    prev_origin = np.zeros((n, n_t), dtype=bool)
    prev_origin[:, 1:] = origin[:, :-1] & observed[:, :-1]
    prev_k = np.empty_like(k)
    prev_k[:, 1:] = k[:, :-1]
    prev_k[:, 0] = k[:, 0]
    level = sim["work_level"][prev_k, tt] + work_delta[prev_k, tt]
    seen_before = np.zeros((n, n_t), dtype=bool)
    seen_before[:, 1:] = observed[:, :-1]
    q = np.where(seen_before, np.where(prev_origin, level, 0.8), q)
    flags["arbete"] = (sim["work_u"] < q) & observed
    return flags


def _accumulate(
    sums: dict[str, np.ndarray],
    sim: dict[str, np.ndarray],
    flags: dict[str, np.ndarray],
    world: int,
    names: list[str],
) -> None:
    """Add this chunk's numerators and denominators per (kommun, year, population, outcome)."""
    n, n_t = sim["observed"].shape
    k, age, sex, observed = sim["kommun"], sim["age"], sim["sex"], sim["observed"]
    n_k = sums["num"].shape[1]
    n_o = len(names)
    for pi, spec in enumerate(POPULATIONS.values()):
        in_sex = np.isin(sex, [SEXES.index(s) for s in spec.sex])[:, None]
        member = observed & in_sex & (age >= spec.age_min) & (age <= spec.age_max)
        key = (k * n_t + np.arange(n_t)[None, :])[member]
        den = np.bincount(key, minlength=n_k * n_t).reshape(n_k, n_t)
        for o in spec.outcomes:
            oi = names.index(o)
            sums["num"][world, :, :, pi, oi] += np.bincount(
                key, weights=flags[o][member], minlength=n_k * n_t
            ).reshape(n_k, n_t)
            sums["den"][world, :, :, pi, oi] += den
        # transitions: membership, kommun and age in t−1; a valid row in t
        a = member[:, :-1]
        b = observed[:, 1:]
        key_t = k[:, :-1] * n_t + np.arange(1, n_t)[None, :]
        for name, spec_x in TRANSITIONS.items():
            if list(POPULATIONS)[pi] not in spec_x.populations:
                continue
            oi = names.index(name)
            origin = np.zeros((n, n_t - 1), dtype=bool)
            for f in spec_x.origin:
                origin |= flags[f][:, :-1]
            if spec_x.negate_origin:
                origin = ~origin
            dest = np.zeros((n, n_t - 1), dtype=bool)
            for f in spec_x.destination:
                dest |= flags[f][:, 1:]
            d = a & origin & b
            sums["den"][world, :, :, pi, oi] += np.bincount(key_t[d], minlength=n_k * n_t).reshape(
                n_k, n_t
            )
            sums["num"][world, :, :, pi, oi] += np.bincount(
                key_t[d & dest], minlength=n_k * n_t
            ).reshape(n_k, n_t)
    del n_o


def _rows(
    sim: dict[str, np.ndarray], flags: dict[str, np.ndarray], codes: np.ndarray, offset: int
) -> pd.DataFrame:
    i, j = np.nonzero(sim["observed"])
    year = YEARS[j]
    code = codes[sim["kommun"][i, j]].astype(object)
    code[(code == HEBY) & (year <= HEBY_LAST_OLD)] = HEBY_OLD  # the code of the time
    frame = pd.DataFrame(
        {
            "person_id": (offset + i + 1).astype(np.int64),
            "year": year.astype(np.int64),
            "kommun_kod": code,
            "sex": np.array(SEXES, dtype=object)[sim["sex"][i]],
            "birth_year": sim["birth"][i].astype(np.int64),
        }
    )
    for f in FLAG_COLUMNS:
        frame[f] = flags[f][i, j]
    return frame


def generate_microdata(
    persons: int = 100_000,
    seed: int = DEFAULT_SEED,
    path: str | os.PathLike[str] | None = None,
    *,
    world_seed: int = DEFAULT_SEED,
    kommuner: list[str] | None = None,
    chunk: int = 100_000,
    data: SyntheticData | None = None,
) -> MicrodataWorld:
    """Generate synthetic person-year register data with known effects.

    Parameters
    ----------
    persons
        Number of persons (about 14 person-years each).
    seed
        Seed of the persons' numpy Generator.
    path
        Folder to write hive-partitioned parquet to (``year=YYYY/part-<chunk>-0.parquet``);
        it must not hold earlier data. None: return the rows in :attr:`MicrodataWorld.frame`.
    world_seed
        Seed of the kommun-level world (:func:`finsam_eval.synthetic.generate_synthetic`).
    kommuner
        Kommun codes to populate (default: all 290); a few kommuner give dense small data for
        tests.
    chunk
        Persons simulated at a time (memory grows with it, not with ``persons``).
    data
        A kommun-level world already generated (else generated from ``world_seed``).

    Returns
    -------
    MicrodataWorld
    """
    if persons < 1 or chunk < 1:
        raise ValueError(f"persons and chunk must be positive, got {persons}, {chunk}")
    data = generate_synthetic(world_seed) if data is None else data
    from finsam_eval.registry import kommuner as registry_kommuner

    all_codes = registry_kommuner()["kommun_kod"].sort_values().to_numpy(dtype=object)
    if kommuner is None:
        codes = all_codes
    else:
        unknown = sorted(set(kommuner) - set(all_codes))
        if unknown:
            raise ValueError(f"unknown kommun codes {unknown}")
        codes = np.array(sorted(set(kommuner)), dtype=object)
    share1, share0, by_age, size, _ = _world_tables(data, codes)
    n_k, n_t = len(codes), len(YEARS)
    cal = data.calendar
    cohort_of = cal.groupby("kommun_kod")["start_year"].min().reindex(codes).fillna(0).astype(int)
    forbund_of = (
        cal.sort_values(["kommun_kod", "start_year", "forbund"])
        .drop_duplicates("kommun_kod")
        .set_index("kommun_kod")["forbund"]
        .reindex(codes)
        .fillna("")
    )
    cohorts = pd.DataFrame(
        {
            "kommun_kod": codes,
            "cohort": cohort_of.to_numpy(),
            "forbund": forbund_of.to_numpy(dtype=object),
        }
    )
    cohort = cohorts["cohort"].to_numpy()
    event = YEARS[None, :] - cohort[:, None]
    delta = work_effect(np.broadcast_to(cohort[:, None], event.shape), event)
    rng = np.random.default_rng(seed)
    # persons per kommun: 70 % spread evenly (small kommuner keep enough persons for every
    # series) and 30 % in proportion to size
    home_p = 0.7 / n_k + 0.3 * size / size.sum()
    women = by_age[:, :, 0].sum(axis=(1, 2)) / by_age.sum(axis=(1, 2, 3))
    # birth years: each kommun's age profile of the world, averaged over the years a cohort is
    # observed, so the simulated age mix matches the world's
    birth_years = np.arange(YEARS[0] - AGE_LAST, YEARS[-1] - AGE_FIRST + 1)
    weight = np.zeros((n_k, len(birth_years)))
    share_age = by_age.sum(axis=2) / by_age.sum(axis=(2, 3))[:, :, None]
    for bi, by in enumerate(birth_years):
        ages = YEARS - by
        ok = (ages >= AGE_FIRST) & (ages <= 64)
        if ok.any():
            weight[:, bi] = share_age[:, ok, ages[ok]].mean(axis=1)
    weight[:, weight.sum(axis=0) == 0] = weight[weight > 0].min() if (weight > 0).any() else 1
    birth_cdf = np.cumsum(weight, axis=1) / weight.sum(axis=1, keepdims=True)
    level_k = 0.30 + rng.normal(0, 0.04, n_k)
    work_level = level_k[:, None] - np.where(np.isin(YEARS, [2009, 2010]), 0.05, 0.0)[None, :]
    work_level = np.broadcast_to(work_level, (n_k, n_t))

    names = [*OUTCOMES, *TRANSITIONS]
    sums = {
        "num": np.zeros((2, n_k, n_t, len(POPULATIONS), len(names))),
        "den": np.zeros((2, n_k, n_t, len(POPULATIONS), len(names))),
    }
    out = Path(path) if path is not None else None
    if out is not None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        if out.exists() and any(out.iterdir()):
            raise ValueError(f"{out} is not empty: write synthetic microdata to a new folder")
        out.mkdir(parents=True, exist_ok=True)
    frames = []
    total = 0
    zero = np.zeros_like(delta)
    for c, start in enumerate(range(0, persons, chunk)):
        n = min(chunk, persons - start)
        sim = _simulate(rng, n, home_p, women, birth_cdf, birth_years, work_level)
        flags1 = _states(sim, share1, delta)
        flags0 = _states(sim, share0, zero)
        _accumulate(sums, sim, flags1, 1, names)
        _accumulate(sums, sim, flags0, 0, names)
        rows = _rows(sim, flags1, codes, start)
        total += len(rows)
        if out is None:
            frames.append(rows)
        else:
            table = pa.Table.from_pandas(rows, preserve_index=False)
            ds.write_dataset(
                table,
                out,
                format="parquet",
                partitioning=ds.partitioning(pa.schema([("year", pa.int64())]), flavor="hive"),
                basename_template=f"part-{c:05d}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
            )
    truth_kt, truth = _truth(sums, codes, cohort, names)
    return MicrodataWorld(
        path=out,
        frame=pd.concat(frames, ignore_index=True) if out is None else None,
        persons=persons,
        person_years=total,
        cohorts=cohorts,
        truth_kt=truth_kt,
        truth=truth,
        seed=seed,
        world_seed=world_seed,
    )


def _truth(
    sums: dict[str, np.ndarray], codes: np.ndarray, cohort: np.ndarray, names: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    num, den = sums["num"], sums["den"]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = 100.0 * num / den  # (world, k, t, pop, outcome)
    effect = share[1] - share[0]
    k, t, p, o = np.indices(effect.shape).reshape(4, -1)
    treated = (cohort[k] > 0) & np.isfinite(effect.reshape(-1))
    frame = pd.DataFrame(
        {
            "kommun_kod": codes[k],
            "year": YEARS[t],
            "population": np.array(list(POPULATIONS), dtype=object)[p],
            "outcome": np.array(names, dtype=object)[o],
            "cohort": cohort[k],
            "share1": share[1].reshape(-1),
            "share0": share[0].reshape(-1),
            "effect": effect.reshape(-1),
        }
    )[treated].reset_index(drop=True)
    frame["event_time"] = frame["year"] - frame["cohort"]
    truth = (
        frame.groupby(["population", "outcome", "cohort", "event_time"], sort=False)
        .agg(att=("effect", "mean"), n_kommuner=("effect", "size"))
        .reset_index()
    )
    order = {name: i for i, name in enumerate(POPULATIONS)}
    truth = truth.sort_values(
        ["population", "outcome", "cohort", "event_time"],
        key=lambda c: (
            c.map(order)
            if c.name == "population"
            else c.map({n: i for i, n in enumerate(names)})
            if c.name == "outcome"
            else c
        ),
        kind="stable",
    ).reset_index(drop=True)
    return frame, truth
