"""The pipeline's joint bootstrap and run notes.

The joint replicates are built from every estimator's influence functions; their spread must
reproduce each estimator's own analytic standard errors (a check of the influence-function
scaling convention in EstimationResult, across all methods).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import NATURAL_SPEC

from finsam_eval.estimators import METHODS, estimate
from finsam_eval.pipeline import joint_draws
from finsam_eval.pipeline.run import method_control, run_notes
from finsam_eval.synthetic import load_synthetic

SPEC = NATURAL_SPEC


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return load_synthetic()


@pytest.mark.parametrize("cluster", ["cluster_kommun", "cluster_lan"])
@pytest.mark.parametrize("method", sorted(SPEC))
def test_joint_draws_reproduce_analytic_standard_errors(method, cluster, panel) -> None:
    if method not in METHODS:
        pytest.skip(f"method {method!r} is not available")
    data = panel[(panel["population"] == "unga") & (panel["outcome"] == "uvas")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = estimate(data, method=method, cluster=cluster, **SPEC[method])
    if res.event_influence is None:
        pytest.skip(f"{method} provides no influence functions")
    es = res.event_study[res.event_study["event_time"].between(0, 6)]
    table = es.assign(population="unga", outcome="uvas", method=method).reset_index(drop=True)
    clusters = data.drop_duplicates("kommun_kod").set_index("kommun_kod")[cluster]
    draws = joint_draws({("unga", "uvas", method): res}, table, clusters, reps=4000, seed=3)
    assert draws.shape == (4000, len(table))
    spread = draws.std(axis=0)
    # Monte Carlo error of a standard deviation from 4000 draws is about 1.1 %
    np.testing.assert_allclose(spread, 1.0, atol=0.06)


def test_sun_abraham_falls_back_to_never_treated_controls() -> None:
    assert method_control("sa", "notyet") == "never"
    assert method_control("cs", "notyet") == "notyet"


def test_run_notes_collect_warnings_and_exclusions() -> None:
    data = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(6), 4),
            "time": np.tile(np.arange(2000, 2004), 6),
            "cohort": np.repeat([0, 0, 2001, 2000, 2002, 2002], 4),
        }
    )
    data["y"] = np.random.default_rng(0).normal(size=len(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = estimate(data, outcome="y", unit="unit", time="time", cohort="cohort", method="cs")
    res.info["run_warnings"] = [str(w.message) for w in caught]
    notes = run_notes({("alla", "sa", "cs"): res})
    assert (notes["kind"] == "excluded").any()
    assert notes["message"].str.contains("first period").any()


def test_population_weights_are_constant_within_kommun(panel) -> None:
    from finsam_eval.pipeline import estimate_all, load_config

    config = load_config(
        text='[design]\npreset = "all_cohorts"\npopulations = ["aldre"]\noutcomes = ["sa"]\nmethods = ["cs"]\n'
        'weights = true\n[inference]\nbootstrap = 0\nadjust = "holm"\n'
    )
    estimates, results = estimate_all(panel, config, progress=False)
    series = panel[(panel["population"] == "aldre") & (panel["outcome"] == "sa")]
    series = series.assign(w=series.groupby("kommun_kod")["weight"].transform("mean"))
    direct = estimate(series, method="cs", control=config.control, weights="w", window=(-5, 6))
    ours = results[("aldre", "sa", "cs")].event_study.set_index("event_time")["estimate"]
    expected = direct.event_study.set_index("event_time")["estimate"]
    np.testing.assert_allclose(ours.loc[0:6], expected.loc[0:6], atol=1e-12)
    unweighted = estimate(series, method="cs", control=config.control, window=(-5, 6))
    assert not np.allclose(
        unweighted.event_study.set_index("event_time")["estimate"].loc[0:6], ours.loc[0:6]
    )


def test_wild_bootstrap_p_values_in_the_estimates(panel) -> None:
    # inference.wild_bootstrap = B adds each covered method's wild-bootstrap p-values (21 län),
    # equal to calling wild_bootstrap on the estimate directly; uncovered methods stay empty,
    # with a note
    from finsam_eval.inference.wild_results import wild_bootstrap
    from finsam_eval.pipeline import estimate_all, load_config
    from finsam_eval.pipeline.run import add_wild_pvalues

    config = load_config(
        text='[design]\npreset = "all_cohorts"\npopulations = ["unga"]\noutcomes = ["uvas"]\n'
        'methods = ["cs", "sa", "twfe"]\ncluster = "lan"\n'
        '[inference]\nbootstrap = 0\nadjust = "holm"\nwild_bootstrap = 199\nseed = 4\n'
    )
    estimates, results = estimate_all(panel, config, progress=False)
    out = add_wild_pvalues(panel, estimates, results, config, progress=False)
    series = panel[(panel["population"] == "unga") & (panel["outcome"] == "uvas")]
    for method, kind in (("cs", "WCR-refit"), ("twfe", "WCR")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = estimate(
                series, method=method, cluster="cluster_lan", window=(-5, 6), control="notyet"
            )
            direct = wild_bootstrap(fitted, reps=199, seed=4, overall=False)
        rows = out[out["method"] == method].set_index("event_time")
        tested = direct["event_time"].astype(int).to_numpy()
        np.testing.assert_array_equal(
            rows.loc[tested, "p_value_wild"].to_numpy(), direct["p_value"].to_numpy()
        )
        assert set(rows.loc[tested, "wild_bootstrap"]) == {kind}
    assert out.loc[out["method"] == "sa", "p_value_wild"].isna().all()
    notes = run_notes(results)
    assert notes["message"].str.contains("no wild bootstrap for sa").any()


def test_isf_preset_evaluates_cohorts_2005_2010_with_later_joiners_until_they_join(panel) -> None:
    # seed 001: förbund formed 2005–2010, six follow-up years, comparisons "kommuner som (ännu)
    # inte har gått med"; the censored panel is built here from that definition, independently
    # of the pipeline's apply_design
    from finsam_eval.pipeline import estimate_all, load_config

    config = load_config(
        text='[design]\npopulations = ["alla"]\noutcomes = ["sjukpenning"]\n'
        'methods = ["cs", "imputation"]\n[inference]\nbootstrap = 0\nadjust = "holm"\n'
    )
    assert config.preset == "isf"
    _, results = estimate_all(panel, config, progress=False)
    series = panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")]
    series = series[series["year"] <= 2010 + 6]
    later = series["cohort"] > 2010
    censored = series[~(later & (series["year"] >= series["cohort"]))]
    censored = censored.assign(cohort=censored["cohort"].where(censored["cohort"] <= 2010, 0))
    assert censored["cohort"].isin([0, *range(2005, 2011)]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = estimate(
            censored, method="imputation", control="notyet", window=(-5, 6), unbalanced="keep"
        )
    ours = results[("alla", "sjukpenning", "imputation")].event_study.set_index("event_time")
    expected = direct.event_study.set_index("event_time")
    np.testing.assert_allclose(ours.loc[0:6, "estimate"], expected.loc[0:6, "estimate"], atol=1e-12)
    # Callaway & Sant'Anna is told the evaluated cohorts and keeps later joiners whole
    cs = results[("alla", "sjukpenning", "cs")]
    assert cs.info["cohorts"] == list(range(2005, 2011))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct_cs = estimate(
            series, method="cs", control="notyet", window=(-5, 6), cohorts=list(range(2005, 2011))
        )
    np.testing.assert_allclose(
        cs.event_study["estimate"].to_numpy(), direct_cs.event_study["estimate"].to_numpy()
    )


def test_isf_design_later_joiners_match_tabell_1(panel) -> None:
    # Tabell 1 (seed 004): 188 member kommuner in 2010 and 241 in May 2015, so 53 kommuner join
    # after the last ISF cohort; the synthetic calendar honours these counts
    from finsam_eval.pipeline import load_config
    from finsam_eval.pipeline.run import designed_panels

    designed = designed_panels(panel, load_config(None))
    assert designed.cohorts == list(range(2005, 2011))
    whole = designed.whole.drop_duplicates("kommun_kod")
    assert (whole["cohort"] > 2010).sum() == 241 - 188
    assert whole["cohort"].between(2005, 2010).sum() == 188
    censored = designed.censored
    later = censored["kommun_kod"].isin(whole.loc[whole["cohort"] > 2010, "kommun_kod"])
    assert (censored.loc[later, "cohort"] == 0).all()
    first_join = censored["kommun_kod"].map(whole.set_index("kommun_kod")["cohort"])
    assert (censored.loc[later, "year"] < first_join[later]).all()
    assert designed.whole["year"].max() == 2016 and designed.unbalanced


def test_input_hash_follows_the_panel_values_not_its_index():
    # the manifest's input hash (pandas.util.hash_pandas_object of every column): the same for
    # a copy or another row index, different after one changed value, column name or dtype
    import hashlib

    from finsam_eval.pipeline.run import input_hash

    panel = pd.DataFrame(
        {"kommun_kod": ["0114", "0115"], "year": [2010, 2010], "share": [1.25, 2.5]}
    )
    digest = input_hash(panel)
    assert len(digest) == 64 and digest != hashlib.sha256(b"").hexdigest()
    assert input_hash(panel.copy()) == digest
    assert input_hash(panel.set_axis([7, 9])) == digest
    assert input_hash(panel.assign(share=[1.25, 2.5000001])) != digest
    assert input_hash(panel.rename(columns={"share": "andel"})) != digest
    assert input_hash(panel.astype({"year": "int32"})) != digest
