"""Estimates pooled over compatible adoption calendars (Rubin's rules) and their Monte Carlo proof.

The stand-in sampler below draws each kommun's join year uniformly inside its documented
interval (registry ``adoption_intervals``), independently: it ignores the joint count
constraints and serves only where the registry's ``compatible_calendars`` is not needed.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def interval_summary():
    from finsam_eval.inference.power import simulate

    sim = simulate(["cs"], reps=MC_REPS, seed=2026, population="man", outcome="af_till_arbete",
                   calendar="intervals", calendar_draws=10, progress=False,
                   method_options={"cs": {"window": (-5, 6)}})  # fmt: skip
    s = sim.summary
    s = s[s["event_time"].isin(MC_EVENT_TIMES)]
    assert (s["n_reps"] == MC_REPS).all()
    return s.set_index(["method", "event_time"])


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
    "the growing late effects (coverage below 92 % at e = 6) and inflate the between-draw "
    "variance where effects are small (above 98 % at e = 0); more draws do not help",
)
def test_pooled_coverage_band_at_every_event_time(interval_summary):
    pooled = interval_summary.loc["cs_pooled", "coverage"]
    assert pooled.between(0.92, 0.98).all(), pooled.to_string()
