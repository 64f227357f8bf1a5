"""Kolada client against recorded v2/v3 responses served locally."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).parent / "fixtures" / "sources"
sys.path.insert(0, str(FIX))
from fake_api import FakeApi, Reply, fast_http, serve_kolada_pages  # noqa: E402

from finsam_eval.sources import KoladaClient, MalformedResponseError, OfflineError  # noqa: E402
from finsam_eval.sources.kolada import KoladaNoDataError, KoladaNoDataWarning  # noqa: E402


def test_values_follow_next_page_and_keep_only_kommuner(tmp_path):
    with FakeApi() as api:
        serve_kolada_pages(api)
        client = KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast_http())
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
        api.add_json_file("/v2/data/kpi/N31807/year/2010", "kolada_v2_data_N31807.json")
        frame, _ = KoladaClient(api.url + "/v2", http=fast_http()).values("N31807", [2010])
    assert list(frame["value"]) == [4.2, 3.1] and set(frame["gender"]) == {"T"}


def test_v2_next_page_links_are_followed():
    # v2 (github.com/Hypergene/kolada) links pages with "next_page"/"previous_page"
    def item(code, value):
        return {
            "kpi": "N31807",
            "municipality": code,
            "period": 2010,
            "values": [{"count": 1, "gender": "T", "status": "", "value": value}],
        }

    page1 = {
        "count": 2,
        "values": [item("0114", 4.2)],
        "next_page": "{base}/v2/data/kpi/N31807/year/2010?page=2&per_page=1",
        "previous_page": None,
    }
    page2 = {"count": 2, "values": [item("0180", 3.1)], "next_page": None}
    with FakeApi() as api:
        api.add(
            "GET",
            "/v2/data/kpi/N31807/year/2010",
            Reply(body=lambda req: page2 if req.query.get("page") == ["2"] else page1),
        )
        frame, prov = KoladaClient(api.url + "/v2", http=fast_http()).values("N31807", [2010])
    assert list(frame["kommun_kod"]) == ["0114", "0180"] and len(prov.urls) == 2


def test_empty_answer_is_never_cached_as_coverage(tmp_path):
    empty = {"count": 0, "values": [], "next_url": None, "previous_url": None}
    with FakeApi() as api:
        api.add("GET", "/v3/data/kpi/N31807/year/2024,2025", Reply(body=empty))
        client = KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast_http())
        with pytest.raises(KoladaNoDataError, match=r"N31807.*\[2024, 2025\]"):
            client.values("N31807", [2024, 2025])
    assert not list(tmp_path.rglob("*.json"))


def test_partly_empty_years_warn_and_only_covered_years_are_cached(tmp_path):
    one_year = {
        "count": 1,
        "next_url": None,
        "values": [
            {
                "municipality": "0114",  # v3 items may leave out "kpi": the route names it
                "period": 2024,
                "values": [{"gender": "T", "value": 4.0, "status": "", "count": 1}],
            },
            {
                "kpi": "N31807",
                "municipality": "0180",
                "period": 2025,  # a row for 2025, but without any value
                "values": [{"gender": "T", "value": None, "status": "Saknas", "count": 0}],
            },
        ],
    }
    with FakeApi() as api:
        api.add("GET", "/v3/data/kpi/N31807/year/2024,2025", Reply(body=one_year))
        client = KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast_http())
        with pytest.warns(KoladaNoDataWarning, match=r"\[2025\]"):
            frame, prov = client.values("N31807", [2024, 2025])
        with pytest.raises(KoladaNoDataError, match="2025"):
            client.values("N31807", [2024, 2025], empty_years="raise")
    assert set(frame["year"]) == {2024} and prov.years == [2024]
    assert prov.extra["missing_years"] == [2025] and set(frame["kpi"]) == {"N31807"}
    offline = KoladaClient(cache_dir=tmp_path, offline=True)
    assert offline.values("N31807", [2024])[1].from_cache
    # offline gives the same answer: 2024's values, 2025 named again as a known gap
    with pytest.warns(KoladaNoDataWarning, match=r"\[2025\]"):
        again, prov_again = offline.values("N31807", [2024, 2025])
    assert again.equals(frame) and prov_again.years == [2024]
    assert prov_again.extra["missing_years"] == [2025]
    # a year the source was never asked for is not in the cache at all
    with pytest.raises(OfflineError, match="not in the cache"):
        offline.values("N31807", [2024, 2026])
    # the recorded gap alone serves nothing
    with pytest.raises(OfflineError, match="not in the cache"):
        offline.values("N31807", [2025])


def test_search_and_title_verification(tmp_path):
    with FakeApi() as api:
        serve_kolada_pages(api)
        api.add_json_file("/v3/kpi", "kolada_v3_kpi_search.json")
        client = KoladaClient(api.url + "/v3", http=fast_http())
        found = client.search_kpis("varken arbetar")
        assert api.calls("/v3/kpi")[0].query["title"] == ["varken arbetar"]
        assert list(found["id"]) == ["N02797", "N31807"]
        _, prov = client.values(
            "N02797", [2010, 2011], verify_title="16-24 år som varken arbetar eller studerar"
        )
        assert prov.extra["kpi_title"].startswith("Invånare 16-24 år som varken arbetar")
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
            KoladaClient(api.url + "/v3", http=fast_http()).values("N1", [2010])


def test_paging_loop_is_detected():
    loop = {"values": [], "next_page": "{base}/v3/data/kpi/N1/year/2010?per_page=5000"}
    with FakeApi() as api:
        api.add("GET", "/v3/data/kpi/N1/year/2010", Reply(body=json.dumps(loop)))
        with pytest.raises(MalformedResponseError, match="loops"):
            KoladaClient(api.url + "/v3", http=fast_http()).values("N1", [2010])


def test_truncated_page_is_not_cached(tmp_path):
    with FakeApi() as api:
        api.add("GET", "/v3/data/kpi/N1/year/2010", Reply(body=b'{"values": [{"kpi": "N1", '))
        with pytest.raises(MalformedResponseError, match="truncated"):
            KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast_http()).values("N1", [2010])
    assert not list(tmp_path.rglob("*.json"))
    with pytest.raises(OfflineError, match="not in the cache"):
        KoladaClient(cache_dir=tmp_path, offline=True).values("N1", [2010])


def test_offline_reads_cache_without_network(tmp_path):
    with FakeApi() as api:
        serve_kolada_pages(api)
        online, _ = KoladaClient(api.url + "/v3", cache_dir=tmp_path, http=fast_http()).values(
            "N02797", [2010, 2011]
        )
    offline_client = KoladaClient("http://127.0.0.1:9/v3", cache_dir=tmp_path, offline=True)
    again, prov = offline_client.values("N02797", [2010, 2011])
    assert prov.from_cache and again.equals(online)
    subset, _ = offline_client.values("N02797", [2011])  # superset entry serves a subset
    assert set(subset["year"]) == {2011}


def test_long_year_lists_are_sent_in_groups():
    years = list(range(1998, 2026))  # 28 years

    def answer(request):
        group = [int(y) for y in request.path.rsplit("/", 1)[1].split(",")]
        return {
            "count": len(group),
            "next_url": None,
            "values": [
                {
                    "kpi": "N31807",
                    "municipality": "0114",
                    "period": y,
                    "values": [{"gender": "T", "value": y - 1990.0, "status": "", "count": 1}],
                }
                for y in group
            ],
        }

    first = ",".join(map(str, years[:20]))
    second = ",".join(map(str, years[20:]))
    with FakeApi() as api:
        api.add("GET", f"/v3/data/kpi/N31807/year/{first}", Reply(body=answer))
        api.add("GET", f"/v3/data/kpi/N31807/year/{second}", Reply(body=answer))
        frame, prov = KoladaClient(api.url + "/v3", http=fast_http()).values("N31807", years)
    assert sorted(frame["year"]) == years and len(prov.urls) == 2 and prov.years == years
