"""The builder says why a panel cell is missing (issue 13, item 1).

Each test removes or zeroes known cells of a small hand-built input and checks that the gap
error and the build report name exactly those cells (kommun, year, population, outcome) with the
cause the construction implies: suppressed in the source (listed in ``suppressed=``), zero
population (denominator 0), or absent from the source (no row).
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from finsam_eval.panel import PanelValidationError, build_panel

KOMMUNER = {"0114": 1, "0331": 2, "2584": 4}  # code → size multiplier
YEARS = range(2004, 2009)
BANDS = ("19-24", "25-54", "55-64")
OUTCOME = "sjukpenning"
POPS = ["kvinnor", "man"]  # one sex each: a cell of one sex is one population's cell
SUPPRESSED = "suppressed in the source"
ZERO = "zero population"
ABSENT = "absent from the source"


def raw_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numerators (one outcome, three bands) and single-year population, 19–64."""
    pop, num = [], []
    for (kommun, m), year, sex in itertools.product(KOMMUNER.items(), YEARS, "KM"):
        for age in range(19, 65):
            pop.append((kommun, year, sex, age, 10 * m + age % 3))
        for i, band in enumerate(BANDS):
            num.append((kommun, year, sex, band, OUTCOME, m + i + 1))
    numerators = pd.DataFrame(
        num, columns=["kommun_kod", "year", "sex", "age_band", "outcome", "count"]
    )
    population = pd.DataFrame(pop, columns=["kommun_kod", "year", "sex", "age", "population"])
    return numerators, population


def build(numerators: pd.DataFrame, population: pd.DataFrame, **kwargs):
    return build_panel(
        numerators, population, populations=POPS, outcomes=[OUTCOME], outcome_only=True, **kwargs
    )


def cells(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column].isin(value if isinstance(value, list) else [value])
    return mask


def fetch_report(*rows: tuple[str, str, int, str, str]) -> pd.DataFrame:
    """fetch's report of ``OUTCOME``: rows of (kind, kommun_kod, year, sex of the group, detail)."""
    report = pd.DataFrame(rows, columns=["kind", "kommun_kod", "year", "sex", "detail"])
    report.insert(0, "outcome", OUTCOME)
    return report


def missing_cells(error: pytest.ExceptionInfo) -> pd.DataFrame:
    found = [p for p in error.value.problems if p.check == "missing_cells"]
    assert len(found) == 1, f"no single missing_cells problem in {error.value.checks}"
    return found[0].rows


def records(rows: pd.DataFrame) -> set[tuple]:
    return set(
        rows[["kommun_kod", "year", "population", "outcome", "cause"]].itertuples(
            index=False, name=None
        )
    )


def not_built(built) -> pd.DataFrame:
    ledger = built.report.to_frame()
    return ledger[ledger["action"] == "not built"]


def test_suppressed_cell_in_the_panel_gap_is_named():
    numerators, population = raw_inputs()
    gone = cells(numerators, kommun_kod="2584", year=2006, sex="M")
    suppressed = pd.DataFrame(
        {"kommun_kod": ["2584"], "year": [2006], "outcome": [OUTCOME], "sex": ["M"]}
    )
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators[~gone], population, suppressed=suppressed)
    assert "gap" in error.value.checks  # the old check still fires, with the reason beside it
    assert records(missing_cells(error)) == {("2584", 2006, "man", OUTCOME, SUPPRESSED)}
    message = str(error.value)
    for text in ("2584", "Kiruna", "2006", "man", OUTCOME, SUPPRESSED):
        assert text in message
    # the report names the cell too (validate=False keeps the gapped panel)
    built = build(numerators[~gone], population, suppressed=suppressed, validate=False)
    lines = not_built(built)
    assert lines[["kommun_kod", "year", "outcome", "detail"]].values.tolist() == [
        ["2584", 2006, OUTCOME, "population man"]
    ]
    assert lines["reason"].iloc[0].endswith("; " + SUPPRESSED)
    women = built.panel[(built.panel["kommun_kod"] == "2584") & (built.panel["year"] == 2006)]
    assert women["population"].tolist() == ["kvinnor"]


def test_same_cell_not_listed_is_absent_from_the_source():
    numerators, population = raw_inputs()
    gone = cells(numerators, kommun_kod="2584", year=2006, sex="M")
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators[~gone], population)
    assert records(missing_cells(error)) == {("2584", 2006, "man", OUTCOME, ABSENT)}
    # a fetch report row of another kind (not suppressed/missing) is not a suppression
    report = fetch_report(
        ("assumption", "2584", 2006, "M", ""),
        ("suppressed", "0114", 2006, "M", "age 20: '..' (suppressed)"),
    )
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators[~gone], population, suppressed=report)
    assert records(missing_cells(error)) == {("2584", 2006, "man", OUTCOME, ABSENT)}


def test_suppressed_kommun_year_in_a_source_gap_names_every_series():
    numerators, population = raw_inputs()
    gone = cells(numerators, kommun_kod="0114", year=2005)
    # fetch's report format: kind column, sex of the suppressed group ("T": both sexes)
    report = fetch_report(
        ("suppressed", "0114", 2005, "K", "age 19: '..' (suppressed)"),
        ("missing", "0114", 2005, "T", "band 25-54: no value"),
    )
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators[~gone], population, suppressed=report)
    assert [p.check for p in error.value.problems] == ["gap", "missing_cells"]
    assert records(missing_cells(error)) == {
        ("0114", 2005, "kvinnor", OUTCOME, SUPPRESSED),
        ("0114", 2005, "man", OUTCOME, SUPPRESSED),
    }


def test_zero_population_in_the_panel_gap():
    numerators, population = raw_inputs()
    men = cells(population, kommun_kod="0331", year=2007, sex="M")
    population.loc[men, "population"] = 0
    numerators.loc[cells(numerators, kommun_kod="0331", year=2007, sex="M"), "count"] = 0
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators, population)
    assert records(missing_cells(error)) == {("0331", 2007, "man", OUTCOME, ZERO)}
    assert "zero denominator" in str(error.value)
    built = build(numerators, population, validate=False)
    assert not_built(built)["reason"].tolist() == ["zero denominator: share undefined; " + ZERO]


def test_zero_population_in_a_source_gap():
    numerators, population = raw_inputs()
    gone = cells(numerators, kommun_kod="0331", year=2006)
    population.loc[cells(population, kommun_kod="0331", year=2006), "population"] = 0
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators[~gone], population)
    rows = missing_cells(error)
    assert records(rows) == {
        ("0331", 2006, "kvinnor", OUTCOME, ZERO),
        ("0331", 2006, "man", OUTCOME, ZERO),
    }
    assert set(rows["detail"]) == {"population 0 at ages 19-64"}


def test_absent_population_rows_in_a_source_gap():
    numerators, population = raw_inputs()
    gone = cells(population, kommun_kod="2584", year=2005)
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators, population[~gone])
    rows = missing_cells(error)
    assert records(rows) == {
        ("2584", 2005, "kvinnor", OUTCOME, ABSENT),
        ("2584", 2005, "man", OUTCOME, ABSENT),
    }
    assert set(rows["detail"]) == {"no population rows for the kommun-year"}
    # the population gap problem keeps its own rows
    gap = [p for p in error.value.problems if p.check == "gap"][0]
    assert gap.rows["missing_years"].tolist() == ["2005"]


def test_only_the_offending_cells_are_listed():
    numerators, population = raw_inputs()
    gone = cells(numerators, kommun_kod="2584", year=2006, sex="M") | cells(
        numerators, kommun_kod="0114", year=2007, sex="K", age_band="25-54"
    )
    suppressed = pd.DataFrame({"kommun_kod": ["2584"], "year": [2006], "outcome": [OUTCOME]})
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators[~gone], population, suppressed=suppressed)
    assert records(missing_cells(error)) == {
        ("2584", 2006, "man", OUTCOME, SUPPRESSED),  # sex not given: both sexes suppressed
        ("0114", 2007, "kvinnor", OUTCOME, ABSENT),  # one band of women missing, not listed
    }


def test_suppressed_cell_at_the_edge_is_reported_without_a_gap():
    numerators, population = raw_inputs()
    gone = cells(numerators, kommun_kod="2584", year=2008)  # last year: no gap
    suppressed = pd.DataFrame({"kommun_kod": ["2584"], "year": [2008], "outcome": [OUTCOME]})
    built = build(numerators[~gone], population, suppressed=suppressed)
    lines = not_built(built)
    assert sorted(lines["detail"]) == ["population kvinnor", "population man"]
    assert set(lines["kommun_kod"]) == {"2584"} and set(lines["year"]) == {2008}
    assert all(reason.endswith("; " + SUPPRESSED) for reason in lines["reason"])
    assert built.report.reconciles
    # the same input without the list has no line: nothing says the cell should exist
    assert not_built(build(numerators[~gone], population)).empty


def test_historical_code_in_the_suppressed_list_is_harmonised():
    numerators, population = raw_inputs()
    gone = cells(numerators, kommun_kod="0331", year=2005, sex="K")
    suppressed = pd.DataFrame(
        {"kommun_kod": ["1917"], "year": [2005], "outcome": [OUTCOME], "sex": ["K"]}
    )  # Heby's code until 2006
    with pytest.raises(PanelValidationError, match="gap") as error:
        build(numerators[~gone], population, suppressed=suppressed)
    assert records(missing_cells(error)) == {("0331", 2005, "kvinnor", OUTCOME, SUPPRESSED)}


def test_listing_cells_that_exist_changes_nothing():
    numerators, population = raw_inputs()
    suppressed = pd.DataFrame({"kommun_kod": ["0114"], "year": [2006], "outcome": [OUTCOME]})
    plain = build(numerators, population)
    listed = build(numerators, population, suppressed=suppressed)
    pd.testing.assert_frame_equal(plain.panel, listed.panel)
    pd.testing.assert_frame_equal(plain.report.to_frame(), listed.report.to_frame())


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (pd.DataFrame({"kommun_kod": ["0114"], "year": [2006]}), r"missing column.*outcome"),
        (
            pd.DataFrame({"kommun_kod": ["9999"], "year": [2006], "outcome": [OUTCOME]}),
            "9999",
        ),
        (
            pd.DataFrame({"kommun_kod": ["0114"], "year": ["x"], "outcome": [OUTCOME]}),
            "not whole years",
        ),
        (
            pd.DataFrame(
                {"kommun_kod": ["0114"], "year": [2006], "outcome": [OUTCOME], "sex": ["Q"]}
            ),
            "sex values",
        ),
    ],
)
def test_bad_suppressed_table_is_refused(table, match):
    numerators, population = raw_inputs()
    with pytest.raises(PanelValidationError, match=match):
        build(numerators, population, suppressed=table)


def test_suppressed_must_be_a_frame():
    numerators, population = raw_inputs()
    with pytest.raises(TypeError, match="suppressed= must be a DataFrame"):
        build(numerators, population, suppressed=[("0114", 2006, OUTCOME)])
