"""The stream translation's fast paths send exactly the bytes of the full reading.

Two shortcuts on the per-chunk path: an inner chunk that is one ``data:`` line and its blank line
is read without the SSE parser (``_lone_data_event``), and a text delta without logprobs is
encoded around its text only (``_FAST_TEXT_DELTAS``). Random streams, cut anywhere, must come out
byte for byte as with both turned off.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.adapter import ResponsesAdapter, _middleware, _response, _stream
from akgate.sse import SSEParser

from .scripted import call, chunk, stream_app, text_stream
from .test_properties import REQ, scenarios, splits


@contextmanager
def fixed_ids() -> Iterator[None]:
    """Ids from a counter: two runs of one stream are comparable."""
    counter = itertools.count()
    saved = (_stream.new_id, _response.new_id)
    _stream.new_id = _response.new_id = lambda prefix: f"{prefix}{next(counter):032x}"
    try:
        yield
    finally:
        _stream.new_id, _response.new_id = saved


_TIMES = re.compile(rb'"(created_at|completed_at)":\d+')


@contextmanager
def full_reading() -> Iterator[None]:
    saved = (_middleware._lone_data_event, _stream._FAST_TEXT_DELTAS)
    _middleware._lone_data_event = lambda chunk, max_size: None
    _stream._FAST_TEXT_DELTAS = False
    try:
        yield
    finally:
        _middleware._lone_data_event, _stream._FAST_TEXT_DELTAS = saved


def translated(pieces: list[bytes], request: dict[str, Any]) -> list[Any]:
    with fixed_ids():
        result = anyio.run(call, ResponsesAdapter(stream_app(pieces)), request)
    return [(_TIMES.sub(b"T", m.get("body", b"")), m.get("more_body")) for m in result.bodies]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), ascii_only=st.booleans(), stream=st.sampled_from([True, True, False]))
def test_fast_paths_send_the_bytes_of_the_full_reading(
    data: st.DataObject, ascii_only: bool, stream: bool
) -> None:
    scenario = data.draw(scenarios())
    raw = b"".join(
        f"data: {c if isinstance(c, str) else json.dumps(c, ensure_ascii=ascii_only)}\n\n".encode()
        for c in scenario.chunks
    )
    pieces = data.draw(splits(raw))
    # Chunks the parser reads differently: not UTF-8, framed with \r\n, an event left open
    # (the next one-line chunk is its second data line).
    odd = [b'data: {"x":"\xff"}\n\n', b"data: {}\r\n\r\n", b'data: {"choices":[]}\n', b"data: {\n"]
    for piece in data.draw(st.lists(st.sampled_from(odd), max_size=2)):
        pieces.insert(data.draw(st.integers(0, len(pieces))), piece)
    request = {**REQ, "stream": stream}
    fast = translated(pieces, request)
    with full_reading():
        full = translated(pieces, request)
    assert fast == full


class CountingParser(SSEParser):
    fed = 0

    def feed(self, chunk: bytes) -> list[Any]:
        CountingParser.fed += 1
        return super().feed(chunk)


async def test_one_line_chunks_are_read_without_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_middleware, "SSEParser", CountingParser)
    CountingParser.fed = 0
    parts = [f"part {i} " for i in range(20)]
    result = await call(ResponsesAdapter(stream_app(text_stream(*parts))), REQ)
    assert result.status == 200
    assert b"part 19" in result.body
    # The first chunk (before the stream is committed) and [DONE] go through the parser.
    assert CountingParser.fed <= 3


async def test_text_deltas_are_encoded_around_their_text(monkeypatch: pytest.MonkeyPatch) -> None:
    emitted: list[str] = []
    emit = _stream.StreamTranslator._emit

    def counting(self: Any, event: dict[str, Any]) -> None:
        emitted.append(event["type"])
        emit(self, event)

    monkeypatch.setattr(_stream.StreamTranslator, "_emit", counting)
    chunks = [chunk({"content": f"t{i}"}) for i in range(10)]
    result = await call(ResponsesAdapter(stream_app([*chunks, chunk({}, "stop"), "[DONE]"])), REQ)
    assert result.body.count(b"event: response.output_text.delta\n") == 10
    assert "response.output_text.delta" not in emitted


async def test_the_answer_slot_is_emptied_once_the_body_went_out() -> None:
    """The layers outside read the adapter's object as the body passes them; the slot does not
    keep it alive for as long as the request's context lives."""
    from akgate.adapter._answer import ANSWER_SLOT
    from akgate.context import SCOPE_KEY, RequestContext
    from tests.support.asgi import http_scope

    from .scripted import completion, json_app

    seen: list[Any] = []
    ctx = RequestContext()
    adapter = ResponsesAdapter(json_app(completion({"content": "hi"})))

    async def outer_send(message: Any) -> None:
        slot = ctx.state.get(ANSWER_SLOT)
        if message["type"] == "http.response.body":
            seen.append((slot.body is message["body"], slot.response["output_text"]))

    body = json.dumps({"model": "m", "input": "hi"}).encode()
    scope = {**http_scope("/v1/responses"), SCOPE_KEY: ctx}
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    await adapter(scope, receive, outer_send)
    assert seen == [(True, "hi")]
    slot = ctx.state[ANSWER_SLOT]
    assert slot.response is None
    assert slot.body is None
