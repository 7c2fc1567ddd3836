"""Estimates: the admission reservation of a request, and the tokens of a stream cut short."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from akgate.routing import Catalog
from akgate.routing._strategies import split_suffix

__all__ = [
    "Price",
    "StreamTally",
    "estimate_tokens",
    "max_output_tokens",
    "price_of",
    "requested_model",
    "text_chars",
]

#: Characters per token for estimates (the usual rule of thumb for English text and code).
CHARS_PER_TOKEN: Final = 4
#: A JSON string's body, as the "unrolled loop" (runs of plain bytes between escapes): it matches
#: what ``(?:[^"\\]|\\.)*`` does at half the cost per chunk, and every streamed chunk is scanned.
_JSON_STRING: Final = rb'([^"\\]*(?:\\.[^"\\]*)*)"'
#: Text fields of streamed chat deltas (``content``, ``reasoning_content``, tool arguments).
_CHAT_TEXT: Final = re.compile(
    rb'"(?:content|reasoning_content|reasoning|arguments)":"' + _JSON_STRING
)
_RESPONSES_TEXT: Final = re.compile(rb'"delta":"' + _JSON_STRING)
#: Anthropic Messages deltas: ``text_delta``, ``thinking_delta``, ``input_json_delta``.
_MESSAGES_TEXT: Final = re.compile(rb'"(?:text|thinking|partial_json)":"' + _JSON_STRING)


class Price(NamedTuple):
    """USD per 1M tokens (the highest among a model's providers) and the output cap."""

    input: float
    output: float
    max_output_tokens: int | None


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def requested_model(payload: Mapping[str, Any]) -> str:
    """``model``, else the first of ``gateway.models`` ("" when neither is a string)."""
    model = payload.get("model")
    if isinstance(model, str):
        return model
    gateway = payload.get("gateway")
    if isinstance(gateway, Mapping):
        models = gateway.get("models")
        if isinstance(models, list) and models and isinstance(models[0], str):
            return models[0]
    return ""


def _models(payload: Mapping[str, Any]) -> list[str]:
    model = payload.get("model")
    if isinstance(model, str):
        return [model]
    gateway = payload.get("gateway")
    models = gateway.get("models") if isinstance(gateway, Mapping) else None
    return [m for m in models if isinstance(m, str)] if isinstance(models, list) else []


def price_of(catalog: Catalog | None, payload: Mapping[str, Any]) -> Price | None:
    """The highest prices among the models and providers a request may be routed to."""
    if catalog is None:
        return None
    best: Price | None = None
    for name in _models(payload):
        model = catalog.get(name) or catalog.get(split_suffix(name)[0])
        if model is None:
            continue
        for p in model.providers:
            cap = p.max_output_tokens
            if best is None:
                best = Price(p.input_price, p.output_price, cap)
            else:
                best = Price(
                    max(best.input, p.input_price),
                    max(best.output, p.output_price),
                    None
                    if cap is None or best.max_output_tokens is None
                    else max(cap, best.max_output_tokens),
                )
    return best


def max_output_tokens(payload: Mapping[str, Any], default: int) -> int:
    """The request's own output cap (``max_completion_tokens``, ``max_tokens``,
    ``max_output_tokens``), else ``default``."""
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def text_chars(value: Any, _depth: int = 0) -> int:
    """Characters of text in a request's messages/input (strings, recursively)."""
    if isinstance(value, str):
        return len(value)
    if _depth > 32:
        return 0
    if isinstance(value, Mapping):
        return sum(text_chars(v, _depth + 1) for k, v in value.items() if k != "type")
    if isinstance(value, list):
        return sum(text_chars(v, _depth + 1) for v in value)
    return 0


class StreamTally:
    """Counts the text a client received in a stream, for an estimate if it is cut short."""

    __slots__ = ("chars", "pattern")

    def __init__(self, endpoint: str) -> None:
        self.pattern = {"responses": _RESPONSES_TEXT, "messages": _MESSAGES_TEXT}.get(
            endpoint, _CHAT_TEXT
        )
        self.chars = 0

    def feed(self, chunk: bytes) -> None:
        for match in self.pattern.finditer(chunk):
            self.chars += len(match.group(1))
