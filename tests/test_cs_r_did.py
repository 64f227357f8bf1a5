"""Callaway–Sant'Anna against R's ``did`` (reference outputs in ../shared/reference/r-did).

Every scenario of the README is re-estimated and compared with R's numbers, read from the
files (never typed here). Tolerances: ATT(g,t) and every aggregation (per key and overall)
1e-8 absolute; analytic standard errors 1e-6 relative; pre-test statistic W 1e-6 relative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MPDTA

import finsam_eval.estimators as fe

ATT_ABS = 1e-8
SE_REL = 1e-6
W_REL = 1e-6

SIM = {"outcome": "Y", "unit": "id", "time": "period", "cohort": "G"}

# scenario -> (data file, column names, specification); mirrors the table in the README
SCENARIOS = {
    "mpdta_nev_dr": ("mpdta.csv", MPDTA, {"control": "never", "est_method": "dr"}),
    "mpdta_nyt_dr": ("mpdta.csv", MPDTA, {"control": "notyet", "est_method": "dr"}),
    "mpdta_nev_reg_cov": (
        "mpdta.csv",
        MPDTA,
        {"control": "never", "est_method": "reg", "covariates": ["lpop"]},
    ),
    "mpdta_nev_ipw": ("mpdta.csv", MPDTA, {"control": "never", "est_method": "ipw"}),
    "sim_nev_dr": (
        "sim_data.csv",
        SIM,
        {"control": "never", "est_method": "dr", "covariates": ["X"]},
    ),
}


@pytest.fixture(scope="module")
def reference(r_did_dir: Path) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_csv(r_did_dir / f"ref_{name}.csv") for name in ("attgt", "aggte", "pretest")
    }


@pytest.fixture(scope="module")
def fitted(r_did_dir: Path) -> dict[str, fe.EstimationResult]:
    out = {}
    for scenario, (file, columns, spec) in SCENARIOS.items():
        data = pd.read_csv(r_did_dir / file)
        out[scenario] = fe.estimate(data, method="cs", base_period="varying", **columns, **spec)
    return out


def test_every_reference_scenario_is_covered(reference):
    assert set(reference["attgt"]["scenario"]) == set(SCENARIOS)
    assert set(reference["aggte"]["scenario"]) == set(SCENARIOS)
    assert set(reference["pretest"]["scenario"]) == set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_group_time_effects(scenario, fitted, reference):
    ref = reference["attgt"].query("scenario == @scenario")
    ours = fitted[scenario].att_gt
    merged = ref.merge(ours, left_on=["group", "t"], right_on=["cohort", "time"], how="left")
    assert len(merged) == len(ref) == len(ours)
    np.testing.assert_allclose(merged["estimate"], merged["att"], rtol=0, atol=ATT_ABS)
    np.testing.assert_allclose(merged["se_y"], merged["se_x"], rtol=SE_REL)


@pytest.mark.parametrize("kind", ["simple", "group", "dynamic", "calendar"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_aggregations(scenario, kind, fitted, reference):
    ref = reference["aggte"].query("scenario == @scenario and type == @kind")
    agg = fitted[scenario].aggregate(kind)
    np.testing.assert_allclose(agg.overall["estimate"], ref["overall_att"].iloc[0], atol=ATT_ABS)
    np.testing.assert_allclose(agg.overall["se"], ref["overall_se"].iloc[0], rtol=SE_REL)
    if kind == "simple":
        assert agg.table.empty
        return
    merged = ref.merge(agg.table, left_on="egt", right_on="key", how="left")
    assert len(merged) == len(ref) == len(agg.table)
    np.testing.assert_allclose(merged["estimate"], merged["att_egt"], rtol=0, atol=ATT_ABS)
    np.testing.assert_allclose(merged["se"], merged["se_egt"], rtol=SE_REL)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_event_study_is_dynamic_and_overall_the_simple_aggregation(scenario, fitted, reference):
    ref = reference["aggte"].query("scenario == @scenario and type == 'dynamic'")
    res = fitted[scenario]
    np.testing.assert_allclose(res.event_study["event_time"], ref["egt"])
    np.testing.assert_allclose(res.event_study["estimate"], ref["att_egt"], atol=ATT_ABS)
    np.testing.assert_allclose(res.event_study["se"], ref["se_egt"], rtol=SE_REL)
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), ref["se_egt"], rtol=SE_REL)
    # overall is R's aggte(type="simple") (diff-diff's overall_att), as the peers report it
    simple = reference["aggte"].query("scenario == @scenario and type == 'simple'").iloc[0]
    np.testing.assert_allclose(res.overall["estimate"], simple["overall_att"], atol=ATT_ABS)
    np.testing.assert_allclose(res.overall["se"], simple["overall_se"], rtol=SE_REL)
    pd.testing.assert_series_equal(res.overall, res.aggregate("simple").overall)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pretest(scenario, fitted, reference):
    ref = reference["pretest"].query("scenario == @scenario").iloc[0]
    pretest = fitted[scenario].pretest
    np.testing.assert_allclose(pretest["W"], ref["W"], rtol=W_REL)
    # the file rounds the p-value to five decimals
    assert round(pretest["p_value"], 5) == pytest.approx(ref["Wpval"], abs=1e-5)
