"""Responses tool types on a chat upstream: ``namespace`` and ``custom`` tools as function tools.

Chat completions knows only flat function tools, so the adapter flattens the others and maps the
upstream's calls back to what the client declared:

* a ``namespace`` tool's members become top-level function tools named ``<namespace>__<name>``
  (see :func:`flat_name`); a call of one comes back with its own ``name`` and ``namespace``;
* a ``custom`` tool (free text, optional grammar) becomes a function tool with one string
  parameter, ``input``; the grammar goes into the description. A call comes back as a
  ``custom_tool_call`` item whose ``input`` is that string.

Names are deterministic (the same request always maps the same way, so a replayed call finds its
tool) and collision-free: top-level function and custom tools keep their names, and a flattened
name that is taken, too long or not a valid chat name gets a short hash of ``(namespace, name)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "CUSTOM_INPUT_KEY",
    "CustomInputDecoder",
    "ToolMap",
    "ToolRef",
    "custom_arguments",
    "custom_input",
    "flat_name",
]

#: The one parameter of the function tool that stands in for a custom tool.
CUSTOM_INPUT_KEY: Final = "input"
#: Chat function names: what OpenAI-compatible upstreams accept.
_CHAT_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNSAFE_RE: Final = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME: Final = 64
_SEPARATOR: Final = "__"
#: Tool types whose names the map must track (function tools alone map to themselves).
_MAPPED: Final = frozenset({"namespace", "custom"})


class ToolRef(NamedTuple):
    """How the client declared one tool: its kind, its name and its namespace (or None)."""

    kind: Literal["function", "custom"]
    name: str
    namespace: str | None = None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]


def flat_name(namespace: str | None, name: str) -> str:
    """The preferred chat name of a tool (before collisions are resolved)."""
    if namespace is None:
        return name
    candidate = f"{namespace}{_SEPARATOR}{name}"
    if _CHAT_NAME_RE.match(candidate):
        return candidate
    # Not a valid chat name (too long, or characters chat refuses): safe prefix + hash.
    safe = _UNSAFE_RE.sub("_", candidate)[: _MAX_NAME - 9]
    return f"{safe}_{_digest(namespace, name)}"


class ToolMap:
    """The chat names of one request's tools, and the way back from a chat name."""

    __slots__ = ("_by_chat", "_by_ref")

    def __init__(self) -> None:
        self._by_chat: dict[str, ToolRef] = {}
        self._by_ref: dict[ToolRef, str] = {}

    def __bool__(self) -> bool:
        return bool(self._by_chat)

    @classmethod
    def from_tools(cls, tools: Any) -> ToolMap:
        """The map for a Responses ``tools`` list (entries it cannot read are skipped)."""
        tool_map = cls()
        if not isinstance(tools, list) or not any(
            isinstance(tool, dict) and tool.get("type") in _MAPPED for tool in tools
        ):
            return tool_map  # function tools only: every name maps to itself
        nested: list[ToolRef] = []
        # Top-level names first: they are the client's own and never change.
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            kind, name = tool.get("type"), tool.get("name")
            if kind in ("function", "custom") and isinstance(name, str):
                tool_map._add(ToolRef(kind, name), name)
            elif kind == "namespace" and isinstance(name, str):
                members = tool.get("tools")
                for member in members if isinstance(members, list) else ():
                    if not isinstance(member, dict):
                        continue
                    member_kind, member_name = member.get("type"), member.get("name")
                    if member_kind in ("function", "custom") and isinstance(member_name, str):
                        nested.append(ToolRef(member_kind, member_name, name))
        for ref in nested:
            tool_map._add(ref, tool_map._free_name(ref))
        return tool_map

    def _add(self, ref: ToolRef, chat_name: str) -> None:
        if ref in self._by_ref:
            return  # declared twice: the first declaration wins
        if chat_name in self._by_chat:
            chat_name = self._free_name(ref)
        self._by_chat[chat_name] = ref
        self._by_ref[ref] = chat_name

    def _free_name(self, ref: ToolRef) -> str:
        name = flat_name(ref.namespace, ref.name)
        if name not in self._by_chat:
            return name
        stem = name[: _MAX_NAME - 9]
        for attempt in range(1000):
            salt = (ref.kind, ref.namespace or "", ref.name, str(attempt))
            candidate = f"{stem}_{_digest(*salt)}"
            if candidate not in self._by_chat:
                return candidate
        raise ValueError("no free tool name")  # pragma: no cover - 1000 hash collisions

    def chat_name(self, name: str, namespace: str | None = None, kind: str = "function") -> str:
        """The chat name for a declared tool; an undeclared one gets its preferred flat name."""
        if not self._by_ref:
            return name if namespace is None else flat_name(namespace, name)
        ref = ToolRef("custom" if kind == "custom" else "function", name, namespace)
        found = self._by_ref.get(ref)
        if found is None:
            # Declared as the other kind (a custom call replayed as a function call, or back).
            other = ToolRef("function" if ref.kind == "custom" else "custom", name, namespace)
            found = self._by_ref.get(other)
        return found if found is not None else flat_name(namespace, name)

    def client_ref(self, chat_name: str) -> ToolRef:
        """What the client declared for the chat tool ``chat_name`` (a plain function if none)."""
        return self._by_chat.get(chat_name) or ToolRef("function", chat_name)

    def kind_of(self, name: str, namespace: str | None = None) -> str | None:
        if ToolRef("function", name, namespace) in self._by_ref:
            return "function"
        if ToolRef("custom", name, namespace) in self._by_ref:
            return "custom"
        return None


# --- custom tools -------------------------------------------------------------------------


def custom_parameters(tool: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of the function that stands in for the custom tool ``tool``."""
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        about = f"The tool's input: text that matches the {fmt.get('syntax')} grammar given above."
    else:
        about = "The tool's input, as free text."
    return {
        "type": "object",
        "properties": {CUSTOM_INPUT_KEY: {"type": "string", "description": about}},
        "required": [CUSTOM_INPUT_KEY],
        "additionalProperties": False,
    }


def custom_description(tool: dict[str, Any]) -> str:
    """The custom tool's description, with its input format spelled out for the model."""
    description = tool.get("description")
    text = description if isinstance(description, str) else ""
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        grammar = (
            f"The input must match this {fmt.get('syntax')} grammar:\n"
            f"```\n{fmt.get('definition', '')}\n```"
        )
        text = f"{text}\n\n{grammar}" if text else grammar
    return text


def custom_arguments(text: str) -> str:
    """The chat arguments string carrying the custom input ``text``."""
    return json.dumps({CUSTOM_INPUT_KEY: text}, ensure_ascii=False)


def custom_input(arguments: str) -> str:
    """The custom input in chat ``arguments`` (the raw string when it is not our JSON shape)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(CUSTOM_INPUT_KEY), str):
        return str(value[CUSTOM_INPUT_KEY])
    return arguments


_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t"}  # fmt: skip
_KEY_RE: Final = re.compile(r'\s*\{\s*"' + CUSTOM_INPUT_KEY + r'"\s*:\s*"')


class CustomInputDecoder:
    """Decode the ``input`` string out of streamed chat argument fragments as they arrive.

    The upstream streams ``{"input": "...`` in arbitrary pieces; each :meth:`feed` returns the
    newly decoded input text (an escape cut in half waits for its other half), so a custom tool's
    input streams as ``response.custom_tool_call_input.delta`` events instead of being held.
    When the arguments are not that shape the decoder stops, and :func:`custom_input` of the
    whole string is the final word.
    """

    __slots__ = ("_done", "_failed", "_pos", "_raw", "_started")

    def __init__(self) -> None:
        self._raw = ""
        self._pos = 0
        self._started = False
        self._done = False
        self._failed = False

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._done or self._failed:
            return ""
        if not self._started:
            match = _KEY_RE.match(self._raw)
            if match is None:
                stripped = self._raw.lstrip()
                prefix = '{"' + CUSTOM_INPUT_KEY + '":"'
                compact = re.sub(r"\s+", "", stripped)
                if not prefix.startswith(compact[: len(prefix)]):
                    self._failed = True  # not our shape: the final item decides
                return ""
            self._started = True
            self._pos = match.end()
        out: list[str] = []
        raw, pos = self._raw, self._pos
        while pos < len(raw):
            char = raw[pos]
            if char == '"':
                self._done = True
                pos += 1
                break
            if char != "\\":
                out.append(char)
                pos += 1
                continue
            if pos + 1 >= len(raw):
                break  # half an escape: wait for the rest
            code = raw[pos + 1]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                pos += 2
                continue
            if code != "u":
                self._failed = True
                break
            decoded, used = _unicode_escape(raw, pos)
            if used == 0:
                break  # incomplete \\uXXXX (or a surrogate pair): wait
            out.append(decoded)
            pos += used
        self._pos = pos
        return "".join(out)


def _unicode_escape(raw: str, pos: int) -> tuple[str, int]:
    """Decode ``\\uXXXX`` (and a following low surrogate) at ``pos``; ``("", 0)`` if incomplete."""
    if pos + 6 > len(raw):
        return "", 0
    unit = int(raw[pos + 2 : pos + 6], 16) if _is_hex(raw[pos + 2 : pos + 6]) else -1
    if unit < 0:
        return "\ufffd", 6
    if 0xD800 <= unit < 0xDC00:
        if pos + 12 > len(raw):
            return "", 0
        if raw[pos + 6 : pos + 8] == "\\u" and _is_hex(raw[pos + 8 : pos + 12]):
            low = int(raw[pos + 8 : pos + 12], 16)
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), 12
    return chr(unit), 6


def _is_hex(text: str) -> bool:
    return len(text) == 4 and all(c in "0123456789abcdefABCDEF" for c in text)


# --- calls back to the client's shape -------------------------------------------------------


def call_item(
    tool_map: ToolMap, item_id: str, call_id: str, chat_name: str, arguments: str, status: str
) -> dict[str, Any]:
    """The output item for an upstream call of ``chat_name``: a ``function_call`` (with its
    ``namespace`` when it has one) or a ``custom_tool_call`` whose ``input`` is the text."""
    ref = tool_map.client_ref(chat_name)
    if ref.kind == "custom":
        item: dict[str, Any] = {
            "id": "ctc_" + item_id.partition("_")[2],
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": ref.name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": ref.name,
            "arguments": arguments,
        }
    if ref.namespace is not None:
        item["namespace"] = ref.namespace
    return item
