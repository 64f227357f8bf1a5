"""Randomization inference on adoption years and placebo adoption years."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from finsam_eval.estimators import estimate
from finsam_eval.inference import randomization
from finsam_eval.inference.randomization import placebo_data, randomization_inference
from finsam_eval.synthetic.montecarlo import (
    draw_shares,
    effect_matrix,
    replication_seeds,
    series_world,
    to_panel,
)


def _ri(data, method, reps, *, window=None, **options):
    """Randomization inference of a fitted result (the estimate options travel with it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fitted = estimate(data, method=method, **({} if window is None else {"window": window}))
    return randomization_inference(fitted, reps=reps, **options)


pytestmark = pytest.mark.filterwarnings("ignore:pre-test not computed")


@pytest.fixture(scope="module")
def world():
    return series_world("man", "af_till_arbete")


def _panels(world, effect, n, seed):
    tau = effect_matrix(world, effect)
    return [to_panel(world, y) for y in draw_shares(world, tau, replication_seeds(seed, n))]


def test_null_p_values_roughly_uniform(world):
    """Under the sharp null the overall-effect p-values over 50 data sets are uniform."""
    p = [
        _ri(d, "cs", 199, seed=i, progress=False).table.iloc[-1]["p_value"]
        for i, d in enumerate(_panels(world, 0.0, 50, seed=10))
    ]
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.0 < np.mean(np.array(p) < 0.1) < 0.25


def test_big_effect_gives_smallest_p(world):
    data = _panels(world, "truth", 1, seed=2)[0]
    ri = _ri(data, "cs", 199, seed=1, progress=False)
    post = ri.table[(ri.table["term"] == "overall") | (ri.table["event_time"] >= 2)]
    assert np.allclose(post["p_value"], 1 / 200)
    assert ri.info["batched"]
    assert (ri.table["n_valid"] == 199).all() and (ri.table["n_failed"] == 0).all()


def test_batched_equals_refitting(world):
    data = _panels(world, "truth", 1, seed=3)[0]
    ri = _ri(data, "cs", 8, seed=5, progress=False)
    codes = np.unique(data["kommun_kod"].to_numpy(), return_inverse=True)[1]
    times = ri.table["event_time"].dropna().to_numpy(int)
    refit, errors = randomization._permutation_chunk(
        data, codes, "cohort", "cs", {"unit": "kommun_kod", "time": "year"}, times, ri.cohorts
    )
    assert not errors
    np.testing.assert_allclose(ri.draws, refit, atol=1e-10)


@pytest.mark.parametrize("method", ["twfe", "sa", "imputation"])
def test_deterministic_any_worker_count(world, method):
    data = _panels(world, 0.0, 1, seed=4)[0]
    a = _ri(data, method, 6, seed=9, progress=False, n_jobs=1,
                                chunk_size=2, window=(-3, 3))  # fmt: skip
    b = _ri(data, method, 6, seed=9, progress=False, n_jobs=2,
                                chunk_size=4, window=(-3, 3))  # fmt: skip
    np.testing.assert_array_equal(a.draws, b.draws)
    np.testing.assert_array_equal(a.table["p_value"], b.table["p_value"])


def test_within_lan_keeps_each_lan_cohorts(world):
    data = _panels(world, 0.0, 1, seed=5)[0]
    ri = _ri(data, "cs", 20, within="lan", seed=1, progress=False)
    lan = data.drop_duplicates("kommun_kod").set_index("kommun_kod").loc[ri.units, "lan_kod"]
    observed = data.drop_duplicates("kommun_kod").set_index("kommun_kod").loc[ri.units, "cohort"]
    for vector in ri.cohorts:
        for code in np.unique(lan):
            members = (lan == code).to_numpy()
            assert sorted(vector[members]) == sorted(observed.to_numpy()[members])
    assert not all(np.array_equal(v, observed.to_numpy()) for v in ri.cohorts)


def test_failures_are_counted_not_hidden(world, monkeypatch):
    data = _panels(world, 0.0, 1, seed=6)[0]
    calls = {"n": 0}
    real = randomization.estimate

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1 and calls["n"] % 3 == 0:  # the observed fit is call 1
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(randomization, "estimate", flaky)
    with pytest.warns(UserWarning, match="permutations gave no estimate"):
        ri = _ri(data, "twfe", 9, seed=1, progress=False,
                                     n_jobs=1, window=(-3, 3))  # fmt: skip
    assert (ri.table["n_failed"] == 3).all() and (ri.table["n_valid"] == 6).all()
    assert ri.info["errors"]["RuntimeError: boom"] == 3
    assert np.isnan(ri.draws).all(axis=1).sum() == 3


def test_placebo_adoption_years(world):
    data = _panels(world, "truth", 1, seed=7)[0]
    placebo = placebo_data(data, 2)
    member = placebo["cohort"] > 0
    original = data.drop_duplicates("kommun_kod").set_index("kommun_kod")["cohort"]
    assert (
        placebo.loc[member, "year"] < original.loc[placebo.loc[member, "kommun_kod"]].to_numpy()
    ).all()
    assert (
        placebo.loc[member, "cohort"] + 2
        == original.loc[placebo.loc[member, "kommun_kod"]].to_numpy()
    ).all()
    ri = _ri(data, "twfe", 30, seed=2, progress=False,
                                 placebo_shift=2, window=(-4, 1))  # fmt: skip
    assert ri.info["placebo_shift"] == 2
    # no real effect in pre-treatment data: the placebo effects are not significant
    post = ri.table[ri.table["event_time"].isin([0, 1])]
    assert (post["p_value"] > 0.05).all()
