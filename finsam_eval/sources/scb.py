"""Client for SCB's PxWeb API (v1 and v2) with JSON-stat2 parsing and cell-limit chunking.

* v1 (``https://api.scb.se/OV0104/v1/doris/sv/ssd``): GET ``{base}/{table path}`` returns the
  table metadata ``{"title", "variables": [{"code", "text", "values", "valueTexts",
  "elimination", "time"}]}``; POST the same URL with ``{"query": [{"code", "selection":
  {"filter", "values"}}], "response": {"format": "json-stat2"}}`` returns data.
* v2 (``https://statistikdatabasen.scb.se/api/v2``): GET ``{base}/tables/{id}/metadata``
  returns JSON-stat2 without values; POST ``{base}/tables/{id}/data?outputFormat=json-stat2``
  with ``{"selection": [{"variableCode", "valueCodes", "codelist"?}]}`` returns data.

SCB caps one request at a number of data cells (150 000 in the v2 ``/config``) and at 30
calls per 10 seconds; queries above the cap are split automatically and the client waits
0.35 s between calls.

Population (the builder's denominator) is split across two tables since SCB froze the long
series at 2024 and published 2025 onward in a new table (:data:`POPULATION_TABLES`):

* ``BE/BE0101/BE0101A/BefolkningNy`` (v2 ``TAB638``), 1968-2024: ``Region`` × ``Civilstand``
  (eliminated: summed by SCB) × ``Alder`` (``"0"`` ... ``"100+"``, ``"tot"``) × ``Kon``
  (1 = men, 2 = women) × ``ContentsCode`` ``BE0101N1`` (Folkmängd, 31 December) × ``Tid``.
* ``BE/BE0101/BE0101A/BefolkningCKM`` (v2 ``TAB5557``), 2025-: the same variables, but
  ``ContentsCode`` ``000007ME`` is Folkmängd (``000007MG`` is Folkökning), ``Civilstand`` does
  not eliminate and has the total ``SC``, ``Kon`` adds ``TotSa``, ``Alder`` has ``"0"`` ...
  ``"99"``, ``"100+1"``, 5- and 10-year bands and four totals, and every cell carries SCB's
  Cell Key Method noise (sums of single ages differ slightly from SCB's published totals).

:meth:`ScbClient.population` asks each table's metadata which years it holds, sends every
requested year to the first table that lists it, and concatenates; a year in no table is an
error naming the tables and the years they hold. Every table-specific code (content code by
its label "Folkmängd", the civil-status total, the open age class) is read from that table's
own metadata, so a further split needs one more :class:`PopulationTable`, not new year logic.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.sources.cache import CachedSource, Provenance, provenance_for
from finsam_eval.sources.http import HttpClient, MalformedResponseError, Response

__all__ = [
    "DEFAULT_SCB_URL",
    "POPULATION_TABLES",
    "POPULATION_TABLE_V1",
    "POPULATION_TABLE_V2",
    "PopulationTable",
    "PopulationYearsError",
    "ScbClient",
    "TableMetadata",
    "Variable",
    "parse_jsonstat2",
]

DEFAULT_SCB_URL = "https://api.scb.se/OV0104/v1/doris/sv/ssd"
POPULATION_TABLE_V1 = "BE/BE0101/BE0101A/BefolkningNy"
POPULATION_TABLE_V2 = "TAB638"
DEFAULT_MAX_CELLS = 150_000


@dataclass(frozen=True)
class PopulationTable:
    """One SCB table of population by kommun, sex, single-year age and year.

    ``v1`` is the PxWeb v1 path, ``v2`` the v2 table id; ``years`` and ``content_code`` are
    what the table was documented to hold (used in messages and as a fallback; the table's
    live metadata decides); ``ckm`` marks Cell Key Method perturbation.
    """

    v1: str
    v2: str
    years: str
    content_code: str
    ckm: bool = False

    def name(self, api_version: int) -> str:
        return self.v2 if api_version == 2 else self.v1


#: Population tables in the order years are routed to them (first table listing a year wins).
#: Sources: SCB's own metadata as reported by public code (see outcomes.toml [population]).
POPULATION_TABLES: tuple[PopulationTable, ...] = (
    PopulationTable(POPULATION_TABLE_V1, POPULATION_TABLE_V2, "1968-2024", "BE0101N1"),
    PopulationTable("BE/BE0101/BE0101A/BefolkningCKM", "TAB5557", "2025-", "000007ME", ckm=True),
)
_CONTENT_LABEL = "folkmängd"
_TOTAL_WORDS = ("totalt", "samtliga")


class PopulationYearsError(MalformedResponseError):
    """Some requested years are in none of the known population tables."""


@dataclass(frozen=True)
class Variable:
    """One table dimension: code, label, value codes and texts, whether it may be left out."""

    code: str
    text: str
    values: tuple[str, ...]
    value_texts: tuple[str, ...]
    elimination: bool = False
    time: bool = False


@dataclass(frozen=True)
class TableMetadata:
    """Metadata of one PxWeb table."""

    table: str
    title: str
    variables: tuple[Variable, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def variable(self, code: str) -> Variable:
        for variable in self.variables:
            if variable.code == code:
                return variable
        names = ", ".join(v.code for v in self.variables)
        raise KeyError(f"table {self.table} has no variable {code!r} (has {names})")


def _need(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise MalformedResponseError(
            f"PxWeb response from {where} lacks the field {key!r}; got {str(obj)[:200]!r}"
        )
    return obj[key]


def _category_codes(dimension: Mapping[str, Any], name: str, where: str) -> list[str]:
    """Category codes of a JSON-stat2 dimension in index order (index may be list or dict)."""
    category = _need(_need(dimension, name, where), "category", where)
    index = category.get("index")
    if index is None:  # a single category may omit the index and carry only a label
        labels = _need(category, "label", where)
        return list(labels)
    if isinstance(index, list):
        return [str(c) for c in index]
    if isinstance(index, dict):
        return [str(c) for c, _ in sorted(index.items(), key=lambda kv: kv[1])]
    raise MalformedResponseError(f"bad category index for {name!r} in {where}")


def parse_jsonstat2(payload: Mapping[str, Any], where: str = "response") -> pd.DataFrame:
    """Turn a JSON-stat2 dataset into a long table: one column per dimension plus ``value``.

    Values are in row-major order over ``id`` (the last dimension varies fastest). ``value``
    may be a list or a sparse ``{"position": value}`` mapping; missing/null cells become NaN
    and the JSON-stat ``status`` symbol (SCB uses ``".."`` for not available) is kept.
    """
    if payload.get("class") not in (None, "dataset"):
        raise MalformedResponseError(f"expected a JSON-stat2 dataset from {where}")
    ids = [str(i) for i in _need(payload, "id", where)]
    sizes = [int(s) for s in _need(payload, "size", where)]
    dimension = _need(payload, "dimension", where)
    if len(ids) != len(sizes):
        raise MalformedResponseError(f"JSON-stat2 'id' and 'size' differ in length in {where}")
    codes = [_category_codes(dimension, name, where) for name in ids]
    for name, size, cats in zip(ids, sizes, codes, strict=True):
        if len(cats) != size:
            raise MalformedResponseError(
                f"dimension {name!r} has {len(cats)} categories but size {size} in {where}"
            )
    n = math.prod(sizes)
    raw_values = _need(payload, "value", where)
    values = np.full(n, np.nan)
    if isinstance(raw_values, list):
        if len(raw_values) != n:
            raise MalformedResponseError(
                f"JSON-stat2 from {where} has {len(raw_values)} values for {n} cells "
                "(truncated or inconsistent)"
            )
        values[:] = [np.nan if v is None else float(v) for v in raw_values]
    elif isinstance(raw_values, dict):
        for position, v in raw_values.items():
            if v is not None:
                values[int(position)] = float(v)
    else:
        raise MalformedResponseError(f"JSON-stat2 'value' is neither list nor object in {where}")
    status = [""] * n
    raw_status = payload.get("status") or {}
    if isinstance(raw_status, list):
        status = ["" if s is None else str(s) for s in raw_status] + [""] * (n - len(raw_status))
    elif isinstance(raw_status, dict):
        for position, s in raw_status.items():
            status[int(position)] = str(s)
    if n == 0:
        return pd.DataFrame({**{name: [] for name in ids}, "value": [], "status": []})
    grid = np.indices(sizes).reshape(len(sizes), -1)  # row-major, last dimension fastest
    frame = pd.DataFrame(
        {
            name: np.asarray(cats, dtype=object)[grid[i]]
            for i, (name, cats) in enumerate(zip(ids, codes, strict=True))
        }
    )
    frame = frame.astype(str)
    frame["value"] = values
    frame["status"] = status
    return frame


def plan_chunks(
    selection: Mapping[str, Sequence[str]], max_cells: int, prefer: Sequence[str] = ()
) -> list[dict[str, list[str]]]:
    """Split a selection into sub-selections of at most ``max_cells`` cells each.

    The dimension split is the one with most values among ``prefer`` (else overall), halved
    repeatedly, so that chunks stay few and equal. Raises if one cell-combination of the
    unsplittable rest already exceeds the limit.
    """
    selection = {k: list(v) for k, v in selection.items()}
    cells = math.prod(len(v) for v in selection.values()) if selection else 0
    if cells <= max_cells:
        return [selection]
    splittable = [k for k in selection if len(selection[k]) > 1]
    if not splittable:
        raise ValueError(f"a single cell exceeds max_cells={max_cells}")
    ranked = [k for k in prefer if k in splittable] or splittable
    dim = max(ranked, key=lambda k: len(selection[k]))
    others = cells // len(selection[dim])
    per_chunk = max_cells // others
    if per_chunk < 1:  # even one value of dim is too much: split another dimension too
        rest = [k for k in splittable if k != dim]
        if not rest:
            raise ValueError(f"cannot split the selection below max_cells={max_cells}")
        chunks = []
        for value in selection[dim]:
            chunks.extend(plan_chunks({**selection, dim: [value]}, max_cells, prefer))
        return chunks
    values = selection[dim]
    return [{**selection, dim: values[i : i + per_chunk]} for i in range(0, len(values), per_chunk)]


class ScbClient(CachedSource):
    """Read tables from SCB's PxWeb API.

    Parameters
    ----------
    base_url
        v1 root (default, ``https://api.scb.se/OV0104/v1/doris/sv/ssd``) or v2 root
        (``https://statistikdatabasen.scb.se/api/v2``); the version is read from the URL
        (``/api/v2`` means v2).
    cache_dir
        Series cache directory; ``None`` disables caching.
    offline
        Use only the cache.
    http
        An :class:`~finsam_eval.sources.http.HttpClient`; the default honours SCB's 30 calls
        per 10 s with 0.35 s between calls.
    max_cells
        Cell limit per request; larger queries are chunked.
    lang
        Language for v2 requests.
    """

    source = "scb"

    def __init__(
        self,
        base_url: str = DEFAULT_SCB_URL,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool = False,
        http: HttpClient | None = None,
        max_cells: int = DEFAULT_MAX_CELLS,
        lang: str = "sv",
    ) -> None:
        super().__init__(base_url, cache_dir, offline, http or HttpClient(min_interval=0.35))
        self.api_version = 2 if "/v2" in urllib.parse.urlsplit(self.base_url).path else 1
        self.max_cells = max_cells
        self.lang = lang

    # ------------------------------------------------------------------ metadata
    def _table_url(self, table: str) -> str:
        if self.api_version == 2:
            return f"{self.base_url}/tables/{urllib.parse.quote(table)}"
        return f"{self.base_url}/{table.strip('/')}"

    def table_metadata(self, table: str) -> TableMetadata:
        """Variables and value codes of a table (v1 path such as ``BE/BE0101/...`` or v2 id)."""
        return self._metadata(table)[0]

    def _metadata(self, table: str) -> tuple[TableMetadata, Response]:
        self._require_online()
        if self.api_version == 2:
            response = self.http.get(self._table_url(table) + "/metadata", {"lang": self.lang})
            return self._parse_v2_metadata(table, response.json(), response.url), response
        response = self.http.get(self._table_url(table))
        payload = response.json()
        where = response.url
        variables = []
        for var in _need(payload, "variables", where):
            values = [str(v) for v in _need(var, "values", where)]
            texts = [str(v) for v in var.get("valueTexts", values)]
            variables.append(
                Variable(
                    code=str(_need(var, "code", where)),
                    text=str(var.get("text", "")),
                    values=tuple(values),
                    value_texts=tuple(texts),
                    elimination=bool(var.get("elimination", False)),
                    time=bool(var.get("time", False)),
                )
            )
        return TableMetadata(table, str(payload.get("title", "")), tuple(variables)), response

    @staticmethod
    def _parse_v2_metadata(table: str, payload: Any, where: str) -> TableMetadata:
        ids = [str(i) for i in _need(payload, "id", where)]
        dimension = _need(payload, "dimension", where)
        roles = payload.get("role") or {}
        time_dims = set(roles.get("time") or [])
        variables = []
        for name in ids:
            codes = _category_codes(dimension, name, where)
            dim = dimension[name]
            labels = dim["category"].get("label") or {}
            ext = dim.get("extension") or {}
            variables.append(
                Variable(
                    code=name,
                    text=str(dim.get("label", "")),
                    values=tuple(codes),
                    value_texts=tuple(str(labels.get(c, c)) for c in codes),
                    elimination=bool(ext.get("elimination", False)),
                    time=name in time_dims,
                )
            )
        return TableMetadata(table, str(payload.get("label", "")), tuple(variables))

    # ------------------------------------------------------------------ data
    def _body(
        self, selection: Mapping[str, Sequence[str]], filters: Mapping[str, str]
    ) -> dict[str, Any]:
        if self.api_version == 2:
            items = []
            for code, values in selection.items():
                item: dict[str, Any] = {"variableCode": code, "valueCodes": list(values)}
                if code in filters:
                    item["codelist"] = filters[code]
                items.append(item)
            return {"selection": items}
        return {
            "query": [
                {"code": code, "selection": {"filter": "item", "values": list(values)}}
                for code, values in selection.items()
            ],
            "response": {"format": "json-stat2"},
        }

    def query(
        self,
        table: str,
        selection: Mapping[str, Sequence[str]],
        filters: Mapping[str, str] | None = None,
        prefer_split: Sequence[str] = ("Region", "Tid"),
    ) -> tuple[pd.DataFrame, list[Response]]:
        """Run a selection, chunked to respect ``max_cells``; return a long table.

        Variables absent from ``selection`` are eliminated (SCB sums them), so they must be
        eliminable. ``filters`` gives v2 code lists per variable (ignored in v1, where explicit
        value codes are used).
        """
        self._require_online()
        filters = dict(filters or {})
        frames = []
        responses = []
        url = self._table_url(table) + ("/data" if self.api_version == 2 else "")
        params = (
            {"lang": self.lang, "outputFormat": "json-stat2"} if self.api_version == 2 else None
        )
        for chunk in plan_chunks(selection, self.max_cells, prefer_split):
            response = self.http.post_json(url, self._body(chunk, filters), params=params)
            frame = parse_jsonstat2(response.json(), response.url)
            expected = math.prod(len(v) for v in chunk.values())
            if len(frame) != expected:
                raise MalformedResponseError(
                    f"PxWeb returned {len(frame)} cells for a chunk of {expected} from "
                    f"{response.url}"
                )
            frames.append(frame)
            responses.append(response)
        return pd.concat(frames, ignore_index=True), responses

    def population(
        self,
        years: Iterable[int],
        ages: Iterable[int] = range(16, 65),
        table: str | None = None,
        content_code: str | None = None,
        tables: Sequence[PopulationTable] = POPULATION_TABLES,
    ) -> tuple[pd.DataFrame, Provenance]:
        """Population by kommun × sex × single-year age × year (31 December), builder format.

        The years are split across SCB's population tables (:data:`POPULATION_TABLES`):
        each table's metadata says which years it holds, every year goes to the first table
        that holds it, and the parts are concatenated. A year that no table holds raises
        :class:`PopulationYearsError` naming the tables and their years.

        Parameters
        ----------
        years
            Years (``Tid``).
        ages
            Single years of age; 100 means the open class (``"100+"`` or ``"100+1"``).
        table
            Use only this table (v1 path or v2 id) instead of the routed set.
        content_code
            ``ContentsCode`` for the population count; by default the value labelled
            "Folkmängd" in each table's metadata (``BE0101N1`` in TAB638, ``000007ME`` in
            TAB5557).
        tables
            The routed tables, in priority order.

        Returns
        -------
        (frame, provenance)
            ``kommun_kod`` (4-char str), ``year`` (int), ``sex`` ("K"/"M"), ``age`` (int),
            ``population`` (float; NaN where SCB has no figure). ``provenance.query["tables"]``
            maps each table to the years read from it.
        """
        years = sorted(set(int(y) for y in years))
        ages = sorted(set(int(a) for a in ages))
        if not years or not ages:
            raise ValueError("population() needs at least one year and one age")
        if table is not None:
            routed = [PopulationTable(table, table, "as given", content_code or "")]
            series = f"scb:{table}:population:{ages[0]}-{ages[-1]}"
        else:
            routed = list(tables)
            series = f"scb:population:{ages[0]}-{ages[-1]}"
        if self.offline:
            assert self.cache is not None
            return self.cache.require(self.source, series, years)
        remaining = list(years)
        frames, responses, read, seen, titles, notes = [], [], {}, {}, {}, []
        for spec in routed:
            if not remaining:
                break
            name = spec.name(self.api_version)
            meta, meta_response = self._metadata(name)
            responses.append(meta_response)
            available = [str(v) for v in meta.variable("Tid").values]
            seen[name] = f"{available[0]}-{available[-1]}" if available else "none"
            here = [y for y in remaining if str(y) in set(available)]
            if not here:
                continue
            frame, chunk_responses, used = self._population_part(
                name, meta, here, ages, content_code or None, spec.content_code
            )
            frames.append(frame)
            responses.extend(chunk_responses)
            read[name] = {"years": here, **used}
            titles[name] = meta.title
            if spec.ckm:
                notes.append(
                    f"{name} ({here}) is perturbed by SCB's Cell Key Method: sums of single "
                    "ages differ slightly from SCB's published totals"
                )
            remaining = [y for y in remaining if y not in here]
        if remaining:
            listing = "; ".join(f"{n}: {r}" for n, r in seen.items()) or "none consulted"
            raise PopulationYearsError(
                f"SCB has no data for years {remaining} in any known population table "
                f"({listing}). SCB may not have published them yet, or a new table continues "
                "the series: pass table=... or add a PopulationTable to tables=..."
            )
        frame = pd.concat(frames, ignore_index=True)
        frame = frame.sort_values(["kommun_kod", "year", "sex", "age"], ignore_index=True)
        provenance = provenance_for(
            series,
            self.source,
            responses,
            {
                "tables": read,
                "ages": [ages[0], ages[-1]],
                "base_url": self.base_url,
                "chunks": len(responses) - len(seen),
            },
            years,
            {"titles": titles, "notes": notes},
        )
        if self.cache is not None:
            provenance = self.cache.put(frame, provenance)
        return frame, provenance

    @staticmethod
    def _content_code(meta: TableMetadata, wanted: str | None, documented: str) -> str:
        """The population ``ContentsCode`` of a table, resolved from its own metadata."""
        variable = meta.variable("ContentsCode")
        texts = dict(zip(variable.values, variable.value_texts, strict=True))
        listing = ", ".join(f"{c}={t!r}" for c, t in texts.items())
        if wanted is not None:
            if wanted not in texts:
                raise MalformedResponseError(
                    f"{meta.table} has no ContentsCode {wanted!r} (has {listing})"
                )
            return wanted
        # "Folkmängd" (or "Folkmängd 31 december"); its sibling "Folkökning" is a change
        labelled = [c for c, t in texts.items() if t.strip().casefold().startswith(_CONTENT_LABEL)]
        if len(labelled) == 1:
            return labelled[0]
        # some metadata label values by their codes; then the documented code must be there
        if not labelled and documented in texts and texts[documented] in {documented, ""}:
            return documented
        raise MalformedResponseError(
            f"{meta.table}: cannot tell which ContentsCode is the population count "
            f"(Folkmängd) among {listing}; pass content_code=..."
        )

    @staticmethod
    def _age_codes(meta: TableMetadata, ages: Sequence[int]) -> list[str]:
        values = meta.variable("Alder").values
        singles = {v: int(v) for v in values if v.isdigit()}
        # the open class: "100+" (TAB638) or "100+1" (TAB5557, "1" for the 1-year grouping)
        opens = {v: int(v.split("+")[0]) for v in values if re.fullmatch(r"\d+\+1?", v)}
        by_age = {**{a: v for v, a in opens.items()}, **{a: v for v, a in singles.items()}}
        missing = [a for a in ages if a not in by_age]
        if missing:
            raise MalformedResponseError(
                f"{meta.table} has no single-year Alder codes for ages {missing}"
            )
        return [by_age[a] for a in ages]

    @staticmethod
    def _total_code(variable: Variable) -> str | None:
        """The value labelled as the total ("totalt, samtliga ..."), if the variable has one."""
        for code, text in zip(variable.values, variable.value_texts, strict=True):
            if any(word in text.casefold() for word in _TOTAL_WORDS):
                return code
        return None

    def _population_part(
        self,
        table: str,
        meta: TableMetadata,
        years: Sequence[int],
        ages: Sequence[int],
        content_code: str | None,
        documented_code: str,
    ) -> tuple[pd.DataFrame, list[Response], dict[str, Any]]:
        """Population of one table for the years it holds."""
        region = meta.variable("Region")
        kommun_codes = [c for c in region.values if len(c) == 4 and c.isdigit() and c != "0000"]
        kon = meta.variable("Kon")
        if not {"1", "2"} <= set(kon.values):
            raise MalformedResponseError(f"{table}: Kon lacks the codes 1 (men) and 2 (women)")
        selection: dict[str, list[str]] = {
            "Region": kommun_codes,
            "Alder": self._age_codes(meta, ages),
            "Kon": ["1", "2"],
            "ContentsCode": [self._content_code(meta, content_code, documented_code)],
            "Tid": [str(y) for y in years],
        }
        # every other variable is eliminated where the table allows it (SCB sums it);
        # otherwise its total is selected (Civilstand "SC" in TAB5557/BefolkningCKM), and a
        # variable with neither is asked for in full and summed here
        fixed: dict[str, str] = {}
        summed: list[str] = []
        for variable in meta.variables:
            if variable.code in selection or variable.elimination:
                continue
            total = self._total_code(variable)
            if total is None:
                summed.append(variable.code)
            else:
                fixed[variable.code] = total
        extra_selection = {k: [v] for k, v in fixed.items()}
        extra_selection.update({k: list(meta.variable(k).values) for k in summed})
        raw, responses = self.query(table, {**selection, **extra_selection})
        if summed:
            keys = ["Region", "Tid", "Kon", "Alder"]
            # a cell is known only if every part is: a missing part must not shrink the sum
            raw = raw.groupby(keys, as_index=False, sort=False).agg(
                value=("value", lambda v: v.sum(min_count=len(v)))
            )
        frame = pd.DataFrame(
            {
                "kommun_kod": raw["Region"].str.zfill(4),
                "year": raw["Tid"].astype(int),
                "sex": raw["Kon"].map({"1": "M", "2": "K"}),
                "age": raw["Alder"].str.extract(r"^(\d+)")[0].astype(int),
                "population": raw["value"].astype(float),
            }
        )
        if frame["sex"].isna().any():
            raise MalformedResponseError(f"unexpected Kon codes in {table}: {set(raw['Kon'])}")
        used = {
            "content_code": selection["ContentsCode"][0],
            "fixed": fixed,
            "summed": summed,
            "regions": len(kommun_codes),
            "ages": [ages[0], ages[-1]],
        }
        return frame, responses, used


def cells(selection: Mapping[str, Sequence[str]]) -> int:
    """Number of data cells a selection asks for."""
    return math.prod(len(v) for v in selection.values())
