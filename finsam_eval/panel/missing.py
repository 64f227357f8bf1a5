"""Why a panel cell is missing: suppressed in the source, zero population, or absent.

A kommun-year that a series lacks is reported with one of three causes (issue 13):

- ``suppressed in the source``: the source published the cell as suppressed or without a value
  (agency files' markers such as ``..`` or ``"rojd": true``, Kolada's null values), as listed by
  the ``suppressed`` table given to :func:`~finsam_eval.panel.build_panel`, e.g. the rows of
  :attr:`finsam_eval.sources.fetch.Fetched.report` with kind ``suppressed`` or ``missing``;
- ``zero population``: the denominator (population of the series' sexes and ages) is 0, so the
  share is undefined;
- ``absent from the source``: the source table has no row for the cell and does not say why.

The builder names the kommun, year, population, outcome and cause in the gap error and in the
build report's ``not built`` lines. Sources never turn a suppressed cell into 0 (see
:mod:`finsam_eval.sources.fetch`), so a cause is only ever read from what the caller passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from finsam_eval.panel.populations import SEXES, Population
from finsam_eval.panel.validation import (
    NormalisedTable,
    PanelValidationError,
    Problem,
    _harmonise,
    _offending,
    _split_codes,
    _strings,
    _unknown_codes,
)

if TYPE_CHECKING:  # only for type hints: phases imports this module
    from finsam_eval.panel.phases import Coded

__all__ = ["ABSENT", "CAUSES", "SUPPRESSED", "ZERO_POPULATION", "SuppressedCells"]

SUPPRESSED = "suppressed in the source"
ZERO_POPULATION = "zero population"
ABSENT = "absent from the source"
#: The causes of a missing cell, in the order they are tested.
CAUSES: tuple[str, ...] = (SUPPRESSED, ZERO_POPULATION, ABSENT)
#: Kinds of :func:`finsam_eval.sources.fetch.fetch` report rows that mark a suppressed cell.
SUPPRESSED_KINDS = ("suppressed", "missing")
_REQUIRED = ("kommun_kod", "year", "outcome")


@dataclass(frozen=True)
class SuppressedCells:
    """Source cells known to be suppressed, normalised.

    Attributes
    ----------
    frame
        Columns ``kommun_kod`` (current code), ``year`` (int), ``outcome`` and ``sex`` (``""``
        when the suppression concerns both sexes or the sex is not known).
    """

    frame: pd.DataFrame

    @classmethod
    def empty(cls) -> SuppressedCells:
        """No suppressed cells."""
        return cls(pd.DataFrame({c: [] for c in (*_REQUIRED, "sex")}))

    def kommun_years(self, coded: Coded, spec: Population, outcome: str) -> np.ndarray:
        """Sorted kommun-year keys (``kc * span + year - y0``) suppressed for one series.

        A row counts for the series when its outcome matches and its sex is one of the
        population's sexes (or not given).
        """
        frame = self.frame
        if frame.empty:
            return np.array([], dtype=np.int64)
        match = (frame["outcome"] == outcome) & frame["sex"].isin(["", *spec.sex])
        match &= frame["year"].between(coded.y0, coded.y0 + coded.span - 1)
        rows = frame[match]
        kc = coded.code_index.get_indexer(rows["kommun_kod"].to_numpy(dtype=object))
        return np.unique(kc.astype(np.int64) * coded.span + rows["year"].to_numpy() - coded.y0)


def normalise_suppressed(suppressed: pd.DataFrame | None) -> SuppressedCells:
    """Check and normalise the ``suppressed`` table of :func:`~finsam_eval.panel.build_panel`.

    Parameters
    ----------
    suppressed
        Columns ``kommun_kod``, ``year``, ``outcome`` and optionally ``sex`` (K/M; empty or
        "T", the sources' total, for both). Other columns (``detail``, ``age``, ...) are ignored. A ``kind`` column, as in
        the fetch report, keeps only the rows of kind ``suppressed`` or ``missing``. Historical
        codes are harmonised as in the source tables.

    Returns
    -------
    SuppressedCells

    Raises
    ------
    PanelValidationError
        Missing columns, years that are not whole numbers, unknown kommun codes or sexes.
    """
    if suppressed is None:
        return SuppressedCells.empty()
    if not isinstance(suppressed, pd.DataFrame):
        raise TypeError(
            f"suppressed= must be a DataFrame with columns {list(_REQUIRED)} (+ sex), "
            f"not {type(suppressed).__name__}"
        )
    missing = [c for c in _REQUIRED if c not in suppressed.columns]
    if missing:
        raise PanelValidationError(
            [Problem("suppressed", "missing_columns", f"missing column(s) {missing}")]
        )
    frame = suppressed
    if "kind" in frame.columns:
        frame = frame[frame["kind"].isin(SUPPRESSED_KINDS)]
    frame = frame.reset_index(drop=True)
    context = frame[list(_REQUIRED)]
    problems = []
    code, _, bad_code = _split_codes(frame["kommun_kod"])
    year = pd.to_numeric(frame["year"], errors="coerce").to_numpy(dtype=float)
    bad_year = np.isnan(year) | (year != np.round(year))
    if "sex" in frame.columns:
        sex, sex_missing = _strings(frame["sex"])
        # "T" (total, the sources' code for both sexes) and empty: both sexes
        sex = np.where(sex_missing | (sex == "T"), "", sex).astype(object)
    else:  # not given: the suppression concerns both sexes
        sex = np.full(len(frame), "", dtype=object)
    bad_sex = ~np.isin(sex, ["", *SEXES])
    outcome, outcome_missing = _strings(frame["outcome"])
    for mask, check, message in (
        (bad_code, "bad_code", "kommun_kod values that are not 4-digit kommun codes"),
        (bad_year, "non_integer_year", "year values that are missing or not whole years"),
        (bad_sex, "bad_sex", f"sex values other than {list(SEXES)}, 'T' or empty"),
        (outcome_missing, "missing_outcome", "rows without an outcome"),
    ):
        if np.any(mask):
            problems.append(Problem("suppressed", check, message, _offending(context, mask, {})))
    if problems:
        raise PanelValidationError(problems)
    years = year.astype(np.int64)
    harmonised, _ = _harmonise(code, years)
    normal = pd.DataFrame({"kommun_kod": harmonised, "year": years, "outcome": outcome, "sex": sex})
    check = normal.assign(row=np.arange(len(normal)), raw_code=code, stadsdel="")
    unknown = _unknown_codes(NormalisedTable("suppressed", check, pd.DataFrame(), False))
    if unknown:
        raise PanelValidationError(unknown)
    return SuppressedCells(normal)


def gap_cells_problem(
    coded: Coded,
    p_reason: np.ndarray,
    specs: Mapping[str, Population],
    series: Sequence[tuple[str, str]],
    suppressed: SuppressedCells,
    missing: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
) -> Problem:
    """The cells missing inside a source table's gaps, one row per series, with the cause.

    Parameters
    ----------
    coded
        The coded source tables.
    p_reason
        Per population row its exclusion code so far (1 = outside the window).
    specs, series
        The populations and the (population, outcome) series built.
    suppressed
        Cells the source marked as suppressed.
    missing
        Per table (``"numerators"`` or ``"population"``): kommun positions, outcome positions
        (-1 for the population table: every series) and years inside gaps.

    Returns
    -------
    Problem
        Check ``missing_cells``; rows ``kommun_kod, kommun, year, population, outcome, cause,
        detail``.
    """
    in_window = p_reason != 1
    p_kt = coded.p_kc.astype(np.int64) * coded.span + coded.p_year - coded.y0
    records: list[pd.DataFrame] = []
    for table, kc, o, year in missing:
        kt = kc.astype(np.int64) * coded.span + year - coded.y0
        for p, o_name in series:
            spec = specs[p]
            mine = (
                np.ones(len(kt), dtype=bool)
                if table == "population"
                else (o == coded.out_pos.get(o_name, -2))
            )
            if not mine.any():
                continue
            if table == "population":
                cause = np.full(mine.sum(), ABSENT, dtype=object)
                detail = np.full(mine.sum(), "no population rows for the kommun-year", object)
            else:
                rows = (
                    in_window
                    & np.isin(coded.p_sex, coded.sex_codes(spec))
                    & (coded.p_age >= spec.age_min)
                    & (coded.p_age <= spec.age_max)
                )
                totals = pd.Series(coded.p_value[rows]).groupby(p_kt[rows]).sum()
                den = totals.reindex(kt[mine]).to_numpy()
                is_suppressed = np.isin(kt[mine], suppressed.kommun_years(coded, spec, o_name))
                cause = np.where(
                    is_suppressed, SUPPRESSED, np.where(den == 0, ZERO_POPULATION, ABSENT)
                ).astype(object)
                detail = np.where(
                    cause == SUPPRESSED,
                    "listed as suppressed",
                    np.where(
                        cause == ZERO_POPULATION,
                        f"population 0 at ages {spec.age_min}-{spec.age_max}",
                        "no numerator rows for the outcome",
                    ),
                ).astype(object)
            records.append(
                pd.DataFrame(
                    {
                        "kommun_kod": coded.codes[kc[mine]],
                        "kommun": coded.names[kc[mine]],
                        "year": year[mine],
                        "population": p,
                        "outcome": o_name,
                        "cause": cause,
                        "detail": detail,
                    }
                )
            )
    rows = pd.concat(records, ignore_index=True) if records else pd.DataFrame()
    return _missing_cells(rows, "cells missing inside the gaps")


def _missing_cells(rows: pd.DataFrame, what: str) -> Problem:
    """Check ``missing_cells``: ``rows`` (``what``), sorted by kommun, year, outcome and
    population, each with its cause."""
    if not rows.empty:
        rows = rows.sort_values(["kommun_kod", "year", "outcome", "population"], kind="stable")
    return Problem(
        "panel",
        "missing_cells",
        f"{what}, with the cause (suppressed in the source, zero population, or absent from "
        "the source)",
        rows.reset_index(drop=True),
    )


def not_built_causes(
    coded: Coded,
    spec: Population,
    outcome: str,
    kts: np.ndarray,
    reason: np.ndarray,
    suppressed: SuppressedCells,
) -> np.ndarray:
    """The cause of each panel row that could not be formed (one series).

    Reason codes as :data:`finsam_eval.panel.ledger.PANEL_REASONS`: a zero denominator (4) is
    zero population; missing or incomplete numerator cells (1, 5, 6) are suppressed when the
    ``suppressed`` table lists the kommun-year for the series, else absent; missing or
    incomplete population rows (2, 3) are absent from the source.
    """
    cause = np.full(len(kts), ABSENT, dtype=object)
    cause[reason == 4] = ZERO_POPULATION
    numerator = np.isin(reason, [1, 5, 6])
    if numerator.any():
        listed = np.isin(kts, suppressed.kommun_years(coded, spec, outcome))
        cause[numerator & listed] = SUPPRESSED
    return cause


def panel_gap_problem(not_built: pd.DataFrame, panel: pd.DataFrame) -> Problem | None:
    """Not-built cells that leave a gap in the built panel, with their cause.

    Parameters
    ----------
    not_built
        One row per panel row that could not be formed: ``kommun_kod, kommun, year,
        population, outcome, cause, reason``.
    panel
        The built panel.

    Returns
    -------
    Problem or None
        Check ``missing_cells``, or None when no not-built cell lies inside a series' span.
    """
    if not_built.empty or panel.empty:
        return None
    keys = ["population", "outcome", "kommun_kod"]
    spans = panel.groupby(keys, sort=False, observed=True)["year"].agg(["min", "max"])
    joined = not_built.join(spans, on=keys)
    inside = joined[(joined["year"] > joined["min"]) & (joined["year"] < joined["max"])]
    if inside.empty:
        return None
    rows = inside[["kommun_kod", "kommun", "year", "population", "outcome", "cause", "reason"]]
    return _missing_cells(rows, "panel rows not built inside a series' span")
