"""Benchmark: Callaway–Sant'Anna in finsam_eval against diff-diff's CallawaySantAnna.

Same specification through both libraries in one process, runs alternating, medians of wall
time, their ratio (finsam_eval / diff-diff) and peak traced memory (tracemalloc, a separate run
so tracing does not slow the timed ones). Each run computes the group-time effects, the event
study and the overall effect (diff-diff: ``fit`` plus ``aggregate("event_study")``).

Panels: (a) 290 units × 21 years shaped like the kommun data (cohorts 2004–2015, 49 never
treated); (b) 100 000 units × 21 years. Specifications: unconditional (no covariates), doubly
robust with one covariate, and the latter with 999 multiplier-bootstrap draws.

Run: ``.venv/bin/python benchmarks/bench_cs.py [--reps 5] [--large-reps 3] [--skip-large]``
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from _common import alternate, arguments, peak_traced_mib, print_load, print_table

import finsam_eval.estimators as fe


def make_panel(n_units: int, n_never: int, seed: int = 0) -> pd.DataFrame:
    """Staggered panel 2000–2020: cohorts 2004–2015, heterogeneous dynamic effects, covariate x."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2021)
    cohorts = np.r_[np.zeros(n_never, dtype=int), rng.integers(2004, 2016, n_units - n_never)]
    rng.shuffle(cohorts)
    n_years = len(years)
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(years, n_units)
    g = np.repeat(cohorts, n_years)
    x = np.repeat(rng.normal(size=n_units), n_years)
    event = np.where(g > 0, year - g, -1)
    effect = np.where((g > 0) & (event >= 0), 0.5 + 0.1 * event, 0.0)
    y = (
        np.repeat(rng.normal(size=n_units), n_years)
        + 0.05 * (year - 2000)
        + 0.3 * x * (year - 2000) / n_years
        + effect
        + rng.normal(scale=0.5, size=len(unit))
    )
    return pd.DataFrame({"unit": unit, "year": year, "cohort": g, "x": x, "y": y})


def ours(data: pd.DataFrame, covariates: list[str] | None, n_boot: int) -> Callable[[], object]:
    def run() -> object:
        return fe.estimate(
            data,
            outcome="y",
            unit="unit",
            time="year",
            cohort="cohort",
            method="cs",
            est_method="dr",
            covariates=covariates,
            reps=n_boot,
            seed=1,
        )

    return run


def theirs(data: pd.DataFrame, covariates: list[str] | None, n_boot: int) -> Callable[[], object]:
    from diff_diff import CallawaySantAnna

    def run() -> object:
        est = CallawaySantAnna(estimation_method="dr", n_bootstrap=n_boot, seed=1)
        res = est.fit(data, outcome="y", unit="unit", time="year", first_treat="cohort",
                      covariates=covariates)  # fmt: skip
        res.aggregate("event_study")
        return res

    return run


def bench(label: str, data: pd.DataFrame, reps: int) -> list[dict]:
    specs = {
        "unconditional": (None, 0),
        "dr + 1 covariate": (["x"], 0),
        "dr + 1 covariate + 999 bootstrap": (["x"], 999),
    }
    out = []
    for spec, (covs, n_boot) in specs.items():
        a, b = ours(data, covs, n_boot), theirs(data, covs, n_boot)
        a(), b()  # warm-up (imports, caches)
        t_a, t_b = alternate([a, b], reps)
        row = {
            "panel": label,
            "spec": spec,
            "finsam_eval_s": statistics.median(t_a),
            "diff_diff_s": statistics.median(t_b),
        }
        row["ratio"] = row["finsam_eval_s"] / row["diff_diff_s"]
        row["finsam_eval_peak_mb"] = peak_traced_mib(a)
        row["diff_diff_peak_mb"] = peak_traced_mib(b)
        print(
            f"{label:<22} {spec:<34} finsam_eval {row['finsam_eval_s']:8.3f}s  "
            f"diff-diff {row['diff_diff_s']:8.3f}s  ratio {row['ratio']:5.2f}  "
            f"peak MB {row['finsam_eval_peak_mb']:8.1f} / {row['diff_diff_peak_mb']:8.1f}",
            flush=True,
        )
        out.append(row)
    return out


def main() -> None:
    args = arguments(__doc__, reps=5, large_reps=3, skip_large=False)
    warnings.simplefilter("ignore")
    print_load("before")
    rows = bench("kommun 290 x 21", make_panel(290, 49), args.reps)
    if not args.skip_large:
        rows += bench("simulated 100000 x 21", make_panel(100_000, 17_000, seed=1), args.large_reps)
    print_table(rows, ".3f")
    print_load("after")


if __name__ == "__main__":
    main()
