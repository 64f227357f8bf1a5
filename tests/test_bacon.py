"""Goodman-Bacon decomposition: the weighted 2×2 estimates add up to the static TWFE estimate,
and the table matches diff-diff's BaconDecomposition (simulated panels, mpdta and the synthetic
kommun panel)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import synthetic_series

from finsam_eval.estimators.bacon import (
    EARLIER_VS_LATER,
    LATER_VS_EARLIER,
    TREATED_VS_NEVER,
    bacon_decomposition,
)

SUM_TOL = 1e-10  # the decomposition is an identity
PEER_TOL = 1e-8


def simulated_panel(n: int = 90, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2012)
    cohort = rng.choice([0, 2003, 2005, 2008, 2010], n)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), len(years)),
            "year": np.tile(years, n),
            "g": np.repeat(cohort, len(years)),
            "pop": np.repeat(rng.integers(1, 100, n).astype(float), len(years)),
        }
    )
    d = (frame["g"] > 0) & (frame["year"] >= frame["g"])
    frame["y"] = (
        np.repeat(rng.normal(size=n), len(years))
        + 0.1 * (frame["year"] - 2000)
        + d * (1 + 0.4 * (frame["year"] - frame["g"]))
        + rng.normal(size=len(frame))
    )
    frame["D"] = d.astype(float)
    return frame


def synthetic_panel() -> pd.DataFrame:
    """The synthetic kommun panel (alla × sjukpenning) in simulated_panel's column names: id is
    the kommun code (str), pop the kommun-constant population weight; 121 2×2 comparisons."""
    frame = synthetic_series().drop(columns="id")
    frame = frame.rename(columns={"kommun_kod": "id", "share": "y", "cohort": "g", "w": "pop"})
    frame["D"] = ((frame["g"] > 0) & (frame["year"] >= frame["g"])).astype(float)
    return frame


@pytest.mark.parametrize("dataset", ["simulated", "synthetic"])
@pytest.mark.parametrize("weights", [None, "pop"])
def test_weighted_sum_equals_static_twfe(dataset: str, weights: str | None) -> None:
    pf = pytest.importorskip("pyfixest")
    frame = simulated_panel() if dataset == "simulated" else synthetic_panel()
    res = bacon_decomposition(frame, "y", "id", "year", "g", weights=weights)
    table = res.table
    assert abs(table["weight"].sum() - 1) < SUM_TOL
    assert abs((table["weight"] * table["estimate"]).sum() - res.twfe_estimate) < SUM_TOL
    fit = pf.feols("y ~ D | id + year", data=frame, weights=weights)
    assert abs(res.twfe_estimate - float(fit.coef()["D"])) < SUM_TOL
    assert set(table["type"]) == {TREATED_VS_NEVER, EARLIER_VS_LATER, LATER_VS_EARLIER}
    assert (table["weight"] > 0).all()


@pytest.fixture(params=["mpdta", "simulated", "synthetic"])
def peer_panel(request) -> tuple[pd.DataFrame, tuple[str, str, str, str]]:
    if request.param == "mpdta":
        frame = request.getfixturevalue("mpdta")
        return frame, ("lemp", "countyreal", "year", "first.treat")
    frame = simulated_panel(seed=7) if request.param == "simulated" else synthetic_panel()
    return frame, ("y", "id", "year", "g")


def test_matches_diff_diff(peer_panel) -> None:
    """Observed on the synthetic panel (121 comparisons): estimates 5.3e-15, weights 9.7e-17."""
    diff_diff = pytest.importorskip("diff_diff")
    frame, cols = peer_panel
    ours = bacon_decomposition(frame, *cols)
    theirs = diff_diff.BaconDecomposition().fit(frame, *cols)
    peer = theirs.to_dataframe()
    peer["comparison"] = peer["control_group"].replace({"never_treated": "never"})
    merged = ours.table.astype({"comparison": str}).merge(
        peer.astype({"comparison": str}),
        left_on=["treated", "comparison"],
        right_on=["treated_group", "comparison"],
        suffixes=("", "_peer"),
    )
    assert len(merged) == len(ours.table) == len(peer)
    np.testing.assert_allclose(merged["estimate"], merged["estimate_peer"], atol=PEER_TOL)
    np.testing.assert_allclose(merged["weight"], merged["weight_peer"], atol=PEER_TOL)
    assert abs(ours.twfe_estimate - theirs.twfe_estimate) < PEER_TOL


def test_plot_and_summary() -> None:
    import matplotlib

    matplotlib.use("Agg")
    res = bacon_decomposition(simulated_panel(), "y", "id", "year", "g")
    ax = res.plot()
    assert ax.get_xlabel() == "Weight" and len(ax.collections) == 3
    assert "Static TWFE estimate" in res.summary()
    by_type = res.by_type()
    assert abs((by_type["weight"] * by_type["estimate"]).sum() - res.twfe_estimate) < SUM_TOL
