"""The relational definitions of the microdata layer, written once as SQL (DuckDB dialect).

Every engine runs these statements: DuckDB as written, Spark (and SQL Server, for MONA) after
transpiling with sqlglot (:func:`transpile`). Only constructs that the three dialects share are
used (CASE, CAST, window COUNT, LEFT JOIN, GROUP BY with explicit columns), so the counts are the
same on every engine by construction; a test checks DuckDB against Spark to the last count.

Four statements:

* :func:`validated_sql` — the person-year rows with typed columns, the harmonised kommun index
  ``kc`` (joined from the ``codes`` table built by :func:`finsam_eval.registry.harmonise_codes`),
  age, and the rejection ``reason`` (0 = kept; :data:`~finsam_eval.microdata.schema.REJECT_REASONS`);
  duplicated person-years are found afterwards on the person-year key (:func:`duplicates_sql`,
  :func:`mark_duplicates_sql`), which costs a second pass only when there are any;
* :func:`counts_sql` — rows by reason, kommun, year and code change (the build report);
* :func:`cells_sql` — persons and flag counts by kommun × year × sex × single-year age;
* :func:`transitions_sql` — per transition, persons in the origin state in t−1 and those of
  them in the destination state in t, by kommun, year, sex and age in t−1.
"""

from __future__ import annotations

from collections.abc import Mapping

from finsam_eval.microdata.schema import (
    AGE_POSSIBLE,
    FLAG_COLUMNS,
    TRANSITIONS,
    Transition,
)

__all__ = [
    "cells_sql",
    "counts_sql",
    "duplicates_sql",
    "mark_duplicates_sql",
    "transitions_sql",
    "transpile",
    "validated_sql",
]

_INT = r"'^-?[0-9]{1,18}$'"
# person-year key pkey = person_id · 256 + (year − 1900): one BIGINT, so that the transitions'
# self-join (the same person in the next year is pkey + 1) joins on a single integer column
YEAR_MIN, YEAR_SLOTS = 1900, 256
YEAR_MAX = YEAR_MIN + YEAR_SLOTS - 2  # the next year's key stays inside the person's slots
PERSON_MAX = 2**54


def _q(name: str) -> str:
    return f'"{name}"'


def _integer(column: str, kind: str) -> str:
    """A whole number or NULL: no rounding of 1998.5, no silent truncation of '1998.0'."""
    c = _q(column)
    if kind == "integer":
        return f"CAST({c} AS BIGINT)"
    if kind == "float":
        return f"CASE WHEN {c} = FLOOR({c}) THEN CAST({c} AS BIGINT) END"
    if kind == "string":
        return f"CASE WHEN REGEXP_MATCHES(TRIM({c}), {_INT}) THEN CAST(TRIM({c}) AS BIGINT) END"
    return "CAST(NULL AS BIGINT)"


def _flag(column: str, kind: str) -> str:
    """A boolean, or NULL for anything but true/false/1/0."""
    c = _q(column)
    if kind == "boolean":
        return c
    if kind in ("integer", "float"):
        return f"CASE WHEN {c} = 1 THEN TRUE WHEN {c} = 0 THEN FALSE END"
    if kind == "string":
        text = f"LOWER(TRIM({c}))"
        return (
            f"CASE WHEN {text} IN ('true', '1') THEN TRUE "
            f"WHEN {text} IN ('false', '0') THEN FALSE END"
        )
    return "CAST(NULL AS BOOLEAN)"


def _text(column: str, kind: str) -> str:
    c = _q(column)
    if kind == "float":  # a code read as 180.0 is 0180
        return f"CASE WHEN {c} = FLOOR({c}) THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) END"
    return f"TRIM(CAST({c} AS VARCHAR))"


def validated_sql(kinds: Mapping[str, str], source: str = "raw", codes: str = "codes") -> str:
    """SELECT of the validated person-year rows.

    Parameters
    ----------
    kinds
        Column name → ``"integer"``, ``"float"``, ``"string"``, ``"boolean"`` or ``"other"``
        (the type each engine read), for every required column.
    source, codes
        Names of the raw table and of the code table (``raw_code``, ``year``, ``kc``,
        ``altered``).

    Returns
    -------
    str
        Columns ``person_id, year, kc, sex_m (1 = M), age, <flags>, reason, raw_code`` (the
        original code where it was changed or unknown, else NULL), ``pkey`` (person-year key).
    """
    flags = ",\n    ".join(f"{_flag(f, kinds[f])} AS {_q(f)}" for f in FLAG_COLUMNS)
    code = _text("kommun_kod", kinds["kommun_kod"])
    any_flag_null = " OR ".join(f"{_q(f)} IS NULL" for f in FLAG_COLUMNS)
    flag_list = ", ".join(_q(f) for f in FLAG_COLUMNS)
    lo, hi = AGE_POSSIBLE
    return f"""
WITH src AS (
  SELECT
    {_integer("person_id", kinds["person_id"])} AS person_id,
    {_integer("year", kinds["year"])} AS year,
    CASE WHEN LENGTH({code}) >= 4 THEN {code} ELSE LPAD({code}, 4, '0') END AS raw_code,
    UPPER(TRIM(CAST({_q("sex")} AS VARCHAR))) AS sex,
    {_integer("birth_year", kinds["birth_year"])} AS birth_year,
    {flags}
  FROM {source}
),
keyed AS (
  SELECT src.*, c.kc AS kc, c.altered AS altered
  FROM src LEFT JOIN {codes} AS c ON c.raw_code = src.raw_code AND c.year = src.year
)
SELECT
  person_id,
  year,
  kc,
  CASE WHEN sex = 'M' THEN 1 ELSE 0 END AS sex_m,
  year - birth_year AS age,
  {flag_list},
  CASE
    WHEN person_id IS NULL OR year IS NULL OR raw_code IS NULL OR birth_year IS NULL
      OR ABS(person_id) > {PERSON_MAX} OR year < {YEAR_MIN} OR year > {YEAR_MAX} THEN 1
    WHEN sex IS NULL OR sex NOT IN ('K', 'M') THEN 2
    WHEN kc IS NULL THEN 3
    WHEN year - birth_year < {lo} OR year - birth_year > {hi} THEN 4
    WHEN {any_flag_null} THEN 5
    ELSE 0
  END AS reason,
  CASE WHEN kc IS NULL OR altered THEN raw_code END AS raw_code,
  CASE WHEN ABS(person_id) <= {PERSON_MAX} AND year >= {YEAR_MIN} AND year <= {YEAR_MAX}
    THEN person_id * {YEAR_SLOTS} + (year - {YEAR_MIN}) END AS pkey
FROM keyed
"""


def duplicates_sql(table: str = "md0", year: int | None = None) -> str:
    """Person-year keys with more than one row (among every row with a person and year).

    ``year``: only that year's rows (a duplicate is within a year), so that an engine can bound
    the hash table by one year of persons.
    """
    where = "" if year is None else f" AND year = {int(year)}"
    return f"""
SELECT pkey FROM {table}
WHERE pkey IS NOT NULL{where}
GROUP BY pkey
HAVING COUNT(*) > 1
"""


def mark_duplicates_sql(table: str = "md0", duplicates: str = "dups") -> str:
    """``table`` with reason 6 for the kept rows of duplicated person-years."""
    columns = ", ".join(
        f"t.{c}" for c in ("person_id", "year", "kc", "sex_m", "age", *map(_q, FLAG_COLUMNS))
    )
    return f"""
SELECT {columns},
  CASE WHEN t.reason = 0 AND d.pkey IS NOT NULL THEN 6 ELSE t.reason END AS reason,
  t.raw_code, t.pkey
FROM {table} AS t LEFT JOIN {duplicates} AS d ON d.pkey = t.pkey
"""


def counts_sql(age_min: int, age_max: int, table: str = "md") -> str:
    """Rows by reason, kommun, year, changed code and whether the age is in ``age_min``–``age_max``."""
    return f"""
SELECT reason, kc, year, raw_code,
  CASE WHEN age >= {age_min} AND age <= {age_max} THEN 1 ELSE 0 END AS in_ages,
  COUNT(*) AS n_rows
FROM {table}
GROUP BY reason, kc, year, raw_code,
  CASE WHEN age >= {age_min} AND age <= {age_max} THEN 1 ELSE 0 END
"""


def cells_sql(age_min: int, age_max: int, table: str = "md") -> str:
    """Persons and persons with each flag by kommun, year, sex and single-year age.

    Counts are ``COUNT(CASE WHEN ... THEN 1 END)``: BIGINT on every engine (DuckDB sums
    integers in 128 bits, several times slower).
    """
    sums = ",\n  ".join(f"COUNT(CASE WHEN {_q(f)} THEN 1 END) AS {_q(f)}" for f in FLAG_COLUMNS)
    return f"""
SELECT kc, year, sex_m, age, COUNT(*) AS persons,
  {sums}
FROM {table}
WHERE reason = 0 AND age >= {age_min} AND age <= {age_max}
GROUP BY kc, year, sex_m, age
"""


def _any(alias: str, flags: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"{alias}.{_q(f)}" for f in flags) + ")"


def _origin(alias: str, spec: Transition) -> str:
    expr = _any(alias, spec.origin)
    return f"NOT {expr}" if spec.negate_origin else expr


def transitions_sql(
    age_min: int,
    age_max: int,
    last_year: int,
    transitions: Mapping[str, Transition] | None = None,
    table: str = "md",
    year: int | None = None,
) -> str:
    """Year-to-year flows by kommun, year t, sex and age in t−1.

    For each transition ``x``: ``x__den`` (in the origin state in t−1 with a valid row in t),
    ``x__num`` (of them, in the destination state in t), ``x__left`` (in the origin state in
    t−1 without a valid row in t: left the register, or the row was rejected) and ``x__moved``
    (in ``x__den`` and living in another kommun in t). The kommun, sex and age are those of
    t−1; ``year`` is t. Rows of ``last_year`` have no t and are not used. ``year``: only the
    flows into that year t (one year pair: the join's hash table holds one year of persons).
    """
    transitions = TRANSITIONS if transitions is None else transitions
    # one boolean per transition on each side keeps the hashed rows of the join small
    a_cols = ", ".join(
        f"{_origin(table, spec)} AS {_q('o_' + name)}" for name, spec in transitions.items()
    )
    b_cols = ", ".join(
        f"{_any(table, spec.destination)} AS {_q('d_' + name)}"
        for name, spec in transitions.items()
    )
    parts = []
    for name in transitions:
        origin, dest = f"a.{_q('o_' + name)}", f"b.{_q('d_' + name)}"
        parts += [
            f"COUNT(CASE WHEN {origin} AND b.pkey IS NOT NULL THEN 1 END) AS {_q(name + '__den')}",
            f"COUNT(CASE WHEN {origin} AND {dest} THEN 1 END) AS {_q(name + '__num')}",
            f"COUNT(CASE WHEN {origin} AND b.pkey IS NULL THEN 1 END) AS {_q(name + '__left')}",
            f"COUNT(CASE WHEN {origin} AND b.kc <> a.kc THEN 1 END) AS {_q(name + '__moved')}",
        ]
    sums = ",\n  ".join(parts)
    a_year = "" if year is None else f" AND year = {int(year) - 1}"
    b_year = "" if year is None else f" AND year = {int(year)}"
    return f"""
WITH a AS (
  SELECT pkey, year, kc, sex_m, age, {a_cols}
  FROM {table}
  WHERE reason = 0 AND age >= {age_min} AND age <= {age_max} AND year < {int(last_year)}{a_year}
),
b AS (
  SELECT pkey, kc, {b_cols}
  FROM {table}
  WHERE reason = 0{b_year}
)
SELECT a.kc AS kc, a.year + 1 AS year, a.sex_m AS sex_m, a.age AS age,
  {sums}
FROM a LEFT JOIN b ON b.pkey = a.pkey + 1
GROUP BY a.kc, a.year + 1, a.sex_m, a.age
"""


def transpile(sql: str, dialect: str) -> str:
    """``sql`` (DuckDB dialect) in another dialect: ``"spark"``, ``"tsql"`` (SQL Server), ...

    Uses sqlglot (https://sqlglot.com), which parses the statement and writes it in the target
    dialect's syntax (e.g. ``REGEXP_MATCHES`` → ``RLIKE`` on Spark).
    """
    import sqlglot

    if dialect == "duckdb":
        return sql
    return sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)[0]
