"""Fetch outcomes and population into the panel builder's raw source-table format.

Raw format (docs/architecture.md):

* numerators: ``kommun_kod``, ``year``, ``sex`` (K/M), ``age_band`` (19-24, 25-54, 55-64),
  ``outcome``, ``count``;
* population: ``kommun_kod``, ``year``, ``sex``, ``age`` (single years), ``population``.

Sources publish other age groups than the builder's bands, so counts are re-grouped here
using SCB's single-year population, and every assumption this needs is written to the
report (never silently):

* a count for an age group (FK's 16-19, 20-24 ...) is spread over its single years in
  proportion to population, then summed into bands; exact when groups nest in bands;
* a total for both sexes is split by the sexes' population shares;
* a share (Kolada, percent) becomes ``share / 100 × population`` of each band that overlaps
  the KPI's ages, assuming the share is the same at every age of the band;
* a band that count groups only partly cover is left out (not scaled up);
* missing or suppressed cells stay missing: the row is left out and listed, never set to 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.registry import harmonise_codes
from finsam_eval.sources.agency_files import LOADERS, load_agency_file
from finsam_eval.sources.cache import Provenance
from finsam_eval.sources.catalogue import (
    FILE_SOURCES,
    MICRODATA_SOURCES,
    CatalogueError,
    check_title_ages,
    load_catalogue,
    parse_ages,
)
from finsam_eval.sources.http import HttpClient, SourceError
from finsam_eval.sources.kolada import DEFAULT_KOLADA_URL, KoladaClient
from finsam_eval.sources.scb import DEFAULT_SCB_URL, ScbClient

__all__ = [
    "AGE_BANDS",
    "FetchResult",
    "MissingFileError",
    "fetch",
    "shares_to_bands",
    "to_age_bands",
]

#: The builder's age bands (docs/architecture.md), inclusive.
AGE_BANDS: dict[str, tuple[int, int]] = {"19-24": (19, 24), "25-54": (25, 54), "55-64": (55, 64)}
NUMERATOR_COLUMNS = ["kommun_kod", "year", "sex", "age_band", "outcome", "count"]
POPULATION_COLUMNS = ["kommun_kod", "year", "sex", "age", "population"]
REPORT_COLUMNS = ["outcome", "kind", "kommun_kod", "year", "sex", "detail"]


class MissingFileError(SourceError):
    """An outcome comes from an agency file that was not given.

    The message shows how to pass the file in the caller's own syntax: ``--file OUTCOME=PATH``
    for the command line, ``files={...}`` for Python (see ``fetch(..., interface=...)``).
    """

    def __init__(self, message: str, outcome: str, source: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.source = source


def _without(frame: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frame`` whose values in ``keys``' columns are not a row of ``keys`` (anti-join)."""
    merged = frame.merge(keys.drop_duplicates(), on=list(keys.columns), how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge")


def _file_hint(outcome: str, interface: str) -> str:
    if interface == "cli":
        return f"--file {outcome}=PATH"
    return f"files={{'{outcome}': path}}"


@dataclass
class FetchResult:
    """What :func:`fetch` returns.

    Attributes
    ----------
    numerators
        Builder raw format; rows with missing counts are left out (see ``report``).
    population
        Builder raw format, single years of age.
    provenance
        One row per series: source, URLs, query, retrieval time, content hash, library
        version, whether it came from the cache, cache path.
    report
        One row per issue: ``outcome``, ``kind`` (``suppressed``, ``missing``,
        ``missing_years``, ``assumption``, ``partial_band``, ``aggregate_rows``,
        ``dropped_rows``, ``code_change``, ``table_note``), ``kommun_kod``, ``year``, ``sex``,
        ``detail``.
    """

    numerators: pd.DataFrame
    population: pd.DataFrame
    provenance: pd.DataFrame
    report: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REPORT_COLUMNS))

    def summary(self) -> str:
        """A few lines for the CLI."""
        lines = [
            f"numerators: {len(self.numerators)} rows, outcomes "
            f"{sorted(map(str, self.numerators['outcome'].unique()))}",
            f"population: {len(self.population)} rows, years "
            f"{sorted(map(int, self.population['year'].unique()))}",
        ]
        if len(self.report):
            counts = self.report.groupby(["outcome", "kind"]).size()
            lines += [f"  {o} {k}: {n}" for (o, k), n in counts.items()]
        return "\n".join(lines)


def _issue(outcome: str, kind: str, detail: str, **where: Any) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "kind": kind,
        "kommun_kod": where.get("kommun_kod", ""),
        "year": where.get("year", pd.NA),
        "sex": where.get("sex", ""),
        "detail": detail,
    }


def _band_of_age(ages: np.ndarray, bands: Mapping[str, tuple[int, int]]) -> np.ndarray:
    out = np.full(len(ages), "", dtype=object)
    for name, (lo, hi) in bands.items():
        out[(ages >= lo) & (ages <= hi)] = name
    return out


def to_age_bands(
    groups: pd.DataFrame,
    population: pd.DataFrame,
    outcome: str,
    bands: Mapping[str, tuple[int, int]] = AGE_BANDS,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Re-group counts by (sex, age group) into the builder's sex × age band cells.

    Parameters
    ----------
    groups
        ``kommun_kod``, ``year``, ``sex`` (K/M/T), ``age_from``, ``age_to``, ``count``.
    population
        Builder population format covering the groups' ages.
    outcome
        Outcome name for the output and the report.

    Returns
    -------
    (numerators, issues)
        Numerators in builder format (NaN counts included, for the caller to report) and a
        list of report records.
    """
    issues: list[dict[str, Any]] = []
    g = groups.copy()
    g["count"] = g["count"].astype(float)
    # a both-sexes total is only used where no split by sex exists for the same cell
    key = ["kommun_kod", "year", "age_from", "age_to"]
    split = g.loc[g["sex"] != "T", key].drop_duplicates()
    totals = _without(g[g["sex"] == "T"], split)
    if len(totals):
        issues.append(
            _issue(
                outcome,
                "assumption",
                f"{len(totals)} both-sexes totals split by the sexes' population shares",
            )
        )
    g = pd.concat([g[g["sex"] != "T"], totals], ignore_index=True)
    g["gid"] = np.arange(len(g))
    max_age = int(population["age"].max())
    lo = g["age_from"].clip(lower=0).to_numpy()
    hi = np.minimum(g["age_to"].to_numpy(), max_age)
    lengths = np.maximum(hi - lo + 1, 0)
    rep = g.loc[g.index.repeat(lengths)].reset_index(drop=True)
    rep["age"] = np.concatenate([np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)] or [[]])
    rep["age"] = rep["age"].astype("int64")
    # both-sexes totals become two cells per age
    is_total = rep["sex"] == "T"
    rep = pd.concat(
        [rep[~is_total], rep[is_total].assign(sex="K"), rep[is_total].assign(sex="M")],
        ignore_index=True,
    )
    rep = rep.merge(population, on=["kommun_kod", "year", "sex", "age"], how="left")
    group_pop = rep.groupby("gid")["population"].transform("sum")
    cells = rep.groupby("gid")["population"].transform("size")
    weight = rep["population"] / group_pop
    no_pop = group_pop.isna() | (group_pop <= 0)
    if no_pop.any():
        weight = weight.where(~no_pop, 1.0 / cells)
        issues.append(
            _issue(
                outcome,
                "assumption",
                f"{rep.loc[no_pop, 'gid'].nunique()} age groups "
                "without population spread evenly over their ages",
            )
        )
    rep["cell_count"] = rep["count"] * weight.fillna(0.0)
    rep["age_band"] = _band_of_age(rep["age"].to_numpy(), bands)
    rep = rep[rep["age_band"] != ""]
    cell = ["kommun_kod", "year", "sex", "age_band"]
    covered = rep.groupby(cell)["age"].nunique()
    full = covered.index.get_level_values("age_band").map(lambda b: bands[b][1] - bands[b][0] + 1)
    partial = covered[covered.to_numpy() < np.asarray(full)]
    summed = rep.groupby(cell).agg(
        count=("cell_count", "sum"), any_missing=("count", lambda s: s.isna().any())
    )
    summed.loc[summed["any_missing"], "count"] = np.nan
    summed = summed.drop(columns="any_missing")
    if len(partial):
        summed = summed.drop(index=partial.index)
        for (code, year, sex, band), n in partial.items():
            issues.append(
                _issue(
                    outcome,
                    "partial_band",
                    f"band {band} only {n} ages covered; left out",
                    kommun_kod=code,
                    year=int(year),
                    sex=sex,
                )
            )
    out = summed.reset_index()
    out["outcome"] = outcome
    return out[NUMERATOR_COLUMNS], issues


def shares_to_bands(
    values: pd.DataFrame,
    population: pd.DataFrame,
    outcome: str,
    ages: tuple[int, int],
    bands: Mapping[str, tuple[int, int]] = AGE_BANDS,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Turn Kolada shares (percent, by kommun × year × gender) into band counts.

    ``count = share / 100 × population(kommun, year, sex, band ages)`` for every band that
    overlaps the KPI's ``ages``; the share is assumed constant across the band's ages, and
    band ages outside the KPI's range are named in the report.
    """
    issues: list[dict[str, Any]] = []
    v = values.rename(columns={"gender": "sex"})
    by_sex = v[v["sex"].isin(["K", "M"])]
    total = v[v["sex"] == "T"]
    have = by_sex[["kommun_kod", "year"]].drop_duplicates()
    only_total = _without(total, have)
    if len(only_total):
        issues.append(
            _issue(
                outcome,
                "assumption",
                f"{len(only_total)} kommun-years have only a total share; used for both sexes",
            )
        )
    v = pd.concat(
        [by_sex, only_total.assign(sex="K"), only_total.assign(sex="M")], ignore_index=True
    )
    frames = []
    for band, (lo, hi) in bands.items():
        if hi < ages[0] or lo > ages[1]:
            continue
        if lo < ages[0] or hi > ages[1]:
            outside = [a for a in range(lo, hi + 1) if not ages[0] <= a <= ages[1]]
            issues.append(
                _issue(
                    outcome,
                    "assumption",
                    f"share for ages {ages[0]}-{ages[1]} applied to "
                    f"band {band}, including ages {outside[0]}-{outside[-1]}",
                )
            )
        elif lo > ages[0] or hi < ages[1]:
            issues.append(
                _issue(
                    outcome,
                    "assumption",
                    f"share for ages {ages[0]}-{ages[1]} applied to the narrower band {band}: "
                    "assumes the band has the share of all those ages",
                )
            )
        pop = population[(population["age"] >= lo) & (population["age"] <= hi)]
        # a band total needs every age present: a missing age must not shrink the count
        grouped = pop.groupby(["kommun_kod", "year", "sex"])["population"]
        pop_band = grouped.sum(min_count=1).to_frame("population")
        pop_band.loc[grouped.count() < hi - lo + 1, "population"] = np.nan
        pop_band = pop_band.reset_index()
        merged = v.merge(pop_band, on=["kommun_kod", "year", "sex"], how="left")
        merged["count"] = merged["value"] / 100.0 * merged["population"]
        merged["age_band"] = band
        merged["outcome"] = outcome
        frames.append(merged[NUMERATOR_COLUMNS])
    if not frames:
        raise CatalogueError(f"{outcome}: ages {ages} overlap none of the bands {dict(bands)}")
    return pd.concat(frames, ignore_index=True), issues


def _progress(enabled: bool, message: str) -> None:
    if enabled:
        print(f"[finsam-eval fetch] {message}", file=sys.stderr, flush=True)


def _check_files(
    outcomes: Sequence[str], cat: Mapping[str, Any], files: Mapping[str, Any], interface: str
) -> None:
    """Raise :class:`MissingFileError` naming every agency-file outcome without a file."""
    missing_files = [
        o for o in outcomes if cat["outcomes"][o]["source"] in FILE_SOURCES and o not in files
    ]
    if missing_files:
        parts = [
            f"{o} ({cat['outcomes'][o]['source']}: {cat['outcomes'][o]['identifier']})"
            for o in missing_files
        ]
        hints = " ".join(_file_hint(o, interface) for o in missing_files)
        raise MissingFileError(
            f"outcomes {', '.join(parts)} come from agency files: download them and pass {hints}",
            missing_files[0],
            cat["outcomes"][missing_files[0]]["source"],
        )


def _read_agency_file(
    outcome: str,
    entry: Mapping[str, Any],
    path: str | os.PathLike[str],
    ages: tuple[int, int],
    years: Sequence[int],
    progress: bool,
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Read one outcome's agency file: (file restricted to ``years``, its report lines (cells
    suppressed, aggregate and other rows left out), its provenance record)."""
    issues: list[dict[str, Any]] = []
    loader = LOADERS.get(entry["source"])
    _progress(progress, f"reading {entry['source']} file for {outcome}: {path}")
    if loader is not None:
        af = loader(path, outcome, ages=ages)
    else:
        af = load_agency_file(path, outcome, entry["source"], ages=ages)
    af.groups = af.groups[af.groups["year"].isin(years)]
    for rec in af.suppressed[af.suppressed["year"].isin(years)].itertuples(False):
        issues.append(
            _issue(
                outcome,
                "suppressed",
                f"age {rec.age}: {rec.raw!r} ({rec.reason})",
                kommun_kod=rec.kommun_kod,
                year=int(rec.year),
                sex=rec.sex,
            )
        )
    is_aggregate = af.dropped["reason"].str.startswith("aggregate")
    if is_aggregate.any():
        levels = af.dropped.loc[is_aggregate, "reason"].value_counts()
        issues.append(
            _issue(
                outcome,
                "aggregate_rows",
                f"{int(is_aggregate.sum())} riket/län rows kept apart as aggregates "
                f"({', '.join(f'{r}: {n}' for r, n in levels.items())}); see "
                "AgencyFile.aggregates",
            )
        )
    if (~is_aggregate).any():
        other = af.dropped[~is_aggregate]
        reasons = other["reason"].value_counts()
        issues.append(
            _issue(
                outcome,
                "dropped_rows",
                f"{len(other)} rows left out "
                f"({', '.join(f'{r}: {n}' for r, n in reasons.items())}; e.g. "
                f"{other['text'].iloc[0]!r})",
            )
        )
    record = {
        "series": f"{entry['source']}:{outcome}",
        "source": entry["source"],
        "urls": str(path),
        "query": entry["identifier"],
        "retrieved_at": "",
        "content_hash": af.content_hash,
        "from_cache": False,
        "path": af.path,
    }
    return af, issues, record


def _kolada_band(
    kolada: KoladaClient,
    outcome: str,
    entry: Mapping[str, Any],
    years: Sequence[int],
    population: pd.DataFrame,
    provenance: list,
    issues: list[dict[str, Any]],
    progress: bool,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One Kolada outcome as age-band counts; appends its provenance and missing years."""
    ages = parse_ages(entry["population"])
    _progress(progress, f"Kolada {entry['identifier']} for {outcome}")
    values, prov = kolada.values(
        entry["identifier"], years, verify_title=entry.get("title_contains") or None
    )
    provenance.append(prov)
    live_title = prov.extra.get("kpi_title")
    if live_title:
        check_title_ages(outcome, entry["identifier"], live_title, entry["population"])
    for year in prov.extra.get("missing_years", []):
        issues.append(
            _issue(
                outcome,
                "missing_years",
                f"Kolada {entry['identifier']} has no value for any kommun in {year}; "
                "the year is left out (not cached)",
                year=int(year),
            )
        )
    values, _ = harmonise_codes(values)
    if entry["measure"] == "share":
        band, found = shares_to_bands(values, population, outcome, ages)
    else:
        groups = values.rename(columns={"gender": "sex", "value": "count"}).assign(
            age_from=ages[0], age_to=ages[1]
        )
        band, found = to_age_bands(groups, population, outcome)
    return band, found


def fetch(
    outcomes: Sequence[str],
    years: Iterable[int],
    cache_dir: str | os.PathLike[str],
    offline: bool = False,
    progress: bool = True,
    base_urls: Mapping[str, str] | None = None,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    catalogue: str | os.PathLike[str] | dict[str, Any] | None = None,
    http: HttpClient | None = None,
    interface: str = "python",
) -> FetchResult:
    """Fetch outcomes and population for the given years into the builder's raw format.

    Parameters
    ----------
    outcomes
        Outcome names from the catalogue (``sjukpenning``, ``sa``, ``ekonomiskt_bistand``,
        ``af_till_arbete``, ``studier``, ``uvas`` or user-defined ones).
    years
        Calendar years.
    cache_dir
        Series cache; every fetched series is stored with provenance.
    offline
        Use only the cache; raises :class:`~finsam_eval.sources.http.OfflineError` naming what
        is missing when something is not cached.
    progress
        Print one line per step to stderr.
    base_urls
        ``{"kolada": ..., "scb": ...}`` to override the API roots (tests, mirrors, v2/v3).
    files
        ``{outcome: path}`` for outcomes whose source is an agency file.
    catalogue
        A user catalogue TOML (path or dict) extending/overriding the built-in one.
    http
        A shared :class:`~finsam_eval.sources.http.HttpClient` (retries, timeouts, rate limit).
    interface
        ``"python"`` or ``"cli"``: the syntax error messages use to say how to pass a file.

    Returns
    -------
    FetchResult
    """
    years = sorted(set(int(y) for y in years))
    if not years:
        raise ValueError("no years given")
    if interface not in {"python", "cli"}:
        raise ValueError(f"interface must be 'python' or 'cli', not {interface!r}")
    cat = load_catalogue(catalogue)
    unknown = [o for o in outcomes if o not in cat["outcomes"]]
    if unknown:
        raise CatalogueError(
            f"unknown outcomes {unknown}; the catalogue has {sorted(cat['outcomes'])}"
        )
    microdata = [o for o in outcomes if cat["outcomes"][o]["source"] in MICRODATA_SOURCES]
    if microdata:
        raise CatalogueError(
            f"outcomes {microdata} are built from person-year register data, not fetched: use "
            "finsam_eval.microdata.build_microdata_panel (docs/microdata.md)"
        )
    base_urls = dict(base_urls or {})
    files = dict(files or {})
    kolada = KoladaClient(
        base_urls.get("kolada", DEFAULT_KOLADA_URL), cache_dir, offline, http=http
    )
    scb = ScbClient(base_urls.get("scb", DEFAULT_SCB_URL), cache_dir, offline, http=http)
    provenance: list[Provenance | dict[str, Any]] = []
    issues: list[dict[str, Any]] = []

    # agency files first: their age groups decide which ages of population are needed
    loaded: dict[str, Any] = {}
    age_lo, age_hi = 16, 64
    _check_files(outcomes, cat, files, interface)
    for outcome in outcomes:
        entry = cat["outcomes"][outcome]
        lo, hi = parse_ages(entry["population"])
        if entry["source"] not in FILE_SOURCES:
            # a Kolada share is applied to the bands' ages only: its own age range (all ages
            # for N31807) does not widen the population request
            continue
        age_lo, age_hi = min(age_lo, lo), max(age_hi, hi)
        af, found, record = _read_agency_file(
            outcome, entry, files[outcome], (lo, hi), years, progress
        )
        loaded[outcome] = af
        age_lo = min(age_lo, int(af.groups["age_from"].min()))
        age_hi = max(age_hi, min(int(af.groups["age_to"].max()), 100))
        issues.extend(found)
        provenance.append(record)

    _progress(progress, f"population ages {age_lo}-{age_hi}, years {years[0]}-{years[-1]} (SCB)")
    population, prov = scb.population(years, range(age_lo, age_hi + 1))
    provenance.append(prov)
    for note in prov.extra.get("notes", []) if isinstance(prov.extra, dict) else []:
        issues.append(_issue("population", "table_note", note))
    population, changes = harmonise_codes(population)
    population = population.groupby(["kommun_kod", "year", "sex", "age"], as_index=False).agg(
        population=("population", lambda s: s.sum(min_count=1))
    )
    for rec in changes.drop_duplicates(["old_code", "new_code", "year"]).itertuples(False):
        issues.append(
            _issue(
                "population",
                "code_change",
                f"{rec.old_code} → {rec.new_code}: {rec.reason}",
                kommun_kod=rec.new_code,
                year=int(rec.year),
            )
        )

    frames = []
    for outcome in outcomes:
        entry = cat["outcomes"][outcome]
        if entry["source"] == "kolada":
            band, found = _kolada_band(
                kolada, outcome, entry, years, population, provenance, issues, progress
            )
        else:
            groups, _ = harmonise_codes(loaded[outcome].groups)
            band, found = to_age_bands(groups, population, outcome)
        issues.extend(found)
        frames.append(band)

    numerators = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=NUMERATOR_COLUMNS)
    )
    numerators = numerators.groupby(
        ["kommun_kod", "year", "sex", "age_band", "outcome"], as_index=False
    ).agg(count=("count", lambda s: s.sum(min_count=len(s))))
    missing = numerators["count"].isna()
    for rec in numerators[missing].itertuples(False):
        issues.append(
            _issue(
                rec.outcome,
                "missing",
                f"band {rec.age_band}: no value (suppressed or not published); row left out",
                kommun_kod=rec.kommun_kod,
                year=int(rec.year),
                sex=rec.sex,
            )
        )
    numerators = numerators[~missing & numerators["year"].isin(years)]
    numerators = numerators.sort_values(
        ["outcome", "kommun_kod", "year", "sex", "age_band"], ignore_index=True
    )[NUMERATOR_COLUMNS]
    population = population.sort_values(POPULATION_COLUMNS[:4], ignore_index=True)
    records = [p.to_record() if isinstance(p, Provenance) else p for p in provenance]
    report = pd.DataFrame(issues, columns=REPORT_COLUMNS)
    _progress(progress, f"done: {len(numerators)} numerator rows, {len(report)} report rows")
    return FetchResult(numerators, population, pd.DataFrame(records), report)
