"""Re-estimating wild bootstrap of Callaway–Sant'Anna aggregates (WCR/WCU-refit).

References: the CS estimator itself (the linear maps must reproduce every aggregation's estimates
and analytic SEs, and each bootstrap draw must equal re-running ``fe.estimate`` on that draw's
outcome), and wildboottest on the 2×2 case, where CS's analytic SE is the cluster-robust SE of
the regression of the outcome change on treatment and WCU resamples the same residuals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_wild_results import _wild, _wildboottest_p

import finsam_eval as fe
from finsam_eval.inference import wild_refit as wr
from finsam_eval.inference.wild_refit_cs import linear_cs_aggregate

KINDS = ("dynamic", "group", "calendar", "simple")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    data = fe.load_synthetic()
    series = data[(data["population"] == "alla") & (data["outcome"] == "sjukpenning")]
    series = series.reset_index(drop=True)
    mean_weight = series.groupby("kommun_kod")["weight"].transform("mean")
    # a time-invariant covariate and a unit-constant sampling weight
    return series.assign(w=mean_weight, x=np.sqrt(mean_weight) / 100)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _reference(res, kind: str, **options) -> tuple[np.ndarray, np.ndarray]:
    agg = res.aggregate(kind, **options)
    keys = agg.table["estimate"].to_numpy() if len(agg.table) else np.empty(0)
    ses = agg.table["se"].to_numpy() if len(agg.table) else np.empty(0)
    return np.r_[keys, agg.overall["estimate"]], np.r_[ses, agg.overall["se"]]


@pytest.mark.parametrize(
    "options",
    [
        {"control": "never"},
        {"control": "notyet"},
        {"control": "notyet", "base_period": "universal"},
        {"control": "never", "weights": "w"},
        {"control": "notyet", "anticipation": 1},
        {"control": "never", "covariates": ["x"], "est_method": "dr"},
        {"control": "notyet", "covariates": ["x"], "est_method": "ipw"},
        {"control": "notyet", "covariates": ["x"], "est_method": "reg", "weights": "w"},
    ],
)
def test_linear_maps_reproduce_every_aggregation(panel, options):
    res = fe.estimate(panel, method="cs", cluster="cluster_lan", **options)
    for kind in KINDS:
        model = linear_cs_aggregate(res, kind)
        estimate, se = _reference(res, kind)
        np.testing.assert_allclose(model.E @ model.y, estimate, atol=1e-12)
        mapped_se = np.sqrt(np.sum((model.K @ model.y) ** 2, axis=0))
        ok = np.isfinite(se)
        np.testing.assert_allclose(mapped_se[ok], se[ok], atol=1e-12)


def test_linear_maps_with_unit_clusters_and_selected_keys(panel):
    res = fe.estimate(panel, method="cs", control="notyet")
    model = linear_cs_aggregate(res, "dynamic", keys=[-2, 0, 3], min_e=-4, max_e=4)
    assert list(model.event_times) == [-2, 0, 3, "overall"]
    assert model.K.shape[0] == 290
    estimate, se = _reference(res, "dynamic", min_e=-4, max_e=4)
    keys = res.aggregate("dynamic", min_e=-4, max_e=4).table["key"].tolist()
    rows = [keys.index(-2), keys.index(0), keys.index(3), len(keys)]
    np.testing.assert_allclose(model.E @ model.y, estimate[rows], atol=1e-12)
    np.testing.assert_allclose(np.sqrt(np.sum((model.K @ model.y) ** 2, axis=0)), se[rows])
    with pytest.raises(ValueError, match="not in the dynamic aggregation"):
        linear_cs_aggregate(res, "dynamic", keys=[99])
    # every event time with 290 clusters would need 290 x 32 x 6 090 numbers: the caller is
    # asked to select keys
    with pytest.raises(ValueError, match="select keys"):
        linear_cs_aggregate(res, "dynamic")


def test_working_model_centres_and_all_ones_draw(panel, monkeypatch):
    res = fe.estimate(panel, method="cs", control="notyet", cluster="cluster_lan")
    model = linear_cs_aggregate(res, "dynamic", min_e=-3, max_e=3)
    fitted = model.y - model.resid
    labels = list(model.event_times)
    centre = model.E @ fitted
    # the working model has parallel trends and no effect before treatment: CS returns 0 for
    # every lead on its fitted values
    leads = [i for i, label in enumerate(labels) if label != "overall" and label < 0]
    np.testing.assert_allclose(centre[leads], 0.0, atol=1e-12)
    # weights all 1 reproduce the sample: the WCR draw is the observed t, the WCU draw is
    # centred at the bootstrap world's estimand
    monkeypatch.setattr(wr, "cluster_weights", lambda kind, G, B, seed: (np.ones((G, 1)), False))
    R = np.eye(len(labels))
    estimate, se = _reference(res, "dynamic", min_e=-3, max_e=3)
    for impose_null in (True, False):
        out = wr.refit_bootstrap(model, R, B=1, impose_null=impose_null)
        np.testing.assert_allclose(out["estimate"], estimate, atol=1e-12)
        np.testing.assert_allclose(out["se"], se, atol=1e-12)
        expected = (estimate - (0.0 if impose_null else centre)) / se
        np.testing.assert_allclose(out["draws"][0], expected, atol=1e-9)


def _with_outcome(panel: pd.DataFrame, res, values: np.ndarray) -> pd.DataFrame:
    """``panel`` with the outcome replaced by ``values`` in the maps' (unit, period) order."""
    unit = pd.Index(res.unit_labels).get_indexer(panel["kommun_kod"])
    times = np.sort(panel["year"].unique())
    period = np.searchsorted(times, panel["year"].to_numpy())
    return panel.assign(share=values[unit * len(times) + period])


@pytest.mark.parametrize("impose_null", [True, False])
def test_each_draw_equals_re_estimation(panel, monkeypatch, impose_null):
    # the bootstrap t of a draw must be what fe.estimate gives on that draw's outcome
    options = {"control": "notyet", "cluster": "cluster_lan", "covariates": ["x"]}
    res = fe.estimate(panel, method="cs", **options)
    model = linear_cs_aggregate(res, "dynamic", keys=[1], min_e=-3, max_e=3)
    rng = np.random.default_rng(5)
    v = rng.choice([-1.0, 1.0], size=(model.K.shape[0], 3))
    monkeypatch.setattr(wr, "cluster_weights", lambda kind, G, B, seed: (v, False))
    out = wr.refit_bootstrap(model, np.eye(2), B=3, impose_null=impose_null)
    fitted = model.y - model.resid
    for j, label in enumerate(model.event_times):
        e = model.E[j]
        if impose_null:  # the restricted fit: the tested cells shifted so that CS gives 0
            fit_j = fitted - (e @ fitted) / (e @ model.carries[j]) * model.carries[j]
            restricted = fe.estimate(_with_outcome(panel, res, fit_j), method="cs", **options)
            table = restricted.aggregate("dynamic", min_e=-3, max_e=3)
            value = table.overall if label == "overall" else table.table.set_index("key").loc[1]
            assert abs(value["estimate"]) < 1e-12
            centre = 0.0
        else:
            fit_j, centre = fitted, e @ fitted
        for b in range(v.shape[1]):
            y_star = fit_j + v[model.cluster, b] * (model.y - fit_j)
            star = fe.estimate(_with_outcome(panel, res, y_star), method="cs", **options)
            agg = star.aggregate("dynamic", min_e=-3, max_e=3)
            value = agg.overall if label == "overall" else agg.table.set_index("key").loc[1]
            t_star = (value["estimate"] - centre) / value["se"]
            assert out["draws"][b, j] == pytest.approx(t_star, rel=1e-9, abs=1e-9)


def _two_by_two(n_clusters: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One cohort joining in 2001, never-treated comparisons, clusters of unequal variance."""
    rng = np.random.default_rng(seed)
    n = 300
    cluster = rng.integers(0, n_clusters, n)
    treated = rng.random(n) < 0.4
    level = rng.normal(size=n) + 0.3 * cluster
    change = 0.2 + 0.15 * treated + rng.normal(scale=1 + 0.1 * cluster, size=n)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), 2),
            "year": np.tile([2000, 2001], n),
            "g": np.repeat(np.where(treated, 2001, 0), 2),
            "cl": np.repeat(cluster, 2),
            "y": np.column_stack([level, level + change]).ravel(),
        }
    )
    X = np.column_stack([np.ones(n), treated.astype(float)])
    return frame, change, X


TWO_BY_TWO = {"outcome": "y", "unit": "id", "time": "year", "cohort": "g", "cluster": "cl"}


@pytest.mark.parametrize("weights", ["rademacher", "webb", "mammen"])
def test_wcu_agrees_with_wildboottest_with_21_random_clusters(weights):
    # 21 clusters, B = 9 999 random draws in each package: p-values agree within four Monte
    # Carlo sd of the difference of two independent bootstrap p-values
    frame, change, X = _two_by_two(21, seed=4)
    B = 9999
    table = _wild(
        frame, "cs", B=B, weights=weights, seed=3, impose_null=False, event_times=[0], **TWO_BY_TWO
    )
    assert not table["enumerated"].any()
    cluster = frame["cl"].to_numpy()[::2]
    p_ref = _wildboottest_p(change, X, cluster, np.array([0.0, 1.0]), False, weights, B=B)
    bound = 4 * np.sqrt(2 * max(p_ref * (1 - p_ref), 0.01) / B)
    assert 0.01 < p_ref < 0.99
    assert abs(table["p_value"].iloc[0] - p_ref) <= bound


def test_wcu_matches_wildboottest_in_the_two_by_two_case():
    # one cohort, two periods, never-treated comparisons, 10 clusters (1 024 Rademacher sign
    # vectors, enumerated by both): CS's clustered SE is the CRV0 SE of the regression of the
    # outcome change on treatment, and WCU-refit resamples its residuals, so the p-values agree
    frame, change, X = _two_by_two(10, seed=8)
    table = _wild(frame, "cs", B=9999, impose_null=False, event_times=[0], **TWO_BY_TWO)
    assert table["enumerated"].all() and set(table["bootstrap"]) == {"WCU-refit"}
    cluster = frame["cl"].to_numpy()[::2]
    p_ref = _wildboottest_p(change, X, cluster, np.array([0.0, 1.0]), False, "rademacher")
    np.testing.assert_allclose(table["p_value"].to_numpy(), p_ref, atol=1e-12)
    # the restricted bootstrap resamples residuals with the null imposed: other draws, another
    # p-value (its restricted fit takes the comparison units' mean change as the common trend,
    # wildboottest's restricted regression the pooled mean, so they are not compared)
    wcr = _wild(frame, "cs", B=9999, event_times=[0], **TWO_BY_TWO)
    assert set(wcr["bootstrap"]) == {"WCR-refit"}
    assert 0 < wcr["p_value"].iloc[0] < 1 and wcr["p_value"].iloc[0] != table["p_value"].iloc[0]


def test_table_rows_and_interval(panel):
    table = _wild(panel, "cs", window=(-3, 3), B=199, seed=3, ci=True)
    res = fe.estimate(panel, method="cs", window=(-3, 3), cluster="cluster_lan")
    assert set(table["bootstrap"]) == {"WCR-refit"}
    assert table["event_time"].dropna().astype(int).tolist() == list(range(-3, 4))
    es = res.event_study.set_index("event_time")
    body = table[table["term"] == "event_time"].set_index(table["event_time"].dropna().astype(int))
    np.testing.assert_allclose(body["estimate"], es.loc[body.index, "estimate"])
    np.testing.assert_allclose(body["se"], es.loc[body.index, "se"])
    # the overall row is the tested aggregation's (dynamic: mean of e >= 0), not res.overall
    dynamic = res.aggregate("dynamic", min_e=-3, max_e=3).overall
    assert table["estimate"].iloc[-1] == pytest.approx(dynamic["estimate"], rel=1e-12)
    # the WCR interval inverts the restricted test
    outside = (table["ci_lower"] > 0) | (table["ci_upper"] < 0)
    assert (outside == (table["p_value"] < 0.05)).all()
    for kind, column in (("group", "cohort"), ("calendar", "time"), ("simple", None)):
        other = _wild(panel, "cs", aggregate=kind, B=99, seed=1)
        assert set(other["bootstrap"]) == {"WCR-refit"} and other["term"].iloc[-1] == "overall"
        assert column is None or column in other


def test_unbalanced_panel_kept_whole_is_refused(panel):
    gappy = panel.drop(index=panel.index[:3])
    with pytest.raises(NotImplementedError, match="balanced"):
        _wild(gappy, "cs", unbalanced="keep", B=99)
    # the score bootstrap still works there
    score = _wild(gappy, "cs", unbalanced="keep", B=99, refit=False)
    assert set(score["bootstrap"]) == {"score"}
