"""Calibrated synthetic source tables for all 290 kommuner, 1998–2018, with known truth.

The generator writes what public sources publish, not an analysis panel: numerator counts by
kommun × year × sex × age band × outcome and population by kommun × year × sex × single-year age.
The panel builder turns them into shares, exactly as it does for real data.

Model for the share of a cell c (outcome o, sex s, age band b) in kommun k and year t, in percent::

    p[k,t,c] = base[c] · (1 + level[k,o]) + base[c] · (path[o,b](t) − 1) + base[c] · u[k,t,o]
               + tau[k,t,c]

- ``base``: the cell's share in 2005 for a kommun at the mean level (``BASE_RATE``).
- ``base · (path − 1)``: the national path of the cell, relative to 2005 (``national_path``):
  the 2008 sickness-insurance reform (sjukpenning falls by a third, then slowly recovers), the
  phase-out of time-limited sickness compensation (SA of 19–64 from about 9 % to about 6 %)
  while aktivitetsersättning for 19–24 rises, the 2008–09 recession (economic assistance rises,
  transitions to work fall). National magnitudes follow shared/DOMAIN.md.
- ``level``: a kommun level tied to size and län (plus idiosyncratic variation), constant over
  time.
- ``u``: a stationary AR(1) local shock (rho 0.5), the reason errors are serially correlated and
  must be clustered.
- ``tau``: the true effect (finsam_eval.synthetic.effects), dynamic and cohort-specific, scaled
  by the cell's kommun level ``base · (1 + level)``.

Every kommun has the same expected age and sex composition in every year (population grows at a
kommun-specific rate), so although age bands follow different national paths, each population's
untreated share trends in parallel across kommuner in expectation: a DiD estimator that assumes
parallel trends is unbiased for the truth. Levels are additive for the same reason.

Kommun sizes are the real ones for the 20 largest and 10 smallest kommuner (``DOCUMENTED_SIZES``,
SCB 2018) and log-normal for the rest (``_sizes``). The adoption calendar is one draw of the
registry's documented calendar model (``synthetic_calendar``).

Counts are drawn binomially from the cell population, so sampling noise shrinks with kommun size
by two orders of magnitude between Bjurholm and Stockholm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import AGE_BANDS, OUTCOMES, POPULATIONS
from finsam_eval.registry import code_history, kommun_code, kommuner
from finsam_eval.synthetic.effects import cell_effect

__all__ = [
    "DEFAULT_SEED",
    "YEARS",
    "SyntheticData",
    "World",
    "WorldCell",
    "generate_synthetic",
    "national_path",
    "synthetic_calendar",
]

DEFAULT_SEED = 20190601  # ISF report 2019
YEARS = np.arange(1998, 2019)
AGES = np.arange(19, 65)
SEXES = ("K", "M")
BANDS = tuple(AGE_BANDS)

# Share in percent by outcome and age band (men; women scaled by SEX_FACTOR) in 2005, for a kommun
# at the mean level. Large kommuner have lower levels (size_slope in generate_synthetic), so the
# population-weighted national shares come out a little lower: SA of 19–64 about 9 %, economic
# assistance about 4–6 % (shared/DOMAIN.md, rough magnitudes).
BASE_RATE = {
    "sjukpenning": {"19-24": 1.6, "25-54": 3.6, "55-64": 5.2},
    "sa": {"19-24": 1.6, "25-54": 6.7, "55-64": 19.0},
    "ekonomiskt_bistand": {"19-24": 9.8, "25-54": 5.5, "55-64": 2.8},
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
# Total population on 31 December 2018 of the 20 largest and 10 smallest kommuner, rounded (to
# the nearest hundred; fifty for the smallest). Source: SCB, "Folkmängd i riket, län och kommuner
# 31 december 2018". Stockholm 962 154, Huddinge 111 722, Nacka 103 656 and Södertälje 97 381
# were checked against a copy of that table (population on 1 January 2019); the other figures
# are approximate and serve to give the synthetic world realistic sizes and ranks.
# shared/DOMAIN.md gives the range: "about 2 500 (Bjurholm) to about 950 000 (Stockholm)". The
# other 260 kommuner draw their size from a log-normal (_sizes), strictly between the tables.
DOCUMENTED_SIZES = {
    "Stockholm": 962_200, "Göteborg": 571_900, "Malmö": 339_300, "Uppsala": 225_200,
    "Linköping": 161_000, "Örebro": 153_400, "Västerås": 152_100, "Helsingborg": 145_400,
    "Norrköping": 141_700, "Jönköping": 139_200, "Umeå": 127_100, "Lund": 122_900,
    "Borås": 112_200, "Huddinge": 111_700, "Eskilstuna": 105_900, "Nacka": 103_700,
    "Gävle": 101_600, "Halmstad": 100_900, "Sundsvall": 99_400, "Södertälje": 97_400,
    "Norsjö": 4_100, "Ydre": 3_800, "Munkfors": 3_700, "Överkalix": 3_300, "Malå": 3_100,
    "Arjeplog": 2_900, "Åsele": 2_800, "Dorotea": 2_700, "Sorsele": 2_500, "Bjurholm": 2_450,
}  # fmt: skip
# Share of the total population aged 19–64 (SCB 2018: about 5.9 of 10.2 million), applied to
# every kommun so that all kommuner share one expected age and sex composition (see _population).
WORKING_AGE_SHARE = 0.58
# The log-normal for the other kommuner: Swedish kommuner have a median of about 16 000
# inhabitants (SCB 2018); sd 0.75 of log size spreads them over the documented range.
MEDIAN_SIZE = 16_000
LOG_SD = 0.75


# National level of each outcome relative to 2005 (1.0), per year 1998–2018 (national_path).
# The shapes follow shared/DOMAIN.md's rough magnitudes; the comments give the documented facts.
PATH_YEARS = tuple(range(1998, 2019))
NATIONAL_PATHS = {
    # peak in 2002–03; the 2008 sickness-insurance reform (time limits, rehabilitation chain)
    # cuts the share by a third from 2007 to 2010; slow recovery from 2011
    "sjukpenning": (
        0.80, 0.90, 1.00, 1.10, 1.16, 1.15, 1.08, 1.00, 0.95, 0.90, 0.78,
        0.66, 0.60, 0.62, 0.66, 0.70, 0.75, 0.80, 0.83, 0.82, 0.80,
    ),
    # sjukersättning (25–64): growth to 2005, then the phase-out of time-limited sickness
    # compensation takes the working-age share from about 9 % (2005) to about 6 % (2016)
    "sa": (
        0.825, 0.85, 0.875, 0.90, 0.925, 0.95, 0.975, 1.00, 0.99, 0.97, 0.93,
        0.88, 0.82, 0.77, 0.73, 0.70, 0.68, 0.66, 0.64, 0.62, 0.60,
    ),
    # aktivitetsersättning (SA for 19–24) keeps rising: +6 % of its 2005 level a year after 2005
    "sa_young": (
        0.70, 0.74, 0.78, 0.83, 0.87, 0.91, 0.96, 1.00, 1.06, 1.12, 1.18,
        1.24, 1.30, 1.36, 1.42, 1.48, 1.54, 1.60, 1.66, 1.72, 1.78,
    ),
    # high after the 1990s crisis, down to 2007, up in the 2008–09 recession (peak 2010)
    "ekonomiskt_bistand": (
        1.15, 1.10, 1.05, 1.02, 1.00, 1.00, 1.01, 1.00, 0.96, 0.92, 0.93,
        1.02, 1.06, 1.04, 1.03, 1.02, 1.00, 0.98, 0.96, 0.94, 0.92,
    ),
    # transitions from unemployment to work collapse in 2009 and recover from 2010
    "af_till_arbete": (
        0.90, 0.92, 0.93, 0.95, 0.96, 0.97, 0.99, 1.00, 1.04, 1.07, 1.05,
        0.80, 0.92, 1.00, 0.98, 0.97, 1.00, 1.02, 1.04, 1.05, 1.05,
    ),
    # a slow rise, a step up in the 2009 recession
    "studier": (
        0.958, 0.964, 0.970, 0.976, 0.982, 0.988, 0.994, 1.00, 1.006, 1.012, 1.018,
        1.074, 1.080, 1.086, 1.092, 1.098, 1.104, 1.110, 1.116, 1.122, 1.128,
    ),
    # about 10 % of 19–24 (DOMAIN: 8–12 %), up in the recession, slowly down from 2013
    "uvas": (
        1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00,
        1.15, 1.15, 1.15, 1.15, 1.12, 1.09, 1.06, 1.03, 1.00, 0.97,
    ),
}  # fmt: skip


def national_path(outcome: str, years: np.ndarray, age_band: str = "25-54") -> np.ndarray:
    """Relative national level of one cell's share by year (1.0 in 2005).

    Each cell (outcome × sex × age band) moves in proportion to its own 2005 level
    (``BASE_RATE``), so the national shares follow the documented magnitudes: SA of 19–64 falls
    from about 9 % (2005) to about 6 % (2016) while aktivitetsersättning for 19–24 rises,
    sjukpenning drops by a third with the 2008 reform, economic assistance rises and
    transitions to work fall in the 2008–09 recession, UVAS stays within 8–12 %. Because every
    kommun has the same expected age and sex composition, cell-specific paths still give every
    population the same national trend in every kommun (parallel trends in expectation).

    Parameters
    ----------
    outcome
        ISF outcome key.
    years
        Calendar years (held constant outside 1998–2018).
    age_band
        "19-24", "25-54" or "55-64": SA's young band (aktivitetsersättning) has its own path.

    Returns
    -------
    numpy.ndarray
        The multiplier of the cell's 2005 level, one per year.
    """
    key = "sa_young" if outcome == "sa" and age_band == "19-24" else outcome
    if key not in NATIONAL_PATHS:
        raise ValueError(f"unknown outcome {outcome!r}")
    return np.interp(np.asarray(years, dtype=float), PATH_YEARS, NATIONAL_PATHS[key])


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
        kommun_kod, forbund, start_year, end_year, origin ("synthetic"); see
        :func:`synthetic_calendar`.
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


def synthetic_calendar(seed: int) -> pd.DataFrame:
    """The synthetic world's membership calendar: one draw of the documented calendar model.

    The cohorts are the single draw of ``finsam_eval.registry.compatible_calendars(1, seed)``
    under the default calendar model (uniform over the calendars compatible with every
    documented fact: the Tabell 1 counts, the April 2007 and April 2015 lists, the adoption
    intervals, the founders of one förbund joining together). The registry's
    ``cohorts_to_calendar`` assigns each member the förbund it joined, which the panel uses as
    its förbund cluster.

    Parameters
    ----------
    seed
        The world's seed.

    Returns
    -------
    pandas.DataFrame
        One row per member kommun, sorted by code: ``kommun_kod``, ``forbund``, ``start_year``,
        ``end_year`` (empty: no documented exit) and ``origin`` (always "synthetic", so that the
        pipeline can refuse it as a real calendar).
    """
    from finsam_eval.registry import cohorts_to_calendar, compatible_calendars

    members = cohorts_to_calendar(compatible_calendars(1, seed))
    members = members.sort_values("kommun", kind="stable")
    calendar = pd.DataFrame(
        {
            "kommun_kod": members["kommun"].to_numpy(dtype=object),
            "forbund": members["forbund"].to_numpy(dtype=object),
            "start_year": members["start_year"].to_numpy(dtype=int),
        }
    )
    calendar["end_year"] = pd.array([pd.NA] * len(calendar), dtype="Int64")
    calendar["origin"] = "synthetic"
    return calendar


def _sizes(codes: np.ndarray, lan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Working-age (19–64) population in 2018 by kommun: realistic sizes and ranks.

    The 20 largest and 10 smallest kommuner take their documented size (``DOCUMENTED_SIZES``,
    SCB 2018). The other 260 draw a log-normal total population (median ``MEDIAN_SIZE``, log sd
    ``LOG_SD``), kept strictly between the two tables, and the draws are handed out in the order
    of a noisy score that ranks kommuner of Stockholms län above the rest, Skåne and Västra
    Götaland slightly above, and the sparsely populated Norrland län (22–25) below. Every size
    is then multiplied by ``WORKING_AGE_SHARE``.
    """
    position = {code: i for i, code in enumerate(codes)}
    total = np.full(len(codes), np.nan)
    for name, inhabitants in DOCUMENTED_SIZES.items():
        total[position[kommun_code(name)]] = inhabitants
    rest = np.flatnonzero(np.isnan(total))
    smallest_large = min(v for v in DOCUMENTED_SIZES.values() if v > MEDIAN_SIZE)
    largest_small = max(v for v in DOCUMENTED_SIZES.values() if v < MEDIAN_SIZE)
    draws = np.exp(rng.normal(np.log(MEDIAN_SIZE), LOG_SD, size=len(rest)))
    draws = np.sort(np.clip(draws, largest_small + 100, smallest_large - 100))[::-1]
    lan_rest = lan[rest]
    score = (
        rng.normal(size=len(rest))
        + 1.5 * (lan_rest == "01")
        + 0.5 * np.isin(lan_rest, ["12", "14"])
        - 0.7 * np.isin(lan_rest, ["22", "23", "24", "25"])
    )
    total[rest[np.argsort(-score, kind="stable")]] = draws
    return np.round(WORKING_AGE_SHARE * total)


def _population(
    codes: np.ndarray, size: np.ndarray, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """Population by kommun × year × sex × single-year age; also the (k, t, s, a) array.

    Kommuner grow at their own rate (larger ones faster) towards ``size`` in 2018. Every kommun
    has the same expected age and sex composition in every year (49 % women, flat over single
    years of age); counts are Poisson around it. With compositions that differed across
    kommuner, a population's share would trend differently across kommuner whenever its cells
    follow different national paths (as SA's young and older bands do), and no estimator
    assuming parallel trends at population level could recover the truth.
    """
    z = (np.log(size) - np.log(size).mean()) / np.log(size).std()
    growth = 0.004 + 0.004 * z + rng.normal(0, 0.003, len(codes))
    t = (YEARS - 2018).astype(float)
    total = size[:, None] * np.exp(growth[:, None] * t[None, :])  # (k, t)
    profile = np.full(len(AGES), 1.0 / len(AGES))
    sex_share = np.array([0.49, 0.51])
    expected = total[:, :, None, None] * sex_share[None, None, :, None] * profile
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
        Seed of the numpy Generator and of the calendar draw (:func:`synthetic_calendar`); the
        default reproduces the bundled finsam_eval/synthetic/data byte for byte.

    Returns
    -------
    SyntheticData
    """
    rng = np.random.default_rng(seed)
    registry = kommuner()
    codes = registry["kommun_kod"].to_numpy(dtype=object)
    lan = registry["lan_kod"].to_numpy(dtype=object)
    size = _sizes(codes, lan, rng)
    calendar = synthetic_calendar(seed)
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
        # effects are stated for a cell at the national working-age level and scale with the
        # cell's kommun level (constant over time), so small cells get proportionally small
        # effects
        rates = np.array(
            [
                [BASE_RATE[outcome][b] * (SEX_FACTOR[outcome] if s == "K" else 1.0) for b in BANDS]
                for s in SEXES
            ]
        )
        reference = float((rates * band_weight).sum() / (rates.shape[0] * band_weight.sum()))
        if outcome == "uvas":
            reference = float(rates[:, 0].mean())
        for si, sex in enumerate(SEXES):
            for bi, band in enumerate(BANDS):
                base = rates[si, bi]
                if base == 0.0:
                    continue
                # the cell's national path scales its 2005 level; every kommun has the same
                # expected composition (_population), so each population's untreated share
                # still trends in parallel across kommuner
                path = national_path(outcome, YEARS, band)
                level = base * (1.0 + relative_level[:, None])  # (k, 1)
                expected = level + base * (path[None, :] - 1.0)
                untreated = expected + base * shock
                if untreated.min() <= 0.02 or untreated.max() >= 95:
                    raise RuntimeError(
                        f"synthetic share out of range for {outcome}/{sex}/{band}: "
                        f"{untreated.min():.3f}–{untreated.max():.3f} percent"
                    )
                cohorts_kt = np.broadcast_to(cohort[:, None], event.shape)
                effect_pp = cell_effect(outcome, sex, band, cohorts_kt, event)
                tau = np.where(treated[:, None], effect_pp * level / reference, 0.0)
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
