"""Normalization (deprecated forms, extensions sanitisation) and the validator functions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from akgate.errors import GatewayError
from akgate.validation import (
    RequestValidation,
    validate_chat_request,
    validate_request,
    validate_responses_request,
)
from akgate.validation._extensions import sanitize_extensions
from akgate.validation._from_pydantic import loc_to_param

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


def chat(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(CHAT), **fields}


@pytest.mark.parametrize(
    ("function_call", "tool_choice"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ({"name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_function_call_becomes_tool_choice(function_call: Any, tool_choice: Any) -> None:
    payload = validate_chat_request(chat(functions=[{"name": "f"}], function_call=function_call))
    assert payload["tool_choice"] == tool_choice
    assert "function_call" not in payload


def test_functions_become_tools() -> None:
    fn = {"name": "f", "description": "d", "parameters": {"type": "object"}}
    payload = validate_chat_request(chat(functions=[fn]))
    assert payload["tools"] == [{"type": "function", "function": fn}]
    assert "functions" not in payload


def test_null_functions_are_dropped() -> None:
    payload = validate_chat_request(chat(functions=None, function_call=None))
    assert payload == CHAT


def test_generate_summary_becomes_summary() -> None:
    payload = validate_responses_request(
        {"model": "m", "input": "x", "reasoning": {"generate_summary": "concise"}}
    )
    assert payload["reasoning"] == {"summary": "concise"}


def test_validators_return_the_same_dict() -> None:
    payload = chat()
    assert validate_chat_request(payload) is payload
    assert validate_request("chat_completions", payload) is payload


def test_validator_raises_gateway_error() -> None:
    with pytest.raises(GatewayError) as info:
        validate_responses_request({"model": "m", "input": "x", "store": True})
    assert (info.value.code, info.value.param, info.value.status) == (
        "operation_not_allowed",
        "store",
        400,
    )


def test_validator_refuses_non_dict() -> None:
    with pytest.raises(GatewayError) as info:
        validate_chat_request([1])  # type: ignore[arg-type]
    assert info.value.code == "invalid_request"


@pytest.mark.parametrize(
    ("extensions", "kept", "codes"),
    [
        (
            {"openai": {"api_key": "sk-1", "user_tier": "x"}},
            {"openai": {"user_tier": "x"}},
            ["extensions.openai.api_key"],
        ),
        (
            {"anthropic": {"headers": {"X-Api-Key": "s", "Accept": "a"}, "top_k": 5}},
            {"anthropic": {"headers": {"Accept": "a"}, "top_k": 5}},
            ["extensions.anthropic.headers.X-Api-Key"],
        ),
        (
            {"google": {"safety": [{"token": "t", "level": 1}]}},
            {"google": {"safety": [{"level": 1}]}},
            ["extensions.google.safety[0].token"],
        ),
        (
            {"openai": {"Authorization": "Bearer x", "ACCESS-TOKEN": "y", "Password": "z"}},
            {"openai": {}},
            [
                "extensions.openai.Authorization",
                "extensions.openai.ACCESS-TOKEN",
                "extensions.openai.Password",
            ],
        ),
        (
            {"openai": {"model": "gpt-5", "maxTokens": 5, "Temperature": 1, "store": True}},
            {"openai": {"store": True}},
            [
                "extensions.openai.model",
                "extensions.openai.maxTokens",
                "extensions.openai.Temperature",
            ],
        ),
        (
            {"google": {"systemInstruction": "x", "generation": {"temperature": 1}}},
            {"google": {"generation": {"temperature": 1}}},
            ["extensions.google.systemInstruction"],
        ),
        ({"deepseek": None}, {"deepseek": None}, []),
    ],
    ids=["auth", "nested-auth", "auth-in-list", "auth-case", "core", "core-camel", "null"],
)
def test_extensions_sanitised(extensions: Any, kept: Any, codes: list[str]) -> None:
    warnings: list[tuple[str, str, str]] = []
    payload = validate_chat_request(chat(extensions=extensions), warn=lambda *w: warnings.append(w))
    assert payload["extensions"] == kept
    assert sorted(code for _, code, _ in warnings) == sorted(codes)
    assert {type_ for type_, _, _ in warnings} <= {"blocked_field"}


def test_blocked_warning_never_echoes_the_secret() -> None:
    warnings: list[tuple[str, str, str]] = []
    extensions = {"openai": {"api_key": "sk-secret-123"}}
    validate_chat_request(chat(extensions=extensions), warn=lambda *w: warnings.append(w))
    assert "sk-secret-123" not in repr(warnings)


def test_sanitiser_handles_deep_python_payloads() -> None:
    node: dict[str, Any] = {"token": "t"}
    root = node
    for _ in range(5000):
        node["next"] = {"token": "t"}
        node = node["next"]
    assert sanitize_extensions({"x": root}, None)
    assert "token" not in node


async def test_warnings_reach_the_context(inner: Any, client_for: Any) -> None:
    body = chat(extensions={"openai": {"api_key": "sk-1", "seed": 3, "logit_bias": {}}})
    client = client_for(RequestValidation(inner))
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert inner.seen.json["extensions"] == {"openai": {}}
    assert [w["code"] for w in inner.seen.ctx.warnings] == [
        "extensions.openai.api_key",
        "extensions.openai.seed",
        "extensions.openai.logit_bias",
    ]
    assert all(w["type"] == "blocked_field" for w in inner.seen.ctx.warnings)


@pytest.mark.parametrize(
    ("loc", "param"),
    [
        (("messages", 3, "content", 0, "image_url", "url"), "messages[3].content[0].image_url.url"),
        (("gateway", "routing", "max_fallback_attempts"), "gateway.routing.max_fallback_attempts"),
        (("tools", 0, "\x00function", "function", "name"), "tools[0].function.name"),
        (("input", "\x00list", 2, "\x00message", "content"), "input[2].content"),
    ],
)
def test_loc_to_param(loc: tuple[Any, ...], param: str) -> None:
    assert loc_to_param(loc) == param
