"""compare(): one specification, several estimators, a tidy table and an overlay plot."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
from helpers import STAGGERED, simulate_staggered

from finsam_eval.estimators.compare import ComparisonResult, compare

matplotlib.use("Agg")

METHODS = ["twfe", "sa", "imputation", "two_stage"]


@pytest.fixture(scope="module")
def comparison() -> ComparisonResult:
    sim = simulate_staggered(n_units=120, seed=31)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compare(
            sim,
            methods=METHODS,
            **STAGGERED,
            window=(-4, 6),
        )


def test_table_is_tidy_long(comparison):
    table = comparison.table
    assert list(table.columns) == [
        "method",
        "event_time",
        "estimate",
        "se",
        "ci_lower",
        "ci_upper",
        "p_value",
    ]
    assert table["method"].unique().tolist() == METHODS
    for method in ["sa", "imputation", "two_stage"]:
        assert table.loc[table["method"] == method, "event_time"].between(-4, 6).all()
    assert comparison.overall["method"].tolist() == METHODS


def test_robust_estimators_agree_on_treated_horizons(comparison):
    """Balanced panel, equal weights: imputation and two-stage coincide at e >= 0."""
    t = comparison.table.set_index(["method", "event_time"])["estimate"]
    np.testing.assert_allclose(t["imputation"].loc[0:6], t["two_stage"].loc[0:6], atol=1e-10)


def test_plot_dodges_one_series_per_method(comparison):
    ax = comparison.plot()
    containers = ax.containers
    assert len(containers) == len(METHODS)
    xs = [c.lines[0].get_xdata() for c in containers]
    assert len({round(float(x[0]) % 1, 6) for x in xs}) == len(METHODS)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == METHODS
    assert any(np.allclose(line.get_ydata(), 0) for line in ax.get_lines())


def test_plot_legend_labels(comparison):
    ax = comparison.plot(labels={"sa": "Sun & Abraham"})
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["Sun & Abraham" if m == "sa" else m for m in METHODS]


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="unknown method"):
        compare(
            simulate_staggered(n_units=20),
            methods=["nope"],
            **STAGGERED,
        )
