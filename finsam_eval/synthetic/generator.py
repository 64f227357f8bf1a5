"""Calibrated synthetic source tables for all 290 kommuner, 1998–2018, with known truth.

The generator writes what public sources publish, not an analysis panel: numerator counts by
kommun × year × sex × age band × outcome and population by kommun × year × sex × single-year age.
The panel builder turns them into shares, exactly as it does for real data.

Model for the share of a cell c (outcome o, sex s, age band b) in kommun k and year t, in percent::

    p[k,t,c] = base[c] · (1 + level[k,o]) + swing[o] · (path[o](t) − 1) + base[c] · u[k,t,o] + tau[k,t,c]

- ``base``: the national level of the cell around 2005.
- ``swing · (path − 1)``: the national path, the same number of percentage points for every cell
  of an outcome: the 2008 sickness-insurance reform (sjukpenning falls sharply, then slowly
  recovers), the phase-out of time-limited sickness compensation (SA falls), the 2008–09
  recession (economic assistance rises, transitions to work fall).
- ``level``: a kommun level tied to size and län (plus idiosyncratic variation), constant over
  time; early adopters differ in levels (they are larger).
- ``u``: a stationary AR(1) local shock (rho 0.5), the reason errors are serially correlated and
  must be clustered.
- ``tau``: the true effect (finsam_eval.synthetic.effects), dynamic and cohort-specific.

Each kommun keeps its age and sex composition over time (population grows at a kommun-specific
rate), so parallel trends hold in expectation for every population, not only for every cell: a
DiD estimator that assumes them is unbiased for the truth. Levels are additive for the same
reason.

Counts are drawn binomially from the cell population, so sampling noise shrinks with kommun size
by two orders of magnitude between Bjurholm and Stockholm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import AGE_BANDS, OUTCOMES, POPULATIONS
from finsam_eval.registry import code_history, kommun_code, kommuner
from finsam_eval.synthetic.calendar import EARLY_TARGETS, CalendarFacts, draw_calendar
from finsam_eval.synthetic.effects import cell_effect

__all__ = ["DEFAULT_SEED", "YEARS", "SyntheticData", "World", "WorldCell", "generate_synthetic"]

DEFAULT_SEED = 20190601  # ISF report 2019
YEARS = np.arange(1998, 2019)
AGES = np.arange(19, 65)
SEXES = ("K", "M")
BANDS = tuple(AGE_BANDS)

# National share in percent by outcome and age band (men; women scaled by SEX_FACTOR), around 2005
BASE_RATE = {
    "sjukpenning": {"19-24": 1.6, "25-54": 3.6, "55-64": 5.2},
    "sa": {"19-24": 1.4, "25-54": 6.0, "55-64": 17.0},
    "ekonomiskt_bistand": {"19-24": 8.5, "25-54": 4.8, "55-64": 2.4},
    "af_till_arbete": {"19-24": 5.5, "25-54": 3.6, "55-64": 1.6},
    "studier": {"19-24": 34.0, "25-54": 4.5, "55-64": 0.4},
    "uvas": {"19-24": 10.0, "25-54": 0.0, "55-64": 0.0},
}
SEX_FACTOR = {
    "sjukpenning": 1.55,
    "sa": 1.3,
    "ekonomiskt_bistand": 0.9,
    "af_till_arbete": 0.85,
    "studier": 1.2,
    "uvas": 0.95,
}
# Large kommuner joined early and are kept at the top of the size distribution.
LARGEST = (
    "Stockholm", "Göteborg", "Malmö", "Uppsala", "Linköping", "Örebro", "Västerås",
    "Helsingborg", "Norrköping", "Jönköping", "Umeå", "Lund",
)  # fmt: skip


def national_path(outcome: str, years: np.ndarray) -> np.ndarray:
    """Relative national level by year (1.0 around 2005) with the documented shocks."""
    t = years.astype(float)
    if outcome == "sjukpenning":
        # peak in 2002–03, sharp fall with the 2008 reform, slow recovery from 2011
        path = 1.15 - 0.03 * np.abs(t - 2003)
        path = np.where(t >= 2008, path - 0.25, path)
        path = np.where(t >= 2011, path + 0.04 * (t - 2010), path)
        return path
    if outcome == "sa":
        # time-limited sickness compensation phased out: about 9 % → 6 % of 20–64
        return np.where(t <= 2005, 1.0 + 0.01 * (t - 2005), 1.0 - 0.03 * (t - 2005))
    if outcome == "ekonomiskt_bistand":
        return (
            1.0
            - 0.015 * (t - 2005)
            + np.where(t == 2009, 0.12, 0.0)
            + np.where(t >= 2010, 0.15 - 0.01 * (t - 2010), 0.0)
        )
    if outcome == "af_till_arbete":
        return (
            1.0 + 0.01 * (t - 2005) - np.where(t == 2009, 0.25, 0.0) - np.where(t == 2010, 0.1, 0.0)
        )
    if outcome == "studier":
        return 1.0 + 0.006 * (t - 2005) + np.where(t >= 2009, 0.05, 0.0)
    if outcome == "uvas":
        return 1.0 + np.where(t >= 2009, 0.15, 0.0) - np.where(t >= 2013, 0.05 * (t - 2012), 0.0)
    raise ValueError(f"unknown outcome {outcome!r}")


@dataclass
class WorldCell:
    """One outcome × sex × age band of the data generating process, arrays (kommun, year).

    ``expected`` is the untreated expected share without the local shock, ``effect`` the true
    effect (percentage points; zero for untreated kommun-years) and ``shock_scale`` the cell's
    national level, which multiplies the AR(1) local shock (sd 0.015, rho 0.5).
    """

    expected: np.ndarray
    effect: np.ndarray
    shock_scale: float


@dataclass
class World:
    """The fixed structure behind the synthetic data, for Monte Carlo redraws of the noise."""

    codes: np.ndarray
    lan: np.ndarray
    cohort: np.ndarray
    band_pop: np.ndarray  # (kommun, year, sex, age band)
    cells: dict[tuple[str, str, str], WorldCell]


SHOCK_SD = 0.015
SHOCK_RHO = 0.5


@dataclass
class SyntheticData:
    """Synthetic source tables and their truth.

    Attributes
    ----------
    numerators
        kommun_kod, year, sex, age_band, outcome, count.
    population
        kommun_kod, year, sex, age, population.
    calendar
        kommun_kod, forbund, start_year, end_year.
    truth
        population, outcome, cohort, event_time, att (percentage points), n_kommuner.
    seed
        The seed that generated them.
    """

    numerators: pd.DataFrame
    population: pd.DataFrame
    calendar: pd.DataFrame
    truth: pd.DataFrame
    seed: int
    world: World | None = None


def _documented_facts() -> CalendarFacts:
    from finsam_eval.registry import membership

    intervals = membership.adoption_intervals()
    members = intervals[~intervals["never_member_2015"]]
    counts = membership.member_counts()
    exact = counts[~counts["approximate"] & counts["n_kommuner"].notna()]
    exact = exact[exact["year"] >= 2008]
    cumulative = {year: n for year, n in EARLY_TARGETS.items()}
    cumulative.update(
        {int(y): int(n) for y, n in zip(exact["year"], exact["n_kommuner"], strict=True)}
    )
    return CalendarFacts(
        intervals={
            row.kommun_kod: (int(row.earliest_cohort), int(row.latest_cohort))
            for row in members.itertuples(index=False)
        },
        candidates_2007=frozenset(membership.candidates_2007()),
        n_candidates_2007=membership.N_CANDIDATES_2007,
        counts=dict(sorted(cumulative.items())),
        forbund_2015=dict(zip(members["kommun_kod"], members["forbund_2015"], strict=True)),
    )


def _sizes(codes: np.ndarray, lan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Working-age (19–64) population in 2008, about 1 400 (Bjurholm) to 600 000 (Stockholm)."""
    draws = np.sort(np.exp(rng.normal(np.log(12_000), 0.85, size=len(codes))))[::-1]
    draws = np.clip(draws, 1_500, 250_000)
    order = rng.permutation(len(codes))
    named = [kommun_code(name) for name in LARGEST]
    smallest = kommun_code("Bjurholm")
    rest = [i for i in order if codes[i] not in named and codes[i] != smallest]
    sizes = np.empty(len(codes))
    position = {c: i for i, c in enumerate(codes)}
    for rank, code in enumerate(named):
        sizes[position[code]] = draws[rank]
    sizes[position[kommun_code("Stockholm")]] = 600_000
    sizes[position[kommun_code("Göteborg")]] = 360_000
    # Stockholm län kommuner are larger than the rest (suburbs)
    remaining = draws[len(named) : len(named) + len(rest)]
    in_stockholm = np.array([lan[i] == "01" for i in rest])
    ranked = np.argsort(-(rng.normal(size=len(rest)) + 1.5 * in_stockholm), kind="stable")
    for slot, index in enumerate(ranked):
        sizes[rest[index]] = remaining[slot]
    sizes[position[smallest]] = 1_400
    return np.round(sizes)


def _population(
    codes: np.ndarray, size: np.ndarray, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """Population by kommun × year × sex × single-year age; also the (k, t, s, a) array."""
    z = (np.log(size) - np.log(size).mean()) / np.log(size).std()
    growth = 0.004 + 0.004 * z + rng.normal(0, 0.003, len(codes))
    tilt = -0.25 * z + rng.normal(0, 0.1, len(codes))  # small kommuner are older
    women = 0.49 + rng.normal(0, 0.008, len(codes))
    t = (YEARS - 2008).astype(float)
    a = (AGES - 41.5) / 22.5
    total = size[:, None] * np.exp(growth[:, None] * t[None, :])  # (k, t)
    # each kommun keeps its age and sex composition over time: with compositions that drifted
    # differently across kommuner, population-level shares would trend apart even though every
    # cell's untreated share trends in parallel, and no estimator assuming parallel trends at
    # population level could recover the truth
    slope = np.broadcast_to(tilt[:, None], (len(codes), len(YEARS)))
    profile = np.exp(slope[:, :, None] * a[None, None, :])  # (k, t, a)
    profile /= profile.sum(axis=2, keepdims=True)
    sex_share = np.stack([women, 1 - women], axis=1)  # (k, s)
    expected = total[:, :, None, None] * sex_share[:, None, :, None] * profile[:, :, None, :]
    counts = rng.poisson(expected)
    k, ti, s, ai = np.indices(counts.shape).reshape(4, -1)
    frame = pd.DataFrame(
        {
            "kommun_kod": codes[k],
            "year": YEARS[ti],
            "sex": np.array(SEXES)[s],
            "age": AGES[ai],
            "population": counts.reshape(-1),
        }
    )
    return frame, counts


def _band_population(counts: np.ndarray) -> np.ndarray:
    """Sum single-year ages into the numerator age bands: (k, t, s, b)."""
    bands = [(AGES >= lo) & (AGES <= hi) for lo, hi in AGE_BANDS.values()]
    return np.stack([counts[..., mask].sum(axis=-1) for mask in bands], axis=-1)


def generate_synthetic(seed: int = DEFAULT_SEED) -> SyntheticData:
    """Generate the synthetic source tables, adoption calendar and truth.

    Parameters
    ----------
    seed
        Seed of the numpy Generator; the default reproduces ``data/synthetic`` byte for byte.

    Returns
    -------
    SyntheticData
    """
    rng = np.random.default_rng(seed)
    registry = kommuner()
    codes = registry["kommun_kod"].to_numpy(dtype=object)
    lan = registry["lan_kod"].to_numpy(dtype=object)
    size = _sizes(codes, lan, rng)
    facts = _documented_facts()
    calendar = draw_calendar(facts, pd.Series(size, index=codes), rng)
    cohort = (
        pd.Series(calendar["start_year"].to_numpy(), index=calendar["kommun_kod"])
        .reindex(codes)
        .fillna(0)
        .astype(int)
        .to_numpy()
    )
    population, pop_counts = _population(codes, size, rng)
    band_pop = _band_population(pop_counts)  # (k, t, s, b)

    n_k, n_t = len(codes), len(YEARS)
    z = (np.log(size) - np.log(size).mean()) / np.log(size).std()
    lan_codes, lan_index = np.unique(lan, return_inverse=True)
    event = YEARS[None, :] - cohort[:, None]  # (k, t)
    treated = cohort > 0
    numerators: list[pd.DataFrame] = []
    effects: dict[tuple[str, str, str], np.ndarray] = {}
    cells: dict[tuple[str, str, str], WorldCell] = {}
    band_weight = np.array([hi - lo + 1 for lo, hi in AGE_BANDS.values()], dtype=float)
    for outcome in OUTCOMES:
        lan_effect = rng.normal(0, 0.07, len(lan_codes))[lan_index]
        idiosyncratic = rng.normal(0, 0.10, n_k)
        size_slope = {"studier": 0.06, "af_till_arbete": 0.04}.get(outcome, -0.05)
        relative_level = size_slope * z + lan_effect + idiosyncratic  # (k,)
        # AR(1) local shock (relative to the national level), from its stationary distribution
        shock = np.empty((n_k, n_t))
        shock[:, 0] = rng.normal(0, SHOCK_SD / np.sqrt(1 - SHOCK_RHO**2), n_k)
        innovations = rng.normal(0, SHOCK_SD, (n_k, n_t))
        for j in range(1, n_t):
            shock[:, j] = SHOCK_RHO * shock[:, j - 1] + innovations[:, j]
        path = national_path(outcome, YEARS)
        # effects are stated for a cell at the national working-age level and scale with the
        # cell's expected level, so small cells get proportionally small effects
        rates = np.array(
            [
                [BASE_RATE[outcome][b] * (SEX_FACTOR[outcome] if s == "K" else 1.0) for b in BANDS]
                for s in SEXES
            ]
        )
        reference = float((rates * band_weight).sum() / (rates.shape[0] * band_weight.sum()))
        # the national path moves every cell by the same number of percentage points, so that a
        # population's untreated share trends in parallel across kommuner whatever its mix of
        # cells; half the smallest cell level keeps every share positive
        swing = 0.5 * float(rates[rates > 0].min())
        if outcome == "uvas":
            reference = float(rates[:, 0].mean())
        for si, sex in enumerate(SEXES):
            for bi, band in enumerate(BANDS):
                base = rates[si, bi]
                if base == 0.0:
                    continue
                expected = base * (1.0 + relative_level[:, None]) + swing * (path[None, :] - 1.0)
                untreated = expected + base * shock
                if untreated.min() <= 0.02 or untreated.max() >= 95:
                    raise RuntimeError(
                        f"synthetic share out of range for {outcome}/{sex}/{band}: "
                        f"{untreated.min():.3f}–{untreated.max():.3f} percent"
                    )
                cohorts_kt = np.broadcast_to(cohort[:, None], event.shape)
                effect_pp = cell_effect(outcome, sex, band, cohorts_kt, event)
                tau = np.where(treated[:, None], effect_pp * expected / reference, 0.0)
                share = np.maximum(untreated + tau, 0.01)
                effects[(outcome, sex, band)] = share - untreated
                cells[(outcome, sex, band)] = WorldCell(expected, tau, base)
                trials = band_pop[:, :, si, bi]
                count = rng.binomial(trials, share / 100.0)
                numerators.append(
                    pd.DataFrame(
                        {
                            "kommun_kod": np.repeat(codes, n_t),
                            "year": np.tile(YEARS, n_k),
                            "sex": sex,
                            "age_band": band,
                            "outcome": outcome,
                            "count": count.reshape(-1),
                        }
                    )
                )
    numerator_frame = pd.concat(numerators, ignore_index=True)
    numerator_frame = numerator_frame.sort_values(
        ["outcome", "kommun_kod", "year", "sex", "age_band"], kind="stable"
    ).reset_index(drop=True)
    truth = _truth(codes, cohort, band_pop, effects)
    world = World(codes=codes, lan=lan, cohort=cohort, band_pop=band_pop, cells=cells)
    return SyntheticData(
        _historical_codes(numerator_frame),
        _historical_codes(population),
        calendar,
        truth,
        seed,
        world=world,
    )


def _historical_codes(frame: pd.DataFrame) -> pd.DataFrame:
    """Code rows as the sources of the time did, so the builder's harmonisation is exercised.

    Heby was 1917 (Västmanlands län) until 2006 (registry.code_history); Knivsta's rows before
    its 2003 split are kept, a simplification that real source tables do not share.
    """
    history = code_history()
    out = frame.copy()
    for row in history[history["historical_code"].ne(history["kommun_kod"])].itertuples():
        if not row.historical_code:
            continue
        in_window = out["kommun_kod"].eq(row.kommun_kod)
        if pd.notna(row.valid_to):
            in_window &= out["year"] <= row.valid_to
        out.loc[in_window, "kommun_kod"] = row.historical_code
    return out


def _truth(
    codes: np.ndarray,
    cohort: np.ndarray,
    band_pop: np.ndarray,
    effects: dict[tuple[str, str, str], np.ndarray],
) -> pd.DataFrame:
    """ATT(g, e) per population × outcome: the mean over a cohort's kommuner of the
    population-weighted cell effects (unweighted across kommuner, as Callaway–Sant'Anna's
    default), for every observable event time (zeros before joining)."""
    rows = []
    band_index = {band: i for i, band in enumerate(BANDS)}
    cohorts = np.unique(cohort[cohort > 0])
    for name, spec in POPULATIONS.items():
        bands = [
            b for b, (lo, hi) in AGE_BANDS.items() if lo >= spec.age_min and hi <= spec.age_max
        ]
        for outcome in spec.outcomes:
            weighted = np.zeros(band_pop.shape[:2])
            total = np.zeros(band_pop.shape[:2])
            for sex in spec.sex:
                si = SEXES.index(sex)
                for band in bands:
                    pop = band_pop[:, :, si, band_index[band]]
                    tau = effects.get((outcome, sex, band))
                    if tau is not None:
                        weighted += pop * tau
                    total += pop
            kommun_effect = weighted / total  # (k, t)
            for g in cohorts:
                members = cohort == g
                att = kommun_effect[members].mean(axis=0)
                rows.append(
                    pd.DataFrame(
                        {
                            "population": name,
                            "outcome": outcome,
                            "cohort": int(g),
                            "event_time": (YEARS - g).astype(int),
                            "att": att,
                            "n_kommuner": int(members.sum()),
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)
