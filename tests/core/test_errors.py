from __future__ import annotations

import json

import pytest

from akgate._types import Message
from akgate.errors import (
    ERROR_CODES,
    ERROR_TYPES,
    GatewayError,
    error_payload,
    send_error,
    status_for,
)
from akgate.schemas import ErrorEnvelope

# The Auriko registry (auriko-contract.md §9.2), status by code.
SPEC_STATUSES = {
    "invalid_request": 400,
    "missing_required_parameter": 400,
    "invalid_parameter_value": 400,
    "unknown_field": 400,
    "operation_not_allowed": 400,
    "response_api_only": 400,
    "hosted_tool_not_supported": 400,
    "invalid_api_key": 401,
    "expired_api_key": 401,
    "insufficient_permissions": 403,
    "model_not_found": 404,
    "method_not_allowed": 405,
    "duplicate_resource": 409,
    "payload_too_large": 413,
    "rate_limit_exceeded": 429,
    "budget_exhausted": 429,
    "internal_error": 500,
    "upstream_error": 502,
    "no_provider_available": 503,
    "service_unavailable": 503,
    "upstream_timeout": 504,
}


@pytest.mark.parametrize(("code", "status"), sorted(SPEC_STATUSES.items()))
def test_registry_status(code: str, status: int) -> None:
    assert status_for(code) == status


def test_every_code_has_a_known_type() -> None:
    assert {type_ for _, type_ in ERROR_CODES.values()} <= set(ERROR_TYPES)
    assert len(ERROR_CODES) >= 60


def test_types_per_status() -> None:
    assert ERROR_CODES["invalid_api_key"][1] == "authentication_error"
    assert ERROR_CODES["insufficient_permissions"][1] == "permission_error"
    assert ERROR_CODES["model_not_found"][1] == "not_found_error"
    assert ERROR_CODES["rate_limit_exceeded"][1] == "rate_limit_error"
    assert ERROR_CODES["upstream_timeout"][1] == "api_error"
    assert ERROR_CODES["method_not_allowed"][1] == "invalid_request_error"


def test_payload_shape_validates_as_envelope() -> None:
    payload = error_payload("model_not_found", "Model 'x' is not in the catalog.", "model")
    envelope = ErrorEnvelope.model_validate({"error": payload})
    assert envelope.error.doc_url == "https://docs.auriko.ai/errors/model_not_found"
    assert envelope.error.type == "not_found_error"


def test_gateway_error_status_override_and_repr_has_no_message() -> None:
    err = GatewayError("invalid_request", "Content-Type must be application/json.", status=415)
    assert err.status == 415
    assert err.type == "invalid_request_error"
    assert "Content-Type" not in repr(err)


def test_optional_provider_and_suggestion() -> None:
    err = GatewayError("upstream_error", "boom", provider="openai", suggestion="retry later")
    assert err.payload()["provider"] == "openai"
    assert err.payload()["suggestion"] == "retry later"
    assert "provider" not in error_payload("upstream_error", "boom")


async def test_send_error_writes_status_headers_and_body() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    err = GatewayError("rate_limit_exceeded", "Slow down.", headers={"Retry-After": "12"})
    await send_error(send, err)
    start, body = sent
    assert start["status"] == 429
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"12"
    assert headers[b"content-type"] == b"application/json; charset=utf-8"
    assert int(headers[b"content-length"]) == len(body["body"])
    assert json.loads(body["body"])["error"]["code"] == "rate_limit_exceeded"
