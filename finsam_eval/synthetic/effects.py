"""True effects of förbund membership in the synthetic data.

The effects follow the sign pattern of ISF's 2019 evaluation (shared/DOMAIN.md): sickness benefit
falls (about −0.3 percentage points five to six years after joining), sickness and activity
compensation rises in every follow-up year, men (not women) leave unemployment for work more
often, UVAS is higher for the young, economic assistance is unchanged overall but higher for the
older group after more than two years, study allowances are unaffected.

Effects are dynamic (they grow with years since joining, and keep growing past the six-year
follow-up) and differ across adoption cohorts (early cohorts have larger effects). This is the
setting in which a binned two-way fixed-effects event study is biased (Sun & Abraham 2021;
Goodman-Bacon 2021) while heterogeneity-robust estimators are not.

Effects are defined per cell (outcome × sex × age band) in percentage points of the cell's share;
a population's effect is the population-weighted average of its cells' effects.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cell_effect", "cohort_scale"]


def cohort_scale(cohort: np.ndarray) -> np.ndarray:
    """Effect size multiplier by adoption cohort: early adopters gain most.

    Early förbund were formed where the parties were most committed (Statskontoret 2007), so the
    synthetic world gives them the largest effects: 2.2 for 2004–2005, 1.2 for 2006–2007,
    0.6 for 2008–2009 and 0.25 from 2010 on.
    """
    cohort = np.asarray(cohort)
    return np.select(
        [cohort <= 2005, cohort <= 2007, cohort <= 2009],
        [2.2, 1.2, 0.6],
        default=0.25,
    )


def cell_effect(
    outcome: str, sex: str, age_band: str, cohort: np.ndarray, event_time: np.ndarray
) -> np.ndarray:
    """True effect (percentage points) on one cell's share.

    Parameters
    ----------
    outcome
        ISF outcome key.
    sex
        "K" or "M".
    age_band
        "19-24", "25-54" or "55-64".
    cohort, event_time
        Arrays of equal shape: first year of membership (> 0) and years since joining.
        Effects are zero before joining (no anticipation).

    Returns
    -------
    numpy.ndarray
        The effect in percentage points, same shape as ``event_time``.
    """
    e = np.asarray(event_time, dtype=float)
    scale = cohort_scale(cohort)
    post = e >= 0
    capped = np.minimum(np.maximum(e, 0.0), 12.0)
    if outcome == "sjukpenning":
        effect = -0.06 * scale * capped
    elif outcome == "sa":
        effect = 0.10 * scale * (1.0 + 0.15 * capped)
    elif outcome == "af_till_arbete":
        effect = 0.07 * scale * np.minimum(capped + 1.0, 8.0) if sex == "M" else 0.0 * e
    elif outcome == "uvas":
        effect = 0.30 * scale * (1.0 + 0.10 * capped) if age_band == "19-24" else 0.0 * e
    elif outcome == "ekonomiskt_bistand":
        if age_band == "55-64":
            effect = 0.10 * scale * np.minimum(np.maximum(e - 2.0, 0.0), 6.0)
        else:
            effect = 0.0 * e
    elif outcome == "studier":
        effect = 0.0 * e
    else:
        raise ValueError(f"no synthetic effect defined for outcome {outcome!r}")
    return np.where(post, effect, 0.0)
