"""The builder's ledger lines: excluded, altered and not-built rows, and the build report.

Every input row that does not reach the panel, or reaches it changed, gets a ledger line with
its reason (:mod:`finsam_eval.panel.report`); every panel row that cannot be formed gets a
``not built`` line that names the population and the cause (:mod:`finsam_eval.panel.missing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from finsam_eval.panel.missing import SuppressedCells, not_built_causes
from finsam_eval.panel.phases import Assembled, BaseCells, Coded, Selection, _Cells, _group_rows
from finsam_eval.panel.populations import SEXES, Population
from finsam_eval.panel.report import BuildReport, empty_ledger, reconcile
from finsam_eval.panel.validation import NormalisedTable

__all__ = ["NUM_REASONS", "PANEL_REASONS", "POP_REASONS"]

# Reasons for excluded input rows; code 0 = used. Step names in the second element.
NUM_REASONS = {
    1: ("window", "year outside the requested years"),
    2: ("select", "outcome not built (not requested or not defined for a selected population)"),
    3: ("select", "sex and age band not in any selected population"),
    4: ("assemble", "missing denominator: no population rows for the kommun-year"),
    5: ("assemble", "feeds no panel row: other cells of the kommun-year are missing"),
}
POP_REASONS = {
    1: ("window", "year outside the requested years"),
    2: ("select", "age or sex outside every selected population"),
    3: ("assemble", "no numerator rows for the kommun-year"),
    4: ("assemble", "feeds no panel row: incomplete cells or zero population"),
}
# Reasons a panel row cannot be formed.
PANEL_REASONS = {
    1: "incomplete numerator: sex × age-band cells missing",
    2: "missing denominator: no population rows for the kommun-year",
    3: "incomplete denominator: single-year ages missing",
    4: "zero denominator: share undefined",
    5: "missing numerator: no cells for the series in a kommun-year with other outcomes",
    6: "missing numerator: no cells for the series in the kommun-year",
}


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


def line(**values: object) -> dict[str, object]:
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


def add_suppressed_not_built(
    coded: Coded,
    specs: Mapping[str, Population],
    inside: Mapping[tuple[str, str], Sequence[str]],
    cells: BaseCells,
    assembled: Assembled,
    suppressed: SuppressedCells,
) -> None:
    """Not-built entries (reason 6) for suppressed series cells the assembly did not see.

    A kommun-year listed as suppressed for a series, with population rows in scope, that is
    neither a panel row nor already reported gets its own ``not built`` line, so a suppressed
    cell at the edge of a series (no gap, no other outcome that year) is not lost silently.
    """
    if suppressed.frame.empty:
        return
    in_scope = np.unique(cells.q_kt)
    for pi, (p, spec) in enumerate(specs.items()):
        for o_name in coded.outcome_list:
            if (p, o_name) not in inside:
                continue
            o = coded.out_pos[o_name]
            listed = np.intersect1d(suppressed.kommun_years(coded, spec, o_name), in_scope)
            seen = [k[0] for k in (*assembled.kept, *assembled.dropped) if (k[1], k[2]) == (pi, o)]
            if seen:
                listed = np.setdiff1d(listed, np.concatenate(seen))
            if len(listed):
                assembled.dropped.append((listed, pi, o, np.full(len(listed), 6, dtype=np.int8)))


def not_built_frame(
    coded: Coded,
    specs: Mapping[str, Population],
    assembled: Assembled,
    suppressed: SuppressedCells,
) -> pd.DataFrame:
    """One row per panel row that could not be formed, with its reason and cause.

    Returns
    -------
    pandas.DataFrame
        Columns ``kommun_kod, kommun, year, population, outcome, reason, cause`` in the order of
        ``assembled.dropped``.
    """
    population_names = np.array(list(specs), dtype=object)
    reason_texts = np.array([PANEL_REASONS[r] for r in sorted(PANEL_REASONS)], dtype=object)
    parts = []
    for kts, pi, o, reason in assembled.dropped:
        dk, dy = np.divmod(kts, coded.span)
        outcome = coded.outcome_list[o]
        cause = not_built_causes(
            coded, specs[population_names[pi]], outcome, kts, reason, suppressed
        )
        parts.append(
            pd.DataFrame(
                {
                    "kommun_kod": coded.codes[dk],
                    "kommun": coded.names[dk],
                    "year": dy + coded.y0,
                    "population": population_names[pi],
                    "outcome": outcome,
                    "reason": reason_texts[reason - 1],
                    "cause": cause,
                }
            )
        )
    columns = ["kommun_kod", "kommun", "year", "population", "outcome", "reason", "cause"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def input_ledger(
    coded: Coded,
    selection: Selection,
    cells: BaseCells,
    not_built: pd.DataFrame,
) -> list[pd.DataFrame | None]:
    """Ledger parts for the input tables: code changes, stadsdel sums, excluded rows, and the
    panel rows not built (reason and cause, e.g. ``"zero denominator: share undefined; zero
    population"``).

    Parameters
    ----------
    coded, selection, cells
        The coded source tables, the exclusion reason of every input row, the base cells.
    not_built
        :func:`not_built_frame`.

    Returns
    -------
    list
        Ledger frames (None where a part has no lines).
    """
    c = coded
    n_bands = len(c.band_labels)
    parts = [
        _code_change_lines(c.num, True),
        _code_change_lines(c.pop, False),
        _stadsdel_lines(
            "numerators",
            cells.ncells,
            c.codes,
            c.n_kc,
            c.n_year,
            c.n_value,
            c.n_sd,
            c.n_out,
            c.outcome_list,
        ),
        _stadsdel_lines(
            "population", cells.pcells, c.codes, c.p_kc, c.p_year, c.p_value, c.p_sd, None, []
        ),
        _ledger_lines(
            "numerators",
            NUM_REASONS,
            selection.n_reason,
            c.codes,
            c.n_kc,
            c.n_year,
            c.n_value,
            c.n_out,
            np.where(selection.n_reason == 3, c.n_sex * n_bands + c.n_band, -1),
            [f"sex {s}, band {b}" for s in SEXES for b in (c.band_labels or [""])],
            None,
            c.outcome_list,
        ),
        _ledger_lines(
            "population",
            POP_REASONS,
            selection.p_reason,
            c.codes,
            c.p_kc,
            c.p_year,
            c.p_value,
            None,
            None,
            [],
            c.p_age,
            c.outcome_list,
        ),
    ]
    if not not_built.empty:
        parts.append(
            pd.DataFrame(
                {
                    "table": "panel",
                    "step": "assemble",
                    "action": "not built",
                    "reason": not_built["reason"] + "; " + not_built["cause"],
                    "kommun_kod": not_built["kommun_kod"],
                    "year": not_built["year"],
                    "outcome": not_built["outcome"],
                    "n_rows": 1,
                    "amount": np.nan,
                    "detail": "population " + not_built["population"],
                }
            )
        )
    return parts


def build_report(
    coded: Coded,
    selection: Selection,
    cells: BaseCells,
    assembled: Assembled,
    ledger_parts: list[pd.DataFrame | None],
    cohort_frame: pd.DataFrame | None,
    cohort_rows_used: np.ndarray,
    **fields: object,
) -> BuildReport:
    """The :class:`~finsam_eval.panel.report.BuildReport`: ledger and reconciliation.

    Parameters
    ----------
    coded, selection, cells, assembled
        The builder's phases.
    ledger_parts
        Ledger frames (None or empty ones are skipped).
    cohort_frame, cohort_rows_used
        The normalised cohorts table (None for an outcome-only panel) and its rows used.
    **fields
        ``series``, ``notes``, ``partial_coverage`` and ``n_rows`` of the report.
    """
    parts = [part for part in ledger_parts if part is not None and not part.empty]
    ledger = pd.concat(parts, ignore_index=True) if parts else empty_ledger()
    outcome_names = np.array(coded.outcome_list, dtype=object)
    reconciliation = [
        reconcile(
            "numerators",
            coded.num.frame["outcome"].to_numpy(dtype=object),
            coded.n_value,
            selection.n_reason == 0,
            outcome_names[cells.c_out[assembled.n_cell_used]],
            cells.ncells.value[assembled.n_cell_used],
            ledger,
        ),
        reconcile(
            "population",
            None,
            coded.p_value,
            selection.p_reason == 0,
            None,
            cells.pcells.value[assembled.p_cell_used],
            ledger,
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
    return BuildReport(
        ledger=ledger, reconciliation=pd.concat(reconciliation, ignore_index=True), **fields
    )
