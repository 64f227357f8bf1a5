"""Reading and writing the bundled synthetic data (package data in finsam_eval/synthetic/data/).

Source files are written byte-for-byte reproducibly: fixed column order and float format, "\\n"
line endings, and gzip members with no timestamp or file name, so regenerating with the default
seed gives identical bytes (a test checks it).

Next to the sources, ``panel.parquet`` holds the built panel, so that :func:`load_synthetic`
in a new process reads it (a fraction of a second) instead of rebuilding it (seconds). It
carries a content key in its Parquet metadata: a SHA-256 over the seed, the bytes of the four
source files and the code and data of the layers that build the panel (finsam_eval/registry,
finsam_eval/panel). A panel whose key does not match is never used: the panel is rebuilt from
the sources instead, so the cached file cannot go stale. Regenerate the bundled files with
``make synthetic-data``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from functools import cache
from pathlib import Path

import pandas as pd

from finsam_eval.synthetic.generator import DEFAULT_SEED, SyntheticData, generate_synthetic

__all__ = [
    "FILES",
    "PANEL_FILE",
    "bundled_dir",
    "panel_key",
    "load_synthetic",
    "load_synthetic_sources",
    "load_synthetic_truth",
    "write_synthetic",
]

FILES = {
    "numerators": "numerators.csv.gz",
    "population": "population.csv.gz",
    "calendar": "calendar.csv",
    "truth": "truth.csv",
}


PANEL_FILE = "panel.parquet"
_KEY_FIELD = b"finsam_eval.synthetic_key"
_PACKAGE = Path(__file__).resolve().parents[1]
# the code and data that turn the source tables into the panel: a change to any of them changes
# the key, so a panel.parquet written before the change is not used
_BUILDER_GLOBS = ("panel/*.py", "registry/*.py", "registry/data/*")


def bundled_dir() -> Path | None:
    """The package's bundled synthetic data folder (finsam_eval/synthetic/data), if present."""
    path = Path(__file__).resolve().parent / "data"
    return path if (path / FILES["numerators"]).is_file() else None


def panel_key(directory: str | Path, seed: int) -> str:
    """The content key of the panel built from the source files in ``directory``.

    A SHA-256 over ``seed``, the bytes of the four source files (:data:`FILES`) and the files of
    finsam_eval/panel and finsam_eval/registry (the builder's code and registry data).
    """
    digest = hashlib.sha256(f"seed={int(seed)}\n".encode())
    for filename in FILES.values():
        digest.update(filename.encode() + b"\0" + (Path(directory) / filename).read_bytes())
    for pattern in _BUILDER_GLOBS:
        for path in sorted(_PACKAGE.glob(pattern)):
            if path.is_file():
                relative = path.relative_to(_PACKAGE).as_posix().encode()
                digest.update(relative + b"\0" + path.read_bytes().replace(b"\r\n", b"\n"))
    return digest.hexdigest()


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.12g").encode("utf-8")


def _write(path: Path, payload: bytes, compress: bool) -> None:
    if compress:
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
            gz.write(payload)
        payload = buffer.getvalue()
    path.write_bytes(payload)


def write_synthetic(out_dir: str | Path, seed: int = DEFAULT_SEED) -> dict[str, Path]:
    """Generate the synthetic data with ``seed`` and write it to ``out_dir``.

    Writes the four source tables (:data:`FILES`) and the panel built from them
    (:data:`PANEL_FILE`, zstd-compressed Parquet with its content key, see :func:`panel_key`).

    Returns
    -------
    dict
        Table name → written path ("numerators", "population", "calendar", "truth", "panel").
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from finsam_eval.panel import build_panel
    from finsam_eval.registry.membership import calendar_to_cohorts

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = generate_synthetic(seed)
    written = {}
    for name, filename in FILES.items():
        path = out / filename
        _write(path, _csv_bytes(getattr(data, name)), compress=filename.endswith(".gz"))
        written[name] = path
    # the panel is built from the files as written, exactly as load_synthetic would build it
    sources = _read_sources(out, seed)
    panel = build_panel(
        sources.numerators, sources.population, cohorts=calendar_to_cohorts(sources.calendar)
    ).panel
    table = pa.Table.from_pandas(panel, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), _KEY_FIELD: panel_key(out, seed).encode()}
    written["panel"] = out / PANEL_FILE
    pq.write_table(table.replace_schema_metadata(metadata), written["panel"], compression="zstd")
    return written


_DTYPES = {
    "numerators": {"kommun_kod": str, "sex": str, "age_band": str, "outcome": str},
    "population": {"kommun_kod": str, "sex": str},
    "calendar": {"kommun_kod": str, "forbund": str, "origin": str},
    "truth": {"population": str, "outcome": str},
}


def _read_sources(path: Path, seed: int) -> SyntheticData:
    frames = {
        name: pd.read_csv(path / filename, dtype=_DTYPES[name], keep_default_na=False)
        for name, filename in FILES.items()
    }
    calendar = frames["calendar"]
    calendar["end_year"] = pd.to_numeric(calendar["end_year"].replace("", None)).astype("Int64")
    return SyntheticData(seed=seed, **frames)


@cache
def _sources(directory: str | None, seed: int) -> SyntheticData:
    if directory is None:
        return generate_synthetic(seed)
    return _read_sources(Path(directory), seed)


def load_synthetic_sources(seed: int = DEFAULT_SEED) -> SyntheticData:
    """The synthetic source tables (numerators, population, calendar, truth).

    With the default seed they are read from the bundled package data (finsam_eval/synthetic/data),
    otherwise generated in memory (identical content either way).
    """
    directory = bundled_dir() if seed == DEFAULT_SEED else None
    data = _sources(None if directory is None else str(directory), seed)
    return SyntheticData(
        numerators=data.numerators.copy(),
        population=data.population.copy(),
        calendar=data.calendar.copy(),
        truth=data.truth.copy(),
        seed=data.seed,
    )


@cache
def _bundled_panel(directory: str, seed: int) -> pd.DataFrame | None:
    """The bundled built panel, or None when it is absent or its key does not match."""
    path = Path(directory) / PANEL_FILE
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    stored = (pq.read_schema(path).metadata or {}).get(_KEY_FIELD, b"").decode()
    if stored != panel_key(directory, seed):
        return None  # stale: built from other sources or by other builder code
    return pd.read_parquet(path)


@cache
def _built(seed: int):
    from finsam_eval.panel import build_panel
    from finsam_eval.registry.membership import calendar_to_cohorts

    data = load_synthetic_sources(seed)
    cohorts = calendar_to_cohorts(data.calendar)
    return build_panel(data.numerators, data.population, cohorts=cohorts)


def load_synthetic(seed: int = DEFAULT_SEED, with_report: bool = False):
    """The built synthetic kommun-year panel (all five populations, 25 series).

    With the default seed the bundled ``panel.parquet`` is read when its content key matches
    the bundled sources and the builder's code (:func:`panel_key`); otherwise, and for other
    seeds, the panel is built from the source tables (a few seconds, cached in the process).

    Parameters
    ----------
    seed
        Generator seed; the default is the bundled data set.
    with_report
        Also return the panel builder's report (the panel is then rebuilt from the sources).

    Returns
    -------
    pandas.DataFrame or (DataFrame, BuildReport)
        Columns kommun_kod, kommun, lan_kod, year, population, outcome, numerator, denominator,
        share, cohort, forbund, weight, cluster_kommun, cluster_forbund, cluster_lan.
    """
    directory = bundled_dir() if seed == DEFAULT_SEED else None
    if directory is not None and not with_report:
        panel = _bundled_panel(str(directory), seed)
        if panel is not None:
            return panel.copy()
    built = _built(seed)
    if with_report:
        return built.panel.copy(), built.report
    return built.panel.copy()


def load_synthetic_truth(aggregate: str | None = None, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The true effects behind the synthetic data, in percentage points.

    Parameters
    ----------
    aggregate
        None: one row per population × outcome × cohort × event time (``att``).
        "event_time": the cohort-size-weighted ATT per event time, i.e. the weights of
        Callaway & Sant'Anna's dynamic aggregation: for event time e, cohorts g with g + e
        inside 1998–2018 weighted by their number of kommuner.
    seed
        Generator seed.
    """
    truth = load_synthetic_sources(seed).truth
    if aggregate is None:
        return truth
    if aggregate != "event_time":
        raise ValueError(f"aggregate must be None or 'event_time', got {aggregate!r}")
    weighted = truth.assign(weighted=truth["att"] * truth["n_kommuner"])
    grouped = weighted.groupby(["population", "outcome", "event_time"], sort=False)
    out = grouped[["weighted", "n_kommuner"]].sum().reset_index()
    out["att"] = out["weighted"] / out["n_kommuner"]
    out = out.rename(columns={"n_kommuner": "n_kommuner_total"})
    order = {name: i for i, name in enumerate(truth["population"].unique())}
    order.update({name: i for i, name in enumerate(truth["outcome"].unique())})
    out = out.sort_values(
        ["population", "outcome", "event_time"],
        key=lambda col: col.map(order) if col.name != "event_time" else col,
        kind="stable",
        ignore_index=True,
    )
    return out[["population", "outcome", "event_time", "att", "n_kommuner_total"]]
