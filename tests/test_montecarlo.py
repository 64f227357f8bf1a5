"""Monte Carlo redraws of one series from the fixed synthetic world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finsam_eval as fe
from finsam_eval.synthetic import montecarlo as mc


@pytest.fixture(scope="module")
def world():
    return mc.series_world("alla", "sjukpenning")


def test_truth_equals_load_synthetic_truth(world):
    ours = mc.true_event_study(world, mc.effect_matrix(world, "truth"))
    ref = fe.load_synthetic_truth("event_time")
    ref = ref[(ref["population"] == "alla") & (ref["outcome"] == "sjukpenning")]
    merged = ours.merge(ref, on="event_time", validate="one_to_one")
    assert len(merged) == len(ref) == len(ours)
    np.testing.assert_allclose(merged["truth"], merged["att"], atol=1e-10)
    np.testing.assert_array_equal(merged["n_kommuner_total_x"], merged["n_kommuner_total_y"])


def test_world_matches_bundled_panel(world):
    """Denominators are the panel's; the bundled shares scatter around expected + effect with
    the simulated spread."""
    panel = fe.load_synthetic()
    panel = panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")]
    grid = pd.MultiIndex.from_product([world.codes, world.years])
    panel = panel.set_index(["kommun_kod", "year"]).reindex(grid)
    shape = world.expected.shape
    np.testing.assert_array_equal(panel["denominator"].to_numpy().reshape(shape), world.denominator)
    residual = panel["share"].to_numpy().reshape(shape) - world.expected - world.effect
    sim = (
        mc.draw_shares(world, world.effect, mc.replication_seeds(0, 50))
        - world.expected
        - world.effect
    )
    assert abs(np.nanmean(residual)) < 0.01
    assert np.nanstd(residual) == pytest.approx(sim.std(), rel=0.05)


def test_mean_gap_equals_truth(world):
    """With effect="truth", the mean over replications of (cohort-size-weighted treated share
    minus the untreated expectation) is the truth, within 4 Monte Carlo standard errors."""
    reps = 400
    tau = mc.effect_matrix(world, "truth")
    shares = mc.draw_shares(world, tau, mc.replication_seeds(7, reps))
    gaps = np.stack([mc.true_event_study(world, s - world.expected)["truth"] for s in shares])
    truth = mc.true_event_study(world, tau)["truth"].to_numpy()
    mc_se = gaps.std(axis=0, ddof=1) / np.sqrt(reps)
    assert np.all(np.abs(gaps.mean(axis=0) - truth) < 4 * mc_se + 1e-12)


def test_noise_shrinks_with_size(world):
    shares = mc.draw_shares(world, np.zeros_like(world.expected), mc.replication_seeds(3, 300))
    sd = (shares - world.expected).std(axis=0).mean(axis=1)  # per kommun
    size = world.denominator.mean(axis=1)
    small, large = size < np.quantile(size, 0.1), size > np.quantile(size, 0.9)
    assert sd[small].mean() > 2 * sd[large].mean()
    assert np.corrcoef(np.log(size), np.log(sd))[0, 1] < -0.8
    # sampling sd is the stratified binomial one, at most the pooled formula
    p = world.expected / 100
    pooled = 100 * np.sqrt(p * (1 - p) / world.denominator)
    assert np.all(world.sampling_sd <= pooled * (1 + 1e-12))


def test_replications_do_not_depend_on_batching(world):
    seeds = mc.replication_seeds(11, 6)
    together = mc.draw_shares(world, world.effect, seeds)
    apart = np.concatenate(
        [mc.draw_shares(world, world.effect, seeds[i : i + 2]) for i in (0, 2, 4)]
    )
    np.testing.assert_array_equal(together, apart)


def test_effect_paths(world):
    zero = mc.effect_matrix(world, 0)
    assert not zero.any()
    const = mc.effect_matrix(world, 0.5)
    treated_post = (world.cohort[:, None] > 0) & (world.years[None] >= world.cohort[:, None])
    assert np.all(const[treated_post] == 0.5) and not const[~treated_post].any()
    table = pd.DataFrame({"event_time": [0, 1, 2], "att": [0.1, 0.2, 0.3]})
    tau = mc.effect_matrix(world, table)
    truth = mc.true_event_study(world, tau).set_index("event_time")["truth"]
    np.testing.assert_allclose(truth.loc[[0, 1, 2]], [0.1, 0.2, 0.3])
    assert truth.drop([0, 1, 2]).abs().max() == 0
    call = mc.effect_matrix(world, lambda g, e: np.where(e >= 0, 0.01 * (g - 2000), 0.0))
    k = int(np.flatnonzero(world.cohort == 2008)[0])
    assert call[k, world.years == 2012][0] == pytest.approx(0.08)
    with pytest.raises(ValueError):
        mc.effect_matrix(world, "nonsense")


def test_to_panel_columns(world):
    panel = mc.to_panel(world, world.expected)
    assert len(panel) == 290 * 21
    assert {"kommun_kod", "year", "cohort", "share", "weight", "cluster_kommun",
            "cluster_forbund", "cluster_lan"} <= set(panel.columns)  # fmt: skip
    assert panel["cluster_forbund"].str.startswith("none-").sum() == 49 * 21
