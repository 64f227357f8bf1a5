"""``finsam-eval run`` with few clusters and every estimator (issue #13: no crash for a valid config).

Stacked and dCDH return influence functions summed by cluster; the pipeline's sup-t bands and
Romano–Wolf draws must take them as they are (they crashed with "cluster mapping misses units").
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from finsam_eval.cli import main


@pytest.mark.parametrize("cluster", ["lan", "forbund"])
def test_run_with_cluster_level_influence_functions(
    cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "clusters.toml"
    config.write_text(
        "[design]\n"
        'preset = "all_cohorts"\n'
        'populations = ["alla"]\n'
        'outcomes = ["sjukpenning"]\n'
        'methods = ["stacked", "dcdh", "cs"]\n'
        "window = [-3, 4]\n"
        "event_times = [0, 4]\n"
        f'cluster = "{cluster}"\n'
        "[inference]\n"
        "bootstrap = 199\n"
        "[report]\n"
        "honest = false\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert main(["run", "--quiet", "--config", str(config), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    estimates = pd.read_csv(out / "estimates.csv")
    n_clusters = {"lan": 21, "forbund": estimates["n_clusters"].max()}[cluster]
    post = estimates[estimates["event_time"] >= 0]
    for method in ("stacked", "dcdh", "cs"):
        rows = post[post["method"] == method]
        assert len(rows) == 5 and (rows["n_clusters"] == n_clusters).all(), method
        # bands exist and are never narrower than the pointwise interval
        assert (rows["band_upper"] >= rows["ci_upper"] - 1e-12).all(), method
        assert rows["p_adjusted"].between(0, 1).all(), method
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert f'"cluster": "{cluster}"' in json.dumps(manifest)
