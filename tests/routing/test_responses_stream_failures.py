"""A native /v1/responses provider that breaks mid-stream: the client always gets ``error`` then
``response.failed``, numbered after the last event it received (bridge §3 f, §10 traps 2/11/17).
"""

from __future__ import annotations

import json
from typing import Any

from httpx_sse import aconnect_sse

from tests.routing.conftest import build, client
from tests.routing.scripted import response_object

NATIVE = {"name": "native", "input_price": 1, "output_price": 1, "endpoints": ["responses"]}
CATALOG = {"models": {"m": {"providers": [NATIVE]}}}
BODY = {"model": "m", "input": "hi", "stream": True}
ITEM = {
    "type": "message",
    "id": "msg_1",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
}


def event(kind: str, seq: int | None, **data: Any) -> bytes:
    body: dict[str, Any] = {"type": kind, **data}
    if seq is not None:
        body["sequence_number"] = seq
    return f"event: {kind}\ndata: {json.dumps(body)}\n\n".encode()


OPENING = [
    event("response.created", 0, response=response_object("m", "", (1, 1, 0), "in_progress")),
    event("response.in_progress", 1, response=response_object("m", "", (1, 1, 0), "in_progress")),
    event("response.output_item.done", 2, output_index=0, item=ITEM),
]


class Native:
    """Streams ``chunks``, then ends cleanly or raises."""

    def __init__(self, chunks: list[bytes], *, then_raise: bool = False) -> None:
        self.chunks = chunks
        self.then_raise = then_raise

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.then_raise:
            raise ConnectionResetError("provider went away")
        await send({"type": "http.response.body", "body": b""})


async def received(provider: Native) -> list[dict[str, Any]]:
    app = build({"native": provider}, CATALOG)  # type: ignore[dict-item]
    async with client(app) as c, aconnect_sse(c, "POST", "/v1/responses", json=BODY) as source:
        events = [e async for e in source.aiter_sse()]
    for e in events:
        assert e.event == json.loads(e.data)["type"]
    return [json.loads(e.data) for e in events]


def assert_failed_tail(events: list[dict[str, Any]]) -> None:
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    error, failed = events[-2], events[-1]
    assert error["type"] == "error"
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["id"] == "resp_1"
    # One registry code per fault, whatever the provider's own vocabulary.
    assert failed["response"]["error"]["code"] == error["code"] == "upstream_error"
    assert failed["response"]["error"]["type"] == error["error"]["type"] == "api_error"
    assert failed["response"]["output"] == [ITEM]
    assert "routing_metadata" not in failed["response"]


async def test_provider_exception_mid_stream() -> None:
    events = await received(Native(OPENING, then_raise=True))
    assert_failed_tail(events)
    assert events[-2]["code"] == "upstream_error"
    assert events[-2]["error"]["code"] == "upstream_error"


async def test_provider_stream_ending_without_a_terminal_event() -> None:
    events = await received(Native(OPENING))
    assert_failed_tail(events)


async def test_lone_flat_error_event_gets_a_number_and_a_response_failed() -> None:
    lone = event("error", None, code="server_error", message="boom", param=None)
    events = await received(Native([*OPENING, lone]))
    assert_failed_tail(events)
    assert events[-2]["message"] == "boom"
    assert events[-1]["response"]["error"]["message"] == "boom"


async def test_provider_sending_its_own_response_failed_is_passed_through() -> None:
    failed = response_object("m", "", (1, 1, 0), "failed")
    chunks = [
        *OPENING,
        event("error", 3, code="server_error", message="boom", param=None),
        event("response.failed", 4, response=failed),
    ]
    events = await received(Native(chunks))
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert len(events) == 5
