"""Locating person-year files: one parquet or CSV file, or a (hive-partitioned) folder of them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MicrodataError", "MicrodataSource", "find_microdata"]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".gz": "csv"}


class MicrodataError(ValueError):
    """Person-year input that cannot be read or lacks required columns."""


@dataclass(frozen=True)
class MicrodataSource:
    """Where the person-year rows are.

    Attributes
    ----------
    path
        The file or folder given.
    files
        Every data file, sorted (deterministic order for every engine).
    format
        ``"parquet"`` or ``"csv"``.
    hive
        True when the folder has ``key=value`` partition folders (e.g. ``year=2005/``), whose
        keys become columns.
    """

    path: Path
    files: tuple[Path, ...]
    format: str
    hive: bool

    def describe(self) -> str:
        """One line for reports and manifests."""
        kind = (
            "hive-partitioned folder" if self.hive else ("folder" if self.path.is_dir() else "file")
        )
        return f"{self.format} {kind} {self.path} ({len(self.files)} file(s))"


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".csv.gz"):
        return "csv"
    suffix = path.suffix.lower()
    return _FORMATS.get(suffix) if suffix != ".gz" else None


def find_microdata(path: str | os.PathLike[str], format: str | None = None) -> MicrodataSource:
    """Find the person-year files under ``path``.

    Parameters
    ----------
    path
        A parquet or CSV file (``.parquet``, ``.csv``, ``.csv.gz``), or a folder holding such
        files at any depth, e.g. partitioned as ``year=1998/part-0.parquet``.
    format
        ``"parquet"`` or ``"csv"``; None infers it from the file names.

    Raises
    ------
    MicrodataError
        If the path does not exist, holds no data files, mixes formats, or ``format`` is
        unknown.
    """
    root = Path(path)
    if format is not None and format not in ("parquet", "csv"):
        raise MicrodataError(f"unknown microdata format {format!r}; use 'parquet' or 'csv'")
    if not root.exists():
        raise MicrodataError(f"microdata path not found: {root}")
    if root.is_file():
        files = [root]
    else:
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith((".", "_")) and _format_of(p)
        )
        if not files:
            raise MicrodataError(f"no .parquet or .csv files under {root}")
    found = {_format_of(p) for p in files}
    if format is None:
        if len(found) != 1 or None in found:
            raise MicrodataError(
                f"cannot tell the format of {root}: found {sorted(map(str, found))}; pass "
                "format='parquet' or 'csv'"
            )
        format = found.pop()
    elif root.is_dir() and found != {format}:
        files = [p for p in files if _format_of(p) == format]
    hive = root.is_dir() and any(
        "=" in part for p in files for part in p.relative_to(root).parts[:-1]
    )
    return MicrodataSource(root, tuple(files), format, hive)
