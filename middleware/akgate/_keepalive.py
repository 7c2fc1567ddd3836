"""``SSEKeepAlive``: SSE comment heartbeats on idle chat and Responses streams.

Long reasoning or a slow upstream can leave a stream silent for minutes, and proxies and load
balancers cut connections that stay idle that long. Once a stream has sent nothing for
``interval`` seconds, this layer sends an SSE comment (``: keep-alive``), which every SSE client
ignores: it is not an event, so it carries no ``sequence_number`` and changes none.

A heartbeat only goes out between events (after a blank line), never inside one, and the
inner app's bytes are forwarded as they come: the layer holds nothing back. One lock orders the
inner app's ``send`` and the heartbeat's, since an ASGI ``send`` must not run twice at once.
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

    :param interval: idle seconds before a heartbeat (then one per idle interval).
    :param paths: the request paths whose ``text/event-stream`` responses get heartbeats.
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
                stream.done = True
                tasks.cancel_scope.cancel()
        if error is not None:
            try:
                raise error
            finally:
                del error  # no frame <-> traceback cycle


class _Stream:
    """One response: forwards the inner app's messages and beats while it is idle."""

    __slots__ = ("at_boundary", "done", "interval", "last_sent", "lock", "real_send", "tasks")

    def __init__(self, send: Send, interval: float, tasks: anyio.abc.TaskGroup) -> None:
        self.real_send = send
        self.interval = interval
        self.tasks = tasks
        self.lock: anyio.Lock | None = None  # created only for an SSE response
        self.last_sent = 0.0
        self.at_boundary = True
        self.done = False

    async def send(self, message: Message) -> None:
        lock = self.lock
        if lock is None:
            if message["type"] == "http.response.start" and _is_sse(message):
                self.lock = anyio.Lock()
                self.last_sent = anyio.current_time()
                self.tasks.start_soon(self._beat)
            await self.real_send(message)
            return
        async with lock:
            await self.real_send(message)
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                self.last_sent = anyio.current_time()
                self.at_boundary = body.endswith(_EVENT_ENDS)
            if not message.get("more_body", False):
                self.done = True

    def _finished(self) -> bool:
        return self.done

    async def _beat(self) -> None:
        lock = self.lock
        assert lock is not None
        while not self.done:
            try:
                await anyio.sleep(max(0.0, self.last_sent + self.interval - anyio.current_time()))
            except anyio.get_cancelled_exc_class():
                if self._finished():
                    # Our own stop at the end of the response: return rather than re-raise, so
                    # that no cancellation traceback (a frame cycle) outlives the request.
                    return
                raise
            if self.done or anyio.current_time() - self.last_sent < self.interval:
                continue
            if not self.at_boundary:
                # Mid-event: a comment here would split the event. Wait for the rest of it.
                self.last_sent = anyio.current_time()
                continue
            async with lock:
                if self._finished():  # the last body went out while we waited for the lock
                    return
                try:
                    await self.real_send(
                        {"type": "http.response.body", "body": _COMMENT, "more_body": True}
                    )
                except Exception:
                    return  # the client left: the inner app finds out on its own next send
            self.last_sent = anyio.current_time()


def _is_sse(message: Message) -> bool:
    value = find_header(message.get("headers", ()), b"content-type")
    return value is not None and value.split(b";")[0].strip().lower() == b"text/event-stream"
