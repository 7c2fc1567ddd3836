"""Strict checks of an Anthropic Messages event stream, as the SDK accumulators need it."""

from __future__ import annotations

import json
import re
from typing import Any

STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"}
ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "conflict_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
}
TOOL_ID = re.compile(r"toolu_[A-Za-z0-9_-]+")
DELTAS = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
}


def check_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Assert Anthropic's exact event order; return the accumulated message (or error)."""
    assert events, "empty stream"
    assert events[0]["type"] == "message_start", events[0]
    start = events[0]["message"]
    assert start["type"] == "message"
    assert start["role"] == "assistant"
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["id"].startswith("msg_")
    assert isinstance(start["usage"]["input_tokens"], int)
    message: dict[str, Any] = {**start, "content": []}
    next_index = 0
    open_block: dict[str, Any] | None = None
    signatures = 0
    partial: list[str] = []
    saw_delta = False
    for n, event in enumerate(events[1:], 1):
        kind = event["type"]
        if kind == "ping":
            assert event == {"type": "ping"}
            continue
        if kind == "error":
            assert n == len(events) - 1, "events after the error event"
            assert event["error"]["type"] in ERROR_TYPES
            assert event["error"]["message"]
            return {"error": event["error"], **message}
        assert not saw_delta or kind == "message_stop", f"{kind} after message_delta"
        if kind == "content_block_start":
            assert open_block is None, "a block started while another is open"
            assert event["index"] == next_index
            block = event["content_block"]
            assert block["type"] in DELTAS, block
            if block["type"] == "tool_use":
                assert TOOL_ID.fullmatch(block["id"]), block["id"]
                assert block["input"] == {}
                assert isinstance(block["name"], str)
            elif block["type"] == "text":
                assert block == {"type": "text", "text": ""}
            else:
                assert block == {"type": "thinking", "thinking": "", "signature": ""}
            open_block = dict(block)
            message["content"].append(open_block)
            signatures, partial = 0, []
        elif kind == "content_block_delta":
            assert open_block is not None
            assert event["index"] == next_index
            delta = event["delta"]
            assert delta["type"] in DELTAS[open_block["type"]], (open_block, delta)
            assert signatures == 0, "a delta after the signature"
            if delta["type"] == "text_delta":
                assert delta["text"]
                open_block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                open_block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                assert delta["signature"]
                open_block["signature"] = delta["signature"]
                signatures += 1
            else:
                partial.append(delta["partial_json"])
        elif kind == "content_block_stop":
            assert open_block is not None
            assert event["index"] == next_index
            if open_block["type"] == "thinking":
                assert signatures == 1, "a thinking block needs exactly one signature_delta"
            if open_block["type"] == "tool_use":
                joined = "".join(partial)
                value = json.loads(joined) if joined else {}
                assert isinstance(value, dict)
                open_block["input"] = value
            if open_block["type"] == "text":
                assert open_block["text"], "an empty text block"
            open_block = None
            next_index += 1
        elif kind == "message_delta":
            assert open_block is None, "message_delta with a block open"
            assert event["delta"]["stop_reason"] in STOP_REASONS
            assert isinstance(event["usage"]["output_tokens"], int)
            message["stop_reason"] = event["delta"]["stop_reason"]
            message["stop_sequence"] = event["delta"]["stop_sequence"]
            message["stop_details"] = event["delta"].get("stop_details")
            message["usage"] = {**message["usage"], **event["usage"]}
            saw_delta = True
        elif kind == "message_stop":
            assert saw_delta, "message_stop without message_delta"
            assert n == len(events) - 1, "events after message_stop"
            if message["stop_reason"] == "tool_use":
                assert any(b["type"] == "tool_use" for b in message["content"])
            return message
        else:
            raise AssertionError(f"unknown event {kind}")
    raise AssertionError("the stream ended without message_stop or error")


def check_error(body: dict[str, Any], error_type: str) -> None:
    """Anthropic's error envelope."""
    assert body["type"] == "error", body
    assert body["error"]["type"] == error_type, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert "code" not in body["error"]
    assert body["request_id"].startswith("req_") or body["request_id"]
