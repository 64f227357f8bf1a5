"""Planning the report's figures (names, builders, files) without loading matplotlib.

:func:`write_figures` decides which figures a run draws and hands each to :func:`_render` in a
:class:`~finsam_eval.report.background.Background` worker; only the workers (and callers that
draw here) import :mod:`finsam_eval.report.figures` and with it matplotlib, so the run's main
process, which estimates meanwhile, does not pay for it (issue 16).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from finsam_eval.report.background import Background, Pending, default_workers
from finsam_eval.report.labels import outcome_label, population_label, text
from finsam_eval.report.tables import _outcome_rank, _population_rank, population_outcomes

__all__ = ["FigureJob", "PlannedFigures", "series_title", "write_figures"]


def _event_time_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The event-study rows (term missing or "event_time") with a numeric event time."""
    if "term" in rows.columns:
        rows = rows[rows["term"].isna() | (rows["term"] == "event_time")]
    rows = rows.assign(event_time=pd.to_numeric(rows["event_time"], errors="coerce"))
    return rows[rows["event_time"].notna()]


def series_title(key: str, language: str = "en") -> str:
    """ "<population label>: <outcome label>" of a "<population>-<outcome>" key (the key itself
    when it is not one)."""
    population, sep, outcome = str(key).partition("-")
    if not sep:
        return str(key)
    return f"{population_label(population, language)}: {outcome_label(outcome, language)}"


#: One figure to draw: (name, builder name in ``_BUILDERS``, args, kwargs, target file).
FigureJob = tuple[str, str, tuple, dict, Path]


def _render(name: str, builder: str, args: tuple, kwargs: dict, path: Path) -> tuple[str, Path]:
    """Draw one figure by its builder's name and save it (runs in a worker process too).

    Each figure is drawn and saved independently under :func:`figure_style`, so the files are
    byte-identical whichever process writes them; Agg rendering is CPU-bound Python, hence
    processes, not threads.
    """
    from finsam_eval.report import figures

    return name, figures.save_figure(figures._BUILDERS[builder](*args, **kwargs), path)


def write_figures(
    out_dir: str | Path,
    estimates: pd.DataFrame | None = None,
    *,
    methods: Sequence[str] | None = None,
    cohorts: pd.DataFrame | None = None,
    years: Sequence[int] | None = None,
    decomposition: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    fmt: str = "png",
    language: str = "en",
    workers: int | None = None,
    background: Background | None = None,
) -> dict[str, Path]:
    """Draw and save every report figure into ``out_dir``.

    Names (file stems, and ``fig-<name>`` ids in the HTML report): ``event-<population>-
    <outcome>`` per series in the estimates that is defined for its population, ``adoption-heatmap`` and ``cohort-sizes`` when
    cohorts are given, ``bacon`` or ``bacon-<key>`` per decomposition.

    Parameters
    ----------
    out_dir
        Target folder (created), usually ``<output>/figures``.
    estimates
        The long results table, for the event-study overlays.
    methods
        Methods of the overlays in legend order.
    cohorts, years
        Kommun cohorts and the calendar years of the heatmap (default: min to max cohort year).
    decomposition
        A Bacon decomposition frame, or a mapping name → frame.
    fmt
        "png", "svg" or "pdf".
    language
        "sv" or "en" for every text in the figures.
    workers
        Processes that draw the figures (forked; 1 draws them here); default: the available
        cores, at most 4, when there are six figures or more. The files are the same either way.
    background
        Draw them with these workers instead (``workers`` is then ignored): the figures start
        at once and the caller goes on; the files are complete when ``pending.get()`` of the
        returned :class:`PlannedFigures` returns.

    Returns
    -------
    dict
        name → written path, in report order.
    """
    out_dir = Path(out_dir)
    jobs: list[FigureJob] = []

    def save(name: str, builder: str, *args: Any, **kwargs: Any) -> None:
        jobs.append((name, builder, args, kwargs, out_dir / f"{name}.{fmt}"))

    if cohorts is not None:
        if years is None:
            joined = pd.to_numeric(cohorts["cohort"], errors="coerce")
            joined = joined[joined > 0]
            if joined.empty:
                raise ValueError("no adopting kommuner in cohorts; pass years explicitly")
            years = range(int(joined.min()) - 1, int(joined.max()) + 1)
        save("adoption-heatmap", "adoption_heatmap", cohorts, years, language=language)
        save("cohort-sizes", "cohort_sizes", cohorts, language=language)
    if estimates is not None:
        series = estimates[["population", "outcome"]].astype(str).drop_duplicates()
        keys = sorted(
            map(tuple, series.to_numpy()),
            key=lambda po: (_population_rank(po[0]), _outcome_rank(po[1])),
        )
        # each worker gets only its series' rows, split off in one pass
        event_rows = _event_time_rows(estimates)
        by_series = dict(
            list(
                event_rows.groupby(
                    [event_rows["population"].astype(str), event_rows["outcome"].astype(str)],
                    sort=False,
                )
            )
        )
        for population, outcome in keys:
            defined = population_outcomes(population)
            if defined is not None and outcome not in defined:
                continue  # as in the tables: e.g. uvas is only defined for unga
            rows = by_series.get((population, outcome), event_rows.iloc[:0])
            save(
                f"event-{population}-{outcome}",
                "event_study_overlay",
                rows,
                population,
                outcome,
                methods,
                language=language,
            )
    if isinstance(decomposition, pd.DataFrame):
        save("bacon", "bacon_scatter", decomposition, language=language)
    elif decomposition is not None:
        for key in sorted(decomposition):
            save(
                f"bacon-{key}",
                "bacon_scatter",
                decomposition[key],
                title=text("bacon_title", language, series=series_title(key, language)),
                language=language,
            )
    if background is not None:
        return PlannedFigures(background.map(_render, jobs), jobs)
    n_workers = default_workers(len(jobs)) if workers is None else min(int(workers), len(jobs))
    with Background(n_workers) as pool:
        return dict(pool.map(_render, jobs).get())


class PlannedFigures(dict):
    """name → path of figures being drawn in the background (:func:`write_figures`); the files
    are complete when ``pending.get()`` returns."""

    def __init__(self, pending: Pending, jobs: list[FigureJob]) -> None:
        super().__init__((name, path) for name, *_, path in jobs)
        self.pending = pending
