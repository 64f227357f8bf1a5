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

from finsam_eval.estimators import estimate
from finsam_eval.synthetic import load_synthetic, load_synthetic_truth

EVENT_TIMES = range(0, 7)
ROBUST = ("cs", "sa", "imputation", "two_stage", "stacked", "dcdh")
# each method's natural specification on the kommun panel; TWFE as evaluators run it: a
# (-5, 6) window with binned end points
SPEC = {
    "cs": {"control": "notyet"},
    "sa": {"control": "never"},
    "imputation": {"control": "notyet"},
    "two_stage": {"control": "notyet"},
    "stacked": {"control": "notyet", "window": (-5, 6)},
    "dcdh": {"control": "notyet", "window": (-5, 6)},
    "twfe": {"window": (-5, 6)},
}


@pytest.fixture(scope="module")
def series() -> dict[tuple[str, str], pd.DataFrame]:
    panel = load_synthetic()
    return dict(tuple(panel.groupby(["population", "outcome"], sort=False)))


@pytest.fixture(scope="module")
def truth() -> pd.Series:
    table = load_synthetic_truth(aggregate="event_time")
    return table.set_index(["population", "outcome", "event_time"])["att"]


def _coverage(method: str, series, truth) -> float:
    hits = []
    for (population, outcome), data in series.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = estimate(data, method=method, **SPEC[method])
        es = res.event_study.set_index("event_time")
        for e in EVENT_TIMES:
            true = truth[(population, outcome, e)]
            hits.append(es.loc[e, "ci_lower"] <= true <= es.loc[e, "ci_upper"])
    assert len(hits) == 25 * len(EVENT_TIMES)
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def twfe_coverage(series, truth) -> float:
    return _coverage("twfe", series, truth)


# dCDH's estimates equal CS's not-yet-treated ones here (its SEs are 3–5 % smaller: the variance
# centres influence functions within cohorts), but on this one realization of the bundled data
# its intervals cover 88.0% of the 175 cells (CS 90.3%). The misses are whole series: man ×
# af_till_arbete at all seven event times, äldre × sjukpenning at six; event times of a series
# share their base-year outcomes, and populations share kommuner, so a single data set's
# coverage varies widely: over 12 seeds, dCDH 0.880–0.971, CS 0.903–0.971, TWFE 0.737–0.920.
# Over 200 redraws of man × af_till_arbete dCDH covers 94 % (tests/test_coverage.py). Recorded as
# a known shortfall, not hidden by a looser bar or another seed.
KNOWN_SHORTFALL = {"dcdh": "covers 88.0% of cells on the bundled realization (see comment)"}


@pytest.mark.parametrize(
    "method",
    [
        pytest.param(m, marks=pytest.mark.xfail(reason=KNOWN_SHORTFALL[m], strict=True))
        if m in KNOWN_SHORTFALL
        else m
        for m in ROBUST
    ],
)
def test_robust_intervals_cover_the_truth(method, series, truth, twfe_coverage) -> None:
    coverage = _coverage(method, series, truth)
    assert coverage >= 0.90, f"{method}: 95% intervals cover the truth in {coverage:.1%} of cells"
    # the binned TWFE event study falls clearly short of every robust method
    assert twfe_coverage < 0.85
    assert twfe_coverage <= coverage - 0.05
