"""Every bad-input case raises PanelValidationError naming the offending rows."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from finsam_eval.panel import (
    AGE_BANDS,
    OUTCOMES,
    PanelValidationError,
    build_panel,
    validate_cohorts,
    validate_numerators,
    validate_panel,
    validate_population,
)

KOMMUNER = ("0114", "0331", "2584")
YEARS = range(2004, 2009)


def raw_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small valid inputs: 3 kommuner (Heby under 1917 up to 2006), 2004–2008."""
    pop, num = [], []
    for i, (kommun, year, sex) in enumerate(itertools.product(KOMMUNER, YEARS, "KM")):
        code = "1917" if kommun == "0331" and year <= 2006 else kommun
        pop += [(code, year, sex, age, 50 + i) for age in range(19, 65)]
        num += [
            (code, year, sex, band, outcome, 3 + i % 5)
            for band, outcome in itertools.product(AGE_BANDS, OUTCOMES)
        ]
    numerators = pd.DataFrame(
        num, columns=["kommun_kod", "year", "sex", "age_band", "outcome", "count"]
    )
    population = pd.DataFrame(pop, columns=["kommun_kod", "year", "sex", "age", "population"])
    return numerators, population


@pytest.fixture
def inputs():
    return raw_inputs()


def problem(error: pytest.ExceptionInfo, check: str):
    matches = [p for p in error.value.problems if p.check == check]
    assert matches, f"no {check!r} problem in {error.value.checks}"
    return matches[0]


def test_valid_inputs_pass(inputs):
    numerators, population = inputs
    validate_numerators(numerators)
    validate_population(population)
    validate_panel(build_panel(numerators, population, outcome_only=True).panel)


def test_error_is_a_value_error(inputs):
    numerators, population = inputs
    numerators.loc[3, "count"] = -1
    with pytest.raises(ValueError):
        build_panel(numerators, population, outcome_only=True)


def test_missing_columns(inputs):
    numerators, population = inputs
    with pytest.raises(PanelValidationError, match=r"missing required column\(s\) \['count'\]"):
        build_panel(numerators.drop(columns="count"), population, outcome_only=True)
    with pytest.raises(PanelValidationError, match=r"\['age', 'population'\]"):
        validate_population(population.drop(columns=["age", "population"]))
    with pytest.raises(PanelValidationError, match="missing required") as info:
        validate_panel(pd.DataFrame({"kommun_kod": ["0114"]}))
    assert "cluster_lan" in str(info.value)


def test_duplicate_numerator_keys(inputs):
    numerators, population = inputs
    duplicated = pd.concat([numerators, numerators.iloc[[7]]], ignore_index=True)
    with pytest.raises(PanelValidationError, match="duplicate keys") as info:
        build_panel(duplicated, population, outcome_only=True)
    rows = problem(info, "duplicate_keys").rows
    assert rows["row"].tolist() == [7, len(numerators)]
    text = str(info.value)
    assert "0114" in text and "2004" in text and numerators.loc[7, "outcome"] in text


def test_duplicate_population_keys(inputs):
    _, population = inputs
    population.loc[5, "age"] = population.loc[4, "age"]  # two rows for age 23
    with pytest.raises(PanelValidationError, match="duplicate keys") as info:
        validate_population(population)
    rows = problem(info, "duplicate_keys").rows
    assert rows["row"].tolist() == [4, 5] and set(rows["age"]) == {23}


def test_duplicates_after_harmonisation(inputs):
    """Heby given under both its old (1917) and new (0331) code for 2005."""
    numerators, population = inputs
    heby = numerators[(numerators["kommun_kod"] == "1917") & (numerators["year"] == 2005)]
    doubled = pd.concat([numerators, heby.assign(kommun_kod="0331")], ignore_index=True)
    with pytest.raises(PanelValidationError, match="duplicate keys") as info:
        validate_numerators(doubled)
    rows = problem(info, "duplicate_keys").rows
    assert set(rows["raw_code"]) == {"1917", "0331"} and set(rows["kommun_kod"]) == {"0331"}
    assert "showing 10 of 72" in str(info.value)


def test_unknown_kommun_code_suggests_nearest(inputs):
    numerators, population = inputs
    numerators.loc[numerators.index[:4], "kommun_kod"] = "0118"
    with pytest.raises(PanelValidationError, match="unknown kommun code") as info:
        build_panel(numerators, population, outcome_only=True)
    text = str(info.value)
    assert "0118" in text and "2004" in text
    rows = problem(info, "unknown_code").rows
    assert rows["n_rows"].tolist() == [4]
    assert "0117 (Österåker)" in rows["suggestion"].iloc[0]  # a nearby code with its name


def test_historical_code_out_of_its_window(inputs):
    """1917 after 2006 is not Heby any more: the registry's explanation is shown."""
    _, population = inputs
    population.loc[population["kommun_kod"] == "0331", "kommun_kod"] = "1917"
    with pytest.raises(PanelValidationError, match="unknown kommun code") as info:
        validate_population(population)
    rows = problem(info, "unknown_code").rows
    assert rows["year"].tolist() == [2007, 2008]
    assert "historical" in rows["suggestion"].iloc[0]


def test_malformed_codes(inputs):
    numerators, _ = inputs
    numerators.loc[2, "kommun_kod"] = "Stockholm"
    with pytest.raises(PanelValidationError, match="not 4-digit kommun codes") as info:
        validate_numerators(numerators)
    assert problem(info, "bad_code").rows["row"].tolist() == [2]


def test_gap_in_years(inputs):
    numerators, population = inputs
    population = population[~((population["kommun_kod"] == "2584") & (population["year"] == 2006))]
    with pytest.raises(PanelValidationError, match="gap") as info:
        build_panel(numerators, population, outcome_only=True)
    rows = problem(info, "gap").rows
    assert rows.to_dict("records") == [
        {"kommun_kod": "2584", "first_year": 2004, "last_year": 2008, "missing_years": "2006"}
    ]
    numerators = numerators[
        ~(
            (numerators["kommun_kod"] == "0114")
            & numerators["year"].isin([2005, 2006])
            & (numerators["outcome"] == "sa")
        )
    ]
    with pytest.raises(PanelValidationError, match="gap") as info:
        validate_numerators(numerators)
    rows = problem(info, "gap").rows
    assert rows[["kommun_kod", "outcome", "missing_years"]].values.tolist() == [
        ["0114", "sa", "2005, 2006"]
    ]


def test_gap_in_panel(inputs):
    numerators, population = inputs
    panel = build_panel(numerators, population, outcome_only=True).panel
    holed = panel.drop(panel.index[(panel["kommun_kod"] == "0114") & (panel["year"] == 2006)])
    with pytest.raises(PanelValidationError, match="gap") as info:
        validate_panel(holed.reset_index(drop=True))
    assert "showing 10 of 25" in str(info.value)


def test_negative_counts(inputs):
    numerators, population = inputs
    numerators.loc[[3, 10], "count"] = [-1, -5]
    with pytest.raises(PanelValidationError, match="negative 'count'") as info:
        build_panel(numerators, population, outcome_only=True)
    rows = problem(info, "negative").rows
    assert rows["row"].tolist() == [3, 10] and rows["count"].tolist() == [-1, -5]
    population.loc[0, "population"] = -3
    with pytest.raises(PanelValidationError, match="negative 'population'"):
        validate_population(population)


@pytest.mark.parametrize("bad", ["..", "x", "", None])
def test_non_numeric_counts(inputs, bad):
    numerators, population = inputs
    numerators["count"] = numerators["count"].astype(object)
    numerators.loc[6, "count"] = bad
    with pytest.raises(PanelValidationError, match="not numbers") as info:
        build_panel(numerators, population, outcome_only=True)
    rows = problem(info, "non_numeric").rows
    assert rows["row"].tolist() == [6]
    if bad:
        assert repr(bad) in str(info.value) or f" {bad}" in str(info.value)


def test_non_numeric_population_as_strings(inputs):
    _, population = inputs
    population = population.astype({"population": str})  # e.g. read from CSV without dtypes
    population.loc[[1, 2], "population"] = ".."
    with pytest.raises(PanelValidationError, match="'population' values") as info:
        validate_population(population)
    assert problem(info, "non_numeric").rows["row"].tolist() == [1, 2]


def test_numerator_above_denominator(inputs):
    numerators, population = inputs
    big = (numerators["kommun_kod"] == "2584") & (numerators["year"] == 2007)
    numerators.loc[big, "count"] = 1_000_000
    with pytest.raises(PanelValidationError, match="numerator larger than denominator") as info:
        build_panel(numerators, population, outcome_only=True)
    rows = problem(info, "numerator_above_denominator").rows
    assert set(rows["kommun_kod"]) == {"2584"} and set(rows["year"]) == {2007}
    assert len(rows) == 25
    assert "showing 10 of 25" in str(info.value)


def test_share_outside_range(inputs):
    numerators, population = inputs
    panel = build_panel(numerators, population, outcome_only=True).panel
    panel.loc[[0, 1], "share"] = [-0.5, 100.5]
    with pytest.raises(PanelValidationError, match=r"outside \[0, 100\]") as info:
        validate_panel(panel)
    rows = problem(info, "share_out_of_range").rows
    assert rows["row"].tolist() == [0, 1] and rows["share"].tolist() == [-0.5, 100.5]


def test_share_inconsistent(inputs):
    numerators, population = inputs
    panel = build_panel(numerators, population, outcome_only=True).panel
    panel.loc[4, "share"] = panel.loc[4, "share"] + 1
    with pytest.raises(PanelValidationError, match="differs from 100") as info:
        validate_panel(panel)
    assert problem(info, "share_inconsistent").rows["row"].tolist() == [4]


def test_non_integer_years(inputs):
    numerators, population = inputs
    numerators["year"] = numerators["year"].astype(float)
    numerators.loc[8, "year"] = 2005.5
    with pytest.raises(PanelValidationError, match="not whole years") as info:
        build_panel(numerators, population, outcome_only=True)
    assert problem(info, "non_integer_year").rows["row"].tolist() == [8]
    population = population.astype({"year": object})
    population.loc[0, "year"] = "2004a"
    with pytest.raises(PanelValidationError, match="year values that are missing or not numbers"):
        validate_population(population)
    panel = build_panel(*raw_inputs(), outcome_only=True).panel
    panel["year"] = panel["year"].astype(float)
    panel.loc[0, "year"] = 2004.25
    with pytest.raises(PanelValidationError, match="not whole years"):
        validate_panel(panel)


def test_bad_sex_age_and_band(inputs):
    numerators, population = inputs
    numerators.loc[0, "sex"] = "X"
    numerators.loc[1, "age_band"] = "young"
    with pytest.raises(PanelValidationError) as info:
        validate_numerators(numerators)
    assert set(info.value.checks) == {"bad_sex", "bad_age_band"}
    assert "'K'" in str(info.value) and "young" in str(info.value)
    population["age"] = population["age"].astype(float)
    population.loc[2, "age"] = 30.5
    with pytest.raises(PanelValidationError, match="age values") as info:
        validate_population(population)
    assert problem(info, "bad_age").rows["row"].tolist() == [2]


def test_many_offenders_are_truncated_with_total(inputs):
    numerators, population = inputs
    numerators.loc[numerators.index[:37], "count"] = -1
    with pytest.raises(PanelValidationError) as info:
        validate_numerators(numerators)
    text = str(info.value)
    assert "showing 10 of 37" in text
    assert len(problem(info, "negative").rows) == 37


def test_all_value_problems_reported_together(inputs):
    numerators, _ = inputs
    numerators["count"] = numerators["count"].astype(object)
    numerators.loc[0, "count"] = "x"
    numerators.loc[1, "count"] = -2
    numerators["year"] = numerators["year"].astype(float)
    numerators.loc[2, "year"] = 2004.5
    with pytest.raises(PanelValidationError) as info:
        validate_numerators(numerators)
    assert set(info.value.checks) == {"non_numeric", "negative", "non_integer_year"}


def test_cohort_table_checks():
    with pytest.raises(PanelValidationError, match="more than once") as info:
        validate_cohorts(pd.DataFrame({"kommun_kod": ["0114", "114"], "cohort": [2005, 2006]}))
    assert problem(info, "duplicate_keys").rows["row"].tolist() == [0, 1]
    with pytest.raises(PanelValidationError, match="whole, non-negative") as info:
        validate_cohorts(pd.DataFrame({"kommun_kod": ["0114", "0115"], "cohort": [2005.5, -1]}))
    assert problem(info, "bad_cohort").rows["row"].tolist() == [0, 1]
    with pytest.raises(PanelValidationError, match="unknown kommun codes") as info:
        validate_cohorts(pd.DataFrame({"kommun_kod": ["0999"], "cohort": [2005]}))
    validate_cohorts(pd.DataFrame({"kommun_kod": ["0114", "1917"], "cohort": [2005, 0]}))


def test_cohorts_with_bad_values_stop_the_build(inputs):
    numerators, population = inputs
    cohorts = pd.DataFrame({"kommun_kod": ["0114"], "cohort": ["soon"]})
    with pytest.raises(PanelValidationError, match="cohort values"):
        build_panel(numerators, population, cohorts=cohorts)


def test_panel_constant_within_kommun(inputs):
    numerators, population = inputs
    panel = build_panel(numerators, population, outcome_only=True).panel
    panel.loc[0, "cohort"] = 2006
    with pytest.raises(PanelValidationError, match="varying within a kommun") as info:
        validate_panel(panel)
    assert problem(info, "varies_within_kommun").rows.to_dict("records") == [
        {"kommun_kod": "0114", "varying": "cohort"}
    ]


def test_panel_duplicates_and_unknown_codes(inputs):
    numerators, population = inputs
    panel = build_panel(numerators, population, outcome_only=True).panel
    doubled = pd.concat([panel, panel.iloc[[3]]], ignore_index=True)
    with pytest.raises(PanelValidationError, match="duplicate") as info:
        validate_panel(doubled)
    assert problem(info, "duplicate_keys").rows["row"].tolist() == [3, len(panel)]
    panel.loc[panel["kommun_kod"] == "2584", "kommun_kod"] = "2585"
    with pytest.raises(PanelValidationError, match="unknown kommun codes") as info:
        validate_panel(panel)
    assert "2585" in str(info.value)


def test_panel_negative_and_non_numeric(inputs):
    numerators, population = inputs
    panel = build_panel(numerators, population, outcome_only=True).panel
    bad = panel.astype({"numerator": object})
    bad.loc[2, "numerator"] = ".."
    with pytest.raises(PanelValidationError, match="'numerator' values that are missing"):
        validate_panel(bad)
    panel.loc[5, ["numerator", "share"]] = [-1.0, -1.0 * 100 / panel.loc[5, "denominator"]]
    with pytest.raises(PanelValidationError, match="negative 'numerator'") as info:
        validate_panel(panel)
    assert problem(info, "negative").rows["row"].tolist() == [5]
    assert np.isfinite(panel["share"]).all()
