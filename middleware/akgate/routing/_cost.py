"""Cost of one request: usage x catalog prices (USD per 1M tokens), with cache savings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeGuard

from ._catalog import Offering

__all__ = ["TokenCounts", "compute_cost", "plain_chat_cost", "token_counts"]


class TokenCounts(NamedTuple):
    input: int
    output: int
    cached: int


_new_counts = tuple.__new__


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def token_counts(usage: Any) -> TokenCounts | None:
    """Read chat (``prompt_tokens``...), responses or Anthropic (``input_tokens``...) usage."""
    # (``type(...) is dict`` first: an isinstance check against the Mapping ABC costs more
    # than the rest of this function, and parsed JSON is made of dicts.)
    if type(usage) is not dict and not isinstance(usage, Mapping):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        # (The usual chat usage, once per request: plain ints are taken as they are, and the
        # tuple is made without NamedTuple's Python-level __new__.)
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if _is_mapping(details) else 0
        return _new_counts(
            TokenCounts,
            (
                prompt if type(prompt) is int and prompt > 0 else _int(prompt),
                completion if type(completion) is int and completion > 0 else _int(completion),
                _int(cached),
            ),
        )
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        # Anthropic usage: input_tokens excludes the cached and cache-write tokens.
        cached = _int(usage.get("cache_read_input_tokens"))
        written = _int(usage.get("cache_creation_input_tokens"))
        return TokenCounts(
            _int(usage.get("input_tokens")) + cached + written,
            _int(usage.get("output_tokens")),
            cached,
        )
    if "input_tokens" in usage or "output_tokens" in usage:
        details = usage.get("input_tokens_details")
        cached = details.get("cached_tokens") if _is_mapping(details) else 0
        return TokenCounts(
            _int(usage.get("input_tokens")), _int(usage.get("output_tokens")), _int(cached)
        )
    return None


def compute_cost(tokens: TokenCounts, provider: Offering) -> dict[str, Any]:
    """``routing_metadata.cost``: ``usd`` always, cache savings only when they are > 0."""
    inp, out, cached = tokens
    if cached > inp:
        cached = inp
    input_price = provider.input_price
    cached_price = provider.cached_input_price
    if cached_price is None:
        cached_price = input_price
    usd = (
        (inp - cached) * input_price + cached * cached_price + out * provider.output_price
    ) / 1_000_000
    cost: dict[str, Any] = {"usd": round(usd, 10)}
    if not cached:
        return cost  # no cached tokens, no savings
    savings = cached * (input_price - cached_price) / 1_000_000
    if savings > 0:
        cost["cache_savings_usd"] = round(savings, 10)
        percent = round(savings / (usd + savings) * 100)
        if percent > 0:
            cost["cache_savings_percent"] = min(100, percent)
    return cost


def plain_chat_cost(usage: Any, provider: Offering) -> tuple[int, int, dict[str, Any]] | None:
    """``(input, output, cost)`` of the usual chat usage (positive int ``prompt_tokens`` and
    ``completion_tokens``; ``prompt_tokens_details`` absent, null or a dict whose
    ``cached_tokens`` is an int or null): what :func:`token_counts` and :func:`compute_cost`
    give for it, in one call and without the intermediate tuple (once per routed request).
    ``None`` for any other usage."""
    if type(usage) is not dict:
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if type(prompt) is not int or type(completion) is not int or prompt <= 0 or completion <= 0:
        return None
    details = usage.get("prompt_tokens_details")
    if details is not None:
        if type(details) is not dict:
            return None
        cached = details.get("cached_tokens")
        if cached is not None and type(cached) is not int:
            return None
        if cached is not None and cached > 0:
            return (
                prompt,
                completion,
                compute_cost(_new_counts(TokenCounts, (prompt, completion, cached)), provider),
            )
    input_price = provider.input_price
    cached_price = provider.cached_input_price
    if cached_price is None:
        cached_price = input_price
    # compute_cost's own expression with no cached tokens (the same float, bit for bit).
    usd = ((prompt - 0) * input_price + 0 * cached_price + completion * provider.output_price) / (
        1_000_000
    )
    return prompt, completion, {"usd": round(usd, 10)}
