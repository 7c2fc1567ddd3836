"""The adapter holds a bounded amount of the inner app's answer, and warnings stay cheap."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from akgate._types import Receive, Scope, Send
from akgate.adapter import ResponsesAdapter
from akgate.adapter import _middleware as adapter_middleware
from akgate.context import MAX_WARNINGS, RequestContext

from .scripted import call, json_app

REQ: dict[str, Any] = {"model": "m", "input": "hi"}


def _endless_stream(first: bytes) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        chunk = b"x" * (1024 * 1024)
        for _ in range(40):  # 40 MiB in one event (the cap is 16 MiB)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"\n\n", "more_body": False})

    return app


async def test_endless_event_before_the_first_chunk_is_a_502() -> None:
    result = await call(ResponsesAdapter(_endless_stream(b"data: ")), {**REQ, "stream": True})
    assert result.status == 502
    assert "larger than" in result.json["error"]["message"]


async def test_endless_event_mid_stream_ends_with_response_failed() -> None:
    first = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}\n\n'
    )
    result = await call(ResponsesAdapter(_endless_stream(first)), {**REQ, "stream": True})
    assert result.status == 200
    assert result.types[-2:] == ["error", "response.failed"]
    assert "larger than" in result.events[-2]["message"]
    assert len(result.body) < 1024 * 1024


async def test_oversized_json_answer_is_a_502(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_middleware, "MAX_INNER_RESPONSE_SIZE", 1000)
    result = await call(ResponsesAdapter(json_app(b" " * 5000)), REQ)
    assert result.status == 502
    # The cap, plus twice the inner request body (what an answer may echo).
    assert re.search(r"larger than 1\d\d\d bytes", result.json["error"]["message"])


async def test_many_reasoning_items_are_not_quadratic() -> None:
    items: list[dict[str, Any]] = [
        {"type": "reasoning", "id": f"rs_{i}", "summary": []} for i in range(30_000)
    ]
    body = {"model": "m", "input": [*items, {"role": "user", "content": "hi"}]}
    ctx = RequestContext()
    t0 = time.perf_counter()
    result = await call(ResponsesAdapter(json_app(b"{}")), body, scope_extra={"akgate": ctx})
    assert time.perf_counter() - t0 < 5.0  # was one scan of every warning per item
    assert result.status == 502  # the inner answer is no chat completion; the point is the time
    assert len(ctx.warnings) == MAX_WARNINGS
