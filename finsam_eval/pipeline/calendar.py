"""The adoption calendar of a run and the evaluation design applied to it.

Real data carry no trustworthy adoption years: the documented facts (seeds 000, 001, 004 via
:mod:`finsam_eval.registry`) fix most join years only to an interval. A run therefore takes its
calendar from ``[design] calendar``:

``"synthetic"``
    The synthetic world's own calendar (the cohorts of the bundled panel); only for
    ``data.source = "synthetic"``, where it is the default.
``"documented"``
    The default for every real source: ``calendar_draws`` calendars drawn by
    :func:`finsam_eval.registry.compatible_calendars` (each satisfies every documented fact);
    every method is fitted on each and the draws are pooled with Rubin's rules
    (:func:`finsam_eval.estimators.calendars.estimate_over_calendars`).
path of a CSV
    A user calendar, checked against every documented fact with
    :func:`finsam_eval.registry.validate_calendar`. Conflicts refuse the run
    (:class:`CalendarConflictError`, one line per conflict naming kommun, förbund and fact)
    unless ``allow_conflicts = true``, which records them in the manifest. A file marked as the
    synthetic world's (column ``origin`` = "synthetic") is refused for real data unless
    ``allow_synthetic_calendar = true``.

For a real panel file the panel's own ``cohort`` column is never used: it is replaced by the
calendar's (the run notes say so). The design (``[design] preset``) then decides which cohorts
are estimated: :func:`apply_design`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.panel.builder import NEVER_CLUSTER_PREFIX
from finsam_eval.pipeline.config import AnalysisConfig, ConfigError

__all__ = [
    "SYNTHETIC_ORIGIN",
    "CalendarConflictError",
    "CalendarPlan",
    "apply_calendar",
    "apply_design",
    "calendar_cohorts",
    "conflict_lines",
    "resolve_calendar",
]

#: Value of a calendar file's ``origin`` column that marks the synthetic world's calendar
SYNTHETIC_ORIGIN = "synthetic"


class CalendarConflictError(ConfigError):
    """A user calendar that contradicts documented facts.

    ``header`` says what to do; ``conflict_lines`` has one line per conflict.
    """

    def __init__(self, header: str, lines: list[str]) -> None:
        super().__init__("\n".join([header, *lines]))
        self.header = header
        self.conflict_lines = lines


@dataclass
class CalendarPlan:
    """The calendar a run uses.

    Attributes
    ----------
    mode
        "synthetic", "documented" or "user".
    cohorts
        One row per kommun (``kommun_kod``, ``cohort``, ``forbund``) for "synthetic" and "user";
        None for "documented".
    draws
        "documented": the long frame of compatible calendars (``draw``, ``kommun_kod``,
        ``cohort``); else None.
    conflicts
        Conflicts of a user calendar accepted with ``allow_conflicts`` (columns as
        ``validate_calendar``'s report), else empty.
    notes
        Sentences for the run notes.
    manifest
        The ``calendar`` entry of the run manifest.
    """

    mode: str
    cohorts: pd.DataFrame | None = None
    draws: pd.DataFrame | None = None
    conflicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def cohort_values(self) -> list[int]:
        """Every cohort value the calendar (any of its draws) gives a kommun."""
        frame = self.draws if self.draws is not None else self.cohorts
        if frame is None:
            return []
        return sorted(int(c) for c in pd.unique(frame["cohort"]))


def conflict_lines(conflicts: pd.DataFrame) -> list[str]:
    """One readable line per conflict: kommun (code and name), förbund and the fact broken."""
    from finsam_eval.registry import kommun_name

    def name(code: str) -> str:
        try:
            return f"{code} {kommun_name(code)}"
        except (KeyError, ValueError):
            return code or "-"

    lines = []
    for row in conflicts.itertuples(index=False):
        code = str(getattr(row, "kommun_kod", "") or "")
        forbund = str(getattr(row, "forbund", "") or "") or "-"
        check = str(getattr(row, "check", "") or "")
        fact = str(getattr(row, "fact", "") or "")
        detail = str(getattr(row, "detail", "") or "")
        kommun = name(code) if code else "-"
        what = f"[{check}] {fact}" if fact else f"[{check}]"
        lines.append(f"kommun {kommun}; förbund {forbund}; fact {what}: {detail}")
    return lines


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_user_calendar(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(
            f"design.calendar {str(path)!r} is neither 'documented', 'synthetic' nor a file"
        )
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if frame.empty:
        raise ConfigError(f"design.calendar {str(path)!r} has no rows")
    return frame


def _is_synthetic(frame: pd.DataFrame) -> bool:
    if "origin" not in frame.columns:
        return False
    return bool(frame["origin"].astype(str).str.strip().str.lower().eq(SYNTHETIC_ORIGIN).any())


def calendar_cohorts(frame: pd.DataFrame) -> pd.DataFrame:
    """One cohort per kommun from a calendar in either accepted layout.

    ``kommun``/``kommun_kod``, ``forbund``, ``start_year`` [, ``end_year``] (one row per
    membership, as the synthetic calendar.csv) through ``calendar_to_cohorts``; or
    ``kommun_kod``, ``cohort`` (0 = not a member; one row per kommun, as a draw of
    ``compatible_calendars``), with the förbund of the documented membership.
    """
    from finsam_eval.registry import calendar_to_cohorts, kommun_code
    from finsam_eval.registry.calendar_checks import one_draw_cohorts

    if "start_year" in frame.columns:
        return calendar_to_cohorts(frame)[["kommun_kod", "cohort", "forbund"]]
    if "cohort" not in frame.columns or not {"kommun", "kommun_kod"} & set(frame.columns):
        raise ConfigError(
            "a calendar CSV needs columns kommun (or kommun_kod), forbund, start_year [, end_year] "
            f"or kommun_kod, cohort (0 = not a member); got {list(frame.columns)}"
        )
    column = "kommun_kod" if "kommun_kod" in frame.columns else "kommun"
    try:
        cohort = one_draw_cohorts(frame.assign(cohort=frame["cohort"].replace("", "0")))
    except ValueError as exc:
        several = "draw" in frame.columns and frame["draw"].nunique() > 1
        hint = "; calendar = 'documented' runs over every compatible calendar" if several else ""
        raise ConfigError(f"calendar: {exc}{hint}") from None
    codes = frame[column].map(kommun_code)
    repeated = sorted(codes[codes.duplicated()].unique())
    if repeated:
        raise ConfigError(f"calendar gives more than one cohort for kommun {repeated[:10]}")
    out = pd.DataFrame({"kommun_kod": codes.to_numpy(), "cohort": cohort.astype(int).to_numpy()})
    forbund = _documented_forbund()
    out["forbund"] = np.where(
        out["cohort"] > 0, out["kommun_kod"].map(forbund).fillna("").to_numpy(), ""
    )
    return out


def _documented_forbund(model: Any = None) -> pd.Series:
    """The förbund of each documented member kommun (the calendar model's), by kommun code."""
    from finsam_eval.registry import calendar_model

    table = (model if model is not None else calendar_model()).kommuner
    return table.set_index("kommun_kod")["forbund"].fillna("").astype(str)


def resolve_calendar(config: AnalysisConfig) -> CalendarPlan:
    """The calendar of ``config``, checked; raises before anything is estimated.

    Raises
    ------
    CalendarConflictError
        A user calendar conflicts with documented facts and ``allow_conflicts`` is false
        (one line per conflict).
    ConfigError
        A calendar marked synthetic for real data without ``allow_synthetic_calendar``; an
        unreadable calendar file.
    """
    mode = config.calendar_mode
    if mode == "synthetic":
        return CalendarPlan(
            mode="synthetic",
            notes=["Calendar: the synthetic world's own calendar (calendar = 'synthetic')."],
            manifest={"mode": "synthetic"},
        )
    if mode == "documented":
        from finsam_eval.registry import compatible_calendars
        from finsam_eval.registry.calendar import LAST_DOCUMENTED_YEAR

        draws = compatible_calendars(
            config.calendar_draws, config.calendar_seed, model=config.calendar_model()
        )
        note = (
            f"Calendar: {config.calendar_draws} calendars compatible with the documented "
            f"membership facts (compatible_calendars, seed {config.calendar_seed}); every "
            "method is fitted on each and the estimates are pooled with Rubin's rules "
            "(se is the total standard error: within-calendar and between-calendar variance)."
        )
        return CalendarPlan(
            mode="documented",
            draws=draws,
            notes=[note, _model_note(config)],
            manifest={
                "mode": "documented",
                "draws": config.calendar_draws,
                "seed": config.calendar_seed,
                "horizon": LAST_DOCUMENTED_YEAR,
                "treatment_date": config.treatment_date,
                "goteborg": config.goteborg,
                "pooling": "Rubin's rules",
            },
        )
    return _user_plan(config)


def _model_note(config: AnalysisConfig) -> str:
    goteborg = {
        "treated": "treated from 2005 as a whole kommun, although its förbund (Hisingen, "
        "Nordost) cover only some stadsdelar",
        "excluded": "left out",
        "untreated": "an untreated comparison, although stadsdel förbund cover part of it",
    }[config.goteborg]
    return (
        f"Calendar model: treatment date = {config.treatment_date!r} (formation of the förbund "
        "or, where a seed dates it apart, the start of its activity); Göteborg (partial "
        f"coverage) is {goteborg} (goteborg = {config.goteborg!r})."
    )


def _user_plan(config: AnalysisConfig) -> CalendarPlan:
    from finsam_eval.registry import validate_calendar

    path = Path(str(config.calendar))
    frame = _read_user_calendar(path)
    notes = []
    synthetic = _is_synthetic(frame)
    if synthetic and config.source != "synthetic":
        if not config.allow_synthetic_calendar:
            raise ConfigError(
                f"design.calendar {str(path)!r} is marked as the synthetic world's calendar "
                "(column origin = 'synthetic'): it is one random draw, not a record of real "
                "membership, and is refused for real data; use calendar = 'documented', a real "
                "calendar, or set allow_synthetic_calendar = true to use it anyway"
            )
        notes.append(
            f"Calendar {path.name} is marked synthetic (origin = 'synthetic') and is used for "
            "real data because allow_synthetic_calendar = true: its join years are a random "
            "draw, not real membership."
        )
    report = validate_calendar(
        frame.drop(columns=["origin"], errors="ignore"), model=config.calendar_model()
    )
    conflicts = report.conflicts.reset_index(drop=True)
    lines = conflict_lines(conflicts)
    if len(conflicts) and not config.allow_conflicts:
        raise CalendarConflictError(
            f"calendar {str(path)!r} conflicts with {len(conflicts)} documented fact(s); "
            "fix the calendar or set allow_conflicts = true in [design] to run anyway (the "
            "conflicts are then recorded in the manifest):",
            lines,
        )
    cohorts = calendar_cohorts(frame)
    notes.append(
        f"Calendar: the user calendar {path.name} (sha256 {_sha256(path)[:12]}…)"
        + (
            f", with {len(conflicts)} conflict(s) with documented facts accepted "
            "(allow_conflicts = true; listed in manifest.json and below)."
            if len(conflicts)
            else ", consistent with every documented fact."
        )
    )
    notes += [f"Calendar conflict accepted: {line}" for line in lines]
    notes.append(_model_note(config))
    return CalendarPlan(
        mode="user",
        cohorts=cohorts,
        conflicts=conflicts,
        notes=notes,
        manifest={
            "mode": "user",
            "path": str(path),
            "sha256": _sha256(path),
            "origin": SYNTHETIC_ORIGIN if synthetic else "user",
            "allow_conflicts": config.allow_conflicts,
            "treatment_date": config.treatment_date,
            "goteborg": config.goteborg,
            "conflicts": conflicts.astype(str).to_dict(orient="records"),
        },
    )


def apply_calendar(panel: pd.DataFrame, plan: CalendarPlan, config: AnalysisConfig) -> pd.DataFrame:
    """The panel with the calendar's cohorts (and förbund) in place of its own.

    "synthetic": unchanged. "user": ``cohort``, ``forbund`` and ``cluster_forbund`` from the
    calendar (kommuner absent from it: cohort 0, listed in the notes). "documented": ``forbund``
    and ``cluster_forbund`` from the documented membership (the same in every draw); ``cohort``
    is replaced draw by draw when estimating, and is set to 0 here so that no cohort of the
    panel file can leak into an estimate.
    """
    if plan.mode == "synthetic":
        return panel
    panel = panel.copy()
    codes = panel["kommun_kod"].astype(str)
    plan.notes.append(
        (
            "The panel file's own cohort column is not used"
            if config.source != "synthetic"
            else "The synthetic world's cohorts are not used"
        )
        + f": they are replaced by the calendar's ({plan.mode})."
    )
    if plan.mode == "user":
        assert plan.cohorts is not None
        cohort = codes.map(plan.cohorts.set_index("kommun_kod")["cohort"])
        forbund = codes.map(plan.cohorts.set_index("kommun_kod")["forbund"])
        absent = sorted(codes[cohort.isna()].unique())
        if absent:
            plan.notes.append(
                f"{len(absent)} kommuner of the panel are not in the calendar and get cohort 0 "
                f"(not a member): {', '.join(absent[:20])}{' …' if len(absent) > 20 else ''}."
            )
        panel["cohort"] = cohort.fillna(0).astype(np.int64).to_numpy()
        forbund = forbund.fillna("").astype(str)
    else:
        assert plan.draws is not None
        covered = codes.isin(pd.unique(plan.draws["kommun_kod"]))
        if not covered.all():
            # goteborg = "excluded": the calendars have no row for Göteborg
            absent = sorted(codes[~covered].unique())
            plan.notes.append(
                f"Kommuner without a cohort in the calendars are left out: {', '.join(absent)}."
            )
            panel = panel[covered.to_numpy()].reset_index(drop=True)
            codes = panel["kommun_kod"].astype(str)
        panel["cohort"] = np.int64(0)
        forbund = codes.map(_documented_forbund(config.calendar_model())).fillna("").astype(str)
    panel["forbund"] = forbund.to_numpy()
    if "cluster_forbund" in panel.columns:
        panel["cluster_forbund"] = np.where(forbund.eq(""), NEVER_CLUSTER_PREFIX + codes, forbund)
    return panel


def apply_design(
    panel: pd.DataFrame, design: Any, *, censor_not_yet: bool
) -> tuple[pd.DataFrame, list[str], bool]:
    """The panel of an evaluation design (:class:`finsam_eval.design.EvaluationDesign`).

    Seed 001 (ISF 2019) evaluated kommuner that joined in 2005–2010 against kommuner that had
    "inte (ännu)" joined: a kommun joining after the last evaluated cohort is a comparison in
    the years before it joins and never after. Here:

    - years outside the design's (``design.years``) are left out;
    - kommuner that joined before the first evaluated cohort ("before_design": neither
      evaluated nor untreated) are left out;
    - kommuner joining after the last panel year get cohort 0 (their joining is outside the
      data);
    - with ``censor_not_yet``, kommuner joining later inside the panel ("not_yet") keep only
      their rows before joining, with cohort 0, so that every estimator uses them as
      comparisons until they join and never as treated. Without it they are kept whole, for
      estimators told the evaluated cohorts directly (Callaway & Sant'Anna's ``cohorts=``).

    Parameters
    ----------
    panel
        A long panel with ``kommun_kod``, ``year`` and ``cohort``.
    design
        The design; ``design.cohorts is None`` evaluates every cohort.
    censor_not_yet
        Censor later joiners at their join year (see above).

    Returns
    -------
    (panel, notes, censored)
        ``censored`` is True when later joiners' rows were left out: the panel is then no
        longer balanced and the estimators must keep unbalanced units.
    """
    year = panel["year"].to_numpy(dtype=np.int64)
    years = design.years(np.unique(year))
    cohort = panel["cohort"].to_numpy(dtype=np.int64)
    role = design.roles(cohort, last_year=int(years.max()))
    in_years = np.isin(year, years)
    before = role == "before_design"
    not_yet = role == "not_yet"
    censor = not_yet & (year >= cohort) if censor_not_yet else np.zeros(len(year), dtype=bool)
    keep = in_years & ~before & ~censor
    kommun = panel["kommun_kod"].to_numpy(dtype=str)
    notes = [f"Design {design.describe()}."]
    dropped_years = sorted(set(np.unique(year).tolist()) - set(years.tolist()))
    if dropped_years:
        notes.append(
            f"Design years {int(years.min())}–{int(years.max())}: years {dropped_years} left out."
        )
    if before.any():
        notes.append(
            f"{len(np.unique(kommun[before]))} kommuner joined before the first evaluated cohort "
            "and are left out (neither evaluated nor untreated)."
        )
    out = panel[keep].copy()
    recode = (role[keep] == "never") | (censor_not_yet & (role[keep] == "not_yet"))
    out.loc[recode & (out["cohort"].to_numpy() > 0), "cohort"] = 0
    return out.reset_index(drop=True), notes, bool(censor.any())
