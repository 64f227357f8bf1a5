"""Time the default ISF-style run: 5 populations, 25 series, TWFE + CS + Sun–Abraham +
imputation, 999 bootstrap draws (sup-t bands and Romano–Wolf), tables, figures and report.

Usage: .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3]
Prints the wall time of each repeat, the median, the run's own step timings and peak memory.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from _common import arguments

from finsam_eval.pipeline import load_config, run_analysis


def main() -> None:
    args = arguments(__doc__, repeats=3)
    config = load_config(None)
    times = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            run_analysis(config, Path(tmp), progress=False)
            times.append(time.perf_counter() - start)
            steps = json.loads((Path(tmp) / "manifest.json").read_text())["timings"]
        print(f"repeat {repeat + 1}: {times[-1]:.2f} s  steps: {steps}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"default run ({len(config.series())} series × {len(config.methods)} methods, "
        f"bootstrap {config.bootstrap}, {config.adjust}): median {statistics.median(times):.2f} s "
        f"(first run includes loading the synthetic panel), peak RSS {peak:.0f} MiB; target < 60 s"
    )


if __name__ == "__main__":
    main()
