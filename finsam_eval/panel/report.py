"""The panel builder's report: every excluded or altered row, and totals that reconcile.

The report is a *ledger*: one line per (table, step, reason, kommun, year, outcome) with the number
of input rows and the sum of their counts. Actions are

- ``excluded``: input rows that do not reach the panel (out-of-window years, outcomes not built,
  cells no selected population uses, missing denominators, unknown kommuner in the cohorts table);
- ``altered``: input rows that reach the panel changed (historical kommun codes harmonised,
  stadsdel rows summed to their kommun);
- ``assumed``: defaults the builder filled in (kommuner missing from the cohorts table → cohort 0);
- ``not built``: panel rows that could not be formed (``table == "panel"``), e.g. a kommun-year
  with a numerator but no population;
- ``note``: facts a user must know that are not errors (Uppsala's level break when Knivsta split
  off in 2003, Heby's change of län, partial coverage of a kommun by its förbund).

The reconciliation table checks, per input table and outcome, that rows in = rows used + rows
excluded and that the sum of counts in = the sum over the panel's base cells + the sum excluded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["LEDGER_COLUMNS", "RECONCILIATION_COLUMNS", "BuildReport", "empty_ledger"]

#: Columns of :meth:`BuildReport.to_frame`.
LEDGER_COLUMNS: tuple[str, ...] = (
    "table",
    "step",
    "action",
    "reason",
    "kommun_kod",
    "year",
    "outcome",
    "n_rows",
    "amount",
    "detail",
)

#: Columns of :attr:`BuildReport.reconciliation`.
RECONCILIATION_COLUMNS: tuple[str, ...] = (
    "table",
    "outcome",
    "rows_in",
    "rows_used",
    "rows_excluded",
    "amount_in",
    "amount_used",
    "amount_excluded",
    "reconciles",
)

_ACTION_ORDER = ("excluded", "not built", "altered", "assumed", "note")
_TABLE_ORDER = ("numerators", "population", "cohorts", "panel")
# the builder's steps in the order they run
_STEP_ORDER = ("harmonise", "stadsdel", "window", "select", "assemble", "cohorts", "registry")


def empty_ledger() -> pd.DataFrame:
    """An empty ledger with the right columns and dtypes."""
    return _typed(pd.DataFrame({c: [] for c in LEDGER_COLUMNS}))


def _typed(ledger: pd.DataFrame) -> pd.DataFrame:
    out = ledger.reindex(columns=list(LEDGER_COLUMNS))
    for column in ("table", "step", "action", "reason", "kommun_kod", "outcome", "detail"):
        out[column] = out[column].fillna("").astype("str")
    out["year"] = pd.array(out["year"], dtype="Int64")
    out["n_rows"] = out["n_rows"].fillna(0).astype(np.int64)
    out["amount"] = out["amount"].astype("float64")
    return out


def _sort_ledger(ledger: pd.DataFrame) -> pd.DataFrame:
    rank_table = ledger["table"].map({t: i for i, t in enumerate(_TABLE_ORDER)}).fillna(99)
    rank_action = ledger["action"].map({a: i for i, a in enumerate(_ACTION_ORDER)}).fillna(99)
    order = np.lexsort(
        (
            ledger["detail"].to_numpy(dtype=object),
            ledger["outcome"].to_numpy(dtype=object),
            ledger["year"].fillna(-1).to_numpy(dtype=np.int64),
            ledger["kommun_kod"].to_numpy(dtype=object),
            ledger["reason"].to_numpy(dtype=object),
            ledger["step"].map({s: i for i, s in enumerate(_STEP_ORDER)}).fillna(99).to_numpy(),
            rank_action.to_numpy(),
            rank_table.to_numpy(),
        )
    )
    return ledger.iloc[order].reset_index(drop=True)


def _markdown_table(frame: pd.DataFrame, float_format: str = "{:,.6g}") -> str:
    """A GitHub-flavoured Markdown table (no optional dependency)."""

    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return ""
        if isinstance(value, float | np.floating):
            return float_format.format(value)
        if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
            return f"{value:,}" if abs(int(value)) >= 10_000 else str(value)
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


@dataclass
class BuildReport:
    """What the panel builder did with every input row.

    Attributes
    ----------
    ledger
        One line per (table, step, action, reason, kommun, year, outcome, detail): ``n_rows``
        input rows and ``amount``, the sum of their counts or population (NaN for the cohorts
        table and notes). For ``not built``, ``assumed`` and ``note`` lines ``n_rows`` counts the
        panel rows concerned. ``year`` is missing (``<NA>``) for lines about a whole kommun.
        See :data:`LEDGER_COLUMNS`.
    reconciliation
        Per input table and outcome (``"(all)"`` for the table total): rows and amounts in, used
        and excluded, and whether they add up. See :data:`RECONCILIATION_COLUMNS`.
    series
        Per (population, outcome): panel rows, kommuner, first and last year, sums of numerator
        and denominator.
    notes
        Plain-text notes (level breaks, partial coverage, defaults).
    partial_coverage
        kommun_kod → note for kommuner only partly covered by their förbund (passed through).
    n_rows
        Rows of the built panel.
    """

    ledger: pd.DataFrame = field(default_factory=empty_ledger)
    reconciliation: pd.DataFrame = field(default_factory=pd.DataFrame)
    series: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    partial_coverage: dict[str, str] = field(default_factory=dict)
    n_rows: int = 0

    def __post_init__(self) -> None:
        self.ledger = _sort_ledger(_typed(self.ledger))

    @property
    def reconciles(self) -> bool:
        """True when every input table's rows and amounts add up (see :attr:`reconciliation`)."""
        if self.reconciliation.empty:
            return False
        return bool(self.reconciliation["reconciles"].all())

    def to_frame(self) -> pd.DataFrame:
        """The ledger as a tidy DataFrame (a copy); columns :data:`LEDGER_COLUMNS`."""
        return self.ledger.copy()

    def by_reason(self) -> pd.DataFrame:
        """Ledger totals per (table, action, step, reason): entries, kommuner, rows, amount."""
        if self.ledger.empty:
            return pd.DataFrame(
                columns=["table", "action", "step", "reason", "kommuner", "n_rows", "amount"]
            )
        grouped = (
            self.ledger.groupby(["table", "action", "step", "reason"], sort=False)
            .agg(
                kommuner=("kommun_kod", lambda s: int(s[s != ""].nunique())),
                n_rows=("n_rows", "sum"),
                amount=("amount", lambda a: a.sum(min_count=1)),
            )
            .reset_index()
        )
        return grouped

    def excluded(self) -> pd.DataFrame:
        """Ledger lines of excluded input rows."""
        return self.ledger[self.ledger["action"] == "excluded"].reset_index(drop=True)

    def altered(self) -> pd.DataFrame:
        """Ledger lines of altered input rows (code changes, stadsdel aggregation)."""
        return self.ledger[self.ledger["action"] == "altered"].reset_index(drop=True)

    def summary(self) -> str:
        """A short plain-text summary for the console."""
        lines = [f"Panel build: {self.n_rows:,} rows", ""]
        if not self.series.empty:
            lines[0] += (
                f", {len(self.series)} series, "
                f"{int(self.series['kommuner'].max())} kommuner, years "
                f"{int(self.series['first_year'].min())}–{int(self.series['last_year'].max())}"
            )
        total = self.reconciliation[self.reconciliation["outcome"] == "(all)"]
        for row in total.itertuples(index=False):
            amount = "" if np.isnan(row.amount_in) else f"; sum in {row.amount_in:,.6g}"
            lines.append(
                f"  {row.table}: {row.rows_in:,} rows in = {row.rows_used:,} used + "
                f"{row.rows_excluded:,} excluded{amount}"
            )
        lines.append(f"  reconciles: {'yes' if self.reconciles else 'NO'}")
        reasons = self.by_reason()
        if not reasons.empty:
            lines.append("")
            for row in reasons.itertuples(index=False):
                where = f" in {row.kommuner} kommuner" if row.kommuner else ""
                lines.append(
                    f"  [{row.action}] {row.table}/{row.step}: {row.reason}: "
                    f"{row.n_rows:,} rows{where}"
                )
        if self.notes:
            lines.append("")
            lines.append("Notes:")
            lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)

    def to_markdown(self, max_lines: int = 40) -> str:
        """The report as Markdown: reconciliation, totals per reason, details, notes.

        Parameters
        ----------
        max_lines
            Detail lines shown per reason; the full ledger is :meth:`to_frame`.
        """
        parts = ["# Panel build report", "", self.summary().splitlines()[0], ""]
        parts += ["## Reconciliation", "", _markdown_table(self.reconciliation), ""]
        if not self.series.empty:
            parts += ["## Series", "", _markdown_table(self.series), ""]
        reasons = self.by_reason()
        if not reasons.empty:
            parts += ["## Excluded and altered rows by reason", "", _markdown_table(reasons), ""]
            parts += ["## Details", ""]
            keys = ["table", "action", "step", "reason"]
            for key, lines in self.ledger.groupby(keys, sort=False):
                table, action, step, reason = key
                parts.append(f"### [{action}] {table}/{step}: {reason}")
                parts.append("")
                shown = lines.drop(columns=keys).head(max_lines)
                parts.append(_markdown_table(shown))
                if len(lines) > max_lines:
                    parts.append("")
                    parts.append(f"... {len(lines) - max_lines:,} more lines (see to_frame()).")
                parts.append("")
        if self.notes:
            parts += ["## Notes", ""]
            parts += [f"- {note}" for note in self.notes]
            parts.append("")
        return "\n".join(parts)


def reconcile(
    table: str,
    outcome: np.ndarray | None,
    value: np.ndarray,
    used_rows: np.ndarray,
    used_outcome: np.ndarray | None,
    used_amount: np.ndarray,
    ledger: pd.DataFrame,
) -> pd.DataFrame:
    """Reconciliation lines for one input table.

    Parameters
    ----------
    table
        Input table name as in the ledger.
    outcome
        Per input row outcome (None for tables without outcomes).
    value
        Per input row count (NaN for tables without amounts).
    used_rows
        Boolean mask of input rows that reach the panel.
    used_outcome, used_amount
        Outcome and amount of each *base cell* feeding the panel (after stadsdel aggregation);
        the used amount is summed from these, independently of the row mask.
    ledger
        The ledger; its excluded lines for ``table`` give the excluded rows and amounts.
    """
    mask = (ledger["table"] == table) & (ledger["action"] == "excluded")
    excluded = ledger.loc[mask, ["outcome", "n_rows", "amount"]]
    has_amount = not np.all(np.isnan(value)) if len(value) else True
    ex_rows = excluded.groupby("outcome")["n_rows"].sum().to_dict()
    ex_amount = excluded.groupby("outcome")["amount"].sum().to_dict()
    groups = ["(all)"] if outcome is None else [*sorted(pd.unique(outcome)), "(all)"]
    lines = []
    for group in groups:
        if group == "(all)":
            in_mask = np.ones(len(value), dtype=bool)
            cell_mask = np.ones(len(used_amount), dtype=bool)
            rows_excluded = int(sum(ex_rows.values()))
            amount_excluded = float(sum(ex_amount.values()))
        else:
            in_mask = outcome == group
            cell_mask = used_outcome == group
            rows_excluded = int(ex_rows.get(group, 0))
            amount_excluded = float(ex_amount.get(group, 0.0))
        rows_in = int(in_mask.sum())
        rows_used = int((used_rows & in_mask).sum())
        if has_amount:
            amount_in = float(value[in_mask].sum())
            amount_used = float(used_amount[cell_mask].sum())
            amounts_ok = bool(
                np.isclose(amount_in, amount_used + amount_excluded, rtol=1e-9, atol=1e-6)
            )
        else:
            amount_in = amount_used = amount_excluded = np.nan
            amounts_ok = True
        lines.append(
            {
                "table": table,
                "outcome": group,
                "rows_in": rows_in,
                "rows_used": rows_used,
                "rows_excluded": rows_excluded,
                "amount_in": amount_in,
                "amount_used": amount_used,
                "amount_excluded": amount_excluded,
                "reconciles": rows_in == rows_used + rows_excluded and amounts_ok,
            }
        )
    return pd.DataFrame(lines, columns=list(RECONCILIATION_COLUMNS))
