"""Timing of randomization inference and Monte Carlo on the 290 × 21 synthetic panel.

Targets (issue 5): 999 permutations and 1 000 Monte Carlo replications of Callaway–Sant'Anna
each under 60 s on 2 cores. CS with its defaults runs batched (all replications or permutations
as array products, ``finsam_eval.estimators.cs_batch.CSBatch``); the per-fit route used by every
other estimator is timed too, with TWFE, SA and imputation.

Run: ``.venv/bin/python benchmarks/bench_inference.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
import warnings

import finsam_eval as fe
from finsam_eval.inference.power import simulate
from finsam_eval.synthetic.montecarlo import draw_shares, replication_seeds, series_world, to_panel


def _time(label: str, func) -> float:
    start = time.perf_counter()
    out = func()
    elapsed = time.perf_counter() - start
    print(f"{label:<62s} {elapsed:8.2f} s")
    return out


def main(quick: bool = False) -> None:
    warnings.simplefilter("ignore")
    world = series_world("alla", "sjukpenning")
    data = to_panel(world, draw_shares(world, world.effect, replication_seeds(1, 1))[0])
    fe.estimate(data, method="cs")  # imports and caches outside the timings
    reps, perms = (200, 199) if quick else (1000, 999)

    _time(
        f"RI, CS batched, {perms} permutations",
        lambda: fe.randomization_inference(data, "cs", perms, seed=1, progress=False),
    )
    _time(
        f"RI, CS batched, {perms} permutations within län",
        lambda: fe.randomization_inference(data, "cs", perms, within="lan", seed=1, progress=False),
    )
    _time(
        f"Monte Carlo, CS batched, {reps} replications",
        lambda: simulate(["cs"], reps=reps, seed=1, progress=False),
    )
    generic = 200 if quick else 999
    _time(
        f"RI, TWFE re-fitted, {generic} permutations, 2 processes",
        lambda: fe.randomization_inference(
            data, "twfe", generic, seed=1, progress=False, n_jobs=2, window=(-5, 6)
        ),
    )
    for method in ("twfe", "sa", "imputation"):
        _time(
            f"Monte Carlo, {method} re-fitted, {reps} replications, 2 processes",
            lambda m=method: simulate([m], reps=reps, seed=1, progress=False, n_jobs=2),
        )
    _time(
        "Monte Carlo, CS re-fitted per replication, 50 replications, 1 process",
        # a cluster column (same clusters as units) takes CS off the batched route
        lambda: simulate(
            ["cs"],
            reps=50,
            seed=1,
            progress=False,
            n_jobs=1,
            method_options={"cs": {"cluster": "cluster_kommun"}},
        ),
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
