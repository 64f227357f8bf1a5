"""Documented samordningsförbund membership: what the source documents establish, and no more.

The facts are hand-curated from the seed documents into ``registry/data`` (nothing is parsed at
run time); every row names its source document and table or section:

- ``forbund.csv``: every förbund the documents name (the 58 of the April 2007 table, the 80 of
  the April 2015 appendix, and the predecessors of the 2014/15 merges), with the förbund it was
  merged into.
- ``membership.csv``: one row per documented kommun × förbund fact, with the interval of years in
  which the kommun can have started its membership (see "Adoption intervals" below).
- ``never_members_2015.csv``: the 49 kommuner without a förbund in April 2015, per län.
- ``member_counts.csv``: member counts by year (Tabell 1 of the 2015 Riksdag follow-up, the 2006
  and 2007 snapshots, the ISF report's approximate figures).

Adoption intervals (the year a kommun first became a member, inclusive bounds)
-----------------------------------------------------------------------------
- named in the April 2007 list: [2005, 2007]; the lower bound is Statskontoret's "De första
  förbunden startade år 2005" (000_425f59042e5590ac.txt, section 4.3.1);
- one of Norra Västmanland's six kommuner of 2015 (the 2007 table says "3 kommuner" without
  names): [2005, 2014], with exactly ``N_CANDIDATES_2007`` of them members in 2007;
- a 2015 member not in the April 2007 list: [2008, 2014]; 2014 because Tabell 1 has 240 members
  in 2014 and Säter (April 2015) is the one addition up to May 2015's 241;
- narrower where a document dates the förbund and its members (Göteborg Nordost and Hisingen
  2005, Kalmar län's eleven founders 2005 (formed 1 October 2005, 004 BILAGA 2), Norra Dalsland 2005, Skellefteå 2005, Norra Bohuslän [2006, 2007], Malmö 2007, Falun and
  Borlänge 2007 ("nystartade" in April 2007), Uddevalla/Orust/Färgelanda 2008, Växjö 2008, Säffle
  and Årjäng 2012, Härjedalen/Krokom/Ragunda [2008, 2011] (Jämtland's länsförbund of 2011),
  Norsjö 2014, Gävleborg's ten kommuner 2014, Säter 2015);
- Alvesta: [2007, 2008]; its förbund was formed on 1 January 2007 (004, BILAGA 2) but Alvesta is
  not in the April 2007 list, so the documents conflict and the interval spans both readings.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import pandas as pd

from finsam_eval.registry.kommuner import UnknownKommunError, kommun_code, kommuner

__all__ = [
    "CalendarReport",
    "FIRST_FORBUND_YEAR",
    "N_CANDIDATES_2007",
    "UnknownForbundError",
    "adoption_intervals",
    "calendar_to_cohorts",
    "candidates_2007",
    "documented_membership",
    "forbund",
    "forbund_id",
    "member_counts",
    "members_2007",
    "members_2015",
    "never_members_2015",
    "validate_calendar",
]

#: The first förbund started in 2005 (000_425f59042e5590ac.txt, section 4.3.1).
FIRST_FORBUND_YEAR = 2005
#: Norra Västmanland had "3 kommuner" in April 2007, unnamed (000, table 2007-04-25).
N_CANDIDATES_2007 = 3
# The April 2015 appendix is the last documented state; membership after it is not documented.
_LAST_DOCUMENTED_YEAR = 2015


class UnknownForbundError(KeyError, ValueError):
    """Raised when a förbund id or name cannot be resolved; the message suggests near matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


def _read(name: str) -> pd.DataFrame:
    path = resources.files("finsam_eval.registry").joinpath("data", name)
    with path.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


def _to_int(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.replace("", None)).astype("Int64")


@cache
def _forbund() -> pd.DataFrame:
    table = _read("forbund.csv")
    for column in ("first_documented", "formed", "merged_year"):
        table[column] = _to_int(table[column])
    table["first_documented"] = table["first_documented"].astype(int)
    for column in ("listed_2007", "listed_2015"):
        table[column] = table[column].eq("true")
    return table


@cache
def _membership() -> pd.DataFrame:
    table = _read("membership.csv")
    table["earliest_start"] = table["earliest_start"].astype(int)
    table["latest_start"] = table["latest_start"].astype(int)
    table["member_2015"] = table["member_2015"].eq("true")
    names = kommuner()[["kommun_kod", "kommun"]]
    table = table.merge(names, on="kommun_kod", how="left", validate="m:1")
    columns = [
        "kommun_kod",
        "kommun",
        "forbund_id",
        "earliest_start",
        "latest_start",
        "member_2007",
        "member_2015",
        "coverage",
        "stadsdel_area",
        "name_in_source",
        "name_2007",
        "interval_rule",
        "source",
    ]
    return table[columns]


def forbund() -> pd.DataFrame:
    """Return every förbund the documents name.

    Returns
    -------
    pandas.DataFrame
        One row per förbund:

        - ``forbund_id``: short stable ASCII slug;
        - ``name``: the name in the April 2015 appendix (hyphenation repaired), else the name the
          documents give;
        - ``name_2007``: how the April 2007 table names it ("" if not listed);
        - ``aliases``: other names (";"-joined), accepted by :func:`forbund_id`;
        - ``lan_kods``: the län of its member kommuner (";"-joined; BÅD-ESÅ spans "14;17");
        - ``table_lan_2007``: the län row under which the 2007 table counts it (Karlskoga/Degerfors
          under "Värmland" although both kommuner are in Örebro län);
        - ``coverage``: "whole" (whole kommuner), "partial" (Göteborg's stadsdel förbund) or
          "target_group" (Jämtland's 2007 länsförbund for people with psychiatric disabilities);
        - ``first_documented``: the first year a document places it as existing;
        - ``formed``: formation year where a document states it (<NA> otherwise);
        - ``listed_2007``, ``listed_2015``: in the April 2007 table / April 2015 appendix;
        - ``merged_into``: the förbund that succeeded it ("" if none), ``merged_year`` the first
          year of the successor where documented;
        - ``note``, ``source``.

    Notes
    -----
    A 2007 förbund gets the id of its 2015 förbund when its 2007 kommuner are all in that one 2015
    förbund and no merge is documented (e.g. the 2007 "Haninge" is Östra Södertörn); the note says
    so. The 2007 footnote's "Mölndal, Partille, Härryda och Lerum" is read as two förbund (Mölndal;
    Partille, Härryda och Lerum), the grouping that gives Västra Götaland its 19 förbund.
    """
    return _forbund().copy()


def documented_membership() -> pd.DataFrame:
    """Return the documented kommun × förbund facts.

    Returns
    -------
    pandas.DataFrame
        One row per kommun × förbund fact:

        - ``kommun_kod``, ``kommun``, ``forbund_id``;
        - ``earliest_start``, ``latest_start`` (int): inclusive bounds of the year the kommun
          first became a member through this förbund or a förbund it succeeded (module docstring);
        - ``member_2007``: "yes" if the April 2007 list names the kommun under this förbund,
          "candidate" for Norra Västmanland's six 2015 kommuner (3 of them were members), else "no";
        - ``member_2015`` (bool): the April 2015 appendix lists the kommun under this förbund;
        - ``coverage``: "whole" or "partial" (Göteborg's stadsdel förbund), ``stadsdel_area``;
        - ``name_in_source``: the spelling in the row's list (the April 2015 appendix for 2015
          members), ``name_2007``: the spelling in the April 2007 table ("" if not named there;
          "Ljusnarberg" there, "Ljusnaberg" in 2015);
        - ``interval_rule`` (listed_2007, listed_2015_only, candidate_2007, dated,
          newly_started_2007, conflicting), ``source``.
    """
    return _membership().copy()


@cache
def _adoption_intervals() -> pd.DataFrame:
    rows = _membership()
    per_kommun = rows.groupby("kommun_kod").agg(
        # the first membership is the earliest of the memberships, so both bounds take the minimum
        earliest_cohort=("earliest_start", "min"),
        latest_cohort=("latest_start", "min"),
    )
    in_2015 = rows[rows["member_2015"]].sort_values(["kommun_kod", "forbund_id"])
    forbund_2015 = in_2015.groupby("kommun_kod").agg(
        forbund_2015=("forbund_id", "first"),
        forbund_2015_all=("forbund_id", ";".join),
        coverage=("coverage", "first"),
    )
    # a kommun is a 2007 member if any of its rows says so ("yes" beats "candidate" beats "no")
    rank = {"no": 0, "candidate": 1, "yes": 2}
    status = rows["member_2007"].map(rank).groupby(rows["kommun_kod"]).max()
    status = status.map({value: key for key, value in rank.items()})
    table = kommuner()[["kommun_kod", "kommun", "lan_kod"]]
    table = table.join(per_kommun, on="kommun_kod").join(forbund_2015, on="kommun_kod")
    table = table.join(status.rename("member_2007"), on="kommun_kod")
    table["never_member_2015"] = table["kommun_kod"].isin(_never_members_frame()["kommun_kod"])
    table[["earliest_cohort", "latest_cohort"]] = (
        table[["earliest_cohort", "latest_cohort"]].fillna(0).astype(int)
    )
    table = table.fillna({"forbund_2015": "", "forbund_2015_all": "", "coverage": ""})
    table["member_2007"] = table["member_2007"].fillna("no")
    columns = [
        "kommun_kod",
        "kommun",
        "lan_kod",
        "earliest_cohort",
        "latest_cohort",
        "never_member_2015",
        "member_2007",
        "forbund_2015",
        "forbund_2015_all",
        "coverage",
    ]
    return table[columns].reset_index(drop=True)


def adoption_intervals() -> pd.DataFrame:
    """Return the documented interval of each kommun's first membership year.

    Returns
    -------
    pandas.DataFrame
        One row per kommun (all 290), sorted by code:

        - ``kommun_kod``, ``kommun``, ``lan_kod``;
        - ``earliest_cohort``, ``latest_cohort`` (int): inclusive bounds of the first membership
          year; 0/0 for the 49 kommuner without a förbund in April 2015 (whether they joined
          later is not documented, hence no "never" claim beyond 2015);
        - ``never_member_2015`` (bool);
        - ``member_2007``: "yes", "candidate" (Norra Västmanland) or "no";
        - ``forbund_2015``: the förbund in April 2015 ("" if none); Göteborg is in four stadsdel
          förbund, all listed in ``forbund_2015_all`` (";"-joined), the first of them here;
        - ``coverage``: "whole" or "partial" (Göteborg), "" for never-members.
    """
    return _adoption_intervals().copy()


@cache
def _never_members_frame() -> pd.DataFrame:
    return _read("never_members_2015.csv")


def member_counts() -> pd.DataFrame:
    """Return the documented member counts by year.

    Returns
    -------
    pandas.DataFrame
        ``year`` (int), ``as_of`` ("YYYY-MM" for dated snapshots, "" for yearly figures),
        ``n_kommuner``, ``n_forbund``, ``n_lan`` (Int64, <NA> when not given), ``approximate``
        (bool: the ISF report's "knappt 55" in 2005 and "nästan 190" in 2010), ``series``
        ("tabell_1" for the 2008–May 2015 series of 004's Tabell 1, "snapshot" for the April 2006,
        April 2007 and April 2015 lists, "isf_2019" for the approximate figures), ``note``,
        ``source``. 2010 and 2015 appear twice (two sources).
    """
    table = _read("member_counts.csv")
    table["year"] = table["year"].astype(int)
    for column in ("n_kommuner", "n_forbund", "n_lan"):
        table[column] = _to_int(table[column])
    table["approximate"] = table["approximate"].eq("true")
    return table


def members_2007() -> frozenset[str]:
    """Return the codes of the 104 kommuner named in the April 2007 list.

    The list's total is 107: the other three are Norra Västmanland's unnamed members, see
    :func:`candidates_2007` and ``N_CANDIDATES_2007``.
    """
    rows = _membership()
    return frozenset(rows.loc[rows["member_2007"].eq("yes"), "kommun_kod"])


def candidates_2007() -> frozenset[str]:
    """Return the six kommuner of which ``N_CANDIDATES_2007`` (3) were members in April 2007.

    The 2007 table gives Norra Västmanland as "3 kommuner" without names; in April 2015 it has
    Fagersta, Norberg, Skinnskatteberg, Sala, Hallstahammar and Surahammar.
    """
    rows = _membership()
    return frozenset(rows.loc[rows["member_2007"].eq("candidate"), "kommun_kod"])


def members_2015() -> frozenset[str]:
    """Return the codes of the 241 kommuner in a förbund in April 2015."""
    rows = _membership()
    return frozenset(rows.loc[rows["member_2015"], "kommun_kod"])


def never_members_2015() -> frozenset[str]:
    """Return the codes of the 49 kommuner without a förbund in April 2015."""
    return frozenset(_never_members_frame()["kommun_kod"])


# --- förbund name resolution ------------------------------------------------------------------

_FILLER = {"samordningsforbundet", "samordningsforbund", "i", "och", "o"}


def _key(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key without filler words."""
    text = unicodedata.normalize("NFKD", str(text).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(word for word in words if word not in _FILLER)


@cache
def _forbund_index() -> dict[str, str]:
    table = _forbund()
    pairs: list[tuple[str, str]] = []
    for column in ("forbund_id", "name", "name_2007"):
        pairs += list(zip(table[column], table["forbund_id"], strict=True))
    for aliases, fid in zip(table["aliases"], table["forbund_id"], strict=True):
        pairs += [(alias, fid) for alias in aliases.split(";") if alias]
    index: dict[str, str] = {}
    ambiguous: set[str] = set()
    for text, fid in pairs:
        key = _key(text)
        if not key:
            continue
        if index.get(key, fid) != fid:
            ambiguous.add(key)
        index[key] = fid
    return {key: fid for key, fid in index.items() if key not in ambiguous}


def forbund_id(name_or_id: str) -> str:
    """Resolve a förbund id, name, 2007 name or alias to its id.

    Parameters
    ----------
    name_or_id
        E.g. ``"bad_esa"``, ``"BÅD-ESÅ"``, ``"Samordningsförbundet Göteborg Hisingen (Delta)"``,
        ``"Delta"``, ``"SkövdeHjoTiBorg"``. Matching ignores case, accents, punctuation and the
        words *samordningsförbund(et)*, *i*, *och*.

    Returns
    -------
    str
        The ``forbund_id``.

    Raises
    ------
    UnknownForbundError
        If nothing matches; the message names the input and suggests near matches.
    """
    index = _forbund_index()
    key = _key(name_or_id)
    if key in index:
        return index[key]
    suggestions = difflib.get_close_matches(key, list(index), n=3, cutoff=0.6)
    ids = sorted({index[s] for s in suggestions})
    hint = f" Did you mean: {', '.join(ids)}?" if ids else ""
    raise UnknownForbundError(f"Unknown förbund {name_or_id!r}.{hint}")


# --- user calendars -----------------------------------------------------------------------------

_CONFLICT_COLUMNS = ["kommun_kod", "forbund", "check", "detail"]
_OPEN_END = 9999  # stands in for "still a member" in interval arithmetic


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
        One row per conflict: ``kommun_kod``, ``forbund``, ``check``, ``detail``. Checks:
        unknown_kommun, unknown_forbund, invalid_year, end_before_start, duplicate,
        forbund_not_documented, member_2007_late, never_member_early, start_outside_interval,
        not_member_2015, candidates_2007, yearly_count.
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
            "(or forbund_id), start_year and optionally end_year"
        )
    end = frame["end_year"] if "end_year" in frame.columns else pd.Series(pd.NA, index=frame.index)
    out = pd.DataFrame(
        {
            "row": range(len(frame)),
            "kommun_input": frame[kommun_column].astype(str).str.strip().to_numpy(),
            "forbund_input": frame[forbund_column].astype(str).str.strip().to_numpy(),
            "start_year": _years(frame["start_year"]).to_numpy(),
            "end_year": _years(end).to_numpy(),
        }
    )
    return out


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
        table["forbund_input"], forbund_id, UnknownForbundError
    )
    return table


def _conflicts(frame: pd.DataFrame, check: str) -> pd.DataFrame:
    frame = frame.assign(check=check)
    return frame[_CONFLICT_COLUMNS]


def _membership_spans(rows: pd.DataFrame) -> pd.DataFrame:
    """Per kommun: first start, and whether the membership covers 2007 and 2015."""
    end = rows["end_year"].fillna(_OPEN_END).astype(int)
    start = rows["start_year"].astype(int)
    covers = pd.DataFrame(
        {
            "kommun_kod": rows["kommun_kod"],
            "first_start": start,
            "covers_2007": (start <= 2007) & (end >= 2007),
            "covers_2015": (start <= _LAST_DOCUMENTED_YEAR) & (end >= _LAST_DOCUMENTED_YEAR),
        }
    )
    return covers.groupby("kommun_kod").agg(
        first_start=("first_start", "min"),
        covers_2007=("covers_2007", "any"),
        covers_2015=("covers_2015", "any"),
    )


def _yearly_counts(rows: pd.DataFrame) -> pd.DataFrame:
    counts = member_counts()
    documented = counts[counts["series"].eq("tabell_1")][["year", "n_kommuner"]]
    pairs = rows[["kommun_kod", "start_year", "end_year"]].merge(documented[["year"]], how="cross")
    end = pairs["end_year"].fillna(_OPEN_END)
    member = (pairs["start_year"] <= pairs["year"]) & (pairs["year"] <= end)
    calendar = pairs[member].groupby("year")["kommun_kod"].nunique()
    table = documented.rename(columns={"n_kommuner": "documented"})
    table["calendar"] = table["year"].map(calendar).fillna(0).astype(int)
    table["documented"] = table["documented"].astype(int)
    table["rule"] = table["year"].map(lambda y: "at_least" if y >= 2015 else "equal")
    return table[["year", "calendar", "documented", "rule"]].reset_index(drop=True)


def validate_calendar(
    calendar: pd.DataFrame | str | os.PathLike[str], *, strict: bool = False
) -> CalendarReport:
    """Check an exact membership calendar against the documented facts.

    Parameters
    ----------
    calendar
        A DataFrame or the path of a CSV with columns ``kommun`` (name or code; ``kommun_kod``
        is accepted too), ``forbund`` (id or name; or ``forbund_id``), ``start_year`` and
        optionally ``end_year`` (the last year of membership; empty = still a member). One row per
        kommun × förbund membership; a kommun moving to a merged förbund may have one row per
        förbund, and Göteborg one row per stadsdel förbund.
    strict
        Raise instead of returning a report with conflicts.

    Returns
    -------
    CalendarReport
        ``report.ok`` is True when nothing conflicts; ``report.conflicts`` lists each conflict.

    Raises
    ------
    ValueError
        With ``strict=True``, if any conflict is found (the message lists them all); always, if
        required columns are missing.

    Notes
    -----
    Kommun-level checks use the kommun's first start year (its cohort): within
    :func:`adoption_intervals`; a kommun named in the April 2007 list must be a member in 2007; a
    kommun without a förbund in April 2015 must not start before 2015; each April 2015 member
    must be a member in 2015; exactly ``N_CANDIDATES_2007`` of Norra Västmanland's candidates
    are members in 2007. Yearly counts (kommuner with start ≤ year ≤ end) must equal Tabell 1 for
    2008–2014 and reach at least its 241 in 2015. A förbund a kommun joins up to 2015 must be one
    documented for it (or a predecessor/successor of it).
    """
    table = _resolved_calendar(calendar)
    parts: list[pd.DataFrame] = []
    kommun_known = table["kommun_kod"].ne("")
    table["forbund"] = table["forbund_id"].where(table["forbund_id"].ne(""), table["forbund_input"])

    bad = table[~kommun_known]
    parts.append(_conflicts(bad.assign(detail=bad["kommun_error"]), "unknown_kommun"))
    bad = table[table["forbund_id"].eq("")]
    parts.append(_conflicts(bad.assign(detail=bad["forbund_error"]), "unknown_forbund"))
    bad = table[table["start_year"].isna()]
    detail = "row " + bad["row"].astype(str) + ": start_year missing or not a whole year"
    parts.append(_conflicts(bad.assign(detail=detail), "invalid_year"))
    bad = table[(table["end_year"] < table["start_year"]).fillna(False)]
    detail = (
        "row "
        + bad["row"].astype(str)
        + ": end_year "
        + bad["end_year"].astype(str)
        + " before start_year "
        + bad["start_year"].astype(str)
    )
    parts.append(_conflicts(bad.assign(detail=detail), "end_before_start"))

    valid = table[kommun_known & table["start_year"].notna()]
    parts.append(_duplicates(valid))
    parts.append(_undocumented_forbund(valid))
    parts.append(_kommun_checks(valid))
    counts = _yearly_counts(valid)
    wrong = counts[
        counts["rule"].eq("equal") & counts["calendar"].ne(counts["documented"])
        | counts["rule"].eq("at_least") & counts["calendar"].lt(counts["documented"])
    ]
    detail = (
        wrong["year"].astype(str)
        + ": "
        + wrong["calendar"].astype(str)
        + " member kommuner, Tabell 1 (004_0c1d07d624b103a9.txt, section 3.2) has "
        + wrong["rule"].map({"equal": "", "at_least": "at least "})
        + wrong["documented"].astype(str)
    )
    parts.append(_conflicts(wrong.assign(kommun_kod="", forbund="", detail=detail), "yearly_count"))

    conflicts = pd.concat(parts, ignore_index=True)
    conflicts = conflicts.astype({column: str for column in _CONFLICT_COLUMNS})
    calendar_out = table[
        [
            "row",
            "kommun_input",
            "forbund_input",
            "kommun_kod",
            "forbund_id",
            "start_year",
            "end_year",
        ]
    ]
    report = CalendarReport(calendar=calendar_out, conflicts=conflicts, counts=counts)
    if strict and not report.ok:
        raise ValueError(report.summary())
    return report


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
    detail = (
        "rows "
        + pairs["row"].astype(str)
        + " and "
        + pairs["row_other"].astype(str)
        + " give overlapping memberships of the same förbund"
    )
    return _conflicts(pairs.assign(forbund=pairs["forbund_id"], detail=detail), "duplicate")


def _undocumented_forbund(valid: pd.DataFrame) -> pd.DataFrame:
    documented = _membership()[["kommun_kod", "forbund_id"]].assign(documented=True)
    rows = valid[
        valid["forbund_id"].ne("")
        & (valid["start_year"] <= _LAST_DOCUMENTED_YEAR)
        & valid["kommun_kod"].isin(documented["kommun_kod"])
    ]
    rows = rows.merge(documented, on=["kommun_kod", "forbund_id"], how="left")
    rows = rows[rows["documented"].isna()]
    known = _membership().groupby("kommun_kod")["forbund_id"].agg(", ".join)
    detail = (
        "not documented as a member of "
        + rows["forbund_id"]
        + "; documented: "
        + rows["kommun_kod"].map(known)
    )
    return _conflicts(
        rows.assign(forbund=rows["forbund_id"], detail=detail), "forbund_not_documented"
    )


def _kommun_checks(valid: pd.DataFrame) -> pd.DataFrame:
    spans = _membership_spans(valid)
    facts = adoption_intervals().set_index("kommun_kod")
    table = facts.join(spans, how="left")
    table["first_start"] = table["first_start"].astype("Int64")
    has_rows = table["first_start"].notna()
    covers_2007 = table["covers_2007"].astype("boolean").fillna(False)
    covers_2015 = table["covers_2015"].astype("boolean").fillna(False)
    state = ("first start " + table["first_start"].astype(str)).where(
        has_rows, "absent from the calendar"
    )
    named_2007 = table["member_2007"].eq("yes")

    late = table[named_2007 & ~covers_2007]
    detail = (
        "named in the April 2007 list (000_425f59042e5590ac.txt) but not a member in 2007 ("
        + state[late.index]
        + ")"
    )
    parts = [_frame(late, detail, "member_2007_late")]

    early = table[
        table["never_member_2015"] & has_rows & (table["first_start"] < 2015).fillna(False)
    ]
    detail = (
        "without a förbund in April 2015 (004_0c1d07d624b103a9.txt, BILAGA 4) but starts in "
        + early["first_start"].astype(str)
    )
    parts.append(_frame(early, detail, "never_member_early"))

    outside = (table["first_start"] < table["earliest_cohort"]) | (
        table["first_start"] > table["latest_cohort"]
    )
    outside = outside.fillna(False) & ~table["never_member_2015"] & ~(named_2007 & ~covers_2007)
    bad = table[outside]
    detail = (
        "first start "
        + bad["first_start"].astype(str)
        + " outside the documented interval ["
        + bad["earliest_cohort"].astype(str)
        + ", "
        + bad["latest_cohort"].astype(str)
        + "]"
    )
    parts.append(_frame(bad, detail, "start_outside_interval"))

    missing = table[table["forbund_2015"].ne("") & ~covers_2015]
    detail = (
        "a member in April 2015 (004_0c1d07d624b103a9.txt, BILAGA 4) but not in the calendar's "
        "2015 (" + state[missing.index] + ")"
    )
    parts.append(_frame(missing, detail, "not_member_2015"))

    in_2007 = int((covers_2007 & table["member_2007"].eq("candidate")).sum())
    if in_2007 != N_CANDIDATES_2007:
        detail = (
            f"{in_2007} of Norra Västmanland's six 2015 kommuner are members in 2007; the April "
            f"2007 table (000_425f59042e5590ac.txt) has {N_CANDIDATES_2007}"
        )
        parts.append(
            pd.DataFrame(
                [["", "norra_vastmanland", "candidates_2007", detail]], columns=_CONFLICT_COLUMNS
            )
        )
    return pd.concat(parts, ignore_index=True)


def _frame(table: pd.DataFrame, detail: pd.Series | str, check: str) -> pd.DataFrame:
    out = pd.DataFrame(
        {"kommun_kod": table.index.to_numpy(), "forbund": "", "check": check, "detail": detail}
    )
    return out[_CONFLICT_COLUMNS]


def calendar_to_cohorts(calendar: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """Reduce an exact membership calendar to one adoption cohort per kommun.

    Parameters
    ----------
    calendar
        As for :func:`validate_calendar`.

    Returns
    -------
    pandas.DataFrame
        One row per kommun (all 290), sorted by code: ``kommun_kod``, ``cohort`` (int, first
        start year, 0 = never a member), ``forbund`` (id of the förbund at first membership; the
        alphabetically first if several start together, "" for never), ``exit_year`` (Int64: the
        last year of membership when every membership of the kommun has ended, else <NA>).

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
