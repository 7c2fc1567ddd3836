"""Strict checks for a Responses event stream and the final Response object.

``check_response`` follows the Open Responses ``ResponseResource`` schema (every required field
present, numbers and bools never null) plus the stricter consumers of responses-bridge.md §4.2;
``check_stream`` checks every event against the public event schema and the ordering rules of §3.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from akgate.schemas.responses import Response, ResponseStreamEvent

_EVENT = TypeAdapter(ResponseStreamEvent)

#: ResponseResource required fields -> allowed JSON types (None means null allowed).
RESOURCE: dict[str, tuple[type | None, ...]] = {
    "id": (str,),
    "object": (str,),
    "created_at": (int,),
    "completed_at": (int, None),
    "status": (str,),
    "incomplete_details": (dict, None),
    "model": (str,),
    "previous_response_id": (str, None),
    "instructions": (str, None),
    "output": (list,),
    "error": (dict, None),
    "tools": (list,),
    "tool_choice": (str, dict),
    "truncation": (str,),
    "parallel_tool_calls": (bool,),
    "text": (dict,),
    "top_p": (int, float),
    "presence_penalty": (int, float),
    "frequency_penalty": (int, float),
    "temperature": (int, float),
    "top_logprobs": (int,),
    "reasoning": (dict, None),
    "usage": (dict, None),
    "max_output_tokens": (int, None),
    "max_tool_calls": (int, None),
    "store": (bool,),
    "background": (bool,),
    "service_tier": (str,),
    "metadata": (dict,),
    "safety_identifier": (str, None),
    "prompt_cache_key": (str, None),
}


def check_response(obj: dict[str, Any], *, final: bool = True) -> Response:
    for key, types in RESOURCE.items():
        assert key in obj, f"missing {key}"
        value = obj[key]
        ok = any(
            (value is None)
            if t is None
            else (isinstance(value, t) and not (t is int and isinstance(value, bool)))
            for t in types
        )
        assert ok, f"{key}={value!r}"
    assert obj["text"]["format"]["type"]
    for tool in obj["tools"]:
        if tool.get("type") == "function":  # Open Responses FunctionTool: every key present
            assert {"name", "description", "parameters", "strict"} <= tool.keys(), tool
    if final and obj["status"] in ("completed", "incomplete"):
        usage = obj["usage"]
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            assert isinstance(usage[key], int)
        assert isinstance(usage["input_tokens_details"]["cached_tokens"], int)
        assert isinstance(usage["input_tokens_details"]["cache_write_tokens"], int)
        assert isinstance(usage["output_tokens_details"]["reasoning_tokens"], int)
    for item in obj["output"]:
        assert item["id"]
        assert item["type"]
        assert item["status"]
        if item["type"] == "function_call":
            assert item["id"] != item["call_id"]
    return Response.model_validate(obj)


TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def check_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Check order, ids and indexes; returns the terminal event's response."""
    assert events, "no events"
    for n, event in enumerate(events):
        _EVENT.validate_python(event)
        assert event["sequence_number"] == n, (n, event)
    assert events[0]["type"] == "response.created"
    assert events[1]["type"] == "response.in_progress"
    for lifecycle in events[:2]:
        response = lifecycle["response"]
        assert response["status"] == "in_progress"
        assert response["output"] == []
        assert response["usage"] is None
        assert "routing_metadata" not in response
        check_response(response, final=False)
    assert events[-1]["type"] in TERMINAL
    assert sum(e["type"] in TERMINAL for e in events) == 1
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1

    added: list[dict[str, Any]] = []
    done: dict[int, dict[str, Any]] = {}
    open_index: int | None = None
    texts: dict[tuple[int, int], str] = {}
    args: dict[int, str] = {}
    deltas: dict[int, int] = {}
    parts: dict[int, list[str]] = {}
    for event in events[2:-1]:
        kind = event["type"]
        if kind == "error":
            continue
        if kind == "response.output_item.added":
            assert open_index is None, "items interleave"
            assert event["output_index"] == len(added)
            item = event["item"]
            assert item["status"] == "in_progress"
            if item["type"] in ("function_call", "custom_tool_call"):
                assert item.get("arguments", item.get("input")) == ""
                args[event["output_index"]] = ""
                deltas[event["output_index"]] = 0
            if item["type"] == "message":
                assert item["content"] == []
            added.append(item)
            parts[event["output_index"]] = []
            open_index = event["output_index"]
            continue
        index = event["output_index"]
        assert index == open_index, f"{kind} for an item that is not open"
        if "item_id" in event:
            assert event["item_id"] == added[index]["id"]
        if kind == "response.output_item.done":
            assert event["item"]["id"] == added[index]["id"]
            assert event["item"]["status"] in ("completed", "incomplete")
            if event["item"]["type"] == "function_call":
                assert event["item"]["call_id"] == added[index]["call_id"]
                assert event["item"]["arguments"] == args[index]
            if event["item"]["type"] == "custom_tool_call":
                assert event["item"]["call_id"] == added[index]["call_id"]
                assert event["item"]["input"] == args[index]
            done[index] = event["item"]
            open_index = None
        elif kind == "response.content_part.added":
            assert event["content_index"] == len(parts[index])
            parts[index].append(event["part"]["type"])
            texts[(index, event["content_index"])] = ""
        elif kind in (
            "response.output_text.delta",
            "response.refusal.delta",
            "response.reasoning_text.delta",
        ):
            assert isinstance(event["delta"], str)
            key = (index, event["content_index"])
            assert key in texts, "delta before content_part.added"
            expected = {
                "response.output_text.delta": "output_text",
                "response.refusal.delta": "refusal",
                "response.reasoning_text.delta": "reasoning_text",
            }[kind]
            assert parts[index][event["content_index"]] == expected
            texts[key] += event["delta"]
        elif kind in (
            "response.output_text.done",
            "response.refusal.done",
            "response.reasoning_text.done",
        ):
            full = event.get("text", event.get("refusal"))
            assert full == texts[(index, event["content_index"])]
        elif kind == "response.custom_tool_call_input.delta":
            assert added[index]["type"] == "custom_tool_call"
            args[index] += event["delta"]
            deltas[index] += 1
        elif kind == "response.custom_tool_call_input.done":
            assert deltas[index] >= 1
            assert event["input"] == args[index]
        elif kind == "response.function_call_arguments.delta":
            args[index] += event["delta"]
            deltas[index] += 1
        elif kind == "response.function_call_arguments.done":
            assert deltas[index] >= 1
            assert event["arguments"] == args[index]
            assert event["name"] == added[index]["name"]
    terminal = events[-1]["response"]
    check_response(terminal)
    if events[-1]["type"] != "response.failed":
        assert open_index is None
        assert len(done) == len(added)
        assert terminal["output"] == [done[i] for i in range(len(added))]
    else:
        assert events[-2]["type"] == "error"
        assert [i["id"] for i in terminal["output"]] == [i["id"] for i in added]
        for i, item in enumerate(terminal["output"]):
            if i not in done:
                assert item["status"] == "incomplete"
    return terminal
