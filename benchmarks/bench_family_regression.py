"""Benchmark the regression-family estimators against their peers.

sa ↔ pyfixest saturated cohort × relative-time regression (``i(rel, g, ref=-1, ref2=0)``, the
sunab-style fit whose aggregation we reproduce), imputation ↔ diff-diff ``ImputationDiD``,
two_stage ↔ pyfixest ``did2s``. Panels of 290 × 21 and 100 000 × 21 (1998–2018, cohorts
2004–2015, ~17% never treated) are generated here. Runs alternate ours/peer; the table reports
medians, the ratio ours/peer, and peak traced memory (tracemalloc, Python + numpy allocations).

Usage: ``python benchmarks/bench_family_regression.py [--reps 3] [--large-reps 1]``
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from finsam_eval.estimators import imputation, sun_abraham, two_stage

YEARS = np.arange(1998, 2019)


def make_panel(n_units: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cohort = np.where(rng.random(n_units) < 0.17, 0, rng.choice(np.arange(2004, 2016), n_units))
    unit = np.repeat(np.arange(n_units), len(YEARS))
    year = np.tile(YEARS, n_units)
    g = cohort[unit]
    e = year - g
    effect = np.where((g > 0) & (e >= 0), (1 + (2015 - g) / 6) * (0.4 + 0.15 * e), 0.0)
    y = rng.normal(size=n_units)[unit] + 0.1 * (year - 1998) + effect + rng.normal(size=len(unit))
    frame = pd.DataFrame({"unit": unit, "year": year, "cohort": g, "y": y})
    frame["rel"] = np.where(g > 0, e, -1).astype(float)
    frame["treat"] = ((g > 0) & (e >= 0)).astype(int)
    return frame


def ours(module) -> Callable[[pd.DataFrame], object]:
    return lambda d: module.fit(d, outcome="y", unit="unit", time="year", cohort="cohort")


def peer_sa(d: pd.DataFrame) -> object:
    import pyfixest as pf

    return pf.feols(
        "y ~ i(rel, cohort, ref=-1, ref2=0) | unit + year", data=d, vcov={"CRV1": "unit"}
    ).coef()


def peer_imputation(d: pd.DataFrame) -> object:
    from diff_diff import ImputationDiD

    res = ImputationDiD(pretrends=True).fit(
        d, outcome="y", unit="unit", time="year", first_treat="cohort"
    )
    return res.aggregate("event_study")


def peer_two_stage(d: pd.DataFrame) -> object:
    import pyfixest as pf

    return pf.did2s(
        d,
        yname="y",
        first_stage="~0|unit+year",
        second_stage="~i(rel, ref=-1.0)",
        treatment="treat",
        cluster="unit",
    ).tidy()


def measure(fn: Callable[[pd.DataFrame], object], data: pd.DataFrame) -> tuple[float, float]:
    """Seconds and peak traced MB of one call."""
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    fn(data.copy())
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="alternating runs, small panel")
    parser.add_argument("--large-reps", type=int, default=1, help="alternating runs, large panel")
    parser.add_argument("--large-units", type=int, default=100_000)
    parser.add_argument(
        "--skip-large-peers",
        default="",
        help="comma list of methods whose peer is not run on the large panel",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    pairs = {
        "sa": (ours(sun_abraham), peer_sa, "pyfixest saturated feols"),
        "imputation": (ours(imputation), peer_imputation, "diff-diff ImputationDiD"),
        "two_stage": (ours(two_stage), peer_two_stage, "pyfixest did2s"),
    }
    skip = set(filter(None, args.skip_large_peers.split(",")))
    rows = []
    for n_units, reps in [(290, args.reps), (args.large_units, args.large_reps)]:
        data = make_panel(n_units)
        for method, (mine, peer, peer_name) in pairs.items():
            run_peer = not (n_units > 290 and method in skip)
            t_ours, m_ours, t_peer, m_peer = [], [], [], []
            for _ in range(reps):  # alternate so drift affects both sides alike
                s, m = measure(mine, data)
                t_ours.append(s)
                m_ours.append(m)
                if run_peer:
                    s, m = measure(peer, data)
                    t_peer.append(s)
                    m_peer.append(m)
            row = {
                "panel": f"{n_units}x{len(YEARS)}",
                "method": method,
                "peer": peer_name,
                "ours_s": np.median(t_ours),
                "peer_s": np.median(t_peer) if t_peer else np.nan,
                "ours_peak_mb": max(m_ours),
                "peer_peak_mb": max(m_peer) if m_peer else np.nan,
            }
            row["ratio"] = row["ours_s"] / row["peer_s"]
            rows.append(row)
            print(
                pd.DataFrame([row]).to_string(
                    index=False, header=len(rows) == 1, float_format=lambda v: f"{v:.3f}"
                ),
                flush=True,
            )
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
