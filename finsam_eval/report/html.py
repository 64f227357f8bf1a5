"""One self-contained HTML report of an evaluation, rendered from a jinja2 template.

The report is a single file: CSS inline, images embedded as base64 data URIs, no scripts and no
external links, so it can be archived or mailed and still shows everything. The page is the
package template ``report/templates/report.html.j2`` (autoescaped); its text comes from the
message catalogue in :mod:`finsam_eval.report.labels` in Swedish (default) or English. Element
ids are stable so that browser tests (and readers' bookmarks) can address each part:

- ``summary`` (first section), ``isf-comparison``, ``specification``, ``tables``, ``figures``,
  ``notes``, ``manifest`` (sections),
- ``table-<population>-<method slug>`` (each ISF table; Sun–Abraham's slug is ``sunab``),
- ``fig-<name>`` (each ``<img>``, e.g. ``fig-event-alla-sjukpenning``; its ``<figure>`` is
  ``figure-<name>``).

Significance is stated one way throughout: table stars use pointwise p-values, the figures show
pointwise 95 % intervals, and a dagger marks multiple-testing adjusted significance.

The same inputs give byte-identical HTML; the manifest's timings are the only part expected to
change between runs.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from finsam_eval.report.figure_jobs import series_title
from finsam_eval.report.labels import (
    MESSAGES,
    ROBUST_METHODS,
    adjustment_label,
    check_language,
    method_label,
    method_slug,
    outcome_label,
    population_label,
    text,
)
from finsam_eval.report.summary import (
    ISF_2019_PATTERN,
    headline_method,
    isf_comparison,
    summary_rows,
)
from finsam_eval.report.tables import (
    DEFAULT_EVENT_TIMES,
    _outcome_rank,
    _population_rank,
    isf_tables,
    read_estimates_csv,
    to_html,
    write_tables,
)

__all__ = ["DEFAULT_TITLE", "element_id", "rebuild_report", "render_report", "write_report"]

DEFAULT_TITLE = "Finsam evaluation"
REPORT_FILE = "report.html"
ESTIMATES_FILE = "estimates.csv"
MANIFEST_FILE = "manifest.json"
NOTES_FILE = "notes.csv"
DIAGNOSTICS_FILE = "diagnostics.csv"
FIGURES_DIR = "figures"
TEMPLATE = "report.html.j2"
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
_FIGURE_KIND_ORDER = ("adoption", "cohort", "event", "bacon")

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 62em;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
nav ul { columns: 2; }
p.lead { max-width: 50em; } p.note { color: #555; font-size: 0.9em; }
div.scroll { max-width: 100%; overflow-x: auto; }
table.isf-table, table.summary-table, table.notes-table { border-collapse: collapse;
       margin: 1em 0 2em; font-size: 0.9em; }
table.summary-table { font-size: 0.8em; }
table.summary-table th, table.summary-table td, table.notes-table th, table.notes-table td {
       padding: 0.2em 0.5em; border-bottom: 1px solid #ddd; vertical-align: top; text-align: left; }
table.summary-table td { font-variant-numeric: tabular-nums; }
table.summary-table td.sig { font-weight: bold; }
table.summary-table span.ci { color: #555; font-weight: normal; white-space: nowrap; }
table.summary-table tr.group th { background: #f0f0f0; }
table.notes-table td.message { overflow-wrap: anywhere; }
table.isf-table caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
table.isf-table th, table.isf-table td { padding: 0.15em 0.6em; }
table.isf-table thead tr:first-child th { border-top: 2px solid #222; }
table.isf-table thead tr:last-child th { border-bottom: 1px solid #222; }
table.isf-table tbody tr:last-child td { border-bottom: 2px solid #222; }
table.isf-table td { text-align: right; font-variant-numeric: tabular-nums; }
table.isf-table th[scope=row] { text-align: left; font-weight: normal; vertical-align: top; }
table.isf-table tr.se td { color: #555; padding-bottom: 0.5em; }
table.isf-table tfoot td { text-align: left; font-size: 0.85em; color: #555; border: none; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em;
      white-space: pre-wrap; overflow-wrap: anywhere; }
""".strip()


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("finsam_eval.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def element_id(*parts: str) -> str:
    """A stable HTML id from parts: joined by "-", characters outside [A-Za-z0-9_-] → "-"."""
    return "-".join(re.sub(r"[^A-Za-z0-9_-]+", "-", str(p)) for p in parts)


def _figure_sort_key(name: str) -> tuple[Any, ...]:
    """Report order of figures: design (adoption, cohorts), event studies by population and
    outcome in ISF order, Bacon decompositions, then anything else by name."""
    parts = name.split("-")
    kind = parts[0]
    kind_rank = _FIGURE_KIND_ORDER.index(kind) if kind in _FIGURE_KIND_ORDER else 99
    if kind == "event" and len(parts) >= 3:
        return (kind_rank, _population_rank(parts[1]), _outcome_rank("-".join(parts[2:])), name)
    return (kind_rank, (0, ""), (0, ""), name)


def _figure_caption(name: str, language: str = "en") -> str:
    parts = name.split("-")
    if parts[0] == "event" and len(parts) >= 3:
        population, outcome = parts[1], "-".join(parts[2:])
        return text(
            "figure_event",
            language,
            population=population_label(population, language),
            outcome=outcome_label(outcome, language),
        )
    if name == "adoption-heatmap":
        return text("figure_adoption", language)
    if name == "cohort-sizes":
        return text("figure_cohorts", language)
    if parts[0] == "bacon":
        key = "-".join(parts[1:])
        return text("figure_bacon", language, series=series_title(key, language) if key else "")
    return name


def _data_uri(path: Path) -> str:
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"unsupported image type {path.suffix!r} for {path}; use PNG or SVG")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _specification_text(
    config: Mapping[str, Any] | None,
    methods: Sequence[str],
    design: Mapping[str, Any] | None,
    language: str,
) -> list[str]:
    """The specification in words (paragraphs), from the run's configuration."""
    config = config or {}

    def get(key: str, default: Any = None) -> Any:
        value = _config_entry({"config": config}, key)
        return default if value is None else value

    paragraphs = []
    control = str(get("control", "notyet"))
    window = get("window", [None, None])
    follow = get("event_times", [DEFAULT_EVENT_TIMES[0], DEFAULT_EVENT_TIMES[-1]])
    paragraphs.append(
        text(
            "spec_design",
            language,
            control=text(f"control_{control}", language)
            if f"control_{control}" in MESSAGES[language]
            else control,
            lo=window[0],
            hi=window[1],
            first=follow[0],
            last=follow[-1],
        )
    )
    labels = "; ".join(method_label(m) for m in methods)
    paragraphs.append(text("spec_methods", language, methods=labels))
    if control == "notyet" and "sa" in methods:
        why = (
            "Sun & Abraham (2021) definierar inte jämförelser med ännu inte behandlade"
            if language == "sv"
            else "Sun & Abraham (2021) define no not-yet-treated comparison"
        )
        paragraphs.append(text("spec_fallback", language, method=method_label("sa"), why=why))
    paragraphs.append(
        text(
            "spec_cluster",
            language,
            cluster=get("cluster", "kommun"),
            weights=text("weights_yes" if get("weights", False) else "weights_no", language),
        )
    )
    paragraphs.append(
        text(
            "spec_inference",
            language,
            bootstrap=get("bootstrap", "–"),
            seed=get("inference_seed", "–"),
            adjust=adjustment_label(str(get("adjust", "none"))),
            family=get("family", "–"),
        )
    )
    paragraphs.append(
        text(
            "spec_other",
            language,
            anticipation=get("anticipation", 0),
            base_period=get("base_period", "–"),
            est_method=get("est_method", "–"),
            source=get("source", "–"),
        )
    )
    if design:
        paragraphs.append(
            text(
                "spec_n",
                language,
                kommuner=design.get("n_kommuner", "–"),
                cohorts=design.get("n_cohorts", "–"),
                cohort_years=design.get("cohort_years", "–"),
                never=design.get("n_never", "–"),
            )
        )
    return paragraphs


def _config_entry(manifest: Mapping[str, Any], key: str) -> Any:
    """A configuration entry from the manifest (``config.<key>`` or ``config.<section>.<key>``)."""
    config = manifest.get("config")
    if not isinstance(config, Mapping):
        return None
    if key in config:
        return config[key]
    for value in config.values():
        if isinstance(value, Mapping) and key in value:
            return value[key]
    return None


def _notes_rows(notes: pd.DataFrame | None, language: str) -> list[dict[str, str]]:
    if notes is None or notes.empty:
        return []
    rows = []
    for record in notes.to_dict("records"):
        rows.append(
            {
                "population": population_label(str(record.get("population", "")), language),
                "outcome": outcome_label(str(record.get("outcome", "")), language),
                "method": method_label(str(record.get("method", ""))),
                "kind": str(record.get("kind", "")),
                "message": str(record.get("message", "")),
            }
        )
    return rows


def _count(value: Any) -> str:
    """An N for the text: the integer, or "–" when unknown."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return str(int(number)) if number == number else "–"


def _groups(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Consecutive summary rows grouped by population label, order kept."""
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for row in rows:
        if not groups or groups[-1][0] != row["population"]:
            groups.append((row["population"], []))
        groups[-1][1].append(row)
    return groups


#: The report's sections in order (the table of contents; their ids are the keys with dashes).
_SECTIONS = ("summary", "isf_comparison", "specification", "tables", "figures", "notes", "manifest")


def _table_blocks(
    tables: Mapping[tuple[str, str], pd.DataFrame],
    adjustment: Any,
    design: Mapping[str, Any] | None,
    unique: Callable[[str], str],
    language: str,
) -> list[dict[str, Any]]:
    """The report's ISF tables as HTML fragments, a population heading before each new
    population; ``unique`` hands out element ids and refuses repeats."""
    blocks = []
    current = None
    for (population, method), table in tables.items():
        heading = heading_id = None
        if population != current:
            current = population
            heading = population_label(population, language)
            heading_id = unique(element_id("population", population))
        if adjustment:
            table.attrs["adjustment"] = str(adjustment)
        if design and design.get("n_cohorts") is not None:
            table.attrs["n_cohorts"] = design["n_cohorts"]
        tid = unique(element_id("table", population, method_slug(method)))
        blocks.append(
            {
                "heading": heading,
                "heading_id": heading_id,
                "html": to_html(table, table_id=tid, language=language).rstrip("\n"),
            }
        )
    return blocks


def render_report(
    estimates: pd.DataFrame,
    figures: Mapping[str, str | Path],
    manifest: Mapping[str, Any],
    title: str = DEFAULT_TITLE,
    *,
    specification: Mapping[str, Any] | None = None,
    methods: Sequence[str] | None = None,
    event_times: Sequence[int] = DEFAULT_EVENT_TIMES,
    notes: pd.DataFrame | None = None,
    diagnostics: pd.DataFrame | None = None,
    language: str = "sv",
    **table_options: Any,
) -> str:
    """Render the self-contained HTML report as a string (:func:`write_report` writes it).

    Parameters
    ----------
    estimates
        The long results table; one ISF table per population × method.
    figures
        name → image file (PNG or SVG), embedded as data URIs with id ``fig-<name>``. Names as
        in :func:`finsam_eval.report.figures.write_figures` get captions and ISF ordering.
    manifest
        Run manifest (:func:`finsam_eval.report.manifest.build_manifest`), shown as JSON.
    title
        Report title.
    specification
        Entries of the specification summary; default the manifest's ``config``.
    methods
        Method order of the tables; default alphabetical.
    event_times
        Columns of the ISF tables.
    notes
        The run's notes (population, outcome, method, kind, message), shown in full in the
        notes-and-warnings section.
    diagnostics
        Pre-trend tests and breakdown values per series
        (:func:`finsam_eval.report.summary.series_diagnostics`) for the summary.
    language
        "sv" (default) or "en": every text of the report.
    **table_options
        Passed to :func:`finsam_eval.report.tables.isf_table` (stars, p_col, decimals, ...).

    Returns
    -------
    str
        The HTML document.
    """
    check_language(language)
    event_times = [int(t) for t in event_times]
    present = sorted(set(estimates["method"].astype(str)))
    if methods is None:
        methods = present
    methods = [m for m in methods if m in present] or present
    tables = isf_tables(estimates, methods=methods, event_times=event_times, **table_options)
    if specification is None:
        config = manifest.get("config")
        specification = config if isinstance(config, Mapping) else None
    design = manifest.get("design") if isinstance(manifest.get("design"), Mapping) else None
    adjustment = _config_entry(manifest, "adjust")

    ids: set[str] = set()

    def unique(id_: str) -> str:
        if id_ in ids:
            raise ValueError(f"two report elements would get the id {id_!r}")
        ids.add(id_)
        return id_

    blocks = _table_blocks(tables, adjustment, design, unique, language)
    figure_rows = [
        {
            "id": unique(element_id("fig", name)),
            "figure_id": element_id("figure", name),
            "src": _data_uri(Path(figures[name])),
            "caption": _figure_caption(name, language),
        }
        for name in sorted(figures, key=_figure_sort_key)
    ]

    headline = headline_method(methods)
    robust = [m for m in methods if m in ROBUST_METHODS]
    first, last = event_times[0], event_times[-1]
    summary = summary_rows(
        estimates,
        method=headline,
        event_times=event_times,
        diagnostics=diagnostics,
        language=language,
    )
    honest_note = text("honest_headline_only", language, method=method_label(headline))
    head_rows = estimates[estimates["method"].astype(str) == headline]
    sizes = {
        key: pd.to_numeric(head_rows[key], errors="coerce").max() if key in head_rows else None
        for key in ("n_units", "n_clusters")
    }
    summary_n = text(
        "n_line",
        language,
        units=_count(sizes["n_units"]),
        clusters=_count(sizes["n_clusters"]),
        cohorts=_count(design.get("n_cohorts") if design else None),
    )
    comparison = isf_comparison(estimates, method=headline, language=language)
    sources = sorted({finding.source for finding in ISF_2019_PATTERN})
    t = MESSAGES[language]
    contents = [(key.replace("_", "-"), t[key]) for key in _SECTIONS]
    manifest_text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False, default=str)
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            language=language,
            title=title,
            css=_CSS,
            t=t,
            event_times=event_times,
            summary=summary,
            summary_groups=_groups(summary),
            summary_lead=text(
                "summary_lead",
                language,
                method=method_label(headline),
                first=first,
                last=last,
                robust=", ".join(method_label(m) for m in robust) or "–",
            ),
            honest_note=honest_note,
            summary_n=summary_n,
            contents=contents,
            isf_lead=text("isf_lead", language, method=method_label(headline)),
            comparison=comparison,
            comparison_sources="; ".join(sources),
            specification=_specification_text(specification, methods, design, language),
            tables=blocks,
            figures=figure_rows,
            notes=_notes_rows(notes, language),
            manifest_json=manifest_text,
        )
    )


def write_report(
    out_dir: str | Path,
    estimates: pd.DataFrame,
    figures: Mapping[str, str | Path],
    manifest: Mapping[str, Any],
    title: str = DEFAULT_TITLE,
    *,
    filename: str = REPORT_FILE,
    **options: Any,
) -> Path:
    """Write the self-contained HTML report of :func:`render_report` into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (created).
    filename
        Name of the HTML file.
    estimates, figures, manifest, title, **options
        As :func:`render_report` takes them.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / filename
    text = render_report(estimates, figures, manifest, title, **options)
    path.write_bytes(text.encode("utf-8"))
    return path


def _listed_files(manifest: Mapping[str, Any], out_dir: Path) -> set[str] | None:
    """The manifest's ``files`` (what the run wrote), each checked to exist; None for a
    manifest without the list (outputs of earlier versions, hand-made folders)."""
    files = manifest.get("files")
    if files is None:
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError(f"{out_dir / MANIFEST_FILE}: 'files' must be a list of file paths")
    missing = [f for f in files if not (out_dir / f).is_file() and f != "report.html"]
    if missing:
        raise FileNotFoundError(
            f"{out_dir}: file(s) listed in {MANIFEST_FILE} are missing: {missing[:5]}"
            f"{' …' if len(missing) > 5 else ''}; rerun `finsam-eval run` to rewrite the folder"
        )
    if ESTIMATES_FILE not in files:
        raise FileNotFoundError(
            f"{out_dir / MANIFEST_FILE} does not list {ESTIMATES_FILE}: not the output of a run"
        )
    return set(files)


def rebuild_report(
    out_dir: str | Path,
    *,
    title: str | None = None,
    tables: bool = False,
    language: str | None = None,
) -> Path:
    """Rebuild ``report.html`` from an output folder's files.

    Reads ``estimates.csv`` (required), ``manifest.json``, ``notes.csv``, ``diagnostics.csv``
    (optional) and ``figures/*.png`` / ``*.svg`` — only those listed in the manifest's ``files``
    (what the run wrote) when it has that list, so a file left in the folder by anything else
    is never shown. The language comes from the argument, else the
    manifest's ``config.report_language``, else Swedish. The title comes from the argument, else the manifest's ``title``, else
    :data:`DEFAULT_TITLE`; the tables' method order and event times from the manifest's config
    (``methods``, ``event_times`` as [first, last]) when present.

    Parameters
    ----------
    out_dir
        The output folder of a run.
    title
        Report title.
    tables
        Also rewrite the ISF tables (Markdown, LaTeX, HTML, xlsx) into ``out_dir/tables``.
    language
        "sv" or "en"; None: as configured for the run.

    Returns
    -------
    pathlib.Path
        The written report.

    Raises
    ------
    FileNotFoundError
        When ``estimates.csv`` is missing.
    """
    out_dir = Path(out_dir)
    estimates_path = out_dir / ESTIMATES_FILE
    if not estimates_path.is_file():
        raise FileNotFoundError(
            f"{estimates_path} not found: rebuild_report needs the estimates of a finished run"
        )
    estimates = read_estimates_csv(estimates_path)
    manifest_path = out_dir / MANIFEST_FILE
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    )
    listed = _listed_files(manifest, out_dir)
    figures_dir = out_dir / FIGURES_DIR
    if listed is not None:
        # only what the run wrote: a stray figure in the folder is not part of this run
        figures = {
            p.stem: p
            for p in sorted(out_dir / name for name in listed)
            if p.parent == figures_dir and p.suffix.lower() in _IMAGE_TYPES
        }
    elif figures_dir.is_dir():
        figures = {
            p.stem: p for p in sorted(figures_dir.iterdir()) if p.suffix.lower() in _IMAGE_TYPES
        }
    else:
        figures = {}
    present = set(estimates["method"].astype(str))
    configured = _config_entry(manifest, "methods")
    methods = None
    if isinstance(configured, list):
        # configured order first; methods estimated but not configured keep a place at the end
        methods = [m for m in configured if m in present] + sorted(present - set(configured))
    event_times: Sequence[int] = DEFAULT_EVENT_TIMES
    configured_times = _config_entry(manifest, "event_times")
    if isinstance(configured_times, list) and len(configured_times) == 2:
        event_times = range(int(configured_times[0]), int(configured_times[1]) + 1)
    if language is None:
        configured_language = _config_entry(manifest, "report_language")
        language = str(configured_language) if configured_language else "sv"
    check_language(language)
    notes_path, diagnostics_path = out_dir / NOTES_FILE, out_dir / DIAGNOSTICS_FILE

    def readable(path: Path) -> bool:
        # a file the run did not write is not read, even if one of that name is present
        return path.is_file() and (listed is None or path.name in listed)

    notes = (
        pd.read_csv(notes_path, dtype=str, keep_default_na=False) if readable(notes_path) else None
    )
    diagnostics = (
        pd.read_csv(
            diagnostics_path,
            dtype={"population": str, "outcome": str, "pretrend_note": str, "breakdown_note": str},
        )
        if readable(diagnostics_path)
        else None
    )
    if diagnostics is not None:
        for column in ("pretrend_note", "breakdown_note"):
            diagnostics[column] = diagnostics[column].fillna("")
    if tables:
        write_tables(
            out_dir / "tables",
            estimates,
            methods=methods,
            event_times=event_times,
            language=language,
        )
    return write_report(
        out_dir,
        estimates,
        figures,
        manifest,
        title or str(manifest.get("title") or DEFAULT_TITLE),
        methods=methods,
        event_times=event_times,
        notes=notes,
        diagnostics=diagnostics,
        language=language,
    )
