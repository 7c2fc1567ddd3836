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
import os
import platform
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

__all__ = [
    "Parked",
    "RunResult",
    "StreamProbe",
    "bench",
    "call_once",
    "count_body_messages",
    "cpu_model",
    "json_app",
    "machine",
    "make_scope",
    "noop_send",
    "stream_app",
    "timed_requests",
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


class Parked:
    """``receive`` that yields the body once, then waits: forever (cancelled at the end), or
    until ``until`` (an event the caller sets once the app returned), then says the client left,
    so that what the app left running (a disconnect watcher) returns."""

    __slots__ = ("body", "sent", "until")

    def __init__(self, body: bytes, until: Any = None) -> None:
        self.body = body
        self.sent = False
        self.until = until

    async def __call__(self) -> Message:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        if self.until is not None:
            await self.until.wait()
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # parks like a server until the response is complete
        raise AssertionError("unreachable")  # pragma: no cover


def json_app(body: bytes) -> ASGIApp:
    """A chat app that reads the request and answers ``body`` as a 200 JSON response."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def stream_app(
    frames: list[bytes], gate: Any = None, marks: dict[str, float] | None = None
) -> ASGIApp:
    """A chat app that answers ``frames`` as an event stream, one body message each.

    ``marks["first_inner"]``: when the first frame went out; ``gate``: an event the stream
    waits for after its first frame (to hold it open)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for i, frame in enumerate(frames):
            if i == 0 and marks is not None:
                marks["first_inner"] = time.perf_counter()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            if i == 0 and gate is not None:
                await gate.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def count_body_messages(
    app: ASGIApp,
    scope: Scope,
    body: bytes,
    *,
    marks: dict[str, float] | None = None,
    done: Any = None,
) -> int:
    """One request; the body messages that left ``app``. ``marks["first_outer"]``: when the
    first non-empty one did; ``done`` is set on the first one. The client "leaves" once the
    app returned, so what it left running (a disconnect watcher) returns."""
    import anyio

    count = 0
    closed = anyio.Event()

    async def send(message: Message) -> None:
        nonlocal count
        if message["type"] == "http.response.body":
            if count == 0 and message.get("body") and marks is not None:
                marks.setdefault("first_outer", time.perf_counter())
            count += 1
            if count == 1 and done is not None:
                done.set()

    await app(scope, Parked(body, until=closed), send)
    closed.set()
    return count


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``"unknown CPU"`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine() -> str:
    """CPUs, CPU model, Python and OS: the line each benchmark prints above its table."""
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}); Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}"
    )


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

    await app(dict(scope), Parked(body), send)
    return RunResult(status, count, b"".join(parts))


async def noop_send(message: Message) -> None:
    return None


async def timed_requests(
    app: ASGIApp, scope: Scope, body: bytes, n: int, *, status: int = 200
) -> float:
    """Wall-clock microseconds per request over ``n`` sequential calls, each answered with
    ``status`` (else ``RuntimeError``: a benchmark of error answers measures nothing)."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.perf_counter()
    for _ in range(n):
        await app(scope, Parked(body), send)
        await _yield()
    elapsed = time.perf_counter() - start
    if any(code != status for code in statuses):
        raise RuntimeError(f"unexpected statuses {set(statuses)}")
    return elapsed / n * 1e6


async def _yield() -> None:
    """Let the event loop run between requests, as a server's loop does: tasks a request
    cancelled on its way out finish here (without it they pile up, and the garbage collector's
    growing full passes dominate the figures)."""
    await asyncio.sleep(0)


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
        await app(dict(scope), Parked(body), noop_send)
        await _yield()
    best = float("inf")
    for _ in range(rounds):
        t0 = clock()
        for _ in range(n):
            await app(dict(scope), Parked(body), noop_send)
            await _yield()
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

        await stack(dict(scope), Parked(body), send)
        return self.inner, outer, max_held
