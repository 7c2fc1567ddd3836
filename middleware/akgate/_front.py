"""The entry of :class:`~akgate.GatewayApp` for HTTP: the body-time bound, SSE heartbeats and
bounded pieces in one coroutine and one ``send`` wrapper.

:func:`~akgate.gateway` runs :class:`~akgate.RequestBodyTimeout` outermost, then
:class:`~akgate.SSEKeepAlive`, and sends every answer in bounded pieces (``akgate._pieces``).
Composed, that is three coroutines per request and three ``send`` wrappers per message sent (the
request context's, the heartbeat's and the pieces'), where a JSON answer needs none of the
heartbeat's or the pieces' work. For the request most traffic sends (a gateway path with a
body, under asyncio with ``Task.uncancel``; no akgate context yet, or the one ``akgate serve``'s
operations layers made outside), :class:`Front` does what the three do, in one step: the same
deadline (on the layer's own timer), the same request context, the same heartbeat stream once
an event stream starts, the same pieces. Every other request goes
through the composition itself. ``tests/core/test_front.py`` compares the two on the same
requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import FunctionType, MethodType
from typing import Any, Final, cast

from ._body_timeout import _CAN_UNCANCEL, RequestBodyTimeout, _Deadlines
from ._endpoints import resolve
from ._keepalive import SSEKeepAlive, _is_event_stream, _TimerStream
from ._pieces import PIECE_SIZE
from ._types import ASGIApp, Message, Receive, Scope, Send
from .context import SCOPE_KEY, RequestContext, open_context, start_with_request_id

__all__ = ["Front"]

_START: Final = "http.response.start"
_BODY: Final = "http.response.body"


class Front:
    """``bound`` (a :class:`RequestBodyTimeout` around ``heartbeat``, an :class:`SSEKeepAlive`)
    with ``send`` split by ``pieces``, in one step for the common request.

    ``pieces`` is :func:`akgate._pieces.piecewise` (or a replacement of it); a body message of
    at most ``piece`` bytes goes out as it is, without it.
    """

    __slots__ = ("bound", "heartbeat", "inner", "piece", "pieces")

    def __init__(
        self,
        bound: RequestBodyTimeout,
        heartbeat: SSEKeepAlive,
        pieces: Callable[[Send], Send],
        piece: int = PIECE_SIZE,
    ) -> None:
        if bound.app is not heartbeat:
            raise ValueError("bound must wrap heartbeat")
        self.bound = bound
        self.heartbeat = heartbeat
        self.pieces = pieces
        self.piece = piece
        #: The heartbeat layer's app, called as a bound method when it is a layer object: an
        #: object's ``__call__`` is found and bound on every call otherwise.
        inner = heartbeat.app
        call = getattr(type(inner), "__call__", None)  # noqa: B004 (the method, not a test)
        self.inner = (
            cast(ASGIApp, MethodType(call, inner)) if isinstance(call, FunctionType) else inner
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # (HTTP scopes only.) Where the body-time bound passes the request on untouched (no
        # body, not a gateway path), the heartbeat layer gets it directly, as it would.
        has_body = False
        for name, value in scope.get("headers", ()):  # (_has_body, inline: a call less)
            if name == b"content-length":
                has_body = value.strip() not in (b"0", b"")
                break
            if name == b"transfer-encoding":
                has_body = True
                break
        if not has_body:
            await self.heartbeat(scope, receive, self.pieces(send))
            return
        path: str = scope["path"]  # (route_path, inline)
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path) and path != root_path:
            path = path[len(root_path) :]
        resolution = resolve(scope, path)
        if resolution is None:
            await self.heartbeat(scope, receive, self.pieces(send))
            return
        bound = self.bound
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        task: Any = None
        if loop is not None and _CAN_UNCANCEL:
            task = asyncio.current_task(loop)
        known = scope.get(SCOPE_KEY)
        if task is None or (known is not None and type(known) is not RequestContext):
            # Another event loop, no task, or a context of another kind: the composition.
            await bound(scope, receive, self.pieces(send))
            return
        assert loop is not None
        # What RequestBodyTimeout.__call__ does under asyncio.
        deadlines = bound._deadlines
        if deadlines is None or deadlines.loop is not loop:
            deadlines = bound._deadlines = _Deadlines(loop, bound.timeout)
        watch = deadlines.add(task)
        if known is None:
            scope, ctx = open_context(scope, path)
            # Ours to add: the front made the context (else the layer that did adds it).
            request_id: bytes | None = ctx.request_id.encode()
        else:
            # A context an outer layer made (akgate serve's operations layers): it adds the
            # X-Request-ID.
            ctx = known
            request_id = None
        if ctx.route is None and not resolution.rewrite:
            ctx.route = (scope["path"], resolution)  # (remember_resolution: resolved once)
        heartbeat = self.heartbeat
        beats = path.rstrip("/") in heartbeat.paths
        piece = self.piece
        stream: _TimerStream | None = None

        async def front_send(message: Message) -> None:
            # The request context's wrapper (response start, X-Request-ID), then the heartbeat
            # layer's (an event stream gets its stream, which then sees every message), then
            # the pieces (only a body larger than one piece needs them).
            nonlocal stream
            if stream is not None:
                await stream.send(message)
                return
            kind = message["type"]
            if kind == _START:
                watch.response_started()
                message, content_type = start_with_request_id(message, request_id)
                if (
                    beats
                    and content_type is not None
                    and len(content_type) >= 17  # (``text/event-stream``: a JSON type is shorter)
                    and _is_event_stream(content_type)
                ):
                    stream = _TimerStream(self.pieces(send), heartbeat.interval, loop)
                    await stream.send(message)
                    return
            elif kind == _BODY and len(message.get("body", b"")) > piece:
                await self.pieces(send)(message)
                return
            await send(message)

        async def timed_receive() -> Message:
            message = await receive()
            if not watch.lifted and (
                message["type"] != "http.request" or not message.get("more_body", False)
            ):
                watch.lift()
            return message

        try:
            await self.inner(scope, timed_receive, front_send)
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
            if stream is not None:
                stream.stop()
            if not watch.lifted:  # a deadline left pending would cancel the task after this
                watch.lift()
        if timed_out:
            # As the composition sends it: through the context's wrapper when the front made
            # the context, else in pieces past the heartbeat layer.
            await bound._refuse(
                ctx.request_id, front_send if request_id is not None else self.pieces(send)
            )
