"""Benchmark the regression-family estimators against their peers.

sa ↔ pyfixest saturated cohort × relative-time regression (``i(rel, g, ref=-1, ref2=0)``, the
sunab-style fit whose aggregation we reproduce), imputation ↔ diff-diff ``ImputationDiD``,
two_stage ↔ pyfixest ``did2s``. Panels of 290 × 21, 5 000 × 21 and 100 000 × 21 (1998–2018, cohorts
2004–2015, ~17% never treated) are generated here. Runs alternate ours/peer; the table reports
medians (one run at 100 000 units), the ratio ours/peer, and peak traced memory of a separate
run (tracemalloc: Python + numpy allocations). Peers too costly for a panel are skipped
(``--peer-max-units``).

Usage: ``python benchmarks/bench_family_regression.py [--reps 3] [--sizes 290,5000,100000]``
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from _common import alternate, arguments, peak_traced_mib, print_row, print_table

from finsam_eval.estimators import imputation, sun_abraham, two_stage
from finsam_eval.estimators.registry import METHODS
from finsam_eval.estimators.spec import EstimationSpec

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
    method = next(key for key, info in METHODS.items() if info.module == module.__name__)
    return lambda d: module.fit(d, EstimationSpec.build(method, d, "y", "unit", "year", "cohort"))


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


def on_copy(fn: Callable[[pd.DataFrame], object], data: pd.DataFrame) -> Callable[[], object]:
    """``fn`` on a fresh copy of ``data`` at each call (the copy is timed and traced with it)."""
    return lambda: fn(data.copy())


def main() -> None:
    args = arguments(
        __doc__,
        reps=(3, "alternating runs per size"),
        sizes=("290,5000,100000", "comma list of unit counts"),
        peer_max_units=(
            "sa=5000,two_stage=2000",
            "largest panel each peer runs on: pyfixest's saturated fit builds a dense design "
            "of n_obs × (relative times × cohorts) (~7 GB at 100 000 units) and pyfixest's did2s "
            "variance builds a dense n_obs × n_units first-stage dummy matrix (~4 GB at 5 000 "
            "units)",
        ),
    )
    warnings.simplefilter("ignore")
    pairs = {
        "sa": (ours(sun_abraham), peer_sa, "pyfixest saturated feols"),
        "imputation": (ours(imputation), peer_imputation, "diff-diff ImputationDiD"),
        "two_stage": (ours(two_stage), peer_two_stage, "pyfixest did2s"),
    }
    limits = {k: int(v) for k, v in (item.split("=") for item in args.peer_max_units.split(","))}
    rows = []
    for n_units in [int(v) for v in args.sizes.split(",")]:
        data = make_panel(n_units)
        reps = args.reps if n_units <= 5000 else 1
        for method, (mine, peer, peer_name) in pairs.items():
            run_peer = n_units <= limits.get(method, n_units)
            calls = [on_copy(mine, data), on_copy(peer, data)]
            t_ours, t_peer = alternate([calls[0], calls[1] if run_peer else None], reps)
            row = {
                "panel": f"{n_units}x{len(YEARS)}",
                "method": method,
                "peer": peer_name,
                "ours_s": np.median(t_ours),
                "peer_s": np.median(t_peer) if t_peer else np.nan,
                "ours_peak_mb": peak_traced_mib(calls[0]),
                "peer_peak_mb": peak_traced_mib(calls[1]) if run_peer else np.nan,
            }
            row["ratio"] = row["ours_s"] / row["peer_s"]
            rows.append(row)
            print_row(rows, ".3f")
    print_table(rows, ".3f")


if __name__ == "__main__":
    main()
