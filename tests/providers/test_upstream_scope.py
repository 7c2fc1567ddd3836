"""The exchange's cancel scope under asyncio is the native one over the request's task (not an
``anyio.CancelScope``), and keeps the exchange's rules: the first-byte, idle and total limits, the
stop when the client leaves, and an outer cancellation that is never swallowed."""

from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import pytest

import akgate.providers._upstream as upstream_module
from akgate._types import Receive, Scope, Send
from akgate.providers import UpstreamProvider
from akgate.routing._cancel import TaskScope
from tests.providers._harness import HELLO, STREAM, call, sse_data
from tests.support.servers import run_uvicorn


@pytest.fixture
def scopes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The scopes the exchanges open."""
    opened: list[Any] = []
    real = upstream_module.open_scope

    def spy(deadline: float) -> Any:
        scope = real(deadline)
        opened.append(scope)
        return scope

    monkeypatch.setattr(upstream_module, "open_scope", spy)
    return opened


def _status(sent: list[Any]) -> int:
    return int(next(m for m in sent if m["type"] == "http.response.start")["status"])


async def test_an_answer_goes_through_a_native_scope(demo_url: str, scopes: list[Any]) -> None:
    upstream = UpstreamProvider(demo_url)
    try:
        sent = await call(upstream, HELLO)
        streamed = await call(upstream, STREAM)
    finally:
        await upstream.aclose()
    assert _status(sent) == 200
    assert sse_data(streamed)[-1] == "[DONE]"
    assert len(scopes) == 2
    assert all(type(scope) is TaskScope for scope in scopes)
    assert not any(scope.cancelled_caught for scope in scopes)


async def test_first_byte_and_idle_limits_hold_on_the_native_scope(
    demo_url: str, scopes: list[Any]
) -> None:
    upstream = UpstreamProvider(demo_url, first_byte_timeout=0.1, idle_timeout=0.2)
    body = {**STREAM, "messages": [{"role": "user", "content": "word " * 50}]}
    try:
        late = await call(upstream, STREAM, headers=[(b"x-demo-fault", b"slow-first-byte=2000")])
        stalled = await call(upstream, body, headers=[(b"x-demo-fault", b"delay=600")])
    finally:
        await upstream.aclose()
    assert _status(late) == 504
    error = json.loads(b"".join(m.get("body", b"") for m in late if "body" in m))["error"]
    assert error["code"] == "upstream_timeout"
    assert "no response within 0.1 s" in error["message"]
    data = sse_data(stalled)
    assert data[-1] == "[DONE]"
    assert "no data for 0.2 s" in json.loads(data[-2])["error"]["message"]
    assert [type(scope) for scope in scopes] == [TaskScope, TaskScope]
    assert all(scope.cancelled_caught for scope in scopes)


async def test_an_outer_cancellation_is_not_taken_for_a_timeout(
    demo_url: str, scopes: list[Any]
) -> None:
    upstream = UpstreamProvider(demo_url, read_timeout=30)
    sent: list[Any] = []
    try:
        with anyio.move_on_after(0.2) as outer:
            sent = await call(
                upstream, STREAM, headers=[(b"x-demo-fault", b"slow-first-byte=5000")]
            )
    finally:
        await upstream.aclose()
    assert outer.cancelled_caught  # the caller's own scope got its cancellation
    assert sent == []  # and the exchange sent no timeout of its own
    assert [type(scope) for scope in scopes] == [TaskScope]
    assert not scopes[0].cancelled_caught


async def test_a_client_that_leaves_cancels_the_upstream_read(scopes: list[Any]) -> None:
    upstream_saw_disconnect = threading.Event()

    async def slow_stream(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        upstream_saw_disconnect.set()

    with run_uvicorn(slow_stream) as base:
        upstream = UpstreamProvider(base + "/v1")
        try:
            await call(upstream, STREAM, disconnect_after_bodies=1)
        finally:
            await upstream.aclose()
        assert upstream_saw_disconnect.wait(5)
    assert [type(scope) for scope in scopes] == [TaskScope]
    assert scopes[0].cancelled_caught
