"""Scripted inner apps (raw ASGI) and a raw harness that sees every ASGI message."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate.sse import SSEParser
from tests.support.asgi import drive, http_scope, read_body

Chunk = dict[str, Any] | str | bytes


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
    choices: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A chat.completion.chunk."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else [],
    }
    if usage is not None:
        body["usage"] = usage
    body.update(extra)
    return body


def tool(
    index: int, *, id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {}}
    if id is not None:
        call["id"] = id
        call["type"] = "function"
    if name is not None:
        call["function"]["name"] = name
    if args is not None:
        call["function"]["arguments"] = args
    return call


USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 5,
    "total_tokens": 15,
    "prompt_tokens_details": {"cached_tokens": 2},
    "completion_tokens_details": {"reasoning_tokens": 3},
}


def text_stream(*parts: str, finish: str = "stop") -> list[Chunk]:
    return [
        chunk({"role": "assistant", "content": ""}),
        *[chunk({"content": p}) for p in parts],
        chunk({}, finish),
        chunk(choices=False, usage=USAGE),
        "[DONE]",
    ]


@dataclass
class Seen:
    """What the inner app received."""

    scope: Scope | None = None
    body: bytes = b""
    calls: int = 0
    cancelled: bool = False

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


def stream_app(
    chunks: Sequence[Chunk],
    *,
    seen: Seen | None = None,
    status: int = 200,
    raise_after: bool = False,
    hang: bool = False,
    per_message: bool = True,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> ASGIApp:
    """An inner chat app that streams ``chunks`` as SSE (one ASGI message per chunk)."""
    seen = seen if seen is not None else Seen()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.scope, seen.calls = scope, seen.calls + 1
        seen.body = await read_body(receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/event-stream"), *headers],
            }
        )
        frames = []
        for c in chunks:
            if isinstance(c, bytes):
                frames.append(c)
            elif isinstance(c, str):
                frames.append(f"data: {c}\n\n".encode())
            else:
                frames.append(f"data: {json.dumps(c)}\n\n".encode())
        if not per_message:
            frames = [b"".join(frames)]
        try:
            for frame in frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            if raise_after:
                raise RuntimeError("inner app broke")
            if hang:
                await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.cancelled = True
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def json_app(
    body: Any,
    *,
    status: int = 200,
    seen: Seen | None = None,
    content_type: bytes = b"application/json",
) -> ASGIApp:
    """An inner app answering one JSON (or raw bytes) body."""
    seen = seen if seen is not None else Seen()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.scope, seen.calls = scope, seen.calls + 1
        seen.body = await read_body(receive)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
                **({"logprobs": extra.pop("logprobs")} if "logprobs" in extra else {}),
            }
        ],
        "usage": USAGE,
        **extra,
    }


@dataclass
class Result:
    messages: list[Message] = field(default_factory=list)

    @property
    def start(self) -> Message:
        return next(m for m in self.messages if m["type"] == "http.response.start")

    @property
    def status(self) -> int:
        return int(self.start["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.start["headers"])

    @property
    def bodies(self) -> list[Message]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.bodies)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict[str, Any]]:
        out = []
        for ev in SSEParser().feed(self.body):
            if ev.data == "[DONE]":
                continue
            data = json.loads(ev.data)
            assert ev.event == data["type"], (ev.event, data["type"])
            out.append(data)
        return out

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


async def call(
    app: ASGIApp,
    body: dict[str, Any] | bytes,
    *,
    path: str = "/v1/responses",
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"application/json"),),
    disconnect_after: Callable[[Message], bool] | None = None,
    scope_extra: dict[str, Any] | None = None,
) -> Result:
    """Run one request through ``app`` with a raw receive/send pair and collect every message."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    scope = http_scope(
        path,
        method=method,
        headers=headers,
        server=("127.0.0.1", 80),
        client=("127.0.0.1", 1),
    )
    scope.update(scope_extra or {})
    result = Result()
    result.messages = await drive(
        app,
        scope,
        data,
        disconnect_when=None
        if disconnect_after is None
        else lambda _sent, message: disconnect_after(message),
    )
    return result
