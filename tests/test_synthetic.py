"""The bundled synthetic data: documented membership facts, structure, truth and determinism.

Expected member sets and counts come from the registry's documented facts (themselves tested
against the seed documents in test_membership.py), never from the generator. National levels
and trends are checked against the rough magnitudes of shared/DOMAIN.md, kommun sizes against
its documented range (about 2 500 inhabitants in Bjurholm to about 950 000 in Stockholm).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_eval.panel.populations import POPULATIONS
from finsam_eval.registry import compatible_calendars, membership, validate_calendar
from finsam_eval.synthetic import (
    DEFAULT_SEED,
    YEARS,
    generate_synthetic,
    load_synthetic,
    load_synthetic_sources,
    load_synthetic_truth,
    write_synthetic,
)
from finsam_eval.synthetic.store import FILES, PANEL_FILE, _bundled_panel, bundled_dir, panel_key

TABELL_1 = {2008: 141, 2009: 172, 2010: 188, 2011: 213, 2012: 221, 2013: 225, 2014: 240}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return load_synthetic()


@pytest.fixture(scope="module")
def cohorts(panel: pd.DataFrame) -> pd.Series:
    return panel.drop_duplicates("kommun_kod").set_index("kommun_kod")["cohort"]


def test_panel_has_every_kommun_year_and_series(panel: pd.DataFrame) -> None:
    assert panel["kommun_kod"].nunique() == 290
    assert sorted(panel["year"].unique()) == list(range(1998, 2019))
    series = panel[["population", "outcome"]].drop_duplicates()
    assert len(series) == 25
    expected = {(p, o) for p, spec in POPULATIONS.items() for o in spec.outcomes}
    assert set(map(tuple, series.to_numpy())) == expected
    assert not panel.duplicated(["kommun_kod", "year", "population", "outcome"]).any()
    assert len(panel) == 290 * 21 * 25


def test_panel_columns_and_types(panel: pd.DataFrame) -> None:
    required = [
        "kommun_kod", "kommun", "lan_kod", "year", "population", "outcome", "numerator",
        "denominator", "share", "cohort", "forbund", "weight", "cluster_kommun",
        "cluster_forbund", "cluster_lan",
    ]  # fmt: skip
    assert all(column in panel.columns for column in required)
    assert panel["kommun_kod"].str.len().eq(4).all()
    assert panel["year"].dtype.kind == "i" and panel["cohort"].dtype.kind == "i"
    assert panel["share"].between(0, 100).all()
    np.testing.assert_allclose(panel["share"], 100 * panel["numerator"] / panel["denominator"])
    never = panel["cohort"].eq(0)
    assert panel.loc[never, "forbund"].eq("").all()
    assert panel.loc[~never, "forbund"].ne("").all()


@pytest.mark.parametrize("year, expected", sorted(TABELL_1.items()))
def test_member_counts_per_year_match_tabell_1(cohorts: pd.Series, year: int, expected) -> None:
    documented = membership.member_counts()
    documented = documented[(documented["series"] == "tabell_1") & (documented["year"] == year)]
    assert int(documented["n_kommuner"].iloc[0]) == expected  # the registry holds Tabell 1
    assert int(((cohorts > 0) & (cohorts <= year)).sum()) == expected


def test_2007_members_are_the_documented_set(cohorts: pd.Series) -> None:
    members = set(cohorts.index[(cohorts > 0) & (cohorts <= 2007)])
    named = membership.members_2007()
    candidates = membership.candidates_2007()
    assert len(members) == 107
    assert named <= members
    assert members - named <= candidates
    assert len(members & candidates) == membership.N_CANDIDATES_2007


def test_2015_members_and_never_members(cohorts: pd.Series) -> None:
    assert set(cohorts.index[(cohorts > 0) & (cohorts <= 2015)]) == membership.members_2015()
    assert set(cohorts.index[cohorts == 0]) == membership.never_members_2015()
    assert len(membership.never_members_2015()) == 49


def test_calendar_passes_the_registry_validation() -> None:
    calendar = load_synthetic_sources().calendar
    report = validate_calendar(calendar)
    assert report.ok, report.conflicts.to_string()
    assert membership.validate_calendar(calendar).ok


def test_calendar_is_the_draw_of_the_calendar_model_for_the_world_seed(cohorts) -> None:
    draw = compatible_calendars(1, DEFAULT_SEED).set_index("kommun_kod")["cohort"]
    pd.testing.assert_series_equal(
        cohorts.sort_index(), draw.sort_index(), check_names=False, check_dtype=False
    )


def test_heby_is_coded_historically_in_the_sources_and_harmonised_in_the_panel(panel) -> None:
    sources = load_synthetic_sources()
    heby = sources.population[sources.population["kommun_kod"].isin(["1917", "0331"])]
    assert heby.loc[heby["year"] <= 2006, "kommun_kod"].eq("1917").all()
    assert heby.loc[heby["year"] >= 2007, "kommun_kod"].eq("0331").all()
    assert "1917" not in set(panel["kommun_kod"])
    assert panel.loc[panel["kommun_kod"] == "0331", "year"].nunique() == 21


def test_noise_shrinks_with_kommun_size(panel: pd.DataFrame) -> None:
    series = panel[(panel["population"] == "alla") & (panel["outcome"] == "studier")]
    series = series[series["cohort"] == 0]  # no effects among never-members
    wide = series.pivot(index="kommun_kod", columns="year", values="share")
    size = series.groupby("kommun_kod")["denominator"].mean()
    roughness = wide.diff(axis=1).iloc[:, 1:].std(axis=1)
    small = roughness[size <= size.quantile(0.25)].median()
    large = roughness[size >= size.quantile(0.75)].median()
    assert small > 1.5 * large


def test_early_adopters_are_larger(panel: pd.DataFrame, cohorts: pd.Series) -> None:
    size = panel.groupby("kommun_kod")["denominator"].mean()
    early = size[(cohorts > 0) & (cohorts <= 2007)]
    late = size[cohorts >= 2008]
    assert early.median() > late.median()


def test_truth_sign_pattern_follows_isf() -> None:
    truth = load_synthetic_truth(aggregate="event_time")
    at = truth.set_index(["population", "outcome", "event_time"])["att"]
    assert at[("alla", "sjukpenning", 5)] < -0.1 and at[("alla", "sjukpenning", 6)] < -0.1
    assert all(at[("alla", "sa", e)] > 0 for e in range(0, 7))
    assert all(at[("man", "af_till_arbete", e)] > 0 for e in range(0, 7))
    assert all(at[("kvinnor", "af_till_arbete", e)] == 0 for e in range(0, 7))
    assert all(at[("unga", "uvas", e)] > 0 for e in range(0, 7))
    assert all(abs(at[("unga", "ekonomiskt_bistand", e)]) < 1e-12 for e in range(0, 7))
    assert (
        at[("aldre", "ekonomiskt_bistand", 2)] == 0 and at[("aldre", "ekonomiskt_bistand", 4)] > 0
    )
    assert all(at[(p, "studier", e)] == 0 for p in ("alla", "unga") for e in range(0, 7))
    pre = truth[truth["event_time"] < 0]
    assert pre["att"].eq(0).all()


def test_truth_is_heterogeneous_across_cohorts() -> None:
    truth = load_synthetic_truth()
    cell = truth[
        (truth["population"] == "alla")
        & (truth["outcome"] == "sjukpenning")
        & (truth["event_time"] == 3)
    ].set_index("cohort")["att"]
    assert cell.loc[2012] < 0 and cell.loc[2005] < 2 * cell.loc[2012]  # |early| > 2·|late|


def test_event_time_truth_uses_cohort_size_weights() -> None:
    cells = load_synthetic_truth()
    aggregated = load_synthetic_truth(aggregate="event_time")
    sel = cells[(cells["population"] == "unga") & (cells["outcome"] == "uvas")]
    sel = sel[sel["event_time"] == 4]
    expected = np.average(sel["att"], weights=sel["n_kommuner"])
    got = aggregated[
        (aggregated["population"] == "unga")
        & (aggregated["outcome"] == "uvas")
        & (aggregated["event_time"] == 4)
    ]["att"]
    assert got.iloc[0] == pytest.approx(expected, rel=1e-12)
    # cohorts enter only event times observed within 1998–2018
    assert sel["cohort"].max() + 4 <= YEARS.max()


def test_bundled_files_are_byte_identical_to_a_regeneration(tmp_path: Path) -> None:
    bundled = bundled_dir()
    if bundled is None:
        pytest.skip("finsam_eval/synthetic/data is not present")
    written = write_synthetic(tmp_path, seed=DEFAULT_SEED)
    for name, filename in FILES.items():
        new = hashlib.sha256(written[name].read_bytes()).hexdigest()
        old = hashlib.sha256((bundled / filename).read_bytes()).hexdigest()
        assert new == old, f"{filename} differs from a regeneration with the default seed"


def test_other_seed_gives_other_data_but_same_documented_facts() -> None:
    other = generate_synthetic(seed=7)
    report = validate_calendar(other.calendar)
    assert report.ok, report.summary()
    default = load_synthetic_sources()
    assert not other.numerators["count"].equals(default.numerators["count"])


# --- national levels and trends (shared/DOMAIN.md, "Rough magnitudes") -----------------------


@pytest.fixture(scope="module")
def national(panel: pd.DataFrame) -> pd.DataFrame:
    """National share (percent) by population × outcome (rows) and year (columns)."""
    sums = panel.groupby(["population", "outcome", "year"])[["numerator", "denominator"]].sum()
    return (100 * sums["numerator"] / sums["denominator"]).unstack("year")


def test_sa_falls_from_about_9_to_about_6_percent(national: pd.DataFrame) -> None:
    # "SA recipients: roughly 8–10 % of 20–64 around 2005, declining towards about 6 % by 2016"
    sa = national.loc[("alla", "sa")]
    assert 8.0 <= sa[2005] <= 10.0
    assert 5.0 <= sa[2016] <= 7.0
    assert (sa.loc[2006:2016].diff().dropna() < 0).all()  # declining every year


def test_activity_compensation_for_the_young_rises(national: pd.DataFrame) -> None:
    # aktivitetsersättning (SA for 19–29) rose while sjukersättning was phased out
    young = national.loc[("unga", "sa")]
    assert young[2016] > 1.3 * young[2005]
    assert (young.loc[2005:2016].diff().dropna() > 0).all()


def test_the_2008_reform_cuts_sickness_benefit_sharply(national: pd.DataFrame) -> None:
    # "a few percent of the working-age population, falling sharply after the 2008 reform"
    sick = national.loc[("alla", "sjukpenning")]
    assert sick.between(1.0, 9.0).all()
    assert sick[2010] < 0.8 * sick[2007]
    assert sick[2008] < sick[2007] and sick[2009] < sick[2008] and sick[2010] < sick[2009]


def test_economic_assistance_rises_in_the_recession(national: pd.DataFrame) -> None:
    # "about 4–6 % of adults during a year; rises in the 2008–09 recession"
    assistance = national.loc[("alla", "ekonomiskt_bistand")]
    assert assistance.between(4.0, 6.0).all()
    assert assistance[2009] > assistance[2007] and assistance[2010] > assistance[2007]


def test_transitions_to_work_fall_in_2009(national: pd.DataFrame) -> None:
    # "a few percent of the population per year; falls in 2009"
    work = national.loc[("alla", "af_till_arbete")]
    assert work.between(1.0, 9.0).all()
    assert work[2009] < 0.9 * work[2008] and work[2009] < work[2010]


def test_uvas_stays_within_8_to_12_percent(national: pd.DataFrame) -> None:
    assert national.loc[("unga", "uvas")].between(8.0, 12.0).all()


# --- kommun sizes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def size_2018(panel: pd.DataFrame) -> pd.Series:
    """Population 19–64 in 2018 by kommun name."""
    rows = panel[(panel["year"] == 2018) & (panel["population"] == "alla")]
    return rows.drop_duplicates("kommun_kod").set_index("kommun")["denominator"]


def test_the_three_big_cities_are_the_largest_in_order(size_2018: pd.Series) -> None:
    ranked = size_2018.sort_values(ascending=False).index.tolist()
    assert ranked[:3] == ["Stockholm", "Göteborg", "Malmö"]


def test_small_inland_kommuner_are_the_smallest(size_2018: pd.Series) -> None:
    ranked = size_2018.sort_values().index.tolist()
    assert ranked[0] == "Bjurholm"
    assert "Dorotea" in ranked[:5]


def test_sizes_span_the_documented_range(size_2018: pd.Series) -> None:
    # about 950 000 (Stockholm) to about 2 500 (Bjurholm) inhabitants: a ratio of about 380,
    # checked within a factor of two (working-age shares differ little between kommuner)
    ratio = size_2018["Stockholm"] / size_2018["Bjurholm"]
    assert 950_000 / 2_500 / 2 <= ratio <= 950_000 / 2_500 * 2


# --- the calendar -----------------------------------------------------------------------------


def test_calendar_is_marked_synthetic() -> None:
    calendar = load_synthetic_sources().calendar
    assert calendar["origin"].eq("synthetic").all()
    assert pd.read_csv(bundled_dir() / FILES["calendar"])["origin"].eq("synthetic").all()


def test_kalmar_founders_join_in_one_year(cohorts: pd.Series) -> None:
    # Samordningsförbundet i Kalmar län was formed on 1 October 2005 (seed 004, bilaga 2) by the
    # whole län except Borgholm (seed 000, the April 2007 list)
    documented = membership.documented_membership()
    founders = documented[
        documented["forbund_id"].eq("kalmar_lan") & documented["member_2007"].eq("yes")
    ]
    assert len(founders) == 11
    assert cohorts[founders["kommun_kod"]].nunique() == 1


# --- the bundled built panel and the wheel ----------------------------------------------------


def test_bundled_panel_is_current_and_equals_a_build_from_the_sources() -> None:
    from finsam_eval.panel import build_panel

    bundled = bundled_dir()
    cached = _bundled_panel(str(bundled), DEFAULT_SEED)
    assert cached is not None, f"{PANEL_FILE} is stale: run `make synthetic-data`"
    sources = load_synthetic_sources()
    built = build_panel(
        sources.numerators,
        sources.population,
        cohorts=membership.calendar_to_cohorts(sources.calendar),
    ).panel
    pd.testing.assert_frame_equal(cached, built)


def test_a_changed_source_or_seed_changes_the_panel_key(tmp_path: Path) -> None:
    bundled = bundled_dir()
    copy = tmp_path / "data"
    shutil.copytree(bundled, copy)
    key = panel_key(copy, DEFAULT_SEED)
    assert key == panel_key(bundled, DEFAULT_SEED)
    assert panel_key(copy, DEFAULT_SEED + 1) != key
    calendar = copy / FILES["calendar"]
    calendar.write_bytes(calendar.read_bytes().replace(b",2005,", b",2006,", 1))
    assert panel_key(copy, DEFAULT_SEED) != key
    assert _bundled_panel(str(copy), DEFAULT_SEED) is None  # a stale panel is never read


def test_wheel_carries_the_synthetic_data(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root / "finsam_eval", source / "finsam_eval", ignore=ignore)
    command = [sys.executable, "-m", "pip", "wheel", str(source), "-w", str(tmp_path / "dist")]
    done = subprocess.run([*command, "--no-deps", "-q"], capture_output=True, text=True)
    if done.returncode != 0 and "setuptools" in done.stderr and "No matching" in done.stderr:
        pytest.skip(f"cannot install the build backend: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("finsam_eval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for filename in [*FILES.values(), PANEL_FILE]:
        assert f"finsam_eval/synthetic/data/{filename}" in names
