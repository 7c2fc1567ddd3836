"""In-process ASGI benchmark harness.

``await app(scope, receive, send)`` in a loop with a canned scope, a ``receive`` that yields the
body once and then parks (as a server does: it never invents a disconnect), and a ``send`` that
only counts. Warm-up first, then the best of N rounds, reported in microseconds per request.

The stream probe measures buffering without a clock: it counts how many body messages the inner
app has sent each time a body message leaves the stack. A stack that forwards events as they come
never holds more than one or two inner chunks; a buffering stack holds all of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

__all__ = [
    "RunResult",
    "StreamProbe",
    "bench",
    "call_once",
    "make_scope",
]


def make_scope(
    path: str,
    body: bytes,
    *,
    method: str = "POST",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> Scope:
    """A canned HTTP scope as uvicorn would build it (no extensions, HTTP/1.1, 127.0.0.1)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


class _Parked:
    """``receive`` that yields the body once, then waits forever (cancelled at the end)."""

    __slots__ = ("body", "sent")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent = False

    async def __call__(self) -> Message:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await asyncio.Event().wait()  # parks like a server until the response is complete
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class RunResult:
    status: int
    body_messages: int
    body: bytes


async def call_once(app: ASGIApp, scope: Scope, body: bytes) -> RunResult:
    """One request, keeping the response (for checking a variant before timing it)."""
    status = 0
    count = 0
    parts: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, count
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            count += 1
            parts.append(message.get("body", b""))

    await app(dict(scope), _Parked(body), send)
    return RunResult(status, count, b"".join(parts))


async def _noop_send(message: Message) -> None:
    return None


async def bench(
    app: ASGIApp,
    scope: Scope,
    body: bytes,
    *,
    n: int,
    rounds: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Best-of-``rounds`` microseconds per request over ``n`` sequential calls, by ``clock``
    (``time.process_time``: the process's CPU time, which a busy machine inflates far less)."""
    for _ in range(warmup):
        await app(dict(scope), _Parked(body), _noop_send)
    best = float("inf")
    for _ in range(rounds):
        t0 = clock()
        for _ in range(n):
            await app(dict(scope), _Parked(body), _noop_send)
        best = min(best, (clock() - t0) / n)
    return best * 1e6


class StreamProbe:
    """Wraps the innermost app to count the body messages it sends.

    ``await probe.measure(stack, scope, body)`` returns ``(inner, outer, max_held)``: body messages
    sent by the inner app, body messages that left the stack, and the largest number of inner body
    messages that had been produced but not yet followed by any outgoing body message.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inner = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                self.inner += 1
            await send(message)

        await self.app(scope, receive, counting_send)

    async def measure(self, stack: ASGIApp, scope: Scope, body: bytes) -> tuple[int, int, int]:
        self.inner = 0
        outer = 0
        seen_inner = 0
        max_held = 0

        async def send(message: Message) -> None:
            nonlocal outer, seen_inner, max_held
            if message["type"] != "http.response.body":
                return
            outer += 1
            max_held = max(max_held, self.inner - seen_inner)
            seen_inner = self.inner

        await stack(dict(scope), _Parked(body), send)
        return self.inner, outer, max_held
