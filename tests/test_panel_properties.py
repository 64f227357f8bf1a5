"""Property-based tests of the panel builder's invariants (hypothesis, small examples)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finsam_eval.panel import AGE_BANDS, OUTCOMES, POPULATIONS, build_panel, validate_panel

POOL = ("0114", "0331", "1480", "2584", "0180")
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def raw_tables(draw):
    """Small raw inputs with the awkward features switched on at random.

    Heby under 1917 up to 2006, Göteborg split into stadsdelar, ages outside every population,
    an outcome outside the ISF set, fractional counts, missing cells, a year window, cohorts.
    """
    kommuner = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True))
    first = draw(st.integers(2004, 2007))
    years = list(range(first, first + draw(st.integers(1, 3))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    old_heby = draw(st.booleans())
    districts = draw(st.sampled_from([0, 0, 2, 3]))
    fractional = draw(st.booleans())
    drop = draw(st.sampled_from([0.0, 0.0, 0.0, 0.1]))
    extra_ages = draw(st.booleans())
    extra_outcome = draw(st.booleans())

    def code(kommun: str, year: int) -> str:
        return "1917" if old_heby and kommun == "0331" and year <= 2006 else kommun

    def split(kommun: str) -> list[str]:
        if kommun == "1480" and districts:
            return [f"1480-{d:02d}" for d in range(1, districts + 1)]
        return [kommun]

    ages = range(17, 67) if extra_ages else range(19, 65)
    pop, num = [], []
    outcomes = [*OUTCOMES, "foo"] if extra_outcome else list(OUTCOMES)
    for kommun, year, sex in itertools.product(kommuner, years, "KM"):
        for unit in split(code(kommun, year)):
            pop += [(unit, year, sex, age) for age in ages]
            num += [(unit, year, sex, b, o) for b in AGE_BANDS for o in outcomes]
    population = pd.DataFrame(pop, columns=["kommun_kod", "year", "sex", "age"])
    population["population"] = rng.integers(5, 60, len(population))
    numerators = pd.DataFrame(num, columns=["kommun_kod", "year", "sex", "age_band", "outcome"])
    counts = rng.integers(0, 6, len(numerators))
    numerators["count"] = counts * 0.37 if fractional else counts
    if drop:
        # missing cells, but every age band keeps a row per outcome and year: a band absent from
        # the (year-windowed) table is refused by the builder (a coverage error, tested in
        # test_panel_builder), not a hole in a series
        keep = rng.random(len(numerators)) >= drop
        keep |= ~numerators.duplicated(["age_band", "outcome", "year"]).to_numpy()
        numerators = numerators[keep]
        population = population[rng.random(len(population)) >= drop / 4]
    window = None
    if draw(st.booleans()) and len(years) > 1:
        window = range(years[0] + 1, years[-1] + 2)
    cohort_kommuner = draw(st.lists(st.sampled_from(POOL), max_size=3, unique=True))
    cohorts = pd.DataFrame(
        {
            "kommun_kod": cohort_kommuner,
            "cohort": [2005 + i for i in range(len(cohort_kommuner))],
            "forbund": [f"F{k}" for k in cohort_kommuner],
        }
    )
    return {
        "numerators": numerators.reset_index(drop=True),
        "population": population.reset_index(drop=True),
        "cohorts": cohorts,
        "years": window,
        "complete": not drop,
    }


def expected(raw: dict) -> pd.DataFrame:
    """Numerators and denominators summed straight from the raw tables (complete cells only)."""
    num = raw["numerators"].copy()
    pop = raw["population"].copy()
    for frame in (num, pop):
        frame["kommun_kod"] = frame["kommun_kod"].str[:4].replace("1917", "0331")
        if raw["years"] is not None:
            frame.loc[~frame["year"].isin(raw["years"]), "year"] = -1  # out of the window
    rows = []
    for name, spec in POPULATIONS.items():
        bands = [
            b for b, (lo, hi) in AGE_BANDS.items() if lo >= spec.age_min and hi <= spec.age_max
        ]
        p = pop[
            pop["sex"].isin(spec.sex)
            & pop["age"].between(spec.age_min, spec.age_max)
            & (pop["year"] >= 0)
        ]
        p = p.groupby(["kommun_kod", "year", "sex", "age"])["population"].sum().reset_index()
        den = p.groupby(["kommun_kod", "year"])["population"].agg(["sum", "size"])
        den = den[(den["size"] == len(spec.sex) * spec.n_ages) & (den["sum"] > 0)]
        n = num[
            num["sex"].isin(spec.sex)
            & num["age_band"].isin(bands)
            & num["outcome"].isin(spec.outcomes)
            & (num["year"] >= 0)
        ]
        keys = ["kommun_kod", "year", "outcome"]
        n = n.groupby([*keys, "sex", "age_band"])["count"].sum().reset_index()
        cells = n.groupby(keys)["count"].agg(["sum", "size"]).reset_index()
        cells = cells[cells["size"] == len(spec.sex) * len(bands)]
        both = cells.merge(den.reset_index(), on=["kommun_kod", "year"], suffixes=("_num", "_den"))
        rows.append(
            pd.DataFrame(
                {
                    "population": name,
                    "outcome": both["outcome"],
                    "kommun_kod": both["kommun_kod"],
                    "year": both["year"],
                    "num": both["sum_num"].astype(float),
                    "den": both["sum_den"].astype(float),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def build(raw: dict, **overrides):
    kwargs = {
        "cohorts": raw["cohorts"],
        "years": raw["years"],
        "validate": raw["complete"],  # dropped cells can leave holes inside a series
    }
    kwargs.update(overrides)
    return build_panel(raw["numerators"], raw["population"], **kwargs)


KEYS = ["population", "outcome", "kommun_kod", "year"]


@pytest.mark.slow
@SETTINGS
@given(raw_tables())
def test_builder_invariants(raw):
    """One build per example (builds dominate the run time), every invariant checked on it."""
    built = build(raw)
    check_sums_match_the_raw_cells(raw, built.panel)
    check_share_weight_and_keys(raw, built.panel)
    check_reconciliation(raw, built.report)


def check_sums_match_the_raw_cells(raw: dict, panel: pd.DataFrame) -> None:
    """Numerator and denominator equal the input sums over the matching cells; one row per
    kommun-year-series whose cells are complete (no more, no fewer)."""
    want = expected(raw)
    merged = panel.merge(want, on=KEYS, how="outer", indicator=True, validate="1:1")
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"]
    np.testing.assert_allclose(merged["numerator"], merged["num"], rtol=1e-12)
    np.testing.assert_allclose(merged["denominator"], merged["den"], rtol=1e-12)


def check_share_weight_and_keys(raw: dict, panel: pd.DataFrame) -> None:
    np.testing.assert_allclose(
        panel["share"], 100 * panel["numerator"] / panel["denominator"], rtol=1e-12
    )
    assert (panel["weight"] == panel["denominator"]).all()
    assert not panel.duplicated(KEYS).any()
    assert panel.index.equals(pd.RangeIndex(len(panel)))
    assert ((panel["share"] >= 0) & (panel["share"] <= 100)).all()
    if raw["complete"]:
        validate_panel(panel)


def check_reconciliation(raw: dict, report) -> None:
    """Rows in = used + excluded and sum in = base cells + excluded, per table and outcome."""
    assert report.reconciles
    rec = report.reconciliation.set_index(["table", "outcome"])
    numerators, population = raw["numerators"], raw["population"]
    for table, frame, column in (
        ("numerators", numerators, "count"),
        ("population", population, "population"),
    ):
        line = rec.loc[(table, "(all)")]
        assert line["rows_in"] == len(frame)
        assert line["rows_used"] + line["rows_excluded"] == len(frame)
        assert np.isclose(line["amount_in"], frame[column].sum())
        assert np.isclose(line["amount_used"] + line["amount_excluded"], frame[column].sum())
    # excluded + used = input, per outcome, from the ledger itself
    ledger = report.to_frame()
    excluded = ledger[(ledger["table"] == "numerators") & (ledger["action"] == "excluded")]
    for outcome, rows in numerators.groupby("outcome"):
        line = rec.loc[("numerators", outcome)]
        ex = excluded[excluded["outcome"] == outcome]
        assert line["rows_used"] + ex["n_rows"].sum() == len(rows)
        assert np.isclose(line["amount_used"] + ex["amount"].sum(), rows["count"].sum())
    cohorts = rec.loc[("cohorts", "(all)")]
    assert cohorts["rows_used"] + cohorts["rows_excluded"] == len(raw["cohorts"])


@pytest.mark.slow
@SETTINGS
@given(raw_tables(), st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(raw, seed):
    rng = np.random.default_rng(seed)
    shuffled = dict(raw)
    for name in ("numerators", "population", "cohorts"):
        frame = raw[name]
        shuffled[name] = frame.iloc[rng.permutation(len(frame))]
    first, second = build(raw), build(shuffled)
    pd.testing.assert_frame_equal(first.panel, second.panel, check_exact=True)
    a = first.report.to_frame().drop(columns="detail")
    b = second.report.to_frame().drop(columns="detail")  # details name input row positions
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(
        first.report.reconciliation, second.report.reconciliation, check_exact=False
    )
