"""Analysis configuration (TOML) for an ISF-style evaluation, validated before anything runs.

The file is checked against a typed schema (:class:`ConfigFile`, pydantic v2, strict): booleans
are true/false only, integers unquoted integers, unknown sections and keys are refused with the
allowed keys and the closest match, and every problem is reported at once, one line each.

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

import difflib
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from finsam_eval.estimators.registry import DEFAULT_RUN_METHODS
from finsam_eval.microdata.schema import TRANSITION_OUTCOMES, TRANSITIONS
from finsam_eval.panel.populations import OUTCOMES, POPULATIONS

__all__ = ["AnalysisConfig", "ConfigError", "ConfigFile", "check_schema", "load_config"]

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
_CONTROLS = ("never", "notyet")
_BOOL = "true or false (a TOML boolean, unquoted)"
_SEED = "an integer >= 0 (unquoted; a numpy seed)"


class ConfigError(ValueError):
    """An analysis configuration that cannot run; the message says which entry and why.

    ``problems`` lists one line per problem (the command line prints each on its own line).
    """

    problems: list[str]

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]

    @classmethod
    def from_problems(cls, problems: list[str]) -> ConfigError:
        return cls("invalid analysis configuration:\n- " + "\n- ".join(problems), problems)


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
        """Raise ConfigError listing every problem, one line each (the schema :class:`ConfigFile`).

        ``available_methods`` defaults to the registered estimators
        (``finsam_eval.estimators.METHODS``).
        """
        check_schema(self.sections(), available_methods)

    def sections(self) -> dict[str, dict[str, Any]]:
        """The configuration as TOML sections (the inverse of :func:`load_config`'s mapping)."""
        out: dict[str, dict[str, Any]] = {}
        for section, keys in _SECTIONS.items():
            values = {}
            for key, attribute in keys.items():
                value = getattr(self, attribute)
                if key in ("window", "event_times") and isinstance(value, tuple):
                    value = list(value)
                if value is not None:
                    values[key] = value
            out[section] = values
        return out

    def check_window(self, years: list[int] | range, cohorts: list[int]) -> None:
        """Raise if the event-time window is longer than the data allow."""
        first, last = min(years), max(years)
        treated = [g for g in cohorts if g > 0]
        if not treated:
            raise ConfigError("the data have no treated kommuner (every cohort is 0)")
        longest_pre = max(g - first for g in treated)
        longest_post = max(last - g for g in treated)
        lo, hi = self.window
        if self.anticipation >= longest_pre:
            # the reference period -1 - anticipation must be observed for some cohort
            raise ConfigError(
                f"design.anticipation = {self.anticipation} leaves no cohort a reference period: "
                f"with years {first}–{last} and cohorts {min(treated)}–{max(treated)} it can be "
                f"at most {longest_pre - 1}"
            )
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


# ----------------------------------------------------------------------------------------------
# The schema: one pydantic model per section. Strict types (no "999" for an integer, no "no" or 0
# for a boolean), unknown keys refused, one rule per entry (its ``description``, quoted in the
# error); rules across entries are model validators. ``check_schema`` turns pydantic's errors
# into one line per problem naming the entry, its value and the rule.


def _one_of(values: tuple[str, ...] | list[str]) -> str:
    return f"a string, one of {list(values)}"


def _problem(message: str) -> PydanticCustomError:
    """A rule broken, as a complete one-line message (kept as is by :func:`check_schema`)."""
    return PydanticCustomError("config_rule", "{message}", {"message": message})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DataSection(_Section):
    """``[data]``: where the panel comes from."""

    source: str = Field("synthetic", description='a string: "synthetic", "microdata" or a path')
    seed: int = Field(20190601, ge=0, description=_SEED)
    path: str = Field("", description="a string (a file or folder of person-years)")
    engine: Literal[ENGINES] = Field("duckdb", description=_one_of(ENGINES))
    memory_limit: str = Field("2GB", description='a string such as "2GB"')
    cohorts: str = Field("", description="a string (the path of a cohorts CSV)")

    @model_validator(mode="after")
    def _microdata_keys(self) -> DataSection:
        if self.source == "microdata":
            if not self.path:
                raise _problem('data.source = "microdata" needs data.path (file or folder)')
        elif self.path or self.cohorts or self.engine != "duckdb" or self.memory_limit != "2GB":
            raise _problem(
                "data.path, data.engine, data.memory_limit and data.cohorts apply only to "
                'data.source = "microdata"'
            )
        return self


_STRS = "a list of strings"
_WINDOW = "two integers [lo, hi] with lo < 0 <= hi"


class DesignSection(_Section):
    """``[design]``: the design, the calendar, the series and the estimators."""

    preset: Literal[PRESETS] = Field("isf", description=_one_of(PRESETS))
    calendar: str | None = Field(
        None,
        description=f"{' or '.join(map(repr, CALENDAR_MODES))} or the path of a calendar CSV",
    )
    calendar_draws: int = Field(
        50,
        ge=2,
        description="a whole number >= 2 (Rubin's rules need a between-calendar variance)",
    )
    calendar_seed: int = Field(1, ge=0, description=_SEED)
    allow_conflicts: bool = Field(False, description=_BOOL)
    allow_synthetic_calendar: bool = Field(False, description=_BOOL)
    treatment_date: Literal[TREATMENT_DATES] = Field(
        "formation", description=_one_of(TREATMENT_DATES)
    )
    goteborg: Literal[GOTEBORG] = Field("treated", description=_one_of(GOTEBORG))
    populations: list[str] | str = Field(
        default_factory=lambda: list(POPULATIONS), description=f"{_STRS} (or one string)"
    )
    outcomes: str | list[str] = Field("isf", description=f'"isf" or {_STRS}')
    methods: list[str] | str = Field(
        default_factory=lambda: list(DEFAULT_RUN_METHODS),
        description=f"{_STRS} (or one string)",
    )
    control: Literal["never", "notyet"] | None = Field(None, description=_one_of(_CONTROLS))
    window: list[int] | None = Field(None, min_length=2, max_length=2, description=_WINDOW)
    event_times: list[int] | None = Field(
        None, min_length=2, max_length=2, description="two integers [first, last] in 0..hi"
    )
    weights: bool = Field(False, description=_BOOL)
    cluster: Literal[tuple(CLUSTERS)] = Field("kommun", description=_one_of(list(CLUSTERS)))
    anticipation: int = Field(0, ge=0, description="a non-negative integer (unquoted)")
    base_period: str = Field("varying", description="a string (a method option, checked there)")
    est_method: str = Field("dr", description="a string (a method option, checked there)")

    @field_validator("populations", mode="after")
    @classmethod
    def _known_populations(cls, value: list[str] | str) -> list[str]:
        value = [value] if isinstance(value, str) else value
        _check_known("design.populations", "population", value, list(POPULATIONS))
        return value

    @field_validator("outcomes", mode="after")
    @classmethod
    def _known_outcomes(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            if value != "isf":
                raise _problem(f"design.outcomes must be 'isf' or a list, got {value!r}")
            return value
        _check_known("design.outcomes", "outcome", value, [*OUTCOMES, *TRANSITION_OUTCOMES])
        return value

    @field_validator("methods", mode="after")
    @classmethod
    def _known_methods(cls, value: list[str] | str, info: ValidationInfo) -> list[str]:
        value = [value] if isinstance(value, str) else value
        if not value:
            raise _problem("design.methods is empty")
        available = (info.context or {}).get("methods")
        if available is None:
            from finsam_eval.estimators import METHODS

            available = sorted(METHODS)
        _check_known("design.methods", "method", value, list(available), "available")
        return value

    @field_validator("window", mode="after")
    @classmethod
    def _window(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not value[0] < 0 <= value[1]:
            raise _problem(f"design.window must be {_WINDOW}, got {value}")
        return value

    @model_validator(mode="after")
    def _across_entries(self) -> DesignSection:
        problems = []
        if self.event_times is not None:
            hi = self.window[1] if self.window is not None else None
            first, last = self.event_times
            if not 0 <= first <= last or (hi is not None and last > hi):
                end = f"window end {hi}" if hi is not None else "the window's end"
                problems.append(f"design.event_times {self.event_times} must lie within 0..{end}")
        if not isinstance(self.outcomes, str):
            undefined = [
                (p, o)
                for p in self.populations
                for o in self.outcomes
                if o in OUTCOMES and o not in POPULATIONS[p].outcomes
            ]
            if undefined:
                problems.append(
                    "design.outcomes: combinations the ISF design does not define (uvas only "
                    f'for unga; studier not for aldre): {undefined}; use outcomes = "isf" for '
                    "every defined combination"
                )
        if problems:
            raise _problem("\n".join(problems))
        return self


class InferenceSection(_Section):
    """``[inference]``: multiplier bootstrap, level, multiple-testing adjustment, wild bootstrap."""

    bootstrap: int = Field(999, ge=0, description="an integer >= 0 (multiplier draws)")
    alpha: float = Field(0.05, gt=0, lt=1, description="a number in (0, 1), e.g. 0.05")
    adjust: Literal[ADJUSTMENTS] = Field("romano_wolf", description=_one_of(ADJUSTMENTS))
    family: Literal[FAMILIES] = Field("population", description=_one_of(FAMILIES))
    seed: int = Field(1, ge=0, description=_SEED)
    wild_bootstrap: int = Field(
        0, description="0 (off) or a number of draws >= 99 (an unquoted integer)"
    )

    @field_validator("wild_bootstrap", mode="after")
    @classmethod
    def _wild(cls, value: int) -> int:
        if value != 0 and value < 99:
            raise ValueError("out of range")  # reported with the entry's rule
        return value

    @model_validator(mode="after")
    def _romano_wolf_draws(self) -> InferenceSection:
        if self.adjust == "romano_wolf" and self.bootstrap < 99:
            raise _problem(
                "inference.adjust = 'romano_wolf' needs inference.bootstrap >= 99, got "
                f"{self.bootstrap}"
            )
        return self


class ReportSection(_Section):
    """``[report]``: language and HonestDiD summary."""

    language: Literal["sv", "en"] = Field("sv", description="'sv' or 'en'")
    honest: bool = Field(True, description=_BOOL)


class ConfigFile(BaseModel):
    """The whole configuration file: four optional sections, nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True)

    data: DataSection = Field(default_factory=DataSection)
    design: DesignSection = Field(default_factory=DesignSection)
    inference: InferenceSection = Field(default_factory=InferenceSection)
    report: ReportSection = Field(default_factory=ReportSection)

    @model_validator(mode="after")
    def _across_sections(self) -> ConfigFile:
        problems = []
        source, design = self.data.source, self.design
        if design.calendar == "synthetic" and source != "synthetic":
            problems.append(
                "design.calendar = 'synthetic' is the synthetic world's own calendar and only "
                f"for data.source = 'synthetic' (source is {source!r}); real data run over the "
                "documented calendars (calendar = 'documented') or a user calendar (its path)"
            )
        if not isinstance(design.outcomes, str):
            flows = [o for o in design.outcomes if o in TRANSITION_OUTCOMES]
            if flows and source != "microdata":
                problems.append(
                    f"design.outcomes: transition outcomes {flows} need person-year data: "
                    'data.source = "microdata"'
                )
        if problems:
            raise _problem("\n".join(problems))
        return self


_SECTION_MODELS: dict[str, type[_Section]] = {
    "data": DataSection,
    "design": DesignSection,
    "inference": InferenceSection,
    "report": ReportSection,
}


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_known(
    entry: str, what: str, values: list[str], known: list[str], listed: str = "known"
) -> None:
    """Raise naming the values of ``entry`` not in ``known``, with the list and a near match."""
    bad = [v for v in values if v not in known]
    if bad:
        raise _problem(
            f"{entry}: unknown {what}(s) {bad}; {listed}: {known}{_did_you_mean(bad[0], known)}"
        )


def _error_line(error: Any, raw: Mapping[str, Any]) -> tuple[str, str]:
    """(entry, one line) for one pydantic error."""
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "config_rule":
        return ".".join(loc[:2]), str(error["ctx"]["message"])
    if not loc:
        return "", str(error["msg"])
    section = loc[0]
    if len(loc) == 1:
        if error["type"] == "extra_forbidden":
            return section, (
                f"unknown configuration section [{section}]; known: {list(_SECTION_MODELS)}"
                f"{_did_you_mean(section, list(_SECTION_MODELS))}"
            )
        return section, (
            f"[{section}] must be a table (a [{section}] section with key = value lines), got "
            f"{raw.get(section)!r}"
        )
    key = loc[1]
    fields = _SECTION_MODELS[section].model_fields
    if error["type"] == "extra_forbidden":
        return f"{section}.{key}", (
            f"unknown key {key!r} in [{section}]{_did_you_mean(key, list(fields))}; allowed: "
            f"{list(fields)}"
        )
    value = raw.get(section, {}).get(key)
    line = f"{section}.{key} must be {fields[key].description}, got {value!r}"
    if error["type"] == "literal_error" and isinstance(value, str):
        line += _did_you_mean(value, _choices(fields[key].annotation))
    return f"{section}.{key}", line


def _choices(annotation: Any) -> list[str]:
    """The strings of a ``Literal`` annotation (also inside ``Literal[...] | None``)."""
    out: list[str] = []
    for arg in get_args(annotation):
        out.extend([arg] if isinstance(arg, str) else _choices(arg))
    return out


def check_schema(raw: Mapping[str, Any], available_methods: list[str] | None = None) -> ConfigFile:
    """Validate TOML sections against :class:`ConfigFile`; raise one line per problem.

    Parameters
    ----------
    raw
        The parsed TOML (section -> key -> value).
    available_methods
        Registered method names; None reads ``finsam_eval.estimators.METHODS``.

    Raises
    ------
    ConfigError
        With ``problems``: one line per entry (its name, its value and the rule).
    """
    context = {"methods": available_methods} if available_methods is not None else None
    try:
        return ConfigFile.model_validate(raw, context=context)
    except ValidationError as error:
        lines: list[str] = []
        entries: set[str] = set()
        for item in error.errors():
            entry, line = _error_line(item, raw)
            if item["type"] != "config_rule":
                if entry in entries:  # a union (list or string) reports every branch
                    continue
                entries.add(entry)
            lines.extend(part for part in line.splitlines() if part not in lines)
        raise ConfigError.from_problems(lines) from None


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
        On unknown sections or keys, wrong types, or invalid values: every problem, one line
        each (``ConfigError.problems``).
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
    checked = check_schema(raw)
    values: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        model = getattr(checked, section)
        for key, attribute in keys.items():
            values[attribute] = getattr(model, key)
    for key in ("window", "event_times"):
        values[key] = tuple(values[key]) if values[key] is not None else None
    # the preset's design supplies the comparison, window and follow-up not set explicitly
    from finsam_eval.design import all_cohorts_design, isf_design

    design = checked.design
    preset = isf_design() if design.preset == "isf" else all_cohorts_design()
    for key, default in (
        ("control", preset.control),
        ("window", tuple(preset.window)),
        ("event_times", (0, preset.follow_up)),
    ):
        if values[key] is None:
            values[key] = default
    config = AnalysisConfig(**values, text=text)
    if config.calendar is None:
        # real sources never run without a calendar: the documented calendars by default
        config.calendar = "synthetic" if config.source == "synthetic" else "documented"
    # the preset's window and follow-up against explicit entries (the schema checks explicit
    # pairs only)
    config.validate()
    return config
