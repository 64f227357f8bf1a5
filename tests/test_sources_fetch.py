"""Catalogue, cache provenance, offline mode and the end-to-end fetch into builder format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

FIX = Path(__file__).parent / "fixtures" / "sources"
sys.path.insert(0, str(FIX))
from fake_api import FakeApi, Reply, fast_http, pop_value, serve_kolada_pages, v1_data  # noqa: E402

from finsam_eval.panel.populations import OUTCOMES  # noqa: E402
from finsam_eval.sources import (  # noqa: E402
    CacheCorruptError,
    CatalogueError,
    OfflineError,
    SeriesCache,
    SourceError,
    fetch,
    outcome_catalogue,
)

YEARS = [2010, 2011]
V1_PATH = "/v1/ssd/BE/BE0101/BE0101A/BefolkningNy"


def serve_all(api: FakeApi) -> None:
    serve_kolada_pages(api)
    api.add_json_file(V1_PATH, "scb_v1_befolkningny_metadata.json")
    api.add("POST", V1_PATH, Reply(body=v1_data))


def run(api_url: str, cache: Path, offline: bool = False):
    return fetch(
        ["uvas", "sjukpenning"],
        YEARS,
        cache,
        offline=offline,
        progress=False,
        base_urls={"kolada": api_url + "/v3", "scb": api_url + "/v1/ssd"},
        files={"sjukpenning": FIX / "fk_sjukpenning.csv"},
        http=fast_http(),
    )


def test_catalogue_has_all_outcomes_and_user_override(tmp_path):
    cat = outcome_catalogue()
    assert set(cat.index) >= set(OUTCOMES)
    assert {"source", "identifier", "numerator", "denominator", "population"} <= set(cat.columns)
    assert (cat["verification"] != "").all()
    user = tmp_path / "mine.toml"
    user.write_text(
        '[outcomes.ekonomiskt_bistand]\nsource = "kolada"\nidentifier = "N31807"\n'
        'measure = "share"\npopulation = "0-120"\n\n'
        '[outcomes.new_kpi]\nsource = "kolada"\nidentifier = "N1"\nnumerator = "n"\n'
        'denominator = "d"\npopulation = "20-64"\nmeasure = "share"\n',
        encoding="utf-8",
    )
    merged = outcome_catalogue(user)
    assert merged.loc["ekonomiskt_bistand", "identifier"] == "N31807"
    assert merged.loc["ekonomiskt_bistand", "numerator"].startswith("Adults")  # kept
    assert "new_kpi" in merged.index
    with pytest.raises(CatalogueError, match="unknown source"):
        outcome_catalogue({"outcomes": {"uvas": {"source": "web"}}})
    with pytest.raises(CatalogueError, match="lacks"):
        outcome_catalogue({"outcomes": {"x": {"source": "kolada"}}})


def test_end_to_end_fetch_builder_format_provenance_and_offline(tmp_path):
    cache = tmp_path / "cache"
    with FakeApi() as api:
        serve_all(api)
        result = run(api.url, cache)
        online_requests = len(api.log)
    num, pop = result.numerators, result.population
    assert list(num.columns) == ["kommun_kod", "year", "sex", "age_band", "outcome", "count"]
    assert list(pop.columns) == ["kommun_kod", "year", "sex", "age", "population"]
    assert set(num["sex"]) == {"K", "M"} and (num["count"] >= 0).all()
    assert num["count"].notna().all() and num["kommun_kod"].str.len().eq(4).all()
    assert set(num["age_band"]) <= {"19-24", "25-54", "55-64"}
    assert set(num[num.outcome == "uvas"]["age_band"]) == {"19-24"}
    # uvas = share × population of the band
    row = num[
        (num.outcome == "uvas") & (num.kommun_kod == "0114") & (num.year == 2010) & (num.sex == "K")
    ]
    expected = 0.08 * sum(
        pop_value({"Region": "0114", "Alder": str(a), "Kon": "2", "Tid": "2010"})
        for a in range(19, 25)
    )
    assert row["count"].item() == pytest.approx(expected)
    # Heby women 2010 had no Kolada value, and "X" for 16-19 in the FK file: missing, not zero
    heby_k = num[(num.kommun_kod == "0331") & (num.sex == "K")]
    assert heby_k[heby_k.outcome == "uvas"].year.tolist() == []
    assert "19-24" not in set(heby_k[heby_k.outcome == "sjukpenning"]["age_band"])
    kinds = set(zip(result.report["outcome"], result.report["kind"], strict=True))
    assert {
        ("uvas", "missing"),
        ("sjukpenning", "suppressed"),
        ("sjukpenning", "missing"),
        ("sjukpenning", "dropped_rows"),
        ("uvas", "assumption"),
    } <= kinds
    # provenance: one row per series, hashes and library version
    prov = result.provenance.set_index("series")
    assert {
        "kolada:N02797",
        "scb:population:16-64",
        "forsakringskassan:sjukpenning",
    } == set(prov.index)
    kolada = prov.loc["kolada:N02797"]
    assert kolada["content_hash"].startswith("sha256:") and kolada["library_version"]
    assert "varken arbetar" in json.loads(kolada["extra"])["kpi_title"]
    assert "2010,2011" in kolada["urls"] and kolada["retrieved_at"]
    assert not prov["from_cache"].any()

    # offline: same tables from the cache, no server at all
    again = run("http://127.0.0.1:9", cache, offline=True)
    pd.testing.assert_frame_equal(again.numerators, num)
    pd.testing.assert_frame_equal(again.population, pop)
    assert again.provenance.set_index("series").loc["kolada:N02797", "from_cache"]
    assert online_requests == 5  # kpi metadata, 2 pages, scb metadata + 1 data chunk

    entries = SeriesCache(cache).entries()
    assert len(entries) == 2 and set(entries["source"]) == {"kolada", "scb"}


def test_offline_without_cache_and_corrupt_cache(tmp_path):
    with pytest.raises(OfflineError, match="not in the cache"):
        run("http://127.0.0.1:9", tmp_path / "empty", offline=True)
    cache = tmp_path / "cache"
    with FakeApi() as api:
        serve_all(api)
        run(api.url, cache)
    table = next((cache / "kolada").glob("*.csv"), None) or next(
        (cache / "kolada").glob("*.parquet")
    )
    table.write_bytes(table.read_bytes()[:-20])
    with pytest.raises(CacheCorruptError, match="does not match"):
        run("http://127.0.0.1:9", cache, offline=True)


def test_file_outcome_without_file_and_unknown_outcome(tmp_path):
    with pytest.raises(SourceError, match="pass files="):
        fetch(["sa"], YEARS, tmp_path, progress=False)
    with pytest.raises(CatalogueError, match="unknown outcomes"):
        fetch(["nope"], YEARS, tmp_path, progress=False)


def test_failed_download_leaves_no_cache_entry(tmp_path):
    with FakeApi() as api:
        serve_all(api)
        api.add("POST", V1_PATH, Reply(500, b"down", "text/plain"))
        with pytest.raises(SourceError):
            run(api.url, tmp_path)
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.csv"))


def test_fetch_then_build_panel(tmp_path):
    builder = pytest.importorskip("finsam_eval.panel.builder")
    with FakeApi() as api:
        serve_all(api)
        result = run(api.url, tmp_path)
    built = builder.build_panel(result.numerators, result.population, outcome_only=True)
    panel = built.panel
    assert len(panel) > 0
    assert {"uvas", "sjukpenning"} <= set(panel["outcome"])


def test_fetch_build_estimate_end_to_end(tmp_path):
    """Recorded responses → fetch → panel builder → estimator, with a membership calendar."""
    from finsam_eval.estimators import estimate
    from finsam_eval.panel import build_panel

    with FakeApi() as api:
        serve_all(api)
        result = run(api.url, tmp_path)
    codes = sorted(set(result.numerators["kommun_kod"]) & set(result.population["kommun_kod"]))
    assert len(codes) >= 4
    # half the kommuner join in the second year, the rest never do
    cohorts = pd.DataFrame(
        {
            "kommun_kod": codes,
            "cohort": [YEARS[1] if i % 2 == 0 else 0 for i in range(len(codes))],
            "forbund": [f"f{i}" if i % 2 == 0 else "" for i in range(len(codes))],
        }
    )
    built = build_panel(
        result.numerators[result.numerators["kommun_kod"].isin(codes)],
        result.population[result.population["kommun_kod"].isin(codes)],
        cohorts=cohorts,
        populations=["unga"],
        outcomes=["uvas"],
    )
    panel = built.panel
    assert built.report.reconciles
    assert set(panel["cohort"]) == {0, YEARS[1]}
    res = estimate(panel, outcome="share", method="cs", control="never")
    es = res.event_study.set_index("event_time")
    # one post period: the CS estimate is the 2×2 DiD of mean share changes over the kommuner
    # seen in both years, computed here from the panel
    wide = panel.pivot(index="kommun_kod", columns="year", values="share").dropna()
    change = wide[YEARS[1]] - wide[YEARS[0]]
    cohort = panel.drop_duplicates("kommun_kod").set_index("kommun_kod")["cohort"]
    treated = cohort.reindex(change.index) > 0
    expected = change[treated].mean() - change[~treated].mean()
    assert es.loc[0, "estimate"] == pytest.approx(expected, abs=1e-10)
    # Heby's young cells are suppressed in the fixtures: fetch reports them missing (never zero),
    # the builder leaves the rows out and says why, and the estimate uses the other kommuner
    assert res.info["n_units"] == len(wide) == len(codes) - 1
    assert "0331" not in set(wide.index)
    missing = result.report[result.report["kind"] == "missing"]
    assert "0331" in set(missing["kommun_kod"])
    ledger = built.report.to_frame()
    assert "0331" in set(ledger["kommun_kod"].astype(str))


def test_cli_fetch_offline_from_cache(tmp_path, capsys):
    """`finsam-eval fetch --offline` serves a filled cache without any server, and fails with a
    one-line error when the cache is empty."""
    from finsam_eval.cli import main

    cache = tmp_path / "cache"
    with FakeApi() as api:
        serve_all(api)
        run(api.url, cache)
    out = tmp_path / "out"
    argv = [
        "fetch", "--offline", "--cache", str(cache), "--out", str(out),
        "--outcomes", "uvas,sjukpenning", "--years", "2010-2011",
        "--file", f"sjukpenning={FIX / 'fk_sjukpenning.csv'}",
    ]  # fmt: skip
    assert main(["--quiet", *argv]) == 0
    numerators = pd.read_csv(out / "numerators.csv", dtype={"kommun_kod": str})
    population = pd.read_csv(out / "population.csv", dtype={"kommun_kod": str})
    assert {"uvas", "sjukpenning"} <= set(numerators["outcome"])
    assert set(population["year"]) == set(YEARS)
    capsys.readouterr()
    empty = ["fetch", "--offline", "--cache", str(tmp_path / "none"), "--out", str(out),
             "--outcomes", "uvas", "--years", "2010-2011"]  # fmt: skip
    assert main(["--quiet", *empty]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "finsam-eval fetch: error:" in err[0]


def test_cli_errors_use_cli_syntax_and_dns_failure_is_one_quick_line(tmp_path, capsys, monkeypatch):
    import socket
    import time

    from finsam_eval.cli import main

    base = ["--quiet", "fetch", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o")]
    assert main([*base, "--outcomes", "sa,sjukpenning", "--years", "2010"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--file sa=PATH" in err[0] and "--file sjukpenning=PATH" in err[0]
    assert "files=" not in err[0]
    with pytest.raises(SourceError, match=r"files=\{'sa': path\}"):
        fetch(["sa"], YEARS, tmp_path, progress=False)

    calls = []

    def no_dns(*args, **kwargs):
        calls.append(args[0])
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.monotonic()
    assert main([*base, "--outcomes", "uvas", "--years", "2010"]) == 2
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resolve host" in err[0] and "not retried" in err[0]
    assert len(calls) == 1 and elapsed < 5


def test_kolada_title_with_another_age_band_than_the_catalogue_stops_the_fetch(tmp_path):
    user = {"outcomes": {"uvas": {"population": "19-24"}}}  # the KPI's title says 16-24
    with FakeApi() as api:
        serve_all(api)
        with pytest.raises(CatalogueError, match=r"N02797.*16-24.*'19-24'"):
            fetch(
                ["uvas"],
                YEARS,
                tmp_path,
                progress=False,
                base_urls={"kolada": api.url + "/v3", "scb": api.url + "/v1/ssd"},
                catalogue=user,
                http=fast_http(),
            )


def test_fetch_across_the_scb_table_change_with_a_kolada_year_missing(tmp_path):
    """2024-2025: population from TAB638 and TAB5557; Kolada N31807 has no 2025 yet."""
    from fake_api import v2_data

    n31807 = {
        "count": 2,
        "next_url": None,
        "previous_url": None,
        "values": [
            {
                "kpi": "N31807",
                "municipality": code,
                "period": 2024,
                "values": [{"gender": "T", "value": share, "status": "", "count": 1}],
            }
            for code, share in (("0114", 4.0), ("0180", 3.0))
        ],
    }
    with FakeApi() as api:
        api.add_json_file("/v3/kpi/N31807", "kolada_v3_kpi_N31807.json")
        api.add("GET", "/v3/data/kpi/N31807/year/2024,2025", Reply(body=n31807))
        for table, fixture in (("TAB638", "tab638"), ("TAB5557", "tab5557")):
            api.add_json_file(f"/api/v2/tables/{table}/metadata", f"scb_v2_{fixture}_metadata.json")
            api.add("POST", f"/api/v2/tables/{table}/data", Reply(body=v2_data))
        with pytest.warns(UserWarning, match=r"\[2025\]"):
            result = fetch(
                ["ekonomiskt_bistand_kolada"],
                [2024, 2025],
                tmp_path,
                progress=False,
                base_urls={"kolada": api.url + "/v3", "scb": api.url + "/api/v2"},
                http=fast_http(),
            )
    assert set(result.population["year"]) == {2024, 2025}
    assert result.population["age"].between(16, 64).all()  # an all-ages KPI asks no more ages
    num = result.numerators
    assert set(num["year"]) == {2024} and set(num["kommun_kod"]) == {"0114", "0180"}
    row = num[(num.kommun_kod == "0114") & (num.sex == "K") & (num.age_band == "55-64")]
    pop = result.population
    band = pop[(pop.kommun_kod == "0114") & (pop.year == 2024) & (pop.sex == "K")]
    assert row["count"].item() == pytest.approx(
        0.04 * band[band.age.between(55, 64)]["population"].sum()
    )
    report = result.report
    missing = report[report.kind == "missing_years"]
    assert missing["year"].tolist() == [2025] and "N31807" in missing["detail"].iloc[0]
    assert (report.kind == "table_note").any()
    assert report["detail"].str.contains("narrower band 19-24").any()
    tables = json.loads(result.provenance.set_index("series").loc["scb:population:16-64", "query"])
    assert {k: v["years"] for k, v in tables["tables"].items()} == {
        "TAB638": [2024],
        "TAB5557": [2025],
    }


def test_catalogue_records_evidence_and_the_checked_kolada_ids():
    from finsam_eval.sources.catalogue import check_title_ages, kolada_candidates, title_ages

    cat = outcome_catalogue()
    for column in ("title", "definition", "confirmed_in", "denominator", "population"):
        assert (cat[column].str.len() > 0).all(), column
    kolada = cat[cat["source"] == "kolada"]
    # issue 11: N00930 and N31813 are not in Kolada's KPI lists; N31807 and N02797 are
    assert not set(kolada["identifier"]) & {"N00930", "N31813"}
    assert kolada.loc["ekonomiskt_bistand_kolada", "identifier"] == "N31807"
    assert kolada.loc["uvas", "title"].startswith("Invånare 16-24 år som varken arbetar")
    for name, row in kolada.iterrows():
        assert row["title_contains"].casefold() in row["title"].casefold(), name
        check_title_ages(name, row["identifier"], row["title"], row["population"])
    assert "19-24" in cat.loc["uvas", "age_note"]  # ISF's band, and what the library does
    candidates = kolada_candidates()
    expected = {f"N318{n}" for n in range(36, 48)} | {"N31824", "N31825"}
    assert set(candidates.index) == expected and (candidates["evidence"] != "").all()
    assert title_ages("Invånare 16-24 år som varken arbetar eller studerar, andel (%)") == (16, 24)
    assert title_ages("Invånare som någon gång under året erhållit ekonomiskt bistånd") is None
    with pytest.raises(CatalogueError, match="16-24"):
        check_title_ages("uvas", "N02797", "Invånare 16-24 år som ...", "19-24")
