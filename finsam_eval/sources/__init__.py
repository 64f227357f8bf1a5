"""Connectors for real data: Kolada, SCB PxWeb and the agencies' published files.

Everything here produces the panel builder's raw source tables (docs/architecture.md) and
keeps provenance (URL, query, retrieval time, content hash, library version) in a disk cache
that offline mode reads. This layer imports only :mod:`finsam_eval.registry`.

Main entry points
-----------------
outcome_catalogue
    Where each outcome comes from (source, identifier, numerator, denominator, population).
fetch
    Outcomes and population for a set of years → :class:`FetchResult`.
KoladaClient, ScbClient
    The API clients; load_agency_file and friends for downloaded files.
"""

from finsam_eval.sources.agency_files import (
    AgencyFile,
    AgencyFileError,
    load_agency_file,
    load_arbetsformedlingen,
    load_forsakringskassan,
    load_socialstyrelsen,
    parse_swedish_number,
)
from finsam_eval.sources.cache import CacheCorruptError, Provenance, SeriesCache
from finsam_eval.sources.catalogue import (
    CatalogueError,
    kolada_candidates,
    load_catalogue,
    outcome_catalogue,
)
from finsam_eval.sources.fetch import (
    AGE_BANDS,
    FetchResult,
    MissingFileError,
    fetch,
    shares_to_bands,
    to_age_bands,
)
from finsam_eval.sources.http import (
    HttpClient,
    HttpError,
    MalformedResponseError,
    NameResolutionError,
    OfflineError,
    RetriesExhaustedError,
    SourceError,
)
from finsam_eval.sources.kolada import KoladaClient, KoladaNoDataError, KoladaNoDataWarning
from finsam_eval.sources.scb import (
    POPULATION_TABLES,
    PopulationTable,
    PopulationYearsError,
    ScbClient,
    parse_jsonstat2,
)

__all__ = [
    "AGE_BANDS",
    "AgencyFile",
    "AgencyFileError",
    "CacheCorruptError",
    "CatalogueError",
    "FetchResult",
    "HttpClient",
    "HttpError",
    "KoladaClient",
    "KoladaNoDataError",
    "KoladaNoDataWarning",
    "MalformedResponseError",
    "MissingFileError",
    "NameResolutionError",
    "OfflineError",
    "POPULATION_TABLES",
    "PopulationTable",
    "PopulationYearsError",
    "Provenance",
    "RetriesExhaustedError",
    "ScbClient",
    "SeriesCache",
    "SourceError",
    "fetch",
    "kolada_candidates",
    "load_agency_file",
    "load_arbetsformedlingen",
    "load_catalogue",
    "load_forsakringskassan",
    "load_socialstyrelsen",
    "outcome_catalogue",
    "parse_jsonstat2",
    "parse_swedish_number",
    "shares_to_bands",
    "to_age_bands",
]
