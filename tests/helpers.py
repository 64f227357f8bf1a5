"""Shared builders for the tests (imported as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

#: Each method's natural specification on the kommun panel; TWFE as evaluators run it: a
#: (-5, 6) window with binned end points.
NATURAL_SPEC: dict[str, dict] = {
    "cs": {"control": "notyet"},
    "sa": {"control": "never"},
    "imputation": {"control": "notyet"},
    "two_stage": {"control": "notyet"},
    "stacked": {"control": "notyet", "window": (-5, 6)},
    "dcdh": {"control": "notyet", "window": (-5, 6)},
    "twfe": {"window": (-5, 6)},
}

#: ISF's six outcomes in the order of its report (../shared/DOMAIN.md): sjukpenning, SA,
#: ekonomiskt bistånd, AF-to-work, studier (not for the older group), UVAS (the young only).
ISF_OUTCOMES = ("sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete", "studier", "uvas")

#: The HTML report's sections (element ids), in page order.
REPORT_SECTIONS = (
    "summary",
    "isf-comparison",
    "specification",
    "tables",
    "figures",
    "notes",
    "manifest",
)


def estimate_row(
    population: str,
    outcome: str,
    method: str,
    event_time: int,
    estimate: float,
    se: float,
    p_value: float,
    *,
    z: float = 1.96,
    p_adjusted: float = math.nan,
    n: int = 290,
) -> dict:
    """One row of the long results table, in its column order (``ESTIMATE_COLUMNS``): interval
    ``estimate ± z se``, ``n`` units and clusters."""
    # imported here: conftest imports this module, and not every session needs the report package
    from finsam_eval.report import ESTIMATE_COLUMNS

    interval = (estimate - z * se, estimate + z * se)
    values = (population, outcome, method, event_time, estimate, se, *interval, p_value)
    return dict(zip(ESTIMATE_COLUMNS, (*values, p_adjusted, n, n), strict=True))


#: Years and cohorts of ``simulate_staggered`` (shared with the estimator peer tests).
YEARS = np.arange(1998, 2019)
COHORTS = np.arange(2004, 2016)


def true_effect(cohort: np.ndarray, event_time: np.ndarray) -> np.ndarray:
    """Cohort-specific effects growing with time since joining (0 before joining)."""
    scale = 1.0 + (2015 - cohort) / 6.0
    return np.where(event_time >= 0, scale * (0.4 + 0.15 * event_time), 0.0)


def simulate_staggered(
    n_units: int = 290, seed: int = 0, n_clusters: int | None = None, weights: bool = False
) -> pd.DataFrame:
    """Staggered panel 1998–2018, cohorts 2004–2015 and ~17% never treated, with heterogeneous
    dynamic effects, unit and year effects and serially correlated errors."""
    rng = np.random.default_rng(seed)
    cohort = np.where(rng.random(n_units) < 0.17, 0, rng.choice(COHORTS, n_units))
    unit = np.repeat(np.arange(n_units), len(YEARS))
    year = np.tile(YEARS, n_units)
    g = cohort[unit]
    e = year - g
    shock = rng.normal(size=(n_units, len(YEARS)))
    ar = np.empty_like(shock)
    ar[:, 0] = shock[:, 0]
    for t in range(1, len(YEARS)):
        ar[:, t] = 0.5 * ar[:, t - 1] + shock[:, t]
    y = (
        rng.normal(size=n_units)[unit]
        + 0.1 * (year - 1998)
        + np.sin(year / 3.0)
        + np.where(g > 0, true_effect(g, e), 0.0)
        + ar.ravel()
    )
    frame = pd.DataFrame(
        {
            "unit": unit,
            "year": year,
            "cohort": g,
            "y": y,
            "tau": np.where(g > 0, true_effect(g, e), 0.0),
        }
    )
    if n_clusters:
        frame["cl"] = (np.arange(n_units) % n_clusters)[unit]
    if weights:
        frame["pop"] = rng.uniform(1, 5, n_units)[unit]
    return frame


def truth_by_event_time(frame: pd.DataFrame, weight: str | None = None) -> pd.Series:
    """Average true effect over treated observations at each event time."""
    treated = frame[frame["cohort"] > 0].assign(e=lambda f: f["year"] - f["cohort"])
    w = treated[weight] if weight else pd.Series(1.0, index=treated.index)
    return (treated["tau"] * w).groupby(treated["e"]).sum() / w.groupby(treated["e"]).sum()


def synthetic_series(population: str = "alla", outcome: str = "sjukpenning") -> pd.DataFrame:
    """One series of the bundled synthetic kommun panel: 290 kommuner × 1998–2018, 11 cohorts
    2005–2015 (one kommun in 2015) and 49 never-members. Adds ``id`` = int(kommun_kod) and
    ``lan`` = int(cluster_lan) for peers that need numbers, and ``w``, a kommun-constant
    population weight (mean denominator / 1e4, as test_cs_peers; the panel's own ``weight``
    varies by year, which the estimators reject)."""
    from finsam_eval.synthetic import load_synthetic

    panel = load_synthetic()
    series = panel[(panel["population"] == population) & (panel["outcome"] == outcome)]
    out = series[["kommun_kod", "year", "cohort", "share", "weight", "cluster_lan"]]
    out = out.reset_index(drop=True)
    out["id"] = out["kommun_kod"].astype(int)
    out["lan"] = out["cluster_lan"].astype(int)
    out["w"] = out.groupby("kommun_kod")["weight"].transform("mean") / 1e4
    return out


#: Column roles in R did's example panel mpdta and in ``synthetic_series``.
MPDTA = {"outcome": "lemp", "unit": "countyreal", "time": "year", "cohort": "first.treat"}
SYNTHETIC = {"outcome": "share", "unit": "id", "time": "year", "cohort": "cohort"}
#: The columns of ``simulate_staggered``.
STAGGERED = {"outcome": "y", "unit": "unit", "time": "year", "cohort": "cohort"}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence a peer package: its warnings and what it prints."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def wildboottest(y, X, cluster, R, B, impose_null, weights="rademacher", seed=1, parallel=False):
    """The wildboottest package's wild cluster bootstrap of ``R @ beta = 0`` (WCR with
    ``impose_null``, else WCU; 11 scores), run step by step as its documentation does; the
    finished ``WildboottestCL`` (``.pvalue``, ``.t_boot``, ...). The benchmark
    benchmarks/bench_wild.py times this same call."""
    wbt = pytest.importorskip("wildboottest.wildboottest")
    wb = wbt.WildboottestCL(X=X, Y=y, cluster=cluster, R=R, B=B, seed=seed, parallel=parallel)
    wb.get_scores(bootstrap_type="11", impose_null=impose_null)
    wb.get_weights(weights)
    wb.get_numer()
    wb.get_denom()
    wb.get_tboot()
    wb.get_vcov()
    wb.get_tstat()
    wb.get_pvalue()
    return wb
