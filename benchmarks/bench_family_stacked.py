"""Benchmark stacked DiD, dCDH and the Bacon decomposition against diff-diff.

Panels of 290 and 100 000 kommun-like units × 21 years (1998–2018, cohorts 2004–2015, about one
in six never treated, 10% of members leaving 2–6 years after joining in the dCDH panel) are
generated here. Ours and the peer run alternately ``--repeats`` times; the table reports median
wall times, their ratio (peer / ours, > 1: we are faster) and peak traced memory (tracemalloc,
numpy buffers included) of one extra run each.

Run: ``.venv/bin/python benchmarks/bench_family_stacked.py [--repeats 5] [--sizes 290 100000]``.
Peers whose cost grows quadratically in the number of units (diff-diff's dCDH loops over units
and, inside, over the control pool) are timed at ``--peer-max-dcdh`` units at most and marked
"not run" above it.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from _common import alternate, arguments, peak_traced_mib, print_row, print_table

from finsam_eval.estimators import dcdh, stacked
from finsam_eval.estimators.bacon import bacon_decomposition
from finsam_eval.estimators.spec import EstimationSpec

WINDOW = (-5, 5)


def make_panel(n_units: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(1998, 2019)
    cohorts = np.r_[0, np.arange(2004, 2016)]
    probs = np.r_[0.17, np.full(12, 0.83 / 12)]
    cohort = rng.choice(cohorts, n_units, p=probs)
    leaves = np.where(
        (cohort > 0) & (rng.random(n_units) < 0.1), cohort + rng.integers(2, 7, n_units), 9999
    )
    n_t = len(years)
    g = np.repeat(cohort, n_t)
    t = np.tile(years, n_units)
    absorbing = (g > 0) & (t >= g)
    member = absorbing & (t < np.repeat(leaves, n_t))
    y = (
        np.repeat(rng.normal(size=n_units), n_t)
        + 0.05 * (t - 1998)
        + member * (0.5 + 0.1 * (t - g))
        + rng.normal(size=n_units * n_t)
    )
    return pd.DataFrame(
        {
            "unit": np.repeat(np.arange(n_units), n_t),
            "year": t,
            "cohort": g,
            "D": absorbing.astype(int),
            "member": member.astype(int),
            "y": y,
        }
    )


def cases(frame: pd.DataFrame) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    import diff_diff

    cols = ("y", "unit", "year", "cohort")
    return {
        "stacked": (
            lambda: stacked.fit(
                frame, EstimationSpec.build("stacked", frame, *cols, control="never", window=WINDOW)
            ),
            lambda: diff_diff.StackedDiD(
                kappa_pre=-WINDOW[0], kappa_post=WINDOW[1], control_group="never_treated"
            ).fit(frame, *cols),
        ),
        "dcdh": (
            lambda: dcdh.fit(
                frame,
                EstimationSpec.build(
                    "dcdh", frame, *cols, control="notyet", treatment="member", effects=6, placebo=5
                ),  # fmt: skip
            ),
            lambda: diff_diff.ChaisemartinDHaultfoeuille(
                twfe_diagnostic=False, drop_larger_lower=False
            ).fit(frame, "y", "unit", "year", "member", L_max=6),
        ),
        "bacon": (
            lambda: bacon_decomposition(frame, *cols),
            lambda: diff_diff.BaconDecomposition().fit(frame, *cols),
        ),
    }


def main() -> None:
    args = arguments(__doc__, repeats=5, sizes=[290, 100_000], peer_max_dcdh=5_000)
    warnings.simplefilter("ignore")
    rows = []
    for size in args.sizes:
        frame = make_panel(size)
        for name, (ours, peer) in cases(frame).items():
            run_peer = not (name == "dcdh" and size > args.peer_max_dcdh)
            repeats = args.repeats if size <= 10_000 else max(3, args.repeats // 2)
            ours_t, peer_t = alternate([ours, peer if run_peer else None], repeats)
            row = {
                "method": name,
                "units": size,
                "rows": len(frame),
                "repeats": repeats,
                "ours_s": statistics.median(ours_t),
                "ours_MiB": peak_traced_mib(ours),
            }
            if run_peer:
                row.update(peer_s=statistics.median(peer_t), peer_MiB=peak_traced_mib(peer))
                row["ratio"] = row["peer_s"] / row["ours_s"]
            else:
                row.update(peer_s=np.nan, peer_MiB=np.nan, ratio=np.nan)
            rows.append(row)
            print_row(rows, ".4g")
    print_table(rows, ".4g")


if __name__ == "__main__":
    main()
