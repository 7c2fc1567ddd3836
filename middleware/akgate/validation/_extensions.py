"""``extensions`` sanitisation (auriko-contract.md §6.2): no credentials, no core fields.

Keys are compared case-insensitively with ``_`` and ``-`` removed, so ``API-Key``, ``apiKey`` and
``api_key`` are one key, and ``maxTokens`` is ``max_tokens``. Credentials are stripped at every
depth, core fields only at the top of each provider object. Each removal is reported as a
``blocked_field`` warning whose code is the dotted path (never the value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

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


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}"


def sanitize_extensions(extensions: dict[str, Any], warn: WarnFn | None) -> bool:
    """Strip blocked keys from ``extensions`` in place; True if anything was removed."""
    changed = False
    # An explicit stack, not recursion: payloads from Python callers have no depth limit.
    stack: list[tuple[Any, str, bool]] = [
        (value, f"extensions.{provider}", True)
        for provider, value in extensions.items()
        if isinstance(value, dict)
    ]
    while stack:
        node, path, top = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                norm = normalize_key(key) if isinstance(key, str) else ""
                child = _path(path, key)
                if norm in AUTH_KEYS:
                    del node[key]
                    changed = True
                    if warn is not None:
                        warn(
                            "blocked_field",
                            child,
                            f"Removed '{child}': credentials cannot be passed through extensions.",
                        )
                elif top and norm in CORE_FIELDS:
                    del node[key]
                    changed = True
                    if warn is not None:
                        warn(
                            "blocked_field",
                            child,
                            f"Removed '{child}': core request fields cannot be overridden "
                            "through extensions; set them at the top level.",
                        )
                else:
                    value = node[key]
                    if isinstance(value, (dict, list)):
                        stack.append((value, child, False))
        elif isinstance(node, list):
            stack.extend(
                (item, f"{path}[{index}]", False)
                for index, item in enumerate(node)
                if isinstance(item, (dict, list))
            )
    return changed
