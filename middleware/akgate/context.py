"""The per-request context that layers share through one scope key.

Each layer reads what an outer layer already computed (the body, the parsed request, the caller's
identity) and computes it itself when absent, so every layer works alone and a full stack reads
and parses the body once. The context lives under ``scope["akgate"]``; a route reads it with
:func:`get_context` (``request.scope`` in Starlette/FastAPI, ``request.scope`` in Django).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._query import scrub_query
from ._types import Message, Receive, Scope, Send

__all__ = [
    "MAX_WARNINGS",
    "SCOPE_KEY",
    "Endpoint",
    "ErrorFormat",
    "Identity",
    "RequestContext",
    "current_request_id",
    "error_format_for",
    "get_context",
    "new_request_id",
    "request_context",
]

SCOPE_KEY: Final = "akgate"

#: Warnings kept per request: more are dropped (a request can name any number of unknown
#: fields, blocked keys or reasoning items; each check stays O(1) and the metadata stays small).
MAX_WARNINGS: Final = 100

Endpoint = Literal["chat_completions", "responses", "messages"]
#: Which error envelope a request's failures are answered in (see ``akgate.errors.send_error``).
ErrorFormat = Literal["auriko", "anthropic"]
#: Paths answered in Anthropic's error envelope (``/v1/messages`` and below it).
ANTHROPIC_PATH_PREFIX: Final = "/v1/messages"


#: The error envelope of the request the current task is serving, set by the layer that creates
#: the request's context. ``send_error`` reads it when no context is passed, so a layer that only
#: has ``send`` (any layer, ours or a user's) still answers in the endpoint's envelope. The ASGI
#: servers run each request in its own task, so the value never crosses requests.
_ERROR_FORMAT: ContextVar[tuple[ErrorFormat, str | None]] = ContextVar(
    "akgate_error_format", default=("auriko", None)
)


def current_error_format() -> tuple[ErrorFormat, str | None]:
    """``(error envelope, request id)`` of the request being served in this task
    (``("auriko", None)`` outside one)."""
    return _ERROR_FORMAT.get()


def error_format_for(path: str) -> ErrorFormat:
    """The error envelope of the endpoint at ``path`` (a route path, below ``root_path``)."""
    if path.startswith(ANTHROPIC_PATH_PREFIX) and (
        len(path) == len(ANTHROPIC_PATH_PREFIX) or path[len(ANTHROPIC_PATH_PREFIX)] == "/"
    ):
        return "anthropic"
    return "auriko"


# Request ids need to be unique, not secret: a random per-process prefix plus a counter costs a
# fraction of a microsecond, where a fresh token from the OS costs about two.
_ID_PREFIX: Final = "req_" + secrets.token_hex(6)
#: Counts from 2**48: ``hex(n)[3:]`` is then the count's 12 hex digits (``f"{n:012x}"`` of the
#: count from 1), without parsing a format spec on every request (unique for 2**48 requests).
_ID_BASE: Final = 1 << 48
_id_counter = itertools.count(_ID_BASE + 1)


def new_request_id() -> str:
    return _ID_PREFIX + hex(next(_id_counter))[3:]


def current_request_id() -> str | None:
    """The ``X-Request-ID`` of the request this code runs for (None outside one)."""
    # For log records (``akgate.ops.RequestIdFilter``): set where the context is created, with
    # the error envelope; a server runs each request in its own task, whose context copy ends
    # with it.
    return _ERROR_FORMAT.get()[1]


@dataclass(slots=True)
class Identity:
    """Who is calling: set by the auth layer, read by later layers and by the wrapped app.

    Never holds the secret: only the public key id (e.g. ``ak_live_abcdefgh``).
    """

    key_id: str
    name: str = ""
    workspace_id: str = "default"
    workspace_name: str = "default"
    environment: Literal["live", "test"] = "live"
    scopes: tuple[str, ...] = ()
    #: Models this key may call (empty: any).
    allowed_models: tuple[str, ...] = ()
    rate_limit_rpm: int | None = None
    expires_at: float | None = None
    created_at: float | None = None
    profile: str = "inference"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RequestContext:
    """State of one request, shared by every akgate layer it crosses."""

    request_id: str = field(default_factory=new_request_id)
    #: ``time.perf_counter()`` when the outermost layer saw the request.
    started: float = field(default_factory=time.perf_counter)
    identity: Identity | None = None
    #: The raw request body, once a layer has read it.
    body: bytes | None = None
    #: The ``receive`` that follows the body (disconnects arrive here); set with ``body``.
    raw_receive: Receive | None = None
    #: The parsed JSON object (normalized in place by the validation layer).
    payload: dict[str, Any] | None = None
    endpoint: Endpoint | None = None
    #: True once the validation layer has checked and normalized ``payload``.
    validated: bool = False
    #: Structured warnings ``{"type", "code", "message"}`` for ``routing_metadata.warnings``.
    warnings: list[dict[str, str]] = field(default_factory=list)
    #: Free-form slots for layers (routing decision, attempts, usage, cost ...).
    state: dict[str, Any] = field(default_factory=dict)
    #: ``(scope path, akgate._endpoints.Resolution | None)``: the endpoint-table lookup of the
    #: path, made once per stack (a child context's scope has its own path, so it starts empty).
    route: tuple[str, object] | None = None
    #: The error envelope of the endpoint this request is for (set from the path once, by the
    #: layer that creates the context; a child follows its endpoint).
    error_format: ErrorFormat = "auriko"

    def child(self, payload: dict[str, Any], body: bytes, endpoint: Endpoint) -> RequestContext:
        """The context of a rewritten request for an inner layer (one routing attempt, the
        adapter's chat request): its own ``payload``/``body``/``endpoint``, while ``identity``,
        ``warnings`` and ``state`` stay shared with this one, so what inner layers record reaches
        ``routing_metadata``. Spelled out rather than ``dataclasses.replace``, which costs over a
        microsecond per call."""
        return RequestContext(  # (positional: faster to bind than keywords)
            self.request_id,
            self.started,
            self.identity,
            body,
            self.raw_receive,
            payload,
            endpoint,
            self.validated,
            self.warnings,
            self.state,
            None,
            "anthropic" if endpoint == "messages" else "auriko",
        )

    def warn(self, type_: str, code: str, message: str) -> None:
        """Record a structured warning (deduplicated on ``(type, code)``, at most
        :data:`MAX_WARNINGS` per request)."""
        if len(self.warnings) >= MAX_WARNINGS:
            return
        for existing in self.warnings:
            if existing["type"] == type_ and existing["code"] == code:
                return
        self.warnings.append({"type": type_, "code": code, "message": message})


def get_context(scope: Scope) -> RequestContext | None:
    """The akgate context of this request, if an akgate layer has seen it."""
    ctx = scope.get(SCOPE_KEY)
    return ctx if isinstance(ctx, RequestContext) else None


def request_context(
    scope: Scope, send: Send, on_start: Callable[[], None] | None = None
) -> tuple[Scope, Send, RequestContext]:
    """Return ``(scope, send, ctx)``, creating the context if no outer layer did.

    The layer that creates the context owns the ``X-Request-ID`` response header: its ``send`` is
    wrapped to add it (unless the inner app already set one). The scope is copied, never mutated,
    except that credentials are removed from its query string (:func:`akgate._query.scrub_query`).

    ``on_start`` (only used when the context is created here) is called as the response starts,
    from that same wrapper: a layer that must see the start does so without a ``send`` wrapper
    of its own (each wrapper costs a coroutine per message).
    """
    ctx = scope.get(SCOPE_KEY)
    if ctx is not None and isinstance(ctx, RequestContext):  # get_context, inlined
        return scope, send, ctx
    scope, ctx = open_context(scope)
    return scope, _with_request_id(send, ctx.request_id.encode(), on_start), ctx


def open_context(scope: Scope, path: str | None = None) -> tuple[Scope, RequestContext]:
    """``(scope, ctx)``: a new context for a request that has none, in a copy of ``scope``.

    What :func:`request_context` does when it creates the context, without the ``send`` wrapper:
    for a layer that adds the ``X-Request-ID`` header (:func:`with_request_id`) in a ``send``
    wrapper of its own. ``path``: the route path (``akgate._asgi.route_path``), when the caller
    has it.
    """
    # The outermost akgate layer: a key in the URL goes before the server logs it (in place,
    # see akgate._query) and before any layer can forward it.
    if scope.get("query_string"):
        scrub_query(scope)
    if path is None:
        path = scope.get("path", "")
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path) and path != root_path:
            path = path[len(root_path) :]
    error_format: ErrorFormat = "auriko"
    if path.startswith(ANTHROPIC_PATH_PREFIX):
        error_format = error_format_for(path)
    # An incoming X-Request-ID is honoured when it is short and printable, as a proxy would.
    request_id: str | None = None
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if 0 < len(value) <= 128 and value.isascii() and value.decode().isprintable():
                request_id = value.decode()
            break
    if request_id is None:
        request_id = _ID_PREFIX + hex(next(_id_counter))[3:]  # (new_request_id, inline)
    # (Positional: the generated __init__ binds them faster than keywords and default factories.)
    ctx = RequestContext(
        request_id,
        time.perf_counter(),
        None,
        None,
        None,
        None,
        None,
        False,
        [],
        {},
        None,
        error_format,
    )
    # One context variable for both the envelope and the id (``current_request_id``).
    _ERROR_FORMAT.set((error_format, request_id))
    return {**scope, SCOPE_KEY: ctx}, ctx


def with_request_id(message: Any, request_id: bytes) -> Any:
    """The response start ``message`` with ``X-Request-ID: request_id`` added, unless it has one
    (then ``message`` itself)."""
    headers = message.get("headers", ())
    for name, _ in headers:
        # (Only a 12-byte name is lowered: lowering every name costs more.)
        if len(name) == 12 and name.lower() == b"x-request-id":
            return message
    return {**message, "headers": [*headers, (b"x-request-id", request_id)]}


def start_with_request_id(
    message: Message, request_id: bytes | None
) -> tuple[Message, bytes | None]:
    """``(message, content type)``: :func:`with_request_id` of the response
    start ``message`` (unchanged when ``request_id`` is ``None``) and the value its
    :func:`akgate._keepalive._is_sse` and the operations layers' observation read, from one pass
    over its headers (both names are 12 bytes: only those are lowered)."""
    headers = message.get("headers", ())
    content_type: bytes | None = None
    has_id = False
    for name, value in headers:
        if len(name) == 12:
            lowered = name.lower()
            if lowered == b"content-type":
                if content_type is None:
                    content_type = value
            elif lowered == b"x-request-id":
                has_id = True
    if not has_id and request_id is not None:
        message = {**message, "headers": [*headers, (b"x-request-id", request_id)]}
    return message, content_type


def _with_request_id(
    send: Send, request_id: bytes, on_start: Callable[[], None] | None = None
) -> Send:
    """``send`` adding ``X-Request-ID: request_id`` to the response (unless the app set one),
    calling ``on_start`` first on the response start."""

    async def send_with_request_id(message: Any) -> None:
        if message["type"] == "http.response.start":
            if on_start is not None:
                on_start()
            message = with_request_id(message, request_id)
        await send(message)

    return send_with_request_id
