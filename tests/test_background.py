"""report.background: forked workers that import what their tasks need before the first task."""

import multiprocessing
import sys

import pytest

from finsam_eval.report.background import Background


def _loaded(name: str) -> tuple[bool, int]:
    import os

    return name in sys.modules, os.getpid()


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform"
)
def test_started_workers_have_preloaded_modules_and_survive_a_missing_one():
    # a module this process has not imported, so only the preload can put it in the worker
    name = "mailbox"
    assert name not in sys.modules or pytest.skip(f"{name} already imported by another test")
    with Background(2, preload=(name, "no_such_module_for_finsam_eval")).start() as background:
        loaded = background.map(_loaded, [(name,)] * 4).get()
    assert all(flag for flag, _ in loaded)
    assert all(pid != __import__("os").getpid() for _, pid in loaded)
    assert name not in sys.modules  # the caller's process did not pay for it


def test_one_worker_runs_tasks_here_and_start_is_a_no_op():
    background = Background(1, preload=("xml.sax.saxutils",)).start()
    done = background.map(_loaded, [("xml.sax.saxutils",)]).get()
    assert done[0][1] == __import__("os").getpid()
    background.close()
