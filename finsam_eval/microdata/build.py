"""Person-year microdata → the long kommun-year panel, on DuckDB (default) or Spark.

Method. The engine validates every person-year row and keeps the valid ones in a table
(:func:`finsam_eval.microdata.sql.validated_sql`), then counts persons by kommun × year × sex
× single-year age, with the number of persons having each flag (:func:`cells_sql`), and the
year-to-year flows of the same persons (:func:`transitions_sql`). Only these small count tables
(≈ 290 kommuner × 21 years × 2 sexes × 46 ages rows) leave the engine, so memory in Python does
not grow with the number of person-years.

The ISF outcomes are then built by :func:`finsam_eval.panel.build_panel` itself from the count
tables written as its source tables (population by single-year age; numerators by age band) —
so the panel is exactly the one ``build_panel`` produces from the same counts, with its build
report. Cells without any person are zeros, not missing: in person-level data a sex × age cell
with no row has no person. Transition outcomes (:data:`~finsam_eval.microdata.schema.TRANSITIONS`)
are appended as ordinary outcome rows with the same columns, kommun attributes and sort order.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.microdata.engines import make_engine
from finsam_eval.microdata.readers import MicrodataError, find_microdata
from finsam_eval.microdata.schema import (
    FLAG_COLUMNS,
    REJECT_REASONS,
    TRANSITION_OUTCOMES,
    TRANSITIONS,
)
from finsam_eval.microdata.sql import (
    cells_sql,
    counts_sql,
    duplicates_sql,
    mark_duplicates_sql,
    transitions_sql,
    validated_sql,
)
from finsam_eval.panel import build_panel, validate_panel
from finsam_eval.panel.builder import resolve_populations
from finsam_eval.panel.populations import AGE_BANDS, OUTCOMES, SEXES, Population
from finsam_eval.panel.report import BuildReport
from finsam_eval.registry import code_history, harmonise_codes, kommuner

__all__ = [
    "BuiltMicroPanel",
    "MicrodataReport",
    "MicrodataValidationError",
    "build_microdata_panel",
    "microdata_cells",
]

SHOW = 5  # example rows per rejection reason
_SUMMARY_COLUMNS = [
    "population",
    "outcome",
    "denominator",
    "numerator",
    "left",
    "moved",
    "not_built",
    "kommuner_left_out",
    "rows_left_out",
]


class MicrodataValidationError(MicrodataError):
    """Rejected person-year rows under ``strict=True``; the message gives counts and examples."""


@dataclass
class MicrodataReport:
    """What happened to the person-year rows.

    Attributes
    ----------
    source
        Where the rows came from (format, path, files).
    engine
        ``"duckdb"`` or ``"spark"``, with its settings.
    n_rows
        Rows read.
    rejected
        Per reason: ``reason`` (name), ``description``, ``n_rows`` — rows excluded from every
        count. Every reason is listed, with 0 where none.
    examples
        Up to five rejected rows per reason (person_id, year, original code, age, reason).
    altered
        Rows whose historical kommun code was mapped to the current code: ``raw_code``,
        ``kommun_kod``, ``year``, ``n_rows``.
    outside_ages
        Valid rows whose age lies outside every selected population (kept for the transitions'
        year t, counted in no denominator of year t).
    transitions
        Per population × transition outcome: ``denominator``, ``numerator``, ``left`` (in the
        origin state in t−1, no valid row in t: not counted), ``moved`` (counted in the kommun
        of t−1), ``not_built`` (kommun-years with no person in the origin state).
    panel_report
        :func:`~finsam_eval.panel.build_panel`'s report on the ISF outcomes.
    timings
        Seconds per step.
    notes
        Plain-language notes.
    """

    source: str
    engine: str
    n_rows: int
    rejected: pd.DataFrame
    examples: pd.DataFrame
    altered: pd.DataFrame
    outside_ages: int
    transitions: pd.DataFrame
    panel_report: BuildReport
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n_rejected(self) -> int:
        """Rows rejected for any reason."""
        return int(self.rejected["n_rows"].sum())

    def summary(self) -> str:
        """A few lines for the console and the report's data section."""
        lines = [
            f"Person-year microdata: {self.source}",
            f"Engine: {self.engine}",
            f"Rows read: {self.n_rows:,}; rejected: {self.n_rejected:,}; "
            f"historical codes harmonised: {int(self.altered['n_rows'].sum()):,}; "
            f"valid rows outside the populations' ages: {self.outside_ages:,}",
        ]
        for r in self.rejected.itertuples(index=False):
            if r.n_rows:
                lines.append(f"  rejected {r.n_rows:,} rows: {r.reason} ({r.description})")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class BuiltMicroPanel:
    """The result of :func:`build_microdata_panel`: ``panel`` and ``report``."""

    panel: pd.DataFrame
    report: MicrodataReport

    def __iter__(self):  # allows ``panel, report = build_microdata_panel(...)``
        return iter((self.panel, self.report))


def _code_table(registry_codes: np.ndarray, years: range = range(1950, 2051)) -> pd.DataFrame:
    """(raw_code, year) → kc (position in the sorted registry) and whether the code changed.

    Every current code and every historical code of :func:`finsam_eval.registry.code_history`,
    for every year, harmonised by :func:`finsam_eval.registry.harmonise_codes` — the rule
    ``build_panel`` applies. Pairs that do not map to a current code are left out, so the
    engine's join marks them unknown.
    """
    history = code_history()
    raw = sorted(set(registry_codes) | {c for c in history["historical_code"] if c})
    grid = pd.DataFrame(
        {
            "raw_code": np.repeat(np.array(raw, dtype=object), len(years)),
            "year": np.tile(np.arange(years.start, years.stop), len(raw)),
        }
    )
    harmonised, _ = harmonise_codes(grid, code="raw_code")
    new = harmonised["raw_code"].to_numpy(dtype=object)
    kc = pd.Index(registry_codes).get_indexer(new)
    out = grid.assign(kc=kc, altered=grid["raw_code"].to_numpy(dtype=object) != new)
    out = out[out["kc"] >= 0].reset_index(drop=True)
    return out.astype({"raw_code": str, "year": np.int64, "kc": np.int64, "altered": bool})


def _resolve_outcomes(outcomes: Sequence[str] | None, transitions: bool) -> list[str]:
    known = [*OUTCOMES, *TRANSITION_OUTCOMES]
    if outcomes is None:
        return known if transitions else list(OUTCOMES)
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    unknown = [o for o in outcomes if o not in known]
    if unknown:
        raise ValueError(f"Unknown outcome(s) {unknown}; known: {known}")
    return [o for o in known if o in outcomes]


def microdata_cells(
    cells: pd.DataFrame,
    codes: np.ndarray,
    specs: Mapping[str, Population],
    outcomes: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The count table of :func:`~finsam_eval.microdata.sql.cells_sql` as ``build_panel``'s
    source tables (numerators by age band, population by single-year age).

    Every sex × age of the populations is present for each kommun-year with any person (zeros
    where no person), and numerator rows only for the outcome × band pairs some population
    uses, so ``build_panel`` excludes nothing it would have to report as unused.
    """
    age_min = min(s.age_min for s in specs.values())
    age_max = max(s.age_max for s in specs.values())
    ages = np.arange(age_min, age_max + 1)
    n_age = len(ages)
    kc = cells["kc"].to_numpy(np.int64)
    year = cells["year"].to_numpy(np.int64)
    y0 = int(year.min())
    span = int(year.max()) - y0 + 1
    kt, row_kt = np.unique(kc * span + (year - y0), return_inverse=True)
    # dense (kommun-year, sex, age) arrays: cells without a person stay zero
    sex_i = cells["sex_m"].to_numpy(np.int64)
    age_i = cells["age"].to_numpy(np.int64) - age_min
    dense = {}
    for column in ("persons", *FLAG_COLUMNS):
        values = np.zeros((len(kt), 2, n_age), dtype=np.int64)
        values[row_kt, sex_i, age_i] = cells[column].to_numpy(np.int64)
        dense[column] = values
    kt_kc, kt_year = np.divmod(kt, span)
    kt_code = codes[kt_kc]
    kt_year = kt_year + y0
    sexes = np.array(SEXES, dtype=object)
    shape = (len(kt), 2, n_age)
    population = pd.DataFrame(
        {
            "kommun_kod": np.broadcast_to(kt_code[:, None, None], shape).reshape(-1),
            "year": np.broadcast_to(kt_year[:, None, None], shape).reshape(-1),
            "sex": np.broadcast_to(sexes[None, :, None], shape).reshape(-1),
            "age": np.broadcast_to(ages[None, None, :], shape).reshape(-1),
            "population": dense["persons"].reshape(-1),
        }
    )
    wanted = [o for o in OUTCOMES if o in outcomes]
    parts = []
    for outcome in wanted:
        bands = [
            (label, lo, hi)
            for label, (lo, hi) in AGE_BANDS.items()
            if any(
                outcome in spec.outcomes and lo >= spec.age_min and hi <= spec.age_max
                for spec in specs.values()
            )
        ]
        for label, lo, hi in bands:
            count = dense[outcome][:, :, lo - age_min : hi - age_min + 1].sum(axis=2)
            parts.append(
                pd.DataFrame(
                    {
                        "kommun_kod": np.repeat(kt_code, 2),
                        "year": np.repeat(kt_year, 2),
                        "sex": np.tile(sexes, len(kt)),
                        "age_band": label,
                        "outcome": outcome,
                        "count": count.reshape(-1),
                    }
                )
            )
    numerators = pd.concat(parts, ignore_index=True)
    return numerators, population


def _transition_rows(
    trans: pd.DataFrame,
    specs: Mapping[str, Population],
    wanted: Sequence[str],
    codes: np.ndarray,
    window: np.ndarray | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transition panel rows (without kommun attributes) and the per-series summary."""
    rows, summary = [], []
    kc = trans["kc"].to_numpy(np.int64)
    year = trans["year"].to_numpy(np.int64)
    sex_m = trans["sex_m"].to_numpy(np.int64)
    age = trans["age"].to_numpy(np.int64)
    if len(kc) == 0:
        return pd.DataFrame(), pd.DataFrame(summary, columns=_SUMMARY_COLUMNS)
    y0 = int(year.min())
    span = int(year.max()) - y0 + 1
    key = kc * span + (year - y0)
    n_keys = (int(kc.max()) + 1) * span
    in_window = np.ones(len(trans), dtype=bool) if window is None else np.isin(year, window)
    columns = {c: trans[c].to_numpy(np.float64) for c in trans.columns if "__" in c}
    for name, spec in specs.items():
        sexes = [SEXES.index(s) for s in spec.sex]
        mask = in_window & np.isin(sex_m, sexes) & (age >= spec.age_min) & (age <= spec.age_max)
        present = np.bincount(key[mask], minlength=n_keys) > 0  # kommun-years with cells
        for outcome in TRANSITION_OUTCOMES:
            if outcome not in wanted or name not in TRANSITIONS[outcome].populations:
                continue
            sums = {
                x: np.bincount(
                    key[mask],
                    weights=columns[f"{outcome}__{x}"][mask],
                    minlength=n_keys,
                )
                for x in ("den", "num", "left", "moved")
            }
            built = present & (sums["den"] > 0)
            # a kommun-year with nobody in the origin state has no share; if it lies inside
            # the kommun's years, the series would have a gap, which no estimator accepts: the
            # kommun is left out of this series (reported), as with suppressed small cells
            grid = built.reshape(-1, span)
            first = np.where(grid.any(axis=1), grid.argmax(axis=1), 0)
            last = np.where(grid.any(axis=1), span - 1 - grid[:, ::-1].argmax(axis=1), -1)
            gappy = np.flatnonzero(grid.sum(axis=1) != np.maximum(last - first + 1, 0))
            dropped = grid[gappy].sum()
            grid[gappy] = False
            keep = np.flatnonzero(grid.reshape(-1))
            summary.append(
                {
                    "population": name,
                    "outcome": outcome,
                    "denominator": int(sums["den"][present].sum()),
                    "numerator": int(sums["num"][present].sum()),
                    "left": int(sums["left"][present].sum()),
                    "moved": int(sums["moved"][present].sum()),
                    "not_built": int((present & (sums["den"] == 0)).sum()),
                    "kommuner_left_out": ", ".join(codes[gappy]),
                    "rows_left_out": int(dropped),
                }
            )
            k_of, y_of = np.divmod(keep, span)
            rows.append(
                pd.DataFrame(
                    {
                        "kommun_kod": codes[k_of],
                        "year": (y_of + y0).astype(np.int64),
                        "population": name,
                        "outcome": outcome,
                        "numerator": sums["num"][keep],
                        "denominator": sums["den"][keep],
                    }
                )
            )
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return frame, pd.DataFrame(summary, columns=_SUMMARY_COLUMNS)


def _call_build_panel(
    numerators: pd.DataFrame, population: pd.DataFrame, cohorts: pd.DataFrame | None, **kw: Any
):
    # build_panel may require outcome_only=True to build without a calendar (issue 11)
    if cohorts is None and "outcome_only" in inspect.signature(build_panel).parameters:
        kw["outcome_only"] = True
    return build_panel(numerators, population, cohorts, **kw)


def _mark_duplicates(eng: Any) -> list[int]:
    """Table ``md``: the validated rows ``md0`` with repeated person-years marked; returns the
    years that have rows."""
    # which years have rows (a cheap aggregate); engines that bound memory by working one
    # year at a time (DuckDB) loop over them
    years_present = (
        eng.query("SELECT DISTINCT year FROM md0 WHERE pkey IS NOT NULL ORDER BY year")["year"]
        .astype(np.int64)
        .tolist()
    )
    if eng.by_year:
        duplicates = pd.concat(
            [eng.query(duplicates_sql("md0", y)) for y in years_present]
            or [pd.DataFrame({"pkey": []})],
            ignore_index=True,
        )
    else:
        duplicates = eng.query(duplicates_sql("md0"))
    if len(duplicates):
        eng.register_frame("dups", duplicates.astype({"pkey": np.int64}))
        eng.materialise("md", mark_duplicates_sql("md0", "dups"))
        eng.drop("md0")
    else:
        eng.alias("md", "md0")
    return years_present


def _rejections(
    eng: Any, counts: pd.DataFrame, strict: bool, source: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows rejected per reason, up to SHOW example rows per reason); under ``strict`` any
    rejected row raises :class:`MicrodataValidationError` with the counts and examples."""
    reasons = counts["reason"].to_numpy(np.int64)
    rejected = pd.DataFrame(
        [
            {
                "reason": name,
                "description": text,
                "n_rows": int(counts.loc[reasons == code, "n_rows"].sum()),
            }
            for code, (name, text) in REJECT_REASONS.items()
        ]
    )
    bad = [int(c) for c in REJECT_REASONS if (reasons == c).any()]
    examples = pd.concat(
        [
            eng.query(
                "SELECT person_id, year, raw_code, age, reason FROM md "
                f"WHERE reason = {code} ORDER BY person_id, year LIMIT {SHOW}"
            )
            for code in bad
        ]
        or [pd.DataFrame(columns=["person_id", "year", "raw_code", "age", "reason"])],
        ignore_index=True,
    )
    if len(examples):
        names = {code: name for code, (name, _) in REJECT_REASONS.items()}
        examples["reason"] = examples["reason"].astype(int).map(names)
    if strict and bad:
        raise MicrodataValidationError(
            f"{int(rejected['n_rows'].sum())} person-year rows rejected in "
            f"{source.describe()}:\n{rejected[rejected['n_rows'] > 0].to_string(index=False)}"
            f"\nexamples:\n{examples.to_string(index=False)}"
        )
    return rejected, examples


def _query_transitions(
    eng: Any, age_min: int, age_max: int, last_year: int, years_present: list[int]
) -> pd.DataFrame:
    """Persons followed from year t-1 to t, year by year where the engine works that way."""
    if eng.by_year:
        pairs = [y + 1 for y in years_present if y < last_year]
        return pd.concat(
            [eng.query(transitions_sql(age_min, age_max, last_year, year=y)) for y in pairs]
            or [eng.query(transitions_sql(age_min, age_max, last_year))],
            ignore_index=True,
        )
    else:
        return eng.query(transitions_sql(age_min, age_max, last_year))


def _add_transitions(
    panel: pd.DataFrame,
    trans: pd.DataFrame | None,
    specs: Mapping[str, Any],
    wanted: Sequence[str],
    codes: np.ndarray,
    window: np.ndarray | None,
    notes: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The panel with the transition outcomes' rows appended (kommun attributes from the ISF
    rows) and the per-outcome transition summary; what is not built is added to ``notes``."""
    if trans is None:
        return panel, pd.DataFrame(columns=_SUMMARY_COLUMNS)
    rows, summary = _transition_rows(trans, specs, wanted, codes, window)
    if len(rows):
        attributes = panel.drop_duplicates("kommun_kod")[
            [
                "kommun_kod",
                "kommun",
                "lan_kod",
                "cohort",
                "forbund",
                "cluster_forbund",
                "cluster_lan",
            ]
        ]
        merged = rows.merge(attributes, on="kommun_kod", how="inner")
        if len(merged) < len(rows):
            notes.append(
                f"{len(rows) - len(merged)} transition rows of kommuner without ISF panel "
                "rows were not built."
            )
        merged["share"] = 100.0 * merged["numerator"] / merged["denominator"]
        merged["weight"] = merged["denominator"]
        merged["cluster_kommun"] = merged["kommun_kod"]
        merged = merged[list(panel.columns)].astype(panel.dtypes.to_dict())
        panel = pd.concat([panel, merged], ignore_index=True)
    if int(summary["not_built"].sum()):
        notes.append(
            f"{int(summary['not_built'].sum())} transition kommun-years had nobody in the "
            "origin state and were not built (see report.transitions)."
        )
    left_out = int(summary["rows_left_out"].sum())
    if left_out:
        notes.append(
            f"{left_out} transition rows left out: kommuner whose series would have a gap "
            "(a year with nobody in the origin state) are left out of that series "
            "(report.transitions.kommuner_left_out)."
        )
    return panel, summary


def _ordered(panel: pd.DataFrame, specs: Mapping[str, Any], wanted: Sequence[str]) -> pd.DataFrame:
    """The wanted outcomes' rows by population, outcome (ISF, then transitions), kommun, year."""
    if not set(wanted) >= set(OUTCOMES):
        panel = panel[panel["outcome"].isin(wanted)]
    pop_rank = {p: i for i, p in enumerate(specs)}
    out_rank = {o: i for i, o in enumerate([*OUTCOMES, *TRANSITION_OUTCOMES])}
    panel = (
        panel.assign(
            _p=panel["population"].map(pop_rank).to_numpy(),
            _o=panel["outcome"].map(out_rank).to_numpy(),
        )
        .sort_values(["_p", "_o", "kommun_kod", "year"], kind="stable")
        .drop(columns=["_p", "_o"])
        .reset_index(drop=True)
    )
    return panel


def _accepted(
    counts: pd.DataFrame, reasons: np.ndarray, codes: np.ndarray, source: Any
) -> tuple[pd.DataFrame, int, int]:
    """(historical codes harmonised per code and year, valid rows outside the ages, last year)
    of the accepted rows; raises when no row is valid."""
    ok = counts[reasons == 0]
    if ok.empty:
        raise MicrodataError(f"no valid person-year rows in {source.describe()}")
    changed = ok[ok["raw_code"].notna()]
    altered = (
        changed.assign(kommun_kod=codes[changed["kc"].to_numpy(np.int64)])
        .groupby(["raw_code", "kommun_kod", "year"], as_index=False)["n_rows"]
        .sum()
    )
    outside = int(ok.loc[ok["in_ages"] == 0, "n_rows"].sum())
    last_year = int(ok["year"].max())
    return altered, outside, last_year


def _check_calendar_args(cohorts: pd.DataFrame | None, outcome_only: bool) -> None:
    """Either an adoption calendar or ``outcome_only``, not both and not neither."""
    if cohorts is None and not outcome_only:
        raise ValueError(
            "build_microdata_panel needs the adoption calendar: pass cohorts= (kommun_kod, "
            "cohort, forbund; e.g. finsam_eval.registry.calendar_to_cohorts(calendar)), or ask "
            "for a panel of outcomes only with outcome_only=True"
        )
    if cohorts is not None and outcome_only:
        raise ValueError("cohorts= and outcome_only=True contradict each other; pass one")


def build_microdata_panel(
    path: Any,
    cohorts: pd.DataFrame | None = None,
    *,
    outcome_only: bool = False,
    engine: str | Any = "duckdb",
    memory_limit: str = "2GB",
    threads: int | None = None,
    years: Iterable[int] | None = None,
    populations: Sequence[str] | None = None,
    outcomes: Sequence[str] | None = None,
    transitions: bool = True,
    format: str | None = None,
    strict: bool = False,
    partial_coverage: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BuiltMicroPanel:
    """Build the long kommun-year panel from person-year register microdata.

    Parameters
    ----------
    path
        A parquet or CSV file, or a folder of them (hive-partitioned or not), with the columns
        of :data:`~finsam_eval.microdata.schema.MICRODATA_COLUMNS` (docs/microdata.md).
    cohorts
        The adoption calendar as ``build_panel`` takes it (``kommun_kod``, ``cohort``,
        ``forbund``). Required unless ``outcome_only``.
    outcome_only
        Build without a calendar (cohort 0 for every kommun as a placeholder); must be asked
        for, because such a panel looks valid but makes every estimate meaningless.
    engine
        ``"duckdb"`` (default; embedded, out of core), ``"spark"`` (a local session; pass a
        :class:`~finsam_eval.microdata.engines.SparkEngine` to use a cluster's session), or an
        engine object.
    memory_limit, threads
        DuckDB settings (ignored by other engines): beyond ``memory_limit`` DuckDB spills to
        disk.
    years
        Years of the panel (rows of other years are excluded and reported by ``build_panel``;
        a transition row of year t needs year t−1 in the data).
    populations
        Population names (default: the five ISF populations).
    outcomes
        ISF and transition outcome names to keep (default: all).
    transitions
        Build the transition outcomes (default True).
    format
        ``"parquet"`` or ``"csv"``; None infers it.
    strict
        Raise :class:`MicrodataValidationError` if any row is rejected, instead of excluding and
        reporting it.
    partial_coverage
        Passed to ``build_panel``.
    progress
        Called with a message at each step (the CLI prints them).

    Returns
    -------
    BuiltMicroPanel
        ``.panel`` in the format of docs/architecture.md — for the ISF outcomes exactly
        ``build_panel``'s panel from the same counts — followed, within each population, by the
        transition outcomes; ``.report`` a :class:`MicrodataReport`.

    Raises
    ------
    MicrodataError
        Unreadable input or missing columns.
    MicrodataValidationError
        Rejected rows under ``strict=True``.
    ValueError
        No ``cohorts`` and not ``outcome_only``; unknown names or engine.
    """
    _check_calendar_args(cohorts, outcome_only)
    specs = resolve_populations(populations)
    wanted = _resolve_outcomes(outcomes, transitions)
    window = None if years is None else np.unique(np.asarray(list(years), dtype=np.int64))
    say = progress or (lambda message: None)
    timings: dict[str, float] = {}
    source = find_microdata(path, format)
    options = {"memory_limit": memory_limit, "threads": threads} if engine == "duckdb" else {}
    eng = make_engine(engine, **options)
    registry = kommuner().sort_values("kommun_kod").reset_index(drop=True)
    codes = registry["kommun_kod"].to_numpy(dtype=object)
    age_min = min(s.age_min for s in specs.values())
    age_max = max(s.age_max for s in specs.values())
    try:
        start = time.perf_counter()
        say(f"reading and validating {source.describe()} on {eng.name}")
        kinds = eng.register_source(source)
        eng.register_frame("codes", _code_table(codes))
        eng.materialise("md0", validated_sql(kinds))
        years_present = _mark_duplicates(eng)
        counts = eng.query(counts_sql(age_min, age_max))
        timings["validate"] = time.perf_counter() - start
        reasons = counts["reason"].to_numpy(np.int64)
        n_rows = int(counts["n_rows"].sum())
        rejected, examples = _rejections(eng, counts, strict, source)
        altered, outside, last_year = _accepted(counts, reasons, codes, source)

        start = time.perf_counter()
        say("counting persons by kommun, year, sex and age")
        cells = eng.query(cells_sql(age_min, age_max))
        timings["cells"] = time.perf_counter() - start
        trans = None
        if any(o in TRANSITION_OUTCOMES for o in wanted):
            start = time.perf_counter()
            say("following persons from year t−1 to t (transitions)")
            trans = _query_transitions(eng, age_min, age_max, last_year, years_present)
            timings["transitions"] = time.perf_counter() - start
        engine_text = f"{eng.name} {eng.settings}"
    finally:
        eng.close()

    start = time.perf_counter()
    say("assembling the panel")
    isf = [o for o in wanted if o in OUTCOMES] or list(OUTCOMES)
    numerators, population = microdata_cells(cells, codes, specs, isf)
    built = _call_build_panel(
        numerators,
        population,
        cohorts,
        years=window,
        populations=list(specs),
        outcomes=isf,
        partial_coverage=partial_coverage,
        validate=False,  # the whole panel, transitions included, is validated below
    )
    panel = built.panel
    notes = [
        "Counts are persons: the numerator of a population and outcome is the number of persons "
        "in the population with the flag, the denominator the number of persons in it.",
    ]
    panel, summary = _add_transitions(panel, trans, specs, wanted, codes, window, notes)
    panel = _ordered(panel, specs, wanted)
    validate_panel(panel)
    timings["assemble"] = time.perf_counter() - start
    report = MicrodataReport(
        source=source.describe(),
        engine=engine_text,
        n_rows=n_rows,
        rejected=rejected,
        examples=examples,
        altered=altered,
        outside_ages=outside,
        transitions=summary,
        panel_report=built.report,
        timings=timings,
        notes=notes,
    )
    return BuiltMicroPanel(panel, report)
