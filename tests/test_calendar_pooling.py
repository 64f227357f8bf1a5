"""Estimates pooled over compatible adoption calendars (Rubin's rules) and their Monte Carlo proof.

The stand-in sampler below draws each kommun's join year uniformly inside its documented
interval (registry ``adoption_intervals``), independently: it ignores the joint count
constraints and serves only where the registry's ``compatible_calendars`` is not needed.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import finsam_eval as fe
from finsam_eval.estimators import EstimationInputError
from finsam_eval.estimators.calendars import POOLED_COLUMNS, rubin_pool
from finsam_eval.registry.membership import adoption_intervals

pytestmark = pytest.mark.filterwarnings("ignore:pre-test not computed")


def interval_sampler(n: int, seed: int) -> pd.DataFrame:
    """Stand-in sampler: independent uniform years inside each kommun's interval."""
    table = adoption_intervals()
    lo = table["earliest_cohort"].to_numpy()
    hi = table["latest_cohort"].to_numpy()
    rng = np.random.default_rng(seed)
    cohort = np.where(lo > 0, rng.integers(lo, hi + 1, size=(n, len(lo))), 0)
    return pd.DataFrame(
        {
            "draw": np.repeat(np.arange(n), len(lo)),
            "kommun_kod": np.tile(table["kommun_kod"].to_numpy(), n),
            "cohort": cohort.ravel(),
        }
    )


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    data = fe.load_synthetic()
    return data[(data["population"] == "man") & (data["outcome"] == "af_till_arbete")]


@pytest.fixture(scope="module")
def calendars() -> pd.DataFrame:
    return interval_sampler(6, seed=11)


def _with_cohorts(series: pd.DataFrame, calendar: pd.DataFrame) -> pd.DataFrame:
    mapping = calendar.set_index("kommun_kod")["cohort"]
    return series.assign(cohort=series["kommun_kod"].map(mapping).to_numpy())


def test_rubin_rules_hand_derived():
    """Three draws, exact fractions: Rubin (1987) and Barnard & Rubin (1999)."""
    q = [Fraction(1), Fraction(2), Fraction(4)]
    s = [Fraction(1, 2), Fraction(3, 5), Fraction(7, 10)]
    m = 3
    q_bar = sum(q) / m  # 7/3
    u_bar = sum(x * x for x in s) / m  # (1/4 + 9/25 + 49/100) / 3 = 11/30
    b = sum((x - q_bar) ** 2 for x in q) / (m - 1)  # (16/9 + 1/9 + 25/9) / 2 = 7/3
    t = u_bar + (1 + Fraction(1, m)) * b  # 11/30 + 28/9
    assert q_bar == Fraction(7, 3) and u_bar == Fraction(11, 30) and b == Fraction(7, 3)
    r = (1 + Fraction(1, m)) * b / u_bar
    nu = (m - 1) * (1 + 1 / r) ** 2
    fmi = (r + 2 / (nu + 3)) / (1 + r)
    out = rubin_pool(np.array([[1.0], [2.0], [4.0]]), np.array([[0.5], [0.6], [0.7]]))
    row = out.iloc[0]
    assert row["estimate"] == pytest.approx(float(q_bar), rel=1e-14)
    assert row["se"] == pytest.approx(float(t) ** 0.5, rel=1e-14)
    assert row["within_se"] == pytest.approx(float(u_bar) ** 0.5, rel=1e-14)
    assert row["between_sd"] == pytest.approx(float(b) ** 0.5, rel=1e-14)
    assert row["df"] == pytest.approx(float(nu), rel=1e-12)
    assert row["fraction_missing_info"] == pytest.approx(float(fmi), rel=1e-12)
    assert (row["min_estimate"], row["max_estimate"], row["n_draws"]) == (1.0, 4.0, 3)
    crit = stats.t.ppf(0.975, float(nu))
    assert row["ci_upper"] == pytest.approx(float(q_bar) + crit * float(t) ** 0.5, rel=1e-12)
    assert row["p_value"] == pytest.approx(
        2 * stats.t.sf(float(q_bar) / float(t) ** 0.5, float(nu)), rel=1e-10
    )
    # Barnard & Rubin (1999) with complete-data df 10
    lam = (1 + Fraction(1, m)) * b / t
    nu_obs = Fraction(11, 13) * 10 * (1 - lam)
    nu_br = 1 / (1 / nu + 1 / nu_obs)
    br = rubin_pool(np.array([[1.0], [2.0], [4.0]]), np.array([[0.5], [0.6], [0.7]]),
                    df_complete=10).iloc[0]  # fmt: skip
    assert br["df"] == pytest.approx(float(nu_br), rel=1e-12)
    # a quantity missing in one draw is pooled over the others
    part = rubin_pool(np.array([[1.0], [np.nan], [4.0]]), np.array([[0.5], [0.6], [0.7]]))
    assert part.iloc[0]["n_draws"] == 2 and part.iloc[0]["estimate"] == 2.5


def test_pooled_columns_and_draws_match_estimate(series, calendars):
    res = fe.estimate_over_calendars(series, calendars, window=(-5, 6))
    es = res.event_study
    assert list(es.columns) == ["event_time", *POOLED_COLUMNS]
    assert (es["se"] >= es["within_se"]).all()
    assert (es["between_sd"] > 0).all() and (es["n_draws"] == 6).all()
    assert ((es["min_estimate"] <= es["estimate"]) & (es["estimate"] <= es["max_estimate"])).all()
    # each draw's fit (shared preparation) equals estimate() on that calendar, and the pooled
    # numbers are the textbook formulas applied to them (plain numpy here)
    est, var = [], []
    for draw in range(6):
        one = fe.estimate(_with_cohorts(series, calendars[calendars["draw"] == draw]),
                          window=(-5, 6)).event_study  # fmt: skip
        est.append(one["estimate"].to_numpy())
        var.append(one["se"].to_numpy() ** 2)
    est, var = np.array(est), np.array(var)
    np.testing.assert_allclose(es["estimate"], est.mean(axis=0), rtol=1e-12)
    total = var.mean(axis=0) + (1 + 1 / 6) * est.var(axis=0, ddof=1)
    np.testing.assert_allclose(es["se"], np.sqrt(total), rtol=1e-12)
    drawn = res.info["draw_estimates"]
    np.testing.assert_allclose(drawn.pivot(index="draw", columns="event_time",
                                           values="estimate").to_numpy(), est, rtol=1e-12)  # fmt: skip
    assert res.overall["se"] >= res.overall["within_se"]
    assert res.info["shared_preparation"] is True
    # the usual result type: plot, to_frame and aggregations work
    assert len(res.to_frame()) == len(es) + 1
    agg = res.aggregate("group")
    assert {"key", "estimate", "se", "within_se"} <= set(agg.table.columns)
    assert agg.table["key"].dtype.kind == "i"
    import matplotlib

    matplotlib.use("Agg")
    res.plot()


def test_identical_to_estimate_when_all_draws_equal(series, calendars):
    one = calendars[calendars["draw"] == 2]
    same = pd.concat([one.assign(draw=d) for d in range(4)], ignore_index=True)
    for method, options in (("cs", {"control": "notyet"}), ("twfe", {"window": (-5, 6)})):
        pooled = fe.estimate_over_calendars(series, same, method=method, **options)
        direct = fe.estimate(_with_cohorts(series, one), method=method, **options)
        es, ref = pooled.event_study, direct.event_study
        assert (es["between_sd"] == 0).all() and (es["fraction_missing_info"] == 0).all()
        for col in ("estimate", "se", "ci_lower", "ci_upper", "p_value"):
            np.testing.assert_allclose(es[col], ref[col], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(es["within_se"], ref["se"], rtol=1e-12)
        assert pooled.overall["estimate"] == pytest.approx(direct.overall["estimate"], rel=1e-12)


def test_missing_kommuner_and_bad_calendars_raise(series, calendars):
    lacking = calendars[
        ~((calendars["draw"] == 3) & calendars["kommun_kod"].isin(["0180", "1480"]))
    ]
    with pytest.raises(EstimationInputError, match=r"draw 3.*0180.*1480"):
        fe.estimate_over_calendars(series, lacking)
    with pytest.raises(EstimationInputError, match="missing"):
        fe.estimate_over_calendars(series, calendars.drop(columns="draw"))
    with pytest.raises(EstimationInputError, match="once per draw"):
        fe.estimate_over_calendars(series, pd.concat([calendars, calendars.head(1)]))
    with pytest.raises(EstimationInputError, match="whole non-negative"):
        fe.estimate_over_calendars(series, calendars.assign(cohort=-1))
    with pytest.raises(EstimationInputError, match="type"):
        fe.estimate_over_calendars(series, calendars.assign(kommun_kod=lambda d: d.index))


def test_evaluated_cohorts_follow_each_draw_without_shared_preparation(series, calendars):
    # a kommun joining in the first year sends every draw through estimate() (no shared
    # preparation); draw 1 places no kommun in 2012, so it evaluates 2008 alone
    two = calendars[calendars["draw"].isin([0, 1])].copy()
    first = int(series["year"].min())
    two.loc[two["kommun_kod"] == two["kommun_kod"].iloc[0], "cohort"] = first
    two.loc[(two["draw"] == 1) & (two["cohort"] == 2012), "cohort"] = 2011
    assert {2008, 2012} <= set(two.loc[two["draw"] == 0, "cohort"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = fe.estimate_over_calendars(series, two, cohorts=[2008, 2012])
        direct = fe.estimate(_with_cohorts(series, two[two["draw"] == 1]), cohorts=[2008])
    assert res.info["shared_preparation"] is False
    drawn = res.info["draw_estimates"]
    np.testing.assert_allclose(drawn.loc[drawn["draw"] == 1, "estimate"].to_numpy(),
                               direct.event_study["estimate"].to_numpy(), rtol=1e-12)  # fmt: skip
    with pytest.raises(EstimationInputError, match="draw 1 gives none of the evaluated"):
        fe.estimate_over_calendars(series, two, cohorts=[2012])


def test_event_times_in_some_draws_only(series, calendars):
    # draw 1 has no cohort before 2012, so its event study stops at event time 6
    late = calendars[calendars["draw"] == 0].assign(
        draw=1, cohort=lambda d: np.where(d["cohort"] > 0, 2012, 0)
    )
    mixed = pd.concat([calendars[calendars["draw"] == 0], late], ignore_index=True)
    with pytest.warns(UserWarning, match="only some calendar draws"):
        res = fe.estimate_over_calendars(series, mixed)
    es = res.event_study.set_index("event_time")
    assert es.loc[0, "n_draws"] == 2 and es.loc[10, "n_draws"] == 1
    assert 10 in res.info["partial_event_times"]


# ----------------------------------------------------------------------------------------------
# Monte Carlo: the analyst sees only the documented intervals (docs/methods.md, "Unknown
# adoption years"). man × af_till_arbete (as tests/test_coverage.py), the full 290 × 21
# design, the synthetic truth's event-time path, 200 replications, M = 10 pooled calendars;
# true and analyst calendars are draws of the registry's compatible_calendars.

MC_REPS = 200
MC_EVENT_TIMES = list(range(7))


def _interval_summary(imputation: str) -> pd.DataFrame:
    from finsam_eval.inference.power import simulate

    sim = simulate(["cs"], reps=MC_REPS, seed=2026, population="man", outcome="af_till_arbete",
                   calendar="intervals", calendar_draws=10, progress=False,
                   method_options={"cs": {"window": (-5, 6)}},
                   calendar_imputation=imputation)  # fmt: skip
    assert sim.info["calendar_imputation"] == imputation
    s = sim.summary
    s = s[s["event_time"].isin(MC_EVENT_TIMES)]
    assert (s["n_reps"] == MC_REPS).all()
    return s.set_index(["method", "event_time"])


@pytest.fixture(scope="module")
def interval_summary():
    return _interval_summary("prior")


@pytest.fixture(scope="module")
def outcome_summary():
    return _interval_summary("outcome")


@pytest.mark.slow
def test_known_calendar_is_calibrated(interval_summary):
    """The oracle (true calendar) covers 92–98 % pooled over e = 0..6: the set-up is sound."""
    known = interval_summary.loc["cs_known"]
    assert 0.92 <= known["coverage"].mean() <= 0.98, known.to_string()
    assert known["coverage"].between(0.88, 0.995).all(), known.to_string()


@pytest.mark.slow
def test_pooling_improves_on_a_single_draw(interval_summary):
    pooled = interval_summary.loc["cs_pooled", "coverage"]
    single = interval_summary.loc["cs_single_draw", "coverage"]
    assert (pooled >= single).all(), pd.concat([pooled, single], axis=1).to_string()
    assert single.mean() < 0.85  # one calendar taken as the truth is overconfident
    assert 0.92 <= pooled.mean() <= 0.98


@pytest.mark.slow
def test_misclassification_attenuates_late_effects(interval_summary):
    """The documented cause of the shortfall: calendars drawn without the outcomes misclassify
    join years, and the estimates shrink towards zero (bias beyond 3 Monte Carlo SEs)."""
    pooled = interval_summary.loc["cs_pooled"].loc[[5, 6]]
    mc_se = pooled["sd_estimate"] / np.sqrt(MC_REPS)
    assert (pooled["bias"] < -3 * mc_se).all() and (pooled["truth"] > 0).all(), pooled.to_string()


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known shortfall (docs/methods.md): calendars drawn without the outcomes attenuate "
    "the growing late effects (91-91.5 % at e = 5, 6) and inflate the between-draw "
    "variance where effects are small (99.5 % at e = 0); more draws do not help",
)
def test_pooled_coverage_band_at_every_event_time(interval_summary):
    pooled = interval_summary.loc["cs_pooled", "coverage"]
    assert pooled.between(0.92, 0.98).all(), pooled.to_string()


@pytest.mark.slow
def test_outcome_informed_draws_remove_the_attenuation(outcome_summary, interval_summary):
    """Proper imputation (calendars drawn given the outcomes): the pooled bias at e = 5, 6 is
    within 3 Monte Carlo SEs of zero (the prior draws' is beyond 3, test above), and no event
    time covers below the nominal 95 %."""
    pooled = outcome_summary.loc["cs_pooled"]
    mc_se = pooled["sd_estimate"] / np.sqrt(MC_REPS)
    late = pooled.loc[[5, 6]]
    assert (late["bias"].abs() < 3 * mc_se.loc[[5, 6]]).all(), pooled.to_string()
    assert (pooled["coverage"] >= 0.95).all(), pooled.to_string()
    prior = interval_summary.loc["cs_pooled"]
    assert (pooled["bias"].abs() < prior["bias"].abs()).sum() >= 5, pooled.to_string()


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known shortfall (docs/methods.md): with outcome-informed calendars the pooled "
    "intervals are conservative (97.5-100 %, 100 % at e = 6): the pooled estimate is more "
    "precise than CS on the true calendar (MC SD 0.91-0.95 x the within SE over 800 "
    "replications), so every variance >= CS's own (within) over-covers; Rubin's total variance "
    "overstates most (the imputation error is negatively correlated with the sampling error); "
    "the bootstrap variance of tests/test_calendar_bootstrap.py is the calibrated alternative",
)
def test_outcome_informed_coverage_band_at_every_event_time(outcome_summary):
    pooled = outcome_summary.loc["cs_pooled", "coverage"]
    assert pooled.between(0.92, 0.98).all(), pooled.to_string()


def test_interval_simulation_of_other_methods_matches_estimate_over_calendars():
    """simulate(calendar="intervals") for a method other than CS: replication 0's pooled rows
    are estimate_over_calendars on that replication's data and calendars, its true-calendar
    rows are estimate on the true calendar; adding a method leaves CS's rows unchanged."""
    from dataclasses import replace

    from finsam_eval.inference.power import _interval_calendars, simulate
    from finsam_eval.synthetic.montecarlo import (
        draw_shares,
        effect_matrix,
        replication_seeds,
        series_world,
        to_panel,
    )

    reps, m, seed = 2, 3, 11
    args = dict(reps=reps, seed=seed, population="man", outcome="af_till_arbete",
                calendar="intervals", calendar_draws=m, effect=0.3, progress=False)  # fmt: skip
    options = {"window": (-3, 4)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both = simulate(["cs", "imputation"], **args,
                        method_options={"cs": options, "imputation": options})  # fmt: skip
        cs_only = simulate(["cs"], **args, method_options={"cs": options})
    assert set(both.estimates["method"]) == {
        f"{k}_{a}" for k in ("cs", "imputation")
        for a in ("pooled", "single_draw", "midpoint", "known")
    }  # fmt: skip
    assert set(both.info["analyses"]) == set(both.estimates["method"])
    cs_rows = both.estimates[both.estimates["method"].str.startswith("cs_")]
    pd.testing.assert_frame_equal(cs_rows.reset_index(drop=True), cs_only.estimates)

    # replication 0 rebuilt from the same calendars and noise stream
    world = series_world("man", "af_till_arbete")
    _, true_cal, analyst, _ = _interval_calendars(world, None, None, reps, m, seed)
    world_0 = replace(world, cohort=true_cal[0])
    y = draw_shares(world_0, effect_matrix(world_0, 0.3), replication_seeds(seed, reps)[:1])[0]
    frame = pd.DataFrame({"draw": np.repeat(np.arange(m), world.n_kommuner),
                          "kommun_kod": np.tile(world.codes, m),
                          "cohort": analyst[0].ravel()})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = fe.estimate_over_calendars(to_panel(world_0, y), frame, method="imputation",
                                            **options)  # fmt: skip
        known = fe.estimate(to_panel(world_0, y), method="imputation", **options)
    rows = both.estimates.query("rep == 0").set_index(["method", "event_time"])
    for name, result in (("imputation_pooled", pooled), ("imputation_known", known)):
        ours = rows.loc[name]
        ref = result.event_study.set_index("event_time").loc[ours.index]
        for col in ("estimate", "se", "ci_lower", "ci_upper"):
            np.testing.assert_allclose(ours[col], ref[col], rtol=1e-12, atol=1e-14)


def test_interval_simulation_needs_one_truth_for_all_methods():
    from finsam_eval.inference.power import simulate

    with pytest.raises(ValueError, match="same cohorts option"):
        simulate(["cs", "imputation"], reps=2, seed=1, calendar="intervals", calendar_draws=2,
                 method_options={"cs": {"cohorts": [2005, 2006]}})  # fmt: skip


@pytest.mark.slow
def test_imputation_estimator_pooled_over_outcome_draws():
    """The same Monte Carlo with the imputation estimator (Borusyak, Jaravel & Spiess), whose
    untreated-outcome model is the chains' working model: the pooled estimate is unbiased
    (within 3 Monte Carlo SEs at every event time), as variable as the estimator on the true
    calendar (not more precise, unlike CS: docs/methods.md), and its intervals cover at least
    the nominal 95 %; they are still conservative (up to 99.5 %, seed 1), see docs/methods.md."""
    from finsam_eval.inference.power import simulate

    sim = simulate(["imputation"], reps=MC_REPS, seed=2026, population="man",
                   outcome="af_till_arbete", calendar="intervals", calendar_draws=10,
                   calendar_imputation="outcome", progress=False,
                   method_options={"imputation": {"window": (-5, 6)}})  # fmt: skip
    s = sim.summary[sim.summary["event_time"].isin(MC_EVENT_TIMES)].set_index(
        ["method", "event_time"]
    )
    pooled, known = s.loc["imputation_pooled"], s.loc["imputation_known"]
    mc_se = pooled["sd_estimate"] / np.sqrt(MC_REPS)
    assert (pooled["bias"].abs() < 3 * mc_se).all(), pooled.to_string()
    ratio = pooled["sd_estimate"] / known["sd_estimate"]
    assert ratio.between(0.9, 1.25).all() and ratio.mean() >= 0.98, ratio.to_string()
    assert (pooled["coverage"] >= 0.95).all(), pooled.to_string()
    single = s.loc["imputation_single_draw", "coverage"]
    assert (pooled["coverage"] > single).all() and single.mean() < 0.92, single.to_string()


# ----------------------------------------------------------------------------------------------
# outcome-informed calendars (proper multiple imputation by data augmentation)


@pytest.fixture(scope="module")
def imputation_world():
    """The man × af_till_arbete world with a true calendar and four other prior draws."""
    from dataclasses import replace

    from finsam_eval.inference.power import _calendar_matrix
    from finsam_eval.registry import compatible_calendars
    from finsam_eval.synthetic.montecarlo import series_world

    world = series_world("man", "af_till_arbete")
    matrix = _calendar_matrix(compatible_calendars(5, 8), world.codes)
    return replace(world, cohort=matrix[0]), matrix[1:]


def _imputed(world, start, effect: float, seed: int = 2) -> np.ndarray:
    from finsam_eval.estimators.calendars import augment_calendars, join_units
    from finsam_eval.registry import calendar_model
    from finsam_eval.synthetic.montecarlo import draw_shares, effect_matrix, replication_seeds

    y = draw_shares(world, effect_matrix(world, effect), replication_seeds(4, 1))[0]
    units = join_units(start, calendar_model(), world.codes)
    return augment_calendars(y, world.years, start, *units, iterations=30,
                             rng=np.random.default_rng(seed))  # fmt: skip


def test_outcome_draws_find_the_true_calendar_when_the_effect_is_large(imputation_world):
    """Known truth: with a 2 pp effect the posterior draws agree with the true calendar far
    more often than the prior draws; with no effect the outcomes carry no information and the
    draws stay as far from it as the prior's."""
    world, start = imputation_world
    prior_miss = (start != world.cohort).mean()
    assert prior_miss > 0.3
    strong = _imputed(world, start, 2.0)
    assert (strong != world.cohort).mean() < 0.5 * prior_miss
    null = _imputed(world, start, 0.0)
    assert (null != world.cohort).mean() > 0.8 * prior_miss
    # count-preserving: every chain keeps its start's yearly counts
    for before, after in zip(start, strong, strict=True):
        np.testing.assert_array_equal(np.sort(before), np.sort(after))
    # deterministic given the Generator's seed
    np.testing.assert_array_equal(strong, _imputed(world, start, 2.0))


def test_imputed_calendars_honour_every_documented_fact(series):
    from finsam_eval.registry import compatible_calendars, validate_calendar

    start = compatible_calendars(3, seed=4)
    res = fe.estimate_over_calendars(series, start, window=(-5, 6), imputation="outcome",
                                     imputation_options={"seed": 1, "iterations": 10})  # fmt: skip
    imputed = res.info["calendars"]
    assert res.info["imputation"] == "outcome"
    assert set(imputed["draw"]) == {0, 1, 2}
    moved = 0
    for draw, part in imputed.groupby("draw"):
        report = validate_calendar(part[["kommun_kod", "cohort"]])
        assert report.ok, report.summary()
        before = start[start["draw"] == draw].set_index("kommun_kod")["cohort"]
        moved += int(
            (part.set_index("kommun_kod")["cohort"] != before.loc[part["kommun_kod"]]).sum()
        )
    assert moved > 0
    es = res.event_study
    assert (es["se"] >= es["within_se"]).all()


def test_imputation_option_errors(series, calendars):
    with pytest.raises(EstimationInputError, match="imputation must be one of"):
        fe.estimate_over_calendars(series, calendars, imputation="posterior")
    with pytest.raises(EstimationInputError, match="outcome' only"):
        fe.estimate_over_calendars(series, calendars, imputation_options={"seed": 1})
    gappy = series[~((series["kommun_kod"] == "0180") & (series["year"] == 2003))]
    with pytest.raises(EstimationInputError, match=r"balanced.*0180"):
        fe.estimate_over_calendars(gappy, calendars, imputation="outcome")
    # the independent stand-in sampler splits join groups: not a start for the chains
    with pytest.raises(EstimationInputError, match="not compatible with the calendar model"):
        fe.estimate_over_calendars(series, calendars, imputation="outcome")


def _early_counts(cohort: np.ndarray) -> np.ndarray:
    return np.stack([(cohort == g).sum(axis=1) for g in (2005, 2006, 2007)], axis=1)


def test_count_moves_sample_the_prior_without_information():
    """With a flat likelihood the single-unit moves must leave the prior (uniform over
    compatible calendars) invariant: started at prior draws, the chains' 2005/2006/2007
    counts keep the prior's distribution (compared with fresh ``compatible_calendars`` draws),
    every count stays inside its documented bounds, and the counts do move."""
    from finsam_eval.estimators.calendars import _shift_moves, count_constraints, join_units
    from finsam_eval.inference.power import _calendar_matrix
    from finsam_eval.registry import calendar_model, compatible_calendars
    from finsam_eval.registry.membership import adoption_intervals

    model = calendar_model()
    codes = adoption_intervals()["kommun_kod"].to_numpy()
    start = _calendar_matrix(compatible_calendars(300, 21), codes)
    prior = _early_counts(_calendar_matrix(compatible_calendars(2000, 22), codes))
    labels, lo, hi = join_units(start, model, codes)
    n_chain, n_units = lo.shape
    unit_year = np.zeros((n_chain, n_units), dtype=np.int64)
    size = np.zeros((n_chain, n_units))
    rows, cols = np.nonzero(labels >= 0)
    unit_year[rows, labels[rows, cols]] = start[rows, cols]
    np.add.at(size, (rows, labels[rows, cols]), 1.0)
    years, low, high = count_constraints(model)
    fixed = np.where(labels >= 0, 0, start)
    fixed_cum = ((fixed[:, :, None] <= years) & (fixed[:, :, None] > 0)).sum(axis=1)
    cand = np.arange(0, 2016)
    flat = np.zeros((n_chain, n_units, len(cand)))
    rng = np.random.default_rng(5)
    for _ in range(40):
        unit_year = _shift_moves(unit_year, size, lo, hi, flat, cand, fixed_cum,
                                 (years, low, high), 20, rng)  # fmt: skip
    cohort = np.where(labels >= 0, unit_year[np.arange(n_chain)[:, None], np.maximum(labels, 0)],
                      start)  # fmt: skip
    members_by = ((cohort[:, :, None] <= years) & (cohort[:, :, None] > 0)).sum(axis=1)
    assert ((members_by >= low) & (members_by <= high)).all()
    after, before = _early_counts(cohort), _early_counts(start)
    assert (after != before).any(axis=1).mean() > 0.9  # the counts move
    # same distribution as the prior: means within 4 Monte Carlo SEs, SDs within 20 %
    se = np.sqrt(prior.var(axis=0) / n_chain + prior.var(axis=0) / len(prior))
    assert (np.abs(after.mean(axis=0) - prior.mean(axis=0)) < 4 * se).all(), (
        after.mean(axis=0), prior.mean(axis=0))  # fmt: skip
    assert np.allclose(after.std(axis=0), prior.std(axis=0), rtol=0.2)


def test_chains_keep_the_counts_without_every_kommun(series):
    """Counts of the whole calendar are unknown when the data lack kommuner: each chain then
    keeps its start's yearly counts (only swaps), and with every kommun they may change."""
    from finsam_eval.estimators.calendars import impute_calendars
    from finsam_eval.registry import compatible_calendars

    start = compatible_calendars(4, seed=6)
    options = {"seed": 3, "iterations": 6}
    full = impute_calendars(series, start, **options)
    part = impute_calendars(series[series["kommun_kod"] != "0180"], start, **options)

    def counts(cal: pd.DataFrame) -> np.ndarray:
        wide = cal.pivot(index="draw", columns="kommun_kod", values="cohort")
        return _early_counts(wide.to_numpy())

    kept = start[start["kommun_kod"] != "0180"]
    assert (counts(part) == counts(kept)).all()
    assert (counts(full) != counts(start)).any()
