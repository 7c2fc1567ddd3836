"""Candidate selection: filter the model x provider routes, then score them by strategy.

Filters run in a fixed order; the filter that removes the last candidate names the error
(``response_api_only``, ``tools_not_supported``, ``provider_not_in_allowlist``,
``cost_constraint_exceeded`` ...). Scores are a weighted sum of three dimensions normalised over
the remaining candidates: price (lower is better), TTFT (lower is better) and throughput (higher
is better). A dimension with fewer than two distinct known values scores 0.5 for everyone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from akgate.context import Endpoint
from akgate.errors import GatewayError
from akgate.schemas.gateway import split_model_suffix

from ._catalog import EFFORT_ORDER, CatalogModel, Offering
from ._providers import DATA_POLICY_RANK, Provider
from ._stats import EMPTY_PERF, Perf, StatsKey

__all__ = [
    "REQUIRE_PARAMETERS",
    "STRATEGY_WEIGHTS",
    "Needs",
    "Route",
    "rank_routes",
    "split_suffix",
]

#: ``(cost, ttft, throughput)`` weights of the named strategies.
STRATEGY_WEIGHTS: Final[Mapping[str, tuple[float, float, float]]] = {
    "cost": (0.6, 0.2, 0.2),
    "cost-focus": (0.9, 0.05, 0.05),
    "ttft": (0.2, 0.6, 0.2),
    "ttft-focus": (0.05, 0.9, 0.05),
    "tps": (0.2, 0.2, 0.6),
    "tps-focus": (0.05, 0.05, 0.9),
    "balanced": (1 / 3, 1 / 3, 1 / 3),
}

#: Optional parameters checked by ``require_parameters`` (docs/routing.md, ``gateway.routing``).
REQUIRE_PARAMETERS: Final = (
    "temperature",
    "top_p",
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "parallel_tool_calls",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
)

_DISABLE: Final = ("off", "none")
_PARAM_SET: Final = frozenset(REQUIRE_PARAMETERS)


#: The contract's suffix rule, shared with the auth layer's model allowlist.
split_suffix = split_model_suffix


@dataclass(frozen=True, slots=True)
class Route:
    """One candidate: a catalog model served by one provider (precomputed at startup)."""

    model: CatalogModel
    offering: Offering
    provider: Provider
    provider_model_id: str
    data_policy: str
    #: Endpoints this route can serve (the catalog's, minus what the provider cannot reach).
    endpoints: frozenset[str]
    #: Average of input and output price per 1M tokens (what ``max_cost_per_1m`` caps).
    price: float
    key: StatsKey
    #: The leading ``routing_metadata`` keys (provider, provider_model_id, model_canonical).
    metadata_head: Mapping[str, str]


@dataclass(slots=True)
class Needs:
    """What the request requires from a model, read once per request."""

    tools: bool = False
    tool_choice_required: bool = False
    vision: bool = False
    files: bool = False
    structured: str | None = None
    effort: str | None = None
    params: tuple[str, ...] = ()


#: The needs of a request that needs nothing in particular (shared: nothing writes to a Needs).
NO_NEEDS: Final = Needs()


def read_needs(payload: Mapping[str, Any], endpoint: Endpoint) -> Needs:
    if endpoint == "messages":
        return _messages_needs(payload)
    if endpoint == "chat_completions":
        fmt = payload.get("response_format")
        effort = payload.get("reasoning_effort")
        parts = _part_types(payload.get("messages"))
        vision, files = "image_url" in parts, "file" in parts
    else:
        text = payload.get("text")
        fmt = text.get("format") if text is not None and _is_mapping(text) else None
        reasoning = payload.get("reasoning")
        effort = (
            reasoning.get("effort") if reasoning is not None and _is_mapping(reasoning) else None
        )
        parts = _part_types(payload.get("input"))
        vision, files = "input_image" in parts, "input_file" in parts
    structured = None
    if fmt is not None and _is_mapping(fmt) and fmt.get("type") in ("json_object", "json_schema"):
        structured = fmt["type"]
    tools = bool(payload.get("tools"))
    params = _params(payload)
    if not (tools or vision or files or structured or params or isinstance(effort, str)):
        return NO_NEEDS  # the usual plain request (what the general rule builds for it)
    return Needs(
        tools=tools,
        tool_choice_required=tools and payload.get("tool_choice") == "required",
        vision=vision,
        files=files,
        structured=structured,
        effort=effort if isinstance(effort, str) else None,
        params=params,
    )


def plain_needs(payload: Mapping[str, Any]) -> Needs:
    """``read_needs`` of a request ``RequestValidation`` found plain (``PLAIN_REQUEST``: text
    messages, scalar options only): only its parameters can need anything of a route."""
    params = _params(payload)
    return Needs(params=params) if params else NO_NEEDS


def _params(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The parameters a route may lack that ``payload`` sets (not ``None``), in its order."""
    # Iterate the (few) request keys rather than the 15 checked parameters; ``isdisjoint``
    # answers the usual request (none of them) in one call.
    if _PARAM_SET.isdisjoint(payload):
        return ()
    return tuple([k for k in payload if k in _PARAM_SET and payload[k] is not None])


def _messages_needs(payload: Mapping[str, Any]) -> Needs:
    """An Anthropic Messages request: thinking and effort are hints there (a model that does not
    reason just answers), so they never filter routes."""
    tools = bool(payload.get("tools"))
    choice = payload.get("tool_choice")
    config = payload.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else None
    return Needs(
        tools=tools,
        tool_choice_required=tools
        and isinstance(choice, Mapping)
        and choice.get("type") in ("any", "tool"),
        vision=_has_part(payload.get("messages"), "content", "image"),
        files=_has_file_document(payload.get("messages")),
        structured="json_schema" if isinstance(fmt, Mapping) else None,
    )


def _has_file_document(messages: Any) -> bool:
    """A Messages ``document`` block with a base64 source (it becomes a chat ``file`` part;
    text and content sources become text)."""
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, Mapping) and block.get("type") == "document":
                    source = block.get("source")
                    if isinstance(source, Mapping) and source.get("type") == "base64":
                        return True
    return False


def _part_types(items: Any) -> set[str]:
    """The types of the content parts of ``items`` (messages' ``content``, and the ``output``
    of Responses tool outputs), in one pass: what the capability filters look for."""
    found: set[str] = set()
    if not isinstance(items, list):
        return found
    for item in items:  # (``_is_mapping`` inlined: a call per message and part of a long history)
        if type(item) is not dict and not isinstance(item, Mapping):
            continue
        parts = item.get("content")
        if not isinstance(parts, list):
            parts = item.get("output")
            if not isinstance(parts, list):
                continue
        for part in parts:
            if type(part) is dict or isinstance(part, Mapping):
                kind = part.get("type")
                if isinstance(kind, str):
                    found.add(kind)
    return found


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, with parsed JSON's dicts answered without the ABC check
    (which costs a third of a microsecond, per message of a long conversation)."""
    return type(value) is dict or isinstance(value, Mapping)


def _has_part(items: Any, key: str, part_type: str) -> bool:
    if not isinstance(items, list):
        return False
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == part_type:
            return True
        content = item.get(key)
        if isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and part.get("type") == part_type:
                    return True
    return False


def normalize_effort(effort: str, accepted: Sequence[str]) -> str | None:
    """The accepted effort nearest to ``effort`` (``None``: reasoning cannot be disabled)."""
    if effort in accepted:
        return effort
    if effort in _DISABLE:
        return next((e for e in _DISABLE if e in accepted), None)
    enabled = [e for e in accepted if e not in _DISABLE]
    if not enabled or effort not in EFFORT_ORDER:
        return None
    rank = EFFORT_ORDER.index(effort)
    lower = [e for e in enabled if EFFORT_ORDER.index(e) <= rank]
    if lower:
        return max(lower, key=EFFORT_ORDER.index)
    return min(enabled, key=EFFORT_ORDER.index)


def _effort_param(endpoint: Endpoint) -> str:
    return "reasoning_effort" if endpoint == "chat_completions" else "reasoning.effort"


_Filter = tuple[str, str | None, str, Callable[[Route], bool]]


def _filters(
    endpoint: Endpoint,
    needs: Needs,
    routing: Mapping[str, Any],
    perf: Mapping[StatsKey, Perf],
    *,
    test_only: bool,
) -> list[_Filter]:
    """``(code, param, message, keep)`` in the order they apply."""
    filters: list[_Filter] = []
    if endpoint == "chat_completions":
        filters.append(
            (
                "response_api_only",
                "model",
                "The model is only available on /v1/responses.",
                lambda r: "chat_completions" in r.endpoints,
            )
        )
    elif endpoint == "messages":
        filters.append(
            (
                "response_api_only",
                "model",
                "The model is only available on /v1/responses.",
                lambda r: "messages" in r.endpoints,
            )
        )
    else:
        filters.append(
            (
                "no_responses_endpoint",
                "model",
                "The model is not available on /v1/responses.",
                lambda r: "responses" in r.endpoints,
            )
        )
    if needs.tools:
        filters.append(
            (
                "tools_not_supported",
                "tools",
                "No provider of the requested model supports tools.",
                lambda r: r.offering.capabilities.tools,
            )
        )
    if needs.tool_choice_required:
        filters.append(
            (
                "tool_choice_required_not_supported",
                "tool_choice",
                'No provider of the requested model honours tool_choice "required".',
                lambda r: r.offering.capabilities.tool_choice_required,
            )
        )
    if needs.vision:
        filters.append(
            (
                "vision_not_supported",
                "input" if endpoint == "responses" else "messages",
                "No provider of the requested model accepts image input.",
                lambda r: r.offering.capabilities.vision,
            )
        )
    if needs.files:
        filters.append(
            (
                "unsupported_modalities",
                "input" if endpoint == "responses" else "messages",
                "No provider of the requested model accepts file input (the catalog's "
                "capabilities.files).",
                lambda r: r.offering.capabilities.files,
            )
        )
    if needs.structured is not None:
        code = (
            "json_mode_not_supported"
            if needs.structured == "json_object"
            else "structured_output_not_supported"
        )
        filters.append(
            (
                code,
                {"chat_completions": "response_format", "responses": "text.format"}.get(
                    endpoint, "output_config.format"
                ),
                "No provider of the requested model supports structured output.",
                lambda r: r.offering.capabilities.structured_output,
            )
        )
    effort = needs.effort
    if effort is not None:
        param = _effort_param(endpoint)
        if effort in _DISABLE:
            filters.append(
                (
                    "thinking_disable_not_supported",
                    param,
                    "The requested model cannot disable reasoning.",
                    lambda r: (
                        not r.offering.capabilities.reasoning
                        or normalize_effort(effort, r.offering.capabilities.reasoning_efforts)
                        is not None
                    ),
                )
            )
        else:
            filters.append(
                (
                    "reasoning_not_supported",
                    param,
                    "The requested model does not support reasoning; remove "
                    f"{param} or pick a reasoning model.",
                    lambda r: r.offering.capabilities.reasoning,
                )
            )
    allow = routing.get("providers")
    if allow is not None:
        allowed = frozenset(allow)
        filters.append(
            (
                "provider_not_in_allowlist",
                "gateway.routing.providers",
                "None of the providers in gateway.routing.providers serves the requested model.",
                lambda r: r.provider.name in allowed,
            )
        )
    deny = routing.get("exclude_providers")
    if deny:
        denied = frozenset(deny)
        filters.append(
            (
                "no_provider_available",
                "gateway.routing.exclude_providers",
                "Every provider of the requested model is excluded.",
                lambda r: r.provider.name not in denied,
            )
        )
    if test_only:
        filters.append(
            (
                "no_provider_available",
                None,
                "Test keys (ak_test_) are served by test providers only, and none serves "
                "the requested model.",
                lambda r: r.provider.test,
            )
        )
    if routing.get("only_byok"):
        filters.append(
            (
                "byok_keys_required",
                "gateway.routing.only_byok",
                "No provider with your own key (BYOK) serves the requested model.",
                lambda r: r.provider.byok,
            )
        )
    if routing.get("only_platform"):
        filters.append(
            (
                "platform_keys_unavailable",
                "gateway.routing.only_platform",
                "No platform-key provider serves the requested model.",
                lambda r: not r.provider.byok,
            )
        )
    policy = routing.get("data_policy")
    if policy is not None and policy != "none":
        need = DATA_POLICY_RANK.get(policy, 0)
        filters.append(
            (
                "no_provider_available",
                "gateway.routing.data_policy",
                f"No provider of the requested model meets data_policy {policy!r}.",
                lambda r: DATA_POLICY_RANK[r.data_policy] >= need,
            )
        )
    tier = routing.get("tier")
    if tier is not None:
        filters.append(
            (
                "no_provider_available",
                "gateway.routing.tier",
                f"No provider of the requested model offers tier {tier!r}.",
                lambda r: r.offering.tier == tier,
            )
        )
    else:
        filters.append(
            (
                "tier_opt_in_required",
                "gateway.routing.tier",
                "The requested model is only offered on a premium tier; opt in with "
                "gateway.routing.tier.",
                lambda r: not r.offering.premium,
            )
        )
    if routing.get("require_parameters") and needs.params:
        params = needs.params
        filters.append(
            (
                "required_params_not_supported",
                "gateway.routing.require_parameters",
                "No provider supports every parameter sent: " + ", ".join(params) + ".",
                lambda r: (
                    r.offering.supported_parameters is None
                    or all(p in r.offering.supported_parameters for p in params)
                ),
            )
        )
    max_cost = routing.get("max_cost_per_1m")
    if max_cost is not None:
        filters.append(
            (
                "cost_constraint_exceeded",
                "gateway.routing.max_cost_per_1m",
                f"No provider costs at most {max_cost} USD per 1M tokens (average of input "
                "and output price).",
                lambda r: r.price <= max_cost,
            )
        )
    max_ttft = routing.get("max_ttft_ms")
    if max_ttft is not None:
        # One name per percentile: the lambdas run later, after both are bound.
        ttft_pct = routing.get("ttft_percentile") or "p50"
        filters.append(
            (
                "latency_constraint_exceeded",
                "gateway.routing.max_ttft_ms",
                f"No provider has a {ttft_pct} TTFT of at most {max_ttft} ms.",
                lambda r: (v := _ttft(r, perf, ttft_pct)) is None or v <= max_ttft,
            )
        )
    min_tps = routing.get("min_throughput_tps")
    if min_tps is not None:
        tps_pct = routing.get("throughput_percentile") or "p50"
        filters.append(
            (
                "throughput_constraint_not_met",
                "gateway.routing.min_throughput_tps",
                f"No provider has a {tps_pct} throughput of at least {min_tps} tokens/s.",
                lambda r: (v := _tps(r, perf, tps_pct)) is None or v >= min_tps,
            )
        )
    return filters


def _ttft(route: Route, perf: Mapping[StatsKey, Perf], pct: str) -> float | None:
    value = perf.get(route.key, EMPTY_PERF).ttft(pct)
    return route.offering.ttft_ms if value is None else value


def _tps(route: Route, perf: Mapping[StatsKey, Perf], pct: str) -> float | None:
    value = perf.get(route.key, EMPTY_PERF).tps(pct)
    return route.offering.throughput_tps if value is None else value


def _normalised(values: list[float | None], higher_is_better: bool) -> list[float]:
    known = [v for v in values if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 0.0)
    if hi == lo:
        return [0.5] * len(values)
    span = hi - lo
    if higher_is_better:
        return [0.5 if v is None else (v - lo) / span for v in values]
    return [0.5 if v is None else (hi - v) / span for v in values]


def rank_routes(
    groups: Sequence[Sequence[Route]],
    endpoint: Endpoint,
    needs: Needs,
    routing: Mapping[str, Any],
    perf: Mapping[StatsKey, Perf],
    weights: tuple[float, float, float],
    *,
    test_only: bool = False,
) -> list[Route]:
    """Filter and order the routes of the requested models (one group per model).

    Raises :class:`GatewayError` with the code of the filter that removed the last candidate.
    """
    if (
        len(groups) == 1
        and len(groups[0]) == 1
        and not routing
        and not test_only
        and not (needs.tools or needs.vision or needs.files or needs.structured or needs.effort)
    ):
        # The common case (one model, one provider, no options) without building filters.
        route = groups[0][0]
        if endpoint in route.endpoints and not route.offering.premium:
            return [route]
    routes = [r for group in groups for r in group]
    for code, param, message, keep in _filters(endpoint, needs, routing, perf, test_only=test_only):
        kept = [r for r in routes if keep(r)]
        if not kept:
            raise GatewayError(code, message, param, suggestion=_suggestion(code))
        routes = kept
    if len(routes) > 1:
        routes = _score(routes, routing, perf, weights)
    if routing.get("mode") == "fallback" and len(groups) > 1:
        # Every provider of model 1 (best first), then model 2, and so on.
        order = {id(group[0].model): i for i, group in enumerate(groups) if group}
        routes.sort(key=lambda r: order[id(r.model)])
    prefer = routing.get("prefer")
    if prefer is not None:
        if routing.get("mode") == "fallback" and len(groups) > 1:
            order = {id(group[0].model): i for i, group in enumerate(groups) if group}
            routes.sort(key=lambda r: (order[id(r.model)], r.provider.name != prefer))
        else:
            routes.sort(key=lambda r: r.provider.name != prefer)
    return routes


def _score(
    routes: list[Route],
    routing: Mapping[str, Any],
    perf: Mapping[StatsKey, Perf],
    weights: tuple[float, float, float],
) -> list[Route]:
    ttft_pct = routing.get("ttft_percentile") or "p50"
    tps_pct = routing.get("throughput_percentile") or "p50"
    cost = _normalised([r.price for r in routes], higher_is_better=False)
    ttft = _normalised([_ttft(r, perf, ttft_pct) for r in routes], higher_is_better=False)
    tps = _normalised([_tps(r, perf, tps_pct) for r in routes], higher_is_better=True)
    wc, wt, wp = weights
    scores = [wc * c + wt * t + wp * p for c, t, p in zip(cost, ttft, tps, strict=True)]
    order = sorted(range(len(routes)), key=lambda i: -scores[i])
    return [routes[i] for i in order]


_SUGGESTIONS: Final = {
    "response_api_only": "Call this model on /v1/responses.",
    "no_responses_endpoint": "List callable models with GET /v1/models?endpoint=responses.",
    "reasoning_not_supported": "Remove the reasoning effort or choose a reasoning model.",
    "provider_not_in_allowlist": "Widen gateway.routing.providers or pick another model.",
    "cost_constraint_exceeded": "Raise gateway.routing.max_cost_per_1m or pick another model.",
    "latency_constraint_exceeded": "Raise gateway.routing.max_ttft_ms.",
    "throughput_constraint_not_met": "Lower gateway.routing.min_throughput_tps.",
    "required_params_not_supported": "Set require_parameters to false to drop them instead.",
}


def _suggestion(code: str) -> str | None:
    return _SUGGESTIONS.get(code)
