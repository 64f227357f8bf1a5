"""The outcome catalogue: which source, identifier and population each outcome comes from.

The catalogue ships as ``outcomes.toml`` inside the package; users extend or override it with
their own TOML of the same shape (a table per outcome under ``[outcomes.<name>]``). A user
entry replaces the fields it names and keeps the others, so switching one outcome to another
KPI is a two-line file.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from typing import Any

import pandas as pd

from finsam_eval.sources.http import SourceError

__all__ = [
    "CatalogueError",
    "FETCHED_SOURCES",
    "FILE_SOURCES",
    "check_title_ages",
    "kolada_candidates",
    "MICRODATA_SOURCES",
    "load_catalogue",
    "outcome_catalogue",
    "parse_ages",
    "title_ages",
]

FETCHED_SOURCES = frozenset({"kolada"})
FILE_SOURCES = frozenset({"forsakringskassan", "arbetsformedlingen", "socialstyrelsen", "csn"})
#: Outcomes built from person-year register data (finsam_eval.microdata), never fetched.
MICRODATA_SOURCES = frozenset({"microdata"})
_REQUIRED = ("source", "identifier", "numerator", "denominator", "population", "measure")
#: Evidence recorded for every outcome: the source's title and definition, and where they were
#: confirmed (a public address or repository file, or "not confirmed").
EVIDENCE = ("title", "definition", "confirmed_in")
_COLUMNS = [
    *_REQUIRED,
    "title_contains",
    *EVIDENCE,
    "age_note",
    "verification",
    "notes",
]


class CatalogueError(SourceError, ValueError):
    """The catalogue (built-in or user TOML) is malformed or names an unknown outcome."""


def parse_ages(text: str) -> tuple[int, int]:
    """``"16-24"`` → ``(16, 24)``."""
    m = re.fullmatch(r"\s*(\d+)\s*[-–]\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) > int(m.group(2)):
        raise CatalogueError(f"population must look like '16-24', not {text!r}")
    return int(m.group(1)), int(m.group(2))


def title_ages(title: str) -> tuple[int, int] | None:
    """The age band a KPI title names (``"Invånare 16-24 år som ..."`` → ``(16, 24)``), if any.

    Only a band followed by "år" counts, so that "andel (%)" or years in a title do not.
    """
    m = re.search(r"(\d{1,3})\s*[-–]\s*(\d{1,3})\s*år\b", str(title))
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_title_ages(outcome: str, kpi_id: str, title: str, population: str) -> None:
    """Refuse a KPI whose live title names another age band than the catalogue's ``population``.

    A catalogue that says ``population = "19-24"`` for a KPI titled "... 16-24 år ..." would
    silently turn a 16-24 share into 19-24 counts; the mismatch must be written down instead
    (set ``population`` to the title's band; the fetch then reports how the band is applied).
    """
    ages = title_ages(title)
    if ages is not None and ages != parse_ages(population):
        raise CatalogueError(
            f"outcome {outcome!r}: Kolada KPI {kpi_id} is titled {title!r} (ages {ages[0]}-"
            f"{ages[1]}) but the catalogue says population = {population!r}; set population to "
            f"'{ages[0]}-{ages[1]}' (the band the KPI measures) in a user TOML"
        )


def _read_builtin() -> dict[str, Any]:
    path = resources.files("finsam_eval.sources").joinpath("outcomes.toml")
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _read_user(user: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(user, dict):
        return user
    try:
        with open(user, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise CatalogueError(f"user catalogue not found: {user}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"user catalogue {user} is not valid TOML: {exc}") from exc


def load_catalogue(
    user: str | os.PathLike[str] | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The merged catalogue as a dict: ``{"population": {...}, "outcomes": {name: {...}}}``.

    Parameters
    ----------
    user
        Path to a user TOML (or an already parsed dict) whose ``[outcomes.<name>]`` tables add
        outcomes or override fields of built-in ones, and whose ``[population]`` overrides
        fields of the population source.
    """
    data = _read_builtin()
    outcomes = {name: dict(entry) for name, entry in data.get("outcomes", {}).items()}
    population = dict(data.get("population", {}))
    if user is not None:
        extra = _read_user(user)
        unknown = set(extra) - {"outcomes", "population"}
        if unknown:
            raise CatalogueError(
                f"user catalogue has unknown top-level tables {sorted(unknown)}; use "
                "[outcomes.<name>] and [population]"
            )
        for name, entry in extra.get("outcomes", {}).items():
            if not isinstance(entry, dict):
                raise CatalogueError(f"[outcomes.{name}] must be a table")
            outcomes[name] = {**outcomes.get(name, {}), **entry}
        population.update(extra.get("population", {}))
    for name, entry in outcomes.items():
        missing = [f for f in _REQUIRED if f not in entry]
        if missing:
            raise CatalogueError(f"outcome {name!r} lacks {missing}")
        if entry["source"] not in FETCHED_SOURCES | FILE_SOURCES | MICRODATA_SOURCES:
            raise CatalogueError(
                f"outcome {name!r}: unknown source {entry['source']!r}; use one of "
                f"{sorted(FETCHED_SOURCES | FILE_SOURCES | MICRODATA_SOURCES)}"
            )
        if entry["measure"] not in {"share", "count"}:
            raise CatalogueError(f"outcome {name!r}: measure must be 'share' or 'count'")
        parse_ages(entry["population"])
    return {"population": population, "outcomes": outcomes}


def outcome_catalogue(
    user: str | os.PathLike[str] | dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The outcome catalogue as a table indexed by outcome.

    Parameters
    ----------
    user
        Optional user TOML (path or parsed dict) that extends or overrides entries.

    Returns
    -------
    pandas.DataFrame
        Index ``outcome``; columns ``source``, ``identifier``, ``numerator``,
        ``denominator``, ``population``, ``measure``, ``title_contains``, the evidence
        (``title``, ``definition``, ``confirmed_in``), ``age_note``, ``verification``, ``notes``.

    Examples
    --------
    >>> from finsam_eval.sources import outcome_catalogue
    >>> outcome_catalogue().loc["uvas", "source"]
    'kolada'
    """
    outcomes = load_catalogue(user)["outcomes"]
    rows = [{c: str(entry.get(c, "")) for c in _COLUMNS} for entry in outcomes.values()]
    frame = pd.DataFrame(rows, columns=_COLUMNS, index=pd.Index(list(outcomes), name="outcome"))
    return frame


def kolada_candidates() -> pd.DataFrame:
    """Kolada series by age band and sex that could feed the ISF populations (not used by default).

    Issue 11 found these ids in recorded copies of Kolada's KPI lists; their titles and age
    bands are not confirmed by any public source found, so the table says what each would feed
    and what the evidence is. Use one through a user TOML entry (see ``outcomes.toml``); the
    fetch checks its live title and age band.

    Returns
    -------
    pandas.DataFrame
        Index ``kpi``; columns ``feeds``, ``evidence``.
    """
    data = _read_builtin().get("kolada_candidates", {})
    frame = pd.DataFrame(
        [
            {"feeds": str(v.get("feeds", "")), "evidence": str(v.get("evidence", ""))}
            for v in data.values()
        ],
        index=pd.Index(list(data), name="kpi"),
        columns=["feeds", "evidence"],
    )
    return frame
