"""Hand-driven ASGI calls for protocol-level tests: one scope, one receive/send pair.

Tests that check what an HTTP client cannot show (every ASGI message, a disconnect at an exact
point, the body an inner app received) drive the app with these instead of their own copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio

from akgate._types import ASGIApp, Message, Receive, Scope

JSON_CONTENT_TYPE = ((b"content-type", b"application/json"),)


def http_scope(
    path: str = "/v1/chat/completions",
    *,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = JSON_CONTENT_TYPE,
    root_path: str = "",
    **extra: Any,
) -> Scope:
    """An HTTP scope for ``root_path + path``; ``extra`` keys are added or replace defaults."""
    full = root_path + path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": full,
        "raw_path": full.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": list(headers),
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        **extra,
    }


async def drive(
    app: ASGIApp,
    scope: Scope,
    body: bytes,
    *,
    disconnect_when: Callable[[list[Message], Message], bool] | None = None,
    seconds: float = 5.0,
) -> list[Message]:
    """Every message ``app`` sends for one request whose body arrives in one piece.

    After the body, ``receive`` waits until ``disconnect_when(sent, message)`` holds for a sent
    message, then answers ``http.disconnect`` (as a server does when the client leaves). The
    whole call fails after ``seconds``.
    """
    sent: list[Message] = []
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
        if disconnect_when is not None and disconnect_when(sent, message):
            gone.set()

    with anyio.fail_after(seconds):
        await app(scope, receive, send)
    return sent


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as an inner test app reads it."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)
