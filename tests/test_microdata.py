"""Person-year microdata → kommun panel (issue 15): counts against direct pandas counts, the
exact build_panel panel, validation with counted rejections, readers, transitions, truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_eval.estimators import estimate
from finsam_eval.microdata import (
    MICRODATA_COLUMNS,
    TRANSITION_OUTCOMES,
    MicrodataError,
    MicrodataValidationError,
    build_microdata_panel,
    transpile,
)
from finsam_eval.microdata.sql import cells_sql, transitions_sql
from finsam_eval.panel import build_panel, validate_panel
from finsam_eval.sources import outcome_catalogue
from finsam_eval.synthetic.microdata import generate_microdata, work_effect

KOMMUNER = ["0114", "0117", "0120", "0180", "0330", "0331", "0380", "0581", "1480", "2401", "2480"]

# The ISF populations as docs/architecture.md states them (typed from the table, not imported):
# sexes, ages, outcomes
POPS = {
    "alla": (("K", "M"), 19, 64, ["sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete", "studier"]),
    "kvinnor": (("K",), 19, 64, ["sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete", "studier"]),
    "man": (("M",), 19, 64, ["sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete", "studier"]),
    "unga": (("K", "M"), 19, 24, ["sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete", "studier", "uvas"]),
    "aldre": (("K", "M"), 55, 64, ["sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete"]),
}  # fmt: skip
ORIGIN = ["sjukpenning", "sa", "ekonomiskt_bistand", "arbetslos"]


@pytest.fixture(scope="module")
def world():
    return generate_microdata(persons=8000, seed=11, kommuner=KOMMUNER)


@pytest.fixture(scope="module")
def hive(world, tmp_path_factory):
    path = tmp_path_factory.mktemp("hive")
    frame = world.frame
    for year, part in frame.groupby("year"):
        folder = path / f"year={year}"
        folder.mkdir()
        part.drop(columns="year").to_parquet(folder / "part-0.parquet", index=False)
    return path


@pytest.fixture(scope="module")
def built(world, hive):
    return build_microdata_panel(hive, cohorts=world.cohorts)


def _harmonised(frame: pd.DataFrame) -> pd.DataFrame:
    # Heby was 1917 until 2006 (registry code history; documented in shared/DOMAIN.md)
    f = frame.copy()
    f.loc[(f["kommun_kod"] == "1917") & (f["year"] <= 2006), "kommun_kod"] = "0331"
    f["age"] = f["year"] - f["birth_year"]
    return f


def direct_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Numerators and denominators counted directly with pandas from the person-years."""
    f = _harmonised(frame)
    parts = []
    for pop, (sexes, lo, hi, outcomes) in POPS.items():
        members = f[f["sex"].isin(sexes) & f["age"].between(lo, hi)]
        grouped = members.groupby(["kommun_kod", "year"])
        den = grouped.size()
        for outcome in outcomes:
            parts.append(
                pd.DataFrame(
                    {"population": pop, "outcome": outcome, "numerator": grouped[outcome].sum(),
                     "denominator": den}
                ).reset_index()
            )  # fmt: skip
    # transitions: the same person in t-1 (kommun, sex, age of t-1) and t
    prev = f.assign(year=f["year"] + 1)
    prev = prev[prev["year"] <= f["year"].max()]
    pairs = prev.merge(f, on=["person_id", "year"], how="inner", suffixes=("_a", "_b"))
    origin_a = pairs[[o + "_a" for o in ORIGIN]].any(axis=1)
    origin_b = pairs[[o + "_b" for o in ORIGIN]].any(axis=1)
    definitions = {
        "stod_till_arbete": (origin_a, pairs["arbete_b"]),
        "stod_till_studier": (origin_a, pairs["studier_b"]),
        "inflode_sa": (~pairs["sa_a"], pairs["sa_b"]),
        "kvar_i_stod": (origin_a, origin_b),
    }
    for pop, (sexes, lo, hi, _) in POPS.items():
        member = pairs["sex_a"].isin(sexes) & pairs["age_a"].between(lo, hi)
        for name, (den_mask, num_mask) in definitions.items():
            if pop == "aldre" and name == "stod_till_studier":
                continue
            d = pairs[member & den_mask].assign(hit=num_mask[member & den_mask])
            g = d.groupby(["kommun_kod_a", "year"])
            parts.append(
                pd.DataFrame(
                    {"population": pop, "outcome": name, "numerator": g["hit"].sum(),
                     "denominator": g.size()}
                ).reset_index().rename(columns={"kommun_kod_a": "kommun_kod"})
            )  # fmt: skip
    out = pd.concat(parts, ignore_index=True)
    out[["numerator", "denominator"]] = out[["numerator", "denominator"]].astype(float)
    return out


def test_counts_equal_direct_counts(world, built):
    panel = built.panel
    direct = direct_counts(world.frame)
    keys = ["population", "outcome", "kommun_kod", "year"]
    merged = panel.merge(direct, on=keys, how="outer", suffixes=("", "_direct"), indicator=True)
    # every panel row is counted directly; direct rows absent from the panel are only transition
    # kommun-years left out because the series would have a gap (reported)
    assert (merged["_merge"] != "left_only").all()
    missing = merged[merged["_merge"] == "right_only"]
    left_out = built.report.transitions
    assert set(missing["outcome"]) <= set(TRANSITION_OUTCOMES)
    assert len(missing) == left_out["rows_left_out"].sum() + left_out["not_built"].sum() * 0
    both = merged[merged["_merge"] == "both"]
    np.testing.assert_array_equal(both["numerator"], both["numerator_direct"])
    np.testing.assert_array_equal(both["denominator"], both["denominator_direct"])
    assert set(panel["outcome"]) >= set(TRANSITION_OUTCOMES)


def test_isf_part_is_exactly_build_panel(world, built):
    f = _harmonised(world.frame)
    f = f[f["age"].between(19, 64)]
    grid = pd.MultiIndex.from_product(
        [sorted(f["kommun_kod"].unique()), sorted(f["year"].unique()), ["K", "M"], range(19, 65)],
        names=["kommun_kod", "year", "sex", "age"],
    )
    population = (
        (f.groupby(["kommun_kod", "year", "sex", "age"]).size().reindex(grid, fill_value=0))
        .rename("population")
        .reset_index()
    )
    f["age_band"] = pd.cut(f["age"], [18, 24, 54, 64], labels=["19-24", "25-54", "55-64"]).astype(
        str
    )
    flags = ["sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete", "studier", "uvas"]
    long = f.melt(["kommun_kod", "year", "sex", "age_band"], flags, "outcome", "flag")
    band_grid = pd.MultiIndex.from_product(
        [grid.levels[0], grid.levels[1], ["K", "M"], ["19-24", "25-54", "55-64"], flags],
        names=["kommun_kod", "year", "sex", "age_band", "outcome"],
    )
    numerators = (
        long.groupby(["kommun_kod", "year", "sex", "age_band", "outcome"])["flag"].sum()
        .reindex(band_grid, fill_value=0).rename("count").reset_index()
    )  # fmt: skip
    numerators = numerators[(numerators["outcome"] != "uvas") | (numerators["age_band"] == "19-24")]
    expected = build_panel(numerators, population, world.cohorts).panel
    isf = built.panel[~built.panel["outcome"].isin(TRANSITION_OUTCOMES)].reset_index(drop=True)
    pd.testing.assert_frame_equal(isf, expected)


def test_panel_validates_and_estimates(built):
    validate_panel(built.panel)
    for name in ("stod_till_arbete", "sjukpenning"):
        data = built.panel[(built.panel["population"] == "alla") & (built.panel["outcome"] == name)]
        result = estimate(data, method="cs")
        assert np.isfinite(result.overall["estimate"])
        assert result.event_study["estimate"].notna().any()


def test_report_counts(world, built):
    report = built.report
    assert report.n_rows == world.person_years
    assert report.n_rejected == 0
    f = world.frame
    heby_old = int(((f["kommun_kod"] == "1917") & (f["year"] <= 2006)).sum())
    assert heby_old > 0 and int(report.altered["n_rows"].sum()) == heby_old
    age = f["year"] - f["birth_year"]
    assert report.outside_ages == int((~age.between(19, 64)).sum())
    assert "Rows read" in report.summary()


def _dirty(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """String copy of the frame with bad rows appended, and the count per reason."""
    text = frame.astype(str)
    for f in ("sjukpenning", "arbete"):
        text[f] = frame[f].map({True: "1", False: "0"})
    template = text.iloc[0].to_dict()
    bad, counts = [], {}

    def add(reason, **values):
        row = dict(template)
        row["person_id"] = str(10**9 + len(bad))
        row.update(values)
        bad.append(row)
        counts[reason] = counts.get(reason, 0) + 1

    add("missing_key", person_id="")
    add("missing_key", year="2005.5")
    add("bad_sex", sex="X")
    add("unknown_kommun", kommun_kod="9999")
    add("unknown_kommun", kommun_kod="1917", year="2010")  # Heby's old code after 2006
    add("impossible_age", year="2005", birth_year="2007")
    add("non_boolean_flag", sjukpenning="ja")
    add("non_boolean_flag", arbete="")
    add("duplicate_person_year", person_id="999999999", year="2005")
    add("duplicate_person_year", person_id="999999999", year="2005")
    return pd.concat([text, pd.DataFrame(bad)], ignore_index=True), counts


def test_validation_counts_rejections_and_drops_nothing_else(world, built, tmp_path):
    dirty, counts = _dirty(world.frame)
    path = tmp_path / "persons.csv"
    dirty.to_csv(path, index=False)
    result = build_microdata_panel(path, cohorts=world.cohorts)
    rejected = result.report.rejected.set_index("reason")["n_rows"]
    for reason, n in counts.items():
        assert rejected[reason] == n, reason
    assert result.report.n_rejected == sum(counts.values())
    assert set(result.report.examples["reason"]) == set(counts)
    pd.testing.assert_frame_equal(result.panel, built.panel)
    with pytest.raises(MicrodataValidationError, match="duplicate_person_year"):
        build_microdata_panel(path, cohorts=world.cohorts, strict=True)


def test_readers_single_parquet_file_and_csv_folder(world, built, tmp_path):
    single = tmp_path / "persons.parquet"
    world.frame.to_parquet(single, index=False)
    pd.testing.assert_frame_equal(
        build_microdata_panel(single, cohorts=world.cohorts).panel, built.panel
    )
    folder = tmp_path / "csv"
    for year, part in world.frame.groupby("year"):
        (folder / f"year={year}").mkdir(parents=True)
        part.drop(columns="year").to_csv(folder / f"year={year}" / "part.csv", index=False)
    pd.testing.assert_frame_equal(
        build_microdata_panel(folder, cohorts=world.cohorts).panel, built.panel
    )


def test_bad_input_errors(world, hive, tmp_path):
    with pytest.raises(ValueError, match="outcome_only=True"):
        build_microdata_panel(hive)
    path = tmp_path / "x.parquet"
    world.frame.drop(columns=["arbete"]).head(10).to_parquet(path)
    with pytest.raises(MicrodataError, match="arbete"):
        build_microdata_panel(path, cohorts=world.cohorts)
    with pytest.raises(MicrodataError, match="not found"):
        build_microdata_panel(tmp_path / "nothing", cohorts=world.cohorts)
    with pytest.raises(ValueError, match="unknown engine"):
        build_microdata_panel(hive, cohorts=world.cohorts, engine="polars")
    with pytest.raises(ValueError, match="Unknown outcome"):
        build_microdata_panel(hive, cohorts=world.cohorts, outcomes=["nope"])
    only = build_microdata_panel(
        hive, outcome_only=True, outcomes=["inflode_sa"], populations=["alla"]
    )
    assert set(only.panel["outcome"]) == {"inflode_sa"} and (only.panel["cohort"] == 0).all()


def test_transitions_in_catalogue_with_definitions():
    catalogue = outcome_catalogue()
    for name in TRANSITION_OUTCOMES:
        entry = catalogue.loc[name]
        assert entry["source"] == "microdata"
        assert "t-1" in entry["denominator"] or "t−1" in entry["denominator"]
        assert "move" in entry["notes"] and "leave" in entry["notes"]


def test_generator_reproduces_world_shares_and_designed_work_effect(world, built):
    from finsam_eval.synthetic import generate_synthetic

    kommun_world = generate_synthetic()
    expected = build_panel(
        kommun_world.numerators, kommun_world.population, world.cohorts, populations=["alla"]
    ).panel
    got = built.panel.query("population == 'alla'")
    merged = got.merge(expected, on=["outcome", "kommun_kod", "year"], suffixes=("", "_w"))
    # binomial sampling noise of the person sample: z-scores of the differences
    p = merged["share_w"] / 100
    z = (merged["share"] / 100 - p) / np.sqrt(p * (1 - p) / merged["denominator"])
    assert len(merged) > 1000
    assert abs(z.mean()) < 0.1 and 0.8 < z.std() < 1.25
    # the potential-outcome truth of moving to work equals the designed effect on average
    # (2 to 4 points; each ATT(g, e) is a sample effect, noisy with small origin pools)
    truth = world.truth.query("population == 'alla' and outcome == 'stod_till_arbete'")
    after = truth[truth["event_time"] >= 0]
    designed = 100 * work_effect(after["cohort"].to_numpy(), after["event_time"].to_numpy())
    assert abs((after["att"].to_numpy() - designed).mean()) < 0.5
    assert (truth.loc[truth["event_time"] < 0, "att"] == 0).all()


def test_sql_transpiles_to_spark_and_sql_server():
    for dialect in ("spark", "tsql"):
        for sql in (cells_sql(19, 64), transitions_sql(19, 64, 2018)):
            text = transpile(sql, dialect)
            assert "GROUP BY" in text.upper()
    assert len(MICRODATA_COLUMNS) == 13


@pytest.mark.slow
def test_two_million_person_years_equal_direct_counts(tmp_path):
    """Done-when check of issue 15 at full size: 2·10⁶ synthetic person-years on DuckDB."""
    world = generate_microdata(persons=145_000, seed=7, path=tmp_path / "persons")
    assert world.person_years >= 2_000_000
    built = build_microdata_panel(tmp_path / "persons", cohorts=world.cohorts, threads=2)
    frame = pd.read_parquet(tmp_path / "persons")
    frame["year"] = frame["year"].astype(np.int64)
    direct = direct_counts(frame)
    keys = ["population", "outcome", "kommun_kod", "year"]
    merged = built.panel.merge(direct, on=keys, how="left", suffixes=("", "_direct"))
    np.testing.assert_array_equal(merged["numerator"], merged["numerator_direct"])
    np.testing.assert_array_equal(merged["denominator"], merged["denominator_direct"])
    unused = len(direct) - len(merged)
    assert unused == built.report.transitions["rows_left_out"].sum()
    validate_panel(built.panel)
    data = built.panel[
        (built.panel["population"] == "alla") & (built.panel["outcome"] == "inflode_sa")
    ]
    assert np.isfinite(estimate(data, method="cs").overall["estimate"])
