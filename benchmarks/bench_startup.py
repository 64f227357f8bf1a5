"""New-process timings of issue 16: import, ``load_synthetic()`` and the default run.

Every measurement starts a new Python process (so nothing is cached in memory; the operating
system's file cache is warm after the first repeat) and reports the median over ``--repeats``:

* ``import``: ``import finsam_eval; finsam_eval.estimate`` (target < 0.6 s), timed inside the
  child from before the import;
* ``load_synthetic``: the call alone after ``import finsam_eval`` (target < 0.3 s), and import
  plus call;
* ``run``: ``finsam-eval run --quiet --out <tmp>`` with the default configuration, the whole
  process's wall time (target < 8 s), with its own step timings from the run's manifest.

The checkout that is imported is the one this script sits in (its parent folder first on
``sys.path``), so a source checkout is measured, not an installed wheel. The load average is
printed before and after, and each measurement's CPU time (user + system, the child and its
workers): on a shared machine wall times vary with the load, CPU times much less.

Run: ``python benchmarks/bench_startup.py [--repeats 5] [--run-repeats 3] [--skip-run]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT = """
import time
start = time.perf_counter()
import finsam_eval
finsam_eval.estimate
print(time.perf_counter() - start)
"""

LOAD = """
import time
start = time.perf_counter()
import finsam_eval
import finsam_eval.synthetic
imported = time.perf_counter()
finsam_eval.load_synthetic()
end = time.perf_counter()
print(end - imported, end - start)
"""

RUN = """
import sys
from finsam_eval.cli import main
sys.exit(main(["run", "--quiet", "--out", sys.argv[1]]))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child(code: str, *args: str) -> tuple[float, list[float], float]:
    """Wall time, printed numbers and CPU time of ``python -c code args`` in a new process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cpu = _children_cpu()
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    return wall, [float(v) for v in out.stdout.split()], _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--run-repeats", type=int, default=3)
    parser.add_argument("--skip-run", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    runs = [child(IMPORT) for _ in range(args.repeats)]
    imports = [printed[0] for _, printed, _ in runs]
    cpus = [cpu for _, _, cpu in runs]
    print(f"import finsam_eval; finsam_eval.estimate: median {statistics.median(imports):.3f} s "
          f"(min {min(imports):.3f}, max {max(imports):.3f}); whole process CPU median "
          f"{statistics.median(cpus):.3f} s; target < 0.6 s", flush=True)  # fmt: skip
    loads = [child(LOAD)[1] for _ in range(args.repeats)]
    call = [c for c, _ in loads]
    total = [t for _, t in loads]
    print(f"load_synthetic(): call median {statistics.median(call):.3f} s (min {min(call):.3f}, "
          f"max {max(call):.3f}); with the import {statistics.median(total):.3f} s; "
          "target < 0.3 s", flush=True)  # fmt: skip
    if not args.skip_run:
        walls, cpus = [], []
        for _ in range(args.run_repeats):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "run"
                wall, _, cpu = child(RUN, str(out))
                walls.append(wall)
                cpus.append(cpu)
                steps = json.loads((out / "manifest.json").read_text())["timings"]
            print(f"finsam-eval run (default config, new process): {wall:.2f} s, CPU {cpu:.2f} s"
                  f"  steps {steps}  load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        print(f"finsam-eval run: median {statistics.median(walls):.2f} s (CPU "
              f"{statistics.median(cpus):.2f} s); target < 8 s")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
