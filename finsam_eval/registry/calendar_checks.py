"""Checks of an adoption calendar against the documented membership facts, and the
conversions between a calendar (kommun, förbund, start and end years) and a cohort frame.

:func:`validate_calendar` checks a calendar against what the seed documents establish
(:mod:`finsam_eval.registry.membership`) and the calendar model's named assumptions
(:mod:`finsam_eval.registry.calendar`) and returns a :class:`CalendarReport` of conflicts;
:func:`calendar_to_cohorts` and :func:`cohorts_to_calendar` convert between the two forms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from finsam_eval.registry import membership as _membership
from finsam_eval.registry.calendar import (
    DOC_2007,
    DOC_2015,
    FIRST_YEAR,
    GOTEBORG,
    LAST_DOCUMENTED_YEAR,
    CalendarModel,
    calendar_model,
)
from finsam_eval.registry.kommuner import UnknownKommunError, kommun_code, kommuner

__all__ = [
    "CalendarReport",
    "calendar_to_cohorts",
    "cohorts_to_calendar",
    "one_draw_cohorts",
    "validate_calendar",
]


_CONFLICT_COLUMNS = ["kommun_kod", "forbund", "check", "fact", "detail"]
_OPEN_END = 9999  # stands in for "still a member" in interval arithmetic
_FACT_2007 = f"April 2007 list ({DOC_2007}, table 'Län Samordningsförbund 2007-04-25')"
_FACT_2015 = f"April 2015 list ({DOC_2015}, BILAGA 4)"
_FACT_TABELL_1 = f"Tabell 1 ({DOC_2015}, section 3.2)"
_FACT_REGISTRY = "documented membership (registry/data/membership.csv)"


@dataclass(frozen=True)
class CalendarReport:
    """The result of :func:`validate_calendar`.

    Attributes
    ----------
    calendar
        The calendar as read: ``row`` (input position), ``kommun_input``, ``forbund_input``,
        ``kommun_kod`` ("" if unresolved), ``forbund_id`` ("" if unresolved), ``start_year``,
        ``end_year`` (Int64; ``end_year`` is the last year of membership, <NA> if none).
    conflicts
        One row per conflict: ``kommun_kod``, ``forbund``, ``check``, ``fact`` (the documented
        fact or named assumption, with its source) and ``detail``. Checks: unknown_kommun,
        unknown_forbund, invalid_year, end_before_start, duplicate, forbund_not_documented,
        member_2007_late, never_member_early, start_outside_interval, dated_fact,
        founders_together, not_member_2015, candidates_2007, yearly_count, assumption_count,
        exit (a gap in membership before 2015 under ``cumulative_membership``),
        treatment_date (a cohort frame under ``treatment_date="activity"`` whose dated kommun
        is not at its start of activity).
    counts
        Members per Tabell 1 year: ``year``, ``calendar``, ``documented``, ``rule`` ("equal"
        for 2008–2014, "at_least" for 2015 since later joiners in 2015 are not documented).
    """

    calendar: pd.DataFrame
    conflicts: pd.DataFrame
    counts: pd.DataFrame = field(repr=False)

    @property
    def ok(self) -> bool:
        """True when the calendar has no conflict with the documented facts."""
        return self.conflicts.empty

    def summary(self) -> str:
        """A readable list of the conflicts (or a one-line confirmation)."""
        if self.ok:
            return f"Calendar of {len(self.calendar)} rows is consistent with the documents."
        lines = [f"{len(self.conflicts)} conflict(s) with the documented membership:"]
        lines += [
            f"- [{row.check}] {row.kommun_kod or '-'} {row.forbund or '-'}: {row.detail}"
            for row in self.conflicts.itertuples(index=False)
        ]
        return "\n".join(lines)


def _read_calendar(calendar: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(calendar, pd.DataFrame):
        frame = calendar.copy()
    else:
        frame = pd.read_csv(calendar, dtype=str, keep_default_na=False)
    kommun_column = "kommun" if "kommun" in frame.columns else "kommun_kod"
    forbund_column = "forbund" if "forbund" in frame.columns else "forbund_id"
    missing = [c for c in (kommun_column, forbund_column, "start_year") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"calendar lacks column(s) {missing}: expected kommun (or kommun_kod), forbund "
            "(or forbund_id), start_year and optionally end_year; or kommun_kod and cohort"
        )
    end = frame["end_year"] if "end_year" in frame.columns else pd.Series(pd.NA, index=frame.index)
    return pd.DataFrame(
        {
            "row": range(len(frame)),
            "kommun_input": frame[kommun_column].astype(str).str.strip().to_numpy(),
            "forbund_input": frame[forbund_column].astype(str).str.strip().to_numpy(),
            "start_year": _years(frame["start_year"]).to_numpy(),
            "end_year": _years(end).to_numpy(),
        }
    )


def _years(values: pd.Series) -> pd.Series:
    text = values.astype(object).where(values.notna(), None)
    numbers = pd.to_numeric(pd.Series(text).replace("", None), errors="coerce")
    whole = numbers.where(numbers.eq(numbers.round()))
    return whole.astype("Int64")


def _resolve(values: pd.Series, resolver, error: type[Exception]) -> tuple[pd.Series, pd.Series]:
    """Resolve each distinct value once; return (resolved or "", error message or "")."""
    resolved: dict[str, str] = {}
    messages: dict[str, str] = {}
    for value in values.unique():  # a few hundred distinct names at most
        try:
            resolved[value] = resolver(value)
        except error as exc:
            resolved[value], messages[value] = "", str(exc)
    return values.map(resolved), values.map(lambda v: messages.get(v, ""))


def _resolved_calendar(calendar: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    table = _read_calendar(calendar)
    table["kommun_kod"], table["kommun_error"] = _resolve(
        table["kommun_input"], kommun_code, UnknownKommunError
    )
    table["forbund_id"], table["forbund_error"] = _resolve(
        table["forbund_input"], _membership.forbund_id, _membership.UnknownForbundError
    )
    return table


def _conflicts(frame: pd.DataFrame, check: str, fact: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=_CONFLICT_COLUMNS)
    return frame.assign(check=check, fact=fact)[_CONFLICT_COLUMNS]


def _per_kommun(codes, forbund, check: str, fact, detail) -> pd.DataFrame:
    """Conflict rows for kommuner; each of forbund, fact, detail is a str or one value per row."""
    codes = list(codes)

    def column(value):
        return [value] * len(codes) if isinstance(value, str) else list(value)

    frame = pd.DataFrame(
        {
            "kommun_kod": codes,
            "forbund": column(forbund),
            "check": check,
            "fact": column(fact),
            "detail": column(detail),
        }
    )
    return frame[_CONFLICT_COLUMNS]


def _text(*parts: str | pd.Series) -> pd.Series:
    """Row-wise conflict text: string literals and columns (as strings) joined in order."""
    out: str | pd.Series = ""
    for part in parts:
        out = out + (part.astype(str) if isinstance(part, pd.Series) else part)
    return out  # type: ignore[return-value]


def one_draw_cohorts(frame: pd.DataFrame) -> pd.Series:
    """The ``cohort`` column of a one-draw calendar as whole years (0 = not a member).

    Raises
    ------
    ValueError
        If ``frame`` holds several draws (column ``draw``), or a cohort is not a whole year or 0;
        the message gives the offending rows.
    """
    if "draw" in frame.columns and frame["draw"].nunique() > 1:
        raise ValueError(
            f"the calendar holds {frame['draw'].nunique()} draws (column draw); give one draw "
            "(e.g. frame[frame['draw'] == 0]) or pool every draw (estimate_over_calendars)"
        )
    cohort = pd.to_numeric(frame["cohort"], errors="coerce")
    bad = frame[cohort.isna() | cohort.ne(cohort.round()) | cohort.lt(0)]
    if len(bad):
        raise ValueError(
            f"cohort must be a whole year or 0 (not a member by {LAST_DOCUMENTED_YEAR}); "
            f"bad rows: {bad.head(10).to_dict('records')}"
        )
    return cohort.astype(int)


def cohorts_to_calendar(cohorts: pd.DataFrame, model: CalendarModel | None = None) -> pd.DataFrame:
    """Turn a (kommun_kod, cohort) frame (one draw) into what :func:`validate_calendar` reads.

    Parameters
    ----------
    cohorts
        ``kommun_kod`` and ``cohort`` (0 = not a member by 2015); a ``draw`` column, if present,
        must hold one value.
    model
        The model the cohorts follow (default ``calendar_model()``): its ``treatment_date``
        maps activity years back to membership years, and its ``goteborg`` option restores
        Göteborg's documented membership when the cohorts leave Göteborg out or untreated.

    Returns
    -------
    pandas.DataFrame
        ``kommun``, ``forbund`` (the förbund of the first membership: the April 2007 förbund
        for a kommun joining by 2007, else its April 2015 förbund), ``start_year`` (membership
        year), one row per member kommun.

    Raises
    ------
    ValueError
        If columns are missing, several draws are passed, or a cohort is not a whole year.
    """
    model = calendar_model() if model is None else model
    missing = [c for c in ("kommun_kod", "cohort") if c not in cohorts.columns]
    if missing:
        raise ValueError(f"cohort frame lacks column(s) {missing}: expected kommun_kod, cohort")
    cohort = one_draw_cohorts(cohorts)
    given = cohorts["kommun_kod"].astype(str).str.strip()
    # codes written as numbers (180) or names resolve; unresolvable ones pass through and are
    # reported by validate_calendar as unknown_kommun
    resolved, _ = _resolve(given, kommun_code, UnknownKommunError)
    frame = pd.DataFrame(
        {
            "kommun_kod": resolved.where(resolved.ne(""), given).to_numpy(),
            "cohort": cohort.astype(int).to_numpy(),
        }
    )
    facts = model.kommuner.set_index("kommun_kod")
    if model.goteborg != "treated":
        # "excluded"/"untreated" are analysis choices: Göteborg is still a documented member
        goteborg = pd.DataFrame(
            {"kommun_kod": [GOTEBORG], "cohort": [int(facts.loc[GOTEBORG, "earliest"])]}
        )
        frame = pd.concat([frame[frame["kommun_kod"].ne(GOTEBORG)], goteborg], ignore_index=True)
    frame = frame[frame["cohort"].ne(0)].reset_index(drop=True)
    start = frame["cohort"].copy()
    if model.treatment_date == "activity":
        shifted = facts["earliest"].ne(facts["member_earliest"]) & facts["member_earliest"].gt(0)
        at_activity = frame["kommun_kod"].map(shifted).fillna(False).astype(bool)
        at_activity &= frame["cohort"].eq(frame["kommun_kod"].map(facts["earliest"]))
        # the membership year: the activity year moved into the membership interval (Kalmar's
        # 2007 → 2005; Växjö's 2009 → 2008; Alvesta's 2008 stays in [2007, 2008])
        codes = frame.loc[at_activity, "kommun_kod"]
        start[at_activity] = start[at_activity].clip(
            codes.map(facts["member_earliest"]), codes.map(facts["member_latest"])
        )
    first = frame["kommun_kod"].map(facts["forbund"]).fillna("")
    # a kommun joining after 2007 joins through its April 2015 förbund
    later = frame["kommun_kod"].map(facts["forbund_2015"]).fillna("")
    forbund = first.where(start.le(2007) | later.eq(""), later)
    forbund = forbund.where(forbund.ne(""), "unknown")
    return pd.DataFrame(
        {
            "kommun": frame["kommun_kod"].to_numpy(),
            "forbund": forbund.to_numpy(),
            "start_year": start.to_numpy(),
        }
    )


def validate_calendar(
    calendar: pd.DataFrame | str | os.PathLike[str],
    *,
    strict: bool = False,
    model: CalendarModel | None = None,
) -> CalendarReport:
    """Check a calendar against every documented fact and the model's named assumptions.

    Parameters
    ----------
    calendar
        Either an exact membership calendar (a DataFrame or the path of a CSV) with columns
        ``kommun`` (name or code; ``kommun_kod`` is accepted too), ``forbund`` (id or name; or
        ``forbund_id``), ``start_year`` and optionally ``end_year`` (the last year of
        membership; empty = still a member), one row per kommun × förbund membership (a kommun
        moving to a merged förbund may have one row per förbund, Göteborg one per stadsdel
        förbund); or a cohort frame (``kommun_kod``, ``cohort``; 0 = not a member by 2015; e.g.
        one draw of :func:`compatible_calendars`), converted by :func:`cohorts_to_calendar`.
    strict
        Raise instead of returning a report with conflicts.
    model
        The :class:`CalendarModel` whose facts and assumptions are checked (default
        ``calendar_model()``; pass the model a cohort frame was drawn under).

    Returns
    -------
    CalendarReport
        ``report.ok`` is True when nothing conflicts; ``report.conflicts`` lists each conflict
        by kommun, förbund and fact.

    Raises
    ------
    ValueError
        With ``strict=True``, if any conflict is found (the message lists them all); always, if
        required columns are missing.

    Notes
    -----
    Kommun-level checks use the kommun's first start year (its membership cohort): within the
    model's interval (``start_outside_interval``; a dated kommun is reported as ``dated_fact``);
    a kommun named in the April 2007 list is a member in 2007; a kommun without a förbund in
    April 2015 does not start before 2015; each April 2015 member is a member in 2015; exactly
    ``N_CANDIDATES_2007`` of Norra Västmanland's candidates are members in 2007 (at least that
    many when ``no_joins_may_dec_2007`` is off). The kommuner of one join group of
    ``model.groups`` (founders of one förbund) start in the same year
    (``founders_together``). Yearly counts (kommuner with start ≤ year ≤ end) equal Tabell 1
    for 2008–2014 and reach at least its 241 in 2015; the other count constraints of
    ``model.constraints`` (end-2007 = 107, "knappt 55" in 2005) are checked as
    ``assumption_count``. A förbund a kommun joins up to 2015 must be one documented for it
    (or a predecessor/successor of it).
    """
    model = calendar_model() if model is None else model
    if not isinstance(calendar, pd.DataFrame):
        calendar = pd.read_csv(calendar, dtype=str, keep_default_na=False)
    from_cohorts = "cohort" in calendar.columns and "start_year" not in calendar.columns
    if from_cohorts:
        treatment = pd.concat(
            [_cohort_frame_checks(calendar), _treatment_date_checks(calendar, model)],
            ignore_index=True,
        )
        calendar = cohorts_to_calendar(calendar, model)
    else:
        treatment = pd.DataFrame(columns=_CONFLICT_COLUMNS)
    table = _resolved_calendar(calendar)
    parts: list[pd.DataFrame] = [treatment]
    kommun_known = table["kommun_kod"].ne("")
    table["forbund"] = table["forbund_id"].where(table["forbund_id"].ne(""), table["forbund_input"])

    bad = table[~kommun_known]
    parts.append(_conflicts(bad.assign(detail=bad["kommun_error"]), "unknown_kommun", ""))
    # a cohort row of an unknown kommun has no förbund either: reported once, as unknown_kommun
    no_forbund = table["forbund_id"].eq("") & ~(from_cohorts & ~kommun_known)
    bad = table[no_forbund]
    parts.append(_conflicts(bad.assign(detail=bad["forbund_error"]), "unknown_forbund", ""))
    bad = table[table["start_year"].isna()]
    detail = _text("row ", bad["row"], ": start_year missing or not a whole year")
    parts.append(_conflicts(bad.assign(detail=detail), "invalid_year", ""))
    bad = table[(table["end_year"] < table["start_year"]).fillna(False)]
    detail = _text("row ", bad["row"], ": end_year ", bad["end_year"], " before start_year ",
                   bad["start_year"])  # fmt: skip
    parts.append(_conflicts(bad.assign(detail=detail), "end_before_start", ""))

    valid = table[kommun_known & table["start_year"].notna()]
    parts.append(_duplicates(valid))
    parts.append(_undocumented_forbund(valid))
    parts.append(_kommun_checks(valid, model))
    parts.append(_group_checks(valid, model))
    counts = _yearly_counts(valid)
    wrong = counts[
        counts["rule"].eq("equal") & counts["calendar"].ne(counts["documented"])
        | counts["rule"].eq("at_least") & counts["calendar"].lt(counts["documented"])
    ]
    detail = _text(
        wrong["year"], ": ", wrong["calendar"],
        " member kommuner, Tabell 1 (004_0c1d07d624b103a9.txt, section 3.2) has ",
        wrong["rule"].map({"equal": "", "at_least": "at least "}), wrong["documented"],
    )  # fmt: skip
    wrong = wrong.assign(kommun_kod="", forbund="", detail=detail)
    parts.append(_conflicts(wrong, "yearly_count", _FACT_TABELL_1))
    parts.append(_assumption_counts(valid, model))
    if model.assumptions.cumulative_membership:
        parts.append(_exits(valid))

    conflicts = pd.concat(parts, ignore_index=True)
    conflicts = conflicts.astype({column: str for column in _CONFLICT_COLUMNS})
    columns = ["row", "kommun_input", "forbund_input", "kommun_kod", "forbund_id"]
    report = CalendarReport(
        calendar=table[[*columns, "start_year", "end_year"]], conflicts=conflicts, counts=counts
    )
    if strict and not report.ok:
        raise ValueError(report.summary())
    return report


def _cohort_frame_checks(cohorts: pd.DataFrame) -> pd.DataFrame:
    """Rows of a cohort frame that name no kommun, or a kommun twice (cohort 0 rows included)."""
    given = cohorts["kommun_kod"].astype(str).str.strip()
    resolved, errors = _resolve(given, kommun_code, UnknownKommunError)
    rows = []
    for position in np.flatnonzero(resolved.eq("").to_numpy()):
        if cohorts["cohort"].iloc[position] in (0, "0"):  # members are reported downstream
            rows.append(("", "", "unknown_kommun", "", f"row {position}: {errors.iloc[position]}"))
    known = resolved[resolved.ne("")]
    for code in sorted(set(known[known.duplicated()])):
        positions = np.flatnonzero(resolved.eq(code).to_numpy()).tolist()
        detail = f"rows {positions} give kommun {code} more than one cohort row"
        rows.append((code, "", "duplicate", "", detail))
    return pd.DataFrame(rows, columns=_CONFLICT_COLUMNS)


def _treatment_date_checks(cohorts: pd.DataFrame, model: CalendarModel) -> pd.DataFrame:
    """Under treatment_date="activity", a kommun with a dated start of activity has that cohort."""
    if model.treatment_date != "activity":
        return pd.DataFrame(columns=_CONFLICT_COLUMNS)
    facts = model.kommuner.set_index("kommun_kod")
    shifted = facts[facts["earliest"].ne(facts["member_earliest"]) & facts["member_earliest"].gt(0)]
    given = cohorts.assign(kommun_kod=cohorts["kommun_kod"].astype(str).str.strip())
    given = given[given["kommun_kod"].isin(shifted.index)].set_index("kommun_kod")["cohort"]
    wrong = given[pd.to_numeric(given, errors="coerce").ne(shifted.loc[given.index, "earliest"])]
    detail = _text("cohort ", wrong, " but the start of activity is ",
                   shifted.loc[wrong.index, "earliest"], " (treatment_date='activity')")  # fmt: skip
    return _per_kommun(
        wrong.index,
        shifted.loc[wrong.index, "forbund"],
        "treatment_date",
        shifted.loc[wrong.index, "dated_fact"],
        detail,
    )


def _membership_spans(rows: pd.DataFrame) -> pd.DataFrame:
    """Per kommun: first start, and whether the membership covers 2007 and 2015."""
    end = rows["end_year"].fillna(_OPEN_END).astype(int)
    start = rows["start_year"].astype(int)
    covers = pd.DataFrame(
        {
            "kommun_kod": rows["kommun_kod"],
            "first_start": start,
            "covers_2007": (start <= 2007) & (end >= 2007),
            "covers_2015": (start <= LAST_DOCUMENTED_YEAR) & (end >= LAST_DOCUMENTED_YEAR),
        }
    )
    return covers.groupby("kommun_kod").agg(
        first_start=("first_start", "min"),
        covers_2007=("covers_2007", "any"),
        covers_2015=("covers_2015", "any"),
    )


def _yearly_counts(rows: pd.DataFrame) -> pd.DataFrame:
    counts = _membership.member_counts()
    documented = counts[counts["series"].eq("tabell_1")][["year", "n_kommuner"]]
    start = rows["start_year"].to_numpy(dtype=np.int64)
    end = rows["end_year"].fillna(_OPEN_END).to_numpy(dtype=np.int64)
    codes = rows["kommun_kod"].to_numpy()
    years = documented["year"].to_numpy(dtype=np.int64)
    member = (start[None, :] <= years[:, None]) & (years[:, None] <= end[None, :])
    calendar = [len(set(codes[mask])) for mask in member]  # 8 years
    table = documented.rename(columns={"n_kommuner": "documented"})
    table["calendar"] = calendar
    table["documented"] = table["documented"].astype(int)
    table["rule"] = np.where(table["year"] >= LAST_DOCUMENTED_YEAR, "at_least", "equal")
    return table[["year", "calendar", "documented", "rule"]].reset_index(drop=True)


def _duplicates(valid: pd.DataFrame) -> pd.DataFrame:
    rows = valid[valid["forbund_id"].ne("")][
        ["row", "kommun_kod", "forbund_id", "start_year", "end_year"]
    ]
    pairs = rows.merge(rows, on=["kommun_kod", "forbund_id"], suffixes=("", "_other"))
    pairs = pairs[pairs["row"] < pairs["row_other"]]
    end = pairs["end_year"].fillna(_OPEN_END)
    end_other = pairs["end_year_other"].fillna(_OPEN_END)
    overlap = (pairs["start_year"] <= end_other) & (pairs["start_year_other"] <= end)
    pairs = pairs[overlap]
    detail = _text("rows ", pairs["row"], " and ", pairs["row_other"],
                   " give overlapping memberships of the same förbund")  # fmt: skip
    pairs = pairs.assign(forbund=pairs["forbund_id"], detail=detail)
    return _conflicts(pairs, "duplicate", "")


def _undocumented_forbund(valid: pd.DataFrame) -> pd.DataFrame:
    documented_rows = _membership.documented_membership()
    documented = documented_rows[["kommun_kod", "forbund_id"]].assign(documented=True)
    rows = valid[
        valid["forbund_id"].ne("")
        & (valid["start_year"] <= LAST_DOCUMENTED_YEAR)
        & valid["kommun_kod"].isin(documented["kommun_kod"])
    ]
    rows = rows.merge(documented, on=["kommun_kod", "forbund_id"], how="left")
    rows = rows[rows["documented"].isna()]
    known = documented_rows.groupby("kommun_kod")["forbund_id"].agg(", ".join)
    detail = (
        "not documented as a member of "
        + rows["forbund_id"]
        + "; documented: "
        + rows["kommun_kod"].map(known)
    )
    rows = rows.assign(forbund=rows["forbund_id"], detail=detail)
    return _conflicts(rows, "forbund_not_documented", _FACT_REGISTRY)


def _kommun_checks(valid: pd.DataFrame, model: CalendarModel) -> pd.DataFrame:
    spans = _membership_spans(valid)
    facts = model.kommuner
    codes = facts["kommun_kod"].to_numpy()
    spans = spans.reindex(codes)
    start = spans["first_start"].to_numpy(dtype=float)  # NaN: absent from the calendar
    has_rows = ~np.isnan(start)
    covers_2007 = spans["covers_2007"].eq(True).to_numpy()
    covers_2015 = spans["covers_2015"].eq(True).to_numpy()
    low = facts["member_earliest"].to_numpy()
    high = facts["member_latest"].to_numpy()
    never = low == 0
    named_2007 = facts["member_2007"].eq("yes").to_numpy()
    dated_fact = facts["dated_fact"].to_numpy()
    forbund = facts["forbund"].to_numpy()
    forbund_2015 = facts["forbund_2015"].to_numpy()

    def state(k: int) -> str:
        return f"first start {int(start[k])}" if has_rows[k] else "absent from the calendar"

    rows: list[tuple[str, str, str, str, str]] = []
    for k in np.flatnonzero(named_2007 & ~covers_2007):
        detail = f"named in the April 2007 list ({DOC_2007}) but not a member in 2007 ({state(k)})"
        rows.append((codes[k], forbund[k], "member_2007_late", _FACT_2007, detail))
    for k in np.flatnonzero(never & has_rows & (start < LAST_DOCUMENTED_YEAR)):
        detail = (
            f"without a förbund in April 2015 ({DOC_2015}, BILAGA 4) but starts in {int(start[k])}"
        )
        rows.append((codes[k], "", "never_member_early", _FACT_2015, detail))
    outside = has_rows & ~never & ~(named_2007 & ~covers_2007) & ((start < low) | (start > high))
    for k in np.flatnonzero(outside):
        if dated_fact[k]:
            detail = f"first start {int(start[k])} but dated {low[k]} ({dated_fact[k]})"
            rows.append((codes[k], forbund[k], "dated_fact", dated_fact[k], detail))
        else:
            detail = (
                f"first start {int(start[k])} outside the documented interval [{low[k]}, {high[k]}]"
            )
            fact = "interval (CalendarModel.kommuner)"
            rows.append((codes[k], forbund[k], "start_outside_interval", fact, detail))
    for k in np.flatnonzero((forbund_2015 != "") & ~covers_2015):
        detail = (
            f"a member in April 2015 ({DOC_2015}, BILAGA 4) but not in the calendar's 2015 "
            f"({state(k)})"
        )
        rows.append((codes[k], forbund_2015[k], "not_member_2015", _FACT_2015, detail))

    n_in_2007 = int((covers_2007 & facts["member_2007"].eq("candidate").to_numpy()).sum())
    need = _membership.N_CANDIDATES_2007
    exact = model.assumptions.no_joins_may_dec_2007
    if n_in_2007 != need if exact else n_in_2007 < need:
        detail = (
            f"{n_in_2007} of Norra Västmanland's six 2015 kommuner are members in 2007; the April "
            f"2007 table ({DOC_2007}) has {need}"
            + ("" if exact else " by April (at least that many by the end of 2007)")
        )
        fact = f"{_FACT_2007}: Västmanland 3 kommuner"
        rows.append(("", "norra_vastmanland", "candidates_2007", fact, detail))
    return pd.DataFrame(rows, columns=_CONFLICT_COLUMNS)


def _group_checks(valid: pd.DataFrame, model: CalendarModel) -> pd.DataFrame:
    """Founders of one förbund (a join group of the model) start in one year."""
    first = valid.groupby("kommun_kod")["start_year"].min()
    facts = model.kommuner.set_index("kommun_kod")
    members = facts[facts["group"].ne("")][["group"]].copy()
    members["start"] = members.index.map(first)
    # Norra Västmanland's three unnamed 2007 members form a group of whichever three start by
    # 2007 (assumption listed_2007_join_together)
    if model.assumptions.listed_2007_join_together:
        cands = facts.index[facts["member_2007"].eq("candidate")]
        cand_start = pd.Series(cands.map(first), index=cands)
        early = cand_start[(cand_start <= 2007).fillna(False)]
        extra = pd.DataFrame({"group": "listed_2007:norra_vastmanland", "start": early})
        members = pd.concat([members, extra])
    if members.empty:
        return pd.DataFrame(columns=_CONFLICT_COLUMNS)
    stats = members.groupby("group")["start"].agg(["nunique", "count", "size"])
    split = stats.index[
        (stats["nunique"] > 1) | ((stats["count"] > 0) & (stats["count"] < stats["size"]))
    ]
    bad = members[members["group"].isin(split)]
    if bad.empty:
        return pd.DataFrame(columns=_CONFLICT_COLUMNS)
    shown = bad["start"].astype("Int64").astype(str).replace("<NA>", "absent")
    listing = (bad.index.to_series() + ":" + shown).groupby(bad["group"]).agg(", ".join)
    groups = model.groups.set_index("group")
    detail = "founders of one förbund split over " + bad["group"].map(listing)
    detail += " (" + bad["group"].map(groups["source"]) + ")"
    return _per_kommun(
        bad.index, bad["group"].map(groups["forbund"]), "founders_together", bad["group"], detail
    )


def _exits(valid: pd.DataFrame) -> pd.DataFrame:
    """Years between a kommun's first start and 2015 in which no membership row covers it."""
    years = np.arange(FIRST_YEAR, LAST_DOCUMENTED_YEAR + 1)
    start = valid["start_year"].to_numpy(dtype=np.int64)
    end = valid["end_year"].fillna(_OPEN_END).to_numpy(dtype=np.int64)
    covered = pd.DataFrame(
        (start[:, None] <= years[None, :]) & (years[None, :] <= end[:, None]), columns=years
    )
    covered = covered.groupby(valid["kommun_kod"].to_numpy()).any()
    first = valid.groupby("kommun_kod")["start_year"].min().reindex(covered.index)
    after_start = years[None, :] >= first.to_numpy(dtype=np.int64)[:, None]
    gaps = after_start & ~covered.to_numpy()
    rows = []
    fact = "assumption cumulative_membership (no exit documented up to 2015)"
    for k in np.flatnonzero(gaps.any(axis=1)):
        missing = years[gaps[k]].tolist()
        detail = f"not a member in {missing} after its first start {int(first.iloc[k])}"
        rows.append((covered.index[k], "", "exit", fact, detail))
    return pd.DataFrame(rows, columns=_CONFLICT_COLUMNS)


def _assumption_counts(valid: pd.DataFrame, model: CalendarModel) -> pd.DataFrame:
    """Count constraints of the model other than Tabell 1 (end-2007 = 107, 'knappt 55')."""
    first = valid.groupby("kommun_kod")["start_year"].min()
    rows = []
    for row in model.constraints[model.constraints["basis"].ne("Tabell 1")].itertuples(index=False):
        count = int((first <= row.year).sum())
        high = None if pd.isna(row.high) else int(row.high)
        if count < row.low or (high is not None and count > high):
            bound = f"[{row.low}, {'∞' if high is None else high}]"
            detail = f"{count} member kommuner by the end of {row.year}; the model requires {bound}"
            rows.append(("", "", "assumption_count", f"{row.basis}; {row.source}", detail))
    return pd.DataFrame(rows, columns=_CONFLICT_COLUMNS)


def calendar_to_cohorts(calendar: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """Reduce an exact membership calendar to one adoption cohort per kommun.

    Parameters
    ----------
    calendar
        As for :func:`validate_calendar` (an exact membership calendar).

    Returns
    -------
    pandas.DataFrame
        One row per kommun (all 290), sorted by code: ``kommun_kod``, ``cohort`` (int, first
        start year, 0 = no membership in the calendar), ``forbund`` (id of the förbund at first
        membership; the alphabetically first if several start together, "" for none),
        ``exit_year`` (Int64: the last year of membership when every membership of the kommun
        has ended, else <NA>).

    Raises
    ------
    ValueError
        If a kommun or förbund cannot be resolved or a start year is missing.
    """
    table = _resolved_calendar(calendar)
    problems = table.loc[table["kommun_error"].ne(""), "kommun_error"].tolist()
    problems += table.loc[table["forbund_error"].ne(""), "forbund_error"].tolist()
    problems += [
        f"row {r}: start_year missing" for r in table.loc[table["start_year"].isna(), "row"]
    ]
    if problems:
        raise ValueError("cannot derive cohorts:\n- " + "\n- ".join(dict.fromkeys(problems)))
    first = table.sort_values(["kommun_kod", "start_year", "forbund_id"]).drop_duplicates(
        "kommun_kod"
    )
    ended = table.groupby("kommun_kod")["end_year"].agg(
        lambda ends: ends.max() if ends.notna().all() else pd.NA
    )
    out = kommuner()[["kommun_kod"]].merge(
        first[["kommun_kod", "start_year", "forbund_id"]], on="kommun_kod", how="left"
    )
    out["cohort"] = out["start_year"].fillna(0).astype(int)
    out["forbund"] = out["forbund_id"].fillna("")
    out["exit_year"] = out["kommun_kod"].map(ended).astype("Int64")
    return out[["kommun_kod", "cohort", "forbund", "exit_year"]]
