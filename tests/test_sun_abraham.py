"""Sun & Abraham interaction-weighted estimator: parity with a pyfixest saturated regression
aggregated with the same shares (mpdta, simulated panels and the synthetic kommun panel), closed
form against the dense route, the share term of the variance, influence functions and
coverage."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import STAGGERED, SYNTHETIC, simulate_staggered, synthetic_series

from finsam_eval.estimators import sun_abraham
from finsam_eval.estimators.spec import EstimationSpec

# pyfixest warns about the empty cohort × relative-time combinations its i() creates
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _fit(data: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sun_abraham.fit(data, EstimationSpec.build("sa", data, **kw))


def _pyfixest_iw(data, y, unit, time, cohort, shares, cluster):
    """Saturated cohort × relative-time regression in pyfixest, aggregated with ``shares``."""
    pf = pytest.importorskip("pyfixest")
    d = data.copy()
    d["rel"] = np.where(d[cohort] > 0, d[time] - d[cohort], -1)
    d["g"] = d[cohort]
    m = pf.feols(
        f"{y} ~ i(rel, g, ref=-1, ref2=0) | {unit} + {time}", data=d, vcov={"CRV1": cluster}
    )
    names = list(m.coef().index)
    r = np.zeros((shares.shape[1], len(names)))
    for (g, e), row in shares.iterrows():
        r[:, names.index(f"rel::{e}:g::{g}")] = row.to_numpy()
    coef = m.coef().to_numpy()
    return r @ coef, r @ m._vcov @ r.T, m


def test_matches_pyfixest_saturated_regression(mpdta_or_synthetic):
    """IW estimates equal pyfixest's saturated regression aggregated with our shares (1e-8);
    the regression part of the variance equals pyfixest's CRV1 (1e-6 relative). Observed on
    the synthetic panel: 6.8e-14 and 1.0e-11."""
    data, cols = mpdta_or_synthetic
    y, unit, time, cohort = cols["outcome"], cols["unit"], cols["time"], cols["cohort"]
    res = _fit(data, **cols)
    est, vcov, model = _pyfixest_iw(data, y, unit, time, cohort, res.info["shares"], unit)
    ours = res.event_study.set_index("event_time").loc[res.vcov.index, "estimate"]
    np.testing.assert_allclose(ours, est, atol=1e-8)
    np.testing.assert_allclose(res.info["vcov_regression"].to_numpy(), vcov, rtol=1e-6)
    cells = res.info["cohort_effects"]
    coef = model.coef()
    theirs = [
        coef[f"rel::{e}:g::{g}"] for g, e in zip(cells["cohort"], cells["event_time"], strict=True)
    ]
    np.testing.assert_allclose(cells["estimate"], theirs, atol=1e-8)
    # shares among cohorts observed at e: the last event time only has the first cohort
    first = data.loc[data[cohort] > 0, cohort].min()
    last_e = data[time].max() - first
    assert res.info["shares"].loc[(first, last_e), last_e] == 1.0


def test_share_term_and_fixest_variance(mpdta):
    full = _fit(mpdta, outcome="lemp", unit="countyreal", time="year", cohort="first.treat")
    fixest = _fit(
        mpdta,
        outcome="lemp",
        unit="countyreal",
        time="year",
        cohort="first.treat",
        share_uncertainty=False,
    )
    np.testing.assert_allclose(fixest.vcov.to_numpy(), full.info["vcov_regression"].to_numpy())
    # eventstudyinteract: regression + share variance; ours adds a cross term that is small
    esi = np.diag(full.info["vcov_regression"]) + np.diag(full.info["vcov_shares"])
    np.testing.assert_allclose(np.diag(full.vcov), esi, rtol=0.05)
    assert np.all(np.diag(full.info["vcov_shares"]) >= 0)


def test_closed_form_equals_dense_route_with_clusters_and_weights():
    sim = simulate_staggered(n_units=100, seed=4, n_clusters=15, weights=True)
    kw = dict(**STAGGERED, cluster="cl", weights="pop")
    closed, dense = _fit(sim, **kw), _fit(sim, dense=True, **kw)
    assert closed.info["computation"].startswith("closed form")
    assert dense.info["computation"].startswith("within")
    np.testing.assert_allclose(
        closed.event_study["estimate"], dense.event_study["estimate"], atol=1e-9
    )
    np.testing.assert_allclose(closed.vcov.to_numpy(), dense.vcov.to_numpy(), rtol=1e-7, atol=1e-14)


@pytest.mark.parametrize("dataset", ["simulated", "synthetic"])
def test_weighted_clustered_matches_pyfixest(dataset):
    """Cohort × event-time cells with analytic weights and clusters: a simulated panel and the
    synthetic men × af_till_arbete series (population weights, 21 län clusters)."""
    pf = pytest.importorskip("pyfixest")
    if dataset == "simulated":
        data = simulate_staggered(n_units=100, seed=8, n_clusters=20, weights=True)
        cols = {"outcome": "y", "unit": "unit", "time": "year", "cohort": "cohort"}
        weights, cluster = "pop", "cl"
    else:
        data, cols = synthetic_series("man", "af_till_arbete"), SYNTHETIC
        weights, cluster = "w", "lan"
    y, unit, time, cohort = cols["outcome"], cols["unit"], cols["time"], cols["cohort"]
    res = _fit(data, **cols, cluster=cluster, weights=weights)
    d = data.assign(rel=np.where(data[cohort] > 0, data[time] - data[cohort], -1), g=data[cohort])
    m = pf.feols(
        f"{y} ~ i(rel, g, ref=-1, ref2=0) | {unit} + {time}",
        data=d,
        weights=weights,
        vcov={"CRV1": cluster},
    )
    cells = res.info["cohort_effects"]
    names = [f"rel::{e}:g::{g}" for g, e in zip(cells["cohort"], cells["event_time"], strict=True)]
    np.testing.assert_allclose(cells["estimate"], m.coef().loc[names], atol=1e-8)
    np.testing.assert_allclose(cells["se_regression"], m.se().loc[names], rtol=1e-6)


@pytest.mark.parametrize("dataset", ["simulated", "synthetic"])
def test_last_treated_control_matches_pyfixest_on_truncated_sample(dataset):
    """Last-treated control (synthetic: the one-kommun 2015 cohort) equals pyfixest on the
    sample before it joins, with it recoded as never treated."""
    if dataset == "simulated":
        data = simulate_staggered(n_units=120, seed=9)
        cols = {"outcome": "y", "unit": "unit", "time": "year", "cohort": "cohort"}
    else:
        data, cols = synthetic_series(), SYNTHETIC
    y, unit, time, cohort = cols["outcome"], cols["unit"], cols["time"], cols["cohort"]
    res = _fit(data, **cols, control="lasttreated")
    last = data.loc[data[cohort] > 0, cohort].max()
    sub = data[(data[cohort] > 0) & (data[time] < last)].copy()
    sub["g"] = np.where(sub[cohort] == last, 0, sub[cohort])
    est, vcov, _ = _pyfixest_iw(sub, y, unit, time, "g", res.info["shares"], unit)
    ours = res.event_study.set_index("event_time").loc[res.vcov.index, "estimate"]
    np.testing.assert_allclose(ours, est, atol=1e-8)
    # atol: some covariances are exactly 0 in ours (synthetic: lead -16, only the 2014 cohort,
    # with lags >= 1) and rounding noise (<= 8.3e-15) in pyfixest; nonzero ones agree to 2e-10
    np.testing.assert_allclose(res.info["vcov_regression"].to_numpy(), vcov, rtol=1e-6, atol=1e-14)
    assert res.info["control_cohort"] == last


def test_unbalanced_panel_uses_dense_route():
    sim = simulate_staggered(n_units=80, seed=12)
    sim = sim.drop(sim.sample(frac=0.05, random_state=1).index)
    res = _fit(sim, **STAGGERED, unbalanced="keep")
    assert res.info["computation"].startswith("within")
    # the cells equal pyfixest's saturated regression on the same unbalanced sample
    pf = pytest.importorskip("pyfixest")
    d = sim.assign(rel=np.where(sim["cohort"] > 0, sim["year"] - sim["cohort"], -1))
    m = pf.feols("y ~ i(rel, cohort, ref=-1, ref2=0) | unit + year", data=d, vcov={"CRV1": "unit"})
    cells = res.info["cohort_effects"]
    names = [
        f"rel::{e}:cohort::{g}" for g, e in zip(cells["cohort"], cells["event_time"], strict=True)
    ]
    np.testing.assert_allclose(cells["estimate"], m.coef().loc[names], atol=1e-8)
    np.testing.assert_allclose(cells["se_regression"], m.se().loc[names], rtol=1e-6)


def test_influence_reproduces_vcov():
    sim = simulate_staggered(n_units=90, seed=13, n_clusters=12)
    res = _fit(sim, **STAGGERED, cluster="cl")
    inf = res.event_influence
    n = inf.shape[0]
    cl = sim.drop_duplicates("unit").set_index("unit")["cl"].reindex(res.unit_labels).to_numpy()
    summed = pd.DataFrame(inf).groupby(cl).sum().to_numpy()
    est = ~res.event_study["reference"].to_numpy()
    v = (summed.T @ summed / n**2)[np.ix_(est, est)]
    np.testing.assert_allclose(v, res.vcov.to_numpy(), rtol=1e-10, atol=1e-14)


def test_diff_diff_sunabraham_is_the_reference_for_aggregates(mpdta):
    """diff-diff's ``SunAbraham`` (an independent implementation) gives the IW event-study
    estimates (1e-10) and, with the shares held fixed, our ``share_uncertainty=False`` SEs
    (1e-8 relative). The share term is rebuilt here from diff-diff's cohort effects and
    weights with the sample-proportion influence
    :math:`\\psi_{ig} = (1[G_i = g] - s_g 1[G_i \\in C_e]) / N_e`, and our default SE is
    :math:`\\sqrt{se_{dd}^2 + \\sum_i (\\sum_g \\hat\\delta_{ge}\\psi_{ig})^2}` (1e-8 relative;
    observed on mpdta: 3e-12)."""
    from diff_diff import SunAbraham

    cols = {"outcome": "lemp", "unit": "countyreal", "time": "year", "cohort": "first.treat"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SunAbraham(control_group="never_treated", cluster="countyreal").fit(
            mpdta, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat"
        )
    ours = _fit(mpdta, **cols).event_study.set_index("event_time")
    fixed = _fit(mpdta, share_uncertainty=False, **cols).event_study.set_index("event_time")
    cohort_of_unit = mpdta.drop_duplicates("countyreal")["first.treat"].to_numpy()
    n_share_terms = 0
    for e, row in ref.event_study_effects.items():
        e = int(e)
        assert ours.loc[e, "estimate"] == pytest.approx(row["effect"], abs=1e-10)
        assert fixed.loc[e, "se"] == pytest.approx(row["se"], rel=1e-8)
        weights = ref.cohort_weights[e]
        cohorts = list(weights)
        delta = np.array([ref.cohort_effects[(g, e)]["effect"] for g in cohorts])
        in_set = np.isin(cohort_of_unit, cohorts)
        share = np.array([weights[g] for g in cohorts])
        psi = np.column_stack(
            [
                ((cohort_of_unit == g) - share[k] * in_set) / in_set.sum()
                for k, g in enumerate(cohorts)
            ]
        )
        share_var = float(np.sum((psi @ delta) ** 2))
        n_share_terms += share_var > 0
        assert ours.loc[e, "se"] == pytest.approx(np.sqrt(row["se"] ** 2 + share_var), rel=1e-8)
    assert n_share_terms >= 3  # event times -3, -2, 0, 1 mix cohorts on mpdta


def test_analytic_weights_equal_replicated_units():
    """Integer analytic weights constant within unit equal replicating each unit that many
    times (new unit ids): the regression and the cohort shares must both use the weights."""
    sim = simulate_staggered(n_units=60, seed=21)
    rng = np.random.default_rng(4)
    copies = pd.Series(rng.integers(1, 4, size=sim["unit"].nunique()), index=sim["unit"].unique())
    sim["w"] = sim["unit"].map(copies).astype(float)
    cols = {"outcome": "y", "time": "year", "cohort": "cohort"}
    weighted = _fit(sim, unit="unit", weights="w", **cols).event_study
    blocks = [
        sim[sim["unit"].map(copies) > k].assign(rep=lambda d, k=k: d["unit"] * 10 + k)
        for k in range(3)
    ]
    replicated = _fit(pd.concat(blocks, ignore_index=True), unit="rep", **cols).event_study
    np.testing.assert_allclose(weighted["estimate"], replicated["estimate"], atol=1e-10)
