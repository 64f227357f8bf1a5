"""Stacked DiD (Wing, Freedman & Hollingsworth 2024): parity with diff-diff (mpdta, a simulated
panel and the synthetic kommun panel) and with a direct implementation of the paper's
corrective weights fitted by statsmodels WLS with dummies."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from helpers import synthetic_series

from finsam_eval.estimators import estimate, stacked
from finsam_eval.estimators.prepare import EstimationInputError
from finsam_eval.estimators.spec import EstimationSpec


def _stacked(data: pd.DataFrame, *columns: str, **options):
    return stacked.fit(data, EstimationSpec.build("stacked", data, *columns, **options))


# tolerances: points and vcov are the same algebra computed in a different order
POINT_TOL = 1e-8
VCOV_TOL = 1e-10


def simulated_panel(n: int = 60, seed: int = 0, weights: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2012)
    cohort = rng.choice([0, 2004, 2006, 2008, 2013], n)
    unit_effect = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), len(years)),
            "year": np.tile(years, n),
            "g": np.repeat(cohort, len(years)),
            "cl": np.repeat(np.arange(n) % 9, len(years)),
            "pop": np.repeat(rng.integers(1, 50, n).astype(float), len(years)),
        }
    )
    treated = (frame["g"] > 0) & (frame["year"] >= frame["g"])
    effect = np.where(treated, 1.0 + 0.3 * (frame["year"] - frame["g"]) + frame["g"] % 3, 0.0)
    frame["y"] = (
        np.repeat(unit_effect, len(years))
        + 0.2 * (frame["year"] - 2000)
        + effect
        + rng.normal(size=len(frame))
    )
    if not weights:
        frame = frame.drop(columns="pop")
    return frame


def direct_stacked(
    frame: pd.DataFrame, window: tuple[int, int], control: str, weight: str | None = None
):
    """The paper's recipe written out: stack, weight by Q, WLS with FE dummies (statsmodels)."""
    lo, hi = window
    t_min, t_max = frame["year"].min(), frame["year"].max()
    pieces = []
    for a in sorted(c for c in frame["g"].unique() if c > 0 and c <= t_max):
        if a + lo < t_min or a + hi > t_max:
            continue
        clean = (frame["g"] == 0) | (frame["g"] > t_max)
        if control == "notyet":
            clean |= frame["g"] > a + hi
        sub = frame[((frame["g"] == a) | clean) & frame["year"].between(a + lo, a + hi)].copy()
        sub["sub"] = a
        sub["treated"] = (sub["g"] == a).astype(int)
        sub["e"] = sub["year"] - a
        pieces.append(sub)
    stack = pd.concat(pieces, ignore_index=True)
    stack["w"] = 1.0 if weight is None else stack[weight]
    mass = stack.groupby(["e", "sub", "treated"])["w"].sum().unstack("treated")
    share = mass / mass.groupby(level="e").transform("sum")
    q = (share[1] / share[0]).rename("q").reset_index()
    stack = stack.merge(q, on=["e", "sub"])
    stack["omega"] = np.where(stack["treated"] == 1, 1.0, stack["q"]) * stack["w"]
    names = [f"d{e}" for e in range(lo, hi + 1) if e != -1]
    for e in range(lo, hi + 1):
        if e != -1:
            stack[f"d{e}"] = stack["treated"] * (stack["e"] == e)
    si = pd.get_dummies(stack["sub"].astype(str) + "_" + stack["id"].astype(str), dtype=float)
    st = pd.get_dummies(stack["sub"].astype(str) + "_" + stack["e"].astype(str), dtype=float)
    design = pd.concat([stack[names].astype(float), si, st.iloc[:, 1:]], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dummies are collinear by construction (pinv fit)
        model = sm.WLS(stack["y"], design, weights=stack["omega"]).fit()
    robust = model.get_robustcov_results(cov_type="cluster", groups=stack["id"].to_numpy())
    # statsmodels' CR1 factor counts every design column (sandwich_covariance.cov_cluster)
    n_params = design.shape[1]
    # fixest's fixef.K = "nested": the sub-experiment × unit effects are nested in the unit
    # clusters and drop out of K; every sub-experiment × event-time level stays (the nested
    # effects no longer absorb an intercept), so K = slopes + sub × event-time levels
    k_nested = len(names) + st.shape[1]
    return (
        model.params[names].to_numpy(),
        robust.cov_params()[: len(names), : len(names)],
        (len(stack), n_params, k_nested),
        stack,
    )


@pytest.mark.parametrize("control", ["never", "notyet"])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_direct_wls_with_paper_weights(control: str, weighted: bool) -> None:
    frame = simulated_panel(weights=weighted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _stacked(
            frame,
            "y",
            "id",
            "year",
            "g",
            control=control,
            window=(-3, 2),
            weights="pop" if weighted else None,
        )
    coef, cov, (n_obs, k_full, k_nested), stack = direct_stacked(
        frame, (-3, 2), control, "pop" if weighted else None
    )
    est = res.event_study.loc[~res.event_study["reference"], "estimate"].to_numpy()
    np.testing.assert_allclose(est, coef, atol=POINT_TOL, rtol=0)
    # statsmodels counts every sub-experiment × unit dummy in K; we count them as one level
    # nested in the unit clusters (fixest convention), so the covariances differ by a known factor
    assert res.info["n_obs"] == n_obs
    assert res.info["n_params"] == k_nested
    rescale = (n_obs - k_full) / (n_obs - k_nested)
    np.testing.assert_allclose(res.vcov.to_numpy(), cov * rescale, rtol=1e-8, atol=0)
    # and pyfixest (fixest's nested K by default) on the same stack gives our vcov directly
    pf = pytest.importorskip("pyfixest")
    names = [f"d{e}" for e in range(-3, 3) if e != -1]
    stack = stack.rename(columns={n: n.replace("-", "m") for n in names})
    stack["sub_unit"] = stack["sub"].astype(str) + "_" + stack["id"].astype(str)
    stack["sub_e"] = stack["sub"].astype(str) + "_" + stack["e"].astype(str)
    rhs = " + ".join(n.replace("-", "m") for n in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixest = pf.feols(
            f"y ~ {rhs} | sub_unit + sub_e", data=stack, weights="omega", vcov={"CRV1": "id"}
        )
    np.testing.assert_allclose(est, fixest.coef().to_numpy(), atol=POINT_TOL, rtol=0)
    np.testing.assert_allclose(res.vcov.to_numpy(), fixest._vcov, rtol=1e-8, atol=0)


@pytest.fixture(params=["mpdta", "simulated", "synthetic"])
def peer_panel(request) -> tuple[pd.DataFrame, tuple[int, int], tuple[str, str, str, str]]:
    """(data, window, columns) for the diff-diff comparison. Synthetic: alla × sjukpenning with
    window (-5, 5), which trims the 2014 and 2015 cohorts."""
    if request.param == "mpdta":
        cols = ("lemp", "countyreal", "year", "first.treat")
        return request.getfixturevalue("mpdta"), (-1, 1), cols
    if request.param == "synthetic":
        return synthetic_series(), (-5, 5), ("share", "kommun_kod", "year", "cohort")
    frame = simulated_panel(n=150, seed=4)
    # diff-diff keeps cohorts after the sample as treated (not clean "never" controls); we count
    # them as never treated, so recode them for a like-for-like comparison
    frame["g"] = frame["g"].where(frame["g"] <= frame["year"].max(), 0)
    return frame, (-2, 3), ("y", "id", "year", "g")


@pytest.mark.parametrize(
    "control,peer", [("never", "never_treated"), ("notyet", "not_yet_treated")]
)
def test_points_match_diff_diff(peer_panel, control: str, peer: str) -> None:
    """Observed on the synthetic panel: ≤ 2.7e-14 (event times and overall)."""
    diff_diff = pytest.importorskip("diff_diff")
    data, window, cols = peer_panel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _stacked(data, *cols, control=control, window=window)
        theirs = diff_diff.StackedDiD(
            kappa_pre=-window[0], kappa_post=window[1], control_group=peer
        ).fit(data, *cols)
    es = ours.event_study.set_index("event_time")["estimate"]
    assert len(theirs.event_study_effects) == len(es)  # both include the reference period
    for e, row in theirs.event_study_effects.items():
        assert abs(es[e] - row["effect"]) < POINT_TOL, (control, e)
    assert abs(ours.overall["estimate"] - theirs.overall_att) < POINT_TOL


def test_cells_and_rows_agree_and_unbalanced_matches_direct() -> None:
    frame = simulated_panel(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = _stacked(frame, "y", "id", "year", "g", window=(-2, 2), algorithm="cells")
        rows = _stacked(frame, "y", "id", "year", "g", window=(-2, 2), algorithm="rows")
    np.testing.assert_allclose(
        cells.event_study["estimate"], rows.event_study["estimate"], atol=POINT_TOL
    )
    np.testing.assert_allclose(cells.vcov.to_numpy(), rows.vcov.to_numpy(), atol=VCOV_TOL)
    # drop scattered rows: Q-weights then vary by event time, the rows path handles it
    holes = frame.drop(index=frame.sample(frac=0.05, random_state=1).index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _stacked(holes, "y", "id", "year", "g", window=(-2, 2), unbalanced="keep")
    coef, _, (n_obs, _, _), _ = direct_stacked(holes, (-2, 2), "never")
    assert res.info["algorithm"] == "rows" and res.info["n_obs"] == n_obs
    est = res.event_study.loc[~res.event_study["reference"], "estimate"].to_numpy()
    np.testing.assert_allclose(est, coef, atol=1e-7)  # alternating projections, tol 1e-12


@pytest.mark.parametrize("cluster", [None, "cl"])
def test_influence_reproduces_vcov(cluster: str | None) -> None:
    frame = simulated_panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _stacked(frame, "y", "id", "year", "g", window=(-3, 3), cluster=cluster)
    psi = res.event_influence
    n = psi.shape[0]
    assert n == (9 if cluster else frame["id"].nunique()) == len(res.unit_labels)
    estimated = ~res.event_study["reference"].to_numpy()
    np.testing.assert_allclose(
        psi[:, estimated].T @ psi[:, estimated] / n**2, res.vcov.to_numpy(), atol=VCOV_TOL
    )
    assert np.all(psi[:, ~estimated] == 0)
    post = (res.event_study["event_time"] >= 0).to_numpy()
    overall_psi = psi[:, post].mean(axis=1)
    assert abs(np.sqrt(overall_psi @ overall_psi) / n - res.overall["se"]) < 1e-12


def test_trimming_is_reported_and_dispatch() -> None:
    frame = simulated_panel()
    with pytest.warns(UserWarning, match="trimmed"):
        res = estimate(frame, outcome="y", unit="id", time="year", cohort="g", method="stacked")
    assert res.info["window"] == stacked.DEFAULT_WINDOW
    trimmed = res.info["trimmed_cohorts"]
    # window (-5, 5) on 2000–2011: only cohort 2006 has five years before and after
    assert set(trimmed["cohort"]) == {2004, 2008} and res.info["kept_cohorts"] == [2006]
    assert list(res.event_study["event_time"]) == list(range(-5, 6))
    with pytest.raises(EstimationInputError, match="reference"):
        _stacked(frame, "y", "id", "year", "g", window=(0, 3))


def test_default_window_adapts_to_a_short_panel(mpdta) -> None:
    """R did's 5-year mpdta fits no cohort's (-5, 5) window: the default shrinks to the window
    with the most treated unit × event-time cells, (-3, 0) (cohorts 2006 and 2007: 171 units ×
    4 event times), says so, and estimates; an explicit window is kept as given."""
    cols = {"outcome": "lemp", "unit": "countyreal", "time": "year", "cohort": "first.treat"}
    with pytest.warns(UserWarning, match=r"fits no cohort.*window=\(-3, 0\)"):
        res = estimate(mpdta, method="stacked", **cols)
    assert res.info["window"] == (-3, 0) and res.info["kept_cohorts"] == [2006, 2007]
    assert list(res.event_study["event_time"]) == [-3, -2, -1, 0]
    with pytest.warns(UserWarning, match="trimmed"):
        explicit = estimate(mpdta, method="stacked", window=(-1, 1), **cols)
    assert explicit.info["window"] == (-1, 1)
