"""HTTP layer against a local server: retries, backoff, Retry-After, timeouts, bad bodies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "sources"))
from fake_api import FakeApi, Reply  # noqa: E402

from finsam_eval.sources.http import (  # noqa: E402
    HttpClient,
    HttpError,
    MalformedResponseError,
    RetriesExhaustedError,
    _retry_after_seconds,
)


def client(slept: list[float] | None = None, **kw) -> HttpClient:
    options = dict(timeout=0.3, max_retries=2, backoff=0.01, max_backoff=5.0, min_interval=0.0)
    options.update(kw)
    sleep = (lambda s: slept.append(s)) if slept is not None else (lambda s: None)
    return HttpClient(sleep=sleep, **options)


def test_retries_500_then_succeeds_with_exponential_backoff():
    slept: list[float] = []
    with FakeApi() as api:
        api.add(
            "GET", "/x", Reply(500, b"oops", "text/plain"), Reply(503, b""), Reply(body={"ok": 1})
        )
        response = client(slept).get(api.url + "/x")
        assert response.json() == {"ok": 1}
        assert len(api.calls("/x")) == 3
    assert slept == [0.01, 0.02]


def test_429_honours_retry_after_seconds():
    slept: list[float] = []
    with FakeApi() as api:
        api.add(
            "GET",
            "/x",
            Reply(429, b"slow down", "text/plain", {"Retry-After": "3"}),
            Reply(body={"ok": 1}),
        )
        assert client(slept).get(api.url + "/x").json() == {"ok": 1}
    assert slept == [3.0]


def test_retry_after_is_capped_and_parses_http_dates():
    slept: list[float] = []
    with FakeApi() as api:
        api.add("GET", "/x", Reply(429, b"", headers={"Retry-After": "3600"}), Reply(body={}))
        client(slept, max_backoff=2.0).get(api.url + "/x")
    assert slept == [2.0]
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after_seconds("garbage") is None


def test_persistent_5xx_exhausts_retries_with_clear_message():
    with FakeApi() as api:
        api.add("GET", "/x", Reply(502, b"bad gateway", "text/plain"))
        with pytest.raises(RetriesExhaustedError, match="3 attempts; last problem: HTTP 502"):
            client().get(api.url + "/x")
        assert len(api.calls("/x")) == 3


def test_timeout_is_retried():
    with FakeApi() as api:
        api.add("GET", "/slow", Reply(body={"late": 1}, delay=0.6), Reply(body={"ok": 1}))
        assert client(timeout=0.2).get(api.url + "/slow").json() == {"ok": 1}


def test_timeouts_exhaust():
    with FakeApi() as api:
        api.add("GET", "/slow", Reply(body={}, delay=0.5))
        with pytest.raises(RetriesExhaustedError, match="timeout"):
            client(timeout=0.15, max_retries=1).get(api.url + "/slow")


def test_404_is_not_retried():
    with FakeApi() as api:
        with pytest.raises(HttpError, match="HTTP 404") as info:
            client().get(api.url + "/missing")
        assert info.value.status == 404
        assert len(api.calls()) == 1


def test_short_body_against_content_length_is_retried_then_fails():
    body = b'{"values": [1, 2, 3, 4, 5, 6, 7, 8, 9]}'
    with FakeApi() as api:
        api.add("GET", "/cut", Reply(body=body, truncate_to=10))
        with pytest.raises(RetriesExhaustedError, match="truncated body"):
            client().get(api.url + "/cut")
        api.add("GET", "/cut2", Reply(body=body, truncate_to=10), Reply(body=body))
        assert client().get(api.url + "/cut2").json()["values"][-1] == 9


def test_truncated_json_raises_malformed():
    with FakeApi() as api:
        api.add("GET", "/x", Reply(body=b'{"values": [{"kpi": "N0'))
        response = client().get(api.url + "/x")
        with pytest.raises(MalformedResponseError, match="truncated JSON"):
            response.json()


def test_wrong_content_type_raises_malformed():
    with FakeApi() as api:
        api.add("GET", "/x", Reply(body=b"<html>Maintenance</html>", content_type="text/html"))
        with pytest.raises(MalformedResponseError, match="content type is 'text/html'"):
            client().get(api.url + "/x").json()


def test_rate_limit_spaces_requests():
    slept: list[float] = []
    with FakeApi() as api:
        api.add("GET", "/x", Reply(body={}))
        http = client(slept, min_interval=0.5)
        http.get(api.url + "/x")
        http.get(api.url + "/x")
    assert len(slept) == 1 and 0.3 < slept[0] <= 0.5


def test_name_resolution_failure_is_not_retried_and_fails_in_one_line(monkeypatch):
    import socket

    from finsam_eval.sources.http import NameResolutionError

    calls = []

    def no_dns(*args, **kwargs):
        calls.append(args[0])
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    slept: list[float] = []
    with pytest.raises(NameResolutionError) as info:
        client(slept, max_retries=5).get("http://api.kolada.invalid/v3/kpi")
    message = str(info.value)
    assert "\n" not in message and "api.kolada.invalid" in message and "not retried" in message
    assert len(calls) == 1 and slept == []  # one attempt, no backoff
