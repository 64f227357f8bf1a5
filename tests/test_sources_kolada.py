"""Kolada client against recorded v2/v3 responses served locally."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).parent / "fixtures" / "sources"
sys.path.insert(0, str(FIX))
from fake_api import FakeApi, Reply  # noqa: E402

from finsam_eval.sources import KoladaClient, MalformedResponseError, OfflineError  # noqa: E402
from finsam_eval.sources.http import HttpClient  # noqa: E402


def fast() -> HttpClient:
    return HttpClient(timeout=1.0, max_retries=1, backoff=0.0, min_interval=0.0)


def serve_pages(api: FakeApi) -> None:
    page1 = (FIX / "kolada_v3_data_N02797_page1.json").read_bytes()
    page2 = (FIX / "kolada_v3_data_N02797_page2.json").read_bytes()
    api.add(
        "GET",
        "/v3/data/kpi/N02797/year/2010,2011",
        Reply(body=lambda req: page2 if req.query.get("page") == ["2"] else page1),
    )
    api.add_json_file("/v3/kpi/N02797", "kolada_v3_kpi_N02797.json")


def test_values_follow_next_page_and_keep_only_kommuner(tmp_path):
    with FakeApi() as api:
        serve_pages(api)
        client = KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast())
        frame, prov = client.values("N02797", [2011, 2010])
        calls = api.calls("/v3/data/kpi/N02797/year/2010,2011")
    assert len(calls) == 2 and calls[0].query["per_page"] == ["5000"]
    assert calls[1].query["page"] == ["2"]
    assert set(frame["kommun_kod"]) == {"0114", "0180", "0331", "2480"}  # 0000, 0001 dropped
    assert set(frame["gender"]) == {"K", "M", "T"}
    heby = frame[(frame["kommun_kod"] == "0331") & (frame["gender"] == "K")]
    assert heby["value"].isna().all() and heby["status"].iloc[0] == "Uppgift saknas"
    assert frame["year"].dtype == "int64"
    assert len(prov.urls) == 2 and prov.content_hash.startswith("sha256:")
    assert prov.series == "kolada:N02797" and prov.years == [2010, 2011]


def test_v2_single_page_string_period(tmp_path):
    with FakeApi() as api:
        api.add_json_file("/v2/data/kpi/N00930/year/2010", "kolada_v2_data_N00930.json")
        frame, _ = KoladaClient(api.url + "/v2", http=fast()).values("N00930", [2010])
    assert list(frame["value"]) == [4.2, 3.1] and set(frame["gender"]) == {"T"}


def test_search_and_title_verification(tmp_path):
    with FakeApi() as api:
        serve_pages(api)
        api.add_json_file("/v3/kpi", "kolada_v3_kpi_search.json")
        client = KoladaClient(api.url + "/v3", http=fast())
        found = client.search_kpis("varken arbetar")
        assert api.calls("/v3/kpi")[0].query["title"] == ["varken arbetar"]
        assert list(found["id"]) == ["N02797", "N00930"]
        _, prov = client.values(
            "N02797", [2010, 2011], verify_title="varken arbetar eller studerar"
        )
        assert "varken arbetar" in prov.extra["kpi_title"]
        assert any(u.endswith("/v3/kpi/N02797?per_page=5000") for u in prov.urls)
        with pytest.raises(MalformedResponseError, match="wrong KPI"):
            client.values("N02797", [2010, 2011], verify_title="ekonomiskt bistånd")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"count": 1}, "lacks the field 'values'"),
        ({"values": [{"kpi": "N1", "municipality": "0114", "values": []}]}, "'period'"),
        (
            {
                "values": [
                    {
                        "kpi": "N1",
                        "municipality": "0114",
                        "period": 2010,
                        "values": [{"gender": "T"}],
                    }
                ]
            },
            "'value'",
        ),
        (
            {
                "values": [
                    {
                        "kpi": "N1",
                        "municipality": "0114",
                        "period": 2010,
                        "values": [{"gender": "X", "value": 1}],
                    }
                ]
            },
            "unknown gender",
        ),
    ],
)
def test_missing_fields_are_clear_errors(body, message):
    with FakeApi() as api:
        api.add("GET", "/v3/data/kpi/N1/year/2010", Reply(body=json.dumps(body)))
        with pytest.raises(MalformedResponseError, match=message):
            KoladaClient(api.url + "/v3", http=fast()).values("N1", [2010])


def test_paging_loop_is_detected():
    loop = {"values": [], "next_page": "{base}/v3/data/kpi/N1/year/2010?per_page=5000"}
    with FakeApi() as api:
        api.add("GET", "/v3/data/kpi/N1/year/2010", Reply(body=json.dumps(loop)))
        with pytest.raises(MalformedResponseError, match="loops"):
            KoladaClient(api.url + "/v3", http=fast()).values("N1", [2010])


def test_truncated_page_is_not_cached(tmp_path):
    with FakeApi() as api:
        api.add("GET", "/v3/data/kpi/N1/year/2010", Reply(body=b'{"values": [{"kpi": "N1", '))
        with pytest.raises(MalformedResponseError, match="truncated"):
            KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast()).values("N1", [2010])
    assert not list(tmp_path.rglob("*.json"))
    with pytest.raises(OfflineError, match="not in the cache"):
        KoladaClient(cache_dir=tmp_path, offline=True).values("N1", [2010])


def test_offline_reads_cache_without_network(tmp_path):
    with FakeApi() as api:
        serve_pages(api)
        online, _ = KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast()).values(
            "N02797", [2010, 2011]
        )
    offline_client = KoladaClient("http://127.0.0.1:9/v3", cache_dir=tmp_path, offline=True)
    again, prov = offline_client.values("N02797", [2010, 2011])
    assert prov.from_cache and again.equals(online)
    subset, _ = offline_client.values("N02797", [2011])  # superset entry serves a subset
    assert set(subset["year"]) == {2011}
