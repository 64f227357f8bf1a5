"""One BLAS thread for the estimators' matrix products.

OpenBLAS splits a product over all cores once it exceeds a few hundred thousand multiply-adds.
For kommun-sized problems (290 units × 21 years: regressions with a few hundred columns,
bootstrap blocks of 128 draws × 290 clusters) the threads spend longer waking and waiting than
computing, and when the cores are also busy with other work they wait far longer: the default
run's estimation phase took 20.9 s with OpenBLAS's default 2 threads and 7.3 s with one, at a
load average of 4.7 on 2 cores, with byte-identical output files. At 100 000 units the products
are thin (n × a few dozen columns) and bound by memory, not arithmetic: Callaway–Sant'Anna took
1.02 s with 2 threads and 0.52 s with one, imputation 4.86 s and 1.85 s (medians of 3
alternating calls in one process, load 5). :func:`blas_threads` caps the BLAS threads inside a
block; the pipeline runs with one, and the estimators' ``fit`` run on one
(:func:`one_blas_thread`), which also makes their last bits independent of the machine's
number of cores (OpenBLAS may split a product's inner dimension over threads).

``threadpoolctl`` finds the BLAS libraries loaded in the process; its controller is built once,
on first use (about 10 ms; each limit then costs about 10 µs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["blas_threads", "one_blas_thread"]


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


def one_blas_thread(func: F) -> F:
    """Decorator: run ``func`` with one BLAS thread (see the module docstring for why)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with blas_threads(1):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
