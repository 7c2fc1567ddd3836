"""Hand-built ASGI calls for protocol-level checks (chunking, disconnects, exceptions)."""

from __future__ import annotations

import json
from typing import Any

from akgate._types import ASGIApp, Message
from tests.support.asgi import drive, http_scope

#: A chat request the demo model answers, as JSON and streamed.
HELLO = {"model": "demo", "messages": [{"role": "user", "content": "hello there"}]}
STREAM = {**HELLO, "stream": True}


async def call(
    app: ASGIApp,
    payload: Any,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    disconnect_after_bodies: int | None = None,
    path: str = "/v1/chat/completions",
) -> list[Message]:
    """Run ``app`` on one request; the client disconnects after that many body messages."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    def gone(sent: list[Message], message: Message) -> bool:
        bodies = sum(1 for m in sent if m["type"] == "http.response.body")
        if disconnect_after_bodies is not None and bodies >= disconnect_after_bodies:
            return True
        return message["type"] == "http.response.body" and not message.get("more_body", False)

    scope = http_scope(path, headers=[(b"content-type", b"application/json"), *(headers or [])])
    return await drive(app, scope, body, disconnect_when=gone, seconds=10)


def sse_data(messages: list[Message]) -> list[str]:
    """The ``data:`` payloads of an SSE body sent as ASGI messages."""
    raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return [line[len("data: ") :] for line in raw.decode().split("\n") if line.startswith("data: ")]
