"""Self-contained HTML report and run manifest."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import estimate_row
from matplotlib.figure import Figure

from finsam_eval.report.figures import save_figure
from finsam_eval.report.html import element_id, rebuild_report, render_report, write_report
from finsam_eval.report.manifest import (
    PACKAGES,
    build_manifest,
    canonical_config_text,
    hash_files,
    hash_frames,
    read_manifest,
    write_manifest,
)
from finsam_eval.report.tables import write_estimates_csv

POPULATIONS = ("alla", "kvinnor", "man", "unga", "aldre")
OUTCOMES = ("sjukpenning", "sa", "ekonomiskt_bistand", "af_till_arbete", "studier", "uvas")
DEFINED = {"alla": 5, "kvinnor": 5, "man": 5, "unga": 6, "aldre": 4}
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


def make_estimates(methods=("cs", "twfe")) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for population in POPULATIONS:
        for outcome in OUTCOMES:
            for method in methods:
                for t in range(0, 7):
                    est = float(rng.normal(0, 0.2))
                    p = float(rng.uniform())
                    rows.append(estimate_row(population, outcome, method, t, est, 0.1, p))
    return pd.DataFrame(rows)


def tiny_png(path: Path, colour: str) -> Path:
    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [0, 1], color=colour)
    return save_figure(fig, path, dpi=20)


class Checker(HTMLParser):
    """Collects ids, images and links, and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.urls.append(attrs[key])
        if tag == "img":
            self.imgs.append(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
        else:
            self.stack.pop()


def check(text: str) -> Checker:
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed: {checker.stack}"
    return checker


@pytest.fixture
def out_dir(tmp_path) -> Path:
    """An output folder as the pipeline writes it."""
    out = tmp_path / "results"
    write_estimates_csv(make_estimates(), out / "estimates.csv")
    tiny_png(out / "figures" / "event-alla-sjukpenning.png", "red")
    tiny_png(out / "figures" / "event-unga-uvas.png", "blue")
    tiny_png(out / "figures" / "adoption-heatmap.png", "green")
    config_text = '[design]\nmethods = ["twfe", "cs"]\nevent_times = [0, 6]\n'
    config = {"design": {"methods": ["twfe", "cs"], "event_times": [0, 6]}}
    manifest = build_manifest(
        config, config_text, [out / "estimates.csv"], seed=1, timings={"estimate": 1.5},
        extra={"title": "Finsam <test> & report"},
    )  # fmt: skip
    write_manifest(manifest, out / "manifest.json")
    return out


def test_report_structure(out_dir):
    path = rebuild_report(out_dir)
    assert path == out_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>\n")
    parsed = check(text)

    # every ISF table and image addressable by a stable id, ids unique
    assert len(parsed.ids) == len(set(parsed.ids))
    for section in ("title", "specification", "tables", "figures", "manifest", "contents"):
        assert section in parsed.ids
    for population in POPULATIONS:
        for method in ("cs", "twfe"):
            assert f"table-{population}-{method}" in parsed.ids
    img_ids = [img["id"] for img in parsed.imgs]
    # design figures first, then event studies in ISF population order
    assert img_ids == ["fig-adoption-heatmap", "fig-event-alla-sjukpenning", "fig-event-unga-uvas"]
    for img in parsed.imgs:
        assert img["alt"]
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix) :]).startswith(b"\x89PNG")

    # self-contained: no external references, no scripts, no stylesheet links
    assert all(url.startswith(("#", "data:")) for url in parsed.urls), parsed.urls
    assert not re.search(r"https?://", text)
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert "style" in parsed.tags

    # the configured method order and escaped title
    assert text.index('id="table-alla-twfe"') < text.index('id="table-alla-cs"')
    assert "<title>Finsam &lt;test&gt; &amp; report</title>" in text


def test_tables_rows_follow_population_definitions(out_dir):
    text = rebuild_report(out_dir).read_text(encoding="utf-8")
    for population, n in DEFINED.items():
        start = text.index(f'<table id="table-{population}-cs"')
        table = text[start : text.index("</table>", start)]
        assert table.count('<tr class="estimate"') == n
        assert table.count('<tr class="se"') == n
    alla = text[text.index('id="table-alla-cs"') :]
    alla = alla[: alla.index("</table>")]
    assert 'data-outcome="uvas"' not in alla


def test_manifest_and_specification_shown(out_dir):
    text = rebuild_report(out_dir).read_text(encoding="utf-8")
    manifest = read_manifest(out_dir / "manifest.json")
    assert manifest["config_sha256"] in text
    # the specification in words, with method labels, not raw config keys
    spec = text[text.index('<section id="specification">') :]
    spec = spec[: spec.index("</section>")]
    assert "TWFE event study; Callaway &amp; Sant&#39;Anna (2021)" in spec
    assert "design.methods" not in spec


def test_report_byte_identical_and_rebuild_matches_write(out_dir, tmp_path):
    first = rebuild_report(out_dir).read_bytes()
    second = rebuild_report(out_dir).read_bytes()
    assert first == second
    manifest = read_manifest(out_dir / "manifest.json")
    figures = {p.stem: p for p in (out_dir / "figures").glob("*.png")}
    written = write_report(
        tmp_path / "other",
        pd.read_csv(out_dir / "estimates.csv"),
        dict(reversed(list(figures.items()))),  # caller order does not matter
        manifest,
        manifest["title"],
        methods=["twfe", "cs"],
    )
    assert written.read_bytes() == first
    assert b"\r" not in first


@pytest.mark.filterwarnings("ignore:openpyxl not installed")
def test_rebuild_also_writes_tables(out_dir):
    rebuild_report(out_dir, tables=True)
    assert (out_dir / "tables" / "isf_unga_twfe.md").is_file()
    assert (out_dir / "tables" / "isf_aldre_cs.tex").is_file()


def test_rebuild_without_estimates(tmp_path):
    with pytest.raises(FileNotFoundError, match="estimates.csv"):
        rebuild_report(tmp_path)


def test_render_without_figures_or_manifest():
    text = render_report(make_estimates(methods=("cs",)), {}, {}, "Bare")
    parsed = check(text)
    assert "table-aldre-cs" in parsed.ids and not parsed.imgs


def test_duplicate_ids_rejected(tmp_path):
    a = tiny_png(tmp_path / "a.png", "red")
    with pytest.raises(ValueError, match="id"):
        render_report(make_estimates(methods=("cs",)), {"x y": a, "x-y": a}, {})


def test_element_id():
    assert element_id("fig", "event-alla-sjukpenning") == "fig-event-alla-sjukpenning"
    assert element_id("table", "ålder grupp", "c/s") == "table--lder-grupp-c-s"


# ---------------------------------------------------------------------------------- manifest


def _declared_dependencies() -> set[str]:
    import re
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return {re.match(r"[A-Za-z0-9._-]+", d).group(0) for d in deps}


# distribution name -> import name where they differ
_IMPORT_NAMES = {"pyyaml": "yaml", "pillow": "PIL", "scikit-learn": "sklearn"}


def test_every_runtime_dependency_is_imported_by_the_library():
    """Issue 14: a runtime dependency the library never imports belongs in an extra."""
    import re

    package = Path(__file__).resolve().parents[1] / "finsam_eval"
    source = "\n".join(p.read_text(encoding="utf-8") for p in package.rglob("*.py"))
    for dist in sorted(_declared_dependencies()):
        module = _IMPORT_NAMES.get(dist.lower(), dist.lower().replace("-", "_"))
        pattern = rf"^\s*(import|from)\s+{re.escape(module)}(\.|\s|$)"
        assert re.search(pattern, source, re.MULTILINE), f"{dist} is never imported"


def test_build_manifest(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n")
    (data / "b.csv").write_text("y\n2\n")
    config = {"design": {"methods": ("cs",), "alpha": np.float64(0.05)}, "out": Path("r")}
    manifest = build_manifest(
        config, "a = 1\r\n", [data / "b.csv", data / "a.csv"], seed=np.int64(7),
        timings={"panel": 0.12345},
    )  # fmt: skip
    # every runtime dependency pyproject.toml declares, read independently here
    declared = _declared_dependencies()
    assert declared and set(PACKAGES) | declared | {"python"} == set(manifest["versions"])
    assert manifest["versions"]["finsam_eval"] and manifest["versions"]["numpy"]
    assert manifest["seed"] == 7
    assert manifest["timings"] == {"panel": 0.123}
    assert manifest["config"] == {"design": {"methods": ["cs"], "alpha": 0.05}, "out": "r"}
    assert [f["path"] for f in manifest["inputs"]["files"]] == ["a.csv", "b.csv"]
    # canonical text: line endings and trailing blanks do not change the hash
    same = build_manifest({}, "a = 1   \n\n", None)
    assert same["config_sha256"] == manifest["config_sha256"]
    assert build_manifest({}, "a = 2\n", None)["config_sha256"] != manifest["config_sha256"]
    assert canonical_config_text("\n x = 1 \r\ny=2") == " x = 1\ny=2\n"

    path = write_manifest(manifest, tmp_path / "m" / "manifest.json")
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "config"')
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert read_manifest(path) == json.loads(json.dumps(manifest))


def test_input_hash_relocatable_and_content_sensitive(tmp_path):
    for folder, content in (("one", "1"), ("two", "1"), ("three", "2")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.csv").write_text(content)
    one = hash_files([tmp_path / "one" / "a.csv"])["sha256"]
    assert one == hash_files([tmp_path / "two" / "a.csv"])["sha256"]
    assert one != hash_files([tmp_path / "three" / "a.csv"])["sha256"]
    with pytest.raises(FileNotFoundError):
        hash_files([tmp_path / "missing.csv"])


def test_data_hash_inputs():
    frame = pd.DataFrame({"kommun_kod": ["0180", "1480"], "count": [1, 2]})
    digest = hash_frames({"numerators": frame})
    assert digest == hash_frames({"numerators": frame.copy()})
    assert digest != hash_frames({"numerators": frame.assign(count=[1, 3])})
    assert build_manifest({}, "", digest)["inputs"] == {"sha256": digest}
    with pytest.raises(ValueError, match="sha256"):
        build_manifest({}, "", "data/panel.csv")
    with pytest.raises(ValueError, match="overwrite"):
        build_manifest({}, "", None, extra={"seed": 1})
