"""Checks of the raw source tables and of the built panel, with errors that name the bad rows.

Every check collects *all* offending rows and reports the first few of them (kommun code, year
and the offending value) with the total count, so that a user can find them in the source file.
Checks that depend on each other run in stages: missing columns first (nothing else can be
checked without them), then the values of single cells (numbers, years, codes, sexes, age
bands), then checks across rows (unknown kommuner, duplicate keys, gaps).

The builder (:func:`finsam_eval.panel.build_panel`) uses the same normalisation, so the tables it
accepts are exactly the ones :func:`validate_numerators` and :func:`validate_population` accept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import SEXES, parse_age_band
from finsam_eval.registry import UnknownKommunError, harmonise_codes, kommun_code, kommuner

__all__ = [
    "COHORT_COLUMNS",
    "NUMERATOR_COLUMNS",
    "PANEL_COLUMNS",
    "POPULATION_COLUMNS",
    "PanelValidationError",
    "Problem",
    "validate_cohorts",
    "validate_numerators",
    "validate_panel",
    "validate_population",
]

#: Required columns of the numerator source table (docs/architecture.md).
NUMERATOR_COLUMNS: tuple[str, ...] = ("kommun_kod", "year", "sex", "age_band", "outcome", "count")
#: Required columns of the population source table (docs/architecture.md).
POPULATION_COLUMNS: tuple[str, ...] = ("kommun_kod", "year", "sex", "age", "population")
#: Required columns of a cohorts table (``forbund`` is optional and defaults to "").
COHORT_COLUMNS: tuple[str, ...] = ("kommun_kod", "cohort")
#: Columns of the built panel, in order (docs/architecture.md).
PANEL_COLUMNS: tuple[str, ...] = (
    "kommun_kod",
    "kommun",
    "lan_kod",
    "year",
    "population",
    "outcome",
    "numerator",
    "denominator",
    "share",
    "cohort",
    "forbund",
    "weight",
    "cluster_kommun",
    "cluster_forbund",
    "cluster_lan",
)

SHOW = 10  # offending rows shown in a message; the total is always given
_CODE = re.compile(r"^(\d{1,4})(?:\s*[-_:/. ]\s*(\S.*))?$")
_SHARE_TOLERANCE = 1e-6


@dataclass
class Problem:
    """One failed check: which table, what is wrong, and every offending row.

    Attributes
    ----------
    table
        ``"numerators"``, ``"population"``, ``"cohorts"`` or ``"panel"``.
    check
        Short identifier of the check (``"negative"``, ``"duplicate_keys"``, ...).
    message
        One-line description.
    rows
        All offending rows (input row position ``row`` where it applies, key columns and the
        offending value).
    """

    table: str
    check: str
    message: str
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    def render(self, max_rows: int = SHOW) -> str:
        """The message followed by up to ``max_rows`` offending rows and the total count."""
        n = len(self.rows)
        head = f"{self.table}: {self.message}"
        if n == 0:
            return head
        shown = self.rows.head(max_rows).to_string(index=False)
        shown = "\n".join("    " + line for line in shown.splitlines())
        more = f" (showing {min(n, max_rows)} of {n})" if n > max_rows else f" ({n} in total)"
        return f"{head}{more}:\n{shown}"


class PanelValidationError(ValueError):
    """A source table or panel failed validation; the message names the offending rows.

    Attributes
    ----------
    problems
        The failed checks, each with all its offending rows in ``Problem.rows``.
    """

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        body = "\n".join(p.render() for p in self.problems)
        super().__init__(f"{len(self.problems)} validation problem(s):\n{body}")

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def checks(self) -> list[str]:
        """Identifiers of the failed checks."""
        return [p.check for p in self.problems]


def positions(values: np.ndarray | pd.Series, labels: Sequence[object]) -> np.ndarray:
    """Position of each value in ``labels`` (-1 when absent or missing).

    Factorises first and looks up the few distinct values in a dict: ``Index.get_indexer``
    would cast hundreds of thousands of strings, ``np.isin`` would sort object arrays.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = {label: i for i, label in enumerate(labels)}
    mapped = np.array([*(lookup.get(u, -1) for u in uniques), -1], dtype=np.int64)
    return mapped[codes]


def isin(values: np.ndarray | pd.Series, allowed: Iterable[object]) -> np.ndarray:
    """Membership test through :func:`positions`."""
    return positions(values, list(allowed)) >= 0


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise PanelValidationError(problems)


@dataclass
class _Spec:
    table: str
    required: tuple[str, ...]
    value: str
    cell: str  # "age" or "age_band"


_SPECS = {
    "numerators": _Spec("numerators", NUMERATOR_COLUMNS, "count", "age_band"),
    "population": _Spec("population", POPULATION_COLUMNS, "population", "age"),
}


@dataclass
class NormalisedTable:
    """A source table after normalisation (internal to the panel layer).

    ``frame`` has one row per input row, in input order: ``row`` (input position), ``kommun_kod``
    (current 4-character code), ``raw_code`` (as given, normalised to 4 characters),
    ``stadsdel`` ("" for kommun-level rows), ``year``, ``sex``, ``age`` or ``age_band`` (and
    ``outcome`` for numerators) and ``value``. ``code_changes`` lists harmonised (kommun, year)
    pairs with their row counts.
    """

    table: str
    frame: pd.DataFrame
    code_changes: pd.DataFrame
    has_stadsdel: bool


def _missing_columns(frame: pd.DataFrame, required: Iterable[str], table: str) -> list[Problem]:
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return []
    return [
        Problem(
            table,
            "missing_columns",
            f"missing required column(s) {missing}; the table has {list(map(str, frame.columns))}",
            pd.DataFrame({"missing_column": missing}),
        )
    ]


def _as_numeric(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _offending(context: pd.DataFrame, mask: np.ndarray, extra: dict[str, object]) -> pd.DataFrame:
    """Rows of ``context`` under ``mask`` with their input position and the extra columns."""
    index = np.flatnonzero(mask)
    shown = context.iloc[index].copy()
    shown.insert(0, "row", index)
    for name, values in extra.items():
        shown[name] = np.asarray(values)[index] if not np.isscalar(values) else values
    return shown.reset_index(drop=True)


def _flag(
    problems: list[Problem],
    table: str,
    context: pd.DataFrame,
    check: str,
    description: str,
    mask: np.ndarray,
    extra: dict[str, object] | None = None,
) -> None:
    """Add the problem ``check`` of ``table`` listing the rows under ``mask``, if there are any
    (:func:`_offending` shows them with ``context``)."""
    if mask.any():
        problems.append(Problem(table, check, description, _offending(context, mask, extra or {})))


def _split_codes(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kommun codes and stadsdel suffixes of a code column; work on unique values for speed.

    Returns (code, suffix, bad) arrays: 4-character codes ("" when unusable), the stadsdel part
    of codes like "1480-03" ("" otherwise) and a mask of values that are not codes.
    """
    positions, uniques = pd.factorize(raw, use_na_sentinel=True)
    codes, suffixes, bad = [], [], []
    for value in uniques:
        text = str(value).strip()
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))  # codes read as numbers: 180.0 → "0180"
        match = _CODE.match(text)
        if match is None:
            codes.append("")
            suffixes.append("")
            bad.append(True)
        else:
            codes.append(match.group(1).zfill(4))
            suffixes.append(match.group(2) or "")
            bad.append(False)
    # one extra slot for missing values (position -1)
    codes_arr = np.array([*codes, ""], dtype=object)
    suffix_arr = np.array([*suffixes, ""], dtype=object)
    bad_arr = np.array([*bad, True], dtype=bool)
    return codes_arr[positions], suffix_arr[positions], bad_arr[positions]


def _strings(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Stripped strings of a column (on unique values) and a mask of missing values."""
    positions, uniques = pd.factorize(raw, use_na_sentinel=True)
    values = np.array([*(str(u).strip() for u in uniques), ""], dtype=object)
    return values[positions], positions < 0


def _cell_columns(
    frame: pd.DataFrame, spec: _Spec, table: str, context: pd.DataFrame, problems: list[Problem]
) -> dict[str, object]:
    """The cell columns of a source table (``age``; or ``age_band`` and ``outcome``), checked.

    Problems found are appended to ``problems``.
    """
    columns: dict[str, object] = {}
    flag = functools.partial(_flag, problems, table, context)
    if spec.cell == "age":
        age = _as_numeric(frame["age"]).to_numpy()
        bad_age = np.isnan(age) | (age != np.round(age)) | (age < 0)
        flag("bad_age", "age values that are not whole, non-negative single years", bad_age)
        columns["age"] = np.where(bad_age, -1, age).astype(np.int64)
    else:
        band, band_missing = _strings(frame["age_band"])
        bad_band = band_missing.copy()
        for label in pd.unique(band[~band_missing]):
            try:
                parse_age_band(label)
            except ValueError:
                bad_band |= band == label
        flag("bad_age_band", "age_band values not of the form '19-24'", bad_band)
        outcome, outcome_missing = _strings(frame["outcome"])
        flag("missing_outcome", "rows without an outcome", outcome_missing | (outcome == ""))
        columns["age_band"] = band
        columns["outcome"] = outcome
    return columns


def _normalise(frame: pd.DataFrame, table: str) -> NormalisedTable:
    """Check cell values and bring a source table to the internal normal form.

    Raises
    ------
    PanelValidationError
        Missing columns; non-numeric, missing or negative values; non-integer years or ages;
        unknown sexes, malformed age bands or kommun codes; unknown kommun codes after
        harmonisation; duplicate keys.
    """
    spec = _SPECS[table]
    _raise(_missing_columns(frame, spec.required, table))
    problems: list[Problem] = []
    n = len(frame)
    context = frame[[c for c in spec.required if c != spec.value]]
    flag = functools.partial(_flag, problems, table, context)

    code, suffix, bad_code = _split_codes(frame["kommun_kod"])
    flag(
        "bad_code",
        "kommun_kod values that are not 4-digit kommun codes (or 'code-stadsdel')",
        bad_code,
    )
    if "stadsdel" in frame.columns:
        stadsdel, _ = _strings(
            frame["stadsdel"].astype(object).where(frame["stadsdel"].notna(), "")
        )
        stadsdel = np.where(stadsdel == "", suffix, stadsdel)
    else:
        stadsdel = suffix

    year = _as_numeric(frame["year"])
    year_values = year.to_numpy()
    bad_year = np.isnan(year_values)
    flag("non_numeric_year", "year values that are missing or not numbers", bad_year)
    fractional = ~bad_year & (year_values != np.round(year_values))
    flag("non_integer_year", "year values that are not whole years", fractional)

    value = _as_numeric(frame[spec.value]).to_numpy()
    bad_value = np.isnan(value) | np.isinf(value)
    flag(
        "non_numeric",
        f"{spec.value!r} values that are missing or not numbers (e.g. '..', 'x')",
        bad_value,
        {spec.value: frame[spec.value].to_numpy()},
    )
    negative = ~bad_value & (value < 0)
    flag("negative", f"negative {spec.value!r} values", negative, {spec.value: value})

    sex, sex_missing = _strings(frame["sex"])
    bad_sex = sex_missing | ~isin(sex, SEXES)
    flag("bad_sex", f"sex values other than {list(SEXES)}", bad_sex)

    columns = _cell_columns(frame, spec, table, context, problems)
    _raise(problems)

    years = year_values.astype(np.int64)
    harmonised, changes = _harmonise(code, years)
    data = {
        "row": np.arange(n, dtype=np.int64),
        "kommun_kod": harmonised,
        "raw_code": code,
        "stadsdel": stadsdel,
        "year": years,
        "sex": sex,
        **columns,
        "value": value,
    }
    # object columns: the builder works on numpy arrays, so a round trip through the string
    # dtype would only cost time (it dominates the build on 560 000 rows otherwise)
    normal = pd.DataFrame(
        {
            name: pd.Series(values, dtype=object if values.dtype == object else values.dtype)
            for name, values in data.items()
        }
    )
    result = NormalisedTable(table, normal, changes, bool((stadsdel != "").any()))
    _raise(_unknown_codes(result))
    _raise(_duplicates(result))
    return result


def _harmonise(code: np.ndarray, year: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Map historical codes (Heby's 1917 up to 2006) to current ones, on unique (code, year)."""
    code_pos, code_uniques = pd.factorize(code)
    y0 = int(year.min()) if len(year) else 0
    pair_key = code_pos.astype(np.int64) * (int(year.max()) - y0 + 1 if len(year) else 1) + (
        year - y0
    )
    _, first, key = np.unique(pair_key, return_index=True, return_inverse=True)
    unique_pairs = pd.DataFrame(
        {"kommun_kod": code[first], "year": year[first]}, index=pd.RangeIndex(len(first))
    )
    harmonised, changes = harmonise_codes(unique_pairs, "kommun_kod", "year")
    new_code = harmonised["kommun_kod"].to_numpy(dtype=object)[key]
    if changes.empty:
        return new_code, pd.DataFrame(columns=["old_code", "new_code", "year", "reason", "n_rows"])
    counts = np.bincount(key, minlength=len(unique_pairs))
    changes = changes.assign(n_rows=counts[changes["row"].to_numpy()]).drop(columns="row")
    return new_code, changes.reset_index(drop=True)


def _suggest(code: str, year: int) -> str:
    """A hint for an unknown code: the registry's own explanation, or the nearest codes."""
    try:
        kommun_code(code, year)
    except UnknownKommunError as error:
        hint = str(error)
        if "historical" in hint or "did not exist" in hint:
            return hint
    table = kommuner()
    names = dict(zip(table["kommun_kod"], table["kommun"], strict=True))
    if not code.isdigit():
        return "not a kommun code"
    # nearest codes numerically: neighbouring codes are neighbouring kommuner in the same län
    near = sorted(names, key=lambda c: (abs(int(c) - int(code)), c))[:3]
    return "nearest: " + ", ".join(f"{c} ({names[c]})" for c in near)


def _known_codes() -> np.ndarray:
    return kommuner()["kommun_kod"].to_numpy(dtype=object)


def _unknown_codes(table: NormalisedTable) -> list[Problem]:
    frame = table.frame
    unknown = ~isin(frame["kommun_kod"].to_numpy(dtype=object), _known_codes())
    if not unknown.any():
        return []
    rows = frame.loc[unknown, ["row", "raw_code", "stadsdel", "year"]].rename(
        columns={"raw_code": "kommun_kod"}
    )
    if not (rows["stadsdel"] != "").any():
        rows = rows.drop(columns="stadsdel")
    summary = (
        rows.groupby(["kommun_kod", "year"], sort=True)
        .agg(first_row=("row", "min"), n_rows=("row", "size"))
        .reset_index()
    )
    summary["suggestion"] = [
        _suggest(c, int(y)) if i < SHOW else ""
        for i, (c, y) in enumerate(zip(summary["kommun_kod"], summary["year"], strict=True))
    ]
    codes = sorted(summary["kommun_kod"].unique())
    return [
        Problem(
            table.table,
            "unknown_code",
            f"{len(rows)} rows with unknown kommun code(s) {codes[:SHOW]} "
            "(not among the 290 kommuner after harmonising historical codes); "
            "one line per code and year",
            summary,
        )
    ]


def _key_columns(table: NormalisedTable) -> list[str]:
    cell = ["age"] if table.table == "population" else ["age_band", "outcome"]
    return ["kommun_kod", "stadsdel", "year", "sex", *cell]


def _duplicates(table: NormalisedTable) -> list[Problem]:
    frame = table.frame
    keys = _key_columns(table)
    problems = []
    duplicated = frame.duplicated(keys, keep=False).to_numpy()
    if duplicated.any():
        rows = frame.loc[duplicated, ["row", "raw_code", *keys]].sort_values(keys, kind="stable")
        if not table.has_stadsdel:
            rows = rows.drop(columns="stadsdel")
        problems.append(
            Problem(
                table.table,
                "duplicate_keys",
                f"duplicate keys ({', '.join(k for k in keys if k != 'stadsdel')}); "
                "kommun_kod is after harmonisation, raw_code as given",
                rows.reset_index(drop=True),
            )
        )
    if table.has_stadsdel:
        # a kommun total and its districts for the same cell would be counted twice
        cell = [k for k in keys if k != "stadsdel"]
        is_district = frame["stadsdel"] != ""
        both = (
            frame.assign(_d=is_district)
            .groupby(cell, sort=False)["_d"]
            .transform(lambda d: d.any() and not d.all())
            .to_numpy(dtype=bool)
        )
        if both.any():
            rows = frame.loc[both, ["row", *keys]].sort_values(keys, kind="stable")
            problems.append(
                Problem(
                    table.table,
                    "kommun_and_stadsdel",
                    "cells given both as a kommun total and by stadsdel (would be counted twice)",
                    rows.reset_index(drop=True),
                )
            )
    return problems


def _gaps(frame: pd.DataFrame, by: list[str], table: str) -> list[Problem]:
    """Missing years inside each group's first–last year span."""
    if frame.empty:
        return []
    spans = frame.groupby(by, sort=True, observed=True)["year"].agg(["min", "max", "nunique"])
    gapped = spans[spans["nunique"] < spans["max"] - spans["min"] + 1]
    if gapped.empty:
        return []
    rows = gapped.reset_index().rename(columns={"min": "first_year", "max": "last_year"})
    rows = rows.drop(columns="nunique")
    shown = rows.head(SHOW)
    missing = []
    for values in shown[by].itertuples(index=False):  # only the rows the message shows
        mask = np.ones(len(frame), dtype=bool)
        for column, value in zip(by, values, strict=True):
            mask &= frame[column].to_numpy() == value
        present = set(frame.loc[mask, "year"].tolist())
        lo, hi = min(present), max(present)
        missing.append(", ".join(str(y) for y in range(lo, hi + 1) if y not in present))
    rows["missing_years"] = missing + [""] * (len(rows) - len(missing))
    return [
        Problem(
            table,
            "gap",
            f"missing years inside the span of {', '.join(by)} (a gap)",
            rows,
        )
    ]


def table_gaps(table: NormalisedTable) -> list[Problem]:
    """Gap check of a normalised source table (per kommun; per kommun and outcome)."""
    by = ["kommun_kod", "outcome"] if table.table == "numerators" else ["kommun_kod"]
    return _gaps(table.frame, by, table.table)


def normalise_numerators(numerators: pd.DataFrame) -> NormalisedTable:
    """Validate and normalise a numerator table (internal; see :func:`validate_numerators`)."""
    return _normalise(numerators, "numerators")


def normalise_population(population: pd.DataFrame) -> NormalisedTable:
    """Validate and normalise a population table (internal; see :func:`validate_population`)."""
    return _normalise(population, "population")


def validate_numerators(numerators: pd.DataFrame) -> None:
    """Validate a raw numerator table (kommun_kod, year, sex, age_band, outcome, count).

    Parameters
    ----------
    numerators
        The numerator source table (docs/architecture.md). An optional ``stadsdel`` column, or
        codes like ``"1480-03"``, mark district rows (summed to the kommun by the builder).

    Raises
    ------
    PanelValidationError
        Missing columns, non-numeric or negative counts, non-integer years, unknown sexes or
        age bands, unknown kommun codes (with the nearest codes), duplicate keys, gaps.
    """
    table = normalise_numerators(numerators)
    _raise(table_gaps(table))


def validate_population(population: pd.DataFrame) -> None:
    """Validate a raw population table (kommun_kod, year, sex, age, population).

    Raises
    ------
    PanelValidationError
        As :func:`validate_numerators`, for the population table.
    """
    table = normalise_population(population)
    _raise(table_gaps(table))


def normalise_cohorts(cohorts: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Check a cohorts table's values; return it normalised (internal).

    The result has ``row``, ``raw_code``, ``kommun_kod`` (current code, "" when unknown),
    ``cohort`` (int64; missing → 0), ``forbund`` (str; missing → ""), ``cohort_missing`` and,
    when present, ``partial_coverage``. Unknown codes are not an error here: the builder reports
    them.
    """
    _raise(_missing_columns(cohorts, COHORT_COLUMNS, "cohorts"))
    problems: list[Problem] = []
    context = cohorts[[c for c in ("kommun_kod", "cohort", "forbund") if c in cohorts.columns]]
    flag = functools.partial(_flag, problems, "cohorts", context)
    code, _suffix, bad_code = _split_codes(cohorts["kommun_kod"])
    current = []
    known = set(_known_codes())
    for raw, bad in zip(code, bad_code, strict=True):
        if bad:
            current.append("")
        elif raw in known:
            current.append(raw)
        else:
            try:  # historical codes in a calendar (Heby 1917) map to the current code
                current.append(kommun_code(raw))
            except UnknownKommunError:
                current.append("")
    raw_cohort = cohorts["cohort"]
    value = _as_numeric(raw_cohort).to_numpy()
    missing = raw_cohort.isna().to_numpy() | (raw_cohort.astype(str).str.strip() == "").to_numpy()
    bad = ~missing & (np.isnan(value) | (value != np.round(value)) | (value < 0))
    flag("bad_cohort", "cohort values that are not whole, non-negative years (0 = never)", bad)
    if "forbund" in cohorts.columns:
        forbund, _ = _strings(
            cohorts["forbund"].astype(object).where(cohorts["forbund"].notna(), "")
        )
    else:
        forbund = np.full(len(cohorts), "", dtype=object)
    frame = pd.DataFrame(
        {
            "row": np.arange(len(cohorts), dtype=np.int64),
            "raw_code": np.where(bad_code, cohorts["kommun_kod"].astype(str).to_numpy(), code),
            "kommun_kod": np.array(current, dtype=object),
            "cohort": np.where(missing | bad, 0, np.nan_to_num(value)).astype(np.int64),
            "cohort_missing": missing,
            "forbund": forbund,
        }
    )
    if "partial_coverage" in cohorts.columns:
        note, _ = _strings(
            cohorts["partial_coverage"]
            .astype(object)
            .where(cohorts["partial_coverage"].notna(), "")
        )
        frame["partial_coverage"] = note
    known_rows = frame[frame["kommun_kod"] != ""]
    duplicated = known_rows["kommun_kod"].duplicated(keep=False)
    if duplicated.any():
        problems.append(
            Problem(
                "cohorts",
                "duplicate_keys",
                "kommuner listed more than once (kommun_kod after harmonisation)",
                known_rows.loc[duplicated, ["row", "raw_code", "kommun_kod", "cohort", "forbund"]]
                .sort_values(["kommun_kod", "row"])
                .reset_index(drop=True),
            )
        )
    return frame, problems


def validate_cohorts(cohorts: pd.DataFrame) -> None:
    """Validate a cohorts table (kommun_kod, cohort, optional forbund).

    Raises
    ------
    PanelValidationError
        Missing columns, non-integer or negative cohorts, kommuner listed twice, unknown codes.
    """
    frame, problems = normalise_cohorts(cohorts)
    unknown = frame["kommun_kod"] == ""
    if unknown.any():
        rows = frame.loc[unknown, ["row", "raw_code", "cohort", "forbund"]].reset_index(drop=True)
        rows["suggestion"] = [_suggest(str(c), 2020) for c in rows["raw_code"]]
        problems.append(Problem("cohorts", "unknown_code", "unknown kommun codes", rows))
    _raise(problems)


def _numeric_problems(panel: pd.DataFrame, columns: Sequence[str]) -> list[Problem]:
    problems = []
    context = panel[[c for c in ("population", "outcome", "kommun_kod", "year") if c in panel]]
    for column in columns:
        values = _as_numeric(panel[column]).to_numpy()
        bad = np.isnan(values) | np.isinf(values)
        if bad.any():
            problems.append(
                Problem(
                    "panel",
                    "non_numeric",
                    f"{column!r} values that are missing or not numbers",
                    _offending(context, bad, {column: panel[column].to_numpy()}),
                )
            )
    return problems


def validate_panel(panel: pd.DataFrame) -> None:
    """Validate a built kommun-year panel (the builder's output, or one read back from CSV).

    Parameters
    ----------
    panel
        A panel in the format of docs/architecture.md.

    Raises
    ------
    PanelValidationError
        Missing columns; unknown kommun codes; non-integer years; non-numeric numerator,
        denominator, share, weight or cohort; negative counts; numerator > denominator; shares
        outside [0, 100] or not equal to 100 · numerator / denominator; duplicate
        (population, outcome, kommun_kod, year) keys; gaps in a kommun's years within a series;
        cohort, förbund or clusters varying within a kommun.
    """
    _raise(_missing_columns(panel, PANEL_COLUMNS, "panel"))
    problems: list[Problem] = []
    keys = ["population", "outcome", "kommun_kod", "year"]
    context = panel[keys]
    unknown = ~panel["kommun_kod"].isin(_known_codes()).to_numpy(dtype=bool)
    if unknown.any():
        rows = _offending(context, unknown, {})
        rows["suggestion"] = [
            _suggest(str(c), 2020) if i < SHOW else "" for i, c in enumerate(rows["kommun_kod"])
        ]
        problems.append(Problem("panel", "unknown_code", "unknown kommun codes", rows))
    year = _as_numeric(panel["year"]).to_numpy()
    bad_year = np.isnan(year) | (year != np.round(year))
    if bad_year.any():
        problems.append(
            Problem(
                "panel",
                "non_integer_year",
                "year values that are not whole years",
                _offending(context, bad_year, {}),
            )
        )
    problems += _numeric_problems(panel, ["numerator", "denominator", "share", "weight", "cohort"])
    _raise(problems)

    num = panel["numerator"].to_numpy(dtype=float)
    den = panel["denominator"].to_numpy(dtype=float)
    share = panel["share"].to_numpy(dtype=float)
    cohort = panel["cohort"].to_numpy(dtype=float)
    for column, values in (("numerator", num), ("denominator", den)):
        negative = values < 0
        if negative.any():
            problems.append(
                Problem(
                    "panel",
                    "negative",
                    f"negative {column!r} values",
                    _offending(context, negative, {column: values}),
                )
            )
    above = num > den
    if above.any():
        problems.append(
            Problem(
                "panel",
                "numerator_above_denominator",
                "numerator larger than denominator",
                _offending(context, above, {"numerator": num, "denominator": den}),
            )
        )
    outside = (share < 0) | (share > 100)
    if outside.any():
        problems.append(
            Problem(
                "panel",
                "share_out_of_range",
                "shares outside [0, 100] percent",
                _offending(context, outside, {"share": share}),
            )
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = 100.0 * num / den
    inconsistent = ~outside & ~np.isclose(share, expected, rtol=_SHARE_TOLERANCE, atol=1e-9)
    if inconsistent.any():
        problems.append(
            Problem(
                "panel",
                "share_inconsistent",
                "share differs from 100 · numerator / denominator",
                _offending(
                    context, inconsistent, {"share": share, "expected": expected, "den": den}
                ),
            )
        )
    bad_cohort = (cohort < 0) | (cohort != np.round(cohort))
    if bad_cohort.any():
        problems.append(
            Problem(
                "panel",
                "bad_cohort",
                "cohort values that are not whole, non-negative years",
                _offending(context, bad_cohort, {"cohort": cohort}),
            )
        )
    duplicated = panel.duplicated(keys, keep=False).to_numpy()
    if duplicated.any():
        problems.append(
            Problem(
                "panel",
                "duplicate_keys",
                "duplicate (population, outcome, kommun_kod, year) rows",
                _offending(context, duplicated, {}).sort_values(keys, kind="stable"),
            )
        )
    constant = ["cohort", "forbund", "kommun", "lan_kod", "cluster_forbund", "cluster_lan"]
    varying = panel.groupby("kommun_kod", sort=True)[constant].nunique(dropna=False)
    varying = varying[(varying > 1).any(axis=1)]
    if not varying.empty:
        rows = varying.reset_index()
        rows["varying"] = [", ".join(c for c in constant if r[c] > 1) for _, r in rows.iterrows()]
        problems.append(
            Problem(
                "panel",
                "varies_within_kommun",
                "cohort, förbund, name, län or cluster varying within a kommun",
                rows[["kommun_kod", "varying"]],
            )
        )
    frame = panel[keys].assign(year=year.astype(np.int64))
    problems += _gaps(frame, ["population", "outcome", "kommun_kod"], "panel")
    _raise(problems)
