"""Raw source tables → validated long kommun-year panel, with a build report.

The builder works on integer codes and sorted numpy arrays throughout (no per-row Python), so the
full synthetic data (≈560 000 population rows, ≈250 000 numerator rows, 25 series) builds in
about a second. Steps:

1. *normalise and validate* both tables (:mod:`finsam_eval.panel.validation`): numbers, years,
   sexes, age bands, codes; historical codes are harmonised (Heby's 1917 up to 2006 → 0331);
   unknown codes and duplicate keys are errors;
2. *window*: rows for years outside ``years`` are excluded;
3. *select*: numerator rows for outcomes not built, and cells (sex × age band, sex × age) that no
   selected population uses, are excluded; every age band must lie wholly inside or outside
   each population's age range, and the bands inside must cover it exactly;
4. *gaps*: a kommun's years must be contiguous within its span;
5. *base cells*: rows are summed to (kommun, year, sex, band, outcome) and (kommun, year, sex,
   age) cells; this is where stadsdel rows (a ``stadsdel`` column or codes like "1480-03") are
   aggregated to their kommun. Rows are sorted by key first so that float sums do not depend on
   the input row order;
6. *assemble*: per population and outcome, numerator = sum over the population's sexes and the
   bands inside its range, denominator = sum over its sexes and single-year ages, share =
   100 · numerator / denominator. A panel row needs every numerator cell and every single-year
   age; rows that cannot be formed are reported (missing denominator, incomplete cells, zero
   population), and base cells that feed no panel row are excluded;
7. *cohorts and registry*: kommun name and län come from the registry (current values for
   every year, so that clusters are constant within a kommun), cohort and förbund from the
   cohorts table (kommuner missing from it: cohort 0, reported).

There is no analysis panel without an adoption calendar: ``cohorts`` is required, and a panel of
outcomes alone (cohort 0 as a placeholder for every kommun) must be asked for with
``outcome_only=True``. Building without either raises, because a panel in which every kommun is
"never a member" looks valid but makes every estimate meaningless (issue 11).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import OUTCOMES, POPULATIONS, SEXES, Population, parse_age_band
from finsam_eval.panel.report import BuildReport, empty_ledger, reconcile
from finsam_eval.panel.validation import (
    PANEL_COLUMNS,
    NormalisedTable,
    PanelValidationError,
    Problem,
    _suggest,
    normalise_cohorts,
    normalise_numerators,
    normalise_population,
    positions,
    table_gaps,
    validate_panel,
)
from finsam_eval.registry import kommun_code, kommuner

__all__ = ["NEVER_CLUSTER_PREFIX", "BuiltPanel", "build_panel", "empty_panel"]

#: Prefix of ``cluster_forbund`` for kommuner without a förbund: "none-0114" makes every
#: never-member its own cluster (rather than pooling all never-members into one huge cluster,
#: which would treat unrelated kommuner as correlated).
NEVER_CLUSTER_PREFIX = "none-"

KNIVSTA, UPPSALA, HEBY = "0330", "0380", "0331"

# Reasons for excluded input rows; code 0 = used. Step names in the second element.
_NUM_REASONS = {
    1: ("window", "year outside the requested years"),
    2: ("select", "outcome not built (not requested or not defined for a selected population)"),
    3: ("select", "sex and age band not in any selected population"),
    4: ("assemble", "missing denominator: no population rows for the kommun-year"),
    5: ("assemble", "feeds no panel row: other cells of the kommun-year are missing"),
}
_POP_REASONS = {
    1: ("window", "year outside the requested years"),
    2: ("select", "age or sex outside every selected population"),
    3: ("assemble", "no numerator rows for the kommun-year"),
    4: ("assemble", "feeds no panel row: incomplete cells or zero population"),
}
# Reasons a panel row cannot be formed.
_PANEL_REASONS = {
    1: "incomplete numerator: sex × age-band cells missing",
    2: "missing denominator: no population rows for the kommun-year",
    3: "incomplete denominator: single-year ages missing",
    4: "zero denominator: share undefined",
    5: "missing numerator: no cells for the series in a kommun-year with other outcomes",
}


@dataclass
class BuiltPanel:
    """The result of :func:`build_panel`.

    Attributes
    ----------
    panel
        The long kommun-year panel (columns :data:`~finsam_eval.panel.validation.PANEL_COLUMNS`).
    report
        The :class:`~finsam_eval.panel.report.BuildReport`.
    """

    panel: pd.DataFrame
    report: BuildReport

    def __iter__(self):  # allows ``panel, report = build_panel(...)``
        return iter((self.panel, self.report))


def resolve_populations(
    populations: Sequence[str] | Mapping[str, Population] | None,
) -> dict[str, Population]:
    """Population names (or a mapping name → Population) as an ordered name → Population map."""
    if populations is None:
        return dict(POPULATIONS)
    if isinstance(populations, Mapping):
        return dict(populations)
    if isinstance(populations, str):
        populations = [populations]
    unknown = [p for p in populations if p not in POPULATIONS]
    if unknown:
        raise ValueError(f"Unknown population(s) {unknown}; known: {list(POPULATIONS)}")
    return {p: POPULATIONS[p] for p in dict.fromkeys(populations)}


def _resolve_outcomes(outcomes: Sequence[str] | None) -> tuple[str, ...]:
    if outcomes is None:
        return OUTCOMES
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown:
        raise ValueError(f"Unknown outcome(s) {unknown}; known: {list(OUTCOMES)}")
    return tuple(o for o in OUTCOMES if o in outcomes)


def empty_panel() -> pd.DataFrame:
    """A panel with no rows and the panel's columns and dtypes."""
    frame = pd.DataFrame({c: pd.Series([], dtype="str") for c in PANEL_COLUMNS})
    for column in ("year", "cohort"):
        frame[column] = frame[column].astype(np.int64)
    for column in ("numerator", "denominator", "share", "weight"):
        frame[column] = frame[column].astype("float64")
    return frame


def _sorted_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique values of sorted ``keys`` with group starts and sizes."""
    if len(keys) == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    uniques, starts = np.unique(keys, return_index=True)
    sizes = np.diff(np.append(starts, len(keys)))
    return uniques, starts, sizes


def _group_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    if len(starts) == 0:
        return np.array([], dtype=float)
    return np.add.reduceat(values, starts)


@dataclass
class _Cells:
    """Base cells of one table: sorted keys, summed values and the input rows they came from."""

    key: np.ndarray  # sorted unique cell keys
    value: np.ndarray
    rows: np.ndarray  # input rows (positions) aggregated, in key order
    cell_of_row: np.ndarray  # per entry of ``rows``, its cell


def _base_cells(
    key: np.ndarray, value: np.ndarray, alive: np.ndarray, tiebreak: np.ndarray
) -> _Cells:
    rows = np.flatnonzero(alive)
    # sort by key, then by stadsdel, so that sums are independent of the input row order
    order = np.lexsort((tiebreak[rows], key[rows]))
    rows = rows[order]
    uniques, starts, sizes = _sorted_groups(key[rows])
    cell_of_row = np.repeat(np.arange(len(uniques)), sizes)
    return _Cells(uniques, _group_sum(value[rows], starts), rows, cell_of_row)


def _band_problems(
    specs: dict[str, Population],
    series: list[tuple[str, str]],
    bands_by_outcome: dict[str, list[str]],
) -> tuple[dict[tuple[str, str], list[str]], list[Problem]]:
    """Bands inside each series' population; problems for straddling, overlapping, gaps."""
    inside: dict[tuple[str, str], list[str]] = {}
    straddle, overlap, incomplete = [], [], []
    for name, outcome in series:
        spec = specs[name]
        labels = bands_by_outcome.get(outcome, [])
        chosen = []
        for label in labels:
            lo, hi = parse_age_band(label)
            if lo >= spec.age_min and hi <= spec.age_max:
                chosen.append((lo, hi, label))
            elif not (hi < spec.age_min or lo > spec.age_max):
                straddle.append((name, outcome, label, f"{spec.age_min}-{spec.age_max}"))
        chosen.sort()
        inside[(name, outcome)] = [label for _, _, label in chosen]
        if not labels:
            continue  # outcome absent: the series is not built (reported as a note)
        expected = spec.age_min
        for lo, hi, label in chosen:
            if lo < expected:
                overlap.append((name, outcome, label, f"{spec.age_min}-{spec.age_max}"))
            elif lo > expected:
                incomplete.append(
                    (name, outcome, f"{expected}-{lo - 1}", f"{spec.age_min}-{spec.age_max}")
                )
            expected = max(expected, hi + 1)
        if expected <= spec.age_max:
            incomplete.append(
                (name, outcome, f"{expected}-{spec.age_max}", f"{spec.age_min}-{spec.age_max}")
            )
    problems = []
    columns = ["population", "outcome", "age_band", "population_ages"]
    if straddle:
        problems.append(
            Problem(
                "numerators",
                "age_band_straddles",
                "age bands partly inside a population's age range (a band must lie wholly "
                "inside or outside it)",
                pd.DataFrame(straddle, columns=columns),
            )
        )
    if overlap:
        problems.append(
            Problem(
                "numerators",
                "age_bands_overlap",
                "overlapping age bands inside a population's range (counts would be summed twice)",
                pd.DataFrame(overlap, columns=columns),
            )
        )
    if incomplete:
        problems.append(
            Problem(
                "numerators",
                "age_bands_incomplete",
                "the age bands do not cover the population's range (pass populations=[...] to "
                "build only the populations the table supports)",
                pd.DataFrame(
                    incomplete, columns=["population", "outcome", "ages_missing", "population_ages"]
                ),
            )
        )
    return inside, problems


def _group_rows(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Row order sorting by ``columns`` (first is most significant) and the group starts."""
    order = np.lexsort(tuple(columns[::-1]))
    if len(order) == 0:
        return order, np.array([], dtype=np.int64)
    change = np.zeros(len(order), dtype=bool)
    change[0] = True
    for column in columns:
        ordered = column[order]
        change[1:] |= ordered[1:] != ordered[:-1]
    return order, np.flatnonzero(change)


def _ledger_lines(
    table: str,
    reasons: Mapping[int, tuple[str, str]],
    reason: np.ndarray,
    codes: np.ndarray,
    kc: np.ndarray,
    year: np.ndarray,
    value: np.ndarray,
    outcome: np.ndarray | None,
    detail: np.ndarray | None,
    detail_labels: Sequence[str],
    age: np.ndarray | None,
    outcome_list: Sequence[str],
) -> pd.DataFrame | None:
    """Ledger lines of the excluded input rows, one per reason × kommun × year × outcome."""
    excluded = np.flatnonzero(reason > 0)
    if len(excluded) == 0:
        return None
    minus = np.full(len(excluded), -1, dtype=np.int64)
    r = reason[excluded].astype(np.int64)
    o = minus if outcome is None else outcome[excluded]
    d = minus if detail is None else detail[excluded]
    order, starts = _group_rows([r, kc[excluded], year[excluded], o, d])
    rows = excluded[order]
    first = rows[starts]
    n_rows = np.diff(np.append(starts, len(rows)))
    amount = np.add.reduceat(value[rows], starts)
    r_first = reason[first]
    steps = np.array([reasons[int(x)][0] for x in r_first], dtype=object)
    texts = np.array([reasons[int(x)][1] for x in r_first], dtype=object)
    if age is not None:
        lo = np.minimum.reduceat(age[rows], starts).astype(str).astype(object)
        hi = np.maximum.reduceat(age[rows], starts).astype(str).astype(object)
        details = np.where(lo == hi, "age " + lo, "ages " + lo + "-" + hi)
    else:
        labels = np.array([*detail_labels, ""], dtype=object)
        details = labels[d[order][starts]]
    outcome_names = np.array([*outcome_list, ""], dtype=object)
    return pd.DataFrame(
        {
            "table": table,
            "step": steps,
            "action": "excluded",
            "reason": texts,
            "kommun_kod": codes[kc[first]],
            "year": year[first],
            "outcome": outcome_names[o[order][starts]],
            "n_rows": n_rows,
            "amount": amount,
            "detail": details,
        }
    )


def _code_change_lines(table: NormalisedTable, outcome_col: bool) -> pd.DataFrame | None:
    if table.code_changes.empty:
        return None
    frame = table.frame
    changed = (frame["raw_code"] != frame["kommun_kod"]).to_numpy()
    rows = frame.loc[changed]
    keys = ["raw_code", "kommun_kod", "year"] + (["outcome"] if outcome_col else [])
    grouped = rows.groupby(keys, sort=True)["value"].agg(["size", "sum"]).reset_index()
    events = {
        (o, int(y)): r
        for o, y, r in zip(
            table.code_changes["old_code"],
            table.code_changes["year"],
            table.code_changes["reason"],
            strict=True,
        )
    }
    return pd.DataFrame(
        {
            "table": table.table,
            "step": "harmonise",
            "action": "altered",
            "reason": "historical kommun code mapped to the current code",
            "kommun_kod": grouped["kommun_kod"],
            "year": grouped["year"],
            "outcome": grouped["outcome"] if outcome_col else "",
            "n_rows": grouped["size"],
            "amount": grouped["sum"],
            "detail": [
                f"{o} → {n}: {events.get((o, int(y)), '')}"
                for o, n, y in zip(
                    grouped["raw_code"], grouped["kommun_kod"], grouped["year"], strict=True
                )
            ],
        }
    )


def _stadsdel_lines(
    table: str,
    cells: _Cells,
    codes: np.ndarray,
    kc: np.ndarray,
    year: np.ndarray,
    value: np.ndarray,
    stadsdel_code: np.ndarray,
    outcome: np.ndarray | None,
    outcome_list: Sequence[str],
) -> pd.DataFrame | None:
    rows = cells.rows[stadsdel_code[cells.rows] > 0]
    if len(rows) == 0:
        return None
    frame = pd.DataFrame(
        {
            "kc": kc[rows],
            "year": year[rows],
            "o": -1 if outcome is None else outcome[rows],
            "sd": stadsdel_code[rows],
            "value": value[rows],
        }
    )
    grouped = (
        frame.groupby(["kc", "year", "o"], sort=True)
        .agg(n_rows=("value", "size"), amount=("value", "sum"), districts=("sd", "nunique"))
        .reset_index()
    )
    outcome_names = np.array([*outcome_list, ""], dtype=object)
    return pd.DataFrame(
        {
            "table": table,
            "step": "stadsdel",
            "action": "altered",
            "reason": "stadsdel rows summed to the kommun",
            "kommun_kod": codes[grouped["kc"].to_numpy()],
            "year": grouped["year"].to_numpy(),
            "outcome": outcome_names[grouped["o"].to_numpy()] if outcome is not None else "",
            "n_rows": grouped["n_rows"].to_numpy(),
            "amount": grouped["amount"].to_numpy(),
            "detail": grouped["districts"].astype(str).to_numpy() + " stadsdelar",
        }
    )


def _line(**values: object) -> dict[str, object]:
    base = {
        "table": "",
        "step": "",
        "action": "",
        "reason": "",
        "kommun_kod": "",
        "year": None,
        "outcome": "",
        "n_rows": 0,
        "amount": np.nan,
        "detail": "",
    }
    base.update(values)
    return base


def build_panel(
    numerators: pd.DataFrame,
    population: pd.DataFrame,
    cohorts: pd.DataFrame | None = None,
    years: Iterable[int] | None = None,
    populations: Sequence[str] | Mapping[str, Population] | None = None,
    outcomes: Sequence[str] | None = None,
    *,
    outcome_only: bool = False,
    partial_coverage: Mapping[str, str] | None = None,
    validate: bool = True,
) -> BuiltPanel:
    """Build the long kommun-year panel from the raw numerator and population tables.

    Parameters
    ----------
    numerators
        Columns ``kommun_kod``, ``year``, ``sex`` ("K"/"M"), ``age_band`` ("19-24", ...),
        ``outcome``, ``count`` (docs/architecture.md). Optional ``stadsdel`` column (or codes
        such as ``"1480-03"``) for district rows, which are summed to the kommun.
    population
        Columns ``kommun_kod``, ``year``, ``sex``, ``age`` (single years), ``population``;
        optional ``stadsdel`` as above.
    cohorts
        Columns ``kommun_kod``, ``cohort`` (first membership year, 0 = never) and optionally
        ``forbund`` (id, "" for never) and ``partial_coverage`` (note). Kommuner missing from it
        get cohort 0 and are reported; rows for unknown kommuner are reported and ignored.
        From an exact calendar: :func:`~finsam_eval.registry.calendar_to_cohorts`; for one
        calendar compatible with the documented facts: one draw of
        ``finsam_eval.registry.compatible_calendars``. Required unless ``outcome_only``.
    years
        Years to keep (any iterable, e.g. ``range(1998, 2019)``); rows for other years are
        excluded and reported. None keeps every year.
    populations
        Population names (a subset of :data:`~finsam_eval.panel.populations.POPULATIONS`, in the
        order wanted) or a mapping name → :class:`Population` for custom definitions.
        None: the five ISF populations.
    outcomes
        Outcomes to build (each only for the populations that define it). None: all.
    outcome_only
        Build a panel of outcomes without an adoption calendar: every kommun gets cohort 0 and
        no förbund as a placeholder (not a claim that no kommun is a member), and the report
        says so. For panels whose calendar is supplied later, e.g. a real-data panel file for
        the pipeline, which replaces the ``cohort`` column with the configured calendar's
        (``[design] calendar``). Cannot be combined with ``cohorts``.
    partial_coverage
        kommun (name or code) → note, for kommuner only partly covered by their förbund
        (Göteborg's förbund cover stadsdelar). Passed through to the report.
    validate
        Run :func:`~finsam_eval.panel.validation.validate_panel` on the result.

    Returns
    -------
    BuiltPanel
        ``.panel``: one row per population × outcome × kommun × year, columns
        ``kommun_kod, kommun, lan_kod, year, population, outcome, numerator, denominator, share,
        cohort, forbund, weight, cluster_kommun, cluster_forbund, cluster_lan``; sorted by
        population and outcome (in the order of ``POPULATIONS``/``OUTCOMES``), kommun_kod and
        year, with a RangeIndex. ``weight`` equals ``denominator``; ``cluster_forbund`` is the
        förbund id, or ``"none-<kommun_kod>"`` for kommuner without one (own cluster).
        ``.report``: the :class:`~finsam_eval.panel.report.BuildReport`.

    Raises
    ------
    PanelValidationError
        Invalid inputs (see :mod:`finsam_eval.panel.validation`), age bands that straddle,
        overlap or do not cover a population's range, gaps in a kommun's years, or a panel
        that fails :func:`validate_panel` (e.g. numerator > denominator).
    ValueError
        Unknown population or outcome names; no ``cohorts`` and not ``outcome_only`` (the
        message names both fixes); ``cohorts`` together with ``outcome_only``.
    """
    if cohorts is None and not outcome_only:
        raise ValueError(
            "build_panel needs the adoption calendar: pass cohorts= (one row per kommun: "
            "kommun_kod, cohort, forbund; from an exact calendar with "
            "finsam_eval.registry.calendar_to_cohorts(calendar), or one draw of "
            "finsam_eval.registry.compatible_calendars), or ask for a panel of outcomes only "
            "with outcome_only=True (cohort 0 as a placeholder; the pipeline's [design] "
            "calendar then supplies the cohorts)"
        )
    if cohorts is not None and outcome_only:
        raise ValueError(
            "build_panel: cohorts= and outcome_only=True contradict each other; pass one"
        )
    specs = resolve_populations(populations)
    wanted = _resolve_outcomes(outcomes)
    series = [
        (p, o) for p, spec in specs.items() for o in OUTCOMES if o in spec.outcomes and o in wanted
    ]
    if not series:
        raise ValueError(
            f"No series to build: outcomes {list(wanted)} are not defined for {list(specs)}"
        )
    window = None if years is None else np.unique(np.asarray(list(years), dtype=np.int64))

    num = normalise_numerators(numerators)
    pop = normalise_population(population)
    nf, pf = num.frame, pop.frame

    registry = kommuner().sort_values("kommun_kod").reset_index(drop=True)
    codes = registry["kommun_kod"].to_numpy(dtype=object)
    names = registry["kommun"].to_numpy(dtype=object)
    lans = registry["lan_kod"].to_numpy(dtype=object)
    code_index = pd.Index(codes, dtype=object)
    n_kc = positions(nf["kommun_kod"].to_numpy(dtype=object), codes)
    p_kc = positions(pf["kommun_kod"].to_numpy(dtype=object), codes)
    n_year = nf["year"].to_numpy(dtype=np.int64)
    p_year = pf["year"].to_numpy(dtype=np.int64)
    n_value = nf["value"].to_numpy(dtype=float)
    p_value = pf["value"].to_numpy(dtype=float)
    n_sex = positions(nf["sex"].to_numpy(dtype=object), SEXES)
    p_sex = positions(pf["sex"].to_numpy(dtype=object), SEXES)
    p_age = pf["age"].to_numpy(dtype=np.int64)

    # ISF outcomes first (their index is their rank), then any others in the table (excluded)
    extra = sorted(set(pd.unique(nf["outcome"])) - set(OUTCOMES))
    outcome_list = [*OUTCOMES, *extra]
    n_out = positions(nf["outcome"].to_numpy(dtype=object), outcome_list)
    band_labels = sorted(pd.unique(nf["age_band"]), key=lambda b: (*parse_age_band(b), b))
    n_band = positions(nf["age_band"].to_numpy(dtype=object), band_labels)
    # small lookups through dicts: an Index per lookup costs far more than the lookup itself
    sex_pos = {s: i for i, s in enumerate(SEXES)}
    out_pos = {o: i for i, o in enumerate(outcome_list)}
    band_pos = {b: i for i, b in enumerate(band_labels)}

    def sex_codes(spec: Population) -> np.ndarray:
        return np.array([sex_pos[s] for s in spec.sex], dtype=np.int64)

    def band_codes(labels: Sequence[str]) -> np.ndarray:
        return np.array([band_pos[b] for b in labels], dtype=np.int64)

    def stadsdel_codes(frame: pd.DataFrame) -> np.ndarray:
        # 0 for kommun rows, 1.. for districts in sorted order (a deterministic tiebreak)
        values = frame["stadsdel"].to_numpy(dtype=object)
        uniques = np.array(sorted(set(pd.unique(values)) | {""}), dtype=object)
        return np.searchsorted(uniques, values).astype(np.int64)

    n_sd = stadsdel_codes(nf)
    p_sd = stadsdel_codes(pf)

    # canonical row order (keys are unique after validation): every sum below, and so the panel
    # and the report, is then bit-for-bit independent of the order of the input rows
    n_order = np.lexsort((n_out, n_band, n_sex, n_sd, n_year, n_kc))
    p_order = np.lexsort((p_age, p_sex, p_sd, p_year, p_kc))
    n_kc, n_year, n_value, n_sex, n_out, n_band, n_sd = (
        a[n_order] for a in (n_kc, n_year, n_value, n_sex, n_out, n_band, n_sd)
    )
    p_kc, p_year, p_value, p_sex, p_age, p_sd = (
        a[p_order] for a in (p_kc, p_year, p_value, p_sex, p_age, p_sd)
    )
    num = replace(num, frame=nf.take(n_order).reset_index(drop=True))
    pop = replace(pop, frame=pf.take(p_order).reset_index(drop=True))
    nf, pf = num.frame, pop.frame

    # 2. window
    n_reason = np.zeros(len(nf), dtype=np.int8)
    p_reason = np.zeros(len(pf), dtype=np.int8)
    if window is not None:
        n_reason[~np.isin(n_year, window)] = 1
        p_reason[~np.isin(p_year, window)] = 1

    # 3. select: outcomes and cells
    selected_outcomes = [out_pos[o] for o in dict.fromkeys(o for _, o in series)]
    n_reason[(n_reason == 0) & ~np.isin(n_out, selected_outcomes)] = 2
    present = n_reason == 0
    bands_by_outcome: dict[str, list[str]] = {}
    if present.any():
        pairs = np.unique(n_out[present] * len(band_labels) + n_band[present])
        for pair in pairs:
            o, b = divmod(int(pair), len(band_labels))
            bands_by_outcome.setdefault(outcome_list[o], []).append(band_labels[b])
    inside, problems = _band_problems(specs, series, bands_by_outcome)
    if problems:
        raise PanelValidationError(problems)
    used_cell = np.zeros(len(nf), dtype=bool)
    for p, o in series:
        spec = specs[p]
        mask = (
            (n_out == out_pos[o])
            & np.isin(n_sex, sex_codes(spec))
            & np.isin(n_band, band_codes(inside[(p, o)]))
        )
        used_cell |= mask
    n_reason[(n_reason == 0) & ~used_cell] = 3
    used_age = np.zeros(len(pf), dtype=bool)
    for spec in specs.values():
        used_age |= (
            np.isin(p_sex, sex_codes(spec)) & (p_age >= spec.age_min) & (p_age <= spec.age_max)
        )
    p_reason[(p_reason == 0) & ~used_age] = 2

    # integer keys; kommun-year key kt = kc * span + (year - first year)
    all_years = np.concatenate([n_year, p_year])
    y0 = int(all_years.min()) if len(all_years) else 0
    span = int(all_years.max()) - y0 + 1 if len(all_years) else 1

    # 4. gaps (on the rows inside the window, for the outcomes built)
    gap_problems = []
    in_scope = (n_reason == 0) | (n_reason == 3)
    if in_scope.any():
        keys = np.unique(
            (n_kc[in_scope] * len(outcome_list) + n_out[in_scope]) * span + n_year[in_scope] - y0
        )
        kc_o, year = np.divmod(keys, span)
        year = year + y0
        kc, o = np.divmod(kc_o, len(outcome_list))
        gap_problems += table_gaps(
            NormalisedTable(
                "numerators",
                pd.DataFrame(
                    {
                        "kommun_kod": codes[kc],
                        "outcome": np.array(outcome_list, dtype=object)[o],
                        "year": year,
                    }
                ),
                pd.DataFrame(),
                False,
            )
        )
    in_window = p_reason != 1
    if in_window.any():
        keys = np.unique(p_kc[in_window] * span + p_year[in_window] - y0)
        kc, year = np.divmod(keys, span)
        year = year + y0
        gap_problems += table_gaps(
            NormalisedTable(
                "population",
                pd.DataFrame({"kommun_kod": codes[kc], "year": year}),
                pd.DataFrame(),
                False,
            )
        )
    if gap_problems:
        raise PanelValidationError(gap_problems)

    # 5. base cells
    n_bands = max(len(band_labels), 1)
    n_outcomes = len(outcome_list)
    n_kt = n_kc.astype(np.int64) * span + (n_year - y0)
    p_kt = p_kc.astype(np.int64) * span + (p_year - y0)
    n_key = ((n_kt * 2 + n_sex) * n_bands + n_band) * n_outcomes + n_out
    age0 = int(p_age.min()) if len(p_age) else 0
    n_ages = int(p_age.max()) - age0 + 1 if len(p_age) else 1
    p_key = (p_kt * 2 + p_sex) * n_ages + (p_age - age0)
    ncells = _base_cells(n_key, n_value, n_reason == 0, n_sd)
    pcells = _base_cells(p_key, p_value, p_reason == 0, p_sd)
    c_out = ncells.key % n_outcomes
    rest = ncells.key // n_outcomes
    c_band = rest % n_bands
    rest //= n_bands
    c_sex = rest % 2
    c_kt = rest // 2
    q_age = pcells.key % n_ages + age0
    rest = pcells.key // n_ages
    q_sex = rest % 2
    q_kt = rest // 2

    # 6. assemble
    kept: list[tuple[np.ndarray, int, int, np.ndarray, np.ndarray]] = []
    dropped: list[tuple[np.ndarray, int, int, np.ndarray]] = []
    n_cell_used = np.zeros(len(ncells.key), dtype=bool)
    p_cell_used = np.zeros(len(pcells.key), dtype=bool)
    outcome_kts = {o: np.unique(c_kt[c_out == o]) for o in np.unique(c_out).tolist()}
    for pi, (p, spec) in enumerate(specs.items()):
        sexes = sex_codes(spec)
        p_sel = np.isin(q_sex, sexes) & (q_age >= spec.age_min) & (q_age <= spec.age_max)
        den_kt, starts, _ = _sorted_groups(q_kt[p_sel])
        den = _group_sum(pcells.value[p_sel], starts)
        den_n = np.bincount(np.searchsorted(den_kt, q_kt[p_sel]), minlength=len(den_kt))
        kept_kts = []
        for o_name in OUTCOMES:
            if (p, o_name) not in inside:
                continue
            o = out_pos[o_name]
            bands = band_codes(inside[(p, o_name)])
            sel = (c_out == o) & np.isin(c_sex, sexes) & np.isin(c_band, bands)
            kts, starts, sizes = _sorted_groups(c_kt[sel])
            # kommun-years with a denominator and cells of this outcome (other sexes or bands)
            # but none for this series: a hole in the source, reported rather than skipped
            hole = np.setdiff1d(
                np.intersect1d(den_kt, outcome_kts.get(o, den_kt[:0])), kts, assume_unique=True
            )
            if len(hole):
                dropped.append((hole, pi, o, np.full(len(hole), 5, dtype=np.int8)))
            if len(kts) == 0:
                continue
            total = _group_sum(ncells.value[sel], starts)
            pos = np.minimum(np.searchsorted(den_kt, kts), max(len(den_kt) - 1, 0))
            found = (den_kt[pos] == kts) if len(den_kt) else np.zeros(len(kts), dtype=bool)
            d = np.where(found, den[pos] if len(den) else 0.0, np.nan)
            reason = np.zeros(len(kts), dtype=np.int8)
            reason[sizes < len(sexes) * len(bands)] = 1
            reason[(reason == 0) & ~found] = 2
            complete = found & ((den_n[pos] if len(den_n) else 0) == len(sexes) * spec.n_ages)
            reason[(reason == 0) & ~complete] = 3
            reason[(reason == 0) & (d == 0)] = 4
            ok = reason == 0
            kept.append((kts[ok], pi, o, total[ok], d[ok]))
            if (~ok).any():
                dropped.append((kts[~ok], pi, o, reason[~ok]))
            kept_kts.append(kts[ok])
            n_cell_used[sel] |= np.isin(c_kt[sel], kts[ok])
        if kept_kts:
            p_cell_used[p_sel] |= np.isin(q_kt[p_sel], np.concatenate(kept_kts))

    # unused base cells: excluded, with the reason
    has_pop = np.isin(c_kt, q_kt)
    n_cell_reason = np.where(n_cell_used, 0, np.where(has_pop, 5, 4)).astype(np.int8)
    n_reason[ncells.rows] = n_cell_reason[ncells.cell_of_row]
    has_num = np.isin(q_kt, c_kt)
    p_cell_reason = np.where(p_cell_used, 0, np.where(has_num, 4, 3)).astype(np.int8)
    p_reason[pcells.rows] = p_cell_reason[pcells.cell_of_row]

    # 7. panel
    if kept:
        kt = np.concatenate([k[0] for k in kept])
        p_i = np.concatenate([np.full(len(k[0]), k[1]) for k in kept])
        o_i = np.concatenate([np.full(len(k[0]), k[2]) for k in kept])
        numerator = np.concatenate([k[3] for k in kept])
        denominator = np.concatenate([k[4] for k in kept])
    else:
        kt = p_i = o_i = np.array([], dtype=np.int64)
        numerator = denominator = np.array([], dtype=float)
    kc, year_offset = np.divmod(kt, span)
    year = year_offset + y0
    order = np.lexsort((year, kc, o_i, p_i))
    kc, year, p_i, o_i = kc[order], year[order], p_i[order], o_i[order]
    numerator, denominator = numerator[order], denominator[order]

    ledger_parts = [
        _code_change_lines(num, True),
        _code_change_lines(pop, False),
        _stadsdel_lines(
            "numerators", ncells, codes, n_kc, n_year, n_value, n_sd, n_out, outcome_list
        ),
        _stadsdel_lines(
            "population", pcells, codes, p_kc, p_year, p_value, p_sd, None, outcome_list
        ),
        _ledger_lines(
            "numerators",
            _NUM_REASONS,
            n_reason,
            codes,
            n_kc,
            n_year,
            n_value,
            n_out,
            np.where(n_reason == 3, n_sex * n_bands + n_band, -1),
            [f"sex {s}, band {b}" for s in SEXES for b in (band_labels or [""])],
            None,
            outcome_list,
        ),
        _ledger_lines(
            "population",
            _POP_REASONS,
            p_reason,
            codes,
            p_kc,
            p_year,
            p_value,
            None,
            None,
            [],
            p_age,
            outcome_list,
        ),
    ]
    population_names = np.array(list(specs), dtype=object)
    for kts, pi, o, reason in dropped:
        dk, dy = np.divmod(kts, span)
        ledger_parts.append(
            pd.DataFrame(
                {
                    "table": "panel",
                    "step": "assemble",
                    "action": "not built",
                    "reason": np.array([_PANEL_REASONS[r] for r in range(1, 6)], dtype=object)[
                        reason - 1
                    ],
                    "kommun_kod": codes[dk],
                    "year": dy + y0,
                    "outcome": outcome_list[o],
                    "n_rows": 1,
                    "amount": np.nan,
                    "detail": f"population {population_names[pi]}",
                }
            )
        )

    # cohorts
    in_panel = np.zeros(len(codes), dtype=bool)
    in_panel[np.unique(kc)] = True
    rows_per_kc = np.bincount(kc, minlength=len(codes))
    cohort_of = np.zeros(len(codes), dtype=np.int64)
    forbund_of = np.full(len(codes), "", dtype=object)
    notes: list[str] = []
    lines: list[dict[str, object]] = []
    coverage: dict[str, str] = {}
    cohort_rows_used = np.array([], dtype=bool)
    cohort_frame = None
    if cohorts is None:  # outcome_only=True (checked above)
        notes.append(
            "Outcome-only panel (outcome_only=True): no adoption calendar was given, so cohort 0 "
            "and an empty förbund are placeholders for every kommun, not membership facts. "
            "Supply a calendar before estimating (the pipeline's [design] calendar replaces "
            "the cohort column)."
        )
    else:
        cohort_frame, problems = normalise_cohorts(cohorts)
        if problems:
            raise PanelValidationError(problems)
        known = cohort_frame["kommun_kod"] != ""
        cohort_pos = code_index.get_indexer(
            cohort_frame.loc[known, "kommun_kod"].to_numpy(dtype=object)
        )
        cohort_of[cohort_pos] = cohort_frame.loc[known, "cohort"].to_numpy(dtype=np.int64)
        forbund_of[cohort_pos] = cohort_frame.loc[known, "forbund"].to_numpy(dtype=object)
        listed = np.zeros(len(codes), dtype=bool)
        listed[cohort_pos] = True
        cohort_rows_used = np.zeros(len(cohort_frame), dtype=bool)
        cohort_rows_used[np.flatnonzero(known.to_numpy())] = in_panel[cohort_pos]
        for r in cohort_frame.loc[~known].itertuples(index=False):  # few rows: error path
            lines.append(
                _line(
                    table="cohorts",
                    step="cohorts",
                    action="excluded",
                    reason="unknown kommun code",
                    kommun_kod=str(r.raw_code),
                    n_rows=1,
                    detail=f"row {r.row}: cohort {r.cohort}, forbund {r.forbund!r}; "
                    f"{_suggest(str(r.raw_code), 2020)}",
                )
            )
        for r, pos in zip(cohort_frame.loc[known].itertuples(index=False), cohort_pos, strict=True):
            if not in_panel[pos]:
                lines.append(
                    _line(
                        table="cohorts",
                        step="cohorts",
                        action="excluded",
                        reason="kommun not in the panel",
                        kommun_kod=r.kommun_kod,
                        n_rows=1,
                        detail=f"row {r.row}: cohort {r.cohort}",
                    )
                )
                continue
            if r.raw_code != r.kommun_kod:
                lines.append(
                    _line(
                        table="cohorts",
                        step="harmonise",
                        action="altered",
                        reason="historical kommun code mapped to the current code",
                        kommun_kod=r.kommun_kod,
                        n_rows=1,
                        detail=f"row {r.row}: {r.raw_code} → {r.kommun_kod}",
                    )
                )
            if r.cohort_missing:
                lines.append(
                    _line(
                        table="cohorts",
                        step="cohorts",
                        action="assumed",
                        reason="missing cohort value: cohort 0 (never member)",
                        kommun_kod=r.kommun_kod,
                        n_rows=int(rows_per_kc[pos]),
                        detail=f"row {r.row}",
                    )
                )
            if "partial_coverage" in cohort_frame.columns and r.partial_coverage:
                coverage[r.kommun_kod] = r.partial_coverage
        for pos in np.flatnonzero(in_panel & ~listed):
            lines.append(
                _line(
                    table="cohorts",
                    step="cohorts",
                    action="assumed",
                    reason="kommun missing from the cohorts table: cohort 0 (never member)",
                    kommun_kod=codes[pos],
                    n_rows=int(rows_per_kc[pos]),
                    detail=f"{names[pos]}; panel rows affected",
                )
            )
    for key, note in (partial_coverage or {}).items():
        coverage[kommun_code(key)] = str(note)
    for code in sorted(coverage):
        pos = code_index.get_loc(code)
        text = f"Partial coverage: {code} {names[pos]}: {coverage[code]}"
        notes.append(text)
        lines.append(
            _line(
                table="cohorts",
                step="cohorts",
                action="note",
                reason="partial coverage",
                kommun_kod=code,
                n_rows=int(rows_per_kc[pos]),
                detail=coverage[code],
            )
        )

    # registry notes
    def years_of(code: str) -> np.ndarray:
        pos = code_index.get_loc(code)
        return np.unique(year[kc == pos])

    uppsala, knivsta = years_of(UPPSALA), years_of(KNIVSTA)
    if (uppsala < 2003).any() or len(knivsta):
        before = int((uppsala < 2003).sum())
        text = (
            "Knivsta (0330) split from Uppsala (0380) on 1 January 2003: Uppsala's figures before "
            "2003 include Knivsta and Knivsta has no rows before 2003 in real source tables "
            "(a level break in Uppsala's series, not an error)."
        )
        if (knivsta < 2003).any():
            text += (
                f" This input has Knivsta rows before 2003 ({int(knivsta.min())}–2002), which "
                "real sources do not have; they are kept as given."
            )
        notes.append(text)
        lines.append(
            _line(
                table="panel",
                step="registry",
                action="note",
                reason="Knivsta split from Uppsala in 2003: level break",
                kommun_kod=UPPSALA,
                n_rows=int(((kc == code_index.get_loc(UPPSALA)) & (year < 2003)).sum()),
                detail=f"{before} Uppsala years before 2003 include Knivsta",
            )
        )
    heby = years_of(HEBY)
    if (heby <= 2006).any():
        notes.append(
            "Heby (0331) belonged to Västmanlands län (code 1917, län 19) until 2006; the panel "
            "uses the current code and län (Uppsala, 03) for every year, so cluster_lan is "
            "constant within the kommun."
        )
    absent_series: dict[str, list[str]] = {}
    for p, o in series:
        if o not in bands_by_outcome:
            absent_series.setdefault(o, []).append(f"{p}/{o}")
    for o, names_ in absent_series.items():
        where = " in the requested years" if window is not None else ""
        notes.append(
            f"Outcome {o!r} has no numerator rows{where}: series {', '.join(names_)} not built."
        )
    if window is not None:
        absent = sorted(set(window.tolist()) - set(np.unique(year).tolist()))
        if absent:
            notes.append(f"Requested years without panel rows: {absent}.")

    cluster_forbund = np.where(
        forbund_of == "", NEVER_CLUSTER_PREFIX + codes.astype(str), forbund_of
    )
    per_kommun = {
        "kommun_kod": codes,
        "kommun": names,
        "lan_kod": lans,
        "cohort": cohort_of,
        "forbund": forbund_of,
        "cluster_forbund": cluster_forbund,
    }
    panel = _assemble(
        per_kommun,
        kc,
        year,
        population_names,
        p_i,
        np.array(outcome_list, dtype=object),
        o_i,
        numerator,
        denominator,
    )

    if lines:
        ledger_parts.append(pd.DataFrame(lines))
    parts = [part for part in ledger_parts if part is not None and not part.empty]
    ledger = pd.concat(parts, ignore_index=True) if parts else empty_ledger()
    reconciliation = [
        reconcile(
            "numerators",
            nf["outcome"].to_numpy(dtype=object),
            n_value,
            n_reason == 0,
            np.array(outcome_list, dtype=object)[c_out[n_cell_used]],
            ncells.value[n_cell_used],
            ledger,
        ),
        reconcile(
            "population", None, p_value, p_reason == 0, None, pcells.value[p_cell_used], ledger
        ),
    ]
    if cohort_frame is not None:
        reconciliation.append(
            reconcile(
                "cohorts",
                None,
                np.full(len(cohort_frame), np.nan),
                cohort_rows_used,
                None,
                np.array([]),
                ledger,
            )
        )
    report = BuildReport(
        ledger=ledger,
        reconciliation=pd.concat(reconciliation, ignore_index=True),
        series=_series_summary(
            population_names,
            np.array(outcome_list, dtype=object),
            p_i,
            o_i,
            kc,
            year,
            numerator,
            denominator,
        ),
        notes=notes,
        partial_coverage=coverage,
        n_rows=len(panel),
    )
    if validate:
        validate_panel(panel)
    return BuiltPanel(panel, report)


def _text(values: np.ndarray, index: np.ndarray) -> pd.Series:
    """``values[index]`` as a str column: a take from a str Index of the few distinct values
    (converting one Python string per row would dominate the build)."""
    where, uniques = pd.factorize(np.asarray(values, dtype=object))
    categories = pd.Index(np.asarray(uniques, dtype=object), dtype="str")
    return pd.Series(categories.take(where[index]), copy=False)


def _assemble(
    per_kommun: Mapping[str, np.ndarray],
    kc: np.ndarray,
    year: np.ndarray,
    population_names: np.ndarray,
    p_i: np.ndarray,
    outcome_names: np.ndarray,
    o_i: np.ndarray,
    numerator: np.ndarray,
    denominator: np.ndarray,
) -> pd.DataFrame:
    """The panel frame from sorted integer-coded arrays.

    ``per_kommun`` holds one value per registry kommun (code, name, län, cohort, förbund, förbund
    cluster), indexed by ``kc``.
    """
    if len(kc) == 0:
        return empty_panel()
    kommun_kod = _text(per_kommun["kommun_kod"], kc)
    lan_kod = _text(per_kommun["lan_kod"], kc)
    return pd.DataFrame(
        {
            "kommun_kod": kommun_kod,
            "kommun": _text(per_kommun["kommun"], kc),
            "lan_kod": lan_kod,
            "year": year.astype(np.int64),
            "population": _text(population_names, p_i),
            "outcome": _text(outcome_names, o_i),
            "numerator": numerator.astype("float64"),
            "denominator": denominator.astype("float64"),
            "share": 100.0 * numerator / denominator,
            "cohort": per_kommun["cohort"][kc].astype(np.int64),
            "forbund": _text(per_kommun["forbund"], kc),
            "weight": denominator.astype("float64"),
            "cluster_kommun": kommun_kod.copy(),
            "cluster_forbund": _text(per_kommun["cluster_forbund"], kc),
            "cluster_lan": lan_kod.copy(),
        }
    )


def _series_summary(
    population_names: np.ndarray,
    outcome_names: np.ndarray,
    p_i: np.ndarray,
    o_i: np.ndarray,
    kc: np.ndarray,
    year: np.ndarray,
    numerator: np.ndarray,
    denominator: np.ndarray,
) -> pd.DataFrame:
    """Per series: rows, kommuner, first and last year, sums (arrays sorted by series, kommun)."""
    columns = ["population", "outcome", "rows", "kommuner", "first_year", "last_year"]
    columns += ["numerator", "denominator"]
    if len(kc) == 0:
        return pd.DataFrame(columns=columns)
    order, starts = _group_rows([p_i, o_i])  # already sorted: order is the identity
    new_kommun = np.ones(len(kc), dtype=bool)
    new_kommun[1:] = (kc[1:] != kc[:-1]) | (p_i[1:] != p_i[:-1]) | (o_i[1:] != o_i[:-1])
    return pd.DataFrame(
        {
            "population": population_names[p_i[starts]],
            "outcome": outcome_names[o_i[starts]],
            "rows": np.diff(np.append(starts, len(kc))),
            "kommuner": np.add.reduceat(new_kommun.astype(np.int64), starts),
            "first_year": np.minimum.reduceat(year[order], starts),
            "last_year": np.maximum.reduceat(year[order], starts),
            "numerator": np.add.reduceat(numerator[order], starts),
            "denominator": np.add.reduceat(denominator[order], starts),
        },
        columns=columns,
    )
