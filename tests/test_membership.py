"""Documented förbund membership: the package data against the seed documents, and calendars.

The seed-document tests read ../shared/seeds (skipped where absent) and parse the tables there
independently of the curated data, so a typo in either shows up as a difference.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from finsam_eval.registry import (
    N_CANDIDATES_2007,
    UnknownForbundError,
    UnknownKommunError,
    adoption_intervals,
    calendar_to_cohorts,
    candidates_2007,
    documented_membership,
    forbund,
    forbund_id,
    kommun_code,
    kommuner,
    member_counts,
    members_2007,
    members_2015,
    never_members_2015,
    validate_calendar,
)

DOC_2007 = "000_425f59042e5590ac.txt"
DOC_2015 = "004_0c1d07d624b103a9.txt"
DOC_ISF = "001_5bd59affdc4fd9dd.txt"


# --- helpers ------------------------------------------------------------------------------------


def _squash(text: str) -> str:
    """Compare names across line-break hyphenation ("Upp- lands-Bro") and spacing."""
    return re.sub(r"[\s\-–]+", "", text).casefold()


def _resolve(name: str) -> str:
    """kommun_code for a seed cell, repairing the appendix's broken hyphenation."""
    name = name.strip().rstrip(")").strip()
    for candidate in (name.replace("- ", ""), re.sub(r"[\s]+", "", name.replace("- ", ""))):
        try:
            return kommun_code(candidate)
        except UnknownKommunError:
            continue
    raise UnknownKommunError(f"seed name {name!r} does not resolve")


def _split_names(cell: str) -> list[str]:
    items = [i for i in re.split(r",\s*|\s+och\s+", cell) if i.strip()]
    codes: list[str] = []
    for item in items:
        item = re.sub(r"^Göteborg .*", "Göteborg", item.strip())  # stadsdel förbund
        try:
            codes.append(_resolve(item))
        except UnknownKommunError:
            # "Alvesta Växjö": two names without a comma in the appendix
            codes += [_resolve(word) for word in item.split()]
    return codes


@pytest.fixture(scope="module")
def doc_2007(seeds_dir: Path) -> list[str]:
    lines = (seeds_dir / DOC_2007).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if "Samordningsförbund 2007-04-25" in line)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("Källa:"))
    return lines[start:end]


@pytest.fixture(scope="module")
def appendix_4(seeds_dir: Path) -> list[list[str]]:
    """BILAGA 4 rows as lists of non-empty tab-separated cells."""
    lines = (seeds_dir / DOC_2015).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "BILAGA 4")
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("* "):  # the footnote ends the table
            break
        cells = [cell.strip() for cell in line.split("\t") if cell.strip()]
        if len(cells) >= 2 and not cells[0].startswith("Län (Kommuner"):
            rows.append(cells)
    return rows


def _is_forbund_name(cell: str) -> bool:
    return bool(re.search(r"amordningsför|Finsam", cell, flags=re.IGNORECASE))


@pytest.fixture(scope="module")
def appendix_members(appendix_4: list[list[str]]) -> pd.DataFrame:
    """(län cell, förbund cell, kommun_kod) per member in BILAGA 4."""
    records = []
    lan_cell = ""
    for cells in appendix_4:
        if len(cells) == 3 or not _is_forbund_name(cells[0]):
            lan_cell, cells = cells[0], cells[1:]
        name = cells[0]
        if len(cells) == 1:
            # Stockholm's block is shifted: the first förbund's kommuner are only in its name
            members = name.replace("Samordningsförbundet", "")
            codes = [_resolve(word) for word in members.split()]
        else:
            codes = _split_names(cells[1])
        records += [(lan_cell, name, code) for code in codes]
    return pd.DataFrame(records, columns=["lan_cell", "forbund_cell", "kommun_kod"])


@pytest.fixture(scope="module")
def appendix_never(appendix_4: list[list[str]]) -> pd.DataFrame:
    """The kommuner without förbund, from the appendix's "Län (…)" cells."""
    records = []
    for cells in appendix_4:
        match = re.fullmatch(r"(.+?) \((.+)\)", cells[0])
        if match and not _is_forbund_name(cells[0]):
            records += [(match.group(1), code) for code in _split_names(match.group(2))]
    return pd.DataFrame(records, columns=["lan_cell", "kommun_kod"])


def consistent_calendar() -> pd.DataFrame:
    """An exact calendar that honours every documented fact (built for the tests).

    Early members start at their earliest year; three of Norra Västmanland's candidates start in
    2007; the rest fill Tabell 1's yearly increments, tightest deadline first.
    """
    intervals = adoption_intervals()
    members = intervals[intervals["earliest_cohort"] > 0].set_index("kommun_kod")
    counts = member_counts()
    tabell_1 = counts[counts["series"].eq("tabell_1")].drop_duplicates("year")
    target = dict(zip(tabell_1["year"], tabell_1["n_kommuner"].astype(int), strict=True))
    candidates = sorted(candidates_2007())
    start = members.loc[members["member_2007"].eq("yes"), "earliest_cohort"].to_dict()
    start.update(dict.fromkeys(candidates[:N_CANDIDATES_2007], 2007))
    # "knappt 55" members in 2005 (ISF 2019): move whole 2007 förbund (founders join together)
    # from 2005 to 2007 until at most 54 remain; Kalmar län is dated 2005 (004, BILAGA 2)
    rows = documented_membership()
    listed = rows[rows["member_2007"].eq("yes") & rows["forbund_id"].ne("kalmar_lan")]
    for _, group in listed.groupby("forbund_id"):
        if sum(year == 2005 for year in start.values()) <= 54:
            break
        codes = list(group["kommun_kod"])
        if (
            all(start[c] == 2005 for c in codes)
            and (members.loc[codes, "latest_cohort"] >= 2007).all()
        ):
            start.update(dict.fromkeys(codes, 2007))
    queue = members.drop(index=list(start)).sort_values(["latest_cohort", "earliest_cohort"])
    previous = len(start)
    for year in sorted(target):
        ready = queue[(queue["earliest_cohort"] <= year) & ~queue.index.isin(list(start))]
        chosen = ready.index[: target[year] - previous]
        assert (queue.loc[chosen, "latest_cohort"] >= year).all()
        start.update(dict.fromkeys(chosen, year))
        previous = target[year]
    assert len(start) == len(members)
    return pd.DataFrame(
        {
            "kommun": list(start),
            "forbund": members.loc[list(start), "forbund_2015"].to_numpy(),
            "start_year": list(start.values()),
        }
    )


@pytest.fixture(scope="module")
def good_calendar() -> pd.DataFrame:
    return consistent_calendar()


def _checks(calendar: pd.DataFrame) -> set[str]:
    return set(validate_calendar(calendar).conflicts["check"])


# --- the curated data itself ----------------------------------------------------------------------


def test_every_source_spelling_resolves_through_kommun_code() -> None:
    rows = documented_membership()
    resolved = rows["name_in_source"].map(kommun_code)
    assert (resolved == rows["kommun_kod"]).all()
    never = pd.read_csv(
        Path(__file__).resolve().parents[1]
        / "finsam_eval"
        / "registry"
        / "data"
        / "never_members_2015.csv",
        dtype=str,
    )
    assert (never["name_in_source"].map(kommun_code) == never["kommun_kod"]).all()


def test_membership_rows_are_well_formed() -> None:
    rows = documented_membership()
    table = forbund()
    assert not rows.duplicated(["kommun_kod", "forbund_id"]).any()
    assert set(rows["forbund_id"]) <= set(table["forbund_id"])
    assert (rows["earliest_start"] <= rows["latest_start"]).all()
    assert rows["earliest_start"].min() == 2005  # "De första förbunden startade år 2005"
    assert set(rows["member_2007"]) == {"yes", "no", "candidate"}
    assert rows["source"].str.contains(r"\.txt").all()
    assert rows["kommun"].notna().all()


def test_forbund_table_is_well_formed() -> None:
    table = forbund()
    assert table["forbund_id"].is_unique
    assert table["forbund_id"].str.fullmatch(r"[a-z][a-z0-9_]*").all()
    merged = table.loc[table["merged_into"].ne(""), "merged_into"]
    assert set(merged) <= set(table.loc[table["listed_2015"], "forbund_id"])
    assert set(table["coverage"]) == {"whole", "partial", "target_group"}
    assert table["source"].str.contains(r"\.txt").all()
    lans = set(kommuner()["lan_kod"])
    assert table["lan_kods"].str.split(";").map(lambda codes: set(codes) <= lans).all()


def test_every_förbund_row_has_kommuner_except_the_target_group_one() -> None:
    rows = documented_membership()
    table = forbund()
    empty = set(table["forbund_id"]) - set(rows["forbund_id"])
    assert empty == set(table.loc[table["coverage"].eq("target_group"), "forbund_id"])


# --- April 2007 -----------------------------------------------------------------------------------


def test_107_members_in_2007_are_104_named_plus_3_of_6_candidates(doc_2007: list[str]) -> None:
    total = re.search(r"Riket (\d+)\s+\((\d+) kommuner\)", "\n".join(doc_2007))
    assert total is not None
    assert len(members_2007()) + N_CANDIDATES_2007 == int(total.group(2)) == 107
    assert len(members_2007()) == 104
    assert len(candidates_2007()) == 6
    assert not members_2007() & candidates_2007()
    unnamed = re.search(
        r"Norra Västmanlands samordningsförbund;\s+(\d+) kommuner", "\n".join(doc_2007)
    )
    assert unnamed is not None and int(unnamed.group(1)) == N_CANDIDATES_2007


def test_2007_forbund_per_lan_match_the_table(doc_2007: list[str]) -> None:
    per_lan = {}
    for line in doc_2007:
        match = re.match(r"^(\D+?) (\d+)\b", line.strip())
        if match and not line.startswith(("Län", "*")):
            per_lan[match.group(1).strip()] = int(match.group(2))
    total = per_lan.pop("Riket")
    table = forbund()
    ours = table.loc[table["listed_2007"], "table_lan_2007"].value_counts().to_dict()
    assert ours == per_lan
    assert sum(ours.values()) == total == 58
    assert len(per_lan) == 16


def test_vastra_gotaland_has_19_forbund_with_4_goteborg_stadsdel_forbund(
    doc_2007: list[str],
) -> None:
    table = forbund()
    vg = table[table["table_lan_2007"].eq("V Götaland")]
    assert len(vg) == 19
    partial = vg[vg["coverage"].eq("partial")]
    assert len(partial) == 4
    assert partial["name"].str.contains("Göteborg").all()
    covered = re.search(r"Omfattar (\d+) kommuner", "\n".join(doc_2007))
    assert covered is not None
    named = kommuner().set_index("kommun_kod").loc[sorted(members_2007()), "lan_kod"]
    assert int((named == "14").sum()) == int(covered.group(1)) == 38


def test_named_2007_members_are_spelled_as_in_the_table(doc_2007: list[str]) -> None:
    text = _squash("\n".join(doc_2007))
    rows = documented_membership()
    named = rows[rows["member_2007"].eq("yes")]
    missing = [name for name in named["name_2007"] if _squash(name) not in text]
    assert missing == []
    assert named["name_2007"].map(kommun_code).eq(named["kommun_kod"]).all()


def test_karlskoga_degerfors_counted_under_varmland_but_in_orebro_lan() -> None:
    row = forbund().set_index("forbund_id").loc["degerfors_karlskoga"]
    assert row["table_lan_2007"] == "Värmland"
    assert row["lan_kods"] == "18"
    assert {kommun_code("Karlskoga"), kommun_code("Degerfors")} <= members_2007()


def test_jamtland_target_group_forbund_makes_no_kommun_a_member() -> None:
    table = forbund()
    jamtland = table[table["table_lan_2007"].eq("Jämtland")]
    assert len(jamtland) == 6
    assert jamtland["coverage"].eq("target_group").sum() == 1
    not_named = {kommun_code(n) for n in ("Härjedalen", "Krokom", "Ragunda")}
    assert not not_named & members_2007()


def test_falun_and_borlange_newly_started_in_2007() -> None:
    intervals = adoption_intervals().set_index("kommun_kod")
    for name in ("Falun", "Borlänge"):
        row = intervals.loc[kommun_code(name)]
        assert (row["earliest_cohort"], row["latest_cohort"]) == (2007, 2007)


# --- April 2015 -----------------------------------------------------------------------------------


def test_241_members_and_49_never_members_partition_the_290() -> None:
    assert len(members_2015()) == 241
    assert len(never_members_2015()) == 49
    assert members_2015() | never_members_2015() == set(kommuner()["kommun_kod"])
    assert not members_2015() & never_members_2015()


def test_every_2007_member_and_candidate_is_a_2015_member() -> None:
    assert members_2007() < members_2015()
    assert candidates_2007() < members_2015()


def test_2015_membership_matches_appendix_4(appendix_members: pd.DataFrame) -> None:
    rows = documented_membership()
    ours = rows[rows["member_2015"]].merge(forbund()[["forbund_id", "name"]], on="forbund_id")
    ours_pairs = set(zip(ours["name"].map(_squash), ours["kommun_kod"], strict=True))
    theirs = appendix_members.assign(key=appendix_members["forbund_cell"].str.rstrip("*"))
    theirs_pairs = set(zip(theirs["key"].map(_squash), theirs["kommun_kod"], strict=True))
    assert ours_pairs == theirs_pairs
    assert set(appendix_members["kommun_kod"]) == members_2015()


def test_80_forbund_in_2015(appendix_members: pd.DataFrame, seeds_dir: Path) -> None:
    table = forbund()
    assert int(table["listed_2015"].sum()) == 80
    assert appendix_members["forbund_cell"].map(_squash).nunique() == 80
    text = (seeds_dir / DOC_2015).read_text(encoding="utf-8")
    assert "I april 2015 fanns det 80 samordningsförbund" in text
    assert "241 av landets 290 kommuner" in text


def test_never_members_per_lan_match_appendix_4(appendix_never: pd.DataFrame) -> None:
    assert len(appendix_never) == 49
    assert set(appendix_never["kommun_kod"]) == never_members_2015()
    lan_of = kommuner().set_index("kommun_kod")["lan_kod"]
    appendix_never = appendix_never.assign(lan_kod=appendix_never["kommun_kod"].map(lan_of))
    # each län cell lists kommuner of one län only, so the per-län grouping is the appendix's
    assert appendix_never.groupby("lan_cell")["lan_kod"].nunique().eq(1).all()
    ours = pd.Series(sorted(never_members_2015())).map(lan_of).value_counts().sort_index()
    theirs = appendix_never["lan_kod"].value_counts().sort_index()
    assert ours.to_dict() == theirs.to_dict()
    assert ours.to_dict()["01"] == 15


def test_bad_esa_spans_two_lan_and_goteborg_is_partial() -> None:
    table = forbund().set_index("forbund_id")
    assert table.loc["bad_esa", "lan_kods"] == "14;17"
    intervals = adoption_intervals().set_index("kommun_kod")
    goteborg = intervals.loc[kommun_code("Göteborg")]
    assert goteborg["coverage"] == "partial"
    assert len(goteborg["forbund_2015_all"].split(";")) == 4


def test_merges_of_2014_15_match_section_3_2(seeds_dir: Path) -> None:
    text = (seeds_dir / DOC_2015).read_text(encoding="utf-8")
    block = text[text.index("Vid årsskiftet 2014/15") :]
    bullets = re.findall(r"^- (Samordningsförbundet [^–\n]+) – tidigare (.+?)\.?$", block, re.M)
    assert len(bullets) == 5
    table = forbund()
    for new, old in bullets:
        successor = forbund_id(new.strip())
        predecessors = {forbund_id(name.strip()) for name in old.split(" samt ")}
        merged = table[table["merged_into"].eq(successor) & table["merged_year"].eq(2015)]
        assert set(merged["forbund_id"]) == predecessors, new
    # förbund count: 85 in 2014 -> 80 in May 2015 (Tabell 1), the five merges explain it
    existed_2014 = (table["listed_2015"] & table["formed"].ne(2015).fillna(True)) | table[
        "merged_year"
    ].eq(2015).fillna(False)
    assert int(existed_2014.sum()) == 85


def test_sater_joined_in_2015(seeds_dir: Path) -> None:
    assert "I april 2015 tillkom Sätters kommun" in (seeds_dir / DOC_2015).read_text(
        encoding="utf-8"
    )
    row = adoption_intervals().set_index("kommun_kod").loc[kommun_code("Säter")]
    assert (row["earliest_cohort"], row["latest_cohort"]) == (2015, 2015)
    assert row["forbund_2015"] == "sodra_dalarna"


# --- counts ---------------------------------------------------------------------------------------


def test_tabell_1_counts_match_the_document(seeds_dir: Path) -> None:
    text = (seeds_dir / DOC_2015).read_text(encoding="utf-8")
    block = text[text.index("Tabell 1 Samordningsförbund") :][:400]
    parsed = {
        (2015 if label.startswith("Maj") else int(label)): (int(n_forbund), int(n_kommuner))
        for label, n_forbund, n_kommuner in re.findall(
            r"^(\d{4}|Maj \d{4})\t(\d+)\t(\d+)$", block, re.M
        )
    }
    counts = member_counts()
    tabell_1 = counts[counts["series"].eq("tabell_1")]
    ours = {
        int(y): (int(f), int(k))
        for y, f, k in zip(
            tabell_1["year"], tabell_1["n_forbund"], tabell_1["n_kommuner"], strict=True
        )
    }
    assert ours == parsed
    assert len(parsed) == 8
    assert ours[2008] == (72, 141) and ours[2015] == (80, 241)


def test_approximate_and_snapshot_counts(seeds_dir: Path) -> None:
    counts = member_counts()
    approximate = counts[counts["approximate"]]
    assert dict(zip(approximate["year"], approximate["n_kommuner"], strict=True)) == {
        2005: 55,
        2010: 190,
    }
    isf = (seeds_dir / DOC_ISF).read_text(encoding="utf-8")
    assert "knappt 55 kommuner" in isf and "nästan 190" in isf
    snapshot = counts[counts["series"].eq("snapshot")].set_index("year")
    assert snapshot.loc[2006, "n_forbund"] == 38 and snapshot.loc[2006, "n_lan"] == 12
    assert pd.isna(snapshot.loc[2006, "n_kommuner"])
    assert snapshot.loc[2007, "n_kommuner"] == 107 and snapshot.loc[2007, "n_forbund"] == 58


def test_intervals_admit_the_yearly_counts() -> None:
    intervals = adoption_intervals()
    members = intervals[intervals["earliest_cohort"] > 0]
    counts = member_counts()
    for row in counts[counts["series"].eq("tabell_1")].itertuples(index=False):
        surely = int((members["latest_cohort"] <= row.year).sum())
        possibly = int((members["earliest_cohort"] <= row.year).sum())
        assert surely <= row.n_kommuner <= possibly, row.year


# --- adoption intervals -------------------------------------------------------------------------


def test_adoption_intervals_cover_all_290_kommuner() -> None:
    intervals = adoption_intervals()
    assert len(intervals) == 290 and intervals["kommun_kod"].is_unique
    never = intervals[intervals["never_member_2015"]]
    assert (never[["earliest_cohort", "latest_cohort"]] == 0).all().all()
    assert never["forbund_2015"].eq("").all()
    members = intervals[~intervals["never_member_2015"]]
    assert members["forbund_2015"].ne("").all()
    assert (members["earliest_cohort"] <= members["latest_cohort"]).all()


def test_adoption_interval_rules() -> None:
    intervals = adoption_intervals().set_index("kommun_kod")
    named = intervals.loc[sorted(members_2007())]
    assert named["earliest_cohort"].ge(2005).all() and named["latest_cohort"].le(2007).all()
    later = intervals.loc[sorted(members_2015() - members_2007() - candidates_2007())]
    assert later["earliest_cohort"].ge(2007).all()  # Alvesta's förbund was formed in 2007
    assert later["latest_cohort"].le(2015).all()
    candidates = intervals.loc[sorted(candidates_2007())]
    assert (candidates["earliest_cohort"] == 2005).all() and (
        candidates["latest_cohort"] == 2014
    ).all()
    assert intervals.loc[kommun_code("Göteborg"), "latest_cohort"] == 2005
    assert intervals.loc[kommun_code("Gävle"), "earliest_cohort"] == 2014


# --- förbund names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("bad_esa", "bad_esa"),
        ("BÅD-ESÅ", "bad_esa"),
        ("Norra Dalsland", "bad_esa"),
        ("Delta", "goteborg_hisingen"),
        ("Samordningsförbundet Göteborg Hisingen (Delta)", "goteborg_hisingen"),
        ("SkövdeHjoTiBorg", "skovde_hjo_tibro_karlsborg"),
        ("Samordningsförbundet i Söder- tälje".replace("- ", ""), "sodertalje"),
        ("Norra Västmanlands samordningsförbund", "norra_vastmanland"),
    ],
)
def test_forbund_id_resolves_names_and_aliases(given: str, expected: str) -> None:
    assert forbund_id(given) == expected


def test_unknown_forbund_error_suggests() -> None:
    with pytest.raises(UnknownForbundError) as caught:
        forbund_id("Samordningsförbundet Varendd")
    assert "Varendd" in str(caught.value) and "varend" in str(caught.value)


# --- calendars ------------------------------------------------------------------------------------


def test_consistent_calendar_passes(good_calendar: pd.DataFrame) -> None:
    report = validate_calendar(good_calendar)
    assert report.ok, report.summary()
    assert report.conflicts.empty
    assert (report.counts["calendar"] == report.counts["documented"]).all()


def test_calendar_from_csv_with_names(good_calendar: pd.DataFrame, tmp_path: Path) -> None:
    names = kommuner().set_index("kommun_kod")["kommun"]
    table = forbund().set_index("forbund_id")["name"]
    named = good_calendar.assign(
        kommun=good_calendar["kommun"].map(names), forbund=good_calendar["forbund"].map(table)
    )
    path = tmp_path / "calendar.csv"
    named.to_csv(path, index=False)
    assert validate_calendar(path).ok


def test_unknown_kommun_is_reported_with_suggestions(good_calendar: pd.DataFrame) -> None:
    extra = pd.DataFrame({"kommun": ["Stokholm"], "forbund": ["varend"], "start_year": [2010]})
    report = validate_calendar(pd.concat([good_calendar, extra], ignore_index=True))
    bad = report.conflicts[report.conflicts["check"].eq("unknown_kommun")]
    assert len(bad) == 1 and "Stokholm" in bad["detail"].iloc[0]
    assert "Did you mean" in bad["detail"].iloc[0]


def test_unknown_forbund_is_reported(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.copy()
    calendar.loc[0, "forbund"] = "Samordningsförbundet Atlantis"
    report = validate_calendar(calendar)
    assert report.conflicts["check"].tolist() == ["unknown_forbund"]
    assert "Atlantis" in report.conflicts["detail"].iloc[0]


def conflicts_if_starting(calendar: pd.DataFrame, kommun: str, year: int) -> pd.DataFrame:
    """The conflicts of ``calendar`` once ``kommun`` (a name) starts in ``year`` instead."""
    moved = calendar.copy()
    moved.loc[moved["kommun"].eq(kommun_code(kommun)), "start_year"] = year
    return validate_calendar(moved).conflicts


def test_start_outside_interval(good_calendar: pd.DataFrame) -> None:
    # Uppsala is first listed in 2015: [2008, 2014]
    bad = conflicts_if_starting(good_calendar, "Uppsala", 2006)
    assert kommun_code("Uppsala") in set(
        bad.loc[bad["check"].eq("start_outside_interval"), "kommun_kod"]
    )


def test_dated_kommun_starting_in_another_year(good_calendar: pd.DataFrame) -> None:
    # Samordningsförbundet Gävleborg was formed on 15 December 2014 (004, BILAGA 2)
    bad = conflicts_if_starting(good_calendar, "Gävle", 2010)
    dated = bad[bad["check"].eq("dated_fact")]
    assert dated["kommun_kod"].tolist() == [kommun_code("Gävle")]
    assert dated["fact"].tolist() == ["gavleborg_formed"]
    split = bad[bad["check"].eq("founders_together")]
    assert len(split) == 10 and set(split["forbund"]) == {"gavleborg"}


def test_2007_member_starting_after_2007(good_calendar: pd.DataFrame) -> None:
    bad = conflicts_if_starting(good_calendar, "Malmö", 2009)
    late = bad[bad["check"].eq("member_2007_late")]
    assert late["kommun_kod"].tolist() == [kommun_code("Malmö")]


def test_never_member_before_2015(good_calendar: pd.DataFrame) -> None:
    extra = pd.DataFrame({"kommun": ["Stockholm"], "forbund": ["nacka"], "start_year": [2012]})
    bad = validate_calendar(pd.concat([good_calendar, extra], ignore_index=True)).conflicts
    early = bad[bad["check"].eq("never_member_early")]
    assert early["kommun_kod"].tolist() == ["0180"]
    later = pd.DataFrame({"kommun": ["Stockholm"], "forbund": ["nacka"], "start_year": [2016]})
    assert validate_calendar(pd.concat([good_calendar, later], ignore_index=True)).ok


def test_yearly_counts_differing_from_tabell_1(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.copy()
    # move one 2009 joiner to 2010: its interval allows it, the counts do not
    movable = calendar[calendar["start_year"].eq(2009)].index[0]
    calendar.loc[movable, "start_year"] = 2010
    report = validate_calendar(calendar)
    assert report.conflicts["check"].tolist() == ["yearly_count"]
    assert report.conflicts["detail"].iloc[0].startswith("2009: 171 member kommuner")


def test_end_before_start(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.assign(end_year=pd.array([pd.NA] * len(good_calendar), "Int64"))
    calendar.loc[0, "end_year"] = calendar.loc[0, "start_year"] - 1
    assert "end_before_start" in _checks(calendar)


def test_duplicates(good_calendar: pd.DataFrame) -> None:
    calendar = pd.concat([good_calendar, good_calendar.iloc[[5]]], ignore_index=True)
    report = validate_calendar(calendar)
    assert report.conflicts["check"].tolist() == ["duplicate"]


def test_invalid_start_year(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.astype({"start_year": object})
    calendar.loc[0, "start_year"] = "soon"
    assert "invalid_year" in _checks(calendar)


def test_forbund_not_documented_for_kommun(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.copy()
    calendar.loc[calendar["kommun"].eq(kommun_code("Malmö")), "forbund"] = "lund"
    report = validate_calendar(calendar)
    assert report.conflicts["check"].tolist() == ["forbund_not_documented"]


def test_predecessor_forbund_is_accepted(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.copy()
    motala = calendar["kommun"].eq(kommun_code("Motala"))
    calendar.loc[motala, "forbund"] = "motala_vadstena"
    calendar = calendar.assign(end_year=pd.array([pd.NA] * len(calendar), "Int64"))
    calendar.loc[motala, "end_year"] = 2014
    successor = pd.DataFrame(
        {"kommun": ["Motala"], "forbund": ["Västra Östergötland"], "start_year": [2015]}
    )
    assert validate_calendar(pd.concat([calendar, successor], ignore_index=True)).ok


def test_2015_member_missing(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar[good_calendar["kommun"].ne(kommun_code("Säter"))]
    report = validate_calendar(calendar)
    assert "not_member_2015" in set(report.conflicts["check"])


def test_candidates_2007_count(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.copy()
    candidates = calendar["kommun"].isin(candidates_2007())
    calendar.loc[candidates, "start_year"] = 2007  # all six early: the table says three
    checks = _checks(calendar)
    assert "candidates_2007" in checks


def test_strict_raises_listing_conflicts(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.copy()
    calendar.loc[calendar["kommun"].eq(kommun_code("Malmö")), "start_year"] = 2009
    with pytest.raises(ValueError, match="member_2007_late"):
        validate_calendar(calendar, strict=True)
    validate_calendar(good_calendar, strict=True)


def test_missing_columns_raise() -> None:
    with pytest.raises(ValueError, match="start_year"):
        validate_calendar(pd.DataFrame({"kommun": ["Malmö"], "forbund": ["malmo"]}))


def test_calendar_to_cohorts(good_calendar: pd.DataFrame) -> None:
    calendar = good_calendar.assign(end_year=pd.array([pd.NA] * len(good_calendar), "Int64"))
    malmo = calendar["kommun"].eq(kommun_code("Malmö"))
    calendar.loc[malmo, "end_year"] = 2016
    cohorts = calendar_to_cohorts(calendar)
    assert len(cohorts) == 290 and cohorts["kommun_kod"].is_unique
    assert cohorts["kommun_kod"].tolist() == sorted(cohorts["kommun_kod"])
    never = cohorts[cohorts["kommun_kod"].isin(never_members_2015())]
    assert (never["cohort"] == 0).all() and never["forbund"].eq("").all()
    row = cohorts.set_index("kommun_kod").loc[kommun_code("Malmö")]
    assert (row["cohort"], row["forbund"], row["exit_year"]) == (2007, "malmo", 2016)
    assert cohorts["exit_year"].notna().sum() == 1
    assert (cohorts["cohort"] > 0).sum() == 241


def test_calendar_to_cohorts_takes_first_forbund() -> None:
    calendar = pd.DataFrame(
        {
            "kommun": ["Motala", "Motala"],
            "forbund": ["vastra_ostergotland", "Motala/Vadstena"],
            "start_year": [2015, 2006],
            "end_year": [None, 2014],
        }
    )
    row = calendar_to_cohorts(calendar).set_index("kommun_kod").loc[kommun_code("Motala")]
    assert (row["cohort"], row["forbund"]) == (2006, "motala_vadstena")
    assert pd.isna(row["exit_year"])


def test_calendar_to_cohorts_rejects_unknown_names() -> None:
    calendar = pd.DataFrame({"kommun": ["Atlantis"], "forbund": ["malmo"], "start_year": [2007]})
    with pytest.raises(ValueError, match="Atlantis"):
        calendar_to_cohorts(calendar)


def test_kalmar_founders_dated_to_the_formation_year(seeds_dir: Path) -> None:
    text = " ".join((seeds_dir / DOC_2015).read_text(encoding="utf-8").split())
    match = re.search(r"Samordningsförbundet i Kalmar län bildades den 1 oktober (\d{4})", text)
    assert match is not None
    formed = int(match.group(1))
    table = forbund().set_index("forbund_id")
    assert table.loc["kalmar_lan", "formed"] == formed
    rows = documented_membership()
    founders = rows[rows["forbund_id"].eq("kalmar_lan") & rows["member_2007"].eq("yes")]
    assert len(founders) == 11
    assert (founders["earliest_start"] == formed).all()
    assert (founders["latest_start"] == formed).all()
    borgholm = rows[rows["kommun_kod"].eq(kommun_code("Borgholm"))]
    assert (borgholm["earliest_start"] > 2007).all()
