"""Servers answer ``receive()`` with ``http.disconnect`` once the response is complete (uvicorn
does): that is not the client leaving, so the attempt still counts as served and its speed is
recorded."""

from __future__ import annotations

import json
from typing import Any

from akgate._types import Message
from akgate.context import get_context, request_context
from akgate.routing import InMemoryStats
from tests.routing.conftest import build
from tests.routing.scripted import chat_chunks

CATALOG = {"models": {"m": {"providers": [{"name": "p", "input_price": 1, "output_price": 1}]}}}


class StreamThenListen:
    """Streams a chat completion, then waits on receive() as a disconnect watcher would."""

    def __init__(self) -> None:
        self.after: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunks = chat_chunks("m", "hello there", (3, 2, 0))
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        self.after.append((await receive())["type"])


async def test_disconnect_after_the_response_is_not_a_client_disconnect() -> None:
    stats = InMemoryStats()
    provider = StreamThenListen()
    routing = build({"p": provider}, CATALOG, stats=stats)  # type: ignore[dict-item]
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}],
                       "stream": True}).encode()  # fmt: skip
    messages: list[Message] = [{"type": "http.request", "body": body}]
    sent: list[Message] = []

    async def receive() -> Message:
        # Like uvicorn: after the body, a disconnect (the response is complete by then).
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
    }
    scope, send_wrapped, ctx = request_context(scope, send)
    await routing(scope, receive, send_wrapped)

    assert provider.after == ["http.disconnect"]
    assert get_context(scope) is ctx
    outcome = ctx.state["routing"]["attempts"][-1].get("outcome")
    assert outcome != "client_disconnected"
    assert stats.get("p", "m").samples > 0
    assert b"routing_metadata" in b"".join(m.get("body", b"") for m in sent)
