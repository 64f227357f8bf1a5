"""BLAS threads for many small matrix products.

OpenBLAS splits a product over all cores once it exceeds a few hundred thousand multiply-adds.
For kommun-sized problems (290 units × 21 years: regressions with a few hundred columns,
bootstrap blocks of 128 draws × 290 clusters) the threads spend longer waking and waiting than
computing, and when the cores are also busy with other work they wait far longer: the default
run's estimation phase took 20.9 s with OpenBLAS's default 2 threads and 7.3 s with one, at a
load average of 4.7 on 2 cores, with byte-identical output files. :func:`blas_threads` caps the
BLAS threads inside a block; the pipeline runs with one, set once for the whole run.

The estimators themselves do not set it per call: at 100 000 units one thread was faster
(Callaway–Sant'Anna 1.02 s → 0.52 s, imputation 4.86 s → 1.85 s at load 5), but switching the
thread count around every call made small calls several times slower in a process that also
runs other BLAS work (CS with 999 draws on 290 units: 17 ms → 84 ms of CPU next to diff-diff).
Users with large panels on a busy machine can set ``OPENBLAS_NUM_THREADS=1`` or use
:func:`blas_threads` around their own loop.

``threadpoolctl`` finds the BLAS libraries loaded in the process; its controller is built once,
on first use (about 10 ms; each limit then costs about 10 µs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

__all__ = ["blas_threads"]


@cache
def _controller() -> Any:
    import numpy  # noqa: F401  (load numpy's BLAS before the controller looks for it)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Cap the BLAS threads at ``limit`` inside the block (None: leave them as they are).

    Parameters
    ----------
    limit
        Threads per BLAS call, e.g. 1 for a loop of small products.
    """
    if limit is None:
        yield
        return
    with _controller().limit(limits=int(limit), user_api="blas"):
        yield
