"""The documented adoption facts as one calendar model, and the calendars compatible with it.

The treatment in this library is the year a kommun joined a samordningsförbund. The seed
documents fix that year only partly: most kommuner have an interval of possible years, a few are
dated, and several facts constrain the kommuner jointly. :func:`calendar_model` gathers them all,
each with its source, and every assumption the documents do not settle is *named* in
:class:`CalendarAssumptions` and can be switched:

Facts (documented; sources in ``CalendarModel.describe()``)
----------------------------------------------------------
- each kommun's interval of first-membership years (``registry/data/membership.csv``);
- Tabell 1 of 004_0c1d07d624b103a9.txt (section 3.2): member kommuner 2008–2014, 241 in May 2015;
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
Later förbund found in public sources are recorded by :func:`later_joins` with the pages read;
they bound join years loosely and none enters a calendar.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.registry import membership as _membership
from finsam_eval.registry.kommuner import read_data

__all__ = [
    "GOTEBORG_OPTIONS",
    "LAST_DOCUMENTED_YEAR",
    "TREATMENT_DATES",
    "CalendarAssumptions",
    "CalendarModel",
    "calendar_model",
    "compatible_calendars",
    "dated_facts",
    "later_joins",
    "n_compatible_calendars",
]

DOC_2007 = "000_425f59042e5590ac.txt"
DOC_ISF = "001_5bd59affdc4fd9dd.txt"
DOC_MALMO = "003_dcb65819d613d29b.txt"
DOC_2015 = "004_0c1d07d624b103a9.txt"

#: Treatment-date definitions: the förbund's formation, or the start of its activity where a
#: seed dates both (Kalmar län: formed 1 October 2005, activity from 2007; Alvesta and Växjö:
#: base activity from 2008 and 2009).
TREATMENT_DATES = ("formation", "activity")
#: How Göteborg, covered only by stadsdel förbund (Hisingen and Nordost from 2005), enters a
#: calendar: "treated" (cohort 2005, as Tabell 1 counts it), "excluded" (no row), "untreated"
#: (cohort 0: a comparison kommun).
GOTEBORG_OPTIONS = ("treated", "excluded", "untreated")
GOTEBORG = "1480"
#: The first year with a förbund (000, section 4.3.1) and the last documented year (April 2015).
FIRST_YEAR = 2005
LAST_DOCUMENTED_YEAR = 2015


def later_joins() -> pd.DataFrame:
    """Return the joins after April 2015 found in public sources (not used by any calendar).

    The seeds end in April 2015. Issue 11 reported later förbund in Stockholms län; each was
    looked up in stored copies of public web pages and is recorded with the pages read.

    Returns
    -------
    pandas.DataFrame
        ``kommun_kod``, ``kommun``, ``forbund``, ``earliest``, ``latest`` (int: inclusive
        bounds of the join year), ``evidence`` (what the source says), ``verified`` ("dated":
        the source dates the start; "bounded": membership by the end of ``latest`` is
        documented, the start is not; "approximate": an approximate age), ``source`` (URLs).

    Notes
    -----
    These are third-party pages, not the seed documents, and they bound the join years only
    loosely; none enters :func:`compatible_calendars` (whose horizon ends in 2015). An analysis
    past 2015 must treat the other 40 non-members of April 2015 as of unknown membership: no
    source says they stayed outside.
    """
    table = read_data("later_joins.csv")
    table[["earliest", "latest"]] = table[["earliest", "latest"]].astype(int)
    return table


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
        their members on): :func:`validate_calendar` reports a gap in a kommun's membership
        between its first start and 2015 as ``exit``. Off: a user calendar may have exits
        (``end_year``); the yearly counts still apply. :func:`compatible_calendars` draws only
        calendars without exits and refuses a model with this assumption off, since no exit is
        documented to place.
    """

    no_joins_may_dec_2007: bool = True
    count_2005: tuple[int, int] | None = (50, 54)
    listed_2007_join_together: bool = True
    cumulative_membership: bool = True

    def __post_init__(self) -> None:
        for name in ("no_joins_may_dec_2007", "listed_2007_join_together", "cumulative_membership"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.count_2005 is not None:
            pair = self.count_2005
            if (
                isinstance(pair, str)
                or not hasattr(pair, "__len__")
                or len(pair) != 2
                or not all(
                    isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair
                )
                or not 0 <= pair[0] <= pair[1]
            ):
                raise ValueError(
                    f"count_2005 must be (low, high) whole numbers with 0 <= low <= high, or "
                    f"None, got {pair!r}"
                )
            # a list from a config file becomes a tuple: the assumptions are a cache key
            object.__setattr__(self, "count_2005", (int(pair[0]), int(pair[1])))

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
            "no_joins_may_dec_2007": (
                "end-2007 count = the April 2007 list's 107; 2015-only members join from 2008"
            ),
            "count_2005": f"'knappt 55' members in 2005 ({DOC_ISF}) as an inclusive range",
            "listed_2007_join_together": (
                "kommuner listed under one förbund in April 2007 joined in one year"
            ),
            "cumulative_membership": "no exits up to 2015",
        }
        return pd.DataFrame(
            [(f.name, repr(getattr(self, f.name)), meaning[f.name]) for f in fields(self)],
            columns=["assumption", "value", "meaning"],
        )


# --- dated facts ----------------------------------------------------------------------------------

# One row per dated förbund fact the seeds give. ``kommuner`` names the founders (";"-joined
# names), "listed_2007" means the förbund's members in the April 2007 list. ``formed`` is the
# membership year the fact fixes (None: the fact fixes none, see Alvesta). ``activity`` is the
# start of activity where a seed dates it apart from formation (Kalmar län: "verksamheterna
# inleddes 2007"; Alvesta and Växjö: their base rehabilitation activity financed from 2008 and
# 2009).
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
        f"{DOC_2015}, BILAGA 2 ('Samordningsförbundet Uddevalla, Orust och Färgelanda i "
        "oktober 2008')",
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
        2009,
        True,
        f"{DOC_2015}, BILAGA 2 ('Växjö Samordningsförbund i augusti 2008'; 'Alvesta och Växjö "
        "samordningsförbund finansierar sedan 2008 respektive 2009 var sin rehabiliterande "
        "basverksamhet')",
    ),
    (
        # formed 1 January 2007 but not in the April 2007 list: the membership interval stays
        # [2007, 2008] (registry), only the start of activity is dated
        "alvesta_activity",
        "alvesta",
        "Alvesta",
        None,
        "2007-01-01",
        2008,
        True,
        f"{DOC_2015}, BILAGA 2 ('Alvesta Samordningsförbund bildades den 1 januari 2007'; "
        "'Alvesta och Växjö samordningsförbund finansierar sedan 2008 respektive 2009 var sin "
        "rehabiliterande basverksamhet')",
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
    """Return the dated förbund facts of the seeds (one row per fact, with its source).

    Columns ``fact``, ``forbund_id``, ``kommuner`` (";"-joined names, or "listed_2007": the
    förbund's members in the April 2007 list), ``formed`` (Int64: the membership year fixed;
    <NA> where the fact fixes none), ``date`` (as precise as the source), ``activity`` (Int64:
    start of activity where dated apart from formation), ``documented_founders`` (False: the
    founders are the April 2007 members only under ``listed_2007_join_together``), ``source``.
    """
    table = pd.DataFrame(_DATED, columns=_DATED_COLUMNS)
    table["formed"] = table["formed"].astype("Int64")
    table["activity"] = table["activity"].astype("Int64")
    return table


# --- the model ------------------------------------------------------------------------------------


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
        they differ from the treatment years only under ``treatment_date="activity"``, for
        Kalmar län's founders, Alvesta and Växjö),
        ``group`` (the kommuner sharing one join year: a förbund's founders), ``dated_fact``
        (the dated fact fixing the year, "" if none), ``member_2007`` ("yes", "candidate" for
        Norra Västmanland's six, "no"), ``forbund_2015``, ``source``.
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

        Columns ``kind`` (interval, group, count, dated, assumption, unused, option),
        ``subject`` (kommun code, förbund or year), ``value``, ``source``. "unused" rows are
        documented facts that constrain no calendar, with the reason.
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
        for subject, value, source in _UNUSED_FACTS:
            rows.append(("unused", subject, value, source))
        rows.append(("option", "treatment_date", self.treatment_date, ", ".join(TREATMENT_DATES)))
        rows.append(("option", "goteborg", self.goteborg, ", ".join(GOTEBORG_OPTIONS)))
        return pd.DataFrame(rows, columns=["kind", "subject", "value", "source"])


# Documented facts that are not constraints of the model, and why.
_UNUSED_FACTS = [
    (
        "2006",
        "38 förbund in 12 län in April 2006: not used (a förbund count in mid-year; the member "
        "kommuner are not counted, and which förbund existed is not listed)",
        f"{DOC_2007}, section '58 samordningsförbund i april 2007'",
    ),
    (
        "2008–2015",
        "Tabell 1's förbund counts (72, 83, 87, 82, 83, 83, 85, 80): not used (merges and "
        "splits make them undeterminable from kommun join years)",
        f"{DOC_2015}, section 3.2, Tabell 1",
    ),
    (
        "2010",
        "'nästan 190' member kommuner five years after 2005: not used as a bound (Tabell 1's "
        "exact 188 is)",
        f"{DOC_ISF}, Sammanfattning",
    ),
]


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
        län's founders then have cohort 2007, Alvesta 2008 and Växjö 2009). The count
        constraints always refer to membership (Kalmar's founders count as members from 2005
        under both definitions).
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
    model = _model(treatment_date, goteborg, chosen)
    # the cached model stays private: callers get their own frames
    return replace(
        model,
        kommuner=model.kommuner.copy(),
        groups=model.groups.copy(),
        constraints=model.constraints.copy(),
    )


@cache
def _model(treatment_date: str, goteborg: str, assumptions: CalendarAssumptions) -> CalendarModel:
    intervals = _membership.adoption_intervals()
    rows = _membership.documented_membership()
    table = intervals[["kommun_kod", "kommun", "lan_kod", "member_2007", "forbund_2015"]].copy()
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
    dated_fact = pd.Series("", index=table.index)
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
        if pd.notna(fact.activity):
            activity_year[mask] = int(fact.activity)
        if pd.isna(fact.formed):
            table.loc[mask, "source"] += f" | activity: {fact.fact} ({fact.source})"
            continue
        low, high = table.loc[mask, "member_earliest"], table.loc[mask, "member_latest"]
        if ((low > fact.formed) | (high < fact.formed)).any():
            raise ValueError(
                f"dated fact {fact.fact} ({fact.formed}) contradicts the registry intervals of "
                f"{sorted(founders)} in registry/data/membership.csv"
            )
        table.loc[mask, ["member_earliest", "member_latest"]] = fact.formed
        table.loc[mask, "source"] += f" | dated: {fact.fact} ({fact.source})"
        dated_fact[mask] = fact.fact
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
            if low > high:
                raise ValueError(
                    f"listed_2007_join_together: the intervals of {members} ({forbund_id}) "
                    "share no year; switch the assumption off or correct membership.csv"
                )
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
    table["dated_fact"] = dated_fact
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
        "dated_fact",
        "member_2007",
        "forbund_2015",
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


# --- the sampler ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Counting:
    """Calendars of join units under cumulative count bounds, counted exactly.

    Units of equal (size, earliest, latest) are exchangeable and form a type; the state after a
    segment is the number of units of each type still to join. ``transitions[seg][state]``
    holds the next states, the cumulative probabilities of moving to them (completions ×
    ways of the move / completions of ``state``) and the units of each type joining.
    """

    segments: tuple[tuple[int, int], ...]  # inclusive year ranges, each ending at a bound
    type_size: tuple[int, ...]
    type_low: tuple[int, ...]
    type_high: tuple[int, ...]
    type_units: tuple[tuple[int, ...], ...]  # unit ids of each type
    transitions: tuple[dict, ...]
    initial: tuple[int, ...]
    total: int  # number of compatible unit calendars (exact)


def _count_calendars(
    units: list[tuple[int, int, int]],
    bounds: dict[int, tuple[int, int | None]],
    years: tuple[int, ...],
) -> _Counting:
    """Count the unit calendars (a year per unit) meeting the cumulative count bounds.

    Parameters
    ----------
    units
        (size, earliest, latest) per unit: a unit of ``size`` kommuner joins in one year.
    bounds
        Year → (low, high) bounds of the cumulative number of member kommuner at the end of the
        year (``high`` None: unbounded). The last year must be bounded.
    years
        The consecutive years of the calendar.

    Raises
    ------
    ValueError
        If no calendar meets the bounds.
    """
    total_members = sum(size for size, _, _ in units)
    # an unbounded year merges with the next bounded one: only the end count is checked
    segments, start = [], years[0]
    for year in years:
        if year in bounds:
            segments.append((start, year))
            start = year + 1
    if start <= years[-1]:
        raise ValueError(f"the last year {years[-1]} needs a count bound")
    kinds = sorted(set(units))
    type_units = tuple(tuple(i for i, u in enumerate(units) if u == kind) for kind in kinds)
    sizes = tuple(k[0] for k in kinds)
    lows = tuple(k[1] for k in kinds)
    highs = tuple(k[2] for k in kinds)

    def options(state: tuple[int, ...], seg: int) -> list[tuple[tuple[int, ...], int]]:
        a, b = segments[seg]
        placed = total_members - sum(s * r for s, r in zip(sizes, state, strict=True))
        ranges, allowed = [], []
        for t, remaining in enumerate(state):
            n_years = max(0, min(highs[t], b) - max(lows[t], a) + 1)
            if remaining and highs[t] < a:
                return []  # a unit missed its deadline
            if remaining == 0 or n_years == 0:
                ranges.append(range(0, 1))
            elif highs[t] <= b:
                ranges.append(range(remaining, remaining + 1))  # deadline in this segment
            else:
                ranges.append(range(0, remaining + 1))
            allowed.append(n_years)
        low, high = bounds[b]
        high = total_members if high is None else high
        # enumerate all types but the widest; the widest follows from the count bounds
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
                # which units of each type join (binomial) times a year within the segment each
                ways = 1
                for t, k in enumerate(ks):
                    if k:
                        ways *= math.comb(state[t], k) * allowed[t] ** k
                out.append((tuple(ks), ways))
        return out

    initial = tuple(len(u) for u in type_units)
    # forward: the reachable states and their moves; backward: completions (exact integers)
    layers: list[dict] = []
    frontier = {initial}
    for seg in range(len(segments)):
        layer = {}
        following = set()
        for state in frontier:
            moves = options(state, seg)
            layer[state] = moves
            for ks, _ in moves:
                following.add(tuple(r - k for r, k in zip(state, ks, strict=True)))
        layers.append(layer)
        frontier = following
    completions: dict[tuple[int, ...], int] = {tuple(0 for _ in initial): 1}
    transitions: list[dict] = [{} for _ in segments]
    for seg in range(len(segments) - 1, -1, -1):
        counted: dict[tuple[int, ...], int] = {}
        for state, moves in layers[seg].items():
            nexts, ks_list, weights = [], [], []
            for ks, ways in moves:
                nxt = tuple(r - k for r, k in zip(state, ks, strict=True))
                weight = completions.get(nxt, 0) * ways
                if weight:
                    nexts.append(nxt)
                    ks_list.append(ks)
                    weights.append(weight)
            total = sum(weights)
            if total:
                counted[state] = total
                # exact integer prefix sums, divided once: no float overflow, no drift
                cumulative = np.array([c / total for c in itertools.accumulate(weights)])
                transitions[seg][state] = (nexts, cumulative, np.array(ks_list, dtype=np.int64))
        completions = counted
    if initial not in completions:
        shown = "; ".join(
            f"{year}: {low}–{'∞' if high is None else high}"
            for year, (low, high) in sorted(bounds.items())
        )
        raise ValueError(f"no calendar meets the count bounds ({shown}) with these intervals")
    return _Counting(
        segments=tuple(segments),
        type_size=sizes,
        type_low=lows,
        type_high=highs,
        type_units=type_units,
        transitions=tuple(transitions),
        initial=initial,
        total=completions[initial],
    )


def _draw_unit_years(counting: _Counting, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, units) join years, uniform over the unit calendars ``counting`` admits."""
    n_types, n_segments = len(counting.type_units), len(counting.segments)
    # 1. per draw, how many units of each type join in each segment (following the counts)
    counts = np.zeros((n, n_types, n_segments), dtype=np.int64)
    uniforms = rng.random((n, n_segments))
    state_of = [counting.initial] * n
    for seg in range(n_segments):
        table = counting.transitions[seg]
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
    # 2. which units of a type take which segment (a uniform permutation), and a uniform year
    # within the segment's years allowed to the unit
    n_units = sum(len(ids) for ids in counting.type_units)
    unit_year = np.zeros((n, n_units), dtype=np.int64)
    seg_low = np.array([a for a, _ in counting.segments])
    seg_high = np.array([b for _, b in counting.segments])
    rows = np.arange(n)[:, None]
    for t, ids in enumerate(counting.type_units):
        size = len(ids)
        order = np.argsort(rng.random((n, size)), axis=1)
        ends = np.cumsum(counts[:, t, :], axis=1)  # (n, segments)
        segment = (np.arange(size)[None, :, None] >= ends[:, None, :]).sum(axis=2)
        low = np.maximum(seg_low[segment], counting.type_low[t])
        high = np.minimum(seg_high[segment], counting.type_high[t])
        year = low + np.floor(rng.random((n, size)) * (high - low + 1)).astype(np.int64)
        unit_year[rows, np.asarray(ids)[order]] = year
    return unit_year


@dataclass(frozen=True)
class _Plan:
    """The model's join units (with kommun members) and their counting table."""

    counting: _Counting
    unit_members: tuple[tuple[str, ...], ...]  # fixed kommun codes (empty for candidate slots)
    unit_slot: tuple[
        tuple[str, int], ...
    ]  # Norra Västmanland slots: ("early_block"|"early"|"late", i)
    candidates: tuple[str, ...]
    n_early_candidates: int


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
    bounds = {
        int(r.year): (int(r.low), None if pd.isna(r.high) else int(r.high))
        for r in model.constraints.itertuples(index=False)
    }
    total_members = sum(size for size, _, _ in units)
    low_last = bounds.get(LAST_DOCUMENTED_YEAR, (0, None))[0]
    bounds[LAST_DOCUMENTED_YEAR] = (max(low_last, total_members), total_members)
    years = tuple(range(FIRST_YEAR, LAST_DOCUMENTED_YEAR + 1))
    try:
        counting = _count_calendars(units, bounds, years)
    except ValueError as error:
        raise ValueError(f"{error}: the model's facts and assumptions admit no calendar") from None
    return _Plan(
        counting=counting,
        unit_members=tuple(unit_members),
        unit_slot=tuple(unit_slot),
        candidates=tuple(sorted(_membership.candidates_2007())),
        n_early_candidates=_membership.N_CANDIDATES_2007,
    )


def n_compatible_calendars(model: CalendarModel | None = None) -> int:
    """Return the exact number of unit calendars the model admits.

    A founder group counts as one unit; the 20 ways to choose Norra Västmanland's three unnamed
    2007 members multiply this number. :func:`compatible_calendars` draws uniformly from them.
    """
    model = calendar_model() if model is None else model
    return _plan(model.key).counting.total


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
        The :class:`CalendarModel` (default ``calendar_model()``); it is identified by its
        options and assumptions (``model.key``), so edits to its frames are ignored.
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
    draws follow the counts, then exchangeable units are permuted at random: uniform random
    generation by counting (Nijenhuis & Wilf 1978, *Combinatorial Algorithms*, 2nd ed.,
    Academic Press). Within a run of years without a count constraint (2006 before 2007) a
    unit's year is uniform over its allowed years there.

    The counting table is built once per model (about 0.6 s); 1 000 draws then took
    0.07–0.10 s on a loaded 2-core machine (tests/test_calendar_model.py measures it).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise ValueError(f"horizon must be an integer year, got {horizon!r}")
    if not isinstance(seed, np.random.Generator) and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
    ):
        raise ValueError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    if horizon > LAST_DOCUMENTED_YEAR or horizon < FIRST_YEAR:
        raise ValueError(
            f"horizon {horizon} outside [{FIRST_YEAR}, {LAST_DOCUMENTED_YEAR}]: membership after "
            f"April {LAST_DOCUMENTED_YEAR} is undocumented (later_joins() records the later "
            "förbund found; the other non-members' membership is unknown), so a calendar "
            "cannot claim who was not a member after it"
        )
    model = calendar_model() if model is None else model
    if not model.assumptions.cumulative_membership:
        raise ValueError(
            "compatible_calendars draws calendars without exits; with cumulative_membership=False "
            "it would have to place exits, and the documents record none up to 2015"
        )
    plan = _plan(model.key)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = int(n)
    unit_year = _draw_unit_years(plan.counting, n, rng)

    # kommun years: fixed members, then Norra Västmanland's slots (a uniform choice of three)
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


# The calendar checks live in finsam_eval.registry.calendar_checks; these names stay importable
# from here for existing callers.
_MOVED = ("CalendarReport", "validate_calendar", "calendar_to_cohorts", "cohorts_to_calendar")


def __getattr__(name: str) -> object:
    """The calendar checks, imported lazily (calendar_checks imports this module)."""
    if name in _MOVED:
        from finsam_eval.registry import calendar_checks

        return getattr(calendar_checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
