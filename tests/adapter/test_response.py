"""Non-stream mapping: the full Response object (responses-bridge.md §4, §6)."""

from __future__ import annotations

from typing import Any

from akgate.adapter import ResponsesAdapter

from .checks import check_response
from .scripted import USAGE, call, completion, json_app

REQ: dict[str, Any] = {"model": "m", "input": "hi"}


async def answer(chat: Any, request: dict[str, Any] | None = None, **options: Any) -> Any:
    result = await call(ResponsesAdapter(json_app(chat), **options), request or REQ)
    return result


async def test_text_answer_is_a_complete_response_object() -> None:
    result = await answer(completion({"content": "Hello"}))
    assert result.status == 200
    assert int(result.headers[b"content-length"]) == len(result.body)
    body = result.json
    check_response(body)
    assert body["status"] == "completed"
    assert body["output_text"] == "Hello"
    assert body["id"].startswith("resp_")
    assert body["output"][0]["id"].startswith("msg_")
    assert body["output"][0]["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
    ]
    assert body["usage"]["input_tokens"] == 10
    assert body["usage"]["output_tokens"] == 5


async def test_request_values_are_echoed_not_defaults() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}]
    request = {
        **REQ,
        "temperature": 0.2,
        "top_p": 0.5,
        "tools": tools,
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_output_tokens": 50,
        "instructions": "Be brief",
        "metadata": {"k": "v"},
        "user": "u",
        "truncation": "auto",
        "top_logprobs": 2,
        "text": {"format": {"type": "json_object"}, "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"},
        "prompt_cache_key": "c",
        "safety_identifier": "s",
        "max_tool_calls": 3,
        "store": False,
    }
    body = (await answer(completion({"content": "{}"}), request)).json
    check_response(body)
    for key in (
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "instructions",
        "metadata",
        "user",
        "truncation",
        "top_logprobs",
        "text",
        "reasoning",
        "prompt_cache_key",
        "safety_identifier",
        "max_tool_calls",
    ):
        expected = request[key]
        if key == "tools":  # every FunctionTool key is present: the value sent, or null
            expected = [{**tools[0], "description": None}]
        assert body[key] == expected, key
    assert body["store"] is False


async def test_defaults_when_request_omits_values() -> None:
    body = (await answer(completion({"content": "x"}))).json
    assert body["temperature"] == 1.0
    assert body["top_p"] == 1.0
    assert body["tools"] == []
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert body["text"] == {"format": {"type": "text"}}
    assert body["incomplete_details"] is None
    assert body["error"] is None


async def test_tool_calls_become_function_call_items_with_distinct_ids() -> None:
    calls = [
        {"id": "call_A", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "call_B", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
    ]
    body = (await answer(completion({"content": None, "tool_calls": calls}, "tool_calls"))).json
    check_response(body)
    assert [o["type"] for o in body["output"]] == ["function_call", "function_call"]
    assert [o["call_id"] for o in body["output"]] == ["call_A", "call_B"]
    assert all(o["id"].startswith("fc_") for o in body["output"])
    assert body["output"][1]["arguments"] == '{"a":1}'


async def test_length_finish_is_incomplete_max_output_tokens() -> None:
    body = (await answer(completion({"content": "cut"}, "length"))).json
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][-1]["status"] == "incomplete"


async def test_content_filter_finish_is_incomplete_content_filter() -> None:
    body = (await answer(completion({"content": ""}, "content_filter"))).json
    assert body["incomplete_details"] == {"reason": "content_filter"}


async def test_refusal_becomes_refusal_part() -> None:
    body = (await answer(completion({"content": None, "refusal": "No."}))).json
    check_response(body)
    assert body["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]


async def test_annotations_are_flattened() -> None:
    ann = {
        "type": "url_citation",
        "url_citation": {"start_index": 0, "end_index": 2, "title": "T", "url": "https://e.x"},
    }
    body = (await answer(completion({"content": "hi", "annotations": [ann]}))).json
    assert body["output"][0]["content"][0]["annotations"] == [
        {
            "type": "url_citation",
            "start_index": 0,
            "end_index": 2,
            "title": "T",
            "url": "https://e.x",
        }
    ]


async def test_logprobs_are_carried() -> None:
    lp = {"token": "hi", "logprob": -0.5, "bytes": [104, 105], "top_logprobs": []}
    body = (await answer(completion({"content": "hi"}, logprobs={"content": [lp]}))).json
    assert body["output"][0]["content"][0]["logprobs"] == [lp]


async def test_reasoning_becomes_a_summary_item_first() -> None:
    body = (await answer(completion({"content": "4", "reasoning_content": "2+2"}))).json
    check_response(body)
    assert body["output"][0]["type"] == "reasoning"
    assert body["output"][0]["id"].startswith("rs_")
    assert body["output"][0]["summary"] == [{"type": "summary_text", "text": "2+2"}]


async def test_reasoning_field_variant_and_reasoning_text_mode() -> None:
    body = (
        await answer(
            completion({"content": "4", "reasoning": "raw"}), reasoning_events="reasoning_text"
        )
    ).json
    assert body["output"][0]["content"] == [{"type": "reasoning_text", "text": "raw"}]


async def test_tool_call_only_answer_has_no_empty_message() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    body = (await answer(completion({"content": None, "tool_calls": calls}, "tool_calls"))).json
    assert [o["type"] for o in body["output"]] == ["function_call"]


async def test_routing_metadata_is_carried_over() -> None:
    meta = {
        "provider": "p",
        "provider_model_id": "x",
        "model_canonical": "m",
        "routing_strategy": "cost",
    }
    body = (await answer(completion({"content": "x"}, routing_metadata=meta))).json
    assert body["routing_metadata"] == meta


async def test_missing_usage_becomes_zeros() -> None:
    chat = completion({"content": "x"})
    del chat["usage"]
    usage = (await answer(chat)).json["usage"]
    assert usage["total_tokens"] == 0
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}


async def test_usage_mapping() -> None:
    usage = (await answer(completion({"content": "x"}))).json["usage"]
    assert usage == {
        "input_tokens": USAGE["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 15,
    }


async def test_inner_error_envelope_passes_through_with_status() -> None:
    envelope = {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
            "param": None,
        }
    }
    result = await call(ResponsesAdapter(json_app(envelope, status=429)), REQ)
    assert result.status == 429
    assert result.json == envelope


async def test_inner_non_envelope_error_is_wrapped_keeping_status() -> None:
    app = json_app(b"Internal Server Error", status=500, content_type=b"text/plain")
    result = await call(ResponsesAdapter(app), REQ)
    assert result.status == 500
    assert result.json["error"]["code"] == "upstream_error"


async def test_inner_redirect_is_a_502() -> None:
    result = await call(ResponsesAdapter(json_app(b"", status=302)), REQ)
    assert result.status == 502


async def test_inner_2xx_non_json_is_a_502() -> None:
    app = json_app(b"<html>", content_type=b"text/html")
    result = await call(ResponsesAdapter(app), REQ)
    assert result.status == 502
    assert result.json["error"]["code"] == "upstream_error"


async def test_inner_2xx_error_body_is_not_a_success() -> None:
    app = json_app({"error": {"message": "boom", "type": "api_error", "code": "x"}})
    result = await call(ResponsesAdapter(app), REQ)
    assert result.status == 502


async def test_output_item_ids_grow_with_time() -> None:
    """Ids start with the time, as the store's own ids do: a response store appends each turn's
    output items at the end of its item index instead of on a random page."""
    ids = []
    for _ in range(20):
        body = (await answer(completion({"content": "Hello"}))).json
        ids.append(body["output"][0]["id"])
    assert ids == sorted(ids)
    assert len(set(ids)) == 20
    assert all(len(i) == len("msg_") + 32 for i in ids)
