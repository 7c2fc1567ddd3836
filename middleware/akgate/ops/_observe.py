"""What the operations layers (access log, metrics, traces) see of one request.

An :class:`Observation` wraps ``send`` to note the status, whether the answer streams, when its
first (streams) and last bytes left, and (for error answers only, which are small) the error
code; the rest (key id, workspace, endpoint, model, provider, tokens, cost, fallbacks) is read
from the request context once the answer is complete, where auth and routing recorded it.
Nothing is buffered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from akgate._asgi import parse_json_object, route_path
from akgate._types import Message, Scope, Send
from akgate.context import SCOPE_KEY, RequestContext, open_context, start_with_request_id

__all__ = [
    "OBSERVATION_KEY",
    "Observation",
    "answered",
    "endpoint_label",
    "observe",
    "observed_request",
    "release",
]

#: ``ctx.state`` key of the request's :class:`Observation`: the outermost operations layer makes
#: it and wraps ``send`` once; the layers inside share it (one wrapper per message, not four).
OBSERVATION_KEY: Final = "akgate.observation"

#: Error bodies larger than this are not read for their code (ours are a few hundred bytes).
_MAX_ERROR_BODY: Final = 16384
#: Before (or without) a gateway layer resolving the path: the endpoint table's names.
_KNOWN_PATHS: Final = {
    "/v1/chat/completions": "chat_completions",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
    "/v1/models": "models.list",
    "/v1/me": "me",
}


def endpoint_label(path: str, ctx: RequestContext | None) -> str:
    """A bounded name for the endpoint (metric labels must not grow with raw paths)."""
    if ctx is not None:
        if ctx.endpoint is not None:
            return ctx.endpoint
        # The endpoint table's row name, once a gateway layer resolved the path.
        spec = getattr(ctx.route[1], "spec", None) if ctx.route is not None else None
        name = getattr(spec, "name", None)
        if isinstance(name, str):
            return name
    path = path.rstrip("/") or "/"
    label = _KNOWN_PATHS.get(path)
    if label is not None:
        return label
    if path.startswith("/v1/models/"):
        return "models.retrieve"
    return "other"


class Observation:
    """One request as the operations layers report it."""

    __slots__ = (
        "_answered",
        "_error_body",
        "_metadata",
        "_routing",
        "_stream_listeners",
        "ctx",
        "ended",
        "error_code",
        "first_byte",
        "method",
        "path",
        "started",
        "status",
        "stream",
    )

    def __init__(self, scope: Scope, ctx: RequestContext, path: str | None = None) -> None:
        """``path``: the scope's route path (``route_path``), when the caller has it."""
        self.ctx = ctx
        self.method: str = scope.get("method", "GET")
        self.path: str = route_path(scope) if path is None else path
        self.started = time.perf_counter()
        self.status = 0
        self.stream = False
        #: When a streamed answer's first body byte left (``None`` for other answers).
        self.first_byte: float | None = None
        self.ended: float | None = None
        self.error_code: str | None = None
        self._error_body: bytearray | None = None
        self._stream_listeners: list[Callable[[], None]] = []
        #: What routing recorded, read once finish() ran (the layers report it several times).
        self._routing: dict[str, Any] | None = None
        self._metadata: dict[str, Any] | None = None
        #: What :func:`answered` returned once the request finished (the access log and the
        #: metrics both ask).
        self._answered: _Answered | None = None

    def on_stream_start(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when the answer turns out to be an event stream."""
        self._stream_listeners.append(listener)

    def wrap(self, send: Send, request_id: bytes | None = None) -> Send:
        """``send`` noting what the answer is; with ``request_id``, also the request context's
        wrapper (``X-Request-ID`` added to the start, as ``request_context``'s ``send`` does)."""

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                # One pass over the headers for the content type and the request id.
                message, content_type = start_with_request_id(message, request_id)
                self.status = int(message["status"])
                self.stream = content_type is not None and content_type.lower().startswith(
                    b"text/event-stream"
                )
                if self.status >= 400 and not self.stream:
                    self._error_body = bytearray()
                if self.stream:
                    for listener in self._stream_listeners:
                        listener()
            elif kind == "http.response.body":
                body = message.get("body", b"")
                # (Only a stream's first byte is read: ``ttft``.)
                if self.stream and body and self.first_byte is None:
                    self.first_byte = time.perf_counter()
                if self._error_body is not None and len(self._error_body) < _MAX_ERROR_BODY:
                    self._error_body += body[:_MAX_ERROR_BODY]
                if not message.get("more_body", False):
                    self.ended = time.perf_counter()
            await send(message)

        return observed_send

    def finish(self, exc: BaseException | None = None) -> None:
        """Call once the app returned or raised ``exc``: fixes the end time and the error."""
        if exc is not None and self.status == 0:
            if isinstance(exc, Exception):
                self.status = 500  # what a server answers for an app that raised before a start
                self.error_code = "internal_error"
            else:  # cancelled: the client went away first
                self.status = 499
                self.error_code = "client_disconnected"
        if self.ended is None:
            self.ended = time.perf_counter()
        if self._error_body:
            self.error_code = _error_code(bytes(self._error_body))
        self._error_body = None
        # The request is over: what routing recorded no longer changes.
        self._answered = None
        self._routing = self._read_routing()
        self._metadata = self._read_metadata()

    # -- what auth and routing recorded ----------------------------------------------------
    @property
    def endpoint(self) -> str:
        return endpoint_label(self.path, self.ctx)

    @property
    def duration(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def ttft(self) -> float | None:
        """Seconds to the first streamed byte (streams only)."""
        if not self.stream or self.first_byte is None:
            return None
        return self.first_byte - self.started

    @property
    def routing(self) -> dict[str, Any]:
        routing = self._routing
        return routing if routing is not None else self._read_routing()

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self._metadata
        return metadata if metadata is not None else self._read_metadata()

    def _read_routing(self) -> dict[str, Any]:
        value = self.ctx.state.get("routing")
        return value if isinstance(value, dict) else {}

    def _read_metadata(self) -> dict[str, Any]:
        value = self.routing.get("metadata")
        return value if isinstance(value, dict) else {}

    @property
    def requested_model(self) -> str | None:
        payload = self.ctx.payload
        model = payload.get("model") if isinstance(payload, dict) else None
        return model if isinstance(model, str) else None

    @property
    def model(self) -> str | None:
        """The model that answered (catalog id), else the one asked for."""
        value = self.metadata.get("model_canonical")
        return value if isinstance(value, str) else self.requested_model

    @property
    def provider_model(self) -> str | None:
        value = self.metadata.get("provider_model_id")
        return value if isinstance(value, str) else None

    @property
    def provider(self) -> str | None:
        value = self.metadata.get("provider")
        if isinstance(value, str):
            return value
        attempts = self.routing.get("attempts") or ()
        return str(attempts[-1]["provider"]) if attempts else None

    @property
    def tokens(self) -> tuple[int, int] | None:
        """``(input, output)`` as the provider reported them."""
        value = self.routing.get("tokens")
        return (int(value[0]), int(value[1])) if value is not None else None

    @property
    def cost(self) -> float | None:
        cost = self.metadata.get("cost")
        usd = cost.get("usd") if isinstance(cost, dict) else None
        return float(usd) if isinstance(usd, (int, float)) else None

    @property
    def fallbacks(self) -> int:
        """Attempts that failed before the one that answered (or before giving up)."""
        attempts = self.routing.get("attempts") or ()
        return max(0, len(attempts) - 1) if self.metadata else len(attempts)

    @property
    def key_id(self) -> str | None:
        identity = self.ctx.identity
        return identity.key_id if identity is not None else None

    @property
    def workspace(self) -> str | None:
        identity = self.ctx.identity
        return identity.workspace_id if identity is not None else None


#: ``(model, provider, tokens, cost, fallbacks)`` of a request (:func:`answered`).
_Answered = tuple[str | None, str | None, tuple[int, int] | None, float | None, int]


def answered(obs: Observation) -> _Answered:
    """``(model, provider, tokens, cost, fallbacks)``: the Observation's properties of those
    names, with what routing recorded read once. The access log and the metrics read them for
    every request; the properties stay their definition (``tests/ops`` holds both to it).
    Once the request finished, computed once (what routing recorded no longer changes)."""
    known = obs._answered
    if known is not None:
        return known
    routing = obs.routing
    metadata = obs.metadata
    attempts = routing.get("attempts") or ()
    model = metadata.get("model_canonical")
    if not isinstance(model, str):
        model = obs.requested_model
    provider = metadata.get("provider")
    if not isinstance(provider, str):
        provider = str(attempts[-1]["provider"]) if attempts else None
    value = routing.get("tokens")
    tokens = (int(value[0]), int(value[1])) if value is not None else None
    cost = metadata.get("cost")
    usd = cost.get("usd") if isinstance(cost, dict) else None
    result = (
        model,
        provider,
        tokens,
        float(usd) if isinstance(usd, (int, float)) else None,
        max(0, len(attempts) - 1) if metadata else len(attempts),
    )
    if obs._routing is not None:  # finished
        obs._answered = result
    return result


def observed_request(
    scope: Scope, send: Send, path: str | None = None
) -> tuple[Scope, Send, RequestContext, Observation]:
    """``request_context`` then :func:`observe`: ``(scope, send, ctx, obs)``. When the context
    is made here (the outermost akgate layer), the observation's ``send`` wrapper also adds the
    ``X-Request-ID`` header: one wrapper, a coroutine less per message sent. ``path``: the
    scope's route path, when the caller has it."""
    ctx = scope.get(SCOPE_KEY)
    if ctx is not None and isinstance(ctx, RequestContext):
        obs, send = observe(scope, send, ctx, path)
        return scope, send, ctx, obs
    scope, ctx = open_context(scope, path)
    obs = Observation(scope, ctx, path)
    ctx.state[OBSERVATION_KEY] = obs
    return scope, obs.wrap(send, ctx.request_id.encode()), ctx, obs


def release(ctx: RequestContext, obs: Observation) -> None:
    """For the layer that made ``obs`` (its ``send`` came back wrapped), once the request is
    over: the observation leaves the context and drops its stream listeners. They referred to
    each other (context -> state -> observation -> context; observation -> listener ->
    observation), so the context, the observation and all that hangs off them (~30 objects per
    request) waited for the garbage collector; now they are freed at once."""
    if ctx.state.get(OBSERVATION_KEY) is obs:
        del ctx.state[OBSERVATION_KEY]
    obs._stream_listeners.clear()


def observe(
    scope: Scope, send: Send, ctx: RequestContext, path: str | None = None
) -> tuple[Observation, Send]:
    """The request's observation and the ``send`` to pass on: a new one wrapping ``send`` for
    the outermost operations layer, the shared one and ``send`` unchanged for the others."""
    shared = ctx.state.get(OBSERVATION_KEY)
    if isinstance(shared, Observation):
        return shared, send
    obs = Observation(scope, ctx, path)
    ctx.state[OBSERVATION_KEY] = obs
    return obs, obs.wrap(send)


def _error_code(body: bytes) -> str | None:
    try:
        value = parse_json_object(body)
    except Exception:
        return None
    error = value.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return code if isinstance(code, str) and len(code) <= 64 else None
    return None
