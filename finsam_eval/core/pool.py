"""Running chunks of independent work on one or more processes, results in task order.

Shared by the Monte Carlo simulations and randomization inference. Every task carries its own
seeds, so results never depend on the number of processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tqdm.auto import tqdm

__all__ = ["PARALLEL_MIN_FITS", "chunks", "run_chunks", "workers"]

#: fits per process before the pool is worth its start-up (about 0.5 s)
PARALLEL_MIN_FITS = 100


def workers(n_jobs: int | None, n_fits: int) -> int:
    """Processes to use: ``n_jobs`` when given, else two when there are enough fits to pay."""
    if n_jobs is not None:
        return max(1, int(n_jobs))
    return min(2, os.cpu_count() or 1) if n_fits >= PARALLEL_MIN_FITS else 1


def run_chunks(
    func: Callable[..., Any],
    tasks: Sequence[tuple],
    sizes: Sequence[int],
    n_jobs: int,
    progress: bool,
    desc: str,
) -> list[Any]:
    """``[func(*task) for task in tasks]`` on ``n_jobs`` processes, results in task order.

    The progress bar advances by ``sizes[i]`` when task ``i`` finishes. Results do not depend
    on ``n_jobs``: every task carries its own seeds.
    """
    bar = tqdm(total=int(sum(sizes)), desc=desc, disable=not progress, leave=False)
    try:
        if n_jobs <= 1 or len(tasks) <= 1:
            out = []
            for task, size in zip(tasks, sizes, strict=True):
                out.append(func(*task))
                bar.update(size)
            return out
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            futures = [pool.submit(func, *task) for task in tasks]
            for future, size in zip(futures, sizes, strict=True):
                future.add_done_callback(lambda _f, s=size: bar.update(s))
            return [f.result() for f in futures]
    finally:
        bar.close()


def chunks(n: int, size: int) -> list[range]:
    """Consecutive ranges of at most ``size`` covering ``range(n)``."""
    return [range(i, min(i + size, n)) for i in range(0, n, size)]
