"""``RequestBodyTimeout``: a request body must arrive within a bounded time (slowloris).

A client that sends headers and then trickles (or never finishes) its body would otherwise hold
a connection, a file descriptor and a task for ever: with enough of them the server runs out of
file descriptors and normal requests time out. This outermost layer gives every gateway request
(``/v1/...``, see ``akgate._endpoints``) ``timeout`` seconds from its start to deliver its whole
body (or to have its response started). Past that, the layers inside are cancelled, and the
client gets ``408 request_timeout`` with ``Connection: close``, so the server frees the
connection. Requests without a body (no ``Content-Length`` or ``0``, not chunked) cost nothing.
Requests to the app's own paths are left alone (uploads may legitimately be slow).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Final

import anyio

from ._asgi import route_path
from ._endpoints import resolve
from ._types import ASGIApp, Message, Receive, Scope, Send
from .context import request_context
from .errors import GatewayError, send_error

__all__ = ["DEFAULT_BODY_TIMEOUT", "RequestBodyTimeout"]

logger = logging.getLogger("akgate")

#: Seconds from the start of a request to the end of its body (a 32 MiB body at 1 MB/s fits).
DEFAULT_BODY_TIMEOUT: Final = 60.0


class RequestBodyTimeout:
    """Answer ``408 request_timeout`` when a gateway request's body is not complete in time.

    Options (keyword-only):

    * ``timeout``: seconds from the request's start to the end of its body.

    See ``docs/security.md#slow-clients``.
    """

    def __init__(self, app: ASGIApp, *, timeout: float = DEFAULT_BODY_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.app = app
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RequestBodyTimeout({self.app!r}, timeout={self.timeout})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not _has_body(scope)
            or resolve(scope, route_path(scope)) is None
        ):
            await self.app(scope, receive, send)
            return
        scope, send, ctx = request_context(scope, send)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): an anyio cancel scope
            timed_out = await self._in_cancel_scope(scope, receive, send)
        else:
            timed_out = await self._with_loop_timer(loop, scope, receive, send)
        if timed_out:
            logger.info(
                "request %s: body not complete within %s s; answered 408",
                ctx.request_id,
                self.timeout,
            )
            await send_error(
                send,
                GatewayError(
                    "request_timeout",
                    f"The request body did not arrive within {self.timeout:g} seconds.",
                    headers={"Connection": "close"},
                ),
            )

    async def _with_loop_timer(
        self, loop: asyncio.AbstractEventLoop, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """asyncio: one loop timer per request that cancels the request's task if the body is
        still unread when it fires (as ``asyncio.timeout`` does, and undone the same way);
        whether the request timed out. An anyio cancel scope's enter and exit cost several
        microseconds of CPU per request (``docs/benchmarks.md``, "The whole default stack")."""
        # Any: ``uncancel`` and ``cancelling`` are Python 3.11+ (``_CAN_UNCANCEL``).
        task: Any = asyncio.current_task()
        if task is None or not _CAN_UNCANCEL:  # pragma: no cover - no task, or Python 3.10
            return await self._in_cancel_scope(scope, receive, send)
        watch = _Watch(task, task.cancelling())
        handle = loop.call_later(self.timeout, watch.fire)
        watch.handle = handle

        async def timed_receive() -> Message:
            message = await receive()
            if not watch.lifted and (
                message["type"] != "http.request" or not message.get("more_body", False)
            ):
                watch.lift()
            return message

        async def tracking_send(message: Message) -> None:
            if not watch.started and message["type"] == "http.response.start":
                watch.started = True
                watch.lift()
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except asyncio.CancelledError:
            # Ours only when our timer cancelled the task and nobody else did as well.
            if not watch.fired or task.uncancel() > watch.cancelling:
                raise
            return not watch.started
        finally:
            handle.cancel()  # a timer left armed would cancel the task after this request
        if watch.fired:  # the inner app swallowed our cancellation: undo it all the same
            task.uncancel()
        return False

    async def _in_cancel_scope(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Any event loop: the layers inside run in an anyio cancel scope with a deadline that
        is lifted as soon as the body is complete or the response has started."""
        started = False
        with anyio.CancelScope() as bound:
            bound.deadline = anyio.current_time() + self.timeout

            def lift() -> None:
                bound.deadline = math.inf

            async def timed_receive() -> Message:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    lift()
                return message

            async def tracking_send(message: Message) -> None:
                nonlocal started
                if not started and message["type"] == "http.response.start":
                    started = True
                    lift()
                await send(message)

            await self.app(scope, timed_receive, tracking_send)
        return bound.cancelled_caught and not started


#: ``Task.uncancel`` (Python 3.11+) lets a cancellation of ours be told from anyone else's.
_CAN_UNCANCEL: Final = hasattr(asyncio.Task, "uncancel")


class _Watch:
    """The state of one timed request under asyncio, read by its timer."""

    __slots__ = ("cancelling", "fired", "handle", "lifted", "started", "task")

    def __init__(self, task: Any, cancelling: int) -> None:
        self.task = task  # an asyncio.Task with ``cancelling`` (Python 3.11+)
        #: Cancellations requested before the request began (``uncancel`` returns to it when
        #: ours is the only one since).
        self.cancelling = cancelling
        self.handle: asyncio.TimerHandle | None = None
        self.lifted = False  # the body is complete or the response has started
        self.started = False  # the response has started
        self.fired = False  # the timer cancelled the task

    def lift(self) -> None:
        self.lifted = True
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.cancel()

    def fire(self) -> None:
        if self.lifted:
            return
        self.fired = True
        self.task.cancel()


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunked)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False
