"""Run manifest: what produced an output folder (versions, configuration, data, seed, timings).

The manifest lets a reader check that two output folders came from the same code, configuration
and data: the configuration is hashed from a canonical form of its text (so line endings and
trailing blanks do not matter), input data by file contents or by a caller-supplied hash (e.g.
:func:`hash_frames` of synthetic tables generated in memory). Timings make the manifest differ
between otherwise identical runs; nothing else in it depends on the clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PACKAGES",
    "build_manifest",
    "canonical_config_text",
    "hash_files",
    "hash_frames",
    "package_versions",
    "runtime_dependencies",
    "read_manifest",
    "write_manifest",
]

#: Distributions recorded besides the runtime dependencies (python is added separately).
PACKAGES: tuple[str, ...] = ("finsam_eval",)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def runtime_dependencies() -> list[str]:
    """Names of finsam_eval's runtime dependencies: the ``dependencies`` of the ``pyproject.toml``
    beside the package in a source tree or editable install, else the installed distribution
    metadata (``Requires-Dist`` without an ``extra`` marker). Both are the one list pyproject.toml
    declares, never a second hand-kept one.
    """
    requirements: list[str] | None = None
    # a source tree (or an editable install) declares its list in pyproject.toml, which may be
    # newer than the metadata recorded when it was installed; a wheel has only the metadata
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == "finsam_eval":
            requirements = list(project.get("dependencies", []))
    if requirements is None:
        try:
            requirements = metadata.requires("finsam_eval") or []
        except metadata.PackageNotFoundError:
            requirements = []
    names = []
    for requirement in requirements:
        if "extra" in requirement.partition(";")[2]:
            continue  # optional extras (test tools, peers) are not runtime dependencies
        match = _REQUIREMENT_NAME.match(requirement)
        if match:
            names.append(match.group(1))
    return sorted(dict.fromkeys(names), key=str.lower)


def package_versions(packages: Sequence[str] | None = None) -> dict[str, str | None]:
    """Installed versions of finsam_eval, every runtime dependency and ``python``.

    Parameters
    ----------
    packages
        Distributions to record; default ``finsam_eval`` plus :func:`runtime_dependencies`.

    Returns
    -------
    dict
        name → version, None for a distribution that is not installed.
    """
    if packages is None:
        packages = [*PACKAGES, *runtime_dependencies()]
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if "finsam_eval" in versions and versions["finsam_eval"] is None:
        # running from a source tree without installation: the package still knows its version
        from finsam_eval import __version__

        versions["finsam_eval"] = __version__
    versions["python"] = platform.python_version()
    return versions


def canonical_config_text(text: str) -> str:
    """Configuration text in canonical form: "\\n" line endings, no trailing whitespace on
    lines, no leading or trailing blank lines, one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Content hashes of input files and one combined hash.

    Paths are recorded relative to their common folder, so the same files in another location
    give the same combined hash, while renaming or swapping files changes it.

    Returns
    -------
    dict
        ``files``: list of {path, bytes, sha256} sorted by path; ``sha256``: hash of the sorted
        "path\\0sha256" lines.
    """
    resolved = [Path(p).resolve() for p in paths]
    if not resolved:
        return {"files": [], "sha256": hashlib.sha256(b"").hexdigest()}
    missing = [str(p) for p in resolved if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"input file(s) not found: {missing}")
    base = Path(os.path.commonpath([p.parent for p in resolved]))
    files = sorted(
        (
            {"path": p.relative_to(base).as_posix(), "bytes": p.stat().st_size, "sha256": h}
            for p, h in ((p, _sha256_file(p)) for p in resolved)
        ),
        key=lambda f: f["path"],
    )
    combined = hashlib.sha256(
        "".join(f"{f['path']}\0{f['sha256']}\n" for f in files).encode("utf-8")
    ).hexdigest()
    return {"files": files, "sha256": combined}


def hash_frames(frames: Mapping[str, pd.DataFrame]) -> str:
    """One sha256 of in-memory tables (names, columns, dtypes and values, not the index).

    For data that never touches disk, e.g. synthetic source tables. Uses
    ``pandas.util.hash_pandas_object``, so the hash is stable for a given pandas version.
    """
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        header = json.dumps(
            [name, [str(c) for c in frame.columns], [str(d) for d in frame.dtypes]],
            ensure_ascii=False,
        )
        digest.update(header.encode("utf-8"))
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON types for configs that hold tuples, paths, numpy scalars or dataclasses."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # NaN/inf are not JSON
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def build_manifest(
    config: Mapping[str, Any] | Any,
    config_text: str,
    inputs: Sequence[str | Path] | str | None,
    seed: int | None = None,
    timings: Mapping[str, float] | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the run manifest.

    Parameters
    ----------
    config
        The parsed configuration (a mapping or a dataclass), recorded as JSON.
    config_text
        Its source text; ``config_sha256`` is the sha256 of :func:`canonical_config_text`.
    inputs
        Input files (hashed by content, :func:`hash_files`), or a precomputed 64-character
        lowercase hex sha256 of the data (e.g. :func:`hash_frames`), or None.
    seed
        Seed of the run (synthetic data / bootstrap).
    timings
        Step name → seconds, rounded to milliseconds.
    extra
        Further top-level entries, e.g. ``{"title": ...}`` used by ``rebuild_report``.

    Returns
    -------
    dict
        Keys ``config``, ``config_sha256``, ``inputs``, ``seed``, ``timings``, ``versions``,
        ``platform`` plus ``extra``.
    """
    if isinstance(inputs, str):
        if not _HEX64.match(inputs):
            raise ValueError(
                "inputs as a string must be a lowercase hex sha256 of the data; pass a list to "
                f"hash files (got {inputs!r})"
            )
        input_entry: dict[str, Any] | None = {"sha256": inputs}
    elif inputs is None:
        input_entry = None
    else:
        input_entry = hash_files(list(inputs))
    manifest: dict[str, Any] = {
        "config": _jsonable(config),
        "config_sha256": hashlib.sha256(
            canonical_config_text(config_text).encode("utf-8")
        ).hexdigest(),
        "inputs": input_entry,
        "seed": None if seed is None else int(seed),
        "timings": {str(k): round(float(v), 3) for k, v in (timings or {}).items()},
        "versions": package_versions(),
        "platform": platform.platform(),
    }
    if extra:
        clash = set(extra) & set(manifest)
        if clash:
            raise ValueError(f"extra entries would overwrite manifest keys {sorted(clash)}")
        manifest.update(_jsonable(dict(extra)))
    return manifest


def write_manifest(manifest: Mapping[str, Any], path: str | Path) -> Path:
    """Write the manifest as JSON: sorted keys, indent 2, UTF-8, final newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(manifest), sort_keys=True, indent=2, ensure_ascii=False)
    path.write_bytes((text + "\n").encode("utf-8"))
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read a manifest written by :func:`write_manifest`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
