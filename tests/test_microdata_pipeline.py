"""Microdata through the pipeline and the CLI: [data] source = "microdata" (issue 15)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from finsam_eval.cli import main
from finsam_eval.pipeline import load_config, load_panel_for

KOMMUNER = ["0114", "0120", "0180", "0581", "1480", "2401", "2480"]


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    from finsam_eval.synthetic.microdata import generate_microdata

    out = tmp_path_factory.mktemp("micro")
    world = generate_microdata(persons=5000, seed=2, kommuner=KOMMUNER, path=out / "persons")
    world.cohorts.to_csv(out / "cohorts.csv", index=False)
    return out


def test_config_microdata_entries(synthetic_dir):
    text = f'''
[data]
source = "microdata"
path = "{synthetic_dir / "persons"}"
cohorts = "{synthetic_dir / "cohorts.csv"}"
engine = "duckdb"
memory_limit = "1GB"

[design]
populations = ["alla"]
outcomes = ["sjukpenning", "stod_till_arbete"]
methods = ["cs"]
window = [-3, 3]
event_times = [0, 3]
'''
    config = load_config(text=text)
    assert config.series() == [("alla", "sjukpenning"), ("alla", "stod_till_arbete")]
    panel = load_panel_for(config)
    assert {"sjukpenning", "stod_till_arbete"} <= set(panel["outcome"])
    source = panel.attrs["data_source"]
    assert source["source"] == "microdata" and "duckdb" in source["engine"]
    assert source["rows_read"] > 0
    # the microdata source's configuration errors: tests/test_pipeline_config.py


def test_cli_synthetic_persons_and_panel(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["synthetic", "--persons", "400", "--out", str(out)]) == 0
    assert (out / "cohorts.csv").is_file() and (out / "truth.csv").is_file()
    assert any((out / "persons").glob("year=*/*.parquet"))
    # a dense folder for the panel: few kommuner
    from finsam_eval.synthetic.microdata import generate_microdata

    world = generate_microdata(persons=3000, seed=4, kommuner=KOMMUNER, path=tmp_path / "p")
    world.cohorts.to_csv(tmp_path / "cohorts.csv", index=False)
    code = main(
        ["panel", "--microdata", str(tmp_path / "p"), "--cohorts", str(tmp_path / "cohorts.csv"),
         "--out", str(tmp_path / "panel")]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "counting persons" in printed and "Rows read" in printed
    panel = pd.read_csv(tmp_path / "panel" / "panel.csv", dtype={"kommun_kod": str})
    assert "kvar_i_stod" in set(panel["outcome"])
    assert main(["panel", "--microdata", str(tmp_path / "p"), "--out", str(tmp_path / "x")]) == 2


def test_run_manifest_names_the_microdata(synthetic_dir, tmp_path):
    from finsam_eval.pipeline import run_analysis

    config = load_config(
        text=f'''
[data]
source = "microdata"
path = "{synthetic_dir / "persons"}"
cohorts = "{synthetic_dir / "cohorts.csv"}"

[design]
populations = ["alla"]
outcomes = ["sjukpenning"]
methods = ["cs"]
window = [-3, 3]
event_times = [0, 3]

[inference]
bootstrap = 99
adjust = "holm"
'''
    )
    run_analysis(config, tmp_path / "out", progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert "microdata" in text and "hive-partitioned" in text
