"""The plain requests most traffic sends, recognized without running the pydantic model.

A chat request of text messages, or a Responses request whose ``input`` is a string or a list of
text messages, with a few plain scalar options: checked here with the same rules the models
apply (strict types, the documented ranges), in a fraction of the model's time. Anything else
(another field, a content part list, a tool, ``gateway``, a value out of range or of another
type) returns ``False`` and gets the model, which then names the problem. So this check may only
say yes where the model says yes; ``tests/validation/test_simple.py`` holds it to that with
hypothesis and at every boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["PLAIN_REQUEST", "is_simple_chat", "is_simple_responses"]

#: The ``RequestContext.state`` key where ``RequestValidation`` leaves the payload it found plain
#: (this module's check said yes): text messages and scalar options only, so no tools, content
#: parts, output format or reasoning effort. Routing then reads the request's needs without
#: walking its messages; the payload itself is the key's value, so a payload replaced since
#: (by a layer that rewrites the request) is not taken for the one checked.
PLAIN_REQUEST: Final = "akgate.validation.plain"


def _text(value: Any) -> bool:
    return type(value) is str


def _flag(value: Any) -> bool:
    return type(value) is bool


def _number(low: float, high: float) -> Callable[[Any], bool]:
    # Strict floats take ints, never bools; NaN fails both comparisons.
    def check(value: Any) -> bool:
        kind = type(value)
        return (kind is float or kind is int) and low <= value <= high

    return check


def _count(low: int) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return type(value) is int and value >= low

    return check


#: Plain chat options and their checks (the ranges of ``ChatCompletionRequest``).
_CHAT_OPTIONS: Final[dict[str, Callable[[Any], bool]]] = {
    "stream": _flag,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": _count(1),
    "max_completion_tokens": _count(1),
    "user": _text,
}
#: Plain Responses options and their checks (the ranges of ``ResponsesRequest``).
_RESPONSES_OPTIONS: Final[dict[str, Callable[[Any], bool]]] = {
    "stream": _flag,
    "instructions": _text,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_output_tokens": _count(16),
    "user": _text,
}
#: Roles whose message is ``{"role", "content": <string>}`` at its plainest.
_TEXT_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})
_MESSAGE_KEYS: Final = frozenset({"role", "content"})
#: A Responses input message may name its type.
_TYPED_MESSAGE_KEYS: Final = frozenset({"type", "role", "content"})


def _model(payload: dict[str, Any]) -> bool:
    model = payload.get("model")
    return type(model) is str and len(model) > 0


def _options(
    payload: dict[str, Any], required: str, known: dict[str, Callable[[Any], bool]]
) -> bool:
    for key, value in payload.items():
        if key == "model" or key == required:
            continue
        check = known.get(key)
        if check is None or not check(value):
            return False
    return True


def is_simple_chat(payload: dict[str, Any]) -> bool:
    """True when ``payload`` is a plain chat request the model accepts as it is."""
    messages = payload.get("messages")
    model = payload.get("model")  # (``_model``, inline: once per request)
    if type(messages) is not list or not messages or type(model) is not str or not model:
        return False
    for message in messages:
        # Two keys, both strings: exactly ``role`` and ``content`` (a missing one is None).
        if type(message) is not dict or len(message) != 2:
            return False
        role = message.get("role")
        if (
            type(message.get("content")) is not str
            or type(role) is not str
            or role not in _TEXT_ROLES
        ):
            return False
    # Most requests have no option at all (``model`` and ``messages`` are two keys).
    return len(payload) == 2 or _options(payload, "messages", _CHAT_OPTIONS)


def is_simple_responses(payload: dict[str, Any]) -> bool:
    """True when ``payload`` is a plain Responses request the model accepts as it is."""
    items = payload.get("input")
    if type(items) is list:
        if not items:
            return False
        for item in items:
            if type(item) is not dict or type(item.get("content")) is not str:
                return False
            keys = item.keys()
            if keys != _MESSAGE_KEYS and (keys != _TYPED_MESSAGE_KEYS or item["type"] != "message"):
                return False
            role = item["role"]
            if type(role) is not str or role not in _TEXT_ROLES:
                return False
    elif type(items) is not str:
        return False
    if not _model(payload):
        return False
    # Most requests have no option at all (``model`` and ``input`` are two keys).
    return len(payload) == 2 or _options(payload, "input", _RESPONSES_OPTIONS)
