"""Spark local mode gives the same panel as DuckDB, to the last count (issue 15).

Skips with its reason where pyspark or a Java runtime is missing (``make test`` installs both:
the ``spark`` extra and, on root CI machines, Debian's default-jre-headless); ``pytest -ra``
lists the reason in the summary. Tiny data and ``local[1]`` keep it fast.
"""

from __future__ import annotations

import os
import shutil
import warnings

import pandas as pd
import pytest

from finsam_eval.microdata import SparkEngine, build_microdata_panel
from finsam_eval.synthetic.microdata import generate_microdata


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="pyspark missing: pip install 'finsam_eval[spark]'")
    if _java() is None:
        pytest.skip("no Java runtime (java not on PATH, JAVA_HOME unset): Spark cannot start")
    from pyspark.sql import SparkSession

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark on pandas 3
        session = (
            SparkSession.builder.master("local[1]")
            .appName("finsam_eval-test")
            .config("spark.sql.shuffle.partitions", "1")
            .config("spark.default.parallelism", "1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_spark_equals_duckdb(spark, tmp_path):
    world = generate_microdata(
        persons=700, seed=5, kommuner=["0331", "2480", "0114"], path=tmp_path / "hive"
    )
    frame = pd.read_parquet(tmp_path / "hive")
    # a few bad rows in a CSV copy, so rejections are compared too
    csv = frame.astype({"year": "int64"}).head(3000).copy()
    csv.loc[0, "kommun_kod"] = "9999"
    csv.loc[1, "sex"] = "X"
    csv.to_csv(tmp_path / "persons.csv", index=False)
    for path in (tmp_path / "hive", tmp_path / "persons.csv"):
        duck = build_microdata_panel(path, cohorts=world.cohorts)
        sparked = build_microdata_panel(path, cohorts=world.cohorts, engine=SparkEngine(spark))
        pd.testing.assert_frame_equal(sparked.panel, duck.panel)
        pd.testing.assert_frame_equal(sparked.report.rejected, duck.report.rejected)
        pd.testing.assert_frame_equal(sparked.report.transitions, duck.report.transitions)
        assert sparked.report.outside_ages == duck.report.outside_ages
