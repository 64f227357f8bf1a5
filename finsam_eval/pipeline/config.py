"""Analysis configuration (TOML) for an ISF-style evaluation, validated before anything runs.

A configuration names the data, the populations × outcomes, the estimators and the inference.
Without a file the default is the ISF 2019 design on the bundled synthetic data::

    [data]
    source = "synthetic"          # or a path to a built panel (CSV or parquet), or "microdata"
    seed = 20190601               # synthetic data seed
    # source = "microdata": person-year register data (docs/microdata.md)
    # path = "persons/"           # parquet/CSV file or (hive-partitioned) folder
    # engine = "duckdb"           # or "spark"
    # memory_limit = "2GB"        # DuckDB's memory bound (it spills to disk beyond it)
    # cohorts = "cohorts.csv"     # kommun_kod, cohort, forbund; absent: outcomes only

    [design]
    preset = "isf"                # "isf": cohorts 2005–2010 (finsam_eval.isf_design());
                                  # "all_cohorts": every cohort is estimated
    calendar = "synthetic"        # default: "synthetic" for the synthetic source, else
                                  # "documented"; or the path of a user calendar CSV
    calendar_draws = 50           # "documented": compatible calendars pooled (Rubin's rules)
    calendar_seed = 1             # "documented": seed of compatible_calendars
    allow_conflicts = false       # user calendar: run despite conflicts (listed in the manifest)
    allow_synthetic_calendar = false  # accept a calendar file marked origin = "synthetic"
    treatment_date = "formation"  # or "activity" (start of activity where a seed dates both)
    goteborg = "treated"          # Göteborg's partial coverage: "treated", "excluded", "untreated"
                                  # (both: options of the calendar model, for documented and
                                  # user calendars)
    populations = ["alla", "kvinnor", "man", "unga", "aldre"]
    outcomes = "isf"              # every outcome ISF defined for each population, or a list
    methods = ["twfe", "cs", "sa", "imputation"]
    control = "notyet"            # "never" or "notyet" (default: the preset's)
    window = [-5, 6]              # event-time window (TWFE bins its end points; default:
                                  # the preset's leads and follow-up)
    event_times = [0, 6]          # follow-up years reported in the ISF tables (default:
                                  # 0..the preset's follow-up)
    weights = false               # true: weight kommuner by population (the denominator)
    cluster = "kommun"            # "kommun", "forbund" or "lan"
    anticipation = 0
    base_period = "varying"
    est_method = "dr"

    [inference]
    bootstrap = 999
    alpha = 0.05
    adjust = "romano_wolf"        # "romano_wolf", "holm", "bonferroni", "bh" or "none"
    family = "population"         # family for error control: "population", "outcome", "all"
    seed = 1
    wild_bootstrap = 0            # B > 0: also wild-bootstrap p-values (few clusters, e.g. län)

    [report]
    language = "sv"               # "sv" or "en": every text of report.html, tables and figures
    honest = true                 # HonestDiD breakdown values in the summary (headline method)
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finsam_eval.estimators.registry import DEFAULT_RUN_METHODS
from finsam_eval.microdata.schema import TRANSITION_OUTCOMES, TRANSITIONS
from finsam_eval.panel.populations import OUTCOMES, POPULATIONS

__all__ = ["AnalysisConfig", "ConfigError", "load_config"]

CLUSTERS = {"kommun": "cluster_kommun", "forbund": "cluster_forbund", "lan": "cluster_lan"}
ADJUSTMENTS = ("romano_wolf", "holm", "bonferroni", "bh", "none")
ENGINES = ("duckdb", "spark")
_MICRODATA_KEYS = ("path", "engine", "memory_limit", "cohorts")
FAMILIES = ("population", "outcome", "all")
PRESETS = ("isf", "all_cohorts")
# the calendar model's options (finsam_eval.registry.calendar_model)
TREATMENT_DATES = ("formation", "activity")
GOTEBORG = ("treated", "excluded", "untreated")
#: Calendar modes besides the path of a user calendar CSV
CALENDAR_MODES = ("documented", "synthetic")


class ConfigError(ValueError):
    """An analysis configuration that cannot run; the message says which entry and why."""


@dataclass
class AnalysisConfig:
    """A validated analysis configuration (see the module docstring for the TOML layout)."""

    source: str = "synthetic"
    seed: int = 20190601
    path: str = ""
    engine: str = "duckdb"
    memory_limit: str = "2GB"
    cohorts: str = ""
    preset: str = "isf"
    # None: "synthetic" for the synthetic source, "documented" for any other (resolved on load)
    calendar: str | None = None
    calendar_draws: int = 50
    calendar_seed: int = 1
    allow_conflicts: bool = False
    allow_synthetic_calendar: bool = False
    treatment_date: str = "formation"
    goteborg: str = "treated"
    populations: list[str] = field(default_factory=lambda: list(POPULATIONS))
    outcomes: str | list[str] = "isf"
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_RUN_METHODS))
    control: str = "notyet"
    window: tuple[int, int] = (-5, 6)
    event_times: tuple[int, int] = (0, 6)
    weights: bool = False
    cluster: str = "kommun"
    anticipation: int = 0
    base_period: str = "varying"
    est_method: str = "dr"
    bootstrap: int = 999
    alpha: float = 0.05
    adjust: str = "romano_wolf"
    family: str = "population"
    inference_seed: int = 1
    wild_bootstrap: int = 0
    report_language: str = "sv"
    report_honest: bool = True
    text: str = ""

    def series(self) -> list[tuple[str, str]]:
        """(population, outcome) pairs to estimate, in ISF order."""
        pairs = []
        for population in self.populations:
            defined = POPULATIONS[population].outcomes
            wanted = defined if self.outcomes == "isf" else self.outcomes
            pairs.extend((population, o) for o in OUTCOMES if o in wanted and o in defined)
            if self.outcomes != "isf":  # transition outcomes (source = "microdata") by name
                pairs.extend(
                    (population, o)
                    for o in TRANSITION_OUTCOMES
                    if o in wanted and population in TRANSITIONS[o].populations
                )
        return pairs

    def design(self):
        """The evaluation design of ``preset`` (:mod:`finsam_eval.design`)."""
        from finsam_eval.design import all_cohorts_design, isf_design

        return isf_design() if self.preset == "isf" else all_cohorts_design()

    def calendar_model(self):
        """The documented calendar model under this run's treatment date and Göteborg choice."""
        from finsam_eval.registry import calendar_model

        return calendar_model(treatment_date=self.treatment_date, goteborg=self.goteborg)

    @property
    def calendar_mode(self) -> str:
        """The calendar mode: "synthetic", "documented" or "user" (a calendar CSV's path)."""
        calendar = self.calendar or ("synthetic" if self.source == "synthetic" else "documented")
        return calendar if calendar in CALENDAR_MODES else "user"

    @property
    def cluster_column(self) -> str:
        return CLUSTERS[self.cluster]

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical configuration (not of the file's formatting)."""
        # the microdata entries count only for source = "microdata", so that every other
        # configuration keeps the hash it had before they existed
        skip = {"text"} | (set() if self.source == "microdata" else set(_MICRODATA_KEYS))
        canonical = repr(sorted((k, v) for k, v in asdict(self).items() if k not in skip))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("text")
        out["window"] = list(self.window)
        out["event_times"] = list(self.event_times)
        return out

    def validate(self, available_methods: list[str] | None = None) -> None:
        """Raise ConfigError naming the first problem found with every entry checked."""
        # types first: the value rules below compare and iterate, which a wrong type would turn
        # into a traceback
        problems = _type_problems(self)
        if problems:
            raise ConfigError("invalid analysis configuration:\n- " + "\n- ".join(problems))
        unknown = [p for p in self.populations if p not in POPULATIONS]
        if unknown:
            problems.append(f"unknown population(s) {unknown}; known: {list(POPULATIONS)}")
        if self.outcomes != "isf":
            if isinstance(self.outcomes, str):
                problems.append(f"design.outcomes must be 'isf' or a list, got {self.outcomes!r}")
            else:
                bad = [
                    o for o in self.outcomes if o not in OUTCOMES and o not in TRANSITION_OUTCOMES
                ]
                if bad:
                    problems.append(
                        f"unknown outcome(s) {bad}; known: {[*OUTCOMES, *TRANSITION_OUTCOMES]}"
                    )
                flows = [o for o in self.outcomes if o in TRANSITION_OUTCOMES]
                if flows and self.source != "microdata":
                    problems.append(
                        f"transition outcomes {flows} need person-year data: "
                        'data.source = "microdata"'
                    )
                undefined = [
                    (p, o)
                    for p in self.populations
                    if p in POPULATIONS
                    for o in self.outcomes
                    if o in OUTCOMES and o not in POPULATIONS[p].outcomes
                ]
                if undefined:
                    problems.append(
                        "combinations the ISF design does not define (uvas only for unga; "
                        f'studier not for aldre): {undefined}; use outcomes = "isf" for every '
                        "defined combination"
                    )
        if self.source == "microdata":
            if not self.path:
                problems.append('data.source = "microdata" needs data.path (file or folder)')
            if self.engine not in ENGINES:
                problems.append(f"data.engine must be one of {ENGINES}, got {self.engine!r}")
        elif self.path or self.cohorts or self.engine != "duckdb" or self.memory_limit != "2GB":
            problems.append(
                "data.path, data.engine, data.memory_limit and data.cohorts apply only to "
                'data.source = "microdata"'
            )
        if available_methods is not None:
            bad = [m for m in self.methods if m not in available_methods]
            if bad:
                problems.append(f"unknown method(s) {bad}; available: {available_methods}")
        if not self.methods:
            problems.append("design.methods is empty")
        if self.preset not in PRESETS:
            problems.append(f"design.preset must be one of {list(PRESETS)}, got {self.preset!r}")
        if self.calendar is not None and not isinstance(self.calendar, str):
            problems.append(
                f"design.calendar must be {' or '.join(map(repr, CALENDAR_MODES))} or the path "
                f"of a calendar CSV, got {self.calendar!r}"
            )
        elif self.calendar == "synthetic" and self.source != "synthetic":
            problems.append(
                "design.calendar = 'synthetic' is the synthetic world's own calendar and only for "
                f"data.source = 'synthetic' (source is {self.source!r}); real data run over the "
                "documented calendars (calendar = 'documented') or a user calendar (its path)"
            )
        draws = self.calendar_draws
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 2:
            problems.append(
                "design.calendar_draws must be a whole number >= 2 (Rubin's rules need a "
                f"between-calendar variance), got {self.calendar_draws!r}"
            )
        if isinstance(self.calendar_seed, bool) or not isinstance(self.calendar_seed, int):
            problems.append(f"design.calendar_seed must be an integer, got {self.calendar_seed!r}")
        if self.treatment_date not in TREATMENT_DATES:
            problems.append(
                f"design.treatment_date must be one of {list(TREATMENT_DATES)}, got "
                f"{self.treatment_date!r}"
            )
        if self.goteborg not in GOTEBORG:
            problems.append(
                f"design.goteborg must be one of {list(GOTEBORG)}, got {self.goteborg!r}"
            )
        for key in ("allow_conflicts", "allow_synthetic_calendar"):
            if not isinstance(getattr(self, key), bool):
                problems.append(f"design.{key} must be true or false, got {getattr(self, key)!r}")
        if self.control not in ("never", "notyet"):
            problems.append(f"design.control must be 'never' or 'notyet', got {self.control!r}")
        if self.cluster not in CLUSTERS:
            problems.append(f"design.cluster must be one of {list(CLUSTERS)}, got {self.cluster!r}")
        lo, hi = self.window
        if not lo < 0 <= hi:
            problems.append(f"design.window must satisfy lo < 0 <= hi, got {list(self.window)}")
        first, last = self.event_times
        if not 0 <= first <= last <= hi:
            problems.append(
                f"design.event_times {list(self.event_times)} must lie within 0..window end {hi}"
            )
        if self.adjust not in ADJUSTMENTS:
            problems.append(f"inference.adjust must be one of {ADJUSTMENTS}, got {self.adjust!r}")
        if self.family not in FAMILIES:
            problems.append(f"inference.family must be one of {FAMILIES}, got {self.family!r}")
        if self.adjust == "romano_wolf" and self.bootstrap < 99:
            problems.append("inference.adjust = 'romano_wolf' needs inference.bootstrap >= 99")
        wild = self.wild_bootstrap
        if isinstance(wild, bool) or not isinstance(wild, int) or (wild != 0 and wild < 99):
            problems.append(
                "inference.wild_bootstrap must be 0 (off) or a number of draws >= 99, got "
                f"{self.wild_bootstrap!r}"
            )
        for key, name in (
            ("anticipation", "design.anticipation"),
            ("bootstrap", "inference.bootstrap"),
        ):
            if getattr(self, key) < 0:
                problems.append(
                    f"{name} must be a non-negative integer, got {getattr(self, key)!r}"
                )
        if not 0 < self.alpha < 1:
            problems.append(f"inference.alpha must be in (0, 1), got {self.alpha}")
        if not isinstance(self.report_honest, bool):
            problems.append(f"report.honest must be true or false, got {self.report_honest!r}")
        if self.report_language not in ("sv", "en"):
            problems.append(f"report.language must be 'sv' or 'en', got {self.report_language!r}")
        if problems:
            raise ConfigError("invalid analysis configuration:\n- " + "\n- ".join(problems))

    def check_window(self, years: list[int] | range, cohorts: list[int]) -> None:
        """Raise if the event-time window is longer than the data allow."""
        first, last = min(years), max(years)
        treated = [g for g in cohorts if g > 0]
        if not treated:
            raise ConfigError("the data have no treated kommuner (every cohort is 0)")
        longest_pre = max(g - first for g in treated)
        longest_post = max(last - g for g in treated)
        lo, hi = self.window
        if -lo > longest_pre or hi > longest_post:
            raise ConfigError(
                f"design.window {list(self.window)} is longer than the data allow: with years "
                f"{first}–{last} and cohorts {min(treated)}–{max(treated)} event times run from "
                f"{-longest_pre} to {longest_post}"
            )


_SECTIONS = {
    "data": {
        "source": "source",
        "seed": "seed",
        "path": "path",
        "engine": "engine",
        "memory_limit": "memory_limit",
        "cohorts": "cohorts",
    },
    "design": {
        "preset": "preset",
        "calendar": "calendar",
        "calendar_draws": "calendar_draws",
        "calendar_seed": "calendar_seed",
        "allow_conflicts": "allow_conflicts",
        "allow_synthetic_calendar": "allow_synthetic_calendar",
        "treatment_date": "treatment_date",
        "goteborg": "goteborg",
        "populations": "populations",
        "outcomes": "outcomes",
        "methods": "methods",
        "control": "control",
        "window": "window",
        "event_times": "event_times",
        "weights": "weights",
        "cluster": "cluster",
        "anticipation": "anticipation",
        "base_period": "base_period",
        "est_method": "est_method",
    },
    "inference": {
        "bootstrap": "bootstrap",
        "alpha": "alpha",
        "adjust": "adjust",
        "family": "family",
        "seed": "inference_seed",
        "wild_bootstrap": "wild_bootstrap",
    },
    "report": {"language": "report_language", "honest": "report_honest"},
}


#: The TOML type of every entry: "bool" (true/false only), "int" (an integer, not a boolean),
#: "number" (integer or float), "str", "strs" (a list of strings) or "str|strs"
_TYPES = {
    "source": "str",
    "seed": "int",
    "path": "str",
    "engine": "str",
    "memory_limit": "str",
    "cohorts": "str",
    "preset": "str",
    "calendar_draws": "int",
    "calendar_seed": "int",
    "allow_conflicts": "bool",
    "allow_synthetic_calendar": "bool",
    "treatment_date": "str",
    "goteborg": "str",
    "populations": "strs",
    "outcomes": "str|strs",
    "methods": "strs",
    "control": "str",
    "weights": "bool",
    "cluster": "str",
    "anticipation": "int",
    "base_period": "str",
    "est_method": "str",
    "bootstrap": "int",
    "alpha": "number",
    "adjust": "str",
    "family": "str",
    "inference_seed": "int",
    "wild_bootstrap": "int",
    "report_language": "str",
    "report_honest": "bool",
}
_RULES = {
    "bool": "true or false (a TOML boolean, unquoted)",
    "int": "an integer (unquoted)",
    "number": "a number (unquoted)",
    "str": "a string (quoted)",
    "strs": "a list of strings",
    "str|strs": "a string or a list of strings",
}


def _has_type(value: Any, kind: str) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return is_int
    if kind == "number":
        return is_int or (isinstance(value, float) and not isinstance(value, bool))
    if kind == "str":
        return isinstance(value, str)
    if kind == "strs":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return _has_type(value, "str") or _has_type(value, "strs")


def _type_problems(config: AnalysisConfig) -> list[str]:
    """One line per entry of the wrong type, naming the entry, its value and the rule."""
    problems = []
    for attribute, kind in _TYPES.items():
        value = getattr(config, attribute)
        if not _has_type(value, kind):
            name = next(
                f"{section}.{key}"
                for section, keys in _SECTIONS.items()
                for key, target in keys.items()
                if target == attribute
            )
            problems.append(f"{name} must be {_RULES[kind]}, got {value!r}")
    return problems


def load_config(path: str | Path | None = None, text: str | None = None) -> AnalysisConfig:
    """Read and validate an analysis configuration.

    Parameters
    ----------
    path
        A TOML file; None (and no ``text``) gives the default ISF 2019 design.
    text
        TOML text instead of a file.

    Raises
    ------
    ConfigError
        On unknown sections or keys, wrong types, or invalid values.
    """
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read configuration {path}: {error}") from error
    text = text or ""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"configuration is not valid TOML: {error}") from error
    values: dict[str, Any] = {}
    for section, entries in raw.items():
        if section not in _SECTIONS or not isinstance(entries, dict):
            raise ConfigError(
                f"unknown configuration section [{section}]; known: {list(_SECTIONS)}"
            )
        for key, value in entries.items():
            if key not in _SECTIONS[section]:
                raise ConfigError(
                    f"unknown key {key!r} in [{section}]; known: {list(_SECTIONS[section])}"
                )
            values[_SECTIONS[section][key]] = value
    for key in ("window", "event_times"):
        if key in values:
            value = values[key]
            if not (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int) for v in value)
            ):
                raise ConfigError(f"design.{key} must be two integers, got {value!r}")
            values[key] = tuple(value)
    if isinstance(values.get("populations"), str):
        values["populations"] = [values["populations"]]
    if isinstance(values.get("methods"), str):
        values["methods"] = [values["methods"]]
    if values.get("preset", "isf") in PRESETS:
        # the preset's design supplies the comparison, window and follow-up not set explicitly
        from finsam_eval.design import all_cohorts_design, isf_design

        design = isf_design() if values.get("preset", "isf") == "isf" else all_cohorts_design()
        values.setdefault("control", design.control)
        values.setdefault("window", tuple(design.window))
        values.setdefault("event_times", (0, design.follow_up))
    config = AnalysisConfig(**values, text=text)
    if config.calendar is None:
        # real sources never run without a calendar: the documented calendars by default
        config.calendar = "synthetic" if config.source == "synthetic" else "documented"
    from finsam_eval.estimators import METHODS

    config.validate(available_methods=sorted(METHODS))
    return config
