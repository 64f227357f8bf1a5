"""Wall time of ``honest_did`` on the default CS event study (issue 14).

    .venv/bin/python benchmarks/bench_honest.py

Bundled synthetic panel, population alla, outcome sjukpenning, ``method="cs"``,
``control="notyet"``, all event times; relative magnitudes (C-LF) for Mbar in 0, 0.5, 1, 2, then
smoothness (C-LF and FLCI) and the breakdown value. Prints the load average before and after.
"""

from __future__ import annotations

import time
import warnings

from _common import print_load

import finsam_eval as fe
from finsam_eval.inference.honest import breakdown_value, honest_did


def main() -> None:
    print_load("before")
    panel = fe.load_synthetic()
    series = panel[(panel["population"] == "alla") & (panel["outcome"] == "sjukpenning")]
    for base in ("varying", "universal"):
        res = fe.estimate(series, method="cs", control="notyet", base_period=base)
        times = res.event_study["event_time"]
        print(f"\nbase_period={base}: event times {times.min()}..{times.max()}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # varying base; grid-end notes
            for m in (0.0, 0.5, 1.0, 2.0):
                start = time.perf_counter()
                out = honest_did(res, restriction="relative_magnitude", m=[m])
                took = time.perf_counter() - start
                lo, hi = out.iloc[1][["ci_lower", "ci_upper"]]
                print(f"  RM C-LF Mbar={m:<4} {took:6.3f} s  [{lo:.4f}, {hi:.4f}]")
            for method in ("C-LF", "FLCI"):
                start = time.perf_counter()
                honest_did(res, restriction="smoothness", m=[0.0, 0.01, 0.02], method=method)
                took = time.perf_counter() - start
                print(f"  SD {method:<5} 3 values of M {took:6.3f} s")
            start = time.perf_counter()
            value = breakdown_value(res)
            print(f"  breakdown Mbar {value:.3f} in {time.perf_counter() - start:.3f} s")
    print()
    print_load("after")


if __name__ == "__main__":
    main()
