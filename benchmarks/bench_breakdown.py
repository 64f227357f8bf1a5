"""CPU time of the default run's 25 HonestDiD breakdown values (issue 16).

    .venv/bin/python benchmarks/bench_breakdown.py [--repeats 3] [--baseline DIR]

One ``finsam-eval run`` (default configuration, one process) records the inputs of every
``report.summary.series_breakdown`` call (the headline method's event study and vcov per series);
then new processes time the 25 calls serially (CPU seconds, best of ``--repeats``) with this
checkout and, given ``--baseline``, alternately with another checkout (e.g. ``git archive REV |
tar -x -C DIR``), and check that both give the values the run wrote. Prints the load average.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import arguments, print_load

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import pickle, sys, time
sys.path.insert(0, sys.argv[1])
from finsam_eval.report.summary import series_breakdown
tasks, expected = pickle.load(open(sys.argv[2], "rb"))
series_breakdown(*tasks[0])  # imports and first-call work outside the timing
best = float("inf")
for _ in range(int(sys.argv[3])):
    start = time.process_time()
    got = [series_breakdown(*task) for task in tasks]
    best = min(best, time.process_time() - start)
assert got == expected, "breakdown values differ from the run's"
print(best)
"""


def record(path: Path) -> list:
    """Run the default configuration in this process and pickle the breakdown tasks."""
    sys.path.insert(0, str(ROOT))
    import finsam_eval.cli
    import finsam_eval.report.background as background
    import finsam_eval.report.summary as summary

    background.default_workers = lambda n, min_tasks=6: 1  # every call in this process
    tasks, values = [], []
    inner = summary.series_breakdown

    def recording(event_study, vcov, event_times, **options):
        value = inner(event_study, vcov, event_times, **options)
        tasks.append((event_study, vcov, list(event_times)))
        values.append(value)
        return value

    summary.series_breakdown = recording
    with tempfile.TemporaryDirectory() as out:
        finsam_eval.cli.main(["--quiet", "run", "--out", str(Path(out) / "run")])
    path.write_bytes(pickle.dumps((tasks, values)))
    return values


def main() -> None:
    args = arguments(__doc__, repeats=3, rounds=3, baseline="")
    print_load("before")
    roots = {"this": ROOT} | ({"baseline": Path(args.baseline)} if args.baseline else {})
    with tempfile.TemporaryDirectory() as tmp:
        tasks = Path(tmp) / "tasks.pkl"
        values = record(tasks)
        print(f"{len(values)} breakdown values: {[v for v, _ in values]}")
        times: dict[str, list[float]] = {name: [] for name in roots}
        for _ in range(args.rounds):
            for name, root in roots.items():
                env = {**os.environ, "PYTHONPATH": str(root)}
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(root), str(tasks), str(args.repeats)],
                    capture_output=True, text=True, check=True, env=env,
                )  # fmt: skip
                times[name].append(float(out.stdout.split()[-1]))
    for name, cpu in times.items():
        print(f"{name:<9} CPU s for the 25: {sorted(round(t, 3) for t in cpu)} ({roots[name]})")
    print_load("after")


if __name__ == "__main__":
    main()
