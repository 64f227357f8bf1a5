"""Print the HTML report to PDF with headless Chromium, where a Chromium is installed.

The report is self-contained, so Chromium's own print-to-PDF renders exactly what a reader sees
in the browser; no PDF library is needed. Chromium is looked up as ``$FINSAM_CHROMIUM``, then
``chromium``, ``chromium-browser``, ``google-chrome`` and ``google-chrome-stable`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["BROWSERS", "find_chromium", "report_pdf"]

BROWSERS: tuple[str, ...] = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-pdf-header-footer",
)


def find_chromium() -> str | None:
    """Path of a Chromium-family browser, or None."""
    candidates = [os.environ.get("FINSAM_CHROMIUM", "")]
    candidates += [shutil.which(name) or "" for name in BROWSERS]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def report_pdf(
    html_path: str | Path,
    pdf_path: str | Path | None = None,
    *,
    browser: str | None = None,
    timeout: float = 180.0,
) -> Path:
    """Print ``report.html`` to PDF.

    Parameters
    ----------
    html_path
        The HTML report.
    pdf_path
        Target file; default the report's path with suffix ``.pdf``.
    browser
        Chromium executable; default :func:`find_chromium`.
    timeout
        Seconds before giving up.

    Returns
    -------
    pathlib.Path
        The written PDF.

    Raises
    ------
    FileNotFoundError
        When the report or a Chromium is missing (the message says how to install one).
    OSError
        When Chromium fails or writes no PDF.
    """
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(f"{html_path} not found: write the report first")
    pdf_path = html_path.with_suffix(".pdf") if pdf_path is None else Path(pdf_path).resolve()
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError(
            "no Chromium for --pdf: install one (e.g. apt-get install chromium) or set "
            "FINSAM_CHROMIUM to its path"
        )
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="finsam-chromium-") as profile:
        proc = subprocess.run(
            [
                browser,
                *_FLAGS,
                f"--user-data-dir={profile}",
                f"--print-to-pdf={pdf_path}",
                html_path.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "HOME": profile},
            check=False,
        )
    if proc.returncode != 0 or not pdf_path.is_file():
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise OSError(f"{browser} could not print {html_path} ({proc.returncode}): {tail}")
    return pdf_path
