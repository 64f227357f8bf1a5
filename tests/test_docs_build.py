"""The documentation builds with ``mkdocs build --strict``: any warning fails the build.

Warnings include broken links between pages, pages missing from the nav, and docstrings that
mkdocstrings (numpy style) cannot parse for the API reference.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_MODULES = {
    "mkdocs": "mkdocs",
    "mkdocstrings": "mkdocstrings",
    "mkdocstrings_handlers.python": "mkdocstrings-python",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # parent package missing
        return False


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    missing = [package for module, package in DOC_MODULES.items() if not _installed(module)]
    if missing:
        pytest.fail(
            f"documentation packages not installed: {missing}; install the test extra "
            '(pip install -e ".[test]")'
        )
    site = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    return site, log


def test_docs_build_strict(build: tuple[Path, str]) -> None:
    site, log = build
    problems = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert not problems, "mkdocs reported:\n" + "\n".join(problems)
    for page in sorted(p.stem for p in (ROOT / "docs").glob("*.md")):
        built = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.is_file(), f"docs/{page}.md was not built"


def test_api_reference_renders_docstrings(build: tuple[Path, str]) -> None:
    """The API page carries the docstrings, not empty ``:::`` stubs."""
    site, _ = build
    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    for text in (
        "finsam_eval.estimators.api.estimate",
        "Dynamic two-way fixed-effects (TWFE) event study",
        "Borusyak",
        "finsam_eval.pipeline.config.load_config",
        "finsam_eval.inference.honest.honest_did",
    ):
        assert text in html, f"{text!r} missing from the API reference"
    assert ":::" not in html


def test_every_docs_page_is_in_the_nav() -> None:
    """New pages (performance.md, power.md, ...) must be added to mkdocs.yml's nav."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [page for page in pages if f" {page}" not in config]
    assert not missing, f"docs pages not in the nav of mkdocs.yml: {missing}"
