"""The request as routing reads it (``gateway``) and as one provider receives it.

When no validation layer ran, routing checks ``gateway`` and the ``model`` / ``gateway.models``
rule itself and strips blocked fields from the chosen provider's ``extensions`` with the
validation layer's own rules (docs/compatibility.md, Contract §6); otherwise it trusts the
payload.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from pydantic import ValidationError

from akgate.context import Endpoint
from akgate.errors import GatewayError
from akgate.schemas.gateway import GatewayParams
from akgate.validation._extensions import sanitize_extensions
from akgate.validation._from_pydantic import error_from_validation

from ._strategies import Needs, Route, normalize_effort

__all__ = ["DOCUMENTED_EXTENSION_PROVIDERS", "provider_payload", "read_gateway", "strip_extension"]


def read_gateway(payload: Mapping[str, Any], *, validated: bool) -> Mapping[str, Any]:
    """The ``gateway`` object as a mapping; validated here unless a validation layer did."""
    raw = payload.get("gateway")
    if raw is None and validated:
        return _NO_GATEWAY  # the usual request: nothing to read
    if not validated:
        if raw is not None:
            try:
                GatewayParams.model_validate(raw)
            except ValidationError as exc:
                # The validation layer's mapping, so both layers answer a bad field alike.
                raise error_from_validation(exc, loc_prefix=("gateway",)) from None
        model = payload.get("model")
        models = raw.get("models") if raw is not None and isinstance(raw, Mapping) else None
        if model is not None and models is not None:
            raise GatewayError(
                "invalid_parameter_value",
                "Provide either 'model' or 'gateway.models', not both.",
                "gateway.models",
            )
        if model is None and models is None:
            raise GatewayError(
                "missing_required_parameter",
                "'model' is required unless 'gateway.models' is given.",
                "model",
            )
        if model is not None and (not isinstance(model, str) or not model):
            raise GatewayError(
                "invalid_parameter_value", "'model' must be a non-empty string.", "model"
            )
    return raw if raw is not None and isinstance(raw, Mapping) else _NO_GATEWAY


#: The ``gateway`` of a request without one (read-only: routing never writes to it).
_NO_GATEWAY: Final[Mapping[str, Any]] = MappingProxyType({})


def strip_extension(
    provider: str, value: Mapping[str, Any], warnings: list[dict[str, str]]
) -> dict[str, Any]:
    """A copy of ``extensions.<provider>`` without blocked fields (the validation layer's rules)."""

    def warn(type_: str, code: str, message: str) -> None:
        warnings.append({"type": type_, "code": code, "message": message})

    ext = {provider: copy.deepcopy(dict(value))}
    sanitize_extensions(ext, warn)
    return ext[provider]


#: The providers the contract documents as ``extensions`` keys: known even when no provider of
#: that name is configured, so sending one is "ignored for this provider", never "unknown".
DOCUMENTED_EXTENSION_PROVIDERS: Final = frozenset({"anthropic", "openai", "google", "deepseek"})


def provider_payload(
    payload: Mapping[str, Any],
    endpoint: Endpoint,
    route: Route,
    needs: Needs,
    stream: bool,
    strip_blocked: bool,
    known_providers: frozenset[str] | set[str],
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The body for ``route``'s provider and the warnings that apply if it serves."""
    warnings: list[dict[str, str]] = []
    # A copy without the gateway's own fields (dict() and two pops keep the key order of a
    # filtering comprehension, for a fraction of its cost).
    body = dict(payload)
    body.pop("gateway", None)
    extensions = body.pop("extensions", None)
    body["model"] = route.provider_model_id
    if endpoint == "responses" and "responses" in route.provider.endpoints:
        # The caller's own bookkeeping never reaches a provider (a chat-only provider's adapter
        # keeps it out of the chat body itself, and may store it with the response).
        body.pop("client_metadata", None)
    if extensions is not None and isinstance(extensions, Mapping):
        name = route.provider.name
        for key, value in extensions.items():
            if key == name:
                if isinstance(value, Mapping):
                    ext = strip_extension(key, value, warnings) if strip_blocked else value
                    body.update(ext)
            elif key in known_providers or key in DOCUMENTED_EXTENSION_PROVIDERS:
                warnings.append(
                    {
                        "type": "ignored_extension",
                        "code": f"extensions.{key}",
                        "message": f"extensions.{key} was ignored for this provider: the request "
                        f"was served by '{name}'.",
                    }
                )
            else:
                warnings.append(
                    {
                        "type": "unknown_provider",
                        "code": f"extensions.{key}",
                        "message": f"extensions.{key} names an unknown provider and was ignored.",
                    }
                )
    supported = route.offering.supported_parameters
    if supported is not None:
        for param in needs.params:
            if param not in supported:
                del body[param]
                warnings.append(
                    {
                        "type": "unsupported_parameter",
                        "code": param,
                        "message": f"'{param}' is not supported by '{route.provider.name}' "
                        "and was dropped.",
                    }
                )
    if needs.effort is not None:
        _reasoning(body, endpoint, route, needs.effort, warnings)
    if endpoint == "messages":
        _clamp_max_tokens(body, route, warnings)
    if stream and endpoint == "chat_completions":
        # include_usage is forced: the final chunk carries usage and routing_metadata.
        options = body.get("stream_options")
        # (``None`` and parsed dicts answered first: the Mapping ABC check of ``None``, the
        # usual value, costs a third of a microsecond.)
        kept: Mapping[str, Any] = (
            options
            if options is not None and (type(options) is dict or isinstance(options, Mapping))
            else {}
        )
        body["stream_options"] = {**kept, "include_usage": True}
    return body, warnings


def _clamp_max_tokens(body: dict[str, Any], route: Route, warnings: list[dict[str, str]]) -> None:
    """Anthropic clients ask for large ``max_tokens`` (Claude Code: 32000); a chat backend
    refuses more than its output cap, so the request gets the model's cap instead."""
    cap = route.offering.max_output_tokens
    asked = body.get("max_tokens")
    if cap is None or not isinstance(asked, int) or isinstance(asked, bool) or asked <= cap:
        return
    body["max_tokens"] = cap
    warnings.append(
        {
            "type": "clamped_parameter",
            "code": "max_tokens",
            "message": f"'max_tokens' {asked} is above {route.model.id}'s output limit; "
            f"sent {cap}.",
        }
    )


def _reasoning(
    body: dict[str, Any],
    endpoint: Endpoint,
    route: Route,
    effort: str,
    warnings: list[dict[str, str]],
) -> None:
    caps = route.offering.capabilities
    param = "reasoning_effort" if endpoint == "chat_completions" else "reasoning.effort"
    model = route.model.id
    new: str | None = normalize_effort(effort, caps.reasoning_efforts) if caps.reasoning else None
    if new == effort:
        return
    if new is None:
        # Only "off"/"none" reaches here on a non-reasoning model (filters rejected the rest).
        message = f"'{param}' was dropped: {model} does not reason."
    else:
        message = f"'{param}' {effort!r} is not accepted by {model}; sent {new!r} instead."
    warnings.append({"type": "unsupported_parameter", "code": param, "message": message})
    if endpoint == "chat_completions":
        if new is None:
            body.pop("reasoning_effort", None)
        else:
            body["reasoning_effort"] = new
    else:
        reasoning = dict(body.get("reasoning") or {})
        if new is None:
            reasoning.pop("effort", None)
        else:
            reasoning["effort"] = new
        if reasoning:
            body["reasoning"] = reasoning
        else:
            body.pop("reasoning", None)
