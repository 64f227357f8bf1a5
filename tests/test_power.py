"""simulate() and minimum_detectable_effect()."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import finsam_eval as fe
from finsam_eval.estimators.api import METHODS
from finsam_eval.inference.power import CSBatch, isf_design, simulate
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


def test_isf_design():
    world = isf_design(series_world("alla", "sjukpenning"))
    assert world.years.max() == 2016
    cohorts = set(np.unique(world.cohort))
    assert cohorts <= {0, *range(2005, 2011)}
    assert world.n_kommuner == 290 - int(
        np.isin(series_world("alla", "sjukpenning").cohort, range(2011, 2017)).sum()
    )


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
    """An effect equal to the MDE at event time 3 is detected in about 80 % of replications."""
    mde = fe.minimum_detectable_effect("man", "af_till_arbete", reps=400, seed=1,
                                       progress=False)  # fmt: skip
    target = float(mde.loc[mde["event_time"] == 3, "mde"].iloc[0])
    sim = simulate(["cs"], reps=400, seed=2, population="man", outcome="af_till_arbete",
                   effect=target, design="isf", progress=False)  # fmt: skip
    power = float(sim.summary.query("event_time == 3")["power"].iloc[0])
    assert 0.72 < power < 0.88
