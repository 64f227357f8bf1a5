"""Progress reporting that suits both a terminal and a log file.

On a terminal (``stream.isatty()``) loops get a tqdm bar. Anywhere else (CI logs, ``2> run.log``,
a notebook's captured stderr) they get plain lines without ``\\r``: one when the loop starts, about
one per tenth of the work, and one with the elapsed time at the end, so a log stays readable and
still shows which phase is running. Steps that are not loops (writing the report) report with
:func:`step`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

__all__ = ["progress", "step"]

T = TypeVar("T")


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or file-like objects without isatty
        return False


def _plain(iterable: Iterable[T], total: int, desc: str, stream: IO[str]) -> Iterator[T]:
    start = time.perf_counter()
    # about ten lines per loop, whatever its length
    every = max(1, -(-total // 10))
    print(f"{desc}: 0/{total}", file=stream, flush=True)
    done = 0
    for item in iterable:
        yield item
        done += 1
        if done % every == 0 and done < total:
            elapsed = time.perf_counter() - start
            print(f"{desc}: {done}/{total} ({elapsed:.1f} s)", file=stream, flush=True)
    elapsed = time.perf_counter() - start
    print(f"{desc}: {done}/{total} done in {elapsed:.1f} s", file=stream, flush=True)


def progress(
    iterable: Iterable[T],
    total: int,
    desc: str,
    enabled: bool = True,
    *,
    stream: IO[str] | None = None,
) -> Iterable[T]:
    """Wrap a loop with progress reporting.

    Parameters
    ----------
    iterable
        The loop's items.
    total
        Number of items.
    desc
        Name of the phase, e.g. "estimating".
    enabled
        False returns ``iterable`` unchanged.
    stream
        Where to report, default ``sys.stderr``: a tqdm bar on a terminal, plain lines otherwise.

    Returns
    -------
    iterable
        The same items, in order.
    """
    if not enabled:
        return iterable
    stream = sys.stderr if stream is None else stream
    if _is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, file=stream)
    return _plain(iterable, total, desc, stream)


def step(message: str, enabled: bool = True, *, stream: IO[str] | None = None) -> None:
    """Report one step of a phase as a plain line (e.g. "report: figures")."""
    if enabled:
        print(message, file=sys.stderr if stream is None else stream, flush=True)
