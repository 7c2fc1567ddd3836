"""``SSEKeepAlive``: SSE comment heartbeats on idle chat and Responses streams.

Long reasoning or a slow upstream can leave a stream silent for minutes, and proxies and load
balancers cut connections that stay idle that long. Once a stream has sent nothing for
``interval`` seconds, this layer sends an SSE comment (``: keep-alive``), which every SSE client
ignores: it is not an event, so it carries no ``sequence_number`` and changes none.

A heartbeat only goes out between events (after a blank line), never inside one, and the
inner app's bytes are forwarded as they come: the layer holds nothing back. The inner app's
``send`` and the heartbeat's never overlap, since an ASGI ``send`` must not run twice at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import anyio

from ._asgi import find_header, route_path
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_HEARTBEAT_PATHS", "SSEKeepAlive"]

#: The streaming endpoints heartbeats are sent on (canonical paths).
DEFAULT_HEARTBEAT_PATHS: Final = ("/v1/chat/completions", "/v1/responses", "/v1/messages")
_COMMENT: Final = b": keep-alive\n\n"
_EVENT_ENDS: Final = (b"\n\n", b"\r\n\r\n", b"\r\r")


class SSEKeepAlive:
    """Send ``: keep-alive`` after ``interval`` idle seconds on SSE responses of ``paths``.

    Options (keyword-only):

    * ``interval``: idle seconds before a heartbeat (then one per idle interval).
    * ``paths``: the request paths whose ``text/event-stream`` responses get heartbeats.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        interval: float = 15.0,
        paths: Iterable[str] = DEFAULT_HEARTBEAT_PATHS,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.app = app
        self.interval = interval
        self.paths = frozenset(paths)

    def __repr__(self) -> str:
        return f"SSEKeepAlive({self.app!r}, interval={self.interval})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope).rstrip("/") not in self.paths:
            await self.app(scope, receive, send)
            return
        error: Exception | None = None
        async with anyio.create_task_group() as tasks:
            stream = _Stream(send, self.interval, tasks)
            try:
                await self.app(scope, receive, stream.send)
            except Exception as exc:
                # Re-raised below as it is: a task group would wrap it in an ExceptionGroup.
                error = exc
            finally:
                stream.stop()  # the heartbeat task returns by itself: nothing is cancelled
        if error is not None:
            try:
                raise error
            finally:
                del error  # no frame <-> traceback cycle


class _Stream:
    """One response: forwards the inner app's messages and beats while it is idle.

    ASGI sends must never overlap: the inner app's send waits while a heartbeat is on the wire,
    and the heartbeat skips its turn while the inner app is sending (the stream is not idle).
    Flags and events rather than a lock, because a lock's checkpoint on every chunk costs more
    than the heartbeat saves.
    """

    __slots__ = (
        "at_boundary",
        "beating",
        "finished",
        "interval",
        "last_sent",
        "real_send",
        "sending",
        "tasks",
    )

    def __init__(self, send: Send, interval: float, tasks: anyio.abc.TaskGroup) -> None:
        self.real_send = send
        self.interval = interval
        self.tasks = tasks
        #: Created with the heartbeat task, for an SSE response only; set when the response ends.
        self.finished: anyio.Event | None = None
        #: Set while a heartbeat is being sent.
        self.beating: anyio.Event | None = None
        self.sending = False
        self.last_sent = 0.0
        self.at_boundary = True

    def stop(self) -> None:
        if self.finished is not None:
            self.finished.set()

    async def send(self, message: Message) -> None:
        if self.finished is None:
            if message["type"] == "http.response.start" and _is_sse(message):
                self.finished = anyio.Event()
                self.last_sent = anyio.current_time()
                self.tasks.start_soon(self._beat, self.finished)
            await self.real_send(message)
            return
        beating = self.beating
        if beating is not None:
            await beating.wait()
        self.sending = True
        try:
            await self.real_send(message)
        finally:
            self.sending = False
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                self.last_sent = anyio.current_time()
                self.at_boundary = body.endswith(_EVENT_ENDS)
            if not message.get("more_body", False):
                self.stop()

    async def _beat(self, finished: anyio.Event) -> None:
        while not finished.is_set():
            with anyio.move_on_after(self.last_sent + self.interval - anyio.current_time()):
                await finished.wait()
            if finished.is_set():
                return
            now = anyio.current_time()
            if now - self.last_sent < self.interval:
                continue
            if self.sending or not self.at_boundary:
                # Not idle, or mid-event (a comment would split the event): wait a full interval.
                self.last_sent = now
                continue
            beating = self.beating = anyio.Event()
            try:
                await self.real_send(
                    {"type": "http.response.body", "body": _COMMENT, "more_body": True}
                )
            except Exception:
                return  # the client left: the inner app finds out on its own next send
            finally:
                self.beating = None
                beating.set()
            self.last_sent = anyio.current_time()


def _is_sse(message: Message) -> bool:
    value = find_header(message.get("headers", ()), b"content-type")
    return value is not None and value.split(b";")[0].strip().lower() == b"text/event-stream"
