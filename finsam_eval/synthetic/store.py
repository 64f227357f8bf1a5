"""Reading and writing the bundled synthetic data (data/synthetic/).

Files are written byte-for-byte reproducibly: fixed column order and float format, "\\n" line
endings, and gzip members with no timestamp or file name, so regenerating with the default seed
gives identical bytes (a test checks it).
"""

from __future__ import annotations

import gzip
import io
from functools import cache
from pathlib import Path

import pandas as pd

from finsam_eval.synthetic.generator import DEFAULT_SEED, SyntheticData, generate_synthetic

__all__ = [
    "FILES",
    "bundled_dir",
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


def bundled_dir() -> Path | None:
    """The repository's data/synthetic folder, or None when the package runs outside a checkout."""
    path = Path(__file__).resolve().parents[2] / "data" / "synthetic"
    return path if (path / FILES["numerators"]).is_file() else None


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

    Returns
    -------
    dict
        Table name → written path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = generate_synthetic(seed)
    written = {}
    for name, filename in FILES.items():
        path = out / filename
        _write(path, _csv_bytes(getattr(data, name)), compress=filename.endswith(".gz"))
        written[name] = path
    return written


_DTYPES = {
    "numerators": {"kommun_kod": str, "sex": str, "age_band": str, "outcome": str},
    "population": {"kommun_kod": str, "sex": str},
    "calendar": {"kommun_kod": str, "forbund": str},
    "truth": {"population": str, "outcome": str},
}


@cache
def _sources(directory: str | None, seed: int) -> SyntheticData:
    if directory is None:
        return generate_synthetic(seed)
    path = Path(directory)
    frames = {
        name: pd.read_csv(path / filename, dtype=_DTYPES[name], keep_default_na=False)
        for name, filename in FILES.items()
    }
    calendar = frames["calendar"]
    calendar["end_year"] = pd.to_numeric(calendar["end_year"].replace("", None)).astype("Int64")
    return SyntheticData(seed=seed, **frames)


def load_synthetic_sources(seed: int = DEFAULT_SEED) -> SyntheticData:
    """The synthetic source tables (numerators, population, calendar, truth).

    With the default seed they are read from the bundled data/synthetic folder when the package
    runs from a checkout, and generated in memory otherwise (identical content either way).
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
def _built(seed: int):
    from finsam_eval.panel import build_panel
    from finsam_eval.registry.membership import calendar_to_cohorts

    data = load_synthetic_sources(seed)
    cohorts = calendar_to_cohorts(data.calendar)
    return build_panel(data.numerators, data.population, cohorts=cohorts)


def load_synthetic(seed: int = DEFAULT_SEED, with_report: bool = False):
    """The built synthetic kommun-year panel (all five populations, 25 series).

    Parameters
    ----------
    seed
        Generator seed; the default is the bundled data set.
    with_report
        Also return the panel builder's report.

    Returns
    -------
    pandas.DataFrame or (DataFrame, BuildReport)
        Columns kommun_kod, kommun, lan_kod, year, population, outcome, numerator, denominator,
        share, cohort, forbund, weight, cluster_kommun, cluster_forbund, cluster_lan.
    """
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
