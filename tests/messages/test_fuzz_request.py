"""Fuzzing the request mapping: any JSON body is either translated or refused with a 400 that
names a field, never an exception, a 500 or a traceback."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.context import RequestContext
from akgate.errors import GatewayError
from akgate.messages import MessagesOptions, to_chat_request

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 40000),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
any_json = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
block_types = st.sampled_from(
    [
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "search_result",
        "tool_reference",
        "server_tool_use",
        "web_search_tool_result",
        "hologram",
    ]
)
source = st.fixed_dictionaries(
    {"type": st.sampled_from(["base64", "url", "file", "text", "content"])},
    optional={
        "media_type": st.sampled_from(["image/png", "application/pdf"]),
        "data": any_json,
        "url": any_json,
        "content": any_json,
    },
)
block = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        "text": st.one_of(st.text(max_size=10), any_json),
        "source": st.one_of(source, any_json),
        "id": st.one_of(st.text(max_size=8), any_json),
        "name": st.one_of(st.text(max_size=8), any_json),
        "input": any_json,
        "tool_use_id": st.one_of(st.text(max_size=8), any_json),
        "content": st.one_of(
            st.text(max_size=8), st.lists(st.deferred(lambda: block), max_size=2), any_json
        ),
        "is_error": any_json,
        "thinking": any_json,
        "signature": any_json,
        "cache_control": any_json,
        "title": any_json,
        "tool_name": any_json,
    },
)
message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "assistant", "system"]), any_json)},
    optional={"content": st.one_of(st.text(max_size=10), st.lists(block, max_size=3), any_json)},
)
tool = st.one_of(
    st.fixed_dictionaries(
        {"name": st.one_of(st.text(min_size=1, max_size=70), any_json)},
        optional={
            "input_schema": st.one_of(st.just({"type": "object"}), any_json),
            "type": st.sampled_from(["custom", "web_search_20250305", "bash_20250124"]),
            "defer_loading": any_json,
            "description": any_json,
            "strict": any_json,
        },
    ),
    any_json,
)
request = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.just("m"), any_json),
        "max_tokens": st.one_of(st.integers(0, 64000), any_json),
        "messages": st.one_of(st.lists(message, max_size=4), any_json),
        "system": st.one_of(st.text(max_size=8), st.lists(block, max_size=2), any_json),
        "tools": st.one_of(st.lists(tool, max_size=3), any_json),
        "tool_choice": st.one_of(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])},
                optional={"name": any_json, "disable_parallel_tool_use": any_json},
            ),
            any_json,
        ),
        "thinking": any_json,
        "output_config": any_json,
        "stop_sequences": any_json,
        "metadata": any_json,
        "stream": any_json,
        "temperature": any_json,
        "top_k": any_json,
        "mcp_servers": any_json,
        "container": any_json,
    },
)


@settings(max_examples=200, deadline=None)
@given(payload=request, lenient=st.booleans(), counting=st.booleans())
def test_any_body_is_translated_or_refused_with_a_named_400(
    payload: dict[str, Any], lenient: bool, counting: bool
) -> None:
    options = MessagesOptions(hosted_tools="lenient" if lenient else "strict")
    refused: GatewayError | None = None
    try:
        chat, _ = to_chat_request(payload, options, RequestContext(), count_only=counting)
    except GatewayError as exc:
        refused = exc
    if refused is not None:
        assert refused.status == 400
        assert refused.message
        return
    assert isinstance(chat["messages"], list)
    for item in chat["messages"]:
        assert item["role"] in ("system", "user", "assistant", "tool")
