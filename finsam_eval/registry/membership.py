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
  2005, Kalmar län's eleven founders 2005 (formed 1 October 2005, 004 BILAGA 2), Norra Dalsland
  2005, Skellefteå 2005, Norra Bohuslän [2006, 2007], Malmö 2007, Falun and Borlänge 2007
  ("nystartade" in April 2007), Uddevalla/Orust/Färgelanda 2008, Växjö 2008, Säffle and Årjäng
  2012, Härjedalen/Krokom/Ragunda [2008, 2011] (Jämtland's länsförbund of 2011),
  Norsjö 2014, Gävleborg's ten kommuner 2014, Säter 2015);
- Alvesta: [2007, 2008]; its förbund was formed on 1 January 2007 (004, BILAGA 2) but Alvesta is
  not in the April 2007 list, so the documents conflict and the interval spans both readings.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import cache

import pandas as pd

from finsam_eval.registry.kommuner import RegistryLookupError, kommuner, read_data

__all__ = [
    "FIRST_FORBUND_YEAR",
    "N_CANDIDATES_2007",
    "UnknownForbundError",
    "adoption_intervals",
    "candidates_2007",
    "documented_membership",
    "forbund",
    "forbund_id",
    "member_counts",
    "members_2007",
    "members_2015",
    "never_members_2015",
]

#: The first förbund started in 2005 (000_425f59042e5590ac.txt, section 4.3.1).
FIRST_FORBUND_YEAR = 2005
#: Norra Västmanland had "3 kommuner" in April 2007, unnamed (000, table 2007-04-25).
N_CANDIDATES_2007 = 3
# The April 2015 appendix is the last documented state; membership after it is not documented.
_LAST_DOCUMENTED_YEAR = 2015


class UnknownForbundError(RegistryLookupError):
    """Raised when a förbund id or name cannot be resolved; the message suggests near matches."""


def _to_int(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.replace("", None)).astype("Int64")


@cache
def _forbund() -> pd.DataFrame:
    table = read_data("forbund.csv")
    for column in ("first_documented", "formed", "merged_year"):
        table[column] = _to_int(table[column])
    table["first_documented"] = table["first_documented"].astype(int)
    for column in ("listed_2007", "listed_2015"):
        table[column] = table[column].eq("true")
    return table


@cache
def _membership() -> pd.DataFrame:
    table = read_data("membership.csv")
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
    return read_data("never_members_2015.csv")


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
    return _member_counts().copy()


@cache
def _member_counts() -> pd.DataFrame:
    table = read_data("member_counts.csv")
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


# --- calendars ---------------------------------------------------------------------------------

# The calendar checks live in finsam_eval.registry.calendar_checks (beside the calendar model
# whose facts and assumptions they check); these names stay importable from here for existing
# callers.
_MOVED = ("CalendarReport", "validate_calendar", "calendar_to_cohorts")


def __getattr__(name: str) -> object:
    """The calendar checks, imported lazily (calendar_checks.py imports this module)."""
    if name in _MOVED:
        from finsam_eval.registry import calendar_checks

        return getattr(calendar_checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
