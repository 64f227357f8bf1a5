"""simulate() and minimum_detectable_effect()."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import finsam_eval as fe
from finsam_eval.design import isf_design
from finsam_eval.estimators.api import METHODS
from finsam_eval.estimators.cs_batch import CSBatch
from finsam_eval.inference.power import design_world, simulate
from finsam_eval.synthetic.montecarlo import (
    draw_shares,
    replication_seeds,
    series_world,
    to_panel,
)

pytestmark = pytest.mark.filterwarnings("ignore:pre-test not computed")


@pytest.mark.parametrize("window", [None, (-4, 6)])
def test_cs_batch_equals_estimate(window):
    world = series_world("man", "af_till_arbete")
    y = draw_shares(world, world.effect, replication_seeds(5, 3))
    fit = CSBatch(world.cohort, world.years, window).fit(y)
    for r in range(3):
        res = fe.estimate(to_panel(world, y[r]), method="cs", window=window)
        es = res.event_study
        np.testing.assert_allclose(fit["estimate"][r], es["estimate"], rtol=0, atol=1e-11)
        np.testing.assert_allclose(fit["se"][r], es["se"], rtol=1e-10)
        assert fit["overall"][r] == pytest.approx(res.overall["estimate"], abs=1e-11)
        assert fit["overall_se"][r] == pytest.approx(res.overall["se"], rel=1e-10)


def test_cs_batch_permuted_point_estimates():
    world = series_world("alla", "sa")
    y = draw_shares(world, world.effect, replication_seeds(2, 1))[0]
    cs = CSBatch(world.cohort, world.years)
    rng = np.random.default_rng(0)
    perms = np.stack([world.cohort, rng.permutation(world.cohort)])
    est = cs.point_estimates(y, perms)
    for p in range(2):
        panel = to_panel(world, y).assign(cohort=np.repeat(perms[p], len(world.years)))
        res = fe.estimate(panel, method="cs")
        np.testing.assert_allclose(est[p, :-1], res.event_study["estimate"], atol=1e-11)
        assert est[p, -1] == pytest.approx(res.overall["estimate"], abs=1e-11)


def test_simulate_summary_and_determinism():
    methods = [m for m in ("cs", "twfe") if m in METHODS]
    a = simulate(methods, reps=6, seed=3, progress=False, n_jobs=1, chunk_size=4)
    b = simulate(methods, reps=6, seed=3, progress=False, n_jobs=2, chunk_size=3)
    cols = ["method", "event_time", "bias", "rmse", "coverage", "power", "truth",
            "mean_estimate", "mean_se"]  # fmt: skip
    assert set(cols) <= set(a.summary.columns)
    np.testing.assert_array_equal(a.estimates["estimate"], b.estimates["estimate"])
    assert set(a.summary["method"]) == set(methods)
    assert a.info["batched"] == ["cs"]
    assert (a.summary["n_reps"] == 6).all()


def test_isf_design_world_keeps_later_joiners_as_not_yet():
    full = series_world("alla", "sjukpenning")
    world = design_world(full, isf_design())
    assert world.years.min() == 1998 and world.years.max() == 2016
    # seed 001: comparison with kommuner that have not (yet) joined: every kommun stays,
    # later joiners with their own cohort, joiners after 2016 never treated inside the panel
    assert world.n_kommuner == full.n_kommuner == 290
    later = (full.cohort >= 2011) & (full.cohort <= 2016)
    np.testing.assert_array_equal(world.cohort[later], full.cohort[later])
    assert (world.cohort[full.cohort > 2016] == 0).all()


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_cs_batch_notyet_and_cohorts_equal_estimate(control):
    """CSBatch with not-yet-treated controls and evaluated cohorts equals ``estimate``."""
    world = design_world(series_world("kvinnor", "sa"), isf_design())
    cohorts = list(range(2005, 2011))
    y = draw_shares(world, world.effect, replication_seeds(7, 2))
    fit = CSBatch(world.cohort, world.years, (-5, 6), control=control, cohorts=cohorts).fit(y)
    for r in range(2):
        res = fe.estimate(to_panel(world, y[r]), method="cs", window=(-5, 6), control=control,
                          cohorts=cohorts)  # fmt: skip
        es = res.event_study
        np.testing.assert_allclose(fit["estimate"][r], es["estimate"], rtol=0, atol=1e-11)
        np.testing.assert_allclose(fit["se"][r], es["se"], rtol=1e-10)
        assert fit["overall_se"][r] == pytest.approx(res.overall["se"], rel=1e-10)


def test_cs_cohorts_option_restricts_the_event_study():
    """Independent check: with one evaluated cohort and never-treated controls, event time 0
    is that cohort's 2×2 mean difference of the outcome change."""
    world = series_world("alla", "sjukpenning")
    y = draw_shares(world, world.effect, replication_seeds(3, 1))[0]
    res = fe.estimate(to_panel(world, y), method="cs", cohorts=[2008])
    years = list(world.years)
    dy = y[:, years.index(2008)] - y[:, years.index(2007)]
    expected = dy[world.cohort == 2008].mean() - dy[world.cohort == 0].mean()
    row = res.event_study.set_index("event_time").loc[0]
    assert row["estimate"] == pytest.approx(expected, abs=1e-12)
    assert res.info["cohorts"] == [2008]
    assert set(res.att_gt["cohort"]) > {2008}  # the other cohorts' cells stay reported
    with pytest.raises(fe.estimators.EstimationInputError, match="1999"):
        fe.estimate(to_panel(world, y), method="cs", cohorts=[1999])


def test_isf_simulation_refuses_methods_without_cohort_restriction():
    with pytest.raises(ValueError, match="only method 'cs'"):
        simulate(["cs", "twfe"], reps=2, design="isf", progress=False)


def test_minimum_detectable_effect():
    mde = fe.minimum_detectable_effect("alla", ["sjukpenning", "uvas"], method="cs", reps=300,
                                       seed=4, progress=False)  # fmt: skip
    assert list(mde["event_time"]) == list(range(7))  # uvas is not defined for alla
    factor = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    np.testing.assert_allclose(mde["mde"], factor * mde["sd_null"])
    # the MC SD and the analytic SE agree within MC error (about 4 % at 300 reps)
    np.testing.assert_allclose(mde["sd_null"], mde["mean_se"], rtol=0.2)
    # the test holds its size under the null
    assert mde["rejection_null"].mean() < 0.09


def test_mde_detected_with_target_power():
    """An effect equal to the MDE at event time 3 is detected in about 80 % of replications.

    Error budget: the MDE's null SD from R replications has relative error 1/sqrt(2R), which
    moves the power by about 2.8 * phi(0.84) / sqrt(2R) (0.028 at R = 400, 0.014 at 1600); the
    power's own Monte Carlo SE at 400 replications is 0.02. With R = 1600 the band 0.72–0.88
    is about 3.3 combined SDs (2.3 at R = 400, where the world of the merged registry
    calendar gave 0.88, on the edge).
    """
    mde = fe.minimum_detectable_effect("man", "af_till_arbete", reps=1600, seed=1,
                                       progress=False)  # fmt: skip
    target = float(mde.loc[mde["event_time"] == 3, "mde"].iloc[0])
    sim = simulate(["cs"], reps=400, seed=2, population="man", outcome="af_till_arbete",
                   effect=target, design="isf", progress=False)  # fmt: skip
    power = float(sim.summary.query("event_time == 3")["power"].iloc[0])
    assert 0.72 < power < 0.88


def test_cs_cohorts_option_in_the_linear_replay():
    """The wild bootstrap's linear replay of CS keeps only the evaluated cohorts' cells."""
    from finsam_eval.inference.wild_refit_cs import linear_cs_aggregate

    world = design_world(series_world("alla", "sa"), isf_design())
    y = draw_shares(world, world.effect, replication_seeds(9, 1))[0]
    panel = to_panel(world, y)
    res = fe.estimate(panel, method="cs", control="notyet", cohorts=range(2005, 2011),
                      window=(-5, 6))  # fmt: skip
    lin = linear_cs_aggregate(panel, res, keys=[0, 3, 6])
    expected = res.event_study.set_index("event_time").loc[[0, 3, 6], "estimate"]
    np.testing.assert_allclose((lin.E @ y.ravel())[:3], expected, atol=1e-12)


def test_simulate_all_cohorts_design():
    """The named alternative: every cohort evaluated, CS with not-yet-treated comparisons."""
    sim = simulate(["cs", "twfe"], reps=2, seed=1, design=fe.all_cohorts_design(), progress=False)
    assert sim.info["design"] == "all_cohorts"
    assert sim.info["method_options"]["cs"]["control"] == "notyet"
    assert "cohorts" not in sim.info["method_options"]["cs"]
    assert sim.info["n_years"] == 21
