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
from collections.abc import Callable
from typing import Final

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
    """Answer ``408 request_timeout`` when a gateway request's body is not complete within
    ``timeout`` seconds of the request's start. See ``docs/security.md#slow-clients``."""

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
        started = False
        # One cancel scope per request (not one per receive: each costs microseconds), lifted
        # as soon as the body is complete or the response has started. Under asyncio its
        # deadline is a plain loop timer: cheaper to arm and to lift than a scope deadline.
        with anyio.CancelScope() as bound:
            lift = _arm(bound, self.timeout)

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

            try:
                await self.app(scope, timed_receive, tracking_send)
            finally:
                lift()  # a timer left armed would cancel the scope after it has exited
        if bound.cancelled_caught and not started:
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


def _arm(bound: anyio.CancelScope, timeout: float) -> Callable[[], None]:
    """Cancel ``bound`` in ``timeout`` seconds; returns what lifts that (safe to call twice)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio): the scope's own deadline
        bound.deadline = anyio.current_time() + timeout

        def lift() -> None:
            bound.deadline = math.inf

        return lift
    return loop.call_later(timeout, bound.cancel).cancel


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunked)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False
