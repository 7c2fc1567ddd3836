"""Request mapping: Responses request -> chat request (responses-bridge.md §5)."""

from __future__ import annotations

from typing import Any

import pytest

from akgate.adapter import AdapterOptions, to_chat_request
from akgate.errors import GatewayError

OPTS = AdapterOptions()


def chat(body: dict[str, Any], options: AdapterOptions = OPTS) -> dict[str, Any]:
    return to_chat_request({"model": "m", **body}, options)


def error(body: dict[str, Any]) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        chat(body)
    return info.value


def test_string_input_is_a_user_message() -> None:
    assert chat({"input": "hi"})["messages"] == [{"role": "user", "content": "hi"}]


def test_instructions_prepend_a_system_message() -> None:
    messages = chat({"input": "hi", "instructions": "Be kind"})["messages"]
    assert messages[0] == {"role": "system", "content": "Be kind"}


def test_message_items_of_every_role() -> None:
    messages = chat(
        {
            "input": [
                {"role": "system", "content": "s"},
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "d"}],
                },
                {"role": "user", "content": [{"type": "input_text", "text": "u"}]},
                {
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": "a", "annotations": []},
                        {"type": "output_text", "text": "b"},
                    ],
                },
            ]
        }
    )["messages"]
    assert messages == [
        {"role": "system", "content": "s"},
        {"role": "developer", "content": "d"},
        {"role": "user", "content": [{"type": "text", "text": "u"}]},
        {"role": "assistant", "content": "ab"},
    ]


def test_developer_role_maps_to_system_when_configured() -> None:
    messages = chat(
        {"input": [{"role": "developer", "content": "d"}]}, AdapterOptions(developer_role="system")
    )["messages"]
    assert messages == [{"role": "system", "content": "d"}]


def test_assistant_refusal_only_content_is_kept() -> None:
    messages = chat(
        {"input": [{"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}]}
    )["messages"]
    assert messages == [{"role": "assistant", "content": None, "refusal": "No."}]


def test_input_image_url_and_data_url_with_detail() -> None:
    content = chat(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_image", "image_url": "https://e.x/a.png", "detail": "low"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                        {
                            "type": "input_image",
                            "image_url": "https://e.x/b.png",
                            "detail": "original",
                        },
                    ],
                }
            ]
        }
    )["messages"][0]["content"]
    assert content == [
        {"type": "image_url", "image_url": {"url": "https://e.x/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}},
        {"type": "image_url", "image_url": {"url": "https://e.x/b.png", "detail": "high"}},
    ]


def test_function_calls_merge_into_one_assistant_message_and_outputs_follow() -> None:
    messages = chat(
        {
            "input": [
                {"role": "user", "content": "weather?"},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "f",
                    "arguments": "{}",
                    "id": "fc_1",
                    "status": "completed",
                },
                {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": '{"a":1}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "ok"}],
                },
            ]
        }
    )["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "ok"},
    ]


def test_function_call_joins_preceding_assistant_text() -> None:
    messages = chat(
        {
            "input": [
                {"role": "assistant", "content": "Let me check"},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            ]
        }
    )["messages"]
    assert len(messages) == 1
    assert messages[0]["tool_calls"][0]["id"] == "c"


def test_orphan_function_call_output_is_400() -> None:
    err = error({"input": [{"type": "function_call_output", "call_id": "x", "output": "o"}]})
    assert err.code == "invalid_parameter_value"
    assert err.param == "input[0].call_id"


def test_reasoning_items_are_dropped_by_default() -> None:
    messages = chat(
        {
            "input": [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "t"}],
                },
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            ]
        }
    )["messages"]
    assert "reasoning_content" not in messages[0]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_items_are_carried_back_when_configured(field: str) -> None:
    messages = chat(
        {
            "input": [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "encrypted_content": "zzz",
                    "summary": [{"type": "summary_text", "text": "think"}],
                },
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            ]
        },
        AdapterOptions(reasoning_input=field),
    )["messages"]  # type: ignore[arg-type]
    assert messages[0][field] == "think"


def test_flat_function_tools_become_nested_and_strict_only_when_given() -> None:
    tools = chat(
        {
            "input": "x",
            "tools": [
                {
                    "type": "function",
                    "name": "f",
                    "description": "d",
                    "parameters": {"type": "object"},
                    "strict": True,
                },
                {"type": "function", "name": "g", "parameters": None, "strict": None},
            ],
        }
    )["tools"]
    assert tools == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "g"}},
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "f"}}],
                },
            },
        ),
    ],
)
def test_every_tool_choice_form(given: Any, expected: Any) -> None:
    assert chat({"input": "x", "tool_choice": given})["tool_choice"] == expected


def test_hosted_tool_choice_is_400() -> None:
    assert error({"input": "x", "tool_choice": {"type": "file_search"}}).param == "tool_choice"


def test_text_format_json_schema_keeps_strict_and_description() -> None:
    body = chat(
        {
            "input": "x",
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "n",
                    "schema": {"type": "object"},
                    "strict": True,
                    "description": "d",
                },
                "verbosity": "low",
            },
        }
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "n",
            "schema": {"type": "object"},
            "strict": True,
            "description": "d",
        },
    }
    assert body["verbosity"] == "low"


def test_text_format_text_is_omitted_and_json_object_kept() -> None:
    assert "response_format" not in chat({"input": "x", "text": {"format": {"type": "text"}}})
    body = chat({"input": "x", "text": {"format": {"type": "json_object"}}})
    assert body["response_format"] == {"type": "json_object"}


def test_scalar_fields_are_mapped() -> None:
    body = chat(
        {
            "input": "x",
            "reasoning": {"effort": "high", "summary": "auto"},
            "max_output_tokens": 9,
            "temperature": 0.1,
            "top_p": 0.9,
            "top_logprobs": 3,
            "parallel_tool_calls": False,
            "tools": [{"type": "function", "name": "f"}],
            "user": "u",
            "metadata": {"a": "b"},
            "prompt_cache_key": "k",
            "safety_identifier": "s",
            "service_tier": "flex",
            "truncation": "auto",
            "include": ["reasoning.encrypted_content"],
            "max_tool_calls": 2,
        }
    )
    assert body["reasoning_effort"] == "high"
    assert body["max_completion_tokens"] == 9
    assert (body["temperature"], body["top_p"]) == (0.1, 0.9)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 3)
    assert body["parallel_tool_calls"] is False
    for key, value in (
        ("user", "u"),
        ("metadata", {"a": "b"}),
        ("prompt_cache_key", "k"),
        ("safety_identifier", "s"),
        ("service_tier", "flex"),
    ):
        assert body[key] == value
    for key in ("truncation", "include", "max_tool_calls", "max_output_tokens", "reasoning"):
        assert key not in body


def test_max_tokens_field_is_configurable() -> None:
    body = chat(
        {"input": "x", "max_output_tokens": 5}, AdapterOptions(max_tokens_field="max_tokens")
    )
    assert body["max_tokens"] == 5
    assert "max_completion_tokens" not in body


def test_stream_adds_include_usage() -> None:
    body = chat({"input": "x", "stream": True})
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "stream" not in chat({"input": "x", "stream": False})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"store": True}, "store"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"conversation": "c"}, "conversation"),
    ],
)
def test_stateless_features_are_operation_not_allowed(body: dict[str, Any], param: str) -> None:
    err = error({"input": "x", **body})
    assert (err.code, err.param, err.status) == ("operation_not_allowed", param, 400)


def test_item_reference_is_operation_not_allowed() -> None:
    err = error({"input": [{"type": "item_reference", "id": "msg_1"}]})
    assert (err.code, err.param) == ("operation_not_allowed", "input[0]")


def test_input_file_is_operation_not_allowed() -> None:
    err = error(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "t"},
                        {"type": "input_file", "file_id": "f"},
                    ],
                }
            ]
        }
    )
    assert (err.code, err.param) == ("operation_not_allowed", "input[0].content[1]")


def test_image_file_id_is_400() -> None:
    err = error(
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}
    )
    # Same code as RequestValidation (rule responses.input.image_file_id).
    assert (err.code, err.param) == ("operation_not_allowed", "input[0].content[0].file_id")


def test_hosted_tool_items_are_400() -> None:
    err = error({"input": [{"type": "web_search_call", "id": "ws_1"}]})
    assert (err.code, err.param) == ("hosted_tool_not_supported", "input[0]")


def test_hosted_tools_are_400() -> None:
    err = error(
        {"input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "file_search"}]}
    )
    assert (err.code, err.param) == ("hosted_tool_not_supported", "tools[1]")


def test_store_false_and_background_false_are_accepted() -> None:
    assert "store" not in chat({"input": "x", "store": False, "background": False})


def test_missing_model_without_gateway_is_400() -> None:
    with pytest.raises(GatewayError) as info:
        to_chat_request({"input": "x"}, OPTS)
    assert (info.value.code, info.value.param) == ("missing_required_parameter", "model")


def test_unknown_fields_pass_through() -> None:
    assert chat({"input": "x", "top_k": 3, "custom_flag": True})["custom_flag"] is True


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 3}, "input"),
        ({"input": "x", "temperature": "hot"}, "temperature"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "x", "max_output_tokens": 1.5}, "max_output_tokens"),
        ({"input": []}, "input"),
    ],
)
def test_bad_values_name_the_param(body: dict[str, Any], param: str) -> None:
    assert error(body).param == param
