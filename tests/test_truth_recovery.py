"""On the bundled synthetic data (heterogeneous, dynamic effects), heterogeneity-robust
estimators recover the known truth and the binned TWFE event study does not.

Reference: ``load_synthetic_truth(aggregate="event_time")``, the cohort-size-weighted ATT per
event time implied by the data generating process (never an estimator's output).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import NATURAL_SPEC

from finsam_eval.estimators import estimate
from finsam_eval.synthetic import load_synthetic, load_synthetic_truth

EVENT_TIMES = range(0, 7)
ROBUST = ("cs", "sa", "imputation", "two_stage", "stacked", "dcdh")
SPEC = NATURAL_SPEC


@pytest.fixture(scope="module")
def series() -> dict[tuple[str, str], pd.DataFrame]:
    panel = load_synthetic()
    return dict(tuple(panel.groupby(["population", "outcome"], sort=False)))


@pytest.fixture(scope="module")
def truth() -> pd.Series:
    table = load_synthetic_truth(aggregate="event_time")
    return table.set_index(["population", "outcome", "event_time"])["att"]


def _coverage(method: str, series, truth, event_times=EVENT_TIMES) -> float:
    hits = []
    for (population, outcome), data in series.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = estimate(data, method=method, **SPEC[method])
        es = res.event_study.set_index("event_time")
        for e in event_times:
            true = truth[(population, outcome, e)]
            hits.append(es.loc[e, "ci_lower"] <= true <= es.loc[e, "ci_upper"])
    assert len(hits) == 25 * len(event_times)
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def twfe_coverage(series, truth) -> float:
    return _coverage("twfe", series, truth)


# On the bundled realization the robust methods cover 94.9–96.6 % of the 175 cells (CS 96.6 %,
# Sun–Abraham 96.0 %, imputation 94.9 %, two-stage 95.4 %, stacked 96.6 %, dCDH 95.4 %) and the
# binned TWFE event study 89.1 %, missing 10 of the 25 series at its binned end point (event
# time 6). Event times of a series share their base-year outcomes and populations share
# kommuner, so one data set's coverage varies widely: on the earlier synthetic world, over 12
# seeds, dCDH 0.880–0.971, CS 0.903–0.971, TWFE 0.737–0.920. An absolute bar for TWFE's overall
# coverage on one realization is therefore a draw of luck; it is held on 200 redraws in
# tests/test_coverage.py (below 85 %). Here TWFE must fall clearly short of every robust method
# overall and miss most series at the binned end point, where its bias is systematic.


@pytest.mark.parametrize("method", ROBUST)
def test_robust_intervals_cover_the_truth(method, series, truth, twfe_coverage) -> None:
    coverage = _coverage(method, series, truth)
    assert coverage >= 0.90, f"{method}: 95% intervals cover the truth in {coverage:.1%} of cells"
    # the binned TWFE event study falls clearly short of every robust method
    assert twfe_coverage <= coverage - 0.05


def test_twfe_misses_at_its_binned_end_point(series, truth) -> None:
    # the end point pools years 6, 7, ... after joining, whose effects keep growing
    assert _coverage("twfe", series, truth, event_times=[6]) < 0.85
