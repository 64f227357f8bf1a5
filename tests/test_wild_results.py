"""Wild bootstrap of event studies: TWFE WCR/WCU against wildboottest, the score bootstrap of
influence functions (imputation, two-stage, Callaway-Sant'Anna) and size under the null."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import wildboottest
from scipy import stats

import finsam_eval as fe
from finsam_eval.inference import wild_refit as wr
from finsam_eval.inference.wild_results import (
    score_bootstrap,
    twfe_design,
    wild_bootstrap,
)
from finsam_eval.synthetic import montecarlo as mc

_BOOT_OPTIONS = {
    "event_times",
    "impose_null",
    "seed",
    "ci",
    "alpha",
    "overall",
    "aggregate",
    "refit",
}


def _wild(data, method, B=9999, weights="rademacher", cluster="cluster_lan",
          analytic_weights=None, **options):  # fmt: skip
    """Estimate, then ``wild_bootstrap`` the result (the options split as the old call did)."""
    boot = {k: options.pop(k) for k in list(options) if k in _BOOT_OPTIONS}
    res = fe.estimate(data, method=method, cluster=cluster, weights=analytic_weights, **options)
    return wild_bootstrap(res, reps=B, multiplier=weights, **boot)


WINDOW = (-3, 3)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    data = fe.load_synthetic()
    series = data[(data["population"] == "alla") & (data["outcome"] == "sjukpenning")]
    return series.reset_index(drop=True)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _dummy_design(frame: pd.DataFrame, event_times: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """TWFE design with explicit unit and year dummies, built from the raw frame."""
    cohort = frame["cohort"].to_numpy()
    year = frame["year"].to_numpy()
    relative = np.clip(year - cohort, *WINDOW)
    unit = pd.factorize(frame["kommun_kod"], sort=True)[0]
    years = np.unique(year)
    X = np.column_stack(
        [((cohort > 0) & (relative == e)).astype(float) for e in event_times]
        + [(year == t).astype(float) for t in years[1:]]
        + [(unit == u).astype(float) for u in range(unit.max() + 1)]
    )
    cluster = pd.factorize(frame["cluster_lan"], sort=True)[0]
    return X, cluster


def _wildboottest_p(y, X, cluster, R, impose_null, weights, B=9999, seed=11) -> float:
    return float(wildboottest(y, X, cluster, R, B, impose_null, weights, seed).pvalue)


def _restrictions(table: pd.DataFrame, event_times: list[int], post: list[int], k: int):
    out = []
    for _, row in table.iterrows():
        R = np.zeros(k)
        if row["term"] == "overall":
            R[[event_times.index(e) for e in post]] = 1.0 / len(post)
        else:
            R[event_times.index(int(row["event_time"]))] = 1.0
        out.append(R)
    return out


def test_twfe_estimates_and_se_equal_twfe_fit(panel):
    res = fe.estimate(panel, method="twfe", window=WINDOW, cluster="cluster_lan")
    table = _wild(panel, "twfe", window=WINDOW, B=99, seed=1)
    es = res.event_study[~res.event_study["reference"]].reset_index(drop=True)
    body = table[table["term"] == "event_time"].reset_index(drop=True)
    assert body["event_time"].astype(int).tolist() == es["event_time"].tolist()
    np.testing.assert_allclose(body["estimate"], es["estimate"], rtol=1e-12)
    np.testing.assert_allclose(body["se"], es["se"], rtol=1e-12)
    overall = table[table["term"] == "overall"].iloc[0]
    assert overall["estimate"] == pytest.approx(res.overall["estimate"], rel=1e-12)
    assert set(table["bootstrap"]) == {"WCR"} and set(table["n_clusters"]) == {21}


def test_twfe_weighted_design_reproduces_the_fit(panel):
    # analytic weights constant within kommun: year dummies enter X, unit effects are absorbed
    data = panel.assign(w=panel.groupby("kommun_kod")["weight"].transform("mean"))
    res = fe.estimate(data, method="twfe", window=WINDOW, cluster="cluster_lan", weights="w")
    design = twfe_design(res)
    assert design.fe.shape[1] == 1
    estimated = res.event_study[~res.event_study["reference"]]
    # every hypothesis checks that the rebuilt regression's coefficient equals twfe.fit's
    # (RuntimeError otherwise)
    table = _wild(data, "twfe", window=WINDOW, analytic_weights="w", B=99, seed=1)
    body = table[table["term"] == "event_time"]
    np.testing.assert_allclose(body["estimate"], estimated["estimate"], rtol=1e-12)


@pytest.mark.parametrize("impose_null", [True, False])
def test_twfe_enumeration_matches_wildboottest_exactly(panel, impose_null):
    # ten län: 2^10 = 1024 <= B, both enumerate every sign vector, so the p-values are
    # deterministic (WCR and WCU, event times and the overall mean). Under WCR the two sign
    # vectors v = +-1 reproduce the sample (|t*| = |t|); we do not count these ties (as
    # boottest), wildboottest counts them when rounding makes |t*| > |t|: its p-value may be up
    # to 2 / 1024 larger. WCU has no such ties and must agree to rounding.
    subset = panel[panel["cluster_lan"].isin(sorted(panel["cluster_lan"].unique())[:10])]
    table = _wild(subset, "twfe", window=WINDOW, B=9999, impose_null=impose_null, seed=3)
    res = fe.estimate(subset, method="twfe", window=WINDOW, cluster="cluster_lan")
    event_times = [int(e) for e in res.vcov.index]
    X, cluster = _dummy_design(subset, event_times)
    y = subset["share"].to_numpy()
    post = res.info["overall_event_times"]
    assert table["enumerated"].all() and set(table["n_boot"]) == {1024}
    for (_, row), R in zip(
        table.iterrows(), _restrictions(table, event_times, post, X.shape[1]), strict=True
    ):
        p_ref = _wildboottest_p(y, X, cluster, R, impose_null, "rademacher")
        ties = 2 / 1024 if impose_null else 0.0
        assert row["p_value"] - 1e-12 <= p_ref <= row["p_value"] + ties + 1e-12


@pytest.mark.parametrize(
    ("weights", "impose_null"),
    [("rademacher", True), ("webb", True), ("rademacher", False), ("webb", False)],
)
def test_twfe_random_draws_agree_with_wildboottest_within_mc_error(panel, weights, impose_null):
    # all 21 län, B = 9 999 independent draws in each package: the two p-values differ by
    # sd sqrt(2 p (1 - p) / B) <= 0.0071; allowed: 4 such sd (floor p (1 - p) >= 0.01)
    B = 9999
    table = _wild(
        panel,
        "twfe",
        window=WINDOW,
        event_times=[-3, 2],
        overall=False,
        B=B,
        weights=weights,
        impose_null=impose_null,
        seed=5,
    )
    res = fe.estimate(panel, method="twfe", window=WINDOW, cluster="cluster_lan")
    event_times = [int(e) for e in res.vcov.index]
    X, cluster = _dummy_design(panel, event_times)
    y = panel["share"].to_numpy()
    for (_, row), R in zip(
        table.iterrows(), _restrictions(table, event_times, [], X.shape[1]), strict=True
    ):
        p_ref = _wildboottest_p(y, X, cluster, R, impose_null, weights, B=B)
        bound = 4 * np.sqrt(2 * max(p_ref * (1 - p_ref), 0.01) / B)
        assert abs(row["p_value"] - p_ref) <= bound, (row["event_time"], row["p_value"], p_ref)


@pytest.mark.parametrize("method", ["imputation", "two_stage", "cs"])
def test_score_bootstrap_se_matches_analytic_with_many_clusters(panel, method):
    # clusters = kommuner (G = 290): the bootstrap SE of the estimates equals the analytic
    # influence-function SE up to Monte Carlo error (sd of a sample sd ~ 1 / sqrt(2B) ~ 1 %)
    options = {"window": WINDOW} if method != "cs" else {}
    res = fe.estimate(panel, method=method, **options)
    agg = res.aggregate("dynamic") if method == "cs" else None
    if agg is not None:
        influence = agg.influence
        est = np.r_[agg.table["estimate"], agg.overall["estimate"]]
        analytic = np.r_[agg.table["se"], agg.overall["se"]]
    else:
        keep = ~res.event_study["reference"].to_numpy(bool)
        influence = np.column_stack([res.event_influence[:, keep], res.info["overall_influence"]])
        est = np.r_[res.event_study["estimate"][keep], res.overall["estimate"]]
        analytic = np.r_[res.event_study["se"][keep], res.overall["se"]]
    ok = np.isfinite(analytic)
    for weights in ("rademacher", "webb", "mammen"):
        out = score_bootstrap(influence, est, res.unit_labels, B=4999, weights=weights, seed=2)
        np.testing.assert_allclose(out["se"][ok], analytic[ok], rtol=1e-10)
        boot_se = out["estimate_draws"].std(axis=0)
        np.testing.assert_allclose(boot_se[ok], analytic[ok], rtol=0.06)
    # and bootstrap-t p-values are the normal ones (G large), up to MC error
    table = _wild(panel, method, cluster=None, B=4999, seed=4, refit=False, **options)
    normal = 2 * stats.norm.sf(np.abs(table["t_stat"].to_numpy()))
    assert np.nanmax(np.abs(table["p_value"].to_numpy() - normal)) < 0.03
    assert set(table["bootstrap"]) == {"score"} and set(table["n_clusters"]) == {290}


def test_score_bootstrap_p_values_are_deterministic_and_intervals_invert_the_test(panel):
    kwargs = {"window": WINDOW, "B": 999, "refit": False}
    first = _wild(panel, "imputation", seed=7, ci=True, **kwargs)
    again = _wild(panel, "imputation", seed=7, ci=True, **kwargs)
    other = _wild(panel, "imputation", seed=8, **kwargs)
    pd.testing.assert_frame_equal(first, again)
    assert not np.array_equal(first["p_value"], other["p_value"])
    # 0 lies outside the bootstrap-t interval exactly when p < alpha
    outside = (first["ci_lower"] > 0) | (first["ci_upper"] < 0)
    assert (outside == (first["p_value"] < 0.05)).all()
    # Rademacher enumeration (10 län: 1024 <= B) does not depend on the seed
    subset = panel[panel["cluster_lan"].isin(sorted(panel["cluster_lan"].unique())[:10])]
    a = _wild(subset, "cs", B=9999, seed=1, event_times=[0, 1])
    b = _wild(subset, "cs", B=9999, seed=2, event_times=[0, 1])
    assert a["enumerated"].all() and (a["n_boot"] == 1024).all()
    pd.testing.assert_frame_equal(a, b)


def test_twfe_p_values_are_deterministic_and_wcu_interval(panel):
    kwargs = {"window": WINDOW, "event_times": [0], "B": 999, "overall": False}
    a = _wild(panel, "twfe", seed=3, **kwargs)
    b = _wild(panel, "twfe", seed=3, **kwargs)
    pd.testing.assert_frame_equal(a, b)
    wcu = _wild(panel, "twfe", seed=3, impose_null=False, ci=True, **kwargs)
    row = wcu.iloc[0]
    assert row["bootstrap"] == "WCU" and row["ci_lower"] < row["estimate"] < row["ci_upper"]
    assert (row["p_value"] < 0.05) == (row["ci_lower"] > 0 or row["ci_upper"] < 0)


def test_size_under_the_null_with_21_clusters():
    # null redraws of the synthetic alla x sjukpenning series, 21 län clusters: rejection rate
    # of the overall effect at 10 % within 3 binomial sd for TWFE WCR and the CS and imputation
    # WCR-refit (the defaults). B = 49 keeps the test exact at 10 % (0.1 x (B + 1) is whole) and
    # halves the cost of a redraw, so the same time buys 200 redraws (+-0.064, was 100 and
    # +-0.09); the TWFE WCR costs little and gets 400 (+-0.045). Over 400-1000 redraws
    # (docs/inference.md) these are at their level, while the score bootstrap of
    # imputation/two-stage inherits the over-rejection of their analytic variances.
    reps = {"twfe": 400, "cs": 200, "imputation": 200}
    world = mc.series_world("alla", "sjukpenning")
    shares = mc.draw_shares(world, mc.effect_matrix(world, 0.0), mc.replication_seeds(11, 400))
    rejections = dict.fromkeys(reps, 0)
    for r, draw in enumerate(shares):
        data = mc.to_panel(world, draw)
        for method in [m for m in reps if r < reps[m]]:
            options = {"window": WINDOW} if method != "cs" else {}
            table = _wild(data, method, event_times=[], B=49, seed=r, **options)
            rejections[method] += bool(table["p_value"].iloc[0] < 0.10)
    for method, count in rejections.items():
        bound = 3 * np.sqrt(0.1 * 0.9 / reps[method])
        assert abs(count / reps[method] - 0.10) <= bound, (method, count, reps[method])


def test_refit_size_under_the_null_with_21_clusters():
    # 150 fresh null redraws, 21 län, B = 199: the re-estimating WCR (default) of the overall
    # effect rejects at 10 % within 3 binomial sd (+-0.074) for imputation and two-stage
    # (500 redraws offline: 0.090 / 0.090; the score bootstrap 0.152 / 0.128, docs/inference.md)
    reps = 150
    world = mc.series_world("alla", "sjukpenning")
    shares = mc.draw_shares(world, mc.effect_matrix(world, 0.0), mc.replication_seeds(12, reps))
    rejections = {"imputation": 0, "two_stage": 0}
    for r, draw in enumerate(shares):
        data = mc.to_panel(world, draw)
        for method in rejections:
            table = _wild(data, method, event_times=[], window=WINDOW, B=199, seed=r)
            assert table["bootstrap"].iloc[0] == "WCR-refit"
            rejections[method] += bool(table["p_value"].iloc[0] < 0.10)
    bound = 3 * np.sqrt(0.1 * 0.9 / reps)
    for method, count in rejections.items():
        assert abs(count / reps - 0.10) <= bound, (method, count)


def test_input_errors(panel):
    def fit(method, **options):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fe.estimate(panel, method=method, cluster="cluster_lan", **options)

    with pytest.raises(NotImplementedError, match="WCR"):
        wild_bootstrap(fit("imputation"), reps=99, impose_null=True, refit=False)
    with pytest.raises(ValueError, match="method"):
        wild_bootstrap(fit("sa"), reps=99)
    with pytest.raises(ValueError, match="multiplier"):
        wild_bootstrap(fit("cs"), multiplier="normal", reps=99)
    with pytest.raises(ValueError, match="not estimated"):
        wild_bootstrap(fit("twfe", window=WINDOW), event_times=[-1], reps=99)
    with pytest.raises(ValueError, match="aggregate"):
        wild_bootstrap(fit("twfe"), aggregate="group", reps=99)


# ---------------------------------------------------------------------------------------------
# Re-estimating wild bootstrap (imputation, two-stage)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("imputation", {}),
        ("imputation", {"weights": "w", "leave_one_out": True}),
        ("two_stage", {}),
        ("two_stage", {"weights": "w"}),
    ],
)
def test_refit_linear_maps_reproduce_estimates_and_se(panel, monkeypatch, method, options):
    data = panel.assign(w=panel.groupby("kommun_kod")["weight"].transform("mean"))
    res = fe.estimate(data, method=method, window=WINDOW, cluster="cluster_lan", **options)
    model = wr.linear_event_study(res)
    es = res.event_study[~res.event_study["reference"]].set_index("event_time")
    covered = [e for e in es.index if e in set(model.event_times.tolist())]
    assert covered and (method == "imputation" or len(covered) == len(es))
    idx = [model.event_times.tolist().index(e) for e in covered]
    np.testing.assert_allclose((model.E @ model.y)[idx], es.loc[covered, "estimate"], atol=1e-10)
    se = np.sqrt(np.sum((model.K @ model.y) ** 2, axis=0))
    np.testing.assert_allclose(se[idx], es.loc[covered, "se"], atol=1e-10)
    # the bootstrap outcome with every weight 1 is y itself: the re-estimated estimate and SE
    # are the estimator's, so the WCR draw is the observed t and the WCU draw (centred at the
    # bootstrap-world estimand) is (estimate - e'yhat) / se
    monkeypatch.setattr(wr, "cluster_weights", lambda kind, G, B, seed: (np.ones((G, 1)), False))
    R = np.eye(len(model.event_times))[idx]
    for impose_null in (True, False):
        out = wr.refit_bootstrap(model, R, B=1, impose_null=impose_null)
        np.testing.assert_allclose(out["estimate"], es.loc[covered, "estimate"], atol=1e-10)
        np.testing.assert_allclose(out["se"], es.loc[covered, "se"], atol=1e-10)
        centre = 0.0 if impose_null else (R @ model.E) @ (model.y - model.resid)
        expected = (out["estimate"] - centre) / out["se"]
        np.testing.assert_allclose(out["draws"][0], expected, atol=1e-8)
    # WCU is centred at the estimate itself when effect weights are constant within cells (and
    # at 0 for two-stage pre-periods: the bootstrap world has no pre-trend)
    if "weights" not in options:
        post = np.array(covered) >= 0
        centre = (R @ model.E) @ (model.y - model.resid)
        np.testing.assert_allclose(centre[post], out["estimate"][post], atol=1e-10)
        np.testing.assert_allclose(centre[~post], 0.0, atol=1e-10)


@pytest.mark.parametrize("impose_null", [True, False])
def test_imputation_leads_match_wildboottest_on_the_pretrend_regression(panel, impose_null):
    # BJS Test 1 written out with dummies: untreated observations, lead indicators (reference
    # -1), unit and year dummies; ten län, enumerated in both packages (ties as in the TWFE
    # parity test above)
    subset = panel[panel["cluster_lan"].isin(sorted(panel["cluster_lan"].unique())[:10])]
    subset = subset.reset_index(drop=True)
    table = _wild(
        subset, "imputation", window=WINDOW, B=9999, impose_null=impose_null, overall=False
    )
    res = fe.estimate(subset, method="imputation", window=WINDOW, cluster="cluster_lan")
    leads = [int(k) for k in res.info["pretest_leads"]]
    assert leads == [-3, -2]
    cohort, year = subset["cohort"].to_numpy(), subset["year"].to_numpy()
    untreated = (cohort == 0) | (year < cohort)
    rows = subset[untreated]
    unit = pd.factorize(rows["kommun_kod"], sort=True)[0]
    relative = rows["year"].to_numpy() - rows["cohort"].to_numpy()
    is_lead = rows["cohort"].to_numpy() > 0
    X = np.column_stack(
        [(is_lead & (relative == k)).astype(float) for k in leads]
        + [(rows["year"] == t).to_numpy(float) for t in np.unique(rows["year"])[1:]]
        + [(unit == u).astype(float) for u in range(unit.max() + 1)]
    )
    cluster = pd.factorize(rows["cluster_lan"], sort=True)[0]
    body = table[table["event_time"].astype("Int64") < 0]
    assert set(body["bootstrap"]) == {"WCR" if impose_null else "WCU"}
    assert body["enumerated"].all()
    for (_, row), j in zip(body.iterrows(), range(len(leads)), strict=True):
        R = np.zeros(X.shape[1])
        R[j] = 1.0
        p_ref = _wildboottest_p(rows["share"].to_numpy(), X, cluster, R, impose_null, "rademacher")
        ties = 2 / 1024 if impose_null else 0.0
        assert row["p_value"] - 1e-12 <= p_ref <= row["p_value"] + ties + 1e-12


def test_refit_rows_in_the_event_study_table(panel):
    res = fe.estimate(panel, method="imputation", window=WINDOW, cluster="cluster_lan")
    table = _wild(panel, "imputation", window=WINDOW, B=199, seed=3, ci=True)
    body = table.set_index(table["event_time"].astype("Int64"))
    # leads come from BJS's pre-trend regression, a regression: its WCR; effects and overall
    # are re-estimated
    assert body.loc[[-3, -2], "bootstrap"].eq("WCR").all()
    assert body.loc[[0, 1, 2, 3], "bootstrap"].eq("WCR-refit").all()
    assert table["bootstrap"].iloc[-1] == "WCR-refit" and table["term"].iloc[-1] == "overall"
    es = res.event_study.set_index("event_time")
    np.testing.assert_allclose(body.loc[[0, 1, 2, 3], "se"], es.loc[[0, 1, 2, 3], "se"])
    assert table["se"].iloc[-1] == pytest.approx(res.overall["se"], rel=1e-10)
    # the WCR interval inverts the restricted test: 0 outside exactly when p < alpha
    outside = (table["ci_lower"] > 0) | (table["ci_upper"] < 0)
    assert (outside == (table["p_value"] < 0.05)).all()
    assert (table["ci_lower"] < table["estimate"]).all()
    assert (table["estimate"] < table["ci_upper"]).all()
    wcu = _wild(panel, "two_stage", window=WINDOW, B=199, seed=3, impose_null=False)
    assert set(wcu["bootstrap"]) == {"WCU-refit"}
    # two-stage pre-periods: the working model has no effect there, so WCR and WCU coincide
    wcr = _wild(panel, "two_stage", window=WINDOW, B=199, seed=3)
    pre = (wcr["term"] == "event_time") & (wcr["event_time"].astype("Int64") < 0)
    assert pre.sum() == 2
    np.testing.assert_allclose(wcr.loc[pre, "p_value"], wcu.loc[pre, "p_value"])
    score = _wild(panel, "two_stage", window=WINDOW, B=199, refit=False)
    assert set(score["bootstrap"]) == {"score"}
    with pytest.raises(NotImplementedError, match="refit"):
        _wild(panel, "twfe", refit=True, window=WINDOW, B=99)
