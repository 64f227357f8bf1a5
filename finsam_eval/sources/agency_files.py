"""Loaders for the agencies' downloadable statistics files (CSV, XLSX or JSON, Swedish headers).

Försäkringskassan (sjukpenning; sjuk- och aktivitetsersättning), Arbetsförmedlingen (left
unemployment for work) and Socialstyrelsen (ekonomiskt bistånd) publish counts by kommun as
files from their statistics pages. The layouts change between releases, so the loader does
not hard-code one: it finds the header row (files often start with a title and notes),
recognises the usual Swedish column names, accepts years as rows or as columns, and parses
Swedish numbers (space or non-breaking-space thousands separators, decimal comma).

Suppressed cells (``..``, ``.``, ``*``, ``X``, ``-``, ``–``, and ``"rojd": true`` in
Försäkringskassan's JSON) become missing and are listed in the returned report: a suppressed
small count is *never* read as zero, because that would bias shares in exactly the small
kommuner where suppression happens.

Totals are read as totals: Försäkringskassan labels both sexes "Kvinnor och män". Rows for a
län ("20 Dalarnas län") or the whole country ("Riket") are aggregates, not noise: they are kept
apart in :attr:`AgencyFile.aggregates` and listed in :attr:`AgencyFile.dropped` with the
reason "aggregate: län" / "aggregate: riket", never silently dropped.

JSON is read in two documented layouts (anything else is refused in one line):

* Försäkringskassan's open data (``/api/sprstatistikrapportera/public/v1/...json``): a list of
  ``{"dimensions": {"ar", "manad", "kon_kod", "lan_kod", "kommun_kod", ...},
  "observations": {measure: {"value", "rojd"}}}``, ``"ALL"`` meaning the total;
* Socialstyrelsen's statistics API (``sdb.socialstyrelsen.se/api/v1/sv/...``):
  ``{"data": [{"ar", "regionId", "konId", "alderId", "mattId", "varde"}, ...]}``, with
  ``konId`` 1 = men, 2 = women, 3 = both, ``regionId`` 0 = riket, 1-25 = län, else kommun,
  and ages as ``alderId`` codes that the API's ``/alder`` endpoint explains (pass
  ``age_map``).

The result is a *group table* — ``kommun_kod``, ``year``, ``sex`` (K/M/T), ``age_from``,
``age_to``, ``count`` — which :func:`finsam_eval.sources.fetch.to_age_bands` turns into the
builder's age bands.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from finsam_eval.registry import kommun_code
from finsam_eval.registry.kommuner import UnknownKommunError
from finsam_eval.sources.http import SourceError

__all__ = [
    "AgencyFile",
    "AgencyFileError",
    "SUPPRESSION_MARKERS",
    "load_agency_file",
    "load_arbetsformedlingen",
    "load_forsakringskassan",
    "load_socialstyrelsen",
    "parse_swedish_number",
]

#: Markers agencies use for suppressed or unavailable cells. "-"/"–" is listed because some
#: agencies use it for "uppgift saknas"; where it means zero (SCB convention) the missing cell
#: shows up in the report rather than silently as a count.
SUPPRESSION_MARKERS = frozenset({"..", ".", "…", "*", "x", "X", "-", "–", "—", "u", "i.u.", "rojd"})

_HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "kommun_kod": (
        "kommunkod",
        "kommun kod",
        "kommun_kod",
        "kommunnummer",
        "kommunnr",
        "kod",
        "regionkod",
        "region kod",
        "lkf",
    ),
    "kommun": (
        "kommun",
        "kommunnamn",
        "kommun namn",
        "region",
        "bosättningskommun",
        "hemkommun",
        "folkbokföringskommun",
        "område",
    ),
    "year": ("år", "ar", "year", "period", "tid", "redovisningsår", "statistikår"),
    "sex": ("kön", "kon", "sex", "kön kod"),
    "age": (
        "ålder",
        "alder",
        "åldersgrupp",
        "åldersklass",
        "ålder grupp",
        "age",
        "åldersintervall",
    ),
    "count": (
        "antal",
        "antal mottagare",
        "antal personer",
        "antal individer",
        "mottagare",
        "antal biståndsmottagare",
        "biståndsmottagare",
        "antal som lämnat arbetslöshet för arbete",
        "lämnat för arbete",
        "värde",
        "count",
    ),
}

_SEX_CODES = {
    "k": "K",
    "kvinnor": "K",
    "kvinna": "K",
    "2": "K",
    "f": "K",
    "m": "M",
    "män": "M",
    "man": "M",
    "1": "M",
    "t": "T",
    "totalt": "T",
    "total": "T",
    # Försäkringskassan's label for both sexes; it is the total, not an unknown sex
    "kvinnor och män": "T",
    "män och kvinnor": "T",
    "kvinnor + män": "T",
    "män + kvinnor": "T",
    "båda kön": "T",
    "samtliga": "T",
    "båda könen": "T",
    "alla": "T",
    "1+2": "T",
}

_RIKET_NAMES = {"riket", "hela riket", "sverige", "hela landet", "00", "0000"}
_TOTAL_NAMES = {"totalt", "samtliga", "summa", "total"}
_UNKNOWN_NAMES = {"okänd kommun", "uppgift saknas", "okänd"}


AGGREGATE_COLUMNS = ["level", "region", "year", "sex", "age", "count"]


class AgencyFileError(SourceError):
    """An agency file could not be understood (no header, no kommun column, bad numbers)."""


@dataclass
class AgencyFile:
    """A loaded agency file.

    Attributes
    ----------
    groups
        ``kommun_kod``, ``year``, ``sex`` (K/M/T), ``age_from``, ``age_to``, ``count``
        (float, NaN where suppressed), ``outcome``.
    suppressed
        One row per suppressed or unparseable cell: ``kommun_kod``, ``year``, ``sex``,
        ``age``, ``raw`` (the marker as published), ``reason``.
    dropped
        Rows not used as kommun data, each with its reason: ``row``, ``text``, ``reason``
        (``"aggregate: riket"``, ``"aggregate: län"``, ``"aggregate: total row"``,
        ``"not a kommun"`` for footnotes and unknown names, ``"unknown sex"``, ...).
    aggregates
        The values of riket and län rows, for checks against the kommun sums: ``level``
        (riket/län/total), ``region`` (as published), ``year``, ``sex``, ``age``, ``count``.
    path, provider, content_hash
        Provenance of the file.
    """

    groups: pd.DataFrame
    suppressed: pd.DataFrame
    dropped: pd.DataFrame
    path: str
    provider: str
    content_hash: str
    notes: list[str] = field(default_factory=list)
    aggregates: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=AGGREGATE_COLUMNS)
    )


def _norm(text: object) -> str:
    text = unicodedata.normalize("NFC", str(text)).replace("\xa0", " ").strip().casefold()
    text = re.sub(r"[_\s]+", " ", text)
    return re.sub(r"\s*\(.*?\)\s*$", "", text).strip()  # "Antal (personer)" → "antal"


def parse_swedish_number(text: object) -> float | None:
    """Parse ``"1 234"``, ``"1 234,5"``, ``"12,5"``, ``"1.234,5"``, ``"1234"``; None if not numeric.

    Suppression markers are not numbers and return None; callers decide how to report them.
    """
    if text is None:
        return None
    if isinstance(text, int | float | np.integer | np.floating):
        return None if pd.isna(text) else float(text)
    s = unicodedata.normalize("NFC", str(text)).strip()
    s = s.replace("\xa0", "").replace("\u202f", "").replace(" ", "").replace("\u2212", "-")
    if not s:
        return None
    if "," in s and "." in s:
        s = s.replace(".", "").replace(",", ".")  # 1.234,5: dots group thousands
    elif "," in s:
        s = s.replace(",", ".")
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", s):
        return None
    return float(s)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _one_value(name: str, dimension: str, values: set[str]) -> str | None:
    """A dimension the loader does not use must not mix several series into one count."""
    if len(values) <= 1:
        return None
    if "ALL" in values:
        return "ALL"  # the total over the dimension: the only value that is not a part
    raise AgencyFileError(
        f"{name}: dimension {dimension!r} has several values {sorted(values)[:8]} and no "
        "total ('ALL'); keep one value before loading"
    )


_FK_KEYS = {
    "year": ("ar", "år", "year"),
    "month": ("manad", "månad"),
    "sex": ("kon_kod", "kon", "kön"),
    "kommun": ("kommun_kod", "kommunkod", "kommun"),
    "lan": ("lan_kod", "lankod", "lan", "län"),
    "age": ("alder", "alder_kod", "aldersgrupp", "aldersintervall", "alder_grupp", "ålder"),
}
_FK_SEX = {"ALL": "Kvinnor och män", "K": "Kvinnor", "M": "Män"}


def _fk_json_grid(
    records: list, name: str, measure: str | None, month: str | None
) -> list[list[str]]:
    """Försäkringskassan's open-data JSON → a Swedish-header grid (År, Kommun, Kön, Ålder, Antal)."""
    dims = [r.get("dimensions") or {} for r in records]
    obs = [r.get("observations") or {} for r in records]
    # label columns ("lan_namn", "kommun_text") and row numbers describe other dimensions
    keys = {
        k
        for d in dims
        for k in d
        if k != "row_nr" and not any(w in k.casefold() for w in ("namn", "text", "label"))
    }
    role = {}
    for r, names in _FK_KEYS.items():
        exact = next((k for k in names if k in keys), None)
        prefixed = sorted(k for k in keys if k.casefold().startswith(names[0][:3]))
        role[r] = exact or (prefixed[0] if len(prefixed) == 1 else None)
    if role["year"] is None:
        raise AgencyFileError(f"{name}: Försäkringskassan JSON without a year dimension ('ar')")
    measures = sorted({m for o in obs for m in o})
    if measure is None:
        measure = "antal" if "antal" in measures else (measures[0] if len(measures) == 1 else None)
    if measure is None or measure not in measures:
        raise AgencyFileError(
            f"{name}: choose the measure to load with measure=... (the file has {measures})"
        )
    keep = [True] * len(records)
    if role["month"] is not None:
        months = {str(d.get(role["month"])) for d in dims}
        if month is None and len(months) > 1:
            raise AgencyFileError(
                f"{name}: monthly rows ({role['month']} {sorted(months)[:3]}...); pass "
                "month='12' for the December stock, or aggregate the months yourself"
            )
        if month is not None:
            keep = [str(d.get(role["month"])).zfill(2) == str(month).zfill(2) for d in dims]
    used = {v for v in role.values() if v is not None}
    fixed = {}
    for key in sorted(keys - used):
        value = _one_value(
            name, key, {str(d.get(key)) for d, k in zip(dims, keep, strict=True) if k}
        )
        if value is not None:
            fixed[key] = value
    grid = [["År", "Kommun", "Kön", "Ålder", "Antal"]]
    for d, o, k in zip(dims, obs, keep, strict=True):
        if not k or any(str(d.get(key)) != v for key, v in fixed.items()):
            continue
        kommun = str(d.get(role["kommun"], "ALL")) if role["kommun"] else "ALL"
        lan = str(d.get(role["lan"], "ALL")) if role["lan"] else "ALL"
        if kommun not in {"ALL", "None", ""}:
            region = kommun.zfill(4) if kommun.isdigit() else kommun
        elif lan not in {"ALL", "None", ""}:
            region = f"{lan.zfill(2)} län" if lan.isdigit() else lan
        else:
            region = "Riket"
        sex = str(d.get(role["sex"], "ALL")) if role["sex"] else "ALL"
        age = str(d.get(role["age"], "ALL")) if role["age"] else "ALL"
        cell = o.get(measure) or {}
        value = "rojd" if cell.get("rojd") else _cell_text(cell.get("value"))
        grid.append(
            [
                _cell_text(d.get(role["year"])),
                region,
                _FK_SEX.get(sex, sex),
                "Totalt" if age == "ALL" else age,
                value,
            ]
        )
    return grid


_SOS_SEX = {"1": "Män", "2": "Kvinnor", "3": "Totalt"}


def _sos_json_grid(data: list, name: str, age_map: Mapping[object, str] | None) -> list[list[str]]:
    """Socialstyrelsen's API answer ``{"data": [...]}`` → a Swedish-header grid."""
    keys = {k for r in data for k in r}
    if not {"regionId", "ar", "varde"} <= keys:
        raise AgencyFileError(
            f"{name}: Socialstyrelsen JSON rows need 'regionId', 'ar' and 'varde' (have "
            f"{sorted(keys)})"
        )
    ages = {str(r.get("alderId")) for r in data if "alderId" in r}
    amap = {str(k): str(v) for k, v in (age_map or {}).items()}
    if ages and len(ages) > 1 and not amap:
        raise AgencyFileError(
            f"{name}: ages are alderId codes {sorted(ages)[:6]}; pass age_map={{id: '18-24', "
            "...}} from the API's /alder endpoint"
        )
    unknown_ages = sorted(a for a in ages if amap and a not in amap)
    if unknown_ages:
        raise AgencyFileError(f"{name}: age_map lacks alderId {unknown_ages}")
    used = {"regionId", "ar", "varde", "konId", "alderId"}
    fixed = {}
    for key in sorted(k for k in keys - used if k.endswith("Id")):
        value = _one_value(name, key, {str(r.get(key)) for r in data})
        if value is not None:
            fixed[key] = value
    grid = [["År", "Kommun", "Kön", "Ålder", "Antal"]]
    for r in data:
        if any(str(r.get(key)) != v for key, v in fixed.items()):
            continue
        region_id = str(r["regionId"]).strip()
        number = int(region_id) if region_id.isdigit() else None
        if number == 0:
            region = "Riket"
        elif number is not None and number <= 25:  # län codes 01-25; kommun codes are >= 114
            region = f"{number:02d} län"
        else:
            region = region_id.zfill(4) if region_id.isdigit() else region_id
        age = amap.get(str(r.get("alderId")), "Totalt") if "alderId" in r else "Totalt"
        sex = _SOS_SEX.get(str(r.get("konId", "3")), str(r.get("konId")))
        grid.append([_cell_text(r["ar"]), region, sex, age, _cell_text(r["varde"])])
    return grid


def _read_json_grid(
    path: Path, measure: str | None, month: str | None, age_map: Mapping[object, str] | None
) -> list[list[str]]:
    try:
        payload = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AgencyFileError(f"{path.name}: not valid JSON ({exc})") from exc
    records = payload
    if isinstance(payload, dict):
        if isinstance(payload.get("data"), list) and all(
            isinstance(r, dict) and "regionId" in r for r in payload["data"][:50]
        ):
            return _sos_json_grid(payload["data"], path.name, age_map)
        records = next(
            (payload[k] for k in ("values", "data", "rows") if isinstance(payload.get(k), list)),
            None,
        )
    if (
        isinstance(records, list)
        and records
        and all(
            isinstance(r, dict) and "dimensions" in r and "observations" in r for r in records[:50]
        )
    ):
        return _fk_json_grid(records, path.name, measure, month)
    shape = sorted(payload)[:6] if isinstance(payload, dict) else type(payload).__name__
    raise AgencyFileError(
        f"{path.name}: JSON layout not recognised (top level: {shape}); expected "
        "Försäkringskassan open data [{'dimensions': ..., 'observations': ...}] or "
        "Socialstyrelsen's API answer {'data': [{'regionId', 'ar', 'varde', ...}]}"
    )


def _read_grid(path: Path, sheet: str | int | None) -> list[list[str]]:
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm", ".xls"}:
        try:
            frame = pd.read_excel(path, sheet_name=sheet or 0, header=None, dtype=str)
        except ImportError as exc:
            raise AgencyFileError(
                f"Reading {path.name} needs openpyxl (pip install openpyxl), or save the sheet "
                "as CSV and load that."
            ) from exc
        return [["" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(False)]
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):  # agencies still publish Windows-1252 CSVs
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    sample = "\n".join(text.splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=";,\t").delimiter
    except csv.Error:
        delimiter = ";"
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _match_header(cells: list[str], synonyms: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        norm = _norm(cell)
        for role, names in synonyms.items():
            if role not in found and norm in names:
                found[role] = i
                break
    return found


def _year_columns(cells: list[str]) -> dict[int, int]:
    out = {}
    for i, cell in enumerate(cells):
        m = re.fullmatch(r"\s*((?:19|20)\d\d)\s*", str(cell))
        if m:
            out[i] = int(m.group(1))
    return out


def _parse_age(text: str, default: tuple[int, int]) -> tuple[int, int] | None:
    norm = _norm(text).replace("–", "-").replace("—", "-")
    norm = re.sub(r"\s*år\s*$", "", norm)
    if norm in {"", "totalt", "samtliga", "alla åldrar", "alla", "total", "16-64 totalt"}:
        return default
    if m := re.fullmatch(r"(\d+)\s*-\s*(\d+)", norm):
        return int(m.group(1)), int(m.group(2))
    if m := re.fullmatch(r"(\d+)\s*(\+|-|och äldre|eller äldre)", norm):
        return int(m.group(1)), 120
    if m := re.fullmatch(r"(?:-|<|under)\s*(\d+)", norm):
        return 0, int(m.group(1)) - (1 if norm.startswith(("<", "under")) else 0)
    if m := re.fullmatch(r"(\d+)", norm):
        return int(m.group(1)), int(m.group(1))
    return None


def _cell(row: list[str], roles: Mapping[str, int], role: str) -> str | None:
    index = roles.get(role)
    return row[index] if index is not None and index < len(row) else None


def _classify_region(
    code_cell: str | None, name_cell: str | None, year: int | None
) -> tuple[str, str]:
    """What a row's region is: ``("kommun", code)``, ``("riket"|"län"|"total", text)``, or
    ``("unknown", text)``. Aggregates are recognised by name or code so that they are
    reported as aggregates, not as unknown kommuner."""
    texts = []
    for cell in (code_cell, name_cell):
        text = "" if cell is None else unicodedata.normalize("NFC", str(cell)).strip()
        if text:
            texts.append(text)
    for text in texts:
        norm = _norm(text)
        if norm in _RIKET_NAMES:
            return "riket", text
        if norm in _TOTAL_NAMES:
            return "total", text
        if norm in _UNKNOWN_NAMES:
            return "unknown", text
        if re.search(r"\blän$", norm) or re.fullmatch(r"(region|län)\s+\d{2}", norm):
            return "län", text  # "20 Dalarnas län", "Dalarnas län", "Län 20"
        if re.fullmatch(r"\d{2}", norm) or re.fullmatch(r"00\d{2}", norm):
            return "län", text  # a two-digit län code, or län coded 00XX by some agencies
    for text in texts:
        m = re.match(r"^(\d{3,4})\b", text)  # "0180 Stockholm" or a bare code
        candidate = m.group(1) if m else text
        try:
            return "kommun", kommun_code(candidate, year=year)
        except UnknownKommunError:
            try:
                return "kommun", kommun_code(candidate)
            except UnknownKommunError:
                continue
    return "unknown", " | ".join(texts)


def _find_header(
    grid: list[list[str]], table: Mapping[str, tuple[str, ...]], path: Path, year: int | None
) -> tuple[int, dict[str, int], dict[int, int]]:
    """(header row, column of each role, year of each year column) of an agency table: the
    first of its first 60 rows naming a kommun column and a count or year columns."""
    header_row, roles = -1, {}
    for i, row in enumerate(grid[:60]):
        found = _match_header(row, table)
        if ("kommun_kod" in found or "kommun" in found) and (
            "count" in found or _year_columns(row) or len(found) >= 2
        ):
            header_row, roles = i, found
            break
    if header_row < 0:
        raise AgencyFileError(
            f"{path.name}: no header row with a kommun column found in the first 60 rows; "
            f"expected names such as {table['kommun_kod'][:3]} or {table['kommun'][:3]}"
        )
    header = grid[header_row]
    year_cols = {} if "count" in roles else _year_columns(header)
    if "count" not in roles and not year_cols:
        raise AgencyFileError(
            f"{path.name}: header {header} has neither a count column ({table['count'][:3]}) "
            "nor year columns"
        )
    if "year" not in roles and not year_cols and year is None:
        raise AgencyFileError(f"{path.name}: no year column; pass year=...")
    return header_row, roles, year_cols


def _agency_file(
    records: list, suppressed: list, dropped: list, aggregates: list, path: Path, provider: str
) -> AgencyFile:
    """The parsed rows as an :class:`AgencyFile` with the file's content hash."""
    groups = pd.DataFrame(records).astype(
        {"year": "int64", "age_from": "int64", "age_to": "int64", "count": "float64"}
    )
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return AgencyFile(
        groups=groups,
        suppressed=pd.DataFrame(
            suppressed, columns=["kommun_kod", "year", "sex", "age", "raw", "reason"]
        ),
        dropped=pd.DataFrame(dropped, columns=["row", "text", "reason"]),
        path=str(path),
        provider=provider,
        content_hash=digest,
        aggregates=pd.DataFrame(aggregates, columns=AGGREGATE_COLUMNS),
    )


def load_agency_file(
    path: str | os.PathLike[str],
    outcome: str,
    provider: str = "agency",
    *,
    year: int | None = None,
    sex: str | None = None,
    ages: tuple[int, int] = (16, 64),
    sheet: str | int | None = None,
    synonyms: Mapping[str, Iterable[str]] | None = None,
    markers: Iterable[str] = SUPPRESSION_MARKERS,
    measure: str | None = None,
    month: str | None = None,
    age_map: Mapping[object, str] | None = None,
) -> AgencyFile:
    """Load one agency file into a group table, reporting suppressed cells.

    Parameters
    ----------
    path
        CSV (``;``, ``,`` or tab separated; UTF-8 or Windows-1252), XLSX (needs openpyxl), or
        JSON in Försäkringskassan's open-data or Socialstyrelsen's API layout (module
        docstring); other JSON is refused in one line naming the layouts.
    outcome
        Outcome name written to the ``outcome`` column.
    provider
        Agency name for provenance and messages.
    year, sex
        Constants for files that hold one year or one sex and lack that column.
    ages
        Age range of rows without an age column or with "Totalt".
    sheet
        XLSX sheet name or index.
    synonyms
        Extra header names per role (``kommun_kod``, ``kommun``, ``year``, ``sex``, ``age``,
        ``count``), added to the built-in Swedish names.
    markers
        Cell texts that mean "suppressed / not available".
    measure
        Försäkringskassan JSON: which observation to load (default ``"antal"``).
    month
        Försäkringskassan JSON with monthly rows: the month to keep (``"12"`` for the
        December stock); required when the file holds several months.
    age_map
        Socialstyrelsen JSON: ``{alderId: "18-24", ...}`` from the API's ``/alder`` endpoint.

    Returns
    -------
    AgencyFile
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AgencyFileError(f"{provider} file not found: {path}")
    table = {k: tuple(v) for k, v in _HEADER_SYNONYMS.items()}
    for role, names in (synonyms or {}).items():
        table[role] = tuple(_norm(n) for n in names) + table.get(role, ())
    marker_set = {m.strip() for m in markers}
    if path.suffix.lower() == ".json":
        grid = _read_json_grid(path, measure, month, age_map)
    else:
        grid = _read_grid(path, sheet)

    header_row, roles, year_cols = _find_header(grid, table, path, year)

    records, suppressed, dropped, aggregates = [], [], [], []
    for offset, row in enumerate(grid[header_row + 1 :], start=header_row + 2):
        if not any(str(c).strip() for c in row):
            continue
        row_year = year
        if "year" in roles:
            parsed = parse_swedish_number(_cell(row, roles, "year"))
            row_year = int(parsed) if parsed is not None else None
        level, code = _classify_region(
            _cell(row, roles, "kommun_kod"), _cell(row, roles, "kommun"), row_year
        )
        text = " | ".join(map(str, row))[:120]
        if level == "unknown":
            dropped.append({"row": offset, "text": text, "reason": "not a kommun"})
            continue
        sex_text = _cell(row, roles, "sex")
        row_sex = _SEX_CODES.get(_norm(sex_text)) if sex_text is not None else (sex or "T")
        if row_sex is None:
            dropped.append({"row": offset, "text": str(sex_text), "reason": "unknown sex"})
            continue
        age_text = _cell(row, roles, "age")
        age = _parse_age(age_text, ages) if age_text is not None else ages
        if age is None:
            dropped.append({"row": offset, "text": str(age_text), "reason": "unknown age group"})
            continue
        values = (
            [(row_year, _cell(row, roles, "count"))]
            if "count" in roles
            else [(y, row[i] if i < len(row) else "") for i, y in year_cols.items()]
        )
        if level != "kommun":
            # riket, län and total rows: kept apart and reported, never mixed into kommun data
            dropped.append({"row": offset, "text": text, "reason": f"aggregate: {level}"})
            for value_year, raw in values:
                aggregates.append(
                    {
                        "level": level,
                        "region": code,
                        "year": value_year,
                        "sex": row_sex,
                        "age": f"{age[0]}-{age[1]}",
                        "count": parse_swedish_number(raw),
                    }
                )
            continue
        for value_year, raw in values:
            if value_year is None:
                dropped.append(
                    {"row": offset, "text": str(_cell(row, roles, "year")), "reason": "no year"}
                )
                continue
            number = parse_swedish_number(raw)
            raw_text = "" if raw is None else str(raw).strip()
            if number is None:
                reason = "suppressed" if raw_text in marker_set else "not a number"
                if raw_text == "":
                    reason = "empty"
                suppressed.append(
                    {
                        "kommun_kod": code,
                        "year": value_year,
                        "sex": row_sex,
                        "age": f"{age[0]}-{age[1]}",
                        "raw": raw_text,
                        "reason": reason,
                    }
                )
            elif number < 0:
                raise AgencyFileError(f"{path.name} row {offset}: negative count {raw_text!r}")
            records.append(
                {
                    "kommun_kod": code,
                    "year": int(value_year),
                    "sex": row_sex,
                    "age_from": age[0],
                    "age_to": age[1],
                    "count": np.nan if number is None else number,
                    "outcome": outcome,
                }
            )
    if not records:
        raise AgencyFileError(f"{path.name}: no kommun rows found below the header")
    return _agency_file(records, suppressed, dropped, aggregates, path, provider)


def load_forsakringskassan(path: str | os.PathLike[str], outcome: str, **kw) -> AgencyFile:
    """Försäkringskassan statistics file (sjukpenning or sjuk- och aktivitetsersättning).

    FK's files name the count column after the benefit ("Antal mottagare", "Antal pågående
    sjukfall", "Antal personer med sjukersättning"); those names are recognised here.
    """
    extra = {
        "count": (
            "antal pågående sjukfall",
            "antal personer med sjukersättning",
            "antal personer med aktivitetsersättning",
            "antal sjukfall",
        )
    }
    extra.update(kw.pop("synonyms", {}) or {})
    return load_agency_file(path, outcome, "forsakringskassan", synonyms=extra, **kw)


def load_arbetsformedlingen(
    path: str | os.PathLike[str], outcome: str = "af_till_arbete", **kw
) -> AgencyFile:
    """Arbetsförmedlingen file of job seekers who left unemployment for work, by kommun."""
    extra = {"count": ("avaktualiserade till arbete", "till arbete", "övergång till arbete")}
    extra.update(kw.pop("synonyms", {}) or {})
    return load_agency_file(path, outcome, "arbetsformedlingen", synonyms=extra, **kw)


def load_socialstyrelsen(
    path: str | os.PathLike[str], outcome: str = "ekonomiskt_bistand", **kw
) -> AgencyFile:
    """Socialstyrelsen's ekonomiskt bistånd statistics (recipients by kommun, sex, age)."""
    extra = {"count": ("vuxna biståndsmottagare", "antal vuxna biståndsmottagare")}
    extra.update(kw.pop("synonyms", {}) or {})
    return load_agency_file(path, outcome, "socialstyrelsen", synonyms=extra, **kw)


#: Loader per catalogue ``source`` value.
LOADERS = {
    "forsakringskassan": load_forsakringskassan,
    "arbetsformedlingen": load_arbetsformedlingen,
    "socialstyrelsen": load_socialstyrelsen,
}
