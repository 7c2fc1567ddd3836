"""Request mapping: a Responses request -> the equivalent Chat Completions request.

The table is in docs/responses-mapping.md. Everything without a chat equivalent is a 400
naming the field (``param`` path), never a silent drop; the few deliberate drops (a reasoning
item in ``drop`` mode) leave a structured warning that ends in ``routing_metadata.warnings``.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn

from akgate.context import RequestContext
from akgate.errors import GatewayError

from ._options import AdapterOptions
from ._tool_request import hosted, map_tool_choice, map_tools
from ._tools import ToolMap, custom_arguments

__all__ = ["HOSTED_ITEM_TYPES", "HOSTED_TOOL_TYPES", "to_chat_request"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


HOSTED_TOOL_TYPES: Final = _words(
    """web_search web_search_preview web_search_2025_08_26 web_search_preview_2025_03_11
    file_search mcp computer computer_use computer_use_preview code_interpreter
    image_generation shell apply_patch tool_search local_shell programmatic_tool_calling"""
)

#: Items that only OpenAI's platform produces or runs (hosted tools, compaction, programs).
HOSTED_ITEM_TYPES: Final = _words(
    """web_search_call file_search_call computer_call computer_call_output mcp_call
    mcp_list_tools mcp_approval_request mcp_approval_response shell_call shell_call_output
    apply_patch_call apply_patch_call_output local_shell_call local_shell_call_output
    code_interpreter_call image_generation_call tool_search_call tool_search_output compaction
    compaction_summary compaction_trigger program program_output additional_tools
    configuration_update"""
)

#: Top-level fields the bridge handles itself: echoed in the Response, never forwarded.
_ECHO_ONLY: Final = _words(
    """model input instructions tools tool_choice text reasoning max_output_tokens top_logprobs
    include stream stream_options store previous_response_id conversation background
    truncation prompt max_tool_calls context_management parallel_tool_calls"""
)
#: Fields of OpenAI's Responses API that chat providers never receive (docs/validation-rules.md):
#: ``client_metadata`` is the caller's own bookkeeping, the rest are platform options.
_NOT_FORWARDED: Final = _words(
    """client_metadata access_programs background_options image moderation
    prompt_cache_options"""
)

#: Forwarded under the same name when present (type-checked where the mapping relies on it).
_SAME_NAME: Final = (
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "user",
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "seed",
)

_IMAGE_DETAIL: Final = {"auto": "auto", "low": "low", "high": "high", "original": "high"}
_TEXT_ROLES: Final = frozenset({"system", "developer"})


def _fail(code: str, message: str, param: str) -> NoReturn:
    raise GatewayError(code, message, param)


def _invalid(param: str, message: str) -> NoReturn:
    _fail("invalid_parameter_value", message, param)


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        _invalid(param, f"'{param}' must be a string.")
    return value


def _obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _invalid(param, f"'{param}' must be an object.")
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        _invalid(param, f"'{param}' must be an array.")
    return value


def _number(value: Any, param: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _invalid(param, f"'{param}' must be a number.")


def _integer(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _invalid(param, f"'{param}' must be an integer.")
    return value


def _required(obj: dict[str, Any], key: str, param: str) -> Any:
    if obj.get(key) is None:
        _missing(param)
    return obj[key]


def _missing(param: str) -> NoReturn:
    _fail("missing_required_parameter", f"Missing required parameter: '{param}'.", param)


def _stateless(param: str, what: str) -> NoReturn:
    _fail(
        "operation_not_allowed",
        f"{what} is not supported: this endpoint is stateless.",
        param,
    )


# --- content ------------------------------------------------------------------------------


def _part_text(part: Any, path: str, allowed: frozenset[str]) -> str:
    """The text of one part of a type in ``allowed``, rejecting anything else."""
    part = _obj(part, path)
    kind = part.get("type")
    if kind in ("input_file", "input_audio"):
        _stateless(path, f"'{kind}' content")
    if kind not in allowed:
        _invalid(f"{path}.type", f"Content part type {kind!r} is not allowed here.")
    key = "refusal" if kind == "refusal" else "text"
    return _str(part.get(key), f"{path}.{key}")


def _text_of_parts(parts: list[Any], param: str, allowed: frozenset[str]) -> list[str]:
    """The texts of ``parts`` (each of a type in ``allowed``), rejecting anything else."""
    return [_part_text(part, f"{param}[{j}]", allowed) for j, part in enumerate(parts)]


def _file_part(part: dict[str, Any], path: str, options: AdapterOptions) -> dict[str, Any]:
    """The chat ``file`` part for a Responses ``input_file`` part (only inline data travels)."""
    if not options.inline_files:
        _stateless(path, "'input_file' content")
    if part.get("file_id") is not None:
        # A file id points into a Files API (uploaded earlier): this gateway has none.
        _fail(
            "operation_not_allowed",
            "'input_file.file_id' is not supported: send the file inline as 'file_data' "
            "(a data URL).",
            f"{path}.file_id",
        )
    if part.get("file_url") is not None:
        # Chat's file part has no URL form, and fetching URLs for a caller is not our job.
        _fail(
            "operation_not_allowed",
            "'input_file.file_url' cannot be passed to a chat-completions provider: send the "
            "file inline as 'file_data' (a data URL).",
            f"{path}.file_url",
        )
    data = _str(_required(part, "file_data", f"{path}.file_data"), f"{path}.file_data")
    file: dict[str, Any] = {"file_data": data}
    filename = part.get("filename")
    if filename is not None:
        file["filename"] = _str(filename, f"{path}.filename")
    return {"type": "file", "file": file}


def _user_content(content: Any, param: str, options: AdapterOptions) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(_list(content, param)):
        path = f"{param}[{j}]"
        part = _obj(part, path)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": _str(part.get("text"), f"{path}.text")})
        elif kind == "input_image":
            if part.get("file_id") is not None:
                # Files are stateful (uploaded earlier): the same code as the validation layer.
                _fail(
                    "operation_not_allowed",
                    "'input_image.file_id' is not supported: send 'image_url' (URL or data URL).",
                    f"{path}.file_id",
                )
            url = _required(part, "image_url", f"{path}.image_url")
            image: dict[str, Any] = {"url": _str(url, f"{path}.image_url")}
            detail = part.get("detail")
            if detail is None:
                image["detail"] = "auto"
            elif detail in _IMAGE_DETAIL:
                image["detail"] = _IMAGE_DETAIL[detail]
            else:
                _invalid(f"{path}.detail", "'detail' must be one of auto, low, high, original.")
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            parts.append(_file_part(part, path, options))
        elif kind == "input_audio":
            _stateless(path, f"'{kind}' content")
        else:
            _invalid(f"{path}.type", f"Unknown content part type {kind!r}.")
    return parts


# --- items --------------------------------------------------------------------------------


class _Messages:
    """Builds the chat ``messages`` list, merging calls into the preceding assistant message."""

    __slots__ = (
        "call_ids",
        "messages",
        "options",
        "pending_files",
        "pending_reasoning",
        "tool_map",
    )

    def __init__(self, options: AdapterOptions, tool_map: ToolMap | None = None) -> None:
        self.options = options
        self.tool_map = tool_map if tool_map is not None else ToolMap()
        self.messages: list[dict[str, Any]] = []
        self.call_ids: set[str] = set()
        self.pending_reasoning: list[str] = []
        #: Files returned by tool outputs: chat tool messages hold text only, so they follow
        #: the run of tool messages as one user message.
        self.pending_files: list[dict[str, Any]] = []

    def flush_files(self) -> None:
        if self.pending_files:
            self.messages.append({"role": "user", "content": self.pending_files})
            self.pending_files = []

    def _attach_reasoning(self, message: dict[str, Any]) -> None:
        if self.pending_reasoning and self.options.reasoning_input != "drop":
            message[self.options.reasoning_input] = "\n\n".join(self.pending_reasoning)
        self.pending_reasoning = []

    def message(self, item: dict[str, Any], param: str) -> None:
        role = item.get("role")
        content = item.get("content")
        if content is None:
            _missing(f"{param}.content")
        if role == "user":
            user = _user_content(content, f"{param}.content", self.options)
            self.messages.append({"role": "user", "content": user})
        elif role in _TEXT_ROLES:
            if isinstance(content, str):
                text = content
            else:
                allowed = frozenset({"input_text", "text"})
                text = "\n".join(
                    _text_of_parts(_list(content, f"{param}.content"), f"{param}.content", allowed)
                )
            if role == "developer":
                role = self.options.developer_role
            self.messages.append({"role": role, "content": text})
        elif role == "assistant":
            message: dict[str, Any] = {"role": "assistant"}
            if isinstance(content, str):
                message["content"] = content
            else:
                texts, refusals = [], []
                for j, part in enumerate(_list(content, f"{param}.content")):
                    path = f"{param}.content[{j}]"
                    kind = _obj(part, path).get("type")
                    if kind == "refusal":
                        refusals.append(_str(part.get("refusal"), f"{path}.refusal"))
                    elif kind in ("output_text", "input_text", "text"):
                        texts.append(_str(part.get("text"), f"{path}.text"))
                    else:
                        _invalid(
                            f"{path}.type",
                            f"Content part type {kind!r} is not allowed in an assistant message.",
                        )
                # All parts joined: reducing to content[0] loses text and breaks on refusals.
                message["content"] = "".join(texts) if texts else None
                if refusals:
                    message["refusal"] = "".join(refusals)
            self._attach_reasoning(message)
            self.messages.append(message)
        elif role is None:
            _missing(f"{param}.role")
        else:
            _invalid(f"{param}.role", "'role' must be one of user, system, developer, assistant.")

    def function_call(self, item: dict[str, Any], param: str) -> None:
        call_id = _str(_required(item, "call_id", f"{param}.call_id"), f"{param}.call_id")
        name = _str(_required(item, "name", f"{param}.name"), f"{param}.name")
        if item.get("type") == "custom_tool_call":
            text = _str(_required(item, "input", f"{param}.input"), f"{param}.input")
            arguments = custom_arguments(text)
        else:
            arguments = _str(
                _required(item, "arguments", f"{param}.arguments"), f"{param}.arguments"
            )
        namespace = item.get("namespace")
        if namespace is not None:
            namespace = _str(namespace, f"{param}.namespace")
        kind = "custom" if item.get("type") == "custom_tool_call" else "function"
        name = self.tool_map.chat_name(name, namespace, kind)
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant" and not self.pending_reasoning:
            last.setdefault("tool_calls", []).append(call)
        else:
            # Consecutive calls share one assistant message (Anthropic needs them together).
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
            self._attach_reasoning(message)
            self.messages.append(message)
        self.call_ids.add(call_id)

    def function_call_output(self, item: dict[str, Any], param: str) -> None:
        call_id = _str(_required(item, "call_id", f"{param}.call_id"), f"{param}.call_id")
        if call_id not in self.call_ids:
            # An orphan tool message breaks chat templates; inventing a call would hide the bug.
            _invalid(
                f"{param}.call_id",
                f"No function_call with call_id {call_id!r} precedes this function_call_output.",
            )
        output = _required(item, "output", f"{param}.output")
        if not isinstance(output, str):
            allowed = frozenset({"input_text", "output_text", "text"})
            texts = []
            for j, part in enumerate(_list(output, f"{param}.output")):
                path = f"{param}.output[{j}]"
                if isinstance(part, dict) and part.get("type") == "input_file":
                    self.pending_files.append(_file_part(part, path, self.options))
                else:
                    texts.append(_part_text(part, path, allowed))
            output = "".join(texts)
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": output})

    def reasoning(self, item: dict[str, Any], param: str, ctx: RequestContext | None) -> None:
        texts: list[str] = []
        for key, part_type in (("content", "reasoning_text"), ("summary", "summary_text")):
            parts = item.get(key)
            if parts:
                allowed = frozenset({part_type})
                texts = _text_of_parts(_list(parts, f"{param}.{key}"), f"{param}.{key}", allowed)
                break  # the raw trace when present, else the summary
        if self.options.reasoning_input == "drop":
            if ctx is not None:
                ctx.warn(
                    "unsupported_field",
                    param,
                    "A reasoning input item was not forwarded to the chat upstream.",
                )
            return
        text = "\n\n".join(t for t in texts if t)
        if text:
            self.pending_reasoning.append(text)


def _map_input(
    payload: dict[str, Any],
    options: AdapterOptions,
    ctx: RequestContext | None,
    tool_map: ToolMap | None = None,
) -> list[dict[str, Any]]:
    builder = _Messages(options, tool_map)
    instructions = payload.get("instructions")
    if instructions is not None:
        builder.messages.append({"role": "system", "content": _str(instructions, "instructions")})
    value = payload.get("input")
    if value is None:
        _missing("input")
    if isinstance(value, str):
        builder.messages.append({"role": "user", "content": value})
        return builder.messages
    for i, item in enumerate(_list(value, "input")):
        param = f"input[{i}]"
        item = _obj(item, param)
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"  # type is optional on messages; real clients omit it
        if kind not in ("function_call_output", "custom_tool_call_output"):
            builder.flush_files()  # after the run of tool messages they came with
        if kind == "message":
            builder.message(item, param)
        elif kind in ("function_call", "custom_tool_call"):
            builder.function_call(item, param)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            builder.function_call_output(item, param)
        elif kind == "reasoning":
            builder.reasoning(item, param, ctx)
        elif kind == "item_reference":
            _stateless(param, "'item_reference'")
        elif kind in HOSTED_ITEM_TYPES:
            hosted("Input item type", kind, param, options, ctx)  # strict: 400; lenient: dropped
        elif kind is None:
            _missing(f"{param}.type")
        else:
            _invalid(f"{param}.type", f"Unknown input item type {kind!r}.")
    builder.flush_files()
    if not builder.messages:
        _invalid("input", "'input' must contain at least one item.")
    return builder.messages


# --- tools and formats --------------------------------------------------------------------


def _map_format(fmt: Any) -> dict[str, Any] | None:
    fmt = _obj(fmt, "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema: dict[str, Any] = {
            "name": _str(_required(fmt, "name", "text.format.name"), "text.format.name"),
            "schema": _obj(_required(fmt, "schema", "text.format.schema"), "text.format.schema"),
        }
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    _invalid("text.format.type", "'text.format.type' must be text, json_object or json_schema.")


# --- platform options ---------------------------------------------------------------------

#: Platform options a chat upstream cannot honour: accepted, reported, never forwarded.
_PLATFORM_OPTIONS: Final = {
    "moderation": "OpenAI's moderation pass is not run for chat providers.",
    "access_programs": "Access programs apply to OpenAI's platform only.",
    "context_management": "Server-side compaction is not performed for chat providers.",
    "image": "Request-level image options are not forwarded to chat providers.",
}


def _warn_platform_options(payload: dict[str, Any], ctx: RequestContext | None) -> None:
    if ctx is None:
        return
    for key, message in _PLATFORM_OPTIONS.items():
        if payload.get(key) is not None:
            ctx.warn("unsupported_field", key, f"'{key}' was ignored: {message}")


# --- entry point --------------------------------------------------------------------------


def to_chat_request(
    payload: dict[str, Any], options: AdapterOptions, ctx: RequestContext | None = None
) -> dict[str, Any]:
    """The chat-completions body for the Responses request ``payload`` (GatewayError: 400)."""
    if payload.get("store") is True:
        _stateless("store", "'store: true'")
    for key in ("previous_response_id", "conversation", "prompt"):
        if payload.get(key) is not None:
            _stateless(key, f"'{key}'")
    if payload.get("background") is True:
        _stateless("background", "'background: true'")

    chat: dict[str, Any] = {}
    model = payload.get("model")
    if model is not None:
        chat["model"] = _str(model, "model")
    elif not isinstance(payload.get("gateway"), dict):
        _missing("model")
    tools = payload.get("tools")
    tool_map = ToolMap.from_tools(tools)
    chat["messages"] = _map_input(payload, options, ctx, tool_map)

    chat_tools = map_tools(_list(tools, "tools"), tool_map, options, ctx) if tools else None
    if chat_tools:
        chat["tools"] = chat_tools
        if payload.get("parallel_tool_calls") is not None:
            # Chat rejects parallel_tool_calls without tools, so it travels only with them.
            if not isinstance(payload["parallel_tool_calls"], bool):
                _invalid("parallel_tool_calls", "'parallel_tool_calls' must be a boolean.")
            chat["parallel_tool_calls"] = payload["parallel_tool_calls"]
    elif tools is not None:
        _list(tools, "tools")
    if payload.get("tool_choice") is not None:
        tool_choice = map_tool_choice(payload["tool_choice"], tool_map, options, ctx)
        if tool_choice is not None and (chat_tools or not tools):
            chat["tool_choice"] = tool_choice

    text = payload.get("text")
    if text is not None:
        text = _obj(text, "text")
        if text.get("format") is not None:
            response_format = _map_format(text["format"])
            if response_format is not None:
                chat["response_format"] = response_format
        if text.get("verbosity") is not None:
            chat["verbosity"] = _str(text["verbosity"], "text.verbosity")

    reasoning = payload.get("reasoning")
    if reasoning is not None:
        reasoning = _obj(reasoning, "reasoning")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = _str(reasoning["effort"], "reasoning.effort")

    if payload.get("max_output_tokens") is not None:
        limit = _integer(payload["max_output_tokens"], "max_output_tokens")
        chat[options.max_tokens_field] = limit

    include = payload.get("include")
    if include is not None:
        include = _list(include, "include")
    top_logprobs = payload.get("top_logprobs")
    if top_logprobs is not None:
        top_logprobs = _integer(top_logprobs, "top_logprobs")
    if (include and "message.output_text.logprobs" in include) or top_logprobs:
        chat["logprobs"] = True
        if top_logprobs is not None:
            chat["top_logprobs"] = top_logprobs

    for key in _SAME_NAME:
        value = payload.get(key)
        if value is None:
            continue
        if key in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
            _number(value, key)
        elif key in ("top_k", "seed"):
            _integer(value, key)
        elif key == "metadata":
            _obj(value, key)
        else:
            _str(value, key)
        chat[key] = value

    _warn_platform_options(payload, ctx)

    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        _invalid("stream", "'stream' must be a boolean.")
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}

    # gateway/extensions and provider passthrough fields merged by an outer routing layer travel
    # unchanged: the chat side decides what they mean.
    for key, value in payload.items():
        if (
            key not in chat
            and key not in _ECHO_ONLY
            and key not in _SAME_NAME
            and key not in _NOT_FORWARDED
        ):
            chat[key] = value
    return chat
