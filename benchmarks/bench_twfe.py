"""Benchmark: dynamic TWFE event study, finsam_eval against pyfixest, in one process.

Both fit ``y ~ relative-time dummies | unit + year`` (reference -1, never-treated units with every
dummy 0, no binning) with CRV1 errors clustered by unit on the same simulated staggered panel.
Runs alternate between the two libraries; the table shows median wall time, the ratio, the peak
resident-memory increase of one call (Linux: the high-water mark is reset through
``/proc/self/clear_refs`` before each call) and, for finsam_eval, the tracemalloc peak of Python
and numpy allocations. pyfixest's Rust core is invisible to tracemalloc, hence the RSS figure.

Usage::

    .venv/bin/python benchmarks/bench_twfe.py                 # 290 × 21 and 100 000 × 21
    .venv/bin/python benchmarks/bench_twfe.py --units 290 --repeats 9
    .venv/bin/python benchmarks/bench_twfe.py --pyfixest-runs 0   # finsam_eval only
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from _common import peak_traced_mib, print_load

from finsam_eval.estimators.prepare import prepare_panel
from finsam_eval.estimators.spec import EstimationSpec
from finsam_eval.estimators.twfe import fit

warnings.filterwarnings("ignore")

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def simulate(n_units: int, n_years: int = 21, seed: int = 0) -> pd.DataFrame:
    """Staggered panel: cohorts 2004–2015, one never-treated unit in six, integer unit ids."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2000 + n_years)
    cohorts = rng.integers(2004, 2016, size=n_units)
    cohorts[rng.random(n_units) < 49 / 290] = 0
    unit = np.repeat(np.arange(n_units), n_years)
    year = np.tile(years, n_units)
    cohort = cohorts[unit]
    effect = np.where((cohort > 0) & (year >= cohort), -0.3 - 0.02 * (year - cohort), 0.0)
    y = rng.normal(10, 2, n_units)[unit] + 0.1 * (year - 2000) + effect
    y += rng.normal(0, 0.5, len(unit))
    # pyfixest's i() needs one relative-time column; never-treated units sit in the reference
    rel = np.where(cohort > 0, year - cohort, -1)
    return pd.DataFrame({"unit": unit, "year": year, "cohort": cohort, "y": y, "rel": rel})


def run_finsam(data: pd.DataFrame) -> pd.DataFrame:
    result = fit(data, EstimationSpec.build("twfe", data, "y", "unit", "year", "cohort"))
    es = result.event_study
    return es.loc[~es["reference"], ["event_time", "estimate", "se"]]


def run_pyfixest(data: pd.DataFrame) -> pd.DataFrame:
    import pyfixest as pf

    model = pf.feols("y ~ i(rel, ref=-1) | unit + year", data=data, vcov={"CRV1": "unit"})
    tidy = model.tidy()
    event_time = [int(float(name.split("::")[1].rstrip("]"))) for name in tidy.index]
    return pd.DataFrame(
        {
            "event_time": event_time,
            "estimate": tidy["Estimate"].to_numpy(),
            "se": tidy["Std. Error"].to_numpy(),
        }
    )


def _rss_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in {_STATUS}")


def timed(func: Callable[[pd.DataFrame], pd.DataFrame], data: pd.DataFrame):
    """(seconds, peak RSS increase in MiB or NaN, output) of one call."""
    gc.collect()
    can_reset = _CLEAR_REFS.exists()
    if can_reset:
        _CLEAR_REFS.write_text("5")  # reset VmHWM to the current RSS
        before = _rss_kib("VmRSS:")
    start = time.perf_counter()
    out = func(data)
    seconds = time.perf_counter() - start
    peak = (_rss_kib("VmHWM:") - before) / 1024 if can_reset else float("nan")
    return seconds, peak, out


def bench(n_units: int, repeats: int, pyfixest_runs: int) -> dict[str, object]:
    data = simulate(n_units)
    # warm up on a small panel: imports and first-call compilation are not part of the timing
    small = simulate(50, seed=1)
    run_finsam(small)
    if pyfixest_runs:
        run_pyfixest(small)
    finsam_times, finsam_rss, pyfixest_times, pyfixest_rss = [], [], [], []
    finsam_out = pyfixest_out = None
    for i in range(repeats):
        seconds, rss, finsam_out = timed(run_finsam, data)
        finsam_times.append(seconds)
        finsam_rss.append(rss)
        if i < pyfixest_runs:
            seconds, rss, pyfixest_out = timed(run_pyfixest, data)
            pyfixest_times.append(seconds)
            pyfixest_rss.append(rss)
    prepare_times = []
    for _ in range(max(3, repeats // 2)):
        start = time.perf_counter()
        prepare_panel(data, "y", "unit", "year", "cohort", control="notyet")
        prepare_times.append(time.perf_counter() - start)
    row: dict[str, object] = {
        "panel": f"{n_units} x {data['year'].nunique()} ({len(data):,} rows)",
        "finsam_s": statistics.median(finsam_times),
        "finsam_prepare_s": statistics.median(prepare_times),
        "finsam_rss_MiB": max(finsam_rss),
        "finsam_traced_MiB": peak_traced_mib(run_finsam, data),
        "finsam_runs": repeats,
    }
    if pyfixest_times:
        merged = finsam_out.merge(pyfixest_out, on="event_time", suffixes=("", "_pf"))
        assert len(merged) == len(finsam_out) == len(pyfixest_out)
        row |= {
            "pyfixest_s": statistics.median(pyfixest_times),
            "pyfixest_rss_MiB": max(pyfixest_rss),
            "pyfixest_runs": len(pyfixest_times),
            "speedup": statistics.median(pyfixest_times) / statistics.median(finsam_times),
            "max_abs_coef_diff": float((merged["estimate"] - merged["estimate_pf"]).abs().max()),
            "max_rel_se_diff": float((merged["se"] / merged["se_pf"] - 1).abs().max()),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="*", default=[290, 100_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--pyfixest-runs",
        type=int,
        default=None,
        help="pyfixest calls per panel (default: all repeats below 10 000 units, else 1: it "
        "takes seconds and about 9.5 GB at 100 000 units)",
    )
    args = parser.parse_args()
    print_load("before")
    rows = []
    for n_units in args.units:
        runs = args.pyfixest_runs
        if runs is None:
            runs = args.repeats if n_units < 10_000 else 1
        rows.append(bench(n_units, args.repeats, runs))
        print(pd.Series(rows[-1]).to_string(), flush=True)
        print()
    with pd.option_context("display.width", 200, "display.float_format", "{:.4g}".format):
        print(pd.DataFrame(rows).set_index("panel").T.to_string())
    print_load("after")


if __name__ == "__main__":
    main()
