"""The per-endpoint checks and normalization, usable without the middleware.

``validate_chat_request(payload)`` and ``validate_responses_request(payload)`` check a parsed body,
normalize it in place (deprecated ``functions``/``function_call`` -> ``tools``/``tool_choice``,
``reasoning.generate_summary`` -> ``reasoning.summary``, ``extensions`` sanitized) and return it,
or raise :class:`~akgate.errors.GatewayError` with the code and ``param`` of the first problem.
"""

from __future__ import annotations

from typing import Any, Final, Literal, cast

from pydantic import BaseModel, ValidationError

from akgate.context import Endpoint
from akgate.errors import GatewayError
from akgate.schemas.chat_request import ChatCompletionRequest
from akgate.schemas.responses_request import INLINE_FILES, ResponsesRequest

from ._extensions import WarnFn, sanitize_extensions
from ._from_pydantic import error_from_validation
from ._simple import is_simple_chat, is_simple_responses

__all__ = [
    "CHAT_FIELDS",
    "LEGACY_FIELDS",
    "RESPONSES_FIELDS",
    "UnknownFields",
    "validate_chat_request",
    "validate_payload",
    "validate_request",
    "validate_responses_request",
    "validate_with_model",
]

UnknownFields = Literal["reject", "warn"]


def _wire_names(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


CHAT_FIELDS: Final = _wire_names(ChatCompletionRequest)
RESPONSES_FIELDS: Final = _wire_names(ResponsesRequest)

#: Top-level forms of old Auriko docs: always refused, pointing to their ``gateway`` home.
LEGACY_FIELDS: Final = {
    "models": "gateway.models",
    "routing": "gateway.routing",
    "auriko_metadata": "gateway.metadata",
}

_ENDPOINTS: Final[dict[str, tuple[type[BaseModel], frozenset[str], str]]] = {
    "chat_completions": (ChatCompletionRequest, CHAT_FIELDS, "/v1/chat/completions"),
    "responses": (ResponsesRequest, RESPONSES_FIELDS, "/v1/responses"),
}
#: The plain requests that need neither the model nor a normalization (``_simple``).
SIMPLE: Final = {"chat_completions": is_simple_chat, "responses": is_simple_responses}


def _known_only(
    payload: dict[str, Any],
    known: frozenset[str],
    where: str,
    unknown_fields: UnknownFields,
    warn: WarnFn | None,
) -> dict[str, Any]:
    """The part of ``payload`` to validate; refuses or reports unknown top-level fields."""
    if payload.keys() <= known:
        return payload
    extra = [key for key in payload if key not in known]
    for key in extra:
        if key in LEGACY_FIELDS:
            raise GatewayError(
                "unknown_field",
                f"Unknown field: '{key}'. Top-level '{key}' is a legacy form; "
                f"use '{LEGACY_FIELDS[key]}' instead.",
                key,
            )
    if unknown_fields == "reject":
        raise GatewayError("unknown_field", f"Unknown field: '{extra[0]}' for {where}.", extra[0])
    if warn is not None:
        for key in extra:
            warn(
                "unsupported_field",
                key,
                f"Field '{key}' is not part of {where}; it was forwarded unchecked.",
            )
    return {key: value for key, value in payload.items() if key in known}


def _model_xor_gateway(payload: dict[str, Any]) -> None:
    gateway = payload.get("gateway")
    models = gateway.get("models") if isinstance(gateway, dict) else None
    if payload.get("model") is not None:
        if models is not None:
            raise GatewayError(
                "invalid_parameter_value",
                "Send either 'model' or 'gateway.models', not both.",
                "gateway.models",
            )
    elif models is None:
        raise GatewayError(
            "missing_required_parameter",
            "Missing required parameter: 'model' (or 'gateway.models').",
            "model",
        )


def _normalize_chat(payload: dict[str, Any]) -> bool:
    changed = False
    if "functions" in payload:
        functions = payload.pop("functions")
        changed = True
        if functions is not None:
            payload["tools"] = [{"type": "function", "function": fn} for fn in functions]
    if "function_call" in payload:
        function_call = payload.pop("function_call")
        changed = True
        if isinstance(function_call, str):
            payload["tool_choice"] = function_call
        elif function_call is not None:
            name = function_call["name"]
            payload["tool_choice"] = {"type": "function", "function": {"name": name}}
    return changed


def _normalize_responses(payload: dict[str, Any]) -> bool:
    reasoning = payload.get("reasoning")
    if isinstance(reasoning, dict) and "generate_summary" in reasoning:
        summary = reasoning.pop("generate_summary")
        if reasoning.get("summary") is None and summary is not None:
            reasoning["summary"] = summary
        return True
    return False


def validate_payload(
    endpoint: Endpoint,
    payload: dict[str, Any],
    *,
    unknown_fields: UnknownFields = "reject",
    warn: WarnFn | None = None,
    inline_files: bool = False,
) -> bool:
    """Check and normalize ``payload`` in place; True if the normalization changed it.

    ``inline_files`` accepts Responses ``input_file`` parts sent inline (``file_data`` or
    ``file_url``); without it they are 400 ``operation_not_allowed`` (a stateless endpoint).
    """
    if type(payload) is not dict and not isinstance(cast(object, payload), dict):
        raise GatewayError("invalid_request", "The request body must be a JSON object.")
    if SIMPLE[endpoint](payload):
        return False  # valid as it is, and nothing in it to normalize
    return validate_with_model(
        endpoint, payload, unknown_fields=unknown_fields, warn=warn, inline_files=inline_files
    )


def validate_with_model(
    endpoint: Endpoint,
    payload: dict[str, Any],
    *,
    unknown_fields: UnknownFields = "reject",
    warn: WarnFn | None = None,
    inline_files: bool = False,
) -> bool:
    """:func:`validate_payload` for a payload (a dict) the plain-request check already refused:
    the model's check and the normalization, without asking that check again (it walks every
    message of a long conversation)."""
    model, known, where = _ENDPOINTS[endpoint]
    checked = _known_only(payload, known, where, unknown_fields, warn)
    _model_xor_gateway(payload)
    try:
        model.model_validate(checked, context={INLINE_FILES: True} if inline_files else None)
    except ValidationError as exc:
        raise error_from_validation(exc) from None
    if endpoint == "chat_completions":
        changed = _normalize_chat(payload)
    else:
        changed = _normalize_responses(payload)
    extensions = payload.get("extensions")
    if extensions and sanitize_extensions(extensions, warn):
        changed = True
    return changed


def validate_request(
    endpoint: Endpoint,
    payload: dict[str, Any],
    *,
    unknown_fields: UnknownFields = "reject",
    warn: WarnFn | None = None,
    inline_files: bool = False,
) -> dict[str, Any]:
    """Validate a request for ``endpoint`` and return it, normalized in place."""
    validate_payload(
        endpoint, payload, unknown_fields=unknown_fields, warn=warn, inline_files=inline_files
    )
    return payload


def validate_chat_request(
    payload: dict[str, Any],
    *,
    unknown_fields: UnknownFields = "reject",
    warn: WarnFn | None = None,
) -> dict[str, Any]:
    """Validate a Chat Completions request; ``warn(type, code, message)`` gets the warnings."""
    return validate_request("chat_completions", payload, unknown_fields=unknown_fields, warn=warn)


def validate_responses_request(
    payload: dict[str, Any],
    *,
    unknown_fields: UnknownFields = "reject",
    warn: WarnFn | None = None,
    inline_files: bool = False,
) -> dict[str, Any]:
    """Validate a Responses request; ``warn(type, code, message)`` gets the warnings.

    ``inline_files=True`` accepts ``input_file`` parts with ``file_data`` or ``file_url``.
    """
    return validate_request(
        "responses", payload, unknown_fields=unknown_fields, warn=warn, inline_files=inline_files
    )
