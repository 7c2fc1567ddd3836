"""Non-stream mapping: a chat completion -> the Response object (docs/responses-mapping.md).

Also home of the pieces the stream translator shares: ids, the Response skeleton that echoes the
request, usage mapping, annotation flattening and the finish_reason -> status table.
"""

from __future__ import annotations

import os
import time
from typing import Any, Final

from ._tools import ToolMap, call_item

__all__ = [
    "chat_to_response",
    "finish_status",
    "flatten_annotation",
    "full_logprob",
    "map_usage",
    "new_id",
    "response_output_text",
    "response_skeleton",
]

_INCOMPLETE: Final = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """``prefix`` + 32 hex digits (``resp_``, ``msg_``, ``fc_``, ``rs_``): the time in
    microseconds, then 72 random bits.

    A response store indexes every output item by id: ids that grow with time are appended at
    the end of that index, where a random id would touch another page per stored turn
    (``docs/benchmarks.md``). OpenAI's ids start with their time too; the random part keeps them
    unguessable.
    """
    global _last_micros
    # Two ids in the same microsecond still sort in the order they were made.
    micros = _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
    return f"{prefix}{micros:014x}{os.urandom(9).hex()}"


_last_micros = 0


def response_skeleton(request: dict[str, Any], response_id: str, created_at: int) -> dict[str, Any]:
    """The in-progress Response object: request values echoed, the rest at their defaults."""
    get = request.get
    text = get("text")
    if isinstance(text, dict):
        text = text if text.get("format") is not None else {**text, "format": {"type": "text"}}
    else:
        text = {"format": {"type": "text"}}
    reasoning = get("reasoning")
    if not isinstance(reasoning, dict):
        reasoning = {"effort": None, "summary": None}
    model = get("model")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": None,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": model if isinstance(model, str) else "",
        "instructions": get("instructions"),
        "previous_response_id": None,
        "output": [],
        "parallel_tool_calls": _or(get("parallel_tool_calls"), True),
        "tool_choice": _or(get("tool_choice"), "auto"),
        "tools": echo_tools(get("tools")),
        "temperature": _or(get("temperature"), 1.0),
        "top_p": _or(get("top_p"), 1.0),
        "presence_penalty": _or(get("presence_penalty"), 0),
        "frequency_penalty": _or(get("frequency_penalty"), 0),
        "top_logprobs": _or(get("top_logprobs"), 0),
        "max_output_tokens": get("max_output_tokens"),
        "max_tool_calls": get("max_tool_calls"),
        "text": text,
        "reasoning": reasoning,
        "truncation": _or(get("truncation"), "disabled"),
        "store": False,
        "background": False,
        "service_tier": _or(get("service_tier"), "default"),
        "metadata": _or(get("metadata"), {}),
        "user": get("user"),
        "safety_identifier": get("safety_identifier"),
        "prompt_cache_key": get("prompt_cache_key"),
        "usage": None,
    }


def echo_tools(tools: Any) -> list[Any]:
    """The request's tools as the Response echoes them.

    A function tool comes back with every key of OpenAI's ``FunctionTool`` present (the value
    sent, or null), because strict clients and conformance suites validate the echoed object and
    reject a tool without ``strict``. Other tool types are echoed as sent.
    """
    if not isinstance(tools, list):
        return []
    return [
        {
            "type": "function",
            "name": tool.get("name"),
            "description": tool.get("description"),
            "parameters": tool.get("parameters"),
            "strict": tool.get("strict"),
            **tool,
        }
        if isinstance(tool, dict) and tool.get("type") == "function"
        else tool
        for tool in tools
    ]


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def map_usage(usage: Any) -> dict[str, Any]:
    """Chat usage -> Responses usage; zeros when the upstream sent none."""
    if not isinstance(usage, dict):
        usage = {}
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = completion if isinstance(completion, dict) else {}
    input_tokens = _int(usage.get("prompt_tokens"))
    output_tokens = _int(usage.get("completion_tokens"))
    total = usage.get("total_tokens")
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": _int(prompt.get("cached_tokens")),
            "cache_write_tokens": _int(prompt.get("cache_write_tokens")),
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": _int(completion.get("reasoning_tokens"))},
        "total_tokens": _int(total) if total is not None else input_tokens + output_tokens,
    }


def flatten_annotation(annotation: Any) -> dict[str, Any]:
    """Chat's nested ``{type, url_citation:{...}}`` -> the flat Responses annotation."""
    if not isinstance(annotation, dict):
        return {"type": "unknown"}
    kind = annotation.get("type")
    nested = annotation.get(kind) if isinstance(kind, str) else None
    if isinstance(nested, dict):
        return {"type": kind, **nested}
    return dict(annotation)


def finish_status(finish_reason: Any) -> tuple[str, dict[str, str] | None]:
    """``(status, incomplete_details)`` for a chat finish_reason (docs/responses-mapping.md)."""
    reason = _INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def response_output_text(output: list[dict[str, Any]]) -> str:
    """The joined ``output_text`` parts of every message item (the SDK convenience field)."""
    return "".join(
        part["text"]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]]:
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
        return [full_logprob(lp) for lp in logprobs["content"] if isinstance(lp, dict)]
    return []


def full_logprob(lp: dict[str, Any]) -> dict[str, Any]:
    """A chat logprob in the Responses shape (``bytes`` included), for the body and the stream."""
    tops = lp.get("top_logprobs") or []
    return {
        "token": lp.get("token", ""),
        "bytes": lp.get("bytes") or [],
        "logprob": lp.get("logprob", 0.0),
        "top_logprobs": [
            {
                "token": t.get("token", ""),
                "bytes": t.get("bytes") or [],
                "logprob": t.get("logprob", 0.0),
            }
            for t in tops
            if isinstance(t, dict)
        ],
    }


def reasoning_text_of(message: dict[str, Any]) -> str | None:
    """``reasoning_content`` or ``reasoning`` (DeepSeek's and vLLM's names)."""
    value = message.get("reasoning_content")
    if not isinstance(value, str) or not value:
        value = message.get("reasoning")
    return value if isinstance(value, str) and value else None


def reasoning_item(item_id: str, text: str, mode: str, status: str) -> dict[str, Any]:
    """A reasoning output item holding ``text`` as a summary or as a raw reasoning_text part."""
    if mode == "reasoning_text":
        return {
            "id": item_id,
            "type": "reasoning",
            "status": status,
            "summary": [],
            "content": [{"type": "reasoning_text", "text": text}],
        }
    return {
        "id": item_id,
        "type": "reasoning",
        "status": status,
        "summary": [{"type": "summary_text", "text": text}],
    }


def chat_to_response(
    chat: dict[str, Any],
    request: dict[str, Any],
    *,
    reasoning_events: str = "summary",
    response_id: str | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """The complete Response object for the chat completion ``chat`` (choice 0 only)."""
    response = response_skeleton(
        request, response_id or new_id("resp_"), created_at or int(time.time())
    )
    if not response["model"] and isinstance(chat.get("model"), str):
        response["model"] = chat["model"]
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    if not isinstance(choice, dict):
        choice = {}
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    status, incomplete = finish_status(choice.get("finish_reason"))
    output: list[dict[str, Any]] = []

    reasoning = reasoning_text_of(message)
    if reasoning is not None:
        output.append(reasoning_item(new_id("rs_"), reasoning, reasoning_events, "completed"))

    content = message.get("content")
    refusal = message.get("refusal")
    if isinstance(content, str) or (isinstance(refusal, str) and refusal):
        parts: list[dict[str, Any]] = []
        if isinstance(content, str):
            annotations = message.get("annotations")
            parts.append(
                {
                    "type": "output_text",
                    "text": content,
                    "annotations": [flatten_annotation(a) for a in annotations]
                    if isinstance(annotations, list)
                    else [],
                    "logprobs": _logprobs(choice),
                }
            )
        if isinstance(refusal, str) and refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        output.append(
            {
                "id": new_id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": parts,
            }
        )

    tool_calls = message.get("tool_calls")
    # namespace / custom calls are mapped back to the client's shape
    tool_map = ToolMap.from_tools(request.get("tools")) if tool_calls else ToolMap()
    for call in tool_calls if isinstance(tool_calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        call_id = call.get("id")
        arguments = function.get("arguments")
        output.append(
            call_item(
                tool_map,
                new_id("fc_"),
                call_id if isinstance(call_id, str) and call_id else new_id("call_"),
                str(function.get("name") or ""),
                arguments if isinstance(arguments, str) else "",
                "completed",
            )
        )

    if incomplete is not None and output:
        output[-1]["status"] = "incomplete"
    response["status"] = status
    response["incomplete_details"] = incomplete
    response["completed_at"] = int(time.time())
    response["output"] = output
    response["output_text"] = response_output_text(output)
    response["usage"] = map_usage(chat.get("usage"))
    if isinstance(chat.get("service_tier"), str):
        response["service_tier"] = chat["service_tier"]
    if isinstance(chat.get("routing_metadata"), dict):
        response["routing_metadata"] = chat["routing_metadata"]
    return response
