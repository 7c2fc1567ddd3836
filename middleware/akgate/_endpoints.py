"""The one endpoint table and the one canonical-path rule every layer decides on.

Auth (public or not, which scope, whether the model allowlist applies), validation (which request
schema), routing (which endpoint kind) and :class:`~akgate.UpstreamProvider` (what may leave for
the upstream, with which methods) all read :data:`ENDPOINTS` through :func:`resolve`. Adding an
endpoint is adding a row here; see ``docs/design.md#the-endpoint-table``.

**The path rule** (``docs/security.md#one-canonical-path``). A request path belongs to the gateway
when it or its canonical form starts with ``/v1/`` (or is ``/v1``), compared case-insensitively, or
its canonical form is exactly the path of a table row outside ``/v1``. The canonical form of a
path resolves ``.`` and ``..`` segments, collapses empty segments (``//``), drops ``;``
parameters and a trailing ``/``.
For a gateway path:

* a path whose only difference from its canonical form is one trailing ``/`` is **rewritten** to
  the canonical path (``path`` and ``raw_path``) by the outermost akgate layer, so every layer and
  the wrapped app see the same path;
* any other difference (dot segments, ``//``, ``;``, a wrong-case literal such as ``/V1/`` or
  ``/v1/Chat/completions``, an encoded ``/ . ; \\ %`` or a NUL in the raw path, a ``%`` or ``\\``
  left after decoding) is **refused** with 404 ``resource_not_found``.

The server decodes the path once (``scope["path"]``); nothing here decodes it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from ._asgi import PERCENT, route_path, scope_with_path
from ._types import Scope, Send
from .context import Endpoint, RequestContext, get_context, request_context
from .errors import GatewayError, send_error

__all__ = [
    "ENDPOINTS",
    "GATEWAY_PREFIX",
    "EndpointSpec",
    "Forwarding",
    "Resolution",
    "canonical_path",
    "gateway_scope",
    "not_allowed",
    "remember_resolution",
    "resolve",
    "send_refused",
]

GATEWAY_PREFIX: Final = "/v1"

Forwarding = Literal["never", "served", "opt_in"]

_PARAM: Final = re.compile(r"^\{([a-z_]+)(:path)?\}$")


def canonical_path(path: str) -> str:
    """``path`` with dot segments resolved, empty segments and ``;`` parameters dropped, and no
    trailing ``/`` (``/`` stays ``/``). Pure string work: nothing is decoded."""
    out: list[str] = []
    for segment in path.split("/"):
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out)


def _in_prefix(lower_path: str) -> bool:
    return lower_path == GATEWAY_PREFIX or lower_path.startswith(GATEWAY_PREFIX + "/")


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One row of the endpoint table.

    ``path`` is the canonical path; a segment ``{name}`` matches one segment, a last segment
    ``{name:path}`` the rest of the path (one or more segments).
    """

    #: A stable name (``"chat_completions"``, ``"models.retrieve"``).
    name: str
    path: str
    #: Methods served. ``HEAD`` is allowed wherever ``GET`` is.
    methods: frozenset[str]
    #: The scope a restricted key needs; ``None``: any valid key.
    scope: str | None = None
    #: ``GET``/``HEAD`` of exactly this path passes without a key; every other method needs one.
    public: bool = False
    #: Whether :class:`~akgate.UpstreamProvider` may forward it: ``"served"`` endpoints always,
    #: ``"opt_in"`` ones only when the provider lists them in ``forward=``, ``"never"`` never.
    upstream: Forwarding = "never"
    #: The request body names models: a key's ``allowed_models`` applies (POST).
    models: bool = False
    #: The request schema validation checks and routing routes (POST), if any.
    kind: Endpoint | None = None
    _segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path != canonical_path(self.path):
            raise ValueError(f"endpoint path must be canonical: {self.path!r}")
        methods = frozenset(m.upper() for m in self.methods)
        if "GET" in methods:
            methods |= {"HEAD"}
        object.__setattr__(self, "methods", methods)
        segments = tuple(self.path.split("/")[1:])
        for i, segment in enumerate(segments):
            param = _PARAM.match(segment)
            if param is not None and param.group(2) and i != len(segments) - 1:
                raise ValueError(f"{{name:path}} must be the last segment: {self.path!r}")
        object.__setattr__(self, "_segments", segments)

    @property
    def allow(self) -> str:
        """The ``Allow`` header value."""
        return ", ".join(sorted(self.methods))

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when ``path`` (canonical) is this endpoint's, else ``None``."""
        parts = path.split("/")[1:]
        params: dict[str, str] = {}
        for i, segment in enumerate(self._segments):
            param = _PARAM.match(segment)
            if param is None:
                if i >= len(parts) or parts[i] != segment:
                    return None
                continue
            if i >= len(parts) or not parts[i]:
                return None
            if param.group(2):
                params[param.group(1)] = "/".join(parts[i:])
                return params
            params[param.group(1)] = parts[i]
        return params if len(parts) == len(self._segments) else None


def _row(name: str, path: str, methods: Iterable[str], **options: object) -> EndpointSpec:
    return EndpointSpec(name, path, frozenset(methods), **options)  # type: ignore[arg-type]


#: Every endpoint akgate knows. Order matters only between patterns that overlap (first wins).
ENDPOINTS: Final[tuple[EndpointSpec, ...]] = (
    _row(
        "chat_completions",
        "/v1/chat/completions",
        ["POST"],
        scope="chat",
        upstream="served",
        models=True,
        kind="chat_completions",
    ),
    _row(
        "responses",
        "/v1/responses",
        ["POST"],
        scope="responses",
        upstream="served",
        models=True,
        kind="responses",
    ),
    # Stateful Responses (akgate.store.StatefulResponses serves them when a store is configured).
    _row("responses.retrieve", "/v1/responses/{response_id}", ["GET", "DELETE"], scope="responses"),
    _row(
        "responses.input_items",
        "/v1/responses/{response_id}/input_items",
        ["GET"],
        scope="responses",
    ),
    _row("responses.cancel", "/v1/responses/{response_id}/cancel", ["POST"], scope="responses"),
    _row("conversations", "/v1/conversations", ["POST"], scope="responses"),
    _row(
        "conversations.retrieve",
        "/v1/conversations/{conversation_id}",
        ["GET", "POST", "DELETE"],
        scope="responses",
    ),
    _row(
        "conversations.items",
        "/v1/conversations/{conversation_id}/items",
        ["GET", "POST"],
        scope="responses",
    ),
    _row(
        "conversations.item",
        "/v1/conversations/{conversation_id}/items/{item_id}",
        ["GET", "DELETE"],
        scope="responses",
    ),
    # Anthropic Messages: MessagesAdapter serves them over a chat provider; a provider that
    # speaks Messages natively gets them untouched (forwarded upstream only when enabled).
    _row(
        "messages",
        "/v1/messages",
        ["POST"],
        scope="messages",
        upstream="opt_in",
        models=True,
        kind="messages",
    ),
    _row(
        "messages.count_tokens",
        "/v1/messages/count_tokens",
        ["POST"],
        scope="messages",
        upstream="opt_in",
        models=True,
        kind="messages",
    ),
    _row("models.list", "/v1/models", ["GET"], scope="models", upstream="served"),
    _row("models.retrieve", "/v1/models/{model:path}", ["GET"], scope="models", upstream="served"),
    _row("embeddings", "/v1/embeddings", ["POST"], scope="embeddings", upstream="opt_in"),
    _row("me", "/v1/me", ["GET"]),
    # Public directory (the contract serves it without a key): GET of exactly these paths.
    _row("directory.models", "/v1/directory/models", ["GET"], public=True),
    _row("registry.models", "/v1/registry/models", ["GET"], public=True),
    _row("registry.providers", "/v1/registry/providers", ["GET"], public=True),
    # Operations (akgate.ops), outside /v1 so they never collide with the app's routes; answered
    # by HealthChecks / PrometheusMetrics before auth, public here should they sit inside it.
    _row("healthz", "/healthz", ["GET"], public=True),
    _row("readyz", "/readyz", ["GET"], public=True),
    _row("metrics", "/metrics", ["GET"], public=True),
)

_BY_PATH: Final[Mapping[str, EndpointSpec]] = {
    spec.path: spec for spec in ENDPOINTS if "{" not in spec.path
}
_BY_LOWER_PATH: Final[Mapping[str, EndpointSpec]] = {p.lower(): s for p, s in _BY_PATH.items()}
_PATTERNS: Final = tuple(spec for spec in ENDPOINTS if "{" in spec.path)
#: Raw-path escapes that would mean something else to a layer reading ``raw_path`` (or to a
#: server that decodes again): encoded ``/``, ``.``, ``;``, ``\\``, ``%`` and NUL.
_DANGEROUS_ESCAPES: Final = re.compile(rb"%(2[fFeE5]|3[bB]|5[cC]|00)")
_FAST_OK: Final = re.compile(r"^(/[A-Za-z0-9_\-:@+!~*'(),=$&]+(\.[A-Za-z0-9_\-:@+]+)*)+$")


#: Exact paths outside ``/v1`` that the table owns (health, metrics ...), lower-case.
_OUTSIDE: Final = frozenset(path.lower() for path in _BY_PATH if not _in_prefix(path.lower()))


@dataclass(frozen=True, slots=True)
class Resolution:
    """What :func:`resolve` found for one request path."""

    #: The canonical route path (below ``root_path``).
    path: str
    #: The endpoint, ``None`` for a gateway path no row names (an app's own route).
    spec: EndpointSpec | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    #: The path (only its trailing ``/``) was not canonical: layers rewrite the scope to ``path``.
    rewrite: bool = False
    #: Not canonical beyond a trailing slash: answered 404 by the first layer that sees it.
    refused: bool = False

    def error(self) -> GatewayError:
        """The 404 for a refused path (the canonical form is named, never the raw one)."""
        return GatewayError(
            "resource_not_found",
            "The request path is not in canonical form (no '.', '..', '//', ';', encoded "
            "'/', '.', '%' or wrong letter case); see docs/security.md.",
            suggestion=f"Did you mean {self.path}?" if self.spec is not None else None,
        )


def resolve(scope: Scope, route_path: str) -> Resolution | None:
    """The gateway's view of a request path, or ``None`` when the path is not the gateway's.

    ``route_path`` is ``scope["path"]`` below ``root_path``; ``scope["raw_path"]`` is checked for
    escapes that a layer reading it would interpret differently.
    """
    exact = _EXACT.get(route_path)
    if exact is not None:
        # A row's own path (the common case): what the checks below would find, built once.
        raw = scope.get("raw_path")
        if raw is None or PERCENT not in raw:
            return exact
    if _FAST_OK.match(route_path) is None or "/./" in route_path or route_path.endswith("/."):
        return _resolve_slow(scope, route_path)
    lower = route_path.lower()
    if not _in_prefix(lower) and lower not in _OUTSIDE:
        return None
    raw = scope.get("raw_path")
    if raw is not None and PERCENT in raw and _DANGEROUS_ESCAPES.search(raw) is not None:
        return _refuse(route_path)
    return _lookup(route_path)


#: The resolution of each row's exact path, for the fast path of :func:`resolve`.
_EXACT: Final[Mapping[str, Resolution]] = {
    path: Resolution(path, spec, MappingProxyType({})) for path, spec in _BY_PATH.items()
}


def _resolve_slow(scope: Scope, route_path: str) -> Resolution | None:
    canonical = canonical_path(route_path)
    lower = canonical.lower()
    if not _in_prefix(lower) and lower not in _OUTSIDE and not _in_prefix(route_path.lower()):
        return None  # neither as sent nor canonically the gateway's
    raw = scope.get("raw_path")
    if (
        "%" in route_path
        or "\\" in route_path
        or "\x00" in route_path
        or (raw is not None and _DANGEROUS_ESCAPES.search(raw) is not None)
    ):
        return _refuse(canonical)
    if route_path == canonical:
        return _lookup(canonical)
    if route_path == canonical + "/" and canonical != "/":
        found = _lookup(canonical)
        if found.refused:
            return found
        return Resolution(found.path, found.spec, found.params, rewrite=True)
    return _refuse(canonical)


def _refuse(canonical: str) -> Resolution:
    spec = _BY_PATH.get(canonical) or _BY_LOWER_PATH.get(canonical.lower())
    return Resolution(spec.path if spec is not None else canonical, spec, refused=True)


def _lookup(path: str) -> Resolution:
    spec = _BY_PATH.get(path)
    if spec is not None:
        return Resolution(path, spec)
    for pattern in _PATTERNS:
        params = pattern.match(path)
        if params is not None:
            return Resolution(path, pattern, params)
    lower = path.lower()
    if not lower.startswith(GATEWAY_PREFIX + "/") and lower != GATEWAY_PREFIX:
        return _refuse(path)  # an outside row in the wrong case
    if not path.startswith(GATEWAY_PREFIX) or lower in _BY_LOWER_PATH:
        return _refuse(path)  # /V1/..., or a row's path in the wrong case
    for pattern in _PATTERNS:
        if pattern.match(lower) is not None and pattern.match(path) is None:
            return _refuse(path)
    return Resolution(path)


def not_allowed(spec: EndpointSpec) -> GatewayError:
    """405 for a method ``spec`` does not serve, with its ``Allow`` header."""
    return GatewayError(
        "method_not_allowed",
        f"Use {spec.allow.replace(', HEAD', '')} on this endpoint.",
        headers={"Allow": spec.allow},
    )


def gateway_scope(
    scope: Scope, ctx: RequestContext | Literal[False] | None = False
) -> tuple[Scope, Resolution | None]:
    """``(scope, resolution)`` for an HTTP scope: the resolution of its route path (``None``
    outside the gateway), and the scope rewritten to the canonical path when only a trailing
    slash differed. Cached on the request context, so a stack resolves a path once.

    ``ctx``: the scope's context (or ``None``) when the caller has looked it up already."""
    if ctx is False:
        ctx = get_context(scope)
    path: str = scope["path"]
    if ctx is not None and ctx.route is not None and ctx.route[0] == path:
        return scope, ctx.route[1]  # type: ignore[return-value]
    resolution = resolve(scope, route_path(scope))
    if resolution is not None and resolution.rewrite:
        scope = scope_with_path(scope, resolution.path)
        resolution = Resolution(resolution.path, resolution.spec, resolution.params)
    if ctx is not None:
        ctx.route = (scope["path"], resolution)
    return scope, resolution


def remember_resolution(scope: Scope, resolution: Resolution) -> None:
    """Cache ``resolution`` (``resolve`` of ``scope``'s own path) for :func:`gateway_scope`,
    for a layer that resolved the path before the request had a context. A resolution that
    rewrites the path is left for :func:`gateway_scope` to apply."""
    ctx = get_context(scope)
    if ctx is not None and ctx.route is None and not resolution.rewrite:
        ctx.route = (scope["path"], resolution)


async def send_refused(scope: Scope, send: Send, resolution: Resolution) -> None:
    """Answer a refused path with its 404, from the layer that saw it first.

    The request gets its context first, so the envelope and the request id are the endpoint's.
    """
    scope, send, _ = request_context(scope, send)
    await send_error(send, resolution.error())
