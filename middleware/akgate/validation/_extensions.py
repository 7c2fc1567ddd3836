"""``extensions`` sanitisation (docs/compatibility.md, Contract §6): no credentials or core fields.

Keys are compared case-insensitively with ``_`` and ``-`` removed, so ``API-Key``, ``apiKey`` and
``api_key`` are one key, and ``maxTokens`` is ``max_tokens``. Credentials are stripped at every
depth, core fields only at the top of each provider object. Each removal is reported as a
``blocked_field`` warning whose code is the dotted path (never the value).

Paths are built only for the keys that are removed (a path per visited node would copy a long key
into every descendant's path), each segment is shortened to ``_MAX_SEGMENT`` characters, and at
most :data:`~akgate.context.MAX_WARNINGS` removals per call are reported (all are removed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from akgate.context import MAX_WARNINGS

__all__ = ["AUTH_KEYS", "CORE_FIELDS", "WarnFn", "normalize_key", "sanitize_extensions"]

WarnFn = Callable[[str, str, str], None]


def normalize_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


AUTH_KEYS: Final = frozenset(
    normalize_key(key)
    for key in (
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "auth",
        "bearer",
        "token",
        "access_token",
        "accesstoken",
        "secret",
        "secret_key",
        "secretkey",
        "credential",
        "credentials",
        "password",
        "x-api-key",
        "x-auth-token",
        "anthropic-api-key",
        "openai-api-key",
        "google-api-key",
    )
)

CORE_FIELDS: Final = frozenset(
    normalize_key(key)
    for key in (
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "tools",
        "tool_choice",
        "response_format",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "stop",
        "user",
        "inference_geo",
        "inferencegeo",
        "contents",
        "system_instruction",
        "systeminstruction",
        "system",
    )
)


#: A parent link: ``(parent link, key or list index)``; the root link is the provider path.
_Link = tuple[Any, Any]
_MAX_SEGMENT: Final = 64


def _segment(key: Any) -> str:
    text = str(key)
    return text if len(text) <= _MAX_SEGMENT else text[:_MAX_SEGMENT] + "..."


def _render(link: _Link) -> str:
    parts: list[str] = []
    node: Any = link
    while isinstance(node, tuple):
        node, key = node
        parts.append(f"[{key}]" if isinstance(key, int) else "." + _segment(key))
    parts.append(node)
    return "".join(reversed(parts))


def sanitize_extensions(extensions: dict[str, Any], warn: WarnFn | None) -> bool:
    """Strip blocked keys from ``extensions`` in place; True if anything was removed."""
    changed = False
    warned = 0
    # An explicit stack, not recursion: payloads from Python callers have no depth limit.
    stack: list[tuple[Any, Any, bool]] = [
        (value, "extensions." + _segment(provider), True)
        for provider, value in extensions.items()
        if isinstance(value, dict)
    ]
    while stack:
        node, path, top = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                norm = normalize_key(key) if isinstance(key, str) else ""
                blocked = norm in AUTH_KEYS
                if blocked or (top and norm in CORE_FIELDS):
                    del node[key]
                    changed = True
                    if warn is None or warned >= MAX_WARNINGS:
                        continue
                    warned += 1
                    child = _render((path, key))
                    if blocked:
                        message = (
                            f"Removed '{child}': credentials cannot be passed through extensions."
                        )
                    else:
                        message = (
                            f"Removed '{child}': core request fields cannot be overridden "
                            "through extensions; set them at the top level."
                        )
                    warn("blocked_field", child, message)
                else:
                    value = node[key]
                    if isinstance(value, (dict, list)):
                        stack.append((value, (path, key), False))
        elif isinstance(node, list):
            stack.extend(
                (item, (path, index), False)
                for index, item in enumerate(node)
                if isinstance(item, (dict, list))
            )
    return changed
