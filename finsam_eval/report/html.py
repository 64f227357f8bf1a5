"""One self-contained HTML report of an evaluation.

The report is a single file: CSS inline, images embedded as base64 data URIs, no scripts and no
external links, so it can be archived or mailed and still shows everything. Element ids are
stable so that browser tests (and readers' bookmarks) can address each part:

- ``specification``, ``tables``, ``figures``, ``manifest`` (sections),
- ``table-<population>-<method>`` (each ISF table),
- ``fig-<name>`` (each ``<img>``, e.g. ``fig-event-alla-sjukpenning``; its ``<figure>`` is
  ``figure-<name>``).

The same inputs give byte-identical HTML; the manifest's timings are the only part expected to
change between runs.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from finsam_eval.report.tables import (
    DEFAULT_EVENT_TIMES,
    OUTCOME_LABELS,
    POPULATION_LABELS,
    _outcome_rank,
    _population_rank,
    isf_tables,
    population_outcomes,
    read_estimates_csv,
    to_html,
    write_tables,
)

__all__ = ["DEFAULT_TITLE", "element_id", "rebuild_report", "render_report", "write_report"]

DEFAULT_TITLE = "Finsam evaluation"
REPORT_FILE = "report.html"
ESTIMATES_FILE = "estimates.csv"
MANIFEST_FILE = "manifest.json"
FIGURES_DIR = "figures"
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
_FIGURE_KIND_ORDER = ("adoption", "cohort", "event", "bacon")

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 62em;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
nav ul { columns: 2; }
dl.spec { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.spec dt { font-weight: bold; } dl.spec dd { margin: 0; }
table.isf-table { border-collapse: collapse; margin: 1em 0 2em; font-size: 0.9em; }
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
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
""".strip()


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


def _figure_caption(name: str) -> str:
    parts = name.split("-")
    if parts[0] == "event" and len(parts) >= 3:
        population, outcome = parts[1], "-".join(parts[2:])
        return (
            f"Event study, {POPULATION_LABELS.get(population, population)}: "
            f"{OUTCOME_LABELS.get(outcome, outcome)}. Estimates with 95% confidence intervals "
            "by method; the dashed line separates years before and after joining."
        )
    if name == "adoption-heatmap":
        return "Förbund membership by kommun and year, kommuner ordered by cohort."
    if name == "cohort-sizes":
        return "Number of kommuner per cohort (first year of membership)."
    if parts[0] == "bacon":
        suffix = f" ({'-'.join(parts[1:])})" if len(parts) > 1 else ""
        return f"Goodman-Bacon decomposition of the TWFE estimate{suffix}."
    return name


def _data_uri(path: Path) -> str:
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"unsupported image type {path.suffix!r} for {path}; use PNG or SVG")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key in sorted(mapping, key=str):
        value = mapping[key]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_flatten(value, f"{name}."))
        else:
            out.append((name, value))
    return out


def _value_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _specification(
    estimates: pd.DataFrame,
    tables: Mapping[tuple[str, str], pd.DataFrame],
    specification: Mapping[str, Any] | None,
) -> list[tuple[str, Any]]:
    """Entries of the specification summary: the given spec, then facts of the estimates."""
    entries = _flatten(specification) if specification else []
    populations = sorted(set(estimates["population"].astype(str)), key=_population_rank)
    outcomes = sorted(set(estimates["outcome"].astype(str)), key=_outcome_rank)
    p_cols = sorted({t.attrs.get("p_col", "p_value") for t in tables.values()})
    pairs = estimates[["population", "outcome"]].astype(str).drop_duplicates()
    n_series = sum(
        defined is None or outcome in defined
        for defined, outcome in zip(
            map(population_outcomes, pairs["population"]), pairs["outcome"], strict=True
        )
    )
    entries += [
        ("estimates: populations", populations),
        ("estimates: outcomes", outcomes),
        ("estimates: methods", sorted(set(estimates["method"].astype(str)))),
        ("estimates: series (population × outcome, as defined)", n_series),
        ("tables: stars based on", p_cols),
    ]
    return entries


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


def render_report(
    estimates: pd.DataFrame,
    figures: Mapping[str, str | Path],
    manifest: Mapping[str, Any],
    title: str = DEFAULT_TITLE,
    *,
    specification: Mapping[str, Any] | None = None,
    methods: Sequence[str] | None = None,
    event_times: Sequence[int] = DEFAULT_EVENT_TIMES,
    **table_options: Any,
) -> str:
    """Render the report as an HTML string (see :func:`write_report` for the parameters)."""
    tables = isf_tables(estimates, methods=methods, event_times=event_times, **table_options)
    if specification is None:
        config = manifest.get("config")
        specification = config if isinstance(config, Mapping) else None

    ids: set[str] = set()

    def unique(id_: str) -> str:
        if id_ in ids:
            raise ValueError(f"two report elements would get the id {id_!r}")
        ids.add(id_)
        return id_

    body: list[str] = [f'<header><h1 id="title">{escape(title)}</h1></header>']
    body += [
        '<nav id="contents"><h2>Contents</h2><ul>',
        '<li><a href="#specification">Specification</a></li>',
        '<li><a href="#tables">ISF tables</a></li>',
        '<li><a href="#figures">Figures</a></li>',
        '<li><a href="#manifest">Manifest</a></li>',
        "</ul></nav>",
    ]

    body.append('<section id="specification"><h2>Specification</h2><dl class="spec">')
    for key, value in _specification(estimates, tables, specification):
        body.append(f"<dt>{escape(str(key))}</dt><dd>{escape(_value_text(value))}</dd>")
    body.append("</dl></section>")

    body.append('<section id="tables"><h2>ISF tables</h2>')
    current = None
    for (population, method), table in tables.items():
        if population != current:
            current = population
            heading = POPULATION_LABELS.get(population, population)
            pid = unique(element_id("population", population))
            body.append(f'<h3 id="{pid}">{escape(heading)}</h3>')
        tid = unique(element_id("table", population, method))
        body.append(to_html(table, table_id=tid).rstrip("\n"))
    body.append("</section>")

    body.append('<section id="figures"><h2>Figures</h2>')
    for name in sorted(figures, key=_figure_sort_key):
        path = Path(figures[name])
        fid = unique(element_id("fig", name))
        caption = _figure_caption(name)
        body += [
            f'<figure id="{element_id("figure", name)}">',
            f'<img id="{fid}" src="{_data_uri(path)}" alt="{escape(caption)}">',
            f"<figcaption>{escape(caption)}</figcaption>",
            "</figure>",
        ]
    body.append("</section>")

    manifest_text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False, default=str)
    body += [
        '<section id="manifest"><h2>Manifest</h2>',
        f'<pre id="manifest-json">{escape(manifest_text)}</pre>',
        "</section>",
    ]

    head = [
        "<!DOCTYPE html>",
        # English prose; the Swedish outcome and population labels are names
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
    ]
    return "\n".join([*head, *body, "</body>", "</html>"]) + "\n"


def write_report(
    out_dir: str | Path,
    estimates: pd.DataFrame,
    figures: Mapping[str, str | Path],
    manifest: Mapping[str, Any],
    title: str = DEFAULT_TITLE,
    *,
    specification: Mapping[str, Any] | None = None,
    methods: Sequence[str] | None = None,
    event_times: Sequence[int] = DEFAULT_EVENT_TIMES,
    filename: str = REPORT_FILE,
    **table_options: Any,
) -> Path:
    """Write the self-contained HTML report into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (created).
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
    filename
        Name of the HTML file.
    **table_options
        Passed to :func:`finsam_eval.report.tables.isf_table` (stars, p_col, decimals, ...).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_report(
        estimates,
        figures,
        manifest,
        title,
        specification=specification,
        methods=methods,
        event_times=event_times,
        **table_options,
    )
    path = out_dir / filename
    path.write_bytes(text.encode("utf-8"))
    return path


def rebuild_report(
    out_dir: str | Path,
    *,
    title: str | None = None,
    tables: bool = False,
) -> Path:
    """Rebuild ``report.html`` from an output folder's files.

    Reads ``estimates.csv`` (required), ``manifest.json`` (optional) and ``figures/*.png`` /
    ``*.svg``. The title comes from the argument, else the manifest's ``title``, else
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
    figures_dir = out_dir / FIGURES_DIR
    figures = (
        {p.stem: p for p in sorted(figures_dir.iterdir()) if p.suffix.lower() in _IMAGE_TYPES}
        if figures_dir.is_dir()
        else {}
    )
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
    if tables:
        write_tables(out_dir / "tables", estimates, methods=methods, event_times=event_times)
    return write_report(
        out_dir,
        estimates,
        figures,
        manifest,
        title or str(manifest.get("title") or DEFAULT_TITLE),
        methods=methods,
        event_times=event_times,
    )
