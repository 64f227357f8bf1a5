"""Simultaneous sup-t bands (finsam_eval.inference.bands)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import finsam_eval as fe
from finsam_eval.estimators.result import EstimationResult
from finsam_eval.inference.bands import add_bands, sup_t_critical_value
from finsam_eval.synthetic.montecarlo import draw_shares, replication_seeds, series_world, to_panel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def panel():
    world = series_world("man", "af_till_arbete")
    return to_panel(world, draw_shares(world, world.effect, replication_seeds(1, 1))[0])


def _vcov_result(vcov: np.ndarray) -> EstimationResult:
    times = np.arange(len(vcov))
    es = pd.DataFrame({"event_time": times, "estimate": 0.0, "se": np.sqrt(np.diag(vcov))})
    es["ci_lower"] = es["ci_upper"] = es["p_value"] = np.nan
    v = pd.DataFrame(vcov, index=times, columns=times)
    return EstimationResult("test", es, pd.Series({"estimate": 0.0}), v)


def test_independent_coefficients_match_sidak():
    """With k independent estimates the sup-t value is the Šidák quantile."""
    k, alpha = 8, 0.05
    crit, source, _ = sup_t_critical_value(_vcov_result(np.diag(np.linspace(1, 4, k))), alpha,
                                           reps=40_000, seed=1)  # fmt: skip
    exact = stats.norm.ppf((1 + (1 - alpha) ** (1 / k)) / 2)
    assert source == "vcov"
    assert crit == pytest.approx(exact, abs=0.03)


def test_perfectly_correlated_is_pointwise():
    v = np.full((5, 5), 2.0)
    crit, _, _ = sup_t_critical_value(_vcov_result(v), 0.05, reps=40_000, seed=2)
    assert crit == pytest.approx(stats.norm.ppf(0.975), abs=0.03)


@pytest.mark.parametrize(
    "method", ["cs", "sa", "imputation", "two_stage", "stacked", "dcdh", "twfe"]
)
def test_add_bands_every_method(panel, method):
    res = fe.estimate(panel, method=method, window=(-5, 6))
    banded = add_bands(res, reps=2_000, seed=3)
    es = banded.event_study
    has = es["se"].notna() & (es["se"] > 0)
    assert (es.loc[has, "band_lower"] <= es.loc[has, "ci_lower"] + 1e-12).all()
    assert (es.loc[has, "band_upper"] >= es.loc[has, "ci_upper"] - 1e-12).all()
    assert es.loc[~has, "band_lower"].isna().all()
    band = banded.info["band"]
    assert band["critical_value"] >= band["pointwise"]
    assert band["source"] == ("vcov" if res.event_influence is None else "influence")
    assert "band_lower" not in res.event_study.columns  # a copy, the input is untouched
    # deterministic given the seed
    again = add_bands(res, reps=2_000, seed=3)
    assert again.info["band"]["critical_value"] == band["critical_value"]


def test_influence_and_vcov_routes_agree(panel):
    res = fe.estimate(panel, method="cs", window=(-5, 6))
    boot, _, _ = sup_t_critical_value(res, reps=20_000, seed=4, source="influence")
    gauss, _, _ = sup_t_critical_value(res, reps=20_000, seed=4, source="vcov")
    assert boot == pytest.approx(gauss, abs=0.06)


def test_cluster_mapping(panel):
    res = fe.estimate(panel, method="cs", window=(-5, 6))
    lan = panel.drop_duplicates("kommun_kod").set_index("kommun_kod")["cluster_lan"]
    banded = add_bands(res, reps=2_000, seed=5, cluster=lan)
    assert np.isfinite(banded.info["band"]["critical_value"])
    with pytest.raises(ValueError):
        add_bands(res, cluster=np.zeros(3))
