"""The ``finsam-eval`` command line: every command on small inputs, exit codes, one-line errors.

Commands run in-process through ``finsam_eval.cli.main(argv)`` (fast, and errors are visible in
pytest's output); one test runs the installed console script in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from finsam_eval.cli import main
from finsam_eval.estimators import METHODS

# methods of the small test configuration; estimators still missing from METHODS are skipped
WANTED_METHODS = ["twfe", "cs"]


def small_config_text(methods: list[str]) -> str:
    quoted = ", ".join(f'"{m}"' for m in methods)
    return (
        "[design]\n"
        'populations = ["alla"]\n'
        'outcomes = ["sjukpenning"]\n'
        f"methods = [{quoted}]\n"
        "window = [-3, 4]\n"
        "event_times = [0, 4]\n"
        "[inference]\n"
        "bootstrap = 99\n"
    )


@pytest.fixture(scope="module")
def methods() -> list[str]:
    present = [m for m in WANTED_METHODS if m in METHODS]
    if not present:
        pytest.skip(f"none of {WANTED_METHODS} is registered in finsam_eval.estimators.METHODS")
    return present


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory, methods: list[str]) -> Path:
    path = tmp_path_factory.mktemp("config") / "small.toml"
    path.write_text(small_config_text(methods), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, config_file: Path) -> Path:
    out = tmp_path_factory.mktemp("run") / "results"
    assert main(["run", "--quiet", "--config", str(config_file), "--out", str(out)]) == 0
    return out


def _bad_config_line(
    command: str, config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    """Run ``command`` on a bad configuration file; it must exit 2 with one error line."""
    path = tmp_path / "bad.toml"
    path.write_text(config, encoding="utf-8")
    argv = [command, "--config", str(path)]
    if command == "run":
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    return _one_line_error(capsys, command)


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{captured.err}"
    assert lines[0].startswith(f"finsam-eval {command}: error: "), lines[0]
    return lines[0]


def test_validate_ok(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "configuration OK: 1 series" in out
    assert "290 kommuner, 1998–2018" in out


def test_validate_quiet_prints_nothing(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--quiet", "--config", str(config_file)]) == 0
    assert main(["--quiet", "validate", "--config", str(config_file)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_run_writes_the_output_folder(run_dir: Path, methods: list[str]) -> None:
    for name in ("estimates.csv", "notes.csv", "report.html", "manifest.json"):
        assert (run_dir / name).is_file(), name
    for method in methods:
        for ext in ("md", "tex", "html", "xlsx"):
            path = run_dir / "tables" / f"isf_alla_{method}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert "event-alla-sjukpenning.png" in figures
    assert {"adoption-heatmap.png", "cohort-sizes.png"} <= set(figures)

    estimates = pd.read_csv(run_dir / "estimates.csv")
    assert set(estimates["method"]) == set(methods)
    assert set(estimates["population"]) == {"alla"}
    assert set(estimates["outcome"]) == {"sjukpenning"}
    assert estimates["event_time"].between(-3, 4).all()
    post = estimates[estimates["event_time"].between(0, 4)]
    assert post["p_adjusted"].notna().all()

    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["methods"] == methods
    assert len(manifest["config_sha256"]) == 64
    assert len(manifest["inputs"]["sha256"]) == 64


def test_run_quiet_prints_nothing(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--quiet", "--config", str(config_file), "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_report_rebuilds_report_html(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(run_dir, copy)
    original = (copy / "report.html").read_bytes()
    (copy / "report.html").unlink()
    assert main(["report", "--quiet", "--out", str(copy)]) == 0
    rebuilt = (copy / "report.html").read_bytes()
    # same estimates, figures and manifest: the same bytes
    assert rebuilt == original


def test_report_without_estimates_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--out", str(tmp_path)]) == 2
    line = _one_line_error(capsys, "report")
    assert "estimates.csv" in line


def test_synthetic_writes_where_told_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synthetic"
    assert main(["synthetic", "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    sources = ["calendar.csv", "numerators.csv.gz", "population.csv.gz", "truth.csv"]
    assert names == sorted([*sources, "panel.parquet"])
    from finsam_eval.synthetic.store import bundled_dir

    bundled = bundled_dir()
    if bundled is not None:
        # the default seed regenerates the bundled source tables byte for byte
        for name in sources:
            assert (out / name).read_bytes() == (bundled / name).read_bytes(), name


def test_synthetic_requires_an_output_folder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["synthetic"])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_panel_from_source_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from finsam_eval import load_synthetic, load_synthetic_sources

    sources = load_synthetic_sources()
    years = range(2003, 2011)
    numerators = sources.numerators[sources.numerators["year"].isin(years)]
    population = sources.population[sources.population["year"].isin(years)]
    paths = {}
    for name, frame in (
        ("numerators", numerators),
        ("population", population),
        ("calendar", sources.calendar),
    ):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    out = tmp_path / "panel"
    argv = ["panel", "--out", str(out)]
    for name, path in paths.items():
        argv += [f"--{name}", str(path)]
    assert main(argv) == 0
    assert "panel:" in capsys.readouterr().out
    assert (out / "build_report.md").read_text(encoding="utf-8").strip()

    panel = pd.read_csv(out / "panel.csv", dtype={"kommun_kod": str})
    assert panel["kommun_kod"].nunique() == 290
    assert sorted(panel["year"].unique()) == list(years)
    reference = load_synthetic()
    reference = reference[reference["year"].isin(years)]
    key = ["kommun_kod", "year", "population", "outcome"]
    merged = panel.merge(reference, on=key, suffixes=("", "_ref"), validate="one_to_one")
    assert len(merged) == len(reference)
    assert (merged["cohort"] == merged["cohort_ref"]).all()
    pd.testing.assert_series_equal(
        merged["share"], merged["share_ref"], check_names=False, rtol=1e-10
    )


def test_panel_without_calendar_exits_2_naming_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from finsam_eval import load_synthetic_sources

    sources = load_synthetic_sources()
    keep = sources.numerators["year"] == 2010
    numerators = sources.numerators[keep & (sources.numerators["outcome"] == "sjukpenning")]
    population = sources.population[sources.population["year"] == 2010]
    numerators.to_csv(tmp_path / "n.csv", index=False)
    population.to_csv(tmp_path / "p.csv", index=False)
    argv = ["panel", "--quiet", "--numerators", str(tmp_path / "n.csv")]
    argv += ["--population", str(tmp_path / "p.csv"), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    line = _one_line_error(capsys, "panel")
    assert "--calendar" in line and "--outcome-only" in line
    assert not (tmp_path / "out" / "panel.csv").exists()
    # asked for explicitly: a panel of outcomes with cohort 0 as a placeholder
    assert main([*argv, "--outcome-only"]) == 0
    panel = pd.read_csv(tmp_path / "out" / "panel.csv", dtype={"kommun_kod": str})
    assert (panel["cohort"] == 0).all()
    report = (tmp_path / "out" / "build_report.md").read_text(encoding="utf-8")
    assert "Outcome-only panel" in report


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["validate", "--config", str(missing)]) == 2
    assert "missing.toml" in _one_line_error(capsys, "validate")


def test_missing_data_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "design.toml"
    path.write_text(f'[data]\nsource = "{(tmp_path / "panel.csv").as_posix()}"\n', encoding="utf-8")
    assert main(["validate", "--config", str(path)]) == 2
    assert "panel.csv" in _one_line_error(capsys, "validate")


def test_missing_source_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["panel", "--outcome-only", "--numerators", str(tmp_path / "nope.csv")]
    argv += ["--population", str(tmp_path / "nope2.csv"), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "nope.csv" in _one_line_error(capsys, "panel")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["panel"])  # --numerators and --population are required
    assert info.value.code == 2
    capsys.readouterr()


def test_console_script(config_file: Path) -> None:
    script = Path(sys.executable).with_name("finsam-eval")
    if not script.is_file():
        pytest.skip(f"console script not installed beside {sys.executable} (pip install -e .)")
    ok = subprocess.run(
        [str(script), "validate", "--quiet", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "" and ok.stderr == ""
    bad = subprocess.run(
        [str(script), "validate", "--config", str(config_file.with_name("absent.toml"))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("finsam-eval validate: error:")


def _run_argv(config_file: Path, out: Path) -> list[str]:
    return ["run", "--quiet", "--config", str(config_file), "--out", str(out)]


def test_run_replaces_an_earlier_output_whole(
    run_dir: Path, config_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    shutil.copytree(run_dir, out)
    # a figure of a series no longer configured, and a stray table, left by an earlier run
    stale = [out / "figures" / "event-unga-uvas.png", out / "tables" / "isf_unga_cs.md"]
    for path in stale:
        path.write_bytes(b"stale")
    assert main(_run_argv(config_file, out)) == 0
    for path in stale:
        assert not path.exists(), path
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert manifest["files"] == on_disk
    assert "estimates.csv" in on_disk and "figures/event-alla-sjukpenning.png" in on_disk
    # nothing left beside the folder: no staging or old copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    # and again (`make run` twice in a row)
    assert main(_run_argv(config_file, out)) == 0
    assert (out / "estimates.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize(
    "manifest",
    [None, "{not json", '{"title": "somebody else\'s manifest"}'],
    ids=["no-manifest", "broken-manifest", "foreign-manifest"],
)
def test_run_refuses_a_foreign_non_empty_folder(
    manifest: str | None,
    config_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "thesis"
    (out / "chapter").mkdir(parents=True)
    files = {out / "notes.txt": b"my notes", out / "chapter" / "draft.md": b"# draft"}
    if manifest is not None:
        files[out / "manifest.json"] = manifest.encode("utf-8")
    for path, content in files.items():
        path.write_bytes(content)
    assert main(_run_argv(config_file, out)) == 2
    line = _one_line_error(capsys, "run")
    assert str(out) in line and "not empty" in line and "--out" in line
    # nothing deleted, nothing added, nothing left beside it
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_run_refuses_a_file_as_output_folder(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    out.write_text("not a folder", encoding="utf-8")
    assert main(_run_argv(config_file, out)) == 2
    assert "is a file" in _one_line_error(capsys, "run")
    assert out.read_text(encoding="utf-8") == "not a folder"


def test_failed_run_keeps_the_earlier_output(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    shutil.copytree(run_dir, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.toml"
    # valid TOML that fails on loading the data, after the output folder was accepted
    bad.write_text('[data]\nsource = "missing-panel.csv"\n', encoding="utf-8")
    assert main(["run", "--config", str(bad), "--out", str(out)]) == 2
    _one_line_error(capsys, "run")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "results"]


def test_report_reads_only_the_files_the_manifest_lists(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "results"
    shutil.copytree(run_dir, copy)
    original = (copy / "report.html").read_bytes()
    # files another tool (or an older run) left: a figure and notes the run did not write
    (copy / "figures" / "event-unga-uvas.png").write_bytes(
        (copy / "figures" / "event-alla-sjukpenning.png").read_bytes()
    )
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    assert "notes.csv" in manifest["files"]
    manifest["files"].remove("notes.csv")
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (copy / "notes.csv").write_text("kind,message\nwarning,PLANTED STALE NOTE\n", encoding="utf-8")
    assert main(["report", "--quiet", "--out", str(copy)]) == 0
    text = (copy / "report.html").read_text(encoding="utf-8")
    assert "event-unga-uvas" not in text
    assert "PLANTED STALE NOTE" not in text
    assert "event-alla-sjukpenning" in text and text.encode("utf-8") != original


def test_report_names_a_listed_file_that_is_missing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "results"
    shutil.copytree(run_dir, copy)
    (copy / "figures" / "adoption-heatmap.png").unlink()
    assert main(["report", "--out", str(copy)]) == 2
    assert "figures/adoption-heatmap.png" in _one_line_error(capsys, "report")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ('[design]\npopulations = ["barn"]\n', "unknown population(s) ['barn']"),
        ("[design\n", "not valid TOML"),
        ("[design]\nwindow = [-5, 30]\nevent_times = [0, 6]\n", "design.window [-5, 30]"),
        ('[design]\nweights = "no"\n', "design.weights must be true or false"),
        ('[inference]\nalpha = "x"\n', "inference.alpha must be a number"),
        ('[inference]\nbootstrap = "999"\n', "inference.bootstrap must be an integer"),
        ("[design]\npopulations = 5\n", "design.populations must be a list of strings"),
        ('[data]\nseed = "abc"\n', "data.seed must be an integer"),
        # a method's own options, checked as estimate() checks them, before any data is read
        ('[design]\nmethods = ["twfe"]\nest_method = "ipw"\n', "'twfe'"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_config_exits_2_with_one_line(
    command: str,
    config: str,
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _bad_config_line(command, config, tmp_path, capsys)
    assert fragment in line and "Traceback" not in line
    if "est_method" in config:
        assert "est_method='ipw'" in line
    assert not (tmp_path / "out").exists()
