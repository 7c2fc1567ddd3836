"""Hand-built ASGI calls for protocol-level checks (chunking, disconnects, exceptions)."""

from __future__ import annotations

import json
from typing import Any

import anyio

from akgate._types import ASGIApp, Message


def http_scope(
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: list[tuple[bytes, bytes]] | None = None,
    root_path: str = "",
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *(headers or [])],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
    }


async def call(
    app: ASGIApp,
    payload: Any,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    disconnect_after_bodies: int | None = None,
    path: str = "/v1/chat/completions",
) -> list[Message]:
    """Run ``app`` on one request; the client disconnects after that many body messages."""
    sent: list[Message] = []
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    delivered = False
    gone = anyio.Event()

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        bodies = sum(1 for m in sent if m["type"] == "http.response.body")
        if disconnect_after_bodies is not None and bodies >= disconnect_after_bodies:
            gone.set()
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            gone.set()

    with anyio.fail_after(10):
        await app(http_scope(path, headers=headers), receive, send)
    return sent


def sse_data(messages: list[Message]) -> list[str]:
    """The ``data:`` payloads of an SSE body sent as ASGI messages."""
    raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return [line[len("data: ") :] for line in raw.decode().split("\n") if line.startswith("data: ")]
