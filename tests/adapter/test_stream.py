"""Streaming translation: event orders of responses-bridge.md §3, upstream quirks (§8), failures."""

from __future__ import annotations

from typing import Any

import anyio

from akgate.adapter import ResponsesAdapter

from .checks import check_stream
from .scripted import USAGE, Seen, call, chunk, stream_app, text_stream, tool

REQ: dict[str, Any] = {"model": "m", "input": "hi", "stream": True}
MSG = ["response.output_item.added", "response.content_part.added"]
MSG_END = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
FC_END = ["response.function_call_arguments.done", "response.output_item.done"]
HEAD = ["response.created", "response.in_progress"]


async def run(chunks: list[Any], request: dict[str, Any] | None = None, **options: Any) -> Any:
    return await call(ResponsesAdapter(stream_app(chunks), **options), request or REQ)


async def test_plain_text_follows_order_a() -> None:
    result = await run(text_stream("Hel", "lo"))
    assert result.status == 200
    assert result.types == [
        *HEAD,
        *MSG,
        "response.output_text.delta",
        "response.output_text.delta",
        *MSG_END,
        "response.completed",
    ]
    final = check_stream(result.events)
    assert final["output_text"] == "Hello"
    assert final["output"][0]["content"][0]["text"] == "Hello"


async def test_stream_headers_are_sse_without_content_length() -> None:
    result = await run(text_stream("x"))
    assert result.headers[b"content-type"].startswith(b"text/event-stream")
    assert result.headers[b"cache-control"] == b"no-store"
    assert result.headers[b"x-accel-buffering"] == b"no"
    assert b"content-length" not in result.headers


async def test_no_done_line_by_default() -> None:
    result = await run(text_stream("x"))
    assert b"[DONE]" not in result.body


async def test_send_done_option_appends_done_after_terminal() -> None:
    result = await run(text_stream("x"), send_done=True)
    assert result.body.endswith(b"data: [DONE]\n\n")
    assert result.types[-1] == "response.completed"


async def test_function_call_follows_order_b_with_empty_initial_arguments() -> None:
    result = await run(
        [
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [tool(0, id="call_A", name="get_weather", args="")],
                }
            ),
            chunk({"tool_calls": [tool(0, args='{"city":')]}),
            chunk({"tool_calls": [tool(0, args='"Paris"}')]}),
            chunk({}, "tool_calls"),
            chunk(choices=False, usage=USAGE),
            "[DONE]",
        ]
    )
    assert result.types == [
        *HEAD,
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        *FC_END,
        "response.completed",
    ]
    final = check_stream(result.events)
    (item,) = final["output"]
    assert item["call_id"] == "call_A"
    assert item["id"].startswith("fc_")
    assert item["arguments"] == '{"city":"Paris"}'


async def test_first_argument_fragment_is_never_doubled() -> None:
    result = await run(
        [
            chunk({"tool_calls": [tool(0, id="call_A", name="f", args='{"a"')]}),
            chunk({"tool_calls": [tool(0, args=":1}")]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    events = result.events
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["arguments"] == ""
    assert check_stream(events)["output"][0]["arguments"] == '{"a":1}'


async def test_text_then_parallel_calls_take_consecutive_indexes() -> None:
    result = await run(
        [
            chunk({"content": "Let me check."}),
            chunk({"tool_calls": [tool(0, id="call_A", name="f", args='{"x":1}')]}),
            chunk({"tool_calls": [tool(1, id="call_B", name="g", args='{"y":2}')]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    final = check_stream(result.events)
    assert [o["type"] for o in final["output"]] == ["message", "function_call", "function_call"]
    assert [o.get("call_id") for o in final["output"][1:]] == ["call_A", "call_B"]
    dones = [e for e in result.events if e["type"] == "response.output_item.done"]
    first_fc = next(
        i
        for i, e in enumerate(result.events)
        if e["type"] == "response.output_item.added" and e["output_index"] == 1
    )
    assert result.events.index(dones[0]) < first_fc  # message closed before the call opens


async def test_tool_call_index_starting_at_one_maps_to_output_index_zero() -> None:
    result = await run(
        [
            chunk({"tool_calls": [tool(1, id="call_A", name="f", args="{}")]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    added = next(e for e in result.events if e["type"] == "response.output_item.added")
    assert added["output_index"] == 0
    check_stream(result.events)


async def test_tool_name_arriving_late_is_announced_then_streamed() -> None:
    result = await run(
        [
            chunk({"tool_calls": [tool(0, id="call_A", args='{"a":')]}),
            chunk({"tool_calls": [tool(0, args="1}")]}),
            chunk({"tool_calls": [tool(0, name="f")]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    final = check_stream(result.events)
    assert final["output"][0]["name"] == "f"
    assert final["output"][0]["arguments"] == '{"a":1}'


async def test_call_without_arguments_still_gets_one_delta() -> None:
    result = await run(
        [
            chunk({"tool_calls": [tool(0, id="call_A", name="f")]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    assert "response.function_call_arguments.delta" in result.types
    check_stream(result.events)


async def test_reused_tool_index_with_new_id_opens_a_new_call() -> None:
    result = await run(
        [
            chunk({"tool_calls": [tool(0, id="call_A", name="f", args="{}")]}),
            chunk({"tool_calls": [tool(0, id="call_B", name="g", args="{}")]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    final = check_stream(result.events)
    assert [o["call_id"] for o in final["output"]] == ["call_A", "call_B"]


async def test_text_after_a_call_opens_a_new_message() -> None:
    result = await run(
        [
            chunk({"tool_calls": [tool(0, id="call_A", name="f", args="{}")]}),
            chunk({"content": "done"}),
            chunk({}, "stop"),
            "[DONE]",
        ]
    )
    final = check_stream(result.events)
    assert [o["type"] for o in final["output"]] == ["function_call", "message"]


async def test_reasoning_content_then_text_follows_order_d() -> None:
    result = await run(
        [
            chunk({"reasoning_content": "Think"}),
            chunk({"reasoning_content": "ing"}),
            chunk({"content": "Answer"}),
            chunk({}, "stop"),
            "[DONE]",
        ]
    )
    assert result.types[:9] == [
        *HEAD,
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    final = check_stream(result.events)
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": "Thinking"}]
    assert final["output"][0]["id"].startswith("rs_")
    assert final["output"][1]["type"] == "message"


async def test_reasoning_in_reasoning_field_is_read_too() -> None:
    result = await run(
        [chunk({"reasoning": "hmm"}), chunk({"content": "ok"}), chunk({}, "stop"), "[DONE]"]
    )
    final = check_stream(result.events)
    assert final["output"][0]["summary"][0]["text"] == "hmm"


async def test_reasoning_text_mode_emits_reasoning_text_events_only() -> None:
    result = await run(
        [
            chunk({"reasoning_content": "raw"}),
            chunk({"content": "ok"}),
            chunk({}, "stop"),
            "[DONE]",
        ],
        reasoning_events="reasoning_text",
    )
    types = result.types
    assert "response.reasoning_text.delta" in types
    assert not any("summary" in t for t in types)
    final = check_stream(result.events)
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "raw"}]
    assert final["output"][0]["summary"] == []


async def test_refusal_follows_order_e() -> None:
    result = await run(
        [chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop"), "[DONE]"]
    )
    assert result.types == [
        *HEAD,
        *MSG,
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = check_stream(result.events)
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]


async def test_refusal_after_text_takes_the_next_content_index() -> None:
    result = await run(
        [chunk({"content": "Hm."}), chunk({"refusal": "No."}), chunk({}, "stop"), "[DONE]"]
    )
    refusal = next(e for e in result.events if e["type"] == "response.refusal.delta")
    assert refusal["content_index"] == 1
    check_stream(result.events)


async def test_length_finish_is_incomplete_with_incomplete_item() -> None:
    result = await run(text_stream("cut", finish="length"))
    assert result.types[-1] == "response.incomplete"
    final = check_stream(result.events)
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][-1]["status"] == "incomplete"


async def test_content_filter_finish_is_incomplete_content_filter() -> None:
    result = await run(text_stream("x", finish="content_filter"))
    final = check_stream(result.events)
    assert final["incomplete_details"] == {"reason": "content_filter"}


async def test_usage_on_last_content_chunk_is_used() -> None:
    result = await run([chunk({"content": "x"}), chunk({}, "stop", usage=USAGE), "[DONE]"])
    assert check_stream(result.events)["usage"]["total_tokens"] == 15


async def test_missing_usage_becomes_zeros() -> None:
    result = await run([chunk({"content": "x"}), chunk({}, "stop"), "[DONE]"])
    usage = check_stream(result.events)["usage"]
    assert usage == {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


async def test_usage_details_are_mapped() -> None:
    usage = check_stream((await run(text_stream("x"))).events)["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 2
    assert usage["output_tokens_details"]["reasoning_tokens"] == 3


async def test_error_frame_mid_stream_gives_error_then_failed() -> None:
    result = await run(
        [
            chunk({"content": "part"}),
            {
                "error": {
                    "message": "quota",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                    "param": None,
                }
            },
            "[DONE]",
        ]
    )
    assert result.status == 200
    assert result.types[-2:] == ["error", "response.failed"]
    error = result.events[-2]
    assert error["code"] == "insufficient_quota"
    assert error["message"] == "quota"
    assert error["error"]["code"] == "insufficient_quota"
    final = check_stream(result.events)
    assert final["status"] == "failed"
    # One code per fault: response.failed carries the error event's registry payload.
    assert (
        final["error"]
        == error["error"]
        == {
            "code": "insufficient_quota",
            "message": "quota",
            "type": "rate_limit_error",
            "param": None,
            "doc_url": "https://docs.auriko.ai/errors/insufficient_quota",
        }
    )
    assert final["output"][0]["status"] == "incomplete"
    assert final["output"][0]["content"][0]["text"] == "part"


async def test_exception_mid_stream_gives_error_then_failed() -> None:
    app = ResponsesAdapter(stream_app([chunk({"content": "x"})], raise_after=True))
    result = await call(app, REQ)
    assert result.types[-2:] == ["error", "response.failed"]
    assert check_stream(result.events)["error"]["code"] == "upstream_error"
    assert result.events[-2]["code"] == "upstream_error"
    assert result.bodies[-1]["more_body"] is False


async def test_broken_sse_json_fails_the_stream() -> None:
    result = await run([chunk({"content": "x"}), "{not json", "[DONE]"])
    assert result.types[-2:] == ["error", "response.failed"]
    check_stream(result.events)


async def test_end_without_finish_reason_or_done_fails() -> None:
    result = await run([chunk({"content": "x"})])
    assert result.types[-2:] == ["error", "response.failed"]
    check_stream(result.events)


async def test_done_without_finish_reason_completes() -> None:
    result = await run([chunk({"content": "x"}), "[DONE]"])
    assert result.types[-1] == "response.completed"


async def test_error_before_first_chunk_is_an_http_error() -> None:
    result = await run(
        [
            {
                "error": {
                    "message": "busy",
                    "type": "api_error",
                    "code": "model_unavailable",
                    "param": None,
                }
            },
            "[DONE]",
        ]
    )
    assert result.status == 503
    assert result.headers[b"content-type"].startswith(b"application/json")
    assert result.json["error"]["code"] == "model_unavailable"


async def test_stream_ending_before_first_chunk_is_a_502() -> None:
    result = await run(["[DONE]"])
    assert result.status == 502
    assert result.json["error"]["code"] == "upstream_error"


async def test_routing_metadata_on_final_chunk_reaches_terminal_response_only() -> None:
    meta = {
        "provider": "p",
        "provider_model_id": "m1",
        "model_canonical": "m",
        "routing_strategy": "balanced",
    }
    result = await run(
        [
            chunk({"content": "x"}),
            chunk({}, "stop"),
            chunk(choices=False, usage=USAGE, routing_metadata=meta),
            "[DONE]",
        ]
    )
    final = check_stream(result.events)
    assert final["routing_metadata"] == meta


async def test_logprobs_stream_without_bytes_in_deltas() -> None:
    lp = {
        "token": "x",
        "logprob": -0.1,
        "bytes": [120],
        "top_logprobs": [{"token": "x", "logprob": -0.1, "bytes": [120]}],
    }
    result = await run(
        [
            chunk({"content": "x"}, logprobs=None)
            | {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": "x"},
                        "logprobs": {"content": [lp]},
                        "finish_reason": None,
                    }
                ]
            },
            chunk({}, "stop"),
            "[DONE]",
        ]
    )
    delta = next(e for e in result.events if e["type"] == "response.output_text.delta")
    assert delta["logprobs"] == [
        {"token": "x", "logprob": -0.1, "top_logprobs": [{"token": "x", "logprob": -0.1}]}
    ]
    final = check_stream(result.events)
    assert final["output"][0]["content"][0]["logprobs"] == [lp]


async def test_annotations_are_flattened_in_stream() -> None:
    ann = {
        "type": "url_citation",
        "url_citation": {"start_index": 0, "end_index": 1, "title": "T", "url": "https://e.x"},
    }
    result = await run([chunk({"content": "x", "annotations": [ann]}), chunk({}, "stop"), "[DONE]"])
    added = next(e for e in result.events if e["type"] == "response.output_text.annotation.added")
    assert added["annotation"] == {
        "type": "url_citation",
        "start_index": 0,
        "end_index": 1,
        "title": "T",
        "url": "https://e.x",
    }
    final = check_stream(result.events)
    assert final["output"][0]["content"][0]["annotations"] == [added["annotation"]]


async def test_one_outer_body_per_inner_message_batch() -> None:
    app = ResponsesAdapter(stream_app(text_stream("a", "b", "c"), per_message=False))
    result = await call(app, REQ)
    assert len(result.bodies) == 1  # the whole batch, terminal included
    check_stream(result.events)


async def test_first_events_leave_before_the_inner_stream_ends_and_disconnect_cancels() -> None:
    seen = Seen()
    app = ResponsesAdapter(stream_app([chunk({"content": "first"})], seen=seen, hang=True))
    result = await call(app, REQ, disconnect_after=lambda m: b"first" in m.get("body", b""))
    first = result.bodies[0]["body"]
    assert b"response.created" in first
    assert b"first" in first
    assert seen.cancelled  # the client went away: the inner call was cancelled


async def test_chunks_after_the_terminal_event_are_ignored() -> None:
    result = await run([*text_stream("x"), chunk({"content": "late"})])
    assert b"late" not in result.body
    check_stream(result.events)


async def test_inner_ignoring_stream_gets_events_synthesized() -> None:
    from .scripted import completion, json_app

    app = ResponsesAdapter(
        json_app(
            completion(
                {
                    "content": "whole",
                    "tool_calls": [
                        {
                            "id": "call_A",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "tool_calls",
            )
        )
    )
    result = await call(app, REQ)
    final = check_stream(result.events)
    assert [o["type"] for o in final["output"]] == ["message", "function_call"]
    assert final["output"][1]["call_id"] == "call_A"


async def test_non_stream_request_over_inner_stream_answers_json() -> None:
    result = await run(text_stream("Hel", "lo"), {"model": "m", "input": "hi"})
    assert result.headers[b"content-type"] == b"application/json"
    assert result.json["output_text"] == "Hello"
    assert result.json["usage"]["total_tokens"] == 15


async def test_inner_must_receive_stream_with_include_usage() -> None:
    seen = Seen()
    await call(ResponsesAdapter(stream_app(text_stream("x"), seen=seen)), REQ)
    assert seen.json["stream"] is True
    assert seen.json["stream_options"] == {"include_usage": True}


async def test_many_streams_run_concurrently() -> None:
    async def one() -> None:
        check_stream((await run(text_stream("a", "b"))).events)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
