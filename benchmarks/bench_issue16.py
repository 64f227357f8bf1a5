"""Issue 16's workloads, finsam_eval next to its peer in one process, runs alternating.

Each workload runs once to warm up (imports, caches), then ``--reps`` times alternating
finsam_eval and the peer on the same data; the table gives the medians of wall time, their
ratio (finsam_eval / peer; the issue's targets are stated as ratios), the CPU seconds of this
process per call (less sensitive to other jobs on the machine than wall time; each call starts
after a 0.5 s pause, so BLAS worker threads still spinning after the previous call are idle) and
the peak traced memory of one more call of each (tracemalloc: Python and numpy allocations). The load
average is printed before and after: absolute times on a shared machine are noisy, ratios less.

Workloads (targets of issue 16):

* ``cs``: Callaway–Sant'Anna, never-treated comparisons, outcome regression (finsam_eval
  ``est_method="reg"``, diff-diff ``estimation_method="reg"``), group-time effects plus the event
  study (diff-diff: ``fit`` and ``aggregate("event_study")``), with 0 and 999 multiplier draws;
  on the bundled alla × sjukpenning series (290 × 21) and a simulated 100 000 × 21 panel.
  Target ratio ≤ 0.3, no more memory than diff-diff.
* ``twfe``: dynamic TWFE event study at 100 000 × 21 against ``pyfixest.feols("y ~ i(rel,
  ref=-1) | unit + year", vcov={"CRV1": "unit"})``. Target ratio ≤ 0.08, peak < 1 GB.
* ``imputation``, ``sa``: at 100 000 × 21 against diff-diff's ``ImputationDiD`` and
  ``SunAbraham``. Target ratio ≤ 0.05. diff-diff's ``SunAbraham`` passed 18 GB of memory at
  100 000 units on this 24 GB machine and was stopped, so the Sun–Abraham pair runs at
  ``--sa-peer-units`` (10 000) and finsam_eval alone at 100 000.

Run: ``python benchmarks/bench_issue16.py [--only cs twfe imputation sa] [--reps 5]
[--large-reps 3] [--peer-large-reps 1]``. With ``OPENBLAS_NUM_THREADS=1`` both libraries use
one BLAS thread (steadier on a loaded machine; the documented figures say which was used).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cs  # noqa: E402  (the benchmarks folder is not a package)
import bench_family_regression  # noqa: E402
import bench_twfe  # noqa: E402
from _common import peak_traced_mib  # noqa: E402

import finsam_eval  # noqa: E402
import finsam_eval.estimators as fe  # noqa: E402

Call = Callable[[], object]
PAUSE = 0.5  # seconds before each timed call


def kommun_series() -> pd.DataFrame:
    data = finsam_eval.load_synthetic()
    rows = (data["population"] == "alla") & (data["outcome"] == "sjukpenning")
    series = data.loc[rows, ["kommun_kod", "year", "cohort", "share"]].reset_index(drop=True)
    return series.rename(columns={"kommun_kod": "unit", "share": "y"})


def cs_pair(data: pd.DataFrame, n_boot: int) -> tuple[Call, Call]:
    from diff_diff import CallawaySantAnna

    def ours() -> object:
        return fe.estimate(data, outcome="y", unit="unit", time="year", cohort="cohort",
                           method="cs", control="never", est_method="reg", reps=n_boot,
                           seed=1)  # fmt: skip

    def theirs() -> object:
        est = CallawaySantAnna(
            control_group="never_treated", estimation_method="reg", n_bootstrap=n_boot, seed=1
        )
        res = est.fit(data, outcome="y", unit="unit", time="year", first_treat="cohort")
        res.aggregate("event_study")
        return res

    return ours, theirs


def regression_pair(method: str, data: pd.DataFrame) -> tuple[Call, Call]:
    if method == "twfe":
        return lambda: bench_twfe.run_finsam(data), lambda: bench_twfe.run_pyfixest(data)
    from diff_diff import SunAbraham

    def ours() -> object:
        return fe.estimate(data, outcome="y", unit="unit", time="year", cohort="cohort",
                           method=method, control="never" if method == "sa" else "notyet")  # fmt: skip

    def theirs() -> object:
        if method == "imputation":
            return bench_family_regression.peer_imputation(data)
        return SunAbraham().fit(data, outcome="y", unit="unit", time="year", first_treat="cohort")

    return ours, theirs


def timed(fn: Call) -> tuple[float, float]:
    gc.collect()
    # OpenBLAS's worker threads busy-wait for a while after each threaded product; without a
    # pause they would still spin (and be counted) during the next library's call
    time.sleep(PAUSE)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(label: str, ours: Call, theirs: Call, reps: int, peer_reps: int) -> dict:
    ours()  # warm-up
    if peer_reps:
        theirs()
    a, b = [], []
    for rep in range(max(reps, peer_reps)):
        if rep < reps:
            a.append(timed(ours))
        if rep < peer_reps:
            b.append(timed(theirs))
    nan = float("nan")
    row = {
        "workload": label,
        "finsam_s": statistics.median(t for t, _ in a),
        "peer_s": statistics.median(t for t, _ in b) if b else nan,
        "finsam_cpu_s": statistics.median(c for _, c in a),
        "peer_cpu_s": statistics.median(c for _, c in b) if b else nan,
    }
    row["ratio"] = row["finsam_s"] / row["peer_s"]
    row["ratio_cpu"] = row["finsam_cpu_s"] / row["peer_cpu_s"]
    row["finsam_peak_mb"] = peak_traced_mib(ours)
    row["peer_peak_mb"] = peak_traced_mib(theirs) if peer_reps else float("nan")
    print(
        f"{label:<34} finsam_eval {row['finsam_s']:7.3f}s  peer {row['peer_s']:7.3f}s  "
        f"ratio {row['ratio']:5.3f} (CPU {row['ratio_cpu']:5.3f})  peak MB "
        f"{row['finsam_peak_mb']:7.1f} / {row['peer_peak_mb']:7.1f}  load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["cs", "twfe", "imputation", "sa"])
    parser.add_argument("--reps", type=int, default=7, help="repeats at 290 units")
    parser.add_argument("--large-reps", type=int, default=3, help="finsam_eval at 100 000")
    parser.add_argument("--peer-large-reps", type=int, default=1, help="peer at 100 000")
    parser.add_argument("--sa-peer-units", type=int, default=10_000)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(
        f"load average before: {os.getloadavg()} on {os.cpu_count()} cores; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
        flush=True,
    )
    rows = []
    if "cs" in args.only:
        small = kommun_series()
        for n_boot in (0, 999):
            rows.append(
                compare(f"cs 290x21 draws={n_boot}", *cs_pair(small, n_boot), args.reps, args.reps)
            )
        if not args.skip_large:
            large = bench_cs.make_panel(100_000, 17_000, seed=1).drop(columns="x")
            for n_boot in (0, 999):
                rows.append(
                    compare(
                        f"cs 100000x21 draws={n_boot}",
                        *cs_pair(large, n_boot),
                        args.large_reps,
                        args.peer_large_reps,
                    )  # fmt: skip
                )
    if not args.skip_large:
        if "twfe" in args.only:
            data = bench_twfe.simulate(100_000)
            rows.append(compare("twfe 100000x21", *regression_pair("twfe", data),
                                args.large_reps, args.peer_large_reps))  # fmt: skip
        if "imputation" in args.only:
            data = bench_family_regression.make_panel(100_000)
            rows.append(compare("imputation 100000x21", *regression_pair("imputation", data),
                                args.large_reps, args.peer_large_reps))  # fmt: skip
        if "sa" in args.only:
            # diff-diff's SunAbraham passed 18 GB of RSS at 100 000 units (stopped): the peer runs
            # at --sa-peer-units, finsam_eval at both sizes
            n_peer = args.sa_peer_units
            data = bench_family_regression.make_panel(n_peer)
            rows.append(compare(f"sa {n_peer}x21", *regression_pair("sa", data),
                                args.large_reps, args.peer_large_reps))  # fmt: skip
            data = bench_family_regression.make_panel(100_000)
            rows.append(compare("sa 100000x21 (no peer)", regression_pair("sa", data)[0],
                                lambda: None, args.large_reps, 0))  # fmt: skip
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {peak:.0f} MiB; load average after: {os.getloadavg()}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
