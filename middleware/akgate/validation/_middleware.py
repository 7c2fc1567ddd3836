"""``RequestValidation``: check chat-completions and responses requests before the app sees them."""

from __future__ import annotations

from typing import Final

from akgate._asgi import (
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    dumps,
    get_header,
    payload_too_large,
    read_request_json,
    replay_receive,
    scope_with_body,
)
from akgate._endpoints import ENDPOINTS, Resolution, gateway_scope, not_allowed, send_refused
from akgate._options import check_body_size
from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.context import get_context, request_context
from akgate.errors import GatewayError, send_error

from ._simple import PLAIN_REQUEST
from ._validate import SIMPLE, UnknownFields, validate_with_model

__all__ = ["DEFAULT_CHAT_PATHS", "DEFAULT_RESPONSES_PATHS", "RequestValidation"]

#: The endpoint table's paths of each request schema (kept for the public names).
DEFAULT_CHAT_PATHS: Final = tuple(s.path for s in ENDPOINTS if s.kind == "chat_completions")
DEFAULT_RESPONSES_PATHS: Final = tuple(s.path for s in ENDPOINTS if s.kind == "responses")


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    if content_type == b"application/json":
        return True  # what clients send (the rule below says the same for it)
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class RequestValidation:
    """Validate and normalize requests to the chat-completions and responses endpoints.

    Other paths pass through untouched (their body is not read). A valid request reaches the app
    normalized, with ``ctx.payload`` / ``ctx.endpoint`` / ``ctx.validated`` set in the per-request
    context; an invalid one is answered with the Auriko error envelope (400/405/413/415).

    Which paths are which endpoint comes from the endpoint table (``akgate._endpoints``), after
    the canonical-path rule (a refused path is a 404 here too when this layer is outermost).

    Options (keyword-only):

    * ``max_body_size``: request body cap in bytes (413 above it).
    * ``unknown_fields``: ``"reject"`` (default: 400 ``unknown_field``) or ``"warn"`` (forward
      unknown top-level fields unchecked, with an ``unsupported_field`` warning).
    * ``strip_gateway``: remove ``gateway`` and ``extensions`` before the app (for apps used
      without the routing layer, which otherwise consumes them).
    * ``require_json_content_type``: answer 415 unless ``Content-Type`` is JSON (default).
    * ``inline_files``: accept Responses ``input_file`` parts sent inline (``file_data`` or
      ``file_url``); default ``False``: 400 ``operation_not_allowed``, the stateless contract's
      answer. ``file_id`` is refused either way (no Files API here).

    See ``docs/validation.md``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        unknown_fields: UnknownFields = "reject",
        strip_gateway: bool = False,
        require_json_content_type: bool = True,
        inline_files: bool = False,
    ) -> None:
        self.app = app
        check_body_size(max_body_size)
        if unknown_fields not in ("reject", "warn"):
            raise ValueError("unknown_fields must be 'reject' or 'warn'")
        self.max_body_size = max_body_size
        self.unknown_fields: UnknownFields = unknown_fields
        self.strip_gateway = strip_gateway
        self.require_json_content_type = require_json_content_type
        self.inline_files = inline_files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)  # (looked up once, for both calls below)
        route = ctx.route if ctx is not None else None
        resolution: Resolution | None
        if route is not None and route[0] == scope["path"]:
            # What gateway_scope answers when an outer layer resolved this path (inline).
            resolution = route[1]  # type: ignore[assignment]
        else:
            scope, resolution = gateway_scope(scope, ctx)
        if resolution is not None and resolution.refused:
            await send_refused(scope, send, resolution)
            return
        spec = resolution.spec if resolution is not None else None
        endpoint = spec.kind if spec is not None else None
        if (
            spec is None
            or endpoint is None
            or endpoint == "messages"  # Anthropic's schema: the Messages adapter checks it
            or scope["method"] == "OPTIONS"
        ):
            # Not ours (CORS preflights included): untouched, body unread.
            await self.app(scope, receive, send)
            return
        if ctx is None:
            scope, send, ctx = request_context(scope, send)
        try:
            if scope["method"] not in spec.methods:
                raise not_allowed(spec)
            if self.require_json_content_type and not _is_json(get_header(scope, b"content-type")):
                raise GatewayError(
                    "invalid_request",
                    "Content-Type must be application/json.",
                    status=415,
                )
            # An outer layer may have read the body with a larger cap: ours still applies.
            if ctx.body is not None and len(ctx.body) > self.max_body_size:
                raise payload_too_large(self.max_body_size)
            payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
            already = ctx.validated and ctx.endpoint == endpoint
            # (A plain request is valid as it is: validate_payload's own first check, asked
            # here once, saves a call with its keywords for most requests.)
            plain = not already and SIMPLE[endpoint](payload)
            changed = already or (
                not plain
                and validate_with_model(
                    endpoint,
                    payload,
                    unknown_fields=self.unknown_fields,
                    warn=ctx.warn,
                    inline_files=self.inline_files,
                )
            )
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        if already:
            # Checked by another RequestValidation outside this one, which replays the body.
            await self.app(scope, receive, send)
            return
        if self.strip_gateway:
            for key in ("gateway", "extensions"):
                if key in payload:
                    del payload[key]
                    changed = True
        ctx.endpoint = endpoint
        ctx.validated = True
        if plain:
            ctx.state[PLAIN_REQUEST] = payload  # for routing: needs read without the messages
        body = ctx.body
        if changed or body is None:
            body = ctx.body = dumps(payload)
            scope = scope_with_body(scope, body)
        # (A body passed on as it came keeps the scope too: its headers already describe it,
        # with the Content-Length the server checked or the chunked framing it came in.)
        inner_receive = ctx.raw_receive if ctx.raw_receive is not None else receive
        await self.app(scope, replay_receive(body, inner_receive), send)
