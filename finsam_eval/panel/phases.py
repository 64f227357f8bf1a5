"""The builder's numeric phases: encode the source tables, window and select, check gaps, sum
base cells and assemble numerators with their denominators.

Each phase is one function over integer-coded numpy arrays (no per-row Python);
:func:`finsam_eval.panel.builder.build_panel` runs them in order. The step numbers refer to the
list in :mod:`finsam_eval.panel.builder`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from finsam_eval.panel.missing import SuppressedCells, gap_cells_problem
from finsam_eval.panel.populations import OUTCOMES, SEXES, Population, parse_age_band
from finsam_eval.panel.validation import (
    NormalisedTable,
    PanelValidationError,
    Problem,
    normalise_numerators,
    normalise_population,
    positions,
    table_gaps,
)
from finsam_eval.registry import kommuner

__all__: list[str] = []  # internal to the panel layer


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
    columns = ["population", "outcome", "age_band", "population_ages"]
    found = [
        (
            straddle,
            "age_band_straddles",
            "age bands partly inside a population's age range (a band must lie wholly "
            "inside or outside it)",
            columns,
        ),
        (
            overlap,
            "age_bands_overlap",
            "overlapping age bands inside a population's range (counts would be summed twice)",
            columns,
        ),
        (
            incomplete,
            "age_bands_incomplete",
            "the age bands do not cover the population's range (pass populations=[...] to "
            "build only the populations the table supports)",
            ["population", "outcome", "ages_missing", "population_ages"],
        ),
    ]
    problems = [
        Problem("numerators", code, message, pd.DataFrame(rows, columns=names))
        for rows, code, message, names in found
        if rows
    ]
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


@dataclass
class Coded:
    """Both source tables as integer-coded arrays in canonical row order (step 1).

    Attributes
    ----------
    num, pop
        The normalised numerator and population tables, rows in canonical order.
    codes, names, lans
        Registry kommun codes, names and län codes, sorted by code; ``*_kc`` index into them.
    code_index
        ``codes`` as an Index (code → position).
    outcome_list
        The ISF outcomes (their index is their rank), then any others in the table.
    band_labels
        Age bands of the numerator table, sorted by age.
    n_kc, n_year, n_value, n_sex, n_out, n_band, n_sd
        Per numerator row: kommun, year, count, sex, outcome, band and stadsdel codes.
    p_kc, p_year, p_value, p_sex, p_age, p_sd
        Per population row: kommun, year, population, sex, age and stadsdel codes.
    y0, span
        First year of either table and number of years: the kommun-year key is
        ``kt = kc * span + (year - y0)``.
    """

    num: NormalisedTable
    pop: NormalisedTable
    codes: np.ndarray
    names: np.ndarray
    lans: np.ndarray
    code_index: pd.Index
    outcome_list: list[str]
    band_labels: list[str]
    n_kc: np.ndarray
    n_year: np.ndarray
    n_value: np.ndarray
    n_sex: np.ndarray
    n_out: np.ndarray
    n_band: np.ndarray
    n_sd: np.ndarray
    p_kc: np.ndarray
    p_year: np.ndarray
    p_value: np.ndarray
    p_sex: np.ndarray
    p_age: np.ndarray
    p_sd: np.ndarray
    y0: int
    span: int

    def __post_init__(self) -> None:
        # small lookups through dicts: an Index per lookup costs far more than the lookup itself
        self.sex_pos = {s: i for i, s in enumerate(SEXES)}
        self.out_pos = {o: i for i, o in enumerate(self.outcome_list)}
        self.band_pos = {b: i for i, b in enumerate(self.band_labels)}

    def sex_codes(self, spec: Population) -> np.ndarray:
        """Sex codes of a population."""
        return np.array([self.sex_pos[s] for s in spec.sex], dtype=np.int64)

    def band_codes(self, labels: Sequence[str]) -> np.ndarray:
        """Band codes of age-band labels."""
        return np.array([self.band_pos[b] for b in labels], dtype=np.int64)


def _stadsdel_codes(frame: pd.DataFrame) -> np.ndarray:
    """0 for kommun rows, 1.. for districts in sorted order (a deterministic tiebreak)."""
    values = frame["stadsdel"].to_numpy(dtype=object)
    uniques = np.array(sorted(set(pd.unique(values)) | {""}), dtype=object)
    return np.searchsorted(uniques, values).astype(np.int64)


def encode_sources(numerators: pd.DataFrame, population: pd.DataFrame) -> Coded:
    """Step 1: normalise and validate both tables and code them as integer arrays.

    Parameters
    ----------
    numerators, population
        The raw source tables (see :func:`~finsam_eval.panel.builder.build_panel`).

    Returns
    -------
    Coded
        The tables' rows in canonical order (keys are unique after validation): every sum
        after this, and so the panel and the report, is then bit-for-bit independent of the
        order of the input rows.

    Raises
    ------
    PanelValidationError
        Invalid input tables (:mod:`finsam_eval.panel.validation`).
    """
    num = normalise_numerators(numerators)
    pop = normalise_population(population)
    nf, pf = num.frame, pop.frame
    registry = kommuner().sort_values("kommun_kod").reset_index(drop=True)
    codes = registry["kommun_kod"].to_numpy(dtype=object)
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
    n_sd = _stadsdel_codes(nf)
    p_sd = _stadsdel_codes(pf)

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
    # integer keys; kommun-year key kt = kc * span + (year - first year)
    all_years = np.concatenate([n_year, p_year])
    y0 = int(all_years.min()) if len(all_years) else 0
    span = int(all_years.max()) - y0 + 1 if len(all_years) else 1
    return Coded(
        num=num,
        pop=pop,
        codes=codes,
        names=registry["kommun"].to_numpy(dtype=object),
        lans=registry["lan_kod"].to_numpy(dtype=object),
        code_index=pd.Index(codes, dtype=object),
        outcome_list=outcome_list,
        band_labels=band_labels,
        n_kc=n_kc,
        n_year=n_year,
        n_value=n_value,
        n_sex=n_sex,
        n_out=n_out,
        n_band=n_band,
        n_sd=n_sd,
        p_kc=p_kc,
        p_year=p_year,
        p_value=p_value,
        p_sex=p_sex,
        p_age=p_age,
        p_sd=p_sd,
        y0=y0,
        span=span,
    )


@dataclass
class Selection:
    """Steps 2–3: why each input row is excluded so far, and the bands each series uses.

    Attributes
    ----------
    n_reason, p_reason
        Per numerator / population row: 0 = used, else a key of the builder's reason tables.
    bands_by_outcome
        Outcome → age bands present in the window.
    inside
        (population, outcome) → the bands inside the population's age range, by age.
    """

    n_reason: np.ndarray
    p_reason: np.ndarray
    bands_by_outcome: dict[str, list[str]]
    inside: dict[tuple[str, str], list[str]]


def select_rows(
    coded: Coded,
    specs: Mapping[str, Population],
    series: Sequence[tuple[str, str]],
    window: np.ndarray | None,
) -> Selection:
    """Steps 2 and 3: exclude rows outside the window, outcomes not built and unused cells.

    Parameters
    ----------
    coded
        The coded source tables (:func:`encode_sources`).
    specs
        Population name → definition.
    series
        The (population, outcome) pairs to build.
    window
        Sorted years to keep, or None for every year.

    Returns
    -------
    Selection

    Raises
    ------
    PanelValidationError
        Age bands that straddle, overlap or do not cover a population's range.
    """
    n_reason = np.zeros(len(coded.n_kc), dtype=np.int8)
    p_reason = np.zeros(len(coded.p_kc), dtype=np.int8)
    if window is not None:
        n_reason[~np.isin(coded.n_year, window)] = 1
        p_reason[~np.isin(coded.p_year, window)] = 1
        absent = {
            table: [int(y) for y in window if y not in set(np.unique(years).tolist())]
            for table, years in (("numerators", coded.n_year), ("population", coded.p_year))
        }
        absent = {table: years for table, years in absent.items() if years}
        if absent:
            # asked-for years the sources do not hold: the panel is shorter than requested
            warnings.warn(
                "requested years absent from the source tables, so the panel does not cover "
                "them: " + "; ".join(f"{t}: {y}" for t, y in absent.items()),
                UserWarning,
                stacklevel=4,
            )
    n_out, n_band, n_sex = coded.n_out, coded.n_band, coded.n_sex
    selected_outcomes = [coded.out_pos[o] for o in dict.fromkeys(o for _, o in series)]
    n_reason[(n_reason == 0) & ~np.isin(n_out, selected_outcomes)] = 2
    present = n_reason == 0
    bands_by_outcome: dict[str, list[str]] = {}
    band_labels = coded.band_labels
    if present.any():
        pairs = np.unique(n_out[present] * len(band_labels) + n_band[present])
        for pair in pairs:
            o, b = divmod(int(pair), len(band_labels))
            bands_by_outcome.setdefault(coded.outcome_list[o], []).append(band_labels[b])
    inside, problems = _band_problems(dict(specs), list(series), bands_by_outcome)
    if problems:
        raise PanelValidationError(problems)
    used_cell = np.zeros(len(n_out), dtype=bool)
    for p, o in series:
        used_cell |= (
            (n_out == coded.out_pos[o])
            & np.isin(n_sex, coded.sex_codes(specs[p]))
            & np.isin(n_band, coded.band_codes(inside[(p, o)]))
        )
    n_reason[(n_reason == 0) & ~used_cell] = 3
    used_age = np.zeros(len(p_reason), dtype=bool)
    p_sex, p_age = coded.p_sex, coded.p_age
    for spec in specs.values():
        used_age |= (
            np.isin(p_sex, coded.sex_codes(spec))
            & (p_age >= spec.age_min)
            & (p_age <= spec.age_max)
        )
    p_reason[(p_reason == 0) & ~used_age] = 2
    return Selection(n_reason, p_reason, bands_by_outcome, inside)


def check_gaps(
    coded: Coded,
    selection: Selection,
    specs: Mapping[str, Population],
    series: Sequence[tuple[str, str]],
    suppressed: SuppressedCells,
) -> None:
    """Step 4: a kommun's years must be contiguous within its span, in both tables.

    Checked on the rows inside the window, for the outcomes built. A gap is an error; the error
    also lists every missing cell (kommun, year, population, outcome) and why it is missing:
    suppressed in the source, zero population, or absent from the source.

    Parameters
    ----------
    coded, selection
        The coded source tables and the rows excluded so far (window, selection).
    specs, series
        The populations and the (population, outcome) series built.
    suppressed
        Cells the source marked as suppressed (:mod:`finsam_eval.panel.missing`).

    Raises
    ------
    PanelValidationError
        Gaps, with the ``gap`` problem per table and a ``missing_cells`` problem.
    """
    n_reason, p_reason, span, y0 = selection.n_reason, selection.p_reason, coded.span, coded.y0
    n_outcomes = len(coded.outcome_list)
    problems: list[Problem] = []
    missing: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    in_scope = (n_reason == 0) | (n_reason == 3)
    if in_scope.any():
        n_kc, n_out, n_year = coded.n_kc[in_scope], coded.n_out[in_scope], coded.n_year[in_scope]
        keys = np.unique((n_kc * n_outcomes + n_out) * span + n_year - y0)
        kc_o, year = np.divmod(keys, span)
        kc, o = np.divmod(kc_o, n_outcomes)
        found = table_gaps(
            NormalisedTable(
                "numerators",
                pd.DataFrame(
                    {
                        "kommun_kod": coded.codes[kc],
                        "outcome": np.array(coded.outcome_list, dtype=object)[o],
                        "year": year + y0,
                    }
                ),
                pd.DataFrame(),
                False,
            )
        )
        if found:
            problems += found
            group, gap_year = _years_in_gaps(kc_o, year)
            missing.append(("numerators", *np.divmod(group, n_outcomes), gap_year + y0))
    in_window = p_reason != 1
    if in_window.any():
        keys = np.unique(coded.p_kc[in_window] * span + coded.p_year[in_window] - y0)
        kc, year = np.divmod(keys, span)
        found = table_gaps(
            NormalisedTable(
                "population",
                pd.DataFrame({"kommun_kod": coded.codes[kc], "year": year + y0}),
                pd.DataFrame(),
                False,
            )
        )
        if found:
            problems += found
            group, gap_year = _years_in_gaps(kc, year)
            missing.append(("population", group, np.full(len(group), -1), gap_year + y0))
    if problems:
        problems.append(gap_cells_problem(coded, p_reason, specs, series, suppressed, missing))
        raise PanelValidationError(problems)


def _years_in_gaps(group: np.ndarray, year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (group, year) pairs missing inside each group's span, from sorted unique pairs."""
    same = group[1:] == group[:-1]
    step = year[1:] - year[:-1]
    at = np.flatnonzero(same & (step > 1))
    counts = step[at] - 1
    groups = np.repeat(group[at], counts)
    starts = np.repeat(year[at] + 1, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return groups, starts + offsets


@dataclass
class BaseCells:
    """Step 5: summed base cells of both tables with their decoded keys.

    Attributes
    ----------
    ncells, pcells
        Numerator cells (kommun, year, sex, band, outcome) and population cells (kommun, year,
        sex, age).
    c_out, c_band, c_sex, c_kt
        Per numerator cell: outcome, band, sex and kommun-year key.
    q_age, q_sex, q_kt
        Per population cell: age, sex and kommun-year key.
    """

    ncells: _Cells
    pcells: _Cells
    c_out: np.ndarray
    c_band: np.ndarray
    c_sex: np.ndarray
    c_kt: np.ndarray
    q_age: np.ndarray
    q_sex: np.ndarray
    q_kt: np.ndarray


def base_cells(coded: Coded, selection: Selection) -> BaseCells:
    """Step 5: sum the used rows to base cells; stadsdel rows are aggregated to their kommun.

    Rows are sorted by key (then stadsdel) first, so that float sums do not depend on the input
    row order.

    Parameters
    ----------
    coded
        The coded source tables.
    selection
        Rows still used (reason 0) are summed.

    Returns
    -------
    BaseCells
    """
    span, y0 = coded.span, coded.y0
    n_bands = max(len(coded.band_labels), 1)
    n_outcomes = len(coded.outcome_list)
    n_kt = coded.n_kc.astype(np.int64) * span + (coded.n_year - y0)
    p_kt = coded.p_kc.astype(np.int64) * span + (coded.p_year - y0)
    n_key = ((n_kt * 2 + coded.n_sex) * n_bands + coded.n_band) * n_outcomes + coded.n_out
    p_age = coded.p_age
    age0 = int(p_age.min()) if len(p_age) else 0
    n_ages = int(p_age.max()) - age0 + 1 if len(p_age) else 1
    p_key = (p_kt * 2 + coded.p_sex) * n_ages + (p_age - age0)
    ncells = _base_cells(n_key, coded.n_value, selection.n_reason == 0, coded.n_sd)
    pcells = _base_cells(p_key, coded.p_value, selection.p_reason == 0, coded.p_sd)
    c_out = ncells.key % n_outcomes
    rest = ncells.key // n_outcomes
    c_band = rest % n_bands
    rest //= n_bands
    c_sex = rest % 2
    c_kt = rest // 2
    q_age = pcells.key % n_ages + age0
    rest = pcells.key // n_ages
    return BaseCells(ncells, pcells, c_out, c_band, c_sex, c_kt, q_age, rest % 2, rest // 2)


@dataclass
class Assembled:
    """Step 6: the panel rows formed and the ones that could not be.

    Attributes
    ----------
    kept
        Per series: (kommun-year keys, population index, outcome index, numerator,
        denominator).
    dropped
        Per series and reason: (kommun-year keys, population index, outcome index, reason
        codes of :data:`~finsam_eval.panel.ledger.PANEL_REASONS`).
    n_cell_used, p_cell_used
        Base cells that feed a panel row.
    """

    kept: list[tuple[np.ndarray, int, int, np.ndarray, np.ndarray]]
    dropped: list[tuple[np.ndarray, int, int, np.ndarray]]
    n_cell_used: np.ndarray
    p_cell_used: np.ndarray


def assemble_series(
    coded: Coded, specs: Mapping[str, Population], cells: BaseCells, selection: Selection
) -> Assembled:
    """Step 6: numerator and denominator per population, outcome and kommun-year.

    Numerator = sum over the population's sexes and the bands inside its range, denominator =
    sum over its sexes and single-year ages. A panel row needs every numerator cell and every
    single-year age; rows that cannot be formed are returned with their reason, and base cells
    that feed no panel row are marked excluded in ``selection`` (updated in place).

    Parameters
    ----------
    coded
        The coded source tables.
    specs
        Population name → definition.
    cells
        The base cells (:func:`base_cells`).
    selection
        Exclusion reasons per input row (unused cells' rows get reasons 4–5 for numerators and
        3–4 for population) and ``inside``: the bands inside each population's age range.

    Returns
    -------
    Assembled
    """
    assembled = Assembled([], [], np.zeros(len(cells.c_kt), bool), np.zeros(len(cells.q_kt), bool))
    inside = selection.inside
    c_out, c_sex, c_band, c_kt = cells.c_out, cells.c_sex, cells.c_band, cells.c_kt
    q_sex, q_age, q_kt = cells.q_sex, cells.q_age, cells.q_kt
    outcome_kts = {o: np.unique(c_kt[c_out == o]) for o in np.unique(c_out).tolist()}
    for pi, (p, spec) in enumerate(specs.items()):
        sexes = coded.sex_codes(spec)
        p_sel = np.isin(q_sex, sexes) & (q_age >= spec.age_min) & (q_age <= spec.age_max)
        den_kt, starts, _ = _sorted_groups(q_kt[p_sel])
        den = _group_sum(cells.pcells.value[p_sel], starts)
        den_n = np.bincount(np.searchsorted(den_kt, q_kt[p_sel]), minlength=len(den_kt))
        kept_kts = []
        for o_name in OUTCOMES:
            if (p, o_name) not in inside:
                continue
            o = coded.out_pos[o_name]
            bands = coded.band_codes(inside[(p, o_name)])
            sel = (c_out == o) & np.isin(c_sex, sexes) & np.isin(c_band, bands)
            kts, starts, sizes = _sorted_groups(c_kt[sel])
            # kommun-years with a denominator and cells of this outcome (other sexes or bands)
            # but none for this series: a hole in the source, reported rather than skipped
            hole = np.setdiff1d(
                np.intersect1d(den_kt, outcome_kts.get(o, den_kt[:0])), kts, assume_unique=True
            )
            if len(hole):
                assembled.dropped.append((hole, pi, o, np.full(len(hole), 5, dtype=np.int8)))
            if len(kts) == 0:
                continue
            total = _group_sum(cells.ncells.value[sel], starts)
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
            assembled.kept.append((kts[ok], pi, o, total[ok], d[ok]))
            if (~ok).any():
                assembled.dropped.append((kts[~ok], pi, o, reason[~ok]))
            kept_kts.append(kts[ok])
            assembled.n_cell_used[sel] |= np.isin(c_kt[sel], kts[ok])
        if kept_kts:
            assembled.p_cell_used[p_sel] |= np.isin(q_kt[p_sel], np.concatenate(kept_kts))
    _mark_unused_cells(cells, assembled, selection)
    return assembled


def _mark_unused_cells(cells: BaseCells, assembled: Assembled, selection: Selection) -> None:
    """Unused base cells: their input rows are excluded, with the reason."""
    has_pop = np.isin(cells.c_kt, cells.q_kt)
    n_cell_reason = np.where(assembled.n_cell_used, 0, np.where(has_pop, 5, 4)).astype(np.int8)
    selection.n_reason[cells.ncells.rows] = n_cell_reason[cells.ncells.cell_of_row]
    has_num = np.isin(cells.q_kt, cells.c_kt)
    p_cell_reason = np.where(assembled.p_cell_used, 0, np.where(has_num, 4, 3)).astype(np.int8)
    selection.p_reason[cells.pcells.rows] = p_cell_reason[cells.pcells.cell_of_row]


@dataclass
class PanelArrays:
    """Step 7: the panel rows as sorted integer-coded arrays (population, outcome, kommun,
    year)."""

    kc: np.ndarray
    year: np.ndarray
    p_i: np.ndarray
    o_i: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray


def panel_arrays(coded: Coded, assembled: Assembled) -> PanelArrays:
    """Step 7: concatenate the kept rows and sort them by population, outcome, kommun, year.

    Parameters
    ----------
    coded
        The coded source tables (kommun-year key layout).
    assembled
        The rows formed by :func:`assemble_series`.

    Returns
    -------
    PanelArrays
    """
    kept = assembled.kept
    if kept:
        kt = np.concatenate([k[0] for k in kept])
        p_i = np.concatenate([np.full(len(k[0]), k[1]) for k in kept])
        o_i = np.concatenate([np.full(len(k[0]), k[2]) for k in kept])
        numerator = np.concatenate([k[3] for k in kept])
        denominator = np.concatenate([k[4] for k in kept])
    else:
        kt = p_i = o_i = np.array([], dtype=np.int64)
        numerator = denominator = np.array([], dtype=float)
    kc, year_offset = np.divmod(kt, coded.span)
    year = year_offset + coded.y0
    order = np.lexsort((year, kc, o_i, p_i))
    return PanelArrays(
        kc[order], year[order], p_i[order], o_i[order], numerator[order], denominator[order]
    )
