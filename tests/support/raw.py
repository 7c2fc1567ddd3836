"""Call an ASGI app with an exact request path: HTTP clients normalize '.' and '..' away."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio

from akgate._types import Message


@dataclass
class RawResponse:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


async def call_raw(
    app: Any,
    method: str,
    raw_path: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    query: bytes = b"",
) -> RawResponse:
    """Send one request as a server would: ``path`` is ``raw_path`` percent-decoded once
    (as uvicorn does), ``raw_path`` the bytes on the wire."""
    raw = raw_path.encode("latin-1")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote_to_bytes(raw).decode("utf-8", "replace"),
        "raw_path": raw,
        "root_path": "",
        "query_string": query,
        "headers": [
            (b"host", b"gw"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers or ()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("gw", 80),
    }
    sent_body = False
    response = RawResponse()
    done = anyio.Event()

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # the client stays until the response is complete, as a server's would
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]
            }
        elif message["type"] == "http.response.body":
            response.body += message.get("body", b"")
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    done.set()
    return response
