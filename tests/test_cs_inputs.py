"""Bad input for the Callaway–Sant'Anna estimator: clear errors and reported exclusions.

Most checks live in ``prepare_panel`` (done once for every estimator); these tests call them
through ``estimate(method="cs")`` and, where a check is only used by other estimators, directly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import finsam_eval.estimators as fe
from finsam_eval.estimators import EstimationInputError, prepare_panel

COLUMNS = {"outcome": "y", "unit": "id", "time": "t", "cohort": "g"}


def panel(n_units: int = 40, n_periods: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cohort = np.resize([0, 0, 3, 4, 5], n_units)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n_units), n_periods),
            "t": np.tile(np.arange(1, n_periods + 1), n_units),
            "g": np.repeat(cohort, n_periods),
            "x": np.repeat(rng.normal(size=n_units), n_periods),
            "lan": np.repeat(np.arange(n_units) % 4, n_periods),
        }
    )
    frame["y"] = rng.normal(size=len(frame)) + (frame["g"] > 0) * (frame["t"] >= frame["g"])
    return frame


def cs(data: pd.DataFrame, **spec) -> fe.EstimationResult:
    return fe.estimate(data, method="cs", **{**COLUMNS, **spec})


def test_no_never_treated_with_never_control():
    data = panel()
    data = data[data["g"] > 0]
    with pytest.raises(EstimationInputError, match="never-treated"):
        cs(data, control="never")


def test_no_never_treated_with_notyet_control_drops_late_periods_as_r():
    data = panel()
    data = data[data["g"] > 0]
    with pytest.warns(UserWarning, match="no never-treated units"):
        res = cs(data, control="notyet")
    # periods from the last cohort's start (5) on are dropped; cohort 5 only as comparison
    assert res.att_gt["time"].max() == 4
    assert set(res.att_gt["cohort"]) == {3, 4}
    assert (res.info["dropped"]["reason"].str.contains("last cohort")).any()


def test_cohort_treated_in_first_period_is_dropped_with_warning():
    data = panel()
    data.loc[data["id"] == 1, "g"] = 1
    data.loc[data["id"] == 6, "g"] = 1
    with pytest.warns(UserWarning, match=r"2 units in cohort\(s\) \[1\].*\(12 rows\)"):
        res = cs(data)
    dropped = res.info["dropped"]
    assert set(dropped["unit"]) >= {1, 6}
    assert 1 not in set(res.att_gt["cohort"])


def test_treatment_switching_off_points_to_dcdh():
    data = panel()
    data.loc[(data["id"] == 2) & (data["t"] > 4), "g"] = 0
    with pytest.raises(EstimationInputError, match="dcdh"):
        cs(data)
    status = panel()
    status["d"] = ((status["g"] > 0) & (status["t"] >= status["g"])).astype(int)
    status.loc[(status["id"] == 2) & (status["t"] == 6), "d"] = 0
    with pytest.raises(EstimationInputError, match="dcdh"):
        prepare_panel(status, "y", "id", "t", "g", treatment="d")


def test_duplicate_unit_time_rows():
    data = panel()
    data = pd.concat([data, data.iloc[[3]]], ignore_index=True)
    with pytest.raises(EstimationInputError, match="duplicate"):
        cs(data)


@pytest.mark.parametrize(
    ("values", "message"), [(["a", "b"], "must be numeric"), ([1.5, 2.5], "whole periods")]
)
def test_time_must_be_numeric_and_integer(values, message):
    data = panel().astype({"t": object})
    data.loc[:1, "t"] = values
    with pytest.raises(EstimationInputError, match=message):
        cs(data)


def test_outcome_constant_or_all_missing():
    data = panel()
    with pytest.raises(EstimationInputError, match="constant"):
        cs(data.assign(y=1.0))
    with pytest.raises(EstimationInputError, match="missing in every row"):
        cs(data.assign(y=np.nan))


def test_time_varying_covariate_where_only_invariant_supported():
    data = panel()
    data["x"] = data["x"] + data["t"]
    with pytest.raises(EstimationInputError, match="varies over time"):
        prepare_panel(data, "y", "id", "t", "g", covariates=["x"], time_invariant_covariates=True)
    # Callaway–Sant'Anna itself accepts them: panels use the earlier period's value, as R
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(cs(data, covariates=["x"]).overall["estimate"])


def test_cluster_not_constant_within_unit():
    data = panel()
    data.loc[(data["id"] == 3) & (data["t"] == 2), "lan"] = 99
    with pytest.raises(EstimationInputError, match="constant within"):
        cs(data, cluster="lan")


def test_unbalanced_units_are_dropped_and_reported_by_default():
    data = panel().drop(index=[0, 7])  # units 0 and 1 lose a period each
    with pytest.warns(UserWarning, match="not observed in every period"):
        res = cs(data)
    assert res.info["n_units"] == 38
    kept = cs(data, unbalanced="keep")
    assert kept.info["n_units"] == 40
    assert kept.info["estimator_2x2"].startswith("repeated cross-section")


def test_bad_options():
    data = panel()
    with pytest.raises(EstimationInputError, match="est_method"):
        cs(data, est_method="ols")
    with pytest.raises(EstimationInputError, match="base_period"):
        cs(data, base_period="fixed")
    with pytest.raises(EstimationInputError, match="multiplier"):
        cs(data, reps=9, multiplier="normal")


def test_old_bootstrap_names_warn_and_still_work():
    data = panel(n_units=60)
    with pytest.warns(DeprecationWarning, match="use reps="):
        old = cs(data, bootstrap=49, bootstrap_weights="mammen", seed=2)
    new = cs(data, reps=49, multiplier="mammen", seed=2)
    pd.testing.assert_frame_equal(old.event_study, new.event_study)


@pytest.mark.filterwarnings("ignore:pre-test not computed")
def test_clustered_se_and_bootstrap_bands():
    data = panel(n_units=80)
    unit_se = cs(data).event_study["se"].to_numpy()
    res = cs(data, cluster="lan", bootstrap=199, seed=3)
    assert res.info["n_clusters"] == 4
    es = res.event_study
    assert {"band_lower", "band_upper"}.issubset(es.columns)
    assert (es["band_upper"] - es["band_lower"] >= es["ci_upper"] - es["ci_lower"] - 1e-12).all()
    assert not np.allclose(es["se"].to_numpy(), unit_se)
    again = cs(data, cluster="lan", bootstrap=199, seed=3)
    pd.testing.assert_frame_equal(res.event_study, again.event_study)
    agg = res.aggregate("group")
    assert agg.critical_value is not None and np.isfinite(agg.table["se"]).all()
