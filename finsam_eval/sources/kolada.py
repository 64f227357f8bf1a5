"""Client for Kolada, RKA's open database of kommun key figures (API v2 and v3, JSON).

Routes used (documented in github.com/Hypergene/kolada for v2; v3, released 2025-04-04 per
kolada.se/om-oss/api, keeps the same route shapes, as public v3 clients show):

* ``{base}/kpi?title=...`` and ``{base}/kpi/{id}``: KPI metadata, ``{"values": [{"id",
  "title", "description", "is_divided_by_gender", ...}]}``.
* ``{base}/data/kpi/{id}/year/{y1,y2,...}``: values for every municipality and group.

Every answer is ``{"count", "values": [...], <next link>, <previous link>}``. A page holds at
most ``per_page`` items (5000, the documented maximum) and links to the next page: v2 calls the
link ``next_page`` (and ``previous_page``), v3 ``next_url`` (and ``previous_url``), v1 ``next``;
all are followed, relative or absolute. ``count`` is not used to stop paging: v1 documented it
as the page's length, v3 clients read it as the total. Each data item is
``{"kpi", "municipality", "period", "values": [{"gender": "T|K|M", "value", "status",
"count"}]}``; ``value`` is null where Kolada has no figure, and ``status`` then says why.

An answer without any value for a requested year (``{"values": [], "count": 0}`` when a KPI is
not yet published, or starts later) is never cached as coverage of that year: the year is
named in a warning (some years empty) or an error (all empty), and the cache entry records
only the years that have values, so offline mode cannot later pass an empty year off as data.
"""

from __future__ import annotations

import os
import urllib.parse
import warnings
from collections.abc import Iterable
from typing import Any

import pandas as pd

from finsam_eval.registry import kommuner
from finsam_eval.registry.kommuner import code_history
from finsam_eval.sources.cache import CachedSource, Provenance, provenance_for
from finsam_eval.sources.http import HttpClient, MalformedResponseError, Response, SourceError

__all__ = ["DEFAULT_KOLADA_URL", "KoladaClient", "KoladaNoDataError", "KoladaNoDataWarning"]


class KoladaNoDataError(SourceError):
    """Kolada answered, but with no value at all for the requested KPI and years."""


class KoladaNoDataWarning(UserWarning):
    """Kolada had values for some requested years but none for others (those are not cached)."""


DEFAULT_KOLADA_URL = "https://api.kolada.se/v3"
_NEXT_KEYS = ("next_page", "next_url", "next")
_MAX_PAGES = 1000  # a server that links pages in a circle must not loop forever
_YEARS_PER_REQUEST = 20


def _require(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise MalformedResponseError(
            f"Kolada response from {where} lacks the field {key!r} the API documents; "
            f"got {str(obj)[:200]!r}"
        )
    return obj[key]


def _kommun_codes() -> set[str]:
    codes = set(kommuner()["kommun_kod"])
    history = code_history()
    codes |= {c for c in history["historical_code"] if c}
    return codes


class KoladaClient(CachedSource):
    """Read KPI metadata and values from Kolada.

    Parameters
    ----------
    base_url
        API root including the version, ``https://api.kolada.se/v3`` (default) or ``.../v2``.
    cache_dir
        Directory for the series cache; ``None`` disables caching (offline mode needs one).
    offline
        Use only the cache; never touch the network.
    http
        A configured :class:`~finsam_eval.sources.http.HttpClient` (timeouts, retries, rate
        limit). The default waits 0.2 s between requests.
    per_page
        Page size to ask for (Kolada's documented maximum is 5000).
    """

    source = "kolada"

    def __init__(
        self,
        base_url: str = DEFAULT_KOLADA_URL,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool = False,
        http: HttpClient | None = None,
        per_page: int = 5000,
    ) -> None:
        super().__init__(base_url, cache_dir, offline, http or HttpClient(min_interval=0.2))
        self.per_page = per_page

    # ------------------------------------------------------------------ plumbing
    def _pages(self, path: str, params: dict[str, Any] | None = None) -> tuple[list, list]:
        """GET a route and follow next links; return (items, responses)."""
        self._require_online()
        url = f"{self.base_url}/{path.lstrip('/')}"
        query = {"per_page": self.per_page, **(params or {})}
        items: list = []
        responses: list[Response] = []
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise MalformedResponseError(f"Kolada paging loops or never ends at {url}")
            seen.add(url)
            response = self.http.get(url, params=query)
            payload = response.json()
            values = _require(payload, "values", response.url)
            if not isinstance(values, list):
                raise MalformedResponseError(f"'values' is not a list in {response.url}")
            items.extend(values)
            responses.append(response)
            nxt = next((payload.get(k) for k in _NEXT_KEYS if payload.get(k)), None)
            if nxt:
                url, query = urllib.parse.urljoin(response.url, nxt), None
            else:
                url = ""
        return items, responses

    # ------------------------------------------------------------------ metadata
    def search_kpis(self, title: str) -> pd.DataFrame:
        """Search KPI metadata by words in the title (Kolada's ``kpi?title=``).

        Returns
        -------
        pandas.DataFrame
            ``id``, ``title``, ``description``, ``is_divided_by_gender``,
            ``municipality_type``, ``operating_area`` (missing fields become empty).
        """
        items, _ = self._pages("kpi", {"title": title})
        return self._kpi_frame(items)

    def kpi(self, kpi_id: str) -> dict[str, Any]:
        """Metadata for one KPI id; raises :class:`MalformedResponseError` if it is unknown."""
        return self._kpi(kpi_id)[0]

    def _kpi(self, kpi_id: str) -> tuple[dict[str, Any], list[Response]]:
        items, responses = self._pages(f"kpi/{urllib.parse.quote(kpi_id)}")
        for item in items:
            if _require(item, "id", responses[0].url) == kpi_id:
                return item, responses
        raise MalformedResponseError(f"Kolada has no KPI {kpi_id!r} (asked {responses[0].url})")

    @staticmethod
    def _kpi_frame(items: list) -> pd.DataFrame:
        columns = [
            "id",
            "title",
            "description",
            "is_divided_by_gender",
            "municipality_type",
            "operating_area",
        ]
        rows = []
        for item in items:
            _require(item, "id", "kpi metadata")
            _require(item, "title", "kpi metadata")
            rows.append({c: item.get(c, "") for c in columns})
        return pd.DataFrame(rows, columns=columns)

    # ------------------------------------------------------------------ data
    def values(
        self,
        kpi_id: str,
        years: Iterable[int],
        kommun_only: bool = True,
        verify_title: str | None = None,
        empty_years: str = "warn",
    ) -> tuple[pd.DataFrame, Provenance]:
        """Values of one KPI for every kommun and the given years, split by gender.

        Parameters
        ----------
        kpi_id
            Kolada KPI id, e.g. ``"N31807"``.
        years
            Calendar years (Kolada's ``period``).
        kommun_only
            Keep only the 290 kommuner (and historical kommun codes such as Heby's 1917);
            drops riket (0000), regions and municipality groups.
        verify_title
            When given and the data come from the network, the KPI's live title must contain
            this text (case-insensitive), guarding against a catalogue pointing at the wrong
            KPI. The live title is stored in the provenance.
        empty_years
            What to do when some requested years have no value for any kommun: ``"warn"``
            (default; :class:`KoladaNoDataWarning`, the years are listed in the provenance's
            ``extra["missing_years"]`` and left out of the cache entry's years) or ``"raise"``.
            When no requested year has a value, :class:`KoladaNoDataError` is always raised.

        Returns
        -------
        (frame, provenance)
            ``frame``: ``kpi``, ``kommun_kod``, ``year`` (int), ``gender`` (T/K/M), ``value``
            (float, NaN when Kolada has no value: never 0), ``status``. ``provenance.years``
            holds only the years that have values.
        """
        if empty_years not in {"warn", "raise"}:
            raise ValueError(f"empty_years must be 'warn' or 'raise', not {empty_years!r}")
        years = sorted(set(int(y) for y in years))
        series = f"kolada:{kpi_id}"
        if self.offline:
            assert self.cache is not None
            hit = self.cache.get(self.source, series, years, known_gaps="missing_years")
            if hit is None:
                return self.cache.require(self.source, series, years)  # raises, naming it
            frame, provenance = hit
            gaps = sorted(set(years) - set(provenance.years))
            if gaps:  # the same answer as online: the known-empty years are named again
                warnings.warn(
                    f"Kolada had no value for KPI {kpi_id} in any kommun for years {gaps} "
                    "when the cache was filled; those years are not covered",
                    KoladaNoDataWarning,
                    stacklevel=2,
                )
                if empty_years == "raise":
                    raise KoladaNoDataError(f"KPI {kpi_id}: no values for years {gaps}")
                provenance.extra = {**provenance.extra, "missing_years": gaps}
            return frame, provenance
        extra: dict[str, Any] = {}
        meta_responses: list[Response] = []
        if verify_title is not None:
            meta, meta_responses = self._kpi(kpi_id)
            live_title = str(meta.get("title", ""))
            extra["kpi_title"] = live_title
            extra["is_divided_by_gender"] = meta.get("is_divided_by_gender")
            if verify_title.casefold() not in live_title.casefold():
                raise MalformedResponseError(
                    f"Kolada KPI {kpi_id} is titled {live_title!r}, which does not contain "
                    f"{verify_title!r}: the outcome catalogue points at the wrong KPI. Find the "
                    "right one with KoladaClient.search_kpis() and override it in a user TOML."
                )
        # long year lists are sent in groups: public v3 clients batch at most 25 ids per
        # request, and one group per request keeps each URL well below server limits
        items, responses = [], []
        for start in range(0, len(years), _YEARS_PER_REQUEST):
            group = years[start : start + _YEARS_PER_REQUEST]
            path = f"data/kpi/{urllib.parse.quote(kpi_id)}/year/{','.join(map(str, group))}"
            group_items, group_responses = self._pages(path)
            items.extend(group_items)
            responses.extend(group_responses)
        frame = self._parse_values(items, responses[0].url if responses else path, kpi_id)
        if kommun_only:
            frame = frame[frame["kommun_kod"].isin(_kommun_codes())].reset_index(drop=True)
        frame = frame[frame["year"].isin(years)].reset_index(drop=True)
        covered = sorted(int(y) for y in frame.loc[frame["value"].notna(), "year"].unique())
        missing = [y for y in years if y not in covered]
        where = responses[0].url if responses else path
        if not covered:
            raise KoladaNoDataError(
                f"Kolada has no value for KPI {kpi_id} in any kommun for years {years} "
                f"(answer from {where} had {len(items)} items): the KPI may not be published "
                "for these years yet, or start later. Nothing was cached."
            )
        if missing:
            message = (
                f"Kolada has no value for KPI {kpi_id} in any kommun for years {missing} "
                f"(values exist for {covered}); those years are not cached as covered"
            )
            if empty_years == "raise":
                raise KoladaNoDataError(message)
            warnings.warn(message, KoladaNoDataWarning, stacklevel=2)
            extra["missing_years"] = missing
            frame = frame[frame["year"].isin(covered)].reset_index(drop=True)
        provenance = provenance_for(
            series,
            self.source,
            meta_responses + responses,
            {"kpi": kpi_id, "years": years, "base_url": self.base_url},
            covered,
            extra,
        )
        if self.cache is not None:
            provenance = self.cache.put(frame, provenance)
        return frame, provenance

    @staticmethod
    def _parse_values(items: list, where: str, kpi_id: str = "") -> pd.DataFrame:
        rows = []
        for item in items:
            # the route names the KPI; an item's own "kpi" field is kept when present
            kpi = item.get("kpi", kpi_id) if isinstance(item, dict) else None
            if not kpi:
                _require(item, "kpi", where)
            municipality = item.get("municipality", item.get("municipality_id"))
            if municipality is None:
                _require(item, "municipality", where)
            period = _require(item, "period", where)
            entries = _require(item, "values", where)
            if not isinstance(entries, list):
                raise MalformedResponseError(f"'values' of an item is not a list in {where}")
            try:
                year = int(str(period)[:4])
            except ValueError as exc:
                raise MalformedResponseError(f"bad period {period!r} in {where}") from exc
            for entry in entries:
                gender = _require(entry, "gender", where)
                value = _require(entry, "value", where)
                if gender not in {"T", "K", "M"}:
                    raise MalformedResponseError(f"unknown gender {gender!r} in {where}")
                if value is not None and not isinstance(value, int | float):
                    raise MalformedResponseError(f"non-numeric value {value!r} in {where}")
                rows.append(
                    {
                        "kpi": str(kpi),
                        "kommun_kod": str(municipality).zfill(4),
                        "year": year,
                        "gender": gender,
                        "value": float("nan") if value is None else float(value),
                        "status": str(entry.get("status") or ""),
                    }
                )
        frame = pd.DataFrame(
            rows, columns=["kpi", "kommun_kod", "year", "gender", "value", "status"]
        )
        return frame.astype({"year": "int64", "value": "float64"})
