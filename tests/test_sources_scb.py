"""SCB PxWeb client: metadata, JSON-stat2 parsing, chunking above the cell limit, v1 and v2."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).parent / "fixtures" / "sources"
sys.path.insert(0, str(FIX))
from fake_api import FakeApi, Reply, fast_http, jsonstat2_for, pop_value, v1_data, v2_data  # noqa: E402

from finsam_eval.sources import MalformedResponseError, ScbClient, parse_jsonstat2  # noqa: E402
from finsam_eval.sources.scb import PopulationYearsError, plan_chunks  # noqa: E402

V1_PATH = "/v1/ssd/BE/BE0101/BE0101A/BefolkningNy"
V1_CKM = "/v1/ssd/BE/BE0101/BE0101A/BefolkningCKM"


def serve_v1(api: FakeApi) -> None:
    api.add_json_file(V1_PATH, "scb_v1_befolkningny_metadata.json")
    api.add("POST", V1_PATH, Reply(body=v1_data))
    api.add_json_file(V1_CKM, "scb_v1_befolkningckm_metadata.json")
    api.add("POST", V1_CKM, Reply(body=v1_data))


def serve_v2(api: FakeApi) -> None:
    api.add_json_file("/api/v2/tables/TAB638/metadata", "scb_v2_tab638_metadata.json")
    api.add("POST", "/api/v2/tables/TAB638/data", Reply(body=v2_data))
    api.add_json_file("/api/v2/tables/TAB5557/metadata", "scb_v2_tab5557_metadata.json")
    api.add("POST", "/api/v2/tables/TAB5557/data", Reply(body=v2_data))


def test_parse_recorded_jsonstat2():
    payload = json.loads((FIX / "scb_v1_population_recorded.json").read_text(encoding="utf-8"))
    frame = parse_jsonstat2(payload)
    assert list(frame.columns) == [
        "Region",
        "Alder",
        "Kon",
        "ContentsCode",
        "Tid",
        "value",
        "status",
    ]
    row = frame[(frame["Region"] == "0180") & (frame["Alder"] == "20") & (frame["Kon"] == "2")]
    assert row["value"].item() == 7050  # last dimension varies fastest
    assert frame.loc[0, "value"] == 251


def test_jsonstat2_sparse_values_status_and_errors():
    payload = jsonstat2_for({"A": ["a", "b"], "B": ["x", "y", "z"]}, lambda c: 1.0)
    payload["value"] = {"0": 5, "5": 7}
    payload["status"] = {"1": ".."}
    frame = parse_jsonstat2(payload)
    assert frame["value"].isna().sum() == 4 and frame.loc[1, "status"] == ".."
    payload["value"] = [1, 2, 3]
    with pytest.raises(MalformedResponseError, match="3 values for 6 cells"):
        parse_jsonstat2(payload)
    with pytest.raises(MalformedResponseError, match="'dimension'"):
        parse_jsonstat2({"id": ["A"], "size": [1], "value": [1]})


def test_plan_chunks_respects_limit_and_covers_everything():
    selection = {
        "Region": [f"{i:04d}" for i in range(290)],
        "Alder": [str(a) for a in range(49)],
        "Kon": ["1", "2"],
        "Tid": ["2010", "2011", "2012"],
    }
    chunks = plan_chunks(selection, 150_000, ("Region", "Tid"))
    assert all(math.prod(len(v) for v in c.values()) <= 150_000 for c in chunks)
    assert sum(math.prod(len(v) for v in c.values()) for c in chunks) == 290 * 49 * 2 * 3
    assert plan_chunks({"A": ["1"] * 3}, 10) == [{"A": ["1"] * 3}]
    many = plan_chunks({"Region": ["a", "b"], "Alder": [str(a) for a in range(10)]}, 4, ["Region"])
    assert all(len(c["Region"]) == 1 and len(c["Alder"]) <= 4 for c in many)


def test_metadata_v1():
    with FakeApi() as api:
        serve_v1(api)
        meta = ScbClient(api.url + "/v1/ssd", http=fast_http()).table_metadata(
            "BE/BE0101/BE0101A/BefolkningNy"
        )
    assert meta.variable("Region").values[:3] == ("00", "01", "0114")
    assert meta.variable("Tid").time and meta.variable("Civilstand").elimination
    with pytest.raises(KeyError, match="no variable 'Nope'"):
        meta.variable("Nope")


def test_population_chunked_v1_matches_unchunked(tmp_path):
    with FakeApi() as api:
        serve_v1(api)
        small = ScbClient(api.url + "/v1/ssd", http=fast_http(), max_cells=200)
        chunked, prov = small.population([2010, 2011], range(16, 65))
        posts = [c.json() for c in api.calls(V1_PATH) if c.method == "POST"]
        big = ScbClient(api.url + "/v1/ssd", cache_dir=tmp_path, http=fast_http())
        whole, _ = big.population([2010, 2011], range(16, 65))
    sizes = [math.prod(len(q["selection"]["values"]) for q in p["query"]) for p in posts]
    assert len(posts) > 1 and max(sizes) <= 200 and sum(sizes) == 4 * 49 * 2 * 2
    assert all(q["code"] != "Civilstand" for p in posts for q in p["query"])  # eliminated
    assert chunked.equals(whole)
    assert list(whole.columns) == ["kommun_kod", "year", "sex", "age", "population"]
    assert set(whole["kommun_kod"]) == {"0114", "0180", "0331", "2480"}  # no län or riket
    assert set(whole["sex"]) == {"K", "M"}
    row = whole[
        (whole.kommun_kod == "0180") & (whole.year == 2011) & (whole.sex == "K") & (whole.age == 20)
    ]
    assert row["population"].item() == 100 + 180 % 97 + 20 + 3 + 11
    assert prov.query["chunks"] == len(sizes) and prov.source == "scb"


def test_population_v2(tmp_path):
    with FakeApi() as api:
        serve_v2(api)
        client = ScbClient(api.url + "/api/v2", cache_dir=tmp_path, http=fast_http())
        assert client.api_version == 2
        frame, prov = client.population([2010], range(19, 25))
        assert api.calls("/api/v2/tables/TAB638/metadata")[0].query["lang"] == ["sv"]
        assert not api.calls("/api/v2/tables/TAB5557/metadata")  # 2010 needs no second table
    assert len(frame) == 4 * 6 * 2
    assert list(prov.query["tables"]) == ["TAB638"]
    assert prov.query["tables"]["TAB638"]["content_code"] == "BE0101N1"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_population_across_the_2024_2025_table_change(tmp_path, version):
    """2023-2025 is split: 2023-2024 from BefolkningNy/TAB638, 2025 from BefolkningCKM/TAB5557."""
    with FakeApi() as api:
        if version == "v1":
            serve_v1(api)
            base, old, new = api.url + "/v1/ssd", V1_PATH, V1_CKM
            old_name, new_name = "BE/BE0101/BE0101A/BefolkningNy", "BE/BE0101/BE0101A/BefolkningCKM"
        else:
            serve_v2(api)
            base = api.url + "/api/v2"
            old, new = "/api/v2/tables/TAB638/data", "/api/v2/tables/TAB5557/data"
            old_name, new_name = "TAB638", "TAB5557"
        frame, prov = ScbClient(base, cache_dir=tmp_path, http=fast_http()).population(
            [2025, 2023, 2024], [20, 64, 100]
        )
        old_posts = [c.json() for c in api.calls(old) if c.method == "POST"]
        new_posts = [c.json() for c in api.calls(new) if c.method == "POST"]

    def selection(post):
        if version == "v1":
            return {q["code"]: q["selection"]["values"] for q in post["query"]}
        return {s["variableCode"]: s["valueCodes"] for s in post["selection"]}

    old_sel, new_sel = selection(old_posts[0]), selection(new_posts[0])
    # each table gets only its own years, with its own codes read from its metadata
    assert old_sel["Tid"] == ["2023", "2024"] and new_sel["Tid"] == ["2025"]
    assert old_sel["ContentsCode"] == ["BE0101N1"] and new_sel["ContentsCode"] == ["000007ME"]
    assert old_sel["Alder"] == ["20", "64", "100+"] and new_sel["Alder"] == ["20", "64", "100+1"]
    if version == "v1":
        assert "Civilstand" not in old_sel  # eliminates in BefolkningNy: SCB sums it
    assert new_sel["Civilstand"] == ["SC"]  # no elimination in the CKM table: its total
    assert sorted(frame["year"].unique()) == [2023, 2024, 2025]
    assert set(frame["age"]) == {20, 64, 100} and set(frame["kommun_kod"]) >= {"0114", "0180"}
    row = frame[(frame.kommun_kod == "0180") & (frame.year == 2025) & (frame.sex == "K")]
    assert row.loc[row.age == 20, "population"].item() == 100 + 180 % 97 + 20 + 3 + 25
    assert prov.query["tables"][old_name]["years"] == [2023, 2024]
    assert prov.query["tables"][new_name]["years"] == [2025]
    assert prov.query["tables"][new_name]["fixed"] == {"Civilstand": "SC"}
    assert "Cell Key Method" in prov.extra["notes"][0] and prov.years == [2023, 2024, 2025]
    offline = ScbClient(cache_dir=tmp_path, offline=True).population([2024, 2025], [20, 64, 100])
    assert offline[1].from_cache and set(offline[0]["year"]) == {2024, 2025}


def test_year_in_no_table_names_the_tables_and_their_years():
    with FakeApi() as api:
        serve_v2(api)
        client = ScbClient(api.url + "/api/v2", http=fast_http())
        with pytest.raises(
            PopulationYearsError, match=r"\[2026\].*TAB638: 2000-2024.*TAB5557: 2025-2025"
        ):
            client.population([2024, 2025, 2026], [20])


def test_content_code_is_read_by_label_not_position():
    payload = json.loads((FIX / "scb_v1_befolkningckm_metadata.json").read_text(encoding="utf-8"))
    contents = payload["variables"][4]
    contents["values"].reverse()  # Folkökning first: a positional guess would take it
    contents["valueTexts"].reverse()
    with FakeApi() as api:
        api.add("GET", V1_CKM, Reply(body=payload))
        api.add("POST", V1_CKM, Reply(body=v1_data))
        ScbClient(api.url + "/v1/ssd", http=fast_http()).population(
            [2025], [20], table="BE/BE0101/BE0101A/BefolkningCKM"
        )
        post = [c.json() for c in api.calls(V1_CKM) if c.method == "POST"][0]
    codes = {q["code"]: q["selection"]["values"] for q in post["query"]}
    assert codes["ContentsCode"] == ["000007ME"]


def test_missing_year_and_cell_count_mismatch():
    with FakeApi() as api:
        serve_v1(api)
        with pytest.raises(MalformedResponseError, match="no data for years"):
            ScbClient(api.url + "/v1/ssd", http=fast_http()).population([1900])
        short = jsonstat2_for(
            {
                "Region": ["0114"],
                "Alder": ["20"],
                "Kon": ["1"],
                "ContentsCode": ["BE0101N1"],
                "Tid": ["2010"],
            },
            pop_value,
        )
        api.add("POST", V1_PATH, Reply(body=short))
        with pytest.raises(MalformedResponseError, match="cells for a chunk"):
            ScbClient(api.url + "/v1/ssd", http=fast_http()).population([2010], range(19, 21))


def test_variable_without_elimination_or_total_is_asked_in_full_and_summed():
    payload = json.loads((FIX / "scb_v1_befolkningny_metadata.json").read_text(encoding="utf-8"))
    civil = next(v for v in payload["variables"] if v["code"] == "Civilstand")
    civil["elimination"] = False  # OG, G, ÄNKL, SK and no total
    with FakeApi() as api:
        api.add("GET", V1_PATH, Reply(body=payload))
        api.add("POST", V1_PATH, Reply(body=v1_data))
        frame, prov = ScbClient(api.url + "/v1/ssd", http=fast_http()).population([2010], [20, 21])
        post = [c.json() for c in api.calls(V1_PATH) if c.method == "POST"][0]
    sent = {q["code"]: q["selection"]["values"] for q in post["query"]}
    assert sent["Civilstand"] == civil["values"]
    table = prov.query["tables"]["BE/BE0101/BE0101A/BefolkningNy"]
    assert table["summed"] == ["Civilstand"] and len(frame) == 4 * 2 * 2
    row = frame[(frame.kommun_kod == "0180") & (frame.sex == "M") & (frame.age == 21)]
    one = pop_value({"Region": "0180", "Alder": "21", "Kon": "1", "Tid": "2010"})
    assert row["population"].item() == 4 * one  # the four civil states added up
