"""Engines that run the relational definitions of :mod:`finsam_eval.microdata.sql`.

* :class:`DuckDBEngine` (default): embedded, out of core — the validated person-years live in a
  table of a DuckDB database file in ``temp_directory`` and joins and aggregates spill there
  beyond ``memory_limit``.
* :class:`SparkEngine`: the same SQL transpiled to Spark SQL by sqlglot, for data that outgrow
  one machine (a cluster's SparkSession, or ``local[n]``).

Both expose ``register_source``, ``register_frame``, ``materialise``, ``query`` and ``close``;
the builder (:func:`finsam_eval.microdata.build_microdata_panel`) only talks to that interface.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any

import pandas as pd

from finsam_eval.microdata.readers import MicrodataError, MicrodataSource
from finsam_eval.microdata.schema import MICRODATA_COLUMNS
from finsam_eval.microdata.sql import transpile

__all__ = ["DuckDBEngine", "SparkEngine", "make_engine"]

_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _kind(type_name: str) -> str:
    t = type_name.lower()
    if t.startswith("bool"):
        return "boolean"
    if any(w in t for w in ("tinyint", "smallint", "bigint", "hugeint", "integer", "int")):
        return "integer"
    if any(w in t for w in ("double", "float", "real", "decimal")):
        return "float"
    if any(w in t for w in ("varchar", "string", "char", "text")):
        return "string"
    return "other"


def _check_columns(columns: list[str], source: MicrodataSource) -> None:
    missing = [c for c in MICRODATA_COLUMNS if c not in columns]
    if missing:
        raise MicrodataError(
            f"{source.describe()} lacks required column(s) {missing}; the person-year schema "
            f"is {list(MICRODATA_COLUMNS)} (docs/microdata.md); found {columns}"
        )


class DuckDBEngine:
    """DuckDB, in memory with spilling to disk.

    Parameters
    ----------
    memory_limit
        DuckDB's ``memory_limit`` (e.g. ``"2GB"``): beyond it, joins, aggregates and the
        validated table spill to ``temp_directory``.
    threads
        Worker threads; None: DuckDB's default (the number of cores).
    temp_directory
        Folder for spilled data; None: a fresh temporary folder, removed by :meth:`close`.
    """

    name = "duckdb"
    #: run the duplicate check and the transitions one year (pair) at a time: the hash tables
    #: then hold one year of persons, so memory stays bounded at 10⁸ person-years
    by_year = True

    def __init__(
        self,
        memory_limit: str = "2GB",
        threads: int | None = None,
        temp_directory: str | None = None,
    ) -> None:
        import duckdb

        if not _MEMORY.match(str(memory_limit)):
            raise ValueError(f"memory_limit must look like '2GB' or '512MB', not {memory_limit!r}")
        self._own_temp = temp_directory is None
        self.temp_directory = temp_directory or tempfile.mkdtemp(prefix="finsam-duckdb-")
        # a database file in the temporary folder, not ":memory:": its tables (the validated
        # person-years) live on disk, compressed, and only their working set in memory_limit
        self.con = duckdb.connect(os.path.join(self.temp_directory, "microdata.duckdb"))
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET temp_directory = '{self.temp_directory}'")
        # row order is fixed by ORDER BY where it matters; dropping it lets DuckDB stream
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        self.settings = {"memory_limit": memory_limit, "threads": threads}

    def register_source(self, source: MicrodataSource) -> dict[str, str]:
        files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in source.files) + "]"
        hive = "true" if source.hive else "false"
        if source.format == "parquet":
            reader = f"read_parquet({files}, hive_partitioning = {hive}, union_by_name = true)"
        else:
            reader = (
                f"read_csv({files}, header = true, all_varchar = true, "
                f"hive_partitioning = {hive}, union_by_name = true)"
            )
        self.con.execute(f"CREATE OR REPLACE VIEW raw AS SELECT * FROM {reader}")
        described = self.con.execute("DESCRIBE raw").fetchall()
        columns = [row[0] for row in described]
        _check_columns(columns, source)
        return {row[0]: _kind(str(row[1])) for row in described}

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(f"{name}_frame", frame)
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_frame")
        self.con.unregister(f"{name}_frame")

    def materialise(self, name: str, select: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {select}")

    def query(self, select: str) -> pd.DataFrame:
        return self.con.execute(select).df()

    def alias(self, name: str, table: str) -> None:
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {table}")

    def drop(self, table: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def close(self) -> None:
        self.con.close()
        if self._own_temp:  # the database file and spilled data
            shutil.rmtree(self.temp_directory, ignore_errors=True)
        else:
            path = os.path.join(self.temp_directory, "microdata.duckdb")
            for leftover in (path, path + ".wal"):
                if os.path.exists(leftover):
                    os.remove(leftover)


class SparkEngine:
    """Spark SQL: the DuckDB statements transpiled by sqlglot.

    Parameters
    ----------
    spark
        A SparkSession (a cluster's); None starts a local one with ``master``.
    master
        Master URL for a session started here, e.g. ``"local[1]"``.
    """

    name = "spark"
    by_year = False  # Spark partitions the join itself, across the cluster

    def __init__(self, spark: Any = None, master: str = "local[1]") -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "engine='spark' needs pyspark: pip install 'finsam_eval[spark]' (and a Java "
                "runtime)"
            ) from exc
        self._own = spark is None
        if spark is None:
            spark = (
                SparkSession.builder.master(master)
                .appName("finsam_eval-microdata")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.sql.session.timeZone", "UTC")
                .getOrCreate()
            )
        self.spark = spark
        self._cached: list[Any] = []
        self.settings = {"master": spark.sparkContext.master}

    def register_source(self, source: MicrodataSource) -> dict[str, str]:
        reader = self.spark.read
        if source.hive:
            reader = reader.option("basePath", str(source.path))
        files = [str(p) for p in source.files]
        if source.format == "parquet":
            frame = reader.option("mergeSchema", "true").parquet(*files)
        else:
            frame = reader.option("header", "true").option("inferSchema", "false").csv(files)
        frame.createOrReplaceTempView("raw")
        _check_columns(list(frame.columns), source)
        return {name: _kind(dtype) for name, dtype in frame.dtypes}

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        # Arrow makes the conversion of a pandas frame take milliseconds instead of a minute
        key = "spark.sql.execution.arrow.pyspark.enabled"
        before = self.spark.conf.get(key, "false")
        self.spark.conf.set(key, "true")
        try:
            self.spark.createDataFrame(frame).createOrReplaceTempView(name)
        finally:
            self.spark.conf.set(key, before)

    def materialise(self, name: str, select: str) -> None:
        frame = self.spark.sql(transpile(select, "spark")).cache()
        frame.count()  # computes the cache once
        self._cached.append(frame)
        frame.createOrReplaceTempView(name)

    def query(self, select: str) -> pd.DataFrame:
        return self.spark.sql(transpile(select, "spark")).toPandas()

    def alias(self, name: str, table: str) -> None:
        self.spark.table(table).createOrReplaceTempView(name)

    def drop(self, table: str) -> None:
        self.spark.catalog.dropTempView(table)

    def close(self) -> None:
        for frame in self._cached:
            frame.unpersist()
        if self._own:
            self.spark.stop()


def make_engine(engine: str | Any = "duckdb", **options: Any) -> Any:
    """An engine by name (``"duckdb"``, ``"spark"``) or an engine object passed through."""
    if not isinstance(engine, str):
        return engine
    if engine == "duckdb":
        return DuckDBEngine(**options)
    if engine == "spark":
        return SparkEngine(**options)
    raise ValueError(f"unknown engine {engine!r}; use 'duckdb' or 'spark'")
