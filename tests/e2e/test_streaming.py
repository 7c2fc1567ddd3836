"""Streams through the whole stack over a real uvicorn: order, disconnects, faults, concurrency."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from httpx_sse import connect_sse

from akgate._types import Message, Receive, Scope, Send
from akgate.auth import MemoryKeyStore, ensure_demo_key
from akgate.providers import DemoModel
from akgate.routing import Catalog
from akgate.stack import gateway
from tests.support.servers import run_uvicorn

from .conftest import assert_envelope

pytestmark = pytest.mark.server

TEXT = 'Hello! I am the akgate demo model. You said: "hi"'
ENDPOINTS = {
    "/v1/chat/completions": {
        "model": "demo",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    },
    "/v1/responses": {"model": "demo", "input": "hi", "stream": True},
}


class Gate:
    """Wraps the demo: holds its stream after the first body chunk until ``release()``.

    ``ended`` is set once the demo's call returns (however it ends), ``reached`` when the
    first body chunk was sent on.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.reached = threading.Event()
        self.released = threading.Event()
        self.ended = threading.Event()
        self.held = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def gated_send(message: Message) -> None:
            first = (
                message["type"] == "http.response.body"
                and bool(message.get("body"))
                and not self.reached.is_set()
            )
            if first:
                self.reached.set()
            await send(message)
            if first:
                # Blocks the demo (not the event loop) until the client has seen the event.
                self.held = await anyio.to_thread.run_sync(self.released.wait, 10)

        try:
            await self.app(scope, receive, gated_send)
        finally:
            self.ended.set()


@pytest.fixture
def gated() -> Iterator[tuple[str, str, Gate]]:
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    assert key is not None
    gate = Gate(DemoModel())
    app = gateway(gate, keys=store, catalog=Catalog.demo(), app_provider="demo")
    with run_uvicorn(app, log_config=None) as base:
        yield base, key, gate
    gate.released.set()


def sse_events(response: httpx.Response) -> list[tuple[str, str]]:
    """``(event, data)`` of every event in a finished SSE body."""
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        events.append((name, "\n".join(data)))
    return events


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_first_event_reaches_the_client_while_the_provider_is_mid_stream(
    gated: tuple[str, str, Gate], path: str
) -> None:
    base, key, gate = gated
    headers = {"authorization": f"Bearer {key}"}
    with (
        httpx.Client(base_url=base, headers=headers, timeout=20) as client,
        connect_sse(client, "POST", path, json=ENDPOINTS[path]) as source,
    ):
        events = source.iter_sse()
        first = next(events)
        # The demo is still held after its first chunk: nothing was buffered on the way.
        assert gate.reached.is_set()
        assert not gate.ended.is_set()
        gate.released.set()
        rest = list(events)
    assert gate.held, "the provider was released by the timeout, not by the client"
    assert first.data
    assert rest


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_client_disconnect_mid_stream_stops_the_provider_quietly(
    gated: tuple[str, str, Gate], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    base, key, gate = gated
    headers = {"authorization": f"Bearer {key}", "x-demo-fault": "delay=2000"}
    with caplog.at_level(logging.INFO):
        with (
            httpx.Client(base_url=base, headers=headers, timeout=20) as client,
            connect_sse(client, "POST", path, json=ENDPOINTS[path]) as source,
        ):
            next(source.iter_sse())
            gate.released.set()
        # Closed early: the demo (2 s per token, ~15 tokens) must stop well before its end.
        assert gate.ended.wait(10), "the provider kept streaming to a gone client"
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}) as client:
            body = {**ENDPOINTS[path], "stream": False}
            assert client.post(path, json=body).status_code == 200
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _chat_stream(http: httpx.Client, fault: str) -> list[tuple[str, str]]:
    response = http.post(
        "/v1/chat/completions",
        json=ENDPOINTS["/v1/chat/completions"],
        headers={"x-demo-fault": fault},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response)


def _responses_stream(http: httpx.Client, fault: str) -> list[tuple[str, str]]:
    response = http.post(
        "/v1/responses", json=ENDPOINTS["/v1/responses"], headers={"x-demo-fault": fault}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response)


@pytest.mark.parametrize("fault", ["midstream", "midstream=0", "exception", "drop"])
def test_chat_stream_failure_ends_with_an_error_event_then_done(
    http: httpx.Client, fault: str
) -> None:
    events = _chat_stream(http, fault)
    assert events[-1][1] == "[DONE]"
    error = json.loads(events[-2][1])["error"]
    assert error["code"] in ("internal_error", "upstream_error")
    assert error["type"] == "api_error"
    assert not any("routing_metadata" in data for _, data in events)


@pytest.mark.parametrize("fault", ["midstream", "midstream=0", "exception", "drop"])
def test_responses_stream_failure_ends_with_error_then_response_failed(
    http: httpx.Client, fault: str
) -> None:
    events = _responses_stream(http, fault)
    names = [name for name, _ in events]
    assert names[-2:] == ["error", "response.failed"]
    assert "response.completed" not in names
    failed = json.loads(events[-1][1])["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"]
    error = json.loads(events[-2][1])
    assert error["code"]
    assert error["error"]["code"] == error["code"]


@pytest.mark.parametrize("path", list(ENDPOINTS))
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("status=500", 502, "upstream_error"),
        ("status=429", 429, "rate_limit_exceeded"),
        ("status=503", 503, "no_provider_available"),
        ("status=400", 400, "invalid_request"),
    ],
)
def test_provider_status_faults_give_the_documented_envelope(
    http: httpx.Client, path: str, stream: bool, fault: str, status: int, code: str
) -> None:
    body = {**ENDPOINTS[path], "stream": stream}
    response = http.post(path, json=body, headers={"x-demo-fault": fault})
    assert_envelope(response, status, code)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    if status in (429, 503):
        assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("path", list(ENDPOINTS))
@pytest.mark.parametrize("fault", ["midstream", "exception", "drop"])
def test_non_streaming_provider_failure_is_a_502_envelope(
    http: httpx.Client, path: str, fault: str
) -> None:
    body = {**ENDPOINTS[path], "stream": False}
    response = http.post(path, json=body, headers={"x-demo-fault": fault})
    assert_envelope(response, 502, "upstream_error")


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_slow_first_byte_still_completes(http: httpx.Client, path: str) -> None:
    response = http.post(path, json=ENDPOINTS[path], headers={"x-demo-fault": "slow-first-byte=30"})
    assert response.status_code == 200
    assert "routing_metadata" in response.text


def _chat_text(response: httpx.Response) -> str:
    """The streamed chat content; the stream ends with routing_metadata then [DONE]."""
    assert response.status_code == 200
    events = sse_events(response)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert chunks[-1]["routing_metadata"]["provider"] == "demo"
    return "".join(c["delta"].get("content") or "" for chunk in chunks for c in chunk["choices"])


def _responses_text(response: httpx.Response) -> str:
    """The streamed output text; the stream ends with response.completed."""
    assert response.status_code == 200
    events = sse_events(response)
    assert events[-1][0] == "response.completed"
    assert json.loads(events[-1][1])["response"]["routing_metadata"]["provider"] == "demo"
    return "".join(
        json.loads(data)["delta"] for name, data in events if name == "response.output_text.delta"
    )


async def test_fifty_concurrent_streams_complete_with_correct_content(
    served: tuple[str, str],
) -> None:
    base, key = served
    results: list[str] = []
    chat = {**ENDPOINTS["/v1/chat/completions"], "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient(
        base_url=base,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=60),
    ) as client:

        async def one(i: int) -> None:
            if i % 2:
                results.append(_chat_text(await client.post("/v1/chat/completions", json=chat)))
            else:
                response = await client.post("/v1/responses", json=ENDPOINTS["/v1/responses"])
                results.append(_responses_text(response))

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
    assert results == [TEXT] * 50
