"""The public discovery endpoints, answered from the catalog (docs/routing.md, Public directory).

``GET /v1/directory/models``   every model with each provider's limits, capabilities and pricing
``GET /v1/registry/models``    the canonical model list
``GET /v1/registry/providers`` the providers

They need no key (the auth layer lets these paths through), so each client address is held to a
request budget per window, and the answers are built from the catalog and the providers' names
only: never a credential, a base URL or anything else from a provider's configuration. The
shapes are the ones the ``auriko`` SDK's ``models.list_directory / list_registry /
list_providers`` parse. The catalog is immutable, so every body is built once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

from akgate._asgi import dumps
from akgate._types import Scope, Send
from akgate.auth import KeyStoreUnavailable, MemoryRateLimiter, RateLimiter
from akgate.errors import GatewayError, send_error

from ._catalog import Catalog, CatalogModel, CatalogProvider
from ._providers import DATA_POLICY_RANK, Provider

__all__ = ["PUBLIC_PATHS", "PublicDirectory"]

#: The canonical paths this module answers (GET and HEAD only).
PUBLIC_PATHS: Final = ("/v1/directory/models", "/v1/registry/models", "/v1/registry/providers")
_ENDPOINTS: Final = ("chat_completions", "responses")
#: Display names of the providers the contract names (others show their id).
_DISPLAY_NAMES: Final = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google_ai_studio": "Google AI Studio",
    "google": "Google",
    "deepseek": "DeepSeek",
    "xai": "xAI",
    "fireworks_ai": "Fireworks AI",
    "together_ai": "Together AI",
    "z_ai": "Z.ai",
    "minimax": "MiniMax",
    "moonshot": "Moonshot AI",
    "demo": "akgate demo",
}
#: The only ``Provider.metadata`` keys ever shown (metadata is free-form and may hold secrets).
_SHOWN_METADATA: Final = ("display_name", "description", "icon")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _capabilities(offering: CatalogProvider) -> dict[str, bool]:
    caps = offering.capabilities
    return {
        "tools": caps.tools,
        "tool_choice_required": caps.tool_choice_required,
        "vision": caps.vision,
        "files": caps.files,
        "structured_output": caps.structured_output,
        "reasoning": caps.reasoning,
        "streaming": True,
    }


def _input_modalities(vision: bool, files: bool) -> list[str]:
    return ["text", *(["image"] if vision else []), *(["file"] if files else [])]


def _provider_entry(
    model: CatalogModel, offering: CatalogProvider, providers: Mapping[str, Provider]
) -> dict[str, Any]:
    provider = providers.get(offering.name)
    supported = offering.supported_parameters
    return {
        "provider": offering.name,
        "provider_model_id": model.provider_model_id(offering),
        "context_window": offering.context_window,
        "max_output_tokens": offering.max_output_tokens,
        "capabilities": _capabilities(offering),
        "input_modalities": _input_modalities(
            offering.capabilities.vision, offering.capabilities.files
        ),
        "output_modalities": ["text"],
        "tools": ["function"] if offering.capabilities.tools else [],
        "tiers": [
            {
                "name": offering.tier or "standard",
                "input_price": offering.input_price,
                "output_price": offering.output_price,
                "cache_read_price": offering.cached_input_price,
                "cache_write_price": None,
                "latency_hint": None,
                "price_variants": [],
            }
        ],
        "data_policy": offering.data_policy
        or (provider.data_policy if provider is not None else None),
        # null: the catalog does not restrict the optional parameters of this provider.
        "supported_parameters": sorted(supported) if supported is not None else None,
        "supported_endpoints": [e for e in _ENDPOINTS if e in offering.endpoints],
    }


def _directory(catalog: Catalog, providers: Mapping[str, Provider]) -> dict[str, Any]:
    return {
        "models": {
            model.id: {
                "family": model.family or model.id,
                "display_name": model.display_name or model.id,
                "author": model.author,
                "aliases": list(model.aliases),
                "providers": [_provider_entry(model, p, providers) for p in model.providers],
            }
            for model in catalog.models
        },
        "generated_at": _iso(catalog.loaded_at),
    }


def _registry_models(catalog: Catalog) -> dict[str, Any]:
    models = []
    for model in catalog.models:
        caps: dict[str, bool] = {}
        for offering in model.providers:
            for name, value in _capabilities(offering).items():
                caps[name] = caps.get(name, False) or value
        names = list(dict.fromkeys(p.name for p in model.providers))
        models.append(
            {
                "id": model.id,
                "family": model.family or model.id,
                "display_name": model.display_name or model.id,
                "author": model.author,
                "capabilities": caps,
                "input_modalities": _input_modalities(caps["vision"], caps["files"]),
                "output_modalities": ["text"],
                "providers": names,
                "has_free_provider": any(
                    p.input_price == 0 and p.output_price == 0 for p in model.providers
                ),
            }
        )
    return {"models": models, "count": len(models), "playground_defaults": []}


def _weakest_policy(catalog: Catalog, name: str, provider: Provider | None) -> str:
    """The least strict data policy among the provider's offerings: what it always meets."""
    default = provider.data_policy if provider is not None else "none"
    policies = [
        offering.data_policy or default
        for model in catalog.models
        for offering in model.providers
        if offering.name == name
    ]
    return min(policies, key=DATA_POLICY_RANK.__getitem__, default=default)


def _registry_providers(catalog: Catalog, providers: Mapping[str, Provider]) -> dict[str, Any]:
    entries = []
    for name in sorted(catalog.provider_names()):
        provider = providers.get(name)
        shown = {
            key: value
            for key, value in (provider.metadata if provider is not None else {}).items()
            if key in _SHOWN_METADATA and isinstance(value, str)
        }
        entries.append(
            {
                "id": name,
                "display_name": shown.get("display_name") or _DISPLAY_NAMES.get(name, name),
                "description": shown.get("description", ""),
                "icon": shown.get("icon", ""),
                "data_policy": _weakest_policy(catalog, name, provider),
            }
        )
    return {"providers": entries, "count": len(entries)}


class PublicDirectory:
    """Answers the three public discovery paths, each client address within ``rate_limit``.

    :param rate_limit: requests per ``window`` seconds per client address (``None``: unlimited).
    :param limiter: the counter store (default: in memory; pass a ``RedisRateLimiter`` to share
        the budget between workers).
    """

    def __init__(
        self,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        *,
        rate_limit: int | None = 60,
        limiter: RateLimiter | None = None,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_limit is not None and rate_limit < 1:
            raise ValueError("rate_limit must be >= 1 (or None for no limit)")
        self.rate_limit = rate_limit
        self.clock = clock
        self.limiter: RateLimiter = limiter or MemoryRateLimiter(window=window, clock=clock)
        self._bodies: dict[str, bytes] = {
            "/v1/directory/models": dumps(_directory(catalog, providers)),
            "/v1/registry/models": dumps(_registry_models(catalog)),
            "/v1/registry/providers": dumps(_registry_providers(catalog, providers)),
        }

    @staticmethod
    def handles(path: str) -> bool:
        return path in PUBLIC_PATHS

    async def __call__(self, scope: Scope, path: str, send: Send) -> None:
        method = scope.get("method")
        if method not in ("GET", "HEAD"):
            await send_error(
                send,
                GatewayError("method_not_allowed", f"Use GET on {path}."),
                headers=[(b"allow", b"GET, HEAD")],
            )
            return
        headers: list[tuple[bytes, bytes]] = []
        if self.rate_limit is not None:
            client = scope.get("client")
            address = client[0] if client else "unknown"
            try:
                result = await self.limiter.hit(f"public:{address}", self.rate_limit)
            except KeyStoreUnavailable:
                await send_error(
                    send,
                    GatewayError(
                        "service_unavailable",
                        "The rate limiter is unavailable; retry shortly.",
                        headers={"Retry-After": "1"},
                    ),
                )
                return
            headers = result.headers()
            if not result.allowed:
                retry = result.retry_after(self.clock())
                await send_error(
                    send,
                    GatewayError(
                        "rate_limit_exceeded",
                        f"Rate limit exceeded for this address. Retry after {retry} seconds.",
                        headers={"Retry-After": str(retry)},
                    ),
                    headers=headers,
                )
                return
        body = self._bodies[path]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("latin-1")),
                    (b"cache-control", b"public, max-age=60"),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
