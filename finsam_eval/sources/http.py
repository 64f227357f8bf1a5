"""Shared HTTP for the source clients: retries with exponential backoff, Retry-After, rate limit.

Only the standard library (``urllib``) is used, so the connectors work wherever the package
installs. Every response body is read completely and checked before anyone sees it: a
truncated body, a wrong content type or invalid JSON raises :class:`MalformedResponseError`
with the URL, so that nothing partial can reach the cache.
"""

from __future__ import annotations

import email.utils
import http.client
import importlib.metadata
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "HttpClient",
    "HttpError",
    "MalformedResponseError",
    "NameResolutionError",
    "OfflineError",
    "Response",
    "RetriesExhaustedError",
    "SourceError",
]

#: Status codes worth retrying: rate limiting and transient server trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def library_version() -> str:
    """Installed finsam_eval version, read from package metadata (no upward import)."""
    try:
        return importlib.metadata.version("finsam_eval")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


class SourceError(RuntimeError):
    """Base class for every error raised by :mod:`finsam_eval.sources`."""


class HttpError(SourceError):
    """A request failed with an HTTP status that retrying cannot fix (or retries ran out)."""

    def __init__(self, message: str, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class RetriesExhaustedError(HttpError):
    """Timeouts, 429s or 5xx kept happening after the configured number of retries."""


class NameResolutionError(HttpError):
    """The host name could not be resolved (DNS): no network, or a wrong base URL.

    Not retried: without name resolution every further attempt fails the same way, and
    retrying only makes an offline user wait (issue 14 measured 32 s for six attempts).
    """


def _is_name_resolution_failure(reason: object) -> bool:
    """True for ``socket.gaierror`` (getaddrinfo failed), however urllib wrapped it."""
    return isinstance(reason, socket.gaierror)


class MalformedResponseError(SourceError):
    """The server answered, but not with what the API documents (truncated, wrong type, fields)."""


class OfflineError(SourceError):
    """Offline mode was requested and the cache does not hold what is needed."""


@dataclass(frozen=True)
class Response:
    """A complete HTTP response: status, headers (lower-case keys), full body and final URL."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    retrieved_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        """Decode the body as JSON, insisting on a JSON content type and a complete document."""
        if "json" not in self.content_type.lower():
            snippet = self.body[:120].decode("utf-8", "replace")
            raise MalformedResponseError(
                f"Expected JSON from {self.url} but the content type is "
                f"{self.content_type or '(none)'!r}; body starts {snippet!r}. The API may have "
                "returned an error page (maintenance, proxy, wrong base URL)."
            )
        try:
            return json.loads(self.body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            tail = self.body[-60:].decode("utf-8", "replace")
            raise MalformedResponseError(
                f"Invalid or truncated JSON from {self.url} ({len(self.body)} bytes, ends "
                f"{tail!r}): {exc}. The download was not cached; try again."
            ) from exc


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After, which may be delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HttpClient:
    """A small, polite HTTP client.

    Parameters
    ----------
    timeout
        Seconds to wait for connect and for each read.
    max_retries
        Retries after the first attempt for timeouts, connection errors, 429 and 5xx.
    backoff
        Base delay in seconds; attempt ``n`` waits ``backoff * 2**n`` (capped by
        ``max_backoff``) unless the server sends Retry-After.
    max_backoff
        Upper bound for any single wait, including one asked for by Retry-After, so that a
        misbehaving server cannot stall a fetch for hours.
    min_interval
        Minimum seconds between the starts of two requests from this client (rate limit). SCB
        allows 30 calls per 10 seconds, so its client uses 0.35 s.
    user_agent
        Sent with every request so that API owners can see who calls them.
    sleep
        Injected for tests.
    """

    def __init__(
        self,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        min_interval: float = 0.2,
        user_agent: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.min_interval = min_interval
        self.user_agent = user_agent or f"finsam_eval/{library_version()} (research; urllib)"
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_start = 0.0
        self.requests_made = 0

    def _throttle(self) -> None:
        with self._lock:
            wait = self._last_start + self.min_interval - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            self._last_start = time.monotonic()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        accept: str = "application/json",
    ) -> Response:
        """Send a request, retrying transient failures; return the complete response.

        Raises
        ------
        RetriesExhaustedError
            When timeouts, 429 or 5xx persist beyond ``max_retries``.
        HttpError
            For other non-2xx statuses (400, 403, 404 ...), with the start of the body.
        """
        if params:
            sep = "&" if urllib.parse.urlsplit(url).query else "?"
            url = url + sep + urllib.parse.urlencode(params, doseq=True, safe=",[]*()")
        data = None
        headers = {"User-Agent": self.user_agent, "Accept": accept}
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            self._throttle()
            self.requests_made += 1
            delay: float | None = None
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method=method)
                with urllib.request.urlopen(req, timeout=self.timeout) as raw:
                    body = raw.read()  # raises IncompleteRead when Content-Length is not met
                    return Response(
                        status=raw.status,
                        headers={k.lower(): v for k, v in raw.headers.items()},
                        body=body,
                        url=url,
                    )
            except urllib.error.HTTPError as exc:
                body = exc.read() if exc.fp is not None else b""
                if exc.code not in RETRY_STATUSES:
                    snippet = body[:300].decode("utf-8", "replace")
                    raise HttpError(
                        f"HTTP {exc.code} from {method} {url}: {snippet}", exc.code, url
                    ) from exc
                last_problem = f"HTTP {exc.code}"
                if exc.code == 429 or exc.headers.get("Retry-After"):
                    delay = _retry_after_seconds(exc.headers.get("Retry-After"))
            except TimeoutError as exc:
                last_problem = f"timeout after {self.timeout} s ({exc})"
            except http.client.IncompleteRead as exc:
                last_problem = f"truncated body ({len(exc.partial)} bytes received)"
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                if _is_name_resolution_failure(reason):
                    host = urllib.parse.urlsplit(url).hostname or url
                    raise NameResolutionError(
                        f"cannot resolve host {host!r} ({reason}): no network or a wrong base "
                        "URL; not retried. Use offline mode with a filled cache.",
                        None,
                        url,
                    ) from None
                if isinstance(reason, TimeoutError | socket.timeout):
                    last_problem = f"timeout after {self.timeout} s"
                elif isinstance(reason, OSError | http.client.HTTPException | str):
                    last_problem = f"connection error: {reason}"
                else:  # pragma: no cover - defensive
                    raise
            if attempt == self.max_retries:
                break
            if delay is None:
                delay = self.backoff * (2**attempt)
            self._sleep(min(delay, self.max_backoff))
        raise RetriesExhaustedError(
            f"{method} {url} failed after {self.max_retries + 1} attempts; last problem: "
            f"{last_problem}. Check the network, or use offline mode with a filled cache.",
            None,
            url,
        )

    def get(self, url: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Response:
        return self.request("GET", url, params=params, **kw)

    def post_json(
        self, url: str, body: Any, params: Mapping[str, Any] | None = None, **kw: Any
    ) -> Response:
        return self.request("POST", url, params=params, json_body=body, **kw)
