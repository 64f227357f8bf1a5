"""What the benchmark scripts share: their command line, wall times of alternating runs, peak
traced memory, the load average and the table they print.

The benchmarks folder is not a package: a script run as ``python benchmarks/bench_x.py`` has its
own folder first on ``sys.path``, so ``from _common import ...`` finds this module.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Sequence

import pandas as pd

Call = Callable[[], object]


def arguments(doc: str, **options: object) -> argparse.Namespace:
    """Parse a benchmark's command line, described by the first line of its docstring ``doc``.

    Each keyword is an option ``--name`` (underscores become dashes) given as its default or as
    ``(default, help)``. The default sets the kind: ``False`` a flag, a list one or more values
    of its first item's type, anything else one value of the default's type.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, option in options.items():
        default, text = option if isinstance(option, tuple) else (option, None)
        flag = "--" + name.replace("_", "-")
        if default is False:
            parser.add_argument(flag, action="store_true", help=text)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs="+", type=type(default[0]), default=default, help=text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=text)
    return parser.parse_args()


def print_load(when: str, detail: str = "") -> None:
    """Print the load average (``when``: "before" or "after"): on a shared machine absolute
    times are noisy, and this says how busy it was."""
    print(f"load average {when}: {os.getloadavg()} on {os.cpu_count()} cores{detail}", flush=True)


def seconds(fn: Call) -> float:
    """Wall time of one call, after a garbage collection (no tracing: tracemalloc slows
    allocation-heavy code)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(calls: Sequence[Call | None], reps: int) -> list[list[float]]:
    """Wall times of ``reps`` rounds in which every call runs once, in turn, so drift in the
    machine's load hits all alike; a ``None`` call is not run (its list stays empty)."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(reps):
        for fn, store in zip(calls, times, strict=True):
            if fn is not None:
                store.append(seconds(fn))
    return times


def peak_traced_mib(fn: Callable[..., object], *args: object) -> float:
    """Peak traced memory (MiB; tracemalloc: Python and numpy allocations) of one separate call
    ``fn(*args)``."""
    gc.collect()
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def print_row(rows: list[dict], digits: str) -> None:
    """Print the last of ``rows`` as a table line as soon as it is measured (the header with
    the first); ``digits`` is a format spec for floats, e.g. ".3f"."""
    line = pd.DataFrame(rows[-1:]).to_string(
        index=False, header=len(rows) == 1, float_format=lambda v: format(v, digits)
    )
    print(line, flush=True)


def print_table(rows: list[dict], digits: str) -> None:
    """Print all ``rows`` as one table after a blank line."""
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: format(v, digits)))
