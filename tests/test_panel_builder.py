"""Panel builder on a small hand-built raw input whose shares are computed here by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from helpers import ISF_OUTCOMES

from finsam_eval.panel import (
    AGE_BANDS,
    OUTCOMES,
    PANEL_COLUMNS,
    POPULATIONS,
    BuildReport,
    PanelValidationError,
    build_panel,
    is_defined,
    validate_panel,
)
from finsam_eval.panel.populations import Population, parse_age_band

# kommun → size multiplier; Heby (0331) is reported under its old code 1917 in 2004–2006
KOMMUNER = {"0114": 1, "0331": 2, "1480": 3, "2584": 4}
YEARS = range(2004, 2009)
BAND_INDEX = {band: i for i, band in enumerate(AGE_BANDS)}
OUTCOME_INDEX = {outcome: i for i, outcome in enumerate(OUTCOMES)}


def source_code(kommun: str, year: int) -> str:
    return "1917" if kommun == "0331" and year <= 2006 else kommun


def pop_value(multiplier: int, year: int, sex: str, age: int) -> int:
    return multiplier * (10 if sex == "K" else 12) + (year - 2004) + (age % 3)


def count_value(multiplier: int, year: int, sex: str, band: str, outcome: str) -> int:
    return (
        multiplier
        + 3
        + BAND_INDEX[band]
        + OUTCOME_INDEX[outcome]
        + (year - 2004)
        + (1 if sex == "M" else 0)
    )


def raw_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    pop, num = [], []
    for (kommun, m), year, sex in itertools.product(KOMMUNER.items(), YEARS, "KM"):
        code = source_code(kommun, year)
        for age in range(19, 65):
            pop.append((code, year, sex, age, pop_value(m, year, sex, age)))
        for band, outcome in itertools.product(AGE_BANDS, OUTCOMES):
            num.append((code, year, sex, band, outcome, count_value(m, year, sex, band, outcome)))
    numerators = pd.DataFrame(
        num, columns=["kommun_kod", "year", "sex", "age_band", "outcome", "count"]
    )
    population = pd.DataFrame(pop, columns=["kommun_kod", "year", "sex", "age", "population"])
    return numerators, population


COHORTS = pd.DataFrame(
    {
        "kommun_kod": ["0114", "0331", "2584"],
        "cohort": [2006, 2007, 0],
        "forbund": ["VASBY", "HEBY-SALA", ""],
    }
)


def expected_share(kommun: str, year: int, population: str, outcome: str) -> tuple[int, int]:
    """Numerator and denominator summed directly from the raw rows (not via the builder)."""
    numerators, pop = raw_inputs()
    spec = POPULATIONS[population]
    code = source_code(kommun, year)
    bands = [b for b, (lo, hi) in AGE_BANDS.items() if lo >= spec.age_min and hi <= spec.age_max]
    num = numerators[
        (numerators["kommun_kod"] == code)
        & (numerators["year"] == year)
        & numerators["sex"].isin(spec.sex)
        & numerators["age_band"].isin(bands)
        & (numerators["outcome"] == outcome)
    ]["count"].sum()
    den = pop[
        (pop["kommun_kod"] == code)
        & (pop["year"] == year)
        & pop["sex"].isin(spec.sex)
        & pop["age"].between(spec.age_min, spec.age_max)
    ]["population"].sum()
    return int(num), int(den)


@pytest.fixture(scope="module")
def built():
    numerators, population = raw_inputs()
    return build_panel(numerators, population, cohorts=COHORTS)


def cell(panel: pd.DataFrame, kommun: str, year: int, population: str, outcome: str) -> pd.Series:
    row = panel[
        (panel["kommun_kod"] == kommun)
        & (panel["year"] == year)
        & (panel["population"] == population)
        & (panel["outcome"] == outcome)
    ]
    assert len(row) == 1
    return row.iloc[0]


def test_populations_as_data():
    assert list(POPULATIONS) == ["alla", "kvinnor", "man", "unga", "aldre"]
    assert OUTCOMES == ISF_OUTCOMES
    assert POPULATIONS["unga"].outcomes == OUTCOMES
    assert POPULATIONS["aldre"].outcomes == OUTCOMES[:4]
    assert POPULATIONS["kvinnor"].sex == ("K",)
    assert (POPULATIONS["aldre"].age_min, POPULATIONS["aldre"].age_max) == (55, 64)
    assert is_defined("unga", "uvas") and not is_defined("alla", "uvas")
    assert not is_defined("aldre", "studier") and not is_defined("nobody", "sa")
    assert POPULATIONS["alla"].bands() == ("19-24", "25-54", "55-64")
    assert POPULATIONS["unga"].bands() == ("19-24",)
    assert parse_age_band("65+") == (65, 200)
    with pytest.raises(ValueError, match="straddles"):
        Population(("K", "M"), 20, 64, ("sa",)).bands()


def test_hand_computed_heby_share(built):
    # Heby 2005, reported as 1917. Population per age: 2·10+1+(age % 3) for women and
    # 2·12+1+(age % 3) for men; ages 19–64 hold 46 ages whose age % 3 sums to 46 → 15·(0+1+2)+1 = 46
    # women: 46·21 + 46 = 1012, men: 46·25 + 46 = 1196, denominator 2208.
    # sjukpenning counts: 2+3+band+0+1(+1 for men): women 6+7+8 = 21, men 7+8+9 = 24 → 45.
    row = cell(built.panel, "0331", 2005, "alla", "sjukpenning")
    assert row["numerator"] == 45
    assert row["denominator"] == 2208
    assert row["share"] == pytest.approx(100 * 45 / 2208)
    assert row["kommun"] == "Heby" and row["lan_kod"] == "03"
    assert row["cohort"] == 2007 and row["forbund"] == "HEBY-SALA"


@pytest.mark.parametrize("population", list(POPULATIONS))
def test_every_share_matches_the_raw_sums(built, population):
    panel = built.panel
    for outcome in POPULATIONS[population].outcomes:
        for kommun, year in itertools.product(KOMMUNER, (2004, 2006, 2008)):
            num, den = expected_share(kommun, year, population, outcome)
            row = cell(panel, kommun, year, population, outcome)
            assert row["numerator"] == num
            assert row["denominator"] == den
            assert row["weight"] == den
            assert row["share"] == pytest.approx(100 * num / den, rel=1e-12)


def test_panel_shape_columns_and_dtypes(built):
    panel = built.panel
    assert list(panel.columns) == list(PANEL_COLUMNS)
    n_series = sum(len(spec.outcomes) for spec in POPULATIONS.values())
    assert n_series == 25
    assert len(panel) == n_series * len(KOMMUNER) * len(YEARS)
    assert isinstance(panel.index, pd.RangeIndex) and panel.index.start == 0
    for column in ("kommun_kod", "kommun", "lan_kod", "population", "outcome", "forbund"):
        assert pd.api.types.is_string_dtype(panel[column]), column
    for column in ("cluster_kommun", "cluster_forbund", "cluster_lan"):
        assert pd.api.types.is_string_dtype(panel[column]), column
    assert panel["year"].dtype == np.int64 and panel["cohort"].dtype == np.int64
    for column in ("numerator", "denominator", "share", "weight"):
        assert panel[column].dtype == np.float64
    assert (panel["kommun_kod"].str.len() == 4).all()
    assert set(panel["kommun_kod"]) == set(KOMMUNER)  # 1917 harmonised away
    validate_panel(panel)


def test_sorted_in_population_and_outcome_order(built):
    panel = built.panel
    pop_rank = panel["population"].map({p: i for i, p in enumerate(POPULATIONS)})
    out_rank = panel["outcome"].map({o: i for i, o in enumerate(OUTCOMES)})
    keys = pd.DataFrame(
        {"p": pop_rank, "o": out_rank, "k": panel["kommun_kod"], "y": panel["year"]}
    )
    assert keys.equals(keys.sort_values(["p", "o", "k", "y"]).reset_index(drop=True))
    assert panel["population"].iloc[0] == "alla" and panel["population"].iloc[-1] == "aldre"


def test_cohorts_and_clusters(built):
    panel = built.panel
    by_kommun = panel.groupby("kommun_kod")[["cohort", "forbund", "cluster_forbund"]].first()
    assert by_kommun.loc["0114"].tolist() == [2006, "VASBY", "VASBY"]
    assert by_kommun.loc["2584"].tolist() == [0, "", "none-2584"]
    # Göteborg is missing from the cohorts table: never member, own cluster, reported
    assert by_kommun.loc["1480"].tolist() == [0, "", "none-1480"]
    assumed = built.report.to_frame().query("action == 'assumed'")
    assert assumed["kommun_kod"].tolist() == ["1480"]
    assert (panel["cluster_kommun"] == panel["kommun_kod"]).all()
    assert (panel["cluster_lan"] == panel["lan_kod"]).all()


def test_heby_code_change_is_reported(built):
    ledger = built.report.to_frame()
    changes = ledger[ledger["step"] == "harmonise"]
    assert set(changes["kommun_kod"]) == {"0331"}
    numerators = changes[changes["table"] == "numerators"]
    # 2 sexes × 3 bands per outcome and year, 2004–2006
    assert numerators["n_rows"].sum() == 3 * 2 * 3 * len(OUTCOMES)
    assert sorted(numerators["year"].unique().tolist()) == [2004, 2005, 2006]
    assert numerators["detail"].str.contains("1917 → 0331").all()
    population = changes[changes["table"] == "population"]
    assert population["n_rows"].sum() == 3 * 2 * 46
    assert any("Heby" in note for note in built.report.notes)


def test_report_reconciles(built):
    report = built.report
    assert isinstance(report, BuildReport)
    assert report.reconciles
    rec = report.reconciliation.set_index(["table", "outcome"])
    numerators, population = raw_inputs()
    assert rec.loc[("numerators", "(all)"), "rows_in"] == len(numerators)
    assert rec.loc[("numerators", "(all)"), "amount_in"] == numerators["count"].sum()
    assert rec.loc[("population", "(all)"), "amount_in"] == population["population"].sum()
    # uvas exists for 19-24 only in the unga population: the other bands are excluded
    uvas = rec.loc[("numerators", "uvas")]
    assert uvas["rows_excluded"] == len(KOMMUNER) * len(YEARS) * 2 * 2
    excluded = report.excluded()
    assert set(excluded["reason"]) == {"sex and age band not in any selected population"}
    assert set(excluded["outcome"]) == {"uvas"}
    assert "reconciles: yes" in report.summary()
    markdown = report.to_markdown()
    assert markdown.startswith("# Panel build report") and "## Reconciliation" in markdown


def test_years_window_excludes_and_reports():
    numerators, population = raw_inputs()
    built = build_panel(numerators, population, years=range(2005, 2008), outcome_only=True)
    assert sorted(built.panel["year"].unique()) == [2005, 2006, 2007]
    window = built.report.to_frame().query("step == 'window'")
    assert sorted(window["year"].unique()) == [2004, 2008]
    rec = built.report.reconciliation.set_index(["table", "outcome"])
    assert rec.loc[("population", "(all)"), "rows_excluded"] == 2 * len(KOMMUNER) * 2 * 46
    assert built.report.reconciles
    assert any("cohort 0" in note for note in built.report.notes)  # no cohorts table


def test_missing_denominator_is_reported():
    numerators, population = raw_inputs()
    population = population[~((population["kommun_kod"] == "2584") & (population["year"] == 2008))]
    built = build_panel(numerators, population, outcome_only=True)
    assert not ((built.panel["kommun_kod"] == "2584") & (built.panel["year"] == 2008)).any()
    ledger = built.report.to_frame()
    missing = ledger[ledger["reason"].str.startswith("missing denominator")]
    assert set(missing["table"]) == {"numerators", "panel"}
    assert set(missing["kommun_kod"]) == {"2584"} and set(missing["year"]) == {2008}
    assert missing.query("table == 'panel'")["n_rows"].sum() == 25
    assert built.report.reconciles


def test_incomplete_cells_drop_only_the_affected_series():
    numerators, population = raw_inputs()
    drop = (
        (numerators["kommun_kod"] == "2584")
        & (numerators["year"] == 2008)
        & (numerators["sex"] == "M")
        & (numerators["outcome"] == "sa")
    )
    built = build_panel(numerators[~drop], population, outcome_only=True)
    panel = built.panel
    kiruna = panel[(panel["kommun_kod"] == "2584") & (panel["year"] == 2008)]
    sa = kiruna[kiruna["outcome"] == "sa"]
    assert sa["population"].tolist() == ["kvinnor"]  # women's cells are complete
    not_built = built.report.to_frame().query("action == 'not built'")
    assert set(not_built["reason"].str.split(":").str[0]) == {
        "incomplete numerator",
        "missing numerator",  # men: no sa cells at all
    }
    assert set(not_built["detail"]) == {
        "population alla",
        "population man",
        "population unga",
        "population aldre",
    }
    assert built.report.reconciles


def test_stadsdel_rows_are_summed_and_reported():
    numerators, population = raw_inputs()
    goteborg = numerators["kommun_kod"] == "1480"
    districts = []
    for name, share in (("Angered", 0.25), ("Centrum", 0.75)):
        part = numerators[goteborg].copy()
        part["kommun_kod"] = "1480-" + name[:2].upper()  # codes like "1480-AN"
        part["count"] = part["count"] * share
        districts.append(part)
    split = pd.concat([numerators[~goteborg], *districts], ignore_index=True)
    by_column = pd.concat(
        [
            numerators[~goteborg].assign(stadsdel=""),
            *(
                d.assign(kommun_kod="1480", stadsdel=n)
                for d, n in zip(districts, "AB", strict=True)
            ),
        ],
        ignore_index=True,
    )
    reference = build_panel(numerators, population, outcome_only=True).panel
    for variant in (split, by_column):
        built = build_panel(variant, population, outcome_only=True)
        pd.testing.assert_frame_equal(built.panel, reference)
        lines = built.report.to_frame().query("step == 'stadsdel'")
        assert set(lines["kommun_kod"]) == {"1480"}
        # rows that reach aggregation: all but the uvas bands no population uses
        uvas_unused = 2 * 2 * len(YEARS)
        assert lines["n_rows"].sum() == len(districts) * (goteborg.sum() - uvas_unused)
        assert (lines["detail"] == "2 stadsdelar").all()
        assert built.report.reconciles


def test_knivsta_level_break_is_noted():
    numerators, population = raw_inputs()

    def clone(frame: pd.DataFrame, code: str, years: range) -> pd.DataFrame:
        base = frame[(frame["kommun_kod"] == "0114") & (frame["year"] == 2004)]
        return pd.concat([base.assign(kommun_kod=code, year=y) for y in years])

    # Uppsala 2002–2008 (its 2002 figures include Knivsta), Knivsta from 2003
    numerators = pd.concat(
        [
            numerators,
            clone(numerators, "0380", range(2002, 2009)),
            clone(numerators, "0330", range(2003, 2009)),
        ]
    )
    population = pd.concat(
        [
            population,
            clone(population, "0380", range(2002, 2009)),
            clone(population, "0330", range(2003, 2009)),
        ]
    )
    built = build_panel(numerators, population, outcome_only=True)
    assert any("Knivsta" in note and "level break" in note for note in built.report.notes)
    note = built.report.to_frame().query("action == 'note' and step == 'registry'")
    assert note["kommun_kod"].tolist() == ["0380"]
    assert note["n_rows"].iloc[0] == 25  # Uppsala's 2002 row in each of the 25 series
    assert built.panel.query("kommun_kod == '0330'")["year"].min() == 2003
    assert built.panel.query("kommun_kod == '0380'")["year"].min() == 2002
    assert built.report.reconciles


def test_partial_coverage_passes_through():
    numerators, population = raw_inputs()
    cohorts = COHORTS.assign(partial_coverage=["", "", "only Kiruna C"])
    built = build_panel(
        numerators,
        population,
        cohorts=cohorts,
        partial_coverage={"Göteborg": "förbund cover some stadsdelar"},
    )
    assert built.report.partial_coverage == {
        "1480": "förbund cover some stadsdelar",
        "2584": "only Kiruna C",
    }
    notes = built.report.to_frame().query("reason == 'partial coverage'")
    assert notes["kommun_kod"].tolist() == ["1480", "2584"]


def test_unknown_and_unused_cohort_rows_are_reported():
    numerators, population = raw_inputs()
    cohorts = pd.concat(
        [
            COHORTS.assign(kommun_kod=["0114", "1917", "2584"]),  # Heby under its old code
            pd.DataFrame({"kommun_kod": ["9999", "0180"], "cohort": [2005, 2006], "forbund": "X"}),
        ],
        ignore_index=True,
    )
    built = build_panel(numerators, population, cohorts=cohorts)
    assert cell(built.panel, "0331", 2008, "alla", "sa")["cohort"] == 2007
    ledger = built.report.to_frame().query("table == 'cohorts'")
    excluded = ledger[ledger["action"] == "excluded"].set_index("kommun_kod")["reason"]
    assert excluded.to_dict() == {
        "0180": "kommun not in the panel",
        "9999": "unknown kommun code",
    }
    assert "1917 → 0331" in ledger.query("step == 'harmonise'")["detail"].iloc[0]
    rec = built.report.reconciliation.set_index("table").loc["cohorts"]
    assert (rec["rows_in"], rec["rows_used"], rec["rows_excluded"]) == (5, 3, 2)


def test_populations_and_outcomes_subsets():
    numerators, population = raw_inputs()
    built = build_panel(
        numerators, population, populations=["aldre", "man"], outcomes=["sa"], outcome_only=True
    )
    panel = built.panel
    assert panel["population"].unique().tolist() == ["aldre", "man"]
    assert set(panel["outcome"]) == {"sa"}
    reasons = set(built.report.excluded()["reason"])
    assert "outcome not built (not requested or not defined for a selected population)" in reasons
    assert "age or sex outside every selected population" in reasons  # women 19–54
    assert built.report.reconciles
    with pytest.raises(ValueError, match="Unknown population"):
        build_panel(numerators, population, populations=["barn"], outcome_only=True)
    with pytest.raises(ValueError, match="Unknown outcome"):
        build_panel(numerators, population, outcomes=["lon"], outcome_only=True)


def test_band_straddling_a_population_is_an_error():
    numerators, population = raw_inputs()
    numerators = numerators.assign(
        age_band=numerators["age_band"].replace({"19-24": "19-29", "25-54": "30-54"})
    )
    with pytest.raises(PanelValidationError, match="straddles|partly inside") as info:
        build_panel(numerators, population, outcome_only=True)
    assert "19-29" in str(info.value) and "unga" in str(info.value)
    # the populations whose ranges the bands respect still build
    built = build_panel(numerators, population, populations=["alla", "aldre"], outcome_only=True)
    assert set(built.panel["population"]) == {"alla", "aldre"}


def test_bands_not_covering_a_population_is_an_error():
    numerators, population = raw_inputs()
    numerators = numerators[numerators["age_band"] != "25-54"]
    with pytest.raises(PanelValidationError, match="do not cover") as info:
        build_panel(numerators, population, outcome_only=True)
    assert "25-54" in str(info.value)
    built = build_panel(numerators, population, populations=["unga", "aldre"], outcome_only=True)
    assert built.report.reconciles


def test_custom_population_definition():
    numerators, population = raw_inputs()
    custom = {"arbetsfor": Population(("K", "M"), 25, 64, ("sa",), "25–64")}
    built = build_panel(numerators, population, populations=custom, outcome_only=True)
    num, den = 0, 0
    for name in ("alla",):
        n_all, d_all = expected_share("0114", 2006, name, "sa")
        n_young, d_young = expected_share("0114", 2006, "unga", "sa")
        num, den = n_all - n_young, d_all - d_young
    row = cell(built.panel, "0114", 2006, "arbetsfor", "sa")
    assert (row["numerator"], row["denominator"]) == (num, den)


def test_unpacking_and_validate_flag():
    numerators, population = raw_inputs()
    panel, report = build_panel(numerators, population, validate=False, outcome_only=True)
    assert len(panel) == report.n_rows
    assert report.series["rows"].sum() == len(panel)


@pytest.mark.slow
def test_full_size_build_is_fast():
    """290 kommuner × 21 years × 2 sexes × 46 ages (560 280 population rows)."""
    import time

    from finsam_eval.registry import kommuner

    rng = np.random.default_rng(5)
    codes = kommuner()["kommun_kod"].to_numpy()
    years = np.arange(1998, 2019)
    k, t, s, a = (
        x.ravel()
        for x in np.meshgrid(np.arange(290), years, [0, 1], np.arange(19, 65), indexing="ij")
    )
    population = pd.DataFrame(
        {
            "kommun_kod": codes[k],
            "year": t,
            "sex": np.array(["K", "M"])[s],
            "age": a,
            "population": rng.integers(50, 5000, len(k)),
        }
    )
    k, t, s, b, o = (
        x.ravel()
        for x in np.meshgrid(
            np.arange(290), years, [0, 1], np.arange(3), np.arange(6), indexing="ij"
        )
    )
    numerators = pd.DataFrame(
        {
            "kommun_kod": codes[k],
            "year": t,
            "sex": np.array(["K", "M"])[s],
            "age_band": np.array(list(AGE_BANDS))[b],
            "outcome": np.array(OUTCOMES)[o],
            "count": rng.integers(0, 40, len(k)),
        }
    )
    start = time.perf_counter()
    built = build_panel(numerators, population, outcome_only=True)
    elapsed = time.perf_counter() - start
    assert len(built.panel) == 290 * 21 * 25
    assert built.report.reconciles
    assert elapsed < 10, f"build took {elapsed:.1f}s"


def test_outcome_starting_later_is_not_a_hole():
    numerators, population = raw_inputs()
    late = (numerators["outcome"] == "uvas") & (numerators["year"] < 2006)
    built = build_panel(numerators[~late], population, outcome_only=True)
    uvas = built.panel.query("outcome == 'uvas'")
    assert uvas["year"].min() == 2006
    assert built.report.to_frame().query("action == 'not built'").empty
    assert built.report.reconciles


def test_cohorts_extra_columns_are_ignored_and_csv_round_trip(tmp_path):
    numerators, population = raw_inputs()
    cohorts = COHORTS.assign(exit_year=pd.array([None, 2015, None], dtype="Int64"))
    built = build_panel(numerators, population, cohorts=cohorts)
    path = tmp_path / "panel.csv"
    built.panel.to_csv(path, index=False)
    back = pd.read_csv(
        path,
        dtype={"kommun_kod": str, "lan_kod": str, "cluster_kommun": str, "cluster_lan": str},
        keep_default_na=False,
    )
    validate_panel(back)
    pd.testing.assert_frame_equal(back, built.panel, check_dtype=False)
    markdown = built.report.to_markdown()
    assert "## Notes" in markdown and "Heby" in markdown


def test_no_calendar_raises_naming_both_fixes():
    """Issue 11: without a calendar every kommun would silently be "never a member"."""
    numerators, population = raw_inputs()
    with pytest.raises(ValueError, match="needs the adoption calendar") as error:
        build_panel(numerators, population)
    message = str(error.value)
    assert "cohorts=" in message and "outcome_only=True" in message
    assert "calendar_to_cohorts" in message and "compatible_calendars" in message


def test_outcome_only_panel_is_asked_for_and_says_so():
    numerators, population = raw_inputs()
    built = build_panel(numerators, population, outcome_only=True)
    assert (built.panel["cohort"] == 0).all() and (built.panel["forbund"] == "").all()
    assert any(
        "Outcome-only panel" in note and "placeholder" in note for note in built.report.notes
    )
    # the outcomes are those of the panel built with a calendar
    with_calendar = build_panel(numerators, population, cohorts=COHORTS).panel
    columns = ["kommun_kod", "year", "population", "outcome", "numerator", "denominator", "share"]
    pd.testing.assert_frame_equal(built.panel[columns], with_calendar[columns])


def test_cohorts_and_outcome_only_together_raise():
    numerators, population = raw_inputs()
    with pytest.raises(ValueError, match="contradict"):
        build_panel(numerators, population, cohorts=COHORTS, outcome_only=True)
