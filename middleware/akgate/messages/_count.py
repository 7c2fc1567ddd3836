"""The local token estimate behind ``count_tokens`` and ``message_start``'s ``input_tokens``.

No tokenizer of a well-kept library fits here: ``tiktoken`` and Hugging Face ``tokenizers``
download their vocabularies at first use (no network in many deployments, none in CI), and
neither knows the wrapped model's vocabulary anyway. The estimate is the widely used rule of
about four characters of English text per token, counted over the translated chat request the
model actually sees (system prompt, messages, tool calls, tool schemas), plus a few tokens of
framing per message and a flat 1,600 per image (Anthropic's cost of a ~1.15 megapixel image;
base64 data is never counted as text). Exact counts come from the provider: a provider that
serves Messages natively answers ``count_tokens`` itself, and ``count_tokens="provider"`` asks
the wrapped chat app for its ``prompt_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic_core import to_json

__all__ = ["estimate_tokens"]

CHARS_PER_TOKEN: Final = 4
PER_MESSAGE: Final = 4
PER_IMAGE: Final = 1600
PER_REQUEST: Final = 3


def _chars(content: Any) -> tuple[int, int]:
    """``(characters, images)`` of a chat message content."""
    if isinstance(content, str):
        return len(content), 0
    chars = images = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                chars += len(part["text"])
            elif part.get("type") in ("image_url", "file"):
                images += 1
    return chars, images


def estimate_tokens(chat: Mapping[str, Any]) -> int:
    """Estimated prompt tokens of a chat completions request."""
    chars = 0
    images = 0
    messages = chat.get("messages")
    count = 0
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            continue
        count += 1
        c, i = _chars(message.get("content"))
        chars += c
        images += i
        for key in ("reasoning_content", "reasoning"):
            if isinstance(message.get(key), str):
                chars += len(message[key])
        if message.get("tool_calls"):
            chars += len(to_json(message["tool_calls"]))
    if chat.get("tools"):
        chars += len(to_json(chat["tools"]))
    text_tokens = -(-chars // CHARS_PER_TOKEN)
    return PER_REQUEST + count * PER_MESSAGE + text_tokens + images * PER_IMAGE
