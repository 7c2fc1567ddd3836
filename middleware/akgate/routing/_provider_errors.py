"""A provider's error answer, in the envelope of the endpoint the client called.

Clients parse one envelope per endpoint (Auriko's on chat and Responses, Anthropic's on
``/v1/messages``; the auriko SDK treats a body without a registry ``type`` and ``code`` as
malformed), whatever the provider behind the route speaks. So a provider's error is kept as is
only when it already is that envelope, valid; otherwise routing answers with its own:

* the client's request errors (400, 422) -> 400 with the provider's message, its registry code
  when it sent one (``context_length_exceeded`` ...), else ``invalid_request`` /
  ``invalid_parameter_value``, and its ``param``;
* 404 -> ``model_not_found`` (``param: model``); 413 -> ``payload_too_large``;
* the operator's faults (401/403: the provider refused the gateway's own credentials, never the
  caller's key) -> 502 ``upstream_error``; 429 -> ``rate_limit_exceeded`` with ``Retry-After``;
  408/504 -> ``upstream_timeout``; 503 -> ``no_provider_available``; other 5xx and 4xx -> 502
  ``upstream_error``.

A provider's message is echoed only for the client's own request errors, and then without what
may be a credential or an internal address (keys, bearer tokens, long opaque tokens, URLs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic_core import from_json

from akgate.context import Endpoint
from akgate.errors import ERROR_CODES, ERROR_TYPES, GatewayError

__all__ = ["client_error", "provider_message", "scrub", "upstream_fault"]

_MAX_MESSAGE: Final = 500
_SECRETS: Final = re.compile(
    r"(?i)\bbearer\s+\S+"  # an Authorization value
    r"|\b(?:sk|ak|pk|rk|key|api[-_]?key)[-_][A-Za-z0-9_\-*.]{6,}"  # sk-..., ak_live_..., key-...
    r"|https?://\S+"  # the provider's (internal) address
    r"|\b[A-Za-z0-9_\-]{32,}\b"  # long opaque tokens
)


def scrub(message: str) -> str:
    """``message`` without what may be a credential or an internal address, and bounded."""
    cleaned = _SECRETS.sub("[redacted]", message).strip()
    return cleaned if len(cleaned) <= _MAX_MESSAGE else cleaned[:_MAX_MESSAGE] + "..."


def _parse(body: bytes) -> Any:
    try:
        return from_json(body)
    except ValueError:
        return None


def _error_object(obj: Any) -> Mapping[str, Any]:
    """The provider's error object, whichever shape it used (OpenAI/Auriko, Anthropic, flat)."""
    if not isinstance(obj, Mapping):
        return {}
    error = obj.get("error")
    if isinstance(error, Mapping):
        return error
    if isinstance(error, str):
        return {"message": error}
    detail = obj.get("detail")  # FastAPI-style servers
    if isinstance(detail, str):
        return {"message": detail}
    return obj if isinstance(obj.get("message"), str) else {}


def provider_message(body: bytes) -> str | None:
    """What the provider said (unscrubbed: for the operator's log), or ``None``."""
    message = _error_object(_parse(body)).get("message")
    return message[:300] if isinstance(message, str) else None


def _is_endpoint_envelope(obj: Any, status: int, endpoint: Endpoint) -> bool:
    if not isinstance(obj, Mapping):
        return False
    error = obj.get("error")
    if not isinstance(error, Mapping) or not isinstance(error.get("message"), str):
        return False
    if endpoint == "messages":
        return obj.get("type") == "error" and isinstance(error.get("type"), str)
    code = error.get("code")
    return (
        error.get("type") in ERROR_TYPES
        and isinstance(code, str)
        and ERROR_CODES.get(code, (0, ""))[0] == status
        and isinstance(error.get("doc_url"), str)  # else rebuilt, with its doc_url
    )


def client_error(
    status: int, body: bytes, *, provider: str, model: str | None, endpoint: Endpoint
) -> GatewayError | None:
    """The envelope for a provider's 4xx that is not a failover case; ``None``: the body
    already is the endpoint's valid envelope, to be forwarded unchanged."""
    obj = _parse(body)
    if _is_endpoint_envelope(obj, status, endpoint):
        return None
    error = _error_object(obj)
    raw = error.get("message")
    said = scrub(raw) if isinstance(raw, str) and raw.strip() else None
    if status in (400, 422):
        code = error.get("code")
        param = error.get("param") if isinstance(error.get("param"), str) else None
        if not (isinstance(code, str) and ERROR_CODES.get(code, (0, ""))[0] == 400):
            code = "invalid_parameter_value" if param else "invalid_request"
        message = said or f"Provider '{provider}' refused the request (HTTP {status})."
        return GatewayError(code, message, param, provider=provider)
    if status == 404:
        name = f"'{model}' " if model else ""
        detail = f": {said}" if said else "."
        return GatewayError(
            "model_not_found",
            f"Provider '{provider}' does not serve the model {name}(HTTP 404){detail}",
            "model",
            provider=provider,
        )
    if status == 413:
        return GatewayError(
            "payload_too_large",
            f"Provider '{provider}' refused the request as too large (HTTP 413).",
            provider=provider,
        )
    return GatewayError(
        "upstream_error",
        f"Provider '{provider}' answered HTTP {status}" + (f": {said}" if said else "."),
        provider=provider,
    )


def upstream_fault(
    status: int, headers: Iterable[tuple[bytes, bytes]], *, provider: str, request_id: str
) -> GatewayError:
    """The envelope for a provider's failover status (401/403, 408, 425, 429, 5xx) that was the
    last attempt. What the provider said is not echoed (it may name the operator's account)."""
    message = f"Provider '{provider}' returned HTTP {status}; request {request_id}."
    retry_after = next((v for k, v in headers if k.lower() == b"retry-after"), None)
    extra = {"Retry-After": retry_after.decode("latin-1")} if retry_after is not None else {}
    if status == 429:
        extra["X-Rate-Limit-Source"] = "upstream"
        return GatewayError("rate_limit_exceeded", message, headers=extra, provider=provider)
    if status == 503:
        return GatewayError("no_provider_available", message, headers=extra, provider=provider)
    if status in (408, 504):
        return GatewayError("upstream_timeout", message, provider=provider)
    if status in (401, 403):
        message = (
            f"Provider '{provider}' refused the gateway's credentials for it (HTTP {status}): "
            f"the gateway's configuration, not your API key; request {request_id}."
        )
    return GatewayError("upstream_error", message, headers=extra, provider=provider)
