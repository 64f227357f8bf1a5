"""The few-clusters rule in every aggregation of every method (issue #13, item 2).

Below ``FEW_CLUSTERS`` clusters every interval and p-value uses t(G - 1) critical values and a
warning says so; with one cluster nothing is reported as finite. The rule is documented in
``finsam_eval.estimators.spec.few_clusters_inference``; the references here are Student's t
quantiles from scipy and the normal quantile R's did uses above the threshold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from finsam_eval import estimate
from finsam_eval.estimators import METHODS
from finsam_eval.estimators.spec import FEW_CLUSTERS
from finsam_eval.synthetic.montecarlo import draw_shares, replication_seeds, series_world, to_panel

ALPHA = 0.05
CS_KINDS = ("simple", "dynamic", "group", "calendar")
# options that let every method run on the full synthetic panel
OPTIONS = {"dcdh": {"window": (-3, 3)}, "stacked": {"window": (-3, 3)}, "twfe": {"window": (-3, 3)}}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    world = series_world("man", "af_till_arbete")
    return to_panel(world, draw_shares(world, world.effect, replication_seeds(5, 1))[0])


def _fit(panel: pd.DataFrame, method: str, cluster: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate(panel, method=method, cluster=cluster, alpha=ALPHA,
                        **OPTIONS.get(method, {}))  # fmt: skip


def _aggregate(res, kind: str):
    with pytest.warns(UserWarning, match="clusters"):
        return res.aggregate(kind)


def _rows(agg) -> pd.DataFrame:
    """Every row of an aggregation: its table and its overall effect."""
    cols = ["estimate", "se", "ci_lower", "ci_upper", "p_value"]
    overall = pd.DataFrame([agg.overall[cols]])
    return pd.concat([agg.table[cols], overall], ignore_index=True) if len(agg.table) else overall


def _assert_t(rows: pd.DataFrame, df: int) -> None:
    rows = rows[np.isfinite(rows["se"]) & (rows["se"] > 0)]
    assert len(rows)
    crit = stats.t.ppf(1 - ALPHA / 2, df)
    np.testing.assert_allclose(rows["ci_upper"] - rows["estimate"], crit * rows["se"], rtol=1e-9)
    np.testing.assert_allclose(rows["estimate"] - rows["ci_lower"], crit * rows["se"], rtol=1e-9)
    p = 2 * stats.t.sf(np.abs(rows["estimate"] / rows["se"]), df)
    np.testing.assert_allclose(rows["p_value"], p, rtol=1e-9, atol=1e-15)


def test_lan_clusters_are_few(panel: pd.DataFrame) -> None:
    assert panel["cluster_lan"].nunique() == 21 < FEW_CLUSTERS


@pytest.mark.parametrize("kind", CS_KINDS)
def test_cs_aggregations_use_t_with_few_clusters(panel: pd.DataFrame, kind: str) -> None:
    res = _fit(panel, "cs", "cluster_lan")
    agg = _aggregate(res, kind)
    _assert_t(_rows(agg), df=20)


def test_cs_dynamic_aggregation_matches_the_event_study(panel: pd.DataFrame) -> None:
    res = _fit(panel, "cs", "cluster_lan")
    table = _aggregate(res, "dynamic").table.rename(columns={"key": "event_time"})
    cols = ["event_time", "estimate", "se", "ci_lower", "ci_upper", "p_value"]
    pd.testing.assert_frame_equal(table[cols], res.event_study[cols], check_dtype=False)
    simple = _aggregate(res, "simple").overall
    pd.testing.assert_series_equal(simple[res.overall.index], res.overall, check_names=False)


@pytest.mark.parametrize("kind", CS_KINDS)
def test_cs_aggregations_with_one_cluster_are_nan(panel: pd.DataFrame, kind: str) -> None:
    res = _fit(panel.assign(one="all"), "cs", "one")
    with pytest.warns(UserWarning, match="only 1 cluster"):
        agg = res.aggregate(kind)
    rows = _rows(agg)
    assert rows["estimate"].notna().all()
    assert rows[["se", "ci_lower", "ci_upper", "p_value"]].isna().all().all()


def test_cs_keeps_normal_critical_values_with_many_clusters(panel: pd.DataFrame) -> None:
    """Above the threshold CS keeps R did's convention (normal critical values), no warning."""
    res = _fit(panel, "cs", "cluster_kommun")
    assert res.info["n_clusters"] == 290 >= FEW_CLUSTERS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in CS_KINDS:
            rows = _rows(res.aggregate(kind))
            rows = rows[rows["se"] > 0]
            z = stats.norm.ppf(1 - ALPHA / 2)
            np.testing.assert_allclose(rows["ci_upper"] - rows["estimate"], z * rows["se"])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_aggregates_with_t_and_few_clusters(panel: pd.DataFrame, method: str) -> None:
    res = _fit(panel, method, "cluster_lan")
    _assert_t(_rows(res.aggregate("dynamic") if method != "cs" else _aggregate(res, "dynamic")),
              df=20)  # fmt: skip
    simple = res.aggregate("simple") if method != "cs" else _aggregate(res, "simple")
    _assert_t(_rows(simple), df=20)


@pytest.mark.parametrize("method", ["cs", "imputation"])
def test_pooled_calendars_follow_the_rule(panel: pd.DataFrame, method: str) -> None:
    """Rubin pooling of identical calendars (no between variance) keeps t(G - 1) intervals.

    Barnard & Rubin's df equals the complete-data df when the draws agree, so the pooled
    intervals are those of one fit: est ± t(20) SE with 21 län, for CS's shared preparation
    as for the refitting path.
    """
    from finsam_eval.estimators.calendars import estimate_over_calendars

    own = panel.drop_duplicates("kommun_kod")[["kommun_kod", "cohort"]]
    calendars = pd.concat([own.assign(draw=d) for d in (0, 1)], ignore_index=True)
    with pytest.warns(UserWarning, match="only 21 clusters"):
        pooled = estimate_over_calendars(panel, calendars, method, cluster="cluster_lan")
    rows = pooled.event_study
    rows = rows[rows["se"] > 0]
    crit = stats.t.ppf(1 - ALPHA / 2, 20)
    np.testing.assert_allclose(rows["ci_upper"] - rows["estimate"], crit * rows["se"], rtol=1e-6)
    # CS recomputes its aggregations (and warns again); the others return the pooled overall
    overall = (
        _aggregate(pooled, "simple") if method == "cs" else pooled.aggregate("simple")
    ).overall
    np.testing.assert_allclose(overall["ci_upper"] - overall["estimate"], crit * overall["se"],
                               rtol=1e-6)  # fmt: skip
