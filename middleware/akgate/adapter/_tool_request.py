"""Request side of the tool mapping: Responses ``tools`` / ``tool_choice`` -> chat, and the
``hosted_tools`` policy for tools and items that only OpenAI's platform runs.

Function tools map one to one; ``namespace`` and ``custom`` tools are flattened through a
:class:`~akgate.adapter._tools.ToolMap`. Hosted tools (``web_search``, ``mcp``, ...) have no chat
equivalent: with ``hosted_tools="strict"`` (the middleware default) they are a 400
``hosted_tool_not_supported``; with ``"lenient"`` they are dropped and each one leaves a
``routing_metadata.warnings`` entry.
"""

from __future__ import annotations

from typing import Any, NoReturn

from akgate.context import RequestContext
from akgate.errors import GatewayError

from ._options import AdapterOptions
from ._tools import ToolMap, custom_description, custom_parameters

__all__ = ["hosted", "map_tool_choice", "map_tools"]


def _fail(code: str, message: str, param: str) -> NoReturn:
    raise GatewayError(code, message, param)


def _invalid(param: str, message: str) -> NoReturn:
    _fail("invalid_parameter_value", message, param)


def _obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _invalid(param, f"'{param}' must be an object.")
    return value


def _name(tool: dict[str, Any], param: str) -> str:
    name = tool.get("name")
    if name is None:
        _fail("missing_required_parameter", f"Missing required parameter: '{param}.name'.",
              f"{param}.name")  # fmt: skip
    if not isinstance(name, str) or not name:
        _invalid(f"{param}.name", f"'{param}.name' must be a non-empty string.")
    return name


def hosted(
    what: str, kind: str, param: str, options: AdapterOptions, ctx: RequestContext | None
) -> None:
    """Apply the hosted-tool policy to one tool, tool_choice or item: raise (strict) or warn."""
    if options.hosted_tools == "strict":
        _fail(
            "hosted_tool_not_supported",
            f"{what} {kind!r} needs a hosted tool, which this provider does not serve (it speaks "
            "chat completions only); use function or custom tools, or a provider that serves "
            "/v1/responses natively.",
            param,
        )
    if ctx is not None:
        ctx.warn(
            "unsupported_feature",
            param,
            f"{what} {kind!r} was dropped: the provider speaks chat completions only and cannot "
            "run hosted tools.",
        )


def _function(tool: dict[str, Any], param: str, chat_name: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": chat_name}
    description = tool.get("description")
    if description is not None:
        if not isinstance(description, str):
            _invalid(f"{param}.description", f"'{param}.description' must be a string.")
        function["description"] = description
    if tool.get("parameters") is not None:
        function["parameters"] = _obj(tool["parameters"], f"{param}.parameters")
    if tool.get("strict") is not None:
        # Only when given: Responses defaults to strict, chat to non-strict (documented).
        if not isinstance(tool["strict"], bool):
            _invalid(f"{param}.strict", f"'{param}.strict' must be a boolean.")
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _custom(tool: dict[str, Any], chat_name: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": chat_name, "parameters": custom_parameters(tool)}
    description = custom_description(tool)
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def _namespaced(description: Any, namespace: str, member: dict[str, Any]) -> dict[str, Any]:
    """``member`` with the namespace's description in front of its own (the model sees both)."""
    head = f"[{namespace}] {description}" if isinstance(description, str) and description else ""
    if not head:
        head = f"[{namespace}]"
    own = member.get("description")
    text = f"{head}\n{own}" if isinstance(own, str) and own else head
    return {**member, "description": text}


def map_tools(
    tools: list[Any], tool_map: ToolMap, options: AdapterOptions, ctx: RequestContext | None
) -> list[dict[str, Any]]:
    """The chat ``tools`` for Responses ``tools`` (function, custom, namespace; hosted: policy)."""
    result: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        tool = _obj(tool, param)
        kind = tool.get("type")
        if kind == "function":
            name = _name(tool, param)
            result.append(_function(tool, param, tool_map.chat_name(name)))
        elif kind == "custom":
            name = _name(tool, param)
            result.append(_custom(tool, tool_map.chat_name(name, kind="custom")))
        elif kind == "namespace":
            namespace = _name(tool, param)
            members = tool.get("tools")
            if not isinstance(members, list):
                _invalid(f"{param}.tools", f"'{param}.tools' must be an array.")
            for j, member in enumerate(members):
                path = f"{param}.tools[{j}]"
                member = _obj(member, path)
                member_kind = member.get("type")
                name = _name(member, path)
                described = _namespaced(tool.get("description"), namespace, member)
                chat_name = tool_map.chat_name(name, namespace, str(member_kind))
                if member_kind == "function":
                    result.append(_function(described, path, chat_name))
                elif member_kind == "custom":
                    result.append(_custom(described, chat_name))
                else:
                    _invalid(f"{path}.type", "A namespace holds function and custom tools only.")
        elif kind is None:
            _fail("missing_required_parameter", f"Missing required parameter: '{param}.type'.",
                  f"{param}.type")  # fmt: skip
        else:
            hosted("Tool type", str(kind), param, options, ctx)
    return result


def _tool_ref(ref: Any, param: str, tool_map: ToolMap) -> dict[str, Any] | None:
    """A chat tool reference for a Responses one; None for a hosted tool (policy applies)."""
    ref = _obj(ref, param)
    kind = ref.get("type")
    if kind not in ("function", "custom"):
        return None
    name = _name(ref, param)
    namespace = ref.get("namespace") if isinstance(ref.get("namespace"), str) else None
    chat_name = tool_map.chat_name(name, namespace, str(kind))
    return {"type": "function", "function": {"name": chat_name}}


def map_tool_choice(
    choice: Any, tool_map: ToolMap, options: AdapterOptions, ctx: RequestContext | None
) -> Any:
    """The chat ``tool_choice`` (None: leave it out, after a lenient hosted drop)."""
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            _invalid("tool_choice", "'tool_choice' must be auto, none, required or an object.")
        return choice
    choice = _obj(choice, "tool_choice")
    kind = choice.get("type")
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            _invalid("tool_choice.mode", "'tool_choice.mode' must be auto or required.")
        refs = choice.get("tools")
        if refs is None:
            _fail("missing_required_parameter", "Missing required parameter: "
                  "'tool_choice.tools'.", "tool_choice.tools")  # fmt: skip
        if not isinstance(refs, list):
            _invalid("tool_choice.tools", "'tool_choice.tools' must be an array.")
        tools = []
        for k, ref in enumerate(refs):
            path = f"tool_choice.tools[{k}]"
            mapped = _tool_ref(ref, path, tool_map)
            if mapped is None:
                hosted("Allowed tool", str(_obj(ref, path).get("type")), path, options, ctx)
                continue
            tools.append(mapped)
        if not tools:
            return None  # every allowed tool was hosted and dropped: the default choice
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}
    mapped = _tool_ref(choice, "tool_choice", tool_map)
    if mapped is None:
        hosted("tool_choice type", str(kind), "tool_choice", options, ctx)
        return None
    return mapped
