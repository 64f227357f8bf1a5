"""Benchmark: person-year microdata → full kommun panel (ISF outcomes + transitions), issue 15.

Cases (each in a fresh subprocess, so peak RSS — ``ru_maxrss`` of that process, DuckDB
included — belongs to the case alone):

* ``duckdb-1e7``: 10⁷ synthetic person-years (hive-partitioned parquet) → the full panel with
  :func:`finsam_eval.microdata.build_microdata_panel` on DuckDB (2 threads, memory_limit 1GB).
  Target: ≤ 15 s and ≤ 2 GB peak RSS on a 2-core machine.
* ``pandas-1e7``: the peer — pandas reads the same files and computes the same counts with
  ``groupby`` (cells) and a ``merge`` on (person_id, year) (transitions); the panel assembly
  afterwards is the library's, so the ratio compares the aggregation.
* ``duckdb-1e8``: 10⁸ person-years (the 10⁷ files replicated ten times with new person ids),
  out of core with memory_limit 2.5GB. Target: ≤ 4 GB peak RSS; time recorded.
* ``spark-1e6``: Spark local[2] against DuckDB on 10⁶ person-years (JVM start-up included).

The load average is printed with every figure: the machine may be shared.

Run: ``.venv/bin/python benchmarks/bench_microdata.py [--cases duckdb-1e7 pandas-1e7 ...]
[--data /tmp/finsam-bench-microdata]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

PERSONS_PER_1E7 = 710_000  # ≈ 14.1 person-years per synthetic person: 1.005·10⁷


def _dataset(root: Path, size: str) -> Path:
    """The person-year folder of a size, generated (10⁶, 10⁷) or replicated (10⁸) once."""
    from finsam_eval.synthetic.microdata import generate_microdata

    path = root / f"persons-{size}"
    if (path / "_complete").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    if size == "1e8":
        import duckdb

        source = _dataset(root, "1e7")
        path.mkdir(parents=True)
        con = duckdb.connect()
        con.execute("SET memory_limit = '2GB'")
        for copy in range(10):
            con.execute(
                f"""COPY (SELECT * REPLACE (person_id + CAST({copy} AS BIGINT) * 1000000000 AS person_id)
                FROM read_parquet('{source}/**/*.parquet', hive_partitioning = true))
                TO '{path}' (FORMAT parquet, PARTITION_BY (year), OVERWRITE_OR_IGNORE,
                FILENAME_PATTERN 'copy{copy}_{{i}}')"""
            )
    else:
        persons = {"1e6": PERSONS_PER_1E7 // 10, "1e7": PERSONS_PER_1E7}[size]
        world = generate_microdata(persons=persons, seed=1, path=path)
        world.cohorts.to_csv(root / "cohorts.csv", index=False)
    (path / "_complete").touch()
    return path


def _cohorts(root: Path):
    import pandas as pd

    return pd.read_csv(root / "cohorts.csv", dtype={"kommun_kod": str, "forbund": str}).fillna(
        {"forbund": ""}
    )


def _pandas_counts(path: Path) -> tuple[object, object]:
    """The cells and transition counts with pandas only (the peer)."""
    import numpy as np
    import pandas as pd

    from finsam_eval.microdata.schema import FLAG_COLUMNS, ORIGIN_STATES

    frame = pd.read_parquet(path)
    frame["year"] = frame["year"].astype(np.int64)
    old = (frame["kommun_kod"] == "1917") & (frame["year"] <= 2006)
    frame.loc[old, "kommun_kod"] = "0331"
    frame["age"] = frame["year"] - frame["birth_year"]
    inside = frame[(frame["age"] >= 19) & (frame["age"] <= 64)]
    cells = inside.groupby(["kommun_kod", "year", "sex", "age"], observed=True)[
        list(FLAG_COLUMNS)
    ].agg(["sum", "size"])
    a = inside[["person_id", "year", "kommun_kod", "sex", "age", *ORIGIN_STATES]].copy()
    a["origin"] = a[list(ORIGIN_STATES)].any(axis=1)
    a["year"] += 1
    b = frame[["person_id", "year", "kommun_kod", "arbete", "studier", "sa", *ORIGIN_STATES]]
    b = b.assign(origin_b=b[list(ORIGIN_STATES)].any(axis=1))
    pairs = a.merge(b, on=["person_id", "year"], how="left", suffixes=("", "_b"))
    present = pairs["arbete"].notna()
    pairs["to_work"] = pairs["origin"] & present & pairs["arbete"].fillna(False).astype(bool)
    pairs["den"] = pairs["origin"] & present
    transitions = pairs.groupby(["kommun_kod", "year", "sex", "age"], observed=True)[
        ["den", "to_work"]
    ].sum()
    return cells, transitions


def _case(name: str, root: Path) -> dict:
    start = time.perf_counter()
    if name.startswith("duckdb"):
        from finsam_eval.microdata import build_microdata_panel

        size = name.split("-")[1]
        path = _dataset(root, size)
        limit = "2500MB" if size == "1e8" else "1GB"
        ready = time.perf_counter()
        built = build_microdata_panel(path, _cohorts(root), threads=2, memory_limit=limit)
        out = {"rows": built.report.n_rows, "panel_rows": len(built.panel)}
        out["steps"] = {k: round(v, 2) for k, v in built.report.timings.items()}
    elif name.startswith("pandas"):
        path = _dataset(root, "1e7")
        ready = time.perf_counter()
        cells, transitions = _pandas_counts(path)
        out = {"cells": len(cells), "transition_cells": len(transitions)}
    elif name.startswith("spark"):
        from finsam_eval.microdata import SparkEngine, build_microdata_panel

        path = _dataset(root, "1e6")
        ready = time.perf_counter()
        spark = SparkEngine(master="local[2]")
        built = build_microdata_panel(path, _cohorts(root), engine=spark)
        out = {"rows": built.report.n_rows, "panel_rows": len(built.panel)}
        duck_start = time.perf_counter()
        duck = build_microdata_panel(path, _cohorts(root), threads=2)
        out["duckdb_seconds"] = round(time.perf_counter() - duck_start, 2)
        out["equal"] = bool(duck.panel.equals(built.panel))
        out["seconds_spark"] = round(duck_start - ready, 2)
    else:
        raise ValueError(f"unknown case {name}")
    out["seconds"] = round(time.perf_counter() - ready, 2)
    out["prepare_seconds"] = round(ready - start, 2)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    # CPU seconds of the process (all DuckDB threads): on a shared machine, wall time / CPU
    # time shows how much of the wall time was waiting for a core
    out["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", nargs="+", default=["duckdb-1e7", "pandas-1e7", "spark-1e6", "duckdb-1e8"]
    )
    parser.add_argument("--data", default="/tmp/finsam-bench-microdata")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child process
    parser.add_argument("--prepare", nargs="*", help="only generate these sizes")
    args = parser.parse_args()
    root = Path(args.data)
    root.mkdir(parents=True, exist_ok=True)
    if args.prepare is not None:
        for size in args.prepare:
            print(size, _dataset(root, size))
        return
    if args.case:
        print(json.dumps(_case(args.case, root)))
        return
    results = {}
    for case in args.cases:
        _dataset(root, case.split("-")[1] if not case.startswith("spark") else "1e6")
        load = os.getloadavg()[0]
        child = subprocess.run(
            [sys.executable, __file__, "--case", case, "--data", str(root)],
            capture_output=True,
            text=True,
        )
        if child.returncode:
            print(case, "failed:", child.stderr.strip().splitlines()[-3:], flush=True)
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["load_before"] = round(load, 2)
        result["load_after"] = round(os.getloadavg()[0], 2)
        results[case] = result
        print(case, json.dumps(result), flush=True)
    if "duckdb-1e7" in results and "pandas-1e7" in results:
        ratio = results["pandas-1e7"]["seconds"] / results["duckdb-1e7"]["seconds"]
        print(f"pandas / DuckDB time ratio on 10^7 person-years: {ratio:.2f}")


if __name__ == "__main__":
    main()
