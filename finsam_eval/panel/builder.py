"""Raw source tables → validated long kommun-year panel, with a build report.

The builder works on integer codes and sorted numpy arrays throughout (no per-row Python), so the
full synthetic data (≈560 000 population rows, ≈250 000 numerator rows, 25 series) builds in
about a second. Steps:

1. *normalise and validate* both tables (:mod:`finsam_eval.panel.validation`): numbers, years,
   sexes, age bands, codes; historical codes are harmonised (Heby's 1917 up to 2006 → 0331);
   unknown codes and duplicate keys are errors;
2. *window*: rows for years outside ``years`` are excluded;
3. *select*: numerator rows for outcomes not built, and cells (sex × age band, sex × age) that no
   selected population uses, are excluded; every age band must lie wholly inside or outside
   each population's age range, and the bands inside must cover it exactly;
4. *gaps*: a kommun's years must be contiguous within its span;
5. *base cells*: rows are summed to (kommun, year, sex, band, outcome) and (kommun, year, sex,
   age) cells; this is where stadsdel rows (a ``stadsdel`` column or codes like "1480-03") are
   aggregated to their kommun. Rows are sorted by key first so that float sums do not depend on
   the input row order;
6. *assemble*: per population and outcome, numerator = sum over the population's sexes and the
   bands inside its range, denominator = sum over its sexes and single-year ages, share =
   100 · numerator / denominator. A panel row needs every numerator cell and every single-year
   age; rows that cannot be formed are reported (missing denominator, incomplete cells, zero
   population), and base cells that feed no panel row are excluded;
7. *cohorts and registry*: kommun name and län come from the registry (current values for
   every year, so that clusters are constant within a kommun), cohort and förbund from the
   cohorts table (kommuner missing from it: cohort 0, reported).

There is no analysis panel without an adoption calendar: ``cohorts`` is required, and a panel of
outcomes alone (cohort 0 as a placeholder for every kommun) must be asked for with
``outcome_only=True``. Building without either raises, because a panel in which every kommun is
"never a member" looks valid but makes every estimate meaningless (issue 11).

A missing cell is reported with its cause (:mod:`finsam_eval.panel.missing`): suppressed in the
source (cells listed in ``suppressed=``), zero population, or absent from the source; the gap
error and the report's ``not built`` lines name kommun, year, population, outcome and cause.

Each step is one function (:mod:`finsam_eval.panel.phases` for steps 1–7 on integer-coded
arrays, :mod:`finsam_eval.panel.cohorts` for cohorts and registry notes,
:mod:`finsam_eval.panel.ledger` for the report); :func:`build_panel` runs them in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finsam_eval.panel.cohorts import CohortAssignment, assign_cohorts, registry_notes
from finsam_eval.panel.ledger import (
    add_suppressed_not_built,
    build_report,
    input_ledger,
    not_built_frame,
)
from finsam_eval.panel.missing import normalise_suppressed, panel_gap_problem
from finsam_eval.panel.phases import (
    Coded,
    _group_rows,
    assemble_series,
    base_cells,
    check_gaps,
    encode_sources,
    panel_arrays,
    select_rows,
)
from finsam_eval.panel.populations import OUTCOMES, POPULATIONS, Population
from finsam_eval.panel.report import BuildReport
from finsam_eval.panel.validation import PANEL_COLUMNS, PanelValidationError, validate_panel

__all__ = ["NEVER_CLUSTER_PREFIX", "BuiltPanel", "build_panel", "empty_panel"]

#: Prefix of ``cluster_forbund`` for kommuner without a förbund: "none-0114" makes every
#: never-member its own cluster (rather than pooling all never-members into one huge cluster,
#: which would treat unrelated kommuner as correlated).
NEVER_CLUSTER_PREFIX = "none-"


@dataclass
class BuiltPanel:
    """The result of :func:`build_panel`.

    Attributes
    ----------
    panel
        The long kommun-year panel (columns :data:`~finsam_eval.panel.validation.PANEL_COLUMNS`).
    report
        The :class:`~finsam_eval.panel.report.BuildReport`.
    """

    panel: pd.DataFrame
    report: BuildReport

    def __iter__(self):  # allows ``panel, report = build_panel(...)``
        return iter((self.panel, self.report))


def resolve_populations(
    populations: Sequence[str] | Mapping[str, Population] | None,
) -> dict[str, Population]:
    """Population names (or a mapping name → Population) as an ordered name → Population map."""
    if populations is None:
        return dict(POPULATIONS)
    if isinstance(populations, Mapping):
        return dict(populations)
    if isinstance(populations, str):
        populations = [populations]
    unknown = [p for p in populations if p not in POPULATIONS]
    if unknown:
        raise ValueError(f"Unknown population(s) {unknown}; known: {list(POPULATIONS)}")
    return {p: POPULATIONS[p] for p in dict.fromkeys(populations)}


def _resolve_outcomes(outcomes: Sequence[str] | None) -> tuple[str, ...]:
    if outcomes is None:
        return OUTCOMES
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown:
        raise ValueError(f"Unknown outcome(s) {unknown}; known: {list(OUTCOMES)}")
    return tuple(o for o in OUTCOMES if o in outcomes)


def empty_panel() -> pd.DataFrame:
    """A panel with no rows and the panel's columns and dtypes."""
    frame = pd.DataFrame({c: pd.Series([], dtype="str") for c in PANEL_COLUMNS})
    for column in ("year", "cohort"):
        frame[column] = frame[column].astype(np.int64)
    for column in ("numerator", "denominator", "share", "weight"):
        frame[column] = frame[column].astype("float64")
    return frame


def _check_request(
    cohorts: pd.DataFrame | None,
    outcome_only: bool,
    populations: Sequence[str] | Mapping[str, Population] | None,
    outcomes: Sequence[str] | None,
    years: Iterable[int] | None,
) -> tuple[dict[str, Population], list[tuple[str, str]], np.ndarray | None]:
    """Check the arguments of :func:`build_panel`; the populations, series and year window.

    Returns
    -------
    specs, series, window
        Population name → definition; the (population, outcome) pairs to build, in the order
        of ``POPULATIONS``/``OUTCOMES``; sorted years to keep, or None for all.

    Raises
    ------
    ValueError
        No ``cohorts`` and not ``outcome_only``, or both; unknown populations or outcomes; no
        series to build.
    """
    if cohorts is None and not outcome_only:
        raise ValueError(
            "build_panel needs the adoption calendar: pass cohorts= (one row per kommun: "
            "kommun_kod, cohort, forbund; from an exact calendar with "
            "finsam_eval.registry.calendar_to_cohorts(calendar), or one draw of "
            "finsam_eval.registry.compatible_calendars), or ask for a panel of outcomes only "
            "with outcome_only=True (cohort 0 as a placeholder; the pipeline's [design] "
            "calendar then supplies the cohorts)"
        )
    if cohorts is not None and outcome_only:
        raise ValueError(
            "build_panel: cohorts= and outcome_only=True contradict each other; pass one"
        )
    specs = resolve_populations(populations)
    wanted = _resolve_outcomes(outcomes)
    series = [
        (p, o) for p, spec in specs.items() for o in OUTCOMES if o in spec.outcomes and o in wanted
    ]
    if not series:
        raise ValueError(
            f"No series to build: outcomes {list(wanted)} are not defined for {list(specs)}"
        )
    window = None if years is None else np.unique(np.asarray(list(years), dtype=np.int64))
    return specs, series, window


def build_panel(
    numerators: pd.DataFrame,
    population: pd.DataFrame,
    cohorts: pd.DataFrame | None = None,
    years: Iterable[int] | None = None,
    populations: Sequence[str] | Mapping[str, Population] | None = None,
    outcomes: Sequence[str] | None = None,
    *,
    outcome_only: bool = False,
    partial_coverage: Mapping[str, str] | None = None,
    validate: bool = True,
    suppressed: pd.DataFrame | None = None,
) -> BuiltPanel:
    """Build the long kommun-year panel from the raw numerator and population tables.

    Parameters
    ----------
    numerators
        Columns ``kommun_kod``, ``year``, ``sex`` ("K"/"M"), ``age_band`` ("19-24", ...),
        ``outcome``, ``count`` (docs/architecture.md). Optional ``stadsdel`` column (or codes
        such as ``"1480-03"``) for district rows, which are summed to the kommun.
    population
        Columns ``kommun_kod``, ``year``, ``sex``, ``age`` (single years), ``population``;
        optional ``stadsdel`` as above.
    cohorts
        Columns ``kommun_kod``, ``cohort`` (first membership year, 0 = never) and optionally
        ``forbund`` (id, "" for never) and ``partial_coverage`` (note). Kommuner missing from it
        get cohort 0 and are reported; rows for unknown kommuner are reported and ignored.
        From an exact calendar: :func:`~finsam_eval.registry.calendar_to_cohorts`; for one
        calendar compatible with the documented facts: one draw of
        ``finsam_eval.registry.compatible_calendars``. Required unless ``outcome_only``.
    years
        Years to keep (any iterable, e.g. ``range(1998, 2019)``); rows for other years are
        excluded and reported. None keeps every year.
    populations
        Population names (a subset of :data:`~finsam_eval.panel.populations.POPULATIONS`, in the
        order wanted) or a mapping name → :class:`Population` for custom definitions.
        None: the five ISF populations.
    outcomes
        Outcomes to build (each only for the populations that define it). None: all.
    outcome_only
        Build a panel of outcomes without an adoption calendar: every kommun gets cohort 0 and
        no förbund as a placeholder (not a claim that no kommun is a member), and the report
        says so. For panels whose calendar is supplied later, e.g. a real-data panel file for
        the pipeline, which replaces the ``cohort`` column with the configured calendar's
        (``[design] calendar``). Cannot be combined with ``cohorts``.
    partial_coverage
        kommun (name or code) → note, for kommuner only partly covered by their förbund
        (Göteborg's förbund cover stadsdelar). Passed through to the report.
    validate
        Run :func:`~finsam_eval.panel.validation.validate_panel` on the result.
    suppressed
        Source cells published as suppressed or without a value: columns ``kommun_kod``,
        ``year``, ``outcome`` and optionally ``sex`` (empty or "T": both sexes); e.g. the
        :func:`~finsam_eval.sources.fetch.fetch` report, whose rows of kind ``suppressed`` or
        ``missing`` are used (a ``kind`` column keeps only those). A panel row that cannot be
        formed for a listed kommun-year is reported as "suppressed in the source" rather than
        "absent from the source". None: no cell is known to be suppressed.

    Returns
    -------
    BuiltPanel
        ``.panel``: one row per population × outcome × kommun × year, columns
        ``kommun_kod, kommun, lan_kod, year, population, outcome, numerator, denominator, share,
        cohort, forbund, weight, cluster_kommun, cluster_forbund, cluster_lan``; sorted by
        population and outcome (in the order of ``POPULATIONS``/``OUTCOMES``), kommun_kod and
        year, with a RangeIndex. ``weight`` equals ``denominator``; ``cluster_forbund`` is the
        förbund id, or ``"none-<kommun_kod>"`` for kommuner without one (own cluster).
        ``.report``: the :class:`~finsam_eval.panel.report.BuildReport`.

    Raises
    ------
    PanelValidationError
        Invalid inputs (see :mod:`finsam_eval.panel.validation`), age bands that straddle,
        overlap or do not cover a population's range, gaps in a kommun's years, or a panel
        that fails :func:`validate_panel` (e.g. numerator > denominator). A gap also gets a
        ``missing_cells`` problem naming each missing cell (kommun, year, population, outcome)
        and its cause: suppressed in the source, zero population, or absent from the source.
    ValueError
        Unknown population or outcome names; no ``cohorts`` and not ``outcome_only`` (the
        message names both fixes); ``cohorts`` together with ``outcome_only``.
    """
    specs, series, window = _check_request(cohorts, outcome_only, populations, outcomes, years)
    cause_of = normalise_suppressed(suppressed)
    coded = encode_sources(numerators, population)  # 1. normalise, validate, code
    selection = select_rows(coded, specs, series, window)  # 2.-3. window and select
    check_gaps(coded, selection, specs, series, cause_of)  # 4. gaps
    cells = base_cells(coded, selection)  # 5. base cells
    assembled = assemble_series(coded, specs, cells, selection)  # 6.
    add_suppressed_not_built(coded, specs, selection.inside, cells, assembled, cause_of)
    arrays = panel_arrays(coded, assembled)  # 7. panel rows
    not_built = not_built_frame(coded, specs, assembled, cause_of)
    ledger_parts = input_ledger(coded, selection, cells, not_built)
    calendar = assign_cohorts(coded, arrays.kc, cohorts, partial_coverage)  # 8. cohorts
    notes, lines = registry_notes(
        coded, arrays.kc, arrays.year, series, selection.bands_by_outcome, window
    )
    population_names = np.array(list(specs), dtype=object)
    outcome_names = np.array(coded.outcome_list, dtype=object)
    panel = _assemble(
        _per_kommun(coded, calendar),
        arrays.kc,
        arrays.year,
        population_names,
        arrays.p_i,
        outcome_names,
        arrays.o_i,
        arrays.numerator,
        arrays.denominator,
    )
    if calendar.lines or lines:
        ledger_parts.append(pd.DataFrame([*calendar.lines, *lines]))
    report = build_report(
        coded,
        selection,
        cells,
        assembled,
        ledger_parts,
        calendar.cohort_frame,
        calendar.cohort_rows_used,
        series=_series_summary(
            population_names,
            outcome_names,
            arrays.p_i,
            arrays.o_i,
            arrays.kc,
            arrays.year,
            arrays.numerator,
            arrays.denominator,
        ),
        notes=[*calendar.notes, *notes],
        partial_coverage=calendar.coverage,
        n_rows=len(panel),
    )
    if validate:
        _validate_with_causes(panel, not_built)
    return BuiltPanel(panel, report)


def _per_kommun(coded: Coded, calendar: CohortAssignment) -> dict[str, np.ndarray]:
    """One value per registry kommun: code, name, län, cohort, förbund and förbund cluster."""
    cluster_forbund = np.where(
        calendar.forbund_of == "",
        NEVER_CLUSTER_PREFIX + coded.codes.astype(str),
        calendar.forbund_of,
    )
    return {
        "kommun_kod": coded.codes,
        "kommun": coded.names,
        "lan_kod": coded.lans,
        "cohort": calendar.cohort_of,
        "forbund": calendar.forbund_of,
        "cluster_forbund": cluster_forbund,
    }


def _validate_with_causes(panel: pd.DataFrame, not_built: pd.DataFrame) -> None:
    """:func:`validate_panel`; a gap also names the cells not built and their causes."""
    try:
        validate_panel(panel)
    except PanelValidationError as error:
        extra = panel_gap_problem(not_built, panel) if "gap" in error.checks else None
        if extra is None:
            raise
        raise PanelValidationError([*error.problems, extra]) from None


def _text(values: np.ndarray, index: np.ndarray) -> pd.Series:
    """``values[index]`` as a str column: a take from a str Index of the few distinct values
    (converting one Python string per row would dominate the build)."""
    where, uniques = pd.factorize(np.asarray(values, dtype=object))
    categories = pd.Index(np.asarray(uniques, dtype=object), dtype="str")
    return pd.Series(categories.take(where[index]), copy=False)


def _assemble(
    per_kommun: Mapping[str, np.ndarray],
    kc: np.ndarray,
    year: np.ndarray,
    population_names: np.ndarray,
    p_i: np.ndarray,
    outcome_names: np.ndarray,
    o_i: np.ndarray,
    numerator: np.ndarray,
    denominator: np.ndarray,
) -> pd.DataFrame:
    """The panel frame from sorted integer-coded arrays.

    ``per_kommun`` holds one value per registry kommun (code, name, län, cohort, förbund, förbund
    cluster), indexed by ``kc``.
    """
    if len(kc) == 0:
        return empty_panel()
    kommun_kod = _text(per_kommun["kommun_kod"], kc)
    lan_kod = _text(per_kommun["lan_kod"], kc)
    return pd.DataFrame(
        {
            "kommun_kod": kommun_kod,
            "kommun": _text(per_kommun["kommun"], kc),
            "lan_kod": lan_kod,
            "year": year.astype(np.int64),
            "population": _text(population_names, p_i),
            "outcome": _text(outcome_names, o_i),
            "numerator": numerator.astype("float64"),
            "denominator": denominator.astype("float64"),
            "share": 100.0 * numerator / denominator,
            "cohort": per_kommun["cohort"][kc].astype(np.int64),
            "forbund": _text(per_kommun["forbund"], kc),
            "weight": denominator.astype("float64"),
            "cluster_kommun": kommun_kod.copy(),
            "cluster_forbund": _text(per_kommun["cluster_forbund"], kc),
            "cluster_lan": lan_kod.copy(),
        }
    )


def _series_summary(
    population_names: np.ndarray,
    outcome_names: np.ndarray,
    p_i: np.ndarray,
    o_i: np.ndarray,
    kc: np.ndarray,
    year: np.ndarray,
    numerator: np.ndarray,
    denominator: np.ndarray,
) -> pd.DataFrame:
    """Per series: rows, kommuner, first and last year, sums (arrays sorted by series, kommun)."""
    columns = ["population", "outcome", "rows", "kommuner", "first_year", "last_year"]
    columns += ["numerator", "denominator"]
    if len(kc) == 0:
        return pd.DataFrame(columns=columns)
    order, starts = _group_rows([p_i, o_i])  # already sorted: order is the identity
    new_kommun = np.ones(len(kc), dtype=bool)
    new_kommun[1:] = (kc[1:] != kc[:-1]) | (p_i[1:] != p_i[:-1]) | (o_i[1:] != o_i[:-1])
    return pd.DataFrame(
        {
            "population": population_names[p_i[starts]],
            "outcome": outcome_names[o_i[starts]],
            "rows": np.diff(np.append(starts, len(kc))),
            "kommuner": np.add.reduceat(new_kommun.astype(np.int64), starts),
            "first_year": np.minimum.reduceat(year[order], starts),
            "last_year": np.maximum.reduceat(year[order], starts),
            "numerator": np.add.reduceat(numerator[order], starts),
            "denominator": np.add.reduceat(denominator[order], starts),
        },
        columns=columns,
    )
