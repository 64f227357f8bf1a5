"""Report figures: content, deterministic saving, no leaked global matplotlib state."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from helpers import estimate_row
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from finsam_eval.report import figures as F
from finsam_eval.report.background import Background


def make_estimates(methods=("cs", "twfe", "sa")) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for outcome in ("sjukpenning", "uvas"):
        for population in ("alla", "unga"):
            for method in methods:
                for t in range(-2, 7):
                    est = float(rng.normal(0, 0.2))
                    rows.append(estimate_row(population, outcome, method, t, est, 0.1, 0.5, z=2.0))
    return pd.DataFrame(rows)


@pytest.fixture
def cohorts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kommun_kod": ["0180", "1480", "1280", "0114", "2480", "0380", "0115"],
            "cohort": [2005, 0, 2007, 2005, np.nan, 2006, 2007],
        }
    )


def test_event_study_overlay_content():
    fig = F.event_study_overlay(make_estimates(), "alla", "sjukpenning", ["twfe", "cs", "sa"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.containers) == 3  # one errorbar per method
    # one colour per method, in the given order
    colours = [to_hex(c.lines[0].get_color()) for c in ax.containers]
    assert colours == [c.lower() for c in F.PALETTE[:3]]
    # method labels, never raw keys (issue 14)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "TWFE event study",
        "Callaway & Sant'Anna (2021)",
        "Sun & Abraham (2021)",
    ]
    # dodged: the three methods' x positions at one event time differ, centred on it
    xs = np.array([c.lines[0].get_xdata()[2] for c in ax.containers])
    assert len(set(xs)) == 3 and xs.mean() == pytest.approx(0.0)
    # zero reference line and the dashed line at -0.5
    flat = [ln for ln in ax.lines if len(set(ln.get_ydata())) == 1 and ln.get_ydata()[0] == 0]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert flat and dashed and list(dashed[0].get_xdata()) == [-0.5, -0.5]
    assert "Sickness benefit (sjukpenning)" in ax.get_title()
    swedish = F.event_study_overlay(make_estimates(), "alla", "sjukpenning", language="sv")
    assert swedish.axes[0].get_title() == "Alla 19–64 år: Sjukpenning"


def test_event_study_overlay_missing_series():
    with pytest.raises(ValueError, match="no event-study estimates"):
        F.event_study_overlay(make_estimates(), "aldre", "sjukpenning")


def test_adoption_heatmap_orders_never_last(cohorts):
    fig = F.adoption_heatmap(cohorts, range(2003, 2011))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["2005 (2)", "2006 (1)", "2007 (2)", "never (2)"]
    image = ax.get_images()[0].get_array()
    assert image.shape == (7, 8)
    # rows: 0114, 0180 (2005), 0380 (2006), 0115, 1280 (2007), 1480, 2480 (never)
    assert image[0].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert image[2].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert image[-1].sum() == 0 and image[-2].sum() == 0


def test_heatmap_rejects_conflicting_cohorts():
    frame = pd.DataFrame({"kommun_kod": ["0180", "0180"], "cohort": [2005, 2006]})
    with pytest.raises(ValueError, match="more than one cohort"):
        F.adoption_heatmap(frame, range(2004, 2008))


def test_cohort_sizes(cohorts):
    ax = F.cohort_sizes(cohorts).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2005", "2006", "2007", "never"]
    assert [p.get_height() for p in ax.patches] == [2, 1, 2, 2]


def test_bacon_scatter_weighted_mean():
    decomposition = pd.DataFrame(
        {
            "estimate": [1.0, -1.0, 2.0],
            "weight": [0.5, 0.25, 0.25],
            "type": ["treated vs never", "later vs earlier", "treated vs never"],
        }
    )
    ax = F.bacon_scatter(decomposition).axes[0]
    assert len(ax.collections) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["later vs earlier", "treated vs never", "weighted mean 0.750"]
    with pytest.raises(ValueError, match="lacks column"):
        F.bacon_scatter(decomposition.drop(columns="type"))


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_save_twice_byte_identical(tmp_path, suffix, cohorts):
    figures = [
        F.event_study_overlay(make_estimates(), "unga", "uvas"),
        F.cohort_sizes(cohorts),
    ]
    for i, fig in enumerate(figures):
        a = F.save_figure(fig, tmp_path / f"a{i}{suffix}").read_bytes()
        b = F.save_figure(fig, tmp_path / f"b{i}{suffix}").read_bytes()
        assert a == b
    # a figure rebuilt from the same input is identical too
    again = F.save_figure(F.cohort_sizes(cohorts), tmp_path / f"c{suffix}").read_bytes()
    assert again == (tmp_path / f"a1{suffix}").read_bytes()
    if suffix == ".png":
        assert a.startswith(b"\x89PNG") and b"Software" not in a
    else:
        assert b"<dc:date>" not in a and b"https://matplotlib" not in a


def test_save_rejects_unknown_format(tmp_path, cohorts):
    with pytest.raises(ValueError, match="unsupported figure format"):
        F.save_figure(F.cohort_sizes(cohorts), tmp_path / "x.jpg")


def test_global_rcparams_untouched(cohorts, tmp_path):
    with mpl.rc_context({"font.size": 17.0, "lines.linewidth": 4.0}):
        fig = F.cohort_sizes(cohorts)
        F.save_figure(fig, tmp_path / "x.png")
        assert mpl.rcParams["font.size"] == 17.0
        assert mpl.rcParams["lines.linewidth"] == 4.0
        # and the user's settings did not leak into the figure
        assert fig.axes[0].title.get_fontsize() == 10.0


def test_write_figures_names(tmp_path, cohorts):
    est = make_estimates(methods=("cs",))
    decomposition = pd.DataFrame({"estimate": [0.1], "weight": [1.0], "type": ["a"]})
    written = F.write_figures(
        tmp_path, est, cohorts=cohorts, decomposition={"alla-sjukpenning": decomposition}
    )
    # uvas is defined only for unga, so there is no alla-uvas figure
    assert list(written) == [
        "adoption-heatmap",
        "cohort-sizes",
        "event-alla-sjukpenning",
        "event-unga-sjukpenning",
        "event-unga-uvas",
        "bacon-alla-sjukpenning",
    ]
    assert all(p.is_file() and p.suffix == ".png" for p in written.values())


def test_write_figures_parallel_same_files(tmp_path, cohorts):
    # the figures drawn in forked worker processes are byte-identical to those drawn here
    est = make_estimates(methods=("cs", "twfe"))
    decomposition = pd.DataFrame({"estimate": [0.1], "weight": [1.0], "type": ["a"]})
    kwargs = {"cohorts": cohorts, "decomposition": {"alla-sjukpenning": decomposition}}
    serial = F.write_figures(tmp_path / "serial", est, workers=1, **kwargs)
    parallel = F.write_figures(tmp_path / "parallel", est, workers=2, **kwargs)
    assert list(serial) == list(parallel)
    for name in serial:
        assert serial[name].read_bytes() == parallel[name].read_bytes(), name
        assert parallel[name].parent == tmp_path / "parallel"


def test_background_figures_in_batches_same_files(tmp_path, cohorts):
    # the pipeline submits the adoption figures first and the event studies later, drawn in
    # workers while it goes on: the same names and bytes as write_figures draws here
    est = make_estimates(methods=("cs", "twfe"))
    serial = F.write_figures(tmp_path / "serial", est, cohorts=cohorts, workers=1)
    with Background(2) as background:
        first = F.write_figures(tmp_path / "batches", cohorts=cohorts, background=background)
        second = F.write_figures(tmp_path / "batches", est, background=background)
        drawn = dict(first.pending.get() + second.pending.get())
    assert drawn == {**first, **second}
    assert list(drawn) == list(serial)
    for name in serial:
        assert drawn[name] == tmp_path / "batches" / serial[name].name
        assert drawn[name].read_bytes() == serial[name].read_bytes(), name


def _worker_gc_state() -> tuple[int, tuple[int, int, int]]:
    import gc

    return gc.get_freeze_count(), gc.get_threshold()


def test_background_workers_freeze_inherited_objects():
    # a forked worker never scans the objects it inherits and collects less often; this
    # process's collector is left as it was
    import gc

    from finsam_eval.report import background

    before = gc.get_freeze_count(), gc.get_threshold()
    with Background(2) as pool:
        frozen, thresholds = pool.map(_worker_gc_state, [()]).get()[0]
    assert frozen > 10_000  # numpy, pandas, matplotlib and this test session's objects
    assert thresholds == background._WORKER_GC_THRESHOLDS
    assert (gc.get_freeze_count(), gc.get_threshold()) == before


def test_background_figure_error_raises(tmp_path):
    bad = pd.DataFrame({"estimate": [0.1], "weight": [1.0]})  # no "type" column
    with Background(2) as background:
        planned = F.write_figures(tmp_path, decomposition=bad, background=background)
        with pytest.raises(ValueError, match="type"):
            planned.pending.get()


def _layout_figures(cohorts):
    many = pd.DataFrame(
        {"kommun_kod": [f"{i:04d}" for i in range(20)], "cohort": list(range(2000, 2019)) + [0]}
    )
    decomposition = pd.DataFrame(
        {"estimate": [-12.5, 0.3], "weight": [0.2, 0.8], "type": ["treated vs never", "x"]}
    )
    return {
        "event": F.event_study_overlay(make_estimates(), "unga", "uvas", language="sv"),
        "heatmap": F.adoption_heatmap(cohorts, range(2003, 2011)),
        "cohorts-rotated": F.cohort_sizes(many),
        "bacon": F.bacon_scatter(decomposition, title="A rather long title " * 3),
    }


def _drawn_ticklabels(axis, limits):
    lo, hi = sorted(limits)
    return [
        tick.label1
        for tick in axis.get_major_ticks()
        if lo <= tick.get_loc() <= hi and tick.label1.get_text()
    ]


def test_fixed_margins_keep_every_text_inside_and_apart(cohorts):
    # the axes are placed from measured text sizes (no layout engine): after drawing, every
    # text (tick and axis labels, title, legend) lies inside the figure, and the axis labels
    # do not overlap the tick labels
    for name, fig in _layout_figures(cohorts).items():
        assert fig.get_layout_engine() is None
        fig.dpi = F.RC["savefig.dpi"]  # drawn as saved; text positions are set when drawn
        canvas = FigureCanvasAgg(fig)
        with F.figure_style():
            canvas.draw()
        renderer = canvas.get_renderer()
        ax = fig.axes[0]
        xticks = _drawn_ticklabels(ax.xaxis, ax.get_xlim())
        yticks = _drawn_ticklabels(ax.yaxis, ax.get_ylim())
        assert xticks and yticks, name
        inside = fig.bbox.padded(0.5)
        boxes = [a.get_window_extent(renderer) for a in [ax.title, ax.xaxis.label, ax.yaxis.label]]
        boxes += [t.get_window_extent(renderer) for t in xticks + yticks]
        if ax.get_legend() is not None:
            boxes.append(ax.get_legend().get_window_extent(renderer))
        for box in boxes:
            assert inside.x0 <= box.x0 and box.x1 <= inside.x1, (name, box, fig.bbox)
            assert inside.y0 <= box.y0 and box.y1 <= inside.y1, (name, box, fig.bbox)
        tick_x0 = min(t.get_window_extent(renderer).x0 for t in yticks)
        tick_y0 = min(t.get_window_extent(renderer).y0 for t in xticks)
        assert ax.yaxis.label.get_window_extent(renderer).x1 <= tick_x0, name
        assert ax.xaxis.label.get_window_extent(renderer).y1 <= tick_y0, name
        assert ax.title.get_window_extent(renderer).y0 >= ax.bbox.y1, name


def test_png_has_matplotlibs_own_pixels(tmp_path, cohorts):
    # save_figure draws with a shared renderer that caches shaped texts and glyph bitmaps, and
    # writes the PNG itself (zlib, RGB when every pixel is opaque): the pixels and resolution
    # are those of matplotlib's own savefig of the same figure, also for a figure whose texts
    # all come from the caches ("again"), rotated texts and a transparent figure (RGBA)
    from PIL import Image

    figures = {
        "en": F.event_study_overlay(make_estimates(), "alla", "sjukpenning"),
        **_layout_figures(cohorts),
        "again": F.event_study_overlay(make_estimates(), "alla", "sjukpenning"),
        "transparent": F.cohort_sizes(cohorts),
    }
    figures["transparent"].patch.set_alpha(0.0)
    for name, fig in figures.items():
        ours = Image.open(F.save_figure(fig, tmp_path / f"{name}-ours.png"))
        FigureCanvasAgg(fig)  # matplotlib's own canvas and renderer, not save_figure's
        with F.figure_style():
            fig.savefig(tmp_path / f"{name}-theirs.png", dpi=F.RC["savefig.dpi"])
        theirs = Image.open(tmp_path / f"{name}-theirs.png")
        assert theirs.mode == "RGBA", name
        assert ours.size == theirs.size, name
        if name == "transparent":
            assert ours.mode == "RGBA"
            assert np.array_equal(np.asarray(ours), np.asarray(theirs))
            assert np.asarray(theirs)[..., 3].min() == 0
        else:
            assert ours.mode == "RGB", name
            assert np.array_equal(np.asarray(ours), np.asarray(theirs.convert("RGB"))), name
            assert np.asarray(theirs)[..., 3].min() == 255  # nothing lost by dropping alpha
        assert ours.info["dpi"] == pytest.approx(theirs.info["dpi"])  # pixels per metre, rounded
        assert not ours.text  # no metadata chunks
    assert Image.open(tmp_path / "en-ours.png").size == (1050, 600)


def test_save_png_keeps_a_foreign_canvas(tmp_path):
    # a figure drawn elsewhere (here: on its own Agg canvas) keeps its canvas after saving
    fig = F.event_study_overlay(make_estimates(), "alla", "sjukpenning")
    fig.set_canvas(FigureCanvasAgg(fig))
    canvas = fig.canvas
    F.save_figure(fig, tmp_path / "x.png")
    assert fig.canvas is canvas
