"""The 290 Swedish kommuner, their län and the code history that breaks naive panels.

Codes are SCB's four-character kommun codes ("0180" for Stockholm); the first two characters are
the län code. The registry ships inside the package (``registry/data``) so that it works on a
user's machine without network access.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import cache
from importlib import resources

import pandas as pd

__all__ = [
    "DIVISIONS",
    "RegistryLookupError",
    "UnknownKommunError",
    "code_history",
    "division_year",
    "harmonise_codes",
    "kommun_code",
    "kommun_name",
    "kommuner",
    "lan",
]


class RegistryLookupError(KeyError, ValueError):
    """A name or code the registry cannot resolve; the message suggests near matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownKommunError(RegistryLookupError):
    """Raised when a kommun name or code cannot be resolved; the message suggests near matches."""


def read_data(name: str) -> pd.DataFrame:
    """A bundled registry table (``registry/data/<name>``) as strings, empty fields kept as ""."""
    path = resources.files("finsam_eval.registry").joinpath("data", name)
    with path.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


@cache
def _kommuner() -> pd.DataFrame:
    table = read_data("kommuner.csv").merge(
        read_data("lan.csv"), on="lan_kod", how="left", validate="m:1"
    )
    return table[["kommun_kod", "kommun", "lan_kod", "lan"]]


def kommuner() -> pd.DataFrame:
    """Return the current 290 kommuner.

    Returns
    -------
    pandas.DataFrame
        Columns ``kommun_kod`` (4-character string), ``kommun`` (name), ``lan_kod``
        (2-character string) and ``lan`` (län name), one row per kommun, sorted by code.
    """
    return _kommuner().copy()


def lan() -> pd.DataFrame:
    """Return the 21 län: ``lan_kod``, ``lan`` (official name) and ``lan_short``."""
    return read_data("lan.csv")


def code_history() -> pd.DataFrame:
    """Return the code and name changes that matter for 1998–2018 panels.

    Each row maps a historical code or name, valid from ``valid_from`` to ``valid_to``
    (inclusive years; empty = open), to the current ``kommun_kod``, with the event and its source.
    Heby (1917 until 2006, 0331 from 2007), Knivsta (0330 from 2003, split from Uppsala 0380),
    Nykvarn (0140 from 1999, split from Södertälje 0181) and Malung → Malung-Sälen (2009, code
    2023 kept) are covered. The years are those of the division in force on 1 January; see
    :data:`DIVISIONS` for how a source's data year maps to a division.
    """
    return _code_history().copy()


@cache
def _code_history() -> pd.DataFrame:
    # cached: kommun_code() consults the history on every code it resolves
    history = read_data("code_history.csv")
    for column in ("valid_from", "valid_to"):
        history[column] = pd.to_numeric(history[column].replace("", None)).astype("Int64")
    return history


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", str(text)).casefold().strip()
    text = re.sub(r"[-–_/]", " ", text)
    text = re.sub(r"\b(kommun|kommuns|stad|stads)\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@cache
def _name_index() -> dict[str, str]:
    index: dict[str, str] = {}
    table = _kommuner()
    for code, name in zip(table["kommun_kod"], table["kommun"], strict=True):
        index[_normalise(name)] = code
    for alias, code in zip(
        *read_data("aliases.csv")[["alias", "kommun_kod"]].T.values, strict=True
    ):
        index.setdefault(_normalise(alias), code)
    history = read_data("code_history.csv")
    for name, code in zip(history["historical_name"], history["kommun_kod"], strict=True):
        index.setdefault(_normalise(name), code)
    return index


@cache  # kommun_code() calls this for every code; callers must not mutate the result
def _historical_code_map(year: int | None) -> dict[str, str]:
    """Historical code → current code, for codes valid in ``year`` (any year when None)."""
    mapping: dict[str, str] = {}
    for row in _code_history().itertuples(index=False):
        if not row.historical_code or row.historical_code == row.kommun_kod:
            continue
        if year is not None:
            if pd.notna(row.valid_from) and year < row.valid_from:
                continue
            if pd.notna(row.valid_to) and year > row.valid_to:
                continue
        mapping[row.historical_code] = row.kommun_kod
    return mapping


def kommun_code(name_or_code: str | int, year: int | None = None) -> str:
    """Resolve a kommun name, spelling variant or (historical) code to its current code.

    Parameters
    ----------
    name_or_code
        A code (``"0180"``, ``180``, ``"1917"``) or a name (``"Stockholm"``,
        ``"Stockholms stad"``, ``"Malung"``, ``"Upplands Bro"``, ``"Staffanstorps"``).
        Matching ignores case, hyphens and the words *kommun*/*stad*, and accepts the genitive
        ``s`` used in the seed documents.
    year
        The year the code refers to. Historical codes (Heby's 1917 before 2007) are mapped only
        when ``year`` lies in their validity window; with ``year=None`` any historical code maps.

    Returns
    -------
    str
        The current four-character kommun code.

    Raises
    ------
    UnknownKommunError
        If nothing matches; the message names the input and suggests the nearest kommuner.
    """
    current = _current_codes()
    if isinstance(name_or_code, bool):
        raise UnknownKommunError(f"Unknown kommun {name_or_code!r}: expected a name or a code.")
    text = str(name_or_code).strip()
    if re.fullmatch(r"\d{1,4}", text):
        code = text.zfill(4)
        historical = _historical_code_map(year)
        if code in historical:
            return historical[code]
        if code in current:
            valid = _code_valid_in(code, year)
            if not valid:
                raise UnknownKommunError(
                    f"Kommun code {code} did not exist in {year} ({_kommun_name(code)}); "
                    "see finsam_eval.registry.code_history()."
                )
            return code
        any_year = _historical_code_map(None)
        if code in any_year:
            raise UnknownKommunError(
                f"Kommun code {code} is historical and was not in use in {year}; it maps to "
                f"{any_year[code]} ({_kommun_name(any_year[code])}) in other years."
            )
        raise UnknownKommunError(f"Unknown kommun code {text!r}: not among the 290 current codes.")
    key = _normalise(text)
    index = _name_index()
    if key in index:
        return index[key]
    if key.endswith("s") and key[:-1] in index:  # genitive: "Staffanstorps", "Göteborgs"
        return index[key[:-1]]
    suggestions = difflib.get_close_matches(key, list(index), n=3, cutoff=0.6)
    names = sorted({_kommun_name(index[s]) for s in suggestions})
    hint = f" Did you mean: {', '.join(names)}?" if names else ""
    raise UnknownKommunError(f"Unknown kommun {text!r}.{hint}")


@cache
def _current_codes() -> frozenset[str]:
    return frozenset(_kommuner()["kommun_kod"])


def _code_valid_in(code: str, year: int | None) -> bool:
    if year is None:
        return True
    history = _code_history()
    rows = history[(history["kommun_kod"] == code) & (history["historical_code"] == "")]
    for row in rows.itertuples(index=False):  # kommuner that did not exist before a year
        if pd.notna(row.valid_from) and year < row.valid_from:
            return False
    renamed_away = history[(history["historical_code"] == code) & (history["kommun_kod"] != code)]
    # a current code that used to belong to another kommun does not arise in 1998–2018
    return renamed_away.empty


def _kommun_name(code: str) -> str:
    table = _kommuner()
    return str(table.loc[table["kommun_kod"] == code, "kommun"].iloc[0])


def kommun_name(code: str | int) -> str:
    """Return the current name of a kommun given any code or name ``kommun_code`` accepts."""
    return _kommun_name(kommun_code(code))


#: How a source's data year maps to a kommun division. "start_of_year": year Y is reported on
#: the division of 1 January Y (flows such as SCB's births, deaths and migration: "redovisas
#: enligt den regionala indelningen vid årets början"). "end_of_year": year Y is reported on the
#: division of 1 January Y+1 (stocks at 31 December, e.g. SCB's folkmängd: "Folkmängden per den
#: 31 december avser den regionala indelningen 1 januari året efter"; SCB Statistikdatabasen,
#: BE0101G footnote). Tables on a fixed current division (SCB's TAB638 uses the value set
#: vs_RegionKommun07 for every year 1968–2024, so Heby is 0331 throughout) need no harmonisation
#: under either convention.
DIVISIONS = ("start_of_year", "end_of_year")


def division_year(years: pd.Series | int, division: str = "start_of_year") -> pd.Series | int:
    """The year whose 1 January division a data year is reported on (see :data:`DIVISIONS`)."""
    if division not in DIVISIONS:
        raise ValueError(f"unknown division {division!r}; choose one of {', '.join(DIVISIONS)}")
    return years + 1 if division == "end_of_year" else years


def harmonise_codes(
    frame: pd.DataFrame,
    code: str = "kommun_kod",
    year: str = "year",
    *,
    division: str = "start_of_year",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map historical kommun codes in a long table to current codes.

    Parameters
    ----------
    frame
        A table with a kommun code column and a year column.
    code, year
        Column names.
    division
        The source's division convention (:data:`DIVISIONS`): "start_of_year" (default; year Y
        on the division of 1 January Y) or "end_of_year" (year Y on the division of 1 January
        Y+1, SCB's convention for 31 December population). Under "end_of_year" Heby's 1917 is
        mapped for data years up to 2005 only, since SCB's 2006 figures are already on the 2007
        division (0331).

    Returns
    -------
    (harmonised, changes)
        ``harmonised`` is a copy with current codes as 4-character strings; ``changes`` lists
        every altered row (original index, old code, new code, year, reason) so that a build
        report can show it.
    """
    out = frame.copy()
    codes = out[code].astype(str).str.strip().str.zfill(4)
    new_codes = codes.copy()
    reasons = pd.Series("", index=out.index, dtype=object)
    history = code_history()
    on_division = division_year(out[year], division)
    for row in history.itertuples(index=False):
        if not row.historical_code or row.historical_code == row.kommun_kod:
            continue
        in_window = codes.eq(row.historical_code)
        if pd.notna(row.valid_from):
            in_window &= on_division >= row.valid_from
        if pd.notna(row.valid_to):
            in_window &= on_division <= row.valid_to
        new_codes[in_window] = row.kommun_kod
        reasons[in_window] = row.event + (
            " (division of 1 January of the following year)" if division == "end_of_year" else ""
        )
    out[code] = new_codes
    changed = codes.ne(new_codes)
    changes = pd.DataFrame(
        {
            "row": out.index[changed],
            "old_code": codes[changed].to_numpy(),
            "new_code": new_codes[changed].to_numpy(),
            "year": out.loc[changed, year].to_numpy(),
            "reason": reasons[changed].to_numpy(),
        }
    )
    return out, changes
