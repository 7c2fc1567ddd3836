"""Anthropic Messages request -> chat completions request (``docs/messages.md`` has the tables).

What real clients send and chat has no field for (``cache_control``, ``context_management``,
``anthropic-beta`` flags, ``service_tier``, ``$schema`` in tool schemas ...) is accepted and
ignored; only what would silently change the answer's meaning is refused with a 400 (server
tools under the strict policy, documents the chat format cannot carry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic_core import to_json

from akgate.context import RequestContext
from akgate.errors import GatewayError

from ._ids import chat_tool_id, short_name
from ._options import MessagesOptions

__all__ = ["MessagesRequest", "to_chat_request"]

_ROLES: Final = ("user", "assistant", "system")
_EFFORTS: Final = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
#: What an ``is_error`` tool result starts with (chat has no error flag on tool messages).
ERROR_MARKER: Final = "[tool error] "
_SERVER_BLOCKS: Final = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)


@dataclass(slots=True)
class MessagesRequest:
    """What the response side needs to know about the request."""

    model: str
    stream: bool
    #: Shortened chat tool name -> the client's name.
    names: dict[str, str] = field(default_factory=dict)
    #: ``thinking.display == "omitted"``: thinking blocks carry a signature and no text.
    omit_thinking: bool = False
    stop_sequences: tuple[str, ...] = ()


def _bad(message: str, param: str | None = None) -> GatewayError:
    return GatewayError("invalid_request", message, param)


def _hosted(options: MessagesOptions, ctx: RequestContext | None, what: str, param: str) -> None:
    """Apply the hosted-tools policy to something only Anthropic's servers can run."""
    if options.hosted_tools == "strict":
        raise GatewayError(
            "hosted_tool_not_supported",
            f"{what} runs on Anthropic's servers and this model cannot run it; remove it "
            "(or serve with hosted_tools='lenient' to drop it with a warning).",
            param,
        )
    if ctx is not None:
        ctx.warn("dropped_tool", param, f"{what} was dropped: this model cannot run it.")


def _text_of(blocks: Any, param: str) -> str:
    """The text of a ``system`` value or a system message's content (string or text blocks)."""
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _bad("Must be a string or an array of text blocks.", param)
    texts = []
    for i, block in enumerate(blocks):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise _bad("Only text blocks are allowed here.", f"{param}[{i}]")
        text = block.get("text")
        if not isinstance(text, str):
            raise _bad("A text block needs a string 'text'.", f"{param}[{i}].text")
        texts.append(text)
    return "\n\n".join(texts)


def _image_part(block: Mapping[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise _bad("An image block needs a 'source'.", f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise _bad("A base64 source needs 'media_type' and 'data'.", f"{param}.source")
        url = f"data:{media};base64,{data}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise _bad(
            f"Image source type {kind!r} is not supported here (use base64 or url).",
            f"{param}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(block: Mapping[str, Any], param: str) -> list[dict[str, Any]]:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise _bad("A document block needs a 'source'.", f"{param}.source")
    kind = source.get("type")
    title = block.get("title")
    head = [{"type": "text", "text": title}] if isinstance(title, str) and title else []
    if kind == "text" and isinstance(source.get("data"), str):
        return [*head, {"type": "text", "text": source["data"]}]
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return [*head, {"type": "text", "text": content}]
        if isinstance(content, list):
            return head + [
                p
                for i, b in enumerate(content)
                for p in _user_parts(b, f"{param}.source.content[{i}]")
            ]
    if kind == "base64" and isinstance(source.get("data"), str):
        media = source.get("media_type") or "application/pdf"
        return [
            *head,
            {
                "type": "file",
                "file": {
                    "file_data": f"data:{media};base64,{source['data']}",
                    "filename": title if isinstance(title, str) and title else "document.pdf",
                },
            },
        ]
    raise _bad(
        f"Document source type {kind!r} cannot be passed to this model (use base64, text or "
        "content sources).",
        f"{param}.source.type",
    )


def _user_parts(block: Any, param: str) -> list[dict[str, Any]]:
    """Chat content parts for one user block that is not a tool result."""
    if not isinstance(block, Mapping):
        raise _bad("A content block must be an object.", param)
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise _bad("A text block needs a string 'text'.", f"{param}.text")
        return [{"type": "text", "text": text}]
    if kind == "image":
        return [_image_part(block, param)]
    if kind == "document":
        return _document_parts(block, param)
    if kind == "search_result":
        parts = []
        title = block.get("title")
        if isinstance(title, str) and title:
            parts.append({"type": "text", "text": title})
        content = block.get("content")
        if isinstance(content, list):
            for i, b in enumerate(content):
                parts.extend(_user_parts(b, f"{param}.content[{i}]"))
        return parts
    if kind == "tool_reference":
        name = block.get("tool_name")
        return [{"type": "text", "text": f"Tool available: {name}"}]
    raise _bad(f"Unsupported content block type {kind!r}.", f"{param}.type")


def _tool_result(block: Mapping[str, Any], param: str) -> tuple[dict[str, Any], list[Any]]:
    """The chat ``tool`` message of a tool result, and its images (for a following user turn)."""
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise _bad("A tool_result block needs a 'tool_use_id'.", f"{param}.tool_use_id")
    content = block.get("content")
    texts: list[str] = []
    images: list[Any] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for i, part in enumerate(content):
            for p in _user_parts(part, f"{param}.content[{i}]"):
                if p["type"] == "text":
                    texts.append(p["text"])
                else:
                    images.append(p)
    elif content is not None:
        raise _bad("tool_result content must be a string or an array.", f"{param}.content")
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = ERROR_MARKER + text
    return {"role": "tool", "tool_call_id": chat_tool_id(tool_use_id), "content": text}, images


def _user_turn(
    content: Any, param: str, options: MessagesOptions, ctx: RequestContext | None
) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise _bad("'content' must be a string or an array of blocks.", param)
    tools: list[dict[str, Any]] = []
    parts: list[Any] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "tool_result":
            message, images = _tool_result(block, f"{param}[{i}]")
            tools.append(message)
            parts.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            continue
        elif kind in _SERVER_BLOCKS:
            _hosted(options, ctx, f"A {kind} block", f"{param}[{i}]")
        else:
            parts.extend(_user_parts(block, f"{param}[{i}]"))
    # Tool results first: chat needs them right after the assistant's tool calls.
    out = tools
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _assistant_turn(
    content: Any,
    param: str,
    options: MessagesOptions,
    ctx: RequestContext | None,
) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise _bad("'content' must be a string or an array of blocks.", param)
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        if not isinstance(block, Mapping):
            raise _bad("A content block must be an object.", f"{param}[{i}]")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str):
                texts.append(text)
        elif kind == "tool_use":
            call_id, name = block.get("id"), block.get("name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise _bad("A tool_use block needs 'id' and 'name'.", f"{param}[{i}]")
            tool_input = block.get("input")
            calls.append(
                {
                    "id": chat_tool_id(call_id),
                    "type": "function",
                    "function": {
                        "name": short_name(name),
                        "arguments": to_json({} if tool_input is None else tool_input).decode(),
                    },
                }
            )
        elif kind == "thinking":
            thought = block.get("thinking")
            if isinstance(thought, str) and thought:
                reasoning.append(thought)
        elif kind == "redacted_thinking":
            continue  # opaque to any other model
        elif kind in _SERVER_BLOCKS:
            _hosted(options, ctx, f"A {kind} block", f"{param}[{i}]")
        else:
            raise _bad(f"Unsupported assistant block type {kind!r}.", f"{param}[{i}].type")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    if reasoning and options.reasoning_input != "drop":
        message[options.reasoning_input] = "\n\n".join(reasoning)
    elif reasoning and ctx is not None:
        ctx.warn(
            "dropped_input", "thinking", "Replayed thinking blocks were not sent to the model."
        )
    return message


def _referenced_tools(messages: list[Any]) -> set[str]:
    """Tool names made available by ``tool_reference`` blocks (for ``defer_loading`` tools)."""
    names: set[str] = set()
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, Mapping):
                continue
            inner = block.get("content") if block.get("type") == "tool_result" else [block]
            for b in inner if isinstance(inner, list) else ():
                if isinstance(b, Mapping) and b.get("type") == "tool_reference":
                    name = b.get("tool_name")
                    if isinstance(name, str):
                        names.add(name)
    return names


def _tools(
    tools: Any,
    messages: list[Any],
    options: MessagesOptions,
    ctx: RequestContext | None,
    names: dict[str, str],
) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("'tools' must be an array.", "tools")
    referenced: set[str] | None = None
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise _bad("A tool must be an object.", f"tools[{i}]")
        kind = tool.get("type")
        schema = tool.get("input_schema")
        if kind not in (None, "custom") or schema is None:
            _hosted(options, ctx, f"Tool type {kind!r}", f"tools[{i}]")
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _bad("A tool needs a 'name'.", f"tools[{i}].name")
        if not isinstance(schema, Mapping):
            raise _bad("'input_schema' must be an object.", f"tools[{i}].input_schema")
        if tool.get("defer_loading") is True:
            if referenced is None:
                referenced = _referenced_tools(messages)
            if name not in referenced:
                continue  # loaded on demand: only once a tool_reference named it
        chat_name = short_name(name)
        if chat_name != name:
            names[chat_name] = name
        function: dict[str, Any] = {
            "name": chat_name,
            "parameters": {k: v for k, v in schema.items() if k != "$schema"},
        }
        description = tool.get("description")
        if isinstance(description, str):
            function["description"] = description
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    if not isinstance(choice, Mapping):
        raise _bad("'tool_choice' must be an object.", "tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise _bad("tool_choice of type 'tool' needs a 'name'.", "tool_choice.name")
        chat["tool_choice"] = {"type": "function", "function": {"name": short_name(name)}}
    else:
        raise _bad("tool_choice.type must be auto, any, tool or none.", "tool_choice.type")
    if choice.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def _effort(payload: Mapping[str, Any], options: MessagesOptions) -> tuple[str | None, bool]:
    """The chat ``reasoning_effort`` and whether thinking text is omitted."""
    thinking = payload.get("thinking")
    config = payload.get("output_config")
    effort = config.get("effort") if isinstance(config, Mapping) else None
    named = _EFFORTS.get(effort) if isinstance(effort, str) else None
    if not isinstance(thinking, Mapping):
        return named, False
    omitted = thinking.get("display") == "omitted"
    kind = thinking.get("type")
    if kind == "disabled":
        return None, omitted
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if named is None and isinstance(budget, int) and not isinstance(budget, bool):
            low, medium = options.effort_budgets
            named = "low" if budget < low else "medium" if budget < medium else "high"
        return named, omitted
    return named, omitted  # adaptive (and newer kinds): the effort if given, else the default


def to_chat_request(
    payload: Mapping[str, Any],
    options: MessagesOptions,
    ctx: RequestContext | None = None,
    *,
    count_only: bool = False,
) -> tuple[dict[str, Any], MessagesRequest]:
    """The chat completions request for an Anthropic Messages request (400 on bad input).

    ``count_only``: a ``count_tokens`` request (no ``max_tokens``, never streamed).
    """
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("'model' is required and must be a non-empty string.", "model")
    max_tokens = payload.get("max_tokens")
    if not count_only and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0
    ):
        raise _bad("'max_tokens' is required and must be a non-negative integer.", "max_tokens")
    messages = payload.get("messages")
    if not isinstance(messages, list):
        raise _bad("'messages' is required and must be an array.", "messages")
    stream = payload.get("stream") is True and not count_only
    effort, omitted = _effort(payload, options)
    stops = payload.get("stop_sequences")
    stop_sequences = (
        tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else ()
    )
    info = MessagesRequest(
        model=model, stream=stream, omit_thinking=omitted, stop_sequences=stop_sequences
    )

    system: list[str] = []
    if payload.get("system") is not None:
        text = _text_of(payload["system"], "system")
        if text:
            system.append(text)
    chat_messages: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            raise _bad("Each message needs a role of user, assistant or system.", param)
        role, content = message["role"], message.get("content")
        if role == "system":
            text = _text_of(content, f"{param}.content")
            if options.system_messages == "keep":
                chat_messages.append({"role": "system", "content": text})
            elif text:
                system.append(text)
        elif role == "user":
            chat_messages.extend(_user_turn(content, f"{param}.content", options, ctx))
        else:
            chat_messages.append(_assistant_turn(content, f"{param}.content", options, ctx))
    if system:
        chat_messages.insert(0, {"role": "system", "content": "\n\n".join(system)})

    chat: dict[str, Any] = {"model": model, "messages": chat_messages}
    if not count_only:
        chat[options.max_tokens_field] = max(1, max_tokens)  # type: ignore[type-var]
    tools = payload.get("tools")
    if tools:
        chat_tools = _tools(tools, messages, options, ctx, info.names)
        if chat_tools:
            chat["tools"] = chat_tools
            if payload.get("tool_choice") is not None:
                _tool_choice(payload["tool_choice"], chat)
    for key in ("mcp_servers", "container"):
        if payload.get(key):
            _hosted(options, ctx, f"'{key}'", key)
    if stop_sequences:
        chat["stop"] = list(stop_sequences)
    for key in ("temperature", "top_p"):
        value = payload.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            chat[key] = value
    if payload.get("top_k") is not None and ctx is not None:
        ctx.warn("ignored_parameter", "top_k", "'top_k' has no chat equivalent and was ignored.")
    metadata = payload.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    if isinstance(user_id, str) and user_id:
        # Claude Code sends a long JSON string here: a stable hash identifies the user alike.
        chat["safety_identifier"] = hashlib.sha256(user_id.encode()).hexdigest()[:32]
    if effort is not None:
        chat["reasoning_effort"] = effort
    config = payload.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt.get("schema") or {}, "strict": True},
        }
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat, info
