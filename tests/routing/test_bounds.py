"""The stream rewriters and the attempt buffers hold a bounded amount of provider output."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.routing import _attempt as routing_attempt
from akgate.routing._metadata import ChatStreamRewriter, ResponsesStreamRewriter
from tests.routing.conftest import build, client


def _finalize(usage: Any) -> dict[str, Any]:
    return {"provider": "p"}


def test_chat_rewriter_cuts_an_event_that_never_ends() -> None:
    rw = ChatStreamRewriter(_finalize, "p", max_event_size=1000)
    assert rw.feed(b'data: {"choices":[]}\n\n') == b'data: {"choices":[]}\n\n'
    out = b""
    for _ in range(20):
        out += rw.feed(b"x" * 100)  # no blank line, ever
    assert b'"code":"upstream_error"' in out
    assert out.endswith(b"data: [DONE]\n\n")
    assert len(rw._pending) == 0
    assert rw.feed(b"more\n\n") == b""  # everything after the error is dropped
    assert rw.close() == b""
    assert rw.abort("upstream_error", "again") == b""  # ended once, with one error
    assert rw.failed


def test_chat_rewriter_cuts_an_oversized_tail_after_complete_events() -> None:
    rw = ChatStreamRewriter(_finalize, "p", max_event_size=100)
    out = rw.feed(b'data: {"choices":[]}\n\n' + b"data: " + b"x" * 200)
    assert out.startswith(b'data: {"choices":[]}\n\n')
    assert b"upstream_error" in out


def test_chat_rewriter_cuts_oversized_events_in_crlf_framing() -> None:
    rw = ChatStreamRewriter(_finalize, "p", max_event_size=1000)
    out = rw.feed(b'data: {"choices":[]}\r\n\r\n')
    for _ in range(20):
        out += rw.feed(b"y" * 100)
    assert b"upstream_error" in out
    assert rw.feed(b"\r\n\r\n") == b""


def test_responses_rewriter_cuts_an_event_that_never_ends() -> None:
    rw = ResponsesStreamRewriter(_finalize, "p", max_event_size=1000)
    rw.feed(
        b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
        b'"response":{"id":"r","object":"response"}}\n\n'
    )
    out = b"".join(rw.feed(b"z" * 100) for _ in range(20))
    assert b"event: error" in out
    assert b"event: response.failed" in out
    assert rw.close() == b""


def test_a_trickled_event_is_not_quadratic() -> None:
    rw = ChatStreamRewriter(_finalize, "p")
    assert rw.feed(b"data: ") == b""
    t0 = time.perf_counter()
    for _ in range(100_000):  # a 1 MB event in 10-byte chunks
        assert rw.feed(b"0123456789") == b""
    # Was a full copy and rescan of the pending bytes per chunk (~50 GB moved).
    assert time.perf_counter() - t0 < 2.0
    assert rw.feed(b"\n\n").endswith(b"0123456789\n\n")


async def _endless_event(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    await send(
        {
            "type": "http.response.body",
            "more_body": True,
            "body": b'data: {"id":"c","object":"chat.completion.chunk","choices":[]}\n\n',
        }
    )
    chunk = b"x" * (1024 * 1024)
    for _ in range(64):  # 64 MiB without a blank line (the cap is 16 MiB)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"\n\n", "more_body": False})


async def test_stream_with_an_endless_event_ends_with_an_error_event() -> None:
    app = build({"cheap": _endless_event, "pricey": _endless_event})
    body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert len(r.content) < 1024 * 1024  # nothing of the oversized event reached the client
    frames = [f for f in r.content.split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]"
    error = json.loads(frames[-2][len(b"data: ") :])["error"]
    assert error["code"] == "upstream_error"
    assert "larger than" in error["message"]


async def _big_json(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    for _ in range(10):
        await send({"type": "http.response.body", "body": b" " * 1000, "more_body": True})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})


async def _big_json_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b" " * 10_000 + b"{}"})


@pytest.mark.parametrize("answer", [_big_json, _big_json_at_once], ids=["in-pieces", "at-once"])
async def test_oversized_json_answer_is_a_failed_attempt(
    monkeypatch: pytest.MonkeyPatch, answer: ASGIApp
) -> None:
    # At once: the one-message path takes the same cap as the gathering one.
    monkeypatch.setattr(routing_attempt, "MAX_JSON_RESPONSE_SIZE", 5000)
    app = build({"cheap": answer, "pricey": answer})
    body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json=body)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "upstream_error"
    # The cap, plus twice the attempt's request body (what an answer may echo).
    assert re.search(r"larger than 5\d\d\d bytes", error["message"])
