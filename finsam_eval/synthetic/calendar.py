"""A synthetic adoption calendar that honours every documented membership fact.

Documented (finsam_eval.registry.membership): each kommun's adoption-year interval (exact years
where the documents date a förbund, otherwise e.g. 2005–2007 for the April 2007 members and
2008–2014 for later ones), the April 2007 and April 2015 member sets, the 49 never-members of 2015
and Tabell 1's member counts for 2008–2014. Where the documents leave freedom, the calendar is
drawn with a seeded numpy Generator: the year within each interval, which three of Norra
Västmanland's six 2015 members were the three unnamed members of 2007, and the split of the 107
early members over 2005–2007 ("about 55" members in 2005).

Members of one förbund tend to join together and larger kommuner tend to join earlier (as in the
Statskontoret 2007 list): kommuner are ranked by a Gumbel-perturbed förbund-group score, and each
year's slots are filled in that order, subject to every interval: a kommun whose interval ends
that year is placed first, and a candidate is skipped when taking it would leave a later year
infeasible (checked by earliest-deadline-first scheduling, which is exact for unit jobs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["EARLY_TARGETS", "CalendarFacts", "draw_calendar"]

# Cumulative members by the end of each early year: "about 55" in 2005 (ISF 2019) and the 107 of
# the April 2007 list; 2006 is the generator's choice (38 förbund existed in April 2006).
EARLY_TARGETS = {2005: 55, 2006: 85, 2007: 107}


@dataclass(frozen=True)
class CalendarFacts:
    """The documented facts a calendar must honour.

    Attributes
    ----------
    intervals
        Kommun code → (earliest, latest) adoption year, for every member by 2015.
    candidates_2007
        Kommuner of which ``n_candidates_2007`` (unnamed in the 2007 list) were members in 2007.
    n_candidates_2007
        How many of the candidates were members in 2007.
    counts
        Cumulative member counts by year, e.g. {2005: 55, ..., 2014: 240, 2015: 241}.
    forbund_2015
        Kommun code → förbund id in 2015.
    """

    intervals: dict[str, tuple[int, int]]
    candidates_2007: frozenset[str]
    n_candidates_2007: int
    counts: dict[int, int]
    forbund_2015: dict[str, str]


def _feasible(
    unassigned: dict[str, tuple[int, int]], slots: dict[int, int], years: list[int]
) -> bool:
    """Whether the unassigned kommuner fit the remaining year slots (earliest deadline first)."""
    pending = dict(unassigned)
    for year in years:
        if any(latest < year for _, latest in pending.values()):
            return False
        available = sorted(
            (latest, code) for code, (earliest, latest) in pending.items() if earliest <= year
        )
        if len(available) < slots[year]:
            return False
        for _, code in available[: slots[year]]:
            del pending[code]
    return not pending


def draw_calendar(facts: CalendarFacts, size: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    """Draw an adoption calendar consistent with the documented facts.

    Parameters
    ----------
    facts
        The documented facts.
    size
        Working-age population by kommun code; larger kommuner tend to join earlier.
    rng
        Seeded generator.

    Returns
    -------
    pandas.DataFrame
        One row per member kommun: ``kommun_kod``, ``forbund``, ``start_year``, ``end_year``
        (empty: no documented exit), sorted by code.

    Raises
    ------
    ValueError
        If the facts admit no calendar.
    """
    intervals = dict(facts.intervals)
    candidates = sorted(facts.candidates_2007)
    chosen = set(rng.choice(candidates, size=facts.n_candidates_2007, replace=False).tolist())
    for code in candidates:
        earliest, latest = intervals[code]
        intervals[code] = (earliest, min(latest, 2007)) if code in chosen else (2008, latest)

    years = sorted(facts.counts)
    slots, previous = {}, 0
    for year in years:
        slots[year] = facts.counts[year] - previous
        previous = facts.counts[year]
    if previous != len(intervals):
        raise ValueError(f"counts end at {previous} members but {len(intervals)} have intervals")

    # förbund groups in a seeded, size-favouring order; kommuner by size within a group
    groups: dict[str, list[str]] = {}
    for code in sorted(intervals):
        groups.setdefault(facts.forbund_2015.get(code) or f"solo-{code}", []).append(code)
    keys = sorted(groups)
    score = np.array([np.mean([np.log(size[c]) for c in groups[k]]) for k in keys])
    score = score + rng.gumbel(size=len(keys))
    order: list[str] = []
    for key in np.array(keys)[np.argsort(-score, kind="stable")]:
        order.extend(sorted(groups[key], key=lambda c: (-size[c], c)))

    start: dict[str, int] = {}
    for position, year in enumerate(years):
        pending = {c: intervals[c] for c in order if c not in start}
        later = years[position + 1 :]
        due = [c for c, (earliest, latest) in pending.items() if latest == year]
        if len(due) > slots[year]:
            raise ValueError(f"{len(due)} kommuner must join by {year} but it has {slots[year]}")
        taken = list(due)
        for code in due:
            del pending[code]
        for code in [c for c in order if c in pending and pending[c][0] <= year]:
            if len(taken) == slots[year]:
                break
            rest = {c: v for c, v in pending.items() if c != code}
            # the rest must fit this year's remaining places and the later years
            remaining = {**slots, year: slots[year] - len(taken) - 1}
            if _feasible(rest, remaining, [year, *later]):
                taken.append(code)
                del pending[code]
        if len(taken) < slots[year] or not _feasible(pending, slots, later):
            raise ValueError(f"no calendar honours the documented facts (stuck in {year})")
        for code in taken:
            start[code] = year

    codes = sorted(start)
    calendar = pd.DataFrame(
        {
            "kommun_kod": codes,
            "forbund": [facts.forbund_2015.get(c, "") for c in codes],
            "start_year": [start[c] for c in codes],
        }
    )
    calendar["end_year"] = pd.array([pd.NA] * len(calendar), dtype="Int64")
    return calendar
