"""CS cells that cannot be estimated: a cohort whose 2×2 would trim every comparison unit.

DRDID (and R's ``did``) trims comparison units with a propensity score of at least 0.995; without
covariates the score is the treated share of the 2×2, so a cohort of 200 units against one
never-treated unit has no comparison left and R reports NA for its cells. The other cohort's
cells are the unconditional DiD of mean outcome changes, computed here by hand from the data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import finsam_eval


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    cohort = np.r_[np.zeros(1), np.full(200, 2004), np.full(10, 2006)].astype(int)
    years = np.arange(2000, 2009)
    unit = np.repeat(np.arange(len(cohort)), len(years))
    year = np.tile(years, len(cohort))
    g = cohort[unit]
    y = rng.normal(size=len(unit)) + 0.1 * unit + 0.5 * ((g > 0) & (year >= g))
    return pd.DataFrame({"unit": unit, "year": year, "cohort": g, "y": y})


def _did(data: pd.DataFrame, g: int, t: int, base: int) -> float:
    """Mean change of cohort g minus mean change of the never-treated, between base and t."""
    wide = data.pivot(index="unit", columns="year", values="y")
    cohort = data.groupby("unit")["cohort"].first()
    change = wide[t] - wide[base]
    return change[cohort == g].mean() - change[cohort == 0].mean()


@pytest.mark.parametrize("est_method", ["dr", "ipw"])
def test_trimmed_cohort_cells_are_not_estimated(est_method: str) -> None:
    data = _panel()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = finsam_eval.estimate(data, outcome="y", unit="unit", time="year", cohort="cohort",
                                   method="cs", est_method=est_method)  # fmt: skip
    messages = "\n".join(str(w.message) for w in caught)
    assert "ATT(2004,2001) not estimated: no treated or comparison units" in messages
    att = res.att_gt.set_index(["cohort", "time"])
    assert att.loc[2004, "estimate"].isna().all()
    assert res.info["cells_not_estimated"] == 8
    # the other cohort: the hand-computed 2×2 DiD (varying base before 2006, 2005 after)
    for t in range(2001, 2009):
        base = t - 1 if t < 2006 else 2005
        assert att.loc[(2006, t), "estimate"] == pytest.approx(_did(data, 2006, t, base), abs=1e-12)
    # only cohort 2006 enters the event study: e = t - 2006
    es = res.event_study.set_index("event_time")["estimate"]
    assert list(es.index) == list(range(-5, 3))
    assert es.loc[2] == pytest.approx(_did(data, 2006, 2008, 2005), abs=1e-12)


def test_outcome_regression_keeps_the_large_cohort() -> None:
    data = _panel()
    res = finsam_eval.estimate(data, outcome="y", unit="unit", time="year", cohort="cohort",
                               method="cs", est_method="reg")  # fmt: skip
    att = res.att_gt.set_index(["cohort", "time"])["estimate"]
    assert res.info["cells_not_estimated"] == 0
    assert att.loc[(2004, 2007)] == pytest.approx(_did(data, 2004, 2007, 2003), abs=1e-12)
