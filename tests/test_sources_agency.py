"""Agency file loaders: Swedish headers, preambles, decimal commas, suppressed cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_eval import sources
from finsam_eval.sources.fetch import to_age_bands

FIX = Path(__file__).parent / "fixtures" / "sources"


@pytest.mark.parametrize(
    "text, value",
    [
        ("1 234", 1234.0),
        ("1\xa0234,5", 1234.5),
        ("12,5", 12.5),
        ("1.234,5", 1234.5),
        ("7", 7.0),
        ("..", None),
        ("X", None),
        ("", None),
        ("abc", None),
        (3, 3.0),
    ],
)
def test_parse_swedish_number(text, value):
    assert sources.parse_swedish_number(text) == value


def test_forsakringskassan_cp1252_preamble_and_suppression():
    af = sources.load_forsakringskassan(FIX / "fk_sjukpenning.csv", "sjukpenning")
    groups = af.groups
    assert set(groups["kommun_kod"]) == {"0114", "0180", "0331", "2480"}
    assert set(groups["sex"]) == {"K", "M"} and set(groups["year"]) == {2010, 2011}
    assert {(a, b) for a, b in zip(groups.age_from, groups.age_to, strict=True)} == {
        (16, 19),
        (20, 24),
        (25, 54),
        (55, 64),
    }
    stockholm = groups[
        (groups.kommun_kod == "0180")
        & (groups.year == 2010)
        & (groups.sex == "K")
        & (groups.age_from == 25)
    ]
    assert stockholm["count"].item() == 4800.0  # "4 800" with a thousands space
    heby = groups[(groups.kommun_kod == "0331") & (groups.sex == "K") & (groups.age_from == 16)]
    assert heby["count"].isna().all()  # "X" is missing, never 0
    assert sorted(af.suppressed["raw"]) == ["..", "X", "X"]
    assert set(af.suppressed["reason"]) == {"suppressed"}
    # the two Riket rows are aggregates (reported with their values); the source line is not
    assert (af.dropped["reason"] == "aggregate: riket").sum() == 2
    assert (af.dropped["reason"] == "not a kommun").sum() == 1
    assert set(af.aggregates["level"]) == {"riket"} and 123456.0 in set(af.aggregates["count"])
    assert af.content_hash.startswith("sha256:")


def test_arbetsformedlingen_wide_years_totals_and_decimal_commas():
    af = sources.load_arbetsformedlingen(FIX / "af_till_arbete.csv")
    g = af.groups
    assert set(g["sex"]) == {"T"} and set(g["year"]) == {2010, 2011}
    value = g[(g.kommun_kod == "0114") & (g.year == 2011) & (g.age_from == 19)]["count"]
    assert value.item() == 130.5
    assert len(af.suppressed) == 3 and set(af.suppressed["raw"]) == {"*"}


def test_missing_header_and_year_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a;b\n1;2\n", encoding="utf-8")
    with pytest.raises(sources.AgencyFileError, match="no header row with a kommun column"):
        sources.load_agency_file(bad, "x")
    noyear = tmp_path / "noyear.csv"
    noyear.write_text("Kommun;Antal\nStockholm;5\n", encoding="utf-8")
    with pytest.raises(sources.AgencyFileError, match="pass year="):
        sources.load_agency_file(noyear, "x")
    one = sources.load_agency_file(noyear, "x", year=2012, sex="K", ages=(19, 24))
    assert one.groups.iloc[0][["kommun_kod", "year", "sex", "age_from", "count"]].tolist() == [
        "0180",
        2012,
        "K",
        19,
        5.0,
    ]
    with pytest.raises(sources.AgencyFileError, match="not found"):
        sources.load_agency_file(tmp_path / "nope.csv", "x")


def test_xlsx_needs_openpyxl_or_reads(tmp_path):
    path = tmp_path / "file.xlsx"
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        path.write_bytes(b"PK\x03\x04")
        with pytest.raises(sources.AgencyFileError, match="openpyxl"):
            sources.load_agency_file(path, "x")
        return
    pd.DataFrame(
        {"År": [2010], "Kommun": ["Umeå"], "Kön": ["Män"], "Ålder": ["20-24"], "Antal": ["1 200"]}
    ).to_excel(path, index=False)
    assert sources.load_agency_file(path, "x").groups["count"].item() == 1200.0


def population_frame(codes, years, ages):
    rows = [(c, y, s, a, 100.0 + a) for c in codes for y in years for s in "KM" for a in ages]
    return pd.DataFrame(rows, columns=["kommun_kod", "year", "sex", "age", "population"])


def test_to_age_bands_apportions_by_population_and_keeps_missing():
    pop = population_frame(["0114"], [2010], range(16, 65))
    groups = pd.DataFrame(
        {
            "kommun_kod": ["0114"] * 4,
            "year": [2010] * 4,
            "sex": ["K", "K", "K", "T"],
            "age_from": [16, 20, 25, 55],
            "age_to": [19, 24, 54, 64],
            "count": [40.0, 60.0, np.nan, 100.0],
        }
    )
    out, issues = to_age_bands(groups, pop, "o")
    k1924 = out[(out.sex == "K") & (out.age_band == "19-24")]["count"].item()
    assert k1924 == pytest.approx(40 * 119 / (116 + 117 + 118 + 119) + 60)
    assert np.isnan(out[(out.sex == "K") & (out.age_band == "25-54")]["count"].item())
    m5564 = out[(out.sex == "M") & (out.age_band == "55-64")]["count"].item()
    assert m5564 == pytest.approx(50.0)  # total split by (equal) population of the sexes
    assert any(i["kind"] == "assumption" and "both-sexes" in i["detail"] for i in issues)
    # M has only the 55-64 total: its 19-24 and 25-54 bands are absent, not zero
    assert set(out[out.sex == "M"]["age_band"]) == {"55-64"}


def test_partial_band_is_left_out_and_reported():
    pop = population_frame(["0114"], [2010], range(16, 65))
    groups = pd.DataFrame(
        {
            "kommun_kod": ["0114"],
            "year": [2010],
            "sex": ["K"],
            "age_from": [20],
            "age_to": [24],
            "count": [10.0],
        }
    )
    out, issues = to_age_bands(groups, pop, "o")
    assert out.empty
    assert issues[0]["kind"] == "partial_band" and "5 ages" in issues[0]["detail"]


def test_total_label_kvinnor_och_man_is_the_total_and_lan_rows_are_aggregates():
    af = sources.load_forsakringskassan(FIX / "fk_sjukpenning_totals_lan.csv", "sjukpenning")
    g = af.groups.set_index(["kommun_kod", "sex"])["count"]
    assert g[("2080", "T")] == 1300.0 and g[("2080", "K")] == 800.0 and g[("2085", "T")] == 640.0
    assert np.isnan(g[("2085", "K")])  # ".." is suppressed, not zero
    assert "unknown sex" not in set(af.dropped["reason"])
    reasons = af.dropped["reason"].value_counts().to_dict()
    assert reasons == {"aggregate: län": 2, "aggregate: riket": 1}
    lan = af.aggregates[af.aggregates.level == "län"]
    assert list(lan["region"]) == ["20 Dalarnas län"] * 2 and list(lan["count"]) == [7100, 4300]
    assert af.suppressed[["kommun_kod", "sex", "raw"]].values.tolist() == [["2085", "K", ".."]]


def test_forsakringskassan_open_data_json_with_rojd():
    af = sources.load_forsakringskassan(FIX / "fk_sa_open_data.json", "sa")
    g = af.groups
    assert set(g["kommun_kod"]) == {"2080", "2085"} and set(g["year"]) == {2012}
    falun_k = g[(g.kommun_kod == "2080") & (g.sex == "K") & (g.age_from == 30)]
    assert falun_k["count"].item() == 640.0 and falun_k["age_to"].item() == 64
    suppressed = af.suppressed
    assert suppressed[["kommun_kod", "sex", "age", "raw", "reason"]].values.tolist() == [
        ["2085", "K", "19-29", "rojd", "suppressed"]
    ]
    ludvika_k = g[(g.kommun_kod == "2085") & (g.sex == "K") & (g.age_from == 19)]
    assert ludvika_k["count"].isna().all()  # rojd is missing, never 0
    assert set(af.aggregates["level"]) == {"riket", "län"}
    assert af.aggregates.set_index("level").loc["län", "count"] == 7100.0


def test_forsakringskassan_json_refusals_are_one_line(tmp_path):
    monthly = json.loads((FIX / "fk_sa_open_data.json").read_text(encoding="utf-8"))
    monthly.append(dict(monthly[2], dimensions={**monthly[2]["dimensions"], "manad": "11"}))
    path = tmp_path / "monthly.json"
    path.write_text(json.dumps(monthly), encoding="utf-8")
    with pytest.raises(sources.AgencyFileError, match="month='12'") as info:
        sources.load_forsakringskassan(path, "sa")
    assert "\n" not in str(info.value)
    one = sources.load_forsakringskassan(path, "sa", month="12")
    assert len(one.groups) == 8
    with pytest.raises(sources.AgencyFileError, match=r"measure=.*\['andel', 'antal'\]"):
        sources.load_forsakringskassan(path, "sa", month="12", measure="belopp")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": 3, "kommuner": []}), encoding="utf-8")
    with pytest.raises(sources.AgencyFileError, match="JSON layout not recognised") as info:
        sources.load_agency_file(other, "x")
    assert "\n" not in str(info.value)


def test_socialstyrelsen_api_json_needs_and_uses_an_age_map():
    path = FIX / "sos_ekonomiskt_bistand_api.json"
    with pytest.raises(sources.AgencyFileError, match="age_map"):
        sources.load_socialstyrelsen(path)
    af = sources.load_socialstyrelsen(path, age_map={1: "18-24", 2: "25-64"})
    g = af.groups.set_index(["sex", "age_from"])["count"]
    assert g[("M", 18)] == 210.0 and g[("K", 18)] == 190.0 and g[("M", 25)] == 300.0
    assert np.isnan(g[("K", 25)])
    assert af.suppressed["raw"].tolist() == ["X"]
    assert af.aggregates["level"].tolist() == ["riket", "län"]


def test_forsakringskassan_json_label_columns_and_prefixed_age_dimension(tmp_path):
    records = json.loads((FIX / "fk_sa_open_data.json").read_text(encoding="utf-8"))
    for r in records:
        d = r["dimensions"]
        d["aldersgrupp_kod"] = d.pop("alder")  # another name for the age dimension
        d["lan_namn"] = "Dalarnas län" if d["lan_kod"] == "20" else "Riket"  # a label column
    path = tmp_path / "fk.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    af = sources.load_forsakringskassan(path, "sa")
    assert len(af.groups) == 8 and set(af.groups["age_from"]) == {19, 30}
