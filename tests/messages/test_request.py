"""Anthropic Messages request -> chat request mapping (``to_chat_request``)."""

from __future__ import annotations

from typing import Any

import pytest

from akgate.context import RequestContext
from akgate.errors import GatewayError
from akgate.messages import MessagesOptions, to_chat_request
from akgate.messages._ids import chat_tool_id, client_tool_id

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"file_path": {"type": "string"}},
    "required": ["file_path"],
    "additionalProperties": False,
}
EPHEMERAL = {"type": "ephemeral"}

#: What an agentic coding CLI sends on a tool turn (the shape captured from Claude Code).
CLAUDE_CODE: dict[str, Any] = {
    "model": "demo",
    "max_tokens": 32000,
    "stream": True,
    "metadata": {"user_id": '{"device_id":"d","account_uuid":"","session_id":"s"}'},
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332"},
        {"type": "text", "text": "You are a coding agent.", "cache_control": EPHEMERAL},
        {"type": "text", "text": "Main prompt.", "cache_control": EPHEMERAL},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                {"type": "text", "text": "Read notes.txt"},
            ],
        },
        {
            "role": "system",
            "content": [{"type": "text", "text": "Environment: linux", "cache_control": EPHEMERAL}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should read it.", "signature": "EqQBCkYIB..."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "Read",
                    "input": {"file_path": "notes.txt"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A",
                    "content": "no such file",
                    "is_error": True,
                    "cache_control": EPHEMERAL,
                },
            ],
        },
    ],
    "tools": [
        {"name": "Read", "description": "Read a file", "input_schema": SCHEMA},
        {
            "name": "DeferredToolPlaceholder",
            "description": "x",
            "defer_loading": True,
            "input_schema": {"type": "object"},
        },
    ],
    "thinking": {"type": "adaptive", "display": "omitted"},
    "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
}


def chat_of(payload: dict[str, Any], **options: Any) -> dict[str, Any]:
    return to_chat_request(payload, MessagesOptions(**options), RequestContext())[0]


def test_a_claude_code_request_maps_without_error() -> None:
    chat, info = to_chat_request(CLAUDE_CODE, MessagesOptions(), RequestContext())
    messages = chat["messages"]
    # System blocks, then the system message from inside messages, in order, as one prompt.
    assert messages[0] == {
        "role": "system",
        "content": "x-anthropic-billing-header: cc_version=2.1.332\n\nYou are a coding agent."
        "\n\nMain prompt.\n\nEnvironment: linux",
    }
    assert messages[1] == {
        "role": "user",
        "content": "<system-reminder>ctx</system-reminder>\n\nRead notes.txt",
    }
    assert messages[2]["role"] == "assistant"
    assert messages[2]["tool_calls"] == [
        {
            "id": "01A",
            "type": "function",
            "function": {"name": "Read", "arguments": '{"file_path":"notes.txt"}'},
        }
    ]
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": "01A",
        "content": "[tool error] no such file",
    }
    # The deferred placeholder is never exposed; $schema is not sent to chat backends.
    assert [t["function"]["name"] for t in chat["tools"]] == ["Read"]
    assert "$schema" not in chat["tools"][0]["function"]["parameters"]
    assert chat["max_completion_tokens"] == 32000
    assert chat["reasoning_effort"] == "high"
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}
    assert len(chat["safety_identifier"]) == 32
    assert "d" not in chat["safety_identifier"].split()  # a hash, not the JSON string
    assert info.omit_thinking is True
    for key in ("context_management", "output_config", "metadata", "thinking", "system"):
        assert key not in chat


def test_tool_ids_round_trip_and_foreign_ids_pass() -> None:
    for backend in ("call_abc", "functions.Bash:0", "b64-x", "", "ü"):
        shown = client_tool_id(backend or None)
        assert shown.startswith("toolu_")
        if backend:
            assert chat_tool_id(shown) == backend
    assert chat_tool_id("srv_1") == "srv_1"


def test_tool_results_come_first_and_images_follow_in_a_user_turn() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    payload = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and also"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_x",
                        "content": [{"type": "text", "text": "result"}, image],
                    },
                ],
            },
        ],
    }
    messages = chat_of(payload)["messages"]
    assert messages[1] == {"role": "tool", "tool_call_id": "x", "content": "result"}
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "and also"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
    }


def test_documents_and_search_results() -> None:
    payload = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "T",
                        "source": {"type": "text", "media_type": "text/plain", "data": "body"},
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBE",
                        },
                    },
                    {
                        "type": "search_result",
                        "title": "S",
                        "source": "u",
                        "content": [{"type": "text", "text": "found"}],
                    },
                ],
            }
        ],
    }
    parts = chat_of(payload)["messages"][0]["content"]
    assert parts[:2] == [{"type": "text", "text": "T"}, {"type": "text", "text": "body"}]
    assert parts[2]["type"] == "file"
    assert parts[2]["file"]["file_data"] == "data:application/pdf;base64,JVBE"
    assert parts[3:] == [{"type": "text", "text": "S"}, {"type": "text", "text": "found"}]
    url_doc = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
                ],
            }
        ],
    }
    with pytest.raises(GatewayError) as err:
        chat_of(url_doc)
    assert err.value.param == "messages[0].content[0].source.type"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
            {
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "parallel_tool_calls": False,
            },
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    payload = {
        "model": "m",
        "max_tokens": 5,
        "tool_choice": choice,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    }
    chat = chat_of(payload)
    assert {k: chat[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("thinking", "config", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 8000}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 30000}, None, "high"),
        ({"type": "adaptive"}, {"effort": "max"}, "high"),
        ({"type": "adaptive"}, None, None),
        ({"type": "disabled"}, {"effort": "low"}, None),
        (None, {"effort": "medium"}, "medium"),
    ],
)
def test_thinking_and_effort(thinking: Any, config: Any, effort: str | None) -> None:
    payload: dict[str, Any] = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if thinking is not None:
        payload["thinking"] = thinking
    if config is not None:
        payload["output_config"] = config
    assert chat_of(payload).get("reasoning_effort") == effort


def test_sampling_stop_and_format() -> None:
    ctx = RequestContext()
    chat, _ = to_chat_request(
        {
            "model": "m",
            "max_tokens": 5,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 5,
            "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        },
        MessagesOptions(),
        ctx,
    )
    assert (chat["temperature"], chat["top_p"], chat["stop"]) == (0.2, 0.9, ["END"])
    assert "top_k" not in chat
    assert chat["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert [w["code"] for w in ctx.warnings] == ["top_k"]


def test_replayed_thinking_is_carried_where_the_provider_takes_it() -> None:
    payload = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "ok"},
                ],
            },
        ],
    }
    assert "reasoning_content" not in chat_of(payload)["messages"][1]
    carried = chat_of(payload, reasoning_input="reasoning_content")["messages"][1]
    assert carried == {"role": "assistant", "content": "ok", "reasoning_content": "hmm"}


SERVER_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [SERVER_TOOL]},
        {"mcp_servers": [{"type": "url", "url": "https://mcp", "name": "m"}]},
        {"container": "container_1"},
    ],
)
def test_hosted_tools_strict_is_a_400_and_lenient_drops_with_a_warning(
    extra: dict[str, Any],
) -> None:
    payload = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }
    with pytest.raises(GatewayError) as err:
        to_chat_request(payload, MessagesOptions(), RequestContext())
    assert err.value.status == 400
    assert err.value.code == "hosted_tool_not_supported"
    ctx = RequestContext()
    chat, _ = to_chat_request(payload, MessagesOptions(hosted_tools="lenient"), ctx)
    assert "tools" not in chat
    assert ctx.warnings[0]["type"] == "dropped_tool"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"max_tokens": 5, "messages": []}, "model"),
        ({"model": "m", "messages": []}, "max_tokens"),
        ({"model": "m", "max_tokens": 5}, "messages"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
            "messages[0]",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "hologram"}]}],
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ],
            },
            "messages[0].content[0].source.type",
        ),
    ],
)
def test_bad_requests_name_the_parameter(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as err:
        chat_of(payload)
    assert err.value.status == 400
    assert err.value.param == param
