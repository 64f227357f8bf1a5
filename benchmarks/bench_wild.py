"""Benchmark: wild cluster bootstrap with 21 län, finsam_eval against wildboottest, one process.

Both packages test the event-time-0 coefficient of the TWFE event study (window (−3, 3), binned
end points) on the bundled alla × sjukpenning series (290 kommuner × 21 years, clustered by
län) with the restricted wild cluster bootstrap (WCR, Rademacher weights, B = 9 999 random
draws, no enumeration: 2^21 > B). finsam_eval absorbs unit and year effects
(``wild_cluster_bootstrap`` on ``twfe_design``); wildboottest takes the design with explicit
unit and year dummies, as it has no absorption. The table shows median wall time, the ratio,
peak resident-memory increase of one call and both p-values (independent draws: they differ by
Monte Carlo error, sd ``sqrt(2 p (1 - p) / B)``).

It then times ``estimate`` + ``wild_bootstrap`` end to end for each method (fit, linear maps or
design, every event time and the overall effect, B = 9 999), for which no peer exists.

Usage::

    .venv/bin/python benchmarks/bench_wild.py [--repeats 5]
"""

from __future__ import annotations

import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import arguments, print_load
from bench_twfe import timed

import finsam_eval as fe
from finsam_eval.inference.wild_cluster import wild_cluster_bootstrap
from finsam_eval.inference.wild_results import twfe_design, wild_bootstrap

# the peer runs as in the parity tests (tests/helpers.py), with its default parallel draws
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import wildboottest  # noqa: E402

warnings.filterwarnings("ignore")
WINDOW = (-3, 3)
B = 9999


def _series() -> pd.DataFrame:
    data = fe.load_synthetic()
    series = data[(data["population"] == "alla") & (data["outcome"] == "sjukpenning")]
    return series.reset_index(drop=True)


def _dummy_design(frame: pd.DataFrame, event_times: list[int]) -> tuple[np.ndarray, np.ndarray]:
    cohort = frame["cohort"].to_numpy()
    year = frame["year"].to_numpy()
    relative = np.clip(year - cohort, *WINDOW)
    unit = pd.factorize(frame["kommun_kod"], sort=True)[0]
    X = np.column_stack(
        [((cohort > 0) & (relative == e)).astype(float) for e in event_times]
        + [(year == t).astype(float) for t in np.unique(year)[1:]]
        + [(unit == u).astype(float) for u in range(unit.max() + 1)]
    )
    return X, pd.factorize(frame["cluster_lan"], sort=True)[0]


def main() -> None:
    args = arguments(__doc__, repeats=5)
    print_load("before")
    series = _series()
    result = fe.estimate(series, method="twfe", window=WINDOW, cluster="cluster_lan")
    design = twfe_design(result)
    event_times = design.event_times
    R = np.zeros(design.X.shape[1])
    R[event_times.index(0)] = 1.0
    X_dummies, cluster = _dummy_design(series, event_times)
    R_dummies = np.zeros(X_dummies.shape[1])
    R_dummies[event_times.index(0)] = 1.0
    y = series["share"].to_numpy()

    def ours(_: object) -> float:
        out = wild_cluster_bootstrap(
            design.y, design.X, design.cluster, fe=design.fe, R=R, B=B, seed=1
        )
        return out.p_value

    def peer(_: object) -> float:
        wb = wildboottest(y, X_dummies, cluster, R_dummies, B, True, seed=2, parallel=True)
        return float(wb.pvalue)

    ours(None)
    peer(None)  # imports and first calls outside the timings
    ours_runs = [timed(ours, None) for _ in range(args.repeats)]
    peer_runs = [timed(peer, None) for _ in range(args.repeats)]
    ours_s = statistics.median(r[0] for r in ours_runs)
    peer_s = statistics.median(r[0] for r in peer_runs)
    p_ours, p_peer = ours_runs[0][2], peer_runs[0][2]
    print(
        pd.Series(
            {
                "panel": f"290 x 21 ({len(series):,} rows), 21 län, WCR, B = {B}",
                "finsam_s": ours_s,
                "finsam_rss_MiB": max(r[1] for r in ours_runs),
                "wildboottest_s": peer_s,
                "wildboottest_rss_MiB": max(r[1] for r in peer_runs),
                "speedup": peer_s / ours_s,
                "p_finsam": p_ours,
                "p_wildboottest": p_peer,
                "mc_sd_of_difference": float(np.sqrt(2 * p_peer * (1 - p_peer) / B)),
            }
        ).to_string(),
        flush=True,
    )
    print()
    rows = []
    for method, options in (
        ("twfe", {"window": WINDOW}),
        ("cs", {}),
        ("cs", {"window": WINDOW}),
        ("imputation", {"window": WINDOW}),
        ("two_stage", {"window": WINDOW}),
    ):
        for ci in (False, True):
            runs = [
                timed(
                    lambda data, m=method, o=options, c=ci: wild_bootstrap(
                        fe.estimate(data, method=m, cluster="cluster_lan", **o),
                        reps=B,
                        seed=1,
                        ci=c,
                    ),
                    series,
                )
                for _ in range(max(1, args.repeats // 2))
            ]
            rows.append(
                {
                    "method": method,
                    "window": options.get("window", "all"),
                    "ci": ci,
                    "rows tested": len(runs[0][2]),
                    "bootstrap": "/".join(sorted(set(runs[0][2]["bootstrap"]))),
                    "seconds": statistics.median(r[0] for r in runs),
                    "rss_MiB": max(r[1] for r in runs),
                }
            )
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print(pd.DataFrame(rows).to_string(index=False))
    print_load("after")


if __name__ == "__main__":
    main()
