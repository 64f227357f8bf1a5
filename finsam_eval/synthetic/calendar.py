"""A synthetic adoption calendar that honours every documented membership fact.

Documented (finsam_eval.registry.membership): the April 2007 member set, the April 2015 member
set, the 49 never-members of 2015, Tabell 1's member counts for 2008–2014, Säter joining in 2015
and Falun and Borlänge starting in 2007. Where the documents leave freedom (the year within
2004–2007 for early members, within 2008–2014 for later ones, and which three of Norra
Västmanland's six 2015 members were the three members of 2007) the calendar is drawn with a
seeded numpy Generator.

Members of one förbund tend to join together: kommuner are grouped by their 2015 förbund and
groups are placed in year slots in an order that favours larger kommuner (early adopters were
larger, as in the Statskontoret 2007 list), a group that does not fit the remaining slots of a
year spilling over into the next year (a kommun joining an existing förbund later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CalendarFacts", "draw_calendar", "EARLY_TARGETS"]

# Cumulative members by the end of each early year. 2005: "about 55" (ISF 2019); 2007: the 107
# of the April 2007 list; 2004 and 2006 are the generator's choice (the law took effect in 2004
# and 38 förbund existed in April 2006).
EARLY_TARGETS = {2004: 12, 2005: 55, 2006: 85, 2007: 107}


@dataclass(frozen=True)
class CalendarFacts:
    """The documented facts a calendar must honour.

    Attributes
    ----------
    members_2007
        Kommuner named in the April 2007 list.
    candidates_2007
        Kommuner of which ``n_candidates_2007`` (unnamed in the list) were members in 2007.
    n_candidates_2007
        How many of the candidates were members in 2007.
    members_2015
        The 241 members of April 2015.
    counts
        Cumulative member counts by year (Tabell 1), e.g. {2008: 141, ..., 2015: 241}.
    fixed
        Kommuner whose first year is documented exactly, e.g. Säter 2015.
    forbund_2015
        Kommun code → förbund id in 2015 ("" for never-members).
    """

    members_2007: frozenset[str]
    candidates_2007: frozenset[str]
    n_candidates_2007: int
    members_2015: frozenset[str]
    counts: dict[int, int]
    fixed: dict[str, int]
    forbund_2015: dict[str, str]


def _fill_slots(
    codes: list[str],
    slots: dict[int, int],
    group: dict[str, str],
    priority: dict[str, float],
    rng: np.random.Generator,
) -> dict[str, int]:
    """Place kommuner into year slots, förbund groups together, in priority order."""
    groups: dict[str, list[str]] = {}
    for code in codes:
        groups.setdefault(group.get(code) or f"solo-{code}", []).append(code)
    keys = sorted(groups)
    # Gumbel-perturbed mean priority: a seeded, size-favouring random order of groups
    score = np.array([np.mean([priority[c] for c in groups[k]]) for k in keys])
    score = score + rng.gumbel(size=len(keys))
    queue: list[str] = []
    for k in np.array(keys)[np.argsort(-score, kind="stable")]:
        queue.extend(sorted(groups[k], key=lambda c: -priority[c]))
    years = sorted(slots)
    if len(queue) != sum(slots.values()):
        raise ValueError(f"{len(queue)} kommuner for {sum(slots.values())} slots")
    out: dict[str, int] = {}
    position = 0
    for year in years:
        for code in queue[position : position + slots[year]]:
            out[code] = year
        position += slots[year]
    return out


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
    """
    candidates = sorted(facts.candidates_2007)
    chosen = set(rng.choice(candidates, size=facts.n_candidates_2007, replace=False).tolist())
    early = set(facts.members_2007) | chosen
    later = set(facts.members_2015) - early
    if not set(facts.members_2007) <= set(facts.members_2015):
        raise ValueError("every 2007 member must be a 2015 member")
    priority = {c: float(np.log(size[c])) for c in early | later}

    def slots_for(targets: dict[int, int], start: int, members: set[str]) -> dict[int, int]:
        slots, previous = {}, start
        for year in sorted(targets):
            slots[year] = targets[year] - previous
            previous = targets[year]
        for code, year in facts.fixed.items():
            if code in members:
                slots[year] -= 1
        if any(v < 0 for v in slots.values()):
            raise ValueError(f"documented counts leave negative slots: {slots}")
        return slots

    early_slots = slots_for(EARLY_TARGETS, 0, early)
    later_targets = {y: n for y, n in facts.counts.items() if y >= 2008}
    later_slots = slots_for(later_targets, EARLY_TARGETS[2007], later)
    start = dict(facts.fixed)
    start.update(
        _fill_slots(
            sorted(early - set(facts.fixed)), early_slots, facts.forbund_2015, priority, rng
        )
    )
    start.update(
        _fill_slots(
            sorted(later - set(facts.fixed)), later_slots, facts.forbund_2015, priority, rng
        )
    )
    calendar = pd.DataFrame(
        {
            "kommun_kod": sorted(start),
            "forbund": [facts.forbund_2015.get(c, "") for c in sorted(start)],
            "start_year": [start[c] for c in sorted(start)],
        }
    )
    calendar["end_year"] = pd.array([pd.NA] * len(calendar), dtype="Int64")
    return calendar
