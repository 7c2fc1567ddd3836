"""A provider's 2xx that is not the stream (or JSON) asked for is a failed attempt before the
first byte (the next provider is tried), and malformed events after it end the stream with an
error event."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx_sse
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.routing._stream_check import first_event, has_bad_block
from tests.routing.conftest import build, client
from tests.routing.scripted import Scripted, chat_chunks

CHAT = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**CHAT, "stream": True}


def answering(content_type: bytes, *bodies: bytes) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", content_type)]})
        for i, body in enumerate(bodies):
            more = i < len(bodies) - 1
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


GOOD = chat_chunks("alpha-cheap", "Hello there", (3, 2, 0))
BAD_BEFORE_FIRST_BYTE = {
    "text/plain": answering(b"text/plain", b"upstream says hello"),
    "json for a stream": answering(b"application/json", b'{"id": "x", "choices": []}'),
    "sse of text": answering(b"text/event-stream", b"Internal Server Error\n\n"),
    "sse of non-json": answering(b"text/event-stream", b"data: not json\n\n", *GOOD),
    "empty sse": answering(b"text/event-stream", b""),
    "sse trickled garbage": answering(b"text/event-stream", b"oops", b" more", b"\n\n"),
}


@pytest.mark.parametrize("bad", list(BAD_BEFORE_FIRST_BYTE))
async def test_a_bad_stream_falls_back_before_the_first_byte(bad: str) -> None:
    pricey = Scripted("pricey")
    routing = build({"cheap": BAD_BEFORE_FIRST_BYTE[bad], "pricey": pricey})
    async with (
        client(routing) as http,
        httpx_sse.aconnect_sse(http, "POST", "/v1/chat/completions", json=STREAM) as source,
    ):
        assert source.response.status_code == 200
        events = [event.data async for event in source.aiter_sse()]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    assert final["routing_metadata"]["provider"] == "pricey"
    assert len(pricey.calls) == 1


@pytest.mark.parametrize("bad", ["text/plain", "sse of text"])
async def test_without_a_fallback_it_is_a_502_envelope(bad: str) -> None:
    routing = build({"cheap": BAD_BEFORE_FIRST_BYTE[bad], "pricey": Scripted("pricey")})
    body = {**STREAM, "gateway": {"routing": {"allow_fallbacks": False}}}
    async with client(routing) as http:
        response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_error"
    assert error["provider"] == "cheap"
    assert "invalid response" in error["message"]


async def test_plain_text_to_a_non_stream_request_falls_back() -> None:
    pricey = Scripted("pricey")
    routing = build({"cheap": BAD_BEFORE_FIRST_BYTE["text/plain"], "pricey": pricey})
    async with client(routing) as http:
        response = await http.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert response.json()["routing_metadata"]["provider"] == "pricey"


async def test_malformed_events_after_the_first_byte_end_with_an_error_event() -> None:
    late = answering(b"text/event-stream", GOOD[0], GOOD[1], b"<html>gateway error</html>\n\n")
    routing = build({"cheap": late, "pricey": Scripted("pricey")})
    async with (
        client(routing) as http,
        httpx_sse.aconnect_sse(http, "POST", "/v1/chat/completions", json=STREAM) as source,
    ):
        assert source.response.status_code == 200
        events = [event.data async for event in source.aiter_sse()]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "upstream_error"
    assert "malformed" in error["message"]
    assert not any("html" in e for e in events)


@pytest.mark.parametrize(
    ("held", "state"),
    [
        (b": keep-alive\n\ndata: {}\n\n", "ok"),
        (b'event: x\r\ndata: {"a": 1}\r\n\r\n', "ok"),
        (b"data: [DONE]\n\n", "ok"),
        (b'data: {"a"', "more"),
        (b"data: [1]\n\n", "bad"),
        (b"hello\n\n", "bad"),
    ],
)
def test_first_event(held: bytes, state: str) -> None:
    assert first_event(held) == state


def test_has_bad_block() -> None:
    assert not has_bad_block(b"data: {}\n\n: ping\n\nevent: e\ndata: {}\n\n\n")
    assert has_bad_block(b"data: {}\n\ngarbage\n\n")
    assert has_bad_block(b"garbage\n\n")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"data: {}", b"event: e", b"id: 1", b"retry: 5", b": c", b"x", b"da"]),
        max_size=8,
    ),
    st.lists(st.sampled_from([b"\n", b"\n\n", b"\n\n\n"]), min_size=8, max_size=8),
)
def test_has_bad_block_matches_the_block_by_block_rule(
    lines: list[bytes], breaks: list[bytes]
) -> None:
    # The fast search gives what reading block by block gives: a block (the first one, or one
    # after a blank line) that starts with no field, no comment and no line break is not SSE.
    text = b"".join(line + brk for line, brk in zip(lines, breaks, strict=False))
    reference = re.compile(rb"(?:\A|\n\n)(?!data:|event:|id:|retry:|:|\n|\Z)")
    assert has_bad_block(text) == (reference.search(text) is not None)
