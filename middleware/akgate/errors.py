"""The Auriko error envelope and the registry of every error code.

Every layer answers failures with the same flat envelope::

    {"error": {"message": ..., "type": ..., "code": ..., "param": ..., "doc_url": ...}}

The HTTP status and the ``type`` follow from the ``code`` alone (``ERROR_CODES``), so a layer only
names the code, the message and the offending ``param``.

One exception class, :class:`GatewayError`, carries every failure that becomes an envelope:
the code, not a subclass, says what went wrong (body 400/413, auth 401/403/429/503, validation
400/405/415, routing and upstream 400/404/502/503/504). The codes are listed in docs/errors.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic_core import to_json

from ._types import Send
from .context import current_error_format

if TYPE_CHECKING:
    from .context import RequestContext

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "DOC_URL_BASE",
    "ERROR_CODES",
    "ERROR_TYPES",
    "GatewayError",
    "anthropic_error_body",
    "anthropic_error_type",
    "error_body",
    "error_payload",
    "send_envelope",
    "send_error",
    "status_for",
    "type_for",
]

DOC_URL_BASE: Final = "https://docs.auriko.ai/errors/"

ERROR_TYPES: Final = (
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "api_error",
)


def _codes(status: int, type_: str, codes: str) -> dict[str, tuple[int, str]]:
    return dict.fromkeys(codes.split(), (status, type_))


#: code -> (HTTP status, error type), from the Auriko registry (docs/errors.md, Registry).
ERROR_CODES: Final[Mapping[str, tuple[int, str]]] = {
    **_codes(
        400,
        "invalid_request_error",
        """invalid_request missing_required_parameter invalid_parameter_value
        context_length_exceeded content_filtered field_immutable operation_not_allowed unknown_field
        payment_declined payment_method_invalid tools_not_supported json_mode_not_supported
        structured_output_not_supported tools_with_structured_output_not_supported
        vision_not_supported reasoning_not_supported thinking_disable_not_supported
        streaming_not_supported non_streaming_not_supported batch_only tier_opt_in_required
        tool_choice_required_not_supported cost_constraint_exceeded latency_constraint_exceeded
        throughput_constraint_not_met provider_not_in_allowlist provider_blocked
        required_params_not_supported byok_keys_required platform_keys_unavailable
        unsupported_modalities no_compatible_endpoint no_responses_endpoint
        input_requires_responses_endpoint response_api_only hosted_tool_not_supported
        no_tools_on_endpoint""",
    ),
    # Stateful Responses (OpenAI's codes): an unusable previous_response_id.
    **_codes(400, "invalid_request_error", "previous_response_not_found invalid_encrypted_content"),
    **_codes(
        401,
        "authentication_error",
        "invalid_api_key expired_api_key invalid_recovery_code mfa_verification_failed",
    ),
    **_codes(403, "permission_error", "insufficient_permissions feature_disabled mfa_required"),
    **_codes(404, "not_found_error", "model_not_found resource_not_found"),
    **_codes(405, "invalid_request_error", "method_not_allowed"),
    **_codes(
        409,
        "invalid_request_error",
        "idempotency_conflict idempotency_replay_unavailable state_precondition_failed "
        "duplicate_resource",
    ),
    **_codes(408, "invalid_request_error", "request_timeout"),
    **_codes(413, "invalid_request_error", "payload_too_large"),
    **_codes(429, "rate_limit_error", "rate_limit_exceeded budget_exhausted insufficient_quota"),
    **_codes(500, "api_error", "internal_error"),
    **_codes(502, "api_error", "upstream_error"),
    **_codes(503, "api_error", "no_provider_available model_unavailable service_unavailable"),
    **_codes(504, "api_error", "upstream_timeout"),
    # Stream-only codes: never an HTTP status of their own (sent inside an SSE error event).
    **_codes(499, "api_error", "client_disconnected stream_duration_exceeded"),
}


#: HTTP status -> Anthropic ``error.type`` for the ``/v1/messages`` endpoints (their envelope
#: has no ``code``; the Anthropic SDKs pick the exception class from the status).
ANTHROPIC_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """The Anthropic error type for an HTTP status (other 4xx: invalid request; 5xx: api)."""
    found = ANTHROPIC_ERROR_TYPES.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_error_body(
    status: int, message: str, *, request_id: str | None = None, suggestion: str | None = None
) -> bytes:
    """Anthropic's envelope: ``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    error: dict[str, Any] = {"type": anthropic_error_type(status), "message": message}
    if suggestion is not None:
        error["suggestion"] = suggestion
    envelope: dict[str, Any] = {"type": "error", "error": error}
    if request_id is not None:
        envelope["request_id"] = request_id
    return to_json(envelope)


#: What a code outside the registry gets: a server fault.
_UNREGISTERED: Final = (500, "api_error")


def status_for(code: str) -> int:
    """The HTTP status of ``code`` (500 for a code outside the registry)."""
    return ERROR_CODES.get(code, _UNREGISTERED)[0]


def type_for(code: str) -> str:
    """The error ``type`` of ``code`` (``api_error`` for a code outside the registry)."""
    return ERROR_CODES.get(code, _UNREGISTERED)[1]


def error_payload(
    code: str,
    message: str,
    param: str | None = None,
    *,
    type_: str | None = None,
    provider: str | None = None,
    suggestion: str | None = None,
) -> dict[str, Any]:
    """The inner ``error`` object of the envelope (also used flat in stream error events)."""
    error: dict[str, Any] = {
        "message": message,
        "type": type_ or type_for(code),
        "code": code,
        "param": param,
        "doc_url": DOC_URL_BASE + code,
    }
    if provider is not None:
        error["provider"] = provider
    if suggestion is not None:
        error["suggestion"] = suggestion
    return error


class GatewayError(Exception):
    """A failure that is answered with the Auriko error envelope.

    ``status`` defaults to the registry's status for ``code``; ``headers`` are added to the
    response (``Retry-After`` on 429/503, ``WWW-Authenticate`` on 401).
    """

    def __init__(
        self,
        code: str,
        message: str,
        param: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        provider: str | None = None,
        suggestion: str | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.status = status if status is not None else status_for(code)
        self.headers: dict[str, str] = dict(headers or {})
        self.provider = provider
        self.suggestion = suggestion
        self.type = type_ or type_for(code)

    def __repr__(self) -> str:
        return f"GatewayError(code={self.code!r}, status={self.status}, param={self.param!r})"

    def payload(self) -> dict[str, Any]:
        return error_payload(
            self.code,
            self.message,
            self.param,
            type_=self.type,
            provider=self.provider,
            suggestion=self.suggestion,
        )

    def body(self) -> bytes:
        return to_json({"error": self.payload()})


def error_body(code: str, message: str, param: str | None = None) -> bytes:
    """The serialized envelope for ``code``."""
    return to_json({"error": error_payload(code, message, param)})


async def send_error(
    send: Send,
    error: GatewayError,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
    ctx: RequestContext | None = None,
) -> None:
    """Send ``error`` as a complete JSON response (status, headers, envelope).

    This is the one place errors are rendered: the envelope follows the endpoint the request is
    for (``ctx.error_format`` when a context is given, else the current request's, which the
    layer that created its context recorded), so every layer answers ``/v1/messages`` in
    Anthropic's envelope and everything else in Auriko's without knowing which it guards.
    """
    extra: list[tuple[bytes, bytes]] = []
    request_id: str | None
    if ctx is not None:
        error_format, request_id = ctx.error_format, ctx.request_id
    else:
        error_format, request_id = current_error_format()
    if error_format == "anthropic":
        # Anthropic's envelope has no ``param``: the field leads the message, as in Anthropic's
        # own errors ("messages.1.content: ...").
        message = f"{error.param}: {error.message}" if error.param else error.message
        body = anthropic_error_body(
            error.status, message, request_id=request_id, suggestion=error.suggestion
        )
        if request_id is not None:
            extra.append((b"request-id", request_id.encode("latin-1")))
    else:
        body = error.body()
    extra.extend(headers)
    extra.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in error.headers.items()
    )
    await send_envelope(send, error.status, body, extra)


async def send_envelope(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send an already rendered error envelope as a complete response (as :func:`send_error`)."""
    # ``charset=utf-8`` on errors, not on answers (``send_json``): the Auriko contract names this
    # exact type for the envelope (docs/errors.md), while successful answers carry the plain
    # ``application/json`` OpenAI's API sends. Both are UTF-8; tests pin each.
    raw_headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode("latin-1")),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
