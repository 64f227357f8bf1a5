"""``finsam-eval validate`` refuses exactly what ``run`` refuses before estimating (issue #13, 3).

Every bad configuration below goes through the command line twice, as ``validate`` and as
``run``: both must exit 2, print the same error lines (one per problem, no traceback), and
``run`` must leave no output folder. The list covers the schema (types, booleans, unknown keys,
values), rules across entries, every method's options (``finsam_eval.estimators.spec``), and
the checks of the loaded panel (calendar file, series present, the design's panel).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from finsam_eval.cli import main
from finsam_eval.estimators import METHODS, estimate
from finsam_eval.pipeline.run import balanced_only_methods
from finsam_eval.synthetic.montecarlo import draw_shares, replication_seeds, series_world, to_panel

BASE = {
    "data": {},
    "design": {
        "populations": '["alla"]',
        "outcomes": '["sjukpenning"]',
        "methods": '["twfe"]',
        "window": "[-3, 4]",
        "event_times": "[0, 4]",
    },
    "inference": {"bootstrap": "99"},
    "report": {},
}


def _toml(changes: dict[str, dict[str, str | None]]) -> str:
    """BASE with ``changes`` (section -> key -> TOML value, None removes the key)."""
    sections = {name: dict(entries) for name, entries in BASE.items()}
    for section, entries in changes.items():
        target = sections.setdefault(section, {})
        for key, value in entries.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    lines = []
    for section, entries in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
    return "\n".join(lines) + "\n"


# (id, changes, a fragment the error line must contain)
BAD = [
    # types: booleans true/false only, strict integers and numbers, strings, lists
    ("weights-no", {"design": {"weights": '"no"'}}, "design.weights must be true or false"),
    ("weights-0", {"design": {"weights": "0"}}, "got 0"),
    ("weights-yes", {"design": {"weights": '"yes"'}}, "got 'yes'"),
    ("honest-1", {"report": {"honest": "1"}}, "report.honest must be true or false"),
    ("conflicts-str", {"design": {"allow_conflicts": '"true"'}}, "design.allow_conflicts"),
    ("bootstrap-str", {"inference": {"bootstrap": '"999"'}}, "inference.bootstrap must be an"),
    ("bootstrap-float", {"inference": {"bootstrap": "99.5"}}, "got 99.5"),
    ("bootstrap-bool", {"inference": {"bootstrap": "true"}}, "got True"),
    ("alpha-str", {"inference": {"alpha": '"x"'}}, "inference.alpha must be a number"),
    ("alpha-range", {"inference": {"alpha": "1.5"}}, "inference.alpha"),
    ("alpha-nan", {"inference": {"alpha": "nan"}}, "got nan"),
    ("seed-str", {"data": {"seed": '"abc"'}}, "data.seed must be an integer"),
    ("inference-seed-float", {"inference": {"seed": "1.5"}}, "inference.seed"),
    ("inference-seed-neg", {"inference": {"seed": "-1"}}, "inference.seed must be an integer >= 0"),
    ("data-seed-neg", {"data": {"seed": "-5"}}, "data.seed must be an integer >= 0"),
    ("populations-int", {"design": {"populations": "5"}}, "design.populations must be a list"),
    ("methods-mixed", {"design": {"methods": '["cs", 3]'}}, "design.methods must be a list"),
    ("window-float", {"design": {"window": "[-3.0, 4]"}}, "design.window must be two integers"),
    ("window-one", {"design": {"window": "[-3]"}}, "design.window"),
    ("anticipation-neg", {"design": {"anticipation": "-1"}}, "non-negative"),
    ("draws-one", {"design": {"calendar_draws": "1"}}, "design.calendar_draws"),
    # unknown sections and keys, with the allowed keys and a did-you-mean
    ("key-typo", {"design": {"windows": "[-3, 4]"}}, "did you mean 'window'"),
    ("section-typo", {"desgin": {"window": "[-3, 4]"}}, "did you mean 'design'"),
    ("data-key", {"data": {"sed": "1"}}, "unknown key 'sed' in [data]"),
    # values
    ("control", {"design": {"control": '"nevr"'}}, "did you mean 'never'"),
    ("cluster", {"design": {"cluster": '"region"'}}, "design.cluster"),
    ("preset", {"design": {"preset": '"isf2019"'}}, "design.preset"),
    ("population", {"design": {"populations": '["barn"]'}}, "unknown population(s) ['barn']"),
    ("outcome", {"design": {"outcomes": '["sjukskriven"]'}}, "unknown outcome(s)"),
    ("method", {"design": {"methods": '["twfee"]'}}, "did you mean 'twfe'"),
    ("methods-empty", {"design": {"methods": "[]"}}, "design.methods is empty"),
    ("adjust", {"inference": {"adjust": '"sidak"'}}, "inference.adjust"),
    ("wild", {"inference": {"wild_bootstrap": "50"}}, "inference.wild_bootstrap"),
    ("language", {"report": {"language": '"de"'}}, "report.language"),
    # rules across entries
    ("window-sign", {"design": {"window": "[0, 4]"}}, "lo < 0 <= hi"),
    ("event-times", {"design": {"event_times": "[0, 6]"}}, "design.event_times [0, 6]"),
    ("event-times-preset", {"design": {"window": "[-3, 2]", "event_times": None}}, "0..window"),
    ("romano-wolf-draws", {"inference": {"bootstrap": "50"}}, "bootstrap >= 99"),
    ("uvas", {"design": {"outcomes": '["uvas"]'}}, "uvas only for unga"),
    ("flows", {"design": {"outcomes": '["kvar_i_stod"]'}}, 'data.source = "microdata"'),
    ("microdata-keys", {"data": {"engine": '"spark"'}}, "apply only to"),
    ("microdata-path", {"data": {"source": '"microdata"'}}, "needs data.path"),
    (
        "calendar-synthetic",
        {"data": {"source": '"panel.csv"'}, "design": {"calendar": '"synthetic"'}},
        "only for",
    ),  # fmt: skip
    # every method's options (finsam_eval.estimators.spec.EstimationSpec.build, CS's own check)
    ("twfe-est-method", {"design": {"est_method": '"ipw"'}}, "est_method='ipw'"),
    ("cs-est-method", {"design": {"methods": '["cs"]', "est_method": '"ols"'}}, "'ols'"),
    ("cs-base-period", {"design": {"methods": '["cs"]', "base_period": '"fixed"'}}, "'fixed'"),
    ("sa-base-period", {"design": {"methods": '["sa"]', "base_period": '"fixed"'}}, "'fixed'"),
    (
        "twfe-reference",
        {"design": {"anticipation": "3"}},
        "reference period -4 lies outside the window (-3, 4)",
    ),  # fmt: skip
    (
        "stacked-reference",
        {"design": {"methods": '["stacked"]', "anticipation": "3"}},
        "must contain the reference period -4",
    ),  # fmt: skip
    (
        "dcdh-anticipation",
        {"design": {"preset": '"all_cohorts"', "methods": '["dcdh"]', "anticipation": "1"}},
        "has no anticipation option",
    ),  # fmt: skip
    # checks of the loaded data, before estimating
    (
        "anticipation-too-long",
        {"design": {"methods": '["cs"]', "anticipation": "20"}},
        "design.anticipation = 20 leaves no cohort a reference period",
    ),  # fmt: skip
    (
        "window-too-long",
        {"design": {"window": "[-3, 30]", "event_times": "[0, 4]"}},
        "design.window [-3, 30] is longer",
    ),  # fmt: skip
    ("missing-source", {"data": {"source": '"no_such_panel.csv"'}}, "no_such_panel.csv"),
    (
        "missing-calendar",
        {"design": {"calendar": '"no_such_calendar.csv"'}},
        "no_such_calendar.csv",
    ),  # fmt: skip
    (
        "stacked-window",
        {"design": {"methods": '["stacked"]', "window": "[-10, 10]"}},
        "method 'stacked' keeps no cohort",
    ),  # fmt: skip
    ("dcdh-unbalanced", {"design": {"methods": '["twfe", "dcdh"]'}}, "need a balanced panel"),
    ("draw-memory", {"inference": {"bootstrap": "2000000000"}}, "GiB"),
]


def _lines(command: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / f"{command}.toml"
    path.write_text(text, encoding="utf-8")
    argv = [command, "--quiet", "--config", str(path)]
    out = tmp_path / "out"
    if command == "run":
        argv += ["--out", str(out)]
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    prefix = f"finsam-eval {command}: error: "
    lines = captured.err.strip().splitlines()
    assert lines and all(line.startswith(prefix) for line in lines), captured.err
    if command == "run":
        assert not out.exists()
    return code, [line.removeprefix(prefix) for line in lines]


@pytest.mark.parametrize(("changes", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validate_and_run_refuse_the_same_configs(
    changes: dict, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _toml(changes)
    code_v, lines_v = _lines("validate", text, tmp_path, capsys)
    code_r, lines_r = _lines("run", text, tmp_path, capsys)
    assert (code_v, code_r) == (2, 2)
    assert lines_v == lines_r
    assert any(fragment in line for line in lines_v), lines_v


def test_the_base_config_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(_toml({}), encoding="utf-8")
    assert main(["validate", "--config", str(path)]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_every_problem_gets_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _toml(
        {
            "design": {"weights": '"no"', "control": '"always"'},
            "inference": {"alpha": "0", "bootstrap": '"999"'},
        }
    )
    for command in ("validate", "run"):
        code, lines = _lines(command, text, tmp_path, capsys)
        assert code == 2 and len(lines) == 4, lines
        for key in ("design.weights", "design.control", "inference.alpha", "inference.bootstrap"):
            assert sum(key in line for line in lines) == 1, (key, lines)


def test_balanced_only_lists_the_methods_that_refuse_unbalanced_panels() -> None:
    """The registry fact balanced_only (the pipeline's early check) matches what the estimators do."""
    world = series_world("man", "af_till_arbete")
    panel = to_panel(world, draw_shares(world, world.effect, replication_seeds(1, 1))[0])
    # the 2012 cohort's rows from joining on removed: an unbalanced panel, as preset "isf" makes
    panel = panel[~((panel["cohort"] == 2012) & (panel["year"] >= 2012))]
    refusing = []
    for method in sorted(METHODS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # dropped units, few pre-periods
                estimate(panel, method=method, unbalanced="keep", window=(-3, 3))
        except ValueError as error:
            assert "balanced" in str(error)
            refusing.append(method)
    assert refusing, (
        "no estimator refuses an unbalanced panel: drop the registry fact balanced_only"
    )
    assert sorted(balanced_only_methods()) == refusing


def test_unknown_key_lists_the_allowed_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines = _lines("validate", _toml({"inference": {"alpah": "0.1"}}), tmp_path, capsys)
    assert lines == [
        "invalid analysis configuration: unknown key 'alpah' in [inference] (did you mean "
        "'alpha'?); allowed: ['bootstrap', 'alpha', 'adjust', 'family', 'seed', 'wild_bootstrap']"
    ]


def test_a_bad_calendar_file_is_refused_by_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calendar = tmp_path / "calendar.csv"
    pd.DataFrame({"kommun_kod": ["0114"], "cohort": ["abc"]}).to_csv(calendar, index=False)
    text = _toml({"design": {"calendar": f'"{calendar.as_posix()}"'}})
    code_v, lines_v = _lines("validate", text, tmp_path, capsys)
    code_r, lines_r = _lines("run", text, tmp_path, capsys)
    assert (code_v, code_r) == (2, 2) and lines_v == lines_r
    assert "cohort must be a whole year" in lines_v[0] and "'abc'" in lines_v[0]
