"""Routing on ``/v1/messages``: a provider that speaks Messages natively gets the request
untouched (its stream and JSON get ``routing_metadata``); chat-only providers get the adapter."""

from __future__ import annotations

import json
from typing import Any

from akgate._types import Receive, Scope, Send
from akgate.routing import Provider, Routing
from tests.adapter.scripted import Seen, call, json_app, stream_app

from .checks import check_stream

CATALOG = {
    "models": {
        "claude-ish": {
            "providers": [
                {
                    "name": "native",
                    "input_price": 1.0,
                    "output_price": 2.0,
                    "endpoints": ["messages"],
                }
            ]
        },
        "chatty": {"providers": [{"name": "chat", "input_price": 1.0, "output_price": 2.0}]},
    }
}
BODY = {"model": "claude-ish", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def native_events(cut: bool = False) -> list[bytes]:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-ish",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 100,
                        "output_tokens": 1,
                        "cache_read_input_tokens": 40,
                        "cache_creation_input_tokens": 0,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    if cut:
        events = events[:3]
    return [f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events]


def routing(native: Any, chat: Any) -> Routing:
    return Routing(
        chat,
        catalog=CATALOG,
        app_provider=Provider("chat", chat),
        providers=[Provider("native", native, endpoints=frozenset({"messages"}))],
    )


async def test_a_native_provider_gets_the_request_untouched_and_its_stream_gets_metadata() -> None:
    seen = Seen()
    app = routing(stream_app(native_events(), seen=seen), json_app({}))
    result = await call(app, {**BODY, "stream": True}, path="/v1/messages")
    assert seen.scope is not None
    assert seen.scope["path"] == "/v1/messages"
    assert seen.json == {**BODY, "stream": True}
    message = check_stream(result.events)
    assert message["content"] == [{"type": "text", "text": "Hi"}]
    delta = next(e for e in result.events if e["type"] == "message_delta")
    metadata = delta["routing_metadata"]
    assert metadata["provider"] == "native"
    # Anthropic usage: 100 uncached + 40 cached input tokens (billed alike here), 7 output.
    assert metadata["cost"]["usd"] == round((140 * 1.0 + 7 * 2.0) / 1e6, 10)


async def test_a_native_stream_cut_short_ends_with_an_error_event() -> None:
    app = routing(stream_app(native_events(cut=True)), json_app({}))
    result = await call(app, {**BODY, "stream": True}, path="/v1/messages")
    assert check_stream(result.events)["error"]["type"] == "api_error"


async def test_native_json_and_count_tokens_pass_through() -> None:
    seen = Seen()
    native = json_app(
        {"type": "message", "usage": {"input_tokens": 3, "output_tokens": 4}}, seen=seen
    )
    app = routing(native, json_app({}))
    result = await call(app, BODY, path="/v1/messages")
    assert result.json["routing_metadata"]["provider"] == "native"
    counted = await call(
        routing(json_app({"input_tokens": 42}, seen=seen), json_app({})),
        {"model": "claude-ish", "messages": BODY["messages"]},
        path="/v1/messages/count_tokens",
    )
    assert counted.json["input_tokens"] == 42
    assert seen.scope is not None
    assert seen.scope["path"] == "/v1/messages/count_tokens"


async def test_a_chat_provider_is_reached_through_the_adapter() -> None:
    seen = Seen()

    async def chat(scope: Scope, receive: Receive, send: Send) -> None:
        completion = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "chatty",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Hello"},
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
        await json_app(completion, seen=seen)(scope, receive, send)

    app = routing(json_app({}), chat)
    result = await call(app, {**BODY, "model": "chatty"}, path="/v1/messages")
    assert seen.scope is not None
    assert seen.scope["path"] == "/v1/chat/completions"
    assert seen.json["messages"] == [{"role": "user", "content": "hi"}]
    assert result.json["content"] == [{"type": "text", "text": "Hello"}]
    assert result.json["routing_metadata"]["provider"] == "chat"


async def test_max_tokens_above_the_models_output_limit_is_clamped_with_a_warning() -> None:
    seen = Seen()

    async def chat(scope: Scope, receive: Receive, send: Send) -> None:
        completion = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "capped",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "ok"},
                }
            ],
        }
        await json_app(completion, seen=seen)(scope, receive, send)

    catalog = {
        "models": {
            "capped": {
                "providers": [
                    {"name": "chat", "input_price": 0, "output_price": 0, "max_output_tokens": 4096}
                ]
            }
        }
    }
    app = Routing(chat, catalog=catalog, app_provider=Provider("chat", chat))
    result = await call(app, {**BODY, "model": "capped", "max_tokens": 32000}, path="/v1/messages")
    assert seen.json["max_completion_tokens"] == 4096
    warnings = result.json["routing_metadata"]["warnings"]
    assert warnings[0]["type"] == "clamped_parameter"
