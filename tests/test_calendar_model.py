"""The calendar model and its compatible calendars, checked against the documented facts.

Expected facts come from the seed documents (parsed here; skipped where ../shared is absent) or
from the registry data that tests/test_membership.py checks against the seeds (the 2007 list,
the never-members, the intervals), never from the sampler under test.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import finsam_eval
from finsam_eval.registry import (
    N_CANDIDATES_2007,
    CalendarAssumptions,
    adoption_intervals,
    calendar_model,
    candidates_2007,
    cohorts_to_calendar,
    compatible_calendars,
    kommun_code,
    kommuner,
    later_joins,
    members_2007,
    members_2015,
    never_members_2015,
    validate_calendar,
)

DOC_2007 = "000_425f59042e5590ac.txt"
DOC_ISF = "001_5bd59affdc4fd9dd.txt"
DOC_2015 = "004_0c1d07d624b103a9.txt"


@pytest.fixture(scope="module")
def draws() -> pd.DataFrame:
    return compatible_calendars(50, seed=1)


@pytest.fixture(scope="module")
def wide(draws: pd.DataFrame) -> pd.DataFrame:
    """draw × kommun_kod cohorts."""
    return draws.pivot(index="draw", columns="kommun_kod", values="cohort")


@pytest.fixture(scope="module")
def tabell_1(seeds_dir: Path) -> dict[int, int]:
    """Member kommuner per year from Tabell 1 (004), 'Maj 2015' as 2015."""
    text = (seeds_dir / DOC_2015).read_text(encoding="utf-8")
    block = text[text.index("Tabell 1 Samordningsförbund") :][:400]
    return {
        (2015 if label.startswith("Maj") else int(label)): int(n_kommuner)
        for label, _, n_kommuner in re.findall(r"^(\d{4}|Maj \d{4})\t(\d+)\t(\d+)$", block, re.M)
    }


@pytest.fixture(scope="module")
def kalmar_founders(seeds_dir: Path) -> set[str]:
    """The footnote **) of the April 2007 table: Kalmar län's members (all but Borgholm)."""
    text = (seeds_dir / DOC_2007).read_text(encoding="utf-8")
    match = re.search(r"\*\*\) Följande kommuner: (.+?)\.", text, re.S)
    assert match is not None
    names = [name.strip() for name in re.split(r",", " ".join(match.group(1).split()))]
    return {kommun_code(name) for name in names}


# --- every draw satisfies every documented fact ---------------------------------------------------


def test_long_frame_shape_and_types(draws: pd.DataFrame) -> None:
    assert list(draws.columns) == ["draw", "kommun_kod", "cohort"]
    assert draws["draw"].nunique() == 50
    assert draws.groupby("draw")["kommun_kod"].nunique().eq(290).all()
    assert pd.api.types.is_integer_dtype(draws["cohort"])


def test_tabell_1_counts_in_every_draw(wide: pd.DataFrame, tabell_1: dict[int, int]) -> None:
    assert len(tabell_1) == 8
    for year, documented in tabell_1.items():
        members = ((wide > 0) & (wide <= year)).sum(axis=1)
        assert (members == documented).all(), (year, members.unique(), documented)


def test_april_2007_list_in_every_draw(wide: pd.DataFrame, seeds_dir: Path) -> None:
    text = (seeds_dir / DOC_2007).read_text(encoding="utf-8")
    total_2007 = int(re.search(r"Riket 58\s+\((\d+) kommuner\)", text).group(1))
    named = sorted(members_2007())
    assert len(named) + N_CANDIDATES_2007 == total_2007 == 107
    assert ((wide[named] > 0) & (wide[named] <= 2007)).all().all()
    candidates = sorted(candidates_2007())
    in_2007 = ((wide[candidates] > 0) & (wide[candidates] <= 2007)).sum(axis=1)
    assert (in_2007 == N_CANDIDATES_2007).all()
    # default assumption no_joins_may_dec_2007: the end-2007 count is the list's 107
    assert (((wide > 0) & (wide <= 2007)).sum(axis=1) == total_2007).all()


def test_never_members_and_2015_members(wide: pd.DataFrame) -> None:
    never = sorted(never_members_2015())
    assert len(never) == 49
    assert (wide[never] == 0).all().all()
    members = sorted(members_2015())
    assert ((wide[members] > 0) & (wide[members] <= 2015)).all().all()


def test_cohorts_within_documented_intervals(wide: pd.DataFrame) -> None:
    intervals = adoption_intervals().set_index("kommun_kod")
    members = intervals[intervals["earliest_cohort"] > 0]
    cohorts = wide[members.index]
    assert (cohorts >= members["earliest_cohort"]).all().all()
    assert (cohorts <= members["latest_cohort"]).all().all()


def test_kalmar_founders_share_the_formation_year(
    wide: pd.DataFrame, kalmar_founders: set[str], seeds_dir: Path
) -> None:
    text = (seeds_dir / DOC_2015).read_text(encoding="utf-8")
    assert "Samordningsförbundet i Kalmar län bildades den 1 oktober 2005" in text
    assert len(kalmar_founders) == 11 and kommun_code("Borgholm") not in kalmar_founders
    assert (wide[sorted(kalmar_founders)] == 2005).all().all()
    assert (wide[kommun_code("Borgholm")] >= 2008).all()


def test_karlskoga_degerfors_join_together(wide: pd.DataFrame, seeds_dir: Path) -> None:
    text = (seeds_dir / DOC_2007).read_text(encoding="utf-8")
    assert "Karlskoga/Degerfors" in text  # one förbund in the April 2007 table
    pair = [kommun_code("Karlskoga"), kommun_code("Degerfors")]
    assert (wide[pair[0]] == wide[pair[1]]).all()


def test_knappt_55_in_2005(wide: pd.DataFrame, seeds_dir: Path) -> None:
    text = (seeds_dir / DOC_ISF).read_text(encoding="utf-8")
    assert "knappt 55 kommuner" in " ".join(text.split())
    in_2005 = ((wide > 0) & (wide <= 2005)).sum(axis=1)
    assert (in_2005 < 55).all() and (in_2005 >= 50).all()


def test_validate_calendar_finds_no_conflict_in_any_draw(draws: pd.DataFrame) -> None:
    for _, draw in draws.groupby("draw"):
        report = validate_calendar(draw)
        assert report.ok, report.summary()


# --- options and assumptions ----------------------------------------------------------------------


def test_activity_date_moves_kalmar_to_2007(kalmar_founders: set[str], seeds_dir: Path) -> None:
    text = " ".join((seeds_dir / DOC_2015).read_text(encoding="utf-8").split())
    assert "bildades den 1 oktober 2005, och verksamheterna inleddes 2007" in text
    assert "Alvesta och Växjö samordningsförbund finansierar sedan 2008 respektive 2009" in text
    model = calendar_model(treatment_date="activity")
    wide = compatible_calendars(10, 3, model=model).pivot(
        index="draw", columns="kommun_kod", values="cohort"
    )
    assert (wide[sorted(kalmar_founders)] == 2007).all().all()
    assert (wide[kommun_code("Alvesta")] == 2008).all()
    assert (wide[kommun_code("Växjö")] == 2009).all()
    for draw in range(10):
        frame = wide.loc[draw].rename("cohort").reset_index()
        assert validate_calendar(frame, model=model).ok
        # under the formation date the same cohorts break the dated fact
        checks = set(validate_calendar(frame).conflicts["check"])
        assert "dated_fact" in checks
    # and formation-year cohorts break the activity definition
    formation = compatible_calendars(1, 3)
    conflicts = validate_calendar(formation, model=model).conflicts
    wrong = conflicts[conflicts["check"].eq("treatment_date")]
    # Alvesta's formation-basis year is 2008 in every default draw, its activity year too
    assert set(wrong["kommun_kod"]) == kalmar_founders | {kommun_code("Växjö")}


@pytest.mark.parametrize("option", ["treated", "excluded", "untreated"])
def test_goteborg_options(option: str) -> None:
    model = calendar_model(goteborg=option)
    draws = compatible_calendars(5, 4, model=model)
    goteborg = draws[draws["kommun_kod"].eq(kommun_code("Göteborg"))]["cohort"]
    expected = {"treated": [2005] * 5, "excluded": [], "untreated": [0] * 5}[option]
    assert goteborg.tolist() == expected
    for _, draw in draws.groupby("draw"):
        assert validate_calendar(draw, model=model).ok


def test_relaxed_assumptions_still_satisfy_their_model() -> None:
    model = calendar_model(
        assumptions={
            "no_joins_may_dec_2007": False,
            "listed_2007_join_together": False,
            "count_2005": None,
        }
    )
    draws = compatible_calendars(20, 5, model=model)
    for _, draw in draws.groupby("draw"):
        assert validate_calendar(draw, model=model).ok
    wide = draws.pivot(index="draw", columns="kommun_kod", values="cohort")
    # with joins allowed from May 2007 the end-2007 count may exceed the April list's 107
    assert (((wide > 0) & (wide <= 2007)).sum(axis=1) >= 107).all()


def test_unknown_options_raise() -> None:
    with pytest.raises(ValueError, match="treatment_date"):
        calendar_model(treatment_date="decision")
    with pytest.raises(ValueError, match="goteborg"):
        calendar_model(goteborg="half")
    with pytest.raises(ValueError, match="unknown calendar assumption"):
        calendar_model(assumptions={"no_exits": True})
    with pytest.raises(ValueError, match="cumulative_membership"):
        compatible_calendars(
            2, 1, model=calendar_model(assumptions={"cumulative_membership": False})
        )
    with pytest.raises(ValueError, match="True or False"):
        CalendarAssumptions(cumulative_membership="no")
    with pytest.raises(ValueError, match="undocumented"):
        compatible_calendars(2, 1, horizon=2018)
    with pytest.raises(ValueError, match="positive integer"):
        compatible_calendars(0, 1)


def test_horizon_truncates_later_joins() -> None:
    full = compatible_calendars(5, 9)
    short = compatible_calendars(5, 9, horizon=2010)
    expected = full["cohort"].where(full["cohort"] <= 2010, 0)
    assert short["cohort"].tolist() == expected.tolist()


# --- conflicts are reported by kommun, förbund and fact -------------------------------------------


def test_split_founders_are_reported(draws: pd.DataFrame, kalmar_founders: set[str]) -> None:
    draw = draws[draws["draw"].eq(0)].copy()
    one = sorted(kalmar_founders)[0]
    draw.loc[draw["kommun_kod"].eq(one), "cohort"] = 2006
    conflicts = validate_calendar(draw).conflicts
    split = conflicts[conflicts["check"].eq("founders_together")]
    assert set(split["kommun_kod"]) == kalmar_founders
    assert set(split["forbund"]) == {"kalmar_lan"}
    assert set(split["fact"]) == {"kalmar_lan_formed"}
    assert "dated_fact" in set(conflicts["check"])


def test_cohort_frame_conversion_roundtrip(draws: pd.DataFrame) -> None:
    draw = draws[draws["draw"].eq(1)]
    calendar = cohorts_to_calendar(draw)
    assert len(calendar) == 241
    assert validate_calendar(calendar).ok
    with pytest.raises(ValueError, match="draws"):
        cohorts_to_calendar(draws)


# --- determinism, speed, exports ------------------------------------------------------------------


def test_same_seed_same_draws() -> None:
    first = compatible_calendars(30, 11)
    assert first.equals(compatible_calendars(30, 11))
    assert first.equals(compatible_calendars(30, np.random.default_rng(11)))
    assert not first.equals(compatible_calendars(30, 12))


def test_thousand_draws_timing() -> None:
    compatible_calendars(1, 0)  # the counting table is built once per model
    start = time.perf_counter()
    draws = compatible_calendars(1000, 2)
    elapsed = time.perf_counter() - start
    print(f"1000 compatible calendars in {elapsed:.2f} s")
    assert len(draws) == 290_000
    assert elapsed < 30  # the target is < 5 s; loose here for a loaded machine


def test_top_level_exports() -> None:
    assert finsam_eval.compatible_calendars is compatible_calendars
    assert finsam_eval.calendar_model is calendar_model


def test_describe_names_every_fact_with_a_source() -> None:
    model = calendar_model()
    facts = model.describe()
    assert {"interval", "group", "count", "dated", "assumption", "option"} <= set(facts["kind"])
    assert facts["source"].ne("").all()
    assert len(model.kommuner) == 290
    kalmar = model.kommuner.set_index("kommun_kod").loc[kommun_code("Kalmar")]
    assert kalmar["exact"] and kalmar["earliest"] == 2005 and "BILAGA 2" in kalmar["source"]


def test_later_joins_are_recorded_with_sources_and_not_used() -> None:
    table = later_joins()
    assert set(table["kommun_kod"]) <= never_members_2015()
    assert table["source"].str.startswith("http").all()
    assert (table["earliest"] >= 2015).all() and (table["earliest"] <= table["latest"]).all()
    wide = compatible_calendars(3, 0).pivot(index="draw", columns="kommun_kod", values="cohort")
    assert (wide[sorted(table["kommun_kod"])] == 0).all().all()


# --- the sampler against brute-force enumeration --------------------------------------------------


def test_sampler_is_uniform_over_a_small_enumerated_problem() -> None:
    """Exact count and uniform draws, checked against enumerating every assignment."""
    from itertools import product

    from scipy import stats

    from finsam_eval.registry.calendar import _count_calendars, _draw_unit_years

    # (size, earliest, latest): singles, a founder pair, late singles; 2006 is unconstrained
    units = [(1, 2005, 2007)] * 3 + [(2, 2005, 2006)] + [(1, 2006, 2008)] * 2
    bounds = {2005: (1, 3), 2007: (5, 6), 2008: (7, 7)}
    years = (2005, 2006, 2007, 2008)
    valid = []
    for assignment in product(*(range(low, high + 1) for _, low, high in units)):
        pairs = list(zip(units, assignment, strict=True))
        ok = all(
            low <= sum(size for (size, _, _), y in pairs if y <= year) <= high
            for year, (low, high) in bounds.items()
        )
        if ok:
            valid.append(assignment)
    counting = _count_calendars(units, bounds, years)
    assert counting.total == len(valid) > 20

    draws = _draw_unit_years(counting, 40_000, np.random.default_rng(5))
    index = {assignment: i for i, assignment in enumerate(valid)}
    observed = np.bincount([index[tuple(row)] for row in draws.tolist()], minlength=len(valid))
    assert observed.sum() == 40_000  # every draw is one of the enumerated calendars
    result = stats.chisquare(observed)
    assert result.pvalue > 1e-3, result


def test_infeasible_bounds_raise() -> None:
    from finsam_eval.registry.calendar import _count_calendars

    with pytest.raises(ValueError, match="no calendar meets the count bounds"):
        _count_calendars([(1, 2005, 2005)] * 2, {2005: (3, 3)}, (2005,))


def test_cohort_csv_is_validated(draws: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "cohorts.csv"
    draw = draws[draws["draw"].eq(2)].drop(columns="draw")
    draw.to_csv(path, index=False)
    assert validate_calendar(path).ok
    broken = draw.copy()
    broken.loc[broken["kommun_kod"].eq(kommun_code("Karlskoga")), "cohort"] = 2011
    broken.to_csv(path, index=False)
    conflicts = validate_calendar(path).conflicts
    karlskoga = conflicts[conflicts["kommun_kod"].eq(kommun_code("Karlskoga"))]
    assert {"member_2007_late", "founders_together"} <= set(karlskoga["check"])
    assert set(karlskoga["forbund"]) == {"degerfors_karlskoga"}


def test_knappt_55_is_a_switchable_fact_of_the_checks(draws: pd.DataFrame) -> None:
    draw = draws[draws["draw"].eq(3)].set_index("kommun_kod")["cohort"].copy()
    in_2005 = int(((draw > 0) & (draw <= 2005)).sum())
    facts = calendar_model().kommuner.set_index("kommun_kod")
    # single-kommun 2007 förbund without a dated year, not yet in 2005 in this draw
    movable = facts.index[
        facts["member_2007"].eq("yes") & facts["group"].eq("") & ~facts["exact"]
    ].intersection(draw.index[draw > 2005])
    draw[movable[: 55 - in_2005]] = 2005
    frame = draw.rename("cohort").reset_index()
    conflicts = validate_calendar(frame).conflicts
    assert conflicts["check"].tolist() == ["assumption_count"]
    assert "count_2005" in conflicts["fact"].iloc[0] and "55 member" in conflicts["detail"].iloc[0]
    relaxed = calendar_model(assumptions={"count_2005": None})
    assert validate_calendar(frame, model=relaxed).ok


def test_cohort_frame_rows_are_never_dropped_silently(draws: pd.DataFrame) -> None:
    draw = draws[draws["draw"].eq(4)].reset_index(drop=True)
    never = sorted(never_members_2015())[0]
    member = sorted(members_2015())[0]
    unknown = draw.copy()
    unknown.loc[unknown["kommun_kod"].eq(never), "kommun_kod"] = "Atlantis"  # cohort 0
    unknown.loc[unknown["kommun_kod"].eq(member), "kommun_kod"] = "Atlantis2"  # a member
    conflicts = validate_calendar(unknown).conflicts
    flagged = conflicts[conflicts["check"].eq("unknown_kommun")]["detail"]
    assert flagged.str.contains("'Atlantis'").sum() == 1
    assert flagged.str.contains("'Atlantis2'").sum() == 1
    assert "unknown_forbund" not in set(conflicts["check"])
    doubled = pd.concat([draw, draw[draw["kommun_kod"].eq(never)]], ignore_index=True)
    conflicts = validate_calendar(doubled).conflicts
    assert conflicts[conflicts["check"].eq("duplicate")]["kommun_kod"].tolist() == [never]
    names = kommuner().set_index("kommun_kod")["kommun"]
    assert validate_calendar(draw.assign(kommun_kod=draw["kommun_kod"].map(names))).ok


def test_exits_are_conflicts_unless_the_assumption_is_off(draws: pd.DataFrame) -> None:
    calendar = cohorts_to_calendar(draws[draws["draw"].eq(0)])
    lulea = kommun_code("Luleå")
    row = calendar[calendar["kommun"].eq(lulea)].iloc[0]
    # Luleå leaves its förbund for 2009-2010 and rejoins in 2011
    calendar["end_year"] = pd.array([pd.NA] * len(calendar), dtype="Int64")
    calendar.loc[calendar["kommun"].eq(lulea), "end_year"] = 2008
    back = pd.DataFrame(
        {"kommun": [lulea], "forbund": [row["forbund"]], "start_year": [2011], "end_year": [pd.NA]}
    )
    gapped = pd.concat([calendar, back], ignore_index=True)
    conflicts = validate_calendar(gapped).conflicts
    exits = conflicts[conflicts["check"].eq("exit")]
    assert exits["kommun_kod"].tolist() == [lulea]
    assert "[2009, 2010]" in exits["detail"].iloc[0]
    relaxed = calendar_model(assumptions={"cumulative_membership": False})
    assert "exit" not in set(validate_calendar(gapped, model=relaxed).conflicts["check"])
