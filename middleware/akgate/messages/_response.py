"""Chat completion -> Anthropic Message: content blocks, ``stop_reason`` and ``usage``."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any, Final

from pydantic_core import from_json

from akgate.errors import GatewayError

from ._ids import client_tool_id, new_id
from ._request import MessagesRequest

__all__ = ["REFUSAL_DETAILS", "chat_to_message", "map_usage", "signature", "stop_reason"]

#: ``stop_details`` of a refusal (the chat backend's content filter stopped the answer).
REFUSAL_DETAILS: Final = {"type": "refusal"}

_STOP_REASONS: Final = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def map_usage(usage: Any, *, output_estimate: int = 0) -> dict[str, Any]:
    """Anthropic usage from chat usage: ``input_tokens`` leaves out cached and cache-write
    tokens (chat's ``prompt_tokens`` includes them), so nothing is counted twice."""
    if not isinstance(usage, Mapping):
        return {
            "input_tokens": 0,
            "output_tokens": output_estimate,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    cached = _int(details.get("cached_tokens"))
    written = _int(details.get("cache_write_tokens"))
    out: dict[str, Any] = {
        "input_tokens": max(0, _int(usage.get("prompt_tokens")) - cached - written),
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }
    completion = usage.get("completion_tokens_details")
    if isinstance(completion, Mapping) and _int(completion.get("reasoning_tokens")):
        out["output_tokens_details"] = {"thinking_tokens": completion["reasoning_tokens"]}
    return out


def stop_reason(
    finish_reason: Any, *, tool_use: bool, matched: Any, request: MessagesRequest
) -> tuple[str, str | None]:
    """``(stop_reason, stop_sequence)`` for a chat finish reason.

    A turn that emitted a tool call is ``tool_use`` whatever the finish reason (an agent loop
    stops on anything else), and ``tool_calls`` without a call is ``end_turn`` (nothing to run).
    ``stop_sequence`` is reported when the backend names the sequence it matched (vLLM-style
    servers put it in ``choices[].stop_reason``).
    """
    if tool_use:
        return "tool_use", None
    if finish_reason == "stop" and isinstance(matched, str) and matched in request.stop_sequences:
        return "stop_sequence", matched
    reason = _STOP_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    if reason is None or reason == "tool_use":
        return "end_turn", None
    return reason, None


def signature(thinking: str) -> str:
    """A gateway-minted thinking signature: opaque, non-empty, stable for the same text.

    It means nothing to Anthropic's API (a gateway cannot sign for it); replayed thinking goes
    back to the chat model as reasoning text, never to an Anthropic upstream.
    """
    digest = hashlib.sha256(thinking.encode()).digest()[:24]
    return "akgate." + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        )
    return ""


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's parsed arguments (an empty string is ``{}``); anything but an object fails
    the turn rather than guessing."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        value = from_json(arguments) if isinstance(arguments, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise GatewayError(
            "upstream_error", "The model produced tool arguments that are not a JSON object."
        )
    return value


def chat_to_message(chat: Mapping[str, Any], request: MessagesRequest) -> dict[str, Any]:
    """The Anthropic Message for a (non-streamed) chat completion."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, Mapping) else {}
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append(
            {
                "type": "thinking",
                "thinking": "" if request.omit_thinking else reasoning,
                "signature": signature(reasoning),
            }
        )
    text = _message_text(message.get("content"))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        text += refusal
    if text.strip():
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        name = function.get("name")
        name = name if isinstance(name, str) else ""
        content.append(
            {
                "type": "tool_use",
                "id": client_tool_id(call.get("id") if isinstance(call.get("id"), str) else None),
                "name": request.names.get(name, name),
                "input": tool_input(function.get("arguments")),
            }
        )
    reason, sequence = stop_reason(
        choice.get("finish_reason"),
        tool_use=any(b["type"] == "tool_use" for b in content),
        matched=choice.get("stop_reason"),
        request=request,
    )
    out: dict[str, Any] = {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "stop_details": REFUSAL_DETAILS if reason == "refusal" else None,
        "usage": map_usage(chat.get("usage")),
    }
    metadata = chat.get("routing_metadata")
    if isinstance(metadata, Mapping):
        out["routing_metadata"] = metadata
    return out
