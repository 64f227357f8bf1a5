"""dCDH dynamic effects: parity with diff-diff's ChaisemartinDHaultfoeuille (same plug-in
variance; mpdta, the synthetic kommun panel and a panel with exits), with Callaway–Sant'Anna
not-yet-treated under absorbing treatment, and internal consistency of the influence
functions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import synthetic_series

from finsam_eval.estimators import dcdh, estimate
from finsam_eval.estimators.prepare import EstimationInputError
from finsam_eval.estimators.spec import EstimationSpec


def _dcdh(data: pd.DataFrame, *columns: str, **options):
    """dCDH through ``fit(data, spec)``; not-yet-treated controls, the method's usual choice."""
    spec = EstimationSpec.build("dcdh", data, *columns, **{"control": "notyet", **options})
    return dcdh.fit(data, spec)


# points and SEs: the same formulas evaluated in a different order
POINT_TOL = 1e-8
SE_TOL = 1e-8


#: panel_with_exits' outcome, unit, time and cohort columns
EXITS = ("y", "id", "year", "g")


def panel_with_exits(n: int = 120, seed: int = 3) -> pd.DataFrame:
    """Staggered joining 2003–2009 with 30% of members leaving 2–4 years later."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2013)
    cohort = rng.choice([0, 2003, 2005, 2007, 2009], n)
    leaves = np.where((cohort > 0) & (rng.random(n) < 0.3), cohort + rng.integers(2, 5, n), 9999)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), len(years)),
            "year": np.tile(years, n),
            "g": np.repeat(cohort, len(years)),
            "cl": np.repeat(np.arange(n) % 11, len(years)),
            "pop": np.repeat(rng.integers(1, 4, n), len(years)),
        }
    )
    g, t = frame["g"].to_numpy(), frame["year"].to_numpy()
    frame["member"] = ((g > 0) & (t >= g) & (t < np.repeat(leaves, len(years)))).astype(int)
    frame["y"] = (
        np.repeat(rng.normal(size=n), len(years))
        + 0.1 * (t - 2000)
        + frame["member"] * (1 + 0.2 * (t - g))
        + rng.normal(size=len(frame))
    )
    return frame


def fit_peer(frame: pd.DataFrame, outcome: str, unit: str, time: str, treatment: str, lags: int):
    diff_diff = pytest.importorskip("diff_diff")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # drop_larger_lower=False: R's did_multiplegt_dyn keeps binary joiners that later leave
        # (their treatment never falls below the baseline); diff-diff's True drops them
        return diff_diff.ChaisemartinDHaultfoeuille(
            twfe_diagnostic=False, drop_larger_lower=False
        ).fit(frame, outcome, unit, time, treatment, L_max=lags)


def assert_matches_peer(ours, peer) -> None:
    es = ours.event_study.set_index("event_time")
    for lag, row in peer.event_study_effects.items():
        assert abs(es.loc[lag - 1, "estimate"] - row["effect"]) < POINT_TOL
        assert abs(es.loc[lag - 1, "se"] - row["se"]) < SE_TOL
    compared = 0
    for lag, row in peer.placebo_event_study.items():
        if np.isfinite(row["effect"]):  # diff-diff keys placebos by -lag
            assert abs(es.loc[lag - 1, "estimate"] - row["effect"]) < POINT_TOL
            assert abs(es.loc[lag - 1, "se"] - row["se"]) < SE_TOL
            compared += 1
    assert compared == (es["estimate"].index < -1).sum()
    # average total effect: same point; diff-diff's SE treats horizons as independent, ours
    # keeps their covariance (influence functions), so only the point is compared
    assert abs(ours.info["average_total_effect"]["estimate"] - peer.overall_att) < POINT_TOL


def _with_treatment(frame: pd.DataFrame, time: str, cohort: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["D"] = ((frame[cohort] > 0) & (frame[time] >= frame[cohort])).astype(int)
    return frame


@pytest.fixture(params=["mpdta", "synthetic"])
def panel(request) -> tuple[pd.DataFrame, tuple[str, str, str, str], int]:
    """(data, columns, number of effects): mpdta and the synthetic kommun panel (alla ×
    sjukpenning: 14 effects, 2005–2018, and 10 placebos)."""
    if request.param == "mpdta":
        frame = _with_treatment(request.getfixturevalue("mpdta"), "year", "first.treat")
        return frame, ("lemp", "countyreal", "year", "first.treat"), 4
    frame = _with_treatment(synthetic_series(), "year", "cohort")
    return frame, ("share", "id", "year", "cohort"), 14


def test_matches_diff_diff(panel) -> None:
    """Observed on the synthetic panel: effects and placebos ≤ 2.3e-16, SEs ≤ 2.8e-17."""
    frame, cols, effects = panel
    ours = _dcdh(frame, *cols)
    assert ours.info["effects"] == effects
    assert_matches_peer(ours, fit_peer(frame, *cols[:3], "D", effects))
    # the treatment column and the cohort column describe the same absorbing path
    from_column = _dcdh(frame, *cols, treatment="D")
    pd.testing.assert_frame_equal(ours.event_study, from_column.event_study)


def test_exits_match_diff_diff() -> None:
    frame = panel_with_exits()
    ours = _dcdh(frame, *EXITS, treatment="member")
    assert ours.info["n_exits_after_joining"] > 0
    assert_matches_peer(ours, fit_peer(frame, "y", "id", "year", "member", ours.info["effects"]))


def test_absorbing_effects_equal_cs_not_yet_treated() -> None:
    diff_diff = pytest.importorskip("diff_diff")
    frame = panel_with_exits()
    frame["member"] = ((frame["g"] > 0) & (frame["year"] >= frame["g"])).astype(int)
    ours = _dcdh(frame, *EXITS).event_study.set_index("event_time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = diff_diff.CallawaySantAnna(control_group="not_yet_treated").fit(
            frame, *EXITS, aggregate="event_study"
        )
    compared = 0
    for e, row in cs.event_study_effects.items():
        if e >= 0:
            assert abs(ours.loc[int(e), "estimate"] - row["effect"]) < POINT_TOL
            compared += 1
    assert compared == (ours.index >= 0).sum()


def test_integer_weights_equal_duplicated_units() -> None:
    frame = panel_with_exits(n=40, seed=5)
    weighted = _dcdh(frame, *EXITS, treatment="member", weights="pop")
    copies = frame.loc[frame.index.repeat(frame["pop"])].copy()
    copies["id"] = (
        copies["id"].astype(str) + "_" + copies.groupby(["id", "year"]).cumcount().astype(str)
    )
    duplicated = _dcdh(copies, *EXITS, treatment="member")
    np.testing.assert_allclose(
        weighted.event_study["estimate"], duplicated.event_study["estimate"], atol=POINT_TOL
    )


@pytest.mark.parametrize("cluster", [None, "cl"])
def test_influence_reproduces_vcov_and_aggregates(cluster: str | None) -> None:
    frame = panel_with_exits()
    res = _dcdh(frame, *EXITS, treatment="member", cluster=cluster)
    psi = res.event_influence
    n = psi.shape[0]
    assert n == len(res.unit_labels) == (11 if cluster else 120)
    estimated = ~res.event_study["reference"].to_numpy()
    np.testing.assert_allclose(
        psi[:, estimated].T @ psi[:, estimated] / n**2, res.vcov.to_numpy(), atol=1e-14
    )
    post = (res.event_study["event_time"] >= 0).to_numpy()
    overall = psi[:, post].mean(axis=1)
    assert abs(res.event_study.loc[post, "estimate"].mean() - res.overall["estimate"]) < 1e-12
    assert abs(np.sqrt(overall @ overall) / n - res.overall["se"]) < 1e-12


def test_window_and_dispatch() -> None:
    frame = panel_with_exits()
    res = estimate(
        frame, *EXITS, method="dcdh", control="notyet", treatment="member", window=(-3, 4)
    )
    assert list(res.event_study["event_time"]) == list(range(-3, 5))
    assert res.event_study.loc[res.event_study["event_time"] == -1, "reference"].item()
    with pytest.raises(EstimationInputError, match="0/1"):
        _dcdh(frame.assign(member=frame["member"] * 2), *EXITS, treatment="member")
