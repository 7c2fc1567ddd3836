from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest

from akgate._types import Receive, Scope, Send
from akgate.providers import UpstreamProvider
from tests.providers._harness import HELLO, STREAM, call, sse_data
from tests.support.servers import free_port, run_uvicorn

URL = "/v1/chat/completions"


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what it received: method, path, query, headers, body."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if (b"x-echo-broken", b"1") in scope["headers"]:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"text/plain"), (b"x-request-id", b"up-1")],
            }
        )
        await send({"type": "http.response.body", "body": b"boom"})
        return
    answer = json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "body": body.decode(),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-request-id", b"up-1"),
                (b"set-cookie", b"upstream=1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with run_uvicorn(echo_app) as base:
        yield base + "/v1"


@pytest.fixture
async def provider(demo_url: str) -> AsyncIterator[UpstreamProvider]:
    upstream = UpstreamProvider(demo_url, api_key="sk-test-secret", name="demo-upstream")
    yield upstream
    await upstream.aclose()


def sdk_for(app: Any) -> openai.AsyncOpenAI:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    return openai.AsyncOpenAI(
        base_url="http://gw/v1", api_key="caller-key", http_client=http, max_retries=0
    )


async def post(
    app: Any, path: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post(path, json=body, headers=headers)


# --- forwarding ----------------------------------------------------------------------------


async def test_forwards_a_chat_completion(provider: UpstreamProvider) -> None:
    async with sdk_for(provider) as sdk:
        completion = await sdk.chat.completions.create(model="demo", messages=HELLO["messages"])
    assert completion.choices[0].message.content == (
        'Hello! I am the akgate demo model. You said: "hello there"'
    )


async def test_forwards_a_stream_to_the_openai_sdk(provider: UpstreamProvider) -> None:
    async with sdk_for(provider) as sdk:
        stream = await sdk.chat.completions.create(
            model="demo", messages=HELLO["messages"], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.endswith('"hello there"')


async def test_stream_is_forwarded_chunk_by_chunk(demo_url: str) -> None:
    upstream = UpstreamProvider(demo_url)
    try:
        sent = await call(upstream, STREAM, headers=[(b"x-demo-fault", b"delay=5")])
    finally:
        await upstream.aclose()
    start = sent[0]
    assert start["status"] == 200
    assert not any(name == b"content-length" for name, _ in start["headers"])
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) >= 10  # one per upstream read, not one buffered body
    assert sse_data(sent)[-1] == "[DONE]"


async def test_maps_the_path_below_v1_onto_the_base_url(echo_url: str) -> None:
    upstream = UpstreamProvider(echo_url + "/", api_key="k")
    try:
        transport = httpx.ASGITransport(app=upstream, root_path="/gw")
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            response = await client.post("/gw/v1/chat/completions?a=1", json={"x": 1})
    finally:
        await upstream.aclose()
    echoed = response.json()
    assert echoed["path"] == "/v1/chat/completions"
    assert echoed["query"] == "a=1"
    assert json.loads(echoed["body"]) == {"x": 1}


async def test_sends_its_own_key_and_drops_the_callers(echo_url: str) -> None:
    upstream = UpstreamProvider(
        echo_url, api_key="sk-upstream", headers={"OpenAI-Organization": "org-1"}
    )
    try:
        response = await post(
            upstream, URL, {"x": 1}, headers={"authorization": "Bearer caller-key", "cookie": "a=b"}
        )
    finally:
        await upstream.aclose()
    headers = response.json()["headers"]
    assert headers["authorization"] == "Bearer sk-upstream"
    assert headers["openai-organization"] == "org-1"
    assert headers["accept-encoding"] == "identity"
    assert "cookie" not in headers


async def test_upstream_request_id_does_not_replace_ours(echo_url: str) -> None:
    upstream = UpstreamProvider(echo_url)
    try:
        response = await post(upstream, URL, {"x": 1})
    finally:
        await upstream.aclose()
    assert response.headers["x-upstream-request-id"] == "up-1"
    assert response.headers["x-request-id"].startswith("req_")
    assert "set-cookie" not in response.headers


async def test_forwards_get_models(provider: UpstreamProvider) -> None:
    async with sdk_for(provider) as sdk:
        assert [m.id async for m in sdk.models.list()] == ["demo", "demo-reasoning"]


def test_api_key_env_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKGATE_TEST_KEY", "sk-from-env")
    upstream = UpstreamProvider("http://127.0.0.1:1/v1", api_key_env="AKGATE_TEST_KEY")
    assert (b"authorization", b"Bearer sk-from-env") in upstream._extra_headers
    assert "sk-from-env" not in repr(upstream)


def test_missing_api_key_env_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AKGATE_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="AKGATE_TEST_KEY"):
        UpstreamProvider("http://127.0.0.1:1/v1", api_key_env="AKGATE_TEST_KEY")


def test_bad_options_raise_value_error() -> None:
    with pytest.raises(ValueError):
        UpstreamProvider("ftp://example.com/v1")
    with pytest.raises(ValueError):
        UpstreamProvider("http://example.com/v1", read_timeout=0)


async def test_path_outside_v1_is_404(provider: UpstreamProvider) -> None:
    response = await post(provider, "/admin", {})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_not_found"


# --- failures ------------------------------------------------------------------------------


async def test_connection_refused_is_502_upstream_error() -> None:
    upstream = UpstreamProvider(f"http://127.0.0.1:{free_port()}/v1", name="dead")
    try:
        response = await post(upstream, URL, HELLO)
    finally:
        await upstream.aclose()
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_error"
    assert error["provider"] == "dead"


async def test_timeout_before_the_response_is_504(demo_url: str) -> None:
    upstream = UpstreamProvider(demo_url, read_timeout=0.1)
    try:
        response = await post(
            upstream, URL, STREAM, headers={"x-demo-fault": "slow-first-byte=2000"}
        )
    finally:
        await upstream.aclose()
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


async def test_upstream_envelope_is_forwarded_with_its_status(provider: UpstreamProvider) -> None:
    response = await post(provider, URL, HELLO, headers={"x-demo-fault": "status=429"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after"] == "1"


async def test_non_envelope_error_is_wrapped_with_the_same_status(
    echo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = UpstreamProvider(echo_url, name="echo")
    try:
        response = await post(upstream, URL, {}, headers={"x-echo-broken": "1"})
    finally:
        await upstream.aclose()
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "upstream_error"
    assert error["provider"] == "echo"
    # The upstream's body and address stay in the log; the client gets the request id.
    assert "boom" not in error["message"]
    assert "127.0.0.1" not in error["message"]
    assert response.headers["x-request-id"] in error["message"]
    assert "'boom'" in caplog.text


async def test_upstream_midstream_error_frame_passes_through(provider: UpstreamProvider) -> None:
    sent = await call(provider, STREAM, headers=[(b"x-demo-fault", b"midstream=2")])
    data = sse_data(sent)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "internal_error"
    assert data.count("[DONE]") == 1


async def test_stream_ended_early_gets_an_error_frame_and_done(provider: UpstreamProvider) -> None:
    sent = await call(provider, STREAM, headers=[(b"x-demo-fault", b"drop")])
    data = sse_data(sent)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "upstream_error"
    assert sent[-1]["more_body"] is False


async def test_broken_connection_mid_stream_gets_an_error_frame(provider: UpstreamProvider) -> None:
    sent = await call(provider, STREAM, headers=[(b"x-demo-fault", b"exception")])
    data = sse_data(sent)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "upstream_error"


async def test_total_timeout_mid_stream_gets_an_upstream_timeout_frame(demo_url: str) -> None:
    upstream = UpstreamProvider(demo_url, total_timeout=0.3)
    body = {**STREAM, "messages": [{"role": "user", "content": "word " * 100}]}
    try:
        sent = await call(upstream, body, headers=[(b"x-demo-fault", b"delay=50")])
    finally:
        await upstream.aclose()
    data = sse_data(sent)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["code"] == "upstream_timeout"


async def test_client_disconnect_cancels_the_upstream_request() -> None:
    upstream_saw_disconnect = threading.Event()

    async def slow_stream(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        while True:
            message = await receive()  # blocks until the client goes away
            if message["type"] == "http.disconnect":
                upstream_saw_disconnect.set()
                return

    with run_uvicorn(slow_stream) as base:
        upstream = UpstreamProvider(base + "/v1")
        try:
            await call(upstream, STREAM, disconnect_after_bodies=1)
        finally:
            await upstream.aclose()
        assert upstream_saw_disconnect.wait(5)


async def test_lifespan_shutdown_closes_the_client(demo_url: str) -> None:
    upstream = UpstreamProvider(demo_url)
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await upstream({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert upstream.client.is_closed


def sse_response(*chunks: bytes) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def mock_provider(handler: Any) -> UpstreamProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return UpstreamProvider("http://mock/v1", client=client, name="mock")


RESPONSES_START = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n'
)


async def test_responses_stream_ended_early_gets_an_error_event() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return sse_response(RESPONSES_START)

    sent = await call(
        mock_provider(handler), {"model": "m", "input": "hi", "stream": True}, path="/v1/responses"
    )
    raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert raw.startswith(RESPONSES_START)
    tail = raw[len(RESPONSES_START) :]
    assert tail.startswith(b"event: error\ndata: ")
    frame = json.loads(tail.split(b"data: ", 1)[1])
    assert frame["type"] == "error"
    assert frame["code"] == "upstream_error"
    assert b"[DONE]" not in raw


async def test_completed_responses_stream_is_left_as_is() -> None:
    done = b'event: response.completed\ndata: {"type":"response.completed","sequence_number":1}\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        return sse_response(RESPONSES_START, done)

    sent = await call(
        mock_provider(handler), {"model": "m", "input": "hi", "stream": True}, path="/v1/responses"
    )
    raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert raw == RESPONSES_START + done


async def test_unexpected_failure_is_a_500_envelope_then_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise ValueError("bug")

    sent_messages: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": json.dumps(HELLO).encode()}

    async def send(message: Any) -> None:
        sent_messages.append(message)

    with pytest.raises(ValueError, match="bug"):
        await mock_provider(handler)(
            {"type": "http", "method": "POST", "path": URL, "headers": [], "query_string": b""},
            receive,
            send,
        )
    assert sent_messages[0]["status"] == 500
    assert json.loads(sent_messages[1]["body"])["error"]["code"] == "internal_error"


async def test_aclose_leaves_a_caller_supplied_client_open() -> None:
    client = httpx.AsyncClient()
    upstream = UpstreamProvider("http://mock/v1", client=client)
    await upstream.aclose()
    assert not client.is_closed
    await client.aclose()
