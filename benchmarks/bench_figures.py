"""CPU time of the report's figures in the default run (issue 16).

Each repeat starts a new process that runs ``finsam-eval run --quiet`` with the default
configuration and every figure drawn in that process (``report.background.default_workers``
returns 1), and reports the process time spent inside ``report.figures.write_figures`` (the 32
figures: drawing and writing the PNG files), then draws the same 32 figures again in two forked
workers (``report.background.Background(2)``, as the run does on two cores) and reports the
workers' CPU time. The checkout measured is the one this script sits in (its parent folder
first on ``sys.path``); ``--baseline DIR`` measures another checkout (a folder holding
``finsam_eval``) alternately with it. The load average is printed with every measurement: on a
shared machine CPU times vary with the load, so compare alternating pairs.

Run: ``python benchmarks/bench_figures.py [--repeats 3] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
import finsam_eval.report.background as background
import finsam_eval.report.figures as figures

background.default_workers = lambda n_tasks, min_tasks=6: 1
spent, jobs = [0.0], []
write_figures, record = figures.write_figures, background.Background.map


def timed(*args, **kwargs):
    start = time.process_time()
    try:
        return write_figures(*args, **kwargs)
    finally:
        spent[0] += time.process_time() - start


def recording(self, func, tasks):
    tasks = list(tasks)
    if func is figures._render:
        jobs.extend(tasks)
    return record(self, func, tasks)


figures.write_figures, background.Background.map = timed, recording
from finsam_eval.cli import main

main(["run", "--quiet", "--out", sys.argv[2]])
background.Background.map = record
out = os.path.join(sys.argv[2], "again")
os.makedirs(out)
start = time.perf_counter()
with background.Background(2) as pool:
    pool.map(figures._render, [(*job[:4], os.path.join(out, job[0] + ".png")) for job in jobs]).get()
wall = time.perf_counter() - start
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"figures": len(jobs), "serial_cpu": spent[0],
                  "workers_cpu": children.ru_utime + children.ru_stime, "workers_wall": wall}))
"""


def measure(checkout: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(checkout), str(Path(tmp) / "run")],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None)
    args = parser.parse_args()
    checkouts = {"this": ROOT}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline.resolve()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for _ in range(args.repeats):
        for name, checkout in checkouts.items():
            row = measure(checkout)
            results[name].append(row)
            print(
                f"{name:8s} {row['figures']} figures: in the run {row['serial_cpu']:.2f} s CPU; "
                f"two workers {row['workers_cpu']:.2f} s CPU, {row['workers_wall']:.2f} s wall "
                f"(load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    for name, rows in results.items():
        medians = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        print(
            f"{name:8s} median: in the run {medians['serial_cpu']:.2f} s CPU; two workers "
            f"{medians['workers_cpu']:.2f} s CPU, {medians['workers_wall']:.2f} s wall"
        )


if __name__ == "__main__":
    main()
