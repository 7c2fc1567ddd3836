"""The streaming translator through the real ``MessagesAdapter`` over scripted chat apps."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from akgate._types import Receive, Scope, Send
from akgate.messages import MessagesAdapter
from tests.adapter.scripted import (
    USAGE,
    Result,
    Seen,
    call,
    chunk,
    completion,
    json_app,
    stream_app,
    text_stream,
    tool,
)

from .checks import check_error, check_stream

REQ: dict[str, Any] = {
    "model": "m",
    "max_tokens": 100,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


async def send(app: Any, request: dict[str, Any] | None = None, **kw: Any) -> Result:
    return await call(app, request or REQ, path="/v1/messages", **kw)


async def test_text_stream_in_exact_order_with_a_ping_after_message_start() -> None:
    result = await send(MessagesAdapter(stream_app(text_stream("Hel", "lo"))))
    assert result.status == 200
    assert result.headers[b"content-type"].startswith(b"text/event-stream")
    assert result.types == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = check_stream(result.events)
    assert message["content"] == [{"type": "text", "text": "Hello"}]
    assert message["stop_reason"] == "end_turn"
    # prompt_tokens 10 with 2 cached: input_tokens leaves the cached ones out.
    assert message["usage"] == {
        "input_tokens": 8,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2,
        "output_tokens_details": {"thinking_tokens": 3},
    }
    assert result.events[0]["message"]["usage"]["input_tokens"] > 0  # the local estimate


async def test_thinking_then_text_then_parallel_tool_calls() -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "Let me "}),
        chunk({"reasoning_content": "think."}),
        chunk({"content": "Checking."}),
        chunk({"tool_calls": [tool(0, id="call_a", name="get_weather", args="")]}),
        chunk({"tool_calls": [tool(0, args='{"city": ')]}),
        chunk({"tool_calls": [tool(0, args='"Paris"}')]}),
        chunk({"tool_calls": [tool(1, id="call_b", name="get_time", args='{"tz": "UTC"}')]}),
        chunk({}, "tool_calls"),
        chunk(choices=False, usage=USAGE),
        "[DONE]",
    ]
    result = await send(MessagesAdapter(stream_app(chunks)))
    message = check_stream(result.events)
    kinds = [b["type"] for b in message["content"]]
    assert kinds == ["thinking", "text", "tool_use", "tool_use"]
    assert message["content"][0]["thinking"] == "Let me think."
    assert message["content"][0]["signature"]
    assert message["content"][2]["input"] == {"city": "Paris"}
    assert message["content"][2]["id"] == "toolu_call_a"
    assert message["content"][3] == {
        "type": "tool_use",
        "id": "toolu_call_b",
        "name": "get_time",
        "input": {"tz": "UTC"},
    }
    assert message["stop_reason"] == "tool_use"
    # Arguments are streamed once: the start carries {} and the deltas the real arguments.
    partials = [
        e["delta"]["partial_json"]
        for e in result.events
        if e["type"] == "content_block_delta" and e["index"] == 2
    ]
    assert "".join(partials) == '{"city": "Paris"}'


async def test_arguments_before_id_and_name_are_held_then_sent_once() -> None:
    chunks = [
        chunk({"tool_calls": [tool(0, args='{"a"')]}),
        chunk({"tool_calls": [tool(0, id="x.y:1", args=": 1")]}),
        chunk({"tool_calls": [tool(0, name="f", args="}")]}),
        chunk({}, "stop"),
        "[DONE]",
    ]
    message = check_stream((await send(MessagesAdapter(stream_app(chunks)))).events)
    block = message["content"][0]
    assert block["input"] == {"a": 1}
    # A backend id outside Anthropic's id alphabet is encoded reversibly.
    assert block["id"].startswith("toolu_b64-")
    assert message["stop_reason"] == "tool_use"  # a tool call was made, whatever the finish


async def test_interleaved_calls_end_with_an_error_event_not_a_wrong_block() -> None:
    chunks = [
        chunk({"tool_calls": [tool(0, id="a", name="f", args="{}")]}),
        chunk({"tool_calls": [tool(1, id="b", name="g", args="{}")]}),
        chunk({"tool_calls": [tool(0, args=" ")]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    ]
    result = await send(MessagesAdapter(stream_app(chunks)))
    message = check_stream(result.events)
    assert message["error"]["type"] == "api_error"
    assert "interleaved" in message["error"]["message"]


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "end_turn"),
    ],
)
async def test_stop_reasons(finish: str, stop_reason: str) -> None:
    message = check_stream(
        (await send(MessagesAdapter(stream_app(text_stream("x", finish=finish))))).events
    )
    assert message["stop_reason"] == stop_reason
    details = {"type": "refusal"} if stop_reason == "refusal" else None
    assert message["stop_details"] == details
    answer = await send(
        MessagesAdapter(json_app(completion({"content": "x"}, finish))), {**REQ, "stream": False}
    )
    assert (answer.json["stop_reason"], answer.json["stop_details"]) == (stop_reason, details)


async def test_stop_sequence_named_by_the_backend() -> None:
    chunks = [chunk({"content": "1, 2"}), chunk({}, "stop"), "[DONE]"]
    chunks[1]["choices"][0]["stop_reason"] = "3"  # vLLM-style: the matched stop string
    request = {**REQ, "stop_sequences": ["3"]}
    message = check_stream((await send(MessagesAdapter(stream_app(chunks)), request)).events)
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "3")


async def test_omitted_thinking_sends_the_signature_and_no_text() -> None:
    chunks = [chunk({"reasoning_content": "secret"}), chunk({"content": "ok"}, "stop"), "[DONE]"]
    request = {**REQ, "thinking": {"type": "adaptive", "display": "omitted"}}
    result = await send(MessagesAdapter(stream_app(chunks)), request)
    message = check_stream(result.events)
    assert message["content"][0] == {
        "type": "thinking",
        "thinking": "",
        "signature": message["content"][0]["signature"],
    }
    assert "secret" not in result.body.decode()


async def test_mid_stream_failure_is_an_error_event_never_a_silent_end() -> None:
    app = MessagesAdapter(stream_app([chunk({"content": "partial"})], raise_after=True))
    result = await send(app)
    assert result.status == 200
    message = check_stream(result.events)
    assert message["error"]["type"] == "api_error"
    assert result.types[-1] == "error"
    assert "message_stop" not in result.types


async def test_a_stream_cut_before_its_finish_is_an_error_event() -> None:
    result = await send(MessagesAdapter(stream_app([chunk({"content": "partial"})])))
    assert check_stream(result.events)["error"]["type"] == "api_error"


async def test_an_error_frame_mid_stream_is_an_error_event() -> None:
    chunks = [chunk({"content": "a"}), {"error": {"message": "boom", "type": "server_error"}}]
    message = check_stream((await send(MessagesAdapter(stream_app(chunks)))).events)
    assert message["error"]["message"] == "boom"


async def test_an_error_as_first_chunk_is_a_real_http_error_in_anthropic_envelope() -> None:
    chunks = [
        {
            "error": {
                "message": "slow down",
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
            }
        }
    ]
    result = await send(MessagesAdapter(stream_app(chunks)))
    assert result.status == 429
    check_error(result.json, "rate_limit_error")
    assert result.json["error"]["message"] == "slow down"


async def test_an_inner_http_error_keeps_its_status_in_anthropic_envelope() -> None:
    body = {
        "error": {
            "message": "bad thing",
            "type": "invalid_request_error",
            "code": "invalid_parameter_value",
            "param": "x",
        }
    }
    result = await send(MessagesAdapter(json_app(body, status=400)), {**REQ, "stream": False})
    assert result.status == 400
    check_error(result.json, "invalid_request_error")
    assert result.json["error"]["message"] == "bad thing"
    assert result.headers[b"request-id"].startswith(b"req_")


async def test_idle_inner_app_gets_ping_events() -> None:
    async def slow(scope: Scope, receive: Receive, send_: Send) -> None:
        await receive()
        await send_(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        first = json.dumps(chunk({"content": "a"}))
        await send_(
            {"type": "http.response.body", "body": f"data: {first}\n\n".encode(), "more_body": True}
        )
        await anyio.sleep(0.35)  # a long silence (reasoning, a slow tool)
        end = json.dumps(chunk({"content": "b"}, "stop"))
        await send_(
            {
                "type": "http.response.body",
                "body": f"data: {end}\n\ndata: [DONE]\n\n".encode(),
                "more_body": False,
            }
        )

    result = await send(MessagesAdapter(slow, ping_interval=0.1))
    types = result.types
    message = check_stream(result.events)
    assert message["content"] == [{"type": "text", "text": "ab"}]
    between = types[types.index("content_block_delta") + 1 : types.index("message_delta")]
    assert between.count("ping") >= 2  # sent while the inner app was silent


async def test_inner_app_that_ignores_stream_true_still_gets_events() -> None:
    app = MessagesAdapter(json_app(completion({"content": "whole"})))
    message = check_stream((await send(app)).events)
    assert message["content"] == [{"type": "text", "text": "whole"}]


async def test_json_answer() -> None:
    body = completion(
        {
            "content": "Sure.",
            "reasoning_content": "hmm",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"q": 1}'},
                }
            ],
        },
        "tool_calls",
    )
    result = await send(MessagesAdapter(json_app(body)), {**REQ, "stream": False})
    message = result.json
    assert message["id"].startswith("msg_")
    assert message["type"] == "message"
    assert message["model"] == "m"
    assert message["role"] == "assistant"
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][2] == {
        "type": "tool_use",
        "id": "toolu_call_1",
        "name": "f",
        "input": {"q": 1},
    }
    assert message["stop_reason"] == "tool_use"
    assert message["stop_sequence"] is None
    assert message["usage"]["input_tokens"] == 8
    assert message["usage"]["cache_read_input_tokens"] == 2


async def test_json_whitespace_text_is_left_out_and_bad_arguments_fail_the_turn() -> None:
    ok = await send(
        MessagesAdapter(json_app(completion({"content": "  \n"}))), {**REQ, "stream": False}
    )
    assert ok.json["content"] == []
    bad = completion(
        {
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
            ],
        }
    )
    result = await send(MessagesAdapter(json_app(bad)), {**REQ, "stream": False})
    assert result.status == 502
    check_error(result.json, "api_error")


async def test_long_tool_names_are_shortened_for_chat_and_restored() -> None:
    name = "mcp__server__" + "x" * 80
    seen: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send_: Send) -> None:
        body = json.loads((await receive())["body"])
        seen.update(body)
        chat_name = body["tools"][0]["function"]["name"]
        reply = completion(
            {
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": chat_name, "arguments": "{}"},
                    }
                ],
            },
            "tool_calls",
        )
        await json_app(reply)(scope, _replay(b"{}"), send_)

    request = {
        **REQ,
        "stream": False,
        "tools": [{"name": name, "input_schema": {"type": "object"}}],
    }
    result = await send(MessagesAdapter(inner), request)
    assert len(seen["tools"][0]["function"]["name"]) <= 64
    assert result.json["content"][0]["name"] == name


def _replay(body: bytes) -> Receive:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def test_count_tokens_estimate_and_provider_count() -> None:
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "x" * 400}],
        "system": "be brief",
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    }
    estimate = await call(MessagesAdapter(json_app({})), request, path="/v1/messages/count_tokens")
    assert estimate.status == 200
    plain = await call(
        MessagesAdapter(json_app({})), {**request, "tools": []}, path="/v1/messages/count_tokens"
    )
    # System text and tool schemas count too, not just the message text.
    assert estimate.json["input_tokens"] > plain.json["input_tokens"] > 100
    provider = MessagesAdapter(json_app(completion({"content": "."})), count_tokens="provider")
    counted = await call(provider, request, path="/v1/messages/count_tokens")
    assert counted.json == {"input_tokens": USAGE["prompt_tokens"]}


async def test_method_and_body_errors_are_in_anthropic_envelope() -> None:
    app = MessagesAdapter(json_app({}))
    result = await call(app, b"", path="/v1/messages", method="GET")
    assert result.status == 405
    check_error(result.json, "invalid_request_error")
    result = await send(app, {"model": "m", "messages": []})
    assert result.status == 400
    check_error(result.json, "invalid_request_error")
    assert "max_tokens" in result.json["error"]["message"]
    result = await call(app, b"{not json", path="/v1/messages")
    check_error(result.json, "invalid_request_error")
    small = MessagesAdapter(json_app({}), max_body_size=10)
    result = await send(small, REQ)
    assert result.status == 413
    check_error(result.json, "request_too_large")


async def test_other_paths_pass_through_untouched() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send_: Send) -> None:
        seen.append(scope["path"])
        await json_app({"ok": True})(scope, receive, send_)

    result = await call(MessagesAdapter(inner), {"x": 1}, path="/v1/chat/completions")
    assert result.json == {"ok": True}
    assert seen == ["/v1/chat/completions"]
    passthrough = MessagesAdapter(inner, passthrough=True)
    assert (await call(passthrough, REQ, path="/v1/messages")).json == {"ok": True}


def test_options_are_checked() -> None:
    app = json_app({})
    with pytest.raises(ValueError, match="hosted_tools"):
        MessagesAdapter(app, hosted_tools="loose")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ping_interval"):
        MessagesAdapter(app, ping_interval=0)
    with pytest.raises(ValueError, match="effort_budgets"):
        MessagesAdapter(app, effort_budgets=(10, 5))


async def test_a_client_that_leaves_mid_stream_cancels_the_inner_app() -> None:
    seen = Seen()
    app = MessagesAdapter(stream_app([chunk({"content": "a"})], seen=seen, hang=True))
    result = await send(
        app, disconnect_after=lambda m: m["type"] == "http.response.body" and bool(m.get("body"))
    )
    assert seen.cancelled
    assert result.types[:2] == ["message_start", "ping"]


async def test_every_answer_carries_anthropics_request_id_header() -> None:
    for request, app in (
        ({**REQ, "stream": False}, MessagesAdapter(json_app(completion({"content": "x"})))),
        (REQ, MessagesAdapter(stream_app(text_stream("x")))),
    ):
        result = await send(app, request)
        assert result.status == 200
        assert result.headers[b"request-id"] == result.headers[b"x-request-id"]
