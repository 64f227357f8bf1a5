"""The builder's calendar and registry phases: cohorts and förbund per kommun, and notes.

Kommun name and län come from the registry (current values for every year, so that clusters are
constant within a kommun); cohort and förbund from the cohorts table (kommuner missing from it:
cohort 0, reported). Registry facts a user must know (Knivsta's split from Uppsala in 2003,
Heby's change of län) are written as notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from finsam_eval.panel.ledger import line
from finsam_eval.panel.phases import Coded
from finsam_eval.panel.validation import PanelValidationError, _suggest, normalise_cohorts
from finsam_eval.registry import kommun_code

__all__: list[str] = []  # internal to the panel layer

KNIVSTA, UPPSALA, HEBY = "0330", "0380", "0331"


@dataclass
class CohortAssignment:
    """Step 7: cohort and förbund per registry kommun, with ledger lines and notes.

    Attributes
    ----------
    cohort_of, forbund_of
        Per registry kommun (indexed like ``Coded.codes``): first membership year (0 = never)
        and förbund id ("" for none).
    notes, lines
        Report notes and ledger lines (dicts of :func:`~finsam_eval.panel.ledger.line`).
    coverage
        kommun_kod → partial-coverage note.
    cohort_frame, cohort_rows_used
        The normalised cohorts table (None for an outcome-only panel) and its rows used.
    """

    cohort_of: np.ndarray
    forbund_of: np.ndarray
    notes: list[str] = field(default_factory=list)
    lines: list[dict[str, object]] = field(default_factory=list)
    coverage: dict[str, str] = field(default_factory=dict)
    cohort_frame: pd.DataFrame | None = None
    cohort_rows_used: np.ndarray = field(default_factory=lambda: np.array([], dtype=bool))


def assign_cohorts(
    coded: Coded,
    kc: np.ndarray,
    cohorts: pd.DataFrame | None,
    partial_coverage: Mapping[str, str] | None,
) -> CohortAssignment:
    """Step 7: cohorts and förbund from the cohorts table, reported line by line.

    Parameters
    ----------
    coded
        The coded source tables (registry codes and names).
    kc
        Kommun position of every panel row.
    cohorts
        The cohorts table, or None for an outcome-only panel (cohort 0 as a placeholder).
    partial_coverage
        kommun (name or code) → note, passed through to the report.

    Returns
    -------
    CohortAssignment

    Raises
    ------
    PanelValidationError
        An invalid cohorts table (:func:`~finsam_eval.panel.validation.normalise_cohorts`).
    """
    n = len(coded.codes)
    in_panel = np.zeros(n, dtype=bool)
    in_panel[np.unique(kc)] = True
    rows_per_kc = np.bincount(kc, minlength=n)
    out = CohortAssignment(np.zeros(n, dtype=np.int64), np.full(n, "", dtype=object))
    if cohorts is None:  # outcome_only=True (checked by the caller)
        out.notes.append(
            "Outcome-only panel (outcome_only=True): no adoption calendar was given, so cohort 0 "
            "and an empty förbund are placeholders for every kommun, not membership facts. "
            "Supply a calendar before estimating (the pipeline's [design] calendar replaces "
            "the cohort column)."
        )
    else:
        _cohort_table_lines(coded, cohorts, in_panel, rows_per_kc, out)
    for key, note in (partial_coverage or {}).items():
        out.coverage[kommun_code(key)] = str(note)
    for code in sorted(out.coverage):
        pos = coded.code_index.get_loc(code)
        out.notes.append(f"Partial coverage: {code} {coded.names[pos]}: {out.coverage[code]}")
        out.lines.append(
            line(
                table="cohorts",
                step="cohorts",
                action="note",
                reason="partial coverage",
                kommun_kod=code,
                n_rows=int(rows_per_kc[pos]),
                detail=out.coverage[code],
            )
        )
    return out


def _cohort_table_lines(
    coded: Coded,
    cohorts: pd.DataFrame,
    in_panel: np.ndarray,
    rows_per_kc: np.ndarray,
    out: CohortAssignment,
) -> None:
    """Read the cohorts table into ``out``: unknown kommuner, kommuner not in the panel,
    harmonised codes, missing cohorts and kommuner missing from the table are reported."""
    cohort_frame, problems = normalise_cohorts(cohorts)
    if problems:
        raise PanelValidationError(problems)
    codes, lines = coded.codes, out.lines
    known = cohort_frame["kommun_kod"] != ""
    cohort_pos = coded.code_index.get_indexer(
        cohort_frame.loc[known, "kommun_kod"].to_numpy(dtype=object)
    )
    out.cohort_of[cohort_pos] = cohort_frame.loc[known, "cohort"].to_numpy(dtype=np.int64)
    out.forbund_of[cohort_pos] = cohort_frame.loc[known, "forbund"].to_numpy(dtype=object)
    listed = np.zeros(len(codes), dtype=bool)
    listed[cohort_pos] = True
    out.cohort_rows_used = np.zeros(len(cohort_frame), dtype=bool)
    out.cohort_rows_used[np.flatnonzero(known.to_numpy())] = in_panel[cohort_pos]
    out.cohort_frame = cohort_frame

    def note(
        step: str, action: str, reason: str, kommun_kod: str, detail: str, n_rows: int = 1
    ) -> None:
        lines.append(
            line(
                table="cohorts",
                step=step,
                action=action,
                reason=reason,
                kommun_kod=kommun_kod,
                n_rows=n_rows,
                detail=detail,
            )
        )

    for r in cohort_frame.loc[~known].itertuples(index=False):  # few rows: error path
        note(
            "cohorts",
            "excluded",
            "unknown kommun code",
            str(r.raw_code),
            f"row {r.row}: cohort {r.cohort}, forbund {r.forbund!r}; "
            f"{_suggest(str(r.raw_code), 2020)}",
        )
    for r, pos in zip(cohort_frame.loc[known].itertuples(index=False), cohort_pos, strict=True):
        if not in_panel[pos]:
            note(
                "cohorts",
                "excluded",
                "kommun not in the panel",
                r.kommun_kod,
                f"row {r.row}: cohort {r.cohort}",
            )
            continue
        if r.raw_code != r.kommun_kod:
            note(
                "harmonise",
                "altered",
                "historical kommun code mapped to the current code",
                r.kommun_kod,
                f"row {r.row}: {r.raw_code} → {r.kommun_kod}",
            )
        if r.cohort_missing:
            note(
                "cohorts",
                "assumed",
                "missing cohort value: cohort 0 (never member)",
                r.kommun_kod,
                f"row {r.row}",
                n_rows=int(rows_per_kc[pos]),
            )
        if "partial_coverage" in cohort_frame.columns and r.partial_coverage:
            out.coverage[r.kommun_kod] = r.partial_coverage
    for pos in np.flatnonzero(in_panel & ~listed):
        note(
            "cohorts",
            "assumed",
            "kommun missing from the cohorts table: cohort 0 (never member)",
            codes[pos],
            f"{coded.names[pos]}; panel rows affected",
            n_rows=int(rows_per_kc[pos]),
        )


def registry_notes(
    coded: Coded,
    kc: np.ndarray,
    year: np.ndarray,
    series: Sequence[tuple[str, str]],
    bands_by_outcome: Mapping[str, Sequence[str]],
    window: np.ndarray | None,
) -> tuple[list[str], list[dict[str, object]]]:
    """Notes on registry facts, series without numerator rows and years without panel rows.

    Parameters
    ----------
    coded
        The coded source tables (registry codes).
    kc, year
        Kommun position and year of every panel row.
    series, bands_by_outcome
        The series asked for and the bands present per outcome (absent outcome: a note).
    window
        The requested years, or None.

    Returns
    -------
    notes, lines
        Plain-text notes and ledger lines (Knivsta's split from Uppsala).
    """
    notes: list[str] = []
    lines: list[dict[str, object]] = []

    def years_of(code: str) -> np.ndarray:
        return np.unique(year[kc == coded.code_index.get_loc(code)])

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
            line(
                table="panel",
                step="registry",
                action="note",
                reason="Knivsta split from Uppsala in 2003: level break",
                kommun_kod=UPPSALA,
                n_rows=int(((kc == coded.code_index.get_loc(UPPSALA)) & (year < 2003)).sum()),
                detail=f"{before} Uppsala years before 2003 include Knivsta",
            )
        )
    if (years_of(HEBY) <= 2006).any():
        notes.append(
            "Heby (0331) belonged to Västmanlands län (code 1917, län 19) until 2006; the panel "
            "uses the current code and län (Uppsala, 03) for every year, so cluster_lan is "
            "constant within the kommun."
        )
    absent_series: dict[str, list[str]] = {}
    for p, o in series:
        if o not in bands_by_outcome:
            absent_series.setdefault(o, []).append(f"{p}/{o}")
    for o, names in absent_series.items():
        where = " in the requested years" if window is not None else ""
        notes.append(
            f"Outcome {o!r} has no numerator rows{where}: series {', '.join(names)} not built."
        )
    if window is not None:
        absent = sorted(set(window.tolist()) - set(np.unique(year).tolist()))
        if absent:
            notes.append(f"Requested years without panel rows: {absent}.")
    return notes, lines
