"""Results in notebooks: summaries, reprs, HTML, integer keys, plot offsets, CS overall."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from finsam_eval import estimate, load_synthetic
from finsam_eval.estimators.result import AggregationResult, EstimationResult, Summary


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    panel = load_synthetic()
    return panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")]


@pytest.fixture(scope="module")
def cs(series) -> EstimationResult:
    return estimate(series, method="cs", control="notyet")


@pytest.fixture(scope="module")
def twfe(series) -> EstimationResult:
    return estimate(series, method="twfe", window=(-4, 5))


def test_summary_prints_text_and_renders_html(cs):
    summary = cs.summary()
    assert isinstance(summary, Summary)
    text = str(summary)
    assert text.startswith("Method: cs\n") and "Event study:" in text
    assert "Overall: estimate=" in summary  # __contains__ searches the text
    assert "\\n" not in repr(summary)  # Jupyter's text repr shows lines, not escapes
    page = summary._repr_html_()
    assert page.count("<table") == 3  # facts, event study, overall
    assert "290" in page and "Cohorts" in page
    assert cs._repr_html_() == page


def test_summary_names_the_overall_effect(cs, twfe):
    assert 'aggte type="simple"' in str(cs.summary())
    post = twfe.info["overall_event_times"]
    assert f"mean of the event-time effects at e = {post[0]}..{post[-1]}" in str(twfe.summary())


def test_cs_overall_is_the_simple_aggregation(cs):
    simple = cs.aggregate("simple").overall
    pd.testing.assert_series_equal(cs.overall, simple)
    # ... and not the mean of the post-period event-time effects
    dynamic = cs.aggregate("dynamic").overall
    assert abs(dynamic["estimate"] - simple["estimate"]) > 0.05


def test_cs_pretest_says_why_in_one_line(cs):
    # R did refuses the pre-test when rcond(V) <= eps; here 121 cells, covariance of rank < 121
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cs.pretest is None
    line = next(x for x in str(cs.summary()).splitlines() if x.startswith("Pre-test"))
    assert "not computed" in line and "rank" in line and "pretrend_wald" in line


def test_short_reprs_without_influence_dump(cs):
    text = repr(cs)
    assert len(text) < 200 and "array" not in text
    # the repr shows the simple ATT (equal to R did's aggte(type="simple"), checked elsewhere)
    assert (
        "method='cs'" in text
        and f"overall={float(cs.aggregate('simple').overall['estimate']):.4f}" in text
    )
    agg = cs.aggregate("group")
    text = repr(agg)
    assert len(text) < 200 and "array" not in text and "kind='group'" in text
    assert "<table" in agg._repr_html_()
    assert isinstance(agg.summary(), Summary)
    assert str(agg.summary()).startswith("Aggregation: group")


def test_group_and_calendar_keys_are_ints(cs):
    for kind in ("group", "calendar", "dynamic"):
        keys = cs.aggregate(kind).table["key"]
        assert pd.api.types.is_integer_dtype(keys), kind
    assert 2005 in cs.aggregate("group").table["key"].tolist()
    assert "2005.0" not in str(cs.aggregate("group").summary())


def test_aggregation_result_keeps_non_integral_keys():
    table = pd.DataFrame({"key": [0.5, 1.0], "estimate": [1.0, 2.0]})
    res = AggregationResult("dynamic", table, pd.Series({"estimate": 1.5, "se": 0.1}))
    assert res.table["key"].tolist() == [0.5, 1.0]


def test_overlaid_plots_are_offset_and_have_a_legend(cs, twfe):
    ax = cs.plot(offset=-0.15, label="CS")
    twfe.plot(ax=ax, offset=0.15, label="TWFE")
    lines = [c for c in ax.containers]
    x_cs = lines[0].lines[0].get_xdata()
    x_twfe = lines[1].lines[0].get_xdata()
    assert np.isclose(x_cs[list(cs.event_study["event_time"]).index(0)], -0.15)
    assert np.isclose(x_twfe[list(twfe.event_study["event_time"]).index(0)], 0.15)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["CS", "TWFE"]
    plt.close(ax.figure)
