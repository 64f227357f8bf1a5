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

Run: ``python benchmarks/bench_startup.py [--repeats 5] [--run-repeats 3] [--skip-run]
[--baseline DIR]``; ``--baseline`` measures another checkout alternately with this one.
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


def child(code: str, *args: str, root: Path = ROOT) -> tuple[float, list[float], float]:
    """Wall time, printed numbers and CPU time of ``python -c code args`` in a new process that
    imports the checkout ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    cpu = _children_cpu()
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=root, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    return wall, [float(v) for v in out.stdout.split()], _children_cpu() - cpu


def _median(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--run-repeats", type=int, default=3)
    parser.add_argument("--skip-run", action="store_true")
    parser.add_argument(
        "--baseline", type=Path, default=None,
        help="another checkout (e.g. `git archive <commit> | tar -x -C /tmp/base`) measured "
        "alternately with this one, so both see the same load",
    )  # fmt: skip
    args = parser.parse_args()
    roots = {"this": ROOT} if args.baseline is None else {"this": ROOT, "baseline": args.baseline}
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    imports: dict[str, list] = {name: [] for name in roots}
    loads: dict[str, list] = {name: [] for name in roots}
    for _ in range(args.repeats):
        for name, root in roots.items():
            imports[name].append(child(IMPORT, root=root))
            loads[name].append(child(LOAD, root=root)[1])
    for name in roots:
        times = [printed[0] for _, printed, _ in imports[name]]
        cpus = [cpu for _, _, cpu in imports[name]]
        print(f"[{name}] import finsam_eval; finsam_eval.estimate: {_median(times)}; whole "
              f"process CPU median {statistics.median(cpus):.3f} s; target < 0.6 s")  # fmt: skip
        call = [c for c, _ in loads[name]]
        total = [t for _, t in loads[name]]
        print(f"[{name}] load_synthetic(): call {_median(call)}; with the import "
              f"{statistics.median(total):.3f} s; target < 0.3 s", flush=True)  # fmt: skip
    if not args.skip_run:
        runs: dict[str, list] = {name: [] for name in roots}
        for _ in range(args.run_repeats):
            for name, root in roots.items():
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "run"
                    wall, _, cpu = child(RUN, str(out), root=root)
                    runs[name].append((wall, cpu))
                    steps = json.loads((out / "manifest.json").read_text())["timings"]
                print(f"[{name}] finsam-eval run (default config, new process): {wall:.2f} s, "
                      f"CPU {cpu:.2f} s  steps {steps}  load {os.getloadavg()[0]:.2f}",
                      flush=True)  # fmt: skip
        for name in roots:
            walls = [w for w, _ in runs[name]]
            cpus = [c for _, c in runs[name]]
            print(f"[{name}] finsam-eval run: {_median(walls)}, CPU median "
                  f"{statistics.median(cpus):.2f} s; target < 8 s")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
