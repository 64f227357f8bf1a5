"""The HTML report in a real browser: headless Chromium loads it, every table and image is there,
every image decodes, nothing overflows horizontally, the summary is the first section and is
on the first screen of a screenshot, and the page renders to a non-trivial screenshot.

The report itself has no scripts. To learn whether images decoded, the test loads a *copy* of the
report with a small inline probe script appended, which writes each image's ``naturalWidth`` into
the DOM; ``--dump-dom`` then returns it.

Chromium is looked up as ``$FINSAM_CHROMIUM``, then ``chromium``, ``chromium-browser``,
``google-chrome`` on PATH. Without one the test skips, except under CI (``CI`` set), where it
fails: CI installs it (``apt-get install -y chromium`` on Debian/Ubuntu).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import REPORT_SECTIONS

from finsam_eval.estimators import METHODS
from finsam_eval.pipeline import load_config, run_analysis
from finsam_eval.report.labels import method_slug

WANTED_METHODS = ["twfe", "cs", "sa"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
]
PROBE = """<script>
window.addEventListener("load", function () {
  var images = [];
  document.querySelectorAll("img").forEach(function (img) {
    images.push([img.id, img.complete, img.naturalWidth, img.naturalHeight]);
  });
  var pre = document.createElement("pre");
  pre.id = "browser-probe";
  pre.textContent = JSON.stringify({
    images: images,
    tables: Array.from(document.querySelectorAll("table")).map(function (t) { return t.id; }),
    height: document.documentElement.scrollHeight,
    sections: Array.from(document.querySelectorAll("body > section")).map(function (s) {
      var r = s.getBoundingClientRect();
      return [s.id, r.top + window.scrollY];
    }),
    summaryTable: (function () {
      var t = document.getElementById("summary-table");
      if (!t) { return null; }
      var r = t.getBoundingClientRect();
      return [r.left, r.top + window.scrollY, r.right, r.bottom + window.scrollY];
    })(),
    viewport: [document.documentElement.clientWidth, window.innerHeight],
    scrollWidth: document.documentElement.scrollWidth,
    // elements reaching past the right edge, unless inside a container that scrolls them
    overflowing: Array.from(document.body.querySelectorAll("*")).filter(function (el) {
      if (el.closest("div.scroll, pre")) { return false; }
      return el.getBoundingClientRect().right > document.documentElement.clientWidth + 1;
    }).map(function (el) { return el.tagName + "#" + el.id + "." + el.className; }).slice(0, 20)
  });
  document.body.appendChild(pre);
});
</script>
"""


def find_browser() -> str | None:
    candidates = [os.environ.get("FINSAM_CHROMIUM", "")]
    candidates += [shutil.which(name) or "" for name in BROWSERS]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="module")
def browser() -> str:
    found = find_browser()
    if found is None:
        message = (
            "no Chromium found ($FINSAM_CHROMIUM, or chromium/chromium-browser/google-chrome on "
            "PATH); install it with `apt-get install -y chromium`"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must provide a browser)")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    methods = [m for m in WANTED_METHODS if m in METHODS]
    if not methods:
        pytest.skip(f"none of {WANTED_METHODS} is registered in finsam_eval.estimators.METHODS")
    config = load_config(
        text=(
            '[design]\npopulations = ["alla", "unga"]\noutcomes = ["sjukpenning", "sa"]\n'
            f"methods = {json.dumps(methods)}\nwindow = [-3, 4]\nevent_times = [0, 4]\n"
            "[inference]\nbootstrap = 99\n"
        )
    )
    out = tmp_path_factory.mktemp("report") / "results"
    run_analysis(config, out, progress=False)
    return out


def run_browser(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(profile)},
    )
    assert proc.returncode == 0, f"{browser} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


def expected_ids(report_dir: Path) -> tuple[set[str], set[str]]:
    import pandas as pd

    estimates = pd.read_csv(report_dir / "estimates.csv")
    pairs = estimates[["population", "method"]].drop_duplicates().itertuples(index=False)
    tables = {f"table-{population}-{method_slug(method)}" for population, method in pairs}
    figures = {f"fig-{p.stem}" for p in (report_dir / "figures").glob("*.png")}
    return tables, figures


def test_report_is_self_contained(report_dir: Path) -> None:
    text = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.IGNORECASE)
    assert "@import" not in text and "url(http" not in text


def test_dom_has_every_table_and_image(report_dir: Path, browser: str, tmp_path: Path) -> None:
    proc = run_browser(
        browser, tmp_path / "profile", "--dump-dom", (report_dir / "report.html").as_uri()
    )
    dom = proc.stdout
    tables, figures = expected_ids(report_dir)
    assert tables and figures
    dom_ids = set(re.findall(r'\bid="([^"]+)"', dom))
    assert tables <= dom_ids, f"tables missing from the DOM: {sorted(tables - dom_ids)}"
    assert figures <= dom_ids, f"images missing from the DOM: {sorted(figures - dom_ids)}"
    for section in REPORT_SECTIONS:
        assert section in dom_ids
    # Sun–Abraham tables carry the sunab slug, never the outcome's "sa"
    assert "table-alla-sunab" in dom_ids and "table-alla-sa" not in dom_ids
    # the ISF table of alla × first method carries its outcomes
    assert "Sjukpenning" in dom


def run_probe(report_dir: Path, browser: str, tmp_path: Path, width: int = 1280) -> dict:
    text = (report_dir / "report.html").read_text(encoding="utf-8")
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = run_browser(
        browser,
        tmp_path / f"profile-{width}",
        f"--window-size={width},900",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe_page.as_uri(),
    )
    match = re.search(r'<pre id="browser-probe">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert match, "the probe did not run (no load event?)"
    return json.loads(html.unescape(match.group(1)))


def test_images_decode(report_dir: Path, browser: str, tmp_path: Path) -> None:
    probe = run_probe(report_dir, browser, tmp_path)
    tables, figures = expected_ids(report_dir)
    assert tables <= set(probe["tables"])
    decoded = {image_id: (complete, w, h) for image_id, complete, w, h in probe["images"]}
    assert set(decoded) == figures
    broken = {k: v for k, v in decoded.items() if not (v[0] and v[1] > 100 and v[2] > 100)}
    assert not broken, f"images that did not decode: {broken}"


def test_screenshot_is_not_blank(report_dir: Path, browser: str, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    run_browser(
        browser,
        tmp_path / "profile",
        "--window-size=1280,4000",
        f"--screenshot={shot}",
        (report_dir / "report.html").as_uri(),
    )
    assert shot.is_file() and shot.stat().st_size > 10_000
    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    ink = (np.abs(pixels - 255).sum(axis=2) > 60).mean()
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    # text, table rules and the first figures: a few percent ink and many colours (anti-aliasing,
    # the heatmap), not a blank or single-colour page
    assert ink > 0.01, f"screenshot is almost blank ({ink:.2%} non-white pixels)"
    assert colours > 50, f"screenshot has only {colours} colours"


@pytest.mark.parametrize("width", [1280, 700])
def test_nothing_overflows_horizontally(
    report_dir: Path, browser: str, tmp_path: Path, width: int
) -> None:
    """At a desktop and a narrow window the page never scrolls sideways: wide tables scroll
    inside their own container, images shrink to the column."""
    probe = run_probe(report_dir, browser, tmp_path, width)
    client_width = probe["viewport"][0]
    assert probe["scrollWidth"] <= client_width, (
        f"page is {probe['scrollWidth']} px wide in a {client_width} px viewport; "
        f"overflowing: {probe['overflowing']}"
    )
    assert not probe["overflowing"], probe["overflowing"]


def test_summary_is_first_and_on_the_first_screen(
    report_dir: Path, browser: str, tmp_path: Path
) -> None:
    """Issue 14: the report opens with the summary. It is the first section in the page, its
    table starts on the first screen (1280 × 900), and a screenshot shows it there (ink inside
    the table's box)."""
    from PIL import Image

    probe = run_probe(report_dir, browser, tmp_path)
    sections = probe["sections"]
    assert sections[0][0] == "summary", [s[0] for s in sections]
    assert [top for _, top in sections] == sorted(top for _, top in sections)
    left, top, right, bottom = probe["summaryTable"]
    assert top < 900, f"the summary table starts at {top} px, below the first screen"

    shot = tmp_path / "first-screen.png"
    run_browser(
        browser,
        tmp_path / "profile-shot",
        "--window-size=1280,900",
        f"--screenshot={shot}",
        (report_dir / "report.html").as_uri(),
    )
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    box = pixels[int(top) : min(int(bottom), 900), int(left) : int(right)]
    assert box.size, "the summary table is not inside the screenshot"
    ink = (np.abs(box - 255).sum(axis=2) > 60).mean()
    assert ink > 0.02, f"the summary table's box is blank in the screenshot ({ink:.2%} ink)"


def test_report_pdf_from_the_command_line(
    report_dir: Path,
    browser: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`finsam-eval report --pdf` rebuilds the report and prints it with headless Chromium."""
    from finsam_eval.cli import main

    out = tmp_path / "results"
    shutil.copytree(report_dir, out)
    monkeypatch.setenv("FINSAM_CHROMIUM", browser)
    assert main(["report", "--out", str(out), "--pdf", "--language", "en"]) == 0
    pdf = out / "report.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 50_000  # text, tables and the embedded figures
    assert f"pdf: {pdf}" in capsys.readouterr().out
    assert '<html lang="en">' in (out / "report.html").read_text(encoding="utf-8")
