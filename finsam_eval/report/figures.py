"""Report figures: event-study overlays, adoption heatmap, cohort sizes, Bacon decomposition.

Figures are built as ``matplotlib.figure.Figure`` objects without pyplot, so the library never
touches the global backend or the pyplot figure registry (no figures left open in long runs), and
saving uses the Agg renderer. Every figure is drawn and saved under one fixed style (matplotlib's
defaults plus :data:`RC`, ignoring the user's matplotlibrc) and saved without timestamps or
software metadata, so the same input gives byte-identical PNG/SVG/PDF files with the same
matplotlib version (rendering can change between matplotlib or FreeType versions).
"""

from __future__ import annotations

import functools
import math
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib.style as mpl_style
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib import rcParams
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# planned without matplotlib in figure_jobs; re-exported here, where they were defined before
from finsam_eval.report.figure_jobs import (  # noqa: F401
    FigureJob,
    PlannedFigures,
    _event_time_rows,
    _render,
    series_title,
    write_figures,
)
from finsam_eval.report.labels import method_label, outcome_label, population_label, text

__all__ = [
    "PALETTE",
    "RC",
    "adoption_heatmap",
    "bacon_scatter",
    "cohort_sizes",
    "PlannedFigures",
    "event_study_overlay",
    "figure_style",
    "save_figure",
    "write_figures",
]

#: Okabe–Ito colours: distinguishable with the common colour-vision deficiencies and in grey.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

#: Fixed style on top of matplotlib's defaults. DejaVu Sans ships with matplotlib, so text
#: renders the same on every machine; the SVG hash salt makes element ids reproducible.
RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "figure.dpi": 100.0,
    "savefig.dpi": 150.0,
    "savefig.bbox": None,
    "svg.hashsalt": "finsam_eval",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "text.usetex": False,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "axes.spines.top": False,
    "axes.spines.right": False,
    # titles sit at the top of the axes (there are no top ticks to avoid); a fixed position
    # spares matplotlib measuring the whole y axis on every draw to place them
    "axes.titley": 1.0,
}

# Per-format metadata that would otherwise embed a date or the matplotlib version/URL.
_METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}


@contextmanager
def figure_style() -> Iterator[None]:
    """Context with matplotlib's defaults plus :data:`RC`, restoring the caller's rcParams.

    Both drawing and saving must run inside it: fonts and colours are read when artists are
    created, SVG/PDF settings and text layout when the figure is rendered.
    """
    with mpl_style.context(["default", RC]):
        yield


def _new_figure(figsize: tuple[float, float]) -> tuple[Figure, Any]:
    # no layout engine: :func:`_fit_margins` places the axes once, from measured text sizes
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


#: Space around the outermost texts, in inches (constrained layout's default w_pad/h_pad).
_PAD = 3.0 / 72.0

#: Agg renderers by (width, height, dpi), one set per thread; see :func:`_canvas`.
_RENDERERS = threading.local()


def _canvas(fig: Figure) -> Any:
    """The figure's Agg canvas, drawing with a renderer shared by the figures of one pixel size
    drawn in this thread.

    Matplotlib caches text sizes per renderer; with one renderer per figure every figure
    measures its tick labels, legend entries and axis labels afresh, although most repeat
    from figure to figure. The shared renderer also keeps the shaping of each text and the
    bitmap of each glyph it draws (:func:`_glyph_caching_renderer`). The renderer is cleared
    before every draw and its caches hold pure functions of (text, font, dpi, position within
    a pixel), so a figure's pixels do not depend on what was drawn before it
    (``write_figures`` gives the same files serially and in workers).
    """
    canvas_class = _shared_renderer_canvas()
    return fig.canvas if isinstance(fig.canvas, canvas_class) else canvas_class(fig)


@functools.cache
def _shared_renderer_canvas() -> type:
    # defined at first use: the Agg backend is imported only when a figure is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

    renderer_class = _glyph_caching_renderer(RendererAgg)

    class SharedRendererCanvas(FigureCanvasAgg):
        def get_renderer(self) -> RendererAgg:
            w, h = self.get_width_height(physical=True)
            key = (w, h, self.figure.dpi)
            cache = _RENDERERS.__dict__.setdefault("by_size", {})
            if key not in cache:
                cache[key] = renderer_class(w, h, self.figure.dpi)
            self.renderer = cache[key]
            return self.renderer

    return SharedRendererCanvas


#: Entries a renderer's text caches hold before they start afresh (a run's figures need about
#: 150 shaped texts and 1 700 glyph bitmaps; the bound only keeps long sessions in check).
_MAX_LAYOUTS = 4_096
_MAX_GLYPHS = 32_768


def _glyph_caching_renderer(base: type) -> type:
    """``base`` (matplotlib's ``RendererAgg``) drawing plain text from cached shapes and glyphs.

    Agg draws a text by shaping it (``FT2Font._layout``: glyphs and their offsets) and then
    rasterising every glyph at its sub-pixel position, afresh for every text, although the
    report's figures repeat most texts (tick labels, axis labels, legend entries) and their
    glyphs. This renderer keeps both: the shape by (font, size, dpi, text, hinting, features,
    language), and each glyph's bitmap by (font, size, dpi, glyph, angle, hinting,
    antialiasing, position modulo one pixel in FreeType's 1/64-pixel units). FreeType places
    an outline shifted by whole pixels on the same pixels shifted by as many, so a cached
    bitmap drawn at the position's whole-pixel part gives the pixels matplotlib's own
    ``RendererAgg._draw_text_glyphs_and_boxes`` (3.11) draws, which this method follows step by
    step (tested against ``savefig``). Matplotlib versions without these private font methods
    get ``base`` unchanged; mathtext and TeX are drawn by ``base``.
    """
    from matplotlib import ft2font

    private = ("_layout", "_set_transform", "_render_glyph")
    if not all(hasattr(ft2font.FT2Font, name) for name in private) or not hasattr(
        base, "_draw_text_glyphs_and_boxes"
    ):
        return base
    from matplotlib.backends.backend_agg import get_hinting_flag
    from matplotlib.font_manager import fontManager, get_font

    class GlyphCachingRenderer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._layouts: dict[tuple, list[tuple]] = {}
            self._glyphs: dict[tuple, tuple[np.ndarray, int, int]] = {}
            self._heights: dict[tuple, tuple[float, float, float] | tuple[None, None, None]] = {}

        def _get_font_height_metrics(self, prop: Any) -> tuple:
            # matplotlib's Text asks a renderer for this (3.11) and otherwise reads the font's
            # OS/2 or hhea table on every layout of every text; the same values, computed
            # once per font and size (the renderer's dpi is its figure's, see
            # _shared_renderer_canvas)
            paths = tuple(fontManager._find_fonts_by_props(prop))
            size = prop.get_size_in_points()
            key = (paths, size)
            if key not in self._heights:
                font = get_font(paths)
                metrics: tuple = (None, None, None)  # measure the text instead, as matplotlib
                for table_name, gap, ascent, descent in (
                    ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
                    ("hhea", "lineGap", "ascent", "descent"),
                ):
                    table = font.get_sfnt_table(table_name)
                    if table is not None:
                        scale = size * self.dpi / 72 / font.get_sfnt_table("head")["unitsPerEm"]
                        metrics = (
                            table[ascent] * scale,
                            -table[descent] * scale,
                            table[gap] * scale,
                        )
                        break
                self._heights[key] = metrics
            return self._heights[key]

        def draw_text(
            self,
            gc: Any,
            x: float,
            y: float,
            s: str,
            prop: Any,
            angle: float,
            ismath: Any = False,
            mtext: Any = None,
        ) -> None:
            features = mtext.get_fontfeatures() if mtext is not None else None
            language = mtext.get_language() if mtext is not None else None
            if ismath or not isinstance(language, (str, type(None))):
                super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
                return
            flags = get_hinting_flag()
            size = prop.get_size_in_points()
            font = self._prepare_font(prop)  # the font with its fallbacks, at this size
            key = (font, size, self.dpi, s, flags, features, language)
            items = self._layouts.get(key)
            if items is None:
                if len(self._layouts) >= _MAX_LAYOUTS:
                    self._layouts.clear()
                shaped = font._layout(s, flags=flags, features=features, language=language)
                items = [(i.ft_object, i.glyph_index, i.x, i.y) for i in shaped]
                self._layouts[key] = items
            cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int)
            antialiased = bool(gc.get_antialiased())
            mode = ft2font.RenderMode.NORMAL if antialiased else ft2font.RenderMode.MONO
            height = int(self.height)
            for glyph_font, index, dx, dy in items:  # dy is upwards, y downwards
                # the glyph's origin in FreeType's 26.6 fixed point, y upwards
                whole_x, part_x = divmod(round(0x40 * (x + dx * cos - dy * sin)), 0x40)
                whole_y, part_y = divmod(
                    round(0x40 * (self.height - y + dx * sin + dy * cos)), 0x40
                )
                glyph_key = (glyph_font, size, self.dpi, index, angle, flags, mode, part_x, part_y)
                glyph = self._glyphs.get(glyph_key)
                if glyph is None:
                    if len(self._glyphs) >= _MAX_GLYPHS:
                        self._glyphs.clear()
                    glyph_font.set_size(size, self.dpi)
                    glyph_font._set_transform(matrix, [part_x, part_y])
                    bitmap = glyph_font._render_glyph(index, flags, mode)
                    buffer = bitmap.buffer if antialiased else bitmap.buffer * 0xFF
                    glyph = self._glyphs[glyph_key] = (buffer, bitmap.left, bitmap.top)
                buffer, left, top = glyph
                # draw_text_image's y is downwards and the bitmap's bottom side
                self._renderer.draw_text_image(
                    buffer, whole_x + left, height - (whole_y + top) + buffer.shape[0], 0, gc
                )

    return GlyphCachingRenderer


def _fit_margins(fig: Figure, ax: Any, *, legend_right: bool = False) -> None:
    """Place the single axes so its tick labels, axis labels, title (and an outside legend on
    the right) fit inside the figure with :data:`_PAD` to spare.

    The same result as matplotlib's constrained layout for a one-axes figure, computed once
    from the sizes of the texts that border the axes instead of from the tight bounding boxes
    of every artist (constrained layout measures the whole figure twice and makes ``savefig``
    draw it one extra time: about 40 % of the figures' CPU time in the default run). Text
    sizes do not depend on the axes' position, so one pass suffices; the title is pinned at
    the top of the axes (no top ticks), which spares matplotlib's per-draw title placement.
    """
    # measured at the resolution the figure will be saved at, with the canvas save_figure
    # will use: Agg then reuses this renderer and its cache of text sizes when it draws
    saved_dpi = rcParams["savefig.dpi"]
    screen_dpi = fig.dpi
    if saved_dpi != "figure":
        fig.dpi = float(saved_dpi)
    try:
        _place_axes(fig, ax, _canvas(fig).get_renderer(), legend_right)
    finally:
        fig.dpi = screen_dpi


def _place_axes(fig: Figure, ax: Any, renderer: Any, legend_right: bool) -> None:
    """:func:`_fit_margins` with a renderer at the figure's current dpi."""
    inch = fig.dpi  # display pixels per inch
    points = inch / 72.0  # display pixels per point

    def shown(axis: Any, limits: tuple[float, float]) -> list[tuple[float, Any]]:
        # (position, label) of the tick labels drawn: inside the view limits, with text
        axis.get_majorticklabels()  # sets the ticks' positions and texts, as drawing does
        lo, hi = sorted(limits)
        return [
            (float(tick.get_loc()), tick.label1)
            for tick in axis.get_major_ticks()
            if lo <= tick.get_loc() <= hi and tick.label1.get_visible() and tick.label1.get_text()
        ]

    sizes: dict[Any, tuple[float, float]] = {}

    def size(text: Any) -> tuple[float, float]:
        # each text once: tick labels are needed for the margins' depth and their reach
        if text not in sizes:
            box = text.get_window_extent(renderer)
            sizes[text] = (box.width / inch, box.height / inch)
        return sizes[text]

    def outside(axis: Any, labels: list[tuple[float, Any]], label_side: int) -> float:
        # tick labels, tick length and pad, the axis label and its pad: the margin's depth
        depth = max((size(t)[label_side] for _, t in labels), default=0.0)
        tick = axis.get_major_ticks()[0]
        depth += (max(tick.get_tick_padding(), 0.0) + tick.get_pad()) * points / inch
        if axis.label.get_visible() and axis.label.get_text():
            depth += size(axis.label)[label_side] + axis.labelpad * points / inch
        return depth

    xticks = shown(ax.xaxis, ax.get_xlim())
    yticks = shown(ax.yaxis, ax.get_ylim())
    width, height = fig.get_size_inches()
    left = _PAD + outside(ax.yaxis, yticks, 0)
    bottom = _PAD + outside(ax.xaxis, xticks, 1)
    top = _PAD
    if ax.get_title():
        top += size(ax.title)[1] + ax.titleOffsetTrans.get_matrix()[1, 2] / inch
    right = _PAD
    if legend_right:
        legend = ax.get_legend()
        pad = legend.borderaxespad * legend.prop.get_size_in_points() * points
        right += (legend.get_window_extent(renderer).width + pad) / inch
    # tick labels centred on ticks near the axes' ends reach past them (the axes' size from
    # the margins so far: a reach of a few points does not move the ticks noticeably)
    (x_lo, x_hi), (y_lo, y_hi) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    axes_w, axes_h = width - left - right, height - bottom - top
    for x, label in xticks if x_hi > x_lo else []:
        half = size(label)[0] / 2.0
        left = max(left, _PAD + half - (x - x_lo) / (x_hi - x_lo) * axes_w)
        right = max(right, _PAD + half - (x_hi - x) / (x_hi - x_lo) * axes_w)
    for y, label in yticks if y_hi > y_lo else []:
        half = size(label)[1] / 2.0
        bottom = max(bottom, _PAD + half - (y - y_lo) / (y_hi - y_lo) * axes_h)
        top = max(top, _PAD + half - (y_hi - y) / (y_hi - y_lo) * axes_h)
    fig.subplots_adjust(
        left=left / width, right=1.0 - right / width, bottom=bottom / height, top=1.0 - top / height
    )


def _label_axes(ax: Any, x_key: str, y_key: str, title: str, language: str) -> None:
    """Axis labels (message keys of :func:`~finsam_eval.report.labels.text`) and the title."""
    ax.set_xlabel(text(x_key, language))
    ax.set_ylabel(text(y_key, language))
    ax.set_title(title)


def _event_rows(estimates: pd.DataFrame, population: str, outcome: str) -> pd.DataFrame:
    rows = estimates[
        (estimates["population"].astype(str) == population)
        & (estimates["outcome"].astype(str) == outcome)
    ]
    return _event_time_rows(rows)


def event_study_overlay(
    estimates: pd.DataFrame,
    population: str,
    outcome: str,
    methods: Sequence[str] | None = None,
    *,
    event_times: Sequence[int] | None = None,
    title: str | None = None,
    language: str = "en",
) -> Figure:
    """Event-study estimates of several methods on one axis, dodged horizontally.

    Parameters
    ----------
    estimates
        The long results table (population, outcome, method, event_time, estimate, ci_lower,
        ci_upper).
    population, outcome
        The series to plot.
    methods
        Methods in legend order (each keeps its colour and offset even when absent); default
        every method present, alphabetically.
    event_times
        Event times to show; default all present (pre-periods included).
    title
        Axes title; default "<population label>: <outcome label>".
    language
        "sv" or "en" for the axis labels, title and legend title; the legend shows method
        labels (:func:`finsam_eval.report.labels.method_label`), never raw keys.

    Returns
    -------
    matplotlib.figure.Figure
        Points with pointwise confidence intervals (``ci_lower``, ``ci_upper``), one colour per
        method, a zero reference line and a
        dashed line at -0.5 separating pre- from post-joining periods.
    """
    rows = _event_rows(estimates, population, outcome)
    if rows.empty:
        raise ValueError(f"no event-study estimates for {population!r}, {outcome!r}")
    if methods is None:
        methods = sorted(set(rows["method"].astype(str)))
    if event_times is not None:
        rows = rows[rows["event_time"].isin([float(t) for t in event_times])]
    k = len(methods)
    # keep all dodged points of one event time within ±0.35 so neighbours never overlap
    step = min(0.15, 0.7 / max(k - 1, 1))
    with figure_style():
        fig, ax = _new_figure((7.0, 4.0))
        # the columns once, ordered by event time; each method's points are a mask of them
        ordered = rows.sort_values("event_time", kind="stable")
        method_of_row = ordered["method"].astype(str).to_numpy()
        event_time, estimate, lower, upper = (
            ordered[column].to_numpy(dtype=float)
            for column in ("event_time", "estimate", "ci_lower", "ci_upper")
        )
        for i, method in enumerate(methods):
            mine = method_of_row == method
            if not mine.any():
                continue
            est = estimate[mine]
            ax.errorbar(
                event_time[mine] + (i - (k - 1) / 2) * step,
                est,
                yerr=np.vstack([est - lower[mine], upper[mine] - est]),
                fmt=_MARKERS[i % len(_MARKERS)],
                color=PALETTE[i % len(PALETTE)],
                markersize=4,
                capsize=2.5,
                linewidth=1.0,
                label=method_label(method),
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.axvline(-0.5, color="grey", linestyle="--", linewidth=0.8)
        ticks = sorted(set(rows["event_time"].astype(int)))
        ax.set_xticks(ticks)
        if title is None:
            title = f"{population_label(population, language)}: {outcome_label(outcome, language)}"
        _label_axes(ax, "years_since_joining", "effect_pp", title, language)
        ax.legend(title=text("method_legend", language), loc="best", frameon=False)
        _fit_margins(fig, ax)
    return fig


def _kommun_cohorts(cohorts: pd.DataFrame) -> pd.DataFrame:
    """One row per kommun with cohort 0 for never; accepts panel-like frames (repeated rows)."""
    missing = {"kommun_kod", "cohort"} - set(cohorts.columns)
    if missing:
        raise ValueError(f"cohorts frame lacks column(s) {sorted(missing)}")
    frame = cohorts[["kommun_kod", "cohort"]].copy()
    frame["kommun_kod"] = frame["kommun_kod"].astype(str)
    frame["cohort"] = pd.to_numeric(frame["cohort"], errors="coerce").fillna(0).astype(int)
    frame = frame.drop_duplicates()
    conflicts = frame["kommun_kod"][frame["kommun_kod"].duplicated()]
    if not conflicts.empty:
        raise ValueError(f"kommuner with more than one cohort: {sorted(set(conflicts))[:10]}")
    # adopters by cohort, never-members (0) last; kommun code breaks ties for a stable order
    frame["_never"] = frame["cohort"] == 0
    return frame.sort_values(["_never", "cohort", "kommun_kod"], kind="stable").reset_index(
        drop=True
    )


def adoption_heatmap(
    cohorts: pd.DataFrame,
    years: Sequence[int],
    *,
    title: str | None = None,
    language: str = "en",
) -> Figure:
    """Kommun × year membership heatmap, kommuner ordered by cohort (never-members last).

    Parameters
    ----------
    cohorts
        Columns ``kommun_kod`` and ``cohort`` (first membership year; 0 or missing = never).
        Repeated rows per kommun (a panel) are allowed if their cohort agrees. Membership is
        treated as absorbing, as in the staggered-adoption design.
    years
        Calendar years on the x axis.
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    frame = _kommun_cohorts(cohorts)
    years = [int(y) for y in years]
    cohort = frame["cohort"].to_numpy()
    year_arr = np.asarray(years)
    member = (cohort[:, None] > 0) & (year_arr[None, :] >= cohort[:, None])
    with figure_style():
        fig, ax = _new_figure((7.0, 7.5))
        ax.imshow(
            member.astype(float),
            aspect="auto",
            interpolation="nearest",
            cmap=ListedColormap(["#EEEEEE", PALETTE[0]]),
            vmin=0.0,
            vmax=1.0,
            extent=(years[0] - 0.5, years[-1] + 0.5, len(frame) - 0.5, -0.5),
        )
        # one y tick per cohort, at the middle of its block, instead of 290 kommun labels
        centres, labels = [], []
        for value, block in frame.groupby("cohort", sort=False):
            centres.append(float(block.index.to_numpy().mean()))
            name = text("never", language) if value == 0 else str(value)
            labels.append(f"{name} ({len(block)})")
        ax.set_yticks(centres, labels)
        tick_step = 1 if len(years) <= 12 else 2
        ax.set_xticks(years[::tick_step])
        title = title or text("membership_title", language)
        _label_axes(ax, "calendar_year", "kommuner_by_cohort", title, language)
        ax.legend(
            handles=[
                Patch(facecolor=PALETTE[0], label=text("member", language)),
                Patch(facecolor="#EEEEEE", edgecolor="grey", label=text("not_member", language)),
            ],
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
        )
        _fit_margins(fig, ax, legend_right=True)
    return fig


def cohort_sizes(
    cohorts: pd.DataFrame, *, title: str | None = None, language: str = "en"
) -> Figure:
    """Bar chart of the number of kommuner per cohort, never-members as the last bar.

    Parameters
    ----------
    cohorts
        Columns ``kommun_kod`` and ``cohort`` (see :func:`adoption_heatmap`).
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    frame = _kommun_cohorts(cohorts)
    counts = frame.groupby("cohort", sort=False).size()  # already in cohort order, never last
    labels = [text("never", language) if c == 0 else str(c) for c in counts.index]
    colours = ["#999999" if c == 0 else PALETTE[0] for c in counts.index]
    with figure_style():
        fig, ax = _new_figure((7.0, 3.5))
        bars = ax.bar(range(len(counts)), counts.to_numpy(), color=colours)
        ax.bar_label(bars, fontsize=7)
        ax.set_xticks(range(len(counts)), labels, rotation=90 if len(counts) > 14 else 0)
        _label_axes(
            ax, "cohort_axis", "kommuner", title or text("cohorts_title", language), language
        )
        _fit_margins(fig, ax)
    return fig


def bacon_scatter(
    decomposition: pd.DataFrame, *, title: str | None = None, language: str = "en"
) -> Figure:
    """Goodman-Bacon decomposition: 2×2 DiD estimates against their TWFE weights.

    Parameters
    ----------
    decomposition
        Columns ``estimate``, ``weight`` and ``type`` (comparison type, e.g. "treated vs never",
        "earlier vs later", "later vs earlier").
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One colour and marker per type, with the weighted mean (the TWFE estimate when the
        weights are the decomposition's) as a horizontal line.
    """
    missing = {"estimate", "weight", "type"} - set(decomposition.columns)
    if missing:
        raise ValueError(f"decomposition lacks column(s) {sorted(missing)}")
    est = decomposition["estimate"].to_numpy(dtype=float)
    weight = decomposition["weight"].to_numpy(dtype=float)
    types = decomposition["type"].astype(str).to_numpy()
    with figure_style():
        fig, ax = _new_figure((6.0, 4.0))
        for i, kind in enumerate(sorted(set(types))):
            mask = types == kind
            ax.scatter(
                weight[mask],
                est[mask],
                color=PALETTE[i % len(PALETTE)],
                marker=_MARKERS[i % len(_MARKERS)],
                s=24,
                label=kind,
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        total = np.nansum(weight)
        if total > 0 and math.isfinite(total):
            mean = float(np.nansum(weight * est) / total)
            ax.axhline(
                mean,
                color="grey",
                linestyle="--",
                linewidth=0.8,
                label=text("weighted_mean", language, mean=f"{mean:.3f}"),
            )
        title = title or "Goodman-Bacon decomposition"
        _label_axes(ax, "bacon_weight", "bacon_estimate", title, language)
        ax.legend(loc="best", frameon=False)
        _fit_margins(fig, ax)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: float | None = None) -> Path:
    """Save a figure deterministically (PNG, SVG or PDF by suffix).

    Renders under :func:`figure_style` and strips metadata that embeds dates or software
    versions, so saving the same figure twice gives identical bytes.

    Parameters
    ----------
    fig
        The figure.
    path
        Target file; the suffix picks the format. Parent folders are created.
    dpi
        Resolution of raster output; default ``RC["savefig.dpi"]`` (150).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _METADATA:
        raise ValueError(f"unsupported figure format {path.suffix!r}; use .png, .svg or .pdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    with figure_style():
        if fmt == "png":
            _save_png(fig, path, rcParams["savefig.dpi"] if dpi is None else dpi)
        else:
            fig.savefig(path, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return path


#: zlib level of the PNG files. The scanlines are stored unfiltered: the figures are mostly
#: flat colour, which zlib compresses as well after no filter as after libpng's or Pillow's
#: per-row adaptive choice (32 default-run figures: 1.78 MB at level 3 against Pillow's
#: 1.81 MB at level 1), in a third of the time.
_PNG_COMPRESS_LEVEL = 3


def _save_png(fig: Figure, path: Path, dpi: float | str) -> None:
    """Draw ``fig`` with Agg at ``dpi`` and write it as PNG: RGB when every pixel is opaque
    (the figures have a white background; matplotlib always writes RGBA), no text chunks."""
    from matplotlib.backend_bases import FigureCanvasBase

    if dpi == "figure":
        dpi = fig.dpi
    dpi = float(dpi)
    # a figure shown elsewhere (pyplot, a GUI) keeps its own canvas, as with savefig
    own_canvas = fig.canvas
    canvas = _canvas(fig)
    screen_dpi = fig.dpi
    fig.dpi = dpi
    try:
        canvas.draw()  # runs a layout engine first, if the figure has one
        rgba = np.asarray(canvas.buffer_rgba())  # a view: the canvas may be drawn again
        pixels = rgba[..., :3] if rgba[..., 3].min() == 255 else rgba
        png = _png_bytes(pixels, dpi)
    finally:
        fig.dpi = screen_dpi
        if type(own_canvas) is not FigureCanvasBase and own_canvas is not canvas:
            fig.set_canvas(own_canvas)
    path.write_bytes(png)


def _png_bytes(pixels: np.ndarray, dpi: float) -> bytes:
    """An 8-bit RGB or RGBA PNG of ``pixels`` (height × width × 3 or 4, uint8) with its
    resolution (pHYs) and no other ancillary chunk (PNG specification, ISO/IEC 15948:2004).

    Every scanline uses filter type 0 (none); see :data:`_PNG_COMPRESS_LEVEL`.
    """
    height, width, channels = pixels.shape
    scanlines = np.empty((height, 1 + width * channels), dtype=np.uint8)
    scanlines[:, 0] = 0  # the filter-type byte that starts each scanline
    scanlines[:, 1:] = pixels.reshape(height, width * channels)
    colour_type = {3: 2, 4: 6}[channels]  # truecolour, truecolour with alpha
    per_metre = int(dpi / 0.0254 + 0.5)  # rounded as Pillow and libpng do

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)),
            chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
            chunk(b"IDAT", zlib.compress(scanlines, _PNG_COMPRESS_LEVEL)),
            chunk(b"IEND", b""),
        ]
    )


_BUILDERS = {
    "adoption_heatmap": adoption_heatmap,
    "bacon_scatter": bacon_scatter,
    "cohort_sizes": cohort_sizes,
    "event_study_overlay": event_study_overlay,
}
