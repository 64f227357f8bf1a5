"""Disk cache of fetched series, each with its provenance.

Layout: ``<cache_dir>/<source>/<key>.<parquet|csv>`` holds the parsed table and
``<key>.json`` its provenance (source URL(s), query, retrieval time, SHA-256 of the raw
response bodies, SHA-256 of the stored table, library version, storage format and dtypes).

Why this shape:

* Entries are written to temporary files and renamed into place, table first and provenance
  last; an entry counts only when its provenance exists and the table's hash matches. A crash
  or a failed download therefore never leaves something that offline mode would trust.
* Parquet is used when ``pyarrow`` is importable; otherwise CSV with the dtypes recorded in
  the provenance, so the cache works on a bare install and reads back with the same types.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from finsam_eval.sources.http import (
    HttpClient,
    MalformedResponseError,
    OfflineError,
    SourceError,
    library_version,
)

__all__ = [
    "CacheCorruptError",
    "CachedSource",
    "Provenance",
    "SeriesCache",
    "content_hash",
    "parquet_available",
]


class CacheCorruptError(SourceError):
    """A cache entry exists but its table does not match the hash in its provenance."""


def parquet_available() -> bool:
    """True when pandas can write parquet (``pyarrow`` installed)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def content_hash(chunks: Iterable[bytes]) -> str:
    """SHA-256 over raw response bodies, in the order they were received."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(hashlib.sha256(chunk).digest())  # hash of hashes: unambiguous boundaries
    return "sha256:" + digest.hexdigest()


def _library_version() -> str:
    return library_version()


@dataclass
class Provenance:
    """Where a cached series came from.

    Attributes
    ----------
    series
        Stable series id, e.g. ``"kolada:N31807"`` or ``"scb:population:16-64"``.
    source
        ``"kolada"``, ``"scb"`` or an agency name.
    urls
        Every URL requested (all pages and chunks), in order.
    query
        The query parameters (years, KPI, table selection ...), JSON-serialisable.
    retrieved_at
        ISO-8601 UTC time of the last response.
    content_hash
        SHA-256 over the raw response bodies (see :func:`content_hash`).
    library_version
        ``finsam_eval.__version__`` that parsed the responses.
    years
        Years the entry covers; offline lookups may use an entry covering a superset.
    extra
        Anything else worth keeping (KPI title from the live metadata, warnings).
    """

    series: str
    source: str
    urls: list[str]
    query: dict[str, Any]
    retrieved_at: str
    content_hash: str
    library_version: str = field(default_factory=_library_version)
    years: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    table_hash: str = ""
    table_format: str = ""
    dtypes: dict[str, str] = field(default_factory=dict)
    from_cache: bool = False
    path: str = ""

    def to_record(self) -> dict[str, Any]:
        """A flat record for a provenance table (lists joined, query as JSON)."""
        record = asdict(self)
        record["urls"] = " ".join(self.urls)
        record["query"] = json.dumps(self.query, ensure_ascii=False, sort_keys=True)
        record["years"] = ",".join(str(y) for y in self.years)
        record["extra"] = json.dumps(self.extra, ensure_ascii=False, sort_keys=True)
        record.pop("dtypes")
        return record


def _safe(text: str) -> str:
    # leading dots are dropped too: "." and ".." (and hidden names) never become path parts
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip("._").strip("_") or "series"


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SeriesCache:
    """Store and look up parsed series with provenance.

    Parameters
    ----------
    root
        The cache directory (created on first write).
    fmt
        ``"parquet"``, ``"csv"`` or ``None`` (parquet when available, else CSV).
    """

    def __init__(self, root: str | os.PathLike[str], fmt: str | None = None) -> None:
        self.root = Path(root).expanduser()
        if fmt is None:
            fmt = "parquet" if parquet_available() else "csv"
        if fmt not in {"parquet", "csv"}:
            raise ValueError(f"cache format must be 'parquet' or 'csv', not {fmt!r}")
        if fmt == "parquet" and not parquet_available():
            raise ImportError("parquet cache requested but pyarrow is not installed")
        self.fmt = fmt

    @staticmethod
    def key(series: str, years: Iterable[int] | None = None) -> str:
        """File stem for a series and year set: readable, and unique per year set."""
        base = _safe(series.replace(":", "__"))
        if years:
            ys = sorted(set(int(y) for y in years))
            tag = f"{ys[0]}-{ys[-1]}"
            if ys != list(range(ys[0], ys[-1] + 1)):
                tag += "_" + hashlib.sha1(",".join(map(str, ys)).encode()).hexdigest()[:8]
            base += "__" + tag
        return base

    def _paths(self, source: str, key: str, fmt: str) -> tuple[Path, Path]:
        folder = self.root / _safe(source)
        table, meta = folder / f"{key}.{fmt}", folder / f"{key}.json"
        root = self.root.resolve()
        for path in (table, meta):
            # _safe already prevents it; this guards against future key schemes
            if root not in path.resolve().parents:
                raise ValueError(f"cache path {path} for source {source!r} escapes {self.root}")
        return table, meta

    def _serialise(self, frame: pd.DataFrame) -> bytes:
        buffer = io.BytesIO()
        if self.fmt == "parquet":
            frame.to_parquet(buffer, index=False)
        else:
            frame.to_csv(buffer, index=False)
        return buffer.getvalue()

    def put(self, frame: pd.DataFrame, provenance: Provenance) -> Provenance:
        """Write a complete series; the provenance is written last, so it marks completion."""
        key = self.key(provenance.series, provenance.years)
        table_path, meta_path = self._paths(provenance.source, key, self.fmt)
        payload = self._serialise(frame)
        provenance.table_hash = "sha256:" + hashlib.sha256(payload).hexdigest()
        provenance.table_format = self.fmt
        provenance.dtypes = {str(c): str(t) for c, t in frame.dtypes.items()}
        provenance.path = str(table_path)
        meta_path.unlink(missing_ok=True)  # an old provenance must not vouch for a new table
        _atomic_write(table_path, payload)
        meta = json.dumps(asdict(provenance), ensure_ascii=False, indent=2, sort_keys=True)
        _atomic_write(meta_path, meta.encode("utf-8"))
        return provenance

    def _read(self, meta_path: Path) -> tuple[pd.DataFrame, Provenance]:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            prov = Provenance(**meta)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as err:
            raise CacheCorruptError(
                f"cache provenance {meta_path} is unreadable or truncated ({err}); delete it "
                "and fetch again"
            ) from err
        table_path = meta_path.with_suffix("." + prov.table_format)
        if not table_path.is_file():
            raise CacheCorruptError(f"cache entry {meta_path} has no table {table_path.name}")
        payload = table_path.read_bytes()
        digest = "sha256:" + hashlib.sha256(payload).hexdigest()
        if digest != prov.table_hash:
            raise CacheCorruptError(
                f"cache table {table_path} does not match its provenance hash; delete it and "
                "fetch again"
            )
        if prov.table_format == "parquet":
            frame = pd.read_parquet(io.BytesIO(payload))
        else:
            # read everything as text first: "" must stay "" in text columns (codes, status)
            # and become NaN only in numeric ones
            frame = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False)
            for column, dtype in prov.dtypes.items():
                if column in frame and dtype not in {"object", "str", "string"}:
                    numbers = pd.to_numeric(frame[column].replace("", None))
                    frame[column] = numbers.astype(dtype)
        prov.from_cache = True
        prov.path = str(table_path)
        return frame, prov

    def get(
        self,
        source: str,
        series: str,
        years: Iterable[int] | None = None,
        known_gaps: str | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> tuple[pd.DataFrame, Provenance] | None:
        """Return a cached series covering ``years`` (filtered to them), or None.

        An exact entry is preferred; otherwise any complete entry of the same series whose
        years are a superset is used and filtered on a ``year`` column. With ``known_gaps``
        (a key of the provenance's ``extra``, e.g. ``"missing_years"``), an entry also serves
        years the source was asked for and answered without values, provided at least one
        wanted year has values: the gap stays a recorded gap (the entry's ``years`` never
        include it), so an empty answer is not passed off as data.

        An entry is returned only if its provenance matches the request: its ``source`` and
        ``series`` equal the requested ones, its years cover ``years`` and, with ``query``, its
        recorded query agrees on every key but ``years``. An exact-key entry whose provenance
        does not match (a renamed or copied file) raises :class:`CacheCorruptError` naming the
        file, as does an unreadable or truncated one.
        """
        wanted = sorted(set(int(y) for y in years)) if years else []
        folder = self.root / _safe(source)
        if not folder.is_dir():
            return None
        exact = folder / f"{self.key(series, wanted)}.json"
        candidates = [exact] if exact.is_file() else []

        def covers(meta: Mapping[str, Any]) -> bool:
            covered = set(meta.get("years") or [])
            gaps = set((meta.get("extra") or {}).get(known_gaps) or []) if known_gaps else set()
            return not wanted or bool(
                set(wanted) <= covered
                or (gaps and set(wanted) <= covered | gaps and set(wanted) & covered)
            )

        def same_query(meta: Mapping[str, Any]) -> bool:
            if query is None:
                return True
            stored = {k: v for k, v in (meta.get("query") or {}).items() if k != "years"}
            asked = {k: v for k, v in query.items() if k != "years"}
            return json.dumps(stored, sort_keys=True, default=str) == json.dumps(
                asked, sort_keys=True, default=str
            )

        def mismatch(meta: Mapping[str, Any]) -> str | None:
            if meta.get("source") != source or meta.get("series") != series:
                return (
                    f"holds {meta.get('source')!r} series {meta.get('series')!r}, not the "
                    f"requested {source!r} series {series!r}"
                )
            if not covers(meta):
                return f"covers years {meta.get('years')}, not the requested {wanted}"
            if not same_query(meta):
                return f"was fetched with query {meta.get('query')}, not {dict(query or {})}"
            return None

        for meta_path in sorted(folder.glob("*.json")):
            if meta_path == exact:
                continue
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue  # another key's broken entry: it raises when that key is requested
            if isinstance(meta, dict) and mismatch(meta) is None:
                candidates.append(meta_path)
        for meta_path in candidates:
            frame, prov = self._read(meta_path)
            problem = mismatch(asdict(prov))
            if problem is not None:
                raise CacheCorruptError(
                    f"cache entry {meta_path} {problem}; its provenance does not match the "
                    "request, so it is not used (delete it and fetch again)"
                )
            if wanted and "year" in frame.columns and set(prov.years) != set(wanted):
                frame = frame[frame["year"].isin(wanted)].reset_index(drop=True)
            return frame, prov
        return None

    def require(
        self, source: str, series: str, years: Iterable[int] | None = None
    ) -> tuple[pd.DataFrame, Provenance]:
        """Like :meth:`get` but raise :class:`OfflineError` naming what is missing."""
        hit = self.get(source, series, years)
        if hit is None:
            have = sorted(p.stem for p in (self.root / _safe(source)).glob("*.json"))
            listing = ", ".join(have) if have else "nothing"
            raise OfflineError(
                f"Offline mode: series {series!r} for years {sorted(years or [])} is not in the "
                f"cache at {self.root} (cached for {source}: {listing}). Run the fetch once with "
                "network access, or pass the same cache directory that was filled then."
            )
        return hit

    def entries(self) -> pd.DataFrame:
        """Provenance of every complete entry, one row each."""
        rows = []
        for meta_path in sorted(self.root.glob("*/*.json")):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                rows.append(Provenance(**meta).to_record())
            except (OSError, json.JSONDecodeError, TypeError):
                continue
        return pd.DataFrame(rows)


def provenance_for(
    series: str,
    source: str,
    responses: Iterable[Any],
    query: Mapping[str, Any],
    years: Iterable[int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Provenance:
    """Build a :class:`Provenance` from the :class:`~finsam_eval.sources.http.Response` list."""
    responses = list(responses)
    retrieved = max((r.retrieved_at for r in responses), default=datetime.now(UTC).isoformat())
    return Provenance(
        series=series,
        source=source,
        urls=[r.url for r in responses],
        query=dict(query),
        retrieved_at=retrieved,
        content_hash=content_hash(r.body for r in responses),
        years=sorted(set(int(y) for y in years)) if years else [],
        extra=dict(extra or {}),
    )


class CachedSource:
    """What the API clients (Kolada, SCB) share: their base URL, HTTP client, optional series
    cache and offline mode, which reads the cache only and so needs one."""

    source = ""

    def __init__(
        self,
        base_url: str,
        cache_dir: str | os.PathLike[str] | None,
        offline: bool,
        http: HttpClient,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.offline = offline
        self.http = http
        self.cache = SeriesCache(cache_dir) if cache_dir is not None else None
        if offline and self.cache is None:
            raise ValueError("offline=True needs a cache_dir to read from")

    def _require_online(self) -> None:
        """Refuse network access in offline mode (an internal error: offline reads the cache)."""
        if self.offline:
            raise MalformedResponseError("internal: network access attempted in offline mode")
