"""The documented adoption facts as one calendar model, and the calendars compatible with it.

The treatment in this library is the year a kommun joined a samordningsförbund. The seed
documents fix that year only partly: most kommuner have an interval of possible years, a few are
dated, and several facts constrain the kommuner jointly. :func:`calendar_model` gathers them all,
each with its source, and every assumption the documents do not settle is *named* in
:class:`CalendarAssumptions` and can be switched:

Facts (documented; sources in ``CalendarModel.describe()``)
----------------------------------------------------------
- each kommun's interval of first-membership years (``registry/data/membership.csv``);
- Tabell 1 of 004_0c1d07d624b103a9.txt (section 3.2): member kommuner 2008–2014 and 241 in May 2015;
- the April 2007 list of 000_425f59042e5590ac.txt: 104 named members and Norra Västmanland's
  "3 kommuner" without names (three of its six 2015 members);
- the 49 kommuner without a förbund in April 2015 (004, BILAGA 4);
- dated förbund (004, BILAGA 2; 003): Samordningsförbundet i Kalmar län "bildades den 1 oktober
  2005, och verksamheterna inleddes 2007", with the whole län except Borgholm in April 2007;
  Norra Dalsland (Bengtsfors, Åmål, Dals-Ed) formed 2005; Norra Bohuslän formed April 2006;
  Uddevalla, Orust och Färgelanda formed October 2008; Samordningsförbundet Gävleborg formed
  15 December 2014 by the län's ten kommuner; Göteborg Nordost and Hisingen started 1 January
  2005; Skellefteå 2005 and Norsjö 1 January 2014; FINSAM i Malmö started 3 April 2007; BÅD-ESÅ
  took in Säffle and Årjäng on 1 January 2012; Alvesta formed 1 January 2007 (not in the April
  2007 list: the documents conflict) and Växjö August 2008.

Founders of a förbund formed on one date join in the same year: for the dated multi-kommun
förbund above this is a fact, for the other förbund of the April 2007 list it is the assumption
``listed_2007_join_together``.

Horizon
-------
The last documented state is April 2015. A calendar from this module says nothing after it:
cohort 0 means "not a member by 2015" (or by an earlier ``horizon``), never "never a member".
Later förbund found in public sources are recorded in ``LATER_JOINS`` with their verification
status; none is verified from a source in this repository, so none enters a calendar.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.registry import membership as _membership

__all__ = [
    "GOTEBORG_OPTIONS",
    "LATER_JOINS",
    "TREATMENT_DATES",
    "CalendarAssumptions",
    "CalendarModel",
    "calendar_model",
    "cohorts_to_calendar",
    "compatible_calendars",
    "dated_facts",
    "n_compatible_calendars",
    "validate_calendar",
]

DOC_2007 = "000_425f59042e5590ac.txt"
DOC_ISF = "001_5bd59affdc4fd9dd.txt"
DOC_MALMO = "003_dcb65819d613d29b.txt"
DOC_2015 = "004_0c1d07d624b103a9.txt"

#: Treatment-date definitions: the förbund's formation, or the start of its activity where a
#: seed dates both (Kalmar län: formed 1 October 2005, activity from 2007).
TREATMENT_DATES = ("formation", "activity")
#: How Göteborg, covered only by stadsdel förbund (Hisingen and Nordost from 2005), enters a
#: calendar: "treated" (cohort 2005, as Tabell 1 counts it), "excluded" (no row), "untreated"
#: (cohort 0: a comparison kommun).
GOTEBORG_OPTIONS = ("treated", "excluded", "untreated")
GOTEBORG = "1480"
#: The first year with a förbund (000, section 4.3.1) and the last documented year (April 2015).
FIRST_YEAR = 2005
LAST_DOCUMENTED_YEAR = 2015

#: Later förbund reported after April 2015. ``verified`` is True only where a source was read;
#: unverified entries never enter a calendar (the model's horizon ends in April 2015).
LATER_JOINS = pd.DataFrame(
    [
        ("0180", "Stockholm", "2015/2016", False, "reported in issue 11; no source read"),
        ("0183", "Sundbyberg", "2018", False, "reported in issue 11; no source read"),
        ("0163", "Sollentuna", "by 2020", False, "reported in issue 11; no source read"),
        ("0114", "Upplands Väsby", "by 2020", False, "reported in issue 11; no source read"),
        ("0191", "Sigtuna", "by 2020", False, "reported in issue 11; no source read"),
        ("0187", "Vaxholm", "by 2020", False, "reported in issue 11; no source read"),
        ("0115", "Vallentuna", "by 2020", False, "reported in issue 11; no source read"),
        ("0162", "Danderyd", "by 2020", False, "reported in issue 11; no source read"),
        ("0188", "Norrtälje", "by 2020", False, "reported in issue 11; no source read"),
    ],
    columns=["kommun_kod", "kommun", "joined", "verified", "source"],
)


@dataclass(frozen=True)
class CalendarAssumptions:
    """The named assumptions of the calendar model; each can be switched.

    Attributes
    ----------
    no_joins_may_dec_2007
        Nobody joined between the April 2007 list and the end of 2007, so the end-2007 count is
        the list's 107 and a kommun first listed in 2015 joined in 2008 or later. Off: the
        end-2007 count is at least 107 and 2015-only members may have joined in 2007.
    count_2005
        Inclusive range of the end-2005 member count: the ISF report's "knappt 55" (just under
        55; 001, Sammanfattning) read as 50–54. ``None`` drops the constraint.
    listed_2007_join_together
        Kommuner listed under one förbund in April 2007 formed it together and so joined in the
        same year (with Norra Västmanland's three unnamed members as one group). Off: only the
        dated förbund keep their founders together.
    cumulative_membership
        No kommun left a förbund up to 2015 (the documents record no exit; merged förbund pass
        their members on). Only ``True`` is supported: exits would need facts the documents lack.
    """

    no_joins_may_dec_2007: bool = True
    count_2005: tuple[int, int] | None = (50, 54)
    listed_2007_join_together: bool = True
    cumulative_membership: bool = True

    def __post_init__(self) -> None:
        if self.count_2005 is not None:
            low, high = self.count_2005
            if not (0 <= int(low) <= int(high)):
                raise ValueError(
                    f"count_2005 must be (low, high) with 0 <= low <= high, got {self.count_2005}"
                )
        if self.cumulative_membership is not True:
            raise ValueError(
                "cumulative_membership=False is not supported: the documents record no exit from "
                "a förbund up to 2015, so there are no facts to place exits"
            )

    @classmethod
    def coerce(cls, value: CalendarAssumptions | dict[str, Any] | None) -> CalendarAssumptions:
        """Defaults, a dict of overrides, or an instance; unknown names raise."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise ValueError(
                    f"unknown calendar assumption(s) {unknown}; known: {sorted(names)}"
                )
            return replace(cls(), **value)
        raise TypeError(f"assumptions must be CalendarAssumptions, dict or None, got {type(value)}")

    def describe(self) -> pd.DataFrame:
        """One row per assumption: name, value, meaning."""
        meaning = {
            "no_joins_may_dec_2007": "end-2007 count = the April 2007 list's 107; 2015-only members join from 2008",
            "count_2005": "'knappt 55' members in 2005 (001_5bd59affdc4fd9dd.txt) as an inclusive range",
            "listed_2007_join_together": "kommuner listed under one förbund in April 2007 joined in one year",
            "cumulative_membership": "no exits up to 2015",
        }
        return pd.DataFrame(
            [(f.name, repr(getattr(self, f.name)), meaning[f.name]) for f in fields(self)],
            columns=["assumption", "value", "meaning"],
        )


# --- dated facts -----------------------------------------------------------------------------------

# One row per dated förbund fact the seeds give. ``kommuner`` names the founders (";"-joined
# names), "listed_2007" means the förbund's members in the April 2007 list. ``activity`` is the
# start of activity where a seed dates it apart from formation.
_DATED = [
    (
        "kalmar_lan_formed",
        "kalmar_lan",
        "listed_2007",
        2005,
        "2005-10-01",
        2007,
        True,
        f"{DOC_2015}, BILAGA 2 (Kalmar län: 'bildades den 1 oktober 2005, och verksamheterna "
        f"inleddes 2007'); {DOC_2007}, table 'Län Samordningsförbund 2007-04-25' footnote **) "
        "('hela länet utom Borgholm')",
    ),
    (
        "norra_dalsland_formed",
        "bad_esa",
        "Bengtsfors;Åmål;Dals-Ed",
        2005,
        "2005",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 (BÅD-ESÅ: 'Norra Dalsland som bildades 2005 och då omfattade "
        "Bengtsfors, Åmåls och Dals-Eds kommuner')",
    ),
    (
        "norra_bohuslan_formed",
        "norra_bohuslan",
        "listed_2007",
        2006,
        "2006-04",
        None,
        False,
        f"{DOC_2015}, BILAGA 2 ('Samordningsförbundet Norra Bohuslän bildades i april 2006'); "
        f"its five members in {DOC_2007} (founders only under listed_2007_join_together)",
    ),
    (
        "uddevalla_orust_fargelanda_formed",
        "uddevalla_orust_fargelanda",
        "Uddevalla;Orust;Färgelanda",
        2008,
        "2008-10",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 ('Samordningsförbundet Uddevalla, Orust och Färgelanda i oktober 2008')",
    ),
    (
        "gavleborg_formed",
        "gavleborg",
        "Ockelbo;Hofors;Ovanåker;Nordanstig;Ljusdal;Gävle;Sandviken;Söderhamn;Bollnäs;Hudiksvall",
        2014,
        "2014-12-15",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 ('Den 15 december 2014 bildades Samordningsförbundet Gävleborg "
        "bestående av ... länets tio kommuner'); section 3.2",
    ),
    (
        "goteborg_stadsdel_2005",
        "goteborg_hisingen",
        "Göteborg",
        2005,
        "2005-01-01",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 (Göteborg Nordost 'startade sin verksamhet den 1 januari 2005'; "
        "Hisingen (Delta) 'inledde sin verksamhet den 1 januari 2005')",
    ),
    (
        "skelleftea_formed",
        "skelleftea_norsjo",
        "Skellefteå",
        2005,
        "2005",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 ('det tidigare Samordningsförbundet Skellefteå som bildades 2005')",
    ),
    (
        "norsjo_joined",
        "skelleftea_norsjo",
        "Norsjö",
        2014,
        "2014-01-01",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 ('bildades den 1 januari 2014 när Norsjö kommun gick in')",
    ),
    (
        "malmo_started",
        "malmo",
        "Malmö",
        2007,
        "2007-04-03",
        None,
        True,
        f"{DOC_MALMO} ('den 3 april 2007, fastställdes en lokal förbundsordning och FINSAM i "
        f"Malmö startade sin verksamhet'); {DOC_2007} (Skåne: Malmö)",
    ),
    (
        "bad_esa_expanded",
        "bad_esa",
        "Säffle;Årjäng",
        2012,
        "2012-01-01",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 ('Samordningsförbundet BÅD-ESÅ utvidgades den 1 januari 2012')",
    ),
    (
        "vaxjo_formed",
        "vaxjo",
        "Växjö",
        2008,
        "2008-08",
        None,
        True,
        f"{DOC_2015}, BILAGA 2 ('Växjö Samordningsförbund i augusti 2008')",
    ),
]
_DATED_COLUMNS = [
    "fact",
    "forbund_id",
    "kommuner",
    "formed",
    "date",
    "activity",
    "documented_founders",
    "source",
]


def dated_facts() -> pd.DataFrame:
    """Return the dated förbund facts of the seeds (one row per fact, with its source)."""
    table = pd.DataFrame(_DATED, columns=_DATED_COLUMNS)
    table["activity"] = table["activity"].astype("Int64")
    return table


# --- the model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarModel:
    """The documented adoption facts and the named assumptions, as one model.

    Attributes
    ----------
    treatment_date
        "formation" or "activity" (see :data:`TREATMENT_DATES`).
    goteborg
        How Göteborg enters a calendar (see :data:`GOTEBORG_OPTIONS`).
    assumptions
        The :class:`CalendarAssumptions` in force.
    kommuner
        One row per kommun (all 290): ``kommun_kod``, ``kommun``, ``lan_kod``, ``forbund`` (the
        förbund of the first membership, "" if none by 2015), ``earliest``, ``latest`` (the
        treatment-year bounds; 0/0 for kommuner without a förbund by April 2015), ``exact``,
        ``member_earliest``, ``member_latest`` (the membership-year bounds the counts refer to;
        they differ from the treatment years only for Kalmar under ``treatment_date="activity"``),
        ``group`` (the kommuner sharing one join year: a förbund's founders), ``member_2007``,
        ``source``.
    groups
        One row per join-year group of more than one kommun: ``group``, ``forbund``, ``kommuner``
        (";"-joined codes), ``basis`` (the dated fact or the assumption), ``source``.
    constraints
        The joint count constraints on the cumulative number of member kommuner at the end of
        each year: ``year``, ``low``, ``high`` (inclusive; ``high`` <NA> = unbounded), ``basis``,
        ``source``.
    """

    treatment_date: str
    goteborg: str
    assumptions: CalendarAssumptions
    kommuner: pd.DataFrame = field(repr=False)
    groups: pd.DataFrame = field(repr=False)
    constraints: pd.DataFrame = field(repr=False)

    @property
    def key(self) -> tuple:
        """A hashable identity (for caches)."""
        return (self.treatment_date, self.goteborg, self.assumptions)

    def describe(self) -> pd.DataFrame:
        """A tidy frame of every fact and assumption with its source.

        Columns ``kind`` (interval, group, count, dated, assumption, option), ``subject`` (kommun
        code, förbund or year), ``value``, ``source``.
        """
        rows = []
        for row in self.kommuner.itertuples(index=False):
            if row.earliest == 0:
                value = f"no förbund by April {LAST_DOCUMENTED_YEAR}"
            elif row.exact:
                value = f"{row.earliest} (exact)"
            else:
                value = f"[{row.earliest}, {row.latest}]"
            rows.append(("interval", f"{row.kommun_kod} {row.kommun}", value, row.source))
        for row in self.groups.itertuples(index=False):
            rows.append(("group", row.forbund, f"one join year for {row.kommuner}", row.source))
        for row in self.constraints.itertuples(index=False):
            high = "∞" if pd.isna(row.high) else str(row.high)
            value = f"{row.low}" if str(row.low) == high else f"[{row.low}, {high}]"
            rows.append(
                ("count", str(row.year), f"member kommuner {value} ({row.basis})", row.source)
            )
        for row in dated_facts().itertuples(index=False):
            rows.append(("dated", row.forbund_id, f"{row.fact}: {row.date}", row.source))
        for row in self.assumptions.describe().itertuples(index=False):
            rows.append(("assumption", row.assumption, row.value, row.meaning))
        rows.append(("option", "treatment_date", self.treatment_date, ", ".join(TREATMENT_DATES)))
        rows.append(("option", "goteborg", self.goteborg, ", ".join(GOTEBORG_OPTIONS)))
        return pd.DataFrame(rows, columns=["kind", "subject", "value", "source"])


def _check_option(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")


def calendar_model(
    *,
    treatment_date: str = "formation",
    goteborg: str = "treated",
    assumptions: CalendarAssumptions | dict[str, Any] | None = None,
) -> CalendarModel:
    """Build the calendar model: the documented adoption facts and the named assumptions.

    Parameters
    ----------
    treatment_date
        "formation" (default: the year the kommun's förbund was formed or it joined one) or
        "activity" (the start of activity where a seed dates it apart from formation: Kalmar
        län's founders then have cohort 2007). The count constraints always refer to membership
        (Kalmar's founders count as members from 2005 under both definitions).
    goteborg
        "treated" (default; cohort 2005 from the stadsdel förbund Hisingen and Nordost, as
        Tabell 1 counts Göteborg as a member), "excluded" (no Göteborg row in a calendar) or
        "untreated" (cohort 0). Göteborg counts as a member in the constraints in every case.
    assumptions
        A :class:`CalendarAssumptions`, a dict of overrides of its defaults, or None.

    Returns
    -------
    CalendarModel
    """
    _check_option("treatment_date", treatment_date, TREATMENT_DATES)
    _check_option("goteborg", goteborg, GOTEBORG_OPTIONS)
    chosen = CalendarAssumptions.coerce(assumptions)
    return _model(treatment_date, goteborg, chosen)


@cache
def _model(treatment_date: str, goteborg: str, assumptions: CalendarAssumptions) -> CalendarModel:
    intervals = _membership.adoption_intervals()
    rows = _membership.documented_membership()
    table = intervals[["kommun_kod", "kommun", "lan_kod", "member_2007"]].copy()
    table["member_earliest"] = intervals["earliest_cohort"].to_numpy()
    table["member_latest"] = intervals["latest_cohort"].to_numpy()
    member = table["member_earliest"].gt(0)

    # the förbund of the first membership: the April 2007 förbund for 2007 members, else the
    # earliest-starting documented förbund (Göteborg: Hisingen, dated 1 January 2005)
    first = rows.assign(
        rank_2007=rows["member_2007"].map({"yes": 0, "candidate": 0, "no": 1}),
        is_dated=rows["forbund_id"].eq("goteborg_hisingen").map({True: 0, False: 1}),
    ).sort_values(["kommun_kod", "rank_2007", "is_dated", "earliest_start", "forbund_id"])
    first = first.drop_duplicates("kommun_kod").set_index("kommun_kod")
    table["forbund"] = table["kommun_kod"].map(first["forbund_id"]).fillna("")
    sources = rows.groupby("kommun_kod")["source"].agg(lambda s: " || ".join(dict.fromkeys(s)))
    table["source"] = table["kommun_kod"].map(sources).fillna("")
    never = ~member
    table.loc[never, "source"] = (
        f"{DOC_2015}, BILAGA 4 (no förbund in April 2015; membership after April 2015 undocumented)"
    )

    if not assumptions.no_joins_may_dec_2007:
        later = member & table["member_2007"].eq("no") & table["member_earliest"].eq(2008)
        only_2015 = rows.groupby("kommun_kod")["interval_rule"].agg(set)
        later &= table["kommun_kod"].map(lambda c: only_2015.get(c, set()) == {"listed_2015_only"})
        table.loc[later, "member_earliest"] = 2007
        table.loc[later, "source"] += " | assumption no_joins_may_dec_2007=False: from 2007"

    # dated facts narrow intervals and define founder groups
    group = pd.Series("", index=table.index)
    codes = table["kommun_kod"]
    code_of = dict(zip(table["kommun"], codes, strict=True))
    group_rows = []
    activity_year = pd.Series(0, index=table.index)
    for fact in dated_facts().itertuples(index=False):
        if fact.kommuner == "listed_2007":
            in_2007 = rows[rows["forbund_id"].eq(fact.forbund_id) & rows["member_2007"].eq("yes")]
            founders = set(in_2007["kommun_kod"])
        else:
            founders = {code_of[name] for name in fact.kommuner.split(";")}
        if not fact.documented_founders and not assumptions.listed_2007_join_together:
            continue
        mask = codes.isin(founders)
        low, high = table.loc[mask, "member_earliest"], table.loc[mask, "member_latest"]
        if ((low > fact.formed) | (high < fact.formed)).any():
            raise AssertionError(f"dated fact {fact.fact} contradicts the registry intervals")
        table.loc[mask, ["member_earliest", "member_latest"]] = fact.formed
        table.loc[mask, "source"] += f" | dated: {fact.fact} ({fact.source})"
        if pd.notna(fact.activity):
            activity_year[mask] = int(fact.activity)
        if mask.sum() > 1:
            group[mask] = fact.fact
            basis = "dated" if fact.documented_founders else "dated+listed_2007_join_together"
            group_rows.append(
                (fact.fact, fact.forbund_id, ";".join(sorted(founders)), basis, fact.source)
            )

    if assumptions.listed_2007_join_together:
        named = rows[rows["member_2007"].eq("yes")]
        sizes = named.groupby("forbund_id")["kommun_kod"].agg(lambda s: sorted(set(s)))
        for forbund_id, members in sizes.items():
            mask = codes.isin(members) & group.eq("")
            if len(members) < 2 or mask.sum() < 2:
                continue
            name = f"listed_2007:{forbund_id}"
            group[mask] = name
            low = table.loc[mask, "member_earliest"].max()
            high = table.loc[mask, "member_latest"].min()
            table.loc[mask, ["member_earliest", "member_latest"]] = (low, high)
            source = f"{DOC_2007}, table 'Län Samordningsförbund 2007-04-25' (assumption)"
            group_rows.append(
                (name, forbund_id, ";".join(members), "listed_2007_join_together", source)
            )
        group_rows.append(
            (
                "listed_2007:norra_vastmanland",
                "norra_vastmanland",
                ";".join(sorted(_membership.candidates_2007())),
                "listed_2007_join_together: the 3 unnamed members of 2007 join in one year",
                f"{DOC_2007}, table 'Län Samordningsförbund 2007-04-25' (Västmanland: 3 kommuner)",
            )
        )

    table["group"] = group
    table["earliest"] = table["member_earliest"]
    table["latest"] = table["member_latest"]
    if treatment_date == "activity":
        shifted = activity_year.gt(0)
        table.loc[shifted, "earliest"] = activity_year[shifted]
        table.loc[shifted, "latest"] = activity_year[shifted]
        table.loc[shifted, "source"] += " | treatment_date='activity'"
    table["exact"] = member & table["earliest"].eq(table["latest"])
    columns = [
        "kommun_kod",
        "kommun",
        "lan_kod",
        "forbund",
        "earliest",
        "latest",
        "exact",
        "member_earliest",
        "member_latest",
        "group",
        "member_2007",
        "source",
    ]
    groups = pd.DataFrame(group_rows, columns=["group", "forbund", "kommuner", "basis", "source"])
    return CalendarModel(
        treatment_date=treatment_date,
        goteborg=goteborg,
        assumptions=assumptions,
        kommuner=table[columns].reset_index(drop=True),
        groups=groups,
        constraints=_constraints(assumptions),
    )


def _constraints(assumptions: CalendarAssumptions) -> pd.DataFrame:
    counts = _membership.member_counts()
    tabell = counts[counts["series"].eq("tabell_1")]
    rows = []
    if assumptions.count_2005 is not None:
        low, high = assumptions.count_2005
        rows.append(
            (
                2005,
                int(low),
                int(high),
                "assumption count_2005 ('knappt 55')",
                f"{DOC_ISF}, Sammanfattning ('knappt 55 kommuner')",
            )
        )
    n_2007 = int(counts.loc[counts["year"].eq(2007), "n_kommuner"].iloc[0])
    source_2007 = (
        f"{DOC_2007}, table 'Län Samordningsförbund 2007-04-25' ('Riket 58 (107 kommuner)')"
    )
    if assumptions.no_joins_may_dec_2007:
        rows.append(
            (
                2007,
                n_2007,
                n_2007,
                "April 2007 list + assumption no_joins_may_dec_2007",
                source_2007,
            )
        )
    else:
        rows.append((2007, n_2007, None, "April 2007 list (later 2007 joins allowed)", source_2007))
    for row in tabell.itertuples(index=False):
        rows.append(
            (int(row.year), int(row.n_kommuner), int(row.n_kommuner), "Tabell 1", row.source)
        )
    table = pd.DataFrame(rows, columns=["year", "low", "high", "basis", "source"])
    table["high"] = table["high"].astype("Int64")
    return table.sort_values("year").reset_index(drop=True)


# --- the sampler -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """The sampling problem: exchangeable unit types and the exact count of completions."""

    years: tuple[int, ...]
    segments: tuple[tuple[int, int], ...]  # inclusive year ranges, each ending at a constraint
    type_size: tuple[int, ...]
    type_low: tuple[int, ...]
    type_high: tuple[int, ...]
    type_units: tuple[tuple[int, ...], ...]  # unit ids of each type
    unit_members: tuple[tuple[str, ...], ...]  # fixed kommun codes ("" for candidate slots)
    unit_slot: tuple[tuple[str, int], ...]  # ("early"|"late", i) for Norra Västmanland slots
    candidates: tuple[str, ...]
    n_early_candidates: int
    transitions: tuple[dict, ...]  # per segment: state -> (next states, cumulative probs, ks)
    initial: tuple[int, ...]
    total: int  # number of compatible calendars (exact)


def _units(model: CalendarModel) -> tuple[list, list, list]:
    table = model.kommuner
    members = table[table["member_earliest"].gt(0)]
    candidates = members["member_2007"].eq("candidate")
    units: list[tuple[int, int, int]] = []
    unit_members: list[tuple[str, ...]] = []
    unit_slot: list[tuple[str, int]] = []
    grouped = members[members["group"].ne("") & ~candidates]
    for _, part in grouped.groupby("group", sort=True):
        units.append(
            (len(part), int(part["member_earliest"].max()), int(part["member_latest"].min()))
        )
        unit_members.append(tuple(part["kommun_kod"]))
        unit_slot.append(("", -1))
    for row in members[members["group"].eq("") & ~candidates].itertuples(index=False):
        units.append((1, int(row.member_earliest), int(row.member_latest)))
        unit_members.append((row.kommun_kod,))
        unit_slot.append(("", -1))
    n_early = _membership.N_CANDIDATES_2007
    n_late = int(candidates.sum()) - n_early
    late_from = 2008 if model.assumptions.no_joins_may_dec_2007 else 2007
    latest = int(members.loc[candidates, "member_latest"].max()) if n_late else 2014
    if model.assumptions.listed_2007_join_together:
        units.append((n_early, FIRST_YEAR, 2007))
        unit_members.append(())
        unit_slot.append(("early_block", 0))
    else:
        for i in range(n_early):
            units.append((1, FIRST_YEAR, 2007))
            unit_members.append(())
            unit_slot.append(("early", i))
    for i in range(n_late):
        units.append((1, late_from, latest))
        unit_members.append(())
        unit_slot.append(("late", i))
    return units, unit_members, unit_slot


@cache
def _plan(key: tuple) -> _Plan:
    model = _model(*key)
    units, unit_members, unit_slot = _units(model)
    constraints = model.constraints
    bounds = {
        int(r.year): (int(r.low), None if pd.isna(r.high) else int(r.high))
        for r in constraints.itertuples(index=False)
    }
    last = LAST_DOCUMENTED_YEAR
    total_members = sum(size for size, _, _ in units)
    bounds[last] = (max(bounds.get(last, (0, None))[0], total_members), total_members)
    years = tuple(range(FIRST_YEAR, last + 1))
    # an unconstrained year merges with the next constrained one: only the end count is checked
    segments, start = [], FIRST_YEAR
    for year in years:
        if year in bounds:
            segments.append((start, year))
            start = year + 1
    kinds = sorted(set(units))
    type_units = tuple(tuple(i for i, u in enumerate(units) if u == kind) for kind in kinds)
    sizes = tuple(k[0] for k in kinds)
    lows = tuple(k[1] for k in kinds)
    highs = tuple(k[2] for k in kinds)

    def options(state: tuple[int, ...], seg: int) -> list[tuple[tuple[int, ...], int]]:
        a, b = segments[seg]
        placed = total_members - sum(s * r for s, r in zip(sizes, state, strict=True))
        ranges, weights_of = [], []
        for t, remaining in enumerate(state):
            allowed = max(0, min(highs[t], b) - max(lows[t], a) + 1)
            if remaining and highs[t] < a:
                return []  # a unit missed its deadline
            if remaining == 0 or allowed == 0:
                ranges.append(range(0, 1))
            elif highs[t] <= b:
                ranges.append(range(remaining, remaining + 1))
            else:
                ranges.append(range(0, remaining + 1))
            weights_of.append(allowed)
        low, high = bounds[b]
        high = total_members if high is None else high
        # enumerate all types but the widest; solve the widest from the count bounds
        wide = max(range(len(state)), key=lambda t: len(ranges[t]))
        others = [t for t in range(len(state)) if t != wide]
        out = []
        for combo in itertools.product(*(ranges[t] for t in others)):
            count = placed + sum(sizes[t] * k for t, k in zip(others, combo, strict=True))
            k_low = max(ranges[wide].start, -(-(low - count) // sizes[wide]))
            k_high = min(ranges[wide].stop - 1, (high - count) // sizes[wide])
            for k_wide in range(k_low, k_high + 1):
                ks = [0] * len(state)
                for t, k in zip(others, combo, strict=True):
                    ks[t] = k
                ks[wide] = k_wide
                weight = 1
                for t, k in enumerate(ks):
                    if k:
                        weight *= math.comb(state[t], k) * weights_of[t] ** k
                out.append((tuple(ks), weight))
        return out

    initial = tuple(len(u) for u in type_units)
    # forward: reachable states and their options; backward: number of completions
    layers: list[dict] = []
    frontier = {initial}
    for seg in range(len(segments)):
        layer = {}
        following = set()
        for state in frontier:
            opts = options(state, seg)
            layer[state] = opts
            for ks, _ in opts:
                following.add(tuple(r - k for r, k in zip(state, ks, strict=True)))
        layers.append(layer)
        frontier = following
    final = tuple(0 for _ in initial)
    completions: dict[tuple[int, ...], int] = {final: 1}
    transitions: list[dict] = [dict() for _ in segments]
    for seg in range(len(segments) - 1, -1, -1):
        counted: dict[tuple[int, ...], int] = {}
        for state, opts in layers[seg].items():
            nexts, ks_list, weights = [], [], []
            for ks, weight in opts:
                nxt = tuple(r - k for r, k in zip(state, ks, strict=True))
                ways = completions.get(nxt, 0) * weight
                if ways:
                    nexts.append(nxt)
                    ks_list.append(ks)
                    weights.append(ways)
            total = sum(weights)
            if total:
                counted[state] = total
                cumulative = np.cumsum([w / total for w in weights])
                cumulative[-1] = 1.0
                transitions[seg][state] = (nexts, cumulative, np.array(ks_list, dtype=np.int64))
        completions = counted
    if initial not in completions:
        raise ValueError(
            "no calendar satisfies the documented facts under these assumptions: "
            + "; ".join(
                f"{r.year}: [{r.low}, {r.high}]" for r in constraints.itertuples(index=False)
            )
        )
    return _Plan(
        years=years,
        segments=tuple(segments),
        type_size=sizes,
        type_low=lows,
        type_high=highs,
        type_units=type_units,
        unit_members=tuple(unit_members),
        unit_slot=tuple(unit_slot),
        candidates=tuple(sorted(_membership.candidates_2007())),
        n_early_candidates=_membership.N_CANDIDATES_2007,
        transitions=tuple(transitions),
        initial=initial,
        total=completions[initial],
    )


def n_compatible_calendars(model: CalendarModel | None = None) -> int:
    """The exact number of membership calendars the model admits (founder groups as one unit,
    before the choice of Norra Västmanland's three 2007 members, a further factor of 20)."""
    model = calendar_model() if model is None else model
    return _plan(model.key).total


def compatible_calendars(
    n: int,
    seed: int | np.random.Generator,
    *,
    model: CalendarModel | None = None,
    horizon: int = LAST_DOCUMENTED_YEAR,
) -> pd.DataFrame:
    """Draw membership calendars compatible with every documented fact and named assumption.

    Parameters
    ----------
    n
        Number of calendars.
    seed
        Seed or numpy Generator; the same seed gives the same draws.
    model
        The :class:`CalendarModel` (default ``calendar_model()``).
    horizon
        Last year a calendar speaks for (at most 2015, the last documented year); a kommun
        joining after it has cohort 0.

    Returns
    -------
    pandas.DataFrame
        Long frame ``draw`` (0..n-1), ``kommun_kod``, ``cohort`` (int; the treatment year under
        the model's ``treatment_date``, 0 = not a member by ``horizon``), sorted by draw and code;
        all 290 kommuner per draw (289 with ``goteborg="excluded"``).

    Notes
    -----
    Sampling distribution: **uniform over the compatible calendars**. A calendar assigns each
    join unit (a kommun, or a group of founders that join in one year) a year inside its
    documented interval such that every count constraint of ``model.constraints`` holds; each
    such assignment is equally likely, and which three of Norra Västmanland's six kommuner were
    the unnamed 2007 members is uniform over the 20 choices. This is the conditional
    distribution of independent uniform years given all constraints. It is sampled exactly:
    units with the same size and interval are exchangeable, so a dynamic programme over the
    constrained years counts the completions of every partial calendar (exact integers) and the
    draws follow the counts, then exchangeable units are permuted at random (Knuth 2011, *The
    Art of Computer Programming* 4A, ch. 7.2.1, on sampling by counting). Within a run of years
    without a count constraint (2006 before 2007) a unit's year is uniform over its allowed
    years there.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise ValueError(f"horizon must be an integer year, got {horizon!r}")
    if horizon > LAST_DOCUMENTED_YEAR or horizon < FIRST_YEAR:
        raise ValueError(
            f"horizon {horizon} outside [{FIRST_YEAR}, {LAST_DOCUMENTED_YEAR}]: membership after "
            f"April {LAST_DOCUMENTED_YEAR} is undocumented (no verified later join is recorded, "
            "see LATER_JOINS), so a calendar cannot claim who was not a member after it"
        )
    model = calendar_model() if model is None else model
    plan = _plan(model.key)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = int(n)
    n_types, n_segments = len(plan.type_units), len(plan.segments)

    # 1. per draw, how many units of each type join in each segment
    counts = np.zeros((n, n_types, n_segments), dtype=np.int64)
    uniforms = rng.random((n, n_segments))
    state_of = [plan.initial] * n
    for seg in range(n_segments):
        table = plan.transitions[seg]
        by_state: dict[tuple[int, ...], list[int]] = {}
        for draw, state in enumerate(state_of):
            by_state.setdefault(state, []).append(draw)
        for state, draws in by_state.items():  # few distinct states; numpy within each
            nexts, cumulative, ks = table[state]
            index = np.asarray(draws)
            pick = np.searchsorted(cumulative, uniforms[index, seg], side="right")
            pick = np.minimum(pick, len(nexts) - 1)
            counts[index, :, seg] = ks[pick]
            for draw, p in zip(draws, pick.tolist(), strict=True):
                state_of[draw] = nexts[p]

    # 2. which units of a type take which segment (random permutation), and the year within it
    n_units = len(plan.unit_members)
    unit_year = np.zeros((n, n_units), dtype=np.int64)
    seg_low = np.array([a for a, _ in plan.segments])
    seg_high = np.array([b for _, b in plan.segments])
    for t, ids in enumerate(plan.type_units):
        size = len(ids)
        order = np.argsort(rng.random((n, size)), axis=1)
        ends = np.cumsum(counts[:, t, :], axis=1)  # (n, segments)
        position = np.arange(size)
        segment = (position[None, :, None] >= ends[:, None, :]).sum(axis=2)  # (n, size)
        low = np.maximum(seg_low[segment], plan.type_low[t])
        high = np.minimum(seg_high[segment], plan.type_high[t])
        year = low + np.floor(rng.random((n, size)) * (high - low + 1)).astype(np.int64)
        unit_year[np.arange(n)[:, None], np.asarray(ids)[order]] = year

    # 3. kommun years: fixed members, then Norra Västmanland's slots
    codes = model.kommuner["kommun_kod"].to_numpy()
    column = {code: i for i, code in enumerate(codes)}
    years = np.zeros((n, len(codes)), dtype=np.int64)
    cand = np.asarray([column[c] for c in plan.candidates])
    cand_order = cand[np.argsort(rng.random((n, len(cand))), axis=1)]
    early = cand_order[:, : plan.n_early_candidates]
    late = cand_order[:, plan.n_early_candidates :]
    rows = np.arange(n)
    for u, (members, (slot, i)) in enumerate(zip(plan.unit_members, plan.unit_slot, strict=True)):
        if members:
            years[:, [column[c] for c in members]] = unit_year[:, [u]]
        elif slot == "early_block":
            years[rows[:, None], early] = unit_year[:, [u]]
        elif slot == "early":
            years[rows, early[:, i]] = unit_year[:, u]
        else:
            years[rows, late[:, i]] = unit_year[:, u]
    return _cohort_frame(years, model, horizon)


def _cohort_frame(years: np.ndarray, model: CalendarModel, horizon: int) -> pd.DataFrame:
    """Membership years (n, 290) → the long cohort frame under the model's options."""
    table = model.kommuner
    cohorts = years.copy()
    if model.treatment_date == "activity":
        shifted = (table["earliest"] != table["member_earliest"]).to_numpy() & (
            table["member_earliest"].gt(0).to_numpy()
        )
        cohorts[:, shifted] = table.loc[shifted, "earliest"].to_numpy()[None, :]
    cohorts[cohorts > horizon] = 0
    codes = table["kommun_kod"].to_numpy()
    keep = np.ones(len(codes), dtype=bool)
    if model.goteborg == "untreated":
        cohorts[:, codes == GOTEBORG] = 0
    elif model.goteborg == "excluded":
        keep = codes != GOTEBORG
    n = len(cohorts)
    return pd.DataFrame(
        {
            "draw": np.repeat(np.arange(n), keep.sum()),
            "kommun_kod": np.tile(codes[keep], n),
            "cohort": cohorts[:, keep].ravel(),
        }
    )


# --- checks ------------------------------------------------------------------------------------------


def cohorts_to_calendar(cohorts: pd.DataFrame, model: CalendarModel | None = None) -> pd.DataFrame:
    """Turn a (kommun_kod, cohort) frame (one draw) into what :func:`validate_calendar` reads.

    Parameters
    ----------
    cohorts
        ``kommun_kod`` and ``cohort`` (0 = not a member by 2015); a ``draw`` column, if present,
        must hold one value.
    model
        The model the cohorts were drawn under (its ``treatment_date`` maps activity years back
        to membership years; its ``goteborg`` option restores Göteborg's documented membership
        when the cohorts leave it out or untreated).

    Returns
    -------
    pandas.DataFrame
        ``kommun``, ``forbund``, ``start_year`` (membership year), one row per member kommun.
    """
    model = calendar_model() if model is None else model
    missing = [c for c in ("kommun_kod", "cohort") if c not in cohorts.columns]
    if missing:
        raise ValueError(f"cohort frame lacks column(s) {missing}: expected kommun_kod, cohort")
    if "draw" in cohorts.columns and cohorts["draw"].nunique() > 1:
        raise ValueError(
            f"cohort frame holds {cohorts['draw'].nunique()} draws; pass one draw "
            "(e.g. frame[frame['draw'] == 0])"
        )
    cohort = pd.to_numeric(cohorts["cohort"], errors="coerce")
    bad = cohorts[cohort.isna() | (cohort != cohort.round())]
    if len(bad):
        raise ValueError(
            f"cohort must be a whole year or 0; bad rows: {bad.head().to_dict('records')}"
        )
    frame = pd.DataFrame(
        {
            "kommun_kod": cohorts["kommun_kod"].astype(str).to_numpy(),
            "cohort": cohort.astype(int).to_numpy(),
        }
    )
    facts = model.kommuner.set_index("kommun_kod")
    if model.goteborg != "treated":
        frame = frame[frame["kommun_kod"].ne(GOTEBORG)]
        goteborg = pd.DataFrame(
            {"kommun_kod": [GOTEBORG], "cohort": [int(facts.loc[GOTEBORG, "earliest"])]}
        )
        frame = pd.concat([frame, goteborg], ignore_index=True)
    frame = frame[frame["cohort"].ne(0)]
    known = frame["kommun_kod"].isin(facts.index)
    start = frame["cohort"].copy()
    if model.treatment_date == "activity":
        shifted = facts["earliest"].ne(facts["member_earliest"]) & facts["member_earliest"].gt(0)
        at_activity = known & frame["kommun_kod"].map(shifted).fillna(False).astype(bool)
        at_activity &= frame["cohort"].eq(frame["kommun_kod"].map(facts["earliest"]))
        start[at_activity] = frame.loc[at_activity, "kommun_kod"].map(facts["member_earliest"])
    forbund = frame["kommun_kod"].map(facts["forbund"]).fillna("")
    # a kommun first listed in 2015 joins through its 2015 förbund
    late = frame["kommun_kod"].map(facts["member_2007"]).eq("candidate") & start.gt(2007)
    intervals = _membership.adoption_intervals().set_index("kommun_kod")["forbund_2015"]
    forbund[late] = frame.loc[late, "kommun_kod"].map(intervals)
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
) -> _membership.CalendarReport:
    """Check a calendar against every documented fact and the model's named assumptions.

    Parameters
    ----------
    calendar
        Either an exact membership calendar (DataFrame or CSV path; columns ``kommun`` or
        ``kommun_kod``, ``forbund`` or ``forbund_id``, ``start_year``, optional ``end_year``),
        or a cohort frame (``kommun_kod``, ``cohort``; 0 = not a member by 2015; one draw of
        :func:`compatible_calendars`), converted with :func:`cohorts_to_calendar`.
    strict
        Raise instead of returning a report with conflicts.
    model
        The :class:`CalendarModel` whose facts and assumptions are checked (default
        ``calendar_model()``).

    Returns
    -------
    CalendarReport
        ``conflicts`` has ``kommun_kod``, ``forbund``, ``check``, ``fact`` (the fact or
        assumption, with its source where short) and ``detail``. Checks are those of
        :func:`finsam_eval.registry.membership.validate_calendar` plus ``founders_together`` (a
        join group of ``model.groups`` splits over years), ``dated_fact`` (a dated kommun or
        group starts in another year) and ``assumption_count`` (a count constraint of
        ``model.constraints`` that is not Tabell 1, e.g. ``count_2005``, fails).
    """
    model = calendar_model() if model is None else model
    if (
        isinstance(calendar, pd.DataFrame)
        and "cohort" in calendar.columns
        and "start_year" not in calendar.columns
    ):
        calendar = cohorts_to_calendar(calendar, model)
    report = _membership.validate_calendar(calendar, strict=False)
    # the registry's interval check is redone against the model's intervals (assumptions and
    # dated facts narrow or widen them)
    base = report.conflicts[report.conflicts["check"].ne("start_outside_interval")]
    if not model.assumptions.no_joins_may_dec_2007:
        # the registry asks for exactly 3 in 2007; with May–December joins it is at least 3
        base = base[base["check"].ne("candidates_2007")]
    parts = [base.assign(fact=base["check"].map(_BASE_FACTS).fillna(""))]
    rows = report.calendar[
        report.calendar["kommun_kod"].ne("") & report.calendar["start_year"].notna()
    ]
    first = rows.groupby("kommun_kod")["start_year"].min().astype(int)
    facts = model.kommuner.set_index("kommun_kod")
    start = facts.index.to_series().map(first)
    member = facts["member_earliest"].gt(0)
    outside = member & ((start < facts["member_earliest"]) | (start > facts["member_latest"]))
    outside &= ~(facts["member_2007"].eq("yes") & start.gt(2007))  # reported as member_2007_late
    for code in facts.index[outside.fillna(False).astype(bool)]:
        row = facts.loc[code]
        detail = (
            f"first start {int(start[code])} outside the model's interval "
            f"[{row.member_earliest}, {row.member_latest}] (membership years)"
        )
        parts.append(
            _conflict_rows([code], row.forbund, "start_outside_interval", "interval", detail)
        )

    # founders of one förbund start together; a dated group starts in its dated year
    grouped = facts[facts["group"].ne("")]
    for name, part in grouped.groupby("group"):
        years = start[part.index]
        present = years.dropna().astype(int)
        record = model.groups.set_index("group").loc[name]
        if present.nunique() > 1 or (len(present) and len(present) < len(part)):
            detail = "founders split over " + ", ".join(
                f"{code}:{'absent' if pd.isna(y) else int(y)}" for code, y in years.items()
            )
            parts.append(
                _conflict_rows(part.index, record.forbund, "founders_together", name, detail)
            )
        dated = part["member_earliest"].eq(part["member_latest"])
        off = present[dated[present.index] & present.ne(part.loc[present.index, "member_earliest"])]
        if len(off):
            detail = (
                f"dated {int(part['member_earliest'].iloc[0])} ({record.source}); calendar has "
                + ", ".join(f"{c}:{int(y)}" for c, y in off.items())
            )
            parts.append(_conflict_rows(off.index, record.forbund, "dated_fact", name, detail))
    # Norra Västmanland's three unnamed 2007 members join in one year (assumption)
    if model.assumptions.listed_2007_join_together:
        cands = sorted(_membership.candidates_2007())
        early = start[cands].dropna()
        early = early[early <= 2007]
        if early.nunique() > 1:
            detail = "the unnamed 2007 members split over " + ", ".join(
                f"{c}:{int(y)}" for c, y in early.items()
            )
            parts.append(
                _conflict_rows(
                    early.index,
                    "norra_vastmanland",
                    "founders_together",
                    "listed_2007:norra_vastmanland",
                    detail,
                )
            )
    in_2007 = int((start[sorted(_membership.candidates_2007())] <= 2007).sum())
    if not model.assumptions.no_joins_may_dec_2007 and in_2007 < _membership.N_CANDIDATES_2007:
        detail = (
            f"{in_2007} of Norra Västmanland's six 2015 kommuner are members in 2007; at least 3"
        )
        parts.append(
            _conflict_rows(
                [""], "norra_vastmanland", "candidates_2007", _BASE_FACTS["candidates_2007"], detail
            )
        )
    # count constraints other than Tabell 1 (Tabell 1 is checked by the registry)
    for row in model.constraints[~model.constraints["basis"].eq("Tabell 1")].itertuples(
        index=False
    ):
        count = int((first <= row.year).sum())
        high = None if pd.isna(row.high) else int(row.high)
        if count < row.low or (high is not None and count > high):
            bound = f"[{row.low}, {'∞' if high is None else high}]"
            detail = f"{count} member kommuner by the end of {row.year}; the model requires {bound} ({row.basis}; {row.source})"
            parts.append(_conflict_rows([""], "", "assumption_count", row.basis, detail))
    conflicts = pd.concat(parts, ignore_index=True)[_CONFLICT_COLUMNS].astype(str)
    out = _membership.CalendarReport(
        calendar=report.calendar, conflicts=conflicts, counts=report.counts
    )
    if strict and not out.ok:
        raise ValueError(out.summary())
    return out


_CONFLICT_COLUMNS = ["kommun_kod", "forbund", "check", "fact", "detail"]
_BASE_FACTS = {
    "member_2007_late": f"April 2007 list ({DOC_2007})",
    "candidates_2007": f"April 2007 list: Norra Västmanland 3 kommuner ({DOC_2007})",
    "never_member_early": f"April 2015 never-members ({DOC_2015}, BILAGA 4)",
    "not_member_2015": f"April 2015 members ({DOC_2015}, BILAGA 4)",
    "start_outside_interval": "documented interval (registry/data/membership.csv)",
    "yearly_count": f"Tabell 1 ({DOC_2015}, section 3.2)",
    "forbund_not_documented": "documented membership (registry/data/membership.csv)",
}


def _conflict_rows(codes, forbund: str, check: str, fact: str, detail: str) -> pd.DataFrame:
    codes = list(codes)
    return pd.DataFrame(
        {"kommun_kod": codes, "forbund": forbund, "check": check, "fact": fact, "detail": detail}
    )
