"""Callaway–Sant'Anna against Python peers: csdid (a port of R's did) and diff-diff.

For every combination of control group, estimation method, base period and anticipation 0/1,
on several datasets, point estimates (ATT(g,t), event study, overall) must agree with csdid to
1e-7 and so must the analytic standard errors (1e-6 relative). diff-diff must agree on ATT(g,t)
to 1e-7 except where it departs from R's did; those known differences are asserted to be
small and named:

* ``DIFF_DIFF_DR_COVARIATES``: doubly robust with covariates differs by ~1e-4 (diff-diff's own
  propensity-score handling, e.g. its default ``pscore_trim=0.01`` clipping); we match csdid/R.
* ``DIFF_DIFF_UNBALANCED_SE``: with unbalanced panels kept, diff-diff's point estimates agree but
  its standard errors do not follow R's unit-level aggregation of the row influence functions.

Datasets are registered in ``DATASETS``; the lead adds the synthetic kommun panel there.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MPDTA, SYNTHETIC, quiet

import finsam_eval.estimators as fe

csdid_att_gt = pytest.importorskip("csdid.att_gt")
diff_diff = pytest.importorskip("diff_diff")

ATT_ABS = 1e-7
SE_REL = 1e-6
DIFF_DIFF_DR_COVARIATES = 2e-3  # max abs ATT gap tolerated (observed ~4e-4)
# relative SE gap with unbalanced panels kept, by est_method (observed: dr/ipw <= 0.036, reg up
# to 1.94 on the synthetic panel, 0.55 on the simulated one; dr/ipw were <= 0.0056 on the earlier
# synthetic world, whose kommun sizes were less dispersed)
DIFF_DIFF_UNBALANCED_SE = {"dr": 0.05, "ipw": 0.05, "reg": 3.0}
# relative SE gap with dispersed sampling weights and a propensity score: observed <= 1.68 on the
# current synthetic world (weights from Bjurholm to Stockholm), <= 0.34 on the earlier one. The same
# specifications match csdid (R did's port) to 1e-7 above, so the gap is diff-diff's departure.
DIFF_DIFF_WEIGHTED_PSCORE_SE = 2.0
# diff-diff's propensity-score step departs from R did (and csdid, which match us to 1e-11)
# where it matters most: sampling weights that vary by orders of magnitude (the synthetic
# panel's population weights: observed 0.04-0.05 for IPW/DR on the earlier synthetic world,
# 0.101 for IPW on the current one, whose kommun sizes follow the real ones: the weights span
# Bjurholm to Stockholm, a factor of about 400; SEs up to 31 %), and unbalanced panels (2e-4 on
# the simulated panel, up to 0.019 on the synthetic one). The bound only names the departure
# (the same specifications match csdid to 1e-7 above).
DIFF_DIFF_WEIGHTED_PSCORE = 0.15
DIFF_DIFF_UNBALANCED_PSCORE = 0.05


def simulated_panel(n_units: int = 200, n_periods: int = 12, seed: int = 1) -> pd.DataFrame:
    """Staggered adoption with heterogeneous, dynamic effects and covariate-dependent trends."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([0, 4, 6, 8, 10], size=n_units, p=[0.3, 0.2, 0.2, 0.15, 0.15])
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(1, n_units + 1), n_periods),
            "t": np.tile(np.arange(1, n_periods + 1), n_units),
            "g": np.repeat(cohort, n_periods),
            "x": np.repeat(rng.normal(size=n_units), n_periods),
            "w": np.repeat(rng.uniform(0.5, 2.0, size=n_units), n_periods),
        }
    )
    event = np.where(frame["g"] > 0, frame["t"] - frame["g"], -1)
    effect = np.where((frame["g"] > 0) & (event >= 0), (1 + 0.3 * event) * (1 + frame["g"] / 10), 0)
    frame["y"] = (
        np.repeat(rng.normal(size=n_units), n_periods)
        + 0.2 * frame["t"]
        + 0.5 * frame["x"] * frame["t"] / n_periods
        + effect
        + rng.normal(size=len(frame))
    )
    return frame


def _mpdta(shared: Path) -> pd.DataFrame:
    return pd.read_csv(shared / "reference" / "r-did" / "mpdta.csv")


def _unbalanced(_: Path) -> pd.DataFrame:
    data = simulated_panel()
    gone = np.random.default_rng(5).choice(len(data), 150, replace=False)
    return data.drop(index=gone).reset_index(drop=True)


def _synthetic(_: Path) -> pd.DataFrame:
    """One series of the bundled synthetic kommun panel, with a time-invariant covariate (log
    working-age population in 1998) and a kommun-constant population weight."""
    from finsam_eval.synthetic import load_synthetic

    panel = load_synthetic()
    series = panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")].copy()
    first = series[series["year"] == series["year"].min()].set_index("kommun_kod")["denominator"]
    series["log_pop"] = np.log(series["kommun_kod"].map(first))
    series["w"] = series.groupby("kommun_kod")["denominator"].transform("mean") / 1e4
    series["id"] = series["kommun_kod"].astype(int)
    return series.reset_index(drop=True)


def _synthetic_unbalanced(shared: Path) -> pd.DataFrame:
    data = _synthetic(shared)
    # the one-kommun cohort (Säter, 2015) cannot carry a covariate regression once rows go
    # missing: R did, csdid and we return NaN cells, diff-diff raises; leave it out here
    data = data[data["cohort"] != 2015].reset_index(drop=True)
    # only rows of cohorts with several kommuner go missing: a one-kommun cohort (Säter, 2015)
    # that loses its base year has no estimable cell, and csdid then refuses to aggregate
    cohort_size = data.groupby("cohort")["id"].transform("nunique")
    eligible = np.flatnonzero((cohort_size >= 5).to_numpy())
    gone = np.random.default_rng(8).choice(eligible, 200, replace=False)
    return data.drop(index=gone).reset_index(drop=True)


SIM = {"outcome": "y", "unit": "id", "time": "t", "cohort": "g"}
# name -> (loader(shared_dir), columns, covariates, weights, unbalanced, est_methods)
DATASETS: dict[str, tuple[Callable, dict, list | None, str | None, bool, tuple]] = {
    # without covariates the three estimators coincide: one suffices
    "mpdta": (_mpdta, MPDTA, None, None, False, ("dr",)),
    "sim_weights": (lambda _: simulated_panel(), SIM, None, "w", False, ("dr",)),
    "sim_covariate_weights": (
        lambda _: simulated_panel(),
        SIM,
        ["x"],
        "w",
        False,
        ("dr", "ipw", "reg"),
    ),
    "sim_unbalanced_covariate": (_unbalanced, SIM, ["x"], None, True, ("dr", "ipw", "reg")),
    # the synthetic kommun panel: 290 kommuner × 1998–2018, 11 cohorts, 49 never-members
    "synthetic": (_synthetic, SYNTHETIC, None, None, False, ("dr",)),
    "synthetic_covariate_weights": (
        _synthetic,
        SYNTHETIC,
        ["log_pop"],
        "w",
        False,
        ("dr", "ipw", "reg"),
    ),
    "synthetic_unbalanced_covariate": (
        _synthetic_unbalanced,
        SYNTHETIC,
        ["log_pop"],
        None,
        True,
        ("dr", "ipw", "reg"),
    ),
}
SPECS = [
    (name, control, method, base, anticipation)
    for name, spec in DATASETS.items()
    for control, method, base, anticipation in itertools.product(
        ("never", "notyet"), spec[5], ("varying", "universal"), (0, 1)
    )
]


@cache
def _data(name: str, shared: Path) -> pd.DataFrame:
    return DATASETS[name][0](shared)


@cache
def _ours(name, control, method, base, anticipation, shared: Path) -> fe.EstimationResult:
    data = _data(name, shared)
    _, columns, covariates, weights, unbalanced, _ = DATASETS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fe.estimate(
            data,
            method="cs",
            control=control,
            est_method=method,
            base_period=base,
            anticipation=anticipation,
            covariates=covariates,
            weights=weights,
            unbalanced="keep" if unbalanced else "balance",
            **columns,
        )


def _csdid(data, name, control, method, base, anticipation):
    _, columns, covariates, weights, unbalanced, _ = DATASETS[name]
    with quiet():
        model = csdid_att_gt.ATTgt(
            yname=columns["outcome"],
            tname=columns["time"],
            idname=columns["unit"],
            gname=columns["cohort"],
            data=data.copy(),
            control_group=["nevertreated" if control == "never" else "notyettreated"],
            xformla=None if covariates is None else f"{columns['outcome']}~{'+'.join(covariates)}",
            weights_name=weights,
            anticipation=anticipation,
            allow_unbalanced_panel=unbalanced,
        ).fit(est_method=method, base_period=base, bstrap=False)
        cells = pd.DataFrame(
            {
                "cohort": model.results["group"],
                "time": model.results["year"],
                "att": model.results["att"],
                "se": model.results["se"],
            }
        )
        # csdid refuses to aggregate around cells it cannot estimate (a one-kommun cohort with a
        # covariate in an unbalanced panel); we leave the same cells out of aggregations
        model.aggte(typec="dynamic", na_rm=bool(cells["att"].isna().any()))
        dynamic = dict(model.atte)
    return cells, dynamic


def _diff_diff(data, name, control, method, base, anticipation) -> pd.DataFrame:
    _, columns, covariates, weights, unbalanced, _ = DATASETS[name]
    from diff_diff import CallawaySantAnna
    from diff_diff.survey import SurveyDesign

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CallawaySantAnna(
            control_group="never_treated" if control == "never" else "not_yet_treated",
            estimation_method=method,
            base_period=base,
            anticipation=anticipation,
            allow_unbalanced_panel=unbalanced,
        ).fit(
            data,
            outcome=columns["outcome"],
            unit=columns["unit"],
            time=columns["time"],
            first_treat=columns["cohort"],
            covariates=covariates,
            survey_design=SurveyDesign(weights=weights) if weights else None,
        )
    return pd.DataFrame(
        [(g, t, v["effect"], v["se"]) for (g, t), v in result.group_time_effects.items()],
        columns=["cohort", "time", "att", "se"],
    )


@pytest.fixture(scope="module")
def shared(shared_dir: Path) -> Path:
    return shared_dir


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(map(str, s)))
def test_matches_csdid(spec, shared):
    data = _data(spec[0], shared)
    ours = _ours(*spec, shared)
    cells, dynamic = _csdid(data, *spec)
    merged = ours.att_gt.merge(cells, on=["cohort", "time"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), "the two sets of group-time cells differ"
    np.testing.assert_allclose(merged["estimate"], merged["att"], rtol=0, atol=ATT_ABS)
    # csdid reports NaN where R does (the universal base period's reference cell)
    np.testing.assert_allclose(merged["se_x"], merged["se_y"], rtol=SE_REL)
    np.testing.assert_allclose(ours.event_study["event_time"], dynamic["egt"])
    np.testing.assert_allclose(ours.event_study["estimate"], dynamic["att_egt"], atol=ATT_ABS)
    # csdid's dynamic overall (mean of e >= 0); our ``overall`` is the simple ATT
    dyn_overall = ours.aggregate("dynamic").overall
    np.testing.assert_allclose(dyn_overall["estimate"], dynamic["overall_att"], atol=ATT_ABS)
    np.testing.assert_allclose(dyn_overall["se"], dynamic["overall_se"], rtol=SE_REL)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(map(str, s)))
def test_matches_diff_diff_or_named_gap(spec, shared):
    name, _, method = spec[:3]
    data = _data(name, shared)
    ours = _ours(*spec, shared).att_gt
    theirs = _diff_diff(data, *spec)
    merged = ours.merge(theirs, on=["cohort", "time"], how="inner")
    assert len(merged) == len(ours)
    gap = np.nanmax(np.abs(merged["estimate"] - merged["att"]))
    covariates, weights, unbalanced = DATASETS[name][2], DATASETS[name][3], DATASETS[name][4]
    pscore = bool(covariates) and method in ("dr", "ipw")
    dispersed = weights is not None and data[weights].max() > 10 * data[weights].min()
    if pscore and unbalanced:
        # DIFF_DIFF_UNBALANCED_PSCORE: named departure, bounded
        assert gap < DIFF_DIFF_UNBALANCED_PSCORE
    elif pscore and dispersed:
        # DIFF_DIFF_WEIGHTED_PSCORE: named departure, bounded
        assert gap < DIFF_DIFF_WEIGHTED_PSCORE
    elif method == "dr" and covariates and not unbalanced:
        # DIFF_DIFF_DR_COVARIATES: a small, known departure from R (we match csdid/R)
        assert gap < DIFF_DIFF_DR_COVARIATES
    else:
        assert gap < ATT_ABS
    se_gap = np.nanmax(np.abs(merged["se_x"] / merged["se_y"] - 1))
    if unbalanced:
        # DIFF_DIFF_UNBALANCED_SE: named, bounded per est_method
        assert se_gap < DIFF_DIFF_UNBALANCED_SE[method]
    elif pscore and dispersed:
        # DIFF_DIFF_WEIGHTED_PSCORE_SE: named, bounded
        assert se_gap < DIFF_DIFF_WEIGHTED_PSCORE_SE
    elif not (method == "dr" and covariates):
        assert se_gap < SE_REL


def test_overall_is_diff_diff_overall_att_on_bundled_data():
    # issue 14: res.overall is the peers' simple ATT (diff-diff's overall_att), not the mean of
    # the event-time effects
    from diff_diff import CallawaySantAnna

    from finsam_eval import estimate, load_synthetic

    panel = load_synthetic()
    data = panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")].copy()
    ours = estimate(data, method="cs", control="notyet")
    data["first_treat"] = data["cohort"].fillna(0).astype(int)
    data["unit_id"] = data["kommun_kod"].astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = CallawaySantAnna(control_group="not_yet_treated").fit(
            data, outcome="share", unit="unit_id", time="year", first_treat="first_treat"
        )
    assert ours.overall["estimate"] == pytest.approx(theirs.overall_att, abs=ATT_ABS)
    assert ours.overall["se"] == pytest.approx(theirs.overall_se, rel=SE_REL)
    dynamic = ours.aggregate("dynamic").overall["estimate"]
    assert abs(dynamic - theirs.overall_att) > 0.05  # the two definitions differ on this panel


@pytest.mark.parametrize("modulus", [21, 97])
def test_clustered_se_factor_against_diff_diff(shared, modulus):
    """Clustered CS SEs: diff-diff's are sqrt(G / (G - 1)) times ours. Ours are R did's (cluster
    sums of the influence functions, no small-sample factor); diff-diff applies the CR1 factor.
    Point estimates agree to 1e-10 and the SE ratio equals the factor to 1e-8."""
    mpdta = pd.read_csv(shared / "reference" / "r-did" / "mpdta.csv")
    mpdta["cl"] = mpdta["countyreal"] % modulus
    n_clusters = mpdta["cl"].nunique()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fe.estimate(mpdta, method="cs", est_method="reg", cluster="cl", **MPDTA).att_gt
        peer = diff_diff.CallawaySantAnna(
            control_group="never_treated", cluster="cl", estimation_method="reg"
        ).fit(mpdta, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
    rows = [(g, t, v["effect"], v["se"]) for (g, t), v in peer.group_time_effects.items()]
    merged = ours.merge(pd.DataFrame(rows, columns=["cohort", "time", "peer", "peer_se"]))
    assert len(merged) == 12
    np.testing.assert_allclose(merged["estimate"], merged["peer"], atol=1e-10)
    factor = np.sqrt(n_clusters / (n_clusters - 1))
    np.testing.assert_allclose(merged["peer_se"] / merged["se"], factor, rtol=1e-8)
