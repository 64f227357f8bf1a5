"""Size of the wild bootstraps with 21 län clusters, under the null (no effect).

Redraws the synthetic alla × sjukpenning series with every effect set to 0
(``finsam_eval.synthetic.montecarlo``) and records, for each method, how often each test rejects
``theta = 0`` at 5 % and 10 % for the overall effect and for event time 0 (window (−3, 3)):
the restricted (WCR) and unrestricted (WCU) wild bootstrap (for ``cs``, ``imputation`` and
``two_stage`` the re-estimating one, "-refit"), the score bootstrap of the influence functions
(not for ``twfe``), and the normal test on the analytic SE. Every bootstrap of one redraw uses
the same weights (same seed). Results are in docs/inference.md.

Run: ``.venv/bin/python benchmarks/size_wild_bootstrap.py [--reps 400] [--seed 2029]
[--weights webb] [--boot 399] [--methods cs imputation two_stage twfe]``; the redraws are split over two processes.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from _common import arguments
from scipy import stats

import finsam_eval as fe
from finsam_eval.inference.wild_results import wild_bootstrap
from finsam_eval.synthetic import montecarlo as mc

WINDOW = (-3, 3)


def _one(args: tuple[int, np.ndarray, list[str], str, int]) -> list[dict]:
    r, draw, methods, weights, boot = args
    warnings.simplefilter("ignore")
    world = mc.series_world("alla", "sjukpenning")
    data = mc.to_panel(world, draw)
    rows = []
    for method in methods:
        runs = [{"impose_null": True}, {"impose_null": False}]
        if method != "twfe":
            runs.append({"refit": False})
        for options in runs:
            result = fe.estimate(data, method=method, window=WINDOW, cluster="cluster_lan")
            table = wild_bootstrap(result, reps=boot, multiplier=weights, seed=r, event_times=[0],
                                   **options)  # fmt: skip
            for _, row in table.iterrows():
                term = "overall" if row["term"] == "overall" else "h = 0"
                rows.append({"rep": r, "method": method, "test": term,
                             "bootstrap": row["bootstrap"], "p": row["p_value"]})  # fmt: skip
                if options.get("impose_null") is False:  # the analytic SE's normal test
                    p_normal = 2 * stats.norm.sf(abs(row["t_stat"]))
                    rows.append({"rep": r, "method": method, "test": term, "bootstrap": "normal",
                                 "p": p_normal})  # fmt: skip
    return rows


def main() -> None:
    args = arguments(__doc__, reps=400, seed=2029, weights="webb", boot=399, methods=["cs"])
    world = mc.series_world("alla", "sjukpenning")
    shares = mc.draw_shares(
        world, mc.effect_matrix(world, 0.0), mc.replication_seeds(args.seed, args.reps)
    )
    jobs = [(r, shares[r], args.methods, args.weights, args.boot) for r in range(args.reps)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        rows = [row for part in pool.map(_one, jobs, chunksize=8) for row in part]
    table = pd.DataFrame(rows)
    summary = (
        table.assign(at_5=table["p"] < 0.05, at_10=table["p"] < 0.10)
        .groupby(["method", "test", "bootstrap"])[["at_5", "at_10"]]
        .mean()
        .round(3)
    )
    print(
        f"{args.reps} null redraws, replication_seeds({args.seed}, {args.reps}), "
        f"{args.weights} weights, B = {args.boot}, window {WINDOW}, 21 län; "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(summary.to_string())


if __name__ == "__main__":
    main()
