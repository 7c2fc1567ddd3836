"""``akgate._faults``: any upstream error vocabulary maps onto one registry code."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akgate._faults import fault_payload, provider_code, registry_code, responses_error_event
from akgate.errors import ERROR_CODES, ERROR_TYPES


@pytest.mark.parametrize(
    ("code", "type_", "status", "expected"),
    [
        ("server_error", "server_error", None, "upstream_error"),  # OpenAI's own vocabulary
        (None, "rate_limit_error", None, "rate_limit_exceeded"),
        ("rate_limit_exceeded", None, None, "rate_limit_exceeded"),
        ("insufficient_quota", "insufficient_quota", None, "insufficient_quota"),
        ("context_length_exceeded", "invalid_request_error", None, "context_length_exceeded"),
        (None, None, 429, "rate_limit_exceeded"),
        (None, None, 504, "upstream_timeout"),
        ("timeout", None, None, "upstream_timeout"),
        (None, None, None, "upstream_error"),
    ],
)
def test_registry_code(code: Any, type_: Any, status: Any, expected: str) -> None:
    assert registry_code(code, type_, status) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("internal_error", "upstream_error"),
        ("service_unavailable", "no_provider_available"),
        ("upstream_timeout", "upstream_timeout"),
        ("budget_exhausted", "rate_limit_exceeded"),
        ("content_filtered", "content_filtered"),
    ],
)
def test_a_providers_code_is_reported_as_routing_reports_its_status(
    code: str, expected: str
) -> None:
    assert provider_code(code) == expected


@given(
    st.dictionaries(
        st.sampled_from(["code", "type", "message", "param"]),
        st.one_of(st.none(), st.text(max_size=20), st.integers()),
    )
)
def test_every_payload_is_in_the_registry(error: dict[str, Any]) -> None:
    for provider in (None, "p"):
        payload = fault_payload(error, provider=provider)
        assert payload["code"] in ERROR_CODES
        assert payload["type"] in ERROR_TYPES
        assert payload["doc_url"].endswith("/" + payload["code"])
        assert isinstance(payload["message"], str)
        assert payload["message"]
        event = responses_error_event(payload, 3)
        assert event["type"] == "error"
        assert (event["code"], event["sequence_number"]) == (payload["code"], 3)
        assert event["error"] == payload
