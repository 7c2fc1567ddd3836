"""The upstream HTTP client: no shared cookies, first-byte and idle timeouts, proxies, backends."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from akgate.providers import UpstreamProvider
from akgate.providers._upstream_http import env_proxy
from tests.providers._harness import HELLO, STREAM, call, sse_data
from tests.providers.test_upstream import URL, echo_app, post
from tests.support.servers import run_uvicorn

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def echo_base() -> Iterator[str]:
    with run_uvicorn(echo_app) as base:
        yield base


def echoed_headers(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    headers: dict[str, str] = response.json()["headers"]
    return headers


@pytest.mark.parametrize("backend", ["default", "caller-httpx"])
async def test_an_upstream_cookie_never_rides_on_the_next_request(
    echo_base: str, backend: str
) -> None:
    # The echo upstream answers every request with Set-Cookie: upstream=1.
    client = httpx.AsyncClient() if backend == "caller-httpx" else None
    upstream = UpstreamProvider(echo_base + "/v1", client=client)
    try:
        first = await post(upstream, URL, HELLO)
        assert "set-cookie" not in first.headers  # not passed on to the caller either
        second = await post(upstream, URL, HELLO, headers={"cookie": "mine=1"})
    finally:
        await upstream.aclose()
        if client is not None:
            await client.aclose()
    assert "cookie" not in echoed_headers(first)
    assert "cookie" not in echoed_headers(second)


async def test_first_byte_timeout_is_a_504(demo_url: str) -> None:
    upstream = UpstreamProvider(demo_url, first_byte_timeout=0.2, idle_timeout=30)
    try:
        response = await post(
            upstream, URL, STREAM, headers={"x-demo-fault": "slow-first-byte=3000"}
        )
    finally:
        await upstream.aclose()
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert "no response within 0.2 s" in error["message"]


async def test_idle_timeout_mid_stream_is_an_error_frame(demo_url: str) -> None:
    # The first byte comes at once; then each token waits 1 s, longer than the idle limit.
    upstream = UpstreamProvider(demo_url, first_byte_timeout=30, idle_timeout=0.3)
    try:
        sent = await call(upstream, STREAM, headers=[(b"x-demo-fault", b"delay=1000")])
    finally:
        await upstream.aclose()
    assert sent[0]["status"] == 200
    data = sse_data(sent)
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]
    assert error["code"] == "upstream_timeout"
    assert "no data for 0.3 s" in error["message"]


async def test_a_slow_stream_within_the_idle_limit_is_not_cut(demo_url: str) -> None:
    # Each gap (50 ms) is below the idle limit, while the whole stream takes far longer.
    upstream = UpstreamProvider(demo_url, first_byte_timeout=30, idle_timeout=0.25)
    try:
        sent = await call(upstream, STREAM, headers=[(b"x-demo-fault", b"delay=50")])
    finally:
        await upstream.aclose()
    data = sse_data(sent)
    assert data[-1] == "[DONE]"
    assert not any('"error"' in item for item in data)


async def test_http_proxy_from_the_environment_is_used(
    echo_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The echo server stands in for the proxy: it gets the absolute-form request.
    monkeypatch.setenv("HTTP_PROXY", echo_base)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    upstream = UpstreamProvider("http://upstream.invalid/v1")
    try:
        response = await post(upstream, URL, HELLO)
    finally:
        await upstream.aclose()
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["path"] == "/v1/chat/completions"
    assert echoed["headers"]["host"] == "upstream.invalid"


def test_env_proxy_honours_no_proxy_and_skips_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "bypass.example.com")
    assert env_proxy("https://api.example.com/v1") == "http://proxy.internal:3128"
    assert env_proxy("https://bypass.example.com/v1") is None
    assert env_proxy("http://api.example.com/v1") is None  # no HTTP_PROXY
    assert env_proxy("https://127.0.0.1:8080/v1") is None
    assert env_proxy("https://localhost/v1") is None


async def test_timeout_options_must_be_positive() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        UpstreamProvider("http://x/v1", idle_timeout=0)
    with pytest.raises(ValueError, match="first_byte_timeout"):
        UpstreamProvider("http://x/v1", first_byte_timeout=-1)
    provider = UpstreamProvider("http://x/v1", read_timeout=7)
    assert (provider.first_byte_timeout, provider.idle_timeout) == (7, 7)
