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
from collections import deque
from typing import Any, Final

import anyio

from ._asgi import route_path
from ._endpoints import remember_resolution, resolve
from ._types import ASGIApp, Message, Receive, Scope, Send
from .context import get_context, request_context
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
        self._deadlines: _Deadlines | None = None  # under asyncio: on the loop last seen

    def __repr__(self) -> str:
        return f"RequestBodyTimeout({self.app!r}, timeout={self.timeout})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        resolution = resolve(scope, route_path(scope))
        if resolution is None:
            await self.app(scope, receive, send)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): an anyio cancel scope
            loop = None
        # Any: ``uncancel`` and ``cancelling`` are Python 3.11+ (``_CAN_UNCANCEL``).
        task: Any = None
        if loop is not None and _CAN_UNCANCEL:
            task = asyncio.current_task(loop)
        if loop is None or task is None:  # not asyncio, no task (or Python 3.10)
            scope, send, ctx = request_context(scope, send)
            remember_resolution(scope, resolution)
            if await self._in_cancel_scope(scope, receive, send):
                await self._refuse(ctx.request_id, send)
            return
        deadlines = self._deadlines
        if deadlines is None or deadlines.loop is not loop:
            deadlines = self._deadlines = _Deadlines(loop, self.timeout)
        watch = deadlines.add(task)
        if get_context(scope) is None:
            # Ours to create: the context's own send wrapper reports the response start.
            scope, send, ctx = request_context(scope, send, watch.response_started)
            inner_send = send
        else:
            scope, send, ctx = request_context(scope, send)
            inner_send = _tracking_send(send, watch)
        remember_resolution(scope, resolution)  # the layers inside need not resolve it again
        # asyncio: the request's task is cancelled if its body is still unread at its deadline
        # (as ``asyncio.timeout`` does, and undone the same way). An anyio cancel scope's enter
        # and exit cost several microseconds of CPU per request, and so does a loop timer armed
        # and cancelled per request; the deadlines of one layer on one loop share one timer
        # instead (:class:`_Deadlines`). (Inline rather than a method: a coroutine less.)

        async def timed_receive() -> Message:
            message = await receive()
            if not watch.lifted and (
                message["type"] != "http.request" or not message.get("more_body", False)
            ):
                watch.lift()
            return message

        try:
            await self.app(scope, timed_receive, inner_send)
        except asyncio.CancelledError:
            # Ours only when our deadline cancelled the task and nobody else did as well.
            if watch.fired and task.uncancel() <= watch.cancelling:
                timed_out = not watch.started
            else:
                raise
        except BaseException:
            if watch.fired:  # the inner app turned our cancellation into an error
                task.uncancel()
            raise
        else:
            if watch.fired:  # the inner app swallowed our cancellation: undo it all the same
                task.uncancel()
            timed_out = False
        finally:
            watch.lift()  # a deadline left pending would cancel the task after this request
        if timed_out:
            await self._refuse(ctx.request_id, send)

    async def _refuse(self, request_id: str, send: Send) -> None:
        """The 408 of a request whose body did not arrive in time."""
        logger.info(
            "request %s: body not complete within %s s; answered 408", request_id, self.timeout
        )
        await send_error(
            send,
            GatewayError(
                "request_timeout",
                f"The request body did not arrive within {self.timeout:g} seconds.",
                headers={"Connection": "close"},
            ),
        )

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
#: A loop may run a timer a little before its time (within its clock's resolution; uvloop's is a
#: millisecond): a deadline that close counts as come, rather than re-arming the timer in a spin.
_EARLY: Final = 0.001


class _Watch:
    """One timed request under asyncio: lifted once its body is complete or its response has
    started, fired (its task cancelled) if its deadline comes first."""

    __slots__ = ("cancelling", "deadline", "deadlines", "fired", "lifted", "started", "task")

    def __init__(self, task: Any, deadline: float, deadlines: _Deadlines) -> None:
        self.task = task  # an asyncio.Task with ``cancelling`` (Python 3.11+)
        #: Cancellations requested before the request began (``uncancel`` returns to it when
        #: ours is the only one since).
        self.cancelling: int = task.cancelling()
        self.deadline = deadline
        self.deadlines = deadlines
        self.lifted = False  # no longer timed (body complete, response started, or fired)
        self.started = False  # the response has started
        self.fired = False  # the deadline cancelled the task

    def response_started(self) -> None:
        if not self.started:
            self.started = True
            self.lift()

    def lift(self) -> None:
        if not self.lifted:
            self.lifted = True
            self.task = None  # a finished request's task is not kept alive by its entry
            self.deadlines.live -= 1

    def fire(self) -> None:
        task = self.task
        self.lift()
        self.fired = True
        task.cancel()


def _tracking_send(send: Send, watch: _Watch) -> Send:
    """``send`` reporting the response start to ``watch`` (when the context was not ours)."""

    async def tracking_send(message: Message) -> None:
        if not watch.started and message["type"] == "http.response.start":
            watch.response_started()
        await send(message)

    return tracking_send


class _Deadlines:
    """The timed requests of one layer on one event loop, oldest first, under one loop timer.

    Every request gets the same timeout, so deadlines come in the order requests arrive: a
    deque, with the timer armed for the oldest pending one. A lifted request stays in the deque
    until the timer passes it or the deque is compacted (when over half of it is lifted), so
    memory stays within twice the requests still reading their body.
    """

    __slots__ = ("handle", "live", "loop", "pending", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.pending: deque[_Watch] = deque()
        #: Entries of ``pending`` not lifted yet.
        self.live = 0
        self.handle: asyncio.TimerHandle | None = None

    def add(self, task: Any) -> _Watch:
        watch = _Watch(task, self.loop.time() + self.timeout, self)
        pending = self.pending
        if len(pending) > 2 * self.live + 32:
            pending = self.pending = deque(w for w in pending if not w.lifted)
        pending.append(watch)
        self.live += 1
        if self.handle is None:
            self.handle = self.loop.call_at(watch.deadline, self._expire)
        return watch

    def _expire(self) -> None:
        self.handle = None
        now = self.loop.time()
        pending = self.pending
        while pending:
            watch = pending[0]
            if not watch.lifted:
                if watch.deadline > now + _EARLY:
                    self.handle = self.loop.call_at(watch.deadline, self._expire)
                    return
                watch.fire()
            pending.popleft()


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunked)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False
