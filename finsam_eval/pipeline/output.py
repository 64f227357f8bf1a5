"""Output folders of ``run``: refuse foreign folders, replace an earlier output whole.

A run writes into a fresh sibling folder and swaps it in at the end (rename the old output
away, rename the new one in, delete the old), so no file of an earlier run survives next to the
new estimates (e.g. figures of series no longer configured), and a failed run leaves the earlier
output untouched. A non-empty folder without a finsam-eval ``manifest.json`` is never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

__all__ = [
    "OutputFolderError",
    "check_output_folder",
    "is_finsam_output",
    "listed_files",
    "replace_folder",
    "staging_folder",
]

MANIFEST_FILE = "manifest.json"


class OutputFolderError(ValueError):
    """An output folder that a run must not write into (the CLI exits with code 2)."""


def is_finsam_output(folder: str | Path) -> bool:
    """Whether ``folder`` holds an earlier finsam-eval output: its ``manifest.json`` is a JSON
    object written by :func:`finsam_eval.report.write_manifest` for a run (a ``config_sha256`` and
    the finsam_eval version under ``versions``)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    versions = manifest.get("versions")
    return (
        isinstance(versions, dict)
        and "finsam_eval" in versions
        and isinstance(manifest.get("config_sha256"), str)
    )


def check_output_folder(out: str | Path) -> None:
    """Refuse an output folder that is a file, or non-empty and not an earlier finsam-eval output.

    Raises
    ------
    OutputFolderError
        Naming the folder and the fix; nothing has been written or deleted.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(
            f"output folder {out} is a file, not a folder; choose another output folder (--out DIR)"
        )
    if out.is_dir() and any(out.iterdir()) and not is_finsam_output(out):
        raise OutputFolderError(
            f"output folder {out} is not empty and is not an earlier finsam-eval output (no "
            f"finsam-eval {MANIFEST_FILE}); nothing was written or deleted: choose a new or "
            "empty output folder (--out DIR), or empty this one yourself"
        )


def _sibling(out: Path, tag: str) -> Path:
    """A new, unused name beside ``out`` (same file system, so renames are atomic)."""
    while True:
        candidate = out.parent / f".{out.name}.{tag}-{secrets.token_hex(4)}"
        if not candidate.exists():
            return candidate


def staging_folder(out: str | Path) -> Path:
    """Create and return an empty sibling folder of ``out`` for a run to write into."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = _sibling(out, "staging")
    staged.mkdir()
    return staged


def replace_folder(staged: str | Path, out: str | Path) -> None:
    """Move the finished ``staged`` folder to ``out``, replacing an earlier output whole.

    The earlier output is renamed away first and deleted only once the new folder is in place;
    if the second rename fails, the earlier output is put back.
    """
    staged, out = Path(staged), Path(out)
    if not out.exists():
        os.replace(staged, out)
        return
    old = _sibling(out, "old")
    os.replace(out, old)
    try:
        os.replace(staged, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def listed_files(folder: str | Path) -> list[str]:
    """Every file under ``folder``, as sorted POSIX paths relative to it."""
    folder = Path(folder)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
