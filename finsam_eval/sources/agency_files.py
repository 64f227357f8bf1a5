"""Loaders for the agencies' downloadable statistics files (CSV or XLSX, Swedish headers).

Försäkringskassan (sjukpenning; sjuk- och aktivitetsersättning), Arbetsförmedlingen (left
unemployment for work) and Socialstyrelsen (ekonomiskt bistånd) publish counts by kommun as
files from their statistics pages. The layouts change between releases, so the loader does
not hard-code one: it finds the header row (files often start with a title and notes),
recognises the usual Swedish column names, accepts years as rows or as columns, and parses
Swedish numbers (space or non-breaking-space thousands separators, decimal comma).

Suppressed cells (``..``, ``.``, ``*``, ``X``, ``-``, ``–``) become missing and are listed in
the returned report: a suppressed small count is *never* read as zero, because that would bias
shares in exactly the small kommuner where suppression happens.

The result is a *group table* — ``kommun_kod``, ``year``, ``sex`` (K/M/T), ``age_from``,
``age_to``, ``count`` — which :func:`finsam_eval.sources.fetch.to_age_bands` turns into the
builder's age bands.
"""

from __future__ import annotations

import csv
import hashlib
import io
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
SUPPRESSION_MARKERS = frozenset({"..", ".", "…", "*", "x", "X", "-", "–", "—", "u", "i.u."})

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
    "samtliga": "T",
    "båda könen": "T",
    "alla": "T",
    "1+2": "T",
}

_AGGREGATE_NAMES = {"riket", "hela riket", "sverige", "totalt", "samtliga", "summa", "okänd kommun"}


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
        Rows left out on purpose (riket, län, footnotes): ``row``, ``text``, ``reason``.
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


def _resolve_kommun(code_cell: str | None, name_cell: str | None, year: int | None) -> str | None:
    for cell in (code_cell, name_cell):
        if cell is None:
            continue
        text = str(cell).strip()
        if not text or _norm(text) in _AGGREGATE_NAMES:
            return None
        m = re.match(r"^(\d{3,4})\b", text)  # "0180 Stockholm" or a bare code
        candidate = m.group(1) if m else text
        if m and len(candidate) == 4 and candidate[:2] == "00":
            return None  # län rows coded 00XX by some agencies
        try:
            return kommun_code(candidate, year=year)
        except UnknownKommunError:
            try:
                return kommun_code(candidate)
            except UnknownKommunError:
                continue
    return None


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
) -> AgencyFile:
    """Load one agency file into a group table, reporting suppressed cells.

    Parameters
    ----------
    path
        CSV (``;``, ``,`` or tab separated; UTF-8 or Windows-1252) or XLSX (needs openpyxl).
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
    grid = _read_grid(path, sheet)

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

    records, suppressed, dropped = [], [], []
    for offset, row in enumerate(grid[header_row + 1 :], start=header_row + 2):
        if not any(str(c).strip() for c in row):
            continue
        row_year = year
        if "year" in roles:
            parsed = parse_swedish_number(_cell(row, roles, "year"))
            row_year = int(parsed) if parsed is not None else None
        code = _resolve_kommun(
            _cell(row, roles, "kommun_kod"), _cell(row, roles, "kommun"), row_year
        )
        if code is None:
            dropped.append(
                {"row": offset, "text": " | ".join(map(str, row))[:120], "reason": "not a kommun"}
            )
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
    )


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
