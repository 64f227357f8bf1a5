"""No real-data panel without a calendar; the pipeline's calendar modes (issue 11 item 4).

- ``build_panel`` without a calendar raises and names the fix;
- a user calendar with planted conflicts (Kalmar län's founders split, a kommun of the April 2007
  list joining in 2010) is refused, conflict by conflict, naming kommun, förbund and fact, and
  accepted with ``allow_conflicts`` (the conflicts then in the manifest);
- a calendar file marked synthetic is refused as a real calendar;
- "documented" runs end to end on a real-like panel file (the synthetic panel with its cohort
  column blanked) and returns the pooled columns.

The planted facts come from the seed documents (DOMAIN.md): Samordningsförbundet i Kalmar län was
formed on 1 October 2005 by the whole län except Borgholm (seeds 004 bilaga 2 and 000), and
Karlskoga and Degerfors formed one förbund listed in April 2007 (seed 000).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_eval.cli import main
from finsam_eval.panel import build_panel
from finsam_eval.pipeline import ConfigError, load_config, run_analysis

registry = pytest.importorskip("finsam_eval.registry")
if not hasattr(registry, "compatible_calendars"):  # until branch `calendar` is merged
    pytest.skip("finsam_eval.registry.compatible_calendars not available", allow_module_level=True)

KALMAR = "0880"  # Kalmar, a founder of Samordningsförbundet i Kalmar län (formed 2005)
KARLSKOGA = "1883"  # Karlskoga, in the April 2007 list with Degerfors (seed 000)
SERIES = ("alla", "sjukpenning")


@pytest.fixture(scope="module")
def draw() -> pd.DataFrame:
    """One compatible calendar (kommun_kod, cohort), independent of the pipeline."""
    calendars = registry.compatible_calendars(2, seed=11)
    one = calendars[calendars["draw"] == calendars["draw"].min()]
    return one[["kommun_kod", "cohort"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def panel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real-like panel file: one synthetic series with its cohort column blanked."""
    from finsam_eval.synthetic import load_synthetic

    panel = load_synthetic()
    panel = panel[(panel["population"] == SERIES[0]) & (panel["outcome"] == SERIES[1])]
    path = tmp_path_factory.mktemp("real") / "panel.csv"
    panel.assign(cohort="", forbund="").to_csv(path, index=False)
    return path


def _config(tmp_path: Path, panel_file: Path, design: str, methods: str = '["cs"]') -> Path:
    text = (
        f'[data]\nsource = "{panel_file.as_posix()}"\n'
        f'[design]\npopulations = ["{SERIES[0]}"]\noutcomes = ["{SERIES[1]}"]\n'
        f"methods = {methods}\n{design}"
        '[inference]\nbootstrap = 0\nadjust = "holm"\n'
    )
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _planted(draw: pd.DataFrame, path: Path, origin: str | None = None) -> Path:
    calendar = draw.copy()
    kalmar = calendar["kommun_kod"] == KALMAR
    calendar.loc[kalmar, "cohort"] = calendar.loc[kalmar, "cohort"] + 1  # splits the founders
    calendar.loc[calendar["kommun_kod"] == KARLSKOGA, "cohort"] = 2010  # a 2007 member in 2010
    if origin is not None:
        calendar["origin"] = origin
    calendar.to_csv(path, index=False)
    return path


def test_build_panel_without_calendar_raises_naming_the_fix() -> None:
    from finsam_eval.synthetic import load_synthetic_sources

    sources = load_synthetic_sources()
    numerators = sources.numerators[sources.numerators["year"] == 2010]
    population = sources.population[sources.population["year"] == 2010]
    with pytest.raises(ValueError, match="needs the adoption calendar") as error:
        build_panel(numerators, population)
    assert "cohorts=" in str(error.value) and "outcome_only=True" in str(error.value)


def test_a_compatible_calendar_passes(tmp_path: Path, panel_file: Path, draw) -> None:
    path = tmp_path / "calendar.csv"
    draw.to_csv(path, index=False)
    config = _config(tmp_path, panel_file, f'calendar = "{path.as_posix()}"\n')
    assert main(["validate", "--config", str(config)]) == 0


def test_planted_conflicts_refuse_the_run(
    tmp_path: Path, panel_file: Path, draw, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _planted(draw, tmp_path / "calendar.csv")
    config = _config(tmp_path, panel_file, f'calendar = "{path.as_posix()}"\n')
    for command in ("validate", "run"):
        argv = [command, "--config", str(config)]
        if command == "run":
            argv += ["--out", str(tmp_path / "out")]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert lines[0].startswith(f"finsam-eval {command}: error: ")
        assert "allow_conflicts" in lines[0]
        conflicts = lines[1:]
        assert conflicts, err
        # one line per conflict, each naming kommun, förbund and fact
        assert all("kommun " in c and "förbund " in c and "fact " in c for c in conflicts)
        kalmar = [c for c in conflicts if KALMAR in c and "Kalmar" in c]
        assert any("kalmar" in c.split("förbund ")[1].lower() for c in kalmar), conflicts
        karlskoga = [c for c in conflicts if KARLSKOGA in c and "Karlskoga" in c]
        assert any("2007" in c for c in karlskoga), conflicts
    assert not (tmp_path / "out" / "estimates.csv").exists()


def test_conflicts_accepted_with_allow_conflicts_are_in_the_manifest(
    tmp_path: Path, panel_file: Path, draw
) -> None:
    path = _planted(draw, tmp_path / "calendar.csv")
    design = f'calendar = "{path.as_posix()}"\nallow_conflicts = true\n'
    config = load_config(_config(tmp_path, panel_file, design))
    out = tmp_path / "out"
    run_analysis(config, out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    calendar = manifest["calendar"]
    assert calendar["mode"] == "user" and calendar["allow_conflicts"] is True
    codes = {c["kommun_kod"] for c in calendar["conflicts"]}
    assert {KALMAR, KARLSKOGA} <= codes
    notes = pd.read_csv(out / "notes.csv", keep_default_na=False)
    accepted = notes[notes["message"].str.startswith("Calendar conflict accepted")]
    assert len(accepted) == len(calendar["conflicts"])
    assert notes["message"].str.contains("cohort column is not used").any()
    # the calendar's cohorts replaced the blank ones: Karlskoga is in cohort 2010
    estimates = pd.read_csv(out / "estimates.csv")
    assert estimates["estimate"].notna().any()


def test_synthetic_calendar_is_refused_as_a_real_calendar(
    tmp_path: Path, panel_file: Path, draw, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calendar.csv"
    draw.assign(origin="synthetic").to_csv(path, index=False)
    config = _config(tmp_path, panel_file, f'calendar = "{path.as_posix()}"\n')
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "synthetic" in err[0] and "allow_synthetic_calendar" in err[0]
    allowed = f'calendar = "{path.as_posix()}"\nallow_synthetic_calendar = true\n'
    assert main(["validate", "--config", str(_config(tmp_path, panel_file, allowed))]) == 0
    assert "marked synthetic" in capsys.readouterr().out


def test_bundled_synthetic_calendar_is_marked() -> None:
    from finsam_eval.synthetic import load_synthetic_sources

    calendar = load_synthetic_sources().calendar
    if "origin" not in calendar.columns:
        pytest.skip("the bundled synthetic calendar is not yet marked (branch `synthetic`)")
    assert set(calendar["origin"]) == {"synthetic"}


def test_documented_mode_runs_end_to_end(tmp_path: Path, panel_file: Path) -> None:
    design = "calendar_draws = 3\ncalendar_seed = 5\n"
    config = load_config(_config(tmp_path, panel_file, design))
    assert config.calendar == "documented"  # the default for a real source
    out = tmp_path / "out"
    run_analysis(config, out, progress=False)
    estimates = pd.read_csv(out / "estimates.csv")
    post = estimates[estimates["event_time"].between(0, 6)]
    for column in ("within_se", "between_sd", "min_estimate", "max_estimate"):
        assert column in estimates.columns and post[column].notna().all(), column
    assert (post["se"] >= post["within_se"] - 1e-12).all()
    assert (post["min_estimate"] <= post["estimate"] + 1e-12).all()
    assert (post["estimate"] <= post["max_estimate"] + 1e-12).all()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["calendar"]["mode"] == "documented"
    assert manifest["calendar"]["draws"] == 3 and manifest["calendar"]["seed"] == 5
    assert manifest["design"]["preset"] == "isf"
    notes = pd.read_csv(out / "notes.csv", keep_default_na=False)
    assert notes["message"].str.contains("compatible").any()
    assert notes["message"].str.contains("after 2015").any()


def test_documented_mode_ignores_the_panel_files_cohorts(tmp_path: Path, panel_file: Path) -> None:
    # a panel file whose cohort column claims every kommun joined in 2006 gives the same
    # estimates: its cohorts are replaced by the calendars'
    wrong = tmp_path / "wrong.csv"
    pd.read_csv(panel_file, dtype=str).assign(cohort="2006").to_csv(wrong, index=False)
    design = "calendar_draws = 2\n"
    runs = []
    for path in (panel_file, wrong):
        config = load_config(_config(tmp_path, path, design))
        out = tmp_path / path.stem
        run_analysis(config, out, progress=False)
        runs.append(pd.read_csv(out / "estimates.csv"))
    np.testing.assert_array_equal(runs[0]["estimate"], runs[1]["estimate"])


def test_synthetic_calendar_mode_only_for_synthetic_source(panel_file: Path) -> None:
    text = f'[data]\nsource = "{panel_file.as_posix()}"\n[design]\ncalendar = "synthetic"\n'
    with pytest.raises(ConfigError, match="only for"):
        load_config(text=text)


def test_a_calendar_repeating_a_kommun_is_refused(tmp_path: Path, panel_file: Path, draw) -> None:
    path = tmp_path / "calendar.csv"
    pd.concat([draw, draw.head(1)]).to_csv(path, index=False)
    design = f'calendar = "{path.as_posix()}"\nallow_conflicts = true\n'
    with pytest.raises(ConfigError, match="more than one cohort"):
        from finsam_eval.pipeline import load_analysis_panel

        load_analysis_panel(load_config(_config(tmp_path, panel_file, design)))


def test_one_draw_calendar_checks_name_the_rows():
    from finsam_eval.pipeline.calendar import calendar_cohorts
    from finsam_eval.registry.calendar_checks import one_draw_cohorts

    good = pd.DataFrame({"kommun_kod": ["0180", "1480"], "cohort": ["2006", 0]})
    assert one_draw_cohorts(good).tolist() == [2006, 0]
    for cohort, shown in ((2005.5, "2005.5"), (-1, "-1"), ("x", "'x'")):
        frame = good.assign(cohort=[cohort, 0])
        with pytest.raises(ValueError, match=rf"whole year or 0.*'0180', 'cohort': {shown}"):
            one_draw_cohorts(frame)
        with pytest.raises(ConfigError, match="calendar: cohort must be a whole year.*0180"):
            calendar_cohorts(frame)
    two = pd.concat([good.assign(draw=0), good.assign(draw=1)])
    with pytest.raises(ValueError, match="holds 2 draws"):
        one_draw_cohorts(two)
    with pytest.raises(ConfigError, match="holds 2 draws.*calendar = 'documented'"):
        calendar_cohorts(two)
    # an empty cell of a calendar CSV reads as 0 (not a member) in the config path
    assert calendar_cohorts(good.assign(cohort=["", "2006"]))["cohort"].tolist() == [0, 2006]
