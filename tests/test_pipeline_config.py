"""Analysis configuration: defaults, parsing, and validation errors that name the offending entry."""

from __future__ import annotations

from pathlib import Path

import pytest

import finsam_eval
from finsam_eval.estimators import METHODS
from finsam_eval.panel.populations import OUTCOMES, POPULATIONS
from finsam_eval.pipeline import AnalysisConfig, ConfigError, load_config


def test_default_is_the_isf_design() -> None:
    config = load_config(None)
    assert config.source == "synthetic"
    assert config.populations == list(POPULATIONS)
    assert config.outcomes == "isf"
    # 5 outcomes for alla, kvinnor, man; 6 for unga (uvas); 4 for aldre (no studier)
    assert len(config.series()) == 25
    assert ("unga", "uvas") in config.series()
    assert ("aldre", "studier") not in config.series()
    assert ("alla", "uvas") not in config.series()
    assert config.window == (-5, 6)
    assert config.event_times == (0, 6)
    assert config.cluster_column == "cluster_kommun"


def test_public_api_exposes_load_config() -> None:
    assert finsam_eval.load_config is load_config
    assert isinstance(finsam_eval.load_config(), AnalysisConfig)


def test_text_and_file_give_the_same_config(tmp_path: Path) -> None:
    text = '[design]\npopulations = ["unga"]\noutcomes = ["uvas", "sjukpenning"]\n'
    path = tmp_path / "design.toml"
    path.write_text(text, encoding="utf-8")
    from_file = load_config(path)
    from_text = load_config(text=text)
    assert from_file.hash == from_text.hash
    # series come in ISF order whatever the order in the file
    assert from_file.series() == [("unga", "sjukpenning"), ("unga", "uvas")]
    assert from_file.text == text


def test_hash_ignores_formatting_but_not_values() -> None:
    a = load_config(text="[inference]\nbootstrap = 199\n")
    b = load_config(text="# comment\n[inference]\nbootstrap=199\n\n")
    c = load_config(text="[inference]\nbootstrap = 299\n")
    assert a.hash == b.hash != c.hash


def test_strings_are_promoted_to_lists() -> None:
    config = load_config(text='[design]\npopulations = "man"\nmethods = "twfe"\n')
    assert config.populations == ["man"]
    assert config.methods == ["twfe"]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            '[design]\noutcomes = ["sjukpenning", "sjukskriven"]\n',
            ["unknown outcome", "sjukskriven"],
        ),
        ('[design]\npopulations = ["alla", "barn"]\n', ["unknown population", "barn"]),
        (
            '[design]\npopulations = ["alla", "unga"]\noutcomes = ["uvas"]\n',
            ["uvas only for unga", "('alla', 'uvas')"],
        ),
        (
            '[design]\npopulations = ["aldre"]\noutcomes = ["sjukpenning", "studier"]\n',
            ["studier not for aldre", "('aldre', 'studier')"],
        ),
        ('[design]\noutcomes = "all"\n', ["design.outcomes", "'all'"]),
        ('[design]\nmethods = ["twfe", "magic"]\n', ["unknown method", "magic"]),
        ("[design]\nmethods = []\n", ["design.methods is empty"]),
        ('[design]\ncontrol = "always"\n', ["design.control", "'always'"]),
        ('[design]\ncluster = "region"\n', ["design.cluster", "'region'"]),
        ("[design]\nwindow = [0, 6]\n", ["design.window", "[0, 6]"]),
        ("[design]\nwindow = [-5, 3]\nevent_times = [0, 6]\n", ["design.event_times", "[0, 6]"]),
        ("[design]\nwindow = [-5]\n", ["design.window must be two integers"]),
        ('[design]\nevent_times = [0, "6"]\n', ["design.event_times must be two integers"]),
        ('[inference]\nadjust = "sidak"\n', ["inference.adjust", "'sidak'"]),
        ('[inference]\nfamily = "method"\n', ["inference.family", "'method'"]),
        ("[inference]\nbootstrap = 50\n", ["romano_wolf", "bootstrap >= 99"]),
        ("[inference]\nalpha = 1.5\n", ["inference.alpha", "1.5"]),
        ("[inference]\nwild_bootstrap = 50\n", ["inference.wild_bootstrap", ">= 99", "50"]),
        ("[inference]\nwild_bootstrap = true\n", ["inference.wild_bootstrap", "True"]),
        ("[design]\nwindows = [-5, 6]\n", ["unknown key 'windows' in [design]"]),
        ("[data]\nsource = 'synthetic'\nsed = 1\n", ["unknown key 'sed' in [data]"]),
        ("[estimation]\nmethods = ['cs']\n", ["unknown configuration section [estimation]"]),
        ("design = 3\n", ["[design]"]),
        ('[design]\npreset = "isf2019"\n', ["design.preset", "'isf2019'", "all_cohorts"]),
        ('[data]\nsource = "panel.csv"\n[design]\ncalendar = "synthetic"\n', ["only for"]),
        ("[design]\ncalendar_draws = 1\n", ["design.calendar_draws", ">= 2"]),
        ("[design]\ncalendar_draws = true\n", ["design.calendar_draws"]),
        ('[design]\ncalendar_seed = "a"\n', ["design.calendar_seed"]),
        ('[design]\nallow_conflicts = "yes"\n', ["design.allow_conflicts", "true or false"]),
        ('[design]\ntreatment_date = "start"\n', ["design.treatment_date", "'start'"]),
        ('[design]\ngoteborg = "partial"\n', ["design.goteborg", "'partial'"]),
        ("[design]\ncalendar = 3\n", ["design.calendar", "path"]),
        ('[report]\nlanguage = "de"\n', ["report.language must be 'sv' or 'en', got 'de'"]),
        ("[report]\nhonest = 1\n", ["report.honest must be true or false"]),
        ("[report]\npdf = true\n", ["unknown key 'pdf' in [report]"]),
        ('[data]\nsource = "microdata"\n', ["needs data.path"]),
        ('[data]\nsource = "microdata"\npath = "x"\nengine = "polars"\n', ["engine"]),
        ('[design]\noutcomes = ["stod_till_arbete"]\n', ["person-year data"]),
    ],
)
def test_invalid_entries_are_named(text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(text=text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_every_problem_is_reported_at_once() -> None:
    text = '[design]\npopulations = ["barn"]\ncontrol = "always"\n[inference]\nalpha = 0\n'
    message = str(pytest.raises(ConfigError, load_config, text=text).value)
    assert "barn" in message and "design.control" in message and "inference.alpha" in message


def test_bad_toml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(text="[design\npopulations = alla\n")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read configuration") as info:
        load_config(missing)
    assert "nope.toml" in str(info.value)


def test_config_error_is_a_value_error() -> None:
    # the CLI turns ValueErrors into one-line messages with exit code 2
    assert issubclass(ConfigError, ValueError)


def test_every_isf_outcome_is_known() -> None:
    config = load_config(text=f"[design]\noutcomes = {list(OUTCOMES[:4])!r}\n".replace("'", '"'))
    assert {o for _, o in config.series()} == set(OUTCOMES[:4])


class TestCheckWindow:
    years = range(1998, 2019)
    cohorts = [0, 2005, 2008, 2015]

    def test_default_window_fits_the_synthetic_data(self) -> None:
        load_config(None).check_window(self.years, self.cohorts)

    def test_too_many_post_periods(self) -> None:
        # the earliest cohort (2005) is observed at most 13 years after joining
        config = load_config(text="[design]\nwindow = [-5, 14]\nevent_times = [0, 6]\n")
        with pytest.raises(ConfigError, match=r"design.window \[-5, 14\] is longer") as info:
            config.check_window(self.years, self.cohorts)
        message = str(info.value)
        assert "1998–2018" in message and "-17 to 13" in message

    def test_too_many_pre_periods(self) -> None:
        config = load_config(text="[design]\nwindow = [-18, 6]\n")
        with pytest.raises(ConfigError, match=r"design.window \[-18, 6\]"):
            config.check_window(self.years, self.cohorts)

    def test_exactly_the_longest_window_is_allowed(self) -> None:
        load_config(text="[design]\nwindow = [-17, 13]\n").check_window(self.years, self.cohorts)

    def test_no_treated_kommuner(self) -> None:
        with pytest.raises(ConfigError, match="no treated kommuner"):
            load_config(None).check_window(self.years, [0])


def test_methods_in_the_registry_are_accepted() -> None:
    for method in sorted(METHODS):
        assert load_config(text=f'[design]\nmethods = ["{method}"]\n').methods == [method]


def test_default_design_is_isf_design() -> None:
    # the pipeline's default is finsam_eval.isf_design() (checked against seed 001 in
    # tests/test_design.py): its comparison, window and follow-up years
    from finsam_eval.design import isf_design

    design = isf_design()
    config = load_config(None)
    assert config.preset == "isf"
    assert config.design() == design
    assert config.control == design.control == "notyet"
    assert config.window == design.window
    assert config.event_times == (0, design.follow_up) == (0, 6)


def test_explicit_keys_override_the_preset() -> None:
    config = load_config(
        text='[design]\ncontrol = "never"\nwindow = [-3, 4]\nevent_times = [0, 4]\n'
    )
    assert (config.control, config.window, config.event_times) == ("never", (-3, 4), (0, 4))
    assert config.preset == "isf"


def test_all_cohorts_is_the_named_alternative() -> None:
    config = load_config(text='[design]\npreset = "all_cohorts"\n')
    assert config.design().cohorts is None
    assert config.design().name == "all_cohorts"


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("", "synthetic"),
        ('[design]\ncalendar = "documented"\n', "documented"),
        ('[data]\nsource = "panel.csv"\n', "documented"),
        ('[data]\nsource = "panel.parquet"\n[design]\ncalendar = "my_calendar.csv"\n', "user"),
    ],
)
def test_calendar_mode_defaults(text: str, mode: str) -> None:
    # real sources never run without a calendar: "documented" unless a file is given
    config = load_config(text=text)
    assert config.calendar_mode == mode
    assert config.calendar in ("synthetic", "documented", "my_calendar.csv")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        # booleans are true/false only: "no" is a non-empty string, which Python reads as true
        ('[design]\nweights = "no"\n', ["design.weights", "true or false", "'no'"]),
        ("[design]\nweights = 0\n", ["design.weights", "true or false", "got 0"]),
        ('[report]\nhonest = "false"\n', ["report.honest", "true or false", "'false'"]),
        ('[inference]\nalpha = "x"\n', ["inference.alpha", "a number", "'x'"]),
        ('[inference]\nbootstrap = "999"\n', ["inference.bootstrap", "an integer", "'999'"]),
        ("[inference]\nbootstrap = 99.5\n", ["inference.bootstrap", "an integer", "99.5"]),
        ("[design]\npopulations = 5\n", ["design.populations", "a list of strings", "got 5"]),
        ('[design]\nmethods = ["cs", 3]\n', ["design.methods", "a list of strings"]),
        ('[data]\nseed = "abc"\n', ["data.seed", "an integer", "'abc'"]),
        ("[inference]\nseed = 1.5\n", ["inference.seed", "an integer", "1.5"]),
        ("[design]\nanticipation = -1\n", ["design.anticipation", "non-negative", "-1"]),
        ("[design]\ncluster = 1\n", ["design.cluster", "a string", "got 1"]),
    ],
)
def test_wrong_types_are_named_with_the_rule(text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(text=text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
