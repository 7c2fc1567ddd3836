"""One code per fault: upstream error objects mapped onto the Auriko error registry.

A fault reaches the client in up to four places: a JSON error envelope, a chat stream's
``data: {"error": ...}`` frame, a Responses stream's ``error`` event and the ``error`` of the
``response.failed`` that follows it. Every layer builds all of them from one payload made here, so
the ``code``, ``type`` (one of the six registry types) and ``doc_url`` agree wherever the client
reads them. Upstreams speak other vocabularies (OpenAI's ``server_error`` code and type, vLLM's
bare messages): those are mapped, never forwarded as they are.
"""

from __future__ import annotations

from typing import Any, Final

from .errors import ERROR_CODES, error_payload

__all__ = ["fault_payload", "provider_code", "registry_code", "responses_error_event"]

#: Upstream codes (or types) that say "slow down", whatever vocabulary the upstream speaks.
_RATE_LIMITED: Final = frozenset({"rate_limit_exceeded", "rate_limit_error", "rate_limited"})
_TIMED_OUT: Final = frozenset({"timeout", "upstream_timeout", "request_timeout"})


def registry_code(code: Any, type_: Any = None, status: int | None = None) -> str:
    """The registry code for an upstream's ``code`` / ``type`` / HTTP ``status``.

    A registry code is kept; rate limits become ``rate_limit_exceeded``, timeouts
    ``upstream_timeout``; anything else the upstream reports is ``upstream_error``.
    """
    for value in (code, type_):
        if isinstance(value, str):
            if value in ERROR_CODES:
                return value
            if value in _RATE_LIMITED:
                return "rate_limit_exceeded"
            if value in _TIMED_OUT:
                return "upstream_timeout"
    if status == 429:
        return "rate_limit_exceeded"
    if status == 504:
        return "upstream_timeout"
    return "upstream_error"


def provider_code(code: str) -> str:
    """What a provider's registry ``code`` means once routing reports it as the gateway's.

    The same rule routing applies to a provider's HTTP status before the first byte: a
    rate limit stays a rate limit, unavailability is ``no_provider_available``, a timeout
    ``upstream_timeout``, any other server-side fault ``upstream_error``; request errors (4xx)
    keep their code.
    """
    status = ERROR_CODES.get(code, (502, "api_error"))[0]
    if status == 429:
        return "rate_limit_exceeded"
    if status == 503:
        return "no_provider_available"
    if status == 504:
        return "upstream_timeout"
    if status >= 500 or status == 499:
        return "upstream_error"
    return code


def fault_payload(
    error: Any,
    *,
    status: int | None = None,
    provider: str | None = None,
    default_message: str = "The upstream failed.",
) -> dict[str, Any]:
    """The registry error payload for an upstream ``error`` (an object, a string, anything).

    With ``provider`` (routing reporting a provider's fault), the code is the gateway's view
    of it (:func:`provider_code`), as for a provider's failed HTTP status.
    """
    if not isinstance(error, dict):
        error = {"message": error} if isinstance(error, str) and error else {}
    message = error.get("message")
    param = error.get("param")
    named = error.get("provider")
    suggestion = error.get("suggestion")
    code = registry_code(error.get("code"), error.get("type"), status)
    return error_payload(
        provider_code(code) if provider is not None else code,
        message if isinstance(message, str) and message else default_message,
        param if isinstance(param, str) else None,
        provider=named if isinstance(named, str) else provider,
        suggestion=suggestion if isinstance(suggestion, str) else None,
    )


def responses_error_event(payload: dict[str, Any], sequence_number: int | None) -> dict[str, Any]:
    """The Responses ``error`` event for ``payload``: flat fields and the nested object.

    Flat (Auriko's SDK and OpenAI's ``ResponseErrorEvent``) and nested (clients that read
    ``event.error``), with one ``code`` and the registry ``type`` in the nested object.
    """
    event: dict[str, Any] = {"type": "error"}
    if sequence_number is not None:
        event["sequence_number"] = sequence_number
    event.update({k: v for k, v in payload.items() if k != "type"})
    event["error"] = payload
    return event
