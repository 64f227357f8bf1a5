"""Report work (figures, HonestDiD breakdown values) in forked worker processes.

The default run draws about 30 figures and bisects 25 breakdown values: together more CPU time
than the estimation. :class:`Background` runs such independent tasks in worker processes while
the caller goes on (estimating, writing tables), so on a machine with a free core the report
costs little extra wall time. Each task is a module-level function of picklable arguments that
computes the same thing wherever it runs, so results and written files do not depend on the
number of workers.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Background", "Pending", "available_cores", "default_workers"]

#: The workers' garbage-collection thresholds (Python's default: 700, 10, 10). A figure
#: allocates some 30 000 container objects that die together when it is saved; at the default
#: the collector runs ~300 times over 32 figures and twice over everything (0.3-0.4 s of CPU).
#: With a young generation of 20 000 it runs ~10 times (~0.1 s), and a worker holds at most a
#: figure or two of garbage at a time.
_WORKER_GC_THRESHOLDS = (20_000, 20, 100)


def _start_worker(preload: tuple[str, ...] = ()) -> None:
    """Set up a forked worker: import ``preload`` (what its tasks will need), then its garbage
    collector: the objects inherited from the parent and the imported modules are frozen (never
    scanned: they live as long as the worker, and scanning them would also copy the parent's
    memory pages into the worker), and collections run less often."""
    import importlib

    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            # an optional package (openpyxl): the task that needs it says so itself
            continue
    gc.freeze()
    gc.set_threshold(*_WORKER_GC_THRESHOLDS)


def default_workers(n_tasks: int, min_tasks: int = 6) -> int:
    """Worker processes for ``n_tasks`` tasks: the available cores, at most 4, from
    ``min_tasks`` tasks on, else 1 (forking costs ~0.1 s; below a handful of figures one
    process is as fast)."""
    if n_tasks < min_tasks:
        return 1
    return max(1, min(available_cores(), 4))


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Pending:
    """The results of one :meth:`Background.map`, in task order, once :meth:`get` returns."""

    def __init__(self, async_result: Any = None, done: list[Any] | None = None) -> None:
        self._async = async_result
        self._done = done

    def get(self) -> list[Any]:
        """Wait for the tasks; a task's exception is raised here."""
        if self._done is None:
            self._done = list(self._async.get())
        return self._done


class Background:
    """Independent tasks in ``workers`` forked processes, started when submitted.

    With one worker (unless ``inline=False``), or where fork is not available, :meth:`map` runs
    the tasks at once in this process. The pool is forked by :meth:`start` or at the first
    :meth:`map` (the workers see this process's memory as it was then; later tasks get their
    arguments pickled); each worker first imports the ``preload`` modules. As a context manager
    it stops the workers on leaving, so an exception in the caller does not leave them drawing.
    """

    def __init__(
        self, workers: int, preload: Iterable[str] = (), *, inline: bool | None = None
    ) -> None:
        import multiprocessing

        self.workers = max(1, int(workers))
        # inline (tasks run in this process) by default with one worker; inline=False forks
        # one worker beside the caller, e.g. on two cores where the caller keeps the other
        inline = self.workers == 1 if inline is None else inline
        self._fork = not inline and "fork" in multiprocessing.get_all_start_methods()
        self._pool: Any = None
        self._preload = tuple(preload)

    def start(self) -> Background:
        """Fork the workers now (else at the first :meth:`map`); each imports the ``preload``
        modules first, so that costs a free core while the caller goes on."""
        if self._fork and self._pool is None:
            import multiprocessing

            self._pool = multiprocessing.get_context("fork").Pool(
                self.workers, initializer=_start_worker, initargs=(self._preload,)
            )
        return self

    def map(self, func: Callable[..., Any], tasks: Iterable[tuple]) -> Pending:
        """Start ``func(*task)`` for every task; the results come from the returned handle."""
        tasks = list(tasks)
        if not self._fork or not tasks:
            return Pending(done=[func(*task) for task in tasks])
        self.start()
        # one task at a time, so a worker that finishes early takes the next one
        return Pending(self._pool.starmap_async(func, tasks, chunksize=1))

    def close(self) -> None:
        """Stop the workers, finished or not."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
